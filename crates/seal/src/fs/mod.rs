//! A POSIX-like filesystem kept in one namespace of the sealed store: what a
//! sealed mount (`[[mount]] sealed = "..."`) is made of. The kernel wraps it
//! as a WASI mount and maps [`FsError`] to errnos.
//!
//! Layout, as entries of the namespace (whose names are hashed and whose
//! values are sealed like any other):
//!
//! | key                          | value                                          |
//! |------------------------------|------------------------------------------------|
//! | `s`                          | superblock: magic, format, next inode number   |
//! | `i` ‖ ino (u64 BE)           | inode: kind, nlink, parent, size, a/m/ctime    |
//! | `d` ‖ ino                    | directory: its entries (name → ino, kind)      |
//! | `c` ‖ ino ‖ chunk index      | up to [`CHUNK_SIZE`] bytes of file data        |
//! | `x` ‖ ino                    | chunk index: which chunks of the file exist    |
//! | `o`                          | inodes unlinked while still open               |
//!
//! File data is cut in 64 KiB chunks so that a small write rewrites one
//! chunk, not the file; chunks never extend past the file size and missing
//! chunks (holes) read as zeros. The chunk index (format 2) lists the
//! chunks that exist as ranges, so that truncating and deleting cost what
//! is stored, not what the size says: the store's names are keyed hashes,
//! with no order to scan a file's chunks by, and a file may be 2^50 bytes
//! long with one chunk. A format 1 filesystem (without the index) is
//! upgraded when mounted, by listing the namespace once. The index is one
//! entry, rewritten when a chunk appears: a few bytes for a file written
//! front to back, 16 bytes per separate range for one written in scattered
//! pieces, so each new range costs what the file already stores. A
//! directory is one entry, rewritten when it changes: fine for the hundreds
//! or few thousands of entries programs usually keep in one directory, slow
//! for hundreds of thousands.
//!
//! Every operation is one store transaction, so it happens entirely or not
//! at all, even across a crash; an append ([`Handle::append`]) finds the
//! end and writes there in one, so concurrent appenders never overwrite
//! each other. It is durable when it returns, unless the store was opened
//! with [`Durability::Eventual`](crate::Durability), in which case
//! [`Handle::sync`] (`fd_sync`) is the point of durability: a program
//! writing a file in small pieces then pays one `fsync` instead of one per
//! write.
//!
//! Paths given to [`SealedFs`] are relative to the root (`""` or `"."` is
//! the root); `..`, empty components (`a//b`, a trailing `/`) and absolute
//! paths are refused. Paths given to a directory [`Handle`]'s `*_at`
//! methods are relative to that directory, which is found by its inode, not
//! its path: it stays the same directory when it or an ancestor is renamed,
//! and is gone (`NotFound`) once removed. There, `..` climbs (never above
//! the root: [`FsError::OutsideMount`]) and empty components are ignored.
//! Reads do not update access times. There are no hard links or symbolic
//! links.
//!
//! A file unlinked while a [`Handle`] has it open lives on until the last
//! handle is dropped, as in POSIX; after a crash such files are removed by
//! the next mount. For that, all handles on one namespace must share one
//! bookkeeping: every [`SealedFs::new`] of a namespace of one [`Store`](crate::Store)
//! (however many mounts name it) returns the same filesystem while one of
//! them is alive.

mod handle;
mod path;
mod records;
mod work;

pub use handle::Handle;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::SealError;
use crate::namespace::Namespace;
use path::{components, resolve, resolve_dir, split_last, Comp, Syntax};
use records::{
    decode_superblock, dir_key, encode_dir, encode_superblock, extents_key, inode_key,
    parse_chunk_key, Dir, Extents, Inode, CHUNK_TAG, FORMAT, FORMAT_1, SUPERBLOCK_KEY,
};
use work::{load_inode, Snapshot, Work};

/// Bytes of file data per store entry.
pub const CHUNK_SIZE: usize = 64 * 1024;
const CHUNK: u64 = CHUNK_SIZE as u64;
/// Inode number of the root directory.
pub const ROOT_INO: u64 = 1;
/// Longest file name, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Largest file size (2^50 bytes: keeps chunk arithmetic far from overflow).
pub const MAX_FILE_SIZE: u64 = 1 << 50;

/// Errors of filesystem operations, one per errno the kernel needs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// `ENOENT`
    #[error("no such file or directory")]
    NotFound,
    /// `EEXIST`
    #[error("file exists")]
    Exists,
    /// `ENOTDIR`
    #[error("not a directory")]
    NotDir,
    /// `EISDIR`
    #[error("is a directory")]
    IsDir,
    /// `ENOTEMPTY`
    #[error("directory not empty")]
    NotEmpty,
    /// `EINVAL`, or `ENAMETOOLONG` for a name over [`MAX_NAME_LEN`] bytes.
    /// Holds the offending path component (`""`, `".."`, a name with a NUL
    /// or too long), or the whole path if it is absolute.
    #[error("invalid file name {0:?}")]
    InvalidName(String),
    /// `EINVAL`: an operation that makes no sense (moving a directory into
    /// itself, removing the root, a file size beyond [`MAX_FILE_SIZE`]).
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// `ENOTCAPABLE`: a relative path climbs (`..`) above the root.
    #[error("the path leads outside the filesystem")]
    OutsideMount,
    /// `EIO`: stored data failed its integrity check.
    #[error(transparent)]
    Integrity(SealError),
    /// `EIO`: the store failed.
    #[error(transparent)]
    Io(SealError),
}

impl From<SealError> for FsError {
    fn from(e: SealError) -> Self {
        if e.is_tamper() {
            FsError::Integrity(e)
        } else {
            FsError::Io(e)
        }
    }
}

type FsResult<T> = Result<T, FsError>;

/// File or directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Directory,
}

impl FileKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            FileKind::File => 1,
            FileKind::Directory => 2,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(FileKind::File),
            2 => Some(FileKind::Directory),
            _ => None,
        }
    }
}

/// What `stat` returns. Times are nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub ino: u64,
    pub kind: FileKind,
    /// Bytes for files; 0 for directories.
    pub size: u64,
    pub nlink: u64,
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
}

/// One entry of a directory listing (`.` and `..` are not included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub kind: FileKind,
    pub ino: u64,
}

/// How [`SealedFs::open`] opens a path (`O_CREAT`, `O_EXCL`, `O_TRUNC`,
/// `O_DIRECTORY`). Access rights are the caller's business.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    pub create: bool,
    pub exclusive: bool,
    pub truncate: bool,
    pub directory: bool,
}

impl OpenFlags {
    /// Open an existing file or directory.
    pub fn existing() -> Self {
        Self::default()
    }

    pub fn create(mut self) -> Self {
        self.create = true;
        self
    }

    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    pub fn truncate(mut self) -> Self {
        self.truncate = true;
        self
    }

    pub fn directory(mut self) -> Self {
        self.directory = true;
        self
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn corrupt(subject: &str, what: &str) -> FsError {
    FsError::Integrity(SealError::integrity(
        subject.to_string(),
        format!("its {what} is malformed"),
    ))
}

fn too_large() -> FsError {
    FsError::Invalid("file would exceed the maximum size")
}

/// Open handles and unlinked-but-open inodes of one namespace's filesystem.
#[derive(Default)]
struct Handles {
    open: HashMap<u64, usize>,
    orphans: HashSet<u64>,
}

/// The live filesystems of a store, by namespace name: held weakly, so
/// that a namespace's bookkeeping lives exactly as long as some
/// `SealedFs` or `Handle` of it does.
#[derive(Default)]
pub(crate) struct Registry(Mutex<HashMap<String, Weak<Mutex<Handles>>>>);

/// A filesystem in one namespace. Cheap to clone; clones, and every other
/// `SealedFs` of the same namespace of the same store, share open-file
/// bookkeeping.
#[derive(Clone)]
pub struct SealedFs {
    ns: Namespace,
    handles: Arc<Mutex<Handles>>,
}

impl std::fmt::Debug for SealedFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedFs").field("ns", &self.ns).finish()
    }
}

impl SealedFs {
    /// The filesystem in `ns`. The first time in this store (or after every
    /// handle on it was dropped) this mounts it: creates an empty root
    /// directory the first time ever, upgrades a format 1 filesystem, and
    /// removes files left unlinked-but-open by a crash. While it is mounted,
    /// every call for the same namespace returns the same filesystem, so
    /// that files one mount has open are not lost through another.
    pub fn new(ns: Namespace) -> FsResult<Self> {
        let store = ns.store().clone();
        // Held while mounting, so that two threads naming one namespace at
        // once get one filesystem.
        let mut live = store
            .inner
            .filesystems
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(handles) = live.get(ns.name()).and_then(Weak::upgrade) {
            return Ok(SealedFs { ns, handles });
        }
        let fs = SealedFs {
            ns,
            handles: Arc::default(),
        };
        fs.mount()?;
        live.retain(|_, w| w.strong_count() > 0);
        live.insert(fs.ns.name().to_string(), Arc::downgrade(&fs.handles));
        Ok(fs)
    }

    fn mount(&self) -> FsResult<()> {
        self.upgrade()?;
        let subject = self.subject();
        self.ns.transaction(|tx| -> FsResult<()> {
            match tx.get(SUPERBLOCK_KEY)? {
                Some(sb) => {
                    check_superblock(&sb, &subject, FORMAT)?;
                }
                None => {
                    let t = now();
                    let root = Inode::new(FileKind::Directory, ROOT_INO, t);
                    tx.set(inode_key(ROOT_INO), root.encode())?;
                    tx.set(dir_key(ROOT_INO), encode_dir(&Dir::new()))?;
                    tx.set(SUPERBLOCK_KEY, encode_superblock(ROOT_INO + 1))?;
                }
            }
            let mut w = Work::new(tx, &subject);
            for ino in w.orphans()? {
                w.remove_inode(ino)?;
            }
            w.set_orphans(&[])?;
            w.finish()
        })
    }

    /// Format 1 → 2: builds the chunk index of every file from the chunks
    /// that exist, found by listing the namespace once (its names are keyed
    /// hashes, so there is no cheaper way to find them).
    fn upgrade(&self) -> FsResult<()> {
        let subject = self.subject();
        let format = self.ns.view(|v| {
            v.get(SUPERBLOCK_KEY)?
                .map(|sb| check_superblock(&sb, &subject, FORMAT_1).map(|(f, _)| f))
                .transpose()
        })?;
        if format != Some(FORMAT_1) {
            return Ok(());
        }
        let keys = self.ns.all_keys([CHUNK_TAG])?;
        self.ns.transaction(|tx| -> FsResult<()> {
            let sb = tx
                .get(SUPERBLOCK_KEY)?
                .ok_or_else(|| corrupt(&subject, "superblock (missing)"))?;
            let (format, next_ino) = check_superblock(&sb, &subject, FORMAT_1)?;
            if format != FORMAT_1 {
                return Ok(());
            }
            let mut index: BTreeMap<u64, Extents> = BTreeMap::new();
            for (ino, chunk) in keys.iter().filter_map(|k| parse_chunk_key(k)) {
                index.entry(ino).or_default().insert(chunk);
            }
            for (ino, extents) in index {
                tx.set(extents_key(ino), extents.encode())?;
            }
            tx.set(SUPERBLOCK_KEY, encode_superblock(next_ino))?;
            Ok(())
        })
    }

    /// The namespace the filesystem lives in.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    fn subject(&self) -> String {
        format!("the filesystem in namespace {:?}", self.ns.name())
    }

    fn lock(&self) -> MutexGuard<'_, Handles> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `other` is this filesystem (the same namespace of the same
    /// store).
    fn same(&self, other: &SealedFs) -> bool {
        Arc::ptr_eq(&self.handles, &other.handles)
    }

    /// Opens (and with `flags.create`, creates) a file or directory.
    pub fn open(&self, path: &str, flags: OpenFlags) -> FsResult<Handle> {
        self.open_in(ROOT_INO, &components(path, Syntax::FromRoot)?, flags)
    }

    fn open_in(&self, at: u64, comps: &[Comp], flags: OpenFlags) -> FsResult<Handle> {
        let subject = self.subject();
        let mut handles = self.lock();
        let (ino, kind) = self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            let found = match split_last(comps) {
                None => {
                    let (ino, kind) = resolve(&mut w, at, comps)?;
                    if flags.create && flags.exclusive {
                        return Err(FsError::Exists);
                    }
                    if flags.truncate {
                        return Err(FsError::IsDir);
                    }
                    (ino, kind)
                }
                Some((dirs, name)) => {
                    let parent = resolve_dir(&mut w, at, dirs)?;
                    match w.lookup(parent, name)? {
                        Some((ino, kind)) => {
                            if flags.create && flags.exclusive {
                                return Err(FsError::Exists);
                            }
                            if flags.directory && kind != FileKind::Directory {
                                return Err(FsError::NotDir);
                            }
                            if flags.truncate {
                                if kind == FileKind::Directory {
                                    return Err(FsError::IsDir);
                                }
                                w.truncate(ino, 0)?;
                            }
                            (ino, kind)
                        }
                        None if !flags.create => return Err(FsError::NotFound),
                        None if flags.directory => {
                            return Err(FsError::Invalid("create with O_DIRECTORY"))
                        }
                        None => (w.create(parent, name, FileKind::File)?, FileKind::File),
                    }
                }
            };
            w.finish()?;
            Ok(found)
        })?;
        *handles.open.entry(ino).or_insert(0) += 1;
        Ok(Handle {
            fs: self.clone(),
            ino,
            kind,
        })
    }

    /// Called when a handle goes away: the last one of an unlinked file
    /// removes its data.
    fn release(&self, ino: u64) {
        let mut handles = self.lock();
        let Some(count) = handles.open.get_mut(&ino) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        handles.open.remove(&ino);
        if !handles.orphans.remove(&ino) {
            return;
        }
        let subject = self.subject();
        // Nothing to report the error to; a leftover orphan is removed at
        // the next mount.
        let _ = self.ns.transaction(|tx| -> FsResult<()> {
            let mut w = Work::new(tx, &subject);
            let mut orphans = w.orphans()?;
            if let Some(pos) = orphans.iter().position(|&o| o == ino) {
                orphans.swap_remove(pos);
                w.remove_inode(ino)?;
                w.set_orphans(&orphans)?;
            }
            w.finish()
        });
    }

    pub fn stat(&self, path: &str) -> FsResult<Metadata> {
        self.stat_in(ROOT_INO, &components(path, Syntax::FromRoot)?)
    }

    fn stat_in(&self, at: u64, comps: &[Comp]) -> FsResult<Metadata> {
        let subject = self.subject();
        self.ns.view(|v| {
            let mut snap = Snapshot {
                src: v,
                subject: &subject,
            };
            let (ino, _) = resolve(&mut snap, at, comps)?;
            Ok(load_inode(v, ino, &subject)?.metadata(ino))
        })
    }

    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> FsResult<bool> {
        match self.stat(path) {
            Ok(_) => Ok(true),
            Err(FsError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The entries of a directory, sorted by name.
    pub fn readdir(&self, path: &str) -> FsResult<Vec<DirEntry>> {
        self.readdir_in(ROOT_INO, &components(path, Syntax::FromRoot)?)
    }

    fn readdir_in(&self, at: u64, comps: &[Comp]) -> FsResult<Vec<DirEntry>> {
        let subject = self.subject();
        self.ns.view(|v| {
            let mut snap = Snapshot {
                src: v,
                subject: &subject,
            };
            let (ino, kind) = resolve(&mut snap, at, comps)?;
            if kind != FileKind::Directory {
                return Err(FsError::NotDir);
            }
            snap.list_dir(ino)
        })
    }

    pub fn mkdir(&self, path: &str) -> FsResult<()> {
        self.mkdir_in(ROOT_INO, &components(path, Syntax::FromRoot)?)
    }

    fn mkdir_in(&self, at: u64, comps: &[Comp]) -> FsResult<()> {
        let subject = self.subject();
        self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            let Some((dirs, name)) = split_last(comps) else {
                // `.`, `..`, the root: an existing directory, if it exists.
                resolve(&mut w, at, comps)?;
                return Err(FsError::Exists);
            };
            let parent = resolve_dir(&mut w, at, dirs)?;
            if w.lookup(parent, name)?.is_some() {
                return Err(FsError::Exists);
            }
            w.create(parent, name, FileKind::Directory)?;
            w.finish()
        })
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, path: &str) -> FsResult<()> {
        self.rmdir_in(ROOT_INO, &components(path, Syntax::FromRoot)?)
    }

    fn rmdir_in(&self, at: u64, comps: &[Comp]) -> FsResult<()> {
        let subject = self.subject();
        let (dirs, name) = split_last(comps).ok_or(FsError::Invalid(
            "cannot remove the root directory, `.` or `..`",
        ))?;
        self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            let parent = resolve_dir(&mut w, at, dirs)?;
            let (ino, kind) = w.lookup(parent, name)?.ok_or(FsError::NotFound)?;
            if kind != FileKind::Directory {
                return Err(FsError::NotDir);
            }
            if !w.dir(ino)?.is_empty() {
                return Err(FsError::NotEmpty);
            }
            w.unlink_entry(parent, name, ino, kind)?;
            w.finish()
        })
    }

    /// Removes a file (not a directory: that is [`Self::rmdir`]).
    pub fn unlink(&self, path: &str) -> FsResult<()> {
        self.unlink_in(ROOT_INO, &components(path, Syntax::FromRoot)?)
    }

    fn unlink_in(&self, at: u64, comps: &[Comp]) -> FsResult<()> {
        let subject = self.subject();
        let (dirs, name) = split_last(comps).ok_or(FsError::IsDir)?;
        let mut handles = self.lock();
        let open: HashSet<u64> = handles.open.keys().copied().collect();
        let orphaned = self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject).with_open(&open);
            let parent = resolve_dir(&mut w, at, dirs)?;
            let (ino, kind) = w.lookup(parent, name)?.ok_or(FsError::NotFound)?;
            if kind == FileKind::Directory {
                return Err(FsError::IsDir);
            }
            w.unlink_entry(parent, name, ino, kind)?;
            let orphaned = w.orphaned.clone();
            w.finish()?;
            Ok(orphaned)
        })?;
        handles.orphans.extend(orphaned);
        Ok(())
    }

    /// Renames a file or directory, replacing `to` if it is a file (when
    /// `from` is one) or an empty directory (when `from` is one).
    pub fn rename(&self, from: &str, to: &str) -> FsResult<()> {
        let from = components(from, Syntax::FromRoot)?;
        let to = components(to, Syntax::FromRoot)?;
        self.rename_in(ROOT_INO, &from, ROOT_INO, &to)
    }

    fn rename_in(&self, from_at: u64, from: &[Comp], to_at: u64, to: &[Comp]) -> FsResult<()> {
        let subject = self.subject();
        let (from_dirs, from_name) = split_last(from).ok_or(FsError::Invalid(
            "cannot rename the root directory, `.` or `..`",
        ))?;
        let (to_dirs, to_name) = split_last(to).ok_or(FsError::Invalid(
            "cannot rename onto the root directory, `.` or `..`",
        ))?;
        let mut handles = self.lock();
        let open: HashSet<u64> = handles.open.keys().copied().collect();
        let orphaned = self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject).with_open(&open);
            let from_parent = resolve_dir(&mut w, from_at, from_dirs)?;
            let (ino, kind) = w.lookup(from_parent, from_name)?.ok_or(FsError::NotFound)?;
            let to_parent = resolve_dir(&mut w, to_at, to_dirs)?;
            if from_parent == to_parent && from_name == to_name {
                return Ok(Vec::new());
            }
            if kind == FileKind::Directory && w.is_within(to_parent, ino)? {
                return Err(FsError::Invalid("cannot move a directory into itself"));
            }
            if let Some((target, target_kind)) = w.lookup(to_parent, to_name)? {
                match (kind, target_kind) {
                    (FileKind::File, FileKind::Directory) => return Err(FsError::IsDir),
                    (FileKind::Directory, FileKind::File) => return Err(FsError::NotDir),
                    (FileKind::Directory, FileKind::Directory) if !w.dir(target)?.is_empty() => {
                        return Err(FsError::NotEmpty)
                    }
                    _ => {}
                }
                w.unlink_entry(to_parent, to_name, target, target_kind)?;
            }
            let t = w.now;
            w.dir(from_parent)?.remove(from_name);
            w.dir(to_parent)?.insert(to_name.to_string(), (ino, kind));
            if kind == FileKind::Directory && from_parent != to_parent {
                let from = w.inode(from_parent)?;
                from.nlink = from.nlink.saturating_sub(1);
                w.inode(to_parent)?.nlink += 1;
                w.inode(ino)?.parent = to_parent;
            }
            w.inode(ino)?.ctime = t;
            for p in [from_parent, to_parent] {
                let parent = w.inode(p)?;
                parent.mtime = t;
                parent.ctime = t;
            }
            let orphaned = w.orphaned.clone();
            w.finish()?;
            Ok(orphaned)
        })?;
        handles.orphans.extend(orphaned);
        Ok(())
    }

    /// Sets access and/or modification time (nanoseconds since the epoch).
    pub fn set_times(&self, path: &str, atime: Option<u64>, mtime: Option<u64>) -> FsResult<()> {
        let comps = components(path, Syntax::FromRoot)?;
        self.set_times_in(ROOT_INO, &comps, atime, mtime)
    }

    fn set_times_in(
        &self,
        at: u64,
        comps: &[Comp],
        atime: Option<u64>,
        mtime: Option<u64>,
    ) -> FsResult<()> {
        let subject = self.subject();
        self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            let (ino, _) = resolve(&mut w, at, comps)?;
            w.set_times(ino, atime, mtime)?;
            w.finish()
        })
    }

    /// The whole content of a file (which must fit in memory: a sparse file
    /// reads as its full size).
    pub fn read_file(&self, path: &str) -> FsResult<Vec<u8>> {
        let h = self.open(path, OpenFlags::existing())?;
        let size = h.stat()?.size;
        let mut buf =
            vec![0u8; usize::try_from(size).map_err(|_| FsError::Invalid("file too large"))?];
        let n = h.read_at(0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Creates or replaces the content of a file.
    pub fn write_file(&self, path: &str, data: &[u8]) -> FsResult<()> {
        let h = self.open(path, OpenFlags::existing().create().truncate())?;
        h.write_at(0, data)?;
        Ok(())
    }

    fn read_at(&self, ino: u64, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        let subject = self.subject();
        self.ns.view(|v| {
            let inode = load_inode(v, ino, &subject)?;
            if inode.kind != FileKind::File {
                return Err(FsError::IsDir);
            }
            if offset >= inode.size || buf.is_empty() {
                return Ok(0);
            }
            let end = inode.size.min(offset.saturating_add(buf.len() as u64));
            let mut pos = offset;
            while pos < end {
                let index = pos / CHUNK;
                let chunk_start = index * CHUNK;
                let upto = end.min(chunk_start + CHUNK);
                let out = &mut buf[(pos - offset) as usize..(upto - offset) as usize];
                let chunk = v.get(records::chunk_key(ino, index))?.unwrap_or_default();
                // Bytes past a chunk's stored length (a hole) read as zeros.
                let stored = chunk
                    .get((pos - chunk_start) as usize..)
                    .unwrap_or_default();
                let available = stored.len().min(out.len());
                out[..available].copy_from_slice(&stored[..available]);
                out[available..].fill(0);
                pos = upto;
            }
            Ok((end - offset) as usize)
        })
    }

    /// Writes `data` at `offset`, or at the end of the file when `offset` is
    /// `None` (found in the same transaction as the write, so that appends
    /// never overwrite each other). Returns the offset written at.
    fn write(&self, ino: u64, offset: Option<u64>, data: &[u8]) -> FsResult<u64> {
        let subject = self.subject();
        self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            let inode = *w.inode(ino)?;
            if inode.kind != FileKind::File {
                return Err(FsError::IsDir);
            }
            let at = offset.unwrap_or(inode.size);
            at.checked_add(data.len() as u64)
                .filter(|&e| e <= MAX_FILE_SIZE)
                .ok_or_else(too_large)?;
            if !data.is_empty() {
                w.write(ino, at, data)?;
                w.finish()?;
            }
            Ok(at)
        })
    }

    /// Sets the file's size; with `only_grow`, leaves a larger file alone
    /// (decided in the same transaction, for `fd_allocate`).
    fn set_len(&self, ino: u64, len: u64, only_grow: bool) -> FsResult<()> {
        if len > MAX_FILE_SIZE {
            return Err(too_large());
        }
        let subject = self.subject();
        self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            let inode = *w.inode(ino)?;
            if inode.kind != FileKind::File {
                return Err(FsError::IsDir);
            }
            if only_grow && len <= inode.size {
                return Ok(());
            }
            w.truncate(ino, len)?;
            w.finish()
        })
    }

    fn set_times_ino(&self, ino: u64, atime: Option<u64>, mtime: Option<u64>) -> FsResult<()> {
        let subject = self.subject();
        self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            w.set_times(ino, atime, mtime)?;
            w.finish()
        })
    }
}

/// Checks a superblock's magic and format (the current one, or `also`);
/// returns its format and next inode number.
fn check_superblock(sb: &[u8], subject: &str, also: u32) -> FsResult<(u32, u64)> {
    match decode_superblock(sb) {
        Some((format, next)) if format == FORMAT || format == also => Ok((format, next)),
        Some((format, _)) => Err(corrupt(
            subject,
            &format!("superblock (format {format}; this warden reads format {FORMAT})"),
        )),
        None => Err(corrupt(subject, "superblock")),
    }
}
