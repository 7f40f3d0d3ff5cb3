//! Small derived values of the official OAuth2/MQTT flavour, for emulating
//! it in the simulated cloud: the OAuth `state`, the central-hub `group_id`,
//! the client certificate common name, and the central hub's TLV frames.
//!
//! mijia does not ship a client for that flavour (its licence restricts use);
//! these are one-line recipes and a framing format, implemented from their
//! descriptions and checked against the known-answer vectors.

use sha1::{Digest as _, Sha1};

use super::error::CloudProtoError;

fn sha1_hex(s: &str) -> String {
    hex::encode(Sha1::digest(s.as_bytes()))
}

/// OAuth `state` for a device id `ha.<uuid>`: `sha1_hex("d=" + device_id)`.
pub fn oauth_state(device_id: &str) -> String {
    sha1_hex(&format!("d={device_id}"))
}

/// Central-hub group id: the first 16 hex digits of
/// `sha1_hex(uid + "central_service" + home_id)`.
pub fn group_id(uid: &str, home_id: &str) -> String {
    sha1_hex(&format!("{uid}central_service{home_id}"))
        .chars()
        .take(16)
        .collect()
}

/// Client certificate common name: `mips.<uid>.<sha1_hex(virtual_did)>.2`.
pub fn cert_common_name(uid: &str, virtual_did: &str) -> String {
    format!("mips.{uid}.{}.2", sha1_hex(virtual_did))
}

/// One message of the central hub's local MQTT protocol.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MipsFrame {
    /// Message id (TLV type 0, u32 little-endian).
    pub mid: u32,
    /// Sender (type 3).
    pub from: Option<String>,
    /// Reply topic (type 1).
    pub ret_topic: Option<String>,
    /// JSON payload (type 2).
    pub payload: Option<String>,
}

const TYPE_ID: u8 = 0;
const TYPE_RET_TOPIC: u8 = 1;
const TYPE_PAYLOAD: u8 = 2;
const TYPE_FROM: u8 = 3;

fn push_tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(value);
}

fn push_str(out: &mut Vec<u8>, kind: u8, value: &Option<String>) {
    if let Some(v) = value {
        let mut bytes = v.as_bytes().to_vec();
        bytes.push(0);
        push_tlv(out, kind, &bytes);
    }
}

fn frame_error(detail: &str) -> CloudProtoError {
    CloudProtoError::Shape {
        detail: format!("bad central-hub frame: {detail}"),
    }
}

impl MipsFrame {
    /// Encodes as TLVs (u32 LE length, u8 type, value), in the order id,
    /// from, ret_topic, payload; strings NUL-terminated, the NUL counted.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        push_tlv(&mut out, TYPE_ID, &self.mid.to_le_bytes());
        push_str(&mut out, TYPE_FROM, &self.from);
        push_str(&mut out, TYPE_RET_TOPIC, &self.ret_topic);
        push_str(&mut out, TYPE_PAYLOAD, &self.payload);
        out
    }

    /// Decodes TLVs in any order. Unknown types are skipped; a length
    /// running past the end, a malformed id or non-UTF-8 text is an error.
    pub fn decode(mut data: &[u8]) -> Result<Self, CloudProtoError> {
        let mut frame = MipsFrame::default();
        let mut have_id = false;
        while !data.is_empty() {
            let (header, rest) = data
                .split_at_checked(5)
                .ok_or_else(|| frame_error("truncated TLV header"))?;
            let [l0, l1, l2, l3, kind] = *header else {
                return Err(frame_error("truncated TLV header"));
            };
            let len = usize::try_from(u32::from_le_bytes([l0, l1, l2, l3]))
                .map_err(|_| frame_error("length too large"))?;
            let (value, rest) = rest
                .split_at_checked(len)
                .ok_or_else(|| frame_error("a TLV value runs past the end"))?;
            data = rest;
            let text = || -> Result<String, CloudProtoError> {
                let v = value.strip_suffix(&[0]).unwrap_or(value);
                String::from_utf8(v.to_vec()).map_err(|_| frame_error("text is not UTF-8"))
            };
            match kind {
                TYPE_ID => {
                    let bytes: [u8; 4] = value
                        .try_into()
                        .map_err(|_| frame_error("the id is not 4 bytes"))?;
                    frame.mid = u32::from_le_bytes(bytes);
                    have_id = true;
                }
                TYPE_RET_TOPIC => frame.ret_topic = Some(text()?),
                TYPE_PAYLOAD => frame.payload = Some(text()?),
                TYPE_FROM => frame.from = Some(text()?),
                _ => {}
            }
        }
        if !have_id {
            return Err(frame_error("no message id"));
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes() {
        assert_eq!(
            oauth_state("ha.0123456789abcdef0123456789abcdef"),
            "66b831e309c9ae6960a513bcbfe7be67718cb221"
        );
        assert_eq!(group_id("1111111111", "222222222222"), "f7e08b6e621f1c79");
        assert_eq!(
            cert_common_name("1111111111", "12345678901234567890"),
            "mips.1111111111.7e0a1242bd8ef9044f27dca45f5f72ad5a1125bf.2"
        );
    }

    #[test]
    fn frame_round_trip_and_errors() {
        let f = MipsFrame {
            mid: 7,
            from: Some("me".into()),
            ret_topic: Some("t/reply".into()),
            payload: Some("{}".into()),
        };
        let bytes = f.encode();
        assert_eq!(MipsFrame::decode(&bytes).unwrap(), f);
        // Cutting at a TLV boundary leaves a shorter valid frame; anywhere
        // else is an error.
        let boundaries = [9, 9 + 5 + 3, 9 + 5 + 3 + 5 + 8];
        for cut in 1..bytes.len() {
            let r = MipsFrame::decode(&bytes[..cut]);
            assert_eq!(r.is_ok(), boundaries.contains(&cut), "cut {cut}: {r:?}");
        }
        assert!(MipsFrame::decode(&[]).is_err());
        assert!(MipsFrame::decode(&[2, 0, 0, 0, 0, 1, 2]).is_err());
        assert!(MipsFrame::decode(&[0xff, 0xff, 0xff, 0xff, 2, 0]).is_err());
    }
}
