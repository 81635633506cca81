//! Limits and abnormal ends: memory over `--max-memory` (122), fuel
//! exhausted (121), `--timeout` passed (124), stack overflow (123), traps
//! (134) and `proc_raise` (128+N). The guest stops, warden prints one line
//! naming the cause, and exits with the documented code.

mod support;

use std::time::Duration;
use support::*;

#[test]
fn memory_within_the_limit_works() {
    let out = run(warden_run([
        "--max-memory",
        "64MiB",
        s(&rust_guest("limits")),
        "alloc",
        "16",
    ]));
    out.code(0)
        .stdout_is("allocated 16 MiB (checksum true)\n")
        .quiet();
}

#[test]
fn memory_over_the_limit_is_exit_122() {
    let out = run(warden_run([
        "--max-memory",
        "32MiB",
        s(&rust_guest("limits")),
        "alloc",
        "64",
    ]));
    out.code(122).stdout_is("");
    let line = out.warden_line();
    assert!(line.contains("memory limit"), "{out}");
    assert!(line.contains("32"), "the line names the limit\n{out}");

    // The same limit from a config.
    let dir = tempdir();
    let config = write(
        dir.path(),
        "Warden.toml",
        "[limits]\nmax_memory = \"32MiB\"\n",
    );
    let out = run(warden_run([
        "--config",
        s(&config),
        s(&rust_guest("limits")),
        "alloc",
        "64",
    ]));
    out.code(122);
    assert!(out.warden_line().contains("memory limit"), "{out}");
}

#[test]
fn a_module_whose_initial_memory_is_over_the_limit_does_not_run() {
    // The Rust guests start with more than 1 MiB of linear memory.
    let out = run(warden_run([
        "--max-memory",
        "256KiB",
        s(&rust_guest("hello")),
    ]));
    out.code(122).stdout_is("");
    assert!(out.warden_line().contains("memory limit"), "{out}");
}

#[test]
fn a_total_memory_below_the_initial_memory_is_exit_122() {
    // The Rust guests start with more than 1 MiB of linear memory.
    let out = run(warden_run([
        "--max-total-memory",
        "512KiB",
        s(&rust_guest("hello")),
    ]));
    out.code(122).stdout_is("");
    let line = out.warden_line();
    assert!(line.contains("memory limit of 512 KiB"), "{out}");
    // A total under one cage's own limit contradicts it.
    let out = run(warden_run([
        "--max-memory",
        "2MiB",
        "--max-total-memory",
        "1MiB",
        s(&rust_guest("hello")),
    ]));
    let line = out.bad_input();
    assert!(line.contains("max_total_memory"), "{out}");
}

#[test]
fn fuel_exhausted_is_exit_121() {
    let out = run(warden_run([
        "--fuel",
        "5000000",
        s(&rust_guest("limits")),
        "spin",
    ]));
    out.code(121).stdout_is("spinning\n");
    let line = out.warden_line();
    assert!(line.contains("fuel"), "{out}");

    // Enough fuel: the program finishes.
    let out = run(warden_run(["--fuel", "100000000", s(&rust_guest("hello"))]));
    out.code(0).has_line("hello from warden");

    // From a config; 0 there means unlimited.
    let dir = tempdir();
    let config = write(dir.path(), "Warden.toml", "[limits]\nfuel = 5000000\n");
    let out = run(warden_run([
        "--config",
        s(&config),
        s(&rust_guest("limits")),
        "spin",
    ]));
    out.code(121);
    let config = write(dir.path(), "Warden.toml", "[limits]\nfuel = 0\n");
    run(warden_run([
        "--config",
        s(&config),
        s(&rust_guest("hello")),
    ]))
    .code(0);
}

#[test]
fn timeout_on_a_spinning_guest_is_exit_124() {
    let out = run(warden_run([
        "--timeout",
        "1s",
        s(&rust_guest("limits")),
        "spin",
    ]));
    out.code(124).stdout_is("spinning\n");
    assert!(out.warden_line().contains("time limit"), "{out}");
    assert!(out.elapsed >= Duration::from_secs(1), "{out}");
    assert!(
        out.elapsed < Duration::from_secs(15),
        "stopped too late\n{out}"
    );
}

#[test]
fn timeout_on_a_sleeping_guest_is_exit_124() {
    let out = run(warden_run([
        "--timeout",
        "500ms",
        s(&rust_guest("limits")),
        "sleep_forever",
    ]));
    out.code(124).stdout_is("sleeping\n");
    assert!(out.warden_line().contains("time limit"), "{out}");
    assert!(
        out.elapsed < Duration::from_secs(15),
        "stopped too late\n{out}"
    );

    // A C program in nanosleep, with the timeout from a config.
    let dir = tempdir();
    let config = write(dir.path(), "Warden.toml", "[limits]\ntimeout = \"500ms\"\n");
    let out = run(warden_run([
        "--config",
        s(&config),
        s(&c_guest("envclock")),
        "sleep",
        "60000",
    ]));
    out.code(124).stdout_is("");
    assert!(out.warden_line().contains("time limit"), "{out}");
    assert!(
        out.elapsed < Duration::from_secs(15),
        "stopped too late\n{out}"
    );
}

#[test]
fn timeout_on_a_guest_blocked_reading_stdin() {
    // stdin allowed and never closed by the test until warden is done.
    let mut child = warden_run([
        "--timeout",
        "500ms",
        "--stdin",
        "allow",
        s(&rust_guest("stdio")),
        "stdin",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let stdin = child.stdin.take().unwrap();
    let start = std::time::Instant::now();
    let out = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("warden did not stop a guest blocked on stdin at its timeout");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    assert_eq!(out.code(), Some(124));
}

#[test]
fn the_guest_finishing_before_the_timeout_is_its_own_exit() {
    let out = run(warden_run([
        "--timeout",
        "30s",
        s(&rust_guest("limits")),
        "exit",
        "5",
    ]));
    out.code(5).stdout_is("exiting 5\n").quiet();
    assert!(out.elapsed < Duration::from_secs(15), "{out}");
}

#[test]
fn recursion_within_the_stack_works() {
    let out = run(warden_run([s(&rust_guest("limits")), "recurse", "5000"]));
    out.code(0).stdout_is("depth 5000 ok (true)\n").quiet();
}

#[test]
fn stack_overflow_is_exit_123() {
    let out = run(warden_run([
        "--max-stack",
        "64KiB",
        s(&rust_guest("limits")),
        "recurse",
        "50000",
    ]));
    out.code(123).stdout_is("");
    assert!(out.warden_line().contains("stack"), "{out}");

    // Unbounded recursion with the default stack.
    let out = run(warden_run([
        s(&rust_guest("limits")),
        "recurse",
        "100000000",
    ]));
    out.code(123);
    assert!(out.warden_line().contains("stack"), "{out}");
}

#[test]
fn a_bigger_stack_allows_deeper_recursion() {
    let out = run(warden_run([
        "--max-stack",
        "4MiB",
        s(&rust_guest("limits")),
        "recurse",
        "50000",
    ]));
    out.code(0).stdout_is("depth 50000 ok (true)\n").quiet();
    let dir = tempdir();
    let config = write(
        dir.path(),
        "Warden.toml",
        "[limits]\nmax_stack = \"64KiB\"\n",
    );
    let out = run(warden_run([
        "--config",
        s(&config),
        s(&rust_guest("limits")),
        "recurse",
        "50000",
    ]));
    out.code(123);
}

#[test]
fn traps_are_exit_134() {
    let limits = rust_guest("limits");
    let out = run(warden_run([s(&limits), "trap", "unreachable"]));
    out.code(134).stdout_is("about to trap\n");
    let line = out.warden_line();
    assert!(line.starts_with("warden: guest trapped"), "{out}");
    assert!(line.contains("unreachable"), "{out}");

    let out = run(warden_run([s(&limits), "trap", "oob"]));
    out.code(134).stdout_is("about to trap\n");
    assert!(out.warden_line().contains("out of bounds"), "{out}");

    // A Rust panic prints its message, then aborts (a trap).
    let out = run(warden_run([s(&limits), "trap", "panic"]));
    out.code(134).stdout_is("about to panic\n");
    assert!(out.stderr.contains("guest panicked on purpose"), "{out}");
    assert!(
        out.warden_line().starts_with("warden: guest trapped"),
        "{out}"
    );
}

#[test]
fn c_traps_are_exit_134() {
    let trap = c_guest("trap");
    for (what, cause) in [
        ("unreachable", "unreachable"),
        ("div0", "divide by zero"),
        ("abort", "unreachable"),
        ("oob", "out of bounds"),
    ] {
        let out = run(warden_run([s(&trap), what]));
        out.code(134).stdout_is(&format!("about to {what}\n"));
        let line = out.warden_line();
        assert!(line.starts_with("warden: guest trapped"), "{out}");
        assert!(line.contains(cause), "{what}: expected {cause:?}\n{out}");
    }
}

#[test]
fn proc_raise_ends_the_guest_with_128_plus_n() {
    let limits = rust_guest("limits");
    for (sig, code, name) in [
        (15, 143, "SIGTERM"),
        (9, 137, "SIGKILL"),
        (2, 130, "SIGINT"),
        (6, 134, "SIGABRT"),
    ] {
        let out = run(warden_run([s(&limits), "raise", &sig.to_string()]));
        out.code(code).stdout_is(&format!("raising {sig}\n"));
        let line = out.warden_line();
        assert!(line.contains(name), "names the signal\n{out}");
    }
}

#[test]
fn proc_raise_of_a_harmless_signal_returns() {
    let limits = rust_guest("limits");
    // Signal 0 checks nothing; SIGCHLD (WASI 16) is ignored by default.
    for sig in [0, 16] {
        let out = run(warden_run([s(&limits), "raise", &sig.to_string()]));
        out.code(0)
            .stdout_is(&format!("raising {sig}\nproc_raise returned 0\n"))
            .quiet();
    }
}
