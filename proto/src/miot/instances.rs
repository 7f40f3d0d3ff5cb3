//! The instances index (`miot-spec-v2/instances?status=all`): which spec
//! versions exist for which model, and their status.
//!
//! Clients normally use the highest *released* version of a model. `status`
//! only appears in the `status=all` listing, so an entry without one is
//! taken as released (the default listing shows only released versions).
//! `ts` is optional too.
//!
//! This module only reads the index; it does not fetch it.

use std::fmt;

use serde_json::Value;

use super::error::SpecError;
use super::spec::{as_whole_i64, describe};
use super::urn::Urn;

/// Release status of one spec version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InstanceStatus {
    /// `released`
    Released,
    /// `debug`
    Debug,
    /// `preview`
    Preview,
    /// Anything else, verbatim.
    Other(String),
}

impl InstanceStatus {
    fn parse(s: &str) -> Self {
        match s {
            "released" => Self::Released,
            "debug" => Self::Debug,
            "preview" => Self::Preview,
            other => Self::Other(other.to_string()),
        }
    }

    /// The status as written in the index.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Released => "released",
            Self::Debug => "debug",
            Self::Preview => "preview",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the index: one version of one model's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Model id, e.g. `dmaker.fan.p9`.
    pub model: String,
    /// Spec version.
    pub version: u32,
    /// Status; `None` when the listing did not say (taken as released).
    pub status: Option<InstanceStatus>,
    /// The device type URN of that version (the index's `type`).
    pub urn: Urn,
    /// Publication time in Unix seconds, when present.
    pub ts: Option<u64>,
}

impl Instance {
    /// True for `released`, and for entries without a status.
    pub fn is_released(&self) -> bool {
        matches!(self.status, None | Some(InstanceStatus::Released))
    }
}

/// The parsed instances index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instances {
    entries: Vec<Instance>,
}

impl Instances {
    /// Parses `{"instances": [{status, model, version, type[, ts]}, …]}`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SpecError> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| SpecError::Json(e.to_string()))?;
        Self::from_value(&doc)
    }

    /// Parses an index that is already JSON.
    pub fn from_value(doc: &Value) -> Result<Self, SpecError> {
        let list = match doc.get("instances") {
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(SpecError::BadIndex {
                    problem: format!("`instances` must be an array, found {}", describe(other)),
                })
            }
            None => {
                return Err(SpecError::BadIndex {
                    problem: "missing field `instances`".into(),
                })
            }
        };
        let entries = list
            .iter()
            .enumerate()
            .map(|(index, v)| {
                parse_entry(v).map_err(|problem| SpecError::BadInstance { index, problem })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { entries })
    }

    /// Builds an index from entries.
    pub fn from_entries(entries: Vec<Instance>) -> Self {
        Self { entries }
    }

    /// All entries in index order.
    pub fn iter(&self) -> impl Iterator<Item = &Instance> {
        self.entries.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the index has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry for `model`, oldest version first.
    pub fn versions(&self, model: &str) -> Vec<&Instance> {
        let mut v: Vec<&Instance> = self.entries.iter().filter(|i| i.model == model).collect();
        v.sort_by_key(|i| i.version);
        v
    }

    /// Released entries for `model`, newest version first.
    pub fn released(&self, model: &str) -> Vec<&Instance> {
        let mut v: Vec<&Instance> = self
            .entries
            .iter()
            .filter(|i| i.model == model && i.is_released())
            .collect();
        v.sort_by_key(|i| std::cmp::Reverse(i.version));
        v
    }

    /// The highest released version of `model`.
    pub fn newest_released(&self, model: &str) -> Option<&Instance> {
        self.released(model).into_iter().next()
    }

    /// The entry whose type URN is `urn` (the model of a document).
    pub fn for_type(&self, urn: &Urn) -> Option<&Instance> {
        self.entries.iter().find(|i| &i.urn == urn)
    }
}

fn parse_entry(v: &Value) -> Result<Instance, String> {
    let m = v
        .as_object()
        .ok_or_else(|| format!("expected an object, found {}", describe(v)))?;
    let model = match m.get("model") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(other) => {
            return Err(format!(
                "`model` must be a model id string, found {}",
                describe(other)
            ))
        }
        None => return Err("missing field `model`".into()),
    };
    let urn = match m.get("type") {
        Some(Value::String(s)) => {
            Urn::parse(s).map_err(|e| format!("`type` is not a valid URN: {e}"))?
        }
        Some(other) => {
            return Err(format!(
                "`type` must be a URN string, found {}",
                describe(other)
            ))
        }
        None => return Err("missing field `type`".into()),
    };
    let version = match m.get("version").filter(|v| !v.is_null()) {
        Some(v) => as_whole_i64(v)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| {
                format!(
                    "`version` must be a non-negative integer, found {}",
                    describe(v)
                )
            })?,
        None => urn
            .version()
            .ok_or_else(|| "missing field `version` and the type URN has none".to_string())?,
    };
    let status = match m.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(InstanceStatus::parse(s)),
        Some(other) => {
            return Err(format!(
                "`status` must be a string, found {}",
                describe(other)
            ))
        }
    };
    let ts = m
        .get("ts")
        .and_then(as_whole_i64)
        .and_then(|t| u64::try_from(t).ok());
    Ok(Instance {
        model,
        version,
        status,
        urn,
        ts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn optional_status_and_ts() {
        let idx = Instances::from_value(&json!({"instances": [
            {"model": "a.b.c", "version": 1, "type": "urn:miot-spec-v2:device:fan:0000A005:a-c:1"},
            {"model": "a.b.c", "version": 3, "status": "debug", "type": "urn:miot-spec-v2:device:fan:0000A005:a-c:3"},
            {"model": "a.b.c", "status": "released", "ts": 1600000000,
             "type": "urn:miot-spec-v2:device:fan:0000A005:a-c:2"}
        ]}))
        .unwrap();
        assert_eq!(idx.len(), 3);
        let newest = idx.newest_released("a.b.c").unwrap();
        assert_eq!(newest.version, 2, "version taken from the URN");
        assert_eq!(newest.ts, Some(1_600_000_000));
        assert!(idx.iter().next().unwrap().is_released());
        assert_eq!(
            idx.versions("a.b.c")
                .iter()
                .map(|i| i.version)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(idx.newest_released("x.y.z").is_none());
    }

    #[test]
    fn errors() {
        assert_eq!(
            Instances::from_value(&json!({})).unwrap_err().to_string(),
            "instances index: missing field `instances`"
        );
        assert_eq!(
            Instances::from_value(
                &json!({"instances": [{"model": "m", "version": 1, "type": "x"}]})
            )
            .unwrap_err()
            .to_string(),
            "instances index entry 0: `type` is not a valid URN: 'x' does not start with `urn:`"
        );
        assert_eq!(
            Instances::from_value(&json!({"instances": [{"version": 1}]}))
                .unwrap_err()
                .to_string(),
            "instances index entry 0: missing field `model`"
        );
        assert!(Instances::from_json(b"nope").is_err());
    }
}
