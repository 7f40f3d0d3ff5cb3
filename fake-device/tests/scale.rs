//! One process runs 1,000 generated devices on distinct loopback addresses.

mod common;

use std::time::{Duration, Instant};

use common::Client;
use fake_device::{Fleet, FleetConfig};
use std::net::Ipv4Addr;

fn vm_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_devices() {
    let cfg = FleetConfig::generate(1000, Ipv4Addr::new(127, 78, 0, 1), 0, 42);
    let t = Instant::now();
    let fleet = Fleet::start(cfg).await.unwrap();
    let started = t.elapsed();
    let infos = fleet.devices();
    assert_eq!(infos.len(), 1000);
    let mut addrs: Vec<_> = infos.iter().map(|d| d.addr.ip()).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 1000, "distinct addresses");

    for i in [0usize, 1, 137, 500, 998, 999] {
        let d = &infos[i];
        let c = Client::new("127.78.255.1", d.token).await;
        let h = c.hello(d.addr, Duration::from_secs(2)).await;
        let h = h.unwrap_or_else(|| panic!("{} at {} did not answer hello", d.name, d.addr));
        assert_eq!(h.did, d.did);
        let r = c
            .call(d.addr, 7, "miIO.info", serde_json::json!([]))
            .await
            .unwrap();
        assert_eq!(r.outcome.unwrap()["model"], serde_json::json!(d.model));
    }
    let rss = vm_rss_kib().unwrap_or(0);
    println!(
        "1000 devices: started in {started:?}, VmRSS {} MiB",
        rss / 1024
    );
    eprintln!(
        "1000 devices: started in {started:?}, VmRSS {} MiB",
        rss / 1024
    );
    assert!(rss < 300 * 1024, "VmRSS {rss} KiB is over 300 MiB");
    fleet.shutdown().await;
}
