//! Escape attempts from host mounts, read-only mounts and virtual mounts:
//! `..` past the root, absolute paths, absolute symlinks, symlinks to `/`,
//! relative symlinks that climb out, and symlink loops. A canary file
//! outside the mount must be neither read nor changed, and nothing may
//! appear next to it.

mod support;

use std::path::{Path, PathBuf};
use support::*;

/// `outside/canary.txt` and `outside/sandbox/` with the escape symlinks.
struct Layout {
    _root: tempfile::TempDir,
    outside: PathBuf,
    sandbox: PathBuf,
    canary: PathBuf,
}

const CANARY: &str = "canary: must not be read\n";

fn layout(links: bool) -> Layout {
    let root = tempdir();
    let outside = root.path().join("outside");
    let sandbox = outside.join("sandbox");
    std::fs::create_dir_all(sandbox.join("sub")).unwrap();
    let canary = write(&outside, "canary.txt", CANARY);
    write(&sandbox, "inside.txt", "inside\n");
    if links {
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, sandbox.join(name)).unwrap()
        };
        link(&outside, "abs_link");
        link(Path::new("/"), "root_link");
        link(Path::new(".."), "up_link");
        link(Path::new("../canary.txt"), "canary_link");
        link(Path::new("loop_b"), "loop_a");
        link(Path::new("loop_a"), "loop_b");
        link(Path::new("self_loop"), "self_loop");
    }
    Layout {
        _root: root,
        outside,
        sandbox,
        canary,
    }
}

/// What the outside looks like: every entry except the sandbox's, with
/// contents, plus the canary's mtime.
fn outside_state(l: &Layout) -> (Vec<String>, std::time::SystemTime) {
    let listing = tree(&l.outside)
        .into_iter()
        .filter(|e| !e.starts_with("sandbox/"))
        .collect();
    let mtime = std::fs::metadata(&l.canary).unwrap().modified().unwrap();
    (listing, mtime)
}

/// One expected line: `label: ` and the values accepted after it.
type Expect = (&'static str, &'static [&'static str]);

const INSIDE: &[Expect] = &[
    ("inside", &["ok \"inside\\n\""]),
    ("sub/../inside", &["ok \"inside\\n\""]),
    ("./inside", &["ok \"inside\\n\""]),
    ("dot dir", &["ok dir"]),
];

const DOTDOT: &[Expect] = &[
    ("dotdot file", &["err 76"]),
    ("dotdot dir", &["err 76"]),
    ("sub/../../canary", &["err 76"]),
    ("deep dotdot", &["err 76"]),
    ("absolute canary", &["err 76"]),
    ("absolute /etc/passwd", &["err 76"]),
    ("absolute /", &["err 76"]),
];

const LINKS: &[Expect] = &[
    ("abs_link", &["err 76"]),
    ("root_link", &["err 76"]),
    ("up_link", &["err 76"]),
    ("canary_link", &["err 76"]),
    ("loop_a", &["err 32"]),
    ("self_loop", &["err 32"]),
    ("loop in the middle", &["err 32"]),
    ("stat abs_link nofollow", &["ok symlink"]),
    ("stat abs_link follow", &["err 76"]),
    ("stat canary_link follow", &["err 76"]),
    ("readlink abs_link", &["ok"]),
];

/// On a writable mount, a write that would land outside is ENOTCAPABLE.
const RW: &[&str] = &["err 76"];
/// On a read-only mount it may be refused as a write (EROFS) before the
/// path is resolved: both keep the outside untouched.
const RO: &[&str] = &["err 76", "err 69"];

fn link_writes(w: &'static [&'static str]) -> Vec<Expect> {
    vec![
        ("create through canary_link", w),
        ("write through abs_link", w),
        ("mkdir through up_link", w),
    ]
}

fn writes(w: &'static [&'static str]) -> Vec<Expect> {
    vec![
        ("create ../evil.txt", w),
        ("mkdir ../evil_dir", w),
        ("rename inside -> ../stolen.txt", w),
        ("rename ../canary.txt -> stolen.txt", w),
        ("link ../canary.txt -> hard.txt", w),
        ("unlink ../canary.txt", w),
        ("rmdir ..", w),
        ("stat ../canary.txt", &["err 76"]),
        ("set times ../canary.txt", w),
        ("readlink ../x", &["err 76"]),
        // A symlink the guest makes that points outside is refused when
        // made or when followed.
        (
            "made_link",
            &["err 76", "refused 76", "refused 63", "refused 69"],
        ),
        (
            "made_abs_link",
            &["err 76", "refused 76", "refused 63", "refused 69"],
        ),
        ("std read DIR/../canary.txt", &["err 76"]),
        // wasi-libc finds no preopen for the host path and fails by itself
        // (ENOENT in current wasi-libc).
        ("std read canary by host path", &["err 44", "err 76"]),
        ("std write DIR/../evil2.txt", w),
    ]
}

/// Runs the escape guest on the sandbox mounted with `mount` and checks
/// every attempt and the outside.
fn check_escapes(l: &Layout, mount: &[&str], links: bool, w: &'static [&'static str]) {
    let before = outside_state(l);
    let mut args: Vec<&str> = mount.to_vec();
    let guest = rust_guest("escape");
    args.extend([s(&guest), "/sandbox", s(&l.canary)]);
    if !links {
        args.push("nolinks");
    }
    let out = run(warden_run(&args));
    out.code(0).quiet();

    let mut expected: Vec<Expect> = INSIDE.to_vec();
    expected.extend_from_slice(DOTDOT);
    if links {
        expected.extend_from_slice(LINKS);
        expected.extend(link_writes(w));
    }
    expected.extend(writes(w));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), expected.len() + 1, "{out}");
    for (line, (label, values)) in lines.iter().zip(&expected) {
        let value = line
            .strip_prefix(&format!("{label}: "))
            .unwrap_or_else(|| panic!("expected `{label}: ...`, got {line:?}\n{out}"));
        assert!(
            values.contains(&value),
            "{label}: got {value:?}, expected one of {values:?}\n{out}"
        );
    }
    assert_eq!(lines.last(), Some(&"done"), "{out}");
    assert!(!out.stdout.contains("canary: must not be read"), "{out}");
    assert!(!out.stdout.contains("root:"), "/etc/passwd was read\n{out}");

    assert_eq!(outside_state(l), before, "the outside of the mount changed");
    assert_eq!(std::fs::read_to_string(&l.canary).unwrap(), CANARY);
}

#[test]
fn host_mount_cannot_be_escaped() {
    let l = layout(true);
    check_escapes(
        &l,
        &["--dir", &format!("{}::/sandbox", s(&l.sandbox))],
        true,
        RW,
    );
    // Inside, only what the guest may make: no file reached the outside.
    assert!(!l.outside.join("evil.txt").exists());
    assert!(!l.outside.join("new.txt").exists());
    assert!(!l.outside.join("evil_dir").exists());
    assert!(l.sandbox.join("inside.txt").exists());
}

#[test]
fn read_only_host_mount_cannot_be_escaped() {
    let l = layout(true);
    check_escapes(
        &l,
        &["--dir-ro", &format!("{}::/sandbox", s(&l.sandbox))],
        true,
        RO,
    );
}

#[test]
fn virtual_mount_cannot_be_escaped() {
    let l = layout(true);
    check_escapes(
        &l,
        &["--mount", &format!("/sandbox={}", s(&l.sandbox))],
        true,
        RO,
    );
}

#[test]
fn virtual_mount_of_a_plain_tree_cannot_be_escaped() {
    let l = layout(false);
    check_escapes(
        &l,
        &["--mount", &format!("/sandbox={}", s(&l.sandbox))],
        false,
        RO,
    );
}

#[test]
fn a_symlink_made_by_the_guest_cannot_lead_out() {
    // Whatever the guest makes inside the mount, a later run that follows
    // it stays inside.
    let l = layout(false);
    let mount = format!("{}::/sandbox", s(&l.sandbox));
    let fs_ops = rust_guest("fs_ops");
    let escape = rust_guest("escape");
    let before = outside_state(&l);
    // The first run may or may not be allowed to create the links.
    let _ = run(warden_run([
        "--dir",
        &mount,
        s(&escape),
        "/sandbox",
        s(&l.canary),
        "nolinks",
    ]));
    for link in ["made_link", "made_abs_link"] {
        if std::fs::symlink_metadata(l.sandbox.join(link)).is_ok() {
            let out = run(warden_run([
                "--dir",
                &mount,
                s(&fs_ops),
                "cat",
                &format!("/sandbox/{link}"),
            ]));
            out.code(1).stdout_is("cat: err 76\n");
        }
    }
    assert_eq!(outside_state(&l), before);
}

#[test]
fn two_mounts_do_not_reach_each_other_through_dotdot() {
    let root = tempdir();
    write(root.path(), "a/secret.txt", "secret of a\n");
    write(root.path(), "b/file.txt", "b\n");
    let out = run(warden_run([
        "--dir",
        &format!("{}::/a", s(&root.path().join("a"))),
        "--dir",
        &format!("{}::/b", s(&root.path().join("b"))),
        s(&rust_guest("fs_ops")),
        "cat",
        "/b/../a/secret.txt",
    ]));
    // wasi-libc resolves `/b/../a/...` against the /b preopen: warden sees
    // `../a/secret.txt` relative to /b and refuses it.
    out.code(1).stdout_is("cat: err 76\n").quiet();
}

#[test]
fn a_mount_on_the_guest_root_is_not_the_host_root() {
    let l = layout(false);
    let fs_ops = rust_guest("fs_ops");
    let root_mount = format!("{}::/", s(&l.sandbox));
    let cat = |path: &str| run(warden_run(["--dir", &root_mount, s(&fs_ops), "cat", path]));
    cat("/inside.txt").code(0).stdout_is("inside\n").quiet();
    // The guest's /etc/passwd is inside the mount, where there is none.
    cat("/etc/passwd")
        .code(1)
        .stdout_is("cat: err 44\n")
        .quiet();
    cat("/../canary.txt")
        .code(1)
        .stdout_is("cat: err 76\n")
        .quiet();
    cat(s(&l.canary)).code(1).stdout_is("cat: err 44\n").quiet();
    let out = run(warden_run([
        "--mount",
        &format!("/={}", s(&l.sandbox)),
        s(&fs_ops),
        "cat",
        "/etc/passwd",
    ]));
    out.code(1).stdout_is("cat: err 44\n").quiet();
}

/// Attempts whose success would be no escape: they look at a link itself.
const HARMLESS: &[&str] = &["stat abs_link nofollow", "readlink abs_link"];

/// The escape guest as a component (its `wasi:filesystem` calls served by
/// warden's VFS through the preview-1 adapter): what is inside reads as
/// for a module, every attempt to get out fails (the WASI 0.2 error codes
/// map to other preview-1 numbers than the kernel's, so only failure is
/// asserted), and the outside is untouched.
fn check_component_escapes(l: &Layout, mount: &[&str], links: bool) {
    let before = outside_state(l);
    let mut args: Vec<&str> = mount.to_vec();
    let guest = rust_component("escape");
    args.extend([s(&guest), "/sandbox", s(&l.canary)]);
    if !links {
        args.push("nolinks");
    }
    let out = run(warden_run(&args));
    out.code(0).quiet();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"done"), "{out}");
    for (line, (label, values)) in lines.iter().zip(INSIDE) {
        assert_eq!(*line, format!("{label}: {}", values[0]), "{out}");
    }
    for line in &lines[INSIDE.len()..lines.len() - 1] {
        let (label, value) = line.split_once(": ").unwrap_or((line, ""));
        if !HARMLESS.contains(&label) {
            assert!(
                value.starts_with("err") || value.starts_with("refused"),
                "{label} got out: {value}\n{out}"
            );
        }
    }
    assert!(!out.stdout.contains("canary: must not be read"), "{out}");
    assert!(!out.stdout.contains("root:"), "/etc/passwd was read\n{out}");
    assert_eq!(outside_state(l), before, "the outside of the mount changed");
    assert_eq!(std::fs::read_to_string(&l.canary).unwrap(), CANARY);
}

#[test]
fn no_mount_of_a_component_can_be_escaped() {
    let l = layout(true);
    let host = format!("{}::/sandbox", s(&l.sandbox));
    check_component_escapes(&l, &["--dir", &host], true);
    check_component_escapes(&l, &["--dir-ro", &host], true);
    let virt = format!("/sandbox={}", s(&l.sandbox));
    check_component_escapes(&l, &["--mount", &virt], true);
    let plain = layout(false);
    let virt = format!("/sandbox={}", s(&plain.sandbox));
    check_component_escapes(&plain, &["--mount", &virt], false);
    assert!(!l.outside.join("evil.txt").exists());
    assert!(!l.outside.join("evil_dir").exists());
}

/// The official suite's WASI 0.3 filesystem tests that try to get out of
/// their root (`..` from the root and from a subdirectory, absolute
/// paths, a symlink to `..` they make) and check that each attempt fails
/// with `not-permitted`: they exit 0 only if every attempt failed so.
const P3_ESCAPES: &[&str] = &[
    "dotdot",
    "stat",
    "open-errors",
    "mkdir-rmdir",
    "unlink-errors",
    "rename",
    "hard-links",
];

fn p3_escape_test(name: &str) -> PathBuf {
    support::wasi_suite::suite_root().join(format!(
        "rust/testsuite/wasm32-wasip3/filesystem-{name}.wasm"
    ))
}

/// Runs the escape tests of `tests` on the sandbox (which holds the suite's
/// `a.txt` and `b.txt`) mounted with `mount`; the outside stays as it was.
fn check_p3_escapes(l: &Layout, mount: &[&str], tests: &[&str]) {
    let before = outside_state(l);
    for test in tests {
        let mut args: Vec<&str> = mount.to_vec();
        let path = p3_escape_test(test);
        args.push(s(&path));
        run(warden_run(&args)).code(0).quiet();
        // What a test leaves inside (`*.cleanup`) is removed after it, as
        // the upstream runner does.
        for entry in std::fs::read_dir(&l.sandbox).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with(".cleanup") {
                std::fs::remove_dir_all(&path)
                    .or_else(|_| std::fs::remove_file(&path))
                    .unwrap();
            }
        }
    }
    assert_eq!(outside_state(l), before, "the outside of the mount changed");
    assert_eq!(std::fs::read_to_string(&l.canary).unwrap(), CANARY);
}

#[test]
fn no_mount_of_a_wasi_0_3_component_can_be_escaped() {
    let l = layout(false);
    write(&l.sandbox, "a.txt", "test-a\n");
    write(&l.sandbox, "b.txt", "test-b\n");
    std::fs::remove_dir(l.sandbox.join("sub")).unwrap();
    std::fs::remove_file(l.sandbox.join("inside.txt")).unwrap();
    let host = format!("{}::/", s(&l.sandbox));
    check_p3_escapes(&l, &["--dir", &host], P3_ESCAPES);
    // A virtual mount: the tests that make nothing.
    let virt = format!("/={}", s(&l.sandbox));
    check_p3_escapes(&l, &["--mount", &virt], &["open-errors"]);
    // A sealed mount, whose root is the namespace's: a second namespace
    // beside it is not reached. (Sealed mounts have no links: the tests
    // that make them are left out.)
    let dir = tempdir();
    let with_store = |args: &[&str]| run_sealed(dir.path(), args);
    let fs_ops = rust_guest("fs_ops");
    for (mount, file, text) in [
        ("/s=app", "/s/a.txt", "test-a\n"),
        ("/s=app", "/s/b.txt", "test-b\n"),
        ("/s=other", "/s/secret.txt", "other\n"),
    ] {
        with_store(&["--sealed", mount, s(&fs_ops), "write", file, text]).code(0);
    }
    // (`mkdir-rmdir` last: it leaves a directory behind.)
    for test in [
        "dotdot",
        "stat",
        "open-errors",
        "unlink-errors",
        "mkdir-rmdir",
    ] {
        let path = p3_escape_test(test);
        with_store(&["--sealed", "/=app", s(&path)]).code(0).quiet();
    }
    with_store(&["--sealed", "/s=other", s(&fs_ops), "tree", "/s"])
        .code(0)
        .stdout_is("secret.txt file 6 \"other\\n\"\n");
}
