//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use warden_seal::{KeySource, RootKey, StaticKey, Store, Table};

pub fn key(n: u8) -> StaticKey {
    StaticKey::new(RootKey::from_bytes([n; 32]))
}

pub struct TempStore {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        TempStore { dir, path }
    }

    pub fn open(&self) -> Store {
        Store::open(&self.path, &key(1)).expect("open store")
    }

    pub fn open_with(&self, keys: &dyn KeySource) -> warden_seal::Result<Store> {
        Store::open(&self.path, keys)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn def(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

/// Every entry of one table of a closed store file, read with plain redb
/// (what an attacker holding the file can do).
pub fn raw_entries(path: &Path, table: Table) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = Database::open(path).expect("raw open");
    let txn = db.begin_read().expect("raw read");
    let t = txn.open_table(def(table)).expect("raw table");
    t.iter()
        .expect("raw iter")
        .map(|e| {
            let (k, v) = e.expect("raw entry");
            (k.value().to_vec(), v.value().to_vec())
        })
        .collect()
}

/// Applies `f` to one table of a closed store file, in one redb transaction.
pub fn raw_edit(
    path: &Path,
    table: Table,
    f: impl FnOnce(&mut redb::Table<&'static [u8], &'static [u8]>),
) {
    let db = Database::create(path).expect("raw open");
    let txn = db.begin_write().expect("raw write");
    {
        let mut t = txn.open_table(def(table)).expect("raw table");
        f(&mut t);
    }
    txn.commit().expect("raw commit");
}

/// Flips one bit in every occurrence of `needle` in the file.
pub fn flip_in_file(path: &Path, needle: &[u8], offset_in_needle: usize) -> usize {
    let mut bytes = std::fs::read(path).expect("read store file");
    let mut hits = 0;
    let mut i = 0;
    while i + needle.len() <= bytes.len() {
        if &bytes[i..i + needle.len()] == needle {
            bytes[i + offset_in_needle] ^= 0x10;
            hits += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    std::fs::write(path, &bytes).expect("write store file");
    hits
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
