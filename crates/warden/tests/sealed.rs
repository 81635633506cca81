//! Sealed mounts: a directory kept in the sealed store, used by a C and a
//! Rust guest across runs; nothing readable left on the host; a tampered or
//! rolled-back store is refused with one line.

mod support;

use std::path::Path;
use support::*;

struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn new() -> Store {
        Store { dir: tempdir() }
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("store.redb")
    }

    fn run(&self, guest: &Path, args: &[&str]) -> Output {
        let key = self.dir.path().join("store.key");
        let mut cmd = warden_run([
            "--store",
            s(&self.file()),
            "--key-file",
            s(&key),
            "--sealed",
            "/state=journal",
            s(guest),
        ]);
        cmd.args(args);
        run(cmd)
    }
}

#[test]
fn a_c_and_a_rust_guest_share_a_sealed_directory_across_runs() {
    let store = Store::new();
    let c = c_guest("sealed_journal");
    let rust = rust_guest("fs_ops");

    store
        .run(&c, &["write", "/state", "first entry"])
        .code(0)
        .stdout_is("scratch: 01AB45\nrmdir non-empty: Directory not empty\n");
    store.run(&c, &["write", "/state", "second entry"]).code(0);
    // The Rust guest reads what the C guest wrote in earlier runs, and adds
    // a file of its own.
    store
        .run(&rust, &["cat", "/state/journal.txt"])
        .code(0)
        .stdout_is("first entry\nsecond entry\n");
    store
        .run(&rust, &["write", "/state/from-rust.txt", "hello from rust"])
        .code(0);
    store
        .run(&rust, &["tree", "/state"])
        .code(0)
        .has_line("archive/ dir")
        .has_line("from-rust.txt file 15 \"hello from rust\"");
    store
        .run(&c, &["show", "/state"])
        .code(0)
        .has_line("journal: first entry")
        .has_line("journal: second entry")
        .has_line("journal size: 25")
        .has_line("entry: from-rust.txt");

    // Nothing the guests wrote is readable in the store file.
    let raw = std::fs::read(store.file()).unwrap();
    for needle in ["first entry", "hello from rust", "journal.txt", "from-rust"] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "`{needle}` is readable in the store file"
        );
    }
}

#[test]
fn a_tampered_store_is_refused_with_one_line() {
    let store = Store::new();
    let c = c_guest("sealed_journal");
    store.run(&c, &["write", "/state", "entry"]).code(0);
    let path = store.file();
    let mut raw = std::fs::read(&path).unwrap();
    // Flip bits throughout the file's data pages.
    let len = raw.len();
    for i in (len / 4..len).step_by(97) {
        raw[i] ^= 0x5a;
    }
    std::fs::write(&path, &raw).unwrap();
    let out = store.run(&c, &["show", "/state"]);
    out.code(2);
    let line = out.bad_input();
    assert!(line.contains("sealed store"), "{out}");
}

#[test]
fn an_older_copy_of_the_store_is_refused() {
    let store = Store::new();
    let c = c_guest("sealed_journal");
    store.run(&c, &["write", "/state", "one"]).code(0);
    let old = std::fs::read(store.file()).unwrap();
    store.run(&c, &["write", "/state", "two"]).code(0);
    std::fs::write(store.file(), old).unwrap();
    let out = store.run(&c, &["show", "/state"]);
    out.code(2);
    let line = out.bad_input();
    assert!(line.contains("older"), "names the rollback\n{out}");
}

/// Four cages append 1,000 lines each to one sealed file, one `write` per
/// line through O_APPEND, with an open each or one shared: every line must
/// land whole, none overwritten.
#[test]
fn appends_from_four_cages_are_atomic() {
    let guest = cc_guest("sealed_append");
    for mode in ["own", "shared"] {
        let store = Store::new();
        let key = store.dir.path().join("store.key");
        let sealed_run = |args: &[&str]| {
            let mut cmd = warden_run([
                "--allow",
                "process",
                "--store",
                s(&store.file()),
                "--key-file",
                s(&key),
                "--sealed",
                "/state=appends",
                s(&guest),
            ]);
            cmd.args(args);
            run(cmd)
        };
        sealed_run(&[mode, "/state"])
            .code(0)
            .stdout_is("cages failed: 0\n");
        // Read back by a second run, from the store.
        sealed_run(&["count", "/state"]).code(0).stdout_is(
            "whole lines: 4000\nbroken lines: 0\ncage 0: 1000\ncage 1: 1000\n\
             cage 2: 1000\ncage 3: 1000\n",
        );
    }
}

/// Two mounts of one namespace are one filesystem: a file open through one
/// and unlinked through the other keeps its data until it is closed.
#[test]
fn two_mounts_of_one_namespace_are_one_filesystem() {
    let store = Store::new();
    let guest = c_guest("sealed_two_mounts");
    let key = store.dir.path().join("store.key");
    let out = run(warden_run([
        "--store",
        s(&store.file()),
        "--key-file",
        s(&key),
        "--sealed",
        "/a=shared",
        "--sealed",
        "/b=shared",
        s(&guest),
        "/a",
        "/b",
    ]));
    out.code(0).stdout_is(
        "same file through B: yes\nunlink through B: ok\ngone through A: yes\n\
         read through the fd: kept data\nwrite through the fd: ok\nfstat: 13 bytes\n",
    );
}

/// ftruncate to 2^50 and back, and unlink of such a file, cost what is
/// stored: the run ends at once (it took about 50 minutes of host CPU that
/// `--timeout` could not stop when each chunk index up to the size was
/// visited).
#[test]
fn huge_sparse_files_cost_what_is_stored() {
    let store = Store::new();
    let guest = c_guest("sealed_sparse");
    let key = store.dir.path().join("store.key");
    let cmd = warden_run([
        "--store",
        s(&store.file()),
        "--key-file",
        s(&key),
        "--sealed",
        "/state=sparse",
        s(&guest),
        "/state",
    ]);
    // A generous watchdog, not a timing assertion.
    run_limited(cmd, b"", std::time::Duration::from_secs(30))
        .code(0)
        .stdout_is(
            "open: ok\nwrite head: ok\ngrow to 2^50: ok\nwrite tail: ok\nread tail: ok\n\
             shrink to 2: ok\nshrink to 0: ok\ngrow again: ok\nunlink closed: ok\n\
             grow open: ok\nunlink open: ok\n",
        );
}
