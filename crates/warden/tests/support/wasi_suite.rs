//! The official WASI test suite (`../shared/wasi-testsuite`): where it is
//! and how a test's `root` is prepared.

use super::workspace_root;
use std::path::{Path, PathBuf};

/// Where the suite lives: beside the repository, in `../shared`.
pub fn suite_root() -> PathBuf {
    let root = workspace_root().join("../shared/wasi-testsuite/tests");
    assert!(
        root.is_dir(),
        "the WASI test suite is missing: expected it at {}",
        root.display()
    );
    root
}

/// Copies `from` into `to` (which exists), symlinks as symlinks, every file
/// and directory writable by its owner: the suite's copy is read-only.
pub fn copy_tree(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
            continue;
        }
        if kind.is_dir() {
            std::fs::create_dir(&dst).unwrap();
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
        let mut perms = std::fs::metadata(&dst).unwrap().permissions();
        perms.set_mode(perms.mode() | 0o200);
        std::fs::set_permissions(&dst, perms).unwrap();
    }
}

/// Checks the outcome of each test of the suite against the list of those
/// known to fail: a failure not on it, or a pass on it, is wrong. Prints
/// how many passed; panics with every wrong one.
pub fn judge(what: &str, mut results: Vec<(String, Result<(), String>)>, known_failing: &[&str]) {
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut wrong = Vec::new();
    for (name, result) in &results {
        let known = known_failing.contains(&name.as_str());
        match (result, known) {
            (Err(why), false) => wrong.push(format!("{name}: {why}")),
            (Ok(()), true) => wrong.push(format!(
                "{name}: passes now; take it off KNOWN_FAILING (and docs/cli.md)"
            )),
            _ => {}
        }
    }
    let passed = results.iter().filter(|(_, r)| r.is_ok()).count();
    println!("{passed} of {} {what} pass", results.len());
    assert!(
        wrong.is_empty(),
        "{} {what} are not as expected:\n\n{}",
        wrong.len(),
        wrong.join("\n\n")
    );
}
