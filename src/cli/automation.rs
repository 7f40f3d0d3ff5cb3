//! `mijia watch`, `mijia wait` and `mijia scene …`: arguments, validation
//! and output for [`crate::automation`].
//!
//! - `watch DEVICE [NAME...]` prints one JSON object per line for each
//!   change: `{"time": RFC 3339 UTC with milliseconds, "device",
//!   "property", "siid", "piid", "old", "new", "source": "poll"|"push"|
//!   "initial"}`, flushed line by line. It stops after `--count N` changes,
//!   after `--duration`, on Ctrl-C, or when stdout is closed. A line on
//!   stderr (`watching …`) says when the initial read is done.
//! - `wait DEVICE NAME OP VALUE --timeout S` exits 0 and prints the value
//!   once the condition holds, or exits 7 when it does not hold in time.
//! - `scene list`, `scene show NAME`, `scene run NAME [--dry-run]
//!   [--keep-going]` use `<config dir>/scenes.toml` or `--file PATH`.
//!
//! Devices are registry names, or `--ip/--token [--model]` (then every
//! positional argument is a property name, operator or value). Watch and
//! wait keep their request ids to themselves (a random start), so a
//! long-running watch never reuses an id that another `mijia` process
//! takes from the home's id file at the same time.
//!
//! # Routes
//!
//! `--via local|cloud|auto` applies as for the other device commands
//! (see [`super::exec`]; the rules are [`crate::cloud::fallback`]'s):
//! with `auto`, a device that does not answer on the local network is
//! reached through the Xiaomi cloud when a session exists and its did is
//! known — scene steps (an action only when no hello was answered), the
//! reads of `wait` and the polls of `watch`, which stay on the cloud from
//! then on. Push (`miIO.sub`) is local only: through the cloud, `watch`
//! and `wait` poll. Results that used the cloud say so: `"route":
//! "cloud"` in JSON (scene steps, watch lines, the wait result) and a
//! `via cloud (REGION)` line on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::args::{Cli, Command, GlobalArgs};
use super::ids::HomeIdStore;
use super::output;
use crate::automation::scenes::{self, RunOptions, Scene, SceneFile, StepReport};
use crate::automation::time::{format_duration, parse_duration, seconds};
use crate::automation::{
    wait_until, AutomationError, Condition, Context, HintReader, Resolved, RouteFailure,
    RouteSettings, RoutedDevice, Watch, WatchOptions,
};
use crate::cloud::{CloudError, SessionStore, Via};
use crate::home::{load_spec_store, ModelCatalog, Paths, Registry};
use crate::transport::{ClientConfig, IdStore};
use crate::Error;

/// Longest accepted per-attempt `--timeout` (as for other commands).
const MAX_ATTEMPT_TIMEOUT: f64 = 600.0;

/// `mijia watch`.
#[derive(Debug, Args)]
#[command(
    override_usage = "mijia watch DEVICE [NAME...] [--interval S] [--count N] [--duration S]\n       \
        mijia --ip ADDRESS --token HEX watch [NAME...]",
    after_help = "Prints one JSON object per line and change:\n  \
        {\"time\":\"2025-06-01T18:30:05.123Z\",\"device\":\"desk-lamp\",\"property\":\"light.brightness\",\n   \
        \"siid\":2,\"piid\":2,\"old\":40,\"new\":80,\"source\":\"poll\"}\n\
        time is RFC 3339 in UTC; source is poll, push or initial."
)]
pub struct WatchArgs {
    /// The device (unless --ip is given), then property names or SIID.PIID
    /// ids (default: every readable property).
    #[arg(value_name = "NAME")]
    pub args: Vec<String>,

    /// Time between polls: 2s, 500ms, 1m (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub interval: String,

    /// Stop after this many changes.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Stop after this long: 30s, 10m.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Poll only; do not subscribe to device push (miIO.sub).
    #[arg(long)]
    pub no_push: bool,

    /// Also print the initial values (source "initial", old null); they do
    /// not count towards --count.
    #[arg(long)]
    pub initial: bool,
}

/// `mijia wait`.
#[derive(Debug, Args)]
#[command(
    override_usage = "mijia wait DEVICE NAME OP VALUE [--timeout SECONDS]\n       \
        mijia --ip ADDRESS --token HEX wait NAME OP VALUE",
    after_help = "OP is one of == != < <= > >= (quote < and > in the shell), or eq ne lt le gt ge.\n\
        Examples:\n  \
        mijia wait tv-plug switch.on == on --timeout 30\n  \
        mijia wait bedroom-sensor temperature '>' 25 --timeout 600\n\
        Exit codes: 0 the condition holds, 7 not within the timeout, 4 the device does not answer."
)]
pub struct WaitArgs {
    /// The device (unless --ip is given), the property, the operator and
    /// the value.
    #[arg(value_name = "ARG", required = true, num_args = 3..=4, allow_negative_numbers = true)]
    pub args: Vec<String>,

    /// How long to wait for the condition, in seconds (for `wait` this is
    /// the whole wait; each request waits at most 5 s of it).
    #[arg(
        long = "timeout",
        id = "timeout",
        value_name = "SECONDS",
        default_value_t = 60.0,
        allow_negative_numbers = true
    )]
    pub timeout: f64,

    /// Time between polls: 1s, 500ms (push is used too where supported).
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub interval: String,

    /// Poll only; do not subscribe to device push.
    #[arg(long)]
    pub no_push: bool,
}

/// `mijia scene …`.
#[derive(Debug, Subcommand)]
pub enum SceneCommand {
    /// List the scenes.
    List {
        /// The scenes file (default: scenes.toml in the config directory).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Show a scene's steps.
    Show {
        /// The scene.
        name: String,
        /// The scenes file (default: scenes.toml in the config directory).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Run a scene: print a result for every step; exit non-zero if a step
    /// fails.
    #[command(
        after_help = "After a failed step the scene stops (the rest is skipped) unless \
        --keep-going is given.\nA guard that does not hold stops the scene without failing it.\n\
        Every name and value is checked against the specs before anything is sent."
    )]
    Run {
        /// The scene.
        name: String,
        /// Check every device, name and value against the specs; send
        /// nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run the remaining steps after a failed one.
        #[arg(long)]
        keep_going: bool,
        /// The scenes file (default: scenes.toml in the config directory).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
}

/// Which device, before it is resolved.
#[derive(Debug, Clone)]
enum Who {
    Named(String),
    Address {
        addr: std::net::SocketAddr,
        token: mijia_proto::miio::Token,
        model: Option<String>,
    },
}

/// A validated automation command.
#[derive(Debug, Clone)]
pub enum AutomationPlan {
    /// `watch`.
    Watch {
        /// The device.
        who: WhoArg,
        /// Property names (empty: all readable).
        names: Vec<String>,
        /// Poll interval and push.
        opts: WatchOptions,
        /// Stop after this many changes.
        count: Option<u64>,
        /// Stop after this long.
        duration: Option<Duration>,
        /// Print the initial values.
        initial: bool,
        /// Transport settings.
        config: ClientConfig,
        /// The route.
        route: RouteArg,
    },
    /// `wait`.
    Wait {
        /// The device.
        who: WhoArg,
        /// The property.
        property: String,
        /// The operator.
        op: crate::automation::CompareOp,
        /// The value, as typed.
        value: String,
        /// The whole wait.
        timeout: Duration,
        /// Poll interval and push.
        opts: WatchOptions,
        /// Transport settings.
        config: ClientConfig,
        /// The route.
        route: RouteArg,
        /// JSON output.
        json: bool,
    },
    /// `scene list`.
    SceneList {
        /// The scenes file, if not the default.
        file: Option<PathBuf>,
        /// JSON output.
        json: bool,
    },
    /// `scene show`.
    SceneShow {
        /// The scene.
        name: String,
        /// The scenes file, if not the default.
        file: Option<PathBuf>,
        /// JSON output.
        json: bool,
    },
    /// `scene run`.
    SceneRun {
        /// The scene.
        name: String,
        /// The scenes file, if not the default.
        file: Option<PathBuf>,
        /// Dry run, keep going.
        opts: RunOptions,
        /// Transport settings.
        config: ClientConfig,
        /// The route (`--via`).
        via: Via,
        /// JSON output.
        json: bool,
    },
}

/// The device of a watch or wait (opaque; from the command line).
#[derive(Debug, Clone)]
pub struct WhoArg(Who);

/// The route of a watch or wait: `--via`, and `--did` for the cloud.
#[derive(Debug, Clone)]
pub struct RouteArg {
    via: Via,
    did: Option<String>,
}

impl RouteArg {
    fn from_global(g: &GlobalArgs) -> Self {
        RouteArg {
            via: g.via,
            did: g
                .did
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
        }
    }
}

/// Validates `watch`, `wait` and `scene` command lines.
pub fn plan(cli: &Cli) -> Result<AutomationPlan, Error> {
    let g = &cli.global;
    match &cli.command {
        Command::Watch(a) => {
            let (who, names) = split_device(g, &a.args, "watch")?;
            let interval = duration_arg("--interval", &a.interval, true)?;
            let duration = a
                .duration
                .as_deref()
                .map(|d| duration_arg("--duration", d, false))
                .transpose()?;
            if a.count == Some(0) {
                return Err(Error::usage(
                    "--count 0 would print nothing; give 1 or more",
                ));
            }
            Ok(AutomationPlan::Watch {
                who,
                names,
                opts: WatchOptions {
                    interval,
                    push: !a.no_push,
                    ..WatchOptions::default()
                },
                count: a.count,
                duration,
                initial: a.initial,
                config: client_config(g, None)?,
                route: RouteArg::from_global(g),
            })
        }
        Command::Wait(a) => {
            let (who, rest) = split_device(g, &a.args, "wait")?;
            let [property, op, value] = rest.as_slice() else {
                return Err(Error::usage(
                    "wait takes DEVICE NAME OP VALUE (with --ip: NAME OP VALUE), e.g. \
                     `mijia wait tv-plug switch.on == on`",
                ));
            };
            let op = crate::automation::condition::parse_op(op)?;
            let timeout = seconds(a.timeout).filter(|d| !d.is_zero()).ok_or_else(|| {
                Error::usage(format!(
                    "invalid --timeout {}: give the seconds to wait for the condition, more than 0",
                    a.timeout
                ))
            })?;
            let interval = duration_arg("--interval", &a.interval, true)?;
            Ok(AutomationPlan::Wait {
                who,
                property: property.clone(),
                op,
                value: value.clone(),
                timeout,
                opts: WatchOptions {
                    interval,
                    push: !a.no_push,
                    ..WatchOptions::default()
                },
                config: client_config(g, Some(timeout))?,
                route: RouteArg::from_global(g),
                json: g.json,
            })
        }
        Command::Scene(s) => Ok(match s {
            SceneCommand::List { file } => AutomationPlan::SceneList {
                file: file.clone(),
                json: g.json,
            },
            SceneCommand::Show { name, file } => AutomationPlan::SceneShow {
                name: name.clone(),
                file: file.clone(),
                json: g.json,
            },
            SceneCommand::Run {
                name,
                dry_run,
                keep_going,
                file,
            } => {
                if g.ip.is_some() {
                    return Err(Error::usage(
                        "scenes name registered devices; --ip does not apply to `scene run`",
                    ));
                }
                AutomationPlan::SceneRun {
                    name: name.clone(),
                    file: file.clone(),
                    opts: RunOptions {
                        dry_run: *dry_run,
                        keep_going: *keep_going,
                    },
                    config: client_config(g, None)?,
                    via: g.via,
                    json: g.json,
                }
            }
        }),
        _ => Err(Error::usage("not an automation command")),
    }
}

fn duration_arg(flag: &str, text: &str, positive: bool) -> Result<Duration, Error> {
    let d = parse_duration(text).map_err(|e| Error::usage(format!("{flag}: {e}")))?;
    if positive && d < Duration::from_millis(50) {
        return Err(Error::usage(format!(
            "{flag} {text} is too short: give at least 50ms"
        )));
    }
    Ok(d)
}

/// Transport settings from the global options; `whole` caps each attempt
/// for `wait`, whose `--timeout` is the whole wait.
fn client_config(g: &GlobalArgs, whole: Option<Duration>) -> Result<ClientConfig, Error> {
    if g.port == 0 {
        return Err(Error::usage(
            "invalid --port 0: give the device's UDP port (54321 on real devices)",
        ));
    }
    let default = ClientConfig::default();
    let timeout = match whole {
        Some(w) => w.min(default.timeout),
        None => {
            if !g.timeout.is_finite() || g.timeout <= 0.0 || g.timeout > MAX_ATTEMPT_TIMEOUT {
                return Err(Error::usage(format!(
                    "invalid --timeout {}: give the seconds to wait per attempt, more than 0 and \
                     at most {MAX_ATTEMPT_TIMEOUT}",
                    g.timeout
                )));
            }
            Duration::from_secs_f64(g.timeout)
        }
    };
    let handshake_timeout = timeout.min(default.handshake_timeout);
    Ok(ClientConfig {
        port: g.port,
        timeout,
        retries: g.retries,
        handshake_timeout,
        hello_interval: (handshake_timeout / 3).min(default.hello_interval),
        ..default
    })
}

/// The device (a registry name, unless `--ip` is given) and the rest.
fn split_device(
    g: &GlobalArgs,
    args: &[String],
    cmd: &str,
) -> Result<(WhoArg, Vec<String>), Error> {
    if g.ip.is_some() {
        let (addr, token) = super::plan::address(g)?;
        let model = super::plan::model_arg(g)?;
        return Ok((WhoArg(Who::Address { addr, token, model }), args.to_vec()));
    }
    if g.token.is_some() {
        return Err(Error::usage(
            "--token (or MIJIA_TOKEN) is given without --ip: pass both to address a device \
             directly, or neither to use a registered device by name",
        ));
    }
    let Some((device, rest)) = args.split_first() else {
        return Err(Error::usage(format!(
            "no device given: `mijia {cmd} DEVICE …` with a registered device (see `mijia device \
             list`), or pass --ip ADDRESS --token HEX"
        )));
    };
    Ok((WhoArg(Who::Named(device.clone())), rest.to_vec()))
}

fn paths() -> Result<Paths, Error> {
    Ok(Paths::from_env()?)
}

fn catalog(paths: Option<&Paths>) -> Arc<ModelCatalog> {
    let store = match paths {
        Some(p) => {
            let (store, warnings) = load_spec_store(p);
            for w in warnings {
                eprintln!("warning: {w}");
            }
            store
        }
        None => mijia_proto::miot::SpecStore::new(),
    };
    Arc::new(ModelCatalog::new(store))
}

/// Resolves the device and opens it on the route asked for; asks a
/// device without a known model for it (`miIO.info`, on that route),
/// since names need the model's spec. Returns the local failure that sent
/// the model question to the cloud, if it went there.
async fn open(
    who: &WhoArg,
    config: &ClientConfig,
    route: &RouteArg,
) -> Result<(Resolved, RoutedDevice, Option<String>), Error> {
    let (mut resolved, catalog, paths) = match &who.0 {
        Who::Named(name) => {
            let paths = paths()?;
            let catalog = catalog(Some(&paths));
            let ctx = Context::new(
                Registry::load(&paths)?,
                Arc::clone(&catalog),
                config.clone(),
            );
            let resolved = ctx.resolve(name)?.with_cloud_did(route.did.clone());
            (resolved, catalog, Some(paths))
        }
        Who::Address { addr, token, model } => {
            let paths = Paths::from_env().ok();
            let catalog = catalog(paths.as_ref());
            // The cloud's did: --did, else the registry entry at this
            // address (a registry that cannot be read only loses the
            // cloud route).
            let did = match (&route.did, route.via, &paths) {
                (Some(d), _, _) => Some(d.clone()),
                (None, Via::Local, _) | (None, _, None) => None,
                (None, _, Some(p)) => Registry::load(p)
                    .ok()
                    .and_then(|r| r.find_by_ip(addr.ip()).and_then(|e| e.did))
                    .map(|d| d.to_string()),
            };
            let resolved =
                Resolved::ad_hoc(*addr, *token, model.as_deref(), &catalog).with_cloud_did(did);
            (resolved, catalog, paths)
        }
    };
    let settings = RouteSettings {
        via: route.via,
        paths,
        reader: HintReader::User,
    };
    let mut device = RoutedDevice::open(
        resolved.target.clone(),
        resolved.cloud_did(),
        config.clone(),
        None,
        settings,
    )?;
    let mut local_error = None;
    if resolved.target.profile.model.is_none() {
        let found = device.detect_model().await.map_err(route_error)?;
        local_error = found.local_error;
        let found = found.value;
        resolved.target.profile = catalog.profile(Some(&found.model));
        if resolved.target.did.is_none() {
            resolved.target.did = found.did;
        }
        device = device.with_target(resolved.target.clone(), None)?;
    }
    Ok((resolved, device, local_error))
}

/// A failed call before the watch or wait starts, as the other device
/// commands report it: the error, then what else to know.
fn route_error(f: RouteFailure) -> Error {
    let note = f.note();
    let e = Error::from(f.error);
    match note {
        Some(n) => e.with_hint(n),
        None => e,
    }
}

/// The `via cloud (REGION)` line on stderr, when the cloud was used.
fn route_note(route: crate::cloud::Route, local_error: Option<&str>) {
    if let Some(note) = output::route_note(route, local_error) {
        eprintln!("{note}");
    }
}

/// Runs a validated automation command.
pub async fn execute(plan: AutomationPlan) -> Result<(), Error> {
    match plan {
        AutomationPlan::Watch {
            who,
            names,
            opts,
            count,
            duration,
            initial,
            config,
            route,
        } => {
            let watch_opts = WatchRun {
                count,
                duration,
                initial,
            };
            watch(&who, &names, opts, watch_opts, config, &route).await
        }
        AutomationPlan::Wait {
            who,
            property,
            op,
            value,
            timeout,
            opts,
            config,
            route,
            json,
        } => {
            let (resolved, device, detect_error) = open(&who, &config, &route).await?;
            let condition = Condition::new(&resolved.target.profile, &property, op, &value)
                .map_err(|e| AutomationError::device(resolved.name(), e))?;
            let met = wait_until(&resolved, device, &condition, timeout, opts).await?;
            route_note(
                met.route,
                met.local_error.as_deref().or(detect_error.as_deref()),
            );
            let text = if json {
                let mut doc = json!({
                    "device": resolved.name(),
                    "property": met.property,
                    "condition": condition.describe(),
                    "value": met.value,
                    "display": met.display,
                    "elapsed_ms": u64::try_from(met.elapsed.as_millis()).unwrap_or(u64::MAX),
                });
                if met.route.is_cloud() {
                    doc["route"] = json!(met.route.kind());
                }
                doc.to_string()
            } else {
                format!("{} {} = {}", resolved.name(), met.property, met.display)
            };
            print_line(&text)
        }
        AutomationPlan::SceneList { file, json } => {
            let file = load_scenes(file.as_deref())?;
            print_text(&list_text(&file, json))
        }
        AutomationPlan::SceneShow { name, file, json } => {
            let file = load_scenes(file.as_deref())?;
            let scene = file.get(&name)?;
            if json {
                print_text(&format!("{}\n", show_json(scene)))
            } else {
                print_text(&scene.render())
            }
        }
        AutomationPlan::SceneRun {
            name,
            file,
            opts,
            config,
            via,
            json,
        } => scene_run(&name, file.as_deref(), opts, config, via, json).await,
    }
}

fn load_scenes(file: Option<&std::path::Path>) -> Result<SceneFile, Error> {
    Ok(match file {
        Some(f) => SceneFile::load_from(&super::plan::path_arg(f, "--file")?)?,
        None => SceneFile::load(&paths()?)?,
    })
}

/// When a watch stops, and what it prints.
struct WatchRun {
    count: Option<u64>,
    duration: Option<Duration>,
    initial: bool,
}

async fn watch(
    who: &WhoArg,
    names: &[String],
    opts: WatchOptions,
    run: WatchRun,
    config: ClientConfig,
    route: &RouteArg,
) -> Result<(), Error> {
    let WatchRun {
        count,
        duration,
        initial,
    } = run;
    let (resolved, device, detect_error) = open(who, &config, route).await?;
    let interval = opts.interval;
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let (mut watch, first) = Watch::start(&resolved, device, names, opts.clone()).await?;
    route_note(
        watch.route(),
        watch.local_error().or(detect_error.as_deref()),
    );
    // Push is local only: through the cloud, the watch polls.
    let push = opts.push && !watch.route().is_cloud();
    let mut out = std::io::stdout();
    if initial {
        for c in &first {
            if !emit(&mut out, c)? {
                watch.close().await;
                return Ok(());
            }
        }
    }
    eprintln!(
        "watching {} ({} propert{}), polling every {}{}; Ctrl-C to stop",
        resolved.name(),
        watch.names().len(),
        if watch.names().len() == 1 { "y" } else { "ies" },
        format_duration(interval),
        if push {
            ", push where the device supports it"
        } else {
            ""
        }
    );
    let mut seen = 0u64;
    while count.is_none_or(|n| seen < n) {
        let until = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            change = watch.next() => {
                if !emit(&mut out, &change)? {
                    break;
                }
                seen += 1;
            }
            _ = until => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    watch.close().await;
    Ok(())
}

/// Prints one JSON line and flushes. `Ok(false)` when stdout is closed.
fn emit(out: &mut std::io::Stdout, change: &crate::automation::Change) -> Result<bool, Error> {
    let line = serde_json::to_string(change).map_err(|e| Error::Io {
        context: "cannot encode a change as JSON".into(),
        source: std::io::Error::other(e),
    })?;
    let mut lock = out.lock();
    match writeln!(lock, "{line}").and_then(|()| lock.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(source) => Err(Error::Io {
            context: "cannot write to stdout".into(),
            source,
        }),
    }
}

fn print_line(text: &str) -> Result<(), Error> {
    print_text(&format!("{text}\n"))
}

fn print_text(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(Error::Io {
            context: "cannot write to stdout".into(),
            source,
        }),
    }
}

fn list_text(file: &SceneFile, json: bool) -> String {
    if json {
        let scenes: Vec<serde_json::Value> = file
            .scenes
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "description": s.description,
                    "steps": s.steps.len(),
                    "devices": s.devices(),
                })
            })
            .collect();
        return format!("{}\n", json!({ "scenes": scenes }));
    }
    if file.scenes.is_empty() {
        return "no scenes yet: add [[scene]] tables to scenes.toml in the config directory \
                (see `mijia scene --help`)\n"
            .into();
    }
    let width = file
        .scenes
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("{:<width$}  STEPS  DEVICES / DESCRIPTION\n", "NAME");
    for s in &file.scenes {
        let about = match &s.description {
            Some(d) => format!("{} — {d}", s.devices().join(", ")),
            None => s.devices().join(", "),
        };
        out.push_str(&format!(
            "{:<width$}  {:>5}  {about}\n",
            s.name,
            s.steps.len()
        ));
    }
    out
}

fn show_json(scene: &Scene) -> serde_json::Value {
    fn steps(list: &[scenes::Step], prefix: Option<&str>, out: &mut Vec<serde_json::Value>) {
        for (i, s) in list.iter().enumerate() {
            let path = match prefix {
                Some(p) => format!("{p}.{}", i + 1),
                None => (i + 1).to_string(),
            };
            out.push(json!({
                "step": path,
                "name": s.name,
                "kind": s.kind.label(),
                "device": s.kind.device(),
                "text": scenes::describe_step(&s.kind),
            }));
            if let scenes::StepKind::Parallel(members) = &s.kind {
                steps(members, Some(&path), out);
            }
        }
    }
    let mut list = Vec::new();
    steps(&scene.steps, None, &mut list);
    json!({
        "name": scene.name,
        "description": scene.description,
        "devices": scene.devices(),
        "steps": list,
    })
}

async fn scene_run(
    name: &str,
    file: Option<&std::path::Path>,
    opts: RunOptions,
    config: ClientConfig,
    via: Via,
    json: bool,
) -> Result<(), Error> {
    let scenes = load_scenes(file)?;
    let scene = scenes.get(name)?;
    let paths = paths()?;
    if via == Via::Cloud && !opts.dry_run {
        // Like `mijia --via cloud get`: no session is exit 6, before any
        // step runs.
        if SessionStore::new(&paths).load()?.is_none() {
            return Err(CloudError::NotLoggedIn.into());
        }
    }
    let ids: Option<Arc<dyn IdStore>> = Some(Arc::new(HomeIdStore::new(paths.clone())));
    let ctx = Context::new(Registry::load(&paths)?, catalog(Some(&paths)), config)
        .with_ids(ids)
        .with_home(paths.clone())
        .with_via(via);
    let width = scene
        .devices()
        .iter()
        .map(|d| d.chars().count())
        .max()
        .unwrap_or(0)
        .max(18);
    if !json {
        print_text(&format!(
            "{:<6} {:<8} {:<width$} {:<8} DETAIL\n",
            "STEP", "KIND", "DEVICE", "RESULT"
        ))?;
    }
    let mut noted: Vec<String> = Vec::new();
    let mut on_step = |reports: &[StepReport]| {
        // The `via cloud` line, once per device, as the steps end.
        for r in reports {
            let (Some(route), Some(device)) = (r.route, &r.device) else {
                continue;
            };
            if noted.iter().any(|d| d.eq_ignore_ascii_case(device)) {
                continue;
            }
            if let Some(note) = output::route_note(route, r.local_error.as_deref()) {
                eprintln!("{device}: {note}");
                noted.push(device.clone());
            }
        }
        if !json {
            let _ = print_text(&step_lines(reports, width));
        }
    };
    let report = scenes::run_scene_with(scene, &ctx, &opts, &mut on_step).await;
    if json {
        let doc = serde_json::to_string_pretty(&report).map_err(|e| Error::Io {
            context: "cannot encode the scene report as JSON".into(),
            source: std::io::Error::other(e),
        })?;
        print_line(&doc)?;
    } else {
        let summary = match (report.outcome, opts.dry_run) {
            (scenes::SceneOutcome::Ok, true) => {
                format!(
                    "scene {}: every step checks out (dry run: nothing was sent)",
                    report.scene
                )
            }
            (scenes::SceneOutcome::Ok, false) => format!("scene {}: done", report.scene),
            (scenes::SceneOutcome::Stopped, _) => {
                format!("scene {}: stopped by a guard", report.scene)
            }
            (scenes::SceneOutcome::Failed, _) => format!("scene {}: failed", report.scene),
        };
        print_line(&summary)?;
    }
    match report.error() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn step_lines(reports: &[StepReport], width: usize) -> String {
    let mut out = String::new();
    for r in reports {
        let outcome = serde_json::to_value(r.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let step = match &r.name {
            Some(n) => format!("{} {n}", r.step),
            None => r.step.clone(),
        };
        out.push_str(&format!(
            "{:<6} {:<8} {:<width$} {:<8} {}\n",
            step,
            r.kind,
            r.device.as_deref().unwrap_or("-"),
            outcome,
            r.detail
        ));
    }
    out
}
