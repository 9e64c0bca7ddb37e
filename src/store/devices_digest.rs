//! What a code was evaluated against, in 32 bytes the settling write can compare.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::kind::Factor;
use crate::store::{DeviceData, DeviceRecord};

/// A digest of a user's confirmed devices of one code factor: the ids of their TOTP devices,
/// or the id of their backup-code set with which of its codes are unused.
///
/// A verification that evaluated a code against a copy of the user's devices (read just now,
/// or kept from an earlier sign-in) passes the copy's digest to
/// [`DeviceStore::settle_attempt`](crate::DeviceStore::settle_attempt), which settles nothing
/// if the stored devices no longer have this digest: a device added, confirmed or deleted, a
/// set replaced, or a code spent elsewhere since. A wrong code evaluated against an old copy
/// is then never charged as a miss, and a right one never refused for it.
///
/// The digest is SHA-256 over the devices ordered by creation time, then id: per device its
/// 16-byte id, and for a backup-code set the unused-code mask
/// ([`BackupCodeRecord::unused_mask`](crate::store::BackupCodeRecord::unused_mask)) as 8 big-endian
/// bytes. A store may compute it in SQL (the PostgreSQL store does).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DevicesDigest([u8; 32]);

impl DevicesDigest {
    /// The digest of those of `devices` that are confirmed devices of `factor`, in any order.
    pub fn of<'a>(factor: Factor, devices: impl IntoIterator<Item = &'a DeviceRecord>) -> Self {
        let mut chosen: Vec<&DeviceRecord> = devices
            .into_iter()
            .filter(|d| d.confirmed && d.kind().factor() == factor)
            .collect();
        chosen.sort_by(|a, b| (a.created_at, a.id.as_bytes()).cmp(&(b.created_at, b.id.as_bytes())));
        Self::of_ordered(chosen.into_iter().map(|device| {
            let mask = match &device.data {
                DeviceData::BackupCodes(set) => Some(set.unused_mask()),
                _ => None,
            };
            (device.id.as_bytes().to_vec(), mask)
        }))
    }

    /// The digest of devices already chosen and ordered: each one's id and, for a backup-code
    /// set, its unused-code mask.
    pub(crate) fn of_ordered(methods: impl IntoIterator<Item = (Vec<u8>, Option<u64>)>) -> Self {
        let mut hash = Sha256::new();
        for (id, mask) in methods {
            hash.update(&id);
            if let Some(mask) = mask {
                hash.update(mask.to_be_bytes());
            }
        }
        Self(hash.finalize().into())
    }

    /// A digest from its bytes (as a store computed it).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DevicesDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevicesDigest(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}
