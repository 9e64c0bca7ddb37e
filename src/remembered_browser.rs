//! Browser tokens, of two kinds, both issued after a full sign-in:
//!
//! - **Remembered browser** ("remember this browser"): lets this browser skip the second factor
//!   for a while. Every change to the user's devices ends it.
//! - **Known browser**: skips nothing. It gives the browser a failure counter of its own, so
//!   that an attacker without the token can never slow the owner's browser down (see
//!   [`throttle`](crate::throttle)). It is replaced at every full sign-in, and survives device
//!   changes (it proves nothing by itself).
//!
//! They are two tokens, not one token with a flag, because they differ in everything but their
//! form: a known browser is handed out after every full sign-in and replaced each time, while a
//! remembered browser is the user's explicit choice, lasts until it expires and ends with every
//! device change. A host keeps them in two cookies.
//!
//! A token is `ID.SECRET`: a 128-bit id (to find the record) and 256 random bits. The store keeps
//! only `HMAC-SHA256(k, LABEL ‖ ID ‖ expiry ‖ len(user) ‖ user ‖ SECRET)` under a key derived
//! from the sealing key named in the record, with an expiry (default 30 days for a remembered
//! browser, 180 for a known one). `LABEL` is `"multifactor/v1/trusted-device"` for a remembered
//! browser and `"multifactor/v1/known-browser"` for a known one. The hash binds the record's
//! id, user, expiry and kind: a row copied to another user, given a later expiry, or turned
//! from a known browser into one that skips the second factor, by someone who can write the
//! database but does not hold the key, no longer verifies. Tokens are revocable one by one.

use std::fmt;

use crate::clock::UnixTime;
use crate::ct;
use crate::error::{ConfigError, InputError};
use crate::id::{RememberedBrowserId, UserId};
use crate::seal::KeyId;
use crate::secret::SecretString;
use crate::throttle::KnownBrowserPolicy;

/// The lifetimes a remember-this-browser token may be given: 1 hour to 400 days (the longest
/// a browser keeps a cookie).
pub const LIFETIME_SECS: std::ops::RangeInclusive<u64> = 3600..=400 * 86_400;

/// What a store keeps of a remember-this-browser token.
#[derive(Clone, PartialEq, Eq)]
pub struct RememberedBrowserRecord {
    /// The token's id.
    pub id: RememberedBrowserId,
    /// Whose it is.
    pub user: UserId,
    /// The sealing key the MAC key was derived from.
    pub key_id: KeyId,
    /// The keyed hash of the token secret, bound to `id`, `user` and `expires_at`.
    pub hash: [u8; 32],
    /// When it was issued.
    pub created_at: UnixTime,
    /// After this it no longer works.
    pub expires_at: UnixTime,
    /// When it was last used.
    pub last_used_at: Option<UnixTime>,
    /// True for a remembered browser (it skips the second factor), false for a known browser
    /// (it only keeps a failure counter of its own). Bound into `hash`.
    pub skips_second_factor: bool,
}

impl fmt::Debug for RememberedBrowserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RememberedBrowserRecord")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("key_id", &self.key_id)
            .field("hash", &"[REDACTED]")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("last_used_at", &self.last_used_at)
            .field("skips_second_factor", &self.skips_second_factor)
            .finish()
    }
}

/// A freshly issued token: give it to the browser (an HttpOnly, Secure cookie) and forget it.
#[derive(Debug)]
pub struct RememberedBrowserToken {
    /// The token's id (for listing and revoking).
    pub id: RememberedBrowserId,
    /// `ID.SECRET`, the value to store in the cookie.
    pub token: SecretString,
    /// When it stops working.
    pub expires_at: UnixTime,
}

/// Splits `ID.SECRET` into the id and the 32 secret bytes.
pub(crate) fn parse(token: &str) -> Result<(RememberedBrowserId, [u8; 32]), InputError> {
    let (id, secret) = token.trim().split_once('.').ok_or(InputError::RememberedBrowserToken)?;
    let id: RememberedBrowserId = id.parse().map_err(|_| InputError::RememberedBrowserToken)?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(InputError::RememberedBrowserToken);
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        let pair = secret.get(2 * i..2 * i + 2).ok_or(InputError::RememberedBrowserToken)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| InputError::RememberedBrowserToken)?;
    }
    Ok((id, bytes))
}

/// Formats `ID.SECRET`.
pub(crate) fn format(id: RememberedBrowserId, secret: &[u8; 32]) -> SecretString {
    let mut out = String::with_capacity(32 + 1 + 64);
    out.push_str(&id.to_string());
    out.push('.');
    for b in secret {
        out.push_str(&format!("{b:02x}"));
    }
    SecretString::new(out)
}

/// The keyed hash of a token secret for this id, user, expiry and kind (see the [module docs](self)).
pub(crate) fn hash(
    key: &[u8; 32],
    id: RememberedBrowserId,
    user: &UserId,
    expires_at: UnixTime,
    skips_second_factor: bool,
    secret: &[u8; 32],
) -> [u8; 32] {
    use hmac::{Hmac, KeyInit, Mac};
    let Ok(mut mac) = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(if skips_second_factor {
        b"multifactor/v1/trusted-device".as_slice()
    } else {
        b"multifactor/v1/known-browser".as_slice()
    });
    mac.update(id.as_bytes());
    mac.update(&expires_at.as_secs().to_be_bytes());
    let user = user.as_str().as_bytes();
    // User ids are at most 255 bytes (UserId's rule): one length byte suffices.
    mac.update(&[u8::try_from(user.len()).unwrap_or(u8::MAX)]);
    mac.update(user);
    mac.update(secret);
    mac.finalize().into_bytes().into()
}

/// Constant-time check of a presented secret against a record (its id, user and expiry as
/// stored: a record altered in any of them does not match).
pub(crate) fn matches(record: &RememberedBrowserRecord, key: &[u8; 32], secret: &[u8; 32]) -> bool {
    let expected = hash(
        key,
        record.id,
        &record.user,
        record.expires_at,
        record.skips_second_factor,
        secret,
    );
    bool::from(ct::eq32(&expected, &record.hash))
}

/// Remember-this-browser settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RememberedBrowserConfig {
    pub(super) ttl_secs: u64,
}

impl RememberedBrowserConfig {
    /// Default lifetime: 30 days.
    pub const DEFAULT_TTL_SECS: u64 = 30 * 86_400;

    /// Tokens that expire `ttl_secs` after issue (1 hour to 400 days).
    ///
    /// # Errors
    ///
    /// [`ConfigError::RememberedBrowser`] when out of bounds.
    pub fn new(ttl_secs: u64) -> Result<Self, ConfigError> {
        if !crate::remembered_browser::LIFETIME_SECS.contains(&ttl_secs) {
            return Err(ConfigError::RememberedBrowser("lifetime must be 1 hour to 400 days"));
        }
        Ok(Self { ttl_secs })
    }

    /// The lifetime in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }
}

impl Default for RememberedBrowserConfig {
    fn default() -> Self {
        Self {
            ttl_secs: Self::DEFAULT_TTL_SECS,
        }
    }
}

/// Known-browser settings: how long a token lasts without a full sign-in that replaces it,
/// and how many failures it takes before the browser counts as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownBrowserConfig {
    pub(super) ttl_secs: u64,
    /// How many failures a known browser's token takes.
    pub policy: KnownBrowserPolicy,
}

impl KnownBrowserConfig {
    /// Default lifetime: 180 days (each full sign-in replaces the token, so only a browser
    /// unused that long becomes unknown).
    pub const DEFAULT_TTL_SECS: u64 = 180 * 86_400;

    /// Tokens that expire `ttl_secs` after issue (1 hour to 400 days), with `policy`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::RememberedBrowser`] when out of bounds.
    pub fn new(ttl_secs: u64, policy: KnownBrowserPolicy) -> Result<Self, ConfigError> {
        if !crate::remembered_browser::LIFETIME_SECS.contains(&ttl_secs) {
            return Err(ConfigError::RememberedBrowser("lifetime must be 1 hour to 400 days"));
        }
        Ok(Self { ttl_secs, policy })
    }

    /// The lifetime in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }
}

impl Default for KnownBrowserConfig {
    fn default() -> Self {
        Self {
            ttl_secs: Self::DEFAULT_TTL_SECS,
            policy: KnownBrowserPolicy::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let id = RememberedBrowserId::from_bytes([7; 16]);
        let token = format(id, &[0xab; 32]);
        assert_eq!(parse(token.expose_secret()).unwrap(), (id, [0xab; 32]));
        for bad in [
            "",
            ".",
            "x.y",
            &format!("{id}."),
            &format!("{id}.{}", "g".repeat(64)),
            &format!("{id}.{}", "a".repeat(63)),
        ] {
            assert_eq!(parse(bad), Err(InputError::RememberedBrowserToken), "{bad}");
        }
        let user = UserId::new("u").unwrap();
        let expires = UnixTime::from_secs(1_000);
        let record = RememberedBrowserRecord {
            id,
            user: user.clone(),
            key_id: KeyId::new("k").unwrap(),
            hash: hash(&[1; 32], id, &user, expires, true, &[0xab; 32]),
            created_at: UnixTime::EPOCH,
            expires_at: expires,
            last_used_at: None,
            skips_second_factor: true,
        };
        assert!(matches(&record, &[1; 32], &[0xab; 32]));
        assert!(!matches(&record, &[2; 32], &[0xab; 32]));
        assert!(!matches(&record, &[1; 32], &[0xac; 32]));
        // The row moved to another user, given a later expiry, or under another id: no match.
        let moved = RememberedBrowserRecord {
            user: UserId::new("v").unwrap(),
            ..record.clone()
        };
        let extended = RememberedBrowserRecord {
            expires_at: expires.plus_secs(86_400),
            ..record.clone()
        };
        let renamed = RememberedBrowserRecord {
            id: RememberedBrowserId::from_bytes([8; 16]),
            ..record.clone()
        };
        // A known browser's row turned into a remembered one (or back): no match either way.
        let promoted = RememberedBrowserRecord {
            skips_second_factor: false,
            ..record.clone()
        };
        let known = RememberedBrowserRecord {
            skips_second_factor: false,
            hash: hash(&[1; 32], id, &user, expires, false, &[0xab; 32]),
            ..record.clone()
        };
        assert!(matches(&known, &[1; 32], &[0xab; 32]));
        let demoted = RememberedBrowserRecord {
            skips_second_factor: true,
            ..known.clone()
        };
        for altered in [moved, extended, renamed, promoted, demoted] {
            assert!(!matches(&altered, &[1; 32], &[0xab; 32]), "{altered:?}");
        }
        assert!(
            !format!("{record:?}").contains(&format!("{:?}", record.hash[0]))
                || format!("{record:?}").contains("REDACTED")
        );
    }
}
