//! Round-trip properties of the wire parsers, shared by the fuzz targets
//! (`fuzz/`) and by the tests that replay the committed seed corpus.
//!
//! Each function takes arbitrary bytes and returns `Err` with a description
//! when a property is violated. A parser that panics fails the fuzzer too.

use super::packet::{self, HEADER_LEN};
use super::token::Token;

/// The token the packet target uses (the vector file's `keys[1]`).
pub const FUZZ_TOKEN: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];

/// Any datagram: decoding never panics; a packet that decodes re-encodes to
/// the same bytes (up to its declared length); a hello reply that parses
/// rebuilds to the same 32 bytes.
pub fn packet(data: &[u8]) -> Result<(), String> {
    let token = Token::from_bytes(FUZZ_TOKEN);
    if let Ok(d) = packet::decode(&token, data) {
        let again = packet::encode(&token, d.header.did, d.header.stamp, &d.payload)
            .map_err(|e| format!("decoded packet does not re-encode: {e}"))?;
        if again != data[..d.header.length] {
            return Err("re-encoded packet differs from the input".into());
        }
    }
    if let Ok(h) = packet::parse_hello_reply(data) {
        let again = packet::hello_reply(h.did, h.stamp, &h.kind);
        // The MSUB form keeps only the fields it understands.
        if !matches!(h.kind, packet::HelloKind::Msub { .. }) && again[..] != data[..HEADER_LEN] {
            return Err("hello reply does not rebuild to the same bytes".into());
        }
    }
    Ok(())
}

/// Any payload: the JSON decoder never panics, and the RPC envelopes it
/// accepts serialise and parse back to the same value.
pub fn payload(data: &[u8]) -> Result<(), String> {
    if let Ok(r) = super::rpc::Response::parse(data) {
        let back = super::rpc::Response::parse(&r.to_bytes())
            .map_err(|e| format!("response does not re-parse: {e}"))?;
        if back != r {
            return Err(format!("response round trip changed it: {r:?} -> {back:?}"));
        }
    }
    if let Ok(r) = super::rpc::Request::parse(data) {
        let back = super::rpc::Request::parse(&r.to_bytes())
            .map_err(|e| format!("request does not re-parse: {e}"))?;
        if back != r {
            return Err(format!("request round trip changed it: {r:?} -> {back:?}"));
        }
    }
    Ok(())
}
