//! The real MIoT spec documents bundled into the binary.
//!
//! The 24 instance documents and the matching slice of the instances index
//! live in `proto/specs/` (see `PROVENANCE.md` there) and are compiled in
//! with `include_bytes!`. Documents are parsed on first use and cached.
//!
//! A model maps to a document through the index: the newest *released*
//! version whose type URN we bundle. When the index knows a newer released
//! version than the one bundled (as for `dmaker.fan.p9`, released v2, bundled
//! v1), the lookup falls back to the newest bundled one and
//! [`BundledChoice::note`] says so.
//!
//! This module does no IO at run time.

use std::sync::{Arc, OnceLock};

use super::error::SpecError;
use super::instances::{Instance, Instances};
use super::spec::Spec;

/// One bundled instance document.
#[derive(Debug, Clone, Copy)]
pub struct BundledDoc {
    /// The model id the file is named after.
    pub model: &'static str,
    /// The file name in `proto/specs/`.
    pub file: &'static str,
    /// The document bytes, exactly as stored.
    pub json: &'static [u8],
}

macro_rules! doc {
    ($model:literal) => {
        BundledDoc {
            model: $model,
            file: concat!($model, ".json"),
            json: include_bytes!(concat!("../../specs/", $model, ".json")),
        }
    };
}

const DOC_COUNT: usize = 24;

static DOCS: [BundledDoc; DOC_COUNT] = [
    doc!("chuangmi.camera.ipc019"),
    doc!("chuangmi.plug.212a01"),
    doc!("dmaker.fan.p9"),
    doc!("dreame.vacuum.p2009"),
    doc!("lumi.acpartner.mcn02"),
    doc!("lumi.curtain.hagl05"),
    doc!("lumi.gateway.mgl03"),
    doc!("lumi.lock.mcn01"),
    doc!("lumi.switch.b2lacn02"),
    doc!("miaomiaoce.sensor_ht.t2"),
    doc!("philips.light.bulb"),
    doc!("viomi.washer.v13"),
    doc!("viomi.waterheater.e1"),
    doc!("xiaomi.aircondition.ma2"),
    doc!("xiaomi.wifispeaker.lx06"),
    doc!("yeelink.bhf_light.v5"),
    doc!("yeelink.light.color1"),
    doc!("yeelink.light.meshbulb1"),
    doc!("yeelink.switch.sw1"),
    doc!("yunmi.kettle.r1"),
    doc!("zhimi.airpurifier.mb3"),
    doc!("zhimi.fan.za4"),
    doc!("zhimi.heater.mc2"),
    doc!("zhimi.humidifier.ca4"),
];

/// The bundled slice of `miot-spec-v2/instances?status=all`.
pub const INSTANCES_JSON: &[u8] = include_bytes!("../../specs/instances.json");

static PARSED: [OnceLock<Result<Arc<Spec>, SpecError>>; DOC_COUNT] =
    [const { OnceLock::new() }; DOC_COUNT];
static INSTANCES: OnceLock<Instances> = OnceLock::new();

/// Every bundled document, sorted by model.
pub fn documents() -> &'static [BundledDoc] {
    &DOCS
}

/// The models that have a bundled document, sorted.
pub fn models() -> Vec<&'static str> {
    DOCS.iter().map(|d| d.model).collect()
}

/// The bundled instances index. (It is checked by the tests; were it ever
/// unreadable, this would be empty and lookups would fall back to file names.)
pub fn instances() -> &'static Instances {
    INSTANCES.get_or_init(|| Instances::from_json(INSTANCES_JSON).unwrap_or_default())
}

fn parsed(index: usize) -> Option<Result<Arc<Spec>, SpecError>> {
    let doc = DOCS.get(index)?;
    let cell = PARSED.get(index)?;
    Some(
        cell.get_or_init(|| {
            Spec::from_json(doc.json)
                .map(Arc::new)
                .map_err(|e| SpecError::InFile {
                    file: doc.file.to_string(),
                    source: Box::new(e),
                })
        })
        .clone(),
    )
}

/// Which bundled document serves a model, and how it relates to the newest
/// released version in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledChoice {
    /// The model asked for.
    pub model: String,
    /// The bundled document used.
    pub file: &'static str,
    /// The version of that document (from the index, or its type URN).
    pub version: Option<u32>,
    /// The newest released version the index lists for the model.
    pub newest_released: Option<Instance>,
    index: usize,
}

impl BundledChoice {
    /// True unless the index lists a newer released version than the one
    /// bundled.
    pub fn is_newest(&self) -> bool {
        match (&self.newest_released, self.version) {
            (Some(n), Some(v)) => n.version <= v,
            _ => true,
        }
    }

    /// A sentence for the user when the bundled version is not the newest
    /// released one.
    pub fn note(&self) -> Option<String> {
        if self.is_newest() {
            return None;
        }
        let newest = self.newest_released.as_ref()?;
        let have = self.version.map_or_else(
            || "an older version".to_string(),
            |v| format!("version {v}"),
        );
        Some(format!(
            "{}: the newest released spec is version {} ({}), but only {have} is bundled; \
             add the newer document as a user spec to use it",
            self.model, newest.version, newest.urn
        ))
    }

    /// The parsed document.
    pub fn spec(&self) -> Result<Arc<Spec>, SpecError> {
        parsed(self.index).unwrap_or_else(|| {
            Err(SpecError::BadIndex {
                problem: format!("no bundled document at position {}", self.index),
            })
        })
    }
}

/// Picks the bundled document for `model`: the newest released version in
/// the index whose type URN is bundled; failing that, the document named
/// after the model. `None` when nothing is bundled for it.
pub fn choose(model: &str) -> Option<BundledChoice> {
    let idx = instances();
    let newest_released = idx.newest_released(model).cloned();
    for inst in idx.released(model) {
        let hit =
            (0..DOCS.len()).find(|&i| matches!(parsed(i), Some(Ok(spec)) if spec.urn == inst.urn));
        if let Some(index) = hit {
            return Some(BundledChoice {
                model: model.to_string(),
                file: DOCS.get(index).map_or("", |d| d.file),
                version: Some(inst.version),
                newest_released,
                index,
            });
        }
    }
    let index = DOCS.iter().position(|d| d.model == model)?;
    let version = match parsed(index) {
        Some(Ok(spec)) => spec.urn.version(),
        _ => None,
    };
    Some(BundledChoice {
        model: model.to_string(),
        file: DOCS.get(index).map_or("", |d| d.file),
        version,
        newest_released,
        index,
    })
}

/// The bundled spec for `model`, parsed (cached) and shared.
pub fn spec_arc_for_model(model: &str) -> Option<Result<Arc<Spec>, SpecError>> {
    choose(model).map(|c| c.spec())
}

/// The bundled spec for `model`. `None` when no document is bundled for it.
pub fn spec_for_model(model: &str) -> Option<Result<Spec, SpecError>> {
    spec_arc_for_model(model).map(|r| r.map(|s| (*s).clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// svc / prop / act / evt per model, from proto/specs/PROVENANCE.md.
    const PROVENANCE: [(&str, usize, usize, usize, usize); DOC_COUNT] = [
        ("yeelink.light.color1", 3, 13, 1, 0),
        ("yeelink.light.meshbulb1", 3, 17, 0, 0),
        ("philips.light.bulb", 2, 9, 0, 0),
        ("chuangmi.plug.212a01", 8, 22, 0, 1),
        ("lumi.switch.b2lacn02", 3, 8, 2, 0),
        ("yeelink.switch.sw1", 4, 15, 0, 0),
        ("zhimi.airpurifier.mb3", 14, 57, 3, 4),
        ("zhimi.humidifier.ca4", 7, 23, 0, 4),
        ("dmaker.fan.p9", 3, 15, 1, 0),
        ("zhimi.fan.za4", 5, 12, 0, 0),
        ("zhimi.heater.mc2", 8, 16, 0, 6),
        ("lumi.acpartner.mcn02", 5, 18, 2, 0),
        ("xiaomi.aircondition.ma2", 6, 16, 0, 0),
        ("dreame.vacuum.p2009", 12, 58, 14, 11),
        ("lumi.curtain.hagl05", 5, 15, 1, 0),
        ("lumi.lock.mcn01", 4, 12, 0, 6),
        ("chuangmi.camera.ipc019", 6, 26, 9, 0),
        ("lumi.gateway.mgl03", 5, 30, 0, 1),
        ("miaomiaoce.sensor_ht.t2", 3, 7, 0, 0),
        ("yunmi.kettle.r1", 3, 9, 0, 0),
        ("viomi.washer.v13", 5, 39, 2, 1),
        ("viomi.waterheater.e1", 2, 10, 0, 0),
        ("xiaomi.wifispeaker.lx06", 6, 10, 10, 0),
        ("yeelink.bhf_light.v5", 3, 13, 1, 0),
    ];

    #[test]
    fn every_bundled_spec_parses_with_provenance_counts() {
        assert_eq!(models().len(), 24);
        for (model, svc, prop, act, evt) in PROVENANCE {
            let spec = spec_for_model(model)
                .unwrap_or_else(|| panic!("{model} not bundled"))
                .unwrap_or_else(|e| panic!("{model}: {e}"));
            let count =
                |f: fn(&crate::miot::Service) -> usize| spec.services.iter().map(f).sum::<usize>();
            assert_eq!(
                (
                    spec.services.len(),
                    count(|s| s.properties.len()),
                    count(|s| s.actions.len()),
                    count(|s| s.events.len())
                ),
                (svc, prop, act, evt),
                "{model}"
            );
        }
    }

    #[test]
    fn bundled_documents_are_clean_and_round_trip() {
        for doc in documents() {
            let spec = Spec::from_json(doc.json).unwrap();
            assert_eq!(spec.warnings(), [], "{}", doc.model);
            assert_eq!(
                Spec::from_value(&spec.to_json_value()).unwrap(),
                spec,
                "{}",
                doc.model
            );
            // Re-encoding gives the same JSON, up to the order of `access`
            // words (a set, written in any order by real documents).
            let mut raw: serde_json::Value = serde_json::from_slice(doc.json).unwrap();
            sort_access(&mut raw);
            assert_eq!(
                spec.to_json_value(),
                raw,
                "{}: re-encoding differs",
                doc.model
            );
        }
    }

    fn sort_access(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    if k == "access" {
                        if let Some(a) = child.as_array_mut() {
                            let rank = |w: &serde_json::Value| {
                                ["read", "write", "notify"].iter().position(|x| w == *x)
                            };
                            a.sort_by_key(rank);
                        }
                    } else {
                        sort_access(child);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(sort_access),
            _ => {}
        }
    }

    #[test]
    fn every_bundled_model_maps_through_the_index() {
        for doc in documents() {
            let choice = choose(doc.model).unwrap();
            assert_eq!(choice.file, doc.file);
            let spec = choice.spec().unwrap();
            let inst = instances().for_type(&spec.urn).unwrap();
            assert_eq!(inst.model, doc.model);
            assert!(inst.is_released());
        }
        assert!(choose("no.such.model").is_none());
        assert!(spec_for_model("no.such.model").is_none());
    }

    #[test]
    fn instances_index_parses() {
        let idx = Instances::from_json(INSTANCES_JSON).unwrap();
        assert_eq!(idx.len(), 38);
        assert_eq!(instances().len(), 38);
    }

    #[test]
    fn newest_released_for_dmaker_fan_p9() {
        let newest = instances().newest_released("dmaker.fan.p9").unwrap();
        assert_eq!(newest.version, 2);
        assert_eq!(
            newest.urn.as_str(),
            "urn:miot-spec-v2:device:fan:0000A005:dmaker-p9:2"
        );
        let choice = choose("dmaker.fan.p9").unwrap();
        assert_eq!(choice.version, Some(1));
        assert!(!choice.is_newest());
        assert_eq!(
            choice.note().unwrap(),
            "dmaker.fan.p9: the newest released spec is version 2 \
             (urn:miot-spec-v2:device:fan:0000A005:dmaker-p9:2), but only version 1 is bundled; \
             add the newer document as a user spec to use it"
        );
        assert_eq!(choice.spec().unwrap().urn.version(), Some(1));
    }

    #[test]
    fn debug_versions_are_skipped() {
        // meshbulb1: v1 and v2 released, v3 debug; v2 is bundled.
        let newest = instances()
            .newest_released("yeelink.light.meshbulb1")
            .unwrap();
        assert_eq!(newest.version, 2);
        let choice = choose("yeelink.light.meshbulb1").unwrap();
        assert_eq!(choice.version, Some(2));
        assert!(choice.is_newest());
        assert_eq!(choice.note(), None);
        assert_eq!(instances().versions("yeelink.light.meshbulb1").len(), 3);
    }

    /// Paths (as index lists) to every node of a JSON tree.
    fn paths(v: &serde_json::Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(prefix.clone());
        match v {
            serde_json::Value::Object(m) => {
                for (k, c) in m {
                    prefix.push(k.clone());
                    paths(c, prefix, out);
                    prefix.pop();
                }
            }
            serde_json::Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    prefix.push(i.to_string());
                    paths(c, prefix, out);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }

    fn node_mut<'a>(
        v: &'a mut serde_json::Value,
        path: &[String],
    ) -> Option<&'a mut serde_json::Value> {
        path.iter().try_fold(v, |node, seg| match node {
            serde_json::Value::Object(m) => m.get_mut(seg),
            serde_json::Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?),
            _ => None,
        })
    }

    /// Exercises everything downstream of a parsed spec; must not panic.
    fn exercise(spec: &Spec) {
        let _ = spec.warnings();
        let t = crate::miot::NameTable::for_spec(spec);
        for q in [
            "",
            ".",
            "..",
            "2.",
            ".1",
            "on",
            "é.ü",
            "light.on",
            "4294967296.1",
        ] {
            let _ = t.resolve_property(q);
            let _ = t.resolve_action(q);
        }
        for s in &spec.services {
            for p in &s.properties {
                let d = p.default_value();
                let _ = p.check(&d);
                let _ = p.display_value(&d);
                for text in ["", "on", "-1", "1.5", "1e400", "0x", "#zz", "sleep"] {
                    let _ = p.parse_user(text);
                }
            }
            for a in &s.actions {
                let _ = spec.check_action_args(s.iid, a.iid, &[]);
                let _ = spec.check_action_named_args(s.iid, a.iid, &serde_json::Map::new());
            }
        }
        let _ = Spec::from_value(&spec.to_json_value());
    }

    #[test]
    fn mutated_documents_never_panic() {
        let replacements = [
            serde_json::Value::Null,
            serde_json::json!(1.5),
            serde_json::json!(-1),
            serde_json::json!("x"),
            serde_json::json!([]),
            serde_json::json!({}),
        ];
        let mut parsed_ok = 0usize;
        let mut rejected = 0usize;
        for doc in documents() {
            let raw: serde_json::Value = serde_json::from_slice(doc.json).unwrap();
            let mut all = Vec::new();
            paths(&raw, &mut Vec::new(), &mut all);
            let stride = (all.len() / 60).max(1);
            for (n, path) in all.iter().enumerate().filter(|(n, _)| n % stride == 0) {
                let mut v = raw.clone();
                let Some(node) = node_mut(&mut v, path) else {
                    continue;
                };
                *node = replacements[n % replacements.len()].clone();
                match Spec::from_value(&v) {
                    Ok(spec) => {
                        exercise(&spec);
                        parsed_ok += 1;
                    }
                    Err(e) => {
                        assert!(!e.to_string().is_empty());
                        rejected += 1;
                    }
                }
            }
            // Truncated and byte-flipped documents.
            for cut in (0..doc.json.len()).step_by(doc.json.len() / 40 + 1) {
                assert!(Spec::from_json(&doc.json[..cut]).is_err());
                let mut bytes = doc.json.to_vec();
                bytes[cut] = b"\"{}[],:0-9aZ"[cut % 12];
                if let Ok(spec) = Spec::from_json(&bytes) {
                    exercise(&spec);
                }
            }
            exercise(&Spec::from_json(doc.json).unwrap());
        }
        assert!(
            parsed_ok > 100 && rejected > 100,
            "{parsed_ok} ok, {rejected} rejected"
        );
    }

    #[test]
    fn real_document_quirks() {
        // Services out of iid order; lookups go by iid.
        let mb3 = spec_for_model("zhimi.airpurifier.mb3").unwrap().unwrap();
        assert_eq!(mb3.services.first().map(|s| s.iid), Some(2));
        assert_eq!(mb3.service(1).unwrap().name(), "device-information");
        assert_eq!(mb3.property(2, 5).unwrap().name(), "mode");
        // Version suffixes differ inside one document.
        assert_eq!(mb3.urn.version(), Some(2));
        assert_eq!(mb3.service(2).unwrap().urn.version(), Some(1));

        // 8-segment URNs, an 8th segment that is not a template id, and a
        // lower-case vendor value.
        let mesh = spec_for_model("yeelink.light.meshbulb1").unwrap().unwrap();
        assert_eq!(mesh.urn.tail(), Some("0000C802"));
        assert_eq!(mesh.property(2, 3).unwrap().urn.tail(), Some("1"));
        let vd = mesh.property(3, 10).unwrap();
        assert_eq!(vd.urn.name(), "voltage-detect");
        assert_eq!(vd.urn.value(), 0xA);
        assert_eq!(vd.urn.namespace(), "yeelink-spec");

        // Empty access on argument-only properties.
        let lx06 = spec_for_model("xiaomi.wifispeaker.lx06").unwrap().unwrap();
        assert!(lx06.property(5, 1).unwrap().access.is_empty());
        assert_eq!(lx06.action(5, 1).unwrap().ins, [1]);
        assert_eq!(
            lx06.check_action_args(5, 1, &[serde_json::json!("hello")])
                .unwrap(),
            [serde_json::json!("hello")]
        );
        let vacuum = spec_for_model("dreame.vacuum.p2009").unwrap().unwrap();
        let map_req = vacuum.action(6, 1).unwrap();
        assert_eq!(
            (map_req.ins.as_slice(), map_req.outs.as_slice()),
            (&[2][..], &[1, 3, 5][..])
        );
    }

    #[test]
    fn real_values() {
        use serde_json::json;
        let mb3 = spec_for_model("zhimi.airpurifier.mb3").unwrap().unwrap();
        let names = crate::miot::NameTable::for_spec(&mb3).with_label("zhimi.airpurifier.mb3");
        let (s, p) = names.resolve_property("air-purifier.mode").unwrap();
        let mode = mb3.property(s, p).unwrap();
        assert_eq!(mode.parse_user("sleep").unwrap(), json!(1));
        assert_eq!(
            mode.parse_user("turbo").unwrap_err().to_string(),
            "mode must be one of: 0 (Auto), 1 (Sleep), 2 (Favorite), 3 (None); got 'turbo'"
        );
        assert_eq!(mode.display_value(&json!(2)), "2 (Favorite)");
        let (s, p) = names.resolve_property("environment.pm2.5-density").unwrap();
        assert_eq!(mb3.property(s, p).unwrap().name(), "pm2.5-density");
        assert_eq!(names.resolve_property("pm2.5_density"), Ok((s, p)));
        let (s, p) = names.resolve_property("environment.temperature").unwrap();
        let t = mb3.property(s, p).unwrap();
        assert_eq!(t.display_value(&json!(26.5)), "26.5 °C");

        let color1 = spec_for_model("yeelink.light.color1").unwrap().unwrap();
        let b = color1.property(2, 2).unwrap();
        assert_eq!(b.display_value(&json!(40)), "40 %");
        assert_eq!(
            b.check(&json!(500)).unwrap_err().to_string(),
            "brightness must be between 1 and 100 in steps of 1, got 500"
        );

        // The mesh bulb's brightness is uint16 with range 1..65535 in
        // "percentage": the range is what gets enforced.
        let mesh = spec_for_model("yeelink.light.meshbulb1").unwrap().unwrap();
        let mb = mesh.property(2, 2).unwrap();
        assert!(mb.check(&json!(500)).is_ok());
        assert!(mb.check(&json!(0)).is_err());

        let ma2 = spec_for_model("xiaomi.aircondition.ma2").unwrap().unwrap();
        let tt = ma2.property(2, 3).unwrap();
        assert_eq!(tt.parse_user("26.5").unwrap(), json!(26.5));
        assert_eq!(
            tt.parse_user("26.4").unwrap_err().to_string(),
            "target-temperature must be between 16 and 31 in steps of 0.5, got 26.4"
        );

        // viomi.washer.v13 status: "Idle"/"Busy" appear twice in the list.
        let washer = spec_for_model("viomi.washer.v13").unwrap().unwrap();
        let status = washer.property(2, 2).unwrap();
        assert!(matches!(
            status.parse_user("idle"),
            Err(crate::miot::ValueError::AmbiguousDescription { .. })
        ));

        // Bools: on/off from text, 0/1 from the wire.
        let on = color1.property(2, 1).unwrap();
        assert_eq!(on.parse_user("off").unwrap(), json!(false));
        assert_eq!(on.decode_wire(&json!(1)), json!(true));
        assert_eq!(on.display_value(&json!(1)), "on");
    }

    #[test]
    fn device_types() {
        let ty = |m: &str| {
            spec_for_model(m)
                .unwrap()
                .unwrap()
                .device_type()
                .to_string()
        };
        assert_eq!(ty("yeelink.light.color1"), "light");
        assert_eq!(ty("chuangmi.plug.212a01"), "outlet");
        assert_eq!(ty("lumi.lock.mcn01"), "lock");
        assert_eq!(ty("zhimi.airpurifier.mb3"), "air-purifier");
        assert_eq!(ty("miaomiaoce.sensor_ht.t2"), "temperature-humidity-sensor");
    }
}
