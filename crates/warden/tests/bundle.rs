//! `warden bundle` and `warden run` of a bundle: the same inputs give the
//! same bytes, a bundled mount comes from the bundle and not the host, a
//! changed byte is refused before anything runs, `--expect-digest`, and
//! flags that narrow the bundle's policy against flags that would widen it.

mod support;

use std::path::{Path, PathBuf};
use support::*;

/// Bundles with `args`, checks that warden printed the file's digest, and
/// returns the bundle's bytes.
#[track_caller]
fn bundle(args: &[&str], out: &Path) -> Vec<u8> {
    // `-o` first: what follows `--` is the guest's.
    let mut all: Vec<&str> = vec!["-o", s(out)];
    all.extend(args);
    let o = run(warden_cmd("bundle", &all));
    o.code(0).quiet();
    let bytes = std::fs::read(out).unwrap();
    assert_eq!(o.stdout, format!("{}\n", sha256_text(&bytes)), "{o}");
    bytes
}

/// A directory tree with a file, a nested file and a symlink.
fn conf_tree(root: &Path) -> PathBuf {
    let conf = root.join("conf");
    write(&conf, "app.toml", "name = \"demo\"\n");
    write(&conf, "sub/inner.txt", "inner contents\n");
    std::os::unix::fs::symlink("app.toml", conf.join("link")).unwrap();
    conf
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let dir = tempdir();
    let root = dir.path();
    let module = wat(root, "say.wat", &say("hello"));
    let conf = conf_tree(root);
    std::fs::create_dir(root.join("data")).unwrap();
    let data = root.join("data");
    let mount = format!("/etc/app={}", s(&conf));
    let dir_ro = format!("{}::/data", s(&data));
    let flags = [
        "--mount",
        &mount,
        "--dir-ro",
        &dir_ro,
        "--env",
        "B=2",
        "--env",
        "A=1",
        "--allow-net",
        "127.0.0.1:80",
        "--allow-net",
        "10.0.0.0/8",
        "--deny",
        "clocks",
        "--allow",
        "process",
        "--fuel",
        "1000000",
        "--max-memory",
        "64MiB",
        s(&module),
        "--",
        "one",
        "two",
    ];
    let first = bundle(&flags, &root.join("a.warden"));
    // Built again, after the files were written anew (new times): the same.
    std::fs::write(conf.join("app.toml"), "name = \"demo\"\n").unwrap();
    let again = bundle(&flags, &root.join("b.warden"));
    assert_eq!(first, again);
    // The flags in another order, sizes spelt another way.
    let reordered = bundle(
        &[
            "--max-memory",
            "67108864",
            "--allow",
            "process",
            "--allow-net",
            "10.0.0.0/8",
            "--env",
            "A=1",
            "--fuel",
            "1000000",
            "--deny",
            "clocks",
            "--dir",
            &format!("{}/::/data:ro", s(&data)),
            "--allow-net",
            "127.0.0.1:80",
            "--env",
            "B=2",
            "--mount",
            &format!("/etc/app={}", s(&conf)),
            s(&module),
            "--",
            "one",
            "two",
        ],
        &root.join("c.warden"),
    );
    assert_eq!(first, reordered);
    // The same policy from two configs whose keys and tables are in
    // another order, relative paths against the config's directory.
    let config_a = write(
        root,
        "Warden-a.toml",
        r#"args = ["one", "two"]
[env]
B = "2"
A = "1"
[[mount]]
guest = "/etc/app"
virtual = "conf"
[[mount]]
guest = "/data"
host = "data"
read_only = true
[allow]
clocks = false
process = true
net = ["127.0.0.1:80", "10.0.0.0/8"]
[limits]
fuel = 1000000
max_memory = "64MiB"
"#,
    );
    let config_b = write(
        root,
        "Warden-b.toml",
        r#"[limits]
max_memory = 67108864
fuel = 1000000
[allow]
net = ["10.0.0.0/8", "127.0.0.1:80"]
process = true
clocks = false
[[mount]]
read_only = true
host = "./data/"
guest = "/data"
[[mount]]
virtual = "conf"
guest = "/etc/app"
[env]
A = "1"
B = "2"
"#,
    );
    let from_a = bundle(
        &["--config", s(&config_a), s(&module)],
        &root.join("d.warden"),
    );
    let from_b = bundle(
        &["--config", s(&config_b), s(&module), "--", "one", "two"],
        &root.join("e.warden"),
    );
    assert_eq!(from_a, from_b);
    assert_eq!(from_a, first);
    // Another module: other bytes.
    let other = wat(root, "other.wat", &say("other"));
    let different = bundle(&[s(&other)], &root.join("f.warden"));
    assert_ne!(different, bundle(&[s(&module)], &root.join("g.warden")));
}

#[test]
fn a_bundled_mount_is_read_from_the_bundle() {
    let dir = tempdir();
    let root = dir.path();
    let conf = conf_tree(root);
    let fs_ops = rust_guest("fs_ops");
    let mount = format!("/etc/app={}", s(&conf));
    // What the guest sees of the host tree as a virtual mount...
    let live = run(warden_run([
        "--mount",
        &mount,
        s(&fs_ops),
        "tree",
        "/etc/app",
    ]));
    live.code(0);
    assert!(live.stdout.contains("inner contents"), "{live}");
    let app = root.join("app.warden");
    bundle(
        &["--mount", &mount, s(&fs_ops), "--", "tree", "/etc/app"],
        &app,
    );
    // ...is what it sees from the bundle once the host tree is gone.
    std::fs::remove_dir_all(&conf).unwrap();
    let out = run(warden_run([s(&app)]));
    out.code(0).stdout_is(&live.stdout).quiet();
    // Bundled files are read-only, as a virtual mount's.
    let write = {
        let app = root.join("write.warden");
        let conf = conf_tree(root);
        bundle(
            &[
                "--mount",
                &format!("/etc/app={}", s(&conf)),
                s(&fs_ops),
                "--",
                "write",
                "/etc/app/app.toml",
                "x",
            ],
            &app,
        );
        run(warden_run([s(&app)]))
    };
    write.code(1).stdout_is("write: err 69\n");
}

/// A module that prints `ran tamper-canary`, bundled with a mount holding
/// `secret-contents`: the bundle's bytes and the bundle's path.
fn canary_bundle(root: &Path) -> (Vec<u8>, PathBuf) {
    let module = wat(root, "canary.wat", &say("ran tamper-canary"));
    write(root, "files/data.txt", "secret-contents");
    let app = root.join("app.warden");
    let bytes = bundle(
        &[
            "--mount",
            &format!("/files={}", s(&root.join("files"))),
            s(&module),
        ],
        &app,
    );
    (bytes, app)
}

fn offset_of(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not in the bundle", String::from_utf8_lossy(needle)))
}

#[test]
fn a_changed_or_truncated_bundle_is_refused_before_anything_runs() {
    let dir = tempdir();
    let (good, app) = canary_bundle(dir.path());
    run(warden_run([s(&app)]))
        .code(0)
        .stdout_is("ran tamper-canary\n");
    let flip = |at: usize| {
        let mut bad = good.clone();
        bad[at] ^= 0x20;
        bad
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a byte of the code",
            flip(offset_of(&good, b"tamper-canary")),
            "bundle is corrupted (digest mismatch)",
        ),
        (
            "a byte of the policy",
            flip(offset_of(&good, b"\"process\":false") + 11),
            "bundle is corrupted (digest mismatch)",
        ),
        (
            "a byte of a mount's file",
            flip(offset_of(&good, b"secret-contents")),
            "bundle is corrupted (digest mismatch)",
        ),
        (
            "a byte of the end digest",
            flip(good.len() - 1),
            "bundle is corrupted (digest mismatch)",
        ),
        (
            "the last byte cut off",
            good[..good.len() - 1].to_vec(),
            "bundle is truncated or corrupted",
        ),
        (
            "half of it cut off",
            good[..good.len() / 2].to_vec(),
            "bundle is truncated or corrupted",
        ),
        (
            "a byte added",
            [&good[..], b"\0"].concat(),
            "bundle is truncated or corrupted",
        ),
    ];
    for (what, bytes, expected) in cases {
        std::fs::write(&app, &bytes).unwrap();
        let out = run(warden_run([s(&app)]));
        let line = out.bad_input();
        assert!(
            line.starts_with(&format!("warden: error: {}: {expected}", s(&app))),
            "{what}\n{out}"
        );
        let out = run(warden().arg("inspect").arg(&app));
        assert!(out.bad_input().contains(expected), "{what}\n{out}");
    }
}

#[test]
fn expect_digest_runs_only_the_expected_file() {
    let dir = tempdir();
    let (good, app) = canary_bundle(dir.path());
    let digest = sha256_text(&good);
    run(warden_run(["--expect-digest", &digest, s(&app)]))
        .code(0)
        .stdout_is("ran tamper-canary\n");
    // Upper-case hex is the same digest.
    let upper = format!("sha256:{}", digest["sha256:".len()..].to_uppercase());
    run(warden_run(["--expect-digest", &upper, s(&app)])).code(0);
    let other = sha256_text(b"something else");
    let line = run(warden_run(["--expect-digest", &other, s(&app)])).bad_input();
    assert_eq!(
        line,
        format!(
            "warden: error: {}: digest is {digest}, not the expected {other}",
            s(&app)
        )
    );
    let line = run(warden_run(["--expect-digest", "md5:1234", s(&app)])).bad_input();
    assert!(
        line.contains("invalid --expect-digest `md5:1234`"),
        "{line}"
    );
    // A plain module is checked the same way, by the SHA-256 of its file.
    let module = dir.path().join("canary.wat");
    let module_digest = sha256_text(&std::fs::read(&module).unwrap());
    run(warden_run(["--expect-digest", &module_digest, s(&module)]))
        .code(0)
        .stdout_is("ran tamper-canary\n");
    run(warden_run(["--expect-digest", &other, s(&module)])).bad_input();
}

/// A bundle of `say("bundled guest ran")` with a host mount, fuel, a
/// memory limit, `process` denied and stdout allowed.
fn policy_bundle(root: &Path) -> PathBuf {
    let module = wat(root, "guest.wat", &say("bundled guest ran"));
    std::fs::create_dir(root.join("data")).unwrap();
    let app = root.join("app.warden");
    bundle(
        &[
            "--dir",
            &format!("{}::/data", s(&root.join("data"))),
            "--env",
            "MODE=prod",
            "--allow-net",
            "10.0.0.0/8",
            "--fuel",
            "1000000",
            "--max-memory",
            "1MiB",
            s(&module),
        ],
        &app,
    );
    app
}

#[test]
fn flags_that_narrow_the_bundle_are_accepted() {
    let dir = tempdir();
    let root = dir.path();
    let app = policy_bundle(root);
    let data = format!("{}::/data", s(&root.join("data")));
    for flags in [
        vec![],
        vec!["--deny", "clocks"],
        vec!["--deny", "clocks", "--deny", "env"],
        vec!["--max-memory", "512KiB"],
        vec!["--fuel", "500000"],
        vec!["--timeout", "30s"],
        vec!["--stdin", "deny"],
        vec!["--allow", "clocks"],
        vec!["--allow-net", "10.1.0.0/16:80"],
        vec!["--env", "MODE=prod"],
        vec!["--dir-ro", &data],
        vec!["--dir", &data],
        vec!["--stdout", "allow"],
    ] {
        let mut args = flags.clone();
        args.push(s(&app));
        run(warden_run(&args))
            .code(0)
            .stdout_is("bundled guest ran\n")
            .quiet();
    }
    // A narrowed stream is narrowed.
    run(warden_run(["--stdout", "ignore", s(&app)]))
        .code(0)
        .stdout_is("")
        .quiet();
    // So is a limit: a module whose memory starts at 2 pages (128 KiB)
    // does not fit in 64 KiB.
    let big = wat(
        root,
        "big.wat",
        r#"(module (memory (export "memory") 2) (func (export "_start")))"#,
    );
    let big_app = root.join("big.warden");
    bundle(&["--max-memory", "1MiB", s(&big)], &big_app);
    run(warden_run([s(&big_app)])).code(0);
    run(warden_run(["--max-memory", "64KiB", s(&big_app)])).code(122);
}

#[test]
fn flags_that_widen_the_bundle_are_refused_with_one_line() {
    let dir = tempdir();
    let root = dir.path();
    let app = policy_bundle(root);
    let other = tempdir();
    let config = write(root, "Warden.toml", "");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--allow".into(), "process".into()],
            "--allow process widens the bundle's policy (it denies `process`)".into(),
        ),
        (
            vec!["--dir".into(), s(other.path()).into()],
            format!(
                "--dir {0}::{0} widens the bundle's policy (it has no mount at `{0}`)",
                s(other.path())
            ),
        ),
        (
            vec!["--dir".into(), format!("{}::/data", s(other.path()))],
            format!(
                "--dir {}::/data widens the bundle's policy (its mount `/data` is the host \
                 directory {})",
                s(other.path()),
                s(&root.join("data"))
            ),
        ),
        (
            vec!["--mount".into(), format!("/x={}", s(other.path()))],
            "widens the bundle's policy (it has no mount at `/x`)".into(),
        ),
        (
            vec!["--allow-net".into(), "11.0.0.1:80".into()],
            "--allow-net 11.0.0.1:80 widens the bundle's policy (none of its network rules \
             covers it)"
                .into(),
        ),
        (
            vec!["--allow-http".into(), "https://example.com".into()],
            "--allow-http https://example.com:443 widens".into(),
        ),
        (
            vec!["--fuel".into(), "2000000".into()],
            "--fuel 2000000 widens the bundle's policy (its fuel is 1000000)".into(),
        ),
        (
            vec!["--fuel".into(), "0".into()],
            "--fuel 0 widens the bundle's policy (its fuel is 1000000)".into(),
        ),
        (
            vec!["--max-memory".into(), "2MiB".into()],
            "--max-memory 2 MiB widens the bundle's policy (its limit is 1 MiB)".into(),
        ),
        (
            vec!["--env".into(), "NEW=1".into()],
            "--env NEW widens the bundle's policy (it does not set `NEW`)".into(),
        ),
        (
            vec!["--env".into(), "MODE=dev".into()],
            "--env MODE widens the bundle's policy (it sets `MODE` to another value)".into(),
        ),
        (
            vec!["--stdin".into(), "allow".into()],
            "--stdin allow widens the bundle's policy (its stdin is `ignore`)".into(),
        ),
        (
            vec!["--listen".into(), "127.0.0.1:0".into()],
            "--listen 127.0.0.1:0 widens".into(),
        ),
        (
            vec!["--entrypoint".into(), "other".into()],
            "--entrypoint other widens the bundle's policy (it calls `_start`)".into(),
        ),
        (
            vec!["--config".into(), s(&config).into()],
            "--config cannot be given with a bundle".into(),
        ),
    ];
    for (flags, expected) in cases {
        let mut args = flags.clone();
        args.push(s(&app).into());
        let out = run(warden_run(&args));
        let line = out.bad_input();
        assert!(
            line.contains(&expected),
            "{flags:?}: {line}\nexpected: {expected}"
        );
    }
    // Guest arguments are the bundle's: others are refused...
    let line = run(warden_run([s(&app), "extra"])).bad_input();
    assert!(
        line.contains("changing the guest arguments widens the bundle's policy"),
        "{line}"
    );
}

#[test]
fn bad_bundle_commands_are_one_line() {
    let dir = tempdir();
    let root = dir.path();
    let module = wat(root, "m.wat", &say("x"));
    let out = root.join("m.warden");
    for (args, expected) in [
        (
            vec!["/definitely/not/here.wasm".to_string()],
            "cannot read /definitely/not/here.wasm".to_string(),
        ),
        (
            vec![
                "--mount".into(),
                "/x=/definitely/not/here".into(),
                s(&module).into(),
            ],
            "/definitely/not/here".into(),
        ),
        (
            vec![s(&write(root, "junk.wasm", "junk")).into()],
            "is not a WebAssembly file".into(),
        ),
        (
            vec![s(&write(
                root,
                "bad.wat",
                "(module (func (export \"_start\") (call 7)))",
            ))
            .into()],
            "bad.wat".into(),
        ),
    ] {
        let mut all = args.clone();
        all.extend(["-o".into(), s(&out).into()]);
        let line = run(warden_cmd("bundle", &all)).bad_input();
        assert!(line.contains(&expected), "{args:?}: {line}");
        assert!(!out.exists(), "{args:?} left a bundle behind");
    }
    // An import warden does not provide is refused when bundling, as
    // `warden run` would refuse it.
    let foreign = wat(
        root,
        "foreign.wat",
        r#"(module (import "env" "f" (func)) (func (export "_start")))"#,
    );
    let line = run(warden_cmd("bundle", [s(&foreign), "-o", s(&out)])).bad_input();
    assert!(line.contains("imports `env::f`"), "{line}");
    // A bundle of a bundle is refused.
    bundle(&[s(&module)], &out);
    let line = run(warden_cmd(
        "bundle",
        [s(&out), "-o", s(&root.join("again.warden"))],
    ))
    .bad_input();
    assert!(line.contains("is already a bundle"), "{line}");
}
