//! Crash-safe file writes and cross-process locks.
//!
//! [`write_atomic`] replaces a file so that readers (and a crash at any point)
//! see either the old bytes or the new ones, never a mix; the new file has its
//! final mode from the moment it exists. [`FileLock`] is an advisory `flock`
//! on a `*.lock` file beside the target so that concurrent `mijia` processes
//! can read-modify-write without losing updates. Neither parses anything.

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::HomeError;

/// Mode of directories this module creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of files holding secrets (and of everything else we write).
pub const PRIVATE_MODE: u32 = 0o600;
/// How long [`FileLock::acquire`] waits by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates `dir` and any missing parents with mode 0700. Existing
/// directories are left as they are.
pub fn create_private_dir(dir: &Path) -> Result<(), HomeError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| HomeError::io("create directory", dir, e))
}

/// The contents of `path`, or `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, HomeError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HomeError::io("read", path, e)),
    }
}

/// Replaces `path` with `bytes`, atomically.
///
/// Parent directories are created with mode 0700. The bytes go to a fresh
/// temporary file in the same directory, created with `mode` (less the
/// umask) from the start, flushed to disk, renamed over `path`, and the
/// directory is flushed. On any error the temporary file is removed and
/// `path` is untouched. If `path` is a symlink, the file it points to is
/// replaced and the link kept.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), HomeError> {
    let target = follow_symlink(path)?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            HomeError::io(
                "write",
                &target,
                io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
            )
        })?;
    create_private_dir(&dir)?;

    let (tmp_path, mut file) = create_temp(&dir, &name, mode)?;
    let mut tmp = TempFile(Some(tmp_path.clone()));
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| HomeError::io("write", &tmp_path, e))?;
    drop(file);
    fs::rename(&tmp_path, &target).map_err(|e| HomeError::io("replace", &target, e))?;
    tmp.keep();
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| HomeError::io("flush directory", &dir, e))
}

/// The path a write to `path` should replace: the symlink's target if
/// `path` is a symlink, else `path` itself.
fn follow_symlink(path: &Path) -> Result<PathBuf, HomeError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            let link = fs::read_link(path).map_err(|e| HomeError::io("read link", path, e))?;
            Ok(match path.parent() {
                Some(parent) if link.is_relative() => parent.join(link),
                _ => link,
            })
        }
        _ => Ok(path.to_path_buf()),
    }
}

fn create_temp(dir: &Path, name: &str, mode: u32) -> Result<(PathBuf, File), HomeError> {
    let mut last_err = None;
    for _ in 0..16 {
        let tmp = dir.join(format!(
            ".{name}.{}.{:08x}.tmp",
            std::process::id(),
            rand::random::<u32>()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(HomeError::io("create a temporary file in", dir, e)),
        }
    }
    let err = last_err.unwrap_or_else(|| io::Error::other("no free temporary name"));
    Err(HomeError::io("create a temporary file in", dir, err))
}

/// Removes the temporary file on drop unless [`TempFile::keep`] was called.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// An exclusive advisory lock (`flock`) on `<target>.lock`, held until drop.
///
/// The lock file itself is never deleted (deleting it would let two
/// processes lock different files). The kernel releases the lock when the
/// process exits, so a crash never leaves a stale lock behind. Each
/// `FileLock` opens its own file description, so threads of one process
/// exclude each other too.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// The lock file guarding `target`: `target` with `.lock` appended.
    pub fn lock_path_for(target: &Path) -> PathBuf {
        let mut s = target.as_os_str().to_os_string();
        s.push(".lock");
        PathBuf::from(s)
    }

    /// Locks `target`, waiting up to `timeout` for other holders.
    pub fn acquire(target: &Path, timeout: Duration) -> Result<FileLock, HomeError> {
        let path = Self::lock_path_for(target);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE_MODE)
            .open(&path)
            .map_err(|e| HomeError::io("open lock file", &path, e))?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match try_lock(&file) {
                Ok(()) => return Ok(FileLock { _file: file, path }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(HomeError::io("lock", &path, e)),
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(HomeError::LockTimeout { path, waited });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

// `File::try_lock` (stable since Rust 1.89) is `flock(LOCK_EX | LOCK_NB)` on
// Unix; it keeps this crate free of `unsafe`, which the workspace forbids.
#[allow(clippy::incompatible_msrv)]
fn try_lock(file: &File) -> Result<(), TryLockError> {
    file.try_lock()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn creates_private_dirs_and_file_with_mode() {
        let tmp = tempfile::TempDir::new().unwrap();
        let path = tmp.path().join("a/b/secret.toml");
        write_atomic(&path, b"one", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&tmp.path().join("a")), 0o700);
        assert_eq!(mode_of(&tmp.path().join("a/b")), 0o700);

        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(entries(&tmp.path().join("a/b")), vec!["secret.toml"]);
    }

    #[test]
    fn replacing_a_loose_file_tightens_its_mode() {
        let tmp = tempfile::TempDir::new().unwrap();
        let path = tmp.path().join("devices.toml");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn failed_write_leaves_target_and_no_temp_files() {
        let tmp = tempfile::TempDir::new().unwrap();
        // The target is a directory, so the final rename fails.
        let path = tmp.path().join("target");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inner"), "x").unwrap();
        let err = write_atomic(&path, b"data", 0o600).unwrap_err();
        assert!(
            matches!(
                err,
                HomeError::Io {
                    action: "replace",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(entries(tmp.path()), vec!["target"]);
        assert_eq!(fs::read(path.join("inner")).unwrap(), b"x");
    }

    #[test]
    fn writes_through_a_symlink() {
        let tmp = tempfile::TempDir::new().unwrap();
        let real = tmp.path().join("real.toml");
        fs::write(&real, "old").unwrap();
        let link = tmp.path().join("link.toml");
        std::os::unix::fs::symlink("real.toml", &link).unwrap();
        write_atomic(&link, b"new", 0o600).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
    }

    #[test]
    fn lock_excludes_until_dropped() {
        let tmp = tempfile::TempDir::new().unwrap();
        let target = tmp.path().join("state/ids.json");
        let held = FileLock::acquire(&target, DEFAULT_LOCK_TIMEOUT).unwrap();
        assert_eq!(held.path(), tmp.path().join("state/ids.json.lock"));
        assert_eq!(mode_of(held.path()), 0o600);

        let err = FileLock::acquire(&target, Duration::from_millis(60)).unwrap_err();
        assert!(matches!(err, HomeError::LockTimeout { .. }), "{err}");
        assert!(err.to_string().contains("locked by another mijia process"));

        drop(held);
        FileLock::acquire(&target, Duration::from_millis(60)).unwrap();
    }

    #[test]
    fn lock_waits_for_a_short_holder() {
        let tmp = tempfile::TempDir::new().unwrap();
        let target = tmp.path().join("f");
        let held = FileLock::acquire(&target, DEFAULT_LOCK_TIMEOUT).unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(held);
        });
        FileLock::acquire(&target, Duration::from_secs(5)).unwrap();
        t.join().unwrap();
    }
}
