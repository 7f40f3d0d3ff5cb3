//! Discovery speed: the wall time of `mijia discover --sweep` over a /24
//! holding 250 simulated devices, as a whole process with default
//! settings (median of several runs). Target: at most 1 s.
//!
//! Run with `cargo bench --bench discover`. Talks only to 127.94.0.0/24.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use fake_device::{DeviceConfig, Fleet, FleetConfig};
use mijia_proto::miio::crypto::md5;
use mijia_proto::miio::Token;

const DEVICES: u8 = 250;
const RUNS: usize = 9;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let models = [
        "yeelink.light.color1",
        "chuangmi.plug.212a01",
        "zhimi.airpurifier.mb3",
    ];
    let devices: Vec<DeviceConfig> = (1..=DEVICES)
        .map(|h| {
            let name = format!("bench-{h}");
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 94, 0, h)), 54321);
            let model = models[usize::from(h) % models.len()];
            let mut d = DeviceConfig::new(name.clone(), model, 300_000_000 + u64::from(h), addr);
            d.token = Some(Token::from_bytes(md5(name.as_bytes())));
            d
        })
        .collect();
    let fleet = rt
        .block_on(Fleet::start(FleetConfig { devices }))
        .expect("250 fake devices start on 127.94.0.1-250");

    let home = tempfile::tempdir().expect("temp dir");
    let exe = env!("CARGO_BIN_EXE_mijia");
    let args = ["discover", "--sweep", "127.94.0.0/24", "--json"];
    let mut samples = Vec::with_capacity(RUNS);
    let mut last_found_ms = Vec::with_capacity(RUNS);
    for run in 0..=RUNS {
        let t = Instant::now();
        let out = Command::new(exe)
            .env("MIJIA_HOME", home.path())
            .args(args)
            .output()
            .expect("run mijia");
        let took = t.elapsed();
        assert!(out.status.success(), "mijia failed: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut dids = std::collections::BTreeSet::new();
        let mut latest = 0u64;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            dids.insert(v["did"].as_str().unwrap_or_default().to_string());
            latest = latest.max(v["first_seen_ms"].as_u64().unwrap_or(0));
        }
        assert_eq!(dids.len(), usize::from(DEVICES), "every device found");
        if run > 0 {
            // The first run warms caches; it is not counted.
            samples.push(took);
            last_found_ms.push(latest);
        }
    }
    samples.sort();
    last_found_ms.sort_unstable();
    let median = samples[samples.len() / 2];
    println!(
        "mijia {}: {} devices found; wall time median {:?}, min {:?}, max {:?} ({} runs); \
         last device found after {} ms (median); target <= 1 s: {}",
        args.join(" "),
        DEVICES,
        median,
        samples[0],
        samples[samples.len() - 1],
        samples.len(),
        last_found_ms[last_found_ms.len() / 2],
        if median <= Duration::from_secs(1) {
            "met"
        } else {
            "MISSED"
        }
    );
    rt.block_on(fleet.shutdown());
}
