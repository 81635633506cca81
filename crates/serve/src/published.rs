//! Deployments shared by several `warden serve` nodes through etcd.
//!
//! `warden deploy` publishes a manifest under the cluster's prefix: its
//! text, the path it was read from (relative paths in it resolve against
//! that directory on every node, as they did where it was deployed from),
//! and each app's component (or bundle) as chunks, by SHA-256. Every node
//! reads the newest publication at start and whenever its key changes,
//! writes the components into a directory of its own by digest (checked
//! against the digest), and swaps the apps in as for a local change.
//!
//! A publication is authenticated: an HMAC-SHA256 under a key derived from
//! the cluster's root key (the sealed store's, which every node and the
//! deployer hold) covers its JSON, and the JSON names every component by
//! digest. Someone who can write to etcd but has no root key cannot make
//! the nodes run other code; a publication that does not authenticate is
//! refused and the nodes keep serving what they have. Each publication
//! carries a serial above the previous one's (and at least its time in
//! milliseconds); a node refuses one older than the one it serves (an old
//! publication put back).
//!
//! Keys, under `PREFIX/`:
//! - `deploy/current`: the [`Envelope`]: the [`Publication`] as JSON and
//!   its MAC;
//! - `deploy/chunks/…`: the component bytes ([`warden_etcd::chunks`]).
//!
//! A publication replaces the previous one in one put; the chunks of
//! components no longer referenced are deleted after it. A node that reads
//! a publication whose chunks were just deleted (a deploy racing its
//! fetch) fails that redeploy and takes the newer one at its next look.

use crate::manifest::{AppSpec, Manifest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use warden_etcd::chunks::{self, ChunkRef};
use warden_etcd::{EtcdClient, EtcdError};
use warden_seal::RootKey;

/// The key publications are authenticated with, from the root key.
#[derive(Clone)]
pub struct DeployKey([u8; 32]);

impl DeployKey {
    pub fn new(root: &RootKey) -> DeployKey {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"warden-deploy/v1"), root.secret());
        let mut key = [0u8; 32];
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(b"publication", &mut key);
        DeployKey(key)
    }

    fn mac(&self) -> hmac::Hmac<Sha256> {
        use hmac::Mac;
        // HMAC takes keys of any length.
        <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }

    fn sign(&self, body: &[u8]) -> String {
        use hmac::Mac;
        let mut mac = self.mac();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn verify(&self, body: &[u8], tag_hex: &str) -> bool {
        use hmac::Mac;
        let Ok(tag) = hex::decode(tag_hex) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(&tag).is_ok()
    }
}

/// The publication's key, under the target's prefix.
pub const RECORD_KEY: &[u8] = b"deploy/current";
/// Where the components' chunks are, under the target's prefix.
pub const CHUNKS: &[u8] = b"deploy/chunks/";
const FORMAT: &str = "warden-deploy/1";

/// What `deploy/current` holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub format: String,
    /// The [`Publication`]'s JSON.
    pub publication: String,
    /// HMAC-SHA256 of `publication` under the deploy key, hex.
    pub mac: String,
}

/// What `warden deploy` publishes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Publication {
    /// Above the previous publication's: the previous one's plus one, or
    /// the deploy time in milliseconds since 1970 if that is more.
    pub serial: u64,
    /// The manifest's absolute path where it was deployed from.
    pub manifest_path: PathBuf,
    pub manifest: String,
    /// Each component file the manifest names, by its path as the manifest
    /// resolves it.
    pub components: BTreeMap<PathBuf, PublishedFile>,
}

/// One published file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublishedFile {
    /// `sha256:HEX` of the bytes.
    pub digest: String,
    /// The encoded [`ChunkRef`], hex.
    pub chunks: String,
}

/// Why publishing or reading a publication failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    Manifest(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Etcd(#[from] EtcdError),
    #[error("the published deployment at {key} is malformed: {detail}")]
    Malformed { key: String, detail: String },
    #[error("the published deployment at {key} does not authenticate under this root key: it was not published by `warden deploy` with the cluster's key (refused)")]
    Forged { key: String },
    #[error("the published deployment (serial {found}) is older than the one served (serial {serving}): refused")]
    Older { found: u64, serving: u64 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl PublishError {
    /// Whether the cluster could not be reached (rather than refusing).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, PublishError::Etcd(e) if e.is_transient())
    }
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A publication of `manifest_path`: reads it and every component it
/// names. Nothing is written.
fn prepare(manifest_path: &Path) -> Result<(Publication, Vec<Vec<u8>>), PublishError> {
    let manifest_path = std::path::absolute(manifest_path).map_err(|e| PublishError::Read {
        path: manifest_path.to_path_buf(),
        source: e,
    })?;
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| PublishError::Read {
        path: manifest_path.clone(),
        source: e,
    })?;
    let manifest = Manifest::parse(&manifest_path, &text)
        .map_err(|e| PublishError::Manifest(e.to_string()))?;
    let mut files = Vec::new();
    let mut components = BTreeMap::new();
    for app in &manifest.apps {
        if components.contains_key(&app.component) {
            continue;
        }
        let bytes = std::fs::read(&app.component).map_err(|e| PublishError::Read {
            path: app.component.clone(),
            source: e,
        })?;
        components.insert(
            app.component.clone(),
            PublishedFile {
                digest: digest_of(&bytes),
                chunks: String::new(),
            },
        );
        files.push(bytes);
    }
    let publication = Publication {
        serial: 0,
        manifest_path,
        manifest: text,
        components,
    };
    Ok((publication, files))
}

/// What a publish did.
pub struct Published {
    pub apps: usize,
    /// The etcd revision of the publication: nodes report it when they
    /// swap it in.
    pub revision: i64,
}

/// Publishes the manifest at `manifest_path` (already checked to load) and
/// its components, authenticated with `key`; deletes the chunks the
/// previous publication referenced.
pub fn publish(
    client: &EtcdClient,
    key: &DeployKey,
    manifest_path: &Path,
) -> Result<Published, PublishError> {
    let (mut publication, files) = prepare(manifest_path)?;
    let target = client.target();
    let chunks_prefix = target.key(CHUNKS);
    // One that does not authenticate is replaced, serials starting over.
    let previous = match read(client, key, 0) {
        Ok(previous) => previous,
        Err(PublishError::Forged { .. } | PublishError::Malformed { .. }) => None,
        Err(e) => return Err(e),
    };
    // Above the previous one's, and at least the time in milliseconds: a
    // publication that did not authenticate (its serial means nothing)
    // does not set the count back.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    publication.serial = (previous.as_ref().map_or(0, |(p, _)| p.serial) + 1).max(now);
    let mut written = Vec::new();
    for (file, bytes) in publication.components.values_mut().zip(&files) {
        match chunks::put(client, &chunks_prefix, bytes) {
            Ok(reference) => {
                file.chunks = hex::encode(reference.encode());
                written.push(reference);
            }
            Err(e) => {
                for reference in &written {
                    let _ = chunks::delete(client, &chunks_prefix, reference);
                }
                return Err(e.into());
            }
        }
    }
    let malformed = |e: serde_json::Error| PublishError::Malformed {
        key: String::from_utf8_lossy(&target.key(RECORD_KEY)).into_owned(),
        detail: e.to_string(),
    };
    let body = serde_json::to_string(&publication).map_err(malformed)?;
    let envelope = Envelope {
        format: FORMAT.into(),
        mac: key.sign(body.as_bytes()),
        publication: body,
    };
    let record = serde_json::to_vec(&envelope).map_err(malformed)?;
    let revision = match client.put(&target.key(RECORD_KEY), &record) {
        Ok(revision) => revision,
        Err(e) => {
            for reference in &written {
                let _ = chunks::delete(client, &chunks_prefix, reference);
            }
            return Err(e.into());
        }
    };
    if let Some((old, _)) = previous {
        for file in old.components.values() {
            if let Some(reference) = decode_ref(&file.chunks) {
                // Best effort: what is left is an orphan, not an error.
                let _ = chunks::delete(client, &chunks_prefix, &reference);
            }
        }
    }
    Ok(Published {
        apps: Manifest::parse(&publication.manifest_path, &publication.manifest)
            .map(|m| m.apps.len())
            .unwrap_or(0),
        revision,
    })
}

fn decode_ref(hex_ref: &str) -> Option<ChunkRef> {
    ChunkRef::decode(&hex::decode(hex_ref).ok()?)
}

/// The publication at `revision` (0: the newest) and the revision it was
/// written at, if there is one; it must authenticate under `key`.
fn read(
    client: &EtcdClient,
    deploy_key: &DeployKey,
    revision: i64,
) -> Result<Option<(Publication, i64)>, PublishError> {
    let key = client.target().key(RECORD_KEY);
    let (entry, _) = client.get(&key, revision)?;
    let Some(entry) = entry else {
        return Ok(None);
    };
    let malformed = |detail: String| PublishError::Malformed {
        key: String::from_utf8_lossy(&key).into_owned(),
        detail,
    };
    let envelope: Envelope =
        serde_json::from_slice(&entry.value).map_err(|e| malformed(e.to_string()))?;
    if envelope.format != FORMAT {
        return Err(malformed(format!(
            "format {:?}, this warden reads {FORMAT:?}",
            envelope.format
        )));
    }
    if !deploy_key.verify(envelope.publication.as_bytes(), &envelope.mac) {
        return Err(PublishError::Forged {
            key: String::from_utf8_lossy(&key).into_owned(),
        });
    }
    let publication: Publication =
        serde_json::from_str(&envelope.publication).map_err(|e| malformed(e.to_string()))?;
    Ok(Some((publication, entry.mod_revision)))
}

/// A node's view of the published deployment.
pub struct Subscription {
    client: EtcdClient,
    key: DeployKey,
    /// Where this node keeps the components it fetched, by digest.
    dir: PathBuf,
    /// The serial of the publication this node serves (0: none yet).
    serving: std::sync::atomic::AtomicU64,
}

impl Subscription {
    pub fn new(client: EtcdClient, key: DeployKey, dir: PathBuf) -> Subscription {
        Subscription {
            client,
            key,
            dir,
            serving: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Where the deployment comes from, for messages.
    pub fn location(&self) -> String {
        self.client.target().canonical()
    }

    /// The revision of the newest publication (0: none yet).
    pub fn revision(&self) -> Result<i64, PublishError> {
        let (entry, _) = self.client.get(&self.client.target().key(RECORD_KEY), 0)?;
        Ok(entry.map_or(0, |e| e.mod_revision))
    }

    /// The apps of the newest publication (none if nothing is published),
    /// their components fetched into this node's directory, and the
    /// publication's revision.
    pub fn apps(&self) -> Result<(Vec<AppSpec>, i64), PublishError> {
        let Some((publication, revision)) = read(&self.client, &self.key, 0)? else {
            return Ok((Vec::new(), 0));
        };
        use std::sync::atomic::Ordering;
        let serving = self.serving.load(Ordering::SeqCst);
        if publication.serial < serving {
            return Err(PublishError::Older {
                found: publication.serial,
                serving,
            });
        }
        let manifest = Manifest::parse(&publication.manifest_path, &publication.manifest)
            .map_err(|e| PublishError::Manifest(e.to_string()))?;
        let mut apps = manifest.apps;
        for app in &mut apps {
            let file = publication.components.get(&app.component).ok_or_else(|| {
                PublishError::Malformed {
                    key: String::from_utf8_lossy(&self.client.target().key(RECORD_KEY))
                        .into_owned(),
                    detail: format!("no component published for {}", app.component.display()),
                }
            })?;
            app.component = self.fetch(file, revision)?;
        }
        // Served from now on (the deployment built from these apps may
        // still fail to load: then the next one must be newer still).
        self.serving.fetch_max(publication.serial, Ordering::SeqCst);
        Ok((apps, revision))
    }

    /// The local copy of `file`, fetched at `revision` unless this node has
    /// it already.
    fn fetch(&self, file: &PublishedFile, revision: i64) -> Result<PathBuf, PublishError> {
        let hex_digest = file
            .digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| PublishError::Malformed {
                key: "deploy/current".into(),
                detail: format!("bad digest {:?}", file.digest),
            })?;
        let path = self.dir.join(format!("{hex_digest}.wasm"));
        if std::fs::read(&path).is_ok_and(|b| digest_of(&b) == file.digest) {
            return Ok(path);
        }
        let reference = decode_ref(&file.chunks).ok_or_else(|| PublishError::Malformed {
            key: "deploy/current".into(),
            detail: format!("bad chunk reference for {}", file.digest),
        })?;
        let chunks_prefix = self.client.target().key(CHUNKS);
        let bytes = chunks::get(&self.client, &chunks_prefix, &reference, revision)?;
        if digest_of(&bytes) != file.digest {
            return Err(PublishError::Malformed {
                key: "deploy/current".into(),
                detail: format!("the chunks of {} have another digest", file.digest),
            });
        }
        let write = |e| PublishError::Write {
            path: path.clone(),
            source: e,
        };
        std::fs::create_dir_all(&self.dir).map_err(write)?;
        // Written whole, then renamed: a reader never sees half a file.
        let partial = self
            .dir
            .join(format!(".{hex_digest}.{}", std::process::id()));
        std::fs::write(&partial, &bytes).map_err(write)?;
        std::fs::rename(&partial, &path).map_err(write)?;
        Ok(path)
    }
}
