//! Helpers for `tests/cages.rs`: build the C programs of
//! `crates/guest/tests/c` natively with gcc and with `warden cc`, run each
//! both ways with a watchdog, and compare what a user sees.
//!
//! Layout, under cargo's `CARGO_TARGET_TMPDIR` (`target/tmp`) and a
//! directory per checkout ([`root`]): `native/bin/NAME` and `wasm/bin/NAME`
//! (the same names, no extension, so that a program execs `BIN/echo_args`
//! either way), `cache` (`WARDEN_CACHE_DIR`, for the guest library and
//! compiled modules) and a scratch directory per run. Each program runs as
//! `NAME BIN SCRATCH`: natively with the host paths, under warden with
//! `--dir BIN::/bin --dir SCRATCH::/scratch` and `/bin /scratch`.

// Not every test uses every helper.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Programs exec'd by the tests rather than run by them.
pub const HELPERS: &[&str] = &["echo_args", "upper", "fdcheck", "pidcheck"];

/// A FIFO in each BIN directory, for programs that block opening one.
pub const FIFO: &str = "fifo";

/// The file the tests exec to get ENOEXEC: text, executable.
pub const NOT_A_PROGRAM: &str = "notaprog";

pub fn warden() -> &'static str {
    env!("CARGO_BIN_EXE_warden")
}

/// The program run as `warden run`: this checkout's `warden`, or the one
/// named by `WARDEN_TEST_RUNTIME`, to run the tests against another build
/// (say, of the commit before a fix, to see a new test fail).
pub fn warden_runtime() -> std::ffi::OsString {
    std::env::var_os("WARDEN_TEST_RUNTIME").unwrap_or_else(|| warden().into())
}

/// `target/tmp/cages/CHECKOUT`: CHECKOUT names this source tree, so that
/// checkouts (git worktrees) sharing one target directory do not build
/// over each other's programs.
pub fn root() -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_MANIFEST_DIR").hash(&mut h);
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cages")
        .join(format!("{:016x}", h.finish()))
}

pub fn cache_dir() -> PathBuf {
    root().join("cache")
}

/// The C sources: `crates/guest/tests/c`.
pub fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest/tests/c")
}

/// The `warden cc` command: `warden cc`, or the program named by
/// `WARDEN_TEST_CC` (run as `$WARDEN_TEST_CC cc ...`), to try another build
/// of the compiler driver against this checkout's runtime.
pub fn warden_cc() -> Command {
    let program = std::env::var_os("WARDEN_TEST_CC").unwrap_or_else(|| warden().into());
    let mut cmd = Command::new(program);
    cmd.arg("cc").env("WARDEN_CACHE_DIR", cache_dir());
    cmd
}

pub struct Built {
    pub native_bin: PathBuf,
    pub wasm_bin: PathBuf,
}

/// Builds every program both ways, once per test process.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    match BUILT.get_or_init(build_all) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

fn build_all() -> Result<Built, String> {
    let native_bin = root().join("native/bin");
    let wasm_bin = root().join("wasm/bin");
    for dir in [&native_bin, &wasm_bin] {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut names: Vec<String> = std::fs::read_dir(sources())
        .map_err(|e| format!("{}: {e}", sources().display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".c").map(str::to_string)
        })
        .collect();
    names.sort();

    // Two workers: gcc and warden cc are single-threaded, the machine is
    // shared.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(name) = names.get(i) else { break };
                if let Err(e) = build_one(name, &native_bin, &wasm_bin) {
                    errors.lock().unwrap().push(e);
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    if !errors.is_empty() {
        return Err(errors.join("\n\n"));
    }
    for dir in [&native_bin, &wasm_bin] {
        let path = dir.join(NOT_A_PROGRAM);
        std::fs::write(&path, "this is not a program\n").map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        // A FIFO nobody opens from the other side, for fifo_kill.
        let fifo = dir.join(FIFO);
        let made = Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return Err(format!("mkfifo {} failed", fifo.display()));
        }
    }
    Ok(Built {
        native_bin,
        wasm_bin,
    })
}

const CFLAGS: &[&str] = &["-O2", "-Wall", "-Wextra", "-Werror"];

fn build_one(name: &str, native_bin: &Path, wasm_bin: &Path) -> Result<(), String> {
    let source = sources().join(format!("{name}.c"));
    let mut gcc = Command::new("gcc");
    gcc.args(CFLAGS)
        .arg(&source)
        .arg("-o")
        .arg(native_bin.join(name));
    check_build(&mut gcc, &format!("{name} (gcc)"))?;
    let mut cc = warden_cc();
    cc.args(CFLAGS)
        .arg(&source)
        .arg("-o")
        .arg(wasm_bin.join(name));
    check_build(&mut cc, &format!("{name} (warden cc)"))
}

fn check_build(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("building {what}: cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "building {what} failed ({}): {cmd:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// What a run left: exit code (128 + N for death by signal N, as a shell
/// and `warden run` report it), stdout, stderr.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub command: String,
}

#[derive(Clone, Debug)]
pub struct Opts {
    /// `max_processes` for warden (a config file); natively `FORK_LIMIT`.
    pub max_processes: Option<u32>,
    pub timeout: Duration,
    /// A lower `RLIMIT_NOFILE` (soft and hard) to run under, both ways.
    pub nofile: Option<u32>,
    /// Whether warden grants `process` (`--allow process`): every program
    /// here forks or execs, so the tests grant it unless they check the
    /// denial.
    pub allow_process: bool,
    /// More `warden run` flags, before the module.
    pub flags: Vec<String>,
    /// More program arguments, after `BIN SCRATCH`.
    pub args: Vec<String>,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            max_processes: None,
            timeout: Duration::from_secs(60),
            nofile: None,
            allow_process: true,
            flags: Vec::new(),
            args: Vec::new(),
        }
    }
}

/// `program`, under `prlimit` when the options lower a limit.
fn command(program: PathBuf, opts: &Opts) -> Command {
    match opts.nofile {
        None => Command::new(program),
        Some(n) => {
            // util-linux, essential on Debian; absolute, as the native run has no PATH.
            let mut cmd = Command::new("/usr/bin/prlimit");
            cmd.arg(format!("--nofile={n}:{n}")).arg("--").arg(program);
            cmd
        }
    }
}

/// A fresh scratch directory for one run: numbered, since several tests may
/// run one program at once.
fn scratch(side: &str, name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let dir = root().join("scratch").join(format!("{name}-{side}-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn run_native(name: &str, opts: &Opts) -> Outcome {
    let built = built();
    let scratch = scratch("native", name);
    let mut cmd = command(built.native_bin.join(name), opts);
    cmd.arg(&built.native_bin)
        .arg(&scratch)
        .args(&opts.args)
        .env_clear()
        .env("PATH", &built.native_bin);
    if let Some(n) = opts.max_processes {
        cmd.env("FORK_LIMIT", n.to_string());
    }
    // Its own process group, so that the watchdog can end its children
    // too.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    run(cmd, opts.timeout)
}

pub fn run_warden(name: &str, opts: &Opts) -> Outcome {
    let built = built();
    let scratch = scratch("warden", name);
    let mut cmd = command(PathBuf::from(warden_runtime()), opts);
    cmd.arg("run").env("WARDEN_CACHE_DIR", cache_dir());
    if let Some(n) = opts.max_processes {
        let config = root().join(format!("max-processes-{n}.toml"));
        std::fs::write(&config, format!("[limits]\nmax_processes = {n}\n")).unwrap();
        cmd.arg("--config").arg(config);
    }
    if opts.allow_process {
        cmd.args(["--allow", "process"]);
    }
    cmd.args(&opts.flags);
    cmd.arg("--dir")
        .arg(format!("{}::/bin", built.wasm_bin.display()))
        .arg("--dir")
        .arg(format!("{}::/scratch", scratch.display()))
        .args(["--env", "PATH=/bin"])
        .arg(built.wasm_bin.join(name))
        .args(["/bin", "/scratch"])
        .args(&opts.args);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    run(cmd, opts.timeout)
}

fn run(mut cmd: Command, timeout: Duration) -> Outcome {
    let command = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_or_kill(&mut child, timeout, &command);
    let code = match status.code() {
        Some(c) => c,
        None => {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        }
    };
    Outcome {
        code,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        command,
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn wait_or_kill(child: &mut Child, timeout: Duration, command: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            // Whatever the program left behind in its group goes too, so
            // that no one keeps the output pipes open.
            kill_group(child.id());
            return status;
        }
        if Instant::now() > deadline {
            kill_group(child.id());
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {timeout:?}: {command}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// Runs `name` natively and under warden; they must agree on stdout and
/// exit code.
/// Runs `name` both ways and fails unless they agree; returns warden's run.
pub fn compare(name: &str, opts: &Opts) -> Outcome {
    let native = run_native(name, opts);
    let warden = run_warden(name, opts);
    if native.code != warden.code || native.stdout != warden.stdout {
        panic!(
            "{name}: native and warden disagree\n\
             == native: exit {}\n{}\n-- stderr:\n{}\n\
             == warden: exit {}\n{}\n-- stderr:\n{}\n\
             == diff (native -> warden):\n{}\n\
             (native: {})\n(warden: {})",
            native.code,
            native.stdout,
            native.stderr,
            warden.code,
            warden.stdout,
            warden.stderr,
            line_diff(&native.stdout, &warden.stdout),
            native.command,
            warden.command,
        );
    }
    warden
}

/// The lines that differ, `-` native, `+` warden (a naive diff: enough to
/// see which fact went wrong).
pub fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let mut out = String::new();
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("-{x}\n"));
                }
                if let Some(y) = y {
                    out.push_str(&format!("+{y}\n"));
                }
            }
        }
    }
    out
}

/// Whether this process runs as root (some native runs need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Builds `source` (C text) with `warden cc` plus `args`; returns the
/// output, stdout+stderr and the exit code.
pub fn cc_source(name: &str, source: &str, args: &[&str], env: &[(&str, &str)]) -> CcResult {
    let dir = root().join("cc").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let out = dir.join(format!("{name}.wasm"));
    let mut cmd = warden_cc();
    cmd.current_dir(&dir)
        .args(args)
        .arg(&src)
        .arg("-o")
        .arg(&out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let result = cmd.output().expect("run warden cc");
    CcResult {
        dir,
        module: out,
        code: result.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
    }
}

pub struct CcResult {
    pub dir: PathBuf,
    pub module: PathBuf,
    pub code: i32,
    pub stderr: String,
}

/// A module's imports (`module.name`) and exports (`name`, with whether a
/// global export is mutable).
pub struct Interface {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub mutable_global_exports: Vec<String>,
}

pub fn interface(module: &Path) -> Interface {
    use wasmparser::{ExternalKind, Parser, Payload, TypeRef};
    let bytes = std::fs::read(module).unwrap();
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut mutable_global_exports = Vec::new();
    let mut imported_globals: Vec<bool> = Vec::new();
    let mut globals: Vec<bool> = Vec::new();
    let mut global_exports = Vec::new();
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    if let TypeRef::Global(g) = import.ty {
                        imported_globals.push(g.mutable);
                    }
                    imports.push(format!("{}.{}", import.module, import.name));
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    globals.push(global.unwrap().ty.mutable);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.unwrap();
                    exports.push(export.name.to_string());
                    if export.kind == ExternalKind::Global {
                        global_exports.push((export.name.to_string(), export.index));
                    }
                }
            }
            _ => {}
        }
    }
    let all: Vec<bool> = imported_globals.into_iter().chain(globals).collect();
    for (name, index) in global_exports {
        if all.get(index as usize) == Some(&true) {
            mutable_global_exports.push(name);
        }
    }
    Interface {
        imports,
        exports,
        mutable_global_exports,
    }
}
