//! `wasi:filesystem` 0.3 over warden's VFS, with real WASI 0.3 components:
//! the official suite's filesystem tests (`filesystem-*.wasm`, whose root
//! holds `a.txt` and `b.txt`) run here on sealed and virtual mounts, which
//! only warden's VFS serves. (On host mounts they run in
//! `crates/warden/tests/wasi_testsuite_p3.rs`, under `warden run`.)

mod support;

use support::*;

/// What the suite's `fs-tests.dir` holds.
const ROOT: &[(&str, &str)] = &[("a.txt", "test-a\n"), ("b.txt", "test-b\n")];

/// Every filesystem test of the suite passes on a sealed mount except
/// those that make hard or symbolic links, which sealed mounts do not
/// have (`hard-links`, `is-same-object`, `metadata-hash` and `rename`
/// link first).
const ON_SEALED: &[&str] = &[
    "advise",
    "dotdot",
    "flags-and-type",
    "io",
    "mkdir-rmdir",
    "open-errors",
    "read-directory",
    "set-size",
    "stat",
    "unlink-errors",
];

/// The tests that write nothing pass on a virtual (read-only) mount.
const ON_VIRTUAL: &[&str] = &["advise", "open-errors", "read-directory"];

fn suite_test(name: &str) -> std::path::PathBuf {
    suite_component(&format!("filesystem-{name}"))
}

/// One preopen, named as the suite names it.
fn root(node: std::sync::Arc<dyn warden_kernel::vfs::Node>) -> Mounts {
    vec![("fs-tests.dir".to_string(), node)]
}

#[tokio::test]
async fn the_suite_reads_and_writes_a_sealed_mount() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = Sealed::new(dir.path());
    {
        let (_store, fs) = sealed.fs("app");
        for (name, text) in ROOT {
            fs.write_file(name, text.as_bytes()).unwrap();
        }
    }
    // One namespace for all: each test reads the root's files and writes
    // its own, `*.cleanup`, which it removes (what it leaves is removed
    // after it, as the upstream runner does).
    for name in ON_SEALED {
        let (store, node) = sealed.mount("app");
        let run = run_p3(&suite_test(name), root(node)).await;
        drop(store);
        assert_eq!(run.code, 0, "filesystem-{name} on a sealed mount: {run}");
        let (_store, fs) = sealed.fs("app");
        for entry in fs.readdir("").unwrap() {
            if entry.name.ends_with(".cleanup") {
                fs.rmdir(&entry.name)
                    .or_else(|_| fs.unlink(&entry.name))
                    .unwrap();
            }
        }
    }
    let (store, fs) = sealed.fs("app");
    let mut names: Vec<String> = fs
        .readdir("")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    assert_eq!(names, ["a.txt", "b.txt"], "what the tests left");
    for (name, text) in ROOT {
        assert_eq!(fs.read_file(name).unwrap(), text.as_bytes());
    }
    drop((store, fs));
    // What `filesystem-io` wrote went into the sealed store, sealed.
    let raw = std::fs::read(&sealed.path).unwrap();
    assert!(!raw.windows(6).any(|w| w == b"byeee!" || w == b"test-a"));
}

#[tokio::test]
async fn the_suite_reads_a_virtual_mount_and_cannot_write_it() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in ROOT {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    for name in ON_VIRTUAL {
        let run = run_p3(&suite_test(name), root(virtual_tree(dir.path()))).await;
        assert_eq!(run.code, 0, "filesystem-{name} on a virtual mount: {run}");
    }
    // `filesystem-io` reads `a.txt`, then fails to create a file: the
    // mount is read-only, and the tree it was captured from is untouched.
    let run = run_p3(&suite_test("io"), root(virtual_tree(dir.path()))).await;
    assert_eq!(run.code, 134, "{run}");
    assert!(run.stderr.contains("ReadOnly"), "{run}");
    assert_eq!(
        tree(dir.path()),
        ["a.txt \"test-a\\n\"", "b.txt \"test-b\\n\""]
    );
}

#[tokio::test]
async fn a_read_only_host_mount_refuses_what_a_writable_one_allows() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in ROOT {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let run = run_p3(&suite_test("io"), root(host(dir.path(), false))).await;
    assert_eq!(run.code, 0, "{run}");
    let run = run_p3(&suite_test("io"), root(host(dir.path(), true))).await;
    assert_eq!(run.code, 134, "{run}");
    assert!(run.stderr.contains("ReadOnly"), "{run}");
    assert_eq!(
        tree(dir.path()),
        ["a.txt \"test-a\\n\"", "b.txt \"test-b\\n\""]
    );
}
