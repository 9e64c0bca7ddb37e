//! `totp::decode_base32_secret`: a secret typed or pasted by hand.
//!
//! Invariants: never panics; a decoded secret is 10..=64 bytes, re-encodes
//! (`encode_base32_secret`) to text that decodes to the same bytes, and `TotpImport::parse`
//! of the same text imports the same secret with default parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multifactor::totp::TotpImport;
use multifactor::totp::{decode_base32_secret, encode_base32_secret};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(secret) = decode_base32_secret(text) else {
        return;
    };
    assert!((10..=64).contains(&secret.len()), "secret length {}", secret.len());
    let encoded = encode_base32_secret(&secret);
    assert!(
        encoded
            .expose_secret()
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    );
    let again = decode_base32_secret(encoded.expose_secret()).expect("re-encoded secret decodes");
    assert_eq!(again.expose_secret(), secret.expose_secret());
    let import = TotpImport::parse(text).expect("a valid secret imports");
    assert_eq!(import.secret.expose_secret(), secret.expose_secret());
    assert_eq!(import.params, Default::default());
    assert!(import.issuer.is_none() && import.account.is_none());
});
