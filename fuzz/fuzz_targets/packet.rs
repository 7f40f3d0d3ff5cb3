//! Any datagram through the packet decoder and hello parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = mijia_proto::miio::roundtrip::packet(data) {
        panic!("{e}");
    }
});
