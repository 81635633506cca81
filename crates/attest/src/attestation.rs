//! The attestation document — evidence together with the manifest of the
//! tree head it names — where it travels (an attested TLS certificate, the
//! `/.well-known/warden/attestation` endpoint, a saved file), and the
//! checks that tie the two together: the manifest's tree is the one the
//! evidence binds, its runtime leaf is the evidence's runtime, its apps are
//! the expected ones, and a tree head seen earlier is a prefix of it.

use crate::log::{AppMeasurement, Deployment, ManifestDoc};
use crate::verify::{verify_evidence, Binding, Verdict, VerifyPolicy};
use crate::{AttestError, Evidence, Sha256Digest, Subject, TreeHead};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The value of the document's `format` key.
pub const ATTESTATION_FORMAT: &str = "warden-attestation/1";

/// The certificate extension that carries the attestation document: TCG
/// DICE's `tcg-dice-conceptual-message-wrapper`, 2.23.133.5.4.9.
pub const CMW_OID: &str = "2.23.133.5.4.9";
/// The same OID as arcs.
pub const CMW_OID_ARCS: [u64; 6] = [2, 23, 133, 5, 4, 9];
/// The media type in the wrapper.
pub const ATTESTATION_MEDIA_TYPE: &str = "application/vnd.warden.attestation+json";

/// `{"evidence":{…},"format":"warden-attestation/1","manifest":{…}}`.
#[derive(Clone, Debug)]
pub struct AttestationDoc {
    pub evidence: Evidence,
    pub manifest: ManifestDoc,
}

impl AttestationDoc {
    pub fn from_json(bytes: &[u8]) -> Result<AttestationDoc, AttestError> {
        let bad = |what: String| AttestError::Format(format!("attestation document: {what}"));
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        for key in object.keys() {
            if !["evidence", "format", "manifest"].contains(&key.as_str()) {
                return Err(bad(format!("unknown key `{key}`")));
            }
        }
        match object.get("format").and_then(|f| f.as_str()) {
            Some(ATTESTATION_FORMAT) => {}
            other => {
                return Err(bad(format!(
                    "format is {other:?}, not `{ATTESTATION_FORMAT}`"
                )))
            }
        }
        // Every signed or hashed byte string (the claims, the leaves) is a
        // JSON string inside, which survives this round trip unchanged.
        let part = |key: &str| {
            object
                .get(key)
                .map(|v| v.to_string())
                .ok_or_else(|| bad(format!("no `{key}`")))
        };
        Ok(AttestationDoc {
            evidence: Evidence::from_json(part("evidence")?.as_bytes())?,
            manifest: ManifestDoc::from_json(&part("manifest")?)?,
        })
    }

    pub fn to_json(&self) -> String {
        document(&self.evidence.to_json(), &self.manifest.to_json())
    }
}

/// The document from its two parts, each already JSON.
pub fn document(evidence: &str, manifest: &str) -> String {
    format!(
        "{{\"evidence\":{evidence},\"format\":\"{ATTESTATION_FORMAT}\",\"manifest\":{manifest}}}"
    )
}

/// What a verifier expects of a deployment beyond the evidence itself.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    /// A tree head seen before, which the current tree must extend.
    pub earlier: Option<TreeHead>,
}

/// A verdict on an attestation document, with the deployment it shows.
#[derive(Debug, serde::Serialize)]
pub struct AttestationVerdict {
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The current deployment, when the manifest checked out.
    pub tree: Option<TreeHead>,
    pub apps: Vec<AppMeasurement>,
}

impl AttestationVerdict {
    pub fn verified(&self) -> bool {
        self.verdict.verified()
    }
}

/// Checks an attestation document: the evidence (see [`verify_evidence`]),
/// the manifest's proofs, that both name the same tree and runtime, the
/// apps `policy` expects, and consistency with `expected.earlier`. Every
/// reason to refuse is listed.
pub fn verify_attestation(
    doc: &AttestationDoc,
    policy: &VerifyPolicy,
    binding: &Binding,
    expected: &Expected,
) -> AttestationVerdict {
    let mut verdict = verify_evidence(&doc.evidence, policy, binding);
    let mut out = AttestationVerdict {
        verdict: Verdict::default(),
        tree: None,
        apps: Vec::new(),
    };
    match doc.manifest.verify() {
        Ok(deployment) => {
            verdict
                .notes
                .retain(|n| !n.starts_with(crate::verify::TREE_NOT_CHECKED));
            check_deployment(&mut verdict, &deployment, policy);
            out.tree = Some(deployment.tree);
            out.apps = deployment.apps;
        }
        Err(reasons) => {
            for r in reasons {
                verdict.refuse(format!("manifest: {r}"));
            }
        }
    }
    if let Some(earlier) = &expected.earlier {
        if let Err(e) = doc.manifest.verify_consistency(earlier) {
            verdict.refuse(format!(
                "the tree head seen before (size {}, root {}) is not extended by the current one: {e}",
                earlier.size,
                hex::encode(earlier.root)
            ));
        }
    }
    out.verdict = verdict;
    out
}

fn check_deployment(verdict: &mut Verdict, deployment: &Deployment, policy: &VerifyPolicy) {
    if let Some(claims) = verdict.claims.clone() {
        match &claims.subject {
            Subject::Tree(head) if *head == deployment.tree => {}
            Subject::Tree(head) => verdict.refuse(format!(
                "the evidence binds tree head size {} root {}, the manifest is size {} root {}",
                head.size,
                hex::encode(head.root),
                deployment.tree.size,
                hex::encode(deployment.tree.root)
            )),
            Subject::Workload(_) => {
                verdict.refuse("the evidence is for one workload, not a serve deployment")
            }
        }
        if claims.runtime != deployment.runtime {
            verdict.refuse(format!(
                "the manifest's runtime leaf ({} {}) is not the evidence's runtime ({} {})",
                deployment.runtime.version,
                deployment.runtime.exe,
                claims.runtime.version,
                claims.runtime.exe
            ));
        }
    }
    if policy.apps.is_empty() {
        verdict.note("apps not checked: no expected apps given");
        return;
    }
    for (name, want) in &policy.apps {
        let Some(app) = deployment.apps.iter().find(|a| &a.name == name) else {
            verdict.refuse(format!("app `{name}` is expected but not deployed"));
            continue;
        };
        let mut differs = |what: &str, want: String, got: String| {
            if want != got {
                verdict.refuse(format!("app `{name}`: {what} is {got}, expected {want}"));
            }
        };
        if let Some(code) = &want.code {
            differs("code", code.to_string(), app.code.to_string());
        }
        if let Some(p) = &want.policy {
            differs("policy", p.to_string(), app.policy.to_string());
        }
        if let Some(route) = &want.route {
            differs("route", route.clone(), app.route.clone());
        }
    }
    for app in &deployment.apps {
        if !policy.apps.contains_key(&app.name) {
            verdict.refuse(format!(
                "app `{}` ({} at {}) is deployed but not expected",
                app.name, app.code, app.route
            ));
        }
    }
}

/// What an attested certificate says about itself.
#[derive(Clone, Debug)]
pub struct CertificateFacts {
    /// SHA-256 of its SubjectPublicKeyInfo: what evidence binds as `tls_key`.
    pub tls_key: Sha256Digest,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// Whether its self-signature checks out.
    pub self_signed: bool,
    /// The attestation document in its extension.
    pub attestation: Result<AttestationDoc, AttestError>,
}

fn system_time(t: x509_parser::time::ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH
    }
}

/// Reads an attested certificate (DER).
pub fn read_certificate(der: &[u8]) -> Result<CertificateFacts, AttestError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| AttestError::Format(format!("certificate: {e}")))?;
    let tls_key = Sha256Digest::of(cert.public_key().raw);
    let self_signed = cert.verify_signature(None).is_ok();
    let attestation = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == CMW_OID)
        .ok_or_else(|| {
            AttestError::Format(format!(
                "the certificate has no attestation extension ({CMW_OID})"
            ))
        })
        .and_then(|ext| unwrap_extension(ext.value));
    Ok(CertificateFacts {
        tls_key,
        not_before: system_time(cert.validity().not_before),
        not_after: system_time(cert.validity().not_after),
        self_signed,
        attestation,
    })
}

/// The extension's value for `document`: a UTF8String of the JSON
/// wrapper (draft-ietf-rats-msg-wrap's JSON record form).
pub fn extension_value(document: &str) -> Vec<u8> {
    use base64::Engine as _;
    let cmw = format!(
        "[\"{ATTESTATION_MEDIA_TYPE}\",\"{}\"]",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(document)
    );
    let mut value = vec![0x0c];
    let len = cmw.len();
    if len < 0x80 {
        value.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        value.push(0x80 | (bytes.len() - skip) as u8);
        value.extend_from_slice(&bytes[skip..]);
    }
    value.extend_from_slice(cmw.as_bytes());
    value
}

/// The extension's value: a UTF8String holding the JSON wrapper
/// `["application/vnd.warden.attestation+json","BASE64URL"]`.
fn unwrap_extension(value: &[u8]) -> Result<AttestationDoc, AttestError> {
    use base64::Engine as _;
    let bad = |what: &str| AttestError::Format(format!("attestation extension: {what}"));
    let (_, any) = x509_parser::der_parser::der::parse_der_utf8string(value)
        .map_err(|_| bad("not a UTF8String"))?;
    let text = any.as_str().map_err(|_| bad("not UTF-8"))?;
    let wrapper: (String, String) =
        serde_json::from_str(text).map_err(|_| bad("not a JSON [media type, value] wrapper"))?;
    if wrapper.0 != ATTESTATION_MEDIA_TYPE {
        return Err(bad(&format!(
            "media type `{}`, not `{ATTESTATION_MEDIA_TYPE}`",
            wrapper.0
        )));
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(wrapper.1.as_bytes())
        .map_err(|_| bad("value is not base64url"))?;
    AttestationDoc::from_json(&bytes)
}

/// Checks an attested certificate at `now`: valid dates, its
/// self-signature, and the attestation in its extension, whose evidence
/// must bind the certificate's own key. Certificate evidence is as old as
/// the certificate, so its age is checked against the certificate's
/// lifetime rather than `policy.max_age`; freshness is the endpoint's job.
pub fn verify_certificate(
    facts: &CertificateFacts,
    policy: &VerifyPolicy,
    expected: &Expected,
    now: SystemTime,
) -> AttestationVerdict {
    let mut lifetime = policy.clone();
    lifetime.max_age = facts
        .not_after
        .duration_since(facts.not_before)
        .unwrap_or(Duration::ZERO);
    let binding = Binding {
        nonce: None,
        exporter: None,
        tls_key: Some(facts.tls_key),
        now,
    };
    let mut out = match &facts.attestation {
        Ok(doc) => verify_attestation(doc, &lifetime, &binding, expected),
        Err(e) => {
            let mut verdict = Verdict::default();
            verdict.refuse(e.to_string());
            AttestationVerdict {
                verdict,
                tree: None,
                apps: Vec::new(),
            }
        }
    };
    if now > facts.not_after {
        out.verdict.refuse("the certificate has expired");
    }
    if now < facts.not_before {
        out.verdict.refuse("the certificate is not valid yet");
    }
    if !facts.self_signed {
        out.verdict
            .refuse("the certificate's self-signature does not verify (tampered)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::AppExpectation;
    use crate::{Claims, DeploymentLog, EvidenceSource, RuntimeMeasurement, SoftwareKey};

    fn runtime(v: &str) -> RuntimeMeasurement {
        RuntimeMeasurement {
            exe: Sha256Digest::of(v.as_bytes()),
            version: v.into(),
        }
    }

    fn app(name: &str) -> AppMeasurement {
        AppMeasurement {
            name: name.into(),
            route: format!("/{name}/..."),
            code: Sha256Digest::of(name.as_bytes()),
            policy: Sha256Digest::of(b"policy"),
            namespaces: vec![format!("{name}/default")],
        }
    }

    /// A document for `apps` deployed under `manifest_runtime`, whose
    /// evidence claims `claimed` and `subject` (the log's head if None).
    fn document(
        apps: &[AppMeasurement],
        manifest_runtime: &RuntimeMeasurement,
        claimed: &RuntimeMeasurement,
        subject: Option<Subject>,
    ) -> AttestationDoc {
        let mut log = DeploymentLog::new();
        let head = log.append(manifest_runtime, apps).unwrap();
        let claims = Claims {
            issued_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            runtime: claimed.clone(),
            subject: subject.unwrap_or(Subject::Tree(head)),
            tls_key: None,
            nonce: None,
            exporter: None,
        };
        AttestationDoc {
            evidence: SoftwareKey::from_seed([3; 32]).attest(&claims).unwrap(),
            manifest: log.manifest(None).unwrap(),
        }
    }

    fn check(doc: &AttestationDoc, policy: &VerifyPolicy) -> AttestationVerdict {
        let binding = Binding {
            nonce: None,
            exporter: None,
            tls_key: None,
            now: SystemTime::now(),
        };
        verify_attestation(doc, policy, &binding, &Expected::default())
    }

    fn software() -> VerifyPolicy {
        VerifyPolicy {
            allow_software: true,
            ..VerifyPolicy::default()
        }
    }

    #[test]
    fn a_document_verifies_and_shows_its_apps() {
        let r = runtime("1");
        let doc = document(&[app("a"), app("b")], &r, &r, None);
        let mut policy = software();
        for name in ["a", "b"] {
            policy.apps.insert(
                name.into(),
                AppExpectation {
                    code: Some(app(name).code),
                    policy: Some(app(name).policy),
                    route: Some(app(name).route),
                },
            );
        }
        let v = check(&doc, &policy);
        assert!(v.verified(), "{:?}", v.verdict.refusals);
        assert_eq!(v.apps, vec![app("a"), app("b")]);
        assert!(!v
            .verdict
            .notes
            .iter()
            .any(|n| n.starts_with(crate::verify::TREE_NOT_CHECKED)));
        // The same through JSON, as it travels.
        let again = AttestationDoc::from_json(doc.to_json().as_bytes()).unwrap();
        assert!(check(&again, &policy).verified());
        // Another route for `b`, and an app `c` that is not there.
        policy.apps.get_mut("b").unwrap().route = Some("/elsewhere".into());
        policy.apps.insert("c".into(), AppExpectation::default());
        let v = check(&doc, &policy);
        let reasons = format!("{:?}", v.verdict.refusals);
        assert!(
            reasons.contains("app `b`: route is /b/..., expected /elsewhere"),
            "{reasons}"
        );
        assert!(
            reasons.contains("app `c` is expected but not deployed"),
            "{reasons}"
        );
    }

    #[test]
    fn evidence_and_manifest_must_agree() {
        let (r1, r2) = (runtime("1"), runtime("2"));
        // Evidence for another runtime than the manifest's runtime leaf.
        let v = check(&document(&[app("a")], &r1, &r2, None), &software());
        assert!(
            format!("{:?}", v.verdict.refusals).contains("runtime leaf"),
            "{:?}",
            v.verdict.refusals
        );
        // Evidence for another tree than the manifest's.
        let other = TreeHead {
            root: [5; 32],
            size: 2,
        };
        let v = check(
            &document(&[app("a")], &r1, &r1, Some(Subject::Tree(other))),
            &software(),
        );
        assert!(
            format!("{:?}", v.verdict.refusals).contains("the evidence binds tree head"),
            "{:?}",
            v.verdict.refusals
        );
        // A manifest whose leaf was swapped after the fact.
        let mut doc = document(&[app("a")], &r1, &r1, None);
        doc.manifest.apps[0].leaf = doc.manifest.apps[0].leaf.replace("/a/...", "/x/...");
        let v = check(&doc, &software());
        assert!(
            format!("{:?}", v.verdict.refusals).contains("manifest: app `a`"),
            "{:?}",
            v.verdict.refusals
        );
    }

    #[test]
    fn the_extension_round_trips_at_every_length() {
        let r = runtime("1");
        for n in [0, 1, 40, 400] {
            let apps: Vec<_> = (0..n).map(|i| app(&format!("app{i:03}"))).collect();
            let doc = document(&apps, &r, &r, None);
            let value = extension_value(&doc.to_json());
            let back = unwrap_extension(&value).unwrap();
            assert_eq!(back.to_json(), doc.to_json());
        }
        assert!(unwrap_extension(b"\x04\x01x").is_err());
        assert!(AttestationDoc::from_json(b"{\"format\":\"warden-attestation/2\"}").is_err());
        assert!(AttestationDoc::from_json(b"[]").is_err());
    }
}
