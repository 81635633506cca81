//! Sealed bundles: one file holding a workload's code (a core module or a
//! component), its policy in canonical form, and the contents of its
//! virtual mounts, so that the workload can be moved, measured and run as
//! one thing. The same inputs always give the same bytes, and the SHA-256
//! of the whole file is the workload's identity: `warden inspect` prints
//! it, `warden run --expect-digest` checks it, attestation measures it.
//!
//! The format is specified byte for byte in `docs/bundle.md`. In short:
//! a magic and a version, then length-prefixed sections in a fixed order
//! (policy, code, one tree per bundled mount by guest path), then an end
//! section holding the SHA-256 of everything before it, which [`open`]
//! checks before it parses anything else. That digest catches corruption
//! and a careless edit; it is no signature (anyone can compute it), which
//! is why the identity that matters is the file's digest, checked against
//! what the user or a verifier expects.
//!
//! The format is our own rather than, say, `tar` with normalised headers:
//! tar has several encodings for one entry (long names, pax records,
//! padding), so "the same tree, the same bytes" would rest on how one
//! crate writes it, and a verifier in another language would need to
//! reproduce that. A length-prefixed layout has exactly one encoding and
//! fits in a page of specification.

#![forbid(unsafe_code)]

mod tree;

pub use tree::{Entry, EntryKind, Tree, TreeCounts};

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use warden_policy::{MountSource, Policy, PolicyError};

/// The first bytes of every bundle: `\x89warden\n` (the high byte and the
/// newline catch a transfer that mangles binary files, as PNG's do).
pub const MAGIC: [u8; 8] = *b"\x89warden\n";
/// The format version this crate writes and reads.
pub const VERSION: u32 = 1;

const SECTION_POLICY: u8 = b'P';
const SECTION_CODE: u8 = b'C';
const SECTION_TREE: u8 = b'T';
const SECTION_END: u8 = b'E';
/// Tag, length and SHA-256 of the end section.
const END_LEN: usize = 1 + 8 + 32;

/// Why a bundle could not be built or opened. Each is one line.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("not a warden bundle (it does not start with the bundle magic)")]
    NotBundle,
    #[error("bundle format version {0} is not supported (this warden reads version {VERSION})")]
    Version(u32),
    #[error("bundle is truncated or corrupted (no end section)")]
    Truncated,
    #[error("bundle is corrupted (digest mismatch)")]
    DigestMismatch,
    #[error("bundle is malformed: {0}")]
    Malformed(String),
    #[error("bundle policy: {0}")]
    Policy(#[from] PolicyError),
    #[error("cannot read {path}: {reason}")]
    Capture { path: PathBuf, reason: String },
}

/// What the code of a bundle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    /// A core module (`wasm32-wasip1`), run by warden's kernel.
    Module,
    /// A WebAssembly component (`wasm32-wasip2`).
    Component,
}

impl CodeKind {
    fn byte(self) -> u8 {
        match self {
            CodeKind::Module => 0,
            CodeKind::Component => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CodeKind::Module => "module",
            CodeKind::Component => "component",
        }
    }
}

/// An opened bundle: everything in it, checked.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The policy, parsed from its canonical form.
    pub policy: Policy,
    /// The canonical form as stored.
    pub policy_bytes: Vec<u8>,
    pub kind: CodeKind,
    /// The code: a binary module or component (never WAT text).
    pub code: Arc<[u8]>,
    /// The bundled mounts' trees, by guest path.
    pub trees: BTreeMap<String, Arc<Tree>>,
    /// `sha256:HEX` of the whole file: the workload's identity.
    pub digest: String,
}

impl Bundle {
    /// `sha256:HEX` of the canonical policy.
    pub fn policy_digest(&self) -> String {
        sha256_text(&self.policy_bytes)
    }

    /// `sha256:HEX` of the code.
    pub fn code_digest(&self) -> String {
        sha256_text(&self.code)
    }
}

/// `sha256:` and the lowercase hex SHA-256 of `bytes`: how warden writes
/// every digest.
pub fn sha256_text(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Whether `bytes` start like a bundle (the magic), whatever follows.
pub fn is_bundle(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_section(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The policy a bundle holds for `policy`: host paths made absolute (as
/// given, relative ones against the current directory, without resolving
/// symlinks), and each virtual mount captured into a tree and replaced by
/// a bundled mount naming the tree's digest. Returns the trees by guest
/// path.
pub fn capture(policy: &Policy) -> Result<(Policy, BTreeMap<String, Tree>), BundleError> {
    let mut sealed = policy.clone();
    let mut trees = BTreeMap::new();
    for mount in &mut sealed.mounts {
        match &mount.source {
            MountSource::Host { path, read_only } => {
                mount.source = MountSource::Host {
                    path: absolute(path)?,
                    read_only: *read_only,
                };
            }
            MountSource::Virtual { path } => {
                let tree = Tree::capture(path)?;
                mount.source = MountSource::Bundled {
                    digest: tree.digest(),
                };
                trees.insert(mount.guest.clone(), tree);
            }
            MountSource::Sealed { .. } | MountSource::Bundled { .. } => {}
        }
    }
    Ok((sealed.canonicalized(), trees))
}

fn absolute(path: &Path) -> Result<PathBuf, BundleError> {
    host_path(path).map_err(|e| BundleError::Capture {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// How a bundle writes a host path: absolute (a relative one against the
/// current directory), without `.` components, repeated or trailing
/// slashes; `..` and symlinks are kept as given, since resolving them
/// could change which directory is meant.
pub fn host_path(path: &Path) -> std::io::Result<PathBuf> {
    Ok(std::path::absolute(path)?.components().collect())
}

/// Writes the bundle for `policy` (as returned by [`capture`]: no virtual
/// mounts, a tree for each bundled mount) and `code`.
pub fn write(
    policy: &Policy,
    kind: CodeKind,
    code: &[u8],
    trees: &BTreeMap<String, Tree>,
) -> Result<Vec<u8>, BundleError> {
    check_mounts(
        policy,
        |guest| trees.get(guest).map(Tree::digest),
        trees.len(),
    )?;
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    put_section(&mut out, SECTION_POLICY, &policy.to_canonical()?);
    let mut code_payload = Vec::with_capacity(code.len() + 1);
    code_payload.push(kind.byte());
    code_payload.extend_from_slice(code);
    put_section(&mut out, SECTION_CODE, &code_payload);
    // BTreeMap order is byte order of the guest paths.
    for (guest, tree) in trees {
        let mut payload = Vec::new();
        put_str(&mut payload, guest);
        payload.extend_from_slice(&tree.encode());
        put_section(&mut out, SECTION_TREE, &payload);
    }
    let digest = Sha256::digest(&out);
    put_section(&mut out, SECTION_END, &digest);
    Ok(out)
}

/// Every bundled mount of `policy` has its tree, with the digest it names,
/// and there is no other tree; no virtual mount refers to the host.
fn check_mounts(
    policy: &Policy,
    digest_of: impl Fn(&str) -> Option<String>,
    trees: usize,
) -> Result<(), BundleError> {
    let mut bundled = 0;
    for mount in &policy.mounts {
        match &mount.source {
            MountSource::Bundled { digest } => {
                bundled += 1;
                match digest_of(&mount.guest) {
                    Some(d) if d == *digest => {}
                    Some(_) => {
                        return Err(BundleError::Malformed(format!(
                            "the tree of mount `{}` does not match the policy's digest",
                            mount.guest
                        )))
                    }
                    None => {
                        return Err(BundleError::Malformed(format!(
                            "mount `{}` has no tree",
                            mount.guest
                        )))
                    }
                }
            }
            MountSource::Virtual { .. } => {
                return Err(BundleError::Malformed(format!(
                    "mount `{}` is a virtual mount of a host directory; a bundle holds its tree",
                    mount.guest
                )))
            }
            _ => {}
        }
    }
    if bundled != trees {
        return Err(BundleError::Malformed(
            "a tree belongs to no bundled mount of the policy".into(),
        ));
    }
    Ok(())
}

/// Reads bundle bytes in order; every length is checked against what is
/// left before anything is allocated for it.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub(crate) fn take(&mut self, len: u64) -> Result<&'a [u8], BundleError> {
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= self.bytes.len())
            .ok_or_else(|| BundleError::Malformed("a length runs past its section".into()))?;
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, BundleError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, BundleError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, BundleError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub(crate) fn str32(&mut self) -> Result<String, BundleError> {
        let len = self.u32()?;
        let bytes = self.take(u64::from(len))?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| BundleError::Malformed("a name is not UTF-8".into()))
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// One section: its tag and payload.
    fn section(&mut self) -> Result<(u8, Reader<'a>), BundleError> {
        let tag = self.u8()?;
        let len = self.u64()?;
        Ok((tag, Reader::new(self.take(len)?)))
    }
}

/// Opens bundle bytes: the magic, the version, then the end section's
/// digest over everything before it (so that a changed byte anywhere is
/// refused before anything is parsed), then every section, strictly.
pub fn open(bytes: &[u8]) -> Result<Bundle, BundleError> {
    if !is_bundle(bytes) {
        return Err(BundleError::NotBundle);
    }
    let header = MAGIC.len() + 4;
    let version = bytes
        .get(MAGIC.len()..header)
        .map(|v| u32::from_le_bytes(v.try_into().expect("4 bytes")))
        .ok_or(BundleError::Truncated)?;
    if version != VERSION {
        return Err(BundleError::Version(version));
    }
    if bytes.len() < header + END_LEN {
        return Err(BundleError::Truncated);
    }
    let (body, end) = bytes.split_at(bytes.len() - END_LEN);
    if end[0] != SECTION_END || end[1..9] != 32u64.to_le_bytes() {
        return Err(BundleError::Truncated);
    }
    if Sha256::digest(body).as_slice() != &end[9..] {
        return Err(BundleError::DigestMismatch);
    }
    let mut r = Reader::new(&body[header..]);
    let expect = |r: &mut Reader<'_>, tag: u8, what: &str| -> Result<(), BundleError> {
        if r.is_empty() {
            return Err(BundleError::Malformed(format!("no {what} section")));
        }
        match r.bytes[0] {
            t if t == tag => Ok(()),
            t => Err(BundleError::Malformed(format!(
                "expected the {what} section, found tag {t:#04x}"
            ))),
        }
    };
    expect(&mut r, SECTION_POLICY, "policy")?;
    let (_, policy_section) = r.section()?;
    let policy_bytes = policy_section.bytes.to_vec();
    let policy = Policy::from_canonical(&policy_bytes)?;
    expect(&mut r, SECTION_CODE, "code")?;
    let (_, mut code_section) = r.section()?;
    let kind = match code_section.u8()? {
        0 => CodeKind::Module,
        1 => CodeKind::Component,
        other => return Err(BundleError::Malformed(format!("unknown code kind {other}"))),
    };
    let code: Arc<[u8]> = code_section.bytes.into();
    let mut trees = BTreeMap::new();
    let mut last: Option<String> = None;
    while !r.is_empty() {
        expect(&mut r, SECTION_TREE, "tree")?;
        let (_, mut section) = r.section()?;
        let guest = section.str32()?;
        if last
            .as_deref()
            .is_some_and(|l| l.as_bytes() >= guest.as_bytes())
        {
            return Err(BundleError::Malformed(format!(
                "tree `{guest}` is out of order or repeated"
            )));
        }
        let tree = Tree::decode(&mut section)?;
        if !section.is_empty() {
            return Err(BundleError::Malformed(format!(
                "tree `{guest}` has bytes after its last entry"
            )));
        }
        last = Some(guest.clone());
        trees.insert(guest, Arc::new(tree));
    }
    check_mounts(
        &policy,
        |guest| trees.get(guest).map(|t| t.digest()),
        trees.len(),
    )?;
    Ok(Bundle {
        policy,
        policy_bytes,
        kind,
        code,
        trees,
        digest: sha256_text(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_policy::Mount;

    fn sample(root: &Path) -> Vec<u8> {
        std::fs::create_dir_all(root.join("conf/sub")).unwrap();
        std::fs::write(root.join("conf/app.toml"), "name = \"x\"\n").unwrap();
        std::fs::write(root.join("conf/sub/more"), "more").unwrap();
        let mut policy = Policy {
            args: vec!["a".into()],
            ..Policy::default()
        };
        policy.mounts.push(Mount {
            guest: "/etc/app".into(),
            source: MountSource::Virtual {
                path: root.join("conf"),
            },
        });
        policy.mounts.push(Mount {
            guest: "/data".into(),
            source: MountSource::Host {
                path: root.to_path_buf(),
                read_only: true,
            },
        });
        let (policy, trees) = capture(&policy).unwrap();
        write(&policy, CodeKind::Module, b"\0asm\x01\0\0\0", &trees).unwrap()
    }

    #[test]
    fn writes_the_same_bytes_and_opens_them() {
        let tmp = tempfile::tempdir().unwrap();
        let first = sample(tmp.path());
        assert_eq!(sample(tmp.path()), first);
        let b = open(&first).unwrap();
        assert_eq!(b.kind, CodeKind::Module);
        assert_eq!(&b.code[..], b"\0asm\x01\0\0\0");
        assert_eq!(b.policy.mounts[0].guest, "/data");
        let tree = &b.trees["/etc/app"];
        assert_eq!(tree.entries().len(), 3);
        assert_eq!(
            b.policy.mounts[1].source,
            MountSource::Bundled {
                digest: tree.digest()
            }
        );
        assert_eq!(b.digest, sha256_text(&first));
    }

    #[test]
    fn any_changed_byte_or_truncation_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let good = sample(tmp.path());
        for i in MAGIC.len() + 4..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            let err = open(&bad).unwrap_err();
            assert!(
                matches!(err, BundleError::DigestMismatch | BundleError::Truncated),
                "byte {i}: {err}"
            );
        }
        for len in 0..good.len() {
            assert!(open(&good[..len]).is_err(), "truncated to {len}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(open(&longer).is_err());
        let mut v2 = good.clone();
        v2[MAGIC.len()] = 2;
        assert!(matches!(open(&v2), Err(BundleError::Version(2))));
    }

    #[test]
    fn a_well_sealed_but_inconsistent_bundle_is_malformed() {
        // A tree whose contents are not what the policy names, with a
        // correct end digest: refused all the same.
        let tmp = tempfile::tempdir().unwrap();
        let good = open(&sample(tmp.path())).unwrap();
        let mut trees: BTreeMap<String, Tree> = good
            .trees
            .iter()
            .map(|(g, t)| (g.clone(), (**t).clone()))
            .collect();
        trees.insert("/etc/app".into(), Tree::default());
        let err = write(&good.policy, CodeKind::Module, &good.code, &trees).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}
