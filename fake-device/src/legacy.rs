//! Legacy (pre-MIoT) device vocabularies: `get_prop` with names and one
//! method per setter.
//!
//! Implemented models, after `miot-specs/legacy-miio.md`:
//!
//! - `yeelink.light.mono1`: every `get_prop` value is a string, `""` for
//!   names the lamp does not have; `set_power`, `set_bright`, `toggle`,
//!   `set_name`, `set_default`, `set_ps`; bad arguments give `-5001`.
//! - `chuangmi.plug.m1`: `get_prop ["power","temperature"]` → `["on",32]`
//!   (typed values, `null` for unknown names); `set_power`, `set_wifi_led`.
//!
//! The MIoT bridge (`2.1` = power as a bool, `2.2` = brightness or
//! temperature) lets tests and the fleet API read and change legacy state
//! with `(siid, piid)` like MIoT devices. This module keeps state only; it
//! does not encode packets.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// A supported legacy model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyModel {
    /// `yeelink.light.mono1`
    YeelightMono,
    /// `chuangmi.plug.m1`
    ChuangmiPlugM1,
}

/// An error answer: code and message.
pub type CallError = (i64, String);

const YEELIGHT_PROPS: &[&str] = &[
    "power",
    "bright",
    "name",
    "lan_ctrl",
    "save_state",
    "delayoff",
    "flowing",
    "flow_params",
    "music_on",
];

impl LegacyModel {
    /// The model for an id.
    pub fn for_model(model: &str) -> Option<LegacyModel> {
        match model {
            "yeelink.light.mono1" => Some(LegacyModel::YeelightMono),
            "chuangmi.plug.m1" => Some(LegacyModel::ChuangmiPlugM1),
            _ => None,
        }
    }

    /// Supported legacy model ids.
    pub fn models() -> &'static [&'static str] {
        &["chuangmi.plug.m1", "yeelink.light.mono1"]
    }

    /// Fresh device state.
    pub fn initial_state(self) -> BTreeMap<String, Value> {
        let pairs: Vec<(&str, Value)> = match self {
            LegacyModel::YeelightMono => vec![
                ("power", json!("off")),
                ("bright", json!(100)),
                ("name", json!("")),
                ("lan_ctrl", json!("1")),
                ("save_state", json!("1")),
                ("delayoff", json!("0")),
                ("flowing", json!("0")),
                ("flow_params", json!("")),
                ("music_on", json!("0")),
            ],
            LegacyModel::ChuangmiPlugM1 => vec![
                ("power", json!("off")),
                ("temperature", json!(32)),
                ("wifi_led", json!("on")),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// The legacy name behind a `(siid, piid)` bridge pair.
    pub fn bridge(self, siid: u32, piid: u32) -> Option<&'static str> {
        match (self, siid, piid) {
            (_, 2, 1) => Some("power"),
            (LegacyModel::YeelightMono, 2, 2) => Some("bright"),
            (LegacyModel::ChuangmiPlugM1, 2, 2) => Some("temperature"),
            (LegacyModel::ChuangmiPlugM1, 3, 1) => Some("wifi_led"),
            _ => None,
        }
    }

    /// Normalise and check a value for a named property (initial values and
    /// physical changes). Bools are accepted for on/off names.
    pub fn coerce(self, name: &str, v: &Value) -> Result<Value, String> {
        let onoff = |v: &Value| match v {
            Value::Bool(b) => Ok(json!(if *b { "on" } else { "off" })),
            Value::String(s) if s == "on" || s == "off" => Ok(v.clone()),
            _ => Err(format!("{name} takes \"on\"/\"off\" or a bool, got {v}")),
        };
        match (self, name) {
            (_, "power") | (LegacyModel::ChuangmiPlugM1, "wifi_led") => onoff(v),
            (LegacyModel::YeelightMono, "bright") => match v.as_i64() {
                Some(n) if (1..=100).contains(&n) => Ok(json!(n)),
                _ => Err(format!("bright takes an integer 1..=100, got {v}")),
            },
            (LegacyModel::ChuangmiPlugM1, "temperature") => match v.as_i64() {
                Some(n) if (-40..=125).contains(&n) => Ok(json!(n)),
                _ => Err(format!("temperature takes an integer -40..=125, got {v}")),
            },
            (LegacyModel::YeelightMono, n) if YEELIGHT_PROPS.contains(&n) => match v {
                Value::String(_) => Ok(v.clone()),
                Value::Number(x) => Ok(json!(x.to_string())),
                _ => Err(format!("{n} takes a string, got {v}")),
            },
            _ => Err(format!("{} has no property {name:?}", self.model_id())),
        }
    }

    fn model_id(self) -> &'static str {
        match self {
            LegacyModel::YeelightMono => "yeelink.light.mono1",
            LegacyModel::ChuangmiPlugM1 => "chuangmi.plug.m1",
        }
    }

    /// Handle a method. `None` means the method is unknown (`-32601`).
    pub fn call(
        self,
        state: &mut BTreeMap<String, Value>,
        method: &str,
        params: &Value,
    ) -> Option<Result<Value, CallError>> {
        let empty = Vec::new();
        let args = params.as_array().unwrap_or(&empty);
        let bad = |what: &str| Err((-5001, format!("invalid params: {what}")));
        let ok = || Ok(json!(["ok"]));
        Some(match (self, method) {
            (_, "get_prop") => Ok(Value::Array(
                args.iter()
                    .map(|n| {
                        let v = n.as_str().and_then(|n| state.get(n)).cloned();
                        match self {
                            LegacyModel::YeelightMono => match v {
                                Some(Value::String(s)) => Value::String(s),
                                Some(other) => Value::String(other.to_string()),
                                None => Value::String(String::new()),
                            },
                            LegacyModel::ChuangmiPlugM1 => v.unwrap_or(Value::Null),
                        }
                    })
                    .collect(),
            )),
            (_, "set_power") => {
                let onoff = args.first().and_then(Value::as_str);
                let (Some(p @ ("on" | "off")), true) =
                    (onoff, transition_ok(self, args.get(1..).unwrap_or(&[])))
                else {
                    return Some(bad("set_power takes [\"on\"|\"off\"] (Yeelight: optionally \"smooth\", ms, mode)"));
                };
                state.insert("power".into(), json!(p));
                ok()
            }
            (LegacyModel::YeelightMono, "set_bright") => {
                let level = args.first().and_then(Value::as_i64);
                match level {
                    Some(l)
                        if (1..=100).contains(&l)
                            && transition_ok(self, args.get(1..).unwrap_or(&[])) =>
                    {
                        state.insert("bright".into(), json!(l));
                        ok()
                    }
                    _ => bad("set_bright takes [1..100] or [level, \"smooth\", ms]"),
                }
            }
            (LegacyModel::YeelightMono, "toggle") => {
                if !args.is_empty() {
                    return Some(bad("toggle takes []"));
                }
                let on = state.get("power").and_then(Value::as_str) == Some("on");
                state.insert("power".into(), json!(if on { "off" } else { "on" }));
                ok()
            }
            (LegacyModel::YeelightMono, "set_name") => {
                match (args.len(), args.first().and_then(Value::as_str)) {
                    (1, Some(n)) => {
                        state.insert("name".into(), json!(n));
                        ok()
                    }
                    _ => bad("set_name takes [\"<name>\"]"),
                }
            }
            (LegacyModel::YeelightMono, "set_default") => {
                if args.is_empty() {
                    ok()
                } else {
                    bad("set_default takes []")
                }
            }
            (LegacyModel::YeelightMono, "set_ps") => {
                let k = args.first().and_then(Value::as_str);
                let v = args.get(1).and_then(Value::as_str);
                match (k, v) {
                    (Some(k @ ("cfg_lan_ctrl" | "cfg_save_state")), Some(v @ ("0" | "1")))
                        if args.len() == 2 =>
                    {
                        let name = k.trim_start_matches("cfg_");
                        state.insert(name.into(), json!(v));
                        ok()
                    }
                    _ => bad("set_ps takes [\"cfg_lan_ctrl\"|\"cfg_save_state\", \"0\"|\"1\"]"),
                }
            }
            (LegacyModel::ChuangmiPlugM1, "set_wifi_led") => {
                match args.first().and_then(Value::as_str) {
                    Some(p @ ("on" | "off")) if args.len() == 1 => {
                        state.insert("wifi_led".into(), json!(p));
                        ok()
                    }
                    _ => bad("set_wifi_led takes [\"on\"|\"off\"]"),
                }
            }
            _ => return None,
        })
    }
}

/// Yeelight transitions: nothing, or `"smooth"|"sudden", ms` with an
/// optional mode 0..=5 (only after set_power). Plugs take no extras.
fn transition_ok(model: LegacyModel, rest: &[Value]) -> bool {
    if rest.is_empty() {
        return true;
    }
    if model != LegacyModel::YeelightMono || rest.len() > 3 {
        return false;
    }
    let effect_ok = matches!(rest[0].as_str(), Some("smooth" | "sudden"));
    let ms_ok = !matches!(rest.get(1), Some(m) if m.as_u64().is_none());
    let mode_ok = match rest.get(2) {
        None => true,
        Some(m) => matches!(m.as_u64(), Some(0..=5)),
    };
    effect_ok && ms_ok && mode_ok
}
