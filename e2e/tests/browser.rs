//! The web example in a real browser: Debian's Chromium, headless, driven over the DevTools
//! protocol, with a virtual authenticator doing real WebAuthn (CTAP2, resident keys, user
//! verification, ES256/EdDSA/RS256 keys).
//!
//! Runs `target/<profile>/examples/web` (built first if missing) on a free port with a fresh
//! SQLite file, then one scenario after another, each in its own browser context. Screenshots of
//! the key pages go to `target/e2e-artifacts/`. Without Chromium the test says so loudly and
//! skips, except under `CI=true`, where that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The libtest lines, shared with the kit's other harness-less suites (this package does not
/// depend on the kit).
#[path = "../../kit/src/libtest.rs"]
mod libtest;

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::browser_protocol::target::{CreateBrowserContextParams, CreateTargetParams};
use chromiumoxide::cdp::browser_protocol::web_authn::{
    AddCredentialParams, AddVirtualAuthenticatorParams, AuthenticatorId, AuthenticatorProtocol, AuthenticatorTransport,
    ClearCredentialsParams, Credential, Ctap2Version, EnableParams, GetCredentialsParams,
    SetCredentialPropertiesParams, SetResponseOverrideBitsParams, VirtualAuthenticatorOptions,
};
use chromiumoxide::page::{Page, ScreenshotParams};
use futures::StreamExt as _;
use multifactor::totp::TotpParams;
use multifactor::totp::{code_for_step, decode_base32_secret};
use multifactor::{Clock, SystemClock};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const PASSWORD: &str = "demo-pass";
/// How long a wait may take before the step fails (a busy machine is slow, never wrong).
const WAIT: Duration = Duration::from_secs(30);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// Whether an evaluation failed because its document went away under it (a navigation).
fn lost_context(error: &str) -> bool {
    [
        "Cannot find context with specified id",
        "Execution context was destroyed",
        "Inspected target navigated or closed",
        "Cannot find default execution context",
    ]
    .iter()
    .any(|m| error.contains(m))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn workspace_target() -> PathBuf {
    // This file is e2e/tests/browser.rs; the workspace's target dir is ../target.
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// The web example, built if needed.
async fn web_binary() -> Result<PathBuf, String> {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "-p",
            "multifactor",
            "--example",
            "web",
            "--bin",
            "mfactl",
            "--features",
            "cli",
        ])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    if profile == "release" {
        build.arg("--release");
    }
    let status = build.status().await.map_err(err)?;
    if !status.success() {
        return Err("cargo build --example web failed".into());
    }
    Ok(workspace_target().join(profile).join("examples").join("web"))
}

struct Server {
    child: Child,
    base: String,
    dir: PathBuf,
}

/// The web example's database file, for scenarios that administer it with `mfactl`.
static DATABASE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

impl Server {
    /// The demo as `http://localhost`, with its SQLite file in [`DATABASE`].
    async fn start(binary: &Path) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("mf-e2e-{}", std::process::id()));
        let db = dir.join("web.db");
        let _ = DATABASE.set(db.clone());
        let args = ["--port", "0", "--related-origin", "https://example.co.uk", "--db"];
        Self::spawn(binary, dir, |c| c.args(args).arg(&db)).await
    }

    /// A second demo under a real name, `https://example.com` (in memory), to be reached
    /// through a [`TlsFront`], with `https://example.co.uk` as its related origin.
    async fn start_named(binary: &Path) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("mf-e2e-named-{}", std::process::id()));
        let args = [
            "--port",
            "0",
            "--memory",
            "--rp-id",
            "example.com",
            "--origin",
            "https://example.com",
            "--related-origin",
            "https://example.co.uk",
        ];
        Self::spawn(binary, dir, |c| c.args(args)).await
    }

    async fn spawn(
        binary: &Path,
        dir: PathBuf,
        args: impl FnOnce(&mut Command) -> &mut Command,
    ) -> Result<Self, String> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(err)?;
        let mut command = Command::new(binary);
        args(&mut command);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(err)?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return Ok(url.trim().to_owned());
                }
            }
            Err("the web example exited before listening".to_owned())
        })
        .await
        .map_err(|_| "the web example did not start within 30 s".to_owned())??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, base, dir })
    }

    fn port(&self) -> Result<u16, String> {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .ok_or_else(|| format!("no port in {}", self.base))
    }
}

/// The names the TLS front end answers for: the relying party, its related origin, and an
/// origin that the relying party does not list.
const NAMED: [&str; 3] = ["example.com", "example.co.uk", "example.org"];

/// A TLS front end (a reverse proxy, as in production) that serves the named demo as
/// `https://example.com`, `https://example.co.uk` and `https://example.org`, with a self-signed
/// test certificate made for this run. Chromium reaches it through `--host-resolver-rules`
/// (each name, on the default HTTPS port as the browser sees it, maps to this listener's
/// port) and accepts the certificate by its key (`--ignore-certificate-errors-spki-list`), so
/// the page has no certificate error and WebAuthn is allowed on it.
struct TlsFront {
    port: u16,
    /// Base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo.
    spki: String,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    async fn start(backend: u16) -> Result<Self, String> {
        use rcgen::PublicKeyData as _;
        use sha2::Digest as _;
        use tokio_rustls::rustls;
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let cert = rcgen::CertificateParams::new(NAMED.map(String::from).to_vec())
            .and_then(|params| params.self_signed(&key))
            .map_err(err)?;
        let spki =
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(key.subject_public_key_info()));
        let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        // ring, not aws-lc-rs: no C toolchain beyond cc for a loopback test listener. rustls
        // deprecates it for lacking post-quantum key exchange, which a test on 127.0.0.1 does
        // not need.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], private)
            .map_err(err)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(err)?;
        let port = listener.local_addr().map_err(err)?.port();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A failed handshake or a dropped connection ends that connection only.
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
        Ok(Self { port, spki, task })
    }

    /// Chromium's flags to reach this front end under the test names and trust its certificate.
    fn chromium_flags(&self) -> [String; 2] {
        let rules: Vec<String> = NAMED
            .iter()
            .map(|n| format!("MAP {n} 127.0.0.1:{}", self.port))
            .collect();
        [
            format!("host-resolver-rules={}", rules.join(", ")),
            format!("ignore-certificate-errors-spki-list={}", self.spki),
        ]
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One browser context (its own cookies) with one page and a virtual authenticator.
struct Tab {
    page: Page,
    base: String,
    context: BrowserContextId,
    authenticator: AuthenticatorId,
    artifacts: PathBuf,
}

#[derive(Clone, Copy)]
enum Kind {
    /// A platform passkey authenticator: resident keys, user verification, backup flags.
    Platform,
    /// A roaming security key on USB: no user verification.
    SecurityKey,
    /// A platform passkey authenticator that supports the `prf` extension.
    PlatformPrf,
}

impl Tab {
    async fn open(browser: &Browser, base: &str, kind: Kind) -> Result<Self, String> {
        let context = browser
            .create_browser_context(CreateBrowserContextParams::default())
            .await
            .map_err(err)?;
        let target = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(context.clone())
            .build()
            .map_err(err)?;
        let page = browser.new_page(target).await.map_err(err)?;
        page.execute(EnableParams::default()).await.map_err(err)?;
        let options = match kind {
            Kind::PlatformPrf => VirtualAuthenticatorOptions::builder()
                .protocol(AuthenticatorProtocol::Ctap2)
                .ctap2_version(Ctap2Version::Ctap21)
                .transport(AuthenticatorTransport::Internal)
                .has_resident_key(true)
                .has_user_verification(true)
                .is_user_verified(true)
                .automatic_presence_simulation(true)
                .has_prf(true),
            Kind::Platform => VirtualAuthenticatorOptions::builder()
                .protocol(AuthenticatorProtocol::Ctap2)
                .ctap2_version(Ctap2Version::Ctap21)
                .transport(AuthenticatorTransport::Internal)
                .has_resident_key(true)
                .has_user_verification(true)
                .is_user_verified(true)
                .automatic_presence_simulation(true)
                .default_backup_eligibility(true)
                .default_backup_state(true),
            Kind::SecurityKey => VirtualAuthenticatorOptions::builder()
                .protocol(AuthenticatorProtocol::Ctap2)
                .transport(AuthenticatorTransport::Usb)
                .has_resident_key(false)
                .has_user_verification(false)
                .automatic_presence_simulation(true),
        }
        .build()
        .map_err(err)?;
        let added = page
            .execute(AddVirtualAuthenticatorParams::new(options))
            .await
            .map_err(err)?;
        Ok(Self {
            page,
            base: base.to_owned(),
            context,
            authenticator: added.result.authenticator_id.clone(),
            artifacts: workspace_target().join("e2e-artifacts"),
        })
    }

    async fn close(self, browser: &Browser) {
        let _ = self.page.close().await;
        let _ = browser.dispose_browser_context(self.context).await;
    }

    /// Opens a path and waits until the new page has loaded.
    async fn goto(&self, path: &str) -> Result<(), String> {
        self.mark_page().await?;
        self.page.goto(format!("{}{path}", self.base)).await.map_err(err)?;
        self.wait_for("true").await
    }

    /// Evaluates a side-effect-free expression. A read that lands while a navigation replaces the
    /// document ("Cannot find context with specified id", "Execution context was destroyed")
    /// is retried on the document that follows, until [`WAIT`] runs out.
    async fn eval<T: serde::de::DeserializeOwned>(&self, js: &str) -> Result<T, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.eval_once(js).await {
                Err(e) if lost_context(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await;
                }
                other => return other,
            }
        }
    }

    /// Evaluates once, without retrying: for scripts with side effects (a click).
    async fn eval_once<T: serde::de::DeserializeOwned>(&self, js: &str) -> Result<T, String> {
        self.page
            .evaluate(js)
            .await
            .map_err(|e| format!("{js}: {e}"))?
            .into_value()
            .map_err(|e| format!("{js}: {e}"))
    }

    /// Marks the current document, so that [`Self::wait_for`] can tell the page that a
    /// navigation brings from the one it replaces (which may already show the element waited
    /// for: an `#error` or a `#notice` of the previous step).
    async fn mark_page(&self) -> Result<(), String> {
        self.eval::<bool>("(() => { document.documentElement.dataset.e2eOld = '1'; return true; })()")
            .await
            .map(|_| ())
    }

    async fn path(&self) -> Result<String, String> {
        self.eval("location.pathname").await
    }

    async fn text(&self, selector: &str) -> Result<String, String> {
        self.eval(&format!(
            "(document.querySelector({sel}) || {{textContent: ''}}).textContent",
            sel = serde_json::to_string(selector).map_err(err)?
        ))
        .await
    }

    /// Sets an input's value.
    async fn fill(&self, selector: &str, value: &str) -> Result<(), String> {
        let js = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return false; e.value = {}; return true; }})()",
            serde_json::to_string(selector).map_err(err)?,
            serde_json::to_string(value).map_err(err)?
        );
        if self.eval::<bool>(&js).await? {
            Ok(())
        } else {
            Err(format!(
                "no element {selector} on {}",
                self.path().await.unwrap_or_default()
            ))
        }
    }

    /// Clicks an element of the current, fully loaded page (its scripts have attached their
    /// handlers by then).
    async fn click(&self, selector: &str) -> Result<(), String> {
        self.wait_in_page("document.readyState === 'complete'").await?;
        let js = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return false; e.click(); return true; }})()",
            serde_json::to_string(selector).map_err(err)?
        );
        if self.eval_once::<bool>(&js).await? {
            Ok(())
        } else {
            Err(format!(
                "no element {selector} on {}",
                self.path().await.unwrap_or_default()
            ))
        }
    }

    /// Clicks something that leads to another page, and waits until that new page has loaded
    /// and the condition holds on it. The old page never satisfies the wait, whatever it shows.
    async fn click_to_page(&self, selector: &str, condition: &str) -> Result<(), String> {
        // Ready first: a navigation still under way would otherwise take the mark with it.
        self.wait_in_page("document.readyState === 'complete'").await?;
        self.mark_page().await?;
        self.click(selector).await?;
        self.wait_for(condition).await
    }

    /// Clicks something that answers on the same page (a WebAuthn refusal in the error box),
    /// and waits until the condition holds. The error box and the status line are cleared
    /// first, so an earlier message cannot satisfy the wait.
    async fn click_in_page(&self, selector: &str, condition: &str) -> Result<(), String> {
        self.eval::<bool>(
            "(() => { const s = document.querySelector('#webauthn-status'); if (s) s.textContent = ''; \
             const e = document.querySelector('#error'); if (e) e.remove(); return true; })()",
        )
        .await?;
        self.click(selector).await?;
        self.wait_in_page(condition).await
    }

    /// Waits until a page that is not the one marked by [`Self::mark_page`] has loaded and the
    /// condition holds on it.
    async fn wait_for(&self, condition: &str) -> Result<(), String> {
        self.wait_in_page(&format!(
            "document.documentElement.dataset.e2eOld !== '1' && document.readyState === 'complete' && ({condition})"
        ))
        .await
    }

    /// Waits (up to [`WAIT`], checking every [`POLL`]) until a JavaScript condition holds on
    /// whatever document is current. The deadline only bounds a failure; it decides no success.
    async fn wait_in_page(&self, condition: &str) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        let js = format!("(() => {{ try {{ return !!({condition}); }} catch (_) {{ return false; }} }})()");
        loop {
            if let Ok(true) = self.eval_once::<bool>(&js).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                let status = self.text("#webauthn-status").await.unwrap_or_default();
                let error = self.text("#error").await.unwrap_or_default();
                return Err(format!(
                    "timed out waiting for `{condition}` on {} (status: {status:?}, error: {error:?})",
                    self.path().await.unwrap_or_default()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn screenshot(&self, name: &str) -> Result<(), String> {
        std::fs::create_dir_all(&self.artifacts).map_err(err)?;
        let params = ScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Png)
            .full_page(true)
            .build();
        self.page
            .save_screenshot(params, self.artifacts.join(format!("{name}.png")))
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn sign_in_with_password(&self, user: &str) -> Result<(), String> {
        self.goto("/login").await?;
        self.fill("#username", user).await?;
        self.fill("#password", PASSWORD).await?;
        self.click_to_page("#password-sign-in", "location.pathname !== '/login'")
            .await
    }

    /// Waits until the sign-in page's background passkey request (autofill) has settled, so
    /// that credentials added to the authenticator afterwards are seen only by the request the
    /// test starts.
    async fn autofill_settled(&self) -> Result<(), String> {
        self.wait_in_page("['settled', 'unavailable'].includes(document.documentElement.dataset.autofill)")
            .await
    }

    async fn sign_out(&self) -> Result<(), String> {
        self.click_to_page("#logout", "location.pathname === '/login'").await
    }

    async fn signed_in_as(&self) -> Result<String, String> {
        self.text("#signed-in-user").await
    }

    /// Makes the next `navigator.credentials.create` offer only `alg`.
    async fn only_algorithm(&self, alg: i64) -> Result<(), String> {
        let js = format!(
            "(() => {{ const create = navigator.credentials.create.bind(navigator.credentials);
               navigator.credentials.create = (o) => {{ o.publicKey.pubKeyCredParams = [{{type: 'public-key', alg: {alg}}}]; return create(o); }};
               return true; }})()"
        );
        self.eval::<bool>(&js).await.map(|_| ())
    }

    async fn register(&self, button: &str, name: &str) -> Result<(), String> {
        self.fill("#webauthn-name", name).await?;
        self.click_to_page(
            button,
            "document.querySelector('#notice') && /registered/.test(document.querySelector('#notice').textContent)",
        )
        .await
    }

    async fn export_credentials(&self) -> Result<Vec<Credential>, String> {
        let got = self
            .page
            .execute(GetCredentialsParams::new(self.authenticator.clone()))
            .await
            .map_err(err)?;
        Ok(got.result.credentials.clone())
    }

    /// The signature counters of the passkeys this browser's authenticator holds.
    async fn sign_counts(&self) -> Result<Vec<i64>, String> {
        Ok(self.export_credentials().await?.iter().map(|c| c.sign_count).collect())
    }

    /// Empties this browser's authenticator (its passkeys then live only where they were copied).
    async fn clear_credentials(&self) -> Result<(), String> {
        self.page
            .execute(ClearCredentialsParams::new(self.authenticator.clone()))
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn import_credentials(&self, credentials: Vec<Credential>) -> Result<(), String> {
        for credential in credentials {
            self.page
                .execute(AddCredentialParams::new(self.authenticator.clone(), credential))
                .await
                .map_err(err)?;
        }
        Ok(())
    }

    async fn credentials(&self) -> Result<Vec<Vec<u8>>, String> {
        let got = self
            .page
            .execute(GetCredentialsParams::new(self.authenticator.clone()))
            .await
            .map_err(err)?;
        got.result
            .credentials
            .iter()
            .map(|c| {
                let b64: &str = c.private_key.as_ref();
                base64::engine::general_purpose::STANDARD.decode(b64).map_err(err)
            })
            .collect()
    }

    async fn override_response(&self, bogus_signature: bool, bad_uv: bool) -> Result<(), String> {
        let params = SetResponseOverrideBitsParams::builder()
            .authenticator_id(self.authenticator.clone())
            .is_bogus_signature(bogus_signature)
            .is_bad_uv(bad_uv)
            .is_bad_up(false)
            .build()
            .map_err(err)?;
        self.page.execute(params).await.map_err(err)?;
        Ok(())
    }
}

/// Methods table rows as (kind, name, status).
async fn methods(tab: &Tab) -> Result<Vec<(String, String, String)>, String> {
    tab.goto("/settings").await?;
    tab.eval(
        "Array.from(document.querySelectorAll('#methods tbody tr[data-id]')).map(r => \
         [r.dataset.kind, r.querySelector('.name').textContent, r.querySelector('.status').textContent])",
    )
    .await
}

/// The text of the error box, once it shows something.
async fn error_shown(tab: &Tab) -> Result<String, String> {
    tab.wait_in_page("document.querySelector('#error') && document.querySelector('#error').textContent !== ''")
        .await?;
    tab.text("#error").await
}

/// What the page shows when the server refused a WebAuthn response.
const REFUSED: &str = "/didn't work/.test((document.querySelector('#error') || {}).textContent)";

// ----- Scenarios -----------------------------------------------------------------------------

async fn passkey_register_sign_out_passwordless(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("alice").await?;
    if tab.path().await? != "/" || tab.signed_in_as().await? != "alice" {
        return Err("a user without methods is signed in by password alone".into());
    }
    tab.goto("/settings").await?;
    tab.register("#add-passkey", "Laptop").await?;
    let rows = methods(&tab).await?;
    if !rows.iter().any(|(k, n, _)| k == "passkey" && n == "Laptop") {
        return Err(format!("no passkey listed: {rows:?}"));
    }
    tab.screenshot("settings-with-passkey").await?;
    tab.click_to_page("#logout", "location.pathname === '/login' || location.pathname === '/'")
        .await?;
    // Autofill: the conditional request started on the sign-in page resolves with the passkey.
    tab.wait_for("location.pathname === '/' && document.querySelector('#signed-in-user')")
        .await?;
    if tab.signed_in_as().await? != "alice" {
        return Err("passkey autofill signed in someone else".into());
    }
    let rows = methods(&tab).await?;
    if rows.len() != 1 {
        return Err(format!("unexpected methods {rows:?}"));
    }
    if tab.text("tr[data-kind=passkey] .last-used").await?.contains("never") {
        return Err("last-used time not shown after a passkey sign-in".into());
    }
    tab.close(browser).await;
    Ok(())
}

async fn passkey_button_sign_in(browser: &Browser, base: &str) -> Result<(), String> {
    // Register judy's passkey in one browser...
    let first = Tab::open(browser, base, Kind::Platform).await?;
    first.sign_in_with_password("judy").await?;
    first.goto("/settings").await?;
    first.register("#add-passkey", "Phone").await?;
    let exported = first.export_credentials().await?;
    first.close(browser).await;
    // ...and sign in on another: its authenticator is empty while the sign-in page loads (so
    // autofill offers nothing), then receives the passkey, and the button is used.
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.goto("/login").await?;
    tab.autofill_settled().await?;
    tab.import_credentials(exported).await?;
    tab.click_to_page("#passkey-sign-in", "location.pathname === '/'")
        .await?;
    tab.wait_for("document.querySelector('#signed-in-user')").await?;
    if tab.signed_in_as().await? != "judy" {
        return Err("passkey button signed in someone else".into());
    }
    tab.close(browser).await;
    Ok(())
}

async fn password_and_security_key(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::SecurityKey).await?;
    tab.sign_in_with_password("bob").await?;
    tab.goto("/settings").await?;
    tab.register("#add-security-key", "YubiKey").await?;
    let rows = methods(&tab).await?;
    if !rows.iter().any(|(k, n, _)| k == "security_key" && n == "YubiKey") {
        return Err(format!("no security key listed: {rows:?}"));
    }
    tab.sign_out().await?;
    tab.sign_in_with_password("bob").await?;
    if tab.path().await? != "/mfa" {
        return Err("a user with a security key was signed in by password alone".into());
    }
    tab.screenshot("second-factor").await?;
    tab.click_to_page("#use-security-key", "location.pathname === '/'")
        .await?;
    tab.wait_for("document.querySelector('#signed-in-user')").await?;
    if tab.signed_in_as().await? != "bob" {
        return Err("not signed in after the security key".into());
    }
    tab.close(browser).await;
    Ok(())
}

/// A security key registered device-bound starts syncing (its authenticator now reports the
/// credential backup-eligible and backed up, as a password manager that gained sync would): the
/// next sign-in is accepted, not a lockout, and the devices page shows it synced.
async fn backup_flags_that_change(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::SecurityKey).await?;
    tab.sign_in_with_password("niaj").await?;
    tab.goto("/settings").await?;
    tab.register("#add-security-key", "Travel key").await?;
    let status = tab.text("tr[data-kind=security_key] .status").await?;
    if !status.contains("Device-bound") {
        return Err(format!("a new security key's status: {status:?}"));
    }
    let credential = tab
        .export_credentials()
        .await?
        .into_iter()
        .next()
        .ok_or("no credential in the authenticator")?;
    let params = SetCredentialPropertiesParams::builder()
        .authenticator_id(tab.authenticator.clone())
        .credential_id(credential.credential_id.clone())
        .backup_eligibility(true)
        .backup_state(true)
        .build()
        .map_err(err)?;
    tab.page.execute(params).await.map_err(err)?;
    tab.sign_out().await?;
    tab.sign_in_with_password("niaj").await?;
    tab.click_to_page("#use-security-key", "location.pathname === '/'")
        .await?;
    tab.wait_for("document.querySelector('#signed-in-user')").await?;
    tab.goto("/settings").await?;
    let status = tab.text("tr[data-kind=security_key] .status").await?;
    if !status.contains("Synced") {
        return Err(format!("after the flags changed, the status is {status:?}"));
    }
    tab.screenshot("backup-flags-changed").await?;
    tab.close(browser).await;
    Ok(())
}

/// WebAuthn Level 3 signals, checked in the virtual authenticator itself: a new display name
/// reaches the passkey (signalCurrentUserDetails), a deleted passkey leaves it
/// (signalAllAcceptedCredentials), and a passkey the site no longer knows is removed from
/// another browser that still offers it (signalUnknownCredential).
async fn signals_reach_the_authenticator(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("yara").await?;
    tab.goto("/settings").await?;
    tab.register("#add-passkey", "Laptop").await?;
    let exported = tab.export_credentials().await?;
    // The display name.
    tab.fill("#display-name", "Yara Y.").await?;
    tab.click_to_page(
        "#change-display-name",
        "document.documentElement.dataset.signalsDone === '1'",
    )
    .await?;
    let sent: String = tab.eval("document.documentElement.dataset.signals || ''").await?;
    if !sent.contains("currentUserDetails:sent") {
        return Err(format!("display name: signals {sent:?}"));
    }
    let held = tab.export_credentials().await?;
    if held.first().and_then(|c| c.user_display_name.as_deref()) != Some("Yara Y.") {
        return Err(format!(
            "the passkey's display name is {:?}",
            held.first().map(|c| c.user_display_name.clone())
        ));
    }
    // Deleting the passkey (after a fresh second factor: the passkey itself; a backup code is
    // no step-up).
    generate_codes(&tab).await?;
    tab.click_to_page("tr[data-kind=passkey] .delete", "document.querySelector('#step-up')")
        .await?;
    tab.click_to_page(
        "#use-security-key",
        "document.documentElement.dataset.signalsDone === '1'",
    )
    .await?;
    let sent: String = tab.eval("document.documentElement.dataset.signals || ''").await?;
    if !sent.contains("allAcceptedCredentials:sent") {
        return Err(format!("delete: signals {sent:?}"));
    }
    if !tab.export_credentials().await?.is_empty() {
        return Err("the deleted passkey is still in the authenticator".into());
    }
    tab.close(browser).await;
    // Another browser still holds the old passkey: signing in with it is refused, and the
    // browser is told to forget it.
    let other = Tab::open(browser, base, Kind::Platform).await?;
    other.goto("/login").await?;
    other.autofill_settled().await?;
    other.import_credentials(exported).await?;
    other
        .click_in_page(
            "#passkey-sign-in",
            "(document.documentElement.dataset.signals || '').includes('unknownCredential')",
        )
        .await?;
    let sent: String = other.eval("document.documentElement.dataset.signals || ''").await?;
    if !sent.contains("unknownCredential:sent") || !other.export_credentials().await?.is_empty() {
        return Err(format!(
            "unknown credential: signals {sent:?}, still held: {}",
            other.export_credentials().await?.len()
        ));
    }
    other.close(browser).await;
    Ok(())
}

/// A passkey registered without a name is named after its provider (the AAGUID of Chromium's
/// virtual platform authenticator, in the demo's catalog), shown with the provider's icon.
async fn provider_names_on_the_devices_page(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("xavier").await?;
    tab.goto("/settings").await?;
    tab.register("#add-passkey", "").await?;
    let rows = methods(&tab).await?;
    if !rows
        .iter()
        .any(|(k, n, _)| k == "passkey" && n == "Chromium virtual authenticator")
    {
        return Err(format!("the new passkey is not named after its provider: {rows:?}"));
    }
    let (provider, icon): (String, bool) = tab
        .eval(
            "[(document.querySelector('tr[data-kind=passkey] .provider') || {textContent: ''}).textContent, \
              !!document.querySelector('tr[data-kind=passkey] img.provider-icon[src^=\"data:image/svg+xml;base64,\"]')]",
        )
        .await?;
    if !provider.contains("Chromium virtual authenticator") || !icon {
        return Err(format!("provider line {provider:?}, icon {icon}"));
    }
    tab.screenshot("provider-name").await?;
    tab.close(browser).await;
    Ok(())
}

fn totp_code(secret: &str, steps_ahead: u64) -> Result<String, String> {
    totp_code_at(secret, TotpParams::default().step_at(SystemClock.now()) + steps_ahead)
}

/// The TOTP code of `step` (so that the step a confirmation spends is known exactly, even when
/// the clock moves to the next one while the code is typed).
fn totp_code_at(secret: &str, step: u64) -> Result<String, String> {
    let secret = decode_base32_secret(secret).map_err(err)?;
    Ok(code_for_step(&secret, &TotpParams::default(), step)
        .expose_secret()
        .to_owned())
}

async fn totp_enrollment_and_sign_in(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("carol").await?;
    tab.goto("/settings").await?;
    tab.click_to_page("#add-totp", "document.querySelector('#totp-secret')")
        .await?;
    tab.wait_for("document.querySelector('#totp-qr svg')").await?;
    tab.screenshot("totp-setup").await?;
    let secret = tab.text("#totp-secret").await?;
    let qr = tab
        .eval::<String>("document.querySelector('#totp-qr').innerHTML")
        .await?;
    // A typo first: the setup page again, with the same QR code and secret (the entry just
    // scanned stays good), the error, and the code field.
    let wrong = if totp_code(&secret, 0)? == "000000" {
        "111111"
    } else {
        "000000"
    };
    tab.fill("#totp-confirm-code", wrong).await?;
    tab.click_to_page("#confirm-totp", "document.querySelector('#error')")
        .await?;
    tab.screenshot("totp-setup-error").await?;
    let again = tab.text("#totp-secret").await?;
    let qr_again = tab
        .eval::<String>("(document.querySelector('#totp-qr') || {innerHTML: ''}).innerHTML")
        .await?;
    let field = tab
        .eval::<bool>("!!document.querySelector('#totp-confirm-code')")
        .await?;
    if again != secret || qr_again != qr || !field {
        return Err(format!(
            "after a typo: secret kept {}, QR kept {}, code field {field}",
            again == secret,
            qr_again == qr
        ));
    }
    if !tab.text("#error").await?.contains("didn't work") {
        return Err("no clear error for a wrong first code".into());
    }
    // Leaving and coming back: the devices page offers to finish that setup, same secret.
    let rows = methods(&tab).await?;
    if !rows
        .iter()
        .any(|(k, _, d)| k == "totp" && d.contains("Not confirmed yet"))
    {
        return Err(format!("the pending setup is not listed: {rows:?}"));
    }
    tab.click_to_page(
        "tr[data-kind=totp] .finish-setup",
        "document.querySelector('#totp-secret')",
    )
    .await?;
    if tab.text("#totp-secret").await? != secret {
        return Err("Finish setup showed another secret".into());
    }
    let confirmed_step = TotpParams::default().step_at(SystemClock.now());
    tab.fill("#totp-confirm-code", &totp_code_at(&secret, confirmed_step)?)
        .await?;
    tab.click_to_page("#confirm-totp", "document.querySelector('#notice')")
        .await?;
    let rows = methods(&tab).await?;
    if rows.iter().filter(|(k, _, _)| k == "totp").count() != 1 {
        return Err(format!("expected one confirmed authenticator app: {rows:?}"));
    }
    tab.sign_out().await?;
    tab.sign_in_with_password("carol").await?;
    if tab.path().await? != "/mfa" {
        return Err("TOTP not required at sign-in".into());
    }
    // The confirmation spent its step: the current code, or the next one while the clock is
    // still in that step. (Not always the next one: a confirmation that reached the server a
    // step late centres the device's window a step back, and two steps ahead are outside it.)
    tab.fill("#totp-code", &fresh_totp(&secret, confirmed_step)?).await?;
    tab.click_to_page("#verify-totp", "location.pathname === '/'").await?;
    if tab.signed_in_as().await? != "carol" {
        return Err("not signed in after the TOTP code".into());
    }
    tab.close(browser).await;
    Ok(())
}

async fn backup_code_count_drops(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("dave").await?;
    tab.goto("/settings").await?;
    tab.click_to_page("#add-backup-codes", "document.querySelector('#backup-codes')")
        .await?;
    tab.screenshot("backup-codes").await?;
    let codes: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#backup-codes code')).map(c => c.textContent)")
        .await?;
    if codes.len() != 6 {
        return Err(format!("expected 6 codes, got {codes:?}"));
    }
    tab.click_to_page("#codes-saved", "location.pathname === '/settings'")
        .await?;
    let rows = methods(&tab).await?;
    if !rows
        .iter()
        .any(|(k, _, d)| k == "backup_codes" && d.contains("6 codes left"))
    {
        return Err(format!("6 codes not shown: {rows:?}"));
    }
    tab.sign_out().await?;
    tab.sign_in_with_password("dave").await?;
    tab.fill("#backup-code", &codes[0].to_uppercase()).await?;
    tab.click_to_page("#verify-backup", "location.pathname === '/'").await?;
    if !tab.text("#notice").await?.contains("5 backup codes left") {
        return Err("the remaining count was not shown after a backup-code sign-in".into());
    }
    let rows = methods(&tab).await?;
    if !rows
        .iter()
        .any(|(k, _, d)| k == "backup_codes" && d.contains("5 codes left"))
    {
        return Err(format!("count did not drop to 5: {rows:?}"));
    }
    // The used code does not work again.
    tab.sign_out().await?;
    tab.sign_in_with_password("dave").await?;
    tab.fill("#backup-code", &codes[0]).await?;
    tab.click_to_page("#verify-backup", "document.querySelector('#error')")
        .await?;
    tab.screenshot("second-factor-error").await?;
    if tab.path().await? == "/" {
        return Err("a used backup code signed in".into());
    }
    // Regenerating replaces the set (after asking): an old unused code stops working.
    tab.fill("#backup-code", &codes[1]).await?;
    tab.click_to_page("#verify-backup", "location.pathname === '/'").await?;
    generate_codes(&tab).await?;
    tab.sign_out().await?;
    tab.sign_in_with_password("dave").await?;
    tab.fill("#backup-code", &codes[2]).await?;
    tab.click_to_page("#verify-backup", "document.querySelector('#error')")
        .await?;
    tab.close(browser).await;
    Ok(())
}

async fn rename_and_delete(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::SecurityKey).await?;
    tab.sign_in_with_password("erin").await?;
    tab.goto("/settings").await?;
    tab.register("#add-security-key", "Old name").await?;
    tab.goto("/settings").await?;
    tab.fill("tr[data-kind=security_key] .rename-input", "  Blue key  ")
        .await?;
    tab.click_to_page(
        "tr[data-kind=security_key] .rename",
        "document.querySelector('#notice')",
    )
    .await?;
    let rows = methods(&tab).await?;
    if rows.first().map(|r| r.1.as_str()) != Some("Blue key") {
        return Err(format!("rename did not take: {rows:?}"));
    }
    // A bad name: a clear error, nothing changed.
    tab.fill("tr[data-kind=security_key] .rename-input", &"x".repeat(65))
        .await?;
    tab.click_to_page("tr[data-kind=security_key] .rename", "document.querySelector('#error')")
        .await?;
    if !tab.text("#error").await?.contains("1 to 64") {
        return Err("no clear error for a too-long name".into());
    }
    // The last method cannot be removed by the user: the page says so before Delete is
    // pressed (the button is disabled, with the reason)...
    let (disabled, reason): (bool, String) = tab
        .eval(
            "[document.querySelector('tr[data-kind=security_key] .delete').disabled, \
              (document.querySelector('tr[data-kind=security_key] .last-method') || {textContent: ''}).textContent]",
        )
        .await?;
    if !disabled || !reason.contains("only working method") {
        return Err(format!(
            "the last-method rule is not visible before Delete: {disabled} {reason:?}"
        ));
    }
    // ...and the server refuses it all the same when the button is forced.
    tab.eval::<bool>(
        "(() => { document.querySelector('tr[data-kind=security_key] .delete').disabled = false; return true; })()",
    )
    .await?;
    tab.click_to_page("tr[data-kind=security_key] .delete", "document.querySelector('#error')")
        .await?;
    if !tab.text("#error").await?.contains("last sign-in method") {
        return Err("no clear error when deleting the last method".into());
    }
    if methods(&tab).await?.len() != 1 {
        return Err("the last method was deleted".into());
    }
    // ...but once another exists, it can, after a fresh second factor: erin signed in with her
    // password before she had any method, so the session has none. A backup code is not
    // offered for it (it is for getting back in, not for changing factors): the key is.
    generate_codes(&tab).await?;
    tab.click_to_page(
        "tr[data-kind=security_key] .delete",
        "document.querySelector('#step-up')",
    )
    .await?;
    if !tab.text("#second-factor-intro").await?.contains("To delete Blue key") {
        return Err(format!("step-up page: {:?}", tab.text("#second-factor-intro").await?));
    }
    if tab
        .eval::<bool>("document.querySelector('#backup-code') !== null")
        .await?
    {
        return Err("the step-up page offers a backup code".into());
    }
    let headings: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
        .await?;
    if headings != ["Confirm it's you"] {
        return Err(format!("the step-up page's headings: {headings:?}"));
    }
    tab.screenshot("step-up-before-delete").await?;
    tab.click_to_page("#use-security-key", "document.querySelector('#notice')")
        .await?;
    if tab.path().await? != "/settings" || tab.text("#notice").await? != "Deleted." {
        return Err(format!(
            "after the step-up: {} {:?}",
            tab.path().await?,
            tab.text("#notice").await?
        ));
    }
    let rows = methods(&tab).await?;
    if rows.len() != 1 || rows[0].0 != "backup_codes" {
        return Err(format!("delete did not take: {rows:?}"));
    }
    tab.close(browser).await;
    Ok(())
}

/// DER object identifiers of the private key types, as in the PKCS#8 the browser reports.
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

async fn algorithms(browser: &Browser, base: &str) -> Result<(), String> {
    for (user, alg, oid, label) in [("frank", -7, OID_EC, "ES256"), ("heidi", -257, OID_RSA, "RS256")] {
        let tab = Tab::open(browser, base, Kind::SecurityKey).await?;
        tab.sign_in_with_password(user).await?;
        tab.goto("/settings").await?;
        tab.only_algorithm(alg).await?;
        tab.register("#add-security-key", label)
            .await
            .map_err(|e| format!("{label}: {e}"))?;
        let keys = tab.credentials().await?;
        if keys.len() != 1 || !keys[0].windows(oid.len()).any(|w| w == oid) {
            return Err(format!("{label}: the authenticator did not create a {label} key"));
        }
        // The server verifies a signature with that key at the next sign-in.
        tab.sign_out().await?;
        tab.sign_in_with_password(user).await?;
        tab.click_to_page("#use-security-key", "location.pathname === '/'")
            .await?;
        if tab.signed_in_as().await? != user {
            return Err(format!("{label}: sign-in failed"));
        }
        tab.close(browser).await;
    }
    // EdDSA (Ed25519): an authenticator that offers only EdDSA registers a security key, signs
    // in with it as a second factor, and a tampered signature of it is refused.
    let tab = Tab::open(browser, base, Kind::SecurityKey).await?;
    tab.sign_in_with_password("grace").await?;
    tab.goto("/settings").await?;
    // Related origins (WebAuthn Level 3): the document the browser fetches lists this origin
    // and the related one the server was started with.
    let origins: Vec<String> = tab
        .eval("fetch('/.well-known/webauthn').then(r => r.json()).then(j => j.origins)")
        .await?;
    if origins
        != [
            base.trim_end_matches('/').to_owned(),
            "https://example.co.uk".to_owned(),
        ]
    {
        return Err(format!("/.well-known/webauthn lists {origins:?}"));
    }
    let offered: Vec<i64> = tab
        .eval(
            "fetch('/settings/webauthn/start', {method: 'POST', headers: {'Content-Type': 'application/json', \
             'X-CSRF-Token': document.querySelector('meta[name=csrf]').content}, body: '{\"kind\":\"passkey\"}'}) \
             .then(r => r.json()).then(j => j.options.publicKey.pubKeyCredParams.map(p => p.alg))",
        )
        .await?;
    if offered != [-8, -7, -257] {
        return Err(format!("offered algorithms {offered:?}"));
    }
    tab.goto("/settings").await?;
    tab.only_algorithm(-8).await?;
    tab.register("#add-security-key", "EdDSA key")
        .await
        .map_err(|e| format!("EdDSA: {e}"))?;
    let keys = tab.credentials().await?;
    if keys.len() != 1 || !keys[0].windows(OID_ED25519.len()).any(|w| w == OID_ED25519) {
        return Err("EdDSA: the authenticator did not create an Ed25519 key".into());
    }
    tab.sign_out().await?;
    tab.sign_in_with_password("grace").await?;
    tab.override_response(true, false).await?;
    tab.click_in_page("#use-security-key", REFUSED).await?;
    if tab.path().await? != "/mfa" {
        return Err("EdDSA: a bogus Ed25519 signature got past the second factor".into());
    }
    tab.override_response(false, false).await?;
    tab.click_to_page("#use-security-key", "location.pathname === '/'")
        .await?;
    if tab.signed_in_as().await? != "grace" {
        return Err("EdDSA: sign-in with the Ed25519 security key failed".into());
    }
    // ...and a passkey, passwordless: registered on a platform authenticator that offers only
    // EdDSA (after signing in there with the Ed25519 security key, carried over), then used
    // from the sign-in page's button.
    let security_key = tab.export_credentials().await?;
    let platform = Tab::open(browser, base, Kind::Platform).await?;
    platform.import_credentials(security_key).await?;
    platform.sign_in_with_password("grace").await?;
    // The key was registered over USB; this authenticator is built in: let the browser offer
    // the credential to it whatever transport was recorded.
    platform
        .eval::<bool>(
            "(() => { const get = navigator.credentials.get.bind(navigator.credentials);
               navigator.credentials.get = (o) => { (o.publicKey.allowCredentials || []).forEach(c => delete c.transports); return get(o); };
               return true; })()",
        )
        .await?;
    platform
        .click_to_page("#use-security-key", "location.pathname === '/'")
        .await?;
    platform.goto("/settings").await?;
    platform.only_algorithm(-8).await?;
    // The carried-over security key sits in this authenticator too, and is (rightly) excluded:
    // let the browser create the passkey beside it.
    platform
        .eval::<bool>(
            "(() => { const create = navigator.credentials.create.bind(navigator.credentials);
               navigator.credentials.create = (o) => { o.publicKey.excludeCredentials = []; return create(o); };
               return true; })()",
        )
        .await?;
    platform.register("#add-passkey", "EdDSA passkey").await?;
    let exported: Vec<Credential> = platform
        .export_credentials()
        .await?
        .into_iter()
        .filter(|c| c.is_resident_credential)
        .collect();
    if exported.len() != 1 {
        return Err(format!(
            "EdDSA: {} passkeys in the platform authenticator",
            exported.len()
        ));
    }
    platform.close(browser).await;
    let next = Tab::open(browser, base, Kind::Platform).await?;
    next.goto("/login").await?;
    next.autofill_settled().await?;
    next.import_credentials(exported).await?;
    next.click_to_page("#passkey-sign-in", "location.pathname === '/'")
        .await?;
    next.wait_for("document.querySelector('#signed-in-user')").await?;
    if next.signed_in_as().await? != "grace" {
        return Err("EdDSA: the Ed25519 passkey did not sign grace in".into());
    }
    next.close(browser).await;
    tab.close(browser).await;
    Ok(())
}

async fn user_verification_refused(browser: &Browser, base: &str) -> Result<(), String> {
    let first = Tab::open(browser, base, Kind::Platform).await?;
    first.sign_in_with_password("ivan").await?;
    first.goto("/settings").await?;
    first.register("#add-passkey", "Tablet").await?;
    let exported = first.export_credentials().await?;
    first.close(browser).await;
    // The authenticator answers with the UV flag cleared: passwordless must be refused.
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.goto("/login").await?;
    tab.autofill_settled().await?;
    tab.import_credentials(exported).await?;
    tab.override_response(false, true).await?;
    tab.click_in_page("#passkey-sign-in", REFUSED).await?;
    tab.screenshot("passkey-refused").await?;
    if tab.path().await? != "/login" {
        return Err("signed in by a passkey assertion without user verification".into());
    }
    // Control: the same passkey with user verification signs in.
    tab.override_response(false, false).await?;
    tab.click_to_page("#passkey-sign-in", "location.pathname === '/'")
        .await?;
    tab.close(browser).await;
    Ok(())
}

async fn tampered_signature(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::SecurityKey).await?;
    tab.sign_in_with_password("trent").await?;
    tab.goto("/settings").await?;
    tab.register("#add-security-key", "Key").await?;
    tab.sign_out().await?;
    tab.sign_in_with_password("trent").await?;
    tab.override_response(true, false).await?;
    tab.click_in_page("#use-security-key", REFUSED).await?;
    if tab.path().await? != "/mfa" {
        return Err("a bogus signature got past the second factor".into());
    }
    // Control: with honest signatures the same key works.
    tab.override_response(false, false).await?;
    tab.click_to_page("#use-security-key", "location.pathname === '/'")
        .await?;
    tab.close(browser).await;
    Ok(())
}

async fn credential_of_another_user(browser: &Browser, base: &str) -> Result<(), String> {
    // mallory registers a passkey...
    let first = Tab::open(browser, base, Kind::Platform).await?;
    first.sign_in_with_password("mallory").await?;
    first.goto("/settings").await?;
    first.register("#add-passkey", "Mallory's").await?;
    let mallorys = first.export_credentials().await?;
    first.close(browser).await;
    // ...and answers alice's second-factor ceremony with it (alice has her own passkey).
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("alice").await?;
    if tab.path().await? != "/mfa" {
        return Err("alice should need a second factor".into());
    }
    tab.import_credentials(mallorys).await?;
    // The page asks for alice's credentials only; make the browser offer any it has.
    tab.eval::<bool>(
        "(() => { const get = navigator.credentials.get.bind(navigator.credentials);
           navigator.credentials.get = (o) => { o.publicKey.allowCredentials = []; return get(o); };
           return true; })()",
    )
    .await?;
    tab.click_in_page("#use-security-key", REFUSED).await?;
    if tab.path().await? != "/mfa" {
        return Err("another user's credential passed alice's second factor".into());
    }
    tab.close(browser).await;
    Ok(())
}

// ----- The user guide without dead ends (the demo as a person meets it) -----------------------

/// Generates a backup-code set on the settings page and returns its codes.
async fn generate_codes(tab: &Tab) -> Result<Vec<String>, String> {
    tab.goto("/settings").await?;
    tab.click_to_page(
        "#add-backup-codes",
        "document.querySelector('#backup-codes') || document.querySelector('#confirm-replace-codes')",
    )
    .await?;
    // Replacing a set asks first.
    if tab
        .eval::<bool>("document.querySelector('#confirm-replace-codes') !== null")
        .await?
    {
        tab.click_to_page("#confirm-replace-codes", "document.querySelector('#backup-codes')")
            .await?;
    }
    let codes: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#backup-codes code')).map(c => c.textContent)")
        .await?;
    tab.click_to_page("#codes-saved", "location.pathname === '/settings'")
        .await?;
    Ok(codes)
}

/// The warning box's text on the current page ('' when there is none).
async fn warning(tab: &Tab) -> Result<String, String> {
    tab.text("#warning").await
}

async fn low_backup_codes_warn_and_the_last_one_says_so(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("oscar").await?;
    let codes = generate_codes(&tab).await?;
    if !warning(&tab).await?.is_empty() {
        return Err("a warning with all codes left".into());
    }
    for (i, code) in codes.iter().enumerate() {
        tab.sign_out().await?;
        tab.sign_in_with_password("oscar").await?;
        if tab.path().await? != "/mfa" {
            return Err(format!("no second factor asked with {} codes left", codes.len() - i));
        }
        tab.fill("#backup-code", code).await?;
        tab.click_to_page("#verify-backup", "location.pathname === '/'").await?;
        let left = codes.len() - i - 1;
        let shown = warning(&tab).await?;
        match left {
            2 | 1 => {
                let expected = if left == 1 {
                    "only 1 backup code left"
                } else {
                    "only 2 backup codes left"
                };
                if !shown.contains(expected) || !shown.contains("Generate new backup codes") {
                    return Err(format!("{left} left: warning {shown:?}"));
                }
                if left == 1 {
                    tab.screenshot("low-codes-warning").await?;
                    // The warning's link leads to where new codes are made.
                    tab.click_to_page("#generate-codes-link", "location.pathname === '/settings'")
                        .await?;
                    if !warning(&tab).await?.contains("only 1 backup code left") {
                        return Err("the devices page does not repeat the warning".into());
                    }
                }
            }
            0 => {
                if !shown.contains("Your account has no working second factor") {
                    return Err(format!("0 left: {shown:?}"));
                }
                let count = tab.text("#method-count").await?;
                if !count.contains("You have 0 working MFA methods") {
                    return Err(format!("the home page counts a spent set: {count:?}"));
                }
            }
            _ if !shown.is_empty() => return Err(format!("{left} left: an early warning {shown:?}")),
            _ => {}
        }
    }
    tab.screenshot("no-second-factor").await?;
    // With no working second factor left, the password alone does not sign in: recovery is
    // required, and the sign-in page says so.
    tab.sign_out().await?;
    tab.fill("#username", "oscar").await?;
    tab.fill("#password", PASSWORD).await?;
    tab.click_to_page("#password-sign-in", "document.querySelector('#notice') !== null")
        .await?;
    let notice = tab.text("#notice").await?;
    if tab.path().await? != "/login" || !notice.contains("no working second factor left") {
        return Err(format!(
            "a password sign-in without a working second factor was not refused: {} {notice:?}",
            tab.path().await?
        ));
    }
    if tab.signed_in_as().await.is_ok_and(|who| who == "oscar") {
        return Err("signed in with the password alone".into());
    }
    tab.screenshot("recovery-required").await?;
    tab.close(browser).await;
    Ok(())
}

async fn background_autofill_fails_silently(browser: &Browser, base: &str) -> Result<(), String> {
    // A device with no passkey for this site: the background request fails at once.
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.goto("/login").await?;
    tab.autofill_settled().await?;
    let failed: String = tab.eval("document.documentElement.dataset.autofillError || ''").await?;
    let (status, error) = (tab.text("#webauthn-status").await?, tab.text("#error").await?);
    if !status.is_empty() || !error.is_empty() {
        return Err(format!(
            "the background request's failure is shown: {status:?} {error:?}"
        ));
    }
    if failed.is_empty() {
        // Nothing failed, so the silence proves nothing: say so rather than pass.
        return Err("the background request did not fail on an empty authenticator (the check proves nothing)".into());
    }
    // The button the person presses does report, in the error box, saying what to do.
    tab.click_in_page("#passkey-sign-in", "document.querySelector('#error')")
        .await?;
    let shown = error_shown(&tab).await?;
    if !shown.contains("no passkey for this site") || !shown.contains("sign in with your password") {
        return Err(format!("passkey button with no passkey: {shown:?}"));
    }
    // Styled like the server's errors: the same box.
    let styled: bool = tab
        .eval(
            "getComputedStyle(document.querySelector('#error')).backgroundColor === 'rgb(253, 232, 232)' \
             && document.querySelector('#error').className === 'error'",
        )
        .await?;
    if !styled {
        return Err("the script's error is not in the styled error box".into());
    }
    tab.close(browser).await;
    Ok(())
}

async fn registration_refusals_say_what_happened(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::SecurityKey).await?;
    tab.sign_in_with_password("peggy").await?;
    tab.goto("/settings").await?;
    tab.register("#add-security-key", "Red key").await?;
    // The page shows "registered"; the same key again is refused by the browser, and the old
    // notice goes away so that it does not read as the answer.
    if !tab.text("#notice").await?.contains("registered") {
        return Err("no notice after the first registration".into());
    }
    tab.fill("#webauthn-name", "Red key again").await?;
    tab.click_in_page("#add-security-key", "document.querySelector('#error')")
        .await?;
    let shown = error_shown(&tab).await?;
    if !shown.contains("already registered") {
        return Err(format!("the same key twice: {shown:?}"));
    }
    if !tab.text("#notice").await?.is_empty() {
        return Err("the old success notice is shown with the refusal".into());
    }
    if methods(&tab).await?.len() != 1 {
        return Err("a key was registered twice".into());
    }
    // A passkey asked of a security key that cannot verify its user: said so, with what to do.
    tab.click_in_page("#add-passkey", "document.querySelector('#error')")
        .await?;
    let shown = error_shown(&tab).await?;
    if !shown.contains("verify you") {
        return Err(format!("a passkey on a key without user verification: {shown:?}"));
    }
    tab.screenshot("registration-refused").await?;
    tab.close(browser).await;
    Ok(())
}

async fn devices_table_reads_right(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::SecurityKey).await?;
    tab.sign_in_with_password("rupert").await?;
    generate_codes(&tab).await?;
    let headers: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#methods thead th')).map(h => h.textContent)")
        .await?;
    if headers.iter().any(String::is_empty) || !headers.iter().any(|h| h == "Status") {
        return Err(format!("table headers {headers:?}"));
    }
    // No cell says the kind twice ("Backup codes | Backup codes").
    let first: String = tab
        .eval("document.querySelector('#methods tbody tr td').textContent")
        .await?;
    if first.matches("Backup codes").count() != 1 {
        return Err(format!("the name repeats the kind: {first:?}"));
    }
    tab.goto("/").await?;
    let count = tab.text("#method-count").await?;
    if !count.contains("You have 1 working MFA method.") {
        return Err(format!("singular: {count:?}"));
    }
    tab.goto("/settings").await?;
    tab.register("#add-security-key", "Blue key").await?;
    let named: String = tab
        .eval("document.querySelector('tr[data-kind=security_key] td').textContent")
        .await?;
    if !(named.contains("Blue key") && named.contains("Security key")) {
        return Err(format!("a named key does not say its kind: {named:?}"));
    }
    tab.goto("/").await?;
    if !tab
        .text("#method-count")
        .await?
        .contains("You have 2 working MFA methods.")
    {
        return Err("plural".into());
    }
    // Rename is behind an Edit icon, not an open box in every row.
    tab.goto("/settings").await?;
    let open_box: bool = tab
        .eval("Array.from(document.querySelectorAll('.rename-input')).some(i => i.checkVisibility())")
        .await?;
    if open_box {
        return Err("a rename box is open before Edit is pressed".into());
    }
    tab.click("tr[data-kind=security_key] summary.edit").await?;
    tab.wait_in_page("document.querySelector('tr[data-kind=security_key] .rename-input').checkVisibility()")
        .await?;
    // An unfinished app setup reads apart from a working method.
    tab.click_to_page("#add-totp", "document.querySelector('#totp-secret')")
        .await?;
    tab.goto("/settings").await?;
    let pending: String = tab
        .eval("document.querySelector('tr[data-kind=totp] td').textContent")
        .await?;
    if !pending.contains("setup not finished") {
        return Err(format!("an unfinished setup reads like a working app: {pending:?}"));
    }
    tab.close(browser).await;
    // The sign-in page's buttons share one font size (DemoID's was larger).
    let fresh = Tab::open(browser, base, Kind::Platform).await?;
    fresh.goto("/login").await?;
    let sizes: Vec<String> = fresh
        .eval(
            "['#password-sign-in', '#passkey-sign-in', '#demoid-sign-in'].map(s => \
             getComputedStyle(document.querySelector(s)).fontSize)",
        )
        .await?;
    if sizes.iter().any(|s| s != &sizes[0]) {
        return Err(format!("sign-in buttons' font sizes differ: {sizes:?}"));
    }
    fresh.close(browser).await;
    Ok(())
}

async fn second_factor_page_can_be_cancelled(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("sybil").await?;
    generate_codes(&tab).await?;
    tab.sign_out().await?;
    tab.sign_in_with_password("sybil").await?;
    if tab.path().await? != "/mfa" {
        return Err("no second factor asked".into());
    }
    let nav = tab.text("nav").await?;
    if !tab.text("#nav-sign-in").await?.is_empty() {
        return Err(format!("the second-factor page offers \"Sign in\": {nav:?}"));
    }
    if tab.text("#pending-user").await? != "sybil" || tab.text("#cancel-sign-in").await?.is_empty() {
        return Err(format!(
            "the second-factor page has no way to cancel, or no name: {nav:?}"
        ));
    }
    // An error page while the second factor is pending knows it too.
    tab.goto("/no-such-page").await?;
    if tab.text("#pending-user").await? != "sybil" || !tab.text("#nav-sign-in").await?.is_empty() {
        return Err("an error page forgets the pending sign-in".into());
    }
    tab.goto("/mfa").await?;
    tab.click_to_page("#cancel-sign-in", "location.pathname === '/login'")
        .await?;
    tab.goto("/mfa").await?;
    if tab.path().await? != "/login" {
        return Err("the cancelled sign-in is still pending".into());
    }
    // Another account signs in on the same browser.
    tab.sign_in_with_password("walter").await?;
    if tab.signed_in_as().await? != "walter" {
        return Err("another account could not sign in after cancelling".into());
    }
    // Signed in: error pages show the account, not "Sign in".
    tab.goto("/no-such-page").await?;
    if tab.text("#signed-in-user").await? != "walter" || !tab.text("#nav-sign-in").await?.is_empty() {
        return Err("an error page shows \"Sign in\" while signed in".into());
    }
    tab.close(browser).await;
    Ok(())
}

async fn malformed_bodies_get_human_errors(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("victor").await?;
    tab.goto("/settings").await?;
    // (status, content type, body) of a request made from the page.
    let send = |url: &str, content_type: &str, body: &str| {
        format!(
            "fetch({url:?}, {{method: 'POST', headers: {{'Content-Type': {content_type:?}, \
             'X-CSRF-Token': document.querySelector('meta[name=csrf]').content}}, body: {body:?}}}) \
             .then(async r => [String(r.status), r.headers.get('content-type') || '', await r.text()])"
        )
    };
    // A form without its fields.
    let [status, kind, body]: [String; 3] = tab
        .eval(&send("/settings/rename", "application/x-www-form-urlencoded", "csrf=x"))
        .await?;
    if status != "400"
        || !kind.starts_with("text/html")
        || !body.contains("class=\"error\"")
        || !body.contains("victor")
    {
        return Err(format!("malformed form: {status} {kind} {body:.200}"));
    }
    // A JSON call with a broken body.
    let [status, kind, body]: [String; 3] = tab
        .eval(&send("/settings/webauthn/start", "application/json", "{not json"))
        .await?;
    if status != "400" || !kind.starts_with("application/json") || !body.contains("\"error\"") {
        return Err(format!("malformed JSON: {status} {kind} {body:.200}"));
    }
    // And a query without its parameters.
    tab.goto("/login/demoid/callback?code=1").await?;
    if !tab.text("#error").await?.contains("Start again") {
        return Err("a malformed query gets no human page".into());
    }
    tab.close(browser).await;
    Ok(())
}

async fn social_login_does_not_skip_mfa(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("zoe").await?;
    let codes = generate_codes(&tab).await?;
    tab.sign_out().await?;
    // "Sign in with DemoID", claiming the provider did its own MFA (the demo trusts no claim).
    tab.click_to_page("#demoid-sign-in", "document.querySelector('#demoid-banner')")
        .await?;
    tab.eval::<bool>(
        "(() => { document.querySelector('#demoid-user').value = 'zoe'; \
           document.querySelector('#demoid-mfa').checked = true; return true; })()",
    )
    .await?;
    tab.screenshot("demoid").await?;
    tab.click_to_page("#demoid-continue", "location.pathname !== '/demoid/authorize'")
        .await?;
    if tab.path().await? != "/mfa" {
        return Err(format!("a DemoID login skipped MFA: landed on {}", tab.path().await?));
    }
    if !tab.text("#second-factor-intro").await?.contains("DemoID") {
        return Err("the second-factor page does not say how the first factor was passed".into());
    }
    tab.screenshot("social-login-second-factor").await?;
    tab.fill("#backup-code", &codes[0]).await?;
    tab.click_to_page("#verify-backup", "location.pathname === '/'").await?;
    if tab.signed_in_as().await? != "zoe" {
        return Err("not signed in after DemoID and a backup code".into());
    }
    tab.sign_out().await?;
    // A user without methods: DemoID alone signs in.
    tab.click_to_page("#demoid-sign-in", "document.querySelector('#demoid-banner')")
        .await?;
    tab.eval::<bool>("(() => { document.querySelector('#demoid-user').value = 'niaj'; return true; })()")
        .await?;
    tab.click_to_page("#demoid-continue", "location.pathname !== '/demoid/authorize'")
        .await?;
    if tab.path().await? != "/" || tab.signed_in_as().await? != "niaj" {
        return Err("a DemoID login of a user without methods did not sign in".into());
    }
    tab.sign_out().await?;
    // A callback this browser did not start (a forged or replayed link) signs nobody in.
    tab.goto("/login/demoid/callback?code=00&state=00").await?;
    if !tab.text("#error").await?.contains("was not started here")
        || !tab.text("#nav-sign-in").await?.contains("Sign in")
    {
        return Err("a DemoID callback without its state was accepted".into());
    }
    tab.close(browser).await;
    Ok(())
}

/// The TOTP code for the current step, or the next one if the current step was spent.
fn fresh_totp(secret: &str, spent_step: u64) -> Result<String, String> {
    let params = TotpParams::default();
    let now = params.step_at(SystemClock.now());
    totp_code(secret, u64::from(now <= spent_step))
}

/// The owner always gets in. An attacker with the password, in a browser of their own, guesses
/// TOTP codes until the site pauses TOTP for unknown browsers; the owner, in the browser where
/// they completed a sign-in (a known browser), signs in with TOTP at once. In a browser the site
/// has never seen, the owner signs in at once with a backup code, and with a passkey. The devices
/// page lists the known browsers with a revoke button, and "Remember this browser" skips the
/// second factor next time.
async fn the_owner_always_gets_in(browser: &Browser, base: &str) -> Result<(), String> {
    let owner = Tab::open(browser, base, Kind::Platform).await?;
    owner.sign_in_with_password("uma").await?;
    // An authenticator app, backup codes and a passkey.
    owner.goto("/settings").await?;
    owner
        .click_to_page("#add-totp", "document.querySelector('#totp-secret')")
        .await?;
    let secret = owner.text("#totp-secret").await?;
    let confirmed_step = TotpParams::default().step_at(SystemClock.now());
    owner
        .fill("#totp-confirm-code", &totp_code_at(&secret, confirmed_step)?)
        .await?;
    owner
        .click_to_page("#confirm-totp", "document.querySelector('#notice')")
        .await?;
    let codes = generate_codes(&owner).await?;
    owner.goto("/settings").await?;
    owner.register("#add-passkey", "Uma's laptop").await?;
    // The passkey is kept for the new browser below; this one signs in with codes (its
    // authenticator would otherwise sign it in by autofill at every sign-in page).
    let passkeys = owner.export_credentials().await?;
    owner.clear_credentials().await?;
    // A full sign-in (password and a backup code) makes this browser known.
    owner.sign_out().await?;
    owner.sign_in_with_password("uma").await?;
    owner.fill("#backup-code", &codes[0]).await?;
    owner
        .click_to_page("#verify-backup", "location.pathname === '/'")
        .await?;
    owner.goto("/settings").await?;
    let known: Vec<String> = owner
        .eval("Array.from(document.querySelectorAll('#browsers tr[data-remembered=false]')).map(r => r.textContent)")
        .await?;
    if known.len() != 1 || !known[0].contains("This browser") {
        return Err(format!(
            "the devices page does not list this browser as known: {known:?}"
        ));
    }
    owner.sign_out().await?;

    // The attacker, with the password, in a browser of their own: wrong codes until paused.
    let attacker = Tab::open(browser, base, Kind::Platform).await?;
    attacker.sign_in_with_password("uma").await?;
    if attacker.path().await? != "/mfa" {
        return Err("the attacker skipped the second factor".into());
    }
    let right_now = [totp_code(&secret, 0)?, totp_code(&secret, 1)?];
    let mut paused = None;
    for guess in (100_000..200_000u32)
        .map(|n| format!("{n:06}"))
        .filter(|g| !right_now.contains(g))
        .take(12)
    {
        attacker.fill("#totp-code", &guess).await?;
        attacker
            .click_to_page("#verify-totp", "document.querySelector('#error')")
            .await?;
        let error = attacker.text("#error").await?;
        if error.contains("paused") {
            paused = Some(error);
            break;
        }
    }
    let Some(paused) = paused else {
        return Err("twelve wrong codes and TOTP was never paused for the attacker".into());
    };
    attacker.screenshot("attacker-paused").await?;
    // Said without blaming the reader, with what still works.
    if !paused.contains("not necessarily yours") || !paused.contains("backup code") {
        return Err(format!(
            "the pause message blames the reader or hides the way in: {paused:?}"
        ));
    }
    attacker.close(browser).await;

    // The owner, in their own browser: TOTP at once.
    owner.sign_in_with_password("uma").await?;
    owner.fill("#totp-code", &fresh_totp(&secret, confirmed_step)?).await?;
    owner
        .click_to_page(
            "#verify-totp",
            "location.pathname === '/' || document.querySelector('#error')",
        )
        .await?;
    if owner.path().await? != "/" {
        let error = owner.text("#error").await?;
        return Err(format!(
            "the owner's TOTP code was refused in their own browser: {error:?}"
        ));
    }
    owner.screenshot("owner-signed-in-during-attack").await?;

    // The owner in a browser the site has never seen: a backup code at once...
    let fresh = Tab::open(browser, base, Kind::Platform).await?;
    fresh.sign_in_with_password("uma").await?;
    fresh.fill("#backup-code", &codes[1]).await?;
    fresh
        .click_to_page(
            "#verify-backup",
            "location.pathname === '/' || document.querySelector('#error')",
        )
        .await?;
    if fresh.path().await? != "/" {
        let error = fresh.text("#error").await?;
        return Err(format!(
            "a backup code was refused in a new browser during the attack: {error:?}"
        ));
    }
    fresh.sign_out().await?;
    // ...and a passkey, without a password.
    fresh.autofill_settled().await?;
    fresh.import_credentials(passkeys).await?;
    fresh
        .click_to_page("#passkey-sign-in", "location.pathname === '/'")
        .await?;
    fresh.wait_for("document.querySelector('#signed-in-user')").await?;
    if fresh.signed_in_as().await? != "uma" {
        return Err("the passkey signed in someone else".into());
    }

    // The devices page lists both browsers; revoking the other one leaves this one.
    owner.goto("/settings").await?;
    owner.screenshot("known-browsers").await?;
    let rows: usize = owner
        .eval("document.querySelectorAll('#browsers tr[data-remembered=false]').length")
        .await?;
    if rows != 2 {
        return Err(format!("expected 2 known browsers, found {rows}"));
    }
    owner
        .click_to_page(
            "#browsers tr[data-remembered=false]:not(:has(.this-browser)) .revoke-browser",
            "document.querySelector('#notice')",
        )
        .await?;
    let left: Vec<String> = owner
        .eval("Array.from(document.querySelectorAll('#browsers tr[data-remembered=false]')).map(r => r.textContent)")
        .await?;
    if left.len() != 1 || !left[0].contains("This browser") {
        return Err(format!("revoking the other browser left {left:?}"));
    }

    // "Remember this browser": the next sign-in here skips the second factor. (The passkey
    // leaves this browser's authenticator first: autofill would sign in with it.)
    fresh.clear_credentials().await?;
    fresh.sign_out().await?;
    fresh.sign_in_with_password("uma").await?;
    fresh.click("#remember-browser").await?;
    fresh.fill("#backup-code", &codes[2]).await?;
    fresh
        .click_to_page("#verify-backup", "location.pathname === '/'")
        .await?;
    fresh.sign_out().await?;
    fresh.sign_in_with_password("uma").await?;
    if fresh.path().await? != "/" {
        return Err("a remembered browser was asked for the second factor again".into());
    }
    fresh.close(browser).await;
    owner.close(browser).await;
    Ok(())
}

/// A session that is signed in without a recent second factor (here a remembered browser's,
/// which is what a stolen session cookie holds) changes no factor: new backup codes (which
/// would end the owner's printed ones), deleting the app and adding a passkey each ask for a
/// fresh second factor first, and a backup code is not offered for it. After a step-up with
/// the app, the codes can be replaced.
async fn a_stolen_session_changes_no_factor(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("quentin").await?;
    tab.goto("/settings").await?;
    let (secret, confirmed_step) = add_totp(&tab).await?;
    let codes = generate_codes(&tab).await?;
    // A full sign-in that remembers this browser, then a session with the password alone.
    tab.sign_out().await?;
    tab.sign_in_with_password("quentin").await?;
    tab.click("#remember-browser").await?;
    tab.fill("#backup-code", &codes[0]).await?;
    tab.click_to_page("#verify-backup", "location.pathname === '/'").await?;
    tab.sign_out().await?;
    tab.sign_in_with_password("quentin").await?;
    if tab.path().await? != "/" {
        return Err("the remembered browser was asked for a second factor".into());
    }
    // 1. New backup codes: a step-up first, without a backup code on offer.
    tab.goto("/settings").await?;
    tab.click_to_page("#add-backup-codes", "document.querySelector('#step-up')")
        .await?;
    let intro = tab.text("#second-factor-intro").await?;
    if !intro.contains("To generate new backup codes") {
        return Err(format!("step-up page for new codes: {intro:?}"));
    }
    if tab
        .eval::<bool>("document.querySelector('#backup-code') !== null")
        .await?
    {
        return Err("a backup code is offered as a step-up".into());
    }
    tab.screenshot("stolen-session-step-up").await?;
    // 2. Deleting the app, and 3. adding a passkey: the same.
    tab.goto("/settings").await?;
    tab.click_to_page("tr[data-kind=totp] .delete", "document.querySelector('#step-up')")
        .await?;
    tab.goto("/settings").await?;
    tab.click_to_page("#add-passkey", "document.querySelector('#step-up')")
        .await?;
    if !tab.text("#second-factor-intro").await?.contains("To add a passkey") {
        return Err("no step-up before adding a passkey".into());
    }
    if !tab.credentials().await?.is_empty() {
        return Err("a passkey was created without a step-up".into());
    }
    // A step-up with the app; then the codes can be replaced.
    tab.goto("/settings").await?;
    tab.click_to_page("#add-backup-codes", "document.querySelector('#step-up')")
        .await?;
    tab.fill("#totp-code", &fresh_totp(&secret, confirmed_step)?).await?;
    tab.click_to_page("#verify-totp", "document.querySelector('#notice')")
        .await?;
    if !tab
        .text("#notice")
        .await?
        .contains("You can generate new backup codes now")
    {
        return Err(format!("after the step-up: {:?}", tab.text("#notice").await?));
    }
    let new_codes = generate_codes(&tab).await?;
    if new_codes.len() != codes.len() || new_codes == codes {
        return Err("the codes were not replaced after the step-up".into());
    }
    tab.close(browser).await;
    Ok(())
}

/// A recovery sign-in (a backup code, the authenticator app lost) replaces the app at once,
/// but cannot delete the old one: that asks for a step-up, with the new app, never with a
/// backup code.
async fn a_recovery_replaces_but_does_not_delete(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("wendy").await?;
    tab.goto("/settings").await?;
    add_totp(&tab).await?;
    let codes = generate_codes(&tab).await?;
    let lost_id: String = tab
        .eval("document.querySelector('#methods tr[data-kind=totp]').dataset.id")
        .await?;
    // The phone is lost: sign in with a backup code.
    tab.sign_out().await?;
    tab.sign_in_with_password("wendy").await?;
    tab.fill("#backup-code", &codes[0]).await?;
    tab.click_to_page("#verify-backup", "location.pathname === '/'").await?;
    // A new app, at once (the recovery's one replacement).
    tab.goto("/settings").await?;
    let (new, confirmed_step) = add_totp(&tab).await?;
    let apps: usize = tab
        .eval("document.querySelectorAll('#methods tr[data-kind=totp]').length")
        .await?;
    if apps != 2 {
        return Err(format!("the replacement app was not added: {apps} apps"));
    }
    // Deleting the lost one: a step-up first, and no backup code on offer.
    tab.click_to_page(
        &format!("#methods tr[data-id='{lost_id}'] .delete"),
        "document.querySelector('#step-up')",
    )
    .await?;
    if tab
        .eval::<bool>("document.querySelector('#backup-code') !== null")
        .await?
    {
        return Err("a backup code is offered to delete another method".into());
    }
    tab.screenshot("recovery-delete-step-up").await?;
    tab.fill("#totp-code", &fresh_totp(&new, confirmed_step)?).await?;
    tab.click_to_page("#verify-totp", "document.querySelector('#notice')")
        .await?;
    if tab.text("#notice").await? != "Deleted." {
        return Err(format!("after the step-up: {:?}", tab.text("#notice").await?));
    }
    let left: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#methods tr[data-kind=totp]')).map(r => r.dataset.id)")
        .await?;
    if left.len() != 1 || left[0] == lost_id {
        return Err(format!("after deleting the lost app: {left:?} (lost {lost_id})"));
    }
    tab.close(browser).await;
    Ok(())
}

/// New backup codes can be kept: copied, downloaded as a text file, printed. Replacing a set
/// asks first and says the old codes stop working; keeping them changes nothing.
async fn backup_codes_are_kept_and_replaced_with_care(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("kate").await?;
    tab.goto("/settings").await?;
    if tab.text("#add-backup-codes").await? != "Generate backup codes" {
        return Err("a first set is not offered as such".into());
    }
    tab.click_to_page("#add-backup-codes", "document.querySelector('#backup-codes')")
        .await?;
    let codes: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#backup-codes code')).map(c => c.textContent)")
        .await?;
    // Download: a text file of the codes, one per line.
    let (name, file): (String, String) = tab
        .eval(
            "(() => { const a = document.querySelector('#download-codes');               return [a.getAttribute('download'), decodeURIComponent(a.href.split(',')[1])]; })()",
        )
        .await?;
    let expected: String = codes.iter().map(|c| format!("{c}\n")).collect();
    if name != "backup-codes.txt" || file != expected {
        return Err(format!("download: {name:?} {file:?}"));
    }
    // Copy and print (the clipboard and the print dialog are watched, not used).
    tab.eval::<bool>(
        "(() => { window.__copied = null; window.__printed = false;           navigator.clipboard.writeText = (t) => { window.__copied = t; return Promise.resolve(); };           window.print = () => { window.__printed = true; }; return true; })()",
    )
    .await?;
    tab.click("#copy-codes").await?;
    tab.wait_in_page("document.querySelector('#codes-status').textContent === 'Copied.'")
        .await?;
    let copied: String = tab.eval("window.__copied").await?;
    tab.click("#print-codes").await?;
    tab.wait_in_page("window.__printed === true").await?;
    if copied != expected {
        return Err(format!("copied {copied:?}"));
    }
    tab.screenshot("codes-keep").await?;
    tab.click_to_page("#codes-saved", "location.pathname === '/settings'")
        .await?;
    // Replacing asks first, and keeping them changes nothing.
    if tab.text("#add-backup-codes").await? != "Replace backup codes" {
        return Err("an existing set is not offered as a replacement".into());
    }
    tab.click_to_page("#add-backup-codes", "document.querySelector('#confirm-replace-codes')")
        .await?;
    let warning = tab.text("#replace-codes-warning").await?;
    if !warning.contains("your current codes stop working") {
        return Err(format!("no warning before replacing: {warning:?}"));
    }
    tab.screenshot("codes-replace-confirm").await?;
    tab.click_to_page("#cancel-replace-codes", "location.pathname === '/settings'")
        .await?;
    let count: String = tab
        .eval("document.querySelector('#methods tr[data-kind=backup_codes] .status').textContent")
        .await?;
    if !count.contains(&codes.len().to_string()) {
        return Err(format!("keeping the codes changed them: {count:?}"));
    }
    let new_codes = generate_codes(&tab).await?;
    if new_codes.len() != codes.len() || new_codes.iter().any(|c| codes.contains(c)) {
        return Err("the confirmed replacement did not give new codes".into());
    }
    tab.close(browser).await;
    Ok(())
}

/// Required enrollment: a new account is asked for a second method and may skip it until its
/// deadline; once an administrator's `mfactl deadline` puts the deadline in the past, the
/// devices page comes first; a method set up ends the prompt.
async fn a_required_enrollment_is_skipped_until_its_deadline(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("lena").await?;
    tab.goto("/").await?;
    let banner = tab.text("#enroll-banner").await?;
    if !banner.contains("second sign-in method") || !banner.contains("skip") {
        return Err(format!("no enrollment prompt for a new account: {banner:?}"));
    }
    // Skipped: the site works.
    if tab.path().await? != "/" || tab.text("#welcome").await?.is_empty() {
        return Err("the prompt could not be skipped before the deadline".into());
    }
    // An administrator moves the deadline into the past.
    let db = DATABASE.get().ok_or("no database")?;
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let mfactl = workspace_target().join(profile).join("mfactl");
    let past = SystemClock.now().as_secs() - 60;
    let out = Command::new(&mfactl)
        .arg("--db")
        .arg(db)
        .args(["deadline", "lena", &past.to_string()])
        .output()
        .await
        .map_err(err)?;
    if !out.status.success() {
        return Err(format!(
            "mfactl deadline: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    tab.goto("/").await?;
    tab.wait_for("location.pathname === '/settings' && document.querySelector('#notice') !== null")
        .await?;
    if !tab.text("#notice").await?.contains("time to skip it has passed") {
        return Err(format!("past the deadline: {:?}", tab.text("#notice").await?));
    }
    tab.screenshot("enrollment-required").await?;
    // A method set up: the site is open again, without a prompt.
    add_totp(&tab).await?;
    tab.goto("/").await?;
    if tab.path().await? != "/" || !tab.text("#enroll-banner").await?.is_empty() {
        return Err("the prompt stays after a method was set up".into());
    }
    tab.close(browser).await;
    Ok(())
}

/// The enrollment prompt can be skipped three times, each counted by the library; after the
/// last one the next sign-in goes to the devices page first, long before the deadline.
async fn the_last_skip_ends_the_grace(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    for left in [3, 2, 1] {
        tab.sign_in_with_password("nora").await?;
        tab.wait_for("location.pathname === '/' && document.querySelector('#enroll-banner') !== null")
            .await?;
        let banner = tab.text("#enroll-banner").await?;
        let times = if left == 1 { "time" } else { "times" };
        if !banner.contains(&format!("skip this {left} more {times}")) {
            return Err(format!("{left} skips left, but the prompt says {banner:?}"));
        }
        tab.click_to_page(
            "#enroll-skip",
            "location.pathname === '/' && document.querySelector('#notice') !== null",
        )
        .await?;
        let notice = tab.text("#notice").await?;
        let expected = if left == 1 {
            "That was the last time"
        } else {
            "Skipped for now"
        };
        if !notice.contains(expected) || !tab.text("#enroll-banner").await?.is_empty() {
            return Err(format!(
                "after a skip with {left} left: {notice:?}, or the prompt stayed"
            ));
        }
        tab.sign_out().await?;
    }
    tab.sign_in_with_password("nora").await?;
    tab.wait_for("location.pathname === '/settings' && document.querySelector('#notice') !== null")
        .await?;
    if !tab.text("#notice").await?.contains("time to skip it has passed") {
        return Err(format!("after the last skip: {:?}", tab.text("#notice").await?));
    }
    // Skipping again is refused: the home page still sends the user to set one up.
    tab.goto("/").await?;
    tab.wait_for("location.pathname === '/settings'").await?;
    tab.close(browser).await;
    Ok(())
}

/// A host action that requires phishing resistance (the payout account): after a sign-in with
/// the authenticator app, it asks for a step-up with the security key, and the step-up page
/// offers the key alone.
async fn payouts_need_a_security_key(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::SecurityKey).await?;
    tab.sign_in_with_password("mia").await?;
    tab.goto("/settings").await?;
    let (secret, confirmed_step) = add_totp(&tab).await?;
    tab.register("#add-security-key", "Mia's key").await?;
    // A full sign-in with the app.
    tab.sign_out().await?;
    tab.sign_in_with_password("mia").await?;
    tab.fill("#totp-code", &fresh_totp(&secret, confirmed_step)?).await?;
    tab.click_to_page("#verify-totp", "location.pathname === '/'").await?;
    // The payout account: a step-up with the key, not the app.
    tab.goto("/settings").await?;
    tab.fill("#payout-account", "DE89 3704 0044 0532 0130 00").await?;
    tab.click_to_page("#change-payout", "document.querySelector('#step-up')")
        .await?;
    if !tab
        .text("#second-factor-intro")
        .await?
        .contains("To change your payout account")
    {
        return Err(format!("step-up page: {:?}", tab.text("#second-factor-intro").await?));
    }
    let (app, key): (bool, bool) = tab
        .eval("[document.querySelector('#totp-code') !== null, document.querySelector('#use-security-key') !== null]")
        .await?;
    if app || !key {
        return Err(format!("the step-up offers the app {app}, the key {key}"));
    }
    tab.screenshot("payout-step-up").await?;
    tab.click_to_page("#use-security-key", "document.querySelector('#notice')")
        .await?;
    if !tab
        .text("#notice")
        .await?
        .contains("You can change your payout account now")
    {
        return Err(format!("after the step-up: {:?}", tab.text("#notice").await?));
    }
    tab.fill("#payout-account", "DE89 3704 0044 0532 0130 00").await?;
    tab.click_to_page("#change-payout", "document.querySelector('#notice')")
        .await?;
    if !tab.text("#notice").await?.contains("Payout account changed") {
        return Err(format!("after the change: {:?}", tab.text("#notice").await?));
    }
    tab.close(browser).await;
    Ok(())
}

/// Sets up an authenticator app from the devices page and confirms it with a code computed
/// from the secret on the page: the secret, and the time step its first code spent.
async fn add_totp(tab: &Tab) -> Result<(String, u64), String> {
    tab.goto("/settings").await?;
    tab.click_to_page("#add-totp", "document.querySelector('#totp-secret')")
        .await?;
    let secret = tab.text("#totp-secret").await?;
    let confirmed_step = TotpParams::default().step_at(SystemClock.now());
    tab.fill("#totp-confirm-code", &totp_code_at(&secret, confirmed_step)?)
        .await?;
    tab.click_to_page("#confirm-totp", "document.querySelector('#notice')")
        .await?;
    Ok((secret, confirmed_step))
}

/// The newest code in the demo's on-page outbox.
async fn outbox_code(tab: &Tab) -> Result<String, String> {
    let code = tab.text("#outbox .outbox-code").await?;
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the outbox shows {code:?}, not a code"));
    }
    Ok(code)
}

/// An email address as a second factor: added on the devices page and confirmed with the code
/// from the demo's outbox; a sign-in with a code sent on request; the next sign-in refuses the
/// used code and takes the new one.
async fn codes_by_email_from_the_outbox(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.sign_in_with_password("olga").await?;
    tab.goto("/settings").await?;
    tab.fill("#email-address", "olga@example.com").await?;
    tab.click_to_page("#add-email", "document.querySelector('#email-setup') !== null")
        .await?;
    let first = outbox_code(&tab).await?;
    tab.fill("#email-confirm-code", &first).await?;
    tab.click_to_page(
        "#confirm-email",
        "location.pathname === '/settings' && document.querySelector('#notice') !== null",
    )
    .await?;
    let row = tab.text("#methods tr[data-kind='email']").await?;
    if !row.contains("o•••@example.com") || !row.contains("Active") {
        return Err(format!("the devices page lists the address as {row:?}"));
    }
    tab.sign_out().await?;

    let mut used = first;
    for round in 0..2 {
        tab.sign_in_with_password("olga").await?;
        tab.wait_for("location.pathname === '/mfa' && document.querySelector('#send-email-code') !== null")
            .await?;
        tab.click_to_page(
            "#send-email-code",
            "document.querySelector('#notice') !== null && document.querySelector('#outbox .outbox-code') !== null",
        )
        .await?;
        let code = outbox_code(&tab).await?;
        if code == used {
            return Err(format!("round {round}: the outbox still shows the used code"));
        }
        // The used code first: refused, and the page says so.
        tab.fill("#email-code", &used).await?;
        tab.click_to_page("#verify-email", "document.querySelector('#error') !== null")
            .await?;
        let refused = error_shown(&tab).await?;
        if !refused.contains("didn't work") || tab.path().await? != "/mfa/email" {
            return Err(format!("round {round}: a used code gave {refused:?}"));
        }
        tab.fill("#email-code", &code).await?;
        tab.click_to_page("#verify-email", "location.pathname === '/'").await?;
        if tab.signed_in_as().await? != "olga" {
            return Err(format!("round {round}: the emailed code did not sign in"));
        }
        used = code;
        tab.sign_out().await?;
    }
    tab.close(browser).await;
    Ok(())
}

/// The `prf` extension in a real browser: a passkey registered with PRF enabled derives the same
/// output twice for one salt and another for another salt; the demo's note is encrypted in the
/// page under a key derived from it, the server holds only ciphertext, and the note opens again
/// after a reload.
async fn a_note_encrypted_under_a_passkey_prf(browser: &Browser, base: &str) -> Result<(), String> {
    let tab = Tab::open(browser, base, Kind::PlatformPrf).await?;
    tab.sign_in_with_password("petra").await?;
    tab.goto("/settings").await?;
    tab.register("#add-passkey", "Laptop").await?;
    tab.wait_for("document.querySelector('#note-section') !== null").await?;

    let first: String = tab.eval("window.prfOutput('a')").await?;
    let again: String = tab.eval("window.prfOutput('a')").await?;
    let other: String = tab.eval("window.prfOutput('b')").await?;
    if first.len() != 43 || first != again || first == other {
        return Err(format!("PRF outputs: a={first:?}, a again={again:?}, b={other:?}"));
    }

    let note = "meet at noon by the old mill";
    tab.fill("#note-text", note).await?;
    tab.click("#note-save").await?;
    tab.wait_in_page("document.querySelector('#note-status').textContent === 'Saved, encrypted.'")
        .await?;
    let stored: String = tab
        .eval(
            "fetch('/settings/note/load', {method: 'POST', headers: {'Content-Type': 'application/json', \
             'X-CSRF-Token': document.querySelector('meta[name=csrf]').content}, body: '{}'}) \
             .then((r) => r.json()).then((j) => j.ciphertext || '')",
        )
        .await?;
    if stored.is_empty() || stored.contains("noon") {
        return Err(format!("the server holds {stored:?}"));
    }
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&stored)
        .map_err(|e| format!("ciphertext {stored:?}: {e}"))?;
    if decoded.windows(4).any(|w| w == b"noon") || decoded.len() != 12 + note.len() + 16 {
        return Err(format!(
            "the stored note is not AES-GCM ciphertext: {} bytes",
            decoded.len()
        ));
    }

    tab.goto("/settings").await?;
    tab.click("#note-open").await?;
    tab.wait_in_page("document.querySelector('#note-status').textContent === 'Opened.'")
        .await?;
    let opened: String = tab.eval("document.querySelector('#note-text').value").await?;
    if opened != note {
        return Err(format!("the note opened as {opened:?}"));
    }
    tab.close(browser).await;
    Ok(())
}

/// Marks a scenario skipped by `E2E_ONLY` (a debugging aid; never set in CI).
fn continue_marker() {}

/// A passkey registered in Keycloak for this relying party id signs in after `mfactl import`:
/// the authenticator creates the credential as Keycloak's registration page would (user handle
/// = the Keycloak user id's UTF-8), the test writes the `credential` row Keycloak stores
/// (`credentialId` standard base64, `credentialPublicKey` base64url COSE), an administrator
/// imports it into the web example's database, and the next day the same authenticator signs
/// in without a password, as the right user, and the devices page lists it.
async fn imported_keycloak_passkey_signs_in(browser: &Browser, base: &str) -> Result<(), String> {
    const KEYCLOAK_ID: &str = "0d3c2b1a-9f8e-4d7c-b6a5-443322110099";
    let old = Tab::open(browser, base, Kind::Platform).await?;
    // A page without the sign-in script: nothing else talks to the authenticator.
    old.goto("/keycloak/realms/acme/account").await?;
    let create = format!(
        "(() => {{
            const enc = (b) => btoa(String.fromCharCode(...new Uint8Array(b)));
            const url = (b) => enc(b).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
            navigator.credentials.create({{ publicKey: {{
                challenge: crypto.getRandomValues(new Uint8Array(32)),
                rp: {{ id: 'localhost', name: 'Keycloak' }},
                user: {{ id: new TextEncoder().encode({id:?}), name: 'heidi', displayName: 'Heidi' }},
                pubKeyCredParams: [{{ type: 'public-key', alg: -7 }}],
                authenticatorSelection: {{ residentKey: 'required', userVerification: 'required' }},
            }} }}).then((c) => {{
                const auth = new Uint8Array(c.response.getAuthenticatorData());
                const idLen = (auth[53] << 8) | auth[54];
                const counter = (auth[33] << 24) | (auth[34] << 16) | (auth[35] << 8) | auth[36];
                window.__keycloak = JSON.stringify({{ id: enc(c.rawId), key: url(auth.slice(55 + idLen)), counter }});
            }}, (e) => {{ window.__keycloak = JSON.stringify({{ error: String(e) }}); }});
            return true;
        }})()",
        id = KEYCLOAK_ID
    );
    old.eval_once::<bool>(&create).await?;
    old.wait_in_page("window.__keycloak").await?;
    let created: serde_json::Value =
        serde_json::from_str(&old.eval::<String>("window.__keycloak").await?).map_err(err)?;
    if let Some(e) = created.get("error") {
        return Err(format!("the authenticator did not create the credential: {e}"));
    }
    let exported = old.export_credentials().await?;
    old.close(browser).await;

    // Keycloak's row, as `SELECT ... FROM credential` exports it.
    let data = serde_json::json!({
        "aaguid": "00000000-0000-0000-0000-000000000000",
        "credentialId": created["id"],
        "counter": created["counter"],
        "credentialPublicKey": created["key"],
        "attestationStatementFormat": "none",
        "transports": ["internal"],
    });
    let quote = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
    let row = format!(
        "username,user_id,type,user_label,secret_data,credential_data\nheidi,{KEYCLOAK_ID},webauthn-passwordless,{},{},{}\n",
        quote("Keycloak passkey"),
        quote("{}"),
        quote(&data.to_string())
    );
    let db = DATABASE.get().ok_or("no database")?;
    let file = db.with_file_name("keycloak.csv");
    std::fs::write(&file, row).map_err(err)?;
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let mfactl = workspace_target().join(profile).join("mfactl");
    let out = Command::new(&mfactl)
        .arg("--db")
        .arg(db)
        .arg("import")
        .arg(&file)
        .args(["--format", "keycloak", "--rp-id", "localhost"])
        .output()
        .await
        .map_err(err)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("Passkey                    1         0") {
        return Err(format!(
            "mfactl import: {:?}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }

    // The next day, on the same authenticator.
    let tab = Tab::open(browser, base, Kind::Platform).await?;
    tab.goto("/login").await?;
    tab.autofill_settled().await?;
    tab.import_credentials(exported).await?;
    tab.click_to_page("#passkey-sign-in", "location.pathname === '/'")
        .await?;
    tab.wait_for("document.querySelector('#signed-in-user')").await?;
    if tab.signed_in_as().await? != "heidi" {
        return Err(format!(
            "the imported passkey signed in {:?}",
            tab.signed_in_as().await?
        ));
    }
    tab.goto("/settings").await?;
    let rows = methods(&tab).await?;
    if !rows.iter().any(|(k, n, _)| k == "passkey" && n == "Keycloak passkey") {
        return Err(format!("the devices page does not list the imported passkey: {rows:?}"));
    }
    tab.screenshot("imported-keycloak-passkey").await?;
    tab.close(browser).await;
    Ok(())
}

/// WebAuthn Level 3 related origins, in the browser: a passkey registered on
/// `https://example.com` signs in on `https://example.co.uk`, which example.com lists at
/// `/.well-known/webauthn` (Chromium fetches that document from the relying party itself), and
/// the browser refuses it on `https://example.org`, which is not listed.
async fn a_passkey_signs_in_on_a_related_origin(browser: &Browser, _base: &str) -> Result<(), String> {
    // The origin the browser put in the signed client data, kept across the navigation that
    // follows a sign-in (sessionStorage belongs to the origin).
    const RECORD_ORIGIN: &str = "(() => { const get = navigator.credentials.get.bind(navigator.credentials); \
        navigator.credentials.get = async (o) => { const c = await get(o); \
          if (o.mediation !== 'conditional') sessionStorage.signedOrigin = \
            JSON.parse(new TextDecoder().decode(c.response.clientDataJSON)).origin; \
          return c; }; return true; })()";
    let home = Tab::open(browser, "https://example.com", Kind::Platform).await?;
    home.sign_in_with_password("alice").await?;
    if home.signed_in_as().await? != "alice" {
        return Err("password sign-in on https://example.com failed".into());
    }
    home.goto("/settings").await?;
    home.register("#add-passkey", "Laptop").await?;
    let passkey = home.export_credentials().await?;
    if passkey.len() != 1 || passkey[0].rp_id.as_deref() != Some("example.com") {
        return Err(format!(
            "expected one passkey for example.com, the authenticator holds {:?}",
            passkey.iter().map(|c| c.rp_id.clone()).collect::<Vec<_>>()
        ));
    }
    home.close(browser).await;
    let signed_before: Vec<i64> = passkey.iter().map(|c| c.sign_count).collect();

    // The related origin: the same passkey (another browser holding it) signs in.
    let related = Tab::open(browser, "https://example.co.uk", Kind::Platform).await?;
    related.goto("/login").await?;
    related.autofill_settled().await?;
    related.import_credentials(passkey.clone()).await?;
    related.eval::<bool>(RECORD_ORIGIN).await?;
    related
        .click_to_page("#passkey-sign-in", "location.pathname === '/'")
        .await?;
    let origin: String = related.eval("location.origin").await?;
    let signed: String = related.eval("sessionStorage.signedOrigin || ''").await?;
    if related.signed_in_as().await? != "alice" || origin != "https://example.co.uk" || signed != origin {
        return Err(format!(
            "on the related origin: signed in as {:?} on {origin}, client data origin {signed:?}",
            related.signed_in_as().await?
        ));
    }
    // Behind TLS every cookie the site set is Secure: the session, the CSRF token and the
    // known-browser token.
    let cookies = related.page.get_cookies().await.map_err(err)?;
    let names: Vec<&str> = cookies.iter().map(|c| c.name.as_str()).collect();
    if cookies.len() < 3 || cookies.iter().any(|c| !c.secure) {
        return Err(format!(
            "cookies behind TLS: {:?}",
            cookies.iter().map(|c| (&c.name, c.secure)).collect::<Vec<_>>()
        ));
    }
    if !names.contains(&"mfa_demo_session") {
        return Err(format!("no session cookie among {names:?}"));
    }
    // Its signature counter moved (what the check on the unlisted origin below relies on).
    let signed_related = related.sign_counts().await?;
    if signed_related.len() != 1 || signed_related <= signed_before {
        return Err(format!(
            "on the related origin the counters went {signed_before:?} -> {signed_related:?}"
        ));
    }
    related.screenshot("related-origin-signed-in").await?;
    related.close(browser).await;

    // An origin example.com does not list: the browser refuses before any authenticator is
    // asked, and the page says why.
    let unlisted = Tab::open(browser, "https://example.org", Kind::Platform).await?;
    unlisted.goto("/login").await?;
    unlisted.autofill_settled().await?;
    unlisted.import_credentials(passkey).await?;
    unlisted
        .click_in_page(
            "#passkey-sign-in",
            "document.querySelector('#error') && document.querySelector('#error').textContent !== ''",
        )
        .await?;
    let shown = unlisted.text("#error").await?;
    if !shown.contains("not one this site's passkeys are registered for") || unlisted.path().await? != "/login" {
        return Err(format!("on an unlisted origin the page shows {shown:?}"));
    }
    // The browser's own words, from a request for the same relying party id: it fetched
    // example.com's list and did not find this origin in it.
    let refusal: String = unlisted
        .eval(
            "navigator.credentials.get({publicKey: {challenge: new Uint8Array(32), rpId: 'example.com', \
             userVerification: 'preferred'}}).then(() => 'resolved', e => e.name + ': ' + e.message)",
        )
        .await?;
    if !refusal.starts_with("SecurityError") || !refusal.contains(".well-known/webauthn") {
        return Err(format!("on an unlisted origin the browser answered {refusal:?}"));
    }
    // Refused before the authenticator was asked: the passkey signed nothing here.
    let signed_after = unlisted.sign_counts().await?;
    if signed_after != signed_before {
        return Err(format!(
            "on an unlisted origin the authenticator signed: counters {signed_before:?} -> {signed_after:?}"
        ));
    }
    unlisted.close(browser).await;
    Ok(())
}

fn main() -> ExitCode {
    let started = Instant::now();
    let Some(chromium) = chromium() else {
        return libtest::skip_suite(
            "Browser",
            "no Chromium found (/usr/bin/chromium)",
            "Install Debian's `chromium` to run them.",
        );
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results = runtime.block_on(async move {
        let binary = web_binary().await?;
        let server = Server::start(&binary).await?;
        let named = Server::start_named(&binary).await?;
        let front = TlsFront::start(named.port()?).await?;
        let profile = std::env::temp_dir().join(format!("mf-e2e-chromium-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let config = BrowserConfig::builder()
            .chrome_executable(chromium)
            .no_sandbox()
            .new_headless_mode()
            .user_data_dir(&profile)
            // chromiumoxide adds the leading `--` itself.
            .args([
                "disable-gpu",
                "disable-quic",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
            ])
            .args(front.chromium_flags())
            .launch_timeout(Duration::from_secs(60))
            .build()
            .map_err(err)?;
        let (mut browser, mut handler) = Browser::launch(config).await.map_err(err)?;
        let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let base = server.base.clone();
        let browser_ref = &browser;
        macro_rules! run {
            ($($name:ident),* $(,)?) => {{
                let mut results = Vec::new();
                let only = std::env::var("E2E_ONLY").ok();
                $(
                    if only.as_deref().is_some_and(|o| !stringify!($name).contains(o)) {
                        libtest::skipped(stringify!($name), "E2E_ONLY");
                        continue_marker();
                    } else {
                    let result = $name(browser_ref, &base).await;
                    libtest::case(stringify!($name), &result);
                    results.push(result.is_ok());
                    }
                )*
                results
            }};
        }
        let results = run!(
            passkey_register_sign_out_passwordless,
            passkey_button_sign_in,
            password_and_security_key,
            totp_enrollment_and_sign_in,
            backup_code_count_drops,
            rename_and_delete,
            algorithms,
            user_verification_refused,
            tampered_signature,
            credential_of_another_user,
            low_backup_codes_warn_and_the_last_one_says_so,
            background_autofill_fails_silently,
            registration_refusals_say_what_happened,
            devices_table_reads_right,
            second_factor_page_can_be_cancelled,
            malformed_bodies_get_human_errors,
            social_login_does_not_skip_mfa,
            imported_keycloak_passkey_signs_in,
            backup_flags_that_change,
            signals_reach_the_authenticator,
            provider_names_on_the_devices_page,
            the_owner_always_gets_in,
            a_stolen_session_changes_no_factor,
            a_recovery_replaces_but_does_not_delete,
            backup_codes_are_kept_and_replaced_with_care,
            a_required_enrollment_is_skipped_until_its_deadline,
            payouts_need_a_security_key,
            the_last_skip_ends_the_grace,
            codes_by_email_from_the_outbox,
            a_note_encrypted_under_a_passkey_prf,
            a_passkey_signs_in_on_a_related_origin,
        );
        let _ = browser.close().await;
        let _ = browser.wait().await;
        events.abort();
        let _ = std::fs::remove_dir_all(&profile);
        drop(front);
        drop(named);
        drop(server);
        Ok::<_, String>(results)
    });
    let results = match results {
        Ok(r) => r,
        Err(e) => return libtest::setup_failed("browser test setup failed", &e),
    };
    libtest::summary(&results, started)
}
