//! Sealing secrets at rest with XChaCha20-Poly1305 under host-provided keys that carry an id.
//!
//! A sealed blob is `version (1) | key id length (1) | key id | nonce (24) | ciphertext + tag`.
//! The associated data binds the blob to its purpose, its user and its device: a blob copied to
//! another user's or device's row does not open. The key id lets keys rotate: seal with the
//! current key, open with any key the [`Keyring`] still holds.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{ConfigError, Error, SealError};
use crate::id::{DeviceId, UserId};
use crate::rng::Rng;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The name of a sealing key, stored beside every blob it sealed (1..=64 printable ASCII).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Validates and wraps a key id such as `"2026-11"`.
    ///
    /// # Errors
    ///
    /// [`SealError::KeyId`] if it is empty, longer than 64 bytes or not printable ASCII.
    pub fn new(id: impl Into<String>) -> Result<Self, SealError> {
        let id = id.into();
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SealError::KeyId);
        }
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 256-bit sealing key and its id. Zeroized on drop; `Debug` shows the id only.
///
/// The MAC keys derived from it (for backup-code hashes and remember-this-browser tokens) are
/// derived once, when the key is made, not per use.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SealingKey {
    #[zeroize(skip)]
    id: KeyId,
    key: [u8; 32],
    /// `HMAC-SHA256(key, "multifactor/v1/mac/" ‖ purpose)` for each of [`MAC_PURPOSES`].
    derived: [[u8; 32]; 8],
}

/// The purposes MAC keys are derived for, in the order of [`SealingKey::derived`].
pub(crate) const MAC_PURPOSES: [&str; 8] = [
    BACKUP_CODES_PURPOSE,
    REMEMBERED_BROWSER_PURPOSE,
    MISS_PURPOSE,
    PASSWORDLESS_PURPOSE,
    TOTP_FINGERPRINT_PURPOSE,
    SESSION_PURPOSE,
    SENT_CODE_PURPOSE,
    DESTINATION_FINGERPRINT_PURPOSE,
];
/// The purpose of the key backup-code hashes are keyed with.
pub(crate) const BACKUP_CODES_PURPOSE: &str = "backup-codes";
/// The MAC purpose of remember-this-browser tokens.
pub(crate) const REMEMBERED_BROWSER_PURPOSE: &str = "trusted-device";
/// Fingerprints of wrong codes (see [`ThrottleState::last_miss`](crate::store::ThrottleState::last_miss)).
pub(crate) const MISS_PURPOSE: &str = "miss-fingerprint";
/// Tags of passwordless ceremonies (see [`PasswordlessCeremony`](crate::webauthn::PasswordlessCeremony)).
pub(crate) const PASSWORDLESS_PURPOSE: &str = "passwordless-ceremony";
/// Fingerprints of TOTP secrets (see [`TotpRecord::fingerprint`](crate::store::TotpRecord::fingerprint)).
pub(crate) const TOTP_FINGERPRINT_PURPOSE: &str = "totp-fingerprint";
/// Tags of session evidence (see [`Mfa::seal_session`](crate::Mfa::seal_session)).
pub(crate) const SESSION_PURPOSE: &str = "session-evidence";
/// The purpose of a key's check value (see [`Keyring::key_check`]).
const KEY_CHECK_PURPOSE: &str = "key-check";
/// Hashes of codes sent by email or SMS (see [`IssuedCode::digest`](crate::sent_code::IssuedCode::digest)).
pub(crate) const SENT_CODE_PURPOSE: &str = "sent-code";
/// Fingerprints of destinations (see [`SentCodeRecord::fingerprint`](crate::sent_code::SentCodeRecord::fingerprint)).
pub(crate) const DESTINATION_FINGERPRINT_PURPOSE: &str = "destination-fingerprint";
/// The sealing purpose of email addresses and phone numbers that receive codes.
pub(crate) const DESTINATION_PURPOSE: &str = "sent-code-destination";
/// The sealing purpose of TOTP secrets (bound into their associated data).
pub(crate) const TOTP_SECRET_PURPOSE: &str = "totp-secret";

impl SealingKey {
    /// A key from 32 bytes the host keeps secret (from a KMS, a secrets manager, an env var...).
    pub fn new(id: KeyId, key: [u8; 32]) -> Self {
        let derived = MAC_PURPOSES.map(|purpose| derive(&key, purpose));
        Self { id, key, derived }
    }

    /// A key from a slice, which must be exactly 32 bytes.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Keyring`] if the slice is not 32 bytes long.
    pub fn from_slice(id: KeyId, key: &[u8]) -> Result<Self, ConfigError> {
        let key: Zeroizing<[u8; 32]> = Zeroizing::new(
            key.try_into()
                .map_err(|_| ConfigError::Keyring("a sealing key must be exactly 32 bytes"))?,
        );
        Ok(Self::new(id, *key))
    }

    /// A key from 64 hexadecimal digits (how keys usually travel in environment variables).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Keyring`] if the text is not exactly 64 hexadecimal digits.
    pub fn from_hex(id: KeyId, hex: &str) -> Result<Self, ConfigError> {
        let bad = ConfigError::Keyring("a sealing key must be 64 hexadecimal digits");
        let hex = hex.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        for (i, byte) in key.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or(bad.clone())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad.clone())?;
        }
        Ok(Self::new(id, *key))
    }

    /// A fresh random key, for tests and first setup (store it; losing it loses every secret).
    ///
    /// # Errors
    ///
    /// [`Error::Rng`] if the generator fails.
    pub fn generate(id: KeyId, rng: &impl Rng) -> Result<Self, Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(key.as_mut())?;
        Ok(Self::new(id, *key))
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("id", &self.id)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// `HMAC-SHA256(key, "multifactor/v1/mac/" ‖ purpose)`.
fn derive(key: &[u8; 32], purpose: &str) -> [u8; 32] {
    hmac_sha256(key, &[b"multifactor/v1/mac/", purpose.as_bytes()])
}

/// `HMAC-SHA256(key, parts concatenated)`, for the MAC keys [`Keyring::mac_key`] derives.
pub(crate) fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, KeyInit, Mac};
    // HMAC takes keys of any length: the error branch cannot happen.
    let Ok(mut mac) = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key) else {
        return [0; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The keys the service seals with (the current one) and opens with (all of them).
#[derive(Debug, Clone)]
pub struct Keyring {
    current: SealingKey,
    previous: Vec<SealingKey>,
}

impl Keyring {
    /// A keyring that seals and opens with `current`.
    pub fn new(current: SealingKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds an older key that can still open blobs sealed under it (for rotation).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Keyring`] if a key with the same id is already in the ring.
    pub fn with_previous(mut self, key: SealingKey) -> Result<Self, ConfigError> {
        if self.get(key.id()).is_some() {
            return Err(ConfigError::Keyring("two keys with the same id"));
        }
        self.previous.push(key);
        Ok(self)
    }

    /// The id of the key new blobs are sealed with.
    pub fn current_id(&self) -> &KeyId {
        &self.current.id
    }

    fn get(&self, id: &KeyId) -> Option<&SealingKey> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| &k.id == id)
    }

    /// Every key id of the ring, the current one first.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &KeyId> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .map(|k| &k.id)
    }

    /// The check value of the key `id`: `HMAC-SHA256(key, "multifactor/v1/mac/key-check")`,
    /// which a store keeps per key id so that other bytes under the same id are refused
    /// ([`Mfa::check_keys`](crate::Mfa::check_keys)). It tells nothing about the key.
    pub(crate) fn key_check(&self, id: &KeyId) -> Option<[u8; 32]> {
        self.get(id).map(|k| derive(&k.key, KEY_CHECK_PURPOSE))
    }

    /// The 256-bit MAC key for `purpose` (one of [`MAC_PURPOSES`]) derived from the key `id`
    /// when it was made, or `None` if the ring has no such key.
    pub(crate) fn mac_key(&self, id: &KeyId, purpose: &str) -> Option<&[u8; 32]> {
        let key = self.get(id)?;
        let index = MAC_PURPOSES.iter().position(|p| *p == purpose)?;
        key.derived.get(index)
    }

    /// Seals `plaintext` for `context` under the current key with a random nonce.
    pub(crate) fn seal(
        &self,
        rng: &impl Rng,
        context: &SealContext<'_>,
        plaintext: &[u8],
    ) -> Result<SealedSecret, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.try_fill_bytes(&mut nonce)?;
        let cipher = XChaCha20Poly1305::new(&self.current.key.into());
        let aad = context.associated_data();
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Integrity)?;
        Ok(SealedSecret {
            key_id: self.current.id.clone(),
            nonce,
            ciphertext,
        })
    }

    /// Opens a blob sealed for `context` under any key of the ring.
    pub(crate) fn open(
        &self,
        context: &SealContext<'_>,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let key = self
            .get(&sealed.key_id)
            .ok_or_else(|| SealError::UnknownKey(sealed.key_id.0.clone()))?;
        let cipher = XChaCha20Poly1305::new(&key.key.into());
        let aad = context.associated_data();
        cipher
            .decrypt(
                &XNonce::from(sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Integrity)
    }
}

/// What a sealed blob is bound to: its purpose, user and device.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SealContext<'a> {
    pub(crate) purpose: &'static str,
    pub(crate) user: &'a UserId,
    pub(crate) device: DeviceId,
}

impl SealContext<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64 + self.user.as_str().len());
        aad.extend_from_slice(b"multifactor/v1/");
        aad.extend_from_slice(self.purpose.as_bytes());
        aad.push(0);
        // Length-prefixed so that no two (user, device) pairs give the same bytes.
        aad.extend_from_slice(&(self.user.as_str().len() as u32).to_be_bytes());
        aad.extend_from_slice(self.user.as_str().as_bytes());
        aad.extend_from_slice(self.device.as_bytes());
        aad
    }
}

/// A secret sealed at rest: what a store keeps instead of the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    key_id: KeyId,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl SealedSecret {
    /// The id of the key that sealed it.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The stable byte encoding a store keeps.
    pub fn to_bytes(&self) -> Vec<u8> {
        let id = self.key_id.0.as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + self.ciphertext.len());
        out.push(VERSION);
        out.push(id.len() as u8); // KeyId guarantees 1..=64 bytes.
        out.extend_from_slice(id);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses the encoding of [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    ///
    /// [`SealError::Malformed`] for a truncated blob, an unknown version or a bad key id.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        let (&version, rest) = bytes.split_first().ok_or(SealError::Malformed("empty"))?;
        if version != VERSION {
            return Err(SealError::Malformed("unknown version"));
        }
        let (&id_len, rest) = rest.split_first().ok_or(SealError::Malformed("truncated key id"))?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed("truncated"));
        }
        let (id, rest) = rest.split_at(id_len);
        let id = std::str::from_utf8(id).map_err(|_| SealError::Malformed("key id is not UTF-8"))?;
        let key_id = KeyId::new(id).map_err(|_| SealError::Malformed("invalid key id"))?;
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Malformed("truncated nonce"))?;
        Ok(Self {
            key_id,
            nonce,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_id", &self.key_id)
            .field("len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::InsecureSeededRng;

    fn ring(id: &str, byte: u8) -> Keyring {
        Keyring::new(SealingKey::new(KeyId::new(id).unwrap(), [byte; 32]))
    }

    fn ctx<'a>(user: &'a UserId, device: DeviceId) -> SealContext<'a> {
        SealContext {
            purpose: TOTP_SECRET_PURPOSE,
            user,
            device,
        }
    }

    #[test]
    fn round_trip_and_every_binding() {
        let rng = InsecureSeededRng::new(3);
        let alice = UserId::new("alice").unwrap();
        let bob = UserId::new("bob").unwrap();
        let d1 = DeviceId::from_bytes([1; 16]);
        let d2 = DeviceId::from_bytes([2; 16]);
        let keys = ring("k1", 9);
        let sealed = keys.seal(&rng, &ctx(&alice, d1), b"top secret").unwrap();
        assert_eq!(&*keys.open(&ctx(&alice, d1), &sealed).unwrap(), b"top secret");
        let bytes = sealed.to_bytes();
        assert!(!bytes.windows(10).any(|w| w == b"top secret"));
        let parsed = SealedSecret::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, sealed);
        // Another user, another device, another purpose: no.
        assert_eq!(keys.open(&ctx(&bob, d1), &sealed), Err(SealError::Integrity));
        assert_eq!(keys.open(&ctx(&alice, d2), &sealed), Err(SealError::Integrity));
        let other_purpose = SealContext {
            purpose: "other",
            ..ctx(&alice, d1)
        };
        assert_eq!(keys.open(&other_purpose, &sealed), Err(SealError::Integrity));
        // A key with the same id but other bytes: no.
        assert_eq!(ring("k1", 8).open(&ctx(&alice, d1), &sealed), Err(SealError::Integrity));
        // Unknown key id: a clear error.
        assert_eq!(
            ring("k2", 9).open(&ctx(&alice, d1), &sealed),
            Err(SealError::UnknownKey("k1".into()))
        );
        // Every single bit flipped past the key id fails authentication.
        for i in 4..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x01;
            let t = SealedSecret::from_bytes(&t).unwrap();
            assert_eq!(keys.open(&ctx(&alice, d1), &t), Err(SealError::Integrity), "byte {i}");
        }
    }

    #[test]
    fn rotation_opens_old_and_seals_new() {
        let rng = InsecureSeededRng::new(4);
        let alice = UserId::new("alice").unwrap();
        let d = DeviceId::from_bytes([1; 16]);
        let old = ring("old", 1);
        let sealed = old.seal(&rng, &ctx(&alice, d), b"s").unwrap();
        let new = Keyring::new(SealingKey::new(KeyId::new("new").unwrap(), [2; 32]))
            .with_previous(SealingKey::new(KeyId::new("old").unwrap(), [1; 32]))
            .unwrap();
        assert_eq!(&*new.open(&ctx(&alice, d), &sealed).unwrap(), b"s");
        assert_eq!(new.seal(&rng, &ctx(&alice, d), b"s").unwrap().key_id().as_str(), "new");
        assert!(
            new.clone()
                .with_previous(SealingKey::new(KeyId::new("new").unwrap(), [3; 32]))
                .is_err()
        );
    }

    #[test]
    fn malformed_blobs_are_typed_errors() {
        for bad in [&[][..], &[2], &[1], &[1, 5, b'a'], &[1, 0, 0, 0], &[1, 1, 0xff]] {
            assert!(
                matches!(SealedSecret::from_bytes(bad), Err(SealError::Malformed(_))),
                "{bad:?}"
            );
        }
        let mut blob = vec![1, 1, b'k'];
        blob.extend_from_slice(&[0; 24 + 15]);
        assert!(SealedSecret::from_bytes(&blob).is_err());
        blob.push(0);
        assert!(SealedSecret::from_bytes(&blob).is_ok());
        assert!(KeyId::new("").is_err() && KeyId::new("a b").is_err() && KeyId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn keys_from_hex() {
        let id = KeyId::new("k").unwrap();
        let key = SealingKey::from_hex(id.clone(), &"0a".repeat(32)).unwrap();
        assert_eq!(key.key, [10; 32]);
        for bad in ["", "0a", &"0g".repeat(32), &"0a".repeat(33), &"+a".repeat(32)] {
            assert!(SealingKey::from_hex(id.clone(), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = SealingKey::new(KeyId::new("k").unwrap(), [0xab; 32]);
        let shown = format!("{key:?} {:?}", Keyring::new(key.clone()));
        assert!(!shown.contains("171") && !shown.contains("ab, ab"), "{shown}");
    }
}
