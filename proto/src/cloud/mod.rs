//! The Xiaomi cloud's legacy app API (`https://{region.}api.io.mi.com/app`),
//! without IO: secrets, request signing, reply decryption and account-login
//! reply parsing.
//!
//! Files, bottom up:
//!
//! - [`secrets`]: `Ssecurity`, `ServiceToken`, `PassToken`, `Password`,
//!   `Psecurity` — redacted in `Debug` and `Display`.
//! - [`rc4`]: RC4 with a keystream drop (the API discards 1024 bytes).
//! - [`form`]: byte-exact `application/x-www-form-urlencoded`.
//! - [`region`]: regions, API base templates, signed paths.
//! - [`signing`]: nonce, signed nonce, HMAC and RC4 request signing, and the
//!   server-side verification a fake cloud needs.
//! - [`envelope`]: plain-JSON errors, RC4 (+gzip) replies, the
//!   `{code, message, result}` envelope, "session no longer valid" signals.
//! - [`login`]: password hash, `clientSign`, and typed steps for password,
//!   captcha, two-factor and QR login replies.
//! - [`ha`]: derived values and TLV frames of the official OAuth flavour,
//!   for the simulated cloud only.
//!
//! Nothing here opens a connection, keeps cookies, reads the clock or draws
//! random numbers: the nonce's random bytes and time are arguments. Every
//! parser returns a typed error ([`SignError`], [`CloudProtoError`]) rather
//! than panicking on what a server or a file sends.

pub mod envelope;
pub mod error;
pub mod form;
pub mod ha;
pub mod login;
pub mod rc4;
pub mod region;
pub mod secrets;
pub mod signing;

pub use envelope::{decode_response, open_envelope, open_response, typed_result};
pub use error::{CloudProtoError, SessionInvalidReason, SignError};
pub use login::{
    client_sign, password_hash, IdentityMethod, IdentityOptions, LoginStep, LoginSuccess, QrStart,
    VerifyOutcome,
};
pub use region::{ApiBase, ApiBaseTemplate, ParseRegionError, Region};
pub use secrets::{PassToken, Password, Psecurity, ServiceToken, Ssecurity};
pub use signing::{
    encrypt_response, verify_hmac_request, verify_rc4_request, Method, Nonce, RequestSigner,
    SignedForm, SignedNonce, VerifiedRequest,
};
