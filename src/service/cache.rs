//! The verification cache: per process, what a code verification needs to evaluate a code
//! (the user's devices of the factor: sealed TOTP secrets or the backup-code set's keyed
//! hashes, parameters, the last accepted step, which codes are unused) and the failure counter
//! as last seen, so that a returning user's verification is one store operation: the
//! settlement, which refuses a stale counter ([`Settlement::Moved`](crate::store::Settlement))
//! or stale devices ([`Settlement::Stale`](crate::store::Settlement)).
//!
//! Nothing in it is trusted to accept or to refuse: a cached counter that refuses is read
//! again before the refusal is answered, and a cached copy of the devices only decides what the
//! settlement is asked to check. It holds no plaintext secret (TOTP secrets stay sealed,
//! backup codes are keyed hashes). Bounded: past its capacity the oldest entry goes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::id::{RememberedBrowserId, UserId};
use crate::kind::Factor;
use crate::remembered_browser::RememberedBrowserRecord;
use crate::store::{DeviceRecord, DevicesVersion};
use crate::throttle::ThrottleState;

/// Known browsers kept per entry: a user signs in from a few browsers at a time.
const BROWSERS_PER_ENTRY: usize = 4;

/// What a verification reads: the user's devices of one factor and its failure counter.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) devices: Arc<[DeviceRecord]>,
    pub(crate) state: ThrottleState,
    /// The devices version `devices` were read at.
    pub(crate) version: DevicesVersion,
    /// Taken from the cache (else read from the store just now).
    pub(crate) cached: bool,
}

/// A known browser's record as read from the store (its token is checked against it on every
/// use) and its own counter of the entry's factor as last seen.
#[derive(Debug, Clone)]
pub(crate) struct KnownBrowser {
    pub(crate) record: RememberedBrowserRecord,
    pub(crate) state: ThrottleState,
}

type Key = (UserId, Factor);

#[derive(Debug)]
struct Entry {
    seq: u64,
    devices: Arc<[DeviceRecord]>,
    state: ThrottleState,
    version: DevicesVersion,
    /// Newest last.
    browsers: Vec<KnownBrowser>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Insertion order, oldest first; an item whose `seq` no longer matches its entry's is
    /// a leftover of a replaced or removed entry.
    order: VecDeque<(Key, u64)>,
    next_seq: u64,
}

/// A bounded map from (user, factor) to the last [`View`] seen.
#[derive(Debug)]
pub(crate) struct VerifyCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl VerifyCache {
    /// A cache of at most `capacity` entries (0: nothing is kept).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The cache is only ever a copy: a panic while it was held leaves nothing to protect.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The view kept for `user`'s `factor`, if any.
    pub(crate) fn get(&self, user: &UserId, factor: Factor) -> Option<View> {
        if self.capacity == 0 {
            return None;
        }
        let inner = self.lock();
        let entry = inner.entries.get(&(user.clone(), factor))?;
        Some(View {
            devices: Arc::clone(&entry.devices),
            state: entry.state,
            version: entry.version,
            cached: true,
        })
    }

    /// Keeps `devices` (read at `version`) and `state` as `user`'s `factor`, evicting the
    /// oldest entries beyond the capacity.
    pub(crate) fn put(
        &self,
        user: &UserId,
        factor: Factor,
        devices: Arc<[DeviceRecord]>,
        state: ThrottleState,
        version: DevicesVersion,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq = seq.wrapping_add(1);
        let key = (user.clone(), factor);
        // Replaced in place: the known browsers kept beside it stay.
        match inner.entries.get_mut(&key) {
            Some(entry) => {
                entry.seq = seq;
                entry.devices = devices;
                entry.state = state;
                entry.version = version;
            }
            None => {
                inner.entries.insert(
                    key.clone(),
                    Entry {
                        seq,
                        devices,
                        state,
                        version,
                        browsers: Vec::new(),
                    },
                );
            }
        }
        inner.order.push_back((key, seq));
        while inner.entries.len() > self.capacity {
            let Some((key, seq)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&key).is_some_and(|e| e.seq == seq) {
                inner.entries.remove(&key);
            }
        }
        // Leftovers of replaced entries: drop them once they outnumber the live ones.
        if inner.order.len() > 2 * self.capacity.max(16) {
            let Inner { entries, order, .. } = &mut *inner;
            order.retain(|(key, seq)| entries.get(key).is_some_and(|e| e.seq == *seq));
        }
    }

    /// Sets the counter kept for `user`'s `factor`, if an entry is kept.
    pub(crate) fn set_state(&self, user: &UserId, factor: Factor, state: ThrottleState) {
        if self.capacity == 0 {
            return;
        }
        if let Some(entry) = self.lock().entries.get_mut(&(user.clone(), factor)) {
            entry.state = state;
        }
    }

    /// The known browser `id` of `user` as kept beside their `factor`, if any.
    pub(crate) fn browser(&self, user: &UserId, factor: Factor, id: RememberedBrowserId) -> Option<KnownBrowser> {
        if self.capacity == 0 {
            return None;
        }
        let inner = self.lock();
        let entry = inner.entries.get(&(user.clone(), factor))?;
        entry.browsers.iter().find(|b| b.record.id == id).cloned()
    }

    /// Keeps a known browser beside `user`'s `factor` (only while that entry is kept), or sets
    /// its counter; the oldest browser goes past a few.
    pub(crate) fn put_browser(&self, user: &UserId, factor: Factor, browser: KnownBrowser) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if let Some(entry) = inner.entries.get_mut(&(user.clone(), factor)) {
            entry.browsers.retain(|b| b.record.id != browser.record.id);
            entry.browsers.push(browser);
            if entry.browsers.len() > BROWSERS_PER_ENTRY {
                entry.browsers.remove(0);
            }
        }
    }

    /// Drops the known browser `id` of `user` (revoked, replaced, or no longer known).
    pub(crate) fn forget_browser(&self, user: &UserId, id: RememberedBrowserId) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        for factor in [Factor::Totp, Factor::BackupCodes] {
            if let Some(entry) = inner.entries.get_mut(&(user.clone(), factor)) {
                entry.browsers.retain(|b| b.record.id != id);
            }
        }
    }

    /// Drops what is kept for `user` (both code factors): their devices changed.
    pub(crate) fn forget(&self, user: &UserId) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        for factor in [Factor::Totp, Factor::BackupCodes] {
            inner.entries.remove(&(user.clone(), factor));
        }
    }

    /// Drops everything (the keys changed).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.order.clear();
    }

    /// Entries kept now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(i: usize) -> UserId {
        UserId::new(format!("user-{i}")).unwrap()
    }

    fn state(failures: u32) -> ThrottleState {
        ThrottleState {
            failures,
            ..ThrottleState::default()
        }
    }

    #[test]
    fn keeps_at_most_its_capacity_and_evicts_the_oldest() {
        let cache = VerifyCache::new(3);
        for i in 0..5 {
            cache.put(
                &user(i),
                Factor::Totp,
                Arc::from(Vec::new()),
                state(0),
                DevicesVersion::default(),
            );
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&user(0), Factor::Totp).is_none());
        assert!(cache.get(&user(1), Factor::Totp).is_none());
        for i in 2..5 {
            assert!(cache.get(&user(i), Factor::Totp).unwrap().cached);
        }
        // Replacing an entry makes it the newest.
        cache.put(
            &user(2),
            Factor::Totp,
            Arc::from(Vec::new()),
            state(1),
            DevicesVersion::default(),
        );
        cache.put(
            &user(5),
            Factor::Totp,
            Arc::from(Vec::new()),
            state(0),
            DevicesVersion::default(),
        );
        assert!(cache.get(&user(3), Factor::Totp).is_none());
        assert_eq!(cache.get(&user(2), Factor::Totp).unwrap().state, state(1));
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn leftovers_of_replaced_entries_stay_bounded() {
        let cache = VerifyCache::new(4);
        for round in 0..1000 {
            cache.put(
                &user(round % 2),
                Factor::Totp,
                Arc::from(Vec::new()),
                state(0),
                DevicesVersion::default(),
            );
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.lock().order.len() <= 2 * 16 + 1);
    }

    #[test]
    fn forget_set_state_clear_and_a_zero_capacity() {
        let cache = VerifyCache::new(8);
        cache.put(
            &user(1),
            Factor::Totp,
            Arc::from(Vec::new()),
            state(0),
            DevicesVersion::default(),
        );
        cache.put(
            &user(1),
            Factor::BackupCodes,
            Arc::from(Vec::new()),
            state(0),
            DevicesVersion::default(),
        );
        cache.put(
            &user(2),
            Factor::Totp,
            Arc::from(Vec::new()),
            state(0),
            DevicesVersion::default(),
        );
        cache.set_state(&user(2), Factor::Totp, state(4));
        assert_eq!(cache.get(&user(2), Factor::Totp).unwrap().state, state(4));
        // Setting the counter of nothing kept keeps nothing.
        cache.set_state(&user(3), Factor::Totp, state(4));
        assert!(cache.get(&user(3), Factor::Totp).is_none());
        cache.forget(&user(1));
        assert!(cache.get(&user(1), Factor::Totp).is_none());
        assert!(cache.get(&user(1), Factor::BackupCodes).is_none());
        assert_eq!(cache.len(), 1);
        cache.clear();
        assert_eq!(cache.len(), 0);

        // Known browsers live beside an entry, survive its replacement, and go with it.
        let record = |b: u8| RememberedBrowserRecord {
            id: RememberedBrowserId::from_bytes([b; 16]),
            user: user(2),
            key_id: crate::seal::KeyId::new("k").unwrap(),
            hash: [0; 32],
            created_at: crate::clock::UnixTime::EPOCH,
            expires_at: crate::clock::UnixTime::from_secs(1_000),
            last_used_at: None,
            skips_second_factor: false,
        };
        let known = |b: u8, failures: u32| KnownBrowser {
            record: record(b),
            state: state(failures),
        };
        let id = |b: u8| RememberedBrowserId::from_bytes([b; 16]);
        cache.put_browser(&user(9), Factor::Totp, known(1, 0));
        assert!(
            cache.browser(&user(9), Factor::Totp, id(1)).is_none(),
            "kept without an entry"
        );
        cache.put(
            &user(2),
            Factor::Totp,
            Arc::from(Vec::new()),
            state(0),
            DevicesVersion::default(),
        );
        for b in 1..=5 {
            cache.put_browser(&user(2), Factor::Totp, known(b, 0));
        }
        assert!(
            cache.browser(&user(2), Factor::Totp, id(1)).is_none(),
            "more than a few browsers"
        );
        cache.put_browser(&user(2), Factor::Totp, known(3, 2));
        assert_eq!(cache.browser(&user(2), Factor::Totp, id(3)).unwrap().state, state(2));
        cache.put(
            &user(2),
            Factor::Totp,
            Arc::from(Vec::new()),
            state(1),
            DevicesVersion::default(),
        );
        assert!(
            cache.browser(&user(2), Factor::Totp, id(3)).is_some(),
            "lost on replacement"
        );
        assert!(cache.browser(&user(2), Factor::BackupCodes, id(3)).is_none());
        cache.forget_browser(&user(2), id(3));
        assert!(cache.browser(&user(2), Factor::Totp, id(3)).is_none());
        assert!(cache.browser(&user(2), Factor::Totp, id(4)).is_some());
        cache.forget(&user(2));
        assert!(cache.browser(&user(2), Factor::Totp, id(4)).is_none());

        let off = VerifyCache::new(0);
        off.put(
            &user(1),
            Factor::Totp,
            Arc::from(Vec::new()),
            state(0),
            DevicesVersion::default(),
        );
        assert!(off.get(&user(1), Factor::Totp).is_none());
        assert_eq!(off.len(), 0);
    }
}
