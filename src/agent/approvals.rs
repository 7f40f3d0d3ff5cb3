//! Out-of-band approvals: `state/approvals.json`.
//!
//! When a client cannot show the user a confirmation form, a call that
//! needs one is not run: the server records a pending request here and
//! returns its short random id. The user settles it with
//! `mijia approve ID` or `mijia deny ID`; the assistant may then retry the
//! same call with `approval_id`, and the server runs it only if the user
//! approved that id, it has not expired or been used, and the tool and a
//! digest of the arguments match. The id itself grants nothing.
//!
//! Every change is a locked read-modify-write; requests expire on their
//! own ([`Approval::expires_at_ms`]).

use std::path::PathBuf;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::clock::rfc3339;
use super::tier::{Capability, Tier};
use super::{jsonfile, AgentError};
use crate::home::Paths;

/// The approvals file name, in the state directory.
pub const APPROVALS_FILE: &str = "approvals.json";
/// Settled and expired requests are kept this long for `mijia approvals`.
const KEEP_MS: u64 = 24 * 3600 * 1000;
const ID_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
const ID_LEN: usize = 8;

/// `state/approvals.json`.
pub fn approvals_file(paths: &Paths) -> PathBuf {
    paths.state_dir.join(APPROVALS_FILE)
}

/// What approving does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalKind {
    /// Confirms one sensitive call.
    Confirm,
    /// Grants a capability class on a device (first use), and runs the call.
    Grant,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for the user.
    Pending,
    /// Approved by the user, not yet used.
    Approved,
    /// Denied by the user.
    Denied,
    /// Approved and used by the call it was for.
    Used,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Short random id.
    pub id: String,
    /// The tool.
    pub tool: String,
    /// SHA-256 of the canonical arguments (without `approval_id`).
    pub args_digest: String,
    /// The device's name.
    pub device: String,
    /// Its state key.
    pub device_key: String,
    /// Its capability class.
    pub class: Capability,
    /// Its tier.
    pub tier: Tier,
    /// What approving does.
    pub kind: ApprovalKind,
    /// What would happen, for people.
    pub summary: String,
    /// Created, unix ms.
    pub created_at_ms: u64,
    /// Expires, unix ms.
    pub expires_at_ms: u64,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// When the user settled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at_ms: Option<u64>,
}

impl Approval {
    /// Whether it has expired at `now_ms` (a used or denied request is
    /// settled, not expired).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        matches!(
            self.status,
            ApprovalStatus::Pending | ApprovalStatus::Approved
        ) && now_ms >= self.expires_at_ms
    }

    /// The status word for people, with expiry applied.
    pub fn state_word(&self, now_ms: u64) -> &'static str {
        if self.is_expired(now_ms) {
            return "expired";
        }
        match self.status {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Used => "used",
        }
    }

    /// One line for people.
    pub fn line(&self, now_ms: u64) -> String {
        format!(
            "{}  {:<8}  {}  (tier {}, expires {})",
            self.id,
            self.state_word(now_ms),
            self.summary,
            self.tier,
            rfc3339(self.expires_at_ms)
        )
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ApprovalsFile {
    #[serde(default)]
    approvals: Vec<Approval>,
}

/// A fresh random id.
pub fn new_id() -> String {
    let mut rng = rand::thread_rng();
    (0..ID_LEN)
        .map(|_| {
            let i = rng.gen_range(0..ID_ALPHABET.len());
            char::from(ID_ALPHABET.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

/// What a new request is for.
#[derive(Debug, Clone)]
pub struct NewApproval {
    /// The tool.
    pub tool: String,
    /// Digest of its arguments.
    pub args_digest: String,
    /// The device's name.
    pub device: String,
    /// Its state key.
    pub device_key: String,
    /// Capability class.
    pub class: Capability,
    /// Tier.
    pub tier: Tier,
    /// Confirm or grant.
    pub kind: ApprovalKind,
    /// For people.
    pub summary: String,
}

/// Records a pending request that lives `ttl_ms`.
pub fn create(
    paths: &Paths,
    new: NewApproval,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<Approval, AgentError> {
    jsonfile::update(&approvals_file(paths), |f: &mut ApprovalsFile| {
        f.approvals
            .retain(|a| a.expires_at_ms.max(a.settled_at_ms.unwrap_or(0)) + KEEP_MS > now_ms);
        let mut id = new_id();
        while f.approvals.iter().any(|a| a.id == id) {
            id = new_id();
        }
        let a = Approval {
            id,
            tool: new.tool,
            args_digest: new.args_digest,
            device: new.device,
            device_key: new.device_key,
            class: new.class,
            tier: new.tier,
            kind: new.kind,
            summary: new.summary,
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
            status: ApprovalStatus::Pending,
            settled_at_ms: None,
        };
        f.approvals.push(a.clone());
        Ok(a)
    })
}

/// Every request on disk.
pub fn list(paths: &Paths) -> Result<Vec<Approval>, AgentError> {
    Ok(jsonfile::read::<ApprovalsFile>(&approvals_file(paths))?.approvals)
}

/// `mijia approve ID` (`approve = true`) or `mijia deny ID`.
pub fn settle(paths: &Paths, id: &str, approve: bool, now_ms: u64) -> Result<Approval, AgentError> {
    let id = id.trim().to_ascii_lowercase();
    jsonfile::update(&approvals_file(paths), |f: &mut ApprovalsFile| {
        let Some(a) = f.approvals.iter_mut().find(|a| a.id == id) else {
            return Err(AgentError::Approval(format!(
                "no approval request '{id}'; list them with `mijia approvals`"
            )));
        };
        if a.is_expired(now_ms) {
            return Err(AgentError::Approval(format!(
                "approval request {id} expired at {}; ask the assistant to try again",
                rfc3339(a.expires_at_ms)
            )));
        }
        if a.status != ApprovalStatus::Pending {
            return Err(AgentError::Approval(format!(
                "approval request {id} is already {}",
                a.state_word(now_ms)
            )));
        }
        a.status = if approve {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Denied
        };
        a.settled_at_ms = Some(now_ms);
        Ok(a.clone())
    })
}

/// Why an `approval_id` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such id.
    Unknown,
    /// The user has not answered yet.
    Pending(Approval),
    /// The user denied it.
    Denied(Approval),
    /// It expired.
    Expired(Approval),
    /// It was used already.
    Used(Approval),
    /// It was for another tool or other arguments.
    Mismatch(Approval),
}

/// Uses an approved request for this tool and argument digest: marks it
/// used (one time) and returns it.
pub fn redeem(
    paths: &Paths,
    id: &str,
    tool: &str,
    args_digest: &str,
    now_ms: u64,
) -> Result<Result<Approval, Refusal>, AgentError> {
    let id = id.trim().to_ascii_lowercase();
    jsonfile::update(&approvals_file(paths), |f: &mut ApprovalsFile| {
        let Some(a) = f.approvals.iter_mut().find(|a| a.id == id) else {
            return Ok(Err(Refusal::Unknown));
        };
        if a.tool != tool || a.args_digest != args_digest {
            return Ok(Err(Refusal::Mismatch(a.clone())));
        }
        if a.is_expired(now_ms) {
            return Ok(Err(Refusal::Expired(a.clone())));
        }
        match a.status {
            ApprovalStatus::Pending => Ok(Err(Refusal::Pending(a.clone()))),
            ApprovalStatus::Denied => Ok(Err(Refusal::Denied(a.clone()))),
            ApprovalStatus::Used => Ok(Err(Refusal::Used(a.clone()))),
            ApprovalStatus::Approved => {
                a.status = ApprovalStatus::Used;
                Ok(Ok(a.clone()))
            }
        }
    })
}
