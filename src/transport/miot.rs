//! Typed calls: `miIO.info`, MIoT `get_properties` / `set_properties` /
//! `action`, with batching that adapts to what the device accepts.

use std::fmt;

use mijia_proto::miio::PropCode;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::device::{MiioDevice, Policy};
use super::error::MiioError;

/// A MIoT property address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PropId {
    /// Service instance id.
    pub siid: u32,
    /// Property instance id.
    pub piid: u32,
}

impl PropId {
    /// `siid.piid`.
    pub const fn new(siid: u32, piid: u32) -> Self {
        PropId { siid, piid }
    }
}

impl fmt::Display for PropId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.siid, self.piid)
    }
}

/// The outcome for one property of a `get_properties` / `set_properties`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropResult {
    /// Service instance id.
    pub siid: u32,
    /// Property instance id.
    pub piid: u32,
    /// MIoT result code (0 ok, 1 pending, -400x failures, or
    /// [`PropResult::MISSING`]).
    pub code: i64,
    /// The value (reads with code 0 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl PropResult {
    /// Code used when the device's reply had no entry for a property.
    pub const MISSING: i64 = -4099;

    /// The property address.
    pub fn id(&self) -> PropId {
        PropId::new(self.siid, self.piid)
    }

    /// Whether the device accepted / answered this property.
    pub fn is_success(&self) -> bool {
        PropCode(self.code).is_success()
    }

    /// What the code means.
    pub fn meaning(&self) -> &'static str {
        if self.code == Self::MISSING {
            "no result for this property in the device's reply"
        } else {
            PropCode(self.code).meaning()
        }
    }
}

/// The outcome of an `action`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionResult {
    /// MIoT result code.
    pub code: i64,
    /// Output values, in the order of the action's `out` properties.
    pub out: Vec<Value>,
}

/// What `miIO.info` tells about a device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// Model, e.g. `zhimi.airpurifier.mb3`.
    pub model: Option<String>,
    /// Firmware version.
    pub fw_ver: Option<String>,
    /// Hardware platform.
    pub hw_ver: Option<String>,
    /// MAC address.
    pub mac: Option<String>,
    /// The token the device reports (some firmware reveals it).
    pub token: Option<mijia_proto::miio::Token>,
    /// Uptime-like counter in seconds.
    pub life: Option<u64>,
    /// Wi-Fi access point (`ssid`, `bssid`, `rssi`).
    pub ap: Option<Value>,
    /// Network interface (`localIp`, `mask`, `gw`).
    pub netif: Option<Value>,
    /// The whole result.
    pub raw: Value,
}

impl DeviceInfo {
    /// Read the known fields from a `miIO.info` result.
    pub fn from_value(raw: Value) -> Option<DeviceInfo> {
        let obj = raw.as_object()?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let life = obj.get("life").and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        });
        Some(DeviceInfo {
            model: s("model"),
            fw_ver: s("fw_ver"),
            hw_ver: s("hw_ver"),
            mac: s("mac"),
            token: s("token").and_then(|t| t.parse().ok()),
            life,
            ap: obj.get("ap").cloned(),
            netif: obj.get("netif").cloned(),
            raw,
        })
    }
}

fn as_i64(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn as_u32(v: Option<&Value>) -> Option<u32> {
    as_i64(v).and_then(|n| u32::try_from(n).ok())
}

/// Fill `out[i]` for each request entry from the reply, matching by
/// `(siid, piid)` — never by position. Returns entries not matched.
fn match_results(ids: &[PropId], result: &Value, out: &mut [Option<PropResult>]) -> usize {
    let mut unmatched = 0;
    let Some(items) = result.as_array() else {
        return ids.len();
    };
    for item in items {
        let (Some(siid), Some(piid)) = (as_u32(item.get("siid")), as_u32(item.get("piid"))) else {
            unmatched += 1;
            continue;
        };
        let id = PropId::new(siid, piid);
        let slot = ids
            .iter()
            .zip(out.iter_mut())
            .find(|(want, have)| **want == id && have.is_none());
        let Some((_, slot)) = slot else {
            unmatched += 1;
            continue;
        };
        let code = as_i64(item.get("code")).unwrap_or(0);
        let value = if PropCode(code).is_success() {
            item.get("value").cloned()
        } else {
            None
        };
        *slot = Some(PropResult {
            siid,
            piid,
            code,
            value,
        });
    }
    unmatched
}

impl MiioDevice {
    /// `miIO.info`.
    pub async fn info(&self) -> Result<DeviceInfo, MiioError> {
        let raw = self.call("miIO.info", json!([])).await?;
        DeviceInfo::from_value(raw).ok_or_else(|| MiioError::UnexpectedResult {
            addr: self.addr(),
            method: "miIO.info".into(),
            detail: "the result is not an object".into(),
        })
    }

    /// Any method, any params; returns the `result`.
    pub async fn raw(&self, method: &str, params: Value) -> Result<Value, MiioError> {
        self.call(method, params).await
    }

    /// Read properties, in batches of [`batch_size`](Self::batch_size).
    /// Results come back in the order asked; an entry missing from the
    /// reply gets [`PropResult::MISSING`].
    pub async fn get_properties(&self, props: &[PropId]) -> Result<Vec<PropResult>, MiioError> {
        let items: Vec<(PropId, Option<Value>)> = props.iter().map(|p| (*p, None)).collect();
        self.batched("get_properties", &items).await
    }

    /// Write properties, in batches; one result per item, in order.
    pub async fn set_properties(
        &self,
        props: &[(PropId, Value)],
    ) -> Result<Vec<PropResult>, MiioError> {
        let items: Vec<(PropId, Option<Value>)> =
            props.iter().map(|(p, v)| (*p, Some(v.clone()))).collect();
        self.batched("set_properties", &items).await
    }

    /// Run an action with its `in` arguments.
    pub async fn action(
        &self,
        siid: u32,
        aiid: u32,
        ins: Vec<Value>,
    ) -> Result<ActionResult, MiioError> {
        let make =
            move |did: u64| json!({"did": did.to_string(), "siid": siid, "aiid": aiid, "in": ins});
        let policy = Policy {
            attempts: self.config().attempts(),
            retry_busy: true,
        };
        let result = self.exchange("action", &make, policy).await?;
        let unexpected = |detail: &str| MiioError::UnexpectedResult {
            addr: self.addr(),
            method: "action".into(),
            detail: detail.into(),
        };
        let obj = match &result {
            Value::Object(o) => o.clone(),
            // Some firmware answers a bare list (`["ok"]`) or code.
            Value::Array(out) => {
                let mut m = Map::new();
                m.insert("out".into(), Value::Array(out.clone()));
                m
            }
            _ => return Err(unexpected("the result is not an object")),
        };
        let code = match obj.get("code") {
            None => 0,
            some => as_i64(some).ok_or_else(|| unexpected("`code` is not a number"))?,
        };
        let out = match obj.get("out") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(unexpected("`out` is not a list")),
        };
        Ok(ActionResult { code, out })
    }

    async fn batched(
        &self,
        method: &str,
        items: &[(PropId, Option<Value>)],
    ) -> Result<Vec<PropResult>, MiioError> {
        let mut results: Vec<Option<PropResult>> = vec![None; items.len()];
        let mut pos = 0;
        let mut shrinks = 0u32;
        // Set when a multi-property batch failed its handshake: retry it
        // with the attempts the short batch policy left unused.
        let mut rest_of_budget = false;
        while pos < items.len() {
            let size = self.batch_size().min(items.len() - pos).max(1);
            let chunk = &items[pos..pos + size];
            let make = |did: u64| {
                let did = did.to_string();
                Value::Array(
                    chunk
                        .iter()
                        .map(|(id, value)| {
                            let mut o = json!({"did": did, "siid": id.siid, "piid": id.piid});
                            if let (Some(v), Some(map)) = (value, o.as_object_mut()) {
                                map.insert("value".into(), v.clone());
                            }
                            o
                        })
                        .collect(),
                )
            };
            // A multi-property batch gets two tries before it is split;
            // a single property gets the full retry policy.
            let policy = if size > 1 && rest_of_budget {
                Policy {
                    attempts: self.config().attempts().saturating_sub(2).max(1),
                    retry_busy: false,
                }
            } else if size > 1 {
                Policy {
                    attempts: self.config().attempts().min(2),
                    retry_busy: false,
                }
            } else {
                Policy {
                    attempts: self.config().attempts(),
                    retry_busy: true,
                }
            };
            match self.exchange(method, &make, policy).await {
                Ok(result) => {
                    let ids: Vec<PropId> = chunk.iter().map(|(id, _)| *id).collect();
                    let extra = match_results(&ids, &result, &mut results[pos..pos + size]);
                    if extra > 0 {
                        tracing::debug!(addr = %self.addr(), method, extra, "reply had entries that match no request");
                    }
                    pos += size;
                    rest_of_budget = false;
                }
                // A lost handshake says nothing about the batch size.
                Err(MiioError::Unreachable { .. })
                    if size > 1 && !rest_of_budget && self.config().attempts() > 2 =>
                {
                    rest_of_budget = true;
                }
                Err(e) if size > 1 && e.suggests_smaller_batch() => {
                    rest_of_budget = false;
                    let to = self.shrink_batch(size);
                    tracing::debug!(addr = %self.addr(), method, from = size, to, error = %e, "shrinking batch");
                    self.remember_batch().await;
                    tokio::time::sleep(self.config().backoff(shrinks)).await;
                    shrinks += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(results
            .into_iter()
            .zip(items)
            .map(|(r, (id, _))| {
                r.unwrap_or(PropResult {
                    siid: id.siid,
                    piid: id.piid,
                    code: PropResult::MISSING,
                    value: None,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_match_by_id_not_position() {
        let ids = [PropId::new(2, 1), PropId::new(2, 2), PropId::new(3, 1)];
        let reply = json!([
            {"did":"1","siid":3,"piid":1,"code":0,"value":42},
            {"did":"1","siid":2,"piid":1,"code":0,"value":true},
            {"did":"1","siid":9,"piid":9,"code":0,"value":0}
        ]);
        let mut out = vec![None; 3];
        assert_eq!(match_results(&ids, &reply, &mut out), 1);
        assert_eq!(
            out[0].as_ref().and_then(|r| r.value.clone()),
            Some(json!(true))
        );
        assert!(out[1].is_none());
        assert_eq!(
            out[2].as_ref().and_then(|r| r.value.clone()),
            Some(json!(42))
        );
    }

    #[test]
    fn failed_codes_carry_no_value_and_info_parses() {
        let ids = [PropId::new(2, 1)];
        let mut out = vec![None];
        match_results(
            &ids,
            &json!([{"siid":"2","piid":1,"code":-4001,"value":1}]),
            &mut out,
        );
        let r = out[0].clone().unwrap_or_else(|| panic!("matched"));
        assert_eq!((r.code, r.meaning()), (-4001, "property not readable"));
        assert_eq!(r.value, None);
        let info = DeviceInfo::from_value(json!({"model":"a.b.c","life":"12","mac":"x"}));
        assert_eq!(info.and_then(|i| i.life), Some(12));
        assert!(DeviceInfo::from_value(json!([1])).is_none());
    }
}
