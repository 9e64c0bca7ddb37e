//! What a code was evaluated against, as one number the settling write compares.

use crate::store::DeviceRecord;
use crate::throttle::ThrottleState;

/// The version of a user's devices: a number the store increments, in the same atomic step,
/// with every change that can change what a code matches or which devices a code is compared
/// with. These are inserting or deleting a device (any kind, by any operation: a reset, a
/// replaced backup-code set, a deleted enrollment), recording a code sent to an email address
/// or phone number, and the first accepted code of a device (which confirms an enrollment).
/// Spending a backup code or accepting a later TOTP step need not change it: the settlement
/// itself refuses a spent slot or an old step. A store may increment it more often (never
/// less); a user without devices has version 0 or the version of their last change.
///
/// A verification that evaluated a code against a copy of the user's devices (read just now,
/// or kept from an earlier sign-in) passes the copy's version to
/// [`DeviceStore::settle_attempt`](crate::DeviceStore::settle_attempt), which settles nothing
/// if the version moved: a wrong code evaluated against an old copy is then never charged as
/// a miss, and a right one never refused for it. Comparing one number in the user's row is
/// what lets the settlement be one single-row update, where a digest of the devices would
/// have to read them all.
///
/// Only equality means anything: a store may wrap the number at any modulus far above the
/// changes one user can make between a read and its settlement (the SQL stores keep it in 4
/// bytes and wrap from 2,147,483,646 to 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DevicesVersion(pub u64);

impl DevicesVersion {
    /// The version after one more change.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.wrapping_add(1))
    }
}

/// What [`DeviceStore::verification_state`](crate::DeviceStore::verification_state) reads: the
/// user's devices of one factor, that factor's failure counter for unknown browsers, and the
/// devices version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerificationState {
    /// The user's devices of the factor, oldest first.
    pub devices: Vec<DeviceRecord>,
    /// The factor's counter for unknown browsers.
    pub throttle: ThrottleState,
    /// The user's devices version, never newer than `devices`.
    pub version: DevicesVersion,
}
