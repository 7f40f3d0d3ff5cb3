//! `mijia cloud …` and the cloud route against the simulated cloud on
//! loopback: every login path, refresh, every injected failure, the
//! registry import, cloud-route round trips compared with the local route,
//! and a check that no secret reaches the output.
//!
//! The binary is pointed at the fake cloud with `MIJIA_CLOUD_ACCOUNT_URL`
//! and `MIJIA_CLOUD_API_URL`; nothing here leaves 127.0.0.0/8.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use fake_device::cloud::{
    AccountConfig, CloudFaults, DeviceCloudConfig, ExpiredForm, FakeCloud, FakeCloudConfig,
    RateLimitForm, TwoFactorConfig, TwoFactorMethod,
};
use fake_device::{Fleet, FleetConfig};
use mijia::home::{Paths, Registry};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt as _;

use crate::common::{device, Run};

const LIGHT: &str = "yeelink.light.color1";
const USER: &str = "alice@example.com";
const PASSWORD: &str = "correct horse";
const USER_ID: u64 = 1_812_345_678;

struct Cloudy {
    fleet: Fleet,
    cloud: FakeCloud,
    home: TempDir,
}

fn account() -> AccountConfig {
    let mut a = AccountConfig::new(USER, PASSWORD, USER_ID);
    a.region = Some("de".into());
    a
}

/// A fleet with one lamp on `127.61.<net>.2`, in region `de`, room
/// "Office", and the fake cloud with `accounts`.
async fn start(
    net: u8,
    accounts: Vec<AccountConfig>,
    tweak: impl FnOnce(&mut FakeCloudConfig),
) -> Cloudy {
    let fleet = Fleet::start(FleetConfig {
        devices: vec![device("lamp", LIGHT, net, 2)],
    })
    .await
    .unwrap_or_else(|e| panic!("fleet: {e}"));
    let mut cfg = FakeCloudConfig {
        accounts,
        ..FakeCloudConfig::default()
    };
    cfg.devices.insert(
        "lamp".into(),
        DeviceCloudConfig {
            region: Some("de".into()),
            room: Some("Office".into()),
            name: Some("Desk lamp (office)".into()),
            ..DeviceCloudConfig::default()
        },
    );
    tweak(&mut cfg);
    let cloud = FakeCloud::start(cfg, fleet.handles().to_vec())
        .await
        .unwrap_or_else(|e| panic!("fake cloud: {e}"));
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    Cloudy { fleet, cloud, home }
}

impl Cloudy {
    fn command<S: AsRef<str>>(&self, args: &[S]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_mijia"));
        c.args(args.iter().map(AsRef::as_ref))
            .env("MIJIA_HOME", self.home.path())
            .env("MIJIA_CLOUD_ACCOUNT_URL", self.cloud.base_url())
            .env("MIJIA_CLOUD_API_URL", self.cloud.api_template())
            .env_remove("MIJIA_CLOUD_STS_URL")
            .env_remove("MIJIA_CLOUD_REGION")
            .env_remove("MIJIA_CLOUD_PASSWORD")
            .env_remove("MIJIA_CLOUD_USER")
            .env_remove("MIJIA_IP")
            .env_remove("MIJIA_TOKEN")
            .env_remove("MIJIA_PORT")
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        c
    }

    /// Runs `mijia args…` with `stdin` as standard input.
    async fn run_stdin<S: AsRef<str>>(&self, args: &[S], stdin: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn mijia: {e}"));
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes()).await;
        }
        finish(child).await
    }

    async fn run<S: AsRef<str>>(&self, args: &[S]) -> Run {
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn mijia: {e}"));
        finish(child).await
    }

    async fn login(&self, extra: &[&str]) -> Run {
        let mut args = vec!["cloud", "login", "--user", USER, "--password-stdin"];
        args.extend_from_slice(extra);
        self.run_stdin(&args, &format!("{PASSWORD}\n")).await
    }

    fn paths(&self) -> Paths {
        Paths::at(self.home.path())
    }

    fn session(&self) -> Value {
        let text = std::fs::read_to_string(self.paths().state_dir.join("cloud-session.json"))
            .unwrap_or_else(|e| panic!("session file: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("session json: {e}"))
    }

    fn lamp(&self) -> fake_device::DeviceHandle {
        self.fleet
            .device("lamp")
            .unwrap_or_else(|| panic!("no lamp"))
    }

    fn local_args(&self) -> Vec<String> {
        let info = self.lamp().info();
        vec![
            "--ip".into(),
            info.addr.ip().to_string(),
            "--port".into(),
            info.addr.port().to_string(),
            "--token".into(),
            info.token.reveal(),
        ]
    }

    fn did(&self) -> String {
        self.lamp().info().did.to_string()
    }

    /// How many logged requests have `path`.
    fn count(&self, path: &str) -> usize {
        self.cloud
            .requests()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }
}

async fn finish(child: tokio::process::Child) -> Run {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("mijia did not finish within 60 s"))
        .unwrap_or_else(|e| panic!("mijia: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_status_and_logout() {
    let c = start(101, vec![account()], |_| {}).await;
    let run = c.login(&["--region", "de"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains(&USER_ID.to_string()), "{}", run.stdout);

    // The session file is private and holds what refresh and signing need.
    let path = c.paths().state_dir.join("cloud-session.json");
    let mode = std::fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);
    let s = c.session();
    for key in [
        "user_id",
        "ssecurity",
        "service_token",
        "pass_token",
        "device_id",
    ] {
        assert!(
            s.get(key).is_some_and(|v| !v.is_null()),
            "{key} missing: {s}"
        );
    }
    assert_eq!(s["region"], json!("de"));
    // The password never reaches the disk.
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(!text.contains(PASSWORD));

    // The login ran serviceLogin → serviceLoginAuth2 (with the MD5) → STS.
    let reqs = c.cloud.requests();
    let auth2 = reqs
        .iter()
        .find(|r| r.path == "/pass/serviceLoginAuth2")
        .unwrap_or_else(|| panic!("no serviceLoginAuth2"));
    assert_eq!(
        auth2.form.get("hash").map(String::as_str),
        Some(mijia_proto::cloud::password_hash(&PASSWORD.into()).as_str())
    );
    assert!(reqs
        .iter()
        .any(|r| r.path == "/sts" && r.status == Some(200)));

    let run = c.run(&["cloud", "status"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains(&USER_ID.to_string()) && run.stdout.contains("de"));
    assert!(run.stdout.contains("present"), "{}", run.stdout);
    let run = c.run(&["--json", "cloud", "status"]).await;
    run.expect_code(0);
    assert_eq!(run.json()["pass_token"], json!(true));

    let run = c.run(&["cloud", "logout"]).await;
    run.expect_code(0);
    assert!(!path.exists());
    let run = c.run(&["cloud", "status"]).await;
    run.expect_code(6);
    assert!(run.stderr.contains("mijia cloud login"), "{}", run.stderr);
    let run = c.run(&["cloud", "devices"]).await;
    run.expect_code(6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_logins_say_why_and_what_to_do() {
    let mut risky = AccountConfig::new("bob@example.com", "pw-bob", 2_000_000_002);
    risky.risk_control = true;
    let c = start(102, vec![account(), risky], |_| {}).await;

    let run = c
        .run_stdin(
            &["cloud", "login", "--user", USER, "--password-stdin"],
            "wrong password\n",
        )
        .await;
    run.expect_code(6);
    assert!(run.stderr.contains("70016"), "{}", run.stderr);
    assert!(run.stderr.contains("--qr"), "{}", run.stderr);

    let run = c
        .run_stdin(
            &[
                "cloud",
                "login",
                "--user",
                "bob@example.com",
                "--password-stdin",
            ],
            "pw-bob\n",
        )
        .await;
    run.expect_code(6);
    assert!(run.stderr.contains("risk control"), "{}", run.stderr);

    // Non-interactive runs never wait: missing user or password fail at once.
    let run = c.run(&["cloud", "login"]).await;
    run.expect_code(6);
    assert!(run.stderr.contains("--user"), "{}", run.stderr);
    let run = c.run(&["cloud", "login", "--user", USER]).await;
    run.expect_code(6);
    assert!(run.stderr.contains("--password-stdin"), "{}", run.stderr);
    assert!(!c.paths().state_dir.join("cloud-session.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captcha_is_saved_and_answered() {
    let mut a = account();
    a.captcha = Some("ABCD".into());
    let c = start(103, vec![a], |cfg| cfg.captcha_url_relative = true).await;

    // No terminal and no answer: fail with the image's path.
    let run = c.login(&[]).await;
    run.expect_code(6);
    let image = c.paths().state_dir.join("cloud-captcha.png");
    assert!(run.stderr.contains("captcha required"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&image.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(std::fs::metadata(&image).is_ok_and(|m| m.len() > 0));

    // A wrong answer gets a fresh image and the next answer.
    let custom = c.home.path().join("captcha.png");
    let custom_s = custom.display().to_string();
    c.cloud.clear_requests();
    let run = c
        .login(&[
            "--captcha-file",
            &custom_s,
            "--captcha-code",
            "WRONG",
            "--captcha-code",
            "abcd",
        ])
        .await;
    run.expect_code(0);
    assert!(custom.exists());
    let reqs = c.cloud.requests();
    let answers: Vec<_> = reqs
        .iter()
        .filter(|r| r.path == "/pass/serviceLoginAuth2")
        .collect();
    assert_eq!(answers.len(), 3, "plain, wrong, right");
    for r in &answers[1..] {
        assert!(r.cookies.contains_key("ick"), "{r:?}");
        assert!(r.query.contains_key("_dc"), "{r:?}");
    }
    assert_eq!(c.count("/pass/getCode"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_runs_in_one_cookie_session() {
    let mut a = account();
    a.two_factor = Some(TwoFactorConfig {
        method: TwoFactorMethod::Email,
        code: "123456".into(),
    });
    let c = start(104, vec![a], |_| {}).await;

    let run = c.login(&[]).await;
    run.expect_code(6);
    assert!(run.stderr.contains("two-factor"), "{}", run.stderr);
    assert!(run.stderr.contains("e-mail"), "{}", run.stderr);

    c.cloud.clear_requests();
    let run = c
        .login(&["--verify-code", "000000", "--verify-code", "123456"])
        .await;
    run.expect_code(0);
    assert!(run.stderr.contains("sent by e-mail"), "{}", run.stderr);
    let reqs = c.cloud.requests();
    let list = reqs
        .iter()
        .find(|r| r.path == "/identity/list")
        .unwrap_or_else(|| panic!("no identity list"));
    assert_eq!(list.status, Some(200));
    let verifies: Vec<_> = reqs
        .iter()
        .filter(|r| r.path == "/identity/auth/verifyEmail")
        .collect();
    assert_eq!(verifies.len(), 2);
    let sessions: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.starts_with("/identity/auth/"))
        .map(|r| r.cookies.get("identity_session").cloned())
        .collect();
    assert!(
        sessions.iter().all(|s| s.is_some() && *s == sessions[0]),
        "{sessions:?}"
    );
    assert!(c.session()["pass_token"].is_string());

    // The session works.
    let run = c.run(&["cloud", "devices", "--region", "de"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains(LIGHT));

    // Five wrong codes: a clear stop.
    let run = c
        .login(&[
            "--verify-code",
            "1",
            "--verify-code",
            "2",
            "--verify-code",
            "3",
            "--verify-code",
            "4",
            "--verify-code",
            "5",
        ])
        .await;
    run.expect_code(6);
    assert!(run.stderr.contains("verification failed"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_login_prints_the_code_and_long_polls() {
    let c = start(105, vec![account()], |cfg| cfg.qr_timeout_secs = 20).await;
    let child = c
        .command(&["cloud", "login", "--qr", "--region", "de"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let mut confirmed = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if c.count("/longPolling/loginUrl") > 0 && c.cloud.confirm_qr(None).is_ok() {
            confirmed = true;
            break;
        }
    }
    assert!(confirmed, "no QR login to confirm");
    let run = finish(child).await;
    run.expect_code(0);
    assert!(
        run.stderr.contains("/longPolling/login?ticket="),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains('█') || run.stderr.contains('▀'),
        "{}",
        run.stderr
    );
    assert_eq!(c.session()["region"], json!("de"));
    let run = c.run(&["cloud", "devices"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains(&c.did()));

    // Not confirmed: re-poll until the code expires, then a clear error.
    let c = start(106, vec![account()], |cfg| cfg.qr_timeout_secs = 2).await;
    let run = c.run(&["cloud", "login", "--qr"]).await;
    run.expect_code(6);
    assert!(run.stderr.contains("not confirmed"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_service_tokens_refresh_silently_in_all_four_forms() {
    let c = start(107, vec![account()], |_| {}).await;
    c.login(&["--region", "de"]).await.expect_code(0);
    for form in [
        ExpiredForm::ServiceTokenExpired,
        ExpiredForm::AuthErr,
        ExpiredForm::Http401,
        ExpiredForm::Http426,
    ] {
        let before = c.session()["service_token"].clone();
        let n = c
            .cloud
            .expire_service_tokens(Some(USER), form)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(n > 0);
        c.cloud.clear_requests();
        let run = c.run(&["cloud", "devices"]).await;
        run.expect_code(0);
        assert!(run.stdout.contains(LIGHT), "{form:?}: {}", run.stdout);
        let refresh = c
            .cloud
            .requests()
            .into_iter()
            .find(|r| r.path == "/pass/serviceLogin")
            .unwrap_or_else(|| panic!("{form:?}: no refresh"));
        assert!(refresh.cookies.contains_key("passToken"), "{form:?}");
        assert_eq!(c.count("/home/device_list"), 0, "paths are under /de/app");
        let after = c.session()["service_token"].clone();
        assert_ne!(before, after, "{form:?}: the new token is saved");
    }
    assert_eq!(c.session()["refreshes"], json!(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_pass_token_says_relogin_needed() {
    let c = start(108, vec![account()], |_| {}).await;
    c.login(&["--region", "de"]).await.expect_code(0);
    c.cloud
        .expire_service_tokens(Some(USER), ExpiredForm::AuthErr)
        .unwrap_or_else(|e| panic!("{e}"));
    c.cloud
        .expire_pass_tokens(Some(USER))
        .unwrap_or_else(|e| panic!("{e}"));
    let run = c.run(&["cloud", "devices"]).await;
    run.expect_code(6);
    assert!(run.stderr.contains("re-login needed"), "{}", run.stderr);
    assert!(run.stderr.contains("mijia cloud login"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signature_gets_one_relogin_then_a_clear_error() {
    let c = start(109, vec![account()], |_| {}).await;
    c.login(&["--region", "de"]).await.expect_code(0);

    // Once: the refresh fixes it.
    c.cloud.set_faults(CloudFaults {
        bad_signature: 1,
        ..CloudFaults::default()
    });
    c.run(&["cloud", "devices"]).await.expect_code(0);

    // Always: one refresh, one retry, then stop.
    c.cloud.set_faults(CloudFaults {
        bad_signature: 1000,
        ..CloudFaults::default()
    });
    c.cloud.clear_requests();
    let run = c.run(&["cloud", "devices"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("signature"), "{}", run.stderr);
    let reqs = c.cloud.requests();
    let api = reqs.iter().filter(|r| r.host == "api").count();
    let refreshes = reqs
        .iter()
        .filter(|r| r.path == "/pass/serviceLogin")
        .count();
    assert_eq!((api, refreshes), (2, 1), "no loops: {reqs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_region_is_reported_and_all_regions_are_searched() {
    let c = start(110, vec![account()], |_| {}).await;
    c.login(&["--region", "cn"]).await.expect_code(0);
    let run = c.run(&["cloud", "devices"]).await;
    run.expect_code(0);
    assert!(
        run.stdout.contains("searched regions: cn"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("wrong region"), "{}", run.stdout);

    let run = c.run(&["cloud", "devices", "--all-regions"]).await;
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("searched regions: cn, de, us, ru, tw, sg, in, i2"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("found 1 in de"), "{}", run.stdout);
    let run = c
        .run(&["cloud", "devices", "--region", "de", "--json"])
        .await;
    run.expect_code(0);
    let doc = run.json();
    assert_eq!(doc["devices"][0]["did"], json!(c.did()));
    assert_eq!(doc["devices"][0]["region"], json!("de"));

    // Without a stored region, the listing searches everywhere and
    // remembers where the devices are.
    let c = start(111, vec![account()], |_| {}).await;
    c.login(&[]).await.expect_code(0);
    assert!(c.session()["region"].is_null());
    let run = c.run(&["cloud", "devices"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("found 1 in de"), "{}", run.stdout);
    assert_eq!(c.session()["region"], json!("de"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_transient_failures_are_retried_with_a_bound() {
    let c = start(112, vec![account()], |_| {}).await;
    c.login(&["--region", "de"]).await.expect_code(0);

    for faults in [
        CloudFaults {
            rate_limit: 2,
            ..CloudFaults::default()
        },
        CloudFaults {
            rate_limit: 2,
            rate_limit_form: RateLimitForm::Code,
            ..CloudFaults::default()
        },
        CloudFaults {
            server_errors: 2,
            ..CloudFaults::default()
        },
        CloudFaults {
            drop_connections: 1,
            ..CloudFaults::default()
        },
    ] {
        c.cloud.set_faults(faults.clone());
        c.cloud.clear_requests();
        let run = c.run(&["cloud", "devices"]).await;
        run.expect_code(0);
        assert!(run.stdout.contains(LIGHT), "{faults:?}");
    }

    for form in [RateLimitForm::Http429, RateLimitForm::Code] {
        c.cloud.set_faults(CloudFaults {
            rate_limit: 1000,
            rate_limit_form: form,
            ..CloudFaults::default()
        });
        c.cloud.clear_requests();
        let started = std::time::Instant::now();
        let run = c.run(&["cloud", "devices"]).await;
        run.expect_code(4);
        assert!(run.stderr.contains("rate limiting"), "{}", run.stderr);
        let api = c
            .cloud
            .requests()
            .iter()
            .filter(|r| r.host == "api")
            .count();
        assert_eq!(api, 4, "{form:?}: bounded attempts");
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "{form:?}: backs off"
        );
    }
    c.cloud.set_faults(CloudFaults::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_merges_by_did_and_keeps_local_edits() {
    let c = start(113, vec![account()], |_| {}).await;
    c.login(&["--region", "de"]).await.expect_code(0);

    let run = c.run(&["cloud", "import", "--dry-run"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("dry run"), "{}", run.stdout);
    assert!(Registry::load(&c.paths())
        .map(|r| r.is_empty())
        .unwrap_or(false));

    let run = c.run(&["cloud", "import"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("1 added"), "{}", run.stdout);
    let reg = Registry::load(&c.paths()).unwrap_or_else(|e| panic!("{e}"));
    let info = c.lamp().info();
    let e = reg
        .find_by_did(info.did)
        .unwrap_or_else(|| panic!("imported"))
        .clone();
    assert_eq!(e.name, "Desk lamp office");
    assert_eq!(e.room.as_deref(), Some("Office"));
    assert_eq!(e.token, info.token);
    assert_eq!(e.ip, info.addr.ip());
    assert_eq!(e.model.as_deref(), Some(LIGHT));
    let mode = std::fs::metadata(c.paths().devices_file())
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);

    // Again: nothing changes.
    let run = c.run(&["cloud", "import"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("1 unchanged"), "{}", run.stdout);

    // The user renames it, moves it and gives it another address; the
    // import keeps all three and says so.
    Registry::update(&c.paths(), |reg| {
        reg.rename("Desk lamp office", "Reading light")?;
        reg.set_room("Reading light", Some("Study"))?;
        reg.get_mut("Reading light")?.ip = "127.61.113.99".parse().unwrap_or(e.ip);
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let run = c.run(&["cloud", "import"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("1 kept local edits"), "{}", run.stdout);
    assert!(run.stdout.contains("kept your address"), "{}", run.stdout);
    let reg = Registry::load(&c.paths()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reg.len(), 1);
    let e2 = reg.find_by_did(info.did).unwrap_or_else(|| panic!("kept"));
    assert_eq!(e2.name, "Reading light");
    assert_eq!(e2.room.as_deref(), Some("Study"));
    assert_eq!(e2.ip.to_string(), "127.61.113.99");
    let run = c.run(&["--json", "cloud", "import"]).await;
    run.expect_code(0);
    assert_eq!(run.json()["kept_local_edits"], json!(1));
}

/// A result document without its `route` fields, and the route they
/// all name (`None` when the document has none, as `raw` documents).
fn split_route(doc: &Value) -> (Value, Option<String>) {
    let mut doc = doc.clone();
    let mut routes: Vec<Value> = Vec::new();
    let mut take = |o: &mut serde_json::Map<String, Value>| {
        if let Some(r) = o.remove("route") {
            routes.push(r);
        }
    };
    match &mut doc {
        Value::Object(o) => take(o),
        Value::Array(items) => items
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(&mut take),
        _ => {}
    }
    let route = routes.first().and_then(Value::as_str).map(str::to_owned);
    assert!(
        routes.iter().all(|r| r.as_str() == route.as_deref()),
        "one route per document: {routes:?}"
    );
    (doc, route)
}

/// Runs `args` on the local and on the cloud route (`local_route` and
/// `cloud_route` prepended) and checks that both give the same exit code
/// and, when they printed a result, the same document apart from the
/// route; returns the cloud run.
async fn same_on_both(
    c: &Cloudy,
    local_route: &[&str],
    cloud_route: &[&str],
    args: &[&str],
) -> Run {
    let with = |route: &[&str]| -> Vec<String> {
        route.iter().chain(args).map(|s| (*s).to_owned()).collect()
    };
    let a = c.run(&with(local_route)).await;
    let b = c.run(&with(cloud_route)).await;
    assert_eq!(a.code, b.code, "{args:?}\nlocal {a:#?}\ncloud {b:#?}");
    assert!(!a.stderr.contains("via cloud"), "{args:?}: {}", a.stderr);
    if a.code != 2 {
        assert!(
            b.stderr.contains("via cloud (de)"),
            "{args:?}: {}",
            b.stderr
        );
    }
    assert_eq!(
        a.stdout.is_empty(),
        b.stdout.is_empty(),
        "{args:?}\nlocal {a:#?}\ncloud {b:#?}"
    );
    if !a.stdout.is_empty() {
        let (da, ra) = split_route(&a.json());
        let (db, rb) = split_route(&b.json());
        assert_eq!(da, db, "{args:?}: the same result on both routes");
        if args.contains(&"raw") {
            assert_eq!(
                (ra, rb),
                (None, None),
                "{args:?}: raw is the device's own document"
            );
        } else {
            assert_eq!(ra.as_deref(), Some("local"), "{args:?}");
            assert_eq!(rb.as_deref(), Some("cloud"), "{args:?}");
        }
    }
    b
}

/// Registers the fleet's lamp as `lamp` (model and did asked from it).
async fn add_lamp(c: &Cloudy) {
    let mut args = vec!["device".to_owned(), "add".into(), "lamp".into()];
    args.extend(c.local_args());
    c.run(&args).await.expect_code(0);
    let reg = Registry::load(&c.paths()).unwrap_or_else(|e| panic!("{e}"));
    let e = reg.get("lamp").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        e.did,
        Some(c.lamp().info().did),
        "device add records the did"
    );
}

/// Points the registry entry `name` at a loopback address where nothing
/// listens, so the local route gets no answer.
fn kill_address(c: &Cloudy, name: &str, net: u8) {
    Registry::update(&c.paths(), |reg| {
        let e = reg.get_mut(name)?;
        e.ip = std::net::Ipv4Addr::new(127, 61, net, 250).into();
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

const QUICK: [&str; 4] = ["--timeout", "0.3", "--retries", "0"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_address_commands_give_the_same_results_on_both_routes() {
    let c = start(114, vec![account()], |_| {}).await;
    c.login(&["--region", "de"]).await.expect_code(0);
    let local = c.local_args();
    let did = c.did();
    let mut local_route: Vec<&str> = local.iter().map(String::as_str).collect();
    local_route.extend(["--via", "local"]);
    let cloud_route = ["--via", "cloud", "--did", did.as_str()];

    for args in [
        &["--json", "set", "2.1=true", "2.2=42"][..],
        &["--json", "get", "2.1", "2.2"],
        &["--json", "get", "2.1", "9.9"],
        &["--json", "action", "2.1"],
        &["--json", "set", "2.2=500"],
        &[
            "--json",
            "raw",
            "get_properties",
            r#"[{"did":"x","siid":2,"piid":1}]"#,
        ],
    ] {
        same_on_both(&c, &local_route, &cloud_route, args).await;
    }
    // The cloud changed the same device the LAN sees; tables are the same
    // on both routes and the cloud says so on stderr.
    let run = c.run(&[&cloud_route[..], &["set", "2.2=7"]].concat()).await;
    run.expect_code(0);
    assert!(run.stderr.contains("via cloud (de)"), "{}", run.stderr);
    assert_eq!(c.lamp().value(2, 2), Some(json!(7)));
    let a = c.run(&[&local_route[..], &["get", "2.2"]].concat()).await;
    let b = c.run(&[&cloud_route[..], &["get", "2.2"]].concat()).await;
    a.expect_code(0);
    b.expect_code(0);
    assert_eq!(a.stdout, b.stdout);
    assert!(!a.stderr.contains("via cloud"), "{}", a.stderr);

    // By address: the did comes from the registry.
    c.run(&["cloud", "import"]).await.expect_code(0);
    let ip = c.lamp().info().addr.ip().to_string();
    let run = c
        .run(&["--json", "--via", "cloud", "--ip", &ip, "get", "2.2"])
        .await;
    run.expect_code(0);
    assert_eq!(split_route(&run.json()).1.as_deref(), Some("cloud"));

    // Auto: the local route does not answer, a session exists → cloud.
    kill_address(&c, "Desk lamp office", 114);
    let token = c.lamp().info().token.reveal();
    let dead = ["--ip", "127.61.114.250", "--token", token.as_str()];
    let run = c
        .run(&[&dead[..], &QUICK[..], &["--json", "get", "2.2"]].concat())
        .await;
    run.expect_code(0);
    let (doc, route) = split_route(&run.json());
    assert_eq!(route.as_deref(), Some("cloud"));
    assert_eq!(doc[0]["value"], json!(7));
    assert!(
        run.stderr
            .contains("via cloud (de): the local route failed"),
        "{}",
        run.stderr
    );
    // …but not with --via local.
    let run = c
        .run(&[&dead[..], &QUICK[..], &["--via", "local", "get", "2.2"]].concat())
        .await;
    run.expect_code(4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_name_commands_give_the_same_results_on_both_routes() {
    let c = start(116, vec![account()], |_| {}).await;
    c.login(&["--region", "de"]).await.expect_code(0);
    add_lamp(&c).await;
    let local = ["--via", "local"];
    let cloud = ["--via", "cloud"];
    for args in [
        &[
            "--json",
            "set",
            "lamp",
            "light.on=on",
            "light.brightness=42",
        ][..],
        &["--json", "get", "lamp", "light.brightness", "light.on"],
        &["--json", "status", "lamp"],
        &["--json", "action", "lamp", "toggle"],
        &["--json", "action", "lamp", "light.toggle"],
        &[
            "--json",
            "raw",
            "lamp",
            "get_properties",
            r#"[{"did":"x","siid":2,"piid":2}]"#,
        ],
        &["--json", "raw", "lamp", "no_such_method"],
        &["--json", "set", "lamp", "light.brightness=30"],
    ] {
        same_on_both(&c, &local, &cloud, args).await;
    }
    assert_eq!(c.lamp().value(2, 2), Some(json!(30)), "the cloud wrote it");
    let run = c
        .run(&["--via", "cloud", "--json", "get", "lamp", "brightness"])
        .await;
    run.expect_code(0);
    let (doc, _) = split_route(&run.json());
    assert_eq!(doc[0]["property"], json!("light.brightness"));
    assert_eq!(doc[0]["display"], json!("30 %"));
    // Tables: identical on both routes.
    let a = c
        .run(&["--via", "local", "get", "lamp", "brightness"])
        .await;
    let b = c
        .run(&["--via", "cloud", "get", "lamp", "brightness"])
        .await;
    a.expect_code(0);
    b.expect_code(0);
    assert_eq!(a.stdout, b.stdout);
    assert!(a.stdout.contains("30 %"), "{}", a.stdout);
    assert_eq!(b.stderr.trim(), "via cloud (de)");

    // Names and values are checked before anything is sent on either route.
    let before = c.cloud.requests().len();
    for bad in [
        &["set", "lamp", "light.brightness=500"][..],
        &["get", "lamp", "light.brigthness"],
        &["action", "lamp", "toggle", "1"],
    ] {
        let run = c.run(&[&cloud[..], bad].concat()).await;
        run.expect_code(2);
        assert!(!run.stderr.contains("via cloud"), "{}", run.stderr);
    }
    assert_eq!(
        c.cloud.requests().len(),
        before,
        "no request reached the cloud"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_the_cloud_only_when_the_device_does_not_answer() {
    let c = start(117, vec![account()], |_| {}).await;
    add_lamp(&c).await;
    // Answering locally: the local route, even with a session.
    c.login(&["--region", "de"]).await.expect_code(0);
    let api = |c: &Cloudy| {
        c.cloud
            .requests()
            .iter()
            .filter(|r| r.host == "api")
            .count()
    };
    let before = api(&c);
    let run = c.run(&["--json", "get", "lamp", "brightness"]).await;
    run.expect_code(0);
    assert_eq!(split_route(&run.json()).1.as_deref(), Some("local"));
    // A device error is not a reason to try the cloud.
    let run = c.run(&["raw", "lamp", "no_such_method"]).await;
    run.expect_code(3);
    assert!(!run.stderr.contains("via cloud"), "{}", run.stderr);
    assert_eq!(api(&c), before, "the cloud was not asked");

    // The registered address is dead: get, set, action and raw go through
    // the cloud, with the same results.
    let want = c
        .run(&[
            "--via",
            "local",
            "--json",
            "get",
            "lamp",
            "light.on",
            "brightness",
        ])
        .await;
    want.expect_code(0);
    kill_address(&c, "lamp", 117);
    let run = c
        .run(
            &[
                &QUICK[..],
                &["--json", "get", "lamp", "light.on", "brightness"],
            ]
            .concat(),
        )
        .await;
    run.expect_code(0);
    let (doc, route) = split_route(&run.json());
    assert_eq!(route.as_deref(), Some("cloud"));
    assert_eq!(doc, split_route(&want.json()).0);
    assert!(
        run.stderr
            .contains("via cloud (de): the local route failed: no reply to hello"),
        "{}",
        run.stderr
    );
    let run = c
        .run(&[&QUICK[..], &["--json", "set", "lamp", "brightness=55"]].concat())
        .await;
    run.expect_code(0);
    assert_eq!(split_route(&run.json()).1.as_deref(), Some("cloud"));
    assert_eq!(c.lamp().value(2, 2), Some(json!(55)));
    let on = c.lamp().value(2, 1);
    let run = c
        .run(&[&QUICK[..], &["--json", "action", "lamp", "toggle"]].concat())
        .await;
    run.expect_code(0);
    assert_eq!(split_route(&run.json()).1.as_deref(), Some("cloud"));
    assert_ne!(c.lamp().value(2, 1), on, "toggled once");
    let run = c
        .run(
            &[
                &QUICK[..],
                &[
                    "raw",
                    "lamp",
                    "get_properties",
                    r#"[{"did":"x","siid":2,"piid":2}]"#,
                ],
            ]
            .concat(),
        )
        .await;
    run.expect_code(0);
    assert!(run.stdout.contains("55"), "{}", run.stdout);
    assert!(run.stderr.contains("via cloud (de)"), "{}", run.stderr);
    // A cloud error after the fallback has the cloud's exit code.
    c.cloud
        .set_device_online("lamp", false)
        .unwrap_or_else(|e| panic!("{e}"));
    let run = c
        .run(&[&QUICK[..], &["get", "lamp", "brightness"]].concat())
        .await;
    run.expect_code(4);
    assert!(run.stderr.contains("offline"), "{}", run.stderr);
    c.cloud
        .set_device_online("lamp", true)
        .unwrap_or_else(|e| panic!("{e}"));
    // --via local never tries the cloud.
    let before = api(&c);
    let run = c
        .run(&[&QUICK[..], &["--via", "local", "get", "lamp", "brightness"]].concat())
        .await;
    run.expect_code(4);
    assert!(!run.stderr.contains("mijia cloud"), "{}", run.stderr);
    assert_eq!(api(&c), before);

    // No session: the local error stands, with a hint.
    c.run(&["cloud", "logout"]).await.expect_code(0);
    let run = c
        .run(&[&QUICK[..], &["get", "lamp", "brightness"]].concat())
        .await;
    run.expect_code(4);
    assert!(run.stderr.contains("no reply to hello"), "{}", run.stderr);
    assert!(run.stderr.contains("mijia cloud login"), "{}", run.stderr);
    assert!(!run.stderr.contains("via cloud"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_route_errors_have_the_local_exit_codes() {
    let c = start(118, vec![account()], |_| {}).await;
    add_lamp(&c).await;
    // Not logged in: exit 6, saying what to run.
    let run = c
        .run(&["--via", "cloud", "get", "lamp", "brightness"])
        .await;
    run.expect_code(6);
    assert!(run.stderr.contains("mijia cloud login"), "{}", run.stderr);
    c.login(&["--region", "de"]).await.expect_code(0);

    // Offline according to the cloud: 4, like a device that does not answer.
    c.cloud
        .set_device_online("lamp", false)
        .unwrap_or_else(|e| panic!("{e}"));
    for args in [
        &["get", "lamp", "brightness"][..],
        &["set", "lamp", "brightness=10"],
        &["action", "lamp", "toggle"],
        &["raw", "lamp", "get_prop", r#"["power"]"#],
        &["status", "lamp"],
    ] {
        let run = c.run(&[&["--via", "cloud"][..], args].concat()).await;
        run.expect_code(4);
        assert!(run.stderr.contains("offline"), "{args:?}: {}", run.stderr);
    }
    c.cloud
        .set_device_online("lamp", true)
        .unwrap_or_else(|e| panic!("{e}"));

    // A MIoT error from the cloud: 3, as the device's own error locally.
    let run = c
        .run(&["--via", "cloud", "raw", "lamp", "no_such_method"])
        .await;
    run.expect_code(3);
    assert!(run.stderr.contains("-32601"), "{}", run.stderr);

    // A device the registry has no did for: 2, saying how to get one.
    let mut args = vec!["device".to_owned(), "add".into(), "nodid".into()];
    args.extend(c.local_args());
    args.extend(["--model".into(), LIGHT.into()]);
    c.run(&args).await.expect_code(0);
    let run = c
        .run(&["--via", "cloud", "get", "nodid", "brightness"])
        .await;
    run.expect_code(2);
    assert!(run.stderr.contains("mijia cloud import"), "{}", run.stderr);
    // …and with auto, its dead address gives the local error and that hint.
    kill_address(&c, "nodid", 118);
    let run = c
        .run(&[&QUICK[..], &["get", "nodid", "brightness"]].concat())
        .await;
    run.expect_code(4);
    assert!(run.stderr.contains("mijia cloud import"), "{}", run.stderr);

    // Rooms and the whole home are polled locally: asking for the cloud is 2.
    let run = c.run(&["--via", "cloud", "status", "--all"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("one device"), "{}", run.stderr);

    // A did the cloud does not know: 2.
    let run = c
        .run(&["--via", "cloud", "--did", "424242", "get", "2.1"])
        .await;
    run.expect_code(2);
    assert!(
        run.stderr.contains("does not know device 424242"),
        "{}",
        run.stderr
    );

    // The session expired and cannot be refreshed: 6.
    c.cloud
        .expire_service_tokens(Some(USER), ExpiredForm::AuthErr)
        .unwrap_or_else(|e| panic!("{e}"));
    c.cloud
        .expire_pass_tokens(Some(USER))
        .unwrap_or_else(|e| panic!("{e}"));
    let run = c
        .run(&["--via", "cloud", "get", "lamp", "brightness"])
        .await;
    run.expect_code(6);
    assert!(run.stderr.contains("re-login needed"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_output() {
    let c = start(115, vec![account()], |_| {}).await;
    let mut all = String::new();
    let mut add = |r: &Run| {
        all.push_str(&r.stdout);
        all.push_str(&r.stderr);
    };
    let r = c.login(&["-vv", "--region", "de"]).await;
    r.expect_code(0);
    add(&r);
    c.cloud
        .expire_service_tokens(Some(USER), ExpiredForm::AuthErr)
        .unwrap_or_else(|e| panic!("{e}"));
    let did = c.did();
    for args in [
        vec!["-vv", "cloud", "status"],
        vec!["-vv", "--json", "cloud", "status"],
        vec!["-vv", "cloud", "devices"],
        vec!["-vv", "--json", "cloud", "devices"],
        vec!["-vv", "cloud", "import"],
        vec!["-vv", "--via", "cloud", "--did", &did, "get", "2.1"],
        vec!["-vv", "--via", "cloud", "--did", &did, "info"],
    ] {
        let r = c.run(&args).await;
        r.expect_code(0);
        add(&r);
    }
    assert!(all.contains("TRACE") || all.contains("DEBUG"), "-vv logs");
    let s = c.session();
    let token = c.lamp().info().token.reveal();
    let hash = mijia_proto::cloud::password_hash(&PASSWORD.into());
    let secrets = [
        s["ssecurity"].as_str().unwrap_or("none").to_owned(),
        s["service_token"].as_str().unwrap_or("none").to_owned(),
        s["pass_token"].as_str().unwrap_or("none").to_owned(),
        PASSWORD.to_owned(),
        hash,
        token.clone(),
    ];
    for secret in &secrets {
        assert!(secret.len() > 4, "{secret:?}");
        assert!(
            !all.contains(secret.as_str()),
            "a secret leaked into the output"
        );
    }
    // Shown only when asked.
    let r = c.run(&["cloud", "devices", "--show-secrets"]).await;
    r.expect_code(0);
    assert!(r.stdout.contains(&token));
}
