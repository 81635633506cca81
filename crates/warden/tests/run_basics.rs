//! `warden run` basics: output, arguments, exit codes, the standard streams
//! and their modes, the environment, configs, entrypoints and WAT input.

mod support;

use support::*;

#[test]
fn hello_prints_its_arguments() {
    let hello = rust_guest("hello");
    let out = run(warden_run([
        s(&hello),
        "one",
        "two words",
        "--flag",
        "ünïcödé",
        "",
    ]));
    out.code(0).stdout_is(
        "hello from warden\nargc=6\narg[1]=one\narg[2]=two words\narg[3]=--flag\n\
             arg[4]=ünïcödé\narg[5]=\n",
    );
    assert_eq!(out.stderr, "hello on stderr\n", "{out}");
}

#[test]
fn argv0_is_the_module_file_name() {
    let raw = rust_guest("raw");
    let out = run(warden_run([s(&raw), "args", "x"]));
    // argv[0] is the module's file name, as wasmtime gives it (the host
    // path above it is none of the guest's business); the buffer holds it
    // and the two arguments, each NUL-terminated.
    let bufsize = "raw.wasm".len() + 1 + "args".len() + 1 + "x".len() + 1;
    out.code(0)
        .stdout_is(&format!(
            "args_sizes_get: ok\nargs_get: ok\nargc=3 bufsize={bufsize}\nargv[0]=raw.wasm\nargv[1]=args\nargv[2]=x\n"
        ))
        .quiet();
}

#[test]
fn c_hello_matches_the_native_run() {
    let args = ["a", "b c", "-x", "ünï"];
    let native = run(std::process::Command::new(c_native("hello")).args(args));
    native.code(0);
    let out = run(warden_run([s(&c_guest("hello"))].into_iter().chain(args)));
    out.code(0).stdout_is(&native.stdout);
    assert_eq!(out.stderr, native.stderr, "{out}");
    assert_eq!(
        out.stdout,
        "hello from c\nargc=5\narg[1]=a\narg[2]=b c\narg[3]=-x\narg[4]=ünï\n"
    );
}

#[test]
fn exit_codes_are_the_guests() {
    let limits = rust_guest("limits");
    for (n, expected) in [
        (0, 0),
        (1, 1),
        (3, 3),
        (42, 42),
        (255, 255),
        (256, 0),
        (300, 44),
    ] {
        let out = run(warden_run([s(&limits), "exit", &n.to_string()]));
        out.code(expected)
            .stdout_is(&format!("exiting {n}\n"))
            .quiet();
    }
}

#[test]
fn c_exit_and_return_from_main() {
    let hello = c_guest("hello");
    let out = run(warden_run([s(&hello), "exit", "7"]));
    out.code(7).has_line("arg[2]=7");
    let out = run(warden_run([s(&hello), "return", "9"]));
    out.code(9).has_line("arg[2]=9");
    // Natively the same program exits with the same codes.
    let native = run(std::process::Command::new(c_native("hello")).args(["exit", "7"]));
    native.code(7);
}

#[test]
fn returning_from_start_is_exit_zero() {
    let dir = tempdir();
    let module = wat(
        dir.path(),
        "ret.wat",
        r#"(module
             (memory (export "memory") 1)
             (func (export "_start")))"#,
    );
    run(warden_run([s(&module)])).code(0).stdout_is("").quiet();

    let module = wat(
        dir.path(),
        "exit7.wat",
        r#"(module
             (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start") (call $exit (i32.const 7))))"#,
    );
    run(warden_run([s(&module)])).code(7).stdout_is("").quiet();
}

#[test]
fn stdout_and_stderr_are_separate_and_ignorable() {
    let hello = rust_guest("hello");
    let out = run(warden_run(["--stdout", "ignore", s(&hello)]));
    out.code(0).stdout_is("");
    assert_eq!(out.stderr, "hello on stderr\n", "{out}");

    let out = run(warden_run(["--stderr", "ignore", s(&hello)]));
    out.code(0).has_line("hello from warden").quiet();

    // Writes to an ignored stream succeed, as on /dev/null.
    let stdio = rust_guest("stdio");
    let out = run(warden_run(["--stdout", "ignore", s(&stdio), "stdout"]));
    out.code(0).stdout_is("");
    assert_eq!(out.stderr, "stdout write: ok 10\n", "{out}");
}

#[test]
fn denied_stdout_and_stderr_fail_with_enotcapable() {
    let stdio = rust_guest("stdio");
    let out = run(warden_run(["--stdout", "deny", s(&stdio), "stdout"]));
    out.code(0).stdout_is("");
    // warden's note on the denial, then what the guest saw.
    assert_eq!(
        out.stderr,
        format!("{}\nstdout write: err 76\n", note_line("stdout")),
        "{out}"
    );

    let out = run(warden_run(["--stderr", "deny", s(&stdio), "stderr"]));
    out.code(0)
        .stdout_is("stderr write: err 76\n")
        .notes(&["stderr"]);
    // --quiet: the denial is silent.
    let out = run(warden_run([
        "--quiet",
        "--stderr",
        "deny",
        s(&stdio),
        "stderr",
    ]));
    out.code(0).stdout_is("stderr write: err 76\n").quiet();

    // Allowed, the same writes arrive.
    let out = run(warden_run([s(&stdio), "stdout"]));
    out.code(0).stdout_is("to stdout\n");
    assert_eq!(out.stderr, "stdout write: ok 10\n", "{out}");
}

#[test]
fn stdin_is_ignored_by_default() {
    let stdio = rust_guest("stdio");
    let out = run_with_stdin(&mut warden_run([s(&stdio), "stdin"]), b"secret input\n");
    out.code(0).stdout_is("stdin: ok 0 bytes\n").quiet();
    let out = run_with_stdin(
        &mut warden_run(["--stdin", "ignore", s(&stdio), "stdin"]),
        b"secret input\n",
    );
    out.code(0).stdout_is("stdin: ok 0 bytes\n").quiet();
}

#[test]
fn stdin_allow_passes_the_hosts_stream() {
    let stdio = rust_guest("stdio");
    let out = run_with_stdin(
        &mut warden_run(["--stdin", "allow", s(&stdio), "stdin"]),
        b"line one\nline two\n",
    );
    out.code(0)
        .stdout_is("stdin: ok 18 bytes\nline one\nline two\n")
        .quiet();
}

#[test]
fn stdin_deny_fails_with_enotcapable() {
    let stdio = rust_guest("stdio");
    let out = run_with_stdin(
        &mut warden_run(["--stdin", "deny", s(&stdio), "stdin"]),
        b"secret\n",
    );
    out.code(0).stdout_is("stdin: err 76\n").notes(&["stdin"]);
}

#[test]
fn c_stdin_matches_the_native_run() {
    let input = b"Hello, stdin!\nsecond line\n".repeat(40);
    let native = run_with_stdin(
        &mut std::process::Command::new(c_native("stdin_upper")),
        &input,
    );
    native.code(0);
    assert!(native.stdout.starts_with("HELLO, STDIN!\nSECOND LINE\n"));
    let out = run_with_stdin(
        &mut warden_run(["--stdin", "allow", s(&c_guest("stdin_upper"))]),
        &input,
    );
    out.code(0).stdout_is(&native.stdout).quiet();

    // Denied, stdio's read fails with ENOTCAPABLE.
    let out = run_with_stdin(
        &mut warden_run(["--stdin", "deny", s(&c_guest("stdin_upper"))]),
        &input,
    );
    out.code(1)
        .stdout_is("read error: ENOTCAPABLE\n")
        .notes(&["stdin"]);
}

#[test]
fn no_environment_by_default() {
    let env = rust_guest("env");
    let out = run(warden_run([s(&env)]).env("WARDEN_TEST_SECRET", "leak"));
    out.code(0).stdout_is("count=0\n").quiet();
    let out = run(warden_run([s(&env), "raw"]).env("WARDEN_TEST_SECRET", "leak"));
    out.code(0).stdout_is("environ: ok count=0\n").quiet();
}

#[test]
fn env_flags_set_and_pass_variables() {
    let env = rust_guest("env");
    let out = run(warden_run([
        "--env",
        "B=two words",
        "--env",
        "A=1",
        "--env",
        "EQ=x=y",
        "--env",
        "EMPTY=",
        "--env-inherit",
        "WARDEN_TEST_INHERITED",
        "--env-inherit",
        "WARDEN_TEST_SURELY_UNSET",
        "--env",
        "WARDEN_TEST_PASSED",
        s(&env),
    ])
    .env("WARDEN_TEST_INHERITED", "from host")
    .env("WARDEN_TEST_PASSED", "also from host")
    .env("WARDEN_TEST_NOT_LISTED", "hidden")
    .env_remove("WARDEN_TEST_SURELY_UNSET"));
    out.code(0)
        .stdout_is(
            "A=1\nB=two words\nEMPTY=\nEQ=x=y\nWARDEN_TEST_INHERITED=from host\n\
             WARDEN_TEST_PASSED=also from host\ncount=6\n",
        )
        .quiet();
}

#[test]
fn a_later_env_flag_wins() {
    let env = rust_guest("env");
    let out = run(warden_run([
        "--env",
        "A=1",
        "--env",
        "A=2",
        s(&env),
        "get",
        "A",
    ]));
    out.code(0).stdout_is("A=2\n").quiet();
}

#[test]
fn c_env_matches_the_native_run() {
    let names = ["HOME", "GREETING", "EMPTY", "UNSET_ONE"];
    let native = run(std::process::Command::new(c_native("envclock"))
        .env_clear()
        .env("GREETING", "hi there")
        .env("EMPTY", "")
        .arg("env")
        .args(names));
    native.code(0);
    let out = run(warden_run([
        "--env",
        "GREETING=hi there",
        "--env",
        "EMPTY=",
        s(&c_guest("envclock")),
        "env",
    ])
    .args(names));
    out.code(0).stdout_is(&native.stdout).quiet();
    assert_eq!(
        out.stdout,
        "HOME unset\nGREETING=hi there\nEMPTY=\nUNSET_ONE unset\n"
    );

    let native = run(std::process::Command::new(c_native("envclock"))
        .env_clear()
        .env("Z", "last")
        .env("A", "first")
        .arg("environ"));
    let out = run(warden_run([
        "--env",
        "Z=last",
        "--env",
        "A=first",
        s(&c_guest("envclock")),
        "environ",
    ]));
    out.code(0).stdout_is(&native.stdout).quiet();
}

#[test]
fn config_sets_args_env_and_flags_override_it() {
    let dir = tempdir();
    let config = write(
        dir.path(),
        "Warden.toml",
        r#"
args = ["from", "config"]
env_inherit = ["WARDEN_TEST_FROM_HOST"]

[env]
GREETING = "hi"
OVERRIDDEN = "config"
"#,
    );
    let hello = rust_guest("hello");
    let out = run(warden_run(["--config", s(&config), s(&hello)]));
    out.code(0)
        .stdout_is("hello from warden\nargc=3\narg[1]=from\narg[2]=config\n");

    // Arguments on the command line replace the config's.
    let out = run(warden_run(["--config", s(&config), s(&hello), "cli"]));
    out.code(0)
        .stdout_is("hello from warden\nargc=2\narg[1]=cli\n");

    // Guest arguments replace the config's `args`, so `get NAME` reaches
    // the env guest; the environment still comes from the config + flags.
    let env = rust_guest("env");
    for (name, value) in [
        ("GREETING", "GREETING=hi"),
        ("OVERRIDDEN", "OVERRIDDEN=flag"),
        ("WARDEN_TEST_FROM_HOST", "WARDEN_TEST_FROM_HOST=inherited"),
        ("WARDEN_TEST_OTHER", "WARDEN_TEST_OTHER unset"),
    ] {
        let out = run(warden_run([
            "--config",
            s(&config),
            "--env",
            "OVERRIDDEN=flag",
            s(&env),
            "get",
            name,
        ])
        .env("WARDEN_TEST_FROM_HOST", "inherited")
        .env("WARDEN_TEST_OTHER", "not listed"));
        out.code(0).stdout_is(&format!("{value}\n")).quiet();
    }
}

#[test]
fn config_stdio_modes() {
    let dir = tempdir();
    let config = write(
        dir.path(),
        "Warden.toml",
        "[stdio]\nstdin = \"allow\"\nstderr = \"deny\"\n",
    );
    let stdio = rust_guest("stdio");
    let out = run_with_stdin(
        &mut warden_run(["--config", s(&config), s(&stdio), "stdin"]),
        b"abc",
    );
    out.code(0).stdout_is("stdin: ok 3 bytes\nabc").quiet();
    // The guest's stderr is denied; warden's own note still reaches the
    // host's stderr.
    let out = run(warden_run(["--config", s(&config), s(&stdio), "stderr"]));
    out.code(0)
        .stdout_is("stderr write: err 76\n")
        .notes(&["stderr"]);
    // A flag overrides the config.
    let out = run(warden_run([
        "--config",
        s(&config),
        "--stderr",
        "allow",
        s(&stdio),
        "stderr",
    ]));
    out.code(0).stdout_is("stderr write: ok 10\n");
    assert_eq!(out.stderr, "to stderr\n", "{out}");
}

const REACTOR: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $initialized (mut i32) (i32.const 0))
  (data (i32.const 16) "initialized\n")
  (data (i32.const 32) "run after init\n")
  (data (i32.const 48) "run WITHOUT init\n")
  (func $say (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_initialize")
    (global.set $initialized (i32.const 1))
    (call $say (i32.const 16) (i32.const 12)))
  (func (export "run")
    (if (global.get $initialized)
      (then (call $say (i32.const 32) (i32.const 15)))
      (else (call $say (i32.const 48) (i32.const 17))))))
"#;

#[test]
fn reactor_entrypoint_runs_after_initialize() {
    let dir = tempdir();
    let module = wat(dir.path(), "reactor.wat", REACTOR);
    let out = run(warden_run(["--entrypoint", "run", s(&module)]));
    out.code(0)
        .stdout_is("initialized\nrun after init\n")
        .quiet();

    // The same through the config.
    let config = write(dir.path(), "Warden.toml", "entrypoint = \"run\"\n");
    let out = run(warden_run(["--config", s(&config), s(&module)]));
    out.code(0)
        .stdout_is("initialized\nrun after init\n")
        .quiet();
}

#[test]
fn command_entrypoint_calls_the_named_export() {
    let dir = tempdir();
    let module = wat(
        dir.path(),
        "two.wat",
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "start\n")
  (data (i32.const 32) "other\n")
  (func $say (param $ptr i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start") (call $say (i32.const 16)))
  (func (export "other") (call $say (i32.const 32)) (call $exit (i32.const 5))))
"#,
    );
    run(warden_run([s(&module)]))
        .code(0)
        .stdout_is("start\n")
        .quiet();
    run(warden_run(["--entrypoint", "other", s(&module)]))
        .code(5)
        .stdout_is("other\n")
        .quiet();
}

#[test]
fn guest_arguments_may_look_like_flags() {
    let hello = rust_guest("hello");
    let out = run(warden_run([s(&hello), "--dir", "/", "--trace", "-x"]));
    out.code(0).stdout_is(
        "hello from warden\nargc=5\narg[1]=--dir\narg[2]=/\narg[3]=--trace\narg[4]=-x\n",
    );
    assert_eq!(out.stderr, "hello on stderr\n", "{out}");
}

#[test]
fn bad_pointers_are_efault_and_the_guest_keeps_running() {
    let dir = tempdir();
    let out = run(warden_run([
        "--dir",
        &format!("{}::/d", s(dir.path())),
        s(&rust_guest("raw")),
        "efault",
    ]));
    // Nothing may be written by a call that fails: stdout holds only the
    // report lines.
    out.code(0)
        .stdout_is(
            "fd_write iovs out of bounds: err 21
fd_write buffer out of bounds: err 21
fd_write result out of bounds: err 21
fd_write iovs_len huge: err 21
fd_write buffer wraps: err 21
clock_time_get: err 21
random_get: err 21
random_get wraps: err 21
args_sizes_get: err 21
args_get: err 21
fd_prestat_get: err 21
fd_fdstat_get: err 21
path_open path out of bounds: err 21
poll_oneoff events out of bounds: err 21
poll_oneoff subscriptions out of bounds: err 21
fd_read into out of bounds: err 21
still alive
",
        )
        .quiet();
}

#[test]
fn bad_descriptors_are_ebadf() {
    let out = run(warden_run([s(&rust_guest("raw")), "badf"]));
    out.code(0)
        .stdout_is(
            "fd_write 99: err 8
fd_read 99: err 8
fd_close 99: err 8
fd_fdstat_get 99: err 8
fd_renumber 99 -> 1: err 8
fd_seek 99: err 8
fd_prestat_get 99: err 8
fd_write u32::MAX: err 8
path_open on 99: err 8
fd_seek on stdout: err 70
still alive
",
        )
        .quiet();
}

/// Records that end exactly at the top of a 4 GiB memory, and ones that
/// cross it: the first succeed, the others are `EFAULT` with nothing
/// written, and no address arithmetic overflows (a debug build would panic).
#[test]
fn records_at_the_top_of_a_full_memory() {
    let dir = tempdir();
    let module = wat(
        dir.path(),
        "top.wat",
        r#"(module
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 65536)
  (func $expect (param $got i32) (param $want i32) (param $code i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then (call $exit (local.get $code)))))
  (func $subscribe_now (param $at i32)
    (i64.store (local.get $at) (i64.const 7))
    (i32.store8 (i32.add (local.get $at) (i32.const 8)) (i32.const 0))
    (i32.store (i32.add (local.get $at) (i32.const 16)) (i32.const 1))
    (i64.store (i32.add (local.get $at) (i32.const 24)) (i64.const 0)))
  (func (export "_start")
    ;; fd_prestat_get's 8-byte record crossing the top: nothing written.
    (i32.store8 (i32.const 0xFFFFFFFC) (i32.const 0xAA))
    (call $expect (call $prestat (i32.const 3) (i32.const 0xFFFFFFFC)) (i32.const 21) (i32.const 10))
    (call $expect (i32.load8_u (i32.const 0xFFFFFFFC)) (i32.const 0xAA) (i32.const 11))
    ;; Two ready clocks, room for one event below the top: nothing written.
    (call $subscribe_now (i32.const 0))
    (call $subscribe_now (i32.const 48))
    (i32.store8 (i32.const 0xFFFFFFE0) (i32.const 0xAA))
    (call $expect (call $poll (i32.const 0) (i32.const 0xFFFFFFE0) (i32.const 2) (i32.const 100)) (i32.const 21) (i32.const 12))
    (call $expect (i32.load8_u (i32.const 0xFFFFFFE0)) (i32.const 0xAA) (i32.const 13))
    ;; One event exactly at the top fits.
    (call $expect (call $poll (i32.const 0) (i32.const 0xFFFFFFE0) (i32.const 1) (i32.const 100)) (i32.const 0) (i32.const 14))
    (call $expect (i32.load (i32.const 100)) (i32.const 1) (i32.const 15))
    ;; The arguments' strings ending at the last byte of memory fit.
    (call $expect (call $args_sizes (i32.const 200) (i32.const 204)) (i32.const 0) (i32.const 16))
    (i32.store8 (i32.const 0xFFFFFFFF) (i32.const 0xAA))
    (call $expect
      (call $args_get (i32.const 300) (i32.sub (i32.const 0) (i32.load (i32.const 204))))
      (i32.const 0) (i32.const 17))
    (call $expect (i32.load8_u (i32.const 0xFFFFFFFF)) (i32.const 0) (i32.const 18)))
)"#,
    );
    let out = run(warden_run([
        "--dir",
        &format!("{}::/d", s(dir.path())),
        s(&module),
    ]));
    out.code(0).quiet();
}

/// Every preview-1 import with its parameter types (`i` i32, `I` i64).
const PREVIEW1: &[(&str, &str)] = &[
    ("args_get", "ii"),
    ("args_sizes_get", "ii"),
    ("environ_get", "ii"),
    ("environ_sizes_get", "ii"),
    ("clock_res_get", "ii"),
    ("clock_time_get", "iIi"),
    ("fd_advise", "iIIi"),
    ("fd_allocate", "iII"),
    ("fd_datasync", "i"),
    ("fd_fdstat_get", "ii"),
    ("fd_fdstat_set_flags", "ii"),
    ("fd_fdstat_set_rights", "iII"),
    ("fd_filestat_get", "ii"),
    ("fd_filestat_set_size", "iI"),
    ("fd_filestat_set_times", "iIIi"),
    ("fd_pread", "iiiIi"),
    ("fd_prestat_get", "ii"),
    ("fd_prestat_dir_name", "iii"),
    ("fd_pwrite", "iiiIi"),
    ("fd_read", "iiii"),
    ("fd_readdir", "iiiIi"),
    ("fd_seek", "iIii"),
    ("fd_sync", "i"),
    ("fd_tell", "ii"),
    ("fd_write", "iiii"),
    ("path_create_directory", "iii"),
    ("path_filestat_get", "iiiii"),
    ("path_filestat_set_times", "iiiiIIi"),
    ("path_link", "iiiiiii"),
    ("path_open", "iiiiiIIii"),
    ("path_readlink", "iiiiii"),
    ("path_remove_directory", "iii"),
    ("path_rename", "iiiiii"),
    ("path_symlink", "iiiii"),
    ("path_unlink_file", "iii"),
    ("poll_oneoff", "iiii"),
    ("random_get", "ii"),
    ("sock_accept", "iii"),
    ("sock_recv", "iiiiii"),
    ("sock_send", "iiiii"),
    ("sock_shutdown", "ii"),
    ("sched_yield", ""),
    // Last: these close or move descriptors the calls above use.
    ("fd_renumber", "ii"),
    ("fd_close", "i"),
];

/// Every preview-1 call with hostile arguments (all ones, zeros, addresses
/// near the end of a 64 KiB and of a 4 GiB memory, the preopen's fd with
/// the rest all ones), in a memory of one page and in one of 4 GiB: each
/// returns an errno or succeeds, and warden (a debug build, where integer
/// overflow panics) never fails. The guest then exits 0.
#[test]
fn no_guest_argument_makes_warden_fail() {
    for pages in [1, 65_536] {
        hostile_calls(pages);
    }
}

fn hostile_calls(pages: u32) {
    let dir = tempdir();
    let mount = tempdir();
    let mut imports = String::new();
    let mut calls = String::new();
    for (i, (name, params)) in PREVIEW1.iter().enumerate() {
        let types: Vec<&str> = params
            .chars()
            .map(|c| if c == 'I' { "i64" } else { "i32" })
            .collect();
        imports.push_str(&format!(
            "  (import \"wasi_snapshot_preview1\" \"{name}\" (func $f{i} (param {}) (result i32)))\n",
            types.join(" ")
        ));
        let patterns: [&dyn Fn(usize) -> i64; 6] = [
            &|_| -1,
            &|_| 0,
            &|_| 65_532,
            &|_| 0x7fff_fff0,
            &|_| -16,
            &|k| if k == 0 { 3 } else { -1 },
        ];
        // In a 4 GiB memory a 2 GiB length is valid: random_get would fill it.
        let patterns = patterns
            .iter()
            .filter(|p| pages == 1 || p(1) != 0x7fff_fff0);
        for pattern in patterns {
            let args: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(k, t)| format!("({t}.const {})", pattern(k)))
                .collect();
            calls.push_str(&format!("    (drop (call $f{i} {}))\n", args.join(" ")));
        }
    }
    let module = wat(
        dir.path(),
        "hostile.wat",
        &format!("(module\n{imports}  (memory (export \"memory\") {pages})\n  (func (export \"_start\")\n{calls}  ))\n"),
    );
    let out = run(warden_run([
        "--dir",
        &format!("{}::/d", s(mount.path())),
        s(&module),
    ]));
    out.code(0).stdout_is("");
}
