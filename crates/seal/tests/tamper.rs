//! Whoever holds the store file changes it; every change must be detected,
//! at open or at the latest when the changed data is read.

mod common;

use redb::ReadableTable;

use common::{flip_in_file, key, pseudo_random, raw_edit, raw_entries, TempStore};
use warden_seal::{OpenOptions, SealError, Store, Table};

/// Opens the store and reads `ns`/`k`; returns the first error.
fn open_and_read(t: &TempStore, ns: &str, k: &str) -> Result<Option<Vec<u8>>, SealError> {
    let store = t.open_with(&key(1))?;
    store.namespace(ns)?.get(k)
}

fn assert_tamper(result: Result<Option<Vec<u8>>, SealError>, what: &str) -> SealError {
    match result {
        Ok(v) => panic!("{what}: not detected, read {:?}", v.map(|v| v.len())),
        Err(e) => {
            assert!(
                e.is_tamper() || matches!(e, SealError::Storage { .. }),
                "{what}: unexpected error {e}"
            );
            e
        }
    }
}

fn store_with(entries: &[(&str, &str, Vec<u8>)]) -> TempStore {
    let t = TempStore::new();
    let store = t.open();
    for (ns, k, v) in entries {
        store.namespace(ns).unwrap().set(k, v).unwrap();
    }
    t
}

/// Values small enough to be sealed into their record, and large enough to
/// be stored as a separate blob: every case is run with both.
const SIZES: [usize; 2] = [100, 6000];

fn value(seed: u64, size: usize) -> Vec<u8> {
    pseudo_random(seed, size)
}

/// Splits a record into its inline sealed value (empty for a blob) and the
/// rest (the trailer: layout and version), as an attacker who knows the
/// format can.
fn split_record(entry: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let value_len = entry.len() - 9;
    (entry[..value_len].to_vec(), entry[value_len..].to_vec())
}

/// The sealed value stored for the single record of a store, wherever it is.
fn sealed_value(t: &TempStore, index: usize) -> Vec<u8> {
    let records = raw_entries(&t.path, Table::Records);
    let (inline, _) = split_record(&records[index].1);
    if inline.is_empty() {
        raw_entries(&t.path, Table::Blobs)
            .into_iter()
            .find(|(k, _)| *k == records[index].0)
            .expect("blob")
            .1
    } else {
        inline
    }
}

/// Replaces the sealed value of the record under `lookup`, keeping its
/// name and version.
fn put_sealed_value(t: &TempStore, lookup: &[u8], sealed: &[u8]) {
    let records = raw_entries(&t.path, Table::Records);
    let entry = &records.iter().find(|(k, _)| k == lookup).expect("record").1;
    let (inline, rest) = split_record(entry);
    if inline.is_empty() {
        raw_edit(&t.path, Table::Blobs, |tb| {
            tb.insert(lookup, sealed).unwrap();
        });
    } else {
        let new = [sealed, &rest[..]].concat();
        raw_edit(&t.path, Table::Records, |tb| {
            tb.insert(lookup, new.as_slice()).unwrap();
        });
    }
}

/// Puts `entry` (key, value) back into `table`, as it was.
fn put_entry(t: &TempStore, table: Table, entry: &(Vec<u8>, Vec<u8>)) {
    raw_edit(&t.path, table, |tb| {
        tb.insert(entry.0.as_slice(), entry.1.as_slice()).unwrap();
    });
}

/// Swaps the values of entries `a` and `b` of `table`.
fn swap_entries(t: &TempStore, table: Table, a: &(Vec<u8>, Vec<u8>), b: &(Vec<u8>, Vec<u8>)) {
    raw_edit(&t.path, table, |tb| {
        tb.insert(a.0.as_slice(), b.1.as_slice()).unwrap();
        tb.insert(b.0.as_slice(), a.1.as_slice()).unwrap();
    });
}

fn open_err(t: &TempStore, what: &str) -> SealError {
    match t.open_with(&key(1)) {
        Err(e) => e,
        Ok(_) => panic!("{what}: the store opened"),
    }
}

#[test]
fn bit_flip_in_a_value_on_disk() {
    for size in SIZES {
        let t = store_with(&[("app", "k", value(1, size))]);
        let sealed = sealed_value(&t, 0);
        // The ciphertext bytes themselves, found in the raw file and flipped.
        let hits = flip_in_file(&t.path, &sealed[10..60], 20);
        assert!(hits >= 1);
        let e = assert_tamper(open_and_read(&t, "app", "k"), "bit flip in value");
        assert!(
            e.to_string()
                .starts_with("integrity check failed for key \"k\" in namespace \"app\""),
            "{size}: {e}"
        );
    }
}

#[test]
fn bit_flip_in_a_sealed_value() {
    for size in SIZES {
        let t = store_with(&[("app", "k", value(2, size))]);
        let lookup = raw_entries(&t.path, Table::Records)[0].0.clone();
        let mut sealed = sealed_value(&t, 0);
        sealed[0] ^= 0x80;
        put_sealed_value(&t, &lookup, &sealed);
        assert_tamper(open_and_read(&t, "app", "k"), "flipped sealed value");
        // The tag and the nonce are covered too.
        let n = sealed.len();
        sealed[0] ^= 0x80;
        sealed[n - 1] ^= 1;
        put_sealed_value(&t, &lookup, &sealed);
        assert_tamper(open_and_read(&t, "app", "k"), "flipped nonce");
    }
}

#[test]
fn bit_flip_in_a_key_on_disk() {
    for size in SIZES {
        let t = store_with(&[("app", "k", value(3, size))]);
        let lookup = raw_entries(&t.path, Table::Records)[0].0.clone();
        let hits = flip_in_file(&t.path, &lookup, 40);
        assert!(hits >= 1);
        assert_tamper(open_and_read(&t, "app", "k"), "bit flip in key");
    }
}

#[test]
fn bit_flip_in_the_key_of_a_record() {
    for size in SIZES {
        let t = store_with(&[("app", "k", value(4, size))]);
        raw_edit(&t.path, Table::Records, |tb| {
            let (mut k, v) = {
                let (k, v) = tb.first().unwrap().unwrap();
                (k.value().to_vec(), v.value().to_vec())
            };
            tb.remove(k.as_slice()).unwrap();
            k[23] ^= 1;
            tb.insert(k.as_slice(), v.as_slice()).unwrap();
        });
        let e = open_err(&t, "record under a flipped key");
        assert!(matches!(e, SealError::Integrity { .. }), "{e}");
    }
}

#[test]
fn bit_flip_in_the_key_of_a_blob() {
    let t = store_with(&[("app", "k", value(5, 6000))]);
    raw_edit(&t.path, Table::Blobs, |tb| {
        let (mut k, v) = {
            let (k, v) = tb.first().unwrap().unwrap();
            (k.value().to_vec(), v.value().to_vec())
        };
        tb.remove(k.as_slice()).unwrap();
        k[20] ^= 1;
        tb.insert(k.as_slice(), v.as_slice()).unwrap();
    });
    let e = assert_tamper(open_and_read(&t, "app", "k"), "moved blob");
    assert!(e.to_string().contains("missing"), "{e}");
}

#[test]
fn swapped_values() {
    for size in SIZES {
        let t = store_with(&[("app", "x", value(6, size)), ("app", "y", value(7, size))]);
        let records = raw_entries(&t.path, Table::Records);
        let (a, b) = (sealed_value(&t, 0), sealed_value(&t, 1));
        put_sealed_value(&t, &records[0].0, &b);
        put_sealed_value(&t, &records[1].0, &a);
        assert_tamper(open_and_read(&t, "app", "x"), "swapped x");
        assert_tamper(open_and_read(&t, "app", "y"), "swapped y");
    }
}

/// The batched read opens every value too: a swapped value fails the whole
/// batch, wherever it is in it, and the error names the key.
#[test]
fn swapped_values_read_in_a_batch() {
    for size in SIZES {
        let t = store_with(&[
            ("app", "x", value(6, size)),
            ("app", "y", value(7, size)),
            ("app", "z", value(5, size)),
        ]);
        let records = raw_entries(&t.path, Table::Records);
        let (a, b) = (sealed_value(&t, 0), sealed_value(&t, 1));
        put_sealed_value(&t, &records[0].0, &b);
        put_sealed_value(&t, &records[1].0, &a);
        let store = t.open_with(&key(1)).unwrap();
        let ns = store.namespace("app").unwrap();
        // Records are in lookup-key order: find out which two were swapped.
        let bad: Vec<&str> = ["x", "y", "z"]
            .into_iter()
            .filter(|k| ns.get(k).is_err())
            .collect();
        assert_eq!(bad.len(), 2, "{size}");
        let good = ["x", "y", "z"]
            .into_iter()
            .find(|k| !bad.contains(k))
            .unwrap();
        for keys in [
            vec![bad[0]],
            vec![good, bad[1]],
            vec![good, "nope", bad[0], bad[1]],
        ] {
            let first_bad = keys.iter().find(|k| bad.contains(k)).unwrap();
            let e = ns.get_many(&keys).expect_err("swapped values were read");
            assert!(e.is_tamper(), "{size}: {e}");
            assert!(
                e.to_string().starts_with(&format!(
                    "integrity check failed for key \"{first_bad}\" in namespace \"app\""
                )),
                "{size}: {e}"
            );
            // The visiting form stops at the same key, having handed over
            // only the values before it.
            let mut seen = Vec::new();
            let e = ns
                .get_many_with(&keys, |i, v| {
                    seen.push((keys[i], v.map(<[u8]>::to_vec)));
                    Ok::<_, SealError>(())
                })
                .expect_err("swapped values were read");
            assert!(e.is_tamper(), "{size}: {e}");
            assert!(e.to_string().contains(&format!("\"{first_bad}\"")), "{e}");
            let before = keys.iter().position(|k| k == first_bad).unwrap();
            assert_eq!(seen.len(), before, "{size}");
            assert!(seen.iter().all(|(k, _)| !bad.contains(k)));
        }
        let seed = match good {
            "x" => 6,
            "y" => 7,
            _ => 5,
        };
        assert_eq!(ns.get_many(&[good]).unwrap(), [Some(value(seed, size))]);
    }
}

#[test]
fn swapped_records() {
    for size in SIZES {
        // Written in one transaction: same version, so the multiset of
        // (key, version) does not change when whole records are swapped.
        let t = TempStore::new();
        {
            let store = t.open();
            let ns = store.namespace("app").unwrap();
            ns.set_many(&[("x", value(8, size)), ("y", value(9, size))])
                .unwrap();
        }
        let records = raw_entries(&t.path, Table::Records);
        swap_entries(&t, Table::Records, &records[0], &records[1]);
        if size > 4096 {
            let blobs = raw_entries(&t.path, Table::Blobs);
            swap_entries(&t, Table::Blobs, &blobs[0], &blobs[1]);
        }
        assert_tamper(open_and_read(&t, "app", "x"), "swapped record x");
        assert_tamper(open_and_read(&t, "app", "y"), "swapped record y");
    }
}

#[test]
fn value_moved_across_namespaces() {
    for size in SIZES {
        let t = store_with(&[
            ("alice", "k", value(10, size)),
            ("bob", "k", value(11, size)),
        ]);
        // The two records belong to different namespaces (their lookup keys
        // start with different namespace tags).
        let records = raw_entries(&t.path, Table::Records);
        assert_eq!(records.len(), 2);
        assert_ne!(records[0].0[..8], records[1].0[..8]);
        let (a, b) = (sealed_value(&t, 0), sealed_value(&t, 1));
        // Whichever is which, each now holds the other's value.
        put_sealed_value(&t, &records[0].0, &b);
        put_sealed_value(&t, &records[1].0, &a);
        assert_tamper(open_and_read(&t, "alice", "k"), "moved into alice");
        assert_tamper(open_and_read(&t, "bob", "k"), "moved into bob");

        // Moving whole records does not help either.
        swap_entries(&t, Table::Records, &records[0], &records[1]);
        assert!(t.open_with(&key(1)).is_err() || open_and_read(&t, "bob", "k").is_err());
    }
}

#[test]
fn replayed_older_version_of_a_value() {
    for size in SIZES {
        let t = store_with(&[("app", "k", value(12, size))]);
        let old_records = raw_entries(&t.path, Table::Records);
        let old_value = sealed_value(&t, 0);
        {
            let store = t.open();
            store
                .namespace("app")
                .unwrap()
                .set("k", value(13, size))
                .unwrap();
        }
        // The old sealed value under the current record: its AAD names an
        // older version.
        put_sealed_value(&t, &old_records[0].0, &old_value);
        let e = assert_tamper(open_and_read(&t, "app", "k"), "replayed value");
        assert!(matches!(e, SealError::Integrity { .. }));
        // The whole old record: the multiset hash disagrees at open.
        put_entry(&t, Table::Records, &old_records[0]);
        let e = open_err(&t, "replayed record");
        assert!(matches!(e, SealError::Integrity { .. }), "{e}");
    }
}

#[test]
fn deleted_and_inserted_records() {
    let t = store_with(&[("app", "a", b"1".to_vec()), ("app", "b", b"2".to_vec())]);
    let backup = std::fs::read(&t.path).unwrap();
    let index = raw_entries(&t.path, Table::Records);
    raw_edit(&t.path, Table::Records, |tb| {
        tb.remove(index[0].0.as_slice()).unwrap();
    });
    assert!(matches!(
        t.open_with(&key(1)).err(),
        Some(SealError::Integrity { .. })
    ));

    std::fs::write(&t.path, &backup).unwrap();
    raw_edit(&t.path, Table::Records, |tb| {
        let mut k = index[0].0.clone();
        k[20] ^= 4;
        tb.insert(k.as_slice(), index[0].1.as_slice()).unwrap();
    });
    assert!(matches!(
        t.open_with(&key(1)).err(),
        Some(SealError::Integrity { .. })
    ));
}

#[test]
fn tampered_state_record_or_header() {
    let t = store_with(&[("app", "a", b"1".to_vec())]);
    let backup = std::fs::read(&t.path).unwrap();
    raw_edit(&t.path, Table::Meta, |tb| {
        let mut v = tb.get(&b"state"[..]).unwrap().unwrap().value().to_vec();
        v[3] ^= 1;
        tb.insert(&b"state"[..], v.as_slice()).unwrap();
    });
    let e = t.open_with(&key(1)).err().unwrap();
    assert!(matches!(e, SealError::Integrity { .. }), "{e}");

    std::fs::write(&t.path, &backup).unwrap();
    raw_edit(&t.path, Table::Meta, |tb| {
        let mut v = tb.get(&b"header"[..]).unwrap().unwrap().value().to_vec();
        v[40] ^= 1;
        tb.insert(&b"header"[..], v.as_slice()).unwrap();
    });
    let e = t.open_with(&key(1)).err().unwrap();
    assert!(matches!(e, SealError::WrongKey { .. }), "{e}");
}

#[test]
fn truncated_file() {
    let t = TempStore::new();
    {
        let store = t.open();
        let ns = store.namespace("app").unwrap();
        for i in 0..200u64 {
            ns.set(format!("k{i}"), pseudo_random(i, 4096)).unwrap();
        }
    }
    let bytes = std::fs::read(&t.path).unwrap();
    for cut in [bytes.len() / 2, bytes.len() / 10, 4096, 0] {
        std::fs::write(&t.path, &bytes[..cut]).unwrap();
        let result = (|| {
            let store = t.open_with(&key(1))?;
            let ns = store.namespace("app")?;
            for i in 0..200u64 {
                ns.get(format!("k{i}"))?;
            }
            Ok::<_, SealError>(())
        })();
        let e = result
            .err()
            .unwrap_or_else(|| panic!("truncation to {cut} not detected"));
        eprintln!("truncated to {cut} bytes: {e}");
        assert!(
            e.is_tamper() || matches!(e, SealError::Storage { .. }),
            "cut {cut}: {e}"
        );
        // The original file opens again (nothing was changed by the failures).
        std::fs::write(&t.path, &bytes).unwrap();
        t.open();
    }
}

#[test]
fn older_copy_of_the_file_is_refused() {
    let t = TempStore::new();
    {
        let store = t.open();
        store.namespace("app").unwrap().set("k", b"v1").unwrap();
    }
    let old = std::fs::read(&t.path).unwrap();
    let newest;
    {
        let store = t.open();
        let ns = store.namespace("app").unwrap();
        ns.set("k", b"v2").unwrap();
        ns.set("k", b"v3").unwrap();
        newest = store.generation().unwrap();
        assert_eq!(store.last_seen_generation(), Some(newest));
    }
    let current = std::fs::read(&t.path).unwrap();
    std::fs::write(&t.path, &old).unwrap();
    let e = t.open_with(&key(1)).err().expect("rollback accepted");
    match &e {
        SealError::Rollback { file, seen, .. } => {
            assert!(file < seen);
            assert_eq!(*seen, newest);
        }
        other => panic!("expected a rollback error, got {other}"),
    }
    assert!(e
        .to_string()
        .contains("is older than the last seen generation"));
    // The current file still opens.
    std::fs::write(&t.path, &current).unwrap();
    let store = t.open();
    assert_eq!(
        store.namespace("app").unwrap().get("k").unwrap().unwrap(),
        b"v3"
    );
}

#[test]
fn rollback_state_kept_elsewhere() {
    let t = TempStore::new();
    let state = t.file("elsewhere/store.seen");
    let opts = OpenOptions::new().state_file(&state);
    {
        let store = opts.open(&t.path, &key(1)).unwrap();
        store.namespace("app").unwrap().set("k", b"v1").unwrap();
    }
    let old = std::fs::read(&t.path).unwrap();
    {
        let store = opts.open(&t.path, &key(1)).unwrap();
        store.namespace("app").unwrap().set("k", b"v2").unwrap();
    }
    std::fs::write(&t.path, &old).unwrap();
    assert!(matches!(
        opts.open(&t.path, &key(1)).err(),
        Some(SealError::Rollback { .. })
    ));
    assert!(state.exists());
}

#[test]
fn replaced_or_emptied_store_file_is_refused() {
    let t = TempStore::new();
    {
        let store = t.open();
        store.namespace("app").unwrap().set("k", b"v1").unwrap();
    }
    // An empty file would be a fresh store to redb.
    std::fs::write(&t.path, b"").unwrap();
    let e = t.open_with(&key(1)).err().unwrap();
    assert!(matches!(e, SealError::StateMismatch { .. }), "{e}");
    // Another store (same key) put in its place.
    let other = TempStore::new();
    drop(other.open());
    std::fs::copy(&other.path, &t.path).unwrap();
    let e = t.open_with(&key(1)).err().unwrap();
    assert!(matches!(e, SealError::StateMismatch { .. }), "{e}");
}

#[test]
fn tampered_rollback_state_is_refused() {
    let t = store_with(&[("app", "k", b"v".to_vec())]);
    let state = warden_seal::default_state_file(&t.path);
    let mut bytes = std::fs::read(&state).unwrap();
    // Raise both generations without the key: the MACs no longer match.
    bytes[24] ^= 0x40;
    bytes[64] ^= 0x40;
    std::fs::write(&state, &bytes).unwrap();
    let e = Store::open(&t.path, &key(1)).err().unwrap();
    assert!(matches!(e, SealError::StateMismatch { .. }), "{e}");
}

/// Sealed names live in a table of their own, each bound to its lookup key
/// (AAD) and counted in the multiset hash.
#[test]
fn tampered_sealed_names() {
    let t = store_with(&[("app", "x", b"1".to_vec()), ("app", "y", b"2".to_vec())]);
    let backup = std::fs::read(&t.path).unwrap();
    let names = raw_entries(&t.path, Table::Names);
    assert_eq!(names.len(), 2);

    // Swapped: the set of lookup keys is the same, but neither name opens.
    swap_entries(&t, Table::Names, &names[0], &names[1]);
    let store = t.open_with(&key(1)).unwrap();
    let e = store
        .namespace("app")
        .unwrap()
        .list("", None, 10)
        .unwrap_err();
    assert!(matches!(e, SealError::Integrity { .. }), "{e}");
    drop(store);

    // Deleted: found at open.
    std::fs::write(&t.path, &backup).unwrap();
    raw_edit(&t.path, Table::Names, |tb| {
        tb.remove(names[0].0.as_slice()).unwrap();
    });
    let e = open_err(&t, "deleted name");
    assert!(matches!(e, SealError::Integrity { .. }), "{e}");

    // Put back after its key was deleted: found at open too.
    std::fs::write(&t.path, &backup).unwrap();
    {
        let store = t.open();
        let ns = store.namespace("app").unwrap();
        ns.delete("x").unwrap();
        ns.delete("y").unwrap();
    }
    put_entry(&t, Table::Names, &names[0]);
    let e = open_err(&t, "orphaned name");
    assert!(matches!(e, SealError::Integrity { .. }), "{e}");
}

/// A store of another format version is refused with one line that says so.
#[test]
fn other_format_version_is_refused() {
    let t = store_with(&[("app", "k", b"v".to_vec())]);
    raw_edit(&t.path, Table::Meta, |tb| {
        let mut v = tb.get(&b"header"[..]).unwrap().unwrap().value().to_vec();
        v[12..16].copy_from_slice(&2u32.to_le_bytes());
        tb.insert(&b"header"[..], v.as_slice()).unwrap();
    });
    let e = open_err(&t, "format 2 store");
    assert!(
        matches!(
            e,
            SealError::UnsupportedFormat {
                found: 2,
                supported: 3,
                ..
            }
        ),
        "{e}"
    );
    let message = e.to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains("format 2"), "{message}");
}
