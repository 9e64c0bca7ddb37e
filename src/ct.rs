//! The one place where secrets are compared. Everything goes through `subtle`.

use subtle::{Choice, ConstantTimeEq};

/// Constant-time equality of two 32-byte digests.
pub(crate) fn eq32(a: &[u8; 32], b: &[u8; 32]) -> Choice {
    a.ct_eq(b)
}

/// Constant-time equality of two numeric codes.
pub(crate) fn eq_u32(a: u32, b: u32) -> Choice {
    a.ct_eq(&b)
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
