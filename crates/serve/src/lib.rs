//! `warden serve`: many `wasi:http` apps in one host. Each request gets a
//! fresh instance from the pooling allocator under its app's policy and
//! limits; state lives only in the sealed store (`wasi:keyvalue`, sealed
//! mounts); apps are redeployed while serving; Prometheus metrics and a
//! health endpoint for operations.

#![forbid(unsafe_code)]

pub mod app;
pub mod attested;
pub mod deploy;
mod host;
mod log;
mod logging;
pub mod manifest;
pub mod metrics;
pub mod published;
pub mod route;
pub mod server;

pub use attested::Attestor;
pub use deploy::Source;
pub use manifest::{AppSpec, Manifest, ManifestError, ServerSettings};

use app::{Runtime, EPOCH_TICK};
use deploy::Deployer;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use warden_kernel::{CacheMode, EngineSettings};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Where `warden serve` listens when neither the flag nor the manifest says
/// (as `wasmtime serve`'s default port, but loopback only).
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Instances alive at once, across all apps, when not given.
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;

/// How `warden serve` runs.
pub struct Options {
    pub source: Source,
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    /// TLS: none, from PEM files, or attested.
    pub tls: Tls,
    /// Where the apps' state lives.
    pub store: warden_seal::Store,
    pub cache: CacheMode,
    /// Whether any app may have a fuel limit (instrumented code is slower).
    pub fuel: bool,
    /// How often to look for changed files; `None`: only on SIGHUP.
    pub watch: Option<Duration>,
    pub max_instances: u32,
    /// Run on every app's policy before it loads.
    pub check_policy: app::PolicyCheck,
}

/// How connections are secured.
pub enum Tls {
    /// Plain HTTP.
    None,
    /// A PEM certificate chain and its key.
    Files { cert: PathBuf, key: PathBuf },
    /// A certificate made by warden whose extension carries evidence for
    /// the runtime and every app (`docs/attestation.md`).
    Attested {
        source: Arc<dyn warden_attest::EvidenceSource>,
        runtime: warden_attest::RuntimeMeasurement,
    },
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad input (exit 2): a manifest, an app, a TLS file, an address.
    #[error("{0}")]
    BadInput(String),
    /// warden itself failed.
    #[error("{0}")]
    Host(String),
}

/// The engine configuration of a server: warden's component settings and
/// the pooling allocator sized for `max_instances`, tuned for an instance
/// per request.
///
/// Freed slots are reset by `memset` (up to 2 MiB of a linear memory, only
/// its resident pages where the kernel has `PAGEMAP_SCAN`; 64 KiB of a
/// table, 128 KiB of an async stack) rather than by `madvise`: each
/// `madvise` of a multi-threaded process sends every core a TLB shootdown,
/// which halved the requests per second (bench/serve.sh, docs/benchmarks.md).
/// The contents are reset either way: a request never sees another's data.
pub fn engine_config(fuel: bool, max_instances: u32) -> wasmtime::Config {
    let settings = EngineSettings {
        fuel,
        max_stack: None,
    };
    let mut config = warden_components::engine_config(&settings);
    let mut pool = PoolingAllocationConfig::default();
    let n = max_instances.max(1);
    // A Rust `wasm32-wasip2` component is a few core instances, tables
    // and memories.
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(4))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(128 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// The engine of a server ([`engine_config`]; on-demand allocation where
/// the pool's address space cannot be reserved), and its epoch ticker.
fn engine(fuel: bool, max_instances: u32) -> Result<Engine, ServeError> {
    let engine = match Engine::new(&engine_config(fuel, max_instances)) {
        Ok(engine) => engine,
        Err(e) => {
            log::server(&format!(
                "the pooling allocator is not available ({}); instances are allocated on demand",
                warden_components::one_line(&format!("{e:#}"))
            ));
            let settings = EngineSettings {
                fuel,
                max_stack: None,
            };
            Engine::new(&warden_components::engine_config(&settings))
                .map_err(|e| ServeError::Host(format!("cannot create the engine: {e:#}")))?
        }
    };
    let ticker = engine.weak();
    std::thread::Builder::new()
        .name("warden-epoch".into())
        .spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|e| ServeError::Host(format!("cannot start the epoch ticker: {e}")))?;
    Ok(engine)
}

/// Loads every app of the manifest at `path` as a server would (compiles
/// each component, checks its world, imports and policy, opens its mounts)
/// and serves nothing: what `warden deploy` checks before publishing.
/// `store` stands in for the nodes' store (its sealed namespaces are
/// opened, nothing is written). Returns how many apps there are.
pub fn check(
    path: &std::path::Path,
    cache: CacheMode,
    store: warden_seal::Store,
    check_policy: app::PolicyCheck,
) -> Result<usize, ServeError> {
    let manifest = Manifest::load(path).map_err(|e| ServeError::BadInput(e.to_string()))?;
    let settings = EngineSettings {
        fuel: manifest.apps.iter().any(|a| a.policy.limits.fuel.is_some()),
        max_stack: None,
    };
    let engine = Engine::new(&warden_components::engine_config(&settings))
        .map_err(|e| ServeError::Host(format!("cannot create the engine: {e:#}")))?;
    let rt = Runtime {
        linker: Arc::new(
            host::base_linker(&engine)
                .map_err(|e| ServeError::Host(format!("cannot link the app imports: {e:#}")))?,
        ),
        engine,
        cache: Arc::new(cache),
        store,
        metrics: metrics::Metrics::new(),
        check_policy,
    };
    deploy::Deployment::build(&rt, manifest.apps, &deploy::Deployment::default())
        .map(|d| d.apps.len())
        .map_err(|e| ServeError::BadInput(e.to_string()))
}

/// Serves until SIGINT or SIGTERM, then drains and returns. Prints
/// `Serving HTTP on URL` on stderr once listening.
pub fn run(options: Options) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Host(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run_async(options))
}

async fn run_async(options: Options) -> Result<(), ServeError> {
    let engine = engine(options.fuel, options.max_instances)?;
    let rt = Runtime {
        linker: Arc::new(
            host::base_linker(&engine)
                .map_err(|e| ServeError::Host(format!("cannot link the app imports: {e:#}")))?,
        ),
        engine,
        cache: Arc::new(options.cache),
        store: options.store.clone(),
        metrics: metrics::Metrics::new(),
        check_policy: options.check_policy.clone(),
    };
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| ServeError::BadInput(format!("cannot listen on {}: {e}", options.addr)))?;
    let local = listener
        .local_addr()
        .map_err(|e| ServeError::Host(e.to_string()))?;
    let mut attested_first = None;
    let (tls, attestor, hook) = match options.tls {
        Tls::None => (None, None, None),
        Tls::Files { cert, key } => (
            Some(server::tls_acceptor(&cert, &key).map_err(ServeError::BadInput)?),
            None,
            None,
        ),
        Tls::Attested { source, runtime } => {
            let mut names = vec!["localhost".to_string(), local.ip().to_string()];
            names.dedup();
            let attestor = Arc::new(Attestor::new(source, runtime, names));
            let config = attestor
                .tls_config()
                .map_err(|e| ServeError::Host(e.to_string()))?;
            // The first deployment is reported after "Serving HTTP on",
            // which is always the first line.
            let first = Arc::new(Mutex::new(None::<String>));
            let (a, report) = (attestor.clone(), first.clone());
            let hook: deploy::DeployHook = Arc::new(move |d: &deploy::Deployment| {
                let started = std::time::Instant::now();
                let head = a.deployed(d).map_err(|e| e.to_string())?;
                let line = format!(
                    "attested: tree size {} root {}, {} evidence and certificate in {:.1} ms",
                    head.size,
                    hex::encode(head.root),
                    a.backend(),
                    started.elapsed().as_secs_f64() * 1000.0
                );
                let mut first = report.lock().unwrap_or_else(|e| e.into_inner());
                match first.as_ref() {
                    None => *first = Some(line),
                    Some(_) => log::server(&line),
                }
                Ok(())
            });
            attested_first = Some(first);
            (
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
                Some(attestor),
                Some(hook),
            )
        }
    };
    let deployer =
        Arc::new(Deployer::start(rt, options.source.clone(), hook).map_err(ServeError::BadInput)?);
    if let Some(attestor) = &attestor {
        tokio::spawn(rotate(attestor.clone()));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let signals = Signals::register();
    eprintln!("Serving HTTP on {scheme}://{local}/");
    if let Some(line) = attested_first.and_then(|f| f.lock().ok().and_then(|f| f.clone())) {
        log::server(&line);
    }
    if tls.is_none() && !local.ip().is_loopback() {
        log::server(&format!(
            "warning: serving plain HTTP on {local}, which is not a loopback address; give --tls-cert and --tls-key to encrypt"
        ));
    }
    if let Some(addr) = options.metrics_addr {
        let metrics = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            ServeError::BadInput(format!("cannot listen on {addr} for metrics: {e}"))
        })?;
        let local = metrics
            .local_addr()
            .map_err(|e| ServeError::Host(e.to_string()))?;
        log::server(&format!("metrics on http://{local}/metrics"));
        tokio::spawn(server::serve_metrics(metrics, deployer.clone()));
    }
    for app in &deployer.current().apps {
        log::line(
            &app.spec.name,
            "deployed",
            &format!(
                "{} at {} ({})",
                app.spec.route,
                app.spec.component.display(),
                app.digest
            ),
        );
    }
    tokio::spawn(watch(deployer.clone(), options.watch, signals.hup));
    let site = server::Site {
        deployer,
        scheme,
        local,
        attestor,
    };
    server::serve(
        listener,
        site,
        tls,
        shutdown_signal(signals.int, signals.term),
    )
    .await;
    log::server("stopped");
    Ok(())
}

/// Makes a new attested certificate before the served one expires.
async fn rotate(attestor: Arc<Attestor>) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        let a = attestor.clone();
        match tokio::task::spawn_blocking(move || a.rotate_if_due()).await {
            Ok(Ok(true)) => log::server("attested certificate rotated"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => log::server(&format!("attested certificate not rotated: {e}")),
            Err(e) => log::server(&format!("attested certificate not rotated: {e}")),
        }
    }
}

/// The signals `warden serve` acts on, registered before it says it
/// serves: a client that saw "Serving HTTP on" may signal it at once.
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn register() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
        }
    }
}

/// Resolves at SIGINT or SIGTERM.
async fn shutdown_signal(
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
) {
    let (Some(mut int), Some(mut term)) = (int, term) else {
        // Without signal handlers, run until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    log::server("shutting down: no new connections; waiting for requests in flight");
}

/// Redeploys on SIGHUP, and when a watched file changes.
async fn watch(
    deployer: Arc<Deployer>,
    every: Option<Duration>,
    mut hup: Option<tokio::signal::unix::Signal>,
) {
    let mut tick = every.map(tokio::time::interval);
    loop {
        let forced = tokio::select! {
            Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
            _ = async { match tick.as_mut() { Some(t) => t.tick().await, None => std::future::pending().await } } => false,
        };
        let redeploy = forced || {
            let d = deployer.clone();
            tokio::task::spawn_blocking(move || d.changed())
                .await
                .unwrap_or(false)
        };
        if !redeploy {
            continue;
        }
        let d = deployer.clone();
        match tokio::task::spawn_blocking(move || d.redeploy()).await {
            Ok(Ok(count)) => log::server(&format!("deployed {count} app(s)")),
            Ok(Err(e)) => {
                deployer.metrics().deploy_failures.inc();
                log::server(&format!(
                    "redeploy refused, the previous apps keep serving: {e}"
                ));
            }
            Err(e) => log::server(&format!("redeploy failed: {e}")),
        }
    }
}
