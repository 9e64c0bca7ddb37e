//! The service end to end on the memory store with a manual clock: enrollment, verification, replay,
//! throttling, races, the assurance policy, audit events, remembered browsers, key rotation,
//! and a simulated year of attacks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod attacker;
mod audit;
mod authorize;
mod capabilities;
mod drift;
mod enrollment;
mod extract;
mod flows;
mod hotp;
mod import;
mod key_rotation;
mod known_browsers;
mod policy;
mod remembered_browsers;
mod sent_codes;
mod uniform;
