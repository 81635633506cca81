//! `warden bundle`: packs a module or component, the policy resolved from
//! a config and flags, and the contents of its virtual mounts into one
//! sealed bundle (crates/bundle, docs/bundle.md). The same inputs always
//! give the same bytes; the file's SHA-256 is printed as the workload's
//! identity.

use crate::flags::{resolve_policy, PolicyFlags};
use crate::run::{kernel_failure, progress, CacheFlags, StoreFiles};
use crate::{state, Failure};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use warden_bundle::CodeKind;
use warden_kernel::{EngineSettings, Kernel};

#[derive(Args)]
pub struct BundleArgs {
    /// A Warden.toml workload config; flags override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    policy: PolicyFlags,
    /// Where to write the bundle (default: the code's path with extension .warden)
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,
    #[command(flatten)]
    cache: CacheFlags,
    /// The code: a core module (.wasm, or .wat text) or a component
    #[arg(value_name = "MODULE_OR_COMPONENT")]
    code: PathBuf,
    /// The guest's arguments, after `--` (they replace the config's `args`)
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

/// The code as it goes into a bundle: WAT text is turned into its binary,
/// precompiled code and bundles are refused, anything else must be a valid
/// module or component.
pub(crate) fn code_for_bundle(path: &Path) -> Result<(CodeKind, Vec<u8>), Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", path.display())))?;
    let not_wasm = || {
        Failure::bad_input(format!(
            "{} is not a WebAssembly file (it does not start with `\\0asm` and is not WAT text)",
            path.display()
        ))
    };
    if warden_bundle::is_bundle(&bytes) {
        return Err(Failure::bad_input(format!(
            "{} is already a bundle",
            path.display()
        )));
    }
    if bytes.starts_with(b"\x7fELF") {
        return Err(Failure::bad_input(format!(
            "{} is precompiled native code, not WebAssembly (bundle the .wasm it was compiled from)",
            path.display()
        )));
    }
    let bytes = if bytes.starts_with(b"\0asm") {
        bytes
    } else {
        let text = std::str::from_utf8(&bytes).map_err(|_| not_wasm())?;
        let t = text.trim_start();
        if !(t.starts_with('(') || t.starts_with(";;")) {
            return Err(not_wasm());
        }
        wat::parse_str(text).map_err(|e| {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or("").to_string();
            Failure::bad_input(format!(
                "{} is not a valid WebAssembly text file: {first}",
                path.display()
            ))
        })?
    };
    let kind = if wasmparser::Parser::is_component(&bytes) {
        CodeKind::Component
    } else {
        CodeKind::Module
    };
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator.validate_all(&bytes).map_err(|e| {
        Failure::bad_input(format!(
            "{} is not a valid WebAssembly {}: {e}",
            path.display(),
            kind.name()
        ))
    })?;
    Ok((kind, bytes))
}

/// Writes `bytes` to `out` through a temporary file in its directory, so
/// that a reader never sees half a bundle.
fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let fail =
        |e: std::io::Error| Failure::bad_input(format!("cannot write {}: {e}", out.display()));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    // Bundles are meant to be shared: readable by all, as a new file is.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(fail)?;
    tmp.persist(out).map_err(|e| fail(e.error))?;
    Ok(())
}

pub fn run(args: BundleArgs) -> Result<u8, Failure> {
    let policy = resolve_policy(args.config.as_deref(), &args.policy, &args.args)?;
    let cache = args.cache.mode();
    // A virtual mount is copied into the bundle: it must not reach
    // warden's own state any more than at run time.
    let files = StoreFiles::of(&None, &None);
    state::check_run_mounts(&policy.mounts, || files.state(&cache))?;
    let (kind, code) = code_for_bundle(&args.code)?;
    if kind == CodeKind::Module {
        // What `warden run` would refuse (an import warden does not
        // provide, a bad signature) is refused now; the compile also
        // warms the cache for the run.
        let kernel = Kernel::new(EngineSettings {
            fuel: policy.limits.fuel.is_some(),
            max_stack: policy.limits.max_stack,
        })
        .map_err(|e| Failure::host(format!("{e:#}")))?;
        kernel
            .load_bytes(&args.code, &code, &cache, false, &mut progress(&args.code))
            .map_err(kernel_failure)?;
    }
    let (sealed, trees) =
        warden_bundle::capture(&policy).map_err(|e| Failure::bad_input(e.to_string()))?;
    let bytes = warden_bundle::write(&sealed, kind, &code, &trees)
        .map_err(|e| Failure::bad_input(e.to_string()))?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| args.code.with_extension("warden"));
    write_atomically(&out, &bytes)?;
    println!("{}", warden_bundle::sha256_text(&bytes));
    Ok(0)
}
