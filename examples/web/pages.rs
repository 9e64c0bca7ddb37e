//! The pages: plain HTML, escaped, one small script for WebAuthn.

use std::fmt::Write as _;

use multifactor::{DeviceKind, MethodInfo, UnixTime};

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What every page needs: its title, the CSRF token, and an optional message.
pub struct Frame<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub user: Option<&'a str>,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
}

pub fn layout(frame: &Frame<'_>, body: &str) -> String {
    let nav = match frame.user {
        Some(user) => format!(
            r#"<nav>Signed in as <strong id="signed-in-user">{}</strong> · <a href="/">Home</a> · <a href="/settings">MFA devices</a>
<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{}"><button id="logout">Sign out</button></form></nav>"#,
            esc(user),
            esc(frame.csrf)
        ),
        None => String::from("<nav><a href=\"/login\">Sign in</a></nav>"),
    };
    let error = frame
        .error
        .map(|e| format!(r#"<p class="error" role="alert" id="error">{}</p>"#, esc(e)))
        .unwrap_or_default();
    let notice = frame
        .notice
        .map(|n| format!(r#"<p class="notice" role="status" id="notice">{}</p>"#, esc(n)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf" content="{csrf}">
<title>{title} · multifactor demo</title>
<link rel="stylesheet" href="/static/style.css"><script src="/static/webauthn.js" defer></script></head>
<body><header><h1>multifactor demo</h1>{nav}</header><main>
<h2>{title}</h2>{error}{notice}
<p id="webauthn-status" role="status"></p>
{body}
</main><footer>Demo only: passwords here are fixed demo passwords; a real service stores Argon2 hashes.</footer></body></html>"#,
        csrf = esc(frame.csrf),
        title = esc(frame.title),
    )
}

pub fn login(frame: &Frame<'_>, demo_users: &[&str], demo_password: &str) -> String {
    let body = format!(
        r#"<form method="post" action="/login" id="login-form">
<input type="hidden" name="csrf" value="{csrf}">
<label>Username <input name="username" id="username" autocomplete="username webauthn" required></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
<button id="password-sign-in">Sign in</button>
</form>
<p>or</p>
<button type="button" id="passkey-sign-in" data-webauthn="passwordless">Sign in with a passkey</button>
<p class="hint">Demo users: {users}. Password: <code>{password}</code> (demo only).</p>"#,
        csrf = esc(frame.csrf),
        users = demo_users
            .iter()
            .map(|u| format!("<code>{}</code>", esc(u)))
            .collect::<Vec<_>>()
            .join(", "),
        password = esc(demo_password),
    );
    layout(frame, &body)
}

pub fn second_factor(frame: &Frame<'_>, has_totp: bool, has_codes: bool, has_webauthn: bool) -> String {
    let mut body = String::from("<p>Your account is protected by a second factor. Use one of your methods:</p>");
    if has_webauthn {
        body.push_str(
            r#"<section><h3>Security key or passkey</h3>
<button type="button" id="use-security-key" data-webauthn="second-factor">Use a security key or passkey</button></section>"#,
        );
    }
    if has_totp {
        let _ = write!(
            body,
            r#"<section><h3>Authenticator app</h3><form method="post" action="/mfa/totp">
<input type="hidden" name="csrf" value="{}">
<label>Code <input name="code" id="totp-code" inputmode="numeric" autocomplete="one-time-code" required></label>
<button id="verify-totp">Verify</button></form></section>"#,
            esc(frame.csrf)
        );
    }
    if has_codes {
        let _ = write!(
            body,
            r#"<section><h3>Backup code</h3><form method="post" action="/mfa/backup">
<input type="hidden" name="csrf" value="{}">
<label>Backup code <input name="code" id="backup-code" autocomplete="off" required></label>
<button id="verify-backup">Use backup code</button></form></section>"#,
            esc(frame.csrf)
        );
    }
    layout(frame, &body)
}

pub fn home(frame: &Frame<'_>, methods: usize) -> String {
    let body = format!(
        r#"<p id="welcome">Welcome! You are signed in.</p>
<p>You have {methods} MFA method(s). <a href="/settings" id="settings-link">Manage MFA devices</a></p>"#
    );
    layout(frame, &body)
}

fn when(time: Option<UnixTime>) -> String {
    time.map_or_else(
        || "never".to_owned(),
        |t| format!("<time data-unix=\"{}\">{}</time>", t.as_secs(), utc(t.as_secs())),
    )
}

/// `YYYY-MM-DD HH:MM UTC` (days to civil date: Howard Hinnant's algorithm).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hh, mm) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC")
}

pub fn settings(frame: &Frame<'_>, methods: &[MethodInfo]) -> String {
    let csrf = esc(frame.csrf);
    let mut rows = String::new();
    for m in methods {
        let kind = match m.kind {
            DeviceKind::BackupCodes => "Backup codes",
            DeviceKind::Totp => "Authenticator app",
            DeviceKind::SecurityKey => "Security key",
            DeviceKind::Passkey => "Passkey",
            _ => "Other",
        };
        let detail = match (m.kind, m.remaining_backup_codes, m.confirmed) {
            (_, Some(n), _) => format!(r#"<span class="remaining">{n} codes left</span>"#),
            (_, None, false) => "not confirmed yet".to_owned(),
            _ => String::new(),
        };
        let _ = write!(
            rows,
            r#"<tr data-id="{id}" data-kind="{kind_key}"><td class="name">{name}</td><td>{kind}</td><td>{detail}</td>
<td>{created}</td><td class="last-used">{used}</td>
<td><form method="post" action="/settings/rename" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="id" value="{id}"><input name="name" class="rename-input" aria-label="New name" value="{name}" required>
<button class="rename">Rename</button></form>
<form method="post" action="/settings/delete" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="id" value="{id}"><button class="delete">Delete</button></form></td></tr>"#,
            id = m.id,
            kind_key = m.kind.as_str(),
            name = esc(m.name.as_str()),
            created = when(Some(m.created_at)),
            used = when(m.last_used_at),
        );
    }
    if methods.is_empty() {
        rows.push_str(r#"<tr><td colspan="6" id="no-methods">No methods yet: add one below.</td></tr>"#);
    }
    let body = format!(
        r#"<table id="methods"><thead><tr><th>Name</th><th>Kind</th><th></th><th>Added</th><th>Last used</th><th></th></tr></thead>
<tbody>{rows}</tbody></table>
<section><h3>Add a method</h3>
<form method="post" action="/settings/totp" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<button id="add-totp">Set up an authenticator app</button></form>
<form method="post" action="/settings/backup-codes" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<button id="add-backup-codes">Generate backup codes</button></form>
<label>Name for a new key <input id="webauthn-name" placeholder="optional"></label>
<button type="button" id="add-security-key" data-webauthn="register-security-key">Add a security key</button>
<button type="button" id="add-passkey" data-webauthn="register-passkey">Add a passkey</button>
</section>"#
    );
    layout(frame, &body)
}

pub fn totp_setup(frame: &Frame<'_>, qr_svg: &str, secret: &str) -> String {
    let body = format!(
        r#"<p>Scan this QR code with your authenticator app, or type the secret.</p>
<div id="totp-qr">{qr_svg}</div>
<p>Secret: <code id="totp-secret">{secret}</code></p>
<form method="post" action="/settings/totp/confirm"><input type="hidden" name="csrf" value="{csrf}">
<label>Enter the code your app shows <input name="code" id="totp-confirm-code" inputmode="numeric" autocomplete="one-time-code" required></label>
<button id="confirm-totp">Confirm</button></form>"#,
        secret = esc(secret),
        csrf = esc(frame.csrf),
    );
    layout(frame, &body)
}

pub fn backup_codes(frame: &Frame<'_>, codes: &[String]) -> String {
    let items: String = codes
        .iter()
        .map(|c| format!("<li><code>{}</code></li>", esc(c)))
        .collect();
    let body = format!(
        r#"<p>Save these backup codes somewhere safe. Each works once. They are shown only now;
generating new ones makes these stop working.</p>
<ul id="backup-codes">{items}</ul>
<a href="/settings" id="codes-saved" class="button">I have saved these codes, continue</a>"#
    );
    layout(frame, &body)
}

pub fn error_page(frame: &Frame<'_>) -> String {
    layout(frame, r#"<p><a href="/">Back to the start</a></p>"#)
}
