//! A namespace: one app's (or one mount's) keys and values.

use std::ops::Bound;
use std::sync::Arc;

use crate::backend::{ReadTxn, Table};
use crate::error::{KeyName, Result, SealError};
use crate::record::{
    open_value_into, read_value, tag_range, LookupKey, NsKeys, KEY_HASH_LEN, LOOKUP_LEN, TAG_LEN,
};
use crate::store::Store;
use crate::transaction::Transaction;

/// A handle on one namespace of a [`Store`]. Cheap to clone; keys are byte
/// strings (`&str` works too) and values are byte strings of any size the
/// backend takes (redb: up to about 3 GiB; tested with 16 MiB).
///
/// Every method is one transaction. Namespaces cannot read each other: each
/// has its own keys, and a value sealed for one does not open in another.
#[derive(Clone)]
pub struct Namespace {
    store: Store,
    keys: Arc<NsKeys>,
}

/// One page of [`Namespace::list`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// Key names, in no meaningful order (the order of their keyed hashes).
    pub keys: Vec<Vec<u8>>,
    /// Pass to the next call to continue; `None` when there is nothing more.
    pub next: Option<String>,
}

impl Namespace {
    pub(crate) fn new(store: Store, keys: Arc<NsKeys>) -> Self {
        Namespace { store, keys }
    }

    pub(crate) fn keys(&self) -> &Arc<NsKeys> {
        &self.keys
    }

    pub fn name(&self) -> &str {
        &self.keys.name
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.store.read(|t| read_value(t, &self.keys, key.as_ref()))
    }

    pub fn exists(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let lk = self.keys.lookup_key(key.as_ref());
        self.store
            .read(|t| Ok(t.get(Table::Records, &lk)?.is_some()))
    }

    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.store
            .write(|tx| tx.set_raw(&self.keys, key.as_ref(), value.as_ref()))
    }

    /// Removes `key`; says whether it was there.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.store
            .write(|tx| tx.delete_raw(&self.keys, key.as_ref()))
    }

    /// Values of `keys`, from one snapshot.
    pub fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut values = Vec::with_capacity(keys.len());
        self.get_many_with(keys, |_, value| {
            values.push(value.map(<[u8]>::to_vec));
            Ok::<_, SealError>(())
        })?;
        Ok(values)
    }

    /// Calls `each(i, value)` with the value of `keys[i]` (`None`: no such
    /// key), in order, all from one snapshot. Each value is opened into one
    /// buffer that the next one reuses, so unlike [`Self::get_many`] this
    /// keeps one value in memory, not the whole batch. The first error, the
    /// store's or one `each` returns, ends the batch and is returned.
    pub fn get_many_with<K: AsRef<[u8]>, E: From<SealError>>(
        &self,
        keys: &[K],
        mut each: impl FnMut(usize, Option<&[u8]>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        // Every name is hashed before the first lookup, several abreast
        // (docs/benchmarks.md).
        let lookups = self.keys.lookup_keys(keys);
        let mut buf = Vec::new();
        let mut stopped = None;
        self.store.read(|t| {
            for (i, (lk, k)) in lookups.iter().zip(keys).enumerate() {
                let found = open_value_into(t, &self.keys, lk, &mut buf, || {
                    self.keys.subject(k.as_ref())
                })?;
                if let Err(e) = each(i, found.then_some(buf.as_slice())) {
                    stopped = Some(e);
                    break;
                }
            }
            Ok(())
        })?;
        stopped.map_or(Ok(()), Err)
    }

    /// Sets all `entries` in one atomic transaction.
    pub fn set_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, entries: &[(K, V)]) -> Result<()> {
        self.store.write(|tx| {
            for (k, v) in entries {
                tx.set_raw(&self.keys, k.as_ref(), v.as_ref())?;
            }
            Ok(())
        })
    }

    /// Deletes all `keys` in one atomic transaction; returns how many existed.
    pub fn delete_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<usize> {
        self.store.write(|tx| {
            let mut n = 0;
            for k in keys {
                n += usize::from(tx.delete_raw(&self.keys, k.as_ref())?);
            }
            Ok(n)
        })
    }

    /// Adds `delta` to the integer stored (as decimal text) under `key`, which
    /// counts as 0 if absent, and returns the new value. Atomic.
    pub fn increment(&self, key: impl AsRef<[u8]>, delta: i64) -> Result<i64> {
        let key = key.as_ref();
        self.store.write(|tx| {
            let current = match read_value(tx_read(tx), &self.keys, key)? {
                None => 0,
                Some(v) => std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .ok_or_else(|| SealError::NotANumber {
                        namespace: self.keys.name.clone(),
                        key: KeyName::of(key),
                    })?,
            };
            let new = current
                .checked_add(delta)
                .ok_or_else(|| SealError::Overflow {
                    namespace: self.keys.name.clone(),
                    key: KeyName::of(key),
                    delta,
                })?;
            tx.set_raw(&self.keys, key, new.to_string().as_bytes())?;
            Ok(new)
        })
    }

    /// Atomically: if the value of `key` is `expected` (`None`: absent), make
    /// it `new` (`None`: delete it) and return `true`; otherwise change
    /// nothing and return `false`.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        let key = key.as_ref();
        self.store.write(|tx| {
            let current = read_value(tx_read(tx), &self.keys, key)?;
            if current.as_deref() != expected {
                return Ok(false);
            }
            match new {
                Some(v) => tx.set_raw(&self.keys, key, v)?,
                None => {
                    tx.delete_raw(&self.keys, key)?;
                }
            }
            Ok(true)
        })
    }

    /// Runs `f` as one atomic transaction on this namespace (see
    /// [`Store::transaction`] for one spanning namespaces).
    pub fn transaction<T, E: From<SealError>>(
        &self,
        mut f: impl FnMut(&mut NsTransaction<'_, '_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.store.write(|tx| {
            let mut ns_tx = NsTransaction { tx, ns: &self.keys };
            f(&mut ns_tx)
        })
    }

    /// Runs `f` over one consistent snapshot of this namespace.
    pub fn view<T, E: From<SealError>>(
        &self,
        mut f: impl FnMut(&View<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut out = None;
        self.store.read(|txn| {
            out = Some(f(&View {
                txn,
                ns: &self.keys,
            }));
            Ok(())
        })?;
        out.unwrap_or_else(|| {
            Err(E::from(SealError::Storage {
                location: self.store.location().to_string(),
                message: "the backend did not run the read transaction".into(),
            }))
        })
    }

    /// Up to `limit` keys starting with `prefix`, after `cursor` (from the
    /// previous page). Key names are hashed in the file, so this walks the
    /// namespace's sealed names (not its values) and opens each:
    /// O(namespace size) for a full listing, whatever the prefix.
    pub fn list(
        &self,
        prefix: impl AsRef<[u8]>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page> {
        let prefix = prefix.as_ref();
        let limit = limit.max(1);
        let (tag_start, tag_end) = tag_range(&self.keys.tag);
        let start: Vec<u8> = match cursor {
            None => tag_start.to_vec(),
            Some(c) => {
                let hash = hex::decode(c)
                    .ok()
                    .filter(|h| h.len() == KEY_HASH_LEN)
                    .ok_or_else(|| SealError::InvalidCursor(c.to_string()))?;
                [&tag_start[..], &hash].concat()
            }
        };
        let start_bound = if cursor.is_some() {
            Bound::Excluded(start.as_slice())
        } else {
            Bound::Included(start.as_slice())
        };
        let end_bound = tag_end
            .as_ref()
            .map_or(Bound::Unbounded, |e| Bound::Excluded(e.as_slice()));
        self.store.read(|t| {
            let mut found: Vec<(Vec<u8>, LookupKey)> = Vec::new();
            t.scan(Table::Names, start_bound, end_bound, &mut |lk, sealed| {
                let lk = LookupKey::try_from(lk).map_err(|_| malformed(&self.keys))?;
                let name = self.keys.open_name(&lk, sealed.to_vec())?;
                if name.starts_with(prefix) {
                    found.push((name, lk));
                }
                // One match past the limit tells whether there is a next page.
                Ok(found.len() <= limit)
            })?;
            let next = if found.len() > limit {
                found.truncate(limit);
                found.last().map(|(_, lk)| hex::encode(&lk[TAG_LEN..]))
            } else {
                None
            };
            Ok(Page {
                keys: found.into_iter().map(|(name, _)| name).collect(),
                next,
            })
        })
    }

    /// All keys starting with `prefix`, sorted (walks every page).
    pub fn all_keys(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<Vec<u8>>> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list(prefix.as_ref(), cursor.as_deref(), 1000)?;
            all.extend(page.keys);
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        all.sort();
        Ok(all)
    }
}

fn malformed(ns: &NsKeys) -> SealError {
    SealError::integrity(format!("namespace {:?}", ns.name), "a record is malformed")
}

fn tx_read<'a>(tx: &'a Transaction<'_>) -> &'a dyn ReadTxn {
    tx.read_snapshot()
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.keys.name)
            .field("store", &self.store.location())
            .finish()
    }
}

/// A transaction bound to one namespace; see [`Namespace::transaction`].
pub struct NsTransaction<'a, 't> {
    tx: &'a mut Transaction<'t>,
    ns: &'a Arc<NsKeys>,
}

impl NsTransaction<'_, '_> {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        read_value(self.tx.read_snapshot(), self.ns, key.as_ref())
    }

    pub fn exists(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let lk = self.ns.lookup_key(key.as_ref());
        Ok(self.tx.read_snapshot().get(Table::Records, &lk)?.is_some())
    }

    pub fn set(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.tx.set_raw(self.ns, key.as_ref(), value.as_ref())
    }

    /// Removes `key`; says whether it was there.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.tx.delete_raw(self.ns, key.as_ref())
    }

    /// The generation this transaction commits as.
    pub fn generation(&self) -> u64 {
        self.tx.generation()
    }
}

/// A read-only snapshot of one namespace; see [`Namespace::view`].
pub struct View<'a> {
    txn: &'a dyn ReadTxn,
    ns: &'a NsKeys,
}

impl View<'_> {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        read_value(self.txn, self.ns, key.as_ref())
    }

    pub fn exists(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let lk = self.ns.lookup_key(key.as_ref());
        Ok(self.txn.get(Table::Records, &lk)?.is_some())
    }
}

const _: () = assert!(LOOKUP_LEN == TAG_LEN + KEY_HASH_LEN);
