//! Pipes between cages: host pipes, kept non-blocking so that a cage
//! waiting on one can also be woken by a signal or a stop; the kernel does
//! the blocking (see `Cage::wait_fd`).

use super::{GuestNonblock, Node, Readiness};
use crate::abi::{filetype, rights, Errno, Result};
use crate::hostfds::HostFds;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

pub struct PipeEnd {
    fd: OwnedFd,
    _slot: HostFds,
    reader: bool,
    /// The guest's view: `NONBLOCK` when it asked for it.
    flags: GuestNonblock,
}

/// A new pipe: (read end, write end). Linux gives it 64 KiB of buffer.
pub fn pipe() -> Result<(Arc<dyn Node>, Arc<dyn Node>)> {
    use rustix::pipe::PipeFlags;
    let slots = (HostFds::take(1)?, HostFds::take(1)?);
    let (r, w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    let end = |fd, slot, reader| -> Arc<dyn Node> {
        Arc::new(PipeEnd {
            fd,
            _slot: slot,
            reader,
            flags: GuestNonblock::default(),
        })
    };
    Ok((end(r, slots.0, true), end(w, slots.1, false)))
}

impl Node for PipeEnd {
    fn filetype(&self) -> u8 {
        filetype::UNKNOWN
    }
    fn base_rights(&self) -> u64 {
        let direction = if self.reader {
            rights::FD_READ
        } else {
            rights::FD_WRITE
        };
        direction
            | rights::FD_FDSTAT_SET_FLAGS
            | rights::FD_FILESTAT_GET
            | rights::POLL_FD_READWRITE
    }
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        if !self.reader {
            return Err(Errno::BADF);
        }
        rustix::io::read(&self.fd, buf).map_err(Errno::from)
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        if self.reader {
            return Err(Errno::BADF);
        }
        rustix::io::write(&self.fd, buf).map_err(Errno::from)
    }
    /// One `writev`: Linux keeps a pipe write of at most `PIPE_BUF` bytes
    /// whole, and this end is non-blocking, so such a write either goes in
    /// whole or not at all (`EAGAIN`, and the kernel waits and retries).
    fn write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> Result<usize> {
        if self.reader {
            return Err(Errno::BADF);
        }
        rustix::io::writev(&self.fd, bufs).map_err(Errno::from)
    }
    fn fdflags(&self) -> u16 {
        self.flags.get()
    }
    fn set_fdflags(&self, flags: u16) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }
    fn readiness(&self) -> Readiness {
        Readiness::Os(self.fd.as_raw_fd())
    }
    fn blocks_in_kernel(&self) -> bool {
        true
    }
}
