//! `--trace` and `--trace=FILE`: one line per syscall, with the call's
//! name, its decoded arguments (fds, paths, flags), its result, why it was
//! refused, and how long it took (docs/cli.md).

mod support;

use support::*;

/// Checks the shape of one line:
/// `[trace] cage N: name(args) -> result (duration)`.
#[track_caller]
fn check_shape(line: &str) {
    let rest = line
        .strip_prefix("[trace] cage ")
        .unwrap_or_else(|| panic!("not a trace line: {line:?}"));
    let (cage, rest) = rest.split_once(": ").expect("cage id");
    assert!(cage.parse::<u32>().is_ok(), "cage id in {line:?}");
    let open = rest
        .find('(')
        .unwrap_or_else(|| panic!("no `(` in {line:?}"));
    let name = &rest[..open];
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "call name in {line:?}"
    );
    let arrow = rest
        .find(") -> ")
        .unwrap_or_else(|| panic!("no `) -> ` in {line:?}"));
    let result = &rest[arrow + 5..];
    assert!(result.ends_with(')'), "no duration in {line:?}");
    let dur_start = result
        .rfind(" (")
        .unwrap_or_else(|| panic!("no duration in {line:?}"));
    let dur = &result[dur_start + 2..result.len() - 1];
    let number_end = dur
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or_else(|| panic!("duration without unit in {line:?}"));
    assert!(number_end > 0, "duration in {line:?}");
    assert!(
        ["ns", "µs", "ms", "s"].contains(&&dur[number_end..]),
        "duration unit in {line:?}"
    );
}

/// The trace lines (those starting with `[trace]`) of `text`, each checked.
fn trace_lines(text: &str) -> Vec<String> {
    let lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("[trace]"))
        .map(str::to_string)
        .collect();
    for l in &lines {
        check_shape(l);
    }
    lines
}

/// The one line for `call` whose text contains every piece, in order.
#[track_caller]
fn find_line<'a>(lines: &'a [String], pieces: &[&str]) -> &'a str {
    let matches = |l: &str| {
        let mut at = 0;
        for p in pieces {
            match l[at..].find(p) {
                Some(i) => at += i + p.len(),
                None => return false,
            }
        }
        true
    };
    lines
        .iter()
        .find(|l| matches(l))
        .unwrap_or_else(|| panic!("no trace line with {pieces:?} in:\n{}", lines.join("\n")))
}

#[test]
fn trace_to_stderr_shows_calls_paths_fds_and_results() {
    let dir = tempdir();
    write(dir.path(), "notes.txt", "my notes\n");
    let out = run(warden_run([
        "--trace",
        "--dir",
        &format!("{}::/data", s(dir.path())),
        s(&rust_guest("fs_ops")),
        "cat",
        "/data/notes.txt",
    ]));
    out.code(0).stdout_is("my notes\n");
    // Every stderr line is a trace line: the guest printed nothing there.
    let lines = trace_lines(&out.stderr);
    assert_eq!(lines.len(), out.stderr.lines().count(), "{out}");
    assert!(
        lines.iter().all(|l| l.starts_with("[trace] cage 1: ")),
        "{out}"
    );

    find_line(
        &lines,
        &[
            "[trace] cage 1: path_open(",
            "fd=3",
            "dirflags=SYMLINK_FOLLOW",
            "path=\"notes.txt\"",
            "oflags=0",
            "fdflags=0",
            ") -> ok fd=4 (",
        ],
    );
    find_line(&lines, &["fd_prestat_get(fd=3", ") -> ok"]);
    find_line(&lines, &["fd_read(fd=4", ") -> ok nread=9"]);
    find_line(&lines, &["fd_write(fd=1", ") -> ok nwritten=9"]);
    find_line(&lines, &["fd_close(fd=4) -> ok"]);
    // The calls appear in the order they were made.
    let pos = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();
    assert!(pos("path_open(") < pos("fd_read(fd=4"));
    assert!(pos("fd_read(fd=4") < pos("fd_write(fd=1"));
}

#[test]
fn trace_shows_why_a_path_was_refused() {
    let dir = tempdir();
    let out = run(warden_run([
        "--trace",
        "--dir",
        &format!("{}::/data", s(dir.path())),
        s(&rust_guest("fs_ops")),
        "cat",
        "/data/../etc/passwd",
    ]));
    out.code(1).stdout_is("cat: err 76\n");
    let lines = trace_lines(&out.stderr);
    find_line(
        &lines,
        &[
            "path_open(fd=3, dirflags=SYMLINK_FOLLOW, path=\"../etc/passwd\", oflags=0",
            "-> ENOTCAPABLE (path escapes its mount) (",
        ],
    );
}

#[test]
fn trace_shows_the_policy_that_denied_a_call() {
    let out = run(warden_run([
        "--trace",
        "--deny",
        "env",
        s(&rust_guest("env")),
        "raw",
    ]));
    out.code(0).stdout_is("environ: err 76\n");
    let lines = trace_lines(&out.stderr);
    find_line(
        &lines,
        &["[trace] cage 1: environ_sizes_get() -> ENOTCAPABLE (denied by policy: env) ("],
    );

    let out = run(warden_run([
        "--trace",
        "--deny",
        "random",
        s(&rust_guest("clock_random")),
        "random",
    ]));
    out.code(0).stdout_is("random: err 76\n");
    find_line(
        &trace_lines(&out.stderr),
        &[
            "random_get(",
            "len=32",
            ") -> ENOTCAPABLE (denied by policy: random)",
        ],
    );

    let out = run(warden_run([
        "--trace",
        "--stdout",
        "deny",
        s(&rust_guest("stdio")),
        "stdout",
    ]));
    out.code(0);
    find_line(
        &trace_lines(&out.stderr),
        &["fd_write(fd=1", ") -> ENOTCAPABLE"],
    );
}

#[test]
fn trace_shows_exit_and_errors() {
    let out = run(warden_run([
        "--trace",
        s(&rust_guest("limits")),
        "exit",
        "3",
    ]));
    out.code(3).stdout_is("exiting 3\n");
    let lines = trace_lines(&out.stderr);
    let last = lines.last().unwrap();
    assert!(last.contains("proc_exit(code=3) -> exit 3"), "{out}");

    let out = run(warden_run(["--trace", s(&rust_guest("raw")), "badf"]));
    out.code(0).has_line("still alive");
    let lines = trace_lines(&out.stderr);
    find_line(&lines, &["fd_close(fd=99) -> EBADF ("]);
    find_line(&lines, &["fd_renumber(fd=99, to=1) -> EBADF ("]);
}

#[test]
fn trace_to_a_file_leaves_stderr_to_the_guest() {
    let dir = tempdir();
    let trace = dir.path().join("trace.log");
    let out = run(warden_run([
        &format!("--trace={}", s(&trace)),
        s(&rust_guest("hello")),
        "x",
    ]));
    out.code(0)
        .stdout_is("hello from warden\nargc=2\narg[1]=x\n");
    assert_eq!(out.stderr, "hello on stderr\n", "{out}");
    let text = read(dir.path(), "trace.log");
    let lines = trace_lines(&text);
    assert_eq!(
        lines.len(),
        text.lines().count(),
        "only trace lines:\n{text}"
    );
    find_line(&lines, &["args_sizes_get() -> ok argc=2"]);
    find_line(&lines, &["fd_write(fd=1", ") -> ok nwritten="]);
    find_line(&lines, &["fd_write(fd=2", ") -> ok nwritten=16"]);
}

#[test]
fn trace_of_a_c_guest() {
    let dir = tempdir();
    let out = run(warden_run([
        "--trace",
        "--dir",
        &format!("{}::/data", s(dir.path())),
        s(&c_guest("fsops")),
        "rw",
        "/data",
    ]));
    out.code(0).has_line("done");
    let lines = trace_lines(&out.stderr);
    find_line(
        &lines,
        &["path_create_directory(fd=3, path=\"work\") -> ok"],
    );
    find_line(
        &lines,
        &["path_create_directory(fd=3, path=\"work\") -> EEXIST"],
    );
    find_line(
        &lines,
        &["path_symlink(target=\"b.txt\", fd=3, path=\"work/sl\") -> ok"],
    );
    find_line(
        &lines,
        &["path_rename(fd=3, old_path=\"work/a.txt\", new_fd=3, new_path=\"work/b.txt\") -> ok"],
    );
    find_line(
        &lines,
        &["path_unlink_file(fd=3, path=\"work/c.txt\") -> ENOENT"],
    );
    find_line(
        &lines,
        &["path_remove_directory(fd=3, path=\"work/d1\") -> ENOTEMPTY"],
    );
}

#[test]
fn no_trace_without_the_flag() {
    let out = run(warden_run([s(&rust_guest("hello"))]));
    out.code(0);
    assert_eq!(out.stderr, "hello on stderr\n", "{out}");
}
