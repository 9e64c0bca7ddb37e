//! The `axum_minimal` example, run as a person would use it: a browser's requests over HTTP,
//! cookies kept between them. Enrollment, the devices as JSON, sign-in with TOTP and with a
//! backup code, and each refusal a person can meet (a code of the wrong shape, a wrong code, a
//! replayed code, a spent backup code, a malformed or unknown device id).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use multifactor::totp::TotpParams;
use multifactor::totp::{code_at, decode_base32_secret};
use multifactor::{Clock, SystemClock};

/// The example, started on a free port with a new database; stopped when dropped.
struct Example {
    child: Child,
    addr: String,
}

impl Example {
    fn start() -> Self {
        // `cargo test` builds the examples next to the test binaries' `deps` directory.
        let exe = std::env::current_exe().unwrap();
        let bin = exe
            .parent()
            .and_then(|d| d.parent())
            .unwrap()
            .join("examples")
            .join("axum_minimal");
        assert!(bin.exists(), "{} not built: run `cargo test`", bin.display());
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("axum-minimal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(bin)
            .env("MFA_SEALING_KEY", "33".repeat(32))
            .env("MFA_DB", dir.join("mfa.db"))
            .env("ADDR", "127.0.0.1:0")
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Self { child, addr }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One response: status, the headers that matter here, the body.
struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
}

/// A browser with a cookie jar, speaking HTTP/1.1 with one connection per request.
struct Browser<'a> {
    example: &'a Example,
    cookies: BTreeMap<String, String>,
}

impl Browser<'_> {
    fn request(&mut self, method: &str, path: &str, form: Option<&str>) -> Reply {
        let mut stream = TcpStream::connect(&self.example.addr).unwrap();
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.example.addr
        );
        if !cookie.is_empty() {
            head.push_str(&format!("Cookie: {}\r\n", cookie.join("; ")));
        }
        let body = form.unwrap_or("");
        if form.is_some() {
            head.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let mut location = None;
        for line in lines {
            let (name, value) = line.split_once(':').unwrap();
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "location" => location = Some(value.to_owned()),
                "set-cookie" => {
                    let pair = value.split(';').next().unwrap();
                    let (k, v) = pair.split_once('=').unwrap();
                    if value.contains("Max-Age=0") {
                        self.cookies.remove(k);
                    } else {
                        self.cookies.insert(k.to_owned(), v.to_owned());
                    }
                }
                _ => {}
            }
        }
        // axum answers with a content length here, never chunked, for these pages.
        Reply {
            status,
            location,
            body: body.to_owned(),
        }
    }

    fn get(&mut self, path: &str) -> Reply {
        self.request("GET", path, None)
    }

    fn post(&mut self, path: &str, form: &str) -> Reply {
        self.request("POST", path, Some(form))
    }

    /// A post that must redirect to `to`.
    fn post_to(&mut self, path: &str, form: &str, to: &str) {
        let reply = self.post(path, form);
        assert_eq!(
            (reply.status, reply.location.as_deref()),
            (303, Some(to)),
            "POST {path}: {}",
            reply.body
        );
    }

    fn signed_in(&mut self) -> bool {
        self.get("/").body.contains("Signed in as alice")
    }
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("{start:?} not in {text}")) + start.len();
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}

#[test]
fn a_person_enrolls_and_signs_in_with_each_factor() {
    let example = Example::start();
    let mut browser = Browser {
        example: &example,
        cookies: BTreeMap::new(),
    };
    assert!(browser.get("/").body.contains("Sign in"));
    let bad = browser.post("/login", "user=alice&password=nope");
    assert!(bad.body.contains("Wrong user or password"), "{}", bad.body);
    assert!(!browser.signed_in());

    // No method yet: the password alone signs in.
    browser.post_to("/login", "user=alice&password=password", "/");
    assert!(browser.signed_in());

    // Enrollment: the key and an inline SVG QR code, then the first code confirms it.
    let setup = browser.get("/setup");
    assert!(setup.body.contains("<svg"), "{}", setup.body);
    assert!(
        !setup.body.contains("<?xml"),
        "the SVG is inlined without a declaration"
    );
    let secret = decode_base32_secret(between(&setup.body, "<code>", "</code>")).unwrap();
    // The code `steps` time steps from now (the window accepts the next one).
    let code = |steps: u64| {
        let at = SystemClock.now().plus_secs(steps * TotpParams::default().period());
        code_at(&secret, &TotpParams::default(), at).expose_secret().to_owned()
    };
    let done = browser.post("/setup", &format!("code={}", code(0)));
    assert!(done.body.contains("Keep these backup codes"), "{}", done.body);
    let codes: Vec<String> = between(&done.body, "<pre>", "</pre>")
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        codes.len() >= 2
            && codes
                .iter()
                .all(|c| c.len() >= 10 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')),
        "{codes:?}"
    );

    // The devices as JSON, and one device by its id from the path.
    let devices: serde_json::Value = serde_json::from_str(&browser.get("/devices").body).unwrap();
    let kinds: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2, "{devices}");
    assert!(kinds.contains(&"totp") && kinds.contains(&"backup_codes"), "{kinds:?}");
    let id = devices[0]["id"].as_str().unwrap().to_owned();
    let one = browser.get(&format!("/devices/{id}"));
    assert_eq!(one.status, 200, "{}", one.body);
    assert!(one.body.contains(&id));
    assert_eq!(
        browser.get("/devices/not-an-id").status,
        400,
        "a malformed id never reaches the handler"
    );
    let flipped = if id.starts_with('0') { "1" } else { "0" };
    let unknown = format!("{flipped}{}", &id[1..]);
    assert_eq!(browser.get(&format!("/devices/{unknown}")).status, 404);

    // Signed out, the password now leads to the second factor.
    browser.post_to("/logout", "", "/");
    assert!(!browser.signed_in());
    browser.post_to("/login", "user=alice&password=password", "/mfa");
    assert!(browser.get("/mfa").body.contains("enter the code"));
    assert_eq!(
        browser.get("/devices").status / 100,
        4,
        "the second factor is still due"
    );

    // A code of the wrong shape gets a message meant for the person; a wrong code is refused.
    let shape = browser.post("/mfa", "code=12");
    assert!(
        shape.body.contains("Try again") && !shape.body.contains("did not work"),
        "{}",
        shape.body
    );
    // The enrollment spent this step's code: the next step's is the one to type.
    let used = code(1);
    let wrong = if used == "000000" || code(0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let refused = browser.post("/mfa", &format!("code={wrong}"));
    assert!(refused.body.contains("did not work"), "{}", refused.body);
    assert!(!browser.signed_in());

    // The right code signs in, and makes this browser a known one.
    browser.post_to("/mfa", &format!("code={used}"), "/");
    assert!(browser.signed_in());
    assert!(
        browser.cookies.contains_key("mfa_known"),
        "{:?}",
        browser.cookies.keys()
    );

    // The same code again is a replay.
    browser.post_to("/logout", "", "/");
    browser.post_to("/login", "user=alice&password=password", "/mfa");
    let replay = browser.post("/mfa", &format!("code={used}"));
    assert!(replay.body.contains("did not work"), "{}", replay.body);
    assert!(!browser.signed_in());

    // A backup code signs in once.
    browser.post_to("/mfa", &format!("backup=true&code={}", codes[0]), "/");
    assert!(browser.signed_in());
    browser.post_to("/logout", "", "/");
    browser.post_to("/login", "user=alice&password=password", "/mfa");
    let spent = browser.post("/mfa", &format!("backup=true&code={}", codes[0]));
    assert!(spent.body.contains("did not work"), "{}", spent.body);
    browser.post_to("/mfa", &format!("backup=true&code={}", codes[1]), "/");
    assert!(browser.signed_in());
}
