//! The distributed backend: a sealed store under a key prefix of an etcd
//! cluster, shared by every node that opens it.
//!
//! Layout under `PREFIX/`: `t/<table letter>/<key>` per table entry, each
//! value a tag byte (inline, or a [`ChunkRef`] to chunks under `c/`), and
//! `w/<id>` one commit marker per open backend.
//!
//! * Reads are one snapshot: the first request of a read transaction fixes
//!   the revision, every later one (and every page of a scan) reads at it.
//! * A write transaction buffers its writes (its reads see them) and
//!   commits as one etcd `Txn` that compares the mod revision of every key
//!   it read, and for scans that no key in the range changed, against the
//!   snapshot; on a conflict the closure runs again on a new snapshot. The
//!   store reads and rewrites its state record in every write, so its
//!   writes serialise through that record across nodes; one node's writes
//!   are committed in groups (`group`), one etcd transaction per group.
//!   Reads inside a write transaction come from a per-node cache where
//!   they can ([`Cache`]), checked by the same comparisons.
//! * Values above 64 KiB (or smaller ones, when a transaction would exceed
//!   `--max-request-bytes`) are written as immutable chunks first; the
//!   transaction commits only their reference, and the chunks of values it
//!   replaced or deleted are removed after the commit. A crash in between
//!   leaves orphan chunks (space, never wrong data: nothing refers to them).
//! * A commit whose outcome is unknown (timeout, leader lost mid-request)
//!   is settled through the backend's marker: every commit also writes
//!   `c‖seq` to it, comparing its mod revision; afterwards a fence writes
//!   `f‖seq` under the same comparison, so that the lost commit can no
//!   longer apply, and what the marker holds tells whether it did.
//! * etcd limits a transaction to `--max-txn-ops` operations, nested ones
//!   included (128 by default; `?max-txn-ops=` when the cluster allows
//!   more). A store write takes two per key (record and name) plus the
//!   state and the marker, so a default cluster takes batches of up to 63
//!   keys; a larger one is refused with a storage error naming the limit,
//!   never committed in parts.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Condvar, Mutex, MutexGuard};

use warden_etcd::chunks::{self, ChunkRef};
use warden_etcd::{prefix_end, EtcdClient, EtcdError, EtcdTarget, Timeouts};

use super::{Backend, Durability, Inspect, Outcome, ReadTxn, Table, Visit, WriteTxn};
use crate::error::SealError;

mod commit;
mod group;
use commit::Committed;
use group::Group;

const INLINE: u8 = 0;
const CHUNKED: u8 = 1;
/// Values above this go to chunks.
const INLINE_MAX: usize = 64 * 1024;
/// Room left in a request for its framing and comparisons.
const REQUEST_SLACK: usize = 64 * 1024;
const PAGE: i64 = 256;
/// Reads retried after their revision was compacted away.
const COMPACTED_RETRIES: u32 = 10;

fn letter(table: Table) -> u8 {
    match table {
        Table::Meta => b'm',
        Table::Namespaces => b'n',
        Table::Records => b'r',
        Table::Names => b'k',
        Table::Blobs => b'b',
    }
}

/// What this backend last read or wrote, for write transactions: key →
/// (value, `None` if absent; mod revision). Entries may be stale (another
/// node wrote since): a commit compares their revisions like any other
/// read, and a transaction that used a stale one runs again without the
/// cache. Values in chunks are not kept.
type Cache = HashMap<Vec<u8>, (Option<Vec<u8>>, i64)>;
/// Entries kept before the cache starts over.
const CACHE_MAX: usize = 100_000;
/// A read to remember: key, value (`None`: absent), mod revision.
type Fetched = (Vec<u8>, Option<Vec<u8>>, i64);

/// State of this backend's commits.
#[derive(Default)]
struct Marker {
    cache: Cache,
    seq: u64,
    /// The marker key's mod revision as this backend last wrote it (0:
    /// not written yet).
    mod_revision: i64,
    /// A commit's outcome could not be settled (etcd did not answer): the
    /// marker may have changed since, so read it before the next commit.
    in_doubt: bool,
}

/// A sealed store's ciphertext under a key prefix of an etcd cluster.
pub struct EtcdBackend {
    client: EtcdClient,
    location: String,
    /// `PREFIX/t/`
    tables: Vec<u8>,
    /// `PREFIX/c/`
    chunks: Vec<u8>,
    marker_key: Vec<u8>,
    commit: Mutex<Group>,
    /// Signalled when a batch ends (see `group`).
    changed: Condvar,
}

impl EtcdBackend {
    /// Connects to the cluster of `target`; an unreachable cluster is one
    /// storage error naming its endpoints.
    pub fn open(target: &EtcdTarget, timeouts: Timeouts) -> Result<Self, SealError> {
        let location = target.canonical();
        let client = EtcdClient::connect(target, timeouts).map_err(|e| match e {
            EtcdError::Unreachable { .. } => SealError::Unreachable {
                location: location.clone(),
                detail: e.to_string(),
            },
            other => SealError::Storage {
                location: location.clone(),
                message: other.to_string(),
            },
        })?;
        Self::with_client(client)
    }

    /// A backend on an existing connection (its target's prefix).
    pub fn with_client(client: EtcdClient) -> Result<Self, SealError> {
        let target = client.target();
        let location = target.canonical();
        let mut id = [0u8; 16];
        crate::keys::fill_random(&mut id)?;
        Ok(EtcdBackend {
            tables: target.key(b"t/"),
            chunks: target.key(b"c/"),
            marker_key: target.key(format!("w/{}", hex::encode(id)).as_bytes()),
            client,
            location,
            commit: Mutex::new(Group::default()),
            changed: Condvar::new(),
        })
    }

    /// The connection, for callers that keep other data in the same cluster.
    pub fn client(&self) -> &EtcdClient {
        &self.client
    }

    fn key(&self, table: Table, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.tables.len() + 2 + key.len());
        k.extend_from_slice(&self.tables);
        k.push(letter(table));
        k.push(b'/');
        k.extend_from_slice(key);
        k
    }

    fn table_prefix(&self, table: Table) -> Vec<u8> {
        self.key(table, b"")
    }

    fn error(&self, e: EtcdError) -> SealError {
        // Unreachable now, maybe not later: callers (warden serve) answer
        // 503 rather than 500.
        if e.is_transient() {
            return SealError::Unreachable {
                location: self.location.clone(),
                detail: e.to_string(),
            };
        }
        SealError::Storage {
            location: self.location.clone(),
            message: e.to_string(),
        }
    }

    fn corrupt(&self, key: &[u8]) -> SealError {
        SealError::Storage {
            location: self.location.clone(),
            message: format!("value of {} is malformed", key.escape_ascii()),
        }
    }

    /// The stored form of `value`, inline.
    fn inline(value: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + value.len());
        v.push(INLINE);
        v.extend_from_slice(value);
        v
    }

    /// Writes `value` as chunks; the stored form is the reference.
    fn chunked(&self, value: &[u8]) -> Result<(Vec<u8>, ChunkRef), SealError> {
        let reference =
            chunks::put(&self.client, &self.chunks, value).map_err(|e| self.error(e))?;
        let mut v = vec![CHUNKED];
        v.extend_from_slice(&reference.encode());
        Ok((v, reference))
    }

    /// The chunk reference in a stored value, if it is one.
    fn reference_in(stored: &[u8]) -> Option<ChunkRef> {
        match stored.split_first() {
            Some((&CHUNKED, r)) => ChunkRef::decode(r),
            _ => None,
        }
    }

    /// Deletes chunks no longer referenced; a failure leaves orphans.
    fn drop_chunks(&self, references: &[ChunkRef]) {
        for r in references {
            let _ = chunks::delete(&self.client, &self.chunks, r);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Group> {
        self.commit.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for EtcdBackend {
    fn drop(&mut self) {
        // The marker only matters while this backend may have a commit in
        // doubt; left behind (a crash), it is a few bytes.
        if self.lock().marker.mod_revision != 0 {
            let _ = self.client.delete(&self.marker_key);
        }
    }
}

/// A snapshot: the revision of its first read.
struct EtcdRead<'a> {
    b: &'a EtcdBackend,
    revision: Cell<i64>,
    /// Set when a read failed because its revision was compacted: the
    /// transaction is run again on a new snapshot.
    compacted: Cell<bool>,
}

impl<'a> EtcdRead<'a> {
    fn new(b: &'a EtcdBackend) -> Self {
        EtcdRead {
            b,
            revision: Cell::new(0),
            compacted: Cell::new(false),
        }
    }

    fn fail(&self, e: EtcdError) -> SealError {
        if matches!(e, EtcdError::Compacted { .. }) {
            self.compacted.set(true);
        }
        self.b.error(e)
    }

    /// The stored form and mod revision under the full key `key`.
    fn fetch(&self, key: &[u8]) -> Result<Option<(Vec<u8>, i64)>, SealError> {
        let (entry, at) = self
            .b
            .client
            .get(key, self.revision.get())
            .map_err(|e| self.fail(e))?;
        self.revision.set(at);
        Ok(entry.map(|e| (e.value, e.mod_revision)))
    }

    /// The value of a stored form, reading chunks at this snapshot.
    fn decode(&self, key: &[u8], stored: Vec<u8>) -> Result<Vec<u8>, SealError> {
        match stored.first() {
            Some(&INLINE) => {
                let mut v = stored;
                v.remove(0);
                Ok(v)
            }
            Some(&CHUNKED) => {
                let r = EtcdBackend::reference_in(&stored).ok_or_else(|| self.b.corrupt(key))?;
                chunks::get(&self.b.client, &self.b.chunks, &r, self.revision.get())
                    .map_err(|e| self.fail(e))
            }
            _ => Err(self.b.corrupt(key)),
        }
    }

    /// The full-key range of `(start, end)` in `table`.
    fn range(&self, table: Table, start: Bound<&[u8]>, end: Bound<&[u8]>) -> (Vec<u8>, Vec<u8>) {
        let after = |k: &[u8]| {
            let mut v = self.b.key(table, k);
            v.push(0);
            v
        };
        let from = match start {
            Bound::Included(k) => self.b.key(table, k),
            Bound::Excluded(k) => after(k),
            Bound::Unbounded => self.b.table_prefix(table),
        };
        let to = match end {
            Bound::Included(k) => after(k),
            Bound::Excluded(k) => self.b.key(table, k),
            Bound::Unbounded => prefix_end(&self.b.table_prefix(table)),
        };
        (from, to)
    }

    /// Visits the stored entries (full key, stored form) of `[from, to)`.
    fn scan_stored(
        &self,
        from: &[u8],
        to: &[u8],
        visit: &mut dyn FnMut(Vec<u8>, Vec<u8>) -> Result<bool, SealError>,
    ) -> Result<(), SealError> {
        if from >= to {
            return Ok(());
        }
        // The client's callback returns its own error type: ours waits here.
        let mut failed = None;
        let at = self
            .b
            .client
            .scan(
                from,
                to,
                self.revision.get(),
                PAGE,
                &mut |e| match visit(e.key, e.value) {
                    Ok(go_on) => Ok(go_on),
                    Err(err) => {
                        failed = Some(err);
                        Ok(false)
                    }
                },
            )
            .map_err(|e| self.fail(e))?;
        self.revision.set(at);
        failed.map_or(Ok(()), Err)
    }
}

impl ReadTxn for EtcdRead<'_> {
    fn get_with(
        &self,
        table: Table,
        key: &[u8],
        inspect: &mut Inspect<'_>,
    ) -> Result<bool, SealError> {
        let full = self.b.key(table, key);
        match self.fetch(&full)? {
            Some((stored, _)) => {
                inspect(&self.decode(&full, stored)?)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn scan(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<(), SealError> {
        let (from, to) = self.range(table, start, end);
        let skip = self.b.table_prefix(table).len();
        self.scan_stored(&from, &to, &mut |k, stored| {
            let value = self.decode(&k, stored)?;
            visit(&k[skip..], &value)
        })
    }
}

/// A write transaction: a snapshot, what was read from it, and the writes.
struct EtcdWrite<'a> {
    read: EtcdRead<'a>,
    /// Reads served from here when present (see [`Cache`]).
    cache: Option<&'a Cache>,
    /// Whether any read came from the cache.
    cached: Cell<bool>,
    /// Cached reads of the meta table: full key, stored form (compared by
    /// value as well as revision).
    pinned: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Reads to add to the cache after a commit.
    fetched: RefCell<Vec<Fetched>>,
    /// Full key → mod revision read (0: absent).
    reads: RefCell<HashMap<Vec<u8>, i64>>,
    /// Full-key ranges scanned.
    scanned: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Full key → new value (`None`: deleted).
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> EtcdWrite<'a> {
    /// Goes on with the transaction `p` (a batch being filled).
    fn resume(b: &'a EtcdBackend, cache: Option<&'a Cache>, p: Pending) -> Self {
        let read = EtcdRead::new(b);
        read.revision.set(p.revision);
        EtcdWrite {
            read,
            cache,
            cached: Cell::new(p.cached),
            pinned: RefCell::new(p.pinned),
            fetched: RefCell::new(p.fetched),
            reads: RefCell::new(p.reads),
            scanned: RefCell::new(p.scanned),
            writes: p.writes,
        }
    }

    /// The value under `full` (from the cache, or the snapshot), remembering
    /// the revision seen.
    fn fetch(&self, full: &[u8]) -> Result<Option<Vec<u8>>, SealError> {
        if let Some((value, revision)) = self.cache.and_then(|c| c.get(full)) {
            self.cached.set(true);
            self.reads.borrow_mut().insert(full.to_vec(), *revision);
            // A revision can come back after an etcd restore; the sealed
            // state record (unique bytes: fresh nonce) cannot.
            if let Some(v) = value {
                if full.starts_with(&self.read.b.table_prefix(Table::Meta)) {
                    self.pinned
                        .borrow_mut()
                        .push((full.to_vec(), EtcdBackend::inline(v)));
                }
            }
            return Ok(value.clone());
        }
        let found = self.read.fetch(full)?;
        let revision = found.as_ref().map_or(0, |(_, r)| *r);
        self.reads.borrow_mut().insert(full.to_vec(), revision);
        let value = match found {
            Some((stored, _)) => Some(self.read.decode(full, stored)?),
            None => None,
        };
        if value.as_ref().is_none_or(|v| v.len() <= INLINE_MAX) {
            self.fetched
                .borrow_mut()
                .push((full.to_vec(), value.clone(), revision));
        }
        Ok(value)
    }

    /// What the commit needs, without the borrows.
    fn into_pending(self) -> Pending {
        Pending {
            revision: self.read.revision.get(),
            reads: self.reads.into_inner(),
            scanned: self.scanned.into_inner(),
            writes: self.writes,
            fetched: self.fetched.into_inner(),
            cached: self.cached.get(),
            pinned: self.pinned.into_inner(),
        }
    }
}

/// A write transaction ready to commit (or a batch being filled).
#[derive(Default)]
struct Pending {
    revision: i64,
    reads: HashMap<Vec<u8>, i64>,
    scanned: Vec<(Vec<u8>, Vec<u8>)>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    fetched: Vec<Fetched>,
    cached: bool,
    pinned: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ReadTxn for EtcdWrite<'_> {
    fn get_with(
        &self,
        table: Table,
        key: &[u8],
        inspect: &mut Inspect<'_>,
    ) -> Result<bool, SealError> {
        let full = self.read.b.key(table, key);
        if let Some(written) = self.writes.get(&full) {
            return match written {
                Some(v) => inspect(v).map(|()| true),
                None => Ok(false),
            };
        }
        match self.fetch(&full)? {
            Some(value) => {
                inspect(&value)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn scan(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<(), SealError> {
        let (from, to) = self.read.range(table, start, end);
        if from >= to {
            return Ok(());
        }
        self.scanned.borrow_mut().push((from.clone(), to.clone()));
        let skip = self.read.b.table_prefix(table).len();
        // This transaction's own writes in the range, merged in key order.
        let pending: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = self
            .writes
            .range::<Vec<u8>, _>((Bound::Included(&from), Bound::Excluded(&to)))
            .collect();
        let mut next = 0;
        let mut stopped = false;
        self.read.scan_stored(&from, &to, &mut |k, stored| {
            while next < pending.len() && *pending[next].0 < k {
                let (pk, pv) = pending[next];
                next += 1;
                if let Some(v) = pv {
                    if !visit(&pk[skip..], v)? {
                        stopped = true;
                        return Ok(false);
                    }
                }
            }
            let go_on = if next < pending.len() && *pending[next].0 == k {
                let (_, pv) = pending[next];
                next += 1;
                match pv {
                    Some(v) => visit(&k[skip..], v)?,
                    None => true,
                }
            } else {
                visit(&k[skip..], &self.read.decode(&k, stored)?)?
            };
            stopped = !go_on;
            Ok(go_on)
        })?;
        if !stopped {
            for (pk, pv) in &pending[next..] {
                if let Some(v) = pv {
                    if !visit(&pk[skip..], v)? {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

impl WriteTxn for EtcdWrite<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), SealError> {
        let full = self.read.b.key(table, key);
        self.writes.insert(full, Some(value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, SealError> {
        let full = self.read.b.key(table, key);
        let existed = match self.writes.get(&full) {
            Some(w) => w.is_some(),
            None => self.fetch(&full)?.is_some(),
        };
        self.writes.insert(full, None);
        Ok(existed)
    }
}

impl Backend for EtcdBackend {
    fn location(&self) -> &str {
        &self.location
    }

    fn is_blank(&self) -> Result<bool, SealError> {
        let page = self
            .client
            .range(&self.tables, &prefix_end(&self.tables), 0, 1, true)
            .map_err(|e| self.error(e))?;
        Ok(page.entries.is_empty())
    }

    fn read(
        &self,
        f: &mut dyn FnMut(&dyn ReadTxn) -> Result<(), SealError>,
    ) -> Result<(), SealError> {
        let mut retries = 0;
        loop {
            let snapshot = EtcdRead::new(self);
            match f(&snapshot) {
                Err(_) if snapshot.compacted.get() && retries < COMPACTED_RETRIES => retries += 1,
                other => return other,
            }
        }
    }

    /// Every commit is durable when it returns (etcd commits to a quorum's
    /// disks), whatever `durability` says. Write transactions of this node
    /// are committed in groups (see `group`).
    fn write(
        &self,
        _durability: Durability,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<Outcome, SealError>,
    ) -> Result<(), SealError> {
        self.write_grouped(f)
    }

    fn flush(&self) -> Result<(), SealError> {
        Ok(())
    }
}
