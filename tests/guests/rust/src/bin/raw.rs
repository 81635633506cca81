//! Raw preview1 calls with bad arguments. A bad pointer must be EFAULT (21)
//! and the guest must keep running; a bad descriptor is EBADF (8).
//!
//! - `efault`: pointers past the end of memory for several calls.
//! - `badf`: calls on descriptors that are not open.
//! - `args`: args_sizes_get + args_get, printed.
//! - `preopens`: every preopen `fd name`.
//! - `fsprobe`: path calls on fd 3, printing their errnos.
use warden_test_guests::{args, preopens, sys, usage};

/// An address past the end of any memory the guest has.
const BAD: usize = 0xffff_fff0;

fn line(label: &str, e: u16) {
    if e == 0 {
        println!("{label}: ok");
    } else {
        println!("{label}: err {e}");
    }
}

fn main() {
    let args = args();
    match args.first().map(String::as_str) {
        Some("efault") => efault(),
        Some("badf") => badf(),
        Some("args") => {
            let (mut argc, mut size) = (0usize, 0usize);
            line("args_sizes_get", unsafe {
                sys::args_sizes_get(&mut argc, &mut size)
            });
            let mut ptrs = vec![std::ptr::null_mut::<u8>(); argc];
            let mut buf = vec![0u8; size];
            line("args_get", unsafe {
                sys::args_get(ptrs.as_mut_ptr(), buf.as_mut_ptr())
            });
            println!("argc={argc} bufsize={size}");
            for (i, p) in ptrs.iter().enumerate() {
                let off = *p as usize - buf.as_ptr() as usize;
                let end = buf[off..].iter().position(|b| *b == 0).unwrap() + off;
                println!("argv[{i}]={}", String::from_utf8_lossy(&buf[off..end]));
            }
        }
        Some("fsprobe") => {
            // Path calls on fd 3 (with no mounts there is no fd 3).
            let p = "probe";
            let mut fd = 0u32;
            let mut st = sys::Filestat::default();
            unsafe {
                line(
                    "path_open",
                    sys::path_open(3, 1, p.as_ptr(), p.len(), 0, 0, 0, 0, &mut fd),
                );
                line(
                    "path_create_directory",
                    sys::path_create_directory(3, p.as_ptr(), p.len()),
                );
                line(
                    "path_filestat_get",
                    sys::path_filestat_get(3, 1, p.as_ptr(), p.len(), &mut st),
                );
                line(
                    "path_unlink_file",
                    sys::path_unlink_file(3, p.as_ptr(), p.len()),
                );
            }
        }
        Some("preopens") => {
            for (fd, name) in preopens() {
                println!("{fd} {name}");
            }
        }
        _ => usage("raw efault|badf|args|preopens|fsprobe"),
    }
}

fn efault() {
    let msg = b"x";
    let bad_iov = sys::Iovec {
        buf: BAD as *const u8,
        len: 16,
    };
    let good_iov = sys::Iovec {
        buf: msg.as_ptr(),
        len: 1,
    };
    let mut n = 0usize;
    let mut t = 0u64;
    unsafe {
        line(
            "fd_write iovs out of bounds",
            sys::fd_write(1, BAD as *const sys::Iovec, 1, &mut n),
        );
        line(
            "fd_write buffer out of bounds",
            sys::fd_write(1, &bad_iov, 1, &mut n),
        );
        line(
            "fd_write result out of bounds",
            sys::fd_write(1, &good_iov, 1, BAD as *mut usize),
        );
        line(
            "fd_write iovs_len huge",
            sys::fd_write(1, &good_iov, 0x1000_0000, &mut n),
        );
        line(
            "fd_write buffer wraps",
            sys::fd_write(
                1,
                &sys::Iovec {
                    buf: 0x10 as *const u8,
                    len: usize::MAX - 8,
                },
                1,
                &mut n,
            ),
        );
        line(
            "clock_time_get",
            sys::clock_time_get(sys::CLOCK_MONOTONIC, 1, BAD as *mut u64),
        );
        line("random_get", sys::random_get(BAD as *mut u8, 64));
        line(
            "random_get wraps",
            sys::random_get(0x10 as *mut u8, usize::MAX - 8),
        );
        line(
            "args_sizes_get",
            sys::args_sizes_get(BAD as *mut usize, BAD as *mut usize),
        );
        line(
            "args_get",
            sys::args_get(BAD as *mut *mut u8, BAD as *mut u8),
        );
        line(
            "fd_prestat_get",
            sys::fd_prestat_get(3, BAD as *mut sys::Prestat),
        );
        line(
            "fd_fdstat_get",
            sys::fd_fdstat_get(1, BAD as *mut sys::Fdstat),
        );
        let mut fd = 0u32;
        line(
            "path_open path out of bounds",
            sys::path_open(3, 0, BAD as *const u8, 64, 0, 0, 0, 0, &mut fd),
        );
        let subs = [sys::Subscription::clock(1, sys::CLOCK_MONOTONIC, 0, 0)];
        line(
            "poll_oneoff events out of bounds",
            sys::poll_oneoff(subs.as_ptr(), BAD as *mut sys::Event, 1, &mut n),
        );
        line(
            "poll_oneoff subscriptions out of bounds",
            sys::poll_oneoff(
                BAD as *const sys::Subscription,
                &mut sys::Event::default(),
                1,
                &mut n,
            ),
        );
        line(
            "fd_read into out of bounds",
            sys::fd_read(0, &bad_iov, 1, &mut n),
        );
        let _ = &mut t;
    }
    println!("still alive");
}

fn badf() {
    let msg = b"x";
    let iov = sys::Iovec {
        buf: msg.as_ptr(),
        len: 1,
    };
    let mut n = 0usize;
    let mut st = sys::Fdstat::default();
    unsafe {
        line("fd_write 99", sys::fd_write(99, &iov, 1, &mut n));
        line("fd_read 99", sys::fd_read(99, &iov, 1, &mut n));
        line("fd_close 99", sys::fd_close(99));
        line("fd_fdstat_get 99", sys::fd_fdstat_get(99, &mut st));
        line("fd_renumber 99 -> 1", sys::fd_renumber(99, 1));
        line("fd_seek 99", sys::fd_seek(99, 0, 0, &mut 0u64));
        line(
            "fd_prestat_get 99",
            sys::fd_prestat_get(99, &mut sys::Prestat::default()),
        );
        line(
            "fd_write u32::MAX",
            sys::fd_write(u32::MAX, &iov, 1, &mut n),
        );
        let mut fd = 0u32;
        let p = "x";
        line(
            "path_open on 99",
            sys::path_open(99, 0, p.as_ptr(), 1, 0, 0, 0, 0, &mut fd),
        );
        line("fd_seek on stdout", sys::fd_seek(1, 0, 0, &mut 0u64));
    }
    println!("still alive");
}
