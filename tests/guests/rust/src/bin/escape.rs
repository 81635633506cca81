//! Tries to get out of the preopen named DIR. Each attempt prints
//! `label: ok ...` or `label: err N` (N = WASI errno).
//!
//! `escape DIR CANARY` where CANARY is the absolute *host* path of a file
//! outside the mount. The mount is expected to hold `inside.txt`, `sub/`,
//! and (for host mounts, made by the test) the symlinks `abs_link -> <dir of
//! CANARY>`, `root_link -> /`, `up_link -> ..`, `canary_link ->
//! ../canary.txt`, `loop_a -> loop_b`, `loop_b -> loop_a`, `self_loop ->
//! self_loop`. With `escape DIR CANARY nolinks` the symlink attempts are
//! skipped (virtual mounts made from a plain tree).
use warden_test_guests::*;

fn attempt_open(label: &str, d: u32, path: &str, lookup: u32, oflags: u32) {
    match open_at(d, path, lookup, oflags, 0) {
        Ok(fd) if oflags & sys::O_DIRECTORY != 0 => {
            let kind = fdstat(fd).map(|s| filetype_name(s.filetype)).unwrap_or("?");
            println!("{label}: ok {kind}");
            close(fd).ok();
        }
        Ok(fd) => {
            let data = read_all_fd(fd)
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_else(|e| format!("<read err {e}>"));
            println!("{label}: ok {data:?}");
            close(fd).ok();
        }
        Err(e) => println!("{label}: err {e}"),
    }
}

fn main() {
    let args = args();
    let (dir, canary) = match (args.first(), args.get(1)) {
        (Some(d), Some(c)) => (d.clone(), c.clone()),
        _ => usage("escape DIR CANARY [nolinks]"),
    };
    let links = args.get(2).map(String::as_str) != Some("nolinks");
    let d = preopen(&dir);
    let follow = sys::LOOKUP_SYMLINK_FOLLOW;

    // Inside the mount: these work.
    attempt_open("inside", d, "inside.txt", follow, 0);
    attempt_open("sub/../inside", d, "sub/../inside.txt", follow, 0);
    attempt_open("./inside", d, "./inside.txt", follow, 0);
    attempt_open("dot dir", d, ".", follow, sys::O_DIRECTORY);

    // `..` past the root.
    attempt_open("dotdot file", d, "../canary.txt", follow, 0);
    attempt_open("dotdot dir", d, "..", follow, sys::O_DIRECTORY);
    attempt_open("sub/../../canary", d, "sub/../../canary.txt", follow, 0);
    attempt_open(
        "deep dotdot",
        d,
        "sub/../../../../../../../../etc/passwd",
        follow,
        0,
    );
    // Absolute paths are not relative to the mount.
    attempt_open("absolute canary", d, &canary, follow, 0);
    attempt_open("absolute /etc/passwd", d, "/etc/passwd", follow, 0);
    attempt_open("absolute /", d, "/", follow, sys::O_DIRECTORY);

    if links {
        attempt_open("abs_link", d, "abs_link/canary.txt", follow, 0);
        attempt_open("root_link", d, "root_link/etc/passwd", follow, 0);
        attempt_open("up_link", d, "up_link/canary.txt", follow, 0);
        attempt_open("canary_link", d, "canary_link", follow, 0);
        attempt_open("loop_a", d, "loop_a", follow, 0);
        attempt_open("self_loop", d, "self_loop", follow, 0);
        attempt_open("loop in the middle", d, "loop_a/x", follow, 0);
        show_stat("stat abs_link nofollow", stat_at(d, 0, "abs_link"));
        show_stat("stat abs_link follow", stat_at(d, follow, "abs_link"));
        show_stat("stat canary_link follow", stat_at(d, follow, "canary_link"));
        match readlink_at(d, "abs_link") {
            Ok(_) => println!("readlink abs_link: ok"),
            Err(e) => println!("readlink abs_link: err {e}"),
        }
        println!(
            "create through canary_link: {}",
            res(
                open_at(d, "canary_link", follow, sys::O_CREAT | sys::O_TRUNC, 0).map(|fd| {
                    write_fd(fd, b"pwned").ok();
                    close(fd).ok();
                })
            )
        );
        println!(
            "write through abs_link: {}",
            res(
                open_at(d, "abs_link/new.txt", follow, sys::O_CREAT, 0).map(|fd| {
                    write_fd(fd, b"pwned").ok();
                    close(fd).ok();
                })
            )
        );
        println!(
            "mkdir through up_link: {}",
            res(mkdir_at(d, "up_link/evil_dir"))
        );
    }

    // Writes that would land outside.
    println!(
        "create ../evil.txt: {}",
        res(
            open_at(d, "../evil.txt", follow, sys::O_CREAT, 0).map(|fd| {
                write_fd(fd, b"pwned").ok();
                close(fd).ok();
            })
        )
    );
    println!("mkdir ../evil_dir: {}", res(mkdir_at(d, "../evil_dir")));
    println!(
        "rename inside -> ../stolen.txt: {}",
        res(rename_at(d, "inside.txt", d, "../stolen.txt"))
    );
    println!(
        "rename ../canary.txt -> stolen.txt: {}",
        res(rename_at(d, "../canary.txt", d, "stolen.txt"))
    );
    println!(
        "link ../canary.txt -> hard.txt: {}",
        res(link_at(d, 0, "../canary.txt", d, "hard.txt"))
    );
    println!(
        "unlink ../canary.txt: {}",
        res(unlink_at(d, "../canary.txt"))
    );
    println!("rmdir ..: {}", res(rmdir_at(d, "..")));
    println!(
        "stat ../canary.txt: {}",
        res(stat_at(d, 0, "../canary.txt"))
    );
    println!(
        "set times ../canary.txt: {}",
        res({
            let p = "../canary.txt";
            let e = unsafe {
                sys::path_filestat_set_times(d, follow, p.as_ptr(), p.len(), 0, 0, sys::FST_MTIM)
            };
            if e == 0 {
                Ok(())
            } else {
                Err(e)
            }
        })
    );
    println!("readlink ../x: {}", res(readlink_at(d, "../x")));

    // A symlink made by the guest that points outside: either refused when
    // made, or refused when followed.
    match symlink_at("../canary.txt", d, "made_link") {
        Ok(()) => attempt_open("made_link", d, "made_link", follow, 0),
        Err(e) => println!("made_link: refused {e}"),
    }
    match symlink_at(&canary, d, "made_abs_link") {
        Ok(()) => attempt_open("made_abs_link", d, "made_abs_link", follow, 0),
        Err(e) => println!("made_abs_link: refused {e}"),
    }

    // Through std (wasi-libc resolves `/DIR/...` to the preopen + rest).
    let std_path = format!("{}/../canary.txt", dir.trim_end_matches('/'));
    report_io("std read DIR/../canary.txt", std::fs::read(&std_path)).ok();
    report_io("std read canary by host path", std::fs::read(&canary)).ok();
    report_io(
        "std write DIR/../evil2.txt",
        std::fs::write(
            format!("{}/../evil2.txt", dir.trim_end_matches('/')),
            "pwned",
        ),
    )
    .ok();
    println!("done");
}

fn res<T>(r: WasiResult<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("err {e}"),
    }
}

fn show_stat(label: &str, r: WasiResult<sys::Filestat>) {
    match r {
        Ok(s) => println!("{label}: ok {}", filetype_name(s.filetype)),
        Err(e) => println!("{label}: err {e}"),
    }
}
