//! Errors and warnings of the spec layer.
//!
//! [`SpecError`] says why a document could not be read and where (for example
//! `service 3 property 2: missing field `format``). [`SpecWarning`] lists
//! things a readable document gets wrong (an action argument that names a
//! missing property, a zero step, a duplicate iid): the document is still
//! usable, so these never stop parsing.

use std::fmt;

use thiserror::Error;

use super::urn::UrnError;

/// A position in a document: an iid when the element has a readable one,
/// otherwise its index in the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pos {
    /// The element's `iid`.
    Iid(u32),
    /// The element's 0-based position in its array (used when the iid itself
    /// is missing or unreadable).
    Index(usize),
}

/// The kind of an element inside a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    /// A property (`piid`).
    Property,
    /// An action (`aiid`).
    Action,
    /// An event (`eiid`).
    Event,
}

impl ItemKind {
    /// `property`, `action` or `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Property => "property",
            Self::Action => "action",
            Self::Event => "event",
        }
    }

    /// `properties`, `actions` or `events`.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Property => "properties",
            Self::Action => "actions",
            Self::Event => "events",
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in a spec document something is.
///
/// Displays as `device`, `service 3`, `service 3 property 2`, or with array
/// positions when an iid is unreadable: `service at index 4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// The service, if the location is inside one.
    pub service: Option<Pos>,
    /// The property, action or event inside the service.
    pub item: Option<(ItemKind, Pos)>,
}

impl Location {
    /// The device (top level).
    pub const DEVICE: Location = Location {
        service: None,
        item: None,
    };

    pub(crate) fn service(pos: Pos) -> Self {
        Self {
            service: Some(pos),
            item: None,
        }
    }

    pub(crate) fn item(self, kind: ItemKind, pos: Pos) -> Self {
        Self {
            service: self.service,
            item: Some((kind, pos)),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn pos(f: &mut fmt::Formatter<'_>, what: &str, p: Pos) -> fmt::Result {
            match p {
                Pos::Iid(i) => write!(f, "{what} {i}"),
                Pos::Index(i) => write!(f, "{what} at index {i}"),
            }
        }
        match (self.service, self.item) {
            (None, None) => f.write_str("device"),
            (None, Some((k, p))) => pos(f, k.as_str(), p),
            (Some(s), None) => pos(f, "service", s),
            (Some(s), Some((k, p))) => {
                pos(f, "service", s)?;
                f.write_str(" ")?;
                pos(f, k.as_str(), p)
            }
        }
    }
}

/// Why a spec document (or the instances index) could not be read.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SpecError {
    /// The bytes are not JSON at all.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// An element that must be a JSON object is something else.
    #[error("{location}: expected a JSON object, found {found}")]
    NotAnObject {
        /// Where.
        location: Location,
        /// A short description of what was there.
        found: String,
    },
    /// A required field is absent (or `null`).
    #[error("{location}: missing field `{field}`")]
    MissingField {
        /// Where.
        location: Location,
        /// The JSON key.
        field: &'static str,
    },
    /// A field has the wrong JSON type or an unusable value.
    #[error("{location}: field `{field}` must be {expected}, found {found}")]
    InvalidField {
        /// Where.
        location: Location,
        /// The JSON key.
        field: &'static str,
        /// What was expected, in words.
        expected: &'static str,
        /// A short description of what was there.
        found: String,
    },
    /// The `type` field is not a valid URN.
    #[error("{location}: field `type` is not a valid URN: {source}")]
    BadUrn {
        /// Where.
        location: Location,
        /// The URN problem.
        #[source]
        source: UrnError,
    },
    /// The instances index as a whole is unusable.
    #[error("instances index: {problem}")]
    BadIndex {
        /// What is wrong with it.
        problem: String,
    },
    /// An entry of the instances index is unusable.
    #[error("instances index entry {index}: {problem}")]
    BadInstance {
        /// 0-based position in the `instances` array.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A user-supplied document failed; `file` names it.
    #[error("{file}: {source}")]
    InFile {
        /// The file name the caller gave.
        file: String,
        /// The underlying problem.
        #[source]
        source: Box<SpecError>,
    },
}

/// Something a readable document gets wrong. See [`Spec::warnings`](super::Spec::warnings).
#[derive(Debug, Clone, PartialEq)]
pub enum SpecWarning {
    /// An action `in`/`out` or event `arguments` piid that names no property
    /// of the same service. The piid is kept; its values cannot be checked.
    MissingArgumentProperty {
        /// The service.
        siid: u32,
        /// Action or event.
        kind: ItemKind,
        /// The action's aiid or the event's eiid.
        iid: u32,
        /// `in`, `out` or `arguments`.
        list: &'static str,
        /// The piid that has no property.
        piid: u32,
    },
    /// Two services, or two items of one kind in a service, share an iid.
    /// Lookups return the first one in document order.
    DuplicateIid {
        /// The service for items, `None` for duplicate services.
        siid: Option<u32>,
        /// The duplicated element kind (`None` for services).
        kind: Option<ItemKind>,
        /// The iid.
        iid: u32,
    },
    /// A `value-range` step of 0 (or negative, or not finite): step checks are
    /// skipped for this property.
    UnusableStep {
        /// The service.
        siid: u32,
        /// The property.
        piid: u32,
        /// The step as written.
        step: f64,
    },
    /// A `value-range` whose min is above its max.
    InvertedRange {
        /// The service.
        siid: u32,
        /// The property.
        piid: u32,
        /// Lower bound as written.
        min: f64,
        /// Upper bound as written.
        max: f64,
    },
    /// A `format` the parser does not know; values pass through unchecked.
    UnknownFormat {
        /// The service.
        siid: u32,
        /// The property.
        piid: u32,
        /// The format as written.
        format: String,
    },
    /// An `access` entry other than `read`, `write`, `notify`; it is ignored.
    UnknownAccess {
        /// The service.
        siid: u32,
        /// The property.
        piid: u32,
        /// The entry as written.
        access: String,
    },
    /// A `type` URN whose kind does not match where it appears (for example a
    /// `property` URN on a service).
    KindMismatch {
        /// Where.
        location: Location,
        /// The kind expected at that place.
        expected: &'static str,
        /// The kind found in the URN.
        found: String,
    },
}

impl fmt::Display for SpecWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingArgumentProperty {
                siid,
                kind,
                iid,
                list,
                piid,
            } => write!(
                f,
                "service {siid} {kind} {iid}: `{list}` names property {piid}, which service {siid} does not have"
            ),
            Self::DuplicateIid {
                siid: None, iid, ..
            } => write!(f, "service iid {iid} appears more than once; the first is used"),
            Self::DuplicateIid {
                siid: Some(s),
                kind,
                iid,
            } => {
                let k = kind.map_or("item", ItemKind::as_str);
                write!(
                    f,
                    "service {s}: {k} iid {iid} appears more than once; the first is used"
                )
            }
            Self::UnusableStep { siid, piid, step } => write!(
                f,
                "service {siid} property {piid}: value-range step {step} is not positive; steps are not checked"
            ),
            Self::InvertedRange {
                siid,
                piid,
                min,
                max,
            } => write!(
                f,
                "service {siid} property {piid}: value-range min {min} is above max {max}"
            ),
            Self::UnknownFormat { siid, piid, format } => write!(
                f,
                "service {siid} property {piid}: unknown format '{format}'; values are not checked"
            ),
            Self::UnknownAccess { siid, piid, access } => write!(
                f,
                "service {siid} property {piid}: unknown access '{access}' ignored"
            ),
            Self::KindMismatch {
                location,
                expected,
                found,
            } => write!(
                f,
                "{location}: type URN is a '{found}', expected a '{expected}'"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_display() {
        assert_eq!(Location::DEVICE.to_string(), "device");
        let s = Location::service(Pos::Iid(3));
        assert_eq!(s.to_string(), "service 3");
        assert_eq!(
            s.item(ItemKind::Property, Pos::Iid(2)).to_string(),
            "service 3 property 2"
        );
        assert_eq!(
            Location::service(Pos::Index(4))
                .item(ItemKind::Action, Pos::Index(0))
                .to_string(),
            "service at index 4 action at index 0"
        );
    }
}
