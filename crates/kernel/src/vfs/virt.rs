//! Virtual mounts: a host tree read into memory at start and served
//! read-only. After capture the host is not touched again.

use super::{read_only, Cursor, Directory, Node, OpenRequest, TimeSpec};
use crate::abi::{filetype, rights, Dirent, Errno, Filestat, Result};
use crate::note;
use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Symlinks followed in one lookup before `ELOOP`, as Linux.
const MAX_SYMLINKS: usize = 40;
/// The device number virtual trees report.
const VIRTUAL_DEV: u64 = 0x7761_7264;

pub enum VKind {
    File(Arc<[u8]>),
    Dir(BTreeMap<String, Arc<VNode>>),
    Symlink(String),
}

pub struct VNode {
    ino: u64,
    mtim: u64,
    kind: VKind,
}

impl VNode {
    fn filetype(&self) -> u8 {
        match self.kind {
            VKind::File(_) => filetype::REGULAR_FILE,
            VKind::Dir(_) => filetype::DIRECTORY,
            VKind::Symlink(_) => filetype::SYMBOLIC_LINK,
        }
    }

    fn stat(&self) -> Filestat {
        let size = match &self.kind {
            VKind::File(data) => data.len() as u64,
            VKind::Dir(children) => children.len() as u64,
            VKind::Symlink(target) => target.len() as u64,
        };
        Filestat {
            dev: VIRTUAL_DEV,
            ino: self.ino,
            filetype: self.filetype(),
            nlink: 1,
            size,
            atim: self.mtim,
            mtim: self.mtim,
            ctim: self.mtim,
        }
    }
}

/// Reads the tree under `path` into memory. Symlinks are kept as links and
/// resolved inside the tree; other special files are left out.
pub fn capture(path: &Path) -> io::Result<Arc<VNode>> {
    let next_ino = AtomicU64::new(1);
    capture_at(path, &next_ino)
}

fn capture_at(path: &Path, next_ino: &AtomicU64) -> io::Result<Arc<VNode>> {
    let meta = std::fs::symlink_metadata(path)?;
    let mtim = meta.modified().map(super::nanos).unwrap_or(0);
    let ino = next_ino.fetch_add(1, Ordering::Relaxed);
    let kind = if meta.is_dir() {
        let mut children = BTreeMap::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ft = entry.file_type()?;
            if ft.is_dir() || ft.is_file() || ft.is_symlink() {
                children.insert(name, capture_at(&entry.path(), next_ino)?);
            }
        }
        VKind::Dir(children)
    } else if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)?;
        VKind::Symlink(target.to_string_lossy().into_owned())
    } else {
        VKind::File(std::fs::read(path)?.into())
    };
    Ok(Arc::new(VNode { ino, mtim, kind }))
}

/// Builds the tree of a bundled mount. Entries get inode numbers in
/// their order (the root is 1) and no times, so a bundle's files look the
/// same on every run and every host.
pub fn from_tree(tree: &warden_bundle::Tree) -> Arc<VNode> {
    use warden_bundle::EntryKind;
    enum Building {
        Dir(u64, BTreeMap<String, Building>),
        Leaf(Arc<VNode>),
    }
    fn finish(node: Building) -> Arc<VNode> {
        match node {
            Building::Leaf(node) => node,
            Building::Dir(ino, children) => Arc::new(VNode {
                ino,
                mtim: 0,
                kind: VKind::Dir(
                    children
                        .into_iter()
                        .map(|(name, child)| (name, finish(child)))
                        .collect(),
                ),
            }),
        }
    }
    let mut root = Building::Dir(1, BTreeMap::new());
    for (i, entry) in tree.entries().iter().enumerate() {
        let ino = i as u64 + 2;
        let mut dir = &mut root;
        let mut parts = entry.path.split('/').peekable();
        while let Some(name) = parts.next() {
            let Building::Dir(_, children) = dir else {
                // `Tree` guarantees every parent is a directory.
                break;
            };
            if parts.peek().is_none() {
                let node = match &entry.kind {
                    EntryKind::Dir => Building::Dir(ino, BTreeMap::new()),
                    EntryKind::File(data) => Building::Leaf(Arc::new(VNode {
                        ino,
                        mtim: 0,
                        kind: VKind::File(data.clone()),
                    })),
                    EntryKind::Symlink(target) => Building::Leaf(Arc::new(VNode {
                        ino,
                        mtim: 0,
                        kind: VKind::Symlink(target.clone()),
                    })),
                };
                children.insert(name.to_string(), node);
                break;
            }
            match children.get_mut(name) {
                Some(next) => dir = next,
                None => break,
            }
        }
    }
    finish(root)
}

/// An open virtual directory: the chain of directories from the mount
/// root down to it, so that `..` can climb back but never above the root.
pub struct VDir {
    chain: Vec<Arc<VNode>>,
}

impl VDir {
    pub fn root(node: Arc<VNode>) -> VDir {
        VDir { chain: vec![node] }
    }

    fn node(&self) -> &Arc<VNode> {
        // The chain always holds at least the mount root.
        &self.chain[self.chain.len() - 1]
    }

    /// Resolves `path` to the chain ending in its node.
    fn walk(&self, path: &str, follow_last: bool) -> Result<Vec<Arc<VNode>>> {
        let mut chain = self.chain.clone();
        let mut pending: VecDeque<String> = path.split('/').map(str::to_string).collect();
        let mut links = 0;
        while let Some(component) = pending.pop_front() {
            match component.as_str() {
                "" | "." => continue,
                ".." => {
                    if chain.len() <= 1 {
                        return Err(note::deny(Errno::NOTCAPABLE, "path escapes its mount"));
                    }
                    chain.pop();
                }
                name => {
                    let current = &chain[chain.len() - 1];
                    let VKind::Dir(children) = &current.kind else {
                        return Err(Errno::NOTDIR);
                    };
                    let child = children.get(name).ok_or(Errno::NOENT)?.clone();
                    let last = pending.iter().all(|c| c.is_empty() || c == ".");
                    match &child.kind {
                        VKind::Symlink(target) if follow_last || !last => {
                            links += 1;
                            if links > MAX_SYMLINKS {
                                return Err(Errno::LOOP);
                            }
                            if target.starts_with('/') {
                                return Err(note::deny(
                                    Errno::NOTCAPABLE,
                                    "absolute symlink leaves its mount",
                                ));
                            }
                            for part in target.split('/').rev() {
                                pending.push_front(part.to_string());
                            }
                        }
                        _ => chain.push(child),
                    }
                }
            }
        }
        Ok(chain)
    }

    fn lookup(&self, path: &str, follow: bool) -> Result<Arc<VNode>> {
        let chain = self.walk(path, follow)?;
        Ok(chain[chain.len() - 1].clone())
    }
}

impl Node for VDir {
    fn filetype(&self) -> u8 {
        filetype::DIRECTORY
    }
    fn base_rights(&self) -> u64 {
        rights::DIRECTORY
    }
    fn stat(&self) -> Result<Filestat> {
        Ok(self.node().stat())
    }
    fn set_times(&self, _: Option<TimeSpec>, _: Option<TimeSpec>) -> Result<()> {
        Err(read_only())
    }
    fn readdir(&self) -> Result<Vec<Dirent>> {
        let node = self.node();
        let parent = if self.chain.len() > 1 {
            &self.chain[self.chain.len() - 2]
        } else {
            node
        };
        let mut out = vec![
            Dirent {
                ino: node.ino,
                filetype: filetype::DIRECTORY,
                name: ".".into(),
            },
            Dirent {
                ino: parent.ino,
                filetype: filetype::DIRECTORY,
                name: "..".into(),
            },
        ];
        if let VKind::Dir(children) = &node.kind {
            out.extend(children.iter().map(|(name, child)| Dirent {
                ino: child.ino,
                filetype: child.filetype(),
                name: name.clone(),
            }));
        }
        Ok(out)
    }
    fn as_dir(&self) -> Option<&dyn Directory> {
        Some(self)
    }
}

impl Directory for VDir {
    fn open(&self, path: &str, req: &OpenRequest) -> Result<Arc<dyn Node>> {
        let found = self.walk(path, req.follow);
        let mut chain = match found {
            Ok(chain) => chain,
            Err(Errno::NOENT) if req.create => return Err(read_only()),
            Err(e) => return Err(e),
        };
        if req.create && req.exclusive {
            return Err(Errno::EXIST);
        }
        let node = chain[chain.len() - 1].clone();
        if let VKind::Symlink(_) = node.kind {
            // Opening a symlink itself (no follow) is ELOOP, as O_NOFOLLOW.
            return Err(Errno::LOOP);
        }
        if req.write || req.truncate || req.append {
            return Err(if matches!(node.kind, VKind::Dir(_)) {
                Errno::ISDIR
            } else {
                read_only()
            });
        }
        match &node.kind {
            VKind::Dir(_) => Ok(Arc::new(VDir {
                chain: std::mem::take(&mut chain),
            })),
            VKind::File(data) if !req.directory => Ok(Arc::new(VFile {
                node: node.clone(),
                data: data.clone(),
                offset: Cursor::default(),
            })),
            _ => Err(Errno::NOTDIR),
        }
    }
    fn create_dir(&self, path: &str) -> Result<()> {
        match self.walk(path, false) {
            Ok(_) => Err(Errno::EXIST),
            Err(Errno::NOENT) => Err(read_only()),
            Err(e) => Err(e),
        }
    }
    fn remove_dir(&self, path: &str) -> Result<()> {
        self.walk(path, false)?;
        Err(read_only())
    }
    fn unlink(&self, path: &str) -> Result<()> {
        self.walk(path, false)?;
        Err(read_only())
    }
    fn rename(&self, from: &str, _: &dyn Directory, _: &str) -> Result<()> {
        self.walk(from, false)?;
        Err(read_only())
    }
    fn link(&self, from: &str, follow: bool, _: &dyn Directory, _: &str) -> Result<()> {
        self.walk(from, follow)?;
        Err(read_only())
    }
    fn symlink(&self, _target: &str, _path: &str) -> Result<()> {
        Err(read_only())
    }
    fn readlink(&self, path: &str) -> Result<String> {
        match &self.lookup(path, false)?.kind {
            VKind::Symlink(target) => Ok(target.clone()),
            _ => Err(Errno::INVAL),
        }
    }
    fn stat_at(&self, path: &str, follow: bool) -> Result<Filestat> {
        Ok(self.lookup(path, follow)?.stat())
    }
    fn set_times_at(
        &self,
        path: &str,
        follow: bool,
        _: Option<TimeSpec>,
        _: Option<TimeSpec>,
    ) -> Result<()> {
        self.lookup(path, follow)?;
        Err(read_only())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open virtual file: shared bytes and its own offset.
pub struct VFile {
    node: Arc<VNode>,
    data: Arc<[u8]>,
    offset: Cursor,
}

impl Node for VFile {
    fn filetype(&self) -> u8 {
        filetype::REGULAR_FILE
    }
    fn base_rights(&self) -> u64 {
        rights::REGULAR_FILE
    }
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.offset.read(buf, |b, at| self.pread(b, at))
    }
    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        let n = buf.len().min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        Ok(n)
    }
    fn seek(&self, pos: SeekFrom) -> Result<u64> {
        self.offset.seek(pos, || Ok(self.data.len() as u64))
    }
    fn stat(&self) -> Result<Filestat> {
        Ok(self.node.stat())
    }
    fn set_size(&self, _: u64) -> Result<()> {
        // Virtual files are only ever open for reading.
        Err(Errno::INVAL)
    }
    fn set_times(&self, _: Option<TimeSpec>, _: Option<TimeSpec>) -> Result<()> {
        Err(read_only())
    }
    fn allocate(&self, _: u64, _: u64) -> Result<()> {
        Err(read_only())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> VDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), b"hello").unwrap();
        std::os::unix::fs::symlink("sub/a.txt", dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("loop2", dir.path().join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", dir.path().join("loop2")).unwrap();
        VDir::root(capture(dir.path()).unwrap())
    }

    fn read_all(node: Arc<dyn Node>) -> Vec<u8> {
        let mut buf = vec![0; 64];
        let n = node.read(&mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn reads_through_links_and_dotdot() {
        let t = tree();
        let req = OpenRequest {
            read: true,
            follow: true,
            ..Default::default()
        };
        assert_eq!(read_all(t.open("link", &req).unwrap()), b"hello");
        assert_eq!(
            read_all(t.open("sub/../sub/a.txt", &req).unwrap()),
            b"hello"
        );
    }

    #[test]
    fn escapes_and_loops_fail() {
        let t = tree();
        let req = OpenRequest {
            read: true,
            follow: true,
            ..Default::default()
        };
        assert_eq!(t.open("../x", &req).err(), Some(Errno::NOTCAPABLE));
        assert_eq!(t.open("sub/../../x", &req).err(), Some(Errno::NOTCAPABLE));
        assert_eq!(t.open("abs", &req).err(), Some(Errno::NOTCAPABLE));
        assert_eq!(t.open("loop1", &req).err(), Some(Errno::LOOP));
    }

    #[test]
    fn a_bundled_tree_reads_like_its_capture() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), b"hello").unwrap();
        std::os::unix::fs::symlink("sub/a.txt", dir.path().join("link")).unwrap();
        let t = VDir::root(from_tree(
            &warden_bundle::Tree::capture(dir.path()).unwrap(),
        ));
        let req = OpenRequest {
            read: true,
            follow: true,
            ..Default::default()
        };
        assert_eq!(read_all(t.open("link", &req).unwrap()), b"hello");
        assert_eq!(read_all(t.open("sub/a.txt", &req).unwrap()), b"hello");
        let names: Vec<String> = t.readdir().unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(names, [".", "..", "link", "sub"]);
        assert_eq!(t.stat_at("sub/a.txt", true).unwrap().mtim, 0);
        assert_eq!(t.open("../x", &req).err(), Some(Errno::NOTCAPABLE));
    }

    #[test]
    fn writes_are_refused() {
        let t = tree();
        let req = OpenRequest {
            write: true,
            create: true,
            ..Default::default()
        };
        assert_eq!(t.open("new", &req).err(), Some(Errno::ROFS));
        assert_eq!(t.create_dir("d").err(), Some(Errno::ROFS));
        assert_eq!(t.unlink("sub/a.txt").err(), Some(Errno::ROFS));
        assert_eq!(t.unlink("nope").err(), Some(Errno::NOENT));
    }
}
