//! `mijia cloud import`: the cloud's devices merged into the registry.
//!
//! Devices are matched by did (or, for an entry without a did, by token).
//! New devices are added with their cloud name (made valid and unique),
//! token, address, model and the room they have in the Mi Home app.
//! Existing entries get a changed token (tokens change when a device is
//! paired again) and a missing did or model.
//!
//! **Local edits are never lost.** `<state_dir>/cloud-import.json` records
//! the name, room and address each import wrote. A field that still holds
//! what the last import wrote follows the cloud; a field that differs (the
//! user renamed, moved or re-addressed the device), or an entry that no
//! import created, keeps the user's value and the report says what the
//! cloud had instead.
//!
//! [`merge`] is pure (a registry in memory); [`import`] runs it inside
//! [`Registry::update`] so it is locked and atomic.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::api::CloudDevice;
use super::CloudError;
use crate::home::fsutil::{self, PRIVATE_MODE};
use crate::home::registry::{validate_name, MAX_NAME_LEN};
use crate::home::{DeviceEntry, HomeError, Paths, Registry};

/// What the imports wrote, in the state directory.
pub const RECORD_FILE: &str = "cloud-import.json";

/// The values an import last wrote for one device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// The name written.
    pub name: String,
    /// The room written.
    #[serde(default)]
    pub room: Option<String>,
    /// The address written.
    pub ip: Option<IpAddr>,
    /// The region the device was listed in.
    #[serde(default)]
    pub region: Option<String>,
    /// The device's name in the cloud at that import.
    #[serde(default)]
    pub cloud_name: Option<String>,
}

/// What the imports wrote, by did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    /// By did (as text).
    pub devices: BTreeMap<String, Written>,
}

impl ImportRecord {
    fn path(paths: &Paths) -> PathBuf {
        paths.state_dir.join(RECORD_FILE)
    }

    /// The record of `paths`; missing or unreadable means empty (every
    /// existing entry then counts as the user's).
    pub fn load(paths: &Paths) -> ImportRecord {
        match fsutil::read_optional(&Self::path(paths)) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => ImportRecord::default(),
        }
    }

    /// Saves the record (mode 0600, atomic).
    pub fn save(&self, paths: &Paths) -> Result<(), CloudError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| CloudError::CorruptFile {
            path: Self::path(paths),
            detail: e.to_string(),
        })?;
        fsutil::write_atomic(&Self::path(paths), &bytes, PRIVATE_MODE)?;
        Ok(())
    }
}

/// What happened to one cloud device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportAction {
    /// A new registry entry.
    Added,
    /// An existing entry was changed.
    Updated,
    /// Nothing to change.
    Unchanged,
    /// Not importable (no LAN token or address, not Wi-Fi).
    Skipped,
}

/// The outcome for one cloud device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    /// Device id.
    pub did: String,
    /// The registry name (or the cloud name when skipped).
    pub name: String,
    /// What happened.
    pub action: ImportAction,
    /// What changed.
    pub changed: Vec<String>,
    /// Local edits that were kept although the cloud differs.
    pub kept: Vec<String>,
}

/// The outcome of a whole import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// One per cloud device.
    pub devices: Vec<ImportOutcome>,
}

impl ImportReport {
    /// How many devices had `action`.
    pub fn count(&self, action: ImportAction) -> usize {
        self.devices.iter().filter(|d| d.action == action).count()
    }

    /// How many devices kept at least one local edit.
    pub fn kept_edits(&self) -> usize {
        self.devices.iter().filter(|d| !d.kept.is_empty()).count()
    }
}

/// Makes a cloud name valid under the registry's naming rules.
pub fn sanitize_name(raw: &str, fallback: &str) -> String {
    let mut s = String::new();
    for c in raw.chars() {
        let c = if c.is_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            ' '
        };
        if c == ' ' && (s.is_empty() || s.ends_with(' ')) {
            continue;
        }
        s.push(c);
    }
    let mut s = s.trim().to_owned();
    if !s.chars().next().is_some_and(char::is_alphabetic) {
        s = format!("{fallback} {s}").trim().to_owned();
    }
    let mut s: String = s.chars().take(MAX_NAME_LEN).collect();
    while s.ends_with(' ') {
        s.pop();
    }
    if validate_name("device", &s).is_err() {
        return fallback.to_owned();
    }
    s
}

fn unique_name(reg: &Registry, base: &str) -> String {
    if reg.get(base).is_err() {
        return base.to_owned();
    }
    for n in 2u32.. {
        let suffix = format!(" {n}");
        let keep = MAX_NAME_LEN.saturating_sub(suffix.chars().count());
        let stem: String = base.chars().take(keep).collect();
        let candidate = format!("{}{suffix}", stem.trim_end());
        if reg.get(&candidate).is_err() {
            return candidate;
        }
    }
    base.to_owned()
}

fn ip_text(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "-".to_owned(), |i| i.to_string())
}

/// Merges `devices` into `reg`. `rooms` maps did → room name; `record` is
/// read to tell local edits from earlier imports and updated with what is
/// written now.
pub fn merge(
    reg: &mut Registry,
    devices: &[CloudDevice],
    rooms: &HashMap<String, String>,
    record: &mut ImportRecord,
    now: u64,
) -> Result<ImportReport, HomeError> {
    let mut report = ImportReport::default();
    for dev in devices {
        let outcome = match (dev.did_number(), &dev.token, dev.localip) {
            (Some(did), Some(token), Some(ip)) if dev.lan_capable() => {
                merge_one(reg, dev, did, token, ip, rooms, record, now)?
            }
            _ => ImportOutcome {
                did: dev.did.clone(),
                name: dev.name.clone(),
                action: ImportAction::Skipped,
                changed: Vec::new(),
                kept: vec![skip_reason(dev).to_owned()],
            },
        };
        report.devices.push(outcome);
    }
    Ok(report)
}

fn skip_reason(dev: &CloudDevice) -> &'static str {
    if dev.did_number().is_none() {
        "not a Wi-Fi device (BLE, Zigbee or sub-device): reachable through the cloud only"
    } else if dev.token.is_none() {
        "the cloud gave no LAN token"
    } else if dev.localip.is_none() {
        "the cloud gave no LAN address"
    } else {
        "not a Wi-Fi device: reachable through the cloud only"
    }
}

#[allow(clippy::too_many_arguments)]
fn merge_one(
    reg: &mut Registry,
    dev: &CloudDevice,
    did: u64,
    token: &mijia_proto::miio::Token,
    ip: IpAddr,
    rooms: &HashMap<String, String>,
    record: &mut ImportRecord,
    now: u64,
) -> Result<ImportOutcome, HomeError> {
    let cloud_name = sanitize_name(&dev.name, "Device");
    let cloud_room = rooms
        .get(&dev.did)
        .map(|r| sanitize_name(r, "Room"))
        .filter(|r| validate_name("room", r).is_ok());
    let existing = reg
        .find_by_did(did)
        .or_else(|| {
            reg.devices()
                .iter()
                .find(|d| d.did.is_none() && d.token == *token)
        })
        .map(|d| d.name.clone());

    let Some(mut name) = existing else {
        let name = unique_name(reg, &cloud_name);
        let mut entry = DeviceEntry::new(name.clone(), ip, *token);
        entry.did = Some(did);
        entry.model = (!dev.model.is_empty()).then(|| dev.model.clone());
        entry.room.clone_from(&cloud_room);
        entry.added = Some(now);
        if reg.add(entry.clone()).is_err() {
            entry.room = None;
            reg.add(entry)?;
        }
        let room = reg.get(&name).ok().and_then(|e| e.room.clone());
        record.devices.insert(
            dev.did.clone(),
            Written {
                name: name.clone(),
                room,
                ip: Some(ip),
                region: Some(dev.region.clone()),
                cloud_name: Some(dev.name.clone()),
            },
        );
        return Ok(ImportOutcome {
            did: dev.did.clone(),
            name,
            action: ImportAction::Added,
            changed: Vec::new(),
            kept: Vec::new(),
        });
    };

    let prev = record.devices.get(&dev.did).cloned();
    let mut written = prev.clone().unwrap_or_default();
    written.region = Some(dev.region.clone());
    let mut changed = Vec::new();
    let mut kept = Vec::new();

    // Name: follow a renaming in the cloud only if the last import wrote
    // the current name.
    let current = reg.get(&name)?.clone();
    let cloud_renamed = prev
        .as_ref()
        .is_none_or(|p| p.cloud_name.as_deref() != Some(dev.name.as_str()));
    let untouched = prev.as_ref().is_some_and(|p| p.name == current.name);
    if cloud_renamed && current.name != cloud_name {
        if untouched {
            let same_entry = reg.get(&cloud_name).is_ok_and(|e| e.name == current.name);
            let new = if same_entry {
                cloud_name.clone()
            } else {
                unique_name(reg, &cloud_name)
            };
            if new != current.name {
                reg.rename(&current.name, &new)?;
                changed.push(format!("name '{}' → '{new}'", current.name));
                name.clone_from(&new);
                written.name = new;
            }
        } else {
            kept.push(format!("name (the cloud calls it '{}')", dev.name));
        }
    }
    written.cloud_name = Some(dev.name.clone());

    // Room.
    if current.room != cloud_room {
        let untouched = prev.as_ref().is_some_and(|p| p.room == current.room);
        if untouched {
            reg.set_room(&name, cloud_room.as_deref())?;
            let now_room = reg.get(&name)?.room.clone();
            changed.push(format!(
                "room {} → {}",
                current.room.as_deref().unwrap_or("-"),
                now_room.as_deref().unwrap_or("-")
            ));
            written.room = now_room;
        } else if let Some(r) = &cloud_room {
            kept.push(format!("room (the cloud has it in '{r}')"));
        }
    }

    // Address.
    if current.ip != ip {
        if prev.as_ref().is_some_and(|p| p.ip == Some(current.ip)) {
            reg.get_mut(&name)?.ip = ip;
            changed.push(format!("address {} → {ip}", current.ip));
            written.ip = Some(ip);
        } else {
            kept.push(format!(
                "address (the cloud reports {}; kept yours)",
                ip_text(Some(ip))
            ));
        }
    }

    let entry = reg.get_mut(&name)?;
    if entry.token != *token {
        entry.token = *token;
        changed.push("token".to_owned());
    }
    if entry.did.is_none() {
        entry.did = Some(did);
        changed.push(format!("did {did}"));
    }
    if entry.model.is_none() && !dev.model.is_empty() {
        entry.model = Some(dev.model.clone());
        changed.push(format!("model {}", dev.model));
    }
    if prev.is_some() {
        record.devices.insert(dev.did.clone(), written);
    }
    Ok(ImportOutcome {
        did: dev.did.clone(),
        name,
        action: if changed.is_empty() {
            ImportAction::Unchanged
        } else {
            ImportAction::Updated
        },
        changed,
        kept,
    })
}

/// Merges `devices` into the registry of `paths` (locked, atomic) and
/// saves the import record. With `dry_run`, computes the report only.
pub fn import(
    paths: &Paths,
    devices: &[CloudDevice],
    rooms: &HashMap<String, String>,
    dry_run: bool,
) -> Result<ImportReport, CloudError> {
    let mut record = ImportRecord::load(paths);
    let now = crate::home::unix_now();
    if dry_run {
        let mut reg = Registry::load(paths)?;
        return Ok(merge(&mut reg, devices, rooms, &mut record, now)?);
    }
    let report = Registry::update(paths, |reg| merge(reg, devices, rooms, &mut record, now))?;
    record.save(paths)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mijia_proto::miio::Token;

    fn tok(b: u8) -> Token {
        Token::from_bytes([b; 16])
    }

    fn dev(did: &str, name: &str, ip: &str, t: u8) -> CloudDevice {
        CloudDevice {
            did: did.into(),
            name: name.into(),
            model: "yeelink.light.color1".into(),
            localip: ip.parse().ok(),
            token: Some(tok(t)),
            online: Some(true),
            pid: Some(0),
            parent_id: None,
            mac: None,
            region: "de".into(),
        }
    }

    #[test]
    fn names_are_made_valid() {
        assert_eq!(
            sanitize_name("Mi Smart LED (Desk) #2", "Device"),
            "Mi Smart LED Desk 2"
        );
        assert_eq!(sanitize_name("  ", "Device"), "Device");
        assert_eq!(sanitize_name("2nd lamp", "Device"), "Device 2nd lamp");
        assert_eq!(sanitize_name("客厅灯", "Device"), "客厅灯");
        assert_eq!(
            sanitize_name(&"x".repeat(100), "Device").chars().count(),
            64
        );
    }

    #[test]
    fn merge_adds_then_keeps_local_edits() {
        let mut reg = Registry::new();
        let mut rec = ImportRecord::default();
        let rooms: HashMap<String, String> = [("1".to_owned(), "Office".to_owned())].into();
        let cloud = vec![
            dev("1", "Desk lamp", "127.0.0.5", 1),
            dev("2", "Desk lamp", "127.0.0.6", 2),
            CloudDevice {
                token: None,
                pid: Some(6),
                ..dev("blt.3.x", "Thermo", "127.0.0.7", 3)
            },
        ];
        let r = merge(&mut reg, &cloud, &rooms, &mut rec, 5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.count(ImportAction::Added), 2);
        assert_eq!(r.count(ImportAction::Skipped), 1);
        assert_eq!(reg.get("Desk lamp 2").map(|e| e.did).ok(), Some(Some(2)));
        assert_eq!(
            reg.get("Desk lamp")
                .ok()
                .and_then(|e| e.room.clone())
                .as_deref(),
            Some("Office")
        );

        // Same again: unchanged.
        let r = merge(&mut reg, &cloud, &rooms, &mut rec, 6).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.count(ImportAction::Unchanged), 2, "{r:?}");

        // The user renames and re-addresses device 1; the cloud moves both
        // devices and re-pairs device 1.
        reg.rename("Desk lamp", "Reading")
            .unwrap_or_else(|e| panic!("{e}"));
        reg.get_mut("Reading")
            .map(|e| e.ip = "127.0.0.50".parse().unwrap_or(e.ip))
            .unwrap_or_else(|e| panic!("{e}"));
        let cloud2 = vec![
            dev("1", "Desk lamp", "127.0.0.8", 9),
            dev("2", "Hall lamp", "127.0.0.9", 2),
        ];
        let r = merge(&mut reg, &cloud2, &rooms, &mut rec, 7).unwrap_or_else(|e| panic!("{e}"));
        let one = reg.get("Reading").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one.ip.to_string(), "127.0.0.50", "user address kept");
        assert_eq!(one.token, tok(9), "token follows the cloud");
        assert_eq!(r.devices[0].kept.len(), 1, "address only: {r:?}");
        // Device 2 was untouched locally, so it follows the cloud.
        let two = reg.get("Hall lamp").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(two.ip.to_string(), "127.0.0.9");
        assert_eq!(r.kept_edits(), 1);
    }

    #[test]
    fn entries_that_no_import_created_are_the_users() {
        let mut reg = Registry::new();
        let mut e = DeviceEntry::new(
            "Mine",
            "127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
            tok(1),
        );
        e.room = Some("Den".into());
        reg.add(e).unwrap_or_else(|e| panic!("{e}"));
        let rooms: HashMap<String, String> = [("1".to_owned(), "Office".to_owned())].into();
        let mut rec = ImportRecord::default();
        let r = merge(
            &mut reg,
            &[dev("1", "Cloud name", "127.0.0.2", 1)],
            &rooms,
            &mut rec,
            1,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let m = reg.get("Mine").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.did, Some(1), "matched by token, did filled");
        assert_eq!(m.room.as_deref(), Some("Den"));
        assert_eq!(m.ip.to_string(), "127.0.0.1");
        assert_eq!(r.devices[0].action, ImportAction::Updated);
        assert_eq!(r.devices[0].kept.len(), 3, "{r:?}");
    }
}
