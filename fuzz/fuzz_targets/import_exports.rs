//! `ImportBatch::parse`: other systems' exports (CSV with quoted JSON, JSON lines, key URIs,
//! Google Authenticator payloads, COSE keys), the first byte choosing the format.
//!
//! Invariants: never panics; every entry and problem names a line inside the file; every TOTP
//! entry's secret is 10..=64 bytes with parameters in bounds (a counter-based one's counter
//! storable); every WebAuthn entry's credential id
//! is 1..=1023 bytes; no problem's reason or user quotes a secret-looking field of the file (20 or
//! more base32, hex or base64 characters, digits and letters both; a canonical UUID is an
//! identifier, not that), and a problem's user is never a URI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multifactor::import::{ImportBatch, ImportFormat, ImportItem};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let format = ImportFormat::ALL[usize::from(selector) % ImportFormat::ALL.len()];
    let batch = ImportBatch::parse(format, text);
    let lines = text.lines().count().max(1);
    for entry in &batch.entries {
        assert!(
            (1..=lines).contains(&entry.line),
            "entry line {} of {lines}",
            entry.line
        );
        match &entry.item {
            ImportItem::Totp(t) => {
                assert!((10..=64).contains(&t.secret.len()), "secret length {}", t.secret.len());
                assert!((6..=8).contains(&t.params.digits()));
                if t.params.is_counter_based() {
                    // A counter a store keeps, with room for a resynchronisation beyond it.
                    assert!(t.last_step.is_none_or(|c| c < i64::MAX as u64 - 10_000));
                } else {
                    assert!((10..=300).contains(&t.params.period()));
                }
            }
            ImportItem::WebAuthn(w) => {
                assert!((1..=1023).contains(&w.credential_id().len()));
            }
            ImportItem::BackupCodes(c) => assert!((1..=32).contains(&c.len())),
            ImportItem::HashedBackupCodes(d) => assert!((1..=32).contains(&d.len())),
            _ => {}
        }
    }
    for problem in &batch.problems {
        assert!(problem.line <= lines + 1, "problem line {} of {lines}", problem.line);
        // A canonical UUID (8-4-4-4-12 hex digits) is an identifier's format (user ids are often
        // UUIDs), never a secret's.
        let uuid = |f: &str| {
            f.len() == 36
                && f.bytes().enumerate().all(|(i, b)| match i {
                    8 | 13 | 18 | 23 => b == b'-',
                    _ => b.is_ascii_hexdigit(),
                })
        };
        let secret_like = |f: &&str| {
            f.len() >= 20
                && !uuid(f)
                && f.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
                && f.bytes().any(|b| b.is_ascii_digit())
                && f.bytes().any(|b| b.is_ascii_alphabetic())
        };
        for field in text
            .split([',', '\n', ' ', '"', ':', '{', '}', '&', '?'])
            .filter(secret_like)
        {
            assert!(
                !problem.reason.contains(field),
                "a reason quotes the input: {}",
                problem.reason
            );
            // (A user that is a whole canonical UUID is an identifier, whatever it shares with
            // other fields.)
            if let Some(user) = problem.user.as_deref().filter(|u| !uuid(u)) {
                assert!(!user.contains(field), "a user field quotes the input: {user}");
            }
        }
        if let Some(user) = &problem.user {
            assert!(!user.contains("://"), "a URI stands in a problem's user: {user}");
        }
    }
});
