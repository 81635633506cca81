use super::*;
use crate::claims::tests::sample;
use crate::evidence::{EvidenceSource, SoftwareKey};
use crate::measure::{TreeHead, WorkloadMeasurement};
use crate::{vector, vector_hex};

/// `sample()`'s issued_at, inside the good TDX quote's collateral window.
const NOW: u64 = 1_751_328_000;
/// Inside the outdated TDX quote's collateral window.
const OUTDATED_NOW: u64 = 1_772_323_200;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn key() -> SoftwareKey {
    SoftwareKey::from_seed([7; 32])
}

fn workload(claims: &Claims) -> WorkloadMeasurement {
    match &claims.subject {
        Subject::Workload(w) => w.clone(),
        Subject::Tree(_) => panic!("sample has a workload"),
    }
}

/// Accepts `sample()` signed by `key()`.
fn policy() -> VerifyPolicy {
    let claims = sample();
    VerifyPolicy {
        allow_software: true,
        software_keys: vec![key().public_key()],
        runtimes: vec![claims.runtime.exe],
        workloads: vec![workload(&claims)],
        ..VerifyPolicy::default()
    }
}

/// What `sample()` is bound to, ten seconds later.
fn binding() -> Binding {
    let claims = sample();
    Binding {
        nonce: claims.nonce.clone(),
        exporter: claims.exporter,
        tls_key: claims.tls_key,
        now: at(NOW + 10),
    }
}

fn software(claims: &Claims) -> Evidence {
    key().attest(claims).unwrap()
}

/// The single refusal, which must contain `needle`.
fn refused_once(verdict: &Verdict, needle: &str) {
    assert!(!verdict.verified());
    assert_eq!(verdict.refusals.len(), 1, "{:?}", verdict.refusals);
    assert!(
        verdict.refusals[0].contains(needle),
        "{needle}: {:?}",
        verdict.refusals
    );
}

#[test]
fn software_evidence_accepted_when_allowed() {
    let evidence = software(&sample());
    let verdict = verify_evidence(&evidence, &policy(), &binding());
    assert!(verdict.verified(), "{:?}", verdict.refusals);
    assert_eq!(verdict.claims, Some(sample()));
    assert_eq!(verdict.backend, Some(Backend::Software));
    assert!(verdict.hardware.is_none());
    assert!(
        verdict
            .notes
            .iter()
            .any(|n| n.contains("no hardware vouches")),
        "{:?}",
        verdict.notes
    );
    let json = serde_json::to_value(&verdict).unwrap();
    assert_eq!(json["backend"], "software");
    assert_eq!(json["claims"]["format"], "warden-claims/1");
    assert_eq!(json["refusals"], serde_json::json!([]));

    // Unpinned keys, runtimes and workloads: accepted, with notes.
    let lax = VerifyPolicy {
        allow_software: true,
        ..VerifyPolicy::default()
    };
    let verdict = verify_evidence(&evidence, &lax, &binding());
    assert!(verdict.verified(), "{:?}", verdict.refusals);
    for needle in [
        "software key not checked",
        "executable not checked",
        "workload not checked",
    ] {
        assert!(
            verdict.notes.iter().any(|n| n.contains(needle)),
            "{needle}: {:?}",
            verdict.notes
        );
    }
}

#[test]
fn software_evidence_refused_when_not_allowed() {
    let policy = VerifyPolicy {
        allow_software: false,
        ..policy()
    };
    let verdict = verify_evidence(&software(&sample()), &policy, &binding());
    refused_once(
        &verdict,
        "software evidence: no hardware vouches for it; accept it with --allow-software (allow_software = true in verify.toml)",
    );
}

#[test]
fn wrong_software_key() {
    let evidence = SoftwareKey::from_seed([8; 32]).attest(&sample()).unwrap();
    let verdict = verify_evidence(&evidence, &policy(), &binding());
    refused_once(&verdict, "is not one of the accepted software_keys");
}

#[test]
fn tampered_claims_break_the_signature() {
    let mut evidence = software(&sample());
    // Other canonical claims, still fresh and accepted on their own.
    evidence.claims = Claims {
        issued_at: NOW + 1,
        ..sample()
    }
    .to_text();
    let verdict = verify_evidence(&evidence, &policy(), &binding());
    refused_once(&verdict, "software signature does not verify");
}

#[test]
fn non_canonical_claims_are_refused() {
    let text = sample().to_text().replace(",\"format\"", ", \"format\"");
    let key = key();
    let signature = key.sign(&Sha512::digest(text.as_bytes()).into());
    let evidence = Evidence {
        claims: text,
        body: EvidenceBody::Software {
            public_key: key.public_key(),
            signature,
        },
    };
    let verdict = verify_evidence(&evidence, &policy(), &binding());
    refused_once(&verdict, "not in canonical form");
    assert!(verdict.claims.is_none());
}

#[test]
fn nonce_binding() {
    let evidence = software(&sample());
    let other = Binding {
        nonce: Some(vec![0xcd; 16]),
        ..binding()
    };
    refused_once(
        &verify_evidence(&evidence, &policy(), &other),
        "nonce does not match: evidence replayed or for another request",
    );

    let without = software(&Claims {
        nonce: None,
        ..sample()
    });
    refused_once(
        &verify_evidence(&without, &policy(), &binding()),
        "nonce expected but the evidence carries none",
    );

    // No nonce expected: accepted, with a note.
    let none = Binding {
        nonce: None,
        ..binding()
    };
    let verdict = verify_evidence(&without, &policy(), &none);
    assert!(verdict.verified(), "{:?}", verdict.refusals);
    assert!(verdict
        .notes
        .iter()
        .any(|n| n.contains("no nonce expected")));
}

#[test]
fn other_tls_connection_or_key() {
    let evidence = software(&sample());
    let other = Binding {
        exporter: Some([0x22; 32]),
        ..binding()
    };
    refused_once(
        &verify_evidence(&evidence, &policy(), &other),
        "evidence was made for another TLS connection",
    );
    let other = Binding {
        tls_key: Some(Sha256Digest::of(b"other spki")),
        ..binding()
    };
    refused_once(
        &verify_evidence(&evidence, &policy(), &other),
        "names TLS key",
    );
}

#[test]
fn age_limits() {
    let evidence = software(&sample());
    let when = |now| Binding {
        now: at(now),
        ..binding()
    };
    for ok in [NOW, NOW + 300, NOW - 60] {
        let verdict = verify_evidence(&evidence, &policy(), &when(ok));
        assert!(verdict.verified(), "{ok}: {:?}", verdict.refusals);
    }
    refused_once(
        &verify_evidence(&evidence, &policy(), &when(NOW + 301)),
        "301 s old, older than max_age (300 s)",
    );
    refused_once(
        &verify_evidence(&evidence, &policy(), &when(NOW - 61)),
        "61 s in the future",
    );
}

#[test]
fn runtime_and_workload_must_be_accepted() {
    let evidence = software(&sample());
    let policy_runtime = VerifyPolicy {
        runtimes: vec![Sha256Digest::of(b"another warden")],
        ..policy()
    };
    refused_once(
        &verify_evidence(&evidence, &policy_runtime, &binding()),
        "is not one of the accepted runtimes",
    );
    let policy_workload = VerifyPolicy {
        workloads: vec![WorkloadMeasurement {
            code: Sha256Digest::of(b"code"),
            policy: Sha256Digest::of(b"another policy"),
        }],
        ..policy()
    };
    refused_once(
        &verify_evidence(&evidence, &policy_workload, &binding()),
        "is not one of the accepted workloads",
    );

    // A tree head subject is not a workload: noted, not refused.
    let tree = software(&Claims {
        subject: Subject::Tree(TreeHead {
            root: [1; 32],
            size: 5,
        }),
        ..sample()
    });
    let verdict = verify_evidence(&tree, &policy(), &binding());
    assert!(verdict.verified(), "{:?}", verdict.refusals);
    assert!(verdict
        .notes
        .iter()
        .any(|n| n.contains("tree head (size 5)")));
}

#[test]
fn every_reason_is_listed() {
    let evidence = software(&Claims {
        nonce: Some(vec![0xcd; 8]),
        ..sample()
    });
    let policy = VerifyPolicy {
        allow_software: false,
        software_keys: vec![[9; 32]],
        runtimes: vec![Sha256Digest::of(b"another warden")],
        workloads: vec![WorkloadMeasurement {
            code: Sha256Digest::of(b"x"),
            policy: Sha256Digest::of(b"y"),
        }],
        ..VerifyPolicy::default()
    };
    let binding = Binding {
        exporter: Some([0x22; 32]),
        tls_key: Some(Sha256Digest::of(b"other spki")),
        now: at(NOW + 3600),
        ..binding()
    };
    let verdict = verify_evidence(&evidence, &policy, &binding);
    let expected = [
        "--allow-software",
        "software_keys",
        "nonce does not match",
        "another TLS connection",
        "names TLS key",
        "older than max_age",
        "accepted runtimes",
        "accepted workloads",
    ];
    assert_eq!(
        verdict.refusals.len(),
        expected.len(),
        "{:#?}",
        verdict.refusals
    );
    for (reason, needle) in verdict.refusals.iter().zip(expected) {
        assert!(reason.contains(needle), "{needle}: {reason}");
    }
}

fn snp_evidence(report: Vec<u8>, vcek: Option<Vec<u8>>) -> Evidence {
    Evidence {
        claims: sample().to_text(),
        body: EvidenceBody::SevSnp { report, vcek },
    }
}

fn snp_policy(chain: Option<&str>) -> VerifyPolicy {
    VerifyPolicy {
        snp: SnpSettings {
            chain_pem: chain.map(vector),
            ..SnpSettings::default()
        },
        ..policy()
    }
}

const SNP_UNBOUND: &str = "sev-snp: the report does not bind these claims";

#[test]
fn snp_chain_verifies_but_report_data_does_not_bind_the_claims() {
    let evidence = snp_evidence(
        vector_hex("snp/report_milan.hex"),
        Some(vector("snp/vcek_milan.der")),
    );
    for chain in [Some("snp/cert_chain_milan"), None] {
        let verdict = verify_evidence(&evidence, &snp_policy(chain), &binding());
        refused_once(&verdict, SNP_UNBOUND);
        let hw = verdict.hardware.as_ref().expect("the report verified");
        assert_eq!(hw.kind, "sev-snp");
        assert!(!hw.debug);
        assert!(hw.tcb.starts_with("bootloader="), "{}", hw.tcb);
        assert_eq!(verdict.backend, Some(Backend::SevSnp));
        if chain.is_none() {
            assert!(
                verdict.notes.iter().any(|n| n.contains("built-in Milan")),
                "{:?}",
                verdict.notes
            );
        }
    }
}

#[test]
fn snp_flipped_bit_breaks_the_signature() {
    let mut report = vector_hex("snp/report_milan.hex");
    report[0x90] ^= 0x01; // in MEASUREMENT
    let evidence = snp_evidence(report, Some(vector("snp/vcek_milan.der")));
    for chain in [Some("snp/cert_chain_milan"), None] {
        let verdict = verify_evidence(&evidence, &snp_policy(chain), &binding());
        assert!(verdict.hardware.is_none());
        assert_eq!(verdict.refusals.len(), 2, "{:?}", verdict.refusals);
        assert!(verdict.refusals[0].contains(SNP_UNBOUND));
        assert!(
            verdict.refusals[1].contains("signature does not verify with the VCEK"),
            "{:?}",
            verdict.refusals
        );
    }
}

#[test]
fn snp_wrong_chain_missing_vcek_low_tcb() {
    let report = vector_hex("snp/report_milan.hex");
    let evidence = snp_evidence(report.clone(), Some(vector("snp/vcek_milan.der")));
    let verdict = verify_evidence(
        &evidence,
        &snp_policy(Some("snp/cert_chain_turin")),
        &binding(),
    );
    assert_eq!(verdict.refusals.len(), 2, "{:?}", verdict.refusals);
    assert!(
        verdict.refusals[1].contains("certificate chain does not verify"),
        "{:?}",
        verdict.refusals
    );
    assert!(verdict.hardware.is_none());

    let verdict = verify_evidence(
        &snp_evidence(report.clone(), None),
        &snp_policy(None),
        &binding(),
    );
    assert_eq!(verdict.refusals.len(), 2, "{:?}", verdict.refusals);
    assert!(verdict.refusals[1].contains("no VCEK"));

    let mut policy = snp_policy(Some("snp/cert_chain_milan"));
    policy.snp.min_tcb = Some(SnpTcb {
        bootloader: 0,
        tee: 0,
        snp: 255,
        microcode: 0,
        fmc: None,
    });
    let verdict = verify_evidence(&evidence, &policy, &binding());
    assert_eq!(verdict.refusals.len(), 2, "{:?}", verdict.refusals);
    assert!(verdict.refusals[1].contains("is below the minimum"));
    policy.snp.min_tcb = Some(SnpTcb {
        bootloader: 0,
        tee: 0,
        snp: 0,
        microcode: 0,
        fmc: None,
    });
    refused_once(
        &verify_evidence(&evidence, &policy, &binding()),
        SNP_UNBOUND,
    );
}

fn tdx_evidence(quote: &str) -> Evidence {
    Evidence {
        claims: sample().to_text(),
        body: EvidenceBody::Tdx {
            quote: vector(quote),
        },
    }
}

#[test]
fn launch_measurements_are_pinned() {
    // The real quote verifies (its report data is not these claims',
    // which is refused on its own); only the measurement check varies.
    let evidence = Evidence {
        claims: sample().to_text(),
        body: EvidenceBody::Tdx {
            quote: vector("tdx/tdx_quote"),
        },
    };
    let mut policy = tdx_policy(Some("tdx/tdx_quote_collateral.json"));
    let v = verify_evidence(&evidence, &policy, &binding());
    let mrtd = hex::decode(&v.hardware.as_ref().expect("verified").measurement).unwrap();
    assert!(v.notes.iter().any(|n| n.contains("not compared")));
    policy.tdx.measurements = vec![mrtd[..48].to_vec()];
    let v = verify_evidence(&evidence, &policy, &binding());
    assert!(!format!("{:?}", v.refusals).contains("accepted measurements"));
    policy.tdx.measurements = vec![mrtd.clone()];
    let v = verify_evidence(&evidence, &policy, &binding());
    assert!(!format!("{:?}", v.refusals).contains("accepted measurements"));
    policy.tdx.measurements = vec![vec![0; 48]];
    let v = verify_evidence(&evidence, &policy, &binding());
    assert!(
        format!("{:?}", v.refusals).contains("is not one of the accepted measurements"),
        "{:?}",
        v.refusals
    );
    let dir = tempfile::tempdir().unwrap();
    let err = VerifyPolicy::from_toml("[tdx]\nmeasurements = [\"abcd\"]\n", dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tdx.measurements[0]"), "{err}");
}

fn tdx_policy(collateral: Option<&str>) -> VerifyPolicy {
    VerifyPolicy {
        tdx: TdxSettings {
            collateral: collateral.map(vector),
            ..TdxSettings::default()
        },
        ..policy()
    }
}

const TDX_UNBOUND: &str = "tdx: the quote does not bind these claims";

#[test]
fn tdx_quote_verifies_but_report_data_does_not_bind_the_claims() {
    let evidence = tdx_evidence("tdx/tdx_quote");
    let verdict = verify_evidence(
        &evidence,
        &tdx_policy(Some("tdx/tdx_quote_collateral.json")),
        &binding(),
    );
    refused_once(&verdict, TDX_UNBOUND);
    let hw = verdict.hardware.as_ref().expect("the quote verified");
    assert_eq!(hw.kind, "tdx");
    assert_eq!(hw.tcb, "UpToDate");
    assert_eq!(hw.measurement.len(), 2 * 5 * 48);

    // Without collateral the quote cannot be verified.
    let verdict = verify_evidence(&evidence, &tdx_policy(None), &binding());
    assert_eq!(verdict.refusals.len(), 2, "{:?}", verdict.refusals);
    assert!(verdict.refusals[0].contains(TDX_UNBOUND));
    assert!(verdict.refusals[1].contains("no collateral"));
    assert!(verdict.hardware.is_none());
}

#[test]
fn tdx_outdated_quote_is_refused() {
    let evidence = Evidence {
        claims: Claims {
            issued_at: OUTDATED_NOW,
            ..sample()
        }
        .to_text(),
        body: EvidenceBody::Tdx {
            quote: vector("tdx/tdx_quote_outdated"),
        },
    };
    let binding = Binding {
        now: at(OUTDATED_NOW),
        ..binding()
    };
    let verdict = verify_evidence(
        &evidence,
        &tdx_policy(Some("tdx/tdx_quote_outdated_collateral.json")),
        &binding,
    );
    assert!(verdict.hardware.is_none());
    assert_eq!(verdict.refusals.len(), 2, "{:?}", verdict.refusals);
    assert!(verdict.refusals[0].contains(TDX_UNBOUND));
    assert!(
        verdict.refusals[1].contains("No matching TCB level"),
        "{:?}",
        verdict.refusals
    );
}
