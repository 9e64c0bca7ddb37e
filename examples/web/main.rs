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
//!
//! This file holds the app's state, its routes and its static files. The handlers are in a file
//! per part of the site: `signin` (sign-in and the second factor), `settings` (the "MFA
//! devices" page and the account changes it guards), `demoid` (the simulated identity
//! provider); `flow` holds what the sign-in decides between pages, `common` what every page
//! uses, and `pages` renders the HTML.

use multifactor::Clock as _;
use multifactor::authorize::{Action, ActionPolicy, Authorization, Denial, Level, Requirement, SessionEvidence};
use multifactor::enrollment::{EnrollmentPolicy, EnrollmentStatus, Skipped};
use multifactor::extract::{self, PendingSecondFactor, SessionVerifier, SignedIn};
use multifactor::webauthn::{PasswordlessCeremony, ProviderCatalog, Providers};
use multifactor_kit::demo_key;
mod common;
mod demoid;
mod flow;
mod pages;
mod settings;
mod signin;

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
use multifactor::error::{InputError, MisuseError};
use multifactor::remembered_browser::RememberedBrowserToken;
use multifactor::totp::TotpEnrollment;
use multifactor::webauthn::{AuthenticationResponse, RegistrationResponse, RelyingParty, WebAuthnConfig};
use multifactor::{
    Assurance, CeremonyId, DeviceId, DeviceInfo, DeviceKind, Error as MfaError, FirstFactor, Keyring, Mfa, MfaConfig,
    OsRng, Outcome, RememberedBrowserId, Rng as _, SqliteStore, SystemClock, UserId, Verified,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, MemoryStore as SessionStore, Session, SessionManagerLayer};

use crate::common::*;
use crate::demoid::*;
use crate::flow::*;
use crate::pages::{Frame, Nav};
use crate::settings::*;
use crate::signin::*;

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
    //     config.assurance = multifactor::policy::AssurancePolicy::new()
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
