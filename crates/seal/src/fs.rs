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
//! | `o`                          | inodes unlinked while still open               |
//!
//! File data is cut in 64 KiB chunks so that a small write rewrites one
//! chunk, not the file; chunks never extend past the file size and missing
//! chunks (holes) read as zeros. A directory is one entry, rewritten when
//! it changes: fine for the hundreds or few thousands of entries programs
//! usually keep in one directory, slow for hundreds of thousands.
//!
//! Every operation is one store transaction, so it happens entirely or not
//! at all, even across a crash. It is durable when it returns, unless the
//! store was opened with [`Durability::Eventual`](crate::Durability), in
//! which case [`Handle::sync`] (`fd_sync`) is the point of durability: a
//! program writing a file in small pieces then pays one `fsync` instead of one
//! per write. Paths are relative to the mount root and
//! already resolved by the caller (`""` or `"."` is the root); `..`, empty
//! components (`a//b`, a trailing `/`) and absolute paths are refused
//! anyway. Reads do not update access times. There are no hard links or
//! symbolic links. A file unlinked while a [`Handle`] has it open lives on
//! until the last handle is dropped, as in POSIX; after a crash such files are
//! removed by the next [`SealedFs::new`]. All handles on one namespace
//! must come from one `SealedFs` (or its clones) for that to work.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::SealError;
use crate::namespace::{Namespace, NsTransaction, View};

/// Bytes of file data per store entry.
pub const CHUNK_SIZE: usize = 64 * 1024;
const CHUNK: u64 = CHUNK_SIZE as u64;
/// Inode number of the root directory.
pub const ROOT_INO: u64 = 1;
/// Longest file name, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Largest file size (2^50 bytes: keeps chunk arithmetic far from overflow).
pub const MAX_FILE_SIZE: u64 = 1 << 50;

const SUPERBLOCK_KEY: &[u8] = b"s";
const ORPHANS_KEY: &[u8] = b"o";
const SUPERBLOCK_MAGIC: &[u8; 4] = b"WSFS";
const FORMAT: u32 = 1;

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
    fn code(self) -> u8 {
        match self {
            FileKind::File => 1,
            FileKind::Directory => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Inode {
    kind: FileKind,
    nlink: u32,
    /// The containing directory, for directories (the root is its own parent).
    parent: u64,
    size: u64,
    atime: u64,
    mtime: u64,
    ctime: u64,
}

const INODE_LEN: usize = 1 + 4 + 8 * 5;

impl Inode {
    fn new(kind: FileKind, parent: u64, now: u64) -> Self {
        Inode {
            kind,
            nlink: if kind == FileKind::Directory { 2 } else { 1 },
            parent,
            size: 0,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INODE_LEN);
        out.push(self.kind.code());
        out.extend_from_slice(&self.nlink.to_le_bytes());
        for v in [self.parent, self.size, self.atime, self.mtime, self.ctime] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        let inode = Inode {
            kind: FileKind::from_code(r.u8()?)?,
            nlink: r.u32()?,
            parent: r.u64()?,
            size: r.u64()?,
            atime: r.u64()?,
            mtime: r.u64()?,
            ctime: r.u64()?,
        };
        r.0.is_empty().then_some(inode)
    }

    fn metadata(&self, ino: u64) -> Metadata {
        Metadata {
            ino,
            kind: self.kind,
            size: if self.kind == FileKind::File {
                self.size
            } else {
                0
            },
            nlink: u64::from(self.nlink),
            atime: self.atime,
            mtime: self.mtime,
            ctime: self.ctime,
        }
    }
}

type Dir = BTreeMap<String, (u64, FileKind)>;

fn encode_dir(dir: &Dir) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + dir.len() * 24);
    out.extend_from_slice(&(dir.len() as u32).to_le_bytes());
    for (name, (ino, kind)) in dir {
        // Names are at most MAX_NAME_LEN bytes, checked on the way in.
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&ino.to_le_bytes());
        out.push(kind.code());
    }
    out
}

fn decode_dir(bytes: &[u8]) -> Option<Dir> {
    let mut r = Reader(bytes);
    let n = r.u32()?;
    let mut dir = Dir::new();
    for _ in 0..n {
        let len = usize::from(r.u16()?);
        let name = std::str::from_utf8(r.take(len)?).ok()?.to_string();
        let ino = r.u64()?;
        let kind = FileKind::from_code(r.u8()?)?;
        dir.insert(name, (ino, kind));
    }
    r.0.is_empty().then_some(dir)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

fn inode_key(ino: u64) -> [u8; 9] {
    let mut k = [b'i'; 9];
    k[1..].copy_from_slice(&ino.to_be_bytes());
    k
}

fn dir_key(ino: u64) -> [u8; 9] {
    let mut k = [b'd'; 9];
    k[1..].copy_from_slice(&ino.to_be_bytes());
    k
}

fn chunk_key(ino: u64, index: u64) -> [u8; 17] {
    let mut k = [b'c'; 17];
    k[1..9].copy_from_slice(&ino.to_be_bytes());
    k[9..].copy_from_slice(&index.to_be_bytes());
    k
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Number of chunks a file of `size` bytes spans.
fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK)
}

/// Splits a mount-relative path into its components.
fn components(path: &str) -> FsResult<Vec<&str>> {
    if path.is_empty() || path == "." {
        return Ok(Vec::new());
    }
    if path.starts_with('/') {
        return Err(FsError::InvalidName(path.to_string()));
    }
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | ".." => return Err(FsError::InvalidName(c.to_string())),
            "." => {}
            c if c.len() > MAX_NAME_LEN || c.contains('\0') => {
                return Err(FsError::InvalidName(c.to_string()))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Read access shared by snapshots and transactions.
trait Source {
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

/// Open handles and unlinked-but-open inodes, shared by a `SealedFs`'s clones.
#[derive(Default)]
struct Handles {
    open: HashMap<u64, usize>,
    orphans: HashSet<u64>,
}

/// A filesystem in one namespace. Cheap to clone; clones share open-file
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
    /// The filesystem in `ns`, creating an empty root directory the
    /// first time, and removing files left unlinked-but-open by a crash.
    pub fn new(ns: Namespace) -> FsResult<Self> {
        let fs = SealedFs {
            ns,
            handles: Arc::default(),
        };
        let subject = fs.subject();
        fs.ns.transaction(|tx| -> FsResult<()> {
            match tx.get(SUPERBLOCK_KEY)? {
                Some(sb) => {
                    decode_superblock(&sb).ok_or_else(|| corrupt(&subject, "superblock"))?;
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
        })?;
        Ok(fs)
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

    /// Opens (and with `flags.create`, creates) a file or directory.
    pub fn open(&self, path: &str, flags: OpenFlags) -> FsResult<Handle> {
        let comps = components(path)?;
        let subject = self.subject();
        let mut handles = self.lock();
        let (ino, kind) = self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            let found = match comps.split_last() {
                None => {
                    if flags.create && flags.exclusive {
                        return Err(FsError::Exists);
                    }
                    if flags.truncate {
                        return Err(FsError::IsDir);
                    }
                    (ROOT_INO, FileKind::Directory)
                }
                Some((name, dirs)) => {
                    let parent = w.walk(dirs)?;
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
        // the next `SealedFs::new`.
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
        let comps = components(path)?;
        let subject = self.subject();
        self.ns.view(|v| {
            let (ino, _) = resolve(v, &comps, &subject)?;
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
        let comps = components(path)?;
        let subject = self.subject();
        self.ns.view(|v| {
            let (ino, kind) = resolve(v, &comps, &subject)?;
            if kind != FileKind::Directory {
                return Err(FsError::NotDir);
            }
            list_dir(v, ino, &subject)
        })
    }

    pub fn mkdir(&self, path: &str) -> FsResult<()> {
        let comps = components(path)?;
        let subject = self.subject();
        let (name, dirs) = comps.split_last().ok_or(FsError::Exists)?;
        self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            let parent = w.walk(dirs)?;
            if w.lookup(parent, name)?.is_some() {
                return Err(FsError::Exists);
            }
            w.create(parent, name, FileKind::Directory)?;
            w.finish()
        })
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, path: &str) -> FsResult<()> {
        let comps = components(path)?;
        let subject = self.subject();
        let (name, dirs) = comps
            .split_last()
            .ok_or(FsError::Invalid("cannot remove the root directory"))?;
        self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            let parent = w.walk(dirs)?;
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
        let comps = components(path)?;
        let subject = self.subject();
        let (name, dirs) = comps.split_last().ok_or(FsError::IsDir)?;
        let mut handles = self.lock();
        let open: HashSet<u64> = handles.open.keys().copied().collect();
        let orphaned = self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject).with_open(&open);
            let parent = w.walk(dirs)?;
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
        let from_comps = components(from)?;
        let to_comps = components(to)?;
        let subject = self.subject();
        let root = FsError::Invalid("cannot rename the root directory");
        let (from_name, from_dirs) = from_comps.split_last().ok_or(root)?;
        let (to_name, to_dirs) = to_comps
            .split_last()
            .ok_or(FsError::Invalid("cannot rename onto the root directory"))?;
        let mut handles = self.lock();
        let open: HashSet<u64> = handles.open.keys().copied().collect();
        let orphaned = self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject).with_open(&open);
            let from_parent = w.walk(from_dirs)?;
            let (ino, kind) = w.lookup(from_parent, from_name)?.ok_or(FsError::NotFound)?;
            let to_parent = w.walk(to_dirs)?;
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
            w.dir(from_parent)?.remove(*from_name);
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
        let comps = components(path)?;
        let subject = self.subject();
        self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            let (ino, _) = w.resolve(&comps)?;
            w.set_times(ino, atime, mtime)?;
            w.finish()
        })
    }

    /// The whole content of a file.
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
                let chunk = v.get(chunk_key(ino, index))?.unwrap_or_default();
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

    fn write_at(&self, ino: u64, offset: u64, data: &[u8]) -> FsResult<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or(FsError::Invalid("file would exceed the maximum size"))?;
        let subject = self.subject();
        self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            let inode = *w.inode(ino)?;
            if inode.kind != FileKind::File {
                return Err(FsError::IsDir);
            }
            let mut pos = offset;
            while pos < end {
                let index = pos / CHUNK;
                let chunk_start = index * CHUNK;
                let upto = end.min(chunk_start + CHUNK);
                let src = &data[(pos - offset) as usize..(upto - offset) as usize];
                let from = (pos - chunk_start) as usize;
                let key = chunk_key(ino, index);
                let chunk = if from == 0 && src.len() == CHUNK_SIZE {
                    src.to_vec()
                } else {
                    let mut chunk = w.tx.get(key)?.unwrap_or_default();
                    if chunk.len() < from + src.len() {
                        chunk.resize(from + src.len(), 0);
                    }
                    chunk[from..from + src.len()].copy_from_slice(src);
                    chunk
                };
                w.tx.set(key, chunk)?;
                pos = upto;
            }
            let t = w.now;
            let node = w.inode(ino)?;
            node.size = node.size.max(end);
            node.mtime = t;
            node.ctime = t;
            w.finish()?;
            Ok(data.len())
        })
    }

    fn set_len(&self, ino: u64, len: u64) -> FsResult<()> {
        if len > MAX_FILE_SIZE {
            return Err(FsError::Invalid("file would exceed the maximum size"));
        }
        let subject = self.subject();
        self.ns.transaction(|tx| {
            let mut w = Work::new(tx, &subject);
            if w.inode(ino)?.kind != FileKind::File {
                return Err(FsError::IsDir);
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

/// An open file or directory. Dropping the last handle of a file that was
/// unlinked meanwhile removes its data.
pub struct Handle {
    fs: SealedFs,
    ino: u64,
    kind: FileKind,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("ino", &self.ino)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Handle {
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The kind it had when opened.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// Reads from `offset` into `buf`; returns the number of bytes read
    /// (less than `buf.len()` only at the end of the file).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        self.fs.read_at(self.ino, offset, buf)
    }

    /// Writes all of `data` at `offset` (extending the file, with a hole if
    /// `offset` is past its end); returns `data.len()`.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> FsResult<usize> {
        self.fs.write_at(self.ino, offset, data)
    }

    /// Truncates or extends (with zeros) the file to `len` bytes.
    pub fn set_len(&self, len: u64) -> FsResult<()> {
        self.fs.set_len(self.ino, len)
    }

    pub fn stat(&self) -> FsResult<Metadata> {
        let subject = self.fs.subject();
        self.fs
            .ns
            .view(|v| Ok(load_inode(v, self.ino, &subject)?.metadata(self.ino)))
    }

    pub fn set_times(&self, atime: Option<u64>, mtime: Option<u64>) -> FsResult<()> {
        self.fs.set_times_ino(self.ino, atime, mtime)
    }

    /// The entries of this directory, sorted by name.
    pub fn readdir(&self) -> FsResult<Vec<DirEntry>> {
        let subject = self.fs.subject();
        self.fs.ns.view(|v| {
            let inode = load_inode(v, self.ino, &subject)?;
            if inode.kind != FileKind::Directory {
                return Err(FsError::NotDir);
            }
            list_dir(v, self.ino, &subject)
        })
    }

    /// Makes everything written so far durable (`fsync`).
    pub fn sync(&self) -> FsResult<()> {
        Ok(self.fs.ns.store().flush()?)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.fs.release(self.ino);
    }
}

fn corrupt(subject: &str, what: &str) -> FsError {
    FsError::Integrity(SealError::integrity(
        subject.to_string(),
        format!("its {what} is malformed"),
    ))
}

fn encode_superblock(next_ino: u64) -> Vec<u8> {
    [
        &SUPERBLOCK_MAGIC[..],
        &FORMAT.to_le_bytes(),
        &next_ino.to_le_bytes(),
    ]
    .concat()
}

fn decode_superblock(bytes: &[u8]) -> Option<u64> {
    let mut r = Reader(bytes);
    if r.take(4)? != SUPERBLOCK_MAGIC || r.u32()? != FORMAT {
        return None;
    }
    let next = r.u64()?;
    r.0.is_empty().then_some(next)
}

fn load_inode(src: &impl Source, ino: u64, subject: &str) -> FsResult<Inode> {
    let bytes = src.fetch(&inode_key(ino))?.ok_or(FsError::NotFound)?;
    Inode::decode(&bytes).ok_or_else(|| corrupt(subject, &format!("inode {ino}")))
}

fn load_dir(src: &impl Source, ino: u64, subject: &str) -> FsResult<Dir> {
    let bytes = src
        .fetch(&dir_key(ino))?
        .ok_or_else(|| corrupt(subject, &format!("directory {ino} (missing)")))?;
    decode_dir(&bytes).ok_or_else(|| corrupt(subject, &format!("directory {ino}")))
}

fn list_dir(src: &impl Source, ino: u64, subject: &str) -> FsResult<Vec<DirEntry>> {
    Ok(load_dir(src, ino, subject)?
        .into_iter()
        .map(|(name, (ino, kind))| DirEntry { name, kind, ino })
        .collect())
}

/// Follows `comps` from the root in a snapshot.
fn resolve(src: &impl Source, comps: &[&str], subject: &str) -> FsResult<(u64, FileKind)> {
    let mut at = (ROOT_INO, FileKind::Directory);
    for name in comps {
        if at.1 != FileKind::Directory {
            return Err(FsError::NotDir);
        }
        at = *load_dir(src, at.0, subject)?
            .get(*name)
            .ok_or(FsError::NotFound)?;
    }
    Ok(at)
}

/// A record as loaded (`None`: absent) and as changed (`None`: deleted).
struct Cached<T> {
    loaded: Option<T>,
    current: Option<T>,
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

/// The state of one mutating operation: inodes and directories are loaded
/// once, changed in memory, and written back by `finish`.
struct Work<'x, 'a, 't> {
    tx: &'x mut NsTransaction<'a, 't>,
    subject: &'x str,
    now: u64,
    inodes: BTreeMap<u64, Cached<Inode>>,
    dirs: BTreeMap<u64, Cached<Dir>>,
    /// Inodes with open handles: unlinking them makes orphans.
    open: Option<&'x HashSet<u64>>,
    /// Inodes this operation made orphans.
    orphaned: Vec<u64>,
}

impl<'x, 'a, 't> Work<'x, 'a, 't> {
    fn new(tx: &'x mut NsTransaction<'a, 't>, subject: &'x str) -> Self {
        Work {
            tx,
            subject,
            now: now(),
            inodes: BTreeMap::new(),
            dirs: BTreeMap::new(),
            open: None,
            orphaned: Vec::new(),
        }
    }

    fn with_open(mut self, open: &'x HashSet<u64>) -> Self {
        self.open = Some(open);
        self
    }

    fn inode(&mut self, ino: u64) -> FsResult<&mut Inode> {
        let (tx, subject) = (&*self.tx, self.subject);
        current(&mut self.inodes, ino, || load_inode(tx, ino, subject))
    }

    fn dir(&mut self, ino: u64) -> FsResult<&mut Dir> {
        let (tx, subject) = (&*self.tx, self.subject);
        current(&mut self.dirs, ino, || load_dir(tx, ino, subject))
    }

    fn lookup(&mut self, parent: u64, name: &str) -> FsResult<Option<(u64, FileKind)>> {
        Ok(self.dir(parent)?.get(name).copied())
    }

    fn resolve(&mut self, comps: &[&str]) -> FsResult<(u64, FileKind)> {
        let mut at = (ROOT_INO, FileKind::Directory);
        for name in comps {
            if at.1 != FileKind::Directory {
                return Err(FsError::NotDir);
            }
            at = self.lookup(at.0, name)?.ok_or(FsError::NotFound)?;
        }
        Ok(at)
    }

    /// The directory at `comps`.
    fn walk(&mut self, comps: &[&str]) -> FsResult<u64> {
        match self.resolve(comps)? {
            (ino, FileKind::Directory) => Ok(ino),
            _ => Err(FsError::NotDir),
        }
    }

    /// Whether directory `dir` is `ancestor` or below it.
    fn is_within(&mut self, mut dir: u64, ancestor: u64) -> FsResult<bool> {
        // Depth is bounded by the number of directories; the bound guards
        // against a parent cycle, which only a bug could create.
        for _ in 0..1_000_000 {
            if dir == ancestor {
                return Ok(true);
            }
            if dir == ROOT_INO {
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
        let ino = decode_superblock(&sb).ok_or_else(|| corrupt(self.subject, "superblock"))?;
        self.tx.set(SUPERBLOCK_KEY, encode_superblock(ino + 1))?;
        Ok(ino)
    }

    fn create(&mut self, parent: u64, name: &str, kind: FileKind) -> FsResult<u64> {
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
    fn unlink_entry(&mut self, parent: u64, name: &str, ino: u64, kind: FileKind) -> FsResult<()> {
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

    /// Deletes an inode with its data or directory record.
    fn remove_inode(&mut self, ino: u64) -> FsResult<()> {
        let inode = match self.inode(ino) {
            Ok(i) => *i,
            Err(FsError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        match inode.kind {
            FileKind::File => {
                for index in 0..chunk_count(inode.size) {
                    self.tx.delete(chunk_key(ino, index))?;
                }
            }
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

    fn truncate(&mut self, ino: u64, len: u64) -> FsResult<()> {
        let old = self.inode(ino)?.size;
        if len == old {
            return Ok(());
        }
        if len < old {
            for index in chunk_count(len)..chunk_count(old) {
                self.tx.delete(chunk_key(ino, index))?;
            }
            let keep = (len % CHUNK) as usize;
            if keep != 0 {
                let key = chunk_key(ino, len / CHUNK);
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

    fn set_times(&mut self, ino: u64, atime: Option<u64>, mtime: Option<u64>) -> FsResult<()> {
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

    fn orphans(&self) -> FsResult<Vec<u64>> {
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

    fn set_orphans(&mut self, orphans: &[u64]) -> FsResult<()> {
        if orphans.is_empty() {
            self.tx.delete(ORPHANS_KEY)?;
        } else {
            let bytes: Vec<u8> = orphans.iter().flat_map(|o| o.to_le_bytes()).collect();
            self.tx.set(ORPHANS_KEY, bytes)?;
        }
        Ok(())
    }

    /// Writes back every inode and directory this operation changed.
    fn finish(self) -> FsResult<()> {
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_checked() {
        assert!(components("").unwrap().is_empty());
        assert!(components(".").unwrap().is_empty());
        assert_eq!(components("a/./b").unwrap(), ["a", "b"]);
        for bad in ["/a", "a//b", "a/", "..", "a/../b", "a\0"] {
            assert!(
                matches!(components(bad), Err(FsError::InvalidName(_))),
                "{bad:?}"
            );
        }
        assert!(components(&"n".repeat(MAX_NAME_LEN)).is_ok());
        let long = "n".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            components(&format!("ok/{long}")),
            Err(FsError::InvalidName(name)) if name == long
        ));
        assert!(matches!(components("a/../b"), Err(FsError::InvalidName(n)) if n == ".."));
    }

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let inode = Inode {
            kind: FileKind::Directory,
            nlink: 3,
            parent: 9,
            size: 123,
            atime: 1,
            mtime: 2,
            ctime: 3,
        };
        assert_eq!(Inode::decode(&inode.encode()), Some(inode));
        assert_eq!(Inode::decode(&inode.encode()[1..]), None);
        let mut bad_kind = inode.encode();
        bad_kind[0] = 7;
        assert_eq!(Inode::decode(&bad_kind), None);

        let mut dir = Dir::new();
        dir.insert("a".into(), (5, FileKind::File));
        dir.insert("ünï".into(), (6, FileKind::Directory));
        let bytes = encode_dir(&dir);
        assert_eq!(decode_dir(&bytes), Some(dir));
        assert_eq!(decode_dir(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode_dir(&[bytes.as_slice(), &[0]].concat()), None);

        assert_eq!(decode_superblock(&encode_superblock(42)), Some(42));
        assert_eq!(decode_superblock(b"WSFS"), None);
    }

    #[test]
    fn chunk_arithmetic() {
        assert_eq!(chunk_count(0), 0);
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(CHUNK), 1);
        assert_eq!(chunk_count(CHUNK + 1), 2);
        assert!(chunk_key(1, 2) < chunk_key(1, 3));
    }
}
