//! Fleet files: which devices to simulate, how each behaves, which faults
//! to inject.
//!
//! A fleet file is TOML with one `[[device]]` table per device:
//!
//! ```toml
//! [[device]]
//! name = "kitchen-light"
//! model = "yeelink.light.color1"
//! did = 100001
//! token = "00112233445566778899aabbccddeeff"   # or: unprovisioned = true
//! addr = "127.0.0.2:54321"                      # loopback only; port 0 = ephemeral
//! [device.initial]                              # "siid.piid" (MIoT) or a legacy name
//! "2.1" = true
//! [device.behaviour]                            # real-firmware defaults; switch off as needed
//! batch_limit = 15
//! [device.faults]                               # all off by default
//! reply_loss = 0.1
//! ```
//!
//! Parsing checks every field and names the device (position and name) and
//! the field in its error, with what to change. Addresses must be in
//! 127.0.0.0/8: the simulator never listens on or sends to anything else.
//!
//! This module does not open sockets; see [`crate::fleet`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mijia_proto::miio::Token;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sim::ModelKind;

/// How the device answers a hello when it is provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HelloForm {
    /// `ff` × 16 (most devices).
    #[default]
    Provisioned,
    /// `00` × 16 (older firmware).
    Zeros,
    /// `MSUB` block advertising push subscription.
    Msub,
}

/// Where the device clock starts at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StampStart {
    /// A small random uptime (20..5000 s at the first boot, 0..3 s after a
    /// simulated reboot).
    #[default]
    Uptime,
    /// Exactly 0.
    Zero,
}

/// Which key error objects use for their text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKey {
    /// `{"code":…,"message":…}` (real firmware).
    #[default]
    Message,
    /// `{"code":…,"error":…}` (some older firmware, python-miio simulators).
    Error,
}

impl ErrorKey {
    /// The JSON key.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKey::Message => "message",
            ErrorKey::Error => "error",
        }
    }
}

/// Malformed-JSON reply modes seen in real firmware (reference §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Quirk {
    /// Valid compact JSON.
    #[default]
    None,
    /// `{"id":1,,"result":…}`
    DoubledComma,
    /// `{"id":1,"ts":,"result":…}`
    EmptyValue,
    /// `{"id":1,"ts":00,"result":…}`
    LeadingZero,
}

/// Real-firmware behaviours. The defaults are what most real devices do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// Silently drop packets with a wrong checksum (wrong token, corruption).
    pub drop_bad_checksum: bool,
    /// Answer a bad checksum with a bare header whose checksum is all `ff`
    /// (python-miio #175). Also used when `drop_bad_checksum` is false.
    pub answer_bad_checksum_with_ff: bool,
    /// Silently drop requests whose id was seen recently.
    pub dedupe_ids: bool,
    /// How many recent ids to remember (across all clients).
    pub id_memory: usize,
    /// Where the clock starts at boot.
    pub stamp_start: StampStart,
    /// Drop requests whose header stamp is further than
    /// `strict_stamp_window_s` from the device clock.
    pub strict_stamp: bool,
    /// Allowed stamp distance in strict mode, seconds.
    pub strict_stamp_window_s: u32,
    /// Drop requests when no hello was seen for this many seconds (0 = off).
    pub needs_recent_hello_s: u64,
    /// Most entries one `get_properties`/`set_properties` may carry (0 = no limit).
    pub batch_limit: usize,
    /// Answer an oversized batch with silence instead of `-9999`.
    pub batch_limit_silent: bool,
    /// Key of the text in error objects.
    pub error_key: ErrorKey,
    /// Hello reply form of a provisioned device.
    pub hello_form: HelloForm,
    /// Append one NUL byte to every reply payload.
    pub trailing_nul: bool,
    /// Add an `"exe_time"` member to every reply.
    pub exe_time: bool,
    /// Malformed-JSON reply mode.
    pub quirk: Quirk,
    /// Answer `-9999` when more than this many requests arrive within one
    /// second (0 = off).
    pub rate_limit_per_s: u32,
    /// Fraction 0..1 of requests answered with a random `-9999`.
    pub random_busy: f64,
    /// Answer unknown methods with the result `"unknown_method"` (Roborock)
    /// instead of a `-32601` error.
    pub unknown_method_string: bool,
    /// Accept `miIO.sub` and push `properties_changed`.
    pub push: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            drop_bad_checksum: true,
            answer_bad_checksum_with_ff: false,
            dedupe_ids: true,
            id_memory: 32,
            stamp_start: StampStart::Uptime,
            strict_stamp: false,
            strict_stamp_window_s: 30,
            needs_recent_hello_s: 0,
            batch_limit: 15,
            batch_limit_silent: false,
            error_key: ErrorKey::Message,
            hello_form: HelloForm::Provisioned,
            trailing_nul: false,
            exe_time: false,
            quirk: Quirk::None,
            rate_limit_per_s: 0,
            random_busy: 0.0,
            unknown_method_string: false,
            push: true,
        }
    }
}

/// Injected network and lifecycle faults. All off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Fraction 0..1 of incoming datagrams (hellos included) that never arrive.
    pub request_loss: f64,
    /// Fraction 0..1 of outgoing datagrams that are lost.
    pub reply_loss: f64,
    /// Fixed delay added to every outgoing datagram, ms.
    pub delay_ms: u64,
    /// Random extra delay 0..=jitter_ms, ms.
    pub jitter_ms: u64,
    /// Extra copies of every reply.
    pub duplicate_replies: u32,
    /// Hold each RPC reply and send it after the next one (or after 200 ms).
    pub reorder: bool,
    /// Fraction 0..1 of encrypted replies whose checksum is corrupted.
    pub corrupt_checksum: f64,
    /// Answer nothing at all.
    pub offline: bool,
    /// Reboot after this many handled requests (0 = never).
    pub reboot_after_requests: u64,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// One simulated device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceConfig {
    /// Unique name, e.g. `kitchen-light`.
    pub name: String,
    /// Model id, e.g. `yeelink.light.color1`.
    pub model: String,
    /// Device id (unique in the fleet).
    pub did: u64,
    /// The token. May be left out only for unprovisioned devices, which
    /// then get a token derived from name and did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
    /// Reveal the token in hello replies (AP mode / not yet paired).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unprovisioned: bool,
    /// Where to listen (127.0.0.0/8; port 0 = ephemeral).
    pub addr: SocketAddr,
    /// Initial values by `"siid.piid"` or legacy property name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub initial: BTreeMap<String, Value>,
    /// Behaviours.
    #[serde(default, skip_serializing_if = "is_default")]
    pub behaviour: Behaviour,
    /// Faults.
    #[serde(default, skip_serializing_if = "is_default")]
    pub faults: Faults,
}

impl DeviceConfig {
    /// A device with default behaviour and no faults.
    pub fn new(
        name: impl Into<String>,
        model: impl Into<String>,
        did: u64,
        addr: SocketAddr,
    ) -> Self {
        DeviceConfig {
            name: name.into(),
            model: model.into(),
            did,
            token: None,
            unprovisioned: false,
            addr,
            initial: BTreeMap::new(),
            behaviour: Behaviour::default(),
            faults: Faults::default(),
        }
    }

    /// The configured token, or the one derived from name and did.
    pub fn effective_token(&self) -> Token {
        self.token.unwrap_or_else(|| {
            let mut seed = b"fake-device token ".to_vec();
            seed.extend_from_slice(&self.did.to_be_bytes());
            seed.extend_from_slice(self.name.as_bytes());
            Token::from_bytes(mijia_proto::miio::crypto::md5(&seed))
        })
    }
}

/// A whole fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FleetConfig {
    /// The devices, in file order.
    #[serde(rename = "device", default)]
    pub devices: Vec<DeviceConfig>,
}

/// Fleet-wide options that are not part of the fleet file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetOptions {
    /// Answer hellos sent to 127.255.255.255 on every port the devices
    /// are configured with, each device replying from its own address
    /// (default on; devices on an ephemeral port 0 are left out).
    pub broadcast: bool,
    /// Announce every device over mDNS on a loopback interface (default
    /// off; see [`crate::mdns`]).
    pub mdns: Option<crate::mdns::AnnounceOptions>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            broadcast: true,
            mdns: None,
        }
    }
}

/// Why a fleet could not be loaded or started.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The file is not TOML.
    #[error("fleet file is not valid TOML: {0}")]
    Syntax(String),
    /// A top-level key other than `device`.
    #[error("fleet file: unknown top-level key `{0}`; a fleet file holds only [[device]] tables")]
    UnknownTopLevel(String),
    /// A device entry is wrong.
    #[error("device #{index} ({name}): `{field}`: {problem}")]
    Device {
        /// 1-based position in the file.
        index: usize,
        /// Its name, or `unnamed`.
        name: String,
        /// The field path, e.g. `behaviour.batch_limit`.
        field: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A socket could not be bound.
    #[error("device {name}: cannot listen on {addr}: {source} (is another process using it? pick another address, or port 0)")]
    Bind {
        /// Device name.
        name: String,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a fleet file failed.
    #[error("{path}: {source}")]
    File {
        /// The path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Serialising a fleet failed (a `null` initial value, for example).
    #[error("cannot write the fleet as TOML: {0}")]
    Serialize(String),
}

fn dev_err(
    index: usize,
    name: &str,
    field: impl Into<String>,
    problem: impl Into<String>,
) -> FleetError {
    FleetError::Device {
        index: index + 1,
        name: if name.is_empty() {
            "unnamed".into()
        } else {
            name.into()
        },
        field: field.into(),
        problem: problem.into(),
    }
}

/// Deserialize one field of a table; `None` when absent.
fn field<T: DeserializeOwned>(t: &toml::Table, key: &str) -> Result<Option<T>, String> {
    match t.get(key) {
        None => Ok(None),
        Some(v) => v
            .clone()
            .try_into::<T>()
            .map(Some)
            .map_err(|e| clean(&e.to_string())),
    }
}

/// Deserialize a section whose fields all have defaults, naming the first
/// bad key.
fn section<T: DeserializeOwned + Default>(
    t: &toml::Table,
    key: &str,
) -> Result<T, (String, String)> {
    let Some(v) = t.get(key) else {
        return Ok(T::default());
    };
    let Some(table) = v.as_table() else {
        return Err((
            key.into(),
            format!("must be a table ([device.{key}]), found a {}", v.type_str()),
        ));
    };
    match toml::Value::Table(table.clone()).try_into::<T>() {
        Ok(x) => Ok(x),
        Err(whole) => {
            for (k, v) in table {
                let mut one = toml::Table::new();
                one.insert(k.clone(), v.clone());
                if let Err(e) = toml::Value::Table(one).try_into::<T>() {
                    return Err((format!("{key}.{k}"), clean(&e.to_string())));
                }
            }
            Err((key.into(), clean(&whole.to_string())))
        }
    }
}

fn clean(s: &str) -> String {
    s.trim().replace('\n', " ")
}

const DEVICE_KEYS: &[&str] = &[
    "name",
    "model",
    "did",
    "token",
    "unprovisioned",
    "addr",
    "initial",
    "behaviour",
    "faults",
    // Read by the simulated cloud (`crate::cloud::config`), ignored here.
    "cloud",
];

fn parse_device(index: usize, v: &toml::Value) -> Result<DeviceConfig, FleetError> {
    let Some(t) = v.as_table() else {
        return Err(dev_err(
            index,
            "",
            "device",
            "each [[device]] entry must be a table",
        ));
    };
    let name: String = match field(t, "name") {
        Ok(Some(n)) => n,
        Ok(None) => {
            return Err(dev_err(
                index,
                "",
                "name",
                "missing; add name = \"kitchen-light\"",
            ))
        }
        Err(e) => return Err(dev_err(index, "", "name", e)),
    };
    let e = |f: &str, p: String| dev_err(index, &name, f, p);
    if name.trim().is_empty() {
        return Err(e("name", "must not be empty".into()));
    }
    for k in t.keys() {
        if !DEVICE_KEYS.contains(&k.as_str()) {
            return Err(e(
                k,
                format!("unknown key; expected one of {}", DEVICE_KEYS.join(", ")),
            ));
        }
    }
    let model: String = field(t, "model")
        .map_err(|p| e("model", p))?
        .ok_or_else(|| {
            e(
                "model",
                "missing; add model = \"yeelink.light.color1\"".into(),
            )
        })?;
    let did: u64 = field(t, "did")
        .map_err(|p| e("did", format!("{p}; use a positive integer")))?
        .ok_or_else(|| e("did", "missing; add did = 100001".into()))?;
    let token: Option<Token> = match t.get("token") {
        None => None,
        Some(v) => {
            let s = v.as_str().ok_or_else(|| {
                e(
                    "token",
                    format!(
                        "must be a string of 32 hex characters, found a {}",
                        v.type_str()
                    ),
                )
            })?;
            Some(
                s.parse::<Token>()
                    .map_err(|te| e("token", te.to_string()))?,
            )
        }
    };
    let unprovisioned: bool = field(t, "unprovisioned")
        .map_err(|p| e("unprovisioned", p))?
        .unwrap_or(false);
    let addr_s: String = field(t, "addr")
        .map_err(|p| e("addr", p))?
        .ok_or_else(|| e("addr", "missing; add addr = \"127.0.0.2:54321\"".into()))?;
    let addr: SocketAddr = addr_s.parse().map_err(|_| {
        e(
            "addr",
            format!("{addr_s:?} is not an address like \"127.0.0.2:54321\""),
        )
    })?;
    let initial: BTreeMap<String, Value> = field(t, "initial")
        .map_err(|p| {
            e(
                "initial",
                format!("{p}; write [device.initial] with \"siid.piid\" = value"),
            )
        })?
        .unwrap_or_default();
    let behaviour: Behaviour = section(t, "behaviour").map_err(|(f, p)| e(&f, p))?;
    let faults: Faults = section(t, "faults").map_err(|(f, p)| e(&f, p))?;
    Ok(DeviceConfig {
        name,
        model,
        did,
        token,
        unprovisioned,
        addr,
        initial,
        behaviour,
        faults,
    })
}

/// Check one device's semantics (addresses, model, ranges, initial values).
pub(crate) fn validate_device(index: usize, d: &DeviceConfig) -> Result<(), FleetError> {
    let e = |f: &str, p: String| dev_err(index, &d.name, f, p);
    match d.addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {}
        other => {
            return Err(e(
                "addr",
                format!("{other} is not a loopback address; the simulator only listens on 127.0.0.0/8 (e.g. \"127.0.0.2:54321\")"),
            ))
        }
    }
    if d.did == 0 || d.did == u64::MAX {
        return Err(e(
            "did",
            format!("{} is reserved; use a positive did below 2^64-1", d.did),
        ));
    }
    if d.token.is_none() && !d.unprovisioned {
        return Err(e(
            "token",
            "missing; add token = \"<32 hex characters>\" or set unprovisioned = true".into(),
        ));
    }
    let Some(kind) = ModelKind::for_model(&d.model) else {
        return Err(e(
            "model",
            format!(
                "unknown model {:?}; known models: {}",
                d.model,
                crate::sim::known_models().join(", ")
            ),
        ));
    };
    for (f, p) in [
        ("faults.request_loss", d.faults.request_loss),
        ("faults.reply_loss", d.faults.reply_loss),
        ("faults.corrupt_checksum", d.faults.corrupt_checksum),
        ("behaviour.random_busy", d.behaviour.random_busy),
    ] {
        if !(0.0..=1.0).contains(&p) {
            return Err(e(
                f,
                format!("{p} is not a fraction; use a number from 0.0 to 1.0"),
            ));
        }
    }
    if d.behaviour.id_memory == 0 && d.behaviour.dedupe_ids {
        return Err(e(
            "behaviour.id_memory",
            "must be at least 1 when dedupe_ids is on (real devices remember 10 or more)".into(),
        ));
    }
    for (key, value) in &d.initial {
        kind.check_initial(key, value)
            .map_err(|p| e(&format!("initial.{key}"), p))?;
    }
    Ok(())
}

impl FleetConfig {
    /// Parse and validate a fleet file.
    pub fn from_toml(text: &str) -> Result<FleetConfig, FleetError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| FleetError::Syntax(clean(&e.to_string())))?;
        for k in table.keys() {
            // `[[account]]` and `[cloud]` belong to the simulated cloud
            // (`crate::cloud::config`).
            if !matches!(k.as_str(), "device" | "account" | "cloud") {
                return Err(FleetError::UnknownTopLevel(k.clone()));
            }
        }
        let mut devices = Vec::new();
        match table.get("device") {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    devices.push(parse_device(i, v)?);
                }
            }
            Some(_) => {
                return Err(FleetError::Syntax(
                    "`device` must be an array of tables: write [[device]] before each device"
                        .into(),
                ))
            }
        }
        let cfg = FleetConfig { devices };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check every device and the uniqueness of names, dids and addresses.
    pub fn validate(&self) -> Result<(), FleetError> {
        let mut names = BTreeSet::new();
        let mut dids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            validate_device(i, d)?;
            if !names.insert(d.name.as_str()) {
                return Err(dev_err(
                    i,
                    &d.name,
                    "name",
                    "another device already has this name; names must be unique",
                ));
            }
            if !dids.insert(d.did) {
                return Err(dev_err(
                    i,
                    &d.name,
                    "did",
                    format!(
                        "did {} is used by another device; dids must be unique",
                        d.did
                    ),
                ));
            }
            if d.addr.port() != 0 && !addrs.insert(d.addr) {
                return Err(dev_err(
                    i,
                    &d.name,
                    "addr",
                    format!(
                        "{} is used by another device; give each device its own address",
                        d.addr
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Write as TOML (defaults left out).
    pub fn to_toml(&self) -> Result<String, FleetError> {
        toml::to_string(self).map_err(|e| FleetError::Serialize(e.to_string()))
    }

    /// `count` mixed devices: a realistic mix of bundled MIoT models plus
    /// some legacy ones, each on its own loopback address starting at
    /// `base` (host parts .0 and .255 skipped; addresses stay inside
    /// 127.0.0.0/8 whatever `base` is), unique dids and tokens, names like
    /// `light-0001`, every 16th device unprovisioned. Deterministic for a
    /// given seed.
    pub fn generate(count: usize, base: Ipv4Addr, port: u16, seed: u64) -> FleetConfig {
        const MIX: &[(&str, &str)] = &[
            ("light", "yeelink.light.color1"),
            ("plug", "chuangmi.plug.212a01"),
            ("switch", "lumi.switch.b2lacn02"),
            ("sensor", "miaomiaoce.sensor_ht.t2"),
            ("light", "philips.light.bulb"),
            ("purifier", "zhimi.airpurifier.mb3"),
            ("fan", "dmaker.fan.p9"),
            ("heater", "zhimi.heater.mc2"),
            ("humidifier", "zhimi.humidifier.ca4"),
            ("light", "yeelink.light.mono1"),
            ("vacuum", "dreame.vacuum.p2009"),
            ("lock", "lumi.lock.mcn01"),
            ("camera", "chuangmi.camera.ipc019"),
            ("plug", "chuangmi.plug.m1"),
            ("kettle", "yunmi.kettle.r1"),
            ("curtain", "lumi.curtain.hagl05"),
            ("light", "yeelink.light.meshbulb1"),
            ("fan", "zhimi.fan.za4"),
            ("switch", "yeelink.switch.sw1"),
            ("speaker", "xiaomi.wifispeaker.lx06"),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut counters: BTreeMap<&str, usize> = BTreeMap::new();
        let mut dids = BTreeSet::new();
        let base_host = u32::from(base) & 0x00ff_ffff;
        let mut host = base_host;
        let mut devices = Vec::with_capacity(count);
        for i in 0..count {
            let (kind, model) = MIX[i % MIX.len()];
            let n = counters.entry(kind).or_insert(0);
            *n += 1;
            let name = format!("{kind}-{n:04}");
            let did = loop {
                let d: u64 = rng.gen_range(100_000_000..1_000_000_000);
                if dids.insert(d) {
                    break d;
                }
            };
            let token = Token::from_bytes(rng.gen());
            // Next usable host: skip .0 and .255 in the last octet, wrap
            // inside 127.0.0.0/8 (never 127.0.0.0 or 127.255.255.255).
            while host & 0xff == 0 || host & 0xff == 0xff {
                host = (host + 1) & 0x00ff_ffff;
            }
            let ip = Ipv4Addr::from(0x7f00_0000 | host);
            host = (host + 1) & 0x00ff_ffff;
            let mut d = DeviceConfig::new(name, model, did, SocketAddr::new(IpAddr::V4(ip), port));
            d.token = Some(token);
            d.unprovisioned = i % 16 == 7;
            devices.push(d);
        }
        FleetConfig { devices }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[device]]
name = "kitchen-light"
model = "yeelink.light.color1"
did = 100001
token = "00112233445566778899aabbccddeeff"
addr = "127.0.0.2:54321"
[device.initial]
"2.1" = true
"2.2" = 80
[device.behaviour]
batch_limit = 3
error_key = "error"
hello_form = "msub"
[device.faults]
reply_loss = 0.25

[[device]]
name = "desk-lamp"
model = "yeelink.light.mono1"
did = 100002
unprovisioned = true
addr = "127.0.0.3:0"
[device.initial]
power = "on"
"#;

    #[test]
    fn parses_a_good_file() {
        let f = FleetConfig::from_toml(GOOD).unwrap();
        assert_eq!(f.devices.len(), 2);
        let a = &f.devices[0];
        assert_eq!(a.behaviour.batch_limit, 3);
        assert_eq!(a.behaviour.error_key, ErrorKey::Error);
        assert_eq!(a.behaviour.hello_form, HelloForm::Msub);
        assert!(
            a.behaviour.dedupe_ids,
            "unset behaviours keep real defaults"
        );
        assert_eq!(a.faults.reply_loss, 0.25);
        assert_eq!(a.initial["2.2"], serde_json::json!(80));
        let b = &f.devices[1];
        assert!(b.unprovisioned && b.token.is_none());
        assert_eq!(b.effective_token(), b.effective_token());
        // Round trip through to_toml.
        let again = FleetConfig::from_toml(&f.to_toml().unwrap()).unwrap();
        assert_eq!(again, f);
    }

    fn err(text: &str) -> String {
        FleetConfig::from_toml(text).unwrap_err().to_string()
    }

    fn with(extra_device: &str, section: &str) -> String {
        format!(
            "[[device]]\nname = \"ok\"\nmodel = \"chuangmi.plug.m1\"\ndid = 1\ntoken = \"00112233445566778899aabbccddeeff\"\naddr = \"127.0.0.9:54321\"\n\n[[device]]\nname = \"bad\"\nmodel = \"yeelink.light.color1\"\ndid = 2\ntoken = \"00112233445566778899aabbccddeeff\"\naddr = \"127.0.0.10:54321\"\n{extra_device}\n{section}"
        )
    }

    #[test]
    fn errors_name_device_and_field() {
        let e = err(&with("", "[device.behaviour]\nbatch_limit = \"lots\""));
        assert!(
            e.contains("device #2 (bad)") && e.contains("behaviour.batch_limit"),
            "{e}"
        );
        let e = err(&with("", "[device.behaviour]\nbatch_limt = 3"));
        assert!(
            e.contains("behaviour.batch_limt") && e.contains("unknown field"),
            "{e}"
        );
        let e = err(&with("", "[device.faults]\nreply_loss = 1.5"));
        assert!(
            e.contains("faults.reply_loss") && e.contains("0.0 to 1.0"),
            "{e}"
        );
        let e = err(&with("", "[device.initial]\n\"2.2\" = 150"));
        assert!(e.contains("initial.2.2") && e.contains("150"), "{e}");
        let e = err(&with("", "[device.initial]\n\"9.9\" = 1"));
        assert!(e.contains("initial.9.9"), "{e}");
        let e = err(&with("colour = 1", ""));
        assert!(e.contains("`colour`") && e.contains("unknown key"), "{e}");
        let e = err(&with("", "").replace("127.0.0.10", "192.168.1.5"));
        assert!(
            e.contains("device #2 (bad)") && e.contains("loopback"),
            "{e}"
        );
        let e = err(&with("", "").replace("yeelink.light.color1", "acme.toaster.v9"));
        assert!(e.contains("`model`") && e.contains("known models"), "{e}");
        let e = err(&with("", "").replace("did = 2", "did = 1"));
        assert!(e.contains("`did`") && e.contains("unique"), "{e}");
        let e = err(&with("", "").replace("127.0.0.10", "127.0.0.9"));
        assert!(e.contains("`addr`"), "{e}");
        let e = err(&with("", "").replacen(
            "token = \"00112233445566778899aabbccddeeff\"\naddr = \"127.0.0.10",
            "addr = \"127.0.0.10",
            1,
        ));
        assert!(
            e.contains("`token`") && e.contains("unprovisioned = true"),
            "{e}"
        );
        let e = err("[[device]]\nmodel = \"x\"");
        assert!(
            e.contains("device #1 (unnamed)") && e.contains("`name`"),
            "{e}"
        );
        let e = err("[[device]\nname=");
        assert!(e.contains("not valid TOML"), "{e}");
        let e = err("devices = 1");
        assert!(e.contains("`devices`"), "{e}");
        let e = err(&with("token = \"xyz\"", "").replacen(
            "token = \"00112233445566778899aabbccddeeff\"\naddr = \"127.0.0.10",
            "addr = \"127.0.0.10",
            1,
        ));
        assert!(e.contains("`token`") && e.contains("32 hex"), "{e}");
    }

    #[test]
    fn example_fleet_file_parses() {
        let text = include_str!("../../fixtures/fleets/home.toml");
        let f = FleetConfig::from_toml(text).unwrap();
        assert_eq!(f.devices.len(), 6);
        assert!(f.devices[2].unprovisioned);
        assert_eq!(f.devices[4].behaviour.batch_limit, 3);
        assert_eq!(f.devices[5].faults.delay_ms, 150);
    }

    #[test]
    fn generate_is_deterministic_and_valid() {
        let a = FleetConfig::generate(300, Ipv4Addr::new(127, 1, 0, 250), 54321, 7);
        let b = FleetConfig::generate(300, Ipv4Addr::new(127, 1, 0, 250), 54321, 7);
        let c = FleetConfig::generate(300, Ipv4Addr::new(127, 1, 0, 250), 54321, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        a.validate().unwrap();
        for d in &a.devices {
            let IpAddr::V4(ip) = d.addr.ip() else {
                panic!()
            };
            assert!(ip.is_loopback());
            assert!(ip.octets()[3] != 0 && ip.octets()[3] != 255, "{ip}");
        }
        assert_eq!(a.devices[0].addr.to_string(), "127.1.0.250:54321");
        assert_eq!(a.devices[5].addr.to_string(), "127.1.1.1:54321");
        assert_eq!(a.devices[0].name, "light-0001");
        assert!(a.devices.iter().any(|d| d.unprovisioned));
        assert!(a.devices.iter().any(|d| d.model == "yeelink.light.mono1"));
        let models: BTreeSet<_> = a.devices.iter().map(|d| d.model.as_str()).collect();
        assert!(models.len() >= 15);
        // Non-loopback base is pulled into 127/8.
        let w = FleetConfig::generate(2, Ipv4Addr::new(10, 0, 0, 1), 1, 1);
        assert_eq!(w.devices[0].addr.to_string(), "127.0.0.1:1");
        // Round trip.
        assert_eq!(FleetConfig::from_toml(&a.to_toml().unwrap()).unwrap(), a);
    }
}
