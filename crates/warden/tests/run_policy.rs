//! Each policy knob: the subsystem allowed works, denied fails with
//! ENOTCAPABLE (WASI errno 76, which is also wasi-libc's `ENOTCAPABLE`),
//! from flags and from the config, seen from Rust and from C.

mod support;

use std::process::Command;
use support::*;

fn config(dir: &tempfile::TempDir, text: &str) -> String {
    s(&write(dir.path(), "Warden.toml", text)).to_string()
}

#[test]
fn clocks_allowed_by_default() {
    let out = run(warden_run([s(&rust_guest("clock_random")), "clocks"]));
    out.code(0)
        .stdout_is("realtime: ok plausible=true\nmonotonic: ok nondecreasing=true\nres: ok positive=true\n")
        .quiet();
    let out = run(warden_run([s(&rust_guest("clock_random")), "sleep", "30"]));
    out.code(0).stdout_is("sleep: ok elapsed_ge=true\n").quiet();
    let out = run(warden_run([s(&rust_guest("clock_random")), "std"]));
    out.code(0)
        .stdout_is("systemtime plausible=true\ninstant elapsed_ge=true\n")
        .quiet();
    let out = run(warden_run([s(&rust_guest("clock_random")), "poll"]));
    out.code(0)
        .stdout_is(
            "poll two clocks: ok n=1 first=2 error=0 type=0 waited_ge_20ms=true under_2s=true
poll abstime: ok n=1 userdata=3 reached=true
poll zero timeout: ok n=1 userdata=4
poll stdout writable: ok has_fd_event=true fast=true
poll bad fd: event error=8 fast=true
",
        )
        .quiet();
    let out = run(warden_run([s(&rust_guest("clock_random")), "yield"]));
    out.code(0).stdout_is("sched_yield: ok\n").quiet();
}

#[test]
fn clocks_denied() {
    let guest = rust_guest("clock_random");
    let expected = "realtime: err 76\nmonotonic: err 76\nres: err 76\n";
    run(warden_run(["--deny", "clocks", s(&guest), "clocks"]))
        .code(0)
        .stdout_is(expected)
        .notes(&["clocks"]);
    // A clock subscription of poll_oneoff reports the denial in its event.
    run(warden_run(["--deny", "clocks", s(&guest), "sleep", "30"]))
        .code(0)
        .stdout_is("sleep: err 76\n")
        .notes(&["clocks"]);
    let dir = tempdir();
    let cfg = config(&dir, "[allow]\nclocks = false\n");
    run(warden_run(["--config", &cfg, s(&guest), "clocks"]))
        .code(0)
        .stdout_is(expected)
        .notes(&["clocks"]);
    // --allow overrides the config.
    run(warden_run([
        "--config",
        &cfg,
        "--allow",
        "clocks",
        s(&guest),
        "clocks",
    ]))
    .code(0)
    .stdout_is(
        "realtime: ok plausible=true\nmonotonic: ok nondecreasing=true\nres: ok positive=true\n",
    );
}

#[test]
fn c_clocks_match_native_and_can_be_denied() {
    let native = run(Command::new(c_native("envclock")).arg("clocks"));
    native.code(0);
    let guest = c_guest("envclock");
    run(warden_run([s(&guest), "clocks"]))
        .code(0)
        .stdout_is(&native.stdout)
        .quiet();
    for (cmd, arg) in [("sleep", "30"), ("poll", "30")] {
        let native = run(Command::new(c_native("envclock")).args([cmd, arg]));
        native.code(0);
        run(warden_run([s(&guest), cmd, arg]))
            .code(0)
            .stdout_is(&native.stdout)
            .quiet();
    }
    // wasi-libc's time() ignores the error and returns 0.
    run(warden_run(["--deny", "clocks", s(&guest), "clocks"]))
        .code(0)
        .stdout_is(
            "realtime: ENOTCAPABLE\nmonotonic: ENOTCAPABLE\ngetres: ENOTCAPABLE\ntime: ok plausible=0\n",
        )
        .notes(&["clocks"]);
    run(warden_run(["--deny", "clocks", s(&guest), "sleep", "30"]))
        .code(0)
        .stdout_is("nanosleep: ENOTCAPABLE\n")
        .notes(&["clocks"]);
}

#[test]
fn random_allowed_and_denied() {
    let guest = rust_guest("clock_random");
    run(warden_run([s(&guest), "random"]))
        .code(0)
        .stdout_is("random: ok distinct=true\n")
        .quiet();
    run(warden_run(["--deny", "random", s(&guest), "random"]))
        .code(0)
        .stdout_is("random: err 76\n")
        .notes(&["random"]);
    let dir = tempdir();
    let cfg = config(&dir, "[allow]\nrandom = false\n");
    run(warden_run(["--config", &cfg, s(&guest), "random"]))
        .code(0)
        .stdout_is("random: err 76\n")
        .notes(&["random"]);

    let native = run(Command::new(c_native("envclock")).arg("entropy"));
    native.code(0).stdout_is("getentropy: ok distinct=1\n");
    let c = c_guest("envclock");
    run(warden_run([s(&c), "entropy"]))
        .code(0)
        .stdout_is(&native.stdout)
        .quiet();
    run(warden_run(["--deny", "random", s(&c), "entropy"]))
        .code(0)
        .stdout_is("getentropy: ENOTCAPABLE\n")
        .notes(&["random"]);
}

#[test]
fn exit_denied_stops_the_guest_instead_of_exiting_with_its_code() {
    let limits = rust_guest("limits");
    let out = run(warden_run(["--deny", "exit", s(&limits), "exit", "3"]));
    out.code(134).stdout_is("exiting 3\n");
    let line = out.warden_line();
    assert!(
        line.contains("proc_exit(3)") && line.contains("exit"),
        "{out}"
    );
    assert!(
        out.stderr.starts_with(&(note_line("exit") + "\n")),
        "the denial is noted first\n{out}"
    );

    let dir = tempdir();
    let cfg = config(&dir, "[allow]\nexit = false\n");
    let out = run(warden_run([
        "--config",
        &cfg,
        s(&c_guest("hello")),
        "exit",
        "7",
    ]));
    out.code(134).has_line("arg[2]=7");
    assert!(out.warden_line().contains("proc_exit(7)"), "{out}");

    // Returning from `_start` needs no proc_exit.
    run(warden_run(["--deny", "exit", s(&rust_guest("hello"))]))
        .code(0)
        .has_line("hello from warden");
}

#[test]
fn env_allowed_and_denied() {
    let guest = rust_guest("env");
    run(warden_run(["--env", "A=1", s(&guest), "raw"]))
        .code(0)
        .stdout_is("environ: ok count=1\nA=1\n")
        .quiet();
    run(warden_run([
        "--env",
        "A=1",
        "--deny",
        "env",
        s(&guest),
        "raw",
    ]))
    .code(0)
    .stdout_is("environ: err 76\n")
    .notes(&["env"]);
    let dir = tempdir();
    let cfg = config(&dir, "[env]\nA = \"1\"\n[allow]\nenv = false\n");
    run(warden_run(["--config", &cfg, s(&guest), "raw"]))
        .code(0)
        .stdout_is("environ: err 76\n")
        .notes(&["env"]);
}

#[test]
fn env_denied_as_seen_through_libc() {
    // wasi-libc reads the environment lazily and, when environ_sizes_get
    // fails, ends the program with EX_OSERR (71): what a C or Rust program
    // calling getenv sees with `--deny env`.
    let out = run(warden_run([
        "--deny",
        "env",
        "--env",
        "A=1",
        s(&c_guest("envclock")),
        "env",
        "A",
    ]));
    out.code(71).stdout_is("").notes(&["env"]);
    let out = run(warden_run([
        "--deny",
        "env",
        s(&rust_guest("env")),
        "get",
        "A",
    ]));
    out.code(71).stdout_is("").notes(&["env"]);
}

#[test]
fn fs_denied_path_calls_fail() {
    let guest = rust_guest("raw");
    // Allowed (the default) with no mounts: there is no fd 3.
    run(warden_run([s(&guest), "fsprobe"]))
        .code(0)
        .stdout_is("path_open: err 8\npath_create_directory: err 8\npath_filestat_get: err 8\npath_unlink_file: err 8\n")
        .quiet();
    // Denied: every path call is refused by the policy first.
    run(warden_run(["--deny", "fs", s(&guest), "fsprobe"]))
        .code(0)
        .stdout_is("path_open: err 76\npath_create_directory: err 76\npath_filestat_get: err 76\npath_unlink_file: err 76\n")
        .notes(&["fs"]);
    let dir = tempdir();
    let cfg = config(&dir, "[allow]\nfs = false\n");
    run(warden_run(["--config", &cfg, s(&guest), "fsprobe"]))
        .code(0)
        .stdout_is("path_open: err 76\npath_create_directory: err 76\npath_filestat_get: err 76\npath_unlink_file: err 76\n")
        .notes(&["fs"]);
}

#[test]
fn fs_denied_with_a_mount_is_a_contradiction() {
    let dir = tempdir();
    let out = run(warden_run([
        "--deny",
        "fs",
        "--dir",
        &format!("{}::/data", s(dir.path())),
        s(&rust_guest("hello")),
    ]));
    let line = out.bad_input();
    assert!(line.contains("fs"), "{out}");
}

#[test]
fn sockets_denied() {
    let guest = rust_guest("sockets");
    run(warden_run([s(&guest), "probe", "3"]))
        .code(0)
        .stdout_is("fdstat: err 8\nset NONBLOCK: err 8\nsock_accept: err 8\n")
        .quiet();
    run(warden_run(["--deny", "sockets", s(&guest), "probe", "3"]))
        .code(0)
        .stdout_is("fdstat: err 8\nset NONBLOCK: err 8\nsock_accept: err 76\n")
        .notes(&["sockets"]);
    let out = run(warden_run([
        "--deny",
        "sockets",
        "--listen",
        "127.0.0.1:0",
        s(&guest),
        "probe",
        "3",
    ]));
    let line = out.bad_input();
    assert!(line.contains("sockets"), "{out}");
}

#[test]
fn allowed_subsystems_from_a_config_and_a_flag_that_denies() {
    // A config that allows everything explicitly, and a flag that denies
    // one: the flag wins.
    let dir = tempdir();
    let cfg = config(
        &dir,
        "[allow]\nclocks = true\nrandom = true\nexit = true\nenv = true\nfs = true\nsockets = true\n",
    );
    run(warden_run([
        "--config",
        &cfg,
        s(&rust_guest("clock_random")),
        "random",
    ]))
    .code(0)
    .stdout_is("random: ok distinct=true\n");
    run(warden_run([
        "--config",
        &cfg,
        "--deny",
        "random",
        s(&rust_guest("clock_random")),
        "random",
    ]))
    .code(0)
    .stdout_is("random: err 76\n");
    run(warden_run([
        "--config",
        &cfg,
        s(&rust_guest("limits")),
        "exit",
        "9",
    ]))
    .code(9);
}

#[test]
fn process_is_denied_by_default() {
    // Seen from a module that imports the process ABI: a kill of itself
    // (signal 0 checks only) is refused by the policy unless granted.
    let dir = tempdir();
    let module = wat(
        dir.path(),
        "kill.wat",
        r#"(module
  (import "warden" "proc_signal" (func $signal (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (call $signal (i32.const 1) (i32.const 0)))))"#,
    );
    // ENOTCAPABLE (76) as the exit code, and one note.
    run(warden_run([s(&module)])).code(76).notes(&["process"]);
    run(warden_run(["--quiet", s(&module)])).code(76).quiet();
    run(warden_run(["--allow", "process", s(&module)]))
        .code(0)
        .quiet();
    let cfg = config(&dir, "[allow]\nprocess = true\n");
    run(warden_run(["--config", &cfg, s(&module)]))
        .code(0)
        .quiet();
    let cfg = config(&dir, "[allow]\nprocess = false\n");
    run(warden_run(["--config", &cfg, s(&module)]))
        .code(76)
        .notes(&["process"]);
}
