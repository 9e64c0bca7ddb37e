//! Known-answer tests: the RFC 4226 Appendix D (HOTP) and RFC 6238 Appendix B (TOTP) vectors,
//! kept as data files under `tests/vectors/`, plus tampering checks on each of them and a
//! differential property test against the independent `totp-lite` implementation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::str::FromStr;

use multifactor::totp::{Algorithm, TotpParams};
use multifactor::totp::{code_at, code_for_step, verify};
use multifactor::{SecretBytes, UnixTime};
use proptest::prelude::*;

const RFC4226_APPENDIX_D: &str = include_str!("vectors/rfc4226-appendix-d.txt");
const RFC6238_APPENDIX_B: &str = include_str!("vectors/rfc6238-appendix-b.txt");

// ---------------------------------------------------------------------------------------------
// The vector file format: one record per line, an optional leading tag (a word without '='),
// then whitespace-separated key=value fields. '#' starts a comment; blank lines are skipped.
// The parser is strict (duplicate keys, unknown keys, missing keys, stray words all panic), so
// a typo in a data file fails loudly instead of silently dropping a vector.
// ---------------------------------------------------------------------------------------------

struct Record<'a> {
    line: usize,
    tag: Option<&'a str>,
    fields: BTreeMap<&'a str, &'a str>,
}

impl<'a> Record<'a> {
    /// Panics unless the record has exactly these keys.
    fn expect_keys(&self, keys: &[&str]) {
        let mut want: Vec<&str> = keys.to_vec();
        want.sort_unstable();
        let have: Vec<&str> = self.fields.keys().copied().collect();
        assert_eq!(have, want, "line {}: unexpected set of fields", self.line);
    }

    fn get(&self, key: &str) -> &'a str {
        self.fields
            .get(key)
            .copied()
            .unwrap_or_else(|| panic!("line {}: missing field {key:?}", self.line))
    }

    fn num<T: FromStr>(&self, key: &str) -> T {
        let text = self.get(key);
        text.parse()
            .unwrap_or_else(|_| panic!("line {}: field {key}={text:?} is not a number", self.line))
    }
}

fn records(text: &str) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let mut record = Record {
            line,
            tag: None,
            fields: BTreeMap::new(),
        };
        for (position, token) in content.split_whitespace().enumerate() {
            match token.split_once('=') {
                Some((key, value)) => {
                    assert!(!key.is_empty() && !value.is_empty(), "line {line}: bad field {token:?}");
                    let previous = record.fields.insert(key, value);
                    assert!(previous.is_none(), "line {line}: duplicate field {key:?}");
                }
                None => {
                    assert_eq!(position, 0, "line {line}: stray word {token:?}");
                    record.tag = Some(token);
                }
            }
        }
        out.push(record);
    }
    out
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {text:?}")))
        .collect()
}

fn algorithm(mode: &str) -> Algorithm {
    match mode {
        "SHA1" => Algorithm::Sha1,
        "SHA256" => Algorithm::Sha256,
        "SHA512" => Algorithm::Sha512,
        other => panic!("unknown mode {other:?}"),
    }
}

/// RFC 4226 §5.3 dynamic truncation, written out independently of the crate.
fn dynamic_truncation(hmac: &[u8]) -> u32 {
    let offset = usize::from(hmac[hmac.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([hmac[offset], hmac[offset + 1], hmac[offset + 2], hmac[offset + 3]]);
    word & 0x7fff_ffff
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` into Unix seconds.
fn parse_utc(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'Z';
    assert!(shape_ok, "bad UTC date-time {text:?}");
    let field = |range: std::ops::Range<usize>| -> i64 {
        text[range]
            .parse()
            .unwrap_or_else(|_| panic!("bad UTC date-time {text:?}"))
    };
    let days = days_from_civil(field(0..4), field(5..7), field(8..10));
    let secs = days * 86_400 + field(11..13) * 3_600 + field(14..16) * 60 + field(17..19);
    u64::try_from(secs).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Checks shared by both vector sets.
// ---------------------------------------------------------------------------------------------

/// The code is accepted at `now` with window 0, and every tampered variant is rejected:
/// each digit changed to each other value, each bit of the secret flipped, and replays.
fn check_accept_and_tamper(secret: &SecretBytes, params: &TotpParams, now: UnixTime, step: u64, code: &str) {
    let ctx = format!(
        "{} digits={} step={step} code={code}",
        params.algorithm(),
        params.digits()
    );
    assert_eq!(params.step_at(now), step, "{ctx}");
    assert_eq!(
        verify(secret, params, 0, None, now, code),
        Ok(Some(step)),
        "{ctx}: genuine code"
    );
    assert_eq!(
        verify(secret, params, 1, None, now, code),
        Ok(Some(step)),
        "{ctx}: window 1"
    );

    // Every other value in every position.
    let digits: Vec<u32> = code.chars().map(|c| c.to_digit(10).unwrap()).collect();
    assert_eq!(digits.len(), params.digits() as usize, "{ctx}");
    let mut tampered = 0;
    for position in 0..digits.len() {
        for delta in 1..10 {
            let forged: String = digits
                .iter()
                .enumerate()
                .map(|(i, &d)| if i == position { (d + delta) % 10 } else { d })
                .map(|d| char::from_digit(d, 10).unwrap())
                .collect();
            assert_ne!(forged, code);
            assert_eq!(
                verify(secret, params, 0, None, now, &forged),
                Ok(None),
                "{ctx}: digit {position} changed, {forged}"
            );
            tampered += 1;
        }
    }
    assert_eq!(tampered, 9 * digits.len());

    // Every single-bit change of the secret.
    let key = secret.expose_secret();
    for bit in 0..key.len() * 8 {
        let mut flipped = key.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let flipped = SecretBytes::new(flipped);
        assert_eq!(
            verify(&flipped, params, 0, None, now, code),
            Ok(None),
            "{ctx}: secret bit {bit} flipped"
        );
    }

    // Replay and high-water mark.
    assert_eq!(
        verify(secret, params, 0, Some(step), now, code),
        Ok(None),
        "{ctx}: replay"
    );
    assert_eq!(
        verify(secret, params, 1, Some(step), now, code),
        Ok(None),
        "{ctx}: replay, window 1"
    );
    assert_eq!(
        verify(secret, params, 0, Some(step + 1), now, code),
        Ok(None),
        "{ctx}: below the high-water mark"
    );
    if let Some(previous) = step.checked_sub(1) {
        assert_eq!(
            verify(secret, params, 0, Some(previous), now, code),
            Ok(Some(step)),
            "{ctx}: newer than the last accepted step"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 4226 Appendix D
// ---------------------------------------------------------------------------------------------

struct HotpVector {
    counter: u64,
    hmac: Vec<u8>,
    truncated: u32,
    hotp: String,
}

fn rfc4226() -> (SecretBytes, Vec<HotpVector>) {
    let mut secret = None;
    let mut vectors = Vec::new();
    for r in records(RFC4226_APPENDIX_D) {
        match r.tag {
            Some("secret") => {
                r.expect_keys(&["ascii"]);
                assert!(secret.is_none(), "line {}: second secret", r.line);
                secret = Some(SecretBytes::new(r.get("ascii").as_bytes().to_vec()));
            }
            None => {
                r.expect_keys(&["counter", "hmac", "truncated_hex", "truncated", "hotp"]);
                let truncated: u32 = r.num("truncated");
                let truncated_hex = u32::from_str_radix(r.get("truncated_hex"), 16).unwrap();
                assert_eq!(truncated, truncated_hex, "line {}: hex and decimal differ", r.line);
                vectors.push(HotpVector {
                    counter: r.num("counter"),
                    hmac: hex(r.get("hmac")),
                    truncated,
                    hotp: r.get("hotp").to_owned(),
                });
            }
            Some(other) => panic!("line {}: unknown record {other:?}", r.line),
        }
    }
    (secret.expect("no secret record"), vectors)
}

#[test]
fn rfc4226_file_is_complete_and_consistent() {
    let (secret, vectors) = rfc4226();
    assert_eq!(secret.expose_secret(), b"12345678901234567890");
    assert_eq!(vectors.len(), 10);
    let counters: Vec<u64> = vectors.iter().map(|v| v.counter).collect();
    assert_eq!(counters, (0..10).collect::<Vec<u64>>());
    let expected = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489",
    ];
    for (v, want) in vectors.iter().zip(expected) {
        assert_eq!(v.hotp, want, "counter {}", v.counter);
        assert_eq!(v.hmac.len(), 20, "counter {}: HMAC-SHA1 is 20 bytes", v.counter);
        assert_eq!(dynamic_truncation(&v.hmac), v.truncated, "counter {}", v.counter);
        assert_eq!(
            format!("{:06}", v.truncated % 1_000_000),
            v.hotp,
            "counter {}",
            v.counter
        );
    }
}

#[test]
fn rfc4226_appendix_d_hotp_values() {
    let (secret, vectors) = rfc4226();
    assert_eq!(vectors.len(), 10);
    let params = TotpParams::new(Algorithm::Sha1, 6, 30).unwrap();
    for v in &vectors {
        // HOTP is TOTP's code with the counter as the time step.
        assert_eq!(
            code_for_step(&secret, &params, v.counter).expose_secret(),
            v.hotp,
            "counter {}",
            v.counter
        );
        // The same truncated value, reduced to 7 and 8 digits.
        for digits in [7, 8] {
            let wider = TotpParams::new(Algorithm::Sha1, digits, 30).unwrap();
            let want = format!("{:0width$}", v.truncated % 10u32.pow(digits), width = digits as usize);
            assert_eq!(
                code_for_step(&secret, &wider, v.counter).expose_secret(),
                want,
                "counter {}",
                v.counter
            );
        }
        // Every second of the step gives the same code.
        for offset in [0, 1, 29] {
            let now = UnixTime::from_secs(v.counter * params.period() + offset);
            assert_eq!(
                code_at(&secret, &params, now).expose_secret(),
                v.hotp,
                "counter {}",
                v.counter
            );
        }
        let now = UnixTime::from_secs(v.counter * params.period());
        check_accept_and_tamper(&secret, &params, now, v.counter, &v.hotp);
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 6238 Appendix B
// ---------------------------------------------------------------------------------------------

struct TotpVector {
    line: usize,
    time: u64,
    utc: u64,
    step: u64,
    mode: &'static str,
    algorithm: Algorithm,
    totp: String,
}

fn rfc6238() -> (BTreeMap<&'static str, SecretBytes>, Vec<TotpVector>) {
    let mut seeds = BTreeMap::new();
    let mut vectors = Vec::new();
    for r in records(RFC6238_APPENDIX_B) {
        match r.tag {
            Some("seed") => {
                r.expect_keys(&["mode", "ascii"]);
                let mode = r.get("mode");
                algorithm(mode);
                let seed = SecretBytes::new(r.get("ascii").as_bytes().to_vec());
                assert!(
                    seeds.insert(mode, seed).is_none(),
                    "line {}: second seed for {mode}",
                    r.line
                );
            }
            None => {
                r.expect_keys(&["time", "utc", "T", "mode", "totp"]);
                let step_hex = r.get("T");
                assert_eq!(step_hex.len(), 16, "line {}: T is 16 hex digits", r.line);
                let mode = r.get("mode");
                vectors.push(TotpVector {
                    line: r.line,
                    time: r.num("time"),
                    utc: parse_utc(r.get("utc")),
                    step: u64::from_str_radix(step_hex, 16).unwrap(),
                    mode,
                    algorithm: algorithm(mode),
                    totp: r.get("totp").to_owned(),
                });
            }
            Some(other) => panic!("line {}: unknown record {other:?}", r.line),
        }
    }
    (seeds, vectors)
}

#[test]
fn rfc6238_file_is_complete_and_consistent() {
    let (seeds, vectors) = rfc6238();
    assert_eq!(seeds.len(), 3);
    assert_eq!(seeds["SHA1"].expose_secret(), b"12345678901234567890");
    assert_eq!(seeds["SHA256"].expose_secret(), b"12345678901234567890123456789012");
    assert_eq!(
        seeds["SHA512"].expose_secret(),
        b"1234567890123456789012345678901234567890123456789012345678901234"
    );
    assert_eq!(seeds["SHA1"].len(), 20);
    assert_eq!(seeds["SHA256"].len(), 32);
    assert_eq!(seeds["SHA512"].len(), 64);

    assert_eq!(vectors.len(), 18);
    let expected: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ];
    let mut table = BTreeMap::new();
    for v in &vectors {
        assert!(
            table.insert((v.time, v.mode), v.totp.as_str()).is_none(),
            "line {}: duplicate",
            v.line
        );
        assert_eq!(v.utc, v.time, "line {}: utc column disagrees with time", v.line);
        assert_eq!(v.step, v.time / 30, "line {}: T column", v.line);
        assert_eq!(v.totp.len(), 8, "line {}", v.line);
    }
    for (time, sha1, sha256, sha512) in expected {
        assert_eq!(table.get(&(time, "SHA1")).copied(), Some(sha1), "time {time}");
        assert_eq!(table.get(&(time, "SHA256")).copied(), Some(sha256), "time {time}");
        assert_eq!(table.get(&(time, "SHA512")).copied(), Some(sha512), "time {time}");
    }
}

#[test]
fn rfc6238_appendix_b_totp_values() {
    let (seeds, vectors) = rfc6238();
    assert_eq!(vectors.len(), 18);
    for v in &vectors {
        let secret = &seeds[v.mode];
        let params = TotpParams::new(v.algorithm, 8, 30).unwrap();
        let now = UnixTime::from_secs(v.time);
        assert_eq!(params.step_at(now), v.step, "line {}: T", v.line);
        assert_eq!(
            code_for_step(secret, &params, v.step).expose_secret(),
            v.totp,
            "line {}",
            v.line
        );
        assert_eq!(code_at(secret, &params, now).expose_secret(), v.totp, "line {}", v.line);
        // The 6-digit code is the last 6 digits of the 8-digit one (same truncated value).
        let six = TotpParams::new(v.algorithm, 6, 30).unwrap();
        assert_eq!(
            code_at(secret, &six, now).expose_secret(),
            &v.totp[2..],
            "line {}",
            v.line
        );
        check_accept_and_tamper(secret, &params, now, v.step, &v.totp);
    }
}

// ---------------------------------------------------------------------------------------------
// Differential test against totp-lite.
// ---------------------------------------------------------------------------------------------

fn totp_lite_code(algorithm: Algorithm, period: u64, digits: u32, key: &[u8], time: u64) -> String {
    match algorithm {
        Algorithm::Sha1 => totp_lite::totp_custom::<totp_lite::Sha1>(period, digits, key, time),
        Algorithm::Sha256 => totp_lite::totp_custom::<totp_lite::Sha256>(period, digits, key, time),
        Algorithm::Sha512 => totp_lite::totp_custom::<totp_lite::Sha512>(period, digits, key, time),
    }
}

#[test]
fn totp_lite_agrees_on_the_rfc6238_vectors() {
    let (seeds, vectors) = rfc6238();
    assert_eq!(vectors.len(), 18);
    for v in &vectors {
        let reference = totp_lite_code(v.algorithm, 30, 8, seeds[v.mode].expose_secret(), v.time);
        assert_eq!(reference, v.totp, "line {}", v.line);
    }
}

proptest! {
    #[test]
    fn codes_match_totp_lite(
        key in proptest::collection::vec(any::<u8>(), 10..=64),
        algorithm in prop_oneof![Just(Algorithm::Sha1), Just(Algorithm::Sha256), Just(Algorithm::Sha512)],
        digits in 6u32..=8,
        period in 10u64..=300,
        raw_time in 0u64..=(1u64 << 40),
        // 0: the time as drawn; 1: first second of its step; 2: last second of its step.
        edge in 0u8..3,
    ) {
        let time = match edge {
            0 => raw_time,
            1 => raw_time / period * period,
            _ => raw_time / period * period + (period - 1),
        };
        let secret = SecretBytes::new(key.clone());
        let params = TotpParams::new(algorithm, digits, period).unwrap();
        let now = UnixTime::from_secs(time);
        let reference = totp_lite_code(algorithm, period, digits, &key, time);
        prop_assert_eq!(reference.len(), digits as usize);

        let ours = code_at(&secret, &params, now);
        prop_assert_eq!(ours.expose_secret(), reference.as_str());
        let ours = code_for_step(&secret, &params, params.step_at(now));
        prop_assert_eq!(ours.expose_secret(), reference.as_str());
        prop_assert_eq!(params.step_at(now), time / period);
        prop_assert_eq!(verify(&secret, &params, 0, None, now, &reference), Ok(Some(time / period)));
    }
}
