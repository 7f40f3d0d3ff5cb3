//! Regenerable state: request id counters and when each device was last seen.
//!
//! Files live in the state directory as small JSON maps keyed by
//! [`DeviceKey`] (`did:<n>` when the did is known, else `ip:<addr>`):
//!
//! - `ids.json`: `{ "did:123": 4567 }`, the next request id per device, so a
//!   new process does not reuse ids the device still remembers;
//! - `devices-seen.json`: `{ "did:123": { "at": 1714000000, "ip": "10.0.0.2" } }`.
//!
//! Reads never fail: a missing, unreadable or corrupt file logs a warning
//! and counts as empty, because everything here can be regenerated. Writes
//! take the file's lock, re-read, merge and replace the file atomically
//! (mode 0600). Nothing here is secret, and this module never touches the
//! registry, so polling never rewrites the user's config.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::fsutil::{self, FileLock, DEFAULT_LOCK_TIMEOUT, PRIVATE_MODE};
use super::{DeviceEntry, HomeError, Paths};

/// What state is keyed by: the did when known (stable across address
/// changes), else the IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKey {
    /// `did:<n>`
    Did(u64),
    /// `ip:<addr>`
    Ip(IpAddr),
}

impl DeviceKey {
    /// The key for a registered device.
    pub fn of(entry: &DeviceEntry) -> DeviceKey {
        match entry.did {
            Some(did) => DeviceKey::Did(did),
            None => DeviceKey::Ip(entry.ip),
        }
    }
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKey::Did(d) => write!(f, "did:{d}"),
            DeviceKey::Ip(ip) => write!(f, "ip:{ip}"),
        }
    }
}

/// Why a string is not a [`DeviceKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a device key; expected `did:<number>` or `ip:<address>`")]
pub struct BadDeviceKey(pub String);

impl FromStr for DeviceKey {
    type Err = BadDeviceKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadDeviceKey(s.to_string());
        if let Some(d) = s.strip_prefix("did:") {
            d.parse().map(DeviceKey::Did).map_err(|_| bad())
        } else if let Some(ip) = s.strip_prefix("ip:") {
            ip.parse().map(DeviceKey::Ip).map_err(|_| bad())
        } else {
            Err(bad())
        }
    }
}

/// Persistent request id counters (`state/ids.json`).
pub struct IdCounters;

impl IdCounters {
    /// The stored next id for a device, if any.
    pub fn load(paths: &Paths, key: &DeviceKey) -> Option<u32> {
        read_tolerant::<BTreeMap<String, u32>>(&paths.ids_file())
            .get(&key.to_string())
            .copied()
    }

    /// Stores the next id for one device.
    pub fn store(paths: &Paths, key: &DeviceKey, next: u32) -> Result<(), HomeError> {
        Self::store_many(paths, &[(*key, next)])
    }

    /// Stores the next ids for several devices in one write.
    pub fn store_many(paths: &Paths, ids: &[(DeviceKey, u32)]) -> Result<(), HomeError> {
        if ids.is_empty() {
            return Ok(());
        }
        update_tolerant(&paths.ids_file(), |map: &mut BTreeMap<String, u32>| {
            for (key, next) in ids {
                map.insert(key.to_string(), *next);
            }
        })
    }
}

/// `get_properties` / `set_properties` batch sizes learnt per device
/// (`state/batch-sizes.json`): a device that answered `-9999` or nothing to
/// a larger batch starts at the size that worked, in later runs too.
pub struct BatchSizes;

impl BatchSizes {
    /// The remembered batch size for a device, if any.
    pub fn load(paths: &Paths, key: &DeviceKey) -> Option<usize> {
        read_tolerant::<BTreeMap<String, usize>>(&paths.batches_file())
            .get(&key.to_string())
            .copied()
            .filter(|n| *n >= 1)
    }

    /// All remembered sizes, by key (keys that do not parse skipped).
    pub fn load_all(paths: &Paths) -> BTreeMap<String, usize> {
        read_tolerant::<BTreeMap<String, usize>>(&paths.batches_file())
            .into_iter()
            .filter(|(k, n)| *n >= 1 && k.parse::<DeviceKey>().is_ok())
            .collect()
    }

    /// Stores the batch sizes of several devices in one write.
    pub fn store_many(paths: &Paths, sizes: &[(DeviceKey, usize)]) -> Result<(), HomeError> {
        if sizes.is_empty() {
            return Ok(());
        }
        update_tolerant(
            &paths.batches_file(),
            |map: &mut BTreeMap<String, usize>| {
                for (key, n) in sizes {
                    map.insert(key.to_string(), (*n).max(1));
                }
            },
        )
    }
}

/// When a device last answered, and at which address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Unix seconds.
    pub at: u64,
    /// The address it answered from.
    pub ip: IpAddr,
}

/// Last-seen times (`state/devices-seen.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastSeen {
    map: BTreeMap<String, Seen>,
}

impl LastSeen {
    /// Reads the file; missing or corrupt counts as empty.
    pub fn load(paths: &Paths) -> LastSeen {
        LastSeen {
            map: read_tolerant(&paths.seen_file()),
        }
    }

    /// When this device was last seen.
    pub fn get(&self, key: &DeviceKey) -> Option<Seen> {
        self.map.get(&key.to_string()).copied()
    }

    /// All records, by key, with keys that do not parse skipped.
    pub fn iter(&self) -> impl Iterator<Item = (DeviceKey, Seen)> + '_ {
        self.map
            .iter()
            .filter_map(|(k, v)| k.parse().ok().map(|k| (k, *v)))
    }

    /// Records a whole poll in one write. A record older than the stored
    /// one for the same device is ignored, so concurrent pollers never move
    /// a time backwards.
    pub fn record_seen(paths: &Paths, seen: &[(DeviceKey, Seen)]) -> Result<(), HomeError> {
        if seen.is_empty() {
            return Ok(());
        }
        update_tolerant(&paths.seen_file(), |map: &mut BTreeMap<String, Seen>| {
            for (key, s) in seen {
                let slot = map.entry(key.to_string()).or_insert(*s);
                if s.at >= slot.at {
                    *slot = *s;
                }
            }
        })
    }
}

/// Reads a JSON state file; anything wrong yields the default and a warning.
fn read_tolerant<T: DeserializeOwned + Default>(path: &Path) -> T {
    let bytes = match fsutil::read_optional(path) {
        Ok(Some(b)) => b,
        Ok(None) => return T::default(),
        Err(e) => {
            tracing::warn!("ignoring state file: {e}");
            return T::default();
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(
                "ignoring corrupt state file {} ({e}); it will be rewritten",
                path.display()
            );
            T::default()
        }
    }
}

/// Lock, re-read (tolerantly), change, write atomically.
fn update_tolerant<T>(path: &Path, change: impl FnOnce(&mut T)) -> Result<(), HomeError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let _lock = FileLock::acquire(path, DEFAULT_LOCK_TIMEOUT)?;
    let mut value: T = read_tolerant(path);
    change(&mut value);
    let mut bytes = serde_json::to_vec_pretty(&value).map_err(|e| HomeError::Encode {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    bytes.push(b'\n');
    fsutil::write_atomic(path, &bytes, PRIVATE_MODE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn home() -> (tempfile::TempDir, Paths) {
        let tmp = tempfile::TempDir::new().unwrap();
        let paths = Paths::at(tmp.path());
        (tmp, paths)
    }

    #[test]
    fn keys_round_trip() {
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        for k in [
            DeviceKey::Did(123),
            DeviceKey::Ip(ip),
            DeviceKey::Ip("::1".parse().unwrap()),
        ] {
            assert_eq!(k.to_string().parse::<DeviceKey>().unwrap(), k);
        }
        assert_eq!(DeviceKey::Did(7).to_string(), "did:7");
        assert_eq!(DeviceKey::Ip(ip).to_string(), "ip:10.0.0.2");
        assert!("7".parse::<DeviceKey>().is_err());
        assert!("did:x".parse::<DeviceKey>().is_err());

        let token = "00112233445566778899aabbccddeeff".parse().unwrap();
        let mut e = DeviceEntry::new("lamp", ip, token);
        assert_eq!(DeviceKey::of(&e), DeviceKey::Ip(ip));
        e.did = Some(9);
        assert_eq!(DeviceKey::of(&e), DeviceKey::Did(9));
    }

    #[test]
    fn id_counters_round_trip() {
        let (_tmp, paths) = home();
        let a = DeviceKey::Did(1);
        let b = DeviceKey::Ip("10.0.0.2".parse().unwrap());
        assert_eq!(IdCounters::load(&paths, &a), None);
        IdCounters::store(&paths, &a, 100).unwrap();
        IdCounters::store_many(&paths, &[(b, 7), (a, 101)]).unwrap();
        assert_eq!(IdCounters::load(&paths, &a), Some(101));
        assert_eq!(IdCounters::load(&paths, &b), Some(7));

        let file = paths.ids_file();
        let json: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({ "did:1": 101, "ip:10.0.0.2": 7 }));
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&paths.state_dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn corrupt_state_is_tolerated_and_replaced() {
        let (_tmp, paths) = home();
        let key = DeviceKey::Did(5);
        fs::create_dir_all(&paths.state_dir).unwrap();
        fs::write(paths.ids_file(), "{ not json").unwrap();
        fs::write(paths.seen_file(), "[1, 2").unwrap();
        assert_eq!(IdCounters::load(&paths, &key), None);
        assert_eq!(LastSeen::load(&paths), LastSeen::default());

        IdCounters::store(&paths, &key, 9).unwrap();
        assert_eq!(IdCounters::load(&paths, &key), Some(9));
        let seen = Seen {
            at: 10,
            ip: "10.0.0.2".parse().unwrap(),
        };
        LastSeen::record_seen(&paths, &[(key, seen)]).unwrap();
        assert_eq!(LastSeen::load(&paths).get(&key), Some(seen));

        // Wrong shape (valid JSON, wrong types) is tolerated too.
        fs::write(paths.ids_file(), r#"{"did:5": "nine"}"#).unwrap();
        assert_eq!(IdCounters::load(&paths, &key), None);
    }

    #[test]
    fn batch_sizes_persist_per_device_and_junk_is_ignored() {
        let (_tmp, paths) = home();
        let did = DeviceKey::Did(7);
        let ip = DeviceKey::Ip("127.0.0.9".parse().unwrap());
        assert_eq!(BatchSizes::load(&paths, &did), None);
        BatchSizes::store_many(&paths, &[(did, 2), (ip, 0)]).unwrap();
        assert_eq!(BatchSizes::load(&paths, &did), Some(2));
        // A size of 0 is stored as 1: never a batch of nothing.
        assert_eq!(BatchSizes::load(&paths, &ip), Some(1));
        let mode = fs::metadata(paths.batches_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::write(paths.batches_file(), r#"{"nonsense": 3, "did:8": 4}"#).unwrap();
        assert_eq!(BatchSizes::load(&paths, &did), None);
        let all = BatchSizes::load_all(&paths);
        assert_eq!(all.get("did:8"), Some(&4));
        assert!(!all.contains_key("nonsense"));
        // A corrupt file counts as empty (sizes are relearnt), never an error.
        fs::write(paths.batches_file(), "{not json").unwrap();
        assert_eq!(BatchSizes::load(&paths, &DeviceKey::Did(8)), None);
    }

    #[test]
    fn last_seen_batches_and_never_goes_back() {
        let (_tmp, paths) = home();
        let ip = "10.0.0.2".parse().unwrap();
        let (a, b) = (DeviceKey::Did(1), DeviceKey::Ip(ip));
        LastSeen::record_seen(
            &paths,
            &[(a, Seen { at: 100, ip }), (b, Seen { at: 100, ip })],
        )
        .unwrap();
        let newer_ip = "10.0.0.9".parse().unwrap();
        LastSeen::record_seen(
            &paths,
            &[
                (
                    a,
                    Seen {
                        at: 50,
                        ip: newer_ip,
                    },
                ),
                (
                    b,
                    Seen {
                        at: 200,
                        ip: newer_ip,
                    },
                ),
            ],
        )
        .unwrap();
        let seen = LastSeen::load(&paths);
        assert_eq!(seen.get(&a), Some(Seen { at: 100, ip }));
        assert_eq!(
            seen.get(&b),
            Some(Seen {
                at: 200,
                ip: newer_ip
            })
        );
        assert_eq!(seen.iter().count(), 2);
        LastSeen::record_seen(&paths, &[]).unwrap();
    }

    #[test]
    fn nothing_is_written_for_empty_batches() {
        let (_tmp, paths) = home();
        IdCounters::store_many(&paths, &[]).unwrap();
        LastSeen::record_seen(&paths, &[]).unwrap();
        assert!(!paths.state_dir.exists());
    }
}
