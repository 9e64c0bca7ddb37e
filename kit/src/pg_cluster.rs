//! A throwaway PostgreSQL cluster, started from the locally installed binaries with
//! caller-chosen server settings, and stopped (`pg_ctl -m immediate stop`) and removed on drop.
//! The load examples use it directly; the PostgreSQL tests and the store bench through
//! [`cluster`](crate::cluster), which adds `DATABASE_URL`.
//!
//! `DATABASE_URL` is deliberately not honoured here: the load benchmark needs to choose the server's
//! settings (`fsync`, `max_connections`, `shared_buffers`), to run `pgbench` against the same
//! server, and it drops and recreates databases. None of that should happen to a server someone
//! else configured, and a foreign server's settings would make the figures meaningless.
//!
//! When running as root the server programs run as the `postgres` user (`runuser -u postgres
//! --`), which owns the cluster directory. The unix socket lives in a short directory under
//! `/tmp` (socket paths must stay under ~107 bytes); the server listens on no TCP address.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running server that this process started.
pub struct PgCluster {
    dir: PathBuf,
    bindir: PathBuf,
    as_postgres: bool,
}

/// The newest PostgreSQL binary directory: `pg_config --bindir`, else `/usr/lib/postgresql/*/bin`.
fn find_bindir() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_pg_config.into_iter().collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        // Numeric order: "15" after "9.6".
        versions.sort_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.split('.').next())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        versions.reverse();
        candidates.extend(versions);
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists() && d.join("postgres").exists())
}

/// Whether this machine has the server binaries a cluster needs (the tests skip loudly without).
#[allow(dead_code)] // Used by the tests, not by the load example.
pub fn binaries_available() -> bool {
    find_bindir().is_some()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The output of a finished command, or an error naming it with its stdout and stderr.
pub fn checked(program: &str, output: std::io::Result<Output>) -> Result<Output, String> {
    let out = output.map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{program} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl PgCluster {
    /// Initialises and starts a new cluster in `/tmp/mfpg-PID-TAG` with each `(name, value)` of
    /// `settings` passed as `-c name=value` (for example `("fsync", "on")`). Takes a second or two.
    ///
    /// # Errors
    ///
    /// No server binaries, or initdb / pg_ctl failing (with their output).
    pub fn start(tag: &str, settings: &[(&str, &str)]) -> Result<Self, String> {
        let bindir = find_bindir()
            .ok_or("no PostgreSQL server binaries (initdb, pg_ctl) found via pg_config or /usr/lib/postgresql/*/bin")?;
        let as_postgres = is_root();
        let dir = PathBuf::from(format!("/tmp/mfpg-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // From here on, drop stops whatever was started and removes the directory.
        let cluster = Self {
            dir,
            bindir,
            as_postgres,
        };
        if as_postgres {
            checked(
                "chown",
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&cluster.dir)
                    .output(),
            )?;
        }
        let data = cluster.data_dir();
        checked(
            "initdb",
            cluster
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ])
                .output(),
        )?;
        let mut opts = format!("-k {} -c listen_addresses=''", cluster.dir.display());
        for (name, value) in settings {
            opts.push_str(&format!(" -c {name}={value}"));
        }
        checked(
            "pg_ctl start",
            cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(cluster.log_file())
                .args(["-w", "-o", &opts, "start"])
                .output(),
        )?;
        Ok(cluster)
    }

    /// A command running the server binary `program` (initdb, pgbench, psql, ...), as the
    /// `postgres` user when we are root.
    pub fn command(&self, program: &str) -> Command {
        let exe = self.bindir.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// The cluster's directory (owned by the server's user): the unix socket lives here, and
    /// files for server programs (scripts, logs) can go here.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server log (`pg_ctl -l`).
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("log")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The URL of database `name`, as the superuser `postgres`, over the unix socket.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@localhost/{name}?host={}", self.dir.display())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
