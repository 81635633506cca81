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

/// Joins `rel` onto `base` (both relative to the mount root), resolving
/// `.` and `..`; climbing above the root is refused.
fn resolve(base: &str, rel: &str) -> Result<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|c| !c.is_empty()).collect();
    for component in rel.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(note::deny(Errno::NOTCAPABLE, "path escapes its mount"));
                }
            }
            name => parts.push(name),
        }
    }
    Ok(parts.join("/"))
}

/// An open sealed directory: the filesystem and its path from the root.
pub struct SealedDir {
    fs: SealedFs,
    path: String,
    handle: Handle,
}

impl SealedDir {
    pub fn root(fs: SealedFs) -> Result<SealedDir> {
        let handle = fs
            .open("", OpenFlags::existing().directory())
            .map_err(fs_err)?;
        Ok(SealedDir {
            fs,
            path: String::new(),
            handle,
        })
    }

    fn at(&self, rel: &str) -> Result<String> {
        resolve(&self.path, rel)
    }

    fn same_fs<'a>(&self, other: &'a dyn Directory) -> Result<&'a SealedDir> {
        let other = other
            .as_any()
            .downcast_ref::<SealedDir>()
            .ok_or(Errno::XDEV)?;
        if other.fs.namespace().name() != self.fs.namespace().name() {
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
        let parent = if self.path.is_empty() {
            me
        } else {
            let up = resolve(&self.path, "..")?;
            self.fs.stat(&up).map(|m| m.ino).unwrap_or(me)
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
        let at = self.at(path)?;
        let flags = OpenFlags {
            create: req.create,
            exclusive: req.exclusive,
            truncate: req.truncate,
            directory: req.directory,
        };
        let handle = self.fs.open(&at, flags).map_err(fs_err)?;
        match handle.kind() {
            FileKind::Directory => {
                if req.write || req.truncate || req.append {
                    return Err(Errno::ISDIR);
                }
                Ok(Arc::new(SealedDir {
                    fs: self.fs.clone(),
                    path: at,
                    handle,
                }))
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
        self.fs.mkdir(&self.at(path)?).map_err(fs_err)
    }
    fn remove_dir(&self, path: &str) -> Result<()> {
        self.fs.rmdir(&self.at(path)?).map_err(fs_err)
    }
    fn unlink(&self, path: &str) -> Result<()> {
        self.fs.unlink(&self.at(path)?).map_err(fs_err)
    }
    fn rename(&self, from: &str, to_dir: &dyn Directory, to: &str) -> Result<()> {
        let to_dir = self.same_fs(to_dir)?;
        self.fs
            .rename(&self.at(from)?, &to_dir.at(to)?)
            .map_err(fs_err)
    }
    fn link(&self, from: &str, _follow: bool, _to_dir: &dyn Directory, _to: &str) -> Result<()> {
        self.fs.stat(&self.at(from)?).map_err(fs_err)?;
        Err(note::deny(Errno::PERM, "sealed mounts have no hard links"))
    }
    fn symlink(&self, _target: &str, _path: &str) -> Result<()> {
        Err(note::deny(
            Errno::PERM,
            "sealed mounts have no symbolic links",
        ))
    }
    fn readlink(&self, path: &str) -> Result<String> {
        self.fs.stat(&self.at(path)?).map_err(fs_err)?;
        Err(Errno::INVAL)
    }
    fn stat_at(&self, path: &str, _follow: bool) -> Result<Filestat> {
        self.fs
            .stat(&self.at(path)?)
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
        self.fs
            .set_times(&self.at(path)?, time(atim), time(mtim))
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
        let end = if self.append {
            Some(self.size()?)
        } else {
            None
        };
        self.offset.write(buf, end, |b, at| self.pwrite(b, at))
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
        if end > self.size()? {
            self.set_size(end)?;
        }
        Ok(())
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
    use super::resolve;
    use crate::abi::Errno;

    #[test]
    fn resolution_stays_inside() {
        assert_eq!(resolve("", "a/./b/../c").unwrap(), "a/c");
        assert_eq!(resolve("a/b", "../../x").unwrap(), "x");
        assert_eq!(resolve("a", "../..").err(), Some(Errno::NOTCAPABLE));
        assert_eq!(resolve("", "").unwrap(), "");
    }
}
