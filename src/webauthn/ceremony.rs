//! Ceremony state kept server-side between start and finish.

use std::fmt;

use crate::clock::UnixTime;
use crate::id::{CeremonyId, UserId};

/// What a ceremony is for. A finish must name the same kind (and user) as its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CeremonyKind {
    /// Registering a security key or passkey for a known user.
    Registration,
    /// Authenticating a known user with any of their credentials (second factor).
    SecondFactor,
    /// Authenticating an unknown user with a discoverable passkey (passwordless). Such a
    /// ceremony is stored only once it has succeeded, as a marker without state that makes any
    /// later finish of the same handle fail (see
    /// [`PasswordlessCeremony`](crate::webauthn::PasswordlessCeremony)).
    Passwordless,
}

impl CeremonyKind {
    /// A stable name for storage: `"registration"`, `"second_factor"`, `"passwordless"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::SecondFactor => "second_factor",
            Self::Passwordless => "passwordless",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Registration, Self::SecondFactor, Self::Passwordless]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// A started ceremony as a store keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct CeremonyRecord {
    /// Its id (the host keeps it in the user's session).
    pub id: CeremonyId,
    /// The user it was started for; `None` for passwordless.
    pub user: Option<UserId>,
    /// What it is for.
    pub kind: CeremonyKind,
    /// After this time it can no longer be taken.
    pub expires_at: UnixTime,
    /// The engine's state (the challenge and what it was issued for), opaque to stores.
    pub state: Vec<u8>,
}

impl fmt::Debug for CeremonyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CeremonyRecord")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("kind", &self.kind)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
