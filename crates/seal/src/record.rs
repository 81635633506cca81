//! The layout of one key's data: its lookup key, its record (small sealed
//! value and version), its sealed name and, for large values, its blob; and
//! reading a value back with every check.

use crate::backend::{ReadTxn, Table};
use crate::crypto::{Prf, SealKey};
use crate::error::{KeyName, Result, SealError};

/// Length of a namespace tag: a keyed hash of the namespace name, the first
/// bytes of every lookup key of the namespace. 64 bits: two namespaces of a
/// store share a tag with probability about n^2 / 2^65 for n namespaces, and
/// a namespace that would share one is refused when it is created
/// ([`SealError::NamespaceCollision`]), so a tag never covers two.
pub(crate) const TAG_LEN: usize = 8;
/// Length of the keyed hash of a key name (AES-256-CMAC, 128 bits).
pub(crate) const KEY_HASH_LEN: usize = 16;
/// Lookup key of a record in [`Table::Records`] (and of its sealed name in
/// [`Table::Names`] and its value in [`Table::Blobs`]): namespace tag ‖
/// keyed hash of the key name. Short and of fixed width, so that the record
/// table's B-tree is no deeper than a plain store's with readable names.
pub(crate) const LOOKUP_LEN: usize = TAG_LEN + KEY_HASH_LEN;
pub(crate) type LookupKey = [u8; LOOKUP_LEN];

/// The keys of one namespace.
pub(crate) struct NsKeys {
    pub(crate) name: String,
    pub(crate) tag: [u8; TAG_LEN],
    /// Seals values. Names have a key of their own, so a sealed name never
    /// opens as a value nor the other way round, without a label in the AAD.
    pub(crate) seal: SealKey,
    pub(crate) name_seal: SealKey,
    pub(crate) prf: Prf,
}

impl NsKeys {
    pub(crate) fn lookup_key(&self, key: &[u8]) -> LookupKey {
        self.tagged(&self.prf.prf(key))
    }

    /// [`Self::lookup_key`] of each of `keys`, hashed abreast.
    pub(crate) fn lookup_keys<K: AsRef<[u8]>>(&self, keys: &[K]) -> Vec<LookupKey> {
        self.prf
            .prf_all(keys)
            .iter()
            .map(|hash| self.tagged(hash))
            .collect()
    }

    fn tagged(&self, key_hash: &[u8; KEY_HASH_LEN]) -> LookupKey {
        let mut lk = [0u8; LOOKUP_LEN];
        lk[..TAG_LEN].copy_from_slice(&self.tag);
        lk[TAG_LEN..].copy_from_slice(key_hash);
        lk
    }

    pub(crate) fn subject(&self, key: &[u8]) -> String {
        format!("key {} in namespace {:?}", KeyName::of(key), self.name)
    }

    /// A sealed name is bound to its lookup key (its AAD), so it cannot be
    /// moved to another key; being under the namespace's name key binds it
    /// to the namespace.
    pub(crate) fn seal_name(&self, lk: &LookupKey, key: &[u8]) -> Result<Vec<u8>> {
        self.name_seal.seal(lk, key)
    }

    pub(crate) fn open_name(&self, lk: &LookupKey, sealed: Vec<u8>) -> Result<Vec<u8>> {
        self.name_seal.open(lk, sealed).map_err(|_| {
            SealError::integrity(
                format!("a key in namespace {:?}", self.name),
                "its sealed name does not authenticate (the record was modified)",
            )
        })
    }
}

/// AAD of a value: lookup key ‖ version (32 bytes, two GHASH blocks). The
/// namespace is bound by the namespace's own key (and its tag), the key by
/// its keyed hash, the version by itself.
pub(crate) fn value_aad(lk: &LookupKey, version: u64) -> [u8; LOOKUP_LEN + 8] {
    let mut aad = [0u8; LOOKUP_LEN + 8];
    aad[..LOOKUP_LEN].copy_from_slice(lk);
    aad[LOOKUP_LEN..].copy_from_slice(&version.to_le_bytes());
    aad
}

/// Values up to this size are sealed into their record, so that reading
/// them is one lookup; larger ones go to [`Table::Blobs`], which keeps the
/// record table (read whole at open) small.
pub(crate) const INLINE_MAX: usize = 4096;
pub(crate) const TRAILER_LEN: usize = 1 + 8;
const INLINE: u8 = 0;
const IN_BLOB: u8 = 1;

/// An entry of [`Table::Records`]:
/// `[sealed value, if inline] ‖ layout (u8) ‖ version (u64 LE)`.
/// The trailer goes last so that an inline value is a prefix of the entry
/// and opens in place. The key's sealed name is in [`Table::Names`]: only
/// listing and export read it.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) version: u64,
    pub(crate) inline: bool,
    /// Length of the inline sealed value (0 when the value is a blob).
    pub(crate) value_len: usize,
}

impl Record {
    pub(crate) fn parse(entry: &[u8]) -> Option<Record> {
        let value_len = entry.len().checked_sub(TRAILER_LEN)?;
        let trailer = &entry[value_len..];
        let inline = match trailer[0] {
            INLINE => true,
            IN_BLOB => false,
            _ => return None,
        };
        let version = u64::from_le_bytes(trailer[1..].try_into().ok()?);
        if !inline && value_len != 0 {
            return None;
        }
        Some(Record {
            version,
            inline,
            value_len,
        })
    }

    /// Builds an entry; `inline_value` (already sealed) becomes its prefix.
    pub(crate) fn encode(inline_value: Option<Vec<u8>>, version: u64) -> Vec<u8> {
        let layout = if inline_value.is_some() {
            INLINE
        } else {
            IN_BLOB
        };
        let mut out = inline_value.unwrap_or_default();
        out.reserve(TRAILER_LEN);
        out.push(layout);
        out.extend_from_slice(&version.to_le_bytes());
        out
    }
}

/// Reads a record's value: the record gives the version (which the state's
/// multiset hash vouches for), the AEAD checks that the value was sealed for
/// this namespace, key and version.
pub(crate) fn read_value(txn: &dyn ReadTxn, ns: &NsKeys, key: &[u8]) -> Result<Option<Vec<u8>>> {
    read_value_at(txn, ns, &ns.lookup_key(key), || ns.subject(key))
}

/// [`read_value`] by lookup key.
pub(crate) fn read_value_at(
    txn: &dyn ReadTxn,
    ns: &NsKeys,
    lk: &LookupKey,
    subject: impl Fn() -> String,
) -> Result<Option<Vec<u8>>> {
    let mut value = Vec::new();
    Ok(open_value_into(txn, ns, lk, &mut value, subject)?.then_some(value))
}

/// Opens the value of `lk` into `buf`, replacing what it held, so that a
/// caller reading many values can reuse one buffer; says whether there is a
/// value.
pub(crate) fn open_value_into(
    txn: &dyn ReadTxn,
    ns: &NsKeys,
    lk: &LookupKey,
    buf: &mut Vec<u8>,
    subject: impl Fn() -> String,
) -> Result<bool> {
    let mut found = None;
    txn.get_with(Table::Records, lk, &mut |entry| {
        let record = Record::parse(entry).ok_or_else(|| malformed(subject()))?;
        buf.clear();
        buf.extend_from_slice(&entry[..record.value_len]);
        found = Some(record);
        Ok(())
    })?;
    let Some(record) = found else {
        return Ok(false);
    };
    if !record.inline {
        let in_blob = txn.get_with(Table::Blobs, lk, &mut |sealed| {
            buf.extend_from_slice(sealed);
            Ok(())
        })?;
        if !in_blob {
            return Err(SealError::integrity(
                subject(),
                "the value is missing from the store file",
            ));
        }
    }
    let plain_len = ns
        .seal
        .open_in_place(&value_aad(lk, record.version), buf)
        .map_err(|_| {
            SealError::integrity(
                subject(),
                "the value does not authenticate (it was modified, swapped, moved or replayed)",
            )
        })?
        .len();
    buf.truncate(plain_len);
    Ok(true)
}

/// The error for a record that does not parse.
pub(crate) fn malformed(subject: String) -> SealError {
    SealError::integrity(subject, "its record is malformed")
}

/// The key range of a namespace in the records: `[tag, tag + 1)`.
pub(crate) fn tag_range(tag: &[u8; TAG_LEN]) -> ([u8; TAG_LEN], Option<[u8; TAG_LEN]>) {
    let mut end = *tag;
    for byte in end.iter_mut().rev() {
        if *byte == 0xff {
            *byte = 0;
        } else {
            *byte += 1;
            return (*tag, Some(end));
        }
    }
    (*tag, None)
}
