//! Request-id counters persisted in the home's state directory
//! (`state/ids.json`), through [`crate::home::IdCounters`], and learnt
//! batch sizes (`state/batch-sizes.json`, [`crate::home::BatchSizes`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::home::{BatchSizes, DeviceKey, HomeError, IdCounters, Paths};
use crate::transport::IdStore;

/// An [`IdStore`] backed by the home's `ids.json`. Failures to read or
/// write are logged, never fatal: ids are regenerable state.
#[derive(Debug, Clone)]
pub struct HomeIdStore {
    paths: Paths,
    warned: Arc<AtomicBool>,
}

impl HomeIdStore {
    /// A store for this home.
    pub fn new(paths: Paths) -> Self {
        HomeIdStore {
            paths,
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The store for the home the environment names (`MIJIA_HOME`, XDG),
    /// or `None` when no home directory can be found.
    pub fn from_env() -> Option<Self> {
        match Paths::from_env() {
            Ok(p) => Some(Self::new(p)),
            Err(e) => {
                tracing::warn!("request ids will not be remembered between runs: {e}");
                None
            }
        }
    }
}

impl IdStore for HomeIdStore {
    fn load(&self, key: &str) -> Option<u32> {
        let key: DeviceKey = key.parse().ok()?;
        IdCounters::load(&self.paths, &key)
    }

    fn store(&self, key: &str, next: u32) {
        self.store_all(&[(key.to_owned(), next)]);
    }

    fn store_all(&self, entries: &[(String, u32)]) {
        let keys: Vec<(DeviceKey, u32)> = entries
            .iter()
            .filter_map(|(k, n)| k.parse::<DeviceKey>().ok().map(|k| (k, *n)))
            .collect();
        if let Err(e) = IdCounters::store_many(&self.paths, &keys) {
            self.warn_once(&e);
        }
    }

    fn load_batch(&self, key: &str) -> Option<usize> {
        let key: DeviceKey = key.parse().ok()?;
        BatchSizes::load(&self.paths, &key)
    }

    fn store_batch(&self, keys: &[String], size: usize) {
        let sizes: Vec<(DeviceKey, usize)> = keys
            .iter()
            .filter_map(|k| k.parse::<DeviceKey>().ok().map(|k| (k, size)))
            .collect();
        if let Err(e) = BatchSizes::store_many(&self.paths, &sizes) {
            self.warn_once(&e);
        }
    }
}

impl HomeIdStore {
    fn warn_once(&self, e: &HomeError) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!("request ids will not be remembered between runs: {e}");
        }
    }
}
