//! mDNS browse of `_miio._udp.local.` (RFC 6762 / 6763, IPv4 only).
//!
//! Xiaomi devices announce one instance each, named
//! `<model with . as ->_miio<did>._miio._udp.local.`, for example
//! `yeelink-light-color1_miio123456789`. The did is the decimal number
//! after the **last** `_miio`; the model is the part before it with `-`
//! turned back into `.` — lossy (a model containing `-` cannot be told
//! apart), so it is only a hint that `miIO.info` confirms. TXT records are
//! not used.
//!
//! The browser binds port 5353 (shared with other responders and
//! browsers through `SO_REUSEADDR`/`SO_REUSEPORT`), joins 224.0.0.251 and
//! asks for PTR records at 0, 1, 3, 7 … s until the deadline. If 5353
//! cannot be bound it asks from an ephemeral port, and responders answer
//! by unicast (a "legacy" query). With [`MdnsOptions::interface`] set, the
//! group is joined and queries are sent on that interface only, and
//! multicast joined by other sockets on the host is not delivered here.
//!
//! Queries are built and responses parsed by [`mijia_proto::dns`], the
//! same codec the simulated fleet's announcer uses.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use mijia_proto::dns::{self, RData};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::{Found, Source};

/// The service type browsed, without the final dot.
pub const MIIO_SERVICE: &str = "_miio._udp.local";
/// The mDNS IPv4 group.
pub const MDNS_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// The mDNS port.
pub const MDNS_PORT: u16 = 5353;

/// Where and how to browse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MdnsOptions {
    /// The IPv4 address of the one interface to use (for example
    /// 127.0.0.1 for loopback). `None`: the interface the kernel picks
    /// for multicast, normally the LAN.
    pub interface: Option<Ipv4Addr>,
}

/// What an instance name says: the model hint and the did.
///
/// Accepts the full name (`…_miio123._miio._udp.local`, with or without
/// the final dot, any case) or the bare instance label. Returns `None` if
/// there is no `_miio` followed by a decimal did.
pub fn parse_instance(name: &str) -> Option<(Option<String>, u64)> {
    let name = name.trim_end_matches('.');
    let label = match name.len().checked_sub(MIIO_SERVICE.len() + 1) {
        Some(cut)
            if name.is_char_boundary(cut)
                && name[cut..].eq_ignore_ascii_case(&format!(".{MIIO_SERVICE}")) =>
        {
            &name[..cut]
        }
        _ => name,
    };
    let at = label.rfind("_miio")?;
    let digits = &label[at + "_miio".len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let did = digits.parse().ok()?;
    let model = label[..at].replace('-', ".");
    Some(((!model.is_empty()).then_some(model), did))
}

/// The browse socket: port 5353 shared, or an ephemeral port (legacy
/// mode, `true`) when 5353 cannot be bound.
pub(super) fn socket(opts: &MdnsOptions) -> io::Result<(UdpSocket, bool)> {
    let make = |port: u16| -> io::Result<Socket> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        s.bind(&SocketAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).into())?;
        Ok(s)
    };
    let (s, legacy) = match make(MDNS_PORT) {
        Ok(s) => (s, false),
        Err(e) => {
            tracing::debug!(error = %e, "cannot bind port 5353; asking from an ephemeral port");
            (make(0)?, true)
        }
    };
    let iface = opts.interface.unwrap_or(Ipv4Addr::UNSPECIFIED);
    if opts.interface.is_some() {
        s.set_multicast_if_v4(&iface)?;
        s.set_multicast_all_v4(false)?;
    }
    s.set_multicast_loop_v4(true)?;
    s.set_multicast_ttl_v4(255)?;
    if !legacy {
        s.join_multicast_v4(&MDNS_GROUP, &iface)?;
    }
    Ok((UdpSocket::from_std(s.into())?, legacy))
}

/// What the browser has learnt so far.
#[derive(Default)]
struct Cache {
    /// Instance name → where it was seen (the source of the PTR).
    instances: HashMap<String, IpAddr>,
    /// Instance name → (port, target host).
    srv: HashMap<String, (u16, String)>,
    /// Host name → address.
    a: HashMap<String, Ipv4Addr>,
    /// dids already reported.
    reported: HashSet<u64>,
}

impl Cache {
    fn learn(&mut self, msg: &dns::Message, from: IpAddr) {
        for r in &msg.records {
            let owner = r.name.to_ascii_lowercase();
            match &r.data {
                RData::Ptr(target) if owner == MIIO_SERVICE => {
                    self.instances.entry(target.clone()).or_insert(from);
                }
                RData::Srv { port, target } => {
                    self.srv.insert(owner, (*port, target.to_ascii_lowercase()));
                }
                RData::A(ip) => {
                    self.a.insert(owner, *ip);
                }
                _ => {}
            }
        }
    }

    /// Devices that can now be reported: address from SRV + A, else the
    /// address the PTR came from.
    fn ready(&mut self, default_port: u16, start: Instant) -> Vec<Found> {
        let mut out = Vec::new();
        for (instance, from) in &self.instances {
            let Some((model, did)) = parse_instance(instance) else {
                continue;
            };
            if self.reported.contains(&did) {
                continue;
            }
            let srv = self.srv.get(&instance.to_ascii_lowercase());
            let port = srv.map_or(default_port, |(p, _)| *p);
            let port = if port == 0 { default_port } else { port };
            let ip = srv
                .and_then(|(_, host)| self.a.get(host))
                .map_or(*from, |ip| IpAddr::V4(*ip));
            self.reported.insert(did);
            out.push(Found {
                did,
                addr: SocketAddr::new(ip, port),
                source: Source::Mdns,
                model,
                token: None,
                stamp: None,
                after: start.elapsed(),
            });
        }
        out
    }
}

/// Ask for `_miio._udp.local.` PTR records until `deadline` and report
/// every instance whose name carries a did, once per did.
pub(super) async fn browse(
    sock: UdpSocket,
    legacy: bool,
    opts: MdnsOptions,
    default_port: u16,
    start: Instant,
    deadline: Instant,
    tx: UnboundedSender<Found>,
) {
    let query = dns::query(
        if legacy { 0x4d49 } else { 0 },
        MIIO_SERVICE,
        dns::TYPE_PTR,
        false,
    );
    let group = SocketAddr::from(SocketAddrV4::new(MDNS_GROUP, MDNS_PORT));
    let loopback_only = opts.interface.is_some_and(|i| i.is_loopback());
    let mut cache = Cache::default();
    let mut buf = vec![0u8; 9000];
    let mut next = start;
    let mut gap = Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now >= next {
            if let Err(e) = sock.send_to(&query, group).await {
                tracing::warn!(error = %e, "cannot send the mDNS query");
            }
            next = now + gap;
            gap = (gap * 2).min(Duration::from_secs(60));
        }
        tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    if loopback_only && !from.ip().is_loopback() {
                        continue;
                    }
                    let Ok(msg) = dns::parse(&buf[..n]) else { continue };
                    if !msg.response {
                        continue;
                    }
                    cache.learn(&msg, from.ip());
                    for f in cache.ready(default_port, start) {
                        if tx.send(f).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "mDNS socket receive failed"),
            },
            () = tokio::time::sleep_until(next.min(deadline)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names() {
        assert_eq!(
            parse_instance("yeelink-light-color1_miio123456789._miio._udp.local."),
            Some((Some("yeelink.light.color1".into()), 123_456_789))
        );
        assert_eq!(
            parse_instance("yeelink-light-color1_miio123456789._MIIO._udp.local"),
            Some((Some("yeelink.light.color1".into()), 123_456_789))
        );
        // A model with `_` keeps it; the did comes after the last `_miio`.
        assert_eq!(
            parse_instance("yeelink-bhf_light-v5_miio42"),
            Some((Some("yeelink.bhf_light.v5".into()), 42))
        );
        assert_eq!(
            parse_instance("odd_miio_thing_miio7"),
            Some((Some("odd_miio_thing".into()), 7))
        );
        assert_eq!(parse_instance("_miio7"), Some((None, 7)));
        assert_eq!(parse_instance("yeelink-light_miio"), None);
        assert_eq!(parse_instance("yeelink-light_miio12x"), None);
        assert_eq!(parse_instance("printer._ipp._tcp.local"), None);
        assert_eq!(parse_instance("x_miio99999999999999999999999"), None);
        assert_eq!(
            parse_instance("é_miio5._miio._udp.local"),
            Some((Some("é".into()), 5))
        );
    }
}
