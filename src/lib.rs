//! `mijia`: a local-first control plane for Xiaomi Mijia devices.
//!
//! - [`transport`]: the async miIO UDP client (handshake, retries, batching)
//!   and discovery. The only layer that owns sockets and timers.
//! - [`cloud`]: the Xiaomi cloud — password, captcha, two-factor and QR
//!   login, the stored session and its silent refresh, device list and
//!   registry import, and the cloud route for get/set/action/raw.
//! - [`home`]: the user's home — registry of named devices and rooms,
//!   config and state paths, secrets on disk.
//! - [`agent`]: the agent face — tool catalogue, policy (exposure, tiers,
//!   grants, confirmation, out-of-band approval), audit log, and the MCP
//!   server (stdio and Streamable HTTP, both protocol eras).
//! - [`automation`]: scripted automation — `watch` (changes by polling and
//!   device push), `wait` (until a condition holds) and scenes (named
//!   steps in `scenes.toml`, checked against the specs, with a dry run).
//! - [`cli`]: the `mijia` command line: argument parsing, validation into a
//!   plan, and table/JSON output.
//! - [`error`]: the crate error type and its mapping to exit codes.
//!
//! The wire formats live in the sans-IO crate [`mijia_proto`].

pub mod agent;
pub mod automation;
pub mod cli;
pub mod cloud;
pub mod error;
pub mod home;
pub mod transport;

pub use error::{Error, ExitKind};
pub use mijia_proto as proto;
