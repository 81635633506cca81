//! Paths: parsing, and resolution from a directory by inode, so that an
//! open directory keeps meaning the same directory after it (or one of
//! its ancestors) is renamed.

use super::records::Inode;
use super::{FileKind, FsError, FsResult, MAX_NAME_LEN, ROOT_INO};

/// One component of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Comp<'p> {
    Name(&'p str),
    /// `.`: stays where it is.
    Current,
    /// `..`: the directory's parent; above the mount root is refused.
    Parent,
}

/// How strict [`components`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Syntax {
    /// Paths from the root, as the path-based API has always taken them:
    /// no `..`, no empty components.
    FromRoot,
    /// Paths from an open directory, as a program passes them to `openat`:
    /// `..` climbs (never above the mount root) and empty components
    /// (`a//b`, `dir/`) are ignored.
    Relative,
}

/// Splits a path into its components.
pub(super) fn components(path: &str, syntax: Syntax) -> FsResult<Vec<Comp<'_>>> {
    if path.starts_with('/') {
        return Err(FsError::InvalidName(path.to_string()));
    }
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let relative = syntax == Syntax::Relative;
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" if relative => {}
            "." => out.push(Comp::Current),
            ".." if relative => out.push(Comp::Parent),
            "" | ".." => return Err(FsError::InvalidName(c.to_string())),
            c if c.len() > MAX_NAME_LEN || c.contains('\0') => {
                return Err(FsError::InvalidName(c.to_string()))
            }
            c => out.push(Comp::Name(c)),
        }
    }
    Ok(out)
}

/// The directory part and the final name of a path, or `None` when the path
/// names a directory without a final name (`""`, `.`, `a/..`): there is no
/// entry to create, remove or rename.
pub(super) fn split_last<'c, 'p>(comps: &'c [Comp<'p>]) -> Option<(&'c [Comp<'p>], &'p str)> {
    match comps.split_last() {
        Some((Comp::Name(name), dirs)) => Some((dirs, name)),
        _ => None,
    }
}

/// What resolution needs to read: a snapshot or a transaction in progress.
pub(super) trait Tree {
    fn inode(&mut self, ino: u64) -> FsResult<Inode>;
    fn lookup(&mut self, dir: u64, name: &str) -> FsResult<Option<(u64, FileKind)>>;
}

/// Follows `comps` from directory `at`. A directory that no longer exists
/// (removed while open) is `NotFound`.
pub(super) fn resolve(tree: &mut impl Tree, at: u64, comps: &[Comp]) -> FsResult<(u64, FileKind)> {
    let start = tree.inode(at)?;
    let mut here = (at, start.kind);
    for comp in comps {
        if here.1 != FileKind::Directory {
            return Err(FsError::NotDir);
        }
        here = match comp {
            Comp::Current => here,
            Comp::Parent if here.0 == ROOT_INO => return Err(FsError::OutsideMount),
            Comp::Parent => (tree.inode(here.0)?.parent, FileKind::Directory),
            Comp::Name(name) => tree.lookup(here.0, name)?.ok_or(FsError::NotFound)?,
        };
    }
    Ok(here)
}

/// The directory at `comps` from `at`.
pub(super) fn resolve_dir(tree: &mut impl Tree, at: u64, comps: &[Comp]) -> FsResult<u64> {
    match resolve(tree, at, comps)? {
        (ino, FileKind::Directory) => Ok(ino),
        _ => Err(FsError::NotDir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(path: &str, syntax: Syntax) -> FsResult<Vec<Comp<'_>>> {
        components(path, syntax)
    }

    #[test]
    fn components_are_checked() {
        use Comp::*;
        let root = Syntax::FromRoot;
        assert!(names("", root).unwrap().is_empty());
        assert_eq!(names(".", root).unwrap(), [Current]);
        assert_eq!(
            names("a/./b", root).unwrap(),
            [Name("a"), Current, Name("b")]
        );
        for bad in ["/a", "a//b", "a/", "..", "a/../b", "a\0"] {
            assert!(
                matches!(names(bad, root), Err(FsError::InvalidName(_))),
                "{bad:?}"
            );
        }
        assert!(names(&"n".repeat(MAX_NAME_LEN), root).is_ok());
        let long = "n".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            names(&format!("ok/{long}"), root),
            Err(FsError::InvalidName(name)) if name == long
        ));
        assert!(matches!(names("a/../b", root), Err(FsError::InvalidName(n)) if n == ".."));

        let rel = Syntax::Relative;
        assert_eq!(
            names("a//../b/", rel).unwrap(),
            [Name("a"), Parent, Name("b")]
        );
        assert!(matches!(names("/a", rel), Err(FsError::InvalidName(_))));
        assert!(matches!(names("a\0", rel), Err(FsError::InvalidName(_))));
        assert_eq!(
            split_last(&names("a/b", rel).unwrap()),
            Some((&[Name("a")][..], "b"))
        );
        assert_eq!(split_last(&names("a/..", rel).unwrap()), None);
        assert_eq!(split_last(&names("a/.", rel).unwrap()), None);
        assert_eq!(split_last(&[]), None);
    }
}
