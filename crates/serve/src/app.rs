//! One app, loaded: its component compiled and pre-instantiated, its mounts
//! opened, and a handler that gives every request a fresh instance.

use crate::host::AppHost;
use crate::log::LineLog;
use crate::logging::AppLog;
use crate::manifest::AppSpec;
use crate::metrics::{AppMetrics, Metrics};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::collections::HashMap;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;
use warden_components::fs::VfsCtx;
use warden_components::http::AllowListHooks;
use warden_components::World;
use warden_kernel::cage::{Limiter, MemoryLimitExceeded};
use warden_kernel::limits::MemoryTotal;
use warden_kernel::note::DenialNotes;
use warden_kernel::{Bundled, CacheMode, Kernel, Preopen};
use warden_keyvalue::KeyValueCtx;
use warden_policy::{Policy, StdioMode, Subsystem};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreContextMut, Trap};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept,
    WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

/// Period of the engine's epoch ticker; request time limits are counted
/// in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Why an app could not be loaded: one line naming the app.
#[derive(Debug, thiserror::Error)]
#[error("app `{app}`: {reason}")]
pub struct LoadError {
    pub app: String,
    pub reason: String,
}

/// What every app of a server shares: the engine, the imports, the
/// compile cache, the sealed store, the metrics.
#[derive(Clone)]
pub struct Runtime {
    pub engine: Engine,
    pub linker: Arc<Linker<AppHost>>,
    pub cache: Arc<CacheMode>,
    pub store: warden_seal::Store,
    pub metrics: Arc<Metrics>,
    /// Refuses a policy before its app loads (the CLI's check that no
    /// mount reaches warden's own state).
    pub check_policy: PolicyCheck,
}

/// A check of an app's policy: `Err` is the reason it is refused.
pub type PolicyCheck = Arc<dyn Fn(&Policy) -> Result<(), String> + Send + Sync>;

/// When a file was last seen: a changed stamp means a redeploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamp {
    pub fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }
}

/// A loaded app.
pub struct App {
    pub spec: AppSpec,
    /// The compiled code and the SHA-256 of its bytes.
    pub component: Component,
    pub code_digest: String,
    /// `sha256:HEX` of the component (or bundle) file.
    pub digest: String,
    /// The file as it was when loaded.
    pub stamp: Option<FileStamp>,
    handler: ProxyHandler<AppState>,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
}

/// What the app's requests share.
struct Shared {
    name: Arc<str>,
    policy: Policy,
    preopens: Vec<Preopen>,
    config: Arc<WasiConfigVariables>,
    notes: Arc<DenialNotes>,
    memory: Arc<MemoryTotal>,
    timeout: Duration,
    metrics: AppMetrics,
    /// The sealed store, for `wasi:keyvalue`.
    store: warden_seal::Store,
    kv_labels: Arc<[String]>,
    kv_ops: Arc<AtomicU64>,
    /// Origins for outbound HTTP (none unless sockets are allowed).
    origins: Arc<Vec<warden_policy::HttpOrigin>>,
}

impl App {
    /// Compiles (or finds in the cache) and checks the app's component,
    /// and opens its mounts; nothing is served yet.
    /// `compiled`: the components already loaded in this deployment (and
    /// the one before), by the digest of their code, so that apps of one
    /// component share its code.
    pub fn load(
        rt: &Runtime,
        spec: AppSpec,
        compiled: &mut HashMap<String, Component>,
    ) -> Result<App, LoadError> {
        let fail = |reason: String| LoadError {
            app: spec.name.clone(),
            reason,
        };
        (rt.check_policy)(&spec.policy).map_err(fail)?;
        let path = &spec.component;
        let stamp = FileStamp::of(path);
        let bytes = std::fs::read(path)
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
        let digest = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
        let (code, policy, bundled) = if warden_bundle::is_bundle(&bytes) {
            let (code, policy, bundled) = bundle_code(&spec, &bytes).map_err(fail)?;
            // A bundle's own host mounts are checked as the manifest's are.
            (rt.check_policy)(&policy).map_err(fail)?;
            (code, policy, bundled)
        } else {
            (bytes, spec.policy.clone(), Bundled::new())
        };
        if !warden_components::is_component(&code) {
            return Err(fail(format!(
                "{} is not a component (`warden serve` serves `wasi:http` components)",
                path.display()
            )));
        }
        let code_digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&code));
        let component = match compiled.get(&code_digest) {
            Some(component) => component.clone(),
            None => {
                let component = rt
                    .cache
                    .get_or_compile(
                        &rt.engine,
                        warden_kernel::engine_hash(&rt.engine),
                        &code,
                        &mut |_| {},
                        || {
                            Component::new(&rt.engine, &code).map_err(|e| {
                                format!(
                                    "{} is not a valid WebAssembly component: {}",
                                    path.display(),
                                    warden_components::one_line(&format!("{e:#}"))
                                )
                            })
                        },
                    )
                    .map_err(fail)?;
                compiled.insert(code_digest.clone(), component.clone());
                component
            }
        };
        let Some(export) = World::http_handler(&rt.engine, &component) else {
            let world = World::of(&rt.engine, &component);
            return Err(fail(format!(
                "{} does not export `wasi:http/incoming-handler@0.2` or `wasi:http/handler@0.3`: {}",
                path.display(),
                match world.not_runnable() {
                    None => "it is a `wasi:cli/command` (run it with `warden run`)".to_string(),
                    Some(why) => why,
                }
            )));
        };
        let linker =
            warden_components::linker::for_component(&rt.linker, &rt.engine, &component, &policy)
                .map_err(|e| fail(format!("{e:#}")))?;
        let pre = linker.instantiate_pre(&component).map_err(|e| {
            fail(format!(
                "{}: {}",
                path.display(),
                warden_components::import_error(&e).replace(
                    "wasi:random, wasi:sockets)",
                    "wasi:random, wasi:keyvalue, wasi:logging, wasi:config; not wasi:sockets)"
                )
            ))
        })?;
        let pre = if export.starts_with("wasi:http/handler@") {
            wasmtime_wasi_http::p3::bindings::ServicePre::new(pre).map(ProxyPre::P3)
        } else {
            wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre).map(ProxyPre::P2)
        }
        .map_err(|e| fail(format!("{e:#}")))?;
        let preopens = if policy.allows(Subsystem::Fs) {
            Kernel::preopens(&policy, Some(&rt.store), &bundled).map_err(|e| fail(e.to_string()))?
        } else {
            Vec::new()
        };
        let name: Arc<str> = Arc::from(spec.name.as_str());
        let max_memory = policy
            .limits
            .max_memory
            .unwrap_or(crate::manifest::DEFAULT_MAX_MEMORY);
        let shared = Arc::new(Shared {
            name: name.clone(),
            preopens,
            config: Arc::new(spec.variables.iter().cloned().collect()),
            notes: Arc::new(DenialNotes::new(Some(Box::new(LineLog::new(
                name.clone(),
                "denied",
            ))))),
            memory: Arc::new(MemoryTotal::new(
                max_memory.saturating_mul(u64::from(spec.limits.max_concurrent)),
            )),
            timeout: spec.limits.timeout,
            metrics: AppMetrics::new(&rt.metrics, &spec.name),
            store: rt.store.clone(),
            kv_labels: spec.kv_labels.iter().cloned().collect(),
            kv_ops: Arc::new(AtomicU64::new(0)),
            origins: Arc::new(if policy.allows(Subsystem::Sockets) {
                policy.http.clone()
            } else {
                Vec::new()
            }),
            policy,
        });
        let state = AppState {
            engine: rt.engine.clone(),
            pre,
            shared: shared.clone(),
        };
        Ok(App {
            component,
            code_digest,
            permits: Arc::new(Semaphore::new(spec.limits.max_concurrent as usize)),
            handler: ProxyHandler::new(state),
            digest,
            stamp,
            shared,
            spec,
        })
    }

    /// Serves one request: a fresh instance, the app's limits, and a
    /// response that shows nothing of warden's internals when the guest
    /// fails (the log says why).
    /// The policy the app runs under (a bundle's, narrowed by the manifest).
    pub fn policy(&self) -> &Policy {
        &self.shared.policy
    }

    pub async fn handle(&self, req: http::Request<WasiBody>) -> http::Response<WasiBody> {
        let metrics = &self.shared.metrics;
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            metrics.rejected.inc();
            metrics.request(503);
            return plain(503, "the app is at its concurrency limit; try again\n");
        };
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let max_body = self.spec.limits.max_body_size;
        if declared.is_some_and(|n| n > max_body) {
            metrics.rejected.inc();
            metrics.request(413);
            return plain(413, &format!("request body larger than {max_body} bytes\n"));
        }
        let req = req.map(move |body| {
            http_body_util::Limited::new(body, max_body as usize)
                .map_err(move |e| match e.downcast::<wasmtime_wasi_http::Error>() {
                    Ok(e) => *e,
                    Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max_body)),
                })
                .boxed_unsync()
        });
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let start = Instant::now();
        let (cause_tx, cause_rx) = tokio::sync::oneshot::channel();
        let unavailable = Arc::new(AtomicBool::new(false));
        let data = RequestData {
            failure: cause_tx,
            store_unavailable: unavailable.clone(),
        };
        let response = match self.handler.handle(data, req).await {
            // The store could not be reached: whatever the app made of
            // that, the request can succeed later.
            _ if unavailable.load(Ordering::Relaxed) => {
                crate::log::line(
                    &self.shared.name,
                    "error",
                    &format!("{method} {path}: the sealed store is unreachable"),
                );
                let mut res = plain(503, "the app's store is unreachable; try again\n");
                res.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static("1"),
                );
                res
            }
            Ok(response) => response,
            Err(e) => {
                // The handler's error may only say that no response came;
                // the worker's own error (the trap) says why.
                let failure = match Failure::of(&e) {
                    Failure::Other(_) => {
                        match tokio::time::timeout(Duration::from_secs(1), cause_rx).await {
                            Ok(Ok(failure)) => failure,
                            _ => Failure::of(&e),
                        }
                    }
                    known => known,
                };
                let (status, cause) = self.describe(failure);
                crate::log::line(
                    &self.shared.name,
                    "error",
                    &format!("{method} {path}: {cause}"),
                );
                plain(
                    status,
                    if status == 504 {
                        "request timed out\n"
                    } else {
                        "internal error\n"
                    },
                )
            }
        };
        metrics.latency.observe(start.elapsed().as_secs_f64());
        metrics.request(response.status().as_u16());
        response
    }

    /// The status a failed request gets, and its cause for the log.
    fn describe(&self, failure: Failure) -> (u16, String) {
        let m = &self.shared.metrics;
        let cause = match failure {
            Failure::Timeout => {
                m.timeouts.inc();
                return (
                    504,
                    format!("stopped at its time limit ({:?})", self.spec.limits.timeout),
                );
            }
            Failure::Memory(limit) => format!("stopped at its memory limit ({limit} bytes)"),
            Failure::Fuel => format!(
                "stopped when its fuel ran out ({})",
                self.shared.policy.limits.fuel.unwrap_or(0)
            ),
            Failure::Other(text) => text,
        };
        m.traps.inc();
        (500, cause)
    }
}

/// Why a request's instance failed.
#[derive(Debug)]
pub enum Failure {
    Timeout,
    /// The memory limit, in bytes.
    Memory(u64),
    Fuel,
    /// A trap or another error, in one line.
    Other(String),
}

impl Failure {
    fn of(e: &wasmtime::Error) -> Failure {
        let text = format!("{e:#}");
        // A worker past its deadline fails with a plain "guest timed out"
        // error (wasmtime-wasi-http's handler), not an `ExpirationError`.
        if e.downcast_ref::<ExpirationError>().is_some()
            || matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt))
            || text.ends_with("guest timed out")
        {
            return Failure::Timeout;
        }
        if let Some(limit) = e.downcast_ref::<MemoryLimitExceeded>() {
            return Failure::Memory(limit.limit);
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => Failure::Fuel,
            // The trap itself, without the wasm backtrace.
            Some(trap) => Failure::Other(format!(
                "trapped: {}",
                trap.to_string().trim_start_matches("wasm trap: ")
            )),
            None => Failure::Other(warden_components::one_line(&text)),
        }
    }
}

/// A bundle's component, its policy (narrowed by the app's limits) and
/// its trees.
/// The policy an app runs under: the manifest's, or a bundle's narrowed by
/// the manifest (what [`App::load`] uses, without compiling anything).
pub fn effective_policy(spec: &AppSpec, bytes: &[u8]) -> Result<Policy, String> {
    if warden_bundle::is_bundle(bytes) {
        Ok(bundle_code(spec, bytes)?.1)
    } else {
        Ok(spec.policy.clone())
    }
}

fn bundle_code(spec: &AppSpec, bytes: &[u8]) -> Result<(Vec<u8>, Policy, Bundled), String> {
    let bundle =
        warden_bundle::open(bytes).map_err(|e| format!("{}: {e}", spec.component.display()))?;
    if bundle.kind != warden_bundle::CodeKind::Component {
        return Err(format!(
            "{} holds a core module; `warden serve` serves components",
            spec.component.display()
        ));
    }
    // The bundle's policy is sealed in it: the manifest may narrow its
    // limits, nothing else.
    let mut given = spec.policy.clone();
    given.limits = Default::default();
    given
        .env
        .retain(|(k, _)| k != "WARDEN_APP" && k != "WARDEN_APP_VERSION");
    if given != Policy::default() {
        return Err(format!(
            "{} is a bundle, whose policy is sealed in it: give the app only `limits` (to narrow it), not env, mounts, stdio or allow",
            spec.component.display()
        ));
    }
    let mut policy = bundle.policy.clone();
    let mine = &spec.policy.limits;
    let narrower = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    policy.limits.max_memory = narrower(policy.limits.max_memory, mine.max_memory);
    policy.limits.fuel = narrower(policy.limits.fuel, mine.fuel);
    policy.limits.timeout = match (policy.limits.timeout, mine.timeout) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    crate::manifest::for_app(&mut policy, &spec.name);
    if policy.allows(warden_policy::Subsystem::Env) {
        for (k, v) in &spec.policy.env {
            policy.set_env(k, v);
        }
    }
    Ok((bundle.code.to_vec(), policy, bundle.trees))
}

/// A short plain-text response of warden's own.
pub fn plain(status: u16, text: &str) -> http::Response<WasiBody> {
    let mut res = http::Response::new(
        Full::new(Bytes::from(text.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *res.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// The `ProxyHandler` state of one app.
struct AppState {
    engine: Engine,
    pre: ProxyPre<AppHost>,
    shared: Arc<Shared>,
}

impl Shared {
    /// `wasi:keyvalue` for a request: the app's granted labels over the
    /// sealed store.
    fn keyvalue(&self) -> KeyValueCtx {
        KeyValueCtx::new(
            self.store.clone(),
            &self.name,
            self.kv_labels.clone(),
            self.kv_ops.clone(),
        )
    }

    /// The store data of a new request.
    fn host(&self) -> AppHost {
        let p = &self.policy;
        let mut b = WasiCtxBuilder::new();
        b.arg(&*self.name);
        b.args(&p.args);
        if p.allows(Subsystem::Env) {
            b.envs(&p.env);
        }
        // Apps have no terminal: stdin is empty, output goes to the log
        // unless the manifest says to drop it.
        for (fd, mode) in [(1u8, p.stdio.stdout), (2, p.stdio.stderr)] {
            let stream = if fd == 1 { "stdout" } else { "stderr" };
            match mode {
                StdioMode::Ignore | StdioMode::Deny => {
                    if fd == 1 {
                        b.stdout(wasmtime_wasi::p2::pipe::SinkOutputStream);
                    } else {
                        b.stderr(wasmtime_wasi::p2::pipe::SinkOutputStream);
                    }
                }
                StdioMode::Allow => {
                    let log = LineLog::new(self.name.clone(), stream);
                    if fd == 1 {
                        b.stdout(log);
                    } else {
                        b.stderr(log);
                    }
                }
            }
        }
        AppHost {
            wasi: b.build(),
            table: ResourceTable::new(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            http_hooks: AllowListHooks::shared(self.origins.clone(), self.notes.clone()),
            vfs: VfsCtx::new(self.preopens.clone()),
            log: AppLog {
                app: self.name.clone(),
            },
            kv: self.keyvalue(),
            config: self.config.clone(),
            limiter: Limiter::new(p.limits.max_memory, self.memory.clone()),
            notes: self.notes.clone(),
            failure: None,
        }
    }
}

impl HandlerState for AppState {
    type StoreData = AppHost;
    type WorkerExpiration = Deadline;
    type WorkerState = OneRequest;

    async fn instantiate(&self) -> wasmtime::Result<Instance<AppHost, Deadline, OneRequest>> {
        let shared = &self.shared;
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + shared.timeout;
        let mut store = Store::new(&self.engine, shared.host());
        store.limiter(|h| &mut h.limiter);
        let fuel = shared.policy.limits.fuel;
        match fuel {
            Some(fuel) => store.set_fuel(fuel)?,
            // An engine with fuel (another app has a limit) starts every
            // store at zero: this app has none. Without fuel this fails,
            // which is fine.
            None => {
                let _ = store.set_fuel(u64::MAX);
            }
        }
        let ticks = shared.timeout.as_millis() / EPOCH_TICK.as_millis() + 1;
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();
        let proxy = self.pre.instantiate_async(&mut store).await?;
        shared
            .metrics
            .instantiation
            .observe(start.elapsed().as_secs_f64());
        Ok(Instance {
            store,
            proxy,
            view: <AppHost as WasiHttpView>::http,
            expiration: Deadline {
                sleep: Box::pin(tokio::time::sleep_until(deadline)),
            },
            state: OneRequest {
                deadline,
                fuel,
                shared: shared.clone(),
            },
        })
    }
}

/// A request's instance expires at its time limit, or at once when it has
/// answered and has nothing left to do.
pub struct Deadline {
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for Deadline {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        state: WorkerStatus,
        _start: Instant,
    ) -> Poll<()> {
        match state {
            WorkerStatus::Idle => Poll::Ready(()),
            WorkerStatus::Requests | WorkerStatus::PostReturn => {
                std::future::Future::poll(self.sleep.as_mut(), cx)
            }
        }
    }
}

/// What a request hands its worker.
pub struct RequestData {
    /// Where the worker says why it failed, if it does.
    failure: tokio::sync::oneshot::Sender<Failure>,
    /// Set when a store operation of the request found the store
    /// unreachable (the request is answered 503).
    store_unavailable: Arc<AtomicBool>,
}

/// A worker handles exactly one request: every request gets a fresh
/// instance, so nothing one request leaves in memory reaches another.
pub struct OneRequest {
    deadline: tokio::time::Instant,
    fuel: Option<u64>,
    shared: Arc<Shared>,
}

impl WorkerState for OneRequest {
    type StoreData = AppHost;
    /// Where the worker says why it failed, if it does.
    type RequestData = RequestData;

    fn should_accept_request(&self, _concurrent: usize, total: usize) -> ShouldAccept {
        if total == 0 {
            ShouldAccept::Yes
        } else {
            ShouldAccept::Never
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, AppHost>,
        data: RequestData,
        _task: wasmtime::component::GuestTaskId,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + Sync>> {
        store.data_mut().failure = Some(data.failure);
        store.data_mut().kv.unavailable_flag(data.store_unavailable);
        Box::pin(tokio::time::sleep_until(self.deadline))
    }

    fn drop(&self, mut store: Store<AppHost>, result: wasmtime::Result<()>) {
        let shared = &self.shared;
        let ops = shared.kv_ops.swap(0, Ordering::Relaxed);
        if ops > 0 {
            shared.metrics.kv_operations.inc_by(ops);
        }
        if let (Err(e), Some(tx)) = (result, store.data_mut().failure.take()) {
            let _ = tx.send(Failure::of(&e));
        }
        if let (Some(budget), Ok(left)) = (self.fuel, store.get_fuel()) {
            shared.metrics.fuel.inc_by(budget.saturating_sub(left));
        }
        shared
            .metrics
            .memory_peak
            .observe(store.data().limiter.counted() as f64);
        drop(store);
        shared.metrics.memory_in_use.set(shared.memory.used());
    }
}
