//! The signed app API under `/{region}/app/…`, backed by the simulated
//! fleet.
//!
//! For each request: find the session by the `userId` and `serviceToken`
//! cookies (unknown → `{"code":3,"message":"auth err"}`; expired → the
//! configured one of four forms), verify the RC4 (header
//! `MIOT-ENCRYPT-ALGORITHM: ENCRYPT-RC4`) or HMAC signature with the
//! session's `ssecurity` (failure → plain `invalid signature`), optionally
//! check the nonce's minute and reuse, run the endpoint, and answer: an
//! RC4-encrypted envelope (gzip inside when `miot-accept-encoding: GZIP`)
//! for RC4 requests, plain JSON for HMAC ones, plain JSON for every error.
//!
//! Devices are the fleet's own: reads, writes, actions and raw miIO calls go
//! through the device's state machine, so a change made here is what the
//! LAN side sees and the reverse. A device lives in exactly one region;
//! other regions see none of it. This module does not emulate the OAuth
//! (`ha.api`) flavour.

use std::str::FromStr;
use std::sync::Arc;

use mijia_proto::cloud::{encrypt_response, verify_hmac_request, verify_rc4_request, Region};
use serde_json::{json, Map, Value};

use super::config::ExpiredForm;
use super::http::{Reply, Req};
use super::server::Outcome;
use super::state::{DeviceEntry, Shared};

/// Cloud code: device does not exist (or is not this account's).
pub const CODE_NO_DEVICE: i64 = -704042001;
/// Cloud code: device offline.
pub const CODE_OFFLINE: i64 = -704042011;

/// Maps a device (LAN) MIoT code to the cloud's code.
pub fn cloud_code(device_code: i64, action: bool) -> i64 {
    match device_code {
        0 | 1 => device_code,
        -4001 => -704030013,
        -4002 => -704030023,
        -4003 if action => -704040005,
        -4003 => -704040003,
        -4004 => -704040004,
        -4005 => -704220043,
        -4006 => -704220035,
        -9999 => -704083036,
        other => other,
    }
}

fn plain(status: u16, code: i64, message: &str) -> Reply {
    Reply::json(status, &json!({"code": code, "message": message}))
}

fn expired_reply(form: ExpiredForm) -> (Reply, &'static str) {
    match form {
        ExpiredForm::ServiceTokenExpired => (
            plain(200, 0, "SERVICETOKEN_EXPIRED"),
            "expired: code 0 SERVICETOKEN_EXPIRED",
        ),
        ExpiredForm::AuthErr => (plain(200, 3, "auth err"), "expired: code 3 auth err"),
        ExpiredForm::Http401 => (
            Reply::new(
                401,
                "text/html;charset=utf-8",
                "<html><head><title>Apache Tomcat - Error report</title></head><body><h1>HTTP Status 401 - Unauthorized</h1></body></html>",
            ),
            "expired: HTTP 401",
        ),
        ExpiredForm::Http426 => (
            plain(426, 0, "SERVICETOKEN_EXPIRED"),
            "expired: HTTP 426 SERVICETOKEN_EXPIRED",
        ),
    }
}

/// Handle one API request.
pub(crate) async fn handle(shared: &Arc<Shared>, req: &Req, region: &str, signed: &str) -> Outcome {
    let Ok(region) = Region::from_str(region) else {
        return Outcome::new(
            plain(404, 404, &format!("unknown region {region:?}")),
            "404 unknown region",
        );
    };
    let user_id = req
        .cookie("userId")
        .and_then(|u| u.trim().parse::<u64>().ok());
    let token = req.cookie("serviceToken");
    let rc4 = req
        .header("miot-encrypt-algorithm")
        .is_some_and(|h| h.trim().eq_ignore_ascii_case("ENCRYPT-RC4"));
    let gzip = req
        .header("miot-accept-encoding")
        .is_some_and(|h| h.trim().eq_ignore_ascii_case("GZIP"));
    let fields = if req.form.is_empty() {
        &req.query
    } else {
        &req.form
    };

    // Session, signature, nonce: all under one short lock.
    let (ssecurity, verified) = {
        let mut g = shared.lock();
        let now_ms = g.now_ms();
        let ttl = g.service_token_ttl_secs;
        let ttl_form = g.expired_form;
        let session = match (user_id, token) {
            (Some(uid), Some(t)) => g.sessions.get(t).filter(|s| s.user_id == uid),
            _ => None,
        };
        let Some(session) = session else {
            let why = match (user_id, token) {
                (None, _) => "auth err: no userId cookie",
                (_, None) => "auth err: no serviceToken cookie",
                _ => "auth err: unknown serviceToken",
            };
            return Outcome::new(plain(200, 3, "auth err"), why);
        };
        if let Some(form) = session.expired {
            let (reply, why) = expired_reply(form);
            return Outcome::new(reply, why);
        }
        if let Some(ttl) = ttl {
            if now_ms.saturating_sub(session.created_ms) > ttl.saturating_mul(1000) {
                let (reply, why) = expired_reply(ttl_form);
                return Outcome::new(reply, format!("{why} (ttl)"));
            }
        }
        let ssecurity = session.ssecurity.clone();
        if g.faults.bad_signature > 0 {
            g.faults.bad_signature -= 1;
            return Outcome::new(
                Reply::text(200, "invalid signature"),
                "invalid signature (fault)",
            );
        }
        let verified = if rc4 {
            verify_rc4_request(&ssecurity, signed, fields)
        } else {
            verify_hmac_request(&ssecurity, signed, fields)
        };
        let verified = match verified {
            Ok(v) => v,
            Err(mijia_proto::cloud::SignError::DataNotJson { reason }) => {
                return Outcome::new(
                    plain(200, -1, "data is not valid JSON"),
                    format!("data not JSON: {reason}"),
                )
            }
            Err(e) => {
                return Outcome::new(
                    Reply::text(200, "invalid signature"),
                    format!("invalid signature: {e}"),
                )
            }
        };
        if let Some(max) = g.max_nonce_skew_minutes {
            let now_min = now_ms / 60_000;
            let ok = verified
                .nonce
                .minutes()
                .is_some_and(|m| u64::from(m).abs_diff(now_min) <= u64::from(max));
            if !ok {
                return Outcome::new(
                    Reply::text(200, "invalid signature"),
                    "invalid signature: nonce minute off the clock",
                );
            }
        }
        if g.reject_replayed_nonces && !g.remember_nonce(verified.nonce.as_str()) {
            return Outcome::new(
                Reply::text(200, "invalid signature"),
                "invalid signature: replayed nonce",
            );
        }
        (ssecurity, verified)
    };
    let uid = user_id.unwrap_or_default();
    let data = verified.data.clone();
    let result = endpoint(shared, uid, region, signed, &data);
    let mut outcome = match result {
        Ok(result) => {
            let body = json!({"code": 0, "message": "ok", "result": result}).to_string();
            let reply = if rc4 {
                Reply::new(
                    200,
                    "text/plain;charset=UTF-8",
                    encrypt_response(&ssecurity, &verified.nonce, body.as_bytes(), gzip),
                )
            } else {
                Reply::new(200, "application/json", body)
            };
            Outcome::new(reply, if rc4 { "ok (rc4)" } else { "ok (hmac)" })
        }
        Err((status, code, message)) => Outcome::new(
            plain(status, code, &message),
            format!("error {code}: {message}"),
        ),
    };
    outcome.data = Some(data);
    outcome
}

type ApiResult = Result<Value, (u16, i64, String)>;

fn bad_request(message: impl Into<String>) -> (u16, i64, String) {
    (200, -1, message.into())
}

/// The devices `user_id` sees in `region`, sorted by did.
fn visible(shared: &Shared, user_id: u64, region: Region) -> Vec<DeviceView> {
    let g = shared.lock();
    let mut v: Vec<DeviceView> = g
        .devices
        .iter()
        .filter(|d| d.region == region && d.owner.is_none_or(|o| o == user_id))
        .map(DeviceView::of)
        .collect();
    v.sort_by_key(|d| d.did);
    v
}

/// A snapshot of a device entry taken under the lock.
#[derive(Clone)]
struct DeviceView {
    handle: crate::DeviceHandle,
    name: String,
    did: u64,
    home: String,
    room: Option<String>,
    online: bool,
    slow_set: bool,
}

impl DeviceView {
    fn of(d: &DeviceEntry) -> DeviceView {
        DeviceView {
            handle: d.handle.clone(),
            name: d.cfg.name.clone().unwrap_or_else(|| d.name.clone()),
            did: d.did,
            home: d.cfg.home.clone(),
            room: d.cfg.room.clone(),
            online: d.cfg.online,
            slow_set: d.cfg.slow_set,
        }
    }

    fn is_online(&self) -> bool {
        self.online && !self.handle.is_offline()
    }
}

fn did_of(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn record(d: &DeviceView, user_id: u64) -> Value {
    let info = d.handle.info();
    let miio = d.handle.miio_info();
    let ip = info.addr.ip().to_string();
    let spec_type = mijia_proto::miot::bundled::spec_arc_for_model(&info.model)
        .and_then(Result::ok)
        .map(|s| s.urn.to_string());
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put("did", json!(d.did.to_string()));
    put("token", json!(info.token.reveal()));
    put("name", json!(d.name));
    put("model", json!(info.model));
    put("localip", json!(ip));
    put("mac", miio.get("mac").cloned().unwrap_or(json!("")));
    put(
        "ssid",
        miio.pointer("/ap/ssid").cloned().unwrap_or(json!("")),
    );
    put(
        "bssid",
        miio.pointer("/ap/bssid").cloned().unwrap_or(json!("")),
    );
    put(
        "rssi",
        miio.pointer("/ap/rssi").cloned().unwrap_or(json!(-50)),
    );
    put("isOnline", json!(d.is_online()));
    put("pid", json!(0));
    put("parent_id", json!(""));
    put("parent_model", json!(""));
    put("uid", json!(user_id));
    put("permitLevel", json!(16));
    put("adminFlag", json!(1));
    put("shareFlag", json!(0));
    put("show_mode", json!(1));
    put("longitude", json!("0.0"));
    put("latitude", json!("0.0"));
    put("desc", json!(""));
    put(
        "extra",
        json!({
            "isSetPincode": 0,
            "fw_version": miio.get("fw_ver").cloned().unwrap_or(json!("")),
            "needVerifyCode": 0,
            "isPasswordEncrypt": 0,
        }),
    );
    if let Some(t) = spec_type {
        put("spec_type", json!(t));
    }
    Value::Object(m)
}

/// Stable numeric ids for homes and rooms.
fn home_id(user_id: u64, index: usize) -> String {
    (user_id % 1_000_000 * 1000 + 100 + index as u64).to_string()
}

fn room_id(home: &str, index: usize) -> String {
    format!("{home}{:03}", index + 1)
}

fn homes(user_id: u64, devices: &[DeviceView]) -> Vec<Value> {
    let mut names: Vec<&str> = Vec::new();
    for d in devices {
        if !names.contains(&d.home.as_str()) {
            names.push(&d.home);
        }
    }
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let id = home_id(user_id, i);
            let mut rooms: Vec<(&str, Vec<String>)> = Vec::new();
            let mut loose = Vec::new();
            for d in devices.iter().filter(|d| d.home == *name) {
                match &d.room {
                    Some(r) => match rooms.iter_mut().find(|(n, _)| *n == r.as_str()) {
                        Some((_, dids)) => dids.push(d.did.to_string()),
                        None => rooms.push((r.as_str(), vec![d.did.to_string()])),
                    },
                    None => loose.push(d.did.to_string()),
                }
            }
            let roomlist: Vec<Value> = rooms
                .iter()
                .enumerate()
                .map(|(j, (rname, dids))| {
                    json!({"id": room_id(&id, j), "name": rname, "dids": dids, "parentid": id, "icon": "", "shareflag": 0})
                })
                .collect();
            json!({
                "id": id,
                "name": name,
                "uid": user_id,
                "bssid": "",
                "dids": loose,
                "roomlist": roomlist,
                "permit_level": 16,
                "status": 0,
                "longitude": 0.0,
                "latitude": 0.0,
                "city_id": 0,
                "address": "",
                "create_time": 1_600_000_000u64,
            })
        })
        .collect()
}

/// Devices after `start` (exclusive), at most `limit`; plus whether more follow.
fn page(devices: &[DeviceView], start: Option<u64>, limit: usize) -> (Vec<&DeviceView>, bool) {
    let after: Vec<&DeviceView> = devices
        .iter()
        .filter(|d| start.is_none_or(|s| d.did > s))
        .collect();
    let limit = limit.max(1);
    let more = after.len() > limit;
    (after.into_iter().take(limit).collect(), more)
}

fn limit_of(data: &Value, default: usize) -> usize {
    data.get("limit")
        .and_then(Value::as_u64)
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| *l > 0)
        .unwrap_or(default)
}

fn start_of(data: &Value, key: &str) -> Option<u64> {
    data.get(key).and_then(did_of)
}

fn dids_filter(data: &Value) -> Option<Vec<u64>> {
    let list = data.get("dids")?.as_array()?;
    if list.is_empty() {
        return None;
    }
    Some(list.iter().filter_map(did_of).collect())
}

fn now_s(shared: &Shared) -> u64 {
    shared.lock().now_ms() / 1000
}

fn endpoint(shared: &Shared, user_id: u64, region: Region, path: &str, data: &Value) -> ApiResult {
    let devices = visible(shared, user_id, region);
    let find = |did: u64| devices.iter().find(|d| d.did == did);
    match path {
        "/home/device_list" => {
            let filter = dids_filter(data);
            let list: Vec<Value> = devices
                .iter()
                .filter(|d| filter.as_ref().is_none_or(|f| f.contains(&d.did)))
                .map(|d| record(d, user_id))
                .collect();
            Ok(json!({"list": list, "virtualModels": []}))
        }
        "/v2/home/device_list_page" => {
            let filter = dids_filter(data);
            let selected: Vec<DeviceView> = devices
                .iter()
                .filter(|d| filter.as_ref().is_none_or(|f| f.contains(&d.did)))
                .cloned()
                .collect();
            let (items, more) = page(&selected, start_of(data, "start_did"), limit_of(data, 200));
            let next = items.last().map(|d| d.did.to_string()).unwrap_or_default();
            let list: Vec<Value> = items.iter().map(|d| record(d, user_id)).collect();
            Ok(
                json!({"list": list, "has_more": more, "next_start_did": if more { next } else { String::new() }}),
            )
        }
        "/v2/homeroom/gethome" => Ok(json!({
            "homelist": homes(user_id, &devices),
            "share_home_list": [],
            "has_more": false,
            "max_id": "",
        })),
        "/v2/home/home_device_list" => {
            let hl = homes(user_id, &devices);
            let want = data.get("home_id").map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let Some(home) = hl
                .iter()
                .find(|h| want.as_deref().is_none_or(|w| h["id"].as_str() == Some(w)))
            else {
                return Ok(json!({"device_info": [], "has_more": false, "max_did": ""}));
            };
            let name = home["name"].as_str().unwrap_or_default();
            let in_home: Vec<DeviceView> =
                devices.iter().filter(|d| d.home == name).cloned().collect();
            let (items, more) = page(&in_home, start_of(data, "start_did"), limit_of(data, 200));
            let max = items.last().map(|d| d.did.to_string()).unwrap_or_default();
            let list: Vec<Value> = items.iter().map(|d| record(d, user_id)).collect();
            Ok(json!({"device_info": list, "has_more": more, "max_did": max}))
        }
        "/v2/user/get_device_cnt" => Ok(json!({
            "device_cnt": devices.len(),
            "share": {"share_family": []},
        })),
        "/v2/message/v2/check_new_msg" => Ok(json!({"new_msg": false})),
        "/miotspec/prop/get" | "/miotspec/prop/set" => {
            let write = path.ends_with("/set");
            let Some(params) = data.get("params").and_then(Value::as_array) else {
                return Err(bad_request("data.params must be a list"));
            };
            let now = now_s(shared);
            Ok(Value::Array(
                params
                    .iter()
                    .map(|item| prop_item(&find, item, write, now))
                    .collect(),
            ))
        }
        "/miotspec/action" => {
            let params = match data.get("params") {
                Some(Value::Array(a)) if a.len() == 1 => &a[0],
                Some(p @ Value::Object(_)) => p,
                _ => return Err(bad_request("data.params must be one object")),
            };
            Ok(action(&find, params))
        }
        "/user/get_user_device_data" => {
            let Some(d) = data.get("did").and_then(did_of).and_then(find) else {
                return Ok(json!([]));
            };
            let key = data.get("key").and_then(Value::as_str).unwrap_or_default();
            let value = key
                .split_once('.')
                .and_then(|(s, p)| Some((s.parse().ok()?, p.parse().ok()?)))
                .and_then(|(s, p)| d.handle.value(s, p))
                .or_else(|| d.handle.legacy_value(key));
            Ok(match value {
                Some(v) => json!([{
                    "did": d.did.to_string(),
                    "key": key,
                    "type": data.get("type").cloned().unwrap_or(json!("prop")),
                    "uid": user_id,
                    "value": Value::Array(vec![v]).to_string(),
                    "time": now_s(shared),
                }]),
                None => json!([]),
            })
        }
        p => {
            if let Some(did) = p.strip_prefix("/home/rpc/") {
                let Some(d) = did.parse().ok().and_then(find) else {
                    return Err((200, CODE_NO_DEVICE, "device not found".to_owned()));
                };
                return rpc(d, data);
            }
            Err((404, -1, format!("unknown API path {p}")))
        }
    }
}

fn prop_item<'a>(
    find: &impl Fn(u64) -> Option<&'a DeviceView>,
    item: &Value,
    write: bool,
    now_s: u64,
) -> Value {
    let mut out = Map::new();
    for k in ["did", "siid", "piid"] {
        if let Some(v) = item.get(k) {
            out.insert(k.to_owned(), v.clone());
        }
    }
    let code = match item.get("did").and_then(did_of).and_then(find) {
        None => CODE_NO_DEVICE,
        Some(d) if !d.is_online() => CODE_OFFLINE,
        Some(d) => match d.handle.cloud_properties(std::slice::from_ref(item), write) {
            None => CODE_OFFLINE,
            Some(results) => {
                let r = results.into_iter().next().unwrap_or(Value::Null);
                let device_code = r.get("code").and_then(Value::as_i64).unwrap_or(-4003);
                if !write && device_code == 0 {
                    out.insert(
                        "value".to_owned(),
                        r.get("value").cloned().unwrap_or(Value::Null),
                    );
                    out.insert("updateTime".to_owned(), json!(now_s));
                }
                let code = cloud_code(device_code, false);
                if write && code == 0 && d.slow_set {
                    1
                } else {
                    code
                }
            }
        },
    };
    out.insert("code".to_owned(), json!(code));
    out.insert("exe_time".to_owned(), json!(0));
    Value::Object(out)
}

fn action<'a>(find: &impl Fn(u64) -> Option<&'a DeviceView>, params: &Value) -> Value {
    let mut out = Map::new();
    for k in ["did", "siid", "aiid"] {
        if let Some(v) = params.get(k) {
            out.insert(k.to_owned(), v.clone());
        }
    }
    let mut call = params.clone();
    if let Value::Object(m) = &mut call {
        if !m.contains_key("in") {
            if let Some(v) = m.remove("value") {
                m.insert("in".to_owned(), v);
            }
        }
    }
    let code = match params.get("did").and_then(did_of).and_then(find) {
        None => CODE_NO_DEVICE,
        Some(d) if !d.is_online() => CODE_OFFLINE,
        Some(d) => match d.handle.cloud_action(&call) {
            None => CODE_OFFLINE,
            Some(r) => {
                let device_code = r.get("code").and_then(Value::as_i64).unwrap_or(-4003);
                if let Some(o) = r.get("out") {
                    out.insert("out".to_owned(), o.clone());
                }
                cloud_code(device_code, true)
            }
        },
    };
    if code == 0 && !out.contains_key("out") {
        out.insert("out".to_owned(), json!([]));
    }
    out.insert("miid".to_owned(), json!(0));
    out.insert("code".to_owned(), json!(code));
    out.insert("exe_time".to_owned(), json!(0));
    Value::Object(out)
}

fn rpc(d: &DeviceView, data: &Value) -> ApiResult {
    if !d.is_online() {
        return Err((200, CODE_OFFLINE, "device offline".to_owned()));
    }
    let Some(method) = data.get("method").and_then(Value::as_str) else {
        return Err(bad_request("data.method must be a string"));
    };
    let params = data.get("params").cloned().unwrap_or_else(|| json!([]));
    match d.handle.cloud_rpc(method, params) {
        None => Err((200, CODE_OFFLINE, "device offline or no answer".to_owned())),
        Some(resp) => match resp.outcome {
            Ok(v) => Ok(v),
            Err(e) => Err((200, e.code, e.message)),
        },
    }
}
