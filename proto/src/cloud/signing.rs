//! Request signing for the legacy app API (`…/app/…`), client and server side.
//!
//! * [`Nonce`]: 8 random bytes followed by the big-endian minute counter
//!   `floor(unix_ms / 60000)`, base64. Both inputs are arguments.
//! * [`SignedNonce`]: `SHA-256(ssecurity ‖ nonce)`; its raw bytes key the
//!   HMAC and RC4, its base64 text appears in every string to sign.
//! * Variant A ([`RequestSigner::sign_hmac`]): HMAC-SHA256 over
//!   `path&signed_nonce&nonce&k=v…`, parameters in plain text.
//! * Variant B ([`RequestSigner::sign_rc4`]): `rc4_hash__` over the plain
//!   parameters, every value RC4-encrypted with a fresh cipher, then a SHA-1
//!   signature over the encrypted parameters.
//! * The server side ([`verify_rc4_request`], [`verify_hmac_request`],
//!   [`encrypt_response`]) is what a fake cloud needs to check a client.
//!
//! This module neither sends requests nor reads the clock or a random source,
//! and it does not decide which variant or headers to use per endpoint.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::error::SignError;
use super::form::encode_form;
use super::rc4::{rc4_apply, XIAOMI_DROP};
use super::secrets::Ssecurity;

/// Form field holding the signature.
pub const FIELD_SIGNATURE: &str = "signature";
/// Form field holding the nonce.
pub const FIELD_NONCE: &str = "_nonce";
/// Form field holding the plain `ssecurity` (RC4 variant only).
pub const FIELD_SSECURITY: &str = "ssecurity";
/// Form field holding the encrypted hash of the plain parameters.
pub const FIELD_RC4_HASH: &str = "rc4_hash__";
/// Form field holding the request JSON.
pub const FIELD_DATA: &str = "data";

/// Headers every RC4-variant request carries.
pub const RC4_HEADERS: [(&str, &str); 4] = [
    ("Accept-Encoding", "identity"),
    ("Content-Type", "application/x-www-form-urlencoded"),
    ("MIOT-ENCRYPT-ALGORITHM", "ENCRYPT-RC4"),
    ("x-xiaomi-protocal-flag-cli", "PROTOCAL-HTTP2"),
];

/// Header that asks the server to gzip the (then encrypted) reply.
pub const GZIP_REQUEST_HEADER: (&str, &str) = ("miot-accept-encoding", "GZIP");

/// HTTP method, which the RC4 strings to sign include.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST` (every endpoint mijia uses).
    Post,
}

impl Method {
    /// The upper-case method name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request nonce: base64 of (normally) 12 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nonce {
    text: String,
    bytes: Vec<u8>,
}

impl Nonce {
    /// The nonce for 8 random bytes at `unix_ms` (milliseconds since the
    /// epoch): `random ‖ u32_be(unix_ms / 60000)`.
    pub fn generate(random: [u8; 8], unix_ms: u64) -> Self {
        let minutes = u32::try_from(unix_ms / 60_000).unwrap_or(u32::MAX);
        let mut bytes = Vec::with_capacity(12);
        bytes.extend_from_slice(&random);
        bytes.extend_from_slice(&minutes.to_be_bytes());
        Nonce {
            text: STANDARD.encode(&bytes),
            bytes,
        }
    }

    /// A nonce as received in a `_nonce` field. Any non-empty base64 is
    /// accepted; only [`Nonce::minutes`] depends on the 12-byte layout.
    pub fn parse(text: &str) -> Result<Self, SignError> {
        let invalid = |reason: String| SignError::InvalidNonce {
            nonce: text.to_owned(),
            reason,
        };
        let bytes = STANDARD.decode(text).map_err(|e| invalid(e.to_string()))?;
        if bytes.is_empty() {
            return Err(invalid("it is empty".to_owned()));
        }
        Ok(Nonce {
            text: text.to_owned(),
            bytes,
        })
    }

    /// The base64 text sent as `_nonce`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The decoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The minute counter in a 12-byte nonce (for clock-skew and replay
    /// checks), or `None` for other lengths.
    pub fn minutes(&self) -> Option<u32> {
        match self.bytes.as_slice() {
            [_, _, _, _, _, _, _, _, a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => None,
        }
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `SHA-256(ssecurity ‖ nonce)`: the per-request key. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedNonce {
    key: [u8; 32],
    text: String,
}

impl SignedNonce {
    /// Derives the signed nonce of `nonce` under `ssecurity`.
    pub fn derive(ssecurity: &Ssecurity, nonce: &Nonce) -> Self {
        let mut h = Sha256::new();
        h.update(ssecurity.reveal_bytes());
        h.update(nonce.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        SignedNonce {
            text: STANDARD.encode(key),
            key,
        }
    }

    /// The 32 raw bytes: the HMAC and RC4 key.
    pub fn reveal_key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The base64 text that appears in strings to sign.
    pub fn reveal(&self) -> &str {
        &self.text
    }

    /// Encrypts one value: base64(RC4-drop-1024(value)) with a fresh cipher.
    pub fn encrypt_value(&self, plain: &[u8]) -> String {
        STANDARD.encode(self.rc4(plain))
    }

    /// Decrypts raw RC4 bytes with a fresh cipher.
    pub fn rc4(&self, data: &[u8]) -> Vec<u8> {
        // A 32-byte key is always valid for RC4.
        rc4_apply(&self.key, XIAOMI_DROP, data).unwrap_or_default()
    }

    /// Decrypts one base64 value of form field `field` to bytes.
    pub fn decrypt_bytes(&self, field: &str, encrypted: &str) -> Result<Vec<u8>, SignError> {
        let raw = STANDARD
            .decode(encrypted)
            .map_err(|_| SignError::FieldNotBase64 {
                field: field.to_owned(),
            })?;
        Ok(self.rc4(&raw))
    }

    /// Decrypts one base64 value of form field `field` to text.
    pub fn decrypt_value(&self, field: &str, encrypted: &str) -> Result<String, SignError> {
        String::from_utf8(self.decrypt_bytes(field, encrypted)?).map_err(|_| {
            SignError::FieldNotUtf8 {
                field: field.to_owned(),
            }
        })
    }
}

impl fmt::Debug for SignedNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignedNonce(<redacted>)")
    }
}

/// The string HMAC-signed in variant A:
/// `path&signed_nonce&nonce&k1=v1&k2=v2…` with parameters sorted by key.
pub fn hmac_string_to_sign(
    signed_path: &str,
    signed_nonce: &SignedNonce,
    nonce: &Nonce,
    params: &BTreeMap<String, String>,
) -> String {
    let mut parts = vec![
        signed_path.to_owned(),
        signed_nonce.reveal().to_owned(),
        nonce.as_str().to_owned(),
    ];
    parts.extend(params.iter().map(|(k, v)| format!("{k}={v}")));
    parts.join("&")
}

/// base64(HMAC-SHA256(key = raw signed nonce, message)).
pub fn hmac_signature(signed_nonce: &SignedNonce, message: &str) -> String {
    STANDARD.encode(hmac_bytes(signed_nonce, message))
}

fn hmac_bytes(signed_nonce: &SignedNonce, message: &str) -> Vec<u8> {
    let mut mac = new_hmac(signed_nonce);
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn new_hmac(signed_nonce: &SignedNonce) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; the error branch cannot happen, and
    // falling back to a keyed-with-empty MAC would only make verification fail.
    <Hmac<Sha256> as Mac>::new_from_slice(signed_nonce.reveal_key())
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()))
}

/// The string SHA-1-hashed in variant B, for both `rc4_hash__` (plain
/// parameters) and `signature` (encrypted parameters):
/// `METHOD&path&k1=v1&…&signed_nonce`, parameters sorted by key.
pub fn sha1_string_to_sign(
    method: Method,
    signed_path: &str,
    params: &BTreeMap<String, String>,
    signed_nonce: &SignedNonce,
) -> String {
    let mut parts = vec![method.as_str().to_owned(), signed_path.to_owned()];
    parts.extend(params.iter().map(|(k, v)| format!("{k}={v}")));
    parts.push(signed_nonce.reveal().to_owned());
    parts.join("&")
}

/// base64(SHA-1(message)).
pub fn sha1_signature(message: &str) -> String {
    STANDARD.encode(Sha1::digest(message.as_bytes()))
}

/// A signed request: the form fields in the order they are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedForm {
    /// Field names and values, in wire order.
    pub fields: Vec<(String, String)>,
}

impl SignedForm {
    /// The value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The urlencoded body.
    pub fn body(&self) -> String {
        encode_form(&self.fields)
    }
}

/// Every intermediate value of an RC4-variant signature, for tests and for
/// diagnosing a server that rejects a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rc4Trace {
    /// The string whose SHA-1 is `rc4_hash__`.
    pub rc4_hash_string: String,
    /// `rc4_hash__` before encryption.
    pub rc4_hash_plain: String,
    /// The encrypted parameters (including `rc4_hash__`), sorted by key.
    pub encrypted_params: BTreeMap<String, String>,
    /// The string whose SHA-1 is the signature.
    pub signature_string: String,
    /// The signed form.
    pub form: SignedForm,
}

/// Signs requests with one nonce. Build a new signer (with fresh random
/// bytes) for every request.
#[derive(Debug, Clone)]
pub struct RequestSigner {
    nonce: Nonce,
    signed_nonce: SignedNonce,
}

fn to_map<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> BTreeMap<String, String> {
    params
        .iter()
        .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
        .collect()
}

impl RequestSigner {
    /// A signer for `nonce` under `ssecurity`.
    pub fn new(ssecurity: &Ssecurity, nonce: Nonce) -> Self {
        let signed_nonce = SignedNonce::derive(ssecurity, &nonce);
        RequestSigner {
            nonce,
            signed_nonce,
        }
    }

    /// The nonce.
    pub fn nonce(&self) -> &Nonce {
        &self.nonce
    }

    /// The signed nonce.
    pub fn signed_nonce(&self) -> &SignedNonce {
        &self.signed_nonce
    }

    /// Variant A: fields `signature`, `_nonce`, then the plain parameters in
    /// the given order.
    pub fn sign_hmac<K: AsRef<str>, V: AsRef<str>>(
        &self,
        signed_path: &str,
        params: &[(K, V)],
    ) -> SignedForm {
        let message = hmac_string_to_sign(
            signed_path,
            &self.signed_nonce,
            &self.nonce,
            &to_map(params),
        );
        let mut fields = vec![
            (
                FIELD_SIGNATURE.to_owned(),
                hmac_signature(&self.signed_nonce, &message),
            ),
            (FIELD_NONCE.to_owned(), self.nonce.as_str().to_owned()),
        ];
        fields.extend(
            params
                .iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())),
        );
        SignedForm { fields }
    }

    /// Variant B, with every intermediate value.
    pub fn sign_rc4_traced<K: AsRef<str>, V: AsRef<str>>(
        &self,
        ssecurity: &Ssecurity,
        method: Method,
        signed_path: &str,
        params: &[(K, V)],
    ) -> Rc4Trace {
        let mut plain = to_map(params);
        plain.remove(FIELD_RC4_HASH);
        let rc4_hash_string = sha1_string_to_sign(method, signed_path, &plain, &self.signed_nonce);
        let rc4_hash_plain = sha1_signature(&rc4_hash_string);
        plain.insert(FIELD_RC4_HASH.to_owned(), rc4_hash_plain.clone());
        let encrypted_params: BTreeMap<String, String> = plain
            .into_iter()
            .map(|(k, v)| {
                let enc = self.signed_nonce.encrypt_value(v.as_bytes());
                (k, enc)
            })
            .collect();
        let signature_string =
            sha1_string_to_sign(method, signed_path, &encrypted_params, &self.signed_nonce);
        let signature = sha1_signature(&signature_string);
        let mut fields: Vec<(String, String)> = encrypted_params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fields.push((FIELD_SIGNATURE.to_owned(), signature));
        fields.push((FIELD_SSECURITY.to_owned(), ssecurity.reveal().to_owned()));
        fields.push((FIELD_NONCE.to_owned(), self.nonce.as_str().to_owned()));
        Rc4Trace {
            rc4_hash_string,
            rc4_hash_plain,
            encrypted_params,
            signature_string,
            form: SignedForm { fields },
        }
    }

    /// Variant B: encrypted parameters sorted by key (`data`,
    /// `rc4_hash__`), then `signature`, `ssecurity`, `_nonce`. A caller
    /// parameter named `rc4_hash__` is ignored.
    pub fn sign_rc4<K: AsRef<str>, V: AsRef<str>>(
        &self,
        ssecurity: &Ssecurity,
        method: Method,
        signed_path: &str,
        params: &[(K, V)],
    ) -> SignedForm {
        self.sign_rc4_traced(ssecurity, method, signed_path, params)
            .form
    }
}

/// A request that passed verification on the server side.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedRequest {
    /// The request's nonce (for replay and clock checks, and to encrypt the
    /// reply).
    pub nonce: Nonce,
    /// All signed parameters, decrypted (RC4) or as sent (HMAC); without
    /// `rc4_hash__`, `signature`, `_nonce` and `ssecurity`.
    pub params: BTreeMap<String, String>,
    /// The `data` parameter parsed as JSON (`null` when absent).
    pub data: serde_json::Value,
}

struct Collected {
    nonce: Nonce,
    signature: String,
    params: BTreeMap<String, String>,
}

fn collect<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> Result<Collected, SignError> {
    let mut nonce = None;
    let mut signature = None;
    let mut ssecurity_seen = false;
    let mut params = BTreeMap::new();
    for (k, v) in fields {
        let (k, v) = (k.as_ref(), v.as_ref());
        let dup = || SignError::DuplicateField {
            field: k.to_owned(),
        };
        match k {
            FIELD_NONCE => {
                if nonce.replace(v).is_some() {
                    return Err(dup());
                }
            }
            FIELD_SIGNATURE => {
                if signature.replace(v).is_some() {
                    return Err(dup());
                }
            }
            FIELD_SSECURITY => {
                if std::mem::replace(&mut ssecurity_seen, true) {
                    return Err(dup());
                }
            }
            _ => {
                if params.insert(k.to_owned(), v.to_owned()).is_some() {
                    return Err(dup());
                }
            }
        }
    }
    let missing = |field: &str| SignError::MissingField {
        field: field.to_owned(),
    };
    let nonce = Nonce::parse(nonce.ok_or_else(|| missing(FIELD_NONCE))?)?;
    let signature = signature
        .ok_or_else(|| missing(FIELD_SIGNATURE))?
        .to_owned();
    Ok(Collected {
        nonce,
        signature,
        params,
    })
}

/// Compares two byte strings without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_data(params: &BTreeMap<String, String>) -> Result<serde_json::Value, SignError> {
    match params.get(FIELD_DATA) {
        None => Ok(serde_json::Value::Null),
        Some(d) => serde_json::from_str(d).map_err(|e| SignError::DataNotJson {
            reason: e.to_string(),
        }),
    }
}

/// Server side of variant B for a `POST`: see [`verify_rc4_request_method`].
pub fn verify_rc4_request<K: AsRef<str>, V: AsRef<str>>(
    ssecurity: &Ssecurity,
    signed_path: &str,
    fields: &[(K, V)],
) -> Result<VerifiedRequest, SignError> {
    verify_rc4_request_method(ssecurity, Method::Post, signed_path, fields)
}

/// Server side of variant B: checks `signature` over the encrypted
/// parameters, decrypts every parameter and `rc4_hash__`, and checks
/// `rc4_hash__` against the decrypted parameters.
pub fn verify_rc4_request_method<K: AsRef<str>, V: AsRef<str>>(
    ssecurity: &Ssecurity,
    method: Method,
    signed_path: &str,
    fields: &[(K, V)],
) -> Result<VerifiedRequest, SignError> {
    let Collected {
        nonce,
        signature,
        params: encrypted,
    } = collect(fields)?;
    if !encrypted.contains_key(FIELD_RC4_HASH) {
        return Err(SignError::MissingField {
            field: FIELD_RC4_HASH.to_owned(),
        });
    }
    let signed_nonce = SignedNonce::derive(ssecurity, &nonce);
    let expected = sha1_signature(&sha1_string_to_sign(
        method,
        signed_path,
        &encrypted,
        &signed_nonce,
    ));
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(SignError::BadSignature);
    }
    let mut params = BTreeMap::new();
    for (k, v) in &encrypted {
        params.insert(k.clone(), signed_nonce.decrypt_value(k, v)?);
    }
    let claimed_hash = params.remove(FIELD_RC4_HASH).unwrap_or_default();
    let actual_hash = sha1_signature(&sha1_string_to_sign(
        method,
        signed_path,
        &params,
        &signed_nonce,
    ));
    if !constant_time_eq(claimed_hash.as_bytes(), actual_hash.as_bytes()) {
        return Err(SignError::Rc4HashMismatch);
    }
    let data = parse_data(&params)?;
    Ok(VerifiedRequest {
        nonce,
        params,
        data,
    })
}

/// Server side of variant A: checks the HMAC signature over the plain
/// parameters.
pub fn verify_hmac_request<K: AsRef<str>, V: AsRef<str>>(
    ssecurity: &Ssecurity,
    signed_path: &str,
    fields: &[(K, V)],
) -> Result<VerifiedRequest, SignError> {
    let Collected {
        nonce,
        signature,
        params,
    } = collect(fields)?;
    let signed_nonce = SignedNonce::derive(ssecurity, &nonce);
    let message = hmac_string_to_sign(signed_path, &signed_nonce, &nonce, &params);
    let given = STANDARD
        .decode(&signature)
        .map_err(|_| SignError::BadSignature)?;
    let mut mac = new_hmac(&signed_nonce);
    mac.update(message.as_bytes());
    mac.verify_slice(&given)
        .map_err(|_| SignError::BadSignature)?;
    let data = parse_data(&params)?;
    Ok(VerifiedRequest {
        nonce,
        params,
        data,
    })
}

/// Server side of a reply: base64(RC4(json)), gzip-compressed first when
/// `gzip` is set, keyed by the request's signed nonce.
pub fn encrypt_response(ssecurity: &Ssecurity, nonce: &Nonce, json: &[u8], gzip: bool) -> String {
    let signed_nonce = SignedNonce::derive(ssecurity, nonce);
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing into a Vec cannot fail.
        let compressed = enc
            .write_all(json)
            .and_then(|()| enc.finish())
            .unwrap_or_default();
        signed_nonce.encrypt_value(&compressed)
    } else {
        signed_nonce.encrypt_value(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSECURITY: &str = "rmiKudqfR0nPsTBl/lkHjg==";
    const RANDOM: [u8; 8] = [0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18];
    const MS: u64 = 1_700_000_000_000;
    const PATH: &str = "/home/device_list";
    const DATA: &str = r#"{"getVirtualModel":false,"getHuamiDevices":0}"#;

    fn ss() -> Ssecurity {
        Ssecurity::from_base64(SSECURITY).unwrap()
    }

    fn signer() -> RequestSigner {
        RequestSigner::new(&ss(), Nonce::generate(RANDOM, MS))
    }

    fn rc4_fields() -> Vec<(String, String)> {
        signer()
            .sign_rc4(&ss(), Method::Post, PATH, &[("data", DATA)])
            .fields
    }

    fn set(fields: &mut [(String, String)], name: &str, value: String) {
        for (k, v) in fields.iter_mut() {
            if k == name {
                *v = value.clone();
            }
        }
    }

    #[test]
    fn nonce_layout() {
        let n = Nonce::generate(RANDOM, MS);
        assert_eq!(n.as_str(), "obLD1OX2BxgBsFUV");
        assert_eq!(n.minutes(), Some(28_333_333));
        assert_eq!(Nonce::parse(n.as_str()).unwrap(), n);
        assert!(Nonce::parse("").is_err());
        assert!(Nonce::parse("!!").is_err());
        assert_eq!(Nonce::parse("AAAA").unwrap().minutes(), None);
    }

    #[test]
    fn signed_nonce_is_redacted() {
        let s = signer();
        let dbg = format!("{:?}", s);
        assert!(!dbg.contains(s.signed_nonce().reveal()), "{dbg}");
        assert!(!dbg.contains("EnnDOL"), "{dbg}");
    }

    #[test]
    fn rc4_round_trip_verifies() {
        let v = verify_rc4_request(&ss(), PATH, &rc4_fields()).unwrap();
        assert_eq!(v.params.get("data").map(String::as_str), Some(DATA));
        assert_eq!(v.data["getHuamiDevices"], 0);
        assert_eq!(v.nonce.as_str(), "obLD1OX2BxgBsFUV");
    }

    #[test]
    fn rc4_tampered_signature_rejected() {
        let mut f = rc4_fields();
        set(&mut f, "signature", "aNmFyIKNv4kmTUftJvM86m4hE8B=".into());
        assert_eq!(
            verify_rc4_request(&ss(), PATH, &f).unwrap_err(),
            SignError::BadSignature
        );
    }

    #[test]
    fn rc4_tampered_data_rejected() {
        let mut f = rc4_fields();
        let s = signer();
        set(
            &mut f,
            "data",
            s.signed_nonce()
                .encrypt_value(br#"{"getVirtualModel":true}"#),
        );
        assert_eq!(
            verify_rc4_request(&ss(), PATH, &f).unwrap_err(),
            SignError::BadSignature
        );
    }

    #[test]
    fn rc4_hash_checked_even_with_valid_outer_signature() {
        // An attacker who knows the key could re-sign; rc4_hash__ still binds
        // the plain data.
        let s = signer();
        let mut enc = BTreeMap::new();
        enc.insert(
            "data".to_owned(),
            s.signed_nonce().encrypt_value(br#"{"other":1}"#),
        );
        enc.insert(
            "rc4_hash__".to_owned(),
            s.signed_nonce()
                .encrypt_value(b"KQsdIdIFA2kIQ/gDP+RB4h+ek2w="),
        );
        let sig = sha1_signature(&sha1_string_to_sign(
            Method::Post,
            PATH,
            &enc,
            s.signed_nonce(),
        ));
        let mut f: Vec<(String, String)> = enc.into_iter().collect();
        f.push(("signature".into(), sig));
        f.push(("_nonce".into(), s.nonce().as_str().into()));
        assert_eq!(
            verify_rc4_request(&ss(), PATH, &f).unwrap_err(),
            SignError::Rc4HashMismatch
        );
    }

    #[test]
    fn rc4_wrong_ssecurity_or_path_rejected() {
        let other = Ssecurity::from_base64("AAAAAAAAAAAAAAAAAAAAAA==").unwrap();
        assert_eq!(
            verify_rc4_request(&other, PATH, &rc4_fields()).unwrap_err(),
            SignError::BadSignature
        );
        assert_eq!(
            verify_rc4_request(&ss(), "/home/other", &rc4_fields()).unwrap_err(),
            SignError::BadSignature
        );
        assert_eq!(
            verify_rc4_request_method(&ss(), Method::Get, PATH, &rc4_fields()).unwrap_err(),
            SignError::BadSignature
        );
    }

    #[test]
    fn rc4_missing_and_duplicate_fields() {
        let f = rc4_fields();
        for drop in ["_nonce", "signature", "rc4_hash__"] {
            let g: Vec<_> = f.iter().filter(|(k, _)| k != drop).cloned().collect();
            assert_eq!(
                verify_rc4_request(&ss(), PATH, &g).unwrap_err(),
                SignError::MissingField { field: drop.into() }
            );
        }
        let mut g = f.clone();
        g.push(("data".into(), "x".into()));
        assert!(matches!(
            verify_rc4_request(&ss(), PATH, &g).unwrap_err(),
            SignError::DuplicateField { .. }
        ));
    }

    #[test]
    fn hmac_round_trip_and_tampering() {
        let s = signer();
        let form = s.sign_hmac(PATH, &[("data", DATA)]);
        let v = verify_hmac_request(&ss(), PATH, &form.fields).unwrap();
        assert_eq!(v.data["getVirtualModel"], false);

        let mut f = form.fields.clone();
        set(&mut f, "data", r#"{"getVirtualModel":true}"#.into());
        assert_eq!(
            verify_hmac_request(&ss(), PATH, &f).unwrap_err(),
            SignError::BadSignature
        );
        let mut f = form.fields.clone();
        set(&mut f, "signature", "not base64!".into());
        assert_eq!(
            verify_hmac_request(&ss(), PATH, &f).unwrap_err(),
            SignError::BadSignature
        );
        let other = Ssecurity::from_base64("AAAAAAAAAAAAAAAAAAAAAA==").unwrap();
        assert_eq!(
            verify_hmac_request(&other, PATH, &form.fields).unwrap_err(),
            SignError::BadSignature
        );
    }

    #[test]
    fn data_must_be_json() {
        let s = signer();
        let form = s.sign_hmac(PATH, &[("data", "not json")]);
        assert!(matches!(
            verify_hmac_request(&ss(), PATH, &form.fields).unwrap_err(),
            SignError::DataNotJson { .. }
        ));
    }

    #[test]
    fn response_round_trip_plain_and_gzip() {
        let n = Nonce::generate(RANDOM, MS);
        let json = br#"{"code":0,"message":"ok","result":[1,2,3]}"#;
        for gzip in [false, true] {
            let body = encrypt_response(&ss(), &n, json, gzip);
            let raw = SignedNonce::derive(&ss(), &n).rc4(&STANDARD.decode(&body).unwrap());
            assert_eq!(raw.starts_with(&[0x1f, 0x8b]), gzip);
        }
    }
}
