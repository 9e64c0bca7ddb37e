//! What no input and no output may do: malformed input yields typed errors and never panics,
//! and no plaintext secret reaches a store, a log, an error or an event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hostile_input;
mod no_plaintext;
