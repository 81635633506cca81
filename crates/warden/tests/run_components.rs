//! `warden run` of components (Rust guests built for wasm32-wasip2): the
//! same flags, policy and exit codes as for core modules, network and
//! outbound HTTP only to what is granted, and bad components refused with
//! one line and exit 2.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use support::*;

fn component(name: &str) -> String {
    s(&rust_component(name)).to_string()
}

#[test]
fn hello_runs_with_args_and_stdio() {
    let out = run(warden_run([&component("hello"), "a", "b c"]));
    out.code(0)
        .stdout_is("hello from warden\nargc=3\narg[1]=a\narg[2]=b c\n");
    assert_eq!(out.stderr, "hello on stderr\n");
}

#[test]
fn stdout_ignored_and_denied() {
    let out = run(warden_run(["--stdout", "ignore", &component("hello")]));
    out.code(0).stdout_is("");
    assert_eq!(out.stderr, "hello on stderr\n");
    let out = run(warden_run(["--stdout", "deny", &component("hello")]));
    // Rust's println! panics when stdout fails: the guest stops.
    out.stdout_is("");
    assert!(out.stderr.contains(&note_line("stdout")), "{out}");
    assert_ne!(out.code, Some(0), "{out}");
}

#[test]
fn stdin_allowed_ignored() {
    let hello = component("stdio");
    let out = run_with_stdin(warden_run(["--stdin", "allow", &hello, "stdin"]), b"abc");
    out.code(0).stdout_is("stdin: ok 3 bytes\nabc").quiet();
    let out = run_with_stdin(warden_run([&hello, "stdin"]), b"abc");
    out.code(0).stdout_is("stdin: ok 0 bytes\n").quiet();
}

#[test]
fn env_set_inherited_and_denied() {
    let env = component("env");
    let mut cmd = warden_run([
        "--env",
        "GREETING=hi",
        "--env-inherit",
        "WARDEN_TEST_INHERITED",
        &env,
    ]);
    cmd.env("WARDEN_TEST_INHERITED", "yes")
        .env("WARDEN_TEST_NOT_GRANTED", "no");
    let out = run(cmd);
    out.code(0).quiet();
    assert!(out.stdout.contains("GREETING=hi"), "{out}");
    assert!(out.stdout.contains("WARDEN_TEST_INHERITED=yes"), "{out}");
    assert!(!out.stdout.contains("WARDEN_TEST_NOT_GRANTED"), "{out}");
    let out = run(warden_run(["--env", "GREETING=hi", "--deny", "env", &env]));
    out.code(0);
    assert!(!out.stdout.contains("GREETING"), "{out}");
}

#[test]
fn clocks_and_random_allowed_and_denied() {
    let guest = component("clock_random");
    let out = run(warden_run([&guest, "std"]));
    out.code(0)
        .stdout_is("systemtime plausible=true\ninstant elapsed_ge=true\n")
        .quiet();
    let out = run(warden_run(["--deny", "clocks", &guest, "std"]));
    out.code(134);
    assert!(out.stderr.starts_with(&note_line("clocks")), "{out}");
    assert!(
        out.warden_line().contains("`clocks` subsystem is denied")
            && out.warden_line().contains("wasi:clocks/"),
        "{out}"
    );
    let out = run(warden_run([&guest, "random"]));
    out.code(0).quiet();
    let out = run(warden_run(["--deny", "random", &guest, "random"]));
    out.code(134);
    assert!(out.stderr.starts_with(&note_line("random")), "{out}");
    assert!(
        out.warden_line()
            .contains("`wasi:random/random#get-random-bytes`"),
        "{out}"
    );
}

#[test]
fn exit_status_and_exit_denied() {
    let guest = component("limits");
    // Rust's `exit(7)` on WASI 0.2 is `wasi:cli/exit#exit(err)`: status 1,
    // as under wasmtime.
    let out = run(warden_run([&guest, "exit", "7"]));
    out.code(1).stdout_is("exiting 7\n").quiet();
    let out = run(warden_run(["--deny", "exit", &guest, "exit", "7"]));
    out.code(134);
    assert!(out.stderr.starts_with(&note_line("exit")), "{out}");
    assert!(
        out.warden_line().contains("`exit` subsystem is denied"),
        "{out}"
    );
}

#[test]
fn limits_stop_the_component() {
    let guest = component("limits");
    let out = run(warden_run(["--timeout", "1s", &guest, "spin"]));
    out.code(124);
    assert!(out.warden_line().contains("time limit of 1s"), "{out}");
    let out = run(warden_run(["--timeout", "1s", &guest, "sleep_forever"]));
    out.code(124);
    let out = run(warden_run(["--max-memory", "16MiB", &guest, "alloc", "64"]));
    out.code(122);
    assert!(out.warden_line().contains("16 MiB"), "{out}");
    let out = run(warden_run(["--max-memory", "64MiB", &guest, "alloc", "16"]));
    out.code(0).stdout_is("allocated 16 MiB (checksum true)\n");
    let out = run(warden_run(["--fuel", "1000000", &guest, "spin"]));
    out.code(121);
    let out = run(warden_run([
        "--max-stack",
        "64KiB",
        &guest,
        "recurse",
        "100000",
    ]));
    out.code(123);
    let out = run(warden_run([&guest, "trap", "oob"]));
    out.code(134);
    assert!(out.warden_line().contains("out of bounds"), "{out}");
}

#[test]
fn config_file_applies_to_components() {
    let dir = tempdir();
    let config = write(
        dir.path(),
        "Warden.toml",
        "args = [\"from\", \"config\"]\n[stdio]\nstderr = \"ignore\"\n",
    );
    let out = run(warden_run(["--config", s(&config), &component("hello")]));
    out.code(0)
        .stdout_is("hello from warden\nargc=3\narg[1]=from\narg[2]=config\n");
    assert_eq!(out.stderr, "");
}

/// A TCP server on loopback that answers each line with `pong`.
fn pong_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut line).is_ok() {
                let _ = (&stream).write_all(b"pong\n");
            }
        }
    });
    port
}

#[test]
fn network_denied_unless_granted() {
    let port = pong_server();
    let addr = format!("127.0.0.1:{port}");
    let net = component("net");
    let out = run(warden_run([&net, "tcp", &addr]));
    out.code(0).stdout_is("tcp: error PermissionDenied\n");
    assert!(out.stderr.contains("--allow-net"), "{out}");
    let out = run(warden_run(["--allow-net", &addr, &net, "tcp", &addr]));
    out.code(0).stdout_is("tcp: got pong\n").quiet();
    let out = run(warden_run([
        "--allow-net",
        "127.0.0.0/8",
        &net,
        "tcp",
        &addr,
    ]));
    out.code(0).stdout_is("tcp: got pong\n").quiet();
    let other = format!("127.0.0.1:{}", port.wrapping_add(1).max(1));
    let out = run(warden_run(["--allow-net", &other, &net, "tcp", &addr]));
    out.code(0).stdout_is("tcp: error PermissionDenied\n");
    let out = run(warden_run([
        "--allow-net",
        &addr,
        "--deny",
        "sockets",
        &net,
        "tcp",
        &addr,
    ]));
    assert!(out.bad_input().contains("sockets"), "{out}");
}

/// An HTTP server on loopback that answers every request with `hello`,
/// and counts the requests it got.
fn http_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        }
    });
    (port, count)
}

#[test]
fn outbound_http_only_to_listed_origins() {
    use std::sync::atomic::Ordering;
    let (port, count) = http_server();
    let url = format!("http://127.0.0.1:{port}/x");
    let net = component("net");
    let out = run(warden_run([&net, "http", &url]));
    out.code(0)
        .stdout_is("http: error ErrorCode::HttpRequestDenied\n");
    assert!(out.stderr.contains("--allow-http"), "{out}");
    assert_eq!(count.load(Ordering::SeqCst), 0, "a denied request went out");
    let origin = format!("http://127.0.0.1:{port}");
    let out = run(warden_run(["--allow-http", &origin, &net, "http", &url]));
    out.code(0)
        .stdout_is("http: status 200 body hello\n")
        .quiet();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let out = run(warden_run([
        "--allow-http",
        "*://127.0.0.1:*",
        &net,
        "http",
        &url,
    ]));
    out.code(0)
        .stdout_is("http: status 200 body hello\n")
        .quiet();
    // Another port, another scheme: refused.
    for wrong in ["http://127.0.0.1:1", &format!("https://127.0.0.1:{port}")] {
        let out = run(warden_run(["--allow-http", wrong, &net, "http", &url]));
        out.code(0)
            .stdout_is("http: error ErrorCode::HttpRequestDenied\n");
    }
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn malformed_component_is_refused() {
    let dir = tempdir();
    let bytes = std::fs::read(rust_component("hello")).unwrap();
    let cut = dir.path().join("cut.wasm");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = run(warden_run([s(&cut)]));
    let line = out.bad_input();
    assert!(
        line.contains("cut.wasm") && line.contains("not a valid WebAssembly component"),
        "{out}"
    );
}

fn suite_component(name: &str) -> PathBuf {
    support::wasi_suite::suite_root().join(format!("rust/testsuite/wasm32-wasip3/{name}.wasm"))
}

/// A component that exports one instance, `name`, with one function.
fn exporting(dir: &std::path::Path, name: &str) -> PathBuf {
    let bytes = wat::parse_str(format!(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (instance $e (export "handle" (func $f)))
            (export "{name}" (instance $e)))"#
    ))
    .unwrap();
    let path = dir.join("exports.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn other_worlds_are_not_run() {
    let dir = tempdir();
    let handler = exporting(dir.path(), "wasi:http/incoming-handler@0.2.0");
    let line = run(warden_run([s(&handler)])).bad_input();
    assert!(
        line.contains("HTTP handler")
            && line.contains("wasi:http/incoming-handler@0.2.0")
            && line.contains("warden serve"),
        "{line}"
    );
    let other = exporting(dir.path(), "example:thing/api@1.0.0");
    let line = run(warden_run([s(&other)])).bad_input();
    assert!(
        line.contains("not `wasi:cli/command`") && line.contains("example:thing/api@1.0.0"),
        "{line}"
    );
}

#[test]
fn a_wasi_0_3_command_runs() {
    // From the official suite: a WASI 0.3 component, detected as such.
    let out = run(warden_run([s(&suite_component("cli-env")), "a", "b", "42"]));
    out.code(134);
    let out = run(warden_run([
        "--env",
        "foo=bar",
        "--env",
        "baz=42",
        s(&suite_component("cli-env")),
        "a",
        "b",
        "42",
    ]));
    out.code(0).quiet();
}

#[test]
fn missing_import_is_named() {
    let dir = tempdir();
    let bytes = wat::parse_str(
        r#"(component
            (import "example:missing/thing@1.0.0" (instance (export "f" (func))))
            (core module $m (func (export "run") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func $run (result (result)) (canon lift (core func $i "run")))
            (instance $r (export "run" (func $run)))
            (export "wasi:cli/run@0.2.0" (instance $r)))"#,
    )
    .unwrap();
    let path = dir.path().join("needs.wasm");
    std::fs::write(&path, bytes).unwrap();
    let out = run(warden_run([s(&path)]));
    let line = out.bad_input();
    assert!(line.contains("example:missing/thing@1.0.0"), "{out}");
}

#[test]
fn a_sealed_mount_holds_the_same_files_for_modules_and_components() {
    let dir = tempdir();
    let store = dir.path().join("store.redb");
    let sealed = |guest: &str, args: &[&str]| {
        let mut all = vec!["--sealed", "/state=app", guest];
        all.extend(args);
        run_sealed(dir.path(), &all)
    };
    let module = rust_guest("fs_ops");
    let comp = rust_component("fs_ops");
    sealed(s(&module), &["write", "/state/from-module.txt", "module"])
        .code(0)
        .stdout_is("write: ok\n");
    sealed(s(&comp), &["cat", "/state/from-module.txt"])
        .code(0)
        .stdout_is("module");
    sealed(
        s(&comp),
        &["write", "/state/from-component.txt", "component"],
    )
    .code(0)
    .stdout_is("write: ok\n");
    sealed(s(&module), &["cat", "/state/from-component.txt"])
        .code(0)
        .stdout_is("component");
    let listing = sealed(s(&comp), &["tree", "/state"]);
    listing
        .code(0)
        .stdout_is("from-component.txt file 9 \"component\"\nfrom-module.txt file 6 \"module\"\n");
    // Sealed: the store file holds no plaintext.
    let raw = std::fs::read(&store).unwrap();
    assert!(!raw.windows(9).any(|w| w == b"component"));
}

#[test]
fn a_virtual_mount_is_read_only_for_components() {
    let dir = tempdir();
    let conf = dir.path().join("conf");
    write(&conf, "app.toml", "name = \"demo\"\n");
    let mount = format!("/etc/app={}", s(&conf));
    let comp = component("fs_ops");
    run(warden_run(["--mount", &mount, &comp, "tree", "/etc/app"]))
        .code(0)
        .stdout_is("app.toml file 14 \"name = \\\"demo\\\"\\n\"\n");
    let out = run(warden_run([
        "--mount",
        &mount,
        &comp,
        "write",
        "/etc/app/app.toml",
        "changed",
    ]));
    // EROFS (69), through the preview-1 adapter.
    out.code(1).stdout_is("write: err 69\n");
    assert_eq!(read(&conf, "app.toml"), "name = \"demo\"\n");
}

#[test]
fn a_bundled_component_reads_its_bundled_files() {
    let dir = tempdir();
    let conf = dir.path().join("conf");
    write(&conf, "app.toml", "bundled\n");
    let app = dir.path().join("app.warden");
    let out = run(warden_cmd(
        "bundle",
        [
            "--mount",
            &format!("/etc/app={}", s(&conf)),
            "-o",
            s(&app),
            &component("fs_ops"),
            "--",
            "cat",
            "/etc/app/app.toml",
        ],
    ));
    out.code(0);
    std::fs::remove_dir_all(&conf).unwrap();
    run(warden_run([s(&app)])).code(0).stdout_is("bundled\n");
}

#[test]
fn trace_shows_each_import_call_and_the_policy_that_stopped_one() {
    let dir = tempdir();
    write(dir.path(), "a.txt", "traced\n");
    let mount = format!("/data={}", s(dir.path()));
    let out = run(warden_run([
        "--trace",
        "--mount",
        &mount,
        &component("fs_ops"),
        "cat",
        "/data/a.txt",
    ]));
    out.code(0).stdout_is("traced\n");
    let open = out
        .stderr
        .lines()
        .find(|l| l.contains("wasi:filesystem/types@0.2#[method]descriptor.open-at("))
        .unwrap_or_else(|| panic!("no open-at line\n{out}"));
    assert!(
        open.starts_with("[trace] cage 1: ")
            && open.contains("path=\"a.txt\"")
            && open.contains("-> Ok(")
            && open.ends_with("s)"),
        "{open}"
    );
    assert!(
        out.stderr
            .contains("wasi:cli/environment@0.2#get-arguments()"),
        "{out}"
    );
    let out = run(warden_run([
        "--trace",
        "--deny",
        "clocks",
        &component("clock_random"),
        "std",
    ]));
    out.code(134);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("[trace] cage 1: wasi:clocks/")
                && l.contains("-> stopped: denied by policy (clocks)")),
        "{out}"
    );
}

#[test]
fn components_are_cached_and_a_changed_artifact_is_not_used() {
    let dir = tempdir();
    let cache = dir.path().join("cache");
    let hello = component("hello");
    let artifacts = || -> Vec<PathBuf> {
        std::fs::read_dir(&cache)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                    .collect()
            })
            .unwrap_or_default()
    };
    run(warden_run(["--no-cache", "--cache-dir", s(&cache), &hello]))
        .code(0)
        .stdout_is("hello from warden\nargc=1\n");
    assert!(artifacts().is_empty(), "--no-cache wrote to the cache");
    run(warden_run(["--cache-dir", s(&cache), &hello]))
        .code(0)
        .stdout_is("hello from warden\nargc=1\n");
    let found = artifacts();
    assert_eq!(found.len(), 1, "expected one artifact: {found:?}");
    let artifact = &found[0];
    let good = std::fs::read(artifact).unwrap();
    // Warm: the same artifact serves.
    run(warden_run(["--cache-dir", s(&cache), &hello])).code(0);
    assert_eq!(std::fs::read(artifact).unwrap(), good);
    // A changed artifact fails its MAC: compiled again and rewritten.
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0xff;
    std::fs::write(artifact, &bad).unwrap();
    run(warden_run(["--cache-dir", s(&cache), &hello]))
        .code(0)
        .stdout_is("hello from warden\nargc=1\n");
    assert_eq!(std::fs::read(artifact).unwrap(), good);
}

/// The official suite's WASI 0.3 filesystem test `NAME`: its root holds
/// `a.txt` ("test-a\n") and `b.txt` ("test-b\n"); it exits 0 when every
/// check passed and traps (134) at the first that did not.
fn suite_fs_test(name: &str) -> String {
    s(&suite_component(&format!("filesystem-{name}"))).to_string()
}

/// The suite's root, `a.txt` and `b.txt`, in `dir`.
fn suite_root_in(dir: &std::path::Path) {
    write(dir, "a.txt", "test-a\n");
    write(dir, "b.txt", "test-b\n");
}

#[test]
fn wasi_0_3_components_read_virtual_and_bundled_mounts() {
    let dir = tempdir();
    let root = dir.path().join("root");
    suite_root_in(&root);
    let virt = format!("/={}", s(&root));
    for test in ["read-directory", "open-errors"] {
        run(warden_run(["--mount", &virt, &suite_fs_test(test)]))
            .code(0)
            .quiet();
    }
    // Reads work, the first write is refused: the mount is read-only.
    let out = run(warden_run(["--mount", &virt, &suite_fs_test("io")]));
    out.code(134);
    assert!(out.stderr.contains("ReadOnly"), "{out}");
    assert_eq!(tree(&root), ["a.txt \"test-a\\n\"", "b.txt \"test-b\\n\""]);
    // Bundled: the files travel in the bundle.
    let app = dir.path().join("app.warden");
    run(warden_cmd(
        "bundle",
        [
            "--mount",
            &virt,
            "-o",
            s(&app),
            &suite_fs_test("read-directory"),
        ],
    ))
    .code(0);
    std::fs::remove_dir_all(&root).unwrap();
    run(warden_run([s(&app)])).code(0).quiet();
}

#[test]
fn wasi_0_3_components_read_and_write_a_sealed_namespace() {
    let dir = tempdir();
    let sealed = |guest: &str, mount: &str, args: &[&str]| {
        let mut all = vec!["--sealed", mount, guest];
        all.extend(args);
        run_sealed(dir.path(), &all)
    };
    // A core module writes the suite's root into the namespace...
    let module = rust_guest("fs_ops");
    for (file, text) in [("a.txt", "test-a\n"), ("b.txt", "test-b\n")] {
        sealed(
            s(&module),
            "/state=app",
            &["write", &format!("/state/{file}"), text],
        )
        .code(0)
        .stdout_is("write: ok\n");
    }
    // ...where WASI 0.3 components read it and write, change and remove
    // files of their own (each removes what it made).
    for test in ["io", "set-size", "stat", "flags-and-type", "unlink-errors"] {
        sealed(&suite_fs_test(test), "/=app", &[]).code(0).quiet();
    }
    // The module sees the root as it was; nothing is left.
    sealed(s(&module), "/state=app", &["tree", "/state"])
        .code(0)
        .stdout_is("a.txt file 7 \"test-a\\n\"\nb.txt file 7 \"test-b\\n\"\n");
    let raw = std::fs::read(dir.path().join("store.redb")).unwrap();
    assert!(!raw.windows(6).any(|w| w == b"byeee!" || w == b"test-a"));
}
