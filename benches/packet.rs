//! Packet codec throughput: encode + decode of a 5-property
//! `get_properties` request on one core. Run with `cargo bench --bench packet`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mijia_proto::miio::crypto::Keys;
use mijia_proto::miio::packet;
use mijia_proto::miio::{Request, Token};

fn main() {
    let token: Token = "00112233445566778899aabbccddeeff".parse().expect("token");
    let keys = Keys::derive(&token);
    let params = serde_json::json!([
        {"did":"100001","siid":2,"piid":1},
        {"did":"100001","siid":2,"piid":2},
        {"did":"100001","siid":2,"piid":3},
        {"did":"100001","siid":2,"piid":4},
        {"did":"100001","siid":2,"piid":5}
    ]);
    let payload = Request::new(4242, "get_properties", params).to_bytes();

    let run = |iters: u64| -> Duration {
        let start = Instant::now();
        for i in 0..iters {
            let p = packet::encode_with_keys(&token, &keys, 100_001, i as u32, black_box(&payload))
                .expect("encode");
            let d = packet::decode_with_keys(&token, &keys, black_box(&p)).expect("decode");
            black_box(d);
        }
        start.elapsed()
    };
    run(20_000); // warm up
    let mut rates = Vec::new();
    for _ in 0..7 {
        let iters = 300_000;
        let t = run(iters);
        rates.push(iters as f64 / t.as_secs_f64());
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    let wire = packet::encode_with_keys(&token, &keys, 100_001, 1, &payload).expect("encode");
    // Where the time goes: the two MD5 checksums over the whole datagram
    // (one to write it, one to verify it) and the AES-CBC work.
    let per_op = |f: &dyn Fn(u64)| -> f64 {
        f(20_000);
        let mut ns = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            f(300_000);
            ns.push(start.elapsed().as_nanos() as f64 / 300_000.0);
        }
        ns.sort_by(|a, b| a.total_cmp(b));
        ns[2]
    };
    let md5_ns = per_op(&|n| {
        for _ in 0..n {
            black_box(mijia_proto::miio::crypto::md5(black_box(&wire)));
        }
    });
    let aes_ns = per_op(&|n| {
        for _ in 0..n {
            let ct = keys.encrypt(black_box(&payload));
            black_box(keys.decrypt(&ct).expect("decrypt"));
        }
    });
    println!(
        "packet encode+decode, 5-property get_properties ({} bytes on the wire): median {:.0}/s per core (min {:.0}, max {:.0}; 7 runs of 300000)",
        packet::encode(&token, 1, 1, &payload).map(|p| p.len()).unwrap_or(0),
        rates[3],
        rates[0],
        rates[6]
    );
    let pair_ns = 1e9 / rates[3];
    println!(
        "  per pair {pair_ns:.0} ns: 2 x MD5 of the {}-byte datagram {:.0} ns ({:.0}%), AES-CBC encrypt+decrypt {aes_ns:.0} ns ({:.0}%), the rest {:.0} ns",
        wire.len(),
        2.0 * md5_ns,
        200.0 * md5_ns / pair_ns,
        100.0 * aes_ns / pair_ns,
        (pair_ns - 2.0 * md5_ns - aes_ns).max(0.0)
    );
}
