//! Several `warden serve` nodes on one etcd cluster: real etcd members
//! started by the test (`warden_etcd::testing`), the warden binary started
//! as a user starts it, requests over real sockets.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::serve::{example_app, http_app, request, Server};
use support::{run, s, tempdir, warden_cmd, write};
use warden_etcd::testing::Cluster;

/// A node's own directory holding a copy of the cluster's root key: every
/// node of a cluster must have the same key (its rollback state is its
/// own, beside its key file).
fn node_dir(key: &Path) -> tempfile::TempDir {
    let dir = tempdir();
    std::fs::copy(key, dir.path().join("store.key")).expect("copy the key");
    let mut perms = std::fs::metadata(dir.path().join("store.key"))
        .expect("key")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(dir.path().join("store.key"), perms).expect("chmod");
    dir
}

/// A root key file for a cluster: 32 random bytes, owner-only.
fn cluster_key(dir: &Path) -> PathBuf {
    use std::io::Read;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .expect("random key");
    let path = dir.join("cluster.key");
    std::fs::write(&path, key).expect("write the key");
    let mut perms = std::fs::metadata(&path).expect("key").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&path, perms).expect("chmod");
    path
}

/// `warden serve --store URL` (the published deployment) in `dir`.
fn node(dir: &Path, url: &str) -> Server {
    Server::start(dir, &["--store", url])
}

fn deploy(url: &str, key: &Path, manifest: &Path) -> support::Output {
    run(warden_cmd(
        "deploy",
        ["--store", url, "--key-file", s(key), s(manifest)],
    ))
}

fn app(name: &str, route: &str, component: &Path) -> String {
    format!(
        "[[app]]\nname = \"{name}\"\nroute = \"{route}\"\ncomponent = \"{}\"\n",
        component.display()
    )
}

/// Waits until `server` answers `path` with `status`.
fn wait_for(server: &Server, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = server.get(path);
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still answers {got} {body}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_deploy_reaches_every_node_and_a_late_node_catches_up() {
    let cluster = Cluster::start(3).expect("etcd cluster");
    let url = cluster.url("deploys");
    let dir = tempdir();
    let key = cluster_key(dir.path());
    let first = write(dir.path(), "one.toml", &app("one", "/one/...", &http_app()));
    let out = deploy(&url, &key, &first);
    out.code(0);
    assert!(out.stdout.starts_with("deployed 1 app(s) from "), "{out}");

    let (d1, d2) = (node_dir(&key), node_dir(&key));
    let (n1, n2) = (node(d1.path(), &url), node(d2.path(), &url));
    for n in [&n1, &n2] {
        let (status, body) = n.get("/one/x");
        assert_eq!(status, 200, "{body}\n{}", n.log());
        assert_eq!(n.get("/two/x").0, 404);
    }

    // A second deployment: both nodes swap it in by themselves.
    let both = format!(
        "{}{}",
        app("one", "/one/...", &http_app()),
        app("two", "/two/...", &http_app())
    );
    let second = write(dir.path(), "two.toml", &both);
    deploy(&url, &key, &second).code(0);
    for n in [&n1, &n2] {
        wait_for(n, "/two/x", 200);
        n.wait_for_log(&["deployed 2 app(s)"]);
    }

    // A node started later serves the newest deployment.
    let d3 = node_dir(&key);
    let n3 = node(d3.path(), &url);
    assert_eq!(n3.get("/two/x").0, 200, "{}", n3.log());

    // A manifest that does not load is refused before anything is
    // published: one line, exit 2; every node keeps serving.
    let broken = write(
        dir.path(),
        "broken.toml",
        &app("three", "/three/...", &dir.path().join("missing.wasm")),
    );
    let out = deploy(&url, &key, &broken);
    out.code(2).stdout_is("");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(out.stderr.contains("missing.wasm"), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    for n in [&n1, &n2, &n3] {
        assert_eq!(n.get("/two/x").0, 200);
        assert_eq!(n.get("/three/x").0, 404);
    }
}

#[test]
fn an_unreachable_cluster_is_one_line_and_exit_2() {
    let dir = tempdir();
    let m = write(dir.path(), "one.toml", &app("one", "/...", &http_app()));
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("etcd://127.0.0.1:{port}/nobody");
    let key = cluster_key(dir.path());
    let out = deploy(&url, &key, &m);
    out.code(2).stdout_is("");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(out.stderr.contains(&format!("127.0.0.1:{port}")), "{out}");
    let stderr = support::serve::refused(dir.path(), &["--store", &url]);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    // Not an etcd URL.
    let out = deploy("/tmp/store.redb", &key, &m);
    out.code(2);
    assert!(out.stderr.contains("etcd://"), "{out}");
}

/// 64 clients, spread over both nodes, each incrementing the shared
/// counter: every acknowledged increment is counted once.
fn hammer(
    nodes: &[Arc<Server>],
    clients: usize,
    per_client: usize,
    during: impl FnOnce(),
) -> Vec<i64> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let node = nodes[i % nodes.len()].clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                for _ in 0..per_client {
                    let (status, body) = request("GET", &node.url("/c"), &[], None);
                    match status {
                        200 => acked
                            .lock()
                            .unwrap()
                            .push(body.trim().parse::<i64>().unwrap()),
                        // The store was briefly unreachable: not acknowledged.
                        503 => {}
                        other => panic!("status {other}: {body}"),
                    }
                }
            })
        })
        .collect();
    during();
    for t in threads {
        t.join().expect("client");
    }
    let mut all = acked.lock().unwrap().clone();
    all.sort();
    all
}

fn counter_nodes(url: &str, key: &Path, dir: &Path) -> (Vec<tempfile::TempDir>, Vec<Arc<Server>>) {
    let m = write(
        dir,
        "counter.toml",
        &app("counter", "/...", &example_app("kv-counter")),
    );
    deploy(url, key, &m).code(0);
    let dirs = vec![node_dir(key), node_dir(key)];
    let nodes = dirs.iter().map(|d| Arc::new(node(d.path(), url))).collect();
    (dirs, nodes)
}

#[test]
fn increments_over_two_nodes_are_exact_while_an_etcd_member_restarts() {
    let mut cluster = Cluster::start(3).expect("etcd cluster");
    let url = cluster.url("counter");
    let dir = tempdir();
    let key = cluster_key(dir.path());
    let (_dirs, nodes) = counter_nodes(&url, &key, dir.path());

    let acked = hammer(&nodes, 64, 8, || {});
    let expected: Vec<i64> = (1..=64 * 8).collect();
    assert_eq!(acked, expected, "each increment answered a distinct value");

    // One member killed and restarted under load: every acknowledged
    // increment is in the count, none twice.
    let cluster_ref = &mut cluster;
    let before = 64 * 8;
    let acked = hammer(&nodes, 64, 8, || {
        std::thread::sleep(Duration::from_millis(200));
        cluster_ref.kill(0);
        std::thread::sleep(Duration::from_millis(500));
        cluster_ref.restart(0).expect("restart the member");
    });
    let mut distinct = acked.clone();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        acked.len(),
        "a value was acknowledged twice"
    );
    let (status, body) = nodes[0].get("/c?peek");
    assert_eq!(status, 200, "{body}");
    let count: i64 = body.trim().parse().expect("count");
    assert_eq!(
        count,
        before + acked.len() as i64,
        "acknowledged increments and the count differ"
    );
    assert!(acked.iter().all(|v| *v > before && *v <= count));
}

#[test]
fn a_node_killed_under_load_leaves_the_other_serving() {
    let cluster = Cluster::start(3).expect("etcd cluster");
    let url = cluster.url("failover");
    let dir = tempdir();
    let key = cluster_key(dir.path());
    let (_dirs, mut nodes) = counter_nodes(&url, &key, dir.path());
    let survivor = nodes.pop().expect("two nodes");
    let doomed = nodes.pop().expect("two nodes");
    let acked = hammer(std::slice::from_ref(&survivor), 16, 16, || {
        std::thread::sleep(Duration::from_millis(100));
        doomed.signal(libc::SIGKILL);
    });
    assert_eq!(acked.len(), 16 * 16, "the survivor answered every request");
    let mut distinct = acked.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), acked.len());
}

/// A node's own manifest serving the counter example with its state on the
/// etcd cluster at `url` (the manifest's `server.store`), written in `dir`,
/// and that node's directory (with the cluster's key).
fn counter_on(url: &str, dir: &Path) -> (PathBuf, tempfile::TempDir) {
    let key = cluster_key(dir);
    let text = format!(
        "[server]\nstore = \"{url}\"\n\n{}",
        app("counter", "/...", &example_app("kv-counter"))
    );
    (write(dir, "counter.toml", &text), node_dir(&key))
}

#[test]
fn losing_the_cluster_gives_503_and_serving_recovers_by_itself() {
    let mut cluster = Cluster::start(1).expect("etcd");
    let dir = tempdir();
    let (m, d) = counter_on(&cluster.url("outage"), dir.path());
    let server = Server::start(d.path(), &[s(&m)]);
    assert_eq!(server.get("/c"), (200, "1\n".into()));
    cluster.kill(0);
    let (status, body) = server.get("/c");
    assert_eq!(status, 503, "{body}\n{}", server.log());
    cluster.restart(0).expect("restart");
    wait_for(&server, "/c?peek", 200);
    assert_eq!(server.get("/c"), (200, "2\n".into()), "{}", server.log());
}

#[test]
fn a_publication_without_the_clusters_key_or_older_than_served_is_refused() {
    let cluster = Cluster::start(1).expect("etcd");
    let url = cluster.url("forgery");
    let dir = tempdir();
    let key = cluster_key(dir.path());
    let one = write(dir.path(), "one.toml", &app("one", "/one/...", &http_app()));
    deploy(&url, &key, &one).code(0);
    let etcd = cluster.client("forgery").expect("client");
    let record = b"forgery/deploy/current".to_vec();
    let (first, _) = etcd.get(&record, 0).expect("get");
    let first = first.expect("published").value;

    let d = node_dir(&key);
    let n = node(d.path(), &url);
    assert_eq!(n.get("/one/x").0, 200);

    // Someone with write access to etcd but not the key changes the route.
    let forged = String::from_utf8(first.clone())
        .expect("json")
        .replace("/one/...", "/evil/...");
    etcd.put(&record, forged.as_bytes()).expect("put");
    n.wait_for_log(&["does not authenticate under this root key"]);
    assert_eq!(n.get("/evil/x").0, 404);
    assert_eq!(n.get("/one/x").0, 200);

    // A deployer with another key is refused the same way.
    let other = tempdir();
    let other_key = cluster_key(other.path());
    let two = write(dir.path(), "two.toml", &app("two", "/two/...", &http_app()));
    deploy(&url, &other_key, &two).code(0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(n.get("/two/x").0, 404, "{}", n.log());

    // The real key: served. Then the first publication put back: older.
    deploy(&url, &key, &two).code(0);
    wait_for(&n, "/two/x", 200);
    etcd.put(&record, &first).expect("put");
    n.wait_for_log(&["older than the one served"]);
    assert_eq!(n.get("/two/x").0, 200);
    assert_eq!(n.get("/one/x").0, 404);
}

#[test]
fn a_sealed_mount_on_etcd_is_shared_by_runs_on_two_nodes() {
    let cluster = Cluster::start(1).expect("etcd");
    let url = cluster.url("files");
    let dir = tempdir();
    let key = cluster_key(dir.path());
    let (a, b) = (node_dir(&key), node_dir(&key));
    let rust = support::rust_guest("fs_ops");
    let on = |node: &Path, args: &[&str]| {
        let mut cmd = support::warden_run([
            "--store",
            url.as_str(),
            "--key-file",
            s(&node.join("store.key")),
            "--sealed",
            "/state=journal",
            s(&rust),
        ]);
        cmd.args(args);
        run(cmd)
    };
    on(a.path(), &["write", "/state/note.txt", "written on a"]).code(0);
    on(b.path(), &["cat", "/state/note.txt"])
        .code(0)
        .stdout_is("written on a");
    // Nothing of it in etcd in the clear.
    let etcd = cluster.client("files").expect("client");
    let mut from = b"files/".to_vec();
    let end = warden_etcd::prefix_end(&from);
    loop {
        let page = etcd.range(&from, &end, 0, 256, false).expect("range");
        for e in &page.entries {
            for secret in [&b"written on a"[..], b"note.txt"] {
                assert!(
                    !e.value.windows(secret.len()).any(|w| w == secret),
                    "{} in the clear under {}",
                    String::from_utf8_lossy(secret),
                    String::from_utf8_lossy(&e.key)
                );
            }
        }
        match page.entries.last() {
            Some(last) if page.more => {
                from = last.key.clone();
                from.push(0);
            }
            _ => break,
        }
    }
}

#[test]
fn a_node_refuses_a_rolled_back_etcd_snapshot() {
    let mut cluster = Cluster::start(1).expect("etcd");
    let dir = tempdir();
    let (m, d) = counter_on(&cluster.url("rollback"), dir.path());
    let snapshot = dir.path().join("old.snapshot");
    {
        let server = Server::start(d.path(), &[s(&m)]);
        assert_eq!(server.get("/c"), (200, "1\n".into()));
        cluster.save_snapshot(&snapshot).expect("snapshot");
        assert_eq!(server.get("/c"), (200, "2\n".into()));
        assert_eq!(server.get("/c"), (200, "3\n".into()));
    }
    // The operator puts the cluster back to the snapshot: the node, which
    // saw newer writes, refuses the store (one line, exit 2), and serves
    // nothing from it.
    cluster.restore(&snapshot).expect("restore");
    let line = support::serve::refused(d.path(), &[s(&m)]);
    assert!(line.contains("refusing a rollback"), "{line}");
}
