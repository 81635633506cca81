//! warden's sealed store: a namespaced key-value store whose file can be
//! handed to anyone without giving away or letting them change its contents.
//!
//! Apps get a [`Namespace`] each (get, set, delete, exists, paged listing,
//! batches, atomic increment and compare-and-swap, multi-key transactions);
//! sealed mounts get a POSIX-like filesystem ([`fs::SealedFs`]) stored in
//! one; `warden kv` administers a store and makes encrypted backups.
//!
//! What protects the data (details in `docs/threat-model.md`):
//!
//! * Values are sealed with AEGIS-256 (AEGIS-256X4 from 256 bytes up) under
//!   a per-namespace key derived
//!   (HKDF-SHA-256) from a root key that a [`KeySource`] provides; the AAD
//!   binds namespace, key and version, so a value moved, swapped or replayed
//!   does not open.
//! * Key names are stored as keyed hashes (AES-256-CMAC), namespace names as
//!   tags (HMAC-SHA-256); the names themselves are sealed in tables of their
//!   own, read only for listing and export.
//! * A sealed state record holds a generation (bumped by every write) and a
//!   multiset hash over every namespace, (key, version) and sealed name;
//!   opening checks it, so records deleted, inserted or replayed from an
//!   older file are found.
//! * A state file kept outside the store remembers the last generation seen
//!   and refuses older copies of the file (rollback).
//!
//! Storage is a [`Backend`] that only ever sees ciphertext; the default is
//! one `redb` file ([`backend::redb::RedbBackend`]); several nodes share a
//! store under a prefix of an etcd cluster ([`backend::etcd::EtcdBackend`],
//! opened by [`OpenOptions::open_url`] with an `etcd://` URL).

pub mod backend;
mod backup;
mod crypto;
mod error;
pub mod fs;
mod keys;
mod namespace;
mod record;
mod rollback;
mod store;
mod transaction;

pub use backend::{Backend, Durability, Table};
pub use backup::{BackupSummary, ImportMode};
pub use error::{KeyName, SealError};
pub use keys::{KeyFile, KeySource, Passphrase, RootKey, StaticKey, KEY_LEN};
pub use namespace::{Namespace, NsTransaction, Page, View};
pub use rollback::{
    canonical_path, default_state_file, state_file_beside, state_file_beside_store,
    state_file_beside_url,
};
pub use store::{OpenOptions, Store};
pub use transaction::Transaction;

/// `Result` with [`SealError`].
pub type Result<T, E = SealError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn shared_types_are_send_sync_clone() {
        assert_send_sync::<Store>();
        assert_send_sync::<Namespace>();
        assert_send_sync::<fs::SealedFs>();
    }
}
