//! User spec files and spec listings.
//!
//! Users add MIoT specs for models mijia does not bundle by dropping the
//! spec instance document into `<config>/specs/` or with
//! `mijia spec import FILE`. **The rule: a file's stem is its model** —
//! `<config>/specs/acme.light.x1.json` describes `acme.light.x1` (matched
//! without regard to case). A user spec overrides the bundled one.
//!
//! - [`load_spec_store`] builds the [`SpecStore`] a command uses: the
//!   bundled specs plus every `*.json` in the spec directory. A bad file
//!   never stops the others from loading; it becomes a [`SpecLoadWarning`]
//!   that names the file and what is wrong, for the CLI to print.
//! - [`import_spec`] validates a document by parsing it, works out its
//!   model (given, else the file stem if it is a model id, else the
//!   bundled instances index by the document's type URN), and writes it
//!   atomically into the spec directory (mode 0644: specs are not secret).
//!   Here a bad file is a hard [`SpecFileError`].
//! - [`describe_model`] turns a model's spec (or legacy table) into rows
//!   for `mijia spec MODEL`: names, ids, access, format, range or list,
//!   unit.
//!
//! This module reads and writes spec files only; it never talks to a
//! device and never downloads specs. Parsing is the spec engine's job
//! ([`mijia_proto::miot`]).

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use mijia_proto::miot::{
    bundled, value::display_unit, NameTable, Spec, SpecError, SpecSource, SpecStore,
};
use serde::Serialize;

use super::fsutil;
use super::legacy::{self, ActionParams, LegacyModel};
use super::{HomeError, Paths};

/// The spec directory's name inside the config directory.
pub const SPECS_DIR: &str = "specs";
/// Largest spec file accepted (the biggest real documents are ~200 KiB).
pub const MAX_SPEC_FILE: u64 = 8 * 1024 * 1024;
/// Mode of imported spec files (not secret).
pub const SPEC_FILE_MODE: u32 = 0o644;
/// Longest accepted model id.
const MAX_MODEL_LEN: usize = 128;

/// `<config>/specs`.
pub fn specs_dir(paths: &Paths) -> PathBuf {
    paths.config_dir.join(SPECS_DIR)
}

/// Whether `s` looks like a model id: at least three dot-separated parts
/// of ASCII letters, digits, `_` and `-` (`yeelink.light.color1`).
pub fn is_model_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    s.len() <= MAX_MODEL_LEN
        && parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Why a spec file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    /// The file or the spec directory could not be read or written.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The document does not parse. The message names the file and the
    /// element (`…/x.json: service 3 property 2: missing field `format``).
    #[error("{source}; fix the document (see the MIoT spec format) or remove the file")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, prefixed with the file path.
        source: Box<SpecError>,
    },
    /// The file is larger than [`MAX_SPEC_FILE`].
    #[error(
        "{} is {size} bytes, larger than any MIoT spec (limit {MAX_SPEC_FILE}); \
         check that it is the right file",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A file in the spec directory whose stem is not a model id.
    #[error(
        "{} is not named after a model; spec files are named <model>.json, \
         e.g. yeelink.light.color1.json — rename it",
        path.display()
    )]
    NotAModelName {
        /// The file.
        path: PathBuf,
    },
    /// The model given is not a model id.
    #[error(
        "{model:?} is not a model id; a model looks like vendor.kind.name \
         (e.g. yeelink.light.color1)"
    )]
    BadModel {
        /// What was given.
        model: String,
    },
    /// Import could not tell which model a document describes.
    #[error(
        "cannot tell which model {} describes (its type is {urn}, which the bundled \
         index does not know, and the file name is not a model id); pass the model, \
         e.g. `mijia spec import {} --model vendor.kind.name`",
        path.display(),
        path.display()
    )]
    UnknownModel {
        /// The file.
        path: PathBuf,
        /// The document's type URN.
        urn: String,
    },
}

/// A user spec file that was skipped while loading the spec directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecLoadWarning {
    /// The file (or the directory, when it could not be listed).
    pub path: PathBuf,
    /// What is wrong and what to do, in one sentence (names the file).
    pub message: String,
}

impl fmt::Display for SpecLoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ignoring spec file: {}", self.message)
    }
}

/// Reads a file of at most [`MAX_SPEC_FILE`] bytes.
fn read_limited(path: &Path) -> Result<Vec<u8>, SpecFileError> {
    let file = fs::File::open(path).map_err(|e| HomeError::io("read", path, e))?;
    let size = file
        .metadata()
        .map_err(|e| HomeError::io("read", path, e))?
        .len();
    if size > MAX_SPEC_FILE {
        return Err(SpecFileError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_SPEC_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| HomeError::io("read", path, e))?;
    if bytes.len() as u64 > MAX_SPEC_FILE {
        return Err(SpecFileError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// The model a spec-directory file is for: its stem, lower-cased, when
/// the name is `<model>.json`.
fn model_of_file(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".json")?;
    is_model_id(stem).then(|| stem.to_ascii_lowercase())
}

/// Adds one file to the store.
fn add_file(store: &mut SpecStore, path: &Path) -> Result<String, SpecFileError> {
    let model = model_of_file(path).ok_or_else(|| SpecFileError::NotAModelName {
        path: path.to_path_buf(),
    })?;
    let bytes = read_limited(path)?;
    store
        .add_user_spec(&path.display().to_string(), &model, &bytes)
        .map_err(|source| SpecFileError::Invalid {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
    Ok(model)
}

/// The bundled specs plus every `*.json` in `<config>/specs/`, and one
/// warning per file that could not be used.
///
/// Never fails: a missing directory means no user specs, and an unreadable
/// directory or a bad file is a warning, so one broken file never keeps
/// the user from controlling devices. Hidden files (`.name`, including
/// temporary files of an import in progress) and files not ending in
/// `.json` are ignored. Files are read in name order; if two names differ
/// only in case, the later one wins and a warning says so.
pub fn load_spec_store(paths: &Paths) -> (SpecStore, Vec<SpecLoadWarning>) {
    let mut store = SpecStore::new();
    let mut warnings = Vec::new();
    let dir = specs_dir(paths);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (store, warnings),
        Err(e) => {
            warnings.push(SpecLoadWarning {
                message: format!(
                    "{}; user specs are not loaded",
                    HomeError::io("list", &dir, e)
                ),
                path: dir,
            });
            return (store, warnings);
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    let mut loaded: Vec<(String, PathBuf)> = Vec::new();
    for path in files {
        match add_file(&mut store, &path) {
            Ok(model) => {
                if let Some((_, earlier)) = loaded.iter().find(|(m, _)| *m == model) {
                    warnings.push(SpecLoadWarning {
                        message: format!(
                            "{} and {} both describe {model}; using {}. Remove one of them",
                            earlier.display(),
                            path.display(),
                            path.display()
                        ),
                        path: earlier.clone(),
                    });
                }
                loaded.push((model, path));
            }
            Err(e) => warnings.push(SpecLoadWarning {
                message: e.to_string(),
                path,
            }),
        }
    }
    (store, warnings)
}

/// What [`import_spec`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedSpec {
    /// The model the spec is now used for.
    pub model: String,
    /// Where it was written.
    pub path: PathBuf,
    /// Whether an earlier user spec for the model was replaced.
    pub replaced: bool,
    /// Whether it overrides a bundled spec.
    pub overrides_bundled: bool,
    /// Problems in the document that did not stop it from parsing
    /// (e.g. an action argument naming a missing property).
    pub notes: Vec<String>,
}

/// Validates `file` as a MIoT spec instance document and installs it as
/// `<config>/specs/<model>.json`.
///
/// The model is `model` when given; otherwise the file stem if it is a
/// model id (`acme.light.x1.json`); otherwise the model the bundled
/// instances index lists for the document's type URN. The bytes are
/// written as given (atomically, mode 0644), so `load_spec_store` reads
/// exactly what was validated.
pub fn import_spec(
    paths: &Paths,
    file: &Path,
    model: Option<&str>,
) -> Result<ImportedSpec, SpecFileError> {
    let bytes = read_limited(file)?;
    let spec = Spec::from_json(&bytes).map_err(|e| SpecFileError::Invalid {
        path: file.to_path_buf(),
        source: Box::new(SpecError::InFile {
            file: file.display().to_string(),
            source: Box::new(e),
        }),
    })?;
    let model = match model.map(str::trim) {
        Some(m) if is_model_id(m) => m.to_ascii_lowercase(),
        Some(m) => {
            return Err(SpecFileError::BadModel {
                model: m.to_string(),
            })
        }
        None => model_of_file(file)
            .or_else(|| {
                bundled::instances()
                    .for_type(&spec.urn)
                    .map(|i| i.model.to_ascii_lowercase())
            })
            .ok_or_else(|| SpecFileError::UnknownModel {
                path: file.to_path_buf(),
                urn: spec.urn.to_string(),
            })?,
    };
    let dest = specs_dir(paths).join(format!("{model}.json"));
    let replaced = dest.exists();
    let overrides_bundled = SpecStore::new()
        .source(&model)
        .is_some_and(|s| matches!(s, SpecSource::Bundled { .. }));
    fsutil::write_atomic(&dest, &bytes, SPEC_FILE_MODE)?;
    Ok(ImportedSpec {
        model,
        path: dest,
        replaced,
        overrides_bundled,
        notes: spec.warnings().iter().map(ToString::to_string).collect(),
    })
}

// ------------------------------------------------------------- listings

/// One service row of a [`ModelTable`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceRow {
    /// Service iid.
    pub siid: u32,
    /// Its name (`light`, `switch-2`).
    pub name: String,
    /// The vendor's description.
    pub description: String,
}

/// One property row of a [`ModelTable`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PropertyRow {
    /// Name to use in `get`/`set` (`light.brightness`).
    pub name: String,
    /// `siid.piid`, or the legacy vocabulary key (`bright`).
    pub id: String,
    /// Access letters (`rwn`, `rw-`).
    pub access: String,
    /// Format (`uint8`, `bool`, `string`).
    pub format: String,
    /// What may be written: range, value list, `true or false`.
    pub allowed: String,
    /// Unit symbol, when any.
    pub unit: Option<String>,
    /// The vendor's description.
    pub description: String,
}

/// One action row of a [`ModelTable`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionRow {
    /// Name to use in `action` (`light.toggle`, `start`).
    pub name: String,
    /// `siid.aiid`, or the legacy method.
    pub id: String,
    /// Argument names, in order.
    pub ins: Vec<String>,
    /// Output names, in order.
    pub outs: Vec<String>,
    /// The vendor's description.
    pub description: String,
}

/// Everything `mijia spec MODEL` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelTable {
    /// The model.
    pub model: String,
    /// Where the description comes from, in words.
    pub source: String,
    /// A remark about the source (e.g. a newer released version exists).
    pub note: Option<String>,
    /// `miot` or `legacy`.
    pub protocol: &'static str,
    /// Services (MIoT only).
    pub services: Vec<ServiceRow>,
    /// Properties.
    pub properties: Vec<PropertyRow>,
    /// Actions.
    pub actions: Vec<ActionRow>,
}

/// The table for `model`: its MIoT spec when the store has one, else its
/// legacy vocabulary, else `None`.
pub fn describe_model(store: &SpecStore, model: &str) -> Option<ModelTable> {
    let model = model.trim().to_ascii_lowercase();
    if let Some(spec) = store.get(&model) {
        let names = NameTable::for_spec(&spec).with_label(model.clone());
        let (source, note) = match store.source(&model) {
            Some(SpecSource::User { file }) => (format!("user spec {file}"), None),
            Some(SpecSource::Bundled { file, note }) => (format!("bundled spec {file}"), note),
            None => ("spec".to_string(), None),
        };
        return Some(miot_table(&spec, &names, model, source, note));
    }
    legacy::for_model(&model).map(|t| legacy_table(t, model))
}

fn miot_table(
    spec: &Spec,
    names: &NameTable,
    model: String,
    source: String,
    note: Option<String>,
) -> ModelTable {
    let mut services = Vec::new();
    let mut properties = Vec::new();
    let mut actions = Vec::new();
    for svc in spec.services_by_iid() {
        services.push(ServiceRow {
            siid: svc.iid,
            name: names
                .service_name(svc.iid)
                .unwrap_or(svc.name())
                .to_string(),
            description: svc.description.clone(),
        });
        let mut props: Vec<_> = svc.properties.iter().collect();
        props.sort_by_key(|p| p.iid);
        for p in props {
            let Some(name) = names.property_name(svc.iid, p.iid) else {
                continue;
            };
            properties.push(PropertyRow {
                name: name.to_string(),
                id: format!("{}.{}", svc.iid, p.iid),
                access: p.access.letters(),
                format: p.format.to_string(),
                allowed: p.allowed_text(),
                unit: p.unit.as_deref().and_then(display_unit).map(str::to_string),
                description: p.description.clone(),
            });
        }
        let mut acts: Vec<_> = svc.actions.iter().collect();
        acts.sort_by_key(|a| a.iid);
        for a in acts {
            let Some(name) = names.action_name(svc.iid, a.iid) else {
                continue;
            };
            let arg = |piid: &u32| {
                names
                    .property_name(svc.iid, *piid)
                    .map_or_else(|| format!("piid {piid}"), str::to_string)
            };
            actions.push(ActionRow {
                name: name.to_string(),
                id: format!("{}.{}", svc.iid, a.iid),
                ins: a.ins.iter().map(arg).collect(),
                outs: a.outs.iter().map(arg).collect(),
                description: a.description.clone(),
            });
        }
    }
    ModelTable {
        model,
        source,
        note,
        protocol: "miot",
        services,
        properties,
        actions,
    }
}

fn legacy_table(t: &LegacyModel, model: String) -> ModelTable {
    ModelTable {
        model,
        source: format!("legacy miIO vocabulary: {}", t.label),
        note: None,
        protocol: "legacy",
        services: Vec::new(),
        properties: t
            .props
            .iter()
            .map(|p| PropertyRow {
                name: p.name.to_string(),
                id: p.source.key(),
                access: if p.is_writable() { "rw-" } else { "r--" }.to_string(),
                format: p.format_name().to_string(),
                allowed: p.allowed_text(),
                unit: p.unit.map(str::to_string),
                description: p.description.to_string(),
            })
            .collect(),
        actions: t
            .actions
            .iter()
            .map(|a| ActionRow {
                name: a.name.to_string(),
                id: a.method.to_string(),
                ins: match a.params {
                    ActionParams::OneOf(list) => vec![format!("one of: {}", list.join(", "))],
                    _ => Vec::new(),
                },
                outs: Vec::new(),
                description: a.description.to_string(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn home() -> (tempfile::TempDir, Paths) {
        let tmp = tempfile::TempDir::new().unwrap();
        let paths = Paths::at(tmp.path());
        (tmp, paths)
    }

    fn doc(desc: &str, vendor: &str) -> String {
        serde_json::json!({
            "type": format!("urn:miot-spec-v2:device:light:0000A001:{vendor}:1"),
            "description": desc,
            "services": [{"iid": 2, "type": format!("urn:miot-spec-v2:service:light:00007802:{vendor}:1"),
                "properties": [
                    {"iid": 1, "type": format!("urn:miot-spec-v2:property:on:00000006:{vendor}:1"),
                     "format": "bool", "access": ["read", "write"]},
                    {"iid": 2, "type": format!("urn:miot-spec-v2:property:brightness:0000000D:{vendor}:1"),
                     "format": "uint8", "access": ["read", "write"], "unit": "percentage",
                     "value-range": [1, 100, 1]}
                ]}]
        })
        .to_string()
    }

    const BAD: &str = r#"{"type":"urn:miot-spec-v2:device:light:0000A001:x-y:1","services":[{"iid":3,"type":"urn:miot-spec-v2:service:light:00007802","properties":[{"iid":2,"type":"urn:miot-spec-v2:property:on:00000006","access":[]}]}]}"#;

    #[test]
    fn model_ids() {
        assert!(is_model_id("yeelink.light.color1"));
        assert!(is_model_id("lumi.sensor_magnet.aq2"));
        assert!(is_model_id("A.b.c-d.e"));
        for bad in ["spec", "a.b", "a..b", "a.b.c d", ".a.b", "a.b.c/", ""] {
            assert!(!is_model_id(bad), "{bad}");
        }
    }

    #[test]
    fn missing_dir_is_bundled_only() {
        let (_tmp, paths) = home();
        let (store, warnings) = load_spec_store(&paths);
        assert!(warnings.is_empty());
        assert!(store.get("yeelink.light.color1").is_some());
        assert!(store.get("acme.light.x1").is_none());
    }

    #[test]
    fn user_dir_loads_good_files_and_names_bad_ones() {
        let (_tmp, paths) = home();
        let dir = specs_dir(&paths);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("acme.light.x1.json"), doc("Acme", "acme-x1")).unwrap();
        fs::write(dir.join("Acme.Light.X2.json"), doc("Acme2", "acme-x2")).unwrap();
        fs::write(
            dir.join("yeelink.light.color1.json"),
            doc("Mine", "yeelink-color1"),
        )
        .unwrap();
        fs::write(dir.join("broken.light.x3.json"), BAD).unwrap();
        fs::write(dir.join("notjson.light.x4.json"), "{ nope").unwrap();
        fs::write(dir.join("spec.json"), doc("Nameless", "n-n")).unwrap();
        fs::write(dir.join("README.txt"), "not a spec").unwrap();
        fs::write(dir.join(".acme.light.x5.json.123.tmp"), "partial").unwrap();

        let (store, warnings) = load_spec_store(&paths);
        assert_eq!(store.get("acme.light.x1").unwrap().description, "Acme");
        assert_eq!(store.get("acme.light.x2").unwrap().description, "Acme2");
        assert_eq!(
            store.get("yeelink.light.color1").unwrap().description,
            "Mine"
        );
        assert!(store.get("broken.light.x3").is_none());
        let texts: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 3, "{texts:#?}");
        let bad = dir.join("broken.light.x3.json");
        let w = warnings.iter().find(|w| w.path == bad).unwrap();
        assert!(
            w.message.contains(&format!(
                "{}: service 3 property 2: missing field `format`",
                bad.display()
            )),
            "{}",
            w.message
        );
        let nj = warnings
            .iter()
            .find(|w| w.path.ends_with("notjson.light.x4.json"))
            .unwrap();
        assert!(
            nj.message.contains("notjson.light.x4.json: not valid JSON"),
            "{}",
            nj.message
        );
        let nameless = warnings
            .iter()
            .find(|w| w.path.ends_with("spec.json"))
            .unwrap();
        assert!(
            nameless.message.contains("<model>.json"),
            "{}",
            nameless.message
        );
        assert!(nameless.to_string().starts_with("ignoring spec file: "));
    }

    #[test]
    fn import_validates_finds_model_and_writes() {
        let (tmp, paths) = home();
        // Model from the file stem.
        let src = tmp.path().join("acme.light.x1.json");
        fs::write(&src, doc("Acme", "acme-x1")).unwrap();
        let out = import_spec(&paths, &src, None).unwrap();
        assert_eq!(out.model, "acme.light.x1");
        assert_eq!(out.path, specs_dir(&paths).join("acme.light.x1.json"));
        assert!(!out.replaced && !out.overrides_bundled);
        assert_eq!(
            fs::metadata(&out.path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let (store, warnings) = load_spec_store(&paths);
        assert!(warnings.is_empty());
        assert_eq!(store.get("acme.light.x1").unwrap().description, "Acme");

        // Explicit model; replacing and overriding bundled are reported.
        let other = tmp.path().join("download.json");
        fs::write(&other, doc("Mine", "yeelink-color1")).unwrap();
        let out = import_spec(&paths, &other, Some("Yeelink.Light.Color1")).unwrap();
        assert_eq!(out.model, "yeelink.light.color1");
        assert!(out.overrides_bundled && !out.replaced);
        let out = import_spec(&paths, &other, Some("yeelink.light.color1")).unwrap();
        assert!(out.replaced);

        // Model from the bundled index, by type URN.
        let bundled_doc = tmp.path().join("something.json");
        fs::write(
            &bundled_doc,
            bundled::documents()
                .iter()
                .find(|d| d.model == "zhimi.airpurifier.mb3")
                .unwrap()
                .json,
        )
        .unwrap();
        let out = import_spec(&paths, &bundled_doc, None).unwrap();
        assert_eq!(out.model, "zhimi.airpurifier.mb3");

        // The index knows the type URN of the yeelink document.
        assert_eq!(
            import_spec(&paths, &other, None).unwrap().model,
            "yeelink.light.color1"
        );
        // No way to tell the model.
        let nameless = tmp.path().join("download2.json");
        fs::write(&nameless, doc("Who", "nobody-x9")).unwrap();
        let e = import_spec(&paths, &nameless, None).unwrap_err();
        assert!(matches!(e, SpecFileError::UnknownModel { .. }), "{e}");
        assert!(e.to_string().contains("--model"), "{e}");
        let e = import_spec(&paths, &other, Some("nodots")).unwrap_err();
        assert!(matches!(e, SpecFileError::BadModel { .. }), "{e}");

        // A malformed file is a hard error naming the file; nothing written.
        let bad = tmp.path().join("broken.light.x3.json");
        fs::write(&bad, BAD).unwrap();
        let e = import_spec(&paths, &bad, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: service 3 property 2: missing field `format`; fix the document (see the \
                 MIoT spec format) or remove the file",
                bad.display()
            )
        );
        assert!(!specs_dir(&paths).join("broken.light.x3.json").exists());
        let missing = tmp.path().join("missing.light.x.json");
        assert!(matches!(
            import_spec(&paths, &missing, None),
            Err(SpecFileError::Home(HomeError::Io { .. }))
        ));
    }

    #[test]
    fn describe_miot_and_legacy() {
        let store = SpecStore::new();
        let t = describe_model(&store, "yeelink.light.color1").unwrap();
        assert_eq!(t.protocol, "miot");
        assert!(
            t.source.contains("yeelink.light.color1.json"),
            "{}",
            t.source
        );
        let b = t
            .properties
            .iter()
            .find(|p| p.name == "light.brightness")
            .unwrap();
        assert_eq!(b.id, "2.2");
        assert_eq!(b.unit.as_deref(), Some("%"));
        assert!(b.allowed.contains("between 1 and 100"), "{}", b.allowed);
        assert!(b.access.starts_with("rw"));
        assert!(!t.actions.is_empty());
        assert!(t.services.iter().any(|s| s.name == "light"));

        let v = describe_model(&store, "roborock.vacuum.s5").unwrap();
        assert_eq!(v.protocol, "legacy");
        assert!(v
            .properties
            .iter()
            .any(|p| p.name == "battery" && p.unit.as_deref() == Some("%")));
        assert!(v
            .actions
            .iter()
            .any(|a| a.name == "dock" && a.id == "app_charge"));
        assert!(describe_model(&store, "acme.nothing.here").is_none());
    }
}
