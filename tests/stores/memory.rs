//! The public conformance suite, races included, on `MemoryStore`.
#![allow(clippy::panic)]

multifactor::conformance_tests!(async { multifactor::MemoryStore::new() });

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_passes() {
    let store = std::sync::Arc::new(multifactor::MemoryStore::new());
    if let Err(e) = multifactor::conformance::run_all(store).await {
        panic!("{e}");
    }
}
