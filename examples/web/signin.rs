//! The sign-in pages: home, password sign-in, the second factor (TOTP, backup code, emailed
//! code, security key or passkey) and passwordless passkey sign-in.

use super::*;

pub(crate) async fn home(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
) -> Result<Response> {
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    // Required enrollment: a prompt until the deadline or the last skip, then the devices page
    // first.
    let skipped = session.get::<String>(ENROLL_SKIPPED).await?.is_some();
    let prompt = match app.mfa.enrollment_status(&user).await? {
        // Skipped in this session (the last allowed skip too): no prompt until the next sign-in.
        _ if skipped => None,
        Some(EnrollmentStatus::Due {
            deadline, skips_left, ..
        }) => Some((deadline, skips_left)),
        Some(status) if !status.may_skip() => {
            session.insert(FLASH, ENROLLMENT_REQUIRED).await?;
            return Ok(Redirect::to("/settings").into_response());
        }
        _ => None,
    };
    let (methods, warning) = methods_and_warning(&app, &user).await?;
    let usable = methods.iter().filter(|m| m.is_usable()).count();
    let notice = take_flash(&session).await?;
    page(token, StatusCode::OK, |csrf| {
        let mut f = frame("Home", csrf, Nav::SignedIn(user.as_str()));
        f.notice = notice.as_deref();
        f.warning = warning;
        pages::home(&f, usable, prompt)
    })
}

pub(crate) async fn login_page(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
) -> Result<Response> {
    if signed_in.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let visitor = Visitor::of(&app, &session).await?;
    let notice = take_flash(&session).await?;
    page(token, StatusCode::OK, |csrf| {
        let mut f = frame("Sign in", csrf, visitor.nav());
        f.notice = notice.as_deref();
        pages::login(&f, &DEMO_USERS, DEMO_PASSWORD)
    })
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    pub(crate) csrf: String,
    pub(crate) username: String,
    pub(crate) password: String,
}

pub(crate) async fn login(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    headers: HeaderMap,
    AppForm(form): AppForm<LoginForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    // Demo only: a fixed password, compared in constant time.
    let known = DEMO_USERS.contains(&form.username.as_str());
    let password_ok = subtle_eq(form.password.as_bytes(), DEMO_PASSWORD.as_bytes());
    let user = match UserId::new(form.username.trim()) {
        Ok(user) if known && password_ok => user,
        _ => {
            return page(token, StatusCode::UNAUTHORIZED, |csrf| {
                let mut f = frame("Sign in", csrf, Nav::SignedOut);
                f.error = Some("Wrong username or password.");
                pages::login(&f, &DEMO_USERS, DEMO_PASSWORD)
            });
        }
    };
    let next = after_first_factor(&app, &session, &headers, &user, &FirstFactor::Password, "your password").await?;
    Ok(Redirect::to(next).into_response())
}

/// Signs out, or cancels a sign-in waiting for its second factor.
pub(crate) async fn logout(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    AppForm(form): AppForm<CsrfOnly>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    session.flush().await?;
    Ok(Redirect::to("/login").into_response())
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    pub(crate) csrf: String,
}

pub(crate) async fn render_mfa(
    app: &App,
    session: &Session,
    who: &Verifying,
    token: CsrfToken,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response> {
    let user = who.user();
    // The methods that may give the second factor, as the library lists them (the list does
    // not depend on how the first factor was passed).
    let methods = match app.mfa.assurance(user, &FirstFactor::Password).await? {
        Assurance::SecondFactorRequired { devices } => devices,
        // No working method left (removed meanwhile by an administrator): nothing to ask for.
        Assurance::NotEnrolled => {
            if matches!(who, Verifying::SignIn(_)) {
                let via = session.get::<String>(PENDING_VIA).await?.unwrap_or_default();
                sign_in_first_factor(app, session, user, &first_factor_of(&via), false).await?;
            }
            session.remove::<String>(STEP_UP_DELETE).await?;
            return Ok(Redirect::to("/").into_response());
        }
        _ => Vec::new(),
    };
    let has = |kinds: &[DeviceKind]| methods.iter().any(|m| kinds.contains(&m.kind));
    // A backup code signs in (a recovery), but never confirms a change of factors; a step-up
    // offers only the kinds the action accepts (a security key or passkey for payouts).
    let accepted = match who {
        Verifying::StepUp(..) => session.get::<String>(STEP_UP_KINDS).await?,
        Verifying::SignIn(_) => None,
    };
    let offered = |kind: DeviceKind| {
        accepted
            .as_deref()
            .is_none_or(|k| k.split(',').any(|n| n == kind.as_str()))
    };
    let (totp, codes, webauthn) = (
        has(&[DeviceKind::Totp]) && offered(DeviceKind::Totp),
        has(&[DeviceKind::BackupCodes]) && matches!(who, Verifying::SignIn(_)),
        has(&[DeviceKind::SecurityKey, DeviceKind::Passkey])
            && (offered(DeviceKind::SecurityKey) || offered(DeviceKind::Passkey)),
    );
    // An email address that can take a code, as the library masks it.
    let email = methods
        .iter()
        .find(|m| m.kind == DeviceKind::Email && offered(DeviceKind::Email))
        .and_then(|m| m.destination.clone());
    let notice = take_flash(session).await?;
    let intro = match who {
        Verifying::SignIn(_) => {
            let via = session
                .get::<String>(PENDING_VIA)
                .await?
                .unwrap_or_else(|| "your password".into());
            pages::Intro::SignIn(via)
        }
        Verifying::StepUp(_, StepUpFor::Delete(device)) => {
            let name = app
                .mfa
                .list_devices(user)
                .await?
                .into_iter()
                .find(|d| d.id == *device)
                .map_or_else(|| "that method".to_owned(), |d| d.name.as_str().to_owned());
            pages::Intro::StepUp("delete".into(), Some(name))
        }
        Verifying::StepUp(_, StepUpFor::Action(what)) => pages::Intro::StepUp(what.clone(), None),
    };
    page(token, status, |csrf| {
        let nav = match who {
            Verifying::SignIn(_) => Nav::SecondFactor(user.as_str()),
            Verifying::StepUp(..) => Nav::SignedIn(user.as_str()),
        };
        // One heading: what the page asks for.
        let title = match who {
            Verifying::SignIn(_) => "Second factor",
            Verifying::StepUp(..) => "Confirm it's you",
        };
        let mut f = frame(title, csrf, nav);
        f.error = error;
        f.notice = notice.as_deref();
        let sent = pages::SentCodes {
            address: email.as_deref(),
            outbox: outbox_html(app, user),
        };
        pages::second_factor(&f, &intro, totp, codes, webauthn, &sent)
    })
}

pub(crate) async fn mfa_page(
    State(app): State<Shared>,
    session: Session,
    pending: Option<PendingSecondFactor>,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
) -> Result<Response> {
    let Some(who) = verifying(&session, pending, signed_in).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    render_mfa(&app, &session, &who, token, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    pub(crate) csrf: String,
    pub(crate) code: String,
    /// "1" when "Remember this browser" was ticked.
    #[serde(default)]
    pub(crate) remember: String,
}

/// The session's states a second-factor page may serve: a sign-in waiting for its second factor,
/// or a signed-in user confirming an action.
pub(crate) struct SecondFactorStates(pub(crate) Option<PendingSecondFactor>, pub(crate) Option<SignedIn>);

pub(crate) async fn mfa_code(
    app: Shared,
    session: Session,
    states: SecondFactorStates,
    token: CsrfToken,
    headers: HeaderMap,
    form: CodeForm,
    which: CodeKind,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let SecondFactorStates(pending, signed_in) = states;
    let Some(who) = verifying(&session, pending, signed_in).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = who.user().clone();
    // The browser's known-browser token: its failures go to a counter of its own.
    let known = cookie(&headers, KNOWN_COOKIE);
    let result = match which {
        CodeKind::Backup => {
            app.mfa
                .verify_backup_code_from(&user, &form.code, known.as_deref())
                .await
        }
        CodeKind::App => app.mfa.verify_totp_from(&user, &form.code, known.as_deref()).await,
        CodeKind::Email => app.mfa.verify_sent_code_from(&user, &form.code, known.as_deref()).await,
    };
    let what = match which {
        CodeKind::Backup => "backup code",
        CodeKind::App => "code",
        CodeKind::Email => "emailed code",
    };
    let message = match result {
        Ok(Outcome::Accepted(v)) => {
            let remember = form.remember == "1";
            let (next, cookies) = second_factor_done(&app, &session, &headers, who, &v, remember).await?;
            return Ok(with_cookies(Redirect::to(&next).into_response(), &cookies));
        }
        Ok(other) => {
            let refused = match which {
                CodeKind::Backup => DeviceKind::BackupCodes,
                CodeKind::App => DeviceKind::Totp,
                CodeKind::Email => DeviceKind::Email,
            };
            let others = other_methods(&app, &user, refused).await?;
            refusal(&other, what, &others)
        }
        Err(e) => user_message(&e).ok_or(AppError(e.to_string()))?,
    };
    render_mfa(&app, &session, &who, token, StatusCode::UNAUTHORIZED, Some(&message)).await
}

/// The user's other kinds of method than `refused`, in words ("a backup code or a passkey"),
/// for a refusal to point to what still works.
pub(crate) async fn other_methods(app: &App, user: &UserId, refused: DeviceKind) -> Result<String> {
    let devices = match app.mfa.assurance(user, &FirstFactor::Password).await? {
        Assurance::SecondFactorRequired { devices } => devices,
        _ => Vec::new(),
    };
    let mut words = Vec::new();
    if refused != DeviceKind::BackupCodes && devices.iter().any(|d| d.kind == DeviceKind::BackupCodes) {
        words.push("a backup code");
    }
    if devices
        .iter()
        .any(|d| matches!(d.kind, DeviceKind::SecurityKey | DeviceKind::Passkey))
    {
        words.push("a security key or passkey");
    }
    if refused != DeviceKind::Totp && devices.iter().any(|d| d.kind == DeviceKind::Totp) {
        words.push("your authenticator app");
    }
    if refused != DeviceKind::Email && devices.iter().any(|d| d.kind == DeviceKind::Email) {
        words.push("a code by email");
    }
    Ok(words.join(" or "))
}

pub(crate) async fn mfa_totp(
    State(app): State<Shared>,
    session: Session,
    pending: Option<PendingSecondFactor>,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    headers: HeaderMap,
    AppForm(form): AppForm<CodeForm>,
) -> Result<Response> {
    let states = SecondFactorStates(pending, signed_in);
    mfa_code(app, session, states, token, headers, form, CodeKind::App).await
}

pub(crate) async fn mfa_backup(
    State(app): State<Shared>,
    session: Session,
    pending: Option<PendingSecondFactor>,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    headers: HeaderMap,
    AppForm(form): AppForm<CodeForm>,
) -> Result<Response> {
    let states = SecondFactorStates(pending, signed_in);
    mfa_code(app, session, states, token, headers, form, CodeKind::Backup).await
}

pub(crate) async fn mfa_email(
    State(app): State<Shared>,
    session: Session,
    pending: Option<PendingSecondFactor>,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    headers: HeaderMap,
    AppForm(form): AppForm<CodeForm>,
) -> Result<Response> {
    let states = SecondFactorStates(pending, signed_in);
    mfa_code(app, session, states, token, headers, form, CodeKind::Email).await
}

/// Which code a second-factor form carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeKind {
    App,
    Backup,
    Email,
}

/// "Email a code": the library makes the code, the demo "sends" it to its outbox.
pub(crate) async fn mfa_email_send(
    State(app): State<Shared>,
    session: Session,
    pending: Option<PendingSecondFactor>,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<CsrfOnly>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(who) = verifying(&session, pending, signed_in).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = who.user().clone();
    let email = app
        .mfa
        .list_devices(&user)
        .await?
        .into_iter()
        .find(|d| d.kind == DeviceKind::Email && d.is_usable());
    let message = match email {
        None => Some("You have no email address set up for codes.".to_owned()),
        Some(device) => match app.mfa.send_code(&user, device.id).await {
            Ok(sent) => {
                deliver(&app, &user, &sent);
                session
                    .insert(
                        FLASH,
                        format!("We sent a code to {}.", device.destination.unwrap_or_default()),
                    )
                    .await?;
                None
            }
            Err(e) => Some(user_message(&e).ok_or(AppError(e.to_string()))?),
        },
    };
    let status = if message.is_some() {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    render_mfa(&app, &session, &who, token, status, message.as_deref()).await
}

#[derive(Deserialize)]
pub(crate) struct NoteStart {
    /// What the derived key is for: the salt, as the page names it (1 to 64 characters).
    pub(crate) salt: String,
}

/// Options for deriving a key from one of the user's passkeys: an authentication with the
/// `prf` extension evaluated at the page's salt. The page keeps the output; the ceremony is
/// never finished here (it is no sign-in, and it expires on its own).
pub(crate) async fn note_start(
    State(app): State<Shared>,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    headers: HeaderMap,
    AppJson(body): AppJson<NoteStart>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(expired_page());
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, "Sign in first."));
    };
    if body.salt.is_empty() || body.salt.len() > 64 {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "The salt must be 1 to 64 characters.",
        ));
    }
    let prf = multifactor::webauthn::PrfInputs::new().eval(format!("multifactor demo/{}", body.salt).as_bytes(), None);
    match app.mfa.start_webauthn_authentication(evidence.user()).await {
        Ok((_, options)) => Ok(Json(json!({ "options": options.with_prf(prf) })).into_response()),
        Err(e) => Ok(json_error(
            StatusCode::BAD_REQUEST,
            &user_message(&e).ok_or(AppError(e.to_string()))?,
        )),
    }
}

#[derive(Deserialize)]
pub(crate) struct NoteSave {
    /// base64url of the IV and the AES-GCM ciphertext.
    pub(crate) ciphertext: String,
}

/// Keeps the user's note as the page encrypted it.
pub(crate) async fn note_save(
    State(app): State<Shared>,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    headers: HeaderMap,
    AppJson(body): AppJson<NoteSave>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(expired_page());
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, "Sign in first."));
    };
    let well_formed = !body.ciphertext.is_empty()
        && body.ciphertext.len() <= 16 * 1024
        && body
            .ciphertext
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Ok(json_error(StatusCode::BAD_REQUEST, "That is not an encrypted note."));
    }
    if let Ok(mut notes) = app.notes.lock() {
        notes.insert(evidence.user().as_str().to_owned(), body.ciphertext);
    }
    Ok(Json(json!({ "saved": true })).into_response())
}

/// The user's note as it was saved: ciphertext.
pub(crate) async fn note_load(
    State(app): State<Shared>,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    headers: HeaderMap,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(expired_page());
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, "Sign in first."));
    };
    let note = app
        .notes
        .lock()
        .ok()
        .and_then(|notes| notes.get(evidence.user().as_str()).cloned());
    Ok(Json(json!({ "ciphertext": note })).into_response())
}

/// The demo's stand-in for a mail server: the code goes to the on-page outbox.
pub(crate) fn deliver(app: &App, user: &UserId, sent: &multifactor::sent_code::SentCode) {
    if let Ok(mut outbox) = app.outbox.lock() {
        outbox.push(pages::OutboxMessage {
            user: user.as_str().to_owned(),
            to: sent.destination.expose_secret().to_owned(),
            code: sent.code.expose_secret().to_owned(),
            at: multifactor::Clock::now(&SystemClock),
        });
        // A demo keeps little: the last 200 messages.
        let excess = outbox.len().saturating_sub(200);
        outbox.drain(..excess);
    }
}

/// The user's latest outbox messages, newest first, as HTML.
pub(crate) fn outbox_html(app: &App, user: &UserId) -> String {
    let Ok(outbox) = app.outbox.lock() else {
        return String::new();
    };
    let mine: Vec<&pages::OutboxMessage> = outbox
        .iter()
        .rev()
        .filter(|m| m.user == user.as_str())
        .take(5)
        .collect();
    pages::outbox(&mine)
}

pub(crate) async fn mfa_webauthn_start(
    State(app): State<Shared>,
    session: Session,
    pending: Option<PendingSecondFactor>,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    headers: HeaderMap,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(expired_page());
    }
    let Some(who) = verifying(&session, pending, signed_in).await? else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "Sign in with your password first.",
        ));
    };
    let (ceremony, options) = match app.mfa.start_webauthn_authentication(who.user()).await {
        Ok(started) => started,
        Err(e) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                &user_message(&e).ok_or(AppError(e.to_string()))?,
            ));
        }
    };
    Ok(Json(json!({ "options": options, "ceremony": ceremony.to_string() })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct FinishBody {
    pub(crate) ceremony: String,
    pub(crate) response: Value,
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// "Remember this browser" was ticked (second factor only).
    #[serde(default)]
    pub(crate) remember: bool,
}

/// The browser's assertion, or what to tell the page.
pub(crate) fn assertion<T: std::str::FromStr>(
    body: FinishBody,
) -> std::result::Result<(T, AuthenticationResponse), &'static str> {
    let ceremony = body
        .ceremony
        .parse()
        .map_err(|_| "No sign-in is in progress: start again.")?;
    let response = AuthenticationResponse::from_json_value(body.response)
        .map_err(|_| "The browser's answer could not be read. Try again.")?;
    Ok((ceremony, response))
}

pub(crate) async fn mfa_webauthn_finish(
    State(app): State<Shared>,
    session: Session,
    pending: Option<PendingSecondFactor>,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    headers: HeaderMap,
    AppJson(body): AppJson<FinishBody>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(expired_page());
    }
    let Some(who) = verifying(&session, pending, signed_in).await? else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "Sign in with your password first.",
        ));
    };
    let remember = body.remember;
    let (ceremony, response) = match assertion::<CeremonyId>(body) {
        Ok(parsed) => parsed,
        Err(message) => return Ok(json_error(StatusCode::BAD_REQUEST, message)),
    };
    let user = who.user().clone();
    match app
        .mfa
        .finish_webauthn_authentication(&user, ceremony, &response)
        .await?
    {
        Outcome::Accepted(v) => {
            let (next, cookies) = second_factor_done(&app, &session, &headers, who, &v, remember).await?;
            Ok(with_cookies(
                Json(json!({ "redirect": next })).into_response(),
                &cookies,
            ))
        }
        other => Ok(json_error(
            StatusCode::UNAUTHORIZED,
            &refusal(&other, "security key", ""),
        )),
    }
}

#[derive(Deserialize)]
pub(crate) struct PasskeyStart {
    #[serde(default)]
    pub(crate) conditional: bool,
}

pub(crate) async fn passkey_start(
    State(app): State<Shared>,
    token: CsrfToken,
    headers: HeaderMap,
    AppJson(body): AppJson<PasskeyStart>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(expired_page());
    }
    let (ceremony, options) = app.mfa.start_passwordless(body.conditional).await?;
    Ok(Json(json!({ "options": options, "ceremony": ceremony.to_string() })).into_response())
}

pub(crate) async fn passkey_finish(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    headers: HeaderMap,
    AppJson(body): AppJson<FinishBody>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(expired_page());
    }
    let (ceremony, response) = match assertion::<PasswordlessCeremony>(body) {
        Ok(parsed) => parsed,
        Err(message) => return Ok(json_error(StatusCode::BAD_REQUEST, message)),
    };
    match app.mfa.finish_passwordless(&ceremony, &response).await? {
        Outcome::Accepted(v) => {
            let first = FirstFactor::Passkey {
                user_verified: v.user_verified().unwrap_or(false),
            };
            let next = after_first_factor(&app, &session, &headers, v.user(), &first, "a passkey").await?;
            let mut cookies = Vec::new();
            if next == "/" {
                // Signed in by the passkey alone (it verified the user): it is the evidence, and a
                // full sign-in for this browser.
                let evidence = SessionEvidence::passkey_sign_in(&v).map_err(|e| AppError(e.to_string()))?;
                extract::keep_evidence(&session, &app.mfa, &evidence).await?;
                cookies = full_sign_in_cookies(&app, &session, &headers, &v, false).await?;
            }
            Ok(with_cookies(
                Json(json!({ "redirect": next })).into_response(),
                &cookies,
            ))
        }
        other => {
            let message = refusal(&other, "passkey", "");
            // A passkey this site no longer knows: tell the browser, so that it stops offering it.
            match app.mfa.unknown_credential_signal(&response).await? {
                Some(unknown) => Ok((
                    StatusCode::UNAUTHORIZED,
                    Json(json!({
                        "error": message,
                        "signals": [{ "kind": "unknownCredential", "payload": unknown.to_json_value() }],
                    })),
                )
                    .into_response()),
                None => Ok(json_error(StatusCode::UNAUTHORIZED, &message)),
            }
        }
    }
}
