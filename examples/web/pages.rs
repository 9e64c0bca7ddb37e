//! The pages: plain HTML, escaped, one small script for WebAuthn.

use std::fmt::Write as _;

use multifactor::{DeviceInfo, DeviceKind, UnixTime};

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

/// Who the visitor is, for the navigation.
#[derive(Clone, Copy)]
pub enum Nav<'a> {
    /// Nobody is signed in.
    SignedOut,
    /// Signed in as this user.
    SignedIn(&'a str),
    /// Passed the first factor as this user; the second is due. They may cancel.
    SecondFactor(&'a str),
    /// Not known here (an internal error page): claims nothing, links to the start.
    Unknown,
}

/// What every page needs: its title, the CSRF token, who is there, and optional messages.
pub struct Frame<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    pub nav: Nav<'a>,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    /// A warning that stays until its cause is gone (few backup codes left), as HTML.
    pub warning: Option<String>,
    /// WebAuthn signals for the page's script to send (JSON: `[{kind, payload}]`).
    pub signals: Option<String>,
}

pub fn layout(frame: &Frame<'_>, body: &str) -> String {
    let nav = match frame.nav {
        Nav::SignedIn(user) => format!(
            r#"<nav>Signed in as <strong id="signed-in-user">{}</strong> · <a href="/">Home</a> · <a href="/settings">MFA devices</a>
<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{}"><button id="logout">Sign out</button></form></nav>"#,
            esc(user),
            esc(frame.csrf)
        ),
        Nav::SecondFactor(user) => format!(
            r#"<nav>Signing in as <strong id="pending-user">{}</strong>
<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{}"><button id="cancel-sign-in">Cancel and use another account</button></form></nav>"#,
            esc(user),
            esc(frame.csrf)
        ),
        Nav::SignedOut => String::from("<nav><a href=\"/login\" id=\"nav-sign-in\">Sign in</a></nav>"),
        Nav::Unknown => String::from("<nav><a href=\"/\">Start</a></nav>"),
    };
    let error = frame
        .error
        .map(|e| format!(r#"<p class="error" role="alert" id="error">{}</p>"#, esc(e)))
        .unwrap_or_default();
    let notice = frame
        .notice
        .map(|n| format!(r#"<p class="notice" role="status" id="notice">{}</p>"#, esc(n)))
        .unwrap_or_default();
    let warning = frame
        .warning
        .as_deref()
        .map(|w| format!(r#"<div class="warning" role="alert" id="warning">{w}</div>"#))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf" content="{csrf}">
<title>{title} · multifactor demo</title>
<link rel="stylesheet" href="/static/style.css"><script src="/static/webauthn.js" defer></script></head>
<body><header><h1>multifactor demo</h1>{nav}</header><main>
<h2>{title}</h2><div id="messages">{error}{notice}</div>{warning}
<p id="webauthn-status" role="status"></p>
{body}{signals}
</main><footer>Demo only: passwords here are fixed demo passwords; a real service stores Argon2 hashes.</footer></body></html>"#,
        csrf = esc(frame.csrf),
        title = esc(frame.title),
        // JSON in a data block: `<` escaped so that no `</script>` can end it early.
        signals = frame
            .signals
            .as_deref()
            .map(|j| format!(
                r#"<script type="application/json" id="webauthn-signals">{}</script>"#,
                j.replace('<', "\\u003c")
            ))
            .unwrap_or_default(),
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
<a href="/login/demoid" id="demoid-sign-in" class="button social">Sign in with DemoID</a>
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

/// Why the second-factor page asks.
pub enum Intro {
    /// Signing in, after this first factor.
    SignIn(String),
    /// A signed-in user about to do this (to this method): a fresh second factor first.
    StepUp(String, Option<String>),
}

/// A message in the demo's outbox: what a real service would send by email.
pub struct OutboxMessage {
    pub user: String,
    pub to: String,
    pub code: String,
    pub at: UnixTime,
}

/// The demo's on-page outbox: the user's latest messages, newest first, marked as a stand-in
/// for a real mail server.
pub fn outbox(messages: &[&OutboxMessage]) -> String {
    if messages.is_empty() {
        return String::new();
    }
    let mut items = String::new();
    for m in messages {
        let _ = write!(
            items,
            r#"<li class="outbox-message">To <span class="outbox-to">{to}</span>, {at}: your sign-in code is <code class="outbox-code">{code}</code></li>"#,
            to = esc(&m.to),
            at = when(Some(m.at)),
            code = esc(&m.code),
        );
    }
    format!(
        r#"<aside id="outbox"><h3>Demo outbox</h3>
<p class="hint">This demo has no mail server: a real service sends these by email, and never shows them on a page.</p>
<ul>{items}</ul></aside>"#
    )
}

/// What the second-factor page offers beside apps, codes and keys: sending a code to an email
/// address (masked), and the outbox.
pub struct SentCodes<'a> {
    pub address: Option<&'a str>,
    pub outbox: String,
}

pub fn second_factor(
    frame: &Frame<'_>,
    intro: &Intro,
    has_totp: bool,
    has_codes: bool,
    has_webauthn: bool,
    sent: &SentCodes<'_>,
) -> String {
    let mut body = match intro {
        Intro::SignIn(via) => format!(
            r#"<p id="second-factor-intro">You signed in with {}. Your account is protected by a second factor: use one of your methods.</p>"#,
            esc(via)
        ),
        Intro::StepUp(action, object) => format!(
            r#"<div id="step-up"></div>
<p id="second-factor-intro">To {}{}, use one of your methods: changing how you sign in needs a second factor from the last 5 minutes (a backup code is for getting back in, not for this).
<a href="/settings" id="cancel-step-up">Cancel</a></p>"#,
            esc(action),
            object
                .as_ref()
                .map(|o| format!(" <strong>{}</strong>", esc(o)))
                .unwrap_or_default()
        ),
    };
    if matches!(intro, Intro::SignIn(_)) {
        body.push_str(
            r#"<p><label><input type="checkbox" id="remember-browser"> Remember this browser for 30 days (skip this step here; don't tick it on a shared computer)</label></p>"#,
        );
    }
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
<input type="hidden" name="csrf" value="{}"><input type="hidden" name="remember" class="remember-field">
<label>Code <input name="code" id="totp-code" inputmode="numeric" autocomplete="one-time-code" required></label>
<button id="verify-totp">Verify</button></form></section>"#,
            esc(frame.csrf)
        );
    }
    if let Some(address) = sent.address {
        let _ = write!(
            body,
            r#"<section><h3>Email</h3><form method="post" action="/mfa/email/send" class="inline">
<input type="hidden" name="csrf" value="{csrf}"><button id="send-email-code">Email a code to {address}</button></form>
<form method="post" action="/mfa/email">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="remember" class="remember-field">
<label>Emailed code <input name="code" id="email-code" inputmode="numeric" autocomplete="one-time-code" required></label>
<button id="verify-email">Verify</button></form>
<p class="hint">A code by email is weaker than an app or a passkey: whoever reads your mailbox can use it.</p></section>"#,
            csrf = esc(frame.csrf),
            address = esc(address),
        );
    }
    if has_codes {
        let _ = write!(
            body,
            r#"<section><h3>Backup code</h3><form method="post" action="/mfa/backup">
<input type="hidden" name="csrf" value="{}"><input type="hidden" name="remember" class="remember-field">
<label>Backup code <input name="code" id="backup-code" autocomplete="off" required></label>
<button id="verify-backup">Use backup code</button></form></section>"#,
            esc(frame.csrf)
        );
    }
    body.push_str(&sent.outbox);
    layout(frame, &body)
}

/// The page that confirms a new email address with the code sent to it.
pub fn email_setup(frame: &Frame<'_>, device: &str, address: &str, outbox: &str) -> String {
    let body = format!(
        r#"<p id="email-setup">We sent a code to <strong>{address}</strong>. Enter it to confirm the address.</p>
<form method="post" action="/settings/email/confirm"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="id" value="{device}">
<label>Code <input name="code" id="email-confirm-code" inputmode="numeric" autocomplete="one-time-code" required></label>
<button id="confirm-email">Confirm</button></form>{outbox}"#,
        address = esc(address),
        csrf = esc(frame.csrf),
        device = esc(device),
    );
    layout(frame, &body)
}

/// "1 method", "2 methods".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn home(frame: &Frame<'_>, usable: usize, prompt: Option<(UnixTime, Option<u32>)>) -> String {
    let methods = count(usable, "working MFA method", "working MFA methods");
    // The site requires a second method; until the deadline (and the last skip) the prompt
    // can be skipped.
    let banner = prompt.map_or_else(String::new, |(deadline, skips_left)| {
        let skips = skips_left.map_or_else(String::new, |left| {
            format!(" You can skip this {}.", count(left as usize, "more time", "more times"))
        });
        format!(
            r#"<div id="enroll-banner" class="warning"><p>This site asks every account for a second sign-in method.
Set one up by {}.{skips}</p>
<p><a href="/settings" id="enroll-now">Set one up now</a>
<form method="post" action="/enroll/skip" class="inline"><input type="hidden" name="csrf" value="{}"><button id="enroll-skip">Not now</button></form></p></div>"#,
            when(Some(deadline)),
            frame.csrf
        )
    });
    let body = format!(
        r#"{banner}<p id="welcome">Welcome! You are signed in.</p>
<p id="method-count">You have {methods}. <a href="/settings" id="settings-link">Manage MFA devices</a></p>"#
    );
    layout(frame, &body)
}

fn when(time: Option<UnixTime>) -> String {
    time.map_or_else(
        || "never".to_owned(),
        |t| format!("<time data-unix=\"{}\">{}</time>", t.as_secs(), utc(t)),
    )
}

/// `YYYY-MM-DD HH:MM UTC`, from the library's RFC 3339 form (`YYYY-MM-DDTHH:MM:SSZ`).
fn utc(time: UnixTime) -> String {
    let text = time.to_string();
    let minutes = text.get(..16).unwrap_or(&text);
    format!("{} UTC", minutes.replacen('T', " ", 1))
}

/// The label of a kind, as the table shows it.
pub fn kind_label(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::BackupCodes => "Backup codes",
        DeviceKind::Totp => "Authenticator app",
        DeviceKind::SecurityKey => "Security key",
        DeviceKind::Passkey => "Passkey",
        DeviceKind::Email => "Email",
        DeviceKind::Sms => "Phone (SMS)",
        _ => "Other",
    }
}

/// A browser of the user's, as the devices page lists it.
pub struct BrowserRow {
    pub id: multifactor::RememberedBrowserId,
    /// It skips the second factor (else it is known: a counter of its own, nothing skipped).
    pub remembered: bool,
    /// The browser showing the page.
    pub current: bool,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    pub expires_at: UnixTime,
}

pub fn settings(frame: &Frame<'_>, methods: &[DeviceInfo], display_name: &str, browsers: &[BrowserRow]) -> String {
    let csrf = esc(frame.csrf);
    let mut rows = String::new();
    for m in methods {
        let label = kind_label(m.kind);
        // The kind is shown under the name unless the name says it already (default names);
        // a known provider is shown with its icon.
        let kind = match &m.provider {
            Some(p) => format!(
                r#"<br><span class="kind provider">{icon}{name} · {label}</span>"#,
                icon = p
                    .icon_light
                    .as_deref()
                    .map(|i| format!(
                        r#"<img class="provider-icon" src="{}" alt="" width="16" height="16"> "#,
                        esc(i)
                    ))
                    .unwrap_or_default(),
                name = esc(&p.name),
            ),
            None if m.name.as_str() == label && m.destination.is_none() => String::new(),
            None => match &m.destination {
                Some(to) => format!(r#"<br><span class="kind destination">{label} · {}</span>"#, esc(to)),
                None => format!(r#"<br><span class="kind">{label}</span>"#),
            },
        };
        let status = match (m.remaining_backup_codes, m.confirmed) {
            (Some(0), _) => r#"<span class="remaining low">No codes left</span>"#.to_owned(),
            (Some(n), _) if n <= LOW_CODES => format!(
                r#"<span class="remaining low">{} left</span>"#,
                count(n, "code", "codes")
            ),
            (Some(n), _) => format!(r#"<span class="remaining">{} left</span>"#, count(n, "code", "codes")),
            (None, false) if m.kind.is_restricted() => format!(
                r#"Not confirmed yet <form method="post" action="/settings/email/resume" class="inline">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="id" value="{id}">
<button class="finish-setup">Send a new code</button></form>"#,
                id = m.id
            ),
            (None, false) => format!(
                r#"Not confirmed yet <form method="post" action="/settings/totp/resume" class="inline">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="id" value="{id}">
<button class="finish-setup">Finish setup</button></form>"#,
                id = m.id
            ),
            (None, true) => match m.synced {
                Some(true) => r#"Active<br><span class="sync" title="Its key may be copied to your other devices through your password manager or platform account.">Synced</span>"#.to_owned(),
                Some(false) => r#"Active<br><span class="sync" title="Its key never leaves this authenticator.">Device-bound</span>"#.to_owned(),
                None => "Active".to_owned(),
            },
        };
        let delete = if multifactor::policy::is_last_device(methods, m.id) {
            r#"<button class="delete" disabled aria-describedby="last-method-reason">Delete</button>
<span class="hint last-method" id="last-method-reason">Your only working method: add another before you remove it.</span>"#
                .to_owned()
        } else {
            r#"<button class="delete">Delete</button>"#.to_owned()
        };
        let _ = write!(
            rows,
            r#"<tr data-id="{id}" data-kind="{kind_key}"><td><span class="name">{name}</span>{pending}{kind}</td><td class="status">{status}</td>
<td>{created}</td><td class="last-used">{used}</td>
<td><details class="rename-box"><summary class="edit" title="Rename" aria-label="Rename {name}">✏️ Edit</summary>
<form method="post" action="/settings/rename" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="id" value="{id}"><input name="name" class="rename-input" aria-label="New name" value="{name}" required>
<button class="rename">Rename</button></form></details>
<form method="post" action="/settings/delete" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="id" value="{id}">{delete}</form></td></tr>"#,
            id = m.id,
            kind_key = m.kind.as_str(),
            name = esc(m.name.as_str()),
            // A setup waiting for its first code reads apart from the app that works.
            pending = if m.confirmed {
                ""
            } else {
                r#"<span class="pending-note"> · setup not finished</span>"#
            },
            created = when(Some(m.created_at)),
            used = when(m.last_used_at),
        );
    }
    if methods.is_empty() {
        rows.push_str(r#"<tr><td colspan="5" id="no-methods">No methods yet: add one below.</td></tr>"#);
    }
    let codes_button = if methods.iter().any(|m| m.kind == DeviceKind::BackupCodes) {
        "Replace backup codes"
    } else {
        "Generate backup codes"
    };
    let body = format!(
        r#"<table id="methods"><thead><tr><th>Method</th><th>Status</th><th>Added</th><th>Last used</th><th>Actions</th></tr></thead>
<tbody>{rows}</tbody></table>
<section><h3>Add a method</h3>
<form method="post" action="/settings/totp" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<button id="add-totp">Set up an authenticator app</button></form>
<form method="post" action="/settings/backup-codes" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<button id="add-backup-codes">{codes_button}</button></form>
<form method="post" action="/settings/email" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<label>Email address for codes <input name="address" id="email-address" type="email" required></label>
<button id="add-email">Add an email address</button></form>
<label>Name for a new key <input id="webauthn-name" placeholder="optional"></label>
<button type="button" id="add-security-key" data-webauthn="register-security-key">Add a security key</button>
<button type="button" id="add-passkey" data-webauthn="register-passkey">Add a passkey</button>
</section>
{note}<section><h3>Your browsers</h3>
<p class="hint">A browser where you completed a sign-in is <em>known</em>: failed attempts elsewhere never slow it down.
A <em>remembered</em> browser also skips the second factor. Revoke one you no longer use or don't recognise.</p>
<table id="browsers"><thead><tr><th>Browser</th><th>Last sign-in</th><th>Until</th><th></th></tr></thead>
<tbody>{browser_rows}</tbody></table></section>
<section><h3>Your name on passkeys</h3>
<form method="post" action="/settings/display-name" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<label>Display name <input name="display_name" id="display-name" value="{display}" required></label>
<button id="change-display-name">Change</button></form>
<p class="hint">Passkey prompts show this name; browsers that support it update the passkeys they hold.</p></section>
<section><h3>Payouts</h3>
<form method="post" action="/settings/payout" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<label>Payout account <input name="account" id="payout-account" required></label>
<button id="change-payout">Change payout account</button></form>
<p class="hint">Changing where money goes needs a security key or passkey from the last 5 minutes.</p></section>"#,
        display = esc(display_name),
        browser_rows = browser_rows(browsers, &csrf),
        // A note encrypted in this browser under a key a passkey derives (PRF).
        note = if methods.iter().any(|m| m.prf == Some(true)) {
            r#"<section id="note-section"><h3>Encrypted note</h3>
<p class="hint">Encrypted in this browser under a key your passkey derives (the PRF extension): the server keeps only ciphertext, and never sees the key.</p>
<textarea id="note-text" rows="3" cols="50" aria-label="Note"></textarea><br>
<button type="button" id="note-save">Encrypt and save</button>
<button type="button" id="note-open">Open</button>
<span id="note-status" role="status"></span></section>"#
        } else {
            ""
        },
    );
    layout(frame, &body)
}

fn browser_rows(browsers: &[BrowserRow], csrf: &str) -> String {
    if browsers.is_empty() {
        return r#"<tr><td colspan="4" id="no-browsers">None yet: a browser becomes known when you sign in with a second factor on it.</td></tr>"#.to_owned();
    }
    let mut rows = String::new();
    for b in browsers {
        let kind = if b.remembered {
            "Remembered (skips the second factor)"
        } else {
            "Known"
        };
        let current = if b.current {
            r#" <strong class="this-browser">This browser</strong>"#
        } else {
            ""
        };
        let _ = write!(
            rows,
            r#"<tr data-browser="{id}" data-remembered="{remembered}"><td><span class="browser-kind">{kind}</span>{current}</td>
<td>{last}</td><td>{expires}</td>
<td><form method="post" action="/settings/browsers/revoke" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="id" value="{id}"><button class="revoke-browser">Revoke</button></form></td></tr>"#,
            id = b.id,
            remembered = b.remembered,
            // A known browser's token is replaced at every sign-in there, so it was issued at the
            // last one; a remembered browser records each sign-in it skipped the second factor for.
            last = when(Some(b.last_used_at.unwrap_or(b.created_at))),
            expires = when(Some(b.expires_at)),
        );
    }
    rows
}

/// From how many remaining backup codes the pages warn.
pub const LOW_CODES: usize = 2;

/// The warning about backup codes and a missing second factor, if one is due.
///
/// `no_second_factor` is the library's verdict (`Mfa::assurance` said `RecoveryRequired`);
/// `remaining` the unused codes of the user's set, if they have one.
pub fn codes_warning(no_second_factor: bool, remaining: Option<usize>) -> Option<String> {
    let generate = r#"<a href="/settings#add-backup-codes" id="generate-codes-link">Generate new backup codes</a>"#;
    match remaining {
        Some(0) if no_second_factor => Some(format!(
            r#"<strong id="no-second-factor">Your account has no working second factor.</strong> You used your last backup code: once you sign out, your password alone will not sign you in. {generate} or set up another method on the <a href="/settings">MFA devices</a> page now."#
        )),
        Some(0) => Some(format!(
            "You have no backup codes left: if you lose your other methods you cannot sign in. {generate}."
        )),
        Some(n) if n <= LOW_CODES => Some(format!(
            r#"You have only <span id="codes-left">{}</span> left. {generate} before you run out."#,
            count(n, "backup code", "backup codes")
        )),
        _ => None,
    }
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
    // The codes as a text file, made in the page (the server keeps only their hashes).
    let text: String = codes.iter().map(|c| format!("{c}\n")).collect();
    let file = format!("data:text/plain;charset=utf-8,{}", percent(&text));
    let body = format!(
        r#"<p>Save these backup codes somewhere safe. Each works once. They are shown only now;
generating new ones makes these stop working.</p>
<ul id="backup-codes">{items}</ul>
<p class="keep-codes"><button type="button" id="copy-codes" data-codes-action="copy">Copy</button>
<a href="{file}" download="backup-codes.txt" id="download-codes" class="button">Download</a>
<button type="button" id="print-codes" data-codes-action="print">Print</button>
<span id="codes-status" role="status"></span></p>
<a href="/settings" id="codes-saved" class="button">I have saved these codes, continue</a>"#
    );
    layout(frame, &body)
}

/// Asks before new backup codes replace a set: the old codes stop working.
pub fn replace_codes(frame: &Frame<'_>, remaining: usize) -> String {
    let body = format!(
        r#"<p id="replace-codes-warning">You already have backup codes ({left} unused). New codes replace them:
<strong>your current codes stop working</strong>, including any you printed or saved.</p>
<form method="post" action="/settings/backup-codes" class="inline"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="confirm" value="replace">
<button id="confirm-replace-codes">Replace my backup codes</button></form>
<a href="/settings" id="cancel-replace-codes" class="button">Keep my current codes</a>"#,
        left = remaining,
        csrf = esc(frame.csrf),
    );
    layout(frame, &body)
}

/// Percent-encodes text for a `data:` URL.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn error_page(frame: &Frame<'_>) -> String {
    layout(frame, r#"<p><a href="/" id="back-to-start">Back to the start</a></p>"#)
}

/// The simulated identity provider's sign-in page. Demo only: a real provider is another site,
/// reached over the network, and authenticates the person itself.
pub fn demoid(csrf: &str, state: &str, demo_users: &[&str]) -> String {
    let options: String = demo_users
        .iter()
        .map(|u| format!(r#"<option value="{u}">{u}@demoid.example</option>"#, u = esc(u)))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>DemoID · simulated identity provider</title><link rel="stylesheet" href="/static/style.css"></head>
<body class="demoid"><header><h1>DemoID</h1></header><main>
<p class="warning" id="demoid-banner"><strong>Simulated identity provider, demo only.</strong> It runs inside the demo
server, makes no network call and asks for no password: it stands for "Sign in with Google" and the like.</p>
<h2>Sign in to multifactor demo with DemoID</h2>
<form method="post" action="/demoid/authorize">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="state" value="{state}">
<label>Account <select name="user" id="demoid-user">{options}</select></label>
<label><input type="checkbox" name="mfa" value="1" id="demoid-mfa"> DemoID asked me for its own second factor
(the provider asserts <code>amr=["mfa"]</code>; the demo does not trust that claim, see its configuration)</label>
<button id="demoid-continue">Continue</button></form>
</main></body></html>"#,
        csrf = esc(csrf),
        state = esc(state),
    )
}
