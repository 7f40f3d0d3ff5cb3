//! [`CloudError`]: everything that can go wrong talking to the Xiaomi cloud.
//!
//! Messages say what went wrong and what to run next. They never contain a
//! secret: URLs are shown without their query (login URLs carry tickets),
//! and server descriptions are passed through as the server sent them.
//! The exit code of each variant is decided in [`crate::error`], nowhere
//! else.

use std::path::PathBuf;

use mijia_proto::cloud::{CloudProtoError, SessionInvalidReason};

use crate::home::HomeError;

/// The hint every "log in again" message ends with.
pub const LOGIN_HINT: &str = "run `mijia cloud login` (or `mijia cloud login --qr`)";

/// Why a cloud operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// An endpoint override (environment or `cloud.toml`) is unusable.
    #[error("invalid cloud endpoint {what} {value:?}: {reason}")]
    Endpoint {
        /// Which setting (`MIJIA_CLOUD_ACCOUNT_URL`, `api_url` in cloud.toml, …).
        what: String,
        /// The value given (never a secret).
        value: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// `cloud.toml` or the session file cannot be parsed.
    #[error(
        "{} is not a valid mijia cloud file: {detail}; fix it, or remove it and {LOGIN_HINT}",
        path.display()
    )]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (never its contents).
        detail: String,
    },
    /// No session is stored.
    #[error("not logged in to the Xiaomi cloud; {LOGIN_HINT}")]
    NotLoggedIn,
    /// The session expired and could not be refreshed from the passToken.
    #[error("re-login needed: the cloud session is no longer valid ({why}); {LOGIN_HINT}")]
    ReloginNeeded {
        /// What happened, e.g. "the service token expired and the passToken was refused".
        why: String,
    },
    /// The cloud kept rejecting the request signature after a fresh login.
    #[error(
        "the cloud rejects the request signature even after a fresh session ({endpoint}); \
         mijia did not retry further. Check that the API URL and region are right \
         (`mijia cloud status`), then {LOGIN_HINT}; if it persists, report a bug"
    )]
    BadSignature {
        /// The endpoint path.
        endpoint: String,
    },
    /// Wrong user or password, or risk control refusing a right one.
    #[error(
        "login refused: wrong user or password, or Xiaomi's risk control (code {code}{}); \
         check the credentials, or use `mijia cloud login --qr`",
        desc_suffix(desc)
    )]
    BadCredentials {
        /// The account server's code.
        code: i64,
        /// The account server's description.
        desc: String,
    },
    /// The account server refused the login for another reason.
    #[error("login refused by the account server (code {code}{}); retry later or use `mijia cloud login --qr`", desc_suffix(desc))]
    LoginRejected {
        /// The account server's code.
        code: i64,
        /// The account server's description.
        desc: String,
    },
    /// A captcha must be typed but no terminal is available.
    #[error(
        "captcha required: the image is saved at {}; run `mijia cloud login` in a terminal \
         to type it (or pass --captcha-code), or use `mijia cloud login --qr`",
        image.display()
    )]
    CaptchaRequired {
        /// Where the captcha image was saved.
        image: PathBuf,
    },
    /// Every captcha answer was refused.
    #[error("the captcha answer was refused {attempts} times; run `mijia cloud login` again, or use `mijia cloud login --qr`")]
    CaptchaFailed {
        /// How many answers were tried.
        attempts: u32,
    },
    /// Two-factor verification needs a code but no terminal is available.
    #[error(
        "two-factor verification required: a code was sent by {method}; run `mijia cloud login` \
         in a terminal to type it (or pass --verify-code), or use `mijia cloud login --qr`"
    )]
    VerificationRequired {
        /// "SMS" or "e-mail".
        method: &'static str,
    },
    /// Every verification code was refused, or the account locked the flow.
    #[error("two-factor verification failed ({detail}); wait a few minutes, then run `mijia cloud login` again or use `mijia cloud login --qr`")]
    VerificationFailed {
        /// What happened.
        detail: String,
    },
    /// The QR code was not confirmed in time.
    #[error("the QR login was not confirmed within {secs} s; run `mijia cloud login --qr` again and scan the code with the Mi Home app")]
    QrExpired {
        /// The QR code's lifetime.
        secs: u64,
    },
    /// An interactive answer is needed but stdin/stderr are not terminals.
    #[error("{what} is needed but this is not an interactive terminal; {hint}")]
    NotInteractive {
        /// What would have been asked.
        what: &'static str,
        /// What to run instead.
        hint: &'static str,
    },
    /// The HTTP request could not be sent or got no reply.
    #[error("cannot reach the Xiaomi cloud at {url}: {detail}; check the network, DNS (ad blockers often block *.io.mi.com) and the endpoint settings, then retry")]
    Network {
        /// Scheme, host and path (no query).
        url: String,
        /// The error.
        detail: String,
    },
    /// No reply within the timeout.
    #[error("the Xiaomi cloud did not answer {url} in time; check the network and retry")]
    Timeout {
        /// Scheme, host and path (no query).
        url: String,
    },
    /// The cloud kept refusing requests as too frequent (HTTP 429 or code -106).
    #[error("the Xiaomi cloud is rate limiting requests to {url} (refused {attempts} times in a row, with back-off); wait a few minutes and retry")]
    RateLimited {
        /// Scheme, host and path (no query).
        url: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The cloud kept answering 5xx.
    #[error("the Xiaomi cloud answered HTTP {status} to {url} {attempts} times in a row (rate limited or unavailable); wait a few minutes and retry")]
    Unavailable {
        /// The last HTTP status.
        status: u16,
        /// Scheme, host and path (no query).
        url: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// An unexpected HTTP status.
    #[error("the Xiaomi cloud answered HTTP {status} to {url}; {hint}")]
    Http {
        /// The status.
        status: u16,
        /// Scheme, host and path (no query).
        url: String,
        /// What to do.
        hint: &'static str,
    },
    /// A reply could not be decoded.
    #[error(transparent)]
    Proto(#[from] CloudProtoError),
    /// The API answered a MIoT call with an error code.
    #[error(
        "the cloud refused {what} for device {did}: code {code} ({meaning}){}",
        desc_suffix(message)
    )]
    Api {
        /// The device.
        did: String,
        /// What was asked ("get_properties", "action", …).
        what: String,
        /// The cloud's code.
        code: i64,
        /// What it means.
        meaning: &'static str,
        /// The cloud's message.
        message: String,
    },
    /// The device is offline according to the cloud.
    #[error("device {did} is offline according to the Xiaomi cloud (code {code}); check its power and Wi-Fi, then retry")]
    DeviceOffline {
        /// The device.
        did: String,
        /// The cloud's code.
        code: i64,
    },
    /// The device did not answer the cloud in time.
    #[error("device {did} did not answer the Xiaomi cloud in time (code {code}); retry, or check the device")]
    DeviceTimeout {
        /// The device.
        did: String,
        /// The cloud's code.
        code: i64,
    },
    /// The account has no such device in the region used.
    #[error("the Xiaomi cloud does not know device {did} in region {region} (code {code}); check the did with `mijia cloud devices --all-regions`")]
    UnknownDevice {
        /// The device.
        did: String,
        /// The region searched.
        region: String,
        /// The cloud's code.
        code: i64,
    },
    /// The cloud route needs a did that is not known.
    #[error("the cloud route needs the device id: pass --did DID, or import the device with `mijia cloud import`")]
    NoDid,
    /// Reading a password, code or file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A home-layer (file, lock, registry) problem.
    #[error(transparent)]
    Home(#[from] HomeError),
}

fn desc_suffix(desc: &str) -> String {
    if desc.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", desc.trim())
    }
}

impl CloudError {
    /// A session-invalid signal turned into the user-facing error after a
    /// refresh was attempted (or was impossible).
    pub fn relogin(why: impl Into<String>) -> Self {
        CloudError::ReloginNeeded { why: why.into() }
    }

    /// The session-invalid reason carried by a protocol error, if any.
    pub fn session_invalid(&self) -> Option<SessionInvalidReason> {
        match self {
            CloudError::Proto(CloudProtoError::SessionInvalid { reason, .. }) => Some(*reason),
            _ => None,
        }
    }

    /// True when nothing answered: the cloud reports the device offline or
    /// timed out, or the cloud itself could not be reached (network,
    /// timeout, 5xx, rate limiting). The same class as a LAN device that
    /// does not answer.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            CloudError::DeviceOffline { .. }
                | CloudError::DeviceTimeout { .. }
                | CloudError::Network { .. }
                | CloudError::Timeout { .. }
                | CloudError::Unavailable { .. }
                | CloudError::RateLimited { .. }
        )
    }

    /// True when the user must log in (again) before retrying.
    pub fn needs_login(&self) -> bool {
        matches!(
            self,
            CloudError::NotLoggedIn
                | CloudError::ReloginNeeded { .. }
                | CloudError::BadCredentials { .. }
                | CloudError::LoginRejected { .. }
                | CloudError::CaptchaRequired { .. }
                | CloudError::CaptchaFailed { .. }
                | CloudError::VerificationRequired { .. }
                | CloudError::VerificationFailed { .. }
                | CloudError::QrExpired { .. }
                | CloudError::NotInteractive { .. }
        ) || self.session_invalid().is_some()
    }
}

/// The URL without query or fragment, for messages and logs.
pub fn display_url(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_enough_and_no_query_in_urls() {
        // Keeps `crate::Error` small (clippy's result_large_err bound is 128).
        assert!(std::mem::size_of::<CloudError>() <= 112);
        let u = url::Url::parse("http://user:pw@127.0.0.1:9/sts?_ssign=secret#x")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(display_url(&u), "http://127.0.0.1:9/sts");
    }
}
