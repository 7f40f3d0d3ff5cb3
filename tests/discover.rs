//! `mijia discover` against simulated fleets: sweep, loopback broadcast,
//! mDNS, merging by did, `--add`, and tokens revealed by unprovisioned
//! devices.
//!
//! Network safety: these tests sweep only their own `127.62.<net>.0/24`
//! blocks, broadcast only to 127.255.255.255 on a port no other test
//! uses, and browse mDNS only inside a network namespace they create
//! (`unshare -n`). If the namespace cannot be made the mDNS test fails; it
//! never falls back to the host's network.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fake_device::mdns::AnnounceOptions;
use fake_device::{DeviceConfig, Fleet, FleetConfig, FleetOptions};
use mijia::home::{DeviceEntry, Paths, Registry};
use mijia_proto::miio::Token;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::common::{run_in, Run};

/// Models whose names have no `-`, so the mDNS hint is exact.
const MODELS: [&str; 3] = [
    "yeelink.light.color1",
    "chuangmi.plug.212a01",
    "zhimi.airpurifier.mb3",
];

fn ip(net: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 62, net, host)
}

/// A device on `127.62.<net>.<host>:port` with a token derived from its name.
fn device(net: u8, host: u8, port: u16) -> DeviceConfig {
    let name = format!("d{net}-{host}");
    let did = 200_000_000 + u64::from(net) * 1000 + u64::from(host);
    let model = MODELS[usize::from(host) % MODELS.len()];
    let mut d = DeviceConfig::new(
        name.clone(),
        model,
        did,
        SocketAddr::new(IpAddr::V4(ip(net, host)), port),
    );
    d.token = Some(Token::from_bytes(mijia_proto::miio::crypto::md5(
        name.as_bytes(),
    )));
    d
}

async fn fleet(devices: Vec<DeviceConfig>, options: FleetOptions) -> Fleet {
    Fleet::start_with(FleetConfig { devices }, options)
        .await
        .unwrap_or_else(|e| panic!("fleet starts: {e}"))
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"))
}

/// The JSON lines of a run, the last one per did.
fn records(run: &Run) -> BTreeMap<u64, Value> {
    let mut out = BTreeMap::new();
    for line in run.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{run:#?}"));
        let did = v["did"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("no did in {line}"));
        out.insert(did, v);
    }
    out
}

fn sources(v: &Value) -> BTreeSet<String> {
    v["sources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn registry(home: &Path) -> Registry {
    Registry::load(&Paths::at(home)).unwrap_or_else(|e| panic!("registry: {e}"))
}

#[tokio::test]
async fn sweep_finds_every_device_of_the_block() {
    let devs: Vec<_> = (1..=6).map(|h| device(1, h * 40, 54321)).collect();
    let fleet = fleet(devs.clone(), FleetOptions::default()).await;
    let home = home();
    let t = Instant::now();
    let run = run_in(
        home.path(),
        &["discover", "--sweep", "127.62.1.0/24", "--json"],
    )
    .await;
    let took = t.elapsed();
    run.expect_code(0);
    let found = records(&run);
    assert_eq!(found.len(), devs.len(), "{run:#?}");
    for d in &devs {
        let r = &found[&d.did];
        assert_eq!(r["addr"], d.addr.to_string());
        assert_eq!(sources(r), BTreeSet::from(["sweep".to_string()]));
        assert_eq!(r["token"], Value::Null);
        assert_eq!(r["info"], "not tried");
    }
    // A sweep alone ends on its own schedule, well before --timeout (5 s).
    assert!(took < Duration::from_secs(2), "sweep took {took:?}");
    // Text output: one line per device, "needs token" for each.
    let run = run_in(home.path(), &["discover", "--sweep", "127.62.1.0/24"]).await;
    run.expect_code(0);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("found "))
            .count(),
        6
    );
    assert_eq!(run.stdout.matches("needs token").count(), 6, "{run:#?}");
    assert!(run.stderr.contains("6 device(s) found"), "{run:#?}");
    drop(fleet);
}

#[tokio::test]
async fn loopback_broadcast_gets_replies_from_each_device_address() {
    const PORT: u16 = 54_611;
    let devs: Vec<_> = (1..=5).map(|h| device(2, h, PORT)).collect();
    let fleet = fleet(devs.clone(), FleetOptions::default()).await;
    // A second fleet on the same port cannot own the broadcast listener;
    // it still starts.
    let other = Fleet::start_with(
        FleetConfig {
            devices: vec![device(2, 200, PORT)],
        },
        FleetOptions::default(),
    )
    .await;
    assert!(other.is_ok(), "a second fleet on the same port starts");
    let home = home();
    let run = run_in(
        home.path(),
        &[
            "--port",
            "54611",
            "--timeout",
            "1",
            "discover",
            "--broadcast",
            "127.255.255.255",
            "--json",
        ],
    )
    .await;
    run.expect_code(0);
    let found = records(&run);
    for d in &devs {
        let r = found
            .get(&d.did)
            .unwrap_or_else(|| panic!("{} not found: {run:#?}", d.name));
        // The reply comes from the device's own address.
        assert_eq!(r["addr"], d.addr.to_string());
        assert_eq!(sources(r), BTreeSet::from(["broadcast".to_string()]));
    }
    drop(fleet);
}

#[tokio::test]
async fn sources_merge_by_did_with_registry_names_and_info() {
    const PORT: u16 = 54_612;
    let devs: Vec<_> = (1..=4).map(|h| device(3, h, PORT)).collect();
    let fleet = fleet(devs.clone(), FleetOptions::default()).await;
    let home = home();
    // The registry knows one of them (with a stale model): its name shows,
    // and miIO.info with its token gives the real model.
    let known = &devs[1];
    let mut e = DeviceEntry::new("Desk lamp", known.addr.ip(), known.effective_token());
    e.did = Some(known.did);
    e.port = Some(PORT);
    e.model = Some("old.model.v0".into());
    Registry::update(&Paths::at(home.path()), |r| r.add(e))
        .unwrap_or_else(|err| panic!("registry: {err}"));
    let run = run_in(
        home.path(),
        &[
            "--port",
            "54612",
            "--timeout",
            "1.5",
            "discover",
            "--broadcast",
            "127.255.255.255",
            "--sweep",
            "127.62.3.0/24",
            "--json",
        ],
    )
    .await;
    run.expect_code(0);
    let found = records(&run);
    assert_eq!(found.len(), devs.len(), "{run:#?}");
    for d in &devs {
        let r = &found[&d.did];
        assert_eq!(
            sources(r),
            BTreeSet::from(["broadcast".to_string(), "sweep".to_string()]),
            "{r}"
        );
    }
    let r = &found[&known.did];
    assert_eq!(r["name"], "Desk lamp");
    assert_eq!(r["model"], known.model.as_str());
    assert_eq!(r["model_source"], "info");
    assert_eq!(r["token_source"], "registry");
    assert_eq!(r["token"], Value::Null, "registry tokens are never printed");
    drop(fleet);
}

#[tokio::test]
async fn unprovisioned_device_reveals_its_token() {
    let mut open = device(4, 7, 54321);
    open.unprovisioned = true;
    let token = open.effective_token();
    let fleet = fleet(
        vec![open.clone(), device(4, 8, 54321)],
        FleetOptions::default(),
    )
    .await;
    let home = home();
    let run = run_in(
        home.path(),
        &["discover", "--sweep", "127.62.4.0/28", "--json"],
    )
    .await;
    run.expect_code(0);
    let found = records(&run);
    let r = &found[&open.did];
    assert_eq!(r["token"], token.reveal());
    assert_eq!(r["token_source"], "revealed");
    // The revealed token works: miIO.info gave the model.
    assert_eq!(r["model"], open.model.as_str());
    assert_eq!(r["model_source"], "info");
    let other = &found[&(open.did + 1)];
    assert_eq!(other["token"], Value::Null);
    // Text output prints it too, marked as revealed.
    let run = run_in(home.path(), &["discover", "--sweep", "127.62.4.0/28"]).await;
    run.expect_code(0);
    assert!(
        run.stdout
            .contains(&format!("token {} (revealed)", token.reveal())),
        "{run:#?}"
    );
    drop(fleet);
}

#[tokio::test]
async fn a_given_token_is_matched_to_its_device() {
    let devs = vec![device(5, 1, 54321), device(5, 2, 54321)];
    let fleet = fleet(devs.clone(), FleetOptions::default()).await;
    let home = home();
    let token = devs[1].effective_token().reveal();
    let run = run_in(
        home.path(),
        &[
            "--token",
            &token,
            "--timeout",
            "3",
            "discover",
            "--sweep",
            "127.62.5.0/29",
            "--json",
        ],
    )
    .await;
    run.expect_code(0);
    let found = records(&run);
    let r = &found[&devs[1].did];
    assert_eq!(r["token_source"], "given");
    assert_eq!(r["model_source"], "info");
    assert_eq!(r["token"], Value::Null, "a given token is not printed");
    let r = &found[&devs[0].did];
    assert_eq!(r["token_source"], Value::Null);
    assert!(
        r["info"].as_str().is_some_and(|s| s.starts_with("failed")),
        "{r}"
    );
    assert!(!run.stdout.contains(&token));
    drop(fleet);
}

/// Run the binary with `stdin` fed in.
async fn run_with_stdin(home: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mijia"))
        .args(args)
        .env("MIJIA_HOME", home)
        .env_remove("MIJIA_IP")
        .env_remove("MIJIA_TOKEN")
        .env_remove("MIJIA_PORT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run mijia: {e}"));
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("stdin: {e}"));
    }
    let out = child
        .wait_with_output()
        .await
        .unwrap_or_else(|e| panic!("mijia: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn add_puts_devices_with_a_token_in_the_registry() {
    let mut fresh = device(6, 1, 54321);
    fresh.unprovisioned = true;
    let locked = device(6, 2, 54321);
    let moved = device(6, 3, 54321);
    let mut named = device(6, 4, 54321);
    named.unprovisioned = true;
    let fleet = fleet(
        vec![fresh.clone(), locked.clone(), moved.clone(), named.clone()],
        FleetOptions::default(),
    )
    .await;
    let home = home();
    let paths = Paths::at(home.path());
    // `moved` is registered at an old address.
    let mut e = DeviceEntry::new("Hall plug", IpAddr::V4(ip(6, 99)), moved.effective_token());
    e.did = Some(moved.did);
    Registry::update(&paths, |r| r.add(e)).unwrap_or_else(|err| panic!("registry: {err}"));

    // Without --yes the names are asked for: the first one typed, the
    // second one skipped with "-".
    let run = run_with_stdin(
        home.path(),
        &["discover", "--sweep", "127.62.6.0/29", "--add"],
        "Porch light\n-\n",
    )
    .await;
    run.expect_code(0);
    assert!(run.stderr.contains("Name for 127.62.6.1"), "{run:#?}");
    assert!(run.stderr.contains("needs token, not added"), "{run:#?}");
    let reg = registry(home.path());
    let porch = reg.get("Porch light").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(porch.did, Some(fresh.did));
    assert_eq!(porch.ip, fresh.addr.ip());
    assert_eq!(porch.token, fresh.effective_token());
    assert_eq!(porch.model.as_deref(), Some(fresh.model.as_str()));
    assert!(reg.find_by_did(named.did).is_none(), "skipped with -");
    assert!(reg.find_by_did(locked.did).is_none(), "no token, not added");
    let hall = reg.get("Hall plug").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        hall.ip,
        moved.addr.ip(),
        "a moved device gets its new address"
    );

    // With --yes: automatic names, no questions; stdin closed is fine.
    let run = run_in(
        home.path(),
        &["discover", "--sweep", "127.62.6.0/29", "--add", "--yes"],
    )
    .await;
    run.expect_code(0);
    let reg = registry(home.path());
    let auto = format!(
        "{}-{}",
        named.model.split('.').nth(1).unwrap_or("device"),
        named.did
    );
    let entry = reg.get(&auto).unwrap_or_else(|e| panic!("{e}: {run:#?}"));
    assert_eq!(entry.did, Some(named.did));
    assert_eq!(reg.len(), 3, "Porch light, Hall plug and {auto}");
    assert!(run.stderr.contains("already registered"), "{run:#?}");

    // Without --yes and with stdin closed, asking fails with a hint.
    let mut extra = device(6, 5, 54321);
    extra.unprovisioned = true;
    let more = Fleet::start_with(
        FleetConfig {
            devices: vec![extra],
        },
        FleetOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let run = run_in(
        home.path(),
        &["discover", "--sweep", "127.62.6.0/29", "--add"],
    )
    .await;
    run.expect_code(2);
    assert!(run.stderr.contains("pass --yes"), "{run:#?}");
    drop((fleet, more));
}

/// The half of the mDNS test that runs inside the namespace.
const NETNS_ENV: &str = "MIJIA_TEST_INSIDE_NETNS";

/// The interfaces of this process's network namespace.
fn interfaces() -> Vec<String> {
    std::fs::read_to_string("/proc/self/net/dev")
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|s| s.trim().to_string()))
        .collect()
}

#[tokio::test]
async fn mdns_in_a_private_network_namespace() {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("test binary path: {e}"));
    // Inside a fresh namespace: bring lo up with multicast and a route for
    // 224.0.0.0/4, then run the inner test there.
    let script = "ip link set lo up && ip link set lo multicast on && \
                  ip route add 224.0.0.0/4 dev lo && exec \"$0\" \"$@\"";
    let out = tokio::process::Command::new("unshare")
        .args(["-n", "--", "sh", "-c", script])
        .arg(&exe)
        .args([
            "discover::mdns_inside_the_namespace",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(NETNS_ENV, "1")
        .stdin(Stdio::null())
        .output()
        .await;
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run `unshare -n` ({e}); the mDNS test needs a private network \
             namespace (run as root, or where unprivileged user namespaces are allowed) \
             and never uses the host's network"
        ),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("mdns-inside-ok"),
        "the mDNS test inside `unshare -n` failed (if the namespace could not be \
         made, run as root; the test never falls back to the host's network).\n\
         status: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}

#[tokio::test]
#[ignore = "runs only inside the namespace made by mdns_in_a_private_network_namespace"]
async fn mdns_inside_the_namespace() {
    let ifaces = interfaces();
    assert!(
        std::env::var_os(NETNS_ENV).is_some() && ifaces == ["lo"],
        "refusing to run: this is the inner half of mdns_in_a_private_network_namespace \
         and must run in a namespace holding only `lo` (found {ifaces:?})"
    );
    let devs: Vec<_> = (1..=5).map(|h| device(7, h, 54321)).collect();
    let fleet = fleet(
        devs.clone(),
        FleetOptions {
            broadcast: true,
            mdns: Some(AnnounceOptions::default()),
        },
    )
    .await;
    let home = home();
    let run = run_in(
        home.path(),
        &[
            "--timeout",
            "2",
            "discover",
            "--mdns-interface",
            "127.0.0.1",
            "--json",
        ],
    )
    .await;
    run.expect_code(0);
    let found = records(&run);
    assert_eq!(found.len(), devs.len(), "{run:#?}");
    for d in &devs {
        let r = &found[&d.did];
        // Address from the A record, model and did from the instance name.
        assert_eq!(r["addr"], d.addr.to_string(), "{r}");
        assert_eq!(r["model"], d.model.as_str());
        assert_eq!(r["model_source"], "mdns");
        assert_eq!(sources(r), BTreeSet::from(["mdns".to_string()]));
    }
    // All three together merge by did.
    let run = run_in(
        home.path(),
        &[
            "--timeout",
            "2",
            "discover",
            "--mdns-interface",
            "127.0.0.1",
            "--broadcast",
            "127.255.255.255",
            "--sweep",
            "127.62.7.0/29",
            "--json",
        ],
    )
    .await;
    run.expect_code(0);
    let found = records(&run);
    assert_eq!(found.len(), devs.len(), "{run:#?}");
    for d in &devs {
        assert_eq!(
            sources(&found[&d.did]),
            BTreeSet::from(["broadcast".into(), "mdns".into(), "sweep".into()])
        );
    }
    drop(fleet);
    println!("mdns-inside-ok");
}
