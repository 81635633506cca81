//! The evidence verifier: checks a `warden-evidence/1` document against
//! what the verifier accepts ([`VerifyPolicy`], usually `verify.toml`) and
//! what this request expects ([`Binding`]: nonce, TLS exporter and key, the
//! time), and returns a [`Verdict`] listing every reason for refusal, not
//! just the first, together with notes on what was not checked.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest as _, Sha512};

use crate::claims::{Claims, Subject};
use crate::evidence::{verify_software, Backend, Evidence, EvidenceBody};
use crate::measure::Sha256Digest;
use crate::snp::{ProcessorGeneration, SnpChain, SnpError, SnpPolicy, SnpReport, SnpTcb};
use crate::tdx::{TdxCollateral, TdxPolicy, TdxTcbStatus};
use crate::HardwareReport;

mod policy;
pub use policy::{AppExpectation, SnpSettings, TdxSettings, VerifyPolicy};

/// How far in the future `issued_at` may be (clock skew between machines).
pub const MAX_FUTURE_SECS: u64 = 60;
/// The default `max_age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// What this particular request expects the evidence to be bound to.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The nonce the verifier sent; `None`: none was sent.
    pub nonce: Option<Vec<u8>>,
    /// The `tls-exporter` value of the connection the evidence came over.
    pub exporter: Option<[u8; 32]>,
    /// SHA-256 of the server certificate's SubjectPublicKeyInfo.
    pub tls_key: Option<Sha256Digest>,
    /// The verifier's time (age checks, TDX collateral validity).
    pub now: SystemTime,
}

/// A serialisable view of a verified [`HardwareReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HardwareSummary {
    /// `sev-snp` or `tdx`.
    pub kind: String,
    /// The report data, hex.
    pub report_data: String,
    /// The launch measurement, hex (SNP `MEASUREMENT`; TDX `MRTD` and
    /// `RTMR0`..`RTMR3`).
    pub measurement: String,
    /// The platform's TCB.
    pub tcb: String,
    /// Whether the guest is debuggable.
    pub debug: bool,
}

impl From<&HardwareReport> for HardwareSummary {
    fn from(hw: &HardwareReport) -> Self {
        HardwareSummary {
            kind: hw.kind.to_string(),
            report_data: hex::encode(hw.report_data),
            measurement: hex::encode(&hw.measurement),
            tcb: hw.tcb.clone(),
            debug: hw.debug,
        }
    }
}

/// The outcome: accepted only if the claims were read and nothing refused.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    /// What vouched for the claims.
    pub backend: Option<Backend>,
    /// The claims, when they parse.
    pub claims: Option<Claims>,
    /// The hardware report, when its signatures verified.
    pub hardware: Option<HardwareSummary>,
    /// Every reason the evidence is refused.
    pub refusals: Vec<String>,
    /// What was not checked, and other remarks.
    pub notes: Vec<String>,
}

impl Verdict {
    /// Claims present and nothing refused.
    pub fn verified(&self) -> bool {
        self.claims.is_some() && self.refusals.is_empty()
    }

    /// Adds a reason for refusal.
    pub fn refuse(&mut self, reason: impl Into<String>) {
        self.refusals.push(reason.into());
    }

    /// Adds a note.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

/// The start of the note that evidence about a tree head says nothing of
/// the tree's leaves by itself.
pub const TREE_NOT_CHECKED: &str = "subject is a deployment log tree head";

/// Checks `evidence` against `policy` and `binding`; every check runs,
/// so the verdict lists all reasons for refusal.
pub fn verify_evidence(evidence: &Evidence, policy: &VerifyPolicy, binding: &Binding) -> Verdict {
    let mut v = Verdict {
        backend: Some(evidence.backend()),
        ..Verdict::default()
    };
    match Claims::parse(evidence.claims.as_bytes()) {
        Ok(claims) => v.claims = Some(claims),
        Err(e) => v.refuse(e.to_string()),
    }
    // What the backend must bind: SHA-512 of the text as received, which is
    // `claims.report_data()` when it is canonical. Computing it from the
    // text keeps the backend checks meaningful for non-canonical claims too.
    let expected: [u8; 64] = Sha512::digest(evidence.claims.as_bytes()).into();
    let now = match binding.now.duration_since(UNIX_EPOCH) {
        Ok(d) => Some(d.as_secs()),
        Err(_) => {
            v.refuse("the verifier's clock is before 1970: the time cannot be checked");
            None
        }
    };

    match &evidence.body {
        EvidenceBody::Software {
            public_key,
            signature,
        } => check_software(public_key, signature, &expected, policy, &mut v),
        EvidenceBody::SevSnp { report, vcek } => {
            check_snp(report, vcek.as_deref(), &expected, &policy.snp, &mut v)
        }
        EvidenceBody::Tdx { quote } => {
            check_tdx(quote, &expected, &policy.tdx, now.unwrap_or(0), &mut v)
        }
    }
    if let Some(claims) = v.claims.clone() {
        check_binding(&claims, binding, &mut v);
        if let Some(now) = now {
            check_age(claims.issued_at, now, policy.max_age, &mut v);
        }
        check_measurements(&claims, policy, &mut v);
    }
    v
}

fn check_software(
    public_key: &[u8; 32],
    signature: &[u8; 64],
    expected: &[u8; 64],
    policy: &VerifyPolicy,
    v: &mut Verdict,
) {
    if policy.allow_software {
        v.note("software evidence: no hardware vouches for these claims, only the holder of the software key");
    } else {
        v.refuse("software evidence: no hardware vouches for it; accept it with --allow-software (allow_software = true in verify.toml)");
    }
    if policy.software_keys.is_empty() {
        v.note("software key not checked (no software_keys): any key's signature is accepted");
    } else if !policy.software_keys.contains(public_key) {
        v.refuse(format!(
            "software key {} is not one of the accepted software_keys",
            hex::encode(public_key)
        ));
    }
    if let Err(e) = verify_software(public_key, signature, expected) {
        v.refuse(format!(
            "software signature does not verify ({e}): the claims were altered or signed by another key"
        ));
    }
}

fn check_snp(
    raw: &[u8],
    vcek: Option<&[u8]>,
    expected: &[u8; 64],
    settings: &SnpSettings,
    v: &mut Verdict,
) {
    let report = match SnpReport::parse(raw) {
        Ok(r) => r,
        Err(e) => return v.refuse(format!("sev-snp: {e}")),
    };
    let policy = SnpPolicy {
        allow_debug: settings.allow_debug,
        report_data: Some(*expected),
    };
    for reason in policy.check(&report) {
        match reason {
            SnpError::ReportData => v.refuse(
                "sev-snp: the report does not bind these claims \
                 (REPORT_DATA is not SHA-512 of the claims text)",
            ),
            other => v.refuse(format!("sev-snp: {other}")),
        }
    }
    if report.policy().debug_allowed() && settings.allow_debug {
        v.note("sev-snp: the guest is debuggable (accepted: allow_debug)");
    }
    if crate::snp::chip_id_masked(&report) {
        v.note("sev-snp: the host masked the chip id (MASK_CHIP_ID), so the VCEK's hwID is not compared");
    }
    let tcb = report.reported_tcb();
    match &settings.min_tcb {
        Some(min) if tcb_below(&tcb, min) => v.refuse(format!(
            "sev-snp: the reported TCB ({tcb}) is below the minimum ({min})"
        )),
        Some(_) => {}
        None => v.note("sev-snp: the platform TCB is not checked (no min_tcb)"),
    }

    match vcek {
        None => v.refuse(
            "sev-snp: the evidence carries no VCEK certificate (it is not fetched from \
             AMD's KDS), so the report's signature cannot be checked",
        ),
        Some(vcek) => match &settings.chain_pem {
            Some(pem) => {
                match SnpChain::from_pem_stack(pem, vcek).and_then(|chain| report.verify(&chain)) {
                    Ok(hw) => v.hardware = Some((&hw).into()),
                    Err(e) => refuse_snp(v, &e),
                }
            }
            None => verify_builtin(&report, vcek, v),
        },
    }
    v.note("sev-snp: AMD's certificate revocation lists are not checked");
    check_launch(
        "sev-snp",
        "the launch measurement",
        &settings.measurements,
        v,
    );
}

/// Compares the verified hardware's measurement with the accepted ones
/// (an accepted value may be a prefix: TDX's MRTD alone).
fn check_launch(backend: &str, what: &str, accepted: &[Vec<u8>], v: &mut Verdict) {
    if accepted.is_empty() {
        return v.note(format!(
            "{backend}: {what} is not compared with an expected value"
        ));
    }
    let Some(measured) = v
        .hardware
        .as_ref()
        .and_then(|h| hex::decode(&h.measurement).ok())
    else {
        return; // Unverified hardware is refused already.
    };
    if !accepted.iter().any(|a| measured.starts_with(a)) {
        v.refuse(format!(
            "{backend}: {what} {} is not one of the accepted measurements",
            hex::encode(&measured[..measured.len().min(48)])
        ));
    }
}

/// Verifies with the `sev` crate's built-in chain of whichever generation
/// certifies the VCEK (the ARKs are all AMD's, so trying each is safe).
fn verify_builtin(report: &SnpReport, vcek: &[u8], v: &mut Verdict) {
    let mut errors = Vec::new();
    for generation in [
        ProcessorGeneration::Milan,
        ProcessorGeneration::Genoa,
        ProcessorGeneration::Turin,
    ] {
        match SnpChain::builtin(generation, vcek).and_then(|chain| report.verify(&chain)) {
            Ok(hw) => {
                v.hardware = Some((&hw).into());
                v.note(format!(
                    "sev-snp: chain: the sev crate's built-in {generation:?} ASK and ARK"
                ));
                return;
            }
            Err(e) => errors.push(e),
        }
    }
    // A generation whose chain held but whose check failed later (the
    // signature) says more than the generations whose ASK did not sign.
    let telling = errors
        .iter()
        .find(|e| !matches!(e, SnpError::Chain(_) | SnpError::UntrustedRoot));
    match (telling, errors.first()) {
        (Some(e), _) => refuse_snp(v, e),
        (None, Some(e)) => v.refuse(format!(
            "sev-snp: the VCEK is not certified by any of the built-in AMD chains \
             (Milan, Genoa, Turin): {e}"
        )),
        (None, None) => {}
    }
}

/// One refusal per reason: each way the VCEK differs from the report on
/// its own.
fn refuse_snp(v: &mut Verdict, e: &SnpError) {
    match e {
        SnpError::VcekMismatch(mismatches) => {
            for m in mismatches {
                v.refuse(format!("sev-snp: the VCEK does not match the report: {m}"));
            }
        }
        other => v.refuse(format!("sev-snp: {other}")),
    }
}

fn tcb_below(tcb: &SnpTcb, min: &SnpTcb) -> bool {
    tcb.bootloader < min.bootloader
        || tcb.tee < min.tee
        || tcb.snp < min.snp
        || tcb.microcode < min.microcode
        || min.fmc.is_some_and(|m| tcb.fmc.is_none_or(|f| f < m))
}

fn check_tdx(quote: &[u8], expected: &[u8; 64], settings: &TdxSettings, now: u64, v: &mut Verdict) {
    // The report data is read from the quote whether or not it verifies,
    // so that a quote for other claims says so even without collateral.
    match dcap_qvl::quote::Quote::parse(quote) {
        Err(e) => return v.refuse(format!("tdx: the quote does not parse: {e:#}")),
        Ok(parsed) => match parsed.report.as_td10() {
            None => return v.refuse("tdx: the quote is an SGX enclave quote, not a TDX one"),
            Some(td) if &td.report_data != expected => v.refuse(
                "tdx: the quote does not bind these claims \
                 (REPORTDATA is not SHA-512 of the claims text)",
            ),
            Some(_) => {}
        },
    }
    let Some(json) = &settings.collateral else {
        return v.refuse(
            "tdx: no collateral in the verify policy ([tdx] collateral): \
             the quote cannot be verified offline",
        );
    };
    let collateral = match TdxCollateral::from_json(json) {
        Ok(c) => c,
        Err(e) => return v.refuse(format!("tdx: {e}")),
    };
    // Signatures and collateral first with every status allowed, so that a
    // verified quote is shown even when its status is then refused.
    let signatures = TdxPolicy {
        accepted: TdxTcbStatus::ALL.to_vec(),
        allow_debug: settings.allow_debug,
        report_data: None,
    };
    match signatures.verify(quote, &collateral, now) {
        Err(refused) => {
            for reason in refused.reasons {
                v.refuse(format!("tdx: {reason}"));
            }
        }
        Ok(verified) => {
            v.hardware = Some((&verified.hardware_report()).into());
            let policy = TdxPolicy {
                accepted: settings.accepted.clone(),
                allow_debug: settings.allow_debug,
                report_data: None,
            };
            for reason in policy.check(&verified) {
                v.refuse(format!("tdx: {reason}"));
            }
            if verified.debug() && settings.allow_debug {
                v.note("tdx: the TD is debuggable (accepted: allow_debug)");
            }
            if !verified.advisory_ids.is_empty() {
                v.note(format!(
                    "tdx: Intel advisories apply to the platform: {}",
                    verified.advisory_ids.join(", ")
                ));
            }
        }
    }
    check_launch("tdx", "MRTD (with RTMR0..RTMR3)", &settings.measurements, v);
}

fn check_binding(claims: &Claims, binding: &Binding, v: &mut Verdict) {
    match (&binding.nonce, &claims.nonce) {
        (Some(want), Some(got)) if want == got => {}
        (Some(_), Some(_)) => {
            v.refuse("nonce does not match: evidence replayed or for another request")
        }
        (Some(_), None) => v.refuse(
            "nonce expected but the evidence carries none: evidence replayed or made \
             without this request's challenge",
        ),
        (None, _) => v.note("no nonce expected: freshness rests on issued_at and max_age only"),
    }
    match (&binding.exporter, &claims.exporter) {
        (Some(want), Some(got)) if want == got => {}
        (Some(_), Some(_)) => v.refuse("evidence was made for another TLS connection"),
        (Some(_), None) => v.refuse(
            "evidence is not bound to a TLS connection (no exporter), \
             so it may have been relayed from another",
        ),
        (None, _) => v.note("TLS connection binding not checked (no exporter given)"),
    }
    match (&binding.tls_key, &claims.tls_key) {
        (Some(want), Some(got)) if want == got => {}
        (Some(want), Some(got)) => v.refuse(format!(
            "evidence names TLS key {got}, but the connection's key is {want}"
        )),
        (Some(_), None) => v.refuse("evidence names no TLS key, one was expected"),
        (None, _) => v.note("TLS key not checked (none given)"),
    }
}

fn check_age(issued_at: u64, now: u64, max_age: Duration, v: &mut Verdict) {
    if issued_at > now.saturating_add(MAX_FUTURE_SECS) {
        v.refuse(format!(
            "evidence issued {} s in the future (more than the {MAX_FUTURE_SECS} s allowed for clock skew)",
            issued_at - now
        ));
    } else if now.saturating_sub(issued_at) > max_age.as_secs() {
        v.refuse(format!(
            "evidence is {} s old, older than max_age ({} s)",
            now - issued_at,
            max_age.as_secs()
        ));
    }
}

fn check_measurements(claims: &Claims, policy: &VerifyPolicy, v: &mut Verdict) {
    let runtime = &claims.runtime;
    if policy.runtimes.is_empty() {
        v.note("warden executable not checked (no runtimes in the policy)");
    } else if !policy.runtimes.contains(&runtime.exe) {
        v.refuse(format!(
            "warden executable {} (version {:?}) is not one of the accepted runtimes",
            runtime.exe, runtime.version
        ));
    }
    match &claims.subject {
        Subject::Workload(workload) => {
            if policy.workloads.is_empty() {
                v.note("workload not checked (no [[workload]] in the policy)");
            } else if !policy.workloads.contains(workload) {
                v.refuse(format!(
                    "workload (code {}, policy {}) is not one of the accepted workloads",
                    workload.code, workload.policy
                ));
            }
        }
        Subject::Tree(head) => v.note(format!(
            "{TREE_NOT_CHECKED} (size {}): its manifest is checked with the attestation document",
            head.size
        )),
    }
}

#[cfg(test)]
mod tests;
