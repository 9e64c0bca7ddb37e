//! The store contract: the conformance suite on the memory store and SQLite, mutant stores it
//! must catch, and SQLite's own schema, migrations and files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod memory;
mod mutants;
mod sqlite;
mod sqlite_conformance;
