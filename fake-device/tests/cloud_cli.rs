//! The `fake-device cloud` and `serve --cloud` entry points: ready lines,
//! a live account host, clean exit, loopback-only refusal.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fake-device"))
}

/// The cloud fixture with every device on an ephemeral port.
fn fleet_file(name: &str) -> std::path::PathBuf {
    let text = include_str!("../../fixtures/fleets/cloud.toml").replace(":54321", ":0");
    let path = std::env::temp_dir().join(format!("fake-device-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn start(args: &[&str], lines: usize) -> (Child, Vec<Value>) {
    let mut child = bin()
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
    let out = (0..lines)
        .map(|_| {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("a ready line");
            serde_json::from_str(&line).unwrap()
        })
        .collect();
    (child, out)
}

fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "SIGTERM exits cleanly");
}

/// A blocking GET on loopback; returns the raw response text.
fn get(base: &str, path: &str) -> String {
    let hostport = base.strip_prefix("http://").unwrap();
    let addr: SocketAddr = hostport.parse().unwrap();
    assert!(addr.ip().is_loopback());
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn check_cloud_line(v: &Value) -> String {
    let base = v["cloud"].as_str().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{v}");
    assert_eq!(v["api"], format!("{base}/{{region}}/app"));
    assert_eq!(v["sts"], format!("{base}/sts"));
    base
}

#[test]
fn cloud_subcommand_serves_devices_and_cloud() {
    let path = fleet_file("cloud");
    let (child, lines) = start(
        &[
            "cloud",
            "--addr",
            "127.0.0.1:0",
            "--fleet",
            path.to_str().unwrap(),
        ],
        5,
    );
    assert_eq!(lines[0]["name"], "kitchen-light");
    let base = check_cloud_line(&lines[4]);
    let reply = get(&base, "/pass/serviceLogin?sid=xiaomiio&_json=true");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("&&&START&&&{"), "{reply}");
    assert!(reply.contains("\"code\":70016"), "{reply}");
    let accounts = get(&base, "/__fake/accounts");
    assert!(accounts.contains("alice@example.com"), "{accounts}");
    terminate(child);
    let _ = std::fs::remove_file(path);
}

#[test]
fn serve_with_cloud_option() {
    let path = fleet_file("serve");
    let (child, lines) = start(
        &[
            "serve",
            "--fleet",
            path.to_str().unwrap(),
            "--cloud",
            "127.0.0.1:0",
        ],
        5,
    );
    let base = check_cloud_line(&lines[4]);
    assert!(get(&base, "/__fake/health").contains("{\"ok\":true}"));
    terminate(child);
    let _ = std::fs::remove_file(path);
}

#[test]
fn cloud_refuses_non_loopback() {
    let out = bin()
        .args(["cloud", "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.0/8"), "{err}");
}
