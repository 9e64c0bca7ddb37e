//! TOTP clock drift: the window follows each device's clock as its accepted codes show it,
//! stays three codes wide, and a device further off comes back only with two consecutive codes.

use multifactor::totp::{self, code_at, drift_secs};
use multifactor::totp::{TotpConfig, TotpParams};
use multifactor::{DeviceId, DeviceStore as _, ManualClock, MfaConfig, Outcome, SecretBytes, UnixTime, UserId};
use multifactor_kit::service::{TestMfa, setup, setup_with, user};

const DAY: u64 = 86_400;
const YEAR: u64 = 365 * DAY;

/// The code a device whose clock is `offset` seconds off shows `typing` seconds before `now`.
fn shown(secret: &SecretBytes, now: UnixTime, offset: i64, typing: u64) -> String {
    let device = now.as_secs().saturating_add_signed(offset).saturating_sub(typing);
    code_at(secret, &TotpParams::default(), UnixTime::from_secs(device))
        .expose_secret()
        .to_owned()
}

async fn enrolled(mfa: &TestMfa, clock: &ManualClock, who: &UserId) -> (DeviceId, SecretBytes) {
    let e = mfa.enroll_totp(who, "x@example.com", None).await.unwrap();
    let secret = totp::decode_base32_secret(e.secret_base32.expose_secret()).unwrap();
    let first = shown(&secret, clock.now(), 0, 0);
    assert!(mfa.confirm_totp(who, e.device, &first).await.unwrap().is_accepted());
    (e.device, secret)
}

async fn learned(mfa: &TestMfa, who: &UserId, device: DeviceId) -> i64 {
    let record = mfa.store().device(who, device).await.unwrap().unwrap();
    match &record.data {
        multifactor::store::DeviceData::Totp(t) => drift_secs(&t.params, t.last_step, record.last_used_at),
        other => panic!("{other:?}"),
    }
}

/// Daily sign-ins for two years from a device whose clock drifts two minutes a year (four
/// minutes in all, eight steps: far outside a fixed ±1 window), either way, and at ten minutes
/// a year: never refused. Reading and typing a code takes up to 15 seconds, varying from day to
/// day (the window follows the clock to within half a step, and the day-to-day difference in
/// typing is what is left of the ±1 step).
#[tokio::test]
async fn a_drifting_clock_is_followed_by_daily_sign_ins() {
    for (rate, years) in [(120i64, 2u64), (-120, 2), (600, 1), (-600, 1)] {
        let (mfa, clock, _) = setup();
        let alice = user("alice");
        let (device, secret) = enrolled(&mfa, &clock, &alice).await;
        let start = clock.now().as_secs();
        for day in 1..=years * 365 {
            clock.advance(DAY + (day * 7919) % 3_600);
            let elapsed = clock.now().as_secs() - start;
            let offset = rate * i64::try_from(elapsed).unwrap() / i64::try_from(YEAR).unwrap();
            let typing = (day * 104_729) % 16;
            let code = shown(&secret, clock.now(), offset, typing);
            let outcome = mfa.verify_totp(&alice, &code).await.unwrap();
            assert!(
                outcome.is_accepted(),
                "rate {rate} s/year, day {day}: clock {offset} s off, typing {typing} s: {outcome:?}"
            );
        }
        // The window moved with the clock: a fixed one would have refused these codes.
        let secs = learned(&mfa, &alice, device).await;
        let expected = rate * i64::try_from(years).unwrap();
        assert!(
            (secs - expected).abs() <= 31,
            "rate {rate}: learned {secs} s, the clock is {expected} s off"
        );
    }
}

/// Past the margin: a reader who takes up to 29 seconds (a code read as it was about to
/// change) is refused now and then on a drifting clock, and the next code, typed at once, is
/// accepted. A fixed window would refuse nearly every day after the first months.
#[tokio::test]
async fn slow_typing_on_a_drifting_clock_degrades_gently() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let (_, secret) = enrolled(&mfa, &clock, &alice).await;
    let start = clock.now().as_secs();
    let rate = -120i64;
    let mut refused = 0;
    for day in 1..=730u64 {
        clock.advance(DAY + (day * 7919) % 3_600);
        let offset =
            |now: UnixTime| rate * i64::try_from(now.as_secs() - start).unwrap() / i64::try_from(YEAR).unwrap();
        let typing = (day * 104_729) % 30;
        let code = shown(&secret, clock.now(), offset(clock.now()), typing);
        if mfa.verify_totp(&alice, &code).await.unwrap().is_accepted() {
            continue;
        }
        refused += 1;
        clock.advance(30);
        let again = shown(&secret, clock.now(), offset(clock.now()), 1);
        let outcome = mfa.verify_totp(&alice, &again).await.unwrap();
        assert!(
            outcome.is_accepted(),
            "day {day}: the next code, typed at once: {outcome:?}"
        );
    }
    assert!(refused <= 15, "{refused} of 730 days refused once");
}

/// After half a year away, a clock that drifted further than the window reaches is refused, and
/// two consecutive codes bring it back; the window stays three codes wide around the new centre.
#[tokio::test]
async fn a_long_absence_needs_two_consecutive_codes() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let (device, secret) = enrolled(&mfa, &clock, &alice).await;
    clock.advance(YEAR / 2);
    // Three minutes fast now: six steps.
    let offset = 180;
    assert_eq!(
        mfa.verify_totp(&alice, &shown(&secret, clock.now(), offset, 0))
            .await
            .unwrap(),
        Outcome::Rejected
    );
    // One code twice, or codes out of order, do not resynchronise.
    let now_code = shown(&secret, clock.now(), offset, 0);
    let next_code = shown(&secret, clock.now(), offset + 30, 0);
    clock.advance(60);
    assert_eq!(
        mfa.resync_otp(&alice, device, &now_code, &now_code).await.unwrap(),
        Outcome::Rejected
    );
    clock.advance(60);
    assert_eq!(
        mfa.resync_otp(&alice, device, &next_code, &now_code).await.unwrap(),
        Outcome::Rejected
    );
    // The app's code now and the next one (30 seconds later).
    let first = shown(&secret, clock.now(), offset, 0);
    let second = shown(&secret, clock.now(), offset + 30, 0);
    clock.advance(30);
    assert!(
        mfa.resync_otp(&alice, device, &first, &second)
            .await
            .unwrap()
            .is_accepted()
    );
    let secs = learned(&mfa, &alice, device).await;
    assert!(
        (secs - offset).abs() <= 30,
        "learned {secs} s, the clock is {offset} s off"
    );
    // Both are spent; the next code is accepted with the window on the clock.
    clock.advance(3_600);
    assert_eq!(mfa.verify_totp(&alice, &second).await.unwrap(), Outcome::Rejected);
    assert!(
        mfa.verify_totp(&alice, &shown(&secret, clock.now(), offset, 0))
            .await
            .unwrap()
            .is_accepted()
    );
    // Three codes wide: the server's own step, six behind the device, is not accepted.
    clock.advance(60);
    assert_eq!(
        mfa.verify_totp(&alice, &shown(&secret, clock.now(), 0, 0))
            .await
            .unwrap(),
        Outcome::Rejected
    );
}

/// A resynchronisation reaches 20 steps (ten minutes) either way by default, and as far as it is
/// configured; a clock further off is refused.
#[tokio::test]
async fn resynchronisation_is_bounded() {
    let (mfa, clock, _) = setup();
    let alice = user("alice");
    let (device, secret) = enrolled(&mfa, &clock, &alice).await;
    clock.advance(3_600);
    let pair = |offset: i64, now: UnixTime| (shown(&secret, now, offset, 0), shown(&secret, now, offset + 30, 0));
    let (a, b) = pair(15 * 60, clock.now());
    assert_eq!(mfa.resync_otp(&alice, device, &a, &b).await.unwrap(), Outcome::Rejected);
    clock.advance(3_600);
    let (a, b) = pair(-8 * 60, clock.now());
    assert!(mfa.resync_otp(&alice, device, &a, &b).await.unwrap().is_accepted());

    let mut config = MfaConfig::new("ACME").unwrap();
    config.totp = TotpConfig::new("ACME").unwrap().with_resync_steps(40).unwrap();
    let (mfa, clock, _) = setup_with(
        multifactor::MemoryStore::new(),
        multifactor_kit::service::keyring("k1", 1),
        config,
    );
    let (device, secret) = enrolled(&mfa, &clock, &alice).await;
    clock.advance(3_600);
    let a = shown(&secret, clock.now(), 15 * 60, 0);
    let b = shown(&secret, clock.now(), 15 * 60 + 30, 0);
    assert!(mfa.resync_otp(&alice, device, &a, &b).await.unwrap().is_accepted());
    assert!(TotpConfig::new("ACME").unwrap().with_resync_steps(0).is_err());
    assert!(TotpConfig::new("ACME").unwrap().with_resync_steps(241).is_err());
}

/// The offset is the middle of the last accepted step less the time of its acceptance, capped
/// at 240 steps; a device never used, or counter-based, has none.
#[test]
fn drift_is_read_from_the_last_accepted_code() {
    let p = TotpParams::default();
    let at = |secs: u64| Some(UnixTime::from_secs(secs));
    assert_eq!(drift_secs(&p, None, at(3_000)), 0);
    assert_eq!(drift_secs(&p, Some(100), None), 0);
    assert_eq!(drift_secs(&p, Some(100), at(3_000)), 15);
    assert_eq!(drift_secs(&p, Some(104), at(3_000)), 135);
    assert_eq!(drift_secs(&p, Some(96), at(3_000)), -105);
    assert_eq!(drift_secs(&p, Some(u64::MAX), at(0)), 7_200);
    assert_eq!(drift_secs(&p, Some(0), at(u64::MAX / 2)), -7_200);
    let hotp = TotpParams::hotp(multifactor::totp::Algorithm::Sha1, 6).unwrap();
    assert_eq!(drift_secs(&hotp, Some(104), at(3_000)), 0);
    assert_eq!(totp::centre_step(&p, UnixTime::from_secs(3_000), -120), 96);
    assert_eq!(totp::centre_step(&p, UnixTime::from_secs(30), -120), 0);
}

/// Two processes on one store: after a resynchronisation in one, the other's kept copy (with
/// the old clock offset) refuses at most one right code, and reads the devices again for the
/// next.
#[tokio::test]
async fn another_process_catches_up_with_a_resynchronisation() {
    let store = multifactor::MemoryStore::new();
    let keys = || multifactor_kit::service::keyring("k1", 1);
    let (a, clock, _) = setup_with(store.clone(), keys(), MfaConfig::new("ACME").unwrap());
    let b = multifactor::Mfa::new(store, keys(), MfaConfig::new("ACME").unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let alice = user("alice");
    let (device, secret) = enrolled(&a, &clock, &alice).await;
    // B keeps a copy from a sign-in.
    clock.advance(3_600);
    assert!(
        b.verify_totp(&alice, &shown(&secret, clock.now(), 0, 0))
            .await
            .unwrap()
            .is_accepted()
    );
    // The phone's clock jumps five minutes ahead; A resynchronises it.
    clock.advance(3_600);
    let offset = 300;
    let first = shown(&secret, clock.now(), offset, 0);
    let second = shown(&secret, clock.now(), offset + 30, 0);
    clock.advance(30);
    assert!(
        a.resync_otp(&alice, device, &first, &second)
            .await
            .unwrap()
            .is_accepted()
    );
    // B: the kept copy may refuse one right code; the next one is read fresh and accepted.
    clock.advance(3_600);
    let _ = b
        .verify_totp(&alice, &shown(&secret, clock.now(), offset, 0))
        .await
        .unwrap();
    clock.advance(3_600);
    let outcome = b
        .verify_totp(&alice, &shown(&secret, clock.now(), offset, 0))
        .await
        .unwrap();
    assert!(outcome.is_accepted(), "{outcome:?}");
}

/// Under a window of 0 a right clock is not moved by where in its step a code was read: daily
/// sign-ins at every phase of the step, typed at once, are all accepted.
#[tokio::test]
async fn a_window_of_zero_keeps_a_right_clock_centred() {
    let mut config = MfaConfig::new("ACME").unwrap();
    config.totp = TotpConfig::new("ACME").unwrap().with_window(0).unwrap();
    let (mfa, clock, _) = setup_with(
        multifactor::MemoryStore::new(),
        multifactor_kit::service::keyring("k1", 1),
        config,
    );
    let alice = user("alice");
    let (_, secret) = enrolled(&mfa, &clock, &alice).await;
    for day in 1..=120u64 {
        clock.advance(DAY + (day * 7) % 30);
        let outcome = mfa
            .verify_totp(&alice, &shown(&secret, clock.now(), 0, 0))
            .await
            .unwrap();
        assert!(outcome.is_accepted(), "day {day}: {outcome:?}");
    }
}

#[test]
fn counter_based_parameters_are_no_enrollment_default() {
    let hotp = TotpParams::hotp(multifactor::totp::Algorithm::Sha1, 6).unwrap();
    assert!(TotpConfig::new("ACME").unwrap().with_params(hotp).is_err());
    assert!(
        TotpConfig::new("ACME")
            .unwrap()
            .with_params(TotpParams::default())
            .is_ok()
    );
}
