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
mod tests;
