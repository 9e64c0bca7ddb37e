//! Secret newtypes: zeroized on drop, `[REDACTED]` in `Debug`, no `Display`, `PartialEq` or
//! `Serialize`, and one explicit, greppable `expose_secret()`.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Secret bytes (a TOTP key, for example).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are wiped when the value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The secret itself. Every use is a place where the secret leaves its box: keep them few.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(mut bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(std::mem::take(&mut *bytes))
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([REDACTED])")
    }
}

/// Secret text (a backup code, a key URI, a base32 secret, an SVG that encodes a secret).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Takes ownership of `text`; it is wiped when the value is dropped.
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The secret itself. Every use is a place where the secret leaves its box: keep them few.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<Zeroizing<String>> for SecretString {
    fn from(mut text: Zeroizing<String>) -> Self {
        Self(std::mem::take(&mut *text))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretString::new("hunter2-secret".into());
        let b = SecretBytes::new(b"hunter2-secret".to_vec());
        for shown in [format!("{s:?}"), format!("{b:?}"), format!("{s:#?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("REDACTED"));
        }
        assert_eq!(s.expose_secret(), "hunter2-secret");
        assert_eq!(b.expose_secret(), b"hunter2-secret");
    }
}
