//! Values larger than one etcd request may carry (`--max-request-bytes`,
//! 1.5 MiB by default).
//!
//! [`put`] writes a value as chunks under `CHUNKS/<random id>/<index>`,
//! each in a request of its own, and returns a small [`ChunkRef`]; the
//! caller then commits the reference in a transaction of its own (so the
//! value appears atomically, with whatever else that transaction does) and
//! deletes the chunks of a value it replaced with [`delete`] after the
//! commit. Chunks are never changed, so a reader at any revision where the
//! reference exists finds them (until they are deleted: read the reference
//! and the chunks at one revision).
//!
//! A crash between writing chunks and committing, or between committing
//! and deleting replaced chunks, leaves orphan chunks: unreferenced keys
//! that cost space, never correctness. [`ids`] lists the chunk sets so that
//! a caller can remove those it no longer references.

use sha2::{Digest, Sha256};

use crate::client::{prefix_end, EtcdClient};
use crate::error::{show_key, EtcdError};

const MAGIC: &[u8; 8] = b"WETCDCH1";
/// Encoded length of a [`ChunkRef`].
pub const REF_LEN: usize = MAGIC.len() + ID_LEN + 8 + 4 + 32;
const ID_LEN: usize = 16;

/// Where a chunked value is and how to check it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    pub id: [u8; ID_LEN],
    pub len: u64,
    pub count: u32,
    /// SHA-256 of the whole value: chunks that do not add up are refused.
    pub digest: [u8; 32],
}

impl ChunkRef {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REF_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.digest);
        out
    }

    /// `None` unless `bytes` is an encoded reference.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != REF_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return None;
        }
        let rest = &bytes[MAGIC.len()..];
        Some(ChunkRef {
            id: rest[..ID_LEN].try_into().ok()?,
            len: u64::from_le_bytes(rest[ID_LEN..ID_LEN + 8].try_into().ok()?),
            count: u32::from_le_bytes(rest[ID_LEN + 8..ID_LEN + 12].try_into().ok()?),
            digest: rest[ID_LEN + 12..].try_into().ok()?,
        })
    }

    /// The key prefix of this value's chunks under `chunks`.
    pub fn prefix(&self, chunks: &[u8]) -> Vec<u8> {
        let mut k = chunks.to_vec();
        k.extend_from_slice(hex::encode(self.id).as_bytes());
        k.push(b'/');
        k
    }

    fn key(&self, chunks: &[u8], index: u32) -> Vec<u8> {
        let mut k = self.prefix(chunks);
        k.extend_from_slice(format!("{index:08x}").as_bytes());
        k
    }
}

/// The chunk size for a cluster: what fits in one request with room for
/// the key and the request's framing.
pub fn chunk_size(client: &EtcdClient) -> usize {
    let limit = client.target().max_request_bytes;
    (limit.saturating_sub(64 * 1024)).clamp(4096, 1024 * 1024)
}

/// Writes `value` as chunks under the key prefix `chunks` (which should
/// end with `/`); see the module documentation.
pub fn put(client: &EtcdClient, chunks: &[u8], value: &[u8]) -> Result<ChunkRef, EtcdError> {
    let mut id = [0u8; ID_LEN];
    getrandom::fill(&mut id).map_err(|e| EtcdError::Runtime(format!("no randomness: {e}")))?;
    let size = chunk_size(client);
    let count = u32::try_from(value.len().div_ceil(size)).map_err(|_| EtcdError::Corrupt {
        key: show_key(chunks),
        detail: "value too large to chunk".into(),
    })?;
    let reference = ChunkRef {
        id,
        len: value.len() as u64,
        count,
        digest: Sha256::digest(value).into(),
    };
    for (i, part) in value.chunks(size).enumerate() {
        if let Err(e) = client.put(&reference.key(chunks, i as u32), part) {
            // Best effort: what was written is an orphan otherwise.
            let _ = delete(client, chunks, &reference);
            return Err(e);
        }
    }
    Ok(reference)
}

/// Reads the value of `reference` at `revision` (0: the newest) and checks
/// it against its digest.
pub fn get(
    client: &EtcdClient,
    chunks: &[u8],
    reference: &ChunkRef,
    revision: i64,
) -> Result<Vec<u8>, EtcdError> {
    let corrupt = |detail: String| EtcdError::Corrupt {
        key: show_key(&reference.prefix(chunks)),
        detail,
    };
    let len = usize::try_from(reference.len).map_err(|_| corrupt("too large".into()))?;
    let mut value = Vec::with_capacity(len.min(1 << 30));
    for i in 0..reference.count {
        let (entry, _) = client.get(&reference.key(chunks, i), revision)?;
        let entry = entry.ok_or_else(|| corrupt(format!("chunk {i} is missing")))?;
        value.extend_from_slice(&entry.value);
        if value.len() > len {
            return Err(corrupt("the chunks are longer than the value".into()));
        }
    }
    if value.len() != len || Sha256::digest(&value)[..] != reference.digest {
        return Err(corrupt("the chunks do not match the value's digest".into()));
    }
    Ok(value)
}

/// Deletes the chunks of `reference`.
pub fn delete(client: &EtcdClient, chunks: &[u8], reference: &ChunkRef) -> Result<(), EtcdError> {
    client.delete_prefix(&reference.prefix(chunks)).map(|_| ())
}

/// The ids of every chunk set stored under `chunks` (referenced or not).
pub fn ids(client: &EtcdClient, chunks: &[u8]) -> Result<Vec<[u8; ID_LEN]>, EtcdError> {
    let mut ids: Vec<[u8; ID_LEN]> = Vec::new();
    let end = prefix_end(chunks);
    let mut from = chunks.to_vec();
    loop {
        let page = client.range(&from, &end, 0, 512, true)?;
        for entry in &page.entries {
            let rest = &entry.key[chunks.len()..];
            let id = rest
                .get(..ID_LEN * 2)
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| <[u8; ID_LEN]>::try_from(b).ok());
            if let Some(id) = id {
                if ids.last() != Some(&id) {
                    ids.push(id);
                }
            }
        }
        match page.entries.last() {
            Some(last) if page.more => {
                from = last.key.clone();
                from.push(0);
            }
            _ => return Ok(ids),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_and_garbage_is_refused() {
        let r = ChunkRef {
            id: [7; ID_LEN],
            len: 17 << 20,
            count: 18,
            digest: [9; 32],
        };
        assert_eq!(ChunkRef::decode(&r.encode()), Some(r.clone()));
        assert_eq!(ChunkRef::decode(&r.encode()[1..]), None);
        assert_eq!(ChunkRef::decode(b"WETCDCH0"), None);
        assert_eq!(r.prefix(b"p/c/"), b"p/c/07070707070707070707070707070707/");
        assert_eq!(prefix_end(b"a/"), b"a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }
}
