//! The `warden` process ABI (docs/process-abi.md): fork, exec, wait,
//! signals, pipes and descriptor duplication between cages.

use super::{dispatch, Raw};
use crate::abi::{signal, Errno, GuestMemory};
use crate::cage::{Cage, Disposition, ForkState, Stop, SysError, SysResult};
use crate::fdtable::FdEntry;
use crate::process::ExecPlan;
use crate::procs::JoinError;
use crate::vfs::{check_path, OpenRequest};
use std::time::Instant;
use warden_policy::Subsystem;
use wasmtime::{Caller, Extern, Linker};

pub const MODULE: &str = "warden";

/// Imports of the `warden` module, by name.
pub const NAMES: &[&str] = &[
    "proc_fork",
    "proc_exec",
    "proc_join",
    "proc_id",
    "proc_parent",
    "proc_signal",
    "proc_sigaction",
    "proc_pause",
    "fd_pipe",
    "fd_dup",
    "fd_dup2",
    "fd_fdflags_get",
    "fd_fdflags_set",
    "thread_exit",
];

/// Exports a module needs for `proc_fork`.
const FORK_EXPORTS: &[&str] = &[
    "asyncify_start_unwind",
    "asyncify_stop_unwind",
    "asyncify_start_rewind",
    "asyncify_stop_rewind",
    "__warden_fork_buffer",
];

/// Whether `module` can fork: it imports `proc_fork` and has what it needs.
pub(crate) fn can_fork(module: &wasmtime::Module) -> bool {
    module
        .imports()
        .any(|i| i.module() == MODULE && i.name() == "proc_fork")
        && FORK_EXPORTS
            .iter()
            .all(|name| module.get_export(name).is_some())
}

const WNOHANG: u32 = 1;
const FDFLAG_CLOEXEC: u32 = 1;
/// Largest module `proc_exec` reads.
const MAX_EXEC_BYTES: u64 = 256 << 20;

/// Splits a buffer of NUL-terminated strings laid end to end.
fn strings(blob: &[u8]) -> Vec<Vec<u8>> {
    if blob.is_empty() {
        return Vec::new();
    }
    // Empty strings are arguments too: only the final terminator goes.
    let blob = blob.strip_suffix(&[0]).unwrap_or(blob);
    blob.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
}

impl Cage {
    pub fn proc_id(&mut self, mem: &mut GuestMemory, out: u32) -> SysResult {
        mem.write_u32(out, self.pid)?;
        Ok(())
    }

    pub fn proc_parent(&mut self, mem: &mut GuestMemory, out: u32) -> SysResult {
        mem.write_u32(out, self.procs.parent(self.pid))?;
        Ok(())
    }

    pub fn proc_join(
        &mut self,
        mem: &mut GuestMemory,
        pid: u32,
        flags: u32,
        status_out: u32,
        pid_out: u32,
    ) -> SysResult {
        mem.slice(status_out, 4)?;
        mem.slice(pid_out, 4)?;
        let procs = self.procs.clone();
        let joined = procs.join(self.pid, pid as i32, flags & WNOHANG != 0, || {
            self.interruption()
        });
        let (child, status) = match joined {
            Ok(Some(found)) => found,
            Ok(None) => (0, 0),
            Err(JoinError::NoChild) => return Err(Errno::CHILD.into()),
            Err(JoinError::Interrupted(e)) => return Err(e),
        };
        mem.write_u32(status_out, status as u32)?;
        mem.write_u32(pid_out, child)?;
        Ok(())
    }

    pub fn proc_signal(&mut self, _mem: &mut GuestMemory, pid: u32, sig: u32) -> SysResult {
        self.check(Subsystem::Process)?;
        if pid as i32 <= 0 {
            return Err(Errno::NOTSUP.into());
        }
        let sig = u8::try_from(sig)
            .ok()
            .filter(|s| *s <= signal::linux::MAX)
            .ok_or(Errno::INVAL)?;
        if signal::linux::is_stop(sig) {
            // A cage cannot be stopped and resumed.
            return Err(Errno::NOTSUP.into());
        }
        self.procs.signal(self.pid, pid, sig)?;
        Ok(())
    }

    pub fn proc_sigaction(
        &mut self,
        _mem: &mut GuestMemory,
        sig: u32,
        disposition: u32,
    ) -> SysResult {
        let sig = u8::try_from(sig)
            .ok()
            .filter(|s| (1..=signal::linux::MAX).contains(s))
            .ok_or(Errno::INVAL)?;
        if sig == signal::linux::KILL || sig == signal::linux::STOP {
            return Err(Errno::INVAL.into());
        }
        let disposition = match disposition {
            0 => Disposition::Default,
            1 => Disposition::Ignore,
            2 => Disposition::Handle,
            _ => return Err(Errno::INVAL.into()),
        };
        self.dispositions.set(sig, disposition);
        Ok(())
    }

    pub fn proc_pause(&mut self, _mem: &mut GuestMemory) -> SysResult {
        loop {
            self.interruption()?;
            self.wait_fds_only_waker()?;
        }
    }

    pub fn fd_pipe(&mut self, mem: &mut GuestMemory, read_out: u32, write_out: u32) -> SysResult {
        mem.slice(read_out, 4)?;
        mem.slice(write_out, 4)?;
        let (r, w) = crate::vfs::pipe::pipe()?;
        let rfd = self.fds.insert(FdEntry::new(r))?;
        let wfd = match self.fds.insert(FdEntry::new(w)) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = self.fds.remove(rfd);
                return Err(e.into());
            }
        };
        mem.write_u32(read_out, rfd)?;
        mem.write_u32(write_out, wfd)?;
        Ok(())
    }

    pub fn fd_dup(&mut self, mem: &mut GuestMemory, fd: u32, out: u32) -> SysResult {
        let mut entry = self.fds.get(fd)?;
        entry.cloexec = false;
        entry.preopen = None;
        entry.listing = None;
        let new = self.fds.insert(entry)?;
        mem.write_u32(out, new)?;
        Ok(())
    }

    pub fn fd_dup2(&mut self, _mem: &mut GuestMemory, fd: u32, to: u32) -> SysResult {
        self.fds.duplicate_to(fd, to)?;
        Ok(())
    }

    pub fn fd_fdflags_get(&mut self, mem: &mut GuestMemory, fd: u32, out: u32) -> SysResult {
        let cloexec = self.fds.get(fd)?.cloexec;
        mem.write_u32(out, if cloexec { FDFLAG_CLOEXEC } else { 0 })?;
        Ok(())
    }

    pub fn fd_fdflags_set(&mut self, _mem: &mut GuestMemory, fd: u32, flags: u32) -> SysResult {
        self.fds.update(fd, |e| {
            e.cloexec = flags & FDFLAG_CLOEXEC != 0;
            Ok(())
        })?;
        Ok(())
    }

    pub fn proc_exec(
        &mut self,
        mem: &mut GuestMemory,
        dirfd: u32,
        path: u32,
        path_len: u32,
        argv: u32,
        argv_len: u32,
        envp: u32,
        envp_len: u32,
    ) -> SysResult {
        self.check(Subsystem::Process)?;
        self.check(Subsystem::Fs)?;
        let path = mem.str(path, path_len)?.to_string();
        check_path(&path)?;
        let args = strings(mem.slice(argv, argv_len)?);
        let env = strings(mem.slice(envp, envp_len)?);
        let dir = self.fds.get(dirfd)?.node.clone();
        let dir = dir.as_dir().ok_or(Errno::NOTDIR)?;
        let req = OpenRequest {
            read: true,
            follow: true,
            ..Default::default()
        };
        let file = dir.open(&path, &req)?;
        let size = file.stat()?.size;
        if size > MAX_EXEC_BYTES || file.as_dir().is_some() {
            return Err(Errno::NOEXEC.into());
        }
        let mut bytes = vec![0u8; size as usize];
        let mut at = 0usize;
        while at < bytes.len() {
            let n = file.pread(&mut bytes[at..], at as u64)?;
            if n == 0 {
                break;
            }
            at += n;
        }
        bytes.truncate(at);
        let module = self
            .runtime
            .kernel
            .module_for_exec(std::path::Path::new(&path), &bytes, &self.runtime.cache)
            .map_err(|_| crate::note::deny(Errno::NOEXEC, "not a module warden can run"))?;
        Err(SysError::Stop(Stop::Exec(Box::new(ExecPlan {
            module,
            args,
            env,
        }))))
    }

    /// Waits for a wake-up of the cage's waker only.
    fn wait_fds_only_waker(&self) -> SysResult {
        let mut ready = Vec::new();
        self.wait_fds_public(&mut ready)
    }
}

/// `proc_fork`, which needs the guest's exports and so works on the
/// `Caller` rather than through `dispatch`.
fn proc_fork(
    caller: &mut Caller<'_, Cage>,
    copy_memory: i32,
    pid_out: i32,
) -> wasmtime::Result<i32> {
    let start = Instant::now();
    let result = fork_call(caller, copy_memory, pid_out as u32);
    if let Some(tracer) = caller.data().tracer.clone() {
        let outcome = match &result {
            Ok(Some(pid)) => format!("ok pid={pid}"),
            Ok(None) => "unwinding".to_string(),
            Err(e) => crate::trace::describe_errno(*e),
        };
        tracer.line(
            caller.data().pid,
            "proc_fork(copy_memory=1)",
            &outcome,
            start.elapsed(),
        );
    }
    match result {
        Ok(_) => Ok(0),
        Err(e) => Ok(e.0 as i32),
    }
}

/// `Ok(Some(pid))` when the rewind reaches the call again; `Ok(None)` when
/// the unwind starts.
fn fork_call(
    caller: &mut Caller<'_, Cage>,
    copy_memory: i32,
    pid_out: u32,
) -> Result<Option<u32>, Errno> {
    let call = |caller: &mut Caller<'_, Cage>,
                name: &str,
                arg: Option<i32>|
     -> Result<Option<i32>, Errno> {
        let Some(Extern::Func(f)) = caller.get_export(name) else {
            return Err(Errno::NOTSUP);
        };
        match arg {
            Some(a) => f
                .typed::<i32, ()>(&*caller)
                .and_then(|f| f.call(&mut *caller, a))
                .map(|()| None),
            None => match f.typed::<(), i32>(&*caller) {
                Ok(f) => f.call(&mut *caller, ()).map(Some),
                Err(_) => f
                    .typed::<(), ()>(&*caller)
                    .and_then(|f| f.call(&mut *caller, ()))
                    .map(|()| None),
            },
        }
        .map_err(|_| Errno::NOTSUP)
    };

    if let Some(ForkState::Rewinding { result }) = caller.data().fork {
        call(caller, "asyncify_stop_rewind", None)?;
        caller.data_mut().fork = None;
        let pid = result?;
        super::with_guest_memory(caller, |m| m.write_u32(pid_out, pid)).ok_or(Errno::FAULT)??;
        return Ok(Some(pid));
    }
    if caller.data().fork.is_some() {
        return Err(Errno::INVAL);
    }
    if copy_memory != 1 {
        return Err(Errno::NOTSUP);
    }
    caller.data().check(Subsystem::Process)?;
    for name in FORK_EXPORTS {
        if !matches!(caller.get_export(name), Some(Extern::Func(_))) {
            return Err(crate::note::deny(
                Errno::NOTSUP,
                "module not built for fork (use `warden cc`)",
            ));
        }
    }
    super::with_guest_memory(caller, |m| m.slice(pid_out, 4).map(|_| ())).ok_or(Errno::FAULT)??;
    let buffer = call(caller, "__warden_fork_buffer", None)?.ok_or(Errno::NOTSUP)? as u32;
    let control = crate::process::child_control(&caller.data().control);
    let parent = caller.data().pid;
    let child = caller.data().procs.spawn(parent, control.clone())?;
    caller.data_mut().fork = Some(ForkState::Unwinding {
        buffer,
        child,
        control,
    });
    if let Err(e) = call(caller, "asyncify_start_unwind", Some(buffer as i32)) {
        if let Some(ForkState::Unwinding { control, .. }) = caller.data_mut().fork.take() {
            caller.data().procs.abandon(child, &control);
        }
        return Err(e);
    }
    Ok(None)
}

pub fn add_to_linker(linker: &mut Linker<Cage>) -> anyhow::Result<()> {
    syscalls! { linker, MODULE;
        proc_exec(dirfd: i32, path: i32, path_len: i32, argv: i32, argv_len: i32, envp: i32, envp_len: i32);
        proc_join(pid: i32, flags: i32, status: i32, pid_out: i32);
        proc_id(pid: i32);
        proc_parent(ppid: i32);
        proc_signal(pid: i32, sig: i32);
        proc_sigaction(sig: i32, disposition: i32);
        proc_pause();
        fd_pipe(read_fd: i32, write_fd: i32);
        fd_dup(fd: i32, fd_out: i32);
        fd_dup2(fd: i32, to: i32);
        fd_fdflags_get(fd: i32, flags: i32);
        fd_fdflags_set(fd: i32, flags: i32);
    }
    // `thread_exit()` ends the calling thread's call stack (pthread_exit);
    // its group runs the rest (`group`).
    linker.func_wrap(MODULE, "thread_exit", |caller: Caller<'_, Cage>| {
        if let Some(tracer) = caller.data().tracer.clone() {
            tracer.line(
                caller.data().pid,
                "thread_exit()",
                "stopped (pthread_exit)",
                std::time::Duration::ZERO,
            );
        }
        wasmtime::Result::<()>::Err(Stop::ThreadExit.into())
    })?;
    linker.func_wrap(
        MODULE,
        "proc_fork",
        |mut caller: Caller<'_, Cage>, copy_memory: i32, pid_out: i32| {
            proc_fork(&mut caller, copy_memory, pid_out)
        },
    )?;
    Ok(())
}
