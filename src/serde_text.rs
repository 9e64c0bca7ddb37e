//! `serde` for the values a host sends over the wire or takes from a URL (behind the `serde`
//! feature): ids, names, kinds and factors as their one text form, times as seconds, an AAGUID
//! as a UUID. Every value is checked on the way in as its constructor checks it, so an axum
//! `Path<DeviceId>` or a JSON body cannot carry a malformed one.

use std::fmt;
use std::str::FromStr;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{CeremonyId, DeviceId, DeviceName, RememberedBrowserId, UserId};
use crate::kind::{DeviceKind, Factor};

/// Text in, checked by `parse`; `expecting` names the form for the error message.
struct Text<F> {
    expecting: &'static str,
    parse: F,
}

impl<'de, T, E: fmt::Display, F: FnOnce(&str) -> Result<T, E>> Visitor<'de> for Text<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<Er: serde::de::Error>(self, v: &str) -> Result<T, Er> {
        (self.parse)(v).map_err(Er::custom)
    }
}

/// `Serialize` as the type's `Display` (its one text form), `Deserialize` through `parse`.
macro_rules! text {
    ($ty:ty, $expecting:literal, $parse:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(Text {
                    expecting: $expecting,
                    parse: $parse,
                })
            }
        }
    };
}

text!(UserId, "a user id", |s: &str| UserId::new(s));
text!(DeviceName, "a device name", DeviceName::new);
text!(DeviceId, "32 hexadecimal digits", DeviceId::from_str);
text!(CeremonyId, "32 hexadecimal digits", CeremonyId::from_str);
text!(
    RememberedBrowserId,
    "32 hexadecimal digits",
    RememberedBrowserId::from_str
);
text!(DeviceKind, "a device kind", DeviceKind::from_str);
text!(Factor, "a factor", Factor::from_str);

/// An authenticator model's AAGUID as a UUID (`"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"`), the
/// form the FIDO Metadata Service and every provider list use; `None` as `null`.
pub(crate) mod aaguid {
    use serde::de::Error as _;

    use super::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(aaguid: &Option<[u8; 16]>, serializer: S) -> Result<S::Ok, S::Error> {
        match aaguid {
            None => serializer.serialize_none(),
            Some(bytes) => serializer.collect_str(&uuid::Uuid::from_bytes(*bytes).hyphenated()),
        }
    }

    /// Only the hyphenated form (36 characters): not the simple, braced or URN forms `uuid`
    /// also reads.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<[u8; 16]>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        match uuid::Uuid::try_parse(&text) {
            Ok(uuid) if text.len() == 36 => Ok(Some(*uuid.as_bytes())),
            _ => Err(D::Error::custom(
                "an AAGUID is a UUID: 32 hexadecimal digits in 5 groups",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{from_str, json, to_value};

    use super::*;
    use crate::clock::UnixTime;
    use crate::device::DeviceInfo;

    #[test]
    fn ids_names_kinds_and_factors_travel_as_their_text_and_are_checked_on_the_way_in() {
        let id = DeviceId::from_bytes([0xab; 16]);
        assert_eq!(to_value(id).unwrap(), json!("ab".repeat(16)));
        assert_eq!(from_str::<DeviceId>(&format!("\"{}\"", "ab".repeat(16))).unwrap(), id);
        for bad in ["\"abc\"", "\"\"", &format!("\"{}\"", "zz".repeat(16)), "17", "null"] {
            assert!(from_str::<DeviceId>(bad).is_err(), "{bad}");
            assert!(from_str::<CeremonyId>(bad).is_err(), "{bad}");
            assert!(from_str::<RememberedBrowserId>(bad).is_err(), "{bad}");
        }
        assert_eq!(from_str::<UserId>("\"alice\"").unwrap().as_str(), "alice");
        assert!(from_str::<UserId>("\"\"").is_err());
        assert!(from_str::<UserId>("\"a\\u0000b\"").is_err());
        assert_eq!(from_str::<DeviceName>("\"  Phone \"").unwrap().as_str(), "Phone");
        assert!(from_str::<DeviceName>("\"yub\\u202ekey\"").is_err());
        for kind in DeviceKind::ALL {
            // One text form: Display, as_str, FromStr and serde agree.
            assert_eq!(kind.to_string(), kind.as_str());
            assert_eq!(kind.as_str().parse::<DeviceKind>().unwrap(), kind);
            assert_eq!(to_value(kind).unwrap(), json!(kind.as_str()));
            assert_eq!(from_str::<DeviceKind>(&format!("\"{kind}\"")).unwrap(), kind);
        }
        assert!(from_str::<DeviceKind>("\"Passkey\"").is_err());
        assert!("authenticator app".parse::<DeviceKind>().is_err());
        for factor in Factor::ALL {
            assert_eq!(factor.to_string(), factor.as_str());
            assert_eq!(from_str::<Factor>(&format!("\"{factor}\"")).unwrap(), factor);
        }
        assert!(from_str::<Factor>("\"sms\"").is_err());
        assert_eq!(
            to_value(UnixTime::from_secs(1_800_000_000)).unwrap(),
            json!(1_800_000_000u64)
        );
    }

    #[test]
    fn a_device_list_round_trips_through_json_with_the_aaguid_as_a_uuid() {
        let info = DeviceInfo {
            id: DeviceId::from_bytes([1; 16]),
            kind: DeviceKind::Passkey,
            name: DeviceName::new("Work laptop").unwrap(),
            created_at: UnixTime::from_secs(1_800_000_000),
            last_used_at: None,
            confirmed: true,
            remaining_backup_codes: None,
            synced: Some(true),
            backed_up: Some(false),
            prf: None,
            aaguid: Some([
                0xea, 0x9b, 0x8d, 0x66, 0x4d, 0x01, 0x1d, 0x21, 0x3c, 0xe4, 0xb6, 0xb4, 0x8c, 0xb5, 0x75, 0xd4,
            ]),
            destination: None,
            provider: None,
        };
        let value = to_value(&info).unwrap();
        assert_eq!(value["kind"], json!("passkey"));
        assert_eq!(value["aaguid"], json!("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"));
        assert_eq!(value["created_at"], json!(1_800_000_000u64));
        let back: DeviceInfo = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(back, info);
        let upper = {
            let mut v = value.clone();
            v["aaguid"] = json!("EA9B8D66-4D01-1D21-3CE4-B6B48CB575D4");
            v
        };
        assert_eq!(serde_json::from_value::<DeviceInfo>(upper).unwrap().aaguid, info.aaguid);
        let none = {
            let mut v = value.clone();
            v["aaguid"] = json!(null);
            v
        };
        assert_eq!(serde_json::from_value::<DeviceInfo>(none).unwrap().aaguid, None);
        for bad in [
            "ea9b8d664d011d213ce4b6b48cb575d4",
            "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d",
            "ea9b8d6-64d01-1d21-3ce4-b6b48cb575d4",
            "+a9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
            "ga9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
        ] {
            let mut v = value.clone();
            v["aaguid"] = json!(bad);
            assert!(serde_json::from_value::<DeviceInfo>(v).is_err(), "{bad}");
        }
        let mut v = value;
        v["name"] = json!("");
        assert!(serde_json::from_value::<DeviceInfo>(v).is_err(), "an empty name");
    }
}
