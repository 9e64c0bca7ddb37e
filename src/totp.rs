//! TOTP (RFC 6238): parameters, secrets, codes, and verification with a replay high-water mark.
//!
//! Verification keys HMAC once per attempt (two compressions, then two per time step), compares
//! every candidate step in constant time without an early exit, and never accepts a step at or
//! below the device's last accepted step (RFC 6238 §5.2): a code works once, and after a newer
//! code has been used an older one no longer does.

mod hmac;
pub mod uri;

pub use self::uri::TotpImport;

use std::fmt;

use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::ct;
use crate::error::{ConfigError, InputError};
use crate::id::DeviceId;
use crate::seal::SealedSecret;
use crate::secret::{SecretBytes, SecretString};

use self::hmac::{CounterHmac, HashFunction};

/// The HMAC hash function of a TOTP device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// HMAC-SHA1, what nearly every authenticator app uses.
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl Algorithm {
    /// The name used in key URIs: `SHA1`, `SHA256`, `SHA512`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses a key-URI algorithm name, ignoring case (`SHA1`, `sha256`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha512]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Algorithm, digits (6..=8) and period (10..=300 s) of a TOTP device; or algorithm and digits
/// of a counter-based one (HOTP, RFC 4226: [`TotpParams::hotp`]), whose codes follow a counter
/// instead of the clock, and whose period is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TotpParams {
    algorithm: Algorithm,
    digits: u8,
    period: u32,
}

impl TotpParams {
    /// Validated parameters.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpDigits`] or [`ConfigError::TotpPeriod`] when out of bounds.
    pub fn new(algorithm: Algorithm, digits: u32, period: u64) -> Result<Self, ConfigError> {
        if !(6..=8).contains(&digits) {
            return Err(ConfigError::TotpDigits(digits));
        }
        if !(10..=300).contains(&period) {
            return Err(ConfigError::TotpPeriod(period));
        }
        Ok(Self {
            algorithm,
            digits: digits as u8,
            period: period as u32,
        })
    }

    /// Validated parameters of a counter-based device (HOTP, RFC 4226): a code per counter
    /// value, each accepted once, in order.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpDigits`] when `digits` is not 6..=8.
    pub fn hotp(algorithm: Algorithm, digits: u32) -> Result<Self, ConfigError> {
        if !(6..=8).contains(&digits) {
            return Err(ConfigError::TotpDigits(digits));
        }
        Ok(Self {
            algorithm,
            digits: digits as u8,
            period: 0,
        })
    }

    /// Whether codes follow a counter (HOTP) rather than the clock.
    pub fn is_counter_based(&self) -> bool {
        self.period == 0
    }

    /// The hash function.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Digits per code.
    pub fn digits(&self) -> u32 {
        u32::from(self.digits)
    }

    /// Seconds per step (0 for a counter-based device).
    pub fn period(&self) -> u64 {
        u64::from(self.period)
    }

    /// The time step that contains `time` (0 for a counter-based device: it has none).
    pub fn step_at(&self, time: UnixTime) -> u64 {
        time.as_secs().checked_div(self.period()).unwrap_or(0)
    }
}

impl Default for TotpParams {
    /// SHA1, 6 digits, 30 seconds: what every authenticator app supports.
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

/// What a store keeps of a TOTP device: parameters, sealed secret, last accepted step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// Algorithm, digits, period.
    pub params: TotpParams,
    /// The secret, sealed under the host's key and bound to user and device.
    pub sealed_secret: SealedSecret,
    /// The highest time step ever accepted; no step at or below it is accepted again.
    pub last_step: Option<u64>,
    /// A keyed fingerprint of the secret in the form HMAC uses, bound to the user: two devices
    /// of one user with the same fingerprint would give the same codes. A store refuses a second
    /// TOTP device of the user with the same fingerprint ([`StoreError::Conflict`](crate::StoreError::Conflict)),
    /// in the same atomic step as the insert, so two imports of one secret cannot both succeed.
    /// `None` on devices stored before this field existed (schema v6); the service still compares
    /// their opened secrets before an import.
    pub fingerprint: Option<[u8; 32]>,
}

/// Smallest secret accepted on import: 80 bits, what many real sites issue.
pub const MIN_IMPORT_SECRET_BYTES: usize = 10;
/// Largest secret accepted.
pub const MAX_SECRET_BYTES: usize = 64;
/// Whether two TOTP secrets are the same key to HMAC, compared in constant time for equal
/// lengths. HMAC pads a key with zero bytes to the hash's block (64 bytes for SHA-1 and
/// SHA-256, 128 for SHA-512), so `K` and `K ‖ 00` give the same codes: two devices holding them
/// would let each code be used once per copy. Secrets are at most [`MAX_SECRET_BYTES`] (64),
/// within every block, so no key is hashed first and the HMAC form is the secret without its
/// trailing zero bytes.
pub(crate) fn same_hmac_key(a: &[u8], b: &[u8]) -> bool {
    crate::ct::eq_bytes(hmac_form(a), hmac_form(b))
}

/// A secret in the form HMAC uses it: without trailing zero bytes (see [`same_hmac_key`]).
fn hmac_form(secret: &[u8]) -> &[u8] {
    &secret[..secret.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)]
}

/// `HMAC-SHA256(key, len(user) ‖ user ‖ HMAC form of the secret)`: equal exactly when
/// [`same_hmac_key`] holds (for one user and one key), and reveals nothing of the secret without
/// the key.
pub(crate) fn fingerprint(key: &[u8; 32], user: &crate::id::UserId, secret: &[u8]) -> [u8; 32] {
    let user = user.as_str().as_bytes();
    let len = (user.len() as u64).to_be_bytes();
    crate::seal::hmac_sha256(key, &[&len, user, hmac_form(secret)])
}

/// Smallest secret generated for a new enrollment: 160 bits (RFC 4226 §4 recommends it).
pub const MIN_NEW_SECRET_BYTES: usize = 20;
/// The widest verification window in steps either side of the current one: ±10 steps is
/// already 21 codes accepted at once.
pub const MAX_WINDOW: u32 = 10;
/// How many counter values ahead of the last accepted one a counter-based (HOTP) code is looked
/// for by default: RFC 4226 §7.4's look-ahead window, for codes generated and never used (a
/// button pressed without signing in).
pub const DEFAULT_LOOK_AHEAD: u32 = 10;
/// The widest look-ahead window. Each of its codes is a chance for a guess, and the throttle
/// charges a guess for all of them (see the manual).
pub const MAX_LOOK_AHEAD: u32 = 50;
/// How far ahead a resynchronisation (two consecutive codes) looks by default.
pub const DEFAULT_RESYNC_LIMIT: u32 = 1_000;
/// The farthest a resynchronisation may look.
pub const MAX_RESYNC_LIMIT: u32 = 10_000;

/// Most confirmed TOTP devices a user may have. A code is checked against each of them, so a
/// guess against `n` devices is charged `n` failures (the guessing bound does not grow with
/// them); the cap keeps what one wrong code costs the owner small.
pub const MAX_DEVICES: usize = 5;

/// The code for `step` (RFC 4226 HOTP over the time step), zero-padded to `digits`.
///
/// For tests, simulations and the "what would the app show" of a demo. Verification does not
/// format strings: see [`verify`].
pub fn code_for_step(secret: &SecretBytes, params: &TotpParams, step: u64) -> SecretString {
    let value = match params.algorithm {
        Algorithm::Sha1 => hotp::<Sha1>(secret.expose_secret(), step, params.digits()),
        Algorithm::Sha256 => hotp::<Sha256>(secret.expose_secret(), step, params.digits()),
        Algorithm::Sha512 => hotp::<Sha512>(secret.expose_secret(), step, params.digits()),
    };
    let width = params.digits as usize;
    SecretString::from(Zeroizing::new(format!("{value:0width$}")))
}

/// The code an authenticator app shows at `time`.
pub fn code_at(secret: &SecretBytes, params: &TotpParams, time: UnixTime) -> SecretString {
    code_for_step(secret, params, params.step_at(time))
}

/// What a code matched within the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TotpMatch {
    /// No step of the window.
    None,
    /// A step above the last accepted one (the oldest, if several match).
    Fresh(u64),
    /// Only a step at or below the last accepted one: a code that was already used. NIST SP
    /// 800-63B §5.1.4.2: a reused OTP means someone else may have it.
    Reused,
}

/// Checks `code` against every step within `window` of `now`, in constant time: the same
/// HMACs and comparisons whatever `last_step` is and whatever matches.
///
/// The caller settles a [`TotpMatch::Fresh`] step with the store's atomic high-water mark; only
/// a successful settlement is an acceptance.
///
/// # Errors
///
/// [`InputError::CodeFormat`] if `code` is not `digits` ASCII digits (spaces ignored). That is
/// decided from the shape alone, before the secret is touched.
pub fn evaluate(
    secret: &SecretBytes,
    params: &TotpParams,
    window: u32,
    last_step: Option<u64>,
    now: UnixTime,
    code: &str,
) -> Result<TotpMatch, InputError> {
    evaluate_around(secret, params, window, last_step, params.step_at(now), code)
}

/// [`evaluate`] with the window centred on `centre` rather than on the current step: the
/// current step moved by the device's clock offset ([`drift_secs`]). The window is as wide
/// either way, so a guess has the same chance.
///
/// # Errors
///
/// [`InputError::CodeFormat`] if `code` is not `digits` ASCII digits (spaces ignored).
pub fn evaluate_around(
    secret: &SecretBytes,
    params: &TotpParams,
    window: u32,
    last_step: Option<u64>,
    centre: u64,
    code: &str,
) -> Result<TotpMatch, InputError> {
    let submitted = parse_code(code, params.digits())?;
    let current = centre;
    let first = current.saturating_sub(u64::from(window));
    let last = current.saturating_add(u64::from(window));
    let key = secret.expose_secret();
    let digits = params.digits();
    let (fresh, reused) = match params.algorithm {
        Algorithm::Sha1 => check_steps_for::<Sha1>(key, first, last, last_step, digits, submitted),
        Algorithm::Sha256 => check_steps_for::<Sha256>(key, first, last, last_step, digits, submitted),
        Algorithm::Sha512 => check_steps_for::<Sha512>(key, first, last, last_step, digits, submitted),
    };
    Ok(match (fresh, reused) {
        (Some(step), _) => TotpMatch::Fresh(step),
        (None, true) => TotpMatch::Reused,
        (None, false) => TotpMatch::None,
    })
}

/// Checks `code` against the steps within `window` of `now` that are above `last_step`.
/// Returns the matching step (the oldest, if several match), or `None`: [`evaluate`] without
/// the difference between a wrong code and a used one.
///
/// # Errors
///
/// [`InputError::CodeFormat`] if `code` is not `digits` ASCII digits (spaces ignored).
pub fn verify(
    secret: &SecretBytes,
    params: &TotpParams,
    window: u32,
    last_step: Option<u64>,
    now: UnixTime,
    code: &str,
) -> Result<Option<u64>, InputError> {
    Ok(match evaluate(secret, params, window, last_step, now, code)? {
        TotpMatch::Fresh(step) => Some(step),
        _ => None,
    })
}

/// A counter imported from another system, if a store can keep it and every counter a
/// resynchronisation could reach beyond it (stores keep integers up to 2^63 - 1).
pub(crate) fn storable_counter(counter: u64) -> Option<u64> {
    const LARGEST: u64 = i64::MAX as u64 - MAX_RESYNC_LIMIT as u64 - 2;
    (counter <= LARGEST).then_some(counter)
}

/// How many steps either side a resynchronisation of a time-based device looks by default.
pub const DEFAULT_RESYNC_STEPS: u32 = 20;

/// The most a device's clock offset is followed, in steps either way (2 hours at 30 s): past it
/// the device needs its clock set, not a wider search.
pub const MAX_DRIFT_STEPS: u64 = 240;

/// How far a time-based device's clock is off, in seconds, as its last accepted code showed:
/// the middle of the step it was accepted at, less the time it was accepted (`last_used_at`).
/// That code was read somewhere in its step, so the middle is the best guess, wrong by at most
/// half a step (and by how long the code took to type, which a later sign-in's typing
/// offsets). 0 for a device never used (or used before this was kept) and for a counter-based
/// one; at most [`MAX_DRIFT_STEPS`] steps either way. Each accepted code updates it, so a clock
/// that drifts (two minutes a year, or ten) is followed by the window, which stays as wide.
pub fn drift_secs(params: &TotpParams, last_step: Option<u64>, last_used_at: Option<UnixTime>) -> i64 {
    let (Some(step), Some(at)) = (last_step, last_used_at) else {
        return 0;
    };
    if params.is_counter_based() {
        return 0;
    }
    let period = i128::from(params.period);
    let max = i128::from(MAX_DRIFT_STEPS as u32) * period;
    let middle = i128::from(step) * period + period / 2;
    let drift = (middle - i128::from(at.as_secs())).clamp(-max, max);
    i64::try_from(drift).unwrap_or(0)
}

/// The step a time-based device's window is centred on: the step of now moved by the device's
/// clock offset ([`drift_secs`]).
pub fn centre_step(params: &TotpParams, now: UnixTime, drift_secs: i64) -> u64 {
    params.step_at(UnixTime::from_secs(now.as_secs().saturating_add_signed(drift_secs)))
}

/// Finds two consecutive codes: the step `s` within `from..=to` at which `first` is the code of
/// `s` and `second` the code of `s + 1`, the earliest if several match. Returns `s + 1`, the
/// step (or counter) to settle as the last accepted one. Every step of the range is computed,
/// whatever matches. Two codes together make a guess 10^digits times less likely than one,
/// which is what allows looking so far (a counter-based device pressed ahead, a clock far off).
///
/// # Errors
///
/// [`InputError::CodeFormat`] if either code is not `digits` ASCII digits.
pub fn find_pair(
    secret: &SecretBytes,
    params: &TotpParams,
    from: u64,
    to: u64,
    first: &str,
    second: &str,
) -> Result<Option<u64>, InputError> {
    let (a, b) = (
        parse_code(first, params.digits())?,
        parse_code(second, params.digits())?,
    );
    let key = secret.expose_secret();
    let to = to.saturating_add(1);
    Ok(match params.algorithm {
        Algorithm::Sha1 => find_pair_for::<Sha1>(key, from, to, params.digits(), a, b),
        Algorithm::Sha256 => find_pair_for::<Sha256>(key, from, to, params.digits(), a, b),
        Algorithm::Sha512 => find_pair_for::<Sha512>(key, from, to, params.digits(), a, b),
    })
}

/// [`find_pair`] with the key set up once and the modulus a constant (as [`check_steps_for`]).
fn find_pair_for<H: HashFunction>(key: &[u8], from: u64, to: u64, digits: u32, a: u32, b: u32) -> Option<u64> {
    match digits {
        6 => pair_in::<H, 1_000_000>(key, from, to, a, b),
        7 => pair_in::<H, 10_000_000>(key, from, to, a, b),
        _ => pair_in::<H, 100_000_000>(key, from, to, a, b),
    }
}

/// The step `s + 1` of the earliest `s` in `from..to` whose code is `a` and whose next code is
/// `b`; every step of the range is computed, whatever matches.
fn pair_in<H: HashFunction, const MODULUS: u32>(key: &[u8], from: u64, to: u64, a: u32, b: u32) -> Option<u64> {
    let keyed = CounterHmac::<H>::new(key);
    let mut found = Choice::from(0);
    let mut matched = 0u64;
    let mut previous = Choice::from(0);
    for step in from..=to {
        let value = dynamic_truncation(keyed.mac(step).as_ref()) % MODULUS;
        let pair = previous & ct::eq_u32(value, b) & !found;
        matched.conditional_assign(&step, pair);
        found |= pair;
        previous = ct::eq_u32(value, a);
    }
    bool::from(found).then_some(matched)
}

/// Checks `code` against a counter-based (HOTP) device: the `look_ahead` counter values after
/// `last_counter` (the last accepted one; from 0 when none was), and, to tell a used code from
/// a wrong one, the `look_ahead` values up to it. In constant time over the code and the secret,
/// like [`evaluate`]. The caller settles a [`TotpMatch::Fresh`] counter with the store's atomic
/// high-water mark, which never goes back: a code is accepted at most once.
///
/// # Errors
///
/// [`InputError::CodeFormat`] if `code` is not `digits` ASCII digits (spaces ignored).
pub fn evaluate_counter(
    secret: &SecretBytes,
    params: &TotpParams,
    look_ahead: u32,
    last_counter: Option<u64>,
    code: &str,
) -> Result<TotpMatch, InputError> {
    let submitted = parse_code(code, params.digits())?;
    let next = last_counter.map_or(0, |c| c.saturating_add(1));
    let ahead = u64::from(look_ahead.max(1));
    let first = next.saturating_sub(ahead);
    let last = next.saturating_add(ahead - 1);
    let key = secret.expose_secret();
    let digits = params.digits();
    let (fresh, reused) = match params.algorithm {
        Algorithm::Sha1 => check_steps_for::<Sha1>(key, first, last, last_counter, digits, submitted),
        Algorithm::Sha256 => check_steps_for::<Sha256>(key, first, last, last_counter, digits, submitted),
        Algorithm::Sha512 => check_steps_for::<Sha512>(key, first, last, last_counter, digits, submitted),
    };
    Ok(match (fresh, reused) {
        (Some(counter), _) => TotpMatch::Fresh(counter),
        (None, true) => TotpMatch::Reused,
        (None, false) => TotpMatch::None,
    })
}

/// Resynchronises a counter-based (HOTP) device that ran far ahead: [`find_pair`] within
/// `limit` values after `last_counter`.
///
/// # Errors
///
/// [`InputError::CodeFormat`] if either code is not `digits` ASCII digits.
pub fn resync_counter(
    secret: &SecretBytes,
    params: &TotpParams,
    limit: u32,
    last_counter: Option<u64>,
    first: &str,
    second: &str,
) -> Result<Option<u64>, InputError> {
    let next = last_counter.map_or(0, |c| c.saturating_add(1));
    find_pair(
        secret,
        params,
        next,
        next.saturating_add(u64::from(limit)),
        first,
        second,
    )
}

/// [`check_steps`] with the modulus 10^`digits` as a constant, so that each reduction is a
/// multiplication rather than a division (`digits` is 6..=8, see [`TotpParams::new`]).
fn check_steps_for<H: HashFunction>(
    key: &[u8],
    first: u64,
    last: u64,
    mark: Option<u64>,
    digits: u32,
    submitted: u32,
) -> (Option<u64>, bool) {
    match digits {
        6 => check_steps::<H, 1_000_000>(key, first, last, mark, submitted),
        7 => check_steps::<H, 10_000_000>(key, first, last, mark, submitted),
        _ => check_steps::<H, 100_000_000>(key, first, last, mark, submitted),
    }
}

/// The oldest matching step above `mark`, and whether a step at or below it matched.
fn check_steps<H: HashFunction, const MODULUS: u32>(
    key: &[u8],
    first: u64,
    last: u64,
    mark: Option<u64>,
    submitted: u32,
) -> (Option<u64>, bool) {
    // Branch-free OR of the comparison results (each 0 or 1), made a `Choice` once at the end.
    let mut found = 0u8;
    let mut reused = 0u8;
    let mut matched = 0u64;
    // Steps go newest to oldest and every match overwrites: the oldest matching step is kept
    // (later ones stay usable), with one comparison and one selection per step. Whether a step
    // is above the mark is public (the mark is no secret); the match is not.
    let mut select = |step: u64, mac: &H::Digest| {
        let hit = ct::eq_u32(dynamic_truncation(mac.as_ref()) % MODULUS, submitted);
        let fresh = Choice::from(u8::from(mark.is_none_or(|m| step > m)));
        matched.conditional_assign(&step, hit & fresh);
        found |= (hit & fresh).unwrap_u8();
        reused |= (hit & !fresh).unwrap_u8();
    };
    // Three steps at a time (the whole of a ±1 window), their compressions side by side.
    let mut newest = last;
    let mut remaining = last.saturating_sub(first).saturating_add(1);
    let keyed = if remaining >= 3 {
        let steps = [newest, newest.wrapping_sub(1), newest.wrapping_sub(2)];
        let (keyed, macs) = CounterHmac::<H>::new_with_macs(key, steps);
        for (step, mac) in steps.into_iter().zip(macs) {
            select(step, &mac);
        }
        newest = newest.wrapping_sub(3);
        remaining -= 3;
        keyed
    } else {
        CounterHmac::<H>::new(key)
    };
    while remaining >= 3 {
        let steps = [newest, newest.wrapping_sub(1), newest.wrapping_sub(2)];
        for (step, mac) in steps.into_iter().zip(keyed.macs(steps)) {
            select(step, &mac);
        }
        newest = newest.wrapping_sub(3);
        remaining -= 3;
    }
    for step in (first..=newest).rev().take(remaining as usize) {
        select(step, &keyed.mac(step));
    }
    (
        bool::from(Choice::from(found)).then_some(matched),
        bool::from(Choice::from(reused)),
    )
}

fn hotp<H: HashFunction>(key: &[u8], counter: u64, digits: u32) -> u32 {
    let (_, [mac]) = CounterHmac::<H>::new_with_macs(key, [counter]);
    dynamic_truncation(mac.as_ref()) % 10u32.pow(digits.min(9))
}

/// RFC 4226 §5.3 dynamic truncation: the 31-bit value at the offset the last byte names.
fn dynamic_truncation(mac: &[u8]) -> u32 {
    let offset = mac.last().map_or(0, |b| usize::from(b & 0x0f));
    let mut word = [0u8; 4];
    if let Some(bytes) = mac.get(offset..offset + 4) {
        word.copy_from_slice(bytes);
    }
    u32::from_be_bytes(word) & 0x7fff_ffff
}

/// Whether `code` has the shape of the codes of at least one of `params` (its digits, spaces
/// allowed): checked before an attempt is evaluated or charged, so that a typo of the wrong
/// length costs nothing.
///
/// # Errors
///
/// [`InputError::CodeFormat`] otherwise (as [`parse_code`] answers it).
pub(crate) fn check_shape(code: &str, params: &[TotpParams]) -> Result<(), InputError> {
    let mut answer = Err(code_format());
    for p in params {
        answer = parse_code(code, p.digits()).map(|_| ());
        if answer.is_ok() {
            break;
        }
    }
    answer
}

fn code_format() -> InputError {
    InputError::CodeFormat {
        expected: "the 6 to 8 digits the authenticator app shows",
    }
}

fn parse_code(code: &str, digits: u32) -> Result<u32, InputError> {
    let err = code_format();
    if code.len() > 64 {
        return Err(err);
    }
    let mut value = 0u32;
    let mut count = 0u32;
    for c in code.chars() {
        if c.is_whitespace() {
            continue;
        }
        let d = c.to_digit(10).filter(|_| c.is_ascii_digit()).ok_or(err.clone())?;
        count += 1;
        if count > digits {
            return Err(err);
        }
        value = value * 10 + d;
    }
    if count != digits {
        return Err(err);
    }
    Ok(value)
}

/// Decodes a base32 secret leniently: spaces, hyphens, `=` padding and case are ignored.
///
/// # Errors
///
/// [`InputError::SecretEncoding`] if it is not base32, [`InputError::SecretLength`] if it is
/// not 10..=64 bytes (80 to 512 bits).
pub fn decode_base32_secret(input: &str) -> Result<SecretBytes, InputError> {
    if input.len() > 4 * MAX_SECRET_BYTES {
        return Err(InputError::SecretLength(input.len() * 5 / 8));
    }
    let mut clean = Zeroizing::new(String::with_capacity(input.len()));
    for c in input.chars() {
        match c {
            c if c.is_whitespace() || c == '-' || c == '=' => {}
            c if c.is_ascii_alphanumeric() => clean.push(c.to_ascii_uppercase()),
            _ => return Err(InputError::SecretEncoding),
        }
    }
    let bytes =
        base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &clean).ok_or(InputError::SecretEncoding)?;
    let bytes = SecretBytes::new(bytes);
    if !(MIN_IMPORT_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
        return Err(InputError::SecretLength(bytes.len()));
    }
    Ok(bytes)
}

/// Encodes a secret as unpadded upper-case base32, the form authenticator apps expect.
pub fn encode_base32_secret(secret: &SecretBytes) -> SecretString {
    SecretString::from(Zeroizing::new(base32::encode(
        base32::Alphabet::Rfc4648 { padding: false },
        secret.expose_secret(),
    )))
}

/// A new TOTP enrollment: show the QR code (or the secret as text) once, then confirm.
#[derive(Debug)]
pub struct TotpEnrollment {
    /// The new, unconfirmed device.
    pub device: DeviceId,
    /// The secret as unpadded base32, for typing into an app.
    pub secret_base32: SecretString,
    /// The `otpauth://` key URI (contains the secret).
    pub key_uri: SecretString,
}

impl TotpEnrollment {
    /// The key URI as an SVG QR code (contains the secret): one `<svg>` element, with no XML
    /// declaration, to write into an HTML page as it is.
    ///
    /// # Errors
    ///
    /// [`InputError::KeyUri`] if the URI is too long for a QR code (not with valid settings).
    #[cfg(feature = "qr")]
    pub fn qr_svg(&self) -> Result<SecretString, InputError> {
        uri::qr_svg(&self.key_uri)
    }

    /// The key URI as a QR code drawn with Unicode blocks, for a terminal (contains the secret).
    ///
    /// # Errors
    ///
    /// [`InputError::KeyUri`] if the URI is too long for a QR code (not with valid settings).
    #[cfg(feature = "qr")]
    pub fn qr_text(&self) -> Result<SecretString, InputError> {
        uri::qr_text(&self.key_uri)
    }
}

/// TOTP settings for new enrollments and verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpConfig {
    pub(super) issuer: String,
    pub(super) params: TotpParams,
    pub(super) window: u32,
    pub(super) secret_len: usize,
    pub(super) look_ahead: u32,
    pub(super) resync_limit: u32,
    pub(super) resync_steps: u32,
}

impl TotpConfig {
    /// Settings with `issuer` (the service name shown in authenticator apps) and the defaults:
    /// SHA1, 6 digits, 30 s, a window of ±1 step, 160-bit secrets.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpIssuer`] if the issuer is empty, longer than 64 characters, or
    /// contains `:` or control characters.
    pub fn new(issuer: &str) -> Result<Self, ConfigError> {
        // A `:` would end the issuer early in the key URI's label.
        let issuer = crate::id::label(issuer, 64)
            .filter(|i| !i.contains(':'))
            .ok_or(ConfigError::TotpIssuer)?;
        Ok(Self {
            issuer: issuer.to_owned(),
            params: TotpParams::default(),
            window: 1,
            secret_len: MIN_NEW_SECRET_BYTES,
            look_ahead: DEFAULT_LOOK_AHEAD,
            resync_limit: DEFAULT_RESYNC_LIMIT,
            resync_steps: DEFAULT_RESYNC_STEPS,
        })
    }

    /// How many counter values after the last accepted one a counter-based (HOTP) code is looked
    /// for (1..=50, default 10: RFC 4226 §7.4). The throttle charges a guess for every code of
    /// the window, so the guessing bound holds whatever it is.
    ///
    /// # Errors
    ///
    /// [`ConfigError::HotpLookAhead`] if 0 or above [`MAX_LOOK_AHEAD`].
    pub fn with_look_ahead(mut self, look_ahead: u32) -> Result<Self, ConfigError> {
        if !(1..=MAX_LOOK_AHEAD).contains(&look_ahead) {
            return Err(ConfigError::HotpLookAhead(look_ahead));
        }
        self.look_ahead = look_ahead;
        Ok(self)
    }

    /// How far past the last accepted counter a resynchronisation with two consecutive codes
    /// looks (1..=10,000, default 1,000).
    ///
    /// # Errors
    ///
    /// [`ConfigError::HotpResyncLimit`] if 0 or above [`MAX_RESYNC_LIMIT`].
    pub fn with_resync_limit(mut self, limit: u32) -> Result<Self, ConfigError> {
        if !(1..=MAX_RESYNC_LIMIT).contains(&limit) {
            return Err(ConfigError::HotpResyncLimit(limit));
        }
        self.resync_limit = limit;
        Ok(self)
    }

    /// How many steps either side of where a time-based device's window is centred a
    /// resynchronisation with two consecutive codes looks (1..=240, default 20: ten minutes of
    /// a clock that is off, at 30 s).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpResyncSteps`] if 0 or above [`MAX_DRIFT_STEPS`].
    pub fn with_resync_steps(mut self, steps: u32) -> Result<Self, ConfigError> {
        if steps == 0 || u64::from(steps) > MAX_DRIFT_STEPS {
            return Err(ConfigError::TotpResyncSteps(steps));
        }
        self.resync_steps = steps;
        Ok(self)
    }

    /// The look-ahead window of counter-based (HOTP) devices.
    pub fn look_ahead(&self) -> u32 {
        self.look_ahead
    }

    /// The step a time-based device's window is centred on now: the current step moved by the
    /// device's clock offset ([`drift_secs`]). Under a window of 0 an offset within half a
    /// step is not followed: it is what reading a code anywhere in its step gives a clock that
    /// is right, and following it would move the single code off the current one.
    pub(crate) fn centre(
        &self,
        params: &TotpParams,
        last_step: Option<u64>,
        last_used_at: Option<UnixTime>,
        now: UnixTime,
    ) -> u64 {
        let drift = drift_secs(params, last_step, last_used_at);
        let half = i64::try_from(params.period() / 2).unwrap_or(0);
        let drift = if self.window == 0 && drift.abs() <= half {
            0
        } else {
            drift
        };
        centre_step(params, now, drift)
    }

    /// What a failure against a device with `params` is charged, in guesses: the codes one
    /// guess is compared with there, in units of a time-based device's window (at least 1).
    /// With the defaults a counter-based device's 10 codes are charged as 4 guesses of 3.
    pub(crate) fn guess_weight(&self, params: &TotpParams) -> u32 {
        if params.is_counter_based() {
            self.look_ahead.div_ceil(2 * self.window + 1).max(1)
        } else {
            1
        }
    }

    /// Parameters of new enrollments (imports keep their own). Time-based only: a
    /// counter-based device is enrolled with [`Mfa::enroll_hotp`](crate::Mfa::enroll_hotp).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpPeriod`] for counter-based parameters (period 0).
    pub fn with_params(mut self, params: TotpParams) -> Result<Self, ConfigError> {
        if params.is_counter_based() {
            return Err(ConfigError::TotpPeriod(0));
        }
        self.params = params;
        Ok(self)
    }

    /// Steps accepted either side of the current one (0..=10, default 1).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpWindow`] if above 10.
    pub fn with_window(mut self, window: u32) -> Result<Self, ConfigError> {
        if window > MAX_WINDOW {
            return Err(ConfigError::TotpWindow(window));
        }
        self.window = window;
        Ok(self)
    }

    /// Bytes of newly generated secrets (20..=64, default 20 = 160 bits).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TotpSecretLength`] if out of bounds.
    pub fn with_secret_len(mut self, bytes: usize) -> Result<Self, ConfigError> {
        if !(MIN_NEW_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes) {
            return Err(ConfigError::TotpSecretLength(bytes));
        }
        self.secret_len = bytes;
        Ok(self)
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The verification window in steps.
    pub fn window(&self) -> u32 {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> SecretBytes {
        SecretBytes::new(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc4226_appendix_d_first_values() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(hotp::<Sha1>(b"12345678901234567890", counter as u64, 6), want);
        }
    }

    #[test]
    fn window_replay_and_high_water_mark() {
        let secret = rfc_secret();
        let p = TotpParams::default();
        let now = UnixTime::from_secs(1_700_000_000);
        let step = p.step_at(now);
        let code = |s: u64| code_for_step(&secret, &p, s).expose_secret().to_owned();
        assert_eq!(verify(&secret, &p, 1, None, now, &code(step)).unwrap(), Some(step));
        assert_eq!(
            verify(&secret, &p, 1, None, now, &code(step - 1)).unwrap(),
            Some(step - 1)
        );
        assert_eq!(
            verify(&secret, &p, 1, None, now, &code(step + 1)).unwrap(),
            Some(step + 1)
        );
        assert_eq!(verify(&secret, &p, 1, None, now, &code(step + 2)).unwrap(), None);
        assert_eq!(verify(&secret, &p, 1, None, now, &code(step - 2)).unwrap(), None);
        assert_eq!(verify(&secret, &p, 0, None, now, &code(step - 1)).unwrap(), None);
        // Replay: the same step again is not a candidate.
        assert_eq!(verify(&secret, &p, 1, Some(step), now, &code(step)).unwrap(), None);
        // Older than the last accepted: refused although inside the window.
        assert_eq!(verify(&secret, &p, 1, Some(step), now, &code(step - 1)).unwrap(), None);
        // Newer than the last accepted: fine.
        assert_eq!(
            verify(&secret, &p, 1, Some(step), now, &code(step + 1)).unwrap(),
            Some(step + 1)
        );
        assert_eq!(verify(&secret, &p, 1, Some(u64::MAX), now, &code(step)).unwrap(), None);
    }

    #[test]
    fn code_shapes() {
        let s = rfc_secret();
        let p = TotpParams::default();
        let t = UnixTime::from_secs(59);
        assert_eq!(verify(&s, &p, 0, None, t, "287 082").unwrap(), Some(1));
        for bad in [
            "",
            "28708",
            "2870822",
            "28708a",
            "２８７０８２",
            "-28708",
            &"1".repeat(100),
        ] {
            assert!(
                matches!(verify(&s, &p, 0, None, t, bad), Err(InputError::CodeFormat { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn edges_of_time_do_not_panic() {
        let s = rfc_secret();
        let p = TotpParams::new(Algorithm::Sha512, 8, 10).unwrap();
        for t in [0, 1, u64::MAX - 1, u64::MAX] {
            let now = UnixTime::from_secs(t);
            let code = code_at(&s, &p, now);
            assert!(verify(&s, &p, 10, None, now, code.expose_secret()).unwrap().is_some());
        }
    }

    #[test]
    fn params_bounds() {
        assert!(TotpParams::new(Algorithm::Sha1, 5, 30).is_err());
        assert!(TotpParams::new(Algorithm::Sha1, 9, 30).is_err());
        assert!(TotpParams::new(Algorithm::Sha1, 6, 9).is_err());
        assert!(TotpParams::new(Algorithm::Sha1, 6, 301).is_err());
        assert!(TotpParams::new(Algorithm::Sha256, 8, 60).is_ok());
        assert_eq!(Algorithm::from_name("sha256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_name("MD5"), None);
    }

    #[test]
    fn base32_lenient_and_strict_where_it_matters() {
        let s = decode_base32_secret("jbsw y3dp-ehpk 3pxp====").unwrap();
        assert_eq!(s.expose_secret(), b"Hello!\xde\xad\xbe\xef");
        assert_eq!(encode_base32_secret(&s).expose_secret(), "JBSWY3DPEHPK3PXP");
        assert_eq!(
            decode_base32_secret("JBSWY3DP").unwrap_err(),
            InputError::SecretLength(5)
        );
        assert_eq!(
            decode_base32_secret("JBSWY3DPEHPK3PX1").unwrap_err(),
            InputError::SecretEncoding
        );
        assert_eq!(
            decode_base32_secret("JBSWY3DPEHPK3PX!").unwrap_err(),
            InputError::SecretEncoding
        );
        assert!(matches!(
            decode_base32_secret(&"A".repeat(1000)),
            Err(InputError::SecretLength(_))
        ));
        assert_eq!(decode_base32_secret(&"A".repeat(103)).unwrap().len(), 64);
        assert_eq!(
            decode_base32_secret(&"A".repeat(104)).unwrap_err(),
            InputError::SecretLength(65)
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_code_input_never_panics(code in ".{0,80}", now in proptest::prelude::any::<u64>(), last in proptest::prelude::any::<Option<u64>>()) {
            let p = TotpParams::default();
            let _ = verify(&rfc_secret(), &p, 10, last, UnixTime::from_secs(now), &code);
        }

        /// Every window size (three steps at a time, then one by one), every algorithm and
        /// length, with and without a high-water mark: the answer is the oldest candidate step
        /// whose code is the submitted one, as a plain loop over the candidates finds it.
        #[test]
        fn verify_finds_the_oldest_matching_candidate(
            secret in proptest::collection::vec(proptest::prelude::any::<u8>(), 10..=64),
            algorithm in proptest::sample::select(vec![Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512]),
            digits in 6u32..=8,
            window in 0u32..=8,
            now in proptest::prelude::any::<u64>(),
            offset in -10i64..=10,
            last in proptest::option::of(-10i64..=10),
        ) {
            let secret = SecretBytes::new(secret);
            let p = TotpParams::new(algorithm, digits, 30).unwrap();
            let now = UnixTime::from_secs(now);
            let current = p.step_at(now);
            let at = |offset: i64| current.saturating_add_signed(offset);
            let code = code_for_step(&secret, &p, at(offset));
            let last_step = last.map(at);
            let first = current.saturating_sub(u64::from(window));
            let newest = current.saturating_add(u64::from(window));
            let expected = (first..=newest)
                .filter(|s| last_step.is_none_or(|used| *s > used))
                .find(|s| code_for_step(&secret, &p, *s).expose_secret() == code.expose_secret());
            let got = verify(&secret, &p, window, last_step, now, code.expose_secret()).unwrap();
            proptest::prop_assert_eq!(got, expected);
        }

        #[test]
        fn arbitrary_secret_input_never_panics(input in ".{0,300}") {
            if let Ok(s) = decode_base32_secret(&input) {
                proptest::prop_assert!((MIN_IMPORT_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&s.len()));
            }
        }

        #[test]
        fn base32_round_trip(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 10..=64)) {
            let s = SecretBytes::new(bytes.clone());
            let encoded = encode_base32_secret(&s);
            let lower = encoded.expose_secret().to_lowercase();
            let decoded = decode_base32_secret(&lower).unwrap();
            proptest::prop_assert_eq!(decoded.expose_secret(), &bytes[..]);
        }
    }
}
