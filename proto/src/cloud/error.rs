//! Errors of the cloud layer.
//!
//! [`SignError`] covers building and verifying signed requests (both the
//! client and the fake server side). [`CloudProtoError`] covers everything
//! that comes back from Xiaomi: API envelopes, encrypted bodies and account
//! login replies. Both are structured so callers can branch on the kind; every
//! message says what went wrong and what to do about it.

use std::fmt;

/// Why a request could not be signed, or why a signed request did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The `ssecurity` string is not valid base64 or is empty.
    #[error(
        "the stored ssecurity is not valid base64 ({reason}); log in again to get a fresh one"
    )]
    InvalidSsecurity {
        /// What is wrong with it.
        reason: String,
    },
    /// The `_nonce` value is not valid base64 or is empty.
    #[error("the request nonce {nonce:?} is not valid base64 ({reason}); generate a new nonce")]
    InvalidNonce {
        /// The nonce as received.
        nonce: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The RC4 key is empty or longer than 256 bytes.
    #[error("an RC4 key must be 1 to 256 bytes long, got {len}; derive it from a signed nonce")]
    Rc4KeyLength {
        /// The length given.
        len: usize,
    },
    /// A required form field is absent.
    #[error("the signed request has no {field:?} field; the client must send it")]
    MissingField {
        /// The field name.
        field: String,
    },
    /// A form field appears more than once, so it is ambiguous what was signed.
    #[error("the form field {field:?} appears more than once; send each field once")]
    DuplicateField {
        /// The field name.
        field: String,
    },
    /// A field that must be base64 (an RC4-encrypted value) is not.
    #[error("the form field {field:?} is not valid base64; it must hold an RC4-encrypted value")]
    FieldNotBase64 {
        /// The field name.
        field: String,
    },
    /// A decrypted field is not UTF-8 text: wrong key or corrupted value.
    #[error(
        "the form field {field:?} does not decrypt to UTF-8 text; the key (ssecurity and nonce) \
         does not match the one the client used"
    )]
    FieldNotUtf8 {
        /// The field name.
        field: String,
    },
    /// The `signature` field does not match.
    #[error(
        "the request signature does not match; the ssecurity, nonce, path or parameters differ \
         from what the client signed"
    )]
    BadSignature,
    /// The decrypted `rc4_hash__` does not match the decrypted parameters.
    #[error(
        "the decrypted rc4_hash__ does not match the decrypted parameters; the request was \
         altered or signed with another key"
    )]
    Rc4HashMismatch,
    /// The `data` field is not JSON.
    #[error(
        "the request's data field is not JSON ({reason}); send the parameters as a JSON object"
    )]
    DataNotJson {
        /// The parser's message.
        reason: String,
    },
    /// A URL could not be understood.
    #[error("cannot use URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request URL is not under the API base, so it has no signed path.
    #[error(
        "the request URL {url:?} is not under the API base {base:?}; build request URLs from \
         the configured API base"
    )]
    OutsideApiBase {
        /// The request URL or path.
        url: String,
        /// The API base.
        base: String,
    },
    /// A form body could not be decoded.
    #[error("the form body is not valid application/x-www-form-urlencoded: {reason}")]
    BadForm {
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a session stopped being accepted by the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionInvalidReason {
    /// `code` 2 or 3 (`auth err`), or HTTP 401.
    AuthError,
    /// `SERVICETOKEN_EXPIRED` (also seen with `code` 0, or HTTP 426).
    TokenExpired,
    /// `invalid signature`: an expired session or a signing bug. Re-login
    /// once; if it persists, report it.
    InvalidSignature,
}

impl fmt::Display for SessionInvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionInvalidReason::AuthError => "authentication error",
            SessionInvalidReason::TokenExpired => "service token expired",
            SessionInvalidReason::InvalidSignature => "invalid signature",
        })
    }
}

/// Why a reply from the Xiaomi cloud or account host could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudProtoError {
    /// The cloud no longer accepts this session. Refresh the service token
    /// (passToken login) or log in again; do not retry blindly.
    #[error(
        "the cloud session is no longer valid ({reason}: code {code}, {message:?}); refresh the \
         service token with the stored passToken or log in again, then retry once"
    )]
    SessionInvalid {
        /// Which signal was seen.
        reason: SessionInvalidReason,
        /// The envelope `code` (0 when only the message or HTTP status said so).
        code: i64,
        /// The envelope `message`, or the body text.
        message: String,
    },
    /// The API answered with a non-zero `code`.
    #[error("the cloud API returned error code {code} ({message:?}); check the request parameters and the device")]
    Api {
        /// The envelope `code`.
        code: i64,
        /// The envelope `message`.
        message: String,
    },
    /// The body is neither plain JSON nor base64.
    #[error("the cloud reply is neither JSON nor base64 ({preview:?}); the endpoint or region may be wrong")]
    NotBase64 {
        /// The first characters of the body.
        preview: String,
    },
    /// The decrypted body is not UTF-8.
    #[error(
        "the decrypted cloud reply is not UTF-8 text; it was probably encrypted with another \
         nonce or ssecurity — log in again if this persists"
    )]
    NotUtf8,
    /// The body (plain or decrypted) is not JSON.
    #[error("the cloud reply is not valid JSON ({reason}); the endpoint may have changed")]
    NotJson {
        /// The parser's message.
        reason: String,
    },
    /// The gzip stream inside the reply is corrupt.
    #[error("the cloud reply's gzip stream is corrupt ({reason}); retry without GZIP")]
    Gzip {
        /// The decoder's message.
        reason: String,
    },
    /// The decompressed reply is larger than the configured bound.
    #[error(
        "the cloud reply decompresses to more than {limit} bytes; refusing it (request fewer \
         items per call)"
    )]
    TooLarge {
        /// The bound in bytes.
        limit: usize,
    },
    /// The envelope has no `code` or no `result`, or the result has an
    /// unexpected shape.
    #[error("the cloud reply has an unexpected shape: {detail}; the API may have changed")]
    Shape {
        /// What was expected.
        detail: String,
    },
    /// An account (login) reply could not be understood.
    #[error(
        "the account server's reply could not be understood: {detail}; try QR login or retry later"
    )]
    AccountReply {
        /// What was expected.
        detail: String,
    },
    /// Signing or verification failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

impl CloudProtoError {
    /// True when the error means the session must be refreshed or renewed.
    pub fn is_session_invalid(&self) -> bool {
        matches!(self, CloudProtoError::SessionInvalid { .. })
    }
}
