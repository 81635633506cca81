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

/// `REPORTED_TCB` and `CHIP_ID` in the report.
const REPORTED_TCB: usize = 0x180;
const CHIP_ID: usize = 0x1A0;

fn vcek(name: &str) -> VcekExtensions {
    VcekExtensions::from_der(&read(name)).expect("extensions")
}

fn tcb(component: &'static str, vcek: Option<u8>, report: Option<u8>) -> VcekMismatch {
    VcekMismatch::Tcb {
        component,
        vcek,
        report,
    }
}

fn texts(mismatches: &[VcekMismatch]) -> Vec<String> {
    mismatches.iter().map(ToString::to_string).collect()
}

#[test]
fn milan_vcek_matches_its_report() {
    let ext = vcek("vcek_milan.der");
    assert_eq!(ext.product_name.as_deref(), Some("Milan-B0"));
    assert_eq!(
        ext.tcb,
        SnpTcb {
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
            fmc: None,
        }
    );
    let report = SnpReport::parse(&milan_report()).expect("parse");
    assert_eq!(ext.tcb, report.reported_tcb());
    assert_eq!(ext.hw_id.as_slice(), report.chip_id().as_slice());
    assert_eq!(ext.mismatches(&report), vec![]);
    // And as part of verification (the chain, the signature, then this).
    report.verify(&milan_chain()).expect("verifies");
}

#[test]
fn altered_reported_tcb_and_chip_id_are_each_named() {
    let raw = milan_report();
    let mut altered = raw.clone();
    altered[REPORTED_TCB] = 2; // bootloader 3 -> 2
    altered[REPORTED_TCB + 1] = 1; // tee 0 -> 1
    altered[REPORTED_TCB + 6] = 9; // snp 8 -> 9
    altered[REPORTED_TCB + 7] = 0x72; // microcode 115 -> 114
    altered[CHIP_ID] ^= 0xff;
    let report = SnpReport::parse(&altered).expect("parse");
    let ext = vcek("vcek_milan.der");
    let found = ext.mismatches(&report);
    assert_eq!(
        found,
        vec![
            tcb("bootloader", Some(3), Some(2)),
            tcb("tee", Some(0), Some(1)),
            tcb("snp", Some(8), Some(9)),
            tcb("microcode", Some(115), Some(114)),
            VcekMismatch::ChipId {
                vcek: raw[CHIP_ID..CHIP_ID + 64].to_vec(),
                report: altered[CHIP_ID..CHIP_ID + 64].to_vec(),
            },
        ]
    );
    let said = texts(&found);
    assert_eq!(said[0], "VCEK is for bootloader SPL 3, the report says 2");
    assert_eq!(said[1], "VCEK is for tee SPL 0, the report says 1");
    assert_eq!(said[2], "VCEK is for snp SPL 8, the report says 9");
    assert_eq!(
        said[3],
        "VCEK is for microcode SPL 115, the report says 114"
    );
    assert_eq!(
        said[4],
        format!(
            "VCEK is for chip id {}, the report says {}",
            hex::encode(&raw[CHIP_ID..CHIP_ID + 64]),
            hex::encode(&altered[CHIP_ID..CHIP_ID + 64])
        )
    );

    // One component alone is one reason.
    let mut one = raw.clone();
    one[REPORTED_TCB + 6] = 7;
    let report = SnpReport::parse(&one).expect("parse");
    assert_eq!(
        texts(&ext.mismatches(&report)),
        ["VCEK is for snp SPL 8, the report says 7"]
    );
    // Altered bytes break the signature, which verification checks first.
    let err = report.verify(&milan_chain()).unwrap_err();
    assert!(matches!(err, SnpError::Signature(_)), "{err}");
}

#[test]
fn vcek_mismatch_error_lists_every_reason() {
    let err = SnpError::VcekMismatch(vec![
        tcb("snp", Some(22), Some(21)),
        tcb("fmc", Some(1), None),
    ]);
    assert_eq!(
        err.to_string(),
        "the VCEK certificate does not match the report: \
         VCEK is for snp SPL 22, the report says 21; \
         VCEK is for fmc SPL 1, the report has none"
    );
}

#[test]
fn milan_report_against_the_turin_vcek() {
    let raw = milan_report();
    let report = SnpReport::parse(&raw).expect("parse");
    let turin = vcek("vcek_turin.der");
    let found = turin.mismatches(&report);
    assert_eq!(
        found,
        vec![
            tcb("bootloader", Some(0), Some(3)),
            tcb("snp", Some(0), Some(8)),
            tcb("microcode", Some(9), Some(115)),
            tcb("fmc", Some(0), None),
            VcekMismatch::ChipId {
                vcek: turin.hw_id.clone(),
                report: raw[CHIP_ID..CHIP_ID + 64].to_vec(),
            },
        ]
    );
    assert_eq!(
        texts(&found[..4]),
        [
            "VCEK is for bootloader SPL 0, the report says 3",
            "VCEK is for snp SPL 0, the report says 8",
            "VCEK is for microcode SPL 9, the report says 115",
            "VCEK is for fmc SPL 0, the report has none",
        ]
    );
}

#[test]
fn turin_vcek_extensions_are_read() {
    let ext = vcek("vcek_turin.der");
    assert!(
        ext.product_name
            .as_deref()
            .is_some_and(|n| n.starts_with("Turin")),
        "{:?}",
        ext.product_name
    );
    assert_eq!(
        ext.tcb,
        SnpTcb {
            bootloader: 0,
            tee: 0,
            snp: 0,
            microcode: 9,
            fmc: Some(0),
        }
    );
    assert_eq!(ext.hw_id.len(), 8, "Turin's hwID is 8 bytes");
}

/// A report in Turin's layout for the Turin VCEK: its `CHIP_ID` the
/// 8-byte hwID and 56 zero bytes, its `REPORTED_TCB` fmc, bootloader,
/// tee, snp, 3 reserved bytes, microcode. (A version 2 report: `sev`
/// takes the layout from the `CHIP_ID`'s shape.)
fn turin_like_report(ext: &VcekExtensions) -> Vec<u8> {
    let mut raw = milan_report();
    raw[CHIP_ID..CHIP_ID + 64].fill(0);
    raw[CHIP_ID..CHIP_ID + 8].copy_from_slice(&ext.hw_id);
    let t = ext.tcb;
    raw[REPORTED_TCB..REPORTED_TCB + 8].copy_from_slice(&[
        t.fmc.expect("fmc"),
        t.bootloader,
        t.tee,
        t.snp,
        0,
        0,
        0,
        t.microcode,
    ]);
    raw
}

#[test]
fn turin_hw_id_is_the_chip_id_prefix_with_zeros_after() {
    let ext = vcek("vcek_turin.der");
    let raw = turin_like_report(&ext);
    let report = SnpReport::parse(&raw).expect("parse");
    assert_eq!(report.reported_tcb(), ext.tcb, "Turin layout, fmc read");
    assert_eq!(ext.mismatches(&report), vec![]);

    // Another fmc SVN.
    let mut other = raw.clone();
    other[REPORTED_TCB] = 1;
    let report = SnpReport::parse(&other).expect("parse");
    assert_eq!(
        texts(&ext.mismatches(&report)),
        ["VCEK is for fmc SPL 0, the report says 1"]
    );

    // Another chip's 8 bytes.
    let mut other = raw.clone();
    other[CHIP_ID + 7] ^= 0x01;
    let report = SnpReport::parse(&other).expect("parse");
    assert_eq!(
        ext.mismatches(&report),
        vec![VcekMismatch::ChipId {
            vcek: ext.hw_id.clone(),
            report: other[CHIP_ID..CHIP_ID + 64].to_vec(),
        }]
    );

    // The hwID's 8 bytes, but more after them: not Turin's CHIP_ID (and
    // so `sev` reads the pre-Turin TCB layout, which has no fmc).
    let mut other = raw.clone();
    other[CHIP_ID + 8] = 0x01;
    let report = SnpReport::parse(&other).expect("parse");
    let found = ext.mismatches(&report);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0], tcb("fmc", Some(0), None));
    assert!(
        matches!(&found[1], VcekMismatch::ChipId { .. }),
        "{found:?}"
    );
}

#[test]
fn masked_chip_id_is_not_compared() {
    // A version 3 report names its CPU (family 0x19, model 0x01: Milan),
    // so `sev` parses it with an all-zero CHIP_ID too.
    let mut raw = milan_report();
    raw[0..4].copy_from_slice(&3u32.to_le_bytes());
    raw[0x188] = 0x19;
    raw[0x189] = 0x01;
    raw[CHIP_ID..CHIP_ID + 64].fill(0);
    let report = SnpReport::parse(&raw).expect("parse");
    let ext = vcek("vcek_milan.der");
    assert!(chip_id_masked(&report));
    assert_eq!(ext.mismatches(&report), vec![]);
}

/// `der` with the first `from` replaced by `to` (same length).
fn patched(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = der
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in the certificate");
    let mut out = der.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

#[test]
fn missing_or_malformed_vcek_extensions_are_refused() {
    // The DER of OID 1.3.6.1.4.1.3704.1.3 (AMD's SPL arc), then the
    // arc, then the extension value's OCTET STRING and its content.
    const SPL: [u8; 11] = [
        0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03,
    ];
    let der = read("vcek_milan.der");
    let snp_spl = [&SPL[..], &[0x03, 0x04, 0x03, 0x02, 0x01, 0x08]].concat();

    // snpSPL renamed (…1.3.3 -> …1.3.10): missing.
    let renamed = [&SPL[..], &[0x0a, 0x04, 0x03, 0x02, 0x01, 0x08]].concat();
    let err = VcekExtensions::from_der(&patched(&der, &snp_spl, &renamed)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the VCEK certificate's snpSPL extension (1.3.6.1.4.1.3704.1.3.3) is missing"
    );

    // snpSPL as an OCTET STRING instead of an INTEGER.
    let retagged = [&SPL[..], &[0x03, 0x04, 0x03, 0x04, 0x01, 0x08]].concat();
    let err = VcekExtensions::from_der(&patched(&der, &snp_spl, &retagged)).unwrap_err();
    assert!(
        matches!(err, SnpError::VcekExtension { name: "snpSPL", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("is not a DER INTEGER"), "{err}");

    // snpSPL negative.
    let negative = [&SPL[..], &[0x03, 0x04, 0x03, 0x02, 0x01, 0x88]].concat();
    let err = VcekExtensions::from_der(&patched(&der, &snp_spl, &negative)).unwrap_err();
    assert!(
        matches!(err, SnpError::VcekExtension { name: "snpSPL", .. }),
        "{err}"
    );

    // Two snpSPL extensions (…1.3.4 renamed to …1.3.3): refused, not
    // one of them picked.
    let spl4 = [&SPL[..], &[0x04]].concat();
    let spl3 = [&SPL[..], &[0x03]].concat();
    let err = VcekExtensions::from_der(&patched(&der, &spl4, &spl3)).unwrap_err();
    assert!(matches!(err, SnpError::Certificate(_)), "{err}");
}

#[test]
fn truncated_report_is_refused() {
    let raw = milan_report();
    let err = SnpReport::parse(&raw[..REPORT_LEN - 1]).unwrap_err();
    assert!(matches!(err, SnpError::Length(1183)), "{err}");
}
