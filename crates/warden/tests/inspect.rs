//! `warden inspect`: what a module, a component and a bundle import and
//! export, a bundle's policy, and digests, as text and as JSON; and a
//! bundled component, which `warden run` leaves to the components runtime.

mod support;

use serde_json::Value;
use std::path::Path;
use support::*;

fn inspect(args: &[&str]) -> Output {
    let out = run(warden().arg("inspect").args(args));
    out.code(0).quiet();
    out
}

fn json(file: &Path) -> Value {
    let out = inspect(&["--json", s(file)]);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"))
}

fn sha256_of(path: &Path) -> String {
    sha256_text(&std::fs::read(path).unwrap())
}

#[test]
fn a_module_shows_its_imports_exports_and_digest() {
    let dir = tempdir();
    let module = wat(dir.path(), "say.wat", &say("hi"));
    let digest = sha256_of(&module);
    let out = inspect(&[s(&module)]);
    let code_digest = out
        .stdout
        .lines()
        .nth(2)
        .and_then(|l| l.strip_prefix("digest: "))
        .unwrap()
        .to_string();
    assert_eq!(code_digest, digest);
    out.stdout_is(&format!(
        "file: {}\nkind: module\ndigest: {digest}\nimports: 1\n  \
         wasi_snapshot_preview1::fd_write (func)\nexports: 2\n  memory (memory)\n  \
         _start (func)\npolicy: none (a config and flags give it when it runs)\n",
        s(&module)
    ));
    let v = json(&module);
    assert_eq!(v["kind"], "module");
    assert_eq!(v["digest"], digest.as_str());
    assert_eq!(v["code"]["kind"], "module");
    assert_eq!(v["code"]["looks_like"], Value::Null);
    assert_eq!(
        v["code"]["imports"][0],
        serde_json::json!({"module": "wasi_snapshot_preview1", "name": "fd_write", "kind": "func"})
    );
    assert_eq!(
        v["code"]["exports"][1],
        serde_json::json!({"name": "_start", "kind": "func"})
    );
    assert!(v.get("policy").is_none(), "{v}");
    // A Rust guest: its preview 1 imports.
    let v = json(&rust_guest("hello"));
    let imports: Vec<&str> = v["code"]["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(imports.contains(&"fd_write"), "{v}");
    assert!(imports.contains(&"args_get"), "{v}");
}

#[test]
fn a_component_shows_its_interfaces_and_what_it_looks_like() {
    let component = rust_component("hello");
    let out = inspect(&[s(&component)]);
    assert!(out.stdout.contains("\nkind: component\n"), "{out}");
    let looks = out.field("looks like");
    assert!(
        looks.starts_with("wasi:cli/command (exports wasi:cli/run@0.2."),
        "{out}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("  wasi:cli/environment@0.2.") && l.ends_with(" (instance)")),
        "{out}"
    );
    let v = json(&component);
    assert_eq!(v["kind"], "component");
    assert_eq!(v["code"]["looks_like"], "wasi:cli/command");
    assert_eq!(v["digest"], sha256_of(&component).as_str());
    let imports = v["code"]["imports"].as_array().unwrap();
    assert!(
        imports.iter().all(|i| i.get("module").is_none()),
        "component imports have no module: {v}"
    );
    assert!(
        imports.iter().any(
            |i| i["name"].as_str().unwrap().starts_with("wasi:cli/stdout@")
                && i["kind"] == "instance"
        ),
        "{v}"
    );
    let exports = v["code"]["exports"].as_array().unwrap();
    assert!(
        exports
            .iter()
            .any(|e| e["name"].as_str().unwrap().starts_with("wasi:cli/run@")),
        "{v}"
    );
}

#[test]
fn a_bundle_shows_its_code_policy_and_mounts() {
    let dir = tempdir();
    let root = dir.path();
    let module = wat(root, "say.wat", &say("hi"));
    write(root, "conf/a.txt", "hello");
    write(root, "conf/sub/b.txt", "world!");
    let app = root.join("app.warden");
    let printed = run(warden()
        .args(["bundle", "--mount"])
        .arg(format!("/etc/app={}", s(&root.join("conf"))))
        .args([
            "--env",
            "MODE=prod",
            "--fuel",
            "5000",
            "--allow-net",
            "10.0.0.0/8",
            s(&module),
            "-o",
            s(&app),
            "--",
            "one",
        ]));
    printed.code(0).quiet();
    let digest = sha256_of(&app);
    assert_eq!(printed.stdout, format!("{digest}\n"));
    let out = inspect(&[s(&app)]);
    assert_eq!(out.field("kind"), "bundle");
    assert_eq!(out.field("digest"), digest);
    for line in [
        "  wasi_snapshot_preview1::fd_write (func)",
        "  allow: clocks, random, exit, env, fs, sockets",
        "  deny: process, threads",
        "  stdio: stdin ignore, stdout allow, stderr allow",
        "  args: \"one\"",
        "  env: MODE=\"prod\"",
        "  net: 10.0.0.0/8",
        "  limits: fuel 5000",
    ] {
        assert!(out.stdout.lines().any(|l| l == line), "no {line:?}\n{out}");
    }
    let mount = out
        .stdout
        .lines()
        .find(|l| l.starts_with("  mount /etc/app: bundled sha256:"))
        .unwrap_or_else(|| panic!("no mount line\n{out}"));
    assert!(
        mount.ends_with("(2 files, 1 directory, 0 symlinks, 11 bytes)"),
        "{mount}"
    );
    let v = json(&app);
    assert_eq!(v["kind"], "bundle");
    assert_eq!(v["digest"], digest.as_str());
    assert_eq!(v["code"]["kind"], "module");
    assert_eq!(v["policy"]["format"], "warden-policy/1");
    assert_eq!(v["policy"]["args"], serde_json::json!(["one"]));
    assert_eq!(v["policy"]["limits"]["fuel"], 5000);
    assert_eq!(v["policy"]["allow"]["process"], false);
    let tree = v["mounts"][0]["digest"].as_str().unwrap();
    assert_eq!(
        v["policy"]["mounts"][0],
        serde_json::json!({"bundled": tree, "guest": "/etc/app"})
    );
    assert_eq!(v["mounts"][0]["files"], 2);
    assert_eq!(v["mounts"][0]["bytes"], 11);
    // The policy digest is the SHA-256 of the canonical policy, which is
    // the policy object written without spaces in key order.
    let canonical = serde_json::to_string(&v["policy"]).unwrap();
    assert_eq!(
        v["policy_digest"],
        sha256_text(canonical.as_bytes()).as_str()
    );
}

#[test]
fn a_bundled_component_is_inspected_and_runs() {
    let dir = tempdir();
    let app = dir.path().join("hello.warden");
    let component = rust_component("hello");
    let out = run(warden().args(["bundle", s(&component), "-o", s(&app)]));
    out.code(0).quiet();
    let v = json(&app);
    assert_eq!(v["kind"], "bundle");
    assert_eq!(v["code"]["kind"], "component");
    assert_eq!(v["code"]["looks_like"], "wasi:cli/command");
    assert_eq!(v["code"]["digest"], sha256_of(&component).as_str());
    let out = run(warden_run([s(&app)]));
    out.code(0).stdout_is("hello from warden\nargc=1\n");
    // A bundle's policy is a ceiling for components too.
    let line = run(warden_run(["--allow-net", "127.0.0.1:1", s(&app)])).bad_input();
    assert!(line.contains("widens"), "{line}");
}

#[test]
fn what_is_not_code_is_one_line() {
    let dir = tempdir();
    let junk = write(dir.path(), "junk.bin", "not wasm");
    let line = run(warden().arg("inspect").arg(&junk)).bad_input();
    assert!(line.contains("is not a WebAssembly file"), "{line}");
    let line = run(warden().args(["inspect", "/definitely/not/here"])).bad_input();
    assert!(line.contains("cannot read /definitely/not/here"), "{line}");
}
