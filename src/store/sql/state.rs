//! The codec of a user's state row (`mfa_user_state`): what a code verification settles, in
//! one row per user, so that settling is one single-row update. No SQL here: the shared
//! implementation reads the columns, and the settlement statements of the backends edit the
//! same bytes in place.
//!
//! `totp_marks` holds one 32-byte entry per one-time-code device (authenticator app, HOTP
//! device, email address or phone number), in the order they were added: the device id (16
//! bytes), then the last accepted step plus one and the last-use time plus one, each as 8
//! big-endian bytes (0: none). Plus one keeps "none" at 0 and lets the settlement compare a
//! step by comparing bytes: a step `s` is above the mark exactly when the mark's bytes sort
//! below those of `s + 1`. The backup-code set's id, unused-code mask and last-use time have
//! their own columns (a user has at most one set).
//!
//! `totp_counter` and `codes_counter` each hold a failure counter for unknown browsers in one
//! column, so that a settlement compares it as one value and writes it as one: empty while the
//! counter is clear, else 33 bytes: a flags byte (bit 0: a last failure, bit 1: a budget, bit
//! 2: a last miss), then the consecutive failures, the last failure, the budget and the last
//! miss fingerprint, each as 8 big-endian bytes (zero when absent). Each state has exactly one
//! encoding: the settlement compares bytes.

use crate::clock::UnixTime;
use crate::error::StoreError;
use crate::store::Hit;
use crate::throttle::ThrottleState;

use super::{DeviceRow, KIND_BACKUP_CODES, KIND_TOTP, MAX_PACKED_CODES, corrupt, to_db};

/// The bytes of a counter that is not clear.
const COUNTER_LEN: usize = 33;

/// A failure counter as the bytes of its state-row column: empty while clear, else
/// [`COUNTER_LEN`] bytes (see the module documentation).
///
/// # Errors
///
/// [`StoreError::InvalidRecord`] for a time beyond 2^63 - 1 (as every time column).
pub(crate) fn counter_bytes(state: &ThrottleState) -> Result<Vec<u8>, StoreError> {
    if *state == ThrottleState::default() {
        return Ok(Vec::new());
    }
    let time = |t: Option<UnixTime>| t.map(|t| to_db(t.as_secs()).map(i64::cast_unsigned)).transpose();
    let fields = [time(state.last_failure_at)?, time(state.budget_until)?, state.last_miss];
    let mut out = Vec::with_capacity(COUNTER_LEN);
    out.push(
        fields
            .iter()
            .enumerate()
            .fold(0u8, |flags, (bit, field)| flags | (u8::from(field.is_some()) << bit)),
    );
    out.extend_from_slice(&u64::from(state.failures).to_be_bytes());
    for field in fields {
        out.extend_from_slice(&field.unwrap_or(0).to_be_bytes());
    }
    Ok(out)
}

/// The inverse of [`counter_bytes`], refusing any other encoding (a settlement compares the
/// bytes, so a second encoding of a state would never match).
///
/// # Errors
///
/// [`StoreError::Corrupt`] naming `column`.
pub(crate) fn counter_from_bytes(bytes: &[u8], column: &str) -> Result<ThrottleState, StoreError> {
    if bytes.is_empty() {
        return Ok(ThrottleState::default());
    }
    if bytes.len() != COUNTER_LEN {
        return Err(corrupt(column, "not a counter"));
    }
    let flags = bytes[0];
    let word = |i: usize| {
        let at = 1 + 8 * i;
        bytes
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| corrupt(column, "not a counter"))
    };
    let field = |i: usize| -> Result<Option<u64>, StoreError> {
        let value = word(i + 1)?;
        match (flags >> i & 1 == 1, value) {
            (true, v) => Ok(Some(v)),
            (false, 0) => Ok(None),
            (false, _) => Err(corrupt(column, "a value without its flag")),
        }
    };
    let time = |v: Option<u64>| -> Result<Option<UnixTime>, StoreError> {
        v.map(|v| {
            i64::try_from(v)
                .map(|_| UnixTime::from_secs(v))
                .map_err(|_| corrupt(column, "out of range"))
        })
        .transpose()
    };
    if flags > 0b111 {
        return Err(corrupt(column, "unknown flags"));
    }
    let state = ThrottleState {
        failures: u32::try_from(word(0)?).map_err(|_| corrupt(column, "out of range"))?,
        last_failure_at: time(field(0)?)?,
        budget_until: time(field(1)?)?,
        last_miss: field(2)?,
    };
    if state == ThrottleState::default() {
        return Err(corrupt(column, "a clear counter not stored as empty"));
    }
    Ok(state)
}

/// The bytes of one entry of `totp_marks`.
pub(crate) const MARK_LEN: usize = 32;

/// One one-time-code device's entry of `totp_marks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) id: [u8; 16],
    /// The last accepted step, counter or serial.
    pub(crate) step: Option<i64>,
    /// The last time a code of it was accepted (which also confirms it).
    pub(crate) used_at: Option<i64>,
}

/// `value + 1` as 8 big-endian bytes, 0 for none (values are never negative: `to_db` refuses
/// anything above 2^63 - 1, so the sum fits).
fn plus_one(value: Option<i64>) -> [u8; 8] {
    value.map_or(0, |v| v.cast_unsigned().wrapping_add(1)).to_be_bytes()
}

/// The inverse of [`plus_one`].
fn minus_one(bytes: &[u8], column: &str) -> Result<Option<i64>, StoreError> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| corrupt(column, "truncated entry"))?;
    match u64::from_be_bytes(bytes) {
        0 => Ok(None),
        v => i64::try_from(v - 1)
            .map(Some)
            .map_err(|_| corrupt(column, "out of range")),
    }
}

impl Mark {
    /// The entry's 32 bytes.
    pub(crate) fn to_bytes(self) -> [u8; MARK_LEN] {
        let mut out = [0u8; MARK_LEN];
        out[..16].copy_from_slice(&self.id);
        out[16..24].copy_from_slice(&plus_one(self.step));
        out[24..].copy_from_slice(&plus_one(self.used_at));
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let id: [u8; 16] = bytes
            .get(..16)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt("mfa_user_state.totp_marks", "truncated entry"))?;
        Ok(Self {
            id,
            step: minus_one(bytes.get(16..24).unwrap_or_default(), "mfa_user_state.totp_marks")?,
            used_at: minus_one(bytes.get(24..32).unwrap_or_default(), "mfa_user_state.totp_marks")?,
        })
    }
}

/// The bytes a settlement statement compares a step with: `step + 1`, big-endian.
pub(crate) fn step_bound(step: i64) -> Vec<u8> {
    plus_one(Some(step)).to_vec()
}

/// The code part of a user's state row: what the settlement and every device change edit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CodeState {
    pub(crate) marks: Vec<Mark>,
    /// The backup-code set's id, its unused-code mask and last-use time.
    pub(crate) codes: Option<(Vec<u8>, i64, Option<i64>)>,
}

impl CodeState {
    /// Decodes the row's columns (all null: a user without a row).
    pub(crate) fn decode(
        marks: Option<&[u8]>,
        codes_set: Option<Vec<u8>>,
        codes_unused: Option<i64>,
        codes_used_at: Option<i64>,
    ) -> Result<Self, StoreError> {
        let marks = marks.unwrap_or_default();
        if !marks.len().is_multiple_of(MARK_LEN) {
            return Err(corrupt("mfa_user_state.totp_marks", "not whole entries"));
        }
        let marks = marks.chunks(MARK_LEN).map(Mark::from_bytes).collect::<Result<_, _>>()?;
        let codes = match (codes_set, codes_unused) {
            (Some(id), Some(unused)) => {
                if id.len() != 16 {
                    return Err(corrupt("mfa_user_state.codes_set", "not 16 bytes"));
                }
                Some((id, unused, codes_used_at))
            }
            (None, None) => None,
            _ => return Err(corrupt("mfa_user_state.codes_unused", "without its set")),
        };
        Ok(Self { marks, codes })
    }

    /// `totp_marks` as stored.
    pub(crate) fn marks_bytes(&self) -> Vec<u8> {
        self.marks.iter().flat_map(|m| m.to_bytes()).collect()
    }

    /// The backup-code columns as stored: set, unused mask, last use.
    pub(crate) fn codes_columns(&self) -> (Option<Vec<u8>>, Option<i64>, Option<i64>) {
        match &self.codes {
            Some((id, unused, used)) => (Some(id.clone()), Some(*unused), *used),
            None => (None, None, None),
        }
    }

    /// Fills a device row's last step, unused-code mask, last-use time and confirmation from
    /// here, where the settlement keeps them (a device's first accepted code confirms it).
    pub(crate) fn merge_into(&self, row: &mut DeviceRow) {
        match row.kind.as_str() {
            KIND_TOTP => {
                let mark = self.marks.iter().find(|m| m.id.as_slice() == row.id);
                row.totp_last_step = mark.and_then(|m| m.step);
                row.last_used_at = mark.and_then(|m| m.used_at);
                row.confirmed |= row.last_used_at.is_some();
            }
            // A set the state row does not name has no mask: decoding it reports that.
            KIND_BACKUP_CODES => {
                if let Some((id, unused, used)) = &self.codes
                    && *id == row.id
                {
                    row.codes_unused = Some(*unused);
                    row.last_used_at = *used;
                }
            }
            _ => {}
        }
    }

    /// Takes a new device row's step, mask and last use in (clearing them from the row, whose
    /// table no longer holds them).
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] for a second backup-code set.
    pub(crate) fn add(&mut self, row: &mut DeviceRow) -> Result<(), StoreError> {
        let used_at = row.last_used_at;
        match row.kind.as_str() {
            KIND_TOTP => {
                let id: [u8; 16] = row
                    .id
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("id", "not 16 bytes"))?;
                self.marks.retain(|m| m.id != id);
                self.marks.push(Mark {
                    id,
                    step: row.totp_last_step.take(),
                    // Only a confirmed device has been used: a use is what confirms one.
                    used_at: if row.confirmed { used_at } else { None },
                });
                row.last_used_at = None;
            }
            KIND_BACKUP_CODES => {
                if self.codes.is_some() {
                    return Err(StoreError::Conflict);
                }
                let unused = row
                    .codes_unused
                    .take()
                    .ok_or_else(|| corrupt("codes_unused", "missing"))?;
                self.codes = Some((row.id.clone(), unused, used_at));
                row.last_used_at = None;
            }
            _ => {}
        }
        Ok(())
    }

    /// Forgets a deleted device's entry or set.
    pub(crate) fn remove(&mut self, id: &[u8]) {
        self.marks.retain(|m| m.id.as_slice() != id);
        if self.codes.as_ref().is_some_and(|(set, ..)| set.as_slice() == id) {
            self.codes = None;
        }
    }

    /// Accepts `hit` at `now` if it names an unused slot of the set or a step above the
    /// device's mark: `Some(first)` (whether it was the device's first accepted code), or
    /// `None` and nothing changed. The settlement statements decide the same in SQL.
    pub(crate) fn accept(&mut self, hit: Option<Hit>, now: i64) -> Option<bool> {
        match hit? {
            Hit::TotpStep { device, step } => {
                let step = to_db(step).ok()?;
                let mark = self.marks.iter_mut().find(|m| m.id == *device.as_bytes())?;
                if mark.step.is_some_and(|last| last >= step) {
                    return None;
                }
                let first = mark.used_at.is_none();
                mark.step = Some(step);
                mark.used_at = Some(now);
                Some(first)
            }
            Hit::BackupCode { device, slot } => {
                let (id, unused, used) = self.codes.as_mut()?;
                let bit = 1i64.checked_shl(u32::try_from(slot).ok()?)?;
                if slot >= MAX_PACKED_CODES || id.as_slice() != device.as_bytes() || *unused & bit == 0 {
                    return None;
                }
                *unused &= !bit;
                *used = Some(now);
                Some(false)
            }
        }
    }

    /// Moves the device's mark up to at least `step` (a code sent supersedes the ones before
    /// it); `false` if the user has no such device.
    pub(crate) fn raise(&mut self, id: &[u8], step: i64) -> bool {
        match self.marks.iter_mut().find(|m| m.id.as_slice() == id) {
            Some(mark) => {
                mark.step = Some(mark.step.map_or(step, |s| s.max(step)));
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::DeviceId;

    fn counter(failures: u32, last: Option<u64>, budget: Option<u64>, miss: Option<u64>) -> ThrottleState {
        ThrottleState {
            failures,
            last_failure_at: last.map(UnixTime::from_secs),
            budget_until: budget.map(UnixTime::from_secs),
            last_miss: miss,
        }
    }

    #[test]
    fn a_counter_has_one_encoding_and_comes_back() {
        assert_eq!(counter_bytes(&ThrottleState::default()).unwrap(), Vec::<u8>::new());
        assert_eq!(counter_from_bytes(&[], "c").unwrap(), ThrottleState::default());
        let edge = i64::MAX.cast_unsigned();
        for state in [
            counter(1, None, None, None),
            counter(0, Some(0), None, None),
            counter(0, None, Some(edge), None),
            counter(0, None, None, Some(0)),
            counter(u32::MAX, Some(1), Some(edge), Some(u64::MAX)),
            counter(7, Some(1_796_531_104), Some(1_796_600_000), Some(0x8000_0000_0000_0001)),
        ] {
            let bytes = counter_bytes(&state).unwrap();
            assert_eq!(bytes.len(), COUNTER_LEN, "{state:?}");
            assert_eq!(counter_from_bytes(&bytes, "c").unwrap(), state);
        }
        // Known answer: flags, then the four words.
        let bytes = counter_bytes(&counter(2, Some(0x0102), None, Some(3))).unwrap();
        let mut expected = vec![0b101];
        for word in [2u64, 0x0102, 0, 3] {
            expected.extend_from_slice(&word.to_be_bytes());
        }
        assert_eq!(bytes, expected);
        // A time past 2^63 - 1 is refused, as in every time column.
        assert!(counter_bytes(&counter(1, Some(edge + 1), None, None)).is_err());
    }

    #[test]
    fn any_other_encoding_of_a_counter_is_corrupt() {
        let good = counter_bytes(&counter(2, Some(5), Some(9), Some(3))).unwrap();
        let mut cases: Vec<Vec<u8>> = vec![
            good[..32].to_vec(),
            [good.as_slice(), &[0]].concat(),
            vec![0; COUNTER_LEN],
        ];
        // Unknown flags; a value without its flag; failures beyond u32; a time beyond 2^63 - 1.
        let mut flags = good.clone();
        flags[0] = 0b1111;
        cases.push(flags);
        let mut unflagged = counter_bytes(&counter(2, None, None, None)).unwrap();
        unflagged[16] = 1;
        cases.push(unflagged);
        let mut wide = good.clone();
        wide[4] = 1;
        cases.push(wide);
        let mut late = good.clone();
        late[9] = 0x80;
        cases.push(late);
        for bytes in cases {
            assert!(
                matches!(counter_from_bytes(&bytes, "c"), Err(StoreError::Corrupt(_))),
                "{bytes:02x?}"
            );
        }
    }

    fn totp_row(id: u8, step: Option<i64>, used: Option<i64>, confirmed: bool) -> DeviceRow {
        DeviceRow {
            id: vec![id; 16],
            kind: KIND_TOTP.to_owned(),
            totp_last_step: step,
            last_used_at: used,
            confirmed,
            ..DeviceRow::default()
        }
    }

    #[test]
    fn entries_round_trip_at_the_edges() {
        let mut state = CodeState::default();
        for (i, step) in [None, Some(0), Some(1), Some(i64::MAX)].into_iter().enumerate() {
            let mut row = totp_row(u8::try_from(i).unwrap(), step, Some(i64::MAX), true);
            state.add(&mut row).unwrap();
            assert_eq!(
                (row.totp_last_step, row.last_used_at),
                (None, None),
                "taken out of the row"
            );
        }
        let bytes = state.marks_bytes();
        assert_eq!(bytes.len(), 4 * MARK_LEN);
        let back = CodeState::decode(Some(&bytes), None, None, None).unwrap();
        assert_eq!(back, state);
        let mut row = totp_row(3, None, None, false);
        back.merge_into(&mut row);
        assert_eq!(
            (row.totp_last_step, row.last_used_at, row.confirmed),
            (Some(i64::MAX), Some(i64::MAX), true)
        );
    }

    #[test]
    fn steps_compare_as_bytes_as_they_compare_as_numbers() {
        for (a, b) in [
            (0i64, 1i64),
            (255, 256),
            (1 << 40, (1 << 40) + 1),
            (i64::MAX - 1, i64::MAX),
        ] {
            assert!(plus_one(Some(a)) < plus_one(Some(b)));
            assert!(plus_one(None) < plus_one(Some(a)), "none is below every step");
        }
    }

    #[test]
    fn a_hit_is_accepted_once_and_only_above_the_mark() {
        let mut state = CodeState::default();
        state.add(&mut totp_row(1, Some(10), None, false)).unwrap();
        let device = DeviceId::from_bytes([1; 16]);
        let hit = |step| Some(Hit::TotpStep { device, step });
        assert_eq!(state.accept(hit(10), 5), None, "not above the mark");
        assert_eq!(state.accept(hit(11), 5), Some(true), "the first use");
        assert_eq!(state.accept(hit(11), 6), None, "a replay");
        assert_eq!(state.accept(hit(12), 7), Some(false));
        let other = DeviceId::from_bytes([2; 16]);
        assert_eq!(
            state.accept(
                Some(Hit::TotpStep {
                    device: other,
                    step: 99
                }),
                7
            ),
            None
        );
        assert_eq!(state.accept(None, 7), None);
    }

    #[test]
    fn one_set_per_user_and_its_slots_once() {
        let mut state = CodeState::default();
        let set = |id: u8| DeviceRow {
            id: vec![id; 16],
            kind: KIND_BACKUP_CODES.to_owned(),
            codes_unused: Some(0b101),
            confirmed: true,
            ..DeviceRow::default()
        };
        state.add(&mut set(7)).unwrap();
        assert!(matches!(state.add(&mut set(8)), Err(StoreError::Conflict)));
        let device = DeviceId::from_bytes([7; 16]);
        let slot = |slot| Some(Hit::BackupCode { device, slot });
        assert_eq!(state.accept(slot(1), 1), None, "used already");
        assert_eq!(state.accept(slot(2), 1), Some(false));
        assert_eq!(state.accept(slot(2), 1), None, "spent");
        assert_eq!(state.accept(slot(64), 1), None, "beyond the mask");
        state.remove(&[7; 16]);
        assert_eq!(state.codes, None);
    }

    #[test]
    fn malformed_columns_are_corrupt() {
        assert!(CodeState::decode(Some(&[0; 31]), None, None, None).is_err());
        assert!(CodeState::decode(None, Some(vec![0; 16]), None, None).is_err());
        assert!(CodeState::decode(None, Some(vec![0; 15]), Some(1), None).is_err());
        let mut bad = [0u8; 32];
        bad[16..24].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(
            CodeState::decode(Some(&bad), None, None, None).is_err(),
            "a step beyond 2^63 - 1"
        );
    }
}
