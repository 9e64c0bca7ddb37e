//! A web app with the whole MFA experience: password sign-in with a second factor (TOTP, backup
//! code, security key or passkey), passwordless sign-in with a passkey (also as autofill on the
//! username field), and an "MFA devices" settings page.
//!
//! ```text
//! cargo run --example web                      # http://localhost:8080, SQLite file web.db
//! cargo run --example web -- --port 0 --db /tmp/demo.db
//! # behind a TLS reverse proxy that serves https://example.com, with a related origin:
//! cargo run --example web -- --rp-id example.com --origin https://example.com \
//!     --related-origin https://example.co.uk
//! ```
//!
//! Demo users are built in (`alice`, `bob`, ... `trent`; password `demo-pass`): the password
//! handling is demo-only. "Sign in with DemoID" is a simulated external identity provider (in
//! the same process, no network): a federated first factor, after which `Mfa::assurance` still
//! asks users with MFA methods for their second factor. Sessions are tower-sessions (in memory, id cycled at sign-in), forms and
//! JSON calls carry axum_csrf tokens, and pages are plain HTML with one script for WebAuthn.

use multifactor::Clock as _;
use multifactor::authorize::{Action, ActionPolicy, Authorization, Denial, Level, Requirement, SessionEvidence};
use multifactor::enrollment::{EnrollmentPolicy, EnrollmentStatus, Skipped};
use multifactor::extract::{self, PendingSecondFactor, SessionVerifier, SignedIn};
use multifactor::webauthn::{PasswordlessCeremony, ProviderCatalog, Providers};
use multifactor_kit::demo_key;
mod pages;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use axum_csrf::{CsrfConfig, CsrfToken};
use multifactor::{
    Assurance, AuthenticationResponse, CeremonyId, DeviceId, DeviceInfo, DeviceKind, Error as MfaError, FirstFactor,
    InputError, Keyring, Mfa, MfaConfig, MisuseError, OsRng, Outcome, RegistrationResponse, RelyingParty,
    RememberedBrowserId, RememberedBrowserToken, Rng as _, SqliteStore, SystemClock, TotpEnrollment, UserId, Verified,
    WebAuthnConfig,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, MemoryStore as SessionStore, Session, SessionManagerLayer};

use crate::pages::{Frame, Nav};

/// Demo only: fixed users and one fixed password.
/// The demo's provider catalog (community AAGUID format): Chromium's virtual authenticator, with
/// an icon drawn for the demo. No third-party list ships with the crate (see its docs).
const DEMO_PROVIDERS: &str = include_str!("providers.json");

const DEMO_USERS: [&str; 31] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "oscar",
    "peggy", "quentin", "rupert", "sybil", "trent", "uma", "victor", "walter", "wendy", "xavier", "yara", "zoe",
    "kate", "lena", "mia", "nora", "olga", "petra",
];
const DEMO_PASSWORD: &str = "demo-pass";

/// How the pending user passed the first factor, in words ("your password", "DemoID").
const PENDING_VIA: &str = "pending_via";
/// The `state` of a DemoID sign-in this session started (its CSRF protection).
const DEMOID_STATE: &str = "demoid_state";
/// The provider name the assurance policy knows DemoID by.
const DEMOID: &str = "demoid";
/// How long a DemoID authorization code may wait for its callback.
const DEMOID_CODE_LIFETIME: Duration = Duration::from_secs(60);
const TOTP_DEVICE: &str = "totp_device";
const FLASH: &str = "flash";
/// The known-browser cookie: this browser completed a full sign-in, so its failed attempts go to
/// a counter of its own (`Mfa::know_browser`). Replaced at every full sign-in.
const KNOWN_COOKIE: &str = "mfa_known";
/// The remember-this-browser cookie: this browser skips the second factor for a while.
const REMEMBER_COOKIE: &str = "mfa_remember";
/// A deletion waiting for a fresh second factor: the device id.
const STEP_UP_DELETE: &str = "step_up_delete";
/// Another sensitive action waiting for a fresh second factor: what it is, in words.
const STEP_UP_ACTION: &str = "step_up_action";
/// WebAuthn signals for the next page to send (JSON `[{kind, payload}]`).
const SIGNALS: &str = "webauthn_signals";

type AppMfa = Mfa<SqliteStore, SystemClock, OsRng>;

struct App {
    mfa: Arc<AppMfa>,
    csrf: CsrfConfig,
    rng: OsRng,
    /// DemoID's authorization codes, each taken once by the callback.
    demoid: Mutex<HashMap<String, DemoIdGrant>>,
    /// Display names users chose (demo only: a real service keeps them with the account).
    display_names: Mutex<HashMap<String, String>>,
    /// The related-origins document (`/.well-known/webauthn`).
    well_known: String,
    /// Codes "sent" by email: this demo has no mail server, so its pages show them (marked).
    outbox: Mutex<Vec<pages::OutboxMessage>>,
    /// Each user's encrypted note: ciphertext only (the key is derived in the browser from a
    /// passkey's PRF output, and never sent here).
    notes: Mutex<HashMap<String, String>>,
    /// Whether cookies are `Secure`: behind TLS (an `https://` origin), not on plain localhost.
    secure_cookies: bool,
}

/// What the simulated provider asserts about a person, behind one authorization code.
struct DemoIdGrant {
    user: String,
    amr: Vec<String>,
    issued: Instant,
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

/// The session extractors (`SignedIn`, `PendingSecondFactor`) read the session through the
/// service.
impl FromRef<Shared> for Arc<dyn SessionVerifier> {
    fn from_ref(app: &Shared) -> Self {
        app.0.mfa.clone()
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
        // No session at hand here: the page claims no state and links to the start, which
        // leads to the home page or the sign-in page as the session decides.
        let frame = Frame {
            title: "Something went wrong",
            csrf: "",
            nav: Nav::Unknown,
            error: Some("Something went wrong on our side. Please try again."),
            notice: None,
            warning: None,
            signals: None,
        };
        (StatusCode::INTERNAL_SERVER_ERROR, Html(pages::error_page(&frame))).into_response()
    }
}

type Result<T, E = AppError> = std::result::Result<T, E>;

struct Args {
    port: u16,
    db: Option<PathBuf>,
    /// Related origins on other domains (WebAuthn Level 3), listed at /.well-known/webauthn.
    related: Vec<String>,
    /// A provider catalog in the community AAGUID format, instead of the demo's own.
    providers: Option<PathBuf>,
    /// The relying party id and the origin users see, when a TLS front end (a reverse proxy)
    /// serves this site under its real name. Default: `localhost` and this plain listener.
    rp_id: Option<String>,
    origin: Option<String>,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args {
        port: 8080,
        db: Some(PathBuf::from("web.db")),
        related: Vec::new(),
        providers: None,
        rp_id: None,
        origin: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => {
                args.port = it.next().and_then(|p| p.parse().ok()).ok_or("--port needs a number")?;
            }
            "--db" => args.db = Some(PathBuf::from(it.next().ok_or("--db needs a file")?)),
            "--memory" => args.db = None,
            "--related-origin" => args.related.push(it.next().ok_or("--related-origin needs a URL")?),
            "--providers" => args.providers = Some(PathBuf::from(it.next().ok_or("--providers needs a file")?)),
            "--rp-id" => args.rp_id = Some(it.next().ok_or("--rp-id needs a domain")?),
            "--origin" => args.origin = Some(it.next().ok_or("--origin needs a URL")?),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (use --port N, --db FILE, --memory, --related-origin URL, \
                     --providers FILE, --rp-id DOMAIN --origin URL)"
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
    let listening = format!("http://localhost:{port}");
    // Behind a TLS front end the site has its real name; on its own, it is localhost.
    let (rp_id, origin) = match (args.rp_id, args.origin) {
        (Some(rp_id), Some(origin)) => (rp_id, origin),
        (None, None) => ("localhost".to_owned(), listening.clone()),
        _ => return Err("--rp-id and --origin go together".to_owned()),
    };
    let secure_cookies = origin.starts_with("https://");

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
    let related: Vec<&str> = args.related.iter().map(String::as_str).collect();
    let rp = RelyingParty::new(&rp_id, "multifactor demo", &[&origin])
        .and_then(|rp| rp.with_related_origins(&related))
        .map_err(|e| e.to_string())?;
    let well_known = rp.well_known_webauthn();
    // Provider names and icons by AAGUID: the demo's own small file (Chromium's virtual
    // authenticator), or a community `aaguid.json` the operator downloaded (--providers).
    let catalog = match &args.providers {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => DEMO_PROVIDERS.to_owned(),
    };
    let providers = Providers::new(ProviderCatalog::from_json(&catalog).map_err(|e| e.to_string())?);
    config.webauthn = Some(WebAuthnConfig::new(rp).with_providers(providers));
    config.enrollment = Some(
        EnrollmentPolicy::new(1, ENROLLMENT_GRACE_SECS)
            .and_then(|p| p.with_skips(ENROLLMENT_SKIPS))
            .map_err(|e| e.to_string())?,
    );
    // A host action of this site's own: where payouts go. A stolen password and app code
    // must not be enough, so it wants a phishing-resistant factor from the last 5 minutes.
    config.actions = ActionPolicy::new().require(PAYOUTS, Requirement::new(Level::PhishingResistant, 300));
    // A federated login (DemoID here) is a first factor only: users with MFA methods are asked
    // for one. A host whose provider really enforces MFA, and whose tokens it validates, can
    // trust that provider's claim by name (and only then):
    //
    //     config.assurance = multifactor::AssurancePolicy::new()
    //         .danger_trust_upstream_mfa(DEMOID, &["mfa"], &[]);
    let mfa = Mfa::new(store, Keyring::new(key), config).map_err(|e| e.to_string())?;
    // Another key under the same id (a changed WEB_SEALING_KEY) is refused here, not found out
    // by users whose codes stop working.
    mfa.check_keys().await.map_err(|e| e.to_string())?;
    let app = Shared(Arc::new(App {
        mfa: Arc::new(mfa),
        csrf: CsrfConfig::default().with_secure(secure_cookies),
        rng: OsRng::new().map_err(|e| e.to_string())?,
        demoid: Mutex::new(HashMap::new()),
        display_names: Mutex::new(HashMap::new()),
        outbox: Mutex::new(Vec::new()),
        notes: Mutex::new(HashMap::new()),
        well_known,
        secure_cookies,
    }));

    let sessions = SessionManagerLayer::new(SessionStore::default())
        .with_name("mfa_demo_session")
        .with_secure(secure_cookies) // plain http on localhost; secure behind TLS
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
        .route("/mfa/email", post(mfa_email))
        .route("/mfa/email/send", post(mfa_email_send))
        .route("/mfa/webauthn/start", post(mfa_webauthn_start))
        .route("/mfa/webauthn/finish", post(mfa_webauthn_finish))
        .route("/login/passkey/start", post(passkey_start))
        .route("/login/passkey/finish", post(passkey_finish))
        .route("/login/demoid", get(demoid_start))
        .route("/login/demoid/callback", get(demoid_callback))
        .route("/demoid/authorize", get(demoid_page).post(demoid_authorize))
        .route("/settings", get(settings))
        .route("/enroll/skip", post(skip_enrollment))
        .route("/settings/totp", post(totp_start))
        .route("/settings/totp/confirm", post(totp_confirm))
        .route("/settings/totp/resume", post(totp_resume))
        .route("/settings/backup-codes", post(backup_codes))
        .route("/settings/email", post(email_start))
        .route("/settings/note/start", post(note_start))
        .route("/settings/note/save", post(note_save))
        .route("/settings/note/load", post(note_load))
        .route("/settings/email/confirm", post(email_confirm))
        .route("/settings/email/resume", post(email_resume))
        .route("/settings/webauthn/start", post(register_start))
        .route("/settings/webauthn/finish", post(register_finish))
        .route("/settings/rename", post(rename))
        .route("/settings/delete", post(delete))
        .route("/settings/display-name", post(change_display_name))
        .route("/settings/payout", post(change_payout))
        .route("/settings/browsers/revoke", post(revoke_browser))
        .route("/.well-known/webauthn", get(well_known_webauthn))
        .route("/static/webauthn.js", get(script))
        .route("/static/style.css", get(style))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .layer(sessions)
        .with_state(app);

    println!(
        "demo users: {} (password {DEMO_PASSWORD:?}, demo only)",
        DEMO_USERS.join(", ")
    );
    if origin != listening {
        println!("serving {origin} (behind a TLS front end)");
    }
    println!("listening on {listening}");
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

/// WebAuthn Level 3 related origins: the origins that may use this relying party's passkeys.
async fn well_known_webauthn(State(app): State<Shared>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], app.well_known.clone())
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

/// Who is there, as the session says.
struct Visitor {
    user: Option<UserId>,
    pending: Option<UserId>,
}

impl Visitor {
    async fn of(app: &App, session: &Session) -> Result<Self> {
        Ok(Self {
            user: extract::signed_in(session, app.mfa.as_ref())
                .await?
                .map(|e| e.user().clone()),
            pending: extract::pending(session).await?,
        })
    }

    fn nav(&self) -> Nav<'_> {
        match (&self.user, &self.pending) {
            (Some(user), _) => Nav::SignedIn(user.as_str()),
            (None, Some(pending)) => Nav::SecondFactor(pending.as_str()),
            (None, None) => Nav::SignedOut,
        }
    }
}

async fn take_flash(session: &Session) -> Result<Option<String>> {
    Ok(session.remove::<String>(FLASH).await?)
}

/// Renders a page with the CSRF token (and sets its cookie).
fn page(token: CsrfToken, status: StatusCode, render: impl FnOnce(&str) -> String) -> Result<Response> {
    let csrf = token.authenticity_token()?;
    Ok((status, token, Html(render(&csrf))).into_response())
}

fn frame<'a>(title: &'a str, csrf: &'a str, nav: Nav<'a>) -> Frame<'a> {
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
async fn error_page(
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

async fn forbidden(app: &App, session: &Session, token: CsrfToken) -> Result<Response> {
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

async fn not_found(State(app): State<Shared>, session: Session, token: CsrfToken) -> Result<Response> {
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

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The session and a CSRF token, for an extractor's error page.
async fn page_parts(
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
async fn parsed_or_page<T>(
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
struct AppForm<T>(T);

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
struct AppQuery<T>(T);

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
struct AppJson<T>(T);

impl<T: DeserializeOwned> FromRequest<Shared> for AppJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Shared) -> std::result::Result<Self, Response> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(bad_json(&rejection)),
        }
    }
}

fn bad_json(rejection: &JsonRejection) -> Response {
    eprintln!("web: malformed JSON: {rejection}");
    json_error(
        StatusCode::BAD_REQUEST,
        "The request could not be read. Reload the page and try again.",
    )
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

fn expired_page() -> Response {
    json_error(StatusCode::FORBIDDEN, "This page expired. Reload it and try again.")
}

/// What to tell a person about an outcome that was not an acceptance. A pause or a lock may
/// come from someone else's guesses on another browser: it is said without blaming the reader,
/// with the methods that still work (`others`, in words; empty if none).
fn refusal(outcome: &Outcome, what: &str, others: &str) -> String {
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
fn user_message(e: &MfaError) -> Option<String> {
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
async fn sign_in(app: &App, session: &Session, evidence: &SessionEvidence) -> Result<()> {
    clear_steps(session).await?;
    extract::complete_sign_in(session, &app.mfa, evidence).await?;
    Ok(())
}

/// The demo's own state of a sign-in or step-up under way.
async fn clear_steps(session: &Session) -> Result<()> {
    session.remove::<String>(PENDING_VIA).await?;
    session.remove::<String>(STEP_UP_DELETE).await?;
    session.remove::<String>(STEP_UP_ACTION).await?;
    session.remove::<String>(STEP_UP_KINDS).await?;
    session.remove::<String>(ENROLL_SKIPPED).await?;
    Ok(())
}

/// The user's display name (their user name until they choose one).
fn display_name(app: &App, user: &UserId) -> String {
    app.display_names
        .lock()
        .ok()
        .and_then(|names| names.get(user.as_str()).cloned())
        .unwrap_or_else(|| user.as_str().to_owned())
}

/// Leaves WebAuthn signals for the next page's script.
async fn keep_signals(session: &Session, signals: Vec<(&str, Value)>) -> Result<()> {
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
async fn delete_and_signal(
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
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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
const KNOWN_ID: &str = "known_browser_id";

/// A `Set-Cookie` value for a browser token: HttpOnly, SameSite=Lax, until the token expires,
/// and Secure behind TLS.
fn token_cookie(app: &App, name: &'static str, token: &RememberedBrowserToken) -> String {
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
async fn full_sign_in_cookies(
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
fn with_cookies(mut response: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(value) = HeaderValue::from_str(c) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// What the devices page says once a required enrollment is past its deadline.
const ENROLLMENT_REQUIRED: &str =
    "This site requires a second sign-in method, and the time to skip it has passed: set one up to continue.";
/// The host action "change the payout account", named in the action policy.
const PAYOUTS: &str = "payouts";
/// The kinds of device a pending step-up can be given with (comma-separated kind names).
const STEP_UP_KINDS: &str = "step_up_kinds";

/// How long a new account may skip setting up a second method.
const ENROLLMENT_GRACE_SECS: u64 = 14 * 86_400;
/// How many times a new account may skip the prompt to set one up (the grace ends at the
/// deadline or with the last skip, whichever comes first).
const ENROLLMENT_SKIPS: u32 = 3;
/// The prompt was skipped in this session: the home page does not show it again until the
/// next sign-in.
const ENROLL_SKIPPED: &str = "enroll_skipped";

/// What the sign-in page says to a user whose backup codes ran out with no other method.
const RECOVERY_REQUIRED: &str = "Your account has no working second factor left: you used your last backup code. \
     Your password alone does not sign you in. Ask the site's support to recover your account.";

/// A sign-in after the first factor alone (`remembered`: a remembered browser skipped the
/// second factor).
async fn sign_in_first_factor(
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
fn first_factor_of(via: &str) -> FirstFactor {
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
enum StepUpFor {
    Delete(DeviceId),
    /// Another action, in words ("generate new backup codes").
    Action(String),
}

/// Asks the library whether the session may do `action` now. `None`: go ahead. Otherwise where
/// to send the person: the second-factor page for a step-up (what waits is kept in the
/// session), or the devices page with the reason.
async fn gate(
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
enum Verifying {
    SignIn(UserId),
    StepUp(SessionEvidence, StepUpFor),
}

async fn verifying(
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
    fn user(&self) -> &UserId {
        match self {
            Self::SignIn(user) => user,
            Self::StepUp(evidence, _) => evidence.user(),
        }
    }
}

/// A second factor was accepted: sign in (a full sign-in: the browser's tokens are set), or
/// finish the action it was asked for. Returns where the person goes next and the cookies to set.
async fn second_factor_done(
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
async fn after_first_factor(
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
async fn methods_and_warning(app: &App, user: &UserId) -> Result<(Vec<DeviceInfo>, Option<String>)> {
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
fn named_ceremony(named: &str) -> Option<CeremonyId> {
    named.parse().ok()
}

/// 128 random bits as hex (DemoID's `state` and codes).
fn random_token(app: &App) -> Result<String> {
    let mut bytes = [0u8; 16];
    app.rng.try_fill_bytes(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    // Lengths of demo passwords and tokens are not secret.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ----- Pages --------------------------------------------------------------------------------

async fn home(
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

async fn login_page(
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
struct LoginForm {
    csrf: String,
    username: String,
    password: String,
}

async fn login(
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
async fn logout(
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
struct CsrfOnly {
    csrf: String,
}

async fn render_mfa(
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

async fn mfa_page(
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
struct CodeForm {
    csrf: String,
    code: String,
    /// "1" when "Remember this browser" was ticked.
    #[serde(default)]
    remember: String,
}

/// The session's states a second-factor page may serve: a sign-in waiting for its second factor,
/// or a signed-in user confirming an action.
struct SecondFactorStates(Option<PendingSecondFactor>, Option<SignedIn>);

async fn mfa_code(
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
async fn other_methods(app: &App, user: &UserId, refused: DeviceKind) -> Result<String> {
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

async fn mfa_totp(
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

async fn mfa_backup(
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

async fn mfa_email(
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
enum CodeKind {
    App,
    Backup,
    Email,
}

/// "Email a code": the library makes the code, the demo "sends" it to its outbox.
async fn mfa_email_send(
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
struct NoteStart {
    /// What the derived key is for: the salt, as the page names it (1 to 64 characters).
    salt: String,
}

/// Options for deriving a key from one of the user's passkeys: an authentication with the
/// `prf` extension evaluated at the page's salt. The page keeps the output; the ceremony is
/// never finished here (it is no sign-in, and it expires on its own).
async fn note_start(
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
    let prf = multifactor::PrfInputs::new().eval(format!("multifactor demo/{}", body.salt).as_bytes(), None);
    match app.mfa.start_webauthn_authentication(evidence.user()).await {
        Ok((_, options)) => Ok(Json(json!({ "options": options.with_prf(prf) })).into_response()),
        Err(e) => Ok(json_error(
            StatusCode::BAD_REQUEST,
            &user_message(&e).ok_or(AppError(e.to_string()))?,
        )),
    }
}

#[derive(Deserialize)]
struct NoteSave {
    /// base64url of the IV and the AES-GCM ciphertext.
    ciphertext: String,
}

/// Keeps the user's note as the page encrypted it.
async fn note_save(
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
async fn note_load(
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
fn deliver(app: &App, user: &UserId, sent: &multifactor::SentCode) {
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
fn outbox_html(app: &App, user: &UserId) -> String {
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

async fn mfa_webauthn_start(
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
struct FinishBody {
    ceremony: String,
    response: Value,
    #[serde(default)]
    name: Option<String>,
    /// "Remember this browser" was ticked (second factor only).
    #[serde(default)]
    remember: bool,
}

/// The browser's assertion, or what to tell the page.
fn assertion<T: std::str::FromStr>(body: FinishBody) -> std::result::Result<(T, AuthenticationResponse), &'static str> {
    let ceremony = body
        .ceremony
        .parse()
        .map_err(|_| "No sign-in is in progress: start again.")?;
    let response = AuthenticationResponse::from_json_value(body.response)
        .map_err(|_| "The browser's answer could not be read. Try again.")?;
    Ok((ceremony, response))
}

async fn mfa_webauthn_finish(
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
struct PasskeyStart {
    #[serde(default)]
    conditional: bool,
}

async fn passkey_start(
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

async fn passkey_finish(
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

// ----- DemoID: a simulated external identity provider (demo only) ---------------------------
//
// The shape of an OpenID Connect authorization-code flow, in one process: the sign-in page sends
// the person to the provider with a `state` bound to their session; the provider sends them back
// with a one-time code; the callback checks the state, takes the code once, and treats what the
// provider asserts as a federated first factor. A real integration validates the provider's
// signed ID token instead of reading a map, and maps its subject to a local account.

async fn demoid_start(State(app): State<Shared>, session: Session, signed_in: Option<SignedIn>) -> Result<Response> {
    if signed_in.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let state = random_token(&app)?;
    session.insert(DEMOID_STATE, &state).await?;
    Ok(Redirect::to(&format!("/demoid/authorize?state={state}")).into_response())
}

#[derive(Deserialize)]
struct DemoIdQuery {
    state: String,
}

async fn demoid_page(token: CsrfToken, AppQuery(query): AppQuery<DemoIdQuery>) -> Result<Response> {
    page(token, StatusCode::OK, |csrf| {
        pages::demoid(csrf, &query.state, &DEMO_USERS)
    })
}

#[derive(Deserialize)]
struct DemoIdForm {
    csrf: String,
    state: String,
    user: String,
    #[serde(default)]
    mfa: Option<String>,
}

async fn demoid_authorize(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    AppForm(form): AppForm<DemoIdForm>,
) -> Result<Response> {
    if !csrf_ok(&token, &form.csrf) {
        return forbidden(&app, &session, token).await;
    }
    if !DEMO_USERS.contains(&form.user.as_str()) {
        return error_page(
            &app,
            &session,
            token,
            StatusCode::BAD_REQUEST,
            "Please try again",
            "DemoID has no such account.",
        )
        .await;
    }
    let mut amr = vec!["pwd".to_owned()];
    if form.mfa.is_some() {
        amr.push("mfa".to_owned());
    }
    let code = random_token(&app)?;
    let grant = DemoIdGrant {
        user: form.user,
        amr,
        issued: Instant::now(),
    };
    if let Ok(mut codes) = app.demoid.lock() {
        codes.retain(|_, g| g.issued.elapsed() < DEMOID_CODE_LIFETIME);
        codes.insert(code.clone(), grant);
    }
    let state: String = form.state.chars().filter(char::is_ascii_hexdigit).collect();
    Ok(Redirect::to(&format!("/login/demoid/callback?code={code}&state={state}")).into_response())
}

#[derive(Deserialize)]
struct DemoIdCallback {
    code: String,
    state: String,
}

async fn demoid_callback(
    State(app): State<Shared>,
    session: Session,
    token: CsrfToken,
    headers: HeaderMap,
    AppQuery(query): AppQuery<DemoIdCallback>,
) -> Result<Response> {
    let expected = session.remove::<String>(DEMOID_STATE).await?;
    let grant = app.demoid.lock().ok().and_then(|mut codes| codes.remove(&query.code));
    let state_ok = expected.is_some_and(|e| subtle_eq(e.as_bytes(), query.state.as_bytes()));
    let grant = match grant {
        Some(g) if state_ok && g.issued.elapsed() < DEMOID_CODE_LIFETIME => g,
        _ => {
            return error_page(
                &app,
                &session,
                token,
                StatusCode::BAD_REQUEST,
                "Please try again",
                "This DemoID sign-in expired or was not started here. Start again from the sign-in page.",
            )
            .await;
        }
    };
    let user = UserId::new(grant.user)?;
    let first = FirstFactor::Federated {
        provider: DEMOID.to_owned(),
        amr: grant.amr,
        acr: None,
    };
    let next = after_first_factor(&app, &session, &headers, &user, &first, "DemoID").await?;
    Ok(Redirect::to(next).into_response())
}

// ----- Settings -----------------------------------------------------------------------------

#[derive(Deserialize)]
struct BrowserForm {
    csrf: String,
    id: String,
}

/// Revokes one of the user's browsers, known or remembered: it becomes an unknown browser (and
/// skips nothing) until its next full sign-in.
async fn revoke_browser(
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
async fn skip_enrollment(
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

async fn settings(
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

async fn render_settings(
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
fn totp_page(
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

async fn totp_start(
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
struct IdForm {
    csrf: String,
    id: String,
}

#[derive(Deserialize)]
struct EmailForm {
    csrf: String,
    address: String,
}

#[derive(Deserialize)]
struct ConfirmForm {
    csrf: String,
    id: String,
    code: String,
}

/// "Add an email address": enroll it (a step-up first unless the session may add a method),
/// deliver its first code, and ask for it.
async fn email_start(
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
        .enroll_sent_code(&user, multifactor::Channel::Email, &form.address, None)
        .await;
    code_sent(&app, &session, &user, token, enrolled).await
}

/// A new code for an address waiting for its first one.
async fn email_resume(
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
async fn code_sent(
    app: &App,
    session: &Session,
    user: &UserId,
    token: CsrfToken,
    result: std::result::Result<multifactor::SentCode, MfaError>,
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
async fn email_confirm(
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
fn email_page(
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
async fn totp_resume(
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

fn resume_message(e: &MfaError) -> Option<&'static str> {
    match e {
        MfaError::Misuse(MisuseError::AlreadyConfirmed) => Some("That authenticator app is already set up."),
        MfaError::Misuse(_) | MfaError::Input(_) => {
            Some("That setup was replaced or removed. Start again with \"Set up an authenticator app\".")
        }
        _ => None,
    }
}

async fn totp_confirm(
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
struct CodesForm {
    csrf: String,
    /// `replace` once the person confirmed that their current codes stop working.
    #[serde(default)]
    confirm: Option<String>,
}

async fn backup_codes(
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
struct RegisterStart {
    kind: String,
}

async fn register_start(
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
            .map(|(ceremony, options)| (ceremony, options.with_prf(multifactor::PrfInputs::new()))),
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

async fn register_finish(
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
struct RenameForm {
    csrf: String,
    id: String,
    name: String,
}

async fn rename(
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
struct DisplayNameForm {
    csrf: String,
    display_name: String,
}

/// Changes the display name, and tells the browser's authenticators (signalCurrentUserDetails).
#[derive(Deserialize)]
struct PayoutForm {
    csrf: String,
    account: String,
}

/// A sensitive action of the site's own: it asks the library for its named requirement.
async fn change_payout(
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

async fn change_display_name(
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

async fn delete(
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
