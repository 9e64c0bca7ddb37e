//! The session seam for axum on tower-sessions (feature `axum`): the state "password passed,
//! second factor pending" and the signed-in state, kept where each host otherwise writes them by
//! hand, and extractors that read them back.
//!
//! - [`begin_second_factor`] after the first factor: a new session id, any earlier sign-in in the
//!   session gone (an old signed-in user never stays beside a new pending one), the pending user.
//! - [`complete_sign_in`] with the [`SessionEvidence`] once the second factor passed (or when
//!   none is due): a new session id, the pending user gone, the evidence kept as the service's
//!   tagged text.
//! - [`clear_sign_in`] when a sign-in ends without one (or a pending one is given up).
//! - [`SignedIn`], [`PendingSecondFactor`] and [`FreshSecondFactor`] extract those states, and
//!   refuse with `401 Unauthorized` (or `403 Forbidden` for a session that is signed in but has no
//!   recent second factor) otherwise; `Option<SignedIn>` and `Option<PendingSecondFactor>` are
//!   `None` instead, for a handler that sends the person to a page of its own. They read the evidence back through the service, so text
//!   the service did not make is never a signed-in session.
//!
//! The extractors need the service from the router's state: implement
//! `FromRef<YourState> for Arc<dyn SessionVerifier>` (the service implements [`SessionVerifier`]).
//!
//! ```
//! use std::sync::Arc;
//! use axum::extract::FromRef;
//! use axum::response::{IntoResponse, Redirect, Response};
//! use multifactor::extract::{SessionVerifier, SignedIn};
//! use multifactor::{Keyring, KeyId, MemoryStore, Mfa, MfaConfig, SealingKey};
//!
//! #[derive(Clone)]
//! struct AppState {
//!     mfa: Arc<Mfa<MemoryStore>>,
//! }
//!
//! impl FromRef<AppState> for Arc<dyn SessionVerifier> {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.mfa.clone()
//!     }
//! }
//!
//! async fn home(SignedIn(session): SignedIn) -> String {
//!     format!("signed in as {}", session.user())
//! }
//!
//! // Or send a signed-out visitor to the sign-in page:
//! async fn settings(signed_in: Option<SignedIn>) -> Response {
//!     match signed_in {
//!         Some(SignedIn(session)) => format!("settings of {}", session.user()).into_response(),
//!         None => Redirect::to("/login").into_response(),
//!     }
//! }
//!
//! let keys = Keyring::new(SealingKey::new(KeyId::new("k").unwrap(), [1; 32]));
//! let mfa = Arc::new(Mfa::new(MemoryStore::new(), keys, MfaConfig::new("Example").unwrap()).unwrap());
//! let app: axum::Router = axum::Router::new()
//!     .route("/", axum::routing::get(home))
//!     .route("/settings", axum::routing::get(settings))
//!     .with_state(AppState { mfa });
//! # let _ = app;
//! ```

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use tower_sessions::Session;

use crate::authorize::SessionEvidence;
use crate::clock::{Clock, UnixTime};
use crate::error::Error;
use crate::id::UserId;
use crate::rng::Rng;
use crate::service::Mfa;

/// Where the sealed session evidence is kept in the session.
pub const EVIDENCE_KEY: &str = "multifactor.evidence";
/// Where the user waiting for their second factor is kept in the session.
pub const PENDING_KEY: &str = "multifactor.pending";

/// What the extractors need from the service: reading sealed evidence back, and the time and
/// freshness a fresh second factor is measured with.
pub trait SessionVerifier: Send + Sync {
    /// The evidence `text` holds, if the service's keys made it.
    fn open(&self, text: &str) -> Option<SessionEvidence>;
    /// The service's clock.
    fn now(&self) -> UnixTime;
    /// How recent a second factor must be to count as fresh
    /// ([`ActionPolicy::fresh_secs`](crate::authorize::ActionPolicy::fresh_secs)).
    fn fresh_secs(&self) -> u64;
}

impl<S: Send + Sync, C: Clock, R: Rng> SessionVerifier for Mfa<S, C, R> {
    fn open(&self, text: &str) -> Option<SessionEvidence> {
        self.open_session(text).ok()
    }

    fn now(&self) -> UnixTime {
        self.clock().now()
    }

    fn fresh_secs(&self) -> u64 {
        self.config().actions.fresh_secs()
    }
}

/// A session store failure, or the service's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session store failed.
    #[error("session: {0}")]
    Session(#[from] tower_sessions::session::Error),
    /// The service failed (sealing the evidence).
    #[error(transparent)]
    Mfa(#[from] Error),
}

/// After the first factor, with a second factor due: a new session id, any earlier sign-in of
/// the session removed, and `user` kept as the one waiting for their second factor.
///
/// # Errors
///
/// [`SessionError::Session`] if the session store fails.
pub async fn begin_second_factor(session: &Session, user: &UserId) -> Result<(), SessionError> {
    session.cycle_id().await?;
    session.remove::<String>(EVIDENCE_KEY).await?;
    session.insert(PENDING_KEY, user.as_str()).await?;
    Ok(())
}

/// The sign-in is complete: a new session id, the pending user removed, and `evidence` kept
/// as the service's tagged text.
///
/// # Errors
///
/// [`SessionError::Session`] if the session store fails.
pub async fn complete_sign_in<S, C: Clock, R: Rng>(
    session: &Session,
    mfa: &Mfa<S, C, R>,
    evidence: &SessionEvidence,
) -> Result<(), SessionError> {
    let sealed = mfa.seal_session(evidence)?;
    session.cycle_id().await?;
    session.remove::<String>(PENDING_KEY).await?;
    session.insert(EVIDENCE_KEY, sealed).await?;
    Ok(())
}

/// Keeps `evidence` after a step-up (the session id stays).
///
/// # Errors
///
/// [`SessionError::Session`] if the session store fails.
pub async fn keep_evidence<S, C: Clock, R: Rng>(
    session: &Session,
    mfa: &Mfa<S, C, R>,
    evidence: &SessionEvidence,
) -> Result<(), SessionError> {
    session.insert(EVIDENCE_KEY, mfa.seal_session(evidence)?).await?;
    Ok(())
}

/// Ends the sign-in, finished or pending: a new session id, the evidence and the pending user
/// removed. (The host's own keys stay; `Session::flush` removes everything.)
///
/// # Errors
///
/// [`SessionError::Session`] if the session store fails.
pub async fn clear_sign_in(session: &Session) -> Result<(), SessionError> {
    session.cycle_id().await?;
    session.remove::<String>(EVIDENCE_KEY).await?;
    session.remove::<String>(PENDING_KEY).await?;
    Ok(())
}

/// The session's evidence, if it holds evidence the service made (the state [`SignedIn`]
/// extracts, for code that has the session but is no handler).
///
/// # Errors
///
/// [`SessionError::Session`] if the session store fails.
pub async fn signed_in(
    session: &Session,
    verifier: &dyn SessionVerifier,
) -> Result<Option<SessionEvidence>, SessionError> {
    Ok(session
        .get::<String>(EVIDENCE_KEY)
        .await?
        .and_then(|text| verifier.open(&text)))
}

/// The user waiting for their second factor, if any (the state [`PendingSecondFactor`]
/// extracts).
///
/// # Errors
///
/// [`SessionError::Session`] if the session store fails.
pub async fn pending(session: &Session) -> Result<Option<UserId>, SessionError> {
    Ok(session
        .get::<String>(PENDING_KEY)
        .await?
        .and_then(|user| UserId::new(user).ok()))
}

/// A signed-in session: its evidence, read back through the service. As `Option<SignedIn>` it
/// is `None` for a session that is not signed in (and the request fails only if the session
/// store does).
#[derive(Debug, Clone)]
pub struct SignedIn(pub SessionEvidence);

/// A session whose first factor passed and whose second factor is due: the user. As
/// `Option<PendingSecondFactor>` it is `None` for any other session.
#[derive(Debug, Clone)]
pub struct PendingSecondFactor(pub UserId);

/// A signed-in session whose latest second factor (not a backup code) is within the service's
/// freshness.
#[derive(Debug, Clone)]
pub struct FreshSecondFactor(pub SessionEvidence);

async fn session_of<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Session, StatusCode> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

async fn evidence_of<S>(
    parts: &mut Parts,
    state: &S,
) -> Result<Option<(SessionEvidence, Arc<dyn SessionVerifier>)>, StatusCode>
where
    S: Send + Sync,
    Arc<dyn SessionVerifier>: FromRef<S>,
{
    let verifier = Arc::<dyn SessionVerifier>::from_ref(state);
    let session = session_of(parts, state).await?;
    let evidence = signed_in(&session, verifier.as_ref())
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(evidence.map(|e| (e, verifier)))
}

impl<S> FromRequestParts<S> for SignedIn
where
    S: Send + Sync,
    Arc<dyn SessionVerifier>: FromRef<S>,
{
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match evidence_of(parts, state).await? {
            Some((e, _)) => Ok(Self(e)),
            None => Err(StatusCode::UNAUTHORIZED),
        }
    }
}

impl<S> OptionalFromRequestParts<S> for SignedIn
where
    S: Send + Sync,
    Arc<dyn SessionVerifier>: FromRef<S>,
{
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(evidence_of(parts, state).await?.map(|(e, _)| Self(e)))
    }
}

impl<S> FromRequestParts<S> for FreshSecondFactor
where
    S: Send + Sync,
    Arc<dyn SessionVerifier>: FromRef<S>,
{
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (evidence, verifier) = evidence_of(parts, state).await?.ok_or(StatusCode::UNAUTHORIZED)?;
        let (now, max_age) = (verifier.now(), verifier.fresh_secs());
        let fresh = evidence
            .second_factors()
            .iter()
            .any(|e| e.kind() != crate::kind::DeviceKind::BackupCodes && e.is_fresh(now, max_age));
        if fresh {
            Ok(Self(evidence))
        } else {
            Err(StatusCode::FORBIDDEN)
        }
    }
}

async fn pending_of<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Option<UserId>, StatusCode> {
    let session = session_of(parts, state).await?;
    pending(&session).await.map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

impl<S> FromRequestParts<S> for PendingSecondFactor
where
    S: Send + Sync,
{
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        pending_of(parts, state)
            .await?
            .map(Self)
            .ok_or(StatusCode::UNAUTHORIZED)
    }
}

impl<S> OptionalFromRequestParts<S> for PendingSecondFactor
where
    S: Send + Sync,
{
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(pending_of(parts, state).await?.map(Self))
    }
}
