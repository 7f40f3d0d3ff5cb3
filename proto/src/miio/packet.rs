//! The miIO datagram: a 32-byte header followed by the encrypted payload.
//!
//! ```text
//! 0      2      4                 12     16                 32
//! | 2131 | len  | did (u64, BE)   | stamp| checksum (16)    | ciphertext …
//! ```
//!
//! `len` covers the whole datagram. The checksum is MD5 over the packet with
//! the token written into bytes 16..32. Hello packets and hello replies are
//! exactly 32 bytes and carry no checksum. Decoding checks magic, length and
//! checksum — in that order — before anything is decrypted.

use super::crypto::{md5, CryptoError, Keys};
use super::token::Token;

/// Packet magic.
pub const MAGIC: u16 = 0x2131;
/// Header length, and the whole length of hello packets.
pub const HEADER_LEN: usize = 32;
/// The did value meaning "unknown" (used by hello).
pub const HELLO_DID: u64 = u64::MAX;

/// Why a datagram was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer than 32 bytes.
    #[error("datagram of {0} bytes is shorter than the 32-byte header")]
    TooShort(usize),
    /// Not a miIO packet.
    #[error("bad magic 0x{0:04x} (expected 0x2131): not a miIO packet")]
    BadMagic(u16),
    /// The length field disagrees with the datagram.
    #[error("header length {declared} does not fit the {actual}-byte datagram (truncated?)")]
    BadLength {
        /// Length field value.
        declared: usize,
        /// Bytes received.
        actual: usize,
    },
    /// MD5 mismatch: wrong token, or a truncated/corrupted packet.
    #[error("checksum mismatch: wrong token, or a corrupted or truncated packet")]
    Checksum,
    /// A 32-byte packet where a payload was expected.
    #[error("packet has no payload")]
    Empty,
    /// A packet with payload where a hello reply was expected.
    #[error("expected a 32-byte hello reply, got {0} bytes")]
    NotHello(usize),
    /// Decryption failed after the checksum matched.
    #[error("decryption failed: {0}")]
    Crypto(#[from] CryptoError),
}

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Total packet length from the header.
    pub length: usize,
    /// Device id (bytes 4..12 as one u64; `u64::MAX` for hello).
    pub did: u64,
    /// Device stamp.
    pub stamp: u32,
    /// Bytes 16..32.
    pub checksum: [u8; 16],
}

impl Header {
    /// Parse and check magic and length. Bytes past `length` are ignored by
    /// callers; a `length` larger than the datagram is an error.
    pub fn parse(buf: &[u8]) -> Result<Header, PacketError> {
        let h: &[u8; HEADER_LEN] = buf
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(PacketError::TooShort(buf.len()))?;
        let magic = u16::from_be_bytes([h[0], h[1]]);
        if magic != MAGIC {
            return Err(PacketError::BadMagic(magic));
        }
        let length = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if length < HEADER_LEN || length > buf.len() {
            return Err(PacketError::BadLength {
                declared: length,
                actual: buf.len(),
            });
        }
        let mut did = [0u8; 8];
        did.copy_from_slice(&h[4..12]);
        let mut stamp = [0u8; 4];
        stamp.copy_from_slice(&h[12..16]);
        let mut checksum = [0u8; 16];
        checksum.copy_from_slice(&h[16..32]);
        Ok(Header {
            length,
            did: u64::from_be_bytes(did),
            stamp: u32::from_be_bytes(stamp),
            checksum,
        })
    }
}

fn write_header(out: &mut [u8], length: usize, did: u64, stamp: u32, tail: &[u8; 16]) {
    out[0..2].copy_from_slice(&MAGIC.to_be_bytes());
    // Callers guarantee length <= u16::MAX.
    out[2..4].copy_from_slice(&(length as u16).to_be_bytes());
    out[4..12].copy_from_slice(&did.to_be_bytes());
    out[12..16].copy_from_slice(&stamp.to_be_bytes());
    out[16..32].copy_from_slice(tail);
}

/// The largest plaintext that still fits one UDP datagram.
pub const MAX_PLAINTEXT: usize = 65_507 - HEADER_LEN - 16;

/// Why a packet could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload of {0} bytes is too large for one miIO datagram (max {MAX_PLAINTEXT})")]
pub struct TooLarge(pub usize);

/// Encrypt `plaintext` and build a complete packet.
pub fn encode(token: &Token, did: u64, stamp: u32, plaintext: &[u8]) -> Result<Vec<u8>, TooLarge> {
    encode_with_keys(token, &Keys::derive(token), did, stamp, plaintext)
}

/// [`encode`] with pre-derived keys (saves two MD5s on hot paths).
pub fn encode_with_keys(
    token: &Token,
    keys: &Keys,
    did: u64,
    stamp: u32,
    plaintext: &[u8],
) -> Result<Vec<u8>, TooLarge> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(TooLarge(plaintext.len()));
    }
    // Encrypt straight into the datagram buffer: header, then ciphertext.
    let ct_len = (plaintext.len() / 16 + 1) * 16;
    let length = HEADER_LEN + ct_len;
    let mut out = vec![0u8; length];
    out[HEADER_LEN..HEADER_LEN + plaintext.len()].copy_from_slice(plaintext);
    keys.encrypt_in_place(&mut out[HEADER_LEN..], plaintext.len());
    write_header(&mut out, length, did, stamp, token.as_bytes());
    let sum = md5(&out);
    out[16..32].copy_from_slice(&sum);
    Ok(out)
}

/// A decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The header.
    pub header: Header,
    /// Decrypted, unpadded payload (may end with NUL bytes; see [`super::json`]).
    pub payload: Vec<u8>,
}

/// Check the checksum of a packet with payload, without decrypting.
pub fn verify(token: &Token, buf: &[u8]) -> Result<Header, PacketError> {
    let header = Header::parse(buf)?;
    let pkt = &buf[..header.length];
    if header.length == HEADER_LEN {
        return Err(PacketError::Empty);
    }
    let expect = super::crypto::md5_parts(&[&pkt[..16], token.as_bytes(), &pkt[HEADER_LEN..]]);
    if !ct_eq(&expect, &header.checksum) {
        return Err(PacketError::Checksum);
    }
    Ok(header)
}

/// Verify and decrypt a packet.
pub fn decode(token: &Token, buf: &[u8]) -> Result<Decoded, PacketError> {
    decode_with_keys(token, &Keys::derive(token), buf)
}

/// [`decode`] with pre-derived keys.
pub fn decode_with_keys(token: &Token, keys: &Keys, buf: &[u8]) -> Result<Decoded, PacketError> {
    let header = verify(token, buf)?;
    let payload = keys.decrypt(&buf[HEADER_LEN..header.length])?;
    Ok(Decoded { header, payload })
}

fn ct_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The classic hello: `21 31 00 20` followed by 28 bytes of `ff`.
pub fn hello() -> [u8; HEADER_LEN] {
    let mut out = [0xffu8; HEADER_LEN];
    out[..4].copy_from_slice(&[0x21, 0x31, 0x00, 0x20]);
    out
}

/// Whether `buf` is a hello request: the classic form or the `MDID` probe.
pub fn is_hello_request(buf: &[u8]) -> bool {
    if buf.len() < HEADER_LEN || buf[..4] != [0x21, 0x31, 0x00, 0x20] {
        return false;
    }
    if buf[4..16].iter().all(|b| *b == 0xff) {
        // classic: 28 × ff; probe: 12 × ff, "MDID", 8-byte did, 4 zero bytes.
        return buf[16..32].iter().all(|b| *b == 0xff) || &buf[16..20] == b"MDID";
    }
    false
}

/// What the last 16 bytes of a hello reply say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloKind {
    /// `ff` × 16: a provisioned device.
    Provisioned,
    /// `00` × 16: older firmware.
    Zeros,
    /// The device revealed its token (unprovisioned / AP mode).
    Token(Token),
    /// The device advertises push subscription (`MSUB`).
    Msub {
        /// Subscription timestamp; a change means the subscription was lost.
        sub_ts: u32,
        /// Whether wildcard subscription is supported.
        wildcard: bool,
    },
}

/// A parsed hello reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloReply {
    /// The device id to use in request headers.
    pub did: u64,
    /// The device clock.
    pub stamp: u32,
    /// What the checksum field carried.
    pub kind: HelloKind,
}

/// Parse a 32-byte hello reply. A hello *request* echoed back is rejected.
pub fn parse_hello_reply(buf: &[u8]) -> Result<HelloReply, PacketError> {
    let header = Header::parse(buf)?;
    if header.length != HEADER_LEN {
        return Err(PacketError::NotHello(header.length));
    }
    if header.did == HELLO_DID {
        return Err(PacketError::NotHello(header.length));
    }
    let c = header.checksum;
    let kind = if c.iter().all(|b| *b == 0xff) {
        HelloKind::Provisioned
    } else if c.iter().all(|b| *b == 0) {
        HelloKind::Zeros
    } else if &c[..4] == b"MSUB" && &c[8..11] == b"PUB" {
        HelloKind::Msub {
            sub_ts: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
            wildcard: c[12] == 0xfe,
        }
    } else {
        HelloKind::Token(Token::from_bytes(c))
    };
    Ok(HelloReply {
        did: header.did,
        stamp: header.stamp,
        kind,
    })
}

/// Build a hello reply (for simulators and tests).
pub fn hello_reply(did: u64, stamp: u32, kind: &HelloKind) -> [u8; HEADER_LEN] {
    let tail: [u8; 16] = match kind {
        HelloKind::Provisioned => [0xff; 16],
        HelloKind::Zeros => [0; 16],
        HelloKind::Token(t) => *t.as_bytes(),
        HelloKind::Msub { sub_ts, wildcard } => {
            let mut t = [0u8; 16];
            t[..4].copy_from_slice(b"MSUB");
            t[4..8].copy_from_slice(&sub_ts.to_be_bytes());
            t[8..11].copy_from_slice(b"PUB");
            t[11] = 0x01;
            t[12] = if *wildcard { 0xfe } else { 0 };
            t
        }
    };
    let mut out = [0u8; HEADER_LEN];
    write_header(&mut out, HEADER_LEN, did, stamp, &tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> Token {
        "00112233445566778899aabbccddeeff".parse().unwrap()
    }

    #[test]
    fn roundtrip() {
        let p = encode(&tok(), 0x1234_5678, 99, br#"{"id":1}"#).unwrap();
        let d = decode(&tok(), &p).unwrap();
        assert_eq!(d.header.did, 0x1234_5678);
        assert_eq!(d.header.stamp, 99);
        assert_eq!(d.payload, br#"{"id":1}"#);
    }

    #[test]
    fn checks_before_decrypting() {
        let mut p = encode(&tok(), 1, 1, b"{}").unwrap();
        assert!(matches!(
            decode(&tok(), &p[..20]),
            Err(PacketError::TooShort(20))
        ));
        assert!(matches!(
            decode(&tok(), &p[..40]),
            Err(PacketError::BadLength { .. })
        ));
        let last = p.len() - 1;
        p[last] ^= 1;
        assert_eq!(decode(&tok(), &p), Err(PacketError::Checksum));
        p[0] = 0;
        assert!(matches!(decode(&tok(), &p), Err(PacketError::BadMagic(_))));
    }

    #[test]
    fn trailing_bytes_ignored() {
        let mut p = encode(&tok(), 1, 1, b"{}").unwrap();
        p.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode(&tok(), &p).unwrap().payload, b"{}");
    }

    #[test]
    fn hello_forms() {
        assert!(is_hello_request(&hello()));
        let mut probe = hello();
        probe[16..20].copy_from_slice(b"MDID");
        probe[28..32].copy_from_slice(&[0, 0, 0, 0]);
        assert!(is_hello_request(&probe));
        for kind in [
            HelloKind::Provisioned,
            HelloKind::Zeros,
            HelloKind::Token(tok()),
            HelloKind::Msub {
                sub_ts: 7,
                wildcard: true,
            },
        ] {
            let r = hello_reply(42, 7, &kind);
            assert!(!is_hello_request(&r));
            let parsed = parse_hello_reply(&r).unwrap();
            assert_eq!((parsed.did, parsed.stamp, parsed.kind), (42, 7, kind));
        }
        assert!(parse_hello_reply(&hello()).is_err());
    }
}
