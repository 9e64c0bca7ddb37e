//! `TotpImport::parse`: key URIs and bare base32 secrets as a user pastes or scans them.
//!
//! Invariants: never panics; a parsed secret is 10..=64 bytes and its parameters are in bounds;
//! a URI import with issuer and account rebuilds (`totp::uri::build`) into a URI that parses to
//! the same secret, parameters and labels; a bare secret re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multifactor::totp::TotpImport;
use multifactor::totp::uri::{self, MAX_URI_LEN};
use multifactor::totp::{decode_base32_secret, encode_base32_secret};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(text);
    check(&format!("otpauth://totp/{text}"));
});

fn check(input: &str) {
    let Ok(import) = TotpImport::parse(input) else {
        return;
    };
    assert!(
        (10..=64).contains(&import.secret.len()),
        "secret length {}",
        import.secret.len()
    );
    assert!((6..=8).contains(&import.params.digits()));
    assert!((10..=300).contains(&import.params.period()));

    let Some(account) = import.account.as_deref() else {
        // A bare secret: no labels, default parameters, and it re-encodes to the same bytes.
        assert!(import.issuer.is_none());
        assert_eq!(import.params, Default::default());
        let again =
            decode_base32_secret(encode_base32_secret(&import.secret).expose_secret()).expect("re-encoded secret");
        assert_eq!(again.expose_secret(), import.secret.expose_secret());
        return;
    };
    assert!(!account.trim().is_empty(), "empty account accepted");
    if let Some(issuer) = import.issuer.as_deref() {
        assert!(!issuer.trim().is_empty(), "empty issuer accepted");
        if issuer.contains(':') {
            return; // only a label without issuer can carry it (in the parameter); build refuses it
        }
        let rebuilt = uri::build(issuer, account, &import.secret, &import.params);
        if rebuilt.expose_secret().len() > MAX_URI_LEN {
            return; // percent-encoding grew it past the import limit
        }
        let again = TotpImport::parse(rebuilt.expose_secret())
            .unwrap_or_else(|e| panic!("rebuilt URI does not parse: {e}: {:?}", rebuilt.expose_secret()));
        assert_eq!(again.secret.expose_secret(), import.secret.expose_secret());
        assert_eq!(again.params, import.params);
        assert_eq!(again.issuer.as_deref(), Some(issuer));
        assert_eq!(again.account.as_deref(), Some(account));
    }
}
