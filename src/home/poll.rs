//! Polling many devices at once (`mijia status --all`, `--room`).
//!
//! [`status_many`] reads every device's status concurrently: one tokio task
//! per device, at most `concurrency` of them talking (and holding a socket)
//! at a time, each bounded by its own time limit, so one device that never
//! answers costs one slot for its limit and delays nobody else. Results
//! come back in the order the targets were given (registry order), with
//! per-device errors kept in the results. Progress is reported on the
//! caller's task as devices finish, so the callback needs no locking.
//!
//! [`poll_home`] wraps it for a home on disk: request ids come from one
//! read of `ids.json` into a [`BulkIdStore`] and go back in one write, and
//! last-seen times for the devices that answered go into
//! `devices-seen.json` in one write, so polling a thousand devices costs
//! two file writes, not thousands.
//!
//! Per-device work is small: targets share one [`ModelProfile`] per model
//! (parsed spec and name table behind an `Arc`), and no spec is parsed
//! here. This module prints nothing; rendering progress and results is the
//! CLI's job.
//!
//! [`ModelProfile`]: super::device::ModelProfile

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::device::{DeviceOpError, DeviceTarget, PropReading};
use super::fsutil;
use super::{unix_now, BatchSizes, DeviceKey, HomeError, IdCounters, LastSeen, Paths, Seen};
use crate::transport::{ClientConfig, IdStore, MiioError};

/// Default number of devices polled at the same time. Each one in flight
/// holds a socket and a 64 KiB receive buffer, so this also bounds file
/// descriptors and memory.
pub const DEFAULT_CONCURRENCY: usize = 256;
/// Default time limit per device.
pub const DEFAULT_DEVICE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a poll runs.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Devices in flight at once (at least 1).
    pub concurrency: usize,
    /// Time limit for one device, counted from when its turn starts.
    pub per_device_timeout: Duration,
    /// Transport settings for each device.
    pub config: ClientConfig,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            concurrency: DEFAULT_CONCURRENCY,
            per_device_timeout: DEFAULT_DEVICE_TIMEOUT,
            config: ClientConfig::default(),
        }
    }
}

/// One device's outcome.
#[derive(Debug)]
pub struct PolledDevice {
    /// Its name.
    pub name: String,
    /// Its room.
    pub room: Option<String>,
    /// Its model.
    pub model: Option<String>,
    /// Its address.
    pub addr: SocketAddr,
    /// The key its state is stored under.
    pub key: DeviceKey,
    /// The did learnt from the handshake, when it answered one.
    pub did: Option<u64>,
    /// Its readable properties, or why not.
    pub result: Result<Vec<PropReading>, DeviceOpError>,
    /// How long it took.
    pub elapsed: Duration,
}

impl PolledDevice {
    /// Whether the device answered (even with an error of its own).
    pub fn answered(&self) -> bool {
        match &self.result {
            Ok(_) => true,
            Err(DeviceOpError::Miio(e)) => {
                matches!(
                    e,
                    MiioError::Device { .. } | MiioError::UnexpectedResult { .. }
                )
            }
            Err(DeviceOpError::Reply(_)) => true,
            Err(_) => false,
        }
    }
}

/// Progress of a poll, reported as each device finishes.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Devices finished so far (this one included).
    pub done: usize,
    /// Devices in the poll.
    pub total: usize,
    /// The device that just finished.
    pub name: &'a str,
    /// Whether it answered.
    pub ok: bool,
}

/// Reads the status of every target concurrently. See the module docs.
///
/// `ids` persists request ids (use a [`BulkIdStore`] and flush it once
/// afterwards). Must run inside a tokio runtime.
pub async fn status_many(
    targets: Vec<DeviceTarget>,
    ids: Option<Arc<dyn IdStore>>,
    opts: &PollOptions,
    mut progress: impl FnMut(Progress<'_>),
) -> Vec<PolledDevice> {
    let total = targets.len();
    let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut slots: Vec<Option<PolledDevice>> = Vec::with_capacity(total);
    let mut meta: Vec<DeviceTarget> = Vec::with_capacity(total);
    for (index, target) in targets.into_iter().enumerate() {
        slots.push(None);
        meta.push(target.clone());
        let sem = Arc::clone(&sem);
        let ids = ids.clone();
        let config = opts.config.clone();
        let limit = opts.per_device_timeout;
        tasks.spawn(async move {
            // The semaphore is never closed; if it were, run unbounded.
            let _permit = sem.acquire_owned().await.ok();
            (index, poll_one(target, config, ids, limit).await)
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let Ok((index, polled)) = joined else {
            // A panicking task; its slot is filled below.
            continue;
        };
        done += 1;
        progress(Progress {
            done,
            total,
            name: &polled.name,
            ok: polled.answered(),
        });
        if let Some(slot) = slots.get_mut(index) {
            *slot = Some(polled);
        }
    }
    slots
        .into_iter()
        .zip(meta)
        .map(|(slot, t)| {
            slot.unwrap_or_else(|| PolledDevice {
                name: t.name.clone(),
                room: t.room.clone(),
                model: t.model().map(str::to_string),
                addr: t.addr,
                key: t.key(),
                did: None,
                result: Err(DeviceOpError::Internal(
                    "the polling task for this device failed".into(),
                )),
                elapsed: Duration::ZERO,
            })
        })
        .collect()
}

async fn poll_one(
    target: DeviceTarget,
    config: ClientConfig,
    ids: Option<Arc<dyn IdStore>>,
    limit: Duration,
) -> PolledDevice {
    let start = Instant::now();
    let (name, room, model, addr, key) = (
        target.name.clone(),
        target.room.clone(),
        target.model().map(str::to_string),
        target.addr,
        target.key(),
    );
    let (result, did) = match target.connect(config, ids) {
        Ok(dev) => {
            let r = match tokio::time::timeout(limit, dev.status()).await {
                Ok(r) => r,
                Err(_) => Err(DeviceOpError::Timeout { after: limit }),
            };
            (r, dev.miio().did().await)
        }
        Err(e) => (Err(e), None),
    };
    PolledDevice {
        name,
        room,
        model,
        addr,
        key,
        did,
        result,
        elapsed: start.elapsed(),
    }
}

/// [`status_many`] for a home on disk: ids are read once and written once,
/// and the devices that answered are recorded as seen in one write.
/// Failures to write this regenerable state are logged, not returned.
pub async fn poll_home(
    paths: &Paths,
    targets: Vec<DeviceTarget>,
    opts: &PollOptions,
    progress: impl FnMut(Progress<'_>),
) -> Vec<PolledDevice> {
    let ids = Arc::new(BulkIdStore::load(paths));
    let store: Arc<dyn IdStore> = ids.clone();
    let polled = status_many(targets, Some(store), opts, progress).await;
    if let Err(e) = ids.flush(paths) {
        tracing::warn!("request ids will not be remembered: {e}");
    }
    if let Err(e) = record_seen(paths, &polled) {
        tracing::warn!("last-seen times not recorded: {e}");
    }
    polled
}

/// Records every device that answered as seen now, in one write.
pub fn record_seen(paths: &Paths, polled: &[PolledDevice]) -> Result<(), HomeError> {
    let at = unix_now();
    let seen: Vec<(DeviceKey, Seen)> = polled
        .iter()
        .filter(|p| p.answered())
        .map(|p| {
            (
                p.key,
                Seen {
                    at,
                    ip: p.addr.ip(),
                },
            )
        })
        .collect();
    LastSeen::record_seen(paths, &seen)
}

/// An in-memory [`IdStore`] seeded from `ids.json` (and the learnt batch
/// sizes from `batch-sizes.json`) once and written back once
/// ([`flush`](Self::flush)), for polls of many devices.
#[derive(Debug, Default)]
pub struct BulkIdStore {
    inner: Mutex<BulkInner>,
}

#[derive(Debug, Default)]
struct BulkInner {
    known: HashMap<String, u32>,
    changed: BTreeMap<String, u32>,
    batches: BTreeMap<String, usize>,
    batches_changed: BTreeMap<String, usize>,
}

impl BulkIdStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store seeded from `state/ids.json`, read once. A missing or
    /// corrupt file counts as empty (ids are regenerable); entries that are
    /// not `key: number` are skipped.
    pub fn load(paths: &Paths) -> Self {
        let path = paths.ids_file();
        let known: HashMap<String, u32> = match fsutil::read_optional(&path) {
            Ok(Some(bytes)) => match serde_json::from_slice::<BTreeMap<String, Value>>(&bytes) {
                Ok(map) => map
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let n = v.as_u64().and_then(|n| u32::try_from(n).ok())?;
                        Some((k, n))
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!("ignoring corrupt state file {} ({e})", path.display());
                    HashMap::new()
                }
            },
            Ok(None) => HashMap::new(),
            Err(e) => {
                tracing::warn!("ignoring state file: {e}");
                HashMap::new()
            }
        };
        BulkIdStore {
            inner: Mutex::new(BulkInner {
                known,
                changed: BTreeMap::new(),
                batches: BatchSizes::load_all(paths),
                batches_changed: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BulkInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many counters changed since the last flush.
    pub fn pending(&self) -> usize {
        self.lock().changed.len()
    }

    /// Writes the changed counters to `ids.json` in one locked, atomic
    /// write (nothing is written when nothing changed). Returns how many
    /// were written.
    pub fn flush(&self, paths: &Paths) -> Result<usize, HomeError> {
        let batches = std::mem::take(&mut self.lock().batches_changed);
        let sizes: Vec<(DeviceKey, usize)> = batches
            .iter()
            .filter_map(|(k, n)| k.parse::<DeviceKey>().ok().map(|k| (k, *n)))
            .collect();
        if let Err(e) = BatchSizes::store_many(paths, &sizes) {
            // Learnt sizes are an optimisation: relearnt next time.
            tracing::warn!("learnt batch sizes not saved: {e}");
        }
        let changed = std::mem::take(&mut self.lock().changed);
        let entries: Vec<(DeviceKey, u32)> = changed
            .iter()
            .filter_map(|(k, n)| k.parse::<DeviceKey>().ok().map(|k| (k, *n)))
            .collect();
        match IdCounters::store_many(paths, &entries) {
            Ok(()) => Ok(entries.len()),
            Err(e) => {
                // Keep them for a later flush.
                let mut inner = self.lock();
                for (k, n) in changed {
                    inner.changed.entry(k).or_insert(n);
                }
                Err(e)
            }
        }
    }
}

impl IdStore for BulkIdStore {
    fn load(&self, key: &str) -> Option<u32> {
        self.lock().known.get(key).copied()
    }

    fn store(&self, key: &str, next: u32) {
        let mut inner = self.lock();
        inner.known.insert(key.to_owned(), next);
        inner.changed.insert(key.to_owned(), next);
    }

    fn store_all(&self, entries: &[(String, u32)]) {
        let mut inner = self.lock();
        for (key, next) in entries {
            inner.known.insert(key.clone(), *next);
            inner.changed.insert(key.clone(), *next);
        }
    }

    fn load_batch(&self, key: &str) -> Option<usize> {
        self.lock().batches.get(key).copied()
    }

    fn store_batch(&self, keys: &[String], size: usize) {
        let mut inner = self.lock();
        for key in keys {
            inner.batches.insert(key.clone(), size.max(1));
            inner.batches_changed.insert(key.clone(), size.max(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn home() -> (tempfile::TempDir, Paths) {
        let tmp = tempfile::TempDir::new().unwrap();
        let paths = Paths::at(tmp.path());
        (tmp, paths)
    }

    #[test]
    fn bulk_id_store_reads_once_and_writes_changes_once() {
        let (_tmp, paths) = home();
        fs::create_dir_all(&paths.state_dir).unwrap();
        fs::write(
            paths.ids_file(),
            r#"{"did:1": 100, "ip:127.0.0.9": 7, "did:2": "junk"}"#,
        )
        .unwrap();
        let s = BulkIdStore::load(&paths);
        assert_eq!(IdStore::load(&s, "did:1"), Some(100));
        assert_eq!(IdStore::load(&s, "did:2"), None);
        // Reads come from memory: changing the file does not change them.
        fs::write(paths.ids_file(), "{}").unwrap();
        assert_eq!(IdStore::load(&s, "ip:127.0.0.9"), Some(7));
        s.store_all(&[("did:1".into(), 150), ("ip:127.0.0.3".into(), 9)]);
        s.store("not a key", 5);
        assert_eq!(s.pending(), 3);
        assert_eq!(s.flush(&paths).unwrap(), 2);
        assert_eq!(s.pending(), 0);
        assert_eq!(IdCounters::load(&paths, &DeviceKey::Did(1)), Some(150));
        let ip = DeviceKey::Ip("127.0.0.3".parse().unwrap());
        assert_eq!(IdCounters::load(&paths, &ip), Some(9));
        assert_eq!(s.flush(&paths).unwrap(), 0);

        fs::write(paths.ids_file(), "{ corrupt").unwrap();
        assert_eq!(IdStore::load(&BulkIdStore::load(&paths), "did:1"), None);
    }

    #[cfg(feature = "demo")]
    mod live {
        use super::*;
        use crate::home::device::ModelCatalog;
        use crate::home::DeviceEntry;
        use fake_device::{DeviceConfig, Fleet, FleetConfig};
        use mijia_proto::miio::Token;
        use mijia_proto::miot::SpecStore;

        const MODELS: &[&str] = &[
            "yeelink.light.color1",
            "yeelink.light.mono1",
            "chuangmi.plug.m1",
            "zhimi.airpurifier.mb3",
            "lumi.switch.b2lacn02",
            "miaomiaoce.sensor_ht.t2",
        ];

        fn token() -> Token {
            "00112233445566778899aabbccddeeff".parse().unwrap()
        }

        /// `n` live devices and, at position `dead_at`, a loopback socket
        /// that never answers. Returns the fleet, the silent socket and the
        /// registry entries in order.
        async fn home_fleet(
            n: usize,
            dead_at: usize,
        ) -> (Fleet, tokio::net::UdpSocket, Vec<DeviceEntry>) {
            let devices = (0..n)
                .map(|i| {
                    let mut d = DeviceConfig::new(
                        format!("dev-{i:02}"),
                        MODELS[i % MODELS.len()],
                        800_000 + i as u64,
                        "127.0.0.1:0".parse().unwrap(),
                    );
                    d.token = Some(token());
                    d
                })
                .collect();
            let fleet = Fleet::start(FleetConfig { devices }).await.unwrap();
            let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let mut entries: Vec<DeviceEntry> = fleet
                .devices()
                .into_iter()
                .map(|d| {
                    let mut e = DeviceEntry::new(d.name, d.addr.ip(), d.token);
                    e.port = Some(d.addr.port());
                    e.model = Some(d.model);
                    e.did = Some(d.did);
                    e
                })
                .collect();
            let dead_addr = silent.local_addr().unwrap();
            let mut dead = DeviceEntry::new("dead", dead_addr.ip(), token());
            dead.port = Some(dead_addr.port());
            dead.model = Some("yeelink.light.color1".into());
            dead.did = Some(999);
            entries.insert(dead_at, dead);
            (fleet, silent, entries)
        }

        fn opts(concurrency: usize, limit_ms: u64) -> PollOptions {
            PollOptions {
                concurrency,
                per_device_timeout: Duration::from_millis(limit_ms),
                config: ClientConfig {
                    timeout: Duration::from_secs(2),
                    handshake_timeout: Duration::from_secs(2),
                    ..ClientConfig::default()
                },
            }
        }

        #[tokio::test]
        async fn one_dead_device_delays_nobody_and_order_is_kept() {
            let (_fleet, _silent, entries) = home_fleet(18, 3).await;
            let catalog = ModelCatalog::new(SpecStore::new());
            let targets: Vec<DeviceTarget> = entries
                .iter()
                .map(|e| DeviceTarget::from_entry(e, &catalog))
                .collect();
            // Devices of one model share one profile.
            assert!(Arc::ptr_eq(&targets[0].profile, &targets[7].profile));
            let mut seen = Vec::new();
            let limit = 600;
            let start = Instant::now();
            // Two slots: the dead device holds one for its whole limit while
            // the other slot serves all the live devices.
            let polled = status_many(targets, None, &opts(2, limit), |p| {
                seen.push((p.done, p.total, p.name.to_string(), p.ok));
            })
            .await;
            let total = start.elapsed();
            let names: Vec<&str> = polled.iter().map(|p| p.name.as_str()).collect();
            let expected: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, expected);
            for p in &polled {
                if p.name == "dead" {
                    let e = p.result.as_ref().unwrap_err();
                    assert!(e.is_timeout(), "{e}");
                    assert!(!p.answered());
                    assert!(p.elapsed >= Duration::from_millis(limit));
                } else {
                    let r = p
                        .result
                        .as_ref()
                        .unwrap_or_else(|e| panic!("{}: {e}", p.name));
                    assert!(!r.is_empty(), "{}", p.name);
                    assert!(
                        p.elapsed < Duration::from_millis(limit),
                        "{}: {:?}",
                        p.name,
                        p.elapsed
                    );
                    assert!(p.did.is_some());
                }
            }
            // Everything was done shortly after the dead device's limit.
            assert!(total < Duration::from_millis(limit + 400), "took {total:?}");
            assert_eq!(seen.len(), 19);
            assert!(seen
                .iter()
                .enumerate()
                .all(|(i, s)| s.0 == i + 1 && s.1 == 19));
            let last = seen.last().unwrap();
            assert_eq!((last.2.as_str(), last.3), ("dead", false));
        }

        #[tokio::test]
        async fn poll_home_writes_state_once_for_everyone() {
            let (_fleet, _silent, entries) = home_fleet(6, 0).await;
            let (_tmp, paths) = home();
            let catalog = ModelCatalog::new(SpecStore::new());
            let targets: Vec<DeviceTarget> = entries
                .iter()
                .map(|e| DeviceTarget::from_entry(e, &catalog))
                .collect();
            let polled = poll_home(&paths, targets, &opts(64, 400), |_| {}).await;
            assert_eq!(polled.iter().filter(|p| p.answered()).count(), 6);
            let seen = LastSeen::load(&paths);
            for e in &entries {
                let key = DeviceKey::of(e);
                let live = e.name != "dead";
                assert_eq!(seen.get(&key).is_some(), live, "{}", e.name);
                if live {
                    assert!(IdCounters::load(&paths, &key).is_some(), "{}", e.name);
                }
            }
            // One file, every live device's counters (by did and address).
            let json: serde_json::Value =
                serde_json::from_slice(&fs::read(paths.ids_file()).unwrap()).unwrap();
            assert!(json.as_object().unwrap().len() >= 6);
        }

        /// `MIJIA_POLL_SCALE=1 cargo test --release --lib poll_scale -- --ignored --nocapture`
        /// — a thousand generated devices in this process (fleet included).
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[ignore = "scale check; run explicitly"]
        async fn poll_scale() {
            let n: usize = std::env::var("MIJIA_POLL_SCALE_N")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            let cfg = FleetConfig::generate(n, std::net::Ipv4Addr::new(127, 1, 0, 1), 0, 7);
            let fleet = Fleet::start(cfg).await.unwrap();
            let catalog = ModelCatalog::new(SpecStore::new());
            let targets: Vec<DeviceTarget> = fleet
                .devices()
                .into_iter()
                .map(|d| {
                    let mut e = DeviceEntry::new(d.name, d.addr.ip(), d.token);
                    e.port = Some(d.addr.port());
                    e.model = Some(d.model);
                    DeviceTarget::from_entry(&e, &catalog)
                })
                .collect();
            let (_tmp, paths) = home();
            let start = Instant::now();
            let polled = poll_home(&paths, targets, &PollOptions::default(), |_| {}).await;
            let took = start.elapsed();
            let ok = polled.iter().filter(|p| p.result.is_ok()).count();
            for p in polled.iter().filter(|p| p.result.is_err()).take(5) {
                eprintln!(
                    "{}: {:?}",
                    p.name,
                    p.result.as_ref().err().map(ToString::to_string)
                );
            }
            eprintln!("{n} devices: {ok} ok in {took:?}");
            assert_eq!(ok, n);
        }
    }
}
