//! Socket tests: a real fleet on loopback, driven by the shared codec.
//! Each test uses its own 127.77.N.0/24 block.

mod common;

use std::time::{Duration, Instant};

use common::Client;
use fake_device::{DeviceConfig, Disposition, Faults, Fleet, FleetConfig};
use mijia_proto::miio::packet::{self, HelloKind, PacketError};
use mijia_proto::miio::{Request, Response, Token};
use serde_json::json;

const TOKEN: &str = "00112233445566778899aabbccddeeff";

fn tok() -> Token {
    TOKEN.parse().unwrap()
}

fn device(name: &str, model: &str, did: u64, ip: &str) -> DeviceConfig {
    let mut d = DeviceConfig::new(name, model, did, format!("{ip}:0").parse().unwrap());
    d.token = Some(tok());
    d
}

async fn one(name: &str, model: &str, ip: &str) -> (Fleet, std::net::SocketAddr) {
    let cfg = FleetConfig {
        devices: vec![device(name, model, 5555, ip)],
    };
    let f = Fleet::start(cfg).await.unwrap();
    let addr = f.devices()[0].addr;
    (f, addr)
}

const SHORT: Duration = Duration::from_millis(400);

#[tokio::test]
async fn fleet_answers_on_its_own_addresses() {
    let mut unprov = device("plug", "chuangmi.plug.m1", 3, "127.77.1.4");
    unprov.token = None;
    unprov.unprovisioned = true;
    let cfg = FleetConfig {
        devices: vec![
            device("light", "yeelink.light.color1", 1, "127.77.1.2"),
            device("lamp", "yeelink.light.mono1", 2, "127.77.1.3"),
            unprov,
        ],
    };
    let fleet = Fleet::start(cfg).await.unwrap();
    let infos = fleet.devices();
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[0].addr.ip().to_string(), "127.77.1.2");
    assert_ne!(infos[0].addr.port(), 0, "ephemeral port reported");
    let c = Client::new("127.77.1.1", tok()).await;

    let h = c.hello(infos[0].addr, SHORT).await.unwrap();
    assert_eq!((h.did, h.kind), (1, HelloKind::Provisioned));
    let r = c
        .call(
            infos[0].addr,
            10,
            "get_properties",
            json!([{"did":"1","siid":2,"piid":1}]),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.unwrap()[0]["value"], json!(false));
    let r = c
        .call(
            infos[0].addr,
            11,
            "set_properties",
            json!([{"did":"1","siid":2,"piid":1,"value":true}]),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.unwrap()[0]["code"], json!(0));
    let light = fleet.device("light").unwrap();
    assert_eq!(light.value(2, 1), Some(json!(true)));
    let log = light.requests();
    assert_eq!(log.iter().map(|r| r.id).collect::<Vec<_>>(), vec![10, 11]);
    assert_eq!(log[0].from, c.addr());
    assert_eq!(log[0].method, "get_properties");
    light.clear_requests();
    assert!(light.requests().is_empty());

    let r = c
        .call(infos[1].addr, 12, "get_prop", json!(["power", "bright"]))
        .await
        .unwrap();
    assert_eq!(r.outcome.unwrap(), json!(["off", "100"]));

    let h = c.hello(infos[2].addr, SHORT).await.unwrap();
    assert_eq!(
        h.kind,
        HelloKind::Token(infos[2].token),
        "unprovisioned device reveals its token"
    );
    let c3 = Client::new("127.77.1.1", infos[2].token).await;
    let r = c3
        .call(infos[2].addr, 13, "miIO.info", json!([]))
        .await
        .unwrap();
    let info = r.outcome.unwrap();
    assert_eq!(info["netif"]["localIp"], json!("127.77.1.4"));
    assert_eq!(info["token"], json!(infos[2].token.reveal()));
    assert!(fleet.device("nope").is_none());
    fleet.shutdown().await;
}

#[tokio::test]
async fn wrong_token_and_duplicates_are_silent() {
    let (fleet, addr) = one("d", "yeelink.light.color1", "127.77.2.2").await;
    let wrong = Client::new(
        "127.77.2.1",
        "ffeeddccbbaa99887766554433221100".parse().unwrap(),
    )
    .await;
    let h = wrong.hello(addr, SHORT).await.unwrap();
    wrong
        .send(addr, h.did, h.stamp, 1, "miIO.info", json!([]))
        .await;
    assert!(wrong.recv(SHORT).await.is_none(), "wrong token: no answer");

    let c = Client::new("127.77.2.1", tok()).await;
    c.send(addr, h.did, h.stamp, 2, "miIO.info", json!([]))
        .await;
    assert!(c.recv(SHORT).await.is_some());
    c.send(addr, h.did, h.stamp, 2, "miIO.info", json!([]))
        .await;
    assert!(c.recv(SHORT).await.is_none(), "duplicate id: no answer");
    let d = fleet.device("d").unwrap();
    assert_eq!(
        d.requests().last().unwrap().disposition,
        Disposition::Duplicate
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn faults_are_observable_over_udp() {
    let (fleet, addr) = one("d", "yeelink.light.color1", "127.77.3.2").await;
    let d = fleet.device("d").unwrap();
    let c = Client::new("127.77.3.1", tok()).await;
    let h = c.hello(addr, SHORT).await.unwrap();

    // Offline: not even a hello.
    d.set_offline(true);
    assert!(c.hello(addr, SHORT).await.is_none());
    d.set_offline(false);
    assert!(c.hello(addr, SHORT).await.is_some());

    // Delay.
    d.set_faults(Faults {
        delay_ms: 300,
        ..Faults::default()
    });
    let t = Instant::now();
    c.send(addr, h.did, h.stamp, 201, "miIO.info", json!([]))
        .await;
    assert!(c.recv(Duration::from_secs(2)).await.is_some());
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );

    // Duplicates.
    d.set_faults(Faults {
        duplicate_replies: 2,
        ..Faults::default()
    });
    c.send(addr, h.did, h.stamp, 202, "miIO.info", json!([]))
        .await;
    assert_eq!(c.recv_all(SHORT).await.len(), 3);

    // Reply loss.
    d.set_faults(Faults {
        reply_loss: 1.0,
        ..Faults::default()
    });
    c.send(addr, h.did, h.stamp, 203, "miIO.info", json!([]))
        .await;
    assert!(c.recv(SHORT).await.is_none());
    assert_eq!(d.requests().last().unwrap().id, 203, "it arrived");

    // Request loss.
    d.set_faults(Faults {
        request_loss: 1.0,
        ..Faults::default()
    });
    c.send(addr, h.did, h.stamp, 204, "miIO.info", json!([]))
        .await;
    assert!(c.recv(SHORT).await.is_none());
    assert_ne!(d.requests().last().unwrap().id, 204, "it never arrived");

    // Corrupt checksum.
    d.set_faults(Faults {
        corrupt_checksum: 1.0,
        ..Faults::default()
    });
    c.send(addr, h.did, h.stamp, 205, "miIO.info", json!([]))
        .await;
    let b = c.recv(SHORT).await.unwrap();
    assert_eq!(packet::decode(&tok(), &b), Err(PacketError::Checksum));

    // Reorder: the first reply comes after the second.
    d.set_faults(Faults {
        reorder: true,
        ..Faults::default()
    });
    c.send(addr, h.did, h.stamp, 206, "miIO.info", json!([]))
        .await;
    c.send(addr, h.did, h.stamp, 207, "miIO.info", json!([]))
        .await;
    let got: Vec<u32> = c
        .recv_all(SHORT)
        .await
        .iter()
        .map(|b| c.decode(b).id)
        .collect();
    assert_eq!(got, vec![207, 206]);
    // A lone reply is released after the hold time.
    c.send(addr, h.did, h.stamp, 208, "miIO.info", json!([]))
        .await;
    assert!(c.recv(Duration::from_millis(100)).await.is_none());
    let b = c.recv(Duration::from_secs(1)).await.unwrap();
    assert_eq!(c.decode(&b).id, 208);

    d.set_faults(Faults::default());
    c.send(addr, h.did, h.stamp, 209, "miIO.info", json!([]))
        .await;
    assert!(c.recv(SHORT).await.is_some());
    fleet.shutdown().await;
}

#[tokio::test]
async fn reboot_and_token_change() {
    let (fleet, addr) = one("d", "chuangmi.plug.m1", "127.77.4.2").await;
    let d = fleet.device("d").unwrap();
    let c = Client::new("127.77.4.1", tok()).await;
    let before = c.hello(addr, SHORT).await.unwrap().stamp;
    assert!(before >= 20, "{before}");
    d.reboot();
    assert!(c.hello(addr, SHORT).await.unwrap().stamp < 3);
    assert_eq!(d.boots(), 2);

    let new: Token = "ffeeddccbbaa99887766554433221100".parse().unwrap();
    d.change_token(new);
    assert_eq!(fleet.devices()[0].token, new);
    assert!(c.call(addr, 1, "miIO.info", json!([])).await.is_none());
    let c2 = Client::new("127.77.4.1", new).await;
    assert!(c2.call(addr, 2, "miIO.info", json!([])).await.is_some());
    fleet.shutdown().await;
}

#[tokio::test]
async fn push_is_resent_until_acked() {
    let (fleet, addr) = one("d", "yeelink.light.color1", "127.77.5.2").await;
    let d = fleet.device("d").unwrap();
    let c = Client::new("127.77.5.1", tok()).await;
    let r = c
        .call(
            addr,
            1,
            "miIO.sub",
            json!({"version":"2.0","did":"1","update_ts":5,"sub_method":"."}),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.unwrap(), json!({"code":0}));
    assert_eq!(d.subscriber(), Some(c.addr()));
    d.set_value(2, 2, json!(64)).unwrap();
    let first = c.recv(Duration::from_secs(1)).await.unwrap();
    let push = Request::parse(&packet::decode(&tok(), &first).unwrap().payload).unwrap();
    assert_eq!(push.method, "properties_changed");
    assert_eq!(push.params[0]["value"], json!(64));
    let second = c.recv(Duration::from_secs(2)).await.unwrap();
    let again = Request::parse(&packet::decode(&tok(), &second).unwrap().payload).unwrap();
    assert_eq!(again.id, push.id, "resent with the same id");
    let ack = Response::ok(push.id, json!({"code":0})).to_bytes();
    c.sock
        .send_to(&packet::encode(&tok(), 5555, 1, &ack).unwrap(), addr)
        .await
        .unwrap();
    assert!(
        c.recv(Duration::from_millis(1500)).await.is_none(),
        "acked: no more resends"
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn bind_conflicts_and_bad_addresses_are_errors() {
    let mut cfg = FleetConfig {
        devices: vec![device("a", "chuangmi.plug.m1", 1, "127.77.6.2")],
    };
    // TEST-NET-1 (documentation only): refused by validation before any
    // socket is made, so nothing is ever sent to it.
    cfg.devices[0].addr = "192.0.2.1:54321".parse().unwrap();
    let e = Fleet::start(cfg).await.unwrap_err().to_string();
    assert!(e.contains("loopback"), "{e}");
}
