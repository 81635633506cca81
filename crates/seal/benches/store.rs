//! Sealed store vs plain redb (no encryption), same run, same machine, same
//! durability (every write transaction is durable when it commits).
//!
//! Cases: get and set of 100 B and 4 KiB values, one per transaction and in
//! batches of 100 per transaction. Each case alternates plain and sealed in
//! short time slices (25 ms, 40 of each) and compares the total throughput
//! of each side, so that both see the same load on a shared machine.
//!
//! Run: `cargo bench -p warden-seal` (about 25 s); `cargo bench -p
//! warden-seal -- FILTER` runs only the cases whose name contains FILTER.

use std::hint::black_box;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, TableDefinition};
use warden_seal::{Namespace, RootKey, SealError, StaticKey, Store};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("plain");
const KEYS: usize = 10_000;
const BATCH: usize = 100;
const SLICE: Duration = Duration::from_millis(25);
const SLICES: usize = 40;

/// Key number `i` of the access sequence: scattered over the key space
/// (7919 is prime to KEYS), so consecutive operations and the keys of one
/// batch are unrelated, as in a typical key-value workload. With
/// `WARDEN_SEAL_BENCH_KEYS=sequential` they are consecutive instead, which
/// plain redb turns into page locality and the sealed store (whose lookup
/// keys are hashes) cannot.
fn key(i: usize) -> String {
    let stride = if sequential() { 1 } else { 7919 };
    format!("user/{:08}/profile", (i * stride) % KEYS)
}

/// The keys of the batch that starts at `i`. Both sides get them as one
/// list, as a caller of a batch read has them, and each side hands back one
/// value at a time, which the caller copies out and drops.
fn batch_keys(i: usize) -> Vec<String> {
    (0..BATCH).map(|j| key(i + j)).collect()
}

fn sequential() -> bool {
    static SEQUENTIAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SEQUENTIAL
        .get_or_init(|| std::env::var("WARDEN_SEAL_BENCH_KEYS").is_ok_and(|v| v == "sequential"))
}

fn value(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|j| (j * 31 + seed * 7) as u8).collect()
}

#[derive(Clone, Copy)]
enum Op {
    Get,
    Set,
}

/// One side of the comparison.
trait Side {
    fn set_one(&self, i: usize, v: &[u8]);
    fn set_batch(&self, i: usize, v: &[u8]);
    fn get_one(&self, i: usize) -> Vec<u8>;
    fn get_batch(&self, i: usize) -> usize;
}

struct Plain(Database);

impl Side for Plain {
    fn set_one(&self, i: usize, v: &[u8]) {
        let txn = self.0.begin_write().unwrap();
        txn.open_table(TABLE)
            .unwrap()
            .insert(key(i).as_bytes(), v)
            .unwrap();
        txn.commit().unwrap();
    }

    fn set_batch(&self, i: usize, v: &[u8]) {
        let txn = self.0.begin_write().unwrap();
        {
            let mut t = txn.open_table(TABLE).unwrap();
            for k in batch_keys(i) {
                t.insert(k.as_bytes(), v).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    fn get_one(&self, i: usize) -> Vec<u8> {
        let txn = self.0.begin_read().unwrap();
        let t = txn.open_table(TABLE).unwrap();
        let v = t.get(key(i).as_bytes()).unwrap().unwrap().value().to_vec();
        v
    }

    fn get_batch(&self, i: usize) -> usize {
        let keys = batch_keys(i);
        let txn = self.0.begin_read().unwrap();
        let t = txn.open_table(TABLE).unwrap();
        keys.iter()
            .map(|k| {
                let v = t.get(k.as_bytes()).unwrap().unwrap().value().to_vec();
                black_box(v).len()
            })
            .sum()
    }
}

struct Sealed(Namespace);

impl Side for Sealed {
    fn set_one(&self, i: usize, v: &[u8]) {
        self.0.set(key(i), v).unwrap();
    }

    fn set_batch(&self, i: usize, v: &[u8]) {
        let entries: Vec<(String, &[u8])> = batch_keys(i).into_iter().map(|k| (k, v)).collect();
        self.0.set_many(&entries).unwrap();
    }

    fn get_one(&self, i: usize) -> Vec<u8> {
        self.0.get(key(i)).unwrap().unwrap()
    }

    fn get_batch(&self, i: usize) -> usize {
        let mut sum = 0;
        self.0
            .get_many_with(&batch_keys(i), |_, v| {
                sum += black_box(v.map(<[u8]>::to_vec)).unwrap().len();
                Ok::<_, SealError>(())
            })
            .unwrap();
        sum
    }
}

/// Runs operations for one time slice; returns how many and how long.
fn run(side: &dyn Side, op: Op, batched: bool, v: &[u8], start: &mut usize) -> (usize, Duration) {
    let began = Instant::now();
    let mut ops = 0usize;
    while began.elapsed() < SLICE {
        let i = *start;
        match (op, batched) {
            (Op::Set, false) => side.set_one(i, v),
            (Op::Set, true) => side.set_batch(i, v),
            (Op::Get, false) => {
                black_box(side.get_one(i));
            }
            (Op::Get, true) => {
                black_box(side.get_batch(i));
            }
        }
        let n = if batched { BATCH } else { 1 };
        ops += n;
        *start += n * 7 + 1; // wander over the key space
    }
    (ops, began.elapsed())
}

#[derive(Default)]
struct Total {
    ops: usize,
    time: Duration,
}

impl Total {
    fn add(&mut self, (ops, time): (usize, Duration)) {
        self.ops += ops;
        self.time += time;
    }

    fn per_second(&self) -> f64 {
        self.ops as f64 / self.time.as_secs_f64()
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Plain(Database::create(dir.path().join("plain.redb")).unwrap());
    let store = Store::open(
        dir.path().join("sealed.redb"),
        &StaticKey::new(RootKey::from_bytes([7; 32])),
    )
    .unwrap();
    let sealed = Sealed(store.namespace("bench").unwrap());

    // cargo passes `--bench`; anything else is a filter on case names.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    println!("| case | plain redb ops/s | sealed ops/s | sealed/plain |");
    println!("|---|---:|---:|---:|");
    let mut worst: f64 = f64::MAX;
    for size in [100usize, 4096] {
        let v = value(size, size);
        // Both stores hold the same KEYS keys of this size before timing.
        for chunk in 0..KEYS / BATCH {
            plain.set_batch(chunk * BATCH, &v);
            sealed.set_batch(chunk * BATCH, &v);
        }
        for (op, batched) in [
            (Op::Set, false),
            (Op::Set, true),
            (Op::Get, false),
            (Op::Get, true),
        ] {
            let name = format!(
                "{} {} B, {}",
                match op {
                    Op::Get => "get",
                    Op::Set => "set",
                },
                size,
                if batched {
                    "batches of 100"
                } else {
                    "one per transaction"
                }
            );
            if !name.contains(&filter) {
                continue;
            }
            let (mut plain_total, mut sealed_total) = (Total::default(), Total::default());
            let (mut at_plain, mut at_sealed) = (0usize, 0usize);
            for _ in 0..SLICES {
                plain_total.add(run(&plain, op, batched, &v, &mut at_plain));
                sealed_total.add(run(&sealed, op, batched, &v, &mut at_sealed));
            }
            let (plain_rate, sealed_rate) = (plain_total.per_second(), sealed_total.per_second());
            let ratio = sealed_rate / plain_rate;
            worst = worst.min(ratio);
            println!("| {name} | {plain_rate:.0} | {sealed_rate:.0} | {ratio:.2} |");
        }
    }
    println!();
    println!("lowest ratio: {worst:.2} (target 0.70)");

    // Opening checks the multiset hash over every record (values up to
    // 4 KiB are in their records, so this reads them too).
    let path = dir.path().join("sealed.redb");
    let records = sealed.0.all_keys("").unwrap().len();
    drop(sealed);
    drop(store);
    let size = std::fs::metadata(&path).unwrap().len();
    let began = Instant::now();
    let store = Store::open(&path, &StaticKey::new(RootKey::from_bytes([7; 32]))).unwrap();
    println!(
        "open with verification: {records} records of 4 KiB, {:.0} MiB file, {:.1} ms",
        size as f64 / (1 << 20) as f64,
        began.elapsed().as_secs_f64() * 1e3
    );
    store.verify().unwrap();
}
