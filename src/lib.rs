//! `mijia`: a local-first control plane for Xiaomi Mijia devices.
//!
//! - [`transport`]: the async miIO UDP client (handshake, retries, batching)
//!   and discovery. The only layer that owns sockets and timers.
//! - [`home`]: the user's home — registry of named devices and rooms,
//!   config and state paths, secrets on disk.
//! - [`cli`]: the `mijia` command line: argument parsing, validation into a
//!   plan, and table/JSON output.
//! - [`error`]: the crate error type and its mapping to exit codes.
//!
//! The wire formats live in the sans-IO crate [`mijia_proto`].

pub mod cli;
pub mod error;
pub mod home;
pub mod transport;

pub use error::{Error, ExitKind};
pub use mijia_proto as proto;
