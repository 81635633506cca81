//! The three standard streams, in the mode the policy gives each.

use super::{Node, Readiness};
use crate::abi::{filetype, rights, Errno, Result};
use crate::note::{self, Denial, DenialNotes};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;

/// The host's own stdin, stdout or stderr, read and written directly
/// (unbuffered, so the guest's own buffering decides what is flushed when).
pub struct HostStream {
    fd: RawFd,
}

impl HostStream {
    pub fn stdin() -> HostStream {
        HostStream {
            fd: std::io::stdin().as_raw_fd(),
        }
    }
    pub fn stdout() -> HostStream {
        HostStream {
            fd: std::io::stdout().as_raw_fd(),
        }
    }
    pub fn stderr() -> HostStream {
        HostStream {
            fd: std::io::stderr().as_raw_fd(),
        }
    }
    fn borrow(&self) -> BorrowedFd<'_> {
        // SAFETY: fds 0-2 stay open for the life of the process.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

impl Node for HostStream {
    fn filetype(&self) -> u8 {
        if rustix::termios::isatty(self.borrow()) {
            filetype::CHARACTER_DEVICE
        } else {
            filetype::UNKNOWN
        }
    }
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        rustix::io::read(self.borrow(), buf).map_err(Errno::from)
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        rustix::io::write(self.borrow(), buf).map_err(Errno::from)
    }
    fn write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> Result<usize> {
        rustix::io::writev(self.borrow(), bufs).map_err(Errno::from)
    }
    fn readiness(&self) -> Readiness {
        Readiness::Os(self.fd)
    }
    fn set_fdflags(&self, _flags: u16) -> Result<()> {
        // The host's own stdio is shared with warden: never change its flags.
        Err(Errno::NOTSUP)
    }
}

/// `ignore`: like `/dev/null`.
pub struct Null;

impl Node for Null {
    fn filetype(&self) -> u8 {
        filetype::CHARACTER_DEVICE
    }
    fn read(&self, _buf: &mut [u8]) -> Result<usize> {
        Ok(0)
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        Ok(buf.len())
    }
    fn set_fdflags(&self, _flags: u16) -> Result<()> {
        Ok(())
    }
}

/// `deny`: the descriptor exists, so numbering is as the guest expects,
/// but every transfer fails with `ENOTCAPABLE`, and the first one in the
/// run says how to grant it.
pub struct Denied {
    /// 0, 1 or 2.
    pub fd: u8,
    pub notes: Arc<DenialNotes>,
}

impl Denied {
    fn refuse(&self) -> Errno {
        self.notes.denied(Denial::Stream(self.fd));
        let why = match self.fd {
            0 => "denied by policy: stdin",
            1 => "denied by policy: stdout",
            _ => "denied by policy: stderr",
        };
        note::deny(Errno::NOTCAPABLE, why)
    }
}

impl Node for Denied {
    fn filetype(&self) -> u8 {
        filetype::CHARACTER_DEVICE
    }
    fn base_rights(&self) -> u64 {
        rights::STREAM
    }
    fn read(&self, _buf: &mut [u8]) -> Result<usize> {
        Err(self.refuse())
    }
    fn write(&self, _buf: &[u8]) -> Result<usize> {
        Err(self.refuse())
    }
}
