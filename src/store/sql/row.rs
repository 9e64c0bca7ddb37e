//! The row codec of the SQL stores: how a record becomes the columns of `mfa_devices` (and the
//! other tables) and back, with every column checked on the way in. No SQL here, and no driver:
//! the shared implementation reads the columns and hands them over.

use crate::backup_codes::{BackupCodeRecord, CodeSlot, Prehash};
use crate::clock::UnixTime;
use crate::error::StoreError;
use crate::id::{DeviceId, DeviceName, UserId};
use crate::kind::Factor;
use crate::seal::{KeyId, SealedSecret};
use crate::sent_code::{Channel, IssuedCode, SentCodeRecord};
use crate::store::Hit;
use crate::store::{DeviceData, DeviceRecord};
use crate::throttle::ThrottleState;
use crate::totp::{Algorithm, TotpParams, TotpRecord};
use crate::webauthn::{CeremonyKind, CeremonyRecord, WebAuthnRecord};

pub(crate) const KIND_BACKUP_CODES: &str = "backup_codes";
pub(crate) const KIND_TOTP: &str = "totp";
pub(crate) const KIND_WEBAUTHN: &str = "webauthn";

/// A `u64` for a `BIGINT` column.
pub(crate) fn to_db(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidRecord("a time or step beyond 2^63 - 1"))
}

/// A `BIGINT` column back to `u64`.
pub(crate) fn from_db(value: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(column, "negative"))
}

/// The `skipped` column (an enrollment prompt count) back to `u32`.
pub(crate) fn skipped_from_db(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt("mfa_enrollment_deadlines.skipped", "out of range"))
}

/// The `kind` column value of a factor's devices.
pub(crate) const fn kind_of(factor: Factor) -> &'static str {
    match factor {
        Factor::BackupCodes => KIND_BACKUP_CODES,
        Factor::Totp => KIND_TOTP,
        Factor::WebAuthn => KIND_WEBAUTHN,
    }
}

/// A stored failure counter back to its state.
pub(crate) fn throttle_state(
    failures: i64,
    last_failure_at: Option<i64>,
    budget_until: Option<i64>,
    last_miss: Option<i64>,
) -> Result<ThrottleState, StoreError> {
    Ok(ThrottleState {
        failures: u32::try_from(failures).map_err(|_| corrupt("failures", "out of range"))?,
        last_failure_at: last_failure_at
            .map(|t| from_db(t, "last_failure_at").map(UnixTime::from_secs))
            .transpose()?,
        budget_until: budget_until
            .map(|t| from_db(t, "budget_until").map(UnixTime::from_secs))
            .transpose()?,
        last_miss: last_miss.map(i64::cast_unsigned),
    })
}

/// A counter state as the four columns it is stored in.
pub(crate) type ThrottleColumns = (i64, Option<i64>, Option<i64>, Option<i64>);

/// A counter state as the four columns it is stored in (the miss fingerprint's 64 bits as a
/// signed integer).
pub(crate) fn throttle_columns(state: &ThrottleState) -> Result<ThrottleColumns, StoreError> {
    let time = |t: Option<UnixTime>| t.map(|t| to_db(t.as_secs())).transpose();
    Ok((
        i64::from(state.failures),
        time(state.last_failure_at)?,
        time(state.budget_until)?,
        state.last_miss.map(u64::cast_signed),
    ))
}

/// `LIKE` pattern of the counter keys of one known browser ([`Counter::key`](crate::throttle::Counter::key)).
pub(crate) fn browser_counters(id: crate::id::RememberedBrowserId) -> String {
    format!("%@{id}")
}

/// `LIKE` pattern of the counter keys of every known browser.
pub(crate) const ALL_BROWSER_COUNTERS: &str = "%@%";

/// A hit as the columns a settlement statement binds after the user (all null for a miss, or
/// for a hit of the other factor, which can never be accepted; a slot or step beyond the
/// stored range cannot match anything and binds as a miss too, so the statement is the same
/// either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HitColumns {
    /// TOTP: the device, the step bound ([`step_bound`](super::step_bound)) and the device's
    /// entry after the hit.
    Totp {
        device: Option<Vec<u8>>,
        bound: Option<Vec<u8>>,
        entry: Option<Vec<u8>>,
    },
    /// Backup codes: the set, the slot's bit, and the time of use.
    Codes {
        device: Option<Vec<u8>>,
        mask: Option<i64>,
        now: i64,
    },
}

/// The columns of `hit` for a settlement of `factor` at `now`.
pub(crate) fn hit_columns(factor: Factor, hit: Option<Hit>, now: i64) -> HitColumns {
    match (factor, hit) {
        (Factor::BackupCodes, Some(Hit::BackupCode { device, slot })) if slot < MAX_PACKED_CODES => HitColumns::Codes {
            device: Some(device.as_bytes().to_vec()),
            mask: Some(1 << slot),
            now,
        },
        (Factor::BackupCodes, _) => HitColumns::Codes {
            device: None,
            mask: None,
            now,
        },
        (_, Some(Hit::TotpStep { device, step })) => match to_db(step) {
            Ok(step) => HitColumns::Totp {
                device: Some(device.as_bytes().to_vec()),
                bound: Some(super::step_bound(step)),
                entry: Some(
                    super::Mark {
                        id: *device.as_bytes(),
                        step: Some(step),
                        used_at: Some(now),
                    }
                    .to_bytes()
                    .to_vec(),
                ),
            },
            Err(_) => HitColumns::Totp {
                device: None,
                bound: None,
                entry: None,
            },
        },
        _ => HitColumns::Totp {
            device: None,
            bound: None,
            entry: None,
        },
    }
}

pub(crate) fn corrupt(column: &str, why: &str) -> StoreError {
    StoreError::Corrupt(format!("column {column}: {why}"))
}

/// One row of the device query, as plain Rust values.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeviceRow {
    pub(crate) id: Vec<u8>,
    pub(crate) user_id: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) created_at: i64,
    pub(crate) last_used_at: Option<i64>,
    pub(crate) confirmed: bool,
    pub(crate) totp_algorithm: Option<String>,
    pub(crate) totp_digits: Option<i64>,
    pub(crate) totp_period: Option<i64>,
    pub(crate) totp_secret: Option<Vec<u8>>,
    pub(crate) totp_last_step: Option<i64>,
    pub(crate) totp_fingerprint: Option<Vec<u8>>,
    pub(crate) codes_salt: Option<Vec<u8>>,
    pub(crate) codes_length: Option<i64>,
    pub(crate) codes_key_id: Option<String>,
    pub(crate) codes_prehash: Option<String>,
    pub(crate) oob_channel: Option<String>,
    pub(crate) oob_issued: Option<Vec<u8>>,
    pub(crate) codes_hashes: Option<Vec<u8>>,
    pub(crate) codes_unused: Option<i64>,
    pub(crate) credential_id: Option<Vec<u8>>,
    pub(crate) user_handle: Option<Vec<u8>>,
    pub(crate) credential: Option<Vec<u8>>,
    pub(crate) sign_count: Option<i64>,
    pub(crate) backup_eligible: Option<bool>,
    pub(crate) backup_state: Option<bool>,
    pub(crate) discoverable: Option<bool>,
    pub(crate) user_verified: Option<bool>,
    pub(crate) aaguid: Option<Vec<u8>>,
}

fn required<T>(value: Option<T>, column: &str) -> Result<T, StoreError> {
    value.ok_or_else(|| corrupt(column, "missing"))
}

impl DeviceRow {
    /// Decodes a row into a record, refusing anything malformed.
    pub(crate) fn into_record(self) -> Result<DeviceRecord, StoreError> {
        let id: [u8; 16] = self
            .id
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("id", "not 16 bytes"))?;
        let user = UserId::new(self.user_id).map_err(|_| corrupt("user_id", "not a valid user id"))?;
        let name = DeviceName::new(&self.name).map_err(|_| corrupt("name", "not a valid name"))?;
        let data = match self.kind.as_str() {
            // A destination of sent codes: a one-time-code device like TOTP, sharing its
            // sealed secret (the destination), fingerprint and last step (serial) columns.
            KIND_TOTP if self.oob_channel.is_some() => {
                let channel = required(self.oob_channel, "oob_channel")?;
                let channel = Channel::from_name(&channel).ok_or_else(|| corrupt("oob_channel", "unknown channel"))?;
                let sealed_destination = SealedSecret::from_bytes(&required(self.totp_secret, "totp_secret")?)
                    .map_err(|e| corrupt("totp_secret", &e.to_string()))?;
                let fingerprint = <[u8; 32]>::try_from(required(self.totp_fingerprint, "totp_fingerprint")?.as_slice())
                    .map_err(|_| corrupt("totp_fingerprint", "not 32 bytes"))?;
                let last_serial = self.totp_last_step.map(|s| from_db(s, "totp_last_step")).transpose()?;
                let issued = self
                    .oob_issued
                    .map(|b| IssuedCode::from_bytes(&b).ok_or_else(|| corrupt("oob_issued", "malformed")))
                    .transpose()?;
                DeviceData::SentCode(SentCodeRecord {
                    channel,
                    sealed_destination,
                    fingerprint,
                    last_serial,
                    issued,
                })
            }
            KIND_TOTP => {
                let algorithm = required(self.totp_algorithm, "totp_algorithm")?;
                let algorithm =
                    Algorithm::from_name(&algorithm).ok_or_else(|| corrupt("totp_algorithm", "unknown algorithm"))?;
                let digits = required(self.totp_digits, "totp_digits")?;
                let period = required(self.totp_period, "totp_period")?;
                let digits = u32::try_from(digits).map_err(|_| corrupt("totp_digits", "out of range"))?;
                // Period 0: a counter-based (HOTP) device.
                let params = match from_db(period, "totp_period")? {
                    0 => TotpParams::hotp(algorithm, digits),
                    period => TotpParams::new(algorithm, digits, period),
                }
                .map_err(|_| corrupt("totp_digits/totp_period", "out of range"))?;
                let sealed_secret = SealedSecret::from_bytes(&required(self.totp_secret, "totp_secret")?)
                    .map_err(|e| corrupt("totp_secret", &e.to_string()))?;
                let last_step = self.totp_last_step.map(|s| from_db(s, "totp_last_step")).transpose()?;
                let fingerprint = self
                    .totp_fingerprint
                    .map(|f| {
                        <[u8; 32]>::try_from(f.as_slice()).map_err(|_| corrupt("totp_fingerprint", "not 32 bytes"))
                    })
                    .transpose()?;
                DeviceData::Totp(TotpRecord {
                    params,
                    sealed_secret,
                    last_step,
                    fingerprint,
                })
            }
            KIND_BACKUP_CODES => {
                let salt: [u8; 16] = required(self.codes_salt, "codes_salt")?
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("codes_salt", "not 16 bytes"))?;
                let code_length = u8::try_from(required(self.codes_length, "codes_length")?)
                    .map_err(|_| corrupt("codes_length", "out of range"))?;
                let decoded = unpack_codes(
                    &required(self.codes_hashes, "codes_hashes")?,
                    required(self.codes_unused, "codes_unused")?,
                )?;
                let key_id = self
                    .codes_key_id
                    .map(KeyId::new)
                    .transpose()
                    .map_err(|_| corrupt("codes_key_id", "not a valid key id"))?;
                let prehash = self
                    .codes_prehash
                    .as_deref()
                    .map(|p| Prehash::from_name(p).ok_or_else(|| corrupt("codes_prehash", "unknown prehash")))
                    .transpose()?;
                DeviceData::BackupCodes(BackupCodeRecord {
                    key_id,
                    salt,
                    code_length,
                    slots: decoded,
                    prehash,
                })
            }
            KIND_WEBAUTHN => DeviceData::WebAuthn(WebAuthnRecord {
                credential_id: required(self.credential_id, "credential_id")?,
                user_handle: required(self.user_handle, "user_handle")?,
                credential: required(self.credential, "credential")?,
                sign_count: u32::try_from(required(self.sign_count, "sign_count")?)
                    .map_err(|_| corrupt("sign_count", "out of range"))?,
                backup_eligible: required(self.backup_eligible, "backup_eligible")?,
                backup_state: required(self.backup_state, "backup_state")?,
                discoverable: required(self.discoverable, "discoverable")?,
                user_verified: required(self.user_verified, "user_verified")?,
                aaguid: self
                    .aaguid
                    .map(|a| <[u8; 16]>::try_from(a.as_slice()).map_err(|_| corrupt("aaguid", "not 16 bytes")))
                    .transpose()?,
            }),
            _ => return Err(corrupt("kind", "unknown kind")),
        };
        Ok(DeviceRecord {
            id: DeviceId::from_bytes(id),
            user,
            name,
            created_at: UnixTime::from_secs(from_db(self.created_at, "created_at")?),
            last_used_at: self
                .last_used_at
                .map(|t| from_db(t, "last_used_at").map(UnixTime::from_secs))
                .transpose()?,
            confirmed: self.confirmed,
            data,
        })
    }

    /// Encodes a record as a row.
    pub(crate) fn from_record(record: &DeviceRecord) -> Result<Self, StoreError> {
        let mut row = Self {
            id: record.id.as_bytes().to_vec(),
            user_id: record.user.as_str().to_owned(),
            name: record.name.as_str().to_owned(),
            created_at: to_db(record.created_at.as_secs())?,
            last_used_at: record.last_used_at.map(|t| to_db(t.as_secs())).transpose()?,
            confirmed: record.confirmed,
            ..Self::default()
        };
        match &record.data {
            DeviceData::Totp(t) => {
                row.kind = KIND_TOTP.to_owned();
                row.totp_algorithm = Some(t.params.algorithm().as_str().to_owned());
                row.totp_digits = Some(i64::from(t.params.digits()));
                row.totp_period = Some(to_db(t.params.period())?);
                row.totp_secret = Some(t.sealed_secret.to_bytes());
                row.totp_last_step = t.last_step.map(to_db).transpose()?;
                row.totp_fingerprint = t.fingerprint.map(|f| f.to_vec());
            }
            DeviceData::BackupCodes(b) => {
                row.kind = KIND_BACKUP_CODES.to_owned();
                row.codes_salt = Some(b.salt.to_vec());
                row.codes_length = Some(i64::from(b.code_length));
                row.codes_key_id = b.key_id.as_ref().map(|k| k.as_str().to_owned());
                row.codes_prehash = b.prehash.map(|p| p.as_str().to_owned());
                let (hashes, unused) = pack_codes(&b.slots)?;
                row.codes_hashes = Some(hashes);
                row.codes_unused = Some(unused);
            }
            DeviceData::SentCode(c) => {
                row.kind = KIND_TOTP.to_owned();
                row.oob_channel = Some(c.channel.as_str().to_owned());
                row.totp_secret = Some(c.sealed_destination.to_bytes());
                row.totp_last_step = c.last_serial.map(to_db).transpose()?;
                row.totp_fingerprint = Some(c.fingerprint.to_vec());
                row.oob_issued = c.issued.as_ref().map(IssuedCode::to_bytes);
            }
            DeviceData::WebAuthn(w) => {
                row.kind = KIND_WEBAUTHN.to_owned();
                row.credential_id = Some(w.credential_id.clone());
                row.user_handle = Some(w.user_handle.clone());
                row.credential = Some(w.credential.clone());
                row.sign_count = Some(i64::from(w.sign_count));
                row.backup_eligible = Some(w.backup_eligible);
                row.backup_state = Some(w.backup_state);
                row.discoverable = Some(w.discoverable);
                row.user_verified = Some(w.user_verified);
                row.aaguid = w.aaguid.map(|a| a.to_vec());
            }
        }
        Ok(row)
    }
}

/// A set's codes as its two columns: the hashes end to end, and a mask with bit `i` set while
/// code `i` is unused.
pub(crate) fn pack_codes(slots: &[CodeSlot]) -> Result<(Vec<u8>, i64), StoreError> {
    if slots.len() > MAX_PACKED_CODES {
        return Err(StoreError::InvalidRecord("more backup codes in a set than a row holds"));
    }
    let mut hashes = Vec::with_capacity(slots.len() * 32);
    let mut unused = 0i64;
    for (i, slot) in slots.iter().enumerate() {
        hashes.extend_from_slice(&slot.hash);
        if !slot.used {
            unused |= 1 << i;
        }
    }
    Ok((hashes, unused))
}

/// The two columns back to the codes, refusing a length that is not whole hashes and a mask
/// with bits beyond the last code.
pub(crate) fn unpack_codes(hashes: &[u8], unused: i64) -> Result<Vec<CodeSlot>, StoreError> {
    if !hashes.len().is_multiple_of(32) || hashes.len() / 32 > MAX_PACKED_CODES {
        return Err(corrupt("codes_hashes", "not a whole number of hashes, or too many"));
    }
    let count = hashes.len() / 32;
    if unused < 0 || (unused >> count) != 0 {
        return Err(corrupt("codes_unused", "bits beyond the last code"));
    }
    hashes
        .chunks_exact(32)
        .enumerate()
        .map(|(i, chunk)| {
            let hash: [u8; 32] = chunk.try_into().map_err(|_| corrupt("codes_hashes", "not 32 bytes"))?;
            Ok(CodeSlot {
                hash,
                used: unused & (1 << i) == 0,
            })
        })
        .collect()
}

/// The most codes one set's row holds (bits of the `codes_unused` mask, kept positive).
pub(crate) const MAX_PACKED_CODES: usize = 62;

/// Decodes a ceremony row.
pub(crate) fn ceremony_from_row(
    id: crate::id::CeremonyId,
    user_id: Option<String>,
    kind: &str,
    expires_at: i64,
    state: Vec<u8>,
) -> Result<CeremonyRecord, StoreError> {
    Ok(CeremonyRecord {
        id,
        user: user_id
            .map(UserId::new)
            .transpose()
            .map_err(|_| corrupt("mfa_ceremonies.user_id", "not a valid user id"))?,
        kind: CeremonyKind::from_name(kind).ok_or_else(|| corrupt("mfa_ceremonies.kind", "unknown kind"))?,
        expires_at: UnixTime::from_secs(from_db(expires_at, "mfa_ceremonies.expires_at")?),
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_beyond_bigint_are_refused_not_wrapped() {
        assert_eq!(to_db(i64::MAX as u64).unwrap(), i64::MAX);
        assert!(matches!(to_db(u64::MAX), Err(StoreError::InvalidRecord(_))));
        assert!(matches!(from_db(-1, "x"), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn malformed_rows_are_corrupt_errors() {
        let good = DeviceRow {
            id: vec![1; 16],
            user_id: "alice".into(),
            kind: KIND_WEBAUTHN.into(),
            name: "Key".into(),
            created_at: 5,
            credential_id: Some(vec![1]),
            user_handle: Some(vec![2]),
            credential: Some(vec![3]),
            sign_count: Some(0),
            backup_eligible: Some(false),
            backup_state: Some(false),
            discoverable: Some(false),
            user_verified: Some(false),
            aaguid: Some(vec![9; 16]),
            ..DeviceRow::default()
        };
        let record = good.clone().into_record().unwrap();
        let back = DeviceRow::from_record(&record).unwrap();
        assert_eq!(back.into_record().unwrap(), record);
        let cases: Vec<(&str, DeviceRow)> = vec![
            (
                "id",
                DeviceRow {
                    id: vec![1; 15],
                    ..good.clone()
                },
            ),
            (
                "user_id",
                DeviceRow {
                    user_id: String::new(),
                    ..good.clone()
                },
            ),
            (
                "name",
                DeviceRow {
                    name: "\n".into(),
                    ..good.clone()
                },
            ),
            (
                "kind",
                DeviceRow {
                    kind: "sms".into(),
                    ..good.clone()
                },
            ),
            (
                "created_at",
                DeviceRow {
                    created_at: -5,
                    ..good.clone()
                },
            ),
            (
                "sign_count",
                DeviceRow {
                    sign_count: Some(1 << 40),
                    ..good.clone()
                },
            ),
            (
                "credential_id",
                DeviceRow {
                    credential_id: None,
                    ..good.clone()
                },
            ),
            (
                "totp_algorithm",
                DeviceRow {
                    kind: KIND_TOTP.into(),
                    ..good.clone()
                },
            ),
            (
                "codes_salt",
                DeviceRow {
                    kind: KIND_BACKUP_CODES.into(),
                    ..good.clone()
                },
            ),
        ];
        for (column, row) in cases {
            match row.into_record() {
                Err(StoreError::Corrupt(msg)) => assert!(msg.contains(column), "{column}: {msg}"),
                other => panic!("{column}: {other:?}"),
            }
        }
        let codes = DeviceRow {
            kind: KIND_BACKUP_CODES.into(),
            codes_salt: Some(vec![0; 16]),
            codes_length: Some(12),
            ..good.clone()
        };
        let packed = |hashes: Vec<u8>, unused: i64| DeviceRow {
            codes_hashes: Some(hashes),
            codes_unused: Some(unused),
            ..codes.clone()
        };
        let set = packed(vec![5; 64], 0b10).into_record().unwrap();
        match &set.data {
            DeviceData::BackupCodes(b) => {
                assert_eq!(b.slots.len(), 2);
                assert!(b.slots[0].used && !b.slots[1].used);
                assert_eq!(b.slots[1].hash, [5; 32]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(DeviceRow::from_record(&set).unwrap().codes_unused, Some(0b10));
        for (hashes, unused, column) in [
            (vec![0; 33], 0, "codes_hashes"),
            (vec![0; 32 * 63], 0, "codes_hashes"),
            (vec![0; 64], 0b100, "codes_unused"),
            (vec![0; 64], -1, "codes_unused"),
        ] {
            match packed(hashes, unused).into_record() {
                Err(StoreError::Corrupt(msg)) => assert!(msg.contains(column), "{column}: {msg}"),
                other => panic!("{column}: {other:?}"),
            }
        }
        for (hashes, column) in [(None, "codes_hashes"), (Some(vec![0; 32]), "codes_unused")] {
            let row = DeviceRow {
                codes_hashes: hashes,
                ..codes.clone()
            };
            match row.into_record() {
                Err(StoreError::Corrupt(msg)) => assert!(msg.contains(column), "{column}: {msg}"),
                other => panic!("{column}: {other:?}"),
            }
        }
    }
}
