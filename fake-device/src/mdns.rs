//! Announcing the fleet over mDNS, as real devices do.
//!
//! Each device becomes one `_miio._udp.local.` instance named like real
//! firmware names it: `<model with . as ->_miio<did>` (for example
//! `yeelink-light-color1_miio123456789._miio._udp.local.`), with an SRV
//! record (its port, host `<instance>.local.`), an empty TXT record and an
//! A record (its loopback address). The announcer answers PTR queries for
//! the service (and for `_services._dns-sd._udp.local.`), by multicast to
//! queries from port 5353 and by unicast to "legacy" queries from other
//! ports, and announces everything twice when it starts.
//!
//! It runs only on a loopback interface: the interface address must be in
//! 127.0.0.0/8, multicast goes out through it only, group traffic joined
//! by other sockets is not delivered (`IP_MULTICAST_ALL` off), the socket
//! is tied to `lo` where the OS allows it, and only queries from
//! 127.0.0.0/8 are answered (or from 0.0.0.0, the source a local sender on
//! `lo` gets when it picks no interface; those get multicast replies). Run it inside a private network namespace
//! (`unshare -n`) to test against it; on a normal host's loopback most
//! systems route no multicast at all.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::fleet::DeviceHandle;

/// The service type, without the final dot.
pub const MIIO_SERVICE: &str = "_miio._udp.local";
const META_SERVICE: &str = "_services._dns-sd._udp.local";
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const TTL: u32 = 120;
/// Keep each response well under the 9,000-byte mDNS limit.
const MAX_MESSAGE: usize = 8000;

/// Where the announcer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceOptions {
    /// The loopback interface address (127.0.0.1).
    pub interface: Ipv4Addr,
    /// The mDNS port (5353).
    pub port: u16,
}

impl Default for AnnounceOptions {
    fn default() -> Self {
        AnnounceOptions {
            interface: Ipv4Addr::LOCALHOST,
            port: 5353,
        }
    }
}

/// The instance label real firmware uses: `yeelink.light.color1` and did
/// 123 give `yeelink-light-color1_miio123`.
pub fn instance_label(model: &str, did: u64) -> String {
    format!("{}_miio{did}", model.replace('.', "-"))
}

fn socket(opts: &AnnounceOptions) -> io::Result<UdpSocket> {
    if !opts.interface.is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the mDNS announcer runs on loopback only; {} is not in 127.0.0.0/8",
                opts.interface
            ),
        ));
    }
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    if let Err(e) = s.bind_device(Some(b"lo")) {
        tracing::debug!(error = %e, "cannot tie the mDNS socket to lo; relying on the other limits");
    }
    s.bind(&SocketAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, opts.port)).into())?;
    s.set_multicast_all_v4(false)?;
    s.set_multicast_if_v4(&opts.interface)?;
    s.set_multicast_loop_v4(true)?;
    s.set_multicast_ttl_v4(255)?;
    s.join_multicast_v4(&GROUP, &opts.interface)?;
    UdpSocket::from_std(s.into())
}

/// Bind and start the announcer for `devices`.
pub(crate) fn spawn(
    opts: AnnounceOptions,
    devices: Vec<DeviceHandle>,
    stop: watch::Receiver<bool>,
) -> io::Result<JoinHandle<()>> {
    let sock = socket(&opts)?;
    Ok(tokio::spawn(run(sock, opts, devices, stop)))
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let b = label.as_bytes();
        let n = b.len().min(63);
        out.push(n as u8);
        out.extend_from_slice(&b[..n]);
    }
    out.push(0);
}

fn put_record(out: &mut Vec<u8>, name: &str, rtype: u16, flush: bool, rdata: &[u8]) {
    put_name(out, name);
    out.extend_from_slice(&rtype.to_be_bytes());
    let class: u16 = if flush { 0x8001 } else { 1 };
    out.extend_from_slice(&class.to_be_bytes());
    out.extend_from_slice(&TTL.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// The records of one IPv4 device: the PTR answer, then SRV, TXT and A.
fn device_records(d: &crate::fleet::DeviceInfo) -> (Vec<u8>, Vec<u8>) {
    let instance = format!("{}.{MIIO_SERVICE}", instance_label(&d.model, d.did));
    let host = format!("{}.local", instance_label(&d.model, d.did));
    let mut answer = Vec::new();
    let mut ptr = Vec::new();
    put_name(&mut ptr, &instance);
    put_record(&mut answer, MIIO_SERVICE, 12, false, &ptr);
    let mut extra = Vec::new();
    let mut srv = vec![0, 0, 0, 0];
    srv.extend_from_slice(&d.addr.port().to_be_bytes());
    put_name(&mut srv, &host);
    put_record(&mut extra, &instance, 33, true, &srv);
    put_record(&mut extra, &instance, 16, true, &[0]);
    let ip = match d.addr.ip() {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
    };
    put_record(&mut extra, &host, 1, true, &ip.octets());
    (answer, extra)
}

/// Responses announcing `devices`, split to stay under [`MAX_MESSAGE`].
/// A legacy reply carries the query id and echoes the question.
fn responses(devices: &[DeviceHandle], legacy_id: Option<u16>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut answers: Vec<Vec<u8>> = Vec::new();
    let mut extras: Vec<Vec<u8>> = Vec::new();
    let mut size = 0;
    let flush = |answers: &mut Vec<Vec<u8>>, extras: &mut Vec<Vec<u8>>, out: &mut Vec<Vec<u8>>| {
        if answers.is_empty() {
            return;
        }
        let mut m = Vec::with_capacity(MAX_MESSAGE + 512);
        m.extend_from_slice(&legacy_id.unwrap_or(0).to_be_bytes());
        m.extend_from_slice(&0x8400u16.to_be_bytes());
        m.extend_from_slice(&u16::from(legacy_id.is_some()).to_be_bytes());
        m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
        m.extend_from_slice(&0u16.to_be_bytes());
        let extra_records = extras.len() * 3;
        m.extend_from_slice(&(extra_records as u16).to_be_bytes());
        if legacy_id.is_some() {
            put_name(&mut m, MIIO_SERVICE);
            m.extend_from_slice(&[0, 12, 0, 1]);
        }
        for a in answers.drain(..) {
            m.extend_from_slice(&a);
        }
        for e in extras.drain(..) {
            m.extend_from_slice(&e);
        }
        out.push(m);
    };
    for h in devices {
        if h.faults().offline {
            continue;
        }
        let info = h.info();
        if !matches!(info.addr.ip(), std::net::IpAddr::V4(ip) if ip.is_loopback()) {
            continue;
        }
        let (a, e) = device_records(&info);
        if size + a.len() + e.len() > MAX_MESSAGE {
            flush(&mut answers, &mut extras, &mut out);
            size = 0;
        }
        size += a.len() + e.len();
        answers.push(a);
        extras.push(e);
    }
    flush(&mut answers, &mut extras, &mut out);
    out
}

/// The id and question names of a query, or `None` for anything else.
fn parse_query(buf: &[u8]) -> Option<(u16, Vec<(String, u16)>)> {
    let be = |at: usize| {
        buf.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let id = be(0)?;
    if be(2)? & 0x8000 != 0 {
        return None;
    }
    let mut at = 12;
    let mut questions = Vec::new();
    for _ in 0..be(4)? {
        let (name, next) = read_name(buf, at)?;
        questions.push((name, be(next)?));
        at = next + 4;
    }
    Some((id, questions))
}

fn read_name(buf: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *buf.get(at)?;
        if len == 0 {
            return Some((name, end.unwrap_or(at + 1)));
        }
        if len & 0xc0 == 0xc0 {
            let target = usize::from(len & 0x3f) << 8 | usize::from(*buf.get(at + 1)?);
            end.get_or_insert(at + 2);
            at = target;
            continue;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        let label = buf.get(at + 1..at + 1 + usize::from(len))?;
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(label));
        at += 1 + usize::from(len);
    }
    None
}

fn wants_us(questions: &[(String, u16)]) -> bool {
    questions.iter().any(|(name, qtype)| {
        (name.eq_ignore_ascii_case(MIIO_SERVICE) || name.eq_ignore_ascii_case(META_SERVICE))
            && (*qtype == 12 || *qtype == 255)
    })
}

async fn send_all(sock: &UdpSocket, msgs: &[Vec<u8>], to: SocketAddr) {
    if !to.ip().is_loopback() && to.ip() != std::net::IpAddr::V4(GROUP) {
        tracing::warn!(%to, "refusing to send mDNS outside loopback");
        return;
    }
    for m in msgs {
        if let Err(e) = sock.send_to(m, to).await {
            tracing::debug!(%to, error = %e, "mDNS send failed");
        }
    }
}

async fn run(
    sock: UdpSocket,
    opts: AnnounceOptions,
    devices: Vec<DeviceHandle>,
    mut stop: watch::Receiver<bool>,
) {
    let group = SocketAddr::from(SocketAddrV4::new(GROUP, opts.port));
    let mut buf = vec![0u8; 9000];
    let mut announcements = 0;
    let announce_gap = Duration::from_secs(1);
    let mut next_announce = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep_until(next_announce), if announcements < 2 => {
                send_all(&sock, &responses(&devices, None), group).await;
                announcements += 1;
                next_announce += announce_gap;
            }
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    // A query sent on lo without a source address choice
                    // can come from 0.0.0.0 (127.0.0.1 has host scope).
                    if !(from.ip().is_loopback() || from.ip().is_unspecified()) {
                        continue;
                    }
                    let Some((id, questions)) = parse_query(&buf[..n]) else { continue };
                    if !wants_us(&questions) {
                        continue;
                    }
                    if from.port() == opts.port || from.ip().is_unspecified() {
                        send_all(&sock, &responses(&devices, None), group).await;
                    } else {
                        send_all(&sock, &responses(&devices, Some(id)), from).await;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "mDNS receive failed"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_queries() {
        assert_eq!(
            instance_label("yeelink.light.color1", 123_456_789),
            "yeelink-light-color1_miio123456789"
        );
        let mut q = vec![0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        put_name(&mut q, "_miio._udp.local.");
        q.extend_from_slice(&[0, 12, 0, 1]);
        let (id, qs) = parse_query(&q).unwrap_or_default();
        assert_eq!(id, 9);
        assert!(wants_us(&qs));
        q[2] = 0x84;
        assert_eq!(parse_query(&q), None);
        assert_eq!(
            parse_query(&[0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12]),
            None
        );
    }
}
