//! Evidence documents (`warden-evidence/1`) and the sources that make them.
//!
//! A piece of evidence is the canonical claims text (see [`crate::claims`])
//! plus something that vouches for it: an SEV-SNP report or a TDX quote
//! whose report data is SHA-512 of the claims text, or, without confidential
//! hardware, an Ed25519 signature by a software key, which proves only who
//! holds the key (the JSON says so in its `notice`).
//!
//! Sources: [`SoftwareKey`] signs; [`TsmSource`] asks the hardware through
//! configfs-tsm ([`crate::tsm`]) and, for SEV-SNP, takes the VCEK from the
//! certificate table the host supplies in `auxblob`.

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::claims::Claims;
use crate::snp::SnpReport;
use crate::tsm::{Provider, Tsm};
use crate::AttestError;

/// The `format` value of evidence.
pub const EVIDENCE_FORMAT: &str = "warden-evidence/1";
/// The `notice` every software evidence document carries.
pub const SOFTWARE_NOTICE: &str = "software evidence: no hardware vouches for these claims";
/// What the software key signs, before the 64 bytes of report data; the
/// context keeps the signature from meaning anything elsewhere.
pub const SOFTWARE_CONTEXT: &[u8] = b"warden-evidence/1 software\0";
/// The VCEK's GUID in the GHCB certificate table, 63da758d-e664-4564-adc5-
/// f4b93be8accd, in RFC 4122 byte order (as the `sev` crate, AMD's sev-tool
/// and go-sev-guest write it).
pub const VCEK_GUID: [u8; 16] = [
    0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd,
];
/// The same GUID in the mixed-endian (EFI `guid_t`) order, first three
/// fields little-endian, as a host following that convention writes it.
const VCEK_GUID_MIXED: [u8; 16] = [
    0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd,
];
/// A certificate table entry: GUID, offset, length.
const CERT_ENTRY_LEN: usize = 24;
/// Length of a software key seed and of its file.
pub const SEED_LEN: usize = 32;

/// What vouches for the claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An Ed25519 signature: no hardware.
    Software,
    /// An AMD SEV-SNP attestation report.
    SevSnp,
    /// An Intel TDX quote.
    Tdx,
}

impl Backend {
    /// The name in evidence JSON: `software`, `sev-snp`, `tdx`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Software => "software",
            Backend::SevSnp => "sev-snp",
            Backend::Tdx => "tdx",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = AttestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Backend::Software, Backend::SevSnp, Backend::Tdx]
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                AttestError::Format(format!(
                    "unknown evidence backend {s:?} (known: software, sev-snp, tdx)"
                ))
            })
    }
}

impl Serialize for Backend {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One evidence document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The exact canonical claims text that was attested.
    pub claims: String,
    /// What vouches for it.
    pub body: EvidenceBody,
}

/// What vouches for the claims, per backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvidenceBody {
    /// An Ed25519 signature over [`SOFTWARE_CONTEXT`] ‖ report data.
    Software {
        public_key: [u8; 32],
        signature: [u8; 64],
    },
    /// The 1184-byte report, and the VCEK certificate (DER) from the
    /// host's certificate table when it supplied one.
    SevSnp {
        report: Vec<u8>,
        vcek: Option<Vec<u8>>,
    },
    /// The DCAP quote.
    Tdx { quote: Vec<u8> },
}

/// The JSON form; field order is key order (byte order).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    backend: String,
    claims: String,
    format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notice: Option<String>,
    #[serde(rename = "sev-snp", default, skip_serializing_if = "Option::is_none")]
    sev_snp: Option<SnpWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    software: Option<SoftwareWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tdx: Option<TdxWire>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SoftwareWire {
    public_key: String,
    signature: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnpWire {
    report: String,
    vcek: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TdxWire {
    quote: String,
}

impl Evidence {
    /// Which backend vouches for it.
    pub fn backend(&self) -> Backend {
        match self.body {
            EvidenceBody::Software { .. } => Backend::Software,
            EvidenceBody::SevSnp { .. } => Backend::SevSnp,
            EvidenceBody::Tdx { .. } => Backend::Tdx,
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        let mut wire = Wire {
            backend: self.backend().to_string(),
            claims: self.claims.clone(),
            format: EVIDENCE_FORMAT.to_string(),
            notice: None,
            sev_snp: None,
            software: None,
            tdx: None,
        };
        match &self.body {
            EvidenceBody::Software {
                public_key,
                signature,
            } => {
                wire.notice = Some(SOFTWARE_NOTICE.to_string());
                wire.software = Some(SoftwareWire {
                    public_key: hex::encode(public_key),
                    signature: hex::encode(signature),
                });
            }
            EvidenceBody::SevSnp { report, vcek } => {
                wire.sev_snp = Some(SnpWire {
                    report: hex::encode(report),
                    vcek: vcek.as_ref().map(hex::encode),
                });
            }
            EvidenceBody::Tdx { quote } => {
                wire.tdx = Some(TdxWire {
                    quote: hex::encode(quote),
                });
            }
        }
        // Strings only: serde_json cannot fail on them.
        serde_json::to_string(&wire).expect("evidence is plain JSON strings")
    }

    /// Reads an evidence document. The claims text is kept as it is: the
    /// verifier checks it is canonical.
    pub fn from_json(json: &[u8]) -> Result<Evidence, AttestError> {
        let bad = |what: String| AttestError::Format(format!("evidence: {what}"));
        let wire: Wire = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
        if wire.format != EVIDENCE_FORMAT {
            return Err(bad(format!(
                "format is {:?}, expected {EVIDENCE_FORMAT:?}",
                wire.format
            )));
        }
        let backend: Backend = wire.backend.parse()?;
        // Exactly the body of the named backend, so nothing is ignored.
        let present: Vec<&str> = [
            (wire.software.is_some(), "software"),
            (wire.sev_snp.is_some(), "sev-snp"),
            (wire.tdx.is_some(), "tdx"),
        ]
        .into_iter()
        .filter_map(|(there, name)| there.then_some(name))
        .collect();
        if present != [backend.as_str()] {
            return Err(bad(format!(
                "backend is {backend} but the document holds {} (expected exactly one \"{backend}\" object)",
                if present.is_empty() {
                    "no backend object".to_string()
                } else {
                    present.join(" and ")
                }
            )));
        }
        match (&wire.notice, backend) {
            (Some(n), Backend::Software) if n == SOFTWARE_NOTICE => {}
            (None, Backend::Software) => {
                return Err(bad(format!(
                    "software evidence must carry the notice {SOFTWARE_NOTICE:?}"
                )))
            }
            (Some(_), Backend::Software) => {
                return Err(bad(format!("the notice must read {SOFTWARE_NOTICE:?}")))
            }
            (Some(_), _) => {
                return Err(bad(format!(
                    "a notice belongs to software evidence only, not {backend}"
                )))
            }
            (None, _) => {}
        }
        let body = match (wire.software, wire.sev_snp, wire.tdx) {
            (Some(sw), None, None) => EvidenceBody::Software {
                public_key: hex_array(&sw.public_key, "software.public_key")?,
                signature: hex_array(&sw.signature, "software.signature")?,
            },
            (None, Some(snp), None) => EvidenceBody::SevSnp {
                report: hex_vec(&snp.report, "sev-snp.report")?,
                vcek: snp
                    .vcek
                    .as_deref()
                    .map(|v| hex_vec(v, "sev-snp.vcek"))
                    .transpose()?,
            },
            (None, None, Some(tdx)) => EvidenceBody::Tdx {
                quote: hex_vec(&tdx.quote, "tdx.quote")?,
            },
            // The presence check above leaves exactly one.
            _ => return Err(bad("more than one backend object".to_string())),
        };
        Ok(Evidence {
            claims: wire.claims,
            body,
        })
    }
}

fn hex_array<const N: usize>(text: &str, field: &str) -> Result<[u8; N], AttestError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| {
        AttestError::Format(format!("evidence: {field} is not {} hex digits", 2 * N))
    })?;
    Ok(out)
}

fn hex_vec(text: &str, field: &str) -> Result<Vec<u8>, AttestError> {
    let bytes = hex::decode(text)
        .map_err(|e| AttestError::Format(format!("evidence: {field} is not hex: {e}")))?;
    if bytes.is_empty() {
        return Err(AttestError::Format(format!("evidence: {field} is empty")));
    }
    Ok(bytes)
}

/// The message the software key signs.
pub(crate) fn software_message(report_data: &[u8; 64]) -> Vec<u8> {
    let mut message = SOFTWARE_CONTEXT.to_vec();
    message.extend_from_slice(report_data);
    message
}

/// Something that can make evidence for claims.
pub trait EvidenceSource: Send + Sync {
    /// What vouches for the evidence it makes.
    fn backend(&self) -> Backend;
    /// Evidence binding `claims`.
    fn attest(&self, claims: &Claims) -> Result<Evidence, AttestError>;
}

/// An Ed25519 key that signs claims when there is no confidential hardware.
/// It proves only that the holder of the key made the evidence.
pub struct SoftwareKey {
    key: SigningKey,
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SoftwareKey({})", hex::encode(self.public_key()))
    }
}

impl SoftwareKey {
    /// The key with this 32-byte seed (RFC 8032 secret key).
    pub fn from_seed(seed: [u8; SEED_LEN]) -> Self {
        let seed = Zeroizing::new(seed);
        SoftwareKey {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The public key that verifies its signatures.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The signature over [`SOFTWARE_CONTEXT`] ‖ `report_data`.
    pub(crate) fn sign(&self, report_data: &[u8; 64]) -> [u8; 64] {
        self.key.sign(&software_message(report_data)).to_bytes()
    }

    /// Reads the 32-byte seed file at `path`, creating it (mode 0600, parent
    /// directories 0700) with a fresh seed if there is none. An existing
    /// file must be a regular file of exactly 32 bytes, not accessible by
    /// group or others: the sealed store's [`warden_seal::KeyFile`] rules,
    /// which this uses.
    pub fn load_or_create(path: &Path) -> Result<Self, AttestError> {
        let seed = warden_seal::KeyFile::new(path)
            .load_or_create()
            .map_err(|e| AttestError::Io(format!("software evidence key: {e}")))?;
        Ok(SoftwareKey::from_seed(*seed.secret()))
    }
}

impl EvidenceSource for SoftwareKey {
    fn backend(&self) -> Backend {
        Backend::Software
    }

    fn attest(&self, claims: &Claims) -> Result<Evidence, AttestError> {
        claims.check()?;
        Ok(Evidence {
            claims: claims.to_text(),
            body: EvidenceBody::Software {
                public_key: self.public_key(),
                signature: self.sign(&claims.report_data()),
            },
        })
    }
}

/// Checks an Ed25519 signature made by [`SoftwareKey`] (strict: no
/// small-order keys, canonical signatures only).
pub(crate) fn verify_software(
    public_key: &[u8; 32],
    signature: &[u8; 64],
    report_data: &[u8; 64],
) -> Result<(), String> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|e| e.to_string())?;
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(&software_message(report_data), &signature)
        .map_err(|e| e.to_string())
}

/// SEV-SNP or TDX evidence from the hardware, through configfs-tsm.
#[derive(Clone, Debug)]
pub struct TsmSource {
    tsm: Tsm,
    backend: Backend,
}

static NEXT_PROBE: AtomicU64 = AtomicU64::new(0);

impl TsmSource {
    /// The configfs-tsm interface under `root` (normally
    /// [`crate::tsm::DEFAULT_ROOT`]): `None` when the directory does not
    /// exist (no confidential hardware, or no kernel support), otherwise a
    /// source for the hardware the kernel's `provider` names. Finding out
    /// makes and removes one report entry; no report is requested.
    pub fn detect(root: &Path) -> Result<Option<TsmSource>, AttestError> {
        match fs::metadata(root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(AttestError::Io(format!(
                    "configfs-tsm: cannot stat {}: {e}",
                    root.display()
                )))
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(AttestError::Io(format!(
                    "configfs-tsm: {} is not a directory",
                    root.display()
                )))
            }
            Ok(_) => {}
        }
        let entry = root.join(format!(
            "warden-probe-{}-{}",
            std::process::id(),
            NEXT_PROBE.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&entry).map_err(|e| {
            AttestError::Io(format!(
                "configfs-tsm: creating entry {}: {e}",
                entry.display()
            ))
        })?;
        let provider = fs::read(entry.join("provider"));
        // configfs removes an entry with rmdir; a plain directory (not
        // configfs) with files in it needs remove_dir_all.
        if fs::remove_dir(&entry).is_err() {
            let _ = fs::remove_dir_all(&entry);
        }
        let provider = provider.map_err(|e| {
            AttestError::Io(format!(
                "configfs-tsm: reading {}: {e} (is {} a configfs-tsm report directory?)",
                entry.join("provider").display(),
                root.display()
            ))
        })?;
        let provider = String::from_utf8_lossy(&provider).trim().to_string();
        let backend = match provider.as_str() {
            "sev_guest" => Backend::SevSnp,
            "tdx_guest" => Backend::Tdx,
            other => {
                return Err(AttestError::Format(format!(
                    "configfs-tsm: unknown provider {other:?} (known: sev_guest, tdx_guest)"
                )))
            }
        };
        Ok(Some(TsmSource {
            tsm: Tsm::new(root),
            backend,
        }))
    }

    /// A source on `tsm` for hardware already known to be `backend`.
    pub fn new(tsm: Tsm, backend: Backend) -> Result<TsmSource, AttestError> {
        if backend == Backend::Software {
            return Err(AttestError::Format(
                "configfs-tsm gives hardware evidence (sev-snp, tdx), not software".to_string(),
            ));
        }
        Ok(TsmSource { tsm, backend })
    }
}

impl EvidenceSource for TsmSource {
    fn backend(&self) -> Backend {
        self.backend
    }

    fn attest(&self, claims: &Claims) -> Result<Evidence, AttestError> {
        claims.check()?;
        let report_data = claims.report_data();
        let report = self
            .tsm
            .report(&report_data, None)
            .map_err(|e| AttestError::Io(e.to_string()))?;
        let got = match report.provider {
            Provider::SevGuest => Backend::SevSnp,
            Provider::TdxGuest => Backend::Tdx,
        };
        if got != self.backend {
            return Err(AttestError::Format(format!(
                "configfs-tsm: provider {} made a {got} report, expected {}",
                report.provider.name(),
                self.backend
            )));
        }
        // The kernel should have bound what we asked for; a mismatch means
        // evidence nobody would accept, so say so here rather than later.
        let mismatch = || {
            AttestError::Format(format!(
                "configfs-tsm: the {got} report does not carry the report data asked for"
            ))
        };
        let body = match self.backend {
            Backend::SevSnp => {
                let parsed = SnpReport::parse(&report.outblob)
                    .map_err(|e| AttestError::Format(format!("configfs-tsm: {e}")))?;
                if parsed.report_data() != &report_data {
                    return Err(mismatch());
                }
                let vcek = match &report.auxblob {
                    Some(table) => vcek_from_cert_table(table)?,
                    None => None,
                };
                EvidenceBody::SevSnp {
                    report: report.outblob,
                    vcek,
                }
            }
            Backend::Tdx | Backend::Software => {
                let quote = dcap_qvl::quote::Quote::parse(&report.outblob).map_err(|e| {
                    AttestError::Format(format!("configfs-tsm: TDX quote does not parse: {e}"))
                })?;
                let td = quote.report.as_td10().ok_or_else(|| {
                    AttestError::Format(
                        "configfs-tsm: the quote is an SGX enclave quote, not a TDX one"
                            .to_string(),
                    )
                })?;
                if td.report_data != report_data {
                    return Err(mismatch());
                }
                EvidenceBody::Tdx {
                    quote: report.outblob,
                }
            }
        };
        Ok(Evidence {
            claims: claims.to_text(),
            body,
        })
    }
}

/// The VCEK certificate (DER) from a GHCB certificate table (configfs-tsm's
/// `auxblob` on SEV-SNP): entries of a 16-byte GUID, a little-endian u32
/// offset from the table's start and a u32 length, ended by an all-zero
/// entry. `None` when the table has no VCEK entry (a host that supplies
/// only a VLEK, or the ASK and ARK).
pub fn vcek_from_cert_table(table: &[u8]) -> Result<Option<Vec<u8>>, AttestError> {
    let bad = |what: String| AttestError::Format(format!("SEV-SNP certificate table: {what}"));
    let mut at = 0usize;
    loop {
        let Some(entry) = table.get(at..at + CERT_ENTRY_LEN) else {
            return Err(bad(format!(
                "no all-zero entry ends the table ({} bytes)",
                table.len()
            )));
        };
        if entry.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let (guid, rest) = entry.split_at(16);
        if guid == VCEK_GUID || guid == VCEK_GUID_MIXED {
            let offset = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let length = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
            let cert = offset
                .checked_add(length)
                .and_then(|end| table.get(offset..end))
                .ok_or_else(|| {
                    bad(format!(
                        "the VCEK at offset {offset}, length {length} lies outside the {}-byte table",
                        table.len()
                    ))
                })?;
            if cert.is_empty() {
                return Err(bad("the VCEK entry is empty".to_string()));
            }
            return Ok(Some(cert.to_vec()));
        }
        at += CERT_ENTRY_LEN;
    }
}

#[cfg(test)]
pub(crate) mod tests;
