//! The store's clear header: magic, format, store id, and a MAC by which a
//! root key is checked before anything is opened with it.

use super::StoreKeys;
use crate::error::{Result, SealError};
use crate::keys::KeySource;

/// Where the header is kept, in the meta table.
pub(super) const KEY: &[u8] = b"header";
const MAGIC: &[u8; 12] = b"warden-seal\0";
/// The store's format, in its clear header. 3: values, names and state
/// sealed with AEGIS-256 / AEGIS-256X4 (crypto.rs). 2 (refused): the same
/// with AES-256-GCM. 1 (refused): 48-byte lookup keys with HMAC-SHA-256,
/// names sealed into the records.
const FORMAT: u32 = 3;
const LEN: usize = 12 + 4 + 16 + 32;
const CHECK_LABEL: &[u8] = b"warden-seal/v1/check";

/// The header of a new store.
pub(super) fn encode(store_id: &[u8; 16], keys: &StoreKeys) -> Vec<u8> {
    let mut header = Vec::with_capacity(LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&FORMAT.to_le_bytes());
    header.extend_from_slice(store_id);
    header.extend_from_slice(&keys.check.mac(&[CHECK_LABEL, store_id]));
    header
}

/// Checks a store header and the root key against it; returns the store id
/// and the derived keys.
pub(super) fn unlock(
    header: &[u8],
    keys: &dyn KeySource,
    location: &str,
) -> Result<([u8; 16], StoreKeys)> {
    let (store_id, check) = match parse_header(header) {
        Ok(parsed) => parsed,
        Err(HeaderError::Format(found)) => {
            return Err(SealError::UnsupportedFormat {
                location: location.to_string(),
                found,
                supported: FORMAT,
            })
        }
        Err(HeaderError::Bad) => {
            return Err(SealError::NotAStore {
                location: location.to_string(),
                detail: "bad header".into(),
            })
        }
    };
    let store_keys = StoreKeys::derive(keys.root_key(&store_id)?, &store_id);
    if !store_keys.check.verify(&[CHECK_LABEL, &store_id], &check) {
        return Err(SealError::WrongKey {
            location: location.to_string(),
        });
    }
    Ok((store_id, store_keys))
}

enum HeaderError {
    Bad,
    /// A sealed-store header of another format version.
    Format(u32),
}

fn parse_header(h: &[u8]) -> std::result::Result<([u8; 16], [u8; 32]), HeaderError> {
    if h.len() < 16 || &h[..12] != MAGIC {
        return Err(HeaderError::Bad);
    }
    let format = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    if format != FORMAT {
        return Err(HeaderError::Format(format));
    }
    if h.len() != LEN {
        return Err(HeaderError::Bad);
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[16..32]);
    let mut check = [0u8; 32];
    check.copy_from_slice(&h[32..64]);
    Ok((id, check))
}
