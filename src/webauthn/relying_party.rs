//! The relying party: who we are to the browser, validated when built.

use std::time::Duration;

use url::{Host, Url};

use crate::error::ConfigError;

/// The relying party: its id (a domain), a display name, the origins pages are served from,
/// and how long the browser may wait for the user.
///
/// Validated when built: every origin is `https` (or `http` on `localhost`), has no path, query
/// or fragment, and the rp id is its host or a registrable suffix of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    id: String,
    name: String,
    origins: Vec<Url>,
    /// Related origins on other registrable domains (WebAuthn Level 3 §5.11), listed in the
    /// `/.well-known/webauthn` document.
    related: Vec<Url>,
    timeout: Duration,
}

/// The most registrable-domain labels a related-origins document may span: WebAuthn Level 3
/// §5.11.1 has browsers check at most this many (`maxLabels` is at least 5) and ignore the rest.
pub const MAX_RELATED_ORIGIN_LABELS: usize = 5;

/// Two-level public suffixes common enough to matter for the label count (the full Public
/// Suffix List is not bundled; a registrable domain under another multi-level suffix is
/// counted by its second-level label, which can only over-count).
const TWO_LEVEL_SUFFIXES: [&str; 16] = [
    "co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au", "org.au", "co.jp", "ne.jp", "or.jp", "co.nz", "com.br",
    "com.cn", "co.in", "co.za", "com.mx",
];

/// The label of an origin's registrable domain: `example` for `login.example.co.uk`.
fn registrable_label(host: &str) -> &str {
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    if n >= 3 {
        let last_two = format!("{}.{}", labels[n - 2], labels[n - 1]);
        if TWO_LEVEL_SUFFIXES.contains(&last_two.as_str()) {
            return labels[n - 3];
        }
    }
    if n >= 2 { labels[n - 2] } else { host }
}

/// Validates one origin (scheme, no path, credentials); returns it and its host.
fn parse_origin(origin: &str) -> Result<(Url, String), ConfigError> {
    use ConfigError::RelyingParty as Bad;
    let url = Url::parse(origin.trim()).map_err(|_| Bad("an origin is not a URL"))?;
    let host = match url.host() {
        Some(Host::Domain(h)) => h.to_owned(),
        Some(_) => return Err(Bad("an origin's host must be a domain name, not an IP address")),
        None => return Err(Bad("an origin has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if host == "localhost" => {}
        _ => return Err(Bad("an origin must be https (http only on localhost)")),
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(Bad("an origin must not have a path, query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Bad("an origin must not have credentials"));
    }
    Ok((url, host))
}

impl RelyingParty {
    /// Default time the browser may wait for the user: 5 minutes.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

    /// A relying party `id` (a domain such as `example.com`) named `name`, serving pages from
    /// `origins` (such as `https://login.example.com`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::RelyingParty`] naming the broken rule.
    pub fn new(id: &str, name: &str, origins: &[&str]) -> Result<Self, ConfigError> {
        use ConfigError::RelyingParty as Bad;
        let id = id.trim();
        if id.is_empty() || id.len() > 253 || id != id.to_ascii_lowercase() || id.ends_with('.') {
            return Err(Bad("rp id must be a lower-case domain name"));
        }
        match Host::parse(id) {
            Ok(Host::Domain(_)) => {}
            Ok(_) => return Err(Bad("rp id must be a domain name, not an IP address")),
            Err(_) => return Err(Bad("rp id must be a lower-case domain name")),
        }
        if id != "localhost" && !id.contains('.') {
            return Err(Bad(
                "rp id must be a registrable domain (like example.com) or localhost",
            ));
        }
        let name =
            crate::id::label(name, 64).ok_or(Bad("rp name must be 1 to 64 characters without control characters"))?;
        if origins.is_empty() {
            return Err(Bad("at least one origin is needed"));
        }
        let mut parsed = Vec::with_capacity(origins.len());
        for origin in origins {
            let (url, host) = parse_origin(origin)?;
            if host != id && !host.ends_with(&format!(".{id}")) {
                return Err(Bad(
                    "the rp id must be each origin's host or a registrable suffix of it (other domains: with_related_origins)",
                ));
            }
            parsed.push(url);
        }
        Ok(Self {
            id: id.to_owned(),
            name: name.to_owned(),
            origins: parsed,
            related: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// Adds related origins on other registrable domains (WebAuthn Level 3 §5.11: a passkey
    /// for `example.com` used on `example.co.uk`). The browser learns them from the document at
    /// `https://{rp id}/.well-known/webauthn` ([`RelyingParty::well_known_webauthn`]), which the
    /// host must serve; the origin check then accepts exactly these origins besides the first.
    ///
    /// # Errors
    ///
    /// [`ConfigError::RelyingParty`] for an origin that breaks the rules of
    /// [`RelyingParty::new`], an `http://` origin unless the relying party id is `localhost`
    /// (a page served in the clear could be anyone's), or when the origins span more than
    /// [`MAX_RELATED_ORIGIN_LABELS`] registrable-domain labels (browsers would ignore the rest).
    pub fn with_related_origins(mut self, origins: &[&str]) -> Result<Self, ConfigError> {
        let mut related = Vec::with_capacity(origins.len());
        for origin in origins {
            let (url, _) = parse_origin(origin)?;
            if url.scheme() != "https" && self.id != "localhost" {
                return Err(ConfigError::RelyingParty(
                    "a related origin must be https (http only for a localhost rp id)",
                ));
            }
            if !self.origins.contains(&url) && !related.contains(&url) {
                related.push(url);
            }
        }
        let mut labels: Vec<&str> = Vec::new();
        for url in self.origins.iter().chain(&related) {
            let label = registrable_label(url.host_str().unwrap_or_default());
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        if labels.len() > MAX_RELATED_ORIGIN_LABELS {
            return Err(ConfigError::RelyingParty(
                "related origins span more than 5 registrable-domain labels: browsers check only the first 5 (WebAuthn §5.11.1)",
            ));
        }
        self.related = related;
        Ok(self)
    }

    /// The related origins (text), as [`RelyingParty::with_related_origins`] set them.
    pub fn related_origins(&self) -> Vec<String> {
        self.related.iter().map(|u| u.origin().ascii_serialization()).collect()
    }

    /// The `/.well-known/webauthn` document for related origins (serve it as
    /// `application/json` at `https://{rp id}/.well-known/webauthn`): `{"origins": [...]}`,
    /// every origin of the relying party, its own first.
    pub fn well_known_webauthn(&self) -> String {
        let origins: Vec<String> = self
            .origins
            .iter()
            .chain(&self.related)
            .map(|u| u.origin().ascii_serialization())
            .collect();
        serde_json::json!({ "origins": origins }).to_string()
    }

    /// How long the browser may wait for the user (10 seconds to 10 minutes).
    ///
    /// # Errors
    ///
    /// [`ConfigError::RelyingParty`] when out of bounds.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout < Duration::from_secs(10) || timeout > Duration::from_secs(600) {
            return Err(ConfigError::RelyingParty("timeout must be 10 seconds to 10 minutes"));
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// The rp id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The allowed origins, as text.
    pub fn origins(&self) -> Vec<String> {
        self.origins.iter().map(|u| u.origin().ascii_serialization()).collect()
    }

    /// Every origin the origin check accepts: the relying party's own, then the related ones.
    pub(crate) fn origin_urls(&self) -> Vec<Url> {
        self.origins.iter().chain(&self.related).cloned().collect()
    }

    /// The browser timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_relying_parties() {
        let rp = RelyingParty::new(
            "example.com",
            "Example",
            &["https://example.com", "https://login.example.com:8443"],
        )
        .unwrap();
        assert_eq!(
            rp.origins(),
            vec!["https://example.com", "https://login.example.com:8443"]
        );
        assert!(RelyingParty::new("localhost", "Dev", &["http://localhost:3000"]).is_ok());
        assert!(RelyingParty::new("auth.example.co.uk", "X", &["https://auth.example.co.uk/"]).is_ok());
    }

    #[test]
    fn invalid_relying_parties_name_the_rule() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("", &["https://example.com"], "rp id must be a lower-case domain name"),
            (
                "Example.com",
                &["https://example.com"],
                "rp id must be a lower-case domain name",
            ),
            (
                "127.0.0.1",
                &["https://127.0.0.1"],
                "rp id must be a domain name, not an IP address",
            ),
            (
                "com",
                &["https://example.com"],
                "rp id must be a registrable domain (like example.com) or localhost",
            ),
            ("example.com", &[], "at least one origin is needed"),
            ("example.com", &["not a url"], "an origin is not a URL"),
            (
                "example.com",
                &["http://example.com"],
                "an origin must be https (http only on localhost)",
            ),
            (
                "example.com",
                &["ftp://example.com"],
                "an origin must be https (http only on localhost)",
            ),
            (
                "example.com",
                &["https://example.com/login"],
                "an origin must not have a path, query or fragment",
            ),
            (
                "example.com",
                &["https://example.com/?a=b"],
                "an origin must not have a path, query or fragment",
            ),
            (
                "example.com",
                &["https://evil.com"],
                "the rp id must be each origin's host or a registrable suffix of it (other domains: with_related_origins)",
            ),
            (
                "example.com",
                &["https://notexample.com"],
                "the rp id must be each origin's host or a registrable suffix of it (other domains: with_related_origins)",
            ),
            (
                "login.example.com",
                &["https://example.com"],
                "the rp id must be each origin's host or a registrable suffix of it (other domains: with_related_origins)",
            ),
            (
                "example.com",
                &["https://[::1]"],
                "an origin's host must be a domain name, not an IP address",
            ),
            (
                "example.com",
                &["https://u:p@example.com"],
                "an origin must not have credentials",
            ),
        ];
        for (id, origins, why) in cases {
            assert_eq!(
                RelyingParty::new(id, "Example", origins),
                Err(ConfigError::RelyingParty(why)),
                "{id} {origins:?}"
            );
        }
        assert!(RelyingParty::new("example.com", "", &["https://example.com"]).is_err());
        let rp = RelyingParty::new("example.com", "E", &["https://example.com"]).unwrap();
        assert!(rp.clone().with_timeout(Duration::from_secs(5)).is_err());
        assert!(rp.clone().with_timeout(Duration::from_secs(601)).is_err());
        assert!(rp.with_timeout(Duration::from_secs(60)).is_ok());
    }

    /// A page served in the clear cannot stand for a real relying party: `http://` related
    /// origins only for a `localhost` one.
    #[test]
    fn related_origins_must_be_https_unless_local() {
        let rp = RelyingParty::new("example.com", "Example", &["https://example.com"]).unwrap();
        for origin in ["http://localhost:3000", "http://localhost"] {
            assert_eq!(
                rp.clone().with_related_origins(&[origin]).err(),
                Some(ConfigError::RelyingParty(
                    "a related origin must be https (http only for a localhost rp id)"
                )),
                "{origin}"
            );
        }
        assert!(rp.clone().with_related_origins(&["http://example.co.uk"]).is_err());
        let local = RelyingParty::new("localhost", "Dev", &["http://localhost:8080"]).unwrap();
        assert!(local.clone().with_related_origins(&["http://localhost:3000"]).is_ok());
        assert!(local.with_related_origins(&["https://example.co.uk"]).is_ok());
    }

    #[test]
    fn related_origins_are_listed_checked_and_bounded() {
        let rp = RelyingParty::new("example.com", "Example", &["https://login.example.com"])
            .unwrap()
            .with_related_origins(&[
                "https://example.co.uk",
                "https://shop.example.de",
                "https://example.co.uk",
            ])
            .unwrap();
        assert_eq!(
            rp.related_origins(),
            ["https://example.co.uk", "https://shop.example.de"]
        );
        assert_eq!(
            rp.well_known_webauthn(),
            r#"{"origins":["https://login.example.com","https://example.co.uk","https://shop.example.de"]}"#
        );
        assert_eq!(rp.origin_urls().len(), 3);
        // Labels: example (×3), and up to four more brands; a sixth is refused.
        let five = [
            "https://a-brand.com",
            "https://b-brand.co.uk",
            "https://c-brand.net",
            "https://d-brand.org",
        ];
        let ok = RelyingParty::new("example.com", "Example", &["https://example.com"])
            .unwrap()
            .with_related_origins(&five)
            .unwrap();
        assert_eq!(ok.related_origins().len(), 4);
        let mut six = five.to_vec();
        six.push("https://e-brand.io");
        assert_eq!(
            RelyingParty::new("example.com", "Example", &["https://example.com"])
                .unwrap()
                .with_related_origins(&six)
                .err(),
            Some(ConfigError::RelyingParty(
                "related origins span more than 5 registrable-domain labels: browsers check only the first 5 (WebAuthn §5.11.1)"
            ))
        );
        // Subdomains of a related domain share its label.
        assert!(
            RelyingParty::new("example.com", "Example", &["https://example.com"])
                .unwrap()
                .with_related_origins(
                    &[
                        &five[..],
                        &["https://www.a-brand.com", "https://login.b-brand.co.uk"][..]
                    ]
                    .concat()
                )
                .is_ok()
        );
        // Related origins obey the origin rules.
        for bad in [
            "http://example.co.uk",
            "https://example.co.uk/path",
            "https://1.2.3.4",
            "not a url",
        ] {
            assert!(
                RelyingParty::new("example.com", "Example", &["https://example.com"])
                    .unwrap()
                    .with_related_origins(&[bad])
                    .is_err(),
                "{bad}"
            );
        }
        assert_eq!(registrable_label("login.example.co.uk"), "example");
        assert_eq!(registrable_label("www.example.com"), "example");
        assert_eq!(registrable_label("localhost"), "localhost");
    }
}
