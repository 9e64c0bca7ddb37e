//! One-time codes sent by email or SMS: destinations, codes, and how often a code may be sent.
//!
//! Pure: records, the policy and `now` in, decisions out. The host delivers the code (the
//! service returns it, with the destination, and keeps neither): this module generates it,
//! keeps a keyed hash of it bound to the user, the device and the destination, and decides
//! when another may be sent.
//!
//! # What a store keeps
//!
//! A [`SentCodeRecord`] per destination: the destination sealed (it is personal data) and a
//! keyed fingerprint of it (unique per user, so one address cannot be enrolled twice), the
//! serial of the last code sent with its keyed hash, expiry and the sends of the current rate
//! window ([`IssuedCode`]), and a high-water mark: every serial at or below
//! [`last_serial`](SentCodeRecord::last_serial) is spent or superseded. Sending code `n + 1`
//! raises the mark to `n` in the same atomic write, so at most one code per destination is
//! live; accepting code `n` raises it to `n` with the same settlement that accepts a TOTP step,
//! so a code works once, and of two concurrent uses exactly one wins.
//!
//! # Restricted
//!
//! These are the weakest second factors this crate offers: see
//! [`DeviceKind::is_restricted`](crate::DeviceKind::is_restricted) and the
//! [manual](crate::manual#codes-sent-by-email-or-sms).

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};

use crate::clock::UnixTime;
use crate::error::{ConfigError, InputError};
use crate::id::{DeviceId, UserId};
use crate::kind::DeviceKind;
use crate::rng::{Rng, uniform_below};
use crate::seal::{KeyId, SealedSecret};
use crate::secret::SecretString;

/// Most email addresses and phone numbers one user may receive codes at.
pub const MAX_DESTINATIONS: usize = 5;

/// How a code reaches its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Channel {
    /// By email.
    Email,
    /// By SMS text message.
    Sms,
}

impl Channel {
    /// A stable name, for storage: `"email"` or `"sms"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }

    /// The channel with this [`as_str`](Self::as_str) name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            _ => None,
        }
    }

    /// The kind of device a destination of this channel is.
    pub const fn kind(self) -> DeviceKind {
        match self {
            Self::Email => DeviceKind::Email,
            Self::Sms => DeviceKind::Sms,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A destination's record, as a store keeps it. Holds no plaintext: the destination sealed,
/// the code as a keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCodeRecord {
    /// Email or SMS.
    pub channel: Channel,
    /// The destination (an email address, or a phone number in E.164 form), sealed under the
    /// host's key and bound to the user and the device.
    pub sealed_destination: SealedSecret,
    /// A keyed fingerprint of the destination, bound to the user: a store refuses a second
    /// device of the user with the same fingerprint, as it refuses a second copy of a TOTP
    /// secret ([`TotpRecord::fingerprint`](crate::store::TotpRecord::fingerprint), the same
    /// column: the two are keyed for different purposes and never equal).
    pub fingerprint: [u8; 32],
    /// Every code with a serial at or below this one is spent or superseded.
    pub last_serial: Option<u64>,
    /// The last code sent, if any.
    pub issued: Option<IssuedCode>,
}

impl SentCodeRecord {
    /// The last code sent, if it can still be accepted at `now`: not spent, not superseded,
    /// not expired.
    pub fn live_code(&self, now: UnixTime) -> Option<&IssuedCode> {
        self.issued
            .as_ref()
            .filter(|c| self.last_serial.is_none_or(|last| c.serial > last) && now < c.expires_at)
    }
}

/// A code sent to a destination: its serial and keyed hash, when it expires, and the rate
/// window it was counted in.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// Its serial, from 1: each code sent to a destination has the next one.
    pub serial: u64,
    /// The key its hash is keyed with.
    pub key_id: KeyId,
    /// `HMAC-SHA256` of the code under the keyring's `sent-code` key, over the user, the device,
    /// the destination's fingerprint and the serial as well.
    pub digest: [u8; 32],
    /// When it was sent.
    pub issued_at: UnixTime,
    /// When it stops being accepted.
    pub expires_at: UnixTime,
    /// When the current rate window started (the first send in it).
    pub window_start: UnixTime,
    /// Codes sent in the current rate window, this one included.
    pub sends: u32,
}

impl fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCode")
            .field("serial", &self.serial)
            .field("key_id", &self.key_id)
            .field("digest", &"<redacted>")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("window_start", &self.window_start)
            .field("sends", &self.sends)
            .finish()
    }
}

/// Version byte of [`IssuedCode::to_bytes`].
const ISSUED_V1: u8 = 1;

impl IssuedCode {
    /// The bytes a store may keep it as: version, serial, times, sends, digest, key id.
    pub fn to_bytes(&self) -> Vec<u8> {
        let key = self.key_id.as_str().as_bytes();
        let mut out = Vec::with_capacity(1 + 8 * 4 + 4 + 32 + key.len());
        out.push(ISSUED_V1);
        out.extend_from_slice(&self.serial.to_be_bytes());
        out.extend_from_slice(&self.issued_at.as_secs().to_be_bytes());
        out.extend_from_slice(&self.expires_at.as_secs().to_be_bytes());
        out.extend_from_slice(&self.window_start.as_secs().to_be_bytes());
        out.extend_from_slice(&self.sends.to_be_bytes());
        out.extend_from_slice(&self.digest);
        out.extend_from_slice(key);
        out
    }

    /// Reads [`to_bytes`](Self::to_bytes) back; `None` for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (&version, rest) = bytes.split_first()?;
        if version != ISSUED_V1 {
            return None;
        }
        let (numbers, rest) = rest.split_at_checked(8 * 4)?;
        let (sends, rest) = rest.split_at_checked(4)?;
        let (digest, key) = rest.split_at_checked(32)?;
        let word =
            |i: usize| -> Option<u64> { Some(u64::from_be_bytes(numbers.get(i * 8..i * 8 + 8)?.try_into().ok()?)) };
        Some(Self {
            serial: word(0)?,
            issued_at: UnixTime::from_secs(word(1)?),
            expires_at: UnixTime::from_secs(word(2)?),
            window_start: UnixTime::from_secs(word(3)?),
            sends: u32::from_be_bytes(sends.try_into().ok()?),
            digest: digest.try_into().ok()?,
            key_id: KeyId::new(std::str::from_utf8(key).ok()?).ok()?,
        })
    }
}

/// How codes are sent: their length and life, and how often one may be sent.
///
/// Defaults: 6 digits, valid 10 minutes; another code to the same destination after 30
/// seconds at the earliest (at once after the last one was used), and at most 5 in an hour
/// (counted from the first of them). Every
/// code is compared against the user's one-time-code counter
/// ([`Factor::Totp`](crate::Factor::Totp)), so resending does not buy guesses: each guess is
/// charged whichever code it was meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentCodePolicy {
    digits: u32,
    ttl_secs: u64,
    resend_after_secs: u64,
    max_sends: u32,
    window_secs: u64,
}

impl Default for SentCodePolicy {
    fn default() -> Self {
        Self {
            digits: 6,
            ttl_secs: 600,
            resend_after_secs: 30,
            max_sends: 5,
            window_secs: 3600,
        }
    }
}

impl SentCodePolicy {
    /// Codes of `digits` digits (6 to 10), accepted for `ttl_secs` (60 s to 1 hour).
    ///
    /// # Errors
    ///
    /// [`ConfigError::SentCodes`] outside those ranges.
    pub fn with_codes(mut self, digits: u32, ttl_secs: u64) -> Result<Self, ConfigError> {
        if !(6..=10).contains(&digits) {
            return Err(ConfigError::SentCodes("codes must have 6 to 10 digits"));
        }
        if !(60..=3600).contains(&ttl_secs) {
            return Err(ConfigError::SentCodes("codes must live 60 s to 1 hour"));
        }
        self.digits = digits;
        self.ttl_secs = ttl_secs;
        Ok(self)
    }

    /// Another code to the same destination no sooner than `resend_after_secs` after the last
    /// (1 s to 1 hour), and at most `max_sends` (1 to 20) in `window_secs` (1 minute to a day).
    ///
    /// # Errors
    ///
    /// [`ConfigError::SentCodes`] outside those ranges.
    pub fn with_sends(mut self, resend_after_secs: u64, max_sends: u32, window_secs: u64) -> Result<Self, ConfigError> {
        if !(1..=3600).contains(&resend_after_secs) {
            return Err(ConfigError::SentCodes("the resend delay must be 1 s to 1 hour"));
        }
        if !(1..=20).contains(&max_sends) {
            return Err(ConfigError::SentCodes("1 to 20 codes may be sent in a window"));
        }
        if !(60..=86_400).contains(&window_secs) {
            return Err(ConfigError::SentCodes("the send window must be 1 minute to a day"));
        }
        self.resend_after_secs = resend_after_secs;
        self.max_sends = max_sends;
        self.window_secs = window_secs;
        Ok(self)
    }

    /// Digits per code.
    pub fn digits(&self) -> u32 {
        self.digits
    }

    /// Seconds a code is accepted for.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// When the next code may be sent to a destination whose last code is `last` (`spent`:
    /// it was used): `Ok` with the rate window and its count after this send, or `Err` with
    /// the time it may be sent. The gap between two sends does not apply after a used code
    /// (whoever used it received it: the next sign-in needs a new one); the count in the
    /// window always does.
    ///
    /// # Errors
    ///
    /// The time the next code may be sent, if not now.
    pub fn next_send(
        &self,
        last: Option<&IssuedCode>,
        spent: bool,
        now: UnixTime,
    ) -> Result<(UnixTime, u32), UnixTime> {
        let Some(last) = last else {
            return Ok((now, 1));
        };
        let gap = if spent {
            last.issued_at
        } else {
            last.issued_at.plus_secs(self.resend_after_secs)
        };
        let window_end = last.window_start.plus_secs(self.window_secs);
        // A clock that went back counts as the same moment, never as a fresh window.
        if now >= window_end {
            return if now >= gap { Ok((now, 1)) } else { Err(gap) };
        }
        if last.sends >= self.max_sends {
            return Err(window_end.max(gap));
        }
        if now < gap {
            return Err(gap);
        }
        Ok((last.window_start, last.sends.saturating_add(1)))
    }
}

/// A destination, checked and put in the one form its fingerprint is taken of.
pub(crate) fn normalize_destination(channel: Channel, input: &str) -> Result<String, InputError> {
    let input = input.trim();
    match channel {
        Channel::Email => {
            let (local, domain) = input.rsplit_once('@').ok_or(InputError::Destination)?;
            let fine = |part: &str| {
                !part.is_empty() && part.chars().all(|c| !c.is_control() && !c.is_whitespace() && c != '@')
            };
            if input.len() > 254 || local.len() > 64 || !fine(local) || !fine(domain) || !domain.contains('.') {
                return Err(InputError::Destination);
            }
            if domain.starts_with('.') || domain.ends_with('.') {
                return Err(InputError::Destination);
            }
            // The domain is case-insensitive; the local part belongs to the mail server.
            Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
        }
        Channel::Sms => {
            // E.164: a plus, a country code and the number, 8 to 15 digits in all; spaces,
            // dashes, dots and brackets as people write them are dropped.
            let rest = input.strip_prefix('+').ok_or(InputError::Destination)?;
            let mut digits = String::with_capacity(16);
            for c in rest.chars() {
                match c {
                    '0'..='9' => digits.push(c),
                    ' ' | '-' | '.' | '(' | ')' => {}
                    _ => return Err(InputError::Destination),
                }
            }
            if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
                return Err(InputError::Destination);
            }
            Ok(format!("+{digits}"))
        }
    }
}

/// A destination as a settings page may show it without giving it away: the email's first
/// character and domain (`a•••@example.com`), the phone number's last two digits
/// (`+•••••••••89`).
pub fn mask_destination(channel: Channel, destination: &str) -> String {
    match channel {
        Channel::Email => match destination.rsplit_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}•••@{domain}")
            }
            None => "•••".to_owned(),
        },
        Channel::Sms => {
            let digits: Vec<char> = destination.chars().filter(char::is_ascii_digit).collect();
            let shown: String = digits.iter().skip(digits.len().saturating_sub(2)).collect();
            format!("+{}{shown}", "•".repeat(digits.len().saturating_sub(2)))
        }
    }
}

/// A fresh code of `digits` decimal digits, each uniform.
pub(crate) fn generate_code(rng: &impl Rng, digits: u32) -> Result<SecretString, crate::error::RngError> {
    let mut code = String::with_capacity(digits as usize);
    for _ in 0..digits {
        let d = uniform_below(rng, 10)?;
        code.push(char::from(b'0' + d));
    }
    Ok(SecretString::new(code))
}

/// The code's digits, without the spaces and dashes people type; `None` if anything else is
/// in it or the count is not `digits`.
pub(crate) fn canonical_code(input: &str, digits: u32) -> Option<String> {
    let mut out = String::with_capacity(digits as usize);
    for c in input.trim().chars() {
        match c {
            '0'..='9' => out.push(c),
            ' ' | '-' => {}
            _ => return None,
        }
    }
    (out.len() == digits as usize).then_some(out)
}

/// `HMAC-SHA256(key, "multifactor/v1/sent-code" ‖ len(user) ‖ user ‖ device ‖ fingerprint ‖
/// serial ‖ code)`: bound to the user, the device, the destination (by its fingerprint) and the
/// code's serial, so a code is worth nothing for another destination or a later send.
pub(crate) fn code_digest(
    key: &[u8; 32],
    user: &UserId,
    device: DeviceId,
    fingerprint: &[u8; 32],
    serial: u64,
    code: &str,
) -> [u8; 32] {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(b"multifactor/v1/sent-code");
    let user = user.as_str().as_bytes();
    mac.update(&(user.len() as u64).to_be_bytes());
    mac.update(user);
    mac.update(device.as_bytes());
    mac.update(fingerprint);
    mac.update(&serial.to_be_bytes());
    mac.update(code.as_bytes());
    mac.finalize().into_bytes().into()
}

/// HMAC takes a key of any length: never reached.
fn unreachable_hmac() -> Hmac<sha2::Sha256> {
    <Hmac<sha2::Sha256> as KeyInit>::new(&Default::default())
}

/// `HMAC-SHA256(key, "multifactor/v1/destination" ‖ len(user) ‖ user ‖ channel ‖ destination)`.
pub(crate) fn destination_fingerprint(key: &[u8; 32], user: &UserId, channel: Channel, destination: &str) -> [u8; 32] {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(b"multifactor/v1/destination");
    let user = user.as_str().as_bytes();
    mac.update(&(user.len() as u64).to_be_bytes());
    mac.update(user);
    mac.update(channel.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(destination.as_bytes());
    mac.finalize().into_bytes().into()
}

/// A code to deliver: the host sends [`code`](Self::code) to [`destination`](Self::destination)
/// by [`channel`](Self::channel), and keeps neither. The service keeps only a keyed hash of
/// the code.
pub struct SentCode {
    /// The destination device.
    pub device: DeviceId,
    /// Email or SMS.
    pub channel: Channel,
    /// Where to send it: the email address, or the phone number in E.164 form.
    pub destination: SecretString,
    /// The code.
    pub code: SecretString,
    /// When it stops being accepted.
    pub expires_at: UnixTime,
}

impl fmt::Debug for SentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentCode")
            .field("device", &self.device)
            .field("channel", &self.channel)
            .field("destination", &self.destination)
            .field("code", &self.code)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(serial: u64, at: u64, window_start: u64, sends: u32) -> IssuedCode {
        IssuedCode {
            serial,
            key_id: KeyId::new("k1").unwrap(),
            digest: [7; 32],
            issued_at: UnixTime::from_secs(at),
            expires_at: UnixTime::from_secs(at + 600),
            window_start: UnixTime::from_secs(window_start),
            sends,
        }
    }

    #[test]
    fn issued_codes_round_trip_and_refuse_garbage() {
        let code = issued(42, 1_000, 900, 3);
        let bytes = code.to_bytes();
        assert_eq!(IssuedCode::from_bytes(&bytes), Some(code));
        for cut in 0..bytes.len() - 2 {
            assert_eq!(IssuedCode::from_bytes(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut other = bytes.clone();
        other[0] = 2;
        assert_eq!(IssuedCode::from_bytes(&other), None);
        assert!(!format!("{:?}", issued(1, 1, 1, 1)).contains("7, 7"));
    }

    #[test]
    fn sends_wait_for_the_gap_and_the_window() {
        let p = SentCodePolicy::default();
        let t = UnixTime::from_secs;
        assert_eq!(p.next_send(None, false, t(100)), Ok((t(100), 1)));
        // 30 s between sends.
        assert_eq!(p.next_send(Some(&issued(1, 100, 100, 1)), false, t(110)), Err(t(130)));
        assert_eq!(
            p.next_send(Some(&issued(1, 100, 100, 1)), false, t(130)),
            Ok((t(100), 2))
        );
        // Not after a used code; the count still grows.
        assert_eq!(
            p.next_send(Some(&issued(1, 100, 100, 1)), true, t(110)),
            Ok((t(100), 2))
        );
        // The fifth in the hour is the last; the sixth waits for the window to end, used or not.
        assert_eq!(p.next_send(Some(&issued(5, 500, 100, 5)), false, t(600)), Err(t(3700)));
        assert_eq!(p.next_send(Some(&issued(5, 500, 100, 5)), true, t(600)), Err(t(3700)));
        assert_eq!(
            p.next_send(Some(&issued(5, 500, 100, 5)), false, t(3700)),
            Ok((t(3700), 1))
        );
        // A clock that went back is still inside the window and the gap.
        assert_eq!(p.next_send(Some(&issued(5, 500, 100, 5)), false, t(50)), Err(t(3700)));
        assert_eq!(p.next_send(Some(&issued(1, 500, 500, 1)), false, t(50)), Err(t(530)));
        assert_eq!(p.next_send(Some(&issued(1, 500, 500, 1)), true, t(50)), Err(t(500)));
    }

    #[test]
    fn a_destination_is_checked_and_normalized() {
        let email = |s| normalize_destination(Channel::Email, s);
        let sms = |s| normalize_destination(Channel::Sms, s);
        assert_eq!(email(" Ada@Example.COM ").unwrap(), "Ada@example.com");
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "a da@example.com",
            "ada@.com",
            "a\n@x.y",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert_eq!(sms("+44 20 7946-0958").unwrap(), "+442079460958");
        assert_eq!(sms("+1 (555) 010.0199").unwrap(), "+15550100199");
        for bad in [
            "",
            "020 7946 0958",
            "+0441234567",
            "+1234567",
            "+1234567890123456",
            "+44 20x",
        ] {
            assert!(sms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn masks_show_little() {
        assert_eq!(mask_destination(Channel::Email, "ada@example.com"), "a•••@example.com");
        assert_eq!(mask_destination(Channel::Sms, "+442079460958"), "+••••••••••58");
    }

    #[test]
    fn codes_are_digits_and_canonical_input_is_strict() {
        let rng = crate::rng::InsecureSeededRng::new(1);
        for _ in 0..100 {
            let code = generate_code(&rng, 6).unwrap();
            assert_eq!(code.expose_secret().len(), 6);
            assert!(code.expose_secret().bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(canonical_code(" 123 456 ", 6).as_deref(), Some("123456"));
        assert_eq!(canonical_code("123-456", 6).as_deref(), Some("123456"));
        assert_eq!(canonical_code("12345", 6), None);
        assert_eq!(canonical_code("12345a", 6), None);
    }

    #[test]
    fn digests_bind_user_device_destination_and_serial() {
        let key = [9u8; 32];
        let user = UserId::new("ada").unwrap();
        let other = UserId::new("bob").unwrap();
        let d = DeviceId::from_bytes([1; 16]);
        let base = code_digest(&key, &user, d, &[0; 32], 1, "123456");
        assert_ne!(base, code_digest(&key, &other, d, &[0; 32], 1, "123456"));
        assert_ne!(
            base,
            code_digest(&key, &user, DeviceId::from_bytes([2; 16]), &[0; 32], 1, "123456")
        );
        assert_ne!(base, code_digest(&key, &user, d, &[1; 32], 1, "123456"));
        assert_ne!(base, code_digest(&key, &user, d, &[0; 32], 2, "123456"));
        assert_ne!(base, code_digest(&key, &user, d, &[0; 32], 1, "123457"));
        assert_ne!(
            destination_fingerprint(&key, &user, Channel::Email, "a@b.c"),
            destination_fingerprint(&key, &user, Channel::Sms, "a@b.c")
        );
    }

    fn sealed() -> SealedSecret {
        let keys = crate::seal::Keyring::new(crate::seal::SealingKey::new(KeyId::new("k1").unwrap(), [3; 32]));
        let user = UserId::new("ada").unwrap();
        let context = crate::seal::SealContext {
            purpose: crate::seal::DESTINATION_PURPOSE,
            user: &user,
            device: DeviceId::from_bytes([1; 16]),
        };
        keys.seal(&crate::rng::InsecureSeededRng::new(2), &context, b"ada@example.com")
            .unwrap()
    }

    #[test]
    fn a_code_is_live_until_spent_superseded_or_expired() {
        let mut r = SentCodeRecord {
            channel: Channel::Email,
            sealed_destination: sealed(),
            fingerprint: [0; 32],
            last_serial: None,
            issued: Some(issued(1, 100, 100, 1)),
        };
        assert!(r.live_code(UnixTime::from_secs(699)).is_some());
        assert!(r.live_code(UnixTime::from_secs(700)).is_none());
        r.last_serial = Some(1);
        assert!(r.live_code(UnixTime::from_secs(200)).is_none());
    }
}
