//! `warden deploy`: publish a serve manifest and its components in etcd,
//! for every `warden serve` node of the cluster (docs/cli.md).

use crate::run::{CacheFlags, StoreFiles};
use crate::{state, Failure};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use warden_etcd::{EtcdClient, EtcdTarget, Timeouts};

#[derive(Args)]
pub struct DeployArgs {
    /// The cluster: etcd://HOST:PORT[,HOST:PORT…]/PREFIX[?options], as the
    /// nodes' --store [default: $WARDEN_STORE]
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The cluster's root key file, as the nodes' (publications are
    /// authenticated with it) [default: $WARDEN_KEY_FILE, else DATA_DIR/warden/store.key]
    #[arg(long = "key-file", value_name = "PATH")]
    key_file: Option<PathBuf>,
    #[command(flatten)]
    cache: CacheFlags,
    /// The serve manifest (Warden.toml with `[[app]]` tables)
    #[arg(value_name = "MANIFEST")]
    manifest: PathBuf,
}

/// The etcd target of `--store` (or `$WARDEN_STORE`), which must be one.
pub(crate) fn cluster(given: Option<String>, what: &str) -> Result<EtcdTarget, Failure> {
    let url = given
        .or_else(|| std::env::var("WARDEN_STORE").ok())
        .ok_or_else(|| {
            Failure::bad_input(format!(
                "{what} needs the cluster: --store etcd://HOST:PORT[,HOST:PORT…]/PREFIX (or WARDEN_STORE)"
            ))
        })?;
    if !EtcdTarget::is_etcd_url(&url) {
        return Err(Failure::bad_input(format!(
            "--store {url}: {what} works with an etcd cluster (etcd://HOST:PORT/PREFIX); one node serves a manifest directly"
        )));
    }
    EtcdTarget::parse(&url).map_err(|e| Failure::bad_input(format!("--store: {e}")))
}

/// The key deployments are authenticated with, from the cluster's root
/// key file (which must exist: a new key would be no cluster's).
pub(crate) fn deploy_key(
    key_file: &Option<PathBuf>,
) -> Result<warden_serve::published::DeployKey, Failure> {
    let path = match key_file {
        Some(p) => p.clone(),
        None => crate::kv::default_path("WARDEN_KEY_FILE", "store.key")
            .map_err(|e| Failure::bad_input(format!("{e:#}")))?,
    };
    let root = warden_seal::KeyFile::new(&path).load().map_err(|e| {
        Failure::bad_input(format!(
            "the cluster's root key: {e} (every node and `warden deploy` need the same key file)"
        ))
    })?;
    Ok(warden_serve::published::DeployKey::new(&root))
}

/// Connects to `target`: an unreachable cluster is bad input (exit 2).
pub(crate) fn connect(target: &EtcdTarget) -> Result<EtcdClient, Failure> {
    EtcdClient::connect(target, Timeouts::default()).map_err(|e| Failure::bad_input(e.to_string()))
}

pub fn run(args: DeployArgs) -> Result<u8, Failure> {
    let target = cluster(args.store, "warden deploy")?;
    let key = deploy_key(&args.key_file)?;
    let cache = args.cache.mode();
    // The check loads every app as a node would; its sealed mounts open
    // namespaces in a scratch store (the nodes' store is theirs).
    let scratch = tempfile::tempdir()
        .map_err(|e| Failure::host(format!("cannot make a scratch directory: {e}")))?;
    let scratch_key = warden_seal::RootKey::generate().map_err(Failure::host)?;
    let store = warden_seal::OpenOptions::new()
        .open(
            scratch.path().join("check.redb"),
            &warden_seal::StaticKey::new(scratch_key),
        )
        .map_err(Failure::host)?;
    let state_paths = Arc::new(StoreFiles::of(&None, &None).state(&cache));
    let check_policy: warden_serve::app::PolicyCheck = Arc::new(move |policy| {
        state::check_mounts(&policy.mounts, &state_paths).map_err(|f| f.message)
    });
    warden_serve::check(&args.manifest, cache, store, check_policy).map_err(|e| match e {
        warden_serve::ServeError::BadInput(m) => Failure::bad_input(m),
        warden_serve::ServeError::Host(m) => Failure::host(m),
    })?;
    let client = connect(&target)?;
    let published =
        warden_serve::published::publish(&client, &key, &args.manifest).map_err(|e| {
            use warden_serve::published::PublishError;
            let message = format!("cannot publish to {}: {e}", target.canonical());
            match e {
                PublishError::Manifest(_) | PublishError::Read { .. } => {
                    Failure::bad_input(message)
                }
                e if e.is_unavailable() => Failure::bad_input(message),
                _ => Failure::host(message),
            }
        })?;
    println!(
        "deployed {} app(s) from {} to {} (revision {})",
        published.apps,
        args.manifest.display(),
        target.canonical(),
        published.revision
    );
    Ok(0)
}
