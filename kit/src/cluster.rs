//! The PostgreSQL server the tests and the store bench use: `DATABASE_URL` if set, else a
//! throwaway cluster with `fsync=off` from the locally installed binaries (the load examples'
//! [`pg_cluster`](crate::pg_cluster)), removed when dropped.

use crate::pg_cluster;

/// A server to run against: a URL to reach it, and the cluster if we started it.
pub struct Cluster {
    pub url: String,
    _started: Option<pg_cluster::PgCluster>,
}

/// Why there is no server.
pub enum Missing {
    /// No PostgreSQL server binaries on this machine.
    NoBinaries(String),
}

impl Cluster {
    /// `DATABASE_URL` if set, else a new cluster in a temp dir (about a second).
    pub fn start() -> Result<Result<Self, Missing>, String> {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Ok(Ok(Self { url, _started: None }));
        }
        if !pg_cluster::binaries_available() {
            return Ok(Err(Missing::NoBinaries(
                "no PostgreSQL server binaries (initdb, pg_ctl) found via pg_config or /usr/lib/postgresql/*/bin"
                    .into(),
            )));
        }
        let started = pg_cluster::PgCluster::start("tests", &[("fsync", "off"), ("max_connections", "300")])?;
        Ok(Ok(Self {
            url: started.url("postgres"),
            _started: Some(started),
        }))
    }

    /// The URL of database `name` on this server.
    pub fn database_url(&self, name: &str) -> String {
        match self.url.split_once('?') {
            Some((base, query)) => {
                let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
                format!("{base}/{name}?{query}")
            }
            None => {
                let base = self.url.rsplit_once('/').map_or(self.url.as_str(), |(b, _)| b);
                format!("{base}/{name}")
            }
        }
    }
}
