//! [`Handle`]: an open file or directory of a [`SealedFs`], and the
//! `openat`-style operations relative to a directory handle.

use super::path::{components, Syntax};
use super::work::load_inode;
use super::{DirEntry, FileKind, FsError, FsResult, Metadata, OpenFlags, SealedFs};

/// An open file or directory. Dropping the last handle of a file that was
/// unlinked meanwhile removes its data.
///
/// A directory handle is also where relative paths start (the `*_at`
/// methods, as `openat` and friends): it names its directory by inode, so
/// it follows renames and fails with `NotFound` once the directory is
/// removed.
pub struct Handle {
    pub(super) fs: SealedFs,
    pub(super) ino: u64,
    pub(super) kind: FileKind,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("ino", &self.ino)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Handle {
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The kind it had when opened.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// The filesystem it belongs to.
    pub fn fs(&self) -> &SealedFs {
        &self.fs
    }

    /// Reads from `offset` into `buf`; returns the number of bytes read
    /// (less than `buf.len()` only at the end of the file).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        self.fs.read_at(self.ino, offset, buf)
    }

    /// Writes all of `data` at `offset` (extending the file, with a hole if
    /// `offset` is past its end); returns `data.len()`.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> FsResult<usize> {
        self.fs.write(self.ino, Some(offset), data)?;
        Ok(data.len())
    }

    /// Writes all of `data` at the end of the file, as one atomic step
    /// (`O_APPEND`): concurrent appends, through this handle or any other,
    /// land one after the other. Returns the offset just past what it
    /// wrote.
    pub fn append(&self, data: &[u8]) -> FsResult<u64> {
        let at = self.fs.write(self.ino, None, data)?;
        Ok(at + data.len() as u64)
    }

    /// Truncates or extends (with zeros) the file to `len` bytes.
    pub fn set_len(&self, len: u64) -> FsResult<()> {
        self.fs.set_len(self.ino, len, false)
    }

    /// Extends the file (with zeros) to `len` bytes if it is shorter, in
    /// one step (`posix_fallocate`): never shrinks a file another writer
    /// has just extended.
    pub fn grow_to(&self, len: u64) -> FsResult<()> {
        self.fs.set_len(self.ino, len, true)
    }

    pub fn stat(&self) -> FsResult<Metadata> {
        let subject = self.fs.subject();
        self.fs
            .ns
            .view(|v| Ok(load_inode(v, self.ino, &subject)?.metadata(self.ino)))
    }

    pub fn set_times(&self, atime: Option<u64>, mtime: Option<u64>) -> FsResult<()> {
        self.fs.set_times_ino(self.ino, atime, mtime)
    }

    /// The entries of this directory, sorted by name.
    pub fn readdir(&self) -> FsResult<Vec<DirEntry>> {
        self.fs.readdir_in(self.ino, &[])
    }

    /// Makes everything written so far durable (`fsync`).
    pub fn sync(&self) -> FsResult<()> {
        Ok(self.fs.ns.store().flush()?)
    }

    /// Opens `path` relative to this directory (`openat`).
    pub fn open_at(&self, path: &str, flags: OpenFlags) -> FsResult<Handle> {
        self.fs
            .open_in(self.ino, &components(path, Syntax::Relative)?, flags)
    }

    /// `fstatat`.
    pub fn stat_at(&self, path: &str) -> FsResult<Metadata> {
        self.fs
            .stat_in(self.ino, &components(path, Syntax::Relative)?)
    }

    /// `mkdirat`.
    pub fn mkdir_at(&self, path: &str) -> FsResult<()> {
        self.fs
            .mkdir_in(self.ino, &components(path, Syntax::Relative)?)
    }

    /// `unlinkat(AT_REMOVEDIR)`.
    pub fn rmdir_at(&self, path: &str) -> FsResult<()> {
        self.fs
            .rmdir_in(self.ino, &components(path, Syntax::Relative)?)
    }

    /// `unlinkat`.
    pub fn unlink_at(&self, path: &str) -> FsResult<()> {
        self.fs
            .unlink_in(self.ino, &components(path, Syntax::Relative)?)
    }

    /// `renameat`, from a path relative to this directory to one relative
    /// to `to_dir`, which must be of the same filesystem.
    pub fn rename_at(&self, from: &str, to_dir: &Handle, to: &str) -> FsResult<()> {
        if !self.fs.same(&to_dir.fs) {
            return Err(FsError::Invalid("rename across filesystems"));
        }
        let from = components(from, Syntax::Relative)?;
        let to = components(to, Syntax::Relative)?;
        self.fs.rename_in(self.ino, &from, to_dir.ino, &to)
    }

    /// `utimensat`.
    pub fn set_times_at(&self, path: &str, atime: Option<u64>, mtime: Option<u64>) -> FsResult<()> {
        let comps = components(path, Syntax::Relative)?;
        self.fs.set_times_in(self.ino, &comps, atime, mtime)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.fs.release(self.ino);
    }
}
