//! Shared helpers for the `warden run` integration tests: building the test
//! guests from source (Rust for wasm32-wasip1, C with clang + wasi-libc, and
//! the same C natively with gcc), running the `warden` binary with a
//! watchdog, and looking at what a user would look at: the exit code,
//! stdout, stderr and the files left on the host.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub mod attest;
pub mod serve;
pub mod wasi_suite;

use std::borrow::BorrowMut;
use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

/// Cargo's target directory for the workspace.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Where the guests are built: `target/guests`.
pub fn guests_dir() -> PathBuf {
    target_dir().join("guests")
}

fn run_build(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the build of {what}: {e} ({cmd:?})"));
    assert!(
        out.status.success(),
        "building {what} failed ({cmd:?}):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds every Rust guest for `target` (once per test process and
/// target) and returns the directory of the `.wasm` files.
fn build_rust_guests(target: &'static str) -> PathBuf {
    build_rust_crate("tests/guests/rust", target)
}

/// Builds the guest crate in `dir` (relative to the workspace) for
/// `target`, once per test process, and returns the directory of its
/// `.wasm` files.
fn build_rust_crate(dir: &'static str, target: &'static str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(&'static str, &'static str), PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = built.get(&(dir, target)) {
        return dir.clone();
    }
    let manifest = workspace_root().join(dir).join("Cargo.toml");
    // Each crate its own directory, so that equal names (an example's
    // `hello` and the guests' `hello`) never meet.
    let target_dir = match dir {
        "tests/guests/rust" => guests_dir(),
        _ => guests_dir().join(dir.replace('/', "-")),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--quiet", "--target", target])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer `cargo test` may have set these for the host build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    // Cargo's own lock on the target directory serialises concurrent
    // test binaries.
    run_build(&mut cmd, &format!("the Rust guests of {dir} for {target}"));
    let out = target_dir.join(target).join("release");
    built.insert((dir, target), out.clone());
    out
}

/// The `wasi:http` component of the cdylib crate in `dir` (relative to the
/// workspace) whose library is `lib` (its name with `_` for `-`).
pub fn http_component(dir: &'static str, lib: &str) -> PathBuf {
    let path = build_rust_crate(dir, "wasm32-wasip2").join(format!("{lib}.wasm"));
    assert!(path.is_file(), "no HTTP component {}", path.display());
    path
}

/// `tests/guests/rust/src/bin/NAME.rs` built for wasm32-wasip1: a core module.
pub fn rust_guest(name: &str) -> PathBuf {
    let path = build_rust_guests("wasm32-wasip1").join(format!("{name}.wasm"));
    assert!(path.is_file(), "no Rust guest {}", path.display());
    path
}

/// `tests/guests/rust-threads/src/bin/NAME.rs` built for
/// wasm32-wasip1-threads: a module with a shared memory that spawns
/// threads through `wasi.thread-spawn`.
pub fn rust_threads_guest(name: &str) -> PathBuf {
    let path = build_rust_crate("tests/guests/rust-threads", "wasm32-wasip1-threads")
        .join(format!("{name}.wasm"));
    assert!(path.is_file(), "no threaded Rust guest {}", path.display());
    path
}

/// `tests/guests/rust/src/bin/NAME.rs` built for wasm32-wasip2: a
/// `wasi:cli/command` component.
pub fn rust_component(name: &str) -> PathBuf {
    let path = build_rust_guests("wasm32-wasip2").join(format!("{name}.wasm"));
    assert!(path.is_file(), "no Rust component {}", path.display());
    path
}

fn c_source(name: &str) -> PathBuf {
    workspace_root().join(format!("tests/guests/c/{name}.c"))
}

/// Compiles `tests/guests/c/NAME.c` once with `how` into `out`, writing to a
/// temporary name first so that concurrent test binaries never see a
/// half-written file.
fn build_c(name: &str, out: PathBuf, how: &dyn Fn(&Path, &Path) -> Command) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, ()>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if built.contains_key(&out) {
        return out;
    }
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let tmp = out.with_file_name(format!(
        ".{}.{}.tmp",
        out.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let src = c_source(name);
    run_build(&mut how(&src, &tmp), &format!("C guest {name}"));
    std::fs::rename(&tmp, &out).unwrap();
    built.insert(out.clone(), ());
    out
}

/// `tests/guests/c/NAME.c` built with Debian's clang for wasm32-wasi.
pub fn c_guest(name: &str) -> PathBuf {
    let out = guests_dir().join(format!("c/{name}.wasm"));
    build_c(name, out, &|src, tmp| {
        let mut cmd = Command::new("clang");
        cmd.args(["--target=wasm32-wasi", "-O2", "-Wall"])
            .arg(src)
            .arg("-o")
            .arg(tmp);
        cmd
    })
}

/// `tests/guests/c/NAME.c` built with `warden cc`: for programs that fork.
pub fn cc_guest(name: &str) -> PathBuf {
    let out = guests_dir().join(format!("cc/{name}.wasm"));
    build_c(name, out, &|src, tmp| {
        let mut cmd = warden();
        cmd.args(["cc", "-O2", "-Wall"]).arg(src).arg("-o").arg(tmp);
        cmd
    })
}

/// `tests/guests/c/NAME.c` built with `warden cc -pthread`: a threaded
/// module (shared memory, `wasi.thread-spawn`).
pub fn cc_pthread_guest(name: &str) -> PathBuf {
    let out = guests_dir().join(format!("cc-pthread/{name}.wasm"));
    build_c(name, out, &|src, tmp| {
        let mut cmd = warden();
        cmd.args(["cc", "-pthread", "-O2", "-Wall"])
            .arg(src)
            .arg("-o")
            .arg(tmp);
        cmd
    })
}

/// The same threaded C program built natively with `gcc -pthread`.
pub fn c_native_pthread(name: &str) -> PathBuf {
    let out = guests_dir().join(format!("native-pthread/{name}"));
    build_c(name, out, &|src, tmp| {
        let mut cmd = Command::new("gcc");
        cmd.args(["-pthread", "-O2", "-Wall"])
            .arg(src)
            .arg("-o")
            .arg(tmp);
        cmd
    })
}

/// The same C program built natively with gcc, to show what it prints on a
/// POSIX system.
pub fn c_native(name: &str) -> PathBuf {
    let out = guests_dir().join(format!("native/{name}"));
    build_c(name, out, &|src, tmp| {
        let mut cmd = Command::new("gcc");
        cmd.args(["-O2", "-Wall"]).arg(src).arg("-o").arg(tmp);
        cmd
    })
}

/// The compile cache shared by all tests, so each guest compiles once.
pub fn shared_cache_dir() -> PathBuf {
    target_dir().join("warden-test-cache")
}

/// `warden` (the binary under test) with the shared compile cache: this
/// checkout's, or the one named by `WARDEN_TEST_RUNTIME`, to run the tests
/// against another build (say, of the commit before a fix, to see a new
/// test fail).
pub fn warden() -> Command {
    let program = std::env::var_os("WARDEN_TEST_RUNTIME")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_warden").into());
    let mut cmd = Command::new(program);
    cmd.env("WARDEN_CACHE_DIR", shared_cache_dir());
    cmd
}

/// `warden SUBCOMMAND ARGS...`.
pub fn warden_cmd<I, S>(subcommand: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = warden();
    cmd.arg(subcommand).args(args);
    cmd
}

/// `warden run ARGS...`.
pub fn warden_run<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    warden_cmd("run", args)
}

/// `sha256:HEX` of `bytes`, as warden prints digests.
pub fn sha256_text(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// What a run left behind.
pub struct Output {
    /// The exit code; `None` if killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code: {:?} (after {:?})\n--- stdout ---\n{}--- stderr ---\n{}--------------",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

impl Output {
    /// Asserts the exit code, showing everything if it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, Some(expected), "unexpected exit code\n{self}");
        self
    }

    /// Asserts the exact stdout.
    #[track_caller]
    pub fn stdout_is(&self, expected: &str) -> &Self {
        assert_eq!(self.stdout, expected, "unexpected stdout\n{self}");
        self
    }

    /// Asserts that stdout has `line` as one of its lines.
    #[track_caller]
    pub fn has_line(&self, line: &str) -> &Self {
        assert!(
            self.stdout.lines().any(|l| l == line),
            "stdout has no line {line:?}\n{self}"
        );
        self
    }

    /// Asserts that stderr is empty.
    #[track_caller]
    pub fn quiet(&self) -> &Self {
        assert_eq!(self.stderr, "", "unexpected stderr\n{self}");
        self
    }

    /// Asserts that stderr holds exactly the notes warden prints on the
    /// first denial of each of `denied` in a run (a subsystem, or `stdin`,
    /// `stdout`, `stderr`), once each, in that order: what a user who was
    /// denied something sees, and nothing else.
    #[track_caller]
    pub fn notes(&self, denied: &[&str]) -> &Self {
        let expected: String = denied.iter().map(|d| note_line(d) + "\n").collect();
        assert_eq!(self.stderr, expected, "unexpected stderr\n{self}");
        self
    }

    /// The value of the stdout line `label: ...`, i.e. the text after
    /// `label: `.
    #[track_caller]
    pub fn field(&self, label: &str) -> String {
        let prefix = format!("{label}: ");
        let hits: Vec<&str> = self
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect();
        assert_eq!(hits.len(), 1, "expected one line `{label}: ...`\n{self}");
        hits[0].to_string()
    }

    /// Asserts bad input: exit code 2, stdout empty, and exactly one stderr
    /// line starting with `warden: error:`, which is returned.
    #[track_caller]
    pub fn bad_input(&self) -> String {
        self.code(2);
        assert_eq!(self.stdout, "", "nothing may run on bad input\n{self}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr\n{self}");
        assert!(
            lines[0].starts_with("warden: error: "),
            "expected `warden: error: ...`\n{self}"
        );
        lines[0].to_string()
    }

    /// The last stderr line, which must start with `warden: ` (the line
    /// warden prints when a limit or a trap stops the guest). Notes of
    /// denials (`warden: note: ...`, printed while the guest runs) are not
    /// that line.
    #[track_caller]
    pub fn warden_line(&self) -> String {
        let warden_lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("warden: ") && !l.starts_with("warden: note: "))
            .collect();
        assert_eq!(
            warden_lines.len(),
            1,
            "expected exactly one `warden: ...` line on stderr\n{self}"
        );
        assert_eq!(
            self.stderr.lines().last(),
            Some(warden_lines[0]),
            "the `warden: ...` line should be the last one\n{self}"
        );
        warden_lines[0].to_string()
    }
}

/// The note warden prints the first time a run is denied `what`: a
/// subsystem, or a standard stream.
pub fn note_line(what: &str) -> String {
    let grant = match what {
        "stdin" | "stdout" | "stderr" => format!("--{what} allow"),
        sub => format!("--allow {sub}"),
    };
    format!("warden: note: {what} denied by policy (grant with {grant})")
}

/// How long any one command may run before the test fails.
pub const WATCHDOG: Duration = Duration::from_secs(120);

/// Runs `cmd` (a `Command` or `&mut Command`) with an empty stdin.
pub fn run(cmd: impl BorrowMut<Command>) -> Output {
    run_with_stdin(cmd, b"")
}

/// Runs `cmd`, writing `input` to its stdin and closing it; kills it and
/// fails the test after [`WATCHDOG`].
pub fn run_with_stdin(cmd: impl BorrowMut<Command>, input: &[u8]) -> Output {
    run_limited(cmd, input, WATCHDOG)
}

/// [`run_with_stdin`] with a watchdog of `limit`.
pub fn run_limited(mut cmd: impl BorrowMut<Command>, input: &[u8], limit: Duration) -> Output {
    let cmd = cmd.borrow_mut();
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The guest may never read: a broken pipe is fine.
        let _ = stdin.write_all(&input);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_reader.join().unwrap();
            let stderr = err_reader.join().unwrap();
            panic!(
                "{cmd:?} still running after {limit:?}; killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let _ = writer.join();
    let stdout = out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    Output {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed,
    }
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("warden-test-")
        .tempdir()
        .expect("temporary directory")
}

/// Writes `content` to `dir/rel`, creating parent directories.
pub fn write(dir: &Path, rel: &str, content: &str) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    path
}

/// Reads `dir/rel` as text, panicking with the path if it cannot.
#[track_caller]
pub fn read(dir: &Path, rel: &str) -> String {
    let path = dir.join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every entry under `root`, sorted, as `rel/path kind [size content]`:
/// what a user sees with `find` + `cat`.
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

/// `warden run ARGS...` with the sealed store (and its key file) kept in
/// `dir`: the same store for every run given the same `dir`.
pub fn run_sealed(dir: &Path, args: &[&str]) -> Output {
    let store = dir.join("store.redb");
    let key = dir.join("store.key");
    let mut all = vec!["--store", s(&store), "--key-file", s(&key)];
    all.extend(args);
    run(warden_run(&all))
}

/// Path as a `&str` for command lines.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Writes a WAT module to `dir/name` and returns its path.
pub fn wat(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// WAT text of a module that prints `text` and a newline.
pub fn say(text: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{text}\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#,
        len = text.len() + 1
    )
}
