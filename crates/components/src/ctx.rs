//! What a component's store holds: the WASI contexts built from the
//! policy, its resources, and its memory limit.

use crate::http::AllowListHooks;
use std::sync::Arc;
use warden_kernel::note::DenialNotes;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The store data of one component run.
pub struct Host {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http: WasiHttpCtx,
    pub http_hooks: AllowListHooks,
    pub limiter: MemoryLimiter,
    pub notes: Arc<DenialNotes>,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
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

/// The error a memory growth past the limit traps with, as for modules.
pub use warden_kernel::cage::MemoryLimitExceeded;

/// The policy's memory limits over a component's linear memories: each
/// one as a cage's (`max_memory`, past which growth traps), and all of its
/// core instances' together (`max_total_memory`, past which growth fails
/// as on a host out of memory).
pub struct MemoryLimiter {
    each: Option<u64>,
    total: u64,
    used: u64,
}

impl MemoryLimiter {
    pub fn new(each: Option<u64>, total: u64) -> MemoryLimiter {
        MemoryLimiter {
            each,
            total,
            used: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if let Some(limit) = self.each {
            if desired as u64 > limit {
                return Err(MemoryLimitExceeded { limit }.into());
            }
        }
        let more = (desired as u64).saturating_sub(current as u64);
        if self.used + more > self.total {
            return Ok(false);
        }
        self.used += more;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far past real use.
        Ok(desired <= 1 << 20)
    }
}
