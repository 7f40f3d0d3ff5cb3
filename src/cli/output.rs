//! Rendering results: readable tables by default, one JSON document with
//! `--json`. Everything goes to stdout; errors, warnings, progress and logs
//! go to stderr.
//!
//! Values are shown the way the [`crate::home::Device`] facade words them
//! for people: with their unit (`40 %`, `21.5 °C`), value-list entries with
//! their description (`1 (Sleep)`), booleans as `on`/`off`. JSON output
//! carries both the typed `value` and that `display` text.
//!
//! **Routes.** One device's results look the same whichever route
//! ([`Route`]) carried them, since both routes fill the same facade types.
//! The only difference: JSON documents carry `"route": "local"` or
//! `"route": "cloud"` (at the top of an object document — `info`,
//! `status`, `action` — and in each item of a list document — `get`,
//! `set`), and a command that went through the cloud says so in one line
//! on stderr ([`route_note`]). A `raw` document is the device's own result
//! and carries no field.

use std::collections::HashMap;
use std::io::Write;

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::{json, Map, Value};

use crate::cloud::Route;
use crate::home::{ActionOutcome, DeviceOpError, PropReading, SetResult};
use crate::transport::{DeviceInfo, PropResult};
use crate::Error;
use mijia_proto::miio::PropCode;

/// Write `text` to stdout. A closed pipe (`mijia … | head`) is not an error.
pub fn emit(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    let res = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    match res {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            context: "cannot write to standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// A table with the house style and this header.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

/// A value for a table cell: strings bare, everything else as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Pretty JSON with a final newline.
pub fn json_doc(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// `"route": "local"|"cloud"` added to an object document, or to every
/// object item of a list document.
fn with_route(mut v: Value, route: Route) -> Value {
    let tag = |o: &mut Map<String, Value>| {
        o.insert("route".into(), json!(route.kind()));
    };
    match &mut v {
        Value::Object(o) => tag(o),
        Value::Array(items) => items
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(tag),
        _ => {}
    }
    v
}

/// The stderr line for a command that used the cloud route
/// (`via cloud (de)`), with why when it was a fallback; nothing for the
/// local route.
pub fn route_note(route: Route, fallback_from: Option<&str>) -> Option<String> {
    let Route::Cloud { region } = route else {
        return None;
    };
    Some(match fallback_from {
        Some(why) => format!("via cloud ({region}): the local route failed: {why}"),
        None => format!("via cloud ({region})"),
    })
}

/// What a MIoT result code means (legacy codes included).
fn meaning(code: i64) -> &'static str {
    if code == PropResult::MISSING {
        "not reported"
    } else {
        PropCode(code).meaning()
    }
}

/// `ok`; for a MIoT code, the code first and its meaning
/// (`-4005 (invalid value)`); otherwise the facade's error text.
fn status_text(code: i64, error: Option<&str>) -> String {
    let miot = PropCode(code).meaning();
    match error {
        None => "ok".into(),
        Some(e) if e == format!("{miot} ({code})") => format!("{code} ({miot})"),
        Some(e) => e.to_string(),
    }
}

/// One reading as JSON: the facade's fields, plus `property` (its name)
/// and `status` (what the code means).
pub fn reading_json(r: &PropReading) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("property".into(), json!(r.name));
        o.insert("status".into(), json!(meaning(r.code)));
        if r.value.is_none() {
            o.remove("value");
        }
    }
    v
}

/// `miIO.info`, with the device's token redacted.
pub fn info(info: &DeviceInfo, did: Option<u64>, route: Route, json: bool) -> String {
    let mut raw = info.raw.clone();
    if let Some(obj) = raw.as_object_mut() {
        if obj.contains_key("token") {
            obj.insert("token".into(), json!("<redacted>"));
        }
    }
    if json {
        return json_doc(&with_route(
            json!({"did": did.map(|d| d.to_string()), "info": raw}),
            route,
        ));
    }
    let mut t = table(&["field", "value"]);
    let text = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    t.add_row(vec!["model".to_string(), text(&info.model)]);
    t.add_row(vec![
        "did".to_string(),
        did.map_or("-".into(), |d| d.to_string()),
    ]);
    t.add_row(vec!["firmware".to_string(), text(&info.fw_ver)]);
    t.add_row(vec!["hardware".to_string(), text(&info.hw_ver)]);
    t.add_row(vec!["mac".to_string(), text(&info.mac)]);
    if let Some(life) = info.life {
        t.add_row(vec!["uptime".to_string(), format!("{life} s")]);
    }
    if let Some(ap) = &info.ap {
        let ssid = ap.get("ssid").map(cell).unwrap_or_default();
        let rssi = ap
            .get("rssi")
            .map(|r| format!(" (rssi {})", cell(r)))
            .unwrap_or_default();
        t.add_row(vec!["wifi".to_string(), format!("{ssid}{rssi}")]);
    }
    if let Some(ip) = info.netif.as_ref().and_then(|n| n.get("localIp")) {
        t.add_row(vec!["ip".to_string(), cell(ip)]);
    }
    format!("{t}\n")
}

/// Properties read with `get`: name, value (with unit or description) and
/// per-property status.
pub fn readings(readings: &[PropReading], route: Route, json: bool) -> String {
    if json {
        return json_doc(&with_route(
            Value::Array(readings.iter().map(reading_json).collect()),
            route,
        ));
    }
    let mut t = table(&["property", "value", "status"]);
    for r in readings {
        t.add_row(vec![
            r.name.clone(),
            if r.is_ok() {
                r.display.clone()
            } else {
                "-".into()
            },
            status_text(r.code, r.error.as_deref()),
        ]);
    }
    format!("{t}\n")
}

/// Who a status belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// The device's name (the address for ad-hoc devices).
    pub name: &'a str,
    /// Its room.
    pub room: Option<&'a str>,
    /// Its model.
    pub model: Option<&'a str>,
    /// Its address.
    pub address: &'a str,
}

/// One device's status as JSON: `{"name", "room", "model", "address",
/// "ok": true, "properties": [...]}` or `{…, "ok": false, "unreachable",
/// "error"}`.
pub fn device_status_json(who: Who<'_>, result: Result<&[PropReading], &DeviceOpError>) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), json!(who.name));
    o.insert("room".into(), json!(who.room));
    o.insert("model".into(), json!(who.model));
    o.insert("address".into(), json!(who.address));
    match result {
        Ok(readings) => {
            o.insert("ok".into(), json!(true));
            o.insert(
                "properties".into(),
                Value::Array(readings.iter().map(reading_json).collect()),
            );
        }
        Err(e) => {
            o.insert("ok".into(), json!(false));
            o.insert("unreachable".into(), json!(e.is_timeout()));
            o.insert("error".into(), json!(e.to_string()));
        }
    }
    Value::Object(o)
}

/// One device's status as a table: property, value, access (`rw-`, `r--`
/// from its spec or legacy table, keyed by id).
pub fn status(
    who: Who<'_>,
    readings: &[PropReading],
    access: &HashMap<String, String>,
    route: Route,
    json: bool,
) -> String {
    if json {
        return json_doc(&with_route(device_status_json(who, Ok(readings)), route));
    }
    let mut t = table(&["property", "value", "access"]);
    for r in readings {
        let value = if r.is_ok() {
            r.display.clone()
        } else {
            format!("error: {}", status_text(r.code, r.error.as_deref()))
        };
        let acc = access.get(&r.addr.to_string()).cloned().unwrap_or_default();
        t.add_row(vec![r.name.clone(), value, acc]);
    }
    let mut head = who.name.to_string();
    if let Some(m) = who.model {
        head.push_str(&format!(" ({m})"));
    }
    if let Some(room) = who.room {
        head.push_str(&format!(" in {room}"));
    }
    format!("{head}\n{t}\n")
}

/// Writes, with the value sent and the value read back.
pub fn writes(results: &[SetResult], route: Route, json: bool) -> String {
    if json {
        let items: Vec<Value> = results
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
                if let Some(o) = v.as_object_mut() {
                    o.insert("property".into(), json!(r.name));
                    o.insert("value".into(), r.requested.clone());
                    o.insert("status".into(), json!(meaning(r.code)));
                    o.insert(
                        "after".into(),
                        r.after.as_ref().map_or(Value::Null, reading_json),
                    );
                }
                v
            })
            .collect();
        return json_doc(&with_route(Value::Array(items), route));
    }
    let mut t = table(&["property", "sent", "result", "read back"]);
    for r in results {
        let after = match &r.after {
            Some(a) if a.is_ok() => a.display.clone(),
            Some(a) => status_text(a.code, a.error.as_deref()),
            None => "-".into(),
        };
        t.add_row(vec![
            r.name.clone(),
            r.requested_display.clone(),
            status_text(r.code, r.error.as_deref()),
            after,
        ]);
    }
    format!("{t}\n")
}

/// An action's result and outputs.
pub fn outcome(res: &ActionOutcome, route: Route, json: bool) -> String {
    if json {
        let mut v = serde_json::to_value(res).unwrap_or_else(|_| json!({}));
        if let Some(o) = v.as_object_mut() {
            o.insert("action".into(), json!(res.id));
            o.insert("status".into(), json!(meaning(res.code)));
        }
        return json_doc(&with_route(v, route));
    }
    let mut t = table(&["action", "result", "output"]);
    let out = if res.out.is_empty() {
        "-".to_string()
    } else {
        res.out
            .iter()
            .map(|o| format!("{} = {}", o.name, o.display))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = if res.name == res.id {
        res.name.clone()
    } else {
        format!("{} ({})", res.name, res.id)
    };
    t.add_row(vec![name, status_text(res.code, res.error.as_deref()), out]);
    format!("{t}\n")
}

/// A raw result: pretty JSON either way (`--json` makes it compact).
pub fn raw(result: &Value, json: bool) -> String {
    if json {
        format!("{result}\n")
    } else {
        json_doc(result)
    }
}

/// "12 s ago", "3 min ago", "5 h ago", "2 d ago"; "never" for none.
pub fn ago(at: Option<u64>, now: u64) -> String {
    let Some(at) = at else {
        return "never".into();
    };
    let d = now.saturating_sub(at);
    match d {
        0..=59 => format!("{d} s ago"),
        60..=3599 => format!("{} min ago", d / 60),
        3600..=86_399 => format!("{} h ago", d / 3600),
        _ => format!("{} d ago", d / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::device::PropAddr;

    fn reading(name: &str, code: i64, value: Option<Value>, display: &str) -> PropReading {
        PropReading {
            name: name.into(),
            addr: PropAddr::Miot { siid: 2, piid: 1 },
            value,
            display: display.into(),
            unit: None,
            code,
            error: (code != 0).then(|| format!("{} ({code})", PropCode(code).meaning())),
        }
    }

    #[test]
    fn tables_and_json() {
        let rs = vec![
            reading("light.on", 0, Some(json!(true)), "on"),
            reading("9.9", -4003, None, "x"),
        ];
        let t = readings(&rs, Route::Local, false);
        assert!(
            t.contains("light.on")
                && t.contains("on")
                && t.contains("-4003 (property, action or event does not exist)"),
            "{t}"
        );
        let j: Value = serde_json::from_str(&readings(&rs, Route::Local, true)).unwrap_or_default();
        assert_eq!(j[0]["route"], json!("local"));
        let c: Value = serde_json::from_str(&readings(&rs, Route::Cloud { region: "de" }, true))
            .unwrap_or_default();
        assert_eq!(c[1]["route"], json!("cloud"));
        assert_eq!(j[0]["value"], json!(true));
        assert_eq!(j[0]["property"], json!("light.on"));
        assert_eq!(
            j[1]["status"],
            json!("property, action or event does not exist")
        );
        assert!(j[1].get("value").is_none());
        let info_v = DeviceInfo::from_value(
            json!({"model": "m", "token": "00112233445566778899aabbccddeeff"}),
        );
        let info_v = info_v.unwrap_or_else(|| panic!("info"));
        assert!(!info(&info_v, Some(5), Route::Local, true).contains("0011223344"));
        assert_eq!(
            route_note(Route::Cloud { region: "de" }, None).as_deref(),
            Some("via cloud (de)")
        );
        assert_eq!(route_note(Route::Local, Some("x")), None);
    }

    #[test]
    fn relative_times() {
        assert_eq!(ago(None, 100), "never");
        assert_eq!(ago(Some(88), 100), "12 s ago");
        assert_eq!(ago(Some(0), 180), "3 min ago");
        assert_eq!(ago(Some(0), 7200), "2 h ago");
        assert_eq!(ago(Some(0), 3 * 86_400), "3 d ago");
        assert_eq!(ago(Some(200), 100), "0 s ago");
    }
}
