//! Payload JSON decoding with the quirk fixes real firmware needs.
//!
//! Decoding is strict first. Only when that fails are the known firmware
//! quirks repaired, in one pass outside string literals:
//!
//! | quirk | example | repair |
//! |---|---|---|
//! | trailing NULs | `{…}\0` | stripped before parsing |
//! | data after an embedded NUL | `{…}\0garbage` | cut at the NUL |
//! | doubled comma | `,,"otu_stat"` | one comma |
//! | empty value | `"result":,` | `null` |
//! | leading-zero number | `"value":00` | `0` |

use serde_json::Value;

/// A payload that is not JSON even after the quirk fixes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload is not valid JSON ({detail}): {excerpt}")]
pub struct JsonError {
    /// The parser's complaint.
    pub detail: String,
    /// The start of the payload, lossily decoded, for diagnostics.
    pub excerpt: String,
}

/// Whether a quirk fix was needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// Strict JSON.
    None,
    /// A quirk fix was applied.
    Fixed,
}

/// Strip trailing NULs, parse, and on failure repair quirks and retry.
pub fn parse(payload: &[u8]) -> Result<(Value, Repair), JsonError> {
    let mut end = payload.len();
    while end > 0 && payload[end - 1] == 0 {
        end -= 1;
    }
    let trimmed = &payload[..end];
    let first_err = match serde_json::from_slice::<Value>(trimmed) {
        Ok(v) => return Ok((v, Repair::None)),
        Err(e) => e,
    };
    // Data after an embedded NUL: keep what stands before the first NUL.
    let cut = trimmed
        .iter()
        .position(|b| *b == 0)
        .map_or(trimmed, |i| &trimmed[..i]);
    let fixed = repair(cut);
    serde_json::from_slice::<Value>(&fixed)
        .map(|v| (v, Repair::Fixed))
        .map_err(|_| JsonError {
            detail: first_err.to_string(),
            excerpt: String::from_utf8_lossy(&trimmed[..trimmed.len().min(120)]).into_owned(),
        })
}

/// Repair doubled commas, empty values and leading-zero numbers outside
/// string literals.
fn repair(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() + 8);
    let mut in_str = false;
    let mut escaped = false;
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        if in_str {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_str = true;
                out.push(b);
            }
            b',' | b'}' | b']' if last_significant(&out) == Some(b':') => {
                out.extend_from_slice(b"null");
                out.push(b);
            }
            b',' => {
                // Collapse runs of commas (with whitespace between).
                if last_significant(&out) != Some(b',') {
                    out.push(b);
                }
            }
            b'0'..=b'9' if starts_number(&out) => {
                // Start of a number: drop redundant leading zeros.
                let mut j = i;
                while j + 1 < src.len() && src[j] == b'0' && src[j + 1].is_ascii_digit() {
                    j += 1;
                }
                out.push(src[j]);
                i = j + 1;
                continue;
            }
            _ => out.push(b),
        }
        if b == b'}' || b == b']' {
            // A comma right before a closing bracket came from a doubled
            // comma at the end; drop it.
            let len = out.len();
            if let Some(pos) = out[..len - 1]
                .iter()
                .rposition(|c| !c.is_ascii_whitespace())
            {
                if out[pos] == b',' {
                    out.remove(pos);
                }
            }
        }
        i += 1;
    }
    out
}

fn last_significant(out: &[u8]) -> Option<u8> {
    out.iter().rev().find(|c| !c.is_ascii_whitespace()).copied()
}

/// Whether a digit at this point begins a number (rather than continuing one).
fn starts_number(out: &[u8]) -> bool {
    match out.last() {
        Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+') => false,
        Some(b'-') => !matches!(out.len().checked_sub(2).map(|i| out[i]), Some(b'e' | b'E')),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &[u8]) -> Value {
        parse(s).unwrap().0
    }

    #[test]
    fn strict_first() {
        assert_eq!(
            parse(b"{\"a\":1}\0\0").unwrap(),
            (json!({"a":1}), Repair::None)
        );
    }

    #[test]
    fn quirks() {
        assert_eq!(p(b"{\"a\":1,,\"b\":2}"), json!({"a":1,"b":2}));
        assert_eq!(
            p(b"{\"id\":1,\"result\":,\"x\":2}"),
            json!({"id":1,"result":null,"x":2})
        );
        assert_eq!(p(b"{\"value\":00}"), json!({"value":0}));
        assert_eq!(p(b"{\"value\":007,\"v\":-01}"), json!({"value":7,"v":-1}));
        assert_eq!(p(b"{\"a\":[1,2]}\0garbage"), json!({"a":[1,2]}));
        assert_eq!(
            p(b"{\"a\":\"x,,00\",,\"b\":100}"),
            json!({"a":"x,,00","b":100})
        );
        assert_eq!(p(b"{\"a\":1.05,,}"), json!({"a":1.05}));
    }

    #[test]
    fn garbage_is_an_error() {
        let e = parse(b"\x01\x02not json").unwrap_err();
        assert!(e.to_string().contains("not valid JSON"));
    }
}
