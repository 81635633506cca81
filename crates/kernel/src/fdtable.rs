//! A cage's file descriptor table. Entries share open-file descriptions
//! ([`Node`]s) by `Arc`, so `dup`, `fork` and renumbering keep offsets
//! shared as POSIX has it.

use crate::abi::{Dirent, Errno, Result};
use crate::vfs::Node;
use std::sync::{Arc, Mutex, MutexGuard};

/// The most descriptors one cage may hold open.
pub const MAX_FDS: usize = 4096;

#[derive(Clone)]
pub struct FdEntry {
    pub node: Arc<dyn Node>,
    pub rights_base: u64,
    pub rights_inheriting: u64,
    /// The guest path of a preopened directory, reported by `fd_prestat_*`.
    pub preopen: Option<String>,
    /// The directory listing `fd_readdir` pages through, taken at cookie 0.
    pub listing: Option<Arc<Vec<Dirent>>>,
    /// Closed by `exec` (`FD_CLOEXEC`). Per descriptor, not per description.
    pub cloexec: bool,
}

impl FdEntry {
    pub fn new(node: Arc<dyn Node>) -> FdEntry {
        let rights = node.base_rights();
        FdEntry {
            node,
            rights_base: rights,
            rights_inheriting: crate::abi::rights::ALL,
            preopen: None,
            listing: None,
            cloexec: false,
        }
    }

    /// Fails with `ENOTCAPABLE` unless the fd holds all of `rights`.
    pub fn require(&self, rights: u64) -> Result<()> {
        if self.rights_base & rights == rights {
            Ok(())
        } else {
            Err(crate::note::deny(Errno::NOTCAPABLE, "fd lacks the right"))
        }
    }
}

#[derive(Clone, Default)]
pub struct FdTable {
    slots: Vec<Option<FdEntry>>,
}

impl FdTable {
    pub fn get(&self, fd: u32) -> Result<&FdEntry> {
        self.slots
            .get(fd as usize)
            .and_then(Option::as_ref)
            .ok_or(Errno::BADF)
    }

    pub fn get_mut(&mut self, fd: u32) -> Result<&mut FdEntry> {
        self.slots
            .get_mut(fd as usize)
            .and_then(Option::as_mut)
            .ok_or(Errno::BADF)
    }

    /// Places `entry` at the lowest free number, as POSIX `open` does.
    pub fn insert(&mut self, entry: FdEntry) -> Result<u32> {
        let fd = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.slots.len() < MAX_FDS => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return Err(Errno::MFILE),
        };
        self.slots[fd] = Some(entry);
        Ok(fd as u32)
    }

    pub fn remove(&mut self, fd: u32) -> Result<FdEntry> {
        let entry = self
            .slots
            .get_mut(fd as usize)
            .and_then(Option::take)
            .ok_or(Errno::BADF)?;
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        Ok(entry)
    }

    /// `fd_renumber`: `to` must be open; it is closed and replaced by `from`.
    pub fn renumber(&mut self, from: u32, to: u32) -> Result<()> {
        self.get(from)?;
        self.get(to)?;
        if from == to {
            return Ok(());
        }
        let entry = self.remove(from)?;
        self.slots[to as usize] = Some(entry);
        Ok(())
    }

    /// `dup2`: `to` (open or not) becomes a copy of `from`'s entry, without
    /// `cloexec`.
    pub fn duplicate_to(&mut self, from: u32, to: u32) -> Result<()> {
        let mut entry = self.get(from)?.clone();
        if to as usize >= MAX_FDS {
            return Err(Errno::BADF);
        }
        if from == to {
            return Ok(());
        }
        entry.cloexec = false;
        entry.preopen = None;
        entry.listing = None;
        while self.slots.len() <= to as usize {
            self.slots.push(None);
        }
        self.slots[to as usize] = Some(entry);
        Ok(())
    }

    /// Closes every descriptor marked `cloexec` (at `exec`).
    pub fn close_on_exec(&mut self) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|e| e.cloexec) {
                *slot = None;
            }
        }
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
    }
}

/// A cage's fd table, shared by all its threads (as one process's table is
/// on Linux). Calls work on a copy of an entry ([`SharedFds::get`]) and
/// never hold the lock while they use its node: a read that blocks must
/// not block every other thread's calls. Uncontended (a cage without
/// threads), the lock costs a few nanoseconds per call.
#[derive(Clone, Default)]
pub struct SharedFds(Arc<Mutex<FdTable>>);

impl SharedFds {
    pub fn new(table: FdTable) -> SharedFds {
        SharedFds(Arc::new(Mutex::new(table)))
    }

    fn lock(&self) -> MutexGuard<'_, FdTable> {
        // A panic while holding the lock leaves the table consistent: every
        // method below changes it in one step.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of `fd`'s entry (its node shared).
    pub fn get(&self, fd: u32) -> Result<FdEntry> {
        self.lock().get(fd).cloned()
    }

    /// Changes `fd`'s entry in place.
    pub fn update<R>(&self, fd: u32, f: impl FnOnce(&mut FdEntry) -> Result<R>) -> Result<R> {
        f(self.lock().get_mut(fd)?)
    }

    pub fn insert(&self, entry: FdEntry) -> Result<u32> {
        self.lock().insert(entry)
    }

    pub fn remove(&self, fd: u32) -> Result<FdEntry> {
        let removed = self.lock().remove(fd);
        // The entry (and a host fd it may be the last owner of) is dropped
        // by the caller, outside the lock.
        removed
    }

    pub fn renumber(&self, from: u32, to: u32) -> Result<()> {
        // The replaced entry is dropped inside; closing is quick.
        self.lock().renumber(from, to)
    }

    pub fn duplicate_to(&self, from: u32, to: u32) -> Result<()> {
        self.lock().duplicate_to(from, to)
    }

    pub fn close_on_exec(&self) {
        self.lock().close_on_exec();
    }

    /// Closes every descriptor (a threaded cage's end, while a thread of
    /// it may still hold the table).
    pub fn close_all(&self) {
        let old = std::mem::take(&mut *self.lock());
        drop(old);
    }

    /// A table of its own with the same entries, for a fork child.
    pub fn copy(&self) -> SharedFds {
        SharedFds::new(self.lock().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::stdio::Null;

    #[test]
    fn lowest_free_and_renumber() {
        let mut t = FdTable::default();
        for expect in 0..3 {
            assert_eq!(t.insert(FdEntry::new(Arc::new(Null))).unwrap(), expect);
        }
        t.remove(1).unwrap();
        assert_eq!(t.insert(FdEntry::new(Arc::new(Null))).unwrap(), 1);
        assert_eq!(t.renumber(0, 2), Ok(()));
        assert_eq!(t.get(0).err(), Some(Errno::BADF));
        assert!(t.get(2).is_ok());
        assert_eq!(t.renumber(0, 1), Err(Errno::BADF));
    }
}
