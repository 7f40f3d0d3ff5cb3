//! The `fake-device` binary: fleet generation, serve, clean exit, errors.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Client;
use fake_device::FleetConfig;
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fake-device"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("fake-device-{}-{name}", std::process::id()))
}

/// Start `serve`, collect `n` JSON lines from stdout.
fn serve(args: &[&str], n: usize) -> (std::process::Child, Vec<Value>) {
    let mut child = bin()
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = Vec::new();
    for _ in 0..n {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a JSON line per device");
        out.push(serde_json::from_str(&line).unwrap());
    }
    (child, out)
}

fn terminate(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM exits cleanly: {status:?}");
}

#[tokio::test]
async fn generate_then_serve() {
    let path = tmp("fleet.toml");
    let out = bin()
        .args([
            "fleet",
            "--count",
            "5",
            "--base",
            "127.77.9.1",
            "--port",
            "0",
            "--seed",
            "3",
            "--out",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = FleetConfig::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(cfg.devices.len(), 5);
    assert_eq!(
        cfg,
        FleetConfig::generate(5, "127.77.9.1".parse().unwrap(), 0, 3)
    );

    let (child, lines) = serve(&["--fleet", path.to_str().unwrap()], 5);
    for (l, d) in lines.iter().zip(&cfg.devices) {
        assert_eq!(l["name"], Value::from(d.name.clone()));
        assert_eq!(
            l["did"],
            Value::from(d.did.to_string()),
            "did as a decimal string"
        );
        assert_eq!(l["model"], Value::from(d.model.clone()));
        assert_eq!(l["token"], Value::from(d.effective_token().reveal()));
    }
    let addr = lines[0]["addr"].as_str().unwrap().parse().unwrap();
    let c = Client::new("127.77.9.250", cfg.devices[0].effective_token()).await;
    let h = c
        .hello(addr, Duration::from_secs(2))
        .await
        .expect("hello answered");
    assert_eq!(h.did, cfg.devices[0].did);
    terminate(child);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn single_device() {
    let (child, lines) = serve(
        &[
            "--model",
            "yeelink.light.mono1",
            "--addr",
            "127.77.10.2:0",
            "--token",
            "00112233445566778899aabbccddeeff",
            "--did",
            "77",
        ],
        1,
    );
    assert_eq!(lines[0]["did"], Value::from("77"));
    assert_eq!(
        lines[0]["token"],
        Value::from("00112233445566778899aabbccddeeff")
    );
    assert!(lines[0]["addr"]
        .as_str()
        .unwrap()
        .starts_with("127.77.10.2:"));
    terminate(child);
}

#[test]
fn errors_are_one_line_and_nonzero() {
    let path = tmp("bad.toml");
    std::fs::write(
        &path,
        "[[device]]\nname = \"x\"\nmodel = \"chuangmi.plug.m1\"\ndid = 1\ntoken = \"00112233445566778899aabbccddeeff\"\naddr = \"127.77.11.2:54321\"\n[device.faults]\nreply_loss = \"half\"\n",
    )
    .unwrap();
    let out = bin()
        .args(["serve", "--fleet"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("device #1 (x)") && err.contains("faults.reply_loss"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    let out = bin()
        .args([
            "serve",
            "--model",
            "acme.toaster",
            "--addr",
            "127.77.11.3:0",
            "--unprovisioned",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model"));
    let out = bin()
        .args(["serve", "--fleet", "/nonexistent/fleet.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/fleet.toml"));
    let _ = std::fs::remove_file(&path);
}
