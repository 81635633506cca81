//! Committing a write transaction of the etcd backend: comparisons, stored
//! forms (chunks for large values), the etcd `Txn`, and settling a commit
//! whose outcome is unknown.

use std::time::{Duration, Instant};

use warden_etcd::chunks::ChunkRef;
use warden_etcd::{
    prefix_end, Compare, CompareOp, DeleteOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
    TxnResponse,
};

use super::{EtcdBackend, Marker, Pending, CACHE_MAX, INLINE, INLINE_MAX, REQUEST_SLACK};
use crate::error::SealError;

/// How a commit attempt ended.
pub(super) enum Committed {
    Yes,
    /// Someone else committed since the snapshot: run the closure again.
    Conflict,
    /// It failed and did not apply: worth trying again a few times.
    Failed(SealError),
}

impl EtcdBackend {
    pub(super) fn commit(&self, marker: &mut Marker, w: Pending) -> Result<Committed, SealError> {
        if marker.in_doubt {
            match self.client.get(&self.marker_key, 0) {
                Ok((entry, _)) => {
                    marker.mod_revision = entry.map_or(0, |e| e.mod_revision);
                    marker.in_doubt = false;
                }
                Err(e) => return Ok(Committed::Failed(self.error(e))),
            }
        }
        let target = self.client.target();
        let revision = w.revision;
        let reads = &w.reads;
        let scanned = &w.scanned;
        let max = target.max_txn_ops;
        if w.writes.len() + 1 > max {
            return Err(SealError::Storage {
                location: self.location.clone(),
                message: format!(
                    "a transaction of {} changes is more than the {max} operations etcd allows \
                     in one (its --max-txn-ops; a store write takes two per key set or deleted: \
                     split the batch, or raise the cluster's limit and add ?max-txn-ops=N to \
                     the store URL)",
                    w.writes.len() + 1,
                ),
            });
        }
        let mut compares: Vec<Compare> = Vec::new();
        if !reads.is_empty() || !scanned.is_empty() {
            for (k, r) in reads {
                compares.push(Compare::mod_revision(k.clone(), CompareOp::Equal, *r));
            }
            for (from, to) in scanned {
                compares.push(
                    Compare::mod_revision(from.clone(), CompareOp::Less, revision + 1)
                        .with_range(to.clone()),
                );
            }
            let compare_bytes: usize = reads.keys().map(|k| k.len() + 16).sum::<usize>()
                + scanned
                    .iter()
                    .map(|(a, b)| a.len() + b.len() + 16)
                    .sum::<usize>();
            let limit = target.max_txn_ops.saturating_sub(w.pinned.len() + 1);
            if compares.len() > limit || compare_bytes > REQUEST_SLACK / 2 {
                if w.cached {
                    // Cached reads are of no one revision: read again.
                    return Ok(Committed::Conflict);
                }
                // Too many to list: nothing in any table changed since the
                // snapshot (stricter, as every store write conflicts anyway).
                compares =
                    vec![
                        Compare::mod_revision(self.tables.clone(), CompareOp::Less, revision + 1)
                            .with_range(prefix_end(&self.tables)),
                    ];
            }
        }
        for (k, stored) in &w.pinned {
            compares.push(Compare::value(k.clone(), CompareOp::Equal, stored.clone()));
        }
        compares.push(Compare::mod_revision(
            self.marker_key.clone(),
            CompareOp::Equal,
            marker.mod_revision,
        ));

        // What the cache will say after a commit: the values written (a
        // deleted key compares as revision 0) and those read.
        let mut learned: Vec<(Vec<u8>, Option<Vec<u8>>, bool)> = w
            .writes
            .iter()
            .map(|(k, v)| {
                let small = v.as_ref().filter(|v| v.len() <= INLINE_MAX).cloned();
                let keep = v.is_none() || small.is_some();
                (k.clone(), small, keep)
            })
            .collect();
        learned.retain(|(_, _, keep)| *keep);

        // Stored forms: large values to chunks, then more until it fits.
        let mut written: Vec<ChunkRef> = Vec::new();
        let mut stored: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(w.writes.len());
        let result = (|| {
            for (k, v) in w.writes {
                let form = match v {
                    Some(v) if v.len() > INLINE_MAX => {
                        let (form, r) = self.chunked(&v)?;
                        written.push(r);
                        Some(form)
                    }
                    Some(v) => Some(Self::inline(&v)),
                    None => None,
                };
                stored.push((k, form));
            }
            let budget = target.max_request_bytes.saturating_sub(REQUEST_SLACK);
            let size = |s: &[(Vec<u8>, Option<Vec<u8>>)]| -> usize {
                s.iter()
                    .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + 16)
                    .sum()
            };
            while size(&stored) > budget {
                let largest = stored
                    .iter_mut()
                    .filter(|(_, v)| v.as_ref().is_some_and(|v| v.first() == Some(&INLINE)))
                    .max_by_key(|(_, v)| v.as_ref().map_or(0, Vec::len));
                let Some((_, Some(v))) = largest else {
                    return Err(SealError::Storage {
                        location: self.location.clone(),
                        message: "a transaction's keys alone exceed etcd's request size limit"
                            .into(),
                    });
                };
                let (form, r) = self.chunked(&v[1..])?;
                written.push(r);
                *v = form;
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.drop_chunks(&written);
            return Err(e);
        }

        marker.seq += 1;
        let commit_value = [b"c".as_slice(), &marker.seq.to_le_bytes()].concat();
        let mut ops: Vec<TxnOp> = stored
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => TxnOp::put(k, v, Some(PutOptions::new().with_prev_key())),
                None => TxnOp::delete(k, Some(DeleteOptions::new().with_prev_key())),
            })
            .collect();
        ops.push(TxnOp::put(self.marker_key.clone(), commit_value, None));
        let txn = Txn::new().when(compares).and_then(ops);
        match self.client.txn(txn) {
            Ok(response) if response.succeeded() => {
                let at = response.header().map_or(0, |h| h.revision());
                marker.mod_revision = at;
                if marker.cache.len() > CACHE_MAX {
                    marker.cache.clear();
                }
                for (k, v, r) in w.fetched {
                    marker.cache.insert(k, (v, r));
                }
                for (k, v, _) in learned {
                    let r = if v.is_some() { at } else { 0 };
                    marker.cache.insert(k, (v, r));
                }
                self.drop_chunks(&replaced(&response));
                Ok(Committed::Yes)
            }
            Ok(_) => {
                self.drop_chunks(&written);
                for k in reads.keys() {
                    marker.cache.remove(k);
                }
                Ok(Committed::Conflict)
            }
            Err(e) => {
                marker.cache.clear();
                let applied = self.settle(marker)?;
                match applied {
                    // The chunks of what it replaced are orphans: the response
                    // that listed them was lost.
                    true => Ok(Committed::Yes),
                    false => {
                        self.drop_chunks(&written);
                        Ok(Committed::Failed(self.error(e)))
                    }
                }
            }
        }
    }

    /// Settles a commit whose outcome is unknown (see the module
    /// documentation): returns whether it applied.
    fn settle(&self, marker: &mut Marker) -> Result<bool, SealError> {
        let seq = marker.seq.to_le_bytes();
        let committed = [b"c".as_slice(), &seq].concat();
        let fence = [b"f".as_slice(), &seq].concat();
        // Long enough for an election and a member's restart; a cluster
        // down for longer makes the write's outcome unknown.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    self.marker_key.clone(),
                    CompareOp::Equal,
                    marker.mod_revision,
                )])
                .and_then([
                    TxnOp::put(self.marker_key.clone(), fence.clone(), None),
                    TxnOp::get(self.marker_key.clone(), None),
                ])
                .or_else([TxnOp::get(self.marker_key.clone(), None)]);
            match self.client.txn(txn) {
                Ok(response) => {
                    let seen = response.op_responses().into_iter().find_map(|r| match r {
                        TxnOpResponse::Get(g) => g
                            .kvs()
                            .first()
                            .map(|kv| (kv.value().to_vec(), kv.mod_revision())),
                        _ => None,
                    });
                    let Some((value, mod_revision)) = seen else {
                        return Err(SealError::Storage {
                            location: self.location.clone(),
                            message: "this node's commit marker vanished: the outcome of its \
                                      last write is unknown"
                                .into(),
                        });
                    };
                    marker.mod_revision = mod_revision;
                    if value == committed {
                        return Ok(true);
                    }
                    if value == fence {
                        return Ok(false);
                    }
                    return Err(SealError::Storage {
                        location: self.location.clone(),
                        message: "this node's commit marker was changed by someone else: the \
                                  outcome of its last write is unknown"
                            .into(),
                    });
                }
                Err(e) if Instant::now() > deadline => {
                    marker.in_doubt = true;
                    let mut e = self.error(e);
                    let unknown = "; the outcome of the last write is unknown";
                    match &mut e {
                        SealError::Unreachable { detail, .. } => detail.push_str(unknown),
                        SealError::Storage { message, .. } => message.push_str(unknown),
                        _ => {}
                    }
                    return Err(e);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// The chunk references of the values a committed transaction replaced or
/// deleted.
fn replaced(response: &TxnResponse) -> Vec<ChunkRef> {
    let mut out = Vec::new();
    replaced_into(response, &mut out);
    out
}

fn replaced_into(response: &TxnResponse, out: &mut Vec<ChunkRef>) {
    for r in response.op_responses() {
        match r {
            TxnOpResponse::Put(p) => {
                if let Some(r) = p
                    .prev_key()
                    .and_then(|kv| EtcdBackend::reference_in(kv.value()))
                {
                    out.push(r);
                }
            }
            TxnOpResponse::Delete(d) => {
                out.extend(
                    d.prev_kvs()
                        .iter()
                        .filter_map(|kv| EtcdBackend::reference_in(kv.value())),
                );
            }
            TxnOpResponse::Txn(nested) => replaced_into(&nested, out),
            TxnOpResponse::Get(_) => {}
        }
    }
}
