//! Threads of one cage: the wasi-threads ABI (docs/process-abi.md,
//! "Threads").
//!
//! A threaded module imports a shared memory (`env.memory`) and
//! `wasi.thread-spawn`, and exports `wasi_thread_start`. Each thread is an
//! instance of the same module in a store of its own, on a host thread of
//! its own, importing the one [`SharedMemory`]. What a process has once
//! (descriptors, signal dispositions, the control block through which the
//! host stops it, its pid) the threads' [`Cage`]s share; what a thread has
//! alone (its store, fuel share, instance) they do not.
//!
//! A [`ThreadGroup`] ends once, by the first of: the main thread returning
//! from its entry, `proc_exit` or a trap in any thread, a fatal signal, a
//! host stop (timeout, kill, fuel), or an `exec` in any thread. That end
//! is the cage's end, reported at once: the cage's other threads stop at
//! their next epoch check or wake-up (a thread blocked in
//! `memory.atomic.wait` cannot be woken by the host and is abandoned, see
//! the documentation).
//!
//! A thread may also end alone (`pthread_exit`, [`Stop::ThreadExit`]), and
//! a `fork` in any thread makes a new group around a copy of the memory
//! with that one thread ([`ThreadGroup::fork`]).

use crate::abi::Errno;
use crate::cage::{Cage, Control, Stop};
use crate::fdtable::SharedFds;
use crate::limits::{self, MemoryTotal};
use crate::process::{classify, new_store, retire, Ended, Entry, ExecPlan};
use crate::run::Outcome;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use wasmtime::{
    Engine, ExternType, Instance, InstancePre, Linker, MemoryType, Module, SharedMemory, Store,
};

/// The module of `thread-spawn`.
pub const MODULE: &str = "wasi";
/// `thread-spawn(start_arg: i32) -> i32`.
pub const SPAWN: &str = "thread-spawn";
/// The export a new thread runs: `wasi_thread_start(tid: i32, start_arg: i32)`.
pub const START: &str = "wasi_thread_start";
/// Where a threaded module imports its shared memory from.
pub const MEMORY_MODULE: &str = "env";
pub const MEMORY_NAME: &str = "memory";

/// wasi-threads thread ids are positive and below 2^29.
const MAX_TID: u32 = 0x1FFF_FFFF;

const WASM_PAGE: u64 = 64 << 10;

/// The shared memory `module` imports, if it is a threaded module.
pub fn shared_memory_import(module: &Module) -> Option<MemoryType> {
    module.imports().find_map(|i| match i.ty() {
        ExternType::Memory(m)
            if i.module() == MEMORY_MODULE && i.name() == MEMORY_NAME && m.is_shared() =>
        {
            Some(m)
        }
        _ => None,
    })
}

/// How a thread group ended.
pub enum End {
    Outcome(Outcome),
    /// A thread called `exec`: the cage goes on with `plan` in `cage` (that
    /// thread's state).
    Exec(Box<ExecPlan>, Box<Cage>),
}

/// Why a threaded cage could not start: the cage's outcome.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("the module's shared memory needs {needed} bytes, more than the limit of {limit}")]
    Memory { needed: u64, limit: u64 },
    #[error("cannot create the shared memory: {0}")]
    Create(String),
    #[error("cannot link the module: {0}")]
    Link(String),
    #[error("cannot start the main thread: {0}")]
    Start(String),
}

/// The threads of one cage.
pub struct ThreadGroup {
    memory: SharedMemory,
    /// The module linked against `memory`: every thread instantiates it.
    /// Set once the main thread's store exists (defining an import takes
    /// a store).
    pre: OnceLock<InstancePre<Cage>>,
    max_threads: u32,
    /// Live threads, the main thread included.
    live: AtomicU32,
    next_tid: AtomicU32,
    ended: AtomicBool,
    end: Mutex<Option<End>>,
    end_cv: Condvar,
    /// Forks in progress and the threads standing still for them.
    pause: Mutex<Pause>,
    pause_cv: Condvar,
    control: Arc<Control>,
    fds: SharedFds,
    engine: Engine,
    /// Bytes of the run's memory total claimed for `memory` (its maximum:
    /// wasmtime does not consult a store's limiter when a shared memory
    /// grows, so the whole maximum is counted up front).
    claimed: AtomicU64,
    total: Arc<MemoryTotal>,
    /// The cage's own memory limit when it lowered the module's maximum:
    /// a trap with the memory at that maximum is reported as the limit.
    limit: Option<u64>,
}

impl ThreadGroup {
    pub fn memory(&self) -> &SharedMemory {
        &self.memory
    }

    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Ends the group, unless it already ended: wakes whoever waits for
    /// the end and makes every other thread stop.
    fn end(&self, end: End) {
        let mut slot = self.end.lock().unwrap_or_else(|e| e.into_inner());
        if self.ended.swap(true, Ordering::SeqCst) {
            return;
        }
        *slot = Some(end);
        drop(slot);
        self.end_cv.notify_all();
        // Threads in a host wait wake up and see the end; threads running
        // wasm see it at the epoch check this triggers.
        self.control.wake();
        self.engine.increment_epoch();
    }

    fn wait_end(&self) -> End {
        let mut slot = self.end.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(end) = slot.take() {
                return end;
            }
            slot = self.end_cv.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The run's memory total no longer counts this cage's memory.
    fn release_memory(&self) {
        self.total.release(self.claimed.swap(0, Ordering::SeqCst));
    }

    /// A thread's end: `end` is what ended the cage, if this thread did.
    fn thread_done(&self, end: Option<End>) {
        let last = self.live.fetch_sub(1, Ordering::SeqCst) == 1;
        match end {
            Some(end) => self.end(end),
            // Every thread ended quietly (the main thread by
            // `pthread_exit`): as on Linux, the process exits with 0.
            None if last => self.end(End::Outcome(Outcome::Exited(0))),
            None => {}
        }
    }

    /// Threads of the cage still running (the main thread included).
    pub fn live(&self) -> u32 {
        self.live.load(Ordering::SeqCst)
    }

    /// A trap while the memory is within an eighth of the maximum the
    /// cage's memory limit set is reported as that limit: wasmtime does not
    /// say when a shared memory's `memory.grow` fails, and an allocator
    /// that cannot grow (Rust's aborts) fails a whole chunk short of it.
    fn refine(&self, outcome: Outcome) -> Outcome {
        match (outcome, self.limit) {
            (Outcome::Trapped(_), Some(limit))
                if self.memory.data_size() as u64 + (limit / 8).max(WASM_PAGE) > limit =>
            {
                Outcome::MemoryLimit(limit)
            }
            (outcome, _) => outcome,
        }
    }
}

/// Runs a threaded cage: creates its shared memory, starts its main thread
/// on a host thread of its own, and waits for the group to end (not for
/// the main thread: it may be blocked in a wait that only the guest can
/// end).
pub fn run(cage: Cage, module: &Module, entry: Entry) -> End {
    match start(cage, module, entry) {
        Ok(group) => group.conclude(),
        Err((e, limit)) => End::Outcome(match e {
            GroupError::Memory { .. } => Outcome::MemoryLimit(limit),
            other => Outcome::Trapped(other.to_string()),
        }),
    }
}

fn start(
    mut cage: Cage,
    module: &Module,
    entry: Entry,
) -> Result<Arc<ThreadGroup>, (GroupError, u64)> {
    let Some(ty) = shared_memory_import(module) else {
        return Err((GroupError::Link("no shared memory import".into()), 0));
    };
    let group = ThreadGroup::create(&mut cage, &ty, ty.minimum())?;
    let fail = |group: &ThreadGroup, e: GroupError| {
        group.release_memory();
        (e, 0)
    };
    let runtime = cage.runtime.clone();
    let mut store = new_store(cage)
        .map_err(|o| fail(&group, GroupError::Start(o.message().unwrap_or_default())))?;
    limits::refill(&mut store);
    group.link(&store, module).map_err(|e| fail(&group, e))?;
    let threads = runtime.kernel.threads().clone();
    let main = group.clone();
    threads
        .run(move || main_thread(main, store, Start::Fresh(entry)))
        .map_err(|e| fail(&group, GroupError::Start(e.to_string())))?;
    Ok(group)
}

/// A fork in one thread of a threaded cage (POSIX: the child has a copy of
/// the memory and that one thread).
pub(crate) struct Fork {
    /// The forking thread's entry, which the child's only thread rewinds
    /// into.
    pub entry: Entry,
    pub child: u32,
    /// The asyncify buffer the forking thread unwound into.
    pub buffer: u32,
    pub control: Arc<Control>,
}

impl ThreadGroup {
    /// Makes the shared memory of `cage` (at least `min_pages` pages, the
    /// maximum lowered by the cage's and the run's memory limits) and the
    /// group around it; `cage` becomes its first thread.
    fn create(
        cage: &mut Cage,
        ty: &MemoryType,
        min_pages: u64,
    ) -> Result<Arc<ThreadGroup>, (GroupError, u64)> {
        let runtime = cage.runtime.clone();
        let total = runtime.memory.clone();
        let page = ty.page_size();
        let declared_max = ty.maximum().unwrap_or(ty.minimum()).max(min_pages);
        // The cage's memory limit lowers the memory's maximum: `memory.grow`
        // past it then fails (returns -1), as past the run's total.
        let own_limit = cage.limiter.max_memory;
        let mut max = declared_max;
        if let Some(limit) = own_limit {
            max = max.min(limit / page);
        }
        // The run's total must hold the whole maximum; what it has left
        // lowers the maximum further.
        let left = total.limit().saturating_sub(total.used());
        max = max.min(left / page);
        let limit_bytes = own_limit.unwrap_or(total.limit());
        if max < min_pages {
            return Err((
                GroupError::Memory {
                    needed: min_pages * page,
                    limit: limit_bytes,
                },
                limit_bytes,
            ));
        }
        let claim = max * page;
        if !total.claim(claim) {
            return Err((
                GroupError::Memory {
                    needed: claim,
                    limit: limit_bytes,
                },
                limit_bytes,
            ));
        }
        let (min32, max32) = match (u32::try_from(min_pages), u32::try_from(max)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => {
                total.release(claim);
                return Err((GroupError::Create("a 64-bit memory".into()), 0));
            }
        };
        let engine = runtime.kernel.engine().clone();
        let memory = match SharedMemory::new(&engine, MemoryType::shared(min32, max32)) {
            Ok(m) => m,
            Err(e) => {
                total.release(claim);
                return Err((GroupError::Create(format!("{e:#}")), 0));
            }
        };
        let max_threads = runtime
            .max_threads
            .unwrap_or(warden_policy::DEFAULT_MAX_THREADS)
            .max(1);
        let group = Arc::new(ThreadGroup {
            memory,
            pre: OnceLock::new(),
            max_threads,
            live: AtomicU32::new(1),
            next_tid: AtomicU32::new(1),
            ended: AtomicBool::new(false),
            end: Mutex::new(None),
            end_cv: Condvar::new(),
            pause: Mutex::new(Pause::default()),
            pause_cv: Condvar::new(),
            control: cage.control.clone(),
            fds: cage.fds.clone(),
            engine,
            claimed: AtomicU64::new(claim),
            total,
            limit: own_limit.filter(|&l| l / page < declared_max),
        });
        cage.group = Some(group.clone());
        Ok(group)
    }

    /// Links `module` against the group's memory, for every thread to
    /// instantiate (defining an import takes a store: the first thread's).
    fn link(&self, store: &Store<Cage>, module: &Module) -> Result<(), GroupError> {
        let mut linker: Linker<Cage> = (*store.data().runtime.kernel.linker).clone();
        let pre = linker
            .define(store, MEMORY_MODULE, MEMORY_NAME, self.memory.clone())
            .and_then(|l| l.instantiate_pre(module))
            .map_err(|e| GroupError::Link(format!("{e:#}")))?;
        let _ = self.pre.set(pre);
        Ok(())
    }

    /// Waits for the group's end. The image is over even if a thread is
    /// still stuck in a wait: its memory counts no more, and at the cage's
    /// end its descriptors close now (pipe readers see EOF). An exec keeps
    /// them.
    fn conclude(&self) -> End {
        let end = self.wait_end();
        self.release_memory();
        if let End::Outcome(_) = end {
            self.fds.close_all();
        }
        end
    }

    /// The second half of a `fork` in one of the group's threads, whose
    /// stack is unwound into `fork.buffer`: a new cage with a copy of the
    /// memory and that thread's globals, started on a thread of its own
    /// and rewinding into `proc_fork`. `ENOMEM` when the run's memory
    /// total has no room for the copy, `EAGAIN` for anything else.
    pub(crate) fn fork(
        &self,
        parent: &mut Store<Cage>,
        instance: &Instance,
        fork: Fork,
    ) -> Result<(), Errno> {
        let module = instance.module(&*parent).clone();
        let ty = shared_memory_import(&module).ok_or(Errno::AGAIN)?;
        let mut cage = parent.data().fork_child(fork.child, fork.control);
        // The other threads stand still while the memory is copied, as
        // a native fork copies it at one instant.
        let paused = self.pause();
        let pages = self.memory.data_size() as u64 / ty.page_size();
        let group = ThreadGroup::create(&mut cage, &ty, pages).map_err(|(e, _)| match e {
            GroupError::Memory { .. } => Errno::NOMEM,
            _ => Errno::AGAIN,
        })?;
        let fail = |group: &ThreadGroup, store: Option<Store<Cage>>| {
            group.release_memory();
            if let Some(store) = store {
                retire(store);
            }
            Errno::AGAIN
        };
        let mut store = match new_store(cage) {
            Ok(s) => s,
            Err(_) => return Err(fail(&group, None)),
        };
        limits::refill(&mut *parent);
        limits::refill(&mut store);
        if group.link(&store, &module).is_err() {
            return Err(fail(&group, Some(store)));
        }
        copy_memory(&self.memory, &group.memory);
        drop(paused);
        let Some(pre) = group.pre.get() else {
            return Err(fail(&group, Some(store)));
        };
        // The copied memory is initialised already: the module's start
        // function (`__wasm_init_memory`) sees that and leaves it alone.
        let child_instance = match pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(_) => return Err(fail(&group, Some(store))),
        };
        if crate::process::copy_globals(parent, instance, &mut store, &child_instance).is_err() {
            return Err(fail(&group, Some(store)));
        }
        let runtime = store.data().runtime.clone();
        let threads = runtime.kernel.threads().clone();
        let resume = Start::Resume {
            instance: child_instance,
            entry: fork.entry,
            buffer: fork.buffer,
        };
        let first = group.clone();
        if threads
            .run(move || main_thread(first, store, resume))
            .is_err()
        {
            group.release_memory();
            return Err(Errno::AGAIN);
        }
        // The child's cage lives as long as its group: something must
        // wait for that end and report it, as `run_cage` does for a cage
        // started by `warden run` or `exec`.
        let pid = fork.child;
        let waiter = move || {
            let procs = runtime.procs.clone();
            crate::process::guarded(pid, &procs, || {
                crate::process::conclude_group(&runtime, pid, group.conclude())
            });
        };
        if threads.run(waiter).is_err() {
            // Nobody would report the child's end: stop it at once.
            return Err(Errno::AGAIN);
        }
        Ok(())
    }

    /// Makes every other thread of the group stop at its next epoch check
    /// until the returned guard is dropped. Threads blocked in a host call
    /// or in `memory.atomic.wait` are not waited for (they do not run
    /// guest code), beyond a short grace period.
    fn pause(&self) -> Paused<'_> {
        let mut state = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        state.requests += 1;
        self.engine.increment_epoch();
        let others = self.live().saturating_sub(1);
        let grace = std::time::Instant::now() + PAUSE_GRACE;
        while state.parked < others {
            let now = std::time::Instant::now();
            if now >= grace {
                break;
            }
            state = self
                .pause_cv
                .wait_timeout(state, grace - now)
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        Paused { group: self }
    }

    /// Called at a thread's epoch check: waits while a fork copies memory.
    pub(crate) fn park_if_paused(&self) {
        let mut state = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        if state.requests == 0 {
            return;
        }
        state.parked += 1;
        self.pause_cv.notify_all();
        while state.requests > 0 && !self.is_ended() {
            state = self.pause_cv.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.parked -= 1;
    }
}

/// How long a fork waits for the other threads to stand still.
const PAUSE_GRACE: std::time::Duration = std::time::Duration::from_millis(20);

#[derive(Default)]
struct Pause {
    /// Forks copying memory now.
    requests: u32,
    /// Threads standing still for them.
    parked: u32,
}

/// The other threads stand still while this lives.
struct Paused<'a> {
    group: &'a ThreadGroup,
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        let mut state = self.group.pause.lock().unwrap_or_else(|e| e.into_inner());
        state.requests -= 1;
        drop(state);
        self.group.pause_cv.notify_all();
    }
}

/// Copies the bytes of `from` into `to`, which is at least as large.
fn copy_memory(from: &SharedMemory, to: &SharedMemory) {
    let len = from.data_size().min(to.data_size());
    let src = from.data().as_ptr() as *const u8;
    let dst = to.data().as_ptr() as *mut u8;
    // SAFETY: both memories have at least `len` accessible bytes and never
    // move or shrink; `to` is new and no guest runs in it yet. `from`'s
    // other threads stand still (`pause`), except any blocked in a host
    // call, whose later writes a native fork would not copy either.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, len) };
}

/// How a group's thread begins.
enum Start {
    /// The main thread of a new cage: instantiate, run the entry.
    Fresh(Entry),
    /// The only thread of a fork child: rewind into `proc_fork`.
    Resume {
        instance: Instance,
        entry: Entry,
        buffer: u32,
    },
}

/// The first thread of a group: its end is the cage's unless it calls
/// `pthread_exit`.
fn main_thread(group: Arc<ThreadGroup>, mut store: Store<Cage>, start: Start) {
    let body = std::panic::AssertUnwindSafe(|| {
        let Some(pre) = group.pre.get() else {
            return ThreadEnd::Outcome(Outcome::Trapped("thread group without a module".into()));
        };
        let (instance, entry, resumed) = match start {
            Start::Fresh(entry) => match pre.instantiate(&mut store) {
                Ok(i) => (i, entry, false),
                Err(e) => return ThreadEnd::Outcome(group.refine(classify(&store, e))),
            },
            Start::Resume {
                instance,
                entry,
                buffer,
            } => {
                let rewind = instance
                    .get_typed_func::<i32, ()>(&mut store, "asyncify_start_rewind")
                    .and_then(|f| f.call(&mut store, buffer as i32));
                if let Err(e) = rewind {
                    return ThreadEnd::Outcome(classify(&store, e));
                }
                (instance, entry, true)
            }
        };
        thread_body(&group, &mut store, &instance, pre, &entry, resumed)
    });
    let end = std::panic::catch_unwind(body).unwrap_or_else(|_| {
        ThreadEnd::Outcome(Outcome::Trapped("a bug in warden ended the thread".into()))
    });
    let cage = retire(store);
    group.thread_done(end.with(cage));
}

/// Runs one thread's entry to its end, through forks and `pthread_exit`.
fn thread_body(
    group: &ThreadGroup,
    store: &mut Store<Cage>,
    instance: &Instance,
    pre: &InstancePre<Cage>,
    entry: &Entry,
    resumed: bool,
) -> ThreadEnd {
    match crate::process::drive(store, instance, pre, entry, resumed) {
        Ended::Outcome(o) => match o {
            // Another thread ended the cage: this one has no outcome.
            Outcome::Killed if group.is_ended() => ThreadEnd::Quietly,
            o => ThreadEnd::Outcome(group.refine(o)),
        },
        Ended::Exec(plan) => ThreadEnd::Exec(plan),
        Ended::Returned => ThreadEnd::Quietly,
        Ended::ThreadExit => exit_thread(group, store, instance, entry),
    }
}

/// The rest of `pthread_exit`, once the thread's call stack is gone: the
/// C library's exit work (destructors, waking a joiner, leaving the thread
/// list; the last thread out exits the process) runs in the guest's
/// `__warden_thread_exit`. docs/process-abi.md, "Threads".
fn exit_thread(
    group: &ThreadGroup,
    store: &mut Store<Cage>,
    instance: &Instance,
    entry: &Entry,
) -> ThreadEnd {
    let (tid, arg) = match entry {
        Entry::Thread { tid, arg } => (*tid as i32, *arg as i32),
        // The main thread: the guest knows its own.
        _ => (0, 0),
    };
    let exit = instance.get_typed_func::<(i32, i32), ()>(&mut *store, THREAD_EXIT);
    match exit.and_then(|f| f.call(&mut *store, (tid, arg))) {
        Ok(()) => ThreadEnd::Quietly,
        Err(err) => match err.downcast::<Stop>() {
            Ok(Stop::GroupEnded) | Ok(Stop::ThreadExit) => ThreadEnd::Quietly,
            Ok(Stop::Exec(plan)) => ThreadEnd::Exec(plan),
            Ok(stop) => ThreadEnd::Outcome(group.refine(classify(store, stop.into()))),
            Err(err) => ThreadEnd::Outcome(group.refine(classify(store, err))),
        },
    }
}

/// The guest export that finishes `pthread_exit`.
pub const THREAD_EXIT: &str = "__warden_thread_exit";

/// How one thread ended, before its store is retired.
enum ThreadEnd {
    /// It returned, or stopped because another thread ended the cage.
    Quietly,
    Outcome(Outcome),
    Exec(Box<ExecPlan>),
}

impl ThreadEnd {
    /// What this thread's end means for the cage; `cage` is the thread's
    /// state, which an exec carries on with.
    fn with(self, cage: Cage) -> Option<End> {
        match self {
            ThreadEnd::Quietly => None,
            ThreadEnd::Outcome(o) => Some(End::Outcome(o)),
            ThreadEnd::Exec(plan) => Some(End::Exec(plan, Box::new(cage))),
        }
    }
}

impl Cage {
    /// `wasi.thread-spawn`: starts a thread running `wasi_thread_start(tid,
    /// start_arg)`; its id, or the errno why not.
    pub fn thread_spawn(&mut self, start_arg: u32) -> Result<u32, Errno> {
        self.check(warden_policy::Subsystem::Threads)?;
        let Some(group) = self.group.clone() else {
            // A module without a shared memory cannot have threads.
            return Err(Errno::NOSYS);
        };
        let Some(pre) = group.pre.get() else {
            return Err(Errno::AGAIN);
        };
        if !matches!(pre.module().get_export(START), Some(ExternType::Func(_))) {
            return Err(crate::note::deny(
                Errno::NOSYS,
                "no wasi_thread_start export",
            ));
        }
        if group.is_ended() {
            return Err(Errno::AGAIN);
        }
        let max = group.max_threads;
        if group
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            return Err(crate::note::deny(
                Errno::AGAIN,
                "limits.max_threads reached",
            ));
        }
        let undo = |group: &ThreadGroup| {
            group.live.fetch_sub(1, Ordering::SeqCst);
        };
        let tid = group.next_tid.fetch_add(1, Ordering::SeqCst);
        if tid > MAX_TID {
            undo(&group);
            return Err(Errno::AGAIN);
        }
        let cage = self.thread_sibling(group.clone());
        let mut store = match new_store(cage) {
            Ok(s) => s,
            Err(_) => {
                undo(&group);
                return Err(Errno::AGAIN);
            }
        };
        // The caller's fuel is parked in the pool during this call: the new
        // thread takes its share of the remainder.
        limits::refill(&mut store);
        let instance = match pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(_) => {
                retire(store);
                undo(&group);
                return Err(Errno::AGAIN);
            }
        };
        if instance
            .get_typed_func::<(i32, i32), ()>(&mut store, START)
            .is_err()
        {
            retire(store);
            undo(&group);
            return Err(Errno::NOSYS);
        }
        let threads = self.runtime.kernel.threads().clone();
        let g = group.clone();
        let job = move || {
            let mut store = store;
            let entry = Entry::Thread {
                tid,
                arg: start_arg,
            };
            let body = std::panic::AssertUnwindSafe(|| match g.pre.get() {
                Some(pre) => thread_body(&g, &mut store, &instance, pre, &entry, false),
                None => ThreadEnd::Quietly,
            });
            let end = std::panic::catch_unwind(body).unwrap_or_else(|_| {
                ThreadEnd::Outcome(Outcome::Trapped("a bug in warden ended a thread".into()))
            });
            let cage = retire(store);
            g.thread_done(end.with(cage));
        };
        if threads.run(job).is_err() {
            // The job, and the store in it, were dropped: its fuel is lost
            // to the run, which can only end it sooner.
            undo(&group);
            return Err(Errno::AGAIN);
        }
        Ok(tid)
    }
}
