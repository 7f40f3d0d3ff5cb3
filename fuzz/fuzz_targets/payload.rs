//! Any decrypted payload through the quirk-tolerant JSON and RPC parsers.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = mijia_proto::miio::roundtrip::payload(data) {
        panic!("{e}");
    }
});
