//! `wasi:filesystem` 0.2 and 0.3 over the kernel's VFS.
//!
//! Components get their files from the same [`Node`]s as core modules, so
//! host, virtual, sealed and bundled mounts behave alike for both ABIs and
//! paths stay inside their mount by the same code. Everything else of
//! WASI is wasmtime-wasi's; this module links only
//! `wasi:filesystem/types` and `wasi:filesystem/preopens` of each version
//! ([`add_to_linker`] for 0.2, [`add_p3_to_linker`] for 0.3), through
//! wasmtime-wasi's own generated bindings so that streams, futures and
//! errors interoperate with the rest.
//!
//! Layout: `ops` does what both versions do, on kernel types (lookups,
//! rights checks, VFS calls, failing with an `Errno`); `node_io` reads and
//! writes a node for both versions' streams; `convert` writes each
//! version's conversions from one macro; `p2` and `p3` are the bindings'
//! host traits, thin over those.
//!
//! Descriptors of both versions (and 0.2's `directory-entry-stream`) live
//! in one table of the [`VfsCtx`], keyed by the resource's rep. 0.2's
//! streams live in wasmtime-wasi's `ResourceTable` like every `wasi:io`
//! stream; 0.3's are component-model streams owned by the store.
//!
//! Rights: a file descriptor reads unless it was opened only for `write`
//! (as wasmtime-wasi), and writes only if opened with `write`, `create`
//! or `truncate` (as wasmtime-wasi; `bad-descriptor` otherwise, POSIX's
//! `EBADF`). A directory descriptor
//! without `mutate-directory` creates, removes, renames, links and sets
//! times of nothing and hands out no descriptor that could (`read-only`,
//! as the spec says). Preopens have `read` and `mutate-directory`; a
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
//! spec's behaviour. Either way `get-flags` reports the flags the
//! descriptor was opened with (as wasmtime-wasi, and as the 0.3 test
//! suite checks), not what it inherited.

mod convert;
mod errors;
mod node_io;
mod ops;
mod p2;
mod p3;

pub use errors::StreamFailure;
pub use p2::{add_to_linker, error_code};
pub use p3::{add_p3_to_linker, error_code as error_code_p3};

use ops::{Fail, Kind, Res};
use std::marker::PhantomData;
use std::sync::Arc;
use warden_kernel::vfs::Node;
use wasmtime::component::{HasData, Resource};
// The `descriptor` resource of both versions' bindings.
use wasmtime_wasi::filesystem::Descriptor as FsDescriptor;
use wasmtime_wasi::WasiView;

/// What the filesystem of one component instance holds: its preopened
/// directories and the descriptors and directory listings it has open.
pub struct VfsCtx {
    preopens: Vec<(String, Arc<dyn Node>)>,
    /// Descriptors and listings; an entry's rep is its slot + 1 (no rep
    /// is 0).
    entries: slab::Slab<Entry>,
    strict_mutate: bool,
}

/// An open `descriptor`: a node and what it may do.
pub(crate) struct Descriptor {
    pub node: Arc<dyn Node>,
    /// `descriptor-flags::read`.
    pub read: bool,
    /// `descriptor-flags::write` (files only).
    pub write: bool,
    /// A directory: it may mutate (asked for, or inherited: see the
    /// module docs). A file: the directory it was opened from could, so
    /// that its metadata may change.
    pub mutate: bool,
    /// A directory opened with `descriptor-flags::mutate-directory` (or a
    /// preopen): what `get-flags` reports, as fcntl(2)'s `F_GETFL` reports
    /// the flags a file was opened with, whatever it inherited.
    pub mutate_asked: bool,
    /// The sync flags it was opened with, as kernel `fdflags`.
    pub sync: u16,
}

impl Descriptor {
    pub fn is_dir(&self) -> bool {
        self.node.as_dir().is_some()
    }
}

/// What a rep of this context's table stands for.
pub(crate) enum Entry {
    Descriptor(Descriptor),
    /// A `directory-entry-stream` (0.2): the entries not yet read.
    Listing(std::vec::IntoIter<(String, Kind)>),
}

/// The slot of `rep` in [`VfsCtx::entries`] (rep 0, never handed out,
/// maps to no slot).
fn slot(rep: u32) -> usize {
    (rep as usize).wrapping_sub(1)
}

impl VfsCtx {
    /// `preopens`: (guest path, directory node) in order, as the kernel
    /// opens them from the policy.
    pub fn new(preopens: Vec<(String, Arc<dyn Node>)>) -> VfsCtx {
        VfsCtx {
            preopens,
            entries: slab::Slab::new(),
            strict_mutate: false,
        }
    }

    /// With `true`, a directory opened without asking for
    /// `mutate-directory` does not have it, as the spec says, instead
    /// of inheriting it from the directory it was opened from (the
    /// default, which WASI 0.1 programs need: see the module docs).
    pub fn strict_mutate_directory(mut self, strict: bool) -> VfsCtx {
        self.strict_mutate = strict;
        self
    }

    /// The preopened directories, as given.
    pub fn preopens(&self) -> &[(String, Arc<dyn Node>)] {
        &self.preopens
    }

    /// How many descriptors and listings are open.
    pub fn open_count(&self) -> usize {
        self.entries.len()
    }

    /// The entries a `directory-entry-stream` has not yet given.
    pub(crate) fn listing(&mut self, rep: u32) -> Res<&mut std::vec::IntoIter<(String, Kind)>> {
        match self.entries.get_mut(slot(rep)) {
            Some(Entry::Listing(l)) => Ok(l),
            _ => Err(Fail::Trap(wasmtime::format_err!(
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

    /// `get-directories` of either version: a new descriptor for each
    /// preopen, and its guest path.
    pub fn get_preopens(&mut self) -> wasmtime::Result<Vec<(Resource<FsDescriptor>, String)>> {
        let dirs = self.ctx().open_preopens()?;
        Ok(dirs
            .into_iter()
            .map(|(rep, guest)| (Resource::new_own(rep), guest))
            .collect())
    }

    /// Drops a resource of either version.
    pub fn drop_rep(&mut self, rep: u32) -> wasmtime::Result<()> {
        self.ctx().remove(rep)?;
        Ok(())
    }
}

/// The [`HasData`] of both versions' bindings.
pub(crate) struct HasVfs<T>(PhantomData<fn() -> T>);

impl<T: VfsView + 'static> HasData for HasVfs<T> {
    type Data<'a> = VfsHost<'a, T>;
}
