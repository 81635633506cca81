//! The rollback state kept beside the key file: one per store file, however
//! the store's path is spelled.

mod common;

use common::key;
use std::path::Path;
use warden_seal::{state_file_beside, OpenOptions, SealError};

/// `dir/real/store.redb` reached as written, through `.`, through `..` and
/// through a symlink to its directory: one store file, so one state.
#[test]
fn one_store_under_several_spellings_has_one_rollback_state() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("real/sub")).unwrap();
    std::fs::create_dir_all(d.join("keys")).unwrap();
    std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
    let key_file = d.join("keys/store.key");
    let plain = d.join("real/store.redb");
    let spellings = [
        d.join("real/./store.redb"),
        d.join("real/sub/../store.redb"),
        d.join("link/store.redb"),
    ];
    // Before the store exists, and after.
    for created in [false, true] {
        if created {
            drop(OpenOptions::new().open(&plain, &key(1)).unwrap());
        }
        let state = state_file_beside(&key_file, &plain);
        for other in &spellings {
            assert_eq!(state_file_beside(&key_file, other), state, "{other:?}");
        }
    }

    let open = |store: &Path| {
        OpenOptions::new()
            .state_file(state_file_beside(&key_file, store))
            .open(store, &key(1))
    };
    {
        let store = open(&plain).unwrap();
        store.namespace("app").unwrap().set("k", b"v1").unwrap();
    }
    let old = std::fs::read(&plain).unwrap();
    {
        let store = open(&plain).unwrap();
        store.namespace("app").unwrap().set("k", b"v2").unwrap();
    }
    std::fs::write(&plain, &old).unwrap();
    for other in &spellings {
        let e = open(other).err().expect("an older copy was accepted");
        assert!(matches!(e, SealError::Rollback { .. }), "{other:?}: {e}");
    }
}
