//! May this session do this now? One pure decision for every sensitive action: changing the
//! user's factors, and the host's own sensitive actions (a password, an email address, payout
//! details), each with its requirement.
//!
//! The session's proof is a [`SessionEvidence`]: the first factor, and the evidence of each
//! second factor verified in the session, built only from the service's own
//! [`Verified`](crate::Verified) proofs of sign-ins (an enrollment proves nothing about who holds
//! the session). The host keeps it in its session as text that only the service's keys can
//! make ([`Mfa::seal_session`](crate::Mfa::seal_session), [`Mfa::open_session`](crate::Mfa::open_session)),
//! and asks [`Mfa::authorize`](crate::Mfa::authorize) (or [`authorize`] with the user's devices)
//! before each action.
//!
//! # The rules
//!
//! | action | session | answer |
//! |---|---|---|
//! | any | another user's | denied (`OtherUser`) |
//! | any | first factor only, a second factor due, no remembered browser | denied (`SecondFactorPending`) |
//! | any | first factor only, every method spent | denied (`RecoveryRequired`) |
//! | view devices, rename a device, forget this browser, revoke known browsers | signed in | allowed |
//! | view devices, rename, forget, revoke | first factor only, every method added in this session | allowed (the session that enrolled them) |
//! | add a device, regenerate backup codes | signed in, no device yet, or every method added in this session within `fresh_secs` of its first factor | allowed (the first enrollment) |
//! | delete an unfinished setup (a TOTP device waiting for its first code) | signed in | allowed |
//! | add a device, regenerate backup codes, delete a device, remember this browser | a second factor (not a backup code) within `fresh_secs` (5 minutes) | allowed |
//! | the same four | only a code sent by email or SMS, and the user has a method that is not restricted (an app, a key, a passkey) | step up with one of those |
//! | add a device | recovery: a backup code within `fresh_secs`, no device added since | allowed (one replacement) |
//! | regenerate backup codes | recovery: a backup code within `fresh_secs`, no new set since | allowed (once) |
//! | add a device, regenerate backup codes | recovery, a replacement made already | step up (or `RecoveryUsed` without a device to step up with) |
//! | delete a device, remember this browser | recovery only | step up with a device that is not a backup code (or `NotWithRecovery`) |
//! | any of these four | otherwise | step up with the devices that can, within `fresh_secs` |
//! | a host action with a [`Requirement`] | evidence of its level within its age (never a backup code) | allowed |
//! | a host action with a [`Requirement`] | otherwise | step up with the devices that satisfy the level, or enroll one first |
//! | a host action named but not configured | any | denied (`UnknownAction`) |
//!
//! A passkey sign-in with user verification is a second factor of its own, fresh when it
//! happened. A federated first factor counts as multi-factor only for a provider the host trusts
//! by name ([`AssurancePolicy::danger_trust_upstream_mfa`]), and is never fresh evidence for
//! changing factors. Levels: [`Level::SecondFactor`] is any second factor but a backup code;
//! [`Level::Unrestricted`] any of those but a code sent by email or SMS (restricted
//! authenticators); [`Level::PhishingResistant`] a security key or passkey; [`Level::DeviceBound`] a security key
//! or passkey whose key is not synced (as registered, never from one assertion's flag alone).

use std::fmt;

use crate::clock::UnixTime;
use crate::device::DeviceInfo;
use crate::evidence::{Evidence, session_amr};
use crate::id::{DeviceId, UserId};
use crate::kind::DeviceKind;
use crate::policy::{Assurance, AssurancePolicy, FirstFactor};

/// How much second-factor evidence a session keeps (the most recent ones).
pub const MAX_EVIDENCE: usize = 8;

/// What a session has proven: who, the first factor, and each second factor since.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionEvidence {
    pub(crate) user: UserId,
    pub(crate) first: FirstFactor,
    pub(crate) first_at: UnixTime,
    pub(crate) second: Vec<Evidence>,
    pub(crate) remembered: bool,
    /// The user had no working method when the first factor was passed (known only to
    /// [`Mfa::start_session`](crate::Mfa::start_session), which reads them).
    pub(crate) without_methods: bool,
    /// The latest recovery's backup-code set and the user's other working methods then, when
    /// the service counted them: what that recovery may replace is told from these, not from
    /// creation times (a device made in the recovery's second is not necessarily after it).
    pub(crate) recovery: Option<RecoveryMark>,
}

/// What a recovery (a backup-code sign-in) found: the set it used and how many working
/// methods other than backup codes the user had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoveryMark {
    pub(crate) set: DeviceId,
    pub(crate) methods: u8,
}

impl SessionEvidence {
    /// A session after the first factor (a password the host checked, or a federated login),
    /// at `at`. It proves no second factor until [`add`](Self::add) is given one.
    /// [`Mfa::start_session`](crate::Mfa::start_session) makes the same, and also records
    /// whether the user had any method then: a user who had none may set up their first ones
    /// in this session without a second factor.
    ///
    /// A passkey sign-in starts with [`passkey_sign_in`](Self::passkey_sign_in) instead:
    /// [`FirstFactor::Passkey`] given here counts as a first factor only.
    pub fn first_factor(user: &UserId, first: FirstFactor, at: UnixTime) -> Self {
        let first = match first {
            // Only a verified assertion shows that a passkey verified its user.
            FirstFactor::Passkey { .. } => FirstFactor::Passkey { user_verified: false },
            other => other,
        };
        Self {
            user: user.clone(),
            first,
            first_at: at,
            second: Vec::new(),
            remembered: false,
            without_methods: false,
            recovery: None,
        }
    }

    /// Marks the session as signed in by a remembered browser
    /// ([`Mfa::check_remembered_browser`](crate::Mfa::check_remembered_browser) said yes after
    /// the first factor): signed in, with no second factor in this session, so never fresh for
    /// changing factors.
    pub fn remembered_browser(&mut self) {
        self.remembered = true;
    }

    /// Whether a remembered browser skipped the second factor of this session.
    pub fn is_remembered_browser(&self) -> bool {
        self.remembered
    }

    /// The user.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The first factor.
    pub fn first(&self) -> &FirstFactor {
        &self.first
    }

    /// When the first factor was passed.
    pub fn first_at(&self) -> UnixTime {
        self.first_at
    }

    /// The second factors verified in this session, oldest first.
    pub fn second_factors(&self) -> &[Evidence] {
        &self.second
    }

    /// Whether the latest second factor was a backup code: a recovery sign-in.
    pub fn is_recovery(&self) -> bool {
        self.second.last().is_some_and(is_recovery)
    }

    /// The RFC 8176 `amr` values of the session: the first factor's and the latest second
    /// factor's ([`session_amr`]).
    pub fn amr(&self, policy: &AssurancePolicy) -> Vec<String> {
        session_amr(&self.first, self.second.last(), policy)
    }

    /// The session's assurance level as an `acr` value ([`Acr`]), from its strongest second
    /// factor (any age).
    pub fn acr(&self, policy: &AssurancePolicy) -> Acr {
        let multi = !self.second.is_empty() || matches!(policy.decide(&self.first, &[]), Assurance::Satisfied(_));
        if !multi {
            return Acr::SingleFactor;
        }
        if self
            .second
            .iter()
            .any(|e| satisfies(e, Level::DeviceBound) && e.user_verified() == Some(true))
        {
            Acr::HardwareBound
        } else if self.second.iter().any(|e| satisfies(e, Level::PhishingResistant)) {
            Acr::PhishingResistant
        } else {
            Acr::MultiFactor
        }
    }
}

impl fmt::Debug for SessionEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEvidence")
            .field("user", &self.user)
            .field("first", &self.first)
            .field("first_at", &self.first_at)
            .field("second", &self.second)
            .field("remembered", &self.remembered)
            .finish()
    }
}

/// An `acr` value: how strong the session's factors are, mapped to NIST SP 800-63B-4
/// authenticator assurance levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Acr {
    /// One factor (AAL1): `"aal1"`.
    SingleFactor,
    /// Two factors, at least one a one-time code or a synced key without user verification
    /// (AAL2): `"aal2"`.
    MultiFactor,
    /// Two factors, one a WebAuthn credential (AAL2, phishing-resistant): `"aal2-phr"`.
    PhishingResistant,
    /// A device-bound WebAuthn key that verified its user (AAL3 when the authenticator is
    /// hardware-based, as a security key or a platform authenticator's device-bound key is):
    /// `"aal3"`.
    HardwareBound,
}

impl Acr {
    /// The `acr` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SingleFactor => "aal1",
            Self::MultiFactor => "aal2",
            Self::PhishingResistant => "aal2-phr",
            Self::HardwareBound => "aal3",
        }
    }
}

/// What a second factor must be to satisfy a requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Level {
    /// Any second factor but a backup code (a recovery).
    SecondFactor,
    /// Any second factor but a backup code or a restricted one: not a code sent by email or
    /// SMS ([`DeviceKind::is_restricted`]).
    Unrestricted,
    /// A security key or passkey (WebAuthn: bound to the site's origin).
    PhishingResistant,
    /// A security key or passkey whose key is not synced to other devices.
    DeviceBound,
}

impl Level {
    /// The kinds of device that can satisfy it.
    pub fn kinds(self) -> Vec<DeviceKind> {
        match self {
            Self::SecondFactor => vec![
                DeviceKind::Totp,
                DeviceKind::SecurityKey,
                DeviceKind::Passkey,
                DeviceKind::Email,
                DeviceKind::Sms,
            ],
            Self::Unrestricted => vec![DeviceKind::Totp, DeviceKind::SecurityKey, DeviceKind::Passkey],
            Self::PhishingResistant | Self::DeviceBound => vec![DeviceKind::SecurityKey, DeviceKind::Passkey],
        }
    }
}

/// What a sensitive action needs: a second factor of `level`, at most `max_age_secs` old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The kind of second factor.
    pub level: Level,
    /// Its greatest age, in seconds.
    pub max_age_secs: u64,
}

impl Requirement {
    /// A second factor of `level` within `max_age_secs`.
    pub const fn new(level: Level, max_age_secs: u64) -> Self {
        Self { level, max_age_secs }
    }
}

/// A sensitive action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action<'a> {
    /// List the user's devices.
    ViewDevices,
    /// Add a device of this kind.
    AddDevice(DeviceKind),
    /// Rename a device.
    RenameDevice(DeviceId),
    /// Delete a device.
    DeleteDevice(DeviceId),
    /// Generate a new backup-code set (the old codes stop working).
    RegenerateBackupCodes,
    /// Remember this browser (it then skips the second factor).
    RememberBrowser,
    /// Forget this browser.
    ForgetBrowser,
    /// Revoke the user's known and remembered browsers.
    RevokeKnownBrowsers,
    /// A host action with its requirement (a password or email change, payout details).
    Sensitive(Requirement),
    /// A host action or client by name, whose requirement the policy holds
    /// ([`ActionPolicy::require`]). A name it does not hold is denied.
    Named(&'a str),
}

/// Why an action is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Denial {
    /// The session is another user's.
    OtherUser,
    /// The session passed the first factor only, and a second factor is due.
    SecondFactorPending,
    /// The session passed the first factor only, and the user has no working method left.
    RecoveryRequired,
    /// A recovery sign-in allows one replacement device and one new backup-code set, made
    /// already; there is no other device to step up with.
    RecoveryUsed,
    /// A recovery sign-in does not allow this, and no other device can step up.
    NotWithRecovery,
    /// A named action the policy does not hold.
    UnknownAction,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authorization {
    /// Go ahead.
    Allowed,
    /// A fresh second factor first: any of `devices`, within `max_age_secs` of the action.
    StepUp {
        /// The user's usable devices that satisfy the requirement.
        devices: Vec<DeviceInfo>,
        /// The greatest age of the step-up, in seconds.
        max_age_secs: u64,
    },
    /// The user has no device that satisfies the requirement: enroll one of these kinds first.
    EnrollFirst {
        /// The kinds that would.
        kinds: Vec<DeviceKind>,
    },
    /// Not in this session.
    Denied(Denial),
}

impl Authorization {
    /// True only for [`Authorization::Allowed`]: fails closed for every other answer, including
    /// any a later version adds.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed)
    }
}

/// The rules' settings: how fresh a second factor must be to change factors, and the
/// requirements of named host actions or clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPolicy {
    fresh_secs: u64,
    named: Vec<(String, Requirement)>,
}

impl Default for ActionPolicy {
    fn default() -> Self {
        Self {
            fresh_secs: Self::DEFAULT_FRESH_SECS,
            named: Vec::new(),
        }
    }
}

impl ActionPolicy {
    /// How recent a second factor must be to change factors by default: 5 minutes.
    pub const DEFAULT_FRESH_SECS: u64 = 300;

    /// The defaults: 5 minutes, no named actions.
    pub fn new() -> Self {
        Self::default()
    }

    /// How recent a second factor must be to change factors (at least 30 seconds, at most a day).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ActionPolicy`](crate::error::ConfigError::ActionPolicy) outside that range.
    pub fn with_fresh_secs(mut self, secs: u64) -> Result<Self, crate::error::ConfigError> {
        if !(30..=86_400).contains(&secs) {
            return Err(crate::error::ConfigError::ActionPolicy("fresh_secs must be 30..=86400"));
        }
        self.fresh_secs = secs;
        Ok(self)
    }

    /// The requirement of a named host action or client (`"change-password"`, `"payouts"`,
    /// `"admin-console"`), asked with [`Action::Named`].
    #[must_use]
    pub fn require(mut self, name: &str, requirement: Requirement) -> Self {
        self.named.retain(|(n, _)| n != name);
        self.named.push((name.to_owned(), requirement));
        self
    }

    /// How recent a second factor must be to change factors.
    pub fn fresh_secs(&self) -> u64 {
        self.fresh_secs
    }

    fn named(&self, name: &str) -> Option<Requirement> {
        self.named.iter().find(|(n, _)| n == name).map(|(_, r)| *r)
    }
}

fn is_recovery(evidence: &Evidence) -> bool {
    evidence.kind() == DeviceKind::BackupCodes
}

/// Whether `evidence` is a second factor of `level`.
fn satisfies(evidence: &Evidence, level: Level) -> bool {
    match (level, evidence.kind()) {
        (_, DeviceKind::BackupCodes) => false,
        (Level::SecondFactor, _) => true,
        (Level::Unrestricted, kind) => !kind.is_restricted(),
        (Level::PhishingResistant, kind) => matches!(kind, DeviceKind::SecurityKey | DeviceKind::Passkey),
        (Level::DeviceBound, kind) => {
            matches!(kind, DeviceKind::SecurityKey | DeviceKind::Passkey) && evidence.synced() == Some(false)
        }
    }
}

/// Whether `device` can give a second factor of `level`.
fn can_satisfy(device: &DeviceInfo, level: Level) -> bool {
    device.is_usable()
        && match (level, device.kind) {
            (_, DeviceKind::BackupCodes) => false,
            (Level::SecondFactor, _) => true,
            (Level::Unrestricted, kind) => !kind.is_restricted(),
            (Level::PhishingResistant, kind) => matches!(kind, DeviceKind::SecurityKey | DeviceKind::Passkey),
            (Level::DeviceBound, kind) => {
                matches!(kind, DeviceKind::SecurityKey | DeviceKind::Passkey) && device.synced == Some(false)
            }
        }
}

/// Decides whether `session` may do `action` at `now`, given the user's devices (from
/// [`Mfa::list_devices`](crate::Mfa::list_devices)), the assurance policy and the action
/// policy. See the [module docs](self) for the rules.
pub fn authorize(
    action: Action<'_>,
    session: &SessionEvidence,
    user: &UserId,
    devices: &[DeviceInfo],
    now: UnixTime,
    assurance: &AssurancePolicy,
    policy: &ActionPolicy,
) -> Authorization {
    if &session.user != user {
        return Authorization::Denied(Denial::OtherUser);
    }
    let fresh_secs = policy.fresh_secs;
    // A user who had no method when they signed in, and enrolled their first ones in this
    // session (every confirmed method is from after its first factor).
    let enrolled_here = session.without_methods
        && devices.iter().any(|d| d.confirmed)
        && devices
            .iter()
            .filter(|d| d.confirmed)
            .all(|d| d.created_at >= session.first_at);
    // Signed in at all: a second factor in the session, a first factor that is multi-factor on
    // its own (a trusted provider), or a user who had no method when the session began.
    if session.second.is_empty() && !enrolled_here && !session.remembered {
        match assurance.decide(&session.first, devices) {
            Assurance::Satisfied(_) | Assurance::NotEnrolled => {}
            Assurance::RecoveryRequired => return Authorization::Denied(Denial::RecoveryRequired),
            // Due, or anything a later version adds.
            _ => return Authorization::Denied(Denial::SecondFactorPending),
        }
    }
    let fresh = |level: Level, max_age: u64| {
        session
            .second
            .iter()
            .any(|e| satisfies(e, level) && e.is_fresh(now, max_age))
    };
    let step_up = |level: Level, max_age: u64| {
        let able: Vec<DeviceInfo> = devices.iter().filter(|d| can_satisfy(d, level)).cloned().collect();
        if able.is_empty() {
            Authorization::EnrollFirst { kinds: level.kinds() }
        } else {
            Authorization::StepUp {
                devices: able,
                max_age_secs: max_age,
            }
        }
    };
    let requirement = |requirement: Requirement| {
        if fresh(requirement.level, requirement.max_age_secs) {
            Authorization::Allowed
        } else {
            step_up(requirement.level, requirement.max_age_secs)
        }
    };
    // The latest recovery (backup code) within the window, if the session's latest second
    // factor is one.
    let recovery_at = session
        .second
        .last()
        .filter(|e| is_recovery(e) && e.is_fresh(now, fresh_secs))
        .map(Evidence::at);
    // What may change the user's factors: any second factor but a backup code, and not a
    // restricted one (a code by email or SMS) while the user has a method that is not: a
    // mailbox or a phone number taken over must not remove or outnumber the stronger methods.
    let change = if devices.iter().any(|d| can_satisfy(d, Level::Unrestricted)) {
        Level::Unrestricted
    } else {
        Level::SecondFactor
    };
    // No method yet, or the first ones added in this session, right after its first factor.
    let first_enrollment = !devices.iter().any(|d| d.confirmed)
        || (enrolled_here && session.first_at <= now && now.secs_since(session.first_at) <= fresh_secs);
    match action {
        Action::ViewDevices | Action::RenameDevice(_) | Action::ForgetBrowser | Action::RevokeKnownBrowsers => {
            Authorization::Allowed
        }
        Action::AddDevice(_) | Action::RegenerateBackupCodes if first_enrollment => Authorization::Allowed,
        // An unfinished setup (a TOTP device still waiting for its first code) is no factor.
        Action::DeleteDevice(id) if devices.iter().any(|d| d.id == id && !d.confirmed) => Authorization::Allowed,
        Action::AddDevice(_) | Action::RegenerateBackupCodes | Action::DeleteDevice(_) | Action::RememberBrowser
            if fresh(change, fresh_secs) =>
        {
            Authorization::Allowed
        }
        Action::AddDevice(_) | Action::RegenerateBackupCodes if recovery_at.is_some() => {
            let since = recovery_at.unwrap_or(now);
            let replaced = match (action, session.recovery) {
                // Counted against what the recovery found: the set it used is no longer the
                // user's, or there are more methods than then (confirmed, or set up since).
                (Action::RegenerateBackupCodes, Some(mark)) => !devices
                    .iter()
                    .any(|d| d.id == mark.set && d.kind == DeviceKind::BackupCodes),
                (_, Some(mark)) => {
                    devices
                        .iter()
                        .filter(|d| d.kind != DeviceKind::BackupCodes && (d.confirmed || d.created_at >= since))
                        .count()
                        > usize::from(mark.methods)
                }
                // Evidence without the count (made by hand): by creation time, failing closed
                // for a device made in the recovery's own second.
                (_, None) => devices.iter().any(|d| {
                    d.created_at >= since
                        && match action {
                            Action::RegenerateBackupCodes => d.kind == DeviceKind::BackupCodes,
                            _ => d.kind != DeviceKind::BackupCodes,
                        }
                }),
            };
            if !replaced {
                Authorization::Allowed
            } else {
                match step_up(change, fresh_secs) {
                    Authorization::EnrollFirst { .. } => Authorization::Denied(Denial::RecoveryUsed),
                    other => other,
                }
            }
        }
        Action::DeleteDevice(_) | Action::RememberBrowser if recovery_at.is_some() => {
            match step_up(change, fresh_secs) {
                Authorization::EnrollFirst { .. } => Authorization::Denied(Denial::NotWithRecovery),
                other => other,
            }
        }
        Action::AddDevice(_) | Action::RegenerateBackupCodes | Action::DeleteDevice(_) | Action::RememberBrowser => {
            step_up(change, fresh_secs)
        }
        Action::Sensitive(r) => requirement(r),
        Action::Named(name) => match policy.named(name) {
            Some(r) => requirement(r),
            None => Authorization::Denied(Denial::UnknownAction),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::id::DeviceName;

    const NOW: u64 = 1_800_000_000;
    const FIVE_MINUTES: u64 = 300;

    fn at(secs: u64) -> UnixTime {
        UnixTime::from_secs(secs)
    }

    fn device(n: u8, kind: DeviceKind, created: u64, left: Option<usize>, synced: Option<bool>) -> DeviceInfo {
        DeviceInfo {
            id: DeviceId::from_bytes([n; 16]),
            kind,
            name: DeviceName::new("d").unwrap(),
            created_at: at(created),
            last_used_at: None,
            confirmed: true,
            remaining_backup_codes: left,
            synced,
            backed_up: synced,
            aaguid: None,
            prf: None,
            destination: None,
            provider: None,
        }
    }

    /// An app, a set of 6 codes, a synced passkey and a device-bound security key, all a year old.
    fn typical() -> Vec<DeviceInfo> {
        let old = NOW - 365 * 86_400;
        vec![
            device(1, DeviceKind::Totp, old, None, None),
            device(2, DeviceKind::BackupCodes, old, Some(6), None),
            device(3, DeviceKind::Passkey, old, None, Some(true)),
            device(4, DeviceKind::SecurityKey, old, None, Some(false)),
        ]
    }

    fn session(second: &[Evidence]) -> SessionEvidence {
        let mut s = SessionEvidence::first_factor(&alice(), FirstFactor::Password, at(NOW - 700));
        s.second = second.to_vec();
        s
    }

    fn alice() -> UserId {
        UserId::new("alice").unwrap()
    }

    fn evidence(kind: DeviceKind, ago: u64, synced: Option<bool>) -> Evidence {
        let uv = kind.eq(&DeviceKind::Passkey) || kind.eq(&DeviceKind::SecurityKey);
        Evidence::new(kind, at(NOW - ago), uv.then_some(true), synced)
    }

    /// The state a column of the manual's table names: the session, and the user's devices.
    fn state(name: &str) -> (SessionEvidence, Vec<DeviceInfo>) {
        match name {
            "password only" => (session(&[]), typical()),
            "codes spent" => (
                session(&[]),
                vec![device(2, DeviceKind::BackupCodes, NOW - 86_400, Some(0), None)],
            ),
            "new user" => (session(&[]), Vec::new()),
            "first methods added" => {
                let mut s = session(&[]);
                s.without_methods = true;
                s.first_at = at(NOW - 120);
                let devices = vec![
                    device(1, DeviceKind::Totp, NOW - 60, None, None),
                    device(2, DeviceKind::BackupCodes, NOW - 30, Some(6), None),
                ];
                (s, devices)
            }
            "first methods, 10 min later" => {
                let mut s = session(&[]);
                s.without_methods = true;
                s.first_at = at(NOW - 660);
                let devices = vec![
                    device(1, DeviceKind::Totp, NOW - 600, None, None),
                    device(2, DeviceKind::BackupCodes, NOW - 590, Some(6), None),
                ];
                (s, devices)
            }
            "TOTP 1 min ago" => (session(&[evidence(DeviceKind::Totp, 60, None)]), typical()),
            "TOTP 10 min ago" => (session(&[evidence(DeviceKind::Totp, 600, None)]), typical()),
            "backup code 1 min ago" => (session(&[evidence(DeviceKind::BackupCodes, 60, None)]), typical()),
            "backup code, device added" => {
                let mut devices = typical();
                devices.push(device(5, DeviceKind::Totp, NOW - 30, None, None));
                (session(&[evidence(DeviceKind::BackupCodes, 60, None)]), devices)
            }
            "passkey 1 min ago" => (session(&[evidence(DeviceKind::Passkey, 60, Some(true))]), typical()),
            "security key 1 min ago" => (
                session(&[evidence(DeviceKind::SecurityKey, 60, Some(false))]),
                typical(),
            ),
            "remembered browser" => {
                let mut s = session(&[]);
                s.remembered_browser();
                (s, typical())
            }
            "other user" => {
                let mut s = session(&[evidence(DeviceKind::Totp, 60, None)]);
                s.user = UserId::new("mallory").unwrap();
                (s, typical())
            }
            other => panic!("the manual's table names an unknown state {other:?}"),
        }
    }

    fn action(name: &str) -> Action<'static> {
        let some = DeviceId::from_bytes([1; 16]);
        match name {
            "view devices" => Action::ViewDevices,
            "rename a device" => Action::RenameDevice(some),
            "add an authenticator app" => Action::AddDevice(DeviceKind::Totp),
            "add a passkey" => Action::AddDevice(DeviceKind::Passkey),
            "regenerate backup codes" => Action::RegenerateBackupCodes,
            "delete a device" => Action::DeleteDevice(some),
            "remember this browser" => Action::RememberBrowser,
            "revoke known browsers" => Action::RevokeKnownBrowsers,
            "phishing-resistant" => Action::Sensitive(Requirement::new(Level::PhishingResistant, FIVE_MINUTES)),
            "device-bound" => Action::Sensitive(Requirement::new(Level::DeviceBound, FIVE_MINUTES)),
            other => panic!("the manual's table names an unknown action {other:?}"),
        }
    }

    fn word(answer: &Authorization) -> &'static str {
        match answer {
            Authorization::Allowed => "allowed",
            Authorization::StepUp { .. } => "step-up",
            Authorization::EnrollFirst { .. } => "enroll",
            Authorization::Denied(Denial::SecondFactorPending) => "pending",
            Authorization::Denied(Denial::RecoveryRequired) => "recovery",
            Authorization::Denied(Denial::RecoveryUsed) => "used",
            Authorization::Denied(Denial::NotWithRecovery) => "not-with-recovery",
            Authorization::Denied(Denial::OtherUser) => "other",
            Authorization::Denied(Denial::UnknownAction) => "unknown",
        }
    }

    fn decide(action: Action<'_>, state: &(SessionEvidence, Vec<DeviceInfo>)) -> Authorization {
        authorize(
            action,
            &state.0,
            &alice(),
            &state.1,
            at(NOW),
            &AssurancePolicy::new(),
            &ActionPolicy::new(),
        )
    }

    /// Every cell of the manual's table of actions and sessions is what the code answers.
    #[test]
    fn the_manuals_table_is_the_code() {
        let manual = include_str!("manual.rs");
        let start = manual.find("<!-- authorize-table -->").expect("table start");
        let end = manual.find("<!-- /authorize-table -->").expect("table end");
        let rows: Vec<Vec<&str>> = manual[start..end]
            .lines()
            .map(|l| l.trim_start_matches("//!").trim())
            .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
            .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
            .collect();
        let (header, body) = rows.split_first().expect("a header row");
        let mut cells = 0;
        for row in body {
            assert_eq!(row.len(), header.len(), "{row:?}");
            for (column, want) in header.iter().zip(row).skip(1) {
                let got = decide(action(row[0]), &state(column));
                assert_eq!(word(&got), *want, "{} in state {column:?}: {got:?}", row[0]);
                cells += 1;
            }
        }
        assert_eq!(cells, 130, "the table lost rows or columns");
    }

    /// The stolen-session chain: an old session cannot regenerate the codes (which would give
    /// it new ones to pass the delete step-up with), delete a device, or add its own passkey.
    #[test]
    fn a_stolen_old_session_changes_no_factor() {
        let old = state("TOTP 10 min ago");
        for a in [
            Action::RegenerateBackupCodes,
            Action::DeleteDevice(DeviceId::from_bytes([1; 16])),
            Action::AddDevice(DeviceKind::Passkey),
        ] {
            let answer = decide(a, &old);
            assert!(!answer.is_allowed(), "{a:?}");
            // The step-up never offers the backup codes: a recovery is no step-up.
            let Authorization::StepUp { devices, max_age_secs } = answer else {
                panic!("{a:?}: {answer:?}")
            };
            assert_eq!(max_age_secs, FIVE_MINUTES);
            assert!(devices.iter().all(|d| d.kind != DeviceKind::BackupCodes), "{devices:?}");
        }
        // Even a fresh backup code (a recovery) does not make deleting the others possible.
        let recovery = state("backup code 1 min ago");
        assert!(!decide(Action::DeleteDevice(DeviceId::from_bytes([1; 16])), &recovery).is_allowed());
    }

    /// A recovery with no other device: one replacement, then no more; no deletion at all.
    #[test]
    fn a_recovery_alone_replaces_once() {
        let spent_but_one = vec![device(2, DeviceKind::BackupCodes, NOW - 86_400, Some(3), None)];
        let s = session(&[evidence(DeviceKind::BackupCodes, 60, None)]);
        let st = (s.clone(), spent_but_one.clone());
        assert!(decide(Action::AddDevice(DeviceKind::Totp), &st).is_allowed());
        assert_eq!(
            decide(Action::DeleteDevice(DeviceId::from_bytes([2; 16])), &st),
            Authorization::Denied(Denial::NotWithRecovery)
        );
        // A replacement TOTP device was enrolled but not confirmed: no replacement yet. Once a
        // new set is made, another one is not.
        let mut after = spent_but_one;
        after.push(device(6, DeviceKind::BackupCodes, NOW - 10, Some(6), None));
        let st = (s, after);
        assert_eq!(
            decide(Action::RegenerateBackupCodes, &st),
            Authorization::Denied(Denial::RecoveryUsed)
        );
        // Past the freshness window the recovery counts for nothing.
        let stale = (session(&[evidence(DeviceKind::BackupCodes, 301, None)]), st.1.clone());
        assert_eq!(
            decide(Action::AddDevice(DeviceKind::Totp), &stale),
            Authorization::EnrollFirst {
                kinds: Level::SecondFactor.kinds()
            }
        );
    }

    /// A federated first factor: signed in only for a provider the host trusts by name, and
    /// never fresh for changing factors; a host-declared passkey first factor is no evidence.
    #[test]
    fn federated_and_declared_first_factors() {
        let google = FirstFactor::Federated {
            provider: "google".into(),
            amr: vec!["mfa".into()],
            acr: None,
        };
        let s = SessionEvidence::first_factor(&alice(), google, at(NOW - 10));
        let untrusted = authorize(
            Action::ViewDevices,
            &s,
            &alice(),
            &typical(),
            at(NOW),
            &AssurancePolicy::new(),
            &ActionPolicy::new(),
        );
        assert_eq!(untrusted, Authorization::Denied(Denial::SecondFactorPending));
        let trusting = AssurancePolicy::new().danger_trust_upstream_mfa("google", &["mfa"], &[]);
        let go = |a| authorize(a, &s, &alice(), &typical(), at(NOW), &trusting, &ActionPolicy::new());
        assert!(go(Action::ViewDevices).is_allowed());
        assert!(matches!(
            go(Action::RegenerateBackupCodes),
            Authorization::StepUp { .. }
        ));
        let declared = SessionEvidence::first_factor(&alice(), FirstFactor::Passkey { user_verified: true }, at(NOW));
        assert_eq!(declared.first(), &FirstFactor::Passkey { user_verified: false });
        assert_eq!(
            authorize(
                Action::ViewDevices,
                &declared,
                &alice(),
                &typical(),
                at(NOW),
                &AssurancePolicy::new(),
                &ActionPolicy::new()
            ),
            Authorization::Denied(Denial::SecondFactorPending)
        );
    }

    /// Named actions: their requirement, or denied when the policy does not hold the name.
    #[test]
    fn named_actions_follow_the_policy_and_unknown_ones_are_denied() {
        let policy = ActionPolicy::new()
            .require("payouts", Requirement::new(Level::PhishingResistant, 120))
            .with_fresh_secs(600)
            .unwrap();
        let totp = state("TOTP 1 min ago");
        let go = |a, st: &(SessionEvidence, Vec<DeviceInfo>)| {
            authorize(a, &st.0, &alice(), &st.1, at(NOW), &AssurancePolicy::new(), &policy)
        };
        let Authorization::StepUp { devices, max_age_secs } = go(Action::Named("payouts"), &totp) else {
            panic!()
        };
        assert_eq!(max_age_secs, 120);
        assert!(
            devices
                .iter()
                .all(|d| matches!(d.kind, DeviceKind::Passkey | DeviceKind::SecurityKey))
        );
        assert!(go(Action::Named("payouts"), &state("security key 1 min ago")).is_allowed());
        assert_eq!(
            go(Action::Named("nope"), &totp),
            Authorization::Denied(Denial::UnknownAction)
        );
        // 10 minutes old passes a 10-minute window.
        assert!(go(Action::RegenerateBackupCodes, &state("TOTP 10 min ago")).is_allowed());
        assert!(ActionPolicy::new().with_fresh_secs(29).is_err());
        assert!(ActionPolicy::new().with_fresh_secs(86_401).is_err());
    }

    #[test]
    fn acr_follows_the_strongest_second_factor() {
        let p = AssurancePolicy::new();
        assert_eq!(state("password only").0.acr(&p), Acr::SingleFactor);
        assert_eq!(state("TOTP 1 min ago").0.acr(&p), Acr::MultiFactor);
        assert_eq!(state("passkey 1 min ago").0.acr(&p), Acr::PhishingResistant);
        assert_eq!(state("security key 1 min ago").0.acr(&p), Acr::HardwareBound);
        assert_eq!(Acr::HardwareBound.as_str(), "aal3");
        assert_eq!(state("TOTP 1 min ago").0.amr(&p), ["mfa", "otp", "pwd"]);
    }

    /// A code sent by email or SMS changes factors only for a user who has nothing stronger:
    /// with an app or a key, the session steps up with one of those.
    #[test]
    fn a_restricted_code_does_not_change_stronger_factors() {
        let email = device(7, DeviceKind::Email, NOW - 86_400, None, None);
        let emailed = session(&[evidence(DeviceKind::Email, 60, None)]);
        let mut with_app = typical();
        with_app.push(email.clone());
        let factor_changes = [
            Action::AddDevice(DeviceKind::Totp),
            Action::RegenerateBackupCodes,
            Action::DeleteDevice(DeviceId::from_bytes([1; 16])),
            Action::DeleteDevice(email.id),
            Action::RememberBrowser,
        ];
        for action in factor_changes {
            match decide(action, &(emailed.clone(), with_app.clone())) {
                Authorization::StepUp { devices, .. } => assert!(
                    !devices.is_empty()
                        && devices
                            .iter()
                            .all(|d| !d.kind.is_restricted() && d.kind != DeviceKind::BackupCodes),
                    "{action:?}: {devices:?}"
                ),
                other => panic!("{action:?} with only an emailed code: {other:?}"),
            }
        }
        // Viewing and renaming need no more than being signed in.
        assert!(decide(Action::ViewDevices, &(emailed.clone(), with_app.clone())).is_allowed());
        // An app code from the last minutes changes them.
        let app = session(&[
            evidence(DeviceKind::Email, 60, None),
            evidence(DeviceKind::Totp, 30, None),
        ]);
        for action in factor_changes {
            assert!(
                decide(action, &(app.clone(), with_app.clone())).is_allowed(),
                "{action:?}"
            );
        }
        // A user whose only methods are restricted (and backup codes) is not locked out of them.
        let only_email = vec![
            email.clone(),
            device(2, DeviceKind::BackupCodes, NOW - 86_400, Some(6), None),
        ];
        for action in factor_changes {
            assert!(
                decide(action, &(emailed.clone(), only_email.clone())).is_allowed(),
                "{action:?}"
            );
        }
    }
}
