//! warden's own state — the compile cache, the sealed store, its key file
//! and its rollback state — must be out of every guest's reach: a mount that
//! contains any of them, or lies inside one, is refused before anything
//! runs, with one line naming the mount, what it would expose and the fix.

mod support;

use std::path::{Path, PathBuf};
use support::*;

/// A fake home: `home/` (what a user might mount), the state paths placed
/// by each test, and the module outside it all.
struct Home {
    root: tempfile::TempDir,
    module: PathBuf,
}

impl Home {
    fn new() -> Home {
        let root = tempdir();
        std::fs::create_dir_all(root.path().join("home/work")).unwrap();
        let module = wat(root.path(), "hi.wat", &say("hi"));
        Home { root, module }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// `warden run` with the cache, store and key file under `elsewhere/`
    /// unless a test moves one of them, then `args`, then the module.
    fn run(&self, env: &[(&str, &Path)], args: &[&str]) -> Output {
        let mut cmd = warden_run(args);
        cmd.arg(&self.module)
            .env("WARDEN_CACHE_DIR", self.path("elsewhere/cache"))
            .env("WARDEN_STORE", self.path("elsewhere/store.redb"))
            .env("WARDEN_KEY_FILE", self.path("elsewhere/store.key"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd)
    }
}

/// Asserts the one-line refusal and that it names `mount`, `exposed` and
/// the flag that moves it.
#[track_caller]
fn refused(out: &Output, mount: &Path, exposed: &Path, fix: &str) -> String {
    let line = out.bad_input();
    for needle in [s(mount), s(exposed), fix] {
        assert!(line.contains(needle), "`{needle}` not named in: {line}");
    }
    line
}

#[test]
fn a_mount_containing_the_cache_dir_is_refused() {
    let h = Home::new();
    let home = h.path("home");
    let cache = h.path("home/.cache/warden");
    std::fs::create_dir_all(&cache).unwrap();
    let env = [("WARDEN_CACHE_DIR", cache.as_path())];
    for flag in ["--dir", "--dir-ro"] {
        let out = h.run(&env, &[flag, s(&home)]);
        let line = refused(&out, &home, &cache, "--cache-dir");
        assert!(line.contains("WARDEN_CACHE_DIR"), "{line}");
    }
    let out = h.run(&env, &["--mount", &format!("/home={}", s(&home))]);
    refused(&out, &home, &cache, "--cache-dir");
    // With --no-cache there is no cache to expose.
    h.run(&env, &["--no-cache", "--dir", s(&home)])
        .code(0)
        .stdout_is("hi\n");
    // Nothing was compiled into the cache by the refused runs.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
}

#[test]
fn a_cache_dir_that_does_not_exist_yet_counts_too() {
    let h = Home::new();
    let home = h.path("home");
    let cache = h.path("home/not/yet/warden");
    let out = h.run(&[("WARDEN_CACHE_DIR", &cache)], &["--dir", s(&home)]);
    refused(&out, &home, &cache, "--cache-dir");
    assert!(!h.path("home/not").exists());
}

#[test]
fn a_mount_inside_the_cache_dir_is_refused() {
    let h = Home::new();
    let cache = h.path("cache");
    let inside = cache.join("index");
    std::fs::create_dir_all(&inside).unwrap();
    let env = [("WARDEN_CACHE_DIR", cache.as_path())];
    let out = h.run(&env, &["--dir", &format!("{}::/x", s(&inside))]);
    refused(&out, &inside, &cache, "--cache-dir");
    let out = h.run(&env, &["--dir", s(&cache)]);
    refused(&out, &cache, &cache, "--cache-dir");
    // The cache given by flag, and the mount spelled through `..`.
    let spelled = format!("{}/../cache/index", s(&cache));
    let flag = format!("{spelled}::/x");
    let out = h.run(&[], &["--cache-dir", s(&cache), "--dir-ro", &flag]);
    refused(&out, Path::new(&spelled), &cache, "--cache-dir");
}

#[test]
fn a_mount_reaching_the_cache_through_a_symlink_is_refused() {
    let h = Home::new();
    let cache = h.path("home/.cache/warden");
    std::fs::create_dir_all(&cache).unwrap();
    let link = h.path("link-to-home");
    std::os::unix::fs::symlink(h.path("home"), &link).unwrap();
    let out = h.run(&[("WARDEN_CACHE_DIR", &cache)], &["--dir", s(&link)]);
    refused(&out, &link, &cache, "--cache-dir");
}

#[test]
fn a_mount_containing_the_key_file_or_the_store_is_refused() {
    let h = Home::new();
    let home = h.path("home");
    let key = h.path("home/.local/share/warden/store.key");
    let out = h.run(&[("WARDEN_KEY_FILE", &key)], &["--dir", s(&home)]);
    let line = refused(&out, &home, &key, "--key-file");
    assert!(line.contains("WARDEN_KEY_FILE"), "{line}");
    let out = h.run(&[], &["--key-file", s(&key), "--dir-ro", s(&home)]);
    refused(&out, &home, &key, "--key-file");

    let store = h.path("home/work/store.redb");
    let work = h.path("home/work");
    let out = h.run(&[("WARDEN_STORE", &store)], &["--dir", s(&work)]);
    let line = refused(&out, &work, &store, "--store");
    assert!(line.contains("WARDEN_STORE"), "{line}");
    let out = h.run(&[], &["--store", s(&store), "--dir", s(&work)]);
    refused(&out, &work, &store, "--store");
    // Neither file was created by the refused runs.
    assert!(!key.exists() && !store.exists());
}

#[test]
fn a_mount_containing_the_rollback_state_is_refused() {
    // The key file is a symlink into another directory; the rollback state
    // lives beside the link, so the mount holds the state but not the key.
    let h = Home::new();
    let home = h.path("home");
    let real_key = h.path("keys/store.key");
    write(
        real_key.parent().unwrap(),
        "store.key",
        "not read: the run is refused",
    );
    let key = h.path("home/store.key");
    std::os::unix::fs::symlink(&real_key, &key).unwrap();
    let out = h.run(&[("WARDEN_KEY_FILE", &key)], &["--dir", s(&home)]);
    let line = out.bad_input();
    assert!(line.contains("rollback state"), "{line}");
    assert!(line.contains(s(&home)), "{line}");
    assert!(line.contains(&format!("{}.", s(&key))), "{line}");
}

#[test]
fn a_config_mount_is_checked_too() {
    let h = Home::new();
    let home = h.path("home");
    let cache = h.path("home/.cache/warden");
    let config = write(
        &h.path("conf"),
        "Warden.toml",
        &format!("[[mount]]\nguest = \"/h\"\nhost = \"{}\"\n", s(&home)),
    );
    let out = h.run(&[("WARDEN_CACHE_DIR", &cache)], &["--config", s(&config)]);
    refused(&out, &home, &cache, "--cache-dir");
}

#[test]
fn mounts_beside_the_state_are_fine() {
    let h = Home::new();
    let cache = h.path("home/.cache/warden");
    std::fs::create_dir_all(&cache).unwrap();
    let key = h.path("home/.local/share/warden/store.key");
    let env = [
        ("WARDEN_CACHE_DIR", cache.as_path()),
        ("WARDEN_KEY_FILE", &key),
    ];
    // A sibling of the cache whose name starts the same is not inside it.
    let sibling = h.path("home/.cache/warden-other");
    std::fs::create_dir_all(&sibling).unwrap();
    h.run(
        &env,
        &["--dir", s(&h.path("home/work")), "--dir-ro", s(&sibling)],
    )
    .code(0)
    .stdout_is("hi\n");
}
