//! The host descriptors that guests hold (pipes, open files and
//! directories, sockets), bounded for the whole run. Guests share one
//! process's descriptor table with warden itself, whose memories, fork
//! layers and wakers need descriptors too: without a bound a guest that
//! opens pipes until refused would leave fork and signal delivery failing
//! for good. So the soft `RLIMIT_NOFILE` is raised to the hard one at start,
//! a reserve is kept back for warden, and guests get `ENFILE` past the rest.

use crate::abi::{Errno, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// Descriptors held by guests' nodes right now.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// The most guests' nodes may hold; set by [`init`].
static BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX);

/// What warden keeps for itself: an eighth of the limit, at least 256.
fn reserve(limit: usize) -> usize {
    (limit / 8).max(256)
}

/// Raises the soft descriptor limit to the hard one and sets the guests'
/// budget from it. Once per process; later calls do nothing.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            limit.current = limit.maximum;
            // Best effort: on failure the current limit stays and is used.
            let _ = setrlimit(Resource::Nofile, limit);
            limit = getrlimit(Resource::Nofile);
        }
        let limit = limit
            .current
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        BUDGET.store(budget(limit), Ordering::Relaxed);
    });
}

fn budget(limit: usize) -> usize {
    if limit == usize::MAX {
        return limit;
    }
    limit.saturating_sub(reserve(limit))
}

/// Host descriptors a node holds against the budget; given back on drop.
#[derive(Debug)]
pub struct HostFds(usize);

impl HostFds {
    /// Takes `n` descriptors from the budget, or fails with `ENFILE` (the
    /// run's table is full, as the system's would be).
    pub fn take(n: usize) -> Result<HostFds> {
        let budget = BUDGET.load(Ordering::Relaxed);
        HELD.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            held.checked_add(n).filter(|&total| total <= budget)
        })
        .map_err(|_| Errno::NFILE)?;
        Ok(HostFds(n))
    }
}

impl Drop for HostFds {
    fn drop(&mut self) {
        HELD.fetch_sub(self.0, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_kept_back() {
        assert_eq!(budget(1024), 768);
        assert_eq!(budget(20_000), 17_500);
        assert_eq!(budget(100), 0);
        assert_eq!(budget(usize::MAX), usize::MAX);
    }
}
