//! The last-seen generation, kept outside the store file.
//!
//! A copy of the whole store file is valid ciphertext, so only something
//! kept elsewhere can tell that it is old. That is a small state file (by
//! default next to the store, `<store>.seen`; `warden kv` and `warden run`
//! keep it next to the key file, one per canonical store path) holding the
//! store's id and two slots, each a generation and an HMAC of (store id,
//! generation) under a key derived from the root key.
//!
//! After every durable commit the newer generation is written over the older
//! slot with one `pwrite`, without `fsync` (which would double the cost of a
//! commit); the file is synced when the store is dropped. A torn write or a
//! power cut can therefore lose only the newest slot, and the other still
//! holds an earlier generation: the guard then protects against copies older
//! than that. Because the state is written only after the store commit, it
//! never runs ahead of the store file. A write that fails is reported
//! ([`SealError::StateUpdate`]) rather than leaving the guard silently behind.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::crypto::MacKey;
use crate::error::SealError;
use crate::keys::{fill_random, sync_dir};

const MAGIC: &[u8; 8] = b"WSEEN\0\0\x01";
const ID_LEN: usize = 16;
const SLOT_LEN: usize = 8 + 32;
const HEADER_LEN: usize = MAGIC.len() + ID_LEN;
const FILE_LEN: usize = HEADER_LEN + 2 * SLOT_LEN;
const SLOT_LABEL: &[u8] = b"warden-seal/v1/seen";

/// `<store file>.seen`
pub fn default_state_file(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".seen");
    PathBuf::from(name)
}

/// A rollback state file kept beside a key file, one per store file:
/// `<key file>.<first 8 bytes of SHA-256(canonical store path), hex>.seen`.
/// Restoring an old copy of a store's directory then does not restore its
/// state too (unless the key file lives in that directory as well).
///
/// The path is canonical ([`canonical_path`]) so that one store file has
/// one state however it is named: with a state per spelling, opening an
/// old copy as `dir/../dir/store.redb` or through a symlink would find no
/// state and be trusted as new.
pub fn state_file_beside(key_file: &Path, store: &Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    let canonical = canonical_path(store);
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let mut name = key_file.as_os_str().to_owned();
    name.push(format!(".{}.seen", hex::encode(&digest[..8])));
    PathBuf::from(name)
}

/// The rollback state of a store that is not a file (an `etcd://` target)
/// kept beside a key file: `<key file>.<first 8 bytes of SHA-256(url)>.seen`,
/// where `url` should be canonical (`EtcdTarget::canonical`: sorted
/// endpoints and prefix, no options) so that every spelling of one cluster
/// and prefix shares one state.
pub fn state_file_beside_url(key_file: &Path, url: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(url.as_bytes());
    let mut name = key_file.as_os_str().to_owned();
    name.push(format!(".{}.seen", hex::encode(&digest[..8])));
    PathBuf::from(name)
}

/// The rollback state beside `key_file` of the store `store`, a file path
/// ([`state_file_beside`]) or an `etcd://` URL ([`state_file_beside_url`]
/// of its canonical form).
pub fn state_file_beside_store(key_file: &Path, store: &Path) -> Result<PathBuf, SealError> {
    match store.to_str() {
        Some(url) if warden_etcd::EtcdTarget::is_etcd_url(url) => {
            let target = warden_etcd::EtcdTarget::parse(url)
                .map_err(|e| SealError::InvalidUrl(e.to_string()))?;
            Ok(state_file_beside_url(key_file, &target.canonical()))
        }
        _ => Ok(state_file_beside(key_file, store)),
    }
}

/// `path` made absolute with every symlink, `.` and `..` resolved, as far
/// as it exists: the nearest existing ancestor is canonicalised and the
/// rest (a file not created yet) appended, `..` in it taken lexically.
/// Two spellings of one file, existing or not, give the same path.
pub fn canonical_path(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<Component<'_>> = absolute.components().collect();
    for existing in (1..=parts.len()).rev() {
        let prefix: PathBuf = parts[..existing].iter().collect();
        if let Ok(mut resolved) = fs::canonicalize(&prefix) {
            for part in &parts[existing..] {
                match part {
                    Component::ParentDir => {
                        resolved.pop();
                    }
                    Component::Normal(name) => resolved.push(name),
                    Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                }
            }
            return resolved;
        }
    }
    absolute
}

/// What a state file says about which store it belongs to.
pub(crate) fn peek_store_id(path: &Path) -> Result<Option<[u8; ID_LEN]>, SealError> {
    match fs::read(path) {
        Ok(bytes) => {
            if bytes.len() != FILE_LEN || &bytes[..MAGIC.len()] != MAGIC {
                return Ok(Some([0u8; ID_LEN]));
            }
            let mut id = [0u8; ID_LEN];
            id.copy_from_slice(&bytes[MAGIC.len()..HEADER_LEN]);
            Ok(Some(id))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SealError::io(
            format!("cannot read rollback state {}", path.display()),
            e,
        )),
    }
}

/// An open state file and the generation it last recorded.
pub(crate) struct SeenState {
    path: PathBuf,
    /// The store's location, for errors.
    location: String,
    file: fs::File,
    key: MacKey,
    store_id: [u8; ID_LEN],
    seen: u64,
    /// The slot holding the older (or an invalid) generation: written next.
    next_slot: usize,
}

impl SeenState {
    /// Checks `generation` (the store file's) against the state at `path`
    /// and records it; creates the state if there is none.
    pub(crate) fn check(
        path: &Path,
        store_id: [u8; ID_LEN],
        key: MacKey,
        generation: u64,
        location: &str,
    ) -> Result<SeenState, SealError> {
        let shown = path.display().to_string();
        let mismatch = |detail: &str| SealError::StateMismatch {
            location: location.to_string(),
            state: shown.clone(),
            detail: detail.to_string(),
        };
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Self::create(path, store_id, key, generation, location);
            }
            Err(e) => {
                return Err(SealError::io(
                    format!("cannot read rollback state {shown}"),
                    e,
                ))
            }
        };
        if bytes.len() != FILE_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err(mismatch("the state file is damaged"));
        }
        if bytes[MAGIC.len()..HEADER_LEN] != store_id {
            return Err(mismatch(
                "it belongs to a different store (was the store file replaced or re-created?)",
            ));
        }
        let slots = [0, 1].map(|i| {
            let slot = &bytes[HEADER_LEN + i * SLOT_LEN..HEADER_LEN + (i + 1) * SLOT_LEN];
            let gen_bytes = &slot[..8];
            key.verify(&[SLOT_LABEL, &store_id, gen_bytes], &slot[8..])
                .then(|| u64::from_le_bytes(gen_bytes.try_into().unwrap_or([0; 8])))
        });
        let seen = match slots {
            [None, None] => {
                return Err(mismatch(
                    "the state file is damaged or was sealed with a different key",
                ))
            }
            [a, b] => a.max(b).unwrap_or(0),
        };
        if generation < seen {
            return Err(SealError::Rollback {
                location: location.to_string(),
                file: generation,
                seen,
            });
        }
        let next_slot = match slots {
            [Some(a), Some(b)] if a > b => 1,
            [Some(_), None] => 1,
            _ => 0,
        };
        let file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| SealError::io(format!("cannot open rollback state {shown}"), e))?;
        let mut state = SeenState {
            path: path.to_path_buf(),
            location: location.to_string(),
            file,
            key,
            store_id,
            seen,
            next_slot,
        };
        state.record(generation)?;
        Ok(state)
    }

    /// Writes a fresh state file atomically (temporary file, then rename).
    fn create(
        path: &Path,
        store_id: [u8; ID_LEN],
        key: MacKey,
        generation: u64,
        location: &str,
    ) -> Result<SeenState, SealError> {
        let shown = path.display();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut content = Vec::with_capacity(FILE_LEN);
        content.extend_from_slice(MAGIC);
        content.extend_from_slice(&store_id);
        let slot = slot_bytes(&key, &store_id, generation);
        content.extend_from_slice(&slot);
        content.extend_from_slice(&slot);
        let mut suffix = [0u8; 8];
        fill_random(&mut suffix)?;
        let tmp = dir.join(format!(".warden-seen-{}.tmp", hex::encode(suffix)));
        let written = (|| -> io::Result<()> {
            fs::create_dir_all(&dir)?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&content)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(SealError::io(
                format!("cannot create rollback state {shown}"),
                e,
            ));
        }
        sync_dir(&dir);
        let file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| SealError::io(format!("cannot open rollback state {shown}"), e))?;
        Ok(SeenState {
            path: path.to_path_buf(),
            location: location.to_string(),
            file,
            key,
            store_id,
            seen: generation,
            next_slot: 0,
        })
    }

    /// Records a generation that is now durable in the store file.
    pub(crate) fn record(&mut self, generation: u64) -> Result<(), SealError> {
        if generation <= self.seen {
            return Ok(());
        }
        let slot = slot_bytes(&self.key, &self.store_id, generation);
        let offset = (HEADER_LEN + self.next_slot * SLOT_LEN) as u64;
        self.file
            .write_all_at(&slot, offset)
            .map_err(|source| SealError::StateUpdate {
                location: self.location.clone(),
                state: self.path.display().to_string(),
                source,
            })?;
        self.seen = generation;
        self.next_slot ^= 1;
        Ok(())
    }

    pub(crate) fn seen(&self) -> u64 {
        self.seen
    }

    /// Makes every later update fail, as a full or failing disk would.
    #[cfg(test)]
    pub(crate) fn break_for_test(&mut self) -> io::Result<()> {
        // A read-only descriptor: `pwrite` on it fails with EBADF.
        self.file = fs::File::open(&self.path)?;
        Ok(())
    }
}

impl Drop for SeenState {
    fn drop(&mut self) {
        let _ = self.file.sync_data();
    }
}

fn slot_bytes(key: &MacKey, store_id: &[u8; ID_LEN], generation: u64) -> [u8; SLOT_LEN] {
    let g = generation.to_le_bytes();
    let mac = key.mac(&[SLOT_LABEL, store_id, &g]);
    let mut out = [0u8; SLOT_LEN];
    out[..8].copy_from_slice(&g);
    out[8..].copy_from_slice(&mac);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Durability;
    use crate::keys::{RootKey, StaticKey};
    use crate::store::{OpenOptions, Store};

    fn break_state(store: &Store) {
        store
            .inner
            .seen
            .as_ref()
            .expect("a rollback state")
            .lock()
            .unwrap()
            .break_for_test()
            .unwrap();
    }

    /// A commit whose rollback state cannot be updated is reported: the
    /// guard would otherwise stay at an old generation without anyone
    /// knowing, and accept a copy of the store from before this commit.
    #[test]
    fn a_failed_rollback_state_update_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let key = StaticKey::new(RootKey::from_bytes([5; 32]));
        let path = dir.path().join("s.redb");
        let store = Store::open(&path, &key).unwrap();
        let ns = store.namespace("app").unwrap();
        ns.set("k", "v1").unwrap();
        let seen = store.last_seen_generation();
        break_state(&store);
        let e = ns
            .set("k", "v2")
            .expect_err("the failed update was ignored");
        assert!(
            matches!(&e, SealError::StateUpdate { state, .. } if state.ends_with("s.redb.seen")),
            "{e}"
        );
        assert!(e.to_string().contains("rollback state"), "{e}");
        // The write itself was committed; the guard did not move.
        assert_eq!(ns.get("k").unwrap().unwrap(), b"v2");
        assert_eq!(store.last_seen_generation(), seen);
        drop((ns, store));

        // With eventual durability the update happens at `flush`.
        let store = OpenOptions::new()
            .durability(Durability::Eventual)
            .open(&path, &key)
            .unwrap();
        let ns = store.namespace("app").unwrap();
        ns.set("k", "v3").unwrap();
        break_state(&store);
        let e = store.flush().expect_err("the failed update was ignored");
        assert!(matches!(e, SealError::StateUpdate { .. }), "{e}");
    }

    #[test]
    fn canonical_path_of_files_not_created_yet() {
        let dir = tempfile::tempdir().unwrap();
        let d = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir(d.join("a")).unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("link")).unwrap();
        let want = d.join("a/new/file");
        for spelling in [
            "a/new/file",
            "link/new/file",
            "a/./new/x/../file",
            "link/../a/new/file",
        ] {
            assert_eq!(
                canonical_path(&dir.path().join(spelling)),
                want,
                "{spelling}"
            );
        }
    }
}
