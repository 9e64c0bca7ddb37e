//! Placeholder; replaced by the WebAuthn bench.
#![allow(missing_docs)]
fn main() {}
