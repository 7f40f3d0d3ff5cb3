//! One device: a connected UDP socket, a session behind a mutex, and the
//! request loop (handshake, send, wait, retry, back off).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mijia_proto::miio::packet::HelloKind;
use mijia_proto::miio::session::SessionError;
use mijia_proto::miio::{IdAllocator, Incoming, Response, Session, Token};
use rand::Rng;
use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::sync::Mutex;

use super::config::ClientConfig;
use super::error::{MiioError, Step};
use super::ids::{addr_key, did_key, IdStore};

/// Receive buffer size: the largest UDP payload fits (§9 of the reference).
pub const RECV_BUFFER: usize = 64 * 1024;

/// How the request loop treats one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Attempts allowed.
    pub attempts: u32,
    /// Whether `-9999` / `-30001` are retried here (with back-off).
    pub retry_busy: bool,
}

struct State {
    session: Session,
    /// Whether the id counter was seeded from the did key already.
    seeded_from_did: bool,
    /// Whether a request was sent in this session yet.
    sent_any: bool,
    /// The receive buffer, allocated on first use and kept, so a request
    /// does not allocate and zero 64 KiB each time.
    buf: Vec<u8>,
}

impl State {
    /// The receive buffer, taken out while a wait borrows the state;
    /// give it back with `state.buf = buf`.
    fn take_buf(&mut self) -> Vec<u8> {
        let buf = std::mem::take(&mut self.buf);
        if buf.len() == RECV_BUFFER {
            buf
        } else {
            vec![0u8; RECV_BUFFER]
        }
    }
}

/// A miIO device reached over UDP.
///
/// Holds one socket connected to the device and one [`Session`]. Calls on
/// the same device are serialised (one request in flight); different
/// `MiioDevice`s run fully in parallel.
pub struct MiioDevice {
    addr: SocketAddr,
    socket: UdpSocket,
    config: ClientConfig,
    state: Mutex<State>,
    ids: Option<Arc<dyn IdStore>>,
    batch: AtomicUsize,
}

impl std::fmt::Debug for MiioDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiioDevice")
            .field("addr", &self.addr)
            .field("batch_size", &self.batch_size())
            .finish_non_exhaustive()
    }
}

/// Counters kept over one call, used to pick the final error.
#[derive(Debug, Default)]
struct CallStats {
    attempts: u32,
    hellos: u32,
    hello_replies: u32,
    refused: bool,
    checksum_failures: u32,
    payload_error: Option<mijia_proto::miio::rpc::PayloadError>,
    last_failed: Option<Step>,
}

/// A UDP socket bound to an ephemeral port and connected to `addr`; shared
/// by [`MiioDevice`] and [`PushSubscription`](super::PushSubscription).
/// Failing fails [`Step::Socket`].
pub(super) fn open_socket(addr: SocketAddr) -> Result<UdpSocket, MiioError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let open = || -> io::Result<UdpSocket> {
        let domain = Domain::for_address(addr);
        let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        // Best effort: some systems cap the buffer; a smaller one still works.
        let _ = sock.set_recv_buffer_size(RECV_BUFFER);
        let local: SocketAddr = if addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        sock.bind(&local.into())?;
        sock.connect(&addr.into())?;
        sock.set_nonblocking(true)?;
        UdpSocket::from_std(sock.into())
    };
    open().map_err(|source| MiioError::Io {
        addr,
        step: Step::Socket,
        source,
    })
}

fn is_refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionRefused
}

/// Send one datagram on a socket connected to `addr`. `Ok(true)` when the
/// send was refused: a previous ICMP "port unreachable" surfaces here on a
/// connected socket, and the datagram is simply lost.
pub(super) async fn send_datagram(
    socket: &UdpSocket,
    addr: SocketAddr,
    bytes: &[u8],
    step: Step,
) -> Result<bool, MiioError> {
    match socket.send(bytes).await {
        Ok(_) => Ok(false),
        Err(e) if is_refused(&e) => Ok(true),
        Err(source) => Err(MiioError::Io { addr, step, source }),
    }
}

/// What one wait on a connected socket gave.
pub(super) enum Received<'b> {
    /// A datagram (a slice of the buffer).
    Datagram(&'b [u8]),
    /// An ICMP "port unreachable" for something sent earlier.
    Refused,
    /// Nothing before the deadline.
    TimedOut,
}

/// Wait until `until` for one datagram on a socket connected to `addr`,
/// into `buf`. Errors other than a refusal fail `step`.
pub(super) async fn recv_until<'b>(
    socket: &UdpSocket,
    addr: SocketAddr,
    buf: &'b mut [u8],
    until: tokio::time::Instant,
    step: Step,
) -> Result<Received<'b>, MiioError> {
    match tokio::time::timeout_at(until, socket.recv(buf)).await {
        Err(_) => Ok(Received::TimedOut),
        Ok(Ok(len)) => {
            let len = len.min(buf.len());
            Ok(Received::Datagram(&buf[..len]))
        }
        Ok(Err(e)) if is_refused(&e) => Ok(Received::Refused),
        Ok(Err(source)) => Err(MiioError::Io { addr, step, source }),
    }
}

impl MiioDevice {
    /// A device at `addr` with `token`. Must be called inside a tokio
    /// runtime. Request ids continue from `ids` when it knows this device
    /// (by address now, by did after the first handshake), else start at
    /// a random point.
    pub fn new(
        addr: SocketAddr,
        token: Token,
        config: ClientConfig,
        ids: Option<Arc<dyn IdStore>>,
    ) -> Result<Self, MiioError> {
        Self::build(addr, token, config, ids, None)
    }

    /// Like [`new`](Self::new) when the caller already knows the did (from
    /// a registry): the id counter is looked up by did first.
    pub fn with_did(
        addr: SocketAddr,
        token: Token,
        did: u64,
        config: ClientConfig,
        ids: Option<Arc<dyn IdStore>>,
    ) -> Result<Self, MiioError> {
        Self::build(addr, token, config, ids, Some(did))
    }

    fn build(
        addr: SocketAddr,
        token: Token,
        config: ClientConfig,
        ids: Option<Arc<dyn IdStore>>,
        did: Option<u64>,
    ) -> Result<Self, MiioError> {
        let socket = open_socket(addr)?;
        let id_max = config.id_max.max(1);
        let from_did = did.and_then(|d| ids.as_ref()?.load(&did_key(d)));
        let start = from_did
            .or_else(|| ids.as_ref()?.load(&addr_key(addr)))
            .filter(|n| (1..=id_max).contains(n))
            .unwrap_or_else(|| rand::thread_rng().gen_range(1..=id_max));
        let session = Session::new(token, IdAllocator::new(start, id_max));
        // A batch size learnt in an earlier run, never above the setting.
        let learnt = did
            .and_then(|d| ids.as_ref()?.load_batch(&did_key(d)))
            .or_else(|| ids.as_ref()?.load_batch(&addr_key(addr)));
        let batch = AtomicUsize::new(
            learnt
                .unwrap_or(config.batch_size)
                .clamp(1, config.batch_size.max(1)),
        );
        Ok(MiioDevice {
            addr,
            socket,
            config,
            state: Mutex::new(State {
                session,
                seeded_from_did: from_did.is_some(),
                sent_any: false,
                buf: Vec::new(),
            }),
            ids,
            batch,
        })
    }

    /// The device address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The settings in use.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The device id learnt from the last handshake, if any.
    pub async fn did(&self) -> Option<u64> {
        self.state.lock().await.session.did()
    }

    /// The id the next request will try first.
    pub async fn next_id(&self) -> u32 {
        self.state.lock().await.session.ids().peek()
    }

    /// The current `get_properties`/`set_properties` batch size (persist
    /// it to skip the shrinking next time).
    pub fn batch_size(&self) -> usize {
        self.batch.load(Ordering::Relaxed)
    }

    /// Set the batch size (e.g. restored from disk). Clamped to at least 1.
    pub fn set_batch_size(&self, n: usize) {
        self.batch.store(n.max(1), Ordering::Relaxed);
    }

    /// Remember the current batch size in the id store, by address and
    /// (once known) by did, so later runs start with it whether they know
    /// the device by its address or from the registry.
    pub(crate) async fn remember_batch(&self) {
        if let Some(ids) = &self.ids {
            let mut keys = vec![addr_key(self.addr)];
            keys.extend(self.did().await.map(did_key));
            ids.store_batch(&keys, self.batch_size());
        }
    }

    pub(crate) fn shrink_batch(&self, from: usize) -> usize {
        let to = (from / 2).max(1);
        // Only shrink; a concurrent shrink to a smaller value wins.
        let _ = self
            .batch
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                (cur > to).then_some(to)
            });
        to
    }

    /// Send `method` with `params` and return the `result`.
    ///
    /// Handshakes when needed, retries timeouts with a new id after a
    /// fresh handshake, and backs off on `-9999`/`-30001`; any other
    /// device error is returned at once.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, MiioError> {
        let policy = Policy {
            attempts: self.config.attempts(),
            retry_busy: true,
        };
        self.exchange(method, &|_| params.clone(), policy).await
    }

    /// The request loop. `params` gets the device's did (known only after
    /// the handshake).
    pub(crate) async fn exchange(
        &self,
        method: &str,
        params: &(dyn Fn(u64) -> Value + Sync),
        policy: Policy,
    ) -> Result<Value, MiioError> {
        let mut state = self.state.lock().await;
        let mut stats = CallStats::default();
        let result = self
            .exchange_locked(&mut state, method, params, policy, &mut stats)
            .await;
        self.persist_ids(&state.session);
        result
    }

    async fn exchange_locked(
        &self,
        state: &mut State,
        method: &str,
        params: &(dyn Fn(u64) -> Value + Sync),
        policy: Policy,
        stats: &mut CallStats,
    ) -> Result<Value, MiioError> {
        let attempts = policy.attempts.max(1);
        let mut busy = 0u32;
        let mut last_device_error = None;
        while stats.attempts < attempts {
            stats.attempts += 1;
            let now = Instant::now();
            let stale = state
                .session
                .needs_handshake(now, self.config.max_handshake_age);
            if stale && !self.handshake(state, stats).await? {
                stats.last_failed = Some(Step::Handshake);
                continue;
            }
            let Some(did) = state.session.did() else {
                stats.last_failed = Some(Step::Handshake);
                continue;
            };
            let out = match state.session.request(method, params(did), Instant::now()) {
                Ok(o) => o,
                Err(SessionError::TooLarge(source)) => {
                    return Err(MiioError::TooLarge {
                        method: method.to_owned(),
                        source,
                    })
                }
                Err(SessionError::NoHandshake) => {
                    stats.last_failed = Some(Step::Handshake);
                    continue;
                }
            };
            state.sent_any = true;
            tracing::debug!(addr = %self.addr, method, id = out.id, stamp = out.stamp, attempt = stats.attempts, "send");
            self.send(&out.bytes, Step::Request, stats).await?;
            match self.wait_reply(state, stats).await? {
                Some(Response { outcome: Ok(v), .. }) => return Ok(v),
                Some(Response {
                    outcome: Err(e), ..
                }) => {
                    tracing::debug!(addr = %self.addr, method, code = e.code, message = %e.message, "device error");
                    if policy.retry_busy && e.is_retryable() && stats.attempts < attempts {
                        let wait = self.config.backoff(busy);
                        busy += 1;
                        last_device_error = Some(e);
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(MiioError::Device {
                        addr: self.addr,
                        method: method.to_owned(),
                        attempts: stats.attempts,
                        error: e,
                    });
                }
                None => {
                    let jump = rand::thread_rng().gen_range(100..1000);
                    tracing::debug!(addr = %self.addr, method, jump, "request timed out");
                    state.session.on_timeout(jump);
                    stats.last_failed = Some(Step::Request);
                    last_device_error = None;
                }
            }
        }
        if let Some(error) = last_device_error {
            return Err(MiioError::Device {
                addr: self.addr,
                method: method.to_owned(),
                attempts: stats.attempts,
                error,
            });
        }
        Err(self.give_up(method, stats))
    }

    fn give_up(&self, method: &str, stats: &mut CallStats) -> MiioError {
        let (addr, attempts, method_s) = (self.addr, stats.attempts, method.to_owned());
        if stats.checksum_failures > 0 {
            return MiioError::WrongToken {
                addr,
                method: method_s,
                attempts,
                count: stats.checksum_failures,
            };
        }
        if let Some(source) = stats.payload_error.take() {
            return MiioError::Payload {
                addr,
                method: method_s,
                attempts,
                source,
            };
        }
        if stats.last_failed == Some(Step::Handshake) {
            return MiioError::Unreachable {
                addr,
                attempts,
                hellos: stats.hellos,
                refused: stats.refused && stats.hello_replies == 0,
            };
        }
        MiioError::NoReply {
            addr,
            method: method_s,
            attempts,
        }
    }

    async fn send(&self, bytes: &[u8], step: Step, stats: &mut CallStats) -> Result<(), MiioError> {
        if send_datagram(&self.socket, self.addr, bytes, step).await? {
            stats.refused = true;
        }
        Ok(())
    }

    /// Up to `hello_attempts` hellos within `handshake_timeout`. `Ok(false)`
    /// when no hello reply came.
    async fn handshake(&self, state: &mut State, stats: &mut CallStats) -> Result<bool, MiioError> {
        let mut buf = state.take_buf();
        let r = self.handshake_with(state, stats, &mut buf).await;
        state.buf = buf;
        r
    }

    async fn handshake_with(
        &self,
        state: &mut State,
        stats: &mut CallStats,
        buf: &mut [u8],
    ) -> Result<bool, MiioError> {
        let start = tokio::time::Instant::now();
        let deadline = start + self.config.handshake_timeout;
        let hello = state.session.hello();
        let hellos = self.config.hello_attempts.max(1);
        for n in 0..hellos {
            tracing::debug!(addr = %self.addr, n, "hello");
            self.send(&hello, Step::Handshake, stats).await?;
            stats.hellos += 1;
            let next_hello = if n + 1 < hellos {
                (tokio::time::Instant::now() + self.config.hello_interval).min(deadline)
            } else {
                deadline
            };
            loop {
                let got = recv_until(&self.socket, self.addr, buf, next_hello, Step::Handshake);
                let dgram = match got.await? {
                    Received::TimedOut => break,
                    Received::Refused => {
                        stats.refused = true;
                        continue;
                    }
                    Received::Datagram(d) => d,
                };
                let before = state.session.did();
                match state.session.handle(dgram, Instant::now()) {
                    Incoming::Hello(h) => {
                        stats.hello_replies += 1;
                        tracing::debug!(addr = %self.addr, did = h.did, stamp = h.stamp, "hello reply");
                        if let HelloKind::Token(t) = &h.kind {
                            if t != state.session.token() {
                                tracing::warn!(addr = %self.addr, "the device revealed a token that differs from the one given");
                            }
                        }
                        if before.is_some_and(|d| d != h.did) {
                            tracing::warn!(addr = %self.addr, old = ?before, new = h.did, "device id changed");
                        }
                        self.reseed_ids(state, h.did, &h);
                        return Ok(true);
                    }
                    other => self.note_ignored(other, stats),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        Ok(false)
    }

    /// After the first hello, continue the id counter stored for this did.
    fn reseed_ids(&self, state: &mut State, did: u64, hello: &mijia_proto::miio::HelloReply) {
        if state.seeded_from_did || state.sent_any {
            state.seeded_from_did = true;
            return;
        }
        state.seeded_from_did = true;
        let Some(store) = &self.ids else { return };
        let max = state.session.ids().max();
        if let Some(next) = store.load(&did_key(did)).filter(|n| (1..=max).contains(n)) {
            if next != state.session.ids().peek() {
                let mut fresh = Session::new(*state.session.token(), IdAllocator::new(next, max));
                fresh.on_hello(hello, Instant::now());
                state.session = fresh;
            }
        }
    }

    /// Wait for the reply to the outstanding request until the per-attempt
    /// deadline, ignoring anything else. `None` on timeout.
    async fn wait_reply(
        &self,
        state: &mut State,
        stats: &mut CallStats,
    ) -> Result<Option<Response>, MiioError> {
        let mut buf = state.take_buf();
        let r = self.wait_reply_with(state, stats, &mut buf).await;
        state.buf = buf;
        r
    }

    async fn wait_reply_with(
        &self,
        state: &mut State,
        stats: &mut CallStats,
        buf: &mut [u8],
    ) -> Result<Option<Response>, MiioError> {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        loop {
            let got = recv_until(&self.socket, self.addr, buf, deadline, Step::Request);
            let dgram = match got.await? {
                Received::TimedOut => return Ok(None),
                Received::Refused => {
                    stats.refused = true;
                    continue;
                }
                Received::Datagram(d) => d,
            };
            match state.session.handle(dgram, Instant::now()) {
                Incoming::Reply(r) => return Ok(Some(r)),
                Incoming::Push(req) => {
                    tracing::debug!(addr = %self.addr, method = %req.method, "device push; acknowledging");
                    if let Ok(ack) = state.session.ack_push(req.id, Instant::now()) {
                        let _ = self.socket.send(&ack).await;
                    }
                }
                other => self.note_ignored(other, stats),
            }
        }
    }

    fn note_ignored(&self, incoming: Incoming, stats: &mut CallStats) {
        match incoming {
            Incoming::Stale { id } => {
                tracing::debug!(addr = %self.addr, id, "ignoring stale or duplicate reply")
            }
            Incoming::ForeignDid(did) => {
                tracing::debug!(addr = %self.addr, did, "ignoring packet from another device id")
            }
            Incoming::Hello(_) => tracing::debug!(addr = %self.addr, "ignoring late hello reply"),
            Incoming::BadPacket(e) => {
                tracing::debug!(addr = %self.addr, error = %e, "ignoring bad packet");
                if e == mijia_proto::miio::PacketError::Checksum {
                    stats.checksum_failures += 1;
                }
            }
            Incoming::BadPayload(e) => {
                tracing::debug!(addr = %self.addr, error = %e, "ignoring unusable payload");
                stats.payload_error = Some(e);
            }
            Incoming::Push(_) | Incoming::Reply(_) => {}
        }
    }

    fn persist_ids(&self, session: &Session) {
        let Some(store) = &self.ids else { return };
        let next = session.ids().peek();
        let mut entries = vec![(addr_key(self.addr), next)];
        if let Some(did) = session.did() {
            entries.push((did_key(did), next));
        }
        store.store_all(&entries);
    }
}
