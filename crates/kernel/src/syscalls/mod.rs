//! Warden's implementation of every `wasi_snapshot_preview1` import, as
//! methods on [`Cage`], and their registration with a wasmtime linker.
//!
//! Each import goes through [`dispatch`]: it borrows the guest's memory
//! (bounds-checked through [`GuestMemory`]), runs the call, turns the
//! result into an errno or a stop, and traces it when tracing is on.

// Each method mirrors one import, whose argument list the ABI fixes.
#![allow(clippy::too_many_arguments)]

/// Registers `name(args) -> errno` imports of `$module` that forward to
/// `Cage::name` through [`dispatch`].
macro_rules! syscalls {
    ($linker:ident, $module:expr; $($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            $linker.func_wrap(
                $module,
                stringify!($name),
                |mut caller: Caller<'_, Cage>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                    dispatch(&mut caller, stringify!($name), &[$($arg.raw()),*], |cage, mem| {
                        cage.$name(mem, $($arg as _),*)
                    })
                },
            )?;
        )*
    };
}

mod fd;
mod misc;
mod path;
mod poll;
pub mod process;
mod sock;

use crate::abi::GuestMemory;
use crate::cage::{Cage, SysError, SysResult};
use crate::trace;
use std::time::Instant;
use wasmtime::{Caller, Extern, Linker};

pub const MODULE: &str = "wasi_snapshot_preview1";

/// A raw wasm argument as the tracer records it.
trait Raw {
    fn raw(self) -> u64;
}
impl Raw for i32 {
    fn raw(self) -> u64 {
        self as u32 as u64
    }
}
impl Raw for i64 {
    fn raw(self) -> u64 {
        self as u64
    }
}

/// Runs one call against the cage and its memory.
fn dispatch(
    caller: &mut Caller<'_, Cage>,
    name: &'static str,
    args: &[u64],
    call: impl FnOnce(&mut Cage, &mut GuestMemory) -> SysResult,
) -> wasmtime::Result<i32> {
    // No guest code runs during the call, which may block: the cage's
    // fuel waits in the run's pool meanwhile (see `limits`).
    let metered = caller.data().runtime.fuel.is_some();
    if metered {
        crate::limits::park(&mut *caller);
    }
    let shared = caller.data().group.as_ref().map(|g| g.memory().clone());
    let memory = match (caller.data().memory, &shared) {
        (Some(m), _) => Some(m),
        (None, Some(_)) => None,
        (None, None) => match caller.get_export("memory") {
            Some(Extern::Memory(m)) => {
                caller.data_mut().memory = Some(m);
                Some(m)
            }
            _ => None,
        },
    };
    let mut empty = [0u8; 0];
    let (bytes, cage): (&mut [u8], &mut Cage) = match (memory, &shared) {
        (Some(m), _) => m.data_and_store_mut(&mut *caller),
        (None, Some(shared)) => {
            let (base, len) = shared_range(shared);
            // SAFETY: what is assumed, exactly:
            // * In bounds and valid for the whole call: `len` is the
            //   accessible size when the call began, and a shared memory
            //   never moves or shrinks (wasmtime reserves its maximum up
            //   front); `shared` keeps the memory alive until the call ends.
            // * The guest's other threads may read and write these bytes
            //   while the call does, as a racing write from another thread
            //   may on Linux while the kernel copies to or from user memory.
            //   The kernel only copies bytes in and out (every pointer and
            //   length it reads from guest memory is checked when used) and
            //   never relies on them staying unchanged, so a racing guest
            //   sees torn or mixed data, never a host fault. (Formally this
            //   `&mut [u8]` claims exclusive access that racing guest
            //   threads do not grant; raw copies for shared memories in
            //   `GuestMemory` would remove that.)
            let bytes = unsafe { std::slice::from_raw_parts_mut(base, len) };
            (bytes, caller.data_mut())
        }
        (None, None) => (&mut empty[..], caller.data_mut()),
    };
    let mut mem = GuestMemory::new(bytes);
    let tracer = cage.tracer.clone();
    let result = match tracer {
        None => call(cage, &mut mem),
        Some(tracer) => {
            crate::note::take();
            let call_text = trace::describe_call(name, args, &mem);
            let start = Instant::now();
            let result = call(cage, &mut mem);
            let elapsed = start.elapsed();
            let outcome = trace::describe_result(name, args, &mem, &result);
            tracer.line(cage.pid, &call_text, &outcome, elapsed);
            result
        }
    };
    let errno = match result {
        Ok(()) => 0,
        Err(SysError::Errno(e)) => e.0 as i32,
        Err(SysError::Stop(stop)) => return Err(stop.into()),
    };
    if metered {
        crate::limits::refill(&mut *caller);
    }
    if caller.data().control.pending() != 0 {
        deliver_signals(caller)?;
    }
    Ok(errno)
}

/// Runs `f` on the calling cage's memory: its own, or its thread group's
/// shared one (with the same caveat as in [`dispatch`]). `None` when the
/// module has no memory.
pub(crate) fn with_guest_memory<R>(
    caller: &mut Caller<'_, Cage>,
    f: impl FnOnce(&mut GuestMemory) -> R,
) -> Option<R> {
    if let Some(m) = caller.data().memory {
        let (bytes, _) = m.data_and_store_mut(&mut *caller);
        return Some(f(&mut GuestMemory::new(bytes)));
    }
    let shared = caller.data().group.as_ref()?.memory().clone();
    let (base, len) = shared_range(&shared);
    // SAFETY: as in `dispatch`: in bounds and alive while `shared` lives;
    // other threads may race on the bytes, which are only copied.
    let bytes = unsafe { std::slice::from_raw_parts_mut(base, len) };
    Some(f(&mut GuestMemory::new(bytes)))
}

/// Where a threaded cage's shared memory is, and its accessible size now.
/// A shared memory never moves or shrinks, so the range stays valid while
/// the handle lives.
fn shared_range(memory: &wasmtime::SharedMemory) -> (*mut u8, usize) {
    let cells = memory.data();
    // `UnsafeCell<u8>` has the layout of `u8`, and writing through a
    // pointer derived from an `UnsafeCell` is allowed.
    (cells.as_ptr().cast::<u8>().cast_mut(), cells.len())
}

/// Acts on pending signals at the end of a call: a fatal one stops the
/// cage; handled ones run their handler in the guest through its
/// `__warden_signal` export. Nothing is delivered in the middle of a fork.
fn deliver_signals(caller: &mut Caller<'_, Cage>) -> wasmtime::Result<()> {
    if caller.data().fork.is_some() {
        return Ok(());
    }
    if let Some(sig) = caller.data().fatal_signal() {
        return Err(crate::cage::Stop::Signal(sig).into());
    }
    let handled = caller.data().take_handled();
    if handled.is_empty() {
        return Ok(());
    }
    let handler = match caller.get_export("__warden_signal") {
        Some(Extern::Func(f)) => f.typed::<i32, ()>(&*caller).ok(),
        _ => None,
    };
    for sig in handled {
        match &handler {
            Some(f) => f.call(&mut *caller, sig as i32)?,
            // No way to run a handler: the default action applies.
            None if crate::abi::signal::linux::ignored_by_default(sig) => {}
            None => return Err(crate::cage::Stop::Signal(sig).into()),
        }
    }
    Ok(())
}

/// Every import of `wasi_snapshot_preview1`, by name.
pub const NAMES: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

pub fn add_to_linker(linker: &mut Linker<Cage>) -> anyhow::Result<()> {
    syscalls! { linker, MODULE;
        args_get(argv: i32, argv_buf: i32);
        args_sizes_get(argc: i32, argv_buf_size: i32);
        environ_get(environ: i32, environ_buf: i32);
        environ_sizes_get(count: i32, buf_size: i32);
        clock_res_get(id: i32, resolution: i32);
        clock_time_get(id: i32, precision: i64, time: i32);
        fd_advise(fd: i32, offset: i64, len: i64, advice: i32);
        fd_allocate(fd: i32, offset: i64, len: i64);
        fd_close(fd: i32);
        fd_datasync(fd: i32);
        fd_fdstat_get(fd: i32, stat: i32);
        fd_fdstat_set_flags(fd: i32, flags: i32);
        fd_fdstat_set_rights(fd: i32, base: i64, inheriting: i64);
        fd_filestat_get(fd: i32, stat: i32);
        fd_filestat_set_size(fd: i32, size: i64);
        fd_filestat_set_times(fd: i32, atim: i64, mtim: i64, fst_flags: i32);
        fd_pread(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nread: i32);
        fd_prestat_get(fd: i32, prestat: i32);
        fd_prestat_dir_name(fd: i32, path: i32, path_len: i32);
        fd_pwrite(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nwritten: i32);
        fd_read(fd: i32, iovs: i32, iovs_len: i32, nread: i32);
        fd_readdir(fd: i32, buf: i32, buf_len: i32, cookie: i64, bufused: i32);
        fd_renumber(fd: i32, to: i32);
        fd_seek(fd: i32, offset: i64, whence: i32, newoffset: i32);
        fd_sync(fd: i32);
        fd_tell(fd: i32, offset: i32);
        fd_write(fd: i32, iovs: i32, iovs_len: i32, nwritten: i32);
        path_create_directory(fd: i32, path: i32, path_len: i32);
        path_filestat_get(fd: i32, flags: i32, path: i32, path_len: i32, stat: i32);
        path_filestat_set_times(fd: i32, flags: i32, path: i32, path_len: i32, atim: i64, mtim: i64, fst_flags: i32);
        path_link(old_fd: i32, old_flags: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32);
        path_open(fd: i32, dirflags: i32, path: i32, path_len: i32, oflags: i32, rights_base: i64, rights_inheriting: i64, fdflags: i32, opened: i32);
        path_readlink(fd: i32, path: i32, path_len: i32, buf: i32, buf_len: i32, bufused: i32);
        path_remove_directory(fd: i32, path: i32, path_len: i32);
        path_rename(fd: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32);
        path_symlink(old_path: i32, old_path_len: i32, fd: i32, new_path: i32, new_path_len: i32);
        path_unlink_file(fd: i32, path: i32, path_len: i32);
        poll_oneoff(subscriptions: i32, events: i32, nsubscriptions: i32, nevents: i32);
        proc_raise(sig: i32);
        sched_yield();
        random_get(buf: i32, buf_len: i32);
        sock_accept(fd: i32, flags: i32, accepted: i32);
        sock_recv(fd: i32, ri_data: i32, ri_data_len: i32, ri_flags: i32, ro_datalen: i32, ro_flags: i32);
        sock_send(fd: i32, si_data: i32, si_data_len: i32, si_flags: i32, so_datalen: i32);
        sock_shutdown(fd: i32, how: i32);
    }
    process::add_to_linker(linker)?;
    // `wasi.thread-spawn` returns the new thread's id, or a negative errno.
    linker.func_wrap(
        crate::group::MODULE,
        crate::group::SPAWN,
        |mut caller: Caller<'_, Cage>, start_arg: i32| -> wasmtime::Result<i32> {
            let mut tid = 0;
            let errno = dispatch(
                &mut caller,
                "thread-spawn",
                &[start_arg.raw()],
                |cage, _| {
                    tid = cage.thread_spawn(start_arg as u32)?;
                    Ok(())
                },
            )?;
            Ok(if errno != 0 { -errno } else { tid as i32 })
        },
    )?;
    // proc_exit returns nothing: it always stops the guest.
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |mut caller: Caller<'_, Cage>, code: i32| -> wasmtime::Result<()> {
            dispatch(&mut caller, "proc_exit", &[code.raw()], |cage, _| {
                cage.proc_exit(code as u32)
            })?;
            Ok(())
        },
    )?;
    Ok(())
}
