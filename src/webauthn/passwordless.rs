//! Passwordless ceremonies the server does not store until one succeeds.
//!
//! Anyone may start a passwordless sign-in: no user is known yet. A ceremony kept in the store
//! from its start would let a flood of starts grow the store without limit. So the start stores
//! nothing: the engine's state (the challenge and what it was issued for) travels in the handle
//! the host gets, with its id, its expiry and the id of the key that signed it, under an
//! HMAC-SHA256 tag keyed for this purpose alone. The state is not secret (the browser receives
//! the same challenge); the tag makes it unforgeable and unalterable.
//!
//! The finish checks the tag (in constant time) and the expiry, then the assertion. Only an
//! assertion whose signature verified writes anything: a used-marker under the ceremony's id,
//! inserted atomically, which expires with the ceremony. A second finish of the same handle
//! finds the marker and is rejected. Writes are therefore bounded by real sign-ins, not by
//! requests.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::UnixTime;
use crate::error::InputError;
use crate::id::CeremonyId;
use crate::seal::KeyId;

/// The version byte of the encoding.
const VERSION: u8 = 1;
/// Longest handle accepted, in characters (the engine's state is a few hundred bytes).
pub const MAX_PASSWORDLESS_CEREMONY_CHARS: usize = 4096;
/// Bytes of the tag.
const TAG: usize = 32;

/// A started passwordless sign-in: what [`Mfa::start_passwordless`](crate::Mfa::start_passwordless)
/// returns and [`Mfa::finish_passwordless`](crate::Mfa::finish_passwordless) takes back.
///
/// It carries the ceremony's state under a tag only this service's keys can make, so the server
/// keeps nothing between start and finish. Its text form ([`Display`](fmt::Display), parsed back
/// with [`FromStr`]) is URL-safe base64 of a few hundred characters: hand it to the browser with
/// the options, or keep it in the session. It is not a secret, and it can be finished once.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordlessCeremony {
    id: CeremonyId,
    expires_at: UnixTime,
    key_id: KeyId,
    state: Vec<u8>,
    tag: [u8; TAG],
}

impl PasswordlessCeremony {
    /// Signs a new ceremony with `key` (the MAC key of `key_id` for this purpose).
    pub(crate) fn sign(
        id: CeremonyId,
        expires_at: UnixTime,
        key_id: KeyId,
        key: &[u8; 32],
        state: Vec<u8>,
    ) -> Result<Self, InputError> {
        let mut ceremony = Self {
            id,
            expires_at,
            key_id,
            state,
            tag: [0; TAG],
        };
        let body = ceremony.body()?;
        ceremony.tag = mac(key, &body);
        Ok(ceremony)
    }

    /// Its id (the used-marker's id once it succeeds).
    pub fn id(&self) -> CeremonyId {
        self.id
    }

    /// When it expires.
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// The id of the key its tag was made with.
    pub(crate) fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The engine's state, if the tag is the one `key` makes (compared in constant time).
    pub(crate) fn verified_state(&self, key: &[u8; 32]) -> Option<&[u8]> {
        let body = self.body().ok()?;
        bool::from(crate::ct::eq32(&mac(key, &body), &self.tag)).then_some(self.state.as_slice())
    }

    /// Everything the tag covers: version, id, expiry, key id, state.
    fn body(&self) -> Result<Vec<u8>, InputError> {
        let key_id = self.key_id.as_str().as_bytes();
        let key_len = u8::try_from(key_id.len()).map_err(|_| InputError::PasswordlessCeremony)?;
        let mut body = Vec::with_capacity(1 + 16 + 8 + 1 + key_id.len() + self.state.len());
        body.push(VERSION);
        body.extend_from_slice(self.id.as_bytes());
        body.extend_from_slice(&self.expires_at.as_secs().to_be_bytes());
        body.push(key_len);
        body.extend_from_slice(key_id);
        body.extend_from_slice(&self.state);
        Ok(body)
    }
}

/// `HMAC-SHA256(key, body)`.
fn mac(key: &[u8; 32], body: &[u8]) -> [u8; TAG] {
    crate::seal::hmac_sha256(key, &[body])
}

impl fmt::Display for PasswordlessCeremony {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A ceremony is only ever made by `sign` or `from_str`, whose key ids fit a byte.
        let Ok(mut bytes) = self.body() else {
            return Err(fmt::Error);
        };
        bytes.extend_from_slice(&self.tag);
        f.write_str(&URL_SAFE_NO_PAD.encode(bytes))
    }
}

impl fmt::Debug for PasswordlessCeremony {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordlessCeremony")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl FromStr for PasswordlessCeremony {
    type Err = InputError;

    /// Parses the text form. Only the shape is checked here; the tag and the expiry are checked
    /// by the finish.
    ///
    /// # Errors
    ///
    /// [`InputError::PasswordlessCeremony`] for anything that is not in the form this crate issues.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = InputError::PasswordlessCeremony;
        if s.len() > MAX_PASSWORDLESS_CEREMONY_CHARS {
            return Err(bad);
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad.clone())?;
        let (&version, rest) = bytes.split_first().ok_or(bad.clone())?;
        if version != VERSION {
            return Err(bad);
        }
        let (id, rest) = rest.split_at_checked(16).ok_or(bad.clone())?;
        let (expires, rest) = rest.split_at_checked(8).ok_or(bad.clone())?;
        let (&key_len, rest) = rest.split_first().ok_or(bad.clone())?;
        let (key_id, rest) = rest.split_at_checked(usize::from(key_len)).ok_or(bad.clone())?;
        let state_len = rest.len().checked_sub(TAG).ok_or(bad.clone())?;
        let (state, tag) = rest.split_at(state_len);
        if state.is_empty() {
            return Err(bad);
        }
        let id: [u8; 16] = id.try_into().map_err(|_| bad.clone())?;
        let expires: [u8; 8] = expires.try_into().map_err(|_| bad.clone())?;
        let tag: [u8; TAG] = tag.try_into().map_err(|_| bad.clone())?;
        let key_id = std::str::from_utf8(key_id)
            .ok()
            .and_then(|k| KeyId::new(k).ok())
            .ok_or(bad)?;
        Ok(Self {
            id: CeremonyId::from_bytes(id),
            expires_at: UnixTime::from_secs(u64::from_be_bytes(expires)),
            key_id,
            state: state.to_vec(),
            tag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed() -> PasswordlessCeremony {
        PasswordlessCeremony::sign(
            CeremonyId::from_bytes([7; 16]),
            UnixTime::from_secs(1_000),
            KeyId::new("k1").unwrap(),
            &[9; 32],
            br#"{"challenge":"abc"}"#.to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn round_trips_through_its_text_form() {
        let c = signed();
        let text = c.to_string();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let back: PasswordlessCeremony = text.parse().unwrap();
        assert_eq!(back, c);
        assert_eq!(back.verified_state(&[9; 32]), Some(&br#"{"challenge":"abc"}"#[..]));
    }

    #[test]
    fn another_key_or_any_changed_byte_fails_the_tag() {
        let c = signed();
        assert_eq!(c.verified_state(&[8; 32]), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(c.to_string()).unwrap();
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                bytes[i] ^= bit;
                let text = URL_SAFE_NO_PAD.encode(&bytes);
                if let Ok(parsed) = text.parse::<PasswordlessCeremony>() {
                    assert_eq!(parsed.verified_state(&[9; 32]), None, "byte {i} bit {bit:#x}");
                }
                bytes[i] ^= bit;
            }
        }
    }

    #[test]
    fn malformed_text_is_an_input_error() {
        let good = signed().to_string();
        for bad in [
            String::new(),
            "!!".into(),
            good[..20].to_string(),
            format!("{good}="),
            "A".repeat(MAX_PASSWORDLESS_CEREMONY_CHARS + 1),
            URL_SAFE_NO_PAD.encode([2u8; 80]),
        ] {
            assert_eq!(
                bad.parse::<PasswordlessCeremony>(),
                Err(InputError::PasswordlessCeremony),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_shows_no_state() {
        let shown = format!("{:?}", signed());
        assert!(!shown.contains("challenge"), "{shown}");
    }
}
