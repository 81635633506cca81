//! Listening sockets the user preopens with `--listen`, and the connections
//! a guest accepts on them. Guests cannot open or connect sockets of their
//! own: preview1 has no call for it, and warden adds none.
//!
//! The host sockets are always non-blocking; a guest that did not ask for
//! `NONBLOCK` blocks in the kernel (`Cage::blocking`), where a signal or a
//! stop can end the wait.

use super::{GuestNonblock, Node, Readiness};
use crate::abi::{filetype, rights, Errno, Result, SDFLAGS_RD, SDFLAGS_WR};
use crate::hostfds::HostFds;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;

pub struct Listener {
    socket: TcpListener,
    flags: GuestNonblock,
}

impl Listener {
    pub fn new(socket: TcpListener) -> std::io::Result<Listener> {
        socket.set_nonblocking(true)?;
        Ok(Listener {
            socket,
            flags: GuestNonblock::default(),
        })
    }
}

impl Node for Listener {
    fn filetype(&self) -> u8 {
        filetype::SOCKET_STREAM
    }
    fn base_rights(&self) -> u64 {
        rights::SOCKET
    }
    fn read(&self, _: &mut [u8]) -> Result<usize> {
        Err(Errno::NOTCONN)
    }
    fn write(&self, _: &[u8]) -> Result<usize> {
        Err(Errno::NOTCONN)
    }
    fn fdflags(&self) -> u16 {
        self.flags.get()
    }
    fn set_fdflags(&self, flags: u16) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }
    fn blocks_in_kernel(&self) -> bool {
        true
    }
    fn readiness(&self) -> Readiness {
        Readiness::Os(self.socket.as_raw_fd())
    }
    fn sock_accept(&self, nonblock: bool) -> Result<Arc<dyn Node>> {
        let slot = HostFds::take(1)?;
        let (stream, _) = self.socket.accept().map_err(Errno::from)?;
        stream.set_nonblocking(true).map_err(Errno::from)?;
        Ok(Arc::new(Stream {
            socket: stream,
            _slot: slot,
            flags: GuestNonblock::new(nonblock),
        }))
    }
}

pub struct Stream {
    socket: TcpStream,
    _slot: HostFds,
    flags: GuestNonblock,
}

impl Node for Stream {
    fn filetype(&self) -> u8 {
        filetype::SOCKET_STREAM
    }
    fn base_rights(&self) -> u64 {
        rights::SOCKET
    }
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        (&self.socket).read(buf).map_err(Errno::from)
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        (&self.socket).write(buf).map_err(Errno::from)
    }
    fn write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> Result<usize> {
        (&self.socket).write_vectored(bufs).map_err(Errno::from)
    }
    fn fdflags(&self) -> u16 {
        self.flags.get()
    }
    fn set_fdflags(&self, flags: u16) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }
    fn blocks_in_kernel(&self) -> bool {
        true
    }
    fn readiness(&self) -> Readiness {
        Readiness::Os(self.socket.as_raw_fd())
    }
    fn sock_recv(&self, buf: &mut [u8], peek: bool) -> Result<usize> {
        if peek {
            self.socket.peek(buf).map_err(Errno::from)
        } else {
            self.read(buf)
        }
    }
    fn sock_send(&self, buf: &[u8]) -> Result<usize> {
        self.write(buf)
    }
    fn sock_shutdown(&self, how: u8) -> Result<()> {
        let how = match how & (SDFLAGS_RD | SDFLAGS_WR) {
            SDFLAGS_RD => Shutdown::Read,
            SDFLAGS_WR => Shutdown::Write,
            x if x == SDFLAGS_RD | SDFLAGS_WR => Shutdown::Both,
            _ => return Err(Errno::INVAL),
        };
        self.socket.shutdown(how).map_err(Errno::from)
    }
}
