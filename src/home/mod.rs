//! The user's home: the registry of named devices and rooms, where mijia's
//! files live, the small state it keeps between runs, and the [`Device`]
//! facade that everything above (CLI, agents, scenes) talks to.
//!
//! - [`paths`]: config and state directories (`MIJIA_HOME`, XDG).
//! - [`registry`]: `config/devices.toml`, the devices with their tokens;
//!   changed only through [`Registry::update`] (locked, atomic, mode 0600).
//! - [`state`]: `state/ids.json` and `state/devices-seen.json`, regenerable
//!   and tolerant of corruption.
//! - [`fsutil`]: atomic writes and `flock`-based file locks.
//! - [`error`]: [`HomeError`], whose messages say what to do next.
//! - [`specs`]: bundled plus user spec documents (`config/specs/<model>.json`)
//!   and `spec import`.
//! - [`device`]: per-model profiles (spec names and value checks, or a legacy
//!   table) and the [`Device`] facade: `status`, `get`, `set` (with read-back),
//!   `action`, `raw`. Names and values are checked before anything is sent.
//! - [`legacy`]: name tables for pre-MIoT models (Yeelight, Chuangmi plugs,
//!   Zhimi purifiers, Roborock vacuums).
//! - [`poll`]: whole-home status with bounded concurrency, per-device time
//!   limits and a single state write at the end.
//!
//! The registry and state files are plain blocking file IO, fast enough to
//! call from async code for files this small. Devices are reached through
//! [`crate::transport`]; this layer owns no sockets itself. Tokens stay inside [`mijia_proto::miio::Token`],
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
pub use state::{BatchSizes, DeviceKey, IdCounters, LastSeen, Seen};

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
