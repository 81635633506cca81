//! Where the ciphertext lives.
//!
//! A [`Backend`] stores opaque byte keys and values in a few fixed tables and
//! runs transactions over them. It never sees a plaintext key name or value:
//! everything it is handed has already been hashed or sealed by the store, so
//! a backend on someone else's machine (a distributed key-value store, object
//! storage with a transaction log) learns only sizes and access patterns.
//!
//! Transactions are closures so that a backend with optimistic concurrency
//! can run one again after a conflict: the closure must have no effect
//! outside the transaction it is given. Every write transaction of the store
//! reads and rewrites one record of [`Table::Meta`], so write transactions
//! always conflict with each other and such a backend serialises them
//! through that record.

use std::ops::Bound;

use crate::error::SealError;

pub mod etcd;
pub mod redb;

/// The tables of a sealed store. A backend maps them to its own names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    /// The clear header (format, store id, key check) and the sealed state
    /// record (generation, record count, multiset hash).
    Meta,
    /// One entry per namespace: tag → sealed namespace name.
    Namespaces,
    /// One entry per stored key: namespace tag ‖ key hash → version and, for
    /// values up to 4 KiB, the sealed value. What a read looks up.
    Records,
    /// One entry per stored key, under the same lookup key as its record:
    /// the sealed key name. Read only by listing and export.
    Names,
    /// Sealed values larger than 4 KiB, under the same lookup key as their record.
    Blobs,
}

impl Table {
    /// All tables, in a fixed order (used as an index by backends).
    pub const ALL: [Table; 5] = [
        Table::Meta,
        Table::Namespaces,
        Table::Records,
        Table::Names,
        Table::Blobs,
    ];

    /// The table's name in an embedded database file.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "warden_seal_meta",
            Table::Namespaces => "warden_seal_namespaces",
            Table::Records => "warden_seal_records",
            Table::Names => "warden_seal_names",
            Table::Blobs => "warden_seal_blobs",
        }
    }

    pub(crate) fn slot(self) -> usize {
        match self {
            Table::Meta => 0,
            Table::Namespaces => 1,
            Table::Records => 2,
            Table::Names => 3,
            Table::Blobs => 4,
        }
    }
}

/// When a committed write transaction reaches stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Durable when `commit` returns (an `fsync` per transaction).
    #[default]
    Immediate,
    /// Durable at the next [`Backend::flush`] or `Immediate` commit; a crash
    /// before then loses the transaction, never half of it.
    Eventual,
}

/// Whether a write transaction is to be committed or thrown away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Commit,
    Abort,
}

/// A callback for [`ReadTxn::scan`]: gets each key and value in order and
/// returns whether to go on.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool, SealError> + 'a;

/// A callback for [`ReadTxn::get_with`]: sees the value where the backend
/// holds it (in redb, its page), so that a caller that needs only part of it
/// copies nothing else.
pub type Inspect<'a> = dyn FnMut(&[u8]) -> Result<(), SealError> + 'a;

/// A consistent snapshot.
pub trait ReadTxn {
    /// Calls `inspect` with the value stored under `key`, if there is one;
    /// says whether there was.
    fn get_with(
        &self,
        table: Table,
        key: &[u8],
        inspect: &mut Inspect<'_>,
    ) -> Result<bool, SealError>;

    /// The value stored under `key`, if any.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, SealError> {
        let mut value = None;
        self.get_with(table, key, &mut |v| {
            value = Some(v.to_vec());
            Ok(())
        })?;
        Ok(value)
    }

    /// Visits the entries with keys in `(start, end)` in ascending byte order
    /// until `visit` returns `false`.
    fn scan(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<(), SealError>;
}

/// A write transaction: sees its own writes, commits atomically.
pub trait WriteTxn: ReadTxn {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), SealError>;
    /// Removes `key`; says whether it was there.
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, SealError>;
}

/// Storage for sealed records. See the module documentation.
pub trait Backend: Send + Sync {
    /// A human-readable name of where the data is (a path, a URL), for messages.
    fn location(&self) -> &str;

    /// Whether the store holds any data at all, in any table (used to refuse
    /// to initialise a store over something that is not one).
    fn is_blank(&self) -> Result<bool, SealError>;

    /// Runs `f` over a snapshot.
    fn read(
        &self,
        f: &mut dyn FnMut(&dyn ReadTxn) -> Result<(), SealError>,
    ) -> Result<(), SealError>;

    /// Runs `f` in a write transaction and commits it if `f` returns
    /// `Ok(Outcome::Commit)`; otherwise nothing it wrote is kept.
    fn write(
        &self,
        durability: Durability,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<Outcome, SealError>,
    ) -> Result<(), SealError>;

    /// Makes every committed transaction durable.
    fn flush(&self) -> Result<(), SealError>;
}
