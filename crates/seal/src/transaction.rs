//! Write transactions: every change to records goes through here, which
//! keeps the multiset hash and record count of the sealed state in step.

use std::ops::Bound;
use std::sync::Arc;

use crate::backend::{ReadTxn, Table, WriteTxn};
use crate::crypto::Multiset;
use crate::error::{Result, SealError};
use crate::namespace::Namespace;
use crate::record::{
    malformed, read_value, tag_range, value_aad, LookupKey, NsKeys, Record, INLINE_MAX, TAG_LEN,
    TRAILER_LEN,
};
use crate::store::{
    name_element, namespace_aad, namespace_element, record_element, seal_state, Inner, State,
    STATE_KEY,
};

/// An open write transaction. Obtained from [`Store::transaction`](crate::Store::transaction) or
/// [`Namespace::transaction`](crate::Namespace::transaction).
pub struct Transaction<'t> {
    txn: &'t mut dyn WriteTxn,
    inner: &'t Inner,
    generation: u64,
    count: u64,
    multiset: Multiset,
    dirty: bool,
    /// Namespaces whose registry entry this transaction has checked.
    registered: Vec<[u8; TAG_LEN]>,
}

impl<'t> Transaction<'t> {
    /// Starts on the sealed `state` as read in `txn`: records written now get
    /// the next generation as their version.
    pub(crate) fn begin(txn: &'t mut dyn WriteTxn, inner: &'t Inner, state: State) -> Self {
        Transaction {
            txn,
            inner,
            generation: state.generation + 1,
            count: state.count,
            multiset: state.multiset,
            dirty: false,
            registered: Vec::new(),
        }
    }

    /// Reseals the state if anything changed; returns the generation to
    /// commit as, or `None` if there is nothing to commit.
    pub(crate) fn finish(self) -> Result<Option<u64>> {
        if !self.dirty {
            return Ok(None);
        }
        let state = State {
            generation: self.generation,
            count: self.count,
            multiset: self.multiset,
        };
        let sealed = seal_state(&self.inner.keys, &self.inner.store_id, &state)?;
        self.txn.put(Table::Meta, STATE_KEY, &sealed)?;
        Ok(Some(state.generation))
    }

    /// The generation this transaction will commit as (also the version
    /// of every record it writes).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn keys_of<'n>(&self, ns: &'n Namespace) -> Result<&'n Arc<NsKeys>> {
        if !std::ptr::eq(&*ns.store().inner, self.inner) {
            return Err(SealError::ForeignNamespace(ns.name().to_string()));
        }
        Ok(ns.keys())
    }

    pub fn get(&self, ns: &Namespace, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let keys = self.keys_of(ns)?;
        read_value(self.read_snapshot(), keys, key.as_ref())
    }

    pub fn exists(&self, ns: &Namespace, key: impl AsRef<[u8]>) -> Result<bool> {
        let keys = self.keys_of(ns)?;
        let lk = keys.lookup_key(key.as_ref());
        Ok(self.txn.get(Table::Records, &lk)?.is_some())
    }

    pub fn set(
        &mut self,
        ns: &Namespace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        let keys = self.keys_of(ns)?.clone();
        self.set_raw(&keys, key.as_ref(), value.as_ref())
    }

    /// Removes `key`; says whether it was there.
    pub fn delete(&mut self, ns: &Namespace, key: impl AsRef<[u8]>) -> Result<bool> {
        let keys = self.keys_of(ns)?.clone();
        self.delete_raw(&keys, key.as_ref())
    }

    pub(crate) fn read_snapshot(&self) -> &dyn ReadTxn {
        &*self.txn
    }

    pub(crate) fn ensure_registered(&mut self, ns: &NsKeys) -> Result<()> {
        if self.registered.contains(&ns.tag) {
            return Ok(());
        }
        if !self.inner.is_registered(self.read_snapshot(), ns)? {
            let sealed = self.inner.keys.ns_name.seal(
                &namespace_aad(&self.inner.store_id, &ns.tag),
                ns.name.as_bytes(),
            )?;
            self.txn.put(Table::Namespaces, &ns.tag, &sealed)?;
            self.multiset
                .add(&namespace_element(&self.inner.keys, &ns.tag));
            self.count += 1;
            self.dirty = true;
        }
        self.registered.push(ns.tag);
        Ok(())
    }

    pub(crate) fn set_raw(&mut self, ns: &NsKeys, key: &[u8], value: &[u8]) -> Result<()> {
        // A handle may outlive a `delete_namespace`; writing through it
        // registers the namespace again rather than leaving orphans.
        self.ensure_registered(ns)?;
        let lk = ns.lookup_key(key);
        let keys = &self.inner.keys;
        let version = self.generation;
        let had_blob = match self.txn.get(Table::Records, &lk)? {
            Some(old) => {
                let record = Record::parse(&old).ok_or_else(|| malformed(ns.subject(key)))?;
                self.multiset
                    .remove(&record_element(keys, &lk, record.version));
                // The sealed name is bound to the lookup key, not the
                // version, so an overwrite keeps it.
                !record.inline
            }
            None => {
                self.txn.put(Table::Names, &lk, &ns.seal_name(&lk, key)?)?;
                self.multiset.add(&name_element(keys, &lk));
                self.count += 2;
                false
            }
        };
        self.multiset.add(&record_element(keys, &lk, version));
        let aad = value_aad(&lk, version);
        if value.len() <= INLINE_MAX {
            let sealed = ns.seal.seal_with_room(&aad, value, TRAILER_LEN)?;
            self.txn
                .put(Table::Records, &lk, &Record::encode(Some(sealed), version))?;
            if had_blob {
                self.txn.delete(Table::Blobs, &lk)?;
            }
        } else {
            let sealed = ns.seal.seal(&aad, value)?;
            self.txn
                .put(Table::Records, &lk, &Record::encode(None, version))?;
            self.txn.put(Table::Blobs, &lk, &sealed)?;
        }
        self.dirty = true;
        Ok(())
    }

    pub(crate) fn delete_raw(&mut self, ns: &NsKeys, key: &[u8]) -> Result<bool> {
        let lk = ns.lookup_key(key);
        self.delete_lookup(&lk, || ns.subject(key))
    }

    fn delete_lookup(&mut self, lk: &LookupKey, subject: impl Fn() -> String) -> Result<bool> {
        let Some(old) = self.txn.get(Table::Records, lk)? else {
            return Ok(false);
        };
        let record = Record::parse(&old).ok_or_else(|| malformed(subject()))?;
        let keys = &self.inner.keys;
        self.multiset
            .remove(&record_element(keys, lk, record.version));
        self.multiset.remove(&name_element(keys, lk));
        self.count = self.count.saturating_sub(2);
        self.txn.delete(Table::Records, lk)?;
        self.txn.delete(Table::Names, lk)?;
        if !record.inline {
            self.txn.delete(Table::Blobs, lk)?;
        }
        self.dirty = true;
        Ok(true)
    }

    pub(crate) fn drop_namespace(&mut self, ns: &NsKeys) -> Result<bool> {
        if self.txn.get(Table::Namespaces, &ns.tag)?.is_none() {
            return Ok(false);
        }
        let mut lookups: Vec<LookupKey> = Vec::new();
        let (start, end) = tag_range(&ns.tag);
        self.txn.scan(
            Table::Records,
            Bound::Included(&start),
            end.as_ref()
                .map_or(Bound::Unbounded, |e| Bound::Excluded(e.as_slice())),
            &mut |lk, _| {
                if let Ok(lk) = LookupKey::try_from(lk) {
                    lookups.push(lk);
                }
                Ok(true)
            },
        )?;
        for lk in &lookups {
            self.delete_lookup(lk, || format!("a key in namespace {:?}", ns.name))?;
        }
        self.txn.delete(Table::Namespaces, &ns.tag)?;
        self.multiset
            .remove(&namespace_element(&self.inner.keys, &ns.tag));
        self.count = self.count.saturating_sub(1);
        self.registered.retain(|t| t != &ns.tag);
        self.dirty = true;
        Ok(true)
    }
}
