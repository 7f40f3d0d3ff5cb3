//! [`CloudClient`]: signed, RC4-encrypted calls to the legacy app API
//! (`{region}/app/...`), and the typed endpoints mijia uses — device list,
//! homes, MIoT properties and actions, raw miIO pass-through.
//!
//! Results reuse the transport's types ([`PropResult`], [`ActionResult`])
//! so a caller can treat the local and the cloud route alike. The cloud's
//! `-704xxxxxx` codes are translated to the device-level MIoT codes the
//! local route reports (`-704030023` → `-4002` "property not writable",
//! …); whole-device conditions become typed errors
//! ([`CloudError::DeviceOffline`], [`CloudError::DeviceTimeout`],
//! [`CloudError::UnknownDevice`]).
//!
//! Session handling: when the cloud says the session is no longer valid
//! (any of the four expired-token forms, or `invalid signature`), the
//! client refreshes the service token from the passToken once, saves the
//! new session and retries the call once. If the refresh is refused the
//! error is [`CloudError::ReloginNeeded`]; if the retried call is still
//! refused it is [`CloudError::ReloginNeeded`] or, for a signature,
//! [`CloudError::BadSignature`] — never a loop.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use mijia_proto::cloud::envelope::{decode_response, open_envelope, session_invalid_for_http};
use mijia_proto::cloud::signing::GZIP_REQUEST_HEADER;
use mijia_proto::cloud::{
    CloudProtoError, Method, Nonce, Region, RequestSigner, SessionInvalidReason, SignedNonce,
};
use mijia_proto::miio::Token;
use rand::RngCore as _;
use serde::Serialize;
use serde_json::{json, Value};
use url::Url;

use super::auth::{unix_ms, Authenticator};
use super::config::CloudEndpoints;
use super::error::display_url;
use super::http::{Http, HttpConfig, Request};
use super::session::{Session, SessionStore};
use super::CloudError;
use crate::home::Paths;
use crate::transport::{ActionResult, PropId, PropResult};

/// A device as the cloud lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloudDevice {
    /// Device id (numeric for Wi-Fi devices, `blt.…`, `lumi.…` otherwise).
    pub did: String,
    /// The name set in the Mi Home app.
    pub name: String,
    /// The model.
    pub model: String,
    /// LAN address, if reported.
    pub localip: Option<IpAddr>,
    /// The miIO token (32 hex) if the device has one. Redacted in `Debug`
    /// and never serialized.
    #[serde(skip)]
    pub token: Option<Token>,
    /// Whether the cloud sees it online.
    pub online: Option<bool>,
    /// Connection type (0 Wi-Fi, 3 Zigbee, 6 BLE, 8 Wi-Fi+BLE, …).
    pub pid: Option<i64>,
    /// The parent (gateway) of a sub-device.
    pub parent_id: Option<String>,
    /// MAC address.
    pub mac: Option<String>,
    /// The region it was listed in.
    pub region: String,
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn int(v: &Value, key: &str) -> Option<i64> {
    match v.get(key) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

impl CloudDevice {
    /// Reads one record of a device list; `None` without a did.
    pub fn from_value(v: &Value, region: Region) -> Option<CloudDevice> {
        let did = text(v, "did")?;
        Some(CloudDevice {
            name: text(v, "name").unwrap_or_else(|| did.clone()),
            model: text(v, "model").unwrap_or_default(),
            localip: text(v, "localip").and_then(|s| s.parse().ok()),
            token: text(v, "token").and_then(|t| t.parse().ok()),
            online: match v.get("isOnline") {
                Some(Value::Bool(b)) => Some(*b),
                Some(Value::Number(n)) => n.as_i64().map(|n| n != 0),
                _ => None,
            },
            pid: int(v, "pid"),
            parent_id: text(v, "parent_id"),
            mac: text(v, "mac"),
            region: region.code().to_owned(),
            did,
        })
    }

    /// The did as a number (Wi-Fi devices), as the registry stores it.
    pub fn did_number(&self) -> Option<u64> {
        self.did.parse().ok()
    }

    /// Whether the local (miIO over UDP) route can reach it: a numeric did,
    /// a token, an address, and a Wi-Fi connection type.
    pub fn lan_capable(&self) -> bool {
        self.did_number().is_some()
            && self.token.is_some()
            && self.localip.is_some()
            && matches!(self.pid, None | Some(0) | Some(8))
    }
}

/// A room of a home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloudRoom {
    /// Room id.
    pub id: String,
    /// Room name.
    pub name: String,
    /// Devices in it.
    pub dids: Vec<String>,
}

/// A home with its rooms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloudHome {
    /// Home id.
    pub id: String,
    /// Home name.
    pub name: String,
    /// Rooms.
    pub rooms: Vec<CloudRoom>,
    /// Devices outside any room.
    pub dids: Vec<String>,
}

fn dids(v: &Value) -> Vec<String> {
    v.get("dids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| match d {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

impl CloudHome {
    fn from_value(v: &Value) -> Option<CloudHome> {
        Some(CloudHome {
            id: text(v, "id")?,
            name: text(v, "name").unwrap_or_default(),
            rooms: v
                .get("roomlist")
                .and_then(Value::as_array)
                .map(|rs| {
                    rs.iter()
                        .filter_map(|r| {
                            Some(CloudRoom {
                                id: text(r, "id")?,
                                name: text(r, "name")?,
                                dids: dids(r),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            dids: dids(v),
        })
    }

    /// did → room name, over several homes (first home wins).
    pub fn room_map(homes: &[CloudHome]) -> HashMap<String, String> {
        let mut map = HashMap::new();
        for h in homes {
            for r in &h.rooms {
                for d in &r.dids {
                    map.entry(d.clone()).or_insert_with(|| r.name.clone());
                }
            }
        }
        map
    }
}

/// What a cloud MIoT code means, as the device-level code the local route
/// would report, or a whole-device condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudCode {
    /// A per-item code (0, 1, -4001…).
    Item(i64),
    /// The device is offline.
    Offline,
    /// The device did not answer the cloud in time.
    Timeout,
    /// The account has no such device.
    UnknownDevice,
}

/// Translates a cloud result code (`-704xxxxxx`) to the MIoT device code;
/// other codes pass through unchanged.
pub fn translate_code(code: i64) -> CloudCode {
    match code {
        -704042011 => CloudCode::Offline,
        -704053036 | -704083036 => CloudCode::Timeout,
        -704042001 | -704090001 | -704010000 => CloudCode::UnknownDevice,
        -704030013 => CloudCode::Item(-4001),
        -704030023 => CloudCode::Item(-4002),
        -704040005..=-704040002 => CloudCode::Item(-4003),
        -704220043 => CloudCode::Item(-4005),
        -704220025 | -704220035 => CloudCode::Item(-4006),
        other => CloudCode::Item(other),
    }
}

/// What a cloud code means, in words.
pub fn cloud_code_meaning(code: i64) -> &'static str {
    match code {
        -704010000 => "unauthorised (device removed from the account?)",
        -704042001 | -704090001 => "device does not exist",
        -704042011 => "device offline",
        -704040002 => "service does not exist",
        -704040003 => "property does not exist",
        -704040004 => "event does not exist",
        -704040005 => "action does not exist",
        -704030013 => "property not readable",
        -704030023 => "property not writable",
        -704030033 => "property not subscribable",
        -704220043 => "property value error",
        -704220025 => "action argument count mismatch",
        -704220035 => "action argument error",
        -704053036 | -704083036 => "device operation timeout",
        -704053100 => "not possible in the device's current state",
        c => mijia_proto::miio::PropCode(c).meaning(),
    }
}

/// A logged-in client of the cloud API.
#[derive(Debug, Clone)]
pub struct CloudClient {
    inner: Arc<Inner>,
    region: Region,
}

#[derive(Debug)]
struct Inner {
    http: Http,
    endpoints: CloudEndpoints,
    store: Option<SessionStore>,
    session: Mutex<Session>,
}

impl CloudClient {
    /// A client for `session`. With a `store`, refreshed sessions are saved.
    pub fn new(
        http: Http,
        endpoints: CloudEndpoints,
        session: Session,
        store: Option<SessionStore>,
        region: Region,
    ) -> Self {
        CloudClient {
            inner: Arc::new(Inner {
                http,
                endpoints,
                store,
                session: Mutex::new(session),
            }),
            region,
        }
    }

    /// The client of the home at `paths`, if a session is stored. The region
    /// is the session's, else the configured one, else `cn`.
    pub fn from_home(paths: &Paths) -> Result<Option<CloudClient>, CloudError> {
        let store = SessionStore::new(paths);
        let Some(session) = store.load()? else {
            return Ok(None);
        };
        let endpoints = CloudEndpoints::load(paths)?;
        let region = session.region().or(endpoints.region).unwrap_or(Region::Cn);
        let http = Http::new(HttpConfig::default())?;
        Ok(Some(CloudClient::new(
            http,
            endpoints,
            session,
            Some(store),
            region,
        )))
    }

    /// The same client for another region.
    pub fn with_region(&self, region: Region) -> CloudClient {
        CloudClient {
            inner: Arc::clone(&self.inner),
            region,
        }
    }

    /// The region calls go to.
    pub fn region(&self) -> Region {
        self.region
    }

    /// A copy of the current session (secrets stay redacted in `Debug`).
    pub fn session(&self) -> Session {
        match self.inner.session.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_session(&self, session: Session) {
        match self.inner.session.lock() {
            Ok(mut s) => *s = session,
            Err(poisoned) => *poisoned.into_inner() = session,
        }
    }

    /// Calls `endpoint` (relative to the region's API base) with `data`,
    /// refreshing the session once if the cloud says it expired. Returns
    /// the envelope's `result`.
    pub async fn call(&self, endpoint: &str, data: &Value) -> Result<Value, CloudError> {
        let mut refreshed = false;
        let mut limited = 0u32;
        loop {
            match self.call_once(endpoint, data).await {
                Err(e) if is_rate_limited(&e) => {
                    let config = self.inner.http.config();
                    limited += 1;
                    if limited >= config.attempts.max(1) {
                        return Err(CloudError::RateLimited {
                            url: endpoint.to_owned(),
                            attempts: limited,
                        });
                    }
                    let pause = config.backoff(limited - 1);
                    tracing::debug!(
                        endpoint,
                        attempt = limited,
                        ?pause,
                        "rate limited; backing off"
                    );
                    tokio::time::sleep(pause).await;
                }
                Err(e) => {
                    let Some(reason) = e.session_invalid() else {
                        return Err(e);
                    };
                    if refreshed {
                        return Err(match reason {
                            SessionInvalidReason::InvalidSignature => CloudError::BadSignature {
                                endpoint: endpoint.to_owned(),
                            },
                            other => CloudError::relogin(format!(
                                "the cloud still refuses the session after a refresh ({other})"
                            )),
                        });
                    }
                    tracing::debug!(%reason, endpoint, "session refused; refreshing from the passToken");
                    self.refresh().await?;
                    refreshed = true;
                }
                ok => return ok,
            }
        }
    }

    /// Gets a new service token from the passToken and saves the session.
    pub async fn refresh(&self) -> Result<(), CloudError> {
        let session = self.session();
        let mut auth = Authenticator::new(
            self.inner.http.clone(),
            self.inner.endpoints.clone(),
            session.device_id.clone(),
            std::env::temp_dir().join("mijia-captcha"),
        );
        let creds = auth.refresh(&session).await?;
        let fresh = creds.refresh_session(&session, crate::home::unix_now());
        if let Some(store) = &self.inner.store {
            store.save(&fresh)?;
        }
        self.set_session(fresh);
        Ok(())
    }

    async fn call_once(&self, endpoint: &str, data: &Value) -> Result<Value, CloudError> {
        let session = self.session();
        let base = self
            .inner
            .endpoints
            .api_template
            .for_region(self.region)
            .map_err(CloudProtoError::from)?;
        let url_text = base.endpoint_url(endpoint);
        let url = Url::parse(&url_text).map_err(|e| CloudError::Endpoint {
            what: "API URL".into(),
            value: url_text.clone(),
            reason: e.to_string(),
        })?;
        let signed_path = base.signed_path(&url_text).map_err(CloudProtoError::from)?;
        let data_text = data.to_string();
        let cookie = api_cookies(&session);
        let used: Mutex<Option<SignedNonce>> = Mutex::new(None);
        let build = || {
            let mut random = [0u8; 8];
            rand::thread_rng().fill_bytes(&mut random);
            let signer = RequestSigner::new(&session.ssecurity, Nonce::generate(random, unix_ms()));
            let form = signer.sign_rc4(
                &session.ssecurity,
                Method::Post,
                &signed_path,
                &[("data", data_text.as_str())],
            );
            if let Ok(mut slot) = used.lock() {
                *slot = Some(signer.signed_nonce().clone());
            }
            Request {
                headers: vec![
                    ("MIOT-ENCRYPT-ALGORITHM", "ENCRYPT-RC4".into()),
                    ("Accept-Encoding", "identity".into()),
                    ("x-xiaomi-protocal-flag-cli", "PROTOCAL-HTTP2".into()),
                    (GZIP_REQUEST_HEADER.0, GZIP_REQUEST_HEADER.1.into()),
                ],
                cookie: Some(cookie.clone()),
                ..Request::post(url.clone(), form.body())
            }
        };
        let resp = self.inner.http.send(build).await?;
        tracing::debug!(endpoint, region = %self.region, status = resp.status, "cloud API reply");
        if let Some(reason) = session_invalid_for_http(resp.status, &resp.body) {
            return Err(CloudProtoError::SessionInvalid {
                reason,
                code: i64::from(resp.status),
                message: format!("HTTP {}", resp.status),
            }
            .into());
        }
        if resp.status != 200 {
            return Err(CloudError::Http {
                status: resp.status,
                url: display_url(&url),
                hint: "check the API URL and region (`mijia cloud status`)",
            });
        }
        let signed_nonce =
            used.lock()
                .ok()
                .and_then(|s| s.clone())
                .ok_or_else(|| CloudError::Network {
                    url: display_url(&url),
                    detail: "no request was signed".into(),
                })?;
        let envelope = decode_response(&signed_nonce, &resp.body)?;
        Ok(open_envelope(envelope)?)
    }

    fn api_error(&self, did: &str, what: &str, e: CloudError) -> CloudError {
        match e {
            CloudError::Proto(CloudProtoError::Api { code, message }) => {
                self.code_error(did, what, code, message)
            }
            other => other,
        }
    }

    fn code_error(&self, did: &str, what: &str, code: i64, message: String) -> CloudError {
        match translate_code(code) {
            CloudCode::Offline => CloudError::DeviceOffline {
                did: did.to_owned(),
                code,
            },
            CloudCode::Timeout => CloudError::DeviceTimeout {
                did: did.to_owned(),
                code,
            },
            CloudCode::UnknownDevice => CloudError::UnknownDevice {
                did: did.to_owned(),
                region: self.region.code().to_owned(),
                code,
            },
            CloudCode::Item(_) => CloudError::Api {
                did: did.to_owned(),
                what: what.to_owned(),
                code,
                meaning: cloud_code_meaning(code),
                message,
            },
        }
    }

    /// Every device of the account in this client's region.
    pub async fn device_list(&self) -> Result<Vec<CloudDevice>, CloudError> {
        let result = self
            .call(
                "/home/device_list",
                &json!({"getVirtualModel": false, "getHuamiDevices": 0}),
            )
            .await?;
        let list = result
            .get("list")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(list
            .iter()
            .filter_map(|v| CloudDevice::from_value(v, self.region))
            .collect())
    }

    /// The account's homes (own and shared) with their rooms, in this
    /// client's region.
    pub async fn homes(&self) -> Result<Vec<CloudHome>, CloudError> {
        let result = self
            .call(
                "/v2/homeroom/gethome",
                &json!({"fg": true, "fetch_share": true, "fetch_share_dev": true, "limit": 300, "app_ver": 7}),
            )
            .await?;
        let mut homes = Vec::new();
        for key in ["homelist", "share_home_list"] {
            if let Some(list) = result.get(key).and_then(Value::as_array) {
                homes.extend(list.iter().filter_map(CloudHome::from_value));
            }
        }
        Ok(homes)
    }

    /// Reads properties through the cloud. One result per property, in
    /// order; codes are the device-level MIoT codes.
    pub async fn get_properties(
        &self,
        did: &str,
        props: &[PropId],
    ) -> Result<Vec<PropResult>, CloudError> {
        let params: Vec<Value> = props
            .iter()
            .map(|p| json!({"did": did, "siid": p.siid, "piid": p.piid}))
            .collect();
        let result = self
            .call("/miotspec/prop/get", &json!({ "params": params }))
            .await
            .map_err(|e| self.api_error(did, "get_properties", e))?;
        let items: Vec<(PropId, Option<Value>)> = props.iter().map(|p| (*p, None)).collect();
        self.prop_results(did, "get_properties", &items, &result)
    }

    /// Writes properties through the cloud; one result per item, in order.
    pub async fn set_properties(
        &self,
        did: &str,
        props: &[(PropId, Value)],
    ) -> Result<Vec<PropResult>, CloudError> {
        let params: Vec<Value> = props
            .iter()
            .map(|(p, v)| json!({"did": did, "siid": p.siid, "piid": p.piid, "value": v}))
            .collect();
        let result = self
            .call("/miotspec/prop/set", &json!({ "params": params }))
            .await
            .map_err(|e| self.api_error(did, "set_properties", e))?;
        let items: Vec<(PropId, Option<Value>)> =
            props.iter().map(|(p, v)| (*p, Some(v.clone()))).collect();
        self.prop_results(did, "set_properties", &items, &result)
    }

    fn prop_results(
        &self,
        did: &str,
        what: &str,
        items: &[(PropId, Option<Value>)],
        result: &Value,
    ) -> Result<Vec<PropResult>, CloudError> {
        let list = result.as_array().ok_or_else(|| {
            CloudError::Proto(CloudProtoError::Shape {
                detail: format!("the {what} result is not a list"),
            })
        })?;
        let mut out = Vec::with_capacity(items.len());
        for (id, written) in items {
            let found = list.iter().find(|r| {
                int(r, "siid") == Some(i64::from(id.siid))
                    && int(r, "piid") == Some(i64::from(id.piid))
            });
            let Some(r) = found else {
                out.push(PropResult {
                    siid: id.siid,
                    piid: id.piid,
                    code: PropResult::MISSING,
                    value: None,
                });
                continue;
            };
            let raw = int(r, "code").unwrap_or(0);
            let code = match translate_code(raw) {
                CloudCode::Item(c) => c,
                _ => return Err(self.code_error(did, what, raw, String::new())),
            };
            let value = if code == 0 && written.is_none() {
                r.get("value").cloned()
            } else {
                None
            };
            out.push(PropResult {
                siid: id.siid,
                piid: id.piid,
                code,
                value,
            });
        }
        Ok(out)
    }

    /// Runs a MIoT action through the cloud.
    pub async fn action(
        &self,
        did: &str,
        siid: u32,
        aiid: u32,
        ins: Vec<Value>,
    ) -> Result<ActionResult, CloudError> {
        let result = self
            .call(
                "/miotspec/action",
                &json!({"params": {"did": did, "siid": siid, "aiid": aiid, "in": ins}}),
            )
            .await
            .map_err(|e| self.api_error(did, "action", e))?;
        let raw = int(&result, "code").unwrap_or(0);
        let code = match translate_code(raw) {
            CloudCode::Item(c) => c,
            _ => return Err(self.code_error(did, "action", raw, String::new())),
        };
        let out = match result.get("out") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        Ok(ActionResult { code, out })
    }

    /// Sends a raw miIO method through the cloud (`/home/rpc/<did>`) and
    /// returns the device's `result`.
    pub async fn rpc(&self, did: &str, method: &str, params: Value) -> Result<Value, CloudError> {
        let endpoint = format!("/home/rpc/{}", url_segment(did));
        self.call(&endpoint, &json!({"method": method, "params": params}))
            .await
            .map_err(|e| self.api_error(did, method, e))
    }
}

/// The envelope code the API uses for "request too frequent".
pub const CODE_TOO_FREQUENT: i64 = -106;

fn is_rate_limited(e: &CloudError) -> bool {
    match e {
        CloudError::Proto(CloudProtoError::Api { code, message }) => {
            *code == CODE_TOO_FREQUENT || message.to_ascii_lowercase().contains("too frequent")
        }
        _ => false,
    }
}

fn url_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn api_cookies(session: &Session) -> String {
    let token = session.service_token.reveal();
    format!(
        "userId={}; yetAnotherServiceToken={token}; serviceToken={token}; locale=en_GB; \
         timezone=GMT%2B00%3A00; is_daylight=0; dst_offset=0; channel=MI_APP_STORE",
        session.user_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_codes_map_to_device_codes() {
        assert_eq!(translate_code(-704030023), CloudCode::Item(-4002));
        assert_eq!(translate_code(-704030013), CloudCode::Item(-4001));
        assert_eq!(translate_code(-704040003), CloudCode::Item(-4003));
        assert_eq!(translate_code(-704220043), CloudCode::Item(-4005));
        assert_eq!(translate_code(-704042011), CloudCode::Offline);
        assert_eq!(translate_code(-704083036), CloudCode::Timeout);
        assert_eq!(translate_code(0), CloudCode::Item(0));
        assert_eq!(translate_code(1), CloudCode::Item(1));
        assert_eq!(translate_code(-4004), CloudCode::Item(-4004));
        assert_eq!(cloud_code_meaning(-704030023), "property not writable");
    }

    #[test]
    fn device_records_parse_leniently() {
        let v = json!({"did":"123","name":"Lamp","model":"a.b.c","localip":"127.0.0.5",
            "token":"00112233445566778899aabbccddeeff","isOnline":true,"pid":"0"});
        let d = CloudDevice::from_value(&v, Region::De).unwrap_or_else(|| panic!("parses"));
        assert!(d.lan_capable());
        assert_eq!(d.did_number(), Some(123));
        assert!(!format!("{d:?}").contains("00112233445566778899aabbccddeeff"));
        let ble = json!({"did":"blt.3.abc","name":"Sensor","token":"","pid":6});
        let d = CloudDevice::from_value(&ble, Region::Cn).unwrap_or_else(|| panic!("parses"));
        assert!(!d.lan_capable());
        assert!(CloudDevice::from_value(&json!({"name":"x"}), Region::Cn).is_none());
        let homes = vec![CloudHome::from_value(&json!({"id":1,"name":"H","roomlist":[
            {"id":"r1","name":"Office","dids":["123"]}]}))
        .unwrap_or_else(|| panic!("home"))];
        assert_eq!(
            CloudHome::room_map(&homes).get("123").map(String::as_str),
            Some("Office")
        );
    }
}
