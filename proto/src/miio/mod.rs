//! The miIO local protocol: encrypted JSON-RPC over UDP port 54321.
//!
//! Layers, bottom up, each in its own file:
//!
//! - [`token`]: the 16-byte device token (redacted in `Debug`).
//! - [`crypto`]: key and IV derivation from the token, AES-128-CBC with PKCS#7.
//! - [`packet`]: the 32-byte header, MD5 checksum, hello and hello replies.
//!   Magic, length and checksum are verified before anything is decrypted.
//! - [`json`]: payload decoding with the firmware quirk fixes.
//! - [`rpc`]: request and response envelopes, device error codes, MIoT
//!   per-property result codes.
//! - [`session`]: per-device state — request ids, stamps, reply matching.
//!
//! Nothing here performs IO or reads a clock: `now` is always passed in.

pub mod crypto;
pub mod json;
pub mod packet;
pub mod roundtrip;
pub mod rpc;
pub mod session;
pub mod token;

pub use packet::{HelloKind, HelloReply, PacketError};
pub use rpc::{DeviceError, PropCode, Request, Response};
pub use session::{IdAllocator, Incoming, Session};
pub use token::{Token, TokenError};

/// The UDP port miIO devices listen on.
pub const DEFAULT_PORT: u16 = 54321;
