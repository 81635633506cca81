//! `wasi:filesystem` 0.2 over the kernel's VFS.
//!
//! Components get their files from the same [`Node`]s as core modules, so
//! host, virtual and sealed mounts behave alike for both ABIs and paths
//! stay inside their mount by the same code. Everything else of WASI 0.2
//! is wasmtime-wasi's; this module links only `wasi:filesystem/types` and
//! `wasi:filesystem/preopens`, through wasmtime-wasi's own generated
//! bindings so that the streams, pollables and errors of `wasi:io`
//! interoperate with the rest.
//!
//! The resources of `wasi:filesystem` (`descriptor`,
//! `directory-entry-stream`) live in a table of the [`VfsCtx`], keyed by
//! the resource's rep; the streams they hand out live in wasmtime-wasi's
//! `ResourceTable` like every `wasi:io` stream.
//!
//! Rights: a file descriptor reads unless it was opened only for `write`
//! (as wasmtime-wasi), and writes only if opened with `write`
//! (`bad-descriptor` otherwise, POSIX's `EBADF`). A directory descriptor
//! without `mutate-directory` creates, removes, renames, links and sets
//! times of nothing and hands out no descriptor that could (`read-only`,
//! as the 0.2 spec says). Preopens have `read` and `mutate-directory`; a
//! read-only mount refuses writes itself, with `read-only` too.
//!
//! Whether a directory opened *without* asking for `mutate-directory` has
//! it: by default it inherits it from the directory it was opened from,
//! as in wasmtime-wasi (where a preopen's permissions hold for everything
//! beneath it). The spec would have it dropped, but WASI 0.1 programs
//! never ask for it (the preview-1 adapter has no right to map to it), so
//! `std::fs::remove_dir_all` of a wasm32-wasip2 Rust program, or any
//! `unlinkat` through an opened directory, would fail. Asking for it
//! through a directory that lacks it fails either way, so a read-only
//! subtree stays read-only. [`VfsCtx::strict_mutate_directory`] gives the
//! spec's behaviour.

mod descriptor;
mod errors;
mod streams;
#[cfg(test)]
mod tests;

pub use errors::{error_code, StreamFailure};

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use warden_kernel::vfs::Node;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::filesystem::types::{DescriptorFlags, DirectoryEntry};
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types};
use wasmtime_wasi::p2::FsError;
use wasmtime_wasi::WasiView;

/// What the filesystem of one component instance holds: its preopened
/// directories and the descriptors and directory listings it has open.
pub struct VfsCtx {
    preopens: Vec<(String, Arc<dyn Node>)>,
    entries: HashMap<u32, Entry>,
    next_rep: u32,
    strict_mutate: bool,
}

/// An open `descriptor`: a node and what it may do.
pub(crate) struct Descriptor {
    pub node: Arc<dyn Node>,
    /// `descriptor-flags::read`.
    pub read: bool,
    /// `descriptor-flags::write` (files only).
    pub write: bool,
    /// A directory: `descriptor-flags::mutate-directory`. A file: the
    /// directory it was opened from had it, so that its metadata may
    /// change.
    pub mutate: bool,
    /// The sync flags it was opened with, as kernel `fdflags`.
    pub sync: u16,
}

impl Descriptor {
    pub fn is_dir(&self) -> bool {
        self.node.as_dir().is_some()
    }

    /// The flags `get-flags` reports.
    pub fn flags(&self) -> DescriptorFlags {
        use warden_kernel::abi::fdflags;
        let mut flags = DescriptorFlags::empty();
        if self.read {
            flags |= DescriptorFlags::READ;
        }
        if self.write {
            flags |= DescriptorFlags::WRITE;
        }
        if self.mutate && self.is_dir() {
            flags |= DescriptorFlags::MUTATE_DIRECTORY;
        }
        if self.sync & fdflags::SYNC != 0 {
            flags |= DescriptorFlags::FILE_INTEGRITY_SYNC;
        }
        if self.sync & fdflags::DSYNC != 0 {
            flags |= DescriptorFlags::DATA_INTEGRITY_SYNC;
        }
        if self.sync & fdflags::RSYNC != 0 {
            flags |= DescriptorFlags::REQUESTED_WRITE_SYNC;
        }
        flags
    }
}

/// What a rep of this context's table stands for.
pub(crate) enum Entry {
    Descriptor(Descriptor),
    /// A `directory-entry-stream`: the entries not yet read.
    Listing(std::vec::IntoIter<DirectoryEntry>),
}

impl VfsCtx {
    /// `preopens`: (guest path, directory node) in order, as the kernel
    /// opens them from the policy.
    pub fn new(preopens: Vec<(String, Arc<dyn Node>)>) -> VfsCtx {
        VfsCtx {
            preopens,
            entries: HashMap::new(),
            next_rep: 1,
            strict_mutate: false,
        }
    }

    /// With `true`, a directory opened without asking for
    /// `mutate-directory` does not have it, as the 0.2 spec says, instead
    /// of inheriting it from the directory it was opened from (the
    /// default, which WASI 0.1 programs need: see the module docs).
    pub fn strict_mutate_directory(mut self, strict: bool) -> VfsCtx {
        self.strict_mutate = strict;
        self
    }

    pub(crate) fn strict_mutate(&self) -> bool {
        self.strict_mutate
    }

    /// The preopened directories, as given.
    pub fn preopens(&self) -> &[(String, Arc<dyn Node>)] {
        &self.preopens
    }

    /// How many descriptors and listings are open.
    pub fn open_count(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn insert(&mut self, entry: Entry) -> wasmtime::Result<u32> {
        if self.entries.len() >= u32::MAX as usize - 1 {
            wasmtime::bail!("wasi:filesystem table is full");
        }
        while self.next_rep == 0 || self.entries.contains_key(&self.next_rep) {
            self.next_rep = self.next_rep.wrapping_add(1);
        }
        let rep = self.next_rep;
        self.next_rep = self.next_rep.wrapping_add(1);
        self.entries.insert(rep, entry);
        Ok(rep)
    }

    pub(crate) fn remove(&mut self, rep: u32) -> wasmtime::Result<Entry> {
        self.entries
            .remove(&rep)
            .ok_or_else(|| wasmtime::format_err!("unknown wasi:filesystem resource {rep}"))
    }

    /// The descriptor behind `fd`; an unknown rep traps (the component
    /// model hands out only reps this table made).
    pub(crate) fn descriptor<T: 'static>(&self, fd: &Resource<T>) -> Result<&Descriptor, FsError> {
        match self.entries.get(&fd.rep()) {
            Some(Entry::Descriptor(d)) => Ok(d),
            _ => Err(FsError::trap(wasmtime::format_err!(
                "unknown descriptor {}",
                fd.rep()
            ))),
        }
    }

    pub(crate) fn listing(
        &mut self,
        rep: u32,
    ) -> Result<&mut std::vec::IntoIter<DirectoryEntry>, FsError> {
        match self.entries.get_mut(&rep) {
            Some(Entry::Listing(l)) => Ok(l),
            _ => Err(FsError::trap(wasmtime::format_err!(
                "unknown directory-entry-stream {rep}"
            ))),
        }
    }
}

/// Access to the [`VfsCtx`] from the store's data.
pub trait VfsView: WasiView {
    /// The filesystem of this instance.
    fn vfs(&mut self) -> &mut VfsCtx;
}

/// The host side of the bindings: the whole store data, from which the
/// [`VfsCtx`] and wasmtime-wasi's `ResourceTable` are borrowed in turn.
pub(crate) struct VfsHost<'a, T>(pub &'a mut T);

impl<T: VfsView> VfsHost<'_, T> {
    pub fn ctx(&mut self) -> &mut VfsCtx {
        self.0.vfs()
    }
    pub fn table(&mut self) -> &mut wasmtime::component::ResourceTable {
        self.0.ctx().table
    }
}

struct HasVfs<T>(PhantomData<fn() -> T>);

impl<T: VfsView + 'static> HasData for HasVfs<T> {
    type Data<'a> = VfsHost<'a, T>;
}

/// Adds `wasi:filesystem/types` and `wasi:filesystem/preopens` (0.2.x) to
/// a linker that has everything else of wasmtime-wasi p2 except these two.
pub fn add_to_linker<T: VfsView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasVfs<T>>(linker, |t| VfsHost(t))?;
    preopens::add_to_linker::<T, HasVfs<T>>(linker, |t| VfsHost(t))?;
    Ok(())
}

impl<T: VfsView> preopens::Host for VfsHost<'_, T> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<types::Descriptor>, String)>> {
        let ctx = self.ctx();
        let preopens = ctx.preopens.clone();
        let mut out = Vec::with_capacity(preopens.len());
        for (guest, node) in preopens {
            let rep = ctx.insert(Entry::Descriptor(Descriptor {
                node,
                read: true,
                write: false,
                mutate: true,
                sync: 0,
            }))?;
            out.push((Resource::new_own(rep), guest));
        }
        Ok(out)
    }
}
