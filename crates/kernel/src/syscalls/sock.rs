//! `sock_*`: accepted connections on listening sockets the user preopened.

use crate::abi::{fdflags, filetype, rights, Errno, GuestMemory, RIFLAGS_RECV_PEEK};
use crate::cage::{Cage, SysResult};
use crate::fdtable::FdEntry;
use std::sync::Arc;
use warden_policy::Subsystem;

impl Cage {
    fn socket(&self, fd: u32, needed: u64) -> Result<Arc<dyn crate::vfs::Node>, Errno> {
        self.check(Subsystem::Sockets)?;
        let entry = self.fds.get(fd)?;
        if !matches!(
            entry.node.filetype(),
            filetype::SOCKET_STREAM | filetype::SOCKET_DGRAM
        ) {
            return Err(Errno::NOTSOCK);
        }
        entry.require(needed)?;
        Ok(entry.node.clone())
    }

    pub fn sock_accept(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        flags: u32,
        out: u32,
    ) -> SysResult {
        let node = self.socket(fd, rights::SOCK_ACCEPT)?;
        if flags & !(fdflags::NONBLOCK as u32) != 0 {
            return Err(Errno::INVAL.into());
        }
        let nonblock = flags & fdflags::NONBLOCK as u32 != 0;
        let conn = self.blocking(&*node, false, || node.sock_accept(nonblock))?;
        let new_fd = self.fds.insert(FdEntry::new(conn))?;
        mem.write_u32(out, new_fd)?;
        Ok(())
    }

    pub fn sock_recv(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        iovs: u32,
        iovs_len: u32,
        ri_flags: u32,
        out_len: u32,
        out_flags: u32,
    ) -> SysResult {
        let node = self.socket(fd, rights::FD_READ)?;
        let peek = ri_flags as u16 & RIFLAGS_RECV_PEEK != 0;
        let n = match mem.first_iovec(iovs, iovs_len)? {
            Some((ptr, len)) => {
                let buf = mem.slice_mut(ptr, len)?;
                self.blocking(&*node, false, || node.sock_recv(buf, peek))?
            }
            None => 0,
        };
        mem.write_u32(out_len, n as u32)?;
        mem.write_u16(out_flags, 0)?;
        Ok(())
    }

    pub fn sock_send(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        iovs: u32,
        iovs_len: u32,
        _si_flags: u32,
        out_len: u32,
    ) -> SysResult {
        let node = self.socket(fd, rights::FD_WRITE)?;
        let mut total = 0u32;
        for (ptr, len) in mem.iovecs(iovs, iovs_len)? {
            let buf = mem.slice(ptr, len)?;
            let n = self.blocking(&*node, true, || node.sock_send(buf))?;
            total = total.saturating_add(n as u32);
            if n < len as usize {
                break;
            }
        }
        mem.write_u32(out_len, total)?;
        Ok(())
    }

    pub fn sock_shutdown(&mut self, _mem: &mut GuestMemory, fd: u32, how: u32) -> SysResult {
        let node = self.socket(fd, rights::SOCK_SHUTDOWN)?;
        node.sock_shutdown(how as u8)?;
        Ok(())
    }
}
