//! The axum session seam on tower-sessions: the pending and signed-in states and their
//! extractors, through a real `Session` in the request's extensions.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::StatusCode;
use multifactor::authorize::SessionEvidence;
use multifactor::extract::{
    EVIDENCE_KEY, FreshSecondFactor, PendingSecondFactor, SessionVerifier, SignedIn, begin_second_factor,
    clear_sign_in, complete_sign_in, pending, signed_in,
};
use multifactor::{FirstFactor, Outcome};
use multifactor_kit::service::{TestMfa, code_now, setup, totp, user};
use tower_sessions::{MemoryStore as Sessions, Session};

#[derive(Clone)]
struct State(Arc<TestMfa>);

impl FromRef<State> for Arc<dyn SessionVerifier> {
    fn from_ref(state: &State) -> Self {
        state.0.clone()
    }
}

fn session() -> Session {
    Session::new(None, Arc::new(Sessions::default()), None)
}

async fn extract<T: FromRequestParts<State, Rejection = StatusCode>>(
    session: &Session,
    state: &State,
) -> Result<T, StatusCode> {
    let (mut parts, ()) = axum::http::Request::new(()).into_parts();
    parts.extensions.insert(session.clone());
    T::from_request_parts(&mut parts, state).await
}

async fn optional<T: OptionalFromRequestParts<State, Rejection = StatusCode>>(
    session: &Session,
    state: &State,
) -> Option<T> {
    let (mut parts, ()) = axum::http::Request::new(()).into_parts();
    parts.extensions.insert(session.clone());
    T::from_request_parts(&mut parts, state).await.unwrap()
}

#[tokio::test]
async fn pending_then_signed_in_then_stale() {
    let (mfa, clock, _) = setup();
    let mfa = Arc::new(mfa);
    let state = State(mfa.clone());
    let alice = user("alice");
    let (_, secret) = totp(&mfa, &clock, &alice).await;
    let s = session();
    assert_eq!(
        extract::<SignedIn>(&s, &state).await.unwrap_err(),
        StatusCode::UNAUTHORIZED
    );
    begin_second_factor(&s, &alice).await.unwrap();
    let PendingSecondFactor(pending) = extract(&s, &state).await.unwrap();
    assert_eq!(pending, alice);
    assert_eq!(
        extract::<SignedIn>(&s, &state).await.unwrap_err(),
        StatusCode::UNAUTHORIZED
    );
    clock.advance(30);
    let Outcome::Accepted(v) = mfa.verify_totp(&alice, &code_now(&secret, &clock, 0)).await.unwrap() else {
        panic!()
    };
    let mut evidence = SessionEvidence::first_factor(&alice, FirstFactor::Password, clock.now());
    evidence.add(&v).unwrap();
    complete_sign_in(&s, &mfa, &evidence).await.unwrap();
    let SignedIn(signed_in) = extract(&s, &state).await.unwrap();
    assert_eq!(signed_in, evidence);
    assert_eq!(
        extract::<PendingSecondFactor>(&s, &state).await.unwrap_err(),
        StatusCode::UNAUTHORIZED
    );
    assert!(extract::<FreshSecondFactor>(&s, &state).await.is_ok());
    clock.advance(301);
    assert_eq!(
        extract::<FreshSecondFactor>(&s, &state).await.unwrap_err(),
        StatusCode::FORBIDDEN
    );
    assert!(extract::<SignedIn>(&s, &state).await.is_ok());
}

/// A new sign-in beginning in a session removes the old signed-in user at once.
#[tokio::test]
async fn a_second_sign_in_leaves_no_old_user_behind() {
    let (mfa, clock, _) = setup();
    let mfa = Arc::new(mfa);
    let state = State(mfa.clone());
    let (alice, bob) = (user("alice"), user("bob"));
    let s = session();
    let evidence = SessionEvidence::first_factor(&alice, FirstFactor::Password, clock.now());
    complete_sign_in(&s, &mfa, &evidence).await.unwrap();
    assert!(extract::<SignedIn>(&s, &state).await.is_ok());
    begin_second_factor(&s, &bob).await.unwrap();
    assert_eq!(
        extract::<SignedIn>(&s, &state).await.unwrap_err(),
        StatusCode::UNAUTHORIZED
    );
    let PendingSecondFactor(pending) = extract(&s, &state).await.unwrap();
    assert_eq!(pending, bob);
}

/// Evidence text the service did not make is no session; a backup code is no fresh factor.
#[tokio::test]
async fn forged_text_and_recovery_are_refused() {
    let (mfa, clock, _) = setup();
    let mfa = Arc::new(mfa);
    let state = State(mfa.clone());
    let alice = user("alice");
    let s = session();
    s.insert(EVIDENCE_KEY, "mfa-session/1.aw.e30.AAAA").await.unwrap();
    assert_eq!(
        extract::<SignedIn>(&s, &state).await.unwrap_err(),
        StatusCode::UNAUTHORIZED
    );
    let set = mfa.generate_backup_codes(&alice, None).await.unwrap();
    let Outcome::Accepted(v) = mfa
        .verify_backup_code(&alice, set.codes[0].expose_secret())
        .await
        .unwrap()
    else {
        panic!()
    };
    let mut evidence = SessionEvidence::first_factor(&alice, FirstFactor::Password, clock.now());
    evidence.add(&v).unwrap();
    complete_sign_in(&s, &mfa, &evidence).await.unwrap();
    assert!(extract::<SignedIn>(&s, &state).await.is_ok());
    assert_eq!(
        extract::<FreshSecondFactor>(&s, &state).await.unwrap_err(),
        StatusCode::FORBIDDEN
    );
}

/// The optional extractors and the plain functions see the same states as the extractors, and
/// ending a sign-in leaves neither the evidence nor the pending user.
#[tokio::test]
async fn optional_states_and_clearing() {
    let (mfa, clock, _) = setup();
    let mfa = Arc::new(mfa);
    let state = State(mfa.clone());
    let (alice, bob) = (user("alice"), user("bob"));
    let s = session();
    assert!(optional::<SignedIn>(&s, &state).await.is_none());
    assert!(optional::<PendingSecondFactor>(&s, &state).await.is_none());
    assert_eq!(pending(&s).await.unwrap(), None);
    assert_eq!(signed_in(&s, mfa.as_ref()).await.unwrap(), None);

    begin_second_factor(&s, &bob).await.unwrap();
    let PendingSecondFactor(waiting) = optional(&s, &state).await.unwrap();
    assert_eq!(waiting, bob);
    assert_eq!(pending(&s).await.unwrap(), Some(bob.clone()));
    assert!(optional::<SignedIn>(&s, &state).await.is_none());
    clear_sign_in(&s).await.unwrap();
    assert!(optional::<PendingSecondFactor>(&s, &state).await.is_none());

    let evidence = SessionEvidence::first_factor(&alice, FirstFactor::Password, clock.now());
    complete_sign_in(&s, &mfa, &evidence).await.unwrap();
    let SignedIn(back) = optional(&s, &state).await.unwrap();
    assert_eq!(back, evidence);
    assert_eq!(signed_in(&s, mfa.as_ref()).await.unwrap(), Some(evidence));
    // Text the service did not make is no session for the optional extractor either.
    s.insert(EVIDENCE_KEY, "mfa-session/1.aw.e30.AAAA").await.unwrap();
    assert!(optional::<SignedIn>(&s, &state).await.is_none());
    complete_sign_in(
        &s,
        &mfa,
        &SessionEvidence::first_factor(&alice, FirstFactor::Password, clock.now()),
    )
    .await
    .unwrap();
    let before = s.id();
    clear_sign_in(&s).await.unwrap();
    assert!(optional::<SignedIn>(&s, &state).await.is_none());
    assert!(before.is_none() || s.id() != before);
}
