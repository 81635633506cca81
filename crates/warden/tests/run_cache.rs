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
