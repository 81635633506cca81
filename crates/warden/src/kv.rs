//! `warden kv`: look into and change the sealed store from the command line.
//!
//! ```text
//! warden kv [--store PATH|URL] [--key-file PATH] list [NAMESPACE] [--prefix P]
//! warden kv ... get NAMESPACE KEY
//! warden kv ... set NAMESPACE KEY VALUE      (VALUE `-`: read it from stdin)
//! warden kv ... delete NAMESPACE KEY
//! warden kv ... export FILE                  (encrypted, integrity-protected backup)
//! warden kv ... import FILE [--replace]
//! ```
//!
//! The store is a redb file or an etcd cluster
//! (`etcd://HOST:PORT[,HOST:PORT…]/PREFIX[?options]`, see
//! `warden_etcd::EtcdTarget` and docs/config.md); it defaults to
//! `$WARDEN_STORE`, else `DATA_DIR/warden/store.redb`; the key file to
//! `$WARDEN_KEY_FILE`, else `DATA_DIR/warden/store.key` (created with mode
//! 0600 on first use). The last-seen generation of each store is kept
//! beside the key file (see `warden_seal::state_file_beside_store`).
//!
//! Exit codes:
//! * 0 — done.
//! * 1 — the command failed and changed nothing: unknown namespace, missing
//!   key, no store, wrong key, a store or backup that fails its integrity
//!   check, an older copy of the store (rollback), an I/O error. One line on
//!   stderr says which. Also 1, with a line saying so, when a write was made
//!   but the rollback state could not be updated (`SealError::StateUpdate`).
//! * 2 — the command line itself is wrong (reported by clap), or the store
//!   it names cannot be used at all: an `etcd://` URL that does not parse,
//!   an etcd cluster that cannot be reached. One line on stderr.

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use warden_seal::{ImportMode, KeyFile, KeyName, OpenOptions, SealError, Store};

/// Arguments of `warden kv`.
#[derive(Args, Debug)]
pub struct KvArgs {
    /// Store file or etcd://HOST:PORT[,…]/PREFIX [default: $WARDEN_STORE, else
    /// DATA_DIR/warden/store.redb]
    #[arg(long, value_name = "PATH|URL")]
    store: Option<PathBuf>,
    /// Root key file [default: $WARDEN_KEY_FILE, else DATA_DIR/warden/store.key]
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: KvCommand,
}

#[derive(Subcommand, Debug)]
enum KvCommand {
    /// List the namespaces, or the keys of NAMESPACE (sorted)
    List {
        namespace: Option<String>,
        /// Only keys starting with this
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Print the value of KEY
    Get { namespace: String, key: String },
    /// Set KEY to VALUE (`-` reads the value from stdin)
    Set {
        namespace: String,
        key: String,
        value: String,
    },
    /// Delete KEY
    Delete { namespace: String, key: String },
    /// Write an encrypted backup of every namespace to FILE
    Export { file: PathBuf },
    /// Restore a backup made by `export`, merging it into the store
    Import {
        file: PathBuf,
        /// Delete every namespace first, so the store ends up equal to the backup
        #[arg(long)]
        replace: bool,
    },
}

/// Runs `warden kv`; returns the exit code (errors are printed here).
pub fn run(args: KvArgs) -> anyhow::Result<i32> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let mut streams = Streams {
        stdin: &mut stdin.lock(),
        stdout: &mut stdout.lock(),
        stderr: &mut io::stderr(),
        stdout_is_tty: tty,
    };
    // redb asserts on some damaged files; the store turns that into an
    // error, so the panic message would only duplicate the error line.
    let previous = std::sync::Arc::new(std::panic::take_hook());
    let chained = previous.clone();
    std::panic::set_hook(Box::new(move |info| {
        let in_redb = info.location().is_some_and(|l| l.file().contains("/redb-"));
        if !in_redb {
            chained(info);
        }
    }));
    let code = run_with(args, &mut streams);
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    code
}

/// Where a command reads and writes (real streams, or buffers in tests).
pub struct Streams<'a> {
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    pub stdout_is_tty: bool,
}

/// [`run`] with explicit streams.
pub fn run_with(args: KvArgs, io: &mut Streams<'_>) -> anyhow::Result<i32> {
    match execute(args, io) {
        Ok(()) => Ok(0),
        Err(e) => {
            writeln!(io.stderr, "error: {e:#}")?;
            let unusable = matches!(
                e.downcast_ref::<SealError>(),
                Some(SealError::InvalidUrl(_) | SealError::Unreachable { .. })
            );
            Ok(if unusable { 2 } else { 1 })
        }
    }
}

/// A store or key file path: `$env`, else `DATA_DIR/warden/file`.
pub(crate) fn default_path(env: &str, file: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let data = dirs::data_dir().context(format!(
        "no data directory for the default {file}; set {env}"
    ))?;
    Ok(data.join("warden").join(file))
}

/// Opens a store (a redb file, or an `etcd://` URL given as a path) with
/// its key file, the last-seen generation kept beside the key file.
pub(crate) fn open_with(
    store: &Path,
    key_file: &Path,
    create: bool,
    durability: warden_seal::Durability,
) -> Result<Store, SealError> {
    let options = OpenOptions::new()
        .create(create)
        .durability(durability)
        .state_file(warden_seal::state_file_beside_store(key_file, store)?);
    match etcd_url(store) {
        Some(url) => options.open_url(url, &KeyFile::new(key_file)),
        None => options.open(store, &KeyFile::new(key_file)),
    }
}

/// `store` as an `etcd://` URL, if it is one.
pub(crate) fn etcd_url(store: &Path) -> Option<&str> {
    store.to_str().filter(|s| s.starts_with("etcd://"))
}

fn open(store: &Path, key_file: &Path, create: bool) -> Result<Store, SealError> {
    open_with(store, key_file, create, warden_seal::Durability::Immediate)
}

fn key_name(key: &[u8]) -> String {
    KeyName(key.to_vec()).to_string()
}

fn execute(args: KvArgs, io: &mut Streams<'_>) -> anyhow::Result<()> {
    let store_path = match args.store {
        Some(p) => p,
        None => default_path("WARDEN_STORE", "store.redb")?,
    };
    let key_file = match args.key_file {
        Some(p) => p,
        None => default_path("WARDEN_KEY_FILE", "store.key")?,
    };
    match args.cmd {
        KvCommand::List { namespace, prefix } => {
            let store = open(&store_path, &key_file, false)?;
            let lines: Vec<String> = match namespace {
                None => store.namespaces()?,
                Some(ns) => store
                    .existing_namespace(&ns)?
                    .all_keys(prefix.as_bytes())?
                    .iter()
                    .map(|k| match std::str::from_utf8(k) {
                        Ok(text) => text.to_string(),
                        Err(_) => key_name(k),
                    })
                    .collect(),
            };
            for line in lines {
                writeln!(io.stdout, "{line}")?;
            }
        }
        KvCommand::Get { namespace, key } => {
            let store = open(&store_path, &key_file, false)?;
            let value = store
                .existing_namespace(&namespace)?
                .get(&key)?
                .with_context(|| {
                    format!(
                        "key {} not found in namespace {namespace:?}",
                        key_name(key.as_bytes())
                    )
                })?;
            io.stdout.write_all(&value)?;
            if io.stdout_is_tty && !value.ends_with(b"\n") {
                writeln!(io.stdout)?;
            }
        }
        KvCommand::Set {
            namespace,
            key,
            value,
        } => {
            let value = if value == "-" {
                let mut buf = Vec::new();
                io.stdin
                    .read_to_end(&mut buf)
                    .context("cannot read the value from stdin")?;
                buf
            } else {
                value.into_bytes()
            };
            let store = open(&store_path, &key_file, true)?;
            store.namespace(&namespace)?.set(&key, &value)?;
        }
        KvCommand::Delete { namespace, key } => {
            let store = open(&store_path, &key_file, false)?;
            if !store.existing_namespace(&namespace)?.delete(&key)? {
                anyhow::bail!(
                    "key {} not found in namespace {namespace:?}",
                    key_name(key.as_bytes())
                );
            }
        }
        KvCommand::Export { file } => {
            let store = open(&store_path, &key_file, false)?;
            let summary = store.export(&file)?;
            writeln!(
                io.stderr,
                "exported {} namespaces, {} keys (generation {}) to {}",
                summary.namespaces,
                summary.entries,
                summary.generation,
                file.display()
            )?;
        }
        KvCommand::Import { file, replace } => {
            // A store on etcd is never removed here: it may be shared.
            let existed = etcd_url(&store_path).is_some() || store_path.exists();
            let state = warden_seal::state_file_beside_store(&key_file, &store_path)?;
            let mode = if replace {
                ImportMode::Replace
            } else {
                ImportMode::Merge
            };
            let result = open(&store_path, &key_file, true)
                .and_then(|store| store.import(&file, &KeyFile::new(&key_file), mode));
            match result {
                Ok(summary) => writeln!(
                    io.stderr,
                    "imported {} namespaces, {} keys from {}",
                    summary.namespaces,
                    summary.entries,
                    file.display()
                )?,
                Err(e) => {
                    // A failed import into a store it just created leaves nothing.
                    if !existed {
                        let _ = std::fs::remove_file(&store_path);
                        let _ = std::fs::remove_file(&state);
                    }
                    return Err(e.into());
                }
            }
        }
    }
    Ok(())
}
