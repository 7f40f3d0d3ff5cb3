//! Device push (`miIO.sub`): a subscription on its own socket that
//! receives `properties_changed` and `event_occured` requests from the
//! device, acknowledges each one and drops repeats.
//!
//! **What it does.** [`PushSubscription::subscribe`] opens a UDP socket
//! connected to the device, does the hello handshake and sends `miIO.sub`
//! (§15 of the protocol reference); the device then sends its pushes to
//! that socket's address. [`PushSubscription::next`] waits for the next
//! push, answers it with `{"id": …, "result": {"code": 0}}` (the device
//! resends until it sees that answer), drops a push whose id was already
//! seen in the last [`DUPLICATE_WINDOW`], and renews the subscription
//! every [`RENEW_EVERY`] (a device forgets subscriptions when it reboots,
//! and keeps only one subscriber). [`PushSubscription::unsubscribe`] sends
//! `miIO.unsub`.
//!
//! **What it does not do.** It does not read or write properties (use a
//! [`MiioDevice`](super::MiioDevice) for that: its socket is separate, so
//! pushes never get mixed with replies), does not know property names, and
//! does not decide whether push is worth using: callers fall back to
//! polling when [`subscribe`](PushSubscription::subscribe) fails, and should
//! keep a slower poll as a safety net because a push can be lost, and a
//! device keeps only one subscriber.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mijia_proto::miio::{IdAllocator, Incoming, Request, Response, Session, Token};
use rand::Rng;
use serde_json::{json, Value};
use tokio::net::UdpSocket;

use super::config::ClientConfig;
use super::device::{open_socket, recv_until, send_datagram, Received, RECV_BUFFER};
use super::error::{MiioError, Step};

/// A push id seen again within this window is a resend and is dropped
/// (after acknowledging it again).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(5);

/// How often the subscription is renewed while listening.
pub const RENEW_EVERY: Duration = Duration::from_secs(30);

/// One property change reported by the device.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedProperty {
    /// Service iid.
    pub siid: u32,
    /// Property iid.
    pub piid: u32,
    /// The value as the device sent it.
    pub value: Value,
}

/// One push from the device, acknowledged and not a repeat.
#[derive(Debug, Clone, PartialEq)]
pub enum PushEvent {
    /// `properties_changed`: the properties that changed.
    Properties(Vec<PushedProperty>),
    /// `event_occured` (sic): an event with its arguments.
    Event {
        /// Service iid.
        siid: u32,
        /// Event iid.
        eiid: u32,
        /// The arguments as sent.
        arguments: Value,
    },
    /// Any other pushed method, as sent.
    Other {
        /// The method.
        method: String,
        /// Its params.
        params: Value,
    },
}

impl PushEvent {
    /// Decodes a pushed request. Items that are not well-formed are left
    /// out (a device's own push is untrusted input).
    pub fn from_request(req: &Request) -> PushEvent {
        let iid = |v: &Value, key: &str| {
            v.get(key)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
        };
        match req.method.as_str() {
            "properties_changed" => {
                let items = match &req.params {
                    Value::Array(items) => items.as_slice(),
                    other => std::slice::from_ref(other),
                };
                PushEvent::Properties(
                    items
                        .iter()
                        .filter_map(|item| {
                            Some(PushedProperty {
                                siid: iid(item, "siid")?,
                                piid: iid(item, "piid")?,
                                value: item.get("value")?.clone(),
                            })
                        })
                        .collect(),
                )
            }
            "event_occured" => {
                let p = match &req.params {
                    Value::Array(items) => items.first().unwrap_or(&Value::Null),
                    other => other,
                };
                match (iid(p, "siid"), iid(p, "eiid")) {
                    (Some(siid), Some(eiid)) => PushEvent::Event {
                        siid,
                        eiid,
                        arguments: p.get("arguments").cloned().unwrap_or(Value::Null),
                    },
                    _ => PushEvent::Other {
                        method: req.method.clone(),
                        params: req.params.clone(),
                    },
                }
            }
            _ => PushEvent::Other {
                method: req.method.clone(),
                params: req.params.clone(),
            },
        }
    }
}

/// An active push subscription with one device. See the module docs.
#[derive(Debug)]
pub struct PushSubscription {
    addr: SocketAddr,
    socket: UdpSocket,
    session: Session,
    config: ClientConfig,
    /// The "virtual did" this client subscribes as.
    client_did: String,
    /// Push ids seen recently, with when.
    seen: VecDeque<(u32, Instant)>,
    /// Pushes that arrived while waiting for a reply.
    queued: VecDeque<PushEvent>,
    renew_at: tokio::time::Instant,
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a `miIO.sub` / `miIO.unsub` result says success.
fn is_success(result: &Value) -> bool {
    match result {
        Value::Object(o) => o.get("code").and_then(Value::as_i64) == Some(0),
        Value::String(s) => s == "ok",
        Value::Array(items) => items.first().and_then(Value::as_str) == Some("ok"),
        _ => false,
    }
}

impl PushSubscription {
    /// Handshakes with the device at `addr` and subscribes to its pushes.
    ///
    /// Fails with [`MiioError::Device`] when the device refuses `miIO.sub`
    /// (it does not support push), with [`MiioError::UnexpectedResult`]
    /// when it answers something other than success, and with the usual
    /// timeout errors when it does not answer. Must be called inside a
    /// tokio runtime.
    pub async fn subscribe(
        addr: SocketAddr,
        token: Token,
        config: ClientConfig,
    ) -> Result<PushSubscription, MiioError> {
        let socket = open_socket(addr)?;
        let id_max = config.id_max.max(1);
        let start = rand::thread_rng().gen_range(1..=id_max);
        let client_did = rand::thread_rng()
            .gen_range(1_000_000_000u64..10_000_000_000)
            .to_string();
        let mut sub = PushSubscription {
            addr,
            socket,
            session: Session::new(token, IdAllocator::new(start, id_max)),
            config,
            client_did,
            seen: VecDeque::new(),
            queued: VecDeque::new(),
            renew_at: tokio::time::Instant::now() + RENEW_EVERY,
        };
        sub.send_sub("miIO.sub").await?;
        Ok(sub)
    }

    /// The device address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The local address the device pushes to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.local_addr().ok()
    }

    /// Waits for the next push that is not a repeat, acknowledging every
    /// push received. Renews the subscription every [`RENEW_EVERY`]; an
    /// error means the renewal failed (the device stopped answering or
    /// refused), and the subscription should be considered lost.
    pub async fn next(&mut self) -> Result<PushEvent, MiioError> {
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            if let Some(ev) = self.queued.pop_front() {
                return Ok(ev);
            }
            if tokio::time::Instant::now() >= self.renew_at {
                self.send_sub("miIO.sub").await?;
                continue;
            }
            let got = recv_until(
                &self.socket,
                self.addr,
                &mut buf,
                self.renew_at,
                Step::Request,
            );
            if let Received::Datagram(dgram) = got.await? {
                // Replies to nothing outstanding are stale; only pushes matter.
                let _ = self.take(dgram).await;
            }
        }
    }

    /// Sends `miIO.unsub` (one attempt, best effort) and closes the socket.
    pub async fn unsubscribe(mut self) -> Result<(), MiioError> {
        self.config.retries = 0;
        self.send_sub("miIO.unsub").await
    }

    /// Classifies one datagram: pushes are acknowledged and queued (unless
    /// repeats); the reply to the outstanding request is returned.
    async fn take(&mut self, dgram: &[u8]) -> Option<Response> {
        match self.session.handle(dgram, Instant::now()) {
            Incoming::Reply(r) => Some(r),
            Incoming::Push(req) => {
                if let Ok(ack) = self.session.ack_push(req.id, Instant::now()) {
                    let _ = self.socket.send(&ack).await;
                }
                let now = Instant::now();
                while self
                    .seen
                    .front()
                    .is_some_and(|(_, at)| now.saturating_duration_since(*at) > DUPLICATE_WINDOW)
                {
                    self.seen.pop_front();
                }
                if self.seen.iter().any(|(id, _)| *id == req.id) {
                    tracing::debug!(addr = %self.addr, id = req.id, "repeated push dropped");
                    return None;
                }
                self.seen.push_back((req.id, now));
                tracing::debug!(addr = %self.addr, id = req.id, method = %req.method, "push");
                self.queued.push_back(PushEvent::from_request(&req));
                None
            }
            other => {
                tracing::trace!(addr = %self.addr, ?other, "ignored on the push socket");
                None
            }
        }
    }

    /// `miIO.sub` or `miIO.unsub`, with handshakes and retries.
    async fn send_sub(&mut self, method: &str) -> Result<(), MiioError> {
        let params = json!({
            "version": "2.0",
            "did": self.client_did,
            "update_ts": unix_secs(),
            "sub_method": ".",
        });
        let result = self.call(method, params).await?;
        self.renew_at = tokio::time::Instant::now() + RENEW_EVERY;
        if is_success(&result) {
            Ok(())
        } else {
            Err(MiioError::UnexpectedResult {
                addr: self.addr,
                method: method.to_owned(),
                detail: format!("expected {{\"code\": 0}}, got {result}"),
            })
        }
    }

    /// A small request loop: hello when needed, send, wait for the reply
    /// (queueing pushes meanwhile), retry with a new id after a timeout.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, MiioError> {
        let attempts = self.config.attempts().max(1);
        let mut handshake_failed = false;
        let mut hellos = 0;
        for _ in 0..attempts {
            if self
                .session
                .needs_handshake(Instant::now(), self.config.max_handshake_age)
            {
                hellos += 1;
                if !self.handshake().await? {
                    handshake_failed = true;
                    continue;
                }
            }
            handshake_failed = false;
            let out = match self.session.request(method, params.clone(), Instant::now()) {
                Ok(o) => o,
                Err(_) => {
                    handshake_failed = true;
                    continue;
                }
            };
            self.send(&out.bytes, Step::Request).await?;
            match self.wait_reply().await? {
                Some(Response { outcome: Ok(v), .. }) => return Ok(v),
                Some(Response {
                    outcome: Err(error),
                    ..
                }) => {
                    return Err(MiioError::Device {
                        addr: self.addr,
                        method: method.to_owned(),
                        attempts,
                        error,
                    })
                }
                None => {
                    let jump = rand::thread_rng().gen_range(100..1000);
                    self.session.on_timeout(jump);
                }
            }
        }
        if handshake_failed {
            return Err(MiioError::Unreachable {
                addr: self.addr,
                attempts,
                hellos,
                refused: false,
            });
        }
        Err(MiioError::NoReply {
            addr: self.addr,
            method: method.to_owned(),
            attempts,
        })
    }

    async fn send(&self, bytes: &[u8], step: Step) -> Result<(), MiioError> {
        // A refused send is a lost datagram; the wait that follows times out.
        send_datagram(&self.socket, self.addr, bytes, step).await?;
        Ok(())
    }

    async fn handshake(&mut self) -> Result<bool, MiioError> {
        let deadline = tokio::time::Instant::now() + self.config.handshake_timeout;
        let hello = self.session.hello();
        let mut buf = vec![0u8; RECV_BUFFER];
        for _ in 0..self.config.hello_attempts.max(1) {
            self.send(&hello, Step::Handshake).await?;
            let next = (tokio::time::Instant::now() + self.config.hello_interval).min(deadline);
            loop {
                let got = recv_until(&self.socket, self.addr, &mut buf, next, Step::Handshake);
                let dgram = match got.await? {
                    Received::TimedOut => break,
                    Received::Refused => continue,
                    Received::Datagram(d) => d,
                };
                if dgram.len() == mijia_proto::miio::packet::HEADER_LEN {
                    if let Incoming::Hello(_) = self.session.handle(dgram, Instant::now()) {
                        return Ok(true);
                    }
                } else {
                    let _ = self.take(dgram).await;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        Ok(false)
    }

    async fn wait_reply(&mut self) -> Result<Option<Response>, MiioError> {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            let got = recv_until(&self.socket, self.addr, &mut buf, deadline, Step::Request);
            let dgram = match got.await? {
                Received::TimedOut => return Ok(None),
                Received::Refused => continue,
                Received::Datagram(d) => d,
            };
            if let Some(r) = self.take(dgram).await {
                return Ok(Some(r));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pushes_and_skips_malformed_items() {
        let req = Request::new(
            7,
            "properties_changed",
            json!([
                {"did": "1", "siid": 2, "piid": 1, "value": true},
                {"did": "1", "siid": "x", "piid": 1, "value": true},
                {"did": "1", "siid": 2, "piid": 2}
            ]),
        );
        assert_eq!(
            PushEvent::from_request(&req),
            PushEvent::Properties(vec![PushedProperty {
                siid: 2,
                piid: 1,
                value: json!(true)
            }])
        );
        let ev = Request::new(
            8,
            "event_occured",
            json!({"did": "1", "siid": 3, "eiid": 1, "arguments": []}),
        );
        assert!(matches!(
            PushEvent::from_request(&ev),
            PushEvent::Event {
                siid: 3,
                eiid: 1,
                ..
            }
        ));
        assert!(is_success(&json!({"code": 0})));
        assert!(!is_success(&json!({"code": -1})));
    }
}
