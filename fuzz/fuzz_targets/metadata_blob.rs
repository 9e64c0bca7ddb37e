//! `Metadata::from_blob`: a FIDO Metadata Service BLOB as the host downloads it, before anyone
//! vouches for it (the compact JWS, its header, the x5c certificates and the chain walk all
//! read untrusted bytes).
//!
//! Invariants: never panics; nothing is accepted, since no input can be signed under the FIDO
//! roots by the fuzzer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multifactor::UnixTime;
use multifactor::webauthn::metadata::{Metadata, MetadataRoots};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(roots) = MetadataRoots::fido() else {
        return;
    };
    let read = Metadata::from_blob(text, &roots, UnixTime::from_secs(1_796_601_600));
    assert!(read.is_err(), "a fuzzed BLOB was accepted");
});
