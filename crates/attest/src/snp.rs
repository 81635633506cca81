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
//! [`SnpReport::verify`] also checks that the VCEK certificate was issued for
//! this report's platform, reading the extensions AMD's "VCEK Certificate and
//! KDS Interface Specification" (57230) defines with `x509-parser`
//! ([`VcekExtensions`]): blSPL, teeSPL, snpSPL and ucodeSPL (and fmcSPL,
//! Turin) must equal the report's `REPORTED_TCB`, component by component, and
//! hwID its `CHIP_ID`. A Milan or Genoa hwID is the 64-byte chip id; a Turin
//! hwID is 8 bytes, and Turin's `CHIP_ID` is those 8 bytes followed by 56 zero
//! bytes (the layout `sev` also recognises Turin reports by), so an 8-byte
//! hwID must equal the first 8 bytes of `CHIP_ID` and the rest must be zero.
//! A `CHIP_ID` the host masked (all zero, the guest policy's MASK_CHIP_ID
//! setting, a legitimate privacy choice) cannot be compared: the hwID is
//! then not checked, and the verifier notes it. Each difference is its own
//! [`VcekMismatch`].
//!
//! Not checked: AMD's certificate revocation lists (CRLs), so a revoked VCEK
//! or ASK is still accepted. The VCEK from configfs-tsm's `auxblob` (the GHCB
//! certificate table) is taken by the bounds-checked parser in
//! [`crate::evidence::vcek_from_cert_table`], not by `sev`'s, which uses
//! unchecked pointer arithmetic.

use std::fmt;

use p384::ecdsa::signature::DigestVerifier;
use sev::certs::snp::{builtin, ca, Certificate, Chain, Verifiable};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use sha2::Digest;
use x509_parser::der_parser::der::{parse_der_ia5string, parse_der_integer, DerObject};
use x509_parser::der_parser::error::DerResult;

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
    /// An extension AMD defines for the VCEK certificate is missing or
    /// malformed, so the VCEK cannot be compared with the report.
    #[error("the VCEK certificate's {name} extension ({oid}) {problem}")]
    VcekExtension {
        /// The extension's name in AMD 57230 (`snpSPL`, `hwID`, ...).
        name: &'static str,
        /// Its object identifier.
        oid: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The VCEK certificate is for another TCB or chip than the report
    /// names: one entry per difference (never empty).
    #[error("the VCEK certificate does not match the report: {}", mismatches(.0))]
    VcekMismatch(Vec<VcekMismatch>),
}

/// One way a VCEK certificate's extensions differ from the report it is
/// supposed to have signed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VcekMismatch {
    /// A `REPORTED_TCB` component differs from the VCEK's SPL extension
    /// (`None`: that side has no such component, e.g. fmc outside Turin).
    #[error("{}", tcb_mismatch(.component, *.vcek, *.report))]
    Tcb {
        /// `bootloader`, `tee`, `snp`, `microcode` or `fmc`.
        component: &'static str,
        /// The VCEK's SPL.
        vcek: Option<u8>,
        /// The report's SVN.
        report: Option<u8>,
    },
    /// `CHIP_ID` is not the VCEK's hwID (for an 8-byte Turin hwID: the hwID
    /// followed by 56 zero bytes).
    #[error("VCEK is for chip id {}, the report says {}", hex::encode(.vcek), hex::encode(.report))]
    ChipId {
        /// The VCEK's hwID (64 or 8 bytes).
        vcek: Vec<u8>,
        /// The report's `CHIP_ID`.
        report: Vec<u8>,
    },
}

fn tcb_mismatch(component: &str, vcek: Option<u8>, report: Option<u8>) -> String {
    let vcek = match vcek {
        Some(v) => format!("VCEK is for {component} SPL {v}"),
        None => format!("VCEK has no {component} SPL"),
    };
    match report {
        Some(r) => format!("{vcek}, the report says {r}"),
        None => format!("{vcek}, the report has none"),
    }
}

fn mismatches(list: &[VcekMismatch]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
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

/// An extension AMD defines for VCEK certificates (AMD 57230).
#[derive(Clone, Copy)]
struct Ext {
    name: &'static str,
    oid: &'static str,
}

impl Ext {
    fn error(self, problem: impl Into<String>) -> SnpError {
        SnpError::VcekExtension {
            name: self.name,
            oid: self.oid,
            problem: problem.into(),
        }
    }
}

const EXT_PRODUCT_NAME: Ext = Ext {
    name: "productName",
    oid: "1.3.6.1.4.1.3704.1.2",
};
const EXT_BL_SPL: Ext = Ext {
    name: "blSPL",
    oid: "1.3.6.1.4.1.3704.1.3.1",
};
const EXT_TEE_SPL: Ext = Ext {
    name: "teeSPL",
    oid: "1.3.6.1.4.1.3704.1.3.2",
};
const EXT_SNP_SPL: Ext = Ext {
    name: "snpSPL",
    oid: "1.3.6.1.4.1.3704.1.3.3",
};
const EXT_UCODE_SPL: Ext = Ext {
    name: "ucodeSPL",
    oid: "1.3.6.1.4.1.3704.1.3.8",
};
const EXT_FMC_SPL: Ext = Ext {
    name: "fmcSPL",
    oid: "1.3.6.1.4.1.3704.1.3.9",
};
const EXT_HW_ID: Ext = Ext {
    name: "hwID",
    oid: "1.3.6.1.4.1.3704.1.4",
};

/// The length of a Milan or Genoa hwID and of a report's `CHIP_ID`.
const CHIP_ID_LEN: usize = 64;

/// Whether the host masked the report's `CHIP_ID` (all zero).
pub fn chip_id_masked(report: &SnpReport) -> bool {
    report.chip_id().iter().all(|&b| b == 0)
}
/// The length of a Turin hwID: the first bytes of its `CHIP_ID`, the rest
/// of which is zero.
const TURIN_HW_ID_LEN: usize = 8;

/// What a VCEK certificate says it was issued for: the extensions of AMD's
/// "VCEK Certificate and KDS Interface Specification" (57230), read with
/// `x509-parser`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcekExtensions {
    /// productName (IA5String), e.g. `Milan-B0` or `Turin`; `None` if absent
    /// (it is not compared with anything).
    pub product_name: Option<String>,
    /// blSPL, teeSPL, snpSPL and ucodeSPL (all required), and fmcSPL
    /// (`Some` only if the certificate has it, as Turin VCEKs do).
    pub tcb: SnpTcb,
    /// hwID: the chip id, 64 bytes (Milan, Genoa) or 8 (Turin). AMD puts
    /// the bytes directly in the extension's `extnValue` OCTET STRING (the
    /// SPLs and productName are DER values inside theirs).
    pub hw_id: Vec<u8>,
}

impl VcekExtensions {
    /// Reads the extensions of a DER VCEK certificate. Does not verify the
    /// certificate (see [`SnpReport::verify`], which reads the one it has
    /// verified).
    pub fn from_der(der: &[u8]) -> Result<Self, SnpError> {
        let (rest, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| SnpError::Certificate(format!("VCEK: {e}")))?;
        if !rest.is_empty() {
            return Err(SnpError::Certificate(format!(
                "VCEK: {} bytes after the certificate",
                rest.len()
            )));
        }
        // A second extension with the same OID could say something else
        // than the first one: refuse rather than pick one.
        cert.extensions_map()
            .map_err(|e| SnpError::Certificate(format!("VCEK extensions: {e}")))?;
        let find = |ext: Ext| {
            cert.extensions()
                .iter()
                .find(|e| e.oid.to_id_string() == ext.oid)
                .map(|e| e.value)
        };
        let spl = |ext: Ext| -> Result<Option<u8>, SnpError> {
            let Some(value) = find(ext) else {
                return Ok(None);
            };
            let n = der_value(ext, value, parse_der_integer, "INTEGER")?
                .as_u64()
                .map_err(|e| ext.error(format!("is not an SPL: {e}")))?;
            u8::try_from(n)
                .map(Some)
                .map_err(|_| ext.error(format!("holds {n}, not an SPL (0 to 255)")))
        };
        let required = |ext: Ext| spl(ext)?.ok_or_else(|| ext.error("is missing"));

        let product_name = match find(EXT_PRODUCT_NAME) {
            None => None,
            Some(value) => Some(
                der_value(EXT_PRODUCT_NAME, value, parse_der_ia5string, "IA5String")?
                    .as_str()
                    .map_err(|e| EXT_PRODUCT_NAME.error(format!("is not text: {e}")))?
                    .to_owned(),
            ),
        };
        let tcb = SnpTcb {
            bootloader: required(EXT_BL_SPL)?,
            tee: required(EXT_TEE_SPL)?,
            snp: required(EXT_SNP_SPL)?,
            microcode: required(EXT_UCODE_SPL)?,
            fmc: spl(EXT_FMC_SPL)?,
        };
        // hwID's extnValue OCTET STRING (which x509-parser has decoded)
        // holds the chip id itself, not a DER value as the others do.
        let hw_id = find(EXT_HW_ID)
            .ok_or_else(|| EXT_HW_ID.error("is missing"))?
            .to_vec();
        if hw_id.len() != CHIP_ID_LEN && hw_id.len() != TURIN_HW_ID_LEN {
            return Err(EXT_HW_ID.error(format!(
                "is {} bytes, expected {CHIP_ID_LEN} (Milan, Genoa) or {TURIN_HW_ID_LEN} (Turin)",
                hw_id.len()
            )));
        }
        Ok(VcekExtensions {
            product_name,
            tcb,
            hw_id,
        })
    }

    /// Every difference between this VCEK and `report`'s `REPORTED_TCB` and
    /// `CHIP_ID`; empty if the VCEK is the one for that report's platform.
    ///
    /// Each TCB component is compared, fmc included (the VCEK has fmcSPL
    /// exactly if the report has the Turin TCB layout). A 64-byte hwID must
    /// equal `CHIP_ID`; an 8-byte (Turin) hwID its first 8 bytes, the other
    /// 56 being zero. An all-zero (masked) `CHIP_ID` is not compared.
    pub fn mismatches(&self, report: &SnpReport) -> Vec<VcekMismatch> {
        let mut found = Vec::new();
        let reported = report.reported_tcb();
        let mut tcb = |component, vcek: Option<u8>, report: Option<u8>| {
            if vcek != report {
                found.push(VcekMismatch::Tcb {
                    component,
                    vcek,
                    report,
                });
            }
        };
        tcb(
            "bootloader",
            Some(self.tcb.bootloader),
            Some(reported.bootloader),
        );
        tcb("tee", Some(self.tcb.tee), Some(reported.tee));
        tcb("snp", Some(self.tcb.snp), Some(reported.snp));
        tcb(
            "microcode",
            Some(self.tcb.microcode),
            Some(reported.microcode),
        );
        tcb("fmc", self.tcb.fmc, reported.fmc);

        let chip_id = report.chip_id();
        if !chip_id_masked(report) {
            // hwID padded with zeros to CHIP_ID's length: itself for a
            // 64-byte hwID, Turin's CHIP_ID layout for an 8-byte one.
            let (head, tail) = chip_id.split_at(self.hw_id.len().min(CHIP_ID_LEN));
            if head != self.hw_id.as_slice() || tail.iter().any(|&b| b != 0) {
                found.push(VcekMismatch::ChipId {
                    vcek: self.hw_id.clone(),
                    report: chip_id.to_vec(),
                });
            }
        }
        found
    }
}

/// Parses `value` whole with `parse`.
fn der_value<'a>(
    ext: Ext,
    value: &'a [u8],
    parse: fn(&'a [u8]) -> DerResult<'a>,
    what: &str,
) -> Result<DerObject<'a>, SnpError> {
    match parse(value) {
        Ok(([], object)) => Ok(object),
        Ok((rest, _)) => Err(ext.error(format!("has {} bytes after its {what}", rest.len()))),
        Err(e) => Err(ext.error(format!("is not a DER {what}: {e}"))),
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

    /// Checks the chain (AMD's ARK → ASK → VCEK), that the VCEK signed
    /// these bytes, and that the VCEK's extensions name this report's
    /// `REPORTED_TCB` and `CHIP_ID` ([`VcekExtensions::mismatches`]; all
    /// differences in one [`SnpError::VcekMismatch`]). Applies no policy:
    /// see [`SnpPolicy::verify`].
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
        // The extensions of the certificate just verified (x509-cert's DER
        // re-encoding of it is the certificate's own DER).
        let der = vcek
            .to_der()
            .map_err(|e| SnpError::Certificate(format!("VCEK: {e}")))?;
        let mismatches = VcekExtensions::from_der(&der)?.mismatches(self);
        if !mismatches.is_empty() {
            return Err(SnpError::VcekMismatch(mismatches));
        }
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
mod tests;
