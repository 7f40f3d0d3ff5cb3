//! Property values: checking, parsing user text, tolerant decoding, display.
//!
//! Encoding is strict and decoding is tolerant:
//!
//! - [`Property::check`] validates a JSON value before it is sent (integers
//!   for integer formats with no fractions, range and step, value-list
//!   membership, bools only for `bool`, strings for `string`, hex digits for
//!   `hex`) and returns the normalized value (`1.0` → `1`).
//! - [`Property::parse_user`] turns command-line text into such a value
//!   (`on`, `sleep`, `26.5`, `0xff0000`).
//! - [`Property::decode_wire`] accepts what devices really send (`0`/`1` for
//!   a bool, `1.0` for an integer) and never fails.
//! - [`Property::display_value`] renders a value for people (`40 %`,
//!   `2 (Sleep)`, `on`).
//!
//! Action arguments are checked against the properties their `in` piids
//! name: [`Spec::check_action_args`] and [`Spec::check_action_named_args`].
//!
//! Access rights are not enforced by [`Property::check`] (action arguments
//! usually have empty access); use [`Property::check_write`] for
//! `set_properties`.

use serde_json::{Map, Value};
use thiserror::Error;

use super::spec::{
    as_whole_i64, number, Action, Format, Property, Spec, ValueListItem, ValueRange,
};

/// Why a value is not acceptable. `Display` names the property and what is
/// allowed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ValueError {
    /// The JSON type (or text) does not suit the format.
    #[error("{name} expects {expected}, got {got}")]
    WrongType {
        /// Property name.
        name: String,
        /// What is accepted, in words.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// A number with a fraction for an integer format.
    #[error("{name} must be a whole number, got {got}")]
    NotWhole {
        /// Property name.
        name: String,
        /// What was given.
        got: String,
    },
    /// An integer outside its format (e.g. 300 for `uint8`).
    #[error("{name} must fit {format} ({min} to {max}), got {got}")]
    OutOfFormat {
        /// Property name.
        name: String,
        /// The format.
        format: String,
        /// Smallest value of the format.
        min: i64,
        /// Largest value of the format.
        max: i64,
        /// What was given.
        got: String,
    },
    /// Outside `value-range`.
    #[error("{name} must be {}, got {got}", range_text(*.min, *.max, *.step))]
    OutOfRange {
        /// Property name.
        name: String,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Step, when usable.
        step: Option<f64>,
        /// What was given.
        got: String,
    },
    /// Inside the range but not on a step.
    #[error("{name} must be {}, got {got}", range_text(*.min, *.max, Some(*.step)))]
    OffStep {
        /// Property name.
        name: String,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Step.
        step: f64,
        /// What was given.
        got: String,
    },
    /// Not in `value-list`.
    #[error("{name} must be one of: {}; got {got}", list_text(.allowed))]
    NotInList {
        /// Property name.
        name: String,
        /// The allowed entries.
        allowed: Vec<ValueListItem>,
        /// What was given.
        got: String,
    },
    /// User text matches several value-list descriptions.
    #[error("{got} matches several values of {name}: {}; give the number instead", list_text(.matches))]
    AmbiguousDescription {
        /// Property name.
        name: String,
        /// The entries it matches.
        matches: Vec<ValueListItem>,
        /// What was given.
        got: String,
    },
    /// Not a string of hex digits.
    #[error("{name} must be a string of hex digits, got {got}")]
    NotHex {
        /// Property name.
        name: String,
        /// What was given.
        got: String,
    },
    /// The property lacks `write` access.
    #[error("{name} cannot be written (access: {access}); it can only be read or reported")]
    NotWritable {
        /// Property name.
        name: String,
        /// Access letters, e.g. `r-n`.
        access: String,
    },
    /// No such action in the spec.
    #[error("the spec has no action {siid}.{aiid}")]
    UnknownAction {
        /// Service iid.
        siid: u32,
        /// Action iid.
        aiid: u32,
    },
    /// Wrong number of arguments.
    #[error("{action} takes {}, got {got}", params_text(.params))]
    ArgCount {
        /// Action name.
        action: String,
        /// Names of the expected arguments, in order.
        params: Vec<String>,
        /// How many were given.
        got: usize,
    },
    /// One argument is not acceptable.
    #[error("argument {index} of {action}: {source}")]
    Arg {
        /// Action name.
        action: String,
        /// 1-based position.
        index: usize,
        /// The problem with the value.
        #[source]
        source: Box<ValueError>,
    },
    /// A named argument that the action does not take.
    #[error("{action} has no argument '{arg}'; it takes {}", params_text(.params))]
    UnknownArg {
        /// Action name.
        action: String,
        /// The name given.
        arg: String,
        /// Names of the expected arguments, in order.
        params: Vec<String>,
    },
    /// A named argument given twice (by name and by piid), or a name that
    /// fits two arguments.
    #[error("{action}: argument '{arg}' is given twice or is ambiguous; name arguments by piid")]
    AmbiguousArg {
        /// Action name.
        action: String,
        /// The name given.
        arg: String,
    },
    /// A required named argument is absent.
    #[error("{action} is missing argument '{arg}'")]
    MissingArg {
        /// Action name.
        action: String,
        /// The missing argument.
        arg: String,
    },
}

fn range_text(min: f64, max: f64, step: Option<f64>) -> String {
    match step {
        Some(s) => format!("between {min} and {max} in steps of {s}"),
        None => format!("between {min} and {max}"),
    }
}

fn list_text(items: &[ValueListItem]) -> String {
    items
        .iter()
        .map(|i| {
            if i.description.is_empty() {
                i.value.to_string()
            } else {
                format!("{} ({})", i.value, i.description)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn params_text(params: &[String]) -> String {
    match params.len() {
        0 => "no arguments".to_string(),
        1 => format!("1 argument ({})", params.join(", ")),
        n => format!("{n} arguments ({})", params.join(", ")),
    }
}

/// How a value appears in error messages: strings quoted with `'`, the rest
/// as JSON (bounded in length).
fn shown(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        let mut c: String = s.chars().take(60).collect();
        c.push('…');
        c
    } else {
        s
    }
}

fn quoted(s: &str) -> String {
    shown(&Value::String(s.to_string()))
}

/// `none`-style units render as nothing; known units get their symbol; others
/// are shown as written.
pub fn display_unit(unit: &str) -> Option<&str> {
    Some(match unit {
        "" | "none" => return None,
        "percentage" => "%",
        "celsius" => "°C",
        "fahrenheit" => "°F",
        "kelvin" => "K",
        "seconds" => "s",
        "minutes" => "min",
        "hours" | "hour" => "h",
        "days" => "d",
        "watt" | "W" | "w" => "W",
        "kWh" => "kWh",
        "lux" => "lux",
        "ppm" => "ppm",
        "ppb" => "ppb",
        "μg/m3" => "μg/m3",
        "mg/m3" => "mg/m3",
        "arcdegrees" | "arcdegress" => "°",
        "pascal" => "Pa",
        "kilopascal" => "kPa",
        "metre" | "meter" => "m",
        "litre" | "liter" | "L" => "L",
        other => other,
    })
}

/// Lower-case, with space and `_` treated as `-`, for matching descriptions.
fn fold(s: &str) -> String {
    s.trim()
        .to_lowercase()
        .chars()
        .map(|c| match c {
            ' ' | '_' => '-',
            c => c,
        })
        .collect::<String>()
}

fn within(v: f64, min: f64, max: f64) -> bool {
    // Tolerance for float noise, relative to each bound and never more than
    // 1e-6, so a wide integer range (`[1, 4294967295]`) still rejects 0.
    let eps = |b: f64| (1e-9 * b.abs().max(1.0)).min(1e-6);
    v >= min - eps(min) && v <= max + eps(max)
}

fn on_step(v: f64, min: f64, step: f64) -> bool {
    let k = (v - min) / step;
    (k - k.round()).abs() <= 1e-6 + 1e-9 * k.abs()
}

fn usable_step(step: f64) -> Option<f64> {
    (step.is_finite() && step > 0.0).then_some(step)
}

/// True when 0 lies in the range and on its step.
fn zero_allowed(r: ValueRange) -> bool {
    within(0.0, r.min, r.max) && usable_step(r.step).is_none_or(|s| on_step(0.0, r.min, s))
}

/// Parses number text: decimal integers, `0x` hex, or finite decimals.
fn number_from_text(t: &str) -> Option<Value> {
    let t = t.strip_prefix('+').unwrap_or(t);
    if let Ok(i) = t.parse::<i64>() {
        return Some(Value::from(i));
    }
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok().map(Value::from);
    }
    let f = t.parse::<f64>().ok().filter(|f| f.is_finite())?;
    serde_json::Number::from_f64(f).map(Value::Number)
}

fn format_number(v: &Value) -> String {
    if let Some(i) = v.as_i64() {
        i.to_string()
    } else if let Some(u) = v.as_u64() {
        u.to_string()
    } else if let Some(f) = v.as_f64() {
        format!("{f}")
    } else {
        v.to_string()
    }
}

/// Converts a finite f64 to i64, clamped to `[lo, hi]`.
fn clamp_to_i64(f: f64, lo: i64, hi: i64) -> i64 {
    if !f.is_finite() {
        return lo.max(0).min(hi);
    }
    // Both bounds convert exactly enough for the comparisons below.
    #[allow(clippy::cast_precision_loss)]
    let (lo_f, hi_f) = (lo as f64, hi as f64);
    if f <= lo_f {
        lo
    } else if f >= hi_f {
        hi
    } else {
        // Strictly inside an i64 range, so the conversion cannot saturate.
        #[allow(clippy::cast_possible_truncation)]
        let i = f as i64;
        i
    }
}

impl Property {
    fn wrong(&self, expected: &'static str, got: String) -> ValueError {
        ValueError::WrongType {
            name: self.name().to_string(),
            expected,
            got,
        }
    }

    fn not_in_list(&self, got: String) -> ValueError {
        ValueError::NotInList {
            name: self.name().to_string(),
            allowed: self.list.clone(),
            got,
        }
    }

    /// Range and step check on a numeric value.
    fn check_range(&self, f: f64, got: &str) -> Result<(), ValueError> {
        let Some(r) = self.range else { return Ok(()) };
        if r.min > r.max {
            // An inverted range says nothing usable; see Spec::warnings.
            return Ok(());
        }
        let step = usable_step(r.step);
        if !within(f, r.min, r.max) {
            return Err(ValueError::OutOfRange {
                name: self.name().to_string(),
                min: r.min,
                max: r.max,
                step,
                got: got.to_string(),
            });
        }
        if let Some(step) = step {
            if !on_step(f, r.min, step) {
                return Err(ValueError::OffStep {
                    name: self.name().to_string(),
                    min: r.min,
                    max: r.max,
                    step,
                    got: got.to_string(),
                });
            }
        }
        Ok(())
    }

    fn check_list(&self, f: f64, got: &str) -> Result<(), ValueError> {
        if self.list.is_empty() {
            return Ok(());
        }
        // The list values are i64; comparing as f64 is exact for the
        // magnitudes value lists use and tolerates `2.0`.
        #[allow(clippy::cast_precision_loss)]
        let hit = self.list.iter().any(|i| (i.value as f64) == f);
        if hit {
            Ok(())
        } else {
            Err(self.not_in_list(got.to_string()))
        }
    }

    /// Validates a value for sending and returns it normalized.
    ///
    /// Integers must be whole (`1.0` becomes `1`, `1.5` is refused), fit the
    /// format, lie in the range and on its step, and be in the value list if
    /// there is one. Floats are checked against range and step with a small
    /// tolerance. A step of 0 is not checked. `bool` takes only JSON bools,
    /// `string` only strings, `hex` only strings of hex digits. Unknown
    /// formats pass through.
    pub fn check(&self, v: &Value) -> Result<Value, ValueError> {
        let got = shown(v);
        match &self.format {
            Format::Bool => match v {
                Value::Bool(_) => Ok(v.clone()),
                _ => Err(self.wrong("true or false", got)),
            },
            Format::String => match v {
                Value::String(_) => Ok(v.clone()),
                _ => Err(self.wrong("a string", got)),
            },
            Format::Hex => match v {
                Value::String(s) if s.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(v.clone()),
                Value::String(_) => Err(ValueError::NotHex {
                    name: self.name().to_string(),
                    got,
                }),
                _ => Err(self.wrong("a string of hex digits", got)),
            },
            Format::Unknown(_) => Ok(v.clone()),
            Format::Float => {
                let Some(f) = v.as_f64().filter(|_| v.is_number()) else {
                    return Err(self.wrong("a number", got));
                };
                self.check_list(f, &got)?;
                self.check_range(f, &got)?;
                Ok(v.clone())
            }
            fmt => {
                let (lo, hi) = fmt.integer_bounds().unwrap_or((i64::MIN, i64::MAX));
                let Value::Number(n) = v else {
                    return Err(self.wrong("an integer", got));
                };
                let i = match as_whole_i64(v) {
                    Some(i) => i,
                    None if n.is_u64() => {
                        return Err(ValueError::OutOfFormat {
                            name: self.name().to_string(),
                            format: fmt.as_str().to_string(),
                            min: lo,
                            max: hi,
                            got,
                        })
                    }
                    None => {
                        return Err(ValueError::NotWhole {
                            name: self.name().to_string(),
                            got,
                        })
                    }
                };
                // List and range first: their messages say more than the
                // format bounds do.
                #[allow(clippy::cast_precision_loss)]
                let f = i as f64;
                self.check_list(f, &got)?;
                self.check_range(f, &got)?;
                if i < lo || i > hi {
                    return Err(ValueError::OutOfFormat {
                        name: self.name().to_string(),
                        format: fmt.as_str().to_string(),
                        min: lo,
                        max: hi,
                        got,
                    });
                }
                Ok(Value::from(i))
            }
        }
    }

    /// [`check`](Self::check), and also refuse properties without `write`
    /// access. Use this for `set_properties`.
    pub fn check_write(&self, v: &Value) -> Result<Value, ValueError> {
        if !self.access.write {
            return Err(ValueError::NotWritable {
                name: self.name().to_string(),
                access: self.access.letters(),
            });
        }
        self.check(v)
    }

    /// Finds a value-list entry by its description, ignoring case and
    /// treating space, `_` and `-` alike.
    fn list_by_description(&self, text: &str) -> Result<Option<i64>, ValueError> {
        let want = fold(text);
        if want.is_empty() {
            return Ok(None);
        }
        let hits: Vec<&ValueListItem> = self
            .list
            .iter()
            .filter(|i| !i.description.trim().is_empty() && fold(&i.description) == want)
            .collect();
        match hits.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.value)),
            many => Err(ValueError::AmbiguousDescription {
                name: self.name().to_string(),
                matches: many.iter().map(|i| (*i).clone()).collect(),
                got: quoted(text),
            }),
        }
    }

    /// Parses text a person typed into a checked value.
    ///
    /// - `bool`: `on`/`off`, `true`/`false`, `yes`/`no`, `1`/`0` (any case).
    /// - numeric formats: a number (`0x` hex for integers, `#RRGGBB` for the
    ///   `rgb` unit), or a value-list description (`sleep` → `1`). Numbers
    ///   win over descriptions, so a list whose descriptions are digits
    ///   (`"30"`) is matched by value.
    /// - `string`: the text as given; `hex`: hex digits.
    /// - unknown formats: JSON if the text is JSON, otherwise a string.
    ///
    /// The result has been through [`check`](Self::check).
    pub fn parse_user(&self, s: &str) -> Result<Value, ValueError> {
        let t = s.trim();
        let value = match &self.format {
            Format::Bool => match t.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => Value::Bool(true),
                "off" | "false" | "no" | "0" => Value::Bool(false),
                _ => return Err(self.wrong("on/off, true/false, yes/no or 1/0", quoted(s))),
            },
            Format::String => Value::String(s.to_string()),
            Format::Hex => Value::String(t.to_string()),
            Format::Unknown(_) => {
                serde_json::from_str(t).unwrap_or_else(|_| Value::String(s.to_string()))
            }
            fmt => {
                let rgb = self.unit.as_deref() == Some("rgb");
                let parsed = match t.strip_prefix('#') {
                    Some(h) if rgb => i64::from_str_radix(h, 16).ok().map(Value::from),
                    _ => number_from_text(t),
                };
                match parsed {
                    Some(v) => v,
                    None => match self.list_by_description(t)? {
                        Some(i) => Value::from(i),
                        None if !self.list.is_empty() => return Err(self.not_in_list(quoted(s))),
                        None if fmt.is_integer() => return Err(self.wrong("an integer", quoted(s))),
                        None => return Err(self.wrong("a number", quoted(s))),
                    },
                }
            }
        };
        self.check(&value)
    }

    /// Tolerant decode of a value a device sent. Never fails: anything it
    /// cannot make sense of is returned unchanged.
    ///
    /// `0`/`1` (and `"true"`/`"false"`/`"0"`/`"1"`) become bools for `bool`;
    /// whole floats become integers for integer formats; numeric strings
    /// become numbers for numeric formats.
    pub fn decode_wire(&self, v: &Value) -> Value {
        match (&self.format, v) {
            (Format::Bool, Value::Number(_)) => {
                let f = v.as_f64();
                if f == Some(0.0) {
                    Value::Bool(false)
                } else if f == Some(1.0) {
                    Value::Bool(true)
                } else {
                    v.clone()
                }
            }
            (Format::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => v.clone(),
            },
            (f, Value::Number(_)) if f.is_integer() => {
                as_whole_i64(v).map_or_else(|| v.clone(), Value::from)
            }
            (f, Value::String(s)) if f.is_numeric() => match number_from_text(s.trim()) {
                Some(n) if f.is_integer() => as_whole_i64(&n).map_or(n, Value::from),
                Some(n) => n,
                None => v.clone(),
            },
            _ => v.clone(),
        }
    }

    /// A plausible initial value (used by the simulator): `false`, `""`, the
    /// first value-list entry, or 0 when the range allows it and the range
    /// minimum otherwise.
    pub fn default_value(&self) -> Value {
        match &self.format {
            Format::Bool => Value::Bool(false),
            Format::String | Format::Hex => Value::String(String::new()),
            Format::Unknown(_) => Value::Null,
            Format::Float => {
                if let Some(first) = self.list.first() {
                    return Value::from(first.value);
                }
                match self.range {
                    Some(r) if !zero_allowed(r) => number(r.min),
                    _ => Value::from(0),
                }
            }
            fmt => {
                let (lo, hi) = fmt.integer_bounds().unwrap_or((0, 0));
                if let Some(first) = self.list.first() {
                    return Value::from(first.value);
                }
                let v = match self.range {
                    Some(r) if !zero_allowed(r) => clamp_to_i64(r.min.ceil(), lo, hi),
                    _ => 0,
                };
                Value::from(v.clamp(lo, hi))
            }
        }
    }

    /// Renders a value for people: `on`/`off` for bools, `2 (Sleep)` for
    /// value-list entries, numbers with unit symbols (`40 %`, `26.5 °C`,
    /// `90°`), `16711680 (#FF0000)` for `rgb`, strings as they are.
    pub fn display_value(&self, v: &Value) -> String {
        let d = self.decode_wire(v);
        match (&self.format, &d) {
            (Format::Bool, Value::Bool(b)) => {
                return if *b { "on".into() } else { "off".into() };
            }
            (_, Value::String(s)) => return s.clone(),
            (_, Value::Number(_)) => {}
            (_, other) => return other.to_string(),
        }
        let text = format_number(&d);
        let unit = self.unit.as_deref().unwrap_or("none");
        let with_unit = if unit == "rgb" {
            match as_whole_i64(&d).filter(|i| (0..=0xFF_FFFF).contains(i)) {
                Some(i) => format!("{text} (#{i:06X})"),
                None => text.clone(),
            }
        } else {
            match display_unit(unit) {
                None => text.clone(),
                Some("°") => format!("{text}°"),
                Some(sym) => format!("{text} {sym}"),
            }
        };
        let item = as_whole_i64(&d).and_then(|i| self.list.iter().find(|it| it.value == i));
        match item {
            Some(it) if !it.description.trim().is_empty() && it.description.trim() != text => {
                format!("{with_unit} ({})", it.description.trim())
            }
            _ => with_unit,
        }
    }

    /// What the property accepts, in words: `true or false`, `a string`,
    /// `between 1 and 100 in steps of 1`, `one of: 0 (Auto), 1 (Sleep)`.
    pub fn allowed_text(&self) -> String {
        match &self.format {
            Format::Bool => "true or false".into(),
            Format::String => "a string".into(),
            Format::Hex => "a string of hex digits".into(),
            Format::Unknown(f) => format!("any value (unknown format '{f}')"),
            fmt => {
                if !self.list.is_empty() {
                    format!("one of: {}", list_text(&self.list))
                } else if let Some(r) = self.range {
                    range_text(r.min, r.max, usable_step(r.step))
                } else if fmt.is_integer() {
                    "an integer".into()
                } else {
                    "a number".into()
                }
            }
        }
    }
}

impl Spec {
    fn action_params(&self, siid: u32, action: &Action) -> Vec<String> {
        action
            .ins
            .iter()
            .map(|&piid| match self.property(siid, piid) {
                Some(p) => p.name().to_string(),
                None => format!("piid {piid}"),
            })
            .collect()
    }

    /// Checks positional action arguments against the action's `in`
    /// properties and returns them normalized, in order. An `in` piid with no
    /// property in the spec (see [`Spec::warnings`]) accepts its value
    /// unchecked.
    pub fn check_action_args(
        &self,
        siid: u32,
        aiid: u32,
        args: &[Value],
    ) -> Result<Vec<Value>, ValueError> {
        let action = self
            .action(siid, aiid)
            .ok_or(ValueError::UnknownAction { siid, aiid })?;
        if args.len() != action.ins.len() {
            return Err(ValueError::ArgCount {
                action: action.name().to_string(),
                params: self.action_params(siid, action),
                got: args.len(),
            });
        }
        action
            .ins
            .iter()
            .zip(args)
            .enumerate()
            .map(|(i, (&piid, arg))| match self.property(siid, piid) {
                Some(p) => p.check(arg).map_err(|e| ValueError::Arg {
                    action: action.name().to_string(),
                    index: i + 1,
                    source: Box::new(e),
                }),
                None => Ok(arg.clone()),
            })
            .collect()
    }

    /// Checks named action arguments (a JSON object). Keys are the `in`
    /// properties' names (case-insensitive, `_` = `-`) or their piids as
    /// text. Returns the values in `in` order, checked as by
    /// [`check_action_args`](Self::check_action_args).
    pub fn check_action_named_args(
        &self,
        siid: u32,
        aiid: u32,
        args: &Map<String, Value>,
    ) -> Result<Vec<Value>, ValueError> {
        let action = self
            .action(siid, aiid)
            .ok_or(ValueError::UnknownAction { siid, aiid })?;
        let params = self.action_params(siid, action);
        let norm = |s: &str| s.trim().to_ascii_lowercase().replace('_', "-");
        let mut slots: Vec<Option<Value>> = vec![None; action.ins.len()];
        for (key, value) in args {
            let k = norm(key);
            let hits: Vec<usize> = action
                .ins
                .iter()
                .zip(&params)
                .enumerate()
                .filter(|(_, (piid, name))| piid.to_string() == k || norm(name) == k)
                .map(|(i, _)| i)
                .collect();
            let slot = match hits.as_slice() {
                [] => {
                    return Err(ValueError::UnknownArg {
                        action: action.name().to_string(),
                        arg: key.clone(),
                        params,
                    })
                }
                [one] => slots.get_mut(*one),
                _ => None,
            };
            match slot {
                Some(s @ None) => *s = Some(value.clone()),
                _ => {
                    return Err(ValueError::AmbiguousArg {
                        action: action.name().to_string(),
                        arg: key.clone(),
                    })
                }
            }
        }
        let mut ordered = Vec::with_capacity(slots.len());
        for (slot, name) in slots.into_iter().zip(&params) {
            match slot {
                Some(v) => ordered.push(v),
                None => {
                    return Err(ValueError::MissingArg {
                        action: action.name().to_string(),
                        arg: name.clone(),
                    })
                }
            }
        }
        self.check_action_args(siid, aiid, &ordered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::miot::spec::Access;
    use crate::miot::urn::Urn;
    use serde_json::json;

    fn prop(name: &str, format: &str) -> Property {
        Property {
            iid: 1,
            urn: Urn::parse(&format!("urn:miot-spec-v2:property:{name}:00000001:x-y:1")).unwrap(),
            description: String::new(),
            format: Format::parse(format),
            access: Access {
                read: true,
                write: true,
                notify: true,
            },
            unit: None,
            range: None,
            list: Vec::new(),
        }
    }

    fn ranged(name: &str, format: &str, min: f64, max: f64, step: f64, unit: &str) -> Property {
        Property {
            range: Some(ValueRange { min, max, step }),
            unit: Some(unit.into()),
            ..prop(name, format)
        }
    }

    fn mode() -> Property {
        Property {
            list: ["Auto", "Sleep", "Favorite"]
                .iter()
                .enumerate()
                .map(|(i, d)| ValueListItem {
                    value: i as i64,
                    description: (*d).into(),
                })
                .collect(),
            ..prop("mode", "uint8")
        }
    }

    fn err(r: Result<Value, ValueError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn range_and_step_messages() {
        let b = ranged("brightness", "uint8", 1.0, 100.0, 1.0, "percentage");
        assert_eq!(b.check(&json!(40)).unwrap(), json!(40));
        assert_eq!(b.check(&json!(40.0)).unwrap(), json!(40));
        assert_eq!(
            err(b.check(&json!(500))),
            "brightness must be between 1 and 100 in steps of 1, got 500"
        );
        assert_eq!(
            err(prop("level", "uint8").check(&json!(300))),
            "level must fit uint8 (0 to 255), got 300"
        );
        assert_eq!(
            err(prop("level", "uint8").check(&json!(-1))),
            "level must fit uint8 (0 to 255), got -1"
        );
        // A range wider than the format: the format still applies.
        let wide = ranged("wide", "uint8", 0.0, 1000.0, 1.0, "none");
        assert_eq!(
            err(wide.check(&json!(256))),
            "wide must fit uint8 (0 to 255), got 256"
        );
        let b16 = ranged("brightness", "uint16", 1.0, 100.0, 1.0, "percentage");
        assert_eq!(
            err(b16.check(&json!(500))),
            "brightness must be between 1 and 100 in steps of 1, got 500"
        );
        assert_eq!(
            err(b16.check(&json!(0))),
            "brightness must be between 1 and 100 in steps of 1, got 0"
        );
        assert_eq!(
            err(b16.check(&json!(1.5))),
            "brightness must be a whole number, got 1.5"
        );
        assert_eq!(
            err(b16.check(&json!("50"))),
            "brightness expects an integer, got '50'"
        );
        assert_eq!(
            err(b16.check(&json!(true))),
            "brightness expects an integer, got true"
        );
        let stepped = ranged("angle", "uint16", 30.0, 120.0, 30.0, "none");
        assert!(stepped.check(&json!(90)).is_ok());
        assert_eq!(
            err(stepped.check(&json!(100))),
            "angle must be between 30 and 120 in steps of 30, got 100"
        );
        assert!(matches!(
            stepped.check(&json!(100)),
            Err(ValueError::OffStep { .. })
        ));
    }

    #[test]
    fn wide_ranges_keep_their_bounds() {
        let r = ValueRange {
            min: 1.0,
            max: 4_294_967_295.0,
            step: 1.0,
        };
        assert!(!within(0.0, r.min, r.max));
        assert!(within(1.0, r.min, r.max));
        assert!(within(4_294_967_295.0, r.min, r.max));
        assert!(!within(4_294_967_296.0, r.min, r.max));
        assert!(within(31.000_000_000_1, 16.0, 31.0));
    }

    #[test]
    fn float_steps_with_tolerance_and_zero_step() {
        let t = ranged("target-temperature", "float", 16.0, 31.0, 0.5, "celsius");
        assert_eq!(t.check(&json!(26.5)).unwrap(), json!(26.5));
        assert_eq!(t.check(&json!(26)).unwrap(), json!(26));
        assert_eq!(
            err(t.check(&json!(26.3))),
            "target-temperature must be between 16 and 31 in steps of 0.5, got 26.3"
        );
        assert_eq!(
            err(t.check(&json!(35))),
            "target-temperature must be between 16 and 31 in steps of 0.5, got 35"
        );
        let fine = ranged("temperature", "float", -30.0, 100.0, 0.1, "celsius");
        for v in [25.7, -29.9, 0.3, 99.9, 100.0] {
            assert!(fine.check(&json!(v)).is_ok(), "{v}");
        }
        assert!(fine.check(&json!(25.75)).is_err());
        let money = ranged("x", "float", 0.0, 10000.0, 0.01, "none");
        assert!(money.check(&json!(1234.56)).is_ok());
        let zero = ranged("x", "uint8", 0.0, 100.0, 0.0, "none");
        assert!(zero.check(&json!(37)).is_ok());
        assert_eq!(
            err(zero.check(&json!(101))),
            "x must be between 0 and 100, got 101"
        );
    }

    #[test]
    fn value_list_by_number_and_description() {
        let m = mode();
        assert_eq!(m.check(&json!(1)).unwrap(), json!(1));
        assert_eq!(
            err(m.check(&json!(5))),
            "mode must be one of: 0 (Auto), 1 (Sleep), 2 (Favorite); got 5"
        );
        assert_eq!(m.parse_user("sleep").unwrap(), json!(1));
        assert_eq!(m.parse_user("SLEEP").unwrap(), json!(1));
        assert_eq!(m.parse_user(" Favorite ").unwrap(), json!(2));
        assert_eq!(m.parse_user("2").unwrap(), json!(2));
        assert_eq!(
            err(m.parse_user("turbo")),
            "mode must be one of: 0 (Auto), 1 (Sleep), 2 (Favorite); got 'turbo'"
        );
        assert_eq!(
            err(m.parse_user("7")),
            "mode must be one of: 0 (Auto), 1 (Sleep), 2 (Favorite); got 7"
        );
    }

    #[test]
    fn descriptions_fold_spaces_and_ambiguity() {
        let mut p = prop("status", "uint8");
        p.list = vec![
            ValueListItem {
                value: 1,
                description: "Straight Wind".into(),
            },
            ValueListItem {
                value: 2,
                description: "Idle".into(),
            },
            ValueListItem {
                value: 3,
                description: "idle".into(),
            },
            ValueListItem {
                value: 4,
                description: String::new(),
            },
        ];
        assert_eq!(p.parse_user("straight_wind").unwrap(), json!(1));
        assert_eq!(p.parse_user("straight-wind").unwrap(), json!(1));
        assert_eq!(
            err(p.parse_user("IDLE")),
            "'IDLE' matches several values of status: 2 (Idle), 3 (idle); give the number instead"
        );
        assert_eq!(p.parse_user("4").unwrap(), json!(4));
        assert!(p.parse_user("").is_err());
    }

    #[test]
    fn bools() {
        let on = prop("on", "bool");
        for (t, want) in [
            ("on", true),
            ("OFF", false),
            ("true", true),
            ("False", false),
            ("1", true),
            ("0", false),
            ("yes", true),
            ("No", false),
        ] {
            assert_eq!(on.parse_user(t).unwrap(), json!(want), "{t}");
        }
        assert_eq!(
            err(on.parse_user("maybe")),
            "on expects on/off, true/false, yes/no or 1/0, got 'maybe'"
        );
        assert_eq!(err(on.check(&json!(1))), "on expects true or false, got 1");
        assert_eq!(on.decode_wire(&json!(1)), json!(true));
        assert_eq!(on.decode_wire(&json!(0)), json!(false));
        assert_eq!(on.decode_wire(&json!(2)), json!(2));
        assert_eq!(on.display_value(&json!(true)), "on");
        assert_eq!(on.display_value(&json!(0)), "off");
    }

    #[test]
    fn strings_and_hex() {
        let s = prop("text-content", "string");
        assert_eq!(s.parse_user(" hi there").unwrap(), json!(" hi there"));
        assert_eq!(
            err(s.check(&json!(5))),
            "text-content expects a string, got 5"
        );
        let h = prop("blob", "hex");
        assert_eq!(h.parse_user("00ffAB").unwrap(), json!("00ffAB"));
        assert_eq!(
            err(h.parse_user("zz")),
            "blob must be a string of hex digits, got 'zz'"
        );
        assert_eq!(
            err(h.check(&json!(12))),
            "blob expects a string of hex digits, got 12"
        );
        let u = prop("odd", "blob");
        assert_eq!(u.parse_user("[1,2]").unwrap(), json!([1, 2]));
        assert_eq!(u.parse_user("plain").unwrap(), json!("plain"));
    }

    #[test]
    fn integers_from_text() {
        let b = ranged("brightness", "uint16", 1.0, 100.0, 1.0, "percentage");
        assert_eq!(b.parse_user("40").unwrap(), json!(40));
        assert_eq!(b.parse_user("+40").unwrap(), json!(40));
        assert_eq!(b.parse_user("40.0").unwrap(), json!(40));
        assert_eq!(
            err(b.parse_user("40.5")),
            "brightness must be a whole number, got 40.5"
        );
        assert_eq!(
            err(b.parse_user("lots")),
            "brightness expects an integer, got 'lots'"
        );
        assert!(b.parse_user("inf").is_err());
        let rgb = ranged("color", "uint32", 1.0, 16_777_215.0, 1.0, "rgb");
        assert_eq!(rgb.parse_user("#FF0000").unwrap(), json!(16_711_680));
        assert_eq!(rgb.parse_user("0x00ff00").unwrap(), json!(65_280));
        assert_eq!(rgb.display_value(&json!(16_711_680)), "16711680 (#FF0000)");
        let i8p = prop("delta", "int8");
        assert_eq!(i8p.parse_user("-100").unwrap(), json!(-100));
        assert_eq!(
            err(i8p.parse_user("-200")),
            "delta must fit int8 (-128 to 127), got -200"
        );
        let u32p = prop("n", "uint32");
        assert!(u32p.check(&json!(u64::MAX)).is_err());
        let i64p = prop("n", "int64");
        assert_eq!(i64p.check(&json!(i64::MIN)).unwrap(), json!(i64::MIN));
        assert!(matches!(
            i64p.check(&json!(u64::MAX)),
            Err(ValueError::OutOfFormat { .. })
        ));
        let f = ranged("t", "float", -30.0, 100.0, 0.1, "celsius");
        assert_eq!(f.parse_user("-5.5").unwrap(), json!(-5.5));
        assert_eq!(err(f.parse_user("warm")), "t expects a number, got 'warm'");
    }

    #[test]
    fn tolerant_decode() {
        let b = ranged("brightness", "uint8", 1.0, 100.0, 1.0, "percentage");
        assert_eq!(b.decode_wire(&json!(1.0)), json!(1));
        assert_eq!(b.decode_wire(&json!(1.5)), json!(1.5));
        assert_eq!(b.decode_wire(&json!("42")), json!(42));
        assert_eq!(b.decode_wire(&json!("x")), json!("x"));
        let t = ranged("t", "float", -30.0, 100.0, 0.1, "celsius");
        assert_eq!(t.decode_wire(&json!("26.5")), json!(26.5));
        assert_eq!(t.decode_wire(&json!(null)), json!(null));
    }

    #[test]
    fn display() {
        let b = ranged("brightness", "uint8", 1.0, 100.0, 1.0, "percentage");
        assert_eq!(b.display_value(&json!(40)), "40 %");
        assert_eq!(b.display_value(&json!(40.0)), "40 %");
        let t = ranged("t", "float", -30.0, 100.0, 0.1, "celsius");
        assert_eq!(t.display_value(&json!(26.5)), "26.5 °C");
        let k = ranged("ct", "uint32", 2700.0, 6500.0, 1.0, "kelvin");
        assert_eq!(k.display_value(&json!(4000)), "4000 K");
        let a = ranged("angle", "uint16", 0.0, 360.0, 1.0, "arcdegrees");
        assert_eq!(a.display_value(&json!(90)), "90°");
        let odd = ranged("flow", "float", 0.0, 10.0, 0.5, "m3/h");
        assert_eq!(odd.display_value(&json!(2.5)), "2.5 m3/h");
        let none = ranged("level", "uint8", 0.0, 10.0, 1.0, "none");
        assert_eq!(none.display_value(&json!(3)), "3");
        assert_eq!(mode().display_value(&json!(1)), "1 (Sleep)");
        assert_eq!(mode().display_value(&json!(9)), "9");
        let mut angle = prop("horizontal-angle", "uint16");
        angle.list = vec![ValueListItem {
            value: 30,
            description: "30".into(),
        }];
        assert_eq!(angle.display_value(&json!(30)), "30");
        assert_eq!(prop("s", "string").display_value(&json!("abc")), "abc");
        assert_eq!(prop("s", "string").display_value(&json!(null)), "null");
        for unit in [
            ("seconds", "s"),
            ("minutes", "min"),
            ("hours", "h"),
            ("days", "d"),
        ] {
            let p = ranged("x", "uint32", 0.0, 100.0, 1.0, unit.0);
            assert_eq!(p.display_value(&json!(5)), format!("5 {}", unit.1));
        }
        for unit in ["watt", "kWh", "lux", "ppm", "μg/m3"] {
            let p = ranged("x", "float", 0.0, 100.0, 0.0, unit);
            assert_eq!(
                p.display_value(&json!(5)),
                format!("5 {}", display_unit(unit).unwrap())
            );
        }
    }

    #[test]
    fn defaults_are_acceptable() {
        let cases = [
            ranged("brightness", "uint8", 1.0, 100.0, 1.0, "percentage"),
            ranged("t", "float", 16.0, 31.0, 0.5, "celsius"),
            ranged("t", "float", -30.0, 100.0, 0.1, "celsius"),
            ranged("ct", "uint32", 2700.0, 6500.0, 1.0, "kelvin"),
            ranged(
                "scene",
                "int32",
                -2_147_483_648.0,
                2_147_483_647.0,
                1.0,
                "none",
            ),
            ranged("odd", "uint8", 3.0, 9.0, 2.0, "none"),
            ranged("zero-step", "uint8", 5.0, 9.0, 0.0, "none"),
            mode(),
            prop("on", "bool"),
            prop("name", "string"),
            prop("n", "int64"),
        ];
        for p in &cases {
            let v = p.default_value();
            assert!(
                p.check(&v).is_ok(),
                "{}: {v} -> {:?}",
                p.name(),
                p.check(&v)
            );
        }
        assert_eq!(cases[0].default_value(), json!(1));
        assert_eq!(cases[1].default_value(), json!(16));
        assert_eq!(cases[2].default_value(), json!(0));
        assert_eq!(cases[7].default_value(), json!(0));
    }

    #[test]
    fn writable() {
        let mut p = prop("temperature", "float");
        p.access.write = false;
        assert_eq!(
            p.check_write(&json!(1.0)).unwrap_err().to_string(),
            "temperature cannot be written (access: r-n); it can only be read or reported"
        );
        assert!(p.check(&json!(1.0)).is_ok());
    }

    #[test]
    fn allowed_text() {
        assert_eq!(
            mode().allowed_text(),
            "one of: 0 (Auto), 1 (Sleep), 2 (Favorite)"
        );
        assert_eq!(
            ranged("b", "uint8", 1.0, 100.0, 1.0, "percentage").allowed_text(),
            "between 1 and 100 in steps of 1"
        );
        assert_eq!(prop("on", "bool").allowed_text(), "true or false");
    }

    fn speaker() -> Spec {
        Spec::from_json(
            json!({
                "type": "urn:miot-spec-v2:device:speaker:0000A015:x-y:1",
                "services": [{
                    "iid": 5, "type": "urn:miot-spec-v2:service:intelligent-speaker:0000789B:x-y:1",
                    "properties": [
                        {"iid": 1, "type": "urn:miot-spec-v2:property:text-content:0000005D:x-y:1",
                         "format": "string", "access": []},
                        {"iid": 2, "type": "urn:miot-spec-v2:property:silent-execution:0000005E:x-y:1",
                         "format": "bool", "access": []}
                    ],
                    "actions": [
                        {"iid": 1, "type": "urn:miot-spec-v2:action:play-text:00002833:x-y:1", "in": [1], "out": []},
                        {"iid": 5, "type": "urn:miot-spec-v2:action:execute-text-directive:00002834:x-y:1",
                         "in": [1, 2], "out": []},
                        {"iid": 6, "type": "urn:miot-spec-v2:action:toggle:00002811:x-y:1", "in": [], "out": []},
                        {"iid": 7, "type": "urn:x-spec:action:ghost:00000001:x-y:1", "in": [9], "out": []}
                    ]
                }]
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn action_args_positional() {
        let s = speaker();
        assert_eq!(
            s.check_action_args(5, 1, &[json!("hello")]).unwrap(),
            [json!("hello")]
        );
        assert_eq!(
            s.check_action_args(5, 1, &[]).unwrap_err().to_string(),
            "play-text takes 1 argument (text-content), got 0"
        );
        assert_eq!(
            s.check_action_args(5, 6, &[json!(1)])
                .unwrap_err()
                .to_string(),
            "toggle takes no arguments, got 1"
        );
        assert_eq!(
            s.check_action_args(5, 5, &[json!("x")])
                .unwrap_err()
                .to_string(),
            "execute-text-directive takes 2 arguments (text-content, silent-execution), got 1"
        );
        assert_eq!(
            s.check_action_args(5, 5, &[json!("x"), json!("yes")])
                .unwrap_err()
                .to_string(),
            "argument 2 of execute-text-directive: silent-execution expects true or false, got 'yes'"
        );
        assert_eq!(
            s.check_action_args(5, 9, &[]).unwrap_err().to_string(),
            "the spec has no action 5.9"
        );
        // A piid with no property is passed through unchecked.
        assert_eq!(
            s.check_action_args(5, 7, &[json!({"any": 1})]).unwrap(),
            [json!({"any": 1})]
        );
        assert_eq!(
            s.check_action_args(5, 7, &[]).unwrap_err().to_string(),
            "ghost takes 1 argument (piid 9), got 0"
        );
    }

    #[test]
    fn action_args_named() {
        let s = speaker();
        let args = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(
            s.check_action_named_args(
                5,
                5,
                &args(json!({"silent_execution": true, "Text-Content": "hi"}))
            )
            .unwrap(),
            [json!("hi"), json!(true)]
        );
        assert_eq!(
            s.check_action_named_args(5, 5, &args(json!({"1": "hi", "2": false})))
                .unwrap(),
            [json!("hi"), json!(false)]
        );
        assert_eq!(
            s.check_action_named_args(5, 5, &args(json!({"text-content": "hi"})))
                .unwrap_err()
                .to_string(),
            "execute-text-directive is missing argument 'silent-execution'"
        );
        assert_eq!(
            s.check_action_named_args(5, 1, &args(json!({"volume": 3})))
                .unwrap_err()
                .to_string(),
            "play-text has no argument 'volume'; it takes 1 argument (text-content)"
        );
        assert!(matches!(
            s.check_action_named_args(5, 1, &args(json!({"text-content": "a", "1": "b"}))),
            Err(ValueError::AmbiguousArg { .. })
        ));
    }
}
