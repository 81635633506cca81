//! Limits that hold for a whole run, across every cage it forks and every
//! image it execs: the fuel budget and the total of linear memory.
//!
//! # Fuel
//!
//! wasmtime counts fuel per store, and a store that runs out traps with
//! `Trap::OutOfFuel`, which cannot be resumed. So the run's budget is one
//! pool ([`FuelPool`]) that stores draw from, at the points where warden
//! may change a store's fuel: at its start, at every syscall, fork and
//! exec. (Not on epoch ticks: compiled code keeps its fuel count in a
//! register across the epoch check, so fuel set from the epoch callback
//! would be overwritten.)
//!
//! * Before each syscall a cage gives its fuel back to the pool, and takes
//!   its share after: a cage blocked in `waitpid` or a read holds none.
//! * A cage alone in the run takes the whole remainder: a program that does
//!   not fork stops exactly at its budget, as before.
//! * With `n` live cages, a cage's share is the remainder over `n` (what
//!   is in the pool and what it holds), and at least [`FUEL_SLICE`] while
//!   the pool has it.
//! * A store only ever runs on fuel taken from the pool, so the cages of a
//!   run never execute more than the budget in total.
//! * When a cage runs dry the whole run stops as out of fuel; what the
//!   others still hold then goes unused: each at most the share it took at
//!   its last syscall. Cages that make syscalls as they go (any output
//!   does) took theirs when little remained, so the run stops close to the
//!   budget; a cage that the host did not schedule for a while may hold an
//!   older, larger share. In the tests (four children writing as they
//!   compute, on a loaded two-core host) runs stop at 90 to 100% of the
//!   budget.
//! * A cage that computes without any syscall runs on the share it took
//!   at its last one, and stops the run early if it uses it up first: it
//!   may run at most the remainder over `n` between two syscalls.
//!
//! # Memory
//!
//! [`MemoryTotal`] counts the linear memory of every cage of a run, each
//! cage's full size as its own (a forked child shares its parent's pages
//! copy-on-write, but what a user reads as the memory of the tree is the
//! sum of its processes' sizes). A `memory.grow` past the total fails as
//! `memory.grow` does (it returns -1, `malloc` returns `NULL`); a fork
//! whose child would pass it fails with `ENOMEM`.

use crate::cage::Cage;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use wasmtime::AsContextMut;

/// The least share of the remaining budget a cage takes while the pool has
/// it, so that near the end of the budget cages take what they need in a
/// few steps rather than in crumbs. Small, since what other cages hold when
/// one runs dry goes unused.
pub const FUEL_SLICE: u64 = 1_000_000;

/// The fuel budget of one run.
pub struct FuelPool {
    budget: u64,
    /// Fuel no store holds.
    pool: AtomicU64,
    /// Stores drawing from the pool.
    holders: AtomicU32,
    /// Set when a cage ran out: the run is over.
    exhausted: AtomicBool,
}

impl FuelPool {
    pub fn new(budget: u64) -> FuelPool {
        FuelPool {
            budget,
            pool: AtomicU64::new(budget),
            holders: AtomicU32::new(0),
            exhausted: AtomicBool::new(false),
        }
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Fuel no store holds now.
    pub fn unclaimed(&self) -> u64 {
        self.pool.load(Ordering::SeqCst)
    }

    /// Takes up to `want` from the pool; returns what it got.
    fn take(&self, want: u64) -> u64 {
        let mut got = 0;
        let _ = self
            .pool
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |have| {
                got = have.min(want);
                Some(have - got)
            });
        got
    }

    fn give(&self, fuel: u64) {
        self.pool.fetch_add(fuel, Ordering::SeqCst);
    }

    /// How much a store holding `have` should hold: everything when it is
    /// the only one, else its share of what remains.
    fn share(&self, have: u64) -> u64 {
        let holders = self.holders.load(Ordering::SeqCst);
        if holders <= 1 {
            return u64::MAX;
        }
        let remaining = self.unclaimed().saturating_add(have);
        (remaining / holders as u64).max(FUEL_SLICE)
    }

    /// A new store draws from the pool (it holds nothing yet).
    pub(crate) fn join(&self) {
        self.holders.fetch_add(1, Ordering::SeqCst);
    }

    /// A store is done: its fuel goes back.
    pub(crate) fn leave(&self, leftover: u64) {
        self.give(leftover);
        let _ = self
            .holders
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            });
    }

    pub fn mark_exhausted(&self) {
        self.exhausted.store(true, Ordering::SeqCst);
    }

    pub fn is_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::SeqCst)
    }
}

/// Brings the fuel of `store`'s cage to its share, taking from or giving
/// back to the run's pool. A no-op for runs without a budget. Only from a
/// host call, or on a store whose guest is not running.
pub fn refill(mut store: impl AsContextMut<Data = Cage>) {
    let mut ctx = store.as_context_mut();
    let Some(pool) = ctx.data().runtime.fuel.clone() else {
        return;
    };
    let Ok(have) = ctx.get_fuel() else {
        return;
    };
    let share = pool.share(have);
    let new = if have > share {
        pool.give(have - share);
        share
    } else {
        have + pool.take(share - have)
    };
    if new != have {
        // Cannot fail: the engine meters fuel, or `get_fuel` had failed.
        let _ = ctx.set_fuel(new);
    }
}

/// Gives all of the cage's fuel back to the pool (before a syscall, which
/// may block: a blocked cage holds none). Only from a host call: the fuel
/// count of compiled code is in the store then.
pub fn park(mut store: impl AsContextMut<Data = Cage>) {
    let mut ctx = store.as_context_mut();
    let Some(pool) = ctx.data().runtime.fuel.clone() else {
        return;
    };
    if let Ok(have) = ctx.get_fuel() {
        if have > 0 && ctx.set_fuel(0).is_ok() {
            pool.give(have);
        }
    }
}

/// The linear memory of all the cages of a run, against its limit.
pub struct MemoryTotal {
    limit: u64,
    used: AtomicU64,
}

impl MemoryTotal {
    pub fn new(limit: u64) -> MemoryTotal {
        MemoryTotal {
            limit,
            used: AtomicU64::new(0),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Counts `bytes` more, unless that would pass the limit.
    pub fn claim(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    pub fn release(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_never_hands_out_more_than_the_budget() {
        let pool = FuelPool::new(25);
        assert_eq!(pool.take(10), 10);
        assert_eq!(pool.take(10), 10);
        assert_eq!(pool.take(10), 5);
        assert_eq!(pool.take(10), 0);
        pool.give(3);
        assert_eq!(pool.unclaimed(), 3);
    }

    #[test]
    fn a_lone_holder_gets_everything_and_several_get_shares() {
        let pool = FuelPool::new(100 * FUEL_SLICE);
        pool.join();
        assert_eq!(pool.share(0), u64::MAX);
        pool.join();
        assert_eq!(pool.share(0), 50 * FUEL_SLICE);
        let held = pool.take(pool.share(0));
        assert_eq!(pool.share(held), 50 * FUEL_SLICE);
        // Near the end, a share is never less than a slice.
        let rest = pool.take(u64::MAX);
        assert_eq!(pool.share(FUEL_SLICE / 2), FUEL_SLICE);
        pool.leave(held + rest);
        assert_eq!(pool.share(0), u64::MAX);
        assert_eq!(pool.unclaimed(), 100 * FUEL_SLICE);
    }

    #[test]
    fn cage_limiters_share_the_total_and_release_it() {
        use crate::cage::Limiter;
        use std::sync::Arc;
        use wasmtime::ResourceLimiter;
        let total = Arc::new(MemoryTotal::new(100));
        let mut parent = Limiter::new(None, total.clone());
        assert!(parent.memory_growing(0, 60, None).unwrap());
        let mut child = parent.sibling();
        // The child's copy does not fit: refused, not a trap.
        assert!(!child.memory_growing(0, 60, None).unwrap());
        assert!(child.refused_total);
        assert!(child.memory_growing(0, 40, None).unwrap());
        assert_eq!(total.used(), 100);
        // A growth that then fails counts no more.
        parent
            .memory_grow_failed(wasmtime::Error::msg("no"))
            .unwrap();
        assert_eq!(total.used(), 40);
        drop(child);
        assert_eq!(total.used(), 0);
        // Its own limit still traps.
        let mut limited = Limiter::new(Some(10), total);
        assert!(limited.memory_growing(0, 20, None).is_err());
    }

    #[test]
    fn memory_total_refuses_past_its_limit_and_releases() {
        let total = MemoryTotal::new(100);
        assert!(total.claim(60));
        assert!(!total.claim(50));
        assert!(total.claim(40));
        assert_eq!(total.used(), 100);
        total.release(30);
        assert!(total.claim(30));
        assert!(!total.claim(1));
    }
}
