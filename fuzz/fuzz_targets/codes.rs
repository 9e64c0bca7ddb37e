//! What a user types as a code: backup codes (`backup_codes::normalize` / `verify`) and TOTP
//! codes (`totp::verify`) with the time, the last accepted step, the window and the
//! parameters also taken from the input (a 20-byte header, see [`Input`]).
//!
//! Invariants: never panics; `verify` fails on shape exactly when `normalize` does; a matching
//! backup-code slot is one whose code normalises to the same text; a key, user, set or (for a
//! pre-v3 set) pepper the set was not hashed with matches nothing; an accepted TOTP step lies inside the window, above the last
//! accepted step, and is one whose code equals the submitted digits.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use multifactor::backup_codes::BackupCodeConfig;
use multifactor::backup_codes::{self, BackupCode, BackupCodeRecord, CodeKey, Pepper};
use multifactor::error::InputError;
use multifactor::totp::{self, Algorithm, TotpParams};
use multifactor::{DeviceId, InsecureSeededRng, KeyId, SecretBytes, UnixTime, UserId};

/// The input: a 20-byte header, then the code as typed (UTF-8).
///
/// | byte | meaning |
/// |---|---|
/// | 0 | bit 0: a last accepted step is given; bits 1-2: algorithm (SHA1, SHA256, SHA512); bits 3-4: digits - 6 |
/// | 1 | window (mod 11) |
/// | 2-3 | period - 10 (little endian, mod 291) |
/// | 4-11 | now, Unix seconds (little endian) |
/// | 12-19 | last accepted step (little endian) |
#[derive(Debug)]
struct Input<'a> {
    code: &'a str,
    now: u64,
    last_step: Option<u64>,
    window: u8,
    algorithm: u8,
    digits: u8,
    period: u16,
}

impl<'a> Input<'a> {
    fn parse(data: &'a [u8]) -> Option<Self> {
        let (header, code) = data.split_at_checked(20)?;
        let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
        Some(Self {
            code: std::str::from_utf8(code).ok()?,
            now: u64_at(4),
            last_step: (header[0] & 1 == 1).then(|| u64_at(12)),
            window: header[1],
            algorithm: (header[0] >> 1) & 3,
            digits: (header[0] >> 3) & 3,
            period: u16::from_le_bytes([header[2], header[3]]),
        })
    }
}

struct Sets {
    key_id: KeyId,
    user: UserId,
    other_user: UserId,
    plain: (Vec<BackupCode>, BackupCodeRecord),
    peppered: (Vec<BackupCode>, BackupCodeRecord),
    pepper: Pepper,
}

const KEY: [u8; 32] = [7; 32];
const OTHER_KEY: [u8; 32] = [8; 32];
const SET: DeviceId = DeviceId::from_bytes([0x42; 16]);

impl Sets {
    /// The key the keyed set was hashed with.
    fn key(&self) -> CodeKey<'_> {
        self.keyed(&KEY, &self.user, SET)
    }

    fn keyed<'a>(&'a self, key: &'a [u8; 32], user: &'a UserId, set: DeviceId) -> CodeKey<'a> {
        CodeKey::Keyed {
            key_id: &self.key_id,
            key,
            user,
            set,
        }
    }
}

fn sets() -> &'static Sets {
    static SETS: OnceLock<Sets> = OnceLock::new();
    SETS.get_or_init(|| {
        let rng = InsecureSeededRng::new(1);
        let config = BackupCodeConfig::default();
        let pepper = Pepper::new(b"pepper".to_vec());
        let key_id = KeyId::new("k1").expect("key id");
        let user = UserId::new("alice").expect("user");
        let keyed = CodeKey::Keyed {
            key_id: &key_id,
            key: &KEY,
            user: &user,
            set: SET,
        };
        let plain = backup_codes::generate(&rng, &config, &keyed).expect("generate");
        let peppered = backup_codes::generate(&rng, &config, &CodeKey::Legacy(Some(&pepper))).expect("generate");
        Sets {
            key_id,
            user,
            other_user: UserId::new("bob").expect("user"),
            plain,
            peppered,
            pepper,
        }
    })
}

fn check_backup(input: &str) {
    let sets = sets();
    let (codes, record) = &sets.plain;
    let length = usize::from(record.code_length);
    let normalized = backup_codes::normalize(input, length);
    if let Ok(n) = &normalized {
        assert_eq!(n.chars().count(), length);
        // Normalising is idempotent.
        assert_eq!(
            backup_codes::normalize(n, length)
                .expect("normal form normalises")
                .as_str(),
            n.as_str()
        );
    }
    // The brief's fixed length too (another code length must not panic either).
    let _ = backup_codes::normalize(input, 12);
    let verdict = backup_codes::verify(record, input, &sets.key());
    assert_eq!(
        verdict.is_err(),
        normalized.is_err(),
        "verify and normalize disagree on shape"
    );
    if let Ok(Some(slot)) = verdict {
        let expected = backup_codes::normalize(codes[slot].expose_secret(), length).expect("generated code");
        assert_eq!(
            normalized.as_ref().ok().map(|n| n.as_str()),
            Some(expected.as_str()),
            "slot {slot}"
        );
    }
    // Another key, user or set, or the legacy hash: never a match.
    for wrong in [
        sets.keyed(&OTHER_KEY, &sets.user, SET),
        sets.keyed(&KEY, &sets.other_user, SET),
        sets.keyed(&KEY, &sets.user, DeviceId::from_bytes([0x43; 16])),
        CodeKey::Legacy(None),
        CodeKey::Legacy(Some(&sets.pepper)),
    ] {
        assert!(!matches!(backup_codes::verify(record, input, &wrong), Ok(Some(_))));
    }
    // A pre-v3 set: without its pepper, or keyed, never a match.
    let (pcodes, precord) = &sets.peppered;
    assert!(!matches!(
        backup_codes::verify(precord, input, &CodeKey::Legacy(None)),
        Ok(Some(_))
    ));
    assert!(!matches!(
        backup_codes::verify(precord, input, &sets.key()),
        Ok(Some(_))
    ));
    if let Ok(Some(slot)) = backup_codes::verify(precord, input, &CodeKey::Legacy(Some(&sets.pepper))) {
        let expected = backup_codes::normalize(pcodes[slot].expose_secret(), length).expect("generated code");
        assert_eq!(normalized.as_ref().ok().map(|n| n.as_str()), Some(expected.as_str()));
    }
}

fn check_totp(input: &Input) {
    static SECRET: OnceLock<SecretBytes> = OnceLock::new();
    let secret = SECRET.get_or_init(|| SecretBytes::new(b"12345678901234567890".to_vec()));
    let algorithm = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512][usize::from(input.algorithm % 3)];
    let params = TotpParams::new(
        algorithm,
        6 + u32::from(input.digits % 3),
        10 + u64::from(input.period) % 291,
    )
    .expect("params in bounds");
    let window = u32::from(input.window % 11);
    let now = UnixTime::from_secs(input.now);
    // The brief's defaults first, then the fuzzed parameters.
    let _ = totp::verify(secret, &TotpParams::default(), 1, input.last_step, now, input.code);
    let verdict = totp::verify(secret, &params, window, input.last_step, now, input.code);
    let digits: String = input.code.chars().filter(|c| !c.is_whitespace()).collect();
    let well_formed = input.code.len() <= 64
        && digits.len() == params.digits() as usize
        && digits.bytes().all(|b| b.is_ascii_digit());
    match verdict {
        Err(InputError::CodeFormat { .. }) => assert!(!well_formed, "well-formed code refused: {:?}", input.code),
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(found) => {
            assert!(well_formed, "malformed code evaluated: {:?}", input.code);
            if let Some(step) = found {
                let current = params.step_at(now);
                assert!(
                    step >= current.saturating_sub(u64::from(window)),
                    "step below the window"
                );
                assert!(
                    step <= current.saturating_add(u64::from(window)),
                    "step above the window"
                );
                if let Some(last) = input.last_step {
                    assert!(step > last, "step {step} at or below the last accepted {last}");
                }
                let code = totp::code_for_step(secret, &params, step);
                assert_eq!(code.expose_secret(), digits, "step {step} matched another code");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The whole input as a code too (no header), so plain seeds like `abcd-efgh-jkmn` work.
    if let Ok(text) = std::str::from_utf8(data) {
        check_backup(text);
    }
    let Some(input) = Input::parse(data) else {
        return;
    };
    check_backup(input.code);
    check_totp(&input);
});
