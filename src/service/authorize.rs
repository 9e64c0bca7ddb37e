//! Sensitive actions through the service: the decision of [`crate::authorize`] on the user's
//! devices and the service's clock, and the session evidence's tagged text form.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::authorize::{Action, Authorization, MAX_EVIDENCE, RecoveryMark, SessionEvidence};
use crate::clock::{Clock, UnixTime};
use crate::error::{Error, InputError, MisuseError};
use crate::evidence::Evidence;
use crate::id::UserId;
use crate::kind::DeviceKind;
use crate::policy::FirstFactor;
use crate::rng::Rng;
use crate::seal::{KeyId, SESSION_PURPOSE};
use crate::service::Mfa;
use crate::service::Verified;
use crate::store::{BrowserStore, DeviceStore};

/// The version prefix of the text form.
const PREFIX: &str = "mfa-session/1";
/// Longest text form accepted, in characters.
pub const MAX_SESSION_CHARS: usize = 8192;

/// The fields of the text form.
#[derive(Serialize, Deserialize)]
struct Body {
    user: String,
    first: First,
    first_at: u64,
    second: Vec<String>,
    #[serde(default)]
    remembered: bool,
    #[serde(default)]
    without_methods: bool,
    /// The latest recovery's set (hex id) and the methods the user had then.
    #[serde(default)]
    recovery: Option<(String, u8)>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum First {
    Password,
    Federated {
        provider: String,
        amr: Vec<String>,
        acr: Option<String>,
    },
    Passkey {
        user_verified: bool,
    },
}

impl SessionEvidence {
    /// A session signed in by a passkey ([`Mfa::finish_passwordless`](crate::Mfa::finish_passwordless)):
    /// with user verification, it is a second factor too.
    ///
    /// # Errors
    ///
    /// [`MisuseError::NotASignIn`] for the proof of an enrollment, or of a code.
    pub fn passkey_sign_in(verified: &Verified) -> Result<Self, MisuseError> {
        let evidence = verified.evidence().ok_or(MisuseError::NotASignIn)?;
        if evidence.kind() != DeviceKind::Passkey {
            return Err(MisuseError::NotASignIn);
        }
        let user_verified = evidence.user_verified() == Some(true);
        Ok(Self {
            user: verified.user().clone(),
            first: FirstFactor::Passkey { user_verified },
            first_at: evidence.at(),
            second: if user_verified { vec![evidence] } else { Vec::new() },
            remembered: false,
            without_methods: false,
            recovery: None,
        })
    }

    /// Adds a second factor verified in this session (a sign-in or a step-up). The oldest
    /// evidence goes when more than [`MAX_EVIDENCE`] are kept.
    ///
    /// # Errors
    ///
    /// [`MisuseError::NotASignIn`] for the proof of an enrollment (a TOTP confirmation, a
    /// registration), and [`MisuseError::OtherUser`] for another user's proof: nothing changes.
    pub fn add(&mut self, verified: &Verified) -> Result<(), MisuseError> {
        if verified.user() != &self.user {
            return Err(MisuseError::OtherUser);
        }
        let evidence = verified.evidence().ok_or(MisuseError::NotASignIn)?;
        // What a recovery found is recorded by `Mfa::add_evidence`, which reads the devices.
        self.recovery = None;
        self.second.push(evidence);
        if self.second.len() > MAX_EVIDENCE {
            self.second.remove(0);
        }
        Ok(())
    }
}

impl<S: DeviceStore + BrowserStore, C: Clock, R: Rng> Mfa<S, C, R> {
    /// [`SessionEvidence::add`], and for a recovery (a backup code) also what it found: the
    /// set it used and the user's other working methods, read now. A recovery allows one
    /// replacement device and one new set, and with this record [`Mfa::authorize`] tells them
    /// from what was there by counting, whatever second the clock shows. (Evidence given a
    /// recovery by `SessionEvidence::add` alone is judged by creation time: a device made in
    /// the recovery's own second counts as its replacement, which fails closed.)
    ///
    /// # Errors
    ///
    /// As [`SessionEvidence::add`]; store errors.
    pub async fn add_evidence(&self, session: &mut SessionEvidence, verified: &Verified) -> Result<(), Error> {
        session.add(verified)?;
        if verified.kind() == DeviceKind::BackupCodes {
            let methods = self
                .store
                .list_devices(verified.user())
                .await?
                .iter()
                .filter(|d| d.confirmed && d.kind() != DeviceKind::BackupCodes)
                .count();
            session.recovery = Some(RecoveryMark {
                set: verified.device(),
                methods: u8::try_from(methods).unwrap_or(u8::MAX),
            });
        }
        Ok(())
    }

    /// May `session` do `action` now? Reads the user's devices and decides by the rules of
    /// [`crate::authorize`], with the service's assurance and action policies. Call it before
    /// every sensitive action, and do the action only on [`Authorization::Allowed`]
    /// ([`Authorization::is_allowed`] fails closed).
    ///
    /// ```
    /// # use multifactor::authorize::{Action, SessionEvidence};
    /// # use multifactor::{FirstFactor, Mfa, MemoryStore, MfaConfig, Keyring, SealingKey, KeyId, UserId, UnixTime};
    /// # tokio_test_block_on(async {
    /// # let mfa = Mfa::new(MemoryStore::new(), Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [1; 32])), MfaConfig::new("Example").unwrap()).unwrap();
    /// let alice = UserId::new("alice")?;
    /// // After the password: a user without devices may enroll the first ones at once.
    /// let session = SessionEvidence::first_factor(&alice, FirstFactor::Password, UnixTime::from_secs(0));
    /// let answer = mfa.authorize(&session, Action::RegenerateBackupCodes).await?;
    /// assert!(answer.is_allowed());
    /// // Keep it in the session as text only this service can make.
    /// let kept = mfa.seal_session(&session)?;
    /// assert_eq!(mfa.open_session(&kept)?, session);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn authorize(&self, session: &SessionEvidence, action: Action<'_>) -> Result<Authorization, Error> {
        let devices = self.list_devices(session.user()).await?;
        Ok(crate::authorize::authorize(
            action,
            session,
            session.user(),
            &devices,
            self.clock.now(),
            &self.config.assurance,
            &self.config.actions,
        ))
    }

    /// A session after the first factor, now: [`SessionEvidence::first_factor`], with whether
    /// the user has any working method yet. A user without one may then set up their first
    /// methods in this session right after the first factor (within the action policy's
    /// freshness), and may use the session before they have any.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn start_session(&self, user: &UserId, first: FirstFactor) -> Result<SessionEvidence, Error> {
        let devices = self.list_devices(user).await?;
        let mut session = SessionEvidence::first_factor(user, first, self.clock.now());
        session.without_methods = !devices.iter().any(|d| d.confirmed);
        Ok(session)
    }
}

impl<S, C: Clock, R: Rng> Mfa<S, C, R> {
    /// The text form of `session` for the host's session store: its fields under an
    /// HMAC-SHA256 tag of the current key, so that no one without the key can make or alter
    /// one (it is not encrypted: it holds the user id and what they verified, when).
    ///
    /// # Errors
    ///
    /// None in practice (the current key's MAC key is always derived); a serialization error
    /// would be [`InputError::SessionEvidence`].
    pub fn seal_session(&self, session: &SessionEvidence) -> Result<String, Error> {
        let body = Body {
            user: session.user().as_str().to_owned(),
            first: match session.first() {
                FirstFactor::Password => First::Password,
                FirstFactor::Federated { provider, amr, acr } => First::Federated {
                    provider: provider.clone(),
                    amr: amr.clone(),
                    acr: acr.clone(),
                },
                FirstFactor::Passkey { user_verified } => First::Passkey {
                    user_verified: *user_verified,
                },
            },
            first_at: session.first_at().as_secs(),
            second: session.second_factors().iter().map(ToString::to_string).collect(),
            remembered: session.is_remembered_browser(),
            without_methods: session.without_methods,
            recovery: session.recovery.map(|m| (m.set.to_string(), m.methods)),
        };
        let body = serde_json::to_vec(&body).map_err(|_| InputError::SessionEvidence)?;
        let key_id = self.keys.current_id();
        let head = format!("{PREFIX}.{}.{}", B64.encode(key_id.as_str()), B64.encode(&body));
        let tag = self.session_tag(key_id, &head).ok_or(InputError::SessionEvidence)?;
        Ok(format!("{head}.{}", B64.encode(tag)))
    }

    /// Reads back what [`seal_session`](Self::seal_session) made, with any key of the keyring.
    ///
    /// # Errors
    ///
    /// [`InputError::SessionEvidence`] for anything else: another service's, altered, or made
    /// with a key the keyring no longer holds.
    pub fn open_session(&self, text: &str) -> Result<SessionEvidence, Error> {
        let bad = || Error::Input(InputError::SessionEvidence);
        if text.len() > MAX_SESSION_CHARS {
            return Err(bad());
        }
        let (head, tag) = text.rsplit_once('.').ok_or_else(bad)?;
        let mut parts = head.split('.');
        if parts.next() != Some(PREFIX) {
            return Err(bad());
        }
        let key_id = parts.next().and_then(|k| B64.decode(k).ok()).ok_or_else(bad)?;
        let key_id = String::from_utf8(key_id)
            .ok()
            .and_then(|k| KeyId::new(k).ok())
            .ok_or_else(bad)?;
        let body = parts.next().ok_or_else(bad)?;
        if parts.next().is_some() {
            return Err(bad());
        }
        let tag: [u8; 32] = B64.decode(tag).ok().and_then(|t| t.try_into().ok()).ok_or_else(bad)?;
        let expected = self.session_tag(&key_id, head).ok_or_else(bad)?;
        if !bool::from(crate::ct::eq32(&expected, &tag)) {
            return Err(bad());
        }
        let body: Body = B64
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(bad)?;
        let user = UserId::new(&body.user).map_err(|_| bad())?;
        let first = match body.first {
            First::Password => FirstFactor::Password,
            First::Federated { provider, amr, acr } => FirstFactor::Federated { provider, amr, acr },
            First::Passkey { user_verified } => FirstFactor::Passkey { user_verified },
        };
        let second = body
            .second
            .iter()
            .map(|e| e.parse::<Evidence>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad())?;
        if second.len() > MAX_EVIDENCE || body.first_at > i64::MAX as u64 {
            return Err(bad());
        }
        Ok(SessionEvidence {
            user,
            first,
            first_at: UnixTime::from_secs(body.first_at),
            second,
            remembered: body.remembered,
            without_methods: body.without_methods,
            recovery: match body.recovery {
                Some((set, methods)) => Some(RecoveryMark {
                    set: set.parse().map_err(|_| bad())?,
                    methods,
                }),
                None => None,
            },
        })
    }

    /// `HMAC-SHA256(session key of key_id, head)`.
    fn session_tag(&self, key_id: &KeyId, head: &str) -> Option<[u8; 32]> {
        let key = self.keys.mac_key(key_id, SESSION_PURPOSE)?;
        Some(crate::seal::hmac_sha256(key, &[head.as_bytes()]))
    }
}
