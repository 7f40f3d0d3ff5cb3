//! Running a scene: check everything first (no IO), then run the steps.
//! See the [module docs](super) for the rules.
//!
//! Device steps reach their device by the context's route settings
//! ([`Context::with_via`], [`crate::automation::route`]): local first,
//! the Xiaomi cloud when the device does not answer and a session exists
//! (an action only when no hello was answered). A step that used the
//! cloud says so in its report (`route`, and `local_error` on the step
//! that went over to the cloud).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{describe_step, value_text, Scene, Step, StepKind};
use crate::automation::condition::Condition;
use crate::automation::context::{Context, Resolved};
use crate::automation::error::FailureClass;
use crate::automation::route::{serialize_cloud_route, RouteFailure, Routed, RoutedDevice};
use crate::automation::time::format_duration;
use crate::automation::AutomationError;
use crate::cloud::Route;
use crate::home::PropReading;

/// How often a `wait` step reads its property.
pub const WAIT_POLL: Duration = Duration::from_millis(1000);

/// How to run a scene.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Check every step against the specs and send nothing.
    pub dry_run: bool,
    /// Run the remaining steps after a failed one.
    pub keep_going: bool,
}

/// What became of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    /// It ran and succeeded (a guard that held).
    Ok,
    /// Dry run: names and values check out.
    Checked,
    /// It failed.
    Failed,
    /// It did not run (an earlier step failed or a guard stopped the scene).
    Skipped,
    /// A guard that did not hold: the scene stops here.
    Stopped,
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// Its path: `3`, or `2.1` for the first member of the parallel
    /// group at step 2.
    pub step: String,
    /// Its label, when the file gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `set`, `action`, `parallel`, `wait`, `guard`.
    pub kind: &'static str,
    /// The device it addresses.
    pub device: Option<String>,
    /// What became of it.
    pub outcome: StepOutcome,
    /// What it did, or what went wrong.
    pub detail: String,
    /// How long it took.
    pub elapsed_ms: u64,
    /// For a failure: its class (`usage`, `device`, `unreachable`,
    /// `not-met`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
    /// The cloud route, when the step reached its device through the
    /// Xiaomi cloud (serialized as `"route": "cloud"`; left out on the
    /// local network).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_cloud_route"
    )]
    pub route: Option<Route>,
    /// On the step whose device went over to the cloud: the local failure
    /// that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_error: Option<String>,
}

/// How the scene ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SceneOutcome {
    /// Every step succeeded (or, in a dry run, checked out).
    Ok,
    /// A step failed.
    Failed,
    /// A guard stopped it; nothing failed.
    Stopped,
}

/// The result of a scene: one report per step, parallel members after
/// their group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneReport {
    /// The scene's name.
    pub scene: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// How it ended.
    pub outcome: SceneOutcome,
    /// Every step.
    pub steps: Vec<StepReport>,
}

impl SceneReport {
    /// Whether no step failed.
    pub fn is_ok(&self) -> bool {
        self.outcome != SceneOutcome::Failed
    }

    /// The first failed step (a member rather than its group).
    pub fn first_failure(&self) -> Option<&StepReport> {
        let failed = |s: &&StepReport| s.outcome == StepOutcome::Failed;
        self.steps
            .iter()
            .filter(failed)
            .find(|s| s.kind != "parallel")
            .or_else(|| self.steps.iter().find(failed))
    }

    /// The error for a failed scene, naming the step; `None` otherwise.
    pub fn error(&self) -> Option<AutomationError> {
        let s = self.first_failure()?;
        let what = match &s.device {
            Some(d) => format!("{} {d}", s.kind),
            None => s.kind.to_string(),
        };
        let step = match &s.name {
            Some(n) => format!("{} [{n}]", s.step),
            None => s.step.clone(),
        };
        Some(AutomationError::SceneFailed {
            scene: self.scene.clone(),
            step,
            what,
            detail: s.detail.clone(),
            class: s.class.unwrap_or(FailureClass::Other),
        })
    }
}

// ------------------------------------------------------------------ plan

enum Plan {
    Set {
        device: usize,
        pairs: Vec<(String, String)>,
        shown: String,
    },
    Action {
        device: usize,
        name: String,
        args: Vec<String>,
    },
    Parallel(Vec<Planned>),
    Sleep(Duration),
    WaitFor {
        device: usize,
        condition: Condition,
        timeout: Duration,
    },
    Guard {
        device: usize,
        condition: Condition,
        fail: bool,
    },
    Invalid {
        detail: String,
        class: FailureClass,
    },
}

struct Planned {
    path: String,
    name: Option<String>,
    kind: &'static str,
    device: Option<String>,
    text: String,
    plan: Plan,
}

impl Planned {
    fn report(&self, outcome: StepOutcome, detail: String, started: Option<Instant>) -> StepReport {
        StepReport {
            step: self.path.clone(),
            name: self.name.clone(),
            kind: self.kind,
            device: self.device.clone(),
            outcome,
            detail,
            elapsed_ms: started.map_or(0, |t| {
                u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
            }),
            class: None,
            route: None,
            local_error: None,
        }
    }

    fn failed(&self, detail: String, class: FailureClass, started: Instant) -> StepReport {
        let mut r = self.report(StepOutcome::Failed, detail, Some(started));
        r.class = Some(class);
        r
    }

    fn is_valid(&self) -> bool {
        match &self.plan {
            Plan::Invalid { .. } => false,
            Plan::Parallel(members) => members.iter().all(Planned::is_valid),
            _ => true,
        }
    }
}

/// Devices of a scene, resolved once each.
struct Devices {
    names: Vec<String>,
    resolved: Vec<Result<Resolved, (String, FailureClass)>>,
}

impl Devices {
    fn index(&mut self, ctx: &Context, name: &str) -> usize {
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(name)) {
            return i;
        }
        let r = ctx.resolve(name).map_err(|e| {
            let class = e.class();
            (e.to_string(), class)
        });
        self.names.push(name.to_string());
        self.resolved.push(r);
        self.names.len() - 1
    }
}

fn plan_step(step: &Step, path: String, ctx: &Context, devices: &mut Devices) -> Planned {
    let device_name = step.kind.device().map(str::to_string);
    let mut planned = Planned {
        path: path.clone(),
        name: step.name.clone(),
        kind: step.kind.label(),
        device: device_name.clone(),
        text: describe_step(&step.kind),
        plan: Plan::Sleep(Duration::ZERO),
    };
    let resolved = device_name.as_deref().map(|n| {
        let i = devices.index(ctx, n);
        (i, devices.resolved.get(i).cloned())
    });
    let (index, profile) = match resolved {
        Some((i, Some(Ok(r)))) => (i, Some(Arc::clone(&r.target.profile))),
        Some((_, Some(Err((detail, class))))) => {
            planned.plan = Plan::Invalid { detail, class };
            return planned;
        }
        _ => (0, None),
    };
    let invalid = |e: crate::home::DeviceOpError| Plan::Invalid {
        class: FailureClass::of_device_op(&e),
        detail: e.to_string(),
    };
    planned.plan = match (&step.kind, profile) {
        (StepKind::Set { values, .. }, Some(p)) => {
            let pairs: Vec<(String, String)> = values
                .iter()
                .map(|(n, v)| (n.clone(), value_text(v)))
                .collect();
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            match p.plan_set(&refs) {
                Ok(writes) => Plan::Set {
                    device: index,
                    shown: writes
                        .iter()
                        .map(|w| format!("{}={}", w.prop.name(), w.display))
                        .collect::<Vec<_>>()
                        .join(", "),
                    pairs,
                },
                Err(e) => invalid(e),
            }
        }
        (StepKind::Action { action, args, .. }, Some(p)) => match p.plan_action(action, args) {
            Ok(_) => Plan::Action {
                device: index,
                name: action.clone(),
                args: args.clone(),
            },
            Err(e) => invalid(e),
        },
        (StepKind::WaitFor { condition, timeout }, Some(p)) => {
            match Condition::new(
                &p,
                &condition.property,
                condition.op,
                &value_text(&condition.value),
            ) {
                Ok(c) => Plan::WaitFor {
                    device: index,
                    condition: c,
                    timeout: *timeout,
                },
                Err(e) => invalid(e),
            }
        }
        (StepKind::Guard { condition, fail }, Some(p)) => {
            match Condition::new(
                &p,
                &condition.property,
                condition.op,
                &value_text(&condition.value),
            ) {
                Ok(c) => Plan::Guard {
                    device: index,
                    condition: c,
                    fail: *fail,
                },
                Err(e) => invalid(e),
            }
        }
        (StepKind::Parallel(members), _) => Plan::Parallel(
            members
                .iter()
                .enumerate()
                .map(|(j, m)| plan_step(m, format!("{path}.{}", j + 1), ctx, devices))
                .collect(),
        ),
        (StepKind::Sleep(d), _) => Plan::Sleep(*d),
        (_, None) => Plan::Invalid {
            detail: "internal error: a device step without a device".into(),
            class: FailureClass::Other,
        },
    };
    planned
}

// ------------------------------------------------------------------- run

/// Runs a scene (or, with `dry_run`, only checks it). See
/// [`run_scene_with`].
pub async fn run_scene(scene: &Scene, ctx: &Context, dry_run: bool) -> SceneReport {
    let opts = RunOptions {
        dry_run,
        keep_going: false,
    };
    run_scene_with(scene, ctx, &opts, &mut |_| {}).await
}

/// Runs a scene. Every device, name and value is checked before anything
/// is sent; if something does not check out, nothing is sent. `on_step`
/// sees each top-level step's reports (a parallel group with its members)
/// as soon as the step ends, for progress output.
pub async fn run_scene_with(
    scene: &Scene,
    ctx: &Context,
    opts: &RunOptions,
    on_step: &mut (dyn FnMut(&[StepReport]) + Send),
) -> SceneReport {
    let mut devices = Devices {
        names: Vec::new(),
        resolved: Vec::new(),
    };
    let planned: Vec<Planned> = scene
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| plan_step(s, (i + 1).to_string(), ctx, &mut devices))
        .collect();
    let all_valid = planned.iter().all(Planned::is_valid);
    let mut report = SceneReport {
        scene: scene.name.clone(),
        dry_run: opts.dry_run,
        outcome: SceneOutcome::Ok,
        steps: Vec::new(),
    };
    if opts.dry_run || !all_valid {
        // Nothing is sent: report what checks out and what does not.
        for p in &planned {
            let mut out = Vec::new();
            check_report(p, opts.dry_run, &mut out);
            on_step(&out);
            report.steps.extend(out);
        }
        if !all_valid {
            report.outcome = SceneOutcome::Failed;
        }
        return report;
    }
    let connected: Vec<Result<Arc<RoutedDevice>, String>> = devices
        .resolved
        .iter()
        .map(|r| match r {
            Ok(r) => ctx
                .open(r)
                .map(Arc::new)
                .map_err(|e| format!("{}: {e}", r.name())),
            Err((detail, _)) => Err(detail.clone()),
        })
        .collect();
    let runner = Runner { devices: connected };
    let mut stop: Option<SceneOutcome> = None;
    for p in &planned {
        let mut out = Vec::new();
        if stop.is_some() {
            skip_report(p, &mut out);
        } else {
            let flow = runner.exec(p, &mut out).await;
            match flow {
                Flow::Next => {}
                Flow::Failed => {
                    report.outcome = SceneOutcome::Failed;
                    if !opts.keep_going {
                        stop = Some(SceneOutcome::Failed);
                    }
                }
                Flow::Stop => {
                    stop = Some(SceneOutcome::Stopped);
                    if report.outcome == SceneOutcome::Ok {
                        report.outcome = SceneOutcome::Stopped;
                    }
                }
            }
        }
        on_step(&out);
        report.steps.extend(out);
    }
    report
}

fn check_report(p: &Planned, dry_run: bool, out: &mut Vec<StepReport>) {
    let r = match &p.plan {
        Plan::Invalid { detail, class } => {
            let mut r = p.report(StepOutcome::Failed, detail.clone(), None);
            r.class = Some(*class);
            r
        }
        _ if !dry_run => p.report(
            StepOutcome::Skipped,
            "not run: another step does not check out".into(),
            None,
        ),
        Plan::Set { shown, .. } => {
            p.report(StepOutcome::Checked, format!("would set {shown}"), None)
        }
        Plan::Parallel(members) => {
            let bad = members.iter().filter(|m| !m.is_valid()).count();
            if bad > 0 {
                let mut r = p.report(
                    StepOutcome::Failed,
                    format!("{bad} of {} steps do not check out", members.len()),
                    None,
                );
                r.class = Some(FailureClass::Usage);
                r
            } else {
                p.report(
                    StepOutcome::Checked,
                    format!("would run {} steps at once", members.len()),
                    None,
                )
            }
        }
        _ => p.report(StepOutcome::Checked, format!("would {}", p.text), None),
    };
    out.push(r);
    if let Plan::Parallel(members) = &p.plan {
        for m in members {
            check_report(m, dry_run, out);
        }
    }
}

fn skip_report(p: &Planned, out: &mut Vec<StepReport>) {
    out.push(p.report(StepOutcome::Skipped, "not run".into(), None));
    if let Plan::Parallel(members) = &p.plan {
        for m in members {
            skip_report(m, out);
        }
    }
}

enum Flow {
    Next,
    Failed,
    Stop,
}

struct Runner {
    devices: Vec<Result<Arc<RoutedDevice>, String>>,
}

/// The report with the route its device call took (recorded only for the
/// cloud).
fn with_route(mut r: StepReport, route: Option<Route>, local_error: Option<String>) -> StepReport {
    r.route = route.filter(Route::is_cloud);
    r.local_error = local_error;
    r
}

/// A failed device call as a failed step.
fn failed_call(p: &Planned, f: RouteFailure, started: Instant) -> StepReport {
    let class = FailureClass::of_device_op(&f.error);
    let r = p.failed(f.detail(), class, started);
    with_route(r, f.route, f.local_error)
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = (Flow, Vec<StepReport>)> + Send + 'a>>;

impl Runner {
    async fn exec(&self, p: &Planned, out: &mut Vec<StepReport>) -> Flow {
        let (flow, reports) = self.step(p).await;
        out.extend(reports);
        flow
    }

    fn device(&self, i: usize) -> Result<&Arc<RoutedDevice>, String> {
        match self.devices.get(i) {
            Some(Ok(d)) => Ok(d),
            Some(Err(e)) => Err(e.clone()),
            None => Err("internal error: unknown device index".into()),
        }
    }

    fn step<'a>(&'a self, p: &'a Planned) -> StepFuture<'a> {
        Box::pin(async move {
            let started = Instant::now();
            let one = |r: StepReport| {
                let flow = match r.outcome {
                    StepOutcome::Failed => Flow::Failed,
                    StepOutcome::Stopped => Flow::Stop,
                    _ => Flow::Next,
                };
                (flow, vec![r])
            };
            match &p.plan {
                Plan::Invalid { detail, class } => one(p.failed(detail.clone(), *class, started)),
                Plan::Sleep(d) => {
                    tokio::time::sleep(*d).await;
                    one(p.report(
                        StepOutcome::Ok,
                        format!("waited {}", format_duration(*d)),
                        Some(started),
                    ))
                }
                Plan::Set { device, pairs, .. } => one(self.set(p, *device, pairs, started).await),
                Plan::Action { device, name, args } => {
                    one(self.action(p, *device, name, args, started).await)
                }
                Plan::WaitFor {
                    device,
                    condition,
                    timeout,
                } => one(self.wait(p, *device, condition, *timeout, started).await),
                Plan::Guard {
                    device,
                    condition,
                    fail,
                } => one(self.guard(p, *device, condition, *fail, started).await),
                Plan::Parallel(members) => {
                    let results = join_all(members.iter().map(|m| self.step(m)).collect()).await;
                    let mut reports = Vec::new();
                    let mut failed = 0;
                    for (flow, r) in results {
                        if matches!(flow, Flow::Failed) {
                            failed += 1;
                        }
                        reports.extend(r);
                    }
                    let group = if failed == 0 {
                        p.report(
                            StepOutcome::Ok,
                            format!("{} steps ran at once", members.len()),
                            Some(started),
                        )
                    } else {
                        let class = reports
                            .iter()
                            .find(|r| r.outcome == StepOutcome::Failed)
                            .and_then(|r| r.class)
                            .unwrap_or(FailureClass::Other);
                        p.failed(
                            format!("{failed} of {} steps failed", members.len()),
                            class,
                            started,
                        )
                    };
                    let flow = if failed == 0 {
                        Flow::Next
                    } else {
                        Flow::Failed
                    };
                    reports.insert(0, group);
                    (flow, reports)
                }
            }
        })
    }

    async fn set(
        &self,
        p: &Planned,
        device: usize,
        pairs: &[(String, String)],
        started: Instant,
    ) -> StepReport {
        let dev = match self.device(device) {
            Ok(d) => d,
            Err(e) => return p.failed(e, FailureClass::Other, started),
        };
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        match dev.set(&refs).await {
            Ok(Routed {
                value: results,
                route,
                local_error,
            }) => {
                let report = |r| with_route(r, Some(route), local_error.clone());
                let failed: Vec<String> = results
                    .iter()
                    .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.name)))
                    .collect();
                if failed.is_empty() {
                    let done: Vec<String> = results
                        .iter()
                        .map(|r| match r.after.as_ref().filter(|a| a.is_ok()) {
                            Some(a) => {
                                format!("{}={} (now {})", r.name, r.requested_display, shown(a))
                            }
                            None => format!("{}={}", r.name, r.requested_display),
                        })
                        .collect();
                    report(p.report(StepOutcome::Ok, done.join(", "), Some(started)))
                } else {
                    report(p.failed(
                        format!("the device refused {}", failed.join("; ")),
                        FailureClass::Device,
                        started,
                    ))
                }
            }
            Err(f) => failed_call(p, f, started),
        }
    }

    async fn action(
        &self,
        p: &Planned,
        device: usize,
        name: &str,
        args: &[String],
        started: Instant,
    ) -> StepReport {
        let dev = match self.device(device) {
            Ok(d) => d,
            Err(e) => return p.failed(e, FailureClass::Other, started),
        };
        match dev.action(name, args).await {
            Ok(Routed {
                value: o,
                route,
                local_error,
            }) => with_route(
                match &o.error {
                    None => {
                        let outs: Vec<String> = o
                            .out
                            .iter()
                            .map(|x| format!("{}={}", x.name, x.display))
                            .collect();
                        let detail = if outs.is_empty() {
                            format!("ran {}", o.name)
                        } else {
                            format!("ran {}: {}", o.name, outs.join(", "))
                        };
                        p.report(StepOutcome::Ok, detail, Some(started))
                    }
                    Some(e) => p.failed(
                        format!("the device refused {}: {e}", o.name),
                        FailureClass::Device,
                        started,
                    ),
                },
                Some(route),
                local_error,
            ),
            Err(f) => failed_call(p, f, started),
        }
    }

    /// Reads the condition's property once. `Err` carries the failure.
    /// Both say the route the read took (and, on the read that went over
    /// to the cloud, the local failure).
    async fn read(dev: &RoutedDevice, condition: &Condition) -> ReadResult {
        match dev.get(&[condition.property()]).await {
            Ok(Routed {
                value: readings,
                route,
                local_error,
            }) => {
                let via = (Some(route), local_error);
                match readings.into_iter().next() {
                    Some(r) if r.is_ok() => Ok((r, via)),
                    Some(r) => Err((
                        format!("cannot read {}: {}", r.name, r.display),
                        FailureClass::Device,
                        via,
                    )),
                    None => Err((
                        format!("the device did not report {}", condition.property()),
                        FailureClass::Device,
                        via,
                    )),
                }
            }
            Err(f) => {
                let class = FailureClass::of_device_op(&f.error);
                Err((f.detail(), class, (f.route, f.local_error)))
            }
        }
    }

    async fn wait(
        &self,
        p: &Planned,
        device: usize,
        condition: &Condition,
        timeout: Duration,
        started: Instant,
    ) -> StepReport {
        let dev = match self.device(device) {
            Ok(d) => d,
            Err(e) => return p.failed(e, FailureClass::Other, started),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last: Option<String> = None;
        let mut last_error: Option<(String, FailureClass)> = None;
        let mut route: Option<Route> = None;
        let mut local_error: Option<String> = None;
        let mut note = |(r, why): ReadRoute| {
            route = r.or(route);
            local_error = why.or(local_error.take());
        };
        loop {
            match tokio::time::timeout_at(deadline, Self::read(dev, condition)).await {
                Ok(Ok((r, via))) => {
                    note(via);
                    last = Some(shown(&r));
                    last_error = None;
                    if r.value.as_ref().is_some_and(|v| condition.holds(v)) {
                        let report = p.report(
                            StepOutcome::Ok,
                            format!(
                                "{} holds ({} = {}) after {}",
                                condition.describe(),
                                r.name,
                                shown(&r),
                                format_duration(started.elapsed())
                            ),
                            Some(started),
                        );
                        return with_route(report, route, local_error);
                    }
                }
                Ok(Err((e, class, via))) => {
                    note(via);
                    last_error = Some((e, class));
                }
                Err(_) => break,
            }
            if tokio::time::Instant::now() + WAIT_POLL >= deadline {
                // No time for another read: report what is known.
                tokio::time::sleep_until(deadline).await;
                break;
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
        let report = match (last_error, last) {
            (Some((e, FailureClass::Unreachable)), None) => p.failed(
                format!(
                    "{} not checked within {}: {e}",
                    condition.describe(),
                    format_duration(timeout)
                ),
                FailureClass::Unreachable,
                started,
            ),
            (_, last) => p.failed(
                format!(
                    "{} not met within {} (last value {})",
                    condition.describe(),
                    format_duration(timeout),
                    last.as_deref().unwrap_or("unknown")
                ),
                FailureClass::NotMet,
                started,
            ),
        };
        with_route(report, route, local_error)
    }

    async fn guard(
        &self,
        p: &Planned,
        device: usize,
        condition: &Condition,
        fail: bool,
        started: Instant,
    ) -> StepReport {
        let dev = match self.device(device) {
            Ok(d) => d,
            Err(e) => return p.failed(e, FailureClass::Other, started),
        };
        match Self::read(dev, condition).await {
            Ok((r, (route, local_error))) => {
                let holds = r.value.as_ref().is_some_and(|v| condition.holds(v));
                let detail = format!(
                    "{} {} ({} = {})",
                    condition.describe(),
                    if holds { "holds" } else { "does not hold" },
                    r.name,
                    shown(&r)
                );
                let report = match (holds, fail) {
                    (true, _) => p.report(StepOutcome::Ok, detail, Some(started)),
                    (false, false) => p.report(
                        StepOutcome::Stopped,
                        format!("{detail}; the scene stops here"),
                        Some(started),
                    ),
                    (false, true) => p.failed(detail, FailureClass::NotMet, started),
                };
                with_route(report, route, local_error)
            }
            Err((detail, class, (route, local_error))) => {
                with_route(p.failed(detail, class, started), route, local_error)
            }
        }
    }
}

/// The route a read took, and the local failure that sent it to the
/// cloud.
type ReadRoute = (Option<Route>, Option<String>);

/// One read of a condition's property: the reading, or the failure and
/// its class.
type ReadResult = Result<(PropReading, ReadRoute), (String, FailureClass, ReadRoute)>;

/// A reading for people: `20 %`, `on`.
fn shown(r: &PropReading) -> String {
    r.display.clone()
}

/// Polls every future to completion, concurrently, keeping their order.
async fn join_all<'a, T>(futs: Vec<Pin<Box<dyn Future<Output = T> + Send + 'a>>>) -> Vec<T> {
    let mut futs = futs;
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
