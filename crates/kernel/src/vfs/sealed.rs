//! Sealed mounts: a directory whose files are entries of one namespace of
//! the sealed store (`warden_seal::fs`). Nothing readable reaches the host's
//! disk; what the guest sees is an ordinary read-write directory without
//! symbolic or hard links.

use super::{nanos, Cursor, Directory, Node, OpenRequest, TimeSpec};
use crate::abi::{filetype, rights, Dirent, Errno, Filestat, Result};
use crate::note;
use std::any::Any;
use std::io::SeekFrom;
use std::sync::Arc;
use warden_seal::fs::{FileKind, FsError, Handle, Metadata, OpenFlags, SealedFs};

/// The device number sealed mounts report.
const SEALED_DEV: u64 = 0x7365_616c;

fn fs_err(e: FsError) -> Errno {
    match e {
        FsError::NotFound => Errno::NOENT,
        FsError::Exists => Errno::EXIST,
        FsError::NotDir => Errno::NOTDIR,
        FsError::IsDir => Errno::ISDIR,
        FsError::NotEmpty => Errno::NOTEMPTY,
        FsError::InvalidName(name) if name.len() > warden_seal::fs::MAX_NAME_LEN => {
            Errno::NAMETOOLONG
        }
        FsError::InvalidName(_) | FsError::Invalid(_) => Errno::INVAL,
        FsError::OutsideMount => note::deny(Errno::NOTCAPABLE, "path escapes its mount"),
        FsError::Integrity(_) => note::deny(Errno::IO, "sealed data failed its integrity check"),
        _ => Errno::IO,
    }
}

fn kind(k: FileKind) -> u8 {
    match k {
        FileKind::File => filetype::REGULAR_FILE,
        FileKind::Directory => filetype::DIRECTORY,
    }
}

fn filestat(m: &Metadata) -> Filestat {
    Filestat {
        dev: SEALED_DEV,
        ino: m.ino,
        filetype: kind(m.kind),
        nlink: m.nlink,
        size: m.size,
        atim: m.atime,
        mtim: m.mtime,
        ctim: m.ctime,
    }
}

fn time(t: Option<TimeSpec>) -> Option<u64> {
    t.map(|t| match t {
        TimeSpec::Now => nanos(std::time::SystemTime::now()),
        TimeSpec::At(at) => nanos(at),
    })
}

/// An open sealed directory. Paths are resolved from its inode, not from
/// the path it was opened by: it stays the same directory when it or an
/// ancestor is renamed, and operations through it fail with `ENOENT` once
/// it is removed, as on a POSIX filesystem.
pub struct SealedDir {
    handle: Handle,
}

impl SealedDir {
    pub fn root(fs: SealedFs) -> Result<SealedDir> {
        let handle = fs
            .open("", OpenFlags::existing().directory())
            .map_err(fs_err)?;
        Ok(SealedDir { handle })
    }

    fn same_fs<'a>(&self, other: &'a dyn Directory) -> Result<&'a SealedDir> {
        let other = other
            .as_any()
            .downcast_ref::<SealedDir>()
            .ok_or(Errno::XDEV)?;
        if other.handle.fs().namespace().name() != self.handle.fs().namespace().name() {
            return Err(Errno::XDEV);
        }
        Ok(other)
    }
}

impl Node for SealedDir {
    fn filetype(&self) -> u8 {
        filetype::DIRECTORY
    }
    fn base_rights(&self) -> u64 {
        rights::DIRECTORY
    }
    fn stat(&self) -> Result<Filestat> {
        self.handle.stat().map(|m| filestat(&m)).map_err(fs_err)
    }
    fn set_times(&self, atim: Option<TimeSpec>, mtim: Option<TimeSpec>) -> Result<()> {
        self.handle
            .set_times(time(atim), time(mtim))
            .map_err(fs_err)
    }
    fn sync(&self) -> Result<()> {
        self.handle.sync().map_err(fs_err)
    }
    fn readdir(&self) -> Result<Vec<Dirent>> {
        let me = self.handle.ino();
        // The mount root is its own `..` (the guest cannot climb above it).
        let parent = match self.handle.stat_at("..") {
            Ok(m) => m.ino,
            Err(FsError::OutsideMount) => me,
            Err(e) => return Err(fs_err(e)),
        };
        let mut out = vec![
            Dirent {
                ino: me,
                filetype: filetype::DIRECTORY,
                name: ".".into(),
            },
            Dirent {
                ino: parent,
                filetype: filetype::DIRECTORY,
                name: "..".into(),
            },
        ];
        for entry in self.handle.readdir().map_err(fs_err)? {
            out.push(Dirent {
                ino: entry.ino,
                filetype: kind(entry.kind),
                name: entry.name,
            });
        }
        Ok(out)
    }
    fn as_dir(&self) -> Option<&dyn Directory> {
        Some(self)
    }
}

impl Directory for SealedDir {
    fn open(&self, path: &str, req: &OpenRequest) -> Result<Arc<dyn Node>> {
        let flags = OpenFlags {
            create: req.create,
            exclusive: req.exclusive,
            truncate: req.truncate,
            directory: req.directory,
        };
        let handle = self.handle.open_at(path, flags).map_err(fs_err)?;
        match handle.kind() {
            FileKind::Directory => {
                if req.write || req.truncate || req.append {
                    return Err(Errno::ISDIR);
                }
                Ok(Arc::new(SealedDir { handle }))
            }
            FileKind::File => Ok(Arc::new(SealedFile {
                handle,
                offset: Cursor::default(),
                readable: req.read || !req.write,
                writable: req.write || req.append,
                append: req.append,
            })),
        }
    }
    fn create_dir(&self, path: &str) -> Result<()> {
        self.handle.mkdir_at(path).map_err(fs_err)
    }
    fn remove_dir(&self, path: &str) -> Result<()> {
        self.handle.rmdir_at(path).map_err(fs_err)
    }
    fn unlink(&self, path: &str) -> Result<()> {
        self.handle.unlink_at(path).map_err(fs_err)
    }
    fn rename(&self, from: &str, to_dir: &dyn Directory, to: &str) -> Result<()> {
        let to_dir = self.same_fs(to_dir)?;
        self.handle
            .rename_at(from, &to_dir.handle, to)
            .map_err(fs_err)
    }
    fn link(&self, from: &str, _follow: bool, _to_dir: &dyn Directory, _to: &str) -> Result<()> {
        self.handle.stat_at(from).map_err(fs_err)?;
        Err(note::deny(Errno::PERM, "sealed mounts have no hard links"))
    }
    fn symlink(&self, _target: &str, _path: &str) -> Result<()> {
        Err(note::deny(
            Errno::PERM,
            "sealed mounts have no symbolic links",
        ))
    }
    fn readlink(&self, path: &str) -> Result<String> {
        self.handle.stat_at(path).map_err(fs_err)?;
        Err(Errno::INVAL)
    }
    fn stat_at(&self, path: &str, _follow: bool) -> Result<Filestat> {
        self.handle
            .stat_at(path)
            .map(|m| filestat(&m))
            .map_err(fs_err)
    }
    fn set_times_at(
        &self,
        path: &str,
        _follow: bool,
        atim: Option<TimeSpec>,
        mtim: Option<TimeSpec>,
    ) -> Result<()> {
        self.handle
            .set_times_at(path, time(atim), time(mtim))
            .map_err(fs_err)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open sealed file, with its own offset.
pub struct SealedFile {
    handle: Handle,
    offset: Cursor,
    readable: bool,
    writable: bool,
    append: bool,
}

impl SealedFile {
    fn size(&self) -> Result<u64> {
        self.handle.stat().map(|m| m.size).map_err(fs_err)
    }
}

impl Node for SealedFile {
    fn filetype(&self) -> u8 {
        filetype::REGULAR_FILE
    }
    fn base_rights(&self) -> u64 {
        rights::REGULAR_FILE
    }
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.offset.read(buf, |b, at| self.pread(b, at))
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        if !self.append {
            return self.offset.write(buf, None, |b, at| self.pwrite(b, at));
        }
        if !self.writable {
            return Err(Errno::BADF);
        }
        // Finding the end and writing there are one store transaction:
        // cages appending through other opens of the file cannot slip a
        // write in between.
        self.offset.append(|| {
            let end = self.handle.append(buf).map_err(fs_err)?;
            Ok((buf.len(), end))
        })
    }
    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        if !self.readable {
            return Err(Errno::BADF);
        }
        self.handle.read_at(offset, buf).map_err(fs_err)
    }
    fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize> {
        if !self.writable {
            return Err(Errno::BADF);
        }
        self.handle.write_at(offset, buf).map_err(fs_err)
    }
    fn pwrite_end(&self, buf: &[u8]) -> Result<usize> {
        if !self.writable {
            return Err(Errno::BADF);
        }
        // One store transaction, as an `O_APPEND` write; the offset stays.
        self.handle.append(buf).map_err(fs_err)?;
        Ok(buf.len())
    }
    fn seek(&self, pos: SeekFrom) -> Result<u64> {
        self.offset.seek(pos, || self.size())
    }
    fn stat(&self) -> Result<Filestat> {
        self.handle.stat().map(|m| filestat(&m)).map_err(fs_err)
    }
    fn set_size(&self, size: u64) -> Result<()> {
        if !self.writable {
            return Err(Errno::INVAL);
        }
        self.handle.set_len(size).map_err(fs_err)
    }
    fn set_times(&self, atim: Option<TimeSpec>, mtim: Option<TimeSpec>) -> Result<()> {
        self.handle
            .set_times(time(atim), time(mtim))
            .map_err(fs_err)
    }
    fn sync(&self) -> Result<()> {
        self.handle.sync().map_err(fs_err)
    }
    fn allocate(&self, offset: u64, len: u64) -> Result<()> {
        let end = offset.checked_add(len).ok_or(Errno::FBIG)?;
        if !self.writable {
            return Err(Errno::INVAL);
        }
        // In one step: a size read first could be stale by the time it is
        // set, and shrink what another writer just wrote.
        self.handle.grow_to(end).map_err(fs_err)
    }
    fn fdflags(&self) -> u16 {
        if self.append {
            crate::abi::fdflags::APPEND
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SealedDir;
    use crate::abi::Errno;
    use crate::vfs::{Directory, OpenRequest};
    use warden_seal::fs::SealedFs;
    use warden_seal::{RootKey, StaticKey, Store};

    fn mount() -> (tempfile::TempDir, SealedFs, SealedDir) {
        let dir = tempfile::tempdir().unwrap();
        let key = StaticKey::new(RootKey::from_bytes([3; 32]));
        let store = Store::open(dir.path().join("store.redb"), &key).unwrap();
        let fs = SealedFs::new(store.namespace("mount").unwrap()).unwrap();
        let root = SealedDir::root(fs.clone()).unwrap();
        (dir, fs, root)
    }

    fn open_dir(root: &SealedDir, path: &str) -> std::sync::Arc<dyn crate::vfs::Node> {
        let req = OpenRequest {
            directory: true,
            read: true,
            ..OpenRequest::default()
        };
        root.open(path, &req).unwrap()
    }

    fn create() -> OpenRequest {
        OpenRequest {
            create: true,
            write: true,
            ..OpenRequest::default()
        }
    }

    #[test]
    fn an_open_directory_follows_its_renames() {
        let (_tmp, fs, root) = mount();
        root.create_dir("a").unwrap();
        root.create_dir("a/inner").unwrap();
        let a = open_dir(&root, "a");
        let inner = open_dir(&root, "a/inner");
        root.rename("a", &root, "b").unwrap();
        // A new directory at the old path must not receive what is created
        // through the open fds.
        root.create_dir("a").unwrap();
        root.create_dir("a/inner").unwrap();
        a.as_dir().unwrap().open("x", &create()).unwrap();
        inner.as_dir().unwrap().open("y", &create()).unwrap();
        assert!(fs.exists("b/x").unwrap());
        assert!(fs.exists("b/inner/y").unwrap());
        assert!(!fs.exists("a/x").unwrap());
        assert!(!fs.exists("a/inner/y").unwrap());
        // Paths through the fd follow it too, `..` included.
        let a = a.as_dir().unwrap();
        a.create_dir("sub").unwrap();
        assert!(fs.exists("b/sub").unwrap());
        assert_eq!(a.stat_at("inner/y", false).unwrap().size, 0);
        a.open("../top", &create()).unwrap();
        assert!(fs.exists("top").unwrap());
        a.rename("x", a, "x2").unwrap();
        assert!(fs.exists("b/x2").unwrap());
        a.unlink("x2").unwrap();
        a.remove_dir("sub").unwrap();
        assert_eq!(
            fs.readdir("b").unwrap().len(),
            1,
            "only `inner` is left in b"
        );
        assert_eq!(
            a.open("../..", &OpenRequest::default()).err(),
            Some(Errno::NOTCAPABLE)
        );
    }

    #[test]
    fn a_removed_directory_fd_gives_enoent() {
        let (_tmp, _fs, root) = mount();
        root.create_dir("d").unwrap();
        let d = open_dir(&root, "d");
        root.remove_dir("d").unwrap();
        root.create_dir("d").unwrap();
        let d = d.as_dir().unwrap();
        assert_eq!(d.open("x", &create()).err(), Some(Errno::NOENT));
        assert_eq!(d.create_dir("sub").err(), Some(Errno::NOENT));
        assert_eq!(d.stat_at("", false).err(), Some(Errno::NOENT));
        assert!(root.stat_at("d/x", false).is_err());
        assert!(root.stat_at("d/sub", false).is_err());
    }

    #[test]
    fn resolution_stays_inside() {
        let (_tmp, fs, root) = mount();
        root.create_dir("a").unwrap();
        root.create_dir("a/b").unwrap();
        root.open("a/./b/../c", &create()).unwrap();
        assert!(fs.exists("a/c").unwrap());
        let b = open_dir(&root, "a/b");
        let b = b.as_dir().unwrap();
        b.open("../../x", &create()).unwrap();
        assert!(fs.exists("x").unwrap());
        assert_eq!(
            b.open("../../..", &OpenRequest::default()).err(),
            Some(Errno::NOTCAPABLE)
        );
        assert_eq!(root.stat_at("..", false).err(), Some(Errno::NOTCAPABLE));
        assert_eq!(
            root.stat_at("", false).unwrap().ino,
            crate::vfs::Node::stat(&root).unwrap().ino
        );
    }
}
