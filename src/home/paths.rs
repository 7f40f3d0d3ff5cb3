//! Where mijia keeps its files.
//!
//! `MIJIA_HOME` moves everything (config in `$MIJIA_HOME/config`, state in
//! `$MIJIA_HOME/state`); otherwise the XDG base directories are used:
//! config in `$XDG_CONFIG_HOME/mijia` (default `~/.config/mijia`), state in
//! `$XDG_STATE_HOME/mijia` (default `~/.local/state/mijia`). This module only
//! computes paths; it creates nothing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::HomeError;

/// The device registry, in the config directory. Holds tokens (mode 0600).
pub const DEVICES_FILE: &str = "devices.toml";
/// Request id counters, in the state directory.
pub const IDS_FILE: &str = "ids.json";
/// When each device last answered, in the state directory.
pub const SEEN_FILE: &str = "devices-seen.json";
/// File name of the learnt batch sizes, in the state directory.
pub const BATCHES_FILE: &str = "batch-sizes.json";

/// The config and state directories of one home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// User-edited configuration: the device registry (and later rooms, policy).
    pub config_dir: PathBuf,
    /// Regenerable state: request ids, last-seen times, sessions.
    pub state_dir: PathBuf,
}

impl Paths {
    /// The paths for this process, from `MIJIA_HOME`, the XDG variables and `HOME`.
    pub fn from_env() -> Result<Paths, HomeError> {
        Self::from_lookup(|key| std::env::var_os(key))
    }

    /// The paths given a way to look up environment variables (pure, for tests).
    ///
    /// Empty variables count as unset; relative XDG paths are ignored, as the
    /// XDG base directory specification requires. `MIJIA_HOME` is used as given.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Paths, HomeError> {
        let var = |key: &str| lookup(key).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(root) = var("MIJIA_HOME") {
            return Ok(Paths::at(root));
        }
        let xdg = |key: &str| var(key).filter(|p| p.is_absolute());
        let home = var("HOME");
        let under_home = |rel: &str| home.as_ref().map(|h| h.join(rel));
        let config_base = xdg("XDG_CONFIG_HOME")
            .or_else(|| under_home(".config"))
            .ok_or(HomeError::NoHomeDir)?;
        let state_base = xdg("XDG_STATE_HOME")
            .or_else(|| under_home(".local/state"))
            .ok_or(HomeError::NoHomeDir)?;
        Ok(Paths {
            config_dir: config_base.join("mijia"),
            state_dir: state_base.join("mijia"),
        })
    }

    /// A self-contained home under `root` (what `MIJIA_HOME=root` gives).
    pub fn at(root: impl AsRef<Path>) -> Paths {
        let root = root.as_ref();
        Paths {
            config_dir: root.join("config"),
            state_dir: root.join("state"),
        }
    }

    /// `config/devices.toml`: the device registry.
    pub fn devices_file(&self) -> PathBuf {
        self.config_dir.join(DEVICES_FILE)
    }

    /// `state/ids.json`: request id counters.
    pub fn ids_file(&self) -> PathBuf {
        self.state_dir.join(IDS_FILE)
    }

    /// `state/devices-seen.json`: last-seen times.
    pub fn seen_file(&self) -> PathBuf {
        self.state_dir.join(SEEN_FILE)
    }

    /// `state/batch-sizes.json`: `get_properties` batch sizes learnt from
    /// devices that refused larger ones.
    pub fn batches_file(&self) -> PathBuf {
        self.state_dir.join(BATCHES_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)]) -> Result<Paths, HomeError> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Paths::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn mijia_home_moves_everything() {
        let p = resolve(&[
            ("MIJIA_HOME", "/srv/home2"),
            ("HOME", "/home/u"),
            ("XDG_CONFIG_HOME", "/x/config"),
        ])
        .unwrap();
        assert_eq!(p.config_dir, PathBuf::from("/srv/home2/config"));
        assert_eq!(p.state_dir, PathBuf::from("/srv/home2/state"));
        assert_eq!(
            p.devices_file(),
            PathBuf::from("/srv/home2/config/devices.toml")
        );
        assert_eq!(p.ids_file(), PathBuf::from("/srv/home2/state/ids.json"));
        assert_eq!(p, Paths::at("/srv/home2"));
    }

    #[test]
    fn xdg_then_home_defaults() {
        let p = resolve(&[("HOME", "/home/u")]).unwrap();
        assert_eq!(p.config_dir, PathBuf::from("/home/u/.config/mijia"));
        assert_eq!(p.state_dir, PathBuf::from("/home/u/.local/state/mijia"));

        let p = resolve(&[
            ("HOME", "/home/u"),
            ("XDG_CONFIG_HOME", "/c"),
            ("XDG_STATE_HOME", "/s"),
        ])
        .unwrap();
        assert_eq!(p.config_dir, PathBuf::from("/c/mijia"));
        assert_eq!(p.state_dir, PathBuf::from("/s/mijia"));
    }

    #[test]
    fn empty_and_relative_values_are_ignored() {
        let p = resolve(&[
            ("MIJIA_HOME", ""),
            ("HOME", "/home/u"),
            ("XDG_CONFIG_HOME", "relative/dir"),
            ("XDG_STATE_HOME", ""),
        ])
        .unwrap();
        assert_eq!(p.config_dir, PathBuf::from("/home/u/.config/mijia"));
        assert_eq!(p.state_dir, PathBuf::from("/home/u/.local/state/mijia"));
    }

    #[test]
    fn no_home_is_a_helpful_error() {
        let e = resolve(&[]).unwrap_err();
        assert!(matches!(e, HomeError::NoHomeDir));
        assert!(e.to_string().contains("MIJIA_HOME"), "{e}");
        // XDG alone is enough.
        let p = resolve(&[("XDG_CONFIG_HOME", "/c"), ("XDG_STATE_HOME", "/s")]).unwrap();
        assert_eq!(p.state_dir, PathBuf::from("/s/mijia"));
    }
}
