//! State-machine tests: no sockets, time passed in.

use super::*;
use crate::config::ErrorKey;
use mijia_proto::miio::packet::{decode, encode, hello, parse_hello_reply};
use serde_json::json;

const TOKEN: &str = "00112233445566778899aabbccddeeff";

fn tok() -> Token {
    TOKEN.parse().unwrap()
}

fn client() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn cfg(model: &str) -> DeviceConfig {
    let mut c = DeviceConfig::new("dev", model, 424_242, "127.0.0.2:54321".parse().unwrap());
    c.token = Some(tok());
    c
}

fn dev(model: &str) -> (SimDevice, Instant) {
    let now = Instant::now();
    (SimDevice::new(&cfg(model), now).unwrap(), now)
}

fn packet(d: &SimDevice, id: u32, method: &str, params: Value, now: Instant) -> Vec<u8> {
    let body = Request::new(id, method, params).to_bytes();
    encode(&tok(), d.did(), d.clock(now), &body).unwrap()
}

/// Send a request and decode the single reply.
fn call(d: &mut SimDevice, id: u32, method: &str, params: Value, now: Instant) -> Response {
    let out = d.handle(&packet(d, id, method, params, now), client(), now);
    assert_eq!(
        out.len(),
        1,
        "expected one reply to {method}, got {}",
        out.len()
    );
    assert_eq!(out[0].to, client());
    let p = decode(&tok(), &out[0].bytes).unwrap();
    assert_eq!(p.header.did, d.did());
    Response::parse(&p.payload).unwrap()
}

fn ok(d: &mut SimDevice, id: u32, method: &str, params: Value, now: Instant) -> Value {
    call(d, id, method, params, now).outcome.unwrap()
}

fn mdid_probe() -> [u8; 32] {
    let mut p = hello();
    p[16..20].copy_from_slice(b"MDID");
    p[20..28].copy_from_slice(&7u64.to_be_bytes());
    p[28..32].fill(0);
    p
}

#[test]
fn hello_forms_and_probe() {
    let now = Instant::now();
    for (form, unprov, expect) in [
        (HelloForm::Provisioned, false, HelloKind::Provisioned),
        (HelloForm::Zeros, false, HelloKind::Zeros),
        (
            HelloForm::Msub,
            false,
            HelloKind::Msub {
                sub_ts: 0,
                wildcard: true,
            },
        ),
        (HelloForm::Provisioned, true, HelloKind::Token(tok())),
        (HelloForm::Msub, true, HelloKind::Token(tok())),
    ] {
        let mut c = cfg("yeelink.light.color1");
        c.behaviour.hello_form = form;
        c.unprovisioned = unprov;
        let mut d = SimDevice::new(&c, now).unwrap();
        for probe in [hello(), mdid_probe()] {
            let out = d.handle(&probe, client(), now);
            assert_eq!(out.len(), 1);
            let r = parse_hello_reply(&out[0].bytes).unwrap();
            assert_eq!(r.did, 424_242);
            assert_eq!(r.stamp, d.clock(now));
            assert_eq!(r.kind, expect, "{form:?} unprovisioned={unprov}");
        }
    }
}

#[test]
fn unprovisioned_without_token_reveals_the_derived_one() {
    let now = Instant::now();
    let mut c = cfg("chuangmi.plug.m1");
    c.token = None;
    c.unprovisioned = true;
    let mut d = SimDevice::new(&c, now).unwrap();
    let out = d.handle(&hello(), client(), now);
    let r = parse_hello_reply(&out[0].bytes).unwrap();
    assert_eq!(r.kind, HelloKind::Token(c.effective_token()));
    assert_ne!(c.effective_token(), tok());
}

#[test]
fn msub_hello_carries_subscription_stamp() {
    let (mut d, now) = dev("yeelink.light.color1");
    let mut b = d.behaviour().clone();
    b.hello_form = HelloForm::Msub;
    d.set_behaviour(b);
    let r = ok(
        &mut d,
        5,
        "miIO.sub",
        json!({"version":"2.0","did":"9","update_ts":1234,"sub_method":"."}),
        now,
    );
    assert_eq!(r, json!({"code":0}));
    let out = d.handle(&hello(), client(), now);
    let kind = parse_hello_reply(&out[0].bytes).unwrap().kind;
    assert_eq!(
        kind,
        HelloKind::Msub {
            sub_ts: 1234,
            wildcard: true
        }
    );
    d.reboot(now);
    let out = d.handle(&hello(), client(), now);
    let kind = parse_hello_reply(&out[0].bytes).unwrap().kind;
    assert_eq!(
        kind,
        HelloKind::Msub {
            sub_ts: 0,
            wildcard: true
        },
        "reboot loses the subscription"
    );
}

#[test]
fn wrong_token_is_silent_or_ff() {
    let (mut d, now) = dev("yeelink.light.color1");
    let other: Token = "ffeeddccbbaa99887766554433221100".parse().unwrap();
    let body = Request::new(1, "miIO.info", json!([])).to_bytes();
    let p = encode(&other, d.did(), 1, &body).unwrap();
    assert!(d.handle(&p, client(), now).is_empty());
    assert!(
        d.requests().is_empty(),
        "undecodable packets are not recorded"
    );
    let mut b = d.behaviour().clone();
    b.answer_bad_checksum_with_ff = true;
    d.set_behaviour(b);
    let out = d.handle(&p, client(), now);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].bytes.len(), 32);
    assert!(out[0].bytes[16..].iter().all(|b| *b == 0xff));
    // Garbage and truncated packets are dropped.
    assert!(d.handle(b"hello", client(), now).is_empty());
    let good = packet(&d, 2, "miIO.info", json!([]), now);
    assert!(d.handle(&good[..good.len() - 16], client(), now).is_empty());
}

#[test]
fn change_token_takes_effect() {
    let (mut d, now) = dev("chuangmi.plug.m1");
    let new: Token = "ffeeddccbbaa99887766554433221100".parse().unwrap();
    d.change_token(new);
    assert!(d
        .handle(&packet(&d, 1, "miIO.info", json!([]), now), client(), now)
        .is_empty());
    let body = Request::new(2, "miIO.info", json!([])).to_bytes();
    let out = d.handle(&encode(&new, d.did(), 1, &body).unwrap(), client(), now);
    let p = decode(&new, &out[0].bytes).unwrap();
    let r = Response::parse(&p.payload).unwrap().outcome.unwrap();
    assert_eq!(r["token"], json!(new.reveal()));
}

#[test]
fn duplicate_ids_are_dropped_until_forgotten_or_reboot() {
    let (mut d, now) = dev("yeelink.light.color1");
    ok(&mut d, 7, "miIO.info", json!([]), now);
    let dup = packet(&d, 7, "miIO.info", json!([]), now);
    assert!(d.handle(&dup, client(), now).is_empty());
    let log = d.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].disposition, Disposition::Duplicate);
    // Memory is bounded: after id_memory other ids, 7 is forgotten.
    for id in 100..132 {
        ok(&mut d, id, "miIO.info", json!([]), now);
    }
    ok(&mut d, 7, "miIO.info", json!([]), now);
    // Reboot clears the memory.
    assert!(d
        .handle(&packet(&d, 131, "miIO.info", json!([]), now), client(), now)
        .is_empty());
    d.reboot(now);
    ok(&mut d, 131, "miIO.info", json!([]), now);
    // Dedupe off: repeats are answered.
    let mut b = d.behaviour().clone();
    b.dedupe_ids = false;
    d.set_behaviour(b);
    ok(&mut d, 131, "miIO.info", json!([]), now);
}

#[test]
fn stamp_is_uptime_like_and_resets_on_reboot() {
    let (mut d, t0) = dev("yeelink.light.color1");
    let c0 = d.clock(t0);
    assert!((20..5000).contains(&c0), "starts near a small uptime: {c0}");
    let t1 = t0 + Duration::from_secs(90);
    assert_eq!(d.clock(t1), c0 + 90);
    let out = d.handle(&hello(), client(), t1);
    assert_eq!(parse_hello_reply(&out[0].bytes).unwrap().stamp, c0 + 90);
    // Reply header carries the device clock; the log keeps both stamps.
    let body = Request::new(3, "miIO.info", json!([])).to_bytes();
    let out = d.handle(&encode(&tok(), d.did(), 77, &body).unwrap(), client(), t1);
    assert_eq!(decode(&tok(), &out[0].bytes).unwrap().header.stamp, c0 + 90);
    let r = &d.requests()[0];
    assert_eq!((r.stamp, r.device_clock, r.id), (77, c0 + 90, 3));
    let info = ok(&mut d, 4, "miIO.info", json!([]), t1);
    assert_eq!(info["life"], json!(c0 + 90));
    d.reboot(t1);
    assert!(d.clock(t1) < 3, "near 0 after reboot");
    assert_eq!(d.clock(t1 + Duration::from_secs(5)), d.clock(t1) + 5);
    assert_eq!(d.boots(), 2);
}

#[test]
fn strict_stamp_and_recent_hello() {
    let (mut d, now) = dev("yeelink.light.color1");
    let mut b = d.behaviour().clone();
    b.strict_stamp = true;
    d.set_behaviour(b.clone());
    let body = Request::new(1, "miIO.info", json!([])).to_bytes();
    let stale = encode(&tok(), d.did(), d.clock(now).wrapping_sub(500), &body).unwrap();
    assert!(d.handle(&stale, client(), now).is_empty());
    assert_eq!(d.requests()[0].disposition, Disposition::StaleStamp);
    ok(&mut d, 2, "miIO.info", json!([]), now);

    b.strict_stamp = false;
    b.needs_recent_hello_s = 10;
    d.set_behaviour(b);
    assert!(d
        .handle(&packet(&d, 3, "miIO.info", json!([]), now), client(), now)
        .is_empty());
    d.handle(&hello(), client(), now);
    ok(
        &mut d,
        4,
        "miIO.info",
        json!([]),
        now + Duration::from_secs(5),
    );
    let late = now + Duration::from_secs(11);
    assert!(d
        .handle(&packet(&d, 5, "miIO.info", json!([]), late), client(), late)
        .is_empty());
    assert_eq!(
        d.requests().last().unwrap().disposition,
        Disposition::NoRecentHello
    );
}

fn props(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|_| json!({"did":"x","siid":2,"piid":1}))
            .collect(),
    )
}

#[test]
fn batch_limit_gives_9999_or_silence() {
    let (mut d, now) = dev("yeelink.light.color1");
    let r = ok(&mut d, 1, "get_properties", props(15), now);
    assert_eq!(r.as_array().unwrap().len(), 15);
    let e = call(&mut d, 2, "get_properties", props(16), now)
        .outcome
        .unwrap_err();
    assert_eq!(e.code, -9999);
    let mut b = d.behaviour().clone();
    b.batch_limit = 3;
    d.set_behaviour(b.clone());
    let e = call(&mut d, 3, "set_properties", props(4), now)
        .outcome
        .unwrap_err();
    assert_eq!(e.code, -9999);
    b.batch_limit_silent = true;
    d.set_behaviour(b);
    assert!(d
        .handle(
            &packet(&d, 4, "get_properties", props(4), now),
            client(),
            now
        )
        .is_empty());
    assert_eq!(
        d.requests().last().unwrap().disposition,
        Disposition::SilentBatch
    );
}

#[test]
fn property_codes() {
    let (mut d, now) = dev("yeelink.light.color1");
    let r = ok(
        &mut d,
        1,
        "get_properties",
        json!([
            {"did":"a","siid":2,"piid":2},
            {"did":"b","siid":3,"piid":1},
            {"did":"c","siid":9,"piid":9},
            {"did":"d","siid":1,"piid":2},
        ]),
        now,
    );
    assert_eq!(r[0]["code"], json!(0));
    assert_eq!(r[0]["did"], json!("a"), "did is echoed");
    assert!(r[0]["value"].is_u64());
    assert_eq!(r[1], json!({"did":"b","siid":3,"piid":1,"code":-4001}));
    assert_eq!(r[2]["code"], json!(-4003));
    assert_eq!(r[3]["value"], json!("yeelink.light.color1"));

    let r = ok(
        &mut d,
        2,
        "set_properties",
        json!([
            {"did":"a","siid":2,"piid":2,"value":42},
            {"did":"b","siid":1,"piid":1,"value":"x"},
            {"did":"c","siid":2,"piid":2,"value":101},
            {"did":"d","siid":2,"piid":1,"value":"on"},
            {"did":"e","siid":8,"piid":1,"value":1},
            {"did":"f","siid":2,"piid":5,"value":3},
        ]),
        now,
    );
    let codes: Vec<i64> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![0, -4002, -4005, -4005, -4003, -4005]);
    assert_eq!(d.value(2, 2), Some(json!(42)));
    let r = ok(
        &mut d,
        3,
        "get_properties",
        json!([{"did":"a","siid":2,"piid":2}]),
        now,
    );
    assert_eq!(r[0]["value"], json!(42));
}

#[test]
fn actions() {
    let (mut d, now) = dev("yeelink.light.color1");
    assert_eq!(d.value(2, 1), Some(json!(false)));
    let r = ok(
        &mut d,
        1,
        "action",
        json!({"did":"x","siid":2,"aiid":1,"in":[]}),
        now,
    );
    assert_eq!(r, json!({"code":0,"out":[]}));
    assert_eq!(d.value(2, 1), Some(json!(true)), "toggle flips on");
    let r = ok(
        &mut d,
        2,
        "action",
        json!({"did":"x","siid":2,"aiid":9,"in":[]}),
        now,
    );
    assert_eq!(r["code"], json!(-4003));
    let r = ok(
        &mut d,
        3,
        "action",
        json!({"did":"x","siid":2,"aiid":1,"in":[1]}),
        now,
    );
    assert_eq!(r["code"], json!(-4006));
    // Wrong `in` value type on an action with an argument.
    let (mut v, now) = dev("dreame.vacuum.p2009");
    let r = ok(
        &mut v,
        1,
        "action",
        json!({"did":"x","siid":2,"aiid":3,"in":[]}),
        now,
    );
    assert_eq!(r["code"], json!(-4006));
    let r = ok(
        &mut v,
        2,
        "action",
        json!({"did":"x","siid":2,"aiid":3,"in":[true]}),
        now,
    );
    assert_eq!(r["code"], json!(-4006));
    let r = ok(
        &mut v,
        3,
        "action",
        json!({"did":"x","siid":2,"aiid":3,"in":["[1,2]"]}),
        now,
    );
    assert_eq!(r["code"], json!(0));
    // Out values come from the out properties.
    let (mut cam, now) = dev("chuangmi.camera.ipc019");
    let r = ok(
        &mut cam,
        1,
        "action",
        json!({"did":"x","siid":3,"aiid":3,"in":[]}),
        now,
    );
    assert_eq!(r["code"], json!(0));
    assert_eq!(r["out"].as_array().unwrap().len(), 2);
}

#[test]
fn miio_info_is_realistic() {
    let (mut d, now) = dev("zhimi.airpurifier.mb3");
    let r = ok(&mut d, 1, "miIO.info", json!([]), now);
    assert_eq!(r["model"], json!("zhimi.airpurifier.mb3"));
    assert_eq!(r["token"], json!(TOKEN));
    assert_eq!(r["netif"]["localIp"], json!("127.0.0.2"));
    assert_eq!(r["mac"], json!("28:6C:00:06:79:32"), "424242 = 0x00067932");
    for k in [
        "fw_ver",
        "hw_ver",
        "life",
        "mmfree",
        "ap",
        "ot",
        "otu_stat",
        "ott_stat",
        "wifi_fw_ver",
        "cfg_time",
    ] {
        assert!(r.get(k).is_some(), "missing {k}");
    }
    assert!(
        r["ap"]["rssi"].is_i64() && r["ap"]["ssid"].is_string() && r["ap"]["bssid"].is_string()
    );
}

#[test]
fn unknown_method_and_error_key() {
    let (mut d, now) = dev("yeelink.light.color1");
    let out = d.handle(&packet(&d, 1, "no_such", json!([]), now), client(), now);
    let raw = decode(&tok(), &out[0].bytes).unwrap().payload;
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        r#"{"error":{"code":-32601,"message":"Method not found."},"id":1}"#
    );
    let mut b = d.behaviour().clone();
    b.error_key = ErrorKey::Error;
    d.set_behaviour(b.clone());
    let out = d.handle(&packet(&d, 2, "no_such", json!([]), now), client(), now);
    let raw = String::from_utf8(decode(&tok(), &out[0].bytes).unwrap().payload).unwrap();
    assert!(raw.contains(r#""error":"Method not found.""#), "{raw}");
    b.unknown_method_string = true;
    d.set_behaviour(b);
    let e = call(&mut d, 3, "no_such", json!([]), now)
        .outcome
        .unwrap_err();
    assert_eq!(e.message, "unknown_method");
}

#[test]
fn legacy_yeelight() {
    let (mut d, now) = dev("yeelink.light.mono1");
    let r = ok(
        &mut d,
        1,
        "get_prop",
        json!(["power", "bright", "ct", "rgb", "name"]),
        now,
    );
    assert_eq!(r, json!(["off", "100", "", "", ""]));
    assert_eq!(
        ok(&mut d, 2, "set_power", json!(["on"]), now),
        json!(["ok"])
    );
    assert_eq!(d.value(2, 1), Some(json!(true)));
    assert_eq!(ok(&mut d, 3, "set_bright", json!([40]), now), json!(["ok"]));
    assert_eq!(
        ok(&mut d, 4, "set_power", json!(["off", "smooth", 500]), now),
        json!(["ok"])
    );
    assert_eq!(ok(&mut d, 5, "toggle", json!([]), now), json!(["ok"]));
    assert_eq!(
        ok(&mut d, 6, "set_name", json!(["desk"]), now),
        json!(["ok"])
    );
    assert_eq!(ok(&mut d, 7, "set_default", json!([]), now), json!(["ok"]));
    let r = ok(
        &mut d,
        8,
        "get_prop",
        json!(["power", "bright", "name"]),
        now,
    );
    assert_eq!(r, json!(["on", "40", "desk"]));
    for (id, m, p) in [
        (9, "set_power", json!(["maybe"])),
        (10, "set_bright", json!([0])),
        (11, "set_bright", json!([101])),
        (12, "set_bright", json!(["50"])),
        (13, "set_power", json!(["on", "wobbly", 10])),
        (14, "set_name", json!([])),
    ] {
        let e = call(&mut d, id, m, p, now).outcome.unwrap_err();
        assert_eq!(e.code, -5001, "{m}");
    }
    let e = call(&mut d, 15, "get_properties", json!([]), now)
        .outcome
        .unwrap_err();
    assert_eq!(e.code, -32601, "legacy devices do not speak MIoT");
    d.set_value(2, 2, json!(70), now).unwrap();
    assert_eq!(
        ok(&mut d, 16, "get_prop", json!(["bright"]), now),
        json!(["70"])
    );
}

#[test]
fn legacy_plug() {
    let (mut d, now) = dev("chuangmi.plug.m1");
    assert_eq!(
        ok(&mut d, 1, "set_power", json!(["on"]), now),
        json!(["ok"])
    );
    let r = ok(&mut d, 2, "get_prop", json!(["power", "temperature"]), now);
    assert_eq!(r, json!(["on", 32]));
    let e = call(&mut d, 3, "set_power", json!(["on", "smooth", 10]), now)
        .outcome
        .unwrap_err();
    assert_eq!(e.code, -5001);
    assert_eq!(
        ok(&mut d, 4, "get_prop", json!(["nope"]), now),
        json!([null])
    );
}

#[test]
fn reply_quirks() {
    for (quirk, needle) in [
        (Quirk::DoubledComma, ",,"),
        (Quirk::EmptyValue, "\"ts\":,"),
        (Quirk::LeadingZero, "\"ts\":00"),
    ] {
        let (mut d, now) = dev("yeelink.light.color1");
        let mut b = d.behaviour().clone();
        b.quirk = quirk;
        b.exe_time = true;
        b.trailing_nul = true;
        d.set_behaviour(b);
        let out = d.handle(
            &packet(&d, 1, "get_properties", props(1), now),
            client(),
            now,
        );
        let raw = decode(&tok(), &out[0].bytes).unwrap().payload;
        assert_eq!(raw.last(), Some(&0), "trailing NUL");
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(
            text.contains(needle) && text.contains("exe_time"),
            "{quirk:?}: {text}"
        );
        assert!(
            serde_json::from_slice::<Value>(&raw[..raw.len() - 1]).is_err(),
            "{text}"
        );
        // The client's quirk repair still reads it.
        let r = Response::parse(&raw).unwrap();
        assert_eq!(r.outcome.unwrap()[0]["code"], json!(0));
    }
}

#[test]
fn rate_limit() {
    let (mut d, now) = dev("yeelink.light.color1");
    let mut b = d.behaviour().clone();
    b.rate_limit_per_s = 3;
    d.set_behaviour(b);
    for id in 1..=3 {
        ok(&mut d, id, "miIO.info", json!([]), now);
    }
    assert_eq!(
        call(&mut d, 4, "miIO.info", json!([]), now)
            .outcome
            .unwrap_err()
            .code,
        -9999
    );
    ok(
        &mut d,
        5,
        "miIO.info",
        json!([]),
        now + Duration::from_millis(1001),
    );
}

fn with_faults(model: &str, f: impl FnOnce(&mut Faults)) -> (SimDevice, Instant) {
    let (mut d, now) = dev(model);
    let mut faults = Faults::default();
    f(&mut faults);
    d.set_faults(faults);
    (d, now)
}

#[test]
fn fault_losses_and_offline() {
    let (mut d, now) = with_faults("yeelink.light.color1", |f| f.request_loss = 1.0);
    assert!(d.handle(&hello(), client(), now).is_empty());
    assert!(d
        .handle(&packet(&d, 1, "miIO.info", json!([]), now), client(), now)
        .is_empty());
    assert!(d.requests().is_empty(), "lost requests never arrive");

    let (mut d, now) = with_faults("yeelink.light.color1", |f| f.reply_loss = 1.0);
    assert!(d
        .handle(
            &packet(
                &d,
                1,
                "set_properties",
                json!([{"siid":2,"piid":1,"value":true}]),
                now
            ),
            client(),
            now
        )
        .is_empty());
    assert_eq!(
        d.requests().len(),
        1,
        "the request arrived and was executed"
    );
    assert_eq!(d.value(2, 1), Some(json!(true)));

    let (mut d, now) = with_faults("yeelink.light.color1", |f| f.reply_loss = 0.5);
    let answered = (1..=200)
        .filter(|id| {
            !d.handle(&packet(&d, *id, "miIO.info", json!([]), now), client(), now)
                .is_empty()
        })
        .count();
    assert!(
        (60..140).contains(&answered),
        "about half answered: {answered}"
    );

    let (mut d, now) = dev("yeelink.light.color1");
    d.set_offline(true);
    assert!(d.handle(&hello(), client(), now).is_empty());
    assert!(d
        .handle(&packet(&d, 1, "miIO.info", json!([]), now), client(), now)
        .is_empty());
    d.set_offline(false);
    assert_eq!(d.handle(&hello(), client(), now).len(), 1);
}

#[test]
fn fault_duplicates_delay_corruption() {
    let (mut d, now) = with_faults("yeelink.light.color1", |f| {
        f.duplicate_replies = 2;
        f.delay_ms = 100;
        f.jitter_ms = 50;
    });
    let out = d.handle(&packet(&d, 1, "miIO.info", json!([]), now), client(), now);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|o| o.bytes == out[0].bytes));
    for o in &out {
        assert!((100..=150).contains(&o.delay.as_millis()), "{:?}", o.delay);
    }
    let out = d.handle(&hello(), client(), now);
    assert_eq!(out.len(), 3, "hello replies are duplicated too");

    let (mut d, now) = with_faults("yeelink.light.color1", |f| f.corrupt_checksum = 1.0);
    let out = d.handle(&packet(&d, 1, "miIO.info", json!([]), now), client(), now);
    assert_eq!(decode(&tok(), &out[0].bytes), Err(PacketError::Checksum));
    assert!(parse_hello_reply(&d.handle(&hello(), client(), now)[0].bytes).is_ok());
}

#[test]
fn fault_reorder() {
    let (mut d, now) = with_faults("yeelink.light.color1", |f| f.reorder = true);
    assert!(d
        .handle(&packet(&d, 1, "miIO.info", json!([]), now), client(), now)
        .is_empty());
    let held_until = d.next_timeout().unwrap();
    assert_eq!(held_until, now + REORDER_HOLD);
    let out = d.handle(&packet(&d, 2, "miIO.info", json!([]), now), client(), now);
    let ids: Vec<u32> = out
        .iter()
        .map(|o| {
            Response::parse(&decode(&tok(), &o.bytes).unwrap().payload)
                .unwrap()
                .id
        })
        .collect();
    assert_eq!(
        ids,
        vec![2, 1],
        "the held reply goes out after the next one"
    );
    // A lone reply is released by the timer.
    assert!(d
        .handle(&packet(&d, 3, "miIO.info", json!([]), now), client(), now)
        .is_empty());
    assert!(d
        .handle_timeout(now + Duration::from_millis(100))
        .is_empty());
    let out = d.handle_timeout(now + REORDER_HOLD);
    assert_eq!(out.len(), 1);
    assert!(d.next_timeout().is_none());
}

#[test]
fn fault_reboot_after_requests() {
    let (mut d, now) = with_faults("yeelink.light.color1", |f| f.reboot_after_requests = 2);
    ok(&mut d, 1, "miIO.info", json!([]), now);
    assert_eq!(d.boots(), 1);
    let later = now + Duration::from_secs(600);
    ok(&mut d, 2, "miIO.info", json!([]), later);
    assert_eq!(d.boots(), 2);
    assert!(d.clock(later) < 3);
    ok(&mut d, 1, "miIO.info", json!([]), later);
}

#[test]
fn push_until_acked() {
    let (mut d, now) = dev("yeelink.light.color1");
    let sub: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let p = packet(
        &d,
        1,
        "miIO.sub",
        json!({"version":"2.0","did":"1","update_ts":99,"sub_method":"."}),
        now,
    );
    d.handle(&p, sub, now);
    assert_eq!(d.subscriber(), Some(sub));
    // A physical change.
    d.set_value(2, 2, json!(55), now).unwrap();
    assert!(d.next_timeout().is_some_and(|t| t <= now));
    let out = d.handle_timeout(now);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, sub);
    let push = Request::parse(&decode(&tok(), &out[0].bytes).unwrap().payload).unwrap();
    assert_eq!(push.method, "properties_changed");
    assert_eq!(
        push.params,
        json!([{"did":"424242","siid":2,"piid":2,"value":55}])
    );
    // Not acked: resent with the same id.
    assert!(d
        .handle_timeout(now + Duration::from_millis(500))
        .is_empty());
    let again = d.handle_timeout(now + PUSH_RETRY);
    let push2 = Request::parse(&decode(&tok(), &again[0].bytes).unwrap().payload).unwrap();
    assert_eq!(push2.id, push.id);
    // Ack stops the resends.
    let ack = Response::ok(push.id, json!({"code":0})).to_bytes();
    let ack = encode(&tok(), d.did(), 1, &ack).unwrap();
    assert!(d.handle(&ack, sub, now).is_empty());
    assert!(d.next_timeout().is_none());
    // A change made by a client's set_properties is pushed too, right after the reply.
    let out = d.handle(
        &packet(
            &d,
            2,
            "set_properties",
            json!([{"siid":2,"piid":1,"value":true}]),
            now,
        ),
        client(),
        now,
    );
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].to, out[1].to), (client(), sub));
    // Setting the same value again is not a change.
    d.set_value(2, 1, json!(true), now).unwrap();
    let out = d.handle_timeout(now);
    assert!(out.is_empty());
    // Unsubscribe: no more pushes.
    ok(&mut d, 3, "miIO.unsub", json!({}), now);
    d.set_value(2, 2, json!(60), now).unwrap();
    assert!(d.handle_timeout(now + Duration::from_secs(30)).is_empty());
    assert!(d.next_timeout().is_none());
}

#[test]
fn set_value_checks_and_initial_values() {
    let now = Instant::now();
    let mut c = cfg("yeelink.light.color1");
    c.initial.insert("2.2".into(), json!(77));
    c.initial.insert("2.1".into(), json!(true));
    let mut d = SimDevice::new(&c, now).unwrap();
    assert_eq!(d.value(2, 2), Some(json!(77)));
    assert_eq!(d.value(2, 1), Some(json!(true)));
    assert!(matches!(
        d.set_value(2, 2, json!(0), now),
        Err(SimError::InvalidValue { .. })
    ));
    assert!(matches!(
        d.set_value(7, 7, json!(0), now),
        Err(SimError::UnknownProperty { .. })
    ));
    c.initial.insert("2.2".into(), json!(0));
    assert!(SimDevice::new(&c, now).is_err());
}
