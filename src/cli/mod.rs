//! The `mijia` command line.
//!
//! Three stages, in the ripgrep style:
//!
//! 1. [`args`]: clap parses the raw command line ([`Cli`]);
//! 2. [`plan`](mod@plan): everything is validated into a [`HomePlan`] — address,
//!    token, the device's registry name, property and action names and
//!    their values against the model's spec, JSON params — before any
//!    network IO, so a typo is a usage error (exit 2) with a one-line
//!    message, never a timeout;
//! 3. [`run`] dispatches and [`exec`] executes: one device through the
//!    [`crate::home::Device`] facade, a room or the whole home
//!    ([`status`]), the registry ([`devices`]) or specs ([`specs`]); results
//!    are printed by [`output`] as a table, or as one JSON document with
//!    `--json`.
//!
//! `cloud` ([`cloud`]) logs in to the Xiaomi cloud, lists and imports
//! devices. Device commands take either route (`--via local|cloud|auto`);
//! [`exec`] chooses it and both print through [`output`] alike.
//!
//! `discover` ([`discover`]) takes no device: it validates its own
//! options and finds devices instead.
//!
//! Request-id counters persist between runs in the home's state directory
//! ([`ids::HomeIdStore`]). Errors are returned as [`crate::Error`]; `main`
//! maps them to exit codes.

pub mod agent;
pub mod args;
pub mod automation;
pub mod cloud;
pub mod devices;
pub mod discover;
pub mod exec;
pub mod ids;
pub mod output;
pub mod plan;
pub mod run;
pub mod specs;
pub mod status;

pub use args::{Cli, Command, GlobalArgs};
pub use plan::{HomePlan, Request};
pub use run::{execute, plan, Planned};
