//! The one kit the tests, benches and examples of `multifactor` share (`publish = false`):
//!
//! - [`service`]: a service on the memory store, a manual clock and a seeded generator, users,
//!   enrolled TOTP and codes;
//! - [`forward!`]: delegating store methods, or whole store traits, for test stores that change one operation;
//! - [`browser`]: a software browser with a software authenticator, for WebAuthn ceremonies;
//! - [`cluster`] and [`pg_cluster`]: a throwaway PostgreSQL cluster (or `DATABASE_URL`);
//! - [`load`] and [`bench`]: what the load examples and the criterion benches share;
//! - [`migration`]: one user with all the state a migration must keep, and its snapshot;
//! - [`version`]: the SQL stores' devices version wrapping at its top;
//! - [`demo_key`]: the web example's demo sealing key file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

pub mod bench;
pub mod browser;
pub mod cluster;
pub mod demo_key;
#[macro_use]
pub mod forward;
pub mod libtest;
pub mod load;
pub mod migration;
pub mod pg_cluster;
pub mod procstat;
pub mod service;
pub mod version;
