//! The EdDSA path's parsing: registrations of Ed25519 (OKP) credentials, built from structured
//! input around a real ceremony (its challenge, the relying party's origin and id hash, so the
//! fuzzer's choices reach the key, flag, format and statement checks), then
//! `Mfa::finish_webauthn_registration`; and the same COSE key through `WebAuthnImport`.
//!
//! Invariants: never panics; a registration is accepted only when every rule holds (an OKP key
//! `{1: 1, 3: -8, -1: 6, -2: 32 bytes}` that decodes to a point not of small order, user
//! present, attestation `none` with an empty statement: no fuzzed `packed` signature can be
//! valid), and then the device is a security key whose stored credential id is the one sent;
//! the import accepts the same keys the registration does.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use multifactor::import::{ExportedCredential, WebAuthnImport};
use multifactor::webauthn::RegistrationResponse;
use multifactor::{DeviceKind, MemoryStore, Outcome};
use multifactor_fuzz::{ORIGIN, runtime, service, user};
use serde_json::json;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Use a well-formed OKP map around `x` (else `raw_key` as the COSE bytes).
    well_formed: bool,
    kty: i8,
    alg: i8,
    crv: i8,
    x: Vec<u8>,
    raw_key: Vec<u8>,
    flags: u8,
    counter: u32,
    credential_id: Vec<u8>,
    packed: bool,
    signature: Vec<u8>,
    trailing: Vec<u8>,
}

/// Minimal CBOR writer for the shapes needed here.
fn head(major: u8, n: usize, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=255 => out.extend_from_slice(&[m | 24, n as u8]),
        _ => {
            out.push(m | 25);
            out.extend_from_slice(&(n.min(65535) as u16).to_be_bytes());
        }
    }
}

fn int(v: i64, out: &mut Vec<u8>) {
    if v >= 0 {
        head(0, v as usize, out);
    } else {
        head(1, (-1 - v) as usize, out);
    }
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    let b = &b[..b.len().min(65535)];
    head(2, b.len(), out);
    out.extend_from_slice(b);
}

fn text(t: &str, out: &mut Vec<u8>) {
    head(3, t.len(), out);
    out.extend_from_slice(t.as_bytes());
}

fn cose(input: &Input) -> Vec<u8> {
    if !input.well_formed {
        return input.raw_key.clone();
    }
    let mut out = Vec::new();
    head(5, 4, &mut out);
    int(1, &mut out);
    int(i64::from(input.kty % 3 + 1), &mut out); // 1 (OKP) most often reachable
    int(3, &mut out);
    int(if input.alg % 4 == 0 { -7 } else { -8 }, &mut out);
    int(-1, &mut out);
    int(if input.crv % 5 == 0 { 7 } else { 6 }, &mut out);
    int(-2, &mut out);
    bytes(&input.x, &mut out);
    out
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).to_vec()
}

fuzz_target!(|input: Input| {
    let rt = runtime();
    let mfa = service(MemoryStore::new());
    let who = user();
    let id: Vec<u8> = if input.credential_id.is_empty() {
        vec![1]
    } else {
        input.credential_id.iter().copied().take(64).collect()
    };
    let key = cose(&input);
    rt.block_on(async {
        let (ceremony, options) = mfa
            .start_security_key_registration(&who, "u", "U")
            .await
            .expect("start");
        let challenge = options.to_json_value()["publicKey"]["challenge"]
            .as_str()
            .expect("challenge")
            .to_owned();
        let client = json!({"type": "webauthn.create", "challenge": challenge, "origin": ORIGIN, "crossOrigin": false})
            .to_string();
        // authData: rpIdHash, flags (AT set; ED as drawn), counter, aaguid, id length, id, key, trailing.
        let flags = input.flags | 0x40;
        let mut auth = sha256(b"example.com");
        auth.push(flags);
        auth.extend_from_slice(&input.counter.to_be_bytes());
        auth.extend_from_slice(&[0u8; 16]);
        auth.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth.extend_from_slice(&id);
        auth.extend_from_slice(&key);
        auth.extend_from_slice(&input.trailing);
        let mut object = Vec::new();
        head(5, 3, &mut object);
        text("fmt", &mut object);
        text(if input.packed { "packed" } else { "none" }, &mut object);
        text("attStmt", &mut object);
        if input.packed {
            head(5, 2, &mut object);
            text("alg", &mut object);
            int(-8, &mut object);
            text("sig", &mut object);
            bytes(&input.signature, &mut object);
        } else {
            head(5, 0, &mut object);
        }
        text("authData", &mut object);
        bytes(&auth, &mut object);
        let rsp = json!({
            "id": B64.encode(&id),
            "rawId": B64.encode(&id),
            "response": {"attestationObject": B64.encode(&object), "clientDataJSON": B64.encode(client.as_bytes())},
            "extensions": {},
            "type": "public-key",
        });
        let Ok(rsp) = RegistrationResponse::from_json_value(rsp) else {
            return;
        };
        let outcome = mfa
            .finish_webauthn_registration(&who, ceremony, &rsp, None)
            .await
            .expect("no store error");
        let imported = WebAuthnImport::from_exported(&ExportedCredential {
            credential_id: &id,
            cose_public_key: &key,
            sign_count: 0,
            user_handle: None,
            discoverable: false,
            backup: None,
            transports: &[],
            aaguid: None,
        });
        if let Outcome::Accepted(v) = &outcome {
            assert_eq!(v.kind(), DeviceKind::SecurityKey);
            assert!(
                input.well_formed && !input.packed,
                "accepted a {} registration",
                if input.packed { "packed" } else { "malformed" }
            );
            assert!(flags & 0x01 != 0, "accepted without user presence");
            assert!(
                imported.is_ok(),
                "the registration took a key the import refuses: {imported:?}"
            );
        }
    });
});
