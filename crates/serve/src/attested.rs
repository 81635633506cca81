//! Attested TLS: the certificate that says which code serves, and fresh
//! evidence bound to the connection that asks for it.
//!
//! Every deployment appends its runtime and app leaves to one RFC 9162
//! deployment log ([`warden_attest::DeploymentLog`]); a new certificate is
//! made for each tree head (and again before it expires). Its extensions
//! carry the evidence for the tree head and the TLS key, and the manifest
//! with inclusion proofs, under warden's OID arc (`docs/attestation.md`).
//! `/.well-known/warden/attestation?nonce=HEX` answers with evidence that
//! also binds the verifier's nonce and the connection's RFC 9266
//! `tls-exporter` value, so it cannot be replayed or relayed.

use crate::app::effective_policy;
use crate::deploy::Deployment;
use crate::manifest::{AppSpec, Manifest};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use warden_attest::attestation::{document, extension_value, CMW_OID_ARCS};
use warden_attest::{
    AppMeasurement, Claims, DeploymentLog, EvidenceSource, RuntimeMeasurement, Sha256Digest,
    Subject, TreeHead,
};
use warden_policy::Policy;

/// RFC 9266: the exporter label for `tls-exporter` channel bindings.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// How long a certificate is valid, and when a new one replaces it.
pub const CERT_LIFETIME: Duration = Duration::from_secs(24 * 3600);
pub const CERT_ROTATION: Duration = Duration::from_secs(12 * 3600);

/// Why attestation failed.
#[derive(Debug, thiserror::Error)]
pub enum AttestedError {
    #[error("attestation: {0}")]
    Attest(#[from] warden_attest::AttestError),
    #[error("attested certificate: {0}")]
    Cert(String),
    #[error("{0}")]
    BadRequest(String),
}

/// The certificate of one tree head.
struct Current {
    key: Arc<CertifiedKey>,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo.
    tls_key: Sha256Digest,
    made: SystemTime,
}

/// The attestation side of `warden serve --tls attested`.
pub struct Attestor {
    source: Arc<dyn EvidenceSource>,
    runtime: RuntimeMeasurement,
    /// DNS names and IP addresses for the certificate's subjectAltName.
    names: Vec<String>,
    log: Mutex<DeploymentLog>,
    current: RwLock<Option<Current>>,
}

impl std::fmt::Debug for Attestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attestor")
            .field("backend", &self.source.backend())
            .finish()
    }
}

fn now_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Attestor {
    pub fn new(
        source: Arc<dyn EvidenceSource>,
        runtime: RuntimeMeasurement,
        names: Vec<String>,
    ) -> Attestor {
        Attestor {
            source,
            runtime,
            names,
            log: Mutex::new(DeploymentLog::new()),
            current: RwLock::new(None),
        }
    }

    /// Who vouches for the evidence.
    pub fn backend(&self) -> warden_attest::Backend {
        self.source.backend()
    }

    /// What one loaded app is, as its leaf says.
    pub fn measure(app: &crate::app::App) -> Result<AppMeasurement, AttestedError> {
        let code = Sha256Digest::parse(&app.digest)?;
        measurement(&app.spec, code, app.policy())
    }

    /// Appends `deployment` to the log and makes its certificate. Called
    /// before the deployment serves: one that cannot be attested is refused.
    pub fn deployed(&self, deployment: &Deployment) -> Result<TreeHead, AttestedError> {
        let apps = deployment
            .apps
            .iter()
            .map(|a| Attestor::measure(a))
            .collect::<Result<Vec<_>, _>>()?;
        self.deployed_apps(&apps)
    }

    /// Appends one deploy of `apps` and makes its certificate. The log
    /// stays locked until the certificate is made, so a rotation cannot
    /// put an older tree head in a newer certificate.
    pub fn deployed_apps(&self, apps: &[AppMeasurement]) -> Result<TreeHead, AttestedError> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let head = log.append(&self.runtime, apps)?;
        self.make_certificate(head, &log.manifest(None)?.to_json())?;
        Ok(head)
    }

    /// A new certificate for the current tree head if the one served is
    /// past [`CERT_ROTATION`].
    pub fn rotate_if_due(&self) -> Result<bool, AttestedError> {
        self.rotate_if_older(CERT_ROTATION)
    }

    /// A new certificate if the one served is `age` old or older.
    pub fn rotate_if_older(&self, age: Duration) -> Result<bool, AttestedError> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let due = {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            match current.as_ref() {
                Some(c) => c.made.elapsed().unwrap_or(Duration::ZERO) >= age,
                None => false,
            }
        };
        if !due {
            return Ok(false);
        }
        self.make_certificate(log.head(), &log.manifest(None)?.to_json())?;
        Ok(true)
    }

    fn make_certificate(&self, head: TreeHead, manifest: &str) -> Result<(), AttestedError> {
        let cert_err = |e: rcgen::Error| AttestedError::Cert(e.to_string());
        let key_pair = rcgen::KeyPair::generate().map_err(cert_err)?;
        let tls_key = Sha256Digest::of(&rcgen::PublicKeyData::subject_public_key_info(&key_pair));
        let made = SystemTime::now();
        let claims = Claims {
            issued_at: now_secs(made),
            runtime: self.runtime.clone(),
            subject: Subject::Tree(head),
            tls_key: Some(tls_key),
            nonce: None,
            exporter: None,
        };
        let evidence = self.source.attest(&claims)?.to_json();
        let mut params = rcgen::CertificateParams::new(self.names.clone()).map_err(cert_err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "warden attested server");
        params.not_before = (made - Duration::from_secs(300)).into();
        params.not_after = (made + CERT_LIFETIME).into();
        params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            &CMW_OID_ARCS,
            extension_value(&document(&evidence, manifest)),
        )];
        let cert = params.self_signed(&key_pair).map_err(cert_err)?;
        let der_key = rustls_pki_types::PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
        let signing = crate::server::crypto_provider()
            .key_provider
            .load_private_key(der_key)
            .map_err(|e| AttestedError::Cert(e.to_string()))?;
        let key = Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            Some(Current { key, tls_key, made });
        Ok(())
    }

    /// `GET /.well-known/warden/attestation?nonce=HEX[&since=N]`: fresh
    /// evidence binding the nonce and this connection's exporter value, and
    /// the manifest of the same tree head (with a consistency proof from
    /// size N when asked), as one JSON document.
    /// `conn`: what the connection's handshake gave (see [`Connection`]).
    pub fn fresh(&self, query: Option<&str>, conn: &Connection) -> Result<String, AttestedError> {
        let (nonce, since) = parse_query(query)?;
        let nonce = nonce.ok_or_else(|| {
            AttestedError::BadRequest("give a nonce: ?nonce=HEX (8 to 64 bytes)".into())
        })?;
        let (Some(exporter), Some(tls_key)) = (conn.exporter, conn.tls_key) else {
            return Err(AttestedError::BadRequest(
                "fresh evidence is given over attested TLS only".into(),
            ));
        };
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let head = log.head();
        let manifest = log
            .manifest(since)
            .map_err(|e| AttestedError::BadRequest(e.to_string()))?
            .to_json();
        drop(log);
        let claims = Claims {
            issued_at: now_secs(SystemTime::now()),
            runtime: self.runtime.clone(),
            subject: Subject::Tree(head),
            tls_key: Some(tls_key),
            nonce: Some(nonce),
            exporter: Some(exporter),
        };
        let evidence = self.source.attest(&claims)?.to_json();
        Ok(document(&evidence, &manifest))
    }

    /// `GET /.well-known/warden/manifest[?since=N]`.
    pub fn manifest(&self, query: Option<&str>) -> Result<String, AttestedError> {
        let (_, since) = parse_query(query)?;
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        Ok(log
            .manifest(since)
            .map_err(|e| AttestedError::BadRequest(e.to_string()))?
            .to_json())
    }
}

/// The `nonce` and `since` parameters; anything else is refused.
fn parse_query(query: Option<&str>) -> Result<(Option<Vec<u8>>, Option<u64>), AttestedError> {
    let mut nonce = None;
    let mut since = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "nonce" => {
                let bytes = hex::decode(value).map_err(|_| {
                    AttestedError::BadRequest(format!("nonce `{value}` is not hex"))
                })?;
                if !(8..=64).contains(&bytes.len()) {
                    return Err(AttestedError::BadRequest(format!(
                        "a nonce is 8 to 64 bytes, not {}",
                        bytes.len()
                    )));
                }
                nonce = Some(bytes);
            }
            "since" => {
                since = Some(value.parse().map_err(|_| {
                    AttestedError::BadRequest(format!("since `{value}` is not a tree size"))
                })?);
            }
            other => {
                return Err(AttestedError::BadRequest(format!(
                    "unknown parameter `{other}` (nonce and since are known)"
                )))
            }
        }
    }
    Ok((nonce, since))
}

/// An app's leaf from its spec, its file's digest and its effective policy.
fn measurement(
    spec: &AppSpec,
    code: Sha256Digest,
    policy: &Policy,
) -> Result<AppMeasurement, AttestedError> {
    let canonical = policy
        .to_canonical()
        .map_err(|e| AttestedError::Cert(format!("app `{}`: policy: {e}", spec.name)))?;
    let mut namespaces: Vec<String> = spec
        .kv_labels
        .iter()
        .map(|label| format!("{}/{label}", spec.name))
        .collect();
    namespaces.extend(policy.mounts.iter().filter_map(|m| match &m.source {
        warden_policy::MountSource::Sealed { name } => Some(name.clone()),
        _ => None,
    }));
    Ok(AppMeasurement {
        name: spec.name.clone(),
        route: spec.route.to_string(),
        code,
        policy: Sha256Digest::of(&canonical),
        namespaces,
    })
}

/// The leaves a manifest's apps would have when served, without compiling
/// them: what `warden attest --serve` prints and what `warden verify
/// --manifest` expects.
pub fn measure_manifest(manifest: &Manifest) -> Result<Vec<AppMeasurement>, String> {
    let mut apps = Vec::with_capacity(manifest.apps.len());
    for spec in &manifest.apps {
        let bytes = std::fs::read(&spec.component).map_err(|e| {
            format!(
                "app `{}`: cannot read {}: {e}",
                spec.name,
                spec.component.display()
            )
        })?;
        let policy =
            effective_policy(spec, &bytes).map_err(|e| format!("app `{}`: {e}", spec.name))?;
        apps.push(measurement(spec, Sha256Digest::of(&bytes), &policy).map_err(|e| e.to_string())?);
    }
    Ok(apps)
}

/// What an attested TLS connection's handshake gave: its RFC 9266
/// `tls-exporter` value, and the key of the certificate it was shown.
#[derive(Clone, Copy, Debug, Default)]
pub struct Connection {
    pub exporter: Option<[u8; 32]>,
    pub tls_key: Option<Sha256Digest>,
}

impl Attestor {
    /// Called right after a handshake. A certificate rotated between the
    /// handshake and this call would give the wrong key here; evidence
    /// made with it then fails the verifier's key check, which retries on
    /// a new connection (rotation is every 12 hours and on redeploy).
    pub fn connection(&self, tls: &rustls::ServerConnection) -> Connection {
        let mut exporter = [0u8; 32];
        let exporter = tls
            .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
            .ok()
            .map(|e| *e);
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        Connection {
            exporter,
            tls_key: current.as_ref().map(|c| c.tls_key),
        }
    }

    /// A TLS 1.3 server configuration that presents the current attested
    /// certificate: RFC 9266 exporters are defined for TLS 1.3 only.
    pub fn tls_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, AttestedError> {
        let mut config =
            rustls::ServerConfig::builder_with_provider(crate::server::crypto_provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| AttestedError::Cert(e.to_string()))?
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Serves the current attested certificate to every handshake.
#[derive(Debug)]
pub struct Resolver(pub Arc<Attestor>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.0.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().map(|c| c.key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_attest::attestation::{read_certificate, verify_certificate, Expected};
    use warden_attest::{SoftwareKey, VerifyPolicy};

    fn attestor() -> Attestor {
        Attestor::new(
            Arc::new(SoftwareKey::from_seed([9; 32])),
            RuntimeMeasurement {
                exe: Sha256Digest::of(b"warden"),
                version: "0.1.0".into(),
            },
            vec!["localhost".into()],
        )
    }

    fn served(a: &Attestor) -> Vec<u8> {
        let current = a.current.read().unwrap();
        current.as_ref().unwrap().key.cert[0].to_vec()
    }

    fn app(name: &str) -> AppMeasurement {
        AppMeasurement {
            name: name.into(),
            route: format!("/{name}"),
            code: Sha256Digest::of(name.as_bytes()),
            policy: Sha256Digest::of(b"{}"),
            namespaces: vec![format!("{name}/default")],
        }
    }

    #[test]
    fn certificates_carry_the_current_head_and_rotate() {
        let a = attestor();
        let policy = VerifyPolicy {
            allow_software: true,
            ..VerifyPolicy::default()
        };
        let first = a.deployed_apps(&[app("a")]).unwrap();
        let cert1 = served(&a);
        let facts = read_certificate(&cert1).unwrap();
        let v = verify_certificate(&facts, &policy, &Expected::default(), SystemTime::now());
        assert!(v.verified(), "{:?}", v.verdict.refusals);
        assert_eq!(v.tree, Some(first));
        assert_eq!(v.apps, vec![app("a")]);
        // Not due yet: the same certificate.
        assert!(!a.rotate_if_older(Duration::from_secs(3600)).unwrap());
        assert_eq!(served(&a), cert1);
        // Due: a new key and certificate for the same tree head.
        assert!(a.rotate_if_older(Duration::ZERO).unwrap());
        let cert2 = served(&a);
        assert_ne!(cert2, cert1);
        let facts2 = read_certificate(&cert2).unwrap();
        assert_ne!(facts2.tls_key, facts.tls_key);
        let v = verify_certificate(&facts2, &policy, &Expected::default(), SystemTime::now());
        assert_eq!(v.tree, Some(first));
        // A deploy: a new certificate whose head extends the first.
        let second = a.deployed_apps(&[app("a"), app("b")]).unwrap();
        let facts3 = read_certificate(&served(&a)).unwrap();
        let v = verify_certificate(&facts3, &policy, &Expected::default(), SystemTime::now());
        assert!(v.verified(), "{:?}", v.verdict.refusals);
        assert_eq!(v.tree, Some(second));
        assert_eq!(second.size, 2 + 3);
        let proof = a.manifest(Some("since=2")).unwrap();
        let proof = warden_attest::ManifestDoc::from_json(&proof).unwrap();
        proof.verify_consistency(&first).unwrap();
    }

    #[test]
    fn fresh_evidence_needs_a_good_nonce_and_attested_tls() {
        let a = attestor();
        a.deployed_apps(&[app("a")]).unwrap();
        let conn = Connection {
            exporter: Some([1; 32]),
            tls_key: Some(Sha256Digest::of(b"key")),
        };
        let doc = a
            .fresh(Some("nonce=0011223344556677&since=1"), &conn)
            .unwrap();
        assert!(doc.contains("\"consistency\":{\"from\":1"), "{doc}");
        for (query, want) in [
            (None, "give a nonce"),
            (Some("nonce=xyz"), "not hex"),
            (Some("nonce=00"), "8 to 64 bytes"),
            (Some("nonce=0011223344556677&since=x"), "not a tree size"),
            (Some("nonce=0011223344556677&other"), "unknown parameter"),
        ] {
            match a.fresh(query, &conn) {
                Err(AttestedError::BadRequest(e)) => assert!(e.contains(want), "{e}"),
                other => panic!("{query:?}: {other:?}"),
            }
        }
        let plain = Connection::default();
        assert!(matches!(
            a.fresh(Some("nonce=0011223344556677"), &plain),
            Err(AttestedError::BadRequest(_))
        ));
        // A consistency proof from a size the log never had: an error, not a panic.
        assert!(matches!(
            a.fresh(Some("nonce=0011223344556677&since=99"), &conn),
            Err(AttestedError::BadRequest(_))
        ));
    }
}
