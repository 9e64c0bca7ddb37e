//! The manual: threat model, every default, and why. Documentation only; no code lives here.
//!
//! # Threat model
//!
//! The crate defends the second factor of a sign-in against:
//!
//! - **Online guessing.** An attacker who knows the password submits codes. Each factor of each
//!   user counts consecutive failures; after 5 free failures every further attempt waits
//!   30 s, doubling per failure up to 1 hour; after 100 consecutive failures the factor is
//!   locked until the host unlocks it ([`Mfa::unlock`](crate::Mfa::unlock) or an admin reset),
//!   as NIST SP 800-63B §5.2.2 requires. A throttled or locked attempt is not evaluated at all.
//!   An attempt's result is revealed only through one atomic, conditional write against the
//!   counter state it was admitted under: a failure is charged by compare-and-swap, and a success
//!   is written only if the counter has not moved (resetting it in the same step). A burst of
//!   parallel guesses therefore gets exactly the free tries and no more, while a verification is
//!   still one write. (WebAuthn charges *before* its signature check, which costs far more than
//!   the write.)
//! - **Replay.** A TOTP code is accepted at most once per device, and never a step older than
//!   the last accepted one (RFC 6238 §5.2). A backup code is consumed once. Both checks are single
//!   atomic store operations: of 64 concurrent requests with the same valid code exactly one is
//!   accepted, on every store (the conformance suite proves it with real races).
//! - **Database theft.** A stolen database holds no usable secret: backup codes only as
//!   `HMAC-SHA256(salt || pepper, code)` with a random 128-bit salt per set (and an optional
//!   pepper kept outside the database); TOTP secrets sealed with XChaCha20-Poly1305 under a key the
//!   host keeps elsewhere, bound to the user and device so that a blob copied into another row
//!   does not open. Note: 60-bit backup codes resist offline guessing only while the pepper or
//!   the rest of the database stays secret; use a pepper if that matters to you.
//! - **Timing.** Codes are compared through `subtle`: TOTP candidates as fixed-width integers for
//!   every step of the window, backup codes as 32-byte digests against every unused slot,
//!   without an early exit.
//! - **Leaks through logs.** Secrets live in zeroizing types with `[REDACTED]` `Debug` and no
//!   `Display`; errors name the rule that was broken, never the input.
//! - **Oracles.** A wrong, replayed, expired or already-used code is one opaque
//!   [`Outcome::Rejected`](crate::Outcome::Rejected). A code of the wrong *shape* (letters in a TOTP code,
//!   a backup code of the wrong length) is an [`InputError::CodeFormat`](crate::InputError::CodeFormat):
//!   the shape is public, no secret is touched, and the attempt is not counted.
//!
//! - **WebAuthn ceremonies.** The state between start and finish never leaves the server: it is
//!   stored under a random 128-bit ceremony id, bound to the user (or to "nobody" for
//!   passwordless) and the ceremony kind, expires after 5 minutes, and is taken out of the store
//!   exactly once, so a replayed, expired or foreign finish is rejected even for synced passkeys
//!   whose counter is always 0. Sign counters are written with a compare-and-swap, so two
//!   parallel sign-ins cannot both pass an old counter. Origins are matched exactly (no
//!   subdomains, no other ports).
//!
//! - **Skipped second factors.** [`Mfa::assurance`](crate::Mfa::assurance) answers "is a second
//!   factor still needed?" the same way for every first factor: a user with any method must use
//!   one; a federated login counts as MFA only for providers the host trusts by name; a passkey
//!   counts only with user verification.
//! - **Stale "remember me".** Remember-this-device tokens are random, stored as keyed hashes,
//!   bound to the user, expiring, revocable, and all revoked when the user's methods change.
//! - **Online guessing over a long time.** Under the default policy an attacker alone gets at
//!   most 100 evaluated TOTP guesses before the lock (probability of success at most 3.0e-4 over
//!   a year, `tests/attacker.rs`). Every success clears the counter, as it must, so an attacker
//!   who guesses between a user's daily sign-ins gets about 34 guesses a day (3.7e-2 a year);
//!   services that expect that threat use a zero window and a daily limit (the test shows
//!   `ThrottlePolicy::new(2, 86_400, 86_400, 100)` with window 0 gives 7.3e-4).
//!
//! Out of scope: the first factor, sessions, and transport security (the host's job); an
//! attacker with the sealing key *and* the database; malware on the user's device.
//!
//! # Defaults and why
//!
//! | setting | default | why |
//! |---|---|---|
//! | backup codes per set | 6 | the common default of the systems users come from; 1..=32 |
//! | backup code length | 12 characters, shown `abcd-efgh-jkmn` | Crockford base32 (no `i l o u`): 60 bits; 12..=32 |
//! | backup code input | case, spaces, hyphens ignored; `o i l` read as `0 1 1` | people copy codes from paper |
//! | TOTP algorithm, digits, period | SHA1, 6, 30 s | what every authenticator app supports |
//! | TOTP window | ±1 step | tolerates 30 s of clock skew or a slow typist; 0..=10 |
//! | new TOTP secret | 160 bits | RFC 4226 §4; imports accept 80 bits, what real sites issue |
//! | throttling | 5 free failures, then 30 s doubling to 1 h, lock at 100 | NIST SP 800-63B §5.2.2 |
//! | sealing | XChaCha20-Poly1305, random 192-bit nonce, key ids | random nonces are safe at this size; ids allow rotation |
//! | WebAuthn ceremony lifetime | 5 minutes | long enough for a security key in a drawer; 30 s..=1 h |
//! | WebAuthn browser timeout | 5 minutes | the same; 10 s..=10 min |
//! | passkeys | UV required, discoverable credential required | a passkey replaces a password and a second factor |
//! | security keys | UV preferred, not discoverable; UV required later if it happened at registration | what webauthn-rs does |
//! | algorithms | ES256, RS256 | what real authenticators use; EdDSA is not verifiable by webauthn-rs-core 0.6.2 |
//! | attestation | `none` | privacy; an allow-list of models is opt-in |
//! | counter regression | rejected | a possible cloned authenticator |
//! | WebAuthn credentials per user | at most 32 | the exclude list stays small |
//! | remember this device | 30 days | a month of a browser without a second factor; 1 h..=400 d |
//! | "backup codes running low" event | 2 or fewer left | time to print new ones |
//!
//! # Enrollment rules
//!
//! - A new TOTP device is unconfirmed until the user proves one current code, and that code
//!   counts as used. Starting a new enrollment removes the user's older unconfirmed ones.
//! - An imported secret (migration from another system) is confirmed at once: the user's app
//!   already holds it.
//! - Generating backup codes replaces the previous set in one atomic store operation.
