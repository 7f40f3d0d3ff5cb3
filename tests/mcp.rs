//! The agent tool server (`mijia mcp`) and its permission model.
//!
//! - In-process tests drive the [`Gate`] directly against a simulated
//!   fleet: exposure, tiers and caps, grants and their expiry, confirmation
//!   answers and timeouts, out-of-band approvals and their expiry, the
//!   audit log.
//! - Interop tests run the real `mijia mcp` under the official Python MCP
//!   client (`tests/interop/scenario.py`, installed into `.venv-interop/`
//!   by `scripts/setup-interop.sh`), once per protocol era, over stdio and
//!   over Streamable HTTP, and check the devices and the audit log.
//! - An HTTP test checks that a foreign Origin gets 403 and a missing or
//!   wrong bearer token gets 401.
//! - A cloud test runs `mijia mcp` against a device whose registered
//!   address is dead but which the simulated Xiaomi cloud (on loopback)
//!   knows: reads and writes fall back to the cloud once a session exists,
//!   and say so.
//!
//! Devices live on `127.63.<net>.0/24` (one block per test); nothing leaves
//! 127.0.0.0/8.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use fake_device::{DeviceConfig, DeviceHandle, Fleet, FleetConfig};
use mijia::agent::approvals;
use mijia::agent::audit::{AuditLog, AuditRecord, Decision};
use mijia::agent::gate::{Answer, Asker, BoxFuture, CallMeta, Channel, Gate, Outcome, Resume};
use mijia::agent::grants;
use mijia::agent::policy::Policy;
use mijia::agent::tier::{Capability, Tier};
use mijia::home::{load_spec_store, DeviceEntry, ModelCatalog, Paths, Registry};
use mijia::transport::ClientConfig;
use mijia_proto::miio::Token;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

const LAMP: &str = "yeelink.light.color1";
const HEATER: &str = "zhimi.heater.mc2";

fn ip(net: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 63, net, host)
}

/// A simulated home: the fleet, a private `MIJIA_HOME`, its paths.
struct Home {
    fleet: Fleet,
    dir: TempDir,
    paths: Paths,
}

/// One device: name, model, room, exposed?
type Spec<'a> = (&'a str, &'a str, &'a str, bool);

async fn home(net: u8, devices: &[Spec<'_>]) -> Home {
    let mut configs = Vec::new();
    for (i, (name, model, _, _)) in devices.iter().enumerate() {
        let host = u8::try_from(i + 1).unwrap_or(250);
        let addr = SocketAddr::new(IpAddr::V4(ip(net, host)), 54321);
        let did = 700_000_000 + u64::from(net) * 1000 + u64::from(host);
        let mut d = DeviceConfig::new(*name, *model, did, addr);
        d.token = Some(Token::from_bytes(mijia_proto::miio::crypto::md5(
            name.as_bytes(),
        )));
        configs.push(d);
    }
    let fleet = Fleet::start(FleetConfig { devices: configs })
        .await
        .unwrap_or_else(|e| panic!("fleet starts: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let paths = Paths::at(dir.path());
    Registry::update(&paths, |reg| {
        for (name, model, room, _) in devices {
            let info = fleet
                .device(name)
                .map(|h| h.info())
                .expect("device in fleet");
            let mut e = DeviceEntry::new(*name, info.addr.ip(), info.token);
            e.model = Some((*model).to_string());
            e.room = Some((*room).to_string());
            e.did = Some(info.did);
            reg.add(e)?;
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("registry: {e}"));
    Policy::update(&paths, |p| {
        for (name, _, _, exposed) in devices {
            if *exposed {
                p.expose_device(name);
            }
        }
        p.set("confirm-timeout", "2s")
    })
    .unwrap_or_else(|e| panic!("policy: {e}"));
    Home { fleet, dir, paths }
}

impl Home {
    fn dev(&self, name: &str) -> DeviceHandle {
        self.fleet
            .device(name)
            .unwrap_or_else(|| panic!("no device {name}"))
    }

    fn gate(&self) -> Gate {
        let (store, _) = load_spec_store(&self.paths);
        let config = ClientConfig {
            timeout: Duration::from_millis(500),
            retries: 1,
            ..ClientConfig::default()
        };
        Gate::new(self.paths.clone(), ModelCatalog::new(store), config, None)
    }

    fn audit(&self) -> Vec<AuditRecord> {
        AuditLog::new(&self.paths)
            .read_all()
            .map(|(r, _)| r)
            .unwrap_or_default()
    }

    fn decisions(&self, device: &str) -> Vec<Decision> {
        self.audit()
            .into_iter()
            .filter(|r| r.device.as_deref() == Some(device))
            .map(|r| r.decision)
            .collect()
    }
}

/// A user who answers from a script (and records what was asked).
#[derive(Default)]
struct ScriptedUser {
    answers: Mutex<Vec<Answer>>,
    asked: Mutex<Vec<(String, Duration)>>,
    /// Never answer: wait out the timeout.
    silent: bool,
}

impl ScriptedUser {
    fn answering(answers: Vec<Answer>) -> Self {
        ScriptedUser {
            answers: Mutex::new(answers),
            ..Default::default()
        }
    }

    fn asked(&self) -> Vec<(String, Duration)> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl Asker for ScriptedUser {
    fn ask<'a>(&'a self, message: &'a str, timeout: Duration) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            if let Ok(mut a) = self.asked.lock() {
                a.push((message.to_string(), timeout));
            }
            if self.silent {
                // What the adapter does: wait at most `timeout`.
                let never = tokio::time::sleep(Duration::from_secs(3600));
                return match tokio::time::timeout(timeout, never).await {
                    Ok(()) => Answer::Cancel,
                    Err(_) => Answer::Timeout,
                };
            }
            let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            if answers.is_empty() {
                Answer::Decline
            } else {
                answers.remove(0)
            }
        })
    }
}

fn meta() -> CallMeta {
    CallMeta {
        transport: "direct",
        client: Some("test/1".into()),
        era: Some("2025-11-25".into()),
    }
}

fn target(device: &str) -> Value {
    json!({"device": device, "room": null, "approval_id": null})
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

async fn call(
    gate: &Gate,
    tool: &str,
    args: Value,
    channel: Channel<'_>,
) -> (bool, String, Option<Value>) {
    match gate.call(tool, args, &meta(), channel).await {
        Ok(Outcome::Done(r)) => (r.is_error, r.text, r.structured),
        Ok(Outcome::NeedInput { message, .. }) => (true, format!("NEED INPUT: {message}"), None),
        Err(e) => (true, format!("GATE ERROR: {e}"), None),
    }
}

fn on(h: &DeviceHandle) -> Option<Value> {
    h.value(2, 1)
}

// ------------------------------------------------------------ in-process

#[tokio::test]
async fn exposure_is_fail_closed_and_unexposed_devices_get_no_traffic() {
    let home = home(
        1,
        &[
            ("Desk lamp", LAMP, "Office", true),
            ("Hidden heater", HEATER, "Hall", false),
        ],
    )
    .await;
    let gate = home.gate();
    let user = ScriptedUser::answering(vec![Answer::Accept { confirm: true }]);
    let (err, text, _) = call(
        &gate,
        "turn_on",
        target("Hidden heater"),
        Channel::Ask(&user),
    )
    .await;
    assert!(err, "{text}");
    assert!(
        text.contains("mijia policy expose \"Hidden heater\""),
        "{text}"
    );
    assert!(
        home.dev("Hidden heater").requests().is_empty(),
        "no packet may reach an unexposed device"
    );
    assert!(
        user.asked().is_empty(),
        "nobody is asked about an unexposed device"
    );
    assert_eq!(home.decisions("Hidden heater"), [Decision::Denied]);

    // The overview lists only exposed devices.
    let (err, _, s) = call(&gate, "home_overview", json!({"room": null}), Channel::None).await;
    assert!(!err);
    let names: Vec<String> = s
        .as_ref()
        .and_then(|s| s["devices"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|d| d["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["Desk lamp"]);

    // With nothing exposed at all, nothing is visible.
    Policy::update(&home.paths, |p| {
        p.unexpose_device("Desk lamp");
        Ok(())
    })
    .unwrap();
    let (_, text, s) = call(&gate, "home_overview", json!({"room": null}), Channel::None).await;
    assert_eq!(s.unwrap()["devices"], json!([]), "{text}");
    assert!(text.contains("mijia policy expose"), "{text}");
    let (err, text, _) = call(
        &gate,
        "get_device_state",
        json!({"device": "Desk lamp"}),
        Channel::None,
    )
    .await;
    assert!(err && text.contains("not shared"), "{text}");
}

#[tokio::test]
async fn control_tier_asks_once_then_uses_the_grant_until_it_expires() {
    let home = home(2, &[("Desk lamp", LAMP, "Office", true)]).await;
    Policy::update(&home.paths, |p| p.set("grant-ttl", "1s")).unwrap();
    let gate = home.gate();
    let user = ScriptedUser::answering(vec![
        Answer::Accept { confirm: true },
        Answer::Accept { confirm: true },
    ]);
    let lamp = home.dev("Desk lamp");

    let args = with(target("Desk lamp"), json!({"brightness": 40}));
    let (err, text, s) = call(&gate, "set_light", args, Channel::Ask(&user)).await;
    assert!(!err, "{text}");
    let s = s.unwrap();
    assert_eq!(s["after"]["light.brightness"], json!(40), "{s}");
    assert_eq!(s["before"]["light.on"], json!(false), "{s}");
    assert_eq!(s["verified"], json!(true));
    assert_eq!(lamp.value(2, 2), Some(json!(40)));
    assert_eq!(user.asked().len(), 1);
    let (question, timeout) = user.asked()[0].clone();
    assert!(
        question.contains("Desk lamp") && question.contains("light controls"),
        "{question}"
    );
    assert!(
        question.contains("1 → 40"),
        "the question shows before → after: {question}"
    );
    assert_eq!(
        timeout,
        Duration::from_secs(2),
        "the policy's timeout is used"
    );

    // The grant covers the light class on this device: no second question.
    let (err, text, _) = call(
        &gate,
        "set_light",
        with(target("Desk lamp"), json!({"brightness": 55})),
        Channel::Ask(&user),
    )
    .await;
    assert!(!err, "{text}");
    assert_eq!(user.asked().len(), 1);
    // ...but not another class: power asks again.
    let (err, _, _) = call(&gate, "turn_off", target("Desk lamp"), Channel::Ask(&user)).await;
    assert!(!err);
    assert_eq!(user.asked().len(), 2);

    // Expiry: after the TTL, the next use asks again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (err, text, _) = call(
        &gate,
        "set_light",
        with(target("Desk lamp"), json!({"brightness": 70})),
        Channel::Ask(&user),
    )
    .await;
    assert!(err, "declined by the script: {text}");
    assert_eq!(user.asked().len(), 3);
    assert_eq!(
        lamp.value(2, 2),
        Some(json!(55)),
        "a declined change is not made"
    );
    assert_eq!(
        home.decisions("Desk lamp"),
        [
            Decision::Granted,
            Decision::Allowed,
            Decision::Granted,
            Decision::Declined
        ]
    );
}

#[tokio::test]
async fn sensitive_actions_need_confirmation_every_time_and_time_out() {
    let home = home(3, &[("Heater", HEATER, "Bedroom", true)]).await;
    let gate = home.gate();
    let heater = home.dev("Heater");
    let user = ScriptedUser::answering(vec![
        Answer::Accept { confirm: true },
        Answer::Accept { confirm: false },
        Answer::Decline,
        Answer::Cancel,
        Answer::Accept { confirm: true },
    ]);
    let (err, text, s) = call(&gate, "turn_on", target("Heater"), Channel::Ask(&user)).await;
    assert!(!err, "{text}");
    assert_eq!(s.unwrap()["tier"], json!("sensitive"));
    assert_eq!(on(&heater), Some(json!(true)));
    // Every call asks again; an unticked box is a no.
    for _ in 0..3 {
        let (err, text, _) = call(&gate, "turn_off", target("Heater"), Channel::Ask(&user)).await;
        assert!(err, "{text}");
        assert_eq!(on(&heater), Some(json!(true)));
    }
    let (err, _, _) = call(&gate, "turn_off", target("Heater"), Channel::Ask(&user)).await;
    assert!(!err);
    assert_eq!(on(&heater), Some(json!(false)));
    assert_eq!(user.asked().len(), 5);
    assert!(
        grants::list(&home.paths).unwrap().is_empty(),
        "sensitive confirmations never become grants"
    );

    // No answer within the timeout: denied.
    let silent = ScriptedUser {
        silent: true,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let (err, text, _) = call(&gate, "turn_on", target("Heater"), Channel::Ask(&silent)).await;
    assert!(err && text.contains("expired"), "{text}");
    assert!(
        started.elapsed() >= Duration::from_secs(2) && started.elapsed() < Duration::from_secs(10)
    );
    assert_eq!(on(&heater), Some(json!(false)));
    assert_eq!(
        home.decisions("Heater"),
        [
            Decision::Confirmed,
            Decision::Declined,
            Decision::Declined,
            Decision::Cancelled,
            Decision::Confirmed,
            Decision::Expired
        ]
    );
}

#[tokio::test]
async fn tier_caps_generic_tools_and_forbidden_requests() {
    let home = home(
        4,
        &[
            ("Desk lamp", LAMP, "Office", true),
            ("Heater", HEATER, "Bedroom", true),
        ],
    )
    .await;
    Policy::update(&home.paths, |p| {
        p.set_device_cap("Desk lamp", Tier::Read);
        p.set_room_cap("Bedroom", Tier::Control);
        Ok(())
    })
    .unwrap();
    let gate = home.gate();
    let user = ScriptedUser::answering(vec![Answer::Accept { confirm: true }; 4]);
    let (err, text, _) = call(&gate, "turn_on", target("Desk lamp"), Channel::Ask(&user)).await;
    assert!(err && text.contains("at most 'read'"), "{text}");
    let (err, text, _) = call(&gate, "turn_on", target("Heater"), Channel::Ask(&user)).await;
    assert!(err && text.contains("sensitive-tier"), "{text}");
    assert!(
        user.asked().is_empty(),
        "capped calls are refused before asking"
    );
    assert_eq!(on(&home.dev("Heater")), Some(json!(false)));
    // Reads stay allowed under a read cap.
    let (err, text, _) = call(
        &gate,
        "get_device_state",
        json!({"device": "desk lamp", "properties": ["light.on"]}),
        Channel::None,
    )
    .await;
    assert!(!err, "{text}");

    // Generic tools: off by default, not listed, refused.
    assert!(!gate.list_tools().iter().any(|t| t.name == "set_property"));
    let args = with(
        target("Heater"),
        json!({"property": "heater.target-temperature", "value": 22}),
    );
    let (err, text, _) = call(&gate, "set_property", args.clone(), Channel::Ask(&user)).await;
    assert!(err && text.contains("allow-generic on"), "{text}");
    Policy::update(&home.paths, |p| {
        p.tools.generic = true;
        p.caps.rooms.clear();
        Ok(())
    })
    .unwrap();
    assert!(gate.list_tools().iter().any(|t| t.name == "set_property"));
    let (err, text, s) = call(&gate, "set_property", args, Channel::Ask(&user)).await;
    assert!(!err, "{text}");
    assert_eq!(s.unwrap()["tier"], json!("sensitive"));
    assert_eq!(user.asked().len(), 1, "generic writes are confirmed");
    // Spec validation happens before anyone is asked.
    let bad = with(
        target("Heater"),
        json!({"property": "heater.target-temperature", "value": 99}),
    );
    let (err, text, _) = call(&gate, "set_property", bad, Channel::Ask(&user)).await;
    assert!(err && text.contains("nothing was sent"), "{text}");
    assert_eq!(user.asked().len(), 1);

    // Payments: no such tool, refused with an explanation, audited.
    let (err, text, _) = call(
        &gate,
        "purchase_filter",
        json!({"device": "Heater"}),
        Channel::Ask(&user),
    )
    .await;
    assert!(err && text.contains("would move money"), "{text}");
    let forbidden = home
        .audit()
        .into_iter()
        .filter(|r| r.decision == Decision::Forbidden)
        .count();
    assert_eq!(forbidden, 1);
    // An unknown tool is a protocol error, audited as invalid.
    assert!(gate
        .call("fly_drone", json!({}), &meta(), Channel::None)
        .await
        .is_err());
}

#[tokio::test]
async fn out_of_band_approval_is_one_time_bound_and_expires() {
    let home = home(5, &[("Heater", HEATER, "Bedroom", true)]).await;
    let gate = home.gate();
    let heater = home.dev("Heater");
    let (err, text, s) = call(&gate, "turn_on", target("Heater"), Channel::None).await;
    assert!(err, "{text}");
    let s = s.unwrap();
    assert_eq!(s["status"], json!("approval_required"));
    let id = s["approval_id"].as_str().unwrap().to_string();
    assert!(text.contains(&format!("mijia approve {id}")), "{text}");
    assert_eq!(on(&heater), Some(json!(false)));

    // The id alone grants nothing.
    let retry = with(target("Heater"), json!({"approval_id": id}));
    let (err, text, _) = call(&gate, "turn_on", retry.clone(), Channel::None).await;
    assert!(err && text.contains("still waiting"), "{text}");
    assert_eq!(on(&heater), Some(json!(false)));
    // The user approves out of band; only the same call may use it.
    let now = mijia::agent::clock::now_ms();
    approvals::settle(&home.paths, &id, true, now).unwrap();
    assert!(
        approvals::settle(&home.paths, &id, false, now).is_err(),
        "settled once"
    );
    let other = with(target("Heater"), json!({"approval_id": id}));
    let (err, text, _) = call(&gate, "turn_off", other, Channel::None).await;
    assert!(err && text.contains("different call"), "{text}");
    let (err, text, _) = call(&gate, "turn_on", retry.clone(), Channel::None).await;
    assert!(!err, "{text}");
    assert_eq!(on(&heater), Some(json!(true)));
    let (err, text, _) = call(&gate, "turn_on", retry, Channel::None).await;
    assert!(err && text.contains("already used"), "{text}");

    // Denied requests stay denied.
    let (_, _, s) = call(&gate, "turn_off", target("Heater"), Channel::None).await;
    let id2 = s.unwrap()["approval_id"].as_str().unwrap().to_string();
    approvals::settle(&home.paths, &id2, false, mijia::agent::clock::now_ms()).unwrap();
    let (err, text, _) = call(
        &gate,
        "turn_off",
        with(target("Heater"), json!({"approval_id": id2})),
        Channel::None,
    )
    .await;
    assert!(err && text.contains("denied"), "{text}");
    assert_eq!(on(&heater), Some(json!(true)));

    // A request expires on its own.
    Policy::update(&home.paths, |p| p.set("approval-ttl", "1s")).unwrap();
    let (_, _, s) = call(&gate, "turn_off", target("Heater"), Channel::None).await;
    let id3 = s.unwrap()["approval_id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let e = approvals::settle(&home.paths, &id3, true, mijia::agent::clock::now_ms()).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    assert_eq!(
        home.decisions("Heater"),
        [
            Decision::ApprovalPending,
            Decision::ApprovalPending,
            Decision::Rejected,
            Decision::ApprovedOutOfBand,
            Decision::Rejected,
            Decision::ApprovalPending,
            Decision::Declined,
            Decision::ApprovalPending,
        ]
    );
}

#[tokio::test]
async fn modern_round_trip_binds_arguments_and_is_one_time() {
    let home = home(6, &[("Heater", HEATER, "Bedroom", true)]).await;
    let gate = home.gate();
    let heater = home.dev("Heater");
    let args = target("Heater");
    let pending = match gate
        .call("turn_on", args.clone(), &meta(), Channel::Mrtr(None))
        .await
    {
        Ok(Outcome::NeedInput {
            pending,
            ttl,
            message,
        }) => {
            assert_eq!(ttl, Duration::from_secs(2));
            assert!(message.contains("Heater"), "{message}");
            pending
        }
        other => panic!("expected input_required, got {other:?}"),
    };
    assert_eq!(on(&heater), Some(json!(false)));
    // A state for other arguments does not count.
    let mut wrong = pending.clone();
    wrong.digest = mijia::agent::gate::args_digest("turn_on", &target("Other"));
    let resume = Resume::Answer {
        pending: wrong,
        answer: Answer::Accept { confirm: true },
    };
    let (err, _, _) = call(&gate, "turn_on", args.clone(), Channel::Mrtr(Some(resume))).await;
    assert!(err);
    let yes = || Resume::Answer {
        pending: pending.clone(),
        answer: Answer::Accept { confirm: true },
    };
    let (err, text, _) = call(&gate, "turn_on", args.clone(), Channel::Mrtr(Some(yes()))).await;
    assert!(!err, "{text}");
    assert_eq!(on(&heater), Some(json!(true)));
    let (err, text, _) = call(&gate, "turn_on", args.clone(), Channel::Mrtr(Some(yes()))).await;
    assert!(err && text.contains("already used"), "{text}");
    let (err, text, _) = call(&gate, "turn_on", args, Channel::Mrtr(Some(Resume::Expired))).await;
    assert!(err && text.contains("expired"), "{text}");
    let d = home.decisions("Heater");
    assert_eq!(
        d,
        [
            Decision::InputRequired,
            Decision::Rejected,
            Decision::Confirmed,
            Decision::Rejected,
            Decision::Expired
        ]
    );
}

#[test]
fn grants_and_approvals_files_expire_and_stay_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::at(dir.path());
    let g = grants::Grant {
        device_key: "did:1".into(),
        device: "Lamp".into(),
        class: Capability::Light,
        granted_at_ms: 1_000,
        expires_at_ms: 2_000,
        via: "elicitation".into(),
    };
    grants::add(&paths, g, 1_000).unwrap();
    assert!(grants::find(&paths, "did:1", Capability::Light, 1_999).is_some());
    assert!(
        grants::find(&paths, "did:1", Capability::Light, 2_000).is_none(),
        "expired at its expiry"
    );
    assert!(
        grants::find(&paths, "did:1", Capability::Power, 1_500).is_none(),
        "per class"
    );
    assert!(
        grants::find(&paths, "did:2", Capability::Light, 1_500).is_none(),
        "per device"
    );
    let mode = std::fs::metadata(grants::grants_file(&paths))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(grants::revoke(&paths, Some("lamp")).unwrap(), 1);

    let new = approvals::NewApproval {
        tool: "turn_on".into(),
        args_digest: "d".into(),
        device: "Lamp".into(),
        device_key: "did:1".into(),
        class: Capability::Power,
        tier: Tier::Sensitive,
        kind: approvals::ApprovalKind::Confirm,
        summary: "turn_on Lamp".into(),
    };
    let a = approvals::create(&paths, new, 10_000, 5_000).unwrap();
    assert_eq!(a.id.len(), 8);
    assert!(approvals::settle(&paths, "nope", true, 10_001).is_err());
    assert!(
        approvals::settle(&paths, &a.id, true, 15_000).is_err(),
        "expired"
    );
    assert_eq!(
        approvals::redeem(&paths, &a.id, "turn_on", "d", 15_000).unwrap(),
        Err(approvals::Refusal::Expired(a.clone()))
    );
    let mode = std::fs::metadata(approvals::approvals_file(&paths))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // The audit log is append-only, 0600, one line per record.
    let log = AuditLog::new(&paths);
    for d in [Decision::Allowed, Decision::Denied] {
        log.append(&AuditRecord::new(
            1,
            "direct",
            "turn_on",
            json!({"device": "x"}),
            d,
        ))
        .unwrap();
    }
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(text.lines().count(), 2);
    let mode = std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

// --------------------------------------------------------------- interop

/// Runs `scripts/setup-interop.sh` once per test process; fails (never
/// skips) with its output if the venv cannot be made.
fn interop_python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    PYTHON
        .get_or_init(|| {
            let out = std::process::Command::new("bash")
                .arg(root.join("scripts/setup-interop.sh"))
                .current_dir(root)
                .output()
                .map_err(|e| format!("cannot run scripts/setup-interop.sh: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "scripts/setup-interop.sh failed ({}):\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(root.join(".venv-interop/bin/python"))
        })
        .clone()
        .unwrap_or_else(|e| panic!("the interop client is not available: {e}"))
}

const ERA_DEVICES: &[(&str, &str, &str, bool)] = &[
    ("lamp", LAMP, "Office", true),
    ("heater accept", HEATER, "Bedroom", true),
    ("heater decline", HEATER, "Bedroom", true),
    ("heater slow", HEATER, "Bedroom", true),
    ("heater replay", HEATER, "Bedroom", true),
    ("heater approve", HEATER, "Bedroom", true),
    ("hidden heater", HEATER, "Bedroom", false),
];

async fn era_home(net: u8, prefix: &str) -> Home {
    let names: Vec<String> = ERA_DEVICES
        .iter()
        .map(|(n, ..)| format!("{prefix} {n}"))
        .collect();
    let specs: Vec<Spec<'_>> = ERA_DEVICES
        .iter()
        .zip(&names)
        .map(|((_, m, r, e), n)| (n.as_str(), *m, *r, *e))
        .collect();
    home(net, &specs).await
}

async fn run_scenario(home: &Home, mode: &str, prefix: &str, http: Option<(&str, &str)>) -> Value {
    let python = interop_python();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(root.join("tests/interop/scenario.py"))
        .arg(mode)
        .env("MIJIA_BIN", env!("CARGO_BIN_EXE_mijia"))
        .env("MIJIA_HOME", home.dir.path())
        .env("MCP_PREFIX", prefix)
        .env_remove("MCP_URL")
        .stdin(std::process::Stdio::null());
    if let Some((url, token)) = http {
        cmd.env("MCP_URL", url).env("MCP_TOKEN", token);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("the {mode} scenario did not finish in 120 s"))
        .unwrap_or_else(|e| panic!("cannot run the interop client: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{mode} scenario failed ({}):\n{stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "scenario output is not JSON ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn step<'a>(r: &'a Value, name: &str) -> &'a Value {
    let s = &r[name];
    assert!(!s.is_null(), "no step {name} in {r}");
    s
}

fn assert_ok(r: &Value, name: &str) {
    assert_eq!(
        step(r, name)["is_error"],
        json!(false),
        "{name}: {}",
        r[name]
    );
}

fn assert_refused(r: &Value, name: &str, needle: &str) {
    let s = step(r, name);
    assert_eq!(s["is_error"], json!(true), "{name}: {s}");
    let text = s["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(needle),
        "{name}: expected '{needle}' in {text}"
    );
}

async fn check_era(home: &Home, r: &Value, mode: &str, prefix: &str) {
    let version = if mode == "legacy" {
        "2025-11-25"
    } else {
        "2026-07-28"
    };
    assert_eq!(r["protocol_version"], json!(version), "{mode}");
    // Tools: stable names, schemas, honest annotations; generic tools off.
    let tools = r["tools"]
        .as_object()
        .unwrap_or_else(|| panic!("no tools: {r}"));
    for name in [
        "home_overview",
        "get_device_state",
        "describe_device",
        "turn_on",
        "turn_off",
        "set_light",
        "set_climate",
        "set_fan",
        "set_cover",
        "vacuum",
    ] {
        let t = &tools[name];
        assert_eq!(t["has_output_schema"], json!(true), "{name}");
        assert_eq!(
            t["input_schema"]["additionalProperties"],
            json!(false),
            "{name}"
        );
        assert_eq!(t["annotations"]["openWorldHint"], json!(false), "{name}");
    }
    assert!(!tools.contains_key("set_property") && !tools.contains_key("run_scene"));
    assert_eq!(
        tools["home_overview"]["annotations"]["readOnlyHint"],
        json!(true)
    );
    assert_eq!(
        tools["turn_on"]["annotations"]["readOnlyHint"],
        json!(false)
    );
    assert_eq!(
        tools["turn_on"]["annotations"]["destructiveHint"],
        json!(false)
    );
    assert_eq!(
        tools["vacuum"]["annotations"]["idempotentHint"],
        json!(false)
    );
    let resources: Vec<&str> = r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(resources.contains(&"mijia://devices"), "{resources:?}");
    assert_eq!(
        resources.len(),
        1 + 6,
        "the device list and one spec per exposed device: {resources:?}"
    );

    // Reads.
    assert_ok(r, "overview");
    let devices = r["overview"]["structured"]["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 6, "only exposed devices");
    assert!(devices.iter().all(|d| d["online"] == json!(true)));
    assert_ok(r, "state");
    let props = r["state"]["structured"]["properties"].as_array().unwrap();
    assert!(
        props.iter().any(|p| p["name"] == json!("light.brightness")),
        "{props:?}"
    );
    assert_ok(r, "describe");
    assert!(
        r["describe"]["text"].as_str().unwrap().contains("heater"),
        "{}",
        r["describe"]
    );

    // A light: grant asked once, before/after read back.
    assert_ok(r, "light_first");
    assert_eq!(r["light_first"]["asked"], json!(1));
    assert_eq!(
        r["light_first"]["structured"]["before"]["light.on"],
        json!(false)
    );
    assert_eq!(
        r["light_first"]["structured"]["after"]["light.brightness"],
        json!(40)
    );
    assert_ok(r, "light_again");
    assert_eq!(r["light_again"]["asked"], json!(0), "the grant is used");
    assert_refused(r, "light_bad_value", "between 1 and 100");
    let lamp = home.dev(&format!("{prefix} lamp"));
    assert_eq!(lamp.value(2, 2), Some(json!(60)));
    assert_eq!(lamp.value(2, 1), Some(json!(true)));

    // Sensitive: accepted, declined, cancelled, timed out.
    assert_ok(r, "heater_accept");
    assert_eq!(r["heater_accept"]["asked"], json!(1));
    assert_refused(r, "heater_decline", "declined");
    assert_refused(r, "heater_cancel", "dismissed");
    assert_refused(r, "heater_timeout", "expired");
    assert_eq!(
        on(&home.dev(&format!("{prefix} heater accept"))),
        Some(json!(true))
    );
    assert_eq!(
        on(&home.dev(&format!("{prefix} heater decline"))),
        Some(json!(false))
    );
    assert_eq!(
        on(&home.dev(&format!("{prefix} heater slow"))),
        Some(json!(false))
    );

    // Refusals.
    assert_refused(r, "unexposed", "not shared");
    assert!(home
        .dev(&format!("{prefix} hidden heater"))
        .requests()
        .is_empty());
    assert_refused(r, "ambiguous", "matches 5 devices");
    assert_eq!(
        r["ambiguous"]["structured"]["candidates"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    assert_refused(r, "forbidden", "would move money");
    assert_refused(r, "smuggled_confirm", "does not take 'confirm'");

    // 2026-07-28: the round trip by hand.
    if mode != "legacy" {
        assert_eq!(r["mrtr_first"]["type"], json!("InputRequiredResult"));
        assert_refused(r, "mrtr_tampered", "could not be verified");
        assert_refused(r, "mrtr_other_args", "could not be verified");
        assert_ok(r, "mrtr_ok");
        assert_refused(r, "mrtr_replay", "already used");
        assert_eq!(
            on(&home.dev(&format!("{prefix} heater replay"))),
            Some(json!(true))
        );
        assert_eq!(
            on(&home.dev(&format!("{prefix} heater accept"))),
            Some(json!(true))
        );
    }

    // No elicitation: pending approval, settled by `mijia approve`.
    assert_refused(r, "approval_pending", "mijia approve");
    assert_eq!(
        r["approval_pending"]["structured"]["status"],
        json!("approval_required")
    );
    assert_refused(r, "approval_early", "still waiting");
    assert_eq!(r["approve_cli"]["code"], json!(0), "{}", r["approve_cli"]);
    assert_refused(r, "approval_wrong_args", "different call");
    assert_ok(r, "approval_retry");
    assert_refused(r, "approval_reuse", "already used");
    assert_eq!(
        on(&home.dev(&format!("{prefix} heater approve"))),
        Some(json!(true))
    );

    // The audit log saw every call, with the era.
    let audit = home.audit();
    let of = |dev: &str| -> Vec<Decision> {
        audit
            .iter()
            .filter(|a| a.device.as_deref() == Some(&format!("{prefix} {dev}")))
            .map(|a| a.decision)
            .collect()
    };
    assert!(
        audit.iter().all(|a| a.era.as_deref() == Some(version)),
        "era recorded"
    );
    assert!(audit.iter().all(|a| a.client.is_some()), "client recorded");
    assert_eq!(
        of("lamp")
            .iter()
            .filter(|d| **d == Decision::Granted)
            .count(),
        1
    );
    assert!(of("heater accept").contains(&Decision::Confirmed));
    assert_eq!(
        of("heater decline")
            .iter()
            .filter(|d| **d == Decision::Declined)
            .count(),
        1
    );
    assert!(of("heater decline").contains(&Decision::Cancelled));
    assert!(of("heater slow").contains(&Decision::Expired));
    assert_eq!(of("hidden heater"), [Decision::Denied]);
    let approve = of("heater approve");
    assert!(
        approve.contains(&Decision::ApprovalPending)
            && approve.contains(&Decision::ApprovedOutOfBand),
        "{approve:?}"
    );
    assert!(audit
        .iter()
        .any(|a| a.decision == Decision::Forbidden && a.tool == "make_payment"));
    let heater_accept = audit
        .iter()
        .find(|a| a.decision == Decision::Confirmed)
        .unwrap();
    assert_eq!(
        heater_accept.before.as_ref().unwrap()["heater.on"],
        json!(false)
    );
    assert_eq!(
        heater_accept.after.as_ref().unwrap()["heater.on"],
        json!(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_python_client_handshake_era_stdio() {
    let home = era_home(10, "L").await;
    let r = run_scenario(&home, "legacy", "L", None).await;
    check_era(&home, &r, "legacy", "L").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_python_client_stateless_era_stdio() {
    let home = era_home(11, "M").await;
    let r = run_scenario(&home, "auto", "M", None).await;
    check_era(&home, &r, "auto", "M").await;
}

// ------------------------------------------------------------------ HTTP

/// `mijia mcp --http 127.0.0.1:0`, its address and token.
struct HttpServer {
    child: tokio::process::Child,
    addr: SocketAddr,
    token: String,
}

async fn http_server(home: &Home, extra: &[&str]) -> HttpServer {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mijia"))
        .args(["mcp", "--http", "127.0.0.1:0"])
        .args(extra)
        .env("MIJIA_HOME", home.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start mijia mcp --http: {e}"));
    let stderr = child.stderr.take().expect("stderr");
    // Keep draining stderr for the server's lifetime (a closed pipe would
    // make its logging fail), and hand the lines over.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = rx.recv().await {
            let found = line
                .split("listening on http://")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches("/mcp").parse::<SocketAddr>().ok());
            seen.push(line);
            if found.is_some() {
                return found;
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("no listening line from mijia mcp --http: {seen:?}"));
    let token = std::fs::read_to_string(home.paths.state_dir.join("mcp-http-token"))
        .unwrap_or_else(|e| panic!("token file: {e}"))
        .trim()
        .to_string();
    assert!(
        seen.iter().any(|l| l.contains(&token)),
        "a new token is printed once to stderr: {seen:?}"
    );
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(home.paths.state_dir.join("mcp-http-token"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);
    HttpServer { child, addr, token }
}

/// POSTs an `initialize` with these extra headers; returns the status.
async fn post_status(addr: SocketAddr, headers: &[(&str, &str)]) -> u16 {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
    })
    .to_string();
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("reply in time")
        .expect("read");
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_origin_and_bearer_token() {
    let home = home(12, &[("lamp", LAMP, "Office", true)]).await;
    let server = http_server(&home, &["--allow-origin", "http://localhost:5173"]).await;
    let bearer = format!("Bearer {}", server.token);
    assert_eq!(post_status(server.addr, &[]).await, 401, "no token");
    assert_eq!(
        post_status(server.addr, &[("Authorization", "Bearer nope")]).await,
        401,
        "wrong token"
    );
    assert_eq!(
        post_status(
            server.addr,
            &[
                ("Authorization", &bearer),
                ("Origin", "http://evil.example.com")
            ]
        )
        .await,
        403,
        "foreign Origin"
    );
    assert_eq!(
        post_status(
            server.addr,
            &[
                ("Authorization", &bearer),
                ("Origin", "http://localhost:5174")
            ]
        )
        .await,
        403,
        "another port is another origin"
    );
    assert_eq!(
        post_status(
            server.addr,
            &[
                ("Authorization", &bearer),
                ("Origin", "http://localhost:5173")
            ]
        )
        .await,
        200
    );
    assert_eq!(
        post_status(server.addr, &[("Authorization", &bearer)]).await,
        200,
        "no Origin (not a browser)"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_python_client_over_http_both_eras() {
    for (net, mode, prefix) in [(13, "legacy", "L"), (14, "auto", "M")] {
        let home = era_home(net, prefix).await;
        let mut server = http_server(&home, &[]).await;
        let url = format!("http://{}/mcp", server.addr);
        let r = run_scenario(&home, mode, prefix, Some((&url, &server.token))).await;
        check_era(&home, &r, mode, prefix).await;
        let _ = server.child.kill().await;
    }
}

// ---------------------------------------------------------------- scenes

/// A small MCP client written here: `mijia mcp` over stdio, JSON lines,
/// the handshake era. It answers `elicitation/create` with `answer` (when
/// it declared elicitation) and counts the questions.
struct StdioClient {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    next_id: u64,
}

impl StdioClient {
    async fn start(home: &Home, elicitation: bool) -> StdioClient {
        StdioClient::start_with(home, elicitation, &[], &[]).await
    }

    /// `mijia ARGS… mcp` with extra environment variables.
    async fn start_with(
        home: &Home,
        elicitation: bool,
        args: &[&str],
        env: &[(&str, String)],
    ) -> StdioClient {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mijia"))
            .args(args)
            .arg("mcp")
            .env("MIJIA_HOME", home.dir.path())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("MIJIA_CLOUD_STS_URL")
            .env_remove("MIJIA_CLOUD_REGION")
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mijia mcp: {e}"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut c = StdioClient {
            child,
            stdin,
            lines: tokio::io::BufReader::new(stdout).lines(),
            next_id: 1,
        };
        let caps = if elicitation {
            json!({"elicitation": {"form": {}}})
        } else {
            json!({})
        };
        let (init, _) = c
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": caps,
                    "clientInfo": {"name": "scene-test", "version": "1"}
                }),
                &|_| json!({"action": "decline"}),
            )
            .await;
        assert_eq!(init["protocolVersion"], json!("2025-11-25"), "{init}");
        c.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        c
    }

    async fn send(&mut self, v: &Value) {
        let mut line = v.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("write to mijia mcp: {e}"));
        self.stdin.flush().await.expect("flush");
    }

    /// Sends a request and waits for its response (the `result`; an
    /// `error` fails the test), answering the server's requests meanwhile.
    /// Returns the result and how many confirmations were asked.
    async fn request(
        &mut self,
        method: &str,
        params: Value,
        answer: &dyn Fn(&Value) -> Value,
    ) -> (Value, usize) {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let mut asked = 0;
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method} within 30 s"))
                .unwrap_or_else(|e| panic!("read from mijia mcp: {e}"))
                .unwrap_or_else(|| panic!("mijia mcp closed stdout during {method}"));
            let msg: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carries only JSON-RPC ({e}): {line}"));
            match (msg.get("method").and_then(Value::as_str), msg.get("id")) {
                (Some("elicitation/create"), Some(rid)) => {
                    asked += 1;
                    let result = answer(&msg["params"]);
                    self.send(&json!({"jsonrpc": "2.0", "id": rid, "result": result}))
                        .await;
                }
                (Some(other), Some(rid)) => {
                    let err = json!({"code": -32601, "message": format!("no {other} here")});
                    self.send(&json!({"jsonrpc": "2.0", "id": rid, "error": err}))
                        .await;
                }
                (Some(_), None) => {} // a notification
                (None, Some(rid)) if *rid == json!(id) => {
                    assert!(msg.get("error").is_none(), "{method} failed: {msg}");
                    return (msg["result"].clone(), asked);
                }
                _ => panic!("unexpected message: {msg}"),
            }
        }
    }

    async fn call(
        &mut self,
        tool: &str,
        args: Value,
        answer: &dyn Fn(&Value) -> Value,
    ) -> (Value, usize) {
        self.request(
            "tools/call",
            json!({"name": tool, "arguments": args}),
            answer,
        )
        .await
    }

    async fn close(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

fn accept(_: &Value) -> Value {
    json!({"action": "accept", "content": {"confirm": true}})
}

fn decline(_: &Value) -> Value {
    json!({"action": "decline"})
}

const SCENE_FILE: &str = r#"
[[scene]]
name = "evening"
description = "Lamp at 30 %, if the heater is off"

[[scene.step]]
name = "lamp"
set = { device = "scene lamp", values = { "light.on" = true, "light.brightness" = 30 } }

[[scene.step]]
guard = { device = "scene heater", property = "heater.on", op = "==", value = false }

[[scene]]
name = "lamp-check"

[[scene.step]]
set = { device = "scene lamp", values = { "light.brightness" = 45 } }

[[scene.step]]
wait = { device = "scene lamp", property = "light.brightness", op = "==", value = 99, timeout = "1s" }

[[scene]]
name = "warm-up"

[[scene.step]]
parallel = [
  { set = { device = "scene lamp", values = { "light.on" = true } } },
  { set = { device = "scene heater", values = { "heater.on" = true } } },
]

[[scene]]
name = "unshared"

[[scene.step]]
set = { device = "scene lamp", values = { "light.on" = false } }
"#;

/// A home with a lamp, a heater and the scenes above, all shared but
/// `unshared`.
async fn scene_home(net: u8) -> Home {
    let home = home(
        net,
        &[
            ("scene lamp", LAMP, "Office", true),
            ("scene heater", HEATER, "Bedroom", true),
        ],
    )
    .await;
    std::fs::write(home.paths.config_dir.join("scenes.toml"), SCENE_FILE)
        .unwrap_or_else(|e| panic!("scenes file: {e}"));
    Policy::update(&home.paths, |p| {
        for s in ["evening", "lamp-check", "warm-up"] {
            p.expose_scene(s);
        }
        Ok(())
    })
    .unwrap();
    home
}

fn scene_decisions(home: &Home, scene: &str) -> Vec<Decision> {
    home.audit()
        .into_iter()
        .filter(|r| r.tool == "run_scene" && r.scene.as_deref() == Some(scene))
        .map(|r| r.decision)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_lists_run_scene_and_runs_a_control_scene() {
    let home = scene_home(20).await;
    let lamp = home.dev("scene lamp");
    let heater = home.dev("scene heater");
    let mut c = StdioClient::start(&home, true).await;

    let (list, _) = c.request("tools/list", json!({}), &decline).await;
    let tools = list["tools"].as_array().cloned().unwrap_or_default();
    let t = tools
        .iter()
        .find(|t| t["name"] == json!("run_scene"))
        .unwrap_or_else(|| panic!("run_scene is listed once a scene is shared: {list}"));
    assert_eq!(t["inputSchema"]["additionalProperties"], json!(false));
    assert_eq!(
        t["inputSchema"]["required"],
        json!(["scene", "dry_run", "approval_id"])
    );
    assert!(t["outputSchema"]["properties"]["steps"].is_object(), "{t}");
    assert_eq!(t["annotations"]["readOnlyHint"], json!(false));
    assert_eq!(t["annotations"]["destructiveHint"], json!(true));
    assert_eq!(t["annotations"]["openWorldHint"], json!(false));

    // The overview names the shared scenes, not the others.
    let (r, _) = c
        .call("home_overview", json!({"room": null}), &decline)
        .await;
    let scenes: Vec<&str> = r["structuredContent"]["scenes"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(scenes, ["evening", "lamp-check", "warm-up"], "{r}");

    // A dry run sends nothing and asks nobody.
    let sent = || lamp.requests().len() + heater.requests().len();
    let before = sent();
    let (r, asked) = c
        .call(
            "run_scene",
            json!({"scene": "evening", "dry_run": true}),
            &accept,
        )
        .await;
    assert_eq!(r["isError"], json!(false), "{r}");
    assert_eq!(asked, 0);
    assert_eq!(
        r["structuredContent"]["steps"][0]["outcome"],
        json!("checked")
    );
    assert_eq!(sent(), before, "a dry run sends nothing");

    // Control tier: the user grants the scene once, it runs, the lamp changes.
    let (r, asked) = c
        .call(
            "run_scene",
            json!({"scene": "evening", "dry_run": null, "approval_id": null}),
            &accept,
        )
        .await;
    assert_eq!(r["isError"], json!(false), "{r}");
    assert_eq!(asked, 1, "a control-tier scene asks for a grant once");
    let s = &r["structuredContent"];
    assert_eq!(s["tier"], json!("control"), "{s}");
    assert_eq!(s["decision"], json!("granted"), "{s}");
    assert_eq!(s["outcome"], json!("ok"), "{s}");
    let outcomes: Vec<&Value> = s["steps"]
        .as_array()
        .map(|a| a.iter().map(|x| &x["outcome"]).collect())
        .unwrap_or_default();
    assert_eq!(outcomes, [&json!("ok"), &json!("ok")], "{s}");
    assert_eq!(lamp.value(2, 1), Some(json!(true)));
    assert_eq!(lamp.value(2, 2), Some(json!(30)));
    assert_eq!(on(&heater), Some(json!(false)), "the guard only reads");

    // The grant covers the next run: nobody is asked.
    lamp.set_value(2, 2, json!(80))
        .unwrap_or_else(|e| panic!("set: {e}"));
    let (r, asked) = c
        .call("run_scene", json!({"scene": "evening"}), &accept)
        .await;
    assert_eq!(r["isError"], json!(false), "{r}");
    assert_eq!(asked, 0);
    assert_eq!(r["structuredContent"]["decision"], json!("allowed"));
    assert_eq!(lamp.value(2, 2), Some(json!(30)));

    // A failing step: isError, naming the step; the step before stays done.
    let (r, asked) = c
        .call("run_scene", json!({"scene": "lamp-check"}), &accept)
        .await;
    assert_eq!(asked, 1, "another scene, another grant");
    assert_eq!(r["isError"], json!(true), "{r}");
    assert_eq!(r["structuredContent"]["failed_step"], json!("2"), "{r}");
    assert_eq!(r["structuredContent"]["outcome"], json!("failed"));
    let text = r["content"][0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("step 2") && text.contains("not met"),
        "{text}"
    );
    assert_eq!(lamp.value(2, 2), Some(json!(45)));

    // Not shared by name: refused, and the lamp is left alone.
    let (r, asked) = c
        .call("run_scene", json!({"scene": "unshared"}), &accept)
        .await;
    assert_eq!(r["isError"], json!(true), "{r}");
    assert_eq!(asked, 0);
    assert_eq!(lamp.value(2, 1), Some(json!(true)));
    c.close().await;

    assert_eq!(
        scene_decisions(&home, "evening"),
        [Decision::Allowed, Decision::Granted, Decision::Allowed]
    );
    assert_eq!(scene_decisions(&home, "lamp-check"), [Decision::Granted]);
    assert_eq!(scene_decisions(&home, "unshared"), [Decision::Denied]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_sensitive_scene_needs_the_user_every_time() {
    let home = scene_home(21).await;
    let lamp = home.dev("scene lamp");
    let heater = home.dev("scene heater");

    // A client that can ask: the user says no, nothing is sent.
    let mut c = StdioClient::start(&home, true).await;
    let (r, asked) = c
        .call("run_scene", json!({"scene": "warm-up"}), &decline)
        .await;
    assert_eq!(asked, 1);
    assert_eq!(r["isError"], json!(true), "{r}");
    assert!(
        lamp.requests().is_empty() && heater.requests().is_empty(),
        "nothing reaches a device before the user agrees"
    );
    c.close().await;

    // A client that cannot ask: a pending approval; nothing runs until the
    // user approves it out of band, then exactly once.
    let mut c = StdioClient::start(&home, false).await;
    let (r, _) = c
        .call("run_scene", json!({"scene": "warm-up"}), &accept)
        .await;
    assert_eq!(r["isError"], json!(true), "{r}");
    let s = &r["structuredContent"];
    assert_eq!(s["status"], json!("approval_required"), "{s}");
    assert_eq!(s["tier"], json!("sensitive"), "{s}");
    let id = s["approval_id"].as_str().unwrap_or_default().to_string();
    assert_eq!(id.len(), 8, "{s}");
    let retry = json!({"scene": "warm-up", "dry_run": null, "approval_id": id});
    let (r, _) = c.call("run_scene", retry.clone(), &accept).await;
    assert_eq!(r["isError"], json!(true), "{r}");
    assert_eq!(on(&heater), Some(json!(false)));
    assert!(heater.requests().is_empty());

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mijia"))
        .args(["approve", &id])
        .env("MIJIA_HOME", home.dir.path())
        .output()
        .await
        .unwrap_or_else(|e| panic!("mijia approve: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (r, _) = c.call("run_scene", retry.clone(), &accept).await;
    assert_eq!(r["isError"], json!(false), "{r}");
    assert_eq!(
        r["structuredContent"]["decision"],
        json!("approved_out_of_band")
    );
    assert_eq!(on(&heater), Some(json!(true)));
    assert_eq!(lamp.value(2, 1), Some(json!(true)));
    let (r, _) = c.call("run_scene", retry, &accept).await;
    assert_eq!(r["isError"], json!(true), "an approval runs one call: {r}");
    c.close().await;

    assert_eq!(
        scene_decisions(&home, "warm-up"),
        [
            Decision::Declined,
            Decision::ApprovalPending,
            Decision::ApprovalPending,
            Decision::ApprovedOutOfBand,
            Decision::Rejected,
        ]
    );
    assert!(
        grants::list(&home.paths).unwrap().is_empty(),
        "sensitive scenes never leave grants behind"
    );
}

// ------------------------------------------------------------ cloud route

/// `mijia mcp` reaches a device the LAN cannot through the (simulated)
/// cloud once the user is logged in, with the CLI's `auto` rules, and says
/// which route it used; without a session the local error stands and
/// names `mijia cloud login`; `--via local` never uses the cloud.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_falls_back_to_the_cloud_when_the_lan_cannot_reach_a_device() {
    use fake_device::cloud::{AccountConfig, DeviceCloudConfig, FakeCloud, FakeCloudConfig};

    let net = 30;
    let home = home(net, &[("cloud lamp", LAMP, "Office", true)]).await;
    let mut account = AccountConfig::new("bob@example.com", "hunter2 hunter2", 1_822_000_001);
    account.region = Some("de".into());
    let mut cfg = FakeCloudConfig {
        accounts: vec![account],
        ..FakeCloudConfig::default()
    };
    cfg.devices.insert(
        "cloud lamp".into(),
        DeviceCloudConfig {
            region: Some("de".into()),
            ..DeviceCloudConfig::default()
        },
    );
    let cloud = FakeCloud::start(cfg, home.fleet.handles().to_vec())
        .await
        .unwrap_or_else(|e| panic!("fake cloud: {e}"));
    let env = vec![
        ("MIJIA_CLOUD_ACCOUNT_URL", cloud.base_url()),
        ("MIJIA_CLOUD_API_URL", cloud.api_template()),
    ];
    let api_calls = || cloud.requests().iter().filter(|r| r.host == "api").count();
    // The registered address now points where nothing listens.
    Registry::update(&home.paths, |reg| {
        let e = reg.get_mut("cloud lamp")?;
        e.ip = ip(net, 250).into();
        Ok(())
    })
    .unwrap_or_else(|e| panic!("registry: {e}"));
    let lamp = home.dev("cloud lamp");
    lamp.set_value(2, 1, json!(false))
        .unwrap_or_else(|e| panic!("lamp: {e}"));
    lamp.set_value(2, 2, json!(42))
        .unwrap_or_else(|e| panic!("lamp: {e}"));
    let quick = ["--timeout", "0.3", "--retries", "0"];
    let state_args = json!({"device": "cloud lamp", "room": null, "properties": null});

    // No session: the local error stands, with the way to enable the cloud.
    let mut c = StdioClient::start_with(&home, true, &quick, &env).await;
    let (r, _) = c
        .call("get_device_state", state_args.clone(), &accept)
        .await;
    assert_eq!(r["isError"], json!(true), "{r}");
    let text = r["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("did not answer"), "{text}");
    assert!(text.contains("mijia cloud login"), "{text}");
    c.close().await;
    assert_eq!(api_calls(), 0, "no session, no cloud traffic");

    // Log in (the user's step, in the CLI).
    let mut login = tokio::process::Command::new(env!("CARGO_BIN_EXE_mijia"))
        .args([
            "cloud",
            "login",
            "--user",
            "bob@example.com",
            "--password-stdin",
            "--region",
            "de",
        ])
        .env("MIJIA_HOME", home.dir.path())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("MIJIA_CLOUD_STS_URL")
        .env_remove("MIJIA_CLOUD_REGION")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("mijia cloud login: {e}"));
    if let Some(mut stdin) = login.stdin.take() {
        stdin
            .write_all(b"hunter2 hunter2\n")
            .await
            .unwrap_or_else(|e| panic!("password: {e}"));
    }
    let out = tokio::time::timeout(Duration::from_secs(60), login.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("login did not finish"))
        .unwrap_or_else(|e| panic!("login: {e}"));
    assert!(
        out.status.success(),
        "login: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A session exists: reads and writes go through the cloud.
    let mut c = StdioClient::start_with(&home, true, &quick, &env).await;
    let (r, _) = c
        .call("get_device_state", state_args.clone(), &accept)
        .await;
    assert_ne!(r["isError"], json!(true), "{r}");
    let s = &r["structuredContent"];
    assert_eq!(s["route"], json!("cloud"), "{r}");
    assert_eq!(s["online"], json!(true), "{r}");
    let brightness = s["properties"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == json!("light.brightness")))
        .map(|p| p["value"].clone());
    assert_eq!(brightness, Some(json!(42)), "{r}");
    assert!(api_calls() > 0, "the cloud was asked");

    let (r, asked) = c
        .call(
            "turn_on",
            json!({"device": "cloud lamp", "room": null, "approval_id": null}),
            &accept,
        )
        .await;
    assert_eq!(asked, 1, "the grant is asked before the write: {r}");
    assert_ne!(r["isError"], json!(true), "{r}");
    let s = &r["structuredContent"];
    assert_eq!(s["route"], json!("cloud"), "{r}");
    assert_eq!(s["verified"], json!(true), "{r}");
    assert_eq!(on(&lamp), Some(json!(true)), "the lamp is on");
    let text = r["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("Xiaomi cloud"), "{text}");

    // home_overview reads it through the cloud as well.
    let (r, _) = c
        .call("home_overview", json!({"room": null}), &accept)
        .await;
    let d = &r["structuredContent"]["devices"][0];
    assert_eq!(d["online"], json!(true), "{r}");
    assert_eq!(d["route"], json!("cloud"), "{r}");
    c.close().await;

    let routes: Vec<Option<String>> = home
        .audit()
        .into_iter()
        .filter(|a| a.tool == "turn_on" || a.tool == "get_device_state")
        .map(|a| a.route)
        .collect();
    assert_eq!(
        routes,
        vec![None, Some("cloud".into()), Some("cloud".into())],
        "the audit log names the route"
    );

    // `--via local`: the server keeps to the LAN even with a session.
    let calls = api_calls();
    let mut c = StdioClient::start_with(
        &home,
        true,
        &["--via", "local", "--timeout", "0.3", "--retries", "0"],
        &env,
    )
    .await;
    let (r, _) = c.call("get_device_state", state_args, &accept).await;
    assert_eq!(r["isError"], json!(true), "{r}");
    c.close().await;
    assert_eq!(api_calls(), calls, "--via local sends nothing to the cloud");
}
