//! The primitives, in one place: HKDF-SHA-256 key derivation, AES-256-CMAC
//! for key names, HMAC-SHA-256 for the multiset hash and the few other MACs,
//! AEGIS-256 and AEGIS-256X4 for everything sealed.
//!
//! Sealed layout: `ciphertext ‖ tag (16) ‖ nonce (16)`. The nonce goes last
//! so that opening happens in place and the plaintext is a prefix of the
//! buffer: no copy, even for a 16 MiB value. Nonces are 128 random bits,
//! zero-extended to AEGIS's 256: two seals under one key share a nonce with
//! probability about n^2 / 2^129, 2^-33 after n = 2^48 seals, so unlike
//! AES-GCM's 96-bit nonces (2^32 seals per key) there is no limit a store
//! can reach. The other 16 bytes would make every record 16 bytes longer.
//!
//! Why AEGIS and not AES-256-GCM (formats 1 and 2 used aws-lc-rs's): on the
//! same machine it opens 100 B in 50 ns against 66 ns and 4 KiB in 176 ns
//! against 326 ns, which is what lets sealed reads keep 0.7 of plain redb's
//! speed (docs/benchmarks.md). AEGIS (CAESAR portfolio; IRTF CFRG draft
//! `draft-irtf-cfrg-aegis-aead`; libsodium's `crypto_aead_aegis256`) has
//! 256-bit keys and a 128-bit tag; it is not FIPS-approved
//! (docs/threat-model.md).

use aegis::aegis256::Aegis256;
use aegis::aegis256x4::Aegis256X4;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes256Enc, Block};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::digest::generic_array::GenericArray;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::SealError;
use crate::keys::{fill_random, RootKey, KEY_LEN};

pub(crate) const TAG_LEN: usize = 16;
/// Random bytes of a nonce, as stored; AEGIS takes them zero-extended.
const NONCE_LEN: usize = 16;
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

/// Plaintexts this long or longer are sealed with AEGIS-256X4, shorter ones
/// with AEGIS-256. AEGIS-256X4 runs four AEGIS-256 states side by side
/// (AVX-512 VAES where the CPU has it): 2.7x as fast at 4 KiB, but its
/// larger state costs more to set up, and below about 256 bytes AEGIS-256
/// is faster (docs/benchmarks.md). The length is not secret (the ciphertext
/// has it), and each variant has a key of its own.
const WIDE_FROM: usize = 256;

/// A sealing key: one key for each AEGIS variant, both derived from the
/// key it is made from.
pub(crate) struct SealKey {
    narrow: Zeroizing<[u8; KEY_LEN]>,
    wide: Zeroizing<[u8; KEY_LEN]>,
}

impl SealKey {
    pub(crate) fn new(bytes: &[u8; KEY_LEN]) -> Self {
        // Separate keys, so that no key is ever used with two algorithms.
        let prf = MacKey::new(bytes);
        SealKey {
            narrow: Zeroizing::new(prf.mac(&[b"warden-seal/v3/aegis-256"])),
            wide: Zeroizing::new(prf.mac(&[b"warden-seal/v3/aegis-256x4"])),
        }
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
        let mut random = [0u8; NONCE_LEN];
        fill_random(&mut random)?;
        let nonce = extend_nonce(&random);
        let tag: [u8; TAG_LEN] = if buf.len() < WIDE_FROM {
            Aegis256::<TAG_LEN>::new(&self.narrow, &nonce).encrypt_in_place(&mut buf, aad)
        } else {
            Aegis256X4::<TAG_LEN>::new(&self.wide, &nonce).encrypt_in_place(&mut buf, aad)
        };
        buf.extend_from_slice(&tag);
        buf.extend_from_slice(&random);
        Ok(buf)
    }

    /// Opens a sealed record in place and returns the plaintext.
    pub(crate) fn open(&self, aad: &[u8], mut sealed: Vec<u8>) -> Result<Vec<u8>, Unauthentic> {
        let plain_len = self.open_in_place(aad, &mut sealed)?.len();
        sealed.truncate(plain_len);
        Ok(sealed)
    }

    /// Opens a sealed record in place; the plaintext is a prefix of `sealed`.
    pub(crate) fn open_in_place<'b>(
        &self,
        aad: &[u8],
        sealed: &'b mut [u8],
    ) -> Result<&'b mut [u8], Unauthentic> {
        let plain_len = sealed.len().checked_sub(SEAL_OVERHEAD).ok_or(Unauthentic)?;
        let (text, trailer) = sealed.split_at_mut(plain_len);
        let (tag, random) = trailer.split_at(TAG_LEN);
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| Unauthentic)?;
        let nonce = extend_nonce(random.try_into().map_err(|_| Unauthentic)?);
        let opened = if plain_len < WIDE_FROM {
            Aegis256::<TAG_LEN>::new(&self.narrow, &nonce).decrypt_in_place(text, tag, aad)
        } else {
            Aegis256X4::<TAG_LEN>::new(&self.wide, &nonce).decrypt_in_place(text, tag, aad)
        };
        opened.map_err(|_| Unauthentic)?;
        Ok(text)
    }
}

/// AEGIS-256's 256-bit nonce from the stored 128 random bits.
fn extend_nonce(random: &[u8; NONCE_LEN]) -> [u8; 32] {
    let mut nonce = [0u8; 32];
    nonce[..NONCE_LEN].copy_from_slice(random);
    nonce
}

/// A pseudo-random function for key names: AES-256-CMAC (NIST SP 800-38B,
/// RFC 4493) with a 256-bit key and a 128-bit output. Every `get` computes
/// one, to find its record, so it has to be cheap: two AES-256 blocks (with
/// AES-NI) for names of 17 to 32 bytes, about 30 ns, against 90-100 ns for
/// HMAC-SHA-256. CMAC is a PRF as long as AES is a PRP (its advantage grows
/// with the square of the blocks processed over 2^128), and nobody without
/// the key can compute it, so the names a guest chooses collide only with
/// probability about n^2 / 2^129 for n keys in a namespace.
///
/// Written here on top of the `aes` crate's block cipher rather than taken
/// from the `cmac` crate, whose state (1 KiB, with decryption round keys
/// CMAC never uses) must be cloned for every message: 95-100 ns per name.
/// Tests check it against the `cmac` crate for every length up to 100 bytes
/// and against the AES-256 examples of SP 800-38B.
pub(crate) struct Prf {
    aes: Aes256Enc,
    /// CMAC's subkeys, for a complete and for a padded last block.
    k1: Zeroizing<[u8; 16]>,
    k2: Zeroizing<[u8; 16]>,
}

/// Doubling in GF(2^128) with CMAC's polynomial (SP 800-38B, 6.1).
fn dbl(block: &[u8; 16]) -> [u8; 16] {
    let v = u128::from_be_bytes(*block);
    ((v << 1) ^ ((v >> 127) * 0x87)).to_be_bytes()
}

fn xor_into(acc: &mut [u8; 16], bytes: &[u8]) {
    for (a, b) in acc.iter_mut().zip(bytes) {
        *a ^= b;
    }
}

impl Prf {
    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Self {
        let aes = Aes256Enc::new(key.into());
        let mut l = Block::default();
        aes.encrypt_block(&mut l);
        let l = Zeroizing::new(<[u8; 16]>::from(l));
        let k1 = Zeroizing::new(dbl(&l));
        let k2 = Zeroizing::new(dbl(&k1));
        Prf { aes, k1, k2 }
    }

    fn encrypt(&self, x: &mut [u8; 16]) {
        let block = Block::from_mut_slice(x);
        self.aes.encrypt_block(block);
    }

    /// CMAC of `msg`.
    pub(crate) fn prf(&self, msg: &[u8]) -> [u8; 16] {
        let mut x = [0u8; 16];
        for step in 0..cmac_blocks(msg) {
            self.absorb(&mut x, msg, step);
            self.encrypt(&mut x);
        }
        x
    }

    /// CMAC of each of `msgs`, the same as [`Self::prf`] on each. CMAC chains
    /// a message's blocks, so one message waits for each AES call in turn;
    /// here [`LANES`] messages go through AES-NI's pipeline abreast. A batch
    /// read of 100 B values measured 0.02-0.03 faster against plain redb
    /// (docs/benchmarks.md).
    pub(crate) fn prf_all<M: AsRef<[u8]>>(&self, msgs: &[M]) -> Vec<[u8; 16]> {
        let mut out = vec![[0u8; 16]; msgs.len()];
        for (msgs, outs) in msgs.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let steps = msgs.iter().map(|m| cmac_blocks(m.as_ref())).max();
            // Lanes past the end of `msgs`, or whose message is done, carry
            // a block that is encrypted and ignored: fewer blocks than the
            // pipeline's width would be encrypted one at a time.
            let mut lanes = [Block::default(); LANES];
            for step in 0..steps.unwrap_or(0) {
                for ((lane, msg), x) in lanes.iter_mut().zip(msgs).zip(outs.iter_mut()) {
                    if step < cmac_blocks(msg.as_ref()) {
                        self.absorb(x, msg.as_ref(), step);
                        lane.copy_from_slice(x);
                    }
                }
                self.aes.encrypt_blocks(&mut lanes);
                for ((lane, msg), x) in lanes.iter().zip(msgs).zip(outs.iter_mut()) {
                    if step < cmac_blocks(msg.as_ref()) {
                        x.copy_from_slice(lane);
                    }
                }
            }
        }
        out
    }

    /// Mixes block `step` of `msg` into the CBC-MAC state `x`. Every block
    /// but the last is chained as in CBC-MAC; the last (1 to 16 bytes, or
    /// none for an empty message) is masked with K1 when complete, padded
    /// with 10* and masked with K2 otherwise.
    fn absorb(&self, x: &mut [u8; 16], msg: &[u8], step: usize) {
        let start = step * 16;
        if step + 1 < cmac_blocks(msg) {
            xor_into(x, &msg[start..start + 16]);
            return;
        }
        let last = &msg[start..];
        xor_into(x, last);
        if last.len() == 16 {
            xor_into(x, &*self.k1);
        } else {
            x[last.len()] ^= 0x80;
            xor_into(x, &*self.k2);
        }
    }
}

/// Messages hashed abreast by [`Prf::prf_all`]: the `aes` crate's AES-NI
/// backend encrypts 8 blocks at a time (and one at a time below that).
const LANES: usize = 8;

/// Number of blocks CMAC processes for `msg`: an empty message is one
/// (padded) block.
fn cmac_blocks(msg: &[u8]) -> usize {
    msg.len().div_ceil(16).max(1)
}

/// An HMAC-SHA-256 key (RFC 2104), kept as the SHA-256 states after the
/// key's inner and outer pads, so that the MAC of a message of up to 55
/// bytes costs exactly two compressions of `sha2`. The `hmac` crate does the
/// same two compressions with about 25 ns more bookkeeping per call (cloning
/// its buffered state, generic finalisation), and the multiset hash takes
/// two of these per write and one per record at every open. `verify`, which
/// is rare, still goes through `hmac` for its constant-time comparison; a
/// test checks the two agree.
#[derive(Clone)]
pub(crate) struct MacKey {
    inner: Zeroizing<[u32; 8]>,
    outer: Zeroizing<[u32; 8]>,
    hmac: Hmac<Sha256>,
}

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const BLOCK: usize = 64;

fn compress(state: &mut [u32; 8], block: &[u8; BLOCK]) {
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

fn state_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

impl MacKey {
    pub(crate) fn new(bytes: &[u8; KEY_LEN]) -> Self {
        // A 32-byte key is shorter than the block: it is zero-padded, not hashed.
        let mut ipad = Zeroizing::new([0x36u8; BLOCK]);
        let mut opad = Zeroizing::new([0x5cu8; BLOCK]);
        for (i, b) in bytes.iter().enumerate() {
            ipad[i] ^= b;
            opad[i] ^= b;
        }
        let mut inner = Zeroizing::new(SHA256_IV);
        compress(&mut inner, &ipad);
        let mut outer = Zeroizing::new(SHA256_IV);
        compress(&mut outer, &opad);
        MacKey {
            inner,
            outer,
            // HMAC takes keys of any length.
            hmac: <Hmac<Sha256> as Mac>::new_from_slice(bytes)
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length")),
        }
    }

    /// HMAC over the concatenation of `parts` (callers use fixed-length parts
    /// or put the variable one last, so the concatenation is unambiguous).
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        // Inner hash: SHA-256(key ^ ipad || message), from the state after
        // the pad block, with standard SHA-256 padding.
        let mut state = *self.inner;
        let mut block = [0u8; BLOCK];
        let mut fill = 0usize;
        let mut len = BLOCK as u64;
        for part in parts {
            let mut rest = *part;
            len += rest.len() as u64;
            if fill > 0 {
                let take = (BLOCK - fill).min(rest.len());
                block[fill..fill + take].copy_from_slice(&rest[..take]);
                fill += take;
                rest = &rest[take..];
                if fill < BLOCK {
                    continue;
                }
                compress(&mut state, &block);
            }
            let mut chunks = rest.chunks_exact(BLOCK);
            for chunk in &mut chunks {
                block.copy_from_slice(chunk);
                compress(&mut state, &block);
            }
            let tail = chunks.remainder();
            block[..tail.len()].copy_from_slice(tail);
            fill = tail.len();
        }
        block[fill] = 0x80;
        block[fill + 1..].fill(0);
        if fill >= BLOCK - 8 {
            // No room left for the 64-bit length: it goes in one more block.
            compress(&mut state, &block);
            block.fill(0);
        }
        block[BLOCK - 8..].copy_from_slice(&(len * 8).to_be_bytes());
        compress(&mut state, &block);
        // Outer hash: SHA-256(key ^ opad || inner digest): one block.
        let mut block = [0u8; BLOCK];
        block[..32].copy_from_slice(&state_bytes(&state));
        block[32] = 0x80;
        block[BLOCK - 8..].copy_from_slice(&(((BLOCK + 32) * 8) as u64).to_be_bytes());
        let mut state = *self.outer;
        compress(&mut state, &block);
        state_bytes(&state)
    }

    /// Constant-time check of a MAC.
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut m = self.hmac.clone();
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

    /// The two-compression HMAC is HMAC-SHA-256: same output as the `hmac`
    /// crate for every length around the block and padding boundaries, and
    /// however the message is split into parts.
    #[test]
    fn mac_is_hmac_sha256() {
        for key_byte in [0u8, 0x5c, 0xa7] {
            let key = [key_byte; 32];
            let k = MacKey::new(&key);
            let msg: Vec<u8> = (0..300u32).map(|i| (i * 131 + 7) as u8).collect();
            for len in 0..=msg.len() {
                let m = &msg[..len];
                let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
                reference.update(m);
                let expected: [u8; 32] = reference.finalize().into_bytes().into();
                assert_eq!(k.mac(&[m]), expected, "length {len}");
                assert!(k.verify(&[m], &expected));
                for split in [0, 1, len / 3, len / 2, len.saturating_sub(1), len] {
                    let split = split.min(len);
                    let (a, b) = m.split_at(split);
                    let (b, c) = b.split_at(b.len() / 2);
                    assert_eq!(k.mac(&[a, b, c]), expected, "length {len} split {split}");
                    assert_eq!(k.mac(&[a, &[], b, c, &[]]), expected);
                }
            }
        }
        // Known answers (Python's hmac module).
        assert_eq!(
            hex::encode(MacKey::new(&[0x0b; 32]).mac(&[b"Hi There"])),
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            hex::encode(MacKey::new(&key).mac(&[b"user/00001234/", b"profile"])),
            "88a5104e9226ff3fa0498a44ecf222c214976d8634edb5c885ce367ea2e7b33b"
        );
    }

    /// The CMAC is AES-256-CMAC: the `cmac` crate's output for every length
    /// around the block boundaries, and the AES-256 examples of NIST SP
    /// 800-38B (appendix D.3).
    #[test]
    fn prf_is_aes256_cmac() {
        use cmac::Mac;
        for key_byte in [0u8, 0x87, 0xff] {
            let key = [key_byte; 32];
            let p = Prf::new(&key);
            let msg: Vec<u8> = (0..100u32).map(|i| (i * 131 + 7) as u8).collect();
            for len in 0..=msg.len() {
                let mut reference = <cmac::Cmac<aes::Aes256> as Mac>::new_from_slice(&key).unwrap();
                reference.update(&msg[..len]);
                let expected: [u8; 16] = reference.finalize().into_bytes().into();
                assert_eq!(p.prf(&msg[..len]), expected, "length {len}");
            }
        }
        let p = Prf::new(
            &hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        let m = hex::decode(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
             30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
        )
        .unwrap();
        for (len, tag) in [
            (0, "028962f61b7bf89efc6b551f4667d983"),
            (16, "28a7023f452e8f82bd4bf28d8c37c35c"),
            (40, "aaf3d8f1de5640c232f5b169b9c911e6"),
            (64, "e1992190549f6ed5696a2c056c315410"),
        ] {
            assert_eq!(hex::encode(p.prf(&m[..len])), tag, "length {len}");
        }
    }

    /// Both AEGIS variants (the length picks one) open what they sealed,
    /// bind the AAD, and refuse a changed byte anywhere in the record.
    #[test]
    fn both_variants_round_trip_and_detect_changes() {
        let k = SealKey::new(&[9u8; 32]);
        for len in [0, 1, WIDE_FROM - 1, WIDE_FROM, 4096, 65536 + 7] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let sealed = k.seal(b"aad", &plain).unwrap();
            assert_eq!(sealed.len(), len + SEAL_OVERHEAD);
            assert_eq!(k.open(b"aad", sealed.clone()).unwrap(), plain, "{len}");
            assert!(k.open(b"aae", sealed.clone()).is_err(), "{len}");
            for at in [0, len / 2, len, len + TAG_LEN, sealed.len() - 1] {
                let mut changed = sealed.clone();
                changed[at] ^= 0x40;
                assert!(k.open(b"aad", changed).is_err(), "{len}: byte {at}");
            }
            // Another key, or the record one byte short, does not open.
            assert!(SealKey::new(&[8u8; 32])
                .open(b"aad", sealed.clone())
                .is_err());
            assert!(k.open(b"aad", sealed[1..].to_vec()).is_err(), "{len}");
        }
    }

    /// Hashing abreast gives each message its own CMAC, whatever the mix of
    /// lengths in a group of lanes and however many messages there are.
    #[test]
    fn prf_all_is_prf_of_each() {
        let p = Prf::new(&[0x5a; 32]);
        let bytes: Vec<u8> = (0..100u32).map(|i| (i * 97 + 3) as u8).collect();
        // Lengths 0..=100 in a scrambled order, so lanes of one group end at
        // different steps; 101 messages leave a last group of 5.
        let msgs: Vec<&[u8]> = (0..=100usize).map(|i| &bytes[..(i * 37) % 101]).collect();
        for n in [0, 1, 7, 8, 9, msgs.len()] {
            let expected: Vec<[u8; 16]> = msgs[..n].iter().map(|m| p.prf(m)).collect();
            assert_eq!(p.prf_all(&msgs[..n]), expected, "{n} messages");
        }
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
