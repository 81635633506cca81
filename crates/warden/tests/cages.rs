//! POSIX processes as cages: C programs that fork, exec, wait, pipe, dup
//! and signal, built with `warden cc` and run with `warden run`.
//!
//! Each program in `crates/guest/tests/c` is built twice, natively with gcc
//! and with `warden cc`, and run both ways: the test passes only when
//! stdout and the exit code agree. The programs print relative facts
//! (`getppid is the parent: yes`), never pids or paths. A few tests look at
//! `warden cc` itself: what it builds and how it fails.

mod cages_support;

use cages_support::*;
use std::time::Duration;

fn same(name: &str) {
    compare(name, &Opts::default());
}

// fork

#[test]
fn fork_copies_memory_and_isolates_it() {
    same("fork_memory");
}

#[test]
fn fork_repeatedly_in_loops_and_from_children() {
    same("fork_many");
}

/// Children checking their memory several forks later, while the parent
/// keeps writing and grows its heap: warden's fork layers, end to end.
#[test]
fn fork_snapshots_stay_exact() {
    same("fork_snapshots");
}

#[test]
fn fork_shares_file_offsets() {
    same("fork_offsets");
}

/// With `max_processes` reached, fork fails with EAGAIN and the program
/// carries on (natively the limit is emulated: see fork_limit.c).
#[test]
fn fork_limit_gives_eagain() {
    compare(
        "fork_limit",
        &Opts {
            max_processes: Some(8),
            ..Opts::default()
        },
    );
}

/// A real, exponential fork bomb (warden only: it would not be contained
/// natively). It ends, every cage reaped, with forks refused on the way.
#[test]
fn fork_bomb_is_contained() {
    let out = run_warden(
        "fork_bomb",
        &Opts {
            max_processes: Some(4),
            timeout: Duration::from_secs(120),
            ..Opts::default()
        },
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "bomb contained: some fork failed with EAGAIN: yes\n"),
        "stderr: {}",
        out.stderr
    );
}

// exec

#[test]
fn fork_exec_passes_args_env_and_keeps_the_pid() {
    same("fork_exec");
}

#[test]
fn exec_of_a_missing_or_invalid_program_fails_in_the_caller() {
    same("exec_fail");
}

#[test]
fn exec_closes_cloexec_descriptors() {
    same("cloexec");
}

// wait

#[test]
fn wait_statuses() {
    same("wait_status");
}

#[test]
fn waitpid_wnohang() {
    same("wnohang");
}

#[test]
fn orphans_are_reparented_to_the_first_process() {
    same("orphans");
}

// pipes and dup

#[test]
fn pipe_eof_nonblocking_and_poll() {
    same("pipe_eof");
}

#[test]
fn pipe_epipe_and_sigpipe() {
    same("pipe_epipe");
}

#[test]
fn pipeline_built_with_dup2() {
    same("pipeline");
}

/// Four cages writev records of two buffers, up to PIPE_BUF bytes, into
/// one pipe: every record arrives whole and in order per writer.
#[test]
fn pipe_writes_up_to_pipe_buf_are_atomic() {
    let out = compare("atomic_writes", &Opts::default());
    assert!(
        out.stdout.contains("records: 1600, torn: 0"),
        "{}",
        out.stdout
    );
}

/// Pipes until refused under a low descriptor limit: the guest gets
/// EMFILE/ENFILE, and fork, wait and signals (which need host descriptors
/// of warden's own) keep working.
#[test]
fn descriptor_exhaustion_leaves_fork_and_signals_working() {
    compare(
        "fd_exhaust",
        &Opts {
            nofile: Some(1024),
            ..Opts::default()
        },
    );
}

// signals

/// A child blocked in the open of a FIFO (either direction) is ended by
/// SIGKILL like any blocked process, and its parent reaps it.
#[test]
fn kill_ends_a_child_blocked_opening_a_fifo() {
    same("fifo_kill");
}

#[test]
fn kill_ends_a_looping_child() {
    same("kill_loop");
}

#[test]
fn signal_handlers_run() {
    same("sig_handler");
}

#[test]
fn sigchld_on_child_exit() {
    same("sigchld");
}

/// Natively the refusal needs a different user: the program drops root in
/// the child that tries, so it can only be compared when run as root.
#[test]
fn kill_of_a_non_descendant_is_refused() {
    if is_root() {
        same("kill_perm");
        return;
    }
    eprintln!("kill_perm: not root, so checked under warden only");
    let out = run_warden("kill_perm", &Opts::default());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("child kills its parent: -1 EPERM"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("child kills its sibling: -1 EPERM"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("sibling survived: exited 4"),
        "{}",
        out.stdout
    );
}

// warden cc

const HELLO: &str = "#include <stdio.h>\nint main(void) { printf(\"hello\\n\"); return 3; }\n";

const FORKS: &str = "#include <stdio.h>\n#include <sys/wait.h>\n#include <unistd.h>\n\
    int main(void) { pid_t p = fork(); if (p == 0) return 7; int st; waitpid(p, &st, 0);\n\
    printf(\"child %d\\n\", WEXITSTATUS(st)); return 0; }\n";

/// A program that needs nothing of the guest library stays a plain WASI
/// module: no `warden` imports, no asyncify; it runs as usual.
#[test]
fn cc_leaves_a_plain_program_plain() {
    let out = cc_source("plain", HELLO, &["-O2"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let iface = interface(&out.module);
    assert!(
        iface
            .imports
            .iter()
            .all(|i| i.starts_with("wasi_snapshot_preview1.")),
        "{:?}",
        iface.imports
    );
    assert!(
        !iface.exports.iter().any(|e| e.starts_with("asyncify")),
        "{:?}",
        iface.exports
    );
    let run = std::process::Command::new(warden_runtime())
        .arg("run")
        .arg(&out.module)
        .env("WARDEN_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hello\n");
}

/// A program that forks has the imports and exports of docs/process-abi.md.
#[test]
fn cc_builds_a_forking_program_for_the_process_abi() {
    let out = cc_source("forks", FORKS, &[], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let iface = interface(&out.module);
    assert!(
        iface.imports.contains(&"warden.proc_fork".to_string()),
        "{:?}",
        iface.imports
    );
    for export in [
        "_start",
        "memory",
        "__stack_pointer",
        "asyncify_start_unwind",
        "asyncify_stop_unwind",
        "asyncify_start_rewind",
        "asyncify_stop_rewind",
        "asyncify_get_state",
        "__warden_fork_buffer",
    ] {
        assert!(
            iface.exports.iter().any(|e| e == export),
            "no export {export}: {:?}",
            iface.exports
        );
    }
    assert_eq!(
        iface.mutable_global_exports,
        vec!["__stack_pointer".to_string()]
    );
    let run = std::process::Command::new(warden_runtime())
        .args(["run", "--allow", "process"])
        .arg(&out.module)
        .env("WARDEN_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "child 7\n");
    assert_eq!(run.status.code(), Some(0));
}

/// Separate compile and link steps work (`-c`, then objects).
#[test]
fn cc_compiles_and_links_separately() {
    let obj = cc_source("separate", FORKS, &["-c"], &[]);
    assert_eq!(obj.code, 0, "{}", obj.stderr);
    let object = obj.dir.join("separate.o");
    std::fs::rename(&obj.module, &object).unwrap();
    let module = obj.dir.join("linked.wasm");
    let link = warden_cc()
        .arg(&object)
        .arg("-o")
        .arg(&module)
        .output()
        .unwrap();
    assert!(
        link.status.success(),
        "{}",
        String::from_utf8_lossy(&link.stderr)
    );
    let iface = interface(&module);
    assert!(iface.exports.iter().any(|e| e == "asyncify_get_state"));
}

/// clang's own errors come through, with clang's exit code.
#[test]
fn cc_reports_compile_errors() {
    let out = cc_source("broken", "int main(void) { return nope; }\n", &[], &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
}

/// Missing tools: one line saying what to install.
#[test]
fn cc_names_what_to_install() {
    let out = cc_source(
        "noclang",
        HELLO,
        &[],
        &[("WARDEN_CLANG", "/nonexistent/clang")],
    );
    assert_ne!(out.code, 0);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("apt-get install clang"),
        "{}",
        out.stderr
    );

    let out = cc_source(
        "nowasmopt",
        FORKS,
        &[],
        &[("WARDEN_WASM_OPT", "/nonexistent/wasm-opt")],
    );
    assert_ne!(out.code, 0);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("apt-get install binaryen"),
        "{}",
        out.stderr
    );

    // A program that does not fork does not need wasm-opt.
    let out = cc_source(
        "plain-nowasmopt",
        HELLO,
        &[],
        &[("WARDEN_WASM_OPT", "/nonexistent/wasm-opt")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}
