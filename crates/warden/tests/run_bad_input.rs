//! Bad input: one clear line `warden: error: ...` naming what was wrong and
//! where, exit code 2, and nothing run (stdout empty, no file written).

mod support;

use std::path::Path;
use support::*;

/// A guest that would leave a trace if it ran: it writes a file into the
/// first mount (when there is one) and prints.
fn would_run(args: &[&str]) -> Output {
    run(warden_run(args))
}

#[test]
fn not_a_wasm_file() {
    let dir = tempdir();
    let path = write(dir.path(), "notes.wasm", "just some text, not wasm\n");
    let line = would_run(&[s(&path)]).bad_input();
    assert!(line.contains(s(&path)), "names the file: {line}");
    assert!(line.contains("not a WebAssembly"), "{line}");

    let empty = write(dir.path(), "empty.wasm", "");
    let line = would_run(&[s(&empty)]).bad_input();
    assert!(line.contains(s(&empty)), "{line}");

    // An ELF executable, say.
    let line = would_run(&[env!("CARGO_BIN_EXE_warden")]).bad_input();
    assert!(line.contains("not a WebAssembly"), "{line}");
}

#[test]
fn a_missing_module_file() {
    let dir = tempdir();
    let path = dir.path().join("nowhere.wasm");
    let line = would_run(&[s(&path)]).bad_input();
    assert!(line.contains(s(&path)), "{line}");
}

#[test]
fn a_truncated_module() {
    let dir = tempdir();
    let bytes = std::fs::read(rust_guest("hello")).unwrap();
    // (8 bytes, the header alone, is a valid empty module.)
    for len in [9, 100, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.path().join(format!("truncated-{len}.wasm"));
        std::fs::write(&path, &bytes[..len]).unwrap();
        let line = would_run(&[s(&path)]).bad_input();
        assert!(line.contains(s(&path)), "{line}");
        assert!(line.contains("not a valid WebAssembly module"), "{line}");
    }
}

#[test]
fn an_invalid_module() {
    let dir = tempdir();
    // The header, then a type section whose body is garbage.
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.extend([0x01, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let path = dir.path().join("invalid.wasm");
    std::fs::write(&path, bytes).unwrap();
    let line = would_run(&[s(&path)]).bad_input();
    assert!(
        line.contains(s(&path)) && line.contains("not a valid WebAssembly module"),
        "{line}"
    );

    // Well-formed but ill-typed code.
    let path = wat(
        dir.path(),
        "illtyped.wat",
        r#"(module (memory (export "memory") 1) (func (export "_start") (i32.add (i32.const 1))))"#,
    );
    let line = would_run(&[s(&path)]).bad_input();
    assert!(line.contains(s(&path)), "{line}");

    // WAT that does not parse.
    let path = wat(dir.path(), "broken.wat", "(module (func $f (i32.const 1)");
    let line = would_run(&[s(&path)]).bad_input();
    assert!(line.contains(s(&path)), "{line}");
}

#[test]
fn a_component_of_no_runnable_world_says_what_runs() {
    let dir = tempdir();
    // The smallest component: magic, version 0x0d, layer 1. It exports
    // nothing, so it is no `wasi:cli/command`.
    let path = dir.path().join("empty-component.wasm");
    std::fs::write(&path, b"\0asm\x0d\0\x01\0").unwrap();
    let line = would_run(&[s(&path)]).bad_input();
    assert!(line.contains(s(&path)), "{line}");
    assert!(
        line.contains("wasi:cli/command") && line.contains("exports nothing"),
        "says what it is and what runs: {line}"
    );
}

#[test]
fn an_import_warden_does_not_provide_is_named() {
    let dir = tempdir();
    let cases = [
        (r#"(import "env" "mystery" (func))"#, "env::mystery"),
        (
            r#"(import "wasi_snapshot_preview1" "fd_teleport" (func (param i32) (result i32)))"#,
            "wasi_snapshot_preview1::fd_teleport",
        ),
        (
            r#"(import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
            "wasi_unstable::fd_write",
        ),
        (r#"(import "env" "table" (table 1 funcref))"#, "env::table"),
    ];
    for (i, (import, name)) in cases.into_iter().enumerate() {
        let path = wat(
            dir.path(),
            &format!("import{i}.wat"),
            &format!(r#"(module {import} (memory (export "memory") 1) (func (export "_start")))"#),
        );
        let line = would_run(&[s(&path)]).bad_input();
        assert!(line.contains(name), "expected {name} in {line}");
    }
}

#[test]
fn a_wasi_import_with_the_wrong_signature_is_named() {
    let dir = tempdir();
    let path = wat(
        dir.path(),
        "badsig.wat",
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write" (func (param i32)))
             (memory (export "memory") 1)
             (func (export "_start")))"#,
    );
    let line = would_run(&[s(&path)]).bad_input();
    assert!(line.contains("fd_write"), "{line}");
}

fn config_error(text: &str) -> (String, String) {
    let dir = tempdir();
    let config = write(dir.path(), "Warden.toml", text);
    let line = would_run(&["--config", s(&config), s(&rust_guest("hello"))]).bad_input();
    (line, s(&config).to_string())
}

#[test]
fn an_unknown_config_key_names_the_key_and_line() {
    let (line, path) = config_error("args = []\n\n[limits]\nmax_memroy = \"1MiB\"\n");
    assert!(
        line.contains(&format!("{path}:4:")),
        "names file and line 4: {line}"
    );
    assert!(line.contains("max_memroy"), "{line}");

    let (line, path) = config_error("# comment\nbogus = 1\n");
    assert!(
        line.contains(&format!("{path}:2:")) && line.contains("bogus"),
        "{line}"
    );

    let (line, path) = config_error("[alow]\nclocks = true\n");
    assert!(
        line.contains(&format!("{path}:1:")) && line.contains("alow"),
        "{line}"
    );

    let (line, path) = config_error("[allow]\nclocks = true\nnetwork = true\n");
    assert!(
        line.contains(&format!("{path}:3:")) && line.contains("network"),
        "{line}"
    );

    let (line, path) = config_error("[[mount]]\nguest = \"/a\"\nhots = \"x\"\n");
    assert!(
        line.contains(&format!("{path}:3:")) && line.contains("hots"),
        "{line}"
    );
}

#[test]
fn an_ill_typed_config_key_names_the_key_and_line() {
    let (line, path) = config_error("\n[limits]\nfuel = \"lots\"\n");
    assert!(line.contains(&format!("{path}:3:")), "{line}");
    assert!(line.contains("limits.fuel"), "{line}");

    let (line, path) = config_error("args = \"not a list\"\n");
    assert!(
        line.contains(&format!("{path}:1:")) && line.contains("args"),
        "{line}"
    );

    let (line, path) = config_error("[limits]\nmax_memory = \"huge\"\n");
    assert!(
        line.contains(&format!("{path}:2:")) && line.contains("max_memory"),
        "{line}"
    );

    let (line, path) = config_error("[limits]\ntimeout = \"soon\"\n");
    assert!(
        line.contains(&format!("{path}:2:")) && line.contains("timeout"),
        "{line}"
    );

    let (line, path) = config_error("[stdio]\nstdout = \"maybe\"\n");
    assert!(
        line.contains(&format!("{path}:2:")) && line.contains("stdout"),
        "{line}"
    );

    let (line, path) = config_error("[allow]\nclocks = \"yes\"\n");
    assert!(
        line.contains(&format!("{path}:2:")) && line.contains("clocks"),
        "{line}"
    );

    let (line, path) = config_error("[env]\nA = 1\n");
    assert!(
        line.contains(&format!("{path}:2:")) && line.contains('A'),
        "{line}"
    );
}

#[test]
fn a_config_that_is_not_toml_or_missing() {
    let (line, path) = config_error("args = [\"a\"\n[limits\n");
    assert!(line.contains(&path), "{line}");
    let dir = tempdir();
    let missing = dir.path().join("Missing.toml");
    let line = would_run(&["--config", s(&missing), s(&rust_guest("hello"))]).bad_input();
    assert!(line.contains(s(&missing)), "{line}");
}

#[test]
fn a_missing_dir_host_path() {
    let dir = tempdir();
    let missing = dir.path().join("not-there");
    let line = would_run(&[
        "--dir",
        &format!("{}::/data", s(&missing)),
        s(&rust_guest("hello")),
    ])
    .bad_input();
    assert!(line.contains(s(&missing)), "{line}");

    let line = would_run(&["--dir-ro", s(&missing), s(&rust_guest("hello"))]).bad_input();
    assert!(line.contains(s(&missing)), "{line}");

    let line = would_run(&[
        "--mount",
        &format!("/conf={}", s(&missing)),
        s(&rust_guest("hello")),
    ])
    .bad_input();
    assert!(line.contains(s(&missing)), "{line}");

    // A file where a directory is expected.
    let file = write(dir.path(), "file.txt", "x");
    let line = would_run(&[
        "--dir",
        &format!("{}::/data", s(&file)),
        s(&rust_guest("hello")),
    ])
    .bad_input();
    assert!(
        line.contains(s(&file)) && line.contains("not a directory"),
        "{line}"
    );
}

#[test]
fn two_mounts_on_one_guest_path() {
    let a = tempdir();
    let b = tempdir();
    let fs_ops = rust_guest("fs_ops");
    let check = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([s(&fs_ops), "write", "/data/ran.txt", "it ran"]);
        let line = would_run(&all).bad_input();
        assert!(line.contains("/data"), "names the guest path: {line}");
        for dir in [a.path(), b.path()] {
            assert!(!dir.join("ran.txt").exists(), "the guest ran");
        }
    };
    let da = format!("{}::/data", s(a.path()));
    let db = format!("{}::/data", s(b.path()));
    check(&["--dir", &da, "--dir", &db]);
    check(&["--dir", &da, "--dir-ro", &db]);
    check(&["--dir", &da, "--mount", &format!("/data={}", s(b.path()))]);
    check(&["--dir", &da, "--dir", &format!("{}::/data/", s(b.path()))]);
    let cfg_dir = tempdir();
    let config = write(
        cfg_dir.path(),
        "Warden.toml",
        &format!("[[mount]]\nguest = \"/data\"\nhost = \"{}\"\n", s(a.path())),
    );
    check(&["--config", s(&config), "--dir", &db]);
}

#[test]
fn bad_flags() {
    let hello = rust_guest("hello");
    let cases: &[(&[&str], &str)] = &[
        (&["--allow", "network"], "network"),
        (&["--deny", "everything"], "everything"),
        (&["--max-memory", "lots"], "--max-memory"),
        (&["--max-stack", "deep"], "--max-stack"),
        (&["--timeout", "soon"], "--timeout"),
        (&["--stdin", "maybe"], "maybe"),
        (&["--stdout", "sometimes"], "sometimes"),
        (&["--listen", "not-an-address"], "not-an-address"),
        (&["--mount", "no-equals-sign"], "--mount"),
        (&["--env", "=value"], "--env"),
        (&["--frobnicate"], "--frobnicate"),
        (&["--fuel", "lots"], "--fuel"),
    ];
    for (flags, named) in cases {
        let mut args = flags.to_vec();
        args.push(s(&hello));
        let line = would_run(&args).bad_input();
        assert!(
            line.contains(named),
            "{flags:?}: expected {named:?} in {line}"
        );
    }
    // No module at all.
    let out = run(warden().arg("run"));
    out.bad_input();
}

#[test]
fn an_entrypoint_that_is_not_exported() {
    let line = would_run(&["--entrypoint", "nope", s(&rust_guest("hello"))]).bad_input();
    assert!(line.contains("nope"), "{line}");
}

#[test]
fn a_reactor_without_an_entrypoint() {
    let dir = tempdir();
    let path = wat(
        dir.path(),
        "reactor.wat",
        r#"(module (memory (export "memory") 1) (func (export "_initialize")) (func (export "run")))"#,
    );
    let line = would_run(&[s(&path)]).bad_input();
    assert!(line.contains("--entrypoint"), "{line}");
}

#[test]
fn a_listen_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line = would_run(&["--listen", &addr, s(&rust_guest("hello"))]).bad_input();
    assert!(line.contains(&addr), "{line}");
}

#[test]
fn a_precompiled_module_without_the_flag() {
    let dir = tempdir();
    let cwasm = dir.path().join("hello.cwasm");
    let out = run(warden()
        .arg("compile")
        .arg(rust_guest("hello"))
        .arg("-o")
        .arg(&cwasm));
    out.code(0);
    let line = would_run(&[s(&cwasm)]).bad_input();
    assert!(line.contains("--allow-precompiled"), "{line}");
    assert!(Path::new(&cwasm).exists());
}
