//! Hardware attestation evidence for warden: getting a report from the
//! confidential-computing hardware and checking one that someone else got.
//!
//! * [`tsm`]: asks the Linux kernel for a report through configfs-tsm
//!   (`/sys/kernel/config/tsm/report/`), one interface for AMD SEV-SNP and
//!   Intel TDX guests, with the `generation` check that refuses a report a
//!   concurrent writer may have changed.
//! * [`snp`]: parses an AMD SEV-SNP attestation report, verifies the AMD
//!   certificate chain (ARK self-signed → ASK → VCEK) and the report's
//!   signature, and applies an [`snp::SnpPolicy`] (no debug, expected report
//!   data).
//! * [`tdx`]: verifies an Intel TDX quote offline against PCS collateral and
//!   applies a [`tdx::TdxPolicy`] (accepted TCB statuses, no debug, expected
//!   report data).
//!
//! Both verifiers end in a [`HardwareReport`], the common view the evidence
//! verifier works with.
//!
//! * [`measure`]: the digests everything else speaks of (`sha256:HEX`):
//!   warden's executable, a workload's code and canonical policy, a tree head.
//! * [`log`]: the deployment log of `warden serve`, an append-only RFC 9162
//!   Merkle tree of what each deploy ran, and the manifest document that
//!   proves the current deployment is in it and the history only grew.
//! * [`claims`]: what evidence binds (runtime, tree head or workload, TLS
//!   key, nonce, TLS exporter) as canonical `warden-claims/1` JSON, whose
//!   SHA-512 is the report data.
//! * [`evidence`]: `warden-evidence/1` documents and their sources: a
//!   software Ed25519 key ([`SoftwareKey`], no hardware vouches) or the
//!   hardware through configfs-tsm ([`TsmSource`], SEV-SNP with the VCEK
//!   from the host's certificate table, or TDX).
//! * [`verify`]: checks evidence against a [`VerifyPolicy`] (`verify.toml`)
//!   and the request's [`Binding`] (nonce, TLS exporter and key, time), and
//!   lists every reason it is refused in a [`Verdict`].
//! * [`attestation`]: the attestation document (evidence and the manifest
//!   of its tree head), how it rides in an attested TLS certificate, and
//!   the checks that tie evidence, manifest, expected apps and earlier tree
//!   heads together.

#![forbid(unsafe_code)]

pub mod attestation;
pub mod claims;
pub mod evidence;
pub mod log;
pub mod measure;
pub mod snp;
pub mod tdx;
pub mod tsm;
pub mod verify;

pub use claims::{Claims, Subject};
pub use evidence::{Backend, Evidence, EvidenceBody, EvidenceSource, SoftwareKey, TsmSource};
pub use log::{AppMeasurement, Deployment, DeploymentLog, Leaf, ManifestDoc};
pub use measure::{RuntimeMeasurement, Sha256Digest, TreeHead, WorkloadMeasurement};
pub use verify::{verify_evidence, Binding, Verdict, VerifyPolicy};

/// Why attestation could not be produced or read.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AttestError {
    /// A document or value is not in the format `docs/attestation.md` gives.
    #[error("{0}")]
    Format(String),
    /// A file or device could not be read or written.
    #[error("{0}")]
    Io(String),
}

/// Which hardware vouched for a [`HardwareReport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HardwareKind {
    /// AMD SEV-SNP (a VCEK-signed attestation report).
    Snp,
    /// Intel TDX (a DCAP quote).
    Tdx,
}

impl std::fmt::Display for HardwareKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HardwareKind::Snp => "sev-snp",
            HardwareKind::Tdx => "tdx",
        })
    }
}

/// What a verified SNP report or TDX quote says, in the same shape for both.
///
/// Only [`snp::SnpReport::verify`] and [`tdx::verify`] make one, after the
/// signatures checked out; the policy checks are separate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HardwareReport {
    /// The hardware that signed it.
    pub kind: HardwareKind,
    /// The 64 bytes the guest asked to be bound into the report.
    pub report_data: [u8; 64],
    /// The launch measurement: SNP `MEASUREMENT` (48 bytes), or TDX `MRTD`
    /// followed by `RTMR0`..`RTMR3` (5 × 48 bytes).
    pub measurement: Vec<u8>,
    /// The platform's TCB: for SNP the reported TCB as
    /// `bootloader=B tee=T snp=S microcode=M` (plus `fmc=F` on Turin), for
    /// TDX the TCB status from Intel's collateral (`UpToDate`, `OutOfDate`, …).
    pub tcb: String,
    /// Whether the guest can be debugged (its memory read by the host).
    pub debug: bool,
}

/// A file from the shared test vectors (`../shared/attest-vectors`).
#[cfg(test)]
pub(crate) fn vector(name: &str) -> Vec<u8> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/attest-vectors")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A hex-encoded test vector, decoded.
#[cfg(test)]
pub(crate) fn vector_hex(name: &str) -> Vec<u8> {
    let text = String::from_utf8(vector(name)).expect("utf-8");
    hex::decode(text.trim()).expect("hex")
}
