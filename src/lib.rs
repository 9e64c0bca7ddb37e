//! Multi-factor authentication for Rust services: backup codes, TOTP authenticator apps, and
//! WebAuthn security keys and passkeys, on a storage backend, clock and random generator that the
//! host plugs in.
//!
//! ```
//! use multifactor::{Clock, Keyring, KeyId, MemoryStore, Mfa, MfaConfig, Outcome, SealingKey, SystemClock, UserId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The key that seals TOTP secrets at rest comes from your secrets manager or environment,
//! // e.g. as 64 hex digits: `SealingKey::from_hex(id, &std::env::var("MFA_SEALING_KEY")?)?`.
//! // A fixed key here, so that the example runs as it is.
//! let keys = Keyring::new(SealingKey::new(KeyId::new("2026-11")?, [7; 32]));
//! let mfa = Mfa::new(MemoryStore::new(), keys, MfaConfig::new("ACME")?)?;
//! let alice = UserId::new("alice")?;
//!
//! // TOTP: enroll, show the QR code / key URI, confirm with the first code from the app.
//! let enrollment = mfa.enroll_totp(&alice, "alice@example.com", None).await?;
//! assert!(enrollment.key_uri.expose_secret().starts_with("otpauth://totp/ACME:alice%40example.com?"));
//! let app_secret = multifactor::totp::decode_base32_secret(enrollment.secret_base32.expose_secret())?;
//! let code = multifactor::totp::code_at(&app_secret, &Default::default(), SystemClock.now());
//! assert!(mfa.confirm_totp(&alice, enrollment.device, code.expose_secret()).await?.is_accepted());
//!
//! // The same code again is a replay: one opaque rejection.
//! assert_eq!(mfa.verify_totp(&alice, code.expose_secret()).await?, Outcome::Rejected);
//!
//! // Backup codes: shown once, stored as keyed hashes, each usable once.
//! let set = mfa.generate_backup_codes(&alice, None).await?;
//! let first = set.codes[0].expose_secret();
//! match mfa.verify_backup_code(&alice, first).await? {
//!     Outcome::Accepted(v) => assert_eq!(v.remaining_backup_codes(), Some(5)),
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(mfa.verify_backup_code(&alice, first).await?, Outcome::Rejected);
//! # Ok(())
//! # }
//! ```
//!
//! # Shape
//!
//! - Pure logic in the middle: [`backup_codes`], [`totp`] and [`throttle`] take plain data and
//!   return what must change; they do no I/O and read no clock.
//! - Atomic persistence at the edge: [`DeviceStore`] offers consume-once, high-water-mark,
//!   replace and compare-and-swap operations, and four small traits beside it keep ceremonies,
//!   browsers, the operator's passes and enrollment deadlines ([`store`] says which operation
//!   needs which); [`MemoryStore`] implements them all, and the public conformance suite
//!   (feature `test-util`) checks any store, races included.
//! - One thin service on top: [`Mfa`].
//!
//! The [`manual`] names the concepts (a *device* is anything a user enrolled to pass the second
//! factor; a *remembered browser* is not one), and explains the threat model and every default.
//!
//! # Where names live
//!
//! One rule decides: **the root holds what an application names on its sign-in path and at
//! start-up**, whatever factors it offers: the service ([`Mfa`], [`MfaConfig`]) and its
//! answers ([`Outcome`], [`Verified`]), the ids, the two errors it returns to the host
//! ([`Error`], and [`StoreError`] from a store), the sealing keys, time and randomness, the
//! first factor and assurance of a session, and the stores with their traits. A name that only
//! one factor, an operator pass, a store implementer or a policy needs lives in that module,
//! beside its siblings:
//!
//! | module | holds |
//! |---|---|
//! | [`totp`] | `TotpConfig`, `TotpParams`, `TotpEnrollment`, `TotpImport`, `Algorithm` |
//! | [`backup_codes`] | `BackupCodeConfig`, `BackupCodeSet`, `BackupCode` |
//! | [`webauthn`] | `WebAuthnConfig`, `RelyingParty`, the ceremonies' options and responses |
//! | [`sent_code`] | `SentCode`, `SentCodePolicy`, `Channel` |
//! | [`remembered_browser`] | `RememberedBrowserToken`, `RememberedBrowserConfig`, `KnownBrowserConfig` |
//! | [`throttle`], [`policy`] | `ThrottlePolicy`, `KnownBrowserPolicy`; `AssurancePolicy`, `SatisfiedBy` |
//! | [`audit`] | `AuditSink`, `AuditEvent`, `AuditKind`, `RevokeReason` |
//! | [`admin`] | `RotationReport`, `CredentialFilter`, `InventoryPage` |
//! | [`error`] | what [`Error`] carries: `InputError`, `MisuseError`, `ConfigError`, `SealError`, `RngError` |
//! | [`store`] | the records and the settlement protocol, for store implementers |
//! | [`import`] | the foreign formats |
//!
//! [`prelude`] brings the whole root in one `use`.
//!
//! # Features
//!
//! None is on by default.
//!
//! - `sqlite`: `SqliteStore`, the embedded store (needs Rust 1.94, sqlx 0.9's minimum).
//! - `postgres`: `PostgresStore`, for many app servers on one database (Rust 1.94).
//! - `qr`: SVG and terminal QR codes for TOTP enrollment (`TotpEnrollment::qr_svg`, `qr_text`).
//! - `axum`: [`extract`], the pending and signed-in session states and their extractors, on
//!   tower-sessions.
//! - `serde`: `Serialize`/`Deserialize` for the ids, `DeviceName`, `DeviceKind`, `Factor`,
//!   `UnixTime` and `DeviceInfo`, in their text forms and checked on the way in as their
//!   constructors check them, so that an axum `Path<DeviceId>` cannot carry a malformed id.
//! - `test-util`: the `conformance` suite (for store implementers) and the test doubles
//!   `ManualClock`, `InsecureSeededRng` and `RecordingSink`.
//! - `cli`: the `mfactl` binary, the administrator's command line on SQLite or PostgreSQL
//!   (`cargo install multifactor --features cli`; `mfactl --help`).

pub mod admin;
pub mod audit;
pub mod authorize;
pub mod backup_codes;
mod clock;
#[cfg(feature = "test-util")]
pub mod conformance;
mod ct;
mod device;
pub mod enrollment;
pub mod error;
pub mod evidence;
#[cfg(feature = "axum")]
pub mod extract;
mod id;
pub mod import;
mod kind;
#[cfg(test)]
mod layering;
pub mod manual;
pub mod policy;
pub mod prelude;
pub mod remembered_browser;
mod rng;
mod seal;
mod secret;
pub mod sent_code;
#[cfg(feature = "serde")]
mod serde_text;
mod service;
pub mod store;
pub mod throttle;
pub mod totp;
pub mod webauthn;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// The root holds what an application names on its sign-in path and at start-up: the service,
// its configuration and answers, the ids, the errors it returns, the keys, time and randomness,
// and the stores with their traits. What only one factor, an operator pass, a store implementer
// or a policy needs lives in that module (see "Where names live" in the crate docs).
pub use crate::clock::{Clock, SystemClock, UnixTime};
pub use crate::device::DeviceInfo;
pub use crate::error::{Error, StoreError};
pub use crate::id::{CeremonyId, DeviceId, DeviceName, RememberedBrowserId, UserId};
pub use crate::kind::{DeviceKind, Factor};
pub use crate::policy::{Assurance, FirstFactor};
pub use crate::rng::{OsRng, Rng};
pub use crate::seal::{KeyId, Keyring, SealingKey};
pub use crate::secret::{SecretBytes, SecretString};
pub use crate::service::{Mfa, MfaConfig, Outcome, Verified};
pub use crate::store::memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use crate::store::postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use crate::store::sqlite::SqliteStore;
pub use crate::store::{AdminStore, BrowserStore, CeremonyStore, DeviceStore, EnrollmentStore, Store};

// Test doubles: a clock that moves only when told, a seeded generator, an audit sink that keeps
// what it hears.
#[cfg(feature = "test-util")]
pub use crate::audit::RecordingSink;
#[cfg(feature = "test-util")]
pub use crate::clock::ManualClock;
#[cfg(feature = "test-util")]
pub use crate::rng::InsecureSeededRng;
