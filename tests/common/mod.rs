//! Shared helpers for integration tests: a simulated fleet on a private
//! loopback block, a private `MIJIA_HOME`, and a runner for the real
//! `mijia` binary.
//!
//! Every test gets its own `127.61.<net>.0/24` block (pass a per-test
//! constant), so tests never share an address; nothing leaves 127.0.0.0/8.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;

use fake_device::{DeviceConfig, DeviceHandle, Fleet, FleetConfig};
use mijia_proto::miio::Token;
use tempfile::TempDir;

/// The loopback address `127.61.<net>.<host>`.
pub fn ip(net: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 61, net, host)
}

/// A device config on `127.61.<net>.<host>:54321` with a token derived
/// from its name.
pub fn device(name: &str, model: &str, net: u8, host: u8) -> DeviceConfig {
    let did = 100_000_000 + u64::from(net) * 1000 + u64::from(host);
    let addr = SocketAddr::new(IpAddr::V4(ip(net, host)), mijia_proto::miio::DEFAULT_PORT);
    let mut d = DeviceConfig::new(name, model, did, addr);
    d.token = Some(Token::from_bytes(mijia_proto::miio::crypto::md5(
        name.as_bytes(),
    )));
    d
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Parse stdout as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }

    /// Assert the exit code, showing the output on failure.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code; output:\n{self:#?}");
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        self
    }
}

/// A running fleet plus a private home directory.
pub struct Harness {
    /// The fleet.
    pub fleet: Fleet,
    /// `MIJIA_HOME` for every run.
    pub home: TempDir,
}

/// A harness with no devices (for usage and unreachable tests).
pub async fn empty() -> Harness {
    start(Vec::new()).await
}

/// Start these devices.
pub async fn start(devices: Vec<DeviceConfig>) -> Harness {
    let fleet = Fleet::start(FleetConfig { devices })
        .await
        .unwrap_or_else(|e| panic!("fleet starts: {e}"));
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    Harness { fleet, home }
}

impl Harness {
    /// The handle of a device.
    pub fn dev(&self, name: &str) -> DeviceHandle {
        self.fleet
            .device(name)
            .unwrap_or_else(|| panic!("no device {name} in the fleet"))
    }

    /// `--ip`, `--port` and `--token` for a device.
    pub fn target(&self, name: &str) -> Vec<String> {
        let info = self.dev(name).info();
        vec![
            "--ip".into(),
            info.addr.ip().to_string(),
            "--port".into(),
            info.addr.port().to_string(),
            "--token".into(),
            info.token.reveal(),
        ]
    }

    /// Run `mijia <target of name> args…`.
    pub async fn on(&self, name: &str, args: &[&str]) -> Run {
        let mut all = self.target(name);
        all.extend(args.iter().map(|s| s.to_string()));
        self.run(&all).await
    }

    /// Run `mijia args…` with this harness's home.
    pub async fn run<S: AsRef<str>>(&self, args: &[S]) -> Run {
        run_in(self.home.path(), args).await
    }
}

/// Run the real binary with `MIJIA_HOME=home` and no inherited `MIJIA_*`
/// device variables.
pub async fn run_in<S: AsRef<str>>(home: &Path, args: &[S]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mijia"))
        .args(args.iter().map(AsRef::as_ref))
        .env("MIJIA_HOME", home)
        .env_remove("MIJIA_IP")
        .env_remove("MIJIA_TOKEN")
        .env_remove("MIJIA_PORT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run mijia: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
