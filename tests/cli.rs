//! The `mijia` binary against a simulated fleet on loopback: round trips,
//! faults the transport must survive, and exit codes and messages.

use fake_device::{Behaviour, Disposition, Faults};
use serde_json::json;

use crate::common::{self, device, Harness};

const LIGHT: &str = "yeelink.light.color1";

async fn light(net: u8) -> Harness {
    common::start(vec![device("lamp", LIGHT, net, 2)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_shows_model_and_did() {
    let h = light(1).await;
    let run = h.on("lamp", &["info"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains(LIGHT), "{}", run.stdout);
    let did = h.dev("lamp").info().did.to_string();
    assert!(run.stdout.contains(&did));

    let run = h.on("lamp", &["--json", "info"]).await;
    run.expect_code(0);
    let doc = run.json();
    assert_eq!(doc["info"]["model"], json!(LIGHT));
    assert_eq!(doc["did"], json!(did));
    assert_ne!(
        doc["info"]["token"],
        json!(h.dev("lamp").info().token.reveal())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_set_and_action_change_the_device() {
    let h = light(2).await;
    let lamp = h.dev("lamp");
    lamp.set_value(2, 1, json!(false))
        .unwrap_or_else(|e| panic!("{e}"));

    let run = h.on("lamp", &["set", "2.1=true", "2.2=42"]).await;
    run.expect_code(0);
    assert!(
        run.stdout.contains("2.2") && run.stdout.contains("ok"),
        "{}",
        run.stdout
    );
    assert_eq!(lamp.value(2, 1), Some(json!(true)));
    assert_eq!(lamp.value(2, 2), Some(json!(42)));

    let run = h.on("lamp", &["--json", "get", "2.1", "2.2"]).await;
    run.expect_code(0);
    let doc = run.json();
    assert_eq!(doc[0]["value"], json!(true));
    assert_eq!(doc[1]["value"], json!(42));
    assert_eq!(doc[1]["code"], json!(0));

    // The did field is the device's real decimal did.
    let did = lamp.info().did.to_string();
    let last = lamp
        .requests()
        .into_iter()
        .last()
        .unwrap_or_else(|| panic!("recorded"));
    assert_eq!(last.params[0]["did"], json!(did));

    let run = h.on("lamp", &["action", "2.1"]).await;
    run.expect_code(0);
    assert_eq!(lamp.value(2, 1), Some(json!(false)), "toggle turned it off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_property_failures_are_shown_and_exit_3() {
    let h = light(3).await;
    let run = h.on("lamp", &["get", "2.1", "9.9"]).await;
    run.expect_code(3);
    assert!(run.stdout.contains("-4003"), "{}", run.stdout);
    assert!(run.stdout.contains("does not exist"), "{}", run.stdout);
    assert!(
        run.stderr.contains("1 of 2 properties failed"),
        "{}",
        run.stderr
    );

    let run = h.on("lamp", &["set", "2.2=500"]).await;
    run.expect_code(3);
    assert!(
        run.stdout.contains("-4005 (invalid value)"),
        "{}",
        run.stdout
    );

    // A device error object: code, meaning and hint, exit 3.
    let run = h.on("lamp", &["raw", "no_such_method"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("-32601"), "{}", run.stderr);
    assert!(
        run.stderr.contains("method not supported"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_says_check_the_token() {
    let h = light(4).await;
    let ip = h.dev("lamp").info().addr.ip().to_string();
    let args = [
        "--ip",
        &ip,
        "--token",
        "ffeeddccbbaa99887766554433221100",
        "--timeout",
        "0.3",
        "--retries",
        "1",
        "info",
    ];
    let run = h.run(&args).await;
    run.expect_code(4);
    assert!(run.stderr.contains("check the token"), "{}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_device_says_check_the_address() {
    let h = common::empty().await;
    let ip = common::ip(5, 9).to_string();
    let args = [
        "--ip",
        &ip,
        "--token",
        "00112233445566778899aabbccddeeff",
        "--timeout",
        "0.2",
        "--retries",
        "1",
        "info",
    ];
    let t0 = std::time::Instant::now();
    let run = h.run(&args).await;
    run.expect_code(4);
    assert!(
        run.stderr
            .contains("check the address and that the device is on"),
        "{}",
        run.stderr
    );
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t0.elapsed()
    );
}

/// Timeouts plus extra hellos logged by one `-v` run.
fn retries_in(stderr: &str) -> usize {
    let hellos = stderr.lines().filter(|l| l.contains("hello addr=")).count();
    stderr.matches("request timed out").count() + hellos.saturating_sub(1)
}

async fn survives_loss(net: u8, faults: Faults) {
    let h = light(net).await;
    let lamp = h.dev("lamp");
    lamp.set_faults(faults);
    let common = ["-v", "--timeout", "0.3", "--retries", "8"];
    let mut retried = 0;
    for i in 0..6 {
        let assign = format!("2.2={}", 10 + i);
        let mut args = common.to_vec();
        args.extend(["set", assign.as_str()]);
        let run = h.on("lamp", &args).await;
        run.expect_code(0);
        retried += retries_in(&run.stderr);
        let mut args = common.to_vec();
        args.extend(["--json", "get", "2.1", "2.2", "1.2"]);
        let run = h.on("lamp", &args).await;
        run.expect_code(0);
        retried += retries_in(&run.stderr);
        let doc = run.json();
        assert_eq!(doc[1]["value"], json!(10 + i));
        assert_eq!(doc[2]["value"], json!(LIGHT));
    }
    assert!(retried > 0, "the fault caused at least one retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_complete_with_20_percent_request_loss() {
    survives_loss(
        6,
        Faults {
            request_loss: 0.2,
            ..Faults::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_complete_with_20_percent_reply_loss() {
    survives_loss(
        7,
        Faults {
            reply_loss: 0.2,
            ..Faults::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_reordered_replies_are_ignored() {
    let mut d = device("lamp", LIGHT, 8, 2);
    // Small batches: one run sends several requests, so duplicates of one
    // reply arrive while the next request is outstanding.
    d.behaviour = Behaviour {
        batch_limit: 2,
        ..Behaviour::default()
    };
    d.faults = Faults {
        duplicate_replies: 2,
        ..Faults::default()
    };
    let h = common::start(vec![d]).await;
    let run = h
        .on(
            "lamp",
            &["--json", "get", "1.1", "1.2", "1.3", "1.4", "2.1", "2.2"],
        )
        .await;
    run.expect_code(0);
    let doc = run.json();
    assert_eq!(doc[1]["property"], json!("1.2"));
    assert_eq!(doc[1]["value"], json!(LIGHT));
    assert!(
        doc.as_array()
            .is_some_and(|a| a.iter().all(|r| r["code"] == json!(0))),
        "{doc}"
    );

    h.dev("lamp").set_faults(Faults {
        reorder: true,
        duplicate_replies: 1,
        ..Faults::default()
    });
    let run = h
        .on("lamp", &["--json", "--timeout", "0.5", "get", "1.2", "2.2"])
        .await;
    run.expect_code(0);
    assert_eq!(run.json()[0]["value"], json!(LIGHT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_device_shrinks_the_batch() {
    let mut d = device("lamp", LIGHT, 9, 2);
    d.behaviour = Behaviour {
        batch_limit: 3,
        ..Behaviour::default()
    };
    let h = common::start(vec![d]).await;
    let lamp = h.dev("lamp");
    lamp.set_value(2, 2, json!(77))
        .unwrap_or_else(|e| panic!("{e}"));
    let props = [
        "1.1", "1.2", "1.3", "1.4", "1.5", "2.1", "2.2", "2.3", "2.4", "2.5",
    ];
    let mut args = vec!["--json", "get"];
    args.extend(props);
    let run = h.on("lamp", &args).await;
    run.expect_code(0);
    let doc = run.json();
    let items = doc.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 10);
    for (item, p) in items.iter().zip(props) {
        assert_eq!(item["property"], json!(p));
        assert_eq!(item["code"], json!(0), "{item}");
    }
    assert_eq!(items[6]["value"], json!(77));
    let sizes: Vec<usize> = lamp
        .requests()
        .iter()
        .filter(|r| r.method == "get_properties")
        .map(|r| r.params.as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![10, 5, 2, 2, 2, 2, 2]);

    // The next run starts at the size that worked: no more -9999.
    let before = lamp.requests().len();
    h.on("lamp", &args).await.expect_code(0);
    let sizes: Vec<usize> = lamp.requests()[before..]
        .iter()
        .filter(|r| r.method == "get_properties")
        .map(|r| r.params.as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![2, 2, 2, 2, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_oversized_batches_shrink_too() {
    let mut d = device("lamp", LIGHT, 14, 2);
    d.behaviour = Behaviour {
        batch_limit: 3,
        batch_limit_silent: true,
        ..Behaviour::default()
    };
    let h = common::start(vec![d]).await;
    let props = ["1.1", "1.2", "1.3", "1.4", "2.1", "2.2"];
    let mut args = vec!["--json", "--timeout", "0.2", "get"];
    args.extend(props);
    let run = h.on("lamp", &args).await;
    run.expect_code(0);
    let doc = run.json();
    assert!(
        doc.as_array()
            .is_some_and(|a| a.len() == 6 && a.iter().all(|r| r["code"] == json!(0))),
        "{doc}"
    );
    let sizes: Vec<usize> = h
        .dev("lamp")
        .requests()
        .iter()
        .map(|r| r.params.as_array().map_or(0, Vec::len))
        .collect();
    // Two silent tries at 6, then 3 fits.
    assert_eq!(sizes, vec![6, 6, 3, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_reboot_between_commands() {
    let h = light(10).await;
    let lamp = h.dev("lamp");
    h.on("lamp", &["get", "2.1"]).await.expect_code(0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let before = lamp.clock();
    lamp.reboot();
    assert!(lamp.clock() < before, "the clock restarts");
    h.on("lamp", &["set", "2.2=33"]).await.expect_code(0);
    assert_eq!(lamp.value(2, 2), Some(json!(33)));
    let reqs = lamp.requests();
    assert!(
        reqs.iter().all(|r| r.disposition == Disposition::Answered),
        "{reqs:?}"
    );
    // The stamp sent after the reboot follows the new clock.
    let last = reqs.last().unwrap_or_else(|| panic!("recorded"));
    assert!(last.stamp.abs_diff(last.device_clock) <= 2, "{last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_device_through_raw() {
    let h = common::start(vec![device("mono", "yeelink.light.mono1", 11, 2)]).await;
    let run = h
        .on(
            "mono",
            &["--json", "raw", "get_prop", r#"["power","bright"]"#],
        )
        .await;
    run.expect_code(0);
    let doc = run.json();
    let arr = doc.as_array().cloned().unwrap_or_default();
    assert_eq!(arr.len(), 2, "{doc}");
    assert_eq!(
        arr[0],
        h.dev("mono").legacy_value("power").unwrap_or_default()
    );

    h.on("mono", &["raw", "set_power", r#"["on"]"#])
        .await
        .expect_code(0);
    assert_eq!(h.dev("mono").legacy_value("power"), Some(json!("on")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_a_usage_error_before_any_io() {
    let h = common::empty().await;
    let ip = common::ip(12, 2).to_string();
    let good = "00112233445566778899aabbccddeeff";
    let cases: &[(&[&str], &str)] = &[
        (
            &["--token", "0011223344556677889900aabbccdde", "info"],
            "invalid token: a token is 32 hex characters, got 31",
        ),
        (
            &["--token", "0011223344556677889900aabbccddzz", "info"],
            "not a hex digit",
        ),
        (
            &["--token", good, "raw", "get_prop", "[\"power\","],
            "line 1 column",
        ),
        (&["--token", good, "get", "2.x"], "expected SIID.PIID"),
        (&["--token", good, "set", "2.1"], "SIID.PIID=VALUE"),
        (&["--token", good, "action", "5", "[]"], "SIID.AIID"),
        (&["--token", good, "--timeout", "-1", "info"], "--timeout"),
        (&["info"], "no device token"),
    ];
    for (args, want) in cases {
        let mut all = vec!["--ip", ip.as_str()];
        all.extend_from_slice(args);
        let run = h.run(&all).await;
        run.expect_code(2);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("error: ") && run.stderr.contains(want),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    }
    let run = h.run(&["--token", good, "info"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("--ip"));
    let run = h.run(&["--ip", "not-an-ip", "--token", good, "info"]).await;
    run.expect_code(2);
    // clap-level errors are usage errors too.
    h.run(&["frobnicate"]).await.expect_code(2);
    h.run(&["--help"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_persist_across_runs() {
    let h = light(13).await;
    let lamp = h.dev("lamp");
    h.on("lamp", &["info"]).await.expect_code(0);
    let first: Vec<u32> = lamp.requests().iter().map(|r| r.id).collect();
    lamp.clear_requests();
    h.on("lamp", &["info"]).await.expect_code(0);
    let second: Vec<u32> = lamp.requests().iter().map(|r| r.id).collect();
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_ne!(first[0], second[0]);
    assert_eq!(
        second[0],
        first[0] % 9998 + 1,
        "continues from the stored counter"
    );
    let ids = std::fs::read_to_string(h.home.path().join("state").join("ids.json"))
        .unwrap_or_else(|e| panic!("ids.json written: {e}"));
    assert!(ids.contains(&format!("did:{}", lamp.info().did)), "{ids}");
}
