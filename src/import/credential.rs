//! WebAuthn credentials registered elsewhere for the same relying party id, carried over so that
//! their owners keep signing in with the same security key or passkey.
//!
//! A credential is its id, its COSE public key, its sign counter and a few flags; the private
//! key never left the authenticator, so nothing secret moves. What the old system knew is kept:
//! the counter (so a cloned authenticator replaying an old counter is still caught), the backup
//! flags, the transports (sent back in `allowCredentials`) and the user handle (a passkey
//! returns it at sign-in, and it must match).

use std::fmt;

use crate::error::InputError;
use crate::kind::DeviceKind;
use crate::webauthn::engine;

/// Longest credential id WebAuthn allows (§5.8.3 of Level 3: at most 1023 bytes).
pub const MAX_CREDENTIAL_ID: usize = 1023;
/// Longest user handle WebAuthn allows (64 bytes).
pub const MAX_USER_HANDLE: usize = 64;

/// A WebAuthn credential from another system, checked and ready for
/// [`Mfa::import_webauthn`](crate::Mfa::import_webauthn).
#[derive(Clone)]
pub struct WebAuthnImport {
    pub(crate) credential_id: Vec<u8>,
    pub(crate) user_handle: Vec<u8>,
    /// The core's credential, serialised as the store keeps it.
    pub(crate) credential: Vec<u8>,
    pub(crate) sign_count: u32,
    pub(crate) backup_eligible: bool,
    pub(crate) backup_state: bool,
    pub(crate) discoverable: bool,
    pub(crate) aaguid: Option<[u8; 16]>,
}

impl fmt::Debug for WebAuthnImport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebAuthnImport")
            .field("credential_id_len", &self.credential_id.len())
            .field("sign_count", &self.sign_count)
            .field("backup_eligible", &self.backup_eligible)
            .field("backup_state", &self.backup_state)
            .field("discoverable", &self.discoverable)
            .finish_non_exhaustive()
    }
}

/// What another system stored of one credential, as raw bytes (decoded from its base64).
#[derive(Debug, Clone, Copy)]
pub struct ExportedCredential<'a> {
    /// The credential id.
    pub credential_id: &'a [u8],
    /// The credential public key, COSE-encoded (CBOR), as the authenticator gave it.
    pub cose_public_key: &'a [u8],
    /// The last sign counter the old system saw.
    pub sign_count: u32,
    /// The WebAuthn user handle it was registered under. Required for a passkey (the
    /// authenticator returns it at a passwordless sign-in); for a security key, `None` when
    /// the old system did not keep it (then any handle the key returns is refused).
    pub user_handle: Option<&'a [u8]>,
    /// A passkey (discoverable, user-verifying: signs in without a password) or a security key
    /// (second factor only).
    pub discoverable: bool,
    /// The backup-eligible and backup-state flags, if the old system kept them.
    pub backup: Option<(bool, bool)>,
    /// Transports (`usb`, `nfc`, `ble`, `internal`, `hybrid`); unknown names are ignored.
    pub transports: &'a [&'a str],
    /// The authenticator model's AAGUID, if known.
    pub aaguid: Option<[u8; 16]>,
}

impl WebAuthnImport {
    /// Checks one exported credential: the key must be a valid ES256 (P-256, on the curve) or
    /// RS256 key, the id and handle of WebAuthn's sizes.
    ///
    /// # Errors
    ///
    /// [`InputError::ImportedCredential`] naming the rule: an empty or oversized id or user
    /// handle, a passkey without a user handle, a public key that is not COSE, of an algorithm
    /// this crate does not verify (EdDSA, ES384, SHA-1 RSA…), or not a valid point.
    pub fn from_exported(exported: &ExportedCredential<'_>) -> Result<Self, InputError> {
        if exported.credential_id.is_empty() || exported.credential_id.len() > MAX_CREDENTIAL_ID {
            return Err(InputError::ImportedCredential(
                "the credential id must be 1 to 1023 bytes",
            ));
        }
        let user_handle = match exported.user_handle {
            Some(h) if h.is_empty() || h.len() > MAX_USER_HANDLE => {
                return Err(InputError::ImportedCredential("the user handle must be 1 to 64 bytes"));
            }
            Some(h) => h.to_vec(),
            None if exported.discoverable => {
                return Err(InputError::ImportedCredential(
                    "a passkey needs the user handle it was registered under",
                ));
            }
            None => Vec::new(),
        };
        let (backup_eligible, backup_state) = exported.backup.unwrap_or((false, false));
        if backup_state && !backup_eligible {
            return Err(InputError::ImportedCredential("backed up but not backup-eligible"));
        }
        let credential = engine::imported_credential(&engine::Imported {
            credential_id: exported.credential_id,
            cose_public_key: exported.cose_public_key,
            sign_count: exported.sign_count,
            discoverable: exported.discoverable,
            backup_eligible,
            backup_state,
            transports: exported.transports,
        })?;
        Ok(Self {
            credential_id: exported.credential_id.to_vec(),
            user_handle,
            credential,
            sign_count: exported.sign_count,
            backup_eligible,
            backup_state,
            discoverable: exported.discoverable,
            aaguid: exported.aaguid,
        })
    }

    /// A `webauthn-rs` `Passkey` or `SecurityKey` as its `serde_json` serialisation stores it
    /// (`{"cred": {...}}`, webauthn-rs 0.5 and 0.6), with the user handle the application
    /// registered it under (webauthn-rs takes the user's UUID: its 16 bytes).
    ///
    /// # Errors
    ///
    /// [`InputError::ImportedCredential`] for JSON of another shape and for everything
    /// [`WebAuthnImport::from_exported`] refuses.
    pub fn from_webauthn_rs_json(
        json: &str,
        user_handle: Option<&[u8]>,
        discoverable: bool,
    ) -> Result<Self, InputError> {
        let parts = engine::webauthn_rs_credential(json)?;
        let transports: Vec<&str> = parts.transports.iter().map(String::as_str).collect();
        Self::from_exported(&ExportedCredential {
            credential_id: &parts.credential_id,
            cose_public_key: &parts.cose_public_key,
            sign_count: parts.sign_count,
            user_handle,
            discoverable,
            backup: Some((parts.backup_eligible, parts.backup_state)),
            transports: &transports,
            aaguid: None,
        })
    }

    /// The credential id.
    pub fn credential_id(&self) -> &[u8] {
        &self.credential_id
    }

    /// A passkey or a security key.
    pub fn kind(&self) -> DeviceKind {
        DeviceKind::webauthn(self.discoverable)
    }

    /// The sign counter carried over.
    pub fn sign_count(&self) -> u32 {
        self.sign_count
    }

    /// The authenticator model's AAGUID, if the old system kept it.
    pub fn aaguid(&self) -> Option<[u8; 16]> {
        self.aaguid
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// The COSE key of P-256's generator point (private key 1): a valid public key.
    pub(crate) fn generator_key() -> Vec<u8> {
        let x = hex("6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296");
        let y = hex("4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5");
        let mut key = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        key.extend_from_slice(&x);
        key.extend_from_slice(&[0x22, 0x58, 0x20]);
        key.extend_from_slice(&y);
        key
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn exported(key: &[u8]) -> ExportedCredential<'_> {
        ExportedCredential {
            credential_id: b"credential-1",
            cose_public_key: key,
            sign_count: 5,
            user_handle: Some(b"handle"),
            discoverable: true,
            backup: Some((true, true)),
            transports: &["usb", "internal", "carrier-pigeon"],
            aaguid: None,
        }
    }

    #[test]
    fn an_exported_credential_round_trips_through_webauthn_rs_json() {
        let key = generator_key();
        let import = WebAuthnImport::from_exported(&exported(&key)).unwrap();
        assert_eq!(import.credential_id(), b"credential-1");
        assert_eq!(import.kind(), DeviceKind::Passkey);
        let json = format!(
            "{{\"cred\": {}}}",
            String::from_utf8(import.credential.clone()).unwrap()
        );
        if std::env::var_os("PRINT_WEBAUTHN_RS_JSON").is_some() {
            println!("{json}");
        }
        let again = WebAuthnImport::from_webauthn_rs_json(&json, Some(b"handle"), true).unwrap();
        assert_eq!(again.credential, import.credential);
        assert_eq!(
            (again.sign_count, again.backup_eligible, again.backup_state),
            (5, true, true)
        );
        let value: serde_json::Value = serde_json::from_slice(&import.credential).unwrap();
        assert_eq!(value["transports"], serde_json::json!(["usb", "internal"]));
    }

    #[test]
    fn hostile_credentials_name_the_rule() {
        let key = generator_key();
        let mut off_curve = key.clone();
        if let Some(last) = off_curve.last_mut() {
            *last ^= 1;
        }
        // An Ed25519 key of small order (y = 0): refused.
        let mut okp = vec![0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, 0x20];
        okp.extend_from_slice(&[0; 32]);
        let long_id = vec![1; MAX_CREDENTIAL_ID + 1];
        let cases: Vec<(ExportedCredential<'_>, &str)> = vec![
            (
                ExportedCredential {
                    cose_public_key: &off_curve,
                    ..exported(&key)
                },
                "the public key is not a valid ES256 or RS256 key",
            ),
            (
                ExportedCredential {
                    cose_public_key: &okp,
                    ..exported(&key)
                },
                "the public key is not a valid Ed25519 key",
            ),
            (
                ExportedCredential {
                    cose_public_key: &key[..20],
                    ..exported(&key)
                },
                "the public key is not a COSE key",
            ),
            (
                ExportedCredential {
                    cose_public_key: b"\x01",
                    ..exported(&key)
                },
                "the public key is not a COSE key",
            ),
            (
                ExportedCredential {
                    credential_id: &[],
                    ..exported(&key)
                },
                "the credential id must be 1 to 1023 bytes",
            ),
            (
                ExportedCredential {
                    credential_id: &long_id,
                    ..exported(&key)
                },
                "the credential id must be 1 to 1023 bytes",
            ),
            (
                ExportedCredential {
                    user_handle: None,
                    ..exported(&key)
                },
                "a passkey needs the user handle it was registered under",
            ),
            (
                ExportedCredential {
                    user_handle: Some(&[7; 65]),
                    ..exported(&key)
                },
                "the user handle must be 1 to 64 bytes",
            ),
            (
                ExportedCredential {
                    backup: Some((false, true)),
                    ..exported(&key)
                },
                "backed up but not backup-eligible",
            ),
        ];
        for (bad, why) in cases {
            assert_eq!(
                WebAuthnImport::from_exported(&bad).unwrap_err(),
                InputError::ImportedCredential(why),
                "{why}"
            );
        }
        // A security key may come without a handle.
        let key_only = WebAuthnImport::from_exported(&ExportedCredential {
            user_handle: None,
            discoverable: false,
            ..exported(&key)
        })
        .unwrap();
        assert_eq!(key_only.kind(), DeviceKind::SecurityKey);
        assert!(WebAuthnImport::from_webauthn_rs_json("{\"cred\": 1}", None, false).is_err());
        assert!(WebAuthnImport::from_webauthn_rs_json("[]", None, false).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_keys_never_panic(key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = WebAuthnImport::from_exported(&exported(&key));
        }
    }
}
