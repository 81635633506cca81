//! `wasi:keyvalue`, both drafts, called by a real wasm32-wasip2 component
//! (`tests/guests/rust/src/bin/kv.rs`) on a real sealed store in a temporary
//! directory: what the guest prints, and what the store holds afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use warden_keyvalue::{KeyValueCtx, KeyValueCtxView, KeyValueView};
use warden_seal::{RootKey, StaticKey, Store};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store as WasmStore};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// `tests/guests/rust/src/bin/kv.rs` built for wasm32-wasip2, as
/// `crates/components/tests/support` and `crates/warden/tests/support`
/// build the test guests (same crate, same target directory).
fn kv_component() -> &'static Component {
    static COMPONENT: OnceLock<Component> = OnceLock::new();
    COMPONENT.get_or_init(|| {
        let guests = target_dir().join("guests");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
            .arg("--manifest-path")
            .arg(workspace_root().join("tests/guests/rust/Cargo.toml"))
            .arg("--target-dir")
            .arg(&guests)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .expect("cannot run cargo to build the test guests");
        assert!(
            out.status.success(),
            "building the Rust test guests for wasm32-wasip2 failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = guests.join("wasm32-wasip2/release/kv.wasm");
        Component::from_file(engine(), &path)
            .unwrap_or_else(|e| panic!("compiling {}: {e:?}", path.display()))
    })
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).expect("engine")
    })
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    kv: KeyValueCtx,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl KeyValueView for State {
    fn keyvalue(&mut self) -> KeyValueCtxView<'_> {
        KeyValueCtxView {
            ctx: &mut self.kv,
            table: &mut self.table,
        }
    }
}

/// WASI 0.2 from wasmtime-wasi, and both drafts of `wasi:keyvalue`.
fn linker() -> &'static Linker<State> {
    static LINKER: OnceLock<Linker<State>> = OnceLock::new();
    LINKER.get_or_init(|| {
        let mut linker = Linker::new(engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
        warden_keyvalue::add_to_linker(&mut linker).expect("keyvalue");
        linker
    })
}

fn key() -> StaticKey {
    StaticKey::new(RootKey::from_bytes([7; 32]))
}

fn open_store(path: &Path) -> Store {
    Store::open(path, &key()).expect("open sealed store")
}

/// One app of a host: its store, name, labels and ops counter.
struct App<'a> {
    store: &'a Store,
    name: &'a str,
    labels: &'a [&'a str],
    ops: Arc<AtomicU64>,
    page_size: usize,
}

impl<'a> App<'a> {
    fn new(store: &'a Store, name: &'a str, labels: &'a [&'a str]) -> Self {
        App {
            store,
            name,
            labels,
            ops: Arc::default(),
            page_size: warden_keyvalue::DEFAULT_PAGE_SIZE,
        }
    }

    fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// Runs `kv VERSION LABEL COMMANDS...`; returns stdout (exit 0 asserted).
    fn kv(&self, version: &str, label: &str, commands: &[&str]) -> String {
        let labels: Arc<[String]> = self.labels.iter().map(|l| l.to_string()).collect();
        let kv = KeyValueCtx::new(self.store.clone(), self.name, labels, self.ops.clone())
            .page_size(self.page_size);
        let mut argv = vec!["kv", version, label];
        argv.extend_from_slice(commands);
        let stdout = MemoryOutputPipe::new(1 << 20);
        let stderr = MemoryOutputPipe::new(1 << 20);
        let wasi = WasiCtx::builder()
            .args(&argv)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        let state = State {
            wasi,
            table: ResourceTable::new(),
            kv,
        };
        let mut store = WasmStore::new(engine(), state);
        let command = wasmtime_wasi::p2::bindings::sync::Command::instantiate(
            &mut store,
            kv_component(),
            linker(),
        )
        .expect("instantiate kv");
        let result = command.wasi_cli_run().call_run(&mut store);
        drop(store);
        let out = String::from_utf8_lossy(&stdout.contents()).into_owned();
        let err = String::from_utf8_lossy(&stderr.contents()).into_owned();
        let code = match result {
            Ok(Ok(())) => 0,
            Ok(Err(())) => 1,
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(code)) => *code,
                None => panic!("kv trapped: {e:?}\n--- stdout\n{out}--- stderr\n{err}"),
            },
        };
        assert_eq!(code, 0, "kv {argv:?}\n--- stdout\n{out}--- stderr\n{err}");
        out
    }
}

fn lines(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

#[track_caller]
fn same(out: &str, expected: &str) {
    assert_eq!(out, lines(expected), "\n--- got\n{out}");
}

const STORE_SCRIPT: &[&str] = &[
    "get k1",
    "exists k1",
    "set k1 one",
    "get k1",
    "exists k1",
    "set k1 uno",
    "get k1",
    "set k2 two",
    "set k3 three",
    "set k4 four",
    "set k5 five",
    "list",
    "delete k2",
    "delete k2",
    "exists k2",
    "get k2",
    "list",
];

const STORE_TRANSCRIPT: &str = r#"
    open: ok
    get k1: ok none
    exists k1: ok false
    set k1 one: ok
    get k1: ok "one"
    exists k1: ok true
    set k1 uno: ok
    get k1: ok "uno"
    set k2 two: ok
    set k3 three: ok
    set k4 four: ok
    set k5 five: ok
    list: ok ["k1", "k2", "k3", "k4", "k5"] pages=3
    delete k2: ok
    delete k2: ok
    exists k2: ok false
    get k2: ok none
    list: ok ["k1", "k3", "k4", "k5"] pages=2
"#;

/// set, get, exists, delete and paged listing (two keys a page), the same
/// in both versions; each call counts one operation.
#[test]
fn store_operations_in_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("kv.redb"));
    for (version, label) in [("draft", "one"), ("draft2", "two")] {
        let mut app = App::new(&store, "app", &["one", "two"]);
        app.page_size = 2;
        let out = app.kv(version, label, STORE_SCRIPT);
        same(&out, STORE_TRANSCRIPT);
        // open, 15 single-key calls, and 3 + 2 pages.
        assert_eq!(app.ops(), 1 + 15 + 5, "{version}");
        // What the guest left is in the namespace "app/LABEL".
        let ns = store.existing_namespace(&format!("app/{label}")).unwrap();
        assert_eq!(ns.get("k1").unwrap().as_deref(), Some(&b"uno"[..]));
        assert_eq!(ns.all_keys("").unwrap().len(), 4);
    }
}

/// Counters give exact results; results outside a version's range are
/// `other` errors that change nothing.
#[test]
fn increments_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("kv.redb"));
    let app = App::new(&store, "app", &["default"]);
    let out = app.kv(
        "draft",
        "default",
        &[
            "incr c 5",
            "incr c 37",
            "incr c 0",
            "get c",
            "incr c 9223372036854775765",
            "incr c 9223372036854775766",
            "incr c 18446744073709551615",
            "get c",
            "set text hello",
            "incr text 1",
        ],
    );
    same(
        &out,
        r#"
        open: ok
        incr c 5: ok 5
        incr c 37: ok 42
        incr c 0: ok 42
        get c: ok "42"
        incr c 9223372036854775765: ok 9223372036854775807
        incr c 9223372036854775766: err other(increment of "c": 9223372036854775807 + 9223372036854775766 overflows a 64-bit counter)
        incr c 18446744073709551615: err other(increment of "c": delta 18446744073709551615 is larger than 9223372036854775807)
        get c: ok "9223372036854775807"
        set text hello: ok
        incr text 1: err other(increment of "text": the value is not an integer)
        "#,
    );
    let out = app.kv(
        "draft2",
        "default",
        &[
            "incr d -7",
            "incr d 10",
            "get d",
            "incr c 1",
            "incr d -9223372036854775808",
            "incr d -3",
            "incr d -9223372036854775808",
            "get d",
        ],
    );
    same(
        &out,
        r#"
        open: ok
        incr d -7: ok -7
        incr d 10: ok 3
        get d: ok "3"
        incr c 1: err other(incrementing key "c" in namespace "app/default" by 1 overflows a 64-bit integer)
        incr d -9223372036854775808: ok -9223372036854775805
        incr d -3: ok -9223372036854775808
        incr d -9223372036854775808: err other(incrementing key "d" in namespace "app/default" by -9223372036854775808 overflows a 64-bit integer)
        get d: ok "-9223372036854775808"
        "#,
    );
    // draft2 left a negative counter: the draft's unsigned counters refuse it.
    let out = app.kv("draft", "default", &["incr d 1", "get d"]);
    same(
        &out,
        r#"
        open: ok
        incr d 1: err other(increment of "d": the result -9223372036854775807 is negative)
        get d: ok "-9223372036854775808"
        "#,
    );
}

/// draft2 compare-and-swap: a swap through a fresh handle succeeds; one
/// whose value changed fails with a handle on the value now there, and the
/// swap through that one succeeds.
#[test]
fn cas_success_and_failure() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("kv.redb"));
    let app = App::new(&store, "app", &["default"]);
    let out = app.kv(
        "draft2",
        "default",
        &[
            "cas fresh first",
            "get fresh",
            "cas fresh second",
            "get fresh",
            "set k v0",
            "cas-race k v1 v2",
            "get k",
            "cas-race new v1 v2",
            "get new",
        ],
    );
    same(
        &out,
        r#"
        open: ok
        cas fresh first: ok swapped
        get fresh: ok "first"
        cas fresh second: ok swapped
        get fresh: ok "second"
        set k v0: ok
        cas-race k v1 v2: ok before="v0" cas-failed now="v1" retry=swapped
        get k: ok "v2"
        cas-race new v1 v2: ok before=none cas-failed now="v1" retry=swapped
        get new: ok "v2"
        "#,
    );
}

/// get-many, set-many and delete-many in both versions.
#[test]
fn batch_operations_in_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("kv.redb"));
    let app = App::new(&store, "app", &["default"]);
    let out = app.kv(
        "draft",
        "default",
        &[
            "set-many a=1 b=2 c=3",
            "get-many a missing c",
            "delete-many a missing",
            "get-many a b c",
            "list",
        ],
    );
    same(
        &out,
        r#"
        open: ok
        set-many a=1 b=2 c=3: ok
        get-many a missing c: ok a="1" none c="3"
        delete-many a missing: ok
        get-many a b c: ok none b="2" c="3"
        list: ok ["b", "c"] pages=1
        "#,
    );
    let out = app.kv(
        "draft2",
        "default",
        &[
            "get-many a b c",
            "set-many a=x d=y",
            "delete-many b c",
            "get-many a b c d",
        ],
    );
    same(
        &out,
        r#"
        open: ok
        get-many a b c: ok a=none b="2" c="3"
        set-many a=x d=y: ok
        delete-many b c: ok
        get-many a b c d: ok a="x" b=none c=none d="y"
        "#,
    );
    let ns = store.existing_namespace("app/default").unwrap();
    assert_eq!(ns.all_keys("").unwrap(), [b"a".to_vec(), b"d".to_vec()]);
}

/// A label that is not granted (or has a `/`, even if listed) is
/// `access-denied`, in both versions, and creates no namespace.
#[test]
fn a_label_not_granted_is_access_denied() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("kv.redb"));
    let app = App::new(&store, "app", &["default", "x/y", ""]);
    for version in ["draft", "draft2"] {
        for label in ["other", "x/y", "x", "../default", "default/"] {
            let out = app.kv(version, label, &["get k"]);
            same(&out, "open: err access-denied");
        }
        same(&app.kv(version, "default", &[]), "open: ok");
    }
    assert_eq!(store.namespaces().unwrap(), ["app/default"]);
    // 5 refused opens and 1 granted, twice.
    assert_eq!(app.ops(), 12);
}

/// Apps `a` and `b` both open `default`: neither sees the other's keys.
#[test]
fn two_apps_cannot_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("kv.redb"));
    let a = App::new(&store, "a", &["default"]);
    let b = App::new(&store, "b", &["default"]);
    a.kv("draft", "default", &["set shared from-a", "set only-a 1"]);
    b.kv("draft2", "default", &["set shared from-b"]);
    same(
        &a.kv(
            "draft2",
            "default",
            &["get shared", "exists only-a", "list"],
        ),
        r#"
        open: ok
        get shared: ok "from-a"
        exists only-a: ok true
        list: ok ["only-a", "shared"] pages=1
        "#,
    );
    same(
        &b.kv("draft", "default", &["get shared", "get only-a", "list"]),
        r#"
        open: ok
        get shared: ok "from-b"
        get only-a: ok none
        list: ok ["shared"] pages=1
        "#,
    );
    let mut namespaces = store.namespaces().unwrap();
    namespaces.sort();
    assert_eq!(namespaces, ["a/default", "b/default"]);
}

/// What one version wrote the other reads after the store is closed and
/// opened again; the file holds neither the value nor the key in plaintext.
#[test]
fn values_survive_reopening_and_are_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    let secret = "plaintext-value-8d1f0c";
    let key = "plaintext-key-77aa";
    {
        let store = open_store(&path);
        let app = App::new(&store, "app", &["default"]);
        app.kv("draft", "default", &[&format!("set {key} {secret}")]);
        app.kv("draft2", "default", &["set-many other=also-secret-3c1e"]);
    }
    let bytes = std::fs::read(&path).unwrap();
    for plain in [secret, key, "also-secret-3c1e"] {
        assert!(
            !bytes.windows(plain.len()).any(|w| w == plain.as_bytes()),
            "{plain:?} is in the store file"
        );
    }
    let store = open_store(&path);
    let app = App::new(&store, "app", &["default"]);
    same(
        &app.kv("draft2", "default", &[&format!("get {key}"), "get other"]),
        &format!(
            r#"
            open: ok
            get {key}: ok "{secret}"
            get other: ok "also-secret-3c1e"
            "#
        ),
    );
    same(
        &app.kv("draft", "default", &["get other"]),
        r#"
        open: ok
        get other: ok "also-secret-3c1e"
        "#,
    );
}
