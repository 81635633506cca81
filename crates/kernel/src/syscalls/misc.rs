//! Arguments, environment, clocks, randomness, exit and signals.

use crate::abi::{clockid, signal, Errno, GuestMemory};
use crate::cage::{Cage, Stop, SysError, SysResult};
use warden_policy::Subsystem;

/// Writes NUL-terminated strings and the pointer array to them. Both
/// regions are checked first, so a call that fails writes nothing.
fn write_strings(mem: &mut GuestMemory, items: &[Vec<u8>], ptrs: u32, buf: u32) -> SysResult {
    let (count, bytes) = sizes(items);
    let table_len = count.checked_mul(4).ok_or(Errno::FAULT)?;
    mem.slice(ptrs, table_len)?;
    let strings = mem.slice_mut(buf, bytes)?;
    let mut starts = Vec::with_capacity(items.len());
    let mut at = 0usize;
    for item in items {
        strings[at..at + item.len()].copy_from_slice(item);
        strings[at + item.len()] = 0;
        // Below `buf + bytes`, which the check above put inside memory.
        starts.push(buf + at as u32);
        at += item.len() + 1;
    }
    let table = mem.slice_mut(ptrs, table_len)?;
    for (slot, start) in table.chunks_exact_mut(4).zip(starts) {
        slot.copy_from_slice(&start.to_le_bytes());
    }
    Ok(())
}

fn sizes(items: &[Vec<u8>]) -> (u32, u32) {
    let bytes: usize = items.iter().map(|s| s.len() + 1).sum();
    (items.len() as u32, bytes as u32)
}

/// Now on clock `id`, in nanoseconds; shared with `poll_oneoff`.
pub(super) fn clock_nanos(id: u32) -> Result<u64, Errno> {
    use rustix::time::{clock_gettime, ClockId};
    let ts = match id {
        clockid::REALTIME => clock_gettime(ClockId::Realtime),
        clockid::MONOTONIC => clock_gettime(ClockId::Monotonic),
        // A cage is one thread of the host: its CPU time is the thread's.
        clockid::PROCESS_CPUTIME | clockid::THREAD_CPUTIME => clock_gettime(ClockId::ThreadCPUTime),
        _ => return Err(Errno::INVAL),
    };
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

impl Cage {
    pub fn args_sizes_get(&mut self, mem: &mut GuestMemory, argc: u32, size: u32) -> SysResult {
        let (count, bytes) = sizes(&self.args);
        mem.write_u32(argc, count)?;
        mem.write_u32(size, bytes)?;
        Ok(())
    }

    pub fn args_get(&mut self, mem: &mut GuestMemory, argv: u32, buf: u32) -> SysResult {
        write_strings(mem, &self.args, argv, buf)
    }

    pub fn environ_sizes_get(&mut self, mem: &mut GuestMemory, count: u32, size: u32) -> SysResult {
        self.check(Subsystem::Env)?;
        let (n, bytes) = sizes(&self.env);
        mem.write_u32(count, n)?;
        mem.write_u32(size, bytes)?;
        Ok(())
    }

    pub fn environ_get(&mut self, mem: &mut GuestMemory, environ: u32, buf: u32) -> SysResult {
        self.check(Subsystem::Env)?;
        write_strings(mem, &self.env, environ, buf)
    }

    pub fn clock_res_get(&mut self, mem: &mut GuestMemory, id: u32, out: u32) -> SysResult {
        self.check(Subsystem::Clocks)?;
        if id > clockid::THREAD_CPUTIME {
            return Err(Errno::INVAL.into());
        }
        mem.write_u64(out, 1)?;
        Ok(())
    }

    pub fn clock_time_get(
        &mut self,
        mem: &mut GuestMemory,
        id: u32,
        _precision: u64,
        out: u32,
    ) -> SysResult {
        self.check(Subsystem::Clocks)?;
        mem.write_u64(out, clock_nanos(id)?)?;
        Ok(())
    }

    pub fn random_get(&mut self, mem: &mut GuestMemory, buf: u32, len: u32) -> SysResult {
        self.check(Subsystem::Random)?;
        let out = mem.slice_mut(buf, len)?;
        getrandom::fill(out).map_err(|_| Errno::IO)?;
        Ok(())
    }

    pub fn proc_exit(&mut self, code: u32) -> SysResult {
        if self.check(Subsystem::Exit).is_err() {
            return Err(SysError::Stop(Stop::ExitDenied(code)));
        }
        Err(SysError::Stop(Stop::Exit(code)))
    }

    pub fn proc_raise(&mut self, _mem: &mut GuestMemory, sig: u32) -> SysResult {
        let sig = u8::try_from(sig).map_err(|_| Errno::INVAL)?;
        if sig == 0 {
            return Ok(());
        }
        let linux = signal::wasi_to_linux(sig).ok_or(Errno::INVAL)?;
        if signal::linux::is_stop(linux) {
            return Err(Errno::NOTSUP.into());
        }
        self.control.raise(linux);
        Ok(())
    }

    pub fn sched_yield(&mut self, _mem: &mut GuestMemory) -> SysResult {
        std::thread::yield_now();
        Ok(())
    }
}
