//! `mijia watch`, `mijia wait` and `mijia scene` against a simulated
//! fleet on loopback: changes made by another process and by "hand"
//! (push), conditions met and timed out, scenes with parallel groups,
//! failing steps and dry runs that send nothing.

use std::process::Stdio;
use std::time::{Duration, Instant};

use fake_device::{DeviceConfig, Faults};
use mijia::home::{DeviceEntry, Paths, Registry};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::common::{self, device, Harness};

const LIGHT: &str = "yeelink.light.color1";
const PLUG: &str = "chuangmi.plug.212a01";
const SENSOR: &str = "miaomiaoce.sensor_ht.t2";

/// Starts the devices and registers each one by name, with its model.
async fn home(devices: Vec<DeviceConfig>) -> Harness {
    let h = common::start(devices.clone()).await;
    let paths = Paths::at(h.home.path());
    for d in &devices {
        let mut e = DeviceEntry::new(d.name.clone(), d.addr.ip(), d.effective_token());
        e.did = Some(d.did);
        e.port = Some(d.addr.port());
        e.model = Some(d.model.clone());
        Registry::update(&paths, |r| r.add(e)).unwrap_or_else(|err| panic!("registry: {err}"));
    }
    h
}

fn with_initial(mut d: DeviceConfig, values: &[(&str, Value)]) -> DeviceConfig {
    for (k, v) in values {
        d.initial.insert((*k).to_string(), v.clone());
    }
    d
}

fn write_scenes(h: &Harness, text: &str) {
    let dir = Paths::at(h.home.path()).config_dir;
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("scenes.toml"), text).unwrap_or_else(|e| panic!("{e}"));
}

/// A `mijia` process running in the background.
struct Background {
    child: tokio::process::Child,
    stderr: BufReader<tokio::process::ChildStderr>,
    stdout: BufReader<tokio::process::ChildStdout>,
}

fn spawn(h: &Harness, args: &[&str]) -> Background {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mijia"))
        .args(args)
        .env("MIJIA_HOME", h.home.path())
        .env_remove("MIJIA_IP")
        .env_remove("MIJIA_TOKEN")
        .env_remove("MIJIA_PORT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run mijia: {e}"));
    let stdout = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
    let stderr = BufReader::new(child.stderr.take().unwrap_or_else(|| panic!("no stderr")));
    Background {
        child,
        stderr,
        stdout,
    }
}

impl Background {
    /// Reads stderr until a line contains `text` (panics after `limit`).
    async fn stderr_until(&mut self, text: &str, limit: Duration) -> String {
        let mut seen = String::new();
        let found = tokio::time::timeout(limit, async {
            loop {
                let mut line = String::new();
                match self.stderr.read_line(&mut line).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {
                        seen.push_str(&line);
                        if line.contains(text) {
                            return true;
                        }
                    }
                }
            }
        })
        .await;
        assert!(
            matches!(found, Ok(true)),
            "no {text:?} on stderr; got:\n{seen}"
        );
        seen
    }

    /// Waits for the process to end; returns its code, stdout and the rest
    /// of stderr.
    async fn finish(mut self, limit: Duration) -> (i32, String, String) {
        let mut out = String::new();
        let mut err = String::new();
        let done = tokio::time::timeout(limit, async {
            let _ = self.stdout.read_to_string(&mut out).await;
            let _ = self.stderr.read_to_string(&mut err).await;
            self.child.wait().await
        })
        .await;
        match done {
            Ok(Ok(status)) => (status.code().unwrap_or(-1), out, err),
            _ => panic!(
                "mijia did not finish within {limit:?}; stdout so far:\n{out}\nstderr:\n{err}"
            ),
        }
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

fn requests(h: &Harness, name: &str, method: &str) -> usize {
    h.dev(name)
        .requests()
        .iter()
        .filter(|r| r.method == method)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_a_change_made_by_another_process() {
    let lamp = with_initial(device("lamp", LIGHT, 151, 2), &[("2.2", json!(40))]);
    let h = home(vec![lamp]).await;
    let mut watch = spawn(
        &h,
        &[
            "watch",
            "lamp",
            "light.brightness",
            "--no-push",
            "--interval",
            "200ms",
            "--count",
            "1",
            "--duration",
            "30s",
        ],
    );
    watch
        .stderr_until("watching lamp", Duration::from_secs(15))
        .await;

    let set = h.run(&["set", "lamp", "light.brightness=77"]).await;
    set.expect_code(0);

    let (code, out, err) = watch.finish(Duration::from_secs(15)).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let lines = json_lines(&out);
    let [line] = lines.as_slice() else {
        panic!("one change expected, got:\n{out}")
    };
    assert_eq!(line["device"], json!("lamp"));
    assert_eq!(line["property"], json!("light.brightness"));
    assert_eq!(
        (line["siid"].clone(), line["piid"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(line["old"], json!(40));
    assert_eq!(line["new"], json!(77));
    assert_eq!(line["source"], json!("poll"));
    let time = line["time"].as_str().unwrap_or_default();
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes().get(10) == Some(&b'T'),
        "time is not RFC 3339 UTC with milliseconds: {time:?}"
    );
    assert_eq!(requests(&h, "lamp", "miIO.sub"), 0, "--no-push subscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_gets_a_physical_change_by_push_without_waiting_for_a_poll() {
    let lamp = with_initial(device("lamp", LIGHT, 152, 2), &[("2.2", json!(40))]);
    let h = home(vec![lamp]).await;
    let dev = h.dev("lamp");
    let mut watch = spawn(
        &h,
        &[
            "watch",
            "lamp",
            "light.brightness",
            "light.on",
            "--interval",
            "60s",
            "--count",
            "1",
            "--duration",
            "30s",
        ],
    );
    watch
        .stderr_until("watching lamp", Duration::from_secs(15))
        .await;
    let subscribed = Instant::now();
    while dev.subscriber().is_none() {
        assert!(
            subscribed.elapsed() < Duration::from_secs(10),
            "watch never subscribed (miIO.sub)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pressed = Instant::now();
    dev.set_value(2, 2, json!(55))
        .unwrap_or_else(|e| panic!("{e}"));

    let (code, out, err) = watch.finish(Duration::from_secs(10)).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        pressed.elapsed() < Duration::from_secs(8),
        "the change took {:?}",
        pressed.elapsed()
    );
    let lines = json_lines(&out);
    let [line] = lines.as_slice() else {
        panic!("one change expected, got:\n{out}")
    };
    assert_eq!(line["property"], json!("light.brightness"));
    assert_eq!(
        (line["old"].clone(), line["new"].clone()),
        (json!(40), json!(55))
    );
    assert_eq!(line["source"], json!("push"));
    // Only the initial read: the change did not come from a poll.
    assert_eq!(requests(&h, "lamp", "get_properties"), 1);
    // The watch acknowledged the push (no resends pending) and unsubscribed.
    assert_eq!(dev.subscriber(), None, "no miIO.unsub on exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_succeeds_and_times_out() {
    let plug = with_initial(device("plug", PLUG, 153, 2), &[("2.1", json!(false))]);
    let sensor = with_initial(device("sensor", SENSOR, 153, 3), &[("2.1", json!(20.0))]);
    let h = home(vec![plug, sensor]).await;

    // Met later: the plug is switched on by hand while we wait.
    let waiting = spawn(
        &h,
        &["wait", "plug", "switch.on", "==", "on", "--timeout", "15"],
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    h.dev("plug")
        .set_value(2, 1, json!(true))
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = waiting.finish(Duration::from_secs(20)).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(out.trim(), "plug switch.on = on");

    // Met already, JSON output.
    let run = h
        .run(&[
            "--json",
            "wait",
            "plug",
            "switch.on",
            "eq",
            "true",
            "--timeout",
            "5",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(run.json()["value"], json!(true));

    // A numeric threshold on a float sensor.
    let waiting = spawn(
        &h,
        &[
            "wait",
            "sensor",
            "temperature",
            ">",
            "25",
            "--timeout",
            "15",
            "--interval",
            "300ms",
        ],
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.dev("sensor")
        .set_value(2, 1, json!(26.5))
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = waiting.finish(Duration::from_secs(20)).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("temperature = 26.5"), "{out}");

    // Not met in time: its own exit code, and a message with the last value.
    let started = Instant::now();
    let run = h
        .run(&["wait", "plug", "switch.on", "==", "off", "--timeout", "1.5"])
        .await;
    run.expect_code(7);
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(
        run.stderr
            .contains("plug switch.on == off not met within 1.5s (last value on)"),
        "{}",
        run.stderr
    );

    // Ordering a bool, or an unknown operator: usage errors, nothing sent.
    h.dev("plug").clear_requests();
    for bad in [["switch.on", "<", "1"], ["switch.on", "=~", "1"]] {
        let mut args = vec!["wait", "plug"];
        args.extend(bad);
        let run = h.run(&args).await;
        run.expect_code(2);
    }
    assert!(h.dev("plug").requests().is_empty());
}

const EVENING: &str = r#"
[[scene]]
name = "evening"
description = "Lamp on, then plug and toggle together"

[[scene.step]]
name = "lamp on"
set = { device = "lamp", values = { "light.on" = true, "light.brightness" = 30 } }

[[scene.step]]
parallel = [
  { set = { device = "plug", values = { "switch.on" = "on" } } },
  { action = { device = "lamp", name = "toggle" } },
  { wait = "300ms" },
]

[[scene.step]]
wait = { device = "plug", property = "switch.on", op = "==", value = true, timeout = "5s" }

[[scene.step]]
guard = { device = "sensor", property = "temperature", op = "<", value = 30 }

[[scene.step]]
set = { device = "lamp", values = { "light.brightness" = 60 } }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scene_with_a_parallel_group_runs() {
    let slow = Faults {
        delay_ms: 300,
        ..Faults::default()
    };
    let mut lamp = with_initial(device("lamp", LIGHT, 154, 2), &[("2.1", json!(false))]);
    lamp.faults = slow.clone();
    let mut plug = with_initial(device("plug", PLUG, 154, 3), &[("2.1", json!(false))]);
    plug.faults = slow;
    let sensor = with_initial(device("sensor", SENSOR, 154, 4), &[("2.1", json!(21.5))]);
    let h = home(vec![lamp, plug, sensor]).await;
    write_scenes(&h, EVENING);

    let list = h.run(&["scene", "list"]).await;
    list.expect_code(0);
    assert!(
        list.stdout.contains("evening") && list.stdout.contains("lamp, plug, sensor"),
        "{}",
        list.stdout
    );
    let show = h.run(&["scene", "show", "evening"]).await;
    show.expect_code(0);
    assert!(
        show.stdout.contains("2.1: set plug switch.on=on"),
        "{}",
        show.stdout
    );

    let run = h.run(&["--json", "scene", "run", "evening"]).await;
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["outcome"], json!("ok"));
    let steps = report["steps"].as_array().cloned().unwrap_or_default();
    let paths: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(paths, ["1", "2", "2.1", "2.2", "2.3", "3", "4", "5"]);
    for s in &steps {
        assert_eq!(s["outcome"], json!("ok"), "{s}");
    }
    assert_eq!(steps[0]["name"], json!("lamp on"));
    // The members ran at the same time: the group took less than their sum.
    let ms = |s: &Value| s["elapsed_ms"].as_u64().unwrap_or(0);
    let members: u64 = steps[2..5].iter().map(ms).sum();
    assert!(
        ms(&steps[1]) < members,
        "group {} ms, members {members} ms in total",
        ms(&steps[1])
    );

    assert_eq!(h.dev("plug").value(2, 1), Some(json!(true)));
    // on, then toggled off, then brightness 60.
    assert_eq!(h.dev("lamp").value(2, 1), Some(json!(false)));
    assert_eq!(h.dev("lamp").value(2, 2), Some(json!(60)));

    // The table form prints a line per step.
    let run = h.run(&["scene", "run", "evening"]).await;
    run.expect_code(0);
    assert!(
        run.stdout.contains("2.2    action   lamp"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("scene evening: done"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_is_reported_by_name() {
    let plug = with_initial(device("plug", PLUG, 155, 2), &[("2.1", json!(true))]);
    let lamp = with_initial(device("lamp", LIGHT, 155, 3), &[("2.2", json!(10))]);
    let h = home(vec![plug, lamp]).await;
    write_scenes(
        &h,
        r#"
[[scene]]
name = "leave"

[[scene.step]]
set = { device = "lamp", values = { "light.brightness" = 20 } }

[[scene.step]]
name = "plug off"
wait = { device = "plug", property = "switch.on", op = "==", value = false, timeout = "1500ms" }

[[scene.step]]
set = { device = "lamp", values = { "light.brightness" = 90 } }

[[scene]]
name = "stop-early"

[[scene.step]]
guard = { device = "plug", property = "switch.on", op = "==", value = false }

[[scene.step]]
set = { device = "lamp", values = { "light.brightness" = 33 } }
"#,
    );

    let run = h.run(&["scene", "run", "leave"]).await;
    run.expect_code(7);
    assert!(
        run.stderr
            .contains("scene 'leave' failed at step 2 [plug off] (wait plug)")
            && run.stderr.contains("not met within 1.5s (last value on)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains("3      set      lamp               skipped"),
        "{}",
        run.stdout
    );
    assert_eq!(h.dev("lamp").value(2, 2), Some(json!(20)), "step 3 ran");

    // --keep-going runs the rest, and still fails.
    let run = h
        .run(&["--json", "scene", "run", "leave", "--keep-going"])
        .await;
    run.expect_code(7);
    let report = run.json();
    assert_eq!(report["outcome"], json!("failed"));
    assert_eq!(report["steps"][1]["outcome"], json!("failed"));
    assert_eq!(report["steps"][1]["class"], json!("not-met"));
    assert_eq!(report["steps"][2]["outcome"], json!("ok"));
    assert_eq!(h.dev("lamp").value(2, 2), Some(json!(90)));

    // A guard that does not hold stops the scene without failing it.
    let run = h.run(&["scene", "run", "stop-early"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("stopped by a guard"), "{}", run.stdout);
    assert_eq!(h.dev("lamp").value(2, 2), Some(json!(90)));

    // A device that does not answer: exit 4, naming the step.
    h.dev("lamp").set_offline(true);
    let run = h
        .run(&[
            "--timeout",
            "0.3",
            "--retries",
            "0",
            "scene",
            "run",
            "leave",
        ])
        .await;
    run.expect_code(4);
    assert!(
        run.stderr.contains("failed at step 1 (set lamp)"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_catches_an_out_of_range_value_without_touching_any_device() {
    let lamp = device("lamp", LIGHT, 156, 2);
    let plug = device("plug", PLUG, 156, 3);
    let h = home(vec![lamp, plug]).await;
    write_scenes(
        &h,
        r#"
[[scene]]
name = "too-bright"

[[scene.step]]
set = { device = "plug", values = { "switch.on" = true } }

[[scene.step]]
parallel = [
  { set = { device = "lamp", values = { "light.brightness" = 150 } } },
  { action = { device = "lamp", name = "toggle" } },
]

[[scene]]
name = "fine"

[[scene.step]]
set = { device = "lamp", values = { "light.brightness" = 50, "light.on" = "on" } }

[[scene.step]]
wait = { device = "plug", property = "switch.on", op = "!=", value = "off" }
"#,
    );

    let run = h.run(&["scene", "run", "too-bright", "--dry-run"]).await;
    run.expect_code(2);
    assert!(run.stdout.contains("150"), "{}", run.stdout);
    assert!(
        run.stderr.contains("failed at step 2.1 (set lamp)") && run.stderr.contains("150"),
        "{}",
        run.stderr
    );
    let run = h
        .run(&["--json", "scene", "run", "too-bright", "--dry-run"])
        .await;
    run.expect_code(2);
    let report = run.json();
    assert_eq!(report["dry_run"], json!(true));
    let outcomes: Vec<&str> = report["steps"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["outcome"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(outcomes, ["checked", "failed", "failed", "checked"]);

    // Without --dry-run the same scene sends nothing either: it is checked
    // first.
    let run = h.run(&["scene", "run", "too-bright"]).await;
    run.expect_code(2);

    let run = h.run(&["scene", "run", "fine", "--dry-run"]).await;
    run.expect_code(0);
    assert!(
        run.stdout.contains("would set light.brightness=50 %"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("nothing was sent"), "{}", run.stdout);

    for name in ["lamp", "plug"] {
        assert!(
            h.dev(name).requests().is_empty(),
            "{name} got requests: {:?}",
            h.dev(name).requests()
        );
    }
    assert_eq!(h.dev("plug").value(2, 1), Some(json!(false)));
}

#[tokio::test]
async fn scene_files_are_validated_with_the_place_named() {
    let h = common::empty().await;
    write_scenes(
        &h,
        "[[scene]]\nname = \"x\"\n[[scene.step]]\nwait = { device = \"s\", property = \"t\", op = \"~\", value = 1 }\n",
    );
    let run = h.run(&["scene", "list"]).await;
    run.expect_code(5);
    assert!(
        run.stderr.contains("scene 'x', step 1: `wait.op`"),
        "{}",
        run.stderr
    );

    let run = h.run(&["scene", "run", "nope"]).await;
    run.expect_code(5);

    // A device that is not in the registry: a usage error naming the step.
    write_scenes(
        &h,
        "[[scene]]\nname = \"x\"\n[[scene.step]]\nwait = \"10ms\"\n[[scene.step]]\nset = { device = \"ghost\", values = { p = 1 } }\n",
    );
    let run = h.run(&["scene", "run", "x", "--dry-run"]).await;
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("failed at step 2 (set ghost): no device named 'ghost'"),
        "{}",
        run.stderr
    );

    write_scenes(&h, "");
    let run = h.run(&["scene", "run", "nope"]).await;
    run.expect_code(2);
    assert!(
        run.stderr.contains("no scene named 'nope'"),
        "{}",
        run.stderr
    );
    let run = h.run(&["scene", "list"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("no scenes yet"), "{}", run.stdout);
}

#[tokio::test]
async fn the_example_scenes_check_out_against_the_example_fleet() {
    use mijia::automation::scenes::{run_scene, SceneFile, SceneOutcome, StepOutcome};
    use mijia::automation::Context;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fleet_text = std::fs::read_to_string(root.join("fixtures/fleets/home.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let fleet = fake_device::FleetConfig::from_toml(&fleet_text).unwrap_or_else(|e| panic!("{e}"));
    let mut registry = Registry::new();
    for d in &fleet.devices {
        let mut e = DeviceEntry::new(d.name.clone(), d.addr.ip(), d.effective_token());
        e.model = Some(d.model.clone());
        registry.add(e).unwrap_or_else(|e| panic!("{e}"));
    }
    let catalog = std::sync::Arc::new(mijia::home::ModelCatalog::new(
        mijia::proto::miot::SpecStore::new(),
    ));
    let ctx = Context::new(registry, catalog, mijia::transport::ClientConfig::default());
    let file = SceneFile::load_from(&root.join("fixtures/scenes/home.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(file.names(), ["movie-night", "too-warm", "lights-out"]);
    let movie = file.get("Movie-Night").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        movie.devices(),
        [
            "kitchen-light",
            "living-room-purifier",
            "desk-lamp",
            "robot"
        ]
    );
    for scene in &file.scenes {
        // Nothing listens on these addresses here: a dry run sends nothing.
        let report = run_scene(scene, &ctx, true).await;
        assert_eq!(report.outcome, SceneOutcome::Ok, "{report:#?}");
        assert!(report
            .steps
            .iter()
            .all(|s| s.outcome == StepOutcome::Checked));
    }
}

// ------------------------------------------------------------ cloud route

/// A home whose lamp is known to the fake cloud but registered at a
/// loopback address where nothing listens, so only the cloud reaches it.
struct CloudHome {
    h: Harness,
    cloud: fake_device::cloud::FakeCloud,
}

/// Per attempt 0.3 s, no retries: the dead address fails fast.
const QUICK: [&str; 4] = ["--timeout", "0.3", "--retries", "0"];

const CLOUD_USER: &str = "carol@example.com";
const CLOUD_PASSWORD: &str = "open sesame";

async fn cloud_home(net: u8) -> CloudHome {
    use fake_device::cloud::{AccountConfig, DeviceCloudConfig, FakeCloud, FakeCloudConfig};

    let lamp = with_initial(
        device("lamp", LIGHT, net, 2),
        &[("2.1", json!(false)), ("2.2", json!(10))],
    );
    let h = home(vec![lamp]).await;
    let mut account = AccountConfig::new(CLOUD_USER, CLOUD_PASSWORD, 1_833_000_001);
    account.region = Some("de".into());
    let mut cfg = FakeCloudConfig {
        accounts: vec![account],
        ..FakeCloudConfig::default()
    };
    cfg.devices.insert(
        "lamp".into(),
        DeviceCloudConfig {
            region: Some("de".into()),
            ..DeviceCloudConfig::default()
        },
    );
    let cloud = FakeCloud::start(cfg, h.fleet.handles().to_vec())
        .await
        .unwrap_or_else(|e| panic!("fake cloud: {e}"));
    Registry::update(&Paths::at(h.home.path()), |r| {
        let e = r.get_mut("lamp")?;
        e.ip = common::ip(net, 250).into();
        Ok(())
    })
    .unwrap_or_else(|e| panic!("registry: {e}"));
    CloudHome { h, cloud }
}

impl CloudHome {
    fn command<S: AsRef<str>>(&self, args: &[S]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_mijia"));
        c.args(args.iter().map(AsRef::as_ref))
            .env("MIJIA_HOME", self.h.home.path())
            .env("MIJIA_CLOUD_ACCOUNT_URL", self.cloud.base_url())
            .env("MIJIA_CLOUD_API_URL", self.cloud.api_template())
            .env_remove("MIJIA_CLOUD_STS_URL")
            .env_remove("MIJIA_CLOUD_REGION")
            .env_remove("MIJIA_CLOUD_USER")
            .env_remove("MIJIA_CLOUD_PASSWORD")
            .env_remove("MIJIA_IP")
            .env_remove("MIJIA_TOKEN")
            .env_remove("MIJIA_PORT")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    async fn run_with<S: AsRef<str>>(&self, args: &[S], stdin: Option<&str>) -> common::Run {
        let mut child = self
            .command(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run mijia: {e}"));
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            use tokio::io::AsyncWriteExt as _;
            let _ = input.write_all(text.as_bytes()).await;
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("mijia did not finish within 60 s"))
            .unwrap_or_else(|e| panic!("mijia: {e}"));
        common::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `mijia args…` in the background.
    fn spawn(&self, args: &[&str]) -> Background {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run mijia: {e}"));
        let stdout = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
        let stderr = BufReader::new(child.stderr.take().unwrap_or_else(|| panic!("no stderr")));
        Background {
            child,
            stderr,
            stdout,
        }
    }

    /// `mijia --timeout 0.3 --retries 0 args…`.
    async fn run(&self, args: &[&str]) -> common::Run {
        self.run_with(&[&QUICK[..], args].concat(), None).await
    }

    async fn login(&self) {
        self.run_with(
            &[
                "cloud",
                "login",
                "--user",
                CLOUD_USER,
                "--password-stdin",
                "--region",
                "de",
            ],
            Some(&format!("{CLOUD_PASSWORD}\n")),
        )
        .await
        .expect_code(0);
    }

    /// Device calls that reached the cloud's API so far.
    fn api_calls(&self) -> usize {
        self.cloud
            .requests()
            .iter()
            .filter(|r| r.host == "api")
            .count()
    }

    fn lamp(&self) -> fake_device::DeviceHandle {
        self.h.dev("lamp")
    }
}

const CLOUD_SCENES: &str = r#"
[[scene]]
name = "evening"
[[scene.step]]
name = "dim"
set = { device = "lamp", values = { "light.brightness" = 30 } }
[[scene.step]]
action = { device = "lamp", name = "toggle" }
[[scene.step]]
wait = { device = "lamp", property = "light.on", op = "==", value = true, timeout = "10s" }
[[scene.step]]
guard = { device = "lamp", property = "light.brightness", op = "==", value = 30 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scene_wait_and_watch_reach_the_lamp_through_the_cloud() {
    let c = cloud_home(157).await;
    write_scenes(&c.h, CLOUD_SCENES);
    c.login().await;

    // Every step goes through the cloud; the lamp changed.
    let run = c.run(&["--json", "scene", "run", "evening"]).await;
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["outcome"], json!("ok"), "{report:#}");
    let steps = report["steps"].as_array().cloned().unwrap_or_default();
    assert_eq!(steps.len(), 4, "{report:#}");
    for s in &steps {
        assert_eq!(s["outcome"], json!("ok"), "{s}");
        assert_eq!(s["route"], json!("cloud"), "{s}");
    }
    // The first step went over to the cloud; the rest stayed there.
    let why = steps[0]["local_error"].as_str().unwrap_or_default();
    assert!(why.contains("no reply to hello"), "{report:#}");
    assert!(steps[1].get("local_error").is_none(), "{report:#}");
    assert!(
        run.stderr
            .contains("lamp: via cloud (de): the local route failed: no reply to hello"),
        "{}",
        run.stderr
    );
    assert_eq!(c.lamp().value(2, 2), Some(json!(30)));
    assert_eq!(c.lamp().value(2, 1), Some(json!(true)), "toggled once");
    assert!(c.api_calls() >= 4, "the cloud carried the steps");

    // wait reads through the cloud too.
    c.lamp()
        .set_value(2, 2, json!(64))
        .unwrap_or_else(|e| panic!("lamp: {e}"));
    let run = c
        .run(&[
            "wait",
            "lamp",
            "light.brightness",
            ">=",
            "60",
            "--timeout",
            "10",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.stdout.trim(),
        "lamp light.brightness = 64 %",
        "{run:#?}"
    );
    assert!(run.stderr.contains("via cloud (de)"), "{}", run.stderr);
    let run = c
        .run(&[
            "--json",
            "wait",
            "lamp",
            "light.on",
            "==",
            "on",
            "--timeout",
            "10",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(run.json()["route"], json!("cloud"), "{}", run.stdout);
    assert_eq!(run.json()["value"], json!(true), "{}", run.stdout);

    // watch polls through the cloud (no push there).
    let mut args: Vec<&str> = QUICK.to_vec();
    args.extend([
        "watch",
        "lamp",
        "light.brightness",
        "--interval",
        "200ms",
        "--count",
        "1",
    ]);
    let mut w = c.spawn(&args);
    let seen = w
        .stderr_until("watching lamp", Duration::from_secs(20))
        .await;
    assert!(seen.contains("via cloud (de)"), "{seen}");
    assert!(!seen.contains("push"), "{seen}");
    c.lamp()
        .set_value(2, 2, json!(88))
        .unwrap_or_else(|e| panic!("lamp: {e}"));
    let (code, out, err) = w.finish(Duration::from_secs(20)).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["new"], json!(88), "{out}");
    assert_eq!(lines[0]["source"], json!("poll"), "{out}");
    assert_eq!(lines[0]["route"], json!("cloud"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenes_keep_to_the_lan_without_a_session_or_with_via_local() {
    let c = cloud_home(158).await;
    write_scenes(&c.h, CLOUD_SCENES);

    // No session: the local error stands, with the way to enable the cloud.
    let run = c.run(&["scene", "run", "evening"]).await;
    run.expect_code(4);
    assert!(run.stderr.contains("no reply to hello"), "{}", run.stderr);
    assert!(run.stderr.contains("mijia cloud login"), "{}", run.stderr);
    assert!(!run.stderr.contains("via cloud"), "{}", run.stderr);
    assert_eq!(c.api_calls(), 0, "no session, no cloud traffic");

    c.login().await;
    let before = c.api_calls();
    // --via local never tries the cloud.
    let run = c
        .run(&["--via", "local", "--json", "scene", "run", "evening"])
        .await;
    run.expect_code(4);
    let report = run.json();
    assert_eq!(report["outcome"], json!("failed"), "{report:#}");
    assert_eq!(
        report["steps"][0]["class"],
        json!("unreachable"),
        "{report:#}"
    );
    assert!(report["steps"][0].get("route").is_none(), "{report:#}");
    assert!(!run.stderr.contains("via cloud"), "{}", run.stderr);
    // A dry run sends nothing, whatever the route.
    for via in ["auto", "cloud"] {
        let run = c
            .run(&["--via", via, "scene", "run", "evening", "--dry-run"])
            .await;
        run.expect_code(0);
    }
    assert_eq!(c.api_calls(), before, "the cloud was not asked");
    assert_eq!(c.lamp().value(2, 2), Some(json!(10)), "nothing changed");
    assert_eq!(c.lamp().value(2, 1), Some(json!(false)), "nothing changed");

    // --via cloud goes straight there.
    let run = c
        .run(&["--via", "cloud", "--json", "scene", "run", "evening"])
        .await;
    run.expect_code(0);
    assert_eq!(
        run.json()["steps"][0]["route"],
        json!("cloud"),
        "{}",
        run.stdout
    );
    assert!(
        run.json()["steps"][0].get("local_error").is_none(),
        "{}",
        run.stdout
    );
    assert_eq!(c.lamp().value(2, 2), Some(json!(30)));
}
