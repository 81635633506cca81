//! AMD SEV-SNP attestation reports.
//!
//! A report is 1184 (0x4A0) bytes; the AMD secure processor signs its first
//! 0x2A0 bytes with ECDSA P-384 / SHA-384 under the chip's VCEK. The VCEK
//! certificate is signed (RSA-PSS) by AMD's ASK, the ASK by the ARK, and the
//! ARK by itself; the ARK must be one of AMD's roots built into the `sev`
//! crate (Milan, Genoa, Turin), so a chain someone made up does not verify.
//!
//! Parsing and the certificate chain use the `sev` crate with its pure-Rust
//! backend (`crypto_nossl`); the report signature is checked here over the
//! raw bytes as received (not over a re-encoding of the parsed report).
//!
//! Not checked yet: that the VCEK certificate's TCB extensions equal the
//! report's `REPORTED_TCB` and its hwID the `CHIP_ID`, and CRLs. The VCEK
//! from configfs-tsm's `auxblob` (the GHCB certificate table) is taken by
//! the bounds-checked parser in [`crate::evidence::vcek_from_cert_table`],
//! not by `sev`'s, which uses unchecked pointer arithmetic.

use std::fmt;

use p384::ecdsa::signature::DigestVerifier;
use sev::certs::snp::{builtin, ca, Certificate, Chain, Verifiable};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use sha2::Digest;

use crate::{HardwareKind, HardwareReport};

/// The length of an SEV-SNP attestation report.
pub const REPORT_LEN: usize = 0x4A0;
/// The signed part of a report: everything before the signature.
const SIGNED_LEN: usize = 0x2A0;
/// `SIG_ALGO` 1: ECDSA P-384 with SHA-384.
const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// Guest policy bit 19: DEBUG.
const POLICY_DEBUG: u64 = 1 << 19;

/// One reason an SEV-SNP report is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SnpError {
    /// Not a report's length.
    #[error("SEV-SNP report is {0} bytes, expected {REPORT_LEN}")]
    Length(usize),
    /// The `sev` decoder refused it.
    #[error("SEV-SNP report does not parse: {0}")]
    Parse(String),
    /// A certificate does not parse.
    #[error("SEV-SNP certificate does not parse: {0}")]
    Certificate(String),
    /// ARK → ASK → VCEK does not verify.
    #[error(
        "AMD certificate chain does not verify (ARK self-signature, ARK signs ASK, \
         ASK signs VCEK): {0}"
    )]
    Chain(String),
    /// The chain's ARK is not AMD's.
    #[error("the chain's ARK is not one of AMD's roots (Milan, Genoa, Turin)")]
    UntrustedRoot,
    /// The report names a signature algorithm other than ECDSA P-384.
    #[error("the report's signature algorithm is {0}, only 1 (ECDSA P-384 with SHA-384) is known")]
    SignatureAlgorithm(u32),
    /// The VCEK did not sign these bytes.
    #[error("the report's signature does not verify with the VCEK: {0}")]
    Signature(String),
    /// The guest policy lets the host debug the guest (read its memory).
    #[error("the guest policy allows debugging (policy {0:#x})")]
    DebugAllowed(u64),
    /// `REPORT_DATA` is not what the verifier expected.
    #[error("the report data is not the expected value")]
    ReportData,
}

/// Every reason a report was refused (the policy and the signatures are all
/// checked, so that a tampered debug report shows both).
#[derive(Debug, thiserror::Error)]
#[error("SEV-SNP evidence refused: {}", list(.reasons))]
pub struct SnpRefused {
    /// At least one.
    pub reasons: Vec<SnpError>,
}

fn list(reasons: &[SnpError]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// AMD processor generations with built-in ARK and ASK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessorGeneration {
    /// EPYC 7003.
    Milan,
    /// EPYC 9004.
    Genoa,
    /// EPYC 9005.
    Turin,
}

/// A VCEK with the ASK and ARK that certify it.
#[derive(Clone, Debug)]
pub struct SnpChain {
    chain: Chain,
}

impl SnpChain {
    /// The VCEK (DER or PEM) with an ASK + ARK PEM stack, in that order, as
    /// AMD's key distribution service serves `cert_chain`.
    pub fn from_pem_stack(ask_ark_pem: &[u8], vcek: &[u8]) -> Result<Self, SnpError> {
        let blocks =
            pem::parse_many(ask_ark_pem).map_err(|e| SnpError::Certificate(e.to_string()))?;
        let [ask, ark] = blocks.as_slice() else {
            return Err(SnpError::Certificate(format!(
                "expected 2 certificates (ASK, ARK) in the PEM stack, found {}",
                blocks.len()
            )));
        };
        let ca = ca::Chain {
            ark: cert_der(ark.contents())?,
            ask: cert_der(ask.contents())?,
        };
        Ok(SnpChain {
            chain: Chain {
                ca,
                vek: cert_any(vcek)?,
            },
        })
    }

    /// The VCEK (DER or PEM) with the ASK and ARK built into `sev` for
    /// `generation`.
    pub fn builtin(generation: ProcessorGeneration, vcek: &[u8]) -> Result<Self, SnpError> {
        let (ark, ask) = match generation {
            ProcessorGeneration::Milan => (builtin::milan::ark(), builtin::milan::ask()),
            ProcessorGeneration::Genoa => (builtin::genoa::ark(), builtin::genoa::ask()),
            ProcessorGeneration::Turin => (builtin::turin::ark(), builtin::turin::ask()),
        };
        let cert =
            |c: std::io::Result<Certificate>| c.map_err(|e| SnpError::Certificate(e.to_string()));
        Ok(SnpChain {
            chain: Chain {
                ca: ca::Chain {
                    ark: cert(ark)?,
                    ask: cert(ask)?,
                },
                vek: cert_any(vcek)?,
            },
        })
    }

    /// Checks the ARK is AMD's and ARK → ASK → VCEK; returns the VCEK.
    fn verify(&self) -> Result<&Certificate, SnpError> {
        let ark = self
            .chain
            .ca
            .ark
            .to_der()
            .map_err(|e| SnpError::Certificate(e.to_string()))?;
        let known = [
            builtin::milan::ark(),
            builtin::genoa::ark(),
            builtin::turin::ark(),
        ];
        let pinned = known
            .into_iter()
            .filter_map(|c| c.ok()?.to_der().ok())
            .any(|der| der == ark);
        if !pinned {
            return Err(SnpError::UntrustedRoot);
        }
        (&self.chain)
            .verify()
            .map_err(|e| SnpError::Chain(e.to_string()))
    }
}

fn cert_der(der: &[u8]) -> Result<Certificate, SnpError> {
    Certificate::from_der(der).map_err(|e| SnpError::Certificate(e.to_string()))
}

fn cert_any(bytes: &[u8]) -> Result<Certificate, SnpError> {
    if bytes.starts_with(b"-----BEGIN") {
        Certificate::from_pem(bytes).map_err(|e| SnpError::Certificate(e.to_string()))
    } else {
        cert_der(bytes)
    }
}

/// The guest policy the guest owner set at launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpGuestPolicy(u64);

impl SnpGuestPolicy {
    /// The 64 policy bits as in the report.
    pub fn bits(self) -> u64 {
        self.0
    }

    /// Bit 19, DEBUG: the host may debug the guest, reading its memory.
    pub fn debug_allowed(self) -> bool {
        self.0 & POLICY_DEBUG != 0
    }

    /// Bit 18, MIGRATE_MA: a migration agent may be associated.
    pub fn migrate_ma_allowed(self) -> bool {
        self.0 & (1 << 18) != 0
    }

    /// Bit 16, SMT: the host may run the guest with simultaneous multithreading.
    pub fn smt_allowed(self) -> bool {
        self.0 & (1 << 16) != 0
    }
}

/// A TCB version: the security version numbers of the platform's firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpTcb {
    /// PSP bootloader SVN.
    pub bootloader: u8,
    /// PSP OS (TEE) SVN.
    pub tee: u8,
    /// SNP firmware SVN.
    pub snp: u8,
    /// CPU microcode SVN.
    pub microcode: u8,
    /// FMC firmware SVN (Turin and later).
    pub fmc: Option<u8>,
}

impl From<sev::firmware::host::TcbVersion> for SnpTcb {
    fn from(t: sev::firmware::host::TcbVersion) -> Self {
        SnpTcb {
            bootloader: t.bootloader,
            tee: t.tee,
            snp: t.snp,
            microcode: t.microcode,
            fmc: t.fmc,
        }
    }
}

impl fmt::Display for SnpTcb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bootloader={} tee={} snp={} microcode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )?;
        if let Some(fmc) = self.fmc {
            write!(f, " fmc={fmc}")?;
        }
        Ok(())
    }
}

/// A parsed SEV-SNP attestation report (not yet verified: see
/// [`SnpReport::verify`] and [`SnpPolicy::verify`]).
#[derive(Clone, Debug)]
pub struct SnpReport {
    raw: Vec<u8>,
    report: AttestationReport,
}

impl SnpReport {
    /// Parses the 1184 bytes of a report (configfs-tsm's `outblob`).
    pub fn parse(bytes: &[u8]) -> Result<Self, SnpError> {
        if bytes.len() != REPORT_LEN {
            return Err(SnpError::Length(bytes.len()));
        }
        let report =
            AttestationReport::from_bytes(bytes).map_err(|e| SnpError::Parse(e.to_string()))?;
        Ok(SnpReport {
            raw: bytes.to_vec(),
            report,
        })
    }

    /// The report as received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// `VERSION`.
    pub fn version(&self) -> u32 {
        self.report.version
    }

    /// `REPORT_DATA`: the 64 bytes the guest bound into the report.
    pub fn report_data(&self) -> &[u8; 64] {
        &self.report.report_data
    }

    /// `MEASUREMENT`: the launch digest of the guest's initial memory.
    pub fn measurement(&self) -> &[u8; 48] {
        &self.report.measurement
    }

    /// `HOST_DATA`: what the host supplied at launch.
    pub fn host_data(&self) -> &[u8; 32] {
        &self.report.host_data
    }

    /// `POLICY`, read from the raw bytes.
    pub fn policy(&self) -> SnpGuestPolicy {
        let mut bits = [0u8; 8];
        bits.copy_from_slice(&self.raw[0x08..0x10]);
        SnpGuestPolicy(u64::from_le_bytes(bits))
    }

    /// `VMPL`: the privilege level that asked for the report.
    pub fn vmpl(&self) -> u32 {
        self.report.vmpl
    }

    /// `REPORTED_TCB`: the TCB the VCEK was derived from.
    pub fn reported_tcb(&self) -> SnpTcb {
        self.report.reported_tcb.into()
    }

    /// `CURRENT_TCB`.
    pub fn current_tcb(&self) -> SnpTcb {
        self.report.current_tcb.into()
    }

    /// `COMMITTED_TCB`: the TCB the platform cannot be rolled back below.
    pub fn committed_tcb(&self) -> SnpTcb {
        self.report.committed_tcb.into()
    }

    /// `LAUNCH_TCB`: the TCB when the guest was launched.
    pub fn launch_tcb(&self) -> SnpTcb {
        self.report.launch_tcb.into()
    }

    /// `CHIP_ID`: the processor's unique id (zero if the host masked it).
    pub fn chip_id(&self) -> &[u8; 64] {
        &self.report.chip_id
    }

    /// Checks the chain (AMD's ARK → ASK → VCEK) and that the VCEK signed
    /// these bytes. Applies no policy: see [`SnpPolicy::verify`].
    pub fn verify(&self, chain: &SnpChain) -> Result<HardwareReport, SnpError> {
        let vcek = chain.verify()?;
        if self.report.sig_algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(SnpError::SignatureAlgorithm(self.report.sig_algo));
        }
        let signature = p384::ecdsa::Signature::try_from(&self.report.signature)
            .map_err(|e| SnpError::Signature(e.to_string()))?;
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(vcek.public_key_sec1())
            .map_err(|e| SnpError::Certificate(format!("VCEK public key: {e}")))?;
        let digest = sha2::Sha384::new_with_prefix(&self.raw[..SIGNED_LEN]);
        key.verify_digest(digest, &signature)
            .map_err(|e| SnpError::Signature(e.to_string()))?;
        Ok(self.hardware_report())
    }

    /// The common view of this report (whether or not it verified).
    pub fn hardware_report(&self) -> HardwareReport {
        HardwareReport {
            kind: HardwareKind::Snp,
            report_data: *self.report_data(),
            measurement: self.measurement().to_vec(),
            tcb: self.reported_tcb().to_string(),
            debug: self.policy().debug_allowed(),
        }
    }
}

/// What a verifier demands of an SEV-SNP report beyond its signatures.
#[derive(Clone, Debug, Default)]
pub struct SnpPolicy {
    /// Accept guests whose policy allows debugging. Off by default: a
    /// debuggable guest's memory is open to the host.
    pub allow_debug: bool,
    /// The report data the report must carry (nonce, key and tree head
    /// binding); `None` skips the comparison.
    pub report_data: Option<[u8; 64]>,
}

impl SnpPolicy {
    /// Refuse debug and require `report_data`.
    pub fn expecting(report_data: [u8; 64]) -> Self {
        SnpPolicy {
            allow_debug: false,
            report_data: Some(report_data),
        }
    }

    /// The policy's own checks on a parsed report (no signatures).
    pub fn check(&self, report: &SnpReport) -> Vec<SnpError> {
        let mut reasons = Vec::new();
        let policy = report.policy();
        if policy.debug_allowed() && !self.allow_debug {
            reasons.push(SnpError::DebugAllowed(policy.bits()));
        }
        if let Some(expected) = &self.report_data {
            if report.report_data() != expected {
                reasons.push(SnpError::ReportData);
            }
        }
        reasons
    }

    /// Parses `raw`, checks this policy and the signatures, and returns the
    /// report only if everything holds; otherwise every reason found.
    pub fn verify(&self, raw: &[u8], chain: &SnpChain) -> Result<SnpReport, SnpRefused> {
        let report = SnpReport::parse(raw).map_err(|e| SnpRefused { reasons: vec![e] })?;
        let mut reasons = self.check(&report);
        if let Err(e) = report.verify(chain) {
            reasons.push(e);
        }
        if reasons.is_empty() {
            Ok(report)
        } else {
            Err(SnpRefused { reasons })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn vectors() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/attest-vectors/snp")
    }

    fn read(name: &str) -> Vec<u8> {
        let path = vectors().join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn milan_report() -> Vec<u8> {
        let text = String::from_utf8(read("report_milan.hex")).expect("utf-8");
        hex::decode(text.trim()).expect("hex")
    }

    fn milan_chain() -> SnpChain {
        SnpChain::from_pem_stack(&read("cert_chain_milan"), &read("vcek_milan.der"))
            .expect("milan chain")
    }

    fn kinds(err: &SnpRefused) -> Vec<String> {
        err.reasons.iter().map(|r| format!("{r:?}")).collect()
    }

    #[test]
    fn milan_report_verifies_with_its_chain() {
        let raw = milan_report();
        let report = SnpReport::parse(&raw).expect("parse");
        let hw = report.verify(&milan_chain()).expect("verifies");
        assert_eq!(hw.kind, HardwareKind::Snp);
        assert_eq!(&hw.report_data, report.report_data());
        assert_eq!(hw.measurement, report.measurement().to_vec());
        assert!(!hw.debug);
        assert!(hw.tcb.starts_with("bootloader="), "{}", hw.tcb);
        assert_eq!(report.chip_id().len(), 64);

        // The same with the ASK and ARK built into sev.
        let builtin =
            SnpChain::builtin(ProcessorGeneration::Milan, &read("vcek_milan.der")).expect("chain");
        report
            .verify(&builtin)
            .expect("verifies with built-in roots");

        // And through the policy, binding the report data it carries.
        let policy = SnpPolicy::expecting(*report.report_data());
        policy.verify(&raw, &milan_chain()).expect("accepted");
    }

    #[test]
    fn flipped_bit_fails() {
        let mut raw = milan_report();
        raw[0x90] ^= 0x01; // in MEASUREMENT
        let report = SnpReport::parse(&raw).expect("parse");
        let err = report.verify(&milan_chain()).unwrap_err();
        assert!(matches!(err, SnpError::Signature(_)), "{err}");
    }

    #[test]
    fn wrong_chain_fails() {
        // Turin's ASK and ARK are AMD's (the ARK is pinned), but Turin's ASK
        // did not sign the Milan VCEK.
        let chain = SnpChain::from_pem_stack(&read("cert_chain_turin"), &read("vcek_milan.der"))
            .expect("parses");
        let report = SnpReport::parse(&milan_report()).expect("parse");
        let err = report.verify(&chain).unwrap_err();
        assert!(matches!(err, SnpError::Chain(_)), "{err}");

        // The Turin VCEK with its own chain is fine, but did not sign this report.
        let turin = SnpChain::from_pem_stack(&read("cert_chain_turin"), &read("vcek_turin.der"))
            .expect("parses");
        turin.verify().expect("Turin chain verifies");
        let err = report.verify(&turin).unwrap_err();
        assert!(matches!(err, SnpError::Signature(_)), "{err}");
    }

    #[test]
    fn debug_policy_is_refused() {
        let mut raw = milan_report();
        assert!(!SnpReport::parse(&raw)
            .expect("parse")
            .policy()
            .debug_allowed());
        raw[0x08 + 2] ^= 0x08; // policy bit 19
        let report = SnpReport::parse(&raw).expect("parse");
        assert!(report.policy().debug_allowed());
        assert!(report.hardware_report().debug);

        let err = SnpPolicy::default()
            .verify(&raw, &milan_chain())
            .unwrap_err();
        let kinds = kinds(&err);
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        assert!(kinds[0].starts_with("DebugAllowed"), "{kinds:?}");
        assert!(kinds[1].starts_with("Signature"), "{kinds:?}");

        // Allowing debug leaves only the broken signature.
        let lax = SnpPolicy {
            allow_debug: true,
            report_data: None,
        };
        let err = lax.verify(&raw, &milan_chain()).unwrap_err();
        assert_eq!(err.reasons.len(), 1);
        assert!(matches!(err.reasons[0], SnpError::Signature(_)));
    }

    #[test]
    fn wrong_report_data_is_refused() {
        let raw = milan_report();
        let err = SnpPolicy::expecting([0xee; 64])
            .verify(&raw, &milan_chain())
            .unwrap_err();
        assert_eq!(err.reasons.len(), 1, "{err}");
        assert!(matches!(err.reasons[0], SnpError::ReportData));
    }

    #[test]
    fn truncated_report_is_refused() {
        let raw = milan_report();
        let err = SnpReport::parse(&raw[..REPORT_LEN - 1]).unwrap_err();
        assert!(matches!(err, SnpError::Length(1183)), "{err}");
    }
}
