//! Attestation end to end: `warden serve --tls attested` over real
//! sockets, `warden verify` as a user runs it, `warden attest` and saved
//! evidence, and the attacks the design is for (replayed or relayed
//! evidence, swapped apps, rewritten history, a tampered certificate).

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::attest::{pem, Conn};
use support::serve::{example_app, http_app, Server};
use support::{run, s, tempdir, warden_cmd, write, Output};
use warden_attest::attestation::{
    read_certificate, verify_attestation, verify_certificate, AttestationDoc, Expected,
};
use warden_attest::verify::{Binding, VerifyPolicy};

/// A manifest in `dir` serving the test app under each `(name, route)`,
/// the first with a sealed key-value store.
fn manifest(dir: &Path, apps: &[(&str, &str)]) -> PathBuf {
    let app = http_app();
    let mut text = String::new();
    for (i, (name, route)) in apps.iter().enumerate() {
        text.push_str(&format!(
            "[[app]]\nname = \"{name}\"\nroute = \"{route}\"\ncomponent = \"{}\"\n",
            app.display()
        ));
        if i == 0 {
            text.push_str("key_value_stores = [\"default\"]\n");
        }
    }
    write(dir, "Warden.toml", &text)
}

fn key(dir: &Path) -> PathBuf {
    dir.join("attest.key")
}

/// `warden serve MANIFEST --tls attested` with software evidence.
fn attested(dir: &Path, manifest: &Path) -> Server {
    Server::start_tls(
        dir,
        &[
            s(manifest),
            "--tls",
            "attested",
            "--evidence",
            "software",
            "--attest-key",
            s(&key(dir)),
        ],
    )
}

fn verify(args: &[&str]) -> Output {
    run(warden_cmd("verify", args))
}

fn text(out: &Output) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn https(server: &Server) -> String {
    format!("https://{}", server.addr)
}

fn tree_of(report: &serde_json::Value) -> String {
    let tree = &report["tree"];
    format!(
        "{}:{}",
        tree["size"].as_u64().unwrap(),
        tree["root"].as_str().unwrap()
    )
}

#[test]
fn verify_checks_a_live_server_and_lists_every_reason_to_refuse() {
    let dir = tempdir();
    let m = manifest(dir.path(), &[("a", "/a/..."), ("b", "/b")]);
    let server = attested(dir.path(), &m);
    let url = https(&server);

    // Accepted: software allowed, this warden, exactly the manifest's apps.
    let out = verify(&[
        &url,
        "--allow-software",
        "--runtime",
        "self",
        "--manifest",
        s(&m),
        "--json",
    ]);
    assert_eq!(out.code, Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["verified"], true);
    assert_eq!(report["backend"], "software");
    let apps = report["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 2);
    assert_eq!(apps[0]["name"], "a");
    assert_eq!(apps[0]["route"], "/a/...");
    assert_eq!(apps[0]["namespaces"], serde_json::json!(["a/default"]));
    assert_eq!(
        apps[0]["code"].as_str().unwrap(),
        support::sha256_text(&std::fs::read(http_app()).unwrap())
    );
    // The same, for a person.
    let out = verify(&[
        &url,
        "--allow-software",
        "--runtime",
        "self",
        "--manifest",
        s(&m),
    ]);
    assert_eq!(out.code, Some(0), "{}", text(&out));
    let human = text(&out);
    assert!(human.contains("VERIFIED (software evidence)"), "{human}");
    assert!(
        human.contains("app      a at /a/...: code sha256:"),
        "{human}"
    );

    // Software evidence is refused unless accepted.
    let out = verify(&[&url]);
    assert_eq!(out.code, Some(1), "{}", text(&out));
    assert!(text(&out).contains("REFUSED"), "{}", text(&out));
    assert!(text(&out).contains("no hardware vouches"), "{}", text(&out));

    // Another runtime, another app's code, an app missing: all listed.
    let zero = format!("sha256:{}", "0".repeat(64));
    let out = verify(&[
        &url,
        "--allow-software",
        "--runtime",
        &zero,
        "--app",
        &format!("a={zero}"),
        "--app",
        &format!("c={zero}"),
        "--json",
    ]);
    assert_eq!(out.code, Some(1), "{}", text(&out));
    let refusals = json(&out)["refusals"].to_string();
    for reason in [
        "runtime",
        "app `a`: code is sha256:",
        "app `c` is expected but not deployed",
        "app `b`",
    ] {
        assert!(refusals.contains(reason), "no `{reason}` in {refusals}");
    }

    // An app's policy changed (an env variable) in the verifier's copy of
    // the manifest, given through verify.toml: its policy digest differs.
    let theirs = tempdir();
    let mut changed = std::fs::read_to_string(&m).unwrap();
    changed = changed.replacen(
        "key_value_stores",
        "env = { MODE = \"debug\" }\nkey_value_stores",
        1,
    );
    let changed = write(theirs.path(), "Warden.toml", &changed);
    let expect = write(
        theirs.path(),
        "verify.toml",
        &format!(
            "allow_software = true\nmanifest = \"{}\"\n",
            changed.display()
        ),
    );
    let out = verify(&[&url, "--policy", s(&expect)]);
    assert_eq!(out.code, Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("app `a`: policy is sha256:"),
        "{}",
        text(&out)
    );

    // The apps themselves are served over the attested connection.
    let (status, body) = Conn::open(server.addr).get("/a/echo");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("warden-app=a"), "{body}");
}

#[test]
fn fresh_evidence_binds_the_nonce_and_the_connection() {
    let dir = tempdir();
    let m = manifest(dir.path(), &[("a", "/a/...")]);
    let server = attested(dir.path(), &m);
    let policy = VerifyPolicy {
        allow_software: true,
        ..VerifyPolicy::default()
    };
    let nonce = [7u8; 16];
    let conn = Conn::open(server.addr);
    let (cert, exporter) = (conn.cert.clone(), conn.exporter);
    let (status, body) = conn.get(&format!(
        "/.well-known/warden/attestation?nonce={}",
        hex::encode(nonce)
    ));
    assert_eq!(status, 200, "{body}");
    let doc = AttestationDoc::from_json(body.as_bytes()).unwrap();
    let facts = read_certificate(&cert).unwrap();
    let binding = |nonce: &[u8], exporter: [u8; 32]| Binding {
        nonce: Some(nonce.to_vec()),
        exporter: Some(exporter),
        tls_key: Some(facts.tls_key),
        now: SystemTime::now(),
    };
    let ok = verify_attestation(
        &doc,
        &policy,
        &binding(&nonce, exporter),
        &Expected::default(),
    );
    assert!(ok.verified(), "{:?}", ok.verdict.refusals);

    // Replayed to a verifier that asked with another nonce.
    let replayed = verify_attestation(
        &doc,
        &policy,
        &binding(&[8u8; 16], exporter),
        &Expected::default(),
    );
    assert!(!replayed.verified());
    assert!(
        format!("{:?}", replayed.verdict.refusals).contains("nonce"),
        "{:?}",
        replayed.verdict.refusals
    );

    // Relayed: evidence fetched on one connection, shown on another.
    let other = Conn::open(server.addr);
    assert_ne!(other.exporter, exporter);
    let relayed = verify_attestation(
        &doc,
        &policy,
        &binding(&nonce, other.exporter),
        &Expected::default(),
    );
    assert!(!relayed.verified());
    assert!(
        format!("{:?}", relayed.verdict.refusals).contains("another TLS connection"),
        "{:?}",
        relayed.verdict.refusals
    );

    // Bad requests get a status and one line, not evidence.
    for (query, want) in [
        ("", "give a nonce"),
        ("?nonce=zz", "not hex"),
        ("?nonce=0011", "8 to 64 bytes"),
        ("?nonce=0011223344556677&x=1", "unknown parameter"),
    ] {
        let (status, body) =
            Conn::open(server.addr).get(&format!("/.well-known/warden/attestation{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(want), "{query}: {body}");
    }
    // A plain server has no attestation endpoint.
    drop(server);
    let plain = Server::start(dir.path(), &[s(&m)]);
    assert_eq!(
        plain
            .get("/.well-known/warden/attestation?nonce=0011223344556677")
            .0,
        404
    );
}

#[test]
fn a_tampered_or_expired_certificate_is_refused() {
    let dir = tempdir();
    let m = manifest(dir.path(), &[("a", "/a/...")]);
    let server = attested(dir.path(), &m);
    let policy = VerifyPolicy {
        allow_software: true,
        ..VerifyPolicy::default()
    };
    let cert = Conn::open(server.addr).cert;
    let facts = read_certificate(&cert).unwrap();
    let now = SystemTime::now();
    let good = verify_certificate(&facts, &policy, &Expected::default(), now);
    assert!(good.verified(), "{:?}", good.verdict.refusals);
    let (cert_file, doc_file) = (dir.path().join("cert.pem"), dir.path().join("doc.json"));
    std::fs::write(&cert_file, pem(&cert)).unwrap();
    let doc = facts.attestation.as_ref().unwrap().to_json();
    std::fs::write(&doc_file, &doc).unwrap();
    let out = verify(&[
        "--evidence",
        s(&doc_file),
        "--cert",
        s(&cert_file),
        "--allow-software",
    ]);
    assert_eq!(out.code, Some(0), "{}", text(&out));

    // Past its lifetime.
    let later = now + Duration::from_secs(25 * 3600);
    let expired = verify_certificate(&facts, &policy, &Expected::default(), later);
    assert!(format!("{:?}", expired.verdict.refusals).contains("expired"));

    // One character of the extension changed: the wrapped document is
    // another one, and the certificate's own signature no longer holds.
    let mut tampered = cert.clone();
    let at = tampered
        .windows(20)
        .position(|w| w.starts_with(b"[\"application/vnd."))
        .expect("the extension")
        + 60;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&cert_file, pem(&tampered)).unwrap();
    let out = verify(&[
        "--evidence",
        s(&doc_file),
        "--cert",
        s(&cert_file),
        "--allow-software",
    ]);
    assert_eq!(out.code, Some(1), "{}", text(&out));
    assert!(text(&out).contains("self-signature"), "{}", text(&out));

    // The certificate's document under another certificate's key.
    let other = tempdir();
    let other_server = attested(other.path(), &manifest(other.path(), &[("a", "/a/...")]));
    std::fs::write(&cert_file, pem(&Conn::open(other_server.addr).cert)).unwrap();
    let out = verify(&[
        "--evidence",
        s(&doc_file),
        "--cert",
        s(&cert_file),
        "--allow-software",
    ]);
    assert_eq!(out.code, Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("evidence names TLS key sha256:"),
        "{}",
        text(&out)
    );
}

#[test]
fn hot_deploys_append_to_the_log_and_history_cannot_be_rewritten() {
    let dir = tempdir();
    let m = manifest(dir.path(), &[("a", "/a/...")]);
    let server = Arc::new(attested(dir.path(), &m));
    let url = https(&server);
    let out = verify(&[&url, "--allow-software", "--manifest", s(&m), "--json"]);
    assert_eq!(out.code, Some(0), "{}", text(&out));
    let first = tree_of(&json(&out));
    let first_cert = Conn::open(server.addr).cert;

    // Verifying again and again while apps are deployed: never refused.
    let stop = Arc::new(AtomicBool::new(false));
    let verifier = {
        let (url, stop) = (url.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let out = verify(&[&url, "--allow-software", "--runtime", "self"]);
                assert_eq!(out.code, Some(0), "during a deploy: {}", text(&out));
                n += 1;
            }
            n
        })
    };
    manifest(dir.path(), &[("a", "/a/..."), ("b", "/b/...")]);
    server.wait_for_log(&["deployed 2 app(s)"]);
    manifest(dir.path(), &[("a", "/a/...")]);
    server.wait_for_log(&["deployed 1 app(s)"]);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    assert!(verifier.join().expect("a verify failed") > 0);

    // Back to the first app set: the same apps, but the log shows both
    // swaps and extends the head seen at the start.
    let out = verify(&[
        &url,
        "--allow-software",
        "--manifest",
        s(&m),
        "--since",
        &first,
        "--json",
    ]);
    assert_eq!(out.code, Some(0), "{}", text(&out));
    let now = tree_of(&json(&out));
    assert_ne!(now, first);
    // Every deploy made a new certificate, for the new tree head.
    let cert = read_certificate(&Conn::open(server.addr).cert).unwrap();
    assert_ne!(cert.tls_key, read_certificate(&first_cert).unwrap().tls_key);
    let head = cert.attestation.unwrap().manifest.tree;
    assert_eq!(format!("{}:{}", head.size, hex::encode(head.root)), now);
    let size: u64 = now.split(':').next().unwrap().parse().unwrap();
    assert_eq!(
        size,
        2 + 3 + 2,
        "three deploys: 1 + 2 + 1 apps, each with its runtime leaf"
    );

    // A head this log never had (same size, another root): refused.
    let (size, _) = first.split_once(':').unwrap();
    let forged = format!("{size}:{}", "ab".repeat(32));
    let out = verify(&[&url, "--allow-software", "--since", &forged]);
    assert_eq!(out.code, Some(1), "{}", text(&out));
    assert!(text(&out).contains("not extended"), "{}", text(&out));

    // The manifest endpoint proves consistency on request.
    let (status, body) = Conn::open(server.addr).get("/.well-known/warden/manifest?since=1");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"consistency\":{\"from\":1"), "{body}");
}

#[test]
fn attest_measures_code_and_canonical_policy_and_saved_evidence_verifies() {
    let dir = tempdir();
    let d = dir.path();
    let module = support::rust_guest("hello");
    let attest = |args: &[&str]| {
        let mut all = vec!["--evidence", "software", "--attest-key"];
        let k = key(d);
        let k = s(&k).to_string();
        all.push(Box::leak(k.into_boxed_str()));
        all.extend_from_slice(args);
        run(warden_cmd("attest", &all))
    };
    let nonce = "00112233445566778899aabbccddeeff";
    let out = attest(&[
        "--nonce",
        nonce,
        "--allow",
        "clocks",
        "--allow",
        "random",
        s(&module),
    ]);
    assert_eq!(out.code, Some(0), "{}", text(&out));
    let evidence = json(&out);
    assert_eq!(evidence["backend"], "software");
    assert!(evidence["notice"].as_str().unwrap().contains("no hardware"));
    let claims: serde_json::Value =
        serde_json::from_str(evidence["claims"].as_str().unwrap()).unwrap();
    let code = claims["subject"]["workload"]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let policy = claims["subject"]["workload"]["policy"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(code, support::sha256_text(&std::fs::read(&module).unwrap()));
    assert_eq!(claims["nonce"], nonce);

    // The policy digest does not depend on flag order or config spelling.
    let out = attest(&["--allow", "random", "--allow", "clocks", s(&module)]);
    let again: serde_json::Value =
        serde_json::from_str(json(&out)["claims"].as_str().unwrap()).unwrap();
    assert_eq!(again["subject"]["workload"]["policy"], policy.as_str());
    let config = write(d, "Warden.toml", "[allow]\nrandom = true\nclocks = true\n");
    let out = attest(&["--config", s(&config), s(&module)]);
    let from_config: serde_json::Value =
        serde_json::from_str(json(&out)["claims"].as_str().unwrap()).unwrap();
    assert_eq!(
        from_config["subject"]["workload"]["policy"],
        policy.as_str()
    );
    // Another policy is another digest.
    let out = attest(&[
        "--allow",
        "clocks",
        "--allow",
        "random",
        "--env",
        "A=1",
        s(&module),
    ]);
    let narrower: serde_json::Value =
        serde_json::from_str(json(&out)["claims"].as_str().unwrap()).unwrap();
    assert_ne!(narrower["subject"]["workload"]["policy"], policy.as_str());

    // Saved evidence: verified with its nonce and the expected workload.
    let file = d.join("evidence.json");
    let saved = attest(&[
        "--nonce",
        nonce,
        "--allow",
        "clocks",
        "--allow",
        "random",
        s(&module),
    ]);
    std::fs::write(&file, &saved.stdout).unwrap();
    let expect = write(
        d,
        "verify.toml",
        &format!("allow_software = true\n[[workload]]\ncode = \"{code}\"\npolicy = \"{policy}\"\n"),
    );
    let out = verify(&[
        "--evidence",
        s(&file),
        "--nonce",
        nonce,
        "--policy",
        s(&expect),
    ]);
    assert_eq!(out.code, Some(0), "{}", text(&out));
    // Another nonce, another workload, too old, software not accepted.
    let out = verify(&[
        "--evidence",
        s(&file),
        "--nonce",
        &"11".repeat(16),
        "--policy",
        s(&expect),
    ]);
    assert_eq!(out.code, Some(1), "{}", text(&out));
    assert!(text(&out).contains("nonce"), "{}", text(&out));
    let other = write(
        d,
        "other.toml",
        &format!(
            "allow_software = true\n[[workload]]\ncode = \"{code}\"\npolicy = \"{}\"\n",
            narrower["subject"]["workload"]["policy"].as_str().unwrap()
        ),
    );
    let out = verify(&[
        "--evidence",
        s(&file),
        "--nonce",
        nonce,
        "--policy",
        s(&other),
    ]);
    assert_eq!(out.code, Some(1), "{}", text(&out));
    assert!(text(&out).contains("workload"), "{}", text(&out));
    std::thread::sleep(Duration::from_millis(2100));
    let out = verify(&[
        "--evidence",
        s(&file),
        "--nonce",
        nonce,
        "--policy",
        s(&expect),
        "--max-age",
        "1s",
    ]);
    assert_eq!(out.code, Some(1), "{}", text(&out));
    assert!(text(&out).to_lowercase().contains("old"), "{}", text(&out));
    let out = verify(&["--evidence", s(&file), "--nonce", nonce]);
    assert_eq!(out.code, Some(1), "{}", text(&out));

    // Tampered claims (another code digest): the signature breaks.
    let tampered = saved.stdout.replacen(&code[7..15], "00000000", 1);
    std::fs::write(&file, tampered).unwrap();
    let out = verify(&["--evidence", s(&file), "--nonce", nonce, "--allow-software"]);
    assert_eq!(out.code, Some(1), "{}", text(&out));
    assert!(text(&out).contains("signature"), "{}", text(&out));
}

#[test]
fn attest_serve_gives_the_leaves_a_live_server_shows() {
    let dir = tempdir();
    let d = dir.path();
    let hello = example_app("hello");
    let counter = example_app("kv-counter");
    let m = write(
        d,
        "Warden.toml",
        &format!(
            "[[app]]\nname = \"hello\"\nroute = \"/hello\"\ncomponent = \"{}\"\n\
             [[app]]\nname = \"counter\"\nroute = \"/count/...\"\ncomponent = \"{}\"\nkey_value_stores = [\"default\"]\n\
             [[app.mount]]\nguest = \"/data\"\nsealed = \"files\"\n",
            hello.display(),
            counter.display()
        ),
    );
    let out = run(warden_cmd(
        "attest",
        [
            "--serve",
            s(&m),
            "--evidence",
            "software",
            "--attest-key",
            s(&key(d)),
        ],
    ));
    assert_eq!(out.code, Some(0), "{}", text(&out));
    let doc_file = d.join("doc.json");
    std::fs::write(&doc_file, &out.stdout).unwrap();
    let out = verify(&[
        "--evidence",
        s(&doc_file),
        "--allow-software",
        "--manifest",
        s(&m),
        "--json",
    ]);
    assert_eq!(out.code, Some(0), "{}", text(&out));
    let offline = json(&out)["apps"].clone();
    assert_eq!(
        offline[0]["namespaces"],
        serde_json::json!(["counter/default", "counter/fs/files"])
    );
    let server = attested(d, &m);
    let out = verify(&[
        &https(&server),
        "--allow-software",
        "--manifest",
        s(&m),
        "--json",
    ]);
    assert_eq!(out.code, Some(0), "{}", text(&out));
    assert_eq!(json(&out)["apps"], offline);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempdir();
    let d = dir.path();
    let one_line = |out: &Output, want: &str| {
        assert_eq!(out.code, Some(2), "{}", text(out));
        let stderr = &out.stderr;
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "no `{want}` in {stderr}");
    };
    one_line(&verify(&["http://127.0.0.1:1"]), "expected https://");
    // A port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    one_line(
        &verify(&[&format!("https://127.0.0.1:{port}")]),
        "cannot connect",
    );
    let bad_policy = write(
        d,
        "verify.toml",
        "allow_software = true\nmax_ages = \"5m\"\n",
    );
    one_line(
        &verify(&["--evidence", s(&bad_policy), "--policy", s(&bad_policy)]),
        "verify.toml",
    );
    let junk = write(d, "junk.json", "{\"format\":\"warden-evidence/1\"}");
    one_line(
        &verify(&["--evidence", s(&junk), "--allow-software"]),
        "junk.json",
    );
    one_line(
        &verify(&["--evidence", s(&junk), "--since", "x"]),
        "--since",
    );
    one_line(
        &run(warden_cmd("attest", ["--nonce", "abc", s(&junk)])),
        "--nonce",
    );
    one_line(
        &run(warden_cmd(
            "attest",
            ["--evidence", "tpm", "--attest-key", s(&key(d)), s(&junk)],
        )),
        "unknown evidence backend",
    );
    one_line(
        &run(warden_cmd("attest", ["--evidence", "sev-snp", s(&junk)])
            .env("WARDEN_TSM_ROOT", d.join("none"))),
        "no configfs-tsm",
    );
    let m = manifest(d, &[("a", "/a/...")]);
    let out = run(warden_cmd(
        "serve",
        [
            "--tls",
            "attested",
            "--tls-cert",
            s(&m),
            "--tls-key",
            s(&m),
            s(&m),
        ],
    ));
    assert_eq!(out.code, Some(2), "{}", text(&out));
    // The attestation key cannot be mounted into a guest.
    std::fs::create_dir_all(d.join("keys")).unwrap();
    let out = run(support::warden_run([
        "--dir",
        &format!("{}::/keys", d.join("keys").display()),
        s(&support::rust_guest("hello")),
    ])
    .env("WARDEN_ATTEST_KEY", d.join("keys/attest.key")));
    one_line(&out, "attestation key");
}
