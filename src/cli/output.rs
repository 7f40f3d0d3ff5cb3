//! Rendering results: readable tables by default, one JSON document with
//! `--json`. Everything goes to stdout; errors and logs go to stderr.

use std::io::Write;

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::{json, Map, Value};

use crate::transport::{ActionResult, DeviceInfo, PropId, PropResult};
use crate::Error;

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

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

/// A value for a table cell: strings bare, everything else as JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_doc(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

fn status(code: i64, meaning: &str) -> String {
    if code == 0 {
        "ok".into()
    } else {
        format!("{code} ({meaning})")
    }
}

/// `miIO.info`, with the device's token redacted.
pub fn info(info: &DeviceInfo, did: Option<u64>, json: bool) -> String {
    let mut raw = info.raw.clone();
    if let Some(obj) = raw.as_object_mut() {
        if obj.contains_key("token") {
            obj.insert("token".into(), json!("<redacted>"));
        }
    }
    if json {
        return json_doc(&json!({"did": did.map(|d| d.to_string()), "info": raw}));
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

/// `get_properties` results.
pub fn get(results: &[PropResult], json: bool) -> String {
    if json {
        let items: Vec<Value> = results.iter().map(prop_json).collect();
        return json_doc(&Value::Array(items));
    }
    let mut t = table(&["property", "value", "status"]);
    for r in results {
        t.add_row(vec![
            r.id().to_string(),
            r.value.as_ref().map(cell).unwrap_or_else(|| "-".into()),
            status(r.code, r.meaning()),
        ]);
    }
    format!("{t}\n")
}

fn prop_json(r: &PropResult) -> Value {
    let mut o = Map::new();
    o.insert("property".into(), json!(r.id().to_string()));
    o.insert("siid".into(), json!(r.siid));
    o.insert("piid".into(), json!(r.piid));
    o.insert("code".into(), json!(r.code));
    o.insert("status".into(), json!(r.meaning()));
    if let Some(v) = &r.value {
        o.insert("value".into(), v.clone());
    }
    Value::Object(o)
}

/// `set_properties` results, next to the values sent.
pub fn set(sent: &[(PropId, Value)], results: &[PropResult], json: bool) -> String {
    if json {
        let items: Vec<Value> = results
            .iter()
            .zip(sent)
            .map(|(r, (_, v))| {
                let mut o = prop_json(r);
                if let Some(m) = o.as_object_mut() {
                    m.insert("value".into(), v.clone());
                }
                o
            })
            .collect();
        return json_doc(&Value::Array(items));
    }
    let mut t = table(&["property", "value sent", "result"]);
    for (r, (_, v)) in results.iter().zip(sent) {
        t.add_row(vec![
            r.id().to_string(),
            cell(v),
            status(r.code, r.meaning()),
        ]);
    }
    format!("{t}\n")
}

/// An action's result.
pub fn action(siid: u32, aiid: u32, res: &ActionResult, json: bool) -> String {
    let meaning = mijia_proto::miio::PropCode(res.code).meaning();
    if json {
        return json_doc(&json!({
            "action": format!("{siid}.{aiid}"),
            "code": res.code,
            "status": meaning,
            "out": res.out,
        }));
    }
    let mut t = table(&["action", "result", "out"]);
    let out = if res.out.is_empty() {
        "-".to_string()
    } else {
        res.out.iter().map(cell).collect::<Vec<_>>().join(", ")
    };
    t.add_row(vec![
        format!("{siid}.{aiid}"),
        status(res.code, meaning),
        out,
    ]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_json() {
        let rs = vec![
            PropResult {
                siid: 2,
                piid: 1,
                code: 0,
                value: Some(json!(true)),
            },
            PropResult {
                siid: 2,
                piid: 9,
                code: -4003,
                value: None,
            },
        ];
        let t = get(&rs, false);
        assert!(
            t.contains("2.1")
                && t.contains("true")
                && t.contains("-4003 (property, action or event does not exist)")
        );
        let j: Value = serde_json::from_str(&get(&rs, true)).unwrap_or_default();
        assert_eq!(j[0]["value"], json!(true));
        assert_eq!(
            j[1]["status"],
            json!("property, action or event does not exist")
        );
        let info_v = DeviceInfo::from_value(
            json!({"model": "m", "token": "00112233445566778899aabbccddeeff"}),
        );
        let info_v = info_v.unwrap_or_else(|| panic!("info"));
        assert!(!info(&info_v, Some(5), true).contains("0011223344"));
    }
}
