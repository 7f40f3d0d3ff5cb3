//! The simulated cloud driven over real HTTP on loopback with a minimal
//! client (hyper) and the `mijia_proto::cloud` signing and login parsers:
//! every login path, signed calls in both variants, device state shared
//! with the fleet, and every injected fault.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mijia_proto::cloud::form::encode_form;
use mijia_proto::cloud::login::{
    identity_list_url, parse_identity_list, parse_login_auth2, parse_qr_poll, parse_qr_start,
    parse_service_login, parse_verify, strip_json_prefix,
};
use mijia_proto::cloud::signing::{GZIP_REQUEST_HEADER, RC4_HEADERS};
use mijia_proto::cloud::{
    decode_response, password_hash, LoginStep, LoginSuccess, Method, Nonce, Password, Region,
    RequestSigner, SignedNonce, Ssecurity, VerifyOutcome,
};
use serde_json::{json, Value};

use super::*;
use crate::{Fleet, FleetConfig};

const FLEET: &str = include_str!("../../../fixtures/fleets/cloud.toml");
const ALICE: &str = "alice@example.com";
const ALICE_PW: &str = "correct horse battery staple";
const BOB: &str = "bob@example.com";
const BOB_PW: &str = "hunter2";

// ----- a minimal HTTP client with a cookie jar ---------------------------------

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn account_json(&self) -> Value {
        let t = self.text();
        assert!(t.starts_with("&&&START&&&"), "no prefix: {t}");
        serde_json::from_str(strip_json_prefix(&t)).unwrap()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default, Clone)]
struct Client {
    jar: BTreeMap<String, String>,
}

impl Client {
    async fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<Resp, String> {
        let rest = url.strip_prefix("http://").expect("http URL");
        let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let addr: SocketAddr = hostport.parse().expect("ip:port");
        assert!(
            matches!(addr, SocketAddr::V4(v) if v.ip().is_loopback()),
            "tests talk to loopback only: {addr}"
        );
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(if path.is_empty() { "/" } else { path })
            .header("host", hostport);
        if !self.jar.is_empty() {
            let c: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            b = b.header("cookie", c.join("; "));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(Bytes::from(body))).unwrap();
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        for (k, v) in &headers {
            if k == "set-cookie" {
                let first = v.split(';').next().unwrap_or("");
                if let Some((n, val)) = first.split_once('=') {
                    self.jar.insert(n.trim().to_owned(), val.trim().to_owned());
                }
            }
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes()
            .to_vec();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    async fn get(&mut self, url: &str) -> Resp {
        self.send("GET", url, &[], String::new()).await.unwrap()
    }

    async fn post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> Resp {
        self.send(
            "POST",
            url,
            &[("content-type", "application/x-www-form-urlencoded")],
            encode_form(fields),
        )
        .await
        .unwrap()
    }

    async fn post_json(&mut self, url: &str, v: Value) -> Resp {
        self.send(
            "POST",
            url,
            &[("content-type", "application/json")],
            v.to_string(),
        )
        .await
        .unwrap()
    }
}

// ----- fixtures ------------------------------------------------------------------

struct Env {
    fleet: Fleet,
    cloud: FakeCloud,
}

async fn env_with(edit: impl FnOnce(&mut FakeCloudConfig)) -> Env {
    let mut fc = FleetConfig::from_toml(FLEET).unwrap();
    for d in &mut fc.devices {
        d.addr.set_port(0);
    }
    let fleet = Fleet::start(fc).await.unwrap();
    let mut cc = FakeCloudConfig::from_fleet_toml(FLEET).unwrap();
    edit(&mut cc);
    let cloud = FakeCloud::start(cc, fleet.handles().to_vec())
        .await
        .unwrap();
    Env { fleet, cloud }
}

async fn env() -> Env {
    env_with(|_| {}).await
}

/// A logged-in client: cookies `userId`, `serviceToken`, … and the secret.
struct Session {
    client: Client,
    ssecurity: Ssecurity,
}

async fn password_login(cloud: &FakeCloud, user: &str, pw: &str) -> (Client, LoginStep) {
    let base = cloud.base_url();
    let mut c = Client::default();
    c.jar.insert("deviceId".into(), "testdevice01".into());
    let r = c
        .get(&format!("{base}/pass/serviceLogin?sid=xiaomiio&_json=true"))
        .await;
    let LoginStep::NeedPassword { sign, qs, callback } = parse_service_login(&r.text()).unwrap()
    else {
        panic!("expected 70016: {}", r.text());
    };
    assert!(callback.starts_with(&base), "{callback}");
    let hash = password_hash(&Password::new(pw));
    let r = c
        .post_form(
            &format!("{base}/pass/serviceLoginAuth2"),
            &[
                ("user", user),
                ("hash", &hash),
                ("sid", "xiaomiio"),
                ("callback", &callback),
                ("qs", &qs),
                ("_sign", &sign),
                ("_json", "true"),
            ],
        )
        .await;
    let step = parse_login_auth2(&r.text()).unwrap();
    (c, step)
}

async fn finish(mut c: Client, s: LoginSuccess) -> Session {
    assert!(s.location.starts_with("http://127."), "{}", s.location);
    let r = c.get(&s.location).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert!(c.jar.contains_key("serviceToken"));
    assert_eq!(c.jar.get("userId"), Some(&s.user_id));
    Session {
        client: c,
        ssecurity: s.ssecurity,
    }
}

async fn login(cloud: &FakeCloud, user: &str, pw: &str) -> Session {
    let (c, step) = password_login(cloud, user, pw).await;
    let LoginStep::Success(s) = step else {
        panic!("login failed: {step:?}");
    };
    finish(c, s).await
}

fn nonce() -> Nonce {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    Nonce::generate(rand::random(), ms)
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Rc4,
    Rc4Gzip,
    Hmac,
}

/// A signed API call; returns the raw reply and the decoded JSON (if any).
async fn call_with(
    s: &mut Session,
    cloud: &FakeCloud,
    region: Region,
    path: &str,
    data: Value,
    variant: Variant,
) -> (Resp, Option<Value>) {
    let signer = RequestSigner::new(&s.ssecurity, nonce());
    let data = data.to_string();
    let url = format!("{}{path}", cloud.api_base(region));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    let form = if variant == Variant::Hmac {
        headers.push(("content-type", "application/x-www-form-urlencoded"));
        headers.push(("x-xiaomi-protocal-flag-cli", "PROTOCAL-HTTP2"));
        signer.sign_hmac(path, &[("data", &data)])
    } else {
        headers.extend(RC4_HEADERS);
        if variant == Variant::Rc4Gzip {
            headers.push(GZIP_REQUEST_HEADER);
        }
        signer.sign_rc4(&s.ssecurity, Method::Post, path, &[("data", &data)])
    };
    let r = s
        .client
        .send("POST", &url, &headers, encode_form(&form.fields))
        .await
        .unwrap();
    let v = decode_response(signer.signed_nonce(), &r.body).ok();
    (r, v)
}

async fn call(
    s: &mut Session,
    cloud: &FakeCloud,
    region: Region,
    path: &str,
    data: Value,
) -> Value {
    let (r, v) = call_with(s, cloud, region, path, data, Variant::Rc4).await;
    assert_eq!(r.status, 200, "{}", r.text());
    v.unwrap_or_else(|| panic!("undecodable: {}", r.text()))
}

// ----- tests ---------------------------------------------------------------------

#[tokio::test]
async fn start_refuses_non_loopback() {
    let cfg = FakeCloudConfig {
        addr: "0.0.0.0:0".parse().unwrap(),
        ..FakeCloudConfig::default()
    };
    let e = FakeCloud::start(cfg, Vec::new()).await.unwrap_err();
    assert!(matches!(e, CloudError::NotLoopback(_)), "{e}");
    let cfg = FakeCloudConfig {
        addr: "[::1]:0".parse().unwrap(),
        ..FakeCloudConfig::default()
    };
    assert!(FakeCloud::start(cfg, Vec::new()).await.is_err());
}

#[tokio::test]
async fn urls_and_fixture() {
    let e = env().await;
    let base = e.cloud.base_url();
    assert!(base.starts_with("http://127.0.0.1:"));
    assert_eq!(e.cloud.api_template(), format!("{base}/{{region}}/app"));
    assert_eq!(e.cloud.sts_url(), format!("{base}/sts"));
    assert_eq!(e.cloud.api_base(Region::De), format!("{base}/de/app"));
    let cfg = FakeCloudConfig::from_fleet_toml(FLEET).unwrap();
    assert_eq!(cfg.accounts.len(), 2);
    assert_eq!(
        cfg.devices["kitchen-light"].room.as_deref(),
        Some("Kitchen")
    );
    assert!(!cfg.devices["garage-plug"].online);
    // Errors name the part and field.
    let bad = FLEET.replace("region = \"de\"", "region = \"mars\"");
    let err = FakeCloudConfig::from_fleet_toml(&bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("account #1") && err.contains("mars"), "{err}");
    let bad = FLEET.replace("owner = \"bob@example.com\"", "owner = \"carol\"");
    let err = FakeCloudConfig::from_fleet_toml(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("garage-plug") && err.contains("carol"),
        "{err}"
    );
    let bad = FLEET.replace("slow_set = true", "slow = true");
    let err = FakeCloudConfig::from_fleet_toml(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hall-purifier") && err.contains("slow"),
        "{err}"
    );
    // A plain fleet file gives an empty cloud.
    let plain = include_str!("../../../fixtures/fleets/home.toml");
    assert!(FakeCloudConfig::from_fleet_toml(plain)
        .unwrap()
        .accounts
        .is_empty());
}

#[tokio::test]
async fn password_login_and_signed_device_list() {
    let e = env().await;
    let mut s = login(&e.cloud, ALICE, ALICE_PW).await;
    for variant in [Variant::Rc4, Variant::Rc4Gzip, Variant::Hmac] {
        let (r, v) = call_with(
            &mut s,
            &e.cloud,
            Region::De,
            "/home/device_list",
            json!({"getVirtualModel": false, "getHuamiDevices": 0}),
            variant,
        )
        .await;
        assert_eq!(r.status, 200);
        // Only the HMAC variant answers in plain JSON.
        assert_eq!(
            r.body.first() == Some(&b'{'),
            variant == Variant::Hmac,
            "{}",
            r.text()
        );
        let v = v.unwrap();
        assert_eq!(v["code"], 0);
        assert_eq!(v["message"], "ok");
        let list = v["result"]["list"].as_array().unwrap();
        assert_eq!(list.len(), 3, "alice's three devices in de");
        let light = &list[0];
        let h = e.fleet.device("kitchen-light").unwrap().info();
        assert_eq!(light["did"], "100001");
        assert_eq!(light["token"], h.token.reveal());
        assert_eq!(light["localip"], h.addr.ip().to_string());
        assert_eq!(light["name"], "Kitchen light");
        assert_eq!(light["model"], "yeelink.light.color1");
        assert_eq!(light["isOnline"], true);
        assert_eq!(light["pid"], 0);
        assert_eq!(light["permitLevel"], 16);
        assert_eq!(light["uid"], 1812345678u64);
        assert_eq!(light["parent_id"], "");
        assert!(light["mac"].as_str().unwrap().contains(':'));
        assert!(light["spec_type"]
            .as_str()
            .unwrap()
            .starts_with("urn:miot-spec-v2:device:light"));
    }
    // Filter by dids.
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/home/device_list",
        json!({"dids": ["100002"]}),
    )
    .await;
    assert_eq!(v["result"]["list"].as_array().unwrap().len(), 1);
    // The request log saw cookies, form fields and a verdict.
    let log = e.cloud.requests();
    let api: Vec<_> = log.iter().filter(|r| r.host == "api").collect();
    assert_eq!(api.len(), 4);
    assert_eq!(api[0].verdict, "ok (rc4)");
    assert_eq!(api[2].verdict, "ok (hmac)");
    assert_eq!(api[0].region.as_deref(), Some("de"));
    assert!(api[0].cookies.contains_key("serviceToken"));
    assert!(api[0].form.contains_key("rc4_hash__"));
    assert_eq!(api[0].data.as_ref().unwrap()["getHuamiDevices"], 0);
    assert_eq!(
        api[0]
            .headers
            .get("miot-encrypt-algorithm")
            .map(String::as_str),
        Some("ENCRYPT-RC4")
    );
    let auth2 = log
        .iter()
        .find(|r| r.path == "/pass/serviceLoginAuth2")
        .unwrap();
    assert_eq!(auth2.verdict, "0 success");
    assert_eq!(
        auth2.cookies.get("deviceId").map(String::as_str),
        Some("testdevice01")
    );
}

#[tokio::test]
async fn vectors_from_the_reference_verify() {
    // Alice's ssecurity fixed to the vectors' one: the exact RC4 and HMAC
    // bodies of the vectors file verify, and the reply decrypts with the
    // vectors' signed nonce.
    let vectors: Value =
        serde_json::from_str(include_str!("../../../fixtures/cloud-signing.json")).unwrap();
    let ss = vectors["inputs"]["ssecurity"].as_str().unwrap().to_owned();
    let e =
        env_with(|c| c.accounts[0].ssecurity = Some(Ssecurity::from_base64(&ss).unwrap())).await;
    let mut s = login(&e.cloud, ALICE, ALICE_PW).await;
    assert_eq!(s.ssecurity.reveal(), ss);
    let dl = &vectors["requests"][0];
    assert_eq!(dl["signed_path"], "/home/device_list");
    let nonce = Nonce::parse(vectors["derived"]["nonce"].as_str().unwrap()).unwrap();
    let sn = SignedNonce::derive(&s.ssecurity, &nonce);
    assert_eq!(
        sn.reveal(),
        vectors["derived"]["signed_nonce"].as_str().unwrap()
    );
    let url = format!("{}/home/device_list", e.cloud.api_base(Region::De));
    let body = dl["rc4_variant"]["form_body_urlencoded"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .client
        .send("POST", &url, &RC4_HEADERS, body)
        .await
        .unwrap();
    let v = decode_response(&sn, &r.body).unwrap();
    assert_eq!(v["result"]["list"].as_array().unwrap().len(), 3);
    let body = dl["hmac_variant"]["form_body_urlencoded"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .client
        .send(
            "POST",
            &url,
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
        .await
        .unwrap();
    assert_eq!(r.json()["code"], 0);
}

#[tokio::test]
async fn bad_credentials_and_risk_control() {
    let e = env().await;
    let (_, step) = password_login(&e.cloud, ALICE, "wrong").await;
    assert!(
        matches!(step, LoginStep::BadCredentials { code: 70016, .. }),
        "{step:?}"
    );
    let (_, step) = password_login(&e.cloud, "nobody@example.com", "x").await;
    assert!(
        matches!(step, LoginStep::BadCredentials { code: 70016, .. }),
        "{step:?}"
    );
    // Alice's phone number and numeric id are login names too.
    let (_, step) = password_login(&e.cloud, "+15550100", ALICE_PW).await;
    assert!(matches!(step, LoginStep::Success(_)), "{step:?}");
    let (_, step) = password_login(&e.cloud, "1812345678", ALICE_PW).await;
    assert!(matches!(step, LoginStep::Success(_)), "{step:?}");
    // A lower-case hash is not what the real clients send.
    let base = e.cloud.base_url();
    let mut c = Client::default();
    let lower = password_hash(&Password::new(ALICE_PW)).to_lowercase();
    let r = c
        .post_form(
            &format!("{base}/pass/serviceLoginAuth2?_json=true"),
            &[("user", ALICE), ("hash", &lower), ("sid", "xiaomiio")],
        )
        .await;
    assert_eq!(r.account_json()["code"], 70016);
    // Fields in the query string of the POST work too (token extractor style).
    let hash = password_hash(&Password::new(ALICE_PW));
    let url = format!(
        "{base}/pass/serviceLoginAuth2?{}",
        encode_form(&[
            ("user", ALICE),
            ("hash", hash.as_str()),
            ("sid", "xiaomiio"),
            ("_json", "true")
        ])
    );
    let r = c.send("POST", &url, &[], String::new()).await.unwrap();
    assert!(matches!(
        parse_login_auth2(&r.text()).unwrap(),
        LoginStep::Success(_)
    ));

    let e = env_with(|c| c.accounts[0].risk_control = true).await;
    let (_, step) = password_login(&e.cloud, ALICE, ALICE_PW).await;
    assert!(
        matches!(step, LoginStep::BadCredentials { code: 70016, .. }),
        "{step:?}"
    );
    assert_eq!(
        e.cloud.requests().last().unwrap().verdict,
        "70016 risk control"
    );

    // Scripted outcomes come first, once each.
    let e = env().await;
    e.cloud
        .script_login(
            ALICE,
            vec![
                LoginOutcome::RiskControl,
                LoginOutcome::Error {
                    code: 20003,
                    desc: "blocked".into(),
                },
            ],
        )
        .unwrap();
    let (_, step) = password_login(&e.cloud, ALICE, ALICE_PW).await;
    assert!(matches!(
        step,
        LoginStep::BadCredentials { code: 70016, .. }
    ));
    let (_, step) = password_login(&e.cloud, ALICE, ALICE_PW).await;
    assert!(
        matches!(step, LoginStep::BadCredentials { code: 20003, .. }),
        "{step:?}"
    );
    let (_, step) = password_login(&e.cloud, ALICE, ALICE_PW).await;
    assert!(matches!(step, LoginStep::Success(_)));
}

async fn captcha_answer(c: &mut Client, base: &str, code: &str) -> Resp {
    let hash = password_hash(&Password::new(BOB_PW));
    c.post_form(
        &format!("{base}/pass/serviceLoginAuth2?_dc=1"),
        &[
            ("user", BOB),
            ("hash", &hash),
            ("sid", "xiaomiio"),
            ("captCode", code),
            ("_json", "true"),
        ],
    )
    .await
}

#[tokio::test]
async fn captcha_then_two_factor() {
    let e = env().await;
    let base = e.cloud.base_url();
    let (mut c, step) = password_login(&e.cloud, BOB, BOB_PW).await;
    let LoginStep::Captcha { captcha_url } = step else {
        panic!("{step:?}")
    };
    assert!(captcha_url.starts_with(&format!("{base}/pass/getCode?icodeType=login")));
    // Image sets `ick`; a wrong answer is another 87001.
    let img = c.get(&captcha_url).await;
    assert_eq!(img.header("content-type"), Some("image/png"));
    assert!(c.jar.contains_key("ick"));
    let r = captcha_answer(&mut c, &base, "WXYZ").await;
    assert!(matches!(
        parse_login_auth2(&r.text()).unwrap(),
        LoginStep::Captcha { .. }
    ));
    // The right answer without a fresh image (ick used up) is refused too.
    let r = captcha_answer(&mut c, &base, "abcd").await;
    assert!(matches!(
        parse_login_auth2(&r.text()).unwrap(),
        LoginStep::Captcha { .. }
    ));
    c.get(&captcha_url).await;
    let r = captcha_answer(&mut c, &base, "abcd").await;
    let step = parse_login_auth2(&r.text()).unwrap();
    let LoginStep::TwoFactor { notification_url } = step else {
        panic!("{step:?}")
    };
    assert!(notification_url.starts_with(&format!("{base}/fe/service/identity/authStart?")));

    // Identity list, send, verify.
    let r = c.get(&identity_list_url(&notification_url)).await;
    let opts = parse_identity_list(&r.text()).unwrap();
    assert_eq!(
        opts.preferred,
        Some(mijia_proto::cloud::IdentityMethod::Email)
    );
    assert!(c.jar.contains_key("identity_session"));
    let verify_url = format!("{base}/identity/auth/verifyEmail?_dc=1");
    let verify_fields = |t: &'static str| {
        [
            ("_flag", "8"),
            ("ticket", t),
            ("trust", "true"),
            ("_json", "true"),
        ]
    };
    // Verifying before a code was sent is refused.
    let r = c.post_form(&verify_url, &verify_fields("246810")).await;
    assert!(matches!(
        parse_verify(&r.text()).unwrap(),
        VerifyOutcome::Rejected { code: 2, .. }
    ));
    let r = c
        .post_form(
            &format!("{base}/identity/auth/sendEmailTicket"),
            &[("retry", "0"), ("icode", ""), ("_json", "true")],
        )
        .await;
    assert_eq!(r.account_json()["code"], 0);
    // Wrong method.
    let r = c
        .post_form(
            &format!("{base}/identity/auth/verifyPhone"),
            &verify_fields("246810"),
        )
        .await;
    assert!(matches!(
        parse_verify(&r.text()).unwrap(),
        VerifyOutcome::Rejected { code: 2, .. }
    ));
    let r = c.post_form(&verify_url, &verify_fields("000000")).await;
    assert_eq!(parse_verify(&r.text()).unwrap(), VerifyOutcome::WrongCode);
    let r = c.post_form(&verify_url, &verify_fields("246810")).await;
    let VerifyOutcome::Verified { location } = parse_verify(&r.text()).unwrap() else {
        panic!("{}", r.text())
    };
    assert!(location.starts_with(&e.cloud.sts_url()));
    assert!(c.jar.contains_key("passToken"));
    let r = c.get(&location).await;
    assert_eq!(r.text(), "ok");
    // Then serviceLogin with the fresh passToken gives ssecurity and STS.
    let r = c
        .get(&format!("{base}/pass/serviceLogin?sid=xiaomiio&_json=true"))
        .await;
    let LoginStep::Success(s) = parse_service_login(&r.text()).unwrap() else {
        panic!("{}", r.text())
    };
    let mut s = finish(c, s).await;
    // Bob's only device is in cn and reported offline.
    let v = call(&mut s, &e.cloud, Region::Cn, "/home/device_list", json!({})).await;
    let list = v["result"]["list"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["isOnline"], false);
    let v = call(
        &mut s,
        &e.cloud,
        Region::Cn,
        "/miotspec/prop/get",
        json!({"params": [{"did": "100004", "siid": 2, "piid": 1}]}),
    )
    .await;
    assert_eq!(v["result"][0]["code"], api::CODE_OFFLINE);
}

#[tokio::test]
async fn two_factor_lockout() {
    let e = env_with(|c| c.accounts[1].captcha = None).await;
    let base = e.cloud.base_url();
    let (mut c, step) = password_login(&e.cloud, BOB, BOB_PW).await;
    let LoginStep::TwoFactor { notification_url } = step else {
        panic!("{step:?}")
    };
    c.get(&identity_list_url(&notification_url)).await;
    c.post_form(
        &format!("{base}/identity/auth/sendEmailTicket"),
        &[("retry", "0")],
    )
    .await;
    let url = format!("{base}/identity/auth/verifyEmail");
    for _ in 0..5 {
        let r = c.post_form(&url, &[("_flag", "8"), ("ticket", "1")]).await;
        assert_eq!(parse_verify(&r.text()).unwrap(), VerifyOutcome::WrongCode);
    }
    let r = c
        .post_form(&url, &[("_flag", "8"), ("ticket", "246810")])
        .await;
    assert!(matches!(
        parse_verify(&r.text()).unwrap(),
        VerifyOutcome::Rejected {
            code: account::CODE_TOO_MANY_ATTEMPTS,
            ..
        }
    ));
}

#[tokio::test]
async fn qr_login_confirmed_over_the_control_api() {
    let e = env().await;
    let base = e.cloud.base_url();
    let mut c = Client::default();
    let r = c
        .get(&format!(
            "{base}/longPolling/loginUrl?_qrsize=240&qs=%3Fsid%3Dxiaomiio%26_json%3Dtrue&sid=xiaomiio&_dc=1"
        ))
        .await;
    let qr = parse_qr_start(&r.text()).unwrap();
    assert!(qr.long_poll_url.starts_with(&base));
    assert_eq!(qr.timeout_secs, 120);
    assert_eq!(
        c.get(&qr.qr_image_url).await.header("content-type"),
        Some("image/png")
    );
    let mut poller = c.clone();
    let lp = qr.long_poll_url.clone();
    let poll = tokio::spawn(async move {
        let r = poller.get(&lp).await;
        (poller, r)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!poll.is_finished(), "the long poll waits for the scan");
    let r = c
        .post_json(&format!("{base}/__fake/qr/confirm"), json!({"user": ALICE}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (c, r) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .unwrap()
        .unwrap();
    let LoginStep::Success(s) = parse_qr_poll(&r.text()).unwrap() else {
        panic!("{}", r.text())
    };
    assert_eq!(s.user_id, "1812345678");
    let mut s = finish(c, s).await;
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/v2/message/v2/check_new_msg",
        json!({"begin_at": 1}),
    )
    .await;
    assert_eq!(v["code"], 0);
    // Nothing left to confirm.
    assert!(matches!(
        e.cloud.confirm_qr(Some(ALICE)),
        Err(CloudError::NoPendingQr)
    ));
}

#[tokio::test]
async fn qr_login_times_out_or_auto_confirms() {
    let e = env_with(|c| c.qr_timeout_secs = 1).await;
    let base = e.cloud.base_url();
    let mut c = Client::default();
    let qr = parse_qr_start(&c.get(&format!("{base}/longPolling/loginUrl")).await.text()).unwrap();
    let started = std::time::Instant::now();
    let r = c.get(&qr.long_poll_url).await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(matches!(
        parse_qr_poll(&r.text()).unwrap(),
        LoginStep::Rejected {
            code: account::CODE_QR_EXPIRED,
            ..
        }
    ));

    let e = env_with(|c| {
        c.qr_auto_confirm = Some(QrAutoConfirm {
            user: ALICE.into(),
            after_ms: 100,
        })
    })
    .await;
    let base = e.cloud.base_url();
    let qr = parse_qr_start(&c.get(&format!("{base}/longPolling/loginUrl")).await.text()).unwrap();
    let r = c.get(&qr.long_poll_url).await;
    assert!(matches!(
        parse_qr_poll(&r.text()).unwrap(),
        LoginStep::Success(_)
    ));
}

#[tokio::test]
async fn pass_token_refresh_and_expiry() {
    let e = env().await;
    let base = e.cloud.base_url();
    let s = login(&e.cloud, ALICE, ALICE_PW).await;
    assert!(s.client.jar["passToken"].starts_with("V1:"));
    // Only passToken, userId and deviceId cookies: the silent refresh.
    let mut c = Client::default();
    for k in ["passToken", "userId", "deviceId"] {
        c.jar.insert(k.into(), s.client.jar[k].clone());
    }
    let r = c
        .get(&format!("{base}/pass/serviceLogin?sid=xiaomiio&_json=true"))
        .await;
    let LoginStep::Success(fresh) = parse_service_login(&r.text()).unwrap() else {
        panic!("{}", r.text())
    };
    let mut fresh = finish(c.clone(), fresh).await;
    call(
        &mut fresh,
        &e.cloud,
        Region::De,
        "/home/device_list",
        json!({}),
    )
    .await;
    assert_eq!(e.cloud.live_sessions(ALICE).unwrap(), 2);
    // Expired pass token: 70016 again.
    assert_eq!(e.cloud.expire_pass_tokens(Some(ALICE)).unwrap(), 1);
    let r = c
        .get(&format!("{base}/pass/serviceLogin?sid=xiaomiio&_json=true"))
        .await;
    assert!(matches!(
        parse_service_login(&r.text()).unwrap(),
        LoginStep::NeedPassword { .. }
    ));
    assert_eq!(
        e.cloud.requests().last().unwrap().verdict,
        "70016 passToken expired"
    );
    // STS with an unknown ticket is refused.
    let r = c.get(&format!("{}?_ssign=nope", e.cloud.sts_url())).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn properties_and_actions_share_state_with_the_fleet() {
    let e = env().await;
    let light = e.fleet.device("kitchen-light").unwrap();
    let mut s = login(&e.cloud, ALICE, ALICE_PW).await;
    let get = |siid: u32, piid: u32| json!({"did": "100001", "siid": siid, "piid": piid});
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/miotspec/prop/get",
        json!({"params": [get(2, 1), get(2, 2), get(3, 1), get(8, 1), {"did": "999", "siid": 2, "piid": 1}]}),
    )
    .await;
    let r = v["result"].as_array().unwrap();
    assert_eq!(r[0]["value"], true);
    assert_eq!(r[0]["code"], 0);
    assert_eq!(r[0]["did"], "100001");
    assert!(r[0]["updateTime"].is_u64());
    assert_eq!(r[1]["value"], 80);
    assert_eq!(r[2]["code"], -704030013, "not readable");
    assert_eq!(r[3]["code"], -704040003, "no such property");
    assert_eq!(r[4]["code"], api::CODE_NO_DEVICE);

    // A physical change is what the cloud reads.
    light.set_value(2, 2, json!(33)).unwrap();
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/miotspec/prop/get",
        json!({"params": [get(2, 2)]}),
    )
    .await;
    assert_eq!(v["result"][0]["value"], 33);

    // A cloud write is what the device holds.
    let set = |siid: u32, piid: u32, value: Value| json!({"did": "100001", "siid": siid, "piid": piid, "value": value});
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/miotspec/prop/set",
        json!({"params": [set(2, 1, json!(false)), set(2, 2, json!(500)), set(1, 1, json!("x"))]}),
    )
    .await;
    let codes: Vec<i64> = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![0, -704220043, -704030023]);
    assert_eq!(light.value(2, 1), Some(json!(false)));
    assert_eq!(
        light.value(2, 2),
        Some(json!(33)),
        "rejected value not stored"
    );

    // Actions: `in`, and `value` as mijia-api sends it.
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/miotspec/action",
        json!({"params": {"did": "100001", "siid": 2, "aiid": 1, "in": []}}),
    )
    .await;
    assert_eq!(v["result"]["code"], 0);
    assert_eq!(v["result"]["out"], json!([]));
    assert_eq!(light.value(2, 1), Some(json!(true)), "toggle");
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/miotspec/action",
        json!({"params": {"did": "100001", "siid": 2, "aiid": 1, "value": []}}),
    )
    .await;
    assert_eq!(v["result"]["code"], 0);
    assert_eq!(light.value(2, 1), Some(json!(false)));
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/miotspec/action",
        json!({"params": {"did": "100001", "siid": 2, "aiid": 9, "in": []}}),
    )
    .await;
    assert_eq!(v["result"]["code"], -704040005);

    // Slow device: code 1, value still applied.
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/miotspec/prop/set",
        json!({"params": [{"did": "100003", "siid": 2, "piid": 2, "value": false}]}),
    )
    .await;
    assert_eq!(v["result"][0]["code"], 1);
    assert_eq!(
        e.fleet.device("hall-purifier").unwrap().value(2, 2),
        Some(json!(false))
    );

    // Offline (device fault) and reported offline (cloud flag).
    light.set_offline(true);
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/miotspec/prop/get",
        json!({"params": [get(2, 1)]}),
    )
    .await;
    assert_eq!(v["result"][0]["code"], api::CODE_OFFLINE);
    light.set_offline(false);
    e.cloud.set_device_online("100001", false).unwrap();
    let v = call(&mut s, &e.cloud, Region::De, "/home/device_list", json!({})).await;
    assert_eq!(v["result"]["list"][0]["isOnline"], false);
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/miotspec/prop/get",
        json!({"params": [get(2, 1)]}),
    )
    .await;
    assert_eq!(v["result"][0]["code"], api::CODE_OFFLINE);
}

#[tokio::test]
async fn raw_rpc_and_history() {
    let e = env().await;
    let mut s = login(&e.cloud, ALICE, ALICE_PW).await;
    // Legacy lamp: get_prop through the device's own handler.
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/home/rpc/100002",
        json!({"method": "get_prop", "params": ["power"]}),
    )
    .await;
    assert_eq!(v["code"], 0);
    assert_eq!(v["message"], "ok");
    assert!(v["result"].is_array(), "{v}");
    // MIoT light: set_properties through rpc changes the device.
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/home/rpc/100001",
        json!({"method": "set_properties", "params": [{"did": "100001", "siid": 2, "piid": 2, "value": 7}]}),
    )
    .await;
    assert_eq!(v["result"][0]["code"], 0);
    assert_eq!(
        e.fleet.device("kitchen-light").unwrap().value(2, 2),
        Some(json!(7))
    );
    // Device errors become the envelope's code (plain JSON).
    let (_, v) = call_with(
        &mut s,
        &e.cloud,
        Region::De,
        "/home/rpc/100001",
        json!({"method": "no_such_method", "params": []}),
        Variant::Rc4,
    )
    .await;
    assert_eq!(v.unwrap()["code"], -32601);
    let (_, v) = call_with(
        &mut s,
        &e.cloud,
        Region::De,
        "/home/rpc/424242",
        json!({"method": "x"}),
        Variant::Rc4,
    )
    .await;
    assert_eq!(v.unwrap()["code"], api::CODE_NO_DEVICE);
    // History: the current value.
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/user/get_user_device_data",
        json!({"did": "100001", "key": "2.2", "type": "prop", "time_start": 0, "time_end": 1, "limit": 10}),
    )
    .await;
    assert_eq!(v["result"][0]["value"], "[7]");
    // Unknown API path.
    let (r, v) = call_with(
        &mut s,
        &e.cloud,
        Region::De,
        "/no/such/api",
        json!({}),
        Variant::Rc4,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_ne!(v.unwrap()["code"], 0);
}

#[tokio::test]
async fn homes_pages_and_regions() {
    let e = env().await;
    let mut s = login(&e.cloud, ALICE, ALICE_PW).await;
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/v2/homeroom/gethome",
        json!({"fg": true, "limit": 300}),
    )
    .await;
    let homes = v["result"]["homelist"].as_array().unwrap();
    assert_eq!(homes.len(), 1);
    let home = &homes[0];
    assert_eq!(home["name"], "Flat");
    assert_eq!(home["dids"], json!(["100003"]), "purifier is in no room");
    let rooms = home["roomlist"].as_array().unwrap();
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[0]["name"], "Kitchen");
    assert_eq!(rooms[0]["dids"], json!(["100001"]));
    assert_eq!(rooms[0]["parentid"], home["id"]);
    let home_id = home["id"].as_str().unwrap().to_owned();

    // Paging: one per page, `max_did` / `next_start_did` continue after the last.
    let mut seen = Vec::new();
    let mut start = String::new();
    loop {
        let v = call(
            &mut s,
            &e.cloud,
            Region::De,
            "/v2/home/home_device_list",
            json!({"home_owner": 1812345678u64, "home_id": home_id, "limit": 1, "start_did": start}),
        )
        .await;
        let r = &v["result"];
        for d in r["device_info"].as_array().unwrap() {
            seen.push(d["did"].as_str().unwrap().to_owned());
        }
        if !r["has_more"].as_bool().unwrap() {
            break;
        }
        start = r["max_did"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, ["100001", "100002", "100003"]);
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/v2/home/device_list_page",
        json!({"limit": 2}),
    )
    .await;
    assert_eq!(v["result"]["list"].as_array().unwrap().len(), 2);
    assert_eq!(v["result"]["has_more"], true);
    assert_eq!(v["result"]["next_start_did"], "100002");
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/v2/home/device_list_page",
        json!({"limit": 2, "start_did": "100002"}),
    )
    .await;
    assert_eq!(v["result"]["list"][0]["did"], "100003");
    assert_eq!(v["result"]["has_more"], false);
    let v = call(
        &mut s,
        &e.cloud,
        Region::De,
        "/v2/user/get_device_cnt",
        json!({"fetch_own": true}),
    )
    .await;
    assert_eq!(v["result"]["device_cnt"], 3);

    // Wrong region: empty lists, not errors.
    for region in [Region::Cn, Region::Us] {
        let v = call(&mut s, &e.cloud, region, "/home/device_list", json!({})).await;
        assert_eq!(v["result"]["list"], json!([]));
        let v = call(&mut s, &e.cloud, region, "/v2/homeroom/gethome", json!({})).await;
        assert_eq!(v["result"]["homelist"], json!([]));
        let v = call(
            &mut s,
            &e.cloud,
            region,
            "/miotspec/prop/get",
            json!({"params": [{"did": "100001", "siid": 2, "piid": 1}]}),
        )
        .await;
        assert_eq!(v["result"][0]["code"], api::CODE_NO_DEVICE);
    }
    // Moving a device moves it between regions.
    e.cloud
        .set_device_region("kitchen-light", Region::Us)
        .unwrap();
    let v = call(&mut s, &e.cloud, Region::Us, "/home/device_list", json!({})).await;
    assert_eq!(v["result"]["list"].as_array().unwrap().len(), 1);
    // Bob sees none of alice's devices.
    let e2 = env_with(|c| {
        c.accounts[1].captcha = None;
        c.accounts[1].two_factor = None;
    })
    .await;
    let mut b = login(&e2.cloud, BOB, BOB_PW).await;
    let v = call(
        &mut b,
        &e2.cloud,
        Region::De,
        "/home/device_list",
        json!({}),
    )
    .await;
    assert_eq!(v["result"]["list"], json!([]));
}

#[tokio::test]
async fn signatures_sessions_and_expiry_forms() {
    let e = env().await;
    let mut s = login(&e.cloud, ALICE, ALICE_PW).await;
    let url = format!("{}/home/device_list", e.cloud.api_base(Region::De));

    // Tampered RC4 data and a wrong HMAC key: plain `invalid signature`.
    let signer = RequestSigner::new(&s.ssecurity, nonce());
    let mut form = signer.sign_rc4(
        &s.ssecurity,
        Method::Post,
        "/home/device_list",
        &[("data", "{}")],
    );
    for (k, v) in &mut form.fields {
        if k == "data" {
            *v = signer.signed_nonce().encrypt_value(b"{\"x\":1}");
        }
    }
    let r = s
        .client
        .send("POST", &url, &RC4_HEADERS, encode_form(&form.fields))
        .await
        .unwrap();
    assert_eq!(r.text(), "invalid signature");
    let other = Ssecurity::from_base64("AAAAAAAAAAAAAAAAAAAAAA==").unwrap();
    let form =
        RequestSigner::new(&other, nonce()).sign_hmac("/home/device_list", &[("data", "{}")]);
    let r = s
        .client
        .send("POST", &url, &[], encode_form(&form.fields))
        .await
        .unwrap();
    assert_eq!(r.text(), "invalid signature");
    // Signed for another path.
    let form = RequestSigner::new(&s.ssecurity, nonce())
        .sign_hmac("/app/home/device_list", &[("data", "{}")]);
    let r = s
        .client
        .send("POST", &url, &[], encode_form(&form.fields))
        .await
        .unwrap();
    assert_eq!(r.text(), "invalid signature");
    // Forced by the fault, once.
    e.cloud.set_faults(CloudFaults {
        bad_signature: 1,
        ..CloudFaults::default()
    });
    let (r, _) = call_with(
        &mut s,
        &e.cloud,
        Region::De,
        "/home/device_list",
        json!({}),
        Variant::Rc4,
    )
    .await;
    assert_eq!(r.text(), "invalid signature");
    call(&mut s, &e.cloud, Region::De, "/home/device_list", json!({})).await;

    // Unknown session: auth err, plain JSON.
    let mut stranger = Session {
        client: Client::default(),
        ssecurity: s.ssecurity.clone(),
    };
    stranger
        .client
        .jar
        .insert("userId".into(), "1812345678".into());
    stranger
        .client
        .jar
        .insert("serviceToken".into(), "nope".into());
    let (r, _) = call_with(
        &mut stranger,
        &e.cloud,
        Region::De,
        "/home/device_list",
        json!({}),
        Variant::Rc4,
    )
    .await;
    assert_eq!(r.json(), json!({"code": 3, "message": "auth err"}));
    // Right token, wrong userId.
    stranger.client.jar = s.client.jar.clone();
    stranger
        .client
        .jar
        .insert("userId".into(), "1898765432".into());
    let (r, _) = call_with(
        &mut stranger,
        &e.cloud,
        Region::De,
        "/home/device_list",
        json!({}),
        Variant::Rc4,
    )
    .await;
    assert_eq!(r.json()["code"], 3);

    // The four expiry forms, each fixed by a fresh login.
    let forms = [
        (
            ExpiredForm::ServiceTokenExpired,
            200,
            Some(json!({"code": 0, "message": "SERVICETOKEN_EXPIRED"})),
        ),
        (
            ExpiredForm::AuthErr,
            200,
            Some(json!({"code": 3, "message": "auth err"})),
        ),
        (ExpiredForm::Http401, 401, None),
        (
            ExpiredForm::Http426,
            426,
            Some(json!({"code": 0, "message": "SERVICETOKEN_EXPIRED"})),
        ),
    ];
    for (form, status, body) in forms {
        let mut s = login(&e.cloud, ALICE, ALICE_PW).await;
        assert!(e.cloud.expire_service_tokens(Some(ALICE), form).unwrap() >= 1);
        let (r, _) = call_with(
            &mut s,
            &e.cloud,
            Region::De,
            "/home/device_list",
            json!({}),
            Variant::Rc4,
        )
        .await;
        assert_eq!(r.status, status, "{form:?}");
        if let Some(b) = body {
            assert_eq!(r.json(), b, "{form:?}");
        }
        let mut again = login(&e.cloud, ALICE, ALICE_PW).await;
        call(
            &mut again,
            &e.cloud,
            Region::De,
            "/home/device_list",
            json!({}),
        )
        .await;
    }

    // Time-based expiry on the fake clock.
    let e = env_with(|c| {
        c.service_token_ttl_secs = Some(60);
        c.expired_form = ExpiredForm::AuthErr;
    })
    .await;
    let mut s = login(&e.cloud, ALICE, ALICE_PW).await;
    call(&mut s, &e.cloud, Region::De, "/home/device_list", json!({})).await;
    e.cloud.advance_clock(61);
    let (r, _) = call_with(
        &mut s,
        &e.cloud,
        Region::De,
        "/home/device_list",
        json!({}),
        Variant::Rc4,
    )
    .await;
    assert_eq!(r.json()["code"], 3);
}

#[tokio::test]
async fn nonce_checks_when_enabled() {
    let e = env_with(|c| {
        c.reject_replayed_nonces = true;
        c.max_nonce_skew_minutes = Some(2);
    })
    .await;
    let mut s = login(&e.cloud, ALICE, ALICE_PW).await;
    let url = format!("{}/home/device_list", e.cloud.api_base(Region::De));
    let form =
        RequestSigner::new(&s.ssecurity, nonce()).sign_hmac("/home/device_list", &[("data", "{}")]);
    let body = encode_form(&form.fields);
    let r = s
        .client
        .send("POST", &url, &[], body.clone())
        .await
        .unwrap();
    assert_eq!(r.json()["code"], 0);
    let r = s.client.send("POST", &url, &[], body).await.unwrap();
    assert_eq!(r.text(), "invalid signature", "replayed");
    e.cloud.advance_clock(600);
    let (r, _) = call_with(
        &mut s,
        &e.cloud,
        Region::De,
        "/home/device_list",
        json!({}),
        Variant::Hmac,
    )
    .await;
    assert_eq!(r.text(), "invalid signature", "ten minutes off");
    assert!(e
        .cloud
        .requests()
        .last()
        .unwrap()
        .verdict
        .contains("nonce minute"));
}

#[tokio::test]
async fn transient_faults_and_rate_limits() {
    let e = env().await;
    let mut s = login(&e.cloud, ALICE, ALICE_PW).await;
    e.cloud.set_faults(CloudFaults {
        rate_limit: 2,
        ..CloudFaults::default()
    });
    for _ in 0..2 {
        let (r, _) = call_with(
            &mut s,
            &e.cloud,
            Region::De,
            "/home/device_list",
            json!({}),
            Variant::Rc4,
        )
        .await;
        assert_eq!(r.status, 429);
    }
    call(&mut s, &e.cloud, Region::De, "/home/device_list", json!({})).await;
    e.cloud.set_faults(CloudFaults {
        rate_limit: 1,
        rate_limit_form: RateLimitForm::Code,
        server_errors: 1,
        server_error_status: 502,
        drop_connections: 1,
        ..CloudFaults::default()
    });
    let signer = RequestSigner::new(&s.ssecurity, nonce());
    let url = format!("{}/home/device_list", e.cloud.api_base(Region::De));
    let body = encode_form(
        &signer
            .sign_hmac("/home/device_list", &[("data", "{}")])
            .fields,
    );
    assert!(
        s.client.send("POST", &url, &[], body).await.is_err(),
        "dropped"
    );
    let (r, _) = call_with(
        &mut s,
        &e.cloud,
        Region::De,
        "/home/device_list",
        json!({}),
        Variant::Rc4,
    )
    .await;
    assert_eq!(r.status, 502);
    let (r, _) = call_with(
        &mut s,
        &e.cloud,
        Region::De,
        "/home/device_list",
        json!({}),
        Variant::Rc4,
    )
    .await;
    assert_eq!(r.json()["code"], -106);
    call(&mut s, &e.cloud, Region::De, "/home/device_list", json!({})).await;
    // The account host is out of the default scope.
    e.cloud.set_faults(CloudFaults {
        server_errors: 1,
        ..CloudFaults::default()
    });
    login(&e.cloud, ALICE, ALICE_PW).await;
    // Account scope and a delay.
    e.cloud.set_faults(CloudFaults {
        scope: FaultScope::Account,
        delay_ms: 300,
        ..CloudFaults::default()
    });
    let started = std::time::Instant::now();
    let mut c = Client::default();
    c.get(&format!("{}/pass/serviceLogin", e.cloud.base_url()))
        .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let log = e.cloud.requests();
    assert!(log
        .iter()
        .any(|r| r.verdict == "connection dropped (fault)" && r.status.is_none()));
    assert!(log.iter().any(|r| r.verdict == "HTTP 502 (fault)"));
}

#[tokio::test]
async fn control_api_over_http() {
    let e = env().await;
    let base = e.cloud.base_url();
    let mut c = Client::default();
    assert_eq!(
        c.get(&format!("{base}/__fake/health")).await.json(),
        json!({"ok": true})
    );
    let r = c
        .post_json(
            &format!("{base}/__fake/accounts"),
            json!({"user": "carol@example.com", "password": "pw", "user_id": 42, "region": "us"}),
        )
        .await;
    assert_eq!(r.json(), json!({"user_id": 42}));
    let r = c
        .post_json(
            &format!("{base}/__fake/accounts"),
            json!({"user": "x", "password": "pw", "user_id": 42}),
        )
        .await;
    assert_eq!(r.status, 400, "duplicate id");
    let list = c.get(&format!("{base}/__fake/accounts")).await.json();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(list[0]["device_regions"], json!(["de"]));
    // Carol owns no device: her lists are empty.
    let mut s = login(&e.cloud, "carol@example.com", "pw").await;
    let v = call(&mut s, &e.cloud, Region::Us, "/home/device_list", json!({})).await;
    assert_eq!(v["result"]["list"], json!([]));
    // Script, expire, faults, clock, devices, log.
    let r = c
        .post_json(
            &format!("{base}/__fake/script"),
            json!({"user": "carol@example.com", "outcomes": ["captcha", {"error": {"code": 70002, "desc": "no"}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, step) = password_login(&e.cloud, "carol@example.com", "pw").await;
    assert!(matches!(step, LoginStep::Captcha { .. }));
    let (_, step) = password_login(&e.cloud, "carol@example.com", "pw").await;
    assert!(matches!(
        step,
        LoginStep::BadCredentials { code: 70002, .. }
    ));
    let r = c
        .post_json(
            &format!("{base}/__fake/expire/service_tokens"),
            json!({"user": "carol@example.com", "form": "http_401"}),
        )
        .await;
    assert_eq!(r.json()["expired"], 1);
    let (r, _) = call_with(
        &mut s,
        &e.cloud,
        Region::Us,
        "/home/device_list",
        json!({}),
        Variant::Rc4,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = c
        .post_json(&format!("{base}/__fake/expire/pass_tokens"), json!({}))
        .await;
    assert!(r.json()["expired"].as_u64().unwrap() >= 1);
    let r = c
        .post_json(&format!("{base}/__fake/faults"), json!({"rate_limit": 3}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(e.cloud.faults().rate_limit, 3);
    let r = c
        .post_json(&format!("{base}/__fake/faults"), json!({"rate_limt": 3}))
        .await;
    assert_eq!(r.status, 400, "unknown fault names are refused");
    c.post_json(&format!("{base}/__fake/faults"), json!({}))
        .await;
    let before = e.cloud.now_ms();
    let r = c
        .post_json(
            &format!("{base}/__fake/clock/advance"),
            json!({"secs": 3600}),
        )
        .await;
    assert!(r.json()["now_ms"].as_u64().unwrap() >= before + 3_600_000);
    let r = c
        .post_json(
            &format!("{base}/__fake/devices"),
            json!({"device": "desk-lamp", "online": false}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = c
        .post_json(
            &format!("{base}/__fake/devices"),
            json!({"device": "nope", "online": false}),
        )
        .await;
    assert_eq!(r.status, 400);
    let log = c.get(&format!("{base}/__fake/requests")).await.json();
    let n = log.as_array().unwrap().len();
    assert!(n > 5);
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .all(|r| !r["path"].as_str().unwrap().starts_with("/__fake")));
    let r = c
        .send(
            "DELETE",
            &format!("{base}/__fake/requests"),
            &[],
            String::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(e.cloud.requests().is_empty());
    assert_eq!(c.get(&format!("{base}/__fake/nope")).await.status, 404);
    let r = c
        .post_json(&format!("{base}/__fake/qr/confirm"), json!({"user": ALICE}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn sts_for_other_sids_needs_client_sign() {
    let e = env().await;
    let base = e.cloud.base_url();
    let hash = password_hash(&Password::new(ALICE_PW));
    let mut c = Client::default();
    let r = c
        .post_form(
            &format!("{base}/pass/serviceLoginAuth2"),
            &[
                ("user", ALICE),
                ("hash", &hash),
                ("sid", "mijia"),
                ("_json", "true"),
            ],
        )
        .await;
    let LoginStep::Success(s) = parse_login_auth2(&r.text()).unwrap() else {
        panic!("{}", r.text())
    };
    assert_eq!(c.get(&s.location).await.status, 403);
    let sign =
        mijia_proto::cloud::login::client_sign_param(s.nonce.as_deref().unwrap(), &s.ssecurity);
    let r = c.get(&format!("{}&{sign}", s.location)).await;
    assert_eq!(r.text(), "ok");
    let pragma: Value = serde_json::from_str(r.header("extension-pragma").unwrap()).unwrap();
    assert_eq!(pragma["ssecurity"], s.ssecurity.reveal());
}
