//! Everything at the crate root, in one import: `use multifactor::prelude::*;`.
//!
//! The service, its configuration and answers, the ids, the errors, the keys, time and
//! randomness, and the store traits (so that their operations can be called on a concrete
//! store). Names of one factor, of an operator pass or of the store contract's records stay in
//! their modules.
//!
//! ```
//! use multifactor::prelude::*;
//!
//! # fn main() -> Result<(), Error> {
//! let keys = Keyring::new(SealingKey::new(KeyId::new("2026-01")?, [7; 32]));
//! let mfa = Mfa::new(MemoryStore::new(), keys, MfaConfig::new("Example")?)?;
//! let _: &MfaConfig = mfa.config();
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "postgres")]
pub use crate::PostgresStore;
#[cfg(feature = "sqlite")]
pub use crate::SqliteStore;
pub use crate::{
    AdminStore, Assurance, BrowserStore, CeremonyId, CeremonyStore, Clock, DeviceId, DeviceInfo, DeviceKind,
    DeviceName, DeviceStore, EnrollmentStore, Error, Factor, FirstFactor, KeyId, Keyring, MemoryStore, Mfa, MfaConfig,
    OsRng, Outcome, RememberedBrowserId, Rng, SealingKey, SecretBytes, SecretString, Store, StoreError, SystemClock,
    UnixTime, UserId, Verified,
};
