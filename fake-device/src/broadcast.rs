//! Answering broadcast hellos on loopback.
//!
//! Linux delivers a datagram sent to 127.255.255.255 to the sockets bound
//! to that address (and to the wildcard), not to the ones bound to
//! 127.x.y.z. So each device socket never sees a broadcast hello; instead
//! one listener per port, bound to `127.255.255.255:PORT`, hands every
//! hello it receives to each device on that port, and each device answers
//! from its own socket — the reply's source address is the device's own,
//! as on a real network.
//!
//! Devices configured with port 0 (ephemeral) get no listener. A listener
//! is owned by the fleet that bound it first. A second fleet in
//! the same host using the same port cannot bind it (no `SO_REUSEADDR`, on
//! purpose); its devices then answer unicast hellos only, and a message
//! says so. Only hellos from 127.0.0.0/8 are answered.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use mijia_proto::miio::packet;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::fleet::Shared;

/// The loopback broadcast address the listeners bind.
pub const LOOPBACK_BROADCAST: Ipv4Addr = Ipv4Addr::new(127, 255, 255, 255);

fn bind(port: u16) -> std::io::Result<UdpSocket> {
    let addr = SocketAddr::from(SocketAddrV4::new(LOOPBACK_BROADCAST, port));
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// Start the listener for `port`, serving `members`. `None` (with a log
/// line) when the address is taken.
pub(crate) fn spawn(
    port: u16,
    members: Vec<Arc<Shared>>,
    stop: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    match bind(port) {
        Ok(sock) => Some(tokio::spawn(run(sock, members, stop))),
        Err(e) => {
            tracing::info!(
                port,
                error = %e,
                "cannot listen on {LOOPBACK_BROADCAST}:{port} (another fleet has it?); \
                 these devices answer unicast hellos only"
            );
            None
        }
    }
}

async fn run(sock: UdpSocket, members: Vec<Arc<Shared>>, mut stop: watch::Receiver<bool>) {
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    if !from.ip().is_loopback() || !packet::is_hello_request(&buf[..n]) {
                        continue;
                    }
                    for m in &members {
                        m.inject(&buf[..n], from);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "broadcast listener receive failed"),
            },
        }
    }
}
