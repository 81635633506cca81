//! What the `components` bench (issue 11) needs: the Rust guest built at
//! run time as a wasm32-wasip2 component and natively ([`build_rust_guest`]),
//! and two runners of the component, warden's ([`WardenComponentRunner`],
//! as `warden run` runs a component) and wasmtime-wasi's own WASI 0.2
//! ([`WasiP2Runner`], as the wasmtime CLI runs one), on engines configured
//! alike. The native limit is [`crate::native_run`] of the host build.

use crate::{compat_hash, wasmtime_err, RunSpec};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use warden_components::{ComponentRunOptions, Components, Loaded};
use warden_kernel::{CacheMode, EngineSettings, Outcome};
use warden_policy::Policy;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The Rust guest's crate: `guests/workload-rs`, not in the workspace.
pub fn rust_guest_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guests/workload-rs/Cargo.toml")
}

/// The Rust guest, built for both targets.
#[derive(Clone, Debug)]
pub struct RustGuest {
    /// `cargo build --release --target wasm32-wasip2`: a `wasi:cli/command`
    /// component.
    pub component: PathBuf,
    /// `cargo build --release` for the host.
    pub native: PathBuf,
}

/// Builds `guests/workload-rs` with cargo into `target_dir`, as a component
/// and natively, with the same profile (`opt-level = 2`, `panic = "abort"`).
pub fn build_rust_guest(target_dir: &Path) -> Result<RustGuest> {
    let manifest = rust_guest_manifest();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for target in [Some("wasm32-wasip2"), None] {
        let mut cmd = Command::new(&cargo);
        cmd.args(["build", "--release", "--quiet"])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir)
            // The outer `cargo bench` may have set these for its own build.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        if let Some(target) = target {
            cmd.args(["--target", target]);
        }
        let out = cmd
            .output()
            .with_context(|| format!("cannot run {cmd:?}"))?;
        if !out.status.success() {
            bail!(
                "building the Rust guest for {} failed ({}; the wasm32-wasip2 target comes \
                 from scripts/setup.sh):\n{}",
                target.unwrap_or("the host"),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let guest = RustGuest {
        component: target_dir.join("wasm32-wasip2/release/workload.wasm"),
        native: target_dir.join("release/workload"),
    };
    for path in [&guest.component, &guest.native] {
        if !path.is_file() {
            bail!("the Rust guest's build made no {}", path.display());
        }
    }
    Ok(guest)
}

/// The engine configuration of [`Components::new`], for the reference
/// runtime too: cranelift at `Speed`, the component model with its async
/// parts, epoch interruption, fuel as given, the same wasm and async
/// stacks. Unlike for core modules, nothing differs: warden's components
/// keep wasmtime's own memories.
pub fn component_engine_config(settings: &EngineSettings) -> Config {
    warden_components::engine_config(settings)
}

/// warden, as `warden run` runs a component: [`Components::load_file`]
/// from a warm compile cache (whose index knows the settled file, so it
/// is neither read nor hashed), [`Components::run`].
pub struct WardenComponentRunner {
    pub components: Components,
    component: PathBuf,
    cache: CacheMode,
}

impl WardenComponentRunner {
    /// Creates the engine (as `warden run` does for the default policy) and
    /// warms the cache in `cache_dir` (a compile happens here, not in the
    /// timed runs).
    pub fn new(component: &Path, cache_dir: &Path) -> Result<WardenComponentRunner> {
        let components = Components::new(EngineSettings::default()).map_err(wasmtime_err)?;
        let cache = CacheMode::Dir(cache_dir.to_path_buf());
        let runner = WardenComponentRunner {
            components,
            component: component.to_path_buf(),
            cache,
        };
        runner.load()?;
        // A cached artifact is mapped without checking its MAC over all of
        // it only once it has verified after being left alone for 2 s.
        std::thread::sleep(Duration::from_millis(2100));
        runner.load()?;
        // Every later load must come from the cache.
        let (_, compiled) = runner.load()?;
        if compiled {
            bail!(
                "warden's compile cache in {} is not warm after a compile",
                cache_dir.display()
            );
        }
        Ok(runner)
    }

    /// `warden run`'s load, [`Components::load_file`]; also whether that
    /// compiled.
    pub fn load(&self) -> Result<(Loaded, bool)> {
        let mut compiled = false;
        let loaded = self
            .components
            .load_file(&self.component, &self.cache, &mut |_| compiled = true)?;
        Ok((loaded, compiled))
    }

    /// The component's bytes, for timing parts of a load on their own.
    pub fn component_bytes(&self) -> Result<Vec<u8>> {
        Ok(std::fs::read(&self.component)?)
    }

    /// [`WardenComponentRunner::run`], also reporting how long the load
    /// took (the rest of the run is [`Components::run`]).
    pub fn run_split(&self, policy: &Policy) -> Result<(i32, Duration)> {
        let start = Instant::now();
        let (loaded, _) = self.load()?;
        let took = start.elapsed();
        let options = ComponentRunOptions {
            program: "workload".into(),
            notes: None,
            store: None,
            bundled: Default::default(),
            tracer: None,
        };
        let outcome = self
            .components
            .run(&self.component, &loaded, policy, options)?;
        match outcome {
            Outcome::Exited(code) => Ok((code as i32, took)),
            other => bail!("warden: {other:?}"),
        }
    }

    /// One run, from reading the component to the guest's exit.
    pub fn run(&self, policy: &Policy) -> Result<i32> {
        self.run_split(policy).map(|(code, _)| code)
    }
}

/// The store data of a [`WasiP2Runner`] run.
pub struct P2Host {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for P2Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// wasmtime's own WASI 0.2 (`wasmtime_wasi::p2`, all of it from
/// wasmtime-wasi, filesystem included) on an engine configured as
/// warden's, the component loaded each run ([`P2Load`]) and run as
/// `wasi:cli/command` on a tokio current-thread runtime. The engine, the
/// linker and the runtime are made once.
pub struct WasiP2Runner {
    engine: Engine,
    linker: Linker<P2Host>,
    runtime: tokio::runtime::Runtime,
    load: P2Load,
}

/// How a [`WasiP2Runner`] gets its component on each run.
enum P2Load {
    /// `Component::deserialize_file` of an artifact compiled beforehand,
    /// taken on trust (`wasmtime run --allow-precompiled` of a `wasmtime
    /// compile` output): wasmtime's fastest start.
    Precompiled(PathBuf),
    /// `Component::from_file` of the `.wasm` with wasmtime's own compile
    /// cache warm, as `wasmtime run FILE` starts.
    Cached(PathBuf),
}

impl WasiP2Runner {
    /// Compiles `component` once and writes the artifact to `cwasm`; checks
    /// that the engine is compatible with `warden`'s, i.e. configured the
    /// same.
    pub fn new(component: &Path, cwasm: &Path, warden: &Components) -> Result<WasiP2Runner> {
        let engine = Self::engine(None, warden)?;
        let compiled = Component::from_file(&engine, component).map_err(wasmtime_err)?;
        std::fs::write(cwasm, compiled.serialize().map_err(wasmtime_err)?)?;
        Self::with(engine, P2Load::Precompiled(cwasm.to_path_buf()))
    }

    /// With wasmtime's own compile cache in `cache_dir`, warmed here by a
    /// first compile of `component`.
    pub fn with_cache(
        component: &Path,
        cache_dir: &Path,
        warden: &Components,
    ) -> Result<WasiP2Runner> {
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(cache_dir);
        let cache = wasmtime::Cache::new(cache).map_err(wasmtime_err)?;
        let engine = Self::engine(Some(cache), warden)?;
        let start = Instant::now();
        Component::from_file(&engine, component).map_err(wasmtime_err)?;
        let first = start.elapsed();
        let start = Instant::now();
        Component::from_file(&engine, component).map_err(wasmtime_err)?;
        // A hit takes about a millisecond; a compile, hundreds (or no more
        // than the first load, if that was a hit too).
        if start.elapsed() > first.max(Duration::from_millis(20)) {
            bail!(
                "wasmtime's compile cache in {} is not warm after a compile",
                cache_dir.display()
            );
        }
        Self::with(engine, P2Load::Cached(component.to_path_buf()))
    }

    fn engine(cache: Option<wasmtime::Cache>, warden: &Components) -> Result<Engine> {
        let mut config = component_engine_config(&EngineSettings::default());
        config.cache(cache);
        let engine = Engine::new(&config).map_err(wasmtime_err)?;
        if compat_hash(&engine) != compat_hash(warden.engine()) {
            bail!("the reference engine is not configured as warden's");
        }
        Ok(engine)
    }

    fn with(engine: Engine, load: P2Load) -> Result<WasiP2Runner> {
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(wasmtime_err)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(WasiP2Runner {
            engine,
            linker,
            runtime,
            load,
        })
    }

    /// One run, from loading the component to the guest's exit. The
    /// context is built as the wasmtime CLI builds it (it, too, allows
    /// blocking the current thread, so that file reads skip tokio's
    /// blocking pool).
    pub fn run(&self, spec: &RunSpec) -> Result<i32> {
        let component = match &self.load {
            // SAFETY: the artifact was written by `new` from this engine.
            P2Load::Precompiled(cwasm) => unsafe {
                Component::deserialize_file(&self.engine, cwasm)
            },
            P2Load::Cached(wasm) => Component::from_file(&self.engine, wasm),
        }
        .map_err(wasmtime_err)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(wasmtime_err)?;
        let pre = wasmtime_wasi::p2::bindings::CommandPre::new(pre).map_err(wasmtime_err)?;
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
        let host = P2Host {
            ctx: builder.build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, host);
        // As warden: epochs are checked, but nothing advances them here.
        store.set_epoch_deadline(1);
        let result = self.runtime.block_on(async {
            let command = pre.instantiate_async(&mut store).await?;
            command.wasi_cli_run().call_run(&mut store).await
        });
        match result {
            Ok(Ok(())) => Ok(0),
            Ok(Err(())) => Ok(1),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => Ok(exit.0),
                None => Err(wasmtime_err(e)),
            },
        }
    }
}
