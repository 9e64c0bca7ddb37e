//! A throwaway PostgreSQL cluster from the locally installed binaries, or `DATABASE_URL`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server: a URL to reach it, and (if we started it) the directory to remove.
pub struct Cluster {
    pub url: String,
    dir: Option<PathBuf>,
    bindir: PathBuf,
    as_postgres: bool,
}

/// Why there is no server.
pub enum Missing {
    /// No PostgreSQL server binaries on this machine.
    NoBinaries(String),
}

fn bindir() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_pg_config.into_iter().collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        versions.reverse();
        candidates.extend(versions);
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run(bindir: &Path, as_postgres: bool, program: &str, args: &[&str]) -> Result<(), String> {
    let exe = bindir.join(program);
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = cmd.args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Cluster {
    /// `DATABASE_URL` if set, else a new cluster in a temp dir (about a second).
    pub fn start() -> Result<Result<Self, Missing>, String> {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Ok(Ok(Self {
                url,
                dir: None,
                bindir: PathBuf::new(),
                as_postgres: false,
            }));
        }
        let Some(bindir) = bindir() else {
            return Ok(Err(Missing::NoBinaries(
                "no PostgreSQL server binaries (initdb, pg_ctl) found via pg_config or /usr/lib/postgresql/*/bin"
                    .into(),
            )));
        };
        let as_postgres = is_root();
        // Short: the server's socket path must stay under ~107 bytes.
        let dir = PathBuf::from(format!("/tmp/mfpg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        if as_postgres {
            let out = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("chown: {}", String::from_utf8_lossy(&out.stderr)));
            }
        }
        let data = dir.join("data");
        let log = dir.join("log");
        let d = dir.display().to_string();
        let mut cluster = Self {
            url: String::new(),
            dir: Some(dir.clone()),
            bindir: bindir.clone(),
            as_postgres,
        };
        run(
            &bindir,
            as_postgres,
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        )?;
        let opts = format!("-k {d} -c listen_addresses='' -c fsync=off -c max_connections=300");
        run(
            &bindir,
            as_postgres,
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &log.display().to_string(),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        )?;
        cluster.url = format!("postgres://postgres@localhost/postgres?host={d}");
        Ok(Ok(cluster))
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

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let data = dir.join("data").display().to_string();
            let _ = run(
                &self.bindir,
                self.as_postgres,
                "pg_ctl",
                &["-D", &data, "-m", "immediate", "stop"],
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
