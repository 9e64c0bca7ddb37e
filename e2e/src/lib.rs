//! Nothing here: the end-to-end test is `tests/browser.rs`, run with
//! `cargo test -p multifactor-e2e`. It drives Debian's Chromium over the DevTools protocol, with
//! a virtual authenticator, against `cargo run --example web`.
