//! `warden kv` (crates/warden/src/kv.rs), compiled here against this crate so
//! that it is tested without building the whole warden binary.

#[allow(dead_code)]
#[path = "../../warden/src/kv.rs"]
mod kv;

use std::path::Path;

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    kv: kv::KvArgs,
}

struct Outcome {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

fn kv(dir: &Path, args: &[&str], stdin: &[u8]) -> Outcome {
    kv_on(
        &dir.join("store.redb").display().to_string(),
        dir,
        args,
        stdin,
    )
}

/// `warden kv --store STORE --key-file DIR/keys/store.key ARGS…`
fn kv_on(store: &str, dir: &Path, args: &[&str], stdin: &[u8]) -> Outcome {
    let key = dir.join("keys/store.key");
    let mut argv = vec![
        "kv".to_string(),
        "--store".into(),
        store.to_string(),
        "--key-file".into(),
        key.display().to_string(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    let cli = Cli::try_parse_from(argv).expect("arguments");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut input = stdin;
    let mut streams = kv::Streams {
        stdin: &mut input,
        stdout: &mut out,
        stderr: &mut err,
        stdout_is_tty: false,
    };
    let code = kv::run_with(cli.kv, &mut streams).expect("run");
    Outcome {
        code,
        stdout: out,
        stderr: String::from_utf8(err).unwrap(),
    }
}

fn ok(o: Outcome) -> Vec<u8> {
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    o.stdout
}

fn fails(o: Outcome, message: &str) {
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr.lines().count(), 1, "not one line: {}", o.stderr);
    assert!(
        o.stderr.contains(message),
        "{:?} lacks {message:?}",
        o.stderr
    );
}

#[test]
fn set_get_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails(kv(d, &["list"], b""), "no store at");
    ok(kv(d, &["set", "app", "greeting", "hello"], b""));
    ok(kv(d, &["set", "app", "blob", "-"], b"from\nstdin\0"));
    ok(kv(d, &["set", "other", "x", "1"], b""));
    assert_eq!(ok(kv(d, &["get", "app", "greeting"], b"")), b"hello");
    assert_eq!(ok(kv(d, &["get", "app", "blob"], b"")), b"from\nstdin\0");
    assert_eq!(ok(kv(d, &["list"], b"")), b"app\nother\n");
    assert_eq!(ok(kv(d, &["list", "app"], b"")), b"blob\ngreeting\n");
    assert_eq!(
        ok(kv(d, &["list", "app", "--prefix", "gr"], b"")),
        b"greeting\n"
    );
    ok(kv(d, &["delete", "app", "greeting"], b""));
    fails(
        kv(d, &["get", "app", "greeting"], b""),
        "key \"greeting\" not found in namespace \"app\"",
    );
    fails(kv(d, &["delete", "app", "greeting"], b""), "not found");
    fails(
        kv(d, &["get", "nope", "k"], b""),
        "unknown namespace \"nope\"",
    );
    fails(kv(d, &["list", "nope"], b""), "unknown namespace \"nope\"");
}

#[test]
fn wrong_key_and_tampering_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(kv(d, &["set", "app", "k", "v"], b""));
    // Another key file.
    let key = d.join("keys/store.key");
    let original = std::fs::read(&key).unwrap();
    std::fs::write(&key, [9u8; 32]).unwrap();
    fails(
        kv(d, &["get", "app", "k"], b""),
        "wrong sealing key for store",
    );
    fails(
        kv(d, &["set", "app", "k", "new"], b""),
        "wrong sealing key for store",
    );
    std::fs::write(&key, &original).unwrap();
    assert_eq!(ok(kv(d, &["get", "app", "k"], b"")), b"v");

    // An older copy of the store.
    let store = d.join("store.redb");
    let old = std::fs::read(&store).unwrap();
    ok(kv(d, &["set", "app", "k", "v2"], b""));
    let current = std::fs::read(&store).unwrap();
    std::fs::write(&store, &old).unwrap();
    fails(kv(d, &["get", "app", "k"], b""), "refusing a rollback");
    std::fs::write(&store, &current).unwrap();

    // A truncated store.
    std::fs::write(&store, &current[..current.len() / 2]).unwrap();
    fails(kv(d, &["list"], b""), "damaged");
    std::fs::write(&store, &current).unwrap();
    assert_eq!(ok(kv(d, &["get", "app", "k"], b"")), b"v2");
}

#[test]
fn export_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(kv(d, &["set", "a", "k1", "v1"], b""));
    ok(kv(d, &["set", "b", "k2", "v2"], b""));
    let backup = d.join("backup.wsb");
    let b = backup.display().to_string();
    ok(kv(d, &["export", &b], b""));

    // Restore into a fresh store that uses the same key file.
    let fresh = tempfile::tempdir().unwrap();
    let f = fresh.path();
    std::fs::create_dir_all(f.join("keys")).unwrap();
    std::fs::copy(d.join("keys/store.key"), f.join("keys/store.key")).unwrap();
    ok(kv(f, &["import", &b], b""));
    assert_eq!(ok(kv(f, &["get", "b", "k2"], b"")), b"v2");

    // A tampered backup changes nothing.
    let mut bytes = std::fs::read(&backup).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 1;
    let bad = f.join("bad.wsb");
    std::fs::write(&bad, &bytes).unwrap();
    ok(kv(f, &["set", "b", "k2", "changed"], b""));
    fails(
        kv(f, &["import", "--replace", &bad.display().to_string()], b""),
        "does not authenticate",
    );
    assert_eq!(ok(kv(f, &["get", "b", "k2"], b"")), b"changed");
    assert_eq!(ok(kv(f, &["list"], b"")), b"a\nb\n");

    // Into a store that does not exist yet: a bad backup leaves no store behind.
    let empty = tempfile::tempdir().unwrap();
    let e = empty.path();
    std::fs::create_dir_all(e.join("keys")).unwrap();
    std::fs::copy(d.join("keys/store.key"), e.join("keys/store.key")).unwrap();
    fails(
        kv(e, &["import", &bad.display().to_string()], b""),
        "does not authenticate",
    );
    assert!(!e.join("store.redb").exists());
}

/// The same commands on a store in etcd, and its faults: an unreachable
/// cluster or a bad URL is one line and exit 2.
#[test]
fn on_etcd() {
    let cluster = warden_etcd::testing::Cluster::start(1).unwrap();
    let url = cluster.url("kv-cli");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails(kv_on(&url, d, &["list"], b""), "no store at");
    ok(kv_on(&url, d, &["set", "app", "greeting", "hello"], b""));
    ok(kv_on(&url, d, &["set", "app", "n", "1"], b""));
    assert_eq!(
        ok(kv_on(&url, d, &["get", "app", "greeting"], b"")),
        b"hello"
    );
    assert_eq!(ok(kv_on(&url, d, &["list", "app"], b"")), b"greeting\nn\n");
    // One rollback state per cluster and prefix, however the URL is spelled.
    let seen: Vec<_> = std::fs::read_dir(d.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seen"))
        .collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    ok(kv_on(&format!("{url}/"), d, &["delete", "app", "n"], b""));
    let b = d.join("backup.wsb").display().to_string();
    ok(kv_on(&url, d, &["export", &b], b""));
    let other = cluster.url("kv-cli-copy");
    ok(kv_on(&other, d, &["import", &b], b""));
    assert_eq!(ok(kv_on(&other, d, &["list", "app"], b"")), b"greeting\n");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (store, message) in [
        (format!("etcd://127.0.0.1:{port}/p"), "unreachable"),
        ("etcd://127.0.0.1:2379".to_string(), "has no key prefix"),
    ] {
        let o = kv_on(&store, d, &["list"], b"");
        assert_eq!(o.code, 2, "{}", o.stderr);
        assert_eq!(o.stderr.lines().count(), 1, "not one line: {}", o.stderr);
        assert!(
            o.stderr.contains(message),
            "{:?} lacks {message:?}",
            o.stderr
        );
    }
}
