//! warden's own state on the host — the compile cache, the sealed store, its
//! key file and its rollback state — and the rule that no mount reaches it.
//!
//! A guest given a directory that holds any of these could read the store's
//! key, roll the store back together with its state, or (through the cache)
//! have a later run execute native code of its choosing. So a host or
//! virtual mount that contains one of them, or lies inside one, is refused
//! before anything runs. Paths are compared canonically (symlinks, `.` and
//! `..` resolved; for a path not created yet, its nearest existing
//! ancestor), so no spelling of a mount gets around the check.

use crate::Failure;
use std::path::{Path, PathBuf};
use warden_policy::{Mount, MountSource};
use warden_seal::canonical_path;

/// One of warden's state paths: what it is, where, and how to move it.
pub struct StatePath {
    what: &'static str,
    path: PathBuf,
    canonical: PathBuf,
    remedy: &'static str,
}

impl StatePath {
    fn new(what: &'static str, path: PathBuf, remedy: &'static str) -> StatePath {
        StatePath {
            what,
            canonical: canonical_path(&path),
            path,
            remedy,
        }
    }
}

/// The state paths of a run, whether or not they exist yet. `cache` is
/// `None` with `--no-cache`; `store` and `key_file` are `None` only when no
/// default could be found (no data directory and no flag or variable).
pub fn state_paths(
    cache: Option<&Path>,
    store: Option<&Path>,
    key_file: Option<&Path>,
) -> Vec<StatePath> {
    let mut paths = Vec::new();
    if let Some(dir) = cache {
        paths.push(StatePath::new(
            "compile cache",
            dir.to_path_buf(),
            "move the cache with --cache-dir or WARDEN_CACHE_DIR",
        ));
    }
    if let Some(store) = store {
        paths.push(StatePath::new(
            "sealed store",
            store.to_path_buf(),
            "move the store with --store or WARDEN_STORE",
        ));
    }
    if let Some(key_file) = key_file {
        paths.push(StatePath::new(
            "sealed store key file",
            key_file.to_path_buf(),
            "move the key with --key-file or WARDEN_KEY_FILE",
        ));
        // Kept beside the key file as named, which may be a symlink to a
        // key elsewhere: the state can be reachable when the key is not.
        if let Some(store) = store {
            paths.push(StatePath::new(
                "rollback state",
                warden_seal::state_file_beside_store(key_file, store)
                    .unwrap_or_else(|_| warden_seal::state_file_beside(key_file, store)),
                "move it with the key file (--key-file or WARDEN_KEY_FILE)",
            ));
        }
    }
    paths
}

/// The software evidence key of attestation (`warden serve --tls
/// attested`, `warden attest`): a guest that read it could sign evidence
/// for code of its choosing.
pub fn attest_key(path: &Path) -> StatePath {
    StatePath::new(
        "attestation key",
        path.to_path_buf(),
        "move the key with --attest-key or WARDEN_ATTEST_KEY",
    )
}

/// [`check_mounts`] for one run, which works out `state` (canonical paths,
/// a dozen system calls each) only when a mount reaches the host at all:
/// most runs have none, and `warden run`'s start-up is measured.
pub fn check_run_mounts(
    mounts: &[Mount],
    state: impl FnOnce() -> Vec<StatePath>,
) -> Result<(), Failure> {
    let reaches_host = mounts.iter().any(|m| {
        matches!(
            m.source,
            MountSource::Host { .. } | MountSource::Virtual { .. }
        )
    });
    if !reaches_host {
        return Ok(());
    }
    check_mounts(mounts, &state())
}

/// Refuses the first host or virtual mount that contains one of `state`, or
/// lies inside one: bad input, one line naming the mount, what it would
/// expose and how to fix it.
pub fn check_mounts(mounts: &[Mount], state: &[StatePath]) -> Result<(), Failure> {
    for mount in mounts {
        let (host, kind) = match &mount.source {
            MountSource::Host { path, .. } => (path, "mount"),
            MountSource::Virtual { path } => (path, "virtual mount"),
            MountSource::Sealed { .. } | MountSource::Bundled { .. } => continue,
        };
        let canonical = canonical_path(host);
        for s in state {
            let relation = if s.canonical.starts_with(&canonical) {
                "would expose"
            } else if canonical.starts_with(&s.canonical) {
                "lies inside"
            } else {
                continue;
            };
            return Err(Failure::bad_input(format!(
                "{kind} {} (guest path {}) {relation} warden's {} {}: {}, or mount a narrower \
                 directory",
                host.display(),
                mount.guest,
                s.what,
                s.path.display(),
                s.remedy,
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(path: &Path) -> Mount {
        Mount {
            guest: "/m".into(),
            source: MountSource::Host {
                path: path.to_path_buf(),
                read_only: true,
            },
        }
    }

    #[test]
    fn containment_is_by_component_and_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cache = d.join("home/.cache/warden");
        let state = state_paths(Some(&cache), None, None);
        let refused = |m: &Path| check_mounts(&[host(m)], &state).is_err();
        assert!(refused(&d.join("home")));
        assert!(refused(&d.join("home/.cache/warden")));
        assert!(refused(&d.join("home/.cache/warden/index")));
        assert!(refused(&d.join("home/x/../.cache")));
        assert!(!refused(&d.join("home/.cache/warden-other")));
        assert!(!refused(&d.join("home/work")));
        let sealed = Mount {
            guest: "/s".into(),
            source: MountSource::Sealed { name: "n".into() },
        };
        assert!(check_mounts(&[sealed], &state).is_ok());
    }
}
