//! What holds for a whole tree of cages rather than for each: the fuel
//! budget (across fork and exec), the total of linear memory, and the
//! `process` subsystem, denied unless granted, whose denial is noted once
//! per run. All with `crates/guest/tests/c/tree_limits.c`, under warden
//! only (natively nothing limits a tree of processes this way).

mod cages_support;

use cages_support::*;

/// The fuel budget of these runs: about 1400 chunks of `tree_limits`, a
/// tenth of a second of guest code.
const FUEL: u64 = 2_000_000_000;

fn opts(flags: &[&str], args: &[&str]) -> Opts {
    Opts {
        flags: flags.iter().map(|s| s.to_string()).collect(),
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Opts::default()
    }
}

/// How many chunks of work the output reports (lines of concurrent
/// writers may interleave, so count the word).
fn chunks(out: &Outcome) -> u64 {
    out.stdout.matches("chunk").count() as u64
}

fn fuel_flags() -> Vec<String> {
    vec!["--fuel".into(), FUEL.to_string()]
}

/// How many chunks the budget pays for with the work done by one child
/// (`burn 1`): the parent waits, so the child holds the whole remainder and
/// the run stops exactly at the budget.
fn chunks_in_the_budget() -> u64 {
    let mut o = opts(&[], &["burn", "1", "1000000"]);
    o.flags = fuel_flags();
    let out = run_warden("tree_limits", &o);
    assert_out_of_fuel(&out);
    let n = chunks(&out);
    assert!(
        n > 100,
        "a budget of {FUEL} should pay for more chunks: {n}"
    );
    n
}

#[track_caller]
fn assert_out_of_fuel(out: &Outcome) {
    assert_eq!(out.code, 121, "{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines,
        [format!("warden: guest ran out of fuel (limit {FUEL})")],
        "{}",
        out.stderr
    );
}

/// Four children each needing more than half the budget: together they
/// get the budget, not four times it. The run stops, as out of fuel, after
/// about the work the budget pays for: never more, and less only by what
/// the other children still held (docs/cli.md; usually a few percent,
/// here with much room for a loaded host).
#[test]
fn fuel_is_one_budget_for_every_forked_cage() {
    let budget = chunks_in_the_budget();
    let children = 4;
    let each = budget * 6 / 10;
    let mut o = opts(&[], &["burn", &children.to_string(), &each.to_string()]);
    o.flags = fuel_flags();
    let out = run_warden("tree_limits", &o);
    assert_out_of_fuel(&out);
    assert!(
        !out.stdout.contains("children finished"),
        "the parent cannot finish: {}",
        out.stdout
    );
    let done = chunks(&out);
    // Forks and the children's own start cost a little fuel too.
    assert!(
        done <= budget + 1,
        "{done} chunks done, the budget pays for {budget}"
    );
    assert!(
        done >= budget / 2,
        "{done} chunks done, the budget pays for {budget}: stopped too early"
    );
}

/// An exec'd image runs on what is left of the budget, not on a new one.
#[test]
fn fuel_budget_carries_over_exec() {
    // One cage throughout: it stops exactly at the budget.
    let mut o = opts(&[], &["exec", "1000000"]);
    o.flags = fuel_flags();
    let out = run_warden("tree_limits", &o);
    assert_out_of_fuel(&out);
    let budget = chunks(&out);
    let each = budget * 6 / 10;
    let mut o = opts(&[], &["exec", &each.to_string()]);
    o.flags = fuel_flags();
    let out = run_warden("tree_limits", &o);
    assert_out_of_fuel(&out);
    assert!(
        !out.stdout.contains("exec'd image finished"),
        "{}",
        out.stdout
    );
    let done = chunks(&out);
    assert!(
        (budget.saturating_sub(2)..=budget + 1).contains(&done),
        "{done} chunks done across exec, the budget pays for {budget}"
    );
}

/// Four children growing 32 MiB each under a 64 MiB total: some growth is
/// refused (malloc returns NULL in the guest, which goes on), and the
/// tree never holds more than the total. Without the limit all of it fits.
#[test]
fn total_memory_bounds_the_whole_tree() {
    let out = run_warden(
        "tree_limits",
        &opts(&["--max-total-memory", "64MiB"], &["grow", "4", "32"]),
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stderr, "", "a refused growth is no error of warden");
    let grown: u64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("children grew: "))
        .and_then(|l| l.strip_suffix(" MiB in total"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total in {}", out.stdout));
    // Each of the five cages also has its initial memory (about 1 MiB).
    assert!(
        (48..64).contains(&grown),
        "children grew {grown} MiB under a 64 MiB total\n{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("children refused memory: 0"),
        "{}",
        out.stdout
    );

    // The same limit from a config.
    let config = root().join("max-total-memory-64.toml");
    std::fs::write(&config, "[limits]\nmax_total_memory = \"64MiB\"\n").unwrap();
    let out = run_warden(
        "tree_limits",
        &opts(
            &["--config", config.to_str().unwrap()],
            &["grow", "4", "32"],
        ),
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stdout.contains("children refused memory: 0"),
        "{}",
        out.stdout
    );

    // The default (4 GiB) holds all of it.
    let out = run_warden("tree_limits", &opts(&[], &["grow", "4", "32"]));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "children grew: 128 MiB in total\nchildren refused memory: 0\n"
        ),
        "{}",
        out.stderr
    );
}

/// A fork whose child's copy of memory would pass the total fails with
/// ENOMEM, as on Linux, and the parent goes on.
#[test]
fn fork_past_the_total_memory_fails_with_enomem() {
    let out = run_warden(
        "tree_limits",
        &opts(&["--max-total-memory", "64MiB"], &["bigfork", "40"]),
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "grew: 40 MiB\nfork: ENOMEM\n"),
        "{}",
        out.stderr
    );
    let out = run_warden("tree_limits", &opts(&[], &["bigfork", "40"]));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "grew: 40 MiB\nfork: ok, child exited 0\n"),
        "{}",
        out.stderr
    );
}

const PROCESS_NOTE: &str = "warden: note: process denied by policy (grant with --allow process)\n";

/// Without `--allow process`, fork and kill fail with ENOTCAPABLE, and
/// warden says once (not once per call) how to grant it.
#[test]
fn process_is_denied_unless_granted_and_noted_once() {
    let denied = "fork: ENOTCAPABLE\n".repeat(3) + &"kill: -1 ENOTCAPABLE\n".repeat(3);
    let mut o = opts(&[], &["deny", "3"]);
    o.allow_process = false;
    let out = run_warden("tree_limits", &o);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, denied.as_str(), PROCESS_NOTE)
    );

    // --quiet: no note.
    o.flags = vec!["--quiet".into()];
    let out = run_warden("tree_limits", &o);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, denied.as_str(), "")
    );

    // --trace names the policy on every denied call; the note is still
    // printed once.
    o.flags = vec!["--trace".into()];
    let out = run_warden("tree_limits", &o);
    assert_eq!(out.stdout, denied, "{}", out.stderr);
    let traced = out
        .stderr
        .lines()
        .filter(|l| l.ends_with(")") && l.contains("-> ENOTCAPABLE (denied by policy: process)"))
        .count();
    assert_eq!(traced, 6, "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("warden: note:").count(),
        1,
        "{}",
        out.stderr
    );

    // Granted by a flag or by the config, fork and kill work.
    let granted = "fork: ok, child exited 0\n".repeat(3) + &"kill: 0 OK\n".repeat(3);
    let out = run_warden("tree_limits", &opts(&[], &["deny", "3"]));
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, granted.as_str(), "")
    );
    let config = root().join("allow-process.toml");
    std::fs::write(&config, "[allow]\nprocess = true\n").unwrap();
    let mut o = opts(&["--config", config.to_str().unwrap()], &["deny", "3"]);
    o.allow_process = false;
    let out = run_warden("tree_limits", &o);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, granted.as_str(), "")
    );
}

/// A subsystem denied in every cage of a tree is noted once for the run.
#[test]
fn a_denial_in_many_cages_is_noted_once_per_run() {
    let out = run_warden(
        "tree_limits",
        &opts(&["--deny", "clocks"], &["clocks", "3"]),
    );
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (
            0,
            "child clock: -1 ENOTCAPABLE\n\
             child clock: -1 ENOTCAPABLE\n\
             child clock: -1 ENOTCAPABLE\n\
             parent clock: -1 ENOTCAPABLE\n",
            "warden: note: clocks denied by policy (grant with --allow clocks)\n"
        )
    );
}
