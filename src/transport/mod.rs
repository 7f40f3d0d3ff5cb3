//! The async miIO client: one [`MiioDevice`] per device.
//!
//! **What it does.** Owns the IO that the sans-IO core
//! ([`mijia_proto::miio`]) leaves out: one UDP socket per device, connected
//! to `ip:port`, with a 64 KiB receive buffer; the hello handshake (several
//! spaced hellos per attempt); per-attempt timeouts; retries with a new,
//! jumped id and a fresh handshake after a timeout; exponential back-off
//! with jitter on busy replies (`-9999`, `-30001`); adaptive batch sizes for
//! `get_properties` / `set_properties`, remembered per device; and reply
//! matching that ignores stale, duplicate, foreign and corrupt datagrams
//! until the deadline. Calls to one device are serialised (one request in
//! flight); different devices run in parallel.
//!
//! **What it does not do.** It knows nothing about device names, rooms,
//! MIoT specs, value validation or files: callers pass an address and a
//! token, and persist request-id counters through the [`IdStore`] trait
//! (the CLI and the home layer provide a file-backed one).
//!
//! Errors are [`MiioError`]s that name the failed [`Step`] and the number
//! of attempts, and tell the user what to check.

mod config;
mod device;
pub mod discovery;
mod error;
mod ids;
mod miot;
pub mod push;

#[cfg(test)]
mod tests;

pub use config::ClientConfig;
pub use device::{MiioDevice, RECV_BUFFER};
pub use error::{MiioError, Step};
pub use ids::{addr_key, did_key, IdStore, MemoryIdStore};
pub use miot::{ActionResult, DeviceInfo, PropId, PropResult};
pub use push::{PushEvent, PushSubscription, PushedProperty};
