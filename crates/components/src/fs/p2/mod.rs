//! `wasi:filesystem` 0.2: `types` (the `descriptor` and
//! `directory-entry-stream` resources) and `preopens`, through
//! wasmtime-wasi's generated bindings, over the operations both versions
//! share ([`super::ops`]). Its streams are `wasi:io` streams
//! ([`streams`]) in wasmtime-wasi's `ResourceTable`.

mod streams;
#[cfg(test)]
mod tests;

use super::convert::filesystem_conversions;
use super::errors::stream_error_code;
use super::node_io::NodeWriter;
use super::{Entry, HasVfs, VfsHost, VfsView};
use streams::{NodeInput, NodeOutput};
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, Advice, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode,
    Filesize, MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};

filesystem_conversions! {
    time: Datetime,
    error: FsError,
    unknown: DescriptorType::Unknown,
    would_block: ErrorCode::WouldBlock,
}

/// The most `read` returns at once, as wasmtime-wasi.
const MAX_READ: u64 = 64 * 1024;

/// Adds `wasi:filesystem/types` and `wasi:filesystem/preopens` (0.2.x).
pub fn add_to_linker<T: VfsView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasVfs<T>>(linker, |t| VfsHost(t))?;
    preopens::add_to_linker::<T, HasVfs<T>>(linker, |t| VfsHost(t))?;
    Ok(())
}

impl<T: VfsView> preopens::Host for VfsHost<'_, T> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<types::Descriptor>, String)>> {
        self.get_preopens()
    }
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

type Fd = Resource<types::Descriptor>;

impl<T: VfsView> types::HostDescriptor for VfsHost<'_, T> {
    fn read_via_stream(&mut self, fd: Fd, offset: Filesize) -> FsResult<Resource<DynInputStream>> {
        let node = self.ctx().readable_file(fd.rep())?;
        let stream: DynInputStream = Box::new(NodeInput::new(node, offset));
        Ok(self.table().push(stream)?)
    }

    fn write_via_stream(
        &mut self,
        fd: Fd,
        offset: Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let node = self.ctx().writable_file(fd.rep())?;
        let stream: DynOutputStream = Box::new(NodeOutput::new(NodeWriter::at(node, offset)));
        Ok(self.table().push(stream)?)
    }

    fn append_via_stream(&mut self, fd: Fd) -> FsResult<Resource<DynOutputStream>> {
        let node = self.ctx().writable_file(fd.rep())?;
        let stream: DynOutputStream = Box::new(NodeOutput::new(NodeWriter::append(node)));
        Ok(self.table().push(stream)?)
    }

    async fn advise(
        &mut self,
        fd: Fd,
        offset: Filesize,
        len: Filesize,
        advice: Advice,
    ) -> FsResult<()> {
        Ok(self.ctx().advise(fd.rep(), offset, len, advice as u8)?)
    }

    async fn sync_data(&mut self, fd: Fd) -> FsResult<()> {
        Ok(self.ctx().sync_data(fd.rep())?)
    }

    async fn get_flags(&mut self, fd: Fd) -> FsResult<DescriptorFlags> {
        Ok(flags_of(self.ctx().descriptor(fd.rep())?))
    }

    async fn get_type(&mut self, fd: Fd) -> FsResult<DescriptorType> {
        Ok(descriptor_type(self.ctx().kind(fd.rep())?))
    }

    async fn set_size(&mut self, fd: Fd, size: Filesize) -> FsResult<()> {
        Ok(self.ctx().set_size(fd.rep(), size)?)
    }

    async fn set_times(&mut self, fd: Fd, atim: NewTimestamp, mtim: NewTimestamp) -> FsResult<()> {
        let (atim, mtim) = (time_spec(atim)?, time_spec(mtim)?);
        Ok(self.ctx().set_times(fd.rep(), atim, mtim)?)
    }

    async fn read(&mut self, fd: Fd, len: Filesize, offset: Filesize) -> FsResult<(Vec<u8>, bool)> {
        Ok(self.ctx().read_at(fd.rep(), len, offset, MAX_READ)?)
    }

    async fn write(&mut self, fd: Fd, buf: Vec<u8>, offset: Filesize) -> FsResult<Filesize> {
        Ok(self.ctx().write_at(fd.rep(), &buf, offset)?)
    }

    async fn read_directory(&mut self, fd: Fd) -> FsResult<Resource<types::DirectoryEntryStream>> {
        let ctx = self.ctx();
        let entries = ctx.entries(fd.rep())?;
        let rep = ctx.insert(Entry::Listing(entries.into_iter()))?;
        Ok(Resource::new_own(rep))
    }

    async fn sync(&mut self, fd: Fd) -> FsResult<()> {
        Ok(self.ctx().sync(fd.rep())?)
    }

    async fn create_directory_at(&mut self, fd: Fd, p: String) -> FsResult<()> {
        Ok(self.ctx().create_directory_at(fd.rep(), &p)?)
    }

    async fn stat(&mut self, fd: Fd) -> FsResult<DescriptorStat> {
        Ok(stat_of(self.ctx().stat(fd.rep())?))
    }

    async fn stat_at(&mut self, fd: Fd, flags: PathFlags, p: String) -> FsResult<DescriptorStat> {
        Ok(stat_of(self.ctx().stat_at(fd.rep(), follow(flags), &p)?))
    }

    async fn set_times_at(
        &mut self,
        fd: Fd,
        flags: PathFlags,
        p: String,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        let (atim, mtim) = (time_spec(atim)?, time_spec(mtim)?);
        let ctx = self.ctx();
        Ok(ctx.set_times_at(fd.rep(), follow(flags), &p, atim, mtim)?)
    }

    async fn link_at(
        &mut self,
        fd: Fd,
        old_flags: PathFlags,
        old_path: String,
        new_fd: Fd,
        new_path: String,
    ) -> FsResult<()> {
        let ctx = self.ctx();
        Ok(ctx.link_at(
            fd.rep(),
            follow(old_flags),
            &old_path,
            new_fd.rep(),
            &new_path,
        )?)
    }

    async fn open_at(
        &mut self,
        fd: Fd,
        flags: PathFlags,
        p: String,
        oflags: OpenFlags,
        dflags: DescriptorFlags,
    ) -> FsResult<Fd> {
        let spec = open_spec(flags, oflags, dflags);
        let (base, req, base_mutate) = self.ctx().open_start(fd.rep(), &p, &spec)?;
        let node = super::ops::open_node(&base, &p, &req).await?;
        let rep = self.ctx().open_finish(node, &spec, base_mutate)?;
        Ok(Resource::new_own(rep))
    }

    async fn readlink_at(&mut self, fd: Fd, p: String) -> FsResult<String> {
        Ok(self.ctx().readlink_at(fd.rep(), &p)?)
    }

    async fn remove_directory_at(&mut self, fd: Fd, p: String) -> FsResult<()> {
        Ok(self.ctx().remove_directory_at(fd.rep(), &p)?)
    }

    async fn rename_at(
        &mut self,
        fd: Fd,
        old_path: String,
        new_fd: Fd,
        new_path: String,
    ) -> FsResult<()> {
        Ok(self
            .ctx()
            .rename_at(fd.rep(), &old_path, new_fd.rep(), &new_path)?)
    }

    async fn symlink_at(&mut self, fd: Fd, target: String, p: String) -> FsResult<()> {
        Ok(self.ctx().symlink_at(fd.rep(), &target, &p)?)
    }

    async fn unlink_file_at(&mut self, fd: Fd, p: String) -> FsResult<()> {
        Ok(self.ctx().unlink_file_at(fd.rep(), &p)?)
    }

    async fn is_same_object(&mut self, a: Fd, b: Fd) -> wasmtime::Result<bool> {
        self.ctx()
            .is_same_object(a.rep(), b.rep())
            .map_err(super::ops::Fail::into_trap)
    }

    async fn metadata_hash(&mut self, fd: Fd) -> FsResult<MetadataHashValue> {
        Ok(hash_of(self.ctx().metadata_hash(fd.rep())?))
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Fd,
        flags: PathFlags,
        p: String,
    ) -> FsResult<MetadataHashValue> {
        Ok(hash_of(self.ctx().metadata_hash_at(
            fd.rep(),
            follow(flags),
            &p,
        )?))
    }

    fn drop(&mut self, fd: Fd) -> wasmtime::Result<()> {
        self.drop_rep(fd.rep())
    }
}

impl<T: VfsView> types::HostDirectoryEntryStream for VfsHost<'_, T> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<DirectoryEntry>> {
        Ok(self.ctx().listing(stream.rep())?.next().map(entry_of))
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        self.drop_rep(stream.rep())
    }
}
