//! What both versions of `wasi:filesystem` do, on the kernel's types.
//!
//! Each operation finds the descriptor by its rep, checks its kind and
//! rights first (as wasmtime-wasi: a file-only call on a directory is
//! `EBADF`, a directory call on a file `ENOTDIR`), then the path
//! ([`check_path`]: absolute → `ENOTCAPABLE`), then asks the VFS, whose
//! `Directory` impls keep every path inside its mount. It fails with an
//! [`Errno`], which each version turns into its `error-code`
//! (`super::convert`), or with a trap.

use super::{Descriptor, Entry, VfsCtx};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use warden_kernel::abi::{fdflags, filetype, Errno, Filestat};
use warden_kernel::vfs::{check_path, Directory, Node, OpenRequest, TimeSpec};

/// Why an operation failed.
#[derive(Debug)]
pub(crate) enum Fail {
    /// What the guest gets as an `error-code`.
    Code(Errno),
    /// What stops the guest: a rep this table never made, a full table.
    Trap(wasmtime::Error),
}

impl From<Errno> for Fail {
    fn from(errno: Errno) -> Fail {
        Fail::Code(errno)
    }
}

impl Fail {
    /// For the functions that have no `error-code` to return.
    pub fn into_trap(self) -> wasmtime::Error {
        match self {
            Fail::Code(errno) => wasmtime::format_err!("{}", errno.describe()),
            Fail::Trap(err) => err,
        }
    }
}

pub(crate) type Res<T> = Result<T, Fail>;

/// The type of an object: a `descriptor-type` of either version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    BlockDevice,
    CharacterDevice,
    Directory,
    Fifo,
    SymbolicLink,
    RegularFile,
    Socket,
    Unknown,
}

impl Kind {
    /// From a preview-1 `filetype` (which has no FIFOs).
    pub fn of(t: u8) -> Kind {
        match t {
            filetype::BLOCK_DEVICE => Kind::BlockDevice,
            filetype::CHARACTER_DEVICE => Kind::CharacterDevice,
            filetype::DIRECTORY => Kind::Directory,
            filetype::REGULAR_FILE => Kind::RegularFile,
            filetype::SYMBOLIC_LINK => Kind::SymbolicLink,
            filetype::SOCKET_DGRAM | filetype::SOCKET_STREAM => Kind::Socket,
            _ => Kind::Unknown,
        }
    }

    /// Of an open node: one that blocks in the kernel is a FIFO.
    pub fn of_node(node: &dyn Node, t: u8) -> Kind {
        if node.blocks_in_kernel() {
            Kind::Fifo
        } else {
            Kind::of(t)
        }
    }
}

/// How `open-at` was asked to open a path, from either version's flags.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpenSpec {
    pub follow: bool,
    pub create: bool,
    pub directory: bool,
    pub exclusive: bool,
    pub truncate: bool,
    pub read: bool,
    pub write: bool,
    pub mutate: bool,
    /// `SYNC`, `DSYNC` and `RSYNC`, as kernel `fdflags`.
    pub sync: u16,
}

impl OpenSpec {
    /// Whether the descriptor reads: asked for, or not asked to write (as
    /// wasmtime-wasi).
    pub fn reads(&self) -> bool {
        self.read || !self.write
    }

    /// Whether the descriptor writes: asked for, or implied by `create`
    /// or `truncate` (as wasmtime-wasi, and as the 0.3 test suite checks
    /// with `get-flags`).
    pub fn writes(&self) -> bool {
        self.write || self.create || self.truncate
    }

    /// The sync flags asked for, as kernel `fdflags`.
    pub fn sync_flags(file: bool, data: bool, requested: bool) -> u16 {
        let mut sync = 0;
        if file {
            sync |= fdflags::SYNC;
        }
        if data {
            sync |= fdflags::DSYNC;
        }
        if requested {
            sync |= fdflags::RSYNC;
        }
        sync
    }
}

/// A `new-timestamp`'s instant: seconds since the epoch (negative before
/// it) and nanoseconds, which may exceed a second.
pub(crate) fn time_at(seconds: i128, nanoseconds: u32) -> Res<TimeSpec> {
    let overflow = || Fail::Code(Errno::OVERFLOW);
    let seconds = seconds
        .checked_add(i128::from(nanoseconds / 1_000_000_000))
        .ok_or_else(overflow)?;
    let whole = Duration::from_secs(u64::try_from(seconds.unsigned_abs()).map_err(|_| overflow())?);
    let epoch = SystemTime::UNIX_EPOCH;
    let at = if seconds >= 0 {
        epoch.checked_add(whole)
    } else {
        epoch.checked_sub(whole)
    };
    at.and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanoseconds % 1_000_000_000))))
        .map(TimeSpec::At)
        .ok_or_else(overflow)
}

/// Nanoseconds since the epoch as (seconds, nanoseconds).
pub(crate) fn split_nanos(nanos: u64) -> (u64, u32) {
    (nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
}

/// As wasmtime-wasi: the hash of the object's device and inode, the upper
/// half derived from the lower.
fn metadata_hash(st: &Filestat) -> (u64, u64) {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (st.dev, st.ino).hash(&mut hasher);
    let lower = hasher.finish();
    (lower, lower ^ 4614256656552045848u64)
}

/// A checked path: absolute paths and NUL bytes never reach a mount
/// ([`check_path`]); an empty path names nothing (`ENOENT`, as POSIX and a
/// host mount say); and a path may not climb above the directory it is
/// resolved from (`ENOTCAPABLE`, as cap-std refuses it on a host mount),
/// which virtual and sealed mounts would allow up to their root. (That
/// last check is of the path's own `..`; a symlink's are the mount's.)
fn path(p: &str) -> Res<&str> {
    check_path(p)?;
    if p.is_empty() {
        return Err(Errno::NOENT.into());
    }
    let mut depth = 0usize;
    for component in p.split('/') {
        match component {
            "" | "." => {}
            ".." => depth = depth.checked_sub(1).ok_or(Fail::Code(Errno::NOTCAPABLE))?,
            _ => depth += 1,
        }
    }
    Ok(p)
}

/// The `Directory` of a node known to be one.
fn as_dir(node: &Arc<dyn Node>) -> Res<&dyn Directory> {
    node.as_dir().ok_or(Fail::Code(Errno::NOTDIR))
}

/// Opens `p` in `base` as `req` asks. A FIFO with no reader yet is waited
/// for, as a blocking open(2) would, without holding a host thread.
pub(crate) async fn open_node(
    base: &Arc<dyn Node>,
    p: &str,
    req: &OpenRequest,
) -> Res<Arc<dyn Node>> {
    let dir = as_dir(base)?;
    loop {
        match dir.open(p, req) {
            Err(Errno::AGAIN) => super::node_io::pause().await,
            other => return Ok(other?),
        }
    }
}

/// The descriptor lookups and rights checks.
impl VfsCtx {
    /// The descriptor behind `rep`; an unknown rep traps (the component
    /// model hands out only reps this table made).
    pub(crate) fn descriptor(&self, rep: u32) -> Res<&Descriptor> {
        match self.entries.get(super::slot(rep)) {
            Some(Entry::Descriptor(d)) => Ok(d),
            _ => Err(Fail::Trap(wasmtime::format_err!(
                "unknown descriptor {rep}"
            ))),
        }
    }

    /// A file descriptor (`EBADF` for a directory).
    pub(crate) fn file(&self, rep: u32) -> Res<&Descriptor> {
        let d = self.descriptor(rep)?;
        if d.is_dir() {
            return Err(Errno::BADF.into());
        }
        Ok(d)
    }

    /// The node of a directory descriptor (`ENOTDIR` for a file), and
    /// whether it may mutate.
    pub(crate) fn dir(&self, rep: u32) -> Res<(Arc<dyn Node>, bool)> {
        let d = self.descriptor(rep)?;
        if !d.is_dir() {
            return Err(Errno::NOTDIR.into());
        }
        Ok((d.node.clone(), d.mutate))
    }

    /// A directory that may mutate (`EROFS` otherwise), once `p` is a path
    /// that could be asked for at all.
    fn mutable_dir(&self, rep: u32, p: &str) -> Res<Arc<dyn Node>> {
        let (node, mutate) = self.dir(rep)?;
        path(p)?;
        if !mutate {
            return Err(Errno::ROFS.into());
        }
        Ok(node)
    }

    /// The two directories of a link or rename, both of which may mutate.
    fn mutable_pair(
        &self,
        rep: u32,
        p: &str,
        new_rep: u32,
        new_p: &str,
    ) -> Res<(Arc<dyn Node>, Arc<dyn Node>)> {
        Ok((self.mutable_dir(rep, p)?, self.mutable_dir(new_rep, new_p)?))
    }

    /// The node `read-via-stream` reads: a file opened for reading
    /// (`EISDIR` for a directory, `EBADF` without `read`).
    pub(crate) fn readable_file(&self, rep: u32) -> Res<Arc<dyn Node>> {
        let d = self.descriptor(rep)?;
        if d.is_dir() {
            return Err(Errno::ISDIR.into());
        }
        if !d.read {
            return Err(Errno::BADF.into());
        }
        Ok(d.node.clone())
    }

    /// The node `write-via-stream` and `append-via-stream` write: a file
    /// opened for writing (`EBADF` otherwise).
    pub(crate) fn writable_file(&self, rep: u32) -> Res<Arc<dyn Node>> {
        let d = self.file(rep)?;
        if !d.write {
            return Err(Errno::BADF.into());
        }
        Ok(d.node.clone())
    }

    /// A new descriptor or listing; the rep that stands for it.
    pub(crate) fn insert(&mut self, entry: Entry) -> Res<u32> {
        let rep = u32::try_from(self.entries.vacant_key() + 1)
            .map_err(|_| Fail::Trap(wasmtime::format_err!("wasi:filesystem table is full")))?;
        self.entries.insert(entry);
        Ok(rep)
    }

    /// Drops a descriptor or listing.
    pub(crate) fn remove(&mut self, rep: u32) -> wasmtime::Result<Entry> {
        self.entries
            .try_remove(super::slot(rep))
            .ok_or_else(|| wasmtime::format_err!("unknown wasi:filesystem resource {rep}"))
    }

    /// `get-directories`: a new descriptor for each preopen, with `read`
    /// and `mutate-directory` (a read-only mount refuses writes itself).
    pub(crate) fn open_preopens(&mut self) -> wasmtime::Result<Vec<(u32, String)>> {
        let mut out = Vec::with_capacity(self.preopens.len());
        for (guest, node) in self.preopens.clone() {
            let rep = self
                .insert(Entry::Descriptor(Descriptor {
                    node,
                    read: true,
                    write: false,
                    mutate: true,
                    mutate_asked: true,
                    sync: 0,
                }))
                .map_err(Fail::into_trap)?;
            out.push((rep, guest));
        }
        Ok(out)
    }
}

/// The operations of a `descriptor`, in the order of the WIT.
impl VfsCtx {
    /// `advise`, with preview 1's numbers for the advice (the order of
    /// both versions' `advice` enum).
    pub(crate) fn advise(&self, rep: u32, offset: u64, len: u64, advice: u8) -> Res<()> {
        Ok(self.file(rep)?.node.advise(offset, len, advice)?)
    }

    pub(crate) fn sync_data(&self, rep: u32) -> Res<()> {
        Ok(self.descriptor(rep)?.node.datasync()?)
    }

    pub(crate) fn kind(&self, rep: u32) -> Res<Kind> {
        let d = self.descriptor(rep)?;
        Ok(Kind::of_node(&*d.node, d.node.filetype()))
    }

    pub(crate) fn set_size(&self, rep: u32, size: u64) -> Res<()> {
        let d = self.file(rep)?;
        // ftruncate(2) of a descriptor not open for writing: EINVAL.
        if !d.write {
            return Err(Errno::INVAL.into());
        }
        Ok(d.node.set_size(size)?)
    }

    pub(crate) fn set_times(
        &self,
        rep: u32,
        atim: Option<TimeSpec>,
        mtim: Option<TimeSpec>,
    ) -> Res<()> {
        let d = self.descriptor(rep)?;
        if !d.mutate {
            return Err(Errno::ROFS.into());
        }
        Ok(d.node.set_times(atim, mtim)?)
    }

    /// `read` (0.2): at most `max` bytes at `offset`, and whether that was
    /// the end of the file.
    pub(crate) fn read_at(
        &self,
        rep: u32,
        len: u64,
        offset: u64,
        max: u64,
    ) -> Res<(Vec<u8>, bool)> {
        let d = self.file(rep)?;
        if !d.read {
            return Err(Errno::BADF.into());
        }
        let mut buf = vec![0; len.min(max) as usize];
        let n = loop {
            match d.node.pread(&mut buf, offset) {
                Err(Errno::INTR) => {}
                other => break other?,
            }
        };
        buf.truncate(n);
        Ok((buf, n == 0 && len > 0))
    }

    /// `write` (0.2).
    pub(crate) fn write_at(&self, rep: u32, buf: &[u8], offset: u64) -> Res<u64> {
        let node = self.writable_file(rep)?;
        Ok(node.pwrite(buf, offset)? as u64)
    }

    /// `read-directory`: the entries, without `.` and `..`.
    pub(crate) fn entries(&self, rep: u32) -> Res<Vec<(String, Kind)>> {
        let (node, _) = self.dir(rep)?;
        Ok(node
            .readdir()?
            .into_iter()
            .filter(|e| e.name != "." && e.name != "..")
            .map(|e| (e.name, Kind::of(e.filetype)))
            .collect())
    }

    pub(crate) fn sync(&self, rep: u32) -> Res<()> {
        Ok(self.descriptor(rep)?.node.sync()?)
    }

    pub(crate) fn create_directory_at(&self, rep: u32, p: &str) -> Res<()> {
        let node = self.mutable_dir(rep, p)?;
        Ok(as_dir(&node)?.create_dir(p)?)
    }

    pub(crate) fn stat(&self, rep: u32) -> Res<(Filestat, Kind)> {
        let d = self.descriptor(rep)?;
        let st = d.node.stat()?;
        let kind = Kind::of_node(&*d.node, st.filetype);
        Ok((st, kind))
    }

    pub(crate) fn stat_at(&self, rep: u32, follow: bool, p: &str) -> Res<(Filestat, Kind)> {
        let (node, _) = self.dir(rep)?;
        let st = as_dir(&node)?.stat_at(path(p)?, follow)?;
        let kind = Kind::of(st.filetype);
        Ok((st, kind))
    }

    pub(crate) fn set_times_at(
        &self,
        rep: u32,
        follow: bool,
        p: &str,
        atim: Option<TimeSpec>,
        mtim: Option<TimeSpec>,
    ) -> Res<()> {
        let node = self.mutable_dir(rep, p)?;
        Ok(as_dir(&node)?.set_times_at(p, follow, atim, mtim)?)
    }

    pub(crate) fn link_at(
        &self,
        rep: u32,
        follow: bool,
        old_path: &str,
        new_rep: u32,
        new_path: &str,
    ) -> Res<()> {
        let (from, to) = self.mutable_pair(rep, old_path, new_rep, new_path)?;
        Ok(as_dir(&from)?.link(old_path, follow, as_dir(&to)?, new_path)?)
    }

    /// The first half of `open-at`: checks what is asked against the base
    /// directory; gives the base, the request for [`open_node`] and
    /// whether the base may mutate.
    pub(crate) fn open_start(
        &self,
        rep: u32,
        p: &str,
        spec: &OpenSpec,
    ) -> Res<(Arc<dyn Node>, OpenRequest, bool)> {
        let (base, base_mutate) = self.dir(rep)?;
        path(p)?;
        if spec.directory && (spec.create || spec.exclusive || spec.truncate) {
            return Err(Errno::INVAL.into());
        }
        // What could change the tree needs a base that may mutate.
        if (spec.writes() || spec.mutate) && !base_mutate {
            return Err(Errno::ROFS.into());
        }
        let req = OpenRequest {
            read: spec.reads(),
            write: spec.writes(),
            create: spec.create,
            exclusive: spec.exclusive,
            truncate: spec.truncate,
            directory: spec.directory,
            append: false,
            nonblock: false,
            follow: spec.follow,
            sync: spec.sync,
        };
        Ok((base, req, base_mutate))
    }

    /// The second half of `open-at`: the descriptor of the opened node.
    pub(crate) fn open_finish(
        &mut self,
        node: Arc<dyn Node>,
        spec: &OpenSpec,
        base_mutate: bool,
    ) -> Res<u32> {
        let descriptor = if node.as_dir().is_some() {
            Descriptor {
                node,
                read: true,
                write: false,
                mutate: spec.mutate || (base_mutate && !self.strict_mutate),
                mutate_asked: spec.mutate,
                sync: 0,
            }
        } else if spec.directory {
            return Err(Errno::NOTDIR.into());
        } else {
            Descriptor {
                node,
                read: spec.reads(),
                write: spec.writes(),
                mutate: base_mutate,
                mutate_asked: false,
                sync: spec.sync,
            }
        };
        self.insert(Entry::Descriptor(descriptor))
    }

    pub(crate) fn readlink_at(&self, rep: u32, p: &str) -> Res<String> {
        let (node, _) = self.dir(rep)?;
        let target = as_dir(&node)?.readlink(path(p)?)?;
        // An absolute target is not handed out.
        if target.starts_with('/') {
            return Err(Errno::PERM.into());
        }
        Ok(target)
    }

    pub(crate) fn remove_directory_at(&self, rep: u32, p: &str) -> Res<()> {
        let node = self.mutable_dir(rep, p)?;
        Ok(as_dir(&node)?.remove_dir(p)?)
    }

    pub(crate) fn rename_at(
        &self,
        rep: u32,
        old_path: &str,
        new_rep: u32,
        new_path: &str,
    ) -> Res<()> {
        let (from, to) = self.mutable_pair(rep, old_path, new_rep, new_path)?;
        Ok(as_dir(&from)?.rename(old_path, as_dir(&to)?, new_path)?)
    }

    pub(crate) fn symlink_at(&self, rep: u32, target: &str, p: &str) -> Res<()> {
        let node = self.mutable_dir(rep, p)?;
        // An absolute target is not permitted.
        if target.starts_with('/') {
            return Err(Errno::PERM.into());
        }
        Ok(as_dir(&node)?.symlink(target, p)?)
    }

    pub(crate) fn unlink_file_at(&self, rep: u32, p: &str) -> Res<()> {
        let node = self.mutable_dir(rep, p)?;
        Ok(as_dir(&node)?.unlink(p)?)
    }

    pub(crate) fn is_same_object(&self, a: u32, b: u32) -> Res<bool> {
        let a = &self.descriptor(a)?.node;
        let b = &self.descriptor(b)?.node;
        if Arc::ptr_eq(a, b) {
            return Ok(true);
        }
        Ok(match (a.stat(), b.stat()) {
            (Ok(x), Ok(y)) => x.dev == y.dev && x.ino == y.ino,
            _ => false,
        })
    }

    /// `metadata-hash`: (lower, upper).
    pub(crate) fn metadata_hash(&self, rep: u32) -> Res<(u64, u64)> {
        Ok(metadata_hash(&self.descriptor(rep)?.node.stat()?))
    }

    pub(crate) fn metadata_hash_at(&self, rep: u32, follow: bool, p: &str) -> Res<(u64, u64)> {
        Ok(metadata_hash(&self.stat_at(rep, follow, p)?.0))
    }
}
