//! What `warden run` is asked to run, resolved before anything runs: the
//! code (a module or component file, or bytes from a bundle), the policy
//! it runs under and the trees of its bundled mounts. `run` dispatches on
//! [`Code`]: core modules go to warden's kernel; components are the
//! components runtime's.

use crate::flags::PolicyFlags;
use crate::flags::{bad, resolve_policy};
use crate::Failure;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use warden_kernel::Bundled;
use warden_policy::Policy;

/// What names a workload on the command line (`warden run`, `warden
/// attest`): the file, the guest's arguments, a config and policy flags.
pub struct Target<'a> {
    pub module: PathBuf,
    pub guest_args: &'a [String],
    pub config: Option<&'a std::path::Path>,
    pub policy: &'a PolicyFlags,
    pub expect_digest: &'a Option<String>,
}

/// The code of a workload.
pub enum Code {
    /// A file to load by path (through the compile cache's index, so that
    /// a warm run need not read it): a core module, WAT text, precompiled
    /// code, or a component, which the loader recognises.
    File(PathBuf),
    /// A core module's bytes (binary or WAT), from a bundle or from a file
    /// read whole to check `--expect-digest`.
    Module(Arc<[u8]>),
    /// A component's bytes, from a bundle or from a file read whole to
    /// check `--expect-digest`.
    // Read once the components runtime runs them.
    #[allow(dead_code)]
    Component(Arc<[u8]>),
}

/// A workload ready to run.
pub struct Workload {
    /// The file as named on the command line: `argv[0]` and messages.
    pub path: PathBuf,
    pub code: Code,
    /// The policy: the config and flags, or a bundle's narrowed by flags.
    pub policy: Policy,
    /// The trees of the policy's bundled mounts (empty unless a bundle).
    pub bundled: Bundled,
    /// `sha256:HEX` of the file, when it was read whole (a bundle, or with
    /// `--expect-digest`): what attestation will report.
    #[allow(dead_code)]
    pub digest: Option<String>,
    /// Whether the file is a bundle (its code is never precompiled).
    pub is_bundle: bool,
}

/// The first bytes of `path` if it is a regular file (a FIFO or a device
/// is never opened here: the loader reads it once, as it always did).
fn starts_like_bundle(path: &std::path::Path) -> bool {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; warden_bundle::MAGIC.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && warden_bundle::is_bundle(&head)
}

fn read_whole(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", path.display())))
}

/// Refuses `digest` unless it is what `--expect-digest` asks for.
fn check_digest(
    path: &std::path::Path,
    digest: &str,
    expected: &Option<String>,
) -> Result<(), Failure> {
    match expected {
        Some(want) if !want.eq_ignore_ascii_case(digest) => Err(Failure::bad_input(format!(
            "{}: digest is {digest}, not the expected {want}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// What `warden run` was asked to run, with its policy: for a bundle, its
/// policy with the flags applied and then checked to stay within it.
pub fn resolve(args: &Target) -> Result<Workload, Failure> {
    let path = args.module.clone();
    if let Some(want) = args.expect_digest {
        let hex = want.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Failure::bad_input(format!(
                "invalid --expect-digest `{want}`: expected sha256: and 64 hex digits"
            )));
        }
    }
    if starts_like_bundle(&path) {
        let bytes = read_whole(&path)?;
        let bundle = warden_bundle::open(&bytes)
            .map_err(|e| Failure::bad_input(format!("{}: {e}", path.display())))?;
        check_digest(&path, &bundle.digest, args.expect_digest)?;
        if args.config.is_some() {
            return Err(Failure::bad_input(format!(
                "{}: --config cannot be given with a bundle (its policy is sealed in it; \
                 flags may narrow it)",
                path.display()
            )));
        }
        let mut policy = bundle.policy.clone();
        args.policy.apply(&mut policy, args.guest_args, true)?;
        policy.check_within(&bundle.policy).map_err(bad)?;
        policy.validate().map_err(bad)?;
        let code = match bundle.kind {
            warden_bundle::CodeKind::Module => Code::Module(bundle.code.clone()),
            warden_bundle::CodeKind::Component => Code::Component(bundle.code.clone()),
        };
        return Ok(Workload {
            path,
            code,
            policy,
            bundled: bundle.trees,
            digest: Some(bundle.digest),
            is_bundle: true,
        });
    }
    let (code, digest) = match args.expect_digest {
        None => (Code::File(path.clone()), None),
        Some(_) => {
            let bytes = read_whole(&path)?;
            let digest = warden_bundle::sha256_text(&bytes);
            check_digest(&path, &digest, args.expect_digest)?;
            let code = if wasmparser::Parser::is_component(&bytes) {
                Code::Component(bytes.into())
            } else {
                Code::Module(bytes.into())
            };
            (code, Some(digest))
        }
    };
    let policy = resolve_policy(args.config, args.policy, args.guest_args)?;
    Ok(Workload {
        path,
        code,
        policy,
        bundled: Bundled::new(),
        digest,
        is_bundle: false,
    })
}
