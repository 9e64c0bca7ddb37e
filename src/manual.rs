//! The manual: the words, the threat model, every default, and why. Documentation only; no
//! code lives here.
//!
//! # Words
//!
//! One name per concept, in the API, the types, the store and these pages:
//!
//! - **Device**: one thing a user enrolled to pass the second factor: an authenticator app
//!   (TOTP), a set of backup codes, a security key or a passkey ([`DeviceKind`](crate::DeviceKind),
//!   [`DeviceId`](crate::DeviceId), [`Mfa::list_devices`](crate::Mfa::list_devices),
//!   [`DeviceStore`](crate::DeviceStore)). authentik and django-otp use the same word; the web
//!   example's settings page is "MFA devices". Prose may say "sign-in method" to a person; the
//!   code never does.
//! - **Factor**: what failures are counted against, per user: backup codes, TOTP, WebAuthn
//!   ([`Factor`](crate::Factor)). Several devices can prove one factor.
//! - **Credential**: only WebAuthn's public-key credential inside a security key or passkey
//!   device (its credential id, public key and sign counter).
//! - **Remembered browser**: a browser the user asked to skip the second factor on, for a while
//!   ([`RememberedBrowserToken`](crate::remembered_browser::RememberedBrowserToken)). It is not a device: it proves
//!   nothing by itself, and every device change forgets it. Its records, and known browsers',
//!   live in `mfa_browsers`. (Their hashes keep the MAC label `trusted-device` of the first
//!   schema: it is a domain separator nobody sees, and a new one would end every stored token.)
//! - **Known browser**: a browser that completed a full sign-in and holds the token
//!   [`Mfa::know_browser`](crate::Mfa::know_browser) gave it. It skips nothing: it only has a
//!   failure counter of its own, so that guesses made elsewhere never slow it down. Every full
//!   sign-in replaces its token. An attempt without a live token of the user's comes from an
//!   **unknown browser**.
//! - **Counter**: what failures are charged to ([`Counter`](crate::store::Counter)): per user
//!   and factor, one for unknown browsers and one for each known browser.
//!
//! # Threat model
//!
//! The crate defends the second factor of a sign-in against:
//!
//! - **Online guessing, throttled by what a guess can win.** An attacker who knows the password
//!   submits codes or assertions. How each factor is throttled depends on what one guess can
//!   win ([`Gate`](crate::throttle::Gate)):
//!   - **TOTP** (about 20 bits a guess window: 3 codes in 10^6) is *guessable*. Its counter for
//!     unknown browsers has two limits:
//!     - *consecutive failures*: 5 free, then a wait of 30 s doubling per failure up to 1 hour,
//!       and a lock after 100 until the host unlocks it ([`Mfa::unlock`](crate::Mfa::unlock) or
//!       an admin reset), as NIST SP 800-63B §5.2.2 requires. A success clears them;
//!     - *a failure budget*, which a success does **not** refill: at most 20 failures at once,
//!       one more every 32 hours (a leaky bucket kept as one timestamp). An attacker who
//!       guesses between the owner's daily sign-ins from an unknown browser gets at most
//!       20 + 273.75 answered guesses a year.
//!   - **Backup codes** of 64 bits or more (the default: 13 characters, 65 bits) are
//!     *unguessable*: a right code is never held back. NIST SP 800-63B §5.1.2.2 asks for rate
//!     limiting of look-up secrets only below 64 bits, and the bound comes from entropy: at
//!     10,000 guesses a second for a year against a set of 6, P ≤ 3.2 × 10^11 × 6 / 2^65 ≈
//!     5.1 × 10^-8. Every attempt is evaluated (one keyed hash per code of the set), failures
//!     are counted and audited as before, and [`AuditKind::FailureBudgetLow`](crate::audit::AuditKind::FailureBudgetLow)
//!     still says that someone is guessing. A host that configures codes below 64 bits (12
//!     characters: 60 bits) keeps TOTP's throttle on them.
//!   - **WebAuthn** (a signature) is *unguessable*: every assertion of a ceremony the user really
//!     started is checked, and a failure is counted after the check. On the passwordless path,
//!     where anyone may present a credential id and user handle (neither is secret), nothing is
//!     charged before the signature is verified, and nothing ever holds a valid assertion back.
//!   - **Known browsers** keep the owner out of the attacker's way. After a full sign-in
//!     ([`Mfa::know_browser`](crate::Mfa::know_browser)) the browser holds a token, and its
//!     attempts ([`Mfa::verify_totp_from`](crate::Mfa::verify_totp_from)) are charged to a
//!     counter of its own, which nothing but the token can fill: the owner's browser is never
//!     held back by someone else's guesses, as in Microsoft Entra's smart lockout (familiar and
//!     unfamiliar locations apart) and OWASP's device cookies (lock the device, not the
//!     account). A token takes 10 failures ([`KnownBrowserPolicy`](crate::throttle::KnownBrowserPolicy)),
//!     with no backoff; past them the browser counts as unknown again (its free tries and
//!     backoff still apply: no lock on the owner's first typo past the limit). Successes do not
//!     clear the token's count; each full sign-in replaces the token instead, so a stolen copy
//!     is worth at most 10 evaluated guesses, however often the owner signs in.
//!   - **Every device a code is checked against counts.** A user may have up to 5 TOTP devices
//!     ([`totp::MAX_DEVICES`](crate::totp::MAX_DEVICES)); a code is checked against each, so a
//!     wrong one is charged once per device ([`ThrottlePolicy::charged_by`](crate::throttle::ThrottlePolicy::charged_by)):
//!     `n` devices multiply a guess's chance by `n`, and the bound below holds per user whatever
//!     `n` is.
//!   - **The same wrong code twice is one failure.** Enter pressed twice, a double submit, a
//!     retry after a timeout: a counter keeps a keyed fingerprint of its last charged wrong code
//!     ([`ThrottleState::last_miss`](crate::store::ThrottleState::last_miss): 64 bits of an
//!     HMAC under a keyring key, bound to the user, the counter, the devices and the time step,
//!     never the code), and the same code against the same candidates is answered `Rejected`
//!     without a second charge. It tells nobody anything the first answer did not.
//!
//!   The guarantees, per factor, under the defaults (the figures come from a simulated year on
//!   the manual clock, `tests/service/attacker.rs`; `cargo test --test service the_owner --
//!   --nocapture` prints them):
//!
//!   | who | what holds |
//!   |---|---|
//!   | attacker with the password, no token of the owner's, alone or beside the owner signing in daily on their browser | TOTP: at most 100 answered guesses a year (the lock), P ≤ 3.0 × 10^-4; backup codes: P ≤ 5.1 × 10^-8 from entropy |
//!   | the same, beside an owner without cookies (every attempt unknown) | TOTP: at most 20 + 273.75 (the budget), P ≤ 8.8 × 10^-4 |
//!   | the same attacker holding one stolen known-browser token | at most 10 more (the token's own); if the thief spends them before the owner's next sign-in, that sign-in counts as unknown and clears the consecutive failures once: at most 10 + 293.75 in all, P ≤ 9.1 × 10^-4 (measured: 110, 3.3 × 10^-4) |
//!   | owner on their known browser, during the attack; a typo-prone owner (1–2 typos on 5 days in 7), with and without the attacker | never refused a right code, never kept waiting (measured: 0 s in the year) |
//!   | owner on a new browser during the attack | a backup code and a passkey are accepted at the first try |
//!   | someone with a credential id and user handle but no private key | cannot make a valid assertion wait |
//!
//!   Past the margin (14 typos in a row, beyond the token's 10) the extra ones fall to the
//!   counter of unknown browsers: without an attacker its free tries absorb them; under attack
//!   the owner signs in with another factor that day, which gives the browser a fresh token.
//!   After a stolen token is spent, the owner's next sign-in may need another factor once.
//!
//!   **Load shedding** is not the throttle's job: a flood of attempts is request rate limiting,
//!   per client address or per route, in the host or a tower layer in front of the sign-in
//!   routes, never a lock on the owner. With axum, for instance:
//!
//!   ```text
//!   let sign_in = Router::new()
//!       .route("/mfa", post(verify_second_factor))
//!       .route("/passwordless", post(finish_passwordless))
//!       // per client IP: a burst of 10, then 2 a second (tower_governor)
//!       .layer(GovernorLayer { config: Arc::new(GovernorConfigBuilder::default()
//!           .per_second(2).burst_size(10).finish().unwrap()) })
//!       // and at most 64 in flight for the whole route (tower)
//!       .layer(ConcurrencyLimitLayer::new(64));
//!   ```
//!
//!   A shed request never reaches the crate, so it changes no counter: the owner's next
//!   request is judged as before.
//!
//!   How an attempt is answered: the service reads the counter; an attempt the counter refuses
//!   is answered `Throttled`/`Locked` at once and not evaluated. An admitted attempt is
//!   evaluated (constant time, the whole TOTP window or every backup-code slot) and then
//!   *settled* by one store operation
//!   ([`settle_attempt`](crate::DeviceStore::settle_attempt)) against the counter state it was
//!   admitted under: a match is written (and the consecutive failures cleared) only if the
//!   counter still holds that state, a miss is charged by the same compare-and-swap, and a
//!   counter that moved meanwhile sends the attempt back to be admitted again or refused. So:
//!   - **an attacker learns the result of at most one guess per charged failure** (plus the one
//!     success that ends the attack). Of a burst of B concurrent guesses read under one counter
//!     state, all B may be *evaluated* — up to B evaluations per charged failure — but only
//!     the settled ones are answered by the secret; the others are answered `Throttled`,
//!   - **and a refused correct code looks exactly like a refused wrong one**: the same store
//!     calls, the same statements and round trips (the conformance suite checks the calls for
//!     every store, `pg_load` counts the statements on PostgreSQL's wire), and the same answer.
//!     It is not consumed, and its answer carries nothing the attacker can use.
//!
//!   The settlement is also what makes a verification cheap: one conditional write of one row
//!   (on the SQL stores, each user's state row, `mfa_user_state`, which holds the devices
//!   version, the code factors' counters (each in one column, compared as one value), each
//!   one-time-code device's last accepted step and the backup codes' unused mask: one
//!   `UPDATE … RETURNING` that decides the hit itself, one round trip, one commit, no lock of
//!   its own).
//!   The read before it is skipped for a returning user: each process keeps, per user and code
//!   factor, the devices and counter it last saw
//!   ([`MfaConfig::verification_cache`](crate::MfaConfig::verification_cache), bounded, oldest
//!   out first; sealed secrets and keyed hashes only). The cache decides nothing on its own:
//!   the settlement also carries the devices version the code was evaluated against
//!   ([`DevicesVersion`](crate::store::DevicesVersion): a number every device change
//!   increments in the same step, and a device's first accepted code too), and settles nothing
//!   if it moved (a device added or deleted, a set replaced, an enrollment confirmed, by this
//!   process or another). The verification then reads once and settles again; a code spent
//!   elsewhere meanwhile is refused by the settlement itself; a cached counter that would
//!   refuse is read again before the refusal is answered; a lock set by another server is
//!   found by the settlement. Hit or miss, warm or stale, the store calls are the same
//!   (checked on every store, and on PostgreSQL between two pools).
//!   A known browser's attempt is settled the same way against its own counter, and only while
//!   the browser's record is there and unexpired: a token revoked or replaced on another server
//!   counts as unknown at once, and revoking a browser deletes its counters in the same step.
//! - **A code seen twice.** A replayed TOTP step and a spent backup code are answered
//!   `Rejected` like any wrong code, and recorded as [`AuditKind::CodeReused`](crate::audit::AuditKind::CodeReused)
//!   (SP 800-63B: a reused OTP means someone else may have it). A charged failure that leaves a
//!   quarter of the budget or less is [`AuditKind::FailureBudgetLow`](crate::audit::AuditKind::FailureBudgetLow):
//!   tell the user; their other factors are unaffected.
//! - **Replay.** A TOTP code is accepted at most once per device, and never a step older than
//!   the last accepted one (RFC 6238 §5.2). A backup code is consumed once. Both checks are single
//!   atomic store operations: of 64 concurrent requests with the same valid code exactly one is
//!   accepted, on every store (the conformance suite proves it with real races).
//! - **A wrong key under the right id.** Each key id's check value is kept in the store (an HMAC
//!   under the key, which tells nothing about it); [`Mfa::check_keys`](crate::Mfa::check_keys)
//!   refuses a keyring whose key bytes differ at start, and a backup-code verification checks
//!   its set's key id once per process before it trusts a miss: a key fault is an error for the
//!   host, never a failure charged to the user.
//! - **Database theft.** A stolen database holds no usable secret and nothing to test guesses
//!   against offline: backup codes (60 bits, under SP 800-63B's 112) only as
//!   `HMAC-SHA256(k ‖ salt ‖ set id, user ‖ code)` with `k` derived from a key of the
//!   [`Keyring`](crate::Keyring) (kept outside the database) and a random 128-bit salt per set;
//!   TOTP secrets sealed with XChaCha20-Poly1305 under a keyring key, bound to the user and
//!   device so that a blob copied into another row does not open; remember-this-browser tokens as
//!   keyed hashes bound to the token id, user and expiry, so a row moved to another user or given
//!   a later expiry does not verify. Backup-code sets stored before schema v3 are hashed
//!   `HMAC-SHA256(salt ‖ pepper, code)` and keep working until regenerated;
//!   [`Mfa::rotate_keys`](crate::Mfa::rotate_keys) counts them.
//! - **Timing.** Codes are compared through `subtle`: TOTP candidates as fixed-width integers for
//!   every step of the window, backup codes as 32-byte digests against every unused slot,
//!   without an early exit.
//! - **Leaks through logs.** Secrets live in zeroizing types with `[REDACTED]` `Debug` and no
//!   `Display`; errors name the rule that was broken, never the input.
//! - **Oracles.** A wrong, replayed, expired or already-used code is one opaque
//!   [`Outcome::Rejected`](crate::Outcome::Rejected). A code of the wrong *shape* (letters in a TOTP code,
//!   a backup code of the wrong length) is an [`InputError::CodeFormat`](crate::error::InputError::CodeFormat):
//!   the shape is public, no secret is touched, and the attempt is not counted. 6 to 8 digits
//!   where a backup code was asked for is
//!   [`InputError::AuthenticatorCodeAsBackupCode`](crate::error::InputError::AuthenticatorCodeAsBackupCode),
//!   whose message tells the user they typed the app's code into the wrong field.
//!
//! - **WebAuthn ceremonies.** The state between start and finish of a known user's ceremony
//!   (registration, second factor) never leaves the server: it is stored under a random 128-bit
//!   ceremony id, bound to the user and the ceremony kind, expires after 5 minutes, and is taken
//!   out of the store exactly once, so a replayed, expired or foreign finish is rejected even for
//!   synced passkeys whose counter is always 0. A passwordless sign-in, which anyone may start,
//!   stores nothing at its start: its state travels in the
//!   [`PasswordlessCeremony`](crate::webauthn::PasswordlessCeremony) handle under an HMAC-SHA256 tag of the
//!   current key (the state is no secret: the browser gets the same challenge), with its id and
//!   expiry. The finish checks tag and expiry, then the assertion; only an assertion that
//!   verifies writes a used-marker under the handle's id, inserted atomically, so the handle is
//!   finished once. A flood of starts, or of finishes that do not verify, writes nothing. Sign counters are written with a compare-and-swap, so two
//!   parallel sign-ins cannot both pass an old counter. Origins are matched exactly (no
//!   subdomains, no other ports).
//!
//! - **Skipped second factors.** [`Mfa::assurance`](crate::Mfa::assurance) answers "is a second
//!   factor still needed?" the same way for every first factor: a user with any device must use
//!   one; a federated login counts as MFA only for providers the host trusts by name; a passkey
//!   counts only with user verification.
//! - **Stale "remember me".** Remember-this-browser tokens are random, stored as keyed hashes,
//!   bound to the user, expiring, revocable, and all revoked when the user's devices change.
//! - **Online guessing over a long time.** Under the defaults, simulated for a year on the
//!   manual clock (`tests/service/attacker.rs`), with the table above. Without the budget, an
//!   owner's daily successes from unknown browsers would give the attacker 12,399 answered
//!   guesses a year (3.7e-2). The price of the budget falls on an attacked user only where they
//!   sign in from an unknown browser (a CLI without a stored token, a new laptop): there TOTP
//!   may wait for a refill (up to 32 hours) while backup codes and passkeys keep working. A
//!   CLI can keep its known-browser token in a file to be a known browser too.
//! - **Shared state after a fork or a VM snapshot.** The default generator,
//!   [`OsRng`](crate::OsRng), takes every byte from the operating system: no user-space state
//!   that two copies of a process could both continue.
//!
//! Out of scope: the first factor, sessions, and transport security (the host's job); an
//! attacker with the sealing key *and* the database; malware on the user's device.
//!
//! # Defaults and why
//!
//! | setting | default | why |
//! |---|---|---|
//! | backup codes per set | 6 | the common default of the systems users come from; 1..=32 |
//! | backup code length | 13 characters, shown `abcd-efgh-jkmnp` | Crockford base32 (no `i l o u`): 65 bits, so no throttle is needed (NIST SP 800-63B: 64); one character more than 12 rather than a larger alphabet, which would bring mixed case or look-alikes back; 12..=32 (12 is throttled) |
//! | backup code input | case, spaces, hyphens ignored; `o i l` read as `0 1 1`, `u` as `v` | people copy codes from paper; `u` is not in Crockford's alphabet but is in the RFC 4648 base32 of some imported codes |
//! | TOTP algorithm, digits, period | SHA1, 6, 30 s | what every authenticator app supports |
//! | TOTP window | ±1 step | tolerates 30 s of clock skew or a slow typist; 0..=10 |
//! | TOTP clock drift | followed: the window is centred on each device's clock as its last accepted code showed | a phone whose clock drifts minutes a year keeps working, and a guess still meets 3 codes |
//! | resynchronisation | two consecutive codes, within ±20 steps (TOTP) or 1,000 counter values (HOTP) | a single code from that far would be a far easier guess |
//! | HOTP look-ahead | 10 codes, each failure charged as 4 | RFC 4226 §7.4; the guessing bound is the same |
//! | new TOTP secret | 160 bits | RFC 4226 §4; imports accept 80 bits, what real sites issue |
//! | throttling (TOTP, codes under 64 bits; unknown browsers) | 5 free failures, then 30 s doubling to 1 h, lock at 100 | NIST SP 800-63B §5.2.2 |
//! | failure budget (same) | 20 failures, one more every 32 h; successes do not refill it | ≤ 1e-3 a year against a guesser even with an owner's daily sign-ins from unknown browsers |
//! | known browser | a counter of its own; 10 failures, then unknown; token replaced at every full sign-in, 180 days unused | the owner's browser is never held back by others' guesses; a stolen token is worth 10 guesses |
//! | backup codes of 64 bits or more, WebAuthn | counted and audited, never held back | a guess cannot win; a throttle would only lock the owner out |
//! | the same wrong code again (same step, same devices) | not charged again | it tells nobody anything new |
//! | backup-code hashes | keyed by the keyring (`backup-codes` MAC key), bound to user and set | a database copy alone gives nothing to test guesses against |
//! | sealing | XChaCha20-Poly1305, random 192-bit nonce, key ids | random nonces are safe at this size; ids allow rotation |
//! | random generator | the OS's, every call (`OsRng`) | no state a fork or VM snapshot could duplicate |
//! | WebAuthn ceremony lifetime | 5 minutes | long enough for a security key in a drawer; 30 s..=1 h |
//! | WebAuthn browser timeout | 5 minutes | the same; 10 s..=10 min |
//! | passkeys | UV required, discoverable credential required | a passkey replaces a password and a second factor |
//! | security keys | UV preferred, not discoverable; UV required later if it happened at registration | what webauthn-rs does |
//! | algorithms | EdDSA (Ed25519), ES256, RS256 | what real authenticators use; EdDSA is verified beside webauthn-rs-core, which cannot, with the same checks |
//! | attestation | `none` | privacy; an allow-list of models is opt-in |
//! | counter regression | rejected | a possible cloned authenticator |
//! | WebAuthn credentials per user | at most 32 | the exclude list stays small |
//! | remember this browser | 30 days | a month of a browser without a second factor; 1 h..=400 d |
//! | "backup codes running low" event | 2 or fewer left | time to print new ones |
//! | codes sent by email or SMS | 6 digits, valid 10 minutes, one live per destination | as guessable as a TOTP code, on the same counter; 6..=10 digits, 1 min..=1 h |
//! | sends per destination | 30 s apart (not after a used code), at most 5 an hour | no mail or SMS cannon; 1 s..=1 h apart, 1..=20 a window of 1 min..=1 day |
//! | email addresses and phone numbers per user | at most 5, one waiting for its first code at a time | a small, bounded list of places codes go |
//!
//! # Enrollment rules
//!
//! - A new TOTP device is unconfirmed until the user proves one current code, and that code
//!   counts as used. Starting a new enrollment removes the user's older unconfirmed ones.
//! - A wrong first code is no reason to scan again:
//!   [`Mfa::resume_totp_enrollment`](crate::Mfa::resume_totp_enrollment) returns the same
//!   secret, key URI and QR code for a device still waiting for its first code (never for a
//!   confirmed one), so the host shows the setup again without keeping the secret itself.
//! - The user cannot delete their last usable device
//!   ([`MisuseError::LastDevice`](crate::error::MisuseError::LastDevice)); an administrator can.
//!   [`policy::is_last_device`](crate::policy::is_last_device) is that rule for a page to show
//!   before Delete is pressed; the store still decides at deletion, atomically.
//! - An imported secret (migration from another system) is confirmed at once: the user's app
//!   already holds it. Key URIs, Google Authenticator exports
//!   ([`TotpImport::parse_migration`](crate::totp::TotpImport::parse_migration)) and django-otp or
//!   authentik rows ([`TotpImport::from_django_otp`](crate::totp::TotpImport::from_django_otp)) are
//!   taken; a row's last accepted step stays spent, so a code the old system accepted cannot be
//!   replayed here.
//! - Generating backup codes replaces the previous set in one atomic store operation.
//!
//! # Counter-based codes (HOTP)
//!
//! Some tokens and apps make a code per button press from a counter (RFC 4226) instead of per
//! 30 seconds: YubiKey OATH-HOTP slots, older hardware tokens, and HOTP accounts in Google
//! Authenticator, django-otp and Keycloak. [`Mfa::enroll_hotp`](crate::Mfa::enroll_hotp) sets
//! one up (`otpauth://hotp/…&counter=0`, confirmed by its first code); imports keep the
//! source's counter. Such a device is an authenticator app to everything else: it verifies
//! through [`Mfa::verify_totp`](crate::Mfa::verify_totp), counts as `otp` evidence, and shares
//! TOTP's throttle and known-browser counters.
//!
//! - **Look-ahead.** A code is looked for among the 10 counter values after the last accepted
//!   one (RFC 4226 §7.4; [`TotpConfig::with_look_ahead`](crate::totp::TotpConfig::with_look_ahead),
//!   1..=50), for presses that never reached a sign-in.
//! - **Each code once, in order.** An accepted counter is the device's high-water mark, settled
//!   atomically by the store as a TOTP step is: a code is accepted at most once, the counter
//!   never goes back (the codes skipped over are spent too), and of concurrent verifications of
//!   one code exactly one is accepted.
//! - **The guessing bound holds.** A guess is compared with every code of the window, 10 where
//!   a time-based device's ±1 window has 3, so a wrong code is charged
//!   ⌈look-ahead ÷ (2 × window + 1)⌉ failures (4 with the defaults) against the same budget.
//!   An owner's mistyped codes cost four times as much too: five wrong codes from an unknown
//!   browser reach the budget, and three from a known browser use up its 10 (it then counts as
//!   unknown until the next full sign-in). A site whose users press ahead rarely can take a
//!   look-ahead of 3, where a wrong code costs what a time-based one does. A used code, or one
//!   a concurrent request took first, is no guess and costs one.
//! - **Resynchronisation.** A token pressed far ahead (past the window) is brought back with
//!   two consecutive codes, [`Mfa::resync_otp`](crate::Mfa::resync_otp): they are looked for
//!   within 1,000 counter values ([`TotpConfig::with_resync_limit`](crate::totp::TotpConfig::with_resync_limit),
//!   up to 10,000), in one settled operation that moves the counter to the second code or
//!   charges one failure. Two codes at once are a guess a million times weaker than one.
//! - **Stale copies.** The verification cache keeps no counter-based device: its window starts
//!   at its counter, which another process may have moved, so those are read fresh.
//!
//! # Clock drift
//!
//! A phone's clock drifts, some by minutes a year. Each time-based device's window is centred
//! on its own clock as its last accepted code showed it
//! ([`totp::drift_secs`](crate::totp::drift_secs): the middle of the accepted step less the time
//! it was accepted), and is as wide as ever: a guess meets three codes, so the guessing bound is
//! unchanged. A daily sign-in keeps the window on a clock drifting two minutes a year, or ten,
//! for years (`tests/service/drift.rs`): the window follows to within half a step, and a reader
//! who takes up to 15 seconds is never refused; one who takes nearly the whole 30 seconds is
//! refused now and then, and the next code is accepted. After a long absence, a clock further
//! off than the window reaches is brought back with two consecutive codes
//! ([`Mfa::resync_otp`](crate::Mfa::resync_otp), within ±20 steps,
//! [`TotpConfig::with_resync_steps`](crate::totp::TotpConfig::with_resync_steps)). The offset is read
//! from what the store keeps already (the last accepted step and when), so nothing new is
//! stored, and at most 240 steps (2 hours) are followed.
//!
//! # Codes sent by email or SMS
//!
//! Identity servers offer them (authentik, django-otp, Kratos, Keycloak 26) and some users have
//! nothing else. [`Mfa::enroll_sent_code`](crate::Mfa::enroll_sent_code) adds an email address
//! or phone number (E.164) and makes its first code; the host delivers every code itself
//! (the service returns it, with the destination, in a [`SentCode`](crate::sent_code::SentCode)), and
//! [`Mfa::confirm_sent_code`](crate::Mfa::confirm_sent_code) confirms the destination with it.
//! For a sign-in the host asks for a code ([`Mfa::send_code`](crate::Mfa::send_code)) and
//! checks what the user types ([`Mfa::verify_sent_code`](crate::Mfa::verify_sent_code)).
//!
//! - **What is stored.** The destination sealed (it is personal data) with a keyed fingerprint
//!   that keeps one address from being enrolled twice; the last code sent as a keyed hash bound
//!   to the user, the device, the destination and the code's serial; its expiry; the sends of
//!   the current hour. Never a code, never a destination in the clear.
//! - **One live code, used once.** Sending code `n + 1` supersedes code `n` in the same atomic
//!   write; a code is settled by the same atomic high-water mark as a TOTP step, so of two
//!   concurrent uses exactly one wins, and a used, superseded or expired code is refused with
//!   the one opaque [`Outcome::Rejected`](crate::Outcome::Rejected).
//! - **The guessing bound.** Sent codes share the one-time-code counter
//!   ([`Factor::Totp`](crate::Factor::Totp)) with authenticator apps, its backoff, failure
//!   budget and known-browser counters: a guess is charged whichever code it was typed for, so
//!   an account with an app and a phone number is no easier to guess than one with an app.
//!   A guess while no code is live cannot win and is not charged.
//! - **No cannon.** Sends to one destination are 30 s apart (none after a code was used: whoever
//!   used it received it) and at most 5 an hour; a refused send changes nothing
//!   ([`MisuseError::SendLimit`](crate::error::MisuseError::SendLimit) says when). A user has at most 5
//!   destinations and one waiting for its first code. A stolen session cannot enroll one
//!   without a fresh second factor ([`Action::AddDevice`](crate::authorize::Action::AddDevice)).
//!   The library does not limit how many *different* destinations a host's users enroll over
//!   time: a host that pays per SMS should rate-limit enrollments per account and per client
//!   as well (SMS pumping fraud buys numbers, not inboxes).
//! - **Restricted.** NIST SP 800-63B names SMS a restricted authenticator and does not accept
//!   email as an out-of-band authenticator. What they do **not** protect against: a phishing
//!   page that relays the code (as with any code), SIM swaps and number ports (a thief who takes
//!   the number takes the codes), SS7 interception, malware or a notification preview on the
//!   phone, and anyone who can read the mailbox (whose password is often the account's). They
//!   are listed as [`DeviceKind::Email`](crate::DeviceKind::Email) and
//!   [`DeviceKind::Sms`](crate::DeviceKind::Sms), are `otp` (and `sms`) in `amr`, and satisfy
//!   [`Level::SecondFactor`](crate::authorize::Level::SecondFactor) only:
//!   [`Level::Unrestricted`](crate::authorize::Level::Unrestricted) refuses them, as do the
//!   phishing-resistant levels. Offer them beside an app or a passkey, as a way back in, not as
//!   the strongest thing an account has.
//! - **They do not change stronger factors.** A session whose second factor is a code sent by
//!   email or SMS signs in, but adding or deleting a method, new backup codes and remembering
//!   the browser ask for a step-up with the user's app, key or passkey while they have one
//!   ([`authorize`](crate::authorize)): a mailbox or phone number taken over cannot remove or
//!   outnumber them. A user whose only methods are restricted manages them with those.
//!
//! # Sensitive actions
//!
//! [`Mfa::authorize`](crate::Mfa::authorize) decides whether a session may change the user's
//! factors, or do a sensitive action of the host's, from what the session proved
//! ([`SessionEvidence`](crate::authorize::SessionEvidence)) and the user's devices; the rules
//! are in [`authorize`](crate::authorize). A stolen session cookie is then no stolen account:
//! without a fresh second factor it cannot regenerate the backup codes, delete a device or add
//! its own passkey. The session evidence is kept as text only the service's keys make
//! ([`Mfa::seal_session`](crate::Mfa::seal_session)), so fresh evidence cannot be written by
//! hand.
//!
//! The answers for one user with an authenticator app, a backup-code set, a synced passkey and
//! a device-bound security key (and, for "new user", none; for "codes spent", a spent set only;
//! for "first methods added", an app and codes added in this session after its password, 2 and
//! then 10 minutes after it; for "remembered browser", a password sign-in on a browser that
//! skips the second factor), at the default freshness of 5 minutes. `allowed`, `step-up` (with a device that can),
//! `enroll` (no device can: enroll one first), or denied: `pending` (a second factor is due),
//! `recovery` (recovery required), `used` (the recovery's one replacement is made),
//! `other` (another user's session). "Phishing-resistant" and "device-bound" are host actions
//! that require that level within 5 minutes. This table is checked against the code by a unit
//! test.
//!
//! <!-- authorize-table -->
//!
//! | action | password only | codes spent | new user | first methods added | first methods, 10 min later | TOTP 1 min ago | TOTP 10 min ago | backup code 1 min ago | backup code, device added | passkey 1 min ago | security key 1 min ago | remembered browser | other user |
//! |---|---|---|---|---|---|---|---|---|---|---|---|---|---|
//! | view devices | pending | recovery | allowed | allowed | allowed | allowed | allowed | allowed | allowed | allowed | allowed | allowed | other |
//! | rename a device | pending | recovery | allowed | allowed | allowed | allowed | allowed | allowed | allowed | allowed | allowed | allowed | other |
//! | add an authenticator app | pending | recovery | allowed | allowed | step-up | allowed | step-up | allowed | step-up | allowed | allowed | step-up | other |
//! | add a passkey | pending | recovery | allowed | allowed | step-up | allowed | step-up | allowed | step-up | allowed | allowed | step-up | other |
//! | regenerate backup codes | pending | recovery | allowed | allowed | step-up | allowed | step-up | allowed | allowed | allowed | allowed | step-up | other |
//! | delete a device | pending | recovery | enroll | step-up | step-up | allowed | step-up | step-up | step-up | allowed | allowed | step-up | other |
//! | remember this browser | pending | recovery | enroll | step-up | step-up | allowed | step-up | step-up | step-up | allowed | allowed | step-up | other |
//! | revoke known browsers | pending | recovery | allowed | allowed | allowed | allowed | allowed | allowed | allowed | allowed | allowed | allowed | other |
//! | phishing-resistant | pending | recovery | enroll | enroll | enroll | step-up | step-up | step-up | step-up | allowed | allowed | step-up | other |
//! | device-bound | pending | recovery | enroll | enroll | enroll | step-up | step-up | step-up | step-up | step-up | allowed | step-up | other |
//!
//! <!-- /authorize-table -->
//!
//! Required enrollment is its own answer, asked at sign-in
//! ([`Mfa::enrollment_status`](crate::Mfa::enrollment_status)): under an
//! [`EnrollmentPolicy`](crate::enrollment::EnrollmentPolicy) a user without enough methods may
//! skip the prompt until their deadline, stored the first time they are seen and moved only by
//! an audited administrator's call, and must enroll after it. A policy may also allow a number
//! of skipped prompts ([`EnrollmentPolicy::with_skips`](crate::enrollment::EnrollmentPolicy::with_skips)):
//! each "not now" is counted atomically by [`Mfa::skip_enrollment`](crate::Mfa::skip_enrollment),
//! and the grace ends with the last one or at the deadline, whichever comes first; the same
//! administrator's call counts them from zero again.
//!
//! Three answers that matter most:
//!
//! - **A recovery** (a backup code) replaces one lost authenticator and prints new codes
//!   (counted against what it found when kept with [`Mfa::add_evidence`](crate::Mfa::add_evidence),
//!   so a device from the recovery's own second is not taken for its replacement). It
//!   never counts as fresh for deleting the other devices or remembering the browser: those
//!   ask for a step-up with a device that is not a backup code, such as the one just enrolled.
//! - **An old session** (the second factor 10 minutes ago) may look, rename and revoke, but
//!   changing factors asks for a step-up first.
//! - **Evidence of an enrollment is not a sign-in**: registering a passkey or confirming an app
//!   adds nothing to the session ([`Verified::evidence`](crate::Verified::evidence) is `None`).
//!
//! # Passkeys: what this crate decides
//!
//! - **Algorithms.** EdDSA (Ed25519) is offered first, then ES256 and RS256.
//!   - `webauthn-rs-core` cannot verify Ed25519, so those credentials go through a path beside
//!     it ([`webauthn`](crate::webauthn)). That path makes the same checks with the core's
//!     parsers and differs only in the signature check (`verify_strict`).
//!   - Ed25519 registrations take attestation `none` or `packed` self attestation. A relying
//!     party with an attestation allow-list refuses them, because certificate chains are not
//!     checked on that path.
//! - **Backup flags.** Authenticators change them: a password manager starts syncing, or a
//!   credential was imported without them.
//!   - The default, [`BackupFlagsPolicy::Follow`](crate::webauthn::BackupFlagsPolicy), accepts
//!     the change, records it together with the counter, and emits
//!     [`AuditKind::BackupFlagsChanged`](crate::audit::AuditKind::BackupFlagsChanged). A changed flag is
//!     never a lockout.
//!   - `RefuseEligibilityChange` is for relying parties that admit only device-bound keys.
//!   - [`DeviceInfo::synced`](crate::DeviceInfo::synced) tells a page what to show.
//! - **Evidence and step-up.**
//!   - [`Verified::evidence`](crate::Verified::evidence) is what a session keeps: the device
//!     kind, the time, user verification, and synced or device-bound.
//!   - Its `amr` values follow RFC 8176:
//!     - `otp` for TOTP codes and backup codes;
//!     - `hwk` for a device-bound WebAuthn key, `swk` for a backup-eligible one;
//!     - `user` for every assertion (the user was present);
//!     - `mfa` when the authenticator also verified the user, or a second factor followed the
//!       first.
//!   - `pin` is never claimed: WebAuthn says that the user was verified, not how.
//!   - [`Evidence::is_fresh`](crate::evidence::Evidence::is_fresh) is the step-up check.
//!     5 minutes is a common `max_age` before deleting a device or changing a password; the
//!     web example uses it.
//! - **Signals.** The payloads are the arguments of the browser's `PublicKeyCredential.signal*`
//!   calls. Browsers that lack these calls lose nothing.
//!   - An unknown-credential signal is built only for a credential no user has, so it never
//!     tells a browser to drop a passkey that is still valid.
//!   - Accepted-credential signals list, per user handle, what remains after a deletion or a
//!     reset. Keep the handles ([`Mfa::webauthn_user_handles`](crate::Mfa::webauthn_user_handles))
//!     before you call `admin_reset_user`.
//! - **Related origins.** At most 5 registrable-domain labels, checked when the relying party is
//!   built.
//!   - Labels are found with a built-in list of common two-level public suffixes (`co.uk`,
//!     `com.au`, ...), not the whole Public Suffix List. Under another multi-level suffix a
//!     domain can only be over-counted, which makes the check stricter, never looser.
//!   - Serve [`RelyingParty::well_known_webauthn`](crate::webauthn::RelyingParty::well_known_webauthn) at
//!     `https://{rp id}/.well-known/webauthn`, as `application/json`, on the default HTTPS port
//!     with a certificate the browser trusts: the browser fetches it from the relying party
//!     itself, not from the page's origin, and an origin it does not find there gets a
//!     `SecurityError` before any authenticator is asked.
//!   - Only `https://` related origins are accepted (`http://localhost` only for a `localhost`
//!     relying party), and the server checks the signed origin against the same list, whatever
//!     the browser did.
//! - **Provider names.** No AAGUID list ships:
//!   - the community list has no licence;
//!   - the FIDO Metadata Service forbids redistribution;
//!   - the icons are vendors' logos.
//!
//!   Download the list you are entitled to use and load it
//!   ([`ProviderCatalog`](crate::webauthn::ProviderCatalog)). Refresh it with
//!   [`Providers::replace`](crate::webauthn::Providers::replace).
//! - **Conditional create** (turning a password sign-in into a passkey without a prompt) is
//!   built and tested on the server's side only (below). It is not proven end to end in a
//!   browser: Chromium hands it to Google Password Manager, which a headless browser cannot
//!   set up, so the web example does not offer it.
//!
//! # Keys the server never holds: the `prf` extension
//!
//! A passkey can derive secrets for the page's script (WebAuthn's `prf` extension, on CTAP2's
//! `hmac-secret`): the same salt gives the same 32 bytes on every sign-in with that
//! credential, another salt other bytes, and nobody without the authenticator can compute
//! them. Password managers and end-to-end encrypted apps use them as encryption keys.
//!
//! - [`RegistrationOptions::with_prf`](crate::webauthn::RegistrationOptions::with_prf) asks the
//!   authenticator to enable it; whether it did is recorded from the browser's answer
//!   ([`DeviceInfo::prf`](crate::DeviceInfo::prf)), as a capability only.
//! - [`AuthenticationOptions::with_prf`](crate::webauthn::AuthenticationOptions::with_prf) passes the
//!   host's salts ([`PrfInputs`](crate::webauthn::PrfInputs): `eval` for any credential,
//!   `evalByCredential` per credential).
//! - **The outputs never reach the server.** The browser returns them to the page in
//!   `credential.getClientExtensionResults().prf.results`; `toJSON()` does not include them,
//!   and this crate neither asks for them nor reads them. Derive the key in the page (HKDF,
//!   then AES-GCM in WebCrypto), and send the server only ciphertext. The web example's
//!   "encrypted note" does exactly that.
//! - What it does not give: a key that survives losing the credential. Encrypt the data key
//!   under each of the user's PRF credentials (and a recovery key), not the data itself.
//!
//! # Conditional creation: the passkey upgrade after a password sign-in
//!
//! A browser whose password manager just filled a user's password may create a passkey for
//! them without a prompt (WebAuthn Level 3 conditional mediation for `create()`).
//! [`Mfa::start_conditional_passkey_registration`](crate::Mfa::start_conditional_passkey_registration)
//! starts it; the options carry `"mediation": "conditional"`.
//!
//! - **The rule.** A registration without user presence is accepted only in a ceremony started
//!   that way, and only with attestation `none`, where nothing signs the authenticator data.
//!   Every other ceremony still requires presence, and a conditional ceremony waives nothing
//!   else: challenge, origin, relying party, algorithms and excluded credentials are checked
//!   as ever (`tests/webauthn/conditional.rs` proves both sides with a software
//!   authenticator).
//! - **User verification** is preferred, not required, since there is no gesture. The passkey
//!   is recorded as such, and signs in without a password only with user verification at
//!   that sign-in, like any passkey.
//! - **What the browser part needs.** Call it right after a password sign-in, on the page the
//!   password manager filled, and only where `PublicKeyCredential.getClientCapabilities()`
//!   reports `conditionalCreate`. Pass the options with `mediation: "conditional"` to
//!   `navigator.credentials.create`, and finish the ceremony as any registration. The call
//!   may resolve much later or never, so do not wait on it to go on. A failure is silent:
//!   the user asked for nothing.
//! - Chromium's virtual authenticator cannot run a conditional creation, so the web example
//!   does not offer one. In its shared browser test, a passkey created without a prompt would
//!   also change what the other scenarios find.
//!
//! # Fleet policy: which authenticators an organisation admits
//!
//! [`WebAuthnConfig::with_credential_policy`](crate::webauthn::WebAuthnConfig::with_credential_policy)
//! takes rules per kind of credential ([`CredentialRules`](crate::webauthn::CredentialRules),
//! one set for security keys and one for passkeys):
//!
//! - **device-bound only**: a credential whose key may be synced (backup-eligible) is refused;
//! - **an AAGUID allow-list or deny-list** ([`AaguidRule`](crate::webauthn::AaguidRule)): an
//!   allow-list also refuses authenticators that name no model (a zero AAGUID, as most
//!   software and some platform authenticators send under `attestation: none`);
//! - **attested only**: the credential's attestation must have chained to a trust anchor of the
//!   attestation allow-list ([`WebAuthnConfig::with_attestation_allow_list`](crate::webauthn::WebAuthnConfig::with_attestation_allow_list))
//!   when it was registered; imported credentials never were.
//!
//! The rules apply at registration **and at every sign-in**, to the credential as recorded now:
//! a model added to the deny-list, a rule tightened, or a key that became synced since (its
//! assertion says so, or the store recorded it) is refused from the next sign-in on. The answer
//! is [`Outcome::NotAllowed`](crate::Outcome::NotAllowed) with the
//! [`PolicyRefusal`](crate::webauthn::PolicyRefusal), which may be shown (the person proved
//! they hold the key), and the audit event
//! [`AuditKind::CredentialRefused`](crate::audit::AuditKind::CredentialRefused) with the device; nothing
//! is written (the sign counter stays). A user whose only method is refused this way needs
//! another method or an administrator.
//!
//! When a model is found vulnerable, a security team:
//!
//! 1. adds its AAGUID to the deny-list (no new registration, no sign-in from then on);
//! 2. lists who holds it: [`Mfa::credential_inventory`](crate::Mfa::credential_inventory)
//!    with a [`CredentialFilter`](crate::admin::CredentialFilter) (AAGUID, kind, synced or not,
//!    provider name), a page at a time across all users, or `mfactl credentials --aaguid UUID`;
//! 3. revokes them: [`Mfa::revoke_credentials`](crate::Mfa::revoke_credentials) or
//!    `mfactl revoke-model UUID` deletes every credential of the model, last devices included,
//!    each audited as an administrator's delete, and ends those users' remembered browsers.
//!
//! ## The FIDO Metadata Service (MDS3)
//!
//! The FIDO Alliance publishes what is known of each authenticator model, including revocations
//! and key compromises, as a signed BLOB. The host downloads it (the library fetches nothing),
//! reads it with [`Metadata::from_blob`](crate::webauthn::metadata::Metadata::from_blob) against
//! [`MetadataRoots::fido`](crate::webauthn::metadata::MetadataRoots::fido) and the service's
//! clock, and keeps it in a [`MetadataCatalog`](crate::webauthn::metadata::MetadataCatalog)
//! given to [`CredentialPolicy::with_metadata`](crate::webauthn::CredentialPolicy::with_metadata):
//!
//! - the signature chain must lead to a configured root, the signature must verify, and a BLOB
//!   past its `nextUpdate` is refused; a catalogue takes only a higher serial (`no`), so an
//!   old BLOB cannot be replayed to hide a revocation. Refresh it when `nextUpdate` comes
//!   (monthly); a failed refresh keeps the metadata held;
//! - a model reported `REVOKED`, `USER_VERIFICATION_BYPASS`, `ATTESTATION_KEY_COMPROMISE`,
//!   `USER_KEY_REMOTE_COMPROMISE` or `USER_KEY_PHYSICAL_COMPROMISE` is refused at registration
//!   and at every sign-in ([`PolicyRefusal::Compromised`](crate::webauthn::PolicyRefusal::Compromised)),
//!   from the refresh that brings the report: a later report does not undo a compromise;
//! - [`CredentialRules::certified`](crate::webauthn::CredentialRules::certified) admits only
//!   models with a FIDO certification (most synced passkey providers have none: ask it of
//!   security keys);
//! - [`ProviderCatalog::from_metadata`](crate::webauthn::ProviderCatalog::from_metadata)
//!   gives names and icons from the same content, for hosts licensed to show it.
//!
//! - [`AttestationAllowList::from_metadata`](crate::webauthn::AttestationAllowList::from_metadata) turns
//!   the metadata's attestation roots into the attestation allow-list (compromised models
//!   left out), so that [`CredentialRules::attested`](crate::webauthn::CredentialRules::attested)
//!   verifies attestation against the metadata's trust anchors. The list is part of the
//!   configuration: build the service again when the metadata is refreshed.
//!
//! Not done here: certificate revocation lists of the signing chain are not fetched.
//!
//! # Moving in from another system
//!
//! Users keep their authenticator apps, security keys, passkeys and (where the old system kept
//! them readable) backup codes: nobody enrolls again. [`ImportBatch::parse`](crate::import::ImportBatch::parse)
//! reads one export; [`Mfa::import_batch`](crate::Mfa::import_batch) checks the whole batch
//! against the store and then imports it; `mfactl import FILE --format FORMAT` does both on
//! SQLite or PostgreSQL:
//!
//! ```text
//! mfactl --db postgres://mfa@db/mfa import keycloak.csv --format keycloak --dry-run
//! mfactl --db postgres://mfa@db/mfa import keycloak.csv --format keycloak
//! ```
//!
//! How it behaves:
//!
//! - **All or nothing per batch.** Every bad line is reported first: line number, user, reason,
//!   never the secret. With any, nothing is written and `mfactl` exits with status 2. With
//!   `--skip-bad` (`ImportOptions::skip_bad`), the good lines are imported and the bad ones
//!   still listed.
//! - **Run it twice, get it once.** A secret, backup-code set or credential the user already
//!   has here is reported as present, not added. An interrupted import is completed by
//!   running it again. Each device is one atomic store write.
//! - **As if enrolled here.** TOTP secrets are sealed and backup codes hashed with the keyed
//!   hash. Every device is confirmed, and each import is an `Enrolled` audit event. A TOTP row's
//!   last accepted step and a credential's sign counter carry over.
//! - **Conflicts are found before writing:**
//!   - a credential registered to another user here;
//!   - a different backup-code set the user already has (it is not replaced);
//!   - with `--rp-id` (a WebAuthn configuration), a credential the export says belongs to another
//!     relying party id. A credential works only for the relying party id it was created for:
//!     import WebAuthn only when the new site keeps the old one's id.
//!
//! The user column becomes the [`UserId`](crate::UserId): in the queries below, select your
//! application's user id under the name `username`.
//!
//! ## Keycloak (22 to 26): `--format keycloak`
//!
//! Everything is in the `credential` table. `otp` rows become TOTP devices, or counter-based
//! ones for `"subType":"hotp"`, whose next counter carries over. `webauthn` rows
//! become security keys and `webauthn-passwordless` rows passkeys; their user handle is the
//! Keycloak user id, so `user_id` must be exported. `recovery-authn-codes` rows, which hold only
//! the unsalted SHA-512 of each unused code, become a backup-code set keyed over those digests:
//! the user types the codes they printed (case, spaces and hyphens do not matter), no plaintext
//! is needed, and a copy of this database holds nothing to search the codes with. New codes
//! generated here later are an ordinary set.
//!
//! ```sql
//! \copy (SELECT u.username, u.id AS user_id, c.type, c.user_label, c.secret_data, c.credential_data
//!        FROM credential c JOIN user_entity u ON u.id = c.user_id JOIN realm r ON r.id = u.realm_id
//!        WHERE r.name = 'myrealm'
//!          AND c.type IN ('otp', 'recovery-authn-codes', 'webauthn', 'webauthn-passwordless'))
//!   TO 'keycloak.csv' WITH (FORMAT csv, HEADER)
//! ```
//!
//! What cannot be carried over:
//!
//! - **The TOTP replay mark**: Keycloak keeps it in a cache, not the database.
//! - **Credentials of users federated from LDAP** (`fed_user_credential`), which the query above
//!   does not read.
//!
//! Keycloak keeps no backup flags, so an imported passkey is recorded as not backup-eligible
//! until its first sign-in says otherwise.
//!
//! ## authentik and django-otp
//!
//! - **TOTP devices: `--format django-otp-totp`.** The table is `otp_totp_totpdevice`, or
//!   `authentik_stages_authenticator_totp_totpdevice` for authentik, which names its user
//!   table `authentik_core_user`.
//!
//!   ```sql
//!   \copy (SELECT u.username, d.name, d.key, d.step, d.t0, d.digits, d.last_t
//!          FROM otp_totp_totpdevice d JOIN auth_user u ON u.id = d.user_id WHERE d.confirmed)
//!     TO 'totp.csv' WITH (FORMAT csv, HEADER)
//!   ```
//!
//!   `last_t` becomes the replay mark.
//! - **HOTP devices: `--format django-otp-hotp`.** The table is `otp_hotp_hotpdevice`; its
//!   `counter` (the next one) carries over, so the tokens accepted there stay spent.
//!
//!   ```sql
//!   \copy (SELECT u.username, d.name, d.key, d.digits, d.counter
//!          FROM otp_hotp_hotpdevice d JOIN auth_user u ON u.id = d.user_id WHERE d.confirmed)
//!     TO 'hotp.csv' WITH (FORMAT csv, HEADER)
//!   ```
//! - **Static tokens (backup codes): `--format django-otp-static`.** The tables are
//!   `otp_static_statictoken` and `otp_static_staticdevice`, prefixed
//!   `authentik_stages_authenticator_static_` for authentik. Tokens are plaintext there; here
//!   each user's tokens become one hashed set. Users type them as before: case does not
//!   matter.
//!
//!   ```sql
//!   \copy (SELECT u.username, d.name, t.token FROM otp_static_statictoken t
//!          JOIN otp_static_staticdevice d ON d.id = t.device_id JOIN auth_user u ON u.id = d.user_id)
//!     TO 'static.csv' WITH (FORMAT csv, HEADER)
//!   ```
//! - **authentik WebAuthn devices: `--format authentik-webauthn`.** The table is
//!   `authentik_stages_authenticator_webauthn_webauthndevice`. The user handle authentik
//!   registered is `user.uid`, which authentik computes and does not store, so this export
//!   runs inside authentik (`ak shell < export.py > webauthn.csv`). authentik does not record
//!   which devices are discoverable: the `discoverable` column says so (`true` for passkeys
//!   that sign in without a password; `false`, the default, for security keys).
//!
//!   ```text
//!   import csv, sys
//!   from authentik.stages.authenticator_webauthn.models import WebAuthnDevice
//!   out = csv.writer(sys.stdout)
//!   out.writerow(["username", "user_uid", "name", "credential_id", "public_key",
//!                 "sign_count", "rp_id", "aaguid", "discoverable"])
//!   for d in WebAuthnDevice.objects.select_related("user"):
//!       out.writerow([d.user.username, d.user.uid, d.name, d.credential_id, d.public_key,
//!                     d.sign_count, d.rp_id, d.aaguid, "true"])
//!   ```
//!
//! What cannot be carried over: django-otp's `tolerance` and `drift` (the window and the
//! look-ahead are configured here), `t0` other than 0, throttling state, and WebAuthn transports (authentik
//! does not keep them).
//!
//! ## Authelia (4.38, 4.39): `--format authelia-csv` or `--format authelia-uri`
//!
//! - `authelia storage user totp export csv` writes `issuer,username,algorithm,digits,period,secret`.
//! - `authelia storage user totp export uri` writes one `otpauth://` URI per line; the label's
//!   account is the username.
//!
//! Authelia writes the CSV without quoting, so an issuer containing a comma breaks its rows;
//! use the URI export then.
//!
//! `authelia storage user webauthn export` writes the WebAuthn credentials as YAML:
//! `--format authelia-webauthn`. Each credential keeps its sign counter, AAGUID, transports,
//! backup flags and description; its `rpid` is checked with `--rp-id`. Authelia keeps the user
//! handle apart, in `webauthn_users`, and a passkey signs in without a password only under the
//! handle it was registered with. Add it to each discoverable credential as `user_id`, or such
//! credentials come in as security keys and work as a second factor:
//!
//! ```text
//! authelia storage user webauthn export --file webauthn.yml
//! # per discoverable credential, from
//! #   SELECT username, rpid, userid FROM webauthn_users;
//! yq -i '(.webauthn_credentials[] | select(.username == "bob" and .discoverable)).user_id = "<userid>"' webauthn.yml
//! ```
//!
//! Credentials registered through U2F (`legacy: true`) need the `appid` extension to sign in,
//! which this crate does not offer: they are refused, and their users register again.
//!
//! ## Google Authenticator: `--format google-authenticator`
//!
//! Its "Transfer accounts" QR codes hold `otpauth-migration://offline?data=...` URIs, with
//! several accounts each. Decode each QR code to text and write one line per user:
//! `USER otpauth-migration://...`. HOTP accounts keep their counter (the app raises it before
//! each code, so the exported one is the last code's, and stays spent); MD5 accounts are
//! refused (no authenticator here can check them).
//!
//! ## Any app's key URIs: `--format otpauth`
//!
//! One line per secret: `USER otpauth://totp/...`, or `USER otpauth://hotp/...&counter=N` for
//! a counter-based one (`counter` is the next code's, as the Key URI Format has it).
//!
//! ## An application on webauthn-rs: `--format webauthn-rs`
//!
//! Write one JSON object per line, for example
//! `{"user": "alice", "user_handle": "<base64url>", "kind": "passkey", "name": "Phone", "credential": <the stored Passkey>}`.
//! The stored `Passkey` or `SecurityKey` is its `serde_json` form, `{"cred": {...}}`.
//! `user_handle` is the user's UUID bytes webauthn-rs registered; it is required for passkeys.
//!
//! ## Ory Kratos (v1.x): `--format kratos`
//!
//! The admin API lists identities with their credentials when asked for each type. Write one
//! identity per line; the user is the identity's `id` (the id your application knows its
//! users by):
//!
//! ```text
//! curl -s "$KRATOS_ADMIN_URL/admin/identities?page_size=1000&include_credential=totp&include_credential=lookup_secret&include_credential=webauthn&include_credential=passkey" \
//!   | jq -c '.[]' > kratos.jsonl
//! ```
//!
//! (Follow the `Link` header's next page for more than one page.) `totp` becomes a TOTP device
//! from its key URI; the unused `lookup_secret` recovery codes, which Kratos keeps in plaintext,
//! one hashed backup-code set (none if all were used); `webauthn` credentials security keys, or
//! passkeys when `is_passwordless`, and `passkey` credentials passkeys, under the identity's
//! `user_handle`, with their sign counter, AAGUID, transports, backup flags and display name.
//! Passwords and social logins are not MFA devices and are not read. Kratos keeps no TOTP
//! replay mark.
//!
//! ## Keys this version cannot take
//!
//! WebAuthn keys of algorithms this crate does not offer at registration (ES384, ES512, PS256,
//! SHA-1 RSA) are refused with that reason; EdDSA (Ed25519), ES256 and RS256 are taken.
//!
//! Email addresses and phone numbers that another system sends codes to (authentik's SMS and
//! email stages, django-otp's `EmailDevice` and `otp_twilio`, Kratos's `code` method) are not
//! imported: each system keeps them beside its user profile in its own form, and none keeps a
//! secret that would have to be carried over. Users add the address again here and confirm it
//! with one code (`Mfa::enroll_sent_code`).
