//! Running a cage on its thread: instantiate, call the entry, and carry out
//! the two things that replace a running instance — a fork (asyncify unwind,
//! copy into a new instance, rewind both) and an exec (a new module in the
//! same cage). When the cage ends, its status goes to the process table.

use crate::abi::Errno;
use crate::cage::{Cage, Control, ForkState, MemoryLimitExceeded, Stop, StopReason};
use crate::limits;
use crate::procs::{exit_status, signal_status, ProcTable, WaitStatus};
use crate::run::Outcome;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{
    ExternType, Instance, InstancePre, Module, Mutability, Store, Trap, UpdateDeadline,
};

/// A module with its imports resolved, instantiated at start, exec and
/// every fork.
type Pre = InstancePre<Cage>;

/// What `proc_exec` hands to the cage's run loop.
pub struct ExecPlan {
    pub module: Module,
    pub args: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ExecPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecPlan")
            .field("args", &self.args.len())
            .finish()
    }
}

/// What to call in the module.
#[derive(Clone, Debug)]
pub enum Entry {
    /// `_start`, or a named export of a command module.
    Call(String),
    /// A reactor: `_initialize` first, then the named export.
    Reactor(String),
    /// A thread started by `thread-spawn`: `wasi_thread_start(tid, arg)`.
    Thread { tid: u32, arg: u32 },
}

/// A store for `cage` with its limits and the epoch check that lets the
/// host stop it (timeouts, kills, fatal signals) even in a loop with no
/// syscalls.
///
/// With a fuel budget the store joins the run's pool holding nothing;
/// [`limits::refill`] gives it its share (see `limits` for why in slices).
/// Every store made here must end through [`retire`].
pub fn new_store(cage: Cage) -> Result<Store<Cage>, Outcome> {
    let runtime = cage.runtime.clone();
    let mut store = Store::new(runtime.kernel.engine(), cage);
    store.limiter(|cage| &mut cage.limiter);
    if let Some(pool) = &runtime.fuel {
        store
            .set_fuel(0)
            .map_err(|e| Outcome::Trapped(format!("cannot set fuel: {e:#}")))?;
        pool.join();
    }
    store.epoch_deadline_callback(|ctx| {
        let cage = ctx.data();
        match cage.control.stop_reason() {
            StopReason::Running => {}
            reason => return Err(Stop::Host(reason).into()),
        }
        if let Some(group) = &cage.group {
            // A fork in another thread copies memory now.
            group.park_if_paused();
            if group.is_ended() {
                return Err(Stop::GroupEnded.into());
            }
        }
        match cage.fatal_signal() {
            Some(sig) => Err(Stop::Signal(sig).into()),
            None => Ok(UpdateDeadline::Continue(1)),
        }
    });
    store.set_epoch_deadline(1);
    Ok(store)
}

/// Ends a store made by [`new_store`]: its unused fuel goes back to the
/// run's pool and its memory counts no more in the run's total.
pub fn retire(store: Store<Cage>) -> Cage {
    let leftover = store.get_fuel().unwrap_or(0);
    let mut cage = store.into_data();
    if let Some(pool) = &cage.runtime.fuel {
        pool.leave(leftover);
    }
    cage.limiter.release();
    cage
}

/// Runs `cage` from the start of `module` to its end, through any execs.
pub fn run_cage(cage: Cage, module: Module, entry: Entry) -> Outcome {
    // Whatever happens, the process table must hear that this cage ended,
    // or `warden run` would wait for it forever.
    let (pid, procs) = (cage.pid, cage.procs.clone());
    let ended = |outcome: Outcome| {
        procs.exit(pid, wait_status(&outcome));
        outcome
    };
    let mut cage = cage;
    let mut module = module;
    let mut entry = entry;
    loop {
        if crate::group::shared_memory_import(&module).is_some() {
            let runtime = cage.runtime.clone();
            match crate::group::run(cage, &module, entry) {
                crate::group::End::Outcome(outcome) => {
                    return finish_threaded(&runtime, pid, outcome)
                }
                crate::group::End::Exec(plan, next) => {
                    // Every other thread of the old image stops.
                    cage = *next;
                    cage.exec_reset(plan.args, plan.env);
                    module = plan.module;
                    entry = Entry::Call("_start".into());
                    continue;
                }
            }
        }
        let mut store = match new_store(cage) {
            Ok(s) => s,
            Err(outcome) => return ended(outcome),
        };
        limits::refill(&mut store);
        let linker = store.data().runtime.kernel.linker.clone();
        let pre = match linker.instantiate_pre(&module) {
            Ok(pre) => pre,
            Err(e) => {
                let outcome = classify(&store, e);
                return finish(store, outcome);
            }
        };
        let instance = match instantiate(&mut store, &pre) {
            Ok(i) => i,
            Err(outcome) => return finish(store, outcome),
        };
        match drive(&mut store, &instance, &pre, &entry, false) {
            Ended::Outcome(outcome) => return finish(store, outcome),
            // Only threads return or exit alone; without threads this is
            // the process's end.
            Ended::Returned | Ended::ThreadExit => return finish(store, Outcome::Exited(0)),
            Ended::Exec(plan) => {
                // The new image runs on what is left of the run's budget.
                cage = retire(store);
                cage.exec_reset(plan.args, plan.env);
                module = plan.module;
                entry = Entry::Call("_start".into());
            }
        }
    }
}

/// The end of a threaded fork child's group: its outcome, or an exec that
/// goes on as [`run_cage`].
pub(crate) fn conclude_group(
    runtime: &crate::cage::Runtime,
    pid: u32,
    end: crate::group::End,
) -> Outcome {
    match end {
        crate::group::End::Outcome(outcome) => finish_threaded(runtime, pid, outcome),
        crate::group::End::Exec(plan, next) => {
            let mut cage = *next;
            cage.exec_reset(plan.args, plan.env);
            run_cage(cage, plan.module, Entry::Call("_start".into()))
        }
    }
}

/// [`finish`] for a threaded cage, whose threads retired their own stores.
fn finish_threaded(runtime: &crate::cage::Runtime, pid: u32, outcome: Outcome) -> Outcome {
    if let (Outcome::FuelExhausted(_), Some(pool)) = (&outcome, &runtime.fuel) {
        pool.mark_exhausted();
        runtime.procs.stop_all(StopReason::OutOfFuel);
    }
    runtime.procs.exit(pid, wait_status(&outcome));
    outcome
}

/// Ends a cage: its descriptors close (so pipe readers see EOF), then its
/// parent can reap it. A cage that ran out of fuel used up the run's
/// budget: every other cage stops too.
fn finish(store: Store<Cage>, outcome: Outcome) -> Outcome {
    let cage = retire(store);
    let (pid, procs) = (cage.pid, cage.procs.clone());
    if let (Outcome::FuelExhausted(_), Some(pool)) = (&outcome, &cage.runtime.fuel) {
        pool.mark_exhausted();
        procs.stop_all(StopReason::OutOfFuel);
    }
    drop(cage);
    procs.exit(pid, wait_status(&outcome));
    outcome
}

/// How a cage's end looks to its parent's `waitpid`.
fn wait_status(outcome: &Outcome) -> WaitStatus {
    use crate::abi::signal::linux;
    match outcome {
        Outcome::Exited(code) => exit_status(*code),
        Outcome::Signaled(sig) => signal_status(*sig),
        // abort() is a trap in wasi-libc: report it as native abort does.
        Outcome::Trapped(_) | Outcome::ExitDenied(_) => signal_status(linux::ABRT),
        Outcome::StackOverflow(_) => signal_status(11),
        Outcome::FuelExhausted(_)
        | Outcome::MemoryLimit(_)
        | Outcome::Timeout(_)
        | Outcome::Killed => signal_status(linux::KILL),
    }
}

fn instantiate(store: &mut Store<Cage>, pre: &Pre) -> Result<Instance, Outcome> {
    match pre.instantiate(&mut *store) {
        Ok(instance) => {
            let memory = instance.get_memory(&mut *store, "memory");
            if let Some(m) = memory.filter(|_| crate::syscalls::process::can_fork(pre.module())) {
                // SAFETY: the cage's own fresh memory; its guest has not
                // started. On failure the memory stays as it was and forks
                // copy instead.
                let _ = unsafe {
                    crate::memory::share_from_file(m.data_ptr(&*store), m.data_size(&*store))
                };
            }
            store.data_mut().memory = memory;
            Ok(instance)
        }
        // The run's other cages leave no room for this one's initial
        // memory: reported as a memory limit, not as a trap.
        Err(_) if store.data().limiter.refused_total => {
            Err(Outcome::MemoryLimit(store.data().limiter.total_limit()))
        }
        Err(err) => Err(classify(store, err)),
    }
}

pub(crate) enum Ended {
    Outcome(Outcome),
    Exec(Box<ExecPlan>),
    /// A thread's entry ([`Entry::Thread`]) returned: that thread ends.
    Returned,
    /// A thread of a threaded cage called `pthread_exit`: its call stack
    /// is gone, its C library's exit work is still to run (`group`).
    ThreadExit,
}

/// Calls the entry, and again after every fork rewind, until the cage ends
/// or execs. `resumed` says the instance is a fork child about to rewind.
pub(crate) fn drive(
    store: &mut Store<Cage>,
    instance: &Instance,
    pre: &Pre,
    entry: &Entry,
    resumed: bool,
) -> Ended {
    if let (Entry::Reactor(_), false) = (entry, resumed) {
        let init = instance.get_typed_func::<(), ()>(&mut *store, "_initialize");
        match init.map(|f| f.call(&mut *store, ())) {
            Ok(Ok(())) => {}
            Ok(Err(err)) | Err(err) => return Ended::Outcome(classify(store, err)),
        }
    }
    loop {
        let result = call_entry(store, instance, entry);
        if let Some(ForkState::Unwinding { .. }) = store.data().fork {
            if let Err(err) = result {
                // The unwind itself failed (typically asyncify's buffer is
                // too small for the stack): the fork never happened.
                if let Some(ForkState::Unwinding { child, control, .. }) =
                    store.data_mut().fork.take()
                {
                    store.data().procs.abandon(child, &control);
                }
                let why = classify(store, err);
                return Ended::Outcome(match why {
                    Outcome::Trapped(trap) => Outcome::Trapped(format!(
                        "fork failed while saving the stack ({trap}): the call stack is deeper than the fork buffer holds"
                    )),
                    other => other,
                });
            }
            if let Err(outcome) = fork(store, instance, pre, entry) {
                return Ended::Outcome(outcome);
            }
            continue;
        }
        return match result {
            // A thread's entry returning ends that thread only.
            Ok(_) if matches!(entry, Entry::Thread { .. }) => Ended::Returned,
            Ok(code) => Ended::Outcome(Outcome::Exited(code)),
            Err(err) => match err.downcast::<Stop>() {
                Ok(Stop::Exec(plan)) => Ended::Exec(plan),
                Ok(Stop::ThreadExit) if store.data().group.is_some() => Ended::ThreadExit,
                Ok(stop) => Ended::Outcome(classify(store, stop.into())),
                Err(err) => Ended::Outcome(classify(store, err)),
            },
        };
    }
}

fn call_entry(
    store: &mut Store<Cage>,
    instance: &Instance,
    entry: &Entry,
) -> wasmtime::Result<u32> {
    let name = match entry {
        Entry::Call(name) | Entry::Reactor(name) => name,
        Entry::Thread { tid, arg } => {
            let start = crate::group::START;
            let f = instance.get_typed_func::<(i32, i32), ()>(&mut *store, start)?;
            return f.call(&mut *store, (*tid as i32, *arg as i32)).map(|()| 0);
        }
    };
    if let Ok(f) = instance.get_typed_func::<(), ()>(&mut *store, name) {
        return f.call(&mut *store, ()).map(|()| 0);
    }
    let f = instance.get_typed_func::<(), i32>(&mut *store, name)?;
    f.call(&mut *store, ()).map(|code| code as u32)
}

fn call_export(
    store: &mut Store<Cage>,
    instance: &Instance,
    name: &str,
    arg: Option<i32>,
) -> wasmtime::Result<()> {
    match arg {
        Some(a) => instance
            .get_typed_func::<i32, ()>(&mut *store, name)?
            .call(&mut *store, a),
        None => instance
            .get_typed_func::<(), ()>(&mut *store, name)?
            .call(&mut *store, ()),
    }
}

/// The second half of `proc_fork`: the parent's stack is unwound into its
/// asyncify buffer. Copy memory and mutable globals into a new instance of
/// the same module, start it on its own thread, and rewind both.
fn fork(
    store: &mut Store<Cage>,
    instance: &Instance,
    pre: &Pre,
    entry: &Entry,
) -> Result<(), Outcome> {
    let Some(ForkState::Unwinding {
        buffer,
        child,
        control,
    }) = store.data_mut().fork.take()
    else {
        return Ok(());
    };
    let release = |store: &Store<Cage>| store.data().procs.abandon(child, &control);
    if let Err(e) = call_export(store, instance, "asyncify_stop_unwind", None) {
        release(store);
        return Err(classify(store, e));
    }
    let started = start_child(store, instance, pre, entry, child, buffer, control.clone());
    let result = match started {
        Ok(()) => Ok(child),
        Err(errno) => {
            // The child never ran: release its pid and fail the fork.
            release(store);
            Err(errno)
        }
    };
    store.data_mut().fork = Some(ForkState::Rewinding { result });
    call_export(
        store,
        instance,
        "asyncify_start_rewind",
        Some(buffer as i32),
    )
    .map_err(|e| classify(store, e))
}

/// Builds the child's instance from the parent's state and starts its
/// thread, which rewinds into `proc_fork` and runs on. Fails with
/// `ENOMEM` when the run's total memory has no room for the child's copy,
/// `EAGAIN` when anything else kept it from starting.
fn start_child(
    store: &mut Store<Cage>,
    instance: &Instance,
    pre: &Pre,
    entry: &Entry,
    child: u32,
    buffer: u32,
    control: Arc<Control>,
) -> Result<(), Errno> {
    if let Some(group) = store.data().group.clone() {
        let fork = crate::group::Fork {
            entry: entry.clone(),
            child,
            buffer,
            control,
        };
        return group.fork(store, instance, fork);
    }
    let child_cage = store.data().fork_child(child, control);
    let mut child_store = new_store(child_cage).map_err(|_| Errno::AGAIN)?;
    // The parent gives back what it held alone, then the child draws its
    // slice: both before any of the child's code (a start function) runs.
    limits::refill(&mut *store);
    limits::refill(&mut child_store);
    let child_instance = match copy_instance(store, instance, pre, &mut child_store) {
        Ok(i) => i,
        Err(_) => {
            let refused = child_store.data().limiter.refused_total;
            retire(child_store);
            return Err(if refused { Errno::NOMEM } else { Errno::AGAIN });
        }
    };
    let pre = pre.clone();
    let entry = entry.clone();
    let threads = store.data().runtime.kernel.threads().clone();
    // If the thread cannot start, the job (and the child's store in it)
    // is dropped: its fuel is lost to the run, which can only end it
    // sooner, never later.
    threads
        .run(move || {
            let procs = child_store.data().procs.clone();
            guarded(child, &procs, move || {
                run_child(child_store, child_instance, pre, entry, buffer)
            });
        })
        .map_err(|_| Errno::AGAIN)
}

/// Runs the body of cage `pid`'s thread. If a bug in warden panics in it,
/// the process table still hears that the cage ended (as by SIGABRT; the
/// panic hook has said why), so that nobody waits for it forever.
pub(crate) fn guarded<R>(pid: u32, procs: &ProcTable, body: impl FnOnce() -> R) -> Option<R> {
    let body = std::panic::AssertUnwindSafe(body);
    let result = std::panic::catch_unwind(body).ok();
    if result.is_none() {
        procs.exit(pid, signal_status(crate::abi::signal::linux::ABRT));
    }
    result
}

/// A fork child's thread: rewind into `proc_fork`, run to the end.
fn run_child(
    mut child_store: Store<Cage>,
    child_instance: Instance,
    pre: Pre,
    entry: Entry,
    buffer: u32,
) {
    let rewind = call_export(
        &mut child_store,
        &child_instance,
        "asyncify_start_rewind",
        Some(buffer as i32),
    );
    let outcome = match rewind {
        Ok(()) => match drive(&mut child_store, &child_instance, &pre, &entry, true) {
            Ended::Outcome(o) => o,
            Ended::Returned | Ended::ThreadExit => Outcome::Exited(0),
            Ended::Exec(plan) => {
                // An exec right after fork: carry on in this thread.
                let cage = retire(child_store);
                return exec_after_fork(cage, *plan);
            }
        },
        // A signal or a stop can land before the rewind begins.
        Err(e) => classify(&child_store, e),
    };
    finish(child_store, outcome);
}

fn exec_after_fork(cage: Cage, plan: ExecPlan) {
    let mut cage = cage;
    cage.exec_reset(plan.args, plan.env);
    let _ = run_cage(cage, plan.module, Entry::Call("_start".into()));
}

/// A new instance of the parent's module in `child` with the parent's
/// memory and mutable globals.
fn copy_instance(
    parent: &mut Store<Cage>,
    instance: &Instance,
    pre: &Pre,
    child: &mut Store<Cage>,
) -> wasmtime::Result<Instance> {
    let child_instance = pre.instantiate(&mut *child)?;
    if let (Some(from), Some(to)) = (
        instance.get_memory(&mut *parent, "memory"),
        child_instance.get_memory(&mut *child, "memory"),
    ) {
        let pages = from.size(&*parent);
        let have = to.size(&*child);
        if pages > have {
            to.grow(&mut *child, pages - have)?;
        }
        let len = from.data_size(&*parent);
        // SAFETY: both are cage memories with `len` accessible bytes, and
        // neither guest runs: the parent is unwound, the child not started.
        unsafe {
            crate::memory::fork_memory(from.data_ptr(&*parent), to.data_ptr(&*child), len)?;
        }
        child.data_mut().memory = Some(to);
    }
    copy_globals(parent, instance, child, &child_instance)?;
    Ok(child_instance)
}

/// Copies the exported mutable globals of `instance` (the stack pointer,
/// a thread's TLS base, asyncify's state) into `to`, an instance of the
/// same module.
pub(crate) fn copy_globals(
    parent: &mut Store<Cage>,
    instance: &Instance,
    child: &mut Store<Cage>,
    to: &Instance,
) -> wasmtime::Result<()> {
    let module = instance.module(&*parent).clone();
    for export in module.exports() {
        if let ExternType::Global(g) = export.ty() {
            if g.mutability() == Mutability::Var {
                if let (Some(src), Some(dst)) = (
                    instance.get_global(&mut *parent, export.name()),
                    to.get_global(&mut *child, export.name()),
                ) {
                    let value = src.get(&mut *parent);
                    dst.set(&mut *child, value)?;
                }
            }
        }
    }
    Ok(())
}

/// How a cage's run ended, from the error its call returned.
pub fn classify(store: &Store<Cage>, err: wasmtime::Error) -> Outcome {
    let cage = store.data();
    let fuel = cage.runtime.fuel.as_ref().map(|pool| pool.budget());
    let stack = cage
        .runtime
        .kernel
        .settings
        .max_stack
        .unwrap_or(crate::DEFAULT_MAX_STACK);
    if let Some(stop) = err.downcast_ref::<Stop>() {
        return match stop {
            Stop::Exit(code) => Outcome::Exited(*code),
            Stop::Signal(sig) => Outcome::Signaled(*sig),
            Stop::ExitDenied(code) => Outcome::ExitDenied(*code),
            Stop::Host(StopReason::Killed) => Outcome::Killed,
            Stop::Host(StopReason::OutOfFuel) => Outcome::FuelExhausted(fuel.unwrap_or(0)),
            Stop::Host(_) => Outcome::Timeout(Duration::ZERO),
            Stop::Exec(_) => Outcome::Trapped("exec failed".into()),
            // Another thread's outcome is the cage's; this one is unused.
            Stop::GroupEnded => Outcome::Killed,
            // The last thread of a process ending exits it with 0 (only a
            // cage without threads gets here).
            Stop::ThreadExit => Outcome::Exited(0),
        };
    }
    if let Some(limit) = err.downcast_ref::<MemoryLimitExceeded>() {
        return Outcome::MemoryLimit(limit.limit);
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => Outcome::FuelExhausted(fuel.unwrap_or(0)),
            Trap::StackOverflow => Outcome::StackOverflow(stack),
            Trap::Interrupt => match cage.control.stop_reason() {
                StopReason::Killed => Outcome::Killed,
                StopReason::OutOfFuel => Outcome::FuelExhausted(fuel.unwrap_or(0)),
                _ => Outcome::Timeout(Duration::ZERO),
            },
            other => Outcome::Trapped(
                other
                    .to_string()
                    .trim_start_matches("wasm trap: ")
                    .to_string(),
            ),
        };
    }
    Outcome::Trapped(format!("{err:#}"))
}

/// A fresh control block for a new cage, inheriting the run's deadline.
pub fn child_control(parent: &Control) -> Arc<Control> {
    Arc::new(Control::new(parent.deadline()))
}
