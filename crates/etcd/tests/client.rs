//! The client against real etcd clusters started by the tests.

use std::time::Duration;

use warden_etcd::testing::Cluster;
use warden_etcd::{
    chunks, prefix_end, Compare, CompareOp, EtcdClient, EtcdError, EtcdTarget, Timeouts, Txn,
    TxnOp, WatchEvent,
};

#[test]
fn unreachable_cluster_is_one_clear_error() {
    // A port nobody listens on: bind, then release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = EtcdTarget::parse(&format!("etcd://127.0.0.1:{port}/p")).unwrap();
    let timeouts = Timeouts {
        connect: Duration::from_secs(1),
        request: Duration::from_secs(2),
    };
    let e = EtcdClient::connect(&target, timeouts).err().unwrap();
    assert!(matches!(e, EtcdError::Unreachable { .. }), "{e}");
    let message = e.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn kv_txn_range_chunks_and_watch() {
    let cluster = Cluster::start(1).unwrap();
    let client = cluster.client("app").unwrap();
    let t = client.target().clone();

    // get / put with revisions.
    let rev = client.put(&t.key(b"a"), b"1").unwrap();
    let (entry, at) = client.get(&t.key(b"a"), 0).unwrap();
    let entry = entry.unwrap();
    assert_eq!(
        (entry.value.as_slice(), entry.mod_revision),
        (&b"1"[..], rev)
    );
    assert!(at >= rev);
    client.put(&t.key(b"a"), b"2").unwrap();
    assert_eq!(
        client.get(&t.key(b"a"), rev).unwrap().0.unwrap().value,
        b"1"
    );

    // A transaction on a stale revision fails; on the current one succeeds.
    let stale = Txn::new()
        .when([Compare::mod_revision(t.key(b"a"), CompareOp::Equal, rev)])
        .and_then([TxnOp::put(t.key(b"a"), "3", None)]);
    assert!(!client.txn(stale).unwrap().succeeded());
    let current = client.get(&t.key(b"a"), 0).unwrap().0.unwrap().mod_revision;
    let fresh = Txn::new()
        .when([Compare::mod_revision(
            t.key(b"a"),
            CompareOp::Equal,
            current,
        )])
        .and_then([TxnOp::put(t.key(b"a"), "3", None)]);
    assert!(client.txn(fresh).unwrap().succeeded());

    // Paged ranges see all keys, in order, at one revision.
    for i in 0..25u32 {
        client
            .put(&t.key(format!("r/{i:03}").as_bytes()), &i.to_le_bytes())
            .unwrap();
    }
    let start = t.key(b"r/");
    let end = prefix_end(&start);
    let page = client.range(&start, &end, 0, 10, false).unwrap();
    assert!(page.more);
    assert_eq!(page.entries.len(), 10);
    let mut seen = Vec::new();
    let revision = client
        .scan(&start, &end, 0, 7, &mut |e| {
            seen.push(e.key);
            Ok(true)
        })
        .unwrap();
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    client.put(&t.key(b"r/999"), b"later").unwrap();
    let mut again = 0;
    client
        .scan(&start, &end, revision, 7, &mut |_| {
            again += 1;
            Ok(true)
        })
        .unwrap();
    assert_eq!(
        again, 25,
        "a scan at an old revision does not see later keys"
    );

    // 16 MiB through chunks, under the 1.5 MiB request limit.
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
    let chunk_prefix = t.key(b"chunks/");
    let reference = chunks::put(&client, &chunk_prefix, &big).unwrap();
    assert!(reference.count >= 16);
    assert_eq!(
        chunks::get(&client, &chunk_prefix, &reference, 0).unwrap(),
        big
    );
    assert_eq!(
        chunks::ids(&client, &chunk_prefix).unwrap(),
        vec![reference.id]
    );
    chunks::delete(&client, &chunk_prefix, &reference).unwrap();
    assert!(chunks::ids(&client, &chunk_prefix).unwrap().is_empty());
    assert!(chunks::get(&client, &chunk_prefix, &reference, 0).is_err());

    // A watch sees puts and deletes under its prefix, in order.
    let now = client.get(&t.key(b"a"), 0).unwrap().1;
    let watch = client.watch_prefix(&t.key(b"w/"), now + 1).unwrap();
    client.put(&t.key(b"w/x"), b"1").unwrap();
    client.put(&t.key(b"elsewhere"), b"1").unwrap();
    client.delete(&t.key(b"w/x")).unwrap();
    let mut events = watch.take(2).map(Result::unwrap);
    match events.next().unwrap() {
        WatchEvent::Put(e) => assert_eq!((e.key, e.value), (t.key(b"w/x"), b"1".to_vec())),
        other => panic!("{other:?}"),
    }
    match events.next().unwrap() {
        WatchEvent::Delete { key, .. } => assert_eq!(key, t.key(b"w/x")),
        other => panic!("{other:?}"),
    }
}

/// The client is synchronous but must work when called from a tokio task
/// (as warden serve does) and be dropped there, without the "cannot block
/// inside a runtime" panics.
#[test]
fn usable_and_droppable_inside_a_tokio_runtime() {
    let cluster = Cluster::start(1).unwrap();
    let url = cluster.url("rt");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let value = rt.block_on(async move {
        let target = EtcdTarget::parse(&url).unwrap();
        let client = EtcdClient::connect(&target, Timeouts::default()).unwrap();
        client.put(&target.key(b"k"), b"v").unwrap();
        let value = client.get(&target.key(b"k"), 0).unwrap().0.unwrap().value;
        drop(client);
        value
    });
    assert_eq!(value, b"v");
}

/// Makes a CA and a certificate for 127.0.0.1 (server and client use) with
/// the `openssl` command.
fn make_certs(dir: &std::path::Path) -> warden_etcd::testing::TlsFiles {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=warden-test-ca",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "node.key",
            "-out",
            "node.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "node.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "node.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    warden_etcd::testing::TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("node.pem"),
        key: dir.join("node.key"),
    }
}

/// A cluster that requires TLS with client certificates: reachable with
/// `ca`, `cert` and `key`; refused (one clear error) without the client
/// certificate or with a CA file that does not exist.
#[test]
fn tls_with_client_certificates() {
    let certs = tempfile::tempdir().unwrap();
    let files = make_certs(certs.path());
    let cluster = Cluster::start_tls(1, &files).unwrap();
    let client = cluster.client("tls").unwrap();
    let t = client.target().clone();
    assert!(t.tls.is_some());
    client.put(&t.key(b"k"), b"over tls").unwrap();
    assert_eq!(
        client.get(&t.key(b"k"), 0).unwrap().0.unwrap().value,
        b"over tls"
    );

    let endpoint = &cluster.endpoints()[0];
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(4),
    };
    let no_cert =
        EtcdTarget::parse(&format!("etcd://{endpoint}/tls?ca={}", files.ca.display())).unwrap();
    let e = EtcdClient::connect(&no_cert, timeouts).err().unwrap();
    assert!(matches!(e, EtcdError::Unreachable { .. }), "{e}");
    let missing =
        EtcdTarget::parse(&format!("etcd://{endpoint}/tls?ca=/nonexistent/ca.pem")).unwrap();
    let e = EtcdClient::connect(&missing, timeouts)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cannot read CA /nonexistent/ca.pem"), "{e}");
}

/// A cluster with authentication on: user and password get in; a wrong
/// password or no user is refused with an error that says so (not
/// "unreachable").
#[test]
fn user_and_password() {
    let cluster = Cluster::start(1).unwrap();
    let admin = cluster.client("auth").unwrap();
    admin
        .call("auth setup", |mut c| async move {
            c.user_add("root", "root-secret", None).await?;
            c.user_grant_role("root", "root").await?;
            c.auth_enable().await?;
            Ok(())
        })
        .unwrap();
    let url = format!("{}?user=root", cluster.url("auth"));
    let good = EtcdTarget::parse_with_password(&url, Some("root-secret".into())).unwrap();
    let client = EtcdClient::connect(&good, Timeouts::default()).unwrap();
    client.put(&good.key(b"k"), b"authenticated").unwrap();
    assert_eq!(
        client.get(&good.key(b"k"), 0).unwrap().0.unwrap().value,
        b"authenticated"
    );

    let bad = EtcdTarget::parse_with_password(&url, Some("wrong".into())).unwrap();
    let e = EtcdClient::connect(&bad, Timeouts::default())
        .err()
        .unwrap();
    assert!(matches!(e, EtcdError::Request { .. }), "{e}");
    assert!(e.to_string().contains("authentication failed"), "{e}");
    let anonymous = EtcdTarget::parse(&cluster.url("auth")).unwrap();
    let e = EtcdClient::connect(&anonymous, Timeouts::default())
        .err()
        .unwrap();
    assert!(matches!(e, EtcdError::Request { .. }), "{e}");
}
