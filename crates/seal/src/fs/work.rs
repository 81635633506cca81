//! One operation on the filesystem: reads from a snapshot ([`Snapshot`]) or
//! changes in a store transaction ([`Work`]).

use std::collections::{BTreeMap, HashSet};

use super::path::Tree;
use super::records::{
    chunk_count, chunk_key, decode_dir, decode_superblock, dir_key, encode_dir, encode_superblock,
    extents_key, inode_key, Dir, Extents, Inode, ORPHANS_KEY, SUPERBLOCK_KEY,
};
use super::{corrupt, now, DirEntry, FileKind, FsError, FsResult, CHUNK, CHUNK_SIZE};
use crate::error::SealError;
use crate::namespace::{NsTransaction, View};

/// Read access shared by snapshots and transactions.
pub(super) trait Source {
    fn fetch(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SealError>;
}

impl Source for View<'_> {
    fn fetch(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SealError> {
        self.get(key)
    }
}

impl Source for NsTransaction<'_, '_> {
    fn fetch(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SealError> {
        self.get(key)
    }
}

pub(super) fn load_inode(src: &impl Source, ino: u64, subject: &str) -> FsResult<Inode> {
    let bytes = src.fetch(&inode_key(ino))?.ok_or(FsError::NotFound)?;
    Inode::decode(&bytes).ok_or_else(|| corrupt(subject, &format!("inode {ino}")))
}

fn load_dir(src: &impl Source, ino: u64, subject: &str) -> FsResult<Dir> {
    let bytes = src
        .fetch(&dir_key(ino))?
        .ok_or_else(|| corrupt(subject, &format!("directory {ino} (missing)")))?;
    decode_dir(&bytes).ok_or_else(|| corrupt(subject, &format!("directory {ino}")))
}

fn load_extents(src: &impl Source, ino: u64, subject: &str) -> FsResult<Extents> {
    match src.fetch(&extents_key(ino))? {
        None => Ok(Extents::default()),
        Some(bytes) => Extents::decode(&bytes)
            .ok_or_else(|| corrupt(subject, &format!("chunk index of inode {ino}"))),
    }
}

/// A read-only snapshot as a [`Tree`].
pub(super) struct Snapshot<'s, S> {
    pub src: &'s S,
    pub subject: &'s str,
}

impl<S: Source> Snapshot<'_, S> {
    pub fn list_dir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        Ok(load_dir(self.src, ino, self.subject)?
            .into_iter()
            .map(|(name, (ino, kind))| DirEntry { name, kind, ino })
            .collect())
    }
}

impl<S: Source> Tree for Snapshot<'_, S> {
    fn inode(&mut self, ino: u64) -> FsResult<Inode> {
        load_inode(self.src, ino, self.subject)
    }

    fn lookup(&mut self, dir: u64, name: &str) -> FsResult<Option<(u64, FileKind)>> {
        Ok(load_dir(self.src, dir, self.subject)?.get(name).copied())
    }
}

/// A record as loaded (`None`: absent) and as changed (`None`: deleted).
struct Cached<T> {
    loaded: Option<T>,
    current: Option<T>,
}

impl<T: Clone> Cached<T> {
    fn loaded(value: T) -> Self {
        Cached {
            loaded: Some(value.clone()),
            current: Some(value),
        }
    }

    fn created(value: T) -> Self {
        Cached {
            loaded: None,
            current: Some(value),
        }
    }
}

/// The current value of `ino` in `cache`, loaded on first use;
/// `NotFound` once deleted in this transaction.
fn current<T: Clone>(
    cache: &mut BTreeMap<u64, Cached<T>>,
    ino: u64,
    load: impl FnOnce() -> FsResult<T>,
) -> FsResult<&mut T> {
    let cached = match cache.entry(ino) {
        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::btree_map::Entry::Vacant(e) => e.insert(Cached::loaded(load()?)),
    };
    cached.current.as_mut().ok_or(FsError::NotFound)
}

/// The state of one mutating operation: inodes, directories and chunk
/// indexes are loaded once, changed in memory, and written back by
/// `finish`.
pub(super) struct Work<'x, 'a, 't> {
    pub tx: &'x mut NsTransaction<'a, 't>,
    subject: &'x str,
    pub now: u64,
    inodes: BTreeMap<u64, Cached<Inode>>,
    dirs: BTreeMap<u64, Cached<Dir>>,
    extents: BTreeMap<u64, Cached<Extents>>,
    /// Inodes with open handles: unlinking them makes orphans.
    open: Option<&'x HashSet<u64>>,
    /// Inodes this operation made orphans.
    pub orphaned: Vec<u64>,
}

impl<'x, 'a, 't> Tree for Work<'x, 'a, 't> {
    fn inode(&mut self, ino: u64) -> FsResult<Inode> {
        Work::inode(self, ino).copied()
    }

    fn lookup(&mut self, dir: u64, name: &str) -> FsResult<Option<(u64, FileKind)>> {
        Work::lookup(self, dir, name)
    }
}

impl<'x, 'a, 't> Work<'x, 'a, 't> {
    pub fn new(tx: &'x mut NsTransaction<'a, 't>, subject: &'x str) -> Self {
        Work {
            tx,
            subject,
            now: now(),
            inodes: BTreeMap::new(),
            dirs: BTreeMap::new(),
            extents: BTreeMap::new(),
            open: None,
            orphaned: Vec::new(),
        }
    }

    pub fn with_open(mut self, open: &'x HashSet<u64>) -> Self {
        self.open = Some(open);
        self
    }

    pub fn inode(&mut self, ino: u64) -> FsResult<&mut Inode> {
        let (tx, subject) = (&*self.tx, self.subject);
        current(&mut self.inodes, ino, || load_inode(tx, ino, subject))
    }

    pub fn dir(&mut self, ino: u64) -> FsResult<&mut Dir> {
        let (tx, subject) = (&*self.tx, self.subject);
        current(&mut self.dirs, ino, || load_dir(tx, ino, subject))
    }

    fn extents(&mut self, ino: u64) -> FsResult<&mut Extents> {
        let (tx, subject) = (&*self.tx, self.subject);
        current(&mut self.extents, ino, || load_extents(tx, ino, subject))
    }

    pub fn lookup(&mut self, parent: u64, name: &str) -> FsResult<Option<(u64, FileKind)>> {
        Ok(self.dir(parent)?.get(name).copied())
    }

    /// Whether directory `dir` is `ancestor` or below it.
    pub fn is_within(&mut self, mut dir: u64, ancestor: u64) -> FsResult<bool> {
        // Depth is bounded by the number of directories; the bound guards
        // against a parent cycle, which only a bug could create.
        for _ in 0..1_000_000 {
            if dir == ancestor {
                return Ok(true);
            }
            if dir == super::ROOT_INO {
                return Ok(false);
            }
            dir = self.inode(dir)?.parent;
        }
        Err(corrupt(self.subject, "directory tree (a parent cycle)"))
    }

    fn alloc_ino(&mut self) -> FsResult<u64> {
        let sb = self
            .tx
            .get(SUPERBLOCK_KEY)?
            .ok_or_else(|| corrupt(self.subject, "superblock (missing)"))?;
        let (_, ino) = decode_superblock(&sb).ok_or_else(|| corrupt(self.subject, "superblock"))?;
        self.tx.set(SUPERBLOCK_KEY, encode_superblock(ino + 1))?;
        Ok(ino)
    }

    pub fn create(&mut self, parent: u64, name: &str, kind: FileKind) -> FsResult<u64> {
        let ino = self.alloc_ino()?;
        let t = self.now;
        self.inodes
            .insert(ino, Cached::created(Inode::new(kind, parent, t)));
        if kind == FileKind::Directory {
            self.dirs.insert(ino, Cached::created(Dir::new()));
            self.inode(parent)?.nlink += 1;
        }
        self.dir(parent)?.insert(name.to_string(), (ino, kind));
        let p = self.inode(parent)?;
        p.mtime = t;
        p.ctime = t;
        Ok(ino)
    }

    /// Removes the entry `name` (inode `ino`) from `parent`, and the inode
    /// itself unless it is a file still open somewhere.
    pub fn unlink_entry(
        &mut self,
        parent: u64,
        name: &str,
        ino: u64,
        kind: FileKind,
    ) -> FsResult<()> {
        let t = self.now;
        self.dir(parent)?.remove(name);
        let p = self.inode(parent)?;
        p.mtime = t;
        p.ctime = t;
        if kind == FileKind::Directory {
            p.nlink = p.nlink.saturating_sub(1);
            return self.remove_inode(ino);
        }
        let node = self.inode(ino)?;
        node.nlink = node.nlink.saturating_sub(1);
        node.ctime = t;
        if node.nlink > 0 {
            return Ok(());
        }
        if self.open.is_some_and(|open| open.contains(&ino)) {
            let mut orphans = self.orphans()?;
            orphans.push(ino);
            self.set_orphans(&orphans)?;
            self.orphaned.push(ino);
            Ok(())
        } else {
            self.remove_inode(ino)
        }
    }

    /// Deletes an inode with its data or directory record. Deletes the
    /// chunks that exist, whatever the file's size says.
    pub fn remove_inode(&mut self, ino: u64) -> FsResult<()> {
        let inode = match self.inode(ino) {
            Ok(i) => *i,
            Err(FsError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        match inode.kind {
            FileKind::File => self.delete_chunks_from(ino, 0)?,
            FileKind::Directory => {
                // Load it first so that `finish` knows there is something to delete.
                self.dir(ino)?;
                if let Some(c) = self.dirs.get_mut(&ino) {
                    c.current = None;
                }
            }
        }
        if let Some(c) = self.inodes.get_mut(&ino) {
            c.current = None;
        }
        Ok(())
    }

    /// Deletes every stored chunk of `ino` from index `from` up.
    fn delete_chunks_from(&mut self, ino: u64, from: u64) -> FsResult<()> {
        let gone = self.extents(ino)?.split_off(from);
        for index in gone.indices() {
            self.tx.delete(chunk_key(ino, index))?;
        }
        Ok(())
    }

    /// Writes `data` at `offset` of file `ino` (already checked to be a
    /// file and to stay within the size limit).
    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> FsResult<()> {
        let end = offset + data.len() as u64;
        let mut pos = offset;
        while pos < end {
            let index = pos / CHUNK;
            let chunk_start = index * CHUNK;
            let upto = end.min(chunk_start + CHUNK);
            let src = &data[(pos - offset) as usize..(upto - offset) as usize];
            let from = (pos - chunk_start) as usize;
            let key = chunk_key(ino, index);
            // Whether the chunk exists is asked of the chunk itself (the
            // index agrees: both change in one transaction), so that the
            // index is read only when a chunk appears, not at every write.
            let (chunk, existed) = if from == 0 && src.len() == CHUNK_SIZE {
                (src.to_vec(), self.tx.exists(key)?)
            } else {
                let stored = self.tx.get(key)?;
                let existed = stored.is_some();
                let mut chunk = stored.unwrap_or_default();
                if chunk.len() < from + src.len() {
                    chunk.resize(from + src.len(), 0);
                }
                chunk[from..from + src.len()].copy_from_slice(src);
                (chunk, existed)
            };
            self.tx.set(key, chunk)?;
            if !existed {
                self.extents(ino)?.insert(index);
            }
            pos = upto;
        }
        let t = self.now;
        let node = self.inode(ino)?;
        node.size = node.size.max(end);
        node.mtime = t;
        node.ctime = t;
        Ok(())
    }

    /// Sets the size of file `ino`: shrinking deletes the chunks that exist
    /// past the new end; growing stores nothing (the hole reads as zeros).
    pub fn truncate(&mut self, ino: u64, len: u64) -> FsResult<()> {
        let old = self.inode(ino)?.size;
        if len == old {
            return Ok(());
        }
        if len < old {
            self.delete_chunks_from(ino, chunk_count(len))?;
            let keep = (len % CHUNK) as usize;
            let last = len / CHUNK;
            if keep != 0 && self.extents(ino)?.contains(last) {
                let key = chunk_key(ino, last);
                if let Some(mut chunk) = self.tx.get(key)? {
                    if chunk.len() > keep {
                        chunk.truncate(keep);
                        self.tx.set(key, chunk)?;
                    }
                }
            }
        }
        let t = self.now;
        let node = self.inode(ino)?;
        node.size = len;
        node.mtime = t;
        node.ctime = t;
        Ok(())
    }

    pub fn set_times(&mut self, ino: u64, atime: Option<u64>, mtime: Option<u64>) -> FsResult<()> {
        let t = self.now;
        let node = self.inode(ino)?;
        if let Some(a) = atime {
            node.atime = a;
        }
        if let Some(m) = mtime {
            node.mtime = m;
        }
        node.ctime = t;
        Ok(())
    }

    pub fn orphans(&self) -> FsResult<Vec<u64>> {
        let Some(bytes) = self.tx.get(ORPHANS_KEY)? else {
            return Ok(Vec::new());
        };
        if bytes.len() % 8 != 0 {
            return Err(corrupt(self.subject, "orphan list"));
        }
        Ok(bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect())
    }

    pub fn set_orphans(&mut self, orphans: &[u64]) -> FsResult<()> {
        if orphans.is_empty() {
            self.tx.delete(ORPHANS_KEY)?;
        } else {
            let bytes: Vec<u8> = orphans.iter().flat_map(|o| o.to_le_bytes()).collect();
            self.tx.set(ORPHANS_KEY, bytes)?;
        }
        Ok(())
    }

    /// Writes back every inode, directory and chunk index this operation
    /// changed.
    pub fn finish(self) -> FsResult<()> {
        for (ino, c) in &self.inodes {
            match &c.current {
                _ if c.current == c.loaded => {}
                Some(i) => self.tx.set(inode_key(*ino), i.encode())?,
                None => {
                    self.tx.delete(inode_key(*ino))?;
                }
            }
        }
        for (ino, c) in &self.dirs {
            match &c.current {
                _ if c.current == c.loaded => {}
                Some(d) => self.tx.set(dir_key(*ino), encode_dir(d))?,
                None => {
                    self.tx.delete(dir_key(*ino))?;
                }
            }
        }
        for (ino, c) in &self.extents {
            // An absent record is an empty index: store only non-empty ones.
            match &c.current {
                _ if c.current == c.loaded => {}
                Some(e) if !e.is_empty() => self.tx.set(extents_key(*ino), e.encode())?,
                _ => {
                    self.tx.delete(extents_key(*ino))?;
                }
            }
        }
        Ok(())
    }
}
