//! Host directories, reached only through cap-std: every lookup stays under
//! the mount's root (no escape by `..`, absolute symlinks or symlink loops).

use super::{dot_entries, nanos, read_only, Directory, Node, OpenRequest, Readiness, TimeSpec};
use crate::abi::{fdflags, filetype, rights, Dirent, Errno, Filestat, Result};
use crate::hostfds::HostFds;
use crate::note;
use cap_fs_ext::{
    DirExt, FollowSymlinks, MetadataExt, OpenOptionsFollowExt, OpenOptionsMaybeDirExt,
    OpenOptionsSyncExt,
};
use cap_std::fs::{Dir, Metadata, OpenOptions, OpenOptionsExt};
use std::any::Any;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

/// Maps a cap-std error; one without an OS code is cap-std's own refusal
/// of a path that would leave the mount.
fn host_err(e: io::Error) -> Errno {
    if e.raw_os_error().is_none() && e.kind() == io::ErrorKind::PermissionDenied {
        return note::deny(Errno::NOTCAPABLE, "path escapes its mount");
    }
    Errno::from(e)
}

fn spec(t: Option<TimeSpec>) -> Option<cap_fs_ext::SystemTimeSpec> {
    t.map(|t| match t {
        TimeSpec::Now => cap_fs_ext::SystemTimeSpec::SymbolicNow,
        TimeSpec::At(at) => {
            cap_fs_ext::SystemTimeSpec::Absolute(cap_std::time::SystemTime::from_std(at))
        }
    })
}

fn kind_of(ft: cap_std::fs::FileType) -> u8 {
    use cap_fs_ext::FileTypeExt;
    if ft.is_dir() {
        filetype::DIRECTORY
    } else if ft.is_file() {
        filetype::REGULAR_FILE
    } else if ft.is_symlink() {
        filetype::SYMBOLIC_LINK
    } else if ft.is_block_device() {
        filetype::BLOCK_DEVICE
    } else if ft.is_char_device() {
        filetype::CHARACTER_DEVICE
    } else if ft.is_socket() {
        filetype::SOCKET_STREAM
    } else {
        filetype::UNKNOWN
    }
}

fn filestat_of(meta: &Metadata) -> Filestat {
    let time =
        |t: io::Result<cap_std::time::SystemTime>| t.map(|t| nanos(t.into_std())).unwrap_or(0);
    let mtim = time(meta.modified());
    Filestat {
        dev: meta.dev(),
        ino: meta.ino(),
        filetype: kind_of(meta.file_type()),
        nlink: meta.nlink(),
        size: meta.len(),
        atim: time(meta.accessed()),
        mtim,
        // cap-std's metadata carries no change time; mtime is the closest.
        ctim: mtim,
    }
}

/// An open host directory. Its own fd is the root for lookups beneath it.
pub struct HostDir {
    dir: Dir,
    read_only: bool,
    _fds: HostFds,
}

impl HostDir {
    pub fn open_root(path: &std::path::Path, read_only: bool) -> io::Result<HostDir> {
        let fds = HostFds::take(1).map_err(|_| io::Error::from_raw_os_error(libc::ENFILE))?;
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(HostDir::new(dir, read_only, fds))
    }

    fn new(dir: Dir, read_only: bool, fds: HostFds) -> HostDir {
        HostDir {
            dir,
            read_only,
            _fds: fds,
        }
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            Err(read_only())
        } else {
            Ok(())
        }
    }

    fn is_fifo(&self, path: &str, follow: FollowSymlinks) -> bool {
        use cap_fs_ext::FileTypeExt;
        let meta = match follow {
            FollowSymlinks::Yes => self.dir.metadata(path),
            FollowSymlinks::No => self.dir.symlink_metadata(path),
        };
        meta.is_ok_and(|m| m.file_type().is_fifo())
    }

    fn same_kind<'a>(&self, other: &'a dyn Directory) -> Result<&'a HostDir> {
        let other = other
            .as_any()
            .downcast_ref::<HostDir>()
            .ok_or(Errno::XDEV)?;
        if other.read_only {
            return Err(read_only());
        }
        Ok(other)
    }
}

impl Node for HostDir {
    fn filetype(&self) -> u8 {
        filetype::DIRECTORY
    }
    fn base_rights(&self) -> u64 {
        rights::DIRECTORY
    }
    fn stat(&self) -> Result<Filestat> {
        self.dir
            .dir_metadata()
            .map(|m| filestat_of(&m))
            .map_err(host_err)
    }
    fn set_times(&self, atim: Option<TimeSpec>, mtim: Option<TimeSpec>) -> Result<()> {
        self.writable()?;
        self.dir
            .set_times(".", spec(atim), spec(mtim))
            .map_err(host_err)
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    fn readdir(&self) -> Result<Vec<Dirent>> {
        let ino = self.dir.dir_metadata().map(|m| m.ino()).unwrap_or(0);
        let mut entries = dot_entries(ino);
        for entry in self.dir.entries().map_err(host_err)? {
            let entry = entry.map_err(host_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().map(kind_of).unwrap_or(filetype::UNKNOWN);
            let ino = cap_fs_ext::DirEntryExt::full_metadata(&entry)
                .map(|m| m.ino())
                .unwrap_or(0);
            entries.push(Dirent {
                ino,
                filetype: kind,
                name,
            });
        }
        Ok(entries)
    }
    fn as_dir(&self) -> Option<&dyn Directory> {
        Some(self)
    }
}

impl Directory for HostDir {
    fn open(&self, path: &str, req: &OpenRequest) -> Result<Arc<dyn Node>> {
        let fds = HostFds::take(1)?;
        let wants_write = req.write || req.create || req.truncate || req.append;
        if wants_write {
            self.writable()?;
        }
        let follow = if req.follow {
            FollowSymlinks::Yes
        } else {
            FollowSymlinks::No
        };
        if req.directory {
            if req.create || req.exclusive || req.truncate {
                return Err(Errno::INVAL);
            }
            // A directory is never open for writing (Linux: EISDIR).
            if req.write || req.append {
                return Err(Errno::ISDIR);
            }
            let dir = match follow {
                FollowSymlinks::Yes => self.dir.open_dir(path),
                FollowSymlinks::No => self.dir.open_dir_nofollow(path),
            }
            .map_err(host_err)?;
            return Ok(Arc::new(HostDir::new(dir, self.read_only, fds)));
        }
        // As wasmtime: the host open reads unless it only writes, and
        // writes whenever it creates or truncates, whatever rights were
        // asked for (an fd never gets more rights than it asked for).
        let mut opts = OpenOptions::new();
        opts.read(req.read || !(req.write || req.append))
            .write(req.write || ((req.create || req.truncate) && !req.append))
            .append(req.append)
            .follow(follow)
            .maybe_dir(!wants_write);
        if req.truncate && req.append {
            // Linux takes O_TRUNC with O_APPEND; cap-std's own check does not.
            opts.custom_flags(rustix::fs::OFlags::TRUNC.bits() as i32);
        } else {
            opts.truncate(req.truncate);
        }
        // Never block the host thread in open(2): a FIFO without its other
        // end would hold it beyond any timeout or kill. The guest's own
        // blocking open waits in the kernel instead (see `path_open`).
        opts.sync(req.sync & fdflags::SYNC != 0)
            .dsync(req.sync & fdflags::DSYNC != 0)
            .rsync(req.sync & fdflags::RSYNC != 0)
            .nonblock(true);
        if req.exclusive && req.create {
            opts.create_new(true);
        } else if req.create {
            opts.create(true);
        }
        let file = match self.dir.open_with(path, &opts) {
            Ok(file) => file,
            // A FIFO opened for writing with no reader yet: a blocking
            // open would wait for one.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && !req.nonblock => {
                return Err(if self.is_fifo(path, follow) {
                    Errno::AGAIN
                } else {
                    Errno::NXIO
                });
            }
            Err(e) => return Err(host_err(e)),
        };
        let meta = file.metadata().map_err(host_err)?;
        if meta.is_dir() {
            let dir = Dir::from_std_file(file.into_std());
            return Ok(Arc::new(HostDir::new(dir, self.read_only, fds)));
        }
        let mut flags = req.sync;
        if req.append {
            flags |= fdflags::APPEND;
        }
        let fifo = {
            use cap_fs_ext::FileTypeExt;
            meta.file_type().is_fifo()
        };
        let node = HostFile {
            file: file.into_std(),
            flags: Mutex::new(flags),
            read_only: self.read_only,
            writable: wants_write,
            fifo,
            _fds: fds,
        };
        // The host descriptor keeps O_NONBLOCK only where the kernel does
        // the blocking (FIFOs) or the guest asked for it.
        if req.nonblock || !meta.is_file() {
            node.set_fdflags(flags | if req.nonblock { fdflags::NONBLOCK } else { 0 })?;
        }
        Ok(Arc::new(node))
    }

    fn create_dir(&self, path: &str) -> Result<()> {
        self.writable()?;
        self.dir.create_dir(path).map_err(host_err)
    }

    fn remove_dir(&self, path: &str) -> Result<()> {
        self.writable()?;
        self.dir.remove_dir(path).map_err(host_err)
    }

    fn unlink(&self, path: &str) -> Result<()> {
        self.writable()?;
        // POSIX unlink of a directory is EISDIR on Linux; report it so
        // rather than the EPERM some hosts give.
        if let Ok(meta) = self.dir.symlink_metadata(path) {
            if meta.is_dir() {
                return Err(Errno::ISDIR);
            }
        }
        self.dir.remove_file_or_symlink(path).map_err(host_err)
    }

    fn rename(&self, from: &str, to_dir: &dyn Directory, to: &str) -> Result<()> {
        self.writable()?;
        let to_dir = self.same_kind(to_dir)?;
        self.dir.rename(from, &to_dir.dir, to).map_err(host_err)
    }

    fn link(&self, from: &str, follow: bool, to_dir: &dyn Directory, to: &str) -> Result<()> {
        self.writable()?;
        let to_dir = self.same_kind(to_dir)?;
        if follow {
            // linkat(AT_SYMLINK_FOLLOW) has no cap-std form; a followed
            // link is rare and refusing it (EINVAL, as wasmtime does) is
            // safer than resolving by hand.
            return Err(Errno::INVAL);
        }
        self.dir.hard_link(from, &to_dir.dir, to).map_err(host_err)
    }

    fn symlink(&self, target: &str, path: &str) -> Result<()> {
        self.writable()?;
        // An absolute target could never be followed inside the mount.
        if target.starts_with('/') {
            return Err(note::deny(Errno::NOTCAPABLE, "absolute symlink target"));
        }
        self.dir.symlink(target, path).map_err(host_err)
    }

    fn readlink(&self, path: &str) -> Result<String> {
        let target = self.dir.read_link_contents(path).map_err(host_err)?;
        target
            .into_os_string()
            .into_string()
            .map_err(|_| Errno::ILSEQ)
    }

    fn stat_at(&self, path: &str, follow: bool) -> Result<Filestat> {
        let meta = if follow {
            self.dir.metadata(path)
        } else {
            self.dir.symlink_metadata(path)
        };
        meta.map(|m| filestat_of(&m)).map_err(host_err)
    }

    fn set_times_at(
        &self,
        path: &str,
        follow: bool,
        atim: Option<TimeSpec>,
        mtim: Option<TimeSpec>,
    ) -> Result<()> {
        self.writable()?;
        if follow {
            self.dir.set_times(path, spec(atim), spec(mtim))
        } else {
            self.dir.set_symlink_times(path, spec(atim), spec(mtim))
        }
        .map_err(host_err)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

const SYNC_FLAGS: u16 = fdflags::SYNC | fdflags::DSYNC | fdflags::RSYNC;

/// An open host file. The OS descriptor holds the offset, so fds and cages
/// sharing this description share it too, as POSIX has it.
pub struct HostFile {
    file: std::fs::File,
    flags: Mutex<u16>,
    read_only: bool,
    /// Opened for writing: `ftruncate` needs it (EINVAL otherwise).
    writable: bool,
    /// A FIFO: a stream whose host descriptor stays non-blocking, so that
    /// the kernel does the blocking (like warden's own pipes).
    fifo: bool,
    _fds: HostFds,
}

impl HostFile {
    fn io<T>(r: io::Result<T>) -> Result<T> {
        r.map_err(Errno::from)
    }
}

impl Node for HostFile {
    fn filetype(&self) -> u8 {
        if self.fifo {
            filetype::UNKNOWN
        } else {
            filetype::REGULAR_FILE
        }
    }
    fn base_rights(&self) -> u64 {
        if self.fifo {
            rights::STREAM
        } else {
            rights::REGULAR_FILE
        }
    }
    fn blocks_in_kernel(&self) -> bool {
        self.fifo
    }
    fn readiness(&self) -> Readiness {
        if self.fifo {
            Readiness::Os(self.file.as_raw_fd())
        } else {
            Readiness::Always
        }
    }
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        Self::io((&self.file).read(buf))
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        Self::io((&self.file).write(buf))
    }
    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        Self::io(self.file.read_at(buf, offset))
    }
    fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize> {
        Self::io(self.file.write_at(buf, offset))
    }
    fn write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> Result<usize> {
        rustix::io::writev(&self.file, bufs).map_err(Errno::from)
    }
    fn pwrite_vectored(&self, bufs: &[io::IoSlice<'_>], offset: u64) -> Result<usize> {
        rustix::io::pwritev(&self.file, bufs, offset).map_err(Errno::from)
    }
    fn pwrite_end(&self, buf: &[u8]) -> Result<usize> {
        // pwritev2(RWF_APPEND): at the end, atomically, whatever the
        // description's offset and O_APPEND flag.
        let iov = [io::IoSlice::new(buf)];
        match rustix::io::pwritev2(&self.file, &iov, 0, rustix::io::ReadWriteFlags::APPEND) {
            Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::NOTSUP) => {
                let end = self.file.metadata().map_err(Errno::from)?.len();
                self.pwrite(buf, end)
            }
            other => other.map_err(Errno::from),
        }
    }
    fn seek(&self, pos: SeekFrom) -> Result<u64> {
        Self::io((&self.file).seek(pos))
    }
    fn stat(&self) -> Result<Filestat> {
        use std::os::unix::fs::MetadataExt as Std;
        let m = self.file.metadata().map_err(Errno::from)?;
        let ts = |s: i64, ns: i64| (s.max(0) as u64) * 1_000_000_000 + ns.max(0) as u64;
        Ok(Filestat {
            dev: Std::dev(&m),
            ino: Std::ino(&m),
            filetype: filetype::REGULAR_FILE,
            nlink: Std::nlink(&m),
            size: m.len(),
            atim: ts(Std::atime(&m), Std::atime_nsec(&m)),
            mtim: ts(Std::mtime(&m), Std::mtime_nsec(&m)),
            ctim: ts(Std::ctime(&m), Std::ctime_nsec(&m)),
        })
    }
    fn set_size(&self, size: u64) -> Result<()> {
        if !self.writable {
            return Err(Errno::INVAL);
        }
        if self.read_only {
            return Err(read_only());
        }
        Self::io(self.file.set_len(size))
    }
    fn set_times(&self, atim: Option<TimeSpec>, mtim: Option<TimeSpec>) -> Result<()> {
        if self.read_only {
            return Err(read_only());
        }
        let ts = |t: Option<TimeSpec>| match t {
            None => rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_OMIT,
            },
            Some(TimeSpec::Now) => rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_NOW,
            },
            Some(TimeSpec::At(at)) => {
                let d = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                rustix::fs::Timespec {
                    tv_sec: d.as_secs() as i64,
                    tv_nsec: d.subsec_nanos() as _,
                }
            }
        };
        let times = rustix::fs::Timestamps {
            last_access: ts(atim),
            last_modification: ts(mtim),
        };
        rustix::fs::futimens(self.file.as_fd(), &times).map_err(Errno::from)
    }
    fn sync(&self) -> Result<()> {
        Self::io(self.file.sync_all())
    }
    fn datasync(&self) -> Result<()> {
        Self::io(self.file.sync_data())
    }
    fn advise(&self, offset: u64, len: u64, advice: u8) -> Result<()> {
        use rustix::fs::Advice;
        let advice = match advice {
            0 => Advice::Normal,
            1 => Advice::Sequential,
            2 => Advice::Random,
            3 => Advice::WillNeed,
            4 => Advice::DontNeed,
            5 => Advice::NoReuse,
            _ => return Err(Errno::INVAL),
        };
        let len = std::num::NonZeroU64::new(len);
        rustix::fs::fadvise(self.file.as_fd(), offset, len, advice).map_err(Errno::from)
    }
    fn allocate(&self, offset: u64, len: u64) -> Result<()> {
        if self.read_only {
            return Err(read_only());
        }
        rustix::fs::fallocate(
            self.file.as_fd(),
            rustix::fs::FallocateFlags::empty(),
            offset,
            len,
        )
        .map_err(Errno::from)
    }
    fn fdflags(&self) -> u16 {
        self.flags.lock().map(|f| *f).unwrap_or(0)
    }
    fn set_fdflags(&self, flags: u16) -> Result<()> {
        let mut oflags = rustix::fs::fcntl_getfl(self.file.as_fd()).map_err(Errno::from)?;
        oflags.set(rustix::fs::OFlags::APPEND, flags & fdflags::APPEND != 0);
        oflags.set(
            rustix::fs::OFlags::NONBLOCK,
            self.fifo || flags & fdflags::NONBLOCK != 0,
        );
        rustix::fs::fcntl_setfl(self.file.as_fd(), oflags).map_err(Errno::from)?;
        let mut f = self.flags.lock().map_err(|_| Errno::IO)?;
        // The sync flags stay as opened: Linux cannot change them later.
        *f = (*f & SYNC_FLAGS) | (flags & (fdflags::APPEND | fdflags::NONBLOCK));
        Ok(())
    }
}
