//! The user's home on disk: the registry of named devices and rooms, where
//! mijia's files live, and the small state it keeps between runs.
//!
//! - [`paths`]: config and state directories (`MIJIA_HOME`, XDG).
//! - [`registry`]: `config/devices.toml`, the devices with their tokens;
//!   changed only through [`Registry::update`] (locked, atomic, mode 0600).
//! - [`state`]: `state/ids.json` and `state/devices-seen.json`, regenerable
//!   and tolerant of corruption.
//! - [`fsutil`]: atomic writes and `flock`-based file locks.
//! - [`error`]: [`HomeError`], whose messages say what to do next.
//!
//! This layer does not talk to devices or the cloud, and does not hold
//! sockets; it is plain blocking file IO, fast enough to call from async
//! code for files this small. Tokens stay inside [`mijia_proto::miio::Token`],
//! whose `Debug` and `Display` redact them.

pub mod device;
pub mod error;
pub mod fsutil;
pub mod legacy;
pub mod paths;
pub mod poll;
pub mod registry;
pub mod specs;
pub mod state;

pub use error::HomeError;
pub use paths::Paths;
pub use registry::{DeviceEntry, Registry};
pub use state::{DeviceKey, IdCounters, LastSeen, Seen};

pub use device::{
    ActionOutcome, Device, DeviceOpError, DeviceTarget, ModelCatalog, ModelProfile, PropReading,
    SetResult,
};
pub use poll::{poll_home, status_many, BulkIdStore, PollOptions, PolledDevice, Progress};
pub use specs::{import_spec, load_spec_store, SpecFileError, SpecLoadWarning};

/// The current time in unix seconds (0 if the clock is before 1970), for
/// [`DeviceEntry::added`] and [`Seen::at`].
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
