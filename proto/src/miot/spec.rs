//! The spec model and the instance-document parser.
//!
//! [`Spec::from_json`] reads one MIoT instance document (what
//! `miot-spec-v2/instance?type=<urn>` returns) into [`Spec`] → [`Service`] →
//! [`Property`] / [`Action`] / [`Event`]. It accepts what real documents
//! contain rather than what the format description promises: arrays may be
//! missing, `[]` or `null`; unknown keys are ignored; services and items may
//! come in any order; `access` may be empty; descriptions may be empty;
//! URNs may have an 8th segment; a range step may be 0; and action or event
//! arguments may name properties the service does not have. Those oddities
//! are kept and reported by [`Spec::warnings`]. A document that cannot be read
//! gives a [`SpecError`] naming the element and field.
//!
//! Lookups go by iid (`siid`, `piid`, `aiid`, `eiid`), never by position.
//!
//! This module does not check values (see [`super::value`]), name things
//! (see [`super::names`]) or fetch documents.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use super::error::{ItemKind, Location, Pos, SpecError, SpecWarning};
use super::urn::{Urn, UrnKind};

/// A property's value format.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Format {
    /// `bool`
    Bool,
    /// `uint8`
    Uint8,
    /// `uint16`
    Uint16,
    /// `uint32`
    Uint32,
    /// `int8`
    Int8,
    /// `int16`
    Int16,
    /// `int32`
    Int32,
    /// `int64`
    Int64,
    /// `float`
    Float,
    /// `string`
    String,
    /// `hex`: a string of hex digits (listed in some format lists, unused in
    /// real documents).
    Hex,
    /// Anything else, kept verbatim; values pass through unchecked.
    Unknown(String),
}

impl Format {
    /// Parses a `format` string. Unknown names become [`Format::Unknown`].
    pub fn parse(s: &str) -> Self {
        match s {
            "bool" => Self::Bool,
            "uint8" => Self::Uint8,
            "uint16" => Self::Uint16,
            "uint32" => Self::Uint32,
            "int8" => Self::Int8,
            "int16" => Self::Int16,
            "int32" => Self::Int32,
            "int64" => Self::Int64,
            "float" => Self::Float,
            "string" => Self::String,
            "hex" => Self::Hex,
            other => Self::Unknown(other.to_string()),
        }
    }

    /// The format as written in a document.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Bool => "bool",
            Self::Uint8 => "uint8",
            Self::Uint16 => "uint16",
            Self::Uint32 => "uint32",
            Self::Int8 => "int8",
            Self::Int16 => "int16",
            Self::Int32 => "int32",
            Self::Int64 => "int64",
            Self::Float => "float",
            Self::String => "string",
            Self::Hex => "hex",
            Self::Unknown(s) => s,
        }
    }

    /// The inclusive bounds of an integer format; `None` for other formats.
    pub fn integer_bounds(&self) -> Option<(i64, i64)> {
        Some(match self {
            Self::Uint8 => (0, i64::from(u8::MAX)),
            Self::Uint16 => (0, i64::from(u16::MAX)),
            Self::Uint32 => (0, i64::from(u32::MAX)),
            Self::Int8 => (i64::from(i8::MIN), i64::from(i8::MAX)),
            Self::Int16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
            Self::Int32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
            Self::Int64 => (i64::MIN, i64::MAX),
            _ => return None,
        })
    }

    /// True for the integer formats.
    pub fn is_integer(&self) -> bool {
        self.integer_bounds().is_some()
    }

    /// True for the integer formats and `float`.
    pub fn is_numeric(&self) -> bool {
        self.is_integer() || *self == Self::Float
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A property's access set. Real documents list the words in any order, and
/// the set may be empty (argument-only properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access {
    /// Can be fetched with `get_properties`.
    pub read: bool,
    /// Can be set with `set_properties`.
    pub write: bool,
    /// The device reports changes.
    pub notify: bool,
}

impl Access {
    /// True when no access is granted (an argument-only property).
    pub fn is_empty(&self) -> bool {
        !(self.read || self.write || self.notify)
    }

    /// `rwn`-style letters, `-` for a missing right (e.g. `r-n`).
    pub fn letters(&self) -> String {
        [(self.read, 'r'), (self.write, 'w'), (self.notify, 'n')]
            .iter()
            .map(|&(on, c)| if on { c } else { '-' })
            .collect()
    }
}

/// `value-range`: `[min, max, step]`. Advisory: real devices exceed them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueRange {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
    /// Step; may be 0 in real documents (then steps are not checked).
    pub step: f64,
}

/// One entry of a `value-list`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValueListItem {
    /// The integer sent on the wire.
    pub value: i64,
    /// Free text ("Auto", "Level1", sometimes Chinese, sometimes empty).
    pub description: String,
}

/// A property of a service, addressed by `(siid, piid)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The piid, unique within its service.
    pub iid: u32,
    /// The property type.
    pub urn: Urn,
    /// Free text, may be empty.
    pub description: String,
    /// Value format.
    pub format: Format,
    /// Access set.
    pub access: Access,
    /// Unit as written (`percentage`, `celsius`, `none`, ...).
    pub unit: Option<String>,
    /// Numeric range, if any.
    pub range: Option<ValueRange>,
    /// Enumeration, empty if none.
    pub list: Vec<ValueListItem>,
}

impl Property {
    /// The type name from the URN, e.g. `brightness`.
    pub fn name(&self) -> &str {
        self.urn.name()
    }
}

/// An action of a service, addressed by `(siid, aiid)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The aiid, unique within its service.
    pub iid: u32,
    /// The action type.
    pub urn: Urn,
    /// Free text, may be empty.
    pub description: String,
    /// piids (same service) of the input arguments, in call order.
    pub ins: Vec<u32>,
    /// piids (same service) of the output values, in reply order.
    pub outs: Vec<u32>,
}

impl Action {
    /// The type name from the URN, e.g. `toggle`.
    pub fn name(&self) -> &str {
        self.urn.name()
    }
}

/// An event of a service, addressed by `(siid, eiid)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The eiid, unique within its service.
    pub iid: u32,
    /// The event type.
    pub urn: Urn,
    /// Free text, may be empty.
    pub description: String,
    /// piids (same service) whose values the event carries.
    pub arguments: Vec<u32>,
}

impl Event {
    /// The type name from the URN, e.g. `lock-opened`.
    pub fn name(&self) -> &str {
        self.urn.name()
    }
}

/// A service of a device, addressed by its `siid`.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The siid, unique in the device.
    pub iid: u32,
    /// The service type.
    pub urn: Urn,
    /// Free text, may be empty.
    pub description: String,
    /// Properties in document order.
    pub properties: Vec<Property>,
    /// Actions in document order.
    pub actions: Vec<Action>,
    /// Events in document order.
    pub events: Vec<Event>,
}

impl Service {
    /// The type name from the URN, e.g. `light`.
    pub fn name(&self) -> &str {
        self.urn.name()
    }

    /// The property with this piid.
    pub fn property(&self, piid: u32) -> Option<&Property> {
        self.properties.iter().find(|p| p.iid == piid)
    }

    /// The action with this aiid.
    pub fn action(&self, aiid: u32) -> Option<&Action> {
        self.actions.iter().find(|a| a.iid == aiid)
    }

    /// The event with this eiid.
    pub fn event(&self, eiid: u32) -> Option<&Event> {
        self.events.iter().find(|e| e.iid == eiid)
    }
}

/// One MIoT spec instance document.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The device type URN (carries the instance version).
    pub urn: Urn,
    /// The vendor's top-level description ("Light", "Two Key Switch", ...).
    pub description: String,
    /// Services in document order (not necessarily by siid).
    pub services: Vec<Service>,
    /// Problems noticed while reading that the model cannot carry.
    notes: Vec<SpecWarning>,
}

impl Spec {
    /// Builds a spec from parts (for tests and generated specs).
    pub fn new(urn: Urn, description: impl Into<String>, services: Vec<Service>) -> Self {
        Self {
            urn,
            description: description.into(),
            services,
            notes: Vec::new(),
        }
    }

    /// Parses an instance document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SpecError> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| SpecError::Json(e.to_string()))?;
        Self::from_value(&doc)
    }

    /// Parses an instance document that is already JSON.
    pub fn from_value(doc: &Value) -> Result<Self, SpecError> {
        let mut notes = Vec::new();
        let loc = Location::DEVICE;
        let m = object(doc, loc)?;
        let urn = urn_field(m, loc)?;
        let description = description_field(m, loc)?;
        let mut services = Vec::new();
        for (index, sv) in array_field(m, "services", loc)?.iter().enumerate() {
            services.push(parse_service(sv, index, &mut notes)?);
        }
        Ok(Self {
            urn,
            description,
            services,
            notes,
        })
    }

    /// Writes the spec back out as an instance document (keys in the usual
    /// order, empty arrays left out). `Spec::from_value(&s.to_json_value())`
    /// gives back an equal spec.
    pub fn to_json_value(&self) -> Value {
        let services: Vec<Value> = self.services.iter().map(service_json).collect();
        let mut m = Map::new();
        m.insert("type".into(), Value::from(self.urn.as_str()));
        m.insert("description".into(), Value::from(self.description.as_str()));
        m.insert("services".into(), Value::Array(services));
        Value::Object(m)
    }

    /// The device type name from the URN: `light`, `outlet`, `lock`,
    /// `air-purifier`, ...
    pub fn device_type(&self) -> &str {
        self.urn.name()
    }

    /// The service with this siid.
    pub fn service(&self, siid: u32) -> Option<&Service> {
        self.services.iter().find(|s| s.iid == siid)
    }

    /// The property `(siid, piid)`.
    pub fn property(&self, siid: u32, piid: u32) -> Option<&Property> {
        self.service(siid).and_then(|s| s.property(piid))
    }

    /// The action `(siid, aiid)`.
    pub fn action(&self, siid: u32, aiid: u32) -> Option<&Action> {
        self.service(siid).and_then(|s| s.action(aiid))
    }

    /// The event `(siid, eiid)`.
    pub fn event(&self, siid: u32, eiid: u32) -> Option<&Event> {
        self.service(siid).and_then(|s| s.event(eiid))
    }

    /// Services sorted by siid.
    pub fn services_by_iid(&self) -> Vec<&Service> {
        let mut v: Vec<&Service> = self.services.iter().collect();
        v.sort_by_key(|s| s.iid);
        v
    }

    /// Every problem in the document that did not stop parsing: argument
    /// piids without a property, duplicate iids, unusable steps, inverted
    /// ranges, unknown formats and access words, URN kinds in the wrong
    /// place. Empty for a clean document.
    pub fn warnings(&self) -> Vec<SpecWarning> {
        let mut out = self.notes.clone();
        if !matches!(self.urn.kind(), UrnKind::Device) {
            out.push(kind_mismatch(Location::DEVICE, "device", self.urn.kind()));
        }
        let mut seen_services = BTreeSet::new();
        for s in &self.services {
            if !seen_services.insert(s.iid) {
                out.push(SpecWarning::DuplicateIid {
                    siid: None,
                    kind: None,
                    iid: s.iid,
                });
            }
            let sloc = Location::service(Pos::Iid(s.iid));
            if !matches!(s.urn.kind(), UrnKind::Service) {
                out.push(kind_mismatch(sloc, "service", s.urn.kind()));
            }
            service_warnings(s, &mut out);
        }
        out
    }
}

fn service_warnings(s: &Service, out: &mut Vec<SpecWarning>) {
    let sloc = Location::service(Pos::Iid(s.iid));
    let mut dup = |kind: ItemKind, iids: &mut dyn Iterator<Item = u32>| {
        let mut seen = BTreeSet::new();
        for iid in iids {
            if !seen.insert(iid) {
                out.push(SpecWarning::DuplicateIid {
                    siid: Some(s.iid),
                    kind: Some(kind),
                    iid,
                });
            }
        }
    };
    dup(ItemKind::Property, &mut s.properties.iter().map(|p| p.iid));
    dup(ItemKind::Action, &mut s.actions.iter().map(|a| a.iid));
    dup(ItemKind::Event, &mut s.events.iter().map(|e| e.iid));
    for p in &s.properties {
        let ploc = sloc.item(ItemKind::Property, Pos::Iid(p.iid));
        if !matches!(p.urn.kind(), UrnKind::Property) {
            out.push(kind_mismatch(ploc, "property", p.urn.kind()));
        }
        if let Format::Unknown(f) = &p.format {
            out.push(SpecWarning::UnknownFormat {
                siid: s.iid,
                piid: p.iid,
                format: f.clone(),
            });
        }
        if let Some(r) = p.range {
            if !(r.step.is_finite() && r.step > 0.0) {
                out.push(SpecWarning::UnusableStep {
                    siid: s.iid,
                    piid: p.iid,
                    step: r.step,
                });
            }
            if r.min > r.max {
                out.push(SpecWarning::InvertedRange {
                    siid: s.iid,
                    piid: p.iid,
                    min: r.min,
                    max: r.max,
                });
            }
        }
    }
    let mut missing = |kind: ItemKind, iid: u32, list: &'static str, piids: &[u32]| {
        for &piid in piids {
            if s.property(piid).is_none() {
                out.push(SpecWarning::MissingArgumentProperty {
                    siid: s.iid,
                    kind,
                    iid,
                    list,
                    piid,
                });
            }
        }
    };
    for a in &s.actions {
        missing(ItemKind::Action, a.iid, "in", &a.ins);
        missing(ItemKind::Action, a.iid, "out", &a.outs);
    }
    for e in &s.events {
        missing(ItemKind::Event, e.iid, "arguments", &e.arguments);
    }
    for a in &s.actions {
        if !matches!(a.urn.kind(), UrnKind::Action) {
            let loc = sloc.item(ItemKind::Action, Pos::Iid(a.iid));
            out.push(kind_mismatch(loc, "action", a.urn.kind()));
        }
    }
    for e in &s.events {
        if !matches!(e.urn.kind(), UrnKind::Event) {
            let loc = sloc.item(ItemKind::Event, Pos::Iid(e.iid));
            out.push(kind_mismatch(loc, "event", e.urn.kind()));
        }
    }
}

fn kind_mismatch(location: Location, expected: &'static str, found: &UrnKind) -> SpecWarning {
    SpecWarning::KindMismatch {
        location,
        expected,
        found: found.as_str().to_string(),
    }
}

// ---------------------------------------------------------------- parsing --

/// A short, bounded description of a JSON value for error messages.
pub(crate) fn describe(v: &Value) -> String {
    fn clip(s: &str) -> String {
        let mut out: String = s.chars().take(40).collect();
        if s.chars().count() > 40 {
            out.push('…');
        }
        out
    }
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the bool {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{}\"", clip(s)),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

fn object(v: &Value, location: Location) -> Result<&Map<String, Value>, SpecError> {
    v.as_object().ok_or_else(|| SpecError::NotAnObject {
        location,
        found: describe(v),
    })
}

/// A present, non-null field.
fn required<'a>(
    m: &'a Map<String, Value>,
    field: &'static str,
    location: Location,
) -> Result<&'a Value, SpecError> {
    match m.get(field) {
        None | Some(Value::Null) => Err(SpecError::MissingField { location, field }),
        Some(v) => Ok(v),
    }
}

/// A field that is absent or null counts as not there.
fn optional<'a>(m: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    m.get(field).filter(|v| !v.is_null())
}

fn invalid(
    location: Location,
    field: &'static str,
    expected: &'static str,
    v: &Value,
) -> SpecError {
    SpecError::InvalidField {
        location,
        field,
        expected,
        found: describe(v),
    }
}

/// An integral JSON number that fits `T` (`1.0` counts as `1`).
pub(crate) fn as_whole_i64(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    // Exclusive upper bound: 2^63 itself does not fit.
    if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
    {
        // In range and whole, so the conversion is exact.
        #[allow(clippy::cast_possible_truncation)]
        return Some(f as i64);
    }
    None
}

fn iid_value(v: &Value) -> Option<u32> {
    as_whole_i64(v).and_then(|i| u32::try_from(i).ok())
}

fn iid_field(m: &Map<String, Value>, location: Location) -> Result<u32, SpecError> {
    let v = required(m, "iid", location)?;
    iid_value(v).ok_or_else(|| invalid(location, "iid", "a non-negative integer", v))
}

/// The position of an array element: its iid if readable, else its index.
fn position(v: &Value, index: usize) -> Pos {
    v.get("iid")
        .and_then(iid_value)
        .map_or(Pos::Index(index), Pos::Iid)
}

fn urn_field(m: &Map<String, Value>, location: Location) -> Result<Urn, SpecError> {
    let v = required(m, "type", location)?;
    let s = v
        .as_str()
        .ok_or_else(|| invalid(location, "type", "a URN string", v))?;
    Urn::parse(s).map_err(|source| SpecError::BadUrn { location, source })
}

fn description_field(m: &Map<String, Value>, location: Location) -> Result<String, SpecError> {
    match optional(m, "description") {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(invalid(location, "description", "a string", v)),
    }
}

fn array_field<'a>(
    m: &'a Map<String, Value>,
    field: &'static str,
    location: Location,
) -> Result<&'a [Value], SpecError> {
    match optional(m, field) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(invalid(location, field, "an array", v)),
    }
}

fn iid_list(
    m: &Map<String, Value>,
    field: &'static str,
    location: Location,
) -> Result<Vec<u32>, SpecError> {
    array_field(m, field, location)?
        .iter()
        .map(|v| {
            iid_value(v).ok_or_else(|| {
                invalid(
                    location,
                    field,
                    "an array of property iids (non-negative integers)",
                    v,
                )
            })
        })
        .collect()
}

fn parse_service(
    v: &Value,
    index: usize,
    notes: &mut Vec<SpecWarning>,
) -> Result<Service, SpecError> {
    let loc = Location::service(position(v, index));
    let m = object(v, loc)?;
    let iid = iid_field(m, loc)?;
    let urn = urn_field(m, loc)?;
    let description = description_field(m, loc)?;
    let mut properties = Vec::new();
    for (i, pv) in array_field(m, "properties", loc)?.iter().enumerate() {
        properties.push(parse_property(
            pv,
            loc.item(ItemKind::Property, position(pv, i)),
            iid,
            notes,
        )?);
    }
    let mut actions = Vec::new();
    for (i, av) in array_field(m, "actions", loc)?.iter().enumerate() {
        let aloc = loc.item(ItemKind::Action, position(av, i));
        let am = object(av, aloc)?;
        actions.push(Action {
            iid: iid_field(am, aloc)?,
            urn: urn_field(am, aloc)?,
            description: description_field(am, aloc)?,
            ins: iid_list(am, "in", aloc)?,
            outs: iid_list(am, "out", aloc)?,
        });
    }
    let mut events = Vec::new();
    for (i, ev) in array_field(m, "events", loc)?.iter().enumerate() {
        let eloc = loc.item(ItemKind::Event, position(ev, i));
        let em = object(ev, eloc)?;
        events.push(Event {
            iid: iid_field(em, eloc)?,
            urn: urn_field(em, eloc)?,
            description: description_field(em, eloc)?,
            arguments: iid_list(em, "arguments", eloc)?,
        });
    }
    Ok(Service {
        iid,
        urn,
        description,
        properties,
        actions,
        events,
    })
}

fn parse_property(
    v: &Value,
    loc: Location,
    siid: u32,
    notes: &mut Vec<SpecWarning>,
) -> Result<Property, SpecError> {
    let m = object(v, loc)?;
    let iid = iid_field(m, loc)?;
    let urn = urn_field(m, loc)?;
    let description = description_field(m, loc)?;
    let fv = required(m, "format", loc)?;
    let format = Format::parse(
        fv.as_str()
            .ok_or_else(|| invalid(loc, "format", "a format name string", fv))?,
    );
    let mut access = Access::default();
    for a in array_field(m, "access", loc)? {
        match a.as_str() {
            Some("read") => access.read = true,
            Some("write") => access.write = true,
            Some("notify") => access.notify = true,
            Some(other) => notes.push(SpecWarning::UnknownAccess {
                siid,
                piid: iid,
                access: other.to_string(),
            }),
            None => {
                return Err(invalid(
                    loc,
                    "access",
                    "an array of strings (read, write, notify)",
                    a,
                ))
            }
        }
    }
    let unit = match optional(m, "unit") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(invalid(loc, "unit", "a string", other)),
    };
    let range = match optional(m, "value-range") {
        None => None,
        Some(rv) => {
            let nums: Option<Vec<f64>> = rv
                .as_array()
                .map(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>())
                .unwrap_or(None);
            match nums.as_deref() {
                Some(&[min, max, step]) => Some(ValueRange { min, max, step }),
                _ => {
                    return Err(invalid(
                        loc,
                        "value-range",
                        "[min, max, step] (three numbers)",
                        rv,
                    ))
                }
            }
        }
    };
    let mut list = Vec::new();
    for item in array_field(m, "value-list", loc)? {
        const EXPECTED: &str = "an array of {\"value\": <integer>, \"description\": <string>}";
        let im = item
            .as_object()
            .ok_or_else(|| invalid(loc, "value-list", EXPECTED, item))?;
        let value = im
            .get("value")
            .and_then(as_whole_i64)
            .ok_or_else(|| invalid(loc, "value-list", EXPECTED, item))?;
        let description = match optional(im, "description") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid(loc, "value-list", EXPECTED, item)),
        };
        list.push(ValueListItem { value, description });
    }
    Ok(Property {
        iid,
        urn,
        description,
        format,
        access,
        unit,
        range,
        list,
    })
}

// ----------------------------------------------------------------- output --

/// A JSON number for an f64, written as an integer when it is whole.
pub(crate) fn number(f: f64) -> Value {
    if let Some(i) = as_whole_i64(&Value::from(f)) {
        Value::from(i)
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

fn head(urn: &Urn, iid: u32, description: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("iid".into(), Value::from(iid));
    m.insert("type".into(), Value::from(urn.as_str()));
    m.insert("description".into(), Value::from(description));
    m
}

fn service_json(s: &Service) -> Value {
    let mut m = head(&s.urn, s.iid, &s.description);
    if !s.properties.is_empty() {
        m.insert(
            "properties".into(),
            Value::Array(s.properties.iter().map(property_json).collect()),
        );
    }
    if !s.actions.is_empty() {
        let actions = s
            .actions
            .iter()
            .map(|a| {
                let mut am = head(&a.urn, a.iid, &a.description);
                am.insert("in".into(), Value::from(a.ins.clone()));
                am.insert("out".into(), Value::from(a.outs.clone()));
                Value::Object(am)
            })
            .collect();
        m.insert("actions".into(), Value::Array(actions));
    }
    if !s.events.is_empty() {
        let events = s
            .events
            .iter()
            .map(|e| {
                let mut em = head(&e.urn, e.iid, &e.description);
                em.insert("arguments".into(), Value::from(e.arguments.clone()));
                Value::Object(em)
            })
            .collect();
        m.insert("events".into(), Value::Array(events));
    }
    Value::Object(m)
}

fn property_json(p: &Property) -> Value {
    let mut m = head(&p.urn, p.iid, &p.description);
    m.insert("format".into(), Value::from(p.format.as_str()));
    let access: Vec<Value> = [
        (p.access.read, "read"),
        (p.access.write, "write"),
        (p.access.notify, "notify"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, w)| Value::from(*w))
    .collect();
    m.insert("access".into(), Value::Array(access));
    if let Some(u) = &p.unit {
        m.insert("unit".into(), Value::from(u.as_str()));
    }
    if let Some(r) = p.range {
        m.insert(
            "value-range".into(),
            Value::Array(vec![number(r.min), number(r.max), number(r.step)]),
        );
    }
    if !p.list.is_empty() {
        let items = p
            .list
            .iter()
            .map(|i| {
                let mut im = Map::new();
                im.insert("value".into(), Value::from(i.value));
                im.insert("description".into(), Value::from(i.description.as_str()));
                Value::Object(im)
            })
            .collect();
        m.insert("value-list".into(), Value::Array(items));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Spec, SpecError> {
        Spec::from_json(v.to_string().as_bytes())
    }

    fn minimal_property(iid: u32) -> Value {
        json!({"iid": iid, "type": format!("urn:miot-spec-v2:property:on:00000006:x-y:1"),
               "description": "Switch Status", "format": "bool", "access": ["read","write","notify"]})
    }

    #[test]
    fn arrays_missing_empty_or_null() {
        let spec = parse(json!({
            "type": "urn:miot-spec-v2:device:light:0000A001:x-y:1",
            "description": "Light",
            "services": [
                {"iid": 1, "type": "urn:miot-spec-v2:service:light:00007802:x-y:1", "description": "",
                 "properties": null, "actions": [], "events": null},
                {"iid": 2, "type": "urn:miot-spec-v2:service:light:00007802:x-y:1"},
                {"iid": 3, "type": "urn:miot-spec-v2:service:light:00007802:x-y:1",
                 "actions": [{"iid": 1, "type": "urn:miot-spec-v2:action:toggle:00002811:x-y:1",
                              "description": "Toggle", "in": null, "out": null}]}
            ]
        }))
        .unwrap();
        assert_eq!(spec.services.len(), 3);
        assert!(spec.services.iter().all(|s| s.properties.is_empty()));
        assert_eq!(spec.service(2).map(|s| s.description.as_str()), Some(""));
        let toggle = spec.action(3, 1).unwrap();
        assert!(toggle.ins.is_empty() && toggle.outs.is_empty());
        assert!(spec.warnings().is_empty(), "{:?}", spec.warnings());
    }

    #[test]
    fn unknown_keys_ignored_and_out_of_order_indexed_by_iid() {
        let spec = parse(json!({
            "type": "urn:miot-spec-v2:device:light:0000A001:x-y:1",
            "description": "Light",
            "extra": 1,
            "services": [
                {"iid": 5, "type": "urn:miot-spec-v2:service:light:00007802:x-y:1", "description": "five",
                 "properties": [minimal_property(3), minimal_property(1)]},
                {"iid": 1, "type": "urn:miot-spec-v2:service:device-information:00007801:x-y:1",
                 "description": "one", "comment": "ignored"}
            ]
        }))
        .unwrap();
        assert_eq!(spec.service(1).unwrap().description, "one");
        assert_eq!(spec.service(5).unwrap().description, "five");
        assert!(spec.service(2).is_none());
        assert_eq!(spec.property(5, 3).unwrap().iid, 3);
        assert!(spec.property(5, 2).is_none());
        let order: Vec<u32> = spec.services_by_iid().iter().map(|s| s.iid).collect();
        assert_eq!(order, [1, 5]);
    }

    #[test]
    fn empty_access_and_zero_step_and_missing_argument() {
        let spec = parse(json!({
            "type": "urn:miot-spec-v2:device:speaker:0000A015:x-y:1",
            "description": "",
            "services": [{
                "iid": 5, "type": "urn:miot-spec-v2:service:intelligent-speaker:0000789B:x-y:1",
                "properties": [
                    {"iid": 1, "type": "urn:miot-spec-v2:property:text-content:0000005D:x-y:1",
                     "description": "Text Content", "format": "string", "access": []},
                    {"iid": 2, "type": "urn:miot-spec-v2:property:volume:00000013:x-y:1",
                     "description": "Volume", "format": "uint8", "access": ["notify", "read"],
                     "value-range": [0, 100, 0], "source": 1, "gatt-access": []}
                ],
                "actions": [{"iid": 1, "type": "urn:miot-spec-v2:action:play-text:00002833:x-y:1",
                             "description": "Play Text", "in": [1, 9], "out": []}],
                "events": [{"iid": 1, "type": "urn:miot-spec-v2:event:e:00005001:x-y:1",
                            "description": "", "arguments": [7]}]
            }]
        }))
        .unwrap();
        let text = spec.property(5, 1).unwrap();
        assert!(text.access.is_empty());
        assert_eq!(text.access.letters(), "---");
        let vol = spec.property(5, 2).unwrap();
        assert_eq!(vol.access.letters(), "r-n");
        assert_eq!(vol.range.unwrap().step, 0.0);
        assert_eq!(spec.action(5, 1).unwrap().ins, [1, 9]);
        let w = spec.warnings();
        assert_eq!(w.len(), 3, "{w:?}");
        let texts: Vec<String> = w.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "service 5 property 2: value-range step 0 is not positive; steps are not checked",
                "service 5 action 1: `in` names property 9, which service 5 does not have",
                "service 5 event 1: `arguments` names property 7, which service 5 does not have",
            ]
        );
    }

    #[test]
    fn unknown_format_and_access_and_duplicates_are_warnings() {
        let spec = parse(json!({
            "type": "urn:miot-spec-v2:device:light:0000A001:x-y:1",
            "services": [
                {"iid": 2, "type": "urn:miot-spec-v2:service:light:00007802:x-y:1",
                 "properties": [
                    {"iid": 1, "type": "urn:miot-spec-v2:property:x:00000001:x-y:1",
                     "format": "blob", "access": ["read", "subscribe"]},
                    {"iid": 1, "type": "urn:miot-spec-v2:property:y:00000002:x-y:1",
                     "format": "float", "access": [], "value-range": [5, 1, 1]}
                 ]},
                {"iid": 2, "type": "urn:miot-spec-v2:property:light:00007802:x-y:1"}
            ]
        }))
        .unwrap();
        let p = spec.property(2, 1).unwrap();
        assert_eq!(p.format, Format::Unknown("blob".into()));
        assert_eq!(p.urn.name(), "x", "first duplicate wins");
        let texts: Vec<String> = spec.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "service 2 property 1: unknown access 'subscribe' ignored",
                "service 2: property iid 1 appears more than once; the first is used",
                "service 2 property 1: unknown format 'blob'; values are not checked",
                "service 2 property 1: value-range min 5 is above max 1",
                "service iid 2 appears more than once; the first is used",
                "service 2: type URN is a 'property', expected a 'service'",
            ]
        );
    }

    #[test]
    fn malformed_documents_name_the_problem() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([1]), "device: expected a JSON object, found an array of 1 items"),
            (json!({"services": []}), "device: missing field `type`"),
            (
                json!({"type": "light", "services": []}),
                "device: field `type` is not a valid URN: 'light' does not start with `urn:`",
            ),
            (
                json!({"type": "urn:miot-spec-v2:device:light:0000A001:x-y:1", "services": {}}),
                "device: field `services` must be an array, found an object",
            ),
            (
                json!({"type": "urn:miot-spec-v2:device:light:0000A001:x-y:1",
                       "services": [{"type": "urn:miot-spec-v2:service:light:00007802"}]}),
                "service at index 0: missing field `iid`",
            ),
            (
                json!({"type": "urn:miot-spec-v2:device:light:0000A001:x-y:1",
                       "services": [{"iid": 3, "type": "urn:miot-spec-v2:service:light:00007802",
                         "properties": [minimal_property(1),
                            {"iid": 2, "type": "urn:miot-spec-v2:property:brightness:0000000D", "access": []}]}]}),
                "service 3 property 2: missing field `format`",
            ),
            (
                json!({"type": "urn:miot-spec-v2:device:light:0000A001:x-y:1",
                       "services": [{"iid": 3, "type": "urn:miot-spec-v2:service:light:00007802",
                         "properties": [{"iid": 2, "type": "urn:miot-spec-v2:property:brightness:0000000D",
                            "format": "uint8", "access": [], "value-range": [1, 100]}]}]}),
                "service 3 property 2: field `value-range` must be [min, max, step] (three numbers), found an array of 2 items",
            ),
            (
                json!({"type": "urn:miot-spec-v2:device:light:0000A001:x-y:1",
                       "services": [{"iid": 3, "type": "urn:miot-spec-v2:service:light:00007802",
                         "actions": [{"iid": 1, "type": "urn:miot-spec-v2:action:a:00002801",
                            "in": ["urn:miot-spec-v2:property:x:00000001"]}]}]}),
                "service 3 action 1: field `in` must be an array of property iids (non-negative integers), found the string \"urn:miot-spec-v2:property:x:00000001\"",
            ),
            (
                json!({"type": "urn:miot-spec-v2:device:light:0000A001:x-y:1",
                       "services": [{"iid": -1, "type": "urn:miot-spec-v2:service:light:00007802"}]}),
                "service at index 0: field `iid` must be a non-negative integer, found the number -1",
            ),
            (
                json!({"type": "urn:miot-spec-v2:device:light:0000A001:x-y:1",
                       "services": [{"iid": 2, "type": "urn:miot-spec-v2:service:light:00007802",
                         "properties": [{"iid": 1, "type": "urn:miot-spec-v2:property:mode:00000008",
                            "format": "uint8", "access": [], "value-list": [{"value": 1.5, "description": "x"}]}]}]}),
                "service 2 property 1: field `value-list` must be an array of {\"value\": <integer>, \"description\": <string>}, found an object",
            ),
        ];
        for (doc, want) in cases {
            let err = parse(doc.clone()).unwrap_err();
            assert_eq!(err.to_string(), want, "for {doc}");
        }
        let err = Spec::from_json(b"{\"type\": ").unwrap_err();
        assert!(matches!(err, SpecError::Json(_)), "{err}");
        assert!(err.to_string().starts_with("not valid JSON: "));
    }

    #[test]
    fn integral_floats_accepted_as_iids() {
        let spec = parse(json!({
            "type": "urn:miot-spec-v2:device:light:0000A001:x-y:1",
            "services": [{"iid": 2.0, "type": "urn:miot-spec-v2:service:light:00007802:x-y:1"}]
        }))
        .unwrap();
        assert!(spec.service(2).is_some());
    }

    #[test]
    fn json_round_trip() {
        let doc = json!({
            "type": "urn:miot-spec-v2:device:light:0000A001:x-y:1:0000C802",
            "description": "Light",
            "services": [{"iid": 2, "type": "urn:miot-spec-v2:service:light:00007802:x-y:1",
                "description": "Light",
                "properties": [
                    {"iid": 1, "type": "urn:miot-spec-v2:property:t:00000020:x-y:1", "description": "",
                     "format": "float", "access": ["read"], "unit": "celsius", "value-range": [16, 31, 0.5]},
                    {"iid": 2, "type": "urn:miot-spec-v2:property:mode:00000008:x-y:1", "description": "Mode",
                     "format": "uint8", "access": ["write"], "value-list": [{"value": 0, "description": "Auto"}]}
                ],
                "actions": [{"iid": 1, "type": "urn:miot-spec-v2:action:a:00002801:x-y:1", "description": "A",
                             "in": [1], "out": [2]}],
                "events": [{"iid": 1, "type": "urn:miot-spec-v2:event:e:00005001:x-y:1", "description": "E",
                            "arguments": [1]}]}]
        });
        let spec = parse(doc.clone()).unwrap();
        assert_eq!(spec.to_json_value(), doc);
        assert_eq!(Spec::from_value(&spec.to_json_value()).unwrap(), spec);
    }

    #[test]
    fn format_bounds() {
        assert_eq!(Format::parse("uint8").integer_bounds(), Some((0, 255)));
        assert_eq!(Format::parse("int8").integer_bounds(), Some((-128, 127)));
        assert_eq!(
            Format::parse("int64").integer_bounds(),
            Some((i64::MIN, i64::MAX))
        );
        assert!(Format::Float.is_numeric() && !Format::Float.is_integer());
        assert_eq!(Format::parse("hex"), Format::Hex);
        assert_eq!(Format::parse("weird").as_str(), "weird");
    }
}
