//! WebAuthn with software authenticators: security keys and passkeys, second factor and
//! passwordless, and hostile responses and ceremonies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conditional;
mod fleet;
mod flows;
mod hostile;
mod import;
mod metadata;
mod passwordless;
mod prf;
