//! A cage: one sandboxed process. Its state is the wasmtime store's data:
//! the fd table, arguments, environment, the policy's grants, its limits,
//! and the control block through which the host stops it.

use crate::abi::{Errno, Result};
use crate::fdtable::{FdEntry, FdTable};
use crate::trace::Tracer;
use crate::vfs::stdio::{Denied, HostStream, Null};
use crate::vfs::Node;
use crate::{note, KernelError};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
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
}

/// Shared between a cage's thread and whoever may stop it.
pub struct Control {
    stop: AtomicU8,
    deadline: Option<Instant>,
    /// Wakes a cage blocked in `poll_oneoff` so it sees the stop.
    waker: std::os::fd::OwnedFd,
}

impl Control {
    pub fn new(deadline: Option<Instant>) -> std::io::Result<Control> {
        let waker = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        Ok(Control {
            stop: AtomicU8::new(StopReason::Running as u8),
            deadline,
            waker,
        })
    }

    /// Asks the cage to stop; it does at its next epoch check or wake-up.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.stop.compare_exchange(
            StopReason::Running as u8,
            reason as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        let _ = rustix::io::write(&self.waker, &1u64.to_ne_bytes());
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
            _ => StopReason::Running,
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn waker_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.waker.as_fd()
    }
}

/// The error a cage's call returns to stop the guest: the guest's own exit,
/// a signal, or the host's stop.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    #[error("guest exited with {0}")]
    Exit(u32),
    #[error("guest raised signal {0}")]
    Signal(u8),
    #[error("guest stopped by the host: {0:?}")]
    Host(StopReason),
    #[error("guest called proc_exit({0}) but the `exit` subsystem is denied")]
    ExitDenied(u32),
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

/// Memory-limit bookkeeping, consulted by wasmtime on every `memory.grow`.
pub struct Limiter {
    pub max_memory: Option<u64>,
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
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match self.max_memory {
            Some(limit) if desired as u64 > limit => Err(MemoryLimitExceeded { limit }.into()),
            _ => Ok(true),
        }
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

pub struct Cage {
    pub id: u32,
    pub memory: Option<Memory>,
    pub fds: FdTable,
    pub args: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    allowed: [bool; Subsystem::ALL.len()],
    pub limiter: Limiter,
    pub tracer: Option<Arc<Tracer>>,
    pub control: Arc<Control>,
}

impl Cage {
    /// Builds cage 1's state from a policy: stdio, then preopens in order.
    pub fn new(
        id: u32,
        program: &str,
        policy: &Policy,
        preopens: Vec<(String, Arc<dyn Node>)>,
        tracer: Option<Arc<Tracer>>,
        control: Arc<Control>,
    ) -> std::result::Result<Cage, KernelError> {
        let mut fds = FdTable::default();
        let stdio: [(StdioMode, fn() -> HostStream); 3] = [
            (policy.stdio.stdin, HostStream::stdin),
            (policy.stdio.stdout, HostStream::stdout),
            (policy.stdio.stderr, HostStream::stderr),
        ];
        for (mode, host) in stdio {
            let node: Arc<dyn Node> = match mode {
                StdioMode::Allow => Arc::new(host()),
                StdioMode::Deny => Arc::new(Denied),
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
        for (i, sub) in Subsystem::ALL.into_iter().enumerate() {
            allowed[i] = policy.allows(sub);
        }
        Ok(Cage {
            id,
            memory: None,
            fds,
            args,
            env,
            allowed,
            limiter: Limiter {
                max_memory: policy.limits.max_memory,
            },
            tracer,
            control,
        })
    }

    /// Fails with `ENOTCAPABLE`, noted for the trace, unless `sub` is allowed.
    pub fn check(&self, sub: Subsystem) -> Result<()> {
        let i = Subsystem::ALL
            .iter()
            .position(|s| *s == sub)
            .unwrap_or(usize::MAX);
        if self.allowed.get(i).copied().unwrap_or(false) {
            Ok(())
        } else {
            Err(note::deny(Errno::NOTCAPABLE, policy_note(sub)))
        }
    }
}

fn policy_note(sub: Subsystem) -> &'static str {
    match sub {
        Subsystem::Clocks => "denied by policy: clocks",
        Subsystem::Random => "denied by policy: random",
        Subsystem::Exit => "denied by policy: exit",
        Subsystem::Env => "denied by policy: env",
        Subsystem::Fs => "denied by policy: fs",
        Subsystem::Sockets => "denied by policy: sockets",
    }
}
