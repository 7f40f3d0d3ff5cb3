//! The agent policy: `config/policy.toml`.
//!
//! Fail-closed: with no file, or an empty one, nothing is exposed and an
//! assistant sees no device. The user changes it with `mijia policy …`
//! (never through a tool); the server re-reads it on every call, so a
//! change applies at once.
//!
//! ```toml
//! [expose]
//! all = false                      # every device in the registry
//! devices = ["Desk lamp"]          # by name (case-insensitive)
//! rooms = ["Bedroom"]              # every device in these rooms
//! scenes = ["movie-night"]         # scenes run_scene may run (by name)
//!
//! [caps.devices]                   # highest tier allowed, per device…
//! "Front door" = "read"
//! [caps.rooms]                     # …or per room (a device cap wins)
//! Kids = "control"
//!
//! [tools]
//! generic = false                  # set_property / run_action
//!
//! [timing]
//! confirm_timeout = "30s"          # how long a confirmation may take
//! grant_ttl = "8h"                 # how long a capability grant lasts
//! approval_ttl = "10m"             # how long a pending approval waits
//! ```
//!
//! Scenes are shared only by name (`all` covers devices, not scenes), and a
//! shared scene runs only while every device it touches is exposed too
//! (see [`super::scenes`]).
//!
//! Unknown keys are rejected. Writes go through [`Policy::update`]: locked,
//! re-read, changed, written atomically.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::clock::{format_duration, parse_duration};
use super::tier::Tier;
use super::AgentError;
use crate::home::fsutil::{self, FileLock, DEFAULT_LOCK_TIMEOUT};
use crate::home::Paths;

/// The policy file name, in the config directory.
pub const POLICY_FILE: &str = "policy.toml";
/// Default time a confirmation may take before it is denied.
pub const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// Default lifetime of a capability grant.
pub const DEFAULT_GRANT_TTL: Duration = Duration::from_secs(8 * 3600);
/// Default lifetime of a pending out-of-band approval.
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(600);

const HEADER: &str = "\
# mijia agent policy: what MCP clients may see and do.
# Change it with `mijia policy ...`; see `mijia policy --help`.
# Nothing is exposed unless listed here (or all = true).

";

/// `config/policy.toml`.
pub fn policy_file(paths: &Paths) -> PathBuf {
    paths.config_dir.join(POLICY_FILE)
}

/// The whole policy.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// What is exposed.
    pub expose: Exposure,
    /// Tier caps.
    pub caps: Caps,
    /// Optional tools.
    pub tools: ToolSwitches,
    /// Timeouts and lifetimes.
    pub timing: Timing,
}

/// Which devices an assistant may see.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Exposure {
    /// Every device.
    pub all: bool,
    /// Device names.
    pub devices: Vec<String>,
    /// Room names.
    pub rooms: Vec<String>,
    /// Scene names (`run_scene`); every device a scene touches must be
    /// exposed as well.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scenes: Vec<String>,
}

/// The highest tier allowed per device or room.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Caps {
    /// By device name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub devices: BTreeMap<String, Tier>,
    /// By room name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rooms: BTreeMap<String, Tier>,
}

/// Tools that are off unless turned on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolSwitches {
    /// `set_property` and `run_action`.
    pub generic: bool,
}

/// Timeouts and lifetimes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    /// How long the user has to answer a confirmation.
    #[serde(with = "duration_text")]
    pub confirm_timeout: Duration,
    /// How long a capability grant lasts.
    #[serde(with = "duration_text")]
    pub grant_ttl: Duration,
    /// How long a pending approval waits for `mijia approve`.
    #[serde(with = "duration_text")]
    pub approval_ttl: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            confirm_timeout: DEFAULT_CONFIRM_TIMEOUT,
            grant_ttl: DEFAULT_GRANT_TTL,
            approval_ttl: DEFAULT_APPROVAL_TTL,
        }
    }
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => super::parse_duration(&t).map_err(serde::de::Error::custom),
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
        }
    }
}

fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The settings `mijia policy set KEY VALUE` can change.
pub const SETTABLE: &[&str] = &["confirm-timeout", "grant-ttl", "approval-ttl"];

impl Policy {
    /// Reads the policy. A missing file is the default (nothing exposed).
    pub fn load(paths: &Paths) -> Result<Policy, AgentError> {
        let path = policy_file(paths);
        let Some(bytes) = fsutil::read_optional(&path)? else {
            return Ok(Policy::default());
        };
        Self::parse(&bytes).map_err(|detail| AgentError::Corrupt { path, detail })
    }

    /// Parses the text of a policy file.
    pub fn parse(bytes: &[u8]) -> Result<Policy, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
        let p: Policy = toml::from_str(text).map_err(|e| e.message().trim().to_string())?;
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<(), String> {
        for (name, tier) in self.caps.devices.iter().chain(&self.caps.rooms) {
            if *tier == Tier::Forbidden {
                return Err(format!(
                    "cap for '{name}' is 'forbidden'; use read, control or sensitive"
                ));
            }
        }
        if self.timing.confirm_timeout.is_zero() {
            return Err("confirm_timeout must be more than 0s".into());
        }
        Ok(())
    }

    /// The policy as the text of `policy.toml`, header included.
    pub fn to_toml(&self) -> Result<String, AgentError> {
        let body = toml::to_string(self).map_err(|e| AgentError::Corrupt {
            path: PathBuf::from(POLICY_FILE),
            detail: e.to_string(),
        })?;
        Ok(format!("{HEADER}{}\n", body.trim_end()))
    }

    /// Changes the policy on disk: locked, re-read, changed, checked,
    /// written atomically. Nothing is written if `change` fails.
    pub fn update<T>(
        paths: &Paths,
        change: impl FnOnce(&mut Policy) -> Result<T, AgentError>,
    ) -> Result<T, AgentError> {
        let path = policy_file(paths);
        fsutil::create_private_dir(&paths.config_dir)?;
        let _lock = FileLock::acquire(&path, DEFAULT_LOCK_TIMEOUT)?;
        let mut policy = Self::load(paths)?;
        let before = policy.clone();
        let out = change(&mut policy)?;
        if policy != before {
            policy.check().map_err(AgentError::Usage)?;
            let text = policy.to_toml()?;
            fsutil::write_atomic(&path, text.as_bytes(), 0o600)?;
        }
        Ok(out)
    }

    /// Whether a device (by name and room) is exposed.
    pub fn is_exposed(&self, name: &str, room: Option<&str>) -> bool {
        self.expose.all
            || self.expose.devices.iter().any(|d| same(d, name))
            || room.is_some_and(|r| self.expose.rooms.iter().any(|x| same(x, r)))
    }

    /// Whether a scene is shared by name (its devices are checked apart).
    pub fn is_scene_exposed(&self, name: &str) -> bool {
        self.expose.scenes.iter().any(|s| same(s, name))
    }

    /// Whether anything at all is exposed.
    pub fn exposes_anything(&self) -> bool {
        self.expose.all || !self.expose.devices.is_empty() || !self.expose.rooms.is_empty()
    }

    /// The highest tier allowed on a device: its own cap, else its room's,
    /// else `sensitive` (everything, with confirmation).
    pub fn cap_for(&self, name: &str, room: Option<&str>) -> Tier {
        let by_device = self
            .caps
            .devices
            .iter()
            .find(|(d, _)| same(d, name))
            .map(|(_, t)| *t);
        let by_room = room.and_then(|r| {
            self.caps
                .rooms
                .iter()
                .find(|(x, _)| same(x, r))
                .map(|(_, t)| *t)
        });
        by_device.or(by_room).unwrap_or(Tier::Sensitive)
    }

    /// Exposes a device by name (no-op if already listed).
    pub fn expose_device(&mut self, name: &str) {
        if !self.expose.devices.iter().any(|d| same(d, name)) {
            self.expose.devices.push(name.trim().to_string());
        }
    }

    /// Exposes a room.
    pub fn expose_room(&mut self, room: &str) {
        if !self.expose.rooms.iter().any(|r| same(r, room)) {
            self.expose.rooms.push(room.trim().to_string());
        }
    }

    /// Shares a scene by name.
    pub fn expose_scene(&mut self, name: &str) {
        if !self.is_scene_exposed(name) {
            self.expose.scenes.push(name.trim().to_string());
        }
    }

    /// Stops sharing a scene; true if it was listed.
    pub fn unexpose_scene(&mut self, name: &str) -> bool {
        let n = self.expose.scenes.len();
        self.expose.scenes.retain(|s| !same(s, name));
        n != self.expose.scenes.len()
    }

    /// Removes a device from the exposed list; true if it was listed.
    pub fn unexpose_device(&mut self, name: &str) -> bool {
        let n = self.expose.devices.len();
        self.expose.devices.retain(|d| !same(d, name));
        n != self.expose.devices.len()
    }

    /// Removes a room; true if it was listed.
    pub fn unexpose_room(&mut self, room: &str) -> bool {
        let n = self.expose.rooms.len();
        self.expose.rooms.retain(|r| !same(r, room));
        n != self.expose.rooms.len()
    }

    /// Sets a device's cap (replacing any spelling of the same name).
    pub fn set_device_cap(&mut self, name: &str, tier: Tier) {
        self.caps.devices.retain(|d, _| !same(d, name));
        self.caps.devices.insert(name.trim().to_string(), tier);
    }

    /// Sets a room's cap.
    pub fn set_room_cap(&mut self, room: &str, tier: Tier) {
        self.caps.rooms.retain(|r, _| !same(r, room));
        self.caps.rooms.insert(room.trim().to_string(), tier);
    }

    /// `mijia policy set KEY VALUE`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), AgentError> {
        let d = parse_duration(value).map_err(AgentError::Usage)?;
        match key.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "confirm-timeout" => {
                if d.is_zero() {
                    return Err(AgentError::Usage(
                        "confirm-timeout must be more than 0s".into(),
                    ));
                }
                self.timing.confirm_timeout = d;
            }
            "grant-ttl" => self.timing.grant_ttl = d,
            "approval-ttl" => self.timing.approval_ttl = d,
            other => {
                return Err(AgentError::Usage(format!(
                    "unknown policy setting '{other}'; settable: {}",
                    SETTABLE.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// A few lines for people (`mijia policy show`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let list = |v: &[String]| {
            if v.is_empty() {
                "(none)".to_string()
            } else {
                v.join(", ")
            }
        };
        if self.expose.all {
            out.push_str("Exposed: every device (--all)\n");
        } else if !self.exposes_anything() {
            out.push_str(
                "Exposed: nothing — assistants see no device. \
                 Expose some with `mijia policy expose NAME` or `--room ROOM`.\n",
            );
        } else {
            out.push_str(&format!(
                "Exposed devices: {}\n",
                list(&self.expose.devices)
            ));
            out.push_str(&format!("Exposed rooms:   {}\n", list(&self.expose.rooms)));
        }
        out.push_str(&format!(
            "Exposed scenes:  {}{}\n",
            list(&self.expose.scenes),
            if self.expose.scenes.is_empty() {
                " (share one with `mijia policy expose --scene NAME`)"
            } else {
                " (each runs only while all its devices are exposed)"
            }
        ));
        if !self.caps.devices.is_empty() || !self.caps.rooms.is_empty() {
            out.push_str("Tier caps:\n");
            for (d, t) in &self.caps.devices {
                out.push_str(&format!("  device {d}: {t}\n"));
            }
            for (r, t) in &self.caps.rooms {
                out.push_str(&format!("  room {r}: {t}\n"));
            }
        } else {
            out.push_str("Tier caps: none (sensitive actions allowed with confirmation)\n");
        }
        out.push_str(&format!(
            "Generic tools (set_property, run_action): {}\n",
            if self.tools.generic { "on" } else { "off" }
        ));
        out.push_str(&format!(
            "Confirmation timeout: {}; grants last {}; approvals wait {}\n",
            format_duration(self.timing.confirm_timeout),
            format_duration(self.timing.grant_ttl),
            format_duration(self.timing.approval_ttl)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_exposes_nothing() {
        let p = Policy::default();
        assert!(!p.exposes_anything());
        assert!(!p.is_exposed("Desk lamp", Some("Office")));
        assert_eq!(p.timing.confirm_timeout, Duration::from_secs(30));
    }

    #[test]
    fn parse_and_round_trip() {
        let text = r#"
            [expose]
            devices = ["Desk lamp"]
            rooms = ["bedroom"]
            [caps.devices]
            "Front door" = "read"
            [caps.rooms]
            Bedroom = "control"
            [tools]
            generic = true
            [timing]
            confirm_timeout = "2s"
            grant_ttl = 60
        "#;
        let p = Policy::parse(text.as_bytes()).unwrap();
        assert!(p.is_exposed("desk LAMP", None));
        assert!(p.is_exposed("Heater", Some("Bedroom")));
        assert!(!p.is_exposed("Heater", Some("Hall")));
        assert_eq!(p.cap_for("front door", None), Tier::Read);
        assert_eq!(p.cap_for("Heater", Some("bedroom")), Tier::Control);
        assert_eq!(p.cap_for("Heater", Some("Hall")), Tier::Sensitive);
        assert_eq!(p.timing.grant_ttl, Duration::from_secs(60));
        let again = Policy::parse(p.to_toml().unwrap().as_bytes()).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn rejects_bad_files() {
        assert!(Policy::parse(b"[expose]\nal = true\n").is_err());
        assert!(Policy::parse(b"[caps.devices]\nx = \"forbidden\"\n").is_err());
        assert!(Policy::parse(b"[timing]\nconfirm_timeout = \"0s\"\n").is_err());
        assert!(Policy::parse(b"[timing]\nconfirm_timeout = \"soon\"\n").is_err());
    }

    #[test]
    fn settings() {
        let mut p = Policy::default();
        p.set("confirm-timeout", "45s").unwrap();
        assert_eq!(p.timing.confirm_timeout, Duration::from_secs(45));
        p.set("grant_ttl", "1h").unwrap();
        assert_eq!(p.timing.grant_ttl, Duration::from_secs(3600));
        assert!(p.set("confirm-timeout", "0").is_err());
        assert!(p.set("colour", "1s").is_err());
        p.expose_device("Lamp");
        p.expose_device("lamp");
        assert_eq!(p.expose.devices.len(), 1);
        assert!(p.unexpose_device("LAMP"));
        assert!(!p.exposes_anything());
        p.expose_scene("Movie-Night");
        p.expose_scene("movie-night");
        assert_eq!(p.expose.scenes, ["Movie-Night"]);
        assert!(p.is_scene_exposed("MOVIE-night"));
        assert!(!p.is_scene_exposed("lights-out"));
        let again = Policy::parse(p.to_toml().unwrap().as_bytes()).unwrap();
        assert_eq!(again, p);
        assert!(p.unexpose_scene("movie-NIGHT"));
        assert!(!p.unexpose_scene("movie-night"));
        assert!(
            !p.to_toml().unwrap().contains("scenes"),
            "files without scenes stay as they were"
        );
    }
}
