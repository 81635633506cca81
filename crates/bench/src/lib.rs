//! Benchmarks of warden's runtime, measured, not assumed: each compares
//! warden with a reference in the same run and prints the ratio, since the
//! machine is shared and noisy.
//!
//! The `kernel` bench (`cargo bench -p warden-bench --bench kernel`, issue
//! 2) runs the same C program (`guests/workload.c`) three ways: on warden's
//! own preview1 kernel ([`WardenRunner`]), on wasmtime's own WASI preview1,
//! the `wasmtime-wasi` crate linked in here with the same engine settings
//! ([`WasiP1Runner`]), and natively, built with gcc ([`native_run`]). This
//! library holds what the bench needs: building the guest at run time
//! ([`build_guest`]), the three runners, and the statistics and table
//! printing. Results and how to read them: `docs/benchmarks.md`.
//!
//! The `components` bench (`cargo bench -p warden-bench --bench
//! components`, issue 11) does the same for components: one Rust program
//! (`guests/workload-rs`) built for wasm32-wasip2 and natively, run by
//! `warden run`'s component runtime and by wasmtime-wasi's own WASI 0.2
//! ([`components`]).

pub mod components;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use warden_kernel::{CacheMode, EngineSettings, Kernel, Outcome, RunOptions};
use warden_policy::Policy;
use wasmtime::{Config, Engine, Linker, Module, OptLevel, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// The C sources of the guests, in this crate.
pub fn guest_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("guests")
        .join(format!("{name}.c"))
}

/// One guest program, built for both targets.
#[derive(Clone, Debug)]
pub struct Guest {
    /// `clang --target=wasm32-wasi -O2`.
    pub wasm: PathBuf,
    /// `gcc -O2`.
    pub native: PathBuf,
}

fn compile(program: &str, args: &[&std::ffi::OsStr]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {:?} failed ({}):\n{}",
            args,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Builds `src` into `out_dir` as wasm (clang + wasi-libc) and as a native
/// executable (gcc), both at `-O2`.
pub fn build_guest(src: &Path, out_dir: &Path) -> Result<Guest> {
    std::fs::create_dir_all(out_dir)?;
    let stem = src
        .file_stem()
        .context("guest source has no name")?
        .to_string_lossy()
        .into_owned();
    let wasm = out_dir.join(format!("{stem}.wasm"));
    let native = out_dir.join(format!("{stem}.native"));
    compile(
        "clang",
        &[
            "--target=wasm32-wasi".as_ref(),
            "-O2".as_ref(),
            src.as_os_str(),
            "-o".as_ref(),
            wasm.as_os_str(),
        ],
    )
    .context("building the wasm guest (needs Debian's clang, lld and wasi-libc)")?;
    compile(
        "gcc",
        &[
            "-O2".as_ref(),
            src.as_os_str(),
            "-o".as_ref(),
            native.as_os_str(),
        ],
    )
    .context("building the native guest")?;
    Ok(Guest { wasm, native })
}

/// The engine configuration of [`Kernel::new`], spelled out for the
/// reference runtime: cranelift at `Speed`, epoch interruption, fuel as
/// given, the same wasm stack. Memories differ, to the reference's
/// advantage: it keeps wasmtime's copy-on-write initialisation from the
/// module's data, which warden's own memories (made to fork) go without.
pub fn engine_config(settings: &EngineSettings) -> Config {
    let mut config = Config::new();
    config.cranelift_opt_level(OptLevel::Speed);
    config.epoch_interruption(true);
    config.consume_fuel(settings.fuel);
    config.max_wasm_stack(
        settings
            .max_stack
            .unwrap_or(warden_kernel::DEFAULT_MAX_STACK) as usize,
    );
    config
}

pub(crate) fn compat_hash(engine: &Engine) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

pub(crate) fn wasmtime_err(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}

/// A host directory a guest is given, and the guest path it appears at.
#[derive(Clone, Debug)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
}

/// How a run is set up, the same for every runner: the guest's arguments
/// (after `argv[0]`) and the directory granted. Stdout is always discarded
/// (warden `ignore`, wasmtime-wasi a sink, native `/dev/null`).
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub args: Vec<String>,
    pub preopen: Option<Preopen>,
}

/// The policy `warden run` would build for this spec: stdout ignored
/// (`--stdout ignore`), the directory as `--dir HOST::GUEST`.
pub fn run_policy(spec: &RunSpec) -> Result<Policy> {
    let mut policy = Policy {
        args: spec.args.clone(),
        ..Policy::default()
    };
    policy.stdio.stdout = warden_policy::StdioMode::Ignore;
    if let Some(p) = &spec.preopen {
        policy.add_mount(warden_policy::parse_dir_flag(
            &format!("{}::{}", p.host.display(), p.guest),
            false,
        )?);
    }
    policy.validate()?;
    Ok(policy)
}

/// warden: [`Kernel::load`] from a warm compile cache, then [`Kernel::run`].
pub struct WardenRunner {
    pub kernel: Kernel,
    wasm: PathBuf,
    cache: CacheMode,
}

impl WardenRunner {
    /// Creates the kernel and warms the cache in `cache_dir` (a compile
    /// happens here, not in the timed runs).
    pub fn new(wasm: &Path, cache_dir: &Path) -> Result<WardenRunner> {
        let kernel = Kernel::new(EngineSettings::default())?;
        let cache = CacheMode::Dir(cache_dir.to_path_buf());
        // The kernel indexes (and so stops hashing) only a module file last
        // changed over 2 s ago, as a module a user runs is; this one was
        // just built.
        let changed = std::fs::metadata(wasm)?.modified()?;
        let age = changed.elapsed().unwrap_or_default();
        std::thread::sleep(Duration::from_millis(2100).saturating_sub(age));
        kernel.load(wasm, &cache, false, &mut |_| {})?;
        // Likewise, a cached artifact is mapped without hashing it only once
        // it has verified after being left alone for 2 s.
        std::thread::sleep(Duration::from_millis(2100));
        kernel.load(wasm, &cache, false, &mut |_| {})?;
        // Every later load must come from the cache.
        let mut compiled = false;
        kernel.load(wasm, &cache, false, &mut |_| compiled = true)?;
        if compiled {
            bail!(
                "warden's compile cache in {} is not warm after a compile",
                cache_dir.display()
            );
        }
        Ok(WardenRunner {
            kernel,
            wasm: wasm.to_path_buf(),
            cache,
        })
    }

    /// The policy `warden run` would build for this spec ([`run_policy`]).
    pub fn policy(&self, spec: &RunSpec) -> Result<Policy> {
        run_policy(spec)
    }

    /// One run, from reading the module to the guest's exit.
    pub fn run(&self, policy: &Policy) -> Result<i32> {
        self.run_split(policy).map(|(code, _)| code)
    }

    /// [`WardenRunner::run`], also reporting how long `Kernel::load` took
    /// (the rest of the run is `Kernel::run`).
    pub fn run_split(&self, policy: &Policy) -> Result<(i32, Duration)> {
        let start = Instant::now();
        let module = self
            .kernel
            .load(&self.wasm, &self.cache, false, &mut |_| {})?;
        let loaded = start.elapsed();
        let options = RunOptions {
            program: "workload".into(),
            tracer: None,
            cache: self.cache.clone(),
            store: None,
            notes: None,
            bundled: Default::default(),
        };
        let outcome = self.kernel.run(&self.wasm, &module, policy, options)?;
        match outcome {
            Outcome::Exited(code) => Ok((code as i32, loaded)),
            other => bail!("warden: {other:?}"),
        }
    }

    /// The module's bytes, for timing [`Kernel::cache_key`] on its own.
    pub fn module_bytes(&self) -> Result<Vec<u8>> {
        Ok(std::fs::read(&self.wasm)?)
    }
}

/// wasmtime's own preview1 (`wasmtime_wasi::p1`, the preview1-over-preview2
/// adapter the wasmtime CLI uses), on an engine configured as warden's, the
/// module deserialized from its own precompiled artifact each run.
pub struct WasiP1Runner {
    engine: Engine,
    linker: Linker<WasiP1Ctx>,
    cwasm: PathBuf,
}

impl WasiP1Runner {
    /// Compiles `wasm` once and writes the artifact to `cwasm`; checks that
    /// the engine is compatible with `warden`'s, i.e. configured the same.
    pub fn new(wasm: &Path, cwasm: &Path, warden: &Kernel) -> Result<WasiP1Runner> {
        let config = engine_config(warden.settings());
        let mut as_warden = config.clone();
        as_warden.memory_init_cow(false);
        let as_warden = Engine::new(&as_warden).map_err(wasmtime_err)?;
        if compat_hash(&as_warden) != compat_hash(warden.engine()) {
            bail!("the reference engine is not configured as warden's");
        }
        let engine = Engine::new(&config).map_err(wasmtime_err)?;
        let module = Module::from_file(&engine, wasm).map_err(wasmtime_err)?;
        std::fs::write(cwasm, module.serialize().map_err(wasmtime_err)?)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx).map_err(wasmtime_err)?;
        Ok(WasiP1Runner {
            engine,
            linker,
            cwasm: cwasm.to_path_buf(),
        })
    }

    /// One run, from deserializing the module to the guest's exit. The
    /// context is built as the wasmtime CLI builds it (it, too, allows
    /// blocking the current thread, which skips a thread-pool hop per
    /// file operation).
    pub fn run(&self, spec: &RunSpec) -> Result<i32> {
        // SAFETY: the artifact was written by `new` from this engine.
        let module =
            unsafe { Module::deserialize_file(&self.engine, &self.cwasm) }.map_err(wasmtime_err)?;
        let mut builder = WasiCtxBuilder::new();
        builder
            .allow_blocking_current_thread(true)
            .arg("workload")
            .args(&spec.args)
            .stdout(wasmtime_wasi::p2::pipe::SinkOutputStream)
            .inherit_stderr();
        if let Some(p) = &spec.preopen {
            builder
                .preopened_dir(&p.host, &p.guest, FsPerms::ReadWrite)
                .map_err(wasmtime_err)?;
        }
        let mut store = Store::new(&self.engine, builder.build_p1());
        // As warden: epochs are checked, but nothing advances them here.
        store.set_epoch_deadline(1);
        let instance = self
            .linker
            .instantiate(&mut store, &module)
            .map_err(wasmtime_err)?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(wasmtime_err)?;
        match start.call(&mut store, ()) {
            Ok(()) => Ok(0),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => Ok(exit.0),
                None => Err(wasmtime_err(e)),
            },
        }
    }
}

/// The native build: spawn, run, wait, stdout to `/dev/null`. Includes the
/// cost of a process (fork, exec, dynamic loading).
pub fn native_run(native: &Path, args: &[String]) -> Result<i32> {
    let status = Command::new(native)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", native.display()))?;
    status
        .code()
        .with_context(|| format!("{} ended by a signal", native.display()))
}

/// Times `f`, which must report the guest's exit code 0.
pub fn time(what: &str, f: impl FnOnce() -> Result<i32>) -> Result<Duration> {
    let start = Instant::now();
    let code = f().with_context(|| what.to_string())?;
    let took = start.elapsed();
    if code != 0 {
        bail!("{what}: the guest exited with {code}");
    }
    Ok(took)
}

/// The order in which repetition `rep` runs `n` runtimes: the
/// repetitions go through every permutation in turn, so each runtime runs
/// equally often first, last, and right after each of the others. A plain
/// rotation (A B C, B C A, C A B) always runs B right after A, never the
/// other way round, and what one runtime leaves behind (freed memory,
/// unmapped code, cold caches) then always falls on the same other one:
/// measured here, that alone moved a ratio of two in-process runtimes by
/// about 10 %.
pub fn run_order(rep: usize, n: usize) -> Vec<usize> {
    let mut left: Vec<usize> = (0..n).collect();
    let mut order = Vec::with_capacity(n);
    // `rep` in the factorial number system picks one of the n! orders.
    let mut r = rep;
    for k in (1..=n).rev() {
        order.push(left.remove(r % k));
        r /= k;
    }
    order
}

/// The median of the samples (the mean of the middle two for an even count).
pub fn median(samples: &[Duration]) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    let mut s = samples.to_vec();
    s.sort();
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2
    }
}

/// Milliseconds, for the table.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Writes a test file of `size` bytes whose every byte is non-zero (the
/// guest checks that it saw data).
pub fn write_pattern_file(path: &Path, size: u64) -> Result<()> {
    use std::io::Write;
    let block: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8 + 1).collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.into_inner()?.sync_all()?;
    Ok(())
}

/// A markdown-style table with right-aligned columns after the first.
pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut out = String::from("|");
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 {
                out.push_str(&format!(" {cell}{} |", " ".repeat(pad)));
            } else {
                out.push_str(&format!(" {}{cell} |", " ".repeat(pad)));
            }
        }
        out
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    let mut sep = String::from("|");
    for (i, w) in widths.iter().enumerate() {
        if i == 0 {
            sep.push_str(&format!("{}|", "-".repeat(w + 2)));
        } else {
            sep.push_str(&format!("{}:|", "-".repeat(w + 1)));
        }
    }
    out.push_str(&sep);
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_orders_go_through_every_permutation() {
        let orders: std::collections::BTreeSet<Vec<usize>> =
            (0..6).map(|r| run_order(r, 3)).collect();
        assert_eq!(orders.len(), 6);
        assert_eq!(run_order(6, 3), run_order(0, 3));
        // Each runtime is right before each other one equally often.
        let mut follows = std::collections::HashMap::new();
        for r in 0..6 {
            for w in run_order(r, 3).windows(2) {
                *follows.entry((w[0], w[1])).or_insert(0) += 1;
            }
        }
        assert_eq!(follows.len(), 6);
        assert!(follows.values().all(|&c| c == 2));
    }

    #[test]
    fn median_of_odd_and_even() {
        let d = Duration::from_millis;
        assert_eq!(median(&[d(3), d(1), d(2)]), d(2));
        assert_eq!(
            median(&[d(4), d(1), d(3), d(2)]),
            Duration::from_micros(2500)
        );
    }

    #[test]
    fn table_aligns() {
        let t = format_table(&["a", "bb"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "| a   | bb |\n|-----|---:|\n| xyz |  1 |\n");
    }
}
