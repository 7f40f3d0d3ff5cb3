//! Where request-id counters (and learnt batch sizes) live between calls
//! and between runs.
//!
//! The transport only knows the trait; the CLI and the home layer provide a
//! file-backed store. Keys are `did:<decimal did>` once the device id is
//! known and `ip:<address>` before that.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

/// Persists the next request id per device.
pub trait IdStore: Send + Sync {
    /// The stored next id for `key`, if any.
    fn load(&self, key: &str) -> Option<u32>;
    /// Remember that the next id for `key` is `next`.
    fn store(&self, key: &str, next: u32);
    /// Remember several at once (one file write for file-backed stores).
    fn store_all(&self, entries: &[(String, u32)]) {
        for (key, next) in entries {
            self.store(key, *next);
        }
    }
    /// The `get_properties`/`set_properties` batch size learnt for `key`
    /// in an earlier run, if the store keeps them.
    fn load_batch(&self, _key: &str) -> Option<usize> {
        None
    }
    /// Remember that the device known by `keys` (its address and, once
    /// known, its did) took batches of at most `size` after it refused a
    /// larger one; one write for file-backed stores. Stores that keep no
    /// batch sizes ignore it.
    fn store_batch(&self, _keys: &[String], _size: usize) {}
}

/// The key for a device whose did is known.
pub fn did_key(did: u64) -> String {
    format!("did:{did}")
}

/// The key for a device known only by address (`ip:<ip>`, without the
/// port, matching the home layer's keys).
pub fn addr_key(addr: SocketAddr) -> String {
    format!("ip:{}", addr.ip())
}

/// An in-memory [`IdStore`] (tests, and processes that keep one device
/// object alive for long).
#[derive(Debug, Default)]
pub struct MemoryIdStore {
    map: Mutex<HashMap<String, u32>>,
    batches: Mutex<HashMap<String, usize>>,
}

impl MemoryIdStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdStore for MemoryIdStore {
    fn load(&self, key: &str) -> Option<u32> {
        self.map.lock().ok()?.get(key).copied()
    }

    fn store(&self, key: &str, next: u32) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(key.to_owned(), next);
        }
    }

    fn load_batch(&self, key: &str) -> Option<usize> {
        self.batches.lock().ok()?.get(key).copied()
    }

    fn store_batch(&self, keys: &[String], size: usize) {
        if let Ok(mut m) = self.batches.lock() {
            for key in keys {
                m.insert(key.clone(), size.max(1));
            }
        }
    }
}
