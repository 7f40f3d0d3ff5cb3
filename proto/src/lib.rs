//! `mijia-proto`: the sans-IO core of mijia.
//!
//! This crate turns bytes into meaning and back. It contains:
//!
//! - [`miio`]: the encrypted miIO UDP packet format (header, MD5 checksum,
//!   AES-128-CBC), the hello handshake, JSON-RPC envelopes with the quirk
//!   fixes real firmware needs, and per-device session state (request ids,
//!   stamps, reply matching).
//! - [`miot`]: the MIoT spec model (services, properties, actions), the
//!   bundled real spec documents, names and value checks.
//! - [`cloud`]: Xiaomi cloud request signing (HMAC and RC4), reply
//!   decryption, regions and account-login reply parsing.
//! - [`dns`]: the DNS message subset mDNS discovery needs, for the browser
//!   (query, response parser with name compression) and the simulated
//!   announcer (question parser, record builder).
//!
//! It does **not** open sockets, spawn tasks, sleep or read the clock: time is
//! always an argument. It never panics on input from the wire, a file or a
//! user; every parser returns a typed error instead.

pub mod cloud;
pub mod dns;
pub mod miio;
pub mod miot;
