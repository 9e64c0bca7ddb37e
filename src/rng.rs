//! Randomness enters the crate only through [`Rng`].

use std::sync::Arc;
#[cfg(any(test, feature = "test-util"))]
use std::sync::Mutex;

#[cfg(any(test, feature = "test-util"))]
use rand_chacha::ChaCha20Rng;
#[cfg(any(test, feature = "test-util"))]
use rand_core::{Rng as _, SeedableRng};

use crate::error::RngError;

/// A cryptographically secure source of random bytes.
///
/// Implementations must be suitable for generating secrets (TOTP keys, backup codes, salts,
/// nonces). The method takes `&self` so one generator can serve concurrent requests.
pub trait Rng: Send + Sync {
    /// Fills `dest` with random bytes.
    ///
    /// # Errors
    ///
    /// [`RngError`] when no randomness is available; nothing is generated from partial output.
    fn try_fill_bytes(&self, dest: &mut [u8]) -> Result<(), RngError>;
}

impl<R: Rng + ?Sized> Rng for Arc<R> {
    fn try_fill_bytes(&self, dest: &mut [u8]) -> Result<(), RngError> {
        (**self).try_fill_bytes(dest)
    }
}

impl<R: Rng + ?Sized> Rng for &R {
    fn try_fill_bytes(&self, dest: &mut [u8]) -> Result<(), RngError> {
        (**self).try_fill_bytes(dest)
    }
}

/// The default generator: the operating system's (`getrandom`), on every call.
///
/// No state lives in the process: after a `fork()` or the restore of a VM snapshot two
/// processes do not repeat each other's secrets or nonces, because the kernel generator (which
/// reseeds on a VM generation change) produces every byte. A user-space generator seeded once
/// would repeat itself in both copies.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRng;

impl OsRng {
    /// The generator, after checking that the operating system gives randomness.
    ///
    /// # Errors
    ///
    /// [`RngError`] if the operating system has no randomness to give.
    pub fn new() -> Result<Self, RngError> {
        let mut probe = [0u8; 16];
        Self.try_fill_bytes(&mut probe)?;
        Ok(Self)
    }
}

impl Rng for OsRng {
    fn try_fill_bytes(&self, dest: &mut [u8]) -> Result<(), RngError> {
        getrandom::fill(dest).map_err(|_| RngError("the operating system random source failed"))
    }
}

#[cfg(any(test, feature = "test-util"))]
/// A deterministic generator from a 64-bit seed. **Insecure**: for tests and simulations only.
#[derive(Debug)]
pub struct InsecureSeededRng(Mutex<ChaCha20Rng>);

#[cfg(any(test, feature = "test-util"))]
impl InsecureSeededRng {
    /// A generator whose output is fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(ChaCha20Rng::seed_from_u64(seed)))
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Rng for InsecureSeededRng {
    fn try_fill_bytes(&self, dest: &mut [u8]) -> Result<(), RngError> {
        let mut rng = self.0.lock().map_err(|_| RngError("generator lock poisoned"))?;
        rng.fill_bytes(dest);
        Ok(())
    }
}

/// Draws a uniform value in `0..bound` (`bound` in 1..=256) by rejection sampling.
pub(crate) fn uniform_below(rng: &impl Rng, bound: u16) -> Result<u8, RngError> {
    let bound = bound.clamp(1, 256);
    // Largest multiple of `bound` that fits in 0..=255, so every value is equally likely.
    let zone = 256 - (256 % bound);
    loop {
        let mut byte = [0u8; 1];
        rng.try_fill_bytes(&mut byte)?;
        let v = u16::from(byte[0]);
        if v < zone {
            return Ok((v % bound) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_deterministic_and_os_is_not() {
        let (a, b) = (InsecureSeededRng::new(7), InsecureSeededRng::new(7));
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.try_fill_bytes(&mut x).unwrap();
        b.try_fill_bytes(&mut y).unwrap();
        assert_eq!(x, y);
        let os = OsRng::new().unwrap();
        os.try_fill_bytes(&mut y).unwrap();
        assert_ne!(x, y);
    }

    /// A fork or a VM snapshot copies the process's memory, generator state included. The
    /// default generator has no state to copy: the copy and the original draw different bytes.
    /// (A user-space generator seeded once, such as `InsecureSeededRng`, repeats itself.)
    #[test]
    fn a_copy_of_the_default_generator_does_not_repeat_it() {
        let original = OsRng::new().unwrap();
        let copy = original;
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        original.try_fill_bytes(&mut x).unwrap();
        copy.try_fill_bytes(&mut y).unwrap();
        assert_ne!(x, y);
        // What a copied user-space state does:
        let seeded = InsecureSeededRng::new(9);
        let state = seeded.0.lock().unwrap().clone();
        let copied = InsecureSeededRng(Mutex::new(state));
        seeded.try_fill_bytes(&mut x).unwrap();
        copied.try_fill_bytes(&mut y).unwrap();
        assert_eq!(x, y);
    }

    #[test]
    fn uniform_below_is_in_range_and_covers_it() {
        let rng = InsecureSeededRng::new(1);
        let mut seen = [false; 32];
        for _ in 0..2000 {
            let v = uniform_below(&rng, 32).unwrap();
            seen[usize::from(v)] = true;
        }
        assert!(seen.iter().all(|s| *s));
        for _ in 0..100 {
            assert!(uniform_below(&rng, 31).unwrap() < 31);
        }
    }
}
