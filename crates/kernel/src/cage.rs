//! A cage: one sandboxed process. Its state is the wasmtime store's data:
//! the fd table, arguments, environment, the policy's grants, its limits,
//! and the control block through which the host stops it.

use crate::abi::{signal, Errno, Result};
use crate::fdtable::{FdEntry, FdTable, SharedFds};
use crate::limits::{FuelPool, MemoryTotal};
use crate::note::{Denial, DenialNotes};
use crate::procs::ProcTable;
use crate::trace::Tracer;
use crate::vfs::stdio::{Denied, HostStream, Null};
use crate::vfs::Node;
use crate::{note, KernelError};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use warden_policy::{Policy, StdioMode, Subsystem};
use wasmtime::Memory;

/// Why the host stopped a cage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StopReason {
    Running = 0,
    Timeout = 1,
    Killed = 2,
    /// Another cage of the run used up the run's fuel.
    OutOfFuel = 3,
}

/// Shared between a cage's thread and whoever may stop it.
pub struct Control {
    stop: AtomicU8,
    /// Pending signals, bit `n` for Linux signal `n`.
    pending: AtomicU64,
    deadline: Option<Instant>,
    /// Wakes a cage blocked in a host wait so it sees a stop or a signal.
    /// Made on the first wait: most cages never block.
    waker: OnceLock<Option<OwnedFd>>,
}

impl Control {
    pub fn new(deadline: Option<Instant>) -> Control {
        Control {
            stop: AtomicU8::new(StopReason::Running as u8),
            pending: AtomicU64::new(0),
            deadline,
            waker: OnceLock::new(),
        }
    }

    /// Wakes the cage if it has a waker. One made after this call is
    /// harmless: the waiter checks the state again once it has the waker.
    pub(crate) fn wake(&self) {
        if let Some(Some(fd)) = self.waker.get() {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }

    /// Asks the cage to stop; it does at its next epoch check or wake-up.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.stop.compare_exchange(
            StopReason::Running as u8,
            reason as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.wake();
    }

    /// The reason to stop now, checking the deadline as a side effect.
    pub fn stop_reason(&self) -> StopReason {
        if let Some(deadline) = self.deadline {
            if Instant::now() >= deadline {
                self.stop(StopReason::Timeout);
            }
        }
        match self.stop.load(Ordering::SeqCst) {
            1 => StopReason::Timeout,
            2 => StopReason::Killed,
            3 => StopReason::OutOfFuel,
            _ => StopReason::Running,
        }
    }

    /// Marks `sig` pending and wakes the cage if it is blocked.
    pub fn raise(&self, sig: u8) {
        if sig == 0 || sig > signal::linux::MAX {
            return;
        }
        self.pending.fetch_or(1 << sig, Ordering::SeqCst);
        self.wake();
    }

    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::SeqCst)
    }

    fn clear(&self, mask: u64) {
        self.pending.fetch_and(!mask, Ordering::SeqCst);
    }

    /// Empties the waker after a wake-up, so the next wait blocks again.
    pub fn drain_waker(&self) {
        if let Some(Some(fd)) = self.waker.get() {
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(fd, &mut buf);
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The waker, made now if need be; `None` if the host refused an
    /// eventfd, in which case waits still end at the deadline.
    pub fn waker_fd(&self) -> Option<BorrowedFd<'_>> {
        self.waker
            .get_or_init(|| {
                rustix::event::eventfd(
                    0,
                    rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
                )
                .ok()
            })
            .as_ref()
            .map(|fd| fd.as_fd())
    }
}

/// The error a cage's call returns to stop the guest: the guest's own exit,
/// a signal, or the host's stop.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    #[error("guest exited with {0}")]
    Exit(u32),
    #[error("guest ended by {}", signal::linux::name(*.0))]
    Signal(u8),
    /// `proc_exec` succeeded: the cage goes on with another module.
    #[error("guest replaced itself by another module")]
    Exec(Box<crate::process::ExecPlan>),
    #[error("guest stopped by the host: {0:?}")]
    Host(StopReason),
    #[error("guest called proc_exit({0}) but the `exit` subsystem is denied")]
    ExitDenied(u32),
    /// Another thread of the cage ended it (an exit, a trap, an exec):
    /// this one stops without an outcome of its own.
    #[error("another thread of the cage ended it")]
    GroupEnded,
    /// `pthread_exit`: this thread's call stack ends; the cage goes on
    /// (`group`).
    #[error("the thread called pthread_exit")]
    ThreadExit,
}

/// What a syscall yields: an errno for the guest, or a reason to stop it.
pub enum SysError {
    Errno(Errno),
    Stop(Stop),
}

impl From<Errno> for SysError {
    fn from(e: Errno) -> Self {
        SysError::Errno(e)
    }
}

pub type SysResult<T = ()> = std::result::Result<T, SysError>;

/// Memory-limit bookkeeping, consulted by wasmtime on every `memory.grow`
/// (and for a memory's initial size): the cage's own limit, and the run's
/// total, which this cage's memory counts against until it is released.
pub struct Limiter {
    pub max_memory: Option<u64>,
    total: Arc<MemoryTotal>,
    /// Bytes this cage's memories count in `total`.
    counted: u64,
    /// The last growth counted, undone if the growth then fails.
    last_claim: u64,
    /// Set once the run's total has refused this cage a growth, so that a
    /// fork whose child could not get its memory fails with `ENOMEM`.
    pub refused_total: bool,
}

impl Limiter {
    pub fn new(max_memory: Option<u64>, total: Arc<MemoryTotal>) -> Limiter {
        Limiter {
            max_memory,
            total,
            counted: 0,
            last_claim: 0,
            refused_total: false,
        }
    }

    /// A limiter for another cage of the same run, counting nothing yet.
    pub fn sibling(&self) -> Limiter {
        Limiter::new(self.max_memory, self.total.clone())
    }

    /// Linear memory this cage's memories have now, in bytes (memories
    /// never shrink: at the end of a run, its peak).
    pub fn counted(&self) -> u64 {
        self.counted
    }

    /// The run's total memory limit, in bytes.
    pub fn total_limit(&self) -> u64 {
        self.total.limit()
    }

    /// The cage's memories are gone (its end, or an exec): they count no
    /// more.
    pub fn release(&mut self) {
        self.total.release(std::mem::take(&mut self.counted));
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.release();
    }
}

/// The error `memory.grow` past the limit traps with.
#[derive(Debug, thiserror::Error)]
#[error("guest exceeded its memory limit of {}", warden_policy::format_size(*.limit))]
pub struct MemoryLimitExceeded {
    pub limit: u64,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if let Some(limit) = self.max_memory {
            if desired as u64 > limit {
                return Err(MemoryLimitExceeded { limit }.into());
            }
        }
        // Past the run's total, growth fails as it would on a host out of
        // memory: `memory.grow` returns -1 and the guest goes on.
        let more = (desired as u64).saturating_sub(current as u64);
        if !self.total.claim(more) {
            self.refused_total = true;
            return Ok(false);
        }
        self.counted += more;
        self.last_claim = more;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // Counted in `memory_growing`, but the memory did not grow.
        let claimed = std::mem::take(&mut self.last_claim);
        self.counted -= claimed;
        self.total.release(claimed);
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

/// What a cage does with a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Disposition {
    Default = 0,
    Ignore = 1,
    /// Run the guest's handler through its `__warden_signal` export.
    Handle = 2,
}

/// A cage's signal dispositions, one per signal, shared by its threads
/// (POSIX: dispositions are per process).
pub struct Dispositions([AtomicU8; signal::linux::MAX as usize + 1]);

impl Dispositions {
    pub fn new() -> Arc<Dispositions> {
        Arc::new(Dispositions(std::array::from_fn(|_| {
            AtomicU8::new(Disposition::Default as u8)
        })))
    }

    pub fn get(&self, sig: u8) -> Disposition {
        match self.0.get(sig as usize).map(|d| d.load(Ordering::SeqCst)) {
            Some(1) => Disposition::Ignore,
            Some(2) => Disposition::Handle,
            _ => Disposition::Default,
        }
    }

    pub fn set(&self, sig: u8, d: Disposition) {
        if let Some(slot) = self.0.get(sig as usize) {
            slot.store(d as u8, Ordering::SeqCst);
        }
    }

    /// A separate copy, for a fork child.
    pub fn copy(&self) -> Arc<Dispositions> {
        let out = Dispositions::new();
        for sig in 0..=signal::linux::MAX {
            out.set(sig, self.get(sig));
        }
        out
    }

    /// `exec`: handled signals go back to their default action.
    fn reset_handled(&self) {
        for sig in 0..=signal::linux::MAX {
            if self.get(sig) == Disposition::Handle {
                self.set(sig, Disposition::Default);
            }
        }
    }
}

pub struct Cage {
    pub pid: u32,
    pub memory: Option<Memory>,
    /// Shared by the cage's threads, as are `dispositions` and `control`;
    /// the rest is each thread's own (see `group`).
    pub fds: SharedFds,
    pub args: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    allowed: [bool; Subsystem::ALL.len()],
    pub limiter: Limiter,
    pub tracer: Option<Arc<Tracer>>,
    pub control: Arc<Control>,
    pub dispositions: Arc<Dispositions>,
    pub procs: Arc<ProcTable>,
    pub runtime: Arc<Runtime>,
    /// Set by `proc_fork` between the unwind and the rewind.
    pub fork: Option<ForkState>,
    /// The cage's threads, when its module uses a shared memory.
    pub group: Option<Arc<crate::group::ThreadGroup>>,
}

/// Where a fork is, between `proc_fork`'s two halves.
pub enum ForkState {
    /// Unwinding into the asyncify buffer at `buffer`; pid `child` is
    /// reserved with its control block.
    Unwinding {
        buffer: u32,
        child: u32,
        control: Arc<Control>,
    },
    /// Rewinding: `proc_fork` returns the child's pid in the parent, 0 in
    /// the child, or the errno of a fork that could not start the child.
    Rewinding {
        result: std::result::Result<u32, Errno>,
    },
}

impl Cage {
    /// Builds the first cage's state from a policy: stdio, then preopens in
    /// order.
    pub fn new(
        pid: u32,
        program: &str,
        policy: &Policy,
        preopens: Vec<(String, Arc<dyn Node>)>,
        runtime: Arc<Runtime>,
        control: Arc<Control>,
    ) -> std::result::Result<Cage, KernelError> {
        let mut fds = FdTable::default();
        let stdio: [(StdioMode, fn() -> HostStream); 3] = [
            (policy.stdio.stdin, HostStream::stdin),
            (policy.stdio.stdout, HostStream::stdout),
            (policy.stdio.stderr, HostStream::stderr),
        ];
        for (fd, (mode, host)) in (0u8..).zip(stdio) {
            let node: Arc<dyn Node> = match mode {
                StdioMode::Allow => Arc::new(host()),
                StdioMode::Deny => Arc::new(Denied {
                    fd,
                    notes: runtime.notes.clone(),
                }),
                StdioMode::Ignore => Arc::new(Null),
            };
            fds.insert(FdEntry::new(node)).map_err(KernelError::Setup)?;
        }
        for (guest, node) in preopens {
            let mut entry = FdEntry::new(node);
            entry.preopen = Some(guest);
            fds.insert(entry).map_err(KernelError::Setup)?;
        }
        let args = std::iter::once(program.to_string())
            .chain(policy.args.iter().cloned())
            .map(String::into_bytes)
            .collect();
        let env = policy
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}").into_bytes())
            .collect();
        let mut allowed = [false; Subsystem::ALL.len()];
        for sub in Subsystem::ALL {
            allowed[sub as usize] = policy.allows(sub);
        }
        Ok(Cage {
            pid,
            memory: None,
            fds: SharedFds::new(fds),
            args,
            env,
            allowed,
            limiter: Limiter::new(policy.limits.max_memory, runtime.memory.clone()),
            tracer: runtime.tracer.clone(),
            control,
            dispositions: Dispositions::new(),
            procs: runtime.procs.clone(),
            runtime,
            fork: None,
            group: None,
        })
    }

    /// The child's state at a fork: the same grants, a copy of the fd table
    /// (sharing open-file descriptions), the same dispositions.
    pub fn fork_child(&self, pid: u32, control: Arc<Control>) -> Cage {
        Cage {
            pid,
            memory: None,
            fds: self.fds.copy(),
            args: self.args.clone(),
            env: self.env.clone(),
            allowed: self.allowed,
            limiter: self.limiter.sibling(),
            tracer: self.tracer.clone(),
            control,
            dispositions: self.dispositions.copy(),
            procs: self.procs.clone(),
            runtime: self.runtime.clone(),
            fork: Some(ForkState::Rewinding { result: Ok(0) }),
            group: None,
        }
    }

    /// The state of a new thread of this cage: the same pid, descriptors,
    /// dispositions, control block and grants; a store, fuel share and
    /// memory view of its own.
    pub fn thread_sibling(&self, group: Arc<crate::group::ThreadGroup>) -> Cage {
        Cage {
            pid: self.pid,
            memory: None,
            fds: self.fds.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
            allowed: self.allowed,
            limiter: self.limiter.sibling(),
            tracer: self.tracer.clone(),
            control: self.control.clone(),
            dispositions: self.dispositions.clone(),
            procs: self.procs.clone(),
            runtime: self.runtime.clone(),
            fork: None,
            group: Some(group),
        }
    }

    /// What `exec` keeps and resets: descriptors without `CLOEXEC` stay,
    /// handled signals go back to their default action.
    pub fn exec_reset(&mut self, args: Vec<Vec<u8>>, env: Vec<Vec<u8>>) {
        self.fds.close_on_exec();
        self.args = args;
        self.env = env;
        self.memory = None;
        self.fork = None;
        // The other threads are gone (their group ended with the exec).
        self.group = None;
        self.dispositions.reset_handled();
    }

    /// Fails with `ENOTCAPABLE`, noted for the trace (and, the first time
    /// in the run, on stderr), unless `sub` is allowed.
    pub fn check(&self, sub: Subsystem) -> Result<()> {
        if self.allowed[sub as usize] {
            Ok(())
        } else {
            self.runtime.notes.denied(Denial::Subsystem(sub));
            Err(note::deny(Errno::NOTCAPABLE, policy_note(sub)))
        }
    }

    fn disposition(&self, sig: u8) -> Disposition {
        self.dispositions.get(sig)
    }

    /// Whether a pending signal ends the cage now; ignored ones are dropped.
    /// Handled ones stay pending for [`Cage::take_handled`].
    pub fn fatal_signal(&self) -> Option<u8> {
        let pending = self.control.pending();
        if pending == 0 {
            return None;
        }
        let mut ignored = 0u64;
        for sig in 1..=signal::linux::MAX {
            if pending & (1 << sig) == 0 {
                continue;
            }
            match (sig, self.disposition(sig)) {
                (signal::linux::KILL, _) => return Some(sig),
                (_, Disposition::Handle) => {}
                (_, Disposition::Ignore) => ignored |= 1 << sig,
                (s, Disposition::Default) if signal::linux::ignored_by_default(s) => {
                    ignored |= 1 << sig
                }
                (_, Disposition::Default) => return Some(sig),
            }
        }
        self.control.clear(ignored);
        None
    }

    /// Takes the pending signals that have handlers, to run them.
    pub fn take_handled(&self) -> Vec<u8> {
        let pending = self.control.pending();
        let mut out = Vec::new();
        let mut mask = 0u64;
        for sig in 1..=signal::linux::MAX {
            if pending & (1 << sig) != 0 && self.disposition(sig) == Disposition::Handle {
                out.push(sig);
                mask |= 1 << sig;
            }
        }
        self.control.clear(mask);
        out
    }

    /// Checked after every wake-up of a blocking call: a host stop or a
    /// fatal signal stops the cage, a handled signal interrupts the call
    /// with `EINTR` (its handler runs when the call returns).
    pub fn interruption(&self) -> SysResult {
        match self.control.stop_reason() {
            StopReason::Running => {}
            reason => return Err(SysError::Stop(Stop::Host(reason))),
        }
        if self.group.as_ref().is_some_and(|g| g.is_ended()) {
            return Err(SysError::Stop(Stop::GroupEnded));
        }
        if let Some(sig) = self.fatal_signal() {
            return Err(SysError::Stop(Stop::Signal(sig)));
        }
        if self.control.pending() != 0 {
            return Err(Errno::INTR.into());
        }
        Ok(())
    }
}

/// What every cage of a run shares: the engine and linker, how to load
/// modules for `exec`, the process table, the tracer, the denial notes and
/// the run's limits.
pub struct Runtime {
    pub kernel: crate::Kernel,
    pub cache: crate::CacheMode,
    /// The run's fuel budget, when it has one.
    pub fuel: Option<Arc<FuelPool>>,
    /// The linear memory of all the run's cages.
    pub memory: Arc<MemoryTotal>,
    pub procs: Arc<ProcTable>,
    pub tracer: Option<Arc<Tracer>>,
    pub notes: Arc<DenialNotes>,
    /// `limits.max_threads`: live threads of one cage.
    pub max_threads: Option<u32>,
}

fn policy_note(sub: Subsystem) -> &'static str {
    match sub {
        Subsystem::Clocks => "denied by policy: clocks",
        Subsystem::Random => "denied by policy: random",
        Subsystem::Exit => "denied by policy: exit",
        Subsystem::Env => "denied by policy: env",
        Subsystem::Fs => "denied by policy: fs",
        Subsystem::Sockets => "denied by policy: sockets",
        Subsystem::Process => "denied by policy: process",
        Subsystem::Threads => "denied by policy: threads",
    }
}
