//! The agent face of mijia: a tool catalogue for AI assistants, the policy
//! that decides what they may see and do, and the MCP server that serves it.
//!
//! Every tool call goes through one decision point, [`gate::Gate`]:
//! exposure → tier → grant or confirmation → execute (with read-back) →
//! audit. Nothing an assistant sends counts as the user's consent; only an
//! answer the user gives through the client's elicitation form, or an
//! approval recorded with `mijia approve ID`, does.
//!
//! - [`policy`]: `config/policy.toml` — exposed devices and rooms, tier caps,
//!   generic tools on/off, confirmation timeout, grant and approval lifetimes.
//! - [`tier`]: the one table that maps a device type, capability and
//!   direction to a tier (read, control, sensitive, forbidden) and the tool
//!   annotations derived from it.
//! - [`grants`]: `state/grants.json`, time-limited consent per device and
//!   capability class.
//! - [`approvals`]: `state/approvals.json`, pending requests the user settles
//!   out of band (`mijia approve ID` / `mijia deny ID`).
//! - [`audit`]: `state/audit.jsonl`, one append-only line per tool call,
//!   denied ones included.
//! - [`resolve`]: forgiving device references (name, room, did) that return
//!   candidates instead of guessing.
//! - [`tools`]: the tool catalogue (names, strict JSON schemas, output
//!   schemas, annotations) and the calls against [`crate::home::Device`].
//! - [`scenes`]: the user's scenes as `run_scene`: sharing, tier (the
//!   highest of the devices it touches), consent.
//! - [`gate`]: the decision point.
//! - [`mcp`]: the only module that knows the MCP SDK (rmcp): stdio and
//!   Streamable HTTP, both protocol eras.
//!
//! Policy, grants, approvals and the audit log never leave the machine.

pub mod approvals;
pub mod audit;
pub mod clock;
pub mod gate;
pub mod grants;
mod jsonfile;
pub mod mcp;
pub mod policy;
pub mod resolve;
pub mod scenes;
pub mod tier;
pub mod tools;

use std::path::PathBuf;

use crate::home::HomeError;

/// Why an agent command or the server failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A home-layer problem (registry, locks, atomic writes).
    #[error(transparent)]
    Home(#[from] HomeError),
    /// A bad argument to an agent command.
    #[error("{0}")]
    Usage(String),
    /// A policy, grants or approvals file that cannot be used.
    #[error("{} is not valid: {detail} — fix or remove the file", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Local IO.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An approval id that is unknown or cannot be settled.
    #[error("{0}")]
    Approval(String),
    /// The MCP server could not start or stopped with an error.
    #[error("MCP server: {0}")]
    Serve(String),
}

impl AgentError {
    /// True for problems with the user's input (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, AgentError::Usage(_) | AgentError::Approval(_))
    }

    /// True for configuration and state-file problems (exit code 5).
    pub fn is_config(&self) -> bool {
        matches!(self, AgentError::Corrupt { .. })
    }
}
