//! The audit log: `state/audit.jsonl`, one JSON line per tool call,
//! including denied and refused ones.
//!
//! The file is opened for append only (`O_APPEND`, created with mode 0600)
//! and each record is written with one `write`, so concurrent servers never
//! interleave lines and nothing is ever rewritten. Rotate it by renaming.
//! `mijia audit` shows it.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::clock::rfc3339;
use super::AgentError;
use crate::home::fsutil::{self, PRIVATE_MODE};
use crate::home::Paths;

/// The audit file name, in the state directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// `state/audit.jsonl`.
pub fn audit_file(paths: &Paths) -> PathBuf {
    paths.state_dir.join(AUDIT_FILE)
}

/// What the server decided about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Allowed without asking (read tier, or a valid grant).
    Allowed,
    /// Refused by policy (not exposed, capped, generic tools off).
    Denied,
    /// A payment-like request: refused, no such tool.
    Forbidden,
    /// The user confirmed through the client.
    Confirmed,
    /// The user granted the capability through the client.
    Granted,
    /// The user declined.
    Declined,
    /// The user dismissed the form.
    Cancelled,
    /// No answer within the timeout, or an expired request state.
    Expired,
    /// Waiting for `mijia approve`.
    ApprovalPending,
    /// Approved with `mijia approve`.
    ApprovedOutOfBand,
    /// A replayed, tampered or mismatched confirmation or approval.
    Rejected,
    /// The arguments or the device reference were not usable.
    Invalid,
    /// Waiting for the client to ask the user (2026-07-28 input_required).
    InputRequired,
}

impl Decision {
    /// The snake_case word.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
            Decision::Forbidden => "forbidden",
            Decision::Confirmed => "confirmed",
            Decision::Granted => "granted",
            Decision::Declined => "declined",
            Decision::Cancelled => "cancelled",
            Decision::Expired => "expired",
            Decision::ApprovalPending => "approval_pending",
            Decision::ApprovedOutOfBand => "approved_out_of_band",
            Decision::Rejected => "rejected",
            Decision::Invalid => "invalid",
            Decision::InputRequired => "input_required",
        }
    }

    /// Whether the call went on to the device.
    pub fn executes(self) -> bool {
        matches!(
            self,
            Decision::Allowed
                | Decision::Confirmed
                | Decision::Granted
                | Decision::ApprovedOutOfBand
        )
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC time.
    pub time: String,
    /// Unix milliseconds.
    pub ts_ms: u64,
    /// The client (`name/version`), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The negotiated protocol version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub era: Option<String>,
    /// `stdio`, `http` or `direct`.
    pub transport: String,
    /// The tool.
    pub tool: String,
    /// The arguments as sent.
    pub args: Value,
    /// The device, once resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Its did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
    /// The scene (`run_scene`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene: Option<String>,
    /// Its model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The tier decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The decision.
    pub decision: Decision,
    /// `ok`, `error`, or `none` when nothing ran.
    pub result: String,
    /// What was said to the assistant (first line).
    pub message: String,
    /// The approval id involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// State before a write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// State after a write (read back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// The route a device call used (`local` or `cloud`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// How long the call took.
    pub latency_ms: u64,
}

impl AuditRecord {
    /// A record stamped `now_ms` with the required fields.
    pub fn new(now_ms: u64, transport: &str, tool: &str, args: Value, decision: Decision) -> Self {
        AuditRecord {
            time: rfc3339(now_ms),
            ts_ms: now_ms,
            client: None,
            era: None,
            transport: transport.to_string(),
            tool: tool.to_string(),
            args,
            device: None,
            did: None,
            scene: None,
            model: None,
            tier: None,
            decision,
            result: "none".into(),
            message: String::new(),
            approval_id: None,
            before: None,
            after: None,
            route: None,
            latency_ms: 0,
        }
    }
}

/// The append-only log of one home.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// The log of this home.
    pub fn new(paths: &Paths) -> Self {
        AuditLog {
            path: audit_file(paths),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line.
    pub fn append(&self, record: &AuditRecord) -> Result<(), AgentError> {
        let mut line = serde_json::to_vec(record).map_err(|e| AgentError::Corrupt {
            path: self.path.clone(),
            detail: e.to_string(),
        })?;
        line.push(b'\n');
        if let Some(dir) = self.path.parent() {
            fsutil::create_private_dir(dir)?;
        }
        let io = |source| AgentError::Io {
            action: "append to the audit log",
            path: self.path.clone(),
            source,
        };
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(PRIVATE_MODE)
            .open(&self.path)
            .map_err(io)?;
        f.write_all(&line).map_err(io)
    }

    /// Every record, oldest first. Lines that do not parse are skipped
    /// (and counted in the second value).
    pub fn read_all(&self) -> Result<(Vec<AuditRecord>, usize), AgentError> {
        let Some(bytes) = fsutil::read_optional(&self.path)? else {
            return Ok((Vec::new(), 0));
        };
        let mut out = Vec::new();
        let mut bad = 0;
        for line in bytes.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<AuditRecord>(line) {
                Ok(r) => out.push(r),
                Err(_) => bad += 1,
            }
        }
        Ok((out, bad))
    }
}

/// One line for people (`mijia audit`).
pub fn render_line(r: &AuditRecord) -> String {
    let scene = r.scene.as_ref().map(|s| format!("scene:{s}"));
    let device = r.device.as_deref().or(scene.as_deref()).unwrap_or("-");
    let tier = r.tier.as_deref().unwrap_or("-");
    let args = serde_json::to_string(&r.args).unwrap_or_default();
    format!(
        "{}  {:<16} {:<20} {:<18} tier={:<9} {} {}  {}",
        r.time,
        r.tool,
        device,
        r.decision.as_str(),
        tier,
        r.result,
        args,
        r.message
    )
}
