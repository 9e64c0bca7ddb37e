//! The lines libtest prints, for the test binaries that run without its harness (the PostgreSQL
//! suite, the browser suite): one check's verdict, a suite skipped loudly (and failed under
//! `CI=true`), a setup that failed, and the summary with the exit status. Only `std`, so the
//! browser suite can include this file without depending on the kit.

use std::process::ExitCode;
use std::time::Instant;

const FAILED_ONE: &str = "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";

/// `test NAME ... ok`, or `... FAILED` and the reason.
pub fn case(name: &str, result: &Result<(), String>) {
    match result {
        Ok(()) => println!("test {name} ... ok"),
        Err(e) => println!("test {name} ... FAILED\n    {e}"),
    }
}

/// `test NAME ... skipped (WHY)`.
pub fn skipped(name: &str, why: &str) {
    println!("test {name} ... skipped ({why})");
}

/// A suite that cannot run here (`what` is missing, `hint` says how to get it): said loudly on
/// stderr, a failure under `CI=true` and an ignored test otherwise.
pub fn skip_suite(suite: &str, why: &str, hint: &str) -> ExitCode {
    eprintln!("\n!!!! {suite} tests SKIPPED: {why}.");
    eprintln!("!!!! {hint}\n");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        eprintln!("CI=true: a skipped {suite} test is a failure.");
        println!("{FAILED_ONE}");
        return ExitCode::FAILURE;
    }
    println!("test result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out");
    ExitCode::SUCCESS
}

/// A suite whose setup failed: one failure.
pub fn setup_failed(what: &str, error: &str) -> ExitCode {
    eprintln!("{what}: {error}");
    println!("{FAILED_ONE}");
    ExitCode::FAILURE
}

/// The summary line of `results` (one `bool` per check: passed) and the exit status.
pub fn summary(results: &[bool], started: Instant) -> ExitCode {
    let passed = results.iter().filter(|ok| **ok).count();
    let failed = results.len() - passed;
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
