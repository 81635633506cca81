//! The sealed store on real etcd clusters, started by the tests: several
//! nodes writing at once, faults, large values, rollback, what etcd sees.
//! (The common suite of tests/store.rs runs on etcd as well.)

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{key, pseudo_random, TempStore};
use warden_etcd::testing::Cluster;
use warden_etcd::{chunks, prefix_end, EtcdTarget};
use warden_seal::{OpenOptions, SealError, Store};

/// The environment variable that makes `child_process_increments` do its
/// work: set only when `increments_from_two_processes_are_exact` runs this
/// test binary again as a child.
const CHILD_URL: &str = "WARDEN_SEAL_ETCD_CHILD_URL";
const CHILD_THREADS: usize = 32;
const CHILD_INCREMENTS: usize = 8;

fn open(url: &str, state: &std::path::Path) -> Store {
    OpenOptions::new()
        .state_file(state)
        .open_url(url, &key(1))
        .expect("open store on etcd")
}

/// Every value stored under the store's prefix, read with a plain etcd
/// client (what the cluster's operator sees).
fn everything_in_etcd(cluster: &Cluster, url: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let target = EtcdTarget::parse(url).unwrap();
    let client = cluster.client("unused").unwrap();
    let prefix = target.key(b"");
    let mut all = Vec::new();
    client
        .scan(&prefix, &prefix_end(&prefix), 0, 100, &mut |e| {
            all.push((e.key, e.value));
            Ok(true)
        })
        .unwrap();
    all
}

/// The child half of `increments_from_two_processes_are_exact`; does
/// nothing in a normal test run (see [`CHILD_URL`]).
#[test]
fn child_process_increments() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let state = std::env::var("WARDEN_SEAL_ETCD_CHILD_STATE").unwrap();
    let store = open(&url, std::path::Path::new(&state));
    let threads: Vec<_> = (0..CHILD_THREADS)
        .map(|_| {
            let ns = store.namespace("counters").unwrap();
            thread::spawn(move || {
                for _ in 0..CHILD_INCREMENTS {
                    ns.increment("hits", 1).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// 64 concurrent clients, 32 threads in each of 2 processes with a store
/// each, increment one counter on a 3-member cluster: none is lost or
/// doubled.
#[test]
fn increments_from_two_processes_are_exact() {
    let cluster = Cluster::start(3).unwrap();
    let url = cluster.url("two-processes");
    // Created here so that the children race only on the counter.
    open(&url, &cluster.dir().join("parent.seen"))
        .namespace("counters")
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|i| {
            Command::new(&exe)
                .args(["--exact", "child_process_increments", "--nocapture"])
                .env(CHILD_URL, &url)
                .env(
                    "WARDEN_SEAL_ETCD_CHILD_STATE",
                    cluster.dir().join(format!("child{i}.seen")),
                )
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "a child failed: {status}");
    }
    let store = open(&url, &cluster.dir().join("parent.seen"));
    let total = (2 * CHILD_THREADS * CHILD_INCREMENTS).to_string();
    assert_eq!(
        store.namespace("counters").unwrap().get("hits").unwrap(),
        Some(total.into_bytes())
    );
    store.verify().unwrap();
}

/// The leader killed and restarted while 16 clients on two stores
/// increment a counter and record each increment under a key of its own
/// in the same transaction: every increment acknowledged is there, and the
/// counter equals the number of recorded increments (none doubled).
#[test]
fn a_member_killed_under_load_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3).unwrap();
    let url = cluster.url("member-kill");
    let stores = [
        open(&url, &cluster.dir().join("a.seen")),
        open(&url, &cluster.dir().join("b.seen")),
    ];
    stores[0].namespace("load").unwrap();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let ns = stores[w % 2].namespace("load").unwrap();
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            thread::spawn(move || {
                let mut mine = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let op = format!("op-{w}-{i}");
                    i += 1;
                    let done = ns.transaction(|tx| {
                        let n: i64 = tx
                            .get("count")?
                            .map(|v| String::from_utf8_lossy(&v).parse().unwrap_or(-1_000_000))
                            .unwrap_or(0);
                        tx.set("count", (n + 1).to_string())?;
                        tx.set(&op, b"1")?;
                        Ok::<_, SealError>(())
                    });
                    if done.is_ok() {
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                        mine.push(op);
                    }
                }
                mine
            })
        })
        .collect();
    let wait_for_more = |n: u64| {
        let from = acknowledged.load(Ordering::Relaxed);
        while acknowledged.load(Ordering::Relaxed) < from + n {
            thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for_more(50);
    // The leader: the member whose loss interrupts commits.
    let leader = cluster.leader().unwrap();
    cluster.kill(leader);
    wait_for_more(50);
    cluster.restart(leader).unwrap();
    wait_for_more(50);
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let ns = stores[1].namespace("load").unwrap();
    for op in &acked {
        assert!(ns.exists(op).unwrap(), "acknowledged {op} was lost");
    }
    let recorded = ns.all_keys("op-").unwrap().len();
    let count = ns.get("count").unwrap().unwrap();
    assert_eq!(String::from_utf8(count).unwrap(), recorded.to_string());
    assert!(recorded >= acked.len());
    stores[1].verify().unwrap();
}

/// 16 MiB and more round trip under etcd's 1.5 MiB request limit, and the
/// chunks of a replaced or deleted value are removed.
#[test]
fn large_values_leave_no_chunks_behind() {
    let t = TempStore::etcd();
    let (cluster, url) = t.etcd.clone().unwrap();
    let store = t.open();
    let ns = store.namespace("big").unwrap();
    let chunk_prefix = EtcdTarget::parse(&url).unwrap().key(b"c/");
    let client = cluster.client("unused").unwrap();
    let sets = || chunks::ids(&client, &chunk_prefix).unwrap().len();

    let first = pseudo_random(1, 16 * 1024 * 1024 + 5);
    ns.set("blob", &first).unwrap();
    assert_eq!(ns.get("blob").unwrap().unwrap(), first);
    assert_eq!(sets(), 1);
    let second = pseudo_random(2, 17 * 1024 * 1024);
    ns.set("blob", &second).unwrap();
    assert_eq!(ns.get("blob").unwrap().unwrap(), second);
    assert_eq!(sets(), 1, "the replaced value's chunks are gone");
    ns.set("blob", b"small now").unwrap();
    assert_eq!(sets(), 0);
    ns.set("blob", &first).unwrap();
    assert!(ns.delete("blob").unwrap());
    assert_eq!(sets(), 0);
    store.verify().unwrap();
}

/// On a cluster with etcd's default limits, a batch fits in one etcd
/// transaction up to 63 keys; a larger one is refused whole, saying why.
#[test]
fn batches_beyond_the_default_txn_limit_are_refused_whole() {
    let cluster = Cluster::start(1).unwrap();
    let store = open(&cluster.url("limits"), &cluster.dir().join("s.seen"));
    let ns = store.namespace("b").unwrap();
    let fits: Vec<(String, Vec<u8>)> = (0..63)
        .map(|i| (format!("k{i}"), pseudo_random(i, 50)))
        .collect();
    ns.set_many(&fits).unwrap();
    let generation = store.generation().unwrap();
    let too_many: Vec<(String, Vec<u8>)> = (0..100)
        .map(|i| (format!("n{i}"), pseudo_random(i, 50)))
        .collect();
    let e = ns.set_many(&too_many).unwrap_err().to_string();
    assert!(
        e.contains("--max-txn-ops") && e.contains("split the batch"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    assert_eq!(store.generation().unwrap(), generation);
    assert!(ns.all_keys("n").unwrap().is_empty());
}

/// The cluster's operator sees lookup keys, ciphertext and sizes: no
/// namespace, key name or value in the clear, and never the root key.
#[test]
fn nothing_readable_in_etcd() {
    let t = TempStore::etcd();
    let (cluster, url) = t.etcd.clone().unwrap();
    {
        let store = t.open();
        let ns = store.namespace("secret-app-name").unwrap();
        ns.set("very-secret-key-name", b"very secret value, plain text")
            .unwrap();
        ns.set("big-secret", pseudo_random(5, 2 << 20)).unwrap();
    }
    let all = everything_in_etcd(&cluster, &url);
    assert!(all.len() > 5);
    let root = [1u8; 32];
    for (k, v) in &all {
        for needle in [
            &b"secret-app-name"[..],
            b"very-secret-key-name",
            b"big-secret",
            b"very secret value",
            &root,
            &pseudo_random(5, 2 << 20)[..64],
        ] {
            assert!(!common::contains(k, needle), "{needle:?} in a key");
            assert!(!common::contains(v, needle), "{needle:?} in a value");
        }
    }
}

/// An etcd snapshot restored after more writes is an older store: a node
/// that saw the newer one refuses it, at open and while running.
#[test]
fn a_restored_older_snapshot_is_refused() {
    let mut cluster = Cluster::start(3).unwrap();
    let url = cluster.url("rollback");
    let state = cluster.dir().join("node.seen");
    let running = {
        let store = open(&url, &state);
        store.namespace("a").unwrap().set("k", b"old").unwrap();
        cluster
            .save_snapshot(&cluster.dir().join("snap.db"))
            .unwrap();
        store.namespace("a").unwrap().set("k", b"new").unwrap();
        store
    };
    let seen = running.last_seen_generation().unwrap();
    let snapshot = cluster.dir().join("snap.db");
    cluster.restore(&snapshot).unwrap();

    let e = OpenOptions::new()
        .state_file(&state)
        .open_url(&url, &key(1))
        .err()
        .unwrap();
    assert!(
        matches!(&e, SealError::Rollback { seen: s, file, .. } if *s == seen && *file < seen),
        "{e}"
    );
    let e = running
        .namespace("a")
        .unwrap()
        .set("k", b"newer")
        .unwrap_err();
    assert!(matches!(e, SealError::Rollback { .. }), "{e}");
    // Another node that never saw the newer store has nothing to compare
    // with: the guard is per node.
    let fresh = open(&url, &cluster.dir().join("other.seen"));
    assert_eq!(
        fresh.namespace("a").unwrap().get("k").unwrap().unwrap(),
        b"old"
    );
}

/// An unreachable cluster at open is one clear error naming its endpoints.
#[test]
fn an_unreachable_cluster_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("etcd://127.0.0.1:{port}/nobody-home");
    let e = OpenOptions::new()
        .state_file(dir.path().join("s.seen"))
        .open_url(&url, &key(1))
        .err()
        .unwrap();
    let message = e.to_string();
    assert!(matches!(e, SealError::Unreachable { .. }), "{message}");
    assert!(
        message.contains("unreachable") && message.contains(&format!("127.0.0.1:{port}")),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
    let e = OpenOptions::new()
        .open_url("etcd://127.0.0.1:1/", &key(1))
        .err()
        .unwrap();
    assert!(
        matches!(&e, SealError::InvalidUrl(m) if m.contains("key prefix is empty")),
        "{e}"
    );
}

/// Threads of one node whose writes are committed together (group commit)
/// keep their own answers: of 16 compare-and-swaps from absent, exactly one
/// wins; a transaction that fails leaves nothing while the others in its
/// group commit.
#[test]
fn writes_committed_together_keep_their_own_answers() {
    let t = TempStore::etcd();
    let store = t.open();
    let ns = store.namespace("group").unwrap();
    for round in 0..3 {
        let winners: usize = (0..16)
            .map(|i| {
                let ns = ns.clone();
                let key = format!("lock-{round}");
                thread::spawn(move || {
                    ns.compare_and_swap(&key, None, Some(format!("{i}").as_bytes()))
                        .unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum();
        assert_eq!(winners, 1, "round {round}");
    }
    let results: Vec<bool> = (0..16)
        .map(|i| {
            let ns = ns.clone();
            thread::spawn(move || {
                ns.transaction(|tx| {
                    tx.set(format!("t{i}"), b"x")?;
                    if i % 2 == 1 {
                        return Err(SealError::Key(format!("refused {i}")));
                    }
                    Ok(())
                })
                .is_ok()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for (i, ok) in results.iter().enumerate() {
        assert_eq!(*ok, i % 2 == 0);
        assert_eq!(ns.exists(format!("t{i}")).unwrap(), i % 2 == 0, "t{i}");
    }
    store.verify().unwrap();
}

/// A transaction that panics among others committed together leaves them
/// to commit (or run again), never waiting for it.
#[test]
fn a_panicking_transaction_does_not_stall_the_others() {
    let t = TempStore::etcd();
    let store = t.open();
    let ns = store.namespace("panics").unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let ns = ns.clone();
            thread::spawn(move || {
                for _ in 0..5 {
                    ns.transaction(|tx| {
                        tx.set(format!("k{i}"), b"v")?;
                        assert!(i != 3, "transaction {i} fails on purpose");
                        Ok::<_, SealError>(())
                    })
                    .unwrap();
                    ns.increment("n", 1).unwrap();
                }
            })
        })
        .collect();
    let panicked: Vec<bool> = handles.into_iter().map(|h| h.join().is_err()).collect();
    assert_eq!(panicked.iter().filter(|p| **p).count(), 1);
    assert!(panicked[3]);
    assert_eq!(ns.get("n").unwrap().unwrap(), b"35");
    assert!(!ns.exists("k3").unwrap());
    store.verify().unwrap();
}
