//! The test control API under `/__fake/` (JSON in, JSON out, no prefix),
//! and the operations behind it, which [`super::FakeCloud`] also offers as
//! Rust methods.
//!
//! | method | path | body | effect |
//! |---|---|---|---|
//! | GET | `/__fake/health` | | `{"ok":true}` |
//! | GET, POST | `/__fake/accounts` | account (as in `[[account]]`) | list / create |
//! | POST | `/__fake/script` | `{"user","outcomes":[…]}` | queue login outcomes |
//! | GET | `/__fake/qr` | | pending QR logins |
//! | POST | `/__fake/qr/confirm` | `{"user"?,"id"?}` | confirm a QR login |
//! | POST | `/__fake/expire/service_tokens` | `{"user"?,"form"?}` | expire sessions |
//! | POST | `/__fake/expire/pass_tokens` | `{"user"?}` | expire pass tokens |
//! | GET, POST | `/__fake/faults` | faults (as in `[cloud.faults]`) | read / replace |
//! | GET | `/__fake/clock` | | `{"now_ms"}` |
//! | POST | `/__fake/clock/advance` | `{"secs"}` (may be negative) | move the fake clock |
//! | GET, DELETE | `/__fake/requests` | | read / clear the request log |
//! | POST | `/__fake/devices` | `{"device","online"?,"region"?}` | change a device |
//!
//! Errors are HTTP 400/404 with `{"error": "…"}`. Nothing here is logged
//! or faulted.

use serde::Deserialize;
use serde_json::{json, Value};

use super::config::{parse_region, AccountConfig, CloudFaults, ExpiredForm, LoginOutcome};
use super::http::{Reply, Req};
use super::state::{RequestRecord, Shared};
use super::CloudError;

fn ok(v: Value) -> Reply {
    Reply::json(200, &v)
}

fn err(status: u16, e: impl std::fmt::Display) -> Reply {
    Reply::json(status, &json!({"error": e.to_string()}))
}

fn body<T: for<'de> Deserialize<'de> + Default>(req: &Req) -> Result<T, Reply> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&req.body).map_err(|e| err(400, format!("bad JSON body: {e}")))
}

fn body_required<T: for<'de> Deserialize<'de>>(req: &Req) -> Result<T, Reply> {
    serde_json::from_slice(&req.body).map_err(|e| err(400, format!("bad JSON body: {e}")))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UserArg {
    user: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExpireArg {
    user: Option<String>,
    form: Option<ExpiredForm>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct QrArg {
    user: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptArg {
    user: String,
    outcomes: Vec<LoginOutcome>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockArg {
    secs: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceArg {
    device: String,
    online: Option<bool>,
    region: Option<String>,
}

/// Handle one control request.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Reply {
    match run(shared, req) {
        Ok(r) | Err(r) => r,
    }
}

fn run(shared: &Shared, req: &Req) -> Result<Reply, Reply> {
    let m = req.method.as_str();
    let path = req.path.trim_end_matches('/');
    Ok(match (m, path) {
        ("GET", "/__fake/health") => ok(json!({"ok": true})),
        ("GET", "/__fake/accounts") => ok(accounts(shared)),
        ("POST", "/__fake/accounts") => {
            let a: AccountConfig = body_required(req)?;
            let id = add_account(shared, a).map_err(|e| err(400, e))?;
            ok(json!({"user_id": id}))
        }
        ("POST", "/__fake/script") => {
            let s: ScriptArg = body_required(req)?;
            script(shared, &s.user, s.outcomes).map_err(|e| err(400, e))?;
            ok(json!({"ok": true}))
        }
        ("GET", "/__fake/qr") => ok(qr_list(shared)),
        ("POST", "/__fake/qr/confirm") => {
            let a: QrArg = body(req)?;
            let id = shared
                .lock()
                .confirm_qr(a.user.as_deref(), a.id.as_deref())
                .map_err(|e| err(400, e))?;
            shared.qr_changed.notify_waiters();
            ok(json!({"confirmed": id}))
        }
        ("POST", "/__fake/expire/service_tokens") => {
            let a: ExpireArg = body(req)?;
            let n = expire_service_tokens(shared, a.user.as_deref(), a.form.unwrap_or_default())
                .map_err(|e| err(400, e))?;
            ok(json!({"expired": n}))
        }
        ("POST", "/__fake/expire/pass_tokens") => {
            let a: UserArg = body(req)?;
            let n = expire_pass_tokens(shared, a.user.as_deref()).map_err(|e| err(400, e))?;
            ok(json!({"expired": n}))
        }
        ("GET", "/__fake/faults") => {
            ok(serde_json::to_value(shared.lock().faults.clone()).unwrap_or(Value::Null))
        }
        ("POST", "/__fake/faults") => {
            let f: CloudFaults = body(req)?;
            shared.lock().faults = f;
            ok(json!({"ok": true}))
        }
        ("GET", "/__fake/clock") => ok(json!({"now_ms": shared.lock().now_ms()})),
        ("POST", "/__fake/clock/advance") => {
            let a: ClockArg = body_required(req)?;
            let now = advance_clock(shared, a.secs);
            ok(json!({"now_ms": now}))
        }
        ("GET", "/__fake/requests") => {
            ok(serde_json::to_value(requests(shared)).unwrap_or(Value::Null))
        }
        ("DELETE", "/__fake/requests") | ("POST", "/__fake/requests/clear") => {
            shared.lock().log.clear();
            ok(json!({"ok": true}))
        }
        ("POST", "/__fake/devices") => {
            let a: DeviceArg = body_required(req)?;
            set_device(shared, &a.device, a.online, a.region.as_deref())
                .map_err(|e| err(400, e))?;
            ok(json!({"ok": true}))
        }
        _ => return Err(err(404, format!("no control endpoint {m} {path}"))),
    })
}

pub(crate) fn accounts(shared: &Shared) -> Value {
    let g = shared.lock();
    Value::Array(
        g.accounts
            .iter()
            .map(|a| {
                let regions: std::collections::BTreeSet<&str> = g
                    .devices
                    .iter()
                    .filter(|d| d.owner.is_none_or(|o| o == a.cfg.user_id))
                    .map(|d| d.region.code())
                    .collect();
                json!({
                    "user": a.cfg.user,
                    "user_id": a.cfg.user_id,
                    "email": a.cfg.email,
                    "phone": a.cfg.phone,
                    "device_regions": regions,
                    "two_factor": a.cfg.two_factor.is_some(),
                    "captcha": a.cfg.captcha.is_some(),
                    "risk_control": a.cfg.risk_control,
                })
            })
            .collect(),
    )
}

pub(crate) fn add_account(shared: &Shared, a: AccountConfig) -> Result<u64, CloudError> {
    shared.lock().add_account(a)
}

pub(crate) fn script(
    shared: &Shared,
    user: &str,
    outcomes: Vec<LoginOutcome>,
) -> Result<(), CloudError> {
    let mut g = shared.lock();
    let id = g
        .account(user)
        .map(|a| a.cfg.user_id)
        .ok_or_else(|| CloudError::UnknownAccount(user.to_owned()))?;
    g.scripts.entry(id).or_default().extend(outcomes);
    Ok(())
}

fn qr_list(shared: &Shared) -> Value {
    let mut g = shared.lock();
    let now = std::time::Instant::now();
    let ids: Vec<String> = g.qrs.iter().map(|q| q.id.clone()).collect();
    let mut out = Vec::new();
    for id in ids {
        let state = match g.qr_state(&id, now) {
            super::state::QrState::Confirmed(_) => "confirmed",
            super::state::QrState::Expired => "expired",
            super::state::QrState::Pending { .. } => "pending",
            super::state::QrState::Unknown => continue,
        };
        let age_ms = g
            .qrs
            .iter()
            .find(|q| q.id == id)
            .map_or(0, |q| now.saturating_duration_since(q.created).as_millis());
        out.push(json!({"id": id, "state": state, "age_ms": age_ms}));
    }
    Value::Array(out)
}

pub(crate) fn expire_service_tokens(
    shared: &Shared,
    user: Option<&str>,
    form: ExpiredForm,
) -> Result<usize, CloudError> {
    let mut g = shared.lock();
    let ids = g.user_ids(user)?;
    Ok(g.expire_sessions(&ids, form))
}

pub(crate) fn expire_pass_tokens(shared: &Shared, user: Option<&str>) -> Result<usize, CloudError> {
    let mut g = shared.lock();
    let ids = g.user_ids(user)?;
    Ok(g.expire_pass_tokens(&ids))
}

pub(crate) fn advance_clock(shared: &Shared, secs: i64) -> u64 {
    let mut g = shared.lock();
    g.clock_offset_ms = g.clock_offset_ms.saturating_add(secs.saturating_mul(1000));
    g.now_ms()
}

pub(crate) fn requests(shared: &Shared) -> Vec<RequestRecord> {
    shared.lock().log.iter().cloned().collect()
}

pub(crate) fn set_device(
    shared: &Shared,
    device: &str,
    online: Option<bool>,
    region: Option<&str>,
) -> Result<(), CloudError> {
    let region = match region {
        Some(r) => Some(parse_region(r, "region")?),
        None => None,
    };
    let mut g = shared.lock();
    let d = g
        .device_mut(device)
        .ok_or_else(|| CloudError::UnknownDevice(device.to_owned()))?;
    if let Some(o) = online {
        d.cfg.online = o;
    }
    if let Some(r) = region {
        d.region = r;
    }
    Ok(())
}
