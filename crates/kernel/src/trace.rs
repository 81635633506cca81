//! `--trace`: one line per syscall with its decoded arguments, its result,
//! why it was refused (when a policy or a mount refused it) and how long it
//! took.

use crate::abi::{fdflags, lookupflags, oflags, signal, Errno, GuestMemory};
use crate::cage::{Stop, SysError, SysResult};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Where trace lines go.
pub struct Tracer {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Tracer {
    pub fn new(out: Box<dyn Write + Send>) -> Tracer {
        Tracer {
            out: Mutex::new(out),
        }
    }

    pub fn line(&self, cage: u32, call: &str, outcome: &str, took: Duration) {
        if let Ok(mut out) = self.out.lock() {
            // A trace that cannot be written must not stop the guest.
            let _ = writeln!(out, "[trace] cage {cage}: {call} -> {outcome} ({took:.1?})");
        }
    }

    pub fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}

/// How one raw argument is shown.
#[derive(Clone, Copy)]
enum Arg {
    Fd(&'static str),
    Int(&'static str),
    Hex(&'static str),
    /// A `(ptr, len)` pair holding a path; consumes two arguments.
    Path(&'static str),
    /// A `(ptr, len)` iovec array; consumes two arguments.
    Iovs(&'static str),
    OFlags,
    FdFlags,
    Lookup(&'static str),
    Signal,
    /// An output pointer: shown after the call, as `name=value`.
    OutU32(&'static str),
    OutU64(&'static str),
    /// An argument not worth showing (buffers filled by the call).
    Skip,
}

use Arg::*;

fn signature(name: &str) -> &'static [Arg] {
    match name {
        "args_get" | "environ_get" => &[Skip, Skip],
        "args_sizes_get" => &[OutU32("argc"), OutU32("size")],
        "environ_sizes_get" => &[OutU32("count"), OutU32("size")],
        "clock_res_get" => &[Int("clock"), OutU64("resolution")],
        "clock_time_get" => &[Int("clock"), Skip, OutU64("time")],
        "fd_advise" => &[Fd("fd"), Int("offset"), Int("len"), Int("advice")],
        "fd_allocate" => &[Fd("fd"), Int("offset"), Int("len")],
        "fd_close" | "fd_datasync" | "fd_sync" => &[Fd("fd")],
        "fd_fdstat_get" | "fd_filestat_get" | "fd_prestat_get" => &[Fd("fd"), Skip],
        "fd_fdstat_set_flags" => &[Fd("fd"), FdFlags],
        "fd_fdstat_set_rights" => &[Fd("fd"), Hex("base"), Hex("inheriting")],
        "fd_filestat_set_size" => &[Fd("fd"), Int("size")],
        "fd_filestat_set_times" => &[Fd("fd"), Int("atim"), Int("mtim"), Hex("flags")],
        "fd_pread" => &[Fd("fd"), Iovs("iovs"), Int("offset"), OutU32("nread")],
        "fd_pwrite" => &[Fd("fd"), Iovs("iovs"), Int("offset"), OutU32("nwritten")],
        "fd_read" => &[Fd("fd"), Iovs("iovs"), OutU32("nread")],
        "fd_write" => &[Fd("fd"), Iovs("iovs"), OutU32("nwritten")],
        "fd_prestat_dir_name" => &[Fd("fd"), Skip, Int("len")],
        "fd_readdir" => &[
            Fd("fd"),
            Skip,
            Int("buf_len"),
            Int("cookie"),
            OutU32("bufused"),
        ],
        "fd_renumber" => &[Fd("fd"), Fd("to")],
        "fd_seek" => &[Fd("fd"), Int("offset"), Int("whence"), OutU64("offset")],
        "fd_tell" => &[Fd("fd"), OutU64("offset")],
        "path_create_directory" | "path_remove_directory" | "path_unlink_file" => {
            &[Fd("fd"), Path("path")]
        }
        "path_filestat_get" => &[Fd("fd"), Lookup("flags"), Path("path"), Skip],
        "path_filestat_set_times" => &[
            Fd("fd"),
            Lookup("flags"),
            Path("path"),
            Int("atim"),
            Int("mtim"),
            Hex("fst_flags"),
        ],
        "path_link" => &[
            Fd("old_fd"),
            Lookup("old_flags"),
            Path("old_path"),
            Fd("new_fd"),
            Path("new_path"),
        ],
        "path_open" => &[
            Fd("fd"),
            Lookup("dirflags"),
            Path("path"),
            OFlags,
            Hex("rights"),
            Skip,
            FdFlags,
            OutU32("fd"),
        ],
        "path_readlink" => &[
            Fd("fd"),
            Path("path"),
            Skip,
            Int("buf_len"),
            OutU32("bufused"),
        ],
        "path_rename" => &[Fd("fd"), Path("old_path"), Fd("new_fd"), Path("new_path")],
        "path_symlink" => &[Path("target"), Fd("fd"), Path("path")],
        "poll_oneoff" => &[Skip, Skip, Int("nsubscriptions"), OutU32("nevents")],
        "proc_exit" => &[Int("code")],
        "proc_raise" => &[Signal],
        "thread-spawn" => &[Hex("start_arg")],
        "random_get" => &[Skip, Int("len")],
        "sock_accept" => &[Fd("fd"), FdFlags, OutU32("fd")],
        "sock_recv" => &[Fd("fd"), Iovs("iovs"), Hex("ri_flags"), OutU32("len"), Skip],
        "sock_send" => &[Fd("fd"), Iovs("iovs"), Hex("si_flags"), OutU32("len")],
        "sock_shutdown" => &[Fd("fd"), Int("how")],
        "proc_exec" => &[
            Fd("dirfd"),
            Path("path"),
            Skip,
            Int("argv_len"),
            Skip,
            Int("envp_len"),
        ],
        "proc_join" => &[Int("pid"), Hex("flags"), OutU32("status"), OutU32("pid")],
        "proc_id" => &[OutU32("pid")],
        "proc_parent" => &[OutU32("ppid")],
        "proc_signal" => &[Int("pid"), Int("sig")],
        "proc_sigaction" => &[Int("sig"), Int("disposition")],
        "fd_pipe" => &[OutU32("read_fd"), OutU32("write_fd")],
        "fd_dup" => &[Fd("fd"), OutU32("fd")],
        "fd_dup2" => &[Fd("fd"), Fd("to")],
        "fd_fdflags_get" => &[Fd("fd"), OutU32("flags")],
        "fd_fdflags_set" => &[Fd("fd"), Hex("flags")],
        _ => &[],
    }
}

fn flag_names(value: u64, names: &[(u64, &str)]) -> String {
    if value == 0 {
        return "0".into();
    }
    let mut parts: Vec<String> = names
        .iter()
        .filter(|(bit, _)| value & bit != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let known: u64 = names.iter().map(|(b, _)| b).fold(0, |a, b| a | b);
    if value & !known != 0 {
        parts.push(format!("{:#x}", value & !known));
    }
    parts.join("|")
}

/// `name(arg=value, ...)`, with paths read from guest memory.
pub fn describe_call(name: &str, args: &[u64], mem: &GuestMemory) -> String {
    let mut out = format!("{name}(");
    let mut i = 0;
    let mut first = true;
    for arg in signature(name) {
        let width = if matches!(arg, Path(_) | Iovs(_)) {
            2
        } else {
            1
        };
        let (a, b) = (
            args.get(i).copied().unwrap_or(0),
            args.get(i + 1).copied().unwrap_or(0),
        );
        i += width;
        let text = match *arg {
            Fd(n) => format!("{n}={a}"),
            Int(n) => format!("{n}={}", a as i64),
            Hex(n) => format!("{n}={a:#x}"),
            Path(n) => match mem.slice(a as u32, b as u32) {
                Ok(bytes) => format!("{n}={:?}", String::from_utf8_lossy(bytes)),
                Err(_) => format!("{n}=<bad pointer>"),
            },
            Iovs(n) => describe_iovs(n, mem, a as u32, b as u32),
            OFlags => format!(
                "oflags={}",
                flag_names(
                    a,
                    &[
                        (oflags::CREAT as u64, "CREAT"),
                        (oflags::DIRECTORY as u64, "DIRECTORY"),
                        (oflags::EXCL as u64, "EXCL"),
                        (oflags::TRUNC as u64, "TRUNC"),
                    ]
                )
            ),
            FdFlags => format!(
                "fdflags={}",
                flag_names(
                    a,
                    &[
                        (fdflags::APPEND as u64, "APPEND"),
                        (fdflags::DSYNC as u64, "DSYNC"),
                        (fdflags::NONBLOCK as u64, "NONBLOCK"),
                        (fdflags::RSYNC as u64, "RSYNC"),
                        (fdflags::SYNC as u64, "SYNC"),
                    ]
                )
            ),
            Lookup(n) => format!(
                "{n}={}",
                flag_names(a, &[(lookupflags::SYMLINK_FOLLOW as u64, "SYMLINK_FOLLOW")])
            ),
            Signal => format!("sig={}", signal::wasi_name(a)),
            OutU32(_) | OutU64(_) | Skip => continue,
        };
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(&text);
    }
    out.push(')');
    out
}

fn describe_iovs(name: &str, mem: &GuestMemory, ptr: u32, count: u32) -> String {
    match mem.iovecs(ptr, count) {
        Ok(vecs) => {
            let total: u64 = vecs.iter().map(|(_, l)| *l as u64).sum();
            let unit = if vecs.len() == 1 { "buf" } else { "bufs" };
            format!("{name}=[{} {unit}, {total} bytes]", vecs.len())
        }
        Err(_) => format!("{name}=<bad pointer>"),
    }
}

/// `ok name=value` read back from the output pointers, or the errno and
/// the reason it was refused.
pub fn describe_result(name: &str, args: &[u64], mem: &GuestMemory, result: &SysResult) -> String {
    match result {
        Ok(()) => {
            let mut out = String::from("ok");
            let mut i = 0;
            for arg in signature(name) {
                let width = if matches!(arg, Path(_) | Iovs(_)) {
                    2
                } else {
                    1
                };
                let ptr = args.get(i).copied().unwrap_or(0) as u32;
                i += width;
                match *arg {
                    OutU32(n) => {
                        if let Ok(v) = mem.read_u32(ptr) {
                            let _ = write!(out, " {n}={v}");
                        }
                    }
                    OutU64(n) => {
                        if let Ok(v) = mem.read_u64(ptr) {
                            let _ = write!(out, " {n}={v}");
                        }
                    }
                    _ => {}
                }
            }
            out
        }
        Err(SysError::Errno(e)) => describe_errno(*e),
        Err(SysError::Stop(stop)) => match stop {
            Stop::Exit(code) => format!("exit {code}"),
            Stop::Exec(_) => "ok (exec)".into(),
            Stop::ExitDenied(_) => "stopped (denied by policy: exit)".into(),
            other => format!("stopped ({other})"),
        },
    }
}

pub fn describe_errno(e: Errno) -> String {
    match crate::note::take() {
        Some(why) => format!("{} ({why})", e.name()),
        None => e.name().to_string(),
    }
}
