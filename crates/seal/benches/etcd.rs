//! The sealed store on etcd vs plain etcd without sealing: same cluster
//! (one member on loopback, started here), same client, same keys and
//! value sizes, same run.
//!
//! Cases: get and set of 100 B and 4 KiB values, from 1 thread and from 8
//! threads at once. Each case alternates plain and sealed in time slices
//! (200 ms, 10 of each) and compares their total throughput, so both see
//! the same load on a shared machine. The target is a ratio of at
//! least 0.7.
//!
//! Run: `cargo bench -p warden-seal --bench etcd` (about a minute);
//! `… -- FILTER` runs only the cases whose name contains FILTER.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use warden_etcd::testing::Cluster;
use warden_etcd::{EtcdClient, EtcdTarget, Timeouts};
use warden_seal::{Namespace, OpenOptions, RootKey, StaticKey};

const KEYS: usize = 1000;
const SLICE: Duration = Duration::from_millis(200);
const SLICES: usize = 10;

fn key(i: usize) -> String {
    format!("user/{:08}/profile", (i * 7919) % KEYS)
}

fn value(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|j| (j * 31 + seed * 7) as u8).collect()
}

#[derive(Clone)]
enum Side {
    Plain(EtcdClient),
    Sealed(Namespace),
}

impl Side {
    fn set(&self, i: usize, v: &[u8]) {
        match self {
            Side::Plain(c) => {
                c.put(&c.target().key(key(i).as_bytes()), v).expect("put");
            }
            Side::Sealed(ns) => ns.set(key(i), v).expect("set"),
        }
    }

    fn get(&self, i: usize) -> usize {
        match self {
            Side::Plain(c) => {
                let (e, _) = c.get(&c.target().key(key(i).as_bytes()), 0).expect("get");
                e.map_or(0, |e| e.value.len())
            }
            Side::Sealed(ns) => ns.get(key(i)).expect("get").map_or(0, |v| v.len()),
        }
    }
}

/// Operations done by `threads` threads in one slice.
fn slice(side: &Side, set: bool, len: usize, threads: usize, next: &Arc<AtomicUsize>) -> usize {
    let v = value(len, 1);
    let deadline = Instant::now() + SLICE;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (side, v, next) = (side.clone(), v.clone(), next.clone());
                s.spawn(move || {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if set {
                            side.set(i, &v);
                        } else {
                            std::hint::black_box(side.get(i));
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    })
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let cluster = Cluster::start(1).expect("start etcd");
    let plain_target = EtcdTarget::parse(&cluster.url("plain")).expect("url");
    let plain =
        Side::Plain(EtcdClient::connect(&plain_target, Timeouts::default()).expect("connect"));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = OpenOptions::new()
        .state_file(dir.path().join("bench.seen"))
        .open_url(
            &cluster.url("sealed"),
            &StaticKey::new(RootKey::from_bytes([7; 32])),
        )
        .expect("open store");
    let sealed = Side::Sealed(store.namespace("bench").expect("namespace"));

    println!("sealed store on etcd vs plain etcd (1 member on loopback), ops/s");
    println!(
        "{:<24} {:>10} {:>10} {:>7}",
        "case", "plain", "sealed", "ratio"
    );
    for len in [100usize, 4096] {
        for side in [&plain, &sealed] {
            for i in 0..KEYS {
                side.set(i, &value(len, 0));
            }
        }
        for (op, set) in [("get", false), ("set", true)] {
            for threads in [1usize, 8] {
                let name = format!(
                    "{op} {len} B, {threads} thread{}",
                    if threads > 1 { "s" } else { "" }
                );
                if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
                    continue;
                }
                let next = Arc::new(AtomicUsize::new(0));
                let (mut p, mut s) = (0, 0);
                for _ in 0..SLICES {
                    p += slice(&plain, set, len, threads, &next);
                    s += slice(&sealed, set, len, threads, &next);
                }
                let secs = SLICE.as_secs_f64() * SLICES as f64;
                let (p, s) = (p as f64 / secs, s as f64 / secs);
                println!("{name:<24} {p:>10.0} {s:>10.0} {:>6.2}x", s / p);
            }
        }
    }
}
