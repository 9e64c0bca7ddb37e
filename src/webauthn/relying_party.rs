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
    timeout: Duration,
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
            if host != id && !host.ends_with(&format!(".{id}")) {
                return Err(Bad(
                    "the rp id must be each origin's host or a registrable suffix of it",
                ));
            }
            parsed.push(url);
        }
        Ok(Self {
            id: id.to_owned(),
            name: name.to_owned(),
            origins: parsed,
            timeout: Self::DEFAULT_TIMEOUT,
        })
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

    pub(crate) fn origin_urls(&self) -> &[Url] {
        &self.origins
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
                "the rp id must be each origin's host or a registrable suffix of it",
            ),
            (
                "example.com",
                &["https://notexample.com"],
                "the rp id must be each origin's host or a registrable suffix of it",
            ),
            (
                "login.example.com",
                &["https://example.com"],
                "the rp id must be each origin's host or a registrable suffix of it",
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
}
