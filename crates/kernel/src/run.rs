//! Running a cage: preopens from the policy, the store with its limits, the
//! entrypoint, a thread of its own, and how it ended.

use crate::cage::{Cage, Control, MemoryLimitExceeded, Stop, StopReason};
use crate::trace::Tracer;
use crate::vfs::host::HostDir;
use crate::vfs::socket::Listener;
use crate::vfs::virt::{self, VDir};
use crate::vfs::Node;
use crate::{Kernel, KernelError, DEFAULT_MAX_STACK};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use warden_policy::{format_size, MountSource, Policy};
use wasmtime::{ExternType, Module, Store, Trap, UpdateDeadline};

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
            Outcome::Signaled(sig) => 128 + crate::abi::signal::linux_number(*sig).unwrap_or(0),
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
        let sig_name = |s: u8| {
            crate::abi::signal::NAMES
                .get(s as usize)
                .map(|n| format!("SIG{n}"))
                .unwrap_or_else(|| s.to_string())
        };
        match self {
            Outcome::Exited(_) => None,
            Outcome::Signaled(s) => Some(format!("guest ended by signal {}", sig_name(*s))),
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

/// What to call in the module.
enum Entry {
    /// `_start`, or a named export of a command module.
    Call(String),
    /// A reactor: `_initialize` first, then the named export.
    Reactor(String),
}

impl Kernel {
    /// Checks the entrypoint before anything runs.
    fn entry(&self, path: &Path, module: &Module, name: Option<&str>) -> Result<Entry, KernelError> {
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

    /// The policy's mounts and listening sockets, opened in order.
    fn preopens(&self, policy: &Policy) -> Result<Vec<(String, Arc<dyn Node>)>, KernelError> {
        let mut out: Vec<(String, Arc<dyn Node>)> = Vec::new();
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
                MountSource::Virtual { path } => Arc::new(VDir::root(
                    virt::capture(path)
                        .map_err(|e| fail(format!("cannot capture {}: {e}", path.display())))?,
                )),
                MountSource::Sealed { .. } => {
                    return Err(KernelError::Unsupported(format!(
                        "mount `{}`: sealed mounts are not available in this build yet",
                        mount.guest
                    )))
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
                    .map(|l| Arc::new(Listener::new(l)) as Arc<dyn Node>)
                    .map_err(|e| KernelError::Listen {
                        addr: addr.to_string(),
                        reason: e.to_string(),
                    })
            })
            .collect()
    }

    /// Runs `module` as cage 1 under `policy` and waits for it to end.
    pub fn run(
        &self,
        path: &Path,
        module: &Module,
        policy: &Policy,
        program: &str,
        tracer: Option<Arc<Tracer>>,
    ) -> Result<Outcome, KernelError> {
        let entry = self.entry(path, module, policy.entrypoint.as_deref())?;
        let mut preopens = self.preopens(policy)?;
        let listeners = self.listeners(policy)?;
        let timeout = policy.limits.timeout;
        let control = Arc::new(
            Control::new(timeout.map(|t| Instant::now() + t))
                .map_err(|e| KernelError::Host(format!("cannot create the cage's waker: {e}")))?,
        );
        // Listening sockets come after the directories: wasi-libc stops
        // scanning preopens at the first fd that is not a directory.
        let mut cage = Cage::new(
            1,
            program,
            policy,
            std::mem::take(&mut preopens),
            tracer.clone(),
            control.clone(),
        )?;
        for listener in listeners {
            cage.fds
                .insert(crate::fdtable::FdEntry::new(listener))
                .map_err(KernelError::Setup)?;
        }

        let fuel = policy.limits.fuel;
        let stack = self.settings.max_stack.unwrap_or(DEFAULT_MAX_STACK);
        let engine = self.engine.clone();
        let linker = self.linker.clone();
        let module = module.clone();
        let (tx, rx) = mpsc::channel();
        let thread_control = control.clone();
        std::thread::Builder::new()
            .name("cage-1".into())
            // Room for the guest's frames plus the host's own.
            .stack_size(stack as usize + 4 * 1024 * 1024)
            .spawn(move || {
                let outcome = run_cage(&engine, &linker, &module, cage, entry, fuel, stack, &thread_control);
                let _ = tx.send(outcome);
            })
            .map_err(|e| KernelError::Host(format!("cannot start the cage's thread: {e}")))?;

        let outcome = match timeout {
            None => rx.recv().map_err(|_| KernelError::Host("the cage's thread died".into()))?,
            Some(limit) => match rx.recv_timeout(limit) {
                Ok(outcome) => outcome,
                Err(_) => {
                    control.stop(StopReason::Timeout);
                    self.engine.increment_epoch();
                    // A guest blocked in a host read cannot be interrupted;
                    // it is abandoned and the host goes on.
                    match rx.recv_timeout(Duration::from_millis(500)) {
                        Ok(Ok(Outcome::Timeout(_))) | Err(_) => Ok(Outcome::Timeout(limit)),
                        Ok(other) => other,
                    }
                }
            },
        }?;
        if let Some(t) = &tracer {
            t.flush();
        }
        Ok(match outcome {
            Outcome::Timeout(_) => Outcome::Timeout(timeout.unwrap_or_default()),
            other => other,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn run_cage(
    engine: &wasmtime::Engine,
    linker: &wasmtime::Linker<Cage>,
    module: &Module,
    cage: Cage,
    entry: Entry,
    fuel: Option<u64>,
    stack: u64,
    control: &Arc<Control>,
) -> Result<Outcome, KernelError> {
    let mut store = Store::new(engine, cage);
    store.limiter(|cage| &mut cage.limiter);
    if let Some(fuel) = fuel {
        store
            .set_fuel(fuel)
            .map_err(|e| KernelError::Host(format!("cannot set fuel: {e:#}")))?;
    }
    let cb_control = control.clone();
    store.epoch_deadline_callback(move |_| match cb_control.stop_reason() {
        StopReason::Running => Ok(UpdateDeadline::Continue(1)),
        reason => Err(Stop::Host(reason).into()),
    });
    store.set_epoch_deadline(1);

    let classify = |err: wasmtime::Error| classify(err, fuel, stack, control);
    let instance = match linker.instantiate(&mut store, module) {
        Ok(instance) => instance,
        Err(err) => {
            if err.downcast_ref::<MemoryLimitExceeded>().is_some()
                || err.downcast_ref::<Trap>().is_some()
                || err.downcast_ref::<Stop>().is_some()
            {
                return Ok(classify(err));
            }
            return Err(KernelError::Invalid {
                path: "module".into(),
                reason: format!("{err:#}"),
            });
        }
    };
    let memory = instance.get_memory(&mut store, "memory");
    store.data_mut().memory = memory;

    let name = match &entry {
        Entry::Call(name) => name.clone(),
        Entry::Reactor(name) => {
            let init = instance
                .get_typed_func::<(), ()>(&mut store, "_initialize")
                .map_err(|e| KernelError::Host(format!("{e:#}")))?;
            if let Err(err) = init.call(&mut store, ()) {
                return Ok(classify(err));
            }
            name.clone()
        }
    };
    let result = if let Ok(f) = instance.get_typed_func::<(), ()>(&mut store, &name) {
        f.call(&mut store, ()).map(|()| 0u32)
    } else {
        instance
            .get_typed_func::<(), i32>(&mut store, &name)
            .map_err(|e| KernelError::Host(format!("{e:#}")))?
            .call(&mut store, ())
            .map(|code| code as u32)
    };
    Ok(match result {
        Ok(code) => Outcome::Exited(code),
        Err(err) => classify(err),
    })
}

fn classify(err: wasmtime::Error, fuel: Option<u64>, stack: u64, control: &Control) -> Outcome {
    if let Some(stop) = err.downcast_ref::<Stop>() {
        return match stop {
            Stop::Exit(code) => Outcome::Exited(*code),
            Stop::Signal(sig) => Outcome::Signaled(*sig),
            Stop::ExitDenied(code) => Outcome::ExitDenied(*code),
            Stop::Host(StopReason::Killed) => Outcome::Killed,
            Stop::Host(_) => Outcome::Timeout(Duration::ZERO),
        };
    }
    if let Some(limit) = err.downcast_ref::<MemoryLimitExceeded>() {
        return Outcome::MemoryLimit(limit.limit);
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => Outcome::FuelExhausted(fuel.unwrap_or(0)),
            Trap::StackOverflow => Outcome::StackOverflow(stack),
            Trap::Interrupt => match control.stop_reason() {
                StopReason::Killed => Outcome::Killed,
                _ => Outcome::Timeout(Duration::ZERO),
            },
            other => Outcome::Trapped(other.to_string().trim_start_matches("wasm trap: ").to_string()),
        };
    }
    Outcome::Trapped(format!("{err:#}"))
}
