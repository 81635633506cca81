//! Threads (wasi-threads, docs/process-abi.md "Threads"): Rust programs
//! built for wasm32-wasip1-threads run unchanged with `--allow threads`;
//! an exit or a trap in any thread ends the whole cage; `--timeout`,
//! `--fuel`, `--max-memory` and `--max-threads` hold across all threads.

mod support;

use std::time::Duration;
use support::*;

/// `warden run --allow threads [extra...] threads.wasm MODE`.
fn threads(extra: &[&str], mode: &str) -> Output {
    let guest = rust_threads_guest("threads");
    let mut args: Vec<&str> = vec!["--allow", "threads"];
    args.extend_from_slice(extra);
    args.push(s(&guest));
    args.push(mode);
    run(warden_run(args))
}

/// A C program built with `warden cc -pthread` and run by warden prints
/// what the same program built with `gcc -pthread` prints natively, and
/// exits with the same code.
#[test]
fn c_pthread_programs_behave_as_natively() {
    let wasm = cc_pthread_guest("pthreads");
    let native = c_native_pthread("pthreads");
    let modes = [
        "sum",
        "mutex",
        "condvar",
        "tls",
        "detach",
        "exit-thread",
        "exit-main",
        "exit-value",
        "fork",
        "fork-thread",
        "signal",
    ];
    for mode in modes {
        let ours = run(warden_run([
            "--allow",
            "threads",
            "--allow",
            "process",
            s(&wasm),
            mode,
        ]));
        let theirs = run(std::process::Command::new(&native).arg(mode));
        assert_eq!(
            (ours.code, &ours.stdout),
            (theirs.code, &theirs.stdout),
            "{mode}: warden\n{ours}\nnative\n{theirs}"
        );
        assert!(!ours.stdout.is_empty(), "{mode}: {ours}");
    }
}

#[test]
fn pthread_create_fails_with_eagain_at_max_threads() {
    let wasm = cc_pthread_guest("pthreads");
    // The main thread counts: 4 more threads, then EAGAIN.
    let out = run(warden_run([
        "--allow",
        "threads",
        "--max-threads",
        "5",
        s(&wasm),
        "max",
    ]));
    out.code(0).stdout_is("created 4, then EAGAIN\n");
    // The default (64).
    let out = run(warden_run(["--allow", "threads", s(&wasm), "max"]));
    out.code(0).stdout_is("created 63, then EAGAIN\n");
}

#[test]
fn fork_in_a_threaded_cage_needs_the_process_grant() {
    let wasm = cc_pthread_guest("pthreads");
    let out = run(warden_run(["--allow", "threads", s(&wasm), "fork"]));
    out.code(1).stdout_is("");
    assert_eq!(
        out.stderr,
        "warden: note: process denied by policy (grant with --allow process)\n\
         fork: Capabilities insufficient\n",
        "{out}"
    );
}

#[test]
fn spawn_and_join_sum_exactly() {
    threads(&[], "sum")
        .code(0)
        .stdout_is("sum 500000500000\n")
        .quiet();
}

#[test]
fn a_mutex_counter_is_exact() {
    threads(&[], "mutex")
        .code(0)
        .stdout_is("count 80000\n")
        .quiet();
}

#[test]
fn mpsc_producers_and_a_consumer() {
    // 3 producers × (p·1000 + 0..1000): 3000 values summing to 4_498_500.
    threads(&[], "mpsc")
        .code(0)
        .stdout_is("received 3000 total 4498500\n")
        .quiet();
}

#[test]
fn scoped_threads_borrow_the_stack() {
    threads(&[], "scoped")
        .code(0)
        .stdout_is("scoped 10100\n")
        .quiet();
}

#[test]
fn a_condvar_hands_off_both_ways() {
    threads(&[], "condvar")
        .code(0)
        .stdout_is("condvar done\n")
        .quiet();
}

#[test]
fn thread_locals_are_per_thread() {
    threads(&[], "tls")
        .code(0)
        .stdout_is("tls [1, 2, 3] main 100\n")
        .quiet();
}

#[test]
fn exit_from_a_second_thread_ends_the_cage_with_its_code() {
    // The main thread is parked in a wait only the guest could end: the
    // cage still ends, at once, with the worker's status.
    let out = threads(&[], "exit");
    out.code(3).stdout_is("worker exiting\n").quiet();
    assert!(out.elapsed < Duration::from_secs(20), "{out}");
}

#[test]
fn a_panic_in_a_thread_is_a_trap_of_the_cage() {
    let out = threads(&[], "panic");
    out.code(134).stdout_is("");
    assert!(out.stderr.contains("worker panicked"), "{out}");
    assert!(out.warden_line().contains("trapped"), "{out}");
}

#[test]
fn max_threads_makes_spawn_fail_past_it() {
    // Main + the first worker are 2: the second spawn fails with EAGAIN.
    threads(&["--max-threads", "2"], "spawn3")
        .code(0)
        .stdout_is("spawn 0 ok\nspawn 1 failed: WouldBlock\ndone\n");
    // The default (64) lets both run.
    threads(&[], "spawn3")
        .code(0)
        .stdout_is("spawn 0 ok\nspawn 1 ok\ndone\n")
        .quiet();
}

#[test]
fn threads_are_denied_by_default() {
    let guest = rust_threads_guest("threads");
    let out = run(warden_run([s(&guest), "sum"]));
    // std::thread::spawn panics when the spawn fails: the program aborts.
    out.code(134).stdout_is("");
    assert!(out.stderr.contains(&note_line("threads")), "{out}");
}

#[test]
fn a_timeout_ends_a_cage_whose_second_thread_spins() {
    let guest = rust_threads_guest("threads");
    let out = run(warden_run([
        "--allow",
        "threads",
        "--timeout",
        "1s",
        s(&guest),
        "spin",
    ]));
    out.code(124).stdout_is("spinning\n");
    assert!(out.warden_line().contains("time limit"), "{out}");
    assert!(out.elapsed < Duration::from_secs(20), "{out}");
}

#[test]
fn a_fuel_budget_is_shared_by_all_threads() {
    let out = threads(&["--fuel", "50000000"], "burn");
    out.code(121).stdout_is("");
    assert!(out.warden_line().contains("fuel"), "{out}");
}

#[test]
fn the_memory_limit_holds_for_all_threads() {
    let out = threads(&["--max-memory", "64MiB"], "grow");
    out.code(122).stdout_is("");
    assert!(
        out.warden_line().contains("memory limit of 64 MiB"),
        "{out}"
    );
}

#[test]
fn thread_spawn_is_traced() {
    let out = threads(&["--trace"], "sum");
    out.code(0);
    assert!(
        out.stderr.contains("thread-spawn(start_arg=0x"),
        "no thread-spawn line in the trace\n{out}"
    );
}
