//! Opening API replies: plain-JSON errors, RC4-encrypted bodies (optionally
//! gzip inside), the `{code, message, result}` envelope, and the signals
//! that mean "this session is no longer valid".
//!
//! Order of checks for a body: if it already parses as JSON it is used as
//! is (errors come back unencrypted); otherwise it must be base64, is
//! RC4-decrypted with the request's signed nonce, gunzipped when it starts
//! with the gzip magic (never past [`MAX_DECOMPRESSED`] bytes), and parsed
//! as UTF-8 JSON.
//!
//! This module does not look at HTTP headers or retry anything; the async
//! client decides what to do with a [`CloudProtoError::SessionInvalid`].

use std::io::Read as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{CloudProtoError, SessionInvalidReason};
use super::signing::SignedNonce;

/// Upper bound on a decompressed reply (64 MiB).
pub const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn preview(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(60).collect()
}

fn parse_json(bytes: &[u8]) -> Result<Value, CloudProtoError> {
    serde_json::from_slice(bytes).map_err(|e| CloudProtoError::NotJson {
        reason: e.to_string(),
    })
}

/// If `body` is plain JSON (an unencrypted error or an HMAC-variant reply),
/// returns it parsed.
pub fn plain_json(body: &[u8]) -> Option<Value> {
    let trimmed = body.trim_ascii_start();
    match trimmed.first() {
        Some(b'{') | Some(b'[') => serde_json::from_slice(trimmed).ok(),
        _ => None,
    }
}

/// Gunzips `data`, failing once the output would exceed `limit` bytes.
pub fn gunzip_bounded(data: &[u8], limit: usize) -> Result<Vec<u8>, CloudProtoError> {
    let decoder = flate2::read::GzDecoder::new(data);
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| CloudProtoError::Gzip {
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(CloudProtoError::TooLarge { limit });
    }
    Ok(out)
}

/// Decodes a reply body to JSON with the default size bound.
pub fn decode_response(signed_nonce: &SignedNonce, body: &[u8]) -> Result<Value, CloudProtoError> {
    decode_response_bounded(signed_nonce, body, MAX_DECOMPRESSED)
}

/// Decodes a reply body to JSON: plain JSON as is, otherwise base64 → RC4 →
/// (gunzip, at most `limit` bytes) → JSON. A plain-text `invalid signature`
/// body is reported as [`CloudProtoError::SessionInvalid`].
pub fn decode_response_bounded(
    signed_nonce: &SignedNonce,
    body: &[u8],
    limit: usize,
) -> Result<Value, CloudProtoError> {
    if let Some(v) = plain_json(body) {
        return Ok(v);
    }
    let text = body.trim_ascii();
    let Ok(raw) = STANDARD.decode(text) else {
        let lower = String::from_utf8_lossy(text).to_ascii_lowercase();
        if lower.contains("invalid signature") {
            return Err(CloudProtoError::SessionInvalid {
                reason: SessionInvalidReason::InvalidSignature,
                code: 0,
                message: preview(text),
            });
        }
        return Err(CloudProtoError::NotBase64 {
            preview: preview(text),
        });
    };
    let decrypted = signed_nonce.rc4(&raw);
    let plain = if decrypted.starts_with(&GZIP_MAGIC) {
        gunzip_bounded(&decrypted, limit)?
    } else {
        decrypted
    };
    if std::str::from_utf8(&plain).is_err() {
        return Err(CloudProtoError::NotUtf8);
    }
    parse_json(&plain)
}

/// Classifies `code` and `message` of an envelope as a session problem.
pub fn session_invalid_reason(code: i64, message: &str) -> Option<SessionInvalidReason> {
    let lower = message.to_ascii_lowercase();
    if lower.contains("servicetoken_expired") {
        Some(SessionInvalidReason::TokenExpired)
    } else if lower.contains("invalid signature") {
        Some(SessionInvalidReason::InvalidSignature)
    } else if code == 2 || code == 3 || lower == "auth err" {
        Some(SessionInvalidReason::AuthError)
    } else {
        None
    }
}

/// Classifies an HTTP status and body of a failed API call: 401 is an
/// authentication error, 426 or a body mentioning `SERVICETOKEN_EXPIRED` an
/// expired token.
pub fn session_invalid_for_http(status: u16, body: &[u8]) -> Option<SessionInvalidReason> {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    if status == 426 || text.contains("servicetoken_expired") {
        Some(SessionInvalidReason::TokenExpired)
    } else if status == 401 {
        Some(SessionInvalidReason::AuthError)
    } else {
        None
    }
}

/// Checks an API envelope `{code, message, result}` and returns `result`.
pub fn open_envelope(envelope: Value) -> Result<Value, CloudProtoError> {
    let Value::Object(mut map) = envelope else {
        return Err(CloudProtoError::Shape {
            detail: "the reply is not a JSON object".to_owned(),
        });
    };
    let code = match map.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| CloudProtoError::Shape {
        detail: "no numeric \"code\" in the envelope".to_owned(),
    })?;
    let message = match map.get("message") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    if let Some(reason) = session_invalid_reason(code, &message) {
        return Err(CloudProtoError::SessionInvalid {
            reason,
            code,
            message,
        });
    }
    if code != 0 {
        return Err(CloudProtoError::Api { code, message });
    }
    map.remove("result").ok_or_else(|| CloudProtoError::Shape {
        detail: "\"code\" is 0 but there is no \"result\"".to_owned(),
    })
}

/// Converts an envelope's `result` into `T`.
pub fn typed_result<T: DeserializeOwned>(envelope: Value) -> Result<T, CloudProtoError> {
    let result = open_envelope(envelope)?;
    serde_json::from_value(result).map_err(|e| CloudProtoError::Shape {
        detail: format!("the result does not have the expected fields: {e}"),
    })
}

/// Decodes a reply body and returns its typed `result`.
pub fn open_response<T: DeserializeOwned>(
    signed_nonce: &SignedNonce,
    body: &[u8],
) -> Result<T, CloudProtoError> {
    typed_result(decode_response(signed_nonce, body)?)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::cloud::secrets::Ssecurity;
    use crate::cloud::signing::{encrypt_response, Nonce};

    fn key() -> (Ssecurity, Nonce, SignedNonce) {
        let ss = Ssecurity::from_base64("rmiKudqfR0nPsTBl/lkHjg==").unwrap();
        let n = Nonce::generate([1, 2, 3, 4, 5, 6, 7, 8], 1_700_000_000_000);
        let sn = SignedNonce::derive(&ss, &n);
        (ss, n, sn)
    }

    #[test]
    fn plain_json_errors_are_not_decrypted() {
        let (_, _, sn) = key();
        let body = br#" {"code":3,"message":"auth err"}"#;
        assert_eq!(plain_json(body).unwrap()["code"], 3);
        let v = decode_response(&sn, body).unwrap();
        assert_eq!(v["message"], "auth err");
        let err = open_response::<Value>(&sn, body).unwrap_err();
        assert!(err.is_session_invalid(), "{err:?}");
    }

    #[test]
    fn session_invalid_signals() {
        let (_, _, sn) = key();
        let cases: [(&[u8], SessionInvalidReason); 4] = [
            (
                br#"{"code":3,"message":"auth err"}"#,
                SessionInvalidReason::AuthError,
            ),
            (
                br#"{"code":2,"message":"x"}"#,
                SessionInvalidReason::AuthError,
            ),
            (
                br#"{"code":0,"message":"SERVICETOKEN_EXPIRED"}"#,
                SessionInvalidReason::TokenExpired,
            ),
            (
                br#"{"code":-1,"message":"invalid signature"}"#,
                SessionInvalidReason::InvalidSignature,
            ),
        ];
        for (body, want) in cases {
            match open_response::<Value>(&sn, body) {
                Err(CloudProtoError::SessionInvalid { reason, .. }) => assert_eq!(reason, want),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        match decode_response(&sn, b"invalid signature") {
            Err(CloudProtoError::SessionInvalid { reason, .. }) => {
                assert_eq!(reason, SessionInvalidReason::InvalidSignature)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            session_invalid_for_http(426, b""),
            Some(SessionInvalidReason::TokenExpired)
        );
        assert_eq!(
            session_invalid_for_http(401, b"<html>"),
            Some(SessionInvalidReason::AuthError)
        );
        assert_eq!(session_invalid_for_http(500, b"oops"), None);
    }

    #[test]
    fn api_errors_and_shapes() {
        let err = open_envelope(serde_json::json!({"code": -704042011, "message": "offline"}))
            .unwrap_err();
        assert_eq!(
            err,
            CloudProtoError::Api {
                code: -704042011,
                message: "offline".into()
            }
        );
        assert!(matches!(
            open_envelope(serde_json::json!({"code": 0, "message": "ok"})),
            Err(CloudProtoError::Shape { .. })
        ));
        assert!(matches!(
            open_envelope(serde_json::json!([1])),
            Err(CloudProtoError::Shape { .. })
        ));
        let n: Vec<u32> = typed_result(serde_json::json!({"code": "0", "result": [1, 2]})).unwrap();
        assert_eq!(n, vec![1, 2]);
        assert!(matches!(
            typed_result::<Vec<u32>>(serde_json::json!({"code": 0, "result": {"a": 1}})),
            Err(CloudProtoError::Shape { .. })
        ));
    }

    #[test]
    fn encrypted_round_trip_and_bad_bodies() {
        let (ss, n, sn) = key();
        let json = br#"{"code":0,"message":"ok","result":{"x":1}}"#;
        for gzip in [false, true] {
            let body = encrypt_response(&ss, &n, json, gzip);
            let r: Value = open_response(&sn, body.as_bytes()).unwrap();
            assert_eq!(r["x"], 1);
        }
        assert!(matches!(
            decode_response(&sn, b"<html>nope</html>"),
            Err(CloudProtoError::NotBase64 { .. })
        ));
        // Right format, wrong key: garbage, not UTF-8 or not JSON.
        let other = SignedNonce::derive(&ss, &Nonce::generate([9; 8], 0));
        let body = encrypt_response(&ss, &n, json, false);
        assert!(decode_response(&other, body.as_bytes()).is_err());
    }

    #[test]
    fn gzip_bomb_is_bounded() {
        let (ss, n, sn) = key();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b' '; 2 * 1024 * 1024]).unwrap();
        let gz = enc.finish().unwrap();
        assert!(gz.len() < 16 * 1024);
        assert_eq!(
            gunzip_bounded(&gz, 1024 * 1024).unwrap_err(),
            CloudProtoError::TooLarge { limit: 1024 * 1024 }
        );
        assert_eq!(
            gunzip_bounded(&gz, 2 * 1024 * 1024).unwrap().len(),
            2 * 1024 * 1024
        );
        let body = sn.encrypt_value(&gz);
        assert_eq!(
            decode_response_bounded(&sn, body.as_bytes(), 1000).unwrap_err(),
            CloudProtoError::TooLarge { limit: 1000 }
        );
        // Corrupt gzip stream.
        let mut bad = gz.clone();
        bad.truncate(20);
        assert!(matches!(
            gunzip_bounded(&bad, 1024),
            Err(CloudProtoError::Gzip { .. })
        ));
        let _ = (ss, n);
    }
}
