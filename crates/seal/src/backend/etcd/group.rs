//! Group commit: the write transactions of one node that arrive while its
//! previous commit is in flight go out together, as one etcd transaction.
//!
//! Every store write rewrites the store's state record, so a node's writes
//! cannot commit side by side; one at a time they would cost one etcd
//! round trip each. Instead, threads that find a commit in flight wait;
//! when it ends, each runs its closure in turn on top of the batch (seeing
//! the writes of the closures before it, as if they had committed one
//! after the other), and the last one commits the batch. The batch's
//! comparisons cover every member's reads, so every member's answer (also
//! an error or a failed compare-and-swap, whose writes are dropped) holds
//! exactly when the batch commits; after a conflict every member runs
//! again.

use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::MutexGuard;
use std::time::Duration;

use super::{Committed, EtcdBackend, EtcdWrite, Marker, Pending, COMPACTED_RETRIES};
use crate::backend::{Outcome, WriteTxn};
use crate::error::SealError;

/// Write attempts whose commit failed without applying before giving up.
const FAILED_COMMITS: u32 = 5;

/// The commit state of one backend, behind its mutex.
#[derive(Default)]
pub(super) struct Group {
    pub(super) marker: Marker,
    /// A batch's transaction is in flight (its committer holds `marker`).
    committing: bool,
    /// Threads waiting for the commit in flight to end, to join the next batch.
    joining: usize,
    /// The batch being filled: its id, transaction and number of members.
    open: Option<(u64, Pending, usize)>,
    next_id: u64,
    /// Batches that ended: outcome and members that have yet to read it.
    finished: HashMap<u64, (Ending, usize)>,
}

/// How a batch ended, for each of its members.
#[derive(Clone)]
enum Ending {
    Committed,
    Conflict,
    /// Failed without applying: worth trying again a few times.
    Failed(Reason),
    /// Cannot succeed as it is (too large, outcome unknown).
    Error(Reason),
}

/// A batch's error, for each member to rebuild: whether etcd was
/// unavailable ([`SealError::Unreachable`], which warden serve answers with
/// 503) and the message.
#[derive(Clone)]
struct Reason {
    unavailable: bool,
    message: String,
}

impl From<SealError> for Reason {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Storage { message, .. } => Reason {
                unavailable: false,
                message,
            },
            SealError::Unreachable { detail, .. } => Reason {
                unavailable: true,
                message: detail,
            },
            other => Reason {
                unavailable: false,
                message: other.to_string(),
            },
        }
    }
}

impl EtcdBackend {
    fn wait<'a>(&self, g: MutexGuard<'a, Group>) -> MutexGuard<'a, Group> {
        self.changed.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` as a member of a batch and returns when the batch is
    /// committed (see the module documentation).
    pub(super) fn write_grouped(
        &self,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<Outcome, SealError>,
    ) -> Result<(), SealError> {
        let (mut compacted, mut failed) = (0, 0);
        let mut use_cache = true;
        loop {
            let mut g = self.lock();
            g.joining += 1;
            while g.committing {
                g = self.wait(g);
            }
            g.joining -= 1;
            let (id, data, members) = match g.open.take() {
                Some(open) => open,
                None => {
                    g.next_id += 1;
                    (g.next_id, Pending::default(), 0)
                }
            };
            let before = data.writes.clone();
            let mut txn = EtcdWrite::resume(self, use_cache.then_some(&g.marker.cache), data);
            let outcome = match catch_unwind(AssertUnwindSafe(|| f(&mut txn))) {
                Ok(outcome) => outcome,
                Err(panic) => {
                    // The batch goes with this thread: its other members
                    // must not wait for it forever.
                    drop(txn);
                    Self::end(&mut g, id, members, Ending::Conflict);
                    self.changed.notify_all();
                    drop(g);
                    resume_unwind(panic);
                }
            };
            let was_compacted = txn.read.compacted.get();
            let mut data = txn.into_pending();
            let answer = match outcome {
                Ok(Outcome::Commit) => Ok(()),
                // Its writes are dropped; its reads stay in the batch, so
                // that its answer is checked by the commit as well.
                Ok(Outcome::Abort) => {
                    data.writes = before.clone();
                    Ok(())
                }
                Err(e) => {
                    data.writes = before.clone();
                    Err(e)
                }
            };
            if was_compacted && compacted < COMPACTED_RETRIES {
                // The batch's snapshot is gone: every member runs again.
                compacted += 1;
                Self::end(&mut g, id, members, Ending::Conflict);
                self.changed.notify_all();
                continue;
            }
            let max = self.client.target().max_txn_ops;
            let compares = data.reads.len() + data.scanned.len() + data.pinned.len() + 1;
            if members > 0 && (data.writes.len() + 1 > max || compares > max) {
                // Too large together: commit the others, then run again.
                data.writes = before;
                g.open = Some((id, data, members));
                drop(self.commit_batch(g));
                continue;
            }
            g.open = Some((id, data, members + 1));
            if g.joining == 0 {
                g = self.commit_batch(g);
            }
            while !g.finished.contains_key(&id) {
                g = self.wait(g);
            }
            let ending = match g.finished.get_mut(&id) {
                Some((ending, left)) => {
                    *left -= 1;
                    let ending = ending.clone();
                    if *left == 0 {
                        g.finished.remove(&id);
                    }
                    ending
                }
                None => Ending::Conflict,
            };
            drop(g);
            match ending {
                Ending::Committed => return answer,
                Ending::Conflict => use_cache = false,
                Ending::Failed(reason) => {
                    failed += 1;
                    if failed >= FAILED_COMMITS {
                        return Err(self.rebuild(reason));
                    }
                    std::thread::sleep(Duration::from_millis(100 << failed.min(4)));
                }
                Ending::Error(reason) => return Err(self.rebuild(reason)),
            }
        }
    }

    fn rebuild(&self, reason: Reason) -> SealError {
        let location = self.location.clone();
        match reason.unavailable {
            true => SealError::Unreachable {
                location,
                detail: reason.message,
            },
            false => SealError::Storage {
                location,
                message: reason.message,
            },
        }
    }

    /// Commits the open batch, without the lock while etcd works on it.
    fn commit_batch<'a>(&'a self, mut g: MutexGuard<'a, Group>) -> MutexGuard<'a, Group> {
        let Some((id, data, members)) = g.open.take() else {
            return g;
        };
        if data.writes.is_empty() && !data.cached {
            // Answers read from one snapshot need no check.
            Self::end(&mut g, id, members, Ending::Committed);
            self.changed.notify_all();
            return g;
        }
        g.committing = true;
        let mut marker = std::mem::take(&mut g.marker);
        drop(g);
        let ending = match self.commit(&mut marker, data) {
            Ok(Committed::Yes) => Ending::Committed,
            Ok(Committed::Conflict) => Ending::Conflict,
            Ok(Committed::Failed(e)) => Ending::Failed(e.into()),
            Err(e) => Ending::Error(e.into()),
        };
        let mut g = self.lock();
        g.marker = marker;
        g.committing = false;
        Self::end(&mut g, id, members, ending);
        self.changed.notify_all();
        g
    }

    fn end(g: &mut Group, id: u64, members: usize, ending: Ending) {
        if members > 0 {
            g.finished.insert(id, (ending, members));
        }
    }
}
