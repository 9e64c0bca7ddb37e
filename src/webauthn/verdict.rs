//! What verifying an assertion yields, on the core's path and the EdDSA path alike.

/// What a successful assertion yields (before the counter policy).
pub(crate) struct Assertion {
    pub(crate) credential_id: Vec<u8>,
    pub(crate) counter: u32,
    pub(crate) user_verified: bool,
    pub(crate) backup_eligible: bool,
    pub(crate) backup_state: bool,
}

/// A verification failure; deliberately without detail (it becomes `Outcome::Rejected`).
#[derive(Debug)]
pub(crate) struct Rejected;
