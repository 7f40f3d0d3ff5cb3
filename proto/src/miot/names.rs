//! Deterministic, human names for a spec's services, properties, actions and
//! events, derived from their type URNs.
//!
//! # Naming rules
//!
//! 1. A **service** is named by its URN name: `light`, `air-purifier`,
//!    `filter`. Vendor namespaces keep their URN name too (`vacuum-extend`).
//! 2. A **property, action or event** is `<service>.<item>`, with `<item>`
//!    its URN name: `light.on`, `air-purifier.mode`,
//!    `filter.filter-life-level`, `light.toggle`.
//! 3. **Repeats get an ordinal suffix.** When several services of one device
//!    share a URN name (two `switch` services in a two-gang switch), *every*
//!    one of them gets `-<n>`, numbered 1, 2, … in siid order: `switch-1`,
//!    `switch-2`. Likewise, when several items of one kind in one service
//!    share a name (two `mode` properties), every one of them gets `-<n>` in
//!    iid order: `switch-1.mode-1`, `switch-1.mode-2`. Namespaces do not
//!    matter: a vendor type with the same name as a standard one counts as a
//!    repeat. Unique names never get a suffix.
//! 4. If a suffixed name would equal a name already taken in the same scope,
//!    the whole group uses the iid instead: `<name>-s<siid>` for services,
//!    `<name>-p<piid>` / `-a<aiid>` / `-e<eiid>` for items.
//! 5. Names are lower case. Lookups ignore case and treat `_` as `-`.
//! 6. Items whose iid repeats in the document are named once (the first in
//!    document order, which is also what the spec lookups return).
//!
//! # Resolving
//!
//! [`NameTable::resolve_property`] (and the action/event variants) accepts,
//! in this order:
//!
//! - the numeric form `siid.iid` (`2.3`), when the spec has that item;
//! - the full name (`light.brightness`);
//! - a shortened name, when it fits exactly one item: the bare item name
//!   (`brightness`), or the name without a repeat suffix (`switch.on` when
//!   only one `switch-<n>` service has `on`).
//!
//! Anything else is a [`NameError`]: ambiguous names list every match,
//! unknown names list up to five close candidates (by edit distance and
//! substring).
//!
//! This module does not parse or check values, and it does not know device
//! nicknames or rooms (that is the home registry's job).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use thiserror::Error;

use super::error::ItemKind;
use super::spec::Spec;

/// How many candidates an error lists at most.
const MAX_CANDIDATES: usize = 5;
/// Longer queries are not compared by edit distance.
const MAX_QUERY_FOR_DISTANCE: usize = 128;
/// How many matches an ambiguity error lists at most.
const MAX_AMBIGUOUS: usize = 12;

/// A name that does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Nothing matches; `candidates` are the closest names (may be empty).
    #[error("unknown {kind} '{query}' for {label}{}", suggestion(*.kind, .candidates, *.kind_is_empty))]
    Unknown {
        /// What was looked up.
        kind: ItemKind,
        /// The text given.
        query: String,
        /// The device (model or type) the table belongs to.
        label: String,
        /// Up to five close names, best first.
        candidates: Vec<String>,
        /// True when the device has no items of this kind at all.
        kind_is_empty: bool,
    },
    /// Several items match a shortened name.
    #[error("ambiguous {kind} '{query}' for {label}; it could be: {}", .candidates.join(", "))]
    Ambiguous {
        /// What was looked up.
        kind: ItemKind,
        /// The text given.
        query: String,
        /// The device the table belongs to.
        label: String,
        /// The full names that match.
        candidates: Vec<String>,
    },
    /// A numeric `siid.iid` that the spec does not have.
    #[error("{label} has no {kind} {siid}.{iid}{}", suggestion(*.kind, .candidates, false))]
    NoSuchIid {
        /// What was looked up.
        kind: ItemKind,
        /// Service iid given.
        siid: u32,
        /// Item iid given.
        iid: u32,
        /// The device the table belongs to.
        label: String,
        /// Items of that service, if the service exists.
        candidates: Vec<String>,
    },
    /// An empty name.
    #[error("empty {kind} name; give a name like 'light.on' or an id like '2.1'")]
    Empty {
        /// What was looked up.
        kind: ItemKind,
    },
}

fn suggestion(kind: ItemKind, candidates: &[String], kind_is_empty: bool) -> String {
    if kind_is_empty {
        format!("; it has no {}", kind.plural())
    } else if candidates.is_empty() {
        format!("; list the device's {} to see every name", kind.plural())
    } else {
        format!("; did you mean: {}?", candidates.join(", "))
    }
}

/// Lower-case with `_` as `-`.
pub fn normalize(s: &str) -> String {
    s.trim().to_lowercase().replace('_', "-")
}

/// One named item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    /// Service iid.
    pub siid: u32,
    /// Item iid (piid, aiid or eiid).
    pub iid: u32,
    /// The full name, e.g. `switch-1.on`.
    pub name: String,
    service_base: String,
    service: String,
    item_base: String,
    item: String,
}

impl NameEntry {
    /// `siid.iid`.
    pub fn id(&self) -> String {
        format!("{}.{}", self.siid, self.iid)
    }

    fn loose_keys(&self) -> [String; 5] {
        [
            format!("{}.{}", self.service_base, self.item),
            format!("{}.{}", self.service, self.item_base),
            format!("{}.{}", self.service_base, self.item_base),
            self.item.clone(),
            self.item_base.clone(),
        ]
    }
}

/// A named service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceName {
    /// Service iid.
    pub siid: u32,
    /// The name, e.g. `switch-2`.
    pub name: String,
    base: String,
}

/// The naming table of one spec. See the module docs for the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTable {
    label: String,
    services: Vec<ServiceName>,
    properties: Vec<NameEntry>,
    actions: Vec<NameEntry>,
    events: Vec<NameEntry>,
}

/// Assigns names to `(iid, base)` pairs (already in iid order, iids
/// distinct). `tag` is the letter used by rule 4.
fn assign(items: &[(u32, String)], tag: char) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, base) in items {
        *counts.entry(base.as_str()).or_default() += 1;
    }
    let unique: BTreeSet<&str> = counts
        .iter()
        .filter(|(_, &c)| c == 1)
        .map(|(b, _)| *b)
        .collect();
    let mut ordinal: BTreeMap<&str, usize> = BTreeMap::new();
    let mut names: Vec<String> = Vec::with_capacity(items.len());
    for (_, base) in items {
        if unique.contains(base.as_str()) {
            names.push(base.clone());
        } else {
            let n = ordinal.entry(base.as_str()).or_default();
            *n += 1;
            names.push(format!("{base}-{n}"));
        }
    }
    // Rule 4: a repeated group whose ordinal names clash with a unique name
    // switches to iid suffixes.
    let clashing: BTreeSet<&str> = items
        .iter()
        .zip(&names)
        .filter(|((_, base), name)| {
            !unique.contains(base.as_str()) && unique.contains(name.as_str())
        })
        .map(|((_, base), _)| base.as_str())
        .collect();
    items
        .iter()
        .zip(names.iter())
        .map(|((iid, base), name)| {
            if clashing.contains(base.as_str()) {
                format!("{base}-{tag}{iid}")
            } else {
                name.clone()
            }
        })
        .collect()
}

/// Items of one kind of one service: `(iid, base name)` in iid order, first
/// occurrence of each iid only.
fn ordered<'a>(items: impl Iterator<Item = (u32, &'a str)>) -> Vec<(u32, String)> {
    let mut seen = BTreeSet::new();
    let mut v: Vec<(u32, String)> = items
        .filter(|(iid, _)| seen.insert(*iid))
        .map(|(iid, n)| (iid, normalize(n)))
        .collect();
    v.sort_by_key(|(iid, _)| *iid);
    v
}

impl NameTable {
    /// Builds the table. Errors name the device by the vendor-product part
    /// of its URN (or its type name); use [`with_label`](Self::with_label) to
    /// name it by model instead.
    pub fn for_spec(spec: &Spec) -> Self {
        let label = spec
            .urn
            .vendor_product()
            .unwrap_or_else(|| spec.urn.name())
            .to_string();
        let svc_items = ordered(spec.services.iter().map(|s| (s.iid, s.urn.name())));
        let svc_names = assign(&svc_items, 's');
        let services: Vec<ServiceName> = svc_items
            .iter()
            .zip(svc_names)
            .map(|((siid, base), name)| ServiceName {
                siid: *siid,
                name,
                base: base.clone(),
            })
            .collect();
        let mut properties = Vec::new();
        let mut actions = Vec::new();
        let mut events = Vec::new();
        for sn in &services {
            let Some(svc) = spec.service(sn.siid) else {
                continue;
            };
            let add = |out: &mut Vec<NameEntry>, items: Vec<(u32, String)>, tag: char| {
                let names = assign(&items, tag);
                for ((iid, base), item) in items.into_iter().zip(names) {
                    out.push(NameEntry {
                        siid: sn.siid,
                        iid,
                        name: format!("{}.{}", sn.name, item),
                        service_base: sn.base.clone(),
                        service: sn.name.clone(),
                        item_base: base,
                        item,
                    });
                }
            };
            add(
                &mut properties,
                ordered(svc.properties.iter().map(|p| (p.iid, p.urn.name()))),
                'p',
            );
            add(
                &mut actions,
                ordered(svc.actions.iter().map(|a| (a.iid, a.urn.name()))),
                'a',
            );
            add(
                &mut events,
                ordered(svc.events.iter().map(|e| (e.iid, e.urn.name()))),
                'e',
            );
        }
        Self {
            label,
            services,
            properties,
            actions,
            events,
        }
    }

    /// Names the device in error messages (usually its model id).
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// The device label used in error messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Services in siid order.
    pub fn services(&self) -> &[ServiceName] {
        &self.services
    }

    /// Properties in (siid, piid) order.
    pub fn properties(&self) -> &[NameEntry] {
        &self.properties
    }

    /// Actions in (siid, aiid) order.
    pub fn actions(&self) -> &[NameEntry] {
        &self.actions
    }

    /// Events in (siid, eiid) order.
    pub fn events(&self) -> &[NameEntry] {
        &self.events
    }

    fn entries(&self, kind: ItemKind) -> &[NameEntry] {
        match kind {
            ItemKind::Property => &self.properties,
            ItemKind::Action => &self.actions,
            ItemKind::Event => &self.events,
        }
    }

    /// The name of service `siid`.
    pub fn service_name(&self, siid: u32) -> Option<&str> {
        self.services
            .iter()
            .find(|s| s.siid == siid)
            .map(|s| s.name.as_str())
    }

    /// The service named `name` (exact, after normalizing), or a bare name
    /// when it fits exactly one service.
    pub fn resolve_service(&self, name: &str) -> Option<u32> {
        let q = normalize(name);
        if let Some(s) = self.services.iter().find(|s| s.name == q) {
            return Some(s.siid);
        }
        match self
            .services
            .iter()
            .filter(|s| s.base == q)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [one] => Some(one.siid),
            _ => q
                .parse::<u32>()
                .ok()
                .filter(|siid| self.service_name(*siid).is_some()),
        }
    }

    fn name_of(&self, kind: ItemKind, siid: u32, iid: u32) -> Option<&str> {
        self.entries(kind)
            .iter()
            .find(|e| e.siid == siid && e.iid == iid)
            .map(|e| e.name.as_str())
    }

    /// The name of property `(siid, piid)`.
    pub fn property_name(&self, siid: u32, piid: u32) -> Option<&str> {
        self.name_of(ItemKind::Property, siid, piid)
    }

    /// The name of action `(siid, aiid)`.
    pub fn action_name(&self, siid: u32, aiid: u32) -> Option<&str> {
        self.name_of(ItemKind::Action, siid, aiid)
    }

    /// The name of event `(siid, eiid)`.
    pub fn event_name(&self, siid: u32, eiid: u32) -> Option<&str> {
        self.name_of(ItemKind::Event, siid, eiid)
    }

    /// Resolves a property name or `siid.piid` to `(siid, piid)`.
    pub fn resolve_property(&self, name: &str) -> Result<(u32, u32), NameError> {
        self.resolve(ItemKind::Property, name)
    }

    /// Resolves an action name or `siid.aiid` to `(siid, aiid)`.
    pub fn resolve_action(&self, name: &str) -> Result<(u32, u32), NameError> {
        self.resolve(ItemKind::Action, name)
    }

    /// Resolves an event name or `siid.eiid` to `(siid, eiid)`.
    pub fn resolve_event(&self, name: &str) -> Result<(u32, u32), NameError> {
        self.resolve(ItemKind::Event, name)
    }

    /// Resolves a name of the given kind. See the module docs.
    pub fn resolve(&self, kind: ItemKind, name: &str) -> Result<(u32, u32), NameError> {
        let q = normalize(name);
        if q.is_empty() {
            return Err(NameError::Empty { kind });
        }
        let entries = self.entries(kind);
        if let Some((siid, iid)) = parse_iid_pair(&q) {
            if entries.iter().any(|e| e.siid == siid && e.iid == iid) {
                return Ok((siid, iid));
            }
            return Err(NameError::NoSuchIid {
                kind,
                siid,
                iid,
                label: self.label.clone(),
                candidates: entries
                    .iter()
                    .filter(|e| e.siid == siid)
                    .take(MAX_CANDIDATES)
                    .map(|e| format!("{} ({})", e.id(), e.name))
                    .collect(),
            });
        }
        let exact: Vec<&NameEntry> = entries.iter().filter(|e| e.name == q).collect();
        let matches: Vec<&NameEntry> = if exact.is_empty() {
            entries
                .iter()
                .filter(|e| e.loose_keys().contains(&q))
                .collect()
        } else {
            exact
        };
        match matches.as_slice() {
            [one] => Ok((one.siid, one.iid)),
            [] => Err(NameError::Unknown {
                kind,
                query: name.trim().to_string(),
                label: self.label.clone(),
                candidates: closest(&q, entries),
                kind_is_empty: entries.is_empty(),
            }),
            many => Err(NameError::Ambiguous {
                kind,
                query: name.trim().to_string(),
                label: self.label.clone(),
                candidates: many
                    .iter()
                    .take(MAX_AMBIGUOUS)
                    .map(|e| e.name.clone())
                    .collect(),
            }),
        }
    }

    /// A stable text rendering of the whole table (one line per name), used
    /// by the naming snapshot and handy for `spec` listings.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.services {
            let _ = writeln!(out, "service  {:<6} {}", s.siid, s.name);
            for (kind, entries) in [
                ("property", &self.properties),
                ("action", &self.actions),
                ("event", &self.events),
            ] {
                for e in entries.iter().filter(|e| e.siid == s.siid) {
                    let _ = writeln!(out, "{kind:<8} {:<6} {}", e.id(), e.name);
                }
            }
        }
        out
    }
}

/// Parses `siid.iid` (two decimal numbers joined by a dot).
pub fn parse_iid_pair(text: &str) -> Option<(u32, u32)> {
    let (a, b) = text.trim().split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !(digits(a) && digits(b)) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent swaps).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (i, row) in d.chunks_mut(w).enumerate() {
        if let Some(first) = row.first_mut() {
            *first = i;
        }
    }
    for (j, cell) in d.iter_mut().take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let at = |d: &[usize], i: usize, j: usize| {
                d.get(i * w + j).copied().unwrap_or(usize::MAX / 2)
            };
            let (ai, bj) = (a.get(i - 1), b.get(j - 1));
            let cost = usize::from(ai != bj);
            let mut v = (at(&d, i - 1, j) + 1)
                .min(at(&d, i, j - 1) + 1)
                .min(at(&d, i - 1, j - 1) + cost);
            if i > 1 && j > 1 && ai == b.get(j - 2) && a.get(i - 2) == bj {
                v = v.min(at(&d, i - 2, j - 2) + 1);
            }
            if let Some(cell) = d.get_mut(i * w + j) {
                *cell = v;
            }
        }
    }
    d.last().copied().unwrap_or(0)
}

/// Up to [`MAX_CANDIDATES`] names close to `q`, best first.
fn closest(q: &str, entries: &[NameEntry]) -> Vec<String> {
    let qlen = q.chars().count();
    let limit = (qlen / 3).max(2);
    let mut scored: Vec<(usize, usize, &NameEntry)> = entries
        .iter()
        .enumerate()
        .filter_map(|(pos, e)| {
            // Edit distance is quadratic; very long queries only get the
            // substring test.
            let d = if qlen > MAX_QUERY_FOR_DISTANCE {
                usize::MAX
            } else {
                edit_distance(q, &e.name).min(edit_distance(q, &e.item))
            };
            let sub = qlen >= 2
                && (e.name.contains(q)
                    || q.contains(&e.name)
                    || (e.item.len() >= 3 && q.contains(&e.item)));
            if sub {
                Some((d.min(limit), pos, e))
            } else if d <= limit {
                Some((d, pos, e))
            } else {
                None
            }
        })
        .collect();
    scored.sort_by_key(|(d, pos, _)| (*d, *pos));
    scored
        .into_iter()
        .take(MAX_CANDIDATES)
        .map(|(_, _, e)| e.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::miot::bundled;

    fn table(model: &str) -> NameTable {
        let spec = bundled::spec_for_model(model).unwrap().unwrap();
        NameTable::for_spec(&spec).with_label(model)
    }

    #[test]
    fn simple_names_and_reverse_lookup() {
        let t = table("yeelink.light.color1");
        assert_eq!(t.resolve_property("light.on"), Ok((2, 1)));
        assert_eq!(t.resolve_property("light.brightness"), Ok((2, 2)));
        assert_eq!(t.resolve_property("Light.Brightness"), Ok((2, 2)));
        assert_eq!(t.resolve_property("brightness"), Ok((2, 2)));
        assert_eq!(t.resolve_property("2.2"), Ok((2, 2)));
        assert_eq!(t.resolve_property("light.color_temperature"), Ok((2, 4)));
        assert_eq!(t.property_name(2, 2), Some("light.brightness"));
        assert_eq!(t.property_name(9, 9), None);
        assert_eq!(t.service_name(1), Some("device-information"));
        assert_eq!(t.resolve_service("LIGHT"), Some(2));
        assert_eq!(t.resolve_service("3"), Some(3));
        assert_eq!(t.resolve_service("nothing"), None);
        // vendor service keeps its URN name
        assert_eq!(
            t.resolve_property("light-extension.brightness-delta"),
            Ok((3, 1))
        );
        let (siid, aiid) = t.resolve_action("light.toggle").unwrap();
        assert_eq!(t.action_name(siid, aiid), Some("light.toggle"));
        assert_eq!(t.resolve_action("toggle"), Ok((siid, aiid)));
    }

    #[test]
    fn unknown_property_suggests() {
        let t = table("yeelink.light.color1");
        let e = t.resolve_property("light.brigthness").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown property 'light.brigthness' for yeelink.light.color1; did you mean: light.brightness?"
        );
        let e = t.resolve_property("xyzzy-quux-frobnicate").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown property 'xyzzy-quux-frobnicate' for yeelink.light.color1; list the device's properties to see every name"
        );
        let e = t.resolve_property("colour").unwrap_err();
        let NameError::Unknown { candidates, .. } = e else {
            panic!("expected unknown")
        };
        assert!(candidates.len() <= MAX_CANDIDATES);
        assert!(
            candidates.iter().any(|c| c == "light.color"),
            "{candidates:?}"
        );
    }

    #[test]
    fn numeric_ids_must_exist() {
        let t = table("yeelink.light.color1");
        let e = t.resolve_property("2.99").unwrap_err();
        assert!(
            e.to_string().starts_with("yeelink.light.color1 has no property 2.99; did you mean: 2.1 (light.on), 2.2 (light.brightness)"),
            "{e}"
        );
        let e = t.resolve_property("42.1").unwrap_err();
        assert!(matches!(e, NameError::NoSuchIid { .. }));
        assert_eq!(
            t.resolve_property(" "),
            Err(NameError::Empty {
                kind: ItemKind::Property
            })
        );
    }

    #[test]
    fn repeated_services_lumi_b2lacn02() {
        let t = table("lumi.switch.b2lacn02");
        assert_eq!(t.service_name(2), Some("switch-1"));
        assert_eq!(t.service_name(3), Some("switch-2"));
        assert_eq!(t.resolve_property("switch-1.on"), Ok((2, 1)));
        assert_eq!(t.resolve_property("switch_2.on"), Ok((3, 1)));
        assert_eq!(t.resolve_action("switch-2.toggle"), Ok((3, 1)));
        assert_eq!(t.property_name(3, 2), Some("switch-2.mode"));
        let e = t.resolve_property("switch.on").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ambiguous property 'switch.on' for lumi.switch.b2lacn02; it could be: switch-1.on, switch-2.on"
        );
        let e = t.resolve_property("on").unwrap_err();
        assert!(matches!(e, NameError::Ambiguous { .. }));
        let e = t.resolve_action("toggle").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ambiguous action 'toggle' for lumi.switch.b2lacn02; it could be: switch-1.toggle, switch-2.toggle"
        );
        assert_eq!(t.resolve_service("switch"), None);
        // Unique across the device: the bare name works.
        assert_eq!(t.resolve_property("manufacturer"), Ok((1, 1)));
    }

    #[test]
    fn repeated_properties_yeelink_sw1() {
        let t = table("yeelink.switch.sw1");
        assert_eq!(t.property_name(2, 2), Some("switch-1.mode-1"));
        assert_eq!(t.property_name(2, 3), Some("switch-1.mode-2"));
        assert_eq!(t.property_name(3, 3), Some("switch-2.mode-2"));
        assert_eq!(t.resolve_property("switch-2.mode-1"), Ok((3, 2)));
        let e = t.resolve_property("switch-1.mode").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ambiguous property 'switch-1.mode' for yeelink.switch.sw1; it could be: switch-1.mode-1, switch-1.mode-2"
        );
        let e = t.resolve_property("mode").unwrap_err();
        let NameError::Ambiguous { candidates, .. } = e else {
            panic!("expected ambiguous")
        };
        assert_eq!(
            candidates,
            [
                "switch-1.mode-1",
                "switch-1.mode-2",
                "switch-2.mode-1",
                "switch-2.mode-2"
            ]
        );
        // vendor service and property
        assert_eq!(t.resolve_property("extension.interlock"), Ok((4, 1)));
        assert_eq!(t.resolve_property("interlock"), Ok((4, 1)));
        let e = t.resolve_property("switch-3.on").unwrap_err();
        let NameError::Unknown { candidates, .. } = e else {
            panic!("expected unknown")
        };
        assert_eq!(candidates.first().map(String::as_str), Some("switch-1.on"));
    }

    #[test]
    fn no_actions_message() {
        let t = table("miaomiaoce.sensor_ht.t2");
        assert_eq!(
            t.resolve_action("toggle").unwrap_err().to_string(),
            "unknown action 'toggle' for miaomiaoce.sensor_ht.t2; it has no actions"
        );
    }

    #[test]
    fn events_resolve() {
        let t = table("lumi.lock.mcn01");
        let (siid, eiid) = t.events().first().map(|e| (e.siid, e.iid)).unwrap();
        let name = t.event_name(siid, eiid).unwrap().to_string();
        assert_eq!(t.resolve_event(&name), Ok((siid, eiid)));
    }

    #[test]
    fn assign_rules() {
        let items = |v: &[(u32, &str)]| {
            v.iter()
                .map(|(i, n)| (*i, (*n).to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            assign(&items(&[(1, "a"), (2, "b"), (3, "a")]), 'p'),
            ["a-1", "b", "a-2"]
        );
        // rule 4: ordinal name would clash with an existing unique name
        assert_eq!(
            assign(&items(&[(1, "mode"), (2, "mode-1"), (5, "mode")]), 'p'),
            ["mode-p1", "mode-1", "mode-p5"]
        );
    }

    #[test]
    fn vendor_and_standard_clash_in_one_service() {
        let doc = serde_json::json!({
            "type": "urn:miot-spec-v2:device:fan:0000A005:x-y:1",
            "services": [{"iid": 2, "type": "urn:miot-spec-v2:service:fan:00007808:x-y:1",
              "properties": [
                {"iid": 1, "type": "urn:miot-spec-v2:property:fan-level:00000016:x-y:1", "format": "uint8", "access": ["read"]},
                {"iid": 7, "type": "urn:zhimi-spec:property:fan-level:00000001:x-y:1", "format": "uint8", "access": ["read"]}
              ]}]
        });
        let spec = Spec::from_json(doc.to_string().as_bytes()).unwrap();
        let t = NameTable::for_spec(&spec);
        assert_eq!(t.label(), "x-y");
        assert_eq!(t.property_name(2, 1), Some("fan.fan-level-1"));
        assert_eq!(t.property_name(2, 7), Some("fan.fan-level-2"));
    }

    #[test]
    fn long_queries_are_cheap() {
        let t = table("dreame.vacuum.p2009");
        let q = "x".repeat(1_000_000);
        assert!(matches!(
            t.resolve_property(&q),
            Err(NameError::Unknown { .. })
        ));
        let q = format!("{}vacuum.status", "y".repeat(200));
        let NameError::Unknown { candidates, .. } = t.resolve_property(&q).unwrap_err() else {
            panic!("expected unknown")
        };
        assert_eq!(candidates, ["vacuum.status"]);
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("brigthness", "brightness"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(parse_iid_pair("2.3"), Some((2, 3)));
        assert_eq!(parse_iid_pair("2."), None);
        assert_eq!(parse_iid_pair("a.3"), None);
        assert_eq!(parse_iid_pair("99999999999.1"), None);
    }

    fn snapshot_text() -> String {
        let mut out = String::from(
            "# Naming table of every bundled MIoT spec (see proto/src/miot/names.rs for the rules).\n\
             # Regenerate with: UPDATE_SNAPSHOTS=1 cargo test -p mijia-proto --lib miot::names\n",
        );
        for model in bundled::models() {
            let spec = bundled::spec_for_model(model).unwrap().unwrap();
            let t = NameTable::for_spec(&spec).with_label(model);
            let _ = writeln!(out, "\n## {model}  {}", spec.urn);
            out.push_str(&t.render());
        }
        out
    }

    #[test]
    fn names_snapshot() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/miot-names.snapshot"
        );
        let text = snapshot_text();
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
            std::fs::write(path, &text).unwrap();
            return;
        }
        let want = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e}; run with UPDATE_SNAPSHOTS=1 to create it"));
        if want != text {
            let diff = want
                .lines()
                .zip(text.lines())
                .enumerate()
                .find(|(_, (a, b))| a != b)
                .map(|(i, (a, b))| {
                    format!(
                        "first difference at line {}:\n  file: {a}\n  now:  {b}",
                        i + 1
                    )
                })
                .unwrap_or_else(|| "the files differ in length".into());
            panic!("naming snapshot changed; {diff}\nrun with UPDATE_SNAPSHOTS=1 if the change is intended");
        }
    }

    #[test]
    fn every_bundled_name_round_trips() {
        for model in bundled::models() {
            let spec = bundled::spec_for_model(model).unwrap().unwrap();
            let t = NameTable::for_spec(&spec).with_label(model);
            let mut seen = BTreeSet::new();
            for e in t.properties() {
                assert!(seen.insert(e.name.clone()), "{model}: duplicate {}", e.name);
                assert_eq!(t.resolve_property(&e.name), Ok((e.siid, e.iid)), "{model}");
                assert_eq!(t.resolve_property(&e.id()), Ok((e.siid, e.iid)), "{model}");
                assert!(spec.property(e.siid, e.iid).is_some());
            }
            for e in t.actions() {
                assert_eq!(t.resolve_action(&e.name), Ok((e.siid, e.iid)), "{model}");
            }
            for e in t.events() {
                assert_eq!(t.resolve_event(&e.name), Ok((e.siid, e.iid)), "{model}");
            }
            let props: usize = spec.services.iter().map(|s| s.properties.len()).sum();
            assert_eq!(t.properties().len(), props, "{model}");
        }
    }
}
