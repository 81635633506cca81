//! Escape attempts by components from each mount kind (host, read-only
//! host, virtual, sealed): `..` past the root, absolute paths, absolute
//! symlinks and symlinks to `/`, relative symlinks that climb out, loops.
//! Directly through wasi:filesystem 0.2 (`fs_p2 escape`) and through the
//! raw preview-1 calls of the `escape` guest, which the preview-1 adapter
//! turns into wasi:filesystem calls. A canary outside must be neither read
//! nor changed, and nothing may appear next to it.

mod support;

use std::path::{Path, PathBuf};
use support::*;

const CANARY: &str = "canary: must not be read\n";

/// `outside/canary.txt` and `outside/sandbox/` with the escape symlinks.
struct Layout {
    _root: tempfile::TempDir,
    outside: PathBuf,
    sandbox: PathBuf,
    canary: PathBuf,
}

fn layout() -> Layout {
    let root = tempfile::tempdir().unwrap();
    let outside = root.path().join("outside");
    let sandbox = outside.join("sandbox");
    std::fs::create_dir_all(sandbox.join("sub")).unwrap();
    let canary = outside.join("canary.txt");
    std::fs::write(&canary, CANARY).unwrap();
    std::fs::write(sandbox.join("inside.txt"), "inside\n").unwrap();
    let link =
        |target: &Path, name: &str| std::os::unix::fs::symlink(target, sandbox.join(name)).unwrap();
    link(&outside, "abs_link");
    link(Path::new("/"), "root_link");
    link(Path::new(".."), "up_link");
    link(Path::new("../canary.txt"), "canary_link");
    link(Path::new("loop_b"), "loop_a");
    link(Path::new("loop_a"), "loop_b");
    link(Path::new("self_loop"), "self_loop");
    Layout {
        _root: root,
        outside,
        sandbox,
        canary,
    }
}

/// The outside: every entry except the sandbox's, with contents, and the
/// canary's mtime.
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

const NP: &[&str] = &["err not-permitted"];
/// A write that would land outside: refused as an escape, or, on a
/// read-only mount, as a write before the path is resolved.
const NP_OR_RO: &[&str] = &["err not-permitted", "err read-only"];

fn p2_expected(links: bool) -> Vec<Expect> {
    let mut e: Vec<Expect> = vec![
        ("inside", &["ok \"inside\\n\""]),
        ("sub/../inside", &["ok \"inside\\n\""]),
        ("dot", &["ok \"directory\""]),
        ("dotdot", NP),
        ("dotdot file", NP),
        ("sub/../../canary", NP),
        ("deep dotdot", NP),
        ("absolute", NP),
        ("absolute /", NP),
        ("stat ..", NP),
        ("stat ../canary.txt", NP),
        ("metadata-hash-at ..", NP),
        ("create ../evil.txt", NP_OR_RO),
        ("mkdir ../evil_dir", NP_OR_RO),
        ("rename inside -> ../stolen.txt", NP_OR_RO),
        ("rename ../canary.txt -> stolen.txt", NP_OR_RO),
        ("link ../canary.txt -> hard.txt", NP_OR_RO),
        ("unlink ../canary.txt", NP_OR_RO),
        // The sealed store refuses to remove `..` as POSIX rmdir(2) does.
        (
            "rmdir ..",
            &["err not-permitted", "err read-only", "err invalid"],
        ),
        ("set-times-at ../canary.txt", NP_OR_RO),
        ("readlink ../x", NP),
        ("symlink to /", NP_OR_RO),
        // Refused when made (sealed: no links; read-only) or when followed.
        (
            "made_link",
            &[
                "err not-permitted",
                "refused not-permitted",
                "refused read-only",
            ],
        ),
    ];
    if links {
        e.extend_from_slice(&[
            ("abs_link", NP),
            ("root_link", NP),
            ("up_link", NP),
            ("canary_link", NP),
            ("loop_a", &["err loop"]),
            ("stat abs_link", &["ok \"symbolic-link\""]),
            ("stat abs_link follow", NP),
            // 0.2: an absolute target is not handed out.
            ("readlink abs_link", NP),
            ("readlink up_link", &["ok \"..\""]),
            ("create through canary_link", NP_OR_RO),
            ("mkdir through up_link", NP_OR_RO),
        ]);
    }
    e
}

/// Through the preview-1 adapter: `not-permitted` is `EPERM` (63), as the
/// adapter maps it (a core module on warden's kernel gets `ENOTCAPABLE`).
const PERM: &[&str] = &["err 63"];
const PERM_OR_ROFS: &[&str] = &["err 63", "err 69"];

fn adapter_expected(links: bool) -> Vec<Expect> {
    let mut e: Vec<Expect> = vec![
        ("inside", &["ok \"inside\\n\""]),
        ("sub/../inside", &["ok \"inside\\n\""]),
        ("./inside", &["ok \"inside\\n\""]),
        ("dot dir", &["ok dir"]),
        ("dotdot file", PERM),
        ("dotdot dir", PERM),
        ("sub/../../canary", PERM),
        ("deep dotdot", PERM),
        ("absolute canary", PERM),
        ("absolute /etc/passwd", PERM),
        ("absolute /", PERM),
    ];
    if links {
        e.extend_from_slice(&[
            ("abs_link", PERM),
            ("root_link", PERM),
            ("up_link", PERM),
            ("canary_link", PERM),
            ("loop_a", &["err 32"]),
            ("self_loop", &["err 32"]),
            ("loop in the middle", &["err 32"]),
            ("stat abs_link nofollow", &["ok symlink"]),
            ("stat abs_link follow", PERM),
            ("stat canary_link follow", PERM),
            ("readlink abs_link", PERM),
            ("create through canary_link", PERM_OR_ROFS),
            ("write through abs_link", PERM_OR_ROFS),
            ("mkdir through up_link", PERM_OR_ROFS),
        ]);
    }
    e.extend_from_slice(&[
        ("create ../evil.txt", PERM_OR_ROFS),
        ("mkdir ../evil_dir", PERM_OR_ROFS),
        ("rename inside -> ../stolen.txt", PERM_OR_ROFS),
        ("rename ../canary.txt -> stolen.txt", PERM_OR_ROFS),
        ("link ../canary.txt -> hard.txt", PERM_OR_ROFS),
        ("unlink ../canary.txt", PERM_OR_ROFS),
        ("rmdir ..", &["err 63", "err 69", "err 28"]),
        ("stat ../canary.txt", PERM),
        ("set times ../canary.txt", PERM_OR_ROFS),
        ("readlink ../x", PERM),
        ("made_link", &["err 63", "refused 63", "refused 69"]),
        ("made_abs_link", &["err 63", "refused 63", "refused 69"]),
        ("std read DIR/../canary.txt", PERM),
        // wasi-libc finds no preopen for the host path (ENOENT).
        ("std read canary by host path", &["err 44", "err 63"]),
        ("std write DIR/../evil2.txt", PERM_OR_ROFS),
    ]);
    e
}

fn check_lines(out: &Run, expected: &[Expect], first: usize) {
    let lines: Vec<&str> = out.stdout.lines().skip(first).collect();
    assert_eq!(lines.len(), expected.len() + 1, "{out}");
    for (line, (label, values)) in lines.iter().zip(expected) {
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
}

/// The mount kinds, built over the sandbox: host (read-write and
/// read-only) and virtual keep the symlinks; a sealed mount has none (its
/// files are made in the store: `inside.txt` and `sub/`).
async fn each_mount(l: &Layout, check: impl AsyncCheck) {
    check.run("host", host(&l.sandbox, false), true).await;
    check
        .run("read-only host", host(&l.sandbox, true), true)
        .await;
    check.run("virtual", virtual_tree(&l.sandbox), true).await;
    let store_dir = tempfile::tempdir().unwrap();
    let sealed = Sealed::new(store_dir.path());
    {
        let (_store, fs) = sealed.fs("escape");
        fs.write_file("inside.txt", b"inside\n").unwrap();
        fs.mkdir("sub").unwrap();
    }
    let (_store, mount) = sealed.mount("escape");
    check.run("sealed", mount, false).await;
}

trait AsyncCheck {
    async fn run(
        &self,
        kind: &str,
        mount: std::sync::Arc<dyn warden_kernel::vfs::Node>,
        links: bool,
    );
}

struct P2;

impl AsyncCheck for P2 {
    async fn run(
        &self,
        kind: &str,
        mount: std::sync::Arc<dyn warden_kernel::vfs::Node>,
        links: bool,
    ) {
        let mut args = vec!["escape", "/sandbox"];
        if links {
            args.push("links");
        }
        let out = run("fs_p2", &args, vec![("/sandbox".into(), mount)]).await;
        println!("{kind}\n{out}");
        out.code(0);
        check_lines(&out, &p2_expected(links), 1);
    }
}

struct Adapter<'a>(&'a Path);

impl AsyncCheck for Adapter<'_> {
    async fn run(
        &self,
        kind: &str,
        mount: std::sync::Arc<dyn warden_kernel::vfs::Node>,
        links: bool,
    ) {
        let canary = self.0.to_str().unwrap();
        let mut args = vec!["/sandbox", canary];
        if !links {
            args.push("nolinks");
        }
        let out = run("escape", &args, vec![("/sandbox".into(), mount)]).await;
        println!("{kind}\n{out}");
        out.code(0);
        check_lines(&out, &adapter_expected(links), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_mount_kind_can_be_escaped_through_wasi_filesystem() {
    let l = layout();
    let before = outside_state(&l);
    each_mount(&l, P2).await;
    assert_eq!(
        outside_state(&l),
        before,
        "the outside of the mount changed"
    );
    assert_eq!(std::fs::read_to_string(&l.canary).unwrap(), CANARY);
    assert!(!l.outside.join("evil.txt").exists());
    assert!(!l.outside.join("evil_dir").exists());
    assert!(l.sandbox.join("inside.txt").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn no_mount_kind_can_be_escaped_through_the_preview1_adapter() {
    let l = layout();
    let before = outside_state(&l);
    each_mount(&l, Adapter(&l.canary)).await;
    assert_eq!(
        outside_state(&l),
        before,
        "the outside of the mount changed"
    );
    assert_eq!(std::fs::read_to_string(&l.canary).unwrap(), CANARY);
    assert!(l.sandbox.join("inside.txt").exists());
}
