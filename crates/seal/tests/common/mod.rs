//! Helpers shared by the integration tests.
#![allow(dead_code, unused_macros)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use warden_etcd::testing::Cluster;
use warden_seal::{KeySource, OpenOptions, RootKey, StaticKey, Store, Table};

pub fn key(n: u8) -> StaticKey {
    StaticKey::new(RootKey::from_bytes([n; 32]))
}

/// A store for one test, removed with it: a redb file in a temporary
/// directory, or a prefix of a real etcd cluster started for the test
/// (killed when the last `TempStore` on it is dropped).
pub struct TempStore {
    pub dir: tempfile::TempDir,
    /// The redb file (unused on etcd).
    pub path: PathBuf,
    /// On etcd: the cluster and the store's URL.
    pub etcd: Option<(Arc<Cluster>, String)>,
}

/// Runs each `fn name(t: TempStore)` as a test on redb (`on_redb::name`)
/// and on etcd (`on_etcd::name`): one test suite for both backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_redb {
            $( #[test] fn $name() { super::$name(super::common::TempStore::new()) } )*
        }
        mod on_etcd {
            $( #[test] fn $name() { super::$name(super::common::TempStore::etcd()) } )*
        }
    };
}

static PREFIXES: AtomicUsize = AtomicUsize::new(0);

impl TempStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        TempStore {
            dir,
            path,
            etcd: None,
        }
    }

    /// A store on a fresh 1-member etcd cluster. Its `--max-txn-ops` is
    /// raised to 1024 (and the URL says so) because the suite writes
    /// batches of 100 keys, 202 operations; tests/etcd.rs tests the default
    /// limit.
    pub fn etcd() -> Self {
        let cluster = Cluster::start_with(1, &["--max-txn-ops", "1024"]).expect("start etcd");
        Self::on_cluster(Arc::new(cluster))
    }

    /// A store under a prefix of its own on `cluster`.
    pub fn on_cluster(cluster: Arc<Cluster>) -> Self {
        let n = PREFIXES.fetch_add(1, Ordering::Relaxed);
        let url = cluster.url(&format!("stores/s{n}?max-txn-ops=1024"));
        let mut t = Self::new();
        t.etcd = Some((cluster, url));
        t
    }

    /// Another empty store on the same kind of backend (the same cluster).
    pub fn sibling(&self) -> Self {
        match &self.etcd {
            Some((cluster, _)) => Self::on_cluster(cluster.clone()),
            None => Self::new(),
        }
    }

    /// What the store calls itself in messages.
    pub fn location(&self) -> String {
        match &self.etcd {
            Some((_, url)) => warden_etcd::EtcdTarget::parse(url)
                .expect("url")
                .canonical(),
            None => self.path.display().to_string(),
        }
    }

    pub fn open(&self) -> Store {
        self.open_with(&key(1)).expect("open store")
    }

    pub fn open_with(&self, keys: &dyn KeySource) -> warden_seal::Result<Store> {
        self.open_options(OpenOptions::new(), keys)
    }

    /// Opens with `options`; on etcd with a rollback state file in the
    /// test's directory (as `warden kv` keeps one beside the key file).
    pub fn open_options(
        &self,
        options: OpenOptions,
        keys: &dyn KeySource,
    ) -> warden_seal::Result<Store> {
        match &self.etcd {
            Some((_, url)) => options
                .state_file(self.dir.path().join("etcd.seen"))
                .open_url(url, keys),
            None => options.open(&self.path, keys),
        }
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
