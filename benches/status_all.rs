//! Whole-home poll: `mijia status --all --json` over 1,000 simulated
//! devices on loopback, as a separate process, several times.
//!
//! Starts a generated fleet of 1,000 devices in this process
//! (127.95.0.1 onwards, port 54321), writes a registry with all of them
//! into a temporary `MIJIA_HOME`, then runs the release `mijia` binary and
//! reports the median and worst wall time and the peak resident memory of
//! the client process (through `/usr/bin/time`, when installed). Targets:
//! ≤ 1 s wall time and ≤ 100 MB peak client memory.
//!
//! Run with `cargo bench --bench status_all`. Needs about 1,300 file
//! descriptors (`ulimit -n 4096` if the limit is lower). Talks only to
//! 127.0.0.0/8.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fake_device::{Fleet, FleetConfig};
use mijia::home::{DeviceEntry, Paths, Registry};

const DEVICES: usize = 1000;
const RUNS: usize = 7;
const TIME: &str = "/usr/bin/time";

/// One run: wall time, peak RSS in KiB (when measurable), devices that
/// answered.
fn run_once(exe: &str, home: &Path) -> (Duration, Option<u64>, usize) {
    let rss_file = home.join("rss.txt");
    let with_time = Path::new(TIME).exists();
    let mut cmd = if with_time {
        let mut c = Command::new(TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.env("MIJIA_HOME", home)
        .env_remove("MIJIA_IP")
        .env_remove("MIJIA_TOKEN")
        .args(["--timeout", "2", "--json", "status", "--all"]);
    let t = Instant::now();
    let out = cmd.output().expect("mijia runs");
    let wall = t.elapsed();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "mijia printed no JSON ({e}); exit {:?}; stderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let ok = doc["summary"]["ok"].as_u64().unwrap_or(0) as usize;
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.trim().lines().last()?.trim().parse().ok());
    (wall, rss, ok)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cfg = FleetConfig::generate(DEVICES, Ipv4Addr::new(127, 95, 0, 1), 54321, 11);
    let fleet = rt
        .block_on(Fleet::start(cfg))
        .expect("1,000 fake devices start on 127.95.x.x (raise `ulimit -n` if this fails)");

    let home = tempfile::tempdir().expect("temp dir");
    let paths = Paths::at(home.path());
    Registry::update(&paths, |r| {
        for d in fleet.devices() {
            let mut e = DeviceEntry::new(d.name, d.addr.ip(), d.token);
            e.model = Some(d.model);
            e.did = Some(d.did);
            r.add(e)?;
        }
        Ok(())
    })
    .expect("registry written");

    let exe = env!("CARGO_BIN_EXE_mijia");
    // Warm-up (page cache, first handshakes).
    let (_, _, ok) = run_once(exe, home.path());
    println!("warm-up: {ok} of {DEVICES} devices answered");
    let mut walls = Vec::with_capacity(RUNS);
    let mut peak: Option<u64> = None;
    for _ in 0..RUNS {
        let (wall, rss, ok) = run_once(exe, home.path());
        assert_eq!(ok, DEVICES, "every device answers");
        walls.push(wall);
        peak = match (peak, rss) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    walls.sort();
    let median = walls[walls.len() / 2];
    let worst = walls[walls.len() - 1];
    println!(
        "mijia status --all --json, {DEVICES} devices on loopback: median {median:?}, \
         worst {worst:?} ({RUNS} runs); target ≤ 1 s"
    );
    match peak {
        Some(kib) => println!(
            "peak client memory (max RSS): {:.1} MB; target ≤ 100 MB",
            kib as f64 / 1024.0
        ),
        None => println!("peak client memory: not measured ({TIME} is not installed)"),
    }
    drop(fleet);
}
