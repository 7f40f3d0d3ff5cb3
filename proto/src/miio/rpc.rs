//! JSON-RPC envelopes, device errors and MIoT per-property result codes.

use serde_json::{Map, Value};

use super::json::{self, JsonError};

/// A request as sent to (or received by) a device.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Request id (positive).
    pub id: u32,
    /// Method name, e.g. `get_properties`, `miIO.info`.
    pub method: String,
    /// Parameters: usually an array, an object for `action`.
    pub params: Value,
    /// Extra top-level keys (`sid` for gateway sub-devices, `from`, …).
    pub extra: Map<String, Value>,
}

/// Why a payload is not a usable request or response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// JSON, but not an object.
    #[error("payload is not a JSON object")]
    NotObject,
    /// No usable `id`.
    #[error("payload has no valid positive `id`")]
    BadId,
    /// A request without a `method` string.
    #[error("request has no `method` string")]
    NoMethod,
    /// A response with neither `result` nor `error`.
    #[error("response has neither `result` nor `error`")]
    NoOutcome,
}

fn parse_id(v: Option<&Value>) -> Result<u32, PayloadError> {
    let id = match v {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    id.and_then(|i| u32::try_from(i).ok())
        .filter(|i| *i > 0)
        .ok_or(PayloadError::BadId)
}

impl Request {
    /// A request with array or object params.
    pub fn new(id: u32, method: impl Into<String>, params: Value) -> Self {
        Request {
            id,
            method: method.into(),
            params,
            extra: Map::new(),
        }
    }

    /// Compact JSON: `{"id":N,"method":"…","params":…}` then extra keys.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(r#"{{"id":{},"method":"#, self.id).into_bytes();
        // Serialising a String or a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &self.method);
        out.extend_from_slice(br#","params":"#);
        let _ = serde_json::to_writer(&mut out, &self.params);
        for (k, v) in &self.extra {
            out.push(b',');
            let _ = serde_json::to_writer(&mut out, k);
            out.push(b':');
            let _ = serde_json::to_writer(&mut out, v);
        }
        out.push(b'}');
        out
    }

    /// Parse a request payload (used by simulators and for device pushes).
    pub fn parse(payload: &[u8]) -> Result<Request, PayloadError> {
        let (v, _) = json::parse(payload)?;
        Self::from_value(v)
    }

    /// Build from an already parsed JSON value.
    pub fn from_value(v: Value) -> Result<Request, PayloadError> {
        let Value::Object(mut map) = v else {
            return Err(PayloadError::NotObject);
        };
        let id = parse_id(map.get("id"))?;
        let method = match map.remove("method") {
            Some(Value::String(s)) => s,
            _ => return Err(PayloadError::NoMethod),
        };
        let params = map.remove("params").unwrap_or(Value::Array(Vec::new()));
        map.remove("id");
        Ok(Request {
            id,
            method,
            params,
            extra: map,
        })
    }
}

/// An error object from a device: `{"code": -9999, "message": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device error {code}: {message}{}", hint_suffix(*.code))]
pub struct DeviceError {
    /// The code.
    pub code: i64,
    /// The message (from `message`, or `error` on some firmware).
    pub message: String,
}

fn hint_suffix(code: i64) -> String {
    match error_hint(code) {
        Some(h) => format!(" ({h})"),
        None => String::new(),
    }
}

/// What a device error code means and what to do, where known.
pub fn error_hint(code: i64) -> Option<&'static str> {
    Some(match code {
        -9999 => "device busy or request too large; retry with fewer properties",
        -30001 => "device could not parse the request; retry",
        -5001 => "invalid argument or command",
        -5002 => "no IR code for that key",
        -5003 => "IR learning timed out",
        -5008 => "IR magic error",
        -6011 | -10000 => "the device is powered off; turn it on first",
        -32600 => "request object invalid",
        -32601 => "method not supported by this device",
        _ => return None,
    })
}

impl DeviceError {
    /// Codes worth retrying with back-off.
    pub fn is_retryable(&self) -> bool {
        matches!(self.code, -9999 | -30001)
    }

    /// Method not found / unsupported.
    pub fn is_unsupported(&self) -> bool {
        matches!(self.code, -32601 | -32600)
    }
}

/// A response from a device.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id it answers.
    pub id: u32,
    /// `result`, or the error object.
    pub outcome: Result<Value, DeviceError>,
}

impl Response {
    /// A success.
    pub fn ok(id: u32, result: Value) -> Self {
        Response {
            id,
            outcome: Ok(result),
        }
    }

    /// A failure with `message`.
    pub fn error(id: u32, code: i64, message: impl Into<String>) -> Self {
        Response {
            id,
            outcome: Err(DeviceError {
                code,
                message: message.into(),
            }),
        }
    }

    /// Parse a response payload, accepting `message` or `error` as the
    /// error text and Roborock's `"unknown_method"` result.
    pub fn parse(payload: &[u8]) -> Result<Response, PayloadError> {
        let (v, _) = json::parse(payload)?;
        Self::from_value(v)
    }

    /// Build from a parsed JSON value.
    pub fn from_value(v: Value) -> Result<Response, PayloadError> {
        let Value::Object(mut map) = v else {
            return Err(PayloadError::NotObject);
        };
        let id = parse_id(map.get("id"))?;
        if let Some(err) = map.remove("error") {
            let (code, message) = match &err {
                Value::Object(o) => (
                    o.get("code").and_then(Value::as_i64).unwrap_or(-1),
                    o.get("message")
                        .or_else(|| o.get("error"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                ),
                Value::String(s) => (-1, s.clone()),
                other => (-1, other.to_string()),
            };
            return Ok(Response::error(id, code, message));
        }
        match map.remove("result") {
            Some(Value::String(s)) if s == "unknown_method" => {
                Ok(Response::error(id, -32601, "unknown_method"))
            }
            Some(result) => Ok(Response::ok(id, result)),
            None => Err(PayloadError::NoOutcome),
        }
    }

    /// Compact JSON. `message_key` chooses `message` (real firmware) or
    /// `error` (some older firmware) for error objects.
    pub fn to_bytes_with(&self, message_key: &str) -> Vec<u8> {
        let v = match &self.outcome {
            Ok(r) => serde_json::json!({"id": self.id, "result": r}),
            Err(e) => {
                let mut o = Map::new();
                o.insert("code".into(), e.code.into());
                o.insert(message_key.into(), e.message.clone().into());
                serde_json::json!({"id": self.id, "error": o})
            }
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// Compact JSON with `message` in error objects.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with("message")
    }
}

/// A MIoT per-property (or per-action) result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropCode(pub i64);

impl PropCode {
    /// 0 (OK) or 1 (accepted, pending) count as success.
    pub fn is_success(self) -> bool {
        matches!(self.0, 0 | 1)
    }

    /// The named meaning from the MIoT device SDK.
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0 => "ok",
            1 => "accepted, not finished yet",
            -4000 => "failed",
            -4001 => "property not readable",
            -4002 => "property not writable",
            -4003 => "property, action or event does not exist",
            -4004 => "internal device error",
            -4005 => "invalid value",
            -4006 => "invalid action arguments",
            -4007 => "invalid did",
            _ => "unknown result code",
        }
    }
}

impl std::fmt::Display for PropCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.0, self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_is_compact_and_ordered() {
        let r = Request::new(7, "get_properties", json!([{"did":"x","siid":2,"piid":1}]));
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            r#"{"id":7,"method":"get_properties","params":[{"did":"x","piid":1,"siid":2}]}"#
        );
        assert_eq!(Request::parse(&r.to_bytes()).unwrap(), r);
    }

    #[test]
    fn error_forms() {
        let a = Response::parse(br#"{"id":2,"error":{"code":-9999,"message":"user ack timeout"}}"#)
            .unwrap();
        let b = Response::parse(br#"{"id":2,"error":{"code":-9999,"error":"user ack timeout"}}"#)
            .unwrap();
        assert_eq!(a, b);
        let e = a.outcome.unwrap_err();
        assert!(e.is_retryable());
        assert!(e.to_string().contains("fewer properties"));
        let r = Response::parse(br#"{"id":3,"result":"unknown_method"}"#).unwrap();
        assert!(r.outcome.unwrap_err().is_unsupported());
    }

    #[test]
    fn bad_payloads() {
        assert_eq!(Response::parse(b"[1]"), Err(PayloadError::NotObject));
        assert_eq!(
            Response::parse(br#"{"id":0,"result":1}"#),
            Err(PayloadError::BadId)
        );
        assert_eq!(
            Response::parse(br#"{"id":1}"#),
            Err(PayloadError::NoOutcome)
        );
        assert_eq!(Request::parse(br#"{"id":1}"#), Err(PayloadError::NoMethod));
    }

    #[test]
    fn prop_codes() {
        assert_eq!(PropCode(-4001).meaning(), "property not readable");
        assert!(PropCode(1).is_success());
        assert!(!PropCode(-4005).is_success());
    }
}
