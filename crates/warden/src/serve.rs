//! `warden serve`: a manifest of apps, or one component like `wasmtime
//! serve`.

use crate::flags::PolicyFlags;
use crate::run::{CacheFlags, StoreFiles};
use crate::{state, Failure};
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use warden_kernel::CacheMode;
use warden_serve::{AppSpec, Manifest, Options, ServeError, Source};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: the manifest's `server.addr`, else 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<SocketAddr>,
    /// Serve Prometheus metrics on this address, at /metrics
    #[arg(long = "metrics-addr", value_name = "HOST:PORT")]
    metrics_addr: Option<SocketAddr>,
    /// PEM certificate chain for TLS (with --tls-key)
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (with --tls-cert)
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// `attested`: a certificate made by warden that carries evidence of
    /// the runtime and every app, and fresh evidence at
    /// /.well-known/warden/attestation (docs/attestation.md)
    #[arg(long, value_name = "MODE", value_parser = ["attested"], conflicts_with = "tls_cert")]
    tls: Option<String>,
    /// Who vouches for attested TLS: software, sev-snp, tdx, or auto (the
    /// hardware of configfs-tsm if present, else software) [default: auto]
    #[arg(long, value_name = "BACKEND")]
    evidence: Option<String>,
    /// The software evidence key [default: $WARDEN_ATTEST_KEY, else DATA_DIR/warden/attest.key]
    #[arg(long = "attest-key", value_name = "PATH")]
    attest_key: Option<PathBuf>,
    /// The sealed store: a file, or etcd://HOST:PORT[,…]/PREFIX [default:
    /// the manifest's server.store, else $WARDEN_STORE, else DATA_DIR/warden/store.redb]
    #[arg(long, value_name = "PATH|URL")]
    store: Option<PathBuf>,
    /// The sealed store's root key file [default: $WARDEN_KEY_FILE, else DATA_DIR/warden/store.key]
    #[arg(long = "key-file", value_name = "PATH")]
    key_file: Option<PathBuf>,
    #[command(flatten)]
    cache: CacheFlags,
    /// Redeploy only on SIGHUP, not when a file changes
    #[arg(long = "no-watch")]
    no_watch: bool,
    /// How often to look for changed files, e.g. 500ms
    #[arg(long = "watch-interval", value_name = "DURATION", default_value = "1s")]
    watch_interval: String,
    /// Instances alive at once, across all apps
    #[arg(long = "max-instances", value_name = "N", default_value_t = warden_serve::DEFAULT_MAX_INSTANCES)]
    max_instances: u32,
    /// For one component: its policy (a manifest has its own per app)
    #[command(flatten)]
    policy: PolicyFlags,
    /// A serve manifest (Warden.toml with `[[app]]` tables), or one
    /// component (or bundle) to serve on every path. None: the deployment
    /// `warden deploy` published in the --store etcd cluster
    #[arg(value_name = "MANIFEST|COMPONENT")]
    target: Option<PathBuf>,
}

/// The manifest or component to serve.
fn target(args: &ServeArgs) -> Result<&Path, Failure> {
    args.target.as_deref().ok_or_else(|| {
        Failure::bad_input(
            "give a manifest or a component to serve, or --store etcd://… to serve what `warden deploy` published there",
        )
    })
}

/// Without a manifest or component and with an etcd `--store`: the
/// deployment published there, its components kept in
/// `$WARDEN_DEPLOY_DIR`, else the cache directory's `deployments`, else
/// `DATA_DIR/warden/deployments`.
fn published(args: &ServeArgs, cache: &CacheMode) -> Result<Option<Source>, Failure> {
    let store = args
        .store
        .clone()
        .or_else(|| std::env::var_os("WARDEN_STORE").map(PathBuf::from));
    let url = match (&args.target, store) {
        (None, Some(store)) => store.to_string_lossy().into_owned(),
        _ => return Ok(None),
    };
    if !warden_etcd::EtcdTarget::is_etcd_url(&url) {
        return Ok(None);
    }
    if args.policy != PolicyFlags::default() {
        return Err(Failure::bad_input(
            "policy flags apply to one component; a published deployment has its own per app",
        ));
    }
    let target = crate::deploy::cluster(Some(url), "warden serve")?;
    let client = crate::deploy::connect(&target)?;
    let key = crate::deploy::deploy_key(&args.key_file)?;
    let dir = match (std::env::var_os("WARDEN_DEPLOY_DIR"), cache) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, CacheMode::Dir(cache)) => cache.join("deployments"),
        (None, CacheMode::Off) => crate::kv::default_path("WARDEN_DEPLOY_DIR", "deployments")
            .map_err(|e| Failure::bad_input(format!("{e:#}")))?,
    };
    Ok(Some(Source::Published(Arc::new(
        warden_serve::published::Subscription::new(client, key, dir),
    ))))
}

/// Whether `path` holds a component or bundle rather than a manifest.
fn is_code(path: &Path) -> Result<bool, Failure> {
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", path.display())))?;
    let head = &head[..n];
    Ok(head.starts_with(b"\0asm") || warden_bundle::is_bundle(head))
}

pub fn run(args: ServeArgs) -> Result<u8, Failure> {
    let cache = args.cache.mode();
    let (source, settings, fuel) = if let Some(source) = published(&args, &cache)? {
        // Any app of a later deployment may have a fuel limit.
        (source, Default::default(), true)
    } else if is_code(target(&args)?)? {
        let policy = crate::flags::resolve_policy(None, &args.policy, &[])?;
        if !policy.listen.is_empty() || policy.entrypoint.is_some() {
            return Err(Failure::bad_input(
                "--listen and --entrypoint are for core modules under `warden run`; an HTTP app gets its requests from `warden serve`",
            ));
        }
        let fuel = policy.limits.fuel.is_some();
        let spec = AppSpec::single(target(&args)?, policy);
        (Source::Single(Box::new(spec)), Default::default(), fuel)
    } else {
        let path = target(&args)?;
        if args.policy != PolicyFlags::default() {
            return Err(Failure::bad_input(format!(
                "policy flags apply to one component; {} is a manifest: give each app its keys there",
                path.display()
            )));
        }
        let manifest = Manifest::load(path).map_err(Failure::bad_input)?;
        let fuel = manifest.apps.iter().any(|a| a.policy.limits.fuel.is_some());
        (Source::Manifest(path.to_path_buf()), manifest.server, fuel)
    };
    let store = args.store.clone().or_else(|| settings.store.clone());
    let files = StoreFiles::of(&store, &args.key_file);
    let mut state_paths = files.state(&cache);
    let addr = match args.addr.or(settings.addr) {
        Some(addr) => addr,
        None => warden_serve::DEFAULT_ADDR
            .parse()
            .map_err(|e| Failure::host(format!("{e}")))?,
    };
    let attested = args.tls.is_some() || settings.attested;
    let tls = match (
        args.tls_cert.or(settings.tls_cert),
        args.tls_key.or(settings.tls_key),
    ) {
        (Some(_), _) | (_, Some(_)) if attested => {
            return Err(Failure::bad_input(
                "attested TLS makes its own certificate: give either tls = \"attested\" or a certificate and key, not both",
            ))
        }
        (None, None) if attested => {
            let backend = args.evidence.or(settings.evidence);
            let key = crate::attest::attest_key_path(&args.attest_key)?;
            state_paths.push(state::attest_key(&key));
            let source = crate::attest::evidence_source(backend.as_deref(), &key)?;
            warden_serve::Tls::Attested {
                source,
                runtime: crate::attest::runtime()?,
            }
        }
        (Some(cert), Some(key)) => warden_serve::Tls::Files { cert, key },
        (None, None) => warden_serve::Tls::None,
        _ => {
            return Err(Failure::bad_input(
                "TLS needs both a certificate and a key (--tls-cert and --tls-key, or server.tls_cert and server.tls_key)",
            ))
        }
    };
    let watch = if args.no_watch {
        None
    } else {
        Some(
            warden_policy::parse_duration(&args.watch_interval)
                .map_err(|e| Failure::bad_input(format!("--watch-interval: {e}")))?
                .max(Duration::from_millis(50)),
        )
    };
    // Every write durable when the app's call returns.
    let store = files.open(warden_seal::Durability::Immediate)?;
    let state_paths = Arc::new(state_paths);
    let check_policy: warden_serve::app::PolicyCheck = Arc::new(move |policy| {
        state::check_mounts(&policy.mounts, &state_paths).map_err(|f| f.message)
    });
    let options = Options {
        source,
        addr,
        metrics_addr: args.metrics_addr.or(settings.metrics_addr),
        tls,
        store: store.clone(),
        cache,
        fuel,
        watch,
        max_instances: args.max_instances,
        check_policy,
    };
    let result = warden_serve::run(options);
    store.flush().map_err(Failure::host)?;
    match result {
        Ok(()) => Ok(0),
        Err(ServeError::BadInput(m)) => Err(Failure::bad_input(m)),
        Err(ServeError::Host(m)) => Err(Failure::host(m)),
    }
}
