//! `poll_oneoff`: wait for clocks and descriptors. Waits are made on the
//! host's `poll(2)` together with the cage's waker, so a host stop (time
//! limit, kill) ends them at once.

use super::misc::clock_nanos;
use crate::abi::{
    clockid, eventtype, Errno, GuestMemory, EVENTRWFLAGS_HANGUP, SUBCLOCKFLAGS_ABSTIME,
};
use crate::cage::{Cage, SysResult};
use crate::vfs::Readiness;
use rustix::event::{PollFd, PollFlags};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};
use warden_policy::Subsystem;

const SUBSCRIPTION_SIZE: u32 = 48;
const EVENT_SIZE: u32 = 32;

pub(super) struct Event {
    userdata: u64,
    error: Errno,
    kind: u8,
    nbytes: u64,
    flags: u16,
}

impl Event {
    fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[0..8].copy_from_slice(&self.userdata.to_le_bytes());
        out[8..10].copy_from_slice(&self.error.0.to_le_bytes());
        out[10] = self.kind;
        out[16..24].copy_from_slice(&self.nbytes.to_le_bytes());
        out[24..26].copy_from_slice(&self.flags.to_le_bytes());
        out
    }
}

struct ClockWait {
    userdata: u64,
    deadline: Instant,
}

struct FdWait {
    userdata: u64,
    kind: u8,
    fd: i32,
}

impl Cage {
    pub fn poll_oneoff(
        &mut self,
        mem: &mut GuestMemory,
        subs: u32,
        events: u32,
        nsubs: u32,
        nevents: u32,
    ) -> SysResult {
        if nsubs == 0 {
            return Err(Errno::INVAL.into());
        }
        // Every event may be written: check the whole buffer before waiting.
        let events_len = nsubs.checked_mul(EVENT_SIZE).ok_or(Errno::FAULT)?;
        mem.slice(events, events_len)?;
        let mut ready: Vec<Event> = Vec::new();
        let mut clocks: Vec<ClockWait> = Vec::new();
        let mut waits: Vec<FdWait> = Vec::new();
        let start = Instant::now();
        for i in 0..nsubs {
            let base = subs
                .checked_add(i.checked_mul(SUBSCRIPTION_SIZE).ok_or(Errno::FAULT)?)
                .ok_or(Errno::FAULT)?;
            let sub: [u8; SUBSCRIPTION_SIZE as usize] = mem.read(base)?;
            let field = |at: usize, n: usize| -> u64 {
                let mut le = [0u8; 8];
                le[..n].copy_from_slice(&sub[at..at + n]);
                u64::from_le_bytes(le)
            };
            let userdata = field(0, 8);
            let kind = sub[8];
            let event = |error: Errno| Event {
                userdata,
                error,
                kind,
                nbytes: 0,
                flags: 0,
            };
            match kind {
                eventtype::CLOCK => {
                    if let Err(e) = self.check(Subsystem::Clocks) {
                        ready.push(event(e));
                        continue;
                    }
                    let id = field(16, 4) as u32;
                    let timeout = field(24, 8);
                    let flags = field(40, 2) as u16;
                    match clock_deadline(id, timeout, flags, start) {
                        Ok(deadline) => clocks.push(ClockWait { userdata, deadline }),
                        Err(e) => ready.push(event(e)),
                    }
                }
                eventtype::FD_READ | eventtype::FD_WRITE => {
                    let fd = field(16, 4) as u32;
                    let node = match self.fds.get(fd) {
                        Ok(entry) => entry.node.clone(),
                        Err(e) => {
                            ready.push(event(e));
                            continue;
                        }
                    };
                    match node.readiness() {
                        Readiness::Always => {
                            let mut ev = event(Errno::SUCCESS);
                            if kind == eventtype::FD_READ {
                                ev.nbytes = readable_bytes(&*node);
                            }
                            ready.push(ev);
                        }
                        Readiness::Os(raw) => waits.push(FdWait {
                            userdata,
                            kind,
                            fd: raw,
                        }),
                    }
                }
                _ => return Err(Errno::INVAL.into()),
            }
        }

        loop {
            let timeout = if !ready.is_empty() {
                Some(Duration::ZERO)
            } else {
                clocks
                    .iter()
                    .map(|c| c.deadline.saturating_duration_since(Instant::now()))
                    .min()
            };
            self.wait_fds(&waits, timeout, &mut ready)?;
            let now = Instant::now();
            for c in clocks.iter().filter(|c| c.deadline <= now) {
                ready.push(Event {
                    userdata: c.userdata,
                    error: Errno::SUCCESS,
                    kind: eventtype::CLOCK,
                    nbytes: 0,
                    flags: 0,
                });
            }
            if !ready.is_empty() {
                break;
            }
        }

        // At most one event per subscription, and the buffer was checked
        // for `nsubs` of them.
        let out = mem.slice_mut(events, events_len)?;
        for (slot, ev) in out.chunks_exact_mut(EVENT_SIZE as usize).zip(&ready) {
            slot.copy_from_slice(&ev.encode());
        }
        mem.write_u32(nevents, ready.len() as u32)?;
        Ok(())
    }

    /// Blocks until host descriptor `fd` is ready (or a signal or stop
    /// interrupts the wait).
    pub(super) fn wait_fd(&self, fd: std::os::fd::RawFd, write: bool) -> SysResult {
        let kind = if write {
            eventtype::FD_WRITE
        } else {
            eventtype::FD_READ
        };
        let wait = [FdWait {
            userdata: 0,
            kind,
            fd,
        }];
        let mut ready = Vec::new();
        self.wait_fds(&wait, None, &mut ready)
    }

    /// Sleeps for `time`, or less if a signal or a stop comes.
    pub(super) fn pause(&self, time: Duration) -> SysResult {
        self.wait_fds(&[], Some(time), &mut Vec::new())
    }

    /// Blocks until the cage's waker fires (a signal or a stop).
    pub(super) fn wait_fds_public(&self, ready: &mut Vec<Event>) -> SysResult {
        self.wait_fds(&[], None, ready)
    }

    /// One host `poll(2)` over the descriptors and the cage's waker.
    fn wait_fds(
        &self,
        waits: &[FdWait],
        timeout: Option<Duration>,
        ready: &mut Vec<Event>,
    ) -> SysResult {
        let mut fds: Vec<PollFd> = waits
            .iter()
            .map(|w| {
                // SAFETY: the descriptors belong to nodes the fd table keeps
                // alive for the duration of this call.
                let fd = unsafe { BorrowedFd::borrow_raw(w.fd) };
                let flags = if w.kind == eventtype::FD_READ {
                    PollFlags::IN
                } else {
                    PollFlags::OUT
                };
                PollFd::from_borrowed_fd(fd, flags)
            })
            .collect();
        let waker = self.control.waker_fd();
        if let Some(waker) = waker {
            fds.push(PollFd::from_borrowed_fd(waker, PollFlags::IN));
        }
        // A signal or stop that came before the waker existed woke nobody.
        self.interruption()?;
        let limit = self
            .control
            .deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        let timeout = match (timeout, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let ts = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Errno::from(e).into()),
        }
        if waker.is_some() && fds.last().is_some_and(|w| !w.revents().is_empty()) {
            self.control.drain_waker();
        }
        self.interruption()?;
        for (w, pfd) in waits.iter().zip(&fds) {
            let got = pfd.revents();
            if got.is_empty() {
                continue;
            }
            let error = if got.contains(PollFlags::NVAL) {
                Errno::BADF
            } else {
                Errno::SUCCESS
            };
            ready.push(Event {
                userdata: w.userdata,
                error,
                kind: w.kind,
                nbytes: 0,
                flags: if got.contains(PollFlags::HUP) {
                    EVENTRWFLAGS_HANGUP
                } else {
                    0
                },
            });
        }
        Ok(())
    }
}

/// When a clock subscription fires, on the host's monotonic clock.
fn clock_deadline(id: u32, timeout: u64, flags: u16, start: Instant) -> Result<Instant, Errno> {
    let relative = if flags & SUBCLOCKFLAGS_ABSTIME != 0 {
        match id {
            clockid::REALTIME | clockid::MONOTONIC => timeout.saturating_sub(clock_nanos(id)?),
            _ => return Err(Errno::NOTSUP),
        }
    } else {
        match id {
            clockid::REALTIME | clockid::MONOTONIC => timeout,
            _ => return Err(Errno::NOTSUP),
        }
    };
    // A timeout past what `Instant` can hold is as good as never.
    let far = Duration::from_secs(u64::from(u32::MAX));
    Ok(start
        .checked_add(Duration::from_nanos(relative))
        .unwrap_or_else(|| start + far))
}

/// Bytes left to read in a file that never blocks.
fn readable_bytes(node: &dyn crate::vfs::Node) -> u64 {
    let size = node.stat().map(|s| s.size).unwrap_or(0);
    let at = node.seek(std::io::SeekFrom::Current(0)).unwrap_or(size);
    size.saturating_sub(at)
}
