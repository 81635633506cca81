//! `warden run` and `warden compile`.

use crate::{state, Failure};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use warden_kernel::trace::Tracer;
use warden_kernel::{CacheMode, CompileEvent, EngineSettings, Kernel, KernelError, RunOptions};
use warden_policy::{
    load_policy, parse_dir_flag, parse_duration, parse_env_flag, parse_mount_flag,
    parse_sealed_flag, MountSource, Policy, PolicyError, Size, StdioMode, Subsystem,
};

#[derive(Args)]
pub struct RunArgs {
    /// A Warden.toml workload config; flags override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Preopen a host directory, read-write (`:ro` suffix: read-only)
    #[arg(long = "dir", value_name = "HOST[::GUEST][:ro]")]
    dirs: Vec<String>,
    /// Preopen a host directory, read-only
    #[arg(long = "dir-ro", value_name = "HOST[::GUEST]")]
    dirs_ro: Vec<String>,
    /// Virtual read-only mount, captured into memory at start
    #[arg(long = "mount", value_name = "GUEST=HOSTDIR")]
    mounts: Vec<String>,
    /// A directory whose files are entries of namespace NAME of the sealed store
    #[arg(long = "sealed", value_name = "GUEST=NAME")]
    sealed: Vec<String>,
    /// The sealed store file [default: $WARDEN_STORE, else DATA_DIR/warden/store.redb]
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// The sealed store's root key file [default: $WARDEN_KEY_FILE, else DATA_DIR/warden/store.key]
    #[arg(long = "key-file", value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Set a guest variable (`K` alone passes the host's value)
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Pass a host variable through, if set
    #[arg(long = "env-inherit", value_name = "NAME")]
    env_inherit: Vec<String>,
    /// Allow a subsystem: clocks, random, exit, env, fs, sockets, process
    #[arg(long, value_name = "SUBSYS")]
    allow: Vec<String>,
    /// Deny a subsystem: calls fail with ENOTCAPABLE
    #[arg(long, value_name = "SUBSYS")]
    deny: Vec<String>,
    /// allow | deny | ignore (default: ignore)
    #[arg(long, value_name = "MODE")]
    stdin: Option<String>,
    /// allow | deny | ignore (default: allow)
    #[arg(long, value_name = "MODE")]
    stdout: Option<String>,
    /// allow | deny | ignore (default: allow)
    #[arg(long, value_name = "MODE")]
    stderr: Option<String>,
    /// Let a component bind or connect to ADDR[:PORT] or NET/LEN[:PORT] (repeatable)
    #[arg(long = "allow-net", value_name = "ADDR|CIDR")]
    allow_net: Vec<String>,
    /// Let a component send HTTP requests to an origin, e.g. https://*.example.com (repeatable)
    #[arg(long = "allow-http", value_name = "ORIGIN")]
    allow_http: Vec<String>,
    /// Preopen a listening TCP socket (after the directories)
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,
    /// Linear memory limit of each cage, e.g. 64MiB
    #[arg(long = "max-memory", value_name = "SIZE")]
    max_memory: Option<String>,
    /// Linear memory limit of all cages of the run together [default: 4GiB]
    #[arg(long = "max-total-memory", value_name = "SIZE")]
    max_total_memory: Option<String>,
    /// Native stack for wasm frames, e.g. 1MiB
    #[arg(long = "max-stack", value_name = "SIZE")]
    max_stack: Option<String>,
    /// Instruction budget of the whole run, every cage (0 = unlimited)
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Wall-clock limit, e.g. 30s
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Export to call (default `_start`)
    #[arg(long, value_name = "NAME")]
    entrypoint: Option<String>,
    /// Do not print a note on the first denial of each subsystem
    #[arg(long)]
    quiet: bool,
    /// Trace every syscall to stderr, or to FILE
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "-")]
    trace: Option<String>,
    /// Compiled-module cache directory
    #[arg(long = "cache-dir", value_name = "DIR", env = "WARDEN_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Neither read nor write the compile cache
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Accept a module precompiled by `warden compile` (trusted native code)
    #[arg(long = "allow-precompiled")]
    allow_precompiled: bool,
    /// The module (a .wasm core module, or .wat text), then the guest's
    /// arguments: everything after the module goes to the guest
    #[arg(value_name = "MODULE [ARGS]", required = true, num_args = 1.., trailing_var_arg = true)]
    command: Vec<String>,
}

impl RunArgs {
    fn module(&self) -> PathBuf {
        PathBuf::from(self.command.first().cloned().unwrap_or_default())
    }

    fn guest_args(&self) -> &[String] {
        self.command.get(1..).unwrap_or_default()
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

fn bad(e: PolicyError) -> Failure {
    Failure::bad_input(e)
}

fn kernel_failure(e: KernelError) -> Failure {
    if e.is_bad_input() {
        Failure::bad_input(e)
    } else {
        Failure::host(e)
    }
}

/// The config, then every flag on top of it.
fn resolve_policy(args: &RunArgs) -> Result<Policy, Failure> {
    let mut policy = match &args.config {
        Some(path) => load_policy(path).map_err(bad)?,
        None => Policy::default(),
    };
    if !args.guest_args().is_empty() {
        policy.args = args.guest_args().to_vec();
    }
    for dir in &args.dirs {
        policy.add_mount(parse_dir_flag(dir, false).map_err(bad)?);
    }
    for dir in &args.dirs_ro {
        policy.add_mount(parse_dir_flag(dir, true).map_err(bad)?);
    }
    for mount in &args.mounts {
        policy.add_mount(parse_mount_flag(mount).map_err(bad)?);
    }
    for mount in &args.sealed {
        policy.add_mount(parse_sealed_flag(mount).map_err(bad)?);
    }
    for name in &args.env_inherit {
        policy.inherit_env(name);
    }
    for var in &args.env {
        match parse_env_flag(var).map_err(bad)? {
            (key, Some(value)) => policy.set_env(&key, &value),
            (key, None) => policy.inherit_env(&key),
        }
    }
    for (names, allowed) in [(&args.allow, true), (&args.deny, false)] {
        for name in names {
            let sub: Subsystem = name.parse().map_err(bad)?;
            policy.allow.insert(sub, allowed);
        }
    }
    let mode = |flag: &str, v: &Option<String>| -> Result<Option<StdioMode>, Failure> {
        v.as_deref()
            .map(|m| {
                m.parse()
                    .map_err(|e: PolicyError| Failure::bad_input(format!("invalid --{flag}: {e}")))
            })
            .transpose()
    };
    if let Some(m) = mode("stdin", &args.stdin)? {
        policy.stdio.stdin = m;
    }
    if let Some(m) = mode("stdout", &args.stdout)? {
        policy.stdio.stdout = m;
    }
    if let Some(m) = mode("stderr", &args.stderr)? {
        policy.stdio.stderr = m;
    }
    for addr in &args.listen {
        let parsed = addr.parse().map_err(|_| {
            Failure::bad_input(format!(
                "invalid --listen: `{addr}` is not an address such as 127.0.0.1:8080"
            ))
        })?;
        policy.listen.push(parsed);
    }
    for rule in &args.allow_net {
        let rule = rule
            .parse()
            .map_err(|e| Failure::bad_input(format!("invalid --allow-net: {e}")))?;
        policy.net.push(rule);
    }
    for origin in &args.allow_http {
        let origin = origin
            .parse()
            .map_err(|e| Failure::bad_input(format!("invalid --allow-http: {e}")))?;
        policy.http.push(origin);
    }
    if let Some(v) = &args.max_memory {
        policy.limits.max_memory = Some(Size::parse_flag("--max-memory", v).map_err(bad)?);
    }
    if let Some(v) = &args.max_total_memory {
        policy.limits.max_total_memory =
            Some(Size::parse_flag("--max-total-memory", v).map_err(bad)?);
    }
    if let Some(v) = &args.max_stack {
        policy.limits.max_stack = Some(Size::parse_flag("--max-stack", v).map_err(bad)?);
    }
    if let Some(fuel) = args.fuel {
        policy.limits.fuel = (fuel > 0).then_some(fuel);
    }
    if let Some(v) = &args.timeout {
        let t = parse_duration(v)
            .map_err(|reason| Failure::bad_input(format!("invalid --timeout: {reason}")))?;
        if t.is_zero() {
            return Err(Failure::bad_input(
                "invalid --timeout: must be more than zero",
            ));
        }
        policy.limits.timeout = Some(t);
    }
    if let Some(e) = &args.entrypoint {
        policy.entrypoint = Some(e.clone());
    }
    policy.validate().map_err(bad)?;
    Ok(policy)
}

fn cache_mode(args: &RunArgs) -> CacheMode {
    if args.no_cache {
        return CacheMode::Off;
    }
    match &args.cache_dir {
        Some(dir) => CacheMode::Dir(dir.clone()),
        None => match dirs::cache_dir() {
            Some(dir) => CacheMode::Dir(dir.join("warden")),
            None => CacheMode::Off,
        },
    }
}

/// A spinner while a compile takes long; hidden when stderr is no terminal.
fn progress(module: &Path) -> impl FnMut(CompileEvent) {
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
struct StoreFiles {
    store: anyhow::Result<PathBuf>,
    key_file: anyhow::Result<PathBuf>,
}

impl StoreFiles {
    fn of(args: &RunArgs) -> StoreFiles {
        let path = |given: &Option<PathBuf>, env: &str, file: &str| match given {
            Some(p) => Ok(p.clone()),
            None => crate::kv::default_path(env, file),
        };
        StoreFiles {
            store: path(&args.store, "WARDEN_STORE", "store.redb"),
            key_file: path(&args.key_file, "WARDEN_KEY_FILE", "store.key"),
        }
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
    let path = |p: &anyhow::Result<PathBuf>| match p {
        Ok(p) => Ok(p.clone()),
        Err(e) => Err(Failure::bad_input(format!("{e:#}"))),
    };
    let store = path(&files.store)?;
    let key_file = path(&files.key_file)?;
    if let Some(dir) = store.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::bad_input(format!("cannot create {}: {e}", dir.display())))?;
    }
    crate::kv::open_with(&store, &key_file, true, warden_seal::Durability::Eventual)
        .map(Some)
        .map_err(|e| Failure::bad_input(format!("sealed store {}: {e}", store.display())))
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
    let policy = resolve_policy(&args)?;
    let cache = cache_mode(&args);
    let files = StoreFiles::of(&args);
    let cache_dir = match &cache {
        CacheMode::Dir(dir) => Some(dir.as_path()),
        CacheMode::Off => None,
    };
    let state = state::state_paths(
        cache_dir,
        files.store.as_deref().ok(),
        files.key_file.as_deref().ok(),
    );
    state::check_mounts(&policy.mounts, &state)?;
    let module_path = args.module();
    if crate::component::is_component_file(&module_path) {
        return crate::component::run(
            &module_path,
            &program_name(&module_path),
            &policy,
            args.quiet,
        );
    }
    let settings = EngineSettings {
        fuel: policy.limits.fuel.is_some(),
        max_stack: policy.limits.max_stack,
    };
    let kernel = Kernel::new(settings).map_err(|e| Failure::host(format!("{e:#}")))?;
    let module = kernel
        .load(
            &module_path,
            &cache,
            args.allow_precompiled,
            &mut progress(&module_path),
        )
        .map_err(kernel_failure)?;
    let store = sealed_store(&files, &policy)?;
    let options = RunOptions {
        program: program_name(&module_path),
        tracer: tracer(&args.trace)?,
        cache,
        store: store.clone(),
        notes: (!args.quiet).then(|| Box::new(std::io::stderr()) as Box<dyn std::io::Write + Send>),
    };
    let outcome = kernel
        .run(&module_path, &module, &policy, options)
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
