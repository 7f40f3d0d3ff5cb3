//! `fake-device`: a simulated fleet of Xiaomi Mijia devices on loopback.
//!
//! Every simulated device speaks the real encrypted miIO protocol (through
//! the same `mijia-proto` codec as the client), answers MIoT requests from
//! the real bundled spec of its model or a legacy vocabulary, and reproduces
//! the behaviours real firmware shows — silence on a wrong token, duplicate
//! id dropping, uptime-like stamps, `-9999` on big batches, per-property
//! result codes, malformed JSON quirks, push subscriptions — each of which
//! can be switched off. Network and lifecycle faults (loss, delay, jitter,
//! duplicates, reordering, corruption, offline, reboots) can be injected.
//!
//! Layers:
//!
//! - [`config`]: the fleet file (TOML), validation with errors that name the
//!   device and field, and [`FleetConfig::generate`] for large fleets;
//! - [`sim`]: one device as a sans-IO state machine (`handle(datagram,
//!   from, now)` → datagrams with delays), fully testable without sockets;
//! - [`legacy`]: legacy (pre-MIoT) method sets;
//! - [`fleet`]: the tokio runtime, one loopback socket and task per device,
//!   and [`DeviceHandle`] to change devices while they run;
//! - [`broadcast`]: hellos sent to 127.255.255.255, answered by every
//!   device from its own address ([`FleetOptions::broadcast`], on by default);
//! - [`mdns`]: `_miio._udp.local.` announcements with the real instance
//!   names, on a loopback interface ([`FleetOptions::mdns`], off by default);
//! - [`cloud`]: a simulated Xiaomi cloud over plain HTTP on loopback
//!   (account login, signed app API, control API) backed by the same
//!   devices ([`cloud::FakeCloud`]).
//!
//! What it does not do: listen or announce anywhere outside 127.0.0.0/8
//! and the loopback interface, emulate the cloud's OAuth/MQTT flavour, or
//! send events (`event_occured`).

pub mod broadcast;
pub mod cloud;
pub mod config;
pub mod fleet;
pub mod legacy;
pub mod mdns;
pub mod sim;
mod spec;

pub use config::{
    Behaviour, DeviceConfig, ErrorKey, Faults, FleetConfig, FleetError, FleetOptions, HelloForm,
    Quirk, StampStart,
};
pub use fleet::{DeviceHandle, DeviceInfo, Fleet};
pub use sim::{known_models, Disposition, Outbound, RecordedRequest, SimDevice, SimError};
pub use spec::miot_models;
