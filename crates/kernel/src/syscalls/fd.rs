//! `fd_*`: operations on open descriptors.

use crate::abi::{filetype, fstflags, rights, whence, Dirent, Errno, GuestMemory, PREOPENTYPE_DIR};
use crate::cage::{Cage, SysError, SysResult};
use crate::vfs::{Node, TimeSpec};
use std::io::{IoSlice, SeekFrom};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The most buffers Linux takes in one `writev`; a longer iovec array is
/// a short write, which POSIX allows.
const IOV_MAX: u32 = 1024;

/// Iovecs a write gathers on the stack before it allocates.
const INLINE_IOVECS: usize = 8;

/// Turns `fst_flags` and the two times into what to set.
pub(super) fn time_specs(
    atim: u64,
    mtim: u64,
    flags: u16,
) -> Result<(Option<TimeSpec>, Option<TimeSpec>), Errno> {
    let pick = |value: u64, set: u16, now: u16| -> Result<Option<TimeSpec>, Errno> {
        match (flags & set != 0, flags & now != 0) {
            (true, true) => Err(Errno::INVAL),
            (true, false) => Ok(Some(TimeSpec::At(UNIX_EPOCH + Duration::from_nanos(value)))),
            (false, true) => Ok(Some(TimeSpec::Now)),
            (false, false) => Ok(None),
        }
    };
    Ok((
        pick(atim, fstflags::ATIM, fstflags::ATIM_NOW)?,
        pick(mtim, fstflags::MTIM, fstflags::MTIM_NOW)?,
    ))
}

impl Cage {
    /// The node behind `fd`, if the fd holds `needed` rights; a missing
    /// read or write right is `EBADF`, as POSIX reports it.
    fn node(&self, fd: u32, needed: u64) -> Result<Arc<dyn Node>, Errno> {
        let entry = self.fds.get(fd)?;
        if entry.rights_base & needed != needed {
            let seekable = matches!(
                entry.node.filetype(),
                filetype::REGULAR_FILE | filetype::DIRECTORY
            );
            return Err(if needed & (rights::FD_READ | rights::FD_WRITE) != 0 {
                Errno::BADF
            } else if needed & (rights::FD_SEEK | rights::FD_TELL) != 0 && !seekable {
                Errno::SPIPE
            } else {
                crate::note::deny(Errno::NOTCAPABLE, "fd lacks the right")
            });
        }
        Ok(entry.node)
    }

    pub fn fd_read(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        iovs: u32,
        n: u32,
        out: u32,
    ) -> SysResult {
        if self.fds.get(fd)?.node.as_dir().is_some() {
            return Err(Errno::ISDIR.into());
        }
        let node = self.node(fd, rights::FD_READ)?;
        check_iovecs(mem, iovs, n, out)?;
        let total = self.read_into(mem, &*node, iovs, n, None)?;
        mem.write_u32(out, total)?;
        Ok(())
    }

    pub fn fd_pread(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        iovs: u32,
        n: u32,
        offset: u64,
        out: u32,
    ) -> SysResult {
        let node = self.node(fd, rights::FD_READ | rights::FD_SEEK)?;
        check_iovecs(mem, iovs, n, out)?;
        let total = self.read_into(mem, &*node, iovs, n, Some(offset))?;
        mem.write_u32(out, total)?;
        Ok(())
    }

    pub fn fd_write(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        iovs: u32,
        n: u32,
        out: u32,
    ) -> SysResult {
        let node = self.node(fd, rights::FD_WRITE)?;
        check_iovecs(mem, iovs, n, out)?;
        let total = self.write_from(mem, &*node, iovs, n, None)?;
        mem.write_u32(out, total)?;
        Ok(())
    }

    pub fn fd_pwrite(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        iovs: u32,
        n: u32,
        offset: u64,
        out: u32,
    ) -> SysResult {
        let node = self.node(fd, rights::FD_WRITE | rights::FD_SEEK)?;
        // On an append-mode description this appends, as on Linux (POSIX
        // would write at the offset; the WASI suite accepts either).
        check_iovecs(mem, iovs, n, out)?;
        let total = self.write_from(mem, &*node, iovs, n, Some(offset))?;
        mem.write_u32(out, total)?;
        Ok(())
    }

    pub fn fd_seek(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        offset: u64,
        how: u32,
        out: u32,
    ) -> SysResult {
        let offset = offset as i64;
        let pos = match how as u8 {
            whence::SET => SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno::INVAL)?),
            whence::CUR => SeekFrom::Current(offset),
            whence::END => SeekFrom::End(offset),
            _ => return Err(Errno::INVAL.into()),
        };
        let needed = if matches!(pos, SeekFrom::Current(0)) {
            rights::FD_TELL
        } else {
            rights::FD_SEEK
        };
        let node = self.node(fd, needed)?;
        let new = node.seek(pos)?;
        mem.write_u64(out, new)?;
        Ok(())
    }

    pub fn fd_tell(&mut self, mem: &mut GuestMemory, fd: u32, out: u32) -> SysResult {
        let node = self.node(fd, rights::FD_TELL)?;
        let at = node.seek(SeekFrom::Current(0))?;
        mem.write_u64(out, at)?;
        Ok(())
    }

    pub fn fd_close(&mut self, _mem: &mut GuestMemory, fd: u32) -> SysResult {
        self.fds.remove(fd)?;
        Ok(())
    }

    pub fn fd_renumber(&mut self, _mem: &mut GuestMemory, fd: u32, to: u32) -> SysResult {
        self.fds.renumber(fd, to)?;
        Ok(())
    }

    pub fn fd_fdstat_get(&mut self, mem: &mut GuestMemory, fd: u32, out: u32) -> SysResult {
        let entry = self.fds.get(fd)?;
        let mut buf = [0u8; 24];
        buf[0] = entry.node.filetype();
        buf[2..4].copy_from_slice(&entry.node.fdflags().to_le_bytes());
        buf[8..16].copy_from_slice(&entry.rights_base.to_le_bytes());
        buf[16..24].copy_from_slice(&entry.rights_inheriting.to_le_bytes());
        mem.write_bytes(out, &buf)?;
        Ok(())
    }

    pub fn fd_fdstat_set_flags(
        &mut self,
        _mem: &mut GuestMemory,
        fd: u32,
        flags: u32,
    ) -> SysResult {
        let flags = u16::try_from(flags).map_err(|_| Errno::INVAL)?;
        let node = self.node(fd, rights::FD_FDSTAT_SET_FLAGS)?;
        node.set_fdflags(flags)?;
        Ok(())
    }

    pub fn fd_fdstat_set_rights(
        &mut self,
        _mem: &mut GuestMemory,
        fd: u32,
        base: u64,
        inheriting: u64,
    ) -> SysResult {
        self.fds.update(fd, |entry| {
            // Rights only ever shrink.
            if base & !entry.rights_base != 0 || inheriting & !entry.rights_inheriting != 0 {
                return Err(crate::note::deny(
                    Errno::NOTCAPABLE,
                    "rights can only shrink",
                ));
            }
            entry.rights_base = base;
            entry.rights_inheriting = inheriting;
            Ok(())
        })?;
        Ok(())
    }

    pub fn fd_filestat_get(&mut self, mem: &mut GuestMemory, fd: u32, out: u32) -> SysResult {
        let node = self.node(fd, 0)?;
        mem.write_bytes(out, &node.stat()?.encode())?;
        Ok(())
    }

    pub fn fd_filestat_set_size(
        &mut self,
        _mem: &mut GuestMemory,
        fd: u32,
        size: u64,
    ) -> SysResult {
        // The node decides: a read-only mount says EROFS, a descriptor not
        // open for writing EINVAL, as Linux's ftruncate.
        let node = self.node(fd, 0)?;
        node.set_size(size)?;
        Ok(())
    }

    pub fn fd_filestat_set_times(
        &mut self,
        _mem: &mut GuestMemory,
        fd: u32,
        atim: u64,
        mtim: u64,
        flags: u32,
    ) -> SysResult {
        let node = self.node(fd, rights::FD_FILESTAT_SET_TIMES)?;
        let (a, m) = time_specs(atim, mtim, flags as u16)?;
        node.set_times(a, m)?;
        Ok(())
    }

    pub fn fd_advise(
        &mut self,
        _mem: &mut GuestMemory,
        fd: u32,
        offset: u64,
        len: u64,
        advice: u32,
    ) -> SysResult {
        let node = self.node(fd, rights::FD_ADVISE)?;
        if node.filetype() != filetype::REGULAR_FILE {
            return Err(Errno::SPIPE.into());
        }
        node.advise(offset, len, advice as u8)?;
        Ok(())
    }

    pub fn fd_allocate(
        &mut self,
        _mem: &mut GuestMemory,
        fd: u32,
        offset: u64,
        len: u64,
    ) -> SysResult {
        let node = self.node(fd, rights::FD_ALLOCATE)?;
        if len == 0 {
            return Err(Errno::INVAL.into());
        }
        node.allocate(offset, len)?;
        Ok(())
    }

    pub fn fd_sync(&mut self, _mem: &mut GuestMemory, fd: u32) -> SysResult {
        self.node(fd, 0)?.sync()?;
        Ok(())
    }

    pub fn fd_datasync(&mut self, _mem: &mut GuestMemory, fd: u32) -> SysResult {
        self.node(fd, 0)?.datasync()?;
        Ok(())
    }

    pub fn fd_prestat_get(&mut self, mem: &mut GuestMemory, fd: u32, out: u32) -> SysResult {
        let entry = self.fds.get(fd)?;
        let name = entry.preopen.as_ref().ok_or(Errno::BADF)?;
        // One 8-byte record (tag, padding, name length), checked as a whole.
        let mut prestat = [0u8; 8];
        prestat[0] = PREOPENTYPE_DIR;
        prestat[4..].copy_from_slice(&(name.len() as u32).to_le_bytes());
        mem.write_bytes(out, &prestat)?;
        Ok(())
    }

    pub fn fd_prestat_dir_name(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
    ) -> SysResult {
        let entry = self.fds.get(fd)?;
        let name = entry.preopen.as_ref().ok_or(Errno::BADF)?;
        if (len as usize) < name.len() {
            return Err(Errno::NAMETOOLONG.into());
        }
        mem.write_bytes(path, name.as_bytes())?;
        Ok(())
    }

    pub fn fd_readdir(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        buf: u32,
        buf_len: u32,
        cookie: u64,
        out: u32,
    ) -> SysResult {
        let entry = self.fds.get(fd)?;
        if entry.node.as_dir().is_none() {
            return Err(Errno::NOTDIR.into());
        }
        entry.require(rights::FD_READDIR)?;
        let listing = match (&entry.listing, cookie) {
            (Some(listing), c) if c != 0 => listing.clone(),
            _ => {
                // Read outside the table's lock, then kept for the next
                // pages (unless the fd was closed or replaced meanwhile).
                let fresh = Arc::new(entry.node.readdir()?);
                let _ = self.fds.update(fd, |e| {
                    if Arc::ptr_eq(&e.node, &entry.node) {
                        e.listing = Some(fresh.clone());
                    }
                    Ok(())
                });
                fresh
            }
        };
        let used = write_dirents(mem, &listing, cookie, buf, buf_len)?;
        mem.write_u32(out, used)?;
        Ok(())
    }
}

/// Fills `buf` with entries from index `cookie` on; the last one may be
/// cut short, which tells the guest to call again with a larger buffer.
fn write_dirents(
    mem: &mut GuestMemory,
    listing: &[Dirent],
    cookie: u64,
    buf: u32,
    buf_len: u32,
) -> Result<u32, Errno> {
    let out = mem.slice_mut(buf, buf_len)?;
    let mut used = 0usize;
    let start = usize::try_from(cookie).unwrap_or(usize::MAX);
    for (i, entry) in listing.iter().enumerate().skip(start) {
        let header = entry.header(i as u64 + 1);
        for chunk in [&header[..], entry.name.as_bytes()] {
            let n = chunk.len().min(out.len() - used);
            out[used..used + n].copy_from_slice(&chunk[..n]);
            used += n;
        }
        if used == out.len() {
            break;
        }
    }
    Ok(used as u32)
}

/// Checks a whole iovec array and an output pointer before anything is
/// transferred, so a call that fails with `EFAULT` has no side effect.
fn check_iovecs(mem: &GuestMemory, iovs: u32, count: u32, out: u32) -> Result<(), Errno> {
    mem.slice(out, 4)?;
    mem.slice(iovs, count.checked_mul(8).ok_or(Errno::FAULT)?)?;
    for i in 0..count {
        mem.iovec(iovs, i)?;
    }
    Ok(())
}

impl Cage {
    /// Retries `op` while a kernel-blocking node says `EAGAIN` and the guest
    /// did not ask for `NONBLOCK`, waiting for readiness in between.
    pub(super) fn blocking<T>(
        &self,
        node: &dyn Node,
        write: bool,
        mut op: impl FnMut() -> Result<T, Errno>,
    ) -> SysResult<T> {
        loop {
            match op() {
                Err(Errno::AGAIN)
                    if node.blocks_in_kernel()
                        && node.fdflags() & crate::abi::fdflags::NONBLOCK == 0 =>
                {
                    if let crate::vfs::Readiness::Os(fd) = node.readiness() {
                        self.wait_fd(fd, write)?;
                    }
                }
                Err(Errno::PIPE) => {
                    // Writing to a pipe nobody reads: SIGPIPE, as on Linux.
                    self.control.raise(crate::abi::signal::linux::PIPE);
                    return Err(Errno::PIPE.into());
                }
                other => return Ok(other?),
            }
        }
    }

    /// Reads into the iovecs in order. A regular file fills them all; a
    /// stream only the first non-empty one, since a second read could block
    /// after data already arrived.
    fn read_into(
        &self,
        mem: &mut GuestMemory,
        node: &dyn Node,
        iovs: u32,
        count: u32,
        mut offset: Option<u64>,
    ) -> SysResult<u32> {
        let streaming = node.filetype() != filetype::REGULAR_FILE;
        let mut total: u32 = 0;
        for i in 0..count {
            let (ptr, len) = mem.iovec(iovs, i)?;
            if len == 0 {
                continue;
            }
            let buf = mem.slice_mut(ptr, len)?;
            let n = match offset {
                Some(at) => node.pread(buf, at)?,
                None => self.blocking(node, false, || node.read(buf))?,
            };
            total = total.saturating_add(n as u32);
            if let Some(at) = offset.as_mut() {
                *at = at.saturating_add(n as u64);
            }
            if n < len as usize || streaming {
                break;
            }
        }
        Ok(total)
    }

    /// Writes the iovecs as one write ([`Node::write_vectored`]), so that
    /// another writer's data never lands between them. A blocking stream
    /// takes all of it, as POSIX `write` does (the rest in further writes
    /// if the first is short); anything else returns after one write.
    fn write_from(
        &self,
        mem: &mut GuestMemory,
        node: &dyn Node,
        iovs: u32,
        count: u32,
        offset: Option<u64>,
    ) -> SysResult<u32> {
        // Most writes have a buffer or two: those need no allocation.
        let mut inline = [IoSlice::new(&[]); INLINE_IOVECS];
        let mut spilled = Vec::new();
        let mut used = 0usize;
        let mut total = 0u32;
        for i in 0..count.min(IOV_MAX) {
            let (ptr, len) = mem.iovec(iovs, i)?;
            // A write reports its size in a u32: take no more than fits.
            let len = len.min(u32::MAX - total);
            if len == 0 {
                continue;
            }
            let buf = IoSlice::new(mem.slice(ptr, len)?);
            match inline.get_mut(used) {
                Some(slot) => *slot = buf,
                None => {
                    if spilled.is_empty() {
                        spilled.extend_from_slice(&inline);
                    }
                    spilled.push(buf);
                }
            }
            used += 1;
            total += len;
        }
        let bufs = if spilled.is_empty() {
            &mut inline[..used]
        } else {
            &mut spilled[..]
        };
        let whole = node.blocks_in_kernel() && node.fdflags() & crate::abi::fdflags::NONBLOCK == 0;
        let mut rest = bufs;
        let mut written = 0u32;
        while !rest.is_empty() {
            let n = match offset {
                Some(at) => node
                    .pwrite_vectored(
                        rest,
                        at.checked_add(u64::from(written)).ok_or(Errno::INVAL)?,
                    )
                    .map_err(SysError::from),
                None => self.blocking(node, true, || node.write_vectored(rest)),
            };
            let n = match n {
                Ok(n) => n,
                // Report what was written before a later write failed.
                Err(_) if written > 0 => break,
                Err(e) => return Err(e),
            };
            written += n as u32;
            IoSlice::advance_slices(&mut rest, n);
            if !whole || n == 0 {
                break;
            }
        }
        Ok(written)
    }
}
