//! Ahead-of-time compilation and the compile cache: `warden compile`,
//! `--allow-precompiled`, one cache entry per module and engine settings,
//! `--no-cache`, and a damaged cache entry.

mod support;

use std::path::Path;
use support::*;

/// The compiled modules in a cache directory.
fn entries(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cwasm"))
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

#[test]
fn compile_then_run_precompiled() {
    let dir = tempdir();
    let cwasm = dir.path().join("hello.cwasm");
    let out = run(warden()
        .arg("compile")
        .arg(rust_guest("hello"))
        .arg("-o")
        .arg(&cwasm));
    out.code(0).stdout_is("");
    assert!(cwasm.is_file());

    let out = run(warden_run(["--allow-precompiled", s(&cwasm), "pre"]));
    out.code(0)
        .stdout_is("hello from warden\nargc=2\narg[1]=pre\n");
    assert_eq!(out.stderr, "hello on stderr\n", "{out}");

    // Without the flag it is refused: it is native code.
    let line = run(warden_run([s(&cwasm)])).bad_input();
    assert!(line.contains("--allow-precompiled"), "{line}");
}

#[test]
fn compile_writes_next_to_the_module_by_default() {
    let dir = tempdir();
    let module = dir.path().join("copy.wasm");
    std::fs::copy(rust_guest("hello"), &module).unwrap();
    run(warden().arg("compile").arg(&module)).code(0);
    let cwasm = dir.path().join("copy.cwasm");
    assert!(cwasm.is_file());
    run(warden_run(["--allow-precompiled", s(&cwasm)]))
        .code(0)
        .has_line("hello from warden");
}

#[test]
fn precompiled_with_fuel_metering_honours_fuel() {
    let dir = tempdir();
    let cwasm = dir.path().join("limits.cwasm");
    run(warden()
        .arg("compile")
        .arg("--fuel-metering")
        .arg(rust_guest("limits"))
        .arg("-o")
        .arg(&cwasm))
    .code(0);
    let out = run(warden_run([
        "--allow-precompiled",
        "--fuel",
        "5000000",
        s(&cwasm),
        "spin",
    ]));
    out.code(121);
    assert!(out.warden_line().contains("fuel"), "{out}");
}

#[test]
fn one_cache_entry_per_module() {
    let cache = tempdir();
    let hello = rust_guest("hello");
    let first = run(warden_run(["--cache-dir", s(cache.path()), s(&hello)]));
    first.code(0).has_line("hello from warden");
    let after_first = entries(cache.path());
    assert_eq!(after_first.len(), 1, "{after_first:?}");

    let second = run(warden_run(["--cache-dir", s(cache.path()), s(&hello)]));
    second.code(0).stdout_is(&first.stdout);
    assert_eq!(entries(cache.path()), after_first);

    // The same bytes under another name share the entry.
    let copy = cache.path().join("elsewhere.wasm");
    std::fs::copy(&hello, &copy).unwrap();
    run(warden_run(["--cache-dir", s(cache.path()), s(&copy)])).code(0);
    assert_eq!(entries(cache.path()), after_first);

    // Another module adds one.
    run(warden_run([
        "--cache-dir",
        s(cache.path()),
        s(&rust_guest("env")),
    ]))
    .code(0);
    assert_eq!(entries(cache.path()).len(), 2);
}

#[test]
fn cache_dir_from_the_environment() {
    let cache = tempdir();
    let out = run(warden_run([s(&rust_guest("hello"))]).env("WARDEN_CACHE_DIR", cache.path()));
    out.code(0);
    assert_eq!(entries(cache.path()).len(), 1);
}

#[test]
fn no_cache_writes_nothing() {
    let cache = tempdir();
    let out = run(warden_run([
        "--no-cache",
        "--cache-dir",
        s(cache.path()),
        s(&rust_guest("hello")),
    ]));
    out.code(0).has_line("hello from warden");
    assert_eq!(entries(cache.path()), Vec::<String>::new());
}

#[test]
fn engine_settings_are_part_of_the_key() {
    // A module cached without fuel metering must not run unmetered when
    // --fuel is given.
    let cache = tempdir();
    let limits = rust_guest("limits");
    run(warden_run([
        "--cache-dir",
        s(cache.path()),
        s(&limits),
        "exit",
        "0",
    ]))
    .code(0);
    assert_eq!(entries(cache.path()).len(), 1);
    let out = run(warden_run([
        "--cache-dir",
        s(cache.path()),
        "--fuel",
        "5000000",
        s(&limits),
        "spin",
    ]));
    out.code(121);
    assert_eq!(entries(cache.path()).len(), 2);
}

#[test]
fn a_damaged_cache_entry_is_not_fatal() {
    let cache = tempdir();
    let hello = rust_guest("hello");
    run(warden_run(["--cache-dir", s(cache.path()), s(&hello)])).code(0);
    let entry = cache.path().join(&entries(cache.path())[0]);
    std::fs::write(&entry, b"garbage, not a compiled module").unwrap();
    let out = run(warden_run([
        "--cache-dir",
        s(cache.path()),
        s(&hello),
        "again",
    ]));
    out.code(0).has_line("arg[1]=again");
}

#[test]
fn a_cache_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let cache = dir.path().join("shared-cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = warden_run([s(&rust_guest("hello"))]);
    cmd.env("WARDEN_CACHE_DIR", &cache);
    run(cmd).code(0).has_line("hello from warden");
    // Compiled code from a directory anyone may write would run as the
    // user: warden neither reads nor writes such a cache.
    assert!(entries(&cache).is_empty());
    assert!(!cache.join("index").exists());
}

/// Runs `module` with `cache` and asserts it printed `text`.
#[track_caller]
fn runs_as(cache: &Path, module: &Path, text: &str) {
    run(warden_run(["--cache-dir", s(cache), s(module)]))
        .code(0)
        .stdout_is(&format!("{text}\n"));
}

/// The one entry `run` added to `cache`.
#[track_caller]
fn new_entry(cache: &Path, before: &[String], module: &Path, text: &str) -> std::path::PathBuf {
    runs_as(cache, module, text);
    let added: Vec<String> = entries(cache)
        .into_iter()
        .filter(|e| !before.contains(e))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    cache.join(&added[0])
}

/// A scratch directory with a cache dir and two modules, A and B, that
/// print their names.
struct TwoModules {
    _dir: tempfile::TempDir,
    cache: std::path::PathBuf,
    a: std::path::PathBuf,
    b: std::path::PathBuf,
}

impl TwoModules {
    fn new() -> TwoModules {
        let dir = tempdir();
        let cache = dir.path().join("cache");
        let a = wat(dir.path(), "a.wat", &say("module A"));
        let b = wat(dir.path(), "b.wat", &say("module B"));
        TwoModules {
            _dir: dir,
            cache,
            a,
            b,
        }
    }

    /// Runs both, A first, and returns their cache entries.
    fn entries(&self) -> (std::path::PathBuf, std::path::PathBuf) {
        let entry_a = new_entry(&self.cache, &[], &self.a, "module A");
        let entry_b = new_entry(&self.cache, &entries(&self.cache), &self.b, "module B");
        (entry_a, entry_b)
    }
}

/// Another module's compiled code put in place of a module's cache entry
/// (what a guest with write access to the cache could do) must never run:
/// the entry does not authenticate, so the module is compiled again and
/// the entry rewritten.
#[test]
fn another_modules_artifact_in_the_cache_is_not_run() {
    let t = TwoModules::new();
    let (cache, a, b) = (&t.cache, &t.a, &t.b);
    let (entry_a, entry_b) = t.entries();
    let artifact_b = std::fs::read(&entry_b).unwrap();
    std::fs::write(&entry_a, &artifact_b).unwrap();
    runs_as(cache, a, "module A");
    assert!(
        std::fs::read(&entry_a).unwrap() != artifact_b,
        "not rewritten"
    );
    runs_as(cache, a, "module A");
    runs_as(cache, b, "module B");
}

/// A cache entry with bytes changed in its middle is compiled again and
/// rewritten, never run.
#[test]
fn a_changed_cache_artifact_is_recompiled() {
    let dir = tempdir();
    let cache = dir.path().join("cache");
    let a = wat(dir.path(), "a.wat", &say("module A"));
    let entry = new_entry(&cache, &[], &a, "module A");
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&entry, &bytes).unwrap();
    runs_as(&cache, &a, "module A");
    assert!(std::fs::read(&entry).unwrap() != bytes, "not rewritten");
}

/// The index maps a module file (device, inode, size, times) to its cache
/// key so that a warm run need not hash the module. A record pointing at
/// another module's key must not be believed.
#[test]
fn a_forged_index_record_is_not_believed() {
    let dir = tempdir();
    let cache = dir.path().join("cache");
    let a = wat(dir.path(), "a.wat", &say("module A"));
    let b = wat(dir.path(), "b.wat", &say("module B"));
    // A file changed less than two seconds ago is not indexed (its change
    // time could not show a write racing with the read).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let entry_a = new_entry(&cache, &[], &a, "module A");
    let entry_b = new_entry(&cache, &entries(&cache), &b, "module B");
    let key = |e: &Path| e.file_stem().unwrap().to_string_lossy().into_owned();
    let (key_a, key_b) = (key(&entry_a), key(&entry_b));
    let mut forged = 0;
    for record in std::fs::read_dir(cache.join("index")).unwrap() {
        let record = record.unwrap().path();
        let text = std::fs::read_to_string(&record).unwrap();
        if text.contains(&key_a) {
            std::fs::write(&record, text.replace(&key_a, &key_b)).unwrap();
            forged += 1;
        }
    }
    assert_eq!(forged, 1, "no index record for module A");
    runs_as(&cache, &a, "module A");
}

/// The index stamp must describe the bytes that were read. A module path
/// that is swapped for another file while warden reads it (here: a FIFO
/// that warden reads module A from, replaced by module B's file before the
/// read ends) must not leave B's file recorded under A's key.
#[test]
fn the_index_stamp_is_of_the_file_that_was_read() {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempdir();
    let cache = dir.path().join("cache");
    let a = wat(dir.path(), "a.wat", &say("module A"));
    let b = wat(dir.path(), "b.wat", &say("module B"));
    let prog = dir.path().join("prog.wat");
    let made = std::process::Command::new("mkfifo")
        .arg(&prog)
        .status()
        .unwrap();
    assert!(made.success());
    let child = warden_run(["--cache-dir", s(&cache), s(&prog)])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Opening the write end without blocking fails until warden has opened
    // the read end.
    let start = std::time::Instant::now();
    let mut fifo = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&prog)
        {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                assert!(start.elapsed() < WATCHDOG, "warden never opened the FIFO");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("cannot open the FIFO: {e}"),
        }
    };
    // Small enough for the pipe buffer: the write does not block.
    fifo.write_all(&std::fs::read(&a).unwrap()).unwrap();
    std::fs::rename(&b, &prog).unwrap();
    drop(fifo);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "module A\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `prog.wat` is now module B's file, unchanged since it was written.
    runs_as(&cache, &prog, "module B");
}

/// Once an artifact has verified after being left alone, later runs map it
/// without hashing it, on the strength of its recorded stamp. A write to
/// it in place afterwards (same size) changes its ctime: it is checked
/// again, found changed, compiled again and rewritten, never run. Another
/// module's artifact and sidecar together do not pass for it either.
#[test]
fn a_verified_artifact_changed_in_place_is_recompiled() {
    use std::os::unix::fs::FileExt;
    let t = TwoModules::new();
    let (cache, a, b) = (&t.cache, &t.a, &t.b);
    let (entry_a, entry_b) = t.entries();
    let sidecar = |entry: &Path| entry.with_extension("mac");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    runs_as(cache, a, "module A");
    runs_as(cache, b, "module B");
    let recorded = std::fs::read_to_string(sidecar(&entry_a)).unwrap();
    assert_eq!(recorded.lines().count(), 2, "no stamp recorded: {recorded}");
    runs_as(cache, a, "module A");

    let original = std::fs::read(&entry_a).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&entry_a)
        .unwrap();
    let middle = original.len() as u64 / 2;
    file.write_all_at(&[0x5a; 16], middle).unwrap();
    drop(file);
    runs_as(cache, a, "module A");
    let rewritten = std::fs::read(&entry_a).unwrap();
    assert_eq!(rewritten.len(), original.len());
    assert!(
        rewritten[middle as usize..middle as usize + 16] != [0x5a; 16],
        "not rewritten"
    );

    std::fs::copy(&entry_b, &entry_a).unwrap();
    std::fs::copy(sidecar(&entry_b), sidecar(&entry_a)).unwrap();
    runs_as(cache, a, "module A");
    runs_as(cache, b, "module B");
}
