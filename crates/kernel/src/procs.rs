//! The process table of one `warden run`: pids, parents, exit statuses,
//! and the waits and signals between cages.

use crate::abi::Errno;
use crate::cage::Control;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Live cages allowed when the policy names no limit.
pub const DEFAULT_MAX_PROCESSES: u32 = warden_policy::DEFAULT_MAX_PROCESSES;

/// A Linux wait status.
pub type WaitStatus = i32;

pub fn exit_status(code: u32) -> WaitStatus {
    ((code & 0xff) << 8) as i32
}

pub fn signal_status(sig: u8) -> WaitStatus {
    (sig & 0x7f) as i32
}

enum State {
    Running(Arc<Control>),
    Zombie(WaitStatus),
}

struct Proc {
    ppid: u32,
    state: State,
}

struct Procs {
    next_pid: u32,
    running: u32,
    table: BTreeMap<u32, Proc>,
}

/// Shared by every cage of a run.
pub struct ProcTable {
    procs: Mutex<Procs>,
    /// Signalled whenever a cage ends or a signal is sent, so waiters recheck.
    changed: Condvar,
    max: u32,
    engine: wasmtime::Engine,
}

impl ProcTable {
    pub fn new(max: Option<u32>, engine: wasmtime::Engine) -> ProcTable {
        ProcTable {
            procs: Mutex::new(Procs {
                next_pid: 1,
                running: 0,
                table: BTreeMap::new(),
            }),
            changed: Condvar::new(),
            max: max.unwrap_or(DEFAULT_MAX_PROCESSES).max(1),
            engine,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Procs> {
        // A panic while holding the lock leaves plain data behind; go on.
        self.procs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves a pid for a new cage, or `EAGAIN` at the limit.
    pub fn spawn(&self, ppid: u32, control: Arc<Control>) -> Result<u32, Errno> {
        let mut procs = self.lock();
        if procs.running >= self.max {
            return Err(Errno::AGAIN);
        }
        let pid = procs.next_pid;
        procs.next_pid += 1;
        procs.running += 1;
        procs.table.insert(
            pid,
            Proc {
                ppid,
                state: State::Running(control),
            },
        );
        Ok(pid)
    }

    pub fn parent(&self, pid: u32) -> u32 {
        self.lock().table.get(&pid).map(|p| p.ppid).unwrap_or(0)
    }

    /// Records that `pid` ended: it becomes a zombie for its parent to
    /// reap, its children are reparented to pid 1, and its parent gets
    /// `SIGCHLD`.
    pub fn exit(&self, pid: u32, status: WaitStatus) {
        let mut procs = self.lock();
        let Some(proc) = procs.table.get_mut(&pid) else {
            return;
        };
        if matches!(proc.state, State::Zombie(_)) {
            return;
        }
        proc.state = State::Zombie(status);
        let ppid = proc.ppid;
        procs.running = procs.running.saturating_sub(1);
        for child in procs.table.values_mut() {
            if child.ppid == pid {
                child.ppid = 1;
            }
        }
        // Cage 1 has no parent to reap it; zombies of an ended parent are
        // reaped by 1 as they would be by init.
        if let Some(State::Running(parent)) = procs.table.get(&ppid).map(|p| &p.state) {
            parent.raise(crate::abi::signal::linux::CHLD);
        }
        drop(procs);
        self.engine.increment_epoch();
        self.changed.notify_all();
    }

    /// Waits for a child of `parent` (`pid` -1: any) to end, and reaps it.
    /// `Ok(None)` with `nohang` when none has ended yet. `interrupted` is
    /// asked after every wake-up; its error ends the wait.
    pub fn join<E>(
        &self,
        parent: u32,
        pid: i32,
        nohang: bool,
        mut interrupted: impl FnMut() -> Result<(), E>,
    ) -> Result<Option<(u32, WaitStatus)>, JoinError<E>> {
        let mut procs = self.lock();
        loop {
            let mut matching = procs
                .table
                .iter()
                .filter(|(p, proc)| proc.ppid == parent && (pid == -1 || **p as i32 == pid))
                .peekable();
            if matching.peek().is_none() {
                return Err(JoinError::NoChild);
            }
            let reaped = matching.find_map(|(p, proc)| match proc.state {
                State::Zombie(status) => Some((*p, status)),
                State::Running(_) => None,
            });
            if let Some((child, status)) = reaped {
                procs.table.remove(&child);
                return Ok(Some((child, status)));
            }
            if nohang {
                return Ok(None);
            }
            drop(procs);
            interrupted().map_err(JoinError::Interrupted)?;
            procs = self.lock();
            // The timeout bounds how late a signal raised between the check
            // above and this wait is noticed.
            procs = self
                .changed
                .wait_timeout(procs, Duration::from_millis(50))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Sends `sig` (Linux numbering) from `sender` to `target`, which must be
    /// the sender or one of its descendants.
    pub fn signal(&self, sender: u32, target: u32, sig: u8) -> Result<(), Errno> {
        let procs = self.lock();
        let Some(proc) = procs.table.get(&target) else {
            return Err(Errno::SRCH);
        };
        let mut at = target;
        let mut allowed = target == sender;
        while !allowed && at != 0 {
            at = procs.table.get(&at).map(|p| p.ppid).unwrap_or(0);
            allowed = at == sender;
        }
        if !allowed {
            return Err(crate::note::deny(Errno::PERM, "not a descendant"));
        }
        if let State::Running(control) = &proc.state {
            if sig != 0 {
                control.raise(sig);
            }
        }
        drop(procs);
        self.engine.increment_epoch();
        self.changed.notify_all();
        Ok(())
    }

    /// Gives up a pid reserved for a child that never ran (a fork that
    /// failed half-way): nobody waits for it, and it counts no more.
    pub fn abandon(&self, pid: u32, control: &Control) {
        control.stop(crate::cage::StopReason::Killed);
        self.exit(pid, signal_status(crate::abi::signal::linux::KILL));
    }

    /// Stops every cage still running (at the end of a run, or a timeout),
    /// and says how many there were.
    pub fn stop_all(&self, reason: crate::cage::StopReason) -> usize {
        let procs = self.lock();
        let mut n = 0;
        for proc in procs.table.values() {
            if let State::Running(control) = &proc.state {
                control.stop(reason);
                n += 1;
            }
        }
        drop(procs);
        self.engine.increment_epoch();
        self.changed.notify_all();
        n
    }

    /// Waits until no cage runs, at most `limit`; says whether none does.
    pub fn wait_idle(&self, limit: Option<Duration>) -> bool {
        let start = std::time::Instant::now();
        let mut procs = self.lock();
        while procs.running > 0 {
            let slice = Duration::from_millis(50);
            let slice = match limit {
                Some(l) => match l.checked_sub(start.elapsed()) {
                    Some(left) if !left.is_zero() => left.min(slice),
                    _ => return false,
                },
                None => slice,
            };
            procs = self
                .changed
                .wait_timeout(procs, slice)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        true
    }
}

pub enum JoinError<E> {
    NoChild,
    Interrupted(E),
}
