//! Watching a device's properties: an initial read, then one [`Change`]
//! per changed value, from polling and — where the device supports it —
//! push.
//!
//! Polling reads the watched properties every
//! [`interval`](WatchOptions::interval). With push on, a background task
//! subscribes (`miIO.sub`, see [`crate::transport::push`]) on a socket of
//! its own; while the subscription holds and every watched property has
//! `notify` access in the spec, polling slows down to
//! [`safety_interval`](WatchOptions::safety_interval), a safety net for
//! lost pushes and for another client taking over the device's single
//! subscription. A device that refuses `miIO.sub` is polled only; one that
//! does not answer it is asked again every [`PUSH_RETRY`].
//!
//! A value counts as a change when it differs from the last known one, so
//! a push and a poll reporting the same new value give one change. A poll
//! that fails is logged (once until the device answers again) and retried
//! at the next interval; only the initial read must succeed.
//!
//! Reads follow the route rules of [`RoutedDevice`] (`--via`): a device
//! that does not answer on the local network is polled through the Xiaomi
//! cloud when a session exists, from then on. Push is local only: it is
//! not started for a device reached through the cloud, and stops when a
//! device goes over to the cloud.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch as signal};
use tokio::time::Instant;

use crate::cloud::Route;
use crate::home::device::ResolvedProp;
use crate::home::{ModelProfile, PropReading};
use crate::transport::{ClientConfig, MiioError, PushEvent, PushSubscription};

use super::context::Resolved;
use super::route::{serialize_cloud_route, RouteFailure, Routed, RoutedDevice};
use super::time::rfc3339;
use super::AutomationError;

/// How long to wait before asking again for a push subscription that got
/// no answer.
pub const PUSH_RETRY: Duration = Duration::from_secs(60);

/// How a watch polls and whether it uses push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// Time between polls (default 2 s).
    pub interval: Duration,
    /// Subscribe to device push where the model has a spec (default on).
    pub push: bool,
    /// Time between polls while push is active and covers every watched
    /// property (default 30 s, never shorter than `interval`).
    pub safety_interval: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: Duration::from_secs(2),
            push: true,
            safety_interval: Duration::from_secs(30),
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeSource {
    /// The initial read.
    Initial,
    /// A poll.
    Poll,
    /// A push from the device.
    Push,
}

/// One changed value. Serialized as one JSON line by `mijia watch`:
/// `{"time", "device", "property", "siid", "piid", "old", "new", "source"}`
/// (`siid`/`piid` are left out for legacy properties; `old` is `null`
/// when nothing was known before), plus `"route": "cloud"` for a value
/// read through the Xiaomi cloud.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// When it was seen: RFC 3339, UTC, milliseconds.
    pub time: String,
    /// The device's name.
    pub device: String,
    /// The property's name.
    pub property: String,
    /// Service iid (MIoT properties).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub siid: Option<u32>,
    /// Property iid (MIoT properties).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub piid: Option<u32>,
    /// The value before.
    pub old: Option<Value>,
    /// The value now.
    pub new: Value,
    /// How it was seen.
    pub source: ChangeSource,
    /// The cloud route, when the value was read through the cloud (`None`
    /// on the local network).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_cloud_route"
    )]
    pub route: Option<Route>,
}

enum PushMsg {
    Active(bool),
    Event(PushEvent),
}

/// A running watch on one device. See the module docs.
pub struct Watch {
    device: RoutedDevice,
    local_error: Option<String>,
    props: Vec<ResolvedProp>,
    names: Vec<String>,
    last: Vec<Option<Value>>,
    displays: Vec<Option<String>>,
    opts: WatchOptions,
    all_notify: bool,
    push_rx: Option<mpsc::Receiver<PushMsg>>,
    push_stop: Option<signal::Sender<bool>>,
    push_task: Option<tokio::task::JoinHandle<()>>,
    push_active: bool,
    next_poll: Instant,
    failing: bool,
    pending: VecDeque<Change>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("device", &self.device.name())
            .field("names", &self.names)
            .field("push_active", &self.push_active)
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// Reads `names` of `device` (every readable property when empty)
    /// and starts the push subscription when asked (and the device is on
    /// the local route). Names are resolved before anything is sent. The
    /// initial values are returned as changes with
    /// [`ChangeSource::Initial`] and no `old` value (properties that could
    /// not be read are left out).
    pub async fn start(
        resolved: &Resolved,
        device: RoutedDevice,
        names: &[String],
        opts: WatchOptions,
    ) -> Result<(Watch, Vec<Change>), AutomationError> {
        let name = resolved.name().to_string();
        let profile = device.profile();
        let props = if names.is_empty() {
            profile.plan_status()
        } else {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            profile.plan_get(&names)
        }
        .map_err(|e| AutomationError::device(&name, e))?;
        let all_notify = props.iter().all(|p| notifies(profile, p));
        let any_notify = props.iter().any(|p| notifies(profile, p));
        let prop_names: Vec<String> = props.iter().map(|p| p.name().to_string()).collect();
        let n = props.len();
        let mut opts = opts;
        opts.safety_interval = opts.safety_interval.max(opts.interval);
        let mut w = Watch {
            device,
            local_error: None,
            props,
            names: prop_names,
            last: vec![None; n],
            displays: vec![None; n],
            opts,
            all_notify,
            push_rx: None,
            push_stop: None,
            push_task: None,
            push_active: false,
            next_poll: Instant::now(),
            failing: false,
            pending: VecDeque::new(),
        };
        let readings = w
            .read()
            .await
            .map_err(|e| AutomationError::routed(&name, e))?;
        w.local_error = readings.local_error.clone();
        w.absorb(&readings.value, readings.route, ChangeSource::Initial);
        let initial: Vec<Change> = w.pending.drain(..).collect();
        if w.opts.push && any_notify && w.device.local_in_use() {
            w.start_push(resolved);
        }
        w.next_poll = Instant::now() + w.opts.interval;
        Ok((w, initial))
    }

    /// The watched property names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The last known value of each watched property, with its display
    /// form.
    pub fn values(&self) -> impl Iterator<Item = (&str, Option<&Value>, Option<&str>)> {
        self.names
            .iter()
            .zip(&self.last)
            .zip(&self.displays)
            .map(|((n, v), d)| (n.as_str(), v.as_ref(), d.as_deref()))
    }

    /// The last known value of one property.
    pub fn value_of(&self, name: &str) -> Option<&Value> {
        let i = self.names.iter().position(|n| n == name)?;
        self.last.get(i)?.as_ref()
    }

    /// The last known value of one property, for people.
    pub fn display_of(&self, name: &str) -> Option<&str> {
        let i = self.names.iter().position(|n| n == name)?;
        self.displays.get(i)?.as_deref()
    }

    /// Whether the push subscription is active now.
    pub fn push_active(&self) -> bool {
        self.push_active
    }

    /// The device.
    pub fn device(&self) -> &RoutedDevice {
        &self.device
    }

    /// The route reads take now.
    pub fn route(&self) -> Route {
        self.device.route()
    }

    /// When the device went over to the cloud: the local failure that
    /// made it.
    pub fn local_error(&self) -> Option<&str> {
        self.local_error.as_deref()
    }

    /// Waits for the next change. Never fails: failed polls are logged
    /// and retried.
    pub async fn next(&mut self) -> Change {
        loop {
            if let Some(c) = self.pending.pop_front() {
                return c;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(self.next_poll) => self.poll().await,
                msg = recv(&mut self.push_rx) => match msg {
                    Some(PushMsg::Event(ev)) => self.on_push(ev),
                    Some(PushMsg::Active(on)) => self.set_push_active(on),
                    None => {
                        self.push_rx = None;
                        self.set_push_active(false);
                    }
                },
            }
        }
    }

    /// Stops the push task, unsubscribing (best effort, at most a second).
    pub async fn close(mut self) {
        if let Some(stop) = self.push_stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.push_task.take() {
            let _ = tokio::time::timeout(Duration::from_millis(1500), task).await;
        }
    }

    fn current_interval(&self) -> Duration {
        if self.push_active && self.all_notify {
            self.opts.safety_interval
        } else {
            self.opts.interval
        }
    }

    fn set_push_active(&mut self, on: bool) {
        if on != self.push_active {
            tracing::debug!(device = %self.device.name(), on, "push subscription");
        }
        self.push_active = on;
        let next = Instant::now() + self.current_interval();
        if !on && next < self.next_poll {
            self.next_poll = next;
        }
    }

    async fn read(&self) -> Result<Routed<Vec<PropReading>>, RouteFailure> {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        self.device.get(&names).await
    }

    async fn poll(&mut self) {
        match self.read().await {
            Ok(readings) => {
                if let Some(why) = &readings.local_error {
                    tracing::warn!(
                        "{}: the local route failed: {why}; polling via {} from now on",
                        self.device.name(),
                        readings.route
                    );
                    self.local_error = Some(why.clone());
                    self.failing = false;
                    self.stop_push();
                }
                if self.failing {
                    tracing::warn!("{} answers again", self.device.name());
                    self.failing = false;
                }
                self.absorb(&readings.value, readings.route, ChangeSource::Poll);
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!(
                        "{}: poll failed: {e}; still watching, retrying every {}",
                        self.device.name(),
                        super::time::format_duration(self.opts.interval)
                    );
                    self.failing = true;
                }
            }
        }
        self.next_poll = Instant::now()
            + if self.failing {
                self.opts.interval
            } else {
                self.current_interval()
            };
    }

    fn absorb(&mut self, readings: &[PropReading], route: Route, source: ChangeSource) {
        for r in readings {
            let Some(value) = &r.value else { continue };
            let Some(i) = self.props.iter().position(|p| p.addr() == r.addr) else {
                continue;
            };
            self.record(i, value.clone(), Some(r.display.clone()), route, source);
        }
    }

    fn on_push(&mut self, ev: PushEvent) {
        let PushEvent::Properties(items) = ev else {
            return;
        };
        for item in items {
            let Some(i) = self.props.iter().position(|p| match p {
                ResolvedProp::Miot { id, .. } => id.siid == item.siid && id.piid == item.piid,
                ResolvedProp::Legacy(_) => false,
            }) else {
                continue;
            };
            let property = self
                .device
                .profile()
                .spec()
                .and_then(|s| s.property(item.siid, item.piid));
            let (value, display) = match property {
                Some(p) => (
                    p.decode_wire(&item.value),
                    Some(p.display_value(&item.value)),
                ),
                None => (item.value.clone(), None),
            };
            self.record(i, value, display, Route::Local, ChangeSource::Push);
        }
    }

    fn record(
        &mut self,
        i: usize,
        value: Value,
        display: Option<String>,
        route: Route,
        source: ChangeSource,
    ) {
        let (Some(slot), Some(prop)) = (self.last.get_mut(i), self.props.get(i)) else {
            return;
        };
        if slot.as_ref() == Some(&value) {
            return;
        }
        let old = slot.replace(value.clone());
        if let Some(d) = self.displays.get_mut(i) {
            *d = display;
        }
        let (siid, piid) = match prop {
            ResolvedProp::Miot { id, .. } => (Some(id.siid), Some(id.piid)),
            ResolvedProp::Legacy(_) => (None, None),
        };
        self.pending.push_back(Change {
            time: rfc3339(SystemTime::now()),
            device: self.device.name().to_string(),
            property: prop.name().to_string(),
            siid,
            piid,
            old,
            new: value,
            source,
            route: Some(route).filter(Route::is_cloud),
        });
    }

    fn start_push(&mut self, resolved: &Resolved) {
        let (tx, rx) = mpsc::channel(64);
        let (stop_tx, stop_rx) = signal::channel(false);
        let addr = self.device.target().addr;
        let token = *resolved.token();
        let config = self.device.config().clone();
        self.push_task = Some(tokio::spawn(push_task(addr, token, config, tx, stop_rx)));
        self.push_rx = Some(rx);
        self.push_stop = Some(stop_tx);
    }

    /// Stops the push task without waiting for it (it unsubscribes on its
    /// own, best effort); polling carries on alone.
    fn stop_push(&mut self) {
        if let Some(stop) = self.push_stop.take() {
            let _ = stop.send(true);
        }
        self.push_task = None;
        self.push_rx = None;
        self.set_push_active(false);
    }
}

/// Whether the device reports changes of `p` by push (spec `notify`).
fn notifies(profile: &ModelProfile, p: &ResolvedProp) -> bool {
    match p {
        ResolvedProp::Miot { id, .. } => profile
            .spec()
            .and_then(|s| s.property(id.siid, id.piid))
            .is_some_and(|p| p.access.notify),
        ResolvedProp::Legacy(_) => false,
    }
}

async fn recv(rx: &mut Option<mpsc::Receiver<PushMsg>>) -> Option<PushMsg> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Keeps a push subscription up and forwards its events until stopped.
async fn push_task(
    addr: std::net::SocketAddr,
    token: mijia_proto::miio::Token,
    config: ClientConfig,
    tx: mpsc::Sender<PushMsg>,
    mut stop: signal::Receiver<bool>,
) {
    loop {
        let sub = tokio::select! {
            r = PushSubscription::subscribe(addr, token, config.clone()) => r,
            _ = stop.changed() => return,
        };
        match sub {
            Ok(mut sub) => {
                if tx.send(PushMsg::Active(true)).await.is_err() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), sub.unsubscribe()).await;
                    return;
                }
                loop {
                    tokio::select! {
                        r = sub.next() => match r {
                            Ok(ev) => {
                                if tx.send(PushMsg::Event(ev)).await.is_err() {
                                    let _ = tokio::time::timeout(Duration::from_secs(1), sub.unsubscribe()).await;
                                    return;
                                }
                            }
                            Err(e) => {
                                tracing::debug!(%addr, error = %e, "push subscription lost");
                                if tx.send(PushMsg::Active(false)).await.is_err() {
                                    return;
                                }
                                break;
                            }
                        },
                        _ = stop.changed() => {
                            let _ = tokio::time::timeout(Duration::from_secs(1), sub.unsubscribe()).await;
                            return;
                        }
                    }
                }
            }
            Err(e @ (MiioError::Device { .. } | MiioError::UnexpectedResult { .. })) => {
                tracing::debug!(%addr, error = %e, "the device does not support push; polling only");
                return;
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "no push subscription; polling, asking again later");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PUSH_RETRY) => {}
            _ = stop.changed() => return,
        }
    }
}
