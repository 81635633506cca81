//! `wasi:filesystem/types`: the `descriptor` and `directory-entry-stream`
//! resources over VFS nodes.
//!
//! Each call checks the descriptor's kind and rights first (as
//! wasmtime-wasi: a file-only call on a directory is `bad-descriptor`, a
//! directory call on a file `not-directory`), then the path
//! ([`check_path`]: absolute → `not-permitted`), then asks the VFS, whose
//! `Directory` impls keep every path inside its mount.

use super::errors::{fs_error, stream_error_code};
use super::streams::{pause, NodeInput, NodeOutput};
use super::{Descriptor, Entry, VfsHost, VfsView};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use warden_kernel::abi::{fdflags, filetype, Errno, Filestat};
use warden_kernel::vfs::{check_path, Directory, Node, OpenRequest, TimeSpec};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, Advice, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode,
    Filesize, MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};

/// The most `read` returns at once, as wasmtime-wasi.
const MAX_READ: u64 = 64 * 1024;

fn ro() -> FsError {
    ErrorCode::ReadOnly.into()
}

/// A checked path: absolute paths and NUL bytes never reach a mount.
fn path(p: &str) -> FsResult<&str> {
    check_path(p).map_err(fs_error)?;
    Ok(p)
}

fn descriptor_type(node: &dyn Node, filetype: u8) -> DescriptorType {
    if node.blocks_in_kernel() {
        return DescriptorType::Fifo;
    }
    type_of(filetype)
}

fn type_of(t: u8) -> DescriptorType {
    match t {
        filetype::BLOCK_DEVICE => DescriptorType::BlockDevice,
        filetype::CHARACTER_DEVICE => DescriptorType::CharacterDevice,
        filetype::DIRECTORY => DescriptorType::Directory,
        filetype::REGULAR_FILE => DescriptorType::RegularFile,
        filetype::SYMBOLIC_LINK => DescriptorType::SymbolicLink,
        filetype::SOCKET_DGRAM | filetype::SOCKET_STREAM => DescriptorType::Socket,
        _ => DescriptorType::Unknown,
    }
}

fn datetime(nanos: u64) -> Datetime {
    Datetime {
        seconds: nanos / 1_000_000_000,
        nanoseconds: (nanos % 1_000_000_000) as u32,
    }
}

fn stat_of(st: &Filestat, type_: DescriptorType) -> DescriptorStat {
    DescriptorStat {
        type_,
        link_count: st.nlink,
        size: st.size,
        data_access_timestamp: Some(datetime(st.atim)),
        data_modification_timestamp: Some(datetime(st.mtim)),
        status_change_timestamp: Some(datetime(st.ctim)),
    }
}

fn time_spec(t: NewTimestamp) -> FsResult<Option<TimeSpec>> {
    Ok(match t {
        NewTimestamp::NoChange => None,
        NewTimestamp::Now => Some(TimeSpec::Now),
        NewTimestamp::Timestamp(Datetime {
            seconds,
            nanoseconds,
        }) => {
            let secs = seconds
                .checked_add(u64::from(nanoseconds / 1_000_000_000))
                .ok_or(ErrorCode::Overflow)?;
            let d = Duration::new(secs, nanoseconds % 1_000_000_000);
            Some(TimeSpec::At(
                SystemTime::UNIX_EPOCH
                    .checked_add(d)
                    .ok_or(ErrorCode::Overflow)?,
            ))
        }
    })
}

/// As wasmtime-wasi: the hash of the object's device and inode, the upper
/// half derived from the lower.
fn metadata_hash(st: &Filestat) -> MetadataHashValue {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (st.dev, st.ino).hash(&mut hasher);
    let lower = hasher.finish();
    MetadataHashValue {
        lower,
        upper: lower ^ 4614256656552045848u64,
    }
}

fn follow(flags: PathFlags) -> bool {
    flags.contains(PathFlags::SYMLINK_FOLLOW)
}

impl<T: VfsView> VfsHost<'_, T> {
    fn get(&mut self, fd: &Resource<types::Descriptor>) -> FsResult<&Descriptor> {
        self.ctx().descriptor(fd)
    }

    /// The node of a file descriptor (`bad-descriptor` for a directory).
    fn file(&mut self, fd: &Resource<types::Descriptor>) -> FsResult<&Descriptor> {
        let d = self.get(fd)?;
        if d.is_dir() {
            return Err(ErrorCode::BadDescriptor.into());
        }
        Ok(d)
    }

    /// The node of a directory descriptor (`not-directory` for a file),
    /// and whether it may mutate.
    fn dir(&mut self, fd: &Resource<types::Descriptor>) -> FsResult<(Arc<dyn Node>, bool)> {
        let d = self.get(fd)?;
        if !d.is_dir() {
            return Err(ErrorCode::NotDirectory.into());
        }
        Ok((d.node.clone(), d.mutate))
    }

    /// A directory that may mutate (`read-only` otherwise), once `p` is a
    /// path that could be asked for at all.
    fn mutable_dir(
        &mut self,
        fd: &Resource<types::Descriptor>,
        p: &str,
    ) -> FsResult<Arc<dyn Node>> {
        let (node, mutate) = self.dir(fd)?;
        path(p)?;
        if !mutate {
            return Err(ro());
        }
        Ok(node)
    }
}

/// The `Directory` of a node known to be one.
fn as_dir(node: &Arc<dyn Node>) -> FsResult<&dyn Directory> {
    node.as_dir().ok_or_else(|| ErrorCode::NotDirectory.into())
}

impl<T: VfsView> types::Host for VfsHost<'_, T> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        err.downcast()
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        let err = self.table().get(&err)?;
        Ok(stream_error_code(err))
    }
}

impl<T: VfsView> types::HostDescriptor for VfsHost<'_, T> {
    fn read_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        let d = self.get(&fd)?;
        if d.is_dir() {
            return Err(ErrorCode::IsDirectory.into());
        }
        if !d.read {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let stream: DynInputStream = Box::new(NodeInput::new(d.node.clone(), offset));
        Ok(self.table().push(stream)?)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let d = self.file(&fd)?;
        if !d.write {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let stream: DynOutputStream = Box::new(NodeOutput::at(d.node.clone(), offset));
        Ok(self.table().push(stream)?)
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let d = self.file(&fd)?;
        if !d.write {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let stream: DynOutputStream = Box::new(NodeOutput::append(d.node.clone()));
        Ok(self.table().push(stream)?)
    }

    async fn advise(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: Filesize,
        len: Filesize,
        advice: Advice,
    ) -> FsResult<()> {
        let d = self.file(&fd)?;
        // The numbers of preview 1's `advice`, which the VFS takes.
        let advice = match advice {
            Advice::Normal => 0,
            Advice::Sequential => 1,
            Advice::Random => 2,
            Advice::WillNeed => 3,
            Advice::DontNeed => 4,
            Advice::NoReuse => 5,
        };
        d.node.advise(offset, len, advice).map_err(fs_error)
    }

    async fn sync_data(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        self.get(&fd)?.node.datasync().map_err(fs_error)
    }

    async fn get_flags(&mut self, fd: Resource<types::Descriptor>) -> FsResult<DescriptorFlags> {
        Ok(self.get(&fd)?.flags())
    }

    async fn get_type(&mut self, fd: Resource<types::Descriptor>) -> FsResult<DescriptorType> {
        let d = self.get(&fd)?;
        Ok(descriptor_type(&*d.node, d.node.filetype()))
    }

    async fn set_size(&mut self, fd: Resource<types::Descriptor>, size: Filesize) -> FsResult<()> {
        let d = self.file(&fd)?;
        // ftruncate(2) of a descriptor not open for writing: EINVAL.
        if !d.write {
            return Err(ErrorCode::Invalid.into());
        }
        d.node.set_size(size).map_err(fs_error)
    }

    async fn set_times(
        &mut self,
        fd: Resource<types::Descriptor>,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        let d = self.get(&fd)?;
        if !d.mutate {
            return Err(ro());
        }
        let node = d.node.clone();
        node.set_times(time_spec(atim)?, time_spec(mtim)?)
            .map_err(fs_error)
    }

    async fn read(
        &mut self,
        fd: Resource<types::Descriptor>,
        len: Filesize,
        offset: Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        let d = self.file(&fd)?;
        if !d.read {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let mut buf = vec![0; len.min(MAX_READ) as usize];
        let n = loop {
            match d.node.pread(&mut buf, offset) {
                Err(Errno::INTR) => {}
                other => break other.map_err(fs_error)?,
            }
        };
        buf.truncate(n);
        Ok((buf, n == 0 && len > 0))
    }

    async fn write(
        &mut self,
        fd: Resource<types::Descriptor>,
        buf: Vec<u8>,
        offset: Filesize,
    ) -> FsResult<Filesize> {
        let d = self.file(&fd)?;
        if !d.write {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let n = d.node.pwrite(&buf, offset).map_err(fs_error)?;
        Ok(n as Filesize)
    }

    async fn read_directory(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<Resource<types::DirectoryEntryStream>> {
        let (node, _) = self.dir(&fd)?;
        let entries: Vec<DirectoryEntry> = node
            .readdir()
            .map_err(fs_error)?
            .into_iter()
            .filter(|e| e.name != "." && e.name != "..")
            .map(|e| DirectoryEntry {
                type_: type_of(e.filetype),
                name: e.name,
            })
            .collect();
        let rep = self
            .ctx()
            .insert(Entry::Listing(entries.into_iter()))
            .map_err(FsError::trap)?;
        Ok(Resource::new_own(rep))
    }

    async fn sync(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        self.get(&fd)?.node.sync().map_err(fs_error)
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        p: String,
    ) -> FsResult<()> {
        let node = self.mutable_dir(&fd, &p)?;
        as_dir(&node)?.create_dir(&p).map_err(fs_error)
    }

    async fn stat(&mut self, fd: Resource<types::Descriptor>) -> FsResult<DescriptorStat> {
        let d = self.get(&fd)?;
        let st = d.node.stat().map_err(fs_error)?;
        Ok(stat_of(&st, descriptor_type(&*d.node, st.filetype)))
    }

    async fn stat_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        flags: PathFlags,
        p: String,
    ) -> FsResult<DescriptorStat> {
        let (node, _) = self.dir(&fd)?;
        let st = as_dir(&node)?
            .stat_at(path(&p)?, follow(flags))
            .map_err(fs_error)?;
        Ok(stat_of(&st, type_of(st.filetype)))
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        flags: PathFlags,
        p: String,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        let node = self.mutable_dir(&fd, &p)?;
        let (a, m) = (time_spec(atim)?, time_spec(mtim)?);
        as_dir(&node)?
            .set_times_at(&p, follow(flags), a, m)
            .map_err(fs_error)
    }

    async fn link_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_flags: PathFlags,
        old_path: String,
        new_fd: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let from = self.mutable_dir(&fd, &old_path)?;
        let to = self.mutable_dir(&new_fd, &new_path)?;
        as_dir(&from)?
            .link(&old_path, follow(old_flags), as_dir(&to)?, &new_path)
            .map_err(fs_error)
    }

    async fn open_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        flags: PathFlags,
        p: String,
        oflags: OpenFlags,
        dflags: DescriptorFlags,
    ) -> FsResult<Resource<types::Descriptor>> {
        let (base, base_mutate) = self.dir(&fd)?;
        path(&p)?;
        let directory = oflags.contains(OpenFlags::DIRECTORY);
        let create = oflags.contains(OpenFlags::CREATE);
        let truncate = oflags.contains(OpenFlags::TRUNCATE);
        let exclusive = oflags.contains(OpenFlags::EXCLUSIVE);
        if directory && (create || exclusive || truncate) {
            return Err(ErrorCode::Invalid.into());
        }
        let write = dflags.contains(DescriptorFlags::WRITE);
        let mutate = dflags.contains(DescriptorFlags::MUTATE_DIRECTORY);
        // What could change the tree needs a base that may mutate.
        if (write || mutate || create || truncate) && !base_mutate {
            return Err(ro());
        }
        let mut sync = 0;
        if dflags.contains(DescriptorFlags::FILE_INTEGRITY_SYNC) {
            sync |= fdflags::SYNC;
        }
        if dflags.contains(DescriptorFlags::DATA_INTEGRITY_SYNC) {
            sync |= fdflags::DSYNC;
        }
        if dflags.contains(DescriptorFlags::REQUESTED_WRITE_SYNC) {
            sync |= fdflags::RSYNC;
        }
        // As wasmtime-wasi: a descriptor opened without `write` reads.
        let read = dflags.contains(DescriptorFlags::READ) || !write;
        let req = OpenRequest {
            read,
            write,
            create,
            exclusive,
            truncate,
            directory,
            append: false,
            nonblock: false,
            follow: follow(flags),
            sync,
        };
        let dir = as_dir(&base)?;
        let node = loop {
            match dir.open(&p, &req) {
                // A FIFO with no reader yet: wait for one, as a blocking
                // open(2) would, without holding a host thread.
                Err(Errno::AGAIN) => pause().await,
                other => break other.map_err(fs_error)?,
            }
        };
        let descriptor = if node.as_dir().is_some() {
            let strict = self.ctx().strict_mutate();
            Descriptor {
                node,
                read: true,
                write: false,
                mutate: mutate || (base_mutate && !strict),
                sync: 0,
            }
        } else if directory {
            return Err(ErrorCode::NotDirectory.into());
        } else {
            Descriptor {
                node,
                read,
                write,
                mutate: base_mutate,
                sync,
            }
        };
        let rep = self
            .ctx()
            .insert(Entry::Descriptor(descriptor))
            .map_err(FsError::trap)?;
        Ok(Resource::new_own(rep))
    }

    async fn readlink_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        p: String,
    ) -> FsResult<String> {
        let (node, _) = self.dir(&fd)?;
        let target = as_dir(&node)?.readlink(path(&p)?).map_err(fs_error)?;
        // The 0.2 spec: an absolute target is not handed out.
        if target.starts_with('/') {
            return Err(ErrorCode::NotPermitted.into());
        }
        Ok(target)
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        p: String,
    ) -> FsResult<()> {
        let node = self.mutable_dir(&fd, &p)?;
        as_dir(&node)?.remove_dir(&p).map_err(fs_error)
    }

    async fn rename_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path: String,
        new_fd: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let from = self.mutable_dir(&fd, &old_path)?;
        let to = self.mutable_dir(&new_fd, &new_path)?;
        as_dir(&from)?
            .rename(&old_path, as_dir(&to)?, &new_path)
            .map_err(fs_error)
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        target: String,
        p: String,
    ) -> FsResult<()> {
        let node = self.mutable_dir(&fd, &p)?;
        // The 0.2 spec: an absolute target is not permitted.
        if target.starts_with('/') {
            return Err(ErrorCode::NotPermitted.into());
        }
        as_dir(&node)?.symlink(&target, &p).map_err(fs_error)
    }

    async fn unlink_file_at(&mut self, fd: Resource<types::Descriptor>, p: String) -> FsResult<()> {
        let node = self.mutable_dir(&fd, &p)?;
        as_dir(&node)?.unlink(&p).map_err(fs_error)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<types::Descriptor>,
        b: Resource<types::Descriptor>,
    ) -> wasmtime::Result<bool> {
        let a = self.get(&a)?.node.clone();
        let b = self.get(&b)?.node.clone();
        if Arc::ptr_eq(&a, &b) {
            return Ok(true);
        }
        Ok(match (a.stat(), b.stat()) {
            (Ok(x), Ok(y)) => x.dev == y.dev && x.ino == y.ino,
            _ => false,
        })
    }

    async fn metadata_hash(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<MetadataHashValue> {
        let st = self.get(&fd)?.node.stat().map_err(fs_error)?;
        Ok(metadata_hash(&st))
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        flags: PathFlags,
        p: String,
    ) -> FsResult<MetadataHashValue> {
        let (node, _) = self.dir(&fd)?;
        let st = as_dir(&node)?
            .stat_at(path(&p)?, follow(flags))
            .map_err(fs_error)?;
        Ok(metadata_hash(&st))
    }

    fn drop(&mut self, fd: Resource<types::Descriptor>) -> wasmtime::Result<()> {
        self.ctx().remove(fd.rep())?;
        Ok(())
    }
}

impl<T: VfsView> types::HostDirectoryEntryStream for VfsHost<'_, T> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<DirectoryEntry>> {
        Ok(self.ctx().listing(stream.rep())?.next())
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        self.ctx().remove(stream.rep())?;
        Ok(())
    }
}
