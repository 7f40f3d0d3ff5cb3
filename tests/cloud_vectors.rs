//! Known-answer vectors from `fixtures/cloud-signing.json`: every value is
//! reproduced by the client side (nonce, signed nonce, HMAC and RC4 request
//! signing, reply decryption) and accepted by the server side (request
//! verification, reply encryption) of `mijia_proto::cloud`.

use std::collections::{BTreeMap, BTreeSet};

use mijia_proto::cloud::envelope::{decode_response, open_response};
use mijia_proto::cloud::form::{decode_form, encode_form};
use mijia_proto::cloud::ha::{self, MipsFrame};
use mijia_proto::cloud::login::{client_sign, client_sign_param, password_hash};
use mijia_proto::cloud::signing::{
    encrypt_response, hmac_signature, hmac_string_to_sign, sha1_signature, sha1_string_to_sign,
    verify_hmac_request, verify_rc4_request, Method, Nonce, RequestSigner, SignedNonce,
    RC4_HEADERS,
};
use mijia_proto::cloud::{ApiBase, CloudProtoError, Password, SessionInvalidReason, Ssecurity};
use serde_json::Value;

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cloud-signing.json");
    let text = std::fs::read_to_string(path).expect("vector file is present");
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("vector field {k} missing in {v}"))
}

fn object(v: &Value) -> &serde_json::Map<String, Value> {
    v.as_object()
        .unwrap_or_else(|| panic!("expected an object: {v}"))
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    object(v)
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
        .collect()
}

fn keys(v: &Value) -> BTreeSet<&str> {
    object(v).keys().map(String::as_str).collect()
}

struct Inputs {
    ssecurity: Ssecurity,
    nonce: Nonce,
    signer: RequestSigner,
    base: ApiBase,
}

fn inputs(doc: &Value) -> Inputs {
    let i = &doc["inputs"];
    let ssecurity = Ssecurity::from_base64(s(i, "ssecurity")).expect("ssecurity");
    assert_eq!(hex::encode(ssecurity.reveal_bytes()), s(i, "ssecurity_hex"));
    let random: [u8; 8] = hex::decode(s(i, "nonce_random_8_bytes_hex"))
        .expect("hex")
        .try_into()
        .expect("8 bytes");
    let ms = i["clock_millis"].as_u64().expect("clock_millis");
    let nonce = Nonce::generate(random, ms);
    let signer = RequestSigner::new(&ssecurity, nonce.clone());
    let base = ApiBase::parse(s(i, "base_url")).expect("base_url");
    assert_eq!(s(i, "method"), Method::Post.as_str());
    Inputs {
        ssecurity,
        nonce,
        signer,
        base,
    }
}

#[test]
fn nonce_and_signed_nonce() {
    let doc = load();
    let inp = inputs(&doc);
    let d = &doc["derived"];
    assert_eq!(inp.nonce.as_str(), s(d, "nonce"));
    assert_eq!(hex::encode(inp.nonce.as_bytes()), s(d, "nonce_hex"));
    assert_eq!(
        u64::from(inp.nonce.minutes().expect("12-byte nonce")),
        d["nonce_minutes"].as_u64().expect("nonce_minutes")
    );
    let sn = inp.signer.signed_nonce();
    assert_eq!(sn.reveal(), s(d, "signed_nonce"));
    assert_eq!(hex::encode(sn.reveal_key()), s(d, "signed_nonce_hex"));
    assert_eq!(hex::encode(sn.reveal_key()), s(d, "rc4_key_hex"));
    // The server side derives the same key from the received nonce text.
    let parsed = Nonce::parse(s(d, "nonce")).expect("nonce");
    assert_eq!(
        SignedNonce::derive(&inp.ssecurity, &parsed).reveal(),
        s(d, "signed_nonce")
    );
    assert_eq!(
        keys(d),
        BTreeSet::from([
            "nonce",
            "nonce_hex",
            "nonce_minutes",
            "rc4_key_hex",
            "signed_nonce",
            "signed_nonce_hex"
        ])
    );
}

fn requests(doc: &Value) -> &Vec<Value> {
    let r = doc["requests"].as_array().expect("requests");
    assert_eq!(r.len(), 2, "a vector was added or removed; cover it here");
    r
}

fn plain_params(req: &Value) -> Vec<(String, String)> {
    string_map(&req["params_plain"]).into_iter().collect()
}

#[test]
fn signed_paths_from_urls() {
    let doc = load();
    let inp = inputs(&doc);
    for req in requests(&doc) {
        let path = inp.base.signed_path(s(req, "url")).expect("url under base");
        assert_eq!(path, s(req, "signed_path"), "{}", s(req, "name"));
        assert_eq!(inp.base.endpoint_url(&path), s(req, "url"));
        assert_eq!(s(req, "method"), "POST");
    }
}

#[test]
fn hmac_variant_client_and_server() {
    let doc = load();
    let inp = inputs(&doc);
    for req in requests(&doc) {
        let name = s(req, "name");
        let path = s(req, "signed_path");
        let h = &req["hmac_variant"];
        let params = plain_params(req);
        let sorted: BTreeMap<String, String> = params.iter().cloned().collect();

        // Client direction.
        let message = hmac_string_to_sign(path, inp.signer.signed_nonce(), &inp.nonce, &sorted);
        assert_eq!(message, s(h, "string_to_sign"), "{name}");
        assert_eq!(
            hmac_signature(inp.signer.signed_nonce(), &message),
            s(h, "signature"),
            "{name}"
        );
        let form = inp.signer.sign_hmac(path, &params);
        let fields: BTreeMap<String, String> = form.fields.iter().cloned().collect();
        assert_eq!(fields, string_map(&h["form_fields"]), "{name}");
        assert_eq!(form.get("signature"), Some(s(h, "signature")));
        assert_eq!(form.body(), s(h, "form_body_urlencoded"), "{name}");

        // Server direction: decode the exact body and verify it.
        let received = decode_form(s(h, "form_body_urlencoded")).expect("form");
        assert_eq!(encode_form(&received), s(h, "form_body_urlencoded"));
        let v = verify_hmac_request(&inp.ssecurity, path, &received).expect(name);
        assert_eq!(v.params, sorted, "{name}");
        assert_eq!(v.nonce.as_str(), s(&doc["derived"], "nonce"));
        let want: Value = serde_json::from_str(&sorted["data"]).expect("data json");
        assert_eq!(v.data, want);

        assert_eq!(s(h, "hmac_key"), "base64-decoded signed_nonce");
        assert_eq!(
            keys(h),
            BTreeSet::from([
                "form_body_urlencoded",
                "form_fields",
                "hmac_key",
                "signature",
                "string_to_sign"
            ])
        );
    }
}

#[test]
fn rc4_variant_client_and_server() {
    let doc = load();
    let inp = inputs(&doc);
    for req in requests(&doc) {
        let name = s(req, "name");
        let path = s(req, "signed_path");
        let r = &req["rc4_variant"];
        let params = plain_params(req);
        let fields_want = string_map(&r["form_fields"]);
        let sn = inp.signer.signed_nonce();

        // Every intermediate value, computed step by step.
        let plain: BTreeMap<String, String> = params.iter().cloned().collect();
        let hash_string = sha1_string_to_sign(Method::Post, path, &plain, sn);
        assert_eq!(hash_string, s(r, "rc4_hash_string_to_sha1"), "{name}");
        let hash_plain = sha1_signature(&hash_string);
        assert_eq!(hash_plain, s(r, "rc4_hash__plain"), "{name}");
        assert_eq!(
            sn.encrypt_value(hash_plain.as_bytes()),
            fields_want["rc4_hash__"],
            "{name}"
        );
        assert_eq!(
            sn.encrypt_value(plain["data"].as_bytes()),
            fields_want["data"],
            "{name}"
        );

        // The traced signer reproduces the same values.
        let trace = inp
            .signer
            .sign_rc4_traced(&inp.ssecurity, Method::Post, path, &params);
        assert_eq!(trace.rc4_hash_string, s(r, "rc4_hash_string_to_sha1"));
        assert_eq!(trace.rc4_hash_plain, s(r, "rc4_hash__plain"));
        assert_eq!(trace.encrypted_params["data"], fields_want["data"]);
        assert_eq!(
            trace.encrypted_params["rc4_hash__"],
            fields_want["rc4_hash__"]
        );
        assert_eq!(
            trace.signature_string,
            s(r, "signature_string_to_sha1"),
            "{name}"
        );
        assert_eq!(
            sha1_signature(&trace.signature_string),
            fields_want["signature"],
            "{name}"
        );
        let form = trace.form;
        let fields: BTreeMap<String, String> = form.fields.iter().cloned().collect();
        assert_eq!(fields, fields_want, "{name}");
        assert_eq!(form.body(), s(r, "form_body_urlencoded"), "{name}");
        assert_eq!(
            inp.signer
                .sign_rc4(&inp.ssecurity, Method::Post, path, &params),
            form
        );

        let headers: BTreeMap<String, String> = RC4_HEADERS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(headers, string_map(&r["headers"]), "{name}");

        // Server direction: the exact body verifies and decrypts.
        let received = decode_form(s(r, "form_body_urlencoded")).expect("form");
        let v = verify_rc4_request(&inp.ssecurity, path, &received).expect(name);
        assert_eq!(v.params, plain, "{name}");
        assert_eq!(v.nonce.as_str(), fields_want["_nonce"]);
        let want: Value = serde_json::from_str(&plain["data"]).expect("data json");
        assert_eq!(v.data, want);
        assert_eq!(
            sn.decrypt_value("rc4_hash__", &fields_want["rc4_hash__"])
                .expect("decrypt"),
            s(r, "rc4_hash__plain")
        );
        // And a byte flip anywhere in the encrypted data is refused.
        let mut tampered = received.clone();
        for (k, v) in tampered.iter_mut() {
            if k == "data" {
                v.replace_range(0..1, if v.starts_with('A') { "B" } else { "A" });
            }
        }
        assert!(verify_rc4_request(&inp.ssecurity, path, &tampered).is_err());

        assert_eq!(
            keys(r),
            BTreeSet::from([
                "form_body_urlencoded",
                "form_fields",
                "headers",
                "rc4_hash__plain",
                "rc4_hash_string_to_sha1",
                "signature_string_to_sha1"
            ])
        );
    }
}

#[test]
fn responses_decrypt_and_encrypt() {
    let doc = load();
    let inp = inputs(&doc);
    let sn = inp.signer.signed_nonce();
    let responses = doc["responses"].as_array().expect("responses");
    let names: Vec<&str> = responses.iter().map(|r| s(r, "name")).collect();
    assert_eq!(
        names,
        [
            "device_list_response",
            "prop_get_response",
            "prop_get_response_gzip",
            "plaintext_error_response"
        ]
    );
    for r in responses {
        let name = s(r, "name");
        let body = s(r, "response_body");
        match name {
            "plaintext_error_response" => {
                // Not decrypted: returned as is, and it means "re-login".
                let v = decode_response(sn, body.as_bytes()).expect(name);
                assert_eq!(v, serde_json::from_str::<Value>(body).expect("json"));
                match open_response::<Value>(sn, body.as_bytes()) {
                    Err(CloudProtoError::SessionInvalid { reason, code, .. }) => {
                        assert_eq!(reason, SessionInvalidReason::AuthError);
                        assert_eq!(code, 3);
                    }
                    other => panic!("{name}: {other:?}"),
                }
            }
            _ => {
                let plaintext = s(r, "plaintext");
                let want: Value = serde_json::from_str(plaintext).expect("plaintext json");
                assert_eq!(s(r, "key"), "signed_nonce of the request _nonce");

                // Client: decrypt (and gunzip) to the plaintext, typed result.
                let got = decode_response(sn, body.as_bytes()).expect(name);
                assert_eq!(got, want, "{name}");
                let result: Value = open_response(sn, body.as_bytes()).expect(name);
                assert_eq!(result, want["result"], "{name}");

                let raw = sn.decrypt_bytes("response", body).expect("base64");
                let gzip = name.ends_with("_gzip");
                assert_eq!(raw.starts_with(&[0x1f, 0x8b]), gzip, "{name}");

                // Server: encrypt the plaintext. Without gzip the bytes are
                // exact; gzip output depends on the compressor, so it must
                // round-trip instead.
                let mine = encrypt_response(&inp.ssecurity, &inp.nonce, plaintext.as_bytes(), gzip);
                if gzip {
                    assert_ne!(mine, body);
                    let back = decode_response(sn, mine.as_bytes()).expect("own gzip");
                    assert_eq!(back, want);
                } else {
                    assert_eq!(mine, body, "{name}");
                    assert_eq!(raw, plaintext.as_bytes());
                }
            }
        }
    }
}

#[test]
fn extras() {
    let doc = load();
    let extras = &doc["extras"];
    for (name, e) in object(extras) {
        match name.as_str() {
            "password_hash" => {
                assert_eq!(
                    password_hash(&Password::new(s(e, "password"))),
                    s(e, "hash")
                );
            }
            "client_sign" => {
                let ss = Ssecurity::from_base64(s(e, "ssecurity")).expect("ssecurity");
                assert_eq!(
                    format!("nonce={}&{}", s(e, "nonce"), ss.reveal()),
                    s(e, "string")
                );
                assert_eq!(client_sign(s(e, "nonce"), &ss), s(e, "clientSign"));
                assert_eq!(client_sign_param(s(e, "nonce"), &ss), s(e, "url_param"));
            }
            "ha_oauth_state" => {
                let device_id = format!("ha.{}", s(e, "uuid"));
                assert_eq!(device_id, s(e, "device_id"));
                assert_eq!(ha::oauth_state(&device_id), s(e, "state"));
            }
            "ha_group_id" => {
                assert_eq!(ha::group_id(s(e, "uid"), s(e, "home_id")), s(e, "group_id"));
            }
            "ha_cert_cn" => {
                assert_eq!(
                    ha::cert_common_name(s(e, "uid"), s(e, "virtual_did")),
                    s(e, "common_name")
                );
            }
            "mips_local_frame" => {
                let frame = MipsFrame {
                    mid: u32::try_from(e["mid"].as_u64().expect("mid")).expect("u32"),
                    from: None,
                    ret_topic: Some(s(e, "ret_topic").to_owned()),
                    payload: Some(s(e, "payload").to_owned()),
                };
                assert_eq!(hex::encode(frame.encode()), s(e, "frame_hex"));
                let bytes = hex::decode(s(e, "frame_hex")).expect("hex");
                assert_eq!(MipsFrame::decode(&bytes).expect("decode"), frame);
            }
            other => panic!("extras.{other} is not covered; add a check for it"),
        }
    }
    assert_eq!(object(extras).len(), 6);
}
