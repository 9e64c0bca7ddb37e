//! The sealing key for the demo programs: from an environment variable, or (demo only) a key
//! file created next to the database on first use. In production the key comes from a secrets
//! manager and never lives beside the data it protects.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use multifactor::{KeyId, OsRng, Rng, SealingKey};

/// `env` (64 hex digits) if set, else the file `DB.key`, created with mode 0600 if missing.
/// Returns the key and, if a file was created, a note to show.
pub fn load(env: &str, db: &Path) -> Result<(SealingKey, Option<String>), String> {
    let id = KeyId::new("demo-1").map_err(|e| e.to_string())?;
    if let Ok(text) = std::env::var(env) {
        let key = SealingKey::from_hex(id, &text).map_err(|_| format!("{env} must be 64 hexadecimal digits"))?;
        return Ok((key, None));
    }
    let path = format!("{}.key", db.display());
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((
            SealingKey::from_hex(id, &text).map_err(|_| format!("{path} is not a key file"))?,
            None,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            OsRng::new()
                .and_then(|r| r.try_fill_bytes(&mut key))
                .map_err(|e| e.to_string())?;
            let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("{path}: {e}"))?;
            file.write_all(text.as_bytes()).map_err(|e| format!("{path}: {e}"))?;
            let key = SealingKey::from_hex(id, &text).map_err(|e| e.to_string())?;
            Ok((
                key,
                Some(format!(
                    "created sealing key {path} (demo only: set {env} in production)"
                )),
            ))
        }
        Err(e) => Err(format!("{path}: {e}")),
    }
}
