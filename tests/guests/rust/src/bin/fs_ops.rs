//! Filesystem scenarios. Every step prints one line, `label: ok ...` or
//! `label: err N` (N = WASI errno), so that a test can compare the whole
//! transcript.
//!
//! - `rw DIR`: std::fs on a writable directory (create, write, read, seek,
//!   append, truncate, rename, hard link, symlink, readlink, mkdir, rmdir,
//!   readdir, stat, set times, unlink, and the common errors).
//! - `raw DIR`: the same families through raw preview1 calls, plus pread,
//!   pwrite, fd_advise, fd_allocate, fd_renumber, fdstat flags, O_EXCL,
//!   O_DIRECTORY, O_TRUNC, NOFOLLOW, fd_readdir with a small buffer, tell,
//!   sync.
//! - `ro DIR`: every kind of write on a read-only directory that holds
//!   `existing.txt` and `sub/`; reads still work.
//! - `tree DIR`: recursive listing `path type size` and file contents.
//! - `cat PATH`: prints the file.
//! - `write PATH TEXT`: creates/truncates PATH with TEXT.
//! - `reread PATH`: prints PATH, waits for end of stdin, prints it again.
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, UNIX_EPOCH};
use warden_test_guests::*;

fn main() {
    let args = args();
    let cmd = args.first().map(String::as_str);
    let dir = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| usage("fs_ops CMD DIR"));
    match cmd {
        Some("rw") => rw(&dir),
        Some("raw") => raw(&dir),
        Some("ro") => ro(&dir),
        Some("tree") => tree(&dir, ""),
        Some("cat") => match fs::read(&dir) {
            Ok(data) => print!("{}", String::from_utf8_lossy(&data)),
            Err(e) => {
                report_io::<()>("cat", Err(e)).ok();
                std::process::exit(1);
            }
        },
        Some("reread") => {
            // Reads PATH, waits for stdin to close, reads PATH again: a
            // test changes the host file in between.
            let show = |label: &str| match fs::read_to_string(&dir) {
                Ok(s) => println!("{label}: ok {s:?}"),
                Err(e) => report_io::<()>(label, Err(e)).map(|_| ()).unwrap_or(()),
            };
            show("before");
            println!("waiting");
            std::io::stdout().flush().ok();
            let _ = read_all_fd(0);
            show("after");
        }
        Some("write") => {
            let text = args.get(2).cloned().unwrap_or_default();
            if report_io("write", fs::write(&dir, text)).is_err() {
                std::process::exit(1);
            }
        }
        _ => usage("fs_ops rw|raw|ro|tree|cat|write ..."),
    }
}

fn rw(dir: &str) {
    let w = format!("{dir}/work");
    let p = |name: &str| format!("{w}/{name}");

    report_io("mkdir work", fs::create_dir(&w)).ok();
    report_io("mkdir work again", fs::create_dir(&w)).ok();

    // create + write + read back
    let r = File::create(p("a.txt")).and_then(|mut f| f.write_all(b"hello world\n"));
    report_io("create a.txt", r).ok();
    match fs::read_to_string(p("a.txt")) {
        Ok(s) => println!("read a.txt: ok {s:?}"),
        Err(e) => report_io::<()>("read a.txt", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }

    // seek + partial read
    let r = File::open(p("a.txt")).and_then(|mut f| {
        let pos = f.seek(SeekFrom::Start(6))?;
        let mut buf = [0u8; 5];
        f.read_exact(&mut buf)?;
        let cur = f.stream_position()?;
        let end = f.seek(SeekFrom::End(0))?;
        let back = f.seek(SeekFrom::Current(-3))?;
        Ok(format!(
            "pos={pos} data={:?} cur={cur} end={end} back={back}",
            String::from_utf8_lossy(&buf)
        ))
    });
    match r {
        Ok(s) => println!("seek: ok {s}"),
        Err(e) => report_io::<()>("seek", Err(e)).map(|_| ()).unwrap_or(()),
    }

    // write through a read-only handle fails
    let r = File::open(p("a.txt")).and_then(|mut f| f.write_all(b"x"));
    report_io("write on read-only handle", r).ok();

    // append
    let r = OpenOptions::new()
        .append(true)
        .open(p("a.txt"))
        .and_then(|mut f| f.write_all(b"more\n"));
    report_io("append", r).ok();
    match fs::metadata(p("a.txt")) {
        Ok(m) => println!("stat a.txt: ok len={} file={}", m.len(), m.is_file()),
        Err(e) => report_io::<()>("stat a.txt", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }

    // truncate and extend
    let r = OpenOptions::new()
        .write(true)
        .open(p("a.txt"))
        .and_then(|f| {
            f.set_len(5)?;
            let short = f.metadata()?.len();
            f.set_len(8)?;
            Ok((short, f.metadata()?.len()))
        });
    match r {
        Ok((a, b)) => println!("truncate: ok short={a} extended={b}"),
        Err(e) => report_io::<()>("truncate", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }
    match fs::read(p("a.txt")) {
        Ok(d) => println!("read truncated: ok {d:?}"),
        Err(e) => report_io::<()>("read truncated", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }

    // overwrite in place with read+write
    let r = OpenOptions::new()
        .read(true)
        .write(true)
        .open(p("a.txt"))
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(5))?;
            f.write_all(b"!!!")?;
            f.rewind()?;
            let mut s = String::new();
            f.read_to_string(&mut s)?;
            Ok(s)
        });
    match r {
        Ok(s) => println!("read+write: ok {s:?}"),
        Err(e) => report_io::<()>("read+write", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }

    // rename
    report_io("rename a->b", fs::rename(p("a.txt"), p("b.txt"))).ok();
    println!(
        "exists a={} b={}",
        fs::metadata(p("a.txt")).is_ok(),
        fs::metadata(p("b.txt")).is_ok()
    );
    report_io("rename missing", fs::rename(p("nope.txt"), p("c.txt"))).ok();

    // hard link
    report_io("hard_link b->c", fs::hard_link(p("b.txt"), p("c.txt"))).ok();
    match fs::read_to_string(p("c.txt")) {
        Ok(s) => println!("read c.txt: ok {s:?}"),
        Err(e) => report_io::<()>("read c.txt", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }
    report_io(
        "hard_link onto existing",
        fs::hard_link(p("b.txt"), p("c.txt")),
    )
    .ok();

    // symlink, readlink, stat through and not through the link
    report_io("symlink link->b.txt", symlink_path("b.txt", p("link"))).ok();
    match fs::read_link(p("link")) {
        Ok(t) => println!("readlink: ok {}", t.display()),
        Err(e) => report_io::<()>("readlink", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }
    report_io("readlink on a file", fs::read_link(p("b.txt"))).ok();
    match (fs::symlink_metadata(p("link")), fs::metadata(p("link"))) {
        (Ok(l), Ok(m)) => println!(
            "lstat/stat link: ok symlink={} target_is_file={} target_len={}",
            l.file_type().is_symlink(),
            m.is_file(),
            m.len()
        ),
        (Err(e), _) | (_, Err(e)) => report_io::<()>("lstat/stat link", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }
    match fs::read_to_string(p("link")) {
        Ok(s) => println!("read via link: ok {s:?}"),
        Err(e) => report_io::<()>("read via link", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }
    report_io("dangling symlink", symlink_path("missing", p("dangling"))).ok();
    report_io("read dangling", fs::read(p("dangling"))).ok();

    // directories
    report_io("create_dir_all d1/d2", fs::create_dir_all(p("d1/d2"))).ok();
    report_io("write d1/d2/f", fs::write(p("d1/d2/f"), "deep")).ok();
    report_io("rmdir non-empty", fs::remove_dir(p("d1"))).ok();
    report_io("rmdir a file", fs::remove_dir(p("b.txt"))).ok();
    report_io("unlink a dir", fs::remove_file(p("d1"))).ok();
    report_io("read_dir a file", fs::read_dir(p("b.txt"))).ok();
    report_io("open missing", File::open(p("missing.txt"))).ok();
    report_io(
        "create_new existing",
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p("b.txt")),
    )
    .ok();
    report_io("open file as dir", File::open(p("b.txt/x"))).ok();
    report_io("rename dir into itself", fs::rename(p("d1"), p("d1/d2/d3"))).ok();
    report_io("rename d1 -> e1", fs::rename(p("d1"), p("e1"))).ok();
    match fs::read_to_string(p("e1/d2/f")) {
        Ok(s) => println!("read e1/d2/f: ok {s:?}"),
        Err(e) => report_io::<()>("read e1/d2/f", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }
    report_io("remove_dir_all e1", fs::remove_dir_all(p("e1"))).ok();

    // readdir
    match fs::read_dir(&w) {
        Ok(rd) => {
            let mut names: Vec<String> = rd
                .map(|e| {
                    let e = e.unwrap();
                    let t = e.file_type().unwrap();
                    let kind = if t.is_symlink() {
                        "symlink"
                    } else if t.is_dir() {
                        "dir"
                    } else {
                        "file"
                    };
                    format!("{}:{kind}", e.file_name().to_string_lossy())
                })
                .collect();
            names.sort();
            println!("readdir work: ok {}", names.join(" "));
        }
        Err(e) => report_io::<()>("readdir work", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }

    // set times
    let t = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let r = OpenOptions::new()
        .write(true)
        .open(p("c.txt"))
        .and_then(|f| f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t)));
    report_io("set_times", r).ok();
    match fs::metadata(p("c.txt")).and_then(|m| m.modified()) {
        Ok(m) => println!(
            "mtime: ok {}",
            m.duration_since(UNIX_EPOCH).unwrap().as_secs()
        ),
        Err(e) => report_io::<()>("mtime", Err(e)).map(|_| ()).unwrap_or(()),
    }

    // unlink
    report_io("unlink c.txt", fs::remove_file(p("c.txt"))).ok();
    report_io("unlink c.txt again", fs::remove_file(p("c.txt"))).ok();
    report_io("unlink dangling", fs::remove_file(p("dangling"))).ok();

    // leave a known state for the host to check
    report_io("mkdir out", fs::create_dir(p("out"))).ok();
    report_io(
        "write out/result.txt",
        fs::write(p("out/result.txt"), "written by guest\n"),
    )
    .ok();
    println!("done");
}

fn show<T: std::fmt::Debug>(label: &str, r: WasiResult<T>) {
    match r {
        Ok(v) => println!("{label}: ok {v:?}"),
        Err(e) => println!("{label}: err {e}"),
    }
}

fn raw(dir: &str) {
    let d = preopen(dir);
    let follow = sys::LOOKUP_SYMLINK_FOLLOW;

    show("mkdir raw", mkdir_at(d, "raw"));
    let f = open_at(d, "raw/f.bin", follow, sys::O_CREAT | sys::O_EXCL, 0);
    show("open O_CREAT|O_EXCL", f);
    let f = f.unwrap_or(u32::MAX);
    show(
        "open O_CREAT|O_EXCL again",
        open_at(d, "raw/f.bin", follow, sys::O_CREAT | sys::O_EXCL, 0),
    );
    show(
        "open O_DIRECTORY on a file",
        open_at(d, "raw/f.bin", follow, sys::O_DIRECTORY, 0),
    );
    show("open missing", open_at(d, "raw/missing", follow, 0, 0));

    show("write", write_fd(f, b"0123456789"));
    show("tell", tell(f));
    show("pwrite at 2", pwrite(f, b"AB", 2));
    show("tell after pwrite", tell(f));
    show(
        "pread 4 at 1",
        pread(f, 4, 1).map(|v| String::from_utf8_lossy(&v).into_owned()),
    );
    show("pread past end", pread(f, 4, 100).map(|v| v.len()));
    show("seek set 3", seek(f, 3, sys::WHENCE_SET));
    show("seek cur 2", seek(f, 2, sys::WHENCE_CUR));
    show("seek end -1", seek(f, -1, sys::WHENCE_END));
    show("seek before start", seek(f, -100, sys::WHENCE_SET));
    let mut b = [0u8; 4];
    show(
        "read at end-1",
        read_fd(f, &mut b).map(|n| String::from_utf8_lossy(&b[..n]).into_owned()),
    );
    show("fd_advise", {
        let e = unsafe { sys::fd_advise(f, 0, 10, 1) };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    show("fd_allocate", {
        let e = unsafe { sys::fd_allocate(f, 0, 16) };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    show("size after allocate", fstat(f).map(|s| s.size));
    show("fd_filestat_set_size 4", {
        let e = unsafe { sys::fd_filestat_set_size(f, 4) };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    show(
        "fstat",
        fstat(f).map(|s| (filetype_name(s.filetype), s.size, s.nlink)),
    );
    show("fd_sync", {
        let e = unsafe { sys::fd_sync(f) };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    show("fd_datasync", {
        let e = unsafe { sys::fd_datasync(f) };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    show(
        "fdstat",
        fdstat(f).map(|s| (filetype_name(s.filetype), s.flags)),
    );
    show("set APPEND", {
        let e = unsafe { sys::fd_fdstat_set_flags(f, sys::FDFLAG_APPEND) };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    show("fdstat flags", fdstat(f).map(|s| s.flags));
    seek(f, 0, sys::WHENCE_SET).ok();
    show("append write", write_fd(f, b"zz"));
    show("size after append", fstat(f).map(|s| s.size));
    show(
        "content",
        pread(f, 64, 0).map(|v| String::from_utf8_lossy(&v).into_owned()),
    );
    show("set times", {
        let e = unsafe {
            sys::fd_filestat_set_times(
                f,
                2_000_000_000_000_000_000,
                1_500_000_000_123_456_789,
                sys::FST_ATIM | sys::FST_MTIM,
            )
        };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    show("mtim", fstat(f).map(|s| s.mtim));

    // O_TRUNC
    let g = open_at(d, "raw/f.bin", follow, sys::O_TRUNC, 0);
    show("open O_TRUNC", g.map(|_| ()));
    show("size after O_TRUNC", fstat(f).map(|s| s.size));

    // renumber: g's description replaces f's number
    let h = open_at(d, "raw/h.txt", follow, sys::O_CREAT, 0).unwrap_or(u32::MAX);
    write_fd(h, b"from h").ok();
    show("fd_renumber h -> f", {
        let e = unsafe { sys::fd_renumber(h, f) };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    show(
        "read f after renumber",
        pread(f, 64, 0).map(|v| String::from_utf8_lossy(&v).into_owned()),
    );
    show("close old h", close(h));
    show("close f", close(f));
    show("close f again", close(f));
    if let Ok(g) = g {
        show("close g", close(g));
    }

    // links, symlinks, NOFOLLOW
    show("path_link", link_at(d, 0, "raw/h.txt", d, "raw/h2.txt"));
    show("nlink", stat_at(d, 0, "raw/h.txt").map(|s| s.nlink));
    show("path_symlink", symlink_at("h.txt", d, "raw/sl"));
    show("readlink", readlink_at(d, "raw/sl"));
    show(
        "lstat symlink",
        stat_at(d, 0, "raw/sl").map(|s| filetype_name(s.filetype)),
    );
    show(
        "stat symlink",
        stat_at(d, follow, "raw/sl").map(|s| filetype_name(s.filetype)),
    );
    show("open symlink NOFOLLOW", open_at(d, "raw/sl", 0, 0, 0));
    show("symlink onto existing", symlink_at("x", d, "raw/h2.txt"));
    show("path set times", {
        let path = "raw/h2.txt";
        let e = unsafe {
            sys::path_filestat_set_times(
                d,
                follow,
                path.as_ptr(),
                path.len(),
                0,
                1_000_000_000,
                sys::FST_MTIM,
            )
        };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    show(
        "path mtim",
        stat_at(d, follow, "raw/h2.txt").map(|s| s.mtim),
    );
    // directories
    for i in 0..12 {
        write_fd_file(d, &format!("raw/entry-with-a-long-name-{i:02}"));
    }
    show("mkdir raw/sub", mkdir_at(d, "raw/sub"));
    show("mkdir existing", mkdir_at(d, "raw/sub"));
    let rd = open_at(d, "raw", follow, sys::O_DIRECTORY, 0);
    show("open dir", rd.map(|_| ()));
    if let Ok(rd) = rd {
        match readdir(rd) {
            Ok(entries) => {
                println!("readdir: ok {} entries", entries.len());
                for (name, t) in entries {
                    println!("  {name} {}", filetype_name(t));
                }
            }
            Err(e) => println!("readdir: err {e}"),
        }
        show("fdstat dir", fdstat(rd).map(|s| filetype_name(s.filetype)));
        show("read a dir", read_fd(rd, &mut b));
        show("write a dir", write_fd(rd, b"x"));
        show(
            "open relative to dir fd",
            open_at(rd, "h.txt", follow, 0, 0).map(|fd| {
                let r = read_all_fd(fd).map(|v| String::from_utf8_lossy(&v).into_owned());
                close(fd).ok();
                r
            }),
        );
        close(rd).ok();
    }
    show("readdir on file fd", {
        let fd = open_at(d, "raw/h.txt", follow, 0, 0).unwrap_or(u32::MAX);
        let r = readdir(fd).map(|v| v.len());
        close(fd).ok();
        r
    });
    show(
        "rename across dirs",
        rename_at(d, "raw/h2.txt", d, "raw/sub/moved.txt"),
    );
    show(
        "rename dir over file",
        rename_at(d, "raw/sub", d, "raw/h.txt"),
    );
    show("rmdir non-empty", rmdir_at(d, "raw/sub"));
    show("unlink dir", unlink_at(d, "raw/sub"));
    show("rmdir file", rmdir_at(d, "raw/h.txt"));
    show("unlink moved", unlink_at(d, "raw/sub/moved.txt"));
    show("rmdir sub", rmdir_at(d, "raw/sub"));
    show("unlink symlink", unlink_at(d, "raw/sl"));
    show(
        "stat h.txt still there",
        stat_at(d, 0, "raw/h.txt").map(|s| s.size),
    );
    show("fd_readdir bad fd", readdir(4242).map(|v| v.len()));
    // Rights can shrink, never grow back.
    let r = open_at(d, "raw/rights.txt", follow, sys::O_CREAT, 0).unwrap_or(u32::MAX);
    show("write before shrink", write_fd(r, b"abc"));
    let st = fdstat(r).unwrap_or_default();
    println!(
        "has FD_WRITE: {}",
        st.rights_base & sys::RIGHT_FD_WRITE != 0
    );
    show("drop FD_WRITE", {
        let e = unsafe {
            sys::fd_fdstat_set_rights(
                r,
                st.rights_base & !sys::RIGHT_FD_WRITE,
                st.rights_inheriting,
            )
        };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    println!(
        "has FD_WRITE: {}",
        fdstat(r)
            .map(|s| s.rights_base & sys::RIGHT_FD_WRITE != 0)
            .unwrap_or(true)
    );
    show("write after shrink", write_fd(r, b"x"));
    show("grow FD_WRITE back", {
        let e = unsafe { sys::fd_fdstat_set_rights(r, st.rights_base, st.rights_inheriting) };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    show("write after refused grow", write_fd(r, b"x"));
    show("close rights fd", close(r));
    show("unlink rights.txt", unlink_at(d, "raw/rights.txt"));
    show("set times ATIM and ATIM_NOW", {
        let path = "raw/h.txt";
        let e = unsafe {
            sys::path_filestat_set_times(
                d,
                follow,
                path.as_ptr(),
                path.len(),
                1,
                0,
                sys::FST_ATIM | sys::FST_ATIM_NOW,
            )
        };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });

    println!("done");
}

fn write_fd_file(d: u32, path: &str) {
    if let Ok(fd) = open_at(d, path, sys::LOOKUP_SYMLINK_FOLLOW, sys::O_CREAT, 0) {
        write_fd(fd, path.as_bytes()).ok();
        close(fd).ok();
    }
}

fn ro(dir: &str) {
    let p = |name: &str| format!("{dir}/{name}");
    match fs::read_to_string(p("existing.txt")) {
        Ok(s) => println!("read existing: ok {s:?}"),
        Err(e) => report_io::<()>("read existing", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }
    match fs::read_dir(dir) {
        Ok(rd) => {
            let mut names: Vec<String> = rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            println!("readdir: ok {}", names.join(" "));
        }
        Err(e) => report_io::<()>("readdir", Err(e)).map(|_| ()).unwrap_or(()),
    }
    report_io("stat existing", fs::metadata(p("existing.txt"))).ok();
    report_io("create new file", File::create(p("new.txt"))).ok();
    report_io(
        "open existing for write",
        OpenOptions::new().write(true).open(p("existing.txt")),
    )
    .ok();
    report_io(
        "open existing for append",
        OpenOptions::new().append(true).open(p("existing.txt")),
    )
    .ok();
    report_io(
        "open existing with truncate",
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(p("existing.txt")),
    )
    .ok();
    report_io("mkdir", fs::create_dir(p("newdir"))).ok();
    report_io("rmdir", fs::remove_dir(p("sub"))).ok();
    report_io("unlink", fs::remove_file(p("existing.txt"))).ok();
    report_io("rename", fs::rename(p("existing.txt"), p("renamed.txt"))).ok();
    report_io(
        "hard link",
        fs::hard_link(p("existing.txt"), p("linked.txt")),
    )
    .ok();
    report_io("symlink", symlink_path("existing.txt", p("sym"))).ok();
    let t = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let d = preopen(dir);
    show("set times by path", {
        let path = "existing.txt";
        let e = unsafe {
            sys::path_filestat_set_times(
                d,
                1,
                path.as_ptr(),
                path.len(),
                0,
                1_000_000_000_000_000_000,
                sys::FST_MTIM,
            )
        };
        if e == 0 {
            Ok(())
        } else {
            Err(e)
        }
    });
    // A read-only handle cannot write, truncate or set times either.
    match File::open(p("existing.txt")) {
        Ok(mut f) => {
            report_io("write via read handle", f.write_all(b"x")).ok();
            report_io("set_len via read handle", f.set_len(0)).ok();
            report_io(
                "set_times via read handle",
                f.set_times(fs::FileTimes::new().set_modified(t)),
            )
            .ok();
        }
        Err(e) => report_io::<()>("open existing", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }
    match fs::read_to_string(p("existing.txt")) {
        Ok(s) => println!("read existing again: ok {s:?}"),
        Err(e) => report_io::<()>("read existing again", Err(e))
            .map(|_| ())
            .unwrap_or(()),
    }
    println!("done");
}

fn tree(root: &str, rel: &str) {
    let path = if rel.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{rel}")
    };
    let mut entries: Vec<_> = match fs::read_dir(&path) {
        Ok(rd) => rd.map(|e| e.unwrap()).collect(),
        Err(e) => {
            report_io::<()>(&format!("readdir {path}"), Err(e)).ok();
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let sub = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let t = e.file_type().unwrap();
        if t.is_dir() {
            println!("{sub}/ dir");
            tree(root, &sub);
        } else if t.is_symlink() {
            let target = fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_else(|e| format!("err {:?}", e.raw_os_error()));
            println!("{sub} symlink -> {target}");
        } else {
            let data = fs::read(e.path()).unwrap_or_default();
            println!(
                "{sub} file {} {:?}",
                data.len(),
                String::from_utf8_lossy(&data)
            );
        }
    }
}
