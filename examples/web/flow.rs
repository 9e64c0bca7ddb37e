//! The sign-in flow between pages: what comes after the first factor, the step-up gate before a
//! sensitive action, and what a second factor ends in.

use super::*;

/// What the devices page says once a required enrollment is past its deadline.
pub(crate) const ENROLLMENT_REQUIRED: &str =
    "This site requires a second sign-in method, and the time to skip it has passed: set one up to continue.";
/// The host action "change the payout account", named in the action policy.
pub(crate) const PAYOUTS: &str = "payouts";
/// The kinds of device a pending step-up can be given with (comma-separated kind names).
pub(crate) const STEP_UP_KINDS: &str = "step_up_kinds";

/// How long a new account may skip setting up a second method.
pub(crate) const ENROLLMENT_GRACE_SECS: u64 = 14 * 86_400;
/// How many times a new account may skip the prompt to set one up (the grace ends at the
/// deadline or with the last skip, whichever comes first).
pub(crate) const ENROLLMENT_SKIPS: u32 = 3;
/// The prompt was skipped in this session: the home page does not show it again until the
/// next sign-in.
pub(crate) const ENROLL_SKIPPED: &str = "enroll_skipped";

/// What the sign-in page says to a user whose backup codes ran out with no other method.
pub(crate) const RECOVERY_REQUIRED: &str = "Your account has no working second factor left: you used your last backup code. \
     Your password alone does not sign you in. Ask the site's support to recover your account.";

/// A sign-in after the first factor alone (`remembered`: a remembered browser skipped the
/// second factor).
pub(crate) async fn sign_in_first_factor(
    app: &App,
    session: &Session,
    user: &UserId,
    first: &FirstFactor,
    remembered: bool,
) -> Result<()> {
    let mut evidence = app.mfa.start_session(user, first.clone()).await?;
    if remembered {
        evidence.remembered_browser();
    }
    sign_in(app, session, &evidence).await
}

/// The first factor a pending sign-in passed, from the words the second-factor page shows.
pub(crate) fn first_factor_of(via: &str) -> FirstFactor {
    match via {
        "DemoID" => FirstFactor::Federated {
            provider: "demoid".into(),
            amr: Vec::new(),
            acr: None,
        },
        "a passkey" => FirstFactor::Passkey { user_verified: false },
        _ => FirstFactor::Password,
    }
}

/// What a sensitive action waits for on the second-factor page.
pub(crate) enum StepUpFor {
    Delete(DeviceId),
    /// Another action, in words ("generate new backup codes").
    Action(String),
}

/// Asks the library whether the session may do `action` now. `None`: go ahead. Otherwise where
/// to send the person: the second-factor page for a step-up (what waits is kept in the
/// session), or the devices page with the reason.
pub(crate) async fn gate(
    app: &App,
    session: &Session,
    evidence: &SessionEvidence,
    action: Action<'_>,
    waiting: StepUpFor,
) -> Result<Option<&'static str>> {
    let message = match app.mfa.authorize(evidence, action).await? {
        Authorization::Allowed => return Ok(None),
        Authorization::StepUp { devices, .. } => {
            // The latest action asked for is the one that waits, with the kinds that satisfy it.
            session.remove::<String>(STEP_UP_DELETE).await?;
            session.remove::<String>(STEP_UP_ACTION).await?;
            let kinds: Vec<&str> = devices.iter().map(|d| d.kind.as_str()).collect();
            session.insert(STEP_UP_KINDS, kinds.join(",")).await?;
            match waiting {
                StepUpFor::Delete(id) => session.insert(STEP_UP_DELETE, id.to_string()).await?,
                StepUpFor::Action(what) => session.insert(STEP_UP_ACTION, what).await?,
            }
            return Ok(Some("/mfa"));
        }
        Authorization::EnrollFirst { .. } => "This needs a security key or passkey: add one first.",
        Authorization::Denied(Denial::RecoveryUsed) => {
            "After signing in with a backup code you can replace one method. Sign in with it to change more."
        }
        Authorization::Denied(Denial::NotWithRecovery) => {
            "A backup code is for getting back in, not for removing your other methods: add a new method and use it."
        }
        Authorization::Denied(_) | _ => "That is not possible in this session: sign in again.",
    };
    session.insert(FLASH, message).await?;
    Ok(Some("/settings"))
}

/// Who the second-factor page is verifying: someone signing in, or a signed-in user confirming
/// a sensitive action (step-up).
pub(crate) enum Verifying {
    SignIn(UserId),
    StepUp(SessionEvidence, StepUpFor),
}

pub(crate) async fn verifying(
    session: &Session,
    pending: Option<PendingSecondFactor>,
    signed_in: Option<SignedIn>,
) -> Result<Option<Verifying>> {
    if let Some(PendingSecondFactor(user)) = pending {
        return Ok(Some(Verifying::SignIn(user)));
    }
    let step_up = match session
        .get::<String>(STEP_UP_DELETE)
        .await?
        .and_then(|id| id.parse::<DeviceId>().ok())
    {
        Some(device) => Some(StepUpFor::Delete(device)),
        None => session.get::<String>(STEP_UP_ACTION).await?.map(StepUpFor::Action),
    };
    Ok(match (signed_in, step_up) {
        (Some(SignedIn(evidence)), Some(waiting)) => Some(Verifying::StepUp(evidence, waiting)),
        _ => None,
    })
}

impl Verifying {
    pub(crate) fn user(&self) -> &UserId {
        match self {
            Self::SignIn(user) => user,
            Self::StepUp(evidence, _) => evidence.user(),
        }
    }
}

/// A second factor was accepted: sign in (a full sign-in: the browser's tokens are set), or
/// finish the action it was asked for. Returns where the person goes next and the cookies to set.
pub(crate) async fn second_factor_done(
    app: &App,
    session: &Session,
    headers: &HeaderMap,
    who: Verifying,
    verified: &Verified,
    remember: bool,
) -> Result<(String, Vec<String>)> {
    match who {
        Verifying::SignIn(user) => {
            let via = session.get::<String>(PENDING_VIA).await?.unwrap_or_default();
            let mut evidence = SessionEvidence::first_factor(&user, first_factor_of(&via), verified.at());
            app.mfa.add_evidence(&mut evidence, verified).await?;
            sign_in(app, session, &evidence).await?;
            if let Some(left) = verified.remaining_backup_codes() {
                let left = pages::count(left, "backup code", "backup codes");
                session
                    .insert(FLASH, format!("Signed in with a backup code. {left} left."))
                    .await?;
            }
            let cookies = full_sign_in_cookies(app, session, headers, verified, remember).await?;
            Ok(("/".into(), cookies))
        }
        Verifying::StepUp(mut evidence, waiting) => {
            app.mfa.add_evidence(&mut evidence, verified).await?;
            extract::keep_evidence(session, &app.mfa, &evidence).await?;
            let user = evidence.user().clone();
            session.remove::<String>(STEP_UP_DELETE).await?;
            session.remove::<String>(STEP_UP_ACTION).await?;
            session.remove::<String>(STEP_UP_KINDS).await?;
            let device = match waiting {
                StepUpFor::Delete(device) => device,
                StepUpFor::Action(what) => {
                    session.insert(FLASH, format!("Confirmed. You can {what} now.")).await?;
                    return Ok(("/settings".into(), Vec::new()));
                }
            };
            let message = match delete_and_signal(app, session, &user, device).await? {
                Ok(()) => "Deleted.".to_owned(),
                Err(e) => user_message(&e).unwrap_or_else(|| "That method could not be deleted.".into()),
            };
            session.insert(FLASH, message).await?;
            Ok(("/settings".into(), Vec::new()))
        }
    }
}

/// After a first factor: the library decides whether a second one is due, and this answers
/// where the person goes next (the home page, or the second-factor page).
pub(crate) async fn after_first_factor(
    app: &App,
    session: &Session,
    headers: &HeaderMap,
    user: &UserId,
    first: &FirstFactor,
    via: &str,
) -> Result<&'static str> {
    match app.mfa.assurance(user, first).await? {
        // A single-factor sign-in for a user who never set up a method.
        Assurance::Satisfied(_) | Assurance::NotEnrolled => {
            sign_in_first_factor(app, session, user, first, false).await?;
            Ok("/")
        }
        // Their only method was a set of backup codes, all spent: the password alone does not
        // sign them in. (A real service sends them to its account recovery.)
        Assurance::RecoveryRequired => {
            extract::clear_sign_in(session).await?;
            clear_steps(session).await?;
            session.insert(FLASH, RECOVERY_REQUIRED).await?;
            Ok("/login")
        }
        // A browser the user asked to remember skips the second factor (until it expires, is
        // revoked, or the user's devices change).
        Assurance::SecondFactorRequired { .. }
            if match cookie(headers, REMEMBER_COOKIE) {
                Some(token) => app.mfa.check_remembered_browser(user, &token).await?,
                None => false,
            } =>
        {
            sign_in_first_factor(app, session, user, first, true).await?;
            session
                .insert(FLASH, "This browser is remembered: no second factor needed.")
                .await?;
            Ok("/")
        }
        // Required, or a verdict this demo does not know: ask for the second factor.
        _ => {
            extract::begin_second_factor(session, user).await?;
            clear_steps(session).await?;
            session.insert(PENDING_VIA, via).await?;
            Ok("/mfa")
        }
    }
}

/// The user's methods, and the warning about backup codes or a missing second factor that the
/// home and settings pages show (from the library's verdict for a password sign-in).
pub(crate) async fn methods_and_warning(app: &App, user: &UserId) -> Result<(Vec<DeviceInfo>, Option<String>)> {
    let methods = app.mfa.list_devices(user).await?;
    let no_second_factor = matches!(
        app.mfa.assurance(user, &FirstFactor::Password).await?,
        Assurance::RecoveryRequired
    );
    let remaining = methods.iter().find_map(|m| m.remaining_backup_codes);
    Ok((methods, pages::codes_warning(no_second_factor, remaining)))
}

/// The ceremony the page names at a finish. For a known user (registration, second factor) the
/// id is a random 128-bit handle to state that stays on the server; the library binds it to the
/// user and the ceremony kind, expires it, and takes it out once, so the session need not track
/// it (and concurrent requests of one session, such as autofill and a button press, cannot
/// clobber it). A passwordless sign-in, which anyone may start, is named by a
/// `PasswordlessCeremony` instead: its state travels with it under the library's tag, and the
/// server stores nothing until a passkey signs.
pub(crate) fn named_ceremony(named: &str) -> Option<CeremonyId> {
    named.parse().ok()
}

/// 128 random bits as hex (DemoID's `state` and codes).
pub(crate) fn random_token(app: &App) -> Result<String> {
    let mut bytes = [0u8; 16];
    app.rng.try_fill_bytes(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    // Lengths of demo passwords and tokens are not secret.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
