//! The primitives, in one place: HKDF-SHA-256 key derivation, HMAC-SHA-256
//! for key names and the multiset hash, AES-256-GCM for everything sealed.
//!
//! Sealed layout: `ciphertext ‖ tag (16) ‖ nonce (12)`. The nonce goes last
//! so that opening happens in place and the plaintext is a prefix of the
//! buffer: no copy, even for a 16 MiB value. Nonces are random; with 96-bit
//! random nonces a key should seal at most 2^32 records (collision chance
//! 2^-32), which is per namespace and far beyond what one app writes.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::SealError;
use crate::keys::{fill_random, RootKey, KEY_LEN};

pub(crate) const TAG_LEN: usize = 16;
/// Bytes a sealed record is longer than its plaintext.
pub(crate) const SEAL_OVERHEAD: usize = TAG_LEN + NONCE_LEN;

/// Derives a 32-byte key from the root key: HKDF-SHA-256 with `salt` (the
/// store's id) and `info` made of a fixed label and, for namespaces, the name.
pub(crate) fn derive(root: &RootKey, salt: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; KEY_LEN]> {
    let hk = Hkdf::<Sha256>::new(Some(salt), root.secret());
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    // 32 bytes is far below HKDF's limit of 255 * 32: this cannot fail.
    let _ = hk.expand_multi_info(info, out.as_mut());
    out
}

/// The AEAD did not accept a sealed record.
#[derive(Debug)]
pub(crate) struct Unauthentic;

/// An AES-256-GCM key.
pub(crate) struct SealKey(LessSafeKey);

impl SealKey {
    pub(crate) fn new(bytes: &[u8; KEY_LEN]) -> Self {
        // AES-256 takes exactly 32 bytes, which is what we always pass.
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .unwrap_or_else(|_| unreachable!("AES-256 key length is 32"));
        SealKey(LessSafeKey::new(unbound))
    }

    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal_with_room(aad, plaintext, 0)
    }

    /// Seals into a buffer with `room` spare bytes, for a caller that will
    /// append to it.
    pub(crate) fn seal_with_room(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        room: usize,
    ) -> Result<Vec<u8>, SealError> {
        let mut buf = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD + room);
        buf.extend_from_slice(plaintext);
        self.seal_vec(aad, buf)
    }

    /// Seals `buf` in place (it holds the plaintext).
    pub(crate) fn seal_vec(&self, aad: &[u8], mut buf: Vec<u8>) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| SealError::Key("AES-GCM refused to seal (record too large)".into()))?;
        buf.extend_from_slice(&nonce);
        Ok(buf)
    }

    /// Opens a sealed record in place and returns the plaintext.
    pub(crate) fn open(&self, aad: &[u8], mut sealed: Vec<u8>) -> Result<Vec<u8>, Unauthentic> {
        let body_len = sealed
            .len()
            .checked_sub(NONCE_LEN)
            .filter(|&n| n >= TAG_LEN)
            .ok_or(Unauthentic)?;
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[body_len..]).map_err(|_| Unauthentic)?;
        let plain_len = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut sealed[..body_len])
            .map_err(|_| Unauthentic)?
            .len();
        sealed.truncate(plain_len);
        Ok(sealed)
    }
}

/// An HMAC-SHA-256 key, kept with its inner and outer pads already hashed.
#[derive(Clone)]
pub(crate) struct MacKey(Hmac<Sha256>);

impl MacKey {
    pub(crate) fn new(bytes: &[u8; KEY_LEN]) -> Self {
        // HMAC takes keys of any length.
        MacKey(
            <Hmac<Sha256> as Mac>::new_from_slice(bytes)
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length")),
        )
    }

    /// HMAC over the concatenation of `parts` (callers use fixed-length parts
    /// or put the variable one last, so the concatenation is unambiguous).
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.0.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// Constant-time check of a MAC.
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut m = self.0.clone();
        for p in parts {
            m.update(p);
        }
        m.verify_slice(tag).is_ok()
    }
}

/// An incremental multiset hash (MSet-Add-Hash, Clarke et al. 2003): the sum
/// modulo 2^256 of a keyed PRF of each element. Adding and removing an
/// element are O(1), so each write updates it; without the PRF key nobody can
/// find another multiset with the same sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Multiset([u64; 4]);

impl Multiset {
    pub(crate) fn add(&mut self, element: &[u8; 32]) {
        let e = limbs(element);
        let mut carry = false;
        for (a, b) in self.0.iter_mut().zip(e) {
            let (s1, c1) = a.overflowing_add(b);
            let (s2, c2) = s1.overflowing_add(carry as u64);
            *a = s2;
            carry = c1 || c2;
        }
    }

    pub(crate) fn remove(&mut self, element: &[u8; 32]) {
        let e = limbs(element);
        let mut borrow = false;
        for (a, b) in self.0.iter_mut().zip(e) {
            let (d1, b1) = a.overflowing_sub(b);
            let (d2, b2) = d1.overflowing_sub(borrow as u64);
            *a = d2;
            borrow = b1 || b2;
        }
    }

    pub(crate) fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    pub(crate) fn from_bytes(bytes: &[u8; 32]) -> Self {
        Multiset(limbs(bytes))
    }
}

fn limbs(bytes: &[u8; 32]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (limb, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiset_is_order_free_and_invertible() {
        let a = [0xffu8; 32];
        let b = [1u8; 32];
        let mut x = Multiset::default();
        x.add(&a);
        x.add(&b);
        let mut y = Multiset::default();
        y.add(&b);
        y.add(&a);
        assert_eq!(x, y);
        x.remove(&a);
        x.remove(&b);
        assert_eq!(x, Multiset::default());
        assert_eq!(Multiset::from_bytes(&y.to_bytes()), y);
    }

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let k = SealKey::new(&[7u8; 32]);
        let sealed = k.seal(b"aad", b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(k.open(b"aad", sealed.clone()).unwrap(), b"hello");
        assert!(k.open(b"other", sealed.clone()).is_err());
        let mut flipped = sealed;
        flipped[0] ^= 1;
        assert!(k.open(b"aad", flipped).is_err());
        assert!(k.open(b"aad", vec![0; 10]).is_err());
    }
}
