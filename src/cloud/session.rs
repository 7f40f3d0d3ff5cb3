//! The stored cloud session: `<state_dir>/cloud-session.json`, mode 0600,
//! written atomically under a lock.
//!
//! It holds what signing and refreshing need — `userId`, `cUserId`,
//! `ssecurity`, `serviceToken`, `passToken` — plus the region and when the
//! session was saved. The password is never stored. A per-installation
//! device id (the `deviceId` cookie, which risk control likes to see
//! stable) lives in `<state_dir>/cloud-device-id` and survives logout.
//!
//! `Debug` redacts every secret (the secret types do).

use std::path::PathBuf;

use mijia_proto::cloud::{PassToken, Region, ServiceToken, Ssecurity};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::CloudError;
use crate::home::fsutil::{self, FileLock, DEFAULT_LOCK_TIMEOUT, PRIVATE_MODE};
use crate::home::{HomeError, Paths};

/// The session file, in the state directory.
pub const SESSION_FILE: &str = "cloud-session.json";
/// The installation's device id, in the state directory.
pub const DEVICE_ID_FILE: &str = "cloud-device-id";

/// A logged-in cloud session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Numeric user id, as text.
    pub user_id: String,
    /// The encrypted user id, if the server sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_user_id: Option<String>,
    /// Root signing secret.
    pub ssecurity: Ssecurity,
    /// The API session cookie.
    pub service_token: ServiceToken,
    /// The refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_token: Option<PassToken>,
    /// The `deviceId` cookie used at login.
    pub device_id: String,
    /// The default region of this account (`cn`, `de`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The login name used, if any (never the password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Unix seconds of the first login of this session.
    pub logged_in_at: u64,
    /// Unix seconds of the last save (login or refresh).
    pub saved_at: u64,
    /// How many times the service token was refreshed from the passToken.
    #[serde(default)]
    pub refreshes: u32,
}

impl Session {
    /// The stored region, parsed (`None` if unset or unknown).
    pub fn region(&self) -> Option<Region> {
        self.region.as_deref().and_then(|r| r.parse().ok())
    }
}

/// Reads and writes the session file of one home.
#[derive(Debug, Clone)]
pub struct SessionStore {
    path: PathBuf,
    device_id_path: PathBuf,
}

impl SessionStore {
    /// The store of `paths`.
    pub fn new(paths: &Paths) -> Self {
        SessionStore {
            path: paths.state_dir.join(SESSION_FILE),
            device_id_path: paths.state_dir.join(DEVICE_ID_FILE),
        }
    }

    /// The session file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The stored session, or `None` when logged out.
    pub fn load(&self) -> Result<Option<Session>, CloudError> {
        let Some(bytes) = fsutil::read_optional(&self.path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CloudError::CorruptFile {
                path: self.path.clone(),
                // serde_json's message names the field and position, not
                // the value.
                detail: e.to_string(),
            })
    }

    /// The stored session, or [`CloudError::NotLoggedIn`].
    pub fn require(&self) -> Result<Session, CloudError> {
        self.load()?.ok_or(CloudError::NotLoggedIn)
    }

    /// Saves `session` (mode 0600, atomic, locked).
    pub fn save(&self, session: &Session) -> Result<(), CloudError> {
        let text = serde_json::to_vec_pretty(session).map_err(|e| CloudError::CorruptFile {
            path: self.path.clone(),
            detail: format!("cannot encode the session: {e}"),
        })?;
        let _lock = FileLock::acquire(&self.path, DEFAULT_LOCK_TIMEOUT)?;
        fsutil::write_atomic(&self.path, &text, PRIVATE_MODE)?;
        Ok(())
    }

    /// Removes the session file. Returns whether one existed.
    pub fn remove(&self) -> Result<bool, CloudError> {
        let _lock = FileLock::acquire(&self.path, DEFAULT_LOCK_TIMEOUT)?;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(HomeError::Io {
                action: "remove",
                path: self.path.clone(),
                source: e,
            }
            .into()),
        }
    }

    /// This installation's device id, created on first use.
    pub fn device_id(&self) -> Result<String, CloudError> {
        if let Some(bytes) = fsutil::read_optional(&self.device_id_path)? {
            let id = String::from_utf8_lossy(&bytes).trim().to_owned();
            if id.len() >= 8 && id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Ok(id);
            }
        }
        let id = new_device_id();
        fsutil::write_atomic(&self.device_id_path, id.as_bytes(), PRIVATE_MODE)?;
        Ok(id)
    }
}

fn new_device_id() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn round_trip_mode_and_redaction() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = SessionStore::new(&Paths::at(dir.path()));
        assert!(store.load().unwrap_or_else(|e| panic!("{e}")).is_none());
        assert!(matches!(store.require(), Err(CloudError::NotLoggedIn)));
        let id = store.device_id().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.device_id().ok(), Some(id.clone()));
        let s = Session {
            user_id: "42".into(),
            c_user_id: None,
            ssecurity: Ssecurity::from_base64("rmiKudqfR0nPsTBl/lkHjg==")
                .unwrap_or_else(|e| panic!("{e}")),
            service_token: ServiceToken::new("st-secret"),
            pass_token: Some(PassToken::new("V1:pt-secret")),
            device_id: id,
            region: Some("de".into()),
            account: Some("me@example.com".into()),
            logged_in_at: 1,
            saved_at: 2,
            refreshes: 0,
        };
        store.save(&s).unwrap_or_else(|e| panic!("{e}"));
        let mode = std::fs::metadata(store.path())
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
        assert_eq!(store.load().ok().flatten(), Some(s.clone()));
        assert_eq!(s.region(), Some(Region::De));
        let dbg = format!("{s:?}");
        for secret in ["st-secret", "pt-secret", "rmiKudqfR0nPsTBl"] {
            assert!(!dbg.contains(secret), "{dbg}");
        }
        assert!(store.remove().unwrap_or(false));
        assert!(!store.remove().unwrap_or(true));
    }
}
