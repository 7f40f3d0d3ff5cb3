//! Forgiving device references for assistants.
//!
//! A reference may be a device id, a name (`Desk lamp`, `desk-lamp`,
//! `DESK LAMP`), `room/name`, `name in room`, or a few words that pick one
//! device out (`lamp` when only one name has that word). An optional room
//! narrows the search. One match resolves; several return the candidates;
//! none returns close names. Nothing is guessed.
//!
//! Matching works on exposed devices first; a reference that only matches
//! an unexposed device is reported as such, so the assistant can tell the
//! user how to expose it, while candidate lists never include unexposed
//! devices.

use crate::home::DeviceEntry;

/// How a reference resolved.
#[derive(Debug)]
pub enum Resolution<'a> {
    /// Exactly one device.
    One(&'a DeviceEntry),
    /// Several exposed devices match.
    Ambiguous(Vec<&'a DeviceEntry>),
    /// Only an unexposed device matches.
    NotExposed(&'a DeviceEntry),
    /// Nothing matches; close exposed names.
    NotFound(Vec<String>),
}

/// Lower case, words separated by single spaces.
pub fn norm(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

fn room_of(e: &DeviceEntry) -> String {
    e.room.as_deref().map(norm).unwrap_or_default()
}

fn singular(w: &str) -> &str {
    w.strip_suffix('s').filter(|s| s.len() >= 3).unwrap_or(w)
}

/// The matches of one query among `devices`, best tier first.
fn matches<'a>(
    devices: &[&'a DeviceEntry],
    query: &str,
    room: Option<&str>,
) -> Vec<&'a DeviceEntry> {
    let room = room.map(norm).filter(|r| !r.is_empty());
    let pool: Vec<&DeviceEntry> = devices
        .iter()
        .copied()
        .filter(|e| room.as_ref().is_none_or(|r| &room_of(e) == r))
        .collect();
    let q = query.trim();
    // A did.
    if let Ok(did) = q.parse::<u64>() {
        let hit: Vec<_> = pool
            .iter()
            .copied()
            .filter(|e| e.did == Some(did))
            .collect();
        if !hit.is_empty() {
            return hit;
        }
    }
    // `room/name`.
    if let Some((r, n)) = q.split_once('/') {
        let (r, n) = (norm(r), norm(n));
        let hit: Vec<_> = pool
            .iter()
            .copied()
            .filter(|e| room_of(e) == r && norm(&e.name) == n)
            .collect();
        if !hit.is_empty() {
            return hit;
        }
    }
    let nq = norm(q);
    if nq.is_empty() {
        return Vec::new();
    }
    let exact: Vec<_> = pool
        .iter()
        .copied()
        .filter(|e| norm(&e.name) == nq)
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    // `name in room`, `room name`.
    if let Some((n, r)) = nq.rsplit_once(" in ") {
        let hit: Vec<_> = pool
            .iter()
            .copied()
            .filter(|e| room_of(e) == r && norm(&e.name) == n)
            .collect();
        if !hit.is_empty() {
            return hit;
        }
    }
    let with_room: Vec<_> = pool
        .iter()
        .copied()
        .filter(|e| format!("{} {}", room_of(e), norm(&e.name)).trim() == nq)
        .collect();
    if !with_room.is_empty() {
        return with_room;
    }
    // Every query word is a word (or the start of one) of the name or room.
    let words: Vec<&str> = nq
        .split(' ')
        .filter(|w| !matches!(*w, "the" | "in" | "my" | "a"))
        .collect();
    if words.is_empty() {
        return Vec::new();
    }
    pool.into_iter()
        .filter(|e| {
            let hay = format!("{} {}", norm(&e.name), room_of(e));
            let hay: Vec<&str> = hay.split(' ').filter(|w| !w.is_empty()).collect();
            words.iter().all(|w| {
                hay.iter().any(|h| {
                    *h == *w || singular(h) == singular(w) || (w.len() >= 3 && h.starts_with(w))
                })
            })
        })
        .collect()
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// Resolves `query` (and an optional `room`) among `devices`;
/// `exposed` says which devices the policy exposes.
pub fn resolve<'a>(
    devices: &'a [DeviceEntry],
    query: &str,
    room: Option<&str>,
    exposed: impl Fn(&DeviceEntry) -> bool,
) -> Resolution<'a> {
    let visible: Vec<&DeviceEntry> = devices.iter().filter(|e| exposed(e)).collect();
    let hits = matches(&visible, query, room);
    match hits.len() {
        1 => {
            if let Some(e) = hits.first() {
                return Resolution::One(e);
            }
        }
        0 => {}
        _ => return Resolution::Ambiguous(hits),
    }
    let all: Vec<&DeviceEntry> = devices.iter().collect();
    let hidden = matches(&all, query, room);
    if let (Some(e), 1) = (hidden.first(), hidden.len()) {
        return Resolution::NotExposed(e);
    }
    let nq = norm(query);
    let mut close: Vec<(usize, String)> = visible
        .iter()
        .map(|e| (distance(&nq, &norm(&e.name)), e.name.clone()))
        .filter(|(d, n)| *d <= 3.max(n.len() / 3))
        .collect();
    close.sort();
    Resolution::NotFound(close.into_iter().take(5).map(|(_, n)| n).collect())
}

/// Exposed devices in a room (by normalised room name).
pub fn in_room<'a>(
    devices: &'a [DeviceEntry],
    room: &str,
    exposed: impl Fn(&DeviceEntry) -> bool,
) -> Vec<&'a DeviceEntry> {
    let r = norm(room);
    devices
        .iter()
        .filter(|e| exposed(e) && room_of(e) == r)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mijia_proto::miio::Token;
    use std::net::{IpAddr, Ipv4Addr};

    fn dev(name: &str, room: Option<&str>, did: u64) -> DeviceEntry {
        let mut e = DeviceEntry::new(
            name,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Token::from_bytes([1; 16]),
        );
        e.room = room.map(str::to_string);
        e.did = Some(did);
        e
    }

    fn home() -> Vec<DeviceEntry> {
        vec![
            dev("Desk lamp", Some("Office"), 1),
            dev("Bed lamp", Some("Bedroom"), 2),
            dev("Heater", Some("Bedroom"), 3),
            dev("Garage door", Some("Garage"), 4),
        ]
    }

    fn name(r: Resolution<'_>) -> String {
        match r {
            Resolution::One(e) => e.name.clone(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn forgiving() {
        let h = home();
        let exposed = |e: &DeviceEntry| e.name != "Garage door";
        assert_eq!(name(resolve(&h, "desk-lamp", None, exposed)), "Desk lamp");
        assert_eq!(name(resolve(&h, "DESK LAMP", None, exposed)), "Desk lamp");
        assert_eq!(name(resolve(&h, "bedroom/heater", None, exposed)), "Heater");
        assert_eq!(
            name(resolve(&h, "lamp in bedroom", None, exposed)),
            "Bed lamp"
        );
        assert_eq!(name(resolve(&h, "office lamp", None, exposed)), "Desk lamp");
        assert_eq!(
            name(resolve(&h, "lamp", Some("office"), exposed)),
            "Desk lamp"
        );
        assert_eq!(name(resolve(&h, "2", None, exposed)), "Bed lamp");
        assert_eq!(name(resolve(&h, "heat", None, exposed)), "Heater");
    }

    #[test]
    fn ambiguous_lists_candidates() {
        let h = home();
        match resolve(&h, "lamps", None, |_| true) {
            Resolution::Ambiguous(c) => {
                let names: Vec<_> = c.iter().map(|e| e.name.as_str()).collect();
                assert_eq!(names, ["Desk lamp", "Bed lamp"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unexposed_and_unknown() {
        let h = home();
        let exposed = |e: &DeviceEntry| e.name != "Garage door";
        assert!(
            matches!(resolve(&h, "garage door", None, exposed), Resolution::NotExposed(e) if e.name == "Garage door")
        );
        match resolve(&h, "Desk lanp", None, exposed) {
            Resolution::NotFound(close) => {
                assert_eq!(close.first().map(String::as_str), Some("Desk lamp"))
            }
            other => panic!("{other:?}"),
        }
        // Unexposed devices never appear in candidate lists.
        match resolve(&h, "door", None, |_| false) {
            Resolution::NotExposed(e) => assert_eq!(e.name, "Garage door"),
            other => panic!("{other:?}"),
        }
    }
}
