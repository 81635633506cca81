//! Loading and running a `wasi:cli/command` component under a policy.

use crate::ctx::Host;
use crate::fs::VfsCtx;
use crate::http::AllowListHooks;
use crate::linker::{self, PolicyStop};
use crate::stdio::DeniedStream;
use crate::trace::ImportTrace;
use crate::world::World;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use warden_kernel::cage::{Limiter, MemoryLimitExceeded};
use warden_kernel::limits::MemoryTotal;
use warden_kernel::note::{Denial, DenialNotes};
use warden_kernel::trace::Tracer;
use warden_kernel::Bundled;
use warden_kernel::{
    CacheMode, CompileEvent, EngineSettings, Kernel, KernelError, Outcome, DEFAULT_MAX_STACK,
};
use warden_policy::{Policy, StdioMode, Subsystem};
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{Config, Engine, OptLevel, Store, Trap};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// Why warden refused to run a component, or could not set it up. All are
/// bad input (exit 2) except [`ComponentError::Host`].
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} is not a valid WebAssembly component: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    World { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Import { path: PathBuf, reason: String },
    #[error("mount `{guest}`: {reason}")]
    Mount { guest: String, reason: String },
    #[error("{0}")]
    Host(String),
}

impl ComponentError {
    /// Bad input that the user can fix; nothing ran.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, ComponentError::Host(_))
    }
}

/// A compiled component and the world it was found to target.
pub struct Loaded {
    pub component: Component,
    pub world: World,
}

/// What a run needs besides the component and the policy.
pub struct ComponentRunOptions {
    /// `argv[0]`.
    pub program: String,
    /// Where the first denial of each subsystem is noted; `None` for none.
    pub notes: Option<Box<dyn std::io::Write + Send>>,
    /// The sealed store, when the policy has sealed mounts.
    pub store: Option<warden_seal::Store>,
    /// The trees of a bundle's mounts.
    pub bundled: Bundled,
    /// Where `--trace` lines go.
    pub tracer: Option<Arc<Tracer>>,
}

/// A wasmtime engine for components, with the settings of a run.
#[derive(Clone)]
pub struct Components {
    engine: Engine,
    settings: EngineSettings,
    /// The tokio runtime of the last run that left no task alive, for the
    /// next run (each run used to build and drop its own). A run takes it
    /// out, so runs on several threads at once never share one.
    idle_runtime: Arc<Mutex<Option<tokio::runtime::Runtime>>>,
    /// Every WASI interface, no subsystem denied: built once per engine.
    linker: Arc<Linker<Host>>,
    /// The engine's part of cache keys ([`warden_kernel::engine_hash`]).
    engine_hash: u64,
}

/// The engine settings every component engine of warden has (`warden run`
/// and `warden serve`, which adds its instance allocator).
pub fn engine_config(settings: &EngineSettings) -> Config {
    let mut config = Config::new();
    config.cranelift_opt_level(OptLevel::Speed);
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.epoch_interruption(true);
    config.consume_fuel(settings.fuel);
    let stack = settings.max_stack.unwrap_or(DEFAULT_MAX_STACK) as usize;
    config.max_wasm_stack(stack);
    config.async_stack_size(stack.max(2 << 20) + (1 << 20));
    config
}

/// Whether `bytes` are a component (as opposed to a core module).
pub fn is_component(bytes: &[u8]) -> bool {
    wasmparser::Parser::is_component(bytes)
}

impl Components {
    pub fn new(settings: EngineSettings) -> wasmtime::Result<Components> {
        let engine = Engine::new(&engine_config(&settings))?;
        Ok(Components {
            linker: Arc::new(linker::base(&engine)?),
            engine_hash: warden_kernel::engine_hash(&engine),
            engine,
            settings,
            idle_runtime: Arc::default(),
        })
    }

    /// A current-thread runtime for one run: the idle one, or a new one.
    fn take_runtime(&self) -> Result<tokio::runtime::Runtime, ComponentError> {
        let idle = self
            .idle_runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match idle {
            Some(runtime) => Ok(runtime),
            None => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ComponentError::Host(format!("cannot start the async runtime: {e}"))),
        }
    }

    /// Keeps a finished run's runtime for the next run if none of its tasks
    /// is alive; otherwise drops it, which ends them, as before.
    fn keep_runtime(&self, runtime: tokio::runtime::Runtime) {
        if runtime.metrics().num_alive_tasks() != 0 {
            return;
        }
        let mut idle = self.idle_runtime.lock().unwrap_or_else(|e| e.into_inner());
        if idle.is_none() {
            *idle = Some(runtime);
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `bytes` (read from `path`), or finds them compiled in
    /// `cache`, and finds the component's world; refuses a component
    /// `warden run` cannot run.
    pub fn load(
        &self,
        path: &Path,
        bytes: &[u8],
        cache: &CacheMode,
        on_event: &mut dyn FnMut(CompileEvent),
    ) -> Result<Loaded, ComponentError> {
        let component =
            cache.get_or_compile(&self.engine, self.engine_hash, bytes, on_event, || {
                self.compile(path, bytes)
            })?;
        self.loaded(path, component)
    }

    /// [`Components::load`] of the file at `path`, which a warm start
    /// finds in the cache without reading it.
    pub fn load_file(
        &self,
        path: &Path,
        cache: &CacheMode,
        on_event: &mut dyn FnMut(CompileEvent),
    ) -> Result<Loaded, ComponentError> {
        let component = cache.get_or_compile_file(
            &self.engine,
            self.engine_hash,
            path,
            on_event,
            |e| ComponentError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
            |bytes| self.compile(path, bytes),
        )?;
        self.loaded(path, component)
    }

    fn compile(&self, path: &Path, bytes: &[u8]) -> Result<Component, ComponentError> {
        Component::new(&self.engine, bytes).map_err(|e| ComponentError::Invalid {
            path: path.to_path_buf(),
            reason: one_line(&format!("{e:#}")),
        })
    }

    /// The component with its world, if `warden run` runs that world.
    fn loaded(&self, path: &Path, component: Component) -> Result<Loaded, ComponentError> {
        let world = World::of(&self.engine, &component);
        if let Some(reason) = world.not_runnable() {
            return Err(ComponentError::World {
                path: path.to_path_buf(),
                reason,
            });
        }
        Ok(Loaded { component, world })
    }

    /// Runs a loaded command component under `policy` and waits for it.
    pub fn run(
        &self,
        path: &Path,
        loaded: &Loaded,
        policy: &Policy,
        options: ComponentRunOptions,
    ) -> Result<Outcome, ComponentError> {
        let notes = Arc::new(DenialNotes::new(options.notes));
        let linker = linker::for_component(&self.linker, &self.engine, &loaded.component, policy)
            .map_err(|e| ComponentError::Host(format!("{e:#}")))?;
        let pre =
            linker
                .instantiate_pre(&loaded.component)
                .map_err(|e| ComponentError::Import {
                    path: path.to_path_buf(),
                    reason: import_error(&e),
                })?;
        let wasi = wasi_ctx(policy, &options.program, &notes)?;
        let vfs = vfs_ctx(policy, options.store.as_ref(), &options.bundled)?;
        let host = Host {
            wasi,
            table: ResourceTable::new(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            vfs,
            http_hooks: AllowListHooks::new(
                if policy.allows(Subsystem::Sockets) {
                    policy.http.clone()
                } else {
                    Vec::new()
                },
                notes.clone(),
            ),
            limiter: Limiter::new(
                policy.limits.max_memory,
                Arc::new(MemoryTotal::new(policy.limits.total_memory())),
            ),
            notes,
            tracer: options.tracer.clone(),
        };
        let mut store = Store::new(&self.engine, host);
        store.limiter(|h| &mut h.limiter);
        if let Some(fuel) = policy.limits.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| ComponentError::Host(format!("{e:#}")))?;
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_trap();
        let timeout = policy.limits.timeout;
        let _watchdog = timeout.map(|t| Watchdog::start(self.engine.clone(), t));

        let runtime = self.take_runtime()?;
        let tracer = options.tracer.clone();
        let run_all = || {
            runtime.block_on(async {
                let run = call_run(&loaded.world, pre, &mut store);
                match timeout {
                    // Past the deadline the watchdog stops wasm code; this
                    // also stops a guest that waits in the host (a sleep, a
                    // read).
                    Some(t) => tokio::time::timeout(t + Duration::from_millis(50), run)
                        .await
                        .unwrap_or_else(|_| Err(Trap::Interrupt.into())),
                    None => run.await,
                }
            })
        };
        let result = match &tracer {
            // The calls are traced on this thread, where the run is driven.
            Some(tracer) => {
                tracing::subscriber::with_default(ImportTrace::subscriber(tracer.clone()), run_all)
            }
            None => run_all(),
        };
        if let Some(tracer) = &tracer {
            tracer.flush();
        }
        // The run's resources go first (the tasks they own are aborted);
        // the runtime is then kept only if no task of the run is left.
        drop(store);
        self.keep_runtime(runtime);
        let outcome = match result {
            Ok(Ok(())) => Outcome::Exited(0),
            Ok(Err(())) => Outcome::Exited(1),
            Err(e) => classify(e, policy, &self.settings),
        };
        Ok(match outcome {
            Outcome::Timeout(_) => Outcome::Timeout(timeout.unwrap_or_default()),
            other => other,
        })
    }
}

/// Instantiates the command and calls its `wasi:cli/run#run`: `Ok(Err(()))`
/// is the guest's own failure status.
async fn call_run(
    world: &World,
    pre: InstancePre<Host>,
    store: &mut Store<Host>,
) -> wasmtime::Result<Result<(), ()>> {
    match world {
        World::CommandP3 => {
            let pre = wasmtime_wasi::p3::bindings::CommandPre::new(pre)?;
            let command = pre.instantiate_async(&mut *store).await?;
            store
                .run_concurrent(async move |store| command.wasi_cli_run().call_run(store).await)
                .await?
        }
        _ => {
            let pre = wasmtime_wasi::p2::bindings::CommandPre::new(pre)?;
            let command = pre.instantiate_async(&mut *store).await?;
            command.wasi_cli_run().call_run(&mut *store).await
        }
    }
}

/// Bumps the engine's epoch once the time limit has passed, which traps
/// wasm code running past its deadline; dropped when the run ends.
struct Watchdog {
    _done: mpsc::Sender<()>,
}

impl Watchdog {
    fn start(engine: Engine, limit: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                engine.increment_epoch();
            }
        });
        Watchdog { _done: tx }
    }
}

/// The WASI context the policy describes.
fn wasi_ctx(
    policy: &Policy,
    program: &str,
    notes: &Arc<DenialNotes>,
) -> Result<WasiCtx, ComponentError> {
    let mut b = WasiCtxBuilder::new();
    b.arg(program);
    b.args(&policy.args);
    if policy.allows(Subsystem::Env) {
        b.envs(&policy.env);
    }
    match policy.stdio.stdin {
        StdioMode::Allow => {
            b.inherit_stdin();
        }
        StdioMode::Ignore => {}
        StdioMode::Deny => {
            b.stdin(DeniedStream::new(0, notes.clone()));
        }
    }
    for (fd, mode) in [(1u8, policy.stdio.stdout), (2, policy.stdio.stderr)] {
        match (fd, mode) {
            (1, StdioMode::Allow) => b.inherit_stdout(),
            (_, StdioMode::Allow) => b.inherit_stderr(),
            (1, StdioMode::Ignore) => b.stdout(wasmtime_wasi::p2::pipe::SinkOutputStream),
            (_, StdioMode::Ignore) => b.stderr(wasmtime_wasi::p2::pipe::SinkOutputStream),
            (1, StdioMode::Deny) => b.stdout(DeniedStream::new(1, notes.clone())),
            (_, StdioMode::Deny) => b.stderr(DeniedStream::new(2, notes.clone())),
        };
    }
    // Files are warden's VFS for both versions (see `vfs_ctx`): the
    // context has no preopens of its own.
    // Sockets may be made; what they bind, connect or send to is checked
    // against the policy, so that a denial is noted.
    b.allow_tcp(true).allow_udp(true);
    if policy.allows(Subsystem::Sockets) && !policy.net.is_empty() {
        let rules = Arc::new(policy.net.clone());
        let notes = notes.clone();
        b.allow_ip_name_lookup(true);
        b.socket_addr_check(move |addr, use_| {
            // Binding to any address on an ephemeral port is what a connect
            // does implicitly; what the socket then connects to, listens on
            // or sends to is checked on its own.
            let ephemeral = matches!(use_, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind)
                && addr.ip().is_unspecified()
                && addr.port() == 0;
            let allowed = ephemeral || rules.iter().any(|r| r.allows(&addr));
            if !allowed {
                notes.denied(Denial::Net);
            }
            Box::pin(async move { allowed })
        });
    } else {
        let notes = notes.clone();
        let policy_sockets = policy.allows(Subsystem::Sockets);
        b.socket_addr_check(move |_addr, _use| {
            notes.denied(if policy_sockets {
                Denial::Net
            } else {
                Denial::Subsystem(Subsystem::Sockets)
            });
            Box::pin(async { false })
        });
    }
    Ok(b.build())
}

/// The policy's mounts, opened by the kernel as for a core module.
fn vfs_ctx(
    policy: &Policy,
    store: Option<&warden_seal::Store>,
    bundled: &Bundled,
) -> Result<VfsCtx, ComponentError> {
    if !policy.allows(Subsystem::Fs) {
        return Ok(VfsCtx::new(Vec::new()));
    }
    let preopens = Kernel::preopens(policy, store, bundled).map_err(|e| match e {
        KernelError::Mount { guest, reason } => ComponentError::Mount { guest, reason },
        other => ComponentError::Host(other.to_string()),
    })?;
    Ok(VfsCtx::new(preopens))
}

/// How a run ended, from the error its call returned.
fn classify(err: wasmtime::Error, policy: &Policy, settings: &EngineSettings) -> Outcome {
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Outcome::Exited(exit.0 as u32);
    }
    if let Some(stop) = err.downcast_ref::<PolicyStop>() {
        return match stop {
            PolicyStop::ExitDenied { code, .. } => Outcome::ExitDenied(*code),
            denied => Outcome::Trapped(denied.to_string()),
        };
    }
    if let Some(limit) = err.downcast_ref::<MemoryLimitExceeded>() {
        return Outcome::MemoryLimit(limit.limit);
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => Outcome::FuelExhausted(policy.limits.fuel.unwrap_or(0)),
            Trap::StackOverflow => {
                Outcome::StackOverflow(settings.max_stack.unwrap_or(DEFAULT_MAX_STACK))
            }
            Trap::Interrupt => Outcome::Timeout(Duration::ZERO),
            other => Outcome::Trapped(
                other
                    .to_string()
                    .trim_start_matches("wasm trap: ")
                    .to_string(),
            ),
        };
    }
    Outcome::Trapped(one_line(&format!("{err:#}")))
}

/// What a component imports that warden does not provide, in one line.
pub fn import_error(err: &wasmtime::Error) -> String {
    let text = one_line(&format!("{err:#}"));
    format!("{text} (warden provides WASI 0.2 and 0.3: wasi:cli, wasi:clocks, wasi:filesystem, wasi:http, wasi:io, wasi:random, wasi:sockets)")
}

pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
