//! Runs `wasi:cli/command` components (built from `tests/guests/rust` for
//! wasm32-wasip2, or WASI 0.3 ones from the official test suite) with
//! wasmtime-wasi for everything except `wasi:filesystem`, which comes from
//! `warden_components::fs` over the given preopens; and the mounts a test
//! gives them (host, virtual, sealed), opened the way the kernel opens
//! them from a policy.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use warden_components::fs::{VfsCtx, VfsView};
use warden_kernel::vfs::host::HostDir;
use warden_kernel::vfs::sealed::SealedDir;
use warden_kernel::vfs::virt::{self, VDir};
use warden_kernel::vfs::Node;
use warden_seal::fs::SealedFs;
use warden_seal::{RootKey, StaticKey, Store};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store as WasmStore};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
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

/// `tests/guests/rust/src/bin/NAME.rs` built for wasm32-wasip2 (once per
/// test process), as `crates/warden/tests/support` builds them.
pub fn rust_component(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
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
        guests.join("wasm32-wasip2/release")
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.is_file(), "no Rust component {}", path.display());
    path
}

/// The store's data: wasmtime-wasi's context and table, and ours.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    vfs: VfsCtx,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl VfsView for State {
    fn vfs(&mut self) -> &mut VfsCtx {
        &mut self.vfs
    }
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).expect("engine")
    })
}

/// WASI 0.2 as `warden run` links it: wasmtime-wasi without
/// `wasi:filesystem`, plus warden's.
fn linker() -> &'static Linker<State> {
    static LINKER: OnceLock<Linker<State>> = OnceLock::new();
    LINKER.get_or_init(|| {
        let mut linker = Linker::<State>::new(engine());
        warden_components::linker::add_wasi_p2(&mut linker).unwrap();
        linker
    })
}

/// The official WASI test suite's WASI 0.3 component `NAME`.
pub fn suite_component(name: &str) -> PathBuf {
    let path = workspace_root().join(format!(
        "../shared/wasi-testsuite/tests/rust/testsuite/wasm32-wasip3/{name}.wasm"
    ));
    assert!(
        path.is_file(),
        "the WASI test suite is missing: no {}",
        path.display()
    );
    path
}

/// The engine and linker for WASI 0.3 components: both versions, as
/// `warden run` links them.
fn p3_linker() -> &'static Linker<State> {
    static LINKER: OnceLock<Linker<State>> = OnceLock::new();
    LINKER.get_or_init(|| {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.wasm_component_model_async(true);
        let engine = Engine::new(&config).expect("engine");
        let mut linker = Linker::<State>::new(&engine);
        warden_components::linker::add_wasi_p2(&mut linker).unwrap();
        warden_components::linker::add_wasi_p3(&mut linker).unwrap();
        linker
    })
}

/// A guest compiled once per test process.
fn component(name: &str) -> Component {
    static COMPILED: OnceLock<Mutex<HashMap<String, Component>>> = OnceLock::new();
    let compiled = COMPILED.get_or_init(Default::default);
    let mut compiled = compiled.lock().unwrap_or_else(|e| e.into_inner());
    compiled
        .entry(name.to_string())
        .or_insert_with(|| {
            Component::from_file(engine(), rust_component(name))
                .unwrap_or_else(|e| panic!("compiling {name}: {e:?}"))
        })
        .clone()
}

/// How a run ended and what it printed.
pub struct Run {
    /// The exit code: 0 for `Ok` from `run`, 1 for `Err`, else `exit(n)`.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// The run ended with `code`; shows all of it otherwise.
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "{self}");
        self
    }
}

/// The mounts of one run: guest path and directory node.
pub type Mounts = Vec<(String, Arc<dyn Node>)>;

/// Runs guest `name` with `args` over `mounts`.
pub async fn run(name: &str, args: &[&str], mounts: Mounts) -> Run {
    run_with(name, args, VfsCtx::new(mounts)).await
}

/// [`run`] with the spec's strict `mutate-directory`.
pub async fn run_strict(name: &str, args: &[&str], mounts: Mounts) -> Run {
    run_with(
        name,
        args,
        VfsCtx::new(mounts).strict_mutate_directory(true),
    )
    .await
}

/// What a run needs besides its component: the store, and where its
/// stdout and stderr go.
fn store_for(
    engine: &Engine,
    argv: &[&str],
    vfs: VfsCtx,
) -> (WasmStore<State>, MemoryOutputPipe, MemoryOutputPipe) {
    let stdout = MemoryOutputPipe::new(1 << 20);
    let stderr = MemoryOutputPipe::new(1 << 20);
    let wasi = WasiCtx::builder()
        .args(argv)
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build();
    let state = State {
        wasi,
        table: ResourceTable::new(),
        vfs,
    };
    (WasmStore::new(engine, state), stdout, stderr)
}

/// How a run ended: the exit code (134 for a trap, whose message ends
/// stderr, as `warden run` says it).
fn ended(
    result: wasmtime::Result<Result<(), ()>>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
) -> Run {
    let mut trap = String::new();
    let code = match result {
        Ok(Ok(())) => 0,
        Ok(Err(())) => 1,
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => *code,
            None => {
                trap = format!("trapped: {e:?}\n");
                134
            }
        },
    };
    Run {
        code,
        stdout: String::from_utf8_lossy(&stdout.contents()).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.contents()).into_owned() + &trap,
    }
}

async fn run_with(name: &str, args: &[&str], vfs: VfsCtx) -> Run {
    let mut argv = vec![name];
    argv.extend_from_slice(args);
    let (mut store, stdout, stderr) = store_for(engine(), &argv, vfs);
    let command = wasmtime_wasi::p2::bindings::Command::instantiate_async(
        &mut store,
        &component(name),
        linker(),
    )
    .await
    .unwrap_or_else(|e| panic!("instantiating {name}: {e:?}"));
    let result = command.wasi_cli_run().call_run(&mut store).await;
    // Every descriptor the guest had open is gone with its store.
    drop(store);
    ended(result, stdout, stderr)
}

/// Runs the WASI 0.3 component at `path` over `mounts`.
pub async fn run_p3(path: &Path, mounts: Mounts) -> Run {
    let linker = p3_linker();
    let component = Component::from_file(linker.engine(), path)
        .unwrap_or_else(|e| panic!("compiling {}: {e:?}", path.display()));
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let (mut store, stdout, stderr) = store_for(linker.engine(), &[&name], VfsCtx::new(mounts));
    let pre = linker
        .instantiate_pre(&component)
        .and_then(wasmtime_wasi::p3::bindings::CommandPre::new)
        .unwrap_or_else(|e| panic!("linking {name}: {e:?}"));
    let command = pre
        .instantiate_async(&mut store)
        .await
        .unwrap_or_else(|e| panic!("instantiating {name}: {e:?}"));
    let result = store
        .run_concurrent(async move |store| command.wasi_cli_run().call_run(store).await)
        .await
        .and_then(|r| r);
    drop(store);
    ended(result, stdout, stderr)
}

/// A host directory mount, read-write or read-only.
pub fn host(path: &Path, read_only: bool) -> Arc<dyn Node> {
    Arc::new(HostDir::open_root(path, read_only).expect("open host dir"))
}

/// A virtual mount of the tree at `path`, captured now.
pub fn virtual_tree(path: &Path) -> Arc<dyn Node> {
    Arc::new(VDir::root(virt::capture(path).expect("capture")))
}

/// A sealed store in a file of its own, with a fixed test key.
pub struct Sealed {
    pub path: PathBuf,
}

impl Sealed {
    pub fn new(dir: &Path) -> Sealed {
        Sealed {
            path: dir.join("store.redb"),
        }
    }

    fn key() -> StaticKey {
        StaticKey::new(RootKey::from_bytes([7; 32]))
    }

    /// Opens the store and the filesystem of namespace `ns`.
    pub fn fs(&self, ns: &str) -> (Store, SealedFs) {
        let store = Store::open(&self.path, &Self::key()).expect("open sealed store");
        let fs = SealedFs::new(store.namespace(ns).expect("namespace")).expect("sealed fs");
        (store, fs)
    }

    /// The sealed mount of namespace `ns`, as the kernel opens it; the
    /// store stays open while the mount does.
    pub fn mount(&self, ns: &str) -> (Store, Arc<dyn Node>) {
        let (store, fs) = self.fs(ns);
        let root = SealedDir::root(fs).expect("sealed root");
        (store, Arc::new(root))
    }
}

/// Every file and directory under `root`, sorted, as `path` for
/// directories (with a `/`) and `path "contents"` for files,
/// `path -> target` for symlinks.
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push(format!("{rel} -> {}", target.display()));
            } else if meta.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                let data = std::fs::read(&path).unwrap();
                out.push(format!("{rel} {:?}", String::from_utf8_lossy(&data)));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// Compares `got` with `expected` line by line and shows the first
/// difference with the whole run.
pub fn same_lines(run: &Run, expected: &str) {
    let got: Vec<&str> = run.stdout.lines().collect();
    let want: Vec<&str> = expected.lines().collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "line {} differs\n{run}", i + 1);
    }
    assert_eq!(got.len(), want.len(), "line counts differ\n{run}");
}
