//! The runtime: one loopback UDP socket and one task per simulated device.
//!
//! [`Fleet::start`] validates the configuration, binds every socket (with
//! a 64 KiB receive buffer; no `SO_REUSEADDR`, so two fleets on one address
//! fail loudly instead of sharing it) and spawns the device tasks.
//! Each task feeds datagrams and timer ticks into its [`SimDevice`] and sends
//! what comes back, honouring each packet's delay through a small per-device
//! send queue (no task per packet). [`DeviceHandle`] changes a running
//! device — faults, behaviour, reboot, token, physical value changes —
//! and reads its request log.
//!
//! Sockets bind only inside 127.0.0.0/8 (checked when the configuration is
//! validated), and the task refuses to send to any address outside it.
//! This module does not parse fleet files (see [`crate::config`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use mijia_proto::miio::Token;
use serde_json::Value;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::{Behaviour, Faults, FleetConfig, FleetError, FleetOptions};
use crate::sim::{Outbound, RecordedRequest, SimDevice, SimError};

/// Size of the socket receive buffer and of each task's datagram buffer.
pub const RECV_BUFFER: usize = 64 * 1024;

/// What a running device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Name from the fleet file.
    pub name: String,
    /// Device id.
    pub did: u64,
    /// Model id.
    pub model: String,
    /// The bound address (the real port when the file said port 0).
    pub addr: SocketAddr,
    /// The current token.
    pub token: Token,
}

pub(crate) struct Shared {
    sim: Mutex<SimDevice>,
    wake: Notify,
    /// Datagrams received elsewhere (the broadcast listener) for this
    /// device to handle and answer from its own socket.
    inbox: Mutex<Vec<(Vec<u8>, SocketAddr)>>,
}

impl Shared {
    fn sim(&self) -> MutexGuard<'_, SimDevice> {
        // A panic while holding the lock cannot leave the device half
        // changed in a way that matters for a simulator; keep going.
        self.sim.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand the device a datagram as if its socket had received it.
    pub(crate) fn inject(&self, bytes: &[u8], from: SocketAddr) {
        self.inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((bytes.to_vec(), from));
        self.wake.notify_one();
    }

    fn take_inbox(&self) -> Vec<(Vec<u8>, SocketAddr)> {
        std::mem::take(&mut *self.inbox.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Control of one running device. Cheap to clone.
#[derive(Clone)]
pub struct DeviceHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DeviceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DeviceHandle")
            .field(&self.info().name)
            .finish()
    }
}

impl DeviceHandle {
    fn with<T>(&self, f: impl FnOnce(&mut SimDevice) -> T) -> T {
        let out = f(&mut self.shared.sim());
        self.shared.wake.notify_one();
        out
    }

    /// Name, did, model, bound address and current token.
    pub fn info(&self) -> DeviceInfo {
        let s = self.shared.sim();
        DeviceInfo {
            name: s.name().to_owned(),
            did: s.did(),
            model: s.model().to_owned(),
            addr: s.addr(),
            token: s.token(),
        }
    }
    /// Current faults.
    pub fn faults(&self) -> Faults {
        self.shared.sim().faults().clone()
    }
    /// Replace the faults.
    pub fn set_faults(&self, faults: Faults) {
        self.with(|s| s.set_faults(faults));
    }
    /// Current behaviour.
    pub fn behaviour(&self) -> Behaviour {
        self.shared.sim().behaviour().clone()
    }
    /// Replace the behaviour.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.with(|s| s.set_behaviour(behaviour));
    }
    /// Simulated reboot: clock near 0, id memory and subscription cleared.
    pub fn reboot(&self) {
        self.with(|s| s.reboot(Instant::now()));
    }
    /// Go offline (no answers at all) or come back.
    pub fn set_offline(&self, offline: bool) {
        self.with(|s| s.set_offline(offline));
    }
    /// The recorded requests, oldest first (bounded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.sim().requests()
    }
    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.sim().clear_requests();
    }
    /// A property value (legacy models through the `2.1`/`2.2` bridge).
    pub fn value(&self, siid: u32, piid: u32) -> Option<Value> {
        self.shared.sim().value(siid, piid)
    }
    /// A legacy property by name.
    pub fn legacy_value(&self, name: &str) -> Option<Value> {
        self.shared.sim().legacy_value(name)
    }
    /// A physical change; pushed to a subscriber if there is one.
    pub fn set_value(&self, siid: u32, piid: u32, value: Value) -> Result<(), SimError> {
        self.with(|s| s.set_value(siid, piid, value, Instant::now()))
    }
    /// Re-pairing: the device now uses `token`.
    pub fn change_token(&self, token: Token) {
        self.with(|s| s.change_token(token));
    }
    /// The device clock now.
    pub fn clock(&self) -> u32 {
        self.shared.sim().clock(Instant::now())
    }
    /// How many times the device booted.
    pub fn boots(&self) -> u32 {
        self.shared.sim().boots()
    }
    /// The push subscriber, if any.
    pub fn subscriber(&self) -> Option<SocketAddr> {
        self.shared.sim().subscriber()
    }
    /// True when the device is offline (answers nothing).
    pub fn is_offline(&self) -> bool {
        self.shared.sim().is_offline()
    }
    /// The device's `miIO.info` object.
    pub fn miio_info(&self) -> Value {
        self.shared.sim().miio_info(Instant::now())
    }
    /// Property reads or writes relayed by the simulated cloud; see
    /// [`SimDevice::cloud_properties`].
    pub fn cloud_properties(&self, items: &[Value], write: bool) -> Option<Vec<Value>> {
        self.with(|s| s.cloud_properties(items, write, Instant::now()))
    }
    /// An action relayed by the simulated cloud; see [`SimDevice::cloud_action`].
    pub fn cloud_action(&self, obj: &Value) -> Option<Value> {
        self.with(|s| s.cloud_action(obj, Instant::now()))
    }
    /// A raw miIO request relayed by the simulated cloud; see
    /// [`SimDevice::cloud_rpc`].
    pub fn cloud_rpc(&self, method: &str, params: Value) -> Option<mijia_proto::miio::Response> {
        self.with(|s| s.cloud_rpc(method, params, Instant::now()))
    }
}

/// A running fleet. Dropping it stops the tasks; [`Fleet::shutdown`] also
/// waits for them.
pub struct Fleet {
    handles: Vec<DeviceHandle>,
    by_name: HashMap<String, usize>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("devices", &self.handles.len())
            .finish()
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_recv_buffer_size(RECV_BUFFER)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn is_loopback(a: &SocketAddr) -> bool {
    match a.ip() {
        IpAddr::V4(v) => v.is_loopback(),
        IpAddr::V6(v) => v.is_loopback(),
    }
}

impl Fleet {
    /// Validate, bind every device's socket, start the tasks, with the
    /// default [`FleetOptions`] (loopback broadcast answered, no mDNS).
    /// Returns once every socket is bound. Must run inside a tokio runtime.
    pub async fn start(config: FleetConfig) -> Result<Fleet, FleetError> {
        Fleet::start_with(config, FleetOptions::default()).await
    }

    /// [`start`](Self::start) with fleet-wide options: the loopback
    /// broadcast listeners ([`crate::broadcast`]) and the mDNS announcer
    /// ([`crate::mdns`]).
    pub async fn start_with(
        config: FleetConfig,
        options: FleetOptions,
    ) -> Result<Fleet, FleetError> {
        config.validate()?;
        let now = Instant::now();
        let (stop, stop_rx) = watch::channel(false);
        let mut fleet = Fleet {
            handles: Vec::with_capacity(config.devices.len()),
            by_name: HashMap::with_capacity(config.devices.len()),
            stop,
            tasks: Vec::with_capacity(config.devices.len()),
        };
        let mut sockets = Vec::with_capacity(config.devices.len());
        for d in &config.devices {
            let bind_err = |source| FleetError::Bind {
                name: d.name.clone(),
                addr: d.addr,
                source,
            };
            let std_sock = bind(d.addr).map_err(bind_err)?;
            let local = std_sock.local_addr().map_err(bind_err)?;
            let sock = UdpSocket::from_std(std_sock).map_err(bind_err)?;
            let mut sim = SimDevice::new(d, now).map_err(|e| FleetError::Device {
                index: fleet.handles.len() + 1,
                name: d.name.clone(),
                field: "model".into(),
                problem: e.to_string(),
            })?;
            sim.set_addr(local);
            let handle = DeviceHandle {
                shared: Arc::new(Shared {
                    sim: Mutex::new(sim),
                    wake: Notify::new(),
                    inbox: Mutex::new(Vec::new()),
                }),
            };
            fleet.by_name.insert(d.name.clone(), fleet.handles.len());
            fleet.handles.push(handle);
            sockets.push(sock);
        }
        for (sock, h) in sockets.into_iter().zip(&fleet.handles) {
            let shared = Arc::clone(&h.shared);
            fleet
                .tasks
                .push(tokio::spawn(run(sock, shared, stop_rx.clone())));
        }
        if options.broadcast {
            // Devices on an ephemeral port (0 in the configuration) are
            // left out: nobody can broadcast to a port they do not know.
            let mut by_port: BTreeMap<u16, Vec<Arc<Shared>>> = BTreeMap::new();
            for (d, h) in config.devices.iter().zip(&fleet.handles) {
                if d.addr.port() != 0 {
                    let members = by_port.entry(d.addr.port()).or_default();
                    members.push(Arc::clone(&h.shared));
                }
            }
            for (port, members) in by_port {
                fleet
                    .tasks
                    .extend(crate::broadcast::spawn(port, members, stop_rx.clone()));
            }
        }
        if let Some(m) = options.mdns {
            let task = crate::mdns::spawn(m, fleet.handles.clone(), stop_rx.clone()).map_err(
                |source| FleetError::Bind {
                    name: "mDNS announcer".into(),
                    addr: SocketAddr::from((m.interface, m.port)),
                    source,
                },
            )?;
            fleet.tasks.push(task);
        }
        tracing::info!(devices = fleet.handles.len(), "fleet started");
        Ok(fleet)
    }

    /// Every device, in configuration order.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.handles.iter().map(DeviceHandle::info).collect()
    }

    /// A device by name.
    pub fn device(&self, name: &str) -> Option<DeviceHandle> {
        self.by_name.get(name).map(|i| self.handles[*i].clone())
    }

    /// All handles, in configuration order.
    pub fn handles(&self) -> &[DeviceHandle] {
        &self.handles
    }

    /// Stop every device and wait for the tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A datagram waiting for its send time.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    at: Instant,
    seq: u64,
    to: SocketAddr,
    bytes: Vec<u8>,
}

struct SendQueue {
    heap: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
}

impl SendQueue {
    fn push(&mut self, now: Instant, outs: Vec<Outbound>) {
        for o in outs {
            self.seq += 1;
            self.heap.push(Reverse(Scheduled {
                at: now + o.delay,
                seq: self.seq,
                to: o.to,
                bytes: o.bytes,
            }));
        }
    }

    fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(s)| s.at)
    }

    async fn send_due(&mut self, sock: &UdpSocket, now: Instant) {
        while self.heap.peek().is_some_and(|Reverse(s)| s.at <= now) {
            let Some(Reverse(s)) = self.heap.pop() else {
                break;
            };
            if !is_loopback(&s.to) {
                tracing::warn!(to = %s.to, "refusing to send outside 127.0.0.0/8");
                continue;
            }
            if let Err(e) = sock.send_to(&s.bytes, s.to).await {
                tracing::debug!(to = %s.to, error = %e, "send failed");
            }
        }
    }
}

async fn run(sock: UdpSocket, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut queue = SendQueue {
        heap: BinaryHeap::new(),
        seq: 0,
    };
    loop {
        let sim_next = shared.sim().next_timeout();
        let deadline = match (sim_next, queue.next_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    let now = Instant::now();
                    let outs = shared.sim().handle(&buf[..n], from, now);
                    queue.push(now, outs);
                }
                Err(e) => tracing::debug!(error = %e, "recv failed"),
            },
            () = sleep => {
                let now = Instant::now();
                let outs = shared.sim().handle_timeout(now);
                queue.push(now, outs);
            }
            () = shared.wake.notified() => {
                let now = Instant::now();
                let mut outs = shared.sim().handle_timeout(now);
                for (bytes, from) in shared.take_inbox() {
                    outs.extend(shared.sim().handle(&bytes, from, now));
                }
                queue.push(now, outs);
            }
        }
        queue.send_due(&sock, Instant::now()).await;
    }
}
