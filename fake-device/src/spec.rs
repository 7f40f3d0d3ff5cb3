//! The MIoT spec view the simulator needs: per-property format, access,
//! range and value list; per-action `in`/`out` piids; value checks and
//! plausible defaults.
//!
//! The spec documents are the real ones bundled in `proto/specs/` (one file
//! per model). They are parsed once per process and shared between all
//! devices of a model, so a thousand simulated devices cost one parse per
//! model, not per device.
//!
//! This module does not fetch specs, does not name things and does not
//! implement the full spec model: it is a small private adapter that reads
//! only what a device needs to answer `get_properties`, `set_properties` and
//! `action`. Unknown formats pass values through unchecked.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use serde_json::Value;

macro_rules! bundled {
    ($($model:literal),* $(,)?) => {
        &[$(($model, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/specs/", $model, ".json")))),*]
    };
}

/// The bundled spec documents: `(model, JSON text)`.
const BUNDLED: &[(&str, &str)] = bundled![
    "chuangmi.camera.ipc019",
    "chuangmi.plug.212a01",
    "dmaker.fan.p9",
    "dreame.vacuum.p2009",
    "lumi.acpartner.mcn02",
    "lumi.curtain.hagl05",
    "lumi.gateway.mgl03",
    "lumi.lock.mcn01",
    "lumi.switch.b2lacn02",
    "miaomiaoce.sensor_ht.t2",
    "philips.light.bulb",
    "viomi.washer.v13",
    "viomi.waterheater.e1",
    "xiaomi.aircondition.ma2",
    "xiaomi.wifispeaker.lx06",
    "yeelink.bhf_light.v5",
    "yeelink.light.color1",
    "yeelink.light.meshbulb1",
    "yeelink.switch.sw1",
    "yunmi.kettle.r1",
    "zhimi.airpurifier.mb3",
    "zhimi.fan.za4",
    "zhimi.heater.mc2",
    "zhimi.humidifier.ca4",
];

/// A property's value format (only what the checks need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fmt {
    Bool,
    Int { min: i64, max: i64 },
    Float,
    Str,
    Hex,
    Unknown,
}

impl Fmt {
    fn parse(s: &str) -> Fmt {
        match s {
            "bool" => Fmt::Bool,
            "uint8" => Fmt::Int { min: 0, max: 255 },
            "uint16" => Fmt::Int {
                min: 0,
                max: 65_535,
            },
            "uint32" => Fmt::Int {
                min: 0,
                max: i64::from(u32::MAX),
            },
            "int8" => Fmt::Int {
                min: -128,
                max: 127,
            },
            "int16" => Fmt::Int {
                min: -32_768,
                max: 32_767,
            },
            "int32" => Fmt::Int {
                min: i64::from(i32::MIN),
                max: i64::from(i32::MAX),
            },
            "int64" => Fmt::Int {
                min: i64::MIN,
                max: i64::MAX,
            },
            "float" => Fmt::Float,
            "string" => Fmt::Str,
            "hex" => Fmt::Hex,
            _ => Fmt::Unknown,
        }
    }
}

/// One property.
#[derive(Debug, Clone)]
pub(crate) struct PropDef {
    /// Type name from the URN (`on`, `brightness`, …).
    pub name: String,
    /// Name of the owning service (`light`, `device-information`, …).
    pub service: String,
    pub fmt: Fmt,
    pub read: bool,
    pub write: bool,
    pub notify: bool,
    /// `(min, max, step)`.
    pub range: Option<(f64, f64, f64)>,
    /// Allowed values of a value-list, empty if none.
    pub list: Vec<i64>,
}

/// One action.
#[derive(Debug, Clone)]
pub(crate) struct ActionDef {
    pub name: String,
    pub ins: Vec<u32>,
    pub outs: Vec<u32>,
}

/// What the simulator knows about one model's spec.
#[derive(Debug)]
pub(crate) struct SimSpec {
    pub props: BTreeMap<(u32, u32), PropDef>,
    pub actions: BTreeMap<(u32, u32), ActionDef>,
}

/// Why a value was rejected (becomes `-4005`/`-4006`).
pub(crate) type CheckError = String;

impl PropDef {
    /// Check a value against format, range (with step) and value list.
    pub fn check(&self, v: &Value) -> Result<(), CheckError> {
        match self.fmt {
            Fmt::Unknown => Ok(()),
            Fmt::Bool => v
                .as_bool()
                .map(|_| ())
                .ok_or_else(|| format!("expected a bool, got {v}")),
            Fmt::Str => v
                .as_str()
                .map(|_| ())
                .ok_or_else(|| format!("expected a string, got {v}")),
            Fmt::Hex => match v.as_str() {
                Some(s) if s.chars().all(|c| c.is_ascii_hexdigit()) => Ok(()),
                _ => Err(format!("expected a hex string, got {v}")),
            },
            Fmt::Int { min, max } => {
                let n = as_integer(v).ok_or_else(|| format!("expected an integer, got {v}"))?;
                if n < min || n > max {
                    return Err(format!("{n} is outside the format bounds {min}..={max}"));
                }
                self.check_number(n as f64)
            }
            Fmt::Float => {
                let n = v
                    .as_f64()
                    .ok_or_else(|| format!("expected a number, got {v}"))?;
                self.check_number(n)
            }
        }
    }

    fn check_number(&self, n: f64) -> Result<(), CheckError> {
        if !self.list.is_empty() {
            let ok = self.list.iter().any(|x| (*x as f64 - n).abs() < 1e-9);
            return if ok {
                Ok(())
            } else {
                Err(format!("{n} is not in the value list {:?}", self.list))
            };
        }
        if let Some((min, max, step)) = self.range {
            if n < min - 1e-9 || n > max + 1e-9 {
                return Err(format!("{n} is outside the range {min}..={max}"));
            }
            if step > 0.0 && step.is_finite() {
                let k = (n - min) / step;
                if (k - k.round()).abs() > 1e-6 {
                    return Err(format!(
                        "{n} is not a multiple of the step {step} from {min}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// A plausible value for a fresh device: the first list entry, a value a
    /// quarter into the range (on a step), `false`, or an empty string.
    pub fn default_value(&self) -> Value {
        if let Some(first) = self.list.first() {
            return Value::from(*first);
        }
        match self.fmt {
            Fmt::Bool => Value::Bool(false),
            Fmt::Str | Fmt::Hex | Fmt::Unknown => Value::String(String::new()),
            Fmt::Int { min, max } => {
                let v = match self.range {
                    Some((lo, hi, step)) => quarter(lo, hi, step).round() as i64,
                    None => 0,
                };
                Value::from(v.clamp(min, max))
            }
            Fmt::Float => {
                let v = match self.range {
                    Some((lo, hi, step)) => quarter(lo, hi, step),
                    None => 0.0,
                };
                serde_json::Number::from_f64(v)
                    .map(Value::Number)
                    .unwrap_or(Value::from(0))
            }
        }
    }
}

fn quarter(lo: f64, hi: f64, step: f64) -> f64 {
    let raw = lo + (hi - lo) / 4.0;
    if step > 0.0 && step.is_finite() {
        let v = lo + ((raw - lo) / step).round() * step;
        // Keep float noise out of the wire value.
        (v * 1e6).round() / 1e6
    } else {
        raw
    }
}

/// An integer from a JSON number (an integral float counts).
pub(crate) fn as_integer(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    if let Some(n) = v.as_u64() {
        return i64::try_from(n).ok();
    }
    let f = v.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

fn urn_name(v: Option<&Value>) -> String {
    v.and_then(Value::as_str)
        .and_then(|t| t.split(':').nth(3))
        .unwrap_or("")
        .to_owned()
}

fn iid(v: &Value) -> Option<u32> {
    v.get("iid")
        .and_then(Value::as_u64)
        .and_then(|i| u32::try_from(i).ok())
}

fn piids(v: Option<&Value>) -> Vec<u32> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64().and_then(|i| u32::try_from(i).ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// Read the parts of an instance document the simulator needs. Elements
/// without a usable iid are skipped; the first of duplicate iids wins.
pub(crate) fn parse(doc: &Value) -> Option<SimSpec> {
    let services = doc.get("services")?.as_array()?;
    let mut props = BTreeMap::new();
    let mut actions = BTreeMap::new();
    for s in services {
        let Some(siid) = iid(s) else { continue };
        let sname = urn_name(s.get("type"));
        for p in s
            .get("properties")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(piid) = iid(p) else { continue };
            let access: Vec<&str> = p
                .get("access")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let range = p
                .get("value-range")
                .and_then(Value::as_array)
                .and_then(|r| {
                    Some((
                        r.first()?.as_f64()?,
                        r.get(1)?.as_f64()?,
                        r.get(2)?.as_f64()?,
                    ))
                });
            let list = p
                .get("value-list")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|i| i.get("value").and_then(Value::as_i64))
                        .collect()
                })
                .unwrap_or_default();
            props.entry((siid, piid)).or_insert(PropDef {
                name: urn_name(p.get("type")),
                service: sname.clone(),
                fmt: Fmt::parse(p.get("format").and_then(Value::as_str).unwrap_or("")),
                read: access.contains(&"read"),
                write: access.contains(&"write"),
                notify: access.contains(&"notify"),
                range,
                list,
            });
        }
        for a in s
            .get("actions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(aiid) = iid(a) else { continue };
            actions.entry((siid, aiid)).or_insert(ActionDef {
                name: urn_name(a.get("type")),
                ins: piids(a.get("in")),
                outs: piids(a.get("out")),
            });
        }
    }
    Some(SimSpec { props, actions })
}

fn cache() -> &'static HashMap<&'static str, Arc<SimSpec>> {
    static CACHE: OnceLock<HashMap<&'static str, Arc<SimSpec>>> = OnceLock::new();
    CACHE.get_or_init(|| {
        let mut m = HashMap::new();
        for (model, text) in BUNDLED {
            let parsed = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|doc| parse(&doc));
            match parsed {
                Some(spec) => {
                    m.insert(*model, Arc::new(spec));
                }
                None => tracing::warn!(model, "bundled spec could not be read; model disabled"),
            }
        }
        m
    })
}

/// The shared spec of a bundled MIoT model.
pub(crate) fn spec_for_model(model: &str) -> Option<Arc<SimSpec>> {
    cache().get(model).cloned()
}

/// The bundled MIoT models, sorted.
pub fn miot_models() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = BUNDLED.iter().map(|(m, _)| *m).collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_bundled_spec_parses() {
        for m in miot_models() {
            let s = spec_for_model(m).unwrap_or_else(|| panic!("{m}"));
            assert!(!s.props.is_empty(), "{m}");
        }
    }

    #[test]
    fn checks_and_defaults() {
        let s = spec_for_model("yeelink.light.color1").unwrap();
        let on = &s.props[&(2, 1)];
        assert!(on.check(&json!(true)).is_ok());
        assert!(on.check(&json!(1)).is_err());
        let bright = &s.props[&(2, 2)];
        assert!(bright.check(&json!(100)).is_ok());
        assert!(bright.check(&json!(0)).is_err());
        assert!(bright.check(&json!(101)).is_err());
        assert!(bright.check(&json!(50.5)).is_err());
        assert!(bright.check(&json!("50")).is_err());
        assert!(bright.check(&bright.default_value()).is_ok());
        let mode = &s.props[&(2, 5)];
        assert!(mode.check(&json!(2)).is_ok());
        assert!(mode.check(&json!(3)).is_err());
        assert_eq!(mode.default_value(), json!(1));
        for m in miot_models() {
            let s = spec_for_model(m).unwrap();
            for ((si, pi), p) in &s.props {
                if p.fmt != Fmt::Unknown {
                    assert!(
                        p.check(&p.default_value()).is_ok(),
                        "{m} {si}.{pi} default {} fails",
                        p.default_value()
                    );
                }
            }
        }
    }
}
