//! A bundled tree: the files, directories and symlinks of a virtual mount,
//! by relative path in byte order, without times, owners or modes, so that
//! the same tree always encodes to the same bytes.

use crate::{BundleError, Reader};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

/// What one entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File(Arc<[u8]>),
    /// The link's target, as written (resolved inside the tree when used).
    Symlink(String),
}

/// One entry: its path relative to the tree's root, `/`-separated, and
/// what it is. The root itself is no entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
}

/// A tree of entries, strictly in byte order of their paths, every
/// entry's parent a directory before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    entries: Vec<Entry>,
}

const KIND_DIR: u8 = b'd';
const KIND_FILE: u8 = b'f';
const KIND_SYMLINK: u8 = b'l';

fn checked_name(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("an entry has an empty path".into());
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            return Err(format!("entry path `{path}` is not a plain relative path"));
        }
    }
    Ok(())
}

impl Tree {
    /// A tree of `entries`, checked: paths plain and relative, strictly
    /// ascending, each parent a directory that comes before.
    pub fn new(entries: Vec<Entry>) -> Result<Tree, BundleError> {
        let mut dirs: HashSet<&str> = HashSet::new();
        for (i, entry) in entries.iter().enumerate() {
            checked_name(&entry.path).map_err(BundleError::Malformed)?;
            if i > 0 && entries[i - 1].path.as_bytes() >= entry.path.as_bytes() {
                return Err(BundleError::Malformed(format!(
                    "tree entries out of order or repeated at `{}`",
                    entry.path
                )));
            }
            if let Some((parent, _)) = entry.path.rsplit_once('/') {
                if !dirs.contains(parent) {
                    return Err(BundleError::Malformed(format!(
                        "entry `{}` comes without its directory `{parent}`",
                        entry.path
                    )));
                }
            }
            if entry.kind == EntryKind::Dir {
                dirs.insert(&entry.path);
            }
        }
        Ok(Tree { entries })
    }

    /// Reads the tree under the host directory `root`: directories,
    /// regular files and symlinks (kept as links, as `--mount` does); other
    /// special files are left out. Names and link targets must be UTF-8.
    pub fn capture(root: &Path) -> Result<Tree, BundleError> {
        let fail = |path: &Path, e: std::io::Error| BundleError::Capture {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut entries = Vec::new();
        let mut pending = vec![(root.to_path_buf(), String::new())];
        while let Some((dir, rel)) = pending.pop() {
            for item in std::fs::read_dir(&dir).map_err(|e| fail(&dir, e))? {
                let item = item.map_err(|e| fail(&dir, e))?;
                let host = item.path();
                let name = item
                    .file_name()
                    .into_string()
                    .map_err(|_| BundleError::Capture {
                        path: host.clone(),
                        reason: "the name is not UTF-8".into(),
                    })?;
                let path = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let ft = item.file_type().map_err(|e| fail(&host, e))?;
                let kind = if ft.is_dir() {
                    pending.push((host.clone(), path.clone()));
                    EntryKind::Dir
                } else if ft.is_file() {
                    EntryKind::File(std::fs::read(&host).map_err(|e| fail(&host, e))?.into())
                } else if ft.is_symlink() {
                    let target = std::fs::read_link(&host).map_err(|e| fail(&host, e))?;
                    EntryKind::Symlink(target.into_os_string().into_string().map_err(|_| {
                        BundleError::Capture {
                            path: host.clone(),
                            reason: "the link's target is not UTF-8".into(),
                        }
                    })?)
                } else {
                    continue;
                };
                entries.push(Entry { path, kind });
            }
        }
        entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Tree::new(entries)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Files, directories, symlinks and the bytes of all files.
    pub fn counts(&self) -> TreeCounts {
        let mut c = TreeCounts::default();
        for e in &self.entries {
            match &e.kind {
                EntryKind::Dir => c.dirs += 1,
                EntryKind::File(data) => {
                    c.files += 1;
                    c.bytes += data.len() as u64;
                }
                EntryKind::Symlink(_) => c.symlinks += 1,
            }
        }
        c
    }

    /// The encoding: entry count (u64), then each entry (docs/bundle.md).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            let (kind, body): (u8, Option<&[u8]>) = match &e.kind {
                EntryKind::Dir => (KIND_DIR, None),
                EntryKind::File(data) => (KIND_FILE, Some(data)),
                EntryKind::Symlink(target) => (KIND_SYMLINK, Some(target.as_bytes())),
            };
            out.push(kind);
            crate::put_str(&mut out, &e.path);
            match (kind, body) {
                (KIND_FILE, Some(data)) => {
                    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
                    out.extend_from_slice(data);
                }
                (KIND_SYMLINK, Some(target)) => {
                    out.extend_from_slice(&(target.len() as u32).to_le_bytes());
                    out.extend_from_slice(target);
                }
                _ => {}
            }
        }
        out
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Tree, BundleError> {
        let count = r.u64()?;
        let mut entries = Vec::new();
        for _ in 0..count {
            let kind = r.u8()?;
            let path = r.str32()?;
            let kind = match kind {
                KIND_DIR => EntryKind::Dir,
                KIND_FILE => {
                    let len = r.u64()?;
                    EntryKind::File(r.take(len)?.into())
                }
                KIND_SYMLINK => EntryKind::Symlink(r.str32()?),
                other => {
                    return Err(BundleError::Malformed(format!(
                        "entry `{path}` has unknown kind {other:#04x}"
                    )))
                }
            };
            entries.push(Entry { path, kind });
        }
        Tree::new(entries)
    }

    /// `sha256:HEX` of [`Tree::encode`]: what the policy's bundled mount
    /// names.
    pub fn digest(&self) -> String {
        crate::sha256_text(&self.encode())
    }
}

/// What a tree holds, for `warden inspect`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeCounts {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(path: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir,
        }
    }

    #[test]
    fn capture_is_sorted_and_ignores_times() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("b/c/f.txt"), "x").unwrap();
        std::fs::write(root.join("a.txt"), "hello").unwrap();
        std::fs::write(root.join("b.txt"), "").unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
        let tree = Tree::capture(root).unwrap();
        let paths: Vec<&str> = tree.entries().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a.txt", "b", "b.txt", "b/c", "b/c/f.txt", "link"]);
        let first = tree.encode();
        // Same content, new times: same bytes.
        std::fs::write(root.join("a.txt"), "hello").unwrap();
        assert_eq!(Tree::capture(root).unwrap().encode(), first);
        let mut r = Reader::new(&first);
        assert_eq!(Tree::decode(&mut r).unwrap(), tree);
        assert_eq!(
            tree.counts(),
            TreeCounts {
                files: 3,
                dirs: 2,
                symlinks: 1,
                bytes: 6
            }
        );
    }

    #[test]
    fn bad_trees_are_refused() {
        for entries in [
            vec![dir("b"), dir("a")],
            vec![dir("a"), dir("a")],
            vec![dir("a/b")],
            vec![dir("../x")],
            vec![dir("a//b")],
            vec![dir("")],
            vec![
                Entry {
                    path: "f".into(),
                    kind: EntryKind::File(Arc::from(&b""[..])),
                },
                dir("f/x"),
            ],
        ] {
            assert!(
                matches!(Tree::new(entries.clone()), Err(BundleError::Malformed(_))),
                "{entries:?}"
            );
        }
    }
}
