//! HMAC (RFC 2104) keyed once, specialised for the one message TOTP authenticates: the 8-byte
//! big-endian counter.
//!
//! Built on the public compression functions of the `sha1` and `sha2` crates (which pick SHA-NI
//! or the ARMv8 extensions at run time). Keying compresses `key ⊕ ipad` and `key ⊕ opad` once;
//! each counter then costs exactly two compressions, of blocks whose padding is fixed at compile
//! time: no buffering, no length bookkeeping, no allocation.
//!
//! The keyed states are as good as the key: they are wiped on drop and never shown by `Debug`.

use std::fmt;

use sha1::Sha1;
use sha2::{Sha256, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A hash function of RFC 6238 as the keyed HMAC needs it.
pub(crate) trait HashFunction {
    /// The chaining state.
    type State: Copy + Zeroize;
    /// One input block.
    type Block: Copy + AsMut<[u8]> + Zeroize;
    /// The digest.
    type Digest: AsRef<[u8]> + Zeroize;

    /// The initial chaining state.
    const IV: Self::State;
    /// An all-zero block.
    const ZERO_BLOCK: Self::Block;

    /// Compresses one block into `state`.
    fn compress(state: &mut Self::State, block: &Self::Block);
    /// The full hash of `data` (for keys longer than a block), wiped on drop.
    fn hash(data: &[u8]) -> Zeroizing<Self::Digest>;
    /// The padded inner block: `counter`, `0x80`, zeros, the bit length of `key ⊕ ipad ‖ counter`.
    fn inner_block(counter: u64) -> Self::Block;
    /// The padded outer block: the inner digest, `0x80`, zeros, the bit length of
    /// `key ⊕ opad ‖ inner digest`.
    fn outer_block(inner: &Self::State) -> Self::Block;
    /// The digest bytes of a final state.
    fn digest(state: &Self::State) -> Self::Digest;
}

/// A block of `N` bytes holding `data_len` message bytes (left zero), the `0x80` terminator and
/// the message bit length in the last `len_bytes` bytes, big-endian: the padding of a message
/// that ends in this block. Evaluated at compile time only.
const fn padded<const N: usize>(data_len: usize, bit_len: u128, len_bytes: usize) -> [u8; N] {
    let mut block = [0u8; N];
    block[data_len] = 0x80;
    let len = bit_len.to_be_bytes();
    let mut i = 0;
    while i < len_bytes {
        block[N - len_bytes + i] = len[16 - len_bytes + i];
        i += 1;
    }
    block
}

/// Writes 32-bit words big-endian into `out` (as many as fit).
#[inline(always)]
fn write_be32(words: &[u32], out: &mut [u8]) {
    for (bytes, word) in out.chunks_exact_mut(4).zip(words) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
}

/// Writes 64-bit words big-endian into `out` (as many as fit).
#[inline(always)]
fn write_be64(words: &[u64], out: &mut [u8]) {
    for (bytes, word) in out.chunks_exact_mut(8).zip(words) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
}

/// Copies `digest` to the front of `block` (a digest is never longer than a block).
fn copy_front(digest: &[u8], block: &mut [u8]) {
    for (dst, src) in block.iter_mut().zip(digest) {
        *dst = *src;
    }
}

/// SHA-1: 64-byte blocks, 20-byte digest.
const SHA1_INNER: [u8; 64] = padded(8, (64 + 8) * 8, 8);
const SHA1_OUTER: [u8; 64] = padded(20, (64 + 20) * 8, 8);

impl HashFunction for Sha1 {
    type State = [u32; 5];
    type Block = [u8; 64];
    type Digest = [u8; 20];

    const IV: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    const ZERO_BLOCK: [u8; 64] = [0; 64];

    #[inline(always)]
    fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
        sha1::block_api::compress(state, std::slice::from_ref(block));
    }

    fn hash(data: &[u8]) -> Zeroizing<[u8; 20]> {
        Zeroizing::new(<Sha1 as sha1::Digest>::digest(data).into())
    }

    #[inline(always)]
    fn inner_block(counter: u64) -> [u8; 64] {
        let mut block = SHA1_INNER;
        block[..8].copy_from_slice(&counter.to_be_bytes());
        block
    }

    #[inline(always)]
    fn outer_block(inner: &[u32; 5]) -> [u8; 64] {
        let mut block = SHA1_OUTER;
        write_be32(inner, &mut block[..20]);
        block
    }

    #[inline(always)]
    fn digest(state: &[u32; 5]) -> [u8; 20] {
        let mut out = [0u8; 20];
        write_be32(state, &mut out);
        out
    }
}

/// SHA-256: 64-byte blocks, 32-byte digest.
const SHA256_INNER: [u8; 64] = padded(8, (64 + 8) * 8, 8);
const SHA256_OUTER: [u8; 64] = padded(32, (64 + 32) * 8, 8);

impl HashFunction for Sha256 {
    type State = [u32; 8];
    type Block = [u8; 64];
    type Digest = [u8; 32];

    const IV: [u32; 8] = [
        0x6a09_e667,
        0xbb67_ae85,
        0x3c6e_f372,
        0xa54f_f53a,
        0x510e_527f,
        0x9b05_688c,
        0x1f83_d9ab,
        0x5be0_cd19,
    ];
    const ZERO_BLOCK: [u8; 64] = [0; 64];

    #[inline(always)]
    fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
        sha2::block_api::compress256(state, std::slice::from_ref(block));
    }

    fn hash(data: &[u8]) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(<Sha256 as sha2::Digest>::digest(data).into())
    }

    #[inline(always)]
    fn inner_block(counter: u64) -> [u8; 64] {
        let mut block = SHA256_INNER;
        block[..8].copy_from_slice(&counter.to_be_bytes());
        block
    }

    #[inline(always)]
    fn outer_block(inner: &[u32; 8]) -> [u8; 64] {
        let mut block = SHA256_OUTER;
        write_be32(inner, &mut block[..32]);
        block
    }

    #[inline(always)]
    fn digest(state: &[u32; 8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        write_be32(state, &mut out);
        out
    }
}

/// SHA-512: 128-byte blocks, 64-byte digest, 128-bit length field.
const SHA512_INNER: [u8; 128] = padded(8, (128 + 8) * 8, 16);
const SHA512_OUTER: [u8; 128] = padded(64, (128 + 64) * 8, 16);

impl HashFunction for Sha512 {
    type State = [u64; 8];
    type Block = [u8; 128];
    type Digest = [u8; 64];

    const IV: [u64; 8] = [
        0x6a09_e667_f3bc_c908,
        0xbb67_ae85_84ca_a73b,
        0x3c6e_f372_fe94_f82b,
        0xa54f_f53a_5f1d_36f1,
        0x510e_527f_ade6_82d1,
        0x9b05_688c_2b3e_6c1f,
        0x1f83_d9ab_fb41_bd6b,
        0x5be0_cd19_137e_2179,
    ];
    const ZERO_BLOCK: [u8; 128] = [0; 128];

    #[inline(always)]
    fn compress(state: &mut [u64; 8], block: &[u8; 128]) {
        sha2::block_api::compress512(state, std::slice::from_ref(block));
    }

    fn hash(data: &[u8]) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(<Sha512 as sha2::Digest>::digest(data).into())
    }

    #[inline(always)]
    fn inner_block(counter: u64) -> [u8; 128] {
        let mut block = SHA512_INNER;
        block[..8].copy_from_slice(&counter.to_be_bytes());
        block
    }

    #[inline(always)]
    fn outer_block(inner: &[u64; 8]) -> [u8; 128] {
        let mut block = SHA512_OUTER;
        write_be64(inner, &mut block[..64]);
        block
    }

    #[inline(always)]
    fn digest(state: &[u64; 8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        write_be64(state, &mut out);
        out
    }
}

/// HMAC-`H` keyed once: the chaining states after `key ⊕ ipad` and after `key ⊕ opad`.
pub(crate) struct CounterHmac<H: HashFunction> {
    inner: H::State,
    outer: H::State,
}

impl<H: HashFunction> CounterHmac<H> {
    /// Keys the HMAC. A key longer than a block is hashed first, a shorter one zero-padded
    /// (RFC 2104 §2); any length is fine.
    pub(crate) fn new(key: &[u8]) -> Self {
        // The one copy of the key material on the stack, wiped when it goes out of scope.
        let mut pad = Zeroizing::new(H::ZERO_BLOCK);
        if key.len() > pad.as_mut().len() {
            copy_front(H::hash(key).as_ref(), pad.as_mut());
        } else {
            copy_front(key, pad.as_mut());
        }
        pad.as_mut().iter_mut().for_each(|b| *b ^= 0x36);
        let mut inner = H::IV;
        H::compress(&mut inner, &pad);
        pad.as_mut().iter_mut().for_each(|b| *b ^= 0x36 ^ 0x5c);
        let mut outer = H::IV;
        H::compress(&mut outer, &pad);
        Self { inner, outer }
    }

    /// HMAC of the 8-byte big-endian `counter`: two compressions.
    #[inline]
    pub(crate) fn mac(&self, counter: u64) -> H::Digest {
        let mut inner = self.inner;
        H::compress(&mut inner, &H::inner_block(counter));
        let mut outer = self.outer;
        H::compress(&mut outer, &H::outer_block(&inner));
        H::digest(&outer)
    }

    /// HMACs of `N` counters. The same two compressions each, but the `N` inner compressions
    /// are independent of one another, and so are the `N` outer ones: they are issued side by
    /// side, so that the processor may overlap them.
    #[inline]
    pub(crate) fn macs<const N: usize>(&self, counters: [u64; N]) -> [H::Digest; N] {
        self.macs_of_blocks(&counters.map(H::inner_block))
    }

    /// Keys the HMAC and computes the HMACs of `N` counters, as [`Self::new`] then
    /// [`Self::macs`] would, but with the counter blocks written before the key is compressed:
    /// by the time the inner compressions read them, those writes have long settled and are
    /// read at full speed (a block read right after being written piecemeal waits for the
    /// writes to reach the cache).
    #[inline]
    pub(crate) fn new_with_macs<const N: usize>(key: &[u8], counters: [u64; N]) -> (Self, [H::Digest; N]) {
        let blocks = counters.map(H::inner_block);
        let keyed = Self::new(key);
        let macs = keyed.macs_of_blocks(&blocks);
        (keyed, macs)
    }

    #[inline(always)]
    fn macs_of_blocks<const N: usize>(&self, blocks: &[H::Block; N]) -> [H::Digest; N] {
        let mut states = [self.inner; N];
        for (state, block) in states.iter_mut().zip(blocks) {
            H::compress(state, block);
        }
        let blocks = states.map(|state| H::outer_block(&state));
        let mut states = [self.outer; N];
        for (state, block) in states.iter_mut().zip(&blocks) {
            H::compress(state, block);
        }
        states.map(|state| H::digest(&state))
    }
}

impl<H: HashFunction> Drop for CounterHmac<H> {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

impl<H: HashFunction> ZeroizeOnDrop for CounterHmac<H> {}

impl<H: HashFunction> fmt::Debug for CounterHmac<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CounterHmac([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::hmac::{Hmac, KeyInit, Mac};
    use proptest::prelude::*;

    fn reference<M: Mac + KeyInit>(key: &[u8], counter: u64) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).unwrap();
        mac.update(&counter.to_be_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 4226 Appendix D: the HMAC-SHA1 values of the counters 0..=9 under the key
    /// "12345678901234567890".
    #[test]
    fn rfc4226_appendix_d_intermediate_hmacs() {
        let expected = [
            "cc93cf18508d94934c64b65d8ba7667fb7cde4b0",
            "75a48a19d4cbe100644e8ac1397eea747a2d33ab",
            "0bacb7fa082fef30782211938bc1c5e70416ff44",
            "66c28227d03a2d5529262ff016a1e6ef76557ece",
            "a904c900a64b35909874b33e61c5938a8e15ed1c",
            "a37e783d7b7233c083d4f62926c7a25f238d0316",
            "bc9cd28561042c83f219324d3c607256c03272ae",
            "a4fb960c0bc06e1eabb804e5b397cdc4b45596fa",
            "1b3c89f65e6c9e883012052823443f048b4332db",
            "1637409809a679dc698207310c8c7fc07290d9e5",
        ];
        let keyed = CounterHmac::<Sha1>::new(b"12345678901234567890");
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(keyed.mac(counter as u64).to_vec(), hex(want), "counter {counter}");
        }
    }

    /// RFC 4231 §4.2 (test case 1): key 0x0b × 20, data "Hi There" (8 bytes, read as a
    /// big-endian counter).
    #[test]
    fn rfc4231_test_case_1() {
        let key = [0x0b; 20];
        let counter = u64::from_be_bytes(*b"Hi There");
        assert_eq!(
            CounterHmac::<Sha256>::new(&key).mac(counter).to_vec(),
            hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert_eq!(
            CounterHmac::<Sha512>::new(&key).mac(counter).to_vec(),
            hex(concat!(
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde",
                "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
            ))
        );
    }

    /// RFC 2202 §3 (test case 1): the same for HMAC-SHA1.
    #[test]
    fn rfc2202_test_case_1() {
        let counter = u64::from_be_bytes(*b"Hi There");
        assert_eq!(
            CounterHmac::<Sha1>::new(&[0x0b; 20]).mac(counter).to_vec(),
            hex("b617318655057264e28bc0b6fb378c8ef146be00")
        );
    }

    /// Keys of exactly one block and one byte more (hashed first), for each function.
    #[test]
    fn block_sized_keys() {
        for len in [63, 64, 65, 127, 128, 129] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert_eq!(
                CounterHmac::<Sha1>::new(&key).mac(7).to_vec(),
                reference::<Hmac<Sha1>>(&key, 7)
            );
            assert_eq!(
                CounterHmac::<Sha256>::new(&key).mac(7).to_vec(),
                reference::<Hmac<Sha256>>(&key, 7)
            );
            assert_eq!(
                CounterHmac::<Sha512>::new(&key).mac(7).to_vec(),
                reference::<Hmac<Sha512>>(&key, 7)
            );
        }
    }

    #[test]
    fn debug_is_redacted() {
        let shown = format!("{:?}", CounterHmac::<Sha1>::new(b"hunter2"));
        assert_eq!(shown, "CounterHmac([REDACTED])");
    }

    proptest! {
        #[test]
        fn agrees_with_the_hmac_crate(key in proptest::collection::vec(any::<u8>(), 0..=200), counter in any::<u64>()) {
            let ours = CounterHmac::<Sha1>::new(&key).mac(counter);
            prop_assert_eq!(ours.to_vec(), reference::<Hmac<Sha1>>(&key, counter));
            let ours = CounterHmac::<Sha256>::new(&key).mac(counter);
            prop_assert_eq!(ours.to_vec(), reference::<Hmac<Sha256>>(&key, counter));
            let ours = CounterHmac::<Sha512>::new(&key).mac(counter);
            prop_assert_eq!(ours.to_vec(), reference::<Hmac<Sha512>>(&key, counter));
        }

        #[test]
        fn batches_agree_with_the_hmac_crate(key in proptest::collection::vec(any::<u8>(), 0..=200), counter in any::<u64>()) {
            let counters = [counter, counter.wrapping_add(1), counter.wrapping_sub(1)];
            let (keyed, first) = CounterHmac::<Sha1>::new_with_macs(&key, counters);
            for ((c, a), b) in counters.into_iter().zip(first).zip(keyed.macs(counters)) {
                prop_assert_eq!(a.to_vec(), reference::<Hmac<Sha1>>(&key, c));
                prop_assert_eq!(b.to_vec(), reference::<Hmac<Sha1>>(&key, c));
            }
            let (keyed, first) = CounterHmac::<Sha256>::new_with_macs(&key, counters);
            for ((c, a), b) in counters.into_iter().zip(first).zip(keyed.macs(counters)) {
                prop_assert_eq!(a.to_vec(), reference::<Hmac<Sha256>>(&key, c));
                prop_assert_eq!(b.to_vec(), reference::<Hmac<Sha256>>(&key, c));
            }
            let (keyed, first) = CounterHmac::<Sha512>::new_with_macs(&key, counters);
            for ((c, a), b) in counters.into_iter().zip(first).zip(keyed.macs(counters)) {
                prop_assert_eq!(a.to_vec(), reference::<Hmac<Sha512>>(&key, c));
                prop_assert_eq!(b.to_vec(), reference::<Hmac<Sha512>>(&key, c));
            }
        }
    }
}
