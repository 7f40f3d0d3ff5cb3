//! Locked read-modify-write of the small JSON state files (grants,
//! approvals): take the lock, re-read, change, write atomically with mode
//! 0600. A file that does not parse is an error, never silently replaced:
//! these files hold the user's decisions.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::AgentError;
use crate::home::fsutil::{self, FileLock, DEFAULT_LOCK_TIMEOUT, PRIVATE_MODE};

/// Reads `path`, or the default when it does not exist.
pub fn read<T: DeserializeOwned + Default>(path: &Path) -> Result<T, AgentError> {
    match fsutil::read_optional(path)? {
        None => Ok(T::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| AgentError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

/// Locked, re-read, changed, written atomically (only when `change`
/// returns Ok).
pub fn update<T, R>(
    path: &Path,
    change: impl FnOnce(&mut T) -> Result<R, AgentError>,
) -> Result<R, AgentError>
where
    T: DeserializeOwned + Serialize + Default,
{
    if let Some(dir) = path.parent() {
        fsutil::create_private_dir(dir)?;
    }
    let _lock = FileLock::acquire(path, DEFAULT_LOCK_TIMEOUT)?;
    let mut value: T = read(path)?;
    let out = change(&mut value)?;
    let mut bytes = serde_json::to_vec_pretty(&value).map_err(|e| AgentError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    bytes.push(b'\n');
    fsutil::write_atomic(path, &bytes, PRIVATE_MODE)?;
    Ok(out)
}
