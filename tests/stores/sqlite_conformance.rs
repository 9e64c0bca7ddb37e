//! The conformance suite, races included, on `SqliteStore` backed by real files.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use multifactor::SqliteStore;

/// A fresh database file for each test, under cargo's per-target temp dir.
fn fresh_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance-sqlite");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

multifactor::conformance_tests!(async { SqliteStore::open(fresh_path()).await.unwrap() });

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_on_one_file() {
    let store = std::sync::Arc::new(SqliteStore::open(fresh_path()).await.unwrap());
    if let Err(e) = multifactor::conformance::run_all(store).await {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_in_memory() {
    let store = std::sync::Arc::new(SqliteStore::open_in_memory().await.unwrap());
    if let Err(e) = multifactor::conformance::run_all(store).await {
        panic!("{e}");
    }
}
