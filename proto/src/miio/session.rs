//! Per-device session state: the handshake result, stamps, request ids and
//! reply matching. Time is always passed in as `now`; nothing here waits.
//!
//! Rules (see the protocol reference):
//! - ids are positive, in `1..=max` (default 9998), and never reuse one of
//!   the last [`RECENT_IDS`] ids handed out;
//! - after a timeout the counter jumps (the caller picks how far, e.g. a
//!   random 100–1000) and a fresh handshake is required;
//! - the stamp sent is the last device stamp plus whole seconds elapsed;
//! - a reply is accepted only if its id is the outstanding one and its
//!   header did is the device's; anything else is stale and ignored.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::crypto::Keys;
use super::packet::{self, HelloReply, PacketError, TooLarge};
use super::rpc::{PayloadError, Request, Response};
use super::token::Token;

/// How many recently used ids are never handed out again.
pub const RECENT_IDS: usize = 64;

/// Hands out request ids.
#[derive(Debug, Clone)]
pub struct IdAllocator {
    next: u32,
    max: u32,
    recent: VecDeque<u32>,
}

impl IdAllocator {
    /// The default upper bound (the strictest firmware seen).
    pub const DEFAULT_MAX: u32 = 9998;

    /// Start at `start` (clamped into `1..=max`).
    pub fn new(start: u32, max: u32) -> Self {
        let max = max.max(1);
        IdAllocator {
            next: wrap(start, max),
            max,
            recent: VecDeque::with_capacity(RECENT_IDS),
        }
    }

    /// The id the next call to [`next_id`](Self::next_id) will try first;
    /// persist this across runs.
    pub fn peek(&self) -> u32 {
        self.next
    }

    /// The upper bound.
    pub fn max(&self) -> u32 {
        self.max
    }

    fn advance(&mut self, by: u32) {
        let zero_based = u64::from(self.next - 1) + u64::from(by);
        self.next = (zero_based % u64::from(self.max)) as u32 + 1;
    }

    /// A fresh id, never one of the recent ones.
    pub fn next_id(&mut self) -> u32 {
        let window = RECENT_IDS.min(self.max.saturating_sub(1) as usize);
        loop {
            let id = self.next;
            self.advance(1);
            if window == 0 || !self.recent.contains(&id) {
                if window > 0 {
                    if self.recent.len() >= window {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(id);
                }
                return id;
            }
        }
    }

    /// Skip ahead (after a timeout the device may have seen the lost id
    /// and its neighbours).
    pub fn jump(&mut self, by: u32) {
        self.advance(by);
    }
}

fn wrap(id: u32, max: u32) -> u32 {
    if id == 0 {
        1
    } else {
        (id - 1) % max + 1
    }
}

/// What a datagram from the device turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The reply to the outstanding request.
    Reply(Response),
    /// A hello reply; the session has taken its did and stamp.
    Hello(HelloReply),
    /// A valid reply to something no longer outstanding (late, duplicate).
    Stale {
        /// The id it carried.
        id: u32,
    },
    /// A request pushed by the device (`properties_changed`, …).
    Push(Request),
    /// A packet from another device (header did differs).
    ForeignDid(u64),
    /// Undecodable packet (wrong token, corrupted, …).
    BadPacket(PacketError),
    /// Decrypted but not a usable JSON-RPC message.
    BadPayload(PayloadError),
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Its id.
    pub id: u32,
    /// The stamp written into the header.
    pub stamp: u32,
    /// The encrypted datagram.
    pub bytes: Vec<u8>,
}

/// Why a request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No hello reply has been seen yet.
    #[error("no handshake with the device yet")]
    NoHandshake,
    /// The request does not fit in one datagram.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

/// One device's session.
#[derive(Debug, Clone)]
pub struct Session {
    token: Token,
    keys: Keys,
    did: Option<u64>,
    clock: Option<(u32, Instant)>,
    last_rx: Option<Instant>,
    stale_handshake: bool,
    ids: IdAllocator,
    outstanding: Option<u32>,
    trailing_nul: bool,
}

impl Session {
    /// A session for a device with this token; ids start from `ids`.
    pub fn new(token: Token, ids: IdAllocator) -> Self {
        Session {
            keys: Keys::derive(&token),
            token,
            did: None,
            clock: None,
            last_rx: None,
            stale_handshake: true,
            ids,
            outstanding: None,
            trailing_nul: false,
        }
    }

    /// Append one NUL byte to request payloads (for odd firmware).
    pub fn set_trailing_nul(&mut self, on: bool) {
        self.trailing_nul = on;
    }

    /// The device id learnt from the handshake.
    pub fn did(&self) -> Option<u64> {
        self.did
    }

    /// The token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The id allocator (to persist `peek()`).
    pub fn ids(&self) -> &IdAllocator {
        &self.ids
    }

    /// Whether a hello is needed before the next request: none yet, after
    /// a timeout, or when the last packet from the device is older than
    /// `max_age`.
    pub fn needs_handshake(&self, now: Instant, max_age: Duration) -> bool {
        self.did.is_none()
            || self.stale_handshake
            || self
                .last_rx
                .is_none_or(|t| now.saturating_duration_since(t) > max_age)
    }

    /// The hello datagram.
    pub fn hello(&self) -> [u8; packet::HEADER_LEN] {
        packet::hello()
    }

    /// Take the did and clock from a hello reply.
    pub fn on_hello(&mut self, reply: &HelloReply, now: Instant) {
        self.did = Some(reply.did);
        self.clock = Some((reply.stamp, now));
        self.last_rx = Some(now);
        self.stale_handshake = false;
    }

    /// The stamp to send at `now`: device stamp + whole seconds elapsed,
    /// wrapping.
    pub fn stamp_at(&self, now: Instant) -> u32 {
        match self.clock {
            Some((s, at)) => {
                let secs = now.saturating_duration_since(at).as_secs();
                s.wrapping_add(secs as u32)
            }
            None => 0,
        }
    }

    /// Build a request with a fresh id and make it the outstanding one.
    pub fn request(
        &mut self,
        method: &str,
        params: Value,
        now: Instant,
    ) -> Result<Outgoing, SessionError> {
        let did = self.did.ok_or(SessionError::NoHandshake)?;
        let id = self.ids.next_id();
        let mut payload = Request::new(id, method, params).to_bytes();
        if self.trailing_nul {
            payload.push(0);
        }
        let stamp = self.stamp_at(now);
        let bytes = packet::encode_with_keys(&self.token, &self.keys, did, stamp, &payload)?;
        self.outstanding = Some(id);
        Ok(Outgoing { id, stamp, bytes })
    }

    /// The outstanding request id, if any.
    pub fn outstanding(&self) -> Option<u32> {
        self.outstanding
    }

    /// Give up on the outstanding request: jump the id counter by `jump`
    /// and require a fresh handshake.
    pub fn on_timeout(&mut self, jump: u32) {
        self.outstanding = None;
        self.ids.jump(jump);
        self.stale_handshake = true;
    }

    /// Forget the outstanding request without a penalty (after an error
    /// reply that will be retried with a new id).
    pub fn abandon(&mut self) {
        self.outstanding = None;
    }

    /// Classify a datagram from the device.
    pub fn handle(&mut self, datagram: &[u8], now: Instant) -> Incoming {
        if datagram.len() == packet::HEADER_LEN {
            return match packet::parse_hello_reply(datagram) {
                Ok(h) => {
                    self.on_hello(&h, now);
                    Incoming::Hello(h)
                }
                Err(e) => Incoming::BadPacket(e),
            };
        }
        let decoded = match packet::decode_with_keys(&self.token, &self.keys, datagram) {
            Ok(d) => d,
            Err(e) => return Incoming::BadPacket(e),
        };
        if let Some(did) = self.did {
            if decoded.header.did != did {
                return Incoming::ForeignDid(decoded.header.did);
            }
        }
        self.clock = Some((decoded.header.stamp, now));
        self.last_rx = Some(now);
        let value = match super::json::parse(&decoded.payload) {
            Ok((v, _)) => v,
            Err(e) => return Incoming::BadPayload(e.into()),
        };
        if value.get("method").is_some() {
            return match Request::from_value(value) {
                Ok(r) => Incoming::Push(r),
                Err(e) => Incoming::BadPayload(e),
            };
        }
        match Response::from_value(value) {
            Ok(r) if self.outstanding == Some(r.id) => {
                self.outstanding = None;
                Incoming::Reply(r)
            }
            Ok(r) => Incoming::Stale { id: r.id },
            Err(e) => Incoming::BadPayload(e),
        }
    }

    /// Acknowledge a device push (`{"id":…,"result":{"code":0}}`).
    pub fn ack_push(&self, id: u32, now: Instant) -> Result<Vec<u8>, SessionError> {
        let did = self.did.ok_or(SessionError::NoHandshake)?;
        let payload = Response::ok(id, serde_json::json!({"code": 0})).to_bytes();
        Ok(packet::encode_with_keys(
            &self.token,
            &self.keys,
            did,
            self.stamp_at(now),
            &payload,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::miio::packet::{hello_reply, HelloKind};
    use serde_json::json;

    fn tok() -> Token {
        "00112233445566778899aabbccddeeff".parse().unwrap()
    }

    fn device_reply(did: u64, stamp: u32, body: &[u8]) -> Vec<u8> {
        packet::encode(&tok(), did, stamp, body).unwrap()
    }

    fn ready(now: Instant) -> Session {
        let mut s = Session::new(tok(), IdAllocator::new(1, IdAllocator::DEFAULT_MAX));
        let h = hello_reply(0x0123_4567, 1000, &HelloKind::Provisioned);
        assert!(matches!(s.handle(&h, now), Incoming::Hello(_)));
        s
    }

    #[test]
    fn ids_are_positive_and_wrap() {
        let mut a = IdAllocator::new(9997, 9998);
        assert_eq!((a.next_id(), a.next_id(), a.next_id()), (9997, 9998, 1));
        assert_eq!(IdAllocator::new(0, 10).peek(), 1);
    }

    #[test]
    fn ids_never_reuse_recent_ones_even_across_a_wrap() {
        let mut a = IdAllocator::new(1, 100);
        let first: Vec<u32> = (0..50).map(|_| a.next_id()).collect();
        a.jump(50); // lands back on 1 after wrapping
        let next = a.next_id();
        assert!(!first[first.len() - 40..].contains(&next), "reused {next}");
    }

    #[test]
    fn timeout_jumps_and_requires_handshake() {
        let now = Instant::now();
        let mut s = ready(now);
        let a = s.request("miIO.info", json!([]), now).unwrap();
        s.on_timeout(500);
        assert!(s.needs_handshake(now, Duration::from_secs(60)));
        assert_eq!(s.outstanding(), None);
        let h = hello_reply(0x0123_4567, 1000, &HelloKind::Provisioned);
        s.handle(&h, now);
        let b = s.request("miIO.info", json!([]), now).unwrap();
        assert_eq!(b.id, a.id + 501);
    }

    #[test]
    fn stamp_is_device_stamp_plus_elapsed() {
        let t0 = Instant::now();
        let s = ready(t0);
        assert_eq!(s.stamp_at(t0), 1000);
        assert_eq!(s.stamp_at(t0 + Duration::from_millis(2500)), 1002);
        let mut w = Session::new(tok(), IdAllocator::new(1, 10));
        w.on_hello(
            &HelloReply {
                did: 1,
                stamp: u32::MAX,
                kind: HelloKind::Provisioned,
            },
            t0,
        );
        assert_eq!(w.stamp_at(t0 + Duration::from_secs(2)), 1);
    }

    #[test]
    fn stale_and_duplicate_replies_are_ignored() {
        let now = Instant::now();
        let mut s = ready(now);
        let first = s.request("get_prop", json!(["power"]), now).unwrap();
        s.abandon();
        let second = s.request("get_prop", json!(["power"]), now).unwrap();
        let late = device_reply(
            0x0123_4567,
            1001,
            format!(r#"{{"id":{},"result":["off"]}}"#, first.id).as_bytes(),
        );
        assert_eq!(s.handle(&late, now), Incoming::Stale { id: first.id });
        let good = device_reply(
            0x0123_4567,
            1002,
            format!(r#"{{"id":{},"result":["on"]}}"#, second.id).as_bytes(),
        );
        assert!(matches!(s.handle(&good, now), Incoming::Reply(r) if r.id == second.id));
        // The same reply again is a duplicate.
        assert_eq!(s.handle(&good, now), Incoming::Stale { id: second.id });
        // A reply from another did is not ours.
        let other = device_reply(
            7,
            1,
            format!(r#"{{"id":{},"result":1}}"#, second.id).as_bytes(),
        );
        assert_eq!(s.handle(&other, now), Incoming::ForeignDid(7));
    }

    #[test]
    fn stamp_follows_replies() {
        let now = Instant::now();
        let mut s = ready(now);
        let r = s.request("x", json!([]), now).unwrap();
        let reply = device_reply(
            0x0123_4567,
            5000,
            format!(r#"{{"id":{},"result":1}}"#, r.id).as_bytes(),
        );
        s.handle(&reply, now);
        assert_eq!(s.stamp_at(now), 5000);
    }

    #[test]
    fn wrong_token_is_a_bad_packet() {
        let now = Instant::now();
        let mut s = ready(now);
        let r = s.request("x", json!([]), now).unwrap();
        let other: Token = "ffffffffffffffffffffffffffffffff".parse().unwrap();
        let p = packet::encode(
            &other,
            0x0123_4567,
            1,
            format!(r#"{{"id":{},"result":1}}"#, r.id).as_bytes(),
        )
        .unwrap();
        assert_eq!(
            s.handle(&p, now),
            Incoming::BadPacket(PacketError::Checksum)
        );
    }

    #[test]
    fn push_is_recognised() {
        let now = Instant::now();
        let mut s = ready(now);
        let p = device_reply(
            0x0123_4567,
            1,
            br#"{"id":77,"method":"properties_changed","params":[]}"#,
        );
        assert!(matches!(s.handle(&p, now), Incoming::Push(r) if r.method == "properties_changed"));
    }
}
