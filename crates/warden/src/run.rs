//! `warden run` and `warden compile`.

use crate::flags::PolicyFlags;
use crate::workload::{self, Code};
use crate::{state, Failure};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use warden_components::ComponentRunOptions;
use warden_kernel::trace::Tracer;
use warden_kernel::{CacheMode, CompileEvent, EngineSettings, Kernel, KernelError, RunOptions};
use warden_policy::{MountSource, Policy};

#[derive(Args)]
pub struct RunArgs {
    /// A Warden.toml workload config; flags override it (not with a bundle)
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) policy: PolicyFlags,
    /// Refuse to run unless the file's SHA-256 is this (`sha256:HEX`)
    #[arg(long = "expect-digest", value_name = "sha256:HEX")]
    pub(crate) expect_digest: Option<String>,
    /// The sealed store file [default: $WARDEN_STORE, else DATA_DIR/warden/store.redb]
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// The sealed store's root key file [default: $WARDEN_KEY_FILE, else DATA_DIR/warden/store.key]
    #[arg(long = "key-file", value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Do not print a note on the first denial of each subsystem
    #[arg(long)]
    quiet: bool,
    /// Trace every syscall to stderr, or to FILE
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "-")]
    trace: Option<String>,
    #[command(flatten)]
    cache: CacheFlags,
    /// Accept a module precompiled by `warden compile` (trusted native code)
    #[arg(long = "allow-precompiled")]
    allow_precompiled: bool,
    /// The module (a .wasm core module, or .wat text) or bundle, then the
    /// guest's arguments: everything after it goes to the guest
    #[arg(value_name = "MODULE [ARGS]", required = true, num_args = 1.., trailing_var_arg = true)]
    command: Vec<String>,
}

impl RunArgs {
    pub(crate) fn module(&self) -> PathBuf {
        PathBuf::from(self.command.first().cloned().unwrap_or_default())
    }

    pub(crate) fn guest_args(&self) -> &[String] {
        self.command.get(1..).unwrap_or_default()
    }

    pub(crate) fn target(&self) -> workload::Target<'_> {
        workload::Target {
            module: self.module(),
            guest_args: self.guest_args(),
            config: self.config.as_deref(),
            policy: &self.policy,
            expect_digest: &self.expect_digest,
        }
    }
}

#[derive(Args)]
pub struct CompileArgs {
    /// The module to compile
    module: PathBuf,
    /// Where to write the artifact (default: MODULE with extension .cwasm)
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,
    /// Compile with fuel metering, for runs with --fuel
    #[arg(long = "fuel-metering")]
    fuel_metering: bool,
}

pub(crate) fn kernel_failure(e: KernelError) -> Failure {
    if e.is_bad_input() {
        Failure::bad_input(e)
    } else {
        Failure::host(e)
    }
}

/// Where compiled code is cached: the flags of every command that loads
/// code (`run`, `bundle`, `serve`, `deploy`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CacheFlags {
    /// Compile cache directory [default: CACHE_DIR/warden]
    #[arg(long = "cache-dir", value_name = "DIR", env = "WARDEN_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Neither read nor write the compile cache
    #[arg(long = "no-cache")]
    no_cache: bool,
}

impl CacheFlags {
    /// The cache these flags select: off, the given directory, or the
    /// user's cache directory.
    pub(crate) fn mode(&self) -> CacheMode {
        if self.no_cache {
            return CacheMode::Off;
        }
        match &self.cache_dir {
            Some(dir) => CacheMode::Dir(dir.clone()),
            None => match dirs::cache_dir() {
                Some(dir) => CacheMode::Dir(dir.join("warden")),
                None => CacheMode::Off,
            },
        }
    }
}

/// A spinner while a compile takes long; hidden when stderr is no terminal.
pub(crate) fn progress(module: &Path) -> impl FnMut(CompileEvent) {
    let name = module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut bar: Option<indicatif::ProgressBar> = None;
    move |event| match event {
        CompileEvent::Started => {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_message(format!("compiling {name}"));
            b.enable_steady_tick(Duration::from_millis(120));
            bar = Some(b);
        }
        CompileEvent::Finished(_) => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        }
    }
}

fn tracer(target: &Option<String>) -> Result<Option<Arc<Tracer>>, Failure> {
    Ok(match target.as_deref() {
        None => None,
        Some("-") => Some(Arc::new(Tracer::new(Box::new(std::io::stderr())))),
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| Failure::bad_input(format!("cannot create trace file {path}: {e}")))?;
            Some(Arc::new(Tracer::new(Box::new(std::io::BufWriter::new(
                file,
            )))))
        }
    })
}

/// The sealed store file and its key file: flag, else variable, else the
/// default under the data directory (an error only when there is none).
pub(crate) struct StoreFiles {
    pub(crate) store: anyhow::Result<PathBuf>,
    pub(crate) key_file: anyhow::Result<PathBuf>,
}

impl StoreFiles {
    pub(crate) fn of(store: &Option<PathBuf>, key_file: &Option<PathBuf>) -> StoreFiles {
        let path = |given: &Option<PathBuf>, env: &str, file: &str| match given {
            Some(p) => Ok(p.clone()),
            None => crate::kv::default_path(env, file),
        };
        StoreFiles {
            store: path(store, "WARDEN_STORE", "store.redb"),
            key_file: path(key_file, "WARDEN_KEY_FILE", "store.key"),
        }
    }

    /// Opens (creating if needed) the store with its key file.
    pub(crate) fn open(
        &self,
        durability: warden_seal::Durability,
    ) -> Result<warden_seal::Store, Failure> {
        let path = |p: &anyhow::Result<PathBuf>| match p {
            Ok(p) => Ok(p.clone()),
            Err(e) => Err(Failure::bad_input(format!("{e:#}"))),
        };
        let store = path(&self.store)?;
        let key_file = path(&self.key_file)?;
        let local = crate::kv::etcd_url(&store).is_none();
        if let Some(dir) = store
            .parent()
            .filter(|d| local && !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::bad_input(format!("cannot create {}: {e}", dir.display())))?;
        }
        crate::kv::open_with(&store, &key_file, true, durability).map_err(|e| {
            // An etcd error names its cluster itself.
            match local {
                true => Failure::bad_input(format!("sealed store {}: {e}", store.display())),
                false => Failure::bad_input(format!("sealed store: {e}")),
            }
        })
    }

    /// warden's own state that no mount may reach, with `cache`.
    pub(crate) fn state(&self, cache: &CacheMode) -> Vec<state::StatePath> {
        let cache_dir = match cache {
            CacheMode::Dir(dir) => Some(dir.as_path()),
            CacheMode::Off => None,
        };
        let mut paths = state::state_paths(
            cache_dir,
            self.store.as_deref().ok(),
            self.key_file.as_deref().ok(),
        );
        if let Ok(key) = crate::attest::attest_key_path(&None) {
            paths.push(state::attest_key(&key));
        }
        paths
    }
}

/// The sealed store, opened only when the policy has sealed mounts.
fn sealed_store(
    files: &StoreFiles,
    policy: &Policy,
) -> Result<Option<warden_seal::Store>, Failure> {
    if !policy
        .mounts
        .iter()
        .any(|m| matches!(m.source, MountSource::Sealed { .. }))
    {
        return Ok(None);
    }
    files.open(warden_seal::Durability::Eventual).map(Some)
}

/// Where the denial notes go: stderr, unless `--quiet`.
fn notes(quiet: bool) -> Option<Box<dyn std::io::Write + Send>> {
    (!quiet).then(|| Box::new(std::io::stderr()) as Box<dyn std::io::Write + Send>)
}

/// `argv[0]`: the file name, as wasmtime gives it; the host directories
/// above it are none of the guest's business.
fn program_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

pub fn run(args: RunArgs) -> Result<u8, Failure> {
    let workload = workload::resolve(&args.target())?;
    let policy = &workload.policy;
    let cache = args.cache.mode();
    let files = StoreFiles::of(&args.store, &args.key_file);
    state::check_run_mounts(&policy.mounts, || files.state(&cache))?;
    let module_path = &workload.path;
    // A component: its bytes (from a bundle, or read for --expect-digest),
    // or a file the loader reads only if the cache does not know it.
    let component: Option<Option<&[u8]>> = match &workload.code {
        Code::Component(bytes) => Some(Some(bytes)),
        Code::File(path) if crate::component::is_component_file(path) => Some(None),
        _ => None,
    };
    if let Some(bytes) = component {
        for (given, flag) in [
            (!policy.listen.is_empty(), "--listen"),
            (policy.entrypoint.is_some(), "--entrypoint"),
        ] {
            if given {
                return Err(Failure::bad_input(format!(
                    "{}: {flag} is not available for components yet",
                    module_path.display()
                )));
            }
        }
        let options = ComponentRunOptions {
            program: program_name(module_path),
            notes: notes(args.quiet),
            store: sealed_store(&files, policy)?,
            bundled: workload.bundled.clone(),
            tracer: tracer(&args.trace)?,
        };
        return crate::component::run(module_path, bytes, policy, &cache, options);
    }
    let settings = EngineSettings {
        fuel: policy.limits.fuel.is_some(),
        max_stack: policy.limits.max_stack,
    };
    let kernel = Kernel::new(settings).map_err(|e| Failure::host(format!("{e:#}")))?;
    let mut progress = progress(module_path);
    let module = match &workload.code {
        Code::File(path) => kernel.load(path, &cache, args.allow_precompiled, &mut progress),
        Code::Module(bytes) => kernel.load_bytes(
            module_path,
            bytes,
            &cache,
            args.allow_precompiled && !workload.is_bundle,
            &mut progress,
        ),
        // The components runtime takes these over.
        Code::Component(_) => Err(KernelError::Component {
            path: module_path.clone(),
        }),
    }
    .map_err(kernel_failure)?;
    let store = sealed_store(&files, policy)?;
    let options = RunOptions {
        program: program_name(module_path),
        tracer: tracer(&args.trace)?,
        cache,
        store: store.clone(),
        notes: notes(args.quiet),
        bundled: workload.bundled.clone(),
    };
    let outcome = kernel
        .run(module_path, &module, policy, options)
        .map_err(kernel_failure)?;
    if let Some(message) = outcome.message() {
        eprintln!("warden: {message}");
    }
    // The store is opened with eventual durability: this makes the run's
    // writes durable and records them in the rollback state. Dropping the
    // store would do the same but could not report a failure, and a state
    // that silently stays behind would accept an older copy of the store.
    if let Some(store) = store {
        store.flush().map_err(Failure::host)?;
    }
    Ok(outcome.exit_code() as u8)
}

pub fn compile(args: CompileArgs) -> Result<u8, Failure> {
    let kernel = Kernel::new(EngineSettings {
        fuel: args.fuel_metering,
        max_stack: None,
    })
    .map_err(|e| Failure::host(format!("{e:#}")))?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| args.module.with_extension("cwasm"));
    kernel
        .precompile(&args.module, &out)
        .map_err(kernel_failure)?;
    Ok(0)
}
