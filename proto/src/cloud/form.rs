//! `application/x-www-form-urlencoded` encoding and decoding, byte-exact
//! with what the reference clients send (letters, digits and `-._~` stay,
//! space becomes `+`, everything else is `%XX` with uppercase hex).

use super::error::SignError;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes one key or value.
pub fn encode_component(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Encodes fields in the given order as `k1=v1&k2=v2`.
pub fn encode_form<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> String {
    let mut out = String::new();
    for (n, (k, v)) in fields.iter().enumerate() {
        if n > 0 {
            out.push('&');
        }
        out.push_str(&encode_component(k.as_ref()));
        out.push('=');
        out.push_str(&encode_component(v.as_ref()));
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one percent-encoded key or value (`+` is a space).
pub fn decode_component(s: &str) -> Result<String, SignError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => {
                        return Err(SignError::BadForm {
                            reason: format!("bad percent escape at byte {i}"),
                        })
                    }
                }
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| SignError::BadForm {
        reason: "a decoded value is not UTF-8".to_owned(),
    })
}

/// Decodes a form body into fields, in order. Empty segments are skipped; a
/// segment without `=` is a field with an empty value.
pub fn decode_form(body: &str) -> Result<Vec<(String, String)>, SignError> {
    body.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            Ok((decode_component(k)?, decode_component(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_reference_clients() {
        assert_eq!(
            encode_component("{\"a\":1, \"b\":[2]}"),
            "%7B%22a%22%3A1%2C+%22b%22%3A%5B2%5D%7D"
        );
        assert_eq!(encode_component("a+b/c=="), "a%2Bb%2Fc%3D%3D");
        assert_eq!(encode_component("Az09-._~"), "Az09-._~");
        assert_eq!(encode_component("é"), "%C3%A9");
    }

    #[test]
    fn round_trips() {
        let fields = vec![
            ("data".to_owned(), "{\"x\": \"é+/&=\"}".to_owned()),
            ("_nonce".to_owned(), "abc==".to_owned()),
        ];
        let body = encode_form(&fields);
        assert_eq!(decode_form(&body).unwrap(), fields);
    }

    #[test]
    fn rejects_bad_escapes() {
        assert!(decode_form("a=%zz").is_err());
        assert!(decode_form("a=%4").is_err());
        assert!(decode_form("a=%ff").is_err());
        assert_eq!(
            decode_form("a&&b=").unwrap(),
            vec![("a".into(), "".into()), ("b".into(), "".into())]
        );
    }
}
