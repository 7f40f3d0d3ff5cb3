//! One simulated device as a sans-IO state machine.
//!
//! [`SimDevice::handle`] takes a datagram, its source and the current time
//! and returns what to send (each with a delay); [`SimDevice::handle_timeout`]
//! releases held replies and push retries once [`SimDevice::next_timeout`]
//! has passed. Nothing here opens a socket, spawns a task or reads the clock,
//! so the whole device — protocol, quirks and injected faults — is tested
//! without a network.
//!
//! What a device does with a datagram, in order:
//!
//! 1. offline or request loss: nothing;
//! 2. hello or MDID probe: the configured hello reply form (the token when
//!    unprovisioned, `MSUB` with the subscription stamp when asked);
//! 3. checksum with its token: silence on mismatch (or an all-`ff` header);
//! 4. decrypt, parse; an answer from a client to one of our pushes is an ack;
//! 5. record the request, then drop duplicates (recent ids), stale stamps
//!    (strict mode) and requests without a recent hello (when configured);
//! 6. rate limit and random busy (`-9999`), then the method itself: MIoT
//!    `get_properties` / `set_properties` / `action` against the real spec,
//!    legacy methods, `miIO.info`, `miIO.sub` / `miIO.unsub`;
//! 7. reply faults: loss, corrupted checksum, delay and jitter, duplicates,
//!    reordering.
//!
//! It does not implement events (`event_occured`), slow writes (code `1`),
//! the powered-off `-6011` answer, or a same-subnet filter.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mijia_proto::miio::crypto::Keys;
use mijia_proto::miio::packet::{self, HelloKind, PacketError, HEADER_LEN};
use mijia_proto::miio::rpc::PayloadError;
use mijia_proto::miio::{json, Request, Response, Token};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::config::{Behaviour, DeviceConfig, Faults, HelloForm, Quirk, StampStart};
use crate::legacy::LegacyModel;
use crate::spec::{self, SimSpec};

/// How long a reordered reply is held when no later reply comes.
pub const REORDER_HOLD: Duration = Duration::from_millis(200);
/// Interval between resends of an unacknowledged push.
pub const PUSH_RETRY: Duration = Duration::from_millis(1000);
/// How many times a push is sent before the device gives up on it.
pub const PUSH_ATTEMPTS: u32 = 10;
/// Default bound of the request log.
pub const DEFAULT_LOG_LIMIT: usize = 512;

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// Destination.
    pub to: SocketAddr,
    /// Send after this delay.
    pub delay: Duration,
    /// The datagram.
    pub bytes: Vec<u8>,
}

/// What happened to a recorded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Handled and answered (the answer may still be lost by a fault).
    Answered,
    /// Dropped: its id was seen recently.
    Duplicate,
    /// Dropped: strict stamp mode and the stamp was too far off.
    StaleStamp,
    /// Dropped: no hello within `needs_recent_hello_s`.
    NoRecentHello,
    /// Dropped: over the batch limit with `batch_limit_silent`.
    SilentBatch,
}

/// A decoded request as the device received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// JSON-RPC id.
    pub id: u32,
    /// Method.
    pub method: String,
    /// Params.
    pub params: Value,
    /// The did in the request header.
    pub header_did: u64,
    /// The stamp in the request header.
    pub stamp: u32,
    /// The device clock when it arrived.
    pub device_clock: u32,
    /// When it arrived.
    pub at: Instant,
    /// Who sent it.
    pub from: SocketAddr,
    /// What the device did with it.
    pub disposition: Disposition,
}

/// Errors of the device API (not of the wire: those are answered or dropped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// Model neither bundled nor legacy.
    #[error("unknown model {0:?}")]
    UnknownModel(String),
    /// No such property.
    #[error("{model} has no property {siid}.{piid}")]
    UnknownProperty {
        /// Model.
        model: String,
        /// Service.
        siid: u32,
        /// Property.
        piid: u32,
    },
    /// A value the spec (or legacy vocabulary) rejects.
    #[error("invalid value for {what}: {problem}")]
    InvalidValue {
        /// Which property.
        what: String,
        /// Why.
        problem: String,
    },
}

/// MIoT (spec-driven) or legacy vocabulary.
#[derive(Debug, Clone)]
pub(crate) enum ModelKind {
    Miot(Arc<SimSpec>),
    Legacy(LegacyModel),
}

/// Every model the simulator can run, sorted.
pub fn known_models() -> Vec<&'static str> {
    let mut v = spec::miot_models();
    v.extend_from_slice(LegacyModel::models());
    v.sort_unstable();
    v
}

fn parse_key(key: &str) -> Option<(u32, u32)> {
    let (s, p) = key.split_once('.')?;
    Some((s.trim().parse().ok()?, p.trim().parse().ok()?))
}

impl ModelKind {
    pub(crate) fn for_model(model: &str) -> Option<ModelKind> {
        if let Some(l) = LegacyModel::for_model(model) {
            return Some(ModelKind::Legacy(l));
        }
        spec::spec_for_model(model).map(ModelKind::Miot)
    }

    /// Check an `[initial]` entry; the error says what to write instead.
    pub(crate) fn check_initial(&self, key: &str, v: &Value) -> Result<(), String> {
        match self {
            ModelKind::Miot(s) => {
                let (siid, piid) = parse_key(key)
                    .ok_or_else(|| format!("key {key:?} is not \"siid.piid\" (e.g. \"2.1\")"))?;
                let p = s
                    .props
                    .get(&(siid, piid))
                    .ok_or_else(|| format!("the model's spec has no property {siid}.{piid}"))?;
                p.check(v)
                    .map_err(|e| format!("{e} (property {siid}.{piid} `{}`)", p.name))
            }
            ModelKind::Legacy(l) => {
                let name = match parse_key(key) {
                    Some((s, p)) => l.bridge(s, p).ok_or_else(|| {
                        format!("no bridge for {s}.{p}; use a legacy property name")
                    })?,
                    None => key,
                };
                l.coerce(name, v).map(|_| ())
            }
        }
    }
}

/// Pending push waiting for its ack.
#[derive(Debug, Clone)]
struct PendingPush {
    id: u32,
    to: SocketAddr,
    payload: Vec<u8>,
    next_at: Instant,
    sent: u32,
}

/// A reply held back by the reorder fault.
#[derive(Debug, Clone)]
struct Held {
    packets: Vec<Outbound>,
    release_at: Instant,
}

/// One simulated device.
#[derive(Debug)]
pub struct SimDevice {
    name: String,
    model: String,
    did: u64,
    addr: SocketAddr,
    unprovisioned: bool,
    token: Token,
    keys: Keys,
    behaviour: Behaviour,
    faults: Faults,
    kind: ModelKind,
    values: BTreeMap<(u32, u32), Value>,
    legacy: BTreeMap<String, Value>,
    rng: StdRng,
    boot_at: Instant,
    boot_uptime: u32,
    boots: u32,
    seen_ids: VecDeque<u32>,
    last_hello: Option<Instant>,
    recent: VecDeque<Instant>,
    handled_since_boot: u64,
    log: VecDeque<RecordedRequest>,
    log_limit: usize,
    held: Option<Held>,
    subscriber: Option<SocketAddr>,
    sub_ts: u32,
    next_push_id: u32,
    pushes: Vec<PendingPush>,
    changed: Vec<(u32, u32, Value)>,
}

fn fw_version(model: &str, did: u64) -> String {
    let h = model
        .bytes()
        .fold(did, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    format!(
        "{}.{}.{}_{:04}",
        1 + h % 3,
        h / 3 % 10,
        h / 30 % 10,
        h / 300 % 200
    )
}

impl SimDevice {
    /// A freshly booted device. Initial values come from the spec defaults,
    /// then from `config.initial`. The random source is seeded from the did,
    /// so a device behaves the same in every run.
    pub fn new(config: &DeviceConfig, now: Instant) -> Result<SimDevice, SimError> {
        let kind = ModelKind::for_model(&config.model)
            .ok_or_else(|| SimError::UnknownModel(config.model.clone()))?;
        let token = config.effective_token();
        let mut dev = SimDevice {
            name: config.name.clone(),
            model: config.model.clone(),
            did: config.did,
            addr: config.addr,
            unprovisioned: config.unprovisioned,
            token,
            keys: Keys::derive(&token),
            behaviour: config.behaviour.clone(),
            faults: config.faults.clone(),
            kind,
            values: BTreeMap::new(),
            legacy: BTreeMap::new(),
            rng: StdRng::seed_from_u64(config.did ^ 0x6d69_6a69_6100_0000),
            boot_at: now,
            boot_uptime: 0,
            boots: 0,
            seen_ids: VecDeque::new(),
            last_hello: None,
            recent: VecDeque::new(),
            handled_since_boot: 0,
            log: VecDeque::new(),
            log_limit: DEFAULT_LOG_LIMIT,
            held: None,
            subscriber: None,
            sub_ts: 0,
            next_push_id: 0,
            pushes: Vec::new(),
            changed: Vec::new(),
        };
        dev.boot(now);
        dev.fill_defaults();
        for (key, v) in &config.initial {
            dev.apply_initial(key, v)?;
        }
        Ok(dev)
    }

    fn fill_defaults(&mut self) {
        match &self.kind {
            ModelKind::Miot(s) => {
                let fw = fw_version(&self.model, self.did);
                let vendor = self.model.split('.').next().unwrap_or("").to_owned();
                for (k, p) in &s.props {
                    let v = match (p.service.as_str(), p.name.as_str()) {
                        ("device-information", "manufacturer") => json!(vendor),
                        ("device-information", "model") => json!(self.model),
                        ("device-information", "serial-number") => json!(self.did.to_string()),
                        ("device-information", "firmware-revision") => json!(fw),
                        ("device-information", "name") => json!(self.name),
                        _ => p.default_value(),
                    };
                    self.values.insert(*k, v);
                }
            }
            ModelKind::Legacy(l) => self.legacy = l.initial_state(),
        }
    }

    fn apply_initial(&mut self, key: &str, v: &Value) -> Result<(), SimError> {
        let invalid = |problem: String| SimError::InvalidValue {
            what: key.to_owned(),
            problem,
        };
        self.kind.check_initial(key, v).map_err(invalid)?;
        match &self.kind {
            ModelKind::Miot(_) => {
                if let Some(k) = parse_key(key) {
                    self.values.insert(k, v.clone());
                }
            }
            ModelKind::Legacy(l) => {
                let l = *l;
                let name = parse_key(key)
                    .and_then(|(s, p)| l.bridge(s, p))
                    .unwrap_or(key);
                let v = l.coerce(name, v).map_err(invalid)?;
                self.legacy.insert(name.to_owned(), v);
            }
        }
        Ok(())
    }

    fn boot(&mut self, now: Instant) {
        self.boot_at = now;
        self.boot_uptime = match self.behaviour.stamp_start {
            StampStart::Zero => 0,
            StampStart::Uptime if self.boots == 0 => self.rng.gen_range(20..5000),
            StampStart::Uptime => self.rng.gen_range(0..3),
        };
        self.boots += 1;
        self.seen_ids.clear();
        self.recent.clear();
        self.last_hello = None;
        self.handled_since_boot = 0;
        self.held = None;
        self.subscriber = None;
        self.pushes.clear();
        self.changed.clear();
        self.sub_ts = 0;
        self.next_push_id = self.rng.gen_range(1..1000);
    }

    // ----- accessors and controls ------------------------------------------

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Model id.
    pub fn model(&self) -> &str {
        &self.model
    }
    /// Device id.
    pub fn did(&self) -> u64 {
        self.did
    }
    /// Current token.
    pub fn token(&self) -> Token {
        self.token
    }
    /// The address the device reports as its own (`netif.localIp`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Set the address (the runtime does this after binding port 0).
    pub fn set_addr(&mut self, addr: SocketAddr) {
        self.addr = addr;
    }
    /// Current behaviour.
    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }
    /// Replace the behaviour (the id memory is trimmed to the new size).
    pub fn set_behaviour(&mut self, b: Behaviour) {
        self.behaviour = b;
        while self.seen_ids.len() > self.behaviour.id_memory {
            self.seen_ids.pop_front();
        }
    }
    /// Current faults.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
    /// Replace the faults. Turning reorder off releases a held reply at the
    /// next timeout.
    pub fn set_faults(&mut self, f: Faults) {
        if !f.reorder {
            if let Some(h) = &mut self.held {
                h.release_at = self.boot_at;
            }
        }
        self.faults = f;
    }
    /// Go offline (answer nothing) or come back.
    pub fn set_offline(&mut self, offline: bool) {
        self.faults.offline = offline;
    }
    /// Re-pairing: a new token; old-token packets now fail the checksum.
    pub fn change_token(&mut self, token: Token) {
        self.token = token;
        self.keys = Keys::derive(&token);
    }
    /// Simulated reboot: clock near 0, id memory, subscription and held
    /// replies cleared. State (property values) survives.
    pub fn reboot(&mut self, now: Instant) {
        self.boot(now);
    }
    /// How many times the device booted (1 after creation).
    pub fn boots(&self) -> u32 {
        self.boots
    }
    /// The device clock (uptime-like seconds) at `now`.
    pub fn clock(&self, now: Instant) -> u32 {
        let secs = now.saturating_duration_since(self.boot_at).as_secs();
        self.boot_uptime.wrapping_add(secs as u32)
    }
    /// The recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.iter().cloned().collect()
    }
    /// Forget the recorded requests.
    pub fn clear_requests(&mut self) {
        self.log.clear();
    }
    /// Bound the request log.
    pub fn set_log_limit(&mut self, limit: usize) {
        self.log_limit = limit;
        while self.log.len() > limit {
            self.log.pop_front();
        }
    }
    /// The current push subscriber.
    pub fn subscriber(&self) -> Option<SocketAddr> {
        self.subscriber
    }

    /// A property value by `(siid, piid)` (legacy models through the bridge:
    /// `2.1` is power as a bool).
    pub fn value(&self, siid: u32, piid: u32) -> Option<Value> {
        match &self.kind {
            ModelKind::Miot(_) => self.values.get(&(siid, piid)).cloned(),
            ModelKind::Legacy(l) => {
                let name = l.bridge(siid, piid)?;
                let v = self.legacy.get(name)?;
                Some(match v.as_str() {
                    Some("on") => Value::Bool(true),
                    Some("off") => Value::Bool(false),
                    _ => v.clone(),
                })
            }
        }
    }

    /// A legacy property by name (as `get_prop` stores it).
    pub fn legacy_value(&self, name: &str) -> Option<Value> {
        self.legacy.get(name).cloned()
    }

    /// A physical change (someone pressed the button): checked against the
    /// spec, stored, and pushed to a subscriber at the next timeout.
    pub fn set_value(
        &mut self,
        siid: u32,
        piid: u32,
        v: Value,
        now: Instant,
    ) -> Result<(), SimError> {
        let unknown = || SimError::UnknownProperty {
            model: self.model.clone(),
            siid,
            piid,
        };
        match &self.kind {
            ModelKind::Miot(s) => {
                let p = s.props.get(&(siid, piid)).ok_or_else(unknown)?;
                p.check(&v).map_err(|problem| SimError::InvalidValue {
                    what: format!("{siid}.{piid}"),
                    problem,
                })?;
                let notify = p.notify;
                self.store(siid, piid, v, notify);
            }
            ModelKind::Legacy(l) => {
                let l = *l;
                let name = l.bridge(siid, piid).ok_or_else(unknown)?;
                let v = l
                    .coerce(name, &v)
                    .map_err(|problem| SimError::InvalidValue {
                        what: format!("{siid}.{piid}"),
                        problem,
                    })?;
                self.legacy.insert(name.to_owned(), v);
            }
        }
        self.flush_changes(now);
        Ok(())
    }

    fn store(&mut self, siid: u32, piid: u32, v: Value, notify: bool) {
        let old = self.values.insert((siid, piid), v.clone());
        if notify && old.as_ref() != Some(&v) && self.subscriber.is_some() && self.behaviour.push {
            self.changed.push((siid, piid, v));
        }
    }

    // ----- timers ----------------------------------------------------------

    /// When [`SimDevice::handle_timeout`] next has work.
    pub fn next_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut min = |x: Instant| t = Some(t.map_or(x, |y| y.min(x)));
        if let Some(h) = &self.held {
            min(h.release_at);
        }
        for p in &self.pushes {
            min(p.next_at);
        }
        if !self.changed.is_empty() {
            min(self.boot_at);
        }
        t
    }

    /// Release held replies, send new pushes and resend unacked ones.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Outbound> {
        let mut out = Vec::new();
        if self.held.as_ref().is_some_and(|h| h.release_at <= now) {
            if let Some(h) = self.held.take() {
                out.extend(h.packets);
            }
        }
        self.flush_changes(now);
        let mut i = 0;
        while i < self.pushes.len() {
            if self.pushes[i].next_at > now {
                i += 1;
                continue;
            }
            if self.pushes[i].sent >= PUSH_ATTEMPTS {
                tracing::debug!(device = %self.name, id = self.pushes[i].id, "push never acked; giving up");
                self.pushes.swap_remove(i);
                continue;
            }
            self.pushes[i].sent += 1;
            self.pushes[i].next_at = now + PUSH_RETRY;
            let (to, payload) = (self.pushes[i].to, self.pushes[i].payload.clone());
            if let Some(bytes) = self.seal(&payload, now) {
                out.extend(self.faulted(to, bytes, true));
            }
            i += 1;
        }
        out
    }

    fn flush_changes(&mut self, now: Instant) {
        if self.changed.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.changed);
        let Some(to) = self.subscriber else { return };
        if self.faults.offline {
            return;
        }
        let did = self.did.to_string();
        let params: Vec<Value> = changes
            .into_iter()
            .map(|(siid, piid, value)| json!({"did": did, "siid": siid, "piid": piid, "value": value}))
            .collect();
        let id = self.next_push_id;
        self.next_push_id = self.next_push_id.wrapping_add(1).max(1);
        let payload = Request::new(id, "properties_changed", Value::Array(params)).to_bytes();
        self.pushes.push(PendingPush {
            id,
            to,
            payload,
            next_at: now,
            sent: 0,
        });
    }

    // ----- the wire --------------------------------------------------------

    fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen::<f64>() < p
    }

    /// Encrypt a payload into a packet from this device.
    fn seal(&self, payload: &[u8], now: Instant) -> Option<Vec<u8>> {
        packet::encode_with_keys(&self.token, &self.keys, self.did, self.clock(now), payload).ok()
    }

    /// Apply reply faults to one datagram. `encrypted` packets may get a
    /// corrupted checksum.
    fn faulted(&mut self, to: SocketAddr, mut bytes: Vec<u8>, encrypted: bool) -> Vec<Outbound> {
        if self.faults.offline || self.roll(self.faults.reply_loss) {
            return Vec::new();
        }
        if encrypted && self.roll(self.faults.corrupt_checksum) {
            bytes[HEADER_LEN - 1] ^= 0x5a;
        }
        let jitter = if self.faults.jitter_ms > 0 {
            self.rng.gen_range(0..=self.faults.jitter_ms)
        } else {
            0
        };
        let delay = Duration::from_millis(self.faults.delay_ms.saturating_add(jitter));
        let copies = 1 + self.faults.duplicate_replies as usize;
        (0..copies)
            .map(|_| Outbound {
                to,
                delay,
                bytes: bytes.clone(),
            })
            .collect()
    }

    /// Reorder fault: hold this reply, or release the held one after it.
    fn reorder(&mut self, packets: Vec<Outbound>, now: Instant) -> Vec<Outbound> {
        if !self.faults.reorder || packets.is_empty() {
            return packets;
        }
        match self.held.take() {
            Some(h) => {
                let delay = packets.first().map_or(Duration::ZERO, |p| p.delay);
                let mut out = packets;
                out.extend(h.packets.into_iter().map(|mut p| {
                    p.delay = p.delay.max(delay);
                    p
                }));
                out
            }
            None => {
                self.held = Some(Held {
                    packets,
                    release_at: now + REORDER_HOLD,
                });
                Vec::new()
            }
        }
    }

    /// Handle one datagram from `from`.
    pub fn handle(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) -> Vec<Outbound> {
        if self.faults.offline || self.roll(self.faults.request_loss) {
            return Vec::new();
        }
        if packet::is_hello_request(datagram) {
            self.last_hello = Some(now);
            let kind = if self.unprovisioned {
                HelloKind::Token(self.token)
            } else {
                match self.behaviour.hello_form {
                    HelloForm::Provisioned => HelloKind::Provisioned,
                    HelloForm::Zeros => HelloKind::Zeros,
                    HelloForm::Msub => HelloKind::Msub {
                        sub_ts: self.sub_ts,
                        wildcard: true,
                    },
                }
            };
            let reply = packet::hello_reply(self.did, self.clock(now), &kind);
            return self.faulted(from, reply.to_vec(), false);
        }
        let decoded = match packet::decode_with_keys(&self.token, &self.keys, datagram) {
            Ok(d) => d,
            Err(PacketError::Checksum) => {
                if !self.behaviour.drop_bad_checksum || self.behaviour.answer_bad_checksum_with_ff {
                    // A bare header with an all-ff checksum field.
                    let r = packet::hello_reply(self.did, self.clock(now), &HelloKind::Provisioned);
                    return self.faulted(from, r.to_vec(), false);
                }
                return Vec::new();
            }
            Err(_) => return Vec::new(),
        };
        let Ok((value, _)) = json::parse(&decoded.payload) else {
            return Vec::new();
        };
        let is_answer = value.get("method").is_none()
            && (value.get("result").is_some() || value.get("error").is_some());
        if is_answer {
            if let Ok(r) = Response::from_value(value) {
                self.pushes.retain(|p| p.id != r.id);
            }
            return Vec::new();
        }
        let req = match Request::from_value(value) {
            Ok(r) => r,
            Err(PayloadError::NoMethod) => {
                // An id but no method: JSON-RPC "invalid request".
                let id = decoded_id(&decoded.payload);
                return match id {
                    Some(id) => {
                        self.respond(Response::error(id, -32600, "Invalid request"), from, now)
                    }
                    None => Vec::new(),
                };
            }
            Err(_) => return Vec::new(),
        };
        let clock = self.clock(now);
        let mut disposition = Disposition::Answered;
        if self.behaviour.dedupe_ids {
            if self.seen_ids.contains(&req.id) {
                disposition = Disposition::Duplicate;
            } else {
                self.seen_ids.push_back(req.id);
                while self.seen_ids.len() > self.behaviour.id_memory {
                    self.seen_ids.pop_front();
                }
            }
        }
        if disposition == Disposition::Answered && self.behaviour.strict_stamp {
            let diff = i64::from(decoded.header.stamp) - i64::from(clock);
            if diff.unsigned_abs() > u64::from(self.behaviour.strict_stamp_window_s) {
                disposition = Disposition::StaleStamp;
            }
        }
        if disposition == Disposition::Answered && self.behaviour.needs_recent_hello_s > 0 {
            let fresh = self.last_hello.is_some_and(|h| {
                now.saturating_duration_since(h)
                    <= Duration::from_secs(self.behaviour.needs_recent_hello_s)
            });
            if !fresh {
                disposition = Disposition::NoRecentHello;
            }
        }
        let answer = if disposition == Disposition::Answered {
            self.dispatch(&req, from, now)
        } else {
            None
        };
        if disposition == Disposition::Answered && answer.is_none() {
            disposition = Disposition::SilentBatch;
        }
        self.record(RecordedRequest {
            id: req.id,
            method: req.method.clone(),
            params: req.params.clone(),
            header_did: decoded.header.did,
            stamp: decoded.header.stamp,
            device_clock: clock,
            at: now,
            from,
            disposition,
        });
        let mut out = match answer {
            Some(resp) => self.respond(resp, from, now),
            None => Vec::new(),
        };
        if disposition == Disposition::Answered {
            self.handled_since_boot += 1;
            if self.faults.reboot_after_requests > 0
                && self.handled_since_boot >= self.faults.reboot_after_requests
            {
                tracing::debug!(device = %self.name, "rebooting after {} requests", self.handled_since_boot);
                self.boot(now);
            }
        }
        if !self.changed.is_empty() {
            out.extend(self.handle_timeout(now));
        }
        out
    }

    fn record(&mut self, r: RecordedRequest) {
        if self.log_limit == 0 {
            return;
        }
        if self.log.len() >= self.log_limit {
            self.log.pop_front();
        }
        self.log.push_back(r);
    }

    /// Encode a response with the configured quirks and apply reply faults.
    fn respond(&mut self, resp: Response, to: SocketAddr, now: Instant) -> Vec<Outbound> {
        let mut body = resp.to_bytes_with(self.behaviour.error_key.as_str());
        if self.behaviour.exe_time && body.last() == Some(&b'}') {
            body.pop();
            let t: u32 = self.rng.gen_range(0..120);
            body.extend_from_slice(format!(",\"exe_time\":{t}}}").as_bytes());
        }
        let inject: Option<&[u8]> = match self.behaviour.quirk {
            Quirk::None => None,
            Quirk::DoubledComma => Some(b","),
            Quirk::EmptyValue => Some(b"\"ts\":,"),
            Quirk::LeadingZero => Some(b"\"ts\":00,"),
        };
        if let (Some(extra), Some(pos)) = (inject, body.iter().position(|b| *b == b',')) {
            let tail = body.split_off(pos + 1);
            body.extend_from_slice(extra);
            body.extend_from_slice(&tail);
        }
        if self.behaviour.trailing_nul {
            body.push(0);
        }
        let Some(bytes) = self.seal(&body, now) else {
            tracing::warn!(device = %self.name, "reply too large for one datagram; dropped");
            return Vec::new();
        };
        let packets = self.faulted(to, bytes, true);
        self.reorder(packets, now)
    }

    // ----- methods ---------------------------------------------------------

    fn busy(id: u32) -> Response {
        Response::error(id, -9999, "user ack timeout")
    }

    fn dispatch(&mut self, req: &Request, from: SocketAddr, now: Instant) -> Option<Response> {
        let id = req.id;
        if self.behaviour.rate_limit_per_s > 0 {
            while self
                .recent
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
            {
                self.recent.pop_front();
            }
            if self.recent.len() >= self.behaviour.rate_limit_per_s as usize {
                return Some(Self::busy(id));
            }
            self.recent.push_back(now);
        }
        if self.roll(self.behaviour.random_busy) {
            return Some(Self::busy(id));
        }
        let params = &req.params;
        match req.method.as_str() {
            "miIO.info" => return Some(Response::ok(id, self.info(now))),
            "miIO.sub" if self.behaviour.push => {
                self.subscriber = Some(from);
                let ts = params
                    .get("update_ts")
                    .and_then(Value::as_u64)
                    .map_or_else(|| self.clock(now), |t| t as u32);
                self.sub_ts = ts.max(1);
                return Some(Response::ok(id, json!({"code": 0})));
            }
            "miIO.unsub" if self.behaviour.push => {
                self.subscriber = None;
                self.sub_ts = 0;
                self.pushes.clear();
                return Some(Response::ok(id, json!({"code": 0})));
            }
            _ => {}
        }
        let kind = self.kind.clone();
        match kind {
            ModelKind::Miot(spec) => match req.method.as_str() {
                "get_properties" | "set_properties" => {
                    let Some(items) = params.as_array() else {
                        return Some(Response::error(
                            id,
                            -5001,
                            "invalid params: expected a list",
                        ));
                    };
                    if self.behaviour.batch_limit > 0 && items.len() > self.behaviour.batch_limit {
                        return if self.behaviour.batch_limit_silent {
                            None
                        } else {
                            Some(Self::busy(id))
                        };
                    }
                    let write = req.method == "set_properties";
                    let result = items
                        .iter()
                        .map(|item| self.prop_item(&spec, item, write))
                        .collect();
                    Some(Response::ok(id, Value::Array(result)))
                }
                "action" => {
                    // One object; tolerate a one-element list.
                    let obj = match params {
                        Value::Array(a) if a.len() == 1 => &a[0],
                        other => other,
                    };
                    if !obj.is_object() {
                        return Some(Response::error(
                            id,
                            -5001,
                            "invalid params: expected an object",
                        ));
                    }
                    Some(Response::ok(id, self.action(&spec, obj)))
                }
                _ => Some(self.unknown_method(id)),
            },
            ModelKind::Legacy(l) => match l.call(&mut self.legacy, &req.method, params) {
                Some(Ok(v)) => Some(Response::ok(id, v)),
                Some(Err((code, msg))) => Some(Response::error(id, code, msg)),
                None => Some(self.unknown_method(id)),
            },
        }
    }

    fn unknown_method(&self, id: u32) -> Response {
        if self.behaviour.unknown_method_string {
            Response::ok(id, json!("unknown_method"))
        } else {
            Response::error(id, -32601, "Method not found.")
        }
    }

    fn prop_item(&mut self, spec: &SimSpec, item: &Value, write: bool) -> Value {
        let mut out = Map::new();
        let did = item
            .get("did")
            .cloned()
            .unwrap_or_else(|| Value::String(self.did.to_string()));
        out.insert("did".into(), did);
        let siid = item
            .get("siid")
            .and_then(Value::as_u64)
            .and_then(|x| u32::try_from(x).ok());
        let piid = item
            .get("piid")
            .and_then(Value::as_u64)
            .and_then(|x| u32::try_from(x).ok());
        if let Some(s) = item.get("siid") {
            out.insert("siid".into(), s.clone());
        }
        if let Some(p) = item.get("piid") {
            out.insert("piid".into(), p.clone());
        }
        let def = siid
            .zip(piid)
            .and_then(|(s, p)| spec.props.get(&(s, p)).map(|d| (s, p, d)));
        let code = match def {
            None => -4003,
            Some((_, _, d)) if !write && !d.read => -4001,
            Some((s, p, _)) if !write => {
                let v = self.values.get(&(s, p)).cloned().unwrap_or(Value::Null);
                out.insert("value".into(), v);
                0
            }
            Some((_, _, d)) if !d.write => -4002,
            Some((s, p, d)) => match item.get("value") {
                Some(v) if d.check(v).is_ok() => {
                    self.store(s, p, v.clone(), d.notify);
                    0
                }
                _ => -4005,
            },
        };
        // Keep "code" before "value" in spirit; serde_json sorts keys anyway.
        out.insert("code".into(), Value::from(code));
        Value::Object(out)
    }

    fn action(&mut self, spec: &SimSpec, obj: &Value) -> Value {
        let siid = obj
            .get("siid")
            .and_then(Value::as_u64)
            .and_then(|x| u32::try_from(x).ok());
        let aiid = obj
            .get("aiid")
            .and_then(Value::as_u64)
            .and_then(|x| u32::try_from(x).ok());
        let Some(((siid, _aiid), def)) = siid
            .zip(aiid)
            .and_then(|k| spec.actions.get(&k).map(|d| (k, d)))
        else {
            return json!({"code": -4003});
        };
        let ins: Vec<Value> = match obj.get("in") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return json!({"code": -4006}),
        };
        if ins.len() != def.ins.len() {
            return json!({"code": -4006});
        }
        for (piid, v) in def.ins.iter().zip(&ins) {
            if let Some(p) = spec.props.get(&(siid, *piid)) {
                if p.check(v).is_err() {
                    return json!({"code": -4006});
                }
            }
        }
        for (piid, v) in def.ins.iter().zip(ins) {
            let notify = spec.props.get(&(siid, *piid)).is_some_and(|p| p.notify);
            self.store(siid, *piid, v, notify);
        }
        self.action_effect(spec, siid, &def.name);
        let out: Vec<Value> = def
            .outs
            .iter()
            .map(|piid| {
                self.values.get(&(siid, *piid)).cloned().unwrap_or_else(|| {
                    spec.props
                        .get(&(siid, *piid))
                        .map_or(Value::Null, |p| p.default_value())
                })
            })
            .collect();
        json!({"code": 0, "out": out})
    }

    /// Plausible side effects of common actions.
    fn action_effect(&mut self, spec: &SimSpec, siid: u32, name: &str) {
        let find = |pname: &str, svc: Option<u32>| {
            spec.props
                .iter()
                .find(|((s, _), p)| (svc.is_none() || svc == Some(*s)) && p.name == pname)
                .map(|(k, p)| (*k, p.notify))
        };
        match name {
            "toggle" => {
                // The `on` of this service, else the first `on` of the device.
                if let Some(((s, p), notify)) = find("on", Some(siid)).or_else(|| find("on", None))
                {
                    let cur = self
                        .values
                        .get(&(s, p))
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    self.store(s, p, Value::Bool(!cur), notify);
                }
            }
            "turn-on" | "turn-off" => {
                if let Some(((s, p), notify)) = find("on", Some(siid)) {
                    self.store(s, p, Value::Bool(name == "turn-on"), notify);
                }
            }
            n if n.starts_with("reset-") && n.ends_with("-life") => {
                let targets: Vec<_> = spec
                    .props
                    .iter()
                    .filter(|((s, _), p)| *s == siid && p.name.ends_with("life-level"))
                    .map(|(k, p)| (*k, p.notify, p.range.map_or(100.0, |r| r.1)))
                    .collect();
                for ((s, p), notify, max) in targets {
                    self.store(s, p, Value::from(max as i64), notify);
                }
            }
            _ => {}
        }
    }

    fn info(&mut self, now: Instant) -> Value {
        let d = self.did.to_be_bytes();
        let mac = format!("28:6C:{:02X}:{:02X}:{:02X}:{:02X}", d[4], d[5], d[6], d[7]);
        let ip = match self.addr.ip() {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => std::net::Ipv4Addr::LOCALHOST,
        };
        let o = ip.octets();
        let gw = format!("{}.{}.{}.1", o[0], o[1], o[2]);
        let legacy = matches!(self.kind, ModelKind::Legacy(_));
        let mmfree: u32 = self.rng.gen_range(20_000..60_000);
        let rssi: i32 = self.rng.gen_range(-75..-40);
        json!({
            "life": self.clock(now),
            "cfg_time": 0,
            "token": self.token.reveal(),
            "mac": mac,
            "fw_ver": fw_version(&self.model, self.did),
            "hw_ver": if legacy { "MW300" } else { "esp32" },
            "uid": 1_000_000_000u64 + self.did % 1_000_000_000,
            "model": self.model,
            "wifi_fw_ver": if legacy { "SD878x-14.76.36.p84-702.1.0-WM" } else { "v4.3.2-dirty" },
            "ap": {"rssi": rssi, "ssid": "mijia-sim", "bssid": format!("28:6C:07:{:02X}:{:02X}:01", o[1], o[2])},
            "netif": {"localIp": ip.to_string(), "mask": "255.255.255.0", "gw": gw},
            "mmfree": mmfree,
            "ot": "otu",
            "otu_stat": [101, 74, 5343, 0, 5327, 407],
            "ott_stat": [0, 0, 0, 0],
        })
    }
}

// ----- the cloud's view of a device ---------------------------------------------

impl SimDevice {
    /// True when the device answers nothing (the `offline` fault).
    pub fn is_offline(&self) -> bool {
        self.faults.offline
    }

    /// The `miIO.info` object the device would answer (mac, ap, netif, …).
    pub fn miio_info(&mut self, now: Instant) -> Value {
        self.info(now)
    }

    /// MIoT property reads or writes relayed by the simulated cloud: the
    /// same spec checks and state as `get_properties`/`set_properties`
    /// over UDP (device codes `-4001`, `-4002`, `-4003`, `-4005`), without
    /// the LAN behaviours (batch limit, rate limit, random busy) and without
    /// recording a request. Legacy models go through their `siid.piid`
    /// bridge. `None` when the device is offline.
    pub fn cloud_properties(
        &mut self,
        items: &[Value],
        write: bool,
        now: Instant,
    ) -> Option<Vec<Value>> {
        if self.faults.offline {
            return None;
        }
        let out = match self.kind.clone() {
            ModelKind::Miot(spec) => items
                .iter()
                .map(|item| self.prop_item(&spec, item, write))
                .collect(),
            ModelKind::Legacy(_) => items
                .iter()
                .map(|item| self.legacy_prop_item(item, write, now))
                .collect(),
        };
        self.flush_changes(now);
        Some(out)
    }

    fn legacy_prop_item(&mut self, item: &Value, write: bool, now: Instant) -> Value {
        let id = |k: &str| {
            item.get(k)
                .and_then(Value::as_u64)
                .and_then(|x| u32::try_from(x).ok())
        };
        let mut out = Map::new();
        for k in ["did", "siid", "piid"] {
            if let Some(v) = item.get(k) {
                out.insert(k.into(), v.clone());
            }
        }
        let code = match (id("siid"), id("piid")) {
            (Some(s), Some(p)) if !write => match self.value(s, p) {
                Some(v) => {
                    out.insert("value".into(), v);
                    0
                }
                None => -4003,
            },
            (Some(s), Some(p)) => {
                let v = item.get("value").cloned().unwrap_or(Value::Null);
                match self.set_value(s, p, v, now) {
                    Ok(()) => 0,
                    Err(SimError::InvalidValue { .. }) => -4005,
                    Err(_) => -4003,
                }
            }
            _ => -4003,
        };
        out.insert("code".into(), Value::from(code));
        Value::Object(out)
    }

    /// A MIoT action relayed by the simulated cloud (`{"siid","aiid","in"}`);
    /// the result is `{"code", "out"?}` with device codes (`-4003` unknown
    /// action, `-4006` bad arguments). `None` when the device is offline.
    pub fn cloud_action(&mut self, obj: &Value, now: Instant) -> Option<Value> {
        if self.faults.offline {
            return None;
        }
        let out = match self.kind.clone() {
            ModelKind::Miot(spec) => self.action(&spec, obj),
            ModelKind::Legacy(_) => json!({"code": -4003}),
        };
        self.flush_changes(now);
        Some(out)
    }

    /// A raw miIO request relayed by the simulated cloud (`/home/rpc/<did>`):
    /// the device's own method handler, LAN behaviours included, not
    /// recorded in the request log. Push subscriptions cannot be made this
    /// way (`miIO.sub`/`miIO.unsub` are unknown methods here). `None` when
    /// the device is offline or stays silent.
    pub fn cloud_rpc(&mut self, method: &str, params: Value, now: Instant) -> Option<Response> {
        if self.faults.offline {
            return None;
        }
        let req = Request::new(1, method, params);
        let out = if matches!(method, "miIO.sub" | "miIO.unsub") {
            Some(self.unknown_method(req.id))
        } else {
            let from = self.addr;
            self.dispatch(&req, from, now)
        };
        self.flush_changes(now);
        out
    }
}

/// The id of a payload that parsed as JSON but not as a request.
fn decoded_id(payload: &[u8]) -> Option<u32> {
    let (v, _) = json::parse(payload).ok()?;
    let id = v.get("id")?.as_u64()?;
    u32::try_from(id).ok().filter(|i| *i > 0)
}

#[cfg(test)]
mod tests;
