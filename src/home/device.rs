//! The `Device` facade: a named device you address by property and action
//! names, with values checked before anything is sent.
//!
//! Three layers, from pure to IO:
//!
//! - [`ModelCatalog`] maps a model to a shared [`ModelProfile`]: its MIoT
//!   spec and name table, or its legacy vocabulary
//!   ([`super::legacy`]), or nothing. Profiles are built once per
//!   model and shared (`Arc`), so a thousand devices of one model share one
//!   parsed spec and one name table. A spec (user or bundled) wins over a
//!   legacy table; a user spec wins over a bundled one.
//! - [`ModelProfile::plan_get`], [`plan_set`](ModelProfile::plan_set),
//!   [`plan_action`](ModelProfile::plan_action) resolve names (numeric
//!   `siid.piid` is always accepted) and parse and check every value
//!   against format, range, step and value list. They do no IO, so a bad
//!   name or value is an error before any packet leaves.
//! - [`DeviceTarget`] is a device's address, token and profile (cheap, no
//!   socket); [`DeviceTarget::connect`] opens the socket and gives a
//!   [`Device`], whose `status`/`get`/`set`/`action`/`raw` run a plan over
//!   its route and return structured results ([`PropReading`],
//!   [`SetResult`], [`ActionOutcome`]) that the CLI renders as a table or
//!   JSON.
//!
//! A [`Device`] talks through one [`MiotRoute`]: the local
//! [`transport`](crate::transport) by default, or the Xiaomi cloud
//! ([`Device::with_route`] with a
//! [`CloudDeviceRoute`](crate::cloud::CloudDeviceRoute)). Both routes give
//! the same result types with the same device-level codes, so names,
//! values, units and per-property errors come out the same either way;
//! only [`Device::route`] tells them apart.
//!
//! Per-property failures (a MIoT code such as `-4001`, a legacy name the
//! device did not report) stay in the results; only resolution, validation
//! and transport failures are errors ([`DeviceOpError`]).
//!
//! This module prints nothing, reads no files and does not know rooms or
//! the registry beyond the fields it copies from a [`DeviceEntry`].

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mijia_proto::miio::{PropCode, Token};
use mijia_proto::miot::names::{normalize, parse_iid_pair};
use mijia_proto::miot::value::display_unit;
use mijia_proto::miot::{ItemKind, NameError, NameTable, Property, Spec, SpecStore, ValueError};
use serde::Serialize;
use serde_json::Value;

use super::legacy::{
    self, LegacyAction, LegacyModel, LegacyProp, LegacyValueError, RawValues, ReadCall, ReplyError,
};
use super::{DeviceEntry, DeviceKey};
use crate::cloud::{CloudError, MiotRoute, Route, RouteError};
use crate::transport::{
    ClientConfig, DeviceInfo, IdStore, MiioDevice, MiioError, PropId, PropResult,
};

// ------------------------------------------------------------------ errors

/// Why a device operation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DeviceOpError {
    /// A property or action name that does not resolve.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A value the property or action does not accept.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A value a legacy property or command does not accept.
    #[error(transparent)]
    LegacyValue(#[from] LegacyValueError),
    /// A name was used but the model has no spec and no legacy table.
    #[error(
        "cannot resolve '{name}': {} (add one with `mijia spec import FILE`, or use numeric \
         siid.piid / `raw`)",
        no_spec(.model)
    )]
    NoSpec {
        /// The device's model, if known.
        model: Option<String>,
        /// The name given.
        name: String,
    },
    /// `status` needs to know which properties exist.
    #[error(
        "cannot list the properties: {} (add one with `mijia spec import FILE`, or read \
         numeric ids with `get DEVICE 2.1 2.2`, or use `raw`)",
        no_spec(.model)
    )]
    StatusNeedsSpec {
        /// The device's model, if known.
        model: Option<String>,
    },
    /// The request itself is malformed (duplicates, mixed argument styles).
    #[error("{0}")]
    Usage(String),
    /// Talking to the device failed.
    #[error(transparent)]
    Miio(#[from] MiioError),
    /// Talking to the device through the Xiaomi cloud failed.
    #[error(transparent)]
    Cloud(Box<CloudError>),
    /// The device did not finish within the per-device time limit.
    #[error("no answer within {}s — check that the device is on and reachable", .after.as_secs_f64())]
    Timeout {
        /// The limit.
        after: Duration,
    },
    /// `miIO.info` answered without a model.
    #[error("the device did not say its model in miIO.info; pass the model (--model MODEL)")]
    NoModel,
    /// A bug: something that should not happen did.
    #[error("internal error: {0}; this is a bug in mijia, please report it")]
    Internal(String),
    /// A legacy reply that cannot be used.
    #[error("unexpected reply from the device: {0} — use `raw` to see it")]
    Reply(#[from] ReplyError),
}

impl From<CloudError> for DeviceOpError {
    fn from(e: CloudError) -> Self {
        DeviceOpError::Cloud(Box::new(e))
    }
}

impl From<RouteError> for DeviceOpError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::Local(e) => DeviceOpError::Miio(e),
            RouteError::Cloud(e) => e.into(),
        }
    }
}

fn no_spec(model: &Option<String>) -> String {
    match model {
        Some(m) => format!("no spec for model {m}"),
        None => "the device's model is unknown, so there is no spec".to_string(),
    }
}

impl DeviceOpError {
    /// True for errors found before any IO (bad names, values, arguments):
    /// the user's input is wrong, not the device.
    pub fn is_validation(&self) -> bool {
        matches!(
            self,
            DeviceOpError::Name(_)
                | DeviceOpError::Value(_)
                | DeviceOpError::LegacyValue(_)
                | DeviceOpError::NoSpec { .. }
                | DeviceOpError::StatusNeedsSpec { .. }
                | DeviceOpError::Usage(_)
        )
    }

    /// True when the device did not answer (unreachable, no reply, wrong
    /// token, or the per-device time limit; through the cloud: offline,
    /// timed out, or the cloud not reachable).
    pub fn is_timeout(&self) -> bool {
        match self {
            DeviceOpError::Timeout { .. } => true,
            DeviceOpError::Miio(e) => e.is_timeout(),
            DeviceOpError::Cloud(e) => e.is_unreachable(),
            _ => false,
        }
    }

    /// The transport error, if that is what this is.
    pub fn miio(&self) -> Option<&MiioError> {
        match self {
            DeviceOpError::Miio(e) => Some(e),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------- profiles

/// What mijia knows about a model.
#[derive(Debug)]
pub enum ProfileKind {
    /// A MIoT spec and its name table.
    Miot {
        /// The spec (shared with the store).
        spec: Arc<Spec>,
        /// Names for its properties and actions.
        names: NameTable,
    },
    /// A legacy miIO vocabulary.
    Legacy(&'static LegacyModel),
    /// Nothing: numeric ids and `raw` only.
    Unknown,
}

/// A model and what mijia knows about it. Shared by every device of the
/// model.
#[derive(Debug)]
pub struct ModelProfile {
    /// The model id, if known.
    pub model: Option<String>,
    /// Its spec, legacy table, or nothing.
    pub kind: ProfileKind,
}

/// Builds [`ModelProfile`]s from a [`SpecStore`] and the legacy tables,
/// once per model.
#[derive(Debug)]
pub struct ModelCatalog {
    store: SpecStore,
    cache: Mutex<HashMap<String, Arc<ModelProfile>>>,
    unknown: Arc<ModelProfile>,
}

impl ModelCatalog {
    /// A catalog over `store` (see [`load_spec_store`](super::specs::load_spec_store)).
    pub fn new(store: SpecStore) -> Self {
        ModelCatalog {
            store,
            cache: Mutex::new(HashMap::new()),
            unknown: Arc::new(ModelProfile {
                model: None,
                kind: ProfileKind::Unknown,
            }),
        }
    }

    /// The spec store behind it.
    pub fn store(&self) -> &SpecStore {
        &self.store
    }

    /// The profile for `model`: its spec if the store has one, else its
    /// legacy table, else an unknown profile. Built once per model.
    pub fn profile(&self, model: Option<&str>) -> Arc<ModelProfile> {
        let Some(model) = model.map(|m| m.trim().to_ascii_lowercase()) else {
            return Arc::clone(&self.unknown);
        };
        if model.is_empty() {
            return Arc::clone(&self.unknown);
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(&model) {
            return Arc::clone(p);
        }
        let kind = if let Some(spec) = self.store.get(&model) {
            let names = NameTable::for_spec(&spec).with_label(model.clone());
            ProfileKind::Miot { spec, names }
        } else if let Some(t) = legacy::for_model(&model) {
            ProfileKind::Legacy(t)
        } else {
            ProfileKind::Unknown
        };
        let p = Arc::new(ModelProfile {
            model: Some(model.clone()),
            kind,
        });
        cache.insert(model, Arc::clone(&p));
        p
    }
}

// ------------------------------------------------------------------ results

/// Where a property lives on the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PropAddr {
    /// A MIoT property.
    Miot {
        /// Service iid.
        siid: u32,
        /// Property iid.
        piid: u32,
    },
    /// A legacy vocabulary key (`bright`, `get_status.state`).
    Legacy {
        /// The key.
        key: String,
    },
}

impl fmt::Display for PropAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropAddr::Miot { siid, piid } => write!(f, "{siid}.{piid}"),
            PropAddr::Legacy { key } => f.write_str(key),
        }
    }
}

/// Code used for a legacy write the device did not acknowledge with `ok`.
pub const LEGACY_NOT_OK: i64 = -4000;

/// One property value as read from a device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropReading {
    /// Its name (`light.brightness`; `2.9` when the spec has no name).
    pub name: String,
    /// Where it lives.
    #[serde(flatten)]
    pub addr: PropAddr,
    /// The decoded value (bools for on/off, numbers for numeric strings).
    pub value: Option<Value>,
    /// The value for people: `40 %`, `2 (Sleep)`, `on`; the error text
    /// when there is no value.
    pub display: String,
    /// The unit symbol, when the property has one.
    pub unit: Option<String>,
    /// MIoT result code (0 ok); [`PropResult::MISSING`] when the device
    /// did not report the property.
    pub code: i64,
    /// What went wrong for this property.
    pub error: Option<String>,
}

impl PropReading {
    /// Whether a value was read.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The outcome of writing one property.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetResult {
    /// Its name.
    pub name: String,
    /// Where it lives.
    #[serde(flatten)]
    pub addr: PropAddr,
    /// The checked value that was sent (before wire encoding).
    pub requested: Value,
    /// The requested value for people.
    pub requested_display: String,
    /// MIoT result code (0 ok); the device error code or
    /// [`LEGACY_NOT_OK`] for legacy setters.
    pub code: i64,
    /// What went wrong for this property.
    pub error: Option<String>,
    /// The value read back after the write (when readable).
    pub after: Option<PropReading>,
}

impl SetResult {
    /// Whether the device accepted the write.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// One output value of an action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionOut {
    /// Its name (`2.5` or `out[1]` when unnamed).
    pub name: String,
    /// The decoded value.
    pub value: Value,
    /// The value for people.
    pub display: String,
}

/// The outcome of an action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionOutcome {
    /// The action's name.
    pub name: String,
    /// `siid.aiid`, or the legacy method.
    pub id: String,
    /// MIoT result code (0 ok).
    pub code: i64,
    /// What went wrong.
    pub error: Option<String>,
    /// Output values.
    pub out: Vec<ActionOut>,
}

/// What `miIO.info` said about a device.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedModel {
    /// The model id.
    pub model: String,
    /// The device id learnt from the handshake.
    pub did: Option<u64>,
    /// Everything `miIO.info` returned.
    pub info: DeviceInfo,
}

// -------------------------------------------------------------------- plans

/// A property resolved from a name.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolvedProp {
    /// A MIoT property (with or without a spec entry).
    Miot {
        /// Display name.
        name: String,
        /// Address.
        id: PropId,
    },
    /// A legacy property.
    Legacy(&'static LegacyProp),
}

impl ResolvedProp {
    /// Display name.
    pub fn name(&self) -> &str {
        match self {
            ResolvedProp::Miot { name, .. } => name,
            ResolvedProp::Legacy(p) => p.name,
        }
    }

    /// Where it lives.
    pub fn addr(&self) -> PropAddr {
        match self {
            ResolvedProp::Miot { id, .. } => PropAddr::Miot {
                siid: id.siid,
                piid: id.piid,
            },
            ResolvedProp::Legacy(p) => PropAddr::Legacy {
                key: p.source.key(),
            },
        }
    }
}

/// A checked write.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedWrite {
    /// The property.
    pub prop: ResolvedProp,
    /// The checked value.
    pub value: Value,
    /// The value for people.
    pub display: String,
}

/// A checked action call.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionPlan {
    /// A MIoT action.
    Miot {
        /// Display name.
        name: String,
        /// Service iid.
        siid: u32,
        /// Action iid.
        aiid: u32,
        /// Checked `in` values, in order.
        ins: Vec<Value>,
    },
    /// A legacy command.
    Legacy {
        /// The command.
        action: &'static LegacyAction,
        /// The params to send.
        params: Value,
    },
}

/// JSON if the text is JSON, else the text as a string (for devices
/// without a spec).
fn json_or_string(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn plain_display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl ModelProfile {
    fn label(&self) -> String {
        self.model.clone().unwrap_or_else(|| "this device".into())
    }

    /// The MIoT spec, when the model has one.
    pub fn spec(&self) -> Option<&Arc<Spec>> {
        match &self.kind {
            ProfileKind::Miot { spec, .. } => Some(spec),
            _ => None,
        }
    }

    /// The legacy table, when the model uses one.
    pub fn legacy(&self) -> Option<&'static LegacyModel> {
        match self.kind {
            ProfileKind::Legacy(t) => Some(t),
            _ => None,
        }
    }

    /// The MIoT property behind an address, when the spec has it.
    fn property(&self, id: PropId) -> Option<&Property> {
        self.spec()?.property(id.siid, id.piid)
    }

    /// Resolves one property name (or `siid.piid`).
    pub fn resolve_prop(&self, name: &str) -> Result<ResolvedProp, DeviceOpError> {
        match &self.kind {
            ProfileKind::Miot { names, .. } => {
                let (siid, piid) = names.resolve_property(name)?;
                let full = names
                    .property_name(siid, piid)
                    .map_or_else(|| format!("{siid}.{piid}"), str::to_string);
                Ok(ResolvedProp::Miot {
                    name: full,
                    id: PropId::new(siid, piid),
                })
            }
            ProfileKind::Legacy(t) => {
                Ok(ResolvedProp::Legacy(t.resolve_prop(&self.label(), name)?))
            }
            ProfileKind::Unknown => match parse_iid_pair(name) {
                Some((siid, piid)) => Ok(ResolvedProp::Miot {
                    name: format!("{siid}.{piid}"),
                    id: PropId::new(siid, piid),
                }),
                None if name.trim().is_empty() => Err(NameError::Empty {
                    kind: ItemKind::Property,
                }
                .into()),
                None => Err(DeviceOpError::NoSpec {
                    model: self.model.clone(),
                    name: name.trim().to_string(),
                }),
            },
        }
    }

    /// Every readable property, in spec order (legacy: table order).
    pub fn plan_status(&self) -> Result<Vec<ResolvedProp>, DeviceOpError> {
        match &self.kind {
            ProfileKind::Miot { spec, names } => {
                let mut out = Vec::new();
                for svc in spec.services_by_iid() {
                    let mut props: Vec<&Property> =
                        svc.properties.iter().filter(|p| p.access.read).collect();
                    props.sort_by_key(|p| p.iid);
                    for p in props {
                        if let Some(name) = names.property_name(svc.iid, p.iid) {
                            out.push(ResolvedProp::Miot {
                                name: name.to_string(),
                                id: PropId::new(svc.iid, p.iid),
                            });
                        }
                    }
                }
                Ok(out)
            }
            ProfileKind::Legacy(t) => Ok(t.props.iter().map(ResolvedProp::Legacy).collect()),
            ProfileKind::Unknown => Err(DeviceOpError::StatusNeedsSpec {
                model: self.model.clone(),
            }),
        }
    }

    /// Resolves names for `get`. Duplicates are kept once.
    pub fn plan_get(&self, names: &[&str]) -> Result<Vec<ResolvedProp>, DeviceOpError> {
        if names.is_empty() {
            return Err(DeviceOpError::Usage(
                "no property named; give names like 'light.brightness' or ids like '2.2'".into(),
            ));
        }
        let mut out: Vec<ResolvedProp> = Vec::with_capacity(names.len());
        for n in names {
            let p = self.resolve_prop(n)?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Resolves, parses and checks every `name=value` pair for `set`.
    pub fn plan_set(&self, pairs: &[(&str, &str)]) -> Result<Vec<PlannedWrite>, DeviceOpError> {
        if pairs.is_empty() {
            return Err(DeviceOpError::Usage(
                "nothing to set; give NAME=VALUE pairs like 'light.brightness=40'".into(),
            ));
        }
        let mut out: Vec<PlannedWrite> = Vec::with_capacity(pairs.len());
        for (name, text) in pairs {
            let prop = self.resolve_prop(name)?;
            if out.iter().any(|w| w.prop == prop) {
                return Err(DeviceOpError::Usage(format!(
                    "{} is given twice; set each property once",
                    prop.name()
                )));
            }
            let (value, display) = match &prop {
                ResolvedProp::Miot { id, .. } => match self.property(*id) {
                    Some(p) => {
                        let v = p.check_write(&p.parse_user(text)?)?;
                        let d = p.display_value(&v);
                        (v, d)
                    }
                    None => {
                        let v = json_or_string(text);
                        let d = plain_display(&v);
                        (v, d)
                    }
                },
                ResolvedProp::Legacy(p) => {
                    let table = self.legacy().ok_or_else(|| {
                        DeviceOpError::Internal("legacy property without a legacy table".into())
                    })?;
                    let v = p.parse_user(table, text)?;
                    let d = p.display(&v);
                    (v, d)
                }
            };
            out.push(PlannedWrite {
                prop,
                value,
                display,
            });
        }
        Ok(out)
    }

    /// Resolves an action and parses and checks its arguments: by position
    /// (`40`) or by name (`brightness=40`, or the in-property's piid
    /// `3=40`), not mixed.
    pub fn plan_action(&self, name: &str, args: &[String]) -> Result<ActionPlan, DeviceOpError> {
        match &self.kind {
            ProfileKind::Miot { spec, names } => {
                let (siid, aiid) = names.resolve_action(name)?;
                let full = names
                    .action_name(siid, aiid)
                    .map_or_else(|| format!("{siid}.{aiid}"), str::to_string);
                let ins = miot_action_args(spec, names, siid, aiid, &full, args)?;
                Ok(ActionPlan::Miot {
                    name: full,
                    siid,
                    aiid,
                    ins,
                })
            }
            ProfileKind::Legacy(t) => {
                let action = t.resolve_action(&self.label(), name)?;
                let params = action.encode(args)?;
                Ok(ActionPlan::Legacy { action, params })
            }
            ProfileKind::Unknown => match parse_iid_pair(name) {
                Some((siid, aiid)) => Ok(ActionPlan::Miot {
                    name: format!("{siid}.{aiid}"),
                    siid,
                    aiid,
                    ins: args.iter().map(|a| json_or_string(a)).collect(),
                }),
                None => Err(DeviceOpError::NoSpec {
                    model: self.model.clone(),
                    name: name.trim().to_string(),
                }),
            },
        }
    }

    /// A reading from one MIoT result.
    fn miot_reading(&self, name: &str, r: &PropResult) -> PropReading {
        let prop = self.property(r.id());
        let unit = prop
            .and_then(|p| p.unit.as_deref())
            .and_then(display_unit)
            .map(str::to_string);
        let addr = PropAddr::Miot {
            siid: r.siid,
            piid: r.piid,
        };
        match (&r.value, r.is_success()) {
            (Some(v), true) => {
                let (value, display) = match prop {
                    Some(p) => (p.decode_wire(v), p.display_value(v)),
                    None => (v.clone(), plain_display(v)),
                };
                PropReading {
                    name: name.to_string(),
                    addr,
                    value: Some(value),
                    display,
                    unit,
                    code: r.code,
                    error: None,
                }
            }
            _ => {
                let err = format!("{} ({})", r.meaning(), r.code);
                PropReading {
                    name: name.to_string(),
                    addr,
                    value: None,
                    display: err.clone(),
                    unit,
                    code: if r.is_success() {
                        PropResult::MISSING
                    } else {
                        r.code
                    },
                    error: Some(err),
                }
            }
        }
    }
}

/// Parses action arguments against the `in` properties.
fn miot_action_args(
    spec: &Spec,
    names: &NameTable,
    siid: u32,
    aiid: u32,
    action_name: &str,
    args: &[String],
) -> Result<Vec<Value>, DeviceOpError> {
    let action = spec
        .action(siid, aiid)
        .ok_or(ValueError::UnknownAction { siid, aiid })?;
    let params: Vec<String> = action
        .ins
        .iter()
        .map(|&piid| match spec.property(siid, piid) {
            Some(p) => p.name().to_string(),
            None => format!("piid {piid}"),
        })
        .collect();
    // Which in-slot a `key` names: the property's type name, its full
    // name from the table, or its piid.
    let slot_of = |key: &str| -> Vec<usize> {
        let k = normalize(key);
        action
            .ins
            .iter()
            .enumerate()
            .filter(|(i, piid)| {
                piid.to_string() == k
                    || params.get(*i).is_some_and(|n| normalize(n) == k)
                    || names
                        .property_name(siid, **piid)
                        .is_some_and(|n| normalize(n) == k)
            })
            .map(|(i, _)| i)
            .collect()
    };
    let named: Vec<Option<(&str, &str)>> = args
        .iter()
        .map(|a| a.split_once('=').filter(|(k, _)| !slot_of(k).is_empty()))
        .collect();
    let parse = |index: usize, piid: Option<u32>, text: &str| -> Result<Value, DeviceOpError> {
        match piid.and_then(|p| spec.property(siid, p)) {
            Some(p) => p.parse_user(text).map_err(|e| {
                ValueError::Arg {
                    action: action_name.to_string(),
                    index: index + 1,
                    source: Box::new(e),
                }
                .into()
            }),
            None => Ok(json_or_string(text)),
        }
    };
    let values: Vec<Value> = if named.iter().all(Option::is_none) {
        args.iter()
            .enumerate()
            .map(|(i, text)| parse(i, action.ins.get(i).copied(), text))
            .collect::<Result<_, _>>()?
    } else {
        let mut slots: Vec<Option<Value>> = vec![None; action.ins.len()];
        for (arg, named) in args.iter().zip(&named) {
            let Some((key, text)) = named else {
                if arg.contains('=') {
                    let key = arg.split_once('=').map_or(arg.as_str(), |(k, _)| k);
                    return Err(ValueError::UnknownArg {
                        action: action_name.to_string(),
                        arg: key.to_string(),
                        params,
                    }
                    .into());
                }
                return Err(DeviceOpError::Usage(format!(
                    "give the arguments of {action_name} all by position or all by name \
                     (NAME=VALUE), not mixed; it takes: {}",
                    params.join(", ")
                )));
            };
            let hits = slot_of(key);
            let (Some(&i), 1) = (hits.first(), hits.len()) else {
                return Err(ValueError::AmbiguousArg {
                    action: action_name.to_string(),
                    arg: (*key).to_string(),
                }
                .into());
            };
            let v = parse(i, action.ins.get(i).copied(), text)?;
            match slots.get_mut(i) {
                Some(s @ None) => *s = Some(v),
                _ => {
                    return Err(ValueError::AmbiguousArg {
                        action: action_name.to_string(),
                        arg: (*key).to_string(),
                    }
                    .into())
                }
            }
        }
        let mut ordered = Vec::with_capacity(slots.len());
        for (slot, name) in slots.into_iter().zip(&params) {
            match slot {
                Some(v) => ordered.push(v),
                None => {
                    return Err(ValueError::MissingArg {
                        action: action_name.to_string(),
                        arg: name.clone(),
                    }
                    .into())
                }
            }
        }
        ordered
    };
    Ok(spec.check_action_args(siid, aiid, &values)?)
}

// ------------------------------------------------------------------ targets

/// A device to talk to: name, address, token and model profile. Cheap to
/// clone and holds no socket; [`connect`](Self::connect) opens one.
///
/// A device known only by its cloud did ([`cloud_only`](Self::cloud_only))
/// has no LAN address: its `addr` is unspecified (`0.0.0.0`) and it can
/// only be used with a cloud route.
#[derive(Clone)]
pub struct DeviceTarget {
    /// The user's name for it (or the address for ad-hoc targets).
    pub name: String,
    /// Its room.
    pub room: Option<String>,
    /// Its address.
    pub addr: SocketAddr,
    /// Its did, when known.
    pub did: Option<u64>,
    token: Token,
    /// What is known about its model.
    pub profile: Arc<ModelProfile>,
}

impl fmt::Debug for DeviceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceTarget")
            .field("name", &self.name)
            .field("room", &self.room)
            .field("addr", &self.addr)
            .field("did", &self.did)
            .field("model", &self.profile.model)
            .finish_non_exhaustive()
    }
}

impl DeviceTarget {
    /// Its token (redacted in `Debug`/`Display`), for a socket of its own
    /// such as a push subscription.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// A registered device.
    pub fn from_entry(entry: &DeviceEntry, catalog: &ModelCatalog) -> Self {
        DeviceTarget {
            name: entry.name.clone(),
            room: entry.room.clone(),
            addr: entry.addr(),
            did: entry.did,
            token: entry.token,
            profile: catalog.profile(entry.model.as_deref()),
        }
    }

    /// A device given by address and token on the command line.
    pub fn ad_hoc(
        addr: SocketAddr,
        token: Token,
        model: Option<&str>,
        catalog: &ModelCatalog,
    ) -> Self {
        DeviceTarget {
            name: addr.to_string(),
            room: None,
            addr,
            did: None,
            token,
            profile: catalog.profile(model),
        }
    }

    /// A device known only by its cloud did (not in the registry, no
    /// address or token): usable through the cloud route only.
    pub fn cloud_only(did: &str, model: Option<&str>, catalog: &ModelCatalog) -> Self {
        DeviceTarget {
            name: format!("did {did}"),
            room: None,
            addr: SocketAddr::from(([0, 0, 0, 0], mijia_proto::miio::DEFAULT_PORT)),
            did: did.parse().ok(),
            token: Token::from_bytes([0; 16]),
            profile: catalog.profile(model),
        }
    }

    /// Whether the device has a LAN address (see [`cloud_only`](Self::cloud_only)).
    pub fn has_address(&self) -> bool {
        !self.addr.ip().is_unspecified()
    }

    /// The model, when known.
    pub fn model(&self) -> Option<&str> {
        self.profile.model.as_deref()
    }

    /// The key its state is stored under.
    pub fn key(&self) -> DeviceKey {
        match self.did {
            Some(d) => DeviceKey::Did(d),
            None => DeviceKey::Ip(self.addr.ip()),
        }
    }

    /// Opens the socket; the device talks over the local route (see
    /// [`Device::with_route`] for the cloud). Must be called inside a
    /// tokio runtime.
    pub fn connect(
        self,
        config: ClientConfig,
        ids: Option<Arc<dyn IdStore>>,
    ) -> Result<Device, DeviceOpError> {
        let miio = Arc::new(match self.did {
            Some(did) => MiioDevice::with_did(self.addr, self.token, did, config, ids)?,
            None => MiioDevice::new(self.addr, self.token, config, ids)?,
        });
        let route: Arc<dyn MiotRoute> = Arc::clone(&miio) as Arc<dyn MiotRoute>;
        Ok(Device {
            target: self,
            miio,
            route,
        })
    }
}

// ------------------------------------------------------------------- device

/// A connected device, addressed by names, over one route.
pub struct Device {
    target: DeviceTarget,
    miio: Arc<MiioDevice>,
    route: Arc<dyn MiotRoute>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("target", &self.target)
            .field("route", &self.route.route())
            .finish_non_exhaustive()
    }
}

impl Device {
    /// The same device over another route, e.g. a
    /// [`CloudDeviceRoute`](crate::cloud::CloudDeviceRoute). Every call
    /// after this goes through `route`; results and errors have the same
    /// shape as on the local route.
    pub fn with_route(mut self, route: Arc<dyn MiotRoute>) -> Device {
        self.route = route;
        self
    }

    /// The route calls go through.
    pub fn route(&self) -> Route {
        self.route.route()
    }

    /// Who it is.
    pub fn target(&self) -> &DeviceTarget {
        &self.target
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.target.name
    }

    /// Its model profile.
    pub fn profile(&self) -> &ModelProfile {
        &self.target.profile
    }

    /// The local transport handle (for callers that need the raw client,
    /// e.g. push subscriptions). It is there whatever the route; calls
    /// through the facade use [`route`](Self::route).
    pub fn miio(&self) -> &MiioDevice {
        &self.miio
    }

    /// `miIO.info` and the device id (from the handshake on the local
    /// route, else from the target).
    pub async fn info(&self) -> Result<(DeviceInfo, Option<u64>), DeviceOpError> {
        let info = self.route.info().await?;
        let did = match self.route() {
            Route::Local => self.miio.did().await.or(self.target.did),
            Route::Cloud { .. } => self.target.did,
        };
        Ok((info, did))
    }

    /// Every readable property, read in one batched `get_properties`
    /// (legacy: `get_prop` batches and status getters). Legacy properties
    /// the device did not report (`""`/`null`, or a getter it lacks) are
    /// left out, unless none was reported at all.
    pub async fn status(&self) -> Result<Vec<PropReading>, DeviceOpError> {
        let plan = self.profile().plan_status()?;
        let legacy = self.profile().legacy().is_some();
        let out = self.read(&plan).await?;
        if legacy && out.iter().any(PropReading::is_ok) {
            return Ok(out
                .into_iter()
                .filter(|r| r.code != PropResult::MISSING)
                .collect());
        }
        Ok(out)
    }

    /// The named properties (names or `siid.piid`), in the order asked.
    /// Every name is resolved before anything is sent.
    pub async fn get(&self, names: &[&str]) -> Result<Vec<PropReading>, DeviceOpError> {
        let plan = self.profile().plan_get(names)?;
        self.read(&plan).await
    }

    /// Writes `name=value` pairs: all are resolved, parsed and checked
    /// first; MIoT properties go in one `set_properties` request (legacy:
    /// one setter call each), then the written properties are read back in
    /// one request and included.
    ///
    /// A refused write is a per-property result. A transport failure is an
    /// error; for legacy devices, setters sent before it may have been
    /// applied. A failed read-back is reported in each `after`.
    pub async fn set(&self, pairs: &[(&str, &str)]) -> Result<Vec<SetResult>, DeviceOpError> {
        let plan = self.profile().plan_set(pairs)?;
        let mut results: Vec<SetResult> = Vec::with_capacity(plan.len());
        if self.profile().legacy().is_some() {
            for w in &plan {
                results.push(self.legacy_write(w).await?);
            }
        } else {
            let items: Vec<(PropId, Value)> = plan
                .iter()
                .filter_map(|w| match &w.prop {
                    ResolvedProp::Miot { id, .. } => Some((*id, w.value.clone())),
                    ResolvedProp::Legacy(_) => None,
                })
                .collect();
            let codes = self.route.set_properties(&items).await?;
            for (w, r) in plan.iter().zip(codes) {
                let ok = r.is_success();
                results.push(SetResult {
                    name: w.prop.name().to_string(),
                    addr: w.prop.addr(),
                    requested: w.value.clone(),
                    requested_display: w.display.clone(),
                    code: r.code,
                    error: (!ok).then(|| format!("{} ({})", r.meaning(), r.code)),
                    after: None,
                });
            }
        }
        // Read back what can be read, in one request.
        let readable: Vec<ResolvedProp> = plan
            .iter()
            .map(|w| w.prop.clone())
            .filter(|p| match p {
                ResolvedProp::Miot { id, .. } => {
                    self.profile().property(*id).is_none_or(|p| p.access.read)
                }
                ResolvedProp::Legacy(_) => true,
            })
            .collect();
        if readable.is_empty() {
            return Ok(results);
        }
        match self.read(&readable).await {
            Ok(readings) => {
                for reading in readings {
                    if let Some(r) = results.iter_mut().find(|r| r.addr == reading.addr) {
                        r.after = Some(reading);
                    }
                }
            }
            Err(e) => {
                // The writes happened; say that the read-back failed.
                let err = format!("read-back failed: {e}");
                for r in &mut results {
                    if readable.iter().any(|p| p.addr() == r.addr) {
                        r.after = Some(PropReading {
                            name: r.name.clone(),
                            addr: r.addr.clone(),
                            value: None,
                            display: err.clone(),
                            unit: None,
                            code: PropResult::MISSING,
                            error: Some(err.clone()),
                        });
                    }
                }
            }
        }
        Ok(results)
    }

    /// Runs an action (MIoT `action`, or a legacy command such as
    /// `app_start`) after checking its arguments.
    pub async fn action(
        &self,
        name: &str,
        args: &[String],
    ) -> Result<ActionOutcome, DeviceOpError> {
        match self.profile().plan_action(name, args)? {
            ActionPlan::Miot {
                name,
                siid,
                aiid,
                ins,
            } => {
                let r = self.route.action(siid, aiid, ins).await?;
                let ok = PropCode(r.code).is_success();
                let out = self.action_outputs(siid, aiid, &r.out);
                Ok(ActionOutcome {
                    name,
                    id: format!("{siid}.{aiid}"),
                    code: r.code,
                    error: (!ok).then(|| format!("{} ({})", PropCode(r.code).meaning(), r.code)),
                    out,
                })
            }
            ActionPlan::Legacy { action, params } => {
                let result = self.legacy_call(action.method, params).await?;
                let (code, error, out) = match &result {
                    Ok(v) if legacy::reply_is_ok(v) => (0, None, Vec::new()),
                    Ok(Value::String(s)) if s == "unknown_method" => (
                        -32601,
                        Some(format!("the device does not know `{}`", action.method)),
                        Vec::new(),
                    ),
                    Ok(v) => (
                        0,
                        None,
                        vec![ActionOut {
                            name: "result".into(),
                            value: v.clone(),
                            display: plain_display(v),
                        }],
                    ),
                    Err((code, msg)) => (*code, Some(msg.clone()), Vec::new()),
                };
                Ok(ActionOutcome {
                    name: action.name.to_string(),
                    id: action.method.to_string(),
                    code,
                    error,
                    out,
                })
            }
        }
    }

    /// Any method with any params; returns the `result`.
    pub async fn raw(&self, method: &str, params: Value) -> Result<Value, DeviceOpError> {
        Ok(self.route.raw(method, params).await?)
    }

    /// Asks the device for its model (`miIO.info`), for `device add`
    /// without `--model`.
    pub async fn detect_model(&self) -> Result<DetectedModel, DeviceOpError> {
        let (info, did) = self.info().await?;
        let model = info
            .model
            .clone()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .ok_or(DeviceOpError::NoModel)?;
        Ok(DetectedModel { model, did, info })
    }

    /// Reads resolved properties: one batched `get_properties` for MIoT,
    /// the read plan for legacy. Results in the order given.
    async fn read(&self, props: &[ResolvedProp]) -> Result<Vec<PropReading>, DeviceOpError> {
        let mut miot: Vec<(usize, PropId)> = Vec::new();
        let mut leg: Vec<(usize, &'static LegacyProp)> = Vec::new();
        for (i, p) in props.iter().enumerate() {
            match p {
                ResolvedProp::Miot { id, .. } => miot.push((i, *id)),
                ResolvedProp::Legacy(l) => leg.push((i, l)),
            }
        }
        let mut out: Vec<Option<PropReading>> = vec![None; props.len()];
        if !miot.is_empty() {
            let ids: Vec<PropId> = miot.iter().map(|(_, id)| *id).collect();
            let results = self.route.get_properties(&ids).await?;
            for ((i, _), r) in miot.iter().zip(results) {
                if let (Some(slot), Some(p)) = (out.get_mut(*i), props.get(*i)) {
                    *slot = Some(self.profile().miot_reading(p.name(), &r));
                }
            }
        }
        if let (false, Some(table)) = (leg.is_empty(), self.profile().legacy()) {
            let wanted: Vec<&LegacyProp> = leg.iter().map(|(_, p)| *p).collect();
            let (raw, failed) = self.legacy_read(table, &wanted).await?;
            for (i, p) in &leg {
                if let Some(slot) = out.get_mut(*i) {
                    *slot = Some(legacy_reading(p, &raw, &failed));
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// A legacy call whose device errors are data (`Err((code, message))`)
    /// and whose transport failures are errors.
    async fn legacy_call(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, (i64, String)>, DeviceOpError> {
        match self.route.raw(method, params).await {
            Ok(v) => Ok(Ok(v)),
            Err(RouteError::Local(e)) => match e.device_error() {
                Some(d) => Ok(Err((d.code, d.to_string()))),
                None => Err(e.into()),
            },
            // The cloud relays the device's own error code.
            Err(RouteError::Cloud(CloudError::Api { code, message, .. })) => {
                let text = if message.trim().is_empty() {
                    format!("code {code} ({})", PropCode(code).meaning())
                } else {
                    format!("code {code}: {}", message.trim())
                };
                Ok(Err((code, text)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs a legacy read plan. Device errors and unusable replies fail
    /// only the properties they concern (listed in the second value).
    async fn legacy_read(
        &self,
        table: &LegacyModel,
        props: &[&LegacyProp],
    ) -> Result<(RawValues, Vec<(&'static str, String)>), DeviceOpError> {
        let mut raw = RawValues::default();
        let mut failed: Vec<(&'static str, String)> = Vec::new();
        for call in table.read_plan(props) {
            let result = match self.legacy_call(call.method, call.params()).await? {
                Ok(v) => v,
                Err((_, msg)) => {
                    failed.push((call.method, msg));
                    continue;
                }
            };
            match raw.absorb(&call, &result) {
                Ok(()) => {}
                Err(ReplyError::CountMismatch { .. }) => {
                    // Firmware that drops names it lacks: ask one by one.
                    for name in &call.names {
                        let single = ReadCall {
                            method: "get_prop",
                            names: vec![*name],
                        };
                        if let Ok(v) = self.legacy_call("get_prop", single.params()).await? {
                            let _ = raw.absorb(&single, &v);
                        }
                    }
                }
                Err(e) => failed.push((call.method, e.to_string())),
            }
        }
        Ok((raw, failed))
    }

    async fn legacy_write(&self, w: &PlannedWrite) -> Result<SetResult, DeviceOpError> {
        let ResolvedProp::Legacy(p) = &w.prop else {
            return Err(DeviceOpError::Usage(format!(
                "{} is not a property of this legacy device",
                w.prop.name()
            )));
        };
        let Some((method, params)) = p.encode_set(&w.value) else {
            return Err(LegacyValueError::ReadOnly {
                name: p.name.to_string(),
                model: self.profile().label(),
            }
            .into());
        };
        let (code, error) = match self.legacy_call(method, params).await? {
            Ok(v) if legacy::reply_is_ok(&v) => (0, None),
            Ok(v) => (
                LEGACY_NOT_OK,
                Some(format!("`{method}` answered {v} instead of \"ok\"")),
            ),
            Err((code, msg)) => (code, Some(msg)),
        };
        Ok(SetResult {
            name: p.name.to_string(),
            addr: w.prop.addr(),
            requested: w.value.clone(),
            requested_display: w.display.clone(),
            code,
            error,
            after: None,
        })
    }

    fn action_outputs(&self, siid: u32, aiid: u32, out: &[Value]) -> Vec<ActionOut> {
        let spec = self.profile().spec();
        let names = match &self.profile().kind {
            ProfileKind::Miot { names, .. } => Some(names),
            _ => None,
        };
        let outs: Vec<u32> = spec
            .and_then(|s| s.action(siid, aiid))
            .map(|a| a.outs.clone())
            .unwrap_or_default();
        out.iter()
            .enumerate()
            .map(|(i, item)| {
                // Some firmware sends `{"piid": 5, "value": …}` items.
                let (piid, v) = match item {
                    Value::Object(o) => match (
                        o.get("piid")
                            .and_then(Value::as_u64)
                            .and_then(|p| u32::try_from(p).ok()),
                        o.get("value"),
                    ) {
                        (Some(p), Some(v)) => (Some(p), v),
                        _ => (outs.get(i).copied(), item),
                    },
                    _ => (outs.get(i).copied(), item),
                };
                let prop = piid.and_then(|p| spec.and_then(|s| s.property(siid, p)));
                let name = piid
                    .and_then(|p| {
                        names
                            .and_then(|n| n.property_name(siid, p))
                            .map(str::to_string)
                    })
                    .or_else(|| piid.map(|p| format!("{siid}.{p}")))
                    .unwrap_or_else(|| format!("out[{}]", i + 1));
                let (value, display) = match prop {
                    Some(p) => (p.decode_wire(v), p.display_value(v)),
                    None => (v.clone(), plain_display(v)),
                };
                ActionOut {
                    name,
                    value,
                    display,
                }
            })
            .collect()
    }
}

fn legacy_reading(
    p: &LegacyProp,
    raw: &RawValues,
    failed: &[(&'static str, String)],
) -> PropReading {
    let addr = PropAddr::Legacy {
        key: p.source.key(),
    };
    let unit = p.unit.map(str::to_string);
    match raw.get(p) {
        Some(v) => {
            let value = p.decode(v);
            PropReading {
                name: p.name.to_string(),
                addr,
                display: p.display(&value),
                value: Some(value),
                unit,
                code: 0,
                error: None,
            }
        }
        None => {
            let method = match p.source {
                legacy::Source::Prop(_) => "get_prop",
                legacy::Source::Field { method, .. } | legacy::Source::Index { method, .. } => {
                    method
                }
            };
            let err = failed.iter().find(|(m, _)| *m == method).map_or_else(
                || "the device did not report it".to_string(),
                |(_, e)| e.clone(),
            );
            PropReading {
                name: p.name.to_string(),
                addr,
                value: None,
                display: err.clone(),
                unit,
                code: PropResult::MISSING,
                error: Some(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn catalog() -> ModelCatalog {
        ModelCatalog::new(SpecStore::new())
    }

    fn token() -> Token {
        "00112233445566778899aabbccddeeff".parse().unwrap()
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn profiles_are_shared_and_prefer_specs() {
        let c = catalog();
        let a = c.profile(Some("yeelink.light.color1"));
        let b = c.profile(Some(" Yeelink.Light.Color1 "));
        assert!(Arc::ptr_eq(&a, &b));
        // The bundled MIoT spec wins over the yeelink legacy table.
        assert!(a.spec().is_some() && a.legacy().is_none());
        assert!(c.profile(Some("yeelink.light.mono1")).legacy().is_some());
        assert!(matches!(
            c.profile(Some("acme.x.y")).kind,
            ProfileKind::Unknown
        ));
        assert!(matches!(c.profile(None).kind, ProfileKind::Unknown));
        assert!(matches!(c.profile(Some("")).kind, ProfileKind::Unknown));
    }

    #[test]
    fn names_resolve_and_values_are_checked_without_io() {
        let c = catalog();
        let p = c.profile(Some("yeelink.light.color1"));
        let got = p
            .plan_get(&[
                "light.brightness",
                "brightness",
                "2.1",
                "Light.Color_Temperature",
            ])
            .unwrap();
        let names: Vec<&str> = got.iter().map(ResolvedProp::name).collect();
        assert_eq!(
            names,
            vec!["light.brightness", "light.on", "light.color-temperature"]
        );
        assert_eq!(got[1].addr().to_string(), "2.1");

        let e = p.plan_get(&["light.brigthness"]).unwrap_err();
        assert!(e.is_validation());
        assert!(
            e.to_string().contains("did you mean: light.brightness"),
            "{e}"
        );
        let e = p.plan_get(&["9.9"]).unwrap_err();
        assert!(
            matches!(e, DeviceOpError::Name(NameError::NoSuchIid { .. })),
            "{e}"
        );
        assert!(matches!(p.plan_get(&[]), Err(DeviceOpError::Usage(_))));

        let w = p
            .plan_set(&[("brightness", "40"), ("light.on", "off")])
            .unwrap();
        assert_eq!(w[0].value, serde_json::json!(40));
        assert_eq!(w[0].display, "40 %");
        assert_eq!(w[1].value, serde_json::json!(false));
        for b in ["on", "TRUE", "1", "yes"] {
            let w = p.plan_set(&[("light.on", b)]).unwrap();
            assert_eq!(w[0].value, serde_json::json!(true), "{b}");
        }
        let e = p.plan_set(&[("brightness", "0")]).unwrap_err();
        assert!(e.to_string().contains("between 1 and 100"), "{e}");
        let e = p.plan_set(&[("light.on", "maybe")]).unwrap_err();
        assert!(
            matches!(e, DeviceOpError::Value(ValueError::WrongType { .. })),
            "{e}"
        );
        let e = p
            .plan_set(&[("brightness", "40"), ("2.2", "50")])
            .unwrap_err();
        assert!(matches!(e, DeviceOpError::Usage(_)), "{e}");
        let e = p
            .plan_set(&[("device-information.model", "x")])
            .unwrap_err();
        assert!(
            matches!(e, DeviceOpError::Value(ValueError::NotWritable { .. })),
            "{e}"
        );

        // Value-list entries by description, ignoring case.
        let mb3 = c.profile(Some("zhimi.airpurifier.mb3"));
        for text in ["sleep", "SLEEP", "1"] {
            let w = mb3.plan_set(&[("air-purifier.mode", text)]).unwrap();
            assert_eq!(w[0].value, serde_json::json!(1));
            assert_eq!(w[0].display, "1 (Sleep)");
        }
        let e = mb3.plan_set(&[("mode", "turbo")]).unwrap_err();
        assert!(e.to_string().contains("1 (Sleep)"), "{e}");
    }

    #[test]
    fn action_args_by_position_or_name() {
        let c = catalog();
        let p = c.profile(Some("lumi.acpartner.mcn02"));
        let act = "set-ac-model";
        let ins = |plan: ActionPlan| match plan {
            ActionPlan::Miot {
                ins, siid, aiid, ..
            } => {
                assert_eq!((siid, aiid), (4, 1));
                ins
            }
            other => panic!("{other:?}"),
        };
        let by_pos = p.plan_action(act, &args(&["5", "7", "stateful"])).unwrap();
        assert_eq!(
            ins(by_pos),
            vec![
                serde_json::json!(5),
                serde_json::json!(7),
                serde_json::json!(1)
            ]
        );
        let by_name = p
            .plan_action(
                act,
                &args(&["ac-type=Stateless", "brand_id=5", "6=0", "remote-id=7"]),
            )
            .unwrap_err();
        // piid 6 is ac-type too: given twice.
        assert!(
            matches!(
                by_name,
                DeviceOpError::Value(ValueError::AmbiguousArg { .. })
            ),
            "{by_name}"
        );
        let by_name = p
            .plan_action(act, &args(&["ac-type=Stateless", "brand_id=5", "5=7"]))
            .unwrap();
        assert_eq!(
            ins(by_name),
            vec![
                serde_json::json!(5),
                serde_json::json!(7),
                serde_json::json!(0)
            ]
        );
        let full = p
            .plan_action(
                act,
                &args(&[
                    "air-condition-outlet-matching.brand-id=1",
                    "remote-id=2",
                    "ac-type=0",
                ]),
            )
            .unwrap();
        assert_eq!(
            ins(full),
            vec![
                serde_json::json!(1),
                serde_json::json!(2),
                serde_json::json!(0)
            ]
        );

        let e = p
            .plan_action(act, &args(&["brand-id=5", "7", "0"]))
            .unwrap_err();
        assert!(matches!(e, DeviceOpError::Usage(_)), "{e}");
        let e = p
            .plan_action(act, &args(&["brand-id=5", "remote-id=7", "colour=1"]))
            .unwrap_err();
        assert!(
            matches!(e, DeviceOpError::Value(ValueError::UnknownArg { .. })),
            "{e}"
        );
        let e = p
            .plan_action(act, &args(&["brand-id=5", "remote-id=7"]))
            .unwrap_err();
        assert!(e.to_string().contains("missing argument 'ac-type'"), "{e}");
        let e = p.plan_action(act, &args(&["5", "7"])).unwrap_err();
        assert!(
            matches!(e, DeviceOpError::Value(ValueError::ArgCount { .. })),
            "{e}"
        );
        let e = p
            .plan_action(act, &args(&["5", "7", "sideways"]))
            .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "argument 3 of air-condition-outlet-matching.set-ac-model: ac-type must be one \
                 of: 0 (Stateless), 1 (Stateful)"
            ),
            "{e}"
        );
        let e = p.plan_action(act, &args(&["-5", "7", "0"])).unwrap_err();
        assert!(e.to_string().contains("between 1"), "{e}");
        let e = p.plan_action("set-ac-mdoel", &[]).unwrap_err();
        assert!(e.to_string().contains("did you mean"), "{e}");
    }

    #[test]
    fn readings_serialize_flat() {
        let r = PropReading {
            name: "light.brightness".into(),
            addr: PropAddr::Miot { siid: 2, piid: 2 },
            value: Some(serde_json::json!(40)),
            display: "40 %".into(),
            unit: Some("%".into()),
            code: 0,
            error: None,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"name": "light.brightness", "siid": 2, "piid": 2, "value": 40,
                "display": "40 %", "unit": "%", "code": 0, "error": null})
        );
        let l = PropReading {
            addr: PropAddr::Legacy {
                key: "bright".into(),
            },
            ..r
        };
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["key"], "bright");
        assert!(v.get("siid").is_none());
    }

    #[test]
    fn unknown_models_take_numeric_ids_and_json_values() {
        let c = catalog();
        let p = c.profile(None);
        assert_eq!(p.plan_get(&["2.1"]).unwrap()[0].name(), "2.1");
        let e = p.plan_get(&["light.on"]).unwrap_err();
        assert!(e.to_string().contains("mijia spec import"), "{e}");
        assert!(e.to_string().contains("model is unknown"), "{e}");
        let e = c.profile(Some("acme.x.y")).plan_status().unwrap_err();
        assert!(e.to_string().contains("no spec for model acme.x.y"), "{e}");
        let w = p
            .plan_set(&[("2.1", "true"), ("2.2", "40"), ("2.3", "hello")])
            .unwrap();
        let values: Vec<Value> = w.iter().map(|w| w.value.clone()).collect();
        assert_eq!(
            values,
            vec![
                serde_json::json!(true),
                serde_json::json!(40),
                serde_json::json!("hello")
            ]
        );
        match p.plan_action("5.1", &args(&["1", "x"])).unwrap() {
            ActionPlan::Miot {
                siid, aiid, ins, ..
            } => {
                assert_eq!((siid, aiid), (5, 1));
                assert_eq!(ins, vec![serde_json::json!(1), serde_json::json!("x")]);
            }
            other => panic!("{other:?}"),
        }
        assert!(p.plan_action("start", &[]).is_err());
    }

    #[test]
    fn legacy_profiles_plan_by_name() {
        let c = catalog();
        let mono = c.profile(Some("yeelink.light.mono1"));
        let got = mono.plan_get(&["brightness", "power", "bright"]).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].addr().to_string(), "bright");
        let e = mono.plan_set(&[("brightness", "101")]).unwrap_err();
        assert!(
            e.is_validation() && e.to_string().contains("between 1 and 100"),
            "{e}"
        );
        let w = mono
            .plan_set(&[("power", "on"), ("brightness", "40")])
            .unwrap();
        assert_eq!(w[1].display, "40 %");
        let e = mono.plan_set(&[("flowing", "on")]).unwrap_err();
        assert!(e.to_string().contains("cannot be written"), "{e}");
        assert!(matches!(
            mono.plan_action("toggle", &[]).unwrap(),
            ActionPlan::Legacy { .. }
        ));
        let vac = c.profile(Some("roborock.vacuum.s5"));
        match vac.plan_action("dock", &[]).unwrap() {
            ActionPlan::Legacy { action, params } => {
                assert_eq!(
                    (action.method, params),
                    ("app_charge", serde_json::json!([]))
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(vac.plan_status().unwrap().len(), 14);
    }

    /// A loopback socket that receives and never answers.
    async fn silent() -> tokio::net::UdpSocket {
        tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    fn quick() -> ClientConfig {
        ClientConfig {
            timeout: Duration::from_millis(150),
            retries: 0,
            handshake_timeout: Duration::from_millis(150),
            hello_attempts: 1,
            ..ClientConfig::default()
        }
    }

    #[tokio::test]
    async fn validation_errors_come_before_any_packet() {
        let sock = silent().await;
        let addr = sock.local_addr().unwrap();
        let c = catalog();
        let dev = DeviceTarget::ad_hoc(addr, token(), Some("yeelink.light.color1"), &c)
            .connect(quick(), None)
            .unwrap();
        let start = Instant::now();
        let errs = [
            dev.get(&["brightness", "light.brigthness"])
                .await
                .unwrap_err(),
            dev.set(&[("brightness", "40"), ("brightness-x", "1")])
                .await
                .unwrap_err(),
            dev.set(&[("light.on", "on"), ("brightness", "500")])
                .await
                .unwrap_err(),
            dev.action("light.toggle", &args(&["1"])).await.unwrap_err(),
        ];
        for e in &errs {
            assert!(e.is_validation() && !e.is_timeout(), "{e}");
        }
        assert!(matches!(errs[0], DeviceOpError::Name(_)));
        assert!(matches!(errs[2], DeviceOpError::Value(_)));
        assert!(start.elapsed() < Duration::from_millis(100));
        let mut buf = [0u8; 64];
        assert!(sock.try_recv_from(&mut buf).is_err(), "a packet was sent");

        // The control: a valid request does reach the (silent) device and
        // times out, so the errors above really were found before IO.
        let e = dev.get(&["brightness"]).await.unwrap_err();
        assert!(e.is_timeout(), "{e}");
        assert!(sock.try_recv_from(&mut buf).is_ok());
    }

    /// Against simulated devices on loopback (the `demo` feature brings in
    /// the simulator).
    #[cfg(feature = "demo")]
    mod live {
        use super::*;
        use fake_device::{DeviceConfig, Fleet, FleetConfig};
        use serde_json::json;

        async fn fleet(models: &[(&str, &str)]) -> Fleet {
            let devices = models
                .iter()
                .zip(1u64..)
                .map(|((name, model), did)| {
                    let mut d = DeviceConfig::new(
                        *name,
                        *model,
                        700_000 + did,
                        "127.0.0.1:0".parse().unwrap(),
                    );
                    d.token = Some(token());
                    d
                })
                .collect();
            Fleet::start(FleetConfig { devices }).await.unwrap()
        }

        fn connect(f: &Fleet, name: &str, c: &ModelCatalog) -> Device {
            let info = f.device(name).unwrap().info();
            let mut e = DeviceEntry::new(name, info.addr.ip(), info.token);
            e.port = Some(info.addr.port());
            e.model = Some(info.model.clone());
            DeviceTarget::from_entry(&e, c)
                .connect(ClientConfig::default(), None)
                .unwrap()
        }

        fn find<'a>(rs: &'a [PropReading], name: &str) -> &'a PropReading {
            rs.iter()
                .find(|r| r.name == name)
                .unwrap_or_else(|| panic!("no {name} in {rs:#?}"))
        }

        #[tokio::test]
        async fn miot_status_get_set_action() {
            let f = fleet(&[
                ("lamp", "yeelink.light.color1"),
                ("purifier", "zhimi.airpurifier.mb3"),
            ])
            .await;
            let c = catalog();
            let lamp = connect(&f, "lamp", &c);

            let detected = lamp.detect_model().await.unwrap();
            assert_eq!(detected.model, "yeelink.light.color1");
            assert_eq!(detected.did, Some(700_001));

            let status = lamp.status().await.unwrap();
            let readable = c
                .profile(Some("yeelink.light.color1"))
                .plan_status()
                .unwrap()
                .len();
            assert_eq!(status.len(), readable);
            assert!(status.iter().all(PropReading::is_ok), "{status:#?}");
            let b = find(&status, "light.brightness");
            assert_eq!(b.unit.as_deref(), Some("%"));
            assert!(b.display.ends_with(" %"), "{}", b.display);

            let set = lamp
                .set(&[("brightness", "40"), ("light.on", "on")])
                .await
                .unwrap();
            assert!(set.iter().all(SetResult::is_ok), "{set:#?}");
            let after = set[0].after.as_ref().unwrap();
            assert_eq!(
                (after.value.clone(), after.display.as_str()),
                (Some(json!(40)), "40 %")
            );
            assert_eq!(set[1].after.as_ref().unwrap().value, Some(json!(true)));
            assert_eq!(f.device("lamp").unwrap().value(2, 2), Some(json!(40)));

            let got = lamp.get(&["2.2", "light.on"]).await.unwrap();
            assert_eq!(got[0].value, Some(json!(40)));
            assert_eq!(got[1].display, "on");

            let out = lamp.action("toggle", &[]).await.unwrap();
            assert_eq!(
                (out.code, out.id.as_str(), out.error.as_deref()),
                (0, "2.1", None)
            );
            assert_eq!(f.device("lamp").unwrap().value(2, 1), Some(json!(false)));

            let purifier = connect(&f, "purifier", &c);
            let set = purifier
                .set(&[("air-purifier.mode", "sleep")])
                .await
                .unwrap();
            assert_eq!(set[0].after.as_ref().unwrap().display, "1 (Sleep)");
        }

        #[tokio::test]
        async fn legacy_status_get_set_action() {
            let f = fleet(&[
                ("mono", "yeelink.light.mono1"),
                ("plug", "chuangmi.plug.m1"),
            ])
            .await;
            let c = catalog();
            let mono = connect(&f, "mono", &c);
            let status = mono.status().await.unwrap();
            assert_eq!(find(&status, "power").value, Some(json!(false)));
            let b = find(&status, "brightness");
            assert_eq!(
                (b.value.clone(), b.display.as_str()),
                (Some(json!(100)), "100 %")
            );
            assert_eq!(
                b.addr,
                PropAddr::Legacy {
                    key: "bright".into()
                }
            );

            let set = mono
                .set(&[("power", "on"), ("bright", "40")])
                .await
                .unwrap();
            assert!(set.iter().all(SetResult::is_ok), "{set:#?}");
            assert_eq!(set[0].after.as_ref().unwrap().value, Some(json!(true)));
            assert_eq!(set[1].after.as_ref().unwrap().display, "40 %");
            let h = f.device("mono").unwrap();
            assert_eq!(h.legacy_value("power"), Some(json!("on")));

            let out = mono.action("toggle", &[]).await.unwrap();
            assert_eq!((out.code, out.id.as_str()), (0, "toggle"));
            assert_eq!(h.legacy_value("power"), Some(json!("off")));
            let got = mono.get(&["power", "name"]).await.unwrap();
            assert_eq!(got[0].display, "off");
            // The lamp answers "" for an unset name: not reported.
            assert_eq!(got[1].code, PropResult::MISSING);

            let plug = connect(&f, "plug", &c);
            let status = plug.status().await.unwrap();
            let t = find(&status, "temperature");
            assert_eq!(t.display, "32 °C");
            let set = plug.set(&[("power", "on")]).await.unwrap();
            assert_eq!(set[0].after.as_ref().unwrap().display, "on");
            assert_eq!(
                f.device("plug").unwrap().legacy_value("power"),
                Some(json!("on"))
            );
            let raw = plug.raw("get_prop", json!(["power"])).await.unwrap();
            assert_eq!(raw, json!(["on"]));
        }
    }
}
