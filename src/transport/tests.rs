//! Transport tests against a tiny scripted device on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mijia_proto::miio::packet::{self, HelloKind};
use mijia_proto::miio::{Request, Token};
use serde_json::{json, Value};
use tokio::net::UdpSocket;

use super::*;

const DID: u64 = 0x0102_0304;

fn token() -> Token {
    Token::from_bytes(*b"0123456789abcdef")
}

/// What the scripted device sends back for one request.
enum Out {
    /// A JSON payload, encrypted with the device token and did.
    Json(Value),
    /// Raw bytes.
    Raw(Vec<u8>),
}

type Script = Box<dyn FnMut(&Request, usize) -> Vec<Out> + Send>;

struct Fake {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    hellos: Arc<Mutex<usize>>,
}

impl Fake {
    fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
    fn hellos(&self) -> usize {
        self.hellos.lock().map(|h| *h).unwrap_or_default()
    }
}

/// A device on 127.0.0.1 (random port) that answers hellos and passes
/// each request (with its 0-based index) to `script`.
async fn fake(mut script: Script) -> Fake {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = sock.local_addr().expect("local addr");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let hellos = Arc::new(Mutex::new(0));
    let (reqs, hel) = (requests.clone(), hellos.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut stamp = 100u32;
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            stamp += 1;
            let dgram = &buf[..n];
            if packet::is_hello_request(dgram) {
                if let Ok(mut h) = hel.lock() {
                    *h += 1;
                }
                let _ = sock
                    .send_to(
                        &packet::hello_reply(DID, stamp, &HelloKind::Provisioned),
                        from,
                    )
                    .await;
                continue;
            }
            let Ok(d) = packet::decode(&token(), dgram) else {
                continue;
            };
            let Ok(req) = Request::parse(&d.payload) else {
                continue;
            };
            let index = {
                let mut r = reqs.lock().expect("lock");
                r.push(req.clone());
                r.len() - 1
            };
            for out in script(&req, index) {
                let bytes = match out {
                    Out::Json(v) => {
                        let body = serde_json::to_vec(&v).expect("json");
                        packet::encode(&token(), DID, stamp, &body).expect("encode")
                    }
                    Out::Raw(b) => b,
                };
                let _ = sock.send_to(&bytes, from).await;
            }
        }
    });
    Fake {
        addr,
        requests,
        hellos,
    }
}

fn fast() -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_millis(300),
        handshake_timeout: Duration::from_millis(300),
        hello_interval: Duration::from_millis(50),
        backoff_base: Duration::from_millis(1),
        ..ClientConfig::default()
    }
}

fn ok(id: u32, result: Value) -> Out {
    Out::Json(json!({"id": id, "result": result}))
}

#[tokio::test]
async fn stale_duplicate_foreign_and_corrupt_datagrams_are_ignored() {
    let dev = fake(Box::new(|req, _| {
        let stale = req.id.wrapping_sub(1).max(1);
        let foreign = packet::encode(
            &token(),
            77,
            1,
            format!(r#"{{"id":{},"result":"foreign"}}"#, req.id).as_bytes(),
        )
        .expect("encode");
        let mut corrupt =
            packet::encode(&token(), DID, 1, br#"{"id":1,"result":0}"#).expect("encode");
        corrupt[40] ^= 0xff;
        vec![
            ok(stale, json!("stale")),
            Out::Raw(foreign),
            Out::Raw(corrupt),
            Out::Raw(b"garbage".to_vec()),
            ok(req.id, json!(["on", req.id])),
            ok(req.id, json!(["duplicate"])),
        ]
    }))
    .await;
    let d = MiioDevice::new(dev.addr, token(), fast(), None).expect("device");
    let first = d
        .raw("get_prop", json!(["power"]))
        .await
        .expect("first call");
    assert_eq!(first[0], "on");
    // The duplicate of the first reply is still queued; the second call
    // must not take it for its own answer.
    let second = d
        .raw("get_prop", json!(["power"]))
        .await
        .expect("second call");
    assert_eq!(second[0], "on");
    assert_ne!(first[1], second[1]);
    assert_eq!(dev.requests().len(), 2);
    assert_eq!(d.did().await, Some(DID));
}

#[tokio::test]
async fn lost_request_is_resent_with_a_jumped_id_after_a_new_hello() {
    let dev = fake(Box::new(|req, i| {
        if i == 0 {
            vec![]
        } else {
            vec![ok(req.id, json!(0))]
        }
    }))
    .await;
    let d = MiioDevice::new(dev.addr, token(), fast(), None).expect("device");
    d.raw("x", json!([])).await.expect("second attempt answers");
    let reqs = dev.requests();
    assert_eq!(reqs.len(), 2);
    let gap = (reqs[1].id + 9998 - reqs[0].id) % 9998;
    assert!((100..1001).contains(&gap), "gap {gap}");
    assert_eq!(dev.hellos(), 2, "a timeout forces a fresh handshake");
}

#[tokio::test]
async fn busy_replies_back_off_and_retry_with_new_ids() {
    let dev = fake(Box::new(|req, i| {
        if i < 2 {
            vec![Out::Json(
                json!({"id": req.id, "error": {"code": -9999, "message": "user ack timeout"}}),
            )]
        } else {
            vec![ok(req.id, json!("ok"))]
        }
    }))
    .await;
    let d = MiioDevice::new(dev.addr, token(), fast(), None).expect("device");
    assert_eq!(d.raw("x", json!([])).await.expect("third try"), json!("ok"));
    let ids: Vec<u32> = dev.requests().iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids[0] != ids[1] && ids[1] != ids[2]);

    // Other device errors come back at once, structured.
    let dev = fake(Box::new(|req, _| {
        vec![Out::Json(
            json!({"id": req.id, "error": {"code": -6011, "message": "device_poweroff"}}),
        )]
    }))
    .await;
    let d = MiioDevice::new(dev.addr, token(), fast(), None).expect("device");
    let e = d
        .raw("set_power", json!(["on"]))
        .await
        .expect_err("device error");
    assert_eq!(e.device_error().map(|e| e.code), Some(-6011));
    assert_eq!((e.step(), e.attempts()), (Step::Device, 1));
    assert!(e.to_string().contains("powered off"), "{e}");
    assert_eq!(dev.requests().len(), 1);
}

fn props_reply(req: &Request, limit: usize) -> Vec<Out> {
    let items = req.params.as_array().cloned().unwrap_or_default();
    if items.len() > limit {
        return vec![Out::Json(
            json!({"id": req.id, "error": {"code": -9999, "message": "user ack timeout"}}),
        )];
    }
    // Answer in reverse order: results must be matched by id.
    let res: Vec<Value> = items
        .iter()
        .rev()
        .map(|p| json!({"did": p["did"], "siid": p["siid"], "piid": p["piid"], "code": 0, "value": p["piid"].as_u64().unwrap_or(0) * 10}))
        .collect();
    vec![ok(req.id, Value::Array(res))]
}

#[tokio::test]
async fn a_learnt_batch_size_carries_over_to_the_next_run_through_the_store() {
    let dev = fake(Box::new(|req, _| props_reply(req, 3))).await;
    let store = Arc::new(MemoryIdStore::new());
    let ids: Vec<PropId> = (1..=6).map(|p| PropId::new(2, p)).collect();
    let first = MiioDevice::new(dev.addr, token(), fast(), Some(store.clone())).expect("device");
    first.get_properties(&ids).await.expect("all read");
    assert_eq!(first.batch_size(), 3);
    assert_eq!(store.load_batch(&did_key(DID)), Some(3));
    drop(first);
    // A new run (a new device object) starts at the learnt size: no -9999.
    let before = dev.requests().len();
    let second =
        MiioDevice::with_did(dev.addr, token(), DID, fast(), Some(store.clone())).expect("device");
    second.get_properties(&ids).await.expect("all read");
    let sizes: Vec<usize> = dev.requests()[before..]
        .iter()
        .map(|r| r.params.as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![3, 3]);
    // Never above the configured size, whatever the store says.
    store.store_batch(&[did_key(DID)], 50);
    let third = MiioDevice::with_did(dev.addr, token(), DID, fast(), Some(store)).expect("device");
    assert_eq!(third.batch_size(), fast().batch_size);
}

#[tokio::test]
async fn batches_shrink_on_9999_and_the_size_is_remembered() {
    let dev = fake(Box::new(|req, _| props_reply(req, 3))).await;
    let d = MiioDevice::new(dev.addr, token(), fast(), None).expect("device");
    let ids: Vec<PropId> = (1..=10).map(|p| PropId::new(2, p)).collect();
    let res = d.get_properties(&ids).await.expect("all read");
    assert_eq!(res.len(), 10);
    for (r, id) in res.iter().zip(&ids) {
        assert_eq!((r.siid, r.piid, r.code), (id.siid, id.piid, 0));
        assert_eq!(r.value, Some(json!(u64::from(id.piid) * 10)));
    }
    let sizes: Vec<usize> = dev
        .requests()
        .iter()
        .map(|r| r.params.as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![10, 5, 2, 2, 2, 2, 2]);
    assert_eq!(d.batch_size(), 2);
    // The did field is the device's real decimal did.
    assert_eq!(dev.requests()[0].params[0]["did"], json!(DID.to_string()));

    // Next call starts at the remembered size.
    d.get_properties(&ids[..4]).await.expect("read again");
    let sizes: Vec<usize> = dev.requests()[7..]
        .iter()
        .map(|r| r.params.as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![2, 2]);
}

#[tokio::test]
async fn missing_entries_are_reported() {
    let dev = fake(Box::new(|req, _| {
        vec![ok(
            req.id,
            json!([{"did": "x", "siid": 2, "piid": 1, "code": -4001}]),
        )]
    }))
    .await;
    let d = MiioDevice::new(dev.addr, token(), fast(), None).expect("device");
    let res = d
        .get_properties(&[PropId::new(2, 1), PropId::new(2, 2)])
        .await
        .expect("reply");
    assert_eq!(res[0].code, -4001);
    assert_eq!(res[1].code, PropResult::MISSING);
    assert!(!res[1].is_success());
}

#[tokio::test]
async fn silent_device_after_hello_means_check_the_token() {
    let dev = fake(Box::new(|_, _| vec![])).await;
    let cfg = ClientConfig {
        retries: 1,
        ..fast()
    };
    let d = MiioDevice::new(dev.addr, token(), cfg, None).expect("device");
    let e = d.info().await.expect_err("no reply");
    assert!(matches!(e, MiioError::NoReply { attempts: 2, .. }), "{e:?}");
    assert!(e.to_string().contains("check the token"));

    // A device that answers with the wrong token's checksum.
    let dev = fake(Box::new(|req, _| {
        let other = Token::from_bytes([9; 16]);
        let body = format!(r#"{{"id":{},"result":0}}"#, req.id);
        vec![Out::Raw(
            packet::encode(&other, DID, 1, body.as_bytes()).expect("encode"),
        )]
    }))
    .await;
    let d = MiioDevice::new(
        dev.addr,
        token(),
        ClientConfig {
            retries: 0,
            ..fast()
        },
        None,
    )
    .expect("device");
    let e = d.info().await.expect_err("checksum");
    assert!(matches!(e, MiioError::WrongToken { count: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("check the token"));
}

#[tokio::test]
async fn no_hello_reply_means_unreachable() {
    // A bound socket that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("addr");
    let d = MiioDevice::new(
        addr,
        token(),
        ClientConfig {
            retries: 1,
            ..fast()
        },
        None,
    )
    .expect("device");
    let e = d.info().await.expect_err("unreachable");
    assert!(
        matches!(
            e,
            MiioError::Unreachable {
                attempts: 2,
                hellos: 6,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e
        .to_string()
        .contains("check the address and that the device is on"));
    assert_eq!(e.step(), Step::Handshake);
}

#[tokio::test]
async fn ids_continue_from_the_store() {
    let dev = fake(Box::new(|req, _| vec![ok(req.id, json!(0))])).await;
    let store = Arc::new(MemoryIdStore::new());
    store.store(&did_key(DID), 4242);
    let d = MiioDevice::new(dev.addr, token(), fast(), Some(store.clone())).expect("device");
    d.raw("x", json!([])).await.expect("call");
    assert_eq!(dev.requests()[0].id, 4242);
    assert_eq!(store.load(&did_key(DID)), Some(4243));
    assert_eq!(store.load(&addr_key(dev.addr)), Some(4243));
    // A new device object for the same address continues.
    let d2 = MiioDevice::new(dev.addr, token(), fast(), Some(store.clone())).expect("device");
    d2.raw("x", json!([])).await.expect("call");
    assert_eq!(dev.requests()[1].id, 4243);
}

#[tokio::test]
async fn action_and_set_shapes() {
    let dev = fake(Box::new(|req, _| match req.method.as_str() {
        "action" => vec![ok(req.id, json!({"code": 0, "out": [req.params["in"][0].clone()]}))],
        _ => {
            let items = req.params.as_array().cloned().unwrap_or_default();
            let res: Vec<Value> = items
                .iter()
                .map(|p| json!({"siid": p["siid"], "piid": p["piid"], "code": if p["value"].is_boolean() { 0 } else { -4005 }}))
                .collect();
            vec![ok(req.id, Value::Array(res))]
        }
    }))
    .await;
    let d = MiioDevice::new(dev.addr, token(), fast(), None).expect("device");
    let a = d.action(5, 1, vec![json!("hi")]).await.expect("action");
    assert_eq!(
        a,
        ActionResult {
            code: 0,
            out: vec![json!("hi")]
        }
    );
    assert_eq!(dev.requests()[0].params["aiid"], json!(1));
    let r = d
        .set_properties(&[
            (PropId::new(2, 1), json!(true)),
            (PropId::new(2, 2), json!(500)),
        ])
        .await
        .expect("set");
    assert_eq!((r[0].code, r[1].code), (0, -4005));
    assert_eq!(r[1].meaning(), "invalid value");
}

#[tokio::test]
async fn devices_run_in_parallel() {
    // Two silent devices: waiting on both takes about as long as one.
    let a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let b = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let cfg = ClientConfig {
        retries: 0,
        ..fast()
    };
    let da =
        MiioDevice::new(a.local_addr().expect("addr"), token(), cfg.clone(), None).expect("device");
    let db = MiioDevice::new(b.local_addr().expect("addr"), token(), cfg, None).expect("device");
    let t0 = std::time::Instant::now();
    let (x, y) = tokio::join!(da.info(), db.info());
    assert!(x.is_err() && y.is_err());
    assert!(
        t0.elapsed() < Duration::from_millis(550),
        "{:?}",
        t0.elapsed()
    );
}
