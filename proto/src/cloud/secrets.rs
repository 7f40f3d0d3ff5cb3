//! Secret values of a Xiaomi account session.
//!
//! Each secret is a newtype whose `Debug` and `Display` print `<redacted>`,
//! so it cannot leak into logs, error messages or `{:?}` output by accident.
//! The value is reachable only through an explicitly named accessor
//! (`reveal`), for the few places that must send or store it. With serde they
//! are plain strings, so a stored session file stays readable; whoever writes
//! that file must create it with mode 0600.
//!
//! This module does not store, encrypt or zero memory; it only keeps secrets
//! out of formatted output.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::SignError;

const REDACTED: &str = "<redacted>";

macro_rules! string_secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret string.
            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }

            /// The secret itself, for sending it where it belongs or storing it.
            pub fn reveal(&self) -> &str {
                &self.0
            }

            /// True when no value is held.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), REDACTED)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(REDACTED)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                $name(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name(value.to_owned())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map($name)
            }
        }
    };
}

string_secret!(
    /// The `serviceToken` cookie that authenticates API calls.
    ServiceToken
);
string_secret!(
    /// The long-lived `passToken` (`V1:…`) that refreshes a service token
    /// without the password.
    PassToken
);
string_secret!(
    /// An account password, held only for the duration of a login.
    Password
);
string_secret!(
    /// The `psecurity` value returned with a successful login.
    Psecurity
);

/// The account's `ssecurity`: the root secret for request signing, base64 of
/// (normally) 16 bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ssecurity {
    text: String,
    bytes: Vec<u8>,
}

impl Ssecurity {
    /// Parses the base64 form sent by the account server.
    pub fn from_base64(text: &str) -> Result<Self, SignError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SignError::InvalidSsecurity {
                reason: "it is empty".to_owned(),
            });
        }
        let bytes = STANDARD
            .decode(text)
            .map_err(|e| SignError::InvalidSsecurity {
                reason: e.to_string(),
            })?;
        if bytes.is_empty() {
            return Err(SignError::InvalidSsecurity {
                reason: "it decodes to no bytes".to_owned(),
            });
        }
        Ok(Ssecurity {
            text: text.to_owned(),
            bytes,
        })
    }

    /// The base64 text, for the `ssecurity` form field and for storage.
    pub fn reveal(&self) -> &str {
        &self.text
    }

    /// The decoded bytes, the input of the signed-nonce hash.
    pub fn reveal_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl FromStr for Ssecurity {
    type Err = SignError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ssecurity::from_base64(s)
    }
}

impl fmt::Debug for Ssecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ssecurity({REDACTED})")
    }
}

impl fmt::Display for Ssecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Ssecurity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Ssecurity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ssecurity::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSECURITY: &str = "rmiKudqfR0nPsTBl/lkHjg==";

    fn assert_redacted(debug: String, display: String, secret: &str) {
        assert!(!debug.contains(secret), "Debug leaked: {debug}");
        assert!(!display.contains(secret), "Display leaked: {display}");
        assert!(debug.contains(REDACTED));
        assert_eq!(display, REDACTED);
    }

    #[test]
    fn every_secret_type_redacts() {
        let s = Ssecurity::from_base64(SSECURITY).expect("valid");
        assert_redacted(format!("{s:?}"), format!("{s}"), SSECURITY);
        assert_redacted(format!("{:#?}", s), format!("{s}"), "rmiKud");

        let secret = "V1:supersecretvalue123";
        let t = ServiceToken::new(secret);
        assert_redacted(format!("{t:?}"), format!("{t}"), secret);
        let t = PassToken::new(secret);
        assert_redacted(format!("{t:?}"), format!("{t}"), secret);
        let t = Password::new(secret);
        assert_redacted(format!("{t:?}"), format!("{t}"), secret);
        let t = Psecurity::new(secret);
        assert_redacted(format!("{t:?}"), format!("{t}"), secret);
    }

    #[test]
    fn redaction_holds_inside_containers() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Session {
            ssecurity: Ssecurity,
            token: ServiceToken,
        }
        let s = Session {
            ssecurity: Ssecurity::from_base64(SSECURITY).expect("valid"),
            token: ServiceToken::new("tok-abcdef"),
        };
        let out = format!("{s:?}");
        assert!(
            !out.contains(SSECURITY) && !out.contains("tok-abcdef"),
            "{out}"
        );
    }

    #[test]
    fn ssecurity_parses_and_reveals() {
        let s = Ssecurity::from_base64(SSECURITY).expect("valid");
        assert_eq!(s.reveal(), SSECURITY);
        assert_eq!(
            hex::encode(s.reveal_bytes()),
            "ae688ab9da9f4749cfb13065fe59078e"
        );
        assert_eq!(SSECURITY.parse::<Ssecurity>().expect("valid"), s);
    }

    #[test]
    fn ssecurity_rejects_bad_base64_clearly() {
        for bad in ["", "   ", "not base64!", "abc"] {
            let err = Ssecurity::from_base64(bad).expect_err(bad);
            assert!(matches!(err, SignError::InvalidSsecurity { .. }), "{err:?}");
            assert!(err.to_string().contains("log in again"), "{err}");
        }
    }

    #[test]
    fn serde_is_plain_strings() {
        let s = Ssecurity::from_base64(SSECURITY).expect("valid");
        let json = serde_json::to_string(&s).expect("serialize");
        assert_eq!(json, format!("\"{SSECURITY}\""));
        let back: Ssecurity = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, s);
        assert!(serde_json::from_str::<Ssecurity>("\"%%%\"").is_err());

        let t = PassToken::new("V1:abc");
        let json = serde_json::to_string(&t).expect("serialize");
        assert_eq!(json, "\"V1:abc\"");
        let back: PassToken = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back.reveal(), "V1:abc");
    }
}
