//! warden's kernel: its own implementation of `wasi_snapshot_preview1` over
//! its own fd table and VFS, and the machinery that loads, caches, runs
//! and stops cages on wasmtime.
//!
//! The flow is [`Kernel::new`] (one engine per set of engine settings),
//! [`Kernel::load`] (validate, compile or fetch from the cache, check
//! imports and the entrypoint; [`Kernel::load_bytes`] for code already in
//! memory, such as a bundle's), then [`Kernel::run`] (build the cage from
//! the policy, run it on its own thread, classify how it ended).
//! [`Kernel::preopens`] is the one place where a policy's mounts become
//! the nodes a guest sees.

pub mod abi;
mod cache;
pub mod cage;
pub mod fdtable;
pub mod group;
pub mod hostfds;
pub mod limits;
pub mod memory;
pub mod note;
pub mod process;
pub mod procs;
mod run;
pub mod syscalls;
pub mod threads;
pub mod trace;
pub mod vfs;

pub use cache::{engine_hash, Artifact, CacheMode, CompileEvent};
pub use run::{Bundled, Outcome, Preopen, RunOptions};

use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::{Config, Engine, Linker, Module, OptLevel};

/// Why warden refused to run a module, or could not set it up. These are
/// bad input (exit 2) except [`KernelError::Setup`] and [`KernelError::Host`].
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cannot read module {path}: {reason}")]
    ReadModule { path: PathBuf, reason: String },
    #[error(
        "{path} is not a WebAssembly file (it does not start with `\\0asm` and is not WAT text)"
    )]
    NotWasm { path: PathBuf },
    #[error("{path} is a WebAssembly component; `warden run` runs core modules (wasm32-wasip1), components are not supported yet")]
    Component { path: PathBuf },
    #[error("{path} is not a valid WebAssembly module: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path} is precompiled native code; pass --allow-precompiled to run it (only for files you compiled yourself)")]
    Precompiled { path: PathBuf },
    #[error("{path} imports `{module}::{name}` ({kind}), which warden does not provide")]
    UnknownImport {
        path: PathBuf,
        module: String,
        name: String,
        kind: String,
    },
    #[error("{path} has no export `{name}` to run (function exports: {available})")]
    NoEntrypoint {
        path: PathBuf,
        name: String,
        available: String,
    },
    #[error("{path} is a reactor (it exports `_initialize` and no `_start`): name the export to call with --entrypoint")]
    Reactor { path: PathBuf },
    #[error("{path}: export `{name}` must take no arguments and return nothing or an i32")]
    BadEntrypoint { path: PathBuf, name: String },
    #[error("mount `{guest}`: {reason}")]
    Mount { guest: String, reason: String },
    #[error("--listen {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("cannot set up the cage: {0}")]
    Setup(abi::Errno),
    #[error("{0}")]
    Host(String),
}

impl KernelError {
    /// Bad input that the user can fix; nothing ran.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, KernelError::Setup(_) | KernelError::Host(_))
    }
}

/// Engine settings that change compiled code or the runtime's shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineSettings {
    /// Instrument code to count fuel.
    pub fuel: bool,
    /// Native stack for wasm frames, in bytes.
    pub max_stack: Option<u64>,
}

/// Default native stack for wasm frames (wasmtime's own default).
pub const DEFAULT_MAX_STACK: u64 = warden_policy::DEFAULT_MAX_STACK;

/// Native stack a cage's thread has beside the guest's, for host frames.
const CAGE_HOST_STACK: usize = 4 << 20;

/// A wasmtime engine with warden's preview1 kernel linked in. Cheap to
/// clone: the engine and linker are shared.
#[derive(Clone)]
pub struct Kernel {
    engine: Engine,
    linker: Arc<Linker<cage::Cage>>,
    settings: EngineSettings,
    /// What of the engine's settings changes compiled code, for cache keys.
    engine_hash: u64,
    /// Where cages run.
    threads: Arc<threads::CageThreads>,
}

impl Kernel {
    pub fn new(settings: EngineSettings) -> anyhow::Result<Kernel> {
        hostfds::init();
        let mut config = Config::new();
        config.cranelift_opt_level(OptLevel::Speed);
        // Epoch checks let the host stop a guest that makes no syscalls.
        config.epoch_interruption(true);
        config.consume_fuel(settings.fuel);
        // wasi-threads: atomics and memories shared between the instances
        // of a cage's threads (`group`).
        config.wasm_threads(true);
        config.shared_memory(true);
        let stack = settings.max_stack.unwrap_or(DEFAULT_MAX_STACK) as usize;
        config.max_wasm_stack(stack);
        // wasmtime checks the wasm stack against the async stack even for
        // synchronous stores; warden never runs cages on fibers.
        config.async_stack_size(stack.max(2 << 20) + (1 << 20));
        // Memories that fork by copy-on-write (see `memory`); wasmtime's own
        // copy-on-write initialisation needs memories it maps itself.
        config.with_host_memory(Arc::new(memory::CageMemoryCreator));
        config.memory_init_cow(false);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        syscalls::add_to_linker(&mut linker)?;
        let engine_hash = cache::engine_hash(&engine);
        Ok(Kernel {
            engine,
            linker: Arc::new(linker),
            threads: threads::CageThreads::new(stack + CAGE_HOST_STACK),
            settings,
            engine_hash,
        })
    }

    pub(crate) fn threads(&self) -> &Arc<threads::CageThreads> {
        &self.threads
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Checks that every import is one warden provides.
    fn check_imports(&self, path: &std::path::Path, module: &Module) -> Result<(), KernelError> {
        let threaded = group::shared_memory_import(module).is_some();
        for import in module.imports() {
            let known = match import.module() {
                syscalls::MODULE => syscalls::NAMES.contains(&import.name()),
                syscalls::process::MODULE => syscalls::process::NAMES.contains(&import.name()),
                group::MODULE => import.name() == group::SPAWN,
                _ => false,
            };
            // A threaded module's memory is made per cage (`group`).
            let memory = threaded
                && import.module() == group::MEMORY_MODULE
                && import.name() == group::MEMORY_NAME;
            let provided =
                memory || (known && matches!(import.ty(), wasmtime::ExternType::Func(_)));
            if !provided {
                let kind = match import.ty() {
                    wasmtime::ExternType::Func(_) => "function",
                    wasmtime::ExternType::Memory(_) => "memory",
                    wasmtime::ExternType::Table(_) => "table",
                    wasmtime::ExternType::Global(_) => "global",
                    wasmtime::ExternType::Tag(_) => "tag",
                };
                let mut kind = kind.to_string();
                if import.module() == "wasi_unstable" {
                    kind.push_str("; WASI preview0 is not supported, rebuild for wasm32-wasip1");
                }
                return Err(KernelError::UnknownImport {
                    path: path.to_path_buf(),
                    module: import.module().to_string(),
                    name: import.name().to_string(),
                    kind,
                });
            }
        }
        if threaded {
            // The linker lacks the memory, which needs a cage: the
            // signatures are checked when the cage links its module.
            return Ok(());
        }
        // Names match; the linker also checks every signature.
        self.linker
            .instantiate_pre(module)
            .map(|_| ())
            .map_err(|e| KernelError::Invalid {
                path: path.to_path_buf(),
                reason: format!("{e:#}"),
            })
    }
}
