//! Devices by name: the registry through the CLI (add with model
//! detection, list, rename, set-room, remove, persistence), `status`,
//! `get`, `set`, `action` and `raw` by name with values checked before any
//! packet, rooms and whole-home polls with offline devices, legacy models
//! by name, and `spec`.
//!
//! Each test has its own `127.61.<net>.0/24` block (nets 40–49).

use std::time::{Duration, Instant};

use fake_device::{DeviceConfig, Faults};
use mijia::home::{DeviceEntry, Paths, Registry};
use serde_json::{json, Value};

use crate::common::{self, device, Harness, Run};

const LIGHT: &str = "yeelink.light.color1";
const PURIFIER: &str = "zhimi.airpurifier.mb3";
const MONO: &str = "yeelink.light.mono1";
const PLUG: &str = "chuangmi.plug.m1";
const AC: &str = "lumi.acpartner.mcn02";

/// `mijia device add NAME --ip … --token … [--room R]`, model detected.
async fn add(h: &Harness, name: &str, room: Option<&str>) -> Run {
    add_as(h, name, name, room).await
}

/// Adds fleet device `dev` under `name`.
async fn add_as(h: &Harness, dev: &str, name: &str, room: Option<&str>) -> Run {
    let info = h.dev(dev).info();
    let mut args = vec![
        "device".to_string(),
        "add".into(),
        name.into(),
        "--ip".into(),
        info.addr.ip().to_string(),
        "--token".into(),
        info.token.reveal(),
    ];
    if let Some(r) = room {
        args.extend(["--room".into(), r.to_string()]);
    }
    h.run(&args).await
}

async fn home(devices: Vec<DeviceConfig>, rooms: &[(&str, &str)]) -> Harness {
    let h = common::start(devices).await;
    for info in h.fleet.devices() {
        let room = rooms.iter().find(|(n, _)| *n == info.name).map(|(_, r)| *r);
        add(&h, &info.name, room).await.expect_code(0);
    }
    h
}

fn err_line(run: &Run) -> &str {
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    run.stderr.trim_end()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_crud_through_the_cli_persists_across_runs() {
    let h = common::start(vec![device("lamp", LIGHT, 40, 2)]).await;
    let info = h.dev("lamp").info();
    let token = info.token.reveal();

    let run = add(&h, "lamp", Some("Kitchen")).await;
    run.expect_code(0);
    assert!(run.stdout.contains(LIGHT), "{}", run.stdout);
    assert!(run.stdout.contains("asked the device"), "{}", run.stdout);
    assert!(run.stdout.contains(&info.did.to_string()), "{}", run.stdout);

    // Written to disk with the detected model and did, mode 0600.
    let paths = Paths::at(h.home.path());
    let reg = Registry::load(&paths).unwrap_or_else(|e| panic!("{e}"));
    let e = reg.get("LAMP").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.model.as_deref(), Some(LIGHT));
    assert_eq!(e.did, Some(info.did));
    assert_eq!(e.room.as_deref(), Some("Kitchen"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(paths.devices_file())
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
    }

    // A second run sees it; the token is not shown.
    let run = h.run(&["device", "list"]).await;
    run.expect_code(0);
    for want in ["lamp", "Kitchen", LIGHT, "127.61.40.2", "s ago"] {
        assert!(run.stdout.contains(want), "{want}: {}", run.stdout);
    }
    assert!(!run.stdout.contains(&token), "token leaked: {}", run.stdout);
    let run = h.run(&["device", "list", "--show-secrets"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains(&token), "{}", run.stdout);
    let run = h.run(&["--json", "device", "list"]).await;
    run.expect_code(0);
    let doc = run.json();
    assert_eq!(doc["devices"][0]["name"], json!("lamp"));
    assert_eq!(doc["devices"][0]["did"], json!(info.did.to_string()));
    assert!(doc["devices"][0].get("token").is_none());
    assert!(doc["devices"][0]["last_seen"].is_u64());

    // Names are unique, case-insensitively; checked before any packet.
    h.dev("lamp").clear_requests();
    let run = add_as(&h, "lamp", "LAMP", None).await;
    run.expect_code(2);
    assert!(err_line(&run).contains("already exists"), "{}", run.stderr);
    let run = add_as(&h, "lamp", "2lamp", None).await;
    run.expect_code(2);
    assert!(run.stderr.contains("start with a letter"), "{}", run.stderr);
    assert!(h.dev("lamp").requests().is_empty());

    // Rename, room, remove; each visible to the next run.
    h.run(&["device", "rename", "lamp", "desk-lamp"])
        .await
        .expect_code(0);
    h.run(&["device", "set-room", "desk-lamp", "Office"])
        .await
        .expect_code(0);
    let run = h.run(&["device", "list"]).await;
    assert!(
        run.stdout.contains("desk-lamp") && run.stdout.contains("Office"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("Kitchen"), "{}", run.stdout);
    h.run(&["status", "desk-lamp"]).await.expect_code(0);

    let run = h.run(&["get", "desk-lmap", "light.on"]).await;
    run.expect_code(2);
    let msg = err_line(&run);
    assert!(
        msg.contains("no device named 'desk-lmap'") && msg.contains("did you mean 'desk-lamp'"),
        "{msg}"
    );
    assert!(msg.contains("mijia device list"), "{msg}");

    let run = h.run(&["device", "remove", "Desk-Lamp"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("Removed 'desk-lamp'"), "{}", run.stdout);
    let run = h.run(&["--json", "device", "list"]).await;
    assert_eq!(run.json()["devices"], json!([]));
    let run = h.run(&["device", "remove", "desk-lamp"]).await;
    run.expect_code(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_get_set_and_action_by_name() {
    let h = home(
        vec![
            device("lamp", LIGHT, 41, 2),
            device("purifier", PURIFIER, 41, 3),
            device("ac", AC, 41, 4),
        ],
        &[("lamp", "Kitchen")],
    )
    .await;
    let lamp = h.dev("lamp");
    lamp.set_value(2, 2, json!(80))
        .unwrap_or_else(|e| panic!("{e}"));

    // Status: every readable property, in one table, with units.
    let run = h.run(&["status", "lamp"]).await;
    run.expect_code(0);
    for want in ["light.brightness", "80 %", "light.on", "rw"] {
        assert!(run.stdout.contains(want), "{want}: {}", run.stdout);
    }
    let batches: Vec<usize> = lamp
        .requests()
        .iter()
        .filter(|r| r.method == "get_properties")
        .map(|r| r.params.as_array().map_or(0, Vec::len))
        .collect();
    assert!(
        !batches.is_empty() && batches.iter().all(|n| *n > 1),
        "{batches:?}"
    );
    let run = h.run(&["--json", "status", "lamp"]).await;
    run.expect_code(0);
    let doc = run.json();
    assert_eq!(doc["ok"], json!(true));
    assert_eq!(doc["room"], json!("Kitchen"));
    let props = doc["properties"].as_array().cloned().unwrap_or_default();
    let b = props
        .iter()
        .find(|p| p["name"] == json!("light.brightness"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (b["value"].clone(), b["unit"].clone()),
        (json!(80), json!("%"))
    );

    // Set several in one request, with the read-back shown.
    lamp.clear_requests();
    let run = h
        .run(&["set", "lamp", "light.brightness=40", "light.on=off"])
        .await;
    run.expect_code(0);
    assert!(run.stdout.contains("40 %"), "{}", run.stdout);
    assert!(run.stdout.contains("off"), "{}", run.stdout);
    assert_eq!(lamp.value(2, 2), Some(json!(40)));
    assert_eq!(lamp.value(2, 1), Some(json!(false)));
    let sets = lamp
        .requests()
        .iter()
        .filter(|r| r.method == "set_properties")
        .count();
    assert_eq!(sets, 1, "one request for both");
    h.run(&["set", "lamp", "light.on=on"]).await.expect_code(0);
    assert_eq!(lamp.value(2, 1), Some(json!(true)));

    // Get by name, short name or id.
    let run = h
        .run(&["--json", "get", "lamp", "light.brightness", "on", "2.2"])
        .await;
    run.expect_code(0);
    let doc = run.json();
    assert_eq!(doc[0]["value"], json!(40));
    assert_eq!(doc[0]["display"], json!("40 %"));
    assert_eq!(doc[1]["value"], json!(true));
    assert_eq!(doc[1]["display"], json!("on"));

    // Validation errors: exit 2, one line naming the problem, nothing sent.
    lamp.clear_requests();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["set", "lamp", "light.brightness=500"],
            &["between 1 and 100"],
        ),
        (
            &["get", "lamp", "light.brigthness"],
            &["did you mean", "light.brightness"],
        ),
        (&["set", "lamp", "light.on=maybe"], &["on/off"]),
        (&["action", "lamp", "toggle", "1"], &["toggle"]),
    ];
    for (args, wants) in cases {
        let run = h.run(args).await;
        run.expect_code(2);
        let msg = err_line(&run);
        for want in *wants {
            assert!(msg.contains(want), "{args:?}: {msg}");
        }
        assert!(run.stdout.is_empty());
    }
    assert!(lamp.requests().is_empty(), "{:?}", lamp.requests());

    // Value-list entries by description.
    let run = h.run(&["set", "purifier", "mode=sleep"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("Sleep"), "{}", run.stdout);
    let run = h.run(&["--json", "get", "purifier", "mode"]).await;
    assert_eq!(run.json()[0]["display"], json!("1 (Sleep)"));
    let run = h.run(&["set", "purifier", "mode=turbo"]).await;
    run.expect_code(2);
    assert!(err_line(&run).contains("1 (Sleep)"), "{}", run.stderr);

    // Actions: by name, arguments by position or by name, checked.
    h.run(&["action", "lamp", "toggle"]).await.expect_code(0);
    assert_eq!(lamp.value(2, 1), Some(json!(false)));
    let ac = h.dev("ac");
    let run = h
        .run(&["action", "ac", "set-ac-model", "5", "7", "stateful"])
        .await;
    run.expect_code(0);
    assert_eq!(
        (ac.value(4, 4), ac.value(4, 5), ac.value(4, 6)),
        (Some(json!(5)), Some(json!(7)), Some(json!(1)))
    );
    let run = h
        .run(&[
            "action",
            "ac",
            "set-ac-model",
            "ac-type=0",
            "remote-id=9",
            "brand-id=3",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(
        (ac.value(4, 4), ac.value(4, 5), ac.value(4, 6)),
        (Some(json!(3)), Some(json!(9)), Some(json!(0)))
    );
    let run = h
        .run(&["action", "ac", "set-ac-model", "5", "7", "sideways"])
        .await;
    run.expect_code(2);
    assert!(
        err_line(&run).contains("0 (Stateless), 1 (Stateful)"),
        "{}",
        run.stderr
    );

    // Raw by name.
    let run = h.run(&["--json", "raw", "lamp", "miIO.info"]).await;
    run.expect_code(0);
    assert_eq!(run.json()["model"], json!(LIGHT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_models_by_name() {
    let h = home(
        vec![device("mono", MONO, 42, 2), device("plug", PLUG, 42, 3)],
        &[],
    )
    .await;
    let run = h.run(&["status", "mono"]).await;
    run.expect_code(0);
    assert!(
        run.stdout.contains("brightness") && run.stdout.contains("power"),
        "{}",
        run.stdout
    );
    let run = h.run(&["set", "mono", "power=on", "brightness=40"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("40 %"), "{}", run.stdout);
    let mono = h.dev("mono");
    assert_eq!(mono.legacy_value("power"), Some(json!("on")));
    let run = h
        .run(&["--json", "get", "mono", "brightness", "power"])
        .await;
    run.expect_code(0);
    let doc = run.json();
    assert_eq!(doc[0]["value"], json!(40));
    assert_eq!(doc[1]["display"], json!("on"));
    let run = h.run(&["set", "mono", "brightness=101"]).await;
    run.expect_code(2);
    assert!(
        err_line(&run).contains("between 1 and 100"),
        "{}",
        run.stderr
    );

    let run = h.run(&["status", "plug"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("°C"), "{}", run.stdout);
    h.run(&["set", "plug", "power=on"]).await.expect_code(0);
    assert_eq!(h.dev("plug").legacy_value("power"), Some(json!("on")));
    h.run(&["set", "plug", "power=off"]).await.expect_code(0);
    assert_eq!(h.dev("plug").legacy_value("power"), Some(json!("off")));
    // Everything else legacy goes through raw.
    let run = h
        .run(&["--json", "raw", "plug", "get_prop", r#"["power"]"#])
        .await;
    run.expect_code(0);
    assert_eq!(run.json(), json!(["off"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_the_whole_home_with_offline_devices() {
    const N: u8 = 30;
    let models = [LIGHT, PURIFIER, MONO, PLUG, "miaomiaoce.sensor_ht.t2"];
    let devices: Vec<DeviceConfig> = (0..N)
        .map(|i| {
            let mut d = device(
                &format!("dev-{i:02}"),
                models[usize::from(i) % models.len()],
                43,
                i + 2,
            );
            if i == 5 || i == 17 {
                d.faults = Faults {
                    offline: true,
                    ..Faults::default()
                };
            }
            d
        })
        .collect();
    let h = common::start(devices).await;
    // Register them directly (the CLI path is covered above).
    let paths = Paths::at(h.home.path());
    Registry::update(&paths, |r| {
        for (i, info) in h.fleet.devices().into_iter().enumerate() {
            let mut e = DeviceEntry::new(info.name, info.addr.ip(), info.token);
            e.model = Some(info.model);
            e.room = Some(if i % 3 == 0 { "Kitchen" } else { "Hall" }.into());
            r.add(e)?;
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));

    let started = Instant::now();
    let run = h
        .run(&["--timeout", "0.3", "--retries", "1", "status", "--all"])
        .await;
    let took = started.elapsed();
    run.expect_code(4);
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(
        run.stdout
            .contains("30 devices: 28 ok, 2 unreachable (dev-05, dev-17)"),
        "{}",
        run.stdout
    );
    for i in 0..N {
        assert!(run.stdout.contains(&format!("dev-{i:02}")), "dev-{i:02}");
    }
    assert!(run.stdout.contains("light.brightness"), "{}", run.stdout);
    let msg = err_line(&run);
    assert!(msg.contains("2 of 30 devices"), "{msg}");

    let run = h
        .run(&[
            "--json",
            "--timeout",
            "0.3",
            "--retries",
            "1",
            "status",
            "--all",
        ])
        .await;
    run.expect_code(4);
    let doc = run.json();
    let devices = doc["devices"].as_array().cloned().unwrap_or_default();
    assert_eq!(devices.len(), 30);
    let offline: Vec<&Value> = devices.iter().filter(|d| d["ok"] == json!(false)).collect();
    assert_eq!(offline.len(), 2);
    assert_eq!(offline[0]["name"], json!("dev-05"));
    assert_eq!(offline[0]["unreachable"], json!(true));
    assert!(devices
        .iter()
        .filter(|d| d["ok"] == json!(true))
        .all(|d| d["properties"].as_array().is_some_and(|p| !p.is_empty())));
    assert_eq!(doc["summary"]["ok"], json!(28));

    // One room: dev-00, 03, …, 27 (10 devices, none offline).
    let run = h.run(&["--json", "status", "--room", "kitchen"]).await;
    run.expect_code(0);
    let doc = run.json();
    assert_eq!(doc["devices"].as_array().map_or(0, Vec::len), 10);
    assert!(doc["devices"]
        .as_array()
        .is_some_and(|d| d.iter().all(|d| d["room"] == json!("Kitchen"))));
    let run = h.run(&["status", "--room", "Attic"]).await;
    run.expect_code(2);
    assert!(
        err_line(&run).contains("'Hall', 'Kitchen'"),
        "{}",
        run.stderr
    );

    // The poll recorded who was seen.
    let run = h.run(&["--json", "device", "list"]).await;
    let list = run.json();
    let seen = |name: &str| {
        list["devices"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["name"] == json!(name)))
            .map(|d| d["last_seen"].is_u64())
    };
    assert_eq!(seen("dev-00"), Some(true));
    assert_eq!(seen("dev-05"), Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_address_names_detect_the_model() {
    let h = common::start(vec![device("lamp", LIGHT, 44, 2)]).await;
    let run = h.on("lamp", &["set", "light.brightness=33"]).await;
    run.expect_code(0);
    assert_eq!(h.dev("lamp").value(2, 2), Some(json!(33)));
    // With --model nothing is asked and values are checked first.
    h.dev("lamp").clear_requests();
    let run = h
        .on("lamp", &["--model", LIGHT, "set", "light.brightness=0"])
        .await;
    run.expect_code(2);
    assert!(
        err_line(&run).contains("between 1 and 100"),
        "{}",
        run.stderr
    );
    assert!(h.dev("lamp").requests().is_empty());
    let run = h.on("lamp", &["--json", "status"]).await;
    run.expect_code(0);
    assert_eq!(run.json()["model"], json!(LIGHT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specs_show_import_and_list() {
    let h = common::empty().await;
    let run = h.run(&["spec", LIGHT]).await;
    run.expect_code(0);
    for want in [
        "Services",
        "light.brightness",
        "2.2",
        "uint8",
        "between 1 and 100",
        "%",
        "Actions",
        "toggle",
    ] {
        assert!(run.stdout.contains(want), "{want}: {}", run.stdout);
    }
    let run = h.run(&["spec", PURIFIER]).await;
    assert!(run.stdout.contains("1 (Sleep)"), "{}", run.stdout);
    let run = h.run(&["--json", "spec", MONO]).await;
    run.expect_code(0);
    assert_eq!(run.json()["protocol"], json!("legacy"));
    let run = h.run(&["spec", "acme.nothing.here"]).await;
    run.expect_code(2);
    assert!(err_line(&run).contains("spec import"), "{}", run.stderr);

    // A malformed document: the error names the file and the element.
    let bad = h.home.path().join("broken.light.x3.json");
    std::fs::write(
        &bad,
        r#"{"type":"urn:miot-spec-v2:device:light:0000A001:x-y:1","services":[{"iid":3,"type":"urn:miot-spec-v2:service:light:00007802","properties":[{"iid":2,"type":"urn:miot-spec-v2:property:on:00000006","access":[]}]}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bad_path = bad.display().to_string();
    let run = h.run(&["spec", "import", &bad_path]).await;
    run.expect_code(2);
    let msg = err_line(&run);
    assert!(
        msg.contains(&bad_path) && msg.contains("service 3 property 2: missing field `format`"),
        "{msg}"
    );

    // A good one is listed as the user's and used.
    let good = h.home.path().join("acme.light.x1.json");
    let doc = json!({
        "type": "urn:miot-spec-v2:device:light:0000A001:acme-x1:1",
        "description": "Acme lamp",
        "services": [{"iid": 2, "type": "urn:miot-spec-v2:service:light:00007802:acme-x1:1",
            "properties": [
                {"iid": 1, "type": "urn:miot-spec-v2:property:on:00000006:acme-x1:1",
                 "format": "bool", "access": ["read", "write"]}]}]
    });
    std::fs::write(&good, doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let run = h
        .run(&["spec", "import", &good.display().to_string()])
        .await;
    run.expect_code(0);
    assert!(run.stdout.contains("acme.light.x1"), "{}", run.stdout);
    let run = h.run(&["spec", "list"]).await;
    run.expect_code(0);
    assert!(
        run.stdout.contains("acme.light.x1") && run.stdout.contains("user"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(LIGHT), "{}", run.stdout);

    // A bad file dropped into the spec directory is named on stderr, once,
    // and does not stop the command.
    let dropped = h.home.path().join("config/specs/notjson.light.x4.json");
    std::fs::write(&dropped, "{ nope").unwrap_or_else(|e| panic!("{e}"));
    let run = h.run(&["spec", "acme.light.x1"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("light.on"), "{}", run.stdout);
    assert_eq!(
        run.stderr.matches("notjson.light.x4.json").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(run.stderr.starts_with("warning: "), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_registry_is_exit_5_and_left_alone() {
    let h = common::empty().await;
    let paths = Paths::at(h.home.path());
    std::fs::create_dir_all(&paths.config_dir).unwrap_or_else(|e| panic!("{e}"));
    let file = paths.devices_file();
    let text = "[[device]]\nname = \"lamp\"\nip = \"127.61.45.2\"\ntoken = 42\n";
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for args in [
        &["device", "list"][..],
        &["status", "lamp"],
        &["status", "--all"],
        &["get", "lamp", "light.on"],
        &[
            "device",
            "add",
            "plug",
            "--ip",
            "127.61.45.3",
            "--model",
            PLUG,
            "--token",
            "00112233445566778899aabbccddeeff",
        ],
    ] {
        let run = h.run(args).await;
        run.expect_code(5);
        let msg = err_line(&run);
        assert!(msg.contains(&file.display().to_string()), "{args:?}: {msg}");
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap_or_default(),
        text,
        "the file was changed"
    );
}
