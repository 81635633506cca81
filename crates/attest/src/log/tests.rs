use super::*;
use sha2::{Digest as _, Sha256 as Sha256_010};

/// RFC 9162 §2.1.1 MTH, written out independently with sha2 0.10.
fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
    let n = leaves.len();
    if n == 0 {
        return Sha256_010::digest(b"").into();
    }
    if n == 1 {
        let mut h = Sha256_010::new();
        h.update([0u8]);
        h.update(&leaves[0]);
        return h.finalize().into();
    }
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    let mut h = Sha256_010::new();
    h.update([1u8]);
    h.update(mth(&leaves[..k]));
    h.update(mth(&leaves[k..]));
    h.finalize().into()
}

fn runtime(version: &str) -> RuntimeMeasurement {
    RuntimeMeasurement {
        exe: Sha256Digest::of(b"warden"),
        version: version.into(),
    }
}

fn app(name: &str, code: &[u8]) -> AppMeasurement {
    AppMeasurement {
        name: name.into(),
        route: format!("/{name}/..."),
        code: Sha256Digest::of(code),
        policy: Sha256Digest::of(b"policy"),
        namespaces: vec![format!("{name}/fs/data"), format!("{name}/default")],
    }
}

fn apps(n: usize) -> Vec<AppMeasurement> {
    (0..n)
        .map(|i| app(&format!("app{i:02}"), b"code"))
        .collect()
}

fn items(log: &DeploymentLog) -> Vec<Vec<u8>> {
    log.tree.items().to_vec()
}

fn flip(h: &mut [u8; 32]) {
    h[0] ^= 1;
}

#[test]
fn leaf_bytes_are_canonical_json() {
    let rt = Leaf::Runtime {
        deploy: 1,
        runtime: runtime("0.1.0"),
    };
    assert_eq!(
        String::from_utf8(rt.to_bytes()).unwrap(),
        format!(
            "{{\"deploy\":1,\"exe\":\"{}\",\"kind\":\"runtime\",\"version\":\"0.1.0\"}}",
            Sha256Digest::of(b"warden")
        )
    );
    let mut hello = app("hello", b"code");
    hello.namespaces.push("hello/default".into());
    let leaf = Leaf::App {
        deploy: 3,
        app: hello,
    };
    let d = Sha256Digest::of(b"code");
    let p = Sha256Digest::of(b"policy");
    assert_eq!(
        String::from_utf8(leaf.to_bytes()).unwrap(),
        format!(
            "{{\"code\":\"{d}\",\"deploy\":3,\"kind\":\"app\",\"name\":\"hello\",\
             \"namespaces\":[\"hello/default\",\"hello/fs/data\"],\"policy\":\"{p}\",\
             \"route\":\"/hello/...\"}}"
        )
    );
    for l in [rt, leaf] {
        let parsed = Leaf::parse(&l.to_bytes()).unwrap();
        assert_eq!(parsed.to_bytes(), l.to_bytes());
    }
    // Escaping is serde_json's, and round-trips.
    let odd = Leaf::App {
        deploy: 1,
        app: app("qu\"o\\te\u{7}é", b"x"),
    };
    assert_eq!(
        Leaf::parse(&odd.to_bytes()).unwrap(),
        odd_sorted(odd.clone())
    );
}

/// `odd` with its namespaces as the leaf holds them.
fn odd_sorted(mut leaf: Leaf) -> Leaf {
    if let Leaf::App { app, .. } = &mut leaf {
        app.namespaces.sort();
        app.namespaces.dedup();
    }
    leaf
}

#[test]
fn leaf_parse_refuses_non_canonical_text() {
    let good = String::from_utf8(
        Leaf::App {
            deploy: 2,
            app: app("hello", b"code"),
        }
        .to_bytes(),
    )
    .unwrap();
    let rt = String::from_utf8(
        Leaf::Runtime {
            deploy: 2,
            runtime: runtime("0.1.0"),
        }
        .to_bytes(),
    )
    .unwrap();
    let hex = hex::encode(Sha256Digest::of(b"code").0);
    let bad = [
        good.replace(",\"deploy\"", ", \"deploy\""),
        format!("{good}\n"),
        format!(" {good}"),
        good.replace("\"deploy\":2", "\"deploy\":2,\"extra\":1"),
        good.replace(
            "[\"hello/default\",\"hello/fs/data\"]",
            "[\"hello/fs/data\",\"hello/default\"]",
        ),
        good.replace(
            "[\"hello/default\",\"hello/fs/data\"]",
            "[\"hello/default\",\"hello/default\",\"hello/fs/data\"]",
        ),
        good.replace(&hex, &hex.to_uppercase()),
        good.replace("\"kind\":\"app\"", "\"kind\":\"apps\""),
        good.replace("/hello/...", "\\/hello\\/..."),
        // Key order: kind moved first.
        good.replace(",\"kind\":\"app\"", "")
            .replacen('{', "{\"kind\":\"app\",", 1),
        rt.replace(
            "\"version\":\"0.1.0\"",
            "\"version\":\"0.1.0\",\"name\":\"x\"",
        ),
        rt.replace("{\"deploy\":2,", "{")
            .replace('}', ",\"deploy\":2}"),
        rt.replace("\"deploy\":2", "\"deploy\":2.0"),
        "[]".into(),
        "not json".into(),
    ];
    for text in bad {
        assert_ne!(text, good);
        assert_ne!(text, rt);
        assert!(
            matches!(Leaf::parse(text.as_bytes()), Err(AttestError::Format(_))),
            "accepted {text}"
        );
    }
    assert!(Leaf::parse(good.as_bytes()).is_ok());
    assert!(Leaf::parse(rt.as_bytes()).is_ok());
}

#[test]
fn roots_match_the_reference_computation() {
    assert_eq!(DeploymentLog::new().head().root, mth(&[]));
    assert_eq!(DeploymentLog::new().head().size, 0);
    for n in [1usize, 2, 3, 7] {
        let mut log = DeploymentLog::new();
        let head = log.append(&runtime("0.1.0"), &apps(n - 1)).unwrap();
        assert_eq!(head.size, n as u64);
        assert_eq!(head.root, mth(&items(&log)), "{n} leaves");
        assert_eq!(head, log.head());
    }
    // The domain separation is what makes a one-leaf root differ from
    // the plain hash of the leaf.
    let mut log = DeploymentLog::new();
    log.append(&runtime("0.1.0"), &[]).unwrap();
    assert_ne!(log.head().root, Sha256Digest::of(&items(&log)[0]).0);
}

#[test]
fn inclusion_proofs_verify_and_refuse_changes() {
    for n in [1usize, 2, 3, 4, 5, 7, 8, 9, 13] {
        let mut log = DeploymentLog::new();
        log.append(&runtime("0.1.0"), &apps(n - 1)).unwrap();
        let head = log.head();
        let leaves = items(&log);
        for (i, leaf) in leaves.iter().enumerate() {
            let index = i as u64;
            let proof = log.inclusion_proof(index).unwrap();
            assert!(verify_inclusion(&head, index, leaf, &proof), "{i} of {n}");

            let mut changed = leaf.clone();
            changed.push(b' ');
            assert!(!verify_inclusion(&head, index, &changed, &proof));
            for k in 0..proof.len() {
                let mut p = proof.clone();
                flip(&mut p[k]);
                assert!(!verify_inclusion(&head, index, leaf, &p));
            }
            if n > 1 {
                let other = (index + 1) % n as u64;
                assert!(!verify_inclusion(&head, other, leaf, &proof));
            }
            assert!(!verify_inclusion(&head, n as u64, leaf, &proof));
            let mut root = head;
            flip(&mut root.root);
            assert!(!verify_inclusion(&root, index, leaf, &proof));
            let mut p = proof.clone();
            p.push([0; 32]);
            assert!(!verify_inclusion(&head, index, leaf, &p));
        }
    }
}

#[test]
fn huge_or_empty_heads_are_refused_without_panics() {
    let leaf = b"x";
    for size in [0, u64::MAX, u64::MAX / 2 + 1, u64::MAX / 2] {
        let head = TreeHead {
            root: [7; 32],
            size,
        };
        for index in [0, size.saturating_sub(1), u64::MAX] {
            assert!(!verify_inclusion(&head, index, leaf, &[[0; 32]; 3]));
            assert!(!verify_inclusion(&head, index, leaf, &[]));
        }
        let small = TreeHead {
            root: [7; 32],
            size: 3,
        };
        assert!(!verify_consistency(&small, &head, &[[0; 32]; 2]));
        assert!(!verify_consistency(&head, &small, &[]));
    }
}

/// deploy 1: runtime + 2 apps (3 leaves), deploy 2: runtime + 1 app
/// (5), deploy 3: runtime + 3 apps (9). `swap` changes deploy 2's app.
fn three_deploys(swap: bool) -> (DeploymentLog, Vec<TreeHead>) {
    let mut log = DeploymentLog::new();
    let mut heads = Vec::new();
    heads.push(log.append(&runtime("0.1.0"), &apps(2)).unwrap());
    let two = app("hello", if swap { b"evil" } else { b"code" });
    heads.push(log.append(&runtime("0.1.0"), &[two]).unwrap());
    heads.push(log.append(&runtime("0.1.1"), &apps(3)).unwrap());
    (log, heads)
}

#[test]
fn consistency_from_every_earlier_size() {
    let (log, heads) = three_deploys(false);
    assert_eq!(heads.iter().map(|h| h.size).collect::<Vec<_>>(), [3, 5, 9]);
    assert_eq!((log.deploy(), log.first()), (3, 5));
    let leaves = items(&log);
    let now = log.head();
    for m in 1..=now.size {
        let earlier = TreeHead {
            root: mth(&leaves[..m as usize]),
            size: m,
        };
        let doc = log.manifest(Some(m)).unwrap();
        let c = doc.consistency.as_ref().unwrap();
        assert_eq!(c.from, m);
        assert!(verify_consistency(&earlier, &now, &c.proof), "from {m}");
        doc.verify_consistency(&earlier).unwrap();
        if m < now.size {
            let mut wrong = earlier;
            flip(&mut wrong.root);
            assert!(doc.verify_consistency(&wrong).is_err());
            if !c.proof.is_empty() {
                let mut p = c.proof.clone();
                flip(&mut p[0]);
                assert!(!verify_consistency(&earlier, &now, &p));
            }
            // Without a proof, or with one from another size, no answer.
            let bare = log.manifest(None).unwrap();
            assert!(bare
                .verify_consistency(&earlier)
                .unwrap_err()
                .contains("no consistency proof"));
            let other = log.manifest(Some(m % (now.size - 1) + 1)).unwrap();
            if other.consistency.as_ref().unwrap().from != m {
                assert!(other.verify_consistency(&earlier).is_err());
            }
        }
    }
    // Heads recorded at each deploy agree with the reference.
    for h in &heads {
        assert_eq!(h.root, mth(&leaves[..h.size as usize]));
    }
    let empty = DeploymentLog::new().head();
    log.manifest(None)
        .unwrap()
        .verify_consistency(&empty)
        .unwrap();
    assert!(verify_consistency(&empty, &now, &[]));
}

#[test]
fn a_rewritten_history_is_not_consistent() {
    let (honest, seen) = three_deploys(false);
    let (rewritten, _) = three_deploys(true);
    // Same sizes throughout, different deploy 2, identical deploy 3
    // ("swapped and swapped back").
    assert_eq!(honest.head().size, rewritten.head().size);
    assert_ne!(honest.head().root, rewritten.head().root);
    // Deploy 1's head is still consistent: that part was not touched.
    let doc = rewritten.manifest(Some(seen[0].size)).unwrap();
    doc.verify_consistency(&seen[0]).unwrap();
    // The head seen after deploy 2 (before the swap) is not.
    let doc = rewritten.manifest(Some(seen[1].size)).unwrap();
    let err = doc.verify_consistency(&seen[1]).unwrap_err();
    assert!(err.contains("rewritten"), "{err}");
    let c = doc.consistency.as_ref().unwrap();
    assert!(!verify_consistency(&seen[1], &doc.tree, &c.proof));
    // Nor is the final one (same size, other root).
    let err = doc.verify_consistency(&seen[2]).unwrap_err();
    assert!(err.contains("rewritten"), "{err}");
    // The rewritten log's manifest is itself well-formed: only the
    // consistency check catches it.
    doc.verify().unwrap();
}

#[test]
fn shrinking_and_bad_since_are_refused() {
    let (log, heads) = three_deploys(false);
    let mut short = DeploymentLog::new();
    short.append(&runtime("0.1.0"), &apps(2)).unwrap();
    let err = short
        .manifest(None)
        .unwrap()
        .verify_consistency(&heads[2])
        .unwrap_err();
    assert!(err.contains("the log shrank"), "{err}");
    for m in [0, 10, u64::MAX] {
        assert!(
            matches!(log.manifest(Some(m)), Err(AttestError::Format(_))),
            "{m}"
        );
    }
    assert!(DeploymentLog::new().manifest(None).is_err());
}

#[test]
fn append_orders_apps_and_refuses_duplicate_names() {
    let mut log = DeploymentLog::new();
    let mut given = apps(3);
    given.reverse();
    log.append(&runtime("0.1.0"), &given).unwrap();
    let deployment = log.manifest(None).unwrap().verify().unwrap();
    let names: Vec<_> = deployment.apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["app00", "app01", "app02"]);
    assert_eq!(deployment.deploy, 1);
    assert_eq!(deployment.runtime, runtime("0.1.0"));

    let before = log.head();
    let dup = [app("a", b"1"), app("b", b"2"), app("a", b"3")];
    assert!(matches!(
        log.append(&runtime("0.1.0"), &dup),
        Err(AttestError::Format(_))
    ));
    assert_eq!(log.head(), before);
    assert_eq!((log.deploy(), log.first()), (1, 0));
}

#[test]
fn manifest_json_round_trips() {
    let mut log = DeploymentLog::new();
    log.append(&runtime("0.1.0"), &apps(1)).unwrap();
    log.append(&runtime("0.1.0"), &[app("hello", b"code")])
        .unwrap();
    let doc = log.manifest(Some(2)).unwrap();
    let json = doc.to_json();
    assert!(
        json.starts_with("{\"apps\":[{\"index\":3,\"leaf\":\"{\\\"code\\\":"),
        "{json}"
    );
    let tail = format!(
        "\"deploy\":2,\"first\":2,\"format\":\"warden-manifest/1\",\
         \"runtime\":{{\"index\":2,\"leaf\":{},\"proof\":[\"{}\",\"{}\"]}},\
         \"tree\":{{\"root\":\"{}\",\"size\":4}}}}",
        serde_json::to_string(&doc.runtime.leaf).unwrap(),
        hex::encode(doc.runtime.proof[0]),
        hex::encode(doc.runtime.proof[1]),
        hex::encode(log.head().root)
    );
    assert!(json.ends_with(&tail), "{json}");
    assert!(json.contains(&format!(
        "\"consistency\":{{\"from\":2,\"proof\":[\"{}\"]}}",
        hex::encode(doc.consistency.as_ref().unwrap().proof[0])
    )));
    assert_eq!(ManifestDoc::from_json(&json).unwrap(), doc);

    let bare = log.manifest(None).unwrap();
    assert!(!bare.to_json().contains("consistency"));
    assert_eq!(ManifestDoc::from_json(&bare.to_json()).unwrap(), bare);

    let extra = json.replacen("{\"apps\"", "{\"extra\":1,\"apps\"", 1);
    assert!(ManifestDoc::from_json(&extra).is_err());
    let short = json.replacen(&hex::encode(doc.runtime.proof[0]), "abcd", 1);
    assert!(ManifestDoc::from_json(&short).is_err());
    assert!(ManifestDoc::from_json("{}").is_err());
}

/// Verifies `doc`, expecting it refused with a reason containing each of
/// `expect`.
fn refused(doc: &ManifestDoc, expect: &[&str]) -> Vec<String> {
    let why = doc.verify().unwrap_err();
    for e in expect {
        assert!(why.iter().any(|w| w.contains(e)), "no `{e}` in {why:#?}");
    }
    why
}

#[test]
fn verify_accepts_a_real_manifest_and_reports_tampering() {
    let (log, heads) = three_deploys(false);
    let doc = log.manifest(None).unwrap();
    let ok = doc.verify().unwrap();
    assert_eq!(ok.deploy, 3);
    assert_eq!(ok.tree, heads[2]);
    assert_eq!(ok.runtime, runtime("0.1.1"));
    assert_eq!(ok.apps, {
        let mut a = apps(3);
        a.iter_mut().for_each(|a| a.namespaces.sort());
        a
    });
    // Through JSON too.
    ManifestDoc::from_json(&doc.to_json())
        .unwrap()
        .verify()
        .unwrap();

    // A tampered leaf: app01's code digest changed.
    let mut t = doc.clone();
    let code = Sha256Digest::of(b"code").to_string();
    t.apps[1].leaf = t.apps[1]
        .leaf
        .replace(&code, &Sha256Digest::of(b"evil").to_string());
    let why = refused(
        &t,
        &["app `app01` (leaf 7): inclusion proof does not lead to the tree head"],
    );
    assert_eq!(why.len(), 1, "{why:#?}");

    // A missing app (the last one, and one in the middle).
    let mut t = doc.clone();
    t.apps.pop();
    refused(&t, &["the tree has 9 leaves"]);
    let mut t = doc.clone();
    t.apps.remove(1);
    refused(
        &t,
        &[
            "app `app02` (leaf 8): expected at leaf 7",
            "the tree has 9 leaves",
        ],
    );

    // An extra leaf: a copy of the last app, and an invented one.
    let mut t = doc.clone();
    t.apps.push(t.apps[2].clone());
    refused(
        &t,
        &[
            "expected at leaf 9",
            "does not come after `app02`",
            "the tree has 9 leaves",
        ],
    );
    let mut t = doc.clone();
    let mut extra = t.apps[2].clone();
    extra.index = 9;
    extra.leaf = String::from_utf8(
        Leaf::App {
            deploy: 3,
            app: app("zed", b"code"),
        }
        .to_bytes(),
    )
    .unwrap();
    t.apps.push(extra);
    refused(
        &t,
        &[
            "app `zed` (leaf 9): inclusion proof",
            "the tree has 9 leaves",
        ],
    );

    // A non-canonical leaf: whitespace added.
    let mut t = doc.clone();
    t.apps[0].leaf = t.apps[0].leaf.replacen(",", ", ", 1);
    refused(
        &t,
        &[
            "app entry 1 (leaf 6): leaf is not in canonical form",
            "(leaf 6): inclusion proof",
        ],
    );

    // A leaf of another deploy, with a real proof for its real place.
    let mut t = doc.clone();
    t.apps[0] = ManifestLeaf {
        index: 2,
        leaf: log.leaf_text(2).unwrap(),
        proof: log.inclusion_proof(2).unwrap(),
    };
    refused(
        &t,
        &[
            "app `app01` (leaf 2): belongs to deploy 1, not deploy 3",
            "expected at leaf 6",
        ],
    );
    let mut t = doc.clone();
    t.runtime = ManifestLeaf {
        index: 3,
        leaf: log.leaf_text(3).unwrap(),
        proof: log.inclusion_proof(3).unwrap(),
    };
    refused(
        &t,
        &[
            "runtime (leaf 3): is not at `first`",
            "belongs to deploy 2, not deploy 3",
        ],
    );

    // A wrong `first`.
    let mut t = doc.clone();
    t.first = 4;
    refused(
        &t,
        &[
            "runtime (leaf 5): is not at `first` (leaf 4)",
            "expected at leaf 5",
            "the tree has 9 leaves",
        ],
    );

    // A wrong tree head, format and deploy number.
    let mut t = doc.clone();
    flip(&mut t.tree.root);
    let why = refused(&t, &["runtime (leaf 5): inclusion proof"]);
    assert_eq!(why.len(), 4, "{why:#?}");
    let mut t = doc.clone();
    t.format = "warden-manifest/2".into();
    t.deploy = 2;
    refused(
        &t,
        &[
            "format is `warden-manifest/2`",
            "runtime (leaf 5): belongs to deploy 3, not deploy 2",
        ],
    );

    // An app leaf where the runtime leaf belongs.
    let mut t = doc.clone();
    t.runtime = t.apps[0].clone();
    refused(&t, &["is the leaf of app `app00`"]);

    // Absurd indices do not panic.
    let mut t = doc.clone();
    t.first = u64::MAX;
    t.apps[0].index = u64::MAX;
    t.tree.size = u64::MAX;
    refused(&t, &["the tree has"]);
}
