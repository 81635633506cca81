//! `warden attest`: the evidence for a workload as warden would run it, or
//! for a serve manifest's apps; and what `warden serve --tls attested`
//! shares with it (the evidence backend, the software key, the runtime
//! measurement).

use crate::flags::PolicyFlags;
use crate::{workload, Failure};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use warden_attest::{
    Claims, DeploymentLog, EvidenceSource, RuntimeMeasurement, Sha256Digest, SoftwareKey, Subject,
    TsmSource, WorkloadMeasurement,
};

#[derive(Args)]
pub struct AttestArgs {
    /// Policy file (Warden.toml), as for `warden run`
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    policy: PolicyFlags,
    /// A verifier's nonce to bind into the evidence (8 to 64 bytes, hex)
    #[arg(long, value_name = "HEX")]
    nonce: Option<String>,
    /// Who vouches: software, sev-snp, tdx, or auto (the hardware of
    /// configfs-tsm if present, else software) [default: auto]
    #[arg(long, value_name = "BACKEND")]
    evidence: Option<String>,
    /// The software evidence key [default: $WARDEN_ATTEST_KEY, else DATA_DIR/warden/attest.key]
    #[arg(long = "attest-key", value_name = "PATH")]
    attest_key: Option<PathBuf>,
    /// A serve manifest: the tree of its apps, with inclusion proofs
    #[arg(long, value_name = "MANIFEST", conflicts_with_all = ["command", "config"])]
    serve: Option<PathBuf>,
    /// The module, component or bundle, and the guest's arguments (part of
    /// its policy)
    #[arg(value_name = "MODULE [ARGS]", num_args = 0.., trailing_var_arg = true, required_unless_present = "serve")]
    command: Vec<String>,
}

/// Where configfs-tsm reports are made; `WARDEN_TSM_ROOT` moves it (for
/// tests with a fake tree, and for kernels that mount configfs elsewhere).
fn tsm_root() -> PathBuf {
    std::env::var_os("WARDEN_TSM_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(warden_attest::tsm::DEFAULT_ROOT))
}

/// The software evidence key's file.
pub fn attest_key_path(given: &Option<PathBuf>) -> Result<PathBuf, Failure> {
    match given {
        Some(p) => Ok(p.clone()),
        None => crate::kv::default_path("WARDEN_ATTEST_KEY", "attest.key")
            .map_err(|e| Failure::bad_input(format!("{e:#}"))),
    }
}

/// warden's own measurement: its version and executable.
pub fn runtime() -> Result<RuntimeMeasurement, Failure> {
    RuntimeMeasurement::of_current_exe(env!("CARGO_PKG_VERSION")).map_err(Failure::host)
}

/// The evidence backend named by `--evidence` (or `server.evidence`).
pub fn evidence_source(
    backend: Option<&str>,
    key: &Path,
) -> Result<Arc<dyn EvidenceSource>, Failure> {
    let software = || -> Result<Arc<dyn EvidenceSource>, Failure> {
        let key = SoftwareKey::load_or_create(key).map_err(Failure::bad_input)?;
        Ok(Arc::new(key))
    };
    let hardware = || TsmSource::detect(&tsm_root()).map_err(Failure::host);
    match backend.unwrap_or("auto") {
        "software" => software(),
        "auto" => match hardware()? {
            Some(tsm) => Ok(Arc::new(tsm)),
            None => software(),
        },
        wanted @ ("sev-snp" | "tdx") => match hardware()? {
            Some(tsm) if tsm.backend().to_string() == wanted => Ok(Arc::new(tsm)),
            Some(tsm) => Err(Failure::bad_input(format!(
                "--evidence {wanted}: this machine's configfs-tsm provider is {}",
                tsm.backend()
            ))),
            None => Err(Failure::bad_input(format!(
                "--evidence {wanted}: no configfs-tsm at {} (not a confidential VM, or configfs not mounted)",
                tsm_root().display()
            ))),
        },
        other => Err(Failure::bad_input(format!(
            "unknown evidence backend `{other}`: software, sev-snp, tdx or auto"
        ))),
    }
}

/// A nonce given in hex on the command line.
pub fn parse_nonce(text: &str) -> Result<Vec<u8>, Failure> {
    let bytes = hex::decode(text)
        .map_err(|_| Failure::bad_input(format!("--nonce `{text}` is not hex")))?;
    if !(8..=64).contains(&bytes.len()) {
        return Err(Failure::bad_input(format!(
            "--nonce is 8 to 64 bytes, not {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn run(args: AttestArgs) -> Result<u8, Failure> {
    let nonce = args.nonce.as_deref().map(parse_nonce).transpose()?;
    let key = attest_key_path(&args.attest_key)?;
    let source = evidence_source(args.evidence.as_deref(), &key)?;
    let runtime = runtime()?;
    let claims = |subject| Claims {
        issued_at: now(),
        runtime: runtime.clone(),
        subject,
        tls_key: None,
        nonce: nonce.clone(),
        exporter: None,
    };
    let document = match &args.serve {
        Some(path) => {
            let manifest = warden_serve::Manifest::load(path).map_err(Failure::bad_input)?;
            let apps =
                warden_serve::attested::measure_manifest(&manifest).map_err(Failure::bad_input)?;
            let mut log = DeploymentLog::new();
            let head = log.append(&runtime, &apps).map_err(Failure::bad_input)?;
            let manifest = log.manifest(None).map_err(Failure::host)?.to_json();
            let evidence = source
                .attest(&claims(Subject::Tree(head)))
                .map_err(Failure::host)?;
            warden_attest::attestation::document(&evidence.to_json(), &manifest)
        }
        None => {
            let module = PathBuf::from(args.command.first().cloned().unwrap_or_default());
            let target = workload::Target {
                module: module.clone(),
                guest_args: args.command.get(1..).unwrap_or_default(),
                config: args.config.as_deref(),
                policy: &args.policy,
                expect_digest: &None,
            };
            let workload = workload::resolve(&target)?;
            let canonical = workload.policy.to_canonical().map_err(Failure::bad_input)?;
            let code = Sha256Digest::of_file(&module).map_err(|e| {
                Failure::bad_input(format!("cannot read {}: {e}", module.display()))
            })?;
            let measured = WorkloadMeasurement {
                code,
                policy: Sha256Digest::of(&canonical),
            };
            source
                .attest(&claims(Subject::Workload(measured)))
                .map_err(Failure::host)?
                .to_json()
        }
    };
    println!("{document}");
    Ok(0)
}
