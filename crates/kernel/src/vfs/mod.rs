//! The virtual filesystem: what an fd points at.
//!
//! A [`Node`] is an open-file description: the thing several fds (and, after
//! a fork, several cages) share, offset included. A node that is a directory
//! also implements [`Directory`], the `path_*` operations relative to it.
//! Mount kinds: host directories through cap-std ([`host`]), in-memory
//! read-only trees ([`virt`]) and the sealed store ([`sealed`]); stdio,
//! pipes and sockets are nodes too.

pub mod host;
pub mod pipe;
pub mod sealed;
pub mod socket;
pub mod stdio;
pub mod virt;

use crate::abi::{fdflags, filetype, Dirent, Errno, Filestat, Result};
use crate::note;
use std::any::Any;
use std::io::{IoSlice, SeekFrom};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// How `path_open` wants a file opened.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenRequest {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub exclusive: bool,
    pub truncate: bool,
    pub directory: bool,
    pub append: bool,
    pub nonblock: bool,
    pub follow: bool,
    /// `SYNC`, `DSYNC` and `RSYNC` of the fdflags, as asked.
    pub sync: u16,
}

/// A time to set: now, or a given instant.
#[derive(Clone, Copy, Debug)]
pub enum TimeSpec {
    Now,
    At(SystemTime),
}

/// What `poll_oneoff` waits on for a node.
pub enum Readiness {
    /// Reads and writes never block (regular files, memory, `/dev/null`).
    Always,
    /// Ask the host kernel about this descriptor.
    Os(RawFd),
}

/// An open-file description.
pub trait Node: Send + Sync + Any {
    fn filetype(&self) -> u8;

    /// Rights an fd of this node starts with.
    fn base_rights(&self) -> u64 {
        crate::abi::rights::STREAM
    }

    fn read(&self, _buf: &mut [u8]) -> Result<usize> {
        Err(Errno::BADF)
    }
    fn write(&self, _buf: &[u8]) -> Result<usize> {
        Err(Errno::BADF)
    }
    fn pread(&self, _buf: &mut [u8], _offset: u64) -> Result<usize> {
        Err(Errno::SPIPE)
    }
    fn pwrite(&self, _buf: &[u8], _offset: u64) -> Result<usize> {
        Err(Errno::SPIPE)
    }
    /// Writes `bufs` as one write, so that no other writer's data lands
    /// inside it: one host `writev` where there is a host descriptor, else
    /// one [`Node::write`] of the gathered bytes.
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> Result<usize> {
        match bufs {
            [one] => self.write(one),
            _ => self.write(&gather(bufs)),
        }
    }
    /// [`Node::write_vectored`] at an offset.
    fn pwrite_vectored(&self, bufs: &[IoSlice<'_>], offset: u64) -> Result<usize> {
        match bufs {
            [one] => self.pwrite(one, offset),
            _ => self.pwrite(&gather(bufs), offset),
        }
    }
    /// Writes `buf` at the end of the file in one step, whatever the
    /// description's offset and flags: `append-via-stream` of
    /// `wasi:filesystem`, on a description not opened for appending. Nodes
    /// whose end another writer can move do it atomically; this default
    /// finds the end with `stat` first.
    fn pwrite_end(&self, buf: &[u8]) -> Result<usize> {
        let end = self.stat()?.size;
        self.pwrite(buf, end)
    }
    fn seek(&self, _pos: SeekFrom) -> Result<u64> {
        Err(Errno::SPIPE)
    }
    fn stat(&self) -> Result<Filestat> {
        Ok(Filestat {
            filetype: self.filetype(),
            ..Filestat::default()
        })
    }
    fn set_size(&self, _size: u64) -> Result<()> {
        Err(Errno::INVAL)
    }
    fn set_times(&self, _atim: Option<TimeSpec>, _mtim: Option<TimeSpec>) -> Result<()> {
        Err(Errno::NOTSUP)
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    fn datasync(&self) -> Result<()> {
        self.sync()
    }
    fn advise(&self, _offset: u64, _len: u64, _advice: u8) -> Result<()> {
        Ok(())
    }
    fn allocate(&self, _offset: u64, _len: u64) -> Result<()> {
        Err(Errno::NOTSUP)
    }
    /// Description flags (`APPEND`, `NONBLOCK`, …).
    fn fdflags(&self) -> u16 {
        0
    }
    fn set_fdflags(&self, _flags: u16) -> Result<()> {
        Err(Errno::NOTSUP)
    }
    /// All entries, `.` and `..` first; `fd_readdir` pages through them.
    fn readdir(&self) -> Result<Vec<Dirent>> {
        Err(Errno::NOTDIR)
    }
    fn as_dir(&self) -> Option<&dyn Directory> {
        None
    }
    fn readiness(&self) -> Readiness {
        Readiness::Always
    }
    /// The node is non-blocking underneath and `EAGAIN` means "wait for
    /// readiness" unless the guest asked for `NONBLOCK`.
    fn blocks_in_kernel(&self) -> bool {
        false
    }
    fn sock_accept(&self, _nonblock: bool) -> Result<Arc<dyn Node>> {
        Err(Errno::NOTSOCK)
    }
    fn sock_recv(&self, _buf: &mut [u8], _peek: bool) -> Result<usize> {
        Err(Errno::NOTSOCK)
    }
    fn sock_send(&self, _buf: &[u8]) -> Result<usize> {
        Err(Errno::NOTSOCK)
    }
    fn sock_shutdown(&self, _how: u8) -> Result<()> {
        Err(Errno::NOTSOCK)
    }
}

/// The `path_*` operations, relative to an open directory. Paths are
/// relative and already checked by [`check_path`].
pub trait Directory: Send + Sync {
    /// Opens `path` without blocking the host thread. `EAGAIN` when the
    /// open would block (a FIFO without a reader) and the request is not
    /// `nonblock`: the caller waits and asks again.
    fn open(&self, path: &str, req: &OpenRequest) -> Result<Arc<dyn Node>>;
    fn create_dir(&self, path: &str) -> Result<()>;
    fn remove_dir(&self, path: &str) -> Result<()>;
    fn unlink(&self, path: &str) -> Result<()>;
    fn rename(&self, from: &str, to_dir: &dyn Directory, to: &str) -> Result<()>;
    fn link(&self, from: &str, follow: bool, to_dir: &dyn Directory, to: &str) -> Result<()>;
    fn symlink(&self, target: &str, path: &str) -> Result<()>;
    fn readlink(&self, path: &str) -> Result<String>;
    fn stat_at(&self, path: &str, follow: bool) -> Result<Filestat>;
    fn set_times_at(
        &self,
        path: &str,
        follow: bool,
        atim: Option<TimeSpec>,
        mtim: Option<TimeSpec>,
    ) -> Result<()>;
    /// For operations across two directories of the same kind.
    fn as_any(&self) -> &dyn Any;
}

/// The bytes of several buffers, in one.
fn gather(bufs: &[IoSlice<'_>]) -> Vec<u8> {
    let mut all = Vec::with_capacity(bufs.iter().map(|b| b.len()).sum());
    for b in bufs {
        all.extend_from_slice(b);
    }
    all
}

/// Rejects what no mount accepts: absolute paths and NUL bytes.
pub fn check_path(path: &str) -> Result<()> {
    if path.starts_with('/') {
        return Err(note::deny(Errno::NOTCAPABLE, "absolute path"));
    }
    if path.contains('\0') {
        return Err(Errno::ILSEQ);
    }
    Ok(())
}

/// `EROFS` with the reason recorded for the trace.
pub fn read_only() -> Errno {
    note::deny(Errno::ROFS, "read-only mount")
}

/// Nanoseconds since the epoch, as WASI timestamps are.
pub fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `.` and `..` for a listing that lacks them.
pub fn dot_entries(ino: u64) -> Vec<Dirent> {
    [".", ".."]
        .into_iter()
        .map(|name| Dirent {
            ino,
            filetype: filetype::DIRECTORY,
            name: name.to_string(),
        })
        .collect()
}

/// The offset of an open-file description that has no host descriptor to
/// keep it (virtual and sealed files).
#[derive(Default)]
pub struct Cursor(Mutex<u64>);

impl Cursor {
    /// Reads at the offset with `pread` and moves past what was read.
    pub fn read(
        &self,
        buf: &mut [u8],
        pread: impl FnOnce(&mut [u8], u64) -> Result<usize>,
    ) -> Result<usize> {
        let mut at = self.0.lock().map_err(|_| Errno::IO)?;
        let n = pread(buf, *at)?;
        *at += n as u64;
        Ok(n)
    }

    /// Writes at the offset (at `size()` first, for append) and moves past.
    pub fn write(
        &self,
        buf: &[u8],
        append_at: Option<u64>,
        pwrite: impl FnOnce(&[u8], u64) -> Result<usize>,
    ) -> Result<usize> {
        let mut at = self.0.lock().map_err(|_| Errno::IO)?;
        if let Some(end) = append_at {
            *at = end;
        }
        let n = pwrite(buf, *at)?;
        *at += n as u64;
        Ok(n)
    }

    /// An `O_APPEND` write done by `append`, which finds the end and writes
    /// there in one atomic step and returns how much it wrote and the offset
    /// just past it; the offset moves there.
    pub fn append(&self, append: impl FnOnce() -> Result<(usize, u64)>) -> Result<usize> {
        let mut at = self.0.lock().map_err(|_| Errno::IO)?;
        let (n, end) = append()?;
        *at = end;
        Ok(n)
    }

    /// `lseek`, with `size` asked only for `SeekFrom::End`.
    pub fn seek(&self, pos: SeekFrom, size: impl FnOnce() -> Result<u64>) -> Result<u64> {
        let mut at = self.0.lock().map_err(|_| Errno::IO)?;
        let target = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => at.checked_add_signed(d),
            SeekFrom::End(d) => size()?.checked_add_signed(d),
        };
        *at = target.ok_or(Errno::INVAL)?;
        Ok(*at)
    }
}

/// The guest's `NONBLOCK` flag on a stream whose host descriptor is always
/// non-blocking (pipes, sockets): the kernel blocks unless the guest asked
/// not to.
#[derive(Default)]
pub struct GuestNonblock(AtomicU16);

impl GuestNonblock {
    pub fn new(on: bool) -> Self {
        GuestNonblock(AtomicU16::new(if on { fdflags::NONBLOCK } else { 0 }))
    }

    pub fn get(&self) -> u16 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, flags: u16) {
        self.0.store(flags & fdflags::NONBLOCK, Ordering::Relaxed);
    }
}
