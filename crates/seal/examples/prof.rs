// scratch: not committed
use redb::{Database, ReadableDatabase, TableDefinition};
use std::hint::black_box;
use std::time::Instant;
use warden_seal::{RootKey, StaticKey, Store};
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("plain");
fn key(i: usize) -> String {
    format!("user/{:08}/profile", (i * 7919) % 10000)
}
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let side = args[1].as_str();
    let size: usize = args[2].parse().unwrap();
    let batched = args.get(3).map(|s| s == "batch").unwrap_or(false);
    let dir = tempfile::tempdir().unwrap();
    let v: Vec<u8> = (0..size).map(|j| j as u8).collect();
    let n = 2_000_000usize / if size > 1000 { 4 } else { 1 };
    if side == "plain" {
        let db = Database::create(dir.path().join("p.redb")).unwrap();
        for c in 0..100 {
            let t = db.begin_write().unwrap();
            {
                let mut tb = t.open_table(TABLE).unwrap();
                for j in 0..100 {
                    tb.insert(key(c * 100 + j).as_bytes(), v.as_slice())
                        .unwrap();
                }
            }
            t.commit().unwrap();
        }
        let keys: Vec<String> = (0..n).map(key).collect();
        let began = Instant::now();
        if batched {
            for ch in keys.chunks(100) {
                let txn = db.begin_read().unwrap();
                let t = txn.open_table(TABLE).unwrap();
                for k in ch {
                    black_box(t.get(k.as_bytes()).unwrap().unwrap().value().to_vec());
                }
            }
        } else {
            for k in &keys {
                let txn = db.begin_read().unwrap();
                let t = txn.open_table(TABLE).unwrap();
                black_box(t.get(k.as_bytes()).unwrap().unwrap().value().to_vec());
            }
        }
        println!(
            "plain {} ns/op",
            began.elapsed().as_nanos() as f64 / n as f64
        );
    } else {
        let store = Store::open(
            dir.path().join("s.redb"),
            &StaticKey::new(RootKey::from_bytes([7; 32])),
        )
        .unwrap();
        let ns = store.namespace("bench").unwrap();
        for c in 0..100 {
            let e: Vec<(String, &[u8])> =
                (0..100).map(|j| (key(c * 100 + j), v.as_slice())).collect();
            ns.set_many(&e).unwrap();
        }
        let keys: Vec<String> = (0..n).map(key).collect();
        let began = Instant::now();
        if batched {
            for ch in keys.chunks(100) {
                ns.get_many_with(ch, |_, v| {
                    black_box(v.map(<[u8]>::to_vec));
                    Ok::<_, warden_seal::SealError>(())
                })
                .unwrap();
            }
        } else {
            for k in &keys {
                black_box(ns.get(k).unwrap());
            }
        }
        println!(
            "sealed {} ns/op",
            began.elapsed().as_nanos() as f64 / n as f64
        );
    }
}
