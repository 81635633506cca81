//! `wasi:filesystem` 0.2 called directly (wasm32-wasip2 only). Every step
//! prints one line, `label: ok VALUE` or `label: err CODE` (CODE = the
//! 0.2 `error-code` name), so that a test can compare the whole transcript.
//!
//! - `rw DIR [nolinks]`: every descriptor method on a writable preopen:
//!   files, streams, rights, directories, links (unless `nolinks`: sealed
//!   mounts have none), times, hashes, listings. Leaves `out.txt` and
//!   `sub/` behind.
//! - `rights DIR`: what a directory opened without `mutate-directory`
//!   may do.
//! - `ro DIR`: every kind of write on a read-only preopen that holds
//!   `existing.txt` and `sub/`; reads still work.
//! - `escape DIR [links]`: `..`, absolute paths and (with `links`) the
//!   symlinks of the escape layout (`abs_link`, `root_link`, `up_link`,
//!   `canary_link`, `loop_a`) must all fail; `inside.txt` is readable.
//! - `write PATH TEXT` / `cat PATH`: through std (wasi-libc).
#![cfg_attr(not(target_env = "p2"), allow(unused))]

#[cfg(not(target_env = "p2"))]
fn main() {
    eprintln!("fs_p2 is a wasm32-wasip2 component");
    std::process::exit(98);
}

#[cfg(target_env = "p2")]
fn main() {
    p2::main()
}

#[cfg(target_env = "p2")]
mod p2 {
    use std::fmt::Debug;
    use wasip2::clocks::wall_clock::Datetime;
    use wasip2::filesystem::preopens::get_directories;
    use wasip2::filesystem::types::{
        filesystem_error_code, Advice, Descriptor, DescriptorFlags as D, DescriptorType, ErrorCode,
        NewTimestamp, OpenFlags as O, PathFlags as P,
    };
    use wasip2::io::streams::StreamError;

    type R<T> = Result<T, ErrorCode>;

    fn show<T: Debug>(label: &str, r: R<T>) -> Option<T> {
        match r {
            Ok(v) => {
                println!("{label}: ok {v:?}");
                Some(v)
            }
            Err(e) => {
                println!("{label}: err {}", e.name());
                None
            }
        }
    }

    /// `show` for results whose value is not worth printing.
    fn done<T>(label: &str, r: R<T>) -> Option<T> {
        match r {
            Ok(v) => {
                println!("{label}: ok");
                Some(v)
            }
            Err(e) => {
                println!("{label}: err {}", e.name());
                None
            }
        }
    }

    fn flags(f: D) -> String {
        let names = [
            (D::READ, "read"),
            (D::WRITE, "write"),
            (D::FILE_INTEGRITY_SYNC, "file-integrity-sync"),
            (D::DATA_INTEGRITY_SYNC, "data-integrity-sync"),
            (D::REQUESTED_WRITE_SYNC, "requested-write-sync"),
            (D::MUTATE_DIRECTORY, "mutate-directory"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(b, _)| f.contains(*b))
            .map(|(_, n)| *n)
            .collect();
        set.join("|")
    }

    fn kind(t: DescriptorType) -> &'static str {
        match t {
            DescriptorType::Unknown => "unknown",
            DescriptorType::BlockDevice => "block-device",
            DescriptorType::CharacterDevice => "character-device",
            DescriptorType::Directory => "directory",
            DescriptorType::Fifo => "fifo",
            DescriptorType::SymbolicLink => "symbolic-link",
            DescriptorType::RegularFile => "regular-file",
            DescriptorType::Socket => "socket",
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn at(seconds: u64, nanoseconds: u32) -> NewTimestamp {
        NewTimestamp::Timestamp(Datetime {
            seconds,
            nanoseconds,
        })
    }

    fn usage() -> ! {
        eprintln!("guest usage: fs_p2 rw|ro|escape|write|cat ...");
        std::process::exit(98);
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
        match args.first().map(String::as_str) {
            Some("rw") => rw(
                &preopen(&arg(1)),
                args.get(2).map(String::as_str) != Some("nolinks"),
            ),
            Some("ro") => ro(&preopen(&arg(1))),
            Some("rights") => rights(&preopen(&arg(1))),
            Some("escape") => escape(
                &preopen(&arg(1)),
                args.get(2).map(String::as_str) == Some("links"),
            ),
            Some("write") => match std::fs::write(arg(1), arg(2)) {
                Ok(()) => println!("write: ok"),
                Err(e) => {
                    println!("write: err {e}");
                    std::process::exit(1);
                }
            },
            Some("cat") => match std::fs::read(arg(1)) {
                Ok(data) => print!("{}", text(&data)),
                Err(e) => {
                    println!("cat: err {e}");
                    std::process::exit(1);
                }
            },
            _ => usage(),
        }
    }

    /// The preopen named `name`; exits 99 without one.
    fn preopen(name: &str) -> Descriptor {
        let all = get_directories();
        let names: Vec<&str> = all.iter().map(|(_, n)| n.as_str()).collect();
        println!("preopens: {}", names.join(" "));
        for (d, n) in all {
            if n == name {
                return d;
            }
        }
        eprintln!("guest: no preopen named {name:?}");
        std::process::exit(99);
    }

    /// All of a stream, read with `blocking-read` until it closes.
    fn read_stream(f: &Descriptor, offset: u64) -> R<String> {
        let s = f.read_via_stream(offset)?;
        let mut out = Vec::new();
        loop {
            match s.blocking_read(3) {
                Ok(chunk) => out.extend(chunk),
                Err(StreamError::Closed) => return Ok(text(&out)),
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(filesystem_error_code(&e).unwrap_or(ErrorCode::Io))
                }
            }
        }
    }

    fn write_stream(f: &Descriptor, offset: Option<u64>, data: &[u8]) -> R<()> {
        let s = match offset {
            Some(at) => f.write_via_stream(at)?,
            None => f.append_via_stream()?,
        };
        // In small pieces, as check-write permits.
        for chunk in data.chunks(4) {
            if let Err(e) = s.blocking_write_and_flush(chunk) {
                return Err(match e {
                    StreamError::LastOperationFailed(e) => {
                        filesystem_error_code(&e).unwrap_or(ErrorCode::Io)
                    }
                    StreamError::Closed => ErrorCode::Pipe,
                });
            }
        }
        Ok(())
    }

    fn listing(d: &Descriptor) -> R<String> {
        let s = d.read_directory()?;
        let mut names = Vec::new();
        while let Some(e) = s.read_directory_entry()? {
            names.push(format!("{}:{}", e.name, kind(e.type_)));
        }
        names.sort();
        Ok(names.join(" "))
    }

    fn stat_line(d: &Descriptor) -> R<String> {
        let s = d.stat()?;
        Ok(format!(
            "{} links={} size={} times={}",
            kind(s.type_),
            s.link_count,
            s.size,
            s.data_access_timestamp.is_some()
                && s.data_modification_timestamp.is_some()
                && s.status_change_timestamp.is_some()
        ))
    }

    fn rw(d: &Descriptor, links: bool) {
        show("preopen flags", d.get_flags().map(flags));
        show("preopen type", d.get_type().map(kind));

        // A file, read and written at offsets.
        let f = done(
            "create f.txt",
            d.open_at(
                P::empty(),
                "f.txt",
                O::CREATE | O::TRUNCATE,
                D::READ | D::WRITE,
            ),
        );
        let Some(f) = f else {
            println!("done");
            return;
        };
        show("flags", f.get_flags().map(flags));
        show("type", f.get_type().map(kind));
        show("write", f.write(b"hello", 0));
        show("read", f.read(100, 0).map(|(b, end)| (text(&b), end)));
        show(
            "read at end",
            f.read(100, 5).map(|(b, end)| (text(&b), end)),
        );
        show("write past end", f.write(b"!", 7));
        show("stat", stat_line(&f));

        // Streams.
        done("write stream", write_stream(&f, Some(0), b"HELLO"));
        show("read stream from 1", read_stream(&f, 1));
        done("append stream", write_stream(&f, None, b"+tail"));
        show("read stream", read_stream(&f, 0));
        done("set-size 4", f.set_size(4));
        show("after set-size", read_stream(&f, 0));
        done("sync", f.sync());
        done("sync-data", f.sync_data());
        done("advise", f.advise(0, 4, Advice::Sequential));
        done(
            "set-times",
            f.set_times(NewTimestamp::NoChange, at(1_000_000_000, 5)),
        );
        show(
            "mtime",
            f.stat().map(|s| {
                s.data_modification_timestamp
                    .map(|t| (t.seconds, t.nanoseconds))
            }),
        );

        // Rights of a descriptor.
        if let Some(r) = done(
            "open read-only",
            d.open_at(P::empty(), "f.txt", O::empty(), D::READ),
        ) {
            show("read-only flags", r.get_flags().map(flags));
            show("read-only write", r.write(b"x", 0));
            done("read-only write-via-stream", r.write_via_stream(0));
            done("read-only append-via-stream", r.append_via_stream());
            done("read-only set-size", r.set_size(0));
            show(
                "read-only read",
                r.read(10, 0).map(|(b, end)| (text(&b), end)),
            );
        }
        if let Some(n) = done(
            "open no flags",
            d.open_at(P::empty(), "f.txt", O::empty(), D::empty()),
        ) {
            show("no flags flags", n.get_flags().map(flags));
        }
        if let Some(w) = done(
            "open write-only",
            d.open_at(P::empty(), "f.txt", O::empty(), D::WRITE),
        ) {
            show("write-only flags", w.get_flags().map(flags));
            show("write-only read", w.read(10, 0).map(|(b, _)| text(&b)));
            done("write-only read-via-stream", w.read_via_stream(0));
            show("write-only write", w.write(b"H", 0));
        }

        // Directories and their mutate-directory right.
        done("mkdir sub", d.create_directory_at("sub"));
        done("mkdir sub again", d.create_directory_at("sub"));
        if let Some(s) = done(
            "open sub mutate",
            d.open_at(
                P::empty(),
                "sub",
                O::DIRECTORY,
                D::READ | D::MUTATE_DIRECTORY,
            ),
        ) {
            show("sub mutate flags", s.get_flags().map(flags));
            done("sub mutate: mkdir x", s.create_directory_at("x"));
            done(
                "sub mutate: create y.txt",
                s.open_at(P::empty(), "y.txt", O::CREATE, D::WRITE),
            );
        }
        done(
            "open dir for write",
            d.open_at(P::empty(), "sub", O::empty(), D::WRITE),
        );
        done(
            "open file as dir",
            d.open_at(P::empty(), "f.txt", O::DIRECTORY, D::READ),
        );
        done(
            "create|directory",
            d.open_at(P::empty(), "sub", O::CREATE | O::DIRECTORY, D::READ),
        );
        done(
            "open missing",
            d.open_at(P::empty(), "missing", O::empty(), D::READ),
        );
        done(
            "create exclusive existing",
            d.open_at(P::empty(), "f.txt", O::CREATE | O::EXCLUSIVE, D::WRITE),
        );
        done("read-directory on a file", f.read_directory());
        done("stat-at on a file", f.stat_at(P::empty(), "x"));
        done("read on a dir", d.read(1, 0));
        done("read-via-stream on a dir", d.read_via_stream(0));
        done("write on a dir", d.write(b"x", 0));
        done("set-size on a dir", d.set_size(0));
        done("rmdir non-empty", d.remove_directory_at("sub"));
        done("unlink a dir", d.unlink_file_at("sub"));
        done("rmdir a file", d.remove_directory_at("f.txt"));
        done("mkdir sub/x/deep", d.create_directory_at("sub/x/deep"));

        // Links.
        if links {
            done("symlink", d.symlink_at("f.txt", "link"));
            show("readlink", d.readlink_at("link"));
            done("readlink a file", d.readlink_at("f.txt"));
            show(
                "stat link",
                d.stat_at(P::empty(), "link").map(|s| kind(s.type_)),
            );
            show(
                "stat link follow",
                d.stat_at(P::SYMLINK_FOLLOW, "link")
                    .map(|s| (kind(s.type_), s.size)),
            );
            done("symlink absolute", d.symlink_at("/etc/passwd", "abs"));
            done("hard link", d.link_at(P::empty(), "f.txt", d, "hard.txt"));
            done(
                "hard link onto existing",
                d.link_at(P::empty(), "f.txt", d, "hard.txt"),
            );
            done(
                "hard link follow",
                d.link_at(P::SYMLINK_FOLLOW, "link", d, "hard2.txt"),
            );
            show("link count", f.stat().map(|s| s.link_count));
            if let Some(h) = done(
                "open hard.txt",
                d.open_at(P::empty(), "hard.txt", O::empty(), D::READ),
            ) {
                println!("same object f hard: {}", f.is_same_object(&h));
            }
            done("unlink link", d.unlink_file_at("link"));
            done(
                "rename hard.txt",
                d.rename_at("hard.txt", d, "sub/moved.txt"),
            );
        } else {
            done("symlink", d.symlink_at("f.txt", "link"));
            done("hard link", d.link_at(P::empty(), "f.txt", d, "hard.txt"));
            if let Some(h) = done(
                "create moved.txt",
                d.open_at(P::empty(), "sub/moved.txt", O::CREATE, D::WRITE),
            ) {
                done("write moved.txt", h.write(b"HELL", 0));
            }
        }
        println!("same object f d: {}", f.is_same_object(d));
        if let Some(f2) = done(
            "open f.txt again",
            d.open_at(P::empty(), "f.txt", O::empty(), D::READ),
        ) {
            println!("same object f f2: {}", f.is_same_object(&f2));
        }
        let pair = |h: wasip2::filesystem::types::MetadataHashValue| (h.lower, h.upper);
        let h1 = f.metadata_hash().ok().map(pair);
        let h2 = d.metadata_hash_at(P::empty(), "f.txt").ok().map(pair);
        let h3 = d.metadata_hash().ok().map(pair);
        println!(
            "metadata hash: same path {} other differs {}",
            h1.is_some() && h1 == h2,
            h1.is_some() && h3.is_some() && h1 != h3
        );
        done("rename missing", d.rename_at("nope", d, "nope2"));
        done(
            "set-times-at",
            d.set_times_at(
                P::empty(),
                "sub/moved.txt",
                at(2_000_000_000, 0),
                at(1_500_000_000, 7),
            ),
        );
        show(
            "mtime moved.txt",
            d.stat_at(P::empty(), "sub/moved.txt").map(|s| {
                s.data_modification_timestamp
                    .map(|t| (t.seconds, t.nanoseconds))
            }),
        );
        done("unlink moved.txt", d.unlink_file_at("sub/moved.txt"));
        done("unlink moved.txt again", d.unlink_file_at("sub/moved.txt"));
        done("rmdir sub/x/deep", d.remove_directory_at("sub/x/deep"));
        done(
            "rmdir sub/x/deep again",
            d.remove_directory_at("sub/x/deep"),
        );
        show("list", listing(d));
        if let Some(s) = done(
            "open sub",
            d.open_at(P::empty(), "sub", O::DIRECTORY, D::READ),
        ) {
            show("list sub", listing(&s));
        }

        // What the host checks afterwards.
        if let Some(o) = done(
            "create out.txt",
            d.open_at(P::empty(), "out.txt", O::CREATE, D::WRITE),
        ) {
            done(
                "write out.txt",
                write_stream(&o, Some(0), b"written by fs_p2\n"),
            );
        }
        println!("done");
    }

    /// What a directory opened with `read` only (no `mutate-directory`)
    /// may do, from a preopen that may mutate: the transcript differs
    /// between warden's compatible and strict modes.
    fn rights(d: &Descriptor) {
        done("mkdir r", d.create_directory_at("r"));
        done("mkdir r/x", d.create_directory_at("r/x"));
        done(
            "create r/y.txt",
            d.open_at(P::empty(), "r/y.txt", O::CREATE, D::WRITE),
        );
        let Some(s) = done(
            "open r read",
            d.open_at(P::empty(), "r", O::DIRECTORY, D::READ),
        ) else {
            return;
        };
        show("r flags", s.get_flags().map(flags));
        done(
            "r: open mutate",
            s.open_at(P::empty(), "x", O::DIRECTORY, D::MUTATE_DIRECTORY),
        );
        if let Some(x) = done(
            "r: open x",
            s.open_at(P::empty(), "x", O::DIRECTORY, D::READ),
        ) {
            show("r: x flags", x.get_flags().map(flags));
        }
        if let Some(y) = done(
            "r: open y.txt",
            s.open_at(P::empty(), "y.txt", O::empty(), D::READ),
        ) {
            done(
                "r: file set-times",
                y.set_times(NewTimestamp::Now, NewTimestamp::Now),
            );
        }
        done(
            "r: open for write",
            s.open_at(P::empty(), "y.txt", O::empty(), D::WRITE),
        );
        done(
            "r: truncate",
            s.open_at(P::empty(), "y.txt", O::TRUNCATE, D::READ),
        );
        done(
            "r: set-times",
            s.set_times(NewTimestamp::Now, NewTimestamp::Now),
        );
        done(
            "r: set-times-at",
            s.set_times_at(P::empty(), "y.txt", NewTimestamp::Now, NewTimestamp::Now),
        );
        done("r: mkdir", s.create_directory_at("z"));
        done(
            "r: create",
            s.open_at(P::empty(), "n.txt", O::CREATE, D::READ),
        );
        done("r: rename", s.rename_at("y.txt", &s, "w.txt"));
        done("r: rename into it", d.rename_at("r/w.txt", &s, "v.txt"));
        done("r: hard link", s.link_at(P::empty(), "v.txt", &s, "h.txt"));
        done("r: symlink", s.symlink_at("v.txt", "l"));
        show("r: list", listing(&s));
        done("r: unlink", s.unlink_file_at("n.txt"));
        done("r: rmdir", s.remove_directory_at("z"));
        show("r: list after", listing(&s));
        println!("done");
    }

    fn ro(d: &Descriptor) {
        show("preopen type", d.get_type().map(kind));
        let e = done(
            "open existing",
            d.open_at(P::empty(), "existing.txt", O::empty(), D::READ),
        );
        if let Some(e) = &e {
            show("read existing", read_stream(e, 0));
            show("existing flags", e.get_flags().map(flags));
        }
        show("list", listing(d));
        show(
            "stat existing",
            d.stat_at(P::empty(), "existing.txt")
                .map(|s| (kind(s.type_), s.size)),
        );
        done(
            "create",
            d.open_at(P::empty(), "new.txt", O::CREATE, D::WRITE),
        );
        done(
            "create without write",
            d.open_at(P::empty(), "new.txt", O::CREATE, D::READ),
        );
        done(
            "open existing for write",
            d.open_at(P::empty(), "existing.txt", O::empty(), D::WRITE),
        );
        done(
            "truncate existing",
            d.open_at(P::empty(), "existing.txt", O::TRUNCATE, D::READ),
        );
        done("mkdir", d.create_directory_at("d"));
        done("rmdir", d.remove_directory_at("sub"));
        done("unlink", d.unlink_file_at("existing.txt"));
        done("rename", d.rename_at("existing.txt", d, "moved.txt"));
        done(
            "hard link",
            d.link_at(P::empty(), "existing.txt", d, "hard.txt"),
        );
        done("symlink", d.symlink_at("existing.txt", "link"));
        done(
            "set-times-at",
            d.set_times_at(
                P::empty(),
                "existing.txt",
                NewTimestamp::Now,
                NewTimestamp::Now,
            ),
        );
        done(
            "set-times on the dir",
            d.set_times(NewTimestamp::Now, NewTimestamp::Now),
        );
        if let Some(e) = &e {
            done(
                "set-times on the file",
                e.set_times(NewTimestamp::Now, NewTimestamp::Now),
            );
            done("write on the file", e.write(b"x", 0));
            done("set-size on the file", e.set_size(0));
            show("read existing again", read_stream(e, 0));
        }
        println!("done");
    }

    fn escape(d: &Descriptor, links: bool) {
        let open = |label: &str, path: &str, o: O| {
            let r = d
                .open_at(P::SYMLINK_FOLLOW, path, o, D::READ)
                .and_then(|f| match f.get_type()? {
                    DescriptorType::Directory => Ok("directory".to_string()),
                    _ => read_stream(&f, 0),
                });
            show(label, r);
        };
        open("inside", "inside.txt", O::empty());
        open("sub/../inside", "sub/../inside.txt", O::empty());
        open("dot", ".", O::DIRECTORY);
        open("dotdot", "..", O::DIRECTORY);
        open("dotdot file", "../canary.txt", O::empty());
        open("sub/../../canary", "sub/../../canary.txt", O::empty());
        open(
            "deep dotdot",
            "sub/../../../../../../etc/passwd",
            O::empty(),
        );
        open("absolute", "/etc/passwd", O::empty());
        open("absolute /", "/", O::DIRECTORY);
        done("stat ..", d.stat_at(P::empty(), ".."));
        done(
            "stat ../canary.txt",
            d.stat_at(P::SYMLINK_FOLLOW, "../canary.txt"),
        );
        done("metadata-hash-at ..", d.metadata_hash_at(P::empty(), ".."));
        done(
            "create ../evil.txt",
            d.open_at(P::empty(), "../evil.txt", O::CREATE, D::WRITE),
        );
        done("mkdir ../evil_dir", d.create_directory_at("../evil_dir"));
        done(
            "rename inside -> ../stolen.txt",
            d.rename_at("inside.txt", d, "../stolen.txt"),
        );
        done(
            "rename ../canary.txt -> stolen.txt",
            d.rename_at("../canary.txt", d, "stolen.txt"),
        );
        done(
            "link ../canary.txt -> hard.txt",
            d.link_at(P::empty(), "../canary.txt", d, "hard.txt"),
        );
        done("unlink ../canary.txt", d.unlink_file_at("../canary.txt"));
        done("rmdir ..", d.remove_directory_at(".."));
        done(
            "set-times-at ../canary.txt",
            d.set_times_at(
                P::empty(),
                "../canary.txt",
                NewTimestamp::Now,
                NewTimestamp::Now,
            ),
        );
        done("readlink ../x", d.readlink_at("../x"));
        done("symlink to /", d.symlink_at("/", "made_abs_link"));
        match d.symlink_at("../canary.txt", "made_link") {
            Ok(()) => open("made_link", "made_link", O::empty()),
            Err(e) => println!("made_link: refused {}", e.name()),
        }
        if links {
            open("abs_link", "abs_link/canary.txt", O::empty());
            open("root_link", "root_link/etc/passwd", O::empty());
            open("up_link", "up_link/canary.txt", O::empty());
            open("canary_link", "canary_link", O::empty());
            open("loop_a", "loop_a", O::empty());
            show(
                "stat abs_link",
                d.stat_at(P::empty(), "abs_link").map(|s| kind(s.type_)),
            );
            done(
                "stat abs_link follow",
                d.stat_at(P::SYMLINK_FOLLOW, "abs_link"),
            );
            done("readlink abs_link", d.readlink_at("abs_link"));
            show("readlink up_link", d.readlink_at("up_link"));
            done(
                "create through canary_link",
                d.open_at(
                    P::SYMLINK_FOLLOW,
                    "canary_link",
                    O::CREATE | O::TRUNCATE,
                    D::WRITE,
                ),
            );
            done(
                "mkdir through up_link",
                d.create_directory_at("up_link/evil_dir"),
            );
        }
        println!("done");
    }
}
