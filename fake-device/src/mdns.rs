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
//!
//! Queries are parsed and answers built by [`mijia_proto::dns`], the same
//! codec the client's mDNS browser uses.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use mijia_proto::dns::{self, Header, Question, RData};
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

/// The records of one IPv4 device: the PTR answer, then SRV, TXT and A.
fn device_records(d: &crate::fleet::DeviceInfo) -> (Vec<u8>, Vec<u8>) {
    let instance = format!("{}.{MIIO_SERVICE}", instance_label(&d.model, d.did));
    let host = format!("{}.local", instance_label(&d.model, d.did));
    let ip = match d.addr.ip() {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
    };
    let mut answer = Vec::new();
    let ptr = RData::Ptr(instance.clone());
    dns::put_record(
        &mut answer,
        MIIO_SERVICE,
        dns::TYPE_PTR,
        false,
        TTL,
        &ptr.to_bytes(),
    );
    let mut extra = Vec::new();
    let srv = RData::Srv {
        port: d.addr.port(),
        target: host.clone(),
    };
    dns::put_record(
        &mut extra,
        &instance,
        dns::TYPE_SRV,
        true,
        TTL,
        &srv.to_bytes(),
    );
    // An empty TXT record: one zero-length string.
    dns::put_record(&mut extra, &instance, dns::TYPE_TXT, true, TTL, &[0]);
    let a = RData::A(ip);
    dns::put_record(&mut extra, &host, dns::TYPE_A, true, TTL, &a.to_bytes());
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
        Header {
            id: legacy_id.unwrap_or(0),
            flags: dns::FLAG_RESPONSE | dns::FLAG_AUTHORITATIVE,
            questions: u16::from(legacy_id.is_some()),
            answers: answers.len() as u16,
            authority: 0,
            additional: (extras.len() * 3) as u16,
        }
        .put(&mut m);
        if legacy_id.is_some() {
            dns::put_question(&mut m, MIIO_SERVICE, dns::TYPE_PTR, false);
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

/// The id and questions of a query, or `None` for a response or anything
/// unreadable. Known answers after the questions are not read.
fn parse_query(buf: &[u8]) -> Option<(u16, Vec<Question>)> {
    let q = dns::parse_query(buf).ok()?;
    (!q.response).then_some((q.id, q.questions))
}

fn wants_us(questions: &[Question]) -> bool {
    questions.iter().any(|q| {
        (q.name.eq_ignore_ascii_case(MIIO_SERVICE) || q.name.eq_ignore_ascii_case(META_SERVICE))
            && (q.qtype == dns::TYPE_PTR || q.qtype == dns::TYPE_ANY)
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
        let mut q = dns::query(9, "_miio._udp.local.", dns::TYPE_PTR, false);
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

    #[test]
    fn records_parse_with_the_shared_codec() {
        let info = crate::fleet::DeviceInfo {
            name: "lamp".into(),
            did: 42,
            model: "yeelink.light.color1".into(),
            addr: SocketAddr::from((Ipv4Addr::new(127, 0, 0, 7), 54321)),
            token: mijia_proto::miio::Token::from_bytes([0; 16]),
        };
        let (answer, extra) = device_records(&info);
        let mut m = Vec::new();
        Header {
            flags: dns::FLAG_RESPONSE | dns::FLAG_AUTHORITATIVE,
            answers: 1,
            additional: 3,
            ..Header::default()
        }
        .put(&mut m);
        m.extend_from_slice(&answer);
        m.extend_from_slice(&extra);
        let msg = dns::parse(&m).unwrap_or_else(|e| panic!("{e}"));
        let instance = "yeelink-light-color1_miio42._miio._udp.local";
        let host = "yeelink-light-color1_miio42.local";
        assert_eq!(
            msg.records
                .iter()
                .map(|r| (r.name.as_str(), r.cache_flush, r.ttl, r.data.clone()))
                .collect::<Vec<_>>(),
            [
                (MIIO_SERVICE, false, TTL, RData::Ptr(instance.into())),
                (
                    instance,
                    true,
                    TTL,
                    RData::Srv {
                        port: 54321,
                        target: host.into()
                    }
                ),
                (instance, true, TTL, RData::Other(dns::TYPE_TXT)),
                (host, true, TTL, RData::A(Ipv4Addr::new(127, 0, 0, 7))),
            ]
        );
    }
}
