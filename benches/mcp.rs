//! MCP server latency over stdio for a home of 100 devices: `tools/list`
//! and `tools/call get_device_state`, against the real `mijia mcp`
//! process, compared with the same device read made in-process (the
//! device round trip). Target: at most 5 ms per call beyond the device
//! round trip. Run with `cargo bench --bench mcp`. Talks only to
//! 127.0.0.0/8 (devices on 127.96.0.0/24).

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_device::{Fleet, FleetConfig};
use mijia::agent::policy::Policy;
use mijia::home::{load_spec_store, DeviceEntry, DeviceTarget, ModelCatalog, Paths, Registry};
use mijia::transport::ClientConfig;
use serde_json::{json, Value};

const DEVICES: usize = 100;
const ROUNDS: usize = 300;
const TARGET: Duration = Duration::from_millis(5);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(label: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let median = percentile(&samples, 0.5);
    println!(
        "{label}: median {median:?}, p90 {:?}, p99 {:?}, min {:?} ({} calls)",
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples[0],
        samples.len()
    );
    median
}

struct Peer {
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    next: u64,
}

impl Peer {
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(self.stdin, "{msg}").expect("write request");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.stdout.read_line(&mut line).expect("read reply") > 0,
                "server closed stdout"
            );
            let v: Value = serde_json::from_str(&line).expect("reply is JSON");
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    fn notify(&mut self, method: &str) {
        let msg = json!({"jsonrpc": "2.0", "method": method});
        writeln!(self.stdin, "{msg}").expect("write notification");
        self.stdin.flush().expect("flush");
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cfg = FleetConfig::generate(DEVICES, Ipv4Addr::new(127, 96, 0, 1), 54321, 7);
    let fleet = rt
        .block_on(Fleet::start(cfg))
        .expect("fleet starts on 127.96.0.0/24");
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = Paths::at(dir.path());
    let infos = fleet.devices();
    Registry::update(&paths, |reg| {
        for (i, d) in infos.iter().enumerate() {
            let mut e = DeviceEntry::new(d.name.clone(), d.addr.ip(), d.token);
            e.port = Some(d.addr.port());
            e.model = Some(d.model.clone());
            e.did = Some(d.did);
            e.room = Some(format!("Room {}", i % 10));
            reg.add(e)?;
        }
        Ok(())
    })
    .expect("registry");
    Policy::update(&paths, |p| {
        p.expose.all = true;
        Ok(())
    })
    .expect("policy");
    // The device every call reads: a MIoT model, so status is one request.
    let (store, _) = load_spec_store(&paths);
    let catalog = ModelCatalog::new(store);
    let registry = Registry::load(&paths).expect("registry loads");
    let entry = registry
        .devices()
        .iter()
        .find(|e| {
            catalog
                .store()
                .get(e.model.as_deref().unwrap_or_default())
                .is_some()
        })
        .expect("a MIoT device in the fleet")
        .clone();
    println!(
        "home: {DEVICES} devices; reading '{}' ({})",
        entry.name,
        entry.model.as_deref().unwrap_or("?")
    );

    // The device round trip, in-process.
    let device_rt = {
        let _guard = rt.enter();
        let device = DeviceTarget::from_entry(&entry, &catalog)
            .connect(ClientConfig::default(), None)
            .expect("device socket");
        let samples = rt.block_on(async {
            for _ in 0..50 {
                device.status().await.expect("warm-up read");
            }
            let mut s = Vec::with_capacity(ROUNDS);
            for _ in 0..ROUNDS {
                let t = Instant::now();
                device.status().await.expect("status");
                s.push(t.elapsed());
            }
            s
        });
        summary("device round trip (status, in-process)", samples)
    };

    let mut child = Command::new(env!("CARGO_BIN_EXE_mijia"))
        .arg("mcp")
        .env("MIJIA_HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mijia mcp");
    let mut peer = Peer {
        stdin: child.stdin.take().expect("stdin"),
        stdout: BufReader::new(child.stdout.take().expect("stdout")),
        next: 0,
    };
    let init = peer.request(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
    );
    assert!(init["result"]["protocolVersion"].is_string(), "{init}");
    peer.notify("notifications/initialized");

    let mut list = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS + 20 {
        let t = Instant::now();
        let r = peer.request("tools/list", json!({}));
        if i >= 20 {
            list.push(t.elapsed());
        }
        assert!(
            r["result"]["tools"]
                .as_array()
                .is_some_and(|t| t.len() >= 10),
            "{r}"
        );
    }
    let list_median = summary("tools/list over stdio", list);

    let args = json!({"name": "get_device_state", "arguments": {"device": entry.name, "room": null, "properties": null}});
    let mut calls = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS + 20 {
        let t = Instant::now();
        let r = peer.request("tools/call", args.clone());
        if i >= 20 {
            calls.push(t.elapsed());
        }
        assert_eq!(r["result"]["isError"], json!(false), "{r}");
    }
    let call_median = summary("get_device_state over stdio", calls);
    drop(peer);
    let _ = child.wait();

    let overhead = call_median.saturating_sub(device_rt);
    println!(
        "overhead beyond the device round trip: get_device_state {overhead:?}, tools/list {list_median:?} (target ≤ {TARGET:?}): {}",
        if overhead <= TARGET && list_median <= TARGET { "PASS" } else { "FAIL" }
    );
    rt.block_on(fleet.shutdown());
}
