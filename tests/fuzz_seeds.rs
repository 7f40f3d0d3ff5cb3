//! Replays the committed fuzz seed corpus (`fuzz/seeds/`) through the same
//! round-trip properties the fuzz targets check, so every `cargo test` run
//! exercises them on stable without a fuzzer.

use std::path::Path;

fn replay(dir: &str, check: fn(&[u8]) -> Result<(), String>) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(dir);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("seed file");
        if let Err(e) = check(&data) {
            panic!("{}: {e}", path.display());
        }
        n += 1;
    }
    n
}

#[test]
fn packet_seeds_round_trip() {
    assert!(replay("packet", mijia_proto::miio::roundtrip::packet) >= 10);
}

#[test]
fn payload_seeds_round_trip() {
    assert!(replay("payload", mijia_proto::miio::roundtrip::payload) >= 10);
}

#[test]
fn dns_seeds_round_trip() {
    assert!(replay("dns", mijia_proto::dns::roundtrip) >= 5);
    // The seeds are real messages (and one pointer loop), so the round
    // trip is exercised, not just the rejection paths.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/dns");
    let parsed = std::fs::read_dir(&dir)
        .expect("dns seeds")
        .filter(|e| {
            let data = std::fs::read(e.as_ref().expect("entry").path()).expect("seed");
            mijia_proto::dns::parse(&data).is_ok()
        })
        .count();
    assert!(parsed >= 4, "only {parsed} dns seeds parse");
}

#[test]
fn mutated_seeds_never_panic() {
    // A small deterministic mutation sweep over every seed: flip each byte,
    // truncate at each length. Catches panics without a fuzzer.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for sub in ["packet", "payload", "dns"] {
        for entry in std::fs::read_dir(root.join(sub)).expect("seeds") {
            let data = std::fs::read(entry.expect("entry").path()).expect("seed");
            for i in 0..data.len() {
                let mut m = data.clone();
                m[i] ^= 0x5a;
                let _ = mijia_proto::miio::roundtrip::packet(&m);
                let _ = mijia_proto::miio::roundtrip::payload(&m);
                let _ = mijia_proto::miio::roundtrip::packet(&data[..i]);
                let _ = mijia_proto::miio::roundtrip::payload(&data[..i]);
                for d in [&m[..], &data[..i]] {
                    if let Err(e) = mijia_proto::dns::roundtrip(d) {
                        panic!("dns property broken by a mutant: {e}");
                    }
                }
            }
        }
    }
}
