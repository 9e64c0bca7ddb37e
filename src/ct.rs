//! The one place where secrets are compared. Everything goes through `subtle`.

use subtle::{Choice, ConstantTimeEq};

/// Constant-time equality of two 32-byte digests.
///
/// The difference is folded into one word with branch-free XOR/OR, and `subtle` makes the one
/// decision: a quarter of the work of `subtle`'s byte-wise slice comparison, still without any
/// data-dependent branch.
pub(crate) fn eq32(a: &[u8; 32], b: &[u8; 32]) -> Choice {
    let mut diff = 0u64;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let mut xw = [0u8; 8];
        let mut yw = [0u8; 8];
        xw.copy_from_slice(x);
        yw.copy_from_slice(y);
        diff |= u64::from_ne_bytes(xw) ^ u64::from_ne_bytes(yw);
    }
    diff.ct_eq(&0)
}

/// Constant-time equality of two numeric codes.
pub(crate) fn eq_u32(a: u32, b: u32) -> Choice {
    a.ct_eq(&b)
}

/// Constant-time equality of two byte strings of *public* length (returns early on a length
/// mismatch, as `subtle` does: only for values whose length is not secret).
pub(crate) fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn agrees_with_eq_on_digests(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), same in any::<bool>()) {
            let b = if same { a } else { b };
            prop_assert_eq!(bool::from(eq32(&a, &b)), a == b);
        }

        #[test]
        fn agrees_with_eq_on_codes(a in any::<u32>(), b in any::<u32>(), same in any::<bool>()) {
            let b = if same { a } else { b };
            prop_assert_eq!(bool::from(eq_u32(a, b)), a == b);
        }
    }

    #[test]
    fn one_bit_flip_in_any_byte_is_unequal() {
        let a = [0x5au8; 32];
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!bool::from(eq32(&a, &b)));
            }
        }
    }
}
