//! The deployment log of `warden serve`: one append-only RFC 9162 Merkle
//! tree for the life of the process, holding what ran in every deploy.
//!
//! Each deploy appends a runtime leaf (warden's executable and version) and
//! then one leaf per app in name order (its code, canonical policy, route
//! and sealed namespaces). The [`ManifestDoc`] served at
//! `/.well-known/warden/manifest` carries the current deploy's leaves with
//! inclusion proofs against the tree head, and on request a consistency
//! proof from an earlier tree head, so a client that remembers a head can
//! tell whether the history it saw was later rewritten.
//!
//! Leaves are canonical JSON (keys in byte order, no whitespace, serde_json
//! string escaping) and hashed as bytes: leaf hash SHA-256(0x00‖leaf), node
//! hash SHA-256(0x01‖left‖right), computed by `ct-merkle`.

use crate::measure::{RuntimeMeasurement, Sha256Digest, TreeHead};
use crate::AttestError;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use serde::{Deserialize, Serialize};
use sha2_011::Sha256;

/// The `format` of a [`ManifestDoc`].
pub const MANIFEST_FORMAT: &str = "warden-manifest/1";

/// The largest tree size the verifiers accept; `ct-merkle` panics on
/// indices beyond it, and no real log comes near it.
const MAX_TREE_SIZE: u64 = u64::MAX / 2;

/// A 32-byte hash in a proof.
type Hash = [u8; 32];

/// What one app is, as a deploy's app leaf records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppMeasurement {
    /// The app's name, unique within a deploy.
    pub name: String,
    /// The route it serves, e.g. `/hello/...`.
    pub route: String,
    /// SHA-256 of its file as given (module, component or bundle).
    pub code: Sha256Digest,
    /// SHA-256 of its resolved policy's canonical form.
    pub policy: Sha256Digest,
    /// The sealed namespaces it may use; the leaf holds them sorted and
    /// without repeats, whatever order they are given in.
    pub namespaces: Vec<String>,
}

/// One leaf of the deployment log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// The first leaf of a deploy: the warden that runs it.
    Runtime {
        deploy: u64,
        runtime: RuntimeMeasurement,
    },
    /// One app of a deploy.
    App { deploy: u64, app: AppMeasurement },
}

/// The runtime leaf's JSON; fields in key byte order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeLeafJson {
    deploy: u64,
    exe: Sha256Digest,
    kind: String,
    version: String,
}

/// The app leaf's JSON; fields in key byte order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppLeafJson {
    code: Sha256Digest,
    deploy: u64,
    kind: String,
    name: String,
    namespaces: Vec<String>,
    policy: Sha256Digest,
    route: String,
}

/// Only `kind`, to choose which leaf shape to read.
#[derive(Deserialize)]
struct LeafKind {
    kind: String,
}

impl Leaf {
    /// The deploy this leaf belongs to.
    pub fn deploy(&self) -> u64 {
        match self {
            Leaf::Runtime { deploy, .. } | Leaf::App { deploy, .. } => *deploy,
        }
    }

    /// The canonical bytes that are hashed into the tree.
    pub fn to_bytes(&self) -> Vec<u8> {
        let json = match self {
            Leaf::Runtime { deploy, runtime } => serde_json::to_vec(&RuntimeLeafJson {
                deploy: *deploy,
                exe: runtime.exe,
                kind: "runtime".into(),
                version: runtime.version.clone(),
            }),
            Leaf::App { deploy, app } => {
                let mut namespaces = app.namespaces.clone();
                namespaces.sort();
                namespaces.dedup();
                serde_json::to_vec(&AppLeafJson {
                    code: app.code,
                    deploy: *deploy,
                    kind: "app".into(),
                    name: app.name.clone(),
                    namespaces,
                    policy: app.policy,
                    route: app.route.clone(),
                })
            }
        };
        // Structs of strings, numbers and string lists always serialise.
        json.expect("a leaf of strings and numbers serialises")
    }

    /// Reads a leaf, refusing any text that is not exactly what
    /// [`Leaf::to_bytes`] writes: a verifier hashes the bytes it was given,
    /// so two spellings of one leaf must not both be accepted.
    pub fn parse(bytes: &[u8]) -> Result<Leaf, AttestError> {
        let kind: LeafKind = serde_json::from_slice(bytes).map_err(|e| {
            AttestError::Format(format!("leaf is not a JSON object with a `kind`: {e}"))
        })?;
        let leaf = match kind.kind.as_str() {
            "runtime" => {
                let j: RuntimeLeafJson = serde_json::from_slice(bytes)
                    .map_err(|e| AttestError::Format(format!("runtime leaf: {e}")))?;
                Leaf::Runtime {
                    deploy: j.deploy,
                    runtime: RuntimeMeasurement {
                        exe: j.exe,
                        version: j.version,
                    },
                }
            }
            "app" => {
                let j: AppLeafJson = serde_json::from_slice(bytes)
                    .map_err(|e| AttestError::Format(format!("app leaf: {e}")))?;
                Leaf::App {
                    deploy: j.deploy,
                    app: AppMeasurement {
                        name: j.name,
                        route: j.route,
                        code: j.code,
                        policy: j.policy,
                        namespaces: j.namespaces,
                    },
                }
            }
            other => {
                return Err(AttestError::Format(format!(
                    "leaf kind `{other}` is neither `runtime` nor `app`"
                )))
            }
        };
        if leaf.to_bytes() != bytes {
            return Err(AttestError::Format(
                "leaf is not in canonical form (keys in byte order, no whitespace, \
                 lowercase hex, namespaces sorted without repeats)"
                    .into(),
            ));
        }
        Ok(leaf)
    }
}

/// The deployment log: one append-only Merkle tree for the life of the
/// process. Deploy numbers start at 1; each deploy appends its runtime leaf
/// and then its apps in name order.
#[derive(Clone, Debug, Default)]
pub struct DeploymentLog {
    tree: MemoryBackedTree<Sha256, Vec<u8>>,
    deploy: u64,
    first: u64,
}

impl DeploymentLog {
    /// An empty log (size 0, no deploy yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a deploy: its runtime leaf, then one leaf per app in name
    /// order. Refuses (and appends nothing) when two apps share a name.
    pub fn append(
        &mut self,
        runtime: &RuntimeMeasurement,
        apps: &[AppMeasurement],
    ) -> Result<TreeHead, AttestError> {
        let mut sorted: Vec<&AppMeasurement> = apps.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = sorted.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(AttestError::Format(format!(
                "two apps are named `{}`: app names must be unique in a deploy",
                pair[0].name
            )));
        }
        let deploy = self
            .deploy
            .checked_add(1)
            .ok_or_else(|| AttestError::Format("deploy numbers are exhausted".into()))?;
        self.deploy = deploy;
        self.first = self.tree.len();
        self.tree.push(
            Leaf::Runtime {
                deploy,
                runtime: runtime.clone(),
            }
            .to_bytes(),
        );
        for app in sorted {
            self.tree.push(
                Leaf::App {
                    deploy,
                    app: app.clone(),
                }
                .to_bytes(),
            );
        }
        Ok(self.head())
    }

    /// The current tree head (size 0 and SHA-256 of nothing before any deploy).
    pub fn head(&self) -> TreeHead {
        TreeHead {
            root: (*self.tree.root().as_bytes()).into(),
            size: self.tree.len(),
        }
    }

    /// The current deploy's number (0 before any deploy).
    pub fn deploy(&self) -> u64 {
        self.deploy
    }

    /// The index of the current deploy's runtime leaf.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The current deployment with inclusion proofs, and with `since =
    /// Some(m)` a consistency proof from the tree of size `m` to this one.
    pub fn manifest(&self, since: Option<u64>) -> Result<ManifestDoc, AttestError> {
        if self.deploy == 0 {
            return Err(AttestError::Format("nothing has been deployed yet".into()));
        }
        let size = self.tree.len();
        let consistency = match since {
            None => None,
            Some(0) => {
                return Err(AttestError::Format(
                    "a consistency proof starts from a tree of at least one leaf, not 0".into(),
                ))
            }
            Some(m) if m > size => {
                return Err(AttestError::Format(format!(
                    "the log has {size} leaves; there is no earlier tree of {m}"
                )))
            }
            Some(m) => Some(ManifestConsistency {
                from: m,
                proof: self.consistency_proof(m)?,
            }),
        };
        let entry = |index: u64| -> Result<ManifestLeaf, AttestError> {
            Ok(ManifestLeaf {
                index,
                leaf: self.leaf_text(index)?,
                proof: self.inclusion_proof(index)?,
            })
        };
        Ok(ManifestDoc {
            apps: (self.first + 1..size)
                .map(entry)
                .collect::<Result<_, _>>()?,
            consistency,
            deploy: self.deploy,
            first: self.first,
            format: MANIFEST_FORMAT.into(),
            runtime: entry(self.first)?,
            tree: self.head(),
        })
    }

    /// The leaf at `index` as text (leaves are always UTF-8 JSON).
    fn leaf_text(&self, index: u64) -> Result<String, AttestError> {
        let bytes = usize::try_from(index)
            .ok()
            .and_then(|i| self.tree.get(i))
            .ok_or_else(|| AttestError::Format(format!("the log has no leaf {index}")))?;
        String::from_utf8(bytes.clone())
            .map_err(|_| AttestError::Format(format!("leaf {index} is not UTF-8")))
    }

    /// The inclusion proof of leaf `index` in the current tree.
    fn inclusion_proof(&self, index: u64) -> Result<Vec<Hash>, AttestError> {
        let i = usize::try_from(index)
            .ok()
            .filter(|_| index < self.tree.len())
            .ok_or_else(|| AttestError::Format(format!("the log has no leaf {index}")))?;
        Ok(split_hashes(self.tree.prove_inclusion(i).as_bytes()))
    }

    /// The consistency proof from the tree of size `m` (1..=size).
    fn consistency_proof(&self, m: u64) -> Result<Vec<Hash>, AttestError> {
        let size = self.tree.len();
        let additions = size
            .checked_sub(m)
            .filter(|_| m > 0)
            .and_then(|a| usize::try_from(a).ok())
            .ok_or_else(|| {
                AttestError::Format(format!("no consistency proof from size {m} to {size}"))
            })?;
        Ok(split_hashes(
            self.tree.prove_consistency(additions).as_bytes(),
        ))
    }
}

/// Cuts concatenated 32-byte hashes into entries.
fn split_hashes(bytes: &[u8]) -> Vec<Hash> {
    bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect()
}

/// `ct-merkle`'s view of a tree head.
fn root_hash(head: &TreeHead) -> RootHash<Sha256> {
    RootHash::new(head.root.into(), head.size)
}

/// The root of the empty tree, SHA-256 of nothing.
fn empty_root() -> Hash {
    use sha2_011::Digest as _;
    Sha256::digest(b"").into()
}

/// Whether `proof` shows `leaf` at `index` in the tree `head` (RFC 9162
/// §2.1.3.2).
pub fn verify_inclusion(head: &TreeHead, index: u64, leaf: &[u8], proof: &[Hash]) -> bool {
    if head.size == 0 || head.size > MAX_TREE_SIZE || index >= head.size {
        return false;
    }
    let Ok(proof) = InclusionProof::<Sha256>::try_from_bytes(proof.concat()) else {
        return false;
    };
    root_hash(head)
        .verify_inclusion(&leaf, index, &proof)
        .is_ok()
}

/// Whether `proof` shows the tree `new` extends the tree `old` by appending
/// only (RFC 9162 §2.1.4.2). Equal sizes need equal roots and an empty proof.
pub fn verify_consistency(old: &TreeHead, new: &TreeHead, proof: &[Hash]) -> bool {
    if old.size > new.size || new.size > MAX_TREE_SIZE {
        return false;
    }
    if old.size == 0 {
        return proof.is_empty() && old.root == empty_root();
    }
    let Ok(proof) = ConsistencyProof::<Sha256>::try_from_bytes(proof.concat()) else {
        return false;
    };
    root_hash(new)
        .verify_consistency(&root_hash(old), &proof)
        .is_ok()
}

/// One leaf of a [`ManifestDoc`] with its inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestLeaf {
    /// The leaf's index in the tree.
    pub index: u64,
    /// The exact leaf bytes (canonical JSON), carried as a string so a
    /// verifier hashes exactly these.
    pub leaf: String,
    /// The audit path, in RFC 9162 order.
    #[serde(with = "hex32_list")]
    pub proof: Vec<Hash>,
}

/// A consistency proof from the tree of size `from` to the manifest's tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestConsistency {
    /// The earlier tree's size.
    pub from: u64,
    /// The proof's hashes, in RFC 9162 order.
    #[serde(with = "hex32_list")]
    pub proof: Vec<Hash>,
}

/// The manifest document: the current deployment, each leaf with its
/// inclusion proof against `tree`. Fields are in JSON key byte order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestDoc {
    /// The apps' leaves, at `first + 1 ..` in name order.
    pub apps: Vec<ManifestLeaf>,
    /// Present only when a consistency proof was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ManifestConsistency>,
    /// The current deploy's number.
    pub deploy: u64,
    /// The index of the current deploy's runtime leaf.
    pub first: u64,
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The runtime leaf.
    pub runtime: ManifestLeaf,
    /// The tree head every proof leads to.
    pub tree: TreeHead,
}

/// What a verified [`ManifestDoc`] says ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub deploy: u64,
    pub tree: TreeHead,
    pub runtime: RuntimeMeasurement,
    /// In name order.
    pub apps: Vec<AppMeasurement>,
}

impl ManifestDoc {
    /// The document as compact JSON, keys in byte order.
    pub fn to_json(&self) -> String {
        // Only strings, numbers, lists and structs: always serialises.
        serde_json::to_string(self).expect("a manifest of strings and numbers serialises")
    }

    /// Reads a document; unknown keys are refused.
    pub fn from_json(text: &str) -> Result<Self, AttestError> {
        serde_json::from_str(text)
            .map_err(|e| AttestError::Format(format!("not a warden manifest: {e}")))
    }

    /// Checks every proof and leaf against `tree`, collecting one reason per
    /// failed check, and returns the deployment when all pass.
    pub fn verify(&self) -> Result<Deployment, Vec<String>> {
        let mut why = Vec::new();
        if self.format != MANIFEST_FORMAT {
            why.push(format!(
                "format is `{}`, expected `{MANIFEST_FORMAT}`",
                self.format
            ));
        }
        if self.deploy == 0 {
            why.push("deploy 0 is not a deploy (they are numbered from 1)".into());
        }

        // The runtime leaf.
        let rt = &self.runtime;
        let what = format!("runtime (leaf {})", rt.index);
        if rt.index != self.first {
            why.push(format!("{what}: is not at `first` (leaf {})", self.first));
        }
        self.check_entry(rt, &what, &mut why);
        let runtime = match Leaf::parse(rt.leaf.as_bytes()) {
            Ok(Leaf::Runtime { deploy, runtime }) => {
                self.check_deploy(deploy, &what, &mut why);
                Some(runtime)
            }
            Ok(Leaf::App { app, .. }) => {
                why.push(format!("{what}: is the leaf of app `{}`", app.name));
                None
            }
            Err(e) => {
                why.push(format!("{what}: {e}"));
                None
            }
        };

        // The apps, right after it and in name order.
        let mut apps = Vec::new();
        for (i, entry) in self.apps.iter().enumerate() {
            let parsed = Leaf::parse(entry.leaf.as_bytes());
            let what = match &parsed {
                Ok(Leaf::App { app, .. }) => format!("app `{}` (leaf {})", app.name, entry.index),
                _ => format!("app entry {} (leaf {})", i + 1, entry.index),
            };
            let expected = self
                .first
                .checked_add(1)
                .and_then(|f| f.checked_add(i as u64));
            if expected != Some(entry.index) {
                why.push(format!(
                    "{what}: expected at leaf {} (apps follow the runtime leaf without gaps)",
                    expected.map_or("beyond the tree".into(), |e| e.to_string())
                ));
            }
            self.check_entry(entry, &what, &mut why);
            match parsed {
                Ok(Leaf::App { deploy, app }) => {
                    self.check_deploy(deploy, &what, &mut why);
                    if let Some(prev) = apps.last().map(|a: &AppMeasurement| &a.name) {
                        if *prev >= app.name {
                            why.push(format!(
                                "{what}: does not come after `{prev}` in name order"
                            ));
                        }
                    }
                    apps.push(app);
                }
                Ok(Leaf::Runtime { .. }) => {
                    why.push(format!("{what}: is a runtime leaf, not an app's"));
                }
                Err(e) => {
                    why.push(format!("{what}: {e}"));
                }
            }
        }

        // The current deployment is the tree's tail.
        let end = self
            .first
            .checked_add(1)
            .and_then(|f| f.checked_add(self.apps.len() as u64));
        if end != Some(self.tree.size) {
            why.push(format!(
                "the tree has {} leaves, but the deployment (runtime at leaf {} and {} apps) \
                 does not end there: leaves are missing or extra",
                self.tree.size,
                self.first,
                self.apps.len()
            ));
        }

        match runtime {
            Some(runtime) if why.is_empty() => Ok(Deployment {
                deploy: self.deploy,
                tree: self.tree,
                runtime,
                apps,
            }),
            _ => Err(why),
        }
    }

    /// The inclusion check of one entry.
    fn check_entry(&self, entry: &ManifestLeaf, what: &str, why: &mut Vec<String>) {
        if !verify_inclusion(&self.tree, entry.index, entry.leaf.as_bytes(), &entry.proof) {
            why.push(format!(
                "{what}: inclusion proof does not lead to the tree head"
            ));
        }
    }

    /// The check that a leaf belongs to this deploy.
    fn check_deploy(&self, deploy: u64, what: &str, why: &mut Vec<String>) {
        if deploy != self.deploy {
            why.push(format!(
                "{what}: belongs to deploy {deploy}, not deploy {}",
                self.deploy
            ));
        }
    }

    /// Checks that this document's tree extends `earlier` (a head seen
    /// before): equal sizes need equal roots, a larger earlier tree means the
    /// log shrank, and otherwise the consistency proof (from
    /// `earlier.size`) must verify.
    pub fn verify_consistency(&self, earlier: &TreeHead) -> Result<(), String> {
        let (old, new) = (earlier.size, self.tree.size);
        if old > new {
            return Err(format!(
                "the log shrank: a tree head seen earlier has {old} leaves, this one {new}"
            ));
        }
        if old == new {
            return if earlier.root == self.tree.root {
                Ok(())
            } else {
                Err(format!(
                    "the tree of {new} leaves has a different root than the one seen earlier: \
                     the log's history was rewritten"
                ))
            };
        }
        if old == 0 {
            return if earlier.root == empty_root() {
                Ok(())
            } else {
                Err("the earlier tree head has 0 leaves but not the empty tree's root".into())
            };
        }
        let Some(c) = &self.consistency else {
            return Err(format!(
                "the manifest carries no consistency proof; ask for one from size {old}"
            ));
        };
        if c.from != old {
            return Err(format!(
                "the consistency proof is from size {}, not from the earlier tree's {old}",
                c.from
            ));
        }
        if verify_consistency(earlier, &self.tree, &c.proof) {
            Ok(())
        } else {
            Err(format!(
                "the tree of {new} leaves does not extend the one of {old} seen earlier: \
                 the log's history was rewritten"
            ))
        }
    }
}

/// A list of 32-byte hashes as 64-hex-digit strings in JSON.
mod hex32_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hashes: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(hashes.iter().map(hex::encode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(text, &mut out).map_err(|_| {
                    serde::de::Error::custom(format!("`{text}` is not 64 hex digits"))
                })?;
                Ok(out)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
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
}
