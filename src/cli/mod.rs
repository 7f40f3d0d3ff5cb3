//! The `mijia` command line.
//!
//! Three stages, in the ripgrep style:
//!
//! 1. [`args`]: clap parses the raw command line ([`Cli`]);
//! 2. [`plan`]: everything is validated into a [`Plan`] — address, token,
//!    `SIID.PIID`, JSON params — before any network IO, so a typo is a
//!    usage error (exit 2) with a one-line message, never a timeout;
//! 3. [`run`]: the plan is executed against the device and printed by
//!    [`output`] as a table, or as one JSON document with `--json`.
//!
//! Request-id counters persist between runs in the home's state directory
//! ([`ids::HomeIdStore`]). Errors are returned as [`crate::Error`]; `main`
//! maps them to exit codes.

pub mod args;
pub mod ids;
pub mod output;
pub mod plan;
pub mod run;

pub use args::{Cli, Command, GlobalArgs};
pub use plan::{plan, Op, Plan, Target};
pub use run::execute;
