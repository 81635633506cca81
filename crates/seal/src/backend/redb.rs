//! The embedded default backend: one `redb` file, crash-safe (copy-on-write
//! B-trees with a checksummed commit slot), one writer at a time, readers on
//! snapshots. The five [`Table`]s are redb tables of `&[u8] → &[u8]` named by
//! [`Table::name`].
//!
//! redb asserts on some kinds of damage (a truncated file trips one on
//! open), so every call into it goes through `call`, which turns a panic
//! into a storage error: a damaged file is bad input, not a crash.

use std::cell::OnceCell;
use std::fmt::Display;
use std::io;
use std::ops::Bound;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    TableError,
};

use super::{Backend, Durability, Inspect, Outcome, ReadTxn, Table, Visit, WriteTxn};
use crate::error::SealError;

type Bytes = &'static [u8];

fn definition(table: Table) -> TableDefinition<'static, Bytes, Bytes> {
    TableDefinition::new(table.name())
}

/// A sealed store's ciphertext in one redb database file.
pub struct RedbBackend {
    db: Database,
    path: PathBuf,
    location: String,
}

impl RedbBackend {
    /// Opens the database at `path`, creating an empty one if `create` is set
    /// and there is no file (or an empty one) there.
    pub fn open(path: &Path, create: bool) -> Result<Self, SealError> {
        let location = path.display().to_string();
        let opened = guarded(|| {
            if create {
                Database::builder().create(path)
            } else {
                Database::builder().open(path)
            }
        })
        .map_err(|p| damaged(&location, p))?;
        let db = opened.map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => SealError::Locked {
                location: location.clone(),
            },
            redb::DatabaseError::Storage(redb::StorageError::Io(io))
                if io.kind() == io::ErrorKind::NotFound =>
            {
                SealError::NoStore {
                    location: location.clone(),
                }
            }
            other => storage_error(&location, other),
        })?;
        Ok(RedbBackend {
            db,
            path: path.to_path_buf(),
            location,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn call<T, E: Display>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, SealError> {
        call(&self.location, f)
    }
}

fn storage_error(location: &str, e: impl Display) -> SealError {
    SealError::Storage {
        location: location.to_string(),
        message: e.to_string(),
    }
}

fn damaged(location: &str, payload: Box<dyn std::any::Any + Send>) -> SealError {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    SealError::Storage {
        location: location.to_string(),
        message: format!("the database file is damaged (redb: {what})"),
    }
}

thread_local! {
    static IN_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside a guarded redb call, whose panics become
/// errors: a process-wide panic hook should stay quiet about them.
pub fn in_guarded_call() -> bool {
    IN_CALL.with(|c| c.get())
}

/// Runs `f`, catching a panic, with [`in_guarded_call`] set meanwhile.
fn guarded<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    let outer = IN_CALL.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    IN_CALL.with(|c| c.set(outer));
    result
}

/// Runs one redb call, turning its errors and panics into [`SealError`]s.
fn call<T, E: Display>(location: &str, f: impl FnOnce() -> Result<T, E>) -> Result<T, SealError> {
    match guarded(f) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(storage_error(location, e)),
        Err(payload) => Err(damaged(location, payload)),
    }
}

impl Backend for RedbBackend {
    fn location(&self) -> &str {
        &self.location
    }

    fn is_blank(&self) -> Result<bool, SealError> {
        self.call(|| {
            let txn = self.db.begin_read()?;
            let mut tables = txn.list_tables()?;
            let mut multimap = txn.list_multimap_tables()?;
            Ok::<_, redb::Error>(tables.next().is_none() && multimap.next().is_none())
        })
    }

    fn read(
        &self,
        f: &mut dyn FnMut(&dyn ReadTxn) -> Result<(), SealError>,
    ) -> Result<(), SealError> {
        let txn = self.call(|| self.db.begin_read())?;
        let snapshot = RedbRead {
            txn,
            tables: Default::default(),
            location: &self.location,
        };
        f(&snapshot)
    }

    fn write(
        &self,
        durability: Durability,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<Outcome, SealError>,
    ) -> Result<(), SealError> {
        let mut txn = self.call(|| self.db.begin_write())?;
        self.call(|| {
            txn.set_durability(match durability {
                Durability::Immediate => redb::Durability::Immediate,
                Durability::Eventual => redb::Durability::None,
            })
        })?;
        let outcome = {
            // Tables borrow the transaction, so they live in this scope and
            // are closed (written back) before the commit.
            let open = |t: Table| self.call(|| txn.open_table(definition(t)));
            let mut tables = RedbWrite {
                tables: [
                    open(Table::ALL[0])?,
                    open(Table::ALL[1])?,
                    open(Table::ALL[2])?,
                    open(Table::ALL[3])?,
                    open(Table::ALL[4])?,
                ],
                location: &self.location,
            };
            f(&mut tables)?
        };
        match outcome {
            Outcome::Commit => self.call(|| txn.commit()),
            Outcome::Abort => self.call(|| txn.abort()),
        }
    }

    fn flush(&self) -> Result<(), SealError> {
        // An empty transaction committed with `Immediate` durability makes
        // every earlier non-durable commit durable too.
        let txn = self.call(|| self.db.begin_write())?;
        self.call(|| txn.commit())
    }
}

struct RedbRead<'a> {
    txn: ReadTransaction,
    /// Opened on first use: a single `get` should not pay for five tables.
    /// `None` inside means the table does not exist (an empty store).
    tables: [OnceCell<Option<ReadOnlyTable<Bytes, Bytes>>>; 5],
    location: &'a str,
}

impl RedbRead<'_> {
    fn table(&self, table: Table) -> Result<Option<&ReadOnlyTable<Bytes, Bytes>>, SealError> {
        let cell = &self.tables[table.slot()];
        if cell.get().is_none() {
            let opened = call(self.location, || {
                match self.txn.open_table(definition(table)) {
                    Ok(t) => Ok(Some(t)),
                    Err(TableError::TableDoesNotExist(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            })?;
            // Cannot fail: the cell was empty and this snapshot is not shared.
            let _ = cell.set(opened);
        }
        Ok(cell.get().and_then(Option::as_ref))
    }
}

impl ReadTxn for RedbRead<'_> {
    fn get_with(
        &self,
        table: Table,
        key: &[u8],
        inspect: &mut Inspect<'_>,
    ) -> Result<bool, SealError> {
        let Some(t) = self.table(table)? else {
            return Ok(false);
        };
        get_from(t, key, inspect, self.location)
    }

    fn scan(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<(), SealError> {
        let Some(t) = self.table(table)? else {
            return Ok(());
        };
        scan_table(t, start, end, visit, self.location)
    }
}

struct RedbWrite<'t, 'l> {
    tables: [redb::Table<'t, Bytes, Bytes>; 5],
    location: &'l str,
}

impl ReadTxn for RedbWrite<'_, '_> {
    fn get_with(
        &self,
        table: Table,
        key: &[u8],
        inspect: &mut Inspect<'_>,
    ) -> Result<bool, SealError> {
        get_from(&self.tables[table.slot()], key, inspect, self.location)
    }

    fn scan(
        &self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<(), SealError> {
        scan_table(&self.tables[table.slot()], start, end, visit, self.location)
    }
}

impl WriteTxn for RedbWrite<'_, '_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), SealError> {
        let t = &mut self.tables[table.slot()];
        call(self.location, || t.insert(key, value).map(|_| ()))
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, SealError> {
        let t = &mut self.tables[table.slot()];
        call(self.location, || t.remove(key).map(|old| old.is_some()))
    }
}

fn get_from(
    t: &impl ReadableTable<Bytes, Bytes>,
    key: &[u8],
    inspect: &mut Inspect<'_>,
    location: &str,
) -> Result<bool, SealError> {
    // Only redb's part (the lookup) is guarded; `inspect` is ours.
    let Some(guard) = call(location, || t.get(key))? else {
        return Ok(false);
    };
    inspect(guard.value())?;
    Ok(true)
}

fn scan_table(
    t: &impl ReadableTable<Bytes, Bytes>,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    visit: &mut Visit<'_>,
    location: &str,
) -> Result<(), SealError> {
    let mut range = call(location, || t.range::<&[u8]>((start, end)))?;
    // Only redb's part (the iterator step) is guarded; `visit` is ours.
    while let Some(entry) = call(location, || range.next().transpose())? {
        let (k, v) = entry;
        if !visit(k.value(), v.value())? {
            break;
        }
    }
    Ok(())
}
