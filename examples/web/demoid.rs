//! DemoID: a simulated external identity provider (demo only).
//!
//! The shape of an OpenID Connect authorization-code flow, in one process: the sign-in page sends
//! the person to the provider with a `state` bound to their session; the provider sends them back
//! with a one-time code; the callback checks the state, takes the code once, and treats what the
//! provider asserts as a federated first factor. A real integration validates the provider's
//! signed ID token instead of reading a map, and maps its subject to a local account.

use super::*;

pub(crate) async fn demoid_start(
    State(app): State<Shared>,
    session: Session,
    signed_in: Option<SignedIn>,
) -> Result<Response> {
    if signed_in.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let state = random_token(&app)?;
    session.insert(DEMOID_STATE, &state).await?;
    Ok(Redirect::to(&format!("/demoid/authorize?state={state}")).into_response())
}

#[derive(Deserialize)]
pub(crate) struct DemoIdQuery {
    pub(crate) state: String,
}

pub(crate) async fn demoid_page(token: CsrfToken, AppQuery(query): AppQuery<DemoIdQuery>) -> Result<Response> {
    page(token, StatusCode::OK, |csrf| {
        pages::demoid(csrf, &query.state, &DEMO_USERS)
    })
}

#[derive(Deserialize)]
pub(crate) struct DemoIdForm {
    pub(crate) csrf: String,
    pub(crate) state: String,
    pub(crate) user: String,
    #[serde(default)]
    pub(crate) mfa: Option<String>,
}

pub(crate) async fn demoid_authorize(
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
pub(crate) struct DemoIdCallback {
    pub(crate) code: String,
    pub(crate) state: String,
}

pub(crate) async fn demoid_callback(
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
