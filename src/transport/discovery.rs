//! Finding devices on the network: broadcast hello, unicast sweep and
//! mDNS, merged by did.
//!
//! **What it does.** [`probe`] opens one socket per method and streams a
//! [`Found`] for every answer, as it arrives:
//!
//! - **broadcast** — the hello sent to a broadcast address (255.255.255.255
//!   in a home; 127.255.255.255 in tests) at 0, 0.5, 1.5, 3.5 … s (the gap
//!   doubles up to 10 s), replies collected until the deadline;
//! - **sweep** — the hello sent by unicast to every host of a [`Cidr`]
//!   block from one socket, in bursts ([`SweepTiming`]): 64 hellos every
//!   2 ms, three rounds 150 ms apart (each re-sending only to hosts that
//!   have not answered), then 350 ms of listening. The sweep cannot know
//!   how many devices to expect, so it ends on this schedule (about 0.65 s
//!   for a /24) or as soon as every host answered, never later than the
//!   deadline;
//! - **mDNS** — a browse of `_miio._udp.local.` (see [`mdns`]), until the
//!   deadline.
//!
//! [`discover`] merges those finds by did ([`Merger`]), adds what the
//! caller knows ([`KnownDevice`]: registry names, models, tokens), and for
//! every device with a token (from the registry, revealed by an
//! unprovisioned device, or offered by the caller) asks `miIO.info`, a
//! few devices at a time, for the true model. Changes are reported
//! through a callback as they happen. Everything ends by
//! [`DiscoverOptions::timeout`], counted from the start.
//!
//! **What it does not do.** It never picks a network by itself: the
//! caller names the broadcast address, the block and the mDNS interface.
//! It does not write the registry, and it does not do IPv6.

mod cidr;
mod hello;
pub mod mdns;
mod merge;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use mijia_proto::miio::{Token, DEFAULT_PORT};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::{ClientConfig, DeviceInfo, IdStore, MiioDevice};

pub use cidr::{Cidr, CidrError, MAX_SWEEP_PREFIX};
pub use hello::SweepTiming;
pub use mdns::{parse_instance, MdnsOptions};
pub use merge::{
    Change, Discovered, InfoJob, InfoState, KnownDevice, Merger, ModelSource, TokenSource,
};

/// The broadcast address for a real home.
pub const HOME_BROADCAST: Ipv4Addr = Ipv4Addr::BROADCAST;

/// How a device was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// It answered a broadcast hello.
    Broadcast,
    /// It answered a unicast hello of the sweep.
    Sweep,
    /// It is announced over mDNS.
    Mdns,
}

impl Source {
    /// `broadcast`, `sweep` or `mdns`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Broadcast => "broadcast",
            Source::Sweep => "sweep",
            Source::Mdns => "mdns",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One answer from one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The device id.
    pub did: u64,
    /// Where it answered from (hello) or what its records say (mDNS).
    pub addr: SocketAddr,
    /// Which method found it.
    pub source: Source,
    /// The model hint from an mDNS instance name.
    pub model: Option<String>,
    /// The token an unprovisioned device revealed in its hello reply.
    pub token: Option<Token>,
    /// The device clock from a hello reply.
    pub stamp: Option<u32>,
    /// When, counted from the start.
    pub after: Duration,
}

/// What to probe and how long to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverOptions {
    /// Broadcast the hello to this address.
    pub broadcast: Option<Ipv4Addr>,
    /// Sweep this block.
    pub sweep: Option<Cidr>,
    /// Browse mDNS.
    pub mdns: Option<MdnsOptions>,
    /// The miIO port hellos go to (54321).
    pub port: u16,
    /// Everything ends this long after the start.
    pub timeout: Duration,
    /// The first gap between broadcast hellos (it doubles).
    pub broadcast_interval: Duration,
    /// Pacing and rounds of the sweep.
    pub sweep_timing: SweepTiming,
    /// Ask `miIO.info` of devices whose token is known.
    pub info: bool,
    /// How many `miIO.info` calls run at once.
    pub info_concurrency: usize,
    /// How long one `miIO.info` attempt waits.
    pub info_timeout: Duration,
    /// Tokens to try on devices that have none (in order).
    pub tokens: Vec<Token>,
}

impl Default for DiscoverOptions {
    /// No method enabled (name them explicitly, or start from
    /// [`DiscoverOptions::home`]); 5 s in total; `miIO.info` on, 16 at a
    /// time, 1.5 s per attempt.
    fn default() -> Self {
        DiscoverOptions {
            broadcast: None,
            sweep: None,
            mdns: None,
            port: DEFAULT_PORT,
            timeout: Duration::from_secs(5),
            broadcast_interval: Duration::from_millis(500),
            sweep_timing: SweepTiming::default(),
            info: true,
            info_concurrency: 16,
            info_timeout: Duration::from_millis(1500),
            tokens: Vec::new(),
        }
    }
}

impl DiscoverOptions {
    /// The choice for a real home: broadcast to 255.255.255.255 and mDNS on
    /// the default interface.
    pub fn home() -> Self {
        DiscoverOptions {
            broadcast: Some(HOME_BROADCAST),
            mdns: Some(MdnsOptions::default()),
            ..DiscoverOptions::default()
        }
    }
}

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// No method chosen.
    #[error("no discovery method chosen: enable broadcast, a sweep or mDNS")]
    NothingToDo,
    /// A socket could not be set up.
    #[error("cannot set up {method}: {source}{hint}")]
    Socket {
        /// Which method.
        method: &'static str,
        /// The OS error.
        source: io::Error,
        /// What to try.
        hint: &'static str,
    },
}

fn socket_err(
    method: &'static str,
    hint: &'static str,
) -> impl FnOnce(io::Error) -> DiscoveryError {
    move |source| DiscoveryError::Socket {
        method,
        source,
        hint,
    }
}

/// The finds of a running [`probe`], as they arrive. Dropping it stops
/// the probing.
#[derive(Debug)]
pub struct Probe {
    rx: UnboundedReceiver<Found>,
    tasks: Vec<JoinHandle<()>>,
    deadline: Instant,
}

impl Probe {
    /// The next find, or `None` once every method has finished.
    pub async fn next(&mut self) -> Option<Found> {
        self.rx.recv().await
    }

    /// When the last method stops at the latest.
    pub fn deadline(&self) -> std::time::Instant {
        self.deadline.into_std()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Start every method `opts` enables; each stops by `opts.timeout`. All
/// sockets are set up before this returns, so setup errors come back
/// here. Must be called inside a tokio runtime.
pub fn probe(opts: &DiscoverOptions) -> Result<Probe, DiscoveryError> {
    if opts.broadcast.is_none() && opts.sweep.is_none() && opts.mdns.is_none() {
        return Err(DiscoveryError::NothingToDo);
    }
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    if let Some(target) = opts.broadcast {
        let sock = hello::socket(true).map_err(socket_err(
            "the broadcast hello",
            "; check that this host has an IPv4 network",
        ))?;
        let target = SocketAddr::from(SocketAddrV4::new(target, opts.port));
        tasks.push(tokio::spawn(hello::broadcast(
            sock,
            target,
            opts.broadcast_interval,
            start,
            deadline,
            tx.clone(),
        )));
    }
    if let Some(block) = opts.sweep {
        let sock = hello::socket(false).map_err(socket_err(
            "the sweep",
            "; check that this host has an IPv4 network",
        ))?;
        tasks.push(tokio::spawn(hello::sweep(
            sock,
            block,
            opts.port,
            opts.sweep_timing,
            start,
            deadline,
            tx.clone(),
        )));
    }
    if let Some(m) = opts.mdns {
        let (sock, legacy) = mdns::socket(&m).map_err(socket_err(
            "the mDNS browse",
            "; check the interface address, or use broadcast or a sweep instead",
        ))?;
        tasks.push(tokio::spawn(mdns::browse(
            sock, legacy, m, opts.port, start, deadline, tx,
        )));
    }
    Ok(Probe {
        rx,
        tasks,
        deadline,
    })
}

/// A change reported by [`discover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A device seen for the first time.
    Found(&'a Discovered),
    /// More is known about a device already reported.
    Updated(&'a Discovered),
}

impl<'a> Event<'a> {
    /// The device.
    pub fn device(&self) -> &'a Discovered {
        match self {
            Event::Found(d) | Event::Updated(d) => d,
        }
    }
}

/// Probe, merge by did, and ask `miIO.info` where a token is known;
/// `on_event` sees every change as it happens. Returns every device, in
/// the order found, once every method and call has finished or the
/// timeout has passed.
pub async fn discover(
    opts: &DiscoverOptions,
    known: Vec<KnownDevice>,
    ids: Option<Arc<dyn IdStore>>,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Vec<Discovered>, DiscoveryError> {
    let mut probe = probe(opts)?;
    let deadline = Instant::from_std(probe.deadline());
    let mut merger = Merger::new(known, opts.tokens.clone(), opts.info);
    let limit = Arc::new(Semaphore::new(opts.info_concurrency.max(1)));
    let config = info_config(opts.info_timeout);
    let mut calls: JoinSet<(InfoJob, Result<DeviceInfo, String>)> = JoinSet::new();
    let spawn = |calls: &mut JoinSet<_>, job: InfoJob| {
        calls.spawn(info_call(
            job,
            config.clone(),
            ids.clone(),
            Arc::clone(&limit),
        ));
    };
    let mut report = |merger: &Merger, change: Change| match change {
        Change::New(i) => on_event(Event::Found(&merger.devices()[i])),
        Change::Updated(i) => on_event(Event::Updated(&merger.devices()[i])),
        Change::None => {}
    };
    let mut probing = true;
    while probing || !calls.is_empty() {
        tokio::select! {
            found = probe.next(), if probing => match found {
                Some(f) => {
                    let (change, job) = merger.add(f);
                    report(&merger, change);
                    if let Some(job) = job {
                        spawn(&mut calls, job);
                    }
                }
                None => probing = false,
            },
            Some(done) = calls.join_next(), if !calls.is_empty() => {
                let Ok((job, result)) = done else { continue };
                let (change, next) = merger.info_result(&job, result);
                report(&merger, change);
                if let Some(job) = next {
                    spawn(&mut calls, job);
                }
            }
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    calls.abort_all();
    for i in merger.expire() {
        report(&merger, Change::Updated(i));
    }
    Ok(merger.into_devices())
}

/// Client settings for the `miIO.info` calls: one retry, a short handshake.
fn info_config(timeout: Duration) -> ClientConfig {
    let handshake = timeout.min(Duration::from_secs(1));
    ClientConfig {
        timeout,
        retries: 1,
        handshake_timeout: handshake,
        hello_interval: (handshake / 3).min(Duration::from_millis(200)),
        ..ClientConfig::default()
    }
}

async fn info_call(
    job: InfoJob,
    config: ClientConfig,
    ids: Option<Arc<dyn IdStore>>,
    limit: Arc<Semaphore>,
) -> (InfoJob, Result<DeviceInfo, String>) {
    let _permit = limit.acquire_owned().await;
    let result = match MiioDevice::with_did(job.addr, job.token, job.did, config, ids) {
        Ok(dev) => dev.info().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    (job, result)
}
