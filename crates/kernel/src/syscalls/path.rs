//! `path_*`: operations by path, relative to an open directory. Every one
//! needs the `fs` subsystem and resolves inside the directory's mount.

use super::fd::time_specs;
use crate::abi::{fdflags, lookupflags, oflags, rights, Errno, GuestMemory};
use crate::cage::{Cage, SysResult};
use crate::fdtable::FdEntry;
use crate::vfs::{check_path, Node, OpenRequest, Readiness};
use std::sync::Arc;
use warden_policy::Subsystem;

/// How often a blocking open of a FIFO looks for a reader.
const FIFO_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

impl Cage {
    /// The directory node behind `fd`, once the policy and its rights allow.
    fn dir_node(&self, fd: u32, needed: u64) -> Result<Arc<dyn Node>, Errno> {
        self.check(Subsystem::Fs)?;
        let entry = self.fds.get(fd)?;
        if entry.node.as_dir().is_none() {
            return Err(Errno::NOTDIR);
        }
        entry.require(needed)?;
        Ok(entry.node.clone())
    }

    fn path<'m>(mem: &'m GuestMemory, ptr: u32, len: u32) -> Result<&'m str, Errno> {
        let path = mem.str(ptr, len)?;
        check_path(path)?;
        Ok(path)
    }

    pub fn path_open(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        dirflags: u32,
        path: u32,
        path_len: u32,
        oflags: u32,
        rights_base: u64,
        rights_inheriting: u64,
        fdflags: u32,
        opened: u32,
    ) -> SysResult {
        let (o, f) = (oflags as u16, fdflags as u16);
        // Creating and truncating need rights of their own on the directory.
        let mut needed = rights::PATH_OPEN;
        if o & oflags::CREAT != 0 {
            needed |= rights::PATH_CREATE_FILE;
        }
        if o & oflags::TRUNC != 0 {
            needed |= rights::PATH_FILESTAT_SET_SIZE;
        }
        let node = self.dir_node(fd, needed)?;
        let path = Self::path(mem, path, path_len)?;
        let write_rights = rights::FD_WRITE | rights::FD_ALLOCATE | rights::FD_FILESTAT_SET_SIZE;
        let req = OpenRequest {
            read: rights_base & (rights::FD_READ | rights::FD_READDIR) != 0,
            write: rights_base & write_rights != 0 || f & fdflags::APPEND != 0,
            create: o & oflags::CREAT != 0,
            exclusive: o & oflags::EXCL != 0,
            truncate: o & oflags::TRUNC != 0,
            directory: o & oflags::DIRECTORY != 0,
            append: f & fdflags::APPEND != 0,
            nonblock: f & fdflags::NONBLOCK != 0,
            follow: dirflags & lookupflags::SYMLINK_FOLLOW != 0,
            sync: f & (fdflags::SYNC | fdflags::DSYNC | fdflags::RSYNC),
        };
        let dir = node.as_dir().ok_or(Errno::NOTDIR)?;
        let opened_node = loop {
            match dir.open(path, &req) {
                // A FIFO with no reader yet: wait where a signal or a stop
                // can end the wait, as a blocking open(2) would.
                Err(Errno::AGAIN) if !req.nonblock => self.pause(FIFO_RETRY)?,
                other => break other?,
            }
        };
        // A FIFO opened for reading: a blocking open returns once there is
        // something to read or a writer came and went.
        if !req.nonblock && req.read && !req.write && opened_node.blocks_in_kernel() {
            if let Readiness::Os(raw) = opened_node.readiness() {
                self.wait_fd(raw, false)?;
            }
        }
        let inherit = self.fds.get(fd)?.rights_inheriting;
        let mut entry = FdEntry::new(opened_node);
        entry.rights_base &= rights_base & inherit;
        entry.rights_inheriting = rights_inheriting & inherit;
        let new_fd = self.fds.insert(entry)?;
        mem.write_u32(opened, new_fd)?;
        Ok(())
    }

    pub fn path_create_directory(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
    ) -> SysResult {
        let node = self.dir_node(fd, rights::PATH_CREATE_DIRECTORY)?;
        let path = Self::path(mem, path, len)?;
        node.as_dir().ok_or(Errno::NOTDIR)?.create_dir(path)?;
        Ok(())
    }

    pub fn path_remove_directory(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
    ) -> SysResult {
        let node = self.dir_node(fd, rights::PATH_REMOVE_DIRECTORY)?;
        let path = Self::path(mem, path, len)?;
        node.as_dir().ok_or(Errno::NOTDIR)?.remove_dir(path)?;
        Ok(())
    }

    pub fn path_unlink_file(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
    ) -> SysResult {
        let node = self.dir_node(fd, rights::PATH_UNLINK_FILE)?;
        let path = Self::path(mem, path, len)?;
        node.as_dir().ok_or(Errno::NOTDIR)?.unlink(path)?;
        Ok(())
    }

    pub fn path_filestat_get(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        flags: u32,
        path: u32,
        len: u32,
        out: u32,
    ) -> SysResult {
        let node = self.dir_node(fd, rights::PATH_FILESTAT_GET)?;
        let path = Self::path(mem, path, len)?;
        let follow = flags & lookupflags::SYMLINK_FOLLOW != 0;
        let stat = node.as_dir().ok_or(Errno::NOTDIR)?.stat_at(path, follow)?;
        mem.write_bytes(out, &stat.encode())?;
        Ok(())
    }

    pub fn path_filestat_set_times(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        flags: u32,
        path: u32,
        len: u32,
        atim: u64,
        mtim: u64,
        fst_flags: u32,
    ) -> SysResult {
        let node = self.dir_node(fd, rights::PATH_FILESTAT_SET_TIMES)?;
        let path = Self::path(mem, path, len)?;
        let (a, m) = time_specs(atim, mtim, fst_flags as u16)?;
        let follow = flags & lookupflags::SYMLINK_FOLLOW != 0;
        node.as_dir()
            .ok_or(Errno::NOTDIR)?
            .set_times_at(path, follow, a, m)?;
        Ok(())
    }

    pub fn path_link(
        &mut self,
        mem: &mut GuestMemory,
        old_fd: u32,
        old_flags: u32,
        old_path: u32,
        old_len: u32,
        new_fd: u32,
        new_path: u32,
        new_len: u32,
    ) -> SysResult {
        let from = self.dir_node(old_fd, rights::PATH_LINK_SOURCE)?;
        let to = self.dir_node(new_fd, rights::PATH_LINK_TARGET)?;
        let old = Self::path(mem, old_path, old_len)?;
        let new = Self::path(mem, new_path, new_len)?;
        let follow = old_flags & lookupflags::SYMLINK_FOLLOW != 0;
        let to_dir = to.as_dir().ok_or(Errno::NOTDIR)?;
        from.as_dir()
            .ok_or(Errno::NOTDIR)?
            .link(old, follow, to_dir, new)?;
        Ok(())
    }

    pub fn path_readlink(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
        buf: u32,
        buf_len: u32,
        out: u32,
    ) -> SysResult {
        let node = self.dir_node(fd, rights::PATH_READLINK)?;
        let path = Self::path(mem, path, len)?;
        let target = node.as_dir().ok_or(Errno::NOTDIR)?.readlink(path)?;
        let bytes = target.as_bytes();
        let n = bytes.len().min(buf_len as usize);
        mem.write_bytes(buf, &bytes[..n])?;
        mem.write_u32(out, n as u32)?;
        Ok(())
    }

    pub fn path_rename(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        old_path: u32,
        old_len: u32,
        new_fd: u32,
        new_path: u32,
        new_len: u32,
    ) -> SysResult {
        let from = self.dir_node(fd, rights::PATH_RENAME_SOURCE)?;
        let to = self.dir_node(new_fd, rights::PATH_RENAME_TARGET)?;
        let old = Self::path(mem, old_path, old_len)?;
        let new = Self::path(mem, new_path, new_len)?;
        let to_dir = to.as_dir().ok_or(Errno::NOTDIR)?;
        from.as_dir()
            .ok_or(Errno::NOTDIR)?
            .rename(old, to_dir, new)?;
        Ok(())
    }

    pub fn path_symlink(
        &mut self,
        mem: &mut GuestMemory,
        old_path: u32,
        old_len: u32,
        fd: u32,
        new_path: u32,
        new_len: u32,
    ) -> SysResult {
        let node = self.dir_node(fd, rights::PATH_SYMLINK)?;
        let target = mem.str(old_path, old_len)?;
        let link = Self::path(mem, new_path, new_len)?;
        node.as_dir().ok_or(Errno::NOTDIR)?.symlink(target, link)?;
        Ok(())
    }
}
