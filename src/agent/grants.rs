//! Capability grants: `state/grants.json`.
//!
//! A grant lets an assistant use one capability class (power, light,
//! climate, …) on one device without asking again until it expires. It is
//! created only by the user's answer to an elicitation form or by
//! `mijia approve`, never by a tool argument. Sensitive calls never use
//! grants: they are confirmed every time.
//!
//! ```json
//! {"grants": [{"device_key": "did:123", "device": "Desk lamp", "class": "light",
//!              "granted_at_ms": 1785585600000, "expires_at_ms": 1785614400000,
//!              "via": "elicitation"}]}
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::tier::Capability;
use super::{jsonfile, AgentError};
use crate::home::Paths;

/// The grants file name, in the state directory.
pub const GRANTS_FILE: &str = "grants.json";

/// `state/grants.json`.
pub fn grants_file(paths: &Paths) -> PathBuf {
    paths.state_dir.join(GRANTS_FILE)
}

/// One grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The device's state key (`did:…` or `ip:…`).
    pub device_key: String,
    /// Its name when granted, for people.
    pub device: String,
    /// The capability class.
    pub class: Capability,
    /// When, in unix milliseconds.
    pub granted_at_ms: u64,
    /// Until when.
    pub expires_at_ms: u64,
    /// How: `elicitation` or `approval:<id>`.
    pub via: String,
}

impl Grant {
    /// Whether it is still valid at `now_ms`.
    pub fn is_valid(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct GrantsFile {
    #[serde(default)]
    grants: Vec<Grant>,
}

/// Every grant on disk, expired ones included.
pub fn list(paths: &Paths) -> Result<Vec<Grant>, AgentError> {
    Ok(jsonfile::read::<GrantsFile>(&grants_file(paths))?.grants)
}

/// The valid grant for this device and class, if any. An unreadable file
/// counts as no grant (fail closed) and is logged.
pub fn find(paths: &Paths, device_key: &str, class: Capability, now_ms: u64) -> Option<Grant> {
    match list(paths) {
        Ok(all) => all
            .into_iter()
            .find(|g| g.device_key == device_key && g.class == class && g.is_valid(now_ms)),
        Err(e) => {
            tracing::warn!("ignoring grants: {e}");
            None
        }
    }
}

/// Stores a grant, replacing an older one for the same device and class
/// and dropping expired ones.
pub fn add(paths: &Paths, grant: Grant, now_ms: u64) -> Result<(), AgentError> {
    jsonfile::update(&grants_file(paths), |f: &mut GrantsFile| {
        f.grants.retain(|g| {
            g.is_valid(now_ms) && !(g.device_key == grant.device_key && g.class == grant.class)
        });
        f.grants.push(grant);
        Ok(())
    })
}

/// Removes grants: all of them, or those of one device (by name or key).
/// Returns how many were removed.
pub fn revoke(paths: &Paths, device: Option<&str>) -> Result<usize, AgentError> {
    jsonfile::update(&grants_file(paths), |f: &mut GrantsFile| {
        let n = f.grants.len();
        match device {
            None => f.grants.clear(),
            Some(d) => f
                .grants
                .retain(|g| !(g.device.eq_ignore_ascii_case(d.trim()) || g.device_key == d)),
        }
        Ok(n - f.grants.len())
    })
}
