//! Conditions on one property: `light.brightness >= 50`, `switch.on == on`.
//!
//! The value is parsed the way `set` parses it, against the property's spec
//! (`on`/`off` for bools, value-list descriptions such as `sleep`), except
//! that numbers are not range-checked: comparing against a threshold
//! outside the range (`battery-level < 101`) is fine. `<`, `<=`, `>` and
//! `>=` need a numeric property (or, without a spec, a number); `==` and
//! `!=` work on everything. Numbers compare as numbers (`25 == 25.0`),
//! bools as bools, strings exactly.

use std::fmt;
use std::str::FromStr;

use mijia_proto::miot::Property;
use serde::Serialize;
use serde_json::Value;

use crate::home::device::ResolvedProp;
use crate::home::{DeviceOpError, ModelProfile};
use crate::transport::PropId;

use super::AutomationError;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CompareOp {
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
}

/// The operators, as written, for messages.
pub const OPERATORS: &str = "==, !=, <, <=, >, >= (or eq, ne, lt, le, gt, ge)";

impl CompareOp {
    /// The symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    /// Whether it orders values (needs numbers).
    pub fn is_ordering(self) -> bool {
        !matches!(self, CompareOp::Eq | CompareOp::Ne)
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl FromStr for CompareOp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "==" | "=" | "eq" => CompareOp::Eq,
            "!=" | "<>" | "ne" => CompareOp::Ne,
            "<" | "lt" => CompareOp::Lt,
            "<=" | "le" => CompareOp::Le,
            ">" | "gt" => CompareOp::Gt,
            ">=" | "ge" => CompareOp::Ge,
            _ => {
                return Err(format!(
                    "unknown operator {s:?}: use one of {OPERATORS} (quote < and > in the shell)"
                ))
            }
        })
    }
}

/// A checked condition on one property of one device's model.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The property.
    pub prop: ResolvedProp,
    /// The operator.
    pub op: CompareOp,
    /// The value compared against.
    pub target: Value,
    /// The value as written.
    pub text: String,
}

impl Condition {
    /// Resolves `name` on `profile` and parses `value` for it. Errors are
    /// usage errors: an unknown name, a value the property cannot have
    /// (`light.on == maybe`), or an ordering operator on a property that
    /// is not numeric.
    pub fn new(
        profile: &ModelProfile,
        name: &str,
        op: CompareOp,
        value: &str,
    ) -> Result<Condition, DeviceOpError> {
        let prop = profile.resolve_prop(name)?;
        let target = match &prop {
            ResolvedProp::Miot { id, .. } => match spec_property(profile, *id) {
                Some(p) => parse_for_property(p, prop.name(), op, value)?,
                None => loose_value(value),
            },
            ResolvedProp::Legacy(_) => loose_value(value),
        };
        if op.is_ordering() && number(&target).is_none() {
            return Err(DeviceOpError::Usage(format!(
                "`{op}` compares numbers, but {value:?} is not a number for {}; use == or !=",
                prop.name()
            )));
        }
        Ok(Condition {
            prop,
            op,
            target,
            text: value.trim().to_string(),
        })
    }

    /// The property's name.
    pub fn property(&self) -> &str {
        self.prop.name()
    }

    /// Whether `value` (as read, decoded) meets the condition.
    pub fn holds(&self, value: &Value) -> bool {
        let (a, b) = (value, &self.target);
        match self.op {
            CompareOp::Eq => loosely_equal(a, b),
            CompareOp::Ne => !loosely_equal(a, b),
            op => match (number(a), number(b)) {
                (Some(x), Some(y)) => match op {
                    CompareOp::Lt => x < y,
                    CompareOp::Le => x <= y,
                    CompareOp::Gt => x > y,
                    _ => x >= y,
                },
                _ => false,
            },
        }
    }

    /// `light.brightness >= 50`.
    pub fn describe(&self) -> String {
        format!("{} {} {}", self.prop.name(), self.op, self.text)
    }
}

fn spec_property(profile: &ModelProfile, id: PropId) -> Option<&Property> {
    profile.spec()?.property(id.siid, id.piid)
}

/// A threshold for a spec property: numbers as given (not range-checked),
/// everything else through `parse_user`.
fn parse_for_property(
    p: &Property,
    name: &str,
    op: CompareOp,
    text: &str,
) -> Result<Value, DeviceOpError> {
    if p.format.is_numeric() {
        if let Some(n) = parse_number(text) {
            return Ok(n);
        }
        return Ok(p.parse_user(text)?);
    }
    if op.is_ordering() {
        return Err(DeviceOpError::Usage(format!(
            "`{op}` compares numbers, but {name} is a {}; use == or !=",
            p.format
        )));
    }
    Ok(p.decode_wire(&p.parse_user(text)?))
}

/// A number from text, integers kept whole.
fn parse_number(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Some(Value::from(i));
    }
    let f: f64 = t.parse().ok()?;
    f.is_finite().then(|| Value::from(f))
}

/// Without a spec: on/off words as bools, numbers as numbers, JSON as
/// JSON, anything else as a string.
fn loose_value(text: &str) -> Value {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => return Value::Bool(true),
        "off" | "false" | "no" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_number(t) {
        return n;
    }
    serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_string()))
}

/// A value as a number: numbers, and numeric strings (some devices send
/// them).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn loosely_equal(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let as_bool = |v: &Value| match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) if n.as_f64() == Some(0.0) => Some(false),
        Value::Number(n) if n.as_f64() == Some(1.0) => Some(true),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "on" | "true" => Some(true),
            "off" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    };
    match (a, b) {
        (Value::Bool(_), _) | (_, Value::Bool(_)) => {
            matches!((as_bool(a), as_bool(b)), (Some(x), Some(y)) if x == y)
        }
        (Value::String(x), Value::String(y)) => x.trim().eq_ignore_ascii_case(y.trim()),
        _ => matches!((number(a), number(b)), (Some(x), Some(y)) if x == y),
    }
}

/// Parses a condition given as three words, for the CLI and scene files.
pub fn parse_op(text: &str) -> Result<CompareOp, AutomationError> {
    text.parse().map_err(AutomationError::Usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::ModelCatalog;
    use mijia_proto::miot::SpecStore;
    use serde_json::json;

    fn profile(model: &str) -> std::sync::Arc<ModelProfile> {
        ModelCatalog::new(SpecStore::new()).profile(Some(model))
    }

    #[test]
    fn operators_parse() {
        for (text, op) in [
            ("==", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            ("<", CompareOp::Lt),
            ("<=", CompareOp::Le),
            (">", CompareOp::Gt),
            (">=", CompareOp::Ge),
            ("GE", CompareOp::Ge),
        ] {
            assert_eq!(text.parse::<CompareOp>(), Ok(op));
        }
        assert!("=~".parse::<CompareOp>().is_err());
    }

    #[test]
    fn spec_values_and_comparisons() {
        let light = profile("yeelink.light.color1");
        let c = Condition::new(&light, "light.on", CompareOp::Eq, "on")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.holds(&json!(true)));
        assert!(!c.holds(&json!(false)));
        let c = Condition::new(&light, "light.brightness", CompareOp::Ge, "50")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.holds(&json!(50)) && c.holds(&json!(80)) && !c.holds(&json!(49)));
        // Thresholds outside the range are fine.
        assert!(Condition::new(&light, "light.brightness", CompareOp::Lt, "101").is_ok());
        // Ordering a bool is a usage error; so is a bool that is not one.
        let e = Condition::new(&light, "light.on", CompareOp::Lt, "1");
        assert!(e.as_ref().is_err_and(DeviceOpError::is_validation), "{e:?}");
        let e = Condition::new(&light, "light.on", CompareOp::Eq, "maybe");
        assert!(e.as_ref().is_err_and(DeviceOpError::is_validation), "{e:?}");
        assert!(Condition::new(&light, "light.nope", CompareOp::Eq, "1").is_err());

        let sensor = profile("miaomiaoce.sensor_ht.t2");
        let c = Condition::new(&sensor, "temperature", CompareOp::Gt, "25")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.holds(&json!(25.5)) && !c.holds(&json!(25)) && !c.holds(&json!("x")));
        assert_eq!(c.describe(), "temperature-humidity-sensor.temperature > 25");
    }

    #[test]
    fn loose_equality() {
        assert!(loosely_equal(&json!(25), &json!(25.0)));
        assert!(loosely_equal(&json!("on"), &json!(true)));
        assert!(loosely_equal(&json!(1), &json!(true)));
        assert!(!loosely_equal(&json!(2), &json!(true)));
        assert!(loosely_equal(&json!("Idle"), &json!("idle")));
        assert!(!loosely_equal(&json!(null), &json!(false)));
    }
}
