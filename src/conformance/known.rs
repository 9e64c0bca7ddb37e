//! Known browsers' own failure counters: settled only while the browser's record lives,
//! apart from the user's counter for unknown browsers, and gone with the record.

use super::*;

/// A known browser's record (it skips nothing) of `user`, expiring at `expires`.
fn known_record(user: &UserId, created: u64, expires: u64) -> Result<RememberedBrowserRecord, Failure> {
    Ok(RememberedBrowserRecord {
        skips_second_factor: false,
        ..trusted_record(user, created, expires)?
    })
}

/// A TOTP miss at `now` against `admitted`, on the counter of `browser` (or of unknown
/// browsers), charged as `on_miss`.
fn miss(browser: Option<RememberedBrowserId>, admitted: ThrottleState, on_miss: ThrottleState, now: u64) -> Settle {
    Settle {
        factor: Factor::Totp,
        browser,
        admitted,
        hit: None,
        on_hit: admitted,
        on_miss,
        now: UnixTime::from_secs(now),
        version: None,
    }
}

fn charged(failures: u32, miss: u64) -> ThrottleState {
    ThrottleState {
        failures,
        last_failure_at: Some(UnixTime::from_secs(900 + u64::from(failures))),
        budget_until: None,
        last_miss: Some(miss),
    }
}

/// A known browser's counter ([`Counter::known`]) is its own: a settlement naming the browser
/// charges it and leaves the user's counter for unknown browsers (and another browser's)
/// alone, compares the whole state (the miss fingerprint too, all 64 bits), and hits are
/// accepted through it. It settles only while the user has the browser's record, unexpired
/// ([`Settlement::Stale`] otherwise: another user's record, an expired one, a deleted one).
/// Deleting the record deletes its counters; deleting the user's remembered browsers keeps
/// the known ones and their counters; deleting the known ones takes their counters too.
pub async fn known_browser_counters<S: DeviceStore + BrowserStore>(store: &S) -> CheckResult {
    let alice = fresh_user("alice")?;
    let bob = fresh_user("bob")?;
    let totp = totp_record(&alice, 1)?;
    store.insert_device(totp.clone()).await?;
    let mine = known_record(&alice, 10, 5_000)?;
    let other = known_record(&alice, 11, 5_000)?;
    let expired = known_record(&alice, 12, 999)?;
    let bobs = known_record(&bob, 13, 5_000)?;
    let remembered = trusted_record(&alice, 14, 5_000)?;
    for r in [&mine, &other, &expired, &bobs, &remembered] {
        store.insert_remembered_browser(r.clone()).await?;
    }
    ensure!(
        store.remembered_browser(mine.id).await?.as_ref() == Some(&mine),
        "a known browser's record did not come back field for field"
    );
    let zero = ThrottleState::default();
    let own = Counter::known(Factor::Totp, mine.id);
    // Every bit of the fingerprint is kept (the top one too).
    let one = charged(1, 0x8000_0000_0000_0001);
    let got = store
        .settle_attempt(&alice, &miss(Some(mine.id), zero, one, 1_000))
        .await?;
    ensure!(
        got == Settlement::Charged,
        "a known browser's miss was not charged: {got:?}"
    );
    ensure!(
        store.throttle(&alice, own).await? == one,
        "the known browser's counter does not hold the charge"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp.into()).await? == zero,
        "a known browser's miss reached the counter of unknown browsers"
    );
    ensure!(
        store.throttle(&alice, Counter::known(Factor::Totp, other.id)).await? == zero
            && store
                .throttle(&alice, Counter::known(Factor::BackupCodes, mine.id))
                .await?
                == zero,
        "a known browser's miss reached another counter"
    );
    // The whole state is compared: a fingerprint that differs is a moved counter.
    let stale_fingerprint = ThrottleState {
        last_miss: Some(0x0000_0000_0000_0001),
        ..one
    };
    let got = store
        .settle_attempt(&alice, &miss(Some(mine.id), stale_fingerprint, charged(2, 7), 1_000))
        .await?;
    ensure!(
        got == Settlement::Moved(one),
        "a counter that differs only in its miss fingerprint did not count as moved: {got:?}"
    );
    // A hit is accepted through the browser's counter, which is set to `on_hit`.
    let hit = Settle {
        hit: Some(Hit::TotpStep {
            device: totp.id,
            step: 40,
        }),
        on_hit: one,
        ..miss(Some(mine.id), one, charged(2, 7), 1_000)
    };
    let got = store.settle_attempt(&alice, &hit).await?;
    ensure!(
        got == Settlement::Accepted,
        "a hit through a known browser's counter: {got:?}"
    );
    ensure!(
        store.throttle(&alice, own).await? == one,
        "an accepted hit changed the browser's counter"
    );
    // Only the user's live record settles: another user's, an expired one, none at all.
    for (who, browser, now, what) in [
        (&alice, bobs.id, 1_000, "another user's browser"),
        (&alice, expired.id, 1_000, "an expired browser"),
        (&alice, mine.id, 5_000, "a browser expiring at that moment"),
        (&bob, mine.id, 1_000, "a browser of someone else's"),
    ] {
        let got = store
            .settle_attempt(who, &miss(Some(browser), zero, charged(1, 9), now))
            .await?;
        ensure!(got == Settlement::Stale, "{what} settled: {got:?}");
    }
    ensure!(
        store.throttle(&bob, Counter::known(Factor::Totp, mine.id)).await? == zero
            && store.throttle(&alice, Counter::known(Factor::Totp, bobs.id)).await? == zero,
        "a stale settlement wrote a counter"
    );
    // Deleting the record takes its counters with it, and only its.
    let theirs = Counter::known(Factor::Totp, other.id);
    ensure!(
        store.swap_throttle(&alice, theirs, zero, charged(3, 3)).await?
            && store
                .swap_throttle(&alice, Factor::Totp.into(), zero, charged(4, 4))
                .await?,
        "could not set up the other counters"
    );
    ensure!(
        store.delete_remembered_browser(&alice, mine.id).await?,
        "could not delete the known browser"
    );
    ensure!(
        store.throttle(&alice, own).await? == zero,
        "a deleted known browser's counter stayed behind"
    );
    ensure!(
        store.throttle(&alice, theirs).await? == charged(3, 3)
            && store.throttle(&alice, Factor::Totp.into()).await? == charged(4, 4),
        "deleting one known browser touched other counters"
    );
    let got = store
        .settle_attempt(&alice, &miss(Some(mine.id), zero, one, 1_000))
        .await?;
    ensure!(got == Settlement::Stale, "a deleted known browser settled: {got:?}");
    ensure!(
        store.throttle(&alice, own).await? == zero,
        "a deleted known browser's counter came back"
    );
    // The user's remembered browsers go alone; the known ones (and their counters) stay.
    ensure!(
        store
            .delete_user_remembered_browsers(&alice, Browsers::Remembered)
            .await?
            == 1,
        "deleting the remembered browsers did not report the one there was"
    );
    let left: Vec<RememberedBrowserId> = store
        .list_remembered_browsers(&alice)
        .await?
        .iter()
        .map(|r| r.id)
        .collect();
    ensure!(
        left.len() == 2 && left.contains(&other.id) && left.contains(&expired.id),
        "deleting the remembered browsers touched the known ones: {left:?}"
    );
    ensure!(
        store.throttle(&alice, theirs).await? == charged(3, 3),
        "deleting the remembered browsers took a known browser's counter"
    );
    // The known ones go with their counters; the counter of unknown browsers stays.
    ensure!(
        store.delete_user_remembered_browsers(&alice, Browsers::Known).await? == 2,
        "deleting the known browsers did not report the two there were"
    );
    ensure!(
        store.list_remembered_browsers(&alice).await?.is_empty() && store.throttle(&alice, theirs).await? == zero,
        "deleting the known browsers left a record or a counter"
    );
    ensure!(
        store.throttle(&alice, Factor::Totp.into()).await? == charged(4, 4),
        "deleting the known browsers took the counter of unknown browsers"
    );
    ensure!(
        store.list_remembered_browsers(&bob).await? == vec![bobs.clone()],
        "deleting one user's browsers touched another's"
    );
    Ok(())
}

/// A known browser revoked while [`RACERS`] misses settle on its counter: when the revocation
/// has returned, the browser has no counter left and no settlement can charge one (each racer
/// keeps settling against the state it last saw until the store says the browser is gone).
pub async fn race_known_browser_revoke<S: DeviceStore + BrowserStore + 'static>(store: Arc<S>) -> CheckResult {
    let alice = fresh_user("alice")?;
    let browser = known_record(&alice, 10, 5_000)?;
    store.insert_remembered_browser(browser.clone()).await?;
    let id = browser.id;
    let counter = Counter::known(Factor::Totp, id);
    let outcomes = race_outcomes(&store, {
        let alice = alice.clone();
        move |store, i| {
            let alice = alice.clone();
            async move {
                if i == 0 {
                    // Let the racers charge a few first.
                    tokio::task::yield_now().await;
                    let deleted = store.delete_remembered_browser(&alice, id).await?;
                    return Ok((deleted, 0));
                }
                let mut state = store.throttle(&alice, counter).await?;
                let mut settled = 0;
                for round in 0..50u64 {
                    let next = ThrottleState {
                        failures: state.failures + 1,
                        last_failure_at: Some(UnixTime::from_secs(1_000)),
                        budget_until: None,
                        last_miss: Some(round * 100 + i as u64),
                    };
                    match store
                        .settle_attempt(&alice, &miss(Some(id), state, next, 1_000))
                        .await?
                    {
                        Settlement::Charged => {
                            settled += 1;
                            state = next;
                        }
                        Settlement::Moved(now) => state = now,
                        _ => return Ok((false, settled)),
                    }
                }
                Ok((false, settled))
            }
        }
    })
    .await?;
    ensure!(
        outcomes.first().is_some_and(|o| o.0),
        "the revocation did not find the browser"
    );
    ensure!(
        store.throttle(&alice, counter).await? == ThrottleState::default(),
        "a settlement charged a revoked browser's counter"
    );
    ensure!(
        store
            .settle_attempt(&alice, &miss(Some(id), ThrottleState::default(), charged(1, 1), 1_000))
            .await?
            == Settlement::Stale,
        "a revoked browser settled"
    );
    Ok(())
}
