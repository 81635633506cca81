//! Running a cage: preopens from the policy, the store with its limits, the
//! entrypoint, a thread of its own, and how it ended.

use crate::cage::{Cage, Control, Runtime, StopReason};
use crate::limits::{FuelPool, MemoryTotal};
use crate::note::DenialNotes;
use crate::process::{guarded, run_cage, Entry};
use crate::procs::ProcTable;
use crate::trace::Tracer;
use crate::vfs::host::HostDir;
use crate::vfs::sealed::SealedDir;
use crate::vfs::socket::Listener;
use crate::vfs::virt::{self, VDir};
use crate::vfs::Node;
use crate::CacheMode;
use crate::{Kernel, KernelError, DEFAULT_MAX_STACK};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use warden_policy::{format_size, MountSource, Policy};
use warden_seal::fs::SealedFs;
use wasmtime::{ExternType, Module};

/// The largest wasm stack that cage 1 may use on the caller's own thread
/// (a main thread has 8 MiB); larger ones get a thread sized for them.
const INLINE_STACK_LIMIT: u64 = 1 << 20;

/// What a run needs besides the module and the policy.
pub struct RunOptions {
    /// `argv[0]`.
    pub program: String,
    pub tracer: Option<Arc<Tracer>>,
    /// Where `exec` finds compiled modules.
    pub cache: CacheMode,
    /// The sealed store, when the policy has sealed mounts.
    pub store: Option<warden_seal::Store>,
    /// Where the first denial of each subsystem is noted (`warden: note:
    /// ...`); `None` for none (`--quiet`).
    pub notes: Option<Box<dyn std::io::Write + Send>>,
    /// The trees of the policy's bundled mounts, by guest path (from the
    /// bundle being run; empty otherwise).
    pub bundled: Bundled,
}

/// A preopened directory: its guest path and its node.
pub type Preopen = (String, Arc<dyn Node>);

/// The trees of a bundle's mounts, by guest path
/// ([`warden_policy::MountSource::Bundled`]).
pub type Bundled = BTreeMap<String, Arc<warden_bundle::Tree>>;

/// How a cage ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `proc_exit(code)`, or 0 when the entrypoint returned.
    Exited(u32),
    /// The guest raised a signal whose default action ends it.
    Signaled(u8),
    FuelExhausted(u64),
    MemoryLimit(u64),
    StackOverflow(u64),
    Timeout(Duration),
    /// A wasm trap: unreachable, out-of-bounds access, …
    Trapped(String),
    /// `proc_exit` while the `exit` subsystem is denied.
    ExitDenied(u32),
    Killed,
}

impl Outcome {
    /// The documented exit status (docs/cli.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited(code) => (*code & 0xff) as i32,
            Outcome::Signaled(sig) => 128 + *sig as i32,
            Outcome::FuelExhausted(_) => 121,
            Outcome::MemoryLimit(_) => 122,
            Outcome::StackOverflow(_) => 123,
            Outcome::Timeout(_) => 124,
            Outcome::Trapped(_) | Outcome::ExitDenied(_) => 134,
            Outcome::Killed => 137,
        }
    }

    /// The one line warden prints for an abnormal end.
    pub fn message(&self) -> Option<String> {
        match self {
            Outcome::Exited(_) => None,
            Outcome::Signaled(s) => Some(format!(
                "guest ended by {}",
                crate::abi::signal::linux::name(*s)
            )),
            Outcome::FuelExhausted(n) => Some(format!("guest ran out of fuel (limit {n})")),
            Outcome::MemoryLimit(n) => Some(format!(
                "guest exceeded its memory limit of {}",
                format_size(*n)
            )),
            Outcome::StackOverflow(n) => Some(format!(
                "guest overflowed its stack (limit {})",
                format_size(*n)
            )),
            Outcome::Timeout(d) => Some(format!("guest exceeded its time limit of {d:?}")),
            Outcome::Trapped(why) => Some(format!("guest trapped: {why}")),
            Outcome::ExitDenied(code) => Some(format!(
                "guest called proc_exit({code}) but the `exit` subsystem is denied"
            )),
            Outcome::Killed => Some("guest was killed".into()),
        }
    }
}

/// A run whose budget ran out, in whichever cage, ended out of fuel, even
/// if cage 1 had exited or was stopped for it.
fn fuel_outcome(outcome: Outcome, fuel: Option<&FuelPool>) -> Outcome {
    match (fuel, &outcome) {
        (Some(pool), Outcome::Exited(_) | Outcome::Killed) if pool.is_exhausted() => {
            Outcome::FuelExhausted(pool.budget())
        }
        _ => outcome,
    }
}

impl Kernel {
    /// Checks the entrypoint before anything runs.
    fn entry(
        &self,
        path: &Path,
        module: &Module,
        name: Option<&str>,
    ) -> Result<Entry, KernelError> {
        let has = |n: &str| matches!(module.get_export(n), Some(ExternType::Func(_)));
        let chosen = match name {
            Some(n) => n.to_string(),
            None if has("_start") => "_start".into(),
            None if has("_initialize") => {
                return Err(KernelError::Reactor {
                    path: path.to_path_buf(),
                })
            }
            None => "_start".into(),
        };
        match module.get_export(&chosen) {
            Some(ExternType::Func(f)) => {
                let params_ok = f.params().len() == 0;
                let results: Vec<_> = f.results().collect();
                let results_ok = results.is_empty()
                    || (results.len() == 1 && matches!(results[0], wasmtime::ValType::I32));
                if !params_ok || !results_ok {
                    return Err(KernelError::BadEntrypoint {
                        path: path.to_path_buf(),
                        name: chosen,
                    });
                }
            }
            _ => {
                let available: Vec<String> = module
                    .exports()
                    .filter(|e| matches!(e.ty(), ExternType::Func(_)))
                    .map(|e| e.name().to_string())
                    .collect();
                return Err(KernelError::NoEntrypoint {
                    path: path.to_path_buf(),
                    name: chosen,
                    available: if available.is_empty() {
                        "none".into()
                    } else {
                        available.join(", ")
                    },
                });
            }
        }
        if has("_initialize") && chosen != "_initialize" && !has("_start") {
            Ok(Entry::Reactor(chosen))
        } else {
            Ok(Entry::Call(chosen))
        }
    }

    /// Opens the policy's mounts, in order: the one place where warden
    /// turns a mount of the policy into the node a guest sees, for cages
    /// (preview 1) and components (`wasi:filesystem`) alike. Host
    /// directories through cap-std, virtual mounts captured now, sealed
    /// mounts from `store`, bundled mounts from their trees in `bundled`.
    /// Needs no engine: call it as `Kernel::preopens(..)`.
    pub fn preopens(
        policy: &Policy,
        store: Option<&warden_seal::Store>,
        bundled: &Bundled,
    ) -> Result<Vec<Preopen>, KernelError> {
        let mut out: Vec<Preopen> = Vec::new();
        for mount in &policy.mounts {
            let fail = |reason: String| KernelError::Mount {
                guest: mount.guest.clone(),
                reason,
            };
            let node: Arc<dyn Node> = match &mount.source {
                MountSource::Host { path, read_only } => Arc::new(
                    HostDir::open_root(path, *read_only)
                        .map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?,
                ),
                MountSource::Virtual { path } => {
                    Arc::new(VDir::root(virt::capture(path).map_err(|e| {
                        fail(format!("cannot capture {}: {e}", path.display()))
                    })?))
                }
                MountSource::Sealed { name } => {
                    let store = store.ok_or_else(|| {
                        fail("a sealed mount needs a sealed store (--store)".into())
                    })?;
                    let fs = store
                        .namespace(name)
                        .map_err(|e| e.to_string())
                        .and_then(|ns| SealedFs::new(ns).map_err(|e| e.to_string()))
                        .map_err(|e| fail(format!("sealed store namespace `{name}`: {e}")))?;
                    Arc::new(
                        SealedDir::root(fs)
                            .map_err(|e| fail(format!("sealed store namespace `{name}`: {e}")))?,
                    )
                }
                MountSource::Bundled { digest } => {
                    let tree = bundled
                        .get(&mount.guest)
                        .ok_or_else(|| fail(format!("the bundled tree {digest} was not given")))?;
                    Arc::new(VDir::root(virt::from_tree(tree)))
                }
            };
            out.push((mount.guest.clone(), node));
        }
        Ok(out)
    }

    fn listeners(&self, policy: &Policy) -> Result<Vec<Arc<dyn Node>>, KernelError> {
        policy
            .listen
            .iter()
            .map(|addr| {
                std::net::TcpListener::bind(addr)
                    .and_then(Listener::new)
                    .map(|l| Arc::new(l) as Arc<dyn Node>)
                    .map_err(|e| KernelError::Listen {
                        addr: addr.to_string(),
                        reason: e.to_string(),
                    })
            })
            .collect()
    }

    /// Runs `module` as cage 1 under `policy` and waits for it, and every
    /// cage it forks, to end. The outcome is cage 1's.
    pub fn run(
        &self,
        path: &Path,
        module: &Module,
        policy: &Policy,
        options: RunOptions,
    ) -> Result<Outcome, KernelError> {
        let RunOptions {
            program,
            tracer,
            cache,
            store,
            notes,
            bundled,
        } = options;
        let entry = self.entry(path, module, policy.entrypoint.as_deref())?;
        let preopens = Kernel::preopens(policy, store.as_ref(), &bundled)?;
        let listeners = self.listeners(policy)?;
        let timeout = policy.limits.timeout;
        let deadline = timeout.map(|t| Instant::now() + t);
        let control = Arc::new(Control::new(deadline));
        let procs = Arc::new(ProcTable::new(
            policy.limits.max_processes,
            self.engine.clone(),
        ));
        let pid = procs
            .spawn(0, control.clone())
            .map_err(KernelError::Setup)?;
        let fuel = policy
            .limits
            .fuel
            .map(|budget| Arc::new(FuelPool::new(budget)));
        let runtime = Arc::new(Runtime {
            kernel: self.clone(),
            cache,
            fuel: fuel.clone(),
            memory: Arc::new(MemoryTotal::new(policy.limits.total_memory())),
            procs: procs.clone(),
            tracer: tracer.clone(),
            notes: Arc::new(DenialNotes::new(notes)),
            max_threads: policy.limits.max_threads,
        });
        let cage = Cage::new(pid, &program, policy, preopens, runtime, control.clone())?;
        // Listening sockets come after the directories: wasi-libc stops
        // scanning preopens at the first fd that is not a directory.
        for listener in listeners {
            cage.fds
                .insert(crate::fdtable::FdEntry::new(listener))
                .map_err(KernelError::Setup)?;
        }

        let stack = self.settings.max_stack.unwrap_or(DEFAULT_MAX_STACK);
        let module = module.clone();
        if timeout.is_none() && stack <= INLINE_STACK_LIMIT {
            // Nothing to watch over: run cage 1 on this thread (a thread
            // of its own costs a spawn and two signal stacks per run), then
            // wait for the cages it forked.
            let outcome = run_cage(cage, module, entry);
            procs.wait_idle(None);
            let outcome = fuel_outcome(outcome, fuel.as_deref());
            return self.finish_run(outcome, None, tracer.as_deref(), store.as_ref());
        }
        let (tx, rx) = mpsc::channel();
        self.threads()
            .run(move || {
                let (pid, procs) = (cage.pid, cage.procs.clone());
                if let Some(outcome) = guarded(pid, &procs, move || run_cage(cage, module, entry)) {
                    let _ = tx.send(outcome);
                }
            })
            .map_err(|e| KernelError::Host(format!("cannot start the cage's thread: {e}")))?;

        let remaining = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let first = match remaining() {
            None => rx.recv().ok(),
            Some(left) => rx.recv_timeout(left).ok(),
        };
        // Then wait for the rest of the tree, as a shell reading the
        // pipeline's output would.
        let rest_done = procs.wait_idle(remaining());
        let outcome = match (first, rest_done) {
            (Some(outcome), true) => outcome,
            (None, _) if deadline.is_none_or(|d| Instant::now() < d) => {
                return Err(KernelError::Host(
                    "cage 1's thread ended without an outcome (a bug in warden)".into(),
                ))
            }
            (first, _) => {
                procs.stop_all(StopReason::Timeout);
                // A guest blocked in a host read cannot be interrupted; it is
                // abandoned and the host goes on.
                procs.wait_idle(Some(Duration::from_millis(500)));
                match first {
                    Some(Outcome::Exited(_)) | None => Outcome::Timeout(Duration::ZERO),
                    Some(other) => other,
                }
            }
        };
        let outcome = fuel_outcome(outcome, fuel.as_deref());
        self.finish_run(outcome, timeout, tracer.as_deref(), store.as_ref())
    }

    /// What every run does at its end: flush the trace and make sealed
    /// files durable.
    fn finish_run(
        &self,
        outcome: Outcome,
        timeout: Option<Duration>,
        tracer: Option<&Tracer>,
        store: Option<&warden_seal::Store>,
    ) -> Result<Outcome, KernelError> {
        if let Some(t) = tracer {
            t.flush();
        }
        if let Some(store) = store {
            // Sealed files are written with eventual durability, like a
            // host filesystem without fsync; the run's end makes them durable.
            store
                .flush()
                .map_err(|e| KernelError::Host(format!("cannot flush the sealed store: {e}")))?;
        }
        Ok(match outcome {
            Outcome::Timeout(_) => Outcome::Timeout(timeout.unwrap_or_default()),
            other => other,
        })
    }
}
