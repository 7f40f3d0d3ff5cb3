//! The device registry: named devices with their address, token, model and
//! room, kept in `config/devices.toml`.
//!
//! This module loads and validates the registry and changes it in memory;
//! [`Registry::update`] is the only way it reaches the disk (locked,
//! re-read, changed, validated, written atomically with mode 0600). It does
//! not talk to devices and does not know about specs or routes.
//!
//! # File format
//!
//! ```toml
//! [[device]]
//! name = "Desk lamp"
//! room = "Office"                    # optional
//! model = "yeelink.light.color1"     # optional
//! ip = "192.168.1.20"
//! port = 54321                       # optional, default 54321
//! did = "123456789"                  # optional; a string (an integer is accepted)
//! token = "00112233445566778899aabbccddeeff"
//! added = 1714000000                 # optional, unix seconds
//! ```
//!
//! Unknown keys are rejected (a typo would otherwise be dropped silently on
//! the next write). Comments are not preserved when mijia rewrites the file.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use mijia_proto::miio::{Token, DEFAULT_PORT};
use serde::{Deserialize, Serialize};

use super::fsutil::{self, FileLock, DEFAULT_LOCK_TIMEOUT, PRIVATE_MODE};
use super::{HomeError, Paths};

/// The longest allowed device or room name, in characters.
pub const MAX_NAME_LEN: usize = 64;

const HEADER: &str = "\
# mijia device registry: one [[device]] table per device.
# This file holds device tokens: keep it private (mode 0600).
# mijia rewrites it on every change; comments below this header are not kept.

";

/// One device of the home. `Debug` never shows the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// The user's name for it, unique in the home (case-insensitive).
    pub name: String,
    /// The room it is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The model, e.g. `yeelink.light.color1`, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Its LAN address.
    pub ip: IpAddr,
    /// Its miIO port when not the default 54321.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The device id, once known (from the handshake or the cloud).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "did_text")]
    pub did: Option<u64>,
    /// The miIO token (secret).
    pub token: Token,
    /// When it was added, in unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<u64>,
}

impl DeviceEntry {
    /// An entry with only the required fields set.
    pub fn new(name: impl Into<String>, ip: IpAddr, token: Token) -> Self {
        DeviceEntry {
            name: name.into(),
            room: None,
            model: None,
            ip,
            port: None,
            did: None,
            token,
            added: None,
        }
    }

    /// The UDP address to talk to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port.unwrap_or(DEFAULT_PORT))
    }
}

/// All devices of one home. `Debug` never shows tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    devices: Vec<DeviceEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    #[serde(default)]
    device: Vec<DeviceEntry>,
}

#[derive(Serialize)]
struct FileOut<'a> {
    device: &'a [DeviceEntry],
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Reads `config/devices.toml`. A missing file is an empty registry; a
    /// file that does not parse or validate is [`HomeError::Corrupt`].
    pub fn load(paths: &Paths) -> Result<Registry, HomeError> {
        Self::load_file(&paths.devices_file())
    }

    fn load_file(path: &Path) -> Result<Registry, HomeError> {
        let Some(bytes) = fsutil::read_optional(path)? else {
            return Ok(Registry::new());
        };
        warn_if_readable_by_others(path);
        let corrupt = |detail: String| HomeError::Corrupt {
            path: path.to_path_buf(),
            detail,
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            corrupt(format!(
                "it is not UTF-8 text (bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Registry::parse(&text).map_err(corrupt)
    }

    /// Parses the text of a registry file and validates it. The error is a
    /// one-line description with the line and column when known; it never
    /// quotes the file's lines (they may hold tokens).
    pub fn parse(text: &str) -> Result<Registry, String> {
        let file: FileIn = toml::from_str(text).map_err(|e| {
            let msg = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            match e.span() {
                Some(span) => {
                    let (line, col) = line_col(text, span.start);
                    format!("line {line}, column {col}: {msg}")
                }
                None => msg.to_string(),
            }
        })?;
        let reg = Registry {
            devices: file.device,
        };
        match reg.flaw() {
            Some(flaw) => Err(flaw.describe(&reg)),
            None => Ok(reg),
        }
    }

    /// The registry as the text of `devices.toml`, header included.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let body = toml::to_string(&FileOut {
            device: &self.devices,
        })?;
        Ok(format!("{HEADER}{}\n", body.trim_end()))
    }

    /// Changes the registry on disk: takes the lock, re-reads the file,
    /// applies `change`, validates the result and writes it atomically with
    /// mode 0600. Nothing is written if `change` fails, if the result is
    /// invalid, if nothing changed, or if the file on disk is corrupt. This
    /// is the only write path, so concurrent writers never lose an update.
    pub fn update<T>(
        paths: &Paths,
        change: impl FnOnce(&mut Registry) -> Result<T, HomeError>,
    ) -> Result<T, HomeError> {
        let path = paths.devices_file();
        let _lock = FileLock::acquire(&path, DEFAULT_LOCK_TIMEOUT)?;
        let before = Self::load_file(&path)?;
        let mut reg = before.clone();
        let out = change(&mut reg)?;
        if reg != before {
            if let Some(flaw) = reg.flaw() {
                return Err(flaw.into_error(&reg));
            }
            let text = reg.to_toml().map_err(|e| HomeError::Encode {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            fsutil::write_atomic(&path, text.as_bytes(), PRIVATE_MODE)?;
        }
        Ok(out)
    }

    /// The devices, in the order they were added.
    pub fn devices(&self) -> &[DeviceEntry] {
        &self.devices
    }

    /// How many devices there are.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// True if there are no devices.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Adds a device. Fails if the name (or a room) breaks the naming rules,
    /// if the name is taken (case-insensitively), or if its did is already
    /// registered. An existing room spelled differently is respelled to match.
    pub fn add(&mut self, mut entry: DeviceEntry) -> Result<(), HomeError> {
        validate_name("device", &entry.name)?;
        if let Some(existing) = self.position(&entry.name).map(|i| &self.devices[i]) {
            return Err(HomeError::DuplicateName {
                name: entry.name,
                existing: existing.name.clone(),
            });
        }
        if let Some(did) = entry.did {
            if let Some(existing) = self.find_by_did(did) {
                return Err(HomeError::DuplicateDid {
                    did,
                    existing: existing.name.clone(),
                });
            }
        }
        if let Some(room) = entry.room.take() {
            entry.room = Some(self.canonical_room(&room)?);
        }
        self.devices.push(entry);
        Ok(())
    }

    /// Removes a device and returns it.
    pub fn remove(&mut self, name: &str) -> Result<DeviceEntry, HomeError> {
        let i = self.require(name)?;
        Ok(self.devices.remove(i))
    }

    /// Renames a device. Changing only the case of a name is allowed.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), HomeError> {
        let i = self.require(old)?;
        validate_name("device", new)?;
        if let Some(j) = self.position(new).filter(|&j| j != i) {
            return Err(HomeError::DuplicateName {
                name: new.to_string(),
                existing: self.devices[j].name.clone(),
            });
        }
        self.devices[i].name = new.to_string();
        Ok(())
    }

    /// The device with this name (case-insensitive). The error lists close
    /// matches.
    pub fn get(&self, name: &str) -> Result<&DeviceEntry, HomeError> {
        let i = self.require(name)?;
        Ok(&self.devices[i])
    }

    /// The device with this name, to change it. [`Registry::update`]
    /// validates the result before writing.
    pub fn get_mut(&mut self, name: &str) -> Result<&mut DeviceEntry, HomeError> {
        let i = self.require(name)?;
        Ok(&mut self.devices[i])
    }

    /// Puts a device in a room (`None` takes it out of any room). A room
    /// that exists under another spelling keeps that spelling.
    pub fn set_room(&mut self, name: &str, room: Option<&str>) -> Result<(), HomeError> {
        let i = self.require(name)?;
        let room = match room {
            Some(r) => Some(self.canonical_room(r)?),
            None => None,
        };
        self.devices[i].room = room;
        Ok(())
    }

    /// The devices in a room (case-insensitive); empty if there are none.
    pub fn by_room(&self, room: &str) -> Vec<&DeviceEntry> {
        self.devices
            .iter()
            .filter(|d| d.room.as_deref().is_some_and(|r| eq_ci(r, room)))
            .collect()
    }

    /// The devices in a room, or [`HomeError::UnknownRoom`] naming the rooms
    /// that exist if there are none.
    pub fn in_room(&self, room: &str) -> Result<Vec<&DeviceEntry>, HomeError> {
        let found = self.by_room(room);
        if found.is_empty() {
            return Err(HomeError::UnknownRoom {
                room: room.to_string(),
                known: self.rooms().into_iter().map(str::to_string).collect(),
            });
        }
        Ok(found)
    }

    /// The rooms that have at least one device, sorted case-insensitively,
    /// each once.
    pub fn rooms(&self) -> Vec<&str> {
        let mut rooms: Vec<&str> = Vec::new();
        for r in self.devices.iter().filter_map(|d| d.room.as_deref()) {
            if !rooms.iter().any(|x| eq_ci(x, r)) {
                rooms.push(r);
            }
        }
        rooms.sort_by_key(|r| r.to_lowercase());
        rooms
    }

    /// The device with this did.
    pub fn find_by_did(&self, did: u64) -> Option<&DeviceEntry> {
        self.devices.iter().find(|d| d.did == Some(did))
    }

    /// The first device at this IP address.
    pub fn find_by_ip(&self, ip: IpAddr) -> Option<&DeviceEntry> {
        self.devices.iter().find(|d| d.ip == ip)
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.devices.iter().position(|d| eq_ci(&d.name, name))
    }

    fn require(&self, name: &str) -> Result<usize, HomeError> {
        self.position(name).ok_or_else(|| HomeError::UnknownDevice {
            name: name.to_string(),
            suggestions: suggest(name, self.devices.iter().map(|d| d.name.as_str())),
        })
    }

    fn canonical_room(&self, room: &str) -> Result<String, HomeError> {
        validate_name("room", room)?;
        Ok(self
            .rooms()
            .into_iter()
            .find(|r| eq_ci(r, room))
            .unwrap_or(room)
            .to_string())
    }

    /// The first problem that makes this registry unfit to be written.
    fn flaw(&self) -> Option<Flaw> {
        for (i, d) in self.devices.iter().enumerate() {
            if let Err(e) = validate_name("device", &d.name) {
                return Some(Flaw::BadName(i, e));
            }
            if let Some(Err(e)) = d.room.as_deref().map(|r| validate_name("room", r)) {
                return Some(Flaw::BadName(i, e));
            }
            if let Some(j) = self.devices[..i]
                .iter()
                .position(|o| eq_ci(&o.name, &d.name))
            {
                return Some(Flaw::SameName(j, i));
            }
            if let Some(did) = d.did {
                if let Some(j) = self.devices[..i].iter().position(|o| o.did == Some(did)) {
                    return Some(Flaw::SameDid(j, i, did));
                }
            }
        }
        None
    }
}

/// Why a registry cannot be written or loaded; indexes into `devices`.
enum Flaw {
    BadName(usize, HomeError),
    SameName(usize, usize),
    SameDid(usize, usize, u64),
}

impl Flaw {
    /// The error for a change that would produce this registry.
    fn into_error(self, reg: &Registry) -> HomeError {
        match self {
            Flaw::BadName(_, e) => e,
            Flaw::SameName(first, second) => HomeError::DuplicateName {
                name: reg.devices[second].name.clone(),
                existing: reg.devices[first].name.clone(),
            },
            Flaw::SameDid(first, _, did) => HomeError::DuplicateDid {
                did,
                existing: reg.devices[first].name.clone(),
            },
        }
    }

    /// The description for a file on disk that holds this registry.
    fn describe(&self, reg: &Registry) -> String {
        let nth = |i: usize| format!("[[device]] #{}", i + 1);
        match self {
            Flaw::BadName(i, e) => format!("{}: {e}", nth(*i)),
            Flaw::SameName(a, b) => format!(
                "{} and {} are both named '{}' (names are case-insensitive and must be unique)",
                nth(*a),
                nth(*b),
                reg.devices[*b].name
            ),
            Flaw::SameDid(a, b, did) => format!(
                "{} and {} both have did {did} (each device may appear once)",
                nth(*a),
                nth(*b)
            ),
        }
    }
}

/// Checks a device or room name against the naming rules: 1 to 64
/// characters, starting with a letter, then letters, digits, spaces, `-`
/// and `_`, not ending with a space.
pub fn validate_name(kind: &'static str, name: &str) -> Result<(), HomeError> {
    let reason = if name.is_empty() {
        Some("it is empty".to_string())
    } else if name.chars().count() > MAX_NAME_LEN {
        Some(format!("it is longer than {MAX_NAME_LEN} characters"))
    } else if !name.chars().next().is_some_and(char::is_alphabetic) {
        Some("it does not start with a letter".to_string())
    } else if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_alphanumeric() || c == ' ' || c == '-' || c == '_'))
    {
        Some(format!("it contains {c:?}"))
    } else if name.ends_with(' ') {
        Some("it ends with a space".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(HomeError::InvalidName {
            kind,
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

fn eq_ci(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// Up to three names close to `wanted`: same prefix or substring, or within
/// a small edit distance, best first.
fn suggest<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let w = wanted.to_lowercase();
    let limit = (w.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = names
        .filter_map(|n| {
            let l = n.to_lowercase();
            let d = edit_distance(&w, &l);
            if d <= limit {
                Some((d, n))
            } else if !w.is_empty() && (l.contains(&w) || w.contains(&l)) {
                Some((limit + 1, n))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "{} holds device tokens but has mode {mode:03o}; run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}

/// The did as a TOML string (TOML integers are signed 64-bit, dids are not);
/// an integer is accepted when reading.
mod did_text {
    use super::fmt;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(did: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match did {
            Some(d) => s.serialize_str(&d.to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(DidVisitor).map(Some)
    }

    struct DidVisitor;

    impl Visitor<'_> for DidVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a device id: a string of digits such as \"123456789\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.trim().parse().map_err(|_| {
                E::custom(format!(
                    "did must be a string of digits such as \"123456789\", got {v:?}"
                ))
            })
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom("did cannot be negative"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::Arc;

    const T1: &str = "00112233445566778899aabbccddeeff";
    const T2: &str = "ffeeddccbbaa99887766554433221100";

    fn entry(name: &str, ip: &str) -> DeviceEntry {
        DeviceEntry::new(name, ip.parse().unwrap(), T1.parse().unwrap())
    }

    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn home() -> (tempfile::TempDir, Paths) {
        let tmp = tempfile::TempDir::new().unwrap();
        let paths = Paths::at(tmp.path());
        (tmp, paths)
    }

    #[test]
    fn crud_in_memory() {
        let mut r = Registry::new();
        r.add(entry("Desk lamp", "10.0.0.2")).unwrap();
        let mut plug = entry("plug", "10.0.0.3");
        plug.did = Some(42);
        plug.room = Some("Kitchen".into());
        r.add(plug).unwrap();
        assert_eq!(r.len(), 2);

        assert_eq!(r.get("DESK LAMP").unwrap().name, "Desk lamp");
        assert_eq!(r.find_by_did(42).unwrap().name, "plug");
        assert_eq!(
            r.find_by_ip("10.0.0.2".parse().unwrap()).unwrap().name,
            "Desk lamp"
        );
        assert!(r.find_by_did(7).is_none());

        let e = r.add(entry("desk LAMP", "10.0.0.9")).unwrap_err();
        assert!(
            matches!(e, HomeError::DuplicateName { ref existing, .. } if existing == "Desk lamp")
        );
        let mut again = entry("other", "10.0.0.9");
        again.did = Some(42);
        assert!(matches!(
            r.add(again).unwrap_err(),
            HomeError::DuplicateDid { did: 42, .. }
        ));

        r.set_room("desk lamp", Some("kitchen")).unwrap();
        assert_eq!(r.get("Desk lamp").unwrap().room.as_deref(), Some("Kitchen"));
        r.set_room("plug", Some("Office")).unwrap();
        assert_eq!(r.rooms(), vec!["Kitchen", "Office"]);
        assert_eq!(r.by_room("KITCHEN").len(), 1);
        assert!(r.by_room("Attic").is_empty());
        let e = r.in_room("Attic").unwrap_err();
        assert!(e.to_string().contains("'Kitchen', 'Office'"), "{e}");

        r.rename("desk lamp", "Lamp").unwrap();
        r.rename("lamp", "LAMP").unwrap();
        assert_eq!(r.get("lamp").unwrap().name, "LAMP");
        assert!(matches!(
            r.rename("lamp", "Plug").unwrap_err(),
            HomeError::DuplicateName { .. }
        ));
        assert!(matches!(
            r.rename("lamp", "a.b").unwrap_err(),
            HomeError::InvalidName { .. }
        ));

        let removed = r.remove("plug").unwrap();
        assert_eq!(removed.did, Some(42));
        assert!(r.get("plug").is_err());
        r.set_room("lamp", None).unwrap();
        assert!(r.rooms().is_empty());
    }

    #[test]
    fn name_rules() {
        for ok in ["Lamp", "Living room lamp 2", "ночник", "a-b_c"] {
            validate_name("device", ok).unwrap();
        }
        for bad in [
            "",
            " lamp",
            "lamp ",
            "2lamp",
            "la.mp",
            "a=b",
            "x\ty",
            &"a".repeat(65),
        ] {
            let e = validate_name("device", bad).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("not a valid device name"), "{msg}");
            assert!(msg.contains("start with a letter"), "{msg}");
        }
        let mut r = Registry::new();
        let mut e = entry("lamp", "10.0.0.2");
        e.room = Some("Bad.room".into());
        assert!(matches!(
            r.add(e).unwrap_err(),
            HomeError::InvalidName { kind: "room", .. }
        ));
    }

    #[test]
    fn unknown_device_suggests_and_says_what_to_do() {
        let mut r = Registry::new();
        for n in ["Desk lamp", "Bedroom lamp", "Kettle"] {
            r.add(entry(n, "10.0.0.2")).unwrap();
        }
        match r.get("desk lmap").unwrap_err() {
            HomeError::UnknownDevice { suggestions, .. } => {
                assert_eq!(suggestions, vec!["Desk lamp"])
            }
            e => panic!("{e}"),
        }
        let e = r.get("lamp").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("'Bedroom lamp'") && msg.contains("'Desk lamp'"),
            "{msg}"
        );
        assert!(msg.contains("mijia device list"), "{msg}");
        assert!(msg.contains("mijia device add"), "{msg}");
        match r.get("fridge").unwrap_err() {
            HomeError::UnknownDevice { suggestions, .. } => assert!(suggestions.is_empty()),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn debug_never_shows_tokens() {
        let mut r = Registry::new();
        r.add(entry("lamp", "10.0.0.2")).unwrap();
        let dbg = format!("{r:?} {:?}", r.get("lamp").unwrap());
        assert!(!dbg.contains("00112233"), "{dbg}");
        assert!(dbg.contains("redacted"), "{dbg}");
    }

    #[test]
    fn persists_across_loads_with_private_modes() {
        let (_tmp, paths) = home();
        assert!(Registry::load(&paths).unwrap().is_empty());

        Registry::update(&paths, |r| {
            let mut e = entry("Lamp", "192.168.1.20");
            e.did = Some(u64::MAX);
            e.port = Some(54322);
            e.model = Some("yeelink.light.color1".into());
            e.room = Some("Office".into());
            e.added = Some(1_714_000_000);
            r.add(e)?;
            r.add(DeviceEntry::new(
                "Plug",
                "::1".parse().unwrap(),
                T2.parse().unwrap(),
            ))
        })
        .unwrap();

        let file = paths.devices_file();
        assert_eq!(mode_of(&file), 0o600);
        assert_eq!(mode_of(&paths.config_dir), 0o700);
        let text = fs::read_to_string(&file).unwrap();
        assert!(text.contains("[[device]]"), "{text}");
        assert!(text.contains(&format!("did = \"{}\"", u64::MAX)), "{text}");
        assert!(text.contains(&format!("token = \"{T1}\"")), "{text}");

        let r = Registry::load(&paths).unwrap();
        assert_eq!(r.len(), 2);
        let lamp = r.get("lamp").unwrap();
        assert_eq!(lamp.did, Some(u64::MAX));
        assert_eq!(lamp.addr(), "192.168.1.20:54322".parse().unwrap());
        assert_eq!(lamp.token.reveal(), T1);
        assert_eq!(lamp.added, Some(1_714_000_000));
        assert_eq!(r.get("plug").unwrap().addr().port(), DEFAULT_PORT);
        assert_eq!(r.get("plug").unwrap().token.reveal(), T2);

        // Round trip of the text is exact.
        assert_eq!(Registry::parse(&text).unwrap(), r);
        assert_eq!(r.to_toml().unwrap(), text);

        // Remove persists too.
        Registry::update(&paths, |r| r.remove("lamp").map(|_| ())).unwrap();
        assert_eq!(Registry::load(&paths).unwrap().len(), 1);
    }

    #[test]
    fn failed_change_writes_nothing() {
        let (_tmp, paths) = home();
        let e = Registry::update(&paths, |r| {
            r.add(entry("lamp", "10.0.0.2"))?;
            r.add(entry("LAMP", "10.0.0.3"))
        })
        .unwrap_err();
        assert!(matches!(e, HomeError::DuplicateName { .. }));
        assert!(!paths.devices_file().exists());

        // An invalid edit through get_mut is caught before writing.
        Registry::update(&paths, |r| r.add(entry("lamp", "10.0.0.2"))).unwrap();
        let before = fs::read(paths.devices_file()).unwrap();
        let e = Registry::update(&paths, |r| {
            r.add(entry("plug", "10.0.0.3"))?;
            r.get_mut("plug")?.name = "Lamp".into();
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(e, HomeError::DuplicateName { .. }), "{e}");
        assert_eq!(fs::read(paths.devices_file()).unwrap(), before);
    }

    #[test]
    fn hand_written_file_with_integer_did_loads() {
        let text = format!(
            "[[device]]\nname = \"Lamp\"\nip = \"10.0.0.2\"\ntoken = \"{T1}\"\ndid = 123\n"
        );
        let r = Registry::parse(&text).unwrap();
        assert_eq!(r.get("lamp").unwrap().did, Some(123));
        assert!(Registry::parse("").unwrap().is_empty());
    }

    #[test]
    fn corrupt_file_is_named_and_never_overwritten() {
        let (_tmp, paths) = home();
        fs::create_dir_all(&paths.config_dir).unwrap();
        let file = paths.devices_file();
        let bad = format!(
            "[[device]]\nname = \"Lamp\"\nip = \"10.0.0.2\"\ntoken = \"{T1}\"\nport = \"x\"\n"
        );
        fs::write(&file, &bad).unwrap();

        let e = Registry::load(&paths).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, HomeError::Corrupt { .. }));
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert!(msg.contains("line 5"), "{msg}");
        assert!(msg.contains("move it away"), "{msg}");
        assert!(!msg.contains(T1), "the token leaked into: {msg}");

        let e = Registry::update(&paths, |r| r.add(entry("plug", "10.0.0.3"))).unwrap_err();
        assert!(matches!(e, HomeError::Corrupt { .. }));
        assert_eq!(fs::read(&file).unwrap(), bad.as_bytes());
        // Nothing but the file and its lock in the directory.
        let mut names: Vec<_> = fs::read_dir(&paths.config_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["devices.toml", "devices.toml.lock"]);
    }

    #[test]
    fn semantic_problems_on_disk_are_corrupt() {
        let dup = format!(
            "[[device]]\nname = \"Lamp\"\nip = \"10.0.0.2\"\ntoken = \"{T1}\"\n\
             [[device]]\nname = \"lamp\"\nip = \"10.0.0.3\"\ntoken = \"{T1}\"\n"
        );
        let e = Registry::parse(&dup).unwrap_err();
        assert!(e.contains("#1 and [[device]] #2"), "{e}");
        let typo = format!("[[device]]\nname = \"Lamp\"\nip = \"10.0.0.2\"\ntokn = \"{T1}\"\n");
        let e = Registry::parse(&typo).unwrap_err();
        assert!(e.contains("line 4") && e.contains("tokn"), "{e}");
        assert!(!e.contains(T1), "{e}");
        let bad_token = "[[device]]\nname = \"Lamp\"\nip = \"10.0.0.2\"\ntoken = \"00zz\"\n";
        let e = Registry::parse(bad_token).unwrap_err();
        assert!(e.contains("32 hex characters"), "{e}");
        let e = Registry::parse("[[device]\nname = \"Lamp\"\n").unwrap_err();
        assert!(
            e.starts_with("line 1, column 9: ") && !e.contains('\n'),
            "{e}"
        );
    }

    #[test]
    fn non_utf8_file_is_corrupt() {
        let (_tmp, paths) = home();
        fs::create_dir_all(&paths.config_dir).unwrap();
        fs::write(paths.devices_file(), b"name = \"\xff\"").unwrap();
        let e = Registry::load(&paths).unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let (_tmp, paths) = home();
        let paths = Arc::new(paths);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let paths = Arc::clone(&paths);
                std::thread::spawn(move || {
                    for i in 0..10 {
                        Registry::update(&paths, |r| {
                            r.add(entry(&format!("dev-{t}-{i}"), &format!("10.0.{t}.{i}")))
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let r = Registry::load(&paths).unwrap();
        assert_eq!(r.len(), 80);
        for t in 0..8 {
            for i in 0..10 {
                r.get(&format!("dev-{t}-{i}")).unwrap();
            }
        }
        let mut names: Vec<_> = fs::read_dir(&paths.config_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["devices.toml", "devices.toml.lock"],
            "temp files left"
        );
    }
}
