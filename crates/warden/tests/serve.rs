//! `warden serve` end to end: the binary started as a user starts it, real
//! sockets, a real HTTP client, and the test app built from source
//! (`tests/guests/http`).

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::serve::{http_app, refused, request, Server};
use support::{s, tempdir, warden_cmd, write};

/// A manifest in `dir` serving the test app under each `(name, route,
/// extra keys)`.
fn manifest(dir: &Path, apps: &[(&str, &str, &str)]) -> PathBuf {
    let app = http_app();
    let mut text = String::new();
    for (name, route, extra) in apps {
        text.push_str(&format!(
            "[[app]]\nname = \"{name}\"\nroute = \"{route}\"\ncomponent = \"{}\"\n{extra}\n",
            app.display()
        ));
    }
    write(dir, "Warden.toml", &text)
}

fn field<'a>(body: &'a str, key: &str) -> &'a str {
    body.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {body}"))
}

#[test]
fn one_component_is_served_on_every_path_with_the_request_as_sent() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[s(&http_app())]);
    let (status, body) = request(
        "POST",
        &server.url("/some/where?x=1"),
        &[("x-test", "yes"), ("warden-app", "spoofed")],
        Some(b"12345"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(field(&body, "path-with-query"), "/some/where?x=1");
    assert_eq!(field(&body, "x-test"), "yes");
    assert_eq!(field(&body, "warden-app"), "warden_test_http", "{body}");
    assert_eq!(
        field(&body, "warden-full-url"),
        format!("http://{}/some/where?x=1", server.addr)
    );
    assert_eq!(field(&body, "warden-path-info"), "/some/where");
    assert_eq!(field(&body, "warden-matched-route"), "/...");
    assert_eq!(field(&body, "body-len"), "5");
    assert!(field(&body, "warden-client-addr").starts_with("127.0.0.1:"));
    let (status, body) = server.get("/.well-known/warden/health");
    assert_eq!(
        (status, body.trim()),
        (200, "{\"status\":\"ok\",\"apps\":1}")
    );
    let (status, _) = server.get("/.well-known/warden/other");
    assert_eq!(status, 404);
}

#[test]
fn the_most_specific_route_wins_and_nothing_else_is_served() {
    let dir = tempdir();
    let m = manifest(
        dir.path(),
        &[
            ("exact", "/api/users/me", ""),
            ("users", "/api/users/...", ""),
            ("api", "/api/...", ""),
            ("hello", "/hello", ""),
        ],
    );
    let server = Server::start(dir.path(), &[s(&m)]);
    for (path, app, info) in [
        ("/api/users/me", "exact", ""),
        ("/api/users/me/x", "users", "/me/x"),
        ("/api/users", "users", ""),
        ("/api/users/7", "users", "/7"),
        ("/api", "api", ""),
        ("/api/other", "api", "/other"),
        ("/hello", "hello", ""),
    ] {
        let (status, body) = server.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(field(&body, "warden-app"), app, "{path}");
        assert_eq!(field(&body, "warden-path-info"), info, "{path}");
    }
    for path in ["/", "/hello/", "/apix", "/hello/x"] {
        assert_eq!(server.get(path).0, 404, "{path}");
    }
}

#[test]
fn bad_manifests_are_one_line_and_exit_2() {
    let dir = tempdir();
    let app = http_app();
    let cases: Vec<(String, &str)> = vec![
        (
            format!("[[app]]\nname = \"a\"\nroute = \"/x\"\ncomponent = \"{0}\"\n[[app]]\nname = \"b\"\nroute = \"/x\"\ncomponent = \"{0}\"\n", app.display()),
            "Warden.toml:7:",
        ),
        (
            "[[app]]\nname = \"a\"\nroute = \"/x\"\ncomponent = \"missing.wasm\"\n".to_string(),
            "app `a`: cannot read",
        ),
        (
            format!("[[app]]\nname = \"a\"\nroute = \"/x\"\ncomponent = \"{}\"\n[app.limits]\nmax_memroy = 1\n", app.display()),
            "Warden.toml:6:",
        ),
        (
            format!("[[app]]\nname = \"a\"\nroute = \"/x\"\ncomponent = \"{}\"\n", support::rust_component("hello").display()),
            "does not export `wasi:http/incoming-handler@0.2`",
        ),
    ];
    for (text, expected) in cases {
        let m = write(dir.path(), "Warden.toml", &text);
        let stderr = refused(dir.path(), &[s(&m)]);
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}

#[test]
fn traps_loops_and_memory_bombs_are_stopped_and_others_keep_serving() {
    let dir = tempdir();
    let m = manifest(
        dir.path(),
        &[
            (
                "bad",
                "/bad/...",
                "[app.limits]\ntimeout = \"1s\"\nmax_memory = \"32MiB\"\n",
            ),
            ("good", "/good/...", ""),
        ],
    );
    let server = Arc::new(Server::start(dir.path(), &[s(&m)]));
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (server, stop, served) = (server.clone(), stop.clone(), served.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = server.get("/good/echo");
                    assert_eq!(status, 200, "{body}");
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let (status, body) = server.get("/bad/trap");
    assert_eq!((status, body.as_str()), (500, "internal error\n"));
    server.wait_for_log(&[
        "[bad] error: GET /bad/trap: trapped: wasm `unreachable` instruction executed",
    ]);
    let start = Instant::now();
    let (status, _) = server.get("/bad/loop");
    assert_eq!(status, 504);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    server.wait_for_log(&["[bad] error: GET /bad/loop: stopped at its time limit"]);
    let (status, _) = server.get("/bad/bomb");
    assert_eq!(status, 500);
    server.wait_for_log(&[
        "[bad] error: GET /bad/bomb: stopped at its memory limit (33554432 bytes)",
    ]);
    let (status, _) = server.get("/bad/sleep?ms=5000");
    assert_eq!(
        status,
        504,
        "a guest waiting in the host is stopped too:\n{}",
        server.log()
    );
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().expect("the good app failed a request");
    }
    assert!(served.load(Ordering::Relaxed) > 0);
    assert_eq!(
        server.get("/bad/echo").0,
        200,
        "the app serves again after its failures"
    );
}

#[test]
fn guest_output_and_logging_reach_the_host_log_tagged_with_the_app() {
    let dir = tempdir();
    let m = manifest(
        dir.path(),
        &[(
            "talk",
            "/...",
            "version = \"2.1\"\n[app.variables]\ngreeting = \"hello\"\n",
        )],
    );
    let server = Server::start(dir.path(), &[s(&m)]);
    assert_eq!(server.get("/output").0, 200);
    server.wait_for_log(&["[talk] stdout: a line on stdout"]);
    server.wait_for_log(&["[talk] stderr: a line on stderr"]);
    server.wait_for_log(&["[talk] stdout: no newline at the end"]);
    assert_eq!(server.get("/log").0, 200);
    server.wait_for_log(&["[talk] log info greeting: hello from the app"]);
    server.wait_for_log(&["[talk] log error: something failed"]);
    let (_, config) = server.get("/config");
    assert!(config.contains("greeting=hello\n"), "{config}");
    assert!(config.contains("no-such-key=Ok(None)"), "{config}");
    let (_, env) = server.get("/env");
    assert!(
        env.contains("WARDEN_APP=talk\n") && env.contains("WARDEN_APP_VERSION=2.1\n"),
        "{env}"
    );
}

#[test]
fn sealed_files_persist_across_requests_and_restarts_and_stay_sealed() {
    let dir = tempdir();
    let mount = "[[app.mount]]\nguest = \"/data\"\nsealed = \"files\"\n";
    let m = manifest(
        dir.path(),
        &[
            ("notes", "/notes/...", mount),
            ("other", "/other/...", mount),
        ],
    );
    {
        let server = Server::start(dir.path(), &[s(&m)]);
        let (status, body) = server.post("/notes/write?name=a.txt", b"a secret note 7f3a");
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            server.get("/notes/read?name=a.txt"),
            (200, "a secret note 7f3a".into())
        );
        // Another app's `files` is a namespace of its own.
        assert_eq!(server.get("/other/read?name=a.txt").0, 404);
        let (_, escape) = server.get("/notes/escape");
        assert!(!escape.contains(": read"), "{escape}");
    }
    support::serve::assert_sealed(dir.path(), b"a secret note 7f3a");
    let server = Server::start(dir.path(), &[s(&m)]);
    assert_eq!(
        server.get("/notes/read?name=a.txt"),
        (200, "a secret note 7f3a".into())
    );
}

#[test]
fn concurrency_and_body_limits_answer_503_and_413() {
    let dir = tempdir();
    let m = manifest(
        dir.path(),
        &[(
            "one",
            "/...",
            "[app.limits]\nmax_concurrent = 1\nmax_body_size = \"1KiB\"\n",
        )],
    );
    let server = Arc::new(Server::start(dir.path(), &[s(&m)]));
    let slow = {
        let server = server.clone();
        std::thread::spawn(move || server.get("/sleep?ms=1500"))
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.get("/echo").0, 503);
    assert_eq!(slow.join().unwrap().0, 200);
    assert_eq!(server.post("/echo", &[b'x'; 4096]).0, 413);
    let (status, body) = server.post("/echo", &[b'x'; 1000]);
    assert_eq!((status, field(&body, "body-len")), (200, "1000"));
}

#[test]
fn hot_deploy_adds_replaces_and_refuses_without_failing_a_request() {
    let dir = tempdir();
    let m = manifest(dir.path(), &[("a", "/a/...", "")]);
    let server = Arc::new(Server::start(
        dir.path(),
        &[s(&m), "--metrics-addr", "127.0.0.1:0"],
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (server, stop) = (server.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = server.get("/a/echo");
                    assert_eq!(status, 200, "a request failed during a deploy: {body}");
                    n += 1;
                }
                n
            })
        })
        .collect();
    assert_eq!(server.get("/b/echo").0, 404);
    // A second app, added while serving.
    std::thread::sleep(Duration::from_millis(50));
    manifest(dir.path(), &[("a", "/a/...", ""), ("b", "/b/...", "")]);
    server.wait_for_log(&["deployed 2 app(s)"]);
    assert_eq!(server.get("/b/echo").0, 200);
    // A manifest that does not load leaves the apps serving.
    write(dir.path(), "Warden.toml", "[[app]]\nname = \"a\"\n");
    server.wait_for_log(&[
        "redeploy refused, the previous apps keep serving",
        "needs a `route`",
    ]);
    assert_eq!(server.get("/b/echo").0, 200);
    // Removed again, on SIGHUP too.
    manifest(dir.path(), &[("a", "/a/...", "")]);
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.get("/b/echo").0 != 404 {
        assert!(
            Instant::now() < deadline,
            "app b was not removed:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let total: usize = load
        .into_iter()
        .map(|t| t.join().expect("a request failed"))
        .sum();
    assert!(total > 0);
}

#[test]
fn metrics_count_requests_by_app_and_status() {
    let dir = tempdir();
    let m = manifest(dir.path(), &[("m", "/...", "")]);
    let server = Server::start(dir.path(), &[s(&m), "--metrics-addr", "127.0.0.1:0"]);
    assert_eq!(server.get("/echo").0, 200);
    assert_eq!(server.get("/trap").0, 500);
    let line = server.wait_for_log(&["metrics on http://"]);
    let url = line.split("metrics on ").nth(1).unwrap().trim().to_string();
    let (status, text) = request("GET", &url, &[], None);
    assert_eq!(status, 200);
    for expected in [
        "warden_requests_total{app=\"m\",status=\"200\"} 1",
        "warden_requests_total{app=\"m\",status=\"500\"} 1",
        "warden_traps_total{app=\"m\"} 1",
        "warden_instantiation_seconds_count{app=\"m\"} 2",
        "warden_request_duration_seconds_count{app=\"m\"} 2",
    ] {
        assert!(text.contains(expected), "{expected} not in:\n{text}");
    }
}

#[test]
fn sigterm_drains_requests_in_flight_and_exits_0() {
    let dir = tempdir();
    let m = manifest(dir.path(), &[("d", "/...", "")]);
    let mut server = Server::start(dir.path(), &[s(&m)]);
    let url = server.url("/sleep?ms=1500");
    let slow = std::thread::spawn(move || request("GET", &url, &[], None));
    std::thread::sleep(Duration::from_millis(500));
    server.signal(libc::SIGTERM);
    assert_eq!(slow.join().unwrap(), (200, "slept 1500 ms\n".into()));
    assert_eq!(
        server.wait(Duration::from_secs(20)),
        Some(0),
        "{}",
        server.log()
    );
}

/// A manifest line for an example app of `examples/http`.
fn example(name: &str, route: &str, component: &str, extra: &str) -> String {
    let path = support::serve::example_app(component);
    format!(
        "[[app]]\nname = \"{name}\"\nroute = \"{route}\"\ncomponent = \"{}\"\n{extra}\n",
        path.display()
    )
}

#[test]
fn keyvalue_in_both_versions_is_sealed_per_app_and_persists() {
    let dir = tempdir();
    let app = http_app();
    let draft = format!(
        "[[app]]\nname = \"draft\"\nroute = \"/draft/...\"\ncomponent = \"{}\"\n",
        app.display()
    );
    let other = format!(
        "[[app]]\nname = \"other\"\nroute = \"/other/...\"\ncomponent = \"{}\"\nkey_value_stores = [\"default\", \"cache\"]\n",
        app.display()
    );
    let text = format!(
        "{}{draft}{other}",
        example("counter", "/count/...", "kv-counter", "")
    );
    let m = write(dir.path(), "Warden.toml", &text);
    {
        let server = Server::start(dir.path(), &[s(&m)]);
        // draft2 (the example, as Spin apps use it).
        assert_eq!(server.get("/count/visits"), (200, "1\n".into()));
        assert_eq!(server.get("/count/visits"), (200, "2\n".into()));
        assert_eq!(server.get("/count/visits?peek"), (200, "2\n".into()));
        // draft (wasmtime's and wasmCloud's version).
        assert_eq!(
            server.post("/draft/kv/set?key=secret", b"plaintext-e81c"),
            (200, "set\n".into())
        );
        assert_eq!(
            server.get("/draft/kv/get?key=secret"),
            (200, "plaintext-e81c".into())
        );
        assert_eq!(server.get("/draft/kv/incr?key=n").1, "1\n");
        // Another app's `default` is its own; a label not granted is refused.
        assert_eq!(server.get("/other/kv/get?key=secret").0, 404);
        assert_eq!(
            server.get("/other/kv/incr?label=cache&key=n"),
            (200, "1\n".into())
        );
        assert_eq!(
            server.get("/draft/kv/get?label=cache&key=n"),
            (403, "access-denied\n".into())
        );
    }
    support::serve::assert_sealed(dir.path(), b"plaintext-e81c");
    let server = Server::start(dir.path(), &[s(&m)]);
    assert_eq!(
        server.get("/count/visits"),
        (200, "3\n".into()),
        "the count survived a restart"
    );
    assert_eq!(
        server.get("/draft/kv/get?key=secret"),
        (200, "plaintext-e81c".into())
    );
}

#[test]
fn increments_from_64_concurrent_clients_are_never_lost() {
    let dir = tempdir();
    let m = write(
        dir.path(),
        "Warden.toml",
        &example("counter", "/...", "kv-counter", ""),
    );
    let server = Arc::new(Server::start(dir.path(), &[s(&m)]));
    let per_client = 8;
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..per_client {
                    let (status, body) = server.get("/c");
                    assert_eq!(status, 200, "{body}");
                    seen.push(body.trim().parse::<i64>().unwrap());
                }
                seen
            })
        })
        .collect();
    let mut all: Vec<i64> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort();
    let expected: Vec<i64> = (1..=64 * per_client).collect();
    assert_eq!(all, expected, "each increment answered a distinct value");
    assert_eq!(
        server.get("/c?peek"),
        (200, format!("{}\n", 64 * per_client))
    );
}

#[test]
fn the_examples_serve_notes_and_logs() {
    let dir = tempdir();
    let text = format!(
        "{}{}{}",
        example("hello", "/hello", "hello", ""),
        example(
            "notes",
            "/notes/...",
            "notes",
            "[[app.mount]]\nguest = \"/notes\"\nsealed = \"notes\"\n"
        ),
        example("logging", "/log/...", "logging", ""),
    );
    let m = write(dir.path(), "Warden.toml", &text);
    let server = Server::start(dir.path(), &[s(&m)]);
    assert_eq!(server.get("/hello"), (200, "Hello from warden\n".into()));
    assert_eq!(
        request("PUT", &server.url("/notes/todo"), &[], Some(b"buy milk")),
        (201, "stored 8 bytes\n".into())
    );
    assert_eq!(server.get("/notes/todo"), (200, "buy milk".into()));
    assert_eq!(server.get("/notes/"), (200, "todo\n".into()));
    assert_eq!(server.get("/notes/nothing").0, 404);
    assert_eq!(server.get("/log/fail"), (200, "logged\n".into()));
    server.wait_for_log(&["[logging] log info request: Method::Get /log/fail"]);
    server.wait_for_log(&["[logging] log error request: asked to fail"]);
    server.wait_for_log(&["[logging] stdout: handled /log/fail"]);
}

/// One request over TLS, trusting only `cert`, offering `alpn`; the
/// protocol the server chose, the status and the body.
fn tls_get(
    addr: std::net::SocketAddr,
    cert: &str,
    alpn: &[u8],
    path: &str,
) -> (String, u16, String) {
    use http_body_util::BodyExt;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(cert.as_bytes()).unwrap();
        roots.add(der).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap();
        let chosen = String::from_utf8_lossy(tls.get_ref().1.alpn_protocol().unwrap_or_default())
            .into_owned();
        let io = TokioIo::new(tls);
        let req = hyper::Request::get(format!("https://localhost{path}"))
            .header("host", "localhost")
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .unwrap();
        let res = if alpn == b"h2" {
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            send.send_request(req).await.unwrap()
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            send.send_request(req).await.unwrap()
        };
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (chosen, status, String::from_utf8_lossy(&body).into_owned())
    })
}

#[test]
fn tls_serves_http1_and_http2_by_alpn() {
    let dir = tempdir();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let cert_file = write(dir.path(), "cert.pem", &cert_pem);
    let key_file = write(dir.path(), "key.pem", &cert.signing_key.serialize_pem());
    let app = http_app();
    let server = Server::start_tls(
        dir.path(),
        &[
            s(&app),
            "--tls-cert",
            s(&cert_file),
            "--tls-key",
            s(&key_file),
        ],
    );
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let (chosen, status, body) = tls_get(server.addr, &cert_pem, alpn, "/over/tls");
        assert_eq!(chosen.as_bytes(), alpn);
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            field(&body, "warden-full-url"),
            "https://localhost/over/tls"
        );
    }
    // A key that is not PEM: one line, exit 2.
    drop(server);
    let stderr = refused(
        dir.path(),
        &[
            s(&app),
            "--tls-cert",
            s(&cert_file),
            "--tls-key",
            s(&cert_file),
        ],
    );
    assert!(stderr.contains("TLS key"), "{stderr}");
}

#[test]
fn plain_http_on_a_public_address_is_warned_about() {
    let dir = tempdir();
    let mut server = Server::start_on(dir.path(), "0.0.0.0:0", &[s(&http_app())]);
    server.wait_for_log(&["warning: serving plain HTTP on 0.0.0.0:", "--tls-cert"]);
    server.signal(libc::SIGINT);
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
}

#[test]
fn a_bundle_is_served_under_its_own_policy() {
    let dir = tempdir();
    let conf = write(dir.path(), "conf/motd", "from the bundle\n");
    let config = write(
        dir.path(),
        "bundle.toml",
        &format!(
            "[env]\nFROM = \"bundle\"\n[[mount]]\nguest = \"/data\"\nvirtual = \"{}\"\n",
            conf.parent().unwrap().display()
        ),
    );
    let bundle = dir.path().join("app.warden");
    let out = warden_cmd(
        "bundle",
        ["--config", s(&config), s(&http_app()), "-o", s(&bundle)],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = write(
        dir.path(),
        "Warden.toml",
        &format!(
            "[[app]]\nname = \"b\"\nroute = \"/...\"\ncomponent = \"{}\"\n[app.limits]\ntimeout = \"1s\"\n",
            bundle.display()
        ),
    );
    let server = Server::start(dir.path(), &[s(&m)]);
    assert_eq!(
        server.get("/read?name=motd"),
        (200, "from the bundle\n".into())
    );
    let (_, env) = server.get("/env");
    assert!(
        env.contains("FROM=bundle\n") && env.contains("WARDEN_APP=b\n"),
        "{env}"
    );
    assert_eq!(
        server.get("/loop").0,
        504,
        "the manifest's limits narrow the bundle's"
    );
    drop(server);
    // Widening a bundle's policy in the manifest is refused.
    let m = write(
        dir.path(),
        "Warden.toml",
        &format!(
            "[[app]]\nname = \"b\"\nroute = \"/...\"\ncomponent = \"{}\"\n[app.env]\nMORE = \"x\"\n",
            bundle.display()
        ),
    );
    let stderr = refused(dir.path(), &[s(&m)]);
    assert!(stderr.contains("whose policy is sealed in it"), "{stderr}");
}

#[test]
fn a_changed_component_file_is_redeployed_and_fuel_is_limited_per_request() {
    let dir = tempdir();
    let file = dir.path().join("app.wasm");
    std::fs::copy(http_app(), &file).unwrap();
    let m = write(
        dir.path(),
        "Warden.toml",
        &format!(
            "[[app]]\nname = \"swap\"\nroute = \"/...\"\ncomponent = \"{}\"\n[app.limits]\nfuel = 50000000\n",
            file.display()
        ),
    );
    let server = Server::start(dir.path(), &[s(&m)]);
    assert_eq!(server.get("/loop").0, 500);
    server.wait_for_log(&["[swap] error: GET /loop: stopped when its fuel ran out (50000000)"]);
    assert_eq!(field(&server.get("/x").1, "warden-app"), "swap");
    // Replace the file in one step, as a deploy tool would.
    let next = dir.path().join("next.wasm");
    std::fs::copy(support::serve::example_app("hello"), &next).unwrap();
    std::fs::rename(&next, &file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.get("/x").1 != "Hello from warden\n" {
        assert!(
            Instant::now() < deadline,
            "not redeployed:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.wait_for_log(&["warden serve: deployed 1 app(s)"]);
}

#[test]
fn an_app_may_not_mount_wardens_own_state() {
    let dir = tempdir();
    let mount = format!(
        "[[app.mount]]\nguest = \"/x\"\nhost = \"{}\"\nread_only = true\n",
        dir.path().display()
    );
    let m = manifest(dir.path(), &[("a", "/...", &mount)]);
    let stderr = refused(dir.path(), &[s(&m)]);
    assert!(
        stderr.contains("app `a`: mount") && stderr.contains("would expose warden's sealed store"),
        "{stderr}"
    );
}
