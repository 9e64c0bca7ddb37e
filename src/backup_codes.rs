//! Backup codes: a set generated at once, shown once, stored only as keyed hashes, each usable once.
//!
//! Codes use the lower-case Crockford base32 alphabet (`0-9`, `a-z` without `i l o u`): 5 bits per
//! character, so the default 13 characters carry 65 bits: enough that guessing one online is
//! bounded by its entropy alone, so a right code is never held back by a throttle (see
//! [`throttle`](crate::throttle)). Input is forgiving: case, spaces and
//! hyphens are ignored and the look-alikes `o`, `i`, `l` read as `0`, `1`, `1` (and `u` as `v`,
//! so that codes imported from systems using the RFC 4648 alphabet can be typed; see [`import`]).
//!
//! A store sees only keyed hashes: `HMAC-SHA256(key = k ‖ salt ‖ set id, len(user) ‖ user ‖
//! code)`, where `k` is a MAC key derived for backup codes from a sealing key of the
//! [`Keyring`](crate::Keyring) (named by its id in the record), and the salt a random 128 bits
//! per set. A copy of the database alone gives an offline attacker nothing to test guesses
//! against (NIST SP 800-63B §5.1.2.2 for look-up secrets under 112 bits), and a hash moved to
//! another user's or another set's row no longer matches. Sets stored before schema v3 were
//! hashed as `HMAC-SHA256(salt ‖ pepper, code)` ([`CodeKey::Legacy`]); they keep working until
//! the user generates a new set.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConditionallySelectable};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::ct;
use crate::error::{ConfigError, Error, InputError};
use crate::id::{DeviceId, UserId};
use crate::rng::{Rng, uniform_below};
use crate::seal::KeyId;
use crate::secret::SecretString;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const GROUP: usize = 4;
/// Longest input looked at; anything longer is not a code.
const MAX_INPUT: usize = 128;

/// How many codes a set has and how long each is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupCodeConfig {
    count: usize,
    length: usize,
}

impl BackupCodeConfig {
    /// Default codes per set (the common default of authentik, Keycloak-like systems use more).
    pub const DEFAULT_COUNT: usize = 6;
    /// Default characters per code: 13, so 65 bits. At 64 bits or more a code needs no
    /// throttle (NIST SP 800-63B §5.1.2.2), so a right one is never held back: one character
    /// more than the 12 (60 bits) of before, in the same alphabet without look-alikes, shown
    /// as `abcd-efgh-jkmnp`. Shorter codes (down to [`MIN_LENGTH`](Self::MIN_LENGTH)) stay
    /// throttled.
    pub const DEFAULT_LENGTH: usize = 13;
    /// Fewest codes per set.
    pub const MIN_COUNT: usize = 1;
    /// Most codes per set.
    pub const MAX_COUNT: usize = 32;
    /// Shortest code: 12 characters are 60 bits (throttled like TOTP: under 64 bits).
    pub const MIN_LENGTH: usize = 12;
    /// Longest code.
    pub const MAX_LENGTH: usize = 32;

    /// A configuration of `count` codes of `length` characters.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BackupCodeCount`] or [`ConfigError::BackupCodeLength`] when out of bounds.
    pub fn new(count: usize, length: usize) -> Result<Self, ConfigError> {
        if !(Self::MIN_COUNT..=Self::MAX_COUNT).contains(&count) {
            return Err(ConfigError::BackupCodeCount {
                got: count,
                min: Self::MIN_COUNT,
                max: Self::MAX_COUNT,
            });
        }
        if !(Self::MIN_LENGTH..=Self::MAX_LENGTH).contains(&length) {
            return Err(ConfigError::BackupCodeLength {
                got: length,
                min: Self::MIN_LENGTH,
                max: Self::MAX_LENGTH,
            });
        }
        Ok(Self { count, length })
    }

    /// Codes per set.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Characters per code (without the grouping hyphens).
    pub fn length(&self) -> usize {
        self.length
    }
}

impl Default for BackupCodeConfig {
    fn default() -> Self {
        Self {
            count: Self::DEFAULT_COUNT,
            length: Self::DEFAULT_LENGTH,
        }
    }
}

/// A host-provided secret mixed into every backup-code hash, kept outside the database.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Pepper(Vec<u8>);

impl Pepper {
    /// A pepper from secret bytes (at least 16 are recommended).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([REDACTED])")
    }
}

/// One plain backup code, grouped for reading (`abcd-efgh-jkmnp`). Shown to the user once.
#[derive(Clone)]
pub struct BackupCode(SecretString);

impl BackupCode {
    /// The code as the user should see it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for BackupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupCode([REDACTED])")
    }
}

/// What a set's code hashes are keyed with.
#[derive(Clone, Copy)]
pub enum CodeKey<'a> {
    /// The MAC key derived from the sealing key `key_id`, bound to the set's user and id.
    Keyed {
        /// The sealing key the MAC key was derived from (recorded in the set).
        key_id: &'a KeyId,
        /// The derived MAC key.
        key: &'a [u8; 32],
        /// The set's user.
        user: &'a UserId,
        /// The set's id.
        set: DeviceId,
    },
    /// A set from before schema v3: `HMAC-SHA256(salt ‖ pepper, code)`.
    Legacy(Option<&'a Pepper>),
}

impl fmt::Debug for CodeKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keyed { key_id, user, set, .. } => f
                .debug_struct("Keyed")
                .field("key_id", key_id)
                .field("key", &"[REDACTED]")
                .field("user", user)
                .field("set", set)
                .finish(),
            Self::Legacy(_) => f.write_str("Legacy([REDACTED])"),
        }
    }
}

/// One stored code: its keyed hash and whether it was used.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeSlot {
    /// The keyed hash of the code (see the [module docs](self)).
    pub hash: [u8; 32],
    /// True once the code was spent.
    pub used: bool,
}

impl fmt::Debug for CodeSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeSlot")
            .field("hash", &"[REDACTED]")
            .field("used", &self.used)
            .finish()
    }
}

/// What a store keeps of a backup-code set: salt, code length, and one slot per code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupCodeRecord {
    /// The sealing key the hashes' MAC key derives from; `None` for a set hashed before schema
    /// v3 ([`CodeKey::Legacy`]).
    pub key_id: Option<KeyId>,
    /// Random per-set salt.
    pub salt: [u8; 16],
    /// Characters per code, without hyphens.
    pub code_length: u8,
    /// The codes' hashes and used flags, in generation order.
    pub slots: Vec<CodeSlot>,
    /// `None` for codes hashed as written (ours, and imported plaintext codes); for a set
    /// imported from hashes another system kept, what it hashed the codes with (the keyed hash
    /// is then over that digest).
    pub prehash: Option<Prehash>,
}

/// How another system hashed the codes of a set imported from its hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Prehash {
    /// Keycloak's recovery codes: unsalted SHA-512 of the code as Keycloak generated it (upper
    /// case letters and digits, without separators). Its alphabet has `I`, `L` and `1`, so no
    /// look-alikes are folded: case, spaces and hyphens are all that is ignored.
    KeycloakSha512,
}

impl Prehash {
    /// A stable name, for storage: `"keycloak-sha512"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::KeycloakSha512 => "keycloak-sha512",
        }
    }

    /// The prehash named `name` (as [`Prehash::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        (name == "keycloak-sha512").then_some(Self::KeycloakSha512)
    }
}

impl BackupCodeRecord {
    /// Bits each code carries: 5 per character (32 symbols; imported codes come from 32-symbol
    /// alphabets too).
    pub fn bits_per_code(&self) -> u32 {
        u32::from(self.code_length) * 5
    }

    /// Codes not yet used.
    pub fn remaining(&self) -> usize {
        self.slots.iter().filter(|s| !s.used).count()
    }

    /// Bit `i` set while code `i` is unused (for the first 63 codes; a set has at most 32).
    pub fn unused_mask(&self) -> u64 {
        self.slots
            .iter()
            .take(63)
            .enumerate()
            .filter(|(_, s)| !s.used)
            .fold(0, |mask, (i, _)| mask | (1 << i))
    }
}

/// Generates a set: the plain codes (to show once) and the record to store.
///
/// # Errors
///
/// [`Error::Rng`] if the generator fails.
pub fn generate(
    rng: &impl Rng,
    config: &BackupCodeConfig,
    key: &CodeKey<'_>,
) -> Result<(Vec<BackupCode>, BackupCodeRecord), Error> {
    let mut salt = [0u8; 16];
    rng.try_fill_bytes(&mut salt)?;
    let mut codes = Vec::with_capacity(config.count);
    let mut slots = Vec::with_capacity(config.count);
    while slots.len() < config.count {
        let mut canonical = Zeroizing::new(String::with_capacity(config.length));
        for _ in 0..config.length {
            let i = uniform_below(rng, ALPHABET.len() as u16)?;
            canonical.push(char::from(ALPHABET[usize::from(i)]));
        }
        let hash = digest(key, &salt, canonical.as_bytes());
        // A repeat inside one set (probability ~2^-55) would make two slots one code.
        if slots.iter().any(|s: &CodeSlot| s.hash == hash) {
            continue;
        }
        slots.push(CodeSlot { hash, used: false });
        codes.push(BackupCode(SecretString::from(group(&canonical))));
    }
    let record = BackupCodeRecord {
        key_id: match key {
            CodeKey::Keyed { key_id, .. } => Some((*key_id).clone()),
            CodeKey::Legacy(_) => None,
        },
        salt,
        code_length: config.length as u8, // bounded by MAX_LENGTH
        slots,
        prehash: None,
    };
    Ok((codes, record))
}

/// Shortest imported code taken in: 8 characters of a 32-letter alphabet are 40 bits, what
/// django-otp's static tokens carry.
pub const MIN_IMPORTED_LENGTH: usize = 8;

/// The record for codes another system generated (django-otp's and authentik's static tokens),
/// hashed as [`generate`] hashes its own: the plain codes are not kept.
///
/// Each code is read as [`normalize`] reads input, so the user types it as before: case,
/// spaces and hyphens do not matter. All codes of a set must have the same length.
///
/// # Errors
///
/// [`InputError::ImportedCodes`] for an empty or too large set, codes of different or
/// unsupported lengths, characters outside letters and digits, or a code given twice;
/// [`Error::Rng`] if the generator fails.
pub fn import(rng: &impl Rng, codes: &[&str], key: &CodeKey<'_>) -> Result<BackupCodeRecord, Error> {
    let canonical = check_imported(codes)?;
    let length = canonical.first().map_or(0, |c| c.len());
    let mut salt = [0u8; 16];
    rng.try_fill_bytes(&mut salt)?;
    let slots = canonical
        .iter()
        .map(|code| CodeSlot {
            hash: digest(key, &salt, code.as_bytes()),
            used: false,
        })
        .collect();
    Ok(BackupCodeRecord {
        key_id: match key {
            CodeKey::Keyed { key_id, .. } => Some((*key_id).clone()),
            CodeKey::Legacy(_) => None,
        },
        salt,
        code_length: u8::try_from(length).unwrap_or(u8::MAX), // at most MAX_LENGTH
        slots,
        prehash: None,
    })
}

/// The length of Keycloak's recovery codes (`RecoveryAuthnCodesUtils`: 12 of
/// `ABCDEFGHIJKLMNPQRSTUVWXYZ123456789`).
pub const KEYCLOAK_CODE_LENGTH: u8 = 12;

/// The record for codes another system kept only as digests (Keycloak's recovery codes: the
/// SHA-512 of each). The keyed hash is taken over each digest, bound to the user and set as
/// ours are, so no plaintext is needed and a copy of this database still gives nothing to test
/// guesses against. A code is typed as it was shown there.
///
/// # Errors
///
/// [`InputError::ImportedCodes`] for an empty or too large set or a digest given twice;
/// [`Error::Rng`] if the generator fails.
pub fn import_prehashed(
    rng: &impl Rng,
    prehash: Prehash,
    digests: &[[u8; 64]],
    key: &CodeKey<'_>,
) -> Result<BackupCodeRecord, Error> {
    check_prehashed(digests)?;
    let mut salt = [0u8; 16];
    rng.try_fill_bytes(&mut salt)?;
    let Prehash::KeycloakSha512 = prehash;
    Ok(BackupCodeRecord {
        key_id: match key {
            CodeKey::Keyed { key_id, .. } => Some((*key_id).clone()),
            CodeKey::Legacy(_) => None,
        },
        salt,
        code_length: KEYCLOAK_CODE_LENGTH,
        slots: digests
            .iter()
            .map(|d| CodeSlot {
                hash: digest(key, &salt, d),
                used: false,
            })
            .collect(),
        prehash: Some(prehash),
    })
}

/// The checks of [`import_prehashed`]: 1 to 32 digests, none twice.
///
/// # Errors
///
/// [`InputError::ImportedCodes`].
pub fn check_prehashed(digests: &[[u8; 64]]) -> Result<(), InputError> {
    if digests.is_empty() || digests.len() > BackupCodeConfig::MAX_COUNT {
        return Err(InputError::ImportedCodes("a set must have 1 to 32 codes"));
    }
    for (i, d) in digests.iter().enumerate() {
        if digests[..i].iter().any(|e| ct::eq_bytes(e, d)) {
            return Err(InputError::ImportedCodes("a code is given twice"));
        }
    }
    Ok(())
}

/// Whether `record` holds exactly the unused codes whose digests are `digests` (an import of
/// hashes run a second time).
pub fn holds_exactly_prehashed(record: &BackupCodeRecord, digests: &[[u8; 64]], key: &CodeKey<'_>) -> bool {
    record.prehash.is_some()
        && record.slots.len() == digests.len()
        && digests.iter().all(|d| {
            let candidate = digest(key, &record.salt, d);
            record
                .slots
                .iter()
                .any(|s| !s.used && bool::from(ct::eq32(&candidate, &s.hash)))
        })
}

/// A code typed for a Keycloak set as Keycloak hashed it: upper case, without spaces or
/// hyphens, if it has the shape of Keycloak's codes. Nothing else is folded: two inputs that
/// differ are two guesses.
fn keycloak_raw(input: &str) -> Option<Zeroizing<String>> {
    if input.len() > MAX_INPUT {
        return None;
    }
    let mut raw = Zeroizing::new(String::with_capacity(usize::from(KEYCLOAK_CODE_LENGTH)));
    for c in input.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        if !c.is_ascii_alphanumeric() {
            return None;
        }
        raw.push(c.to_ascii_uppercase());
    }
    (raw.len() == usize::from(KEYCLOAK_CODE_LENGTH)).then_some(raw)
}

/// The input as the set compares it: [`normalize`]d for our own and imported plaintext codes,
/// or as another system hashed it for a set of its digests. Distinct results are distinct
/// guesses (what a wrong code's fingerprint is taken over).
///
/// # Errors
///
/// [`InputError::CodeFormat`] when the input cannot be a code of this set.
pub fn canonical_input(record: &BackupCodeRecord, input: &str) -> Result<Zeroizing<String>, InputError> {
    match record.prehash {
        None => normalize(input, usize::from(record.code_length)),
        Some(Prehash::KeycloakSha512) => keycloak_raw(input).ok_or(InputError::CodeFormat {
            expected: "the 12 letters and digits of the recovery code (spaces and hyphens are ignored)",
        }),
    }
}

/// SHA-512 of a code typed for a Keycloak set, if it has the shape of Keycloak's codes.
fn keycloak_digest(input: &str) -> Option<Zeroizing<[u8; 64]>> {
    let raw = keycloak_raw(input)?;
    let mut out = Zeroizing::new([0u8; 64]);
    out.copy_from_slice(&<sha2::Sha512 as sha2::Digest>::digest(raw.as_bytes()));
    Some(out)
}

/// The checks of [`import`] without hashing: the codes in canonical form.
///
/// # Errors
///
/// [`InputError::ImportedCodes`], as for [`import`].
pub fn check_imported(codes: &[&str]) -> Result<Vec<Zeroizing<String>>, InputError> {
    if codes.is_empty() || codes.len() > BackupCodeConfig::MAX_COUNT {
        return Err(InputError::ImportedCodes("a set must have 1 to 32 codes"));
    }
    let mut canonical: Vec<Zeroizing<String>> = Vec::with_capacity(codes.len());
    for code in codes {
        let length = code.chars().filter(|c| !c.is_whitespace() && *c != '-').count();
        if !(MIN_IMPORTED_LENGTH..=BackupCodeConfig::MAX_LENGTH).contains(&length) {
            return Err(InputError::ImportedCodes(
                "each code must have 8 to 32 letters or digits",
            ));
        }
        let code =
            normalize(code, length).map_err(|_| InputError::ImportedCodes("codes must be letters and digits only"))?;
        if canonical.first().is_some_and(|first| first.len() != code.len()) {
            return Err(InputError::ImportedCodes(
                "all codes of a set must have the same length",
            ));
        }
        if canonical.iter().any(|c| ct::eq_bytes(c.as_bytes(), code.as_bytes())) {
            return Err(InputError::ImportedCodes(
                "a code is given twice (or two that differ only in case or look-alike letters)",
            ));
        }
        canonical.push(code);
    }
    Ok(canonical)
}

/// Whether `record` holds exactly the unused codes `codes` (an import run a second time).
pub fn holds_exactly(record: &BackupCodeRecord, codes: &[&str], key: &CodeKey<'_>) -> bool {
    record.slots.len() == codes.len()
        && codes
            .iter()
            .all(|code| matches!(evaluate(record, code, key), Ok(CodeMatch::Unused(_))))
}

/// What a backup code matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeMatch {
    /// No code of the set.
    None,
    /// This unused slot.
    Unused(usize),
    /// A code of the set that was already spent: someone else may hold the printout.
    Used,
}

/// Checks `input` against every slot, used or not, in constant time and without an early exit.
///
/// The caller settles a [`CodeMatch::Unused`] slot atomically in the store; only a successful
/// settlement is an acceptance.
///
/// # Errors
///
/// [`InputError::CodeFormat`] when the input cannot be a code of this set (wrong length or
/// characters). That is decided from the shape alone, before any secret is touched.
pub fn evaluate(record: &BackupCodeRecord, input: &str, key: &CodeKey<'_>) -> Result<CodeMatch, InputError> {
    let candidate = match record.prehash {
        None => digest(
            key,
            &record.salt,
            normalize(input, usize::from(record.code_length))?.as_bytes(),
        ),
        Some(Prehash::KeycloakSha512) => {
            let prehashed = keycloak_digest(input).ok_or(InputError::CodeFormat {
                expected: "the 12 letters and digits of the recovery code (spaces and hyphens are ignored)",
            })?;
            digest(key, &record.salt, prehashed.as_slice())
        }
    };
    let mut found = Choice::from(0);
    let mut spent = Choice::from(0);
    let mut index = 0u32;
    for (i, slot) in record.slots.iter().enumerate() {
        let equal = ct::eq32(&candidate, &slot.hash);
        let unused = Choice::from(u8::from(!slot.used));
        index.conditional_assign(&(i as u32), equal & unused);
        found |= equal & unused;
        spent |= equal & !unused;
    }
    Ok(if bool::from(found) {
        CodeMatch::Unused(index as usize)
    } else if bool::from(spent) {
        CodeMatch::Used
    } else {
        CodeMatch::None
    })
}

/// Checks `input` against every slot: the matching unused slot, or `None` ([`evaluate`]
/// without the difference between a wrong code and a spent one).
///
/// # Errors
///
/// [`InputError::CodeFormat`] when the input cannot be a code of this set.
pub fn verify(record: &BackupCodeRecord, input: &str, key: &CodeKey<'_>) -> Result<Option<usize>, InputError> {
    Ok(match evaluate(record, input, key)? {
        CodeMatch::Unused(slot) => Some(slot),
        _ => None,
    })
}

/// Brings user input to canonical form: no spaces or hyphens, lower case, look-alikes mapped.
///
/// # Errors
///
/// [`InputError::CodeFormat`] if the result is not `length` characters of the alphabet;
/// [`InputError::AuthenticatorCodeAsBackupCode`] if it is not, and the input is 6 to 8 digits.
pub fn normalize(input: &str, length: usize) -> Result<Zeroizing<String>, InputError> {
    const EXPECTED: &str = "letters and digits of the backup code (spaces and hyphens are ignored)";
    let err = InputError::CodeFormat { expected: EXPECTED };
    if input.len() > MAX_INPUT {
        return Err(err);
    }
    let mut out = Zeroizing::new(String::with_capacity(length));
    for c in input.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        let c = match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            // Not in the alphabet; imported RFC 4648 base32 codes may have it.
            'u' => 'v',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return Err(err),
        };
        out.push(c);
    }
    if out.len() != length {
        // 6 to 8 digits typed as they were: most likely the authenticator app's code, in the
        // wrong field. Say so, since the user has the right thing in hand.
        let typed = || input.chars().filter(|c| !c.is_whitespace() && *c != '-');
        if (6..=8).contains(&typed().count()) && typed().all(|c| c.is_ascii_digit()) {
            return Err(InputError::AuthenticatorCodeAsBackupCode);
        }
        return Err(err);
    }
    Ok(out)
}

/// The keyed hash of one code (see the [module docs](self)). One HMAC-SHA256, as cheap as a
/// plain one: the key (`k ‖ salt ‖ set id`) is exactly one block, so it is not hashed first, and
/// the message (`len(user) ‖ user ‖ code`) fits one block for user ids up to 42 bytes with the
/// default code length. Domain separation comes from `k`, which is derived for this purpose only.
fn digest(key: &CodeKey<'_>, salt: &[u8; 16], canonical: &[u8]) -> [u8; 32] {
    let (user, mac_key) = match key {
        CodeKey::Keyed { key, user, set, .. } => {
            let mut mac_key = Zeroizing::new([0u8; 64]);
            mac_key[..32].copy_from_slice(*key);
            mac_key[32..48].copy_from_slice(salt);
            mac_key[48..].copy_from_slice(set.as_bytes());
            (Some(*user), mac_key)
        }
        CodeKey::Legacy(pepper) => {
            // The v2 hash: HMAC(salt ‖ pepper, code), the pepper of any length.
            let mut legacy = Zeroizing::new(Vec::with_capacity(16 + pepper.map_or(0, |p| p.0.len())));
            legacy.extend_from_slice(salt);
            if let Some(p) = pepper {
                legacy.extend_from_slice(&p.0);
            }
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&legacy) else {
                return [0; 32];
            };
            mac.update(canonical);
            return mac.finalize().into_bytes().into();
        }
    };
    // HMAC accepts keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(mac_key.as_slice()) else {
        return [0; 32];
    };
    if let Some(user) = user {
        let user = user.as_str().as_bytes();
        // User ids are at most 255 bytes (UserId's rule): one length byte suffices.
        mac.update(&[u8::try_from(user.len()).unwrap_or(u8::MAX)]);
        mac.update(user);
    }
    mac.update(canonical);
    mac.finalize().into_bytes().into()
}

/// Groups of four for reading (`abcd-efgh-jkmn`); a single character left over joins the last
/// group (`abcd-efgh-jkmnp`) rather than standing alone.
fn group(canonical: &str) -> Zeroizing<String> {
    let len = canonical.chars().count();
    let mut out = Zeroizing::new(String::with_capacity(len + len / GROUP));
    for (i, c) in canonical.chars().enumerate() {
        if i > 0 && i % GROUP == 0 && i + 1 != len {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// A freshly generated backup-code set: show the codes once.
#[derive(Debug)]
pub struct BackupCodeSet {
    /// The set's device id.
    pub device: DeviceId,
    /// The plain codes, grouped for reading.
    pub codes: Vec<BackupCode>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::InsecureSeededRng;
    use proptest::prelude::*;

    /// The key tests hash with: a fixed MAC key, for alice's set 0x42….
    fn key() -> CodeKey<'static> {
        keyed(&[7; 32], "alice", 0x42)
    }

    fn keyed(mac: &[u8; 32], user: &str, set: u8) -> CodeKey<'static> {
        CodeKey::Keyed {
            key_id: Box::leak(Box::new(KeyId::new("k1").unwrap())),
            key: Box::leak(Box::new(*mac)),
            user: Box::leak(Box::new(UserId::new(user).unwrap())),
            set: DeviceId::from_bytes([set; 16]),
        }
    }

    fn set() -> (Vec<BackupCode>, BackupCodeRecord) {
        generate(&InsecureSeededRng::new(1), &BackupCodeConfig::default(), &key()).unwrap()
    }

    #[test]
    fn default_set_shape() {
        let (codes, record) = set();
        assert_eq!(codes.len(), 6);
        assert_eq!(record.remaining(), 6);
        for c in &codes {
            let s = c.expose_secret();
            assert_eq!(s.len(), 15, "{s}");
            assert_eq!(s.matches('-').count(), 2);
            assert!(s.chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))));
        }
        // 13 characters of a 32-letter alphabet: 65 bits, past the 64 that need no throttle.
        const { assert!(BackupCodeConfig::DEFAULT_LENGTH * 5 >= 64) };
        const { assert!(BackupCodeConfig::MIN_LENGTH * 5 >= 60) };
    }

    #[test]
    fn each_code_matches_its_own_slot_only() {
        let (codes, record) = set();
        for (i, c) in codes.iter().enumerate() {
            assert_eq!(verify(&record, c.expose_secret(), &key()).unwrap(), Some(i));
        }
    }

    #[test]
    fn used_slots_never_match() {
        let (codes, mut record) = set();
        record.slots[2].used = true;
        assert_eq!(verify(&record, codes[2].expose_secret(), &key()).unwrap(), None);
        assert_eq!(verify(&record, codes[3].expose_secret(), &key()).unwrap(), Some(3));
    }

    #[test]
    fn lenient_input() {
        let (codes, record) = set();
        let plain: String = codes[0].expose_secret().replace('-', "");
        let shouty = format!("  {} ", plain.to_uppercase());
        let spaced: String = plain.chars().flat_map(|c| [c, ' ']).collect();
        for input in [shouty, spaced] {
            assert_eq!(verify(&record, &input, &key()).unwrap(), Some(0), "{input}");
        }
        let look_alike = plain.replace('0', "O").replace('1', "l").replace('v', "u");
        assert_eq!(verify(&record, &look_alike, &key()).unwrap(), Some(0));
    }

    #[test]
    fn wrong_codes_and_tampering() {
        let (codes, record) = set();
        let code = codes[0].expose_secret().replace('-', "");
        for i in 0..code.len() {
            let mut t: Vec<u8> = code.clone().into_bytes();
            t[i] = if t[i] == b'a' { b'b' } else { b'a' };
            let t = String::from_utf8(t).unwrap();
            assert_eq!(verify(&record, &t, &key()).unwrap(), None, "position {i}");
        }
        // The hash is bound to the MAC key, the user and the set: a row moved to another user
        // or set, or checked under another key, matches nothing.
        for other in [
            keyed(&[8; 32], "alice", 0x42),
            keyed(&[7; 32], "bob", 0x42),
            keyed(&[7; 32], "alice", 0x43),
        ] {
            assert_eq!(verify(&record, &code, &other).unwrap(), None, "{other:?}");
        }
        assert_eq!(verify(&record, &code, &CodeKey::Legacy(None)).unwrap(), None);
        // Tampered stored hash.
        let mut bad = record.clone();
        bad.slots[0].hash[31] ^= 1;
        assert_eq!(verify(&bad, &code, &key()).unwrap(), None);
        // Tampered salt.
        let mut bad = record.clone();
        bad.salt[0] ^= 1;
        assert_eq!(verify(&bad, &code, &key()).unwrap(), None);
    }

    #[test]
    fn imported_codes_verify_as_typed_and_once_each() {
        // django-otp's lower-case RFC 4648 base32 (with `u`, `i`, `l`, `o`), authentik's mixed case.
        let codes = ["aebagbaf", "mfzwizlu", "onxw2zlv"];
        let record = import(&InsecureSeededRng::new(1), &codes, &key()).unwrap();
        assert_eq!((record.code_length, record.slots.len()), (8, 3));
        for (i, code) in codes.iter().enumerate() {
            assert_eq!(
                verify(&record, &code.to_uppercase(), &key()).unwrap(),
                Some(i),
                "{code}"
            );
        }
        assert!(holds_exactly(&record, &codes, &key()));
        assert!(!holds_exactly(&record, &codes[..2], &key()));
        assert!(!holds_exactly(&record, &["aebagbaf", "mfzwizlu", "aaaaaaaa"], &key()));
        let mut used = record.clone();
        used.slots[0].used = true;
        assert!(
            !holds_exactly(&used, &codes, &key()),
            "a spent code is not the imported set"
        );
        let mixed = import(&InsecureSeededRng::new(1), &["k3Vq9ZsR0bTw"], &key()).unwrap();
        assert_eq!(verify(&mixed, "K3VQ-9ZSR-0BTW", &key()).unwrap(), Some(0));
        // The plain codes are not in the record.
        assert!(!format!("{record:?}").contains("aebagbaf"));
    }

    #[test]
    fn imported_codes_that_cannot_be_a_set() {
        let cases: [(&[&str], &str); 6] = [
            (&[], "a set must have 1 to 32 codes"),
            (&["aebagbaf"; 33], "a set must have 1 to 32 codes"),
            (&["abc"], "each code must have 8 to 32 letters or digits"),
            (&["abcdefgh!"], "codes must be letters and digits only"),
            (
                &["abcdefgh", "abcdefghjk"],
                "all codes of a set must have the same length",
            ),
            (
                &["ABCDEFGH", "abcdefgh"],
                "a code is given twice (or two that differ only in case or look-alike letters)",
            ),
        ];
        for (codes, why) in cases {
            assert_eq!(
                check_imported(codes).err(),
                Some(InputError::ImportedCodes(why)),
                "{codes:?}"
            );
        }
        assert_eq!(
            check_imported(&["1oi10000", "lo1l0000"]).err(),
            Some(InputError::ImportedCodes(
                "a code is given twice (or two that differ only in case or look-alike letters)"
            ))
        );
    }

    #[test]
    fn malformed_input_is_a_format_error() {
        let (_, record) = set();
        for bad in [
            "",
            "abc",
            "abcd-efgh-jkmn",
            "abcd-efgh-jkmnpq",
            "abcd-efgh-jkmn!",
            "abcd_efgh_jkmnp",
            "éééééééééééééé",
            &"a".repeat(500),
        ] {
            assert!(
                matches!(verify(&record, bad, &key()), Err(InputError::CodeFormat { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_authenticator_code_in_the_backup_field_is_named() {
        let (_, record) = set();
        let says_app = |input: &str| {
            matches!(
                verify(&record, input, &key()),
                Err(InputError::AuthenticatorCodeAsBackupCode)
            )
        };
        for app in ["123456", "123 456", "1234567", "12345678", " 0012-34 "] {
            assert!(says_app(app), "{app:?}");
        }
        // Not an app's code: too short or long, letters among the digits (even look-alikes
        // that read as digits), or a backup code's own length.
        for other in ["12345", "123456789", "12345o", "l23456", "abcdef", "1234567890ab"] {
            assert!(!says_app(other), "{other:?}");
        }
        let err = verify(&record, "123456", &key()).unwrap_err().to_string();
        assert!(err.contains("looks like a code from an authenticator app"), "{err}");
    }

    #[test]
    fn config_bounds() {
        assert!(BackupCodeConfig::new(0, 12).is_err());
        assert!(BackupCodeConfig::new(33, 12).is_err());
        assert!(BackupCodeConfig::new(6, 11).is_err());
        assert!(BackupCodeConfig::new(6, 33).is_err());
        let c = BackupCodeConfig::new(10, 16).unwrap();
        let (codes, record) = generate(&InsecureSeededRng::new(2), &c, &key()).unwrap();
        assert_eq!(codes.len(), 10);
        assert_eq!(record.code_length, 16);
        assert_eq!(
            codes[0].expose_secret(),
            group(&codes[0].expose_secret().replace('-', "")).as_str()
        );
    }

    #[test]
    fn codes_are_grouped_by_four_without_a_lone_last_character() {
        for (plain, shown) in [
            ("abcdefghjkmn", "abcd-efgh-jkmn"),
            ("abcdefghjkmnp", "abcd-efgh-jkmnp"),
            ("abcdefghjkmnpq", "abcd-efgh-jkmn-pq"),
            ("abcdefghjkmnpqrs", "abcd-efgh-jkmn-pqrs"),
            ("abcdefghjkmnpqrst", "abcd-efgh-jkmn-pqrst"),
        ] {
            assert_eq!(group(plain).as_str(), shown);
        }
        let (_, record) = set();
        assert_eq!(record.code_length, 13);
        assert_eq!(record.bits_per_code(), 65);
    }

    #[test]
    fn the_keyed_hash_is_the_documented_one() {
        let (codes, record) = set();
        let code = codes[0].expose_secret().replace('-', "");
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&[[7u8; 32].as_slice(), &record.salt, &[0x42; 16]].concat()).unwrap();
        mac.update(&[5]);
        mac.update(b"alice");
        mac.update(code.as_bytes());
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(record.slots[0].hash, expected);
        assert_eq!(record.key_id, Some(KeyId::new("k1").unwrap()));
    }

    #[test]
    fn legacy_sets_keep_their_hash() {
        let pepper = Pepper::new(b"pepper-pepper-pepper".to_vec());
        for p in [None, Some(&pepper)] {
            let legacy = CodeKey::Legacy(p);
            let (codes, record) = generate(&InsecureSeededRng::new(3), &BackupCodeConfig::default(), &legacy).unwrap();
            assert_eq!(record.key_id, None);
            let code = codes[1].expose_secret().replace('-', "");
            let mut mac = Hmac::<Sha256>::new_from_slice(
                &[record.salt.as_slice(), p.map_or(&[][..], |p| p.0.as_slice())].concat(),
            )
            .unwrap();
            mac.update(code.as_bytes());
            let expected: [u8; 32] = mac.finalize().into_bytes().into();
            assert_eq!(record.slots[1].hash, expected);
            assert_eq!(verify(&record, &code, &legacy).unwrap(), Some(1));
        }
    }

    #[test]
    fn debug_hides_codes_and_hashes() {
        let (codes, record) = set();
        let shown = format!("{codes:?} {record:?}");
        assert!(!shown.contains(codes[0].expose_secret()));
        assert!(shown.contains("REDACTED"));
    }

    proptest! {
        #[test]
        fn normalisation_ignores_case_spaces_hyphens(seed in any::<u64>(), seps in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("-"), Just("\t")], BackupCodeConfig::DEFAULT_LENGTH)) {
            let (codes, record) = generate(&InsecureSeededRng::new(seed), &BackupCodeConfig::default(), &key()).unwrap();
            let plain = codes[0].expose_secret().replace('-', "");
            let mut messy = String::new();
            for (c, sep) in plain.chars().zip(&seps) {
                messy.push(c.to_ascii_uppercase());
                messy.push_str(sep);
            }
            prop_assert_eq!(verify(&record, &messy, &key()).unwrap(), Some(0));
            let normal = normalize(&messy, BackupCodeConfig::DEFAULT_LENGTH).unwrap();
            prop_assert_eq!(normal.as_str(), plain.as_str());
        }

        #[test]
        fn arbitrary_input_never_panics(input in ".{0,200}") {
            let (_, record) = set();
            let _ = verify(&record, &input, &key());
        }
    }
}
