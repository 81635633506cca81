//! `warden cc`: compile a POSIX C program into a cage-ready module.
//!
//! It drives Debian's clang for `wasm32-wasi` with wasi-libc, adds warden's
//! guest library (the `warden-guest` crate: headers in front of wasi-libc's,
//! an archive implementing fork, exec, wait, pipes, dup and signals over the
//! process ABI of docs/process-abi.md), exports what fork needs, and runs
//! binaryen's asyncify only on a module that imports `warden::proc_fork` or
//! `warden::proc_exec`. A program that needs none of it comes out as a plain
//! WASI module.
//!
//! The guest library is compiled once per (sources, clang) pair into the
//! cache directory (`$WARDEN_CACHE_DIR`, else the user's cache dir +
//! `/warden`), under `guest/<hash>/`. The archive is written here, with its
//! symbol index read from the objects' `linking` sections, so that no
//! `llvm-ar` is needed.
//!
//! `-pthread` builds a threaded module (shared memory, `wasi::thread-spawn`,
//! `wasi_thread_start`) against a threads sysroot: see `threads`.

mod threads;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// The Debian packages that provide everything `warden cc` runs.
const ALL_PACKAGES: &str = "clang lld wasi-libc libclang-rt-14-dev-wasm32 binaryen";

#[derive(Args, Debug)]
#[command(
    about = "Compile a POSIX C program into a cage-ready module",
    long_about = "Compile a POSIX C program into a cage-ready module.\n\n\
        Runs `clang --target=wasm32-wasi` with wasi-libc and warden's guest library \
        (fork, exec*, waitpid, pipe, dup2, kill, sigaction, ...), then binaryen's \
        asyncify when the program can fork or exec. Every argument is passed to \
        clang, e.g. `warden cc -O2 prog.c -o prog.wasm`.\n\n\
        Environment: WARDEN_CLANG and WARDEN_WASM_OPT name the tools (default: \
        clang, wasm-opt from PATH); WARDEN_CACHE_DIR the cache for the compiled \
        guest library; WARDEN_CC_VERBOSE=1 prints the commands run.\n\n\
        -pthread builds a threaded module (a shared memory, wasi::thread-spawn; run it \
        with --allow threads) against a threads sysroot downloaded into the cache on \
        first use (pinned by SHA-256; scripts/setup.sh fetches it too).",
    disable_help_flag = true
)]
pub struct CcArgs {
    /// Print help
    #[arg(long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Arguments for clang: sources, objects, -o OUT, -O2, -D, -I, -l, ...
    #[arg(
        value_name = "CLANG_ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..
    )]
    pub args: Vec<OsString>,
}

/// Compiles as the arguments say. Returns the exit code: clang's when it
/// fails (its diagnostics are on stderr already), 0 on success. An error is
/// a missing tool or a failure of warden cc itself.
pub fn run(args: CcArgs) -> Result<u8> {
    let args: Vec<String> = args
        .args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| anyhow!("argument {a:?} is not valid UTF-8"))
        })
        .collect::<Result<_>>()?;
    if args.is_empty() {
        bail!("no input files (usage: warden cc [CLANG_ARGS...] prog.c -o prog.wasm)");
    }
    let tools = Tools::from_env();
    let clang = tools.check_clang()?;
    let plan = Plan::from_args(&args);
    if plan.linking {
        tools.check_link(&clang)?;
    }
    let sysroot = if plan.threads {
        Some(threads::Sysroot::ensure(&tools)?)
    } else {
        None
    };
    let guest = GuestLib::ensure(&tools, &clang, sysroot.as_ref())?;

    let mut cmd = Command::new(&tools.clang);
    cmd.args(guest.compile_flags());
    if plan.linking {
        // Before the user's arguments, which may override them.
        cmd.args(LINK_DEFAULTS);
        if sysroot.is_some() {
            cmd.args(threads_link_defaults());
        }
    }
    cmd.args(&args);
    if plan.linking {
        if let Some(sysroot) = &sysroot {
            if plan.command_start {
                // The guest library's entry point replaces crt1-command.o
                // (it sets up the main thread's TLS).
                cmd.arg("-nostartfiles");
                cmd.arg(&guest.start_object);
            }
            // In front of libc.a, so that its own malloc is never pulled.
            cmd.arg(&sysroot.malloc_object);
        }
        cmd.arg(&guest.features_object);
        cmd.arg(&guest.archive);
        if sysroot.is_none() {
            // wasi-libc's emulation libraries exist only single-threaded
            // (built without atomics, wasm-ld refuses them with a shared
            // memory); the threads sysroot has none.
            cmd.args(warden_guest::LINK_LIBS);
        }
        for global in warden_guest::EXPORTED_GLOBALS {
            cmd.arg(format!("-Wl,--export={global}"));
        }
        if sysroot.is_some() {
            for global in warden_guest::EXPORTED_THREAD_GLOBALS {
                cmd.arg(format!("-Wl,--export={global}"));
            }
        }
        if !plan.debug {
            // wasi-libc's objects carry DWARF; without -g it only bloats
            // the module (the name section stays, for backtraces).
            cmd.arg("-Wl,--strip-debug");
        }
    }
    let status = tools.run(&mut cmd)?;
    if !status.success() {
        return Ok(exit_code(status));
    }
    if !plan.linking {
        return Ok(0);
    }

    let output = plan.output.as_deref().unwrap_or("a.out");
    let mut module =
        std::fs::read(output).with_context(|| format!("cannot read clang's output {output}"))?;
    if sysroot.is_some() {
        let exported = threads::export_memory(&module)
            .with_context(|| format!("cannot export the memory of {output}"));
        match exported {
            Ok(Some(with_export)) => {
                std::fs::write(output, &with_export)
                    .with_context(|| format!("cannot write {output}"))?;
                module = with_export;
            }
            Ok(None) => {}
            Err(e) => {
                // Not left behind: hosts cannot run it without the export.
                let _ = std::fs::remove_file(output);
                return Err(e);
            }
        }
    }
    if needs_asyncify(&module).with_context(|| format!("cannot parse {output}"))? {
        if let Err(e) = asyncify(&tools, Path::new(output), &plan) {
            // Not left behind: without asyncify the module cannot fork.
            let _ = std::fs::remove_file(output);
            return Err(e);
        }
    }
    Ok(0)
}

fn exit_code(status: ExitStatus) -> u8 {
    match status.code() {
        Some(c) if (1..=255).contains(&c) => c as u8,
        _ => 1,
    }
}

/// What the clang arguments ask for, as far as warden cc cares.
#[derive(Debug, PartialEq)]
struct Plan {
    /// Whether clang links a module (not `-c`, `-S`, `-E`, ...).
    linking: bool,
    /// `-o OUT`, if given.
    output: Option<String>,
    /// Whether `-g` (or a variant) was given.
    debug: bool,
    /// binaryen's optimisation flag after asyncify.
    opt_level: &'static str,
    /// `-pthread`: a threaded module.
    threads: bool,
    /// Whether the program is a command with the usual start files (not
    /// `-nostartfiles`, `-nostdlib`, `-mexec-model=reactor`, `-shared`).
    command_start: bool,
}

impl Plan {
    fn from_args(args: &[String]) -> Plan {
        let mut plan = Plan {
            linking: true,
            output: None,
            debug: false,
            opt_level: "-O1",
            threads: false,
            command_start: true,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "-c" | "-S" | "-E" | "-M" | "-MM" | "-fsyntax-only" | "-###" | "--version"
                | "--help" => plan.linking = false,
                "-o" => plan.output = it.next().cloned(),
                "-pthread" => plan.threads = true,
                "-nostartfiles" | "-nostdlib" | "-mexec-model=reactor" | "-shared" => {
                    plan.command_start = false
                }
                "-mexec-model=command" => plan.command_start = true,
                "-g0" => plan.debug = false,
                "-O0" | "-O1" => plan.opt_level = "-O1",
                "-O" | "-O2" => plan.opt_level = "-O2",
                "-O3" | "-Ofast" => plan.opt_level = "-O3",
                "-Os" => plan.opt_level = "-Os",
                "-Oz" => plan.opt_level = "-Oz",
                a if a.starts_with("-print-") => plan.linking = false,
                a if a.starts_with("-o") => plan.output = Some(a[2..].to_string()),
                a if a.starts_with("-g") => plan.debug = true,
                _ => {}
            }
        }
        // `-v` alone prints clang's version; with inputs it also links.
        if args.iter().all(|a| a == "-v") {
            plan.linking = false;
        }
        plan
    }
}

/// Link options a user may override (theirs come later and win).
///
/// The stack goes first in linear memory, so that overflowing it traps
/// (below address 0) instead of silently overwriting static data, as it
/// does with wasm-ld's default layout; and it is 1 MiB rather than wasm-ld's
/// 64 KiB, closer to what a native program expects.
const LINK_DEFAULTS: &[&str] = &["-Wl,--stack-first", "-Wl,-z,stack-size=1048576"];

/// Link options of a threaded module, also before the user's: the memory
/// is shared, imported (each thread is an instance of its own over the
/// one memory) and has a maximum, which a shared memory must declare.
fn threads_link_defaults() -> Vec<String> {
    vec![
        "-Wl,--shared-memory".to_string(),
        "-Wl,--import-memory".to_string(),
        format!("-Wl,--max-memory={}", threads::DEFAULT_MAX_MEMORY),
    ]
}

/// The external programs, and how to run them.
struct Tools {
    clang: PathBuf,
    wasm_opt: PathBuf,
    verbose: bool,
}

/// What `clang --target=wasm32-wasi` reports about itself.
struct ClangInfo {
    /// `clang --version`, part of the guest library's cache key.
    version: String,
    /// The major version, for the compiler-rt package's name.
    major: String,
}

impl Tools {
    fn from_env() -> Tools {
        let var = |name: &str, default: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(default))
        };
        Tools {
            clang: var("WARDEN_CLANG", "clang"),
            wasm_opt: var("WARDEN_WASM_OPT", "wasm-opt"),
            verbose: std::env::var_os("WARDEN_CC_VERBOSE")
                .is_some_and(|v| !v.is_empty() && v != "0"),
        }
    }

    fn run(&self, cmd: &mut Command) -> Result<ExitStatus> {
        if self.verbose {
            eprintln!("warden cc: {}", show(cmd));
        }
        cmd.status()
            .with_context(|| format!("cannot run {}", cmd.get_program().to_string_lossy()))
    }

    /// Runs a query of clang's and returns its stdout, trimmed.
    fn query(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.clang)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.clang.display()))?;
        if !out.status.success() {
            bail!(
                "`{} {}` failed ({})",
                self.clang.display(),
                args.join(" "),
                out.status
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn check_clang(&self) -> Result<ClangInfo> {
        let version = match Command::new(&self.clang).arg("--version").output() {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).to_string(),
            Ok(out) => bail!(
                "{} --version failed ({}); install clang: apt-get install clang",
                self.clang.display(),
                out.status
            ),
            Err(e) if e.kind() == ErrorKind::NotFound => bail!(
                "clang not found (looked for `{}`): install it with `apt-get install clang` \
                 (warden cc needs: {ALL_PACKAGES})",
                self.clang.display()
            ),
            Err(e) => bail!("cannot run {}: {e}", self.clang.display()),
        };
        let major = version
            .split_whitespace()
            .skip_while(|w| *w != "version")
            .nth(1)
            .and_then(|v| v.split('.').next())
            .unwrap_or("14")
            .to_string();
        let info = ClangInfo { version, major };
        // wasi-libc: its headers and libc.a, found through clang's own
        // search paths.
        let libc = self.query(&["--target=wasm32-wasi", "-print-file-name=libc.a"])?;
        if !Path::new(&libc).is_absolute() || !Path::new(&libc).is_file() {
            bail!(
                "wasi-libc not found for clang --target=wasm32-wasi: install it with \
                 `apt-get install wasi-libc`"
            );
        }
        Ok(info)
    }

    /// What linking needs beyond clang and wasi-libc.
    fn check_link(&self, clang: &ClangInfo) -> Result<()> {
        let ld = self.query(&["--target=wasm32-wasi", "-print-prog-name=wasm-ld"])?;
        let found = if Path::new(&ld).is_absolute() {
            Path::new(&ld).is_file()
        } else {
            which(&ld).is_some()
        };
        if !found {
            bail!(
                "wasm-ld (the WebAssembly linker) not found: install it with `apt-get install lld`"
            );
        }
        let rt = self.query(&["--target=wasm32-wasi", "-print-libgcc-file-name"])?;
        if !Path::new(&rt).is_file() {
            bail!(
                "compiler-rt builtins for wasm32 not found ({rt}): install them with \
                 `apt-get install libclang-rt-{}-dev-wasm32`",
                clang.major
            );
        }
        Ok(())
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The compiled guest library in the cache.
struct GuestLib {
    include: PathBuf,
    archive: PathBuf,
    features_object: PathBuf,
    /// The threaded entry point (only built for the threads variant).
    start_object: PathBuf,
    /// The threads sysroot, for the threads variant.
    sysroot: Option<PathBuf>,
}

/// Flags for the library's own objects (besides those every compile gets).
const LIBRARY_FLAGS: &[&str] = &["-O2", "-Wall", "-Wextra", "-Werror"];

impl GuestLib {
    fn at(dir: &Path, sysroot: Option<&threads::Sysroot>) -> GuestLib {
        GuestLib {
            include: dir.join("include"),
            archive: dir.join(warden_guest::ARCHIVE_NAME),
            features_object: dir.join("features.o"),
            start_object: dir.join("start.o"),
            sysroot: sysroot.map(|s| s.dir.clone()),
        }
    }

    /// Flags every clang invocation gets, ahead of the user's.
    fn compile_flags(&self) -> Vec<OsString> {
        let mut flags: Vec<OsString> = match &self.sysroot {
            None => vec!["--target=wasm32-wasi".into()],
            Some(sysroot) => {
                let mut sysroot_flag = OsString::from("--sysroot=");
                sysroot_flag.push(sysroot);
                vec![
                    format!("--target={}", threads::TARGET).into(),
                    sysroot_flag,
                    // -pthread alone turns the first two on in clang 14;
                    // said explicitly all the same. Clang 14 implements
                    // only the local-exec TLS model for wasm.
                    "-pthread".into(),
                    "-matomics".into(),
                    "-mbulk-memory".into(),
                    "-ftls-model=local-exec".into(),
                ]
            }
        };
        flags.extend(warden_guest::COMPILE_FLAGS.iter().map(OsString::from));
        flags.push("-isystem".into());
        flags.push(self.include.clone().into());
        flags.push("-include".into());
        flags.push(warden_guest::PRELUDE.into());
        flags
    }

    /// The library for this clang, built into the cache if it is not there.
    fn ensure(
        tools: &Tools,
        clang: &ClangInfo,
        sysroot: Option<&threads::Sysroot>,
    ) -> Result<GuestLib> {
        let root = cache_root()?.join("guest");
        let dir = match sysroot {
            None => root.join(cache_key(clang, None)),
            // A build of its own: other flags, another libc.
            Some(_) => root.join(format!(
                "threads-{}",
                cache_key(clang, Some(&threads::Sysroot::id()))
            )),
        };
        let lib = GuestLib::at(&dir, sysroot);
        if dir.join("ok").is_file() {
            return Ok(lib);
        }
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create cache directory {}", root.display()))?;
        // Built aside and renamed into place: concurrent builds race
        // harmlessly, and a failed one leaves nothing behind.
        let tmp = tempfile::Builder::new()
            .prefix(".build-")
            .tempdir_in(&root)
            .with_context(|| format!("cannot create a directory in {}", root.display()))?;
        build_library(tools, tmp.path(), sysroot)?;
        std::fs::write(tmp.path().join("ok"), clang.version.as_bytes())?;
        match std::fs::rename(tmp.path(), &dir) {
            Ok(()) => {
                let _ = tmp.keep();
            }
            // Another warden cc finished first: use its copy.
            Err(_) if dir.join("ok").is_file() => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot move the guest library to {}", dir.display()))
            }
        }
        Ok(lib)
    }
}

fn cache_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("WARDEN_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::cache_dir()
        .map(|d| d.join("warden"))
        .ok_or_else(|| anyhow!("no cache directory: set WARDEN_CACHE_DIR"))
}

/// The cache key: the library's files, the flags and clang's version.
fn cache_key(clang: &ClangInfo, sysroot: Option<&str>) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"warden-guest 1");
    field(clang.version.as_bytes());
    for flag in warden_guest::COMPILE_FLAGS.iter().chain(LIBRARY_FLAGS) {
        field(flag.as_bytes());
    }
    for (path, contents) in warden_guest::all_files() {
        field(path.as_bytes());
        field(contents.as_bytes());
    }
    if let Some(sysroot) = sysroot {
        field(b"threads");
        field(sysroot.as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

/// Writes the sources into `dir`, compiles them and archives the objects.
fn build_library(tools: &Tools, dir: &Path, sysroot: Option<&threads::Sysroot>) -> Result<()> {
    warden_guest::write_to(dir)
        .with_context(|| format!("cannot write the guest library to {}", dir.display()))?;
    let lib = GuestLib::at(dir, sysroot);
    let obj_dir = dir.join("obj");
    std::fs::create_dir_all(&obj_dir)?;
    let mut jobs = Vec::new();
    let start = sysroot.map(|_| &warden_guest::THREADS_START_SOURCE);
    let sources = warden_guest::ARCHIVE_SOURCES
        .iter()
        .chain(std::iter::once(&warden_guest::FEATURES_SOURCE))
        .chain(start);
    for source in sources {
        let object = if source.path == warden_guest::FEATURES_SOURCE.path {
            lib.features_object.clone()
        } else if source.path == warden_guest::THREADS_START_SOURCE.path {
            lib.start_object.clone()
        } else {
            obj_dir.join(source.path.replace(".c", ".o"))
        };
        let mut cmd = Command::new(&tools.clang);
        cmd.args(lib.compile_flags())
            .args(LIBRARY_FLAGS)
            .arg("-c")
            .arg(dir.join("src").join(source.path))
            .arg("-o")
            .arg(&object);
        if tools.verbose {
            eprintln!("warden cc: {}", show(&cmd));
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", tools.clang.display()))?;
        jobs.push((source.path, object, child));
    }
    let mut members = Vec::new();
    let mut failed = Vec::new();
    for (source, object, mut child) in jobs {
        let status = child.wait()?;
        if !status.success() {
            failed.push(source);
        } else if object != lib.features_object && object != lib.start_object {
            let name = object.file_name().unwrap().to_string_lossy().into_owned();
            members.push((name, std::fs::read(&object)?));
        }
    }
    if !failed.is_empty() {
        bail!(
            "the guest library failed to compile ({}); is clang's wasm32-wasi support \
             complete? (apt-get install {ALL_PACKAGES})",
            failed.join(", ")
        );
    }
    let archive = write_archive(&members)?;
    std::fs::write(&lib.archive, archive)?;
    Ok(())
}

/// A GNU `ar` archive of wasm objects with the symbol index wasm-ld needs.
fn write_archive(members: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut symbols: Vec<(usize, String)> = Vec::new();
    for (i, (name, data)) in members.iter().enumerate() {
        if name.len() > 15 {
            bail!("archive member name {name} is too long");
        }
        let defined =
            defined_symbols(data).with_context(|| format!("cannot read the symbols of {name}"))?;
        symbols.extend(defined.into_iter().map(|s| (i, s)));
    }
    let pad = |n: usize| n + (n & 1);
    let table_len = 4 + 4 * symbols.len() + symbols.iter().map(|(_, s)| s.len() + 1).sum::<usize>();
    let mut offsets = Vec::with_capacity(members.len());
    let mut at = 8 + 60 + pad(table_len);
    for (_, data) in members {
        offsets.push(at);
        at += 60 + pad(data.len());
    }

    let mut out = Vec::with_capacity(at);
    out.extend_from_slice(b"!<arch>\n");
    out.extend_from_slice(&member_header("/", table_len));
    out.extend_from_slice(&(symbols.len() as u32).to_be_bytes());
    for (member, _) in &symbols {
        out.extend_from_slice(&(offsets[*member] as u32).to_be_bytes());
    }
    for (_, name) in &symbols {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
    }
    if table_len & 1 == 1 {
        out.push(b'\n');
    }
    for (name, data) in members {
        out.extend_from_slice(&member_header(&format!("{name}/"), data.len()));
        out.extend_from_slice(data);
        if data.len() & 1 == 1 {
            out.push(b'\n');
        }
    }
    Ok(out)
}

fn member_header(name: &str, size: usize) -> Vec<u8> {
    let header = format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n", 0, 0, 0, 644);
    debug_assert_eq!(header.len(), 60);
    header.into_bytes()
}

/// The global symbols a relocatable wasm object defines.
fn defined_symbols(object: &[u8]) -> Result<Vec<String>> {
    use wasmparser::{KnownCustom, Linking, Parser, Payload, SymbolFlags, SymbolInfo};
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(object) {
        let Payload::CustomSection(section) = payload? else {
            continue;
        };
        let KnownCustom::Linking(linking) = section.as_known() else {
            continue;
        };
        for sub in linking {
            let Linking::SymbolTable(table) = sub? else {
                continue;
            };
            for symbol in table {
                let (flags, name, defined) = match symbol? {
                    SymbolInfo::Func { flags, name, .. }
                    | SymbolInfo::Global { flags, name, .. }
                    | SymbolInfo::Table { flags, name, .. }
                    | SymbolInfo::Event { flags, name, .. } => {
                        (flags, name, !flags.contains(SymbolFlags::UNDEFINED))
                    }
                    SymbolInfo::Data {
                        flags,
                        name,
                        symbol,
                        ..
                    } => (flags, Some(name), symbol.is_some()),
                    SymbolInfo::Section { .. } => continue,
                };
                if defined && !flags.contains(SymbolFlags::BINDING_LOCAL) {
                    if let Some(name) = name {
                        out.push(name.to_string());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Whether the module imports a `warden` function that forks or execs.
fn needs_asyncify(module: &[u8]) -> Result<bool> {
    use wasmparser::{Parser, Payload};
    for payload in Parser::new(0).parse_all(module) {
        if let Payload::ImportSection(reader) = payload? {
            for import in reader.into_imports() {
                let import = import?;
                if import.module == "warden"
                    && warden_guest::FORK_OR_EXEC_IMPORTS.contains(&import.name)
                {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Runs binaryen's asyncify on `module`, in place.
fn asyncify(tools: &Tools, module: &Path, plan: &Plan) -> Result<()> {
    let mut cmd = Command::new(&tools.wasm_opt);
    cmd.arg(module)
        .arg("--asyncify")
        .arg(format!(
            "--pass-arg=asyncify-imports@{}",
            warden_guest::ASYNCIFY_IMPORTS.join(",")
        ))
        .arg(plan.opt_level)
        // Keep the name section, for backtraces (and DWARF with -g).
        .arg("--debuginfo")
        .arg("-o")
        .arg(module);
    let status = match tools.run(&mut cmd) {
        Ok(status) => status,
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == ErrorKind::NotFound) =>
        {
            bail!(
                "wasm-opt not found (looked for `{}`), needed because {} can fork or exec: \
                 install it with `apt-get install binaryen`",
                tools.wasm_opt.display(),
                module.display()
            )
        }
        Err(e) => return Err(e),
    };
    if !status.success() {
        bail!(
            "wasm-opt --asyncify failed on {} ({status})",
            module.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
