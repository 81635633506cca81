//! What a component's store holds: the WASI contexts built from the
//! policy, its resources, and its memory limit.

use crate::fs::{VfsCtx, VfsView};
use crate::http::AllowListHooks;
use std::sync::Arc;
use warden_kernel::cage::Limiter;
use warden_kernel::note::DenialNotes;
use warden_kernel::trace::Tracer;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The store data of one component run.
pub struct Host {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http: WasiHttpCtx,
    /// `wasi:filesystem` 0.2 and 0.3, over the kernel's VFS.
    pub vfs: VfsCtx,
    pub http_hooks: AllowListHooks,
    /// The policy's memory limits, kept as for a cage.
    pub limiter: Limiter,
    pub notes: Arc<DenialNotes>,
    /// Where `--trace` lines go, for the calls the policy stops.
    pub tracer: Option<Arc<Tracer>>,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl VfsView for Host {
    fn vfs(&mut self) -> &mut VfsCtx {
        &mut self.vfs
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}
