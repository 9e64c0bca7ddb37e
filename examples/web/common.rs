//! Helpers every page uses: who is there, page frames and error pages, the extractors that turn a bad
//! request into a page, CSRF checks, the words for a refusal, sessions and cookies.

use super::*;

/// Who is there, as the session says.
pub(crate) struct Visitor {
    pub(crate) user: Option<UserId>,
    pub(crate) pending: Option<UserId>,
}

impl Visitor {
    pub(crate) async fn of(app: &App, session: &Session) -> Result<Self> {
        Ok(Self {
            user: extract::signed_in(session, app.mfa.as_ref())
                .await?
                .map(|e| e.user().clone()),
            pending: extract::pending(session).await?,
        })
    }

    pub(crate) fn nav(&self) -> Nav<'_> {
        match (&self.user, &self.pending) {
            (Some(user), _) => Nav::SignedIn(user.as_str()),
            (None, Some(pending)) => Nav::SecondFactor(pending.as_str()),
            (None, None) => Nav::SignedOut,
        }
    }
}

pub(crate) async fn take_flash(session: &Session) -> Result<Option<String>> {
    Ok(session.remove::<String>(FLASH).await?)
}

/// Renders a page with the CSRF token (and sets its cookie).
pub(crate) fn page(token: CsrfToken, status: StatusCode, render: impl FnOnce(&str) -> String) -> Result<Response> {
    let csrf = token.authenticity_token()?;
    Ok((status, token, Html(render(&csrf))).into_response())
}

pub(crate) fn frame<'a>(title: &'a str, csrf: &'a str, nav: Nav<'a>) -> Frame<'a> {
    Frame {
        title,
        csrf,
        nav,
        error: None,
        notice: None,
        warning: None,
        signals: None,
    }
}

/// A human error page (HTML) with the navigation the session calls for.
/// It carries a CSRF token, so that its "Sign out" and "Cancel" forms work.
pub(crate) async fn error_page(
    app: &App,
    session: &Session,
    token: CsrfToken,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Result<Response> {
    let visitor = Visitor::of(app, session).await?;
    page(token, status, |csrf| {
        let mut f = frame(title, csrf, visitor.nav());
        f.error = Some(message);
        pages::error_page(&f)
    })
}

pub(crate) async fn forbidden(app: &App, session: &Session, token: CsrfToken) -> Result<Response> {
    error_page(
        app,
        session,
        token,
        StatusCode::FORBIDDEN,
        "Please try again",
        "This form expired or did not come from this site. Reload the page and try again.",
    )
    .await
}

pub(crate) async fn not_found(State(app): State<Shared>, session: Session, token: CsrfToken) -> Result<Response> {
    error_page(
        &app,
        &session,
        token,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no such page here.",
    )
    .await
}

pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The session and a CSRF token, for an extractor's error page.
pub(crate) async fn page_parts(
    parts: &mut axum::http::request::Parts,
    state: &Shared,
) -> std::result::Result<(Shared, Session, CsrfToken), Response> {
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let token = CsrfToken::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((state.clone(), session, token))
}

/// What a parsing extractor answers: the value, or (logged with `why`) the human error page
/// saying `message`; a failure to render that page is the generic one.
pub(crate) async fn parsed_or_page<T>(
    parsed: std::result::Result<T, String>,
    page: (Shared, Session, CsrfToken),
    what: &str,
    message: &str,
) -> std::result::Result<T, Response> {
    match parsed {
        Ok(value) => Ok(value),
        Err(why) => {
            eprintln!("web: malformed {what}: {why}");
            let (app, session, token) = page;
            Err(error_page(
                &app,
                &session,
                token,
                StatusCode::BAD_REQUEST,
                "Please try again",
                message,
            )
            .await
            .unwrap_or_else(IntoResponse::into_response))
        }
    }
}

/// A form body, or the human error page (not axum's `text/plain` serde message) when the body is
/// missing, malformed or incomplete.
pub(crate) struct AppForm<T>(pub(crate) T);

impl<T: DeserializeOwned + Send> FromRequest<Shared> for AppForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Shared) -> std::result::Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let page = page_parts(&mut parts, state).await?;
        let parsed = Form::<T>::from_request(Request::from_parts(parts, body), state)
            .await
            .map(|Form(value)| Self(value))
            .map_err(|r: FormRejection| r.body_text());
        let message = "The form arrived incomplete or could not be read. Go back, reload the page and try again.";
        parsed_or_page(parsed, page, "form", message).await
    }
}

/// Query parameters, or the human error page.
pub(crate) struct AppQuery<T>(pub(crate) T);

impl<T: DeserializeOwned + Send> FromRequestParts<Shared> for AppQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Shared,
    ) -> std::result::Result<Self, Response> {
        let page = page_parts(parts, state).await?;
        let parsed = Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|r: QueryRejection| r.body_text());
        let message = "That link is incomplete or could not be read. Start again from the sign-in page.";
        parsed_or_page(parsed, page, "query", message).await
    }
}

/// A JSON body, or a JSON error the page's script shows like any other.
pub(crate) struct AppJson<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<Shared> for AppJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Shared) -> std::result::Result<Self, Response> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(bad_json(&rejection)),
        }
    }
}

pub(crate) fn bad_json(rejection: &JsonRejection) -> Response {
    eprintln!("web: malformed JSON: {rejection}");
    json_error(
        StatusCode::BAD_REQUEST,
        "The request could not be read. Reload the page and try again.",
    )
}

pub(crate) fn csrf_ok(token: &CsrfToken, value: &str) -> bool {
    token.verify(value).is_ok()
}

pub(crate) fn csrf_header_ok(token: &CsrfToken, headers: &HeaderMap) -> bool {
    headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| csrf_ok(token, v))
}

pub(crate) fn expired_page() -> Response {
    json_error(StatusCode::FORBIDDEN, "This page expired. Reload it and try again.")
}

/// What to tell a person about an outcome that was not an acceptance. A pause or a lock may
/// come from someone else's guesses on another browser: it is said without blaming the reader,
/// with the methods that still work (`others`, in words; empty if none).
pub(crate) fn refusal(outcome: &Outcome, what: &str, others: &str) -> String {
    let instead = if others.is_empty() {
        String::new()
    } else {
        format!(" You can sign in with {others} now.")
    };
    let method = match what {
        "code" => "authenticator codes",
        "backup code" => "backup codes",
        other => other,
    };
    match outcome {
        Outcome::Throttled { retry_at } => {
            let now = multifactor::Clock::now(&SystemClock);
            format!(
                "Sign-in with {method} is paused for this browser after failed attempts from browsers \
                 we don't know yet (not necessarily yours). Try again in {} seconds.{instead}",
                retry_at.secs_since(now).max(1)
            )
        }
        // The key verified; the site's rules on authenticators refuse it, and say why.
        Outcome::NotAllowed(reason) => format!("This {what} can't be used here: {reason}."),
        Outcome::Locked => format!(
            "Sign-in with {method} is closed for this browser after many failed attempts from browsers \
             we don't know yet (not necessarily yours).{instead} Support can reopen it."
        ),
        _ => format!("That {what} didn't work. Check it and try again."),
    }
}

/// Errors a person can act on, in their words; `None` for errors that are ours.
pub(crate) fn user_message(e: &MfaError) -> Option<String> {
    Some(match e {
        MfaError::Input(InputError::CodeFormat { .. }) => "That doesn't look like a valid code.".into(),
        MfaError::Input(InputError::AuthenticatorCodeAsBackupCode) => {
            "That looks like a code from your authenticator app. Enter one of your backup codes here, \
             or choose the authenticator app instead."
                .into()
        }
        MfaError::Input(InputError::DeviceName) => "Names must be 1 to 64 characters.".into(),
        MfaError::Input(InputError::WebAuthnResponse(_)) => "The browser's answer could not be read.".into(),
        MfaError::Misuse(MisuseError::NoDevice(_)) => "You have no such method set up.".into(),
        MfaError::Misuse(MisuseError::DeviceNotFound) => "That method no longer exists.".into(),
        MfaError::Misuse(MisuseError::LastDevice) => {
            "You can't remove your last sign-in method. Add another one first.".into()
        }
        MfaError::Misuse(MisuseError::TooManyCredentials) => "You have too many security keys and passkeys.".into(),
        MfaError::Input(InputError::Destination) => "That doesn't look like an email address.".into(),
        MfaError::Misuse(MisuseError::DuplicateDestination) => "You already get codes at that address.".into(),
        MfaError::Misuse(MisuseError::TooManyDestinations) => "You have too many addresses for codes.".into(),
        MfaError::Misuse(MisuseError::SendLimit { retry_at }) => {
            let now = multifactor::Clock::now(&SystemClock);
            format!(
                "We sent a code a moment ago. You can ask for another in {} seconds.",
                retry_at.secs_since(now).max(1)
            )
        }
        _ => return None,
    })
}

/// Signs the user in with what the session proved (`extract::complete_sign_in`: a new session
/// id, the pending user gone, the evidence kept as the library's tagged text), and clears the
/// demo's own second-factor and step-up state.
pub(crate) async fn sign_in(app: &App, session: &Session, evidence: &SessionEvidence) -> Result<()> {
    clear_steps(session).await?;
    extract::complete_sign_in(session, &app.mfa, evidence).await?;
    Ok(())
}

/// The demo's own state of a sign-in or step-up under way.
pub(crate) async fn clear_steps(session: &Session) -> Result<()> {
    session.remove::<String>(PENDING_VIA).await?;
    session.remove::<String>(STEP_UP_DELETE).await?;
    session.remove::<String>(STEP_UP_ACTION).await?;
    session.remove::<String>(STEP_UP_KINDS).await?;
    session.remove::<String>(ENROLL_SKIPPED).await?;
    Ok(())
}

/// The user's display name (their user name until they choose one).
pub(crate) fn display_name(app: &App, user: &UserId) -> String {
    app.display_names
        .lock()
        .ok()
        .and_then(|names| names.get(user.as_str()).cloned())
        .unwrap_or_else(|| user.as_str().to_owned())
}

/// Leaves WebAuthn signals for the next page's script.
pub(crate) async fn keep_signals(session: &Session, signals: Vec<(&str, Value)>) -> Result<()> {
    if signals.is_empty() {
        return Ok(());
    }
    let list: Vec<Value> = signals
        .into_iter()
        .map(|(kind, payload)| json!({ "kind": kind, "payload": payload }))
        .collect();
    session.insert(SIGNALS, Value::Array(list).to_string()).await?;
    Ok(())
}

/// Deletes a device and leaves the accepted-credentials signals for the next page. The outer
/// error is the session's; the inner one the library's answer to show.
pub(crate) async fn delete_and_signal(
    app: &App,
    session: &Session,
    user: &UserId,
    device: DeviceId,
) -> Result<std::result::Result<(), MfaError>> {
    match app.mfa.delete_device_with_signals(user, device).await {
        Ok(signals) => {
            let payloads = signals
                .iter()
                .map(|s| ("allAcceptedCredentials", s.to_json_value()))
                .collect();
            keep_signals(session, payloads).await?;
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// A cookie of the request, by name.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(tower_sessions::cookie::Cookie::split_parse)
        .filter_map(std::result::Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The session key of this browser's known-browser id (to mark it on the devices page).
pub(crate) const KNOWN_ID: &str = "known_browser_id";

/// A `Set-Cookie` value for a browser token: HttpOnly, SameSite=Lax, until the token expires,
/// and Secure behind TLS.
pub(crate) fn token_cookie(app: &App, name: &'static str, token: &RememberedBrowserToken) -> String {
    let now = SystemClock.now();
    let max_age = i64::try_from(token.expires_at.secs_since(now)).unwrap_or(i64::MAX);
    tower_sessions::cookie::Cookie::build((name, token.token.expose_secret().to_owned()))
        .http_only(true)
        .secure(app.secure_cookies)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(tower_sessions::cookie::time::Duration::seconds(max_age))
        .build()
        .to_string()
}

/// After a full sign-in: the browser's known-browser token is replaced (the old one retired),
/// and with `remember` a remember-this-browser token is added. Returns the `Set-Cookie` values.
pub(crate) async fn full_sign_in_cookies(
    app: &App,
    session: &Session,
    headers: &HeaderMap,
    verified: &Verified,
    remember: bool,
) -> Result<Vec<String>> {
    let previous = cookie(headers, KNOWN_COOKIE);
    let known = app.mfa.know_browser(verified, previous.as_deref()).await?;
    session.insert(KNOWN_ID, known.id.to_string()).await?;
    let mut cookies = vec![token_cookie(app, KNOWN_COOKIE, &known)];
    if remember {
        let remembered = app.mfa.remember_browser(verified).await?;
        cookies.push(token_cookie(app, REMEMBER_COOKIE, &remembered));
    }
    Ok(cookies)
}

/// `response` with the cookies set.
pub(crate) fn with_cookies(mut response: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(value) = HeaderValue::from_str(c) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}
