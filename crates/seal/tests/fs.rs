//! The filesystem of sealed mounts.

#[macro_use]
mod common;

use common::{contains, pseudo_random, Rng, TempStore};
use warden_seal::fs::{FileKind, FsError, OpenFlags, SealedFs, CHUNK_SIZE, ROOT_INO};

on_both_backends!(
    create_write_read_round_trip,
    data_survives_across_runs,
    writes_across_chunks_holes_and_random_access_match_a_model,
    truncate_then_extend_reads_zeros,
    open_flags,
    directories,
    rename_files_and_directories,
    unlinked_open_files_live_until_closed,
    times,
    bad_paths_are_refused,
    operations_that_fail_change_nothing,
    two_filesystems_in_one_store_are_separate,
    concurrent_writers_on_separate_files,
    two_mounts_of_one_namespace_share_open_unlinked_files,
    directory_handles_follow_renames_and_fail_once_removed,
    appends_never_overwrite_each_other,
    grow_to_never_shrinks,
    a_format_1_filesystem_is_upgraded,
    a_filesystem_of_an_unknown_format_is_refused,
    huge_nominal_sizes_cost_only_what_is_stored,
);

fn fs_in(t: &TempStore) -> SealedFs {
    SealedFs::new(t.open().namespace("mount").unwrap()).unwrap()
}

fn create() -> OpenFlags {
    OpenFlags::existing().create()
}

fn create_write_read_round_trip(t: TempStore) {
    let fs = fs_in(&t);
    let f = fs.open("hello.txt", create()).unwrap();
    assert_eq!(f.kind(), FileKind::File);
    assert_eq!(f.write_at(0, b"hello, world").unwrap(), 12);
    let mut buf = [0u8; 64];
    let n = f.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello, world");
    assert_eq!(f.read_at(7, &mut buf[..3]).unwrap(), 3);
    assert_eq!(&buf[..3], b"wor");
    assert_eq!(f.read_at(12, &mut buf).unwrap(), 0);
    assert_eq!(f.read_at(1000, &mut buf).unwrap(), 0);
    let meta = f.stat().unwrap();
    assert_eq!((meta.size, meta.kind, meta.nlink), (12, FileKind::File, 1));
    assert_eq!(fs.stat("hello.txt").unwrap(), meta);
    assert_eq!(fs.read_file("hello.txt").unwrap(), b"hello, world");
}

fn data_survives_across_runs(t: TempStore) {
    let big = pseudo_random(5, 3 * CHUNK_SIZE + 123);
    {
        let fs = fs_in(&t);
        fs.mkdir("dir").unwrap();
        fs.mkdir("dir/sub").unwrap();
        fs.write_file("dir/sub/big.bin", &big).unwrap();
        fs.write_file("top", b"top").unwrap();
    }
    let fs = fs_in(&t);
    assert_eq!(fs.read_file("dir/sub/big.bin").unwrap(), big);
    assert_eq!(fs.read_file("top").unwrap(), b"top");
    let names: Vec<String> = fs
        .readdir("")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["dir", "top"]);
}

#[test]
fn nothing_readable_on_the_host() {
    let t = TempStore::new();
    {
        let fs = fs_in(&t);
        fs.mkdir("confidential-directory").unwrap();
        fs.write_file(
            "confidential-directory/passwords.txt",
            b"hunter2 hunter2 hunter2 plain text",
        )
        .unwrap();
    }
    let bytes = std::fs::read(&t.path).unwrap();
    for needle in [&b"confidential-directory"[..], b"passwords.txt", b"hunter2"] {
        assert!(!contains(&bytes, needle));
    }
    // The store file is the only thing on the host besides the rollback state.
    let mut names: Vec<String> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["store.redb", "store.redb.seen"]);
}

fn writes_across_chunks_holes_and_random_access_match_a_model(t: TempStore) {
    let fs = fs_in(&t);
    let keys_before = fs.namespace().all_keys("").unwrap().len();
    let f = fs.open("model", create()).unwrap();
    let mut model: Vec<u8> = Vec::new();
    let mut rng = Rng::new(42);
    for step in 0..120 {
        match rng.below(10) {
            0..=5 => {
                let offset = rng.below(4 * CHUNK_SIZE as u64) as usize;
                let len = match rng.below(3) {
                    0 => rng.below(16) as usize + 1,
                    1 => rng.below(5000) as usize + 1,
                    _ => rng.below(2 * CHUNK_SIZE as u64) as usize + 1,
                };
                let data = pseudo_random(step, len);
                f.write_at(offset as u64, &data).unwrap();
                if model.len() < offset + len {
                    model.resize(offset + len, 0);
                }
                model[offset..offset + len].copy_from_slice(&data);
            }
            6 | 7 => {
                let len = rng.below(5 * CHUNK_SIZE as u64) as usize;
                f.set_len(len as u64).unwrap();
                model.resize(len, 0);
            }
            _ => {
                let offset = rng.below(model.len() as u64 + 10);
                let mut buf = vec![0xAAu8; rng.below(3 * CHUNK_SIZE as u64) as usize];
                let n = f.read_at(offset, &mut buf).unwrap();
                let o = (offset as usize).min(model.len());
                let expected = &model[o..(o + buf.len()).min(model.len())];
                assert_eq!(n, expected.len(), "step {step}");
                assert!(buf[..n] == *expected, "step {step}: contents differ");
            }
        }
        assert_eq!(f.stat().unwrap().size, model.len() as u64, "step {step}");
    }
    assert!(fs.read_file("model").unwrap() == model);
    // The chunk index kept up: removing the file leaves no chunk behind.
    drop(f);
    fs.unlink("model").unwrap();
    assert_eq!(fs.namespace().all_keys("").unwrap().len(), keys_before);
}

fn truncate_then_extend_reads_zeros(t: TempStore) {
    let fs = fs_in(&t);
    let f = fs.open("f", create()).unwrap();
    f.write_at(0, &vec![7u8; CHUNK_SIZE + 100]).unwrap();
    f.set_len(10).unwrap();
    f.set_len(CHUNK_SIZE as u64 + 50).unwrap();
    let data = fs.read_file("f").unwrap();
    assert_eq!(data.len(), CHUNK_SIZE + 50);
    assert!(data[..10].iter().all(|&b| b == 7));
    assert!(data[10..].iter().all(|&b| b == 0));
    // A write past the end leaves a hole of zeros.
    f.write_at(3 * CHUNK_SIZE as u64, b"end").unwrap();
    let data = fs.read_file("f").unwrap();
    assert_eq!(data.len(), 3 * CHUNK_SIZE + 3);
    assert!(data[10..3 * CHUNK_SIZE].iter().all(|&b| b == 0));
    // O_TRUNC.
    let g = fs.open("f", create().truncate()).unwrap();
    assert_eq!(g.stat().unwrap().size, 0);
}

fn open_flags(t: TempStore) {
    let fs = fs_in(&t);
    assert!(matches!(
        fs.open("nope", OpenFlags::existing()),
        Err(FsError::NotFound)
    ));
    fs.open("a", create().exclusive()).unwrap();
    assert!(matches!(
        fs.open("a", create().exclusive()),
        Err(FsError::Exists)
    ));
    fs.open("a", create()).unwrap();
    assert!(matches!(
        fs.open("a", OpenFlags::existing().directory()),
        Err(FsError::NotDir)
    ));
    fs.mkdir("d").unwrap();
    let d = fs.open("d", OpenFlags::existing().directory()).unwrap();
    assert_eq!(d.kind(), FileKind::Directory);
    assert!(matches!(d.read_at(0, &mut [0u8; 4]), Err(FsError::IsDir)));
    assert!(matches!(d.write_at(0, b"x"), Err(FsError::IsDir)));
    assert!(matches!(
        fs.open("d", create().truncate()),
        Err(FsError::IsDir)
    ));
    assert!(matches!(fs.open("a/b", create()), Err(FsError::NotDir)));
    assert!(matches!(
        fs.open("missing/b", create()),
        Err(FsError::NotFound)
    ));
    let root = fs.open("", OpenFlags::existing()).unwrap();
    assert_eq!(root.ino(), ROOT_INO);
    assert_eq!(fs.open(".", OpenFlags::existing()).unwrap().ino(), ROOT_INO);
}

fn directories(t: TempStore) {
    let fs = fs_in(&t);
    let root_links = fs.stat("").unwrap().nlink;
    assert_eq!(root_links, 2);
    fs.mkdir("a").unwrap();
    fs.mkdir("a/b").unwrap();
    assert!(matches!(fs.mkdir("a"), Err(FsError::Exists)));
    assert!(matches!(fs.mkdir("x/y"), Err(FsError::NotFound)));
    assert_eq!(fs.stat("").unwrap().nlink, 3);
    assert_eq!(fs.stat("a").unwrap().nlink, 3);
    fs.write_file("a/file", b"1").unwrap();
    let entries = fs.readdir("a").unwrap();
    let listed: Vec<(&str, FileKind)> = entries.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    assert_eq!(
        listed,
        [("b", FileKind::Directory), ("file", FileKind::File)]
    );
    assert_eq!(entries[1].ino, fs.stat("a/file").unwrap().ino);
    assert!(matches!(fs.readdir("a/file"), Err(FsError::NotDir)));
    assert!(matches!(fs.rmdir("a"), Err(FsError::NotEmpty)));
    assert!(matches!(fs.rmdir("a/file"), Err(FsError::NotDir)));
    assert!(matches!(fs.unlink("a/b"), Err(FsError::IsDir)));
    assert!(matches!(fs.rmdir(""), Err(FsError::Invalid(_))));
    fs.rmdir("a/b").unwrap();
    fs.unlink("a/file").unwrap();
    assert!(matches!(fs.unlink("a/file"), Err(FsError::NotFound)));
    fs.rmdir("a").unwrap();
    assert_eq!(fs.stat("").unwrap().nlink, 2);
    assert!(fs.readdir("").unwrap().is_empty());
    let h = fs.open("", OpenFlags::existing()).unwrap();
    assert!(h.readdir().unwrap().is_empty());
}

fn rename_files_and_directories(t: TempStore) {
    let fs = fs_in(&t);
    fs.write_file("a", b"content a").unwrap();
    let ino = fs.stat("a").unwrap().ino;
    fs.rename("a", "b").unwrap();
    assert!(!fs.exists("a").unwrap());
    assert_eq!(fs.read_file("b").unwrap(), b"content a");
    assert_eq!(fs.stat("b").unwrap().ino, ino);
    // Over an existing file.
    fs.write_file("c", b"content c").unwrap();
    fs.rename("c", "b").unwrap();
    assert_eq!(fs.read_file("b").unwrap(), b"content c");
    assert_eq!(fs.readdir("").unwrap().len(), 1);
    // Same name: nothing happens.
    fs.rename("b", "b").unwrap();
    assert_eq!(fs.read_file("b").unwrap(), b"content c");

    // Directories with contents move whole; link counts follow.
    fs.mkdir("d1").unwrap();
    fs.mkdir("d1/inner").unwrap();
    fs.write_file("d1/inner/f", b"deep").unwrap();
    fs.mkdir("d2").unwrap();
    fs.rename("d1", "d2/moved").unwrap();
    assert_eq!(fs.read_file("d2/moved/inner/f").unwrap(), b"deep");
    assert_eq!(fs.stat("d2").unwrap().nlink, 3);
    assert_eq!(fs.stat("").unwrap().nlink, 3);
    // Not into itself.
    assert!(matches!(
        fs.rename("d2", "d2/moved/inner/x"),
        Err(FsError::Invalid(_))
    ));
    assert!(matches!(fs.rename("d2", "d2/x"), Err(FsError::Invalid(_))));
    // Kind mismatches and non-empty targets.
    fs.mkdir("empty").unwrap();
    assert!(matches!(fs.rename("b", "empty"), Err(FsError::IsDir)));
    assert!(matches!(fs.rename("empty", "b"), Err(FsError::NotDir)));
    assert!(matches!(fs.rename("empty", "d2"), Err(FsError::NotEmpty)));
    fs.rename("d2", "empty").unwrap();
    assert_eq!(fs.read_file("empty/moved/inner/f").unwrap(), b"deep");
    assert!(matches!(fs.rename("nope", "x"), Err(FsError::NotFound)));
    assert!(matches!(fs.rename("b", "nodir/x"), Err(FsError::NotFound)));
    assert!(matches!(fs.rename("", "x"), Err(FsError::Invalid(_))));
    let names: Vec<String> = fs
        .readdir("")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["b", "empty"]);
}

fn unlinked_open_files_live_until_closed(t: TempStore) {
    let fs = fs_in(&t);
    let ns = fs.namespace().clone();
    let keys_before = ns.all_keys("").unwrap().len();
    let h = fs.open("tmp", create()).unwrap();
    h.write_at(0, &pseudo_random(1, 2 * CHUNK_SIZE)).unwrap();
    fs.unlink("tmp").unwrap();
    assert!(!fs.exists("tmp").unwrap());
    assert_eq!(h.stat().unwrap().nlink, 0);
    let mut buf = vec![0u8; 10];
    assert_eq!(h.read_at(0, &mut buf).unwrap(), 10);
    assert_eq!(buf, pseudo_random(1, 2 * CHUNK_SIZE)[..10]);
    h.write_at(5, b"still writable").unwrap();
    drop(h);
    assert_eq!(ns.all_keys("").unwrap().len(), keys_before);

    // Replaced by a rename while open: same rule.
    fs.write_file("x", b"old").unwrap();
    let old = fs.open("x", OpenFlags::existing()).unwrap();
    fs.write_file("y", b"new").unwrap();
    fs.rename("y", "x").unwrap();
    let mut buf = [0u8; 3];
    old.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"old");
    assert_eq!(fs.read_file("x").unwrap(), b"new");
}

#[test]
fn orphans_left_by_a_crash_are_removed_at_mount() {
    let t = TempStore::new();
    let crashed = TempStore::new();
    let fs = fs_in(&t);
    let keys_before = fs.namespace().all_keys("").unwrap().len();
    let h = fs.open("tmp", create()).unwrap();
    h.write_at(0, &[1u8; 1000]).unwrap();
    fs.unlink("tmp").unwrap();
    // A copy of the files taken now is what a crash with the file still
    // open leaves behind.
    std::fs::copy(&t.path, &crashed.path).unwrap();
    std::fs::copy(
        warden_seal::default_state_file(&t.path),
        warden_seal::default_state_file(&crashed.path),
    )
    .unwrap();
    drop(h);
    let fs = fs_in(&crashed);
    assert!(!fs.exists("tmp").unwrap());
    assert_eq!(fs.namespace().all_keys("").unwrap().len(), keys_before);
}

fn times(t: TempStore) {
    let fs = fs_in(&t);
    let f = fs.open("f", create()).unwrap();
    let m0 = f.stat().unwrap();
    assert!(m0.mtime > 0 && m0.atime > 0 && m0.ctime > 0);
    std::thread::sleep(std::time::Duration::from_millis(2));
    f.write_at(0, b"x").unwrap();
    let m1 = f.stat().unwrap();
    assert!(m1.mtime > m0.mtime && m1.ctime > m0.ctime);
    assert_eq!(m1.atime, m0.atime);
    fs.set_times("f", Some(1_000), Some(2_000)).unwrap();
    let m2 = fs.stat("f").unwrap();
    assert_eq!((m2.atime, m2.mtime), (1_000, 2_000));
    f.set_times(None, Some(3_000)).unwrap();
    let m3 = f.stat().unwrap();
    assert_eq!((m3.atime, m3.mtime), (1_000, 3_000));
    let dir_before = fs.stat("").unwrap().mtime;
    std::thread::sleep(std::time::Duration::from_millis(2));
    fs.write_file("g", b"").unwrap();
    assert!(fs.stat("").unwrap().mtime > dir_before);
}

fn bad_paths_are_refused(t: TempStore) {
    let fs = fs_in(&t);
    fs.mkdir("d").unwrap();
    for p in ["..", "d/..", "/etc/passwd", "d//x", "d/", "a\0b"] {
        assert!(
            matches!(fs.open(p, create()), Err(FsError::InvalidName(_))),
            "{p:?}"
        );
    }
    let long = "x".repeat(256);
    assert!(matches!(fs.mkdir(&long), Err(FsError::InvalidName(_))));
    fs.mkdir(&"y".repeat(255)).unwrap();
    // "." components are harmless.
    fs.write_file("./d/./f", b"1").unwrap();
    assert_eq!(fs.read_file("d/f").unwrap(), b"1");
}

fn operations_that_fail_change_nothing(t: TempStore) {
    let fs = fs_in(&t);
    fs.write_file("f", b"1").unwrap();
    let store = fs.namespace().store().clone();
    let generation = store.generation().unwrap();
    let _ = fs.mkdir("f");
    let _ = fs.rmdir("nope");
    let _ = fs.rename("nope", "x");
    let _ = fs.open("f", create().exclusive());
    fs.open("f", OpenFlags::existing()).unwrap();
    fs.stat("f").unwrap();
    fs.readdir("").unwrap();
    fs.read_file("f").unwrap();
    assert_eq!(store.generation().unwrap(), generation);
}

fn two_filesystems_in_one_store_are_separate(t: TempStore) {
    let store = t.open();
    let a = SealedFs::new(store.namespace("app-a").unwrap()).unwrap();
    let b = SealedFs::new(store.namespace("app-b").unwrap()).unwrap();
    a.write_file("same-name", b"a").unwrap();
    b.write_file("same-name", b"b").unwrap();
    assert_eq!(a.read_file("same-name").unwrap(), b"a");
    assert_eq!(b.read_file("same-name").unwrap(), b"b");
}

fn concurrent_writers_on_separate_files(t: TempStore) {
    let fs = fs_in(&t);
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let fs = fs.clone();
            std::thread::spawn(move || {
                let name = format!("f{n}");
                let h = fs.open(&name, create()).unwrap();
                for i in 0..20u64 {
                    h.write_at(i * 1000, &pseudo_random(n * 100 + i, 1000))
                        .unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    for n in 0..4u64 {
        let data = fs.read_file(&format!("f{n}")).unwrap();
        let expected: Vec<u8> = (0..20u64)
            .flat_map(|i| pseudo_random(n * 100 + i, 1000))
            .collect();
        assert!(data == expected);
    }
}

/// Runs `f` on a thread and fails if it has not finished after a generous
/// 20 s: an operation whose cost followed a file's nominal size (2^50 bytes
/// is 2^34 chunks) would run for hours. Not a timing assertion: what is
/// tested takes milliseconds.
fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(20)) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not finish in 20 s: its cost follows the nominal size")
        }
        Err(e) => panic!("{what} panicked: {e}"),
    }
}

fn huge_nominal_sizes_cost_only_what_is_stored(t: TempStore) {
    use warden_seal::fs::MAX_FILE_SIZE;
    let fs = fs_in(&t);
    let ns = fs.namespace().clone();
    let keys_before = ns.all_keys("").unwrap().len();
    let data = finishes(
        "truncate, extend and unlink of a 2^50-byte file",
        move || {
            // Grow then shrink, with data at both ends of the range.
            let f = fs.open("big", create()).unwrap();
            f.write_at(0, b"head").unwrap();
            f.set_len(MAX_FILE_SIZE).unwrap();
            f.write_at(MAX_FILE_SIZE - 4, b"tail").unwrap();
            let mut buf = [0xAAu8; 8];
            assert_eq!(f.read_at(MAX_FILE_SIZE - 8, &mut buf).unwrap(), 8);
            assert_eq!(&buf, b"\0\0\0\0tail");
            f.set_len(2).unwrap();
            let kept = fs.read_file("big").unwrap();
            f.set_len(0).unwrap();
            // Unlink of a closed file of nominal size 2^50.
            f.set_len(MAX_FILE_SIZE).unwrap();
            drop(f);
            fs.unlink("big").unwrap();
            // Unlink while open: the last close removes it.
            let g = fs.open("open", create()).unwrap();
            g.write_at(3 * CHUNK_SIZE as u64, b"x").unwrap();
            g.set_len(MAX_FILE_SIZE).unwrap();
            fs.unlink("open").unwrap();
            drop(g);
            // O_TRUNC and rename over a huge file.
            let h = fs.open("h", create()).unwrap();
            h.set_len(MAX_FILE_SIZE).unwrap();
            drop(fs.open("h", create().truncate()).unwrap());
            h.set_len(MAX_FILE_SIZE).unwrap();
            fs.write_file("small", b"s").unwrap();
            fs.rename("small", "h").unwrap();
            drop(h);
            fs.unlink("h").unwrap();
            kept
        },
    );
    assert_eq!(data, b"he");
    assert_eq!(ns.all_keys("").unwrap().len(), keys_before);
}

fn two_mounts_of_one_namespace_share_open_unlinked_files(t: TempStore) {
    let store = t.open();
    // What two `--sealed` mounts of one namespace do.
    let a = SealedFs::new(store.namespace("shared").unwrap()).unwrap();
    let b = SealedFs::new(store.namespace("shared").unwrap()).unwrap();
    let keys_before = a.namespace().all_keys("").unwrap().len();
    let h = a.open("tmp", create()).unwrap();
    h.write_at(0, b"still here").unwrap();
    b.unlink("tmp").unwrap();
    assert!(!a.exists("tmp").unwrap());
    let mut buf = [0u8; 10];
    assert_eq!(h.read_at(0, &mut buf).unwrap(), 10);
    assert_eq!(&buf, b"still here");
    // A third mount made now must not remove it as a crash's leftover.
    let c = SealedFs::new(store.namespace("shared").unwrap()).unwrap();
    assert_eq!(h.read_at(0, &mut buf).unwrap(), 10);
    h.write_at(0, b"written").unwrap();
    assert_eq!(h.stat().unwrap().nlink, 0);
    drop(h);
    assert_eq!(c.namespace().all_keys("").unwrap().len(), keys_before);

    // Open through one, replaced by a rename through the other.
    a.write_file("x", b"old").unwrap();
    let old = b.open("x", OpenFlags::existing()).unwrap();
    a.write_file("y", b"new").unwrap();
    a.rename("y", "x").unwrap();
    let mut buf = [0u8; 3];
    old.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"old");
}

fn directory_handles_follow_renames_and_fail_once_removed(t: TempStore) {
    let fs = fs_in(&t);
    fs.mkdir("a").unwrap();
    fs.mkdir("a/b").unwrap();
    let a = fs.open("a", OpenFlags::existing().directory()).unwrap();
    let b = a.open_at("b", OpenFlags::existing().directory()).unwrap();
    fs.rename("a", "renamed").unwrap();
    fs.mkdir("a").unwrap();
    fs.mkdir("a/b").unwrap();
    b.open_at("f", create())
        .unwrap()
        .write_at(0, b"in b")
        .unwrap();
    assert_eq!(fs.read_file("renamed/b/f").unwrap(), b"in b");
    assert!(!fs.exists("a/b/f").unwrap());
    a.mkdir_at("new").unwrap();
    assert!(fs.exists("renamed/new").unwrap());
    assert_eq!(b.stat_at("../new").unwrap().kind, FileKind::Directory);
    b.rename_at("f", &a, "moved").unwrap();
    assert_eq!(fs.read_file("renamed/moved").unwrap(), b"in b");
    a.unlink_at("./moved").unwrap();
    a.rmdir_at("new/").unwrap();
    assert_eq!(a.stat_at("..").unwrap().ino, ROOT_INO);
    assert!(matches!(a.stat_at("../.."), Err(FsError::OutsideMount)));
    assert!(matches!(a.rmdir_at(".."), Err(FsError::Invalid(_))));
    assert!(matches!(a.mkdir_at("."), Err(FsError::Exists)));

    // Removed: everything through the handle is NotFound, even with a new
    // directory at the old path.
    fs.rmdir("renamed/b").unwrap();
    fs.mkdir("renamed/b").unwrap();
    assert!(matches!(b.open_at("g", create()), Err(FsError::NotFound)));
    assert!(matches!(b.mkdir_at("g"), Err(FsError::NotFound)));
    assert!(matches!(b.stat(), Err(FsError::NotFound)));
    assert!(matches!(b.readdir(), Err(FsError::NotFound)));
    assert!(fs.readdir("renamed/b").unwrap().is_empty());
}

fn appends_never_overwrite_each_other(t: TempStore) {
    let fs = fs_in(&t);
    let shared = std::sync::Arc::new(fs.open("log", create()).unwrap());
    let threads: Vec<_> = (0..4u8)
        .map(|n| {
            let fs = fs.clone();
            let shared = shared.clone();
            std::thread::spawn(move || {
                let own = fs.open("log", OpenFlags::existing()).unwrap();
                for i in 0..200 {
                    let line = format!("{n} {i:03}\n");
                    // Half through a handle of its own, half through one
                    // all threads share.
                    let h = if i % 2 == 0 { &own } else { &*shared };
                    h.append(line.as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let text = String::from_utf8(fs.read_file("log").unwrap()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 800);
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), 800, "every line is there once");
    // The offset returned is the new end.
    let end = shared.append(b"x").unwrap();
    assert_eq!(end, shared.stat().unwrap().size);
}

fn grow_to_never_shrinks(t: TempStore) {
    let fs = fs_in(&t);
    let f = fs.open("f", create()).unwrap();
    f.write_at(0, &[1u8; 100]).unwrap();
    f.grow_to(50).unwrap();
    assert_eq!(f.stat().unwrap().size, 100);
    f.grow_to(3 * CHUNK_SIZE as u64).unwrap();
    assert_eq!(f.stat().unwrap().size, 3 * CHUNK_SIZE as u64);
    let data = fs.read_file("f").unwrap();
    assert!(data[..100].iter().all(|&b| b == 1) && data[100..].iter().all(|&b| b == 0));
}

/// A filesystem written by format 1 (no chunk index) is upgraded when
/// mounted, and its files keep their data and are removed whole.
fn a_format_1_filesystem_is_upgraded(t: TempStore) {
    let big = pseudo_random(9, 2 * CHUNK_SIZE + 10);
    let keys_before;
    {
        let fs = fs_in(&t);
        keys_before = fs.namespace().all_keys("").unwrap().len();
        fs.mkdir("d").unwrap();
        fs.write_file("d/big", &big).unwrap();
        let f = fs.open("sparse", create()).unwrap();
        f.write_at(5 * CHUNK_SIZE as u64, b"far").unwrap();
        // Turn it into what format 1 wrote: no `x` records, format 1.
        let ns = fs.namespace();
        let index_keys: Vec<Vec<u8>> = ns.all_keys("x").unwrap();
        assert_eq!(index_keys.len(), 2);
        ns.delete_many(&index_keys).unwrap();
        let mut sb = ns.get("s").unwrap().unwrap();
        assert_eq!(&sb[4..8], &2u32.to_le_bytes());
        sb[4..8].copy_from_slice(&1u32.to_le_bytes());
        ns.set("s", &sb).unwrap();
    }
    let fs = fs_in(&t);
    let ns = fs.namespace().clone();
    assert_eq!(&ns.get("s").unwrap().unwrap()[4..8], &2u32.to_le_bytes());
    assert_eq!(ns.all_keys("x").unwrap().len(), 2);
    assert_eq!(fs.read_file("d/big").unwrap(), big);
    let f = fs.open("sparse", OpenFlags::existing()).unwrap();
    let mut buf = [0u8; 3];
    f.read_at(5 * CHUNK_SIZE as u64, &mut buf).unwrap();
    assert_eq!(&buf, b"far");
    drop(f);
    fs.unlink("d/big").unwrap();
    fs.unlink("sparse").unwrap();
    fs.rmdir("d").unwrap();
    assert_eq!(ns.all_keys("").unwrap().len(), keys_before);
}

fn a_filesystem_of_an_unknown_format_is_refused(t: TempStore) {
    {
        let fs = fs_in(&t);
        let mut sb = fs.namespace().get("s").unwrap().unwrap();
        sb[4..8].copy_from_slice(&9u32.to_le_bytes());
        fs.namespace().set("s", &sb).unwrap();
    }
    let err = SealedFs::new(t.open().namespace("mount").unwrap()).unwrap_err();
    assert!(matches!(err, FsError::Integrity(_)), "{err}");
    assert!(err.to_string().contains("format 9"), "{err}");
}
