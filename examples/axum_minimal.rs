//! TOTP and backup codes in an axum service, in one file, on the published crate alone
//! (features `axum`, `qr`, `serde`, `sqlite`). Copy it and replace the demo password check.
//!
//! ```text
//! export MFA_SEALING_KEY=$(openssl rand -hex 32)   # keep it in your secrets manager
//! cargo run --example axum_minimal                 # then open http://127.0.0.1:3000
//! ```
//!
//! `MFA_DB` names the SQLite file (default `axum_minimal.db`) and `ADDR` the address to listen
//! on (default `127.0.0.1:3000`).
//!
//! Sign in as anyone with the password `password`. Forms are safe from cross-site posts
//! because tower-sessions' cookie is `SameSite=Strict`; add CSRF tokens if you relax that.

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use multifactor::authorize::Action;
use multifactor::extract::{
    PendingSecondFactor, SessionVerifier, SignedIn, begin_second_factor, clear_sign_in, complete_sign_in,
};
use multifactor::{
    Clock, DeviceId, DeviceInfo, DeviceKind, FirstFactor, KeyId, Keyring, Mfa, MfaConfig, Outcome, SealingKey,
    SqliteStore, UserId,
};
use serde::Deserialize;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

type Service = Arc<Mfa<SqliteStore>>;

#[derive(Clone)]
struct App {
    mfa: Service,
}

impl FromRef<App> for Arc<dyn SessionVerifier> {
    fn from_ref(app: &App) -> Self {
        app.mfa.clone()
    }
}

#[derive(Deserialize)]
struct Login {
    user: String,
    password: String,
}

#[derive(Deserialize)]
struct Code {
    code: String,
    #[serde(default)]
    backup: bool,
}

type Page = Result<Response, Response>;

/// Any error as a 500 with its message (the crate's messages never hold a secret).
fn fail(e: impl std::fmt::Display) -> Response {
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
}

fn page(body: &str) -> Response {
    Html(format!("<!doctype html><meta charset=utf-8><title>MFA</title>{body}")).into_response()
}

async fn home(signed_in: Option<SignedIn>) -> Response {
    match signed_in {
        Some(SignedIn(s)) => page(&format!(
            "<p>Signed in as {}.</p><p><a href=/setup>Add an authenticator app</a> · \
             <a href=/devices>Your devices (JSON)</a></p><form method=post action=/logout><button>Sign out</button></form>",
            s.user()
        )),
        None => page(
            "<form method=post action=/login><input name=user placeholder=User> \
             <input name=password type=password placeholder=Password> <button>Sign in</button></form>",
        ),
    }
}

async fn login(State(app): State<App>, session: Session, Form(form): Form<Login>) -> Page {
    // Your own password check goes here.
    let user = UserId::new(form.user).map_err(fail)?;
    if form.password != "password" {
        return Err(page("<p>Wrong user or password. <a href=/>Back</a></p>"));
    }
    let assurance = app.mfa.assurance(&user, &FirstFactor::Password).await.map_err(fail)?;
    if assurance.second_factor_required() {
        begin_second_factor(&session, &user).await.map_err(fail)?;
        return Ok(Redirect::to("/mfa").into_response());
    }
    let evidence = app
        .mfa
        .start_session(&user, FirstFactor::Password)
        .await
        .map_err(fail)?;
    complete_sign_in(&session, &app.mfa, &evidence).await.map_err(fail)?;
    Ok(Redirect::to("/").into_response())
}

async fn mfa_form(PendingSecondFactor(user): PendingSecondFactor) -> Response {
    page(&format!(
        "<p>{user}, enter the code from your authenticator app.</p><form method=post>\
         <input name=code autocomplete=one-time-code autofocus> <label><input type=checkbox name=backup value=true> \
         it is a backup code</label> <button>Verify</button></form>"
    ))
}

/// The browser's known-browser cookie: its own failure counter, so that someone else's guesses
/// never hold the owner back.
fn known_browser(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let value = cookies.split(';').find_map(|c| c.trim().strip_prefix("mfa_known="))?;
    Some(value.to_owned())
}

async fn mfa_verify(
    State(app): State<App>,
    session: Session,
    headers: HeaderMap,
    PendingSecondFactor(user): PendingSecondFactor,
    Form(form): Form<Code>,
) -> Page {
    let known = known_browser(&headers);
    let outcome = if form.backup {
        app.mfa
            .verify_backup_code_from(&user, &form.code, known.as_deref())
            .await
    } else {
        app.mfa.verify_totp_from(&user, &form.code, known.as_deref()).await
    };
    let verified = match outcome {
        Ok(Outcome::Accepted(verified)) => verified,
        Ok(Outcome::Throttled { retry_at }) => {
            return Err(page(&format!("<p>Too many tries: wait until {retry_at} (UTC).</p>")));
        }
        Ok(Outcome::Locked) => return Err(page("<p>Locked: ask support to unlock your account.</p>")),
        Ok(_) => return Err(page("<p>That code did not work. <a href=/mfa>Try again</a></p>")),
        // A person's mistake (a code of the wrong shape): the message is meant for them.
        Err(multifactor::Error::Input(e)) => return Err(page(&format!("<p>{e}. <a href=/mfa>Try again</a></p>"))),
        Err(e) => return Err(fail(e)),
    };
    let mut evidence = app
        .mfa
        .start_session(&user, FirstFactor::Password)
        .await
        .map_err(fail)?;
    app.mfa.add_evidence(&mut evidence, &verified).await.map_err(fail)?;
    complete_sign_in(&session, &app.mfa, &evidence).await.map_err(fail)?;
    // A full sign-in: this browser is known from now on (add `Secure` behind HTTPS).
    let token = app.mfa.know_browser(&verified, known.as_deref()).await.map_err(fail)?;
    let max_age = token.expires_at.secs_since(app.mfa.clock().now());
    let cookie = format!(
        "mfa_known={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}",
        token.token.expose_secret()
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

async fn setup_form(State(app): State<App>, SignedIn(s): SignedIn) -> Page {
    // Adding a method is a sensitive action: the library decides whether this session may.
    let allowed = app
        .mfa
        .authorize(&s, Action::AddDevice(DeviceKind::Totp))
        .await
        .map_err(fail)?;
    if !allowed.is_allowed() {
        return Err(page("<p>Sign in again with your second factor first.</p>"));
    }
    let enrollment = app
        .mfa
        .enroll_totp(s.user(), s.user().as_str(), None)
        .await
        .map_err(fail)?;
    let qr = enrollment.qr_svg().map_err(fail)?;
    Ok(page(&format!(
        "<p>Scan this with your app (or type the key <code>{}</code>), then type the code it shows.</p>{}\
         <form method=post><input name=code autocomplete=one-time-code> <button>Confirm</button></form>",
        enrollment.secret_base32.expose_secret(),
        qr.expose_secret()
    )))
}

async fn setup_confirm(State(app): State<App>, SignedIn(s): SignedIn, Form(form): Form<Code>) -> Page {
    match app.mfa.confirm_pending_totp(s.user(), &form.code).await.map_err(fail)? {
        Outcome::Accepted(_) => {}
        _ => return Err(page("<p>That code did not work. <a href=/setup>Start again</a></p>")),
    }
    // The first method comes with backup codes, shown once.
    let set = app.mfa.generate_backup_codes(s.user(), None).await.map_err(fail)?;
    let codes: Vec<&str> = set.codes.iter().map(|c| c.expose_secret()).collect();
    Ok(page(&format!(
        "<p>Done. Keep these backup codes somewhere safe; each works once:</p><pre>{}</pre><a href=/>Home</a>",
        codes.join("\n")
    )))
}

async fn devices(State(app): State<App>, SignedIn(s): SignedIn) -> Result<Json<Vec<DeviceInfo>>, Response> {
    app.mfa.list_devices(s.user()).await.map(Json).map_err(fail)
}

/// A device id from the path is checked by its `Deserialize`: a malformed one never gets here.
async fn device(State(app): State<App>, SignedIn(s): SignedIn, Path(id): Path<DeviceId>) -> Response {
    match app.mfa.list_devices(s.user()).await {
        Ok(list) => match list.into_iter().find(|d| d.id == id) {
            Some(d) => Json(d).into_response(),
            None => axum::http::StatusCode::NOT_FOUND.into_response(),
        },
        Err(e) => fail(e),
    }
}

async fn logout(session: Session) -> Page {
    clear_sign_in(&session).await.map_err(fail)?;
    Ok(Redirect::to("/").into_response())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum_minimal: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let hex = std::env::var("MFA_SEALING_KEY").map_err(
        |_| "set MFA_SEALING_KEY to 64 hexadecimal digits, e.g. export MFA_SEALING_KEY=$(openssl rand -hex 32)",
    )?;
    let keys = Keyring::new(SealingKey::from_hex(KeyId::new("key-1")?, &hex)?);
    let db = std::env::var("MFA_DB").unwrap_or_else(|_| "axum_minimal.db".into());
    let store = SqliteStore::open(&db).await?;
    let mfa = Arc::new(Mfa::new(store, keys, MfaConfig::new("Minimal example")?)?);
    let sessions = SessionManagerLayer::new(MemoryStore::default()).with_secure(false); // true behind HTTPS
    let app = Router::new()
        .route("/", get(home))
        .route("/login", axum::routing::post(login))
        .route("/mfa", get(mfa_form).post(mfa_verify))
        .route("/setup", get(setup_form).post(setup_confirm))
        .route("/devices", get(devices))
        .route("/devices/{id}", get(device))
        .route("/logout", axum::routing::post(logout))
        .layer(sessions)
        .with_state(App { mfa });
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
