//! Any datagram through the DNS parsers and, when it parses, the builders.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = mijia_proto::dns::roundtrip(data) {
        panic!("{e}");
    }
});
