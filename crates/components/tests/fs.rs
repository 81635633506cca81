//! `wasi:filesystem` 0.2 served from warden's VFS, exercised by real
//! wasm32-wasip2 components: every descriptor method on host and sealed
//! mounts (`fs_p2 rw`), the rights of descriptors, read-only mounts, what a
//! user checks afterwards on the host or in the sealed store, and the same
//! `std::fs` transcripts that `warden run` checks for core modules
//! (`crates/warden/tests/run_fs.rs`), now through wasi-libc and the
//! preview-1 adapter over this filesystem.

mod support;

use std::time::{Duration, UNIX_EPOCH};
use support::*;

/// `fs_p2 rw` up to the links, the same on every writable mount.
const RW_HEAD: &str = r#"preopen flags: ok "read|mutate-directory"
preopen type: ok "directory"
create f.txt: ok
flags: ok "read|write"
type: ok "regular-file"
write: ok 5
read: ok ("hello", false)
read at end: ok ("", true)
write past end: ok 1
stat: ok "regular-file links=1 size=8 times=true"
write stream: ok
read stream from 1: ok "ELLO\0\0!"
append stream: ok
read stream: ok "HELLO\0\0!+tail"
set-size 4: ok
after set-size: ok "HELL"
sync: ok
sync-data: ok
advise: ok
set-times: ok
mtime: ok Some((1000000000, 5))
open read-only: ok
read-only flags: ok "read"
read-only write: err bad-descriptor
read-only write-via-stream: err bad-descriptor
read-only append-via-stream: err bad-descriptor
read-only set-size: err invalid
read-only read: ok ("HELL", false)
open no flags: ok
no flags flags: ok "read"
open write-only: ok
write-only flags: ok "write"
write-only read: err bad-descriptor
write-only read-via-stream: err bad-descriptor
write-only write: ok 1
mkdir sub: ok
mkdir sub again: err exist
open sub mutate: ok
sub mutate flags: ok "read|mutate-directory"
sub mutate: mkdir x: ok
sub mutate: create y.txt: ok
open dir for write: err is-directory
open file as dir: err not-directory
create|directory: err invalid
open missing: err no-entry
create exclusive existing: err exist
read-directory on a file: err not-directory
stat-at on a file: err not-directory
read on a dir: err bad-descriptor
read-via-stream on a dir: err is-directory
write on a dir: err bad-descriptor
set-size on a dir: err bad-descriptor
rmdir non-empty: err not-empty
unlink a dir: err is-directory
rmdir a file: err not-directory
mkdir sub/x/deep: ok
"#;

/// Links on a host mount.
const RW_LINKS: &str = r#"symlink: ok
readlink: ok "f.txt"
readlink a file: err invalid
stat link: ok "symbolic-link"
stat link follow: ok ("regular-file", 4)
symlink absolute: err not-permitted
hard link: ok
hard link onto existing: err exist
hard link follow: err invalid
link count: ok 2
open hard.txt: ok
same object f hard: true
unlink link: ok
rename hard.txt: ok
"#;

/// A sealed mount has no links (`EPERM`, as the kernel answers a core
/// module); the guest makes `sub/moved.txt` by hand instead.
const RW_NO_LINKS: &str = r#"symlink: err not-permitted
hard link: err not-permitted
create moved.txt: ok
write moved.txt: ok
"#;

const RW_TAIL: &str = r#"same object f d: false
open f.txt again: ok
same object f f2: true
metadata hash: same path true other differs true
rename missing: err no-entry
set-times-at: ok
mtime moved.txt: ok Some((1500000000, 7))
unlink moved.txt: ok
unlink moved.txt again: err no-entry
rmdir sub/x/deep: ok
rmdir sub/x/deep again: err no-entry
list: ok "f.txt:regular-file sub:directory"
open sub: ok
list sub: ok "x:directory y.txt:regular-file"
create out.txt: ok
write out.txt: ok
done
"#;

fn rw_transcript(preopen: &str, links: bool) -> String {
    let middle = if links { RW_LINKS } else { RW_NO_LINKS };
    format!("preopens: {preopen}\n{RW_HEAD}{middle}{RW_TAIL}")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_descriptor_method_on_a_host_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "fs_p2",
        &["rw", "/data"],
        vec![("/data".into(), host(dir.path(), false))],
    )
    .await;
    out.code(0);
    same_lines(&out, &rw_transcript("/data", true));
    // What the guest left is on the host.
    assert_eq!(
        tree(dir.path()),
        [
            "f.txt \"HELL\"",
            "out.txt \"written by fs_p2\\n\"",
            "sub/",
            "sub/x/",
            "sub/y.txt \"\"",
        ]
    );
    let mtime = std::fs::metadata(dir.path().join("f.txt"))
        .unwrap()
        .modified()
        .unwrap();
    // `sub/moved.txt` was a hard link of f.txt when its times were set.
    assert_eq!(mtime, UNIX_EPOCH + Duration::new(1_500_000_000, 7));
}

#[tokio::test(flavor = "multi_thread")]
async fn sealed_files_outlive_the_run_and_stay_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = Sealed::new(dir.path());
    {
        let (_store, mount) = sealed.mount("app");
        let out = run(
            "fs_p2",
            &["rw", "/state", "nolinks"],
            vec![("/state".into(), mount)],
        )
        .await;
        out.code(0);
        same_lines(&out, &rw_transcript("/state", false));
    }
    // The store itself holds the files, and nothing readable.
    {
        let (_store, fs) = sealed.fs("app");
        assert_eq!(fs.read_file("out.txt").unwrap(), b"written by fs_p2\n");
        assert_eq!(fs.read_file("f.txt").unwrap(), b"HELL");
        let mut names: Vec<String> = fs
            .readdir("sub")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        assert_eq!(names, ["x", "y.txt"]);
    }
    let raw = std::fs::read(&sealed.path).unwrap();
    assert!(
        !raw.windows(b"written by fs_p2".len())
            .any(|w| w == b"written by fs_p2"),
        "plaintext in the store file"
    );
    // A second instance, with the store opened anew, reads it back: by
    // wasi:filesystem and through std (wasi-libc).
    let (_store, mount) = sealed.mount("app");
    let out = run(
        "fs_p2",
        &["cat", "/state/out.txt"],
        vec![("/state".into(), mount.clone())],
    )
    .await;
    out.code(0);
    assert_eq!(out.stdout, "written by fs_p2\n", "{out}");
    let out = run(
        "fs_p2",
        &["write", "/state/sub/note.txt", "second run\n"],
        vec![("/state".into(), mount)],
    )
    .await;
    out.code(0);
    drop(_store);
    {
        let (_store, fs) = sealed.fs("app");
        assert_eq!(fs.read_file("sub/note.txt").unwrap(), b"second run\n");
    }
    // Another namespace of the same store sees none of it.
    let (_store, other) = sealed.mount("other");
    let out = run(
        "fs_p2",
        &["cat", "/state/out.txt"],
        vec![("/state".into(), other)],
    )
    .await;
    out.code(1);
}

/// `fs_p2 ro` on a mount holding `existing.txt` and `sub/`: every write
/// is `read-only`, reads work.
const RO_TRANSCRIPT: &str = r#"preopens: /data
preopen type: ok "directory"
open existing: ok
read existing: ok "existing\n"
existing flags: ok "read"
list: ok "existing.txt:regular-file sub:directory"
stat existing: ok ("regular-file", 9)
create: err read-only
create without write: err read-only
open existing for write: err read-only
truncate existing: err read-only
mkdir: err read-only
rmdir: err read-only
unlink: err read-only
rename: err read-only
hard link: err read-only
symlink: err read-only
set-times-at: err read-only
set-times on the dir: err read-only
set-times on the file: err read-only
write on the file: err bad-descriptor
set-size on the file: err invalid
read existing again: ok "existing\n"
done
"#;

#[tokio::test(flavor = "multi_thread")]
async fn read_only_and_virtual_mounts_refuse_every_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("existing.txt"), "existing\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let before = tree(dir.path());
    let mtime = std::fs::metadata(dir.path().join("existing.txt"))
        .unwrap()
        .modified()
        .unwrap();
    for (kind, mount) in [
        ("read-only host", host(dir.path(), true)),
        ("virtual", virtual_tree(dir.path())),
    ] {
        let out = run(
            "fs_p2",
            &["ro", "/data"],
            vec![("/data".into(), mount.clone())],
        )
        .await;
        out.code(0);
        println!("{kind}: fs_p2 ro");
        same_lines(&out, RO_TRANSCRIPT);
        let out = run("fs_ops", &["ro", "/data"], vec![("/data".into(), mount)]).await;
        out.code(0);
        println!("{kind}: fs_ops ro");
        same_lines(&out, &core_transcript("RUST_RO_TRANSCRIPT"));
    }
    assert_eq!(tree(dir.path()), before, "a read-only mount was changed");
    let after = std::fs::metadata(dir.path().join("existing.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(after, mtime);
}

/// `fs_p2 rights`: a directory opened with `read` only from a preopen.
const RIGHTS_HEAD: &str = r#"preopens: /data
mkdir r: ok
mkdir r/x: ok
create r/y.txt: ok
open r read: ok
"#;

/// By default it inherits `mutate-directory` (as in wasmtime-wasi, and as
/// preview-1 programs need), though its flags say what it was opened with.
const RIGHTS_INHERITED: &str = r#"r flags: ok "read"
r: open mutate: ok
r: open x: ok
r: x flags: ok "read"
r: open y.txt: ok
r: file set-times: ok
r: open for write: ok
r: truncate: ok
r: set-times: ok
r: set-times-at: ok
r: mkdir: ok
r: create: ok
r: rename: ok
r: rename into it: ok
r: hard link: ok
r: symlink: ok
r: list: ok "h.txt:regular-file l:symbolic-link n.txt:regular-file v.txt:regular-file x:directory z:directory"
r: unlink: ok
r: rmdir: ok
r: list after: ok "h.txt:regular-file l:symbolic-link v.txt:regular-file x:directory"
done
"#;

/// Strictly as the spec says: it may change nothing, nor hand out a
/// descriptor that could.
const RIGHTS_STRICT: &str = r#"r flags: ok "read"
r: open mutate: err read-only
r: open x: ok
r: x flags: ok "read"
r: open y.txt: ok
r: file set-times: err read-only
r: open for write: err read-only
r: truncate: err read-only
r: set-times: err read-only
r: set-times-at: err read-only
r: mkdir: err read-only
r: create: err read-only
r: rename: err read-only
r: rename into it: err read-only
r: hard link: err read-only
r: symlink: err read-only
r: list: ok "x:directory y.txt:regular-file"
r: unlink: err read-only
r: rmdir: err read-only
r: list after: ok "x:directory y.txt:regular-file"
done
"#;

#[tokio::test(flavor = "multi_thread")]
async fn mutate_directory_is_inherited_or_strict() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "fs_p2",
        &["rights", "/data"],
        vec![("/data".into(), host(dir.path(), false))],
    )
    .await;
    out.code(0);
    same_lines(&out, &format!("{RIGHTS_HEAD}{RIGHTS_INHERITED}"));

    let dir = tempfile::tempdir().unwrap();
    let mounts = vec![("/data".to_string(), host(dir.path(), false))];
    let out = run_strict("fs_p2", &["rights", "/data"], mounts).await;
    out.code(0);
    same_lines(&out, &format!("{RIGHTS_HEAD}{RIGHTS_STRICT}"));
    assert_eq!(tree(dir.path()), ["r/", "r/x/", "r/y.txt \"\""]);
}

#[tokio::test(flavor = "multi_thread")]
async fn std_fs_gives_the_core_module_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "fs_ops",
        &["rw", "/data"],
        vec![("/data".into(), host(dir.path(), false))],
    )
    .await;
    out.code(0);
    same_lines(&out, &core_transcript("RUST_RW_TRANSCRIPT"));
    assert_eq!(
        tree(dir.path()),
        [
            "work/",
            "work/b.txt \"hello!!!\"",
            "work/link -> b.txt",
            "work/out/",
            "work/out/result.txt \"written by guest\\n\"",
        ]
    );
}

/// A transcript that `crates/warden/tests/run_fs.rs` expects of a core
/// module: the same guest built as a component must print the same.
fn core_transcript(name: &str) -> String {
    let core = include_str!("../../warden/tests/run_fs.rs");
    let start = core
        .find(&format!("const {name}: &str = r#\""))
        .unwrap_or_else(|| panic!("no {name} in crates/warden/tests/run_fs.rs"));
    let body = &core[start..];
    let body = &body[body.find('"').unwrap() + 1..];
    body[..body.find("\"#;").unwrap()].to_string()
}

/// `fs_ops raw` as for core modules, where the preview-1 adapter (which
/// the wasm32-wasip2 linker puts between the raw calls and
/// wasi:filesystem) differs: it has no `fd_allocate` and no
/// `fd_fdstat_set_rights` (`ENOTSUP`), and answers `fd_read` on a
/// directory with `EBADF` itself.
fn raw_transcript() -> String {
    let body = core_transcript("RUST_RAW_TRANSCRIPT");
    let mut out = body;
    for (from, to) in [
        ("fd_allocate: ok ()\nsize after allocate: ok 16\n", "fd_allocate: err 58\nsize after allocate: ok 10\n"),
        ("read a dir: err 31\n", "read a dir: err 8\n"),
        (
            "drop FD_WRITE: ok ()\nhas FD_WRITE: false\nwrite after shrink: err 8\ngrow FD_WRITE back: err 76\nwrite after refused grow: err 8\n",
            "drop FD_WRITE: err 58\nhas FD_WRITE: true\nwrite after shrink: ok 1\ngrow FD_WRITE back: err 58\nwrite after refused grow: ok 1\n",
        ),
    ] {
        assert!(out.contains(from), "the core transcript changed: {from:?}");
        out = out.replace(from, to);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_preview1_calls_through_the_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "fs_ops",
        &["raw", "/data"],
        vec![("/data".into(), host(dir.path(), false))],
    )
    .await;
    out.code(0);
    same_lines(&out, &raw_transcript());
}

#[tokio::test(flavor = "multi_thread")]
async fn preopens_keep_their_order_and_names() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(b.path().join("x.txt"), "in b\n").unwrap();
    let mounts = vec![
        ("/a".to_string(), host(a.path(), false)),
        ("/b".to_string(), virtual_tree(b.path())),
        ("/c/d".to_string(), host(a.path(), true)),
    ];
    let out = run("fs_p2", &["cat", "/b/x.txt"], mounts).await;
    out.code(0);
    assert_eq!(out.stdout, "in b\n");
    let mounts = vec![
        ("/a".to_string(), host(a.path(), false)),
        ("/b".to_string(), virtual_tree(b.path())),
    ];
    let out = run("fs_p2", &["ro", "/b"], mounts).await;
    assert!(out.stdout.starts_with("preopens: /a /b\n"), "{out}");
}
