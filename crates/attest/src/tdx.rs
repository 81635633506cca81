//! Intel TDX quotes, verified offline with `dcap-qvl`.
//!
//! A TDX quote carries the TD report (MRTD, RTMRs, report data, …), signed by
//! the quoting enclave's attestation key, which the QE report binds, which
//! the PCK certificate signs, up to Intel's SGX root CA (built into
//! dcap-qvl). The collateral (TCB info, QE identity, CRLs, from Intel's PCS
//! or a PCCS) says what the platform's TCB status is, and is valid only for a
//! time window, so verification takes the current time explicitly.

use std::fmt;

use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuoteCollateralV3;

use crate::{HardwareKind, HardwareReport};

/// One reason a TDX quote is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TdxError {
    /// The collateral JSON does not parse.
    #[error("TDX collateral does not parse: {0}")]
    Collateral(String),
    /// dcap-qvl refused the quote: a signature, certificate, CRL, debug TD,
    /// or collateral not valid at the given time.
    #[error("TDX quote does not verify: {0}")]
    Verify(String),
    /// The quote is an SGX enclave quote.
    #[error("the quote is an SGX enclave quote, not a TDX one")]
    NotTdx,
    /// A TCB status this crate does not know.
    #[error("unknown TCB status {0:?}")]
    UnknownStatus(String),
    /// The policy does not accept the platform's TCB status.
    #[error("TCB status {status} is not accepted (accepted: {})", names(accepted))]
    Status {
        /// The platform's status.
        status: TdxTcbStatus,
        /// What the policy accepts.
        accepted: Vec<TdxTcbStatus>,
    },
    /// The TD is debuggable.
    #[error("the TD's attributes allow debugging")]
    DebugAllowed,
    /// `REPORTDATA` is not what the verifier expected.
    #[error("the report data is not the expected value")]
    ReportData,
}

fn names(statuses: &[TdxTcbStatus]) -> String {
    statuses
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every reason a quote was refused.
#[derive(Debug, thiserror::Error)]
#[error("TDX evidence refused: {}", .reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct TdxRefused {
    /// At least one.
    pub reasons: Vec<TdxError>,
}

/// The TCB status Intel's collateral gives the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TdxTcbStatus {
    /// Fully patched.
    UpToDate,
    /// Patched, but software hardening (mitigations in the TD) is needed.
    SWHardeningNeeded,
    /// Patched, but the platform's configuration needs changes.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSWHardeningNeeded,
    /// Firmware or microcode is behind.
    OutOfDate,
    /// Behind and misconfigured.
    OutOfDateConfigurationNeeded,
    /// TD 1.5: launched on an out-of-date TCB that has since been updated.
    TDRelaunchAdvised,
    /// The above plus configuration needed.
    TDRelaunchAdvisedConfigurationNeeded,
    /// The platform's key is revoked.
    Revoked,
}

impl TdxTcbStatus {
    /// Every status.
    pub const ALL: [TdxTcbStatus; 9] = [
        TdxTcbStatus::UpToDate,
        TdxTcbStatus::SWHardeningNeeded,
        TdxTcbStatus::ConfigurationNeeded,
        TdxTcbStatus::ConfigurationAndSWHardeningNeeded,
        TdxTcbStatus::OutOfDate,
        TdxTcbStatus::OutOfDateConfigurationNeeded,
        TdxTcbStatus::TDRelaunchAdvised,
        TdxTcbStatus::TDRelaunchAdvisedConfigurationNeeded,
        TdxTcbStatus::Revoked,
    ];

    /// Intel's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            TdxTcbStatus::UpToDate => "UpToDate",
            TdxTcbStatus::SWHardeningNeeded => "SWHardeningNeeded",
            TdxTcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TdxTcbStatus::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TdxTcbStatus::OutOfDate => "OutOfDate",
            TdxTcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TdxTcbStatus::TDRelaunchAdvised => "TDRelaunchAdvised",
            TdxTcbStatus::TDRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
            TdxTcbStatus::Revoked => "Revoked",
        }
    }

    /// The status with Intel's name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for TdxTcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// PCS collateral for verifying quotes offline.
#[derive(Clone, Debug)]
pub struct TdxCollateral(QuoteCollateralV3);

impl TdxCollateral {
    /// Parses collateral JSON (dcap-qvl's `QuoteCollateralV3` form, as
    /// `dcap-qvl` and Phala's PCCS produce it).
    pub fn from_json(json: &[u8]) -> Result<Self, TdxError> {
        serde_json::from_slice(json)
            .map(TdxCollateral)
            .map_err(|e| TdxError::Collateral(e.to_string()))
    }
}

/// A TDX quote whose signatures and collateral checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxVerified {
    /// The platform's TCB status.
    pub status: TdxTcbStatus,
    /// Intel security advisories that apply (`INTEL-SA-…`).
    pub advisory_ids: Vec<String>,
    /// `REPORTDATA`.
    pub report_data: [u8; 64],
    /// `MRTD`: the measurement of the TD's initial contents.
    pub mr_td: [u8; 48],
    /// `RTMR0`..`RTMR3`: the run-time measurement registers.
    pub rtmrs: [[u8; 48]; 4],
    /// `TDATTRIBUTES`.
    pub td_attributes: [u8; 8],
}

impl TdxVerified {
    /// `TDATTRIBUTES` bit 0, DEBUG.
    pub fn debug(&self) -> bool {
        self.td_attributes[0] & 0x01 != 0
    }

    /// The common view: the measurement is MRTD followed by RTMR0..RTMR3.
    pub fn hardware_report(&self) -> HardwareReport {
        let mut measurement = self.mr_td.to_vec();
        for rtmr in &self.rtmrs {
            measurement.extend_from_slice(rtmr);
        }
        HardwareReport {
            kind: HardwareKind::Tdx,
            report_data: self.report_data,
            measurement,
            tcb: self.status.to_string(),
            debug: self.debug(),
        }
    }
}

/// Verifies `quote` against `collateral` at `now_secs` (Unix time): the
/// signatures up to Intel's root, the CRLs, the collateral's validity and no
/// debug TD. Applies no TCB policy: see [`TdxPolicy::verify`].
pub fn verify(
    quote: &[u8],
    collateral: &TdxCollateral,
    now_secs: u64,
) -> Result<TdxVerified, TdxError> {
    verify_inner(quote, collateral, now_secs, false)
}

fn verify_inner(
    quote: &[u8],
    collateral: &TdxCollateral,
    now_secs: u64,
    allow_debug: bool,
) -> Result<TdxVerified, TdxError> {
    let verified = QuoteVerifier::new_prod()
        .allow_debug(allow_debug)
        .verify(quote, &collateral.0, now_secs)
        .map_err(|e| TdxError::Verify(format!("{e:#}")))?;
    let td = verified.report.as_td10().ok_or(TdxError::NotTdx)?;
    let status = TdxTcbStatus::from_name(&verified.status)
        .ok_or_else(|| TdxError::UnknownStatus(verified.status.clone()))?;
    Ok(TdxVerified {
        status,
        advisory_ids: verified.advisory_ids.clone(),
        report_data: td.report_data,
        mr_td: td.mr_td,
        rtmrs: [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3],
        td_attributes: td.td_attributes,
    })
}

/// What a verifier demands of a TDX quote beyond its signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxPolicy {
    /// The TCB statuses accepted.
    pub accepted: Vec<TdxTcbStatus>,
    /// Accept a debuggable TD. Off unless set.
    pub allow_debug: bool,
    /// The report data the quote must carry; `None` skips the comparison.
    pub report_data: Option<[u8; 64]>,
}

impl TdxPolicy {
    /// Only `UpToDate`, no debug.
    pub fn strict() -> Self {
        TdxPolicy {
            accepted: vec![TdxTcbStatus::UpToDate],
            allow_debug: false,
            report_data: None,
        }
    }

    /// Every status but `Revoked`: `UpToDate`, `SWHardeningNeeded`,
    /// `ConfigurationNeeded`, `ConfigurationAndSWHardeningNeeded`,
    /// `OutOfDate`, `OutOfDateConfigurationNeeded`, `TDRelaunchAdvised`,
    /// `TDRelaunchAdvisedConfigurationNeeded`; no debug.
    pub fn lax() -> Self {
        TdxPolicy {
            accepted: TdxTcbStatus::ALL
                .into_iter()
                .filter(|s| *s != TdxTcbStatus::Revoked)
                .collect(),
            ..TdxPolicy::strict()
        }
    }

    /// Also require `report_data`.
    pub fn expecting(mut self, report_data: [u8; 64]) -> Self {
        self.report_data = Some(report_data);
        self
    }

    /// The policy's own checks on a verified quote.
    pub fn check(&self, quote: &TdxVerified) -> Vec<TdxError> {
        let mut reasons = Vec::new();
        if !self.accepted.contains(&quote.status) {
            reasons.push(TdxError::Status {
                status: quote.status,
                accepted: self.accepted.clone(),
            });
        }
        if quote.debug() && !self.allow_debug {
            reasons.push(TdxError::DebugAllowed);
        }
        if let Some(expected) = &self.report_data {
            if &quote.report_data != expected {
                reasons.push(TdxError::ReportData);
            }
        }
        reasons
    }

    /// Verifies `quote` (see [`verify`]) and checks this policy; returns the
    /// quote only if everything holds, otherwise every reason found.
    pub fn verify(
        &self,
        quote: &[u8],
        collateral: &TdxCollateral,
        now_secs: u64,
    ) -> Result<TdxVerified, TdxRefused> {
        let verified = verify_inner(quote, collateral, now_secs, self.allow_debug)
            .map_err(|e| TdxRefused { reasons: vec![e] })?;
        let reasons = self.check(&verified);
        if reasons.is_empty() {
            Ok(verified)
        } else {
            Err(TdxRefused { reasons })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// 2025-07-01T00:00:00Z: inside `tdx_quote_collateral.json`'s TCB info
    /// and QE identity (2025-06-19 to 2025-07-19).
    const GOOD_NOW: u64 = 1_751_328_000;
    /// 2026-03-01T00:00:00Z: inside the outdated pair's collateral
    /// (2026-02-18 to 2026-03-20).
    const OUTDATED_NOW: u64 = 1_772_323_200;

    fn read(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/attest-vectors/tdx")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn good() -> (Vec<u8>, TdxCollateral) {
        let collateral =
            TdxCollateral::from_json(&read("tdx_quote_collateral.json")).expect("collateral");
        (read("tdx_quote"), collateral)
    }

    fn outdated() -> (Vec<u8>, TdxCollateral) {
        let collateral = TdxCollateral::from_json(&read("tdx_quote_outdated_collateral.json"))
            .expect("collateral");
        (read("tdx_quote_outdated"), collateral)
    }

    #[test]
    fn good_quote_verifies() {
        let (quote, collateral) = good();
        let verified = verify(&quote, &collateral, GOOD_NOW).expect("verifies");
        assert_eq!(verified.status, TdxTcbStatus::UpToDate);
        assert!(!verified.debug());
        let strict = TdxPolicy::strict().expecting(verified.report_data);
        assert_eq!(
            strict
                .verify(&quote, &collateral, GOOD_NOW)
                .expect("accepted"),
            verified
        );
        let hw = verified.hardware_report();
        assert_eq!(hw.kind, HardwareKind::Tdx);
        assert_eq!(hw.tcb, "UpToDate");
        assert_eq!(hw.measurement.len(), 5 * 48);
        assert_eq!(&hw.measurement[..48], &verified.mr_td);
        // REPORTDATA sits at offset 568 of a v4 quote.
        assert_eq!(&quote[568..632], &verified.report_data);
    }

    #[test]
    fn outdated_quote_is_refused() {
        // The vendored "outdated" pair is a TD 1.5 quote whose TEE TCB SVN
        // (TDX component 0 = 3) is below every TCB level in its collateral
        // (all need 5; evaluation data number 18). dcap-qvl, like Intel's
        // QVL, then finds no TCB level at all and refuses the quote outright,
        // so no policy, strict or lax, can accept it.
        let (quote, collateral) = outdated();
        for policy in [TdxPolicy::strict(), TdxPolicy::lax()] {
            let err = policy
                .verify(&quote, &collateral, OUTDATED_NOW)
                .unwrap_err();
            assert_eq!(err.reasons.len(), 1, "{err}");
            assert!(
                matches!(&err.reasons[0], TdxError::Verify(m) if m.contains("No matching TCB level")),
                "{err}"
            );
        }
    }

    #[test]
    fn out_of_date_status_refused_strict_accepted_lax() {
        // The policy step on its own, for a quote that did verify with an
        // OutOfDate platform (the real good quote, its status changed).
        let (quote, collateral) = good();
        let mut verified = verify(&quote, &collateral, GOOD_NOW).expect("verifies");
        verified.status = TdxTcbStatus::OutOfDate;

        let reasons = TdxPolicy::strict().check(&verified);
        assert_eq!(reasons.len(), 1);
        assert!(matches!(
            &reasons[0],
            TdxError::Status { status: TdxTcbStatus::OutOfDate, accepted } if accepted == &[TdxTcbStatus::UpToDate]
        ));
        assert!(TdxPolicy::lax().check(&verified).is_empty());

        verified.status = TdxTcbStatus::Revoked;
        assert_eq!(
            TdxPolicy::lax().check(&verified).len(),
            1,
            "Revoked is never accepted"
        );
    }

    #[test]
    fn debug_td_is_refused() {
        let (quote, collateral) = good();
        let mut verified = verify(&quote, &collateral, GOOD_NOW).expect("verifies");
        verified.td_attributes[0] |= 0x01;
        assert!(verified.hardware_report().debug);
        let reasons = TdxPolicy::lax().check(&verified);
        assert!(matches!(reasons.as_slice(), [TdxError::DebugAllowed]));
    }

    #[test]
    fn flipped_byte_fails() {
        let (mut quote, collateral) = good();
        quote[568] ^= 0x01; // first byte of REPORTDATA
        let err = verify(&quote, &collateral, GOOD_NOW).unwrap_err();
        assert!(matches!(err, TdxError::Verify(_)), "{err}");
    }

    #[test]
    fn time_outside_collateral_validity_fails() {
        let (quote, collateral) = good();
        // A year after the collateral's next update, and a year before it was issued.
        for now in [GOOD_NOW + 365 * 86_400, GOOD_NOW - 365 * 86_400] {
            let err = verify(&quote, &collateral, now).unwrap_err();
            assert!(matches!(err, TdxError::Verify(_)), "{err}");
        }
    }

    #[test]
    fn wrong_report_data_is_refused() {
        let (quote, collateral) = good();
        let err = TdxPolicy::strict()
            .expecting([0xee; 64])
            .verify(&quote, &collateral, GOOD_NOW)
            .unwrap_err();
        assert_eq!(err.reasons.len(), 1, "{err}");
        assert!(matches!(err.reasons[0], TdxError::ReportData));
    }

    #[test]
    fn bad_collateral_json() {
        let err = TdxCollateral::from_json(b"{}").unwrap_err();
        assert!(matches!(err, TdxError::Collateral(_)), "{err}");
    }
}
