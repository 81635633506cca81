//! The store: opening (key check, integrity check, rollback check), the
//! sealed state record, and the write machinery every operation goes through.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::backend::redb::RedbBackend;
use crate::backend::{Backend, Durability, Outcome, ReadTxn, Table};
use crate::crypto::{derive, MacKey, Multiset, Prf, SealKey};
use crate::error::{Result, SealError};
use crate::keys::{fill_random, KeySource, RootKey};
use crate::namespace::Namespace;
use crate::record::{NsKeys, Record, LOOKUP_LEN, TAG_LEN};
use crate::rollback::{default_state_file, peek_store_id, SeenState};
use crate::transaction::Transaction;

mod header;

pub(crate) const STATE_KEY: &[u8] = b"state";

const MAX_NAMESPACE_LEN: usize = 255;

/// How to open a store. `Store::open` uses the defaults.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    create: bool,
    durability: Durability,
    state_file: Option<PathBuf>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            create: true,
            durability: Durability::Immediate,
            state_file: None,
        }
    }
}

impl OpenOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Create the store if there is none (default `true`). With `false`,
    /// opening a missing store fails with [`SealError::NoStore`] and leaves
    /// nothing behind.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// When writes become durable (default [`Durability::Immediate`]). With
    /// `Eventual`, call [`Store::flush`] at sync points; the rollback state
    /// only advances at durable commits.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Where to keep the last-seen generation. Default for [`Self::open`]:
    /// `<store file>.seen`. Keeping it elsewhere than the store (next to the
    /// key file) means restoring an old directory does not also restore it.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// Opens (or creates) the redb store file at `path`.
    pub fn open(&self, path: impl AsRef<Path>, keys: &dyn KeySource) -> Result<Store> {
        let path = path.as_ref();
        if !self.create && !path.exists() {
            return Err(SealError::NoStore {
                location: path.display().to_string(),
            });
        }
        if self.create {
            create_private_file(path)?;
        }
        let state = self
            .state_file
            .clone()
            .unwrap_or_else(|| default_state_file(path));
        let backend = RedbBackend::open(path, self.create)?;
        open_store(Box::new(backend), keys, self, Some(state))
    }

    /// Opens the store at `url`: an `etcd://` target (see
    /// [`warden_etcd::EtcdTarget`]) or else a redb file path, as
    /// [`Self::open`]. For etcd, the rollback state is [`Self::state_file`]
    /// (warden keeps it beside the key file, named after the canonical
    /// target: [`crate::state_file_beside_url`]); without one there is no
    /// rollback protection.
    pub fn open_url(&self, url: &str, keys: &dyn KeySource) -> Result<Store> {
        if !warden_etcd::EtcdTarget::is_etcd_url(url) {
            return self.open(url, keys);
        }
        let target = warden_etcd::EtcdTarget::parse(url)
            .map_err(|e| SealError::InvalidUrl(e.to_string()))?;
        let backend = crate::backend::etcd::EtcdBackend::open(&target, Default::default())?;
        open_store(Box::new(backend), keys, self, self.state_file.clone())
    }

    /// Opens a store on another backend. Without [`Self::state_file`] there
    /// is no rollback protection.
    pub fn open_backend(&self, backend: Box<dyn Backend>, keys: &dyn KeySource) -> Result<Store> {
        open_store(backend, keys, self, self.state_file.clone())
    }
}

/// Creates an empty store file (and its directory) readable by the owner
/// only, unless it exists; redb initialises an empty file.
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| SealError::io(format!("cannot create directory {}", dir.display()), e))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(SealError::io(
            format!("cannot create store {}", path.display()),
            e,
        )),
    }
}

/// The keys of a store, all derived from the root key with the store's id as salt.
pub(crate) struct StoreKeys {
    pub(crate) root: RootKey,
    check: MacKey,
    state: SealKey,
    multiset: MacKey,
    ns_tag: MacKey,
    pub(crate) ns_name: SealKey,
    seen: MacKey,
}

impl StoreKeys {
    fn derive(root: RootKey, store_id: &[u8; 16]) -> Self {
        let d = |label: &[u8]| derive(&root, store_id, &[label]);
        StoreKeys {
            check: MacKey::new(&d(b"warden-seal/v1/check")),
            state: SealKey::new(&d(b"warden-seal/v1/state")),
            multiset: MacKey::new(&d(b"warden-seal/v1/multiset")),
            ns_tag: MacKey::new(&d(b"warden-seal/v1/ns-tag")),
            ns_name: SealKey::new(&d(b"warden-seal/v1/ns-name")),
            seen: MacKey::new(&d(b"warden-seal/v1/seen")),
            root,
        }
    }
}

/// The sealed state record: generation, element count, multiset hash.
#[derive(Clone, Copy, Debug)]
pub(crate) struct State {
    pub(crate) generation: u64,
    pub(crate) count: u64,
    pub(crate) multiset: Multiset,
}

/// A sealed key-value store, cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) location: String,
    pub(crate) store_id: [u8; 16],
    pub(crate) keys: StoreKeys,
    durability: Durability,
    pub(crate) seen: Option<Mutex<SeenState>>,
    /// Generation of the newest commit, durable or not.
    last_commit: AtomicU64,
    /// Generation of the newest commit known to be durable: a flush with
    /// nothing newer to make durable writes nothing.
    durable: AtomicU64,
    namespaces: RwLock<HashMap<String, Arc<NsKeys>>>,
    /// The filesystem state of each namespace mounted as a sealed
    /// filesystem, so that every `SealedFs` of one namespace in this store
    /// shares one open-file bookkeeping (see `fs::SealedFs::new`).
    pub(crate) filesystems: crate::fs::Registry,
}

fn open_store(
    backend: Box<dyn Backend>,
    keys: &dyn KeySource,
    options: &OpenOptions,
    state_file: Option<PathBuf>,
) -> Result<Store> {
    let location = backend.location().to_string();
    let header = read_with(&*backend, &location, |t| t.get(Table::Meta, header::KEY))?;
    let (store_id, store_keys) = match header {
        Some(h) => header::unlock(&h, keys, &location)?,
        None => {
            if !backend.is_blank()? {
                return Err(SealError::NotAStore {
                    location,
                    detail: "it holds data but no sealed-store header".into(),
                });
            }
            if !options.create {
                return Err(SealError::NoStore { location });
            }
            if let Some(path) = &state_file {
                if peek_store_id(path)?.is_some() {
                    return Err(SealError::StateMismatch {
                        location,
                        state: path.display().to_string(),
                        detail: format!(
                            "the store file is empty but the rollback state exists: the store \
                             was deleted, truncated or replaced (to start a new store on \
                             purpose, remove {})",
                            path.display()
                        ),
                    });
                }
            }
            match initialise(&*backend, keys)? {
                Some(created) => created,
                // Another opener (of a shared backend) initialised it first.
                None => {
                    let h = read_with(&*backend, &location, |t| t.get(Table::Meta, header::KEY))?
                        .ok_or_else(|| SealError::NotAStore {
                        location: location.clone(),
                        detail: "its header vanished while it was being created".into(),
                    })?;
                    header::unlock(&h, keys, &location)?
                }
            }
        }
    };
    let state = read_with(&*backend, &location, |t| {
        let state = load_state(t, &store_keys, &store_id, &location)?;
        verify_elements(t, &store_keys, &state, &location)?;
        Ok(state)
    })?;
    let seen = match state_file {
        Some(path) => Some(Mutex::new(SeenState::check(
            &path,
            store_id,
            store_keys.seen.clone(),
            state.generation,
            &location,
        )?)),
        None => None,
    };
    Ok(Store {
        inner: Arc::new(Inner {
            backend,
            location,
            store_id,
            keys: store_keys,
            durability: options.durability,
            seen,
            last_commit: AtomicU64::new(state.generation),
            durable: AtomicU64::new(state.generation),
            namespaces: RwLock::new(HashMap::new()),
            filesystems: crate::fs::Registry::default(),
        }),
    })
}

/// Writes the header and the first state record of a new store; `None` if
/// someone else wrote a header first.
fn initialise(
    backend: &dyn Backend,
    keys: &dyn KeySource,
) -> Result<Option<([u8; 16], StoreKeys)>> {
    let mut store_id = [0u8; 16];
    fill_random(&mut store_id)?;
    let store_keys = StoreKeys::derive(keys.root_key(&store_id)?, &store_id);
    let header = header::encode(&store_id, &store_keys);
    let first = State {
        generation: 1,
        count: 0,
        multiset: Multiset::default(),
    };
    let sealed_state = seal_state(&store_keys, &store_id, &first)?;
    let mut won = false;
    backend.write(Durability::Immediate, &mut |txn| {
        won = txn.get(Table::Meta, header::KEY)?.is_none();
        if !won {
            return Ok(Outcome::Abort);
        }
        txn.put(Table::Meta, header::KEY, &header)?;
        txn.put(Table::Meta, STATE_KEY, &sealed_state)?;
        Ok(Outcome::Commit)
    })?;
    Ok(won.then_some((store_id, store_keys)))
}

fn state_aad(store_id: &[u8; 16]) -> [u8; 37] {
    let mut aad = [0u8; 37];
    aad[..21].copy_from_slice(b"warden-seal/v1/state\0");
    aad[21..].copy_from_slice(store_id);
    aad
}

pub(crate) fn seal_state(keys: &StoreKeys, store_id: &[u8; 16], s: &State) -> Result<Vec<u8>> {
    let mut plain = [0u8; 48];
    plain[..8].copy_from_slice(&s.generation.to_le_bytes());
    plain[8..16].copy_from_slice(&s.count.to_le_bytes());
    plain[16..].copy_from_slice(&s.multiset.to_bytes());
    keys.state.seal(&state_aad(store_id), &plain)
}

fn load_state(
    txn: &dyn ReadTxn,
    keys: &StoreKeys,
    store_id: &[u8; 16],
    location: &str,
) -> Result<State> {
    let subject = || format!("store {location}");
    let sealed = txn
        .get(Table::Meta, STATE_KEY)?
        .ok_or_else(|| SealError::integrity(subject(), "the sealed state record is missing"))?;
    let plain = keys.state.open(&state_aad(store_id), sealed).map_err(|_| {
        SealError::integrity(subject(), "the sealed state record does not authenticate")
    })?;
    if plain.len() != 48 {
        return Err(SealError::integrity(
            subject(),
            "the sealed state record is malformed",
        ));
    }
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&plain[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let mut acc = [0u8; 32];
    acc.copy_from_slice(&plain[16..48]);
    Ok(State {
        generation: word(0),
        count: word(8),
        multiset: Multiset::from_bytes(&acc),
    })
}

pub(crate) fn namespace_element(keys: &StoreKeys, tag: &[u8]) -> [u8; 32] {
    keys.multiset.mac(&[b"ns", tag])
}

pub(crate) fn record_element(keys: &StoreKeys, lk: &[u8], version: u64) -> [u8; 32] {
    keys.multiset.mac(&[b"rec", lk, &version.to_le_bytes()])
}

/// A sealed name never changes while its key exists, so its element is the
/// lookup key alone: a name deleted, or put back after its key was deleted,
/// changes the multiset.
pub(crate) fn name_element(keys: &StoreKeys, lk: &[u8]) -> [u8; 32] {
    keys.multiset.mac(&[b"name", lk])
}

pub(crate) fn namespace_aad(store_id: &[u8; 16], tag: &[u8]) -> Vec<u8> {
    [b"warden-seal/v1/namespace\0".as_slice(), store_id, tag].concat()
}

/// The multiset element of a table entry (key, value); `None`: malformed.
type ElementOf<'a> = dyn Fn(&[u8], &[u8]) -> Option<[u8; 32]> + 'a;

/// Recomputes the multiset hash over the namespace registry, the records
/// (with values up to 4 KiB; blobs are not read) and the sealed names, and
/// compares it with the sealed one.
fn verify_elements(
    txn: &dyn ReadTxn,
    keys: &StoreKeys,
    state: &State,
    location: &str,
) -> Result<()> {
    let mut multiset = Multiset::default();
    let mut count = 0u64;
    let malformed = || SealError::integrity(format!("store {location}"), "a record is malformed");
    // Adds the element of every entry of `table`.
    let mut add_all = |table: Table, element: &ElementOf<'_>| {
        txn.scan(table, Bound::Unbounded, Bound::Unbounded, &mut |k, v| {
            multiset.add(&element(k, v).ok_or_else(malformed)?);
            count += 1;
            Ok(true)
        })
    };
    add_all(Table::Namespaces, &|tag, _| {
        (tag.len() == TAG_LEN).then(|| namespace_element(keys, tag))
    })?;
    add_all(Table::Records, &|lk, entry| {
        let version = Record::parse(entry)?.version;
        (lk.len() == LOOKUP_LEN).then(|| record_element(keys, lk, version))
    })?;
    add_all(Table::Names, &|lk, _| {
        (lk.len() == LOOKUP_LEN).then(|| name_element(keys, lk))
    })?;
    if multiset != state.multiset || count != state.count {
        return Err(SealError::integrity(
            format!("store {location}"),
            "its records do not match the sealed state (records were deleted, inserted, \
             altered or replayed from an older copy)",
        ));
    }
    Ok(())
}

fn read_with<T>(
    backend: &dyn Backend,
    location: &str,
    mut f: impl FnMut(&dyn ReadTxn) -> Result<T>,
) -> Result<T> {
    let mut out = None;
    backend.read(&mut |txn| {
        out = Some(f(txn)?);
        Ok(())
    })?;
    out.ok_or_else(|| SealError::Storage {
        location: location.to_string(),
        message: "the backend did not run the read transaction".into(),
    })
}

pub(crate) fn validate_namespace(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NAMESPACE_LEN {
        "it is longer than 255 bytes"
    } else if name.chars().any(char::is_control) {
        "it contains control characters"
    } else {
        return Ok(());
    };
    Err(SealError::InvalidNamespace {
        name: name.to_string(),
        reason,
    })
}

impl Store {
    /// Opens (creating it if needed) the store file at `path`, with the
    /// rollback state in `<path>.seen`. See [`OpenOptions`] for more choice.
    pub fn open(path: impl AsRef<Path>, keys: &dyn KeySource) -> Result<Store> {
        OpenOptions::new().open(path, keys)
    }

    /// Where the store is (its file path for redb).
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// The store's random id (also the salt of its key derivation).
    pub fn id(&self) -> [u8; 16] {
        self.inner.store_id
    }

    /// The current generation: bumped by every write transaction.
    pub fn generation(&self) -> Result<u64> {
        self.read(|t| Ok(self.inner.load_state(t)?.generation))
    }

    /// The generation the rollback state holds (None without rollback state).
    pub fn last_seen_generation(&self) -> Option<u64> {
        self.inner
            .seen
            .as_ref()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).seen())
    }

    /// A namespace, created if it does not exist yet.
    pub fn namespace(&self, name: &str) -> Result<Namespace> {
        let keys = self.inner.ns_keys(name)?;
        let exists = self.read(|t| self.inner.is_registered(t, &keys))?;
        if !exists {
            self.write(|tx| tx.ensure_registered(&keys))?;
        }
        Ok(Namespace::new(self.clone(), keys))
    }

    /// An existing namespace, or [`SealError::UnknownNamespace`].
    pub fn existing_namespace(&self, name: &str) -> Result<Namespace> {
        let keys = self.inner.ns_keys(name)?;
        let exists = self.read(|t| self.inner.is_registered(t, &keys))?;
        if !exists {
            return Err(SealError::UnknownNamespace(name.to_string()));
        }
        Ok(Namespace::new(self.clone(), keys))
    }

    /// The names of all namespaces, sorted.
    pub fn namespaces(&self) -> Result<Vec<String>> {
        let mut names = self.read(|t| self.inner.namespace_names(t))?;
        names.sort();
        Ok(names)
    }

    /// Deletes a namespace and everything in it; says whether it existed.
    pub fn delete_namespace(&self, name: &str) -> Result<bool> {
        let keys = self.inner.ns_keys(name)?;
        self.write(|tx| tx.drop_namespace(&keys))
    }

    /// Runs `f` as one atomic transaction over any namespaces of this store:
    /// its reads see its own writes, and either all its writes are committed
    /// or, if it returns an error, none. `f` may be run more than once by a
    /// backend that retries on conflict.
    pub fn transaction<T, E: From<SealError>>(
        &self,
        f: impl FnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.write(f)
    }

    /// Makes every commit durable (needed with [`Durability::Eventual`]).
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// Checks the whole store again, as at open: the sealed state and the
    /// multiset hash over all records.
    pub fn verify(&self) -> Result<()> {
        self.read(|t| {
            let state = self.inner.load_state(t)?;
            verify_elements(t, &self.inner.keys, &state, &self.inner.location)
        })
    }

    pub(crate) fn read<T>(&self, f: impl FnMut(&dyn ReadTxn) -> Result<T>) -> Result<T> {
        read_with(&*self.inner.backend, &self.inner.location, f)
    }

    /// Runs `f` in a write transaction that loads the sealed state, lets `f`
    /// change records, then bumps the generation and reseals the state —
    /// unless `f` changed nothing, or failed, in which case nothing is written.
    pub(crate) fn write<T, E: From<SealError>>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let inner = &*self.inner;
        let mut result: Option<std::result::Result<T, E>> = None;
        let mut committed = None;
        inner
            .backend
            .write(inner.durability, &mut |txn| {
                committed = None;
                let state = inner.load_state(txn)?;
                // Another node may have written since this one opened the
                // store, but the shared store must never go backwards (an
                // etcd snapshot restored under running nodes).
                inner.check_not_rolled_back(state.generation)?;
                let mut tx = Transaction::begin(txn, inner, state);
                match f(&mut tx) {
                    Ok(value) => {
                        result = Some(Ok(value));
                        committed = tx.finish()?;
                        Ok(if committed.is_some() {
                            Outcome::Commit
                        } else {
                            Outcome::Abort
                        })
                    }
                    Err(e) => {
                        result = Some(Err(e));
                        Ok(Outcome::Abort)
                    }
                }
            })
            .map_err(E::from)?;
        if let Some(generation) = committed {
            inner.last_commit.fetch_max(generation, Ordering::SeqCst);
            if inner.durability == Durability::Immediate {
                inner.durable.fetch_max(generation, Ordering::SeqCst);
                // The commit stands even if the state file cannot be
                // updated, but the caller must hear of it: until the state
                // is updated, a copy of the store from before this commit
                // would not be refused.
                inner.record_seen(generation).map_err(E::from)?;
            }
        }
        result.unwrap_or_else(|| {
            Err(E::from(SealError::Storage {
                location: inner.location.clone(),
                message: "the backend did not run the write transaction".into(),
            }))
        })
    }
}

impl Inner {
    pub(crate) fn load_state(&self, txn: &dyn ReadTxn) -> Result<State> {
        load_state(txn, &self.keys, &self.store_id, &self.location)
    }

    /// Makes every commit so far durable and records it in the rollback
    /// state; nothing is written when there is nothing new.
    fn flush(&self) -> Result<()> {
        let newest = self.last_commit.load(Ordering::SeqCst);
        if newest > self.durable.load(Ordering::SeqCst) {
            self.backend.flush()?;
            self.durable.fetch_max(newest, Ordering::SeqCst);
        }
        self.record_seen(newest)
    }

    fn check_not_rolled_back(&self, generation: u64) -> Result<()> {
        let Some(seen) = &self.seen else {
            return Ok(());
        };
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).seen();
        if generation < seen {
            return Err(SealError::Rollback {
                location: self.location.clone(),
                file: generation,
                seen,
            });
        }
        Ok(())
    }

    fn record_seen(&self, generation: u64) -> Result<()> {
        match &self.seen {
            Some(seen) => seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(generation),
            None => Ok(()),
        }
    }

    /// The keys of namespace `name` (cached: deriving takes a few HKDFs).
    pub(crate) fn ns_keys(&self, name: &str) -> Result<Arc<NsKeys>> {
        validate_namespace(name)?;
        if let Some(k) = self
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(k.clone());
        }
        let root = &self.keys.root;
        let id = &self.store_id;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&self.keys.ns_tag.mac(&[name.as_bytes()])[..TAG_LEN]);
        let ns_key = |label: &[u8]| derive(root, id, &[label, name.as_bytes()]);
        let keys = Arc::new(NsKeys {
            name: name.to_string(),
            tag,
            seal: SealKey::new(&ns_key(b"warden-seal/v1/ns-seal\0")),
            name_seal: SealKey::new(&ns_key(b"warden-seal/v2/ns-key-names\0")),
            prf: Prf::new(&ns_key(b"warden-seal/v2/ns-key-prf\0")),
        });
        self.namespaces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), keys.clone());
        Ok(keys)
    }

    pub(crate) fn namespace_names(&self, txn: &dyn ReadTxn) -> Result<Vec<String>> {
        let mut names = Vec::new();
        txn.scan(
            Table::Namespaces,
            Bound::Unbounded,
            Bound::Unbounded,
            &mut |tag, sealed| {
                names.push(self.open_namespace_name(tag, sealed)?);
                Ok(true)
            },
        )?;
        Ok(names)
    }

    fn open_namespace_name(&self, tag: &[u8], sealed: &[u8]) -> Result<String> {
        let subject = || format!("store {}", self.location);
        let plain = self
            .keys
            .ns_name
            .open(&namespace_aad(&self.store_id, tag), sealed.to_vec())
            .map_err(|_| {
                SealError::integrity(subject(), "a namespace name does not authenticate")
            })?;
        String::from_utf8(plain)
            .map_err(|_| SealError::integrity(subject(), "a namespace name is not UTF-8"))
    }

    /// Whether the namespace of `keys` is registered. Its tag is only 64
    /// bits, so the registered name is checked too: a namespace whose tag
    /// another one already has is refused rather than sharing its records.
    pub(crate) fn is_registered(&self, txn: &dyn ReadTxn, keys: &NsKeys) -> Result<bool> {
        let Some(sealed) = txn.get(Table::Namespaces, &keys.tag)? else {
            return Ok(false);
        };
        let registered = self.open_namespace_name(&keys.tag, &sealed)?;
        if registered != keys.name {
            return Err(SealError::NamespaceCollision {
                name: keys.name.clone(),
                other: registered,
            });
        }
        Ok(true)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A drop cannot report a failure: callers that must know (`warden
        // run`) call `Store::flush` first, which returns it.
        if self.durability == Durability::Eventual {
            let _ = self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::StaticKey;

    /// Two namespace names whose 64-bit tags are equal (forced here: finding
    /// a real pair takes about 2^32 tries): the second is refused, for reads
    /// and for writes, and the first is untouched.
    #[test]
    fn namespaces_with_one_tag_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path().join("s.redb"),
            &StaticKey::new(RootKey::from_bytes([3; 32])),
        )
        .unwrap();
        store.namespace("first").unwrap().set("k", "v").unwrap();
        let first_tag = store.inner.ns_keys("first").unwrap().tag;
        let second = store.inner.ns_keys("second").unwrap();
        let forged = Arc::new(NsKeys {
            name: "second".into(),
            tag: first_tag,
            seal: SealKey::new(&[1; 32]),
            name_seal: SealKey::new(&[2; 32]),
            prf: Prf::new(&[3; 32]),
        });
        assert_ne!(second.tag, first_tag);
        store
            .inner
            .namespaces
            .write()
            .unwrap()
            .insert("second".into(), forged);
        for result in [
            store.namespace("second").map(|_| ()),
            store.existing_namespace("second").map(|_| ()),
        ] {
            let e = result.unwrap_err();
            assert!(
                matches!(&e, SealError::NamespaceCollision { name, other }
                    if name == "second" && other == "first"),
                "{e}"
            );
        }
        let keys = store.inner.ns_keys("second").unwrap();
        let e = store.write(|tx| tx.set_raw(&keys, b"k", b"w")).unwrap_err();
        assert!(matches!(e, SealError::NamespaceCollision { .. }), "{e}");
        assert_eq!(
            store.namespace("first").unwrap().get("k").unwrap().unwrap(),
            b"v"
        );
        store.verify().unwrap();
    }
}
