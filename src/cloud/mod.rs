//! The Xiaomi cloud: login, session, device list, and the cloud route to a
//! device.
//!
//! - [`config`]: endpoints (account host, STS, API template with
//!   `{region}`) from the environment and `cloud.toml`; plain HTTP only on
//!   loopback.
//! - [`http`]: the HTTP client (no automatic redirects, our own cookie
//!   jar, timeouts, bounded retries with back-off on 429/5xx/connection
//!   errors).
//! - [`auth`]: password login with captcha and two-factor, QR login with
//!   long polling, silent refresh from the passToken; [`auth::Interaction`]
//!   is how the flow asks the user.
//! - [`session`]: `state/cloud-session.json` (mode 0600) and the stable
//!   per-installation device id.
//! - [`api`]: [`CloudClient`], signed RC4 calls and the typed endpoints:
//!   device list, homes, MIoT get/set/action, raw RPC, with the
//!   transport's result types.
//! - [`import`]: merging the cloud's devices into the registry without
//!   losing local edits.
//! - [`route`]: local vs cloud route selection for one device.
//! - [`fallback`]: the rules of the `auto` route's fallback to the cloud,
//!   shared by the CLI and the MCP gate.
//! - [`error`]: what can go wrong, as [`CloudError`].
//!
//! All signing, encryption and reply parsing lives in the sans-IO
//! [`mijia_proto::cloud`]; this module owns the network, files and
//! prompts. Secrets never reach logs, `Debug` output or error messages.

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod fallback;
pub mod http;
pub mod import;
pub mod route;
pub mod session;

pub use api::{CloudClient, CloudDevice, CloudHome, CloudRoom};
pub use config::CloudEndpoints;
pub use error::CloudError;
pub use fallback::NoFallback;
pub use route::{CloudDeviceRoute, MiotRoute, Route, RouteError, Via};
pub use session::{Session, SessionStore};
