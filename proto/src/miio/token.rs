//! The device token: 16 secret bytes, written as 32 hex characters.

use std::fmt;
use std::str::FromStr;

/// A miIO device token. `Debug` and `Display` never show it; call
/// [`Token::reveal`] when the user explicitly asked to see it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token([u8; 16]);

/// Why a string is not a valid token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Wrong number of characters.
    #[error("a token is 32 hex characters, got {0}")]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("a token is 32 hex characters; character {position} ({found:?}) is not a hex digit")]
    NotHex {
        /// 1-based position of the first bad character.
        position: usize,
        /// The character found there.
        found: char,
    },
}

impl Token {
    /// A token from raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Token(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The token as 32 lowercase hex characters. Only for output the user
    /// explicitly asked for (`--show-secrets`) and for storage.
    pub fn reveal(&self) -> String {
        hex::encode(self.0)
    }

    /// A short, non-secret fingerprint (first 4 hex chars of MD5 of the
    /// token) so users can tell tokens apart in redacted output.
    pub fn fingerprint(&self) -> String {
        let digest = crate::miio::crypto::md5(&self.0);
        hex::encode(&digest[..2])
    }
}

impl FromStr for Token {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let count = s.chars().count();
        if let Some((i, c)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
            if count == 32 {
                return Err(TokenError::NotHex {
                    position: i + 1,
                    found: c,
                });
            }
        }
        if count != 32 {
            return Err(TokenError::Length(count));
        }
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).map_err(|_| TokenError::Length(count))?;
        Ok(Token(out))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted token {}…>", self.fingerprint())
    }
}

impl serde::Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.reveal())
    }
}

impl<'de> serde::Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reveals() {
        let t: Token = "00112233445566778899AABBCCDDEEFF".parse().unwrap();
        assert_eq!(t.reveal(), "00112233445566778899aabbccddeeff");
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!("abc".parse::<Token>(), Err(TokenError::Length(3)));
        let e = "0011223344556677889zaabbccddeeff"
            .parse::<Token>()
            .unwrap_err();
        assert_eq!(
            e,
            TokenError::NotHex {
                position: 20,
                found: 'z'
            }
        );
        assert!(e.to_string().contains("character 20"));
    }

    #[test]
    fn debug_and_display_redact() {
        let t: Token = "00112233445566778899aabbccddeeff".parse().unwrap();
        for s in [format!("{t:?}"), format!("{t}")] {
            assert!(!s.contains("00112233"), "{s}");
            assert!(s.contains("redacted"));
        }
    }
}
