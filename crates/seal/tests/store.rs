//! Round trips and the namespace API.

#[macro_use]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::thread;

use common::{contains, key, pseudo_random, TempStore};

on_both_backends!(
    set_get_delete_exists_round_trip,
    data_survives_reopen,
    values_of_16_mib_and_more,
    namespaces_are_separate_and_listed,
    list_with_prefix_and_cursor,
    batches_are_atomic,
    get_many_mixes_inline_blob_and_missing,
    increment_and_compare_and_swap,
    failed_operations_write_nothing,
    multi_key_transactions_across_namespaces,
    wrong_key_is_refused_and_changes_nothing,
    passphrase_keys,
    eventual_durability_and_flush,
    export_and_import,
    bad_backups_change_nothing,
    concurrent_readers_and_writers,
);
use warden_seal::{
    Durability, ImportMode, KeyFile, OpenOptions, Passphrase, SealError, Store, Table,
};

fn set_get_delete_exists_round_trip(t: TempStore) {
    let store = t.open();
    let ns = store.namespace("app").unwrap();
    assert_eq!(ns.get("missing").unwrap(), None);
    assert!(!ns.exists("k").unwrap());
    ns.set("k", b"v1").unwrap();
    assert!(ns.exists("k").unwrap());
    assert_eq!(ns.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    ns.set("k", b"v2").unwrap();
    assert_eq!(ns.get("k").unwrap().as_deref(), Some(&b"v2"[..]));
    ns.set("empty", b"").unwrap();
    assert_eq!(ns.get("empty").unwrap().as_deref(), Some(&b""[..]));
    ns.set([0u8, 255, 7], b"binary key").unwrap();
    assert_eq!(
        ns.get([0u8, 255, 7]).unwrap().as_deref(),
        Some(&b"binary key"[..])
    );
    assert!(ns.delete("k").unwrap());
    assert!(!ns.delete("k").unwrap());
    assert_eq!(ns.get("k").unwrap(), None);
    store.verify().unwrap();
}

fn data_survives_reopen(t: TempStore) {
    {
        let store = t.open();
        let ns = store.namespace("app").unwrap();
        for i in 0..50u32 {
            ns.set(format!("key-{i}"), pseudo_random(u64::from(i), 300))
                .unwrap();
        }
    }
    let store = t.open();
    let ns = store.existing_namespace("app").unwrap();
    for i in 0..50u32 {
        assert_eq!(
            ns.get(format!("key-{i}")).unwrap().unwrap(),
            pseudo_random(u64::from(i), 300)
        );
    }
}

fn values_of_16_mib_and_more(t: TempStore) {
    let big = pseudo_random(9, 16 * 1024 * 1024 + 3);
    {
        let store = t.open();
        let ns = store.namespace("big").unwrap();
        ns.set("blob", &big).unwrap();
        assert_eq!(ns.get("blob").unwrap().unwrap(), big);
    }
    let store = t.open();
    assert_eq!(
        store
            .namespace("big")
            .unwrap()
            .get("blob")
            .unwrap()
            .unwrap(),
        big
    );
}

fn namespaces_are_separate_and_listed(t: TempStore) {
    let store = t.open();
    let a = store.namespace("alpha").unwrap();
    let b = store.namespace("beta").unwrap();
    a.set("k", b"from a").unwrap();
    b.set("k", b"from b").unwrap();
    assert_eq!(a.get("k").unwrap().unwrap(), b"from a");
    assert_eq!(b.get("k").unwrap().unwrap(), b"from b");
    assert_eq!(store.namespaces().unwrap(), vec!["alpha", "beta"]);
    assert!(matches!(
        store.existing_namespace("gamma"),
        Err(SealError::UnknownNamespace(n)) if n == "gamma"
    ));
    assert!(matches!(
        store.namespace(""),
        Err(SealError::InvalidNamespace { .. })
    ));
    assert!(store.delete_namespace("alpha").unwrap());
    assert!(!store.delete_namespace("alpha").unwrap());
    assert_eq!(store.namespaces().unwrap(), vec!["beta"]);
    assert_eq!(a.get("k").unwrap(), None);
    assert_eq!(b.get("k").unwrap().unwrap(), b"from b");
    // A handle kept across the deletion recreates the namespace on write.
    a.set("again", b"1").unwrap();
    assert_eq!(store.namespaces().unwrap(), vec!["alpha", "beta"]);
    store.verify().unwrap();
}

fn list_with_prefix_and_cursor(t: TempStore) {
    let store = t.open();
    let ns = store.namespace("list").unwrap();
    let mut expected = Vec::new();
    for i in 0..57 {
        let k = format!("user/{i:03}");
        ns.set(&k, b"x").unwrap();
        expected.push(k.into_bytes());
    }
    for i in 0..20 {
        ns.set(format!("other/{i}"), b"y").unwrap();
    }
    let mut got = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = ns.list("user/", cursor.as_deref(), 10).unwrap();
        assert!(page.keys.len() <= 10);
        got.extend(page.keys);
        pages += 1;
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 6);
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(ns.all_keys("").unwrap().len(), 77);
    assert_eq!(ns.all_keys("nothing").unwrap().len(), 0);
    let exact = ns.list("user/", None, 57).unwrap();
    assert_eq!((exact.keys.len(), exact.next), (57, None));
    assert!(matches!(
        ns.list("", Some("zz"), 5),
        Err(SealError::InvalidCursor(_))
    ));
}

fn batches_are_atomic(t: TempStore) {
    let store = t.open();
    let ns = store.namespace("batch").unwrap();
    let entries: Vec<(String, Vec<u8>)> = (0..100)
        .map(|i| (format!("k{i}"), pseudo_random(i, 100)))
        .collect();
    let generation = store.generation().unwrap();
    ns.set_many(&entries).unwrap();
    assert_eq!(store.generation().unwrap(), generation + 1);
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    let values = ns.get_many(&keys).unwrap();
    for ((_, v), got) in entries.iter().zip(&values) {
        assert_eq!(got.as_ref(), Some(v));
    }
    assert_eq!(ns.delete_many(&["k1", "k2", "nope"]).unwrap(), 2);
    assert_eq!(ns.get_many(&["k1", "k3"]).unwrap()[0], None);
}

/// A batch mixing values sealed into their record, values kept as blobs,
/// empty values and missing keys comes back in the order asked, duplicates
/// included.
fn get_many_mixes_inline_blob_and_missing(t: TempStore) {
    let store = t.open();
    let ns = store.namespace("mixed").unwrap();
    let entries: Vec<(String, Vec<u8>)> = [0usize, 1, 100, 4096, 4097, 70_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| (format!("k{i}"), pseudo_random(i as u64 + 40, len)))
        .collect();
    ns.set_many(&entries).unwrap();
    let keys = ["k5", "missing", "k0", "k3", "k4", "k3", "k1", "k2", "other"];
    let got = ns.get_many(&keys).unwrap();
    let expected: Vec<Option<Vec<u8>>> = keys
        .iter()
        .map(|k| entries.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        .collect();
    assert_eq!(got, expected);
    assert!(ns.get_many::<&str>(&[]).unwrap().is_empty());
    // The visiting form hands over the same values, each with its index.
    let mut visited = Vec::new();
    ns.get_many_with(&keys, |i, v| {
        visited.push((i, v.map(<[u8]>::to_vec)));
        Ok::<_, SealError>(())
    })
    .unwrap();
    assert_eq!(
        visited,
        expected.into_iter().enumerate().collect::<Vec<_>>()
    );
    // An error from the callback ends the batch and comes back as it is.
    let mut calls = 0;
    let e = ns
        .get_many_with(&keys, |i, _| {
            calls += 1;
            if i == 2 {
                Err(SealError::Key("stop here".into()))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
    assert_eq!(
        (calls, e.to_string().contains("stop here")),
        (3, true),
        "{e}"
    );
    // The same values one by one.
    for (k, v) in &entries {
        assert_eq!(ns.get(k).unwrap().as_ref(), Some(v));
    }
}

fn increment_and_compare_and_swap(t: TempStore) {
    let store = t.open();
    let ns = store.namespace("atomic").unwrap();
    assert_eq!(ns.increment("n", 5).unwrap(), 5);
    assert_eq!(ns.increment("n", -7).unwrap(), -2);
    assert_eq!(ns.get("n").unwrap().unwrap(), b"-2");
    ns.set("text", b"hello").unwrap();
    assert!(matches!(
        ns.increment("text", 1),
        Err(SealError::NotANumber { .. })
    ));
    ns.set("max", i64::MAX.to_string()).unwrap();
    assert!(matches!(
        ns.increment("max", 1),
        Err(SealError::Overflow { .. })
    ));

    assert!(ns.compare_and_swap("c", None, Some(b"1")).unwrap());
    assert!(!ns.compare_and_swap("c", None, Some(b"2")).unwrap());
    assert!(!ns.compare_and_swap("c", Some(b"0"), Some(b"2")).unwrap());
    assert!(ns.compare_and_swap("c", Some(b"1"), Some(b"2")).unwrap());
    assert_eq!(ns.get("c").unwrap().unwrap(), b"2");
    assert!(ns.compare_and_swap("c", Some(b"2"), None).unwrap());
    assert!(!ns.exists("c").unwrap());
}

fn failed_operations_write_nothing(t: TempStore) {
    let store = t.open();
    let ns = store.namespace("noop").unwrap();
    ns.set("a", b"1").unwrap();
    let generation = store.generation().unwrap();
    assert!(!ns.delete("missing").unwrap());
    assert!(!ns.compare_and_swap("a", Some(b"x"), None).unwrap());
    let _ = ns.increment("a-text", 1); // creates it: this one writes
    let generation2 = store.generation().unwrap();
    assert_eq!(generation2, generation + 1);
    let r: Result<(), SealError> = ns.transaction(|tx| {
        tx.set("b", b"2")?;
        Err(SealError::UnknownNamespace("stop".into()))
    });
    assert!(r.is_err());
    assert_eq!(ns.get("b").unwrap(), None);
    assert_eq!(store.generation().unwrap(), generation2);
}

fn multi_key_transactions_across_namespaces(t: TempStore) {
    let store = t.open();
    let accounts = store.namespace("accounts").unwrap();
    let log = store.namespace("log").unwrap();
    accounts.set("alice", b"100").unwrap();
    accounts.set("bob", b"0").unwrap();
    let moved: Result<i64, SealError> = store.transaction(|tx| {
        let parse = |v: Option<Vec<u8>>| -> i64 {
            String::from_utf8(v.unwrap_or_default())
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        };
        let a = parse(tx.get(&accounts, "alice")?);
        let b = parse(tx.get(&accounts, "bob")?);
        tx.set(&accounts, "alice", (a - 30).to_string())?;
        tx.set(&accounts, "bob", (b + 30).to_string())?;
        // Reads inside see the transaction's own writes.
        assert_eq!(tx.get(&accounts, "bob")?.unwrap(), b"30");
        tx.set(&log, "last", b"alice->bob 30")?;
        Ok(30)
    });
    assert_eq!(moved.unwrap(), 30);
    assert_eq!(accounts.get("alice").unwrap().unwrap(), b"70");
    assert_eq!(accounts.get("bob").unwrap().unwrap(), b"30");
    assert!(log.exists("last").unwrap());

    // A namespace of another store is refused.
    let other = t.sibling();
    let other_store = other.open();
    let foreign = other_store.namespace("accounts").unwrap();
    let r: Result<(), SealError> = store.transaction(|tx| {
        tx.set(&foreign, "x", b"y")?;
        Ok(())
    });
    assert!(matches!(r, Err(SealError::ForeignNamespace(_))));
}

#[test]
fn nothing_readable_in_the_file() {
    let t = TempStore::new();
    {
        let store = t.open();
        let ns = store.namespace("secret-app-name").unwrap();
        ns.set("very-secret-key-name", b"very secret value, plain text")
            .unwrap();
    }
    let bytes = std::fs::read(&t.path).unwrap();
    for needle in [
        &b"secret-app-name"[..],
        b"very-secret-key-name",
        b"very secret value",
    ] {
        assert!(!contains(&bytes, needle), "found {needle:?} in the file");
    }
}

fn wrong_key_is_refused_and_changes_nothing(t: TempStore) {
    let generation = {
        let store = t.open();
        store.namespace("app").unwrap().set("k", b"v").unwrap();
        store.generation().unwrap()
    };
    let err = match t.open_with(&key(2)) {
        Err(e) => e,
        Ok(_) => panic!("opened with the wrong key"),
    };
    assert!(matches!(err, SealError::WrongKey { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("wrong sealing key for store {}", t.location())
    );
    let store = t.open();
    assert_eq!(store.generation().unwrap(), generation);
    assert_eq!(
        store.namespace("app").unwrap().get("k").unwrap().unwrap(),
        b"v"
    );
}

#[test]
fn key_file_is_created_private_and_checked() {
    let t = TempStore::new();
    let key_path = t.file("keys/store.key");
    let kf = KeyFile::new(&key_path);
    {
        let store = Store::open(&t.path, &kf).unwrap();
        store.namespace("a").unwrap().set("k", b"v").unwrap();
    }
    let meta = std::fs::metadata(&key_path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let store_mode = std::fs::metadata(&t.path).unwrap().permissions().mode();
    assert_eq!(store_mode & 0o077, 0, "store file mode {store_mode:o}");
    // Same key file opens it again.
    let store = Store::open(&t.path, &kf).unwrap();
    assert_eq!(
        store.namespace("a").unwrap().get("k").unwrap().unwrap(),
        b"v"
    );
    drop(store);

    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Store::open(&t.path, &kf).err().unwrap();
    assert!(
        err.to_string().contains("accessible by group or others"),
        "{err}"
    );

    let short = t.file("short.key");
    std::fs::write(&short, [1u8; 31]).unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = Store::open(&t.path, &KeyFile::new(&short)).err().unwrap();
    assert!(err.to_string().contains("holds 31 bytes"), "{err}");
}

fn passphrase_keys(t: TempStore) {
    {
        let store = t.open_with(&Passphrase::new("correct horse")).unwrap();
        store.namespace("a").unwrap().set("k", b"v").unwrap();
    }
    let err = t.open_with(&Passphrase::new("wrong horse")).err().unwrap();
    assert!(matches!(err, SealError::WrongKey { .. }));
    // A variable nobody sets.
    let var = "WARDEN_SEAL_TEST_PASSPHRASE_XYZ";
    assert!(Passphrase::from_env(var).is_err());
    let store = t.open_with(&Passphrase::new("correct horse")).unwrap();
    assert_eq!(
        store.namespace("a").unwrap().get("k").unwrap().unwrap(),
        b"v"
    );
}

#[test]
fn missing_store_is_not_created_when_not_asked() {
    let t = TempStore::new();
    let err = OpenOptions::new()
        .create(false)
        .open(&t.path, &key(1))
        .err()
        .unwrap();
    assert!(matches!(err, SealError::NoStore { .. }));
    assert!(!t.path.exists());
}

#[test]
fn a_foreign_redb_file_is_not_a_store() {
    let t = TempStore::new();
    common::raw_edit(&t.path, Table::Blobs, |tb| {
        tb.insert(&b"x"[..], &b"y"[..]).unwrap();
    });
    let err = t.open_with(&key(1)).err().unwrap();
    assert!(matches!(err, SealError::NotAStore { .. }), "{err}");
}

#[test]
fn a_second_open_is_refused_while_open() {
    let t = TempStore::new();
    let _store = t.open();
    let err = t.open_with(&key(1)).err().unwrap();
    assert!(matches!(err, SealError::Locked { .. }), "{err}");
}

fn eventual_durability_and_flush(t: TempStore) {
    {
        let store = t
            .open_options(OpenOptions::new().durability(Durability::Eventual), &key(1))
            .unwrap();
        let ns = store.namespace("e").unwrap();
        for i in 0..20 {
            ns.set(format!("{i}"), b"v").unwrap();
        }
        store.flush().unwrap();
        assert_eq!(
            store.last_seen_generation(),
            Some(store.generation().unwrap())
        );
    }
    let store = t.open();
    assert_eq!(
        store.namespace("e").unwrap().all_keys("").unwrap().len(),
        20
    );
}

fn export_and_import(src: TempStore) {
    let backup = src.file("backup.wsb");
    {
        let store = src.open();
        let a = store.namespace("a").unwrap();
        let b = store.namespace("b").unwrap();
        for i in 0..30u64 {
            a.set(format!("account-name-{i}"), pseudo_random(i, 1000))
                .unwrap();
        }
        b.set("big", pseudo_random(99, 3 * 1024 * 1024)).unwrap();
        store.namespace("empty").unwrap();
        let summary = store.export(&backup).unwrap();
        assert_eq!((summary.namespaces, summary.entries), (3, 31));
    }
    let bytes = std::fs::read(&backup).unwrap();
    assert!(!contains(&bytes, b"account-name-17"));

    let dst = src.sibling();
    let store = dst.open();
    let keep = store.namespace("keep").unwrap();
    keep.set("x", b"y").unwrap();
    let summary = store.import(&backup, &key(1), ImportMode::Merge).unwrap();
    assert_eq!((summary.namespaces, summary.entries), (3, 31));
    assert_eq!(store.namespaces().unwrap(), vec!["a", "b", "empty", "keep"]);
    let a = store.namespace("a").unwrap();
    assert_eq!(
        a.get("account-name-17").unwrap().unwrap(),
        pseudo_random(17, 1000)
    );
    assert_eq!(
        store.namespace("b").unwrap().get("big").unwrap().unwrap(),
        pseudo_random(99, 3 * 1024 * 1024)
    );
    store.import(&backup, &key(1), ImportMode::Replace).unwrap();
    assert_eq!(store.namespaces().unwrap(), vec!["a", "b", "empty"]);
    store.verify().unwrap();
}

fn bad_backups_change_nothing(src: TempStore) {
    let backup = src.file("backup.wsb");
    {
        let store = src.open();
        let a = store.namespace("a").unwrap();
        for i in 0..10u64 {
            a.set(format!("k{i}"), pseudo_random(i, 200)).unwrap();
        }
        store.export(&backup).unwrap();
    }
    let good = std::fs::read(&backup).unwrap();
    let dst = src.sibling();
    let store = dst.open();
    store.namespace("mine").unwrap().set("x", b"1").unwrap();
    let generation = store.generation().unwrap();

    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("bit flip", {
            let mut b = good.clone();
            let i = b.len() / 2;
            b[i] ^= 1;
            b
        }),
        ("truncated", good[..good.len() - 40].to_vec()),
        ("cut at a frame", good[..good.len() - 1].to_vec()),
        ("not a backup", b"hello".to_vec()),
        ("extra bytes", [good.clone(), vec![0, 0, 0, 0]].concat()),
    ];
    for (what, bytes) in variants {
        let p = dst.file("bad.wsb");
        std::fs::write(&p, &bytes).unwrap();
        let err = store.import(&p, &key(1), ImportMode::Replace).err();
        assert!(err.is_some(), "{what}: import succeeded");
        assert_eq!(store.generation().unwrap(), generation, "{what}");
        assert_eq!(store.namespaces().unwrap(), vec!["mine"], "{what}");
    }
    // A backup of the previous format (AES-256-GCM) says so.
    let p = dst.file("old.wsb");
    std::fs::write(&p, [b"WSEALBK1".as_slice(), &good[8..]].concat()).unwrap();
    let err = store
        .import(&p, &key(1), ImportMode::Replace)
        .err()
        .unwrap();
    let message = err.to_string();
    assert!(message.contains("backup of format 1"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert_eq!(store.generation().unwrap(), generation);

    let err = store
        .import(&backup, &key(7), ImportMode::Merge)
        .err()
        .unwrap();
    assert!(matches!(err, SealError::WrongBackupKey { .. }), "{err}");
    assert_eq!(store.generation().unwrap(), generation);
}

fn concurrent_readers_and_writers(t: TempStore) {
    let store = t.open();
    let shared = store.namespace("shared").unwrap();
    shared.set("counter", b"0").unwrap();
    let writers = 4;
    let per_writer = 60;
    let mut threads = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        threads.push(thread::spawn(move || {
            let ns = store.namespace(&format!("writer-{w}")).unwrap();
            let shared = store.namespace("shared").unwrap();
            for i in 0..per_writer {
                ns.set(format!("k{i}"), format!("{w}:{i}")).unwrap();
                shared.increment("counter", 1).unwrap();
            }
        }));
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..2 {
        let store = store.clone();
        let stop = stop.clone();
        readers.push(thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for w in 0..writers {
                    let Ok(ns) = store.existing_namespace(&format!("writer-{w}")) else {
                        continue;
                    };
                    for i in (r..per_writer).step_by(7) {
                        if let Some(v) = ns.get(format!("k{i}")).unwrap() {
                            assert_eq!(v, format!("{w}:{i}").into_bytes());
                        }
                        reads += 1;
                    }
                    ns.list("k", None, 10).unwrap();
                }
            }
            reads
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(
        shared.get("counter").unwrap().unwrap(),
        (writers * per_writer).to_string().into_bytes()
    );
    for w in 0..writers {
        let ns = store.namespace(&format!("writer-{w}")).unwrap();
        assert_eq!(ns.all_keys("").unwrap().len(), per_writer);
    }
    store.verify().unwrap();
}
