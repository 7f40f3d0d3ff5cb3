//! The simulated cloud's state: accounts, login grants, sessions, pass
//! tokens, captcha and two-factor progress, QR logins, faults, the fake
//! clock, device placement and the request log.
//!
//! Everything sits behind one mutex that is never held across an `.await`
//! or while a device is called. This module makes no HTTP replies.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use mijia_proto::cloud::{Region, Ssecurity};
use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use super::config::{
    parse_region, AccountConfig, CloudFaults, DeviceCloudConfig, ExpiredForm, FakeCloudConfig,
    LoginOutcome, QrAutoConfirm,
};
use super::CloudError;
use crate::DeviceHandle;

/// Bound of the request log.
pub const LOG_LIMIT: usize = 4096;
/// Bound of the replay memory.
const NONCE_MEMORY: usize = 8192;
/// Wrong two-factor codes allowed before the context locks.
pub const TWO_FACTOR_ATTEMPTS: u32 = 5;

/// One logged request (the control API is not logged).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    /// Position in the log since start.
    pub seq: u64,
    /// Fake-clock time, ms since the epoch.
    pub at_ms: u64,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// `account` or `api`.
    pub host: String,
    /// Region of an API request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Query parameters.
    pub query: BTreeMap<String, String>,
    /// Form fields of the body (encrypted as sent for RC4 requests).
    pub form: BTreeMap<String, String>,
    /// Cookies sent.
    pub cookies: BTreeMap<String, String>,
    /// Selected headers (`miot-encrypt-algorithm`, `miot-accept-encoding`,
    /// `x-xiaomi-protocal-flag-cli`, `user-agent`).
    pub headers: BTreeMap<String, String>,
    /// The decrypted/verified `data` of an API request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// What the server made of it (`ok`, `invalid signature`, `auth err`,
    /// `rate limited`, `70016 bad password`, …).
    pub verdict: String,
    /// HTTP status sent (`None`: connection dropped).
    pub status: Option<u16>,
}

pub(crate) struct Account {
    pub cfg: AccountConfig,
    pub region: Option<Region>,
    pub c_user_id: String,
}

/// A login that reached the STS step.
#[derive(Clone)]
pub(crate) struct Grant {
    pub user_id: u64,
    pub ssecurity: Ssecurity,
    pub nonce: String,
    pub sid: String,
    /// The service token, once the STS issued it.
    pub service_token: Option<String>,
}

pub(crate) struct Session {
    pub user_id: u64,
    pub ssecurity: Ssecurity,
    pub created_ms: u64,
    pub expired: Option<ExpiredForm>,
}

pub(crate) struct PassTokenState {
    pub user_id: u64,
    pub valid: bool,
}

pub(crate) struct TwoFactorPending {
    pub user_id: u64,
    pub code: String,
    pub method_flag: u64,
    pub sent_flag: Option<u64>,
    pub attempts: u32,
    pub done: bool,
}

pub(crate) struct QrPending {
    pub id: String,
    pub created: Instant,
    pub expires: Instant,
    pub auto: Option<(u64, Instant)>,
    pub confirmed_by: Option<u64>,
    /// The success reply, once built (repeated polls get the same).
    pub reply: Option<Value>,
}

/// What a QR long poll sees now.
pub(crate) enum QrState {
    Unknown,
    Expired,
    Pending { wake_at: Instant },
    Confirmed(u64),
}

pub(crate) struct DeviceEntry {
    pub handle: DeviceHandle,
    pub name: String,
    pub did: u64,
    pub owner: Option<u64>,
    pub region: Region,
    pub cfg: DeviceCloudConfig,
}

pub(crate) struct Inner {
    pub accounts: Vec<Account>,
    pub devices: Vec<DeviceEntry>,
    pub faults: CloudFaults,
    pub clock_offset_ms: i64,
    pub grants: HashMap<String, Grant>,
    pub sessions: HashMap<String, Session>,
    pub pass_tokens: HashMap<String, PassTokenState>,
    pub signs: HashSet<String>,
    pub icks: HashSet<String>,
    pub identity: HashMap<String, TwoFactorPending>,
    pub identity_sessions: HashMap<String, String>,
    pub qrs: Vec<QrPending>,
    pub scripts: HashMap<u64, VecDeque<LoginOutcome>>,
    pub seen_nonces: HashSet<String>,
    pub nonce_order: VecDeque<String>,
    pub log: VecDeque<RequestRecord>,
    pub seq: u64,
    pub default_region: Region,
    pub qr_timeout: Duration,
    pub qr_auto_confirm: Option<QrAutoConfirm>,
    pub captcha_url_relative: bool,
    pub max_nonce_skew_minutes: Option<u32>,
    pub reject_replayed_nonces: bool,
    pub service_token_ttl_secs: Option<u64>,
    pub expired_form: ExpiredForm,
}

/// Shared between the server tasks and [`super::FakeCloud`].
pub(crate) struct Shared {
    pub base_url: String,
    inner: Mutex<Inner>,
    /// Woken when a QR login is confirmed.
    pub qr_changed: Notify,
}

/// Random text of `n` bytes, hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| format!("{:02x}", rng.gen::<u8>())).collect()
}

/// Random base64 of `n` bytes.
pub(crate) fn random_b64(n: usize) -> String {
    let mut rng = rand::thread_rng();
    let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
    STANDARD.encode(bytes)
}

fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Shared {
    pub(crate) fn new(
        base_url: String,
        cfg: &FakeCloudConfig,
        handles: Vec<DeviceHandle>,
    ) -> Result<Shared, CloudError> {
        cfg.validate()?;
        let default_region = parse_region(&cfg.default_region, "default_region")?;
        let mut inner = Inner {
            accounts: Vec::new(),
            devices: Vec::new(),
            faults: cfg.faults.clone(),
            clock_offset_ms: 0,
            grants: HashMap::new(),
            sessions: HashMap::new(),
            pass_tokens: HashMap::new(),
            signs: HashSet::new(),
            icks: HashSet::new(),
            identity: HashMap::new(),
            identity_sessions: HashMap::new(),
            qrs: Vec::new(),
            scripts: HashMap::new(),
            seen_nonces: HashSet::new(),
            nonce_order: VecDeque::new(),
            log: VecDeque::new(),
            seq: 0,
            default_region,
            qr_timeout: Duration::from_secs(cfg.qr_timeout_secs),
            qr_auto_confirm: cfg.qr_auto_confirm.clone(),
            captcha_url_relative: cfg.captcha_url_relative,
            max_nonce_skew_minutes: cfg.max_nonce_skew_minutes,
            reject_replayed_nonces: cfg.reject_replayed_nonces,
            service_token_ttl_secs: cfg.service_token_ttl_secs,
            expired_form: cfg.expired_form,
        };
        for a in &cfg.accounts {
            inner.add_account(a.clone())?;
        }
        for h in handles {
            let info = h.info();
            let dc = cfg.devices.get(&info.name).cloned().unwrap_or_default();
            inner.add_device(h, dc)?;
        }
        Ok(Shared {
            base_url,
            inner: Mutex::new(inner),
            qr_changed: Notify::new(),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays usable after a panic elsewhere; a simulator keeps going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The STS URL.
    pub(crate) fn sts_url(&self) -> String {
        format!("{}/sts", self.base_url)
    }
}

impl Inner {
    /// Fake-clock time, ms since the epoch.
    pub fn now_ms(&self) -> u64 {
        let now = i128::from(system_ms()) + i128::from(self.clock_offset_ms);
        u64::try_from(now.max(0)).unwrap_or(u64::MAX)
    }

    pub fn add_account(&mut self, cfg: AccountConfig) -> Result<u64, CloudError> {
        let what = format!("account {}", cfg.user);
        if cfg.user.trim().is_empty() || cfg.user_id == 0 {
            return Err(CloudError::Config {
                what,
                problem: "needs a non-empty `user` and a positive `user_id`".to_owned(),
            });
        }
        if self.accounts.iter().any(|a| a.cfg.user_id == cfg.user_id) {
            return Err(CloudError::Config {
                what,
                problem: format!("user_id {} is used by another account", cfg.user_id),
            });
        }
        let region = match &cfg.region {
            Some(r) => Some(parse_region(r, &format!("{what}: region"))?),
            None => None,
        };
        let id = cfg.user_id;
        self.accounts.push(Account {
            c_user_id: format!("c{}", random_hex(8)),
            cfg,
            region,
        });
        Ok(id)
    }

    pub fn add_device(
        &mut self,
        handle: DeviceHandle,
        cfg: DeviceCloudConfig,
    ) -> Result<(), CloudError> {
        let info = handle.info();
        let owner = match &cfg.owner {
            Some(o) => Some(
                self.account(o)
                    .map(|a| a.cfg.user_id)
                    .ok_or_else(|| CloudError::UnknownAccount(o.clone()))?,
            ),
            None => None,
        };
        let region = match &cfg.region {
            Some(r) => parse_region(r, &format!("device {}: region", info.name))?,
            None => owner
                .and_then(|o| self.account_by_id(o))
                .and_then(|a| a.region)
                .unwrap_or(self.default_region),
        };
        self.devices.retain(|d| d.did != info.did);
        self.devices.push(DeviceEntry {
            handle,
            name: info.name,
            did: info.did,
            owner,
            region,
            cfg,
        });
        Ok(())
    }

    /// An account by any login name or its user id.
    pub fn account(&self, login: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.cfg.matches(login))
    }

    pub fn account_by_id(&self, user_id: u64) -> Option<&Account> {
        self.accounts.iter().find(|a| a.cfg.user_id == user_id)
    }

    /// `user` resolved to user ids: one account, or every account for `None`.
    pub fn user_ids(&self, user: Option<&str>) -> Result<Vec<u64>, CloudError> {
        match user {
            None => Ok(self.accounts.iter().map(|a| a.cfg.user_id).collect()),
            Some(u) => self
                .account(u)
                .map(|a| vec![a.cfg.user_id])
                .ok_or_else(|| CloudError::UnknownAccount(u.to_owned())),
        }
    }

    /// A new login for `user_id`: grant (STS ticket), pass token, and the
    /// success fields of the account reply.
    /// `reuse_pass_token` keeps the pass token of a refresh.
    pub fn new_login(
        &mut self,
        user_id: u64,
        sid: &str,
        sts_url: &str,
        reuse_pass_token: Option<&str>,
    ) -> Value {
        let (ssecurity, c_user_id) = match self.account_by_id(user_id) {
            Some(a) => (a.cfg.ssecurity.clone(), a.c_user_id.clone()),
            None => (None, String::new()),
        };
        let ssecurity = ssecurity.unwrap_or_else(random_ssecurity);
        let pass_token = match reuse_pass_token {
            Some(p) => p.to_owned(),
            None => {
                let p = format!("V1:{}", random_b64(48));
                self.pass_tokens.insert(
                    p.clone(),
                    PassTokenState {
                        user_id,
                        valid: true,
                    },
                );
                p
            }
        };
        let nonce: u64 = rand::thread_rng().gen_range(1_000_000_000_000..10_000_000_000_000);
        let ticket = random_hex(16);
        self.grants.insert(
            ticket.clone(),
            Grant {
                user_id,
                ssecurity: ssecurity.clone(),
                nonce: nonce.to_string(),
                sid: sid.to_owned(),
                service_token: None,
            },
        );
        let location = format!(
            "{sts_url}?d=fake&ticket=0&pwd=1&p_ts={}&nonce={nonce}&_ssign={ticket}",
            self.now_ms()
        );
        serde_json::json!({
            "qs": "%3Fsid%3Dxiaomiio%26_json%3Dtrue",
            "ssecurity": ssecurity.reveal(),
            "code": 0,
            "passToken": pass_token,
            "description": "success",
            "securityStatus": 0,
            "nonce": nonce,
            "userId": user_id,
            "cUserId": c_user_id,
            "result": "ok",
            "psecurity": random_b64(16),
            "captchaUrl": null,
            "location": location,
            "pwd": 1,
            "child": 0,
            "desc": "success",
        })
    }

    /// Issue (or re-issue) the service token of a grant.
    pub fn redeem(&mut self, ticket: &str) -> Option<(Grant, String)> {
        let now = self.now_ms();
        let grant = self.grants.get_mut(ticket)?;
        let token = match &grant.service_token {
            Some(t) => t.clone(),
            None => {
                let t = random_b64(96);
                grant.service_token = Some(t.clone());
                self.sessions.insert(
                    t.clone(),
                    Session {
                        user_id: grant.user_id,
                        ssecurity: grant.ssecurity.clone(),
                        created_ms: now,
                        expired: None,
                    },
                );
                t
            }
        };
        let grant = self.grants.get(ticket)?.clone();
        Some((grant, token))
    }

    /// Remember an API nonce; false when it was seen before.
    pub fn remember_nonce(&mut self, nonce: &str) -> bool {
        if !self.seen_nonces.insert(nonce.to_owned()) {
            return false;
        }
        self.nonce_order.push_back(nonce.to_owned());
        while self.nonce_order.len() > NONCE_MEMORY {
            if let Some(old) = self.nonce_order.pop_front() {
                self.seen_nonces.remove(&old);
            }
        }
        true
    }

    pub fn record(&mut self, mut r: RequestRecord) {
        self.seq += 1;
        r.seq = self.seq;
        if self.log.len() >= LOG_LIMIT {
            self.log.pop_front();
        }
        self.log.push_back(r);
    }

    /// The QR login `id` as a long poll sees it at `now`.
    pub fn qr_state(&mut self, id: &str, now: Instant) -> QrState {
        let Some(q) = self.qrs.iter_mut().find(|q| q.id == id) else {
            return QrState::Unknown;
        };
        if q.confirmed_by.is_none() {
            if let Some((user, at)) = q.auto {
                if at <= now {
                    q.confirmed_by = Some(user);
                }
            }
        }
        if let Some(u) = q.confirmed_by {
            return QrState::Confirmed(u);
        }
        if now >= q.expires {
            return QrState::Expired;
        }
        let wake_at = match q.auto {
            Some((_, at)) => at.min(q.expires),
            None => q.expires,
        };
        QrState::Pending { wake_at }
    }

    /// Confirm the QR login `id` (or the newest pending one) for `user`
    /// (or the only account).
    pub fn confirm_qr(
        &mut self,
        user: Option<&str>,
        id: Option<&str>,
    ) -> Result<String, CloudError> {
        let user_id = match user {
            Some(u) => self
                .account(u)
                .map(|a| a.cfg.user_id)
                .ok_or_else(|| CloudError::UnknownAccount(u.to_owned()))?,
            None => match self.accounts.as_slice() {
                [one] => one.cfg.user_id,
                _ => {
                    return Err(CloudError::Config {
                        what: "QR confirmation".to_owned(),
                        problem: "name the account (`user`): there is not exactly one".to_owned(),
                    })
                }
            },
        };
        let now = Instant::now();
        let q = self
            .qrs
            .iter_mut()
            .rev()
            .find(|q| q.confirmed_by.is_none() && q.expires > now && id.is_none_or(|i| i == q.id))
            .ok_or(CloudError::NoPendingQr)?;
        q.confirmed_by = Some(user_id);
        Ok(q.id.clone())
    }

    /// Mark sessions of `users` expired with `form`; returns how many.
    pub fn expire_sessions(&mut self, users: &[u64], form: ExpiredForm) -> usize {
        let mut n = 0;
        for s in self.sessions.values_mut() {
            if users.contains(&s.user_id) && s.expired.is_none() {
                s.expired = Some(form);
                n += 1;
            }
        }
        n
    }

    /// Invalidate pass tokens of `users`; returns how many.
    pub fn expire_pass_tokens(&mut self, users: &[u64]) -> usize {
        let mut n = 0;
        for p in self.pass_tokens.values_mut() {
            if users.contains(&p.user_id) && p.valid {
                p.valid = false;
                n += 1;
            }
        }
        n
    }

    /// A device by did or name.
    pub fn device_mut(&mut self, key: &str) -> Option<&mut DeviceEntry> {
        self.devices
            .iter_mut()
            .find(|d| d.name == key || d.did.to_string() == key)
    }
}

/// A random 16-byte `ssecurity`.
pub(crate) fn random_ssecurity() -> Ssecurity {
    loop {
        // Base64 of 16 bytes always parses; the loop only avoids a panic path.
        if let Ok(s) = Ssecurity::from_base64(&random_b64(16)) {
            return s;
        }
    }
}
