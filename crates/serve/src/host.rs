//! What one request's store holds, and the imports every app gets.

use crate::logging::AppLog;
use std::sync::Arc;
use warden_components::fs::{VfsCtx, VfsView};
use warden_components::http::AllowListHooks;
use warden_components::linker::{self, Denials};
use warden_kernel::cage::Limiter;
use warden_kernel::note::DenialNotes;
use warden_kernel::trace::Tracer;
use warden_keyvalue::{KeyValueCtx, KeyValueCtxView, KeyValueView};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::Engine;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The store data of one request.
pub struct AppHost {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http: WasiHttpCtx,
    /// Outbound HTTP only to the app's origins.
    pub http_hooks: AllowListHooks,
    /// `wasi:filesystem` over the app's mounts (sealed, virtual, bundled;
    /// host directories only where the manifest grants them).
    pub vfs: VfsCtx,
    pub log: AppLog,
    /// `wasi:keyvalue` over the app's namespaces of the sealed store.
    pub kv: KeyValueCtx,
    pub config: Arc<WasiConfigVariables>,
    /// The app's memory limit for this request's instance.
    pub limiter: Limiter,
    /// Shared by the app's requests: a denial is logged once per app.
    pub notes: Arc<DenialNotes>,
    /// Where the request's failure, if any, is reported.
    pub failure: Option<tokio::sync::oneshot::Sender<crate::app::Failure>>,
}

impl WasiView for AppHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl VfsView for AppHost {
    fn vfs(&mut self) -> &mut VfsCtx {
        &mut self.vfs
    }
}

impl WasiHttpView for AppHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl KeyValueView for AppHost {
    fn keyvalue(&mut self) -> KeyValueCtxView<'_> {
        KeyValueCtxView {
            ctx: &mut self.kv,
            table: &mut self.table,
        }
    }
}

impl Denials for AppHost {
    fn notes(&self) -> &DenialNotes {
        &self.notes
    }
    fn tracer(&self) -> Option<&Arc<Tracer>> {
        None
    }
}

/// Every import an app may use, no subsystem denied: WASI 0.2 and 0.3
/// without `wasi:sockets`, `wasi:http` (incoming and outbound),
/// `wasi:keyvalue` (both drafts), `wasi:logging`, `wasi:config`. Built
/// once per engine.
pub fn base_linker(engine: &Engine) -> wasmtime::Result<Linker<AppHost>> {
    let mut l = Linker::<AppHost>::new(engine);
    linker::add_wasi_p2_without_sockets(&mut l)?;
    linker::add_wasi_p3_without_sockets(&mut l)?;
    warden_components::http::add_to_linker(&mut l)?;
    warden_keyvalue::add_to_linker(&mut l)?;
    crate::logging::add_to_linker(&mut l, |h| &mut h.log)?;
    wasmtime_wasi_config::add_to_linker(&mut l, |h| WasiConfig::from(&*h.config))?;
    Ok(l)
}
