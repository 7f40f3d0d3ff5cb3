//! The MIoT spec view the simulator needs, built on `mijia_proto::miot`.
//!
//! Specs are the real documents bundled in `mijia-proto`
//! ([`mijia_proto::miot::bundled`]). Value checks and initial values are the
//! spec engine's own ([`Property::check`], [`Property::default_value`]), so
//! the simulator and the client agree on what is valid. Each model's view is
//! built once per process and shared by all devices of that model, so a
//! thousand devices cost one view per model, not per device.
//!
//! This module adds only lookup tables keyed by `(siid, piid)` and
//! `(siid, aiid)` plus the service name of each property; it does not fetch
//! specs or name things.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use mijia_proto::miot::{bundled, Property};
use serde_json::Value;

/// One property.
#[derive(Debug, Clone)]
pub(crate) struct PropDef {
    /// Type name from the URN (`on`, `brightness`, …).
    pub name: String,
    /// Name of the owning service (`light`, `device-information`, …).
    pub service: String,
    pub read: bool,
    pub write: bool,
    pub notify: bool,
    /// `(min, max, step)`.
    pub range: Option<(f64, f64, f64)>,
    prop: Property,
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

impl PropDef {
    /// Check a value against format, range (with step) and value list.
    pub fn check(&self, v: &Value) -> Result<(), String> {
        self.prop.check(v).map(|_| ()).map_err(|e| e.to_string())
    }

    /// The spec engine's plausible initial value.
    pub fn default_value(&self) -> Value {
        self.prop.default_value()
    }
}

fn build(model: &str) -> Option<SimSpec> {
    let spec = match bundled::spec_arc_for_model(model)? {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(model, error = %e, "bundled spec could not be read; model disabled");
            return None;
        }
    };
    let mut props = BTreeMap::new();
    let mut actions = BTreeMap::new();
    for s in &spec.services {
        for p in &s.properties {
            props.entry((s.iid, p.iid)).or_insert_with(|| PropDef {
                name: p.name().to_owned(),
                service: s.name().to_owned(),
                read: p.access.read,
                write: p.access.write,
                notify: p.access.notify,
                range: p.range.map(|r| (r.min, r.max, r.step)),
                prop: p.clone(),
            });
        }
        for a in &s.actions {
            actions.entry((s.iid, a.iid)).or_insert_with(|| ActionDef {
                name: a.name().to_owned(),
                ins: a.ins.clone(),
                outs: a.outs.clone(),
            });
        }
    }
    Some(SimSpec { props, actions })
}

/// The shared spec view of a bundled MIoT model.
pub(crate) fn spec_for_model(model: &str) -> Option<Arc<SimSpec>> {
    type Cache = Mutex<HashMap<String, Option<Arc<SimSpec>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(model.to_owned())
        .or_insert_with(|| build(model).map(Arc::new))
        .clone()
}

/// The bundled MIoT models, sorted.
pub fn miot_models() -> Vec<&'static str> {
    let mut v = bundled::models();
    v.sort_unstable();
    v.dedup();
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
                if !matches!(p.prop.format, mijia_proto::miot::Format::Unknown(_)) {
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
