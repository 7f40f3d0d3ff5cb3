//! MIoT type URNs.
//!
//! ```text
//! urn:<namespace>:<kind>:<name>:<value>[:<vendor-product>:<version>[:<tail>]]
//! ```
//!
//! The standard identity of a type is `namespace:kind:name:value`; the
//! vendor-product, version and tail only say which instance document the
//! type appears in. The hex `value` is compared case-insensitively (vendor
//! documents write `0000000a`, standard ones `0000000A`). Everything after the
//! version is kept verbatim as the tail: it is usually a template id such as
//! `0000C802`, but at least one real document has `…:1:1` there.
//!
//! This module only parses and compares URNs; it does not know which types
//! exist.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use thiserror::Error;

/// What went wrong while parsing a URN. Each variant names the segment.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UrnError {
    /// The text does not start with the literal `urn:`.
    #[error("'{urn}' does not start with `urn:`")]
    NotAUrn {
        /// The text that was given.
        urn: String,
    },
    /// Fewer than the five required segments.
    #[error("'{urn}' has {found} segments; a type URN needs at least 5 (urn:<namespace>:<kind>:<name>:<value>)")]
    TooFewSegments {
        /// The text that was given.
        urn: String,
        /// How many `:`-separated segments it has.
        found: usize,
    },
    /// A required segment is empty.
    #[error("'{urn}' has an empty {segment}")]
    EmptySegment {
        /// The text that was given.
        urn: String,
        /// Which segment (`namespace`, `kind`, `name`, `value`, ...).
        segment: &'static str,
    },
    /// The value segment is not 1 to 8 hex digits.
    #[error("'{urn}': type value '{value}' is not 1 to 8 hex digits")]
    BadValue {
        /// The text that was given.
        urn: String,
        /// The offending segment.
        value: String,
    },
    /// The version segment is not a non-negative integer.
    #[error("'{urn}': version '{version}' is not a whole number")]
    BadVersion {
        /// The text that was given.
        urn: String,
        /// The offending segment.
        version: String,
    },
}

/// What a URN describes (its third segment).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UrnKind {
    /// `device`: a whole device (top of an instance document).
    Device,
    /// `service`
    Service,
    /// `property`
    Property,
    /// `action`
    Action,
    /// `event`
    Event,
    /// `template`
    Template,
    /// `device-template`
    DeviceTemplate,
    /// Anything else, kept verbatim.
    Other(String),
}

impl UrnKind {
    fn parse(s: &str) -> Self {
        match s {
            "device" => Self::Device,
            "service" => Self::Service,
            "property" => Self::Property,
            "action" => Self::Action,
            "event" => Self::Event,
            "template" => Self::Template,
            "device-template" => Self::DeviceTemplate,
            other => Self::Other(other.to_string()),
        }
    }

    /// The kind as written in a URN.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Device => "device",
            Self::Service => "service",
            Self::Property => "property",
            Self::Action => "action",
            Self::Event => "event",
            Self::Template => "template",
            Self::DeviceTemplate => "device-template",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for UrnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed MIoT type URN.
///
/// Equality and hashing compare the parsed parts, with the hex value compared
/// as a number (so `0000000a` equals `0000000A`). [`Urn::same_type`] compares
/// only the standard identity (`namespace:kind:name:value`).
#[derive(Debug, Clone)]
pub struct Urn {
    raw: String,
    namespace: String,
    kind: UrnKind,
    name: String,
    value: u32,
    vendor_product: Option<String>,
    version: Option<u32>,
    tail: Option<String>,
}

impl Urn {
    /// Parses a URN. Leading and trailing whitespace is not accepted.
    pub fn parse(text: &str) -> Result<Self, UrnError> {
        let urn = || text.to_string();
        let mut parts = text.splitn(8, ':');
        if parts.next() != Some("urn") {
            return Err(UrnError::NotAUrn { urn: urn() });
        }
        let segs: Vec<&str> = parts.collect();
        let (namespace, kind, name, value) = match segs.as_slice() {
            [ns, kind, name, value, ..] => (*ns, *kind, *name, *value),
            _ => {
                return Err(UrnError::TooFewSegments {
                    urn: urn(),
                    found: segs.len() + 1,
                })
            }
        };
        for (segment, text_seg) in [
            ("namespace", namespace),
            ("kind", kind),
            ("name", name),
            ("value", value),
        ] {
            if text_seg.is_empty() {
                return Err(UrnError::EmptySegment {
                    urn: urn(),
                    segment,
                });
            }
        }
        if value.len() > 8 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(UrnError::BadValue {
                urn: urn(),
                value: value.to_string(),
            });
        }
        let value_num = u32::from_str_radix(value, 16).map_err(|_| UrnError::BadValue {
            urn: urn(),
            value: value.to_string(),
        })?;
        let vendor_product = match segs.get(4) {
            Some(vp) if !vp.is_empty() => Some((*vp).to_string()),
            _ => None,
        };
        let version = match segs.get(5) {
            Some(v) if !v.is_empty() => {
                Some(v.parse::<u32>().map_err(|_| UrnError::BadVersion {
                    urn: urn(),
                    version: (*v).to_string(),
                })?)
            }
            _ => None,
        };
        let tail = segs
            .get(6)
            .filter(|t| !t.is_empty())
            .map(|t| (*t).to_string());
        Ok(Self {
            raw: text.to_string(),
            namespace: namespace.to_string(),
            kind: UrnKind::parse(kind),
            name: name.to_string(),
            value: value_num,
            vendor_product,
            version,
            tail,
        })
    }

    /// The URN exactly as it was written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Who defined the type: `miot-spec-v2`, `yeelink-spec`, `zhimi-spec`, ...
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// True for Xiaomi's standard namespace `miot-spec-v2`.
    pub fn is_standard(&self) -> bool {
        self.namespace == "miot-spec-v2"
    }

    /// What the URN describes.
    pub fn kind(&self) -> &UrnKind {
        &self.kind
    }

    /// The type name, e.g. `on`, `air-purifier`, `pm2.5-density`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The short type id (the 8 hex digits) as a number.
    pub fn value(&self) -> u32 {
        self.value
    }

    /// `vendor-product` (e.g. `yeelink-color1`), present only in instances.
    pub fn vendor_product(&self) -> Option<&str> {
        self.vendor_product.as_deref()
    }

    /// The instance version, present only in instances.
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// Everything after the version (usually a template id), verbatim.
    pub fn tail(&self) -> Option<&str> {
        self.tail.as_deref()
    }

    /// The standard identity `namespace:kind:name:VALUE` with the value in
    /// upper-case hex, suitable as a map key.
    pub fn type_key(&self) -> String {
        format!(
            "{}:{}:{}:{:08X}",
            self.namespace, self.kind, self.name, self.value
        )
    }

    /// True when both URNs name the same type (namespace, kind, name, value),
    /// whatever instance they come from.
    pub fn same_type(&self, other: &Urn) -> bool {
        self.namespace == other.namespace
            && self.kind == other.kind
            && self.name == other.name
            && self.value == other.value
    }
}

impl PartialEq for Urn {
    fn eq(&self, other: &Self) -> bool {
        self.same_type(other)
            && self.vendor_product == other.vendor_product
            && self.version == other.version
            && self.tail == other.tail
    }
}

impl Eq for Urn {}

impl Hash for Urn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.namespace.hash(state);
        self.kind.hash(state);
        self.name.hash(state);
        self.value.hash(state);
        self.vendor_product.hash(state);
        self.version.hash(state);
        self.tail.hash(state);
    }
}

impl fmt::Display for Urn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for Urn {
    type Err = UrnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_segments() {
        let u = Urn::parse("urn:miot-spec-v2:device:light:0000A001:yeelink-color1:1").unwrap();
        assert_eq!(u.namespace(), "miot-spec-v2");
        assert_eq!(u.kind(), &UrnKind::Device);
        assert_eq!(u.name(), "light");
        assert_eq!(u.value(), 0xA001);
        assert_eq!(u.vendor_product(), Some("yeelink-color1"));
        assert_eq!(u.version(), Some(1));
        assert_eq!(u.tail(), None);
        assert!(u.is_standard());
        assert_eq!(u.type_key(), "miot-spec-v2:device:light:0000A001");
        assert_eq!(
            u.to_string(),
            "urn:miot-spec-v2:device:light:0000A001:yeelink-color1:1"
        );
    }

    #[test]
    fn eight_segments_and_odd_tail() {
        let u = Urn::parse("urn:miot-spec-v2:device:light:0000A001:yeelink-meshbulb1:2:0000C802")
            .unwrap();
        assert_eq!(u.version(), Some(2));
        assert_eq!(u.tail(), Some("0000C802"));
        let odd = Urn::parse(
            "urn:miot-spec-v2:property:color-temperature:0000000F:yeelink-meshbulb1:1:1",
        )
        .unwrap();
        assert_eq!(odd.tail(), Some("1"));
        // Anything after the version is kept verbatim, colons included.
        let long = Urn::parse("urn:x:service:y:1:a-b:3:t1:t2").unwrap();
        assert_eq!(long.tail(), Some("t1:t2"));
    }

    #[test]
    fn five_segments_type_definition() {
        let u = Urn::parse("urn:miot-spec-v2:property:on:00000006").unwrap();
        assert_eq!(u.vendor_product(), None);
        assert_eq!(u.version(), None);
    }

    #[test]
    fn hex_value_case_insensitive_and_namespace_kept() {
        let a = Urn::parse("urn:dreame-spec:property:x:0000000a:dreame-p2009:1").unwrap();
        let b = Urn::parse("urn:dreame-spec:property:x:0000000A:dreame-p2009:1").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.type_key(), b.type_key());
        let std_on = Urn::parse("urn:miot-spec-v2:property:on:00000006:a-b:1").unwrap();
        let vendor = Urn::parse("urn:lumi-spec:property:on:00000006:a-b:1").unwrap();
        assert!(!std_on.same_type(&vendor));
        let other_instance = Urn::parse("urn:miot-spec-v2:property:on:00000006:c-d:2").unwrap();
        assert!(std_on.same_type(&other_instance));
        assert_ne!(std_on, other_instance);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Urn::parse("nope:a:b:c:1").unwrap_err();
        assert_eq!(e.to_string(), "'nope:a:b:c:1' does not start with `urn:`");
        let e = Urn::parse("urn:miot-spec-v2:property:on").unwrap_err();
        assert_eq!(
            e.to_string(),
            "'urn:miot-spec-v2:property:on' has 4 segments; a type URN needs at least 5 (urn:<namespace>:<kind>:<name>:<value>)"
        );
        let e = Urn::parse("urn:miot-spec-v2:property::00000006").unwrap_err();
        assert_eq!(
            e,
            UrnError::EmptySegment {
                urn: "urn:miot-spec-v2:property::00000006".into(),
                segment: "name"
            }
        );
        let e = Urn::parse("urn:miot-spec-v2:property:on:0000000G").unwrap_err();
        assert!(matches!(e, UrnError::BadValue { .. }), "{e}");
        let e = Urn::parse("urn:miot-spec-v2:property:on:000000060").unwrap_err();
        assert!(matches!(e, UrnError::BadValue { .. }), "{e}");
        let e = Urn::parse("urn:miot-spec-v2:property:on:00000006:a-b:v1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "'urn:miot-spec-v2:property:on:00000006:a-b:v1': version 'v1' is not a whole number"
        );
        assert!(Urn::parse("").is_err());
        assert!(Urn::parse("urn:").is_err());
    }
}
