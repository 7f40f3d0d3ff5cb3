//! [`SpecStore`]: the specs a running program knows, by model.
//!
//! The store holds the bundled documents plus user documents the caller
//! passes in as bytes (for example files from a `specs/` folder in the
//! config directory). A user spec for a model overrides the bundled one.
//!
//! The store does no file IO: the caller reads files and hands over their
//! bytes and names, so a bad file is reported as `<name>: <problem>`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::bundled;
use super::error::SpecError;
use super::names::NameTable;
use super::spec::Spec;

/// Where a model's spec comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecSource {
    /// A user document.
    User {
        /// The name the caller gave when adding it (usually the file name).
        file: String,
    },
    /// A bundled document.
    Bundled {
        /// The file in `proto/specs/`.
        file: &'static str,
        /// Set when the index lists a newer released version than the one
        /// bundled; says so in a sentence.
        note: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct UserSpec {
    file: String,
    spec: Arc<Spec>,
}

/// Bundled specs plus user specs, looked up by model id.
#[derive(Debug, Clone)]
pub struct SpecStore {
    bundled: bool,
    user: BTreeMap<String, UserSpec>,
}

impl Default for SpecStore {
    fn default() -> Self {
        Self::new()
    }
}

fn key(model: &str) -> String {
    model.trim().to_ascii_lowercase()
}

impl SpecStore {
    /// A store with the bundled specs and no user specs.
    pub fn new() -> Self {
        Self {
            bundled: true,
            user: BTreeMap::new(),
        }
    }

    /// A store with no bundled specs (user specs only).
    pub fn without_bundled() -> Self {
        Self {
            bundled: false,
            user: BTreeMap::new(),
        }
    }

    /// Parses a user document for `model` and adds it, replacing any earlier
    /// user spec for that model and overriding the bundled one. `name` is
    /// used in errors (`<name>: service 3 property 2: missing field ...`).
    pub fn add_user_spec(
        &mut self,
        name: &str,
        model: &str,
        bytes: &[u8],
    ) -> Result<(), SpecError> {
        let spec = Spec::from_json(bytes).map_err(|e| SpecError::InFile {
            file: name.to_string(),
            source: Box::new(e),
        })?;
        self.user.insert(
            key(model),
            UserSpec {
                file: name.to_string(),
                spec: Arc::new(spec),
            },
        );
        Ok(())
    }

    /// Removes the user spec for `model`; true if there was one.
    pub fn remove_user_spec(&mut self, model: &str) -> bool {
        self.user.remove(&key(model)).is_some()
    }

    /// The spec for `model` (case-insensitive): the user spec if there is
    /// one, else the bundled one.
    pub fn get(&self, model: &str) -> Option<Arc<Spec>> {
        let k = key(model);
        if let Some(u) = self.user.get(&k) {
            return Some(Arc::clone(&u.spec));
        }
        if !self.bundled {
            return None;
        }
        bundled::spec_arc_for_model(&k).and_then(Result::ok)
    }

    /// Where [`get`](Self::get) would take the spec from.
    pub fn source(&self, model: &str) -> Option<SpecSource> {
        let k = key(model);
        if let Some(u) = self.user.get(&k) {
            return Some(SpecSource::User {
                file: u.file.clone(),
            });
        }
        if !self.bundled {
            return None;
        }
        bundled::choose(&k).map(|c| SpecSource::Bundled {
            file: c.file,
            note: c.note(),
        })
    }

    /// Every model the store has a spec for, sorted.
    pub fn models(&self) -> Vec<String> {
        let mut all: Vec<String> = self.user.keys().cloned().collect();
        if self.bundled {
            all.extend(bundled::models().into_iter().map(str::to_string));
        }
        all.sort();
        all.dedup();
        all
    }

    /// The naming table for `model`, labelled with the model id.
    pub fn names(&self, model: &str) -> Option<NameTable> {
        self.get(model)
            .map(|spec| NameTable::for_spec(&spec).with_label(key(model)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(desc: &str) -> Vec<u8> {
        serde_json::json!({
            "type": "urn:miot-spec-v2:device:light:0000A001:yeelink-color1:9",
            "description": desc,
            "services": [{"iid": 2, "type": "urn:miot-spec-v2:service:light:00007802:yeelink-color1:1",
                          "properties": [{"iid": 1, "type": "urn:miot-spec-v2:property:on:00000006:yeelink-color1:1",
                                          "format": "bool", "access": ["read", "write"]}]}]
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn bundled_then_user_override() {
        let mut store = SpecStore::new();
        let bundled = store.get("yeelink.light.color1").unwrap();
        assert_eq!(bundled.urn.version(), Some(1));
        assert_eq!(
            store.source("yeelink.light.color1"),
            Some(SpecSource::Bundled {
                file: "yeelink.light.color1.json",
                note: None
            })
        );
        store
            .add_user_spec("my-color1.json", "Yeelink.Light.Color1", &tiny("Mine"))
            .unwrap();
        let user = store.get("yeelink.light.color1").unwrap();
        assert_eq!(user.description, "Mine");
        assert_eq!(
            store.source("yeelink.light.color1"),
            Some(SpecSource::User {
                file: "my-color1.json".into()
            })
        );
        assert_eq!(store.models().len(), 24);
        store
            .add_user_spec("new.json", "acme.light.x1", &tiny("New"))
            .unwrap();
        assert_eq!(store.models().len(), 25);
        assert!(store.remove_user_spec("yeelink.light.color1"));
        assert_eq!(
            store.get("yeelink.light.color1").unwrap().urn.version(),
            Some(1)
        );
        let names = store.names("acme.light.x1").unwrap();
        assert_eq!(names.label(), "acme.light.x1");
        assert_eq!(names.resolve_property("light.on"), Ok((2, 1)));
    }

    #[test]
    fn fallback_note_for_dmaker_fan_p9() {
        let store = SpecStore::new();
        let Some(SpecSource::Bundled {
            note: Some(note), ..
        }) = store.source("dmaker.fan.p9")
        else {
            panic!("expected a bundled source with a note");
        };
        assert!(note.contains("version 2"), "{note}");
        assert_eq!(store.get("dmaker.fan.p9").unwrap().urn.version(), Some(1));
    }

    #[test]
    fn bad_user_file_names_file_and_place() {
        let mut store = SpecStore::without_bundled();
        assert!(store.get("yeelink.light.color1").is_none());
        let bad = br#"{"type":"urn:miot-spec-v2:device:light:0000A001:x-y:1","services":[{"iid":3,"type":"urn:miot-spec-v2:service:light:00007802","properties":[{"iid":2,"type":"urn:miot-spec-v2:property:on:00000006","access":[]}]}]}"#;
        let err = store
            .add_user_spec("light.json", "x.light.y", bad)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "light.json: service 3 property 2: missing field `format`"
        );
        assert!(store.models().is_empty());
    }
}
