//! Hello-based discovery: the broadcast hello and the unicast sweep.
//!
//! Both send the classic 32-byte hello from one unconnected UDP socket and
//! read 32-byte replies, which name the sender by their source address.
//! Anything that is not a valid hello reply is ignored.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use mijia_proto::miio::packet::{self, HelloKind};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::{Cidr, Found, Source};

/// Receive buffer for discovery sockets: room for replies from a few
/// thousand devices answering at once (the kernel may cap it).
const RECV_BUFFER: usize = 4 * 1024 * 1024;

/// The longest gap between two broadcast hellos.
const MAX_BROADCAST_GAP: Duration = Duration::from_secs(10);

/// An unconnected UDP socket on an ephemeral port, optionally allowed to
/// send to broadcast addresses.
pub(super) fn socket(broadcast: bool) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps the size at net.core.rmem_max.
    let _ = s.set_recv_buffer_size(RECV_BUFFER);
    if broadcast {
        s.set_broadcast(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).into())?;
    UdpSocket::from_std(s.into())
}

/// A [`Found`] for a valid hello reply, or `None`.
fn found(buf: &[u8], from: SocketAddr, source: Source, start: Instant) -> Option<Found> {
    let reply = packet::parse_hello_reply(buf).ok()?;
    let token = match reply.kind {
        HelloKind::Token(t) => Some(t),
        _ => None,
    };
    Some(Found {
        did: reply.did,
        addr: from,
        source,
        model: None,
        token,
        stamp: Some(reply.stamp),
        after: start.elapsed(),
    })
}

/// Broadcast hellos to `target` at 0, `first_gap`, 3 × `first_gap`, …
/// (the gap doubles, up to 10 s) and report every device that answers,
/// once per did and address, until `deadline`.
pub(super) async fn broadcast(
    sock: UdpSocket,
    target: SocketAddr,
    first_gap: Duration,
    start: Instant,
    deadline: Instant,
    tx: UnboundedSender<Found>,
) {
    let hello = packet::hello();
    let mut seen = HashSet::new();
    let mut buf = [0u8; 64];
    let mut next = start;
    let mut gap = first_gap.max(Duration::from_millis(10));
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now >= next {
            if let Err(e) = sock.send_to(&hello, target).await {
                tracing::warn!(%target, error = %e, "cannot send the broadcast hello");
            }
            next = now + gap;
            gap = (gap * 2).min(MAX_BROADCAST_GAP);
        }
        tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    let Some(f) = found(&buf[..n], from, Source::Broadcast, start) else {
                        continue;
                    };
                    if seen.insert((f.did, from)) && tx.send(f).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "broadcast socket receive failed"),
            },
            () = tokio::time::sleep_until(next.min(deadline)) => {}
        }
    }
}

/// How the sweep paces itself and when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepTiming {
    /// Hellos sent back to back before pausing for `pace`.
    pub burst: usize,
    /// Pause between bursts.
    pub pace: Duration,
    /// Rounds: round `n` re-sends the hello to every host that has not
    /// answered yet.
    pub rounds: u32,
    /// Round `n` starts no earlier than `n × round_gap` after the start.
    pub round_gap: Duration,
    /// How long to keep listening after the last hello of the last round.
    pub settle: Duration,
}

impl Default for SweepTiming {
    /// 64 hellos per 2 ms burst, 3 rounds 150 ms apart, 350 ms settle:
    /// a /24 takes about 0.65 s; a /16 about 6.5 s (each round takes 2 s),
    /// so it needs a longer timeout than the default 5 s. On a real LAN,
    /// blocks wider than a /22 call for a smaller burst: every hello to a
    /// new address costs the kernel a neighbour (ARP) entry.
    fn default() -> Self {
        SweepTiming {
            burst: 64,
            pace: Duration::from_millis(2),
            rounds: 3,
            round_gap: Duration::from_millis(150),
            settle: Duration::from_millis(350),
        }
    }
}

/// Send hellos to every host of `block`, in rounds (see [`SweepTiming`]), and report
/// each address of the block that answers, once. Ends when every host has answered,
/// when the last round has settled, or at `deadline`.
pub(super) async fn sweep(
    sock: UdpSocket,
    block: Cidr,
    port: u16,
    timing: SweepTiming,
    start: Instant,
    deadline: Instant,
    tx: UnboundedSender<Found>,
) {
    let hello = packet::hello();
    let hosts: Vec<Ipv4Addr> = block.hosts().collect();
    let burst = timing.burst.max(1);
    let rounds = timing.rounds.max(1);
    let mut answered: HashSet<Ipv4Addr> = HashSet::with_capacity(hosts.len().min(4096));
    let mut buf = [0u8; 64];
    let mut round = 0u32;
    let mut index = 0usize;
    let mut next_send = Some(start);
    let mut end = deadline;
    while answered.len() < hosts.len() {
        let now = Instant::now();
        if now >= end || now >= deadline {
            break;
        }
        if next_send.is_some_and(|at| at <= now) {
            let mut sent = 0;
            while sent < burst && index < hosts.len() {
                let ip = hosts[index];
                index += 1;
                if answered.contains(&ip) {
                    continue;
                }
                sent += 1;
                let to = SocketAddr::from(SocketAddrV4::new(ip, port));
                if let Err(e) = sock.send_to(&hello, to).await {
                    tracing::debug!(%to, error = %e, "sweep hello not sent");
                }
            }
            let now = Instant::now();
            if index < hosts.len() {
                next_send = Some(now + timing.pace);
            } else {
                round += 1;
                index = 0;
                if round < rounds {
                    next_send = Some((start + timing.round_gap * round).max(now));
                } else {
                    next_send = None;
                    end = (now + timing.settle).min(deadline);
                }
            }
            continue;
        }
        let wake = next_send.unwrap_or(end).min(deadline);
        tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    let Some(f) = found(&buf[..n], from, Source::Sweep, start) else {
                        continue;
                    };
                    let SocketAddr::V4(v4) = from else { continue };
                    if !block.contains(*v4.ip()) {
                        continue;
                    }
                    if answered.insert(*v4.ip()) && tx.send(f).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "sweep socket receive failed"),
            },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    tracing::debug!(
        answered = answered.len(),
        hosts = hosts.len(),
        rounds = round,
        elapsed_ms = start.elapsed().as_millis() as u64,
        "sweep finished"
    );
}
