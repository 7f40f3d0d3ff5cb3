//! `mijia discover`: find devices by broadcast hello, unicast sweep and
//! mDNS, merged by did; optionally add them to the registry.
//!
//! **Methods.** `--broadcast [ADDR]` (255.255.255.255 when no address is
//! given), `--sweep CIDR` (at most a /16) and `--mdns` (with
//! `--mdns-interface ADDR` to use one interface only). With none of the
//! three, discover does what suits a home network: broadcast to
//! 255.255.255.255 and mDNS on the default interface.
//!
//! **Timing.** The global `--timeout` is the total time (default 5 s):
//! broadcast and mDNS listen that long; a sweep alone ends on its own
//! schedule (about 0.65 s for a /24, see
//! [`crate::transport::discovery`]); `miIO.info` calls on devices with a
//! known token run meanwhile, 16 at a time, and are cut off at the end.
//!
//! **Output.** One line per device on stdout as soon as it is settled
//! (found, and its `miIO.info` answered or failed), and another when more
//! is learnt later (a second source, say). With `--json` each line is one
//! JSON object with the device's whole record; the last line for a did
//! wins. When stdout is a terminal a table of every device follows at the
//! end; a spinner shows progress on stderr when stderr is a terminal.
//!
//! **Tokens.** A token that an unprovisioned device reveals in its hello
//! reply is printed in full: learning it is the point of discovering such
//! a device. Tokens from the registry or `--token` are never printed.
//! `--token HEX` is tried (`miIO.info`) on every device without a token.
//!
//! **`--add`.** Devices with a working or revealed token and not in the
//! registry are added (did, model, address, token); the name is asked on
//! stderr and read from stdin, unless `--yes` picks `<kind>-<did>` (for
//! example `light-123456789`). Registered devices whose address changed
//! get the new address. Devices without a token are listed as needing one.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use comfy_table::{presets, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mijia_proto::miio::{Token, DEFAULT_PORT};
use serde_json::{json, Value};

use super::args::GlobalArgs;
use super::ids::HomeIdStore;
use super::output;
use crate::home::registry::validate_name;
use crate::home::{unix_now, DeviceEntry, HomeError, Paths, Registry};
use crate::transport::discovery::{
    self, Cidr, DiscoverOptions, Discovered, DiscoveryError, Event, InfoState, KnownDevice,
    MdnsOptions, SweepTiming, TokenSource, HOME_BROADCAST,
};
use crate::transport::IdStore;
use crate::Error;

/// Longest accepted `--timeout` for discovery.
const MAX_TIMEOUT_SECS: f64 = 600.0;
/// Largest `--concurrency`.
const MAX_CONCURRENCY: usize = 1024;

/// `mijia discover` options.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    mijia discover                              broadcast 255.255.255.255 + mDNS\n  \
    mijia discover --sweep 192.168.1.0/24       ask every address of the block\n  \
    mijia discover --broadcast 192.168.1.255 --mdns --timeout 3\n  \
    mijia discover --sweep 192.168.1.0/24 --add --yes\n\n\
    The global --timeout is the total time (default 5 s); a sweep alone ends as soon\n\
    as its rounds are done (about 0.65 s for a /24; give a /16 --timeout 10). A token revealed by an unprovisioned device is printed in\n\
    full; tokens from the registry or --token never are.")]
pub struct DiscoverArgs {
    /// Broadcast the hello to ADDR (255.255.255.255 if no ADDR is given).
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = "255.255.255.255"
    )]
    pub broadcast: Option<String>,

    /// Send the hello to every address of an IPv4 block, e.g. 192.168.1.0/24 (at most a /16).
    #[arg(long, value_name = "CIDR")]
    pub sweep: Option<String>,

    /// Browse mDNS for `_miio._udp.local.`; the model and did come from the instance name.
    #[arg(long)]
    pub mdns: bool,

    /// Browse mDNS only on the interface with this IPv4 address (implies --mdns).
    #[arg(long, value_name = "ADDR")]
    pub mdns_interface: Option<String>,

    /// Sweep hellos sent back to back before a 2 ms pause.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub concurrency: usize,

    /// Add found devices with a known or revealed token to the registry.
    #[arg(long)]
    pub add: bool,

    /// With --add: name devices automatically (`<kind>-<did>`) instead of asking.
    #[arg(long, requires = "add")]
    pub yes: bool,
}

/// A validated `discover` command.
#[derive(Debug, Clone)]
pub struct DiscoverPlan {
    /// What to probe.
    pub options: DiscoverOptions,
    /// JSON lines instead of text.
    pub json: bool,
    /// Add to the registry.
    pub add: bool,
    /// Automatic names.
    pub yes: bool,
}

fn ipv4(flag: &str, text: &str, example: &str) -> Result<Ipv4Addr, Error> {
    text.trim().parse().map_err(|_| {
        Error::usage(format!(
            "invalid {flag} {text:?}: expected an IPv4 address such as {example}"
        ))
    })
}

/// Check the arguments before any network IO.
pub fn plan(args: &DiscoverArgs, g: &GlobalArgs) -> Result<DiscoverPlan, Error> {
    if !g.timeout.is_finite() || g.timeout <= 0.0 || g.timeout > MAX_TIMEOUT_SECS {
        return Err(Error::usage(format!(
            "invalid --timeout {}: give the total seconds discovery may take, more than 0 and at most {MAX_TIMEOUT_SECS}",
            g.timeout
        )));
    }
    if g.port == 0 {
        return Err(Error::usage(
            "invalid --port 0: give the devices' UDP port (54321 on real devices)",
        ));
    }
    if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
        return Err(Error::usage(format!(
            "invalid --concurrency {}: give 1 to {MAX_CONCURRENCY} hellos per burst",
            args.concurrency
        )));
    }
    let broadcast = match &args.broadcast {
        Some(a) => Some(ipv4("--broadcast", a, "192.168.1.255")?),
        None => None,
    };
    let sweep = match &args.sweep {
        Some(s) => Some(
            s.parse::<Cidr>()
                .map_err(|e| Error::usage(format!("invalid --sweep {s:?}: {e}")))?,
        ),
        None => None,
    };
    let mdns = match &args.mdns_interface {
        Some(i) => Some(MdnsOptions {
            interface: Some(ipv4("--mdns-interface", i, "192.168.1.10 or 127.0.0.1")?),
        }),
        None => args.mdns.then(MdnsOptions::default),
    };
    let tokens = match g.token.as_deref() {
        Some(t) => vec![t
            .parse::<Token>()
            .map_err(|e| Error::usage(format!("invalid token: {e}")))?],
        None => Vec::new(),
    };
    let mut options = DiscoverOptions {
        broadcast,
        sweep,
        mdns,
        port: g.port,
        timeout: Duration::from_secs_f64(g.timeout),
        sweep_timing: SweepTiming {
            burst: args.concurrency,
            ..SweepTiming::default()
        },
        tokens,
        ..DiscoverOptions::default()
    };
    if options.broadcast.is_none() && options.sweep.is_none() && options.mdns.is_none() {
        options.broadcast = Some(HOME_BROADCAST);
        options.mdns = Some(MdnsOptions::default());
    }
    Ok(DiscoverPlan {
        options,
        json: g.json,
        add: args.add,
        yes: args.yes,
    })
}

/// The registry, if there is one to read. Without `--add` a missing home
/// or an unreadable registry only costs the names, so it is a warning.
fn load_registry(add: bool) -> Result<(Option<Paths>, Registry), Error> {
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) if !add => {
            tracing::warn!("registry names and tokens not used: {e}");
            return Ok((None, Registry::new()));
        }
        Err(e) => return Err(e.into()),
    };
    match Registry::load(&paths) {
        Ok(r) => Ok((Some(paths), r)),
        Err(e) if !add => {
            tracing::warn!("registry names and tokens not used: {e}");
            Ok((Some(paths), Registry::new()))
        }
        Err(e) => Err(e.into()),
    }
}

fn known(reg: &Registry) -> Vec<KnownDevice> {
    reg.devices()
        .iter()
        .map(|d| KnownDevice {
            name: d.name.clone(),
            did: d.did,
            ip: d.ip,
            model: d.model.clone(),
            token: d.token,
        })
        .collect()
}

/// Run the discovery, print, and add if asked.
pub async fn execute(plan: DiscoverPlan) -> Result<(), Error> {
    let (paths, registry) = load_registry(plan.add)?;
    let ids = HomeIdStore::from_env().map(|s| Arc::new(s) as Arc<dyn IdStore>);
    let started = Instant::now();
    let progress = Progress::new();
    let mut printer = Printer::new(plan.json);
    let mut devices = discovery::discover(&plan.options, known(&registry), ids, |ev| {
        if let Event::Found(_) = ev {
            printer.found += 1;
        }
        progress.update(printer.found);
        if let Some(line) = printer.line(ev) {
            progress.suspend(|| output::emit(&line).is_ok());
        }
    })
    .await
    .map_err(|e| match e {
        DiscoveryError::NothingToDo => Error::usage(e.to_string()),
        DiscoveryError::Socket {
            method,
            source,
            hint,
        } => Error::Io {
            context: format!("cannot set up {method}{hint}"),
            source,
        },
    })?;
    progress.finish();
    // Lines came in the order found; the table and --add go by address.
    devices.sort_by_key(|d| (d.addr.ip(), d.addr.port(), d.did));
    if !plan.json && std::io::stdout().is_terminal() && !devices.is_empty() {
        output::emit(&table(&devices))?;
    }
    if !plan.json {
        eprintln!("{}", summary(&devices, started.elapsed()));
    }
    if plan.add {
        let paths =
            paths.ok_or_else(|| Error::Config("no home directory for the registry".into()))?;
        add(&paths, &registry, &devices, plan.yes)?;
    }
    Ok(())
}

/// The spinner on stderr, only when stderr is a terminal.
struct Progress(Option<ProgressBar>);

impl Progress {
    fn new() -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} discovering… {msg} ({elapsed})")
        {
            pb.set_style(style);
        }
        pb.set_message("0 found");
        pb.enable_steady_tick(Duration::from_millis(100));
        Progress(Some(pb))
    }

    fn update(&self, found: usize) {
        if let Some(pb) = &self.0 {
            pb.set_message(format!("{found} found"));
        }
    }

    fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.0 {
            Some(pb) => pb.suspend(f),
            None => f(),
        }
    }

    fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

/// Decides which events make a line, and renders them.
struct Printer {
    json: bool,
    found: usize,
    /// The last line printed per did (to skip repeats).
    printed: std::collections::HashMap<u64, String>,
}

impl Printer {
    fn new(json: bool) -> Printer {
        Printer {
            json,
            found: 0,
            printed: std::collections::HashMap::new(),
        }
    }

    fn line(&mut self, ev: Event<'_>) -> Option<String> {
        let d = ev.device();
        if !d.is_settled() {
            return None;
        }
        let body = if self.json {
            record(d).to_string()
        } else {
            text(d)
        };
        let previous = self.printed.insert(d.did, body.clone());
        match previous {
            Some(p) if p == body => None,
            Some(_) if !self.json => Some(format!("update {body}\n")),
            None if !self.json => Some(format!("found  {body}\n")),
            _ => Some(format!("{body}\n")),
        }
    }
}

fn sources(d: &Discovered) -> String {
    d.sources
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn info_text(i: &InfoState) -> String {
    match i {
        InfoState::NotTried => "not tried".into(),
        InfoState::Pending => "pending".into(),
        InfoState::Done { .. } => "ok".into(),
        InfoState::Failed(e) => format!("failed: {e}"),
    }
}

/// One device as a text line (without the `found`/`update` prefix).
fn text(d: &Discovered) -> String {
    let mut s = format!("{}  did {}", d.addr, d.did);
    match (&d.model, d.model_source) {
        (Some(m), Some(src)) => s.push_str(&format!("  model {m} ({})", src.as_str())),
        _ => s.push_str("  model ?"),
    }
    s.push_str(&format!("  via {}", sources(d)));
    if let Some(n) = &d.name {
        s.push_str(&format!("  name {n:?}"));
    }
    match (d.revealed_token(), d.token_source) {
        (Some(t), _) => s.push_str(&format!("  token {} (revealed)", t.reveal())),
        (None, Some(src)) => s.push_str(&format!("  token known ({})", src.as_str())),
        (None, None) => s.push_str("  needs token"),
    }
    if let InfoState::Failed(e) = &d.info {
        s.push_str(&format!("  (miIO.info failed: {e})"));
    }
    s
}

/// One device as a JSON object.
fn record(d: &Discovered) -> Value {
    let firmware = match &d.info {
        InfoState::Done { firmware, .. } => firmware.clone(),
        _ => None,
    };
    json!({
        "did": d.did.to_string(),
        "addr": d.addr.to_string(),
        "ip": d.addr.ip().to_string(),
        "port": d.addr.port(),
        "sources": d.sources.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "model": d.model,
        "model_source": d.model_source.map(|s| s.as_str()),
        "name": d.name,
        "token": d.revealed_token().map(|t| t.reveal()),
        "token_source": d.token_source.map(|s| s.as_str()),
        "info": info_text(&d.info),
        "firmware": firmware,
        "first_seen_ms": u64::try_from(d.first_seen.as_millis()).unwrap_or(u64::MAX),
    })
}

fn table(devices: &[Discovered]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["address", "did", "model", "name", "token", "found by"]);
    for d in devices {
        let token = match (d.revealed_token(), d.token_source) {
            (Some(t), _) => format!("{} (revealed)", t.reveal()),
            (None, Some(src)) => format!("known ({})", src.as_str()),
            (None, None) => "needs token".into(),
        };
        t.add_row(vec![
            d.addr.to_string(),
            d.did.to_string(),
            d.model.clone().unwrap_or_else(|| "?".into()),
            d.name.clone().unwrap_or_else(|| "-".into()),
            token,
            sources(d),
        ]);
    }
    format!("{t}\n")
}

fn summary(devices: &[Discovered], took: Duration) -> String {
    if devices.is_empty() {
        return format!(
            "no devices found in {:.1} s; try --sweep with your network's block (e.g. 192.168.1.0/24) or a longer --timeout",
            took.as_secs_f64()
        );
    }
    let needs = devices.iter().filter(|d| d.token.is_none()).count();
    let mut s = format!(
        "{} device(s) found in {:.1} s",
        devices.len(),
        took.as_secs_f64()
    );
    if needs > 0 {
        s.push_str(&format!("; {needs} need a token"));
    }
    s
}

/// `<kind>-<did>`: the middle part of the model (`light` for
/// `yeelink.light.color1`), or `device`.
pub fn auto_name(model: Option<&str>, did: u64) -> String {
    let kind: String = model
        .and_then(|m| m.split('.').nth(1))
        .unwrap_or("device")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let kind = if kind.starts_with(|c: char| c.is_ascii_alphabetic()) {
        kind
    } else {
        "device".to_string()
    };
    format!("{kind}-{did}")
}

fn name_taken(reg: &Registry, chosen: &HashSet<String>, name: &str) -> bool {
    reg.get(name).is_ok() || chosen.contains(&name.to_lowercase())
}

fn unique(reg: &Registry, chosen: &HashSet<String>, base: String) -> String {
    if !name_taken(reg, chosen, &base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|n| !name_taken(reg, chosen, n))
        .unwrap_or(base)
}

/// Ask for a name on stderr, read it from stdin. Empty keeps `default`,
/// `-` skips the device.
fn ask(
    d: &Discovered,
    default: &str,
    reg: &Registry,
    chosen: &HashSet<String>,
    input: &mut impl BufRead,
) -> Result<Option<String>, Error> {
    for _ in 0..3 {
        eprint!(
            "Name for {} ({}, did {}) [{default}] (- to skip): ",
            d.addr.ip(),
            d.model.as_deref().unwrap_or("unknown model"),
            d.did
        );
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let n = input.read_line(&mut line).map_err(|source| Error::Io {
            context: "cannot read a name from standard input".into(),
            source,
        })?;
        if n == 0 {
            return Err(Error::usage(
                "no name given: standard input is closed; pass --yes to name devices automatically",
            ));
        }
        let name = line.trim();
        if name == "-" {
            return Ok(None);
        }
        let name = if name.is_empty() { default } else { name };
        if let Err(e) = validate_name("device", name) {
            eprintln!("{e}");
            continue;
        }
        if name_taken(reg, chosen, name) {
            eprintln!("a device named {name:?} already exists; choose another name");
            continue;
        }
        return Ok(Some(name.to_string()));
    }
    Err(Error::usage(format!(
        "no usable name for did {} after 3 tries",
        d.did
    )))
}

/// `--add`: new devices with a token are added, moved ones get their new
/// address, the rest are listed.
fn add(paths: &Paths, reg: &Registry, devices: &[Discovered], yes: bool) -> Result<(), Error> {
    let mut chosen = HashSet::new();
    let mut new = Vec::new();
    let mut moved = Vec::new();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    for d in devices {
        if let Some(entry) = reg.find_by_did(d.did) {
            if entry.addr() != d.addr {
                moved.push((entry.name.clone(), d.addr));
            } else {
                eprintln!("already registered: {} as {:?}", d.addr, entry.name);
            }
            continue;
        }
        let Some(token) = d.token else {
            eprintln!(
                "needs token, not added: {} did {} ({})",
                d.addr,
                d.did,
                d.model.as_deref().unwrap_or("unknown model")
            );
            continue;
        };
        if d.token_source == Some(TokenSource::Registry) {
            // A registry entry without a did at this address: already there.
            eprintln!(
                "already registered: {} as {:?}",
                d.addr,
                d.name.as_deref().unwrap_or("?")
            );
            continue;
        }
        let default = unique(reg, &chosen, auto_name(d.model.as_deref(), d.did));
        let name = if yes {
            default
        } else {
            match ask(d, &default, reg, &chosen, &mut input)? {
                Some(n) => n,
                None => continue,
            }
        };
        chosen.insert(name.to_lowercase());
        let mut e = DeviceEntry::new(name, d.addr.ip(), token);
        e.did = Some(d.did);
        e.model = d.model.clone();
        e.port = (d.addr.port() != DEFAULT_PORT).then_some(d.addr.port());
        e.added = Some(unix_now());
        new.push(e);
    }
    if new.is_empty() && moved.is_empty() {
        eprintln!("nothing to add to the registry");
        return Ok(());
    }
    let report: Vec<String> = Registry::update(paths, |r| {
        let mut lines = Vec::new();
        for (name, addr) in &moved {
            let e = r.get_mut(name)?;
            e.ip = addr.ip();
            e.port = (addr.port() != DEFAULT_PORT).then_some(addr.port());
            lines.push(format!("updated {name:?}: now at {addr}"));
        }
        for e in &new {
            r.add(e.clone())?;
            lines.push(format!(
                "added {:?}: {} did {}",
                e.name,
                e.addr(),
                e.did.unwrap_or(0)
            ));
        }
        Ok::<_, HomeError>(lines)
    })?;
    for l in report {
        eprintln!("{l}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<DiscoverPlan, Error> {
        let mut all = vec!["mijia"];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).map_err(|e| Error::usage(e.to_string()))?;
        match &cli.command {
            Command::Discover(a) => plan(a, &cli.global),
            other => panic!("not discover: {other:?}"),
        }
    }

    fn usage(args: &[&str]) -> String {
        match parse(args) {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn plans() {
        let p = parse(&["discover"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.options.broadcast, Some(Ipv4Addr::BROADCAST));
        assert_eq!(p.options.mdns, Some(MdnsOptions::default()));
        assert_eq!(p.options.sweep, None);
        let p = parse(&[
            "discover",
            "--broadcast",
            "127.255.255.255",
            "--sweep",
            "127.62.0.0/24",
            "--timeout",
            "1.5",
            "--json",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.options.broadcast, Some(Ipv4Addr::new(127, 255, 255, 255)));
        assert_eq!(
            p.options.sweep.map(|c| c.to_string()).as_deref(),
            Some("127.62.0.0/24")
        );
        assert_eq!(p.options.mdns, None);
        assert_eq!(p.options.timeout, Duration::from_millis(1500));
        assert!(p.json);
        let p =
            parse(&["discover", "--mdns-interface", "127.0.0.1"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.options.broadcast, None);
        assert_eq!(
            p.options.mdns.and_then(|m| m.interface),
            Some(Ipv4Addr::LOCALHOST)
        );
        let p = parse(&["discover", "--broadcast", "--sweep", "10.0.0.0/30"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.options.broadcast, Some(Ipv4Addr::BROADCAST));
    }

    #[test]
    fn bad_arguments() {
        assert!(usage(&["discover", "--sweep", "10.0.0.0/8"]).contains("at most a /16"));
        assert!(usage(&["discover", "--sweep", "10.0.0.0"]).contains("192.168.1.0/24"));
        assert!(usage(&["discover", "--broadcast", "nope"]).contains("invalid --broadcast"));
        assert!(usage(&["discover", "--timeout", "0"]).contains("--timeout"));
        assert!(usage(&["discover", "--concurrency", "0"]).contains("--concurrency"));
        assert!(usage(&["discover", "--token", "00", "--mdns"]).contains("invalid token"));
        assert!(parse(&["discover", "--yes"]).is_err());
    }

    #[test]
    fn auto_names() {
        assert_eq!(auto_name(Some("yeelink.light.color1"), 5), "light-5");
        assert_eq!(auto_name(Some("chuangmi.plug.212a01"), 6), "plug-6");
        assert_eq!(auto_name(Some("odd"), 7), "device-7");
        assert_eq!(auto_name(Some("a.1x.b"), 8), "device-8");
        assert_eq!(auto_name(None, 9), "device-9");
        assert!(validate_name("device", &auto_name(Some("x.li ght.y"), 1)).is_ok());
    }
}
