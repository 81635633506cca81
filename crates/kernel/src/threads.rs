//! The threads cages run on, kept for reuse.
//!
//! Every cage runs on a thread of its own. Creating one per fork costs a
//! clone, two signal stacks (Rust's and wasmtime's) and their teardown, a
//! good part of a fork's latency; so a cage's thread, once its cage has
//! ended, waits a while for the next cage instead of exiting. A thread
//! handed a cage starts on the CPU of the thread that handed it over.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long an idle thread waits for a new cage before it exits.
const IDLE: Duration = Duration::from_secs(2);

type Job = Box<dyn FnOnce() + Send>;

/// Threads with `stack` bytes of stack, running one job at a time.
pub struct CageThreads {
    stack: usize,
    idle: Mutex<Vec<(u64, rustix::thread::Pid, Sender<Job>)>>,
    next_id: AtomicU64,
}

impl CageThreads {
    pub fn new(stack: usize) -> Arc<CageThreads> {
        Arc::new(CageThreads {
            stack,
            idle: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// Runs `job` on an idle thread, or on a new one. The job must not
    /// unwind (cages catch their own panics); if it does, its thread ends.
    pub fn run(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let mut job: Job = Box::new(job);
        loop {
            let Some((_, tid, idle)) = self.idle_list().pop() else {
                break;
            };
            // Wake it on this CPU, where the forking parent is about to
            // wait for it, rather than on an idle one: waking an idle vCPU
            // costs more than a short child runs (fork + `_exit` + `waitpid`
            // went from 60–250 µs to about 60 µs). The thread lets go of
            // the pin as soon as it runs.
            let mut here = rustix::thread::CpuSet::new();
            here.set(rustix::thread::sched_getcpu());
            let _ = rustix::thread::sched_setaffinity(Some(tid), &here);
            match idle.send(job) {
                Ok(()) => return Ok(()),
                // That thread is gone; try another.
                Err(mpsc::SendError(back)) => job = back,
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let pool = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("cage".into())
            .stack_size(self.stack)
            .spawn(move || worker(pool, id, job))
            .map(|_| ())
    }

    fn idle_list(&self) -> std::sync::MutexGuard<'_, Vec<(u64, rustix::thread::Pid, Sender<Job>)>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn worker(pool: Weak<CageThreads>, id: u64, first: Job) {
    let (tx, rx) = mpsc::channel::<Job>();
    let tid = rustix::thread::gettid();
    // The CPUs it may run on, to go back to after a handover's pin.
    let everywhere = rustix::thread::sched_getaffinity(None).ok();
    let mut job = first;
    loop {
        if let Some(all) = &everywhere {
            let _ = rustix::thread::sched_setaffinity(None, all);
        }
        job();
        // A reason noted for `--trace` belongs to the cage that just ended.
        let _ = crate::note::take();
        let Some(threads) = pool.upgrade() else {
            return;
        };
        threads.idle_list().push((id, tid, tx.clone()));
        drop(threads);
        job = match rx.recv_timeout(IDLE) {
            Ok(next) => next,
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                let Some(threads) = pool.upgrade() else {
                    return;
                };
                let mut idle = threads.idle_list();
                match idle.iter().position(|(i, _, _)| *i == id) {
                    // Still listed: nobody can hand it a job any more.
                    Some(at) => {
                        idle.swap_remove(at);
                        return;
                    }
                    // Taken off the list just now: its job is on the way.
                    None => {
                        drop(idle);
                        match rx.recv() {
                            Ok(next) => next,
                            Err(_) => return,
                        }
                    }
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_reused_and_every_job_runs() {
        let threads = CageThreads::new(256 << 10);
        let (tx, rx) = mpsc::channel();
        for round in 0..50 {
            let tx = tx.clone();
            threads
                .run(move || {
                    let _ = tx.send((round, std::thread::current().id()));
                })
                .expect("run");
            // Let the thread go back to the idle list.
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(tx);
        let mut seen: Vec<_> = rx.iter().collect();
        assert_eq!(seen.len(), 50);
        seen.sort_by_key(|(round, _)| *round);
        let mut ids: Vec<_> = seen.iter().map(|(_, id)| *id).collect();
        ids.dedup();
        assert!(
            ids.len() < 10,
            "{} threads for 50 sequential jobs",
            ids.len()
        );
    }
}
