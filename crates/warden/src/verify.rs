//! `warden verify`: checks an attested `warden serve` over the network, or
//! saved evidence, against what the verifier expects (docs/attestation.md).
//! Exit 0 verified, 1 refused (every reason listed), 2 bad input.

use crate::attest::parse_nonce;
use crate::Failure;
use clap::Args;
use serde::Serialize;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use warden_attest::attestation::{
    read_certificate, verify_attestation, verify_certificate, AttestationDoc, AttestationVerdict,
    CertificateFacts, Expected,
};
use warden_attest::verify::{verify_evidence, AppExpectation, Binding, VerifyPolicy};
use warden_attest::{Evidence, ManifestDoc, Sha256Digest, TreeHead};

#[derive(Args)]
pub struct VerifyArgs {
    /// The server to verify, https://HOST:PORT
    #[arg(
        value_name = "URL",
        required_unless_present = "evidence",
        conflicts_with = "evidence"
    )]
    url: Option<String>,
    /// Verify saved evidence or an attestation document instead
    #[arg(long, value_name = "FILE")]
    evidence: Option<PathBuf>,
    /// With --evidence: the attested certificate it came with (PEM or DER)
    #[arg(long, value_name = "FILE", requires = "evidence")]
    cert: Option<PathBuf>,
    /// With --evidence: the nonce the evidence must bind (hex)
    #[arg(long, value_name = "HEX", requires = "evidence")]
    nonce: Option<String>,
    /// What to accept (verify.toml: software keys, runtimes, apps, TCB, age)
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Accept software evidence (no hardware vouches for it)
    #[arg(long = "allow-software")]
    allow_software: bool,
    /// An accepted warden executable, sha256:HEX, or `self` for this one
    #[arg(long, value_name = "DIGEST")]
    runtime: Vec<String>,
    /// An expected app and its code, NAME=sha256:HEX
    #[arg(long, value_name = "NAME=DIGEST")]
    app: Vec<String>,
    /// Expect exactly the apps of this serve manifest, recomputed from its
    /// component files (code, policy, route)
    #[arg(long, value_name = "MANIFEST")]
    manifest: Option<PathBuf>,
    /// A tree head seen before, SIZE:ROOT_HEX, which the server's log must extend
    #[arg(long, value_name = "SIZE:ROOT")]
    since: Option<String>,
    /// The oldest fresh evidence to accept, e.g. 30s [default: 5m or the policy's]
    #[arg(long = "max-age", value_name = "DURATION")]
    max_age: Option<String>,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

/// What `--json` prints.
#[derive(Serialize)]
struct Report {
    verified: bool,
    target: String,
    #[serde(flatten)]
    verdict: AttestationVerdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<CertReport>,
}

#[derive(Serialize)]
struct CertReport {
    tls_key: Sha256Digest,
    not_after: u64,
}

fn bad(what: impl std::fmt::Display) -> Failure {
    Failure::bad_input(what)
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))
}

/// The verification policy: the file, then the flags on top.
fn policy(args: &VerifyArgs) -> Result<VerifyPolicy, Failure> {
    let mut policy = match &args.policy {
        Some(path) => {
            let text = String::from_utf8(read(path)?)
                .map_err(|_| bad(format!("{}: not UTF-8", path.display())))?;
            let base = path.parent().unwrap_or(Path::new("."));
            VerifyPolicy::from_toml(&text, base)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?
        }
        None => VerifyPolicy::default(),
    };
    policy.allow_software |= args.allow_software;
    for r in &args.runtime {
        let digest = if r == "self" {
            crate::attest::runtime()?.exe
        } else {
            Sha256Digest::parse(r).map_err(|e| bad(format!("--runtime: {e}")))?
        };
        policy.runtimes.push(digest);
    }
    for a in &args.app {
        let (name, digest) = a
            .split_once('=')
            .ok_or_else(|| bad(format!("--app `{a}`: expected NAME=sha256:HEX")))?;
        let code = Sha256Digest::parse(digest).map_err(|e| bad(format!("--app {name}: {e}")))?;
        policy.apps.entry(name.to_string()).or_default().code = Some(code);
    }
    // `--manifest`, else the policy file's `manifest`.
    if let Some(path) = args.manifest.clone().or(policy.manifest.clone()) {
        let manifest = warden_serve::Manifest::load(&path).map_err(bad)?;
        for app in warden_serve::attested::measure_manifest(&manifest).map_err(bad)? {
            policy.apps.insert(
                app.name.clone(),
                AppExpectation {
                    code: Some(app.code),
                    policy: Some(app.policy),
                    route: Some(app.route),
                },
            );
        }
    }
    if let Some(age) = &args.max_age {
        policy.max_age =
            warden_policy::parse_duration(age).map_err(|e| bad(format!("--max-age: {e}")))?;
    }
    Ok(policy)
}

fn parse_since(text: &str) -> Result<TreeHead, Failure> {
    let wrong = || {
        bad(format!(
            "--since `{text}`: expected SIZE:ROOT_HEX (64 hex digits)"
        ))
    };
    let (size, root) = text.split_once(':').ok_or_else(wrong)?;
    let size: u64 = size.parse().map_err(|_| wrong())?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(root, &mut bytes).map_err(|_| wrong())?;
    Ok(TreeHead { root: bytes, size })
}

pub fn run(args: VerifyArgs) -> Result<u8, Failure> {
    let policy = policy(&args)?;
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let report = match (&args.url, &args.evidence) {
        (Some(url), _) => live(url, &policy, since)?,
        (None, Some(file)) => saved(&args, file, &policy, since)?,
        (None, None) => return Err(bad("give a URL or --evidence FILE")),
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(Failure::host)?;
        println!("{text}");
    } else {
        print_human(&report);
    }
    Ok(if report.verified { 0 } else { 1 })
}

fn print_human(report: &Report) {
    let v = &report.verdict.verdict;
    let backend = v
        .backend
        .map(|b| format!(" ({b} evidence)"))
        .unwrap_or_default();
    println!(
        "{}: {}{backend}",
        report.target,
        if report.verified {
            "VERIFIED"
        } else {
            "REFUSED"
        }
    );
    if let Some(claims) = &v.claims {
        println!(
            "  runtime  warden {} {}",
            claims.runtime.version, claims.runtime.exe
        );
    }
    if let Some(tree) = &report.verdict.tree {
        println!(
            "  tree     size {} root {}",
            tree.size,
            hex::encode(tree.root)
        );
    }
    for app in &report.verdict.apps {
        println!(
            "  app      {} at {}: code {} policy {}",
            app.name, app.route, app.code, app.policy
        );
    }
    if let Some(cert) = &report.certificate {
        println!("  tls key  {}", cert.tls_key);
    }
    for r in &v.refusals {
        println!("  refused: {r}");
    }
    for n in &v.notes {
        println!("  note: {n}");
    }
}

/// Merges the certificate's verdict into the fresh evidence's.
fn merge(mut fresh: AttestationVerdict, cert: AttestationVerdict) -> AttestationVerdict {
    // A reason both give (software evidence, an unexpected app) is said once.
    for r in cert.verdict.refusals {
        if !fresh.verdict.refusals.contains(&r) {
            fresh.verdict.refuse(format!("certificate: {r}"));
        }
    }
    fresh
}

fn cert_report(facts: &CertificateFacts) -> CertReport {
    CertReport {
        tls_key: facts.tls_key,
        not_after: facts
            .not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}

/// Verifies saved evidence or an attestation document.
fn saved(
    args: &VerifyArgs,
    file: &Path,
    policy: &VerifyPolicy,
    since: Option<TreeHead>,
) -> Result<Report, Failure> {
    let bytes = read(file)?;
    let now = SystemTime::now();
    let nonce = args.nonce.as_deref().map(parse_nonce).transpose()?;
    let facts = match &args.cert {
        Some(path) => Some(
            read_certificate(&certificate_der(&read(path)?))
                .map_err(|e| bad(format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let binding = Binding {
        nonce,
        exporter: None,
        tls_key: facts.as_ref().map(|f| f.tls_key),
        now,
    };
    let expected = Expected { earlier: since };
    let is_document = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| bad(format!("{}: not JSON: {e}", file.display())))?
        .get("manifest")
        .is_some();
    let mut verdict = if is_document {
        let doc = AttestationDoc::from_json(&bytes)
            .map_err(|e| bad(format!("{}: {e}", file.display())))?;
        verify_attestation(&doc, policy, &binding, &expected)
    } else {
        let evidence =
            Evidence::from_json(&bytes).map_err(|e| bad(format!("{}: {e}", file.display())))?;
        AttestationVerdict {
            verdict: verify_evidence(&evidence, policy, &binding),
            tree: None,
            apps: Vec::new(),
        }
    };
    if let Some(facts) = &facts {
        verdict = merge(
            verdict,
            verify_certificate(facts, policy, &Expected::default(), now),
        );
    }
    Ok(Report {
        verified: verdict.verified(),
        target: file.display().to_string(),
        verdict,
        certificate: facts.as_ref().map(cert_report),
    })
}

/// PEM or DER.
fn certificate_der(bytes: &[u8]) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    match rustls_pki_types::CertificateDer::from_pem_slice(bytes) {
        Ok(der) => der.to_vec(),
        Err(_) => bytes.to_vec(),
    }
}

/// Records the server's certificate: trust comes from the evidence bound
/// to its key, not from a CA. The handshake signature is still checked,
/// so the server holds the key the certificate names.
#[derive(Debug)]
struct Capture {
    seen: Mutex<Option<Vec<u8>>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(end_entity.to_vec());
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls_pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `https://HOST[:PORT][/]`.
fn parse_url(url: &str) -> Result<(String, u16), Failure> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| bad(format!("`{url}`: expected https://HOST:PORT")))?;
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad(format!("`{url}`: unclosed [")))?;
        (host.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| bad(format!("`{url}`: bad port `{p}`")))?,
        None => 443,
    };
    if host.is_empty() {
        return Err(bad(format!("`{url}`: no host")));
    }
    Ok((host, port))
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// One `GET` on a kept-alive HTTP/1.1 connection: status and body.
fn get(tls: &mut Tls, host: &str, path: &str) -> Result<(u16, Vec<u8>), String> {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n");
    tls.write_all(request.as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut reader = BufReader::new(&mut *tls);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("reading the answer: {e}"))?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
    let mut length = None;
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("reading the answer: {e}"))?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let length = length.ok_or("the answer has no content-length")?;
    if length > 64 << 20 {
        return Err(format!("an answer of {length} bytes is too large"));
    }
    let mut body = vec![0u8; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok((status, body))
}

fn connect(host: &str, port: u16) -> Result<(Tls, Arc<Capture>), Failure> {
    let provider = warden_serve::server::crypto_provider();
    let capture = Arc::new(Capture {
        seen: Mutex::new(None),
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(Failure::host)?
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| bad(format!("`{host}`: {e}")))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(Failure::host)?;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| bad(format!("{host} has no address")))?;
    let timeout = Duration::from_secs(10);
    let sock = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| bad(format!("cannot connect to {host}:{port}: {e}")))?;
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| bad(format!("TLS handshake with {host}:{port}: {e}")))?;
    }
    Ok((tls, capture))
}

/// Verifies a live server: its certificate, then fresh evidence bound to
/// this connection and a nonce of our own.
fn live(url: &str, policy: &VerifyPolicy, since: Option<TreeHead>) -> Result<Report, Failure> {
    let (host, port) = parse_url(url)?;
    let (mut tls, capture) = connect(&host, port)?;
    let mut exporter = [0u8; 32];
    tls.conn
        .export_keying_material(&mut exporter, warden_serve::attested::EXPORTER_LABEL, None)
        .map_err(Failure::host)?;
    let der = capture
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| Failure::host("the server showed no certificate"))?;
    let now = SystemTime::now();
    let facts = read_certificate(&der).map_err(|e| bad(format!("{url}: {e}")))?;
    let cert_verdict = verify_certificate(&facts, policy, &Expected::default(), now);
    let mut nonce = vec![0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| Failure::host(format!("no randomness: {e}")))?;
    let mut path = format!(
        "/.well-known/warden/attestation?nonce={}",
        hex::encode(&nonce)
    );
    if let Some(tree) = cert_verdict.tree {
        path.push_str(&format!("&since={}", tree.size));
    }
    let fetch = |tls: &mut Tls, path: &str| -> Result<Vec<u8>, Failure> {
        match get(tls, &host, path) {
            Ok((200, body)) => Ok(body),
            Ok((status, body)) => Err(bad(format!(
                "{url}{path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ))),
            Err(e) => Err(bad(format!("{url}: {e}"))),
        }
    };
    let body = fetch(&mut tls, &path)?;
    let doc = AttestationDoc::from_json(&body).map_err(|e| bad(format!("{url}: {e}")))?;
    let binding = Binding {
        nonce: Some(nonce),
        exporter: Some(exporter),
        tls_key: Some(facts.tls_key),
        now,
    };
    let mut verdict = verify_attestation(
        &doc,
        policy,
        &binding,
        &Expected {
            earlier: cert_verdict.tree,
        },
    );
    if let Some(earlier) = since {
        let body = fetch(
            &mut tls,
            &format!("/.well-known/warden/manifest?since={}", earlier.size),
        )?;
        let text = String::from_utf8(body).map_err(|_| bad(format!("{url}: not UTF-8")))?;
        let manifest = ManifestDoc::from_json(&text).map_err(|e| bad(format!("{url}: {e}")))?;
        if manifest.tree != doc.manifest.tree {
            verdict
                .verdict
                .refuse("the server redeployed while being verified; verify again".to_string());
        } else if let Err(e) = manifest.verify_consistency(&earlier) {
            verdict.verdict.refuse(format!(
                "the tree head seen before (size {}, root {}) is not extended by the current one: {e}",
                earlier.size,
                hex::encode(earlier.root)
            ));
        }
    }
    let verdict = merge(verdict, cert_verdict);
    Ok(Report {
        verified: verdict.verified(),
        target: url.to_string(),
        verdict,
        certificate: Some(cert_report(&facts)),
    })
}
