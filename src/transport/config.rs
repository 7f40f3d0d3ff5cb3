//! Client settings: ports, timers, retry and batching policy.

use std::time::Duration;

/// How a [`MiioDevice`](super::MiioDevice) talks to a device.
///
/// Every number is configurable; the defaults follow the protocol
/// reference (§8): 5 s per attempt, 3 attempts, 3 hellos spaced 200 ms
/// within a 2 s handshake window, ids in `1..=9998`, batches of 10.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Device UDP port (54321 on real devices).
    pub port: u16,
    /// How long one attempt waits for the reply to a request.
    pub timeout: Duration,
    /// Extra attempts after the first: a call makes at most
    /// `retries + 1` attempts. A timeout, a failed handshake and a busy
    /// reply (`-9999` / `-30001`) each use up one attempt.
    pub retries: u32,
    /// How long one handshake waits for a hello reply, counted from the
    /// first hello it sends.
    pub handshake_timeout: Duration,
    /// How many hellos one handshake sends (the next one only when the
    /// previous got no reply within `hello_interval`).
    pub hello_attempts: u32,
    /// Gap between hellos inside one handshake.
    pub hello_interval: Duration,
    /// Re-handshake when the last packet from the device is older than this.
    pub max_handshake_age: Duration,
    /// Largest request id; ids run in `1..=id_max` and wrap.
    pub id_max: u32,
    /// Back-off base for busy replies: `backoff_base × 2ⁿ` plus a random
    /// jitter of up to `backoff_base`.
    pub backoff_base: Duration,
    /// Initial number of properties per `get_properties`/`set_properties`
    /// request; halved (down to 1) when the device answers `-9999` or
    /// does not answer a batch, and remembered per device.
    pub batch_size: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            port: mijia_proto::miio::DEFAULT_PORT,
            timeout: Duration::from_secs(5),
            retries: 2,
            handshake_timeout: Duration::from_secs(2),
            hello_attempts: 3,
            hello_interval: Duration::from_millis(200),
            max_handshake_age: Duration::from_secs(60),
            id_max: mijia_proto::miio::IdAllocator::DEFAULT_MAX,
            backoff_base: Duration::from_millis(250),
            batch_size: 10,
        }
    }
}

impl ClientConfig {
    /// Total attempts a call may make: `retries + 1`.
    pub fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The back-off before busy retry number `n` (0-based), jitter included.
    pub fn backoff(&self, n: u32) -> Duration {
        use rand::Rng;
        let base = self.backoff_base;
        let scaled = base.saturating_mul(1u32 << n.min(6));
        let jitter_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
        let jitter = if jitter_ms == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms))
        };
        scaled.saturating_add(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_backoff() {
        let c = ClientConfig::default();
        assert_eq!(c.attempts(), 3);
        let b0 = c.backoff(0);
        assert!(b0 >= Duration::from_millis(250) && b0 <= Duration::from_millis(500));
        let b2 = c.backoff(2);
        assert!(b2 >= Duration::from_millis(1000) && b2 <= Duration::from_millis(1250));
        let huge = c.backoff(u32::MAX);
        assert!(huge <= Duration::from_millis(250 * 64 + 250));
    }
}
