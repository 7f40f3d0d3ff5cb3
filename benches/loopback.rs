//! Loopback latency: the median round trip of one `get_properties` call to a
//! simulated device, and the wall time of `mijia get` as a whole process.
//! Run with `cargo bench --bench loopback`. Talks only to 127.0.0.0/8.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_device::{DeviceConfig, Fleet, FleetConfig};
use mijia::transport::{ClientConfig, MemoryIdStore, MiioDevice, PropId};
use mijia_proto::miio::Token;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{label}: median {:?}, p90 {:?}, p99 {:?}, min {:?} ({} samples)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples[0],
        samples.len()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let token: Token = "00112233445566778899aabbccddeeff".parse().expect("token");
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 93, 0, 2)), 54321);
    let mut dev = DeviceConfig::new("bench-light", "yeelink.light.color1", 4242, addr);
    dev.token = Some(token);
    let fleet = rt
        .block_on(Fleet::start(FleetConfig { devices: vec![dev] }))
        .expect("fleet starts on 127.93.0.2");

    // In-process round trip through the real client.
    let _guard = rt.enter();
    let client = MiioDevice::new(
        addr,
        token,
        ClientConfig::default(),
        Some(Arc::new(MemoryIdStore::new())),
    )
    .expect("client socket on loopback");
    let props = [PropId { siid: 2, piid: 1 }, PropId { siid: 2, piid: 2 }];
    let samples = rt.block_on(async {
        for _ in 0..200 {
            client.get_properties(&props).await.expect("warm-up call");
        }
        let mut s = Vec::with_capacity(5000);
        for _ in 0..5000 {
            let t = Instant::now();
            client.get_properties(&props).await.expect("call");
            s.push(t.elapsed());
        }
        s
    });
    report(
        "round trip, get_properties (2 props) to a fake device on loopback",
        samples,
    );

    // The whole `mijia get` process, start to exit.
    let home = tempfile::tempdir().expect("temp dir");
    let exe = env!("CARGO_BIN_EXE_mijia");
    let run = || {
        let t = Instant::now();
        let out = Command::new(exe)
            .env("MIJIA_HOME", home.path())
            .args([
                "--ip",
                "127.93.0.2",
                "--token",
                &token.reveal(),
                "get",
                "2.1",
                "2.2",
            ])
            .output()
            .expect("mijia runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed()
    };
    for _ in 0..10 {
        run();
    }
    let samples: Vec<Duration> = (0..200).map(|_| run()).collect();
    report("`mijia get 2.1 2.2` whole process wall time", samples);

    rt.block_on(fleet.shutdown());
}
