use super::*;
use crate::claims::tests::sample;
use crate::tsm::fake::{self, Answer, Kernel};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// A GHCB certificate table holding `certs` (GUID, DER) after the
/// entries and the all-zero terminator.
pub(crate) fn cert_table(certs: &[([u8; 16], &[u8])]) -> Vec<u8> {
    let mut table = Vec::new();
    let mut data = Vec::new();
    let mut offset = (certs.len() + 1) * CERT_ENTRY_LEN;
    for (guid, der) in certs {
        table.extend_from_slice(guid);
        table.extend_from_slice(&(offset as u32).to_le_bytes());
        table.extend_from_slice(&(der.len() as u32).to_le_bytes());
        data.extend_from_slice(der);
        offset += der.len();
    }
    table.extend_from_slice(&[0; CERT_ENTRY_LEN]);
    table.extend_from_slice(&data);
    table
}

const ARK_GUID: [u8; 16] = [
    0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae,
];

#[test]
fn backend_names() {
    for b in [Backend::Software, Backend::SevSnp, Backend::Tdx] {
        assert_eq!(b.to_string().parse::<Backend>().unwrap(), b);
    }
    assert_eq!(Backend::SevSnp.to_string(), "sev-snp");
    assert!("sgx".parse::<Backend>().is_err());
}

#[test]
fn software_evidence_json_round_trips() {
    let key = SoftwareKey::from_seed([7; 32]);
    let claims = sample();
    let evidence = key.attest(&claims).unwrap();
    assert_eq!(evidence.backend(), Backend::Software);
    let json = evidence.to_json();
    let EvidenceBody::Software {
        public_key,
        signature,
    } = &evidence.body
    else {
        panic!("software body");
    };
    let expected = format!(
        "{{\"backend\":\"software\",\"claims\":{},\"format\":\"warden-evidence/1\",\
         \"notice\":\"software evidence: no hardware vouches for these claims\",\
         \"software\":{{\"public_key\":\"{}\",\"signature\":\"{}\"}}}}",
        serde_json::to_string(&claims.to_text()).unwrap(),
        hex::encode(public_key),
        hex::encode(signature)
    );
    assert_eq!(json, expected);
    assert_eq!(Evidence::from_json(json.as_bytes()).unwrap(), evidence);
    assert_eq!(*public_key, key.public_key());
    verify_software(public_key, signature, &claims.report_data()).unwrap();
}

#[test]
fn hardware_evidence_json_round_trips() {
    let snp = Evidence {
        claims: sample().to_text(),
        body: EvidenceBody::SevSnp {
            report: vec![1, 2, 3],
            vcek: None,
        },
    };
    let json = snp.to_json();
    assert!(
        json.ends_with(
            ",\"format\":\"warden-evidence/1\",\"sev-snp\":{\"report\":\"010203\",\"vcek\":null}}"
        ),
        "{json}"
    );
    assert_eq!(Evidence::from_json(json.as_bytes()).unwrap(), snp);
    let tdx = Evidence {
        claims: "x".to_string(),
        body: EvidenceBody::Tdx { quote: vec![0xff] },
    };
    assert_eq!(
        tdx.to_json(),
        "{\"backend\":\"tdx\",\"claims\":\"x\",\"format\":\"warden-evidence/1\",\"tdx\":{\"quote\":\"ff\"}}"
    );
    assert_eq!(Evidence::from_json(tdx.to_json().as_bytes()).unwrap(), tdx);
}

#[test]
fn bad_evidence_json_names_the_problem() {
    let good = SoftwareKey::from_seed([7; 32])
        .attest(&sample())
        .unwrap()
        .to_json();
    let cases = [
        (
            good.replace("warden-evidence/1", "warden-evidence/9"),
            "format",
        ),
        (
            good.replace("\"backend\":\"software\"", "\"backend\":\"sgx\""),
            "sgx",
        ),
        (
            good.replace("\"backend\":\"software\"", "\"backend\":\"tdx\""),
            "backend is tdx",
        ),
        (
            good.replace("\"public_key\":\"", "\"public_key\":\"zz"),
            "software.public_key",
        ),
        (
            good.replace("\"signature\":\"", "\"signature\":\"00"),
            "software.signature",
        ),
        (
            good.replace("\"format\"", "\"extra\":1,\"format\""),
            "unknown field `extra`",
        ),
        (good.replace("no hardware", "some hardware"), "notice"),
        ("[]".to_string(), "evidence"),
    ];
    for (json, needle) in cases {
        let err = Evidence::from_json(json.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let tdx = "{\"backend\":\"tdx\",\"claims\":\"x\",\"format\":\"warden-evidence/1\",\"notice\":\"n\",\"tdx\":{\"quote\":\"ff\"}}";
    let err = Evidence::from_json(tdx.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("notice"), "{err}");
}

#[test]
fn software_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/evidence.key");
    let key = SoftwareKey::load_or_create(&path).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    assert_eq!(
        SoftwareKey::load_or_create(&path).unwrap().public_key(),
        key.public_key(),
        "the same key the second time"
    );
    let seed: [u8; 32] = fs::read(&path).unwrap().try_into().unwrap();
    assert_eq!(SoftwareKey::from_seed(seed).public_key(), key.public_key());

    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let err = SoftwareKey::load_or_create(&path).unwrap_err().to_string();
    assert!(err.contains("accessible by group or others"), "{err}");
    assert!(err.contains("chmod 600"), "{err}");

    let short = dir.path().join("short.key");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&short)
        .unwrap()
        .write_all(&[1; 31])
        .unwrap();
    let err = SoftwareKey::load_or_create(&short).unwrap_err().to_string();
    assert!(err.contains("holds 31 bytes"), "{err}");

    let not_file = dir.path().join("dir.key");
    fs::DirBuilder::new().mode(0o700).create(&not_file).unwrap();
    let err = SoftwareKey::load_or_create(&not_file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn cert_table_yields_the_vcek() {
    let vcek = crate::vector("snp/vcek_milan.der");
    let table = cert_table(&[(ARK_GUID, b"ark"), (VCEK_GUID, &vcek)]);
    assert_eq!(vcek_from_cert_table(&table).unwrap(), Some(vcek.clone()));
    let mixed = cert_table(&[(VCEK_GUID_MIXED, &vcek)]);
    assert_eq!(vcek_from_cert_table(&mixed).unwrap(), Some(vcek.clone()));
    assert_eq!(
        vcek_from_cert_table(&cert_table(&[(ARK_GUID, b"ark")])).unwrap(),
        None
    );

    // No terminator; an entry pointing outside the table.
    let err = vcek_from_cert_table(&table[..CERT_ENTRY_LEN]).unwrap_err();
    assert!(err.to_string().contains("no all-zero entry"), "{err}");
    let mut outside = cert_table(&[(VCEK_GUID, &vcek)]);
    outside[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = vcek_from_cert_table(&outside).unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
}

/// The real Milan report with `REPORT_DATA` (0x50..0x90) replaced by
/// what the guest asked for, as the fake kernel's answer; the signature
/// no longer holds, which the verifier's tests cover.
fn snp_answer(vcek: &[u8]) -> Answer {
    let report = crate::vector_hex("snp/report_milan.hex");
    Answer {
        outblob: Box::new(move |inblob| {
            let mut out = report.clone();
            out[0x50..0x90].copy_from_slice(inblob);
            out
        }),
        auxblob: Some(cert_table(&[(ARK_GUID, b"ark"), (VCEK_GUID, vcek)])),
    }
}

#[test]
fn tsm_source_makes_snp_evidence() {
    let root = tempfile::tempdir().unwrap();
    let vcek = crate::vector("snp/vcek_milan.der");
    let kernel = fake::kernel_answering(
        root.path().to_path_buf(),
        "sev_guest",
        Kernel::Honest,
        snp_answer(&vcek),
    );
    let source = TsmSource::new(fake::tsm(root.path()), Backend::SevSnp).unwrap();
    assert_eq!(source.backend(), Backend::SevSnp);
    let claims = sample();
    let evidence = source.attest(&claims).unwrap();
    kernel.join().unwrap();
    assert_eq!(evidence.claims, claims.to_text());
    let EvidenceBody::SevSnp { report, vcek: got } = &evidence.body else {
        panic!("sev-snp body");
    };
    assert_eq!(&report[0x50..0x90], &claims.report_data()[..]);
    assert_eq!(got.as_deref(), Some(&vcek[..]));
    assert_eq!(
        Evidence::from_json(evidence.to_json().as_bytes()).unwrap(),
        evidence
    );

    // The verifier finds the claims bound; only the signature, broken
    // by the fake kernel's edit, is refused.
    let policy = crate::VerifyPolicy {
        snp: crate::verify::SnpSettings {
            chain_pem: Some(crate::vector("snp/cert_chain_milan")),
            ..Default::default()
        },
        ..Default::default()
    };
    let binding = crate::Binding {
        nonce: claims.nonce.clone(),
        exporter: claims.exporter,
        tls_key: claims.tls_key,
        now: std::time::UNIX_EPOCH + std::time::Duration::from_secs(claims.issued_at),
    };
    let verdict = crate::verify_evidence(&evidence, &policy, &binding);
    assert_eq!(verdict.refusals.len(), 1, "{:?}", verdict.refusals);
    assert!(
        verdict.refusals[0].contains("signature does not verify with the VCEK"),
        "{:?}",
        verdict.refusals
    );
}

#[test]
fn tsm_source_refuses_a_report_for_other_data_or_hardware() {
    // The fake "report" (`REPORT:` + data) is no SEV-SNP report.
    let root = tempfile::tempdir().unwrap();
    let kernel = fake::kernel(root.path().to_path_buf(), "sev_guest", Kernel::Honest);
    let source = TsmSource::new(fake::tsm(root.path()), Backend::SevSnp).unwrap();
    let err = source.attest(&sample()).unwrap_err().to_string();
    kernel.join().unwrap();
    assert!(err.contains("1184"), "{err}");

    // A report whose REPORT_DATA is not what was asked for.
    let report = crate::vector_hex("snp/report_milan.hex");
    let kernel = fake::kernel_answering(
        root.path().to_path_buf(),
        "sev_guest",
        Kernel::Honest,
        Answer {
            outblob: Box::new(move |_| report.clone()),
            auxblob: None,
        },
    );
    let err = source.attest(&sample()).unwrap_err().to_string();
    kernel.join().unwrap();
    assert!(err.contains("does not carry the report data"), "{err}");

    // The kernel is a TDX guest's.
    let kernel = fake::kernel(root.path().to_path_buf(), "tdx_guest", Kernel::Honest);
    let err = source.attest(&sample()).unwrap_err().to_string();
    kernel.join().unwrap();
    assert!(err.contains("expected sev-snp"), "{err}");

    assert!(TsmSource::new(fake::tsm(root.path()), Backend::Software).is_err());
}

#[test]
fn detect() {
    let root = tempfile::tempdir().unwrap();
    assert!(TsmSource::detect(&root.path().join("absent"))
        .unwrap()
        .is_none());
    // A plain directory is not configfs: no provider appears.
    let err = TsmSource::detect(root.path()).unwrap_err().to_string();
    assert!(err.contains("provider"), "{err}");
    assert_eq!(
        fs::read_dir(root.path()).unwrap().count(),
        0,
        "probe removed"
    );
}
