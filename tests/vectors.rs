//! Known-answer vectors from `fixtures/miio-packets.json`: every entry is
//! decoded and re-encoded byte for byte.

use mijia_proto::miio::crypto::Keys;
use mijia_proto::miio::packet::{self, HelloKind};
use mijia_proto::miio::{Response, Token};
use serde_json::Value;

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/miio-packets.json");
    let text = std::fs::read_to_string(path).expect("vector file is present");
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("vector field {k} missing in {v}"))
}

fn tok(v: &Value) -> Token {
    s(v, "token").parse().expect("vector token")
}

fn u32_hex(v: &Value, k: &str) -> u32 {
    u32::from_str_radix(s(v, k), 16).expect("hex u32")
}

#[test]
fn key_derivation() {
    let doc = load();
    let keys = doc["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 3);
    for k in keys {
        let derived = Keys::derive(&tok(k));
        assert_eq!(hex::encode(derived.key), s(k, "key"));
        assert_eq!(hex::encode(derived.iv), s(k, "iv"));
    }
}

#[test]
fn packets_encode_and_decode_byte_for_byte() {
    let doc = load();
    let packets = doc["packets"].as_array().expect("packets");
    assert!(packets.len() >= 7);
    for p in packets {
        let name = s(p, "name");
        let token = tok(p);
        let did = u64::from(u32_hex(p, "did"));
        let stamp = u32_hex(p, "stamp");
        let plaintext = hex::decode(s(p, "plaintext_hex")).expect("hex");
        assert_eq!(
            plaintext,
            s(p, "plaintext").as_bytes(),
            "{name}: plaintext fields agree"
        );
        let wire = hex::decode(s(p, "packet_hex")).expect("hex");

        let built = packet::encode(&token, did, stamp, &plaintext).expect("encode");
        assert_eq!(hex::encode(&built), hex::encode(&wire), "{name}: encode");

        let decoded = packet::decode(&token, &wire).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded.header.did, did, "{name}");
        assert_eq!(decoded.header.stamp, stamp, "{name}");
        assert_eq!(decoded.payload, plaintext, "{name}: decode");
        // Every payload is valid JSON once trailing NULs are stripped.
        mijia_proto::miio::json::parse(&decoded.payload).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn responses_parse_into_their_meaning() {
    let doc = load();
    let by_name = |n: &str| {
        doc["packets"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == n))
            .unwrap_or_else(|| panic!("vector {n}"))
            .clone()
    };
    let ok = by_name("ok_response");
    let d = packet::decode(&tok(&ok), &hex::decode(s(&ok, "packet_hex")).unwrap()).unwrap();
    let r = Response::parse(&d.payload).unwrap();
    assert_eq!(r.outcome, Ok(serde_json::json!(["ok"])));

    let err = by_name("error_response_9999");
    let d = packet::decode(&tok(&err), &hex::decode(s(&err, "packet_hex")).unwrap()).unwrap();
    let e = Response::parse(&d.payload).unwrap().outcome.unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (-9999, "user ack timeout"));

    let gp = by_name("get_properties_response");
    let d = packet::decode(&tok(&gp), &hex::decode(s(&gp, "packet_hex")).unwrap()).unwrap();
    let r = Response::parse(&d.payload).unwrap().outcome.unwrap();
    let codes: Vec<i64> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_i64().unwrap())
        .collect();
    assert!(
        codes.contains(&-4001),
        "includes an unreadable property: {codes:?}"
    );
}

#[test]
fn hello_forms() {
    let doc = load();
    let h = &doc["hello"];
    assert_eq!(hex::encode(packet::hello()), s(h, "request"));
    assert!(packet::is_hello_request(
        &hex::decode(s(h, "request")).unwrap()
    ));

    let prov = &h["reply_provisioned"];
    let r = packet::parse_hello_reply(&hex::decode(s(prov, "hex")).unwrap()).unwrap();
    assert_eq!(r.did, u64::from(u32_hex(prov, "did")));
    assert_eq!(r.stamp, u32_hex(prov, "stamp"));
    assert_eq!(r.kind, HelloKind::Provisioned);
    assert_eq!(
        hex::encode(packet::hello_reply(r.did, r.stamp, &r.kind)),
        s(prov, "hex")
    );

    for key in ["reply_unprovisioned", "real_capture_from_public_issue"] {
        let v = &h[key];
        let r = packet::parse_hello_reply(&hex::decode(s(v, "hex")).unwrap()).unwrap();
        assert_eq!(r.did, u64::from(u32_hex(v, "did")), "{key}");
        assert_eq!(r.kind, HelloKind::Token(tok(v)), "{key}: token revealed");
        assert_eq!(
            hex::encode(packet::hello_reply(r.did, r.stamp, &r.kind)),
            s(v, "hex")
        );
    }
}

#[test]
fn negative_vectors_fail() {
    let doc = load();
    for n in doc["negative"].as_array().expect("negative") {
        let target = s(n, "packet");
        let p = doc["packets"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == target))
            .expect("referenced packet");
        let wire = hex::decode(s(p, "packet_hex")).unwrap();
        let err = packet::decode(&tok(n), &wire).unwrap_err();
        assert_eq!(err, packet::PacketError::Checksum, "{}", s(n, "name"));
    }
}
