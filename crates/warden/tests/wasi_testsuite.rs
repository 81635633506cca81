//! The official WASI test suite (`../shared/wasi-testsuite`), preview 1:
//! every test module runs under `warden run` as the upstream runner runs it
//! under wasmtime (`--dir ROOT::/` on a fresh copy of its `root`, its `args`
//! and `env`), and must end with the expected exit code and stdout.
//!
//! One test function runs them all and fails naming every test that did
//! not pass, with what it printed.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use support::wasi_suite::{copy_tree, suite_root};
use support::*;

/// Every preview-1 test module of the suite, sorted.
fn preview1_tests() -> Vec<PathBuf> {
    let mut tests = Vec::new();
    for lang in ["rust", "c", "assemblyscript"] {
        let dir = suite_root().join(lang).join("testsuite/wasm32-wasip1");
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "wasm") {
                tests.push(path);
            }
        }
    }
    tests.sort();
    tests
}

/// A test's spec: the legacy form every preview-1 test uses.
struct Spec {
    args: Vec<String>,
    env: Vec<(String, String)>,
    root: Option<PathBuf>,
    exit_code: i32,
    stdout: Option<String>,
    stderr: Option<String>,
}

impl Spec {
    fn of(test: &Path) -> Spec {
        let json = test.with_extension("json");
        let value: Value = match std::fs::read_to_string(&json) {
            Ok(text) => serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", json.display())),
            Err(_) => Value::Object(Default::default()),
        };
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        let env = value
            .get("env")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Spec {
            args: strings(value.get("args")),
            env,
            root: value
                .get("root")
                .and_then(Value::as_str)
                .map(|r| test.parent().unwrap().join(r)),
            exit_code: value.get("exit_code").and_then(Value::as_i64).unwrap_or(0) as i32,
            stdout: value
                .get("stdout")
                .and_then(Value::as_str)
                .map(String::from),
            stderr: value
                .get("stderr")
                .and_then(Value::as_str)
                .map(String::from),
        }
    }
}

/// Runs one test; `Err` says why it failed.
fn run_one(test: &Path) -> Result<(), String> {
    let spec = Spec::of(test);
    let mut cmd = warden_run(Vec::<String>::new());
    for (k, v) in &spec.env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    // Kept alive until the run ends.
    let scratch = tempdir();
    if let Some(root) = &spec.root {
        copy_tree(root, scratch.path());
        cmd.arg("--dir").arg(format!("{}::/", s(scratch.path())));
    }
    cmd.arg(test).args(&spec.args);
    let out = run(cmd);
    let mut wrong = Vec::new();
    if out.code != Some(spec.exit_code) {
        wrong.push(format!(
            "exit code {:?}, expected {}",
            out.code, spec.exit_code
        ));
    }
    if let Some(expected) = &spec.stdout {
        if &out.stdout != expected {
            wrong.push(format!("stdout {:?}, expected {expected:?}", out.stdout));
        }
    }
    if let Some(expected) = &spec.stderr {
        if &out.stderr != expected {
            wrong.push(format!("stderr {:?}, expected {expected:?}", out.stderr));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{out}", wrong.join("; ")))
    }
}

#[test]
fn every_preview1_test_passes() {
    let tests = preview1_tests();
    assert_eq!(tests.len(), 72, "the suite should hold 72 preview-1 tests");
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    // A few at a time: each run is short and mostly start-up.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(test) = tests.get(i) else { break };
                if let Err(why) = run_one(test) {
                    let name = test.strip_prefix(suite_root()).unwrap_or(test);
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{}: {why}", name.display()));
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} WASI preview-1 tests failed:\n\n{}",
        failures.len(),
        tests.len(),
        failures.join("\n\n")
    );
}
