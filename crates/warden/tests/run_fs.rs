//! Filesystem syscalls on host directories (`--dir`, read-only with `:ro`
//! and `--dir-ro`, and from a config) and on virtual mounts (`--mount`):
//! every family, the errors a POSIX program expects, the files left on the
//! host, and C guests compared with the same program run natively.

mod support;

use std::io::Read;
use std::process::Stdio;
use support::*;

const RUST_RW_TRANSCRIPT: &str = r#"mkdir work: ok
mkdir work again: err 20
create a.txt: ok
read a.txt: ok "hello world\n"
seek: ok pos=6 data="world" cur=11 end=12 back=9
write on read-only handle: err 8
append: ok
stat a.txt: ok len=17 file=true
truncate: ok short=5 extended=8
read truncated: ok [104, 101, 108, 108, 111, 0, 0, 0]
read+write: ok "hello!!!"
rename a->b: ok
exists a=false b=true
rename missing: err 44
hard_link b->c: ok
read c.txt: ok "hello!!!"
hard_link onto existing: err 20
symlink link->b.txt: ok
readlink: ok b.txt
readlink on a file: err 28
lstat/stat link: ok symlink=true target_is_file=true target_len=8
read via link: ok "hello!!!"
dangling symlink: ok
read dangling: err 44
create_dir_all d1/d2: ok
write d1/d2/f: ok
rmdir non-empty: err 55
rmdir a file: err 54
unlink a dir: err 31
read_dir a file: err 54
open missing: err 44
create_new existing: err 20
open file as dir: err 54
rename dir into itself: err 28
rename d1 -> e1: ok
read e1/d2/f: ok "deep"
remove_dir_all e1: ok
readdir work: ok b.txt:file c.txt:file dangling:symlink link:symlink
set_times: ok
mtime: ok 1000000000
unlink c.txt: ok
unlink c.txt again: err 44
unlink dangling: ok
mkdir out: ok
write out/result.txt: ok
done
"#;

#[test]
fn rust_std_fs_on_a_host_dir() {
    let dir = tempdir();
    let out = run(warden_run([
        "--dir",
        &format!("{}::/data", s(dir.path())),
        s(&rust_guest("fs_ops")),
        "rw",
        "/data",
    ]));
    out.code(0).stdout_is(RUST_RW_TRANSCRIPT).quiet();
    assert_eq!(
        tree(dir.path()),
        [
            "work/",
            "work/b.txt \"hello!!!\"",
            "work/link -> b.txt",
            "work/out/",
            "work/out/result.txt \"written by guest\\n\"",
        ]
    );
    let mtime = std::fs::metadata(dir.path().join("work/b.txt"))
        .unwrap()
        .modified()
        .unwrap();
    // b.txt was c.txt's other name until c.txt was unlinked: set_times on
    // c.txt changed it.
    assert_eq!(
        mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        1_000_000_000
    );
}

const RUST_RAW_TRANSCRIPT: &str = r#"mkdir raw: ok ()
open O_CREAT|O_EXCL: ok 4
open O_CREAT|O_EXCL again: err 20
open O_DIRECTORY on a file: err 54
open missing: err 44
write: ok 10
tell: ok 10
pwrite at 2: ok 2
tell after pwrite: ok 10
pread 4 at 1: ok "1AB4"
pread past end: ok 0
seek set 3: ok 3
seek cur 2: ok 5
seek end -1: ok 9
seek before start: err 28
read at end-1: ok "9"
fd_advise: ok ()
fd_allocate: ok ()
size after allocate: ok 16
fd_filestat_set_size 4: ok ()
fstat: ok ("file", 4, 1)
fd_sync: ok ()
fd_datasync: ok ()
fdstat: ok ("file", 0)
set APPEND: ok ()
fdstat flags: ok 1
append write: ok 2
size after append: ok 6
content: ok "01ABzz"
set times: ok ()
mtim: ok 1500000000123456789
open O_TRUNC: ok ()
size after O_TRUNC: ok 0
fd_renumber h -> f: ok ()
read f after renumber: ok "from h"
close old h: err 8
close f: ok ()
close f again: err 8
close g: ok ()
path_link: ok ()
nlink: ok 2
path_symlink: ok ()
readlink: ok "h.txt"
lstat symlink: ok "symlink"
stat symlink: ok "file"
open symlink NOFOLLOW: err 32
symlink onto existing: err 20
path set times: ok ()
path mtim: ok 1000000000
mkdir raw/sub: ok ()
mkdir existing: err 20
open dir: ok ()
readdir: ok 17 entries
  entry-with-a-long-name-00 file
  entry-with-a-long-name-01 file
  entry-with-a-long-name-02 file
  entry-with-a-long-name-03 file
  entry-with-a-long-name-04 file
  entry-with-a-long-name-05 file
  entry-with-a-long-name-06 file
  entry-with-a-long-name-07 file
  entry-with-a-long-name-08 file
  entry-with-a-long-name-09 file
  entry-with-a-long-name-10 file
  entry-with-a-long-name-11 file
  f.bin file
  h.txt file
  h2.txt file
  sl symlink
  sub dir
fdstat dir: ok "dir"
read a dir: err 31
write a dir: err 8
open relative to dir fd: ok Ok("from h")
readdir on file fd: err 54
rename across dirs: ok ()
rename dir over file: err 54
rmdir non-empty: err 55
unlink dir: err 31
rmdir file: err 54
unlink moved: ok ()
rmdir sub: ok ()
unlink symlink: ok ()
stat h.txt still there: ok 6
fd_readdir bad fd: err 8
write before shrink: ok 3
has FD_WRITE: true
drop FD_WRITE: ok ()
has FD_WRITE: false
write after shrink: err 8
grow FD_WRITE back: err 76
write after refused grow: err 8
close rights fd: ok ()
unlink rights.txt: ok ()
set times ATIM and ATIM_NOW: err 28
done
"#;

#[test]
fn raw_preview1_fs_calls_on_a_host_dir() {
    let dir = tempdir();
    let out = run(warden_run([
        "--dir",
        &format!("{}::/data", s(dir.path())),
        s(&rust_guest("fs_ops")),
        "raw",
        "/data",
    ]));
    out.code(0).stdout_is(RUST_RAW_TRANSCRIPT).quiet();
    let mut expected: Vec<String> = vec!["raw/".into()];
    for i in 0..12 {
        expected.push(format!(
            "raw/entry-with-a-long-name-{i:02} \"raw/entry-with-a-long-name-{i:02}\""
        ));
    }
    expected.push("raw/f.bin \"\"".into());
    expected.push("raw/h.txt \"from h\"".into());
    assert_eq!(tree(dir.path()), expected);
    let meta = std::fs::metadata(dir.path().join("raw/h.txt")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::nlink(&meta), 1);
}

/// Runs the C `fsops` scenario natively on one empty directory and under
/// warden on another; both must print the same and leave the same files.
fn c_fsops_like_native(mount_flag: &str) {
    let native_dir = tempdir();
    let native = run(std::process::Command::new(c_native("fsops"))
        .arg("rw")
        .arg(native_dir.path()));
    native.code(0);
    assert!(native.stdout.ends_with("done\n"), "{native}");

    let dir = tempdir();
    let out = run(warden_run([
        mount_flag,
        &format!("{}::/data", s(dir.path())),
        s(&c_guest("fsops")),
        "rw",
        "/data",
    ]));
    out.code(0).quiet();
    let native_lines: Vec<&str> = native.stdout.lines().collect();
    let lines: Vec<&str> = out.stdout.lines().collect();
    for (i, (a, b)) in native_lines.iter().zip(&lines).enumerate() {
        assert_eq!(b, a, "line {} differs from the native run\n{out}", i + 1);
    }
    out.stdout_is(&native.stdout);
    assert_eq!(tree(dir.path()), tree(native_dir.path()));
    assert_eq!(
        read(dir.path(), "work/out/result.txt"),
        "written by c guest\n"
    );
}

#[test]
fn c_file_operations_match_the_native_run() {
    c_fsops_like_native("--dir");
}

const RUST_RO_TRANSCRIPT: &str = r#"read existing: ok "existing\n"
readdir: ok existing.txt sub
stat existing: ok
create new file: err 69
open existing for write: err 69
open existing for append: err 69
open existing with truncate: err 69
mkdir: err 69
rmdir: err 69
unlink: err 69
rename: err 69
hard link: err 69
symlink: err 69
set times by path: err 69
write via read handle: err 8
set_len via read handle: err 28
set_times via read handle: err 69
read existing again: ok "existing\n"
done
"#;

const C_RO_TRANSCRIPT: &str = r#"read existing: ok 9 bytes:existing\x0a
readdir: ok existing.txt:file sub:dir
stat: ok
open O_RDONLY: ok
open O_WRONLY: EROFS
open O_RDWR: EROFS
open O_CREAT: EROFS
open O_TRUNC: EROFS
fopen w: EROFS
mkdir: EROFS
rmdir: EROFS
unlink: EROFS
rename: EROFS
link: EROFS
symlink: EROFS
utimensat: EROFS
ftruncate read-only fd: EINVAL
write read-only fd: EBADF
read existing again: ok 9 bytes:existing\x0a
done
"#;

fn ro_tree() -> tempfile::TempDir {
    let dir = tempdir();
    write(dir.path(), "existing.txt", "existing\n");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    dir
}

/// Both guests try every write on a read-only mount made with `flags`.
fn check_read_only(flags: &[&str], dir: &std::path::Path) {
    let before = tree(dir);
    let mtime = std::fs::metadata(dir.join("existing.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let out = run(warden_run(flags.iter().copied().chain([
        s(&rust_guest("fs_ops")),
        "ro",
        "/data",
    ])));
    out.code(0).stdout_is(RUST_RO_TRANSCRIPT).quiet();
    let out = run(warden_run(flags.iter().copied().chain([
        s(&c_guest("fsops")),
        "ro",
        "/data",
    ])));
    out.code(0).stdout_is(C_RO_TRANSCRIPT).quiet();
    assert_eq!(tree(dir), before, "a read-only mount was changed");
    let after = std::fs::metadata(dir.join("existing.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(after, mtime);
}

#[test]
fn dir_with_ro_suffix_is_read_only() {
    let dir = ro_tree();
    check_read_only(
        &["--dir", &format!("{}::/data:ro", s(dir.path()))],
        dir.path(),
    );
}

#[test]
fn dir_ro_flag_is_read_only() {
    let dir = ro_tree();
    check_read_only(
        &["--dir-ro", &format!("{}::/data", s(dir.path()))],
        dir.path(),
    );
}

#[test]
fn config_read_only_mount() {
    let dir = ro_tree();
    let cfg_dir = tempdir();
    let config = write(
        cfg_dir.path(),
        "Warden.toml",
        &format!(
            "[[mount]]\nguest = \"/data\"\nhost = \"{}\"\nread_only = true\n",
            s(dir.path())
        ),
    );
    check_read_only(&["--config", s(&config)], dir.path());
}

#[test]
fn virtual_mount_is_read_only() {
    let dir = ro_tree();
    check_read_only(
        &["--mount", &format!("/data={}", s(dir.path()))],
        dir.path(),
    );
}

fn sample_tree() -> tempfile::TempDir {
    let dir = tempdir();
    write(dir.path(), "a.txt", "alpha\n");
    write(dir.path(), "nested/deep/b.txt", "beta\n");
    write(dir.path(), "nested/empty.txt", "");
    std::fs::create_dir(dir.path().join("empty_dir")).unwrap();
    std::os::unix::fs::symlink("a.txt", dir.path().join("link")).unwrap();
    dir
}

const SAMPLE_LISTING: &str = r#"a.txt file 6 "alpha\n"
empty_dir/ dir
link symlink -> a.txt
nested/ dir
nested/deep/ dir
nested/deep/b.txt file 5 "beta\n"
nested/empty.txt file 0 ""
"#;

#[test]
fn virtual_mount_shows_the_captured_tree() {
    let dir = sample_tree();
    let out = run(warden_run([
        "--mount",
        &format!("/conf={}", s(dir.path())),
        s(&rust_guest("fs_ops")),
        "tree",
        "/conf",
    ]));
    out.code(0).stdout_is(SAMPLE_LISTING).quiet();
    // A host mount of the same tree lists the same.
    let out = run(warden_run([
        "--dir",
        &format!("{}::/conf", s(dir.path())),
        s(&rust_guest("fs_ops")),
        "tree",
        "/conf",
    ]));
    out.code(0).stdout_is(SAMPLE_LISTING).quiet();
    // Reading through the symlink works in the virtual mount.
    let out = run(warden_run([
        "--mount",
        &format!("/conf={}", s(dir.path())),
        s(&rust_guest("fs_ops")),
        "cat",
        "/conf/link",
    ]));
    out.code(0).stdout_is("alpha\n").quiet();
}

/// Starts `fs_ops reread PATH`, waits for it to have read once, changes the
/// host file, lets it read again, and returns its output.
fn reread_after_host_change(
    mount: &[&str],
    host_file: &std::path::Path,
    guest_path: &str,
) -> String {
    let mut child = warden_run(mount.iter().copied().chain([
        "--stdin",
        "allow",
        s(&rust_guest("fs_ops")),
        "reread",
        guest_path,
    ]))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("waiting\n") {
        match stdout.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => break,
        }
    }
    std::fs::write(host_file, "changed on the host\n").unwrap();
    drop(child.stdin.take());
    stdout.read_to_end(&mut seen).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?} {err}");
    String::from_utf8(seen).unwrap()
}

#[test]
fn virtual_mount_is_captured_at_start() {
    let dir = sample_tree();
    let out = reread_after_host_change(
        &["--mount", &format!("/conf={}", s(dir.path()))],
        &dir.path().join("a.txt"),
        "/conf/a.txt",
    );
    assert_eq!(
        out,
        "before: ok \"alpha\\n\"\nwaiting\nafter: ok \"alpha\\n\"\n"
    );

    // A host mount sees the change.
    write(dir.path(), "a.txt", "alpha\n");
    let out = reread_after_host_change(
        &["--dir", &format!("{}::/conf", s(dir.path()))],
        &dir.path().join("a.txt"),
        "/conf/a.txt",
    );
    assert_eq!(
        out,
        "before: ok \"alpha\\n\"\nwaiting\nafter: ok \"changed on the host\\n\"\n"
    );
}

#[test]
fn preopens_are_listed_in_flag_order() {
    let a = tempdir();
    let b = tempdir();
    let c = sample_tree();
    let out = run(warden_run([
        "--dir",
        &format!("{}::/a", s(a.path())),
        "--dir-ro",
        &format!("{}::/b", s(b.path())),
        "--mount",
        &format!("/c={}", s(c.path())),
        s(&rust_guest("raw")),
        "preopens",
    ]));
    out.code(0).stdout_is("3 /a\n4 /b\n5 /c\n").quiet();
}

#[test]
fn dir_without_guest_path_uses_the_host_path_as_written() {
    let dir = tempdir();
    write(dir.path(), "f.txt", "found\n");
    let out = run(warden_run([
        "--dir",
        s(dir.path()),
        s(&rust_guest("raw")),
        "preopens",
    ]));
    out.code(0)
        .stdout_is(&format!("3 {}\n", s(dir.path())))
        .quiet();
    let out = run(warden_run([
        "--dir",
        s(dir.path()),
        s(&rust_guest("fs_ops")),
        "cat",
        &format!("{}/f.txt", s(dir.path())),
    ]));
    out.code(0).stdout_is("found\n").quiet();
}

#[test]
fn config_mounts_resolve_relative_to_the_config() {
    let root = tempdir();
    write(root.path(), "data/in.txt", "data\n");
    write(root.path(), "ro/in.txt", "read only\n");
    write(root.path(), "conf/app.toml", "name = \"app\"\n");
    let config = write(
        root.path(),
        "Warden.toml",
        r#"
[[mount]]
guest = "/data"
host = "data"

[[mount]]
guest = "/ro"
host = "ro"
read_only = true

[[mount]]
guest = "/etc/app"
virtual = "conf"
"#,
    );
    let fs_ops = rust_guest("fs_ops");
    // Run from elsewhere: the paths are the config's, not the cwd's.
    let elsewhere = tempdir();
    let go = |args: &[&str]| {
        run(warden_run(["--config", s(&config), s(&fs_ops)])
            .args(args)
            .current_dir(elsewhere.path()))
    };
    go(&["write", "/data/out.txt", "from guest"])
        .code(0)
        .stdout_is("write: ok\n");
    assert_eq!(read(root.path(), "data/out.txt"), "from guest");
    go(&["cat", "/ro/in.txt"]).code(0).stdout_is("read only\n");
    go(&["write", "/ro/out.txt", "x"])
        .code(1)
        .stdout_is("write: err 69\n");
    go(&["cat", "/etc/app/app.toml"])
        .code(0)
        .stdout_is("name = \"app\"\n");
    go(&["write", "/etc/app/app.toml", "x"])
        .code(1)
        .stdout_is("write: err 69\n");
    assert!(!root.path().join("ro/out.txt").exists());
    assert_eq!(read(root.path(), "conf/app.toml"), "name = \"app\"\n");
}

#[test]
fn no_files_without_a_mount() {
    let out = run(warden_run([s(&rust_guest("raw")), "preopens"]));
    out.code(0).stdout_is("").quiet();
    // wasi-libc finds no preopen for the path and fails before any call.
    let out = run(warden_run([s(&rust_guest("fs_ops")), "cat", "/etc/passwd"]));
    out.code(1);
    assert!(out.stdout.starts_with("cat: err "), "{out}");
    assert!(!out.stdout.contains("root:"), "{out}");
}

#[test]
fn a_file_written_by_one_run_is_read_by_the_next() {
    // A round trip a user does: the guest writes a file, a second run reads
    // it back through a read-only mount.
    let dir = tempdir();
    let fs_ops = rust_guest("fs_ops");
    run(warden_run([
        "--dir",
        &format!("{}::/out", s(dir.path())),
        s(&fs_ops),
        "write",
        "/out/report.txt",
        "line 1\nline 2\n",
    ]))
    .code(0);
    let mut child = warden_run([
        "--dir-ro",
        &format!("{}::/in", s(dir.path())),
        s(&fs_ops),
        "cat",
        "/in/report.txt",
    ])
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(text, "line 1\nline 2\n");
}

fn mkfifo(dir: &std::path::Path) -> std::path::PathBuf {
    let fifo = dir.join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    fifo
}

/// Opening a FIFO that nobody opens from the other side blocks, as on
/// Linux, but `--timeout` still ends the run (the host thread never sits
/// in open(2)).
#[test]
fn a_blocked_fifo_open_ends_at_the_timeout() {
    let dir = tempdir();
    mkfifo(dir.path());
    for mode in ["read", "write"] {
        let out = run_limited(
            warden_run([
                "--timeout",
                "500ms",
                "--dir",
                &format!("{}::/d", s(dir.path())),
                s(&c_guest("fifo")),
                mode,
                "/d/fifo",
            ]),
            b"",
            std::time::Duration::from_secs(30),
        );
        out.code(124).stdout_is("opening\n");
        assert!(out.warden_line().contains("time limit"), "{mode}: {out}");
    }
}

/// A FIFO between the host and a guest carries data both ways, with
/// blocking opens on the guest's side.
#[test]
fn a_fifo_carries_data_to_and_from_the_host() {
    let dir = tempdir();
    let fifo = mkfifo(dir.path());
    let mount = format!("{}::/d", s(dir.path()));
    // The host writes once the guest has opened for reading.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, "from the host\n").unwrap())
    };
    let out = run(warden_run([
        "--dir",
        &mount,
        s(&c_guest("fifo")),
        "read",
        "/d/fifo",
    ]));
    writer.join().unwrap();
    out.code(0)
        .stdout_is("opening\nfrom the host\nread: EOF\n")
        .quiet();
    // The guest writes once the host has opened for reading.
    let reader = std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap());
    let out = run(warden_run([
        "--dir",
        &mount,
        s(&c_guest("fifo")),
        "write",
        "/d/fifo",
    ]));
    out.code(0).stdout_is("opening\nwrite: OK\n").quiet();
    assert_eq!(reader.join().unwrap(), "through the fifo\n");
}
