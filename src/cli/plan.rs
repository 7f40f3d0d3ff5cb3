//! Arguments → a validated plan, before any network IO.
//!
//! Every malformed input (address, token, `SIID.PIID`, JSON, a device,
//! room, property or action name, a value out of range) is an error here,
//! with a message naming the problem and what to do; nothing has been sent
//! to a device yet. Reading the registry and the spec directory is the
//! only IO this stage does.
//!
//! # Which device
//!
//! With `--ip` (or `MIJIA_IP`) the device is given by address and token
//! and every positional argument is a property, action or method: `mijia
//! --ip A --token T get 2.1 light.brightness`. Its model comes from
//! `--model`, or — only when names rather than numeric ids are used — is
//! asked from the device (`miIO.info`) when the command runs.
//!
//! Without `--ip`, the first positional argument is a registered device
//! name (case-insensitive): `mijia get desk-lamp light.brightness`. An
//! unknown name is an error listing close names.
//!
//! With `--did` and no `--ip`, the device is the one with that cloud
//! device id and every positional argument is a property, action or
//! method, as with `--ip`: the registry entry with that did when there is
//! one (its name, model and address), else a device reachable only
//! through the cloud.
//!
//! # Which route
//!
//! Every device command carries the route asked for (`--via`, see
//! [`crate::cloud::Via`]) and the did the cloud route would use: `--did`,
//! else the registry entry's did (by name, or the entry with the `--ip`
//! address). Names and values are checked here, before either route is
//! tried; [`super::exec`] picks the route.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mijia_proto::miio::Token;
use mijia_proto::miot::names::parse_iid_pair;
use serde_json::Value;

use super::args::{Cli, Command, GlobalArgs};
use super::devices::{self, DevicePlan};
use super::specs::{self, SpecPlan};
use super::status::{self, StatusArgs, StatusPlan};
use crate::cloud::Via;
use crate::home::{
    load_spec_store, DeviceOpError, DeviceTarget, ModelCatalog, ModelProfile, Paths, Registry,
};
use crate::transport::ClientConfig;
use crate::Error;

/// Longest accepted `--timeout`.
const MAX_TIMEOUT_SECS: f64 = 600.0;

/// The device a command addresses.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Address, token and model profile.
    pub device: DeviceTarget,
    /// Whether it comes from the registry (its last-seen time is recorded).
    pub registered: bool,
    /// Whether its model must be asked from the device (`miIO.info`)
    /// before names can be resolved.
    pub detect: bool,
    /// The route asked for (`--via`).
    pub via: Via,
    /// The device id for the cloud route, when known.
    pub cloud_did: Option<String>,
}

/// What to do with one device. Names are kept as the user wrote them; the
/// [`crate::home::Device`] facade resolves them (the plan has already
/// checked that they resolve, unless the model is still to be detected).
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `miIO.info`.
    Info,
    /// Every readable property.
    Status,
    /// Any method.
    Raw {
        /// Method name.
        method: String,
        /// Params (array or object).
        params: Value,
    },
    /// Properties by name or `siid.piid`.
    Get(Vec<String>),
    /// `name=value` pairs.
    Set(Vec<(String, String)>),
    /// An action by name or `siid.aiid`, with its arguments.
    Action {
        /// The action.
        name: String,
        /// Arguments, by position or `NAME=VALUE`.
        args: Vec<String>,
    },
}

/// What a command does.
#[derive(Debug, Clone)]
pub enum Work {
    /// One operation on one device.
    Device {
        /// The device.
        target: Destination,
        /// The operation.
        op: Request,
    },
    /// `status --room` / `status --all`.
    Status(StatusPlan),
    /// `device …`: the registry.
    Registry(DevicePlan),
    /// `spec …`.
    Spec(SpecPlan),
}

/// A fully validated command.
#[derive(Debug, Clone)]
pub struct HomePlan {
    /// Transport settings.
    pub config: ClientConfig,
    /// JSON output instead of tables.
    pub json: bool,
    /// The home's files, when a home directory is known.
    pub paths: Option<Paths>,
    /// Specs and legacy tables, one profile per model.
    pub catalog: Arc<ModelCatalog>,
    /// What to do.
    pub work: Work,
}

/// Validate everything the user gave.
pub fn plan_home(cli: &Cli) -> Result<HomePlan, Error> {
    let g = &cli.global;
    let config = client_config(g)?;
    let paths = Paths::from_env();
    let needs_home = !matches!(
        &cli.command,
        Command::Info { .. }
            | Command::Get { .. }
            | Command::Set { .. }
            | Command::Action { .. }
            | Command::Raw { .. }
            | Command::Status(_)
    ) || g.ip.is_none();
    let paths = match paths {
        Ok(p) => Some(p),
        Err(e) if needs_home => return Err(e.into()),
        Err(_) => None,
    };
    let uses_specs = matches!(
        &cli.command,
        Command::Info { .. }
            | Command::Get { .. }
            | Command::Set { .. }
            | Command::Action { .. }
            | Command::Raw { .. }
            | Command::Status(_)
            | Command::Spec(_)
    );
    let catalog = Arc::new(ModelCatalog::new(if uses_specs {
        spec_store(paths.as_ref())
    } else {
        mijia_proto::miot::SpecStore::new()
    }));
    let work = match &cli.command {
        Command::Device(d) => Work::Registry(devices::plan(d, g, paths.as_ref())?),
        Command::Spec(s) => Work::Spec(specs::plan(s, g)?),
        Command::Status(s) => match single_status(s, g)? {
            Some(device) => Work::Device {
                target: target(
                    g,
                    device.as_deref(),
                    paths.as_ref(),
                    &catalog,
                    &Request::Status,
                )?,
                op: Request::Status,
            },
            None => Work::Status(status::plan(s, paths.as_ref(), &catalog)?),
        },
        other => {
            let by_address = g.ip.is_some() || did_arg(g).is_some();
            let (device, op) = device_op(other, by_address)?;
            let target = target(g, device.as_deref(), paths.as_ref(), &catalog, &op)?;
            if !target.detect {
                prevalidate(&target.device.profile, &op)?;
            }
            Work::Device { target, op }
        }
    };
    Ok(HomePlan {
        config,
        json: g.json,
        paths,
        catalog,
        work,
    })
}

/// `--did`, trimmed, when given.
fn did_arg(g: &GlobalArgs) -> Option<String> {
    g.did
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

/// `status` of one device (`Some`; `Some(None)` when it is given by
/// `--ip` or `--did`), or of a room or the home (`None`).
fn single_status(a: &StatusArgs, g: &GlobalArgs) -> Result<Option<Option<String>>, Error> {
    if g.ip.is_none() && did_arg(g).is_some() {
        if a.room.is_some() || a.all {
            return Err(Error::usage(
                "--room and --all poll registered devices; drop --did",
            ));
        }
        if a.device.is_some() {
            return Err(Error::usage(
                "with --did, `status` takes no DEVICE: the device id names the device",
            ));
        }
        return Ok(Some(None));
    }
    let one = status::single_device(a, g)?;
    if one.is_none() && g.via == Via::Cloud {
        return Err(Error::usage(
            "--via cloud takes one device (`mijia --via cloud status DEVICE`); `status --room` \
             and `status --all` poll over the local network",
        ));
    }
    Ok(one)
}

/// The bundled specs plus the user's spec directory. Files that cannot be
/// used are reported on stderr (once per run) and skipped.
fn spec_store(paths: Option<&Paths>) -> mijia_proto::miot::SpecStore {
    let Some(paths) = paths else {
        return mijia_proto::miot::SpecStore::new();
    };
    let (store, warnings) = load_spec_store(paths);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    store
}

/// Transport settings from the global options.
fn client_config(g: &GlobalArgs) -> Result<ClientConfig, Error> {
    if g.port == 0 {
        return Err(Error::usage(
            "invalid --port 0: give the device's UDP port (54321 on real devices)",
        ));
    }
    let timeout = timeout(g.timeout)?;
    let handshake_timeout = timeout.min(ClientConfig::default().handshake_timeout);
    Ok(ClientConfig {
        port: g.port,
        timeout,
        retries: g.retries,
        handshake_timeout,
        hello_interval: (handshake_timeout / 3).min(ClientConfig::default().hello_interval),
        ..ClientConfig::default()
    })
}

fn timeout(secs: f64) -> Result<Duration, Error> {
    if !secs.is_finite() || secs <= 0.0 || secs > MAX_TIMEOUT_SECS {
        return Err(Error::usage(format!(
            "invalid --timeout {secs}: give the seconds to wait per attempt, more than 0 and at most {MAX_TIMEOUT_SECS}"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--ip` and `--token` checked, for ad-hoc targets and `device add`.
pub(crate) fn address(g: &GlobalArgs) -> Result<(SocketAddr, Token), Error> {
    let ip = g
        .ip
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::usage("no device address: pass --ip ADDRESS (or set MIJIA_IP)"))?;
    let ip: IpAddr = ip.parse().map_err(|_| {
        Error::usage(format!(
            "invalid --ip {ip:?}: expected an IPv4 or IPv6 address such as 192.168.1.20"
        ))
    })?;
    let token = g.token.as_deref().ok_or_else(|| {
        Error::usage(
            "no device token: pass --token HEX (or set MIJIA_TOKEN); a token is 32 hex characters",
        )
    })?;
    let token: Token = token
        .parse()
        .map_err(|e| Error::usage(format!("invalid token: {e}")))?;
    Ok((SocketAddr::new(ip, g.port), token))
}

/// A `--model` value, checked.
pub(crate) fn model_arg(g: &GlobalArgs) -> Result<Option<String>, Error> {
    match g.model.as_deref().map(str::trim) {
        None => Ok(None),
        Some(m) if crate::home::specs::is_model_id(m) => Ok(Some(m.to_ascii_lowercase())),
        Some(m) => Err(Error::usage(format!(
            "invalid --model {m:?}: a model looks like vendor.kind.name, e.g. yeelink.light.color1"
        ))),
    }
}

/// Resolves the device: by address with `--ip`, else by registry name.
fn target(
    g: &GlobalArgs,
    device: Option<&str>,
    paths: Option<&Paths>,
    catalog: &ModelCatalog,
    op: &Request,
) -> Result<Destination, Error> {
    let via = g.via;
    let did = did_arg(g);
    if let (Some(ip), None, Via::Cloud, Some(p)) = (g.ip.as_deref(), &g.token, via, paths) {
        // The cloud needs no token: a registered address is enough.
        if let Ok(ip) = ip.trim().parse::<IpAddr>() {
            if let Some(entry) = Registry::load(p)?.find_by_ip(ip) {
                return registered(g, entry, catalog, op, did);
            }
        }
    }
    if g.ip.is_some() {
        let (addr, token) = address(g)?;
        let model = model_arg(g)?;
        let detect = model.is_none() && needs_model(op);
        let cloud_did = match (did, via, paths) {
            (Some(d), _, _) => Some(d),
            (None, Via::Local, _) | (None, _, None) => None,
            (None, Via::Cloud, Some(p)) => did_by_ip(&Registry::load(p)?, addr.ip()),
            // Auto: a registry that cannot be read only loses the fallback.
            (None, Via::Auto, Some(p)) => Registry::load(p)
                .ok()
                .and_then(|r| did_by_ip(&r, addr.ip())),
        };
        return Ok(Destination {
            device: DeviceTarget::ad_hoc(addr, token, model.as_deref(), catalog),
            registered: false,
            detect,
            via,
            cloud_did,
        });
    }
    if g.token.is_some() {
        return Err(Error::usage(
            "--token (or MIJIA_TOKEN) is given without --ip: pass both to address a device \
             directly, or neither to use a registered device by name",
        ));
    }
    if let Some(did) = did {
        return by_did(g, did, paths, catalog, op);
    }
    let name = device.ok_or_else(|| {
        Error::usage(
            "no device given: name a registered device (see `mijia device list`), or pass \
             --ip ADDRESS --token HEX",
        )
    })?;
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(Error::usage(format!(
            "{name:?} is not a device name (names start with a letter): name a registered \
             device first, e.g. `mijia get desk-lamp {name}`, or pass --ip ADDRESS --token HEX"
        )));
    }
    let paths = paths.ok_or_else(|| Error::usage("no home directory to find devices in"))?;
    let registry = Registry::load(paths)?;
    let entry = registry.get(name)?;
    registered(g, entry, catalog, op, None)
}

/// The did of the registry entry with this address.
fn did_by_ip(registry: &Registry, ip: IpAddr) -> Option<String> {
    registry
        .find_by_ip(ip)
        .and_then(|e| e.did)
        .map(|d| d.to_string())
}

/// The device with cloud id `did` (`--did` without `--ip`): its registry
/// entry, or a device reachable only through the cloud.
fn by_did(
    g: &GlobalArgs,
    did: String,
    paths: Option<&Paths>,
    catalog: &ModelCatalog,
    op: &Request,
) -> Result<Destination, Error> {
    let paths = paths.ok_or_else(|| Error::usage("no home directory to find devices in"))?;
    let registry = Registry::load(paths)?;
    if let Some(entry) = did.parse().ok().and_then(|d| registry.find_by_did(d)) {
        return registered(g, entry, catalog, op, Some(did));
    }
    if g.via == Via::Local {
        return Err(Error::usage(format!(
            "no registered device has did {did}, so there is no local address for it: pass              --ip ADDRESS --token HEX, add it with `mijia cloud import`, or use --via cloud"
        )));
    }
    let model = model_arg(g)?;
    Ok(Destination {
        device: DeviceTarget::cloud_only(&did, model.as_deref(), catalog),
        registered: false,
        detect: model.is_none() && needs_model(op),
        // There is only the cloud to try.
        via: Via::Cloud,
        cloud_did: Some(did),
    })
}

/// A registered device; `did` overrides its recorded did for the cloud.
fn registered(
    g: &GlobalArgs,
    entry: &crate::home::DeviceEntry,
    catalog: &ModelCatalog,
    op: &Request,
    did: Option<String>,
) -> Result<Destination, Error> {
    let mut device = DeviceTarget::from_entry(entry, catalog);
    let detect = entry.model.is_none() && needs_model(op);
    if let Some(m) = model_arg(g)? {
        // An explicit --model overrides the registry for this run.
        device.profile = catalog.profile(Some(&m));
    }
    let detect = detect && g.model.is_none();
    Ok(Destination {
        device,
        registered: true,
        detect,
        via: g.via,
        cloud_did: did.or_else(|| entry.did.map(|d| d.to_string())),
    })
}

/// Whether the operation uses names that only a model's spec or legacy
/// table can resolve (numeric ids, `info` and `raw` need no model).
fn needs_model(op: &Request) -> bool {
    let is_name = |s: &str| parse_iid_pair(s).is_none();
    match op {
        Request::Info | Request::Raw { .. } => false,
        Request::Status => true,
        Request::Get(names) => names.iter().any(|n| is_name(n)),
        Request::Set(pairs) => pairs.iter().any(|(n, _)| is_name(n)),
        Request::Action { name, .. } => is_name(name),
    }
}

/// Resolves names and checks values against the model, with no IO.
pub(crate) fn prevalidate(profile: &ModelProfile, op: &Request) -> Result<(), DeviceOpError> {
    match op {
        Request::Info | Request::Raw { .. } => Ok(()),
        Request::Status => profile.plan_status().map(drop),
        Request::Get(names) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            profile.plan_get(&names).map(drop)
        }
        Request::Set(pairs) => {
            let pairs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            profile.plan_set(&pairs).map(drop)
        }
        Request::Action { name, args } => profile.plan_action(name, args).map(drop),
    }
}

/// Splits the positional arguments into the device (unless addressed by
/// `--ip`) and the operation, checking their syntax.
fn device_op(cmd: &Command, by_address: bool) -> Result<(Option<String>, Request), Error> {
    let split = |args: &[String]| -> (Option<String>, Vec<String>) {
        if by_address {
            (None, args.to_vec())
        } else {
            match args.split_first() {
                Some((d, rest)) => (Some(d.clone()), rest.to_vec()),
                None => (None, Vec::new()),
            }
        }
    };
    Ok(match cmd {
        Command::Info { device } => {
            if by_address && device.is_some() {
                return Err(Error::usage(
                    "with --ip, `info` takes no DEVICE: the address names the device",
                ));
            }
            (device.clone(), Request::Info)
        }
        Command::Get { args } => {
            let (device, names) = split(args);
            if names.is_empty() {
                return Err(missing(
                    device.as_deref(),
                    "get",
                    "NAME...",
                    "light.brightness",
                ));
            }
            for n in &names {
                id_or_name(n, "property", "SIID.PIID", "2.1")?;
            }
            (device, Request::Get(names))
        }
        Command::Set { args } => {
            let (device, items) = split(args);
            if items.is_empty() {
                return Err(missing(
                    device.as_deref(),
                    "set",
                    "NAME=VALUE...",
                    "light.brightness=40",
                ));
            }
            let pairs = items
                .iter()
                .map(|a| assignment(a))
                .collect::<Result<_, _>>()?;
            (device, Request::Set(pairs))
        }
        Command::Action { args } => {
            let (device, rest) = split(args);
            let Some((name, args)) = rest.split_first() else {
                return Err(missing(device.as_deref(), "action", "ACTION", "toggle"));
            };
            id_or_name(name, "action", "SIID.AIID", "5.1")?;
            (
                device,
                Request::Action {
                    name: name.trim().to_string(),
                    args: action_args(args)?,
                },
            )
        }
        Command::Raw { args } => {
            let (device, rest) = split(args);
            if rest.len() > 2 {
                return Err(Error::usage(format!(
                    "too many arguments for `raw`: expected METHOD [PARAMS_JSON], got {}; \
                     quote the JSON params as one argument",
                    rest.len()
                )));
            }
            let Some((method, params)) = rest.split_first() else {
                return Err(missing(device.as_deref(), "raw", "METHOD", "miIO.info"));
            };
            (device, raw(method, params.first().map(String::as_str))?)
        }
        _ => {
            return Err(Error::usage(
                "this command addresses no single device; it has its own planner",
            ))
        }
    })
}

/// The error for a command given a device but nothing to do with it.
fn missing(device: Option<&str>, cmd: &str, what: &str, example: &str) -> Error {
    match device {
        Some(d) => Error::usage(format!(
            "`{cmd}` needs {what} after the device, e.g. `mijia {cmd} {d} {example}`"
        )),
        None => Error::usage(format!("`{cmd}` needs {what}, e.g. `{example}`")),
    }
}

fn raw(method: &str, params: Option<&str>) -> Result<Request, Error> {
    let method = method.trim();
    if method.is_empty() {
        return Err(Error::usage(
            "empty METHOD: give a method name such as get_prop or miIO.info",
        ));
    }
    let params = match params {
        None => Value::Array(Vec::new()),
        Some(text) => {
            let v = json_arg("PARAMS_JSON", text, r#"'["power","bright"]'"#)?;
            if !(v.is_array() || v.is_object()) {
                return Err(Error::usage(format!(
                    "PARAMS_JSON must be a JSON array or object, got {text:?}; for example '[\"power\"]'"
                )));
            }
            v
        }
    };
    Ok(Request::Raw {
        method: method.to_owned(),
        params,
    })
}

/// Action arguments; one JSON array stands for the whole list
/// (`'["hello", 1]'`, the form of earlier versions).
fn action_args(args: &[String]) -> Result<Vec<String>, Error> {
    if let [one] = args {
        if one.trim_start().starts_with('[') {
            let Value::Array(items) = json_arg("ARGS_JSON", one, r#"'["hello", 1]'"#)? else {
                return Err(Error::usage(format!(
                    "{one:?} is not a JSON array; give the arguments one by one or as a JSON array"
                )));
            };
            return Ok(items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect());
        }
    }
    Ok(args.to_vec())
}

fn json_arg(name: &str, text: &str, example: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::usage(format!(
            "invalid {name} {text:?}: {e}; give valid JSON such as {example} (quote it for the shell)"
        ))
    })
}

/// A name (`light.brightness`) or a numeric id. Anything that starts with
/// a digit must be a well-formed id; names start with a letter.
fn id_or_name(text: &str, what: &str, form: &str, example: &str) -> Result<(), Error> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Error::usage(format!(
            "empty {what} name: give a name such as light.brightness or an id such as {example}"
        )));
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        pair(t, what, form, example)?;
    }
    Ok(())
}

/// `A.B` with two positive integers.
fn pair(text: &str, what: &str, form: &str, example: &str) -> Result<(u32, u32), Error> {
    let bad = |why: &str| {
        Error::usage(format!(
            "invalid {what} {text:?}: {why}; expected {form}, two positive numbers such as \
             {example}, or a name"
        ))
    };
    let (a, b) = text.trim().split_once('.').ok_or_else(|| bad("no '.'"))?;
    let num = |s: &str, part: &str| -> Result<u32, Error> {
        match s.parse::<u32>() {
            Ok(0) => Err(bad(&format!("{part} must not be 0"))),
            Ok(n) => Ok(n),
            Err(_) => Err(bad(&format!("{part} {s:?} is not a number"))),
        }
    };
    let part_a = &form[..form.find('.').unwrap_or(form.len())];
    let part_b = form.rsplit('.').next().unwrap_or(form);
    Ok((num(a, part_a)?, num(b, part_b)?))
}

/// `NAME=VALUE`; the value is parsed against the property later.
fn assignment(text: &str) -> Result<(String, String), Error> {
    let (prop, value) = text.split_once('=').ok_or_else(|| {
        Error::usage(format!(
            "invalid assignment {text:?}: expected NAME=VALUE such as light.brightness=40, or \
             SIID.PIID=VALUE such as 2.1=true"
        ))
    })?;
    id_or_name(prop, "property", "SIID.PIID", "2.1")?;
    if value.is_empty() {
        return Err(Error::usage(format!(
            "invalid assignment {text:?}: no value after '='; write light.on=on, 2.5=60 or \
             2.3='\"\"' for an empty string"
        )));
    }
    Ok((prop.trim().to_string(), value.to_string()))
}

/// A path argument, checked for emptiness.
pub(crate) fn path_arg(p: &std::path::Path, what: &str) -> Result<PathBuf, Error> {
    if p.as_os_str().is_empty() {
        return Err(Error::usage(format!("empty {what}: give a file path")));
    }
    Ok(p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<HomePlan, Error> {
        let home = std::env::temp_dir().join("mijia-plan-tests-no-such-home");
        std::env::set_var("MIJIA_HOME", &home);
        let mut all = vec![
            "mijia",
            "--ip",
            "127.0.0.1",
            "--token",
            "00112233445566778899aabbccddeeff",
        ];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).map_err(|e| Error::usage(e.to_string()))?;
        plan_home(&cli)
    }

    fn op_of(args: &[&str]) -> (Request, bool) {
        match parse(args).map(|p| p.work) {
            Ok(Work::Device { target, op }) => (op, target.detect),
            other => panic!("{other:?}"),
        }
    }

    fn usage(args: &[&str]) -> String {
        match parse(args) {
            Err(e) if e.exit_kind() == crate::ExitKind::Usage => e.to_string(),
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn numeric_ids_need_no_model_and_names_do() {
        assert_eq!(
            op_of(&["get", "2.1", "3.10"]),
            (Request::Get(vec!["2.1".into(), "3.10".into()]), false)
        );
        assert_eq!(
            op_of(&["get", "2.1", "light.on"]),
            (Request::Get(vec!["2.1".into(), "light.on".into()]), true)
        );
        let (op, detect) = op_of(&["set", "2.1=true", "2.4=\"x y\"", "2.5=-3"]);
        assert!(!detect);
        assert_eq!(
            op,
            Request::Set(vec![
                ("2.1".into(), "true".into()),
                ("2.4".into(), "\"x y\"".into()),
                ("2.5".into(), "-3".into())
            ])
        );
        let (op, detect) = op_of(&["action", "5.1", "[\"hi\", 2]"]);
        assert!(!detect);
        assert_eq!(
            op,
            Request::Action {
                name: "5.1".into(),
                args: vec!["hi".into(), "2".into()]
            }
        );
        assert!(op_of(&["status"]).1);
        assert!(!op_of(&["info"]).1);
        let p = parse(&["--timeout", "0.25", "raw", "get_prop", "[\"power\"]"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.config.timeout, Duration::from_millis(250));
        assert_eq!(p.config.handshake_timeout, Duration::from_millis(250));
    }

    #[test]
    fn a_model_checks_names_and_values_before_io() {
        let m = ["--model", "yeelink.light.color1"];
        fn with<'a>(m: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
            let mut a = m.to_vec();
            a.extend_from_slice(rest);
            a
        }
        assert!(!op_of(&with(&m, &["set", "light.brightness=40"])).1);
        let e = usage(&with(&m, &["set", "light.brightness=500"]));
        assert!(e.contains("between 1 and 100"), "{e}");
        let e = usage(&with(&m, &["get", "light.brigthness"]));
        assert!(e.contains("light.brightness"), "{e}");
        let e = usage(&["--model", "nodots", "info"]);
        assert!(e.contains("--model"), "{e}");
    }

    #[test]
    fn bad_input_is_a_usage_error_naming_the_problem() {
        assert!(usage(&["get", "2"]).contains("expected SIID.PIID"));
        assert!(usage(&["get", "2.x"]).contains("\"x\" is not a number"));
        assert!(usage(&["get", "0.1"]).contains("must not be 0"));
        assert!(usage(&["set", "2.1"]).contains("SIID.PIID=VALUE"));
        assert!(usage(&["set", "2.1="]).contains("no value"));
        assert!(usage(&["raw", "get_prop", "[\"power\""]).contains("line 1 column"));
        assert!(usage(&["raw", "get_prop", "5"]).contains("array or object"));
        assert!(usage(&["action", "5", "[]"]).contains("SIID.AIID"));
        assert!(usage(&["action", "5.1", "[1,"]).contains("ARGS_JSON"));
        assert!(usage(&["--timeout", "0", "info"]).contains("--timeout"));
        assert!(usage(&["--timeout", "NaN", "info"]).contains("--timeout"));
        assert!(usage(&["info", "lamp"]).contains("takes no DEVICE"));
        let cli = Cli::try_parse_from(["mijia", "--ip", "127.0.0.1", "--token", "0011", "info"]);
        let m = cli
            .map_err(|e| e.to_string())
            .and_then(|c| plan_home(&c).map_err(|e| e.to_string()));
        assert_eq!(
            m.err().as_deref(),
            Some("invalid token: a token is 32 hex characters, got 4")
        );
        let cli = Cli::try_parse_from([
            "mijia",
            "--ip",
            "nope",
            "--token",
            "00112233445566778899aabbccddeeff",
            "info",
        ]);
        let m = cli
            .map_err(|e| e.to_string())
            .and_then(|c| plan_home(&c).map_err(|e| e.to_string()));
        assert!(m.err().is_some_and(|m| m.contains("invalid --ip")));
    }
}
