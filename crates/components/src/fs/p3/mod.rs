//! `wasi:filesystem` 0.3: `types` (the `descriptor` resource) and
//! `preopens`, through wasmtime-wasi's generated p3 bindings, over the
//! operations both versions share ([`super::ops`]) and the same table of
//! descriptors: a 0.3 descriptor is a rep of the [`super::VfsCtx`] like a
//! 0.2 one.
//!
//! The async functions take the store through an `Accessor`, only between
//! awaits: each finds its descriptor and calls the VFS in one go (the only
//! await is `open-at` waiting for a FIFO's other end). Reading and writing
//! go through component-model streams ([`streams`]); `read-directory`
//! lists the directory when it is called and streams the entries.

mod streams;

use super::convert::filesystem_conversions;
use super::node_io::{NodeReader, NodeWriter};
use super::ops::{open_node, Fail, Res};
use super::{HasVfs, VfsCtx, VfsHost, VfsView};
use std::iter;
use streams::{ReadStream, WriteStream};
use tokio::sync::oneshot;
use wasmtime::component::{Access, Accessor, FutureReader, Linker, Resource, StreamReader};
use wasmtime_wasi::p3::bindings::clocks::system_clock::Instant;
use wasmtime_wasi::p3::bindings::filesystem::preopens;
use wasmtime_wasi::p3::bindings::filesystem::types::{
    self, Advice, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode,
    Filesize, MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};
use wasmtime_wasi::p3::filesystem::{FilesystemError, FilesystemResult};

filesystem_conversions! {
    time: Instant,
    error: FilesystemError,
    unknown: DescriptorType::Other(None),
    would_block: ErrorCode::Other(Some("would-block".to_string())),
}

/// Adds `wasi:filesystem/types` and `wasi:filesystem/preopens` (0.3.x).
pub fn add_p3_to_linker<T: VfsView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasVfs<T>>(linker, |t| VfsHost(t))?;
    preopens::add_to_linker::<T, HasVfs<T>>(linker, |t| VfsHost(t))?;
    Ok(())
}

type Fd = Resource<types::Descriptor>;
type Acc<T> = Accessor<T, HasVfs<T>>;
/// What a function with a stream and a future gives back when the
/// descriptor cannot be read or written: the code, for the future.
type Refused<T> = wasmtime::Result<Result<T, ErrorCode>>;

/// Runs `op` on the filesystem context, between two awaits.
fn with_ctx<T: VfsView + 'static, R>(
    acc: &Acc<T>,
    op: impl FnOnce(&mut VfsCtx) -> Res<R>,
) -> FilesystemResult<R> {
    acc.with(|mut access| Ok(op(access.get().ctx())?))
}

/// A result for a future: the code of a failure, or the trap.
fn refused<T>(r: Res<T>) -> Refused<T> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(Fail::Code(errno)) => Ok(Err(error_code(errno))),
        Err(Fail::Trap(err)) => Err(err),
    }
}

/// A future that is already `value`.
fn ready<T: VfsView + 'static>(
    host: &mut Access<T, HasVfs<T>>,
    value: Result<(), ErrorCode>,
) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
    FutureReader::new(host, async move { Ok::<_, wasmtime::Error>(value) })
}

/// `write-via-stream` and `append-via-stream`: `data` piped into the
/// file's writer, or closed at once with the reason in the future.
fn write_stream<T: VfsView + 'static>(
    mut host: Access<T, HasVfs<T>>,
    fd: Fd,
    mut data: StreamReader<u8>,
    writer: impl FnOnce(std::sync::Arc<dyn warden_kernel::vfs::Node>) -> NodeWriter,
) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
    match refused(host.get().ctx().writable_file(fd.rep()))? {
        Ok(node) => {
            let (tx, rx) = oneshot::channel();
            data.pipe(&mut host, WriteStream::new(writer(node), tx))?;
            FutureReader::new(&mut host, rx)
        }
        Err(code) => {
            data.close(&mut host)?;
            ready(&mut host, Err(code))
        }
    }
}

impl<T: VfsView> preopens::Host for VfsHost<'_, T> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Fd, String)>> {
        self.get_preopens()
    }
}

impl<T: VfsView> types::Host for VfsHost<'_, T> {
    fn convert_error_code(&mut self, err: FilesystemError) -> wasmtime::Result<ErrorCode> {
        err.downcast()
    }
}

impl<T: VfsView> types::HostDescriptor for VfsHost<'_, T> {
    fn drop(&mut self, fd: Fd) -> wasmtime::Result<()> {
        self.drop_rep(fd.rep())
    }
}

impl<T: VfsView + 'static> types::HostDescriptorWithStore<T> for HasVfs<T> {
    fn read_via_stream(
        mut host: Access<T, Self>,
        fd: Fd,
        offset: Filesize,
    ) -> wasmtime::Result<(StreamReader<u8>, FutureReader<Result<(), ErrorCode>>)> {
        match refused(host.get().ctx().readable_file(fd.rep()))? {
            Ok(node) => {
                let (tx, rx) = oneshot::channel();
                let stream = ReadStream::new(NodeReader::new(node, offset), tx);
                let stream = StreamReader::new(&mut host, stream)?;
                Ok((stream, FutureReader::new(&mut host, rx)?))
            }
            Err(code) => {
                let stream = StreamReader::new(&mut host, iter::empty())?;
                Ok((stream, ready(&mut host, Err(code))?))
            }
        }
    }

    fn write_via_stream(
        host: Access<T, Self>,
        fd: Fd,
        data: StreamReader<u8>,
        offset: Filesize,
    ) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
        write_stream(host, fd, data, |node| NodeWriter::at(node, offset))
    }

    fn append_via_stream(
        host: Access<T, Self>,
        fd: Fd,
        data: StreamReader<u8>,
    ) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
        write_stream(host, fd, data, NodeWriter::append)
    }

    async fn advise(
        acc: &Acc<T>,
        fd: Fd,
        offset: Filesize,
        length: Filesize,
        advice: Advice,
    ) -> FilesystemResult<()> {
        with_ctx(acc, |c| c.advise(fd.rep(), offset, length, advice as u8))
    }

    async fn sync_data(acc: &Acc<T>, fd: Fd) -> FilesystemResult<()> {
        with_ctx(acc, |c| c.sync_data(fd.rep()))
    }

    async fn get_flags(acc: &Acc<T>, fd: Fd) -> FilesystemResult<DescriptorFlags> {
        with_ctx(acc, |c| Ok(flags_of(c.descriptor(fd.rep())?)))
    }

    async fn get_type(acc: &Acc<T>, fd: Fd) -> FilesystemResult<DescriptorType> {
        with_ctx(acc, |c| Ok(descriptor_type(c.kind(fd.rep())?)))
    }

    async fn set_size(acc: &Acc<T>, fd: Fd, size: Filesize) -> FilesystemResult<()> {
        with_ctx(acc, |c| c.set_size(fd.rep(), size))
    }

    async fn set_times(
        acc: &Acc<T>,
        fd: Fd,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FilesystemResult<()> {
        with_ctx(acc, |c| {
            c.set_times(fd.rep(), time_spec(atim)?, time_spec(mtim)?)
        })
    }

    fn read_directory(
        mut host: Access<T, Self>,
        fd: Fd,
    ) -> wasmtime::Result<(
        StreamReader<DirectoryEntry>,
        FutureReader<Result<(), ErrorCode>>,
    )> {
        let (entries, result) = match refused(host.get().ctx().entries(fd.rep()))? {
            Ok(entries) => (entries.into_iter().map(entry_of).collect(), Ok(())),
            Err(code) => (Vec::new(), Err(code)),
        };
        let stream = StreamReader::new(&mut host, entries)?;
        Ok((stream, ready(&mut host, result)?))
    }

    async fn sync(acc: &Acc<T>, fd: Fd) -> FilesystemResult<()> {
        with_ctx(acc, |c| c.sync(fd.rep()))
    }

    async fn create_directory_at(acc: &Acc<T>, fd: Fd, path: String) -> FilesystemResult<()> {
        with_ctx(acc, |c| c.create_directory_at(fd.rep(), &path))
    }

    async fn stat(acc: &Acc<T>, fd: Fd) -> FilesystemResult<DescriptorStat> {
        with_ctx(acc, |c| Ok(stat_of(c.stat(fd.rep())?)))
    }

    async fn stat_at(
        acc: &Acc<T>,
        fd: Fd,
        flags: PathFlags,
        path: String,
    ) -> FilesystemResult<DescriptorStat> {
        with_ctx(acc, |c| {
            Ok(stat_of(c.stat_at(fd.rep(), follow(flags), &path)?))
        })
    }

    async fn set_times_at(
        acc: &Acc<T>,
        fd: Fd,
        flags: PathFlags,
        path: String,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FilesystemResult<()> {
        with_ctx(acc, |c| {
            let (atim, mtim) = (time_spec(atim)?, time_spec(mtim)?);
            c.set_times_at(fd.rep(), follow(flags), &path, atim, mtim)
        })
    }

    async fn link_at(
        acc: &Acc<T>,
        fd: Fd,
        old_flags: PathFlags,
        old_path: String,
        new_fd: Fd,
        new_path: String,
    ) -> FilesystemResult<()> {
        with_ctx(acc, |c| {
            c.link_at(
                fd.rep(),
                follow(old_flags),
                &old_path,
                new_fd.rep(),
                &new_path,
            )
        })
    }

    async fn open_at(
        acc: &Acc<T>,
        fd: Fd,
        flags: PathFlags,
        path: String,
        oflags: OpenFlags,
        dflags: DescriptorFlags,
    ) -> FilesystemResult<Fd> {
        let spec = open_spec(flags, oflags, dflags);
        let (base, req, base_mutate) = with_ctx(acc, |c| c.open_start(fd.rep(), &path, &spec))?;
        let node = open_node(&base, &path, &req).await?;
        let rep = with_ctx(acc, |c| c.open_finish(node, &spec, base_mutate))?;
        Ok(Resource::new_own(rep))
    }

    async fn readlink_at(acc: &Acc<T>, fd: Fd, path: String) -> FilesystemResult<String> {
        with_ctx(acc, |c| c.readlink_at(fd.rep(), &path))
    }

    async fn remove_directory_at(acc: &Acc<T>, fd: Fd, path: String) -> FilesystemResult<()> {
        with_ctx(acc, |c| c.remove_directory_at(fd.rep(), &path))
    }

    async fn rename_at(
        acc: &Acc<T>,
        fd: Fd,
        old_path: String,
        new_fd: Fd,
        new_path: String,
    ) -> FilesystemResult<()> {
        with_ctx(acc, |c| {
            c.rename_at(fd.rep(), &old_path, new_fd.rep(), &new_path)
        })
    }

    async fn symlink_at(
        acc: &Acc<T>,
        fd: Fd,
        old_path: String,
        new_path: String,
    ) -> FilesystemResult<()> {
        with_ctx(acc, |c| c.symlink_at(fd.rep(), &old_path, &new_path))
    }

    async fn unlink_file_at(acc: &Acc<T>, fd: Fd, path: String) -> FilesystemResult<()> {
        with_ctx(acc, |c| c.unlink_file_at(fd.rep(), &path))
    }

    async fn is_same_object(acc: &Acc<T>, fd: Fd, other: Fd) -> wasmtime::Result<bool> {
        acc.with(|mut access| {
            let mut host = access.get();
            host.ctx()
                .is_same_object(fd.rep(), other.rep())
                .map_err(Fail::into_trap)
        })
    }

    async fn metadata_hash(acc: &Acc<T>, fd: Fd) -> FilesystemResult<MetadataHashValue> {
        with_ctx(acc, |c| Ok(hash_of(c.metadata_hash(fd.rep())?)))
    }

    async fn metadata_hash_at(
        acc: &Acc<T>,
        fd: Fd,
        flags: PathFlags,
        path: String,
    ) -> FilesystemResult<MetadataHashValue> {
        with_ctx(acc, |c| {
            Ok(hash_of(c.metadata_hash_at(
                fd.rep(),
                follow(flags),
                &path,
            )?))
        })
    }
}
