//! Moving users' MFA in from another system without re-enrolling anyone.
//!
//! [`ImportBatch::parse`] reads one export of another system ([`ImportFormat`]) into entries,
//! each a user and one thing to import: a TOTP secret, a backup-code set or a WebAuthn
//! credential. Every line that cannot be imported becomes an [`ImportProblem`] with its line
//! number, the user if known, and the reason; a secret never appears in one.
//! [`Mfa::import_batch`](crate::Mfa::import_batch) then checks the whole batch against the store
//! (a credential registered to someone else, a different backup-code set) and, only if nothing
//! is wrong (or the caller chose to skip bad lines), imports it in one pass.
//!
//! Everything imported is stored as if enrolled here: TOTP secrets sealed, backup codes hashed
//! with the keyed hash, devices confirmed, an [`Enrolled`](crate::audit::AuditKind::Enrolled) event
//! each. Replay marks and sign counters are carried over. Running the same import again adds
//! nothing: a secret, set or credential the user has already is reported as present.
//!
//! A host that reads the old system itself imports one item at a time: a TOTP secret or key URI
//! ([`TotpImport`], from a URI, a Google Authenticator export or a
//! [`DjangoOtpTotpRow`]), a credential ([`WebAuthnImport`], from an [`ExportedCredential`] or
//! webauthn-rs's JSON), or backup codes, each through its `Mfa::import_*` call. Every foreign
//! format is read here, one file per system.
//!
//! Where each system keeps its data, the query or command that produces the file, and what
//! cannot be moved are in the [manual](crate::manual#moving-in-from-another-system).

mod authelia;
mod authelia_webauthn;
mod authentik;
mod credential;
pub(crate) mod csv;
mod django_otp;
mod google_authenticator;
mod keycloak;
mod kratos;
mod otpauth;
mod webauthn_rs;
mod yaml;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use crate::id::UserId;
use crate::kind::DeviceKind;
use crate::secret::SecretString;
use crate::totp::uri::TotpImport;

pub use self::credential::{ExportedCredential, MAX_CREDENTIAL_ID, MAX_USER_HANDLE, WebAuthnImport};
pub use self::django_otp::{DjangoOtpHotpRow, DjangoOtpTotpRow};

/// The exports the importer reads. Each names the file it expects in its docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImportFormat {
    /// Lines `USER otpauth://totp/...` (whitespace between); `#` comments and blank lines skipped.
    Otpauth,
    /// Lines `USER otpauth-migration://offline?data=...`: Google Authenticator's "Transfer
    /// accounts" QR codes, decoded to text; every account of a payload is an entry.
    GoogleAuthenticator,
    /// `authelia storage user totp export csv` (Authelia 4.38, 4.39): the header
    /// `issuer,username,algorithm,digits,period,secret`.
    AutheliaCsv,
    /// `authelia storage user totp export uri`: one `otpauth://totp/Issuer:username?...` per
    /// line; the user is the label's account part.
    AutheliaUri,
    /// `authelia storage user webauthn export` (Authelia 4.38, 4.39): YAML, a
    /// `webauthn_credentials:` list; the user is each credential's `username`.
    AutheliaWebAuthn,
    /// django-otp's or authentik's TOTP devices: CSV with the header
    /// `username,key,step,t0,digits,last_t` and optionally `name` (the query is in the manual).
    DjangoOtpTotp,
    /// django-otp's HOTP devices (`otp_hotp_hotpdevice`): CSV with the header
    /// `username,key,digits,counter` and optionally `name` (the query is in the manual).
    DjangoOtpHotp,
    /// django-otp's or authentik's static tokens: CSV `username,token` (optionally `name`), one
    /// token per row; each user's tokens become one backup-code set.
    DjangoOtpStatic,
    /// Keycloak's `credential` rows: CSV `username,user_id,type,user_label,secret_data,credential_data`
    /// for types `otp`, `recovery-authn-codes`, `webauthn` and `webauthn-passwordless`.
    Keycloak,
    /// authentik's WebAuthn devices: CSV `username,user_uid,name,credential_id,public_key,sign_count,rp_id,aaguid`.
    AuthentikWebAuthn,
    /// webauthn-rs `Passkey`/`SecurityKey` JSON, one object per line:
    /// `{"user": ..., "user_handle": base64url, "kind": "passkey"|"security_key", "name": ..., "credential": {"cred": ...}}`.
    WebauthnRs,
    /// Ory Kratos identities with their credentials (`totp`, `lookup_secret`, `webauthn`,
    /// `passkey`), one admin-API identity JSON object per line; the user is the identity's id.
    Kratos,
}

impl ImportFormat {
    /// Every format, in the order `mfactl import --help` lists them.
    pub const ALL: [Self; 12] = [
        Self::Otpauth,
        Self::GoogleAuthenticator,
        Self::AutheliaCsv,
        Self::AutheliaUri,
        Self::AutheliaWebAuthn,
        Self::DjangoOtpTotp,
        Self::DjangoOtpHotp,
        Self::DjangoOtpStatic,
        Self::Keycloak,
        Self::AuthentikWebAuthn,
        Self::WebauthnRs,
        Self::Kratos,
    ];

    /// The name on the command line (`otpauth`, `google-authenticator`, `authelia-csv`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Otpauth => "otpauth",
            Self::GoogleAuthenticator => "google-authenticator",
            Self::AutheliaCsv => "authelia-csv",
            Self::AutheliaUri => "authelia-uri",
            Self::AutheliaWebAuthn => "authelia-webauthn",
            Self::DjangoOtpTotp => "django-otp-totp",
            Self::DjangoOtpHotp => "django-otp-hotp",
            Self::DjangoOtpStatic => "django-otp-static",
            Self::Keycloak => "keycloak",
            Self::AuthentikWebAuthn => "authentik-webauthn",
            Self::WebauthnRs => "webauthn-rs",
            Self::Kratos => "kratos",
        }
    }

    /// The format named `name` (as [`ImportFormat::name`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for ImportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Backup codes another system generated, to become one set here. Zeroized on drop.
#[derive(Clone)]
pub struct ImportedCodes(pub(crate) Vec<SecretString>);

impl ImportedCodes {
    /// Codes as the user has them (case, spaces and hyphens do not matter).
    pub fn new(codes: impl IntoIterator<Item = String>) -> Self {
        Self(
            codes
                .into_iter()
                .map(|c| SecretString::from(zeroize::Zeroizing::new(c)))
                .collect(),
        )
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// None at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn as_strs(&self) -> Vec<&str> {
        self.0.iter().map(SecretString::expose_secret).collect()
    }
}

impl fmt::Debug for ImportedCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImportedCodes({} codes, [REDACTED])", self.0.len())
    }
}

/// Backup codes another system kept only as digests (Keycloak's recovery codes: SHA-512 of
/// each), to become one set here whose keyed hashes are over those digests. Zeroized on drop:
/// an unsalted digest of a short code is as good as the code to someone who can search it.
#[derive(Clone)]
pub struct ImportedDigests {
    pub(crate) prehash: crate::backup_codes::Prehash,
    pub(crate) digests: Vec<[u8; 64]>,
}

impl ImportedDigests {
    /// Keycloak's recovery codes, from their SHA-512 digests.
    ///
    /// # Errors
    ///
    /// [`InputError::ImportedCodes`](crate::error::InputError::ImportedCodes) for an empty or too
    /// large set or a digest given twice.
    pub fn keycloak(digests: Vec<[u8; 64]>) -> Result<Self, crate::error::InputError> {
        crate::backup_codes::check_prehashed(&digests)?;
        Ok(Self {
            prehash: crate::backup_codes::Prehash::KeycloakSha512,
            digests,
        })
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// None at all.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

impl Drop for ImportedDigests {
    fn drop(&mut self) {
        for d in &mut self.digests {
            zeroize::Zeroize::zeroize(d);
        }
    }
}

impl fmt::Debug for ImportedDigests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ImportedDigests({:?}, {} codes, [REDACTED])",
            self.prehash,
            self.digests.len()
        )
    }
}

/// One thing to import for a user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ImportItem {
    /// A TOTP secret (with its replay mark, if the old system kept one).
    Totp(TotpImport),
    /// A backup-code set.
    BackupCodes(ImportedCodes),
    /// A backup-code set from the digests another system kept (Keycloak's recovery codes).
    HashedBackupCodes(ImportedDigests),
    /// A security key or passkey.
    WebAuthn(WebAuthnImport),
}

impl ImportItem {
    /// The kind of device it becomes.
    pub fn kind(&self) -> DeviceKind {
        match self {
            Self::Totp(_) => DeviceKind::Totp,
            Self::BackupCodes(_) | Self::HashedBackupCodes(_) => DeviceKind::BackupCodes,
            Self::WebAuthn(w) => w.kind(),
        }
    }
}

/// One importable line of a batch.
#[derive(Debug, Clone)]
pub struct ImportEntry {
    /// Where it is in the file (1-based).
    pub line: usize,
    /// Whose it is.
    pub user: UserId,
    /// The device name the old system had, if any (else the kind's default).
    pub name: Option<String>,
    /// The relying party id the old system registered a WebAuthn credential for, if it kept it:
    /// checked against ours.
    pub rp_id: Option<String>,
    /// What to import.
    pub item: ImportItem,
}

/// A line that cannot be imported: where, whose, and why. Never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    /// Where it is in the file (1-based; 0 for the file as a whole).
    pub line: usize,
    /// The user the line is for, when that much could be read.
    pub user: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// Whether a line's user field may be echoed in a report: only when it can be nothing but a
/// user. A line whose user is missing or misplaced puts whatever comes first in its place (a key
/// URI with its secret, a whole export payload), so a field that is not a valid user id, holds a
/// URI or a query, or holds a run that looks like a secret (20 or more base32, hex or base64
/// characters, digits and letters both; a UUID is a user id, not that) is left out; the line
/// number still says where.
fn echoable_user(user: &str) -> bool {
    let secret_like = |run: &str| {
        run.len() >= 20
            && run.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
            && run.bytes().any(|b| b.is_ascii_digit())
            && run.bytes().any(|b| b.is_ascii_alphabetic())
    };
    if uuid::Uuid::try_parse(user).is_ok() {
        // A UUID is a common user id and no secret's format.
        return true;
    }
    UserId::new(user).is_ok()
        && !user.contains("://")
        && !user.contains(['?', '=', '&'])
        // Every maximal run of the secret alphabets, whatever stands between them.
        && !user
            .split(|c: char| !(c.is_ascii_alphanumeric() || "+/=_-".contains(c)))
            .any(secret_like)
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(user) => write!(f, "line {}: user {user:?}: {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// An export read into entries and problems.
#[derive(Debug, Clone, Default)]
pub struct ImportBatch {
    /// What can be imported, in file order.
    pub entries: Vec<ImportEntry>,
    /// What cannot, in file order.
    pub problems: Vec<ImportProblem>,
}

impl ImportBatch {
    /// Reads an export of `format`. Never fails as a whole: a file that cannot be read at all
    /// (no header, a broken quote) is a problem on the line where reading stopped.
    pub fn parse(format: ImportFormat, text: &str) -> Self {
        let mut batch = Self::default();
        match format {
            ImportFormat::Otpauth => otpauth::otpauth_lines(text, &mut batch),
            ImportFormat::GoogleAuthenticator => otpauth::google_lines(text, &mut batch),
            ImportFormat::AutheliaWebAuthn => authelia_webauthn::yaml(text, &mut batch),
            ImportFormat::AutheliaUri => otpauth::authelia_uris(text, &mut batch),
            ImportFormat::AutheliaCsv => authelia::csv(text, &mut batch),
            ImportFormat::DjangoOtpTotp => django_otp::totp(text, &mut batch),
            ImportFormat::DjangoOtpHotp => django_otp::hotp(text, &mut batch),
            ImportFormat::DjangoOtpStatic => django_otp::static_tokens(text, &mut batch),
            ImportFormat::Keycloak => keycloak::credentials(text, &mut batch),
            ImportFormat::AuthentikWebAuthn => authentik::webauthn(text, &mut batch),
            ImportFormat::WebauthnRs => webauthn_rs::lines(text, &mut batch),
            ImportFormat::Kratos => kratos::identities(text, &mut batch),
        }
        batch.check_repeats();
        batch
    }

    /// Nothing is wrong with it.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    pub(crate) fn problem(&mut self, line: usize, user: Option<&str>, reason: impl fmt::Display) {
        self.problems.push(ImportProblem {
            line,
            user: user.filter(|u| echoable_user(u)).map(str::to_owned),
            reason: reason.to_string(),
        });
    }

    /// An entry for `user` (validated here, so that a bad id is a problem on its line).
    pub(crate) fn entry(&mut self, line: usize, user: &str, name: Option<&str>, item: ImportItem) {
        self.entry_for_rp(line, user, name, None, item);
    }

    pub(crate) fn entry_for_rp(
        &mut self,
        line: usize,
        user: &str,
        name: Option<&str>,
        rp_id: Option<&str>,
        item: ImportItem,
    ) {
        match UserId::new(user.trim()) {
            Ok(id) => self.entries.push(ImportEntry {
                line,
                user: id,
                name: name.map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned),
                rp_id: rp_id.map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned),
                item,
            }),
            Err(e) => self.problem(line, None, e),
        }
    }

    /// The same credential twice, the same TOTP secret twice for one user, or two backup-code
    /// sets for one user: the later line is a problem (which one was meant is not ours to guess).
    /// One pass over the entries with a map of what each earlier one holds: a million-line export
    /// is checked in linear time.
    fn check_repeats(&mut self) {
        let mut seen: HashMap<Repeat, usize> = HashMap::with_capacity(self.entries.len());
        let mut keep = Vec::with_capacity(self.entries.len());
        let mut repeated = Vec::new();
        for entry in std::mem::take(&mut self.entries) {
            match seen.entry(Repeat::of(&entry)) {
                Entry::Occupied(first) => {
                    let first = *first.get();
                    repeated.push((entry, first));
                }
                Entry::Vacant(slot) => {
                    slot.insert(entry.line);
                    keep.push(entry);
                }
            }
        }
        self.entries = keep;
        // Through the one rule of what a report may name.
        for (entry, first) in repeated {
            self.problem(
                entry.line,
                Some(entry.user.as_str()),
                format!("the same {} as line {first}", what(&entry.item)),
            );
        }
        self.problems.sort_by_key(|p| p.line);
    }
}

/// What two entries must share to repeat each other: a user's TOTP secret (as a digest, so that
/// the map holds no secret), a user's backup codes, or a credential id.
#[derive(PartialEq, Eq, Hash)]
enum Repeat {
    Totp([u8; 32]),
    Codes(UserId),
    Credential(Vec<u8>),
}

impl Repeat {
    fn of(entry: &ImportEntry) -> Self {
        use sha2::Digest as _;
        match &entry.item {
            ImportItem::Totp(t) => {
                let user = entry.user.as_str().as_bytes();
                let mut digest = sha2::Sha256::new();
                digest.update((user.len() as u64).to_be_bytes());
                digest.update(user);
                digest.update(t.secret.expose_secret());
                Self::Totp(digest.finalize().into())
            }
            ImportItem::BackupCodes(_) | ImportItem::HashedBackupCodes(_) => Self::Codes(entry.user.clone()),
            ImportItem::WebAuthn(w) => Self::Credential(w.credential_id().to_vec()),
        }
    }
}

fn what(item: &ImportItem) -> &'static str {
    match item {
        ImportItem::Totp(_) => "TOTP secret for this user",
        ImportItem::BackupCodes(_) | ImportItem::HashedBackupCodes(_) => "user's backup codes",
        ImportItem::WebAuthn(_) => "WebAuthn credential",
    }
}

/// Reads a CSV export with a header, calling `row` with each record's fields by column name.
/// Missing columns are one problem for the whole file.
pub(crate) fn csv_rows(
    text: &str,
    batch: &mut ImportBatch,
    required: &[&str],
    optional: &[&str],
    mut row: impl FnMut(&mut ImportBatch, usize, &Columns<'_>),
) {
    let records = match csv::records(text) {
        Ok(r) => r,
        Err(m) => {
            batch.problem(m.line, None, format!("not CSV: {}", m.reason));
            return;
        }
    };
    let mut records = records.into_iter();
    let Some(header) = records.next() else {
        batch.problem(1, None, "the file is empty (expected a CSV header)");
        return;
    };
    let header_line = header.line;
    let header = csv::Header::new(&header);
    let missing: Vec<&str> = required.iter().copied().filter(|c| header.index(c).is_none()).collect();
    if !missing.is_empty() {
        batch.problem(
            header_line,
            None,
            format!("the header lacks the column(s) {}", missing.join(", ")),
        );
        return;
    }
    for record in records {
        if record.fields.len() != header.len() {
            batch.problem(
                record.line,
                None,
                format!("{} fields where the header has {}", record.fields.len(), header.len()),
            );
            continue;
        }
        let columns = Columns {
            header: &header,
            record: &record,
            optional,
        };
        row(batch, record.line, &columns);
    }
}

/// One CSV record's fields, by column name.
pub(crate) struct Columns<'a> {
    header: &'a csv::Header,
    record: &'a csv::Record,
    #[allow(dead_code)]
    optional: &'a [&'a str],
}

impl Columns<'_> {
    /// The field of `name` (trimmed), or `""` for an absent optional column.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.header
            .index(name)
            .and_then(|i| self.record.fields.get(i))
            .map_or("", |f| f.trim())
    }

    /// A field that must be a number.
    pub(crate) fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        self.get(name)
            .parse()
            .map_err(|_| format!("{name} is not a number in range"))
    }
}

/// Base64 in any of the forms exports use: standard or URL-safe alphabet, padded or not.
pub(crate) fn base64_any(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let normal: String = text
        .trim()
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    engine.decode(normal).ok().filter(|b| !b.is_empty())
}

/// An AAGUID in UUID text form (`cb69481e-8ff7-4039-93ec-0a2729a154a8`).
pub(crate) fn parse_aaguid(text: &str) -> Result<[u8; 16], String> {
    uuid::Uuid::parse_str(text.trim())
        .map(|u| *u.as_bytes())
        .map_err(|_| "aaguid is not a UUID".to_owned())
}

/// How [`Mfa::import_batch`](crate::Mfa::import_batch) runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Check everything, report what would be added, write nothing.
    pub dry_run: bool,
    /// Import the good entries even when some lines have problems (they are still reported).
    /// Without it, a batch with any problem writes nothing.
    pub skip_bad: bool,
}

/// What happened to one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStatus {
    /// Imported as this device.
    Added(crate::DeviceId),
    /// Would be imported (a dry run).
    WouldAdd,
    /// The user has it already (this device): an import run before, or enrolled here.
    AlreadyPresent(crate::DeviceId),
}

/// One entry's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportResult {
    /// Its line in the file.
    pub line: usize,
    /// Whose.
    pub user: UserId,
    /// What kind of device.
    pub kind: DeviceKind,
    /// What happened.
    pub status: ImportStatus,
}

/// What an import did: a result per entry, the problems, and whether anything was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The entries that were checked, in file order (empty when the batch was refused).
    pub results: Vec<ImportResult>,
    /// Every line that cannot be imported, in file order: the parser's and the store checks'.
    pub problems: Vec<ImportProblem>,
    /// False for a dry run and for a batch refused because of problems.
    pub written: bool,
}

/// Counts for one kind of device in an [`ImportReport`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Added (or, in a dry run, would be).
    pub added: usize,
    /// Present already.
    pub present: usize,
}

impl ImportReport {
    /// Added and present counts per device kind, for the kinds that occur.
    pub fn counts(&self) -> Vec<(DeviceKind, ImportCounts)> {
        let mut out: Vec<(DeviceKind, ImportCounts)> = Vec::new();
        for r in &self.results {
            let i = match out.iter().position(|(k, _)| *k == r.kind) {
                Some(i) => i,
                None => {
                    out.push((r.kind, ImportCounts::default()));
                    out.len() - 1
                }
            };
            if let Some((_, c)) = out.get_mut(i) {
                match r.status {
                    ImportStatus::Added(_) | ImportStatus::WouldAdd => c.added += 1,
                    ImportStatus::AlreadyPresent(_) => c.present += 1,
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;

    #[test]
    fn a_report_never_echoes_a_secret_in_the_users_place() {
        let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
        let payload = "CjEKCkhlbGxvId6tvu8SGEV4YW1wbGU6YWxpY2VAZ29vZ2xlLmNvbRoHRXhhbXBsZSABKAEwAhABGAEgAA";
        for (format, text) in [
            // A key URI with a space in it and no user: its first part stands where the user goes.
            (
                ImportFormat::Otpauth,
                format!("otpauth://totp/ACME:alice?secret={secret}&issuer=ACME Corp"),
            ),
            // A Google Authenticator line with the user and the payload swapped.
            (
                ImportFormat::GoogleAuthenticator,
                format!("otpauth-migration://offline?data={payload} alice"),
            ),
        ] {
            let batch = ImportBatch::parse(format, &text);
            assert_eq!(batch.problems.len(), 1, "{format:?}");
            let shown = batch.problems.iter().map(|p| format!("{p} {p:?}")).collect::<String>();
            assert!(!shown.contains(secret) && !shown.contains(payload), "{shown}");
            assert_eq!(batch.problems[0].user, None);
        }
        // A repeated entry is reported through the same rule (found by the fuzz target): a
        // username that looks like a secret is not echoed there either.
        let fixture = include_str!("../tests/fixtures/import/authentik-webauthn.csv");
        let mut lines = fixture.lines();
        let (header, alice) = (lines.next().unwrap(), lines.next().unwrap());
        let repeated = alice.replacen("alice", "ZZZZ9999ZZZZ9999ZZZZ9999carol", 1);
        let batch = ImportBatch::parse(
            ImportFormat::AuthentikWebAuthn,
            &format!("{header}\n{alice}\n{repeated}\n"),
        );
        let problem = batch.problems.iter().find(|p| p.reason.contains("the same")).unwrap();
        assert_eq!(problem.user, None, "{problem}");
        // A real user is still named.
        let batch = ImportBatch::parse(ImportFormat::Otpauth, "alice not-a-uri");
        assert_eq!(batch.problems[0].user.as_deref(), Some("alice"));
        for user in [
            "bob",
            "alice@example.com",
            "Ünïcode",
            "user-42",
            "a1b2c3d4-0000-4000-8000-000000000000",
        ] {
            assert!(super::echoable_user(user), "{user}");
        }
        for field in [
            "",
            "otpauth://x",
            "a?b",
            "secret=x",
            "JBSWY3DPEHPK3PXPJBSWY3DP",
            // A secret followed by a character of neither kind (found by the fuzz target).
            "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfQ\u{e9}carol",
        ] {
            assert!(!super::echoable_user(field), "{field}");
        }
    }

    use super::*;

    /// Lines that look like each format's, with arbitrary fields.
    fn near_miss() -> impl Strategy<Value = String> {
        let field = prop_oneof![
            Just(String::new()),
            "[a-zA-Z0-9+/=_-]{0,40}",
            Just("\"{\"\"value\"\":\"\"12345678901234567890\"\"}\"".to_owned()),
            Just("otpauth://totp/X:y?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".to_owned()),
            Just("otpauth-migration://offline?data=CgA".to_owned()),
            Just("{\"cred\": {}}".to_owned()),
            ".{0,20}",
        ];
        proptest::collection::vec(proptest::collection::vec(field, 0..10), 0..8).prop_map(|rows| {
            let header = "username,user_id,type,user_label,secret_data,credential_data,key,step,t0,digits,last_t,token,\
                          issuer,algorithm,period,secret,user_uid,credential_id,public_key,sign_count";
            let body: Vec<String> = rows.into_iter().map(|r| r.join(",")).collect();
            format!("{header}\n{}", body.join("\n"))
        })
    }

    proptest! {
        /// No input makes any format's reader panic, and every line is an entry or a problem
        /// with a line number inside the file.
        #[test]
        fn never_panics_and_lines_are_in_the_file(text in prop_oneof![".{0,400}", near_miss()]) {
            let lines = text.lines().count().max(1);
            for format in ImportFormat::ALL {
                let batch = ImportBatch::parse(format, &text);
                for p in &batch.problems {
                    prop_assert!(p.line <= lines + 1, "{format}: {p}");
                }
                for e in &batch.entries {
                    prop_assert!(e.line >= 1 && e.line <= lines, "{format}: line {}", e.line);
                }
            }
        }
    }
}
