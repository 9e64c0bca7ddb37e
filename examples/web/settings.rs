//! The "MFA devices" settings page: set up, confirm, rename and delete methods, backup codes,
//! remembered browsers, the enrollment prompt, and the step-up-guarded account changes.

use super::*;

#[derive(Deserialize)]
pub(crate) struct BrowserForm {
    pub(crate) csrf: String,
    pub(crate) id: String,
}

/// Revokes one of the user's browsers, known or remembered: it becomes an unknown browser (and
/// skips nothing) until its next full sign-in.
pub(crate) async fn revoke_browser(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<BrowserForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    let revoke = Action::RevokeKnownBrowsers;
    if let Some(to) = gate(
        &app,
        &session,
        &evidence,
        revoke,
        StepUpFor::Action("revoke a browser".into()),
    )
    .await?
    {
        return Ok(Redirect::to(to).into_response());
    }
    let message = match form.id.parse::<RememberedBrowserId>() {
        Ok(id) => match app.mfa.revoke_remembered_browser(&user, id).await {
            Ok(()) => "Revoked: that browser is no longer known.",
            Err(MfaError::Misuse(MisuseError::DeviceNotFound)) => "That browser was already revoked.",
            Err(e) => return Err(e.into()),
        },
        Err(_) => "That browser was already revoked.",
    };
    session.insert(FLASH, message).await?;
    Ok(Redirect::to("/settings").into_response())
}

/// "Not now" on the enrollment prompt: the library counts the skip (the last one ends the
/// grace), and the prompt stays away until the next sign-in.
pub(crate) async fn skip_enrollment(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<CsrfOnly>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let message = match app.mfa.skip_enrollment(evidence.user()).await? {
        Some(Skipped {
            allowed: true,
            status: EnrollmentStatus::Due {
                skips_left: Some(left), ..
            },
        }) => format!(
            "Skipped for now. You can skip it {}.",
            pages::count(left as usize, "more time", "more times")
        ),
        Some(Skipped {
            allowed: true,
            status: EnrollmentStatus::Met,
        }) => return Ok(Redirect::to("/").into_response()),
        Some(Skipped { allowed: true, status }) if status.may_skip() => "Skipped for now.".to_owned(),
        Some(Skipped { allowed: true, .. }) => {
            "Skipped for now. That was the last time: set up a second method at your next sign-in.".to_owned()
        }
        // No skip left (or no policy): the home page sends the user to set one up.
        _ => return Ok(Redirect::to("/").into_response()),
    };
    session.insert(ENROLL_SKIPPED, "1").await?;
    session.insert(FLASH, message).await?;
    Ok(Redirect::to("/").into_response())
}

pub(crate) async fn settings(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
) -> Result<Response> {
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    render_settings(&app, &session, &user, token, StatusCode::OK, None).await
}

pub(crate) async fn render_settings(
    app: &App,
    session: &Session,
    user: &UserId,
    token: CsrfToken,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response> {
    let (methods, warning) = methods_and_warning(app, user).await?;
    let notice = take_flash(session).await?;
    let signals = session.remove::<String>(SIGNALS).await?;
    let display_name = display_name(app, user);
    let this_browser = session.get::<String>(KNOWN_ID).await?;
    let mut browsers: Vec<pages::BrowserRow> = Vec::new();
    for (records, remembered) in [
        (app.mfa.list_known_browsers(user).await?, false),
        (app.mfa.list_remembered_browsers(user).await?, true),
    ] {
        browsers.extend(records.into_iter().map(|r| pages::BrowserRow {
            current: this_browser.as_deref() == Some(r.id.to_string().as_str()),
            id: r.id,
            remembered,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
        }));
    }
    page(token, status, |csrf| {
        let mut f = frame("MFA devices", csrf, Nav::SignedIn(user.as_str()));
        f.error = error;
        // A refusal is news; an older notice would read as if it were about this request.
        f.notice = if error.is_some() { None } else { notice.as_deref() };
        f.warning = warning;
        f.signals = signals;
        pages::settings(&f, &methods, &display_name, &browsers)
    })
}

/// The authenticator-app setup page: QR code, secret, code field, and an error if the last
/// code did not confirm.
pub(crate) fn totp_page(
    token: CsrfToken,
    status: StatusCode,
    user: &UserId,
    enrollment: &TotpEnrollment,
    error: Option<&str>,
) -> Result<Response> {
    let svg = enrollment.qr_svg()?;
    let svg = svg.expose_secret();
    page(token, status, |csrf| {
        let mut f = frame("Set up an authenticator app", csrf, Nav::SignedIn(user.as_str()));
        f.error = error;
        pages::totp_setup(&f, svg, enrollment.secret_base32.expose_secret())
    })
}

pub(crate) async fn totp_start(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<CsrfOnly>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    let add = Action::AddDevice(DeviceKind::Totp);
    if let Some(to) = gate(
        &app,
        &session,
        &evidence,
        add,
        StepUpFor::Action("add an authenticator app".into()),
    )
    .await?
    {
        return Ok(Redirect::to(to).into_response());
    }
    let enrollment = app.mfa.enroll_totp(&user, user.as_str(), None).await?;
    session.insert(TOTP_DEVICE, enrollment.device.to_string()).await?;
    totp_page(token, StatusCode::OK, &user, &enrollment, None)
}

#[derive(Deserialize)]
pub(crate) struct IdForm {
    pub(crate) csrf: String,
    pub(crate) id: String,
}

#[derive(Deserialize)]
pub(crate) struct EmailForm {
    pub(crate) csrf: String,
    pub(crate) address: String,
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    pub(crate) csrf: String,
    pub(crate) id: String,
    pub(crate) code: String,
}

/// "Add an email address": enroll it (a step-up first unless the session may add a method),
/// deliver its first code, and ask for it.
pub(crate) async fn email_start(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<EmailForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    let add = Action::AddDevice(DeviceKind::Email);
    if let Some(to) = gate(
        &app,
        &session,
        &evidence,
        add,
        StepUpFor::Action("add an email address".into()),
    )
    .await?
    {
        return Ok(Redirect::to(to).into_response());
    }
    let enrolled = app
        .mfa
        .enroll_sent_code(&user, multifactor::sent_code::Channel::Email, &form.address, None)
        .await;
    code_sent(&app, &session, &user, token, enrolled).await
}

/// A new code for an address waiting for its first one.
pub(crate) async fn email_resume(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<IdForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    let result = match form.id.parse::<DeviceId>() {
        Ok(id) => app.mfa.send_code(&user, id).await,
        Err(e) => Err(MfaError::Input(e)),
    };
    code_sent(&app, &session, &user, token, result).await
}

/// A code made for an address: delivered to the outbox, and the page that asks for it; or the
/// devices page saying why not.
pub(crate) async fn code_sent(
    app: &App,
    session: &Session,
    user: &UserId,
    token: CsrfToken,
    result: std::result::Result<multifactor::sent_code::SentCode, MfaError>,
) -> Result<Response> {
    match result {
        Ok(sent) => {
            deliver(app, user, &sent);
            email_page(
                app,
                token,
                StatusCode::OK,
                user,
                sent.device,
                sent.destination.expose_secret(),
                None,
            )
        }
        Err(e) => {
            let message = user_message(&e).ok_or(AppError(e.to_string()))?;
            render_settings(app, session, user, token, StatusCode::BAD_REQUEST, Some(&message)).await
        }
    }
}

/// The code that confirms a new address.
pub(crate) async fn email_confirm(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<ConfirmForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    let Ok(id) = form.id.parse::<DeviceId>() else {
        return render_settings(
            &app,
            &session,
            &user,
            token,
            StatusCode::BAD_REQUEST,
            Some("That address no longer exists."),
        )
        .await;
    };
    let address = app
        .mfa
        .list_devices(&user)
        .await?
        .into_iter()
        .find(|d| d.id == id)
        .and_then(|d| d.destination)
        .unwrap_or_default();
    let message = match app.mfa.confirm_sent_code(&user, id, &form.code).await {
        Ok(Outcome::Accepted(_)) => {
            session
                .insert(
                    FLASH,
                    format!("Confirmed. We can email sign-in codes to {address} now."),
                )
                .await?;
            return Ok(Redirect::to("/settings").into_response());
        }
        Ok(other) => refusal(&other, "code", ""),
        Err(e) => user_message(&e).ok_or(AppError(e.to_string()))?,
    };
    email_page(
        &app,
        token,
        StatusCode::UNAUTHORIZED,
        &user,
        id,
        &address,
        Some(&message),
    )
}

/// The address-confirmation page, with the outbox.
pub(crate) fn email_page(
    app: &App,
    token: CsrfToken,
    status: StatusCode,
    user: &UserId,
    device: DeviceId,
    address: &str,
    error: Option<&str>,
) -> Result<Response> {
    let outbox = outbox_html(app, user);
    page(token, status, |csrf| {
        let mut f = frame("Confirm your email address", csrf, Nav::SignedIn(user.as_str()));
        f.error = error;
        pages::email_setup(&f, &device.to_string(), address, &outbox)
    })
}

/// "Finish setup" of a pending authenticator app: the same QR code and secret again.
pub(crate) async fn totp_resume(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<IdForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    let result = match form.id.parse::<DeviceId>() {
        Ok(id) => app.mfa.resume_totp_enrollment(&user, id, user.as_str()).await,
        Err(e) => Err(MfaError::Input(e)),
    };
    match result {
        Ok(enrollment) => {
            session.insert(TOTP_DEVICE, enrollment.device.to_string()).await?;
            totp_page(token, StatusCode::OK, &user, &enrollment, None)
        }
        Err(e) => {
            let message = resume_message(&e).ok_or(AppError(e.to_string()))?;
            render_settings(&app, &session, &user, token, StatusCode::BAD_REQUEST, Some(message)).await
        }
    }
}

pub(crate) fn resume_message(e: &MfaError) -> Option<&'static str> {
    match e {
        MfaError::Misuse(MisuseError::AlreadyConfirmed) => Some("That authenticator app is already set up."),
        MfaError::Misuse(_) | MfaError::Input(_) => {
            Some("That setup was replaced or removed. Start again with \"Set up an authenticator app\".")
        }
        _ => None,
    }
}

pub(crate) async fn totp_confirm(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<CodeForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    let Some(device) = session
        .get::<String>(TOTP_DEVICE)
        .await?
        .and_then(|d| d.parse::<DeviceId>().ok())
    else {
        return Ok(Redirect::to("/settings").into_response());
    };
    let message = match app.mfa.confirm_totp(&user, device, &form.code).await {
        Ok(Outcome::Accepted(_)) => {
            session.remove::<String>(TOTP_DEVICE).await?;
            session.insert(FLASH, "Your authenticator app is set up.").await?;
            return Ok(Redirect::to("/settings").into_response());
        }
        Ok(other) => refusal(&other, "code", ""),
        Err(e) => user_message(&e).ok_or(AppError(e.to_string()))?,
    };
    // The setup page again, with the same QR code and secret: the entry the person just made
    // in their app stays good, only the code is typed again.
    match app.mfa.resume_totp_enrollment(&user, device, user.as_str()).await {
        Ok(enrollment) => totp_page(token, StatusCode::BAD_REQUEST, &user, &enrollment, Some(&message)),
        Err(e) => {
            let message = resume_message(&e).ok_or(AppError(e.to_string()))?;
            render_settings(&app, &session, &user, token, StatusCode::BAD_REQUEST, Some(message)).await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CodesForm {
    pub(crate) csrf: String,
    /// `replace` once the person confirmed that their current codes stop working.
    #[serde(default)]
    pub(crate) confirm: Option<String>,
}

pub(crate) async fn backup_codes(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<CodesForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    let regenerate = Action::RegenerateBackupCodes;
    let waiting = StepUpFor::Action("generate new backup codes".into());
    if let Some(to) = gate(&app, &session, &evidence, regenerate, waiting).await? {
        return Ok(Redirect::to(to).into_response());
    }
    // New codes end the current ones: ask first.
    let current = app
        .mfa
        .list_devices(&user)
        .await?
        .into_iter()
        .find(|d| d.kind == DeviceKind::BackupCodes);
    if let Some(set) = current
        && form.confirm.as_deref() != Some("replace")
    {
        let left = set.remaining_backup_codes.unwrap_or(0);
        return page(token, StatusCode::OK, |csrf| {
            pages::replace_codes(
                &frame("Replace your backup codes?", csrf, Nav::SignedIn(user.as_str())),
                left,
            )
        });
    }
    let set = app.mfa.generate_backup_codes(&user, None).await?;
    let codes: Vec<String> = set.codes.iter().map(|c| c.expose_secret().to_owned()).collect();
    page(token, StatusCode::OK, |csrf| {
        pages::backup_codes(&frame("Your backup codes", csrf, Nav::SignedIn(user.as_str())), &codes)
    })
}

#[derive(Deserialize)]
pub(crate) struct RegisterStart {
    pub(crate) kind: String,
}

pub(crate) async fn register_start(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    headers: HeaderMap,
    AppJson(body): AppJson<RegisterStart>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(expired_page());
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, "Sign in first."));
    };
    let user = evidence.user().clone();
    let (kind, words) = match body.kind.as_str() {
        "passkey" => (DeviceKind::Passkey, "add a passkey"),
        _ => (DeviceKind::SecurityKey, "add a security key"),
    };
    if let Some(to) = gate(
        &app,
        &session,
        &evidence,
        Action::AddDevice(kind),
        StepUpFor::Action(words.into()),
    )
    .await?
    {
        return Ok(Json(json!({ "redirect": to })).into_response());
    }
    let started = match body.kind.as_str() {
        // Passkeys are asked to enable PRF, for the encrypted note.
        "passkey" => app
            .mfa
            .start_passkey_registration(&user, user.as_str(), &display_name(&app, &user))
            .await
            .map(|(ceremony, options)| (ceremony, options.with_prf(multifactor::webauthn::PrfInputs::new()))),
        "security_key" => {
            app.mfa
                .start_security_key_registration(&user, user.as_str(), &display_name(&app, &user))
                .await
        }
        _ => return Ok(json_error(StatusCode::BAD_REQUEST, "Unknown kind of key.")),
    };
    let (ceremony, options) = match started {
        Ok(s) => s,
        Err(e) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                &user_message(&e).ok_or(AppError(e.to_string()))?,
            ));
        }
    };
    Ok(Json(json!({ "options": options, "ceremony": ceremony.to_string() })).into_response())
}

pub(crate) async fn register_finish(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    headers: HeaderMap,
    AppJson(body): AppJson<FinishBody>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(expired_page());
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, "Sign in first."));
    };
    let user = evidence.user().clone();
    let Some(ceremony) = named_ceremony(&body.ceremony) else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "No registration is in progress: start again.",
        ));
    };
    let response = match RegistrationResponse::from_json_value(body.response) {
        Ok(r) => r,
        Err(_) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "The browser's answer could not be read. Try again.",
            ));
        }
    };
    let name = body.name.filter(|n| !n.trim().is_empty());
    match app
        .mfa
        .finish_webauthn_registration(&user, ceremony, &response, name.as_deref())
        .await
    {
        Ok(Outcome::Accepted(v)) => {
            let what = if v.kind() == DeviceKind::Passkey {
                "passkey"
            } else {
                "security key"
            };
            session.insert(FLASH, format!("Your {what} is registered.")).await?;
            Ok(Json(json!({ "redirect": "/settings" })).into_response())
        }
        Ok(Outcome::NotAllowed(reason)) => Ok(json_error(
            StatusCode::FORBIDDEN,
            &format!("This key can't be used here: {reason}."),
        )),
        // The page's script has ruled out what the browser can tell (a key type this site does
        // not accept, a key already listed here); what is left is the server's refusal.
        Ok(_) => Ok(json_error(
            StatusCode::BAD_REQUEST,
            "The server did not accept this key: the request expired, or the key is registered \
             already (perhaps to another account). Reload the page and try again; if it is \
             refused again, use another key.",
        )),
        Err(e) => Ok(json_error(
            StatusCode::BAD_REQUEST,
            &user_message(&e).ok_or(AppError(e.to_string()))?,
        )),
    }
}

#[derive(Deserialize)]
pub(crate) struct RenameForm {
    pub(crate) csrf: String,
    pub(crate) id: String,
    pub(crate) name: String,
}

pub(crate) async fn rename(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<RenameForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    let result = match form.id.parse::<DeviceId>() {
        Ok(id) => app.mfa.rename_device(&user, id, &form.name).await,
        Err(e) => Err(MfaError::Input(e)),
    };
    match result {
        Ok(()) => {
            session.insert(FLASH, "Renamed.").await?;
            Ok(Redirect::to("/settings").into_response())
        }
        Err(e) => {
            let message = user_message(&e).unwrap_or_else(|| "That method could not be renamed.".into());
            render_settings(&app, &session, &user, token, StatusCode::BAD_REQUEST, Some(&message)).await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct DisplayNameForm {
    pub(crate) csrf: String,
    pub(crate) display_name: String,
}

/// Changes the display name, and tells the browser's authenticators (signalCurrentUserDetails).
#[derive(Deserialize)]
pub(crate) struct PayoutForm {
    pub(crate) csrf: String,
    pub(crate) account: String,
}

/// A sensitive action of the site's own: it asks the library for its named requirement.
pub(crate) async fn change_payout(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<PayoutForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let waiting = StepUpFor::Action("change your payout account".into());
    if let Some(to) = gate(&app, &session, &evidence, Action::Named(PAYOUTS), waiting).await? {
        return Ok(Redirect::to(to).into_response());
    }
    // Demo only: the account is not kept.
    let shown: String = form.account.trim().chars().take(4).collect();
    session
        .insert(FLASH, format!("Payout account changed (starting {shown}…)."))
        .await?;
    Ok(Redirect::to("/settings").into_response())
}

pub(crate) async fn change_display_name(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<DisplayNameForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    let name = form.display_name.trim().to_owned();
    match app.mfa.current_user_details_signals(&user, user.as_str(), &name).await {
        Ok(signals) => {
            if let Ok(mut names) = app.display_names.lock() {
                names.insert(user.as_str().to_owned(), name);
            }
            let payloads = signals
                .iter()
                .map(|s| ("currentUserDetails", s.to_json_value()))
                .collect();
            keep_signals(&session, payloads).await?;
            session.insert(FLASH, "Display name changed.").await?;
            Ok(Redirect::to("/settings").into_response())
        }
        Err(e) => {
            let message = user_message(&e).unwrap_or_else(|| "That display name cannot be used.".into());
            render_settings(&app, &session, &user, token, StatusCode::BAD_REQUEST, Some(&message)).await
        }
    }
}

pub(crate) async fn delete(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
    token: CsrfToken,
    AppForm(form): AppForm<IdForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    let Some(SignedIn(evidence)) = signed_in else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = evidence.user().clone();
    let result = match form.id.parse::<DeviceId>() {
        Ok(id) => {
            // The last working method is refused anyway: no step-up first, just the reason.
            let methods = app.mfa.list_devices(&user).await?;
            if !multifactor::policy::is_last_device(&methods, id)
                && let Some(to) = gate(
                    &app,
                    &session,
                    &evidence,
                    Action::DeleteDevice(id),
                    StepUpFor::Delete(id),
                )
                .await?
            {
                return Ok(Redirect::to(to).into_response());
            }
            delete_and_signal(&app, &session, &user, id).await?
        }
        Err(e) => Err(MfaError::Input(e)),
    };
    match result {
        Ok(()) => {
            session.insert(FLASH, "Deleted.").await?;
            Ok(Redirect::to("/settings").into_response())
        }
        Err(e) => {
            let message = user_message(&e).unwrap_or_else(|| "That method could not be deleted.".into());
            render_settings(&app, &session, &user, token, StatusCode::BAD_REQUEST, Some(&message)).await
        }
    }
}
