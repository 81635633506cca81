//! Shared helpers for warden's Rust test guests: raw `wasi_snapshot_preview1`
//! bindings for the calls std does not wrap (or wraps in a way that hides the
//! errno), and small printing helpers so every guest reports results as
//! `label: ok ...` / `label: err N` lines that the tests match exactly.

use std::io;

/// Raw preview1 imports. Every function returns the WASI errno (0 = success).
pub mod sys {
    const _: () = assert!(std::mem::size_of::<Subscription>() == 48);
    const _: () = assert!(std::mem::size_of::<Event>() == 32);
    const _: () = assert!(std::mem::size_of::<Filestat>() == 64);
    const _: () = assert!(std::mem::size_of::<Fdstat>() == 24);
    const _: () = assert!(std::mem::size_of::<Prestat>() == 8);
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct Iovec {
        pub buf: *const u8,
        pub len: usize,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default, Debug)]
    pub struct Prestat {
        pub tag: u8,
        pub name_len: u32,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default, Debug)]
    pub struct Fdstat {
        pub filetype: u8,
        pub flags: u16,
        pub rights_base: u64,
        pub rights_inheriting: u64,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default, Debug)]
    pub struct Filestat {
        pub dev: u64,
        pub ino: u64,
        pub filetype: u8,
        pub nlink: u64,
        pub size: u64,
        pub atim: u64,
        pub mtim: u64,
        pub ctim: u64,
    }

    /// `subscription`: 48 bytes. `tag` 0 = clock, 1 = fd_read, 2 = fd_write.
    /// For clocks: `a` = clock id, `b` = timeout, `c` = precision, `flags`.
    /// For fd events: `a` = fd.
    #[repr(C)]
    #[derive(Clone, Copy, Default, Debug)]
    pub struct Subscription {
        pub userdata: u64,
        pub tag: u8,
        pub _pad: [u8; 7],
        pub a: u32,
        pub _pad2: u32,
        pub b: u64,
        pub c: u64,
        pub flags: u16,
    }

    impl Subscription {
        pub fn clock(userdata: u64, id: u32, timeout: u64, flags: u16) -> Self {
            Subscription {
                userdata,
                tag: 0,
                a: id,
                b: timeout,
                flags,
                ..Default::default()
            }
        }

        pub fn fd_read(userdata: u64, fd: u32) -> Self {
            Subscription {
                userdata,
                tag: 1,
                a: fd,
                ..Default::default()
            }
        }

        pub fn fd_write(userdata: u64, fd: u32) -> Self {
            Subscription {
                userdata,
                tag: 2,
                a: fd,
                ..Default::default()
            }
        }
    }

    /// `event`: 32 bytes.
    #[repr(C)]
    #[derive(Clone, Copy, Default, Debug)]
    pub struct Event {
        pub userdata: u64,
        pub error: u16,
        pub kind: u8,
        pub nbytes: u64,
        pub flags: u16,
    }

    pub const CLOCK_REALTIME: u32 = 0;
    pub const CLOCK_MONOTONIC: u32 = 1;
    pub const CLOCK_PROCESS_CPUTIME: u32 = 2;
    pub const CLOCK_THREAD_CPUTIME: u32 = 3;

    pub const SUBCLOCK_ABSTIME: u16 = 1;

    pub const LOOKUP_SYMLINK_FOLLOW: u32 = 1;

    pub const O_CREAT: u32 = 1;
    pub const O_DIRECTORY: u32 = 2;
    pub const O_EXCL: u32 = 4;
    pub const O_TRUNC: u32 = 8;

    pub const FDFLAG_APPEND: u32 = 1;
    pub const FDFLAG_NONBLOCK: u32 = 4;

    pub const FST_ATIM: u32 = 1;
    pub const FST_ATIM_NOW: u32 = 2;
    pub const FST_MTIM: u32 = 4;
    pub const FST_MTIM_NOW: u32 = 8;

    pub const WHENCE_SET: u32 = 0;
    pub const WHENCE_CUR: u32 = 1;
    pub const WHENCE_END: u32 = 2;

    pub const FILETYPE_UNKNOWN: u8 = 0;
    pub const FILETYPE_BLOCK_DEVICE: u8 = 1;
    pub const FILETYPE_CHARACTER_DEVICE: u8 = 2;
    pub const FILETYPE_DIRECTORY: u8 = 3;
    pub const FILETYPE_REGULAR_FILE: u8 = 4;
    pub const FILETYPE_SOCKET_DGRAM: u8 = 5;
    pub const FILETYPE_SOCKET_STREAM: u8 = 6;
    pub const FILETYPE_SYMBOLIC_LINK: u8 = 7;

    /// All rights: warden (like every preview1 host) intersects with what the
    /// descriptor allows.
    pub const RIGHTS_ALL: u64 = (1 << 30) - 1;
    /// fd_datasync, fd_write, fd_allocate, fd_filestat_set_size: what
    /// wasi-libc asks for only when it opens for writing.
    pub const RIGHT_FD_WRITE: u64 = 1 << 6;
    pub const RIGHTS_WRITE: u64 = 1 | (1 << 6) | (1 << 8) | (1 << 22);

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        pub fn args_sizes_get(argc: *mut usize, buf_size: *mut usize) -> u16;
        pub fn args_get(argv: *mut *mut u8, buf: *mut u8) -> u16;
        pub fn environ_sizes_get(count: *mut usize, buf_size: *mut usize) -> u16;
        pub fn environ_get(environ: *mut *mut u8, buf: *mut u8) -> u16;
        pub fn clock_res_get(id: u32, res: *mut u64) -> u16;
        pub fn clock_time_get(id: u32, precision: u64, time: *mut u64) -> u16;
        pub fn fd_advise(fd: u32, offset: u64, len: u64, advice: u32) -> u16;
        pub fn fd_allocate(fd: u32, offset: u64, len: u64) -> u16;
        pub fn fd_close(fd: u32) -> u16;
        pub fn fd_datasync(fd: u32) -> u16;
        pub fn fd_fdstat_get(fd: u32, stat: *mut Fdstat) -> u16;
        pub fn fd_fdstat_set_flags(fd: u32, flags: u32) -> u16;
        pub fn fd_fdstat_set_rights(fd: u32, base: u64, inheriting: u64) -> u16;
        pub fn fd_filestat_get(fd: u32, stat: *mut Filestat) -> u16;
        pub fn fd_filestat_set_size(fd: u32, size: u64) -> u16;
        pub fn fd_filestat_set_times(fd: u32, atim: u64, mtim: u64, flags: u32) -> u16;
        pub fn fd_pread(
            fd: u32,
            iovs: *const Iovec,
            iovs_len: usize,
            offset: u64,
            nread: *mut usize,
        ) -> u16;
        pub fn fd_prestat_get(fd: u32, prestat: *mut Prestat) -> u16;
        pub fn fd_prestat_dir_name(fd: u32, path: *mut u8, len: usize) -> u16;
        pub fn fd_pwrite(
            fd: u32,
            iovs: *const Iovec,
            iovs_len: usize,
            offset: u64,
            nwritten: *mut usize,
        ) -> u16;
        pub fn fd_read(fd: u32, iovs: *const Iovec, iovs_len: usize, nread: *mut usize) -> u16;
        pub fn fd_readdir(
            fd: u32,
            buf: *mut u8,
            buf_len: usize,
            cookie: u64,
            bufused: *mut usize,
        ) -> u16;
        pub fn fd_renumber(fd: u32, to: u32) -> u16;
        pub fn fd_seek(fd: u32, offset: i64, whence: u32, newoffset: *mut u64) -> u16;
        pub fn fd_sync(fd: u32) -> u16;
        pub fn fd_tell(fd: u32, offset: *mut u64) -> u16;
        pub fn fd_write(fd: u32, iovs: *const Iovec, iovs_len: usize, nwritten: *mut usize) -> u16;
        pub fn path_create_directory(fd: u32, path: *const u8, path_len: usize) -> u16;
        pub fn path_filestat_get(
            fd: u32,
            flags: u32,
            path: *const u8,
            path_len: usize,
            stat: *mut Filestat,
        ) -> u16;
        pub fn path_filestat_set_times(
            fd: u32,
            flags: u32,
            path: *const u8,
            path_len: usize,
            atim: u64,
            mtim: u64,
            fst_flags: u32,
        ) -> u16;
        pub fn path_link(
            old_fd: u32,
            old_flags: u32,
            old_path: *const u8,
            old_path_len: usize,
            new_fd: u32,
            new_path: *const u8,
            new_path_len: usize,
        ) -> u16;
        pub fn path_open(
            fd: u32,
            dirflags: u32,
            path: *const u8,
            path_len: usize,
            oflags: u32,
            rights_base: u64,
            rights_inheriting: u64,
            fdflags: u32,
            opened: *mut u32,
        ) -> u16;
        pub fn path_readlink(
            fd: u32,
            path: *const u8,
            path_len: usize,
            buf: *mut u8,
            buf_len: usize,
            bufused: *mut usize,
        ) -> u16;
        pub fn path_remove_directory(fd: u32, path: *const u8, path_len: usize) -> u16;
        pub fn path_rename(
            fd: u32,
            old_path: *const u8,
            old_path_len: usize,
            new_fd: u32,
            new_path: *const u8,
            new_path_len: usize,
        ) -> u16;
        pub fn path_symlink(
            old_path: *const u8,
            old_path_len: usize,
            fd: u32,
            new_path: *const u8,
            new_path_len: usize,
        ) -> u16;
        pub fn path_unlink_file(fd: u32, path: *const u8, path_len: usize) -> u16;
        pub fn poll_oneoff(
            subs: *const Subscription,
            events: *mut Event,
            nsubs: usize,
            nevents: *mut usize,
        ) -> u16;
        pub fn proc_exit(code: u32) -> !;
        pub fn proc_raise(sig: u32) -> u16;
        pub fn random_get(buf: *mut u8, len: usize) -> u16;
        pub fn sched_yield() -> u16;
        pub fn sock_accept(fd: u32, flags: u32, opened: *mut u32) -> u16;
        pub fn sock_recv(
            fd: u32,
            iovs: *const Iovec,
            iovs_len: usize,
            flags: u32,
            nread: *mut usize,
            roflags: *mut u16,
        ) -> u16;
        pub fn sock_send(
            fd: u32,
            iovs: *const Iovec,
            iovs_len: usize,
            flags: u32,
            nwritten: *mut usize,
        ) -> u16;
        pub fn sock_shutdown(fd: u32, how: u32) -> u16;
    }
}

/// Result of a raw call: `Ok(value)` or `Err(errno)`.
pub type WasiResult<T> = Result<T, u16>;

fn check(errno: u16) -> WasiResult<()> {
    if errno == 0 {
        Ok(())
    } else {
        Err(errno)
    }
}

/// Prints `label: ok` or `label: err N` and returns the result.
pub fn report<T>(label: &str, r: WasiResult<T>) -> WasiResult<T> {
    match &r {
        Ok(_) => println!("{label}: ok"),
        Err(e) => println!("{label}: err {e}"),
    }
    r
}

/// Like [`report`] for std results: the raw OS error is the WASI errno on
/// wasip1.
pub fn report_io<T>(label: &str, r: io::Result<T>) -> io::Result<T> {
    match &r {
        Ok(_) => println!("{label}: ok"),
        Err(e) => match e.raw_os_error() {
            Some(n) => println!("{label}: err {n}"),
            None => println!("{label}: err {:?}", e.kind()),
        },
    }
    r
}

/// Writes all of `data` to `fd` with raw `fd_write` calls.
pub fn write_fd(fd: u32, data: &[u8]) -> WasiResult<usize> {
    let mut done = 0;
    while done < data.len() {
        let iov = sys::Iovec {
            buf: data[done..].as_ptr(),
            len: data.len() - done,
        };
        let mut n = 0;
        check(unsafe { sys::fd_write(fd, &iov, 1, &mut n) })?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// One raw `fd_read` into `buf`.
pub fn read_fd(fd: u32, buf: &mut [u8]) -> WasiResult<usize> {
    let iov = sys::Iovec {
        buf: buf.as_mut_ptr(),
        len: buf.len(),
    };
    let mut n = 0;
    check(unsafe { sys::fd_read(fd, &iov, 1, &mut n) })?;
    Ok(n)
}

/// Reads `fd` to end of file with raw calls.
pub fn read_all_fd(fd: u32) -> WasiResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = read_fd(fd, &mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The guest-visible name of preopen `fd`, if it is a preopened directory.
pub fn prestat_name(fd: u32) -> WasiResult<String> {
    let mut p = sys::Prestat::default();
    check(unsafe { sys::fd_prestat_get(fd, &mut p) })?;
    let mut name = vec![0u8; p.name_len as usize];
    check(unsafe { sys::fd_prestat_dir_name(fd, name.as_mut_ptr(), name.len()) })?;
    Ok(String::from_utf8_lossy(&name).into_owned())
}

/// All preopened directories as `(fd, name)`, in fd order from 3.
pub fn preopens() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut fd = 3;
    loop {
        match prestat_name(fd) {
            Ok(name) => out.push((fd, name)),
            // EBADF ends the list; anything else (a socket: ENOTSUP/EINVAL)
            // is a descriptor that is not a directory preopen.
            Err(8) => break,
            Err(_) => {}
        }
        fd += 1;
        if fd > 64 {
            break;
        }
    }
    out
}

/// The fd of the preopen named `name`; exits with 99 if there is none.
pub fn preopen(name: &str) -> u32 {
    for (fd, n) in preopens() {
        if n == name || n.trim_end_matches('/') == name.trim_end_matches('/') {
            return fd;
        }
    }
    eprintln!("guest: no preopen named {name:?}");
    std::process::exit(99);
}

/// `path_open` the way wasi-libc's `open` does: read rights, plus write
/// rights when the call creates, truncates or appends (never for
/// `O_DIRECTORY`), intersected with what the directory can hand on.
pub fn open_at(dir: u32, path: &str, lookup: u32, oflags: u32, fdflags: u32) -> WasiResult<u32> {
    let writes = oflags & (sys::O_CREAT | sys::O_TRUNC) != 0 || fdflags & sys::FDFLAG_APPEND != 0;
    let write = writes && oflags & sys::O_DIRECTORY == 0;
    open_with(dir, path, lookup, oflags, fdflags, write)
}

/// `path_open` for reading, and for writing too when `write`.
pub fn open_with(
    dir: u32,
    path: &str,
    lookup: u32,
    oflags: u32,
    fdflags: u32,
    write: bool,
) -> WasiResult<u32> {
    let mut rights = fdstat(dir)
        .map(|s| s.rights_inheriting)
        .unwrap_or(sys::RIGHTS_ALL);
    if !write {
        rights &= !sys::RIGHTS_WRITE;
    }
    let mut fd = 0;
    check(unsafe {
        sys::path_open(
            dir,
            lookup,
            path.as_ptr(),
            path.len(),
            oflags,
            rights,
            rights,
            fdflags,
            &mut fd,
        )
    })?;
    Ok(fd)
}

pub fn close(fd: u32) -> WasiResult<()> {
    check(unsafe { sys::fd_close(fd) })
}

pub fn mkdir_at(dir: u32, path: &str) -> WasiResult<()> {
    check(unsafe { sys::path_create_directory(dir, path.as_ptr(), path.len()) })
}

pub fn rmdir_at(dir: u32, path: &str) -> WasiResult<()> {
    check(unsafe { sys::path_remove_directory(dir, path.as_ptr(), path.len()) })
}

pub fn unlink_at(dir: u32, path: &str) -> WasiResult<()> {
    check(unsafe { sys::path_unlink_file(dir, path.as_ptr(), path.len()) })
}

pub fn rename_at(dir: u32, old: &str, new_dir: u32, new: &str) -> WasiResult<()> {
    check(unsafe {
        sys::path_rename(
            dir,
            old.as_ptr(),
            old.len(),
            new_dir,
            new.as_ptr(),
            new.len(),
        )
    })
}

pub fn symlink_at(target: &str, dir: u32, path: &str) -> WasiResult<()> {
    check(unsafe {
        sys::path_symlink(
            target.as_ptr(),
            target.len(),
            dir,
            path.as_ptr(),
            path.len(),
        )
    })
}

pub fn link_at(dir: u32, lookup: u32, old: &str, new_dir: u32, new: &str) -> WasiResult<()> {
    check(unsafe {
        sys::path_link(
            dir,
            lookup,
            old.as_ptr(),
            old.len(),
            new_dir,
            new.as_ptr(),
            new.len(),
        )
    })
}

pub fn readlink_at(dir: u32, path: &str) -> WasiResult<String> {
    let mut buf = vec![0u8; 1024];
    let mut used = 0;
    check(unsafe {
        sys::path_readlink(
            dir,
            path.as_ptr(),
            path.len(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut used,
        )
    })?;
    buf.truncate(used);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub fn stat_at(dir: u32, lookup: u32, path: &str) -> WasiResult<sys::Filestat> {
    let mut st = sys::Filestat::default();
    check(unsafe { sys::path_filestat_get(dir, lookup, path.as_ptr(), path.len(), &mut st) })?;
    Ok(st)
}

pub fn fstat(fd: u32) -> WasiResult<sys::Filestat> {
    let mut st = sys::Filestat::default();
    check(unsafe { sys::fd_filestat_get(fd, &mut st) })?;
    Ok(st)
}

pub fn fdstat(fd: u32) -> WasiResult<sys::Fdstat> {
    let mut st = sys::Fdstat::default();
    check(unsafe { sys::fd_fdstat_get(fd, &mut st) })?;
    Ok(st)
}

pub fn seek(fd: u32, offset: i64, whence: u32) -> WasiResult<u64> {
    let mut pos = 0;
    check(unsafe { sys::fd_seek(fd, offset, whence, &mut pos) })?;
    Ok(pos)
}

pub fn tell(fd: u32) -> WasiResult<u64> {
    let mut pos = 0;
    check(unsafe { sys::fd_tell(fd, &mut pos) })?;
    Ok(pos)
}

pub fn pread(fd: u32, len: usize, offset: u64) -> WasiResult<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let iov = sys::Iovec {
        buf: buf.as_mut_ptr(),
        len,
    };
    let mut n = 0;
    check(unsafe { sys::fd_pread(fd, &iov, 1, offset, &mut n) })?;
    buf.truncate(n);
    Ok(buf)
}

pub fn pwrite(fd: u32, data: &[u8], offset: u64) -> WasiResult<usize> {
    let iov = sys::Iovec {
        buf: data.as_ptr(),
        len: data.len(),
    };
    let mut n = 0;
    check(unsafe { sys::fd_pwrite(fd, &iov, 1, offset, &mut n) })?;
    Ok(n)
}

pub fn clock_time(id: u32) -> WasiResult<u64> {
    let mut t = 0;
    check(unsafe { sys::clock_time_get(id, 1, &mut t) })?;
    Ok(t)
}

pub fn clock_res(id: u32) -> WasiResult<u64> {
    let mut t = 0;
    check(unsafe { sys::clock_res_get(id, &mut t) })?;
    Ok(t)
}

pub fn random(buf: &mut [u8]) -> WasiResult<()> {
    check(unsafe { sys::random_get(buf.as_mut_ptr(), buf.len()) })
}

/// One relative-clock `poll_oneoff` of `ns` nanoseconds on the monotonic clock.
pub fn sleep_ns(ns: u64) -> WasiResult<()> {
    let sub = sys::Subscription::clock(7, sys::CLOCK_MONOTONIC, ns, 0);
    let mut ev = sys::Event::default();
    let mut n = 0;
    check(unsafe { sys::poll_oneoff(&sub, &mut ev, 1, &mut n) })?;
    if n == 1 && ev.userdata == 7 && ev.error != 0 {
        return Err(ev.error);
    }
    if n != 1 || ev.userdata != 7 || ev.error != 0 || ev.kind != 0 {
        eprintln!("guest: unexpected poll result n={n} ev={ev:?}");
        return Err(29);
    }
    Ok(())
}

/// Directory entries read with raw `fd_readdir`, as `(name, filetype)`,
/// without `.` and `..`, sorted by name.
pub fn readdir(fd: u32) -> WasiResult<Vec<(String, u8)>> {
    let mut out = Vec::new();
    let mut cookie = 0u64;
    // A deliberately small buffer so that entries are split across calls.
    let mut buf = vec![0u8; 64];
    loop {
        let mut used = 0;
        check(unsafe { sys::fd_readdir(fd, buf.as_mut_ptr(), buf.len(), cookie, &mut used) })?;
        let mut off = 0;
        let mut progressed = false;
        while off + 24 <= used {
            let next = u64::from_le_bytes(buf[off..off + 8].try_into().unwrap());
            let namlen = u32::from_le_bytes(buf[off + 16..off + 20].try_into().unwrap()) as usize;
            let ftype = buf[off + 20];
            if off + 24 + namlen > used {
                break; // truncated entry: read again from its cookie
            }
            let name = String::from_utf8_lossy(&buf[off + 24..off + 24 + namlen]).into_owned();
            if name != "." && name != ".." {
                out.push((name, ftype));
            }
            cookie = next;
            off += 24 + namlen;
            progressed = true;
        }
        if used < buf.len() {
            break; // end of directory
        }
        if !progressed {
            // A single entry larger than the buffer.
            buf.resize(buf.len() * 2, 0);
        }
    }
    out.sort();
    Ok(out)
}

pub fn filetype_name(t: u8) -> &'static str {
    match t {
        sys::FILETYPE_UNKNOWN => "unknown",
        sys::FILETYPE_BLOCK_DEVICE => "block",
        sys::FILETYPE_CHARACTER_DEVICE => "char",
        sys::FILETYPE_DIRECTORY => "dir",
        sys::FILETYPE_REGULAR_FILE => "file",
        sys::FILETYPE_SOCKET_DGRAM => "dgram",
        sys::FILETYPE_SOCKET_STREAM => "stream",
        sys::FILETYPE_SYMBOLIC_LINK => "symlink",
        _ => "?",
    }
}

/// `args()` without the program name.
pub fn args() -> Vec<String> {
    std::env::args().skip(1).collect()
}

/// Exits with 98 and a usage line on stderr.
pub fn usage(msg: &str) -> ! {
    eprintln!("guest usage: {msg}");
    std::process::exit(98);
}

extern "C" {
    // wasi-libc's symlink(2) (std's wrapper, `std::os::wasi::fs::symlink_path`,
    // is unstable).
    #[link_name = "symlink"]
    fn libc_symlink(target: *const std::ffi::c_char, path: *const std::ffi::c_char) -> i32;
}

/// `symlink(target, path)` through wasi-libc, resolving `path` against the
/// preopens like every std path.
pub fn symlink_path(target: &str, path: impl AsRef<str>) -> io::Result<()> {
    let t = std::ffi::CString::new(target).unwrap();
    let p = std::ffi::CString::new(path.as_ref()).unwrap();
    if unsafe { libc_symlink(t.as_ptr(), p.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
