//! The shared bucket logic and the host functions called from Rust, on a
//! real sealed store: paging with small pages in both cursor styles, what
//! a stale or foreign cursor gives, and handles that do not exist.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use warden_keyvalue::{draft, draft2, Error, KeyValueCtx, KeyValueCtxView};
use warden_seal::{RootKey, StaticKey, Store};
use wasmtime::component::{Resource, ResourceTable};

fn open_store(path: &Path) -> Store {
    Store::open(path, &StaticKey::new(RootKey::from_bytes([9; 32]))).expect("open sealed store")
}

fn ctx(store: &Store, page_size: usize) -> (KeyValueCtx, Arc<AtomicU64>) {
    let ops = Arc::new(AtomicU64::new(0));
    let labels: Arc<[String]> = Arc::from(vec!["default".to_string()]);
    let ctx = KeyValueCtx::new(store.clone(), "app", labels, ops.clone()).page_size(page_size);
    (ctx, ops)
}

fn seven_keys() -> BTreeSet<String> {
    (1..=7).map(|i| format!("key{i}")).collect()
}

/// draft: numeric cursors are offsets. Page after page gives every key
/// once; an offset from elsewhere (a new bucket) gives the same page; an
/// offset at or past the end gives an empty last page.
#[test]
fn draft_offsets_page_through_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("kv.redb"));
    let (ctx, _) = ctx(&store, 3);
    let mut bucket = ctx.open("default").unwrap();
    for k in seven_keys() {
        bucket.set(&k, b"v").unwrap();
    }
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = bucket.list_keys_at(cursor).unwrap();
        pages.push((cursor, page.keys.clone(), page.cursor));
        seen.extend(page.keys);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        pages
            .iter()
            .map(|p| (p.0, p.1.len(), p.2))
            .collect::<Vec<_>>(),
        [
            (None, 3, Some(3)),
            (Some(3), 3, Some(6)),
            (Some(6), 1, None)
        ]
    );
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), seven_keys());

    // A bucket that has listed nothing walks to the offset: same pages.
    for (offset, keys, next) in &pages {
        let mut fresh = ctx.open("default").unwrap();
        let page = fresh.list_keys_at(*offset).unwrap();
        assert_eq!(
            (&page.keys, page.cursor),
            (keys, *next),
            "offset {offset:?}"
        );
    }
    // `Some(0)` is the start, like `None`.
    assert_eq!(bucket.list_keys_at(Some(0)).unwrap().keys, pages[0].1);
    for offset in [7, 8, u64::MAX] {
        let page = bucket.list_keys_at(Some(offset)).unwrap();
        assert!(
            page.keys.is_empty() && page.cursor.is_none(),
            "offset {offset}"
        );
    }
}

/// draft2: the seal's cursor, as it is; a cursor that is not one is an
/// `other` error, not a panic.
#[test]
fn draft2_cursors_page_through_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("kv.redb"));
    let (ctx, _) = ctx(&store, 2);
    let bucket = ctx.open("default").unwrap();
    let entries: Vec<(String, Vec<u8>)> = seven_keys()
        .into_iter()
        .map(|k| (k, b"v".to_vec()))
        .collect();
    bucket.set_many(&entries).unwrap();
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = bucket.list_keys(cursor.as_deref()).unwrap();
        pages += 1;
        assert!(page.keys.len() <= 2);
        for k in page.keys {
            assert!(seen.insert(k), "a key listed twice");
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, seven_keys());
    match bucket.list_keys(Some("not-a-cursor")) {
        Err(e @ Error::Seal(_)) => assert!(e.to_string().contains("not-a-cursor"), "{e}"),
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("a bad cursor was accepted"),
    }
}

/// The host functions as the bindings call them: a WIT error for a label
/// not granted, a trap (an `Err` from the host function, not a panic) for a
/// handle that is not in the table, and one operation counted per call.
#[test]
fn host_functions_count_calls_and_trap_on_bad_handles() {
    use d1::{Host as _, HostBucket as _};
    use draft::bindings::wasi::keyvalue::store as d1;
    use draft2::bindings::wasi::keyvalue::{atomics as a2, store as d2};

    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("kv.redb"));
    let (mut ctx, ops) = ctx(&store, 1000);
    let mut table = ResourceTable::new();
    let mut view = KeyValueCtxView {
        ctx: &mut ctx,
        table: &mut table,
    };
    assert!(matches!(
        view.open("secret".into()).unwrap(),
        Err(d1::Error::AccessDenied)
    ));
    let bucket = view.open("default".into()).unwrap().unwrap();
    let rep = bucket.rep();
    view.set(Resource::new_borrow(rep), "k".into(), b"v".to_vec())
        .unwrap()
        .unwrap();
    assert_eq!(
        view.get(Resource::new_borrow(rep), "k".into())
            .unwrap()
            .unwrap(),
        Some(b"v".to_vec())
    );
    assert_eq!(ops.load(Ordering::Relaxed), 4);

    // draft2's bucket methods on the same table; a cas on a bucket handle
    // that was never made traps.
    let got = <KeyValueCtxView<'_> as d2::HostBucket>::get(
        &mut view,
        Resource::new_borrow(rep),
        "k".into(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(got, Some(b"v".to_vec()));
    assert!(<KeyValueCtxView<'_> as a2::HostCas>::new(
        &mut view,
        Resource::new_borrow(rep + 100),
        "k".into()
    )
    .is_err());

    d1::HostBucket::drop(&mut view, bucket).unwrap();
    assert!(view.get(Resource::new_borrow(rep), "k".into()).is_err());
}
