//! Configuration of the simulated cloud: server options, accounts, each
//! device's place in the cloud, and injected faults.
//!
//! In a fleet file the cloud adds three optional parts next to the
//! `[[device]]` tables (the device side ignores them):
//!
//! ```toml
//! [cloud]                          # server options, all optional
//! addr = "127.0.0.1:8480"          # 127.0.0.0/8 only (the CLI's --addr wins)
//! default_region = "cn"            # region of devices whose owner has none
//! qr_timeout_secs = 300            # QR login lifetime
//! qr_auto_confirm = { user = "alice@example.com", after_ms = 2000 }
//! captcha_url_relative = false     # captchaUrl relative to the account base
//! max_nonce_skew_minutes = 5       # reject API nonces further off (default: off)
//! reject_replayed_nonces = true    # default: off
//! service_token_ttl_secs = 3600    # default: tokens never expire by time
//! expired_form = "auth_err"        # how an expired token is answered
//! [cloud.faults]                   # see CloudFaults
//! delay_ms = 100
//!
//! [[account]]
//! user = "alice@example.com"       # login name: e-mail, phone or numeric id
//! password = "correct horse"
//! user_id = 1812345678
//! phone = "+15550100"              # optional extra login names
//! region = "de"                    # default region of this account's devices
//! ssecurity = "rmiKudqfR0nPsTBl/lkHjg=="  # fixed instead of random (tests)
//! captcha = "ABCD"                 # password login needs this captcha first
//! two_factor = { method = "email", code = "123456" }
//! risk_control = false             # true: 70016 even for the right password
//!
//! [[device]]
//! name = "kitchen-light"
//! # ... the usual device fields ...
//! [device.cloud]                   # all optional
//! owner = "alice@example.com"      # default: every account sees the device
//! region = "de"                    # default: the owner's region, else default_region
//! home = "Flat"                    # default: "Home"
//! room = "Kitchen"                 # default: none (outside every room)
//! name = "Kitchen light"           # name in the cloud; default: the device name
//! online = true                    # false: the cloud reports it offline
//! slow_set = false                 # true: prop/set answers code 1 (queued)
//! ```
//!
//! This module only parses and checks; it does not bind or serve anything.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::str::FromStr;

use mijia_proto::cloud::{Password, Region, Ssecurity};
use serde::{Deserialize, Serialize};

use super::CloudError;

/// The simulated cloud's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FakeCloudConfig {
    /// Where to listen; must be in 127.0.0.0/8 (port 0 = ephemeral).
    pub addr: SocketAddr,
    /// Region of devices when neither the device nor its owner names one.
    pub default_region: String,
    /// Seconds until a QR login expires (its long poll then fails).
    pub qr_timeout_secs: u64,
    /// Confirm every QR login by itself after a delay.
    pub qr_auto_confirm: Option<QrAutoConfirm>,
    /// Send `captchaUrl` relative to the account base (as the real service
    /// does) instead of absolute.
    pub captcha_url_relative: bool,
    /// Refuse API nonces whose minute counter is further than this from the
    /// fake clock (`None` = no check).
    pub max_nonce_skew_minutes: Option<u32>,
    /// Refuse an API nonce seen before.
    pub reject_replayed_nonces: bool,
    /// Service tokens expire this many seconds (fake clock) after the login
    /// (`None` = never by time).
    pub service_token_ttl_secs: Option<u64>,
    /// How an expired service token is answered (time-based expiry; the
    /// control API names its own form).
    pub expired_form: ExpiredForm,
    /// Faults active from the start.
    pub faults: CloudFaults,
    /// Accounts.
    #[serde(rename = "account")]
    pub accounts: Vec<AccountConfig>,
    /// Cloud placement of devices, by device name (devices without an
    /// entry get the defaults).
    pub devices: BTreeMap<String, DeviceCloudConfig>,
}

impl Default for FakeCloudConfig {
    fn default() -> Self {
        FakeCloudConfig {
            addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
            default_region: "cn".to_owned(),
            qr_timeout_secs: 300,
            qr_auto_confirm: None,
            captcha_url_relative: false,
            max_nonce_skew_minutes: None,
            reject_replayed_nonces: false,
            service_token_ttl_secs: None,
            expired_form: ExpiredForm::ServiceTokenExpired,
            faults: CloudFaults::default(),
            accounts: Vec::new(),
            devices: BTreeMap::new(),
        }
    }
}

/// Confirm QR logins without the control API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrAutoConfirm {
    /// The account that "scans" the code (any of its login names).
    pub user: String,
    /// Delay after the QR login starts.
    #[serde(default)]
    pub after_ms: u64,
}

/// One account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Login name (e-mail, phone number or numeric id).
    pub user: String,
    /// The password (its uppercase MD5 is what login sends).
    pub password: Password,
    /// Numeric user id (`userId`).
    pub user_id: u64,
    /// Another login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Another login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Default region of this account's devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A fixed `ssecurity` for every login (tests); random otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssecurity: Option<Ssecurity>,
    /// Password login needs this captcha answer first (87001 until given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captcha: Option<String>,
    /// Password login needs a verification code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_factor: Option<TwoFactorConfig>,
    /// Refuse even the right password with 70016.
    #[serde(default)]
    pub risk_control: bool,
}

impl AccountConfig {
    /// An account with just a login name, password and user id.
    pub fn new(user: impl Into<String>, password: impl Into<String>, user_id: u64) -> Self {
        AccountConfig {
            user: user.into(),
            password: Password::new(password.into()),
            user_id,
            email: None,
            phone: None,
            region: None,
            ssecurity: None,
            captcha: None,
            two_factor: None,
            risk_control: false,
        }
    }

    /// True when `login` is one of this account's login names.
    pub fn matches(&self, login: &str) -> bool {
        let login = login.trim();
        !login.is_empty()
            && (self.user == login
                || self.email.as_deref() == Some(login)
                || self.phone.as_deref() == Some(login)
                || self.user_id.to_string() == login)
    }
}

/// Where verification codes are "sent".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TwoFactorMethod {
    /// E-mail (flag 8).
    Email,
    /// SMS (flag 4).
    Phone,
}

impl TwoFactorMethod {
    /// The identity flag.
    pub fn flag(self) -> u64 {
        match self {
            TwoFactorMethod::Email => 8,
            TwoFactorMethod::Phone => 4,
        }
    }
}

/// Two-factor settings of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwoFactorConfig {
    /// The preferred method (`flag` of `/identity/list`).
    pub method: TwoFactorMethod,
    /// The code that verifies.
    pub code: String,
}

/// A device's place in the cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceCloudConfig {
    /// The owning account (any login name or the user id); `None`: every
    /// account sees the device.
    pub owner: Option<String>,
    /// The region; default: the owner's, else `default_region`.
    pub region: Option<String>,
    /// The home's name.
    pub home: String,
    /// The room's name; `None`: in the home but in no room.
    pub room: Option<String>,
    /// The name in the cloud; default: the device name.
    pub name: Option<String>,
    /// Reported online (an offline device also fails every call with
    /// -704042011). The device's own `offline` fault counts too.
    pub online: bool,
    /// `prop/set` answers code 1 (accepted, not yet applied).
    pub slow_set: bool,
}

impl Default for DeviceCloudConfig {
    fn default() -> Self {
        DeviceCloudConfig {
            owner: None,
            region: None,
            home: "Home".to_owned(),
            room: None,
            name: None,
            online: true,
            slow_set: false,
        }
    }
}

/// How an expired service token is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ExpiredForm {
    /// HTTP 200 `{"code":0,"message":"SERVICETOKEN_EXPIRED"}`.
    #[default]
    #[serde(rename = "servicetoken_expired")]
    ServiceTokenExpired,
    /// HTTP 200 `{"code":3,"message":"auth err"}`.
    #[serde(rename = "auth_err")]
    AuthErr,
    /// HTTP 401 with an HTML page.
    #[serde(rename = "http_401")]
    Http401,
    /// HTTP 426 with `SERVICETOKEN_EXPIRED`.
    #[serde(rename = "http_426")]
    Http426,
}

/// Which requests a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FaultScope {
    /// The API host (`/{region}/app/…`).
    #[default]
    Api,
    /// The account host (login, STS).
    Account,
    /// Both.
    All,
}

/// How a rate-limited request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitForm {
    /// HTTP 429.
    #[default]
    Http429,
    /// HTTP 200 `{"code":-106,"message":"request too frequent"}`.
    Code,
}

/// Faults injected into replies. Counters count down as requests in scope
/// use them; the control API never counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudFaults {
    /// Which requests the faults below hit.
    pub scope: FaultScope,
    /// Close the connection without a reply for the next N requests.
    pub drop_connections: u32,
    /// Answer HTTP `server_error_status` to the next N requests.
    pub server_errors: u32,
    /// Status of injected server errors.
    pub server_error_status: u16,
    /// Refuse the next N requests as rate-limited.
    pub rate_limit: u32,
    /// How rate-limited requests are refused.
    pub rate_limit_form: RateLimitForm,
    /// Answer `invalid signature` to the next N API requests (API only).
    pub bad_signature: u32,
    /// Delay every reply in scope by this much.
    pub delay_ms: u64,
}

impl Default for CloudFaults {
    fn default() -> Self {
        CloudFaults {
            scope: FaultScope::Api,
            drop_connections: 0,
            server_errors: 0,
            server_error_status: 503,
            rate_limit: 0,
            rate_limit_form: RateLimitForm::Http429,
            bad_signature: 0,
            delay_ms: 0,
        }
    }
}

/// A scripted reply to the next password (or QR) login of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginOutcome {
    /// Log in (whatever the password).
    Success,
    /// 70016 as for a wrong password.
    BadPassword,
    /// 70016 for the right password.
    RiskControl,
    /// 87001: a captcha (its answer is the account's, else any).
    Captcha,
    /// Two-factor verification (the account's code, else `123456`).
    TwoFactor,
    /// Any other reply code.
    Error {
        /// The code.
        code: i64,
        /// The description.
        desc: String,
    },
}

pub(crate) fn parse_region(text: &str, what: &str) -> Result<Region, CloudError> {
    Region::from_str(text.trim()).map_err(|e| CloudError::Config {
        what: what.to_owned(),
        problem: format!("{e}; use one of cn, de, us, ru, tw, sg, in, i2"),
    })
}

fn table_to<T: serde::de::DeserializeOwned>(
    value: &toml::Value,
    what: &str,
) -> Result<T, CloudError> {
    value
        .clone()
        .try_into::<T>()
        .map_err(|e| CloudError::Config {
            what: what.to_owned(),
            problem: e.to_string().trim().replace('\n', " "),
        })
}

/// The server options of a `[cloud]` table (everything but accounts and
/// devices).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct CloudSection {
    addr: Option<SocketAddr>,
    default_region: Option<String>,
    qr_timeout_secs: Option<u64>,
    qr_auto_confirm: Option<QrAutoConfirm>,
    captcha_url_relative: bool,
    max_nonce_skew_minutes: Option<u32>,
    reject_replayed_nonces: bool,
    service_token_ttl_secs: Option<u64>,
    expired_form: ExpiredForm,
    faults: CloudFaults,
}

impl FakeCloudConfig {
    /// The cloud parts of a fleet file: `[cloud]`, `[[account]]` and every
    /// `[device.cloud]`. A file without them gives the defaults (no
    /// accounts). The device side is parsed separately
    /// ([`crate::FleetConfig::from_toml`]).
    pub fn from_fleet_toml(text: &str) -> Result<FakeCloudConfig, CloudError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| CloudError::Syntax(e.to_string().replace('\n', " ")))?;
        let mut cfg = FakeCloudConfig::default();
        if let Some(v) = table.get("cloud") {
            let s: CloudSection = table_to(v, "[cloud]")?;
            if let Some(a) = s.addr {
                cfg.addr = a;
            }
            if let Some(r) = s.default_region {
                cfg.default_region = r;
            }
            if let Some(t) = s.qr_timeout_secs {
                cfg.qr_timeout_secs = t;
            }
            cfg.qr_auto_confirm = s.qr_auto_confirm;
            cfg.captcha_url_relative = s.captcha_url_relative;
            cfg.max_nonce_skew_minutes = s.max_nonce_skew_minutes;
            cfg.reject_replayed_nonces = s.reject_replayed_nonces;
            cfg.service_token_ttl_secs = s.service_token_ttl_secs;
            cfg.expired_form = s.expired_form;
            cfg.faults = s.faults;
        }
        match table.get("account") {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    let name = v
                        .get("user")
                        .and_then(toml::Value::as_str)
                        .unwrap_or("unnamed");
                    let what = format!("account #{} ({name})", i + 1);
                    cfg.accounts.push(table_to(v, &what)?);
                }
            }
            Some(_) => {
                return Err(CloudError::Syntax(
                    "`account` must be an array of tables: write [[account]] before each account"
                        .to_owned(),
                ))
            }
        }
        if let Some(toml::Value::Array(items)) = table.get("device") {
            for (i, v) in items.iter().enumerate() {
                let Some(c) = v.get("cloud") else { continue };
                let name = v
                    .get("name")
                    .and_then(toml::Value::as_str)
                    .unwrap_or("unnamed")
                    .to_owned();
                let what = format!("device #{} ({name}): [device.cloud]", i + 1);
                let dc: DeviceCloudConfig = table_to(c, &what)?;
                cfg.devices.insert(name, dc);
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check addresses, regions, account uniqueness and owners.
    pub fn validate(&self) -> Result<(), CloudError> {
        if !super::is_loopback_v4(&self.addr) {
            return Err(CloudError::NotLoopback(self.addr));
        }
        parse_region(&self.default_region, "[cloud] default_region")?;
        let mut ids = std::collections::BTreeSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            let what = format!("account #{} ({})", i + 1, a.user);
            if a.user.trim().is_empty() {
                return Err(CloudError::Config {
                    what,
                    problem: "`user` must not be empty".to_owned(),
                });
            }
            if a.user_id == 0 {
                return Err(CloudError::Config {
                    what,
                    problem: "`user_id` must be a positive number".to_owned(),
                });
            }
            if !ids.insert(a.user_id) {
                return Err(CloudError::Config {
                    what,
                    problem: format!("user_id {} is used by another account", a.user_id),
                });
            }
            if let Some(r) = &a.region {
                parse_region(r, &format!("{what}: region"))?;
            }
        }
        for (name, d) in &self.devices {
            let what = format!("device {name}: [device.cloud]");
            if let Some(r) = &d.region {
                parse_region(r, &format!("{what} region"))?;
            }
            if let Some(o) = &d.owner {
                if !self.accounts.iter().any(|a| a.matches(o)) {
                    return Err(CloudError::Config {
                        what,
                        problem: format!(
                            "owner {o:?} is not an [[account]] (user, email, phone or user_id)"
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}
