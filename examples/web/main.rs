//! A web app with the whole MFA experience: password sign-in with a second factor (TOTP, backup
//! code, security key or passkey), passwordless sign-in with a passkey (also as autofill on the
//! username field), and an "MFA devices" settings page.
//!
//! ```text
//! cargo run --example web                      # http://localhost:8080, SQLite file web.db
//! cargo run --example web -- --port 0 --db /tmp/demo.db
//! ```
//!
//! Demo users are built in (`alice`, `bob`, ... `judy`; password `demo-pass`): the password
//! handling is demo-only. Sessions are tower-sessions (in memory, id cycled at sign-in), forms and
//! JSON calls carry axum_csrf tokens, and pages are plain HTML with one script for WebAuthn.

#[path = "../support/demo_key.rs"]
mod demo_key;
mod pages;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use axum_csrf::{CsrfConfig, CsrfToken};
use multifactor::{
    AuthenticationResponse, CeremonyId, DeviceId, DeviceKind, Error as MfaError, InputError, Keyring, Mfa, MfaConfig,
    MisuseError, OsRng, Outcome, RegistrationResponse, RelyingParty, SqliteStore, SystemClock, UserId, WebAuthnConfig,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, MemoryStore as SessionStore, Session, SessionManagerLayer};

use crate::pages::Frame;

/// Demo only: fixed users and one fixed password.
const DEMO_USERS: [&str; 12] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "trent",
];
const DEMO_PASSWORD: &str = "demo-pass";

const USER: &str = "user";
const PENDING: &str = "pending_user";
const TOTP_DEVICE: &str = "totp_device";
const FLASH: &str = "flash";

type AppMfa = Mfa<SqliteStore, SystemClock, OsRng>;

struct App {
    mfa: AppMfa,
    csrf: CsrfConfig,
}

/// The router's state: the app, shared.
#[derive(Clone)]
struct Shared(Arc<App>);

impl std::ops::Deref for Shared {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl FromRef<Shared> for CsrfConfig {
    fn from_ref(app: &Shared) -> Self {
        app.0.csrf.clone()
    }
}

/// An unexpected failure: logged in full, shown to the user as a generic page.
struct AppError(String);

impl<E: std::fmt::Display> From<E> for AppError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        eprintln!("web: internal error: {}", self.0);
        let frame = Frame {
            title: "Something went wrong",
            csrf: "",
            user: None,
            error: Some("Something went wrong on our side. Please try again."),
            notice: None,
        };
        (StatusCode::INTERNAL_SERVER_ERROR, Html(pages::error_page(&frame))).into_response()
    }
}

type Result<T, E = AppError> = std::result::Result<T, E>;

struct Args {
    port: u16,
    db: Option<PathBuf>,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args {
        port: 8080,
        db: Some(PathBuf::from("web.db")),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => {
                args.port = it.next().and_then(|p| p.parse().ok()).ok_or("--port needs a number")?;
            }
            "--db" => args.db = Some(PathBuf::from(it.next().ok_or("--db needs a file")?)),
            "--memory" => args.db = None,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (use --port N, --db FILE, --memory)"
                ));
            }
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("web: {e}");
        std::process::exit(1);
    }
}

async fn run() -> std::result::Result<(), String> {
    let args = parse_args()?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let origin = format!("http://localhost:{port}");

    let (store, key) = match &args.db {
        Some(path) => {
            let (key, note) = demo_key::load("WEB_SEALING_KEY", path)?;
            if let Some(note) = note {
                eprintln!("web: {note}");
            }
            (SqliteStore::open(path).await.map_err(|e| e.to_string())?, key)
        }
        None => {
            let rng = OsRng::new().map_err(|e| e.to_string())?;
            let id = multifactor::KeyId::new("memory").map_err(|e| e.to_string())?;
            let key = multifactor::SealingKey::generate(id, &rng).map_err(|e| e.to_string())?;
            (SqliteStore::open_in_memory().await.map_err(|e| e.to_string())?, key)
        }
    };
    let mut config = MfaConfig::new("multifactor demo").map_err(|e| e.to_string())?;
    let rp = RelyingParty::new("localhost", "multifactor demo", &[&origin]).map_err(|e| e.to_string())?;
    config.webauthn = Some(WebAuthnConfig::new(rp));
    let mfa = Mfa::new(store, Keyring::new(key), config).map_err(|e| e.to_string())?;
    let app = Shared(Arc::new(App {
        mfa,
        csrf: CsrfConfig::default(),
    }));

    let sessions = SessionManagerLayer::new(SessionStore::default())
        .with_name("mfa_demo_session")
        .with_secure(false) // plain http on localhost; set true behind TLS
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::minutes(
            30,
        )));

    let router = Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/mfa", get(mfa_page))
        .route("/mfa/totp", post(mfa_totp))
        .route("/mfa/backup", post(mfa_backup))
        .route("/mfa/webauthn/start", post(mfa_webauthn_start))
        .route("/mfa/webauthn/finish", post(mfa_webauthn_finish))
        .route("/login/passkey/start", post(passkey_start))
        .route("/login/passkey/finish", post(passkey_finish))
        .route("/settings", get(settings))
        .route("/settings/totp", post(totp_start))
        .route("/settings/totp/confirm", post(totp_confirm))
        .route("/settings/backup-codes", post(backup_codes))
        .route("/settings/webauthn/start", post(register_start))
        .route("/settings/webauthn/finish", post(register_finish))
        .route("/settings/rename", post(rename))
        .route("/settings/delete", post(delete))
        .route("/static/webauthn.js", get(script))
        .route("/static/style.css", get(style))
        .layer(axum::middleware::map_response(security_headers))
        .layer(sessions)
        .with_state(app);

    println!(
        "demo users: {} (password {DEMO_PASSWORD:?}, demo only)",
        DEMO_USERS.join(", ")
    );
    println!("listening on {origin}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("webauthn.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
}

// ----- Helpers ------------------------------------------------------------------------------

async fn current_user(session: &Session) -> Result<Option<UserId>> {
    Ok(session.get::<String>(USER).await?.and_then(|u| UserId::new(u).ok()))
}

async fn pending_user(session: &Session) -> Result<Option<UserId>> {
    Ok(session.get::<String>(PENDING).await?.and_then(|u| UserId::new(u).ok()))
}

async fn take_flash(session: &Session) -> Result<Option<String>> {
    Ok(session.remove::<String>(FLASH).await?)
}

/// Renders a page with the CSRF token (and sets its cookie).
fn page(token: CsrfToken, status: StatusCode, render: impl FnOnce(&str) -> String) -> Result<Response> {
    let csrf = token.authenticity_token()?;
    Ok((status, token, Html(render(&csrf))).into_response())
}

fn frame<'a>(title: &'a str, csrf: &'a str, user: Option<&'a UserId>) -> Frame<'a> {
    Frame {
        title,
        csrf,
        user: user.map(UserId::as_str),
        error: None,
        notice: None,
    }
}

fn forbidden() -> Response {
    let frame = Frame {
        title: "Please try again",
        csrf: "",
        user: None,
        error: Some("This form expired or did not come from this site. Reload the page and try again."),
        notice: None,
    };
    (StatusCode::FORBIDDEN, Html(pages::error_page(&frame))).into_response()
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn csrf_ok(token: &CsrfToken, value: &str) -> bool {
    token.verify(value).is_ok()
}

fn csrf_header_ok(token: &CsrfToken, headers: &HeaderMap) -> bool {
    headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| csrf_ok(token, v))
}

/// What to tell a person about an outcome that was not an acceptance.
fn refusal(outcome: &Outcome, what: &str) -> String {
    match outcome {
        Outcome::Throttled { retry_at } => {
            let now = multifactor::Clock::now(&SystemClock);
            format!(
                "Too many failed attempts. Try again in {} seconds.",
                retry_at.secs_since(now).max(1)
            )
        }
        Outcome::Locked => "Too many failed attempts: this method is locked. Contact support to unlock it.".into(),
        _ => format!("That {what} didn't work. Check it and try again."),
    }
}

/// Errors a person can act on, in their words; `None` for errors that are ours.
fn user_message(e: &MfaError) -> Option<String> {
    Some(match e {
        MfaError::Input(InputError::CodeFormat { .. }) => "That doesn't look like a valid code.".into(),
        MfaError::Input(InputError::DeviceName) => "Names must be 1 to 64 characters.".into(),
        MfaError::Input(InputError::WebAuthnResponse(_)) => "The browser's answer could not be read.".into(),
        MfaError::Misuse(MisuseError::NoMethod(_)) => "You have no such method set up.".into(),
        MfaError::Misuse(MisuseError::DeviceNotFound) => "That method no longer exists.".into(),
        MfaError::Misuse(MisuseError::LastMethod) => {
            "You can't remove your last sign-in method. Add another one first.".into()
        }
        MfaError::Misuse(MisuseError::TooManyCredentials) => "You have too many security keys and passkeys.".into(),
        _ => return None,
    })
}

/// Signs the user in: a new session id, the second-factor step cleared.
async fn sign_in(session: &Session, user: &UserId) -> Result<()> {
    session.cycle_id().await?;
    session.remove::<String>(PENDING).await?;
    session.insert(USER, user.as_str()).await?;
    Ok(())
}

/// Does the user have a method that must be used at sign-in?
async fn needs_second_factor(mfa: &AppMfa, user: &UserId) -> Result<bool> {
    Ok(mfa
        .list_methods(user)
        .await?
        .iter()
        .any(|m| m.confirmed && m.remaining_backup_codes != Some(0)))
}

/// The ceremony the page names at a finish. The id is a random 128-bit handle to state that
/// stays on the server; the library binds it to the user (or to "nobody" for passwordless) and
/// the ceremony kind, expires it, and takes it out once, so the session need not track it (and
/// concurrent requests of one session, such as autofill and a button press, cannot clobber it).
fn named_ceremony(named: &str) -> Option<CeremonyId> {
    named.parse().ok()
}

// ----- Pages --------------------------------------------------------------------------------

async fn home(State(app): State<Shared>, session: Session, token: CsrfToken) -> Result<Response> {
    let Some(user) = current_user(&session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let methods = app.mfa.list_methods(&user).await?.len();
    let notice = take_flash(&session).await?;
    page(token, StatusCode::OK, |csrf| {
        let mut f = frame("Home", csrf, Some(&user));
        f.notice = notice.as_deref();
        pages::home(&f, methods)
    })
}

async fn login_page(session: Session, token: CsrfToken) -> Result<Response> {
    if current_user(&session).await?.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let notice = take_flash(&session).await?;
    page(token, StatusCode::OK, |csrf| {
        let mut f = frame("Sign in", csrf, None);
        f.notice = notice.as_deref();
        pages::login(&f, &DEMO_USERS, DEMO_PASSWORD)
    })
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    username: String,
    password: String,
}

async fn login(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    Form(form): Form<LoginForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return Ok(forbidden());
    }
    // Demo only: a fixed password, compared in constant time.
    let known = DEMO_USERS.contains(&form.username.as_str());
    let password_ok = subtle_eq(form.password.as_bytes(), DEMO_PASSWORD.as_bytes());
    let user = match UserId::new(form.username.trim()) {
        Ok(user) if known && password_ok => user,
        _ => {
            return page(token, StatusCode::UNAUTHORIZED, |csrf| {
                let mut f = frame("Sign in", csrf, None);
                f.error = Some("Wrong username or password.");
                pages::login(&f, &DEMO_USERS, DEMO_PASSWORD)
            });
        }
    };
    if needs_second_factor(&app.mfa, &user).await? {
        session.cycle_id().await?;
        session.insert(PENDING, user.as_str()).await?;
        return Ok(Redirect::to("/mfa").into_response());
    }
    sign_in(&session, &user).await?;
    Ok(Redirect::to("/").into_response())
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    // Lengths of demo passwords are not secret.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn logout(session: Session, token: CsrfToken, Form(form): Form<CsrfOnly>) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return Ok(forbidden());
    }
    session.flush().await?;
    Ok(Redirect::to("/login").into_response())
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

async fn render_mfa(
    app: &App,
    user: &UserId,
    token: CsrfToken,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response> {
    let methods = app.mfa.list_methods(user).await?;
    let has = |kinds: &[DeviceKind]| methods.iter().any(|m| m.confirmed && kinds.contains(&m.kind));
    let (totp, codes, webauthn) = (
        has(&[DeviceKind::Totp]),
        methods.iter().any(|m| m.remaining_backup_codes.is_some_and(|n| n > 0)),
        has(&[DeviceKind::SecurityKey, DeviceKind::Passkey]),
    );
    page(token, status, |csrf| {
        let mut f = frame("Second factor", csrf, None);
        f.error = error;
        pages::second_factor(&f, totp, codes, webauthn)
    })
}

async fn mfa_page(State(app): State<Shared>, session: Session, token: CsrfToken) -> Result<Response> {
    let Some(user) = pending_user(&session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    render_mfa(&app, &user, token, StatusCode::OK, None).await
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: String,
    code: String,
}

async fn mfa_code(app: Shared, session: Session, token: CsrfToken, form: CodeForm, backup: bool) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return Ok(forbidden());
    }
    let Some(user) = pending_user(&session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let result = if backup {
        app.mfa.verify_backup_code(&user, &form.code).await
    } else {
        app.mfa.verify_totp(&user, &form.code).await
    };
    let what = if backup { "backup code" } else { "code" };
    let message = match result {
        Ok(Outcome::Accepted(v)) => {
            sign_in(&session, &user).await?;
            if let Some(left) = v.remaining_backup_codes() {
                session
                    .insert(
                        FLASH,
                        format!("Signed in with a backup code. {left} backup codes left."),
                    )
                    .await?;
            }
            return Ok(Redirect::to("/").into_response());
        }
        Ok(other) => refusal(&other, what),
        Err(e) => user_message(&e).ok_or(AppError(e.to_string()))?,
    };
    render_mfa(&app, &user, token, StatusCode::UNAUTHORIZED, Some(&message)).await
}

async fn mfa_totp(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    Form(form): Form<CodeForm>,
) -> Result<Response> {
    mfa_code(app, session, token, form, false).await
}

async fn mfa_backup(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    Form(form): Form<CodeForm>,
) -> Result<Response> {
    mfa_code(app, session, token, form, true).await
}

async fn mfa_webauthn_start(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    headers: HeaderMap,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "This page expired. Reload and try again.",
        ));
    }
    let Some(user) = pending_user(&session).await? else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "Sign in with your password first.",
        ));
    };
    let (ceremony, options) = match app.mfa.start_webauthn_authentication(&user).await {
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
struct FinishBody {
    ceremony: String,
    response: Value,
    #[serde(default)]
    name: Option<String>,
}

async fn mfa_webauthn_finish(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    headers: HeaderMap,
    Json(body): Json<FinishBody>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "This page expired. Reload and try again.",
        ));
    }
    let Some(user) = pending_user(&session).await? else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "Sign in with your password first.",
        ));
    };
    let Some(ceremony) = named_ceremony(&body.ceremony) else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "Start again: no sign-in is in progress.",
        ));
    };
    let response = match AuthenticationResponse::from_json_value(body.response) {
        Ok(r) => r,
        Err(_) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "The browser's answer could not be read.",
            ));
        }
    };
    match app
        .mfa
        .finish_webauthn_authentication(&user, ceremony, &response)
        .await?
    {
        Outcome::Accepted(_) => {
            sign_in(&session, &user).await?;
            Ok(Json(json!({ "redirect": "/" })).into_response())
        }
        other => Ok(json_error(StatusCode::UNAUTHORIZED, &refusal(&other, "security key"))),
    }
}

#[derive(Deserialize)]
struct PasskeyStart {
    #[serde(default)]
    conditional: bool,
}

async fn passkey_start(
    State(app): State<Shared>,
    token: CsrfToken,
    headers: HeaderMap,
    Json(body): Json<PasskeyStart>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "This page expired. Reload and try again.",
        ));
    }
    let (ceremony, options) = app.mfa.start_passwordless(body.conditional).await?;
    Ok(Json(json!({ "options": options, "ceremony": ceremony.to_string() })).into_response())
}

async fn passkey_finish(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    headers: HeaderMap,
    Json(body): Json<FinishBody>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "This page expired. Reload and try again.",
        ));
    }
    let Some(ceremony) = named_ceremony(&body.ceremony) else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "Start again: no sign-in is in progress.",
        ));
    };
    let response = match AuthenticationResponse::from_json_value(body.response) {
        Ok(r) => r,
        Err(_) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "The browser's answer could not be read.",
            ));
        }
    };
    match app.mfa.finish_passwordless(ceremony, &response).await? {
        Outcome::Accepted(v) => {
            sign_in(&session, v.user()).await?;
            Ok(Json(json!({ "redirect": "/" })).into_response())
        }
        other => Ok(json_error(StatusCode::UNAUTHORIZED, &refusal(&other, "passkey"))),
    }
}

// ----- Settings -----------------------------------------------------------------------------

async fn settings(State(app): State<Shared>, session: Session, token: CsrfToken) -> Result<Response> {
    let Some(user) = current_user(&session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    render_settings(&app, &session, &user, token, StatusCode::OK, None).await
}

async fn render_settings(
    app: &App,
    session: &Session,
    user: &UserId,
    token: CsrfToken,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response> {
    let methods = app.mfa.list_methods(user).await?;
    let notice = take_flash(session).await?;
    page(token, status, |csrf| {
        let mut f = frame("MFA devices", csrf, Some(user));
        f.error = error;
        f.notice = notice.as_deref();
        pages::settings(&f, &methods)
    })
}

async fn totp_start(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    Form(form): Form<CsrfOnly>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return Ok(forbidden());
    }
    let Some(user) = current_user(&session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let enrollment = app.mfa.enroll_totp(&user, user.as_str(), None).await?;
    session.insert(TOTP_DEVICE, enrollment.device.to_string()).await?;
    let svg = enrollment.qr_svg()?;
    let svg = svg.expose_secret();
    let svg = svg.find("<svg").map_or(svg, |i| &svg[i..]);
    page(token, StatusCode::OK, |csrf| {
        pages::totp_setup(
            &frame("Set up an authenticator app", csrf, Some(&user)),
            svg,
            enrollment.secret_base32.expose_secret(),
        )
    })
}

async fn totp_confirm(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    Form(form): Form<CodeForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return Ok(forbidden());
    }
    let Some(user) = current_user(&session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
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
        Ok(other) => refusal(&other, "code"),
        Err(e) => user_message(&e).ok_or(AppError(e.to_string()))?,
    };
    // Show the list with the error; the pending enrollment can be started again.
    render_settings(&app, &session, &user, token, StatusCode::BAD_REQUEST, Some(&message)).await
}

async fn backup_codes(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    Form(form): Form<CsrfOnly>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return Ok(forbidden());
    }
    let Some(user) = current_user(&session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let set = app.mfa.generate_backup_codes(&user, None).await?;
    let codes: Vec<String> = set.codes.iter().map(|c| c.expose_secret().to_owned()).collect();
    page(token, StatusCode::OK, |csrf| {
        pages::backup_codes(&frame("Your backup codes", csrf, Some(&user)), &codes)
    })
}

#[derive(Deserialize)]
struct RegisterStart {
    kind: String,
}

async fn register_start(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    headers: HeaderMap,
    Json(body): Json<RegisterStart>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "This page expired. Reload and try again.",
        ));
    }
    let Some(user) = current_user(&session).await? else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, "Sign in first."));
    };
    let started = match body.kind.as_str() {
        "passkey" => {
            app.mfa
                .start_passkey_registration(&user, user.as_str(), user.as_str())
                .await
        }
        "security_key" => {
            app.mfa
                .start_security_key_registration(&user, user.as_str(), user.as_str())
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

async fn register_finish(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    headers: HeaderMap,
    Json(body): Json<FinishBody>,
) -> Result<Response> {
    if !csrf_header_ok(&token, &headers) {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "This page expired. Reload and try again.",
        ));
    }
    let Some(user) = current_user(&session).await? else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, "Sign in first."));
    };
    let Some(ceremony) = named_ceremony(&body.ceremony) else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "Start again: no registration is in progress.",
        ));
    };
    let response = match RegistrationResponse::from_json_value(body.response) {
        Ok(r) => r,
        Err(_) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "The browser's answer could not be read.",
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
        Ok(_) => Ok(json_error(
            StatusCode::BAD_REQUEST,
            "That key could not be registered (it may be registered already). Try again.",
        )),
        Err(e) => Ok(json_error(
            StatusCode::BAD_REQUEST,
            &user_message(&e).ok_or(AppError(e.to_string()))?,
        )),
    }
}

#[derive(Deserialize)]
struct RenameForm {
    csrf: String,
    id: String,
    name: String,
}

async fn rename(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    Form(form): Form<RenameForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return Ok(forbidden());
    }
    let Some(user) = current_user(&session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let result = match form.id.parse::<DeviceId>() {
        Ok(id) => app.mfa.rename_method(&user, id, &form.name).await,
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
struct DeleteForm {
    csrf: String,
    id: String,
}

async fn delete(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    Form(form): Form<DeleteForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return Ok(forbidden());
    }
    let Some(user) = current_user(&session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let result = match form.id.parse::<DeviceId>() {
        Ok(id) => app.mfa.delete_method(&user, id).await,
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
