//! WASI preview1 error numbers, and the mapping from host errors.

use std::fmt;
use std::io;

/// A WASI `errno`: what a failed call returns to the guest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub u16);

macro_rules! errnos {
    ($($name:ident = $n:expr, $text:expr;)*) => {
        impl Errno {
            $(pub const $name: Errno = Errno($n);)*

            /// The conventional name, as in `ENOENT`.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $($n => concat!("E", stringify!($name)),)*
                    _ => "E?",
                }
            }

            pub fn describe(self) -> &'static str {
                match self.0 {
                    $($n => $text,)*
                    _ => "unknown error",
                }
            }
        }
    };
}

errnos! {
    SUCCESS = 0, "success";
    TOOBIG = 1, "argument list too long";
    ACCES = 2, "permission denied";
    ADDRINUSE = 3, "address in use";
    ADDRNOTAVAIL = 4, "address not available";
    AFNOSUPPORT = 5, "address family not supported";
    AGAIN = 6, "resource unavailable, try again";
    ALREADY = 7, "connection already in progress";
    BADF = 8, "bad file descriptor";
    BADMSG = 9, "bad message";
    BUSY = 10, "device or resource busy";
    CANCELED = 11, "operation canceled";
    CHILD = 12, "no child processes";
    CONNABORTED = 13, "connection aborted";
    CONNREFUSED = 14, "connection refused";
    CONNRESET = 15, "connection reset";
    DEADLK = 16, "resource deadlock would occur";
    DESTADDRREQ = 17, "destination address required";
    DOM = 18, "argument out of domain";
    DQUOT = 19, "quota exceeded";
    EXIST = 20, "file exists";
    FAULT = 21, "bad address";
    FBIG = 22, "file too large";
    HOSTUNREACH = 23, "host is unreachable";
    IDRM = 24, "identifier removed";
    ILSEQ = 25, "illegal byte sequence";
    INPROGRESS = 26, "operation in progress";
    INTR = 27, "interrupted function";
    INVAL = 28, "invalid argument";
    IO = 29, "i/o error";
    ISCONN = 30, "socket is connected";
    ISDIR = 31, "is a directory";
    LOOP = 32, "too many levels of symbolic links";
    MFILE = 33, "file descriptor value too large";
    MLINK = 34, "too many links";
    MSGSIZE = 35, "message too large";
    MULTIHOP = 36, "multihop attempted";
    NAMETOOLONG = 37, "filename too long";
    NETDOWN = 38, "network is down";
    NETRESET = 39, "connection aborted by network";
    NETUNREACH = 40, "network unreachable";
    NFILE = 41, "too many files open in system";
    NOBUFS = 42, "no buffer space available";
    NODEV = 43, "no such device";
    NOENT = 44, "no such file or directory";
    NOEXEC = 45, "executable file format error";
    NOLCK = 46, "no locks available";
    NOLINK = 47, "link has been severed";
    NOMEM = 48, "not enough space";
    NOMSG = 49, "no message of the desired type";
    NOPROTOOPT = 50, "protocol not available";
    NOSPC = 51, "no space left on device";
    NOSYS = 52, "function not supported";
    NOTCONN = 53, "the socket is not connected";
    NOTDIR = 54, "not a directory";
    NOTEMPTY = 55, "directory not empty";
    NOTRECOVERABLE = 56, "state not recoverable";
    NOTSOCK = 57, "not a socket";
    NOTSUP = 58, "not supported";
    NOTTY = 59, "inappropriate i/o control operation";
    NXIO = 60, "no such device or address";
    OVERFLOW = 61, "value too large to be stored in data type";
    OWNERDEAD = 62, "previous owner died";
    PERM = 63, "operation not permitted";
    PIPE = 64, "broken pipe";
    PROTO = 65, "protocol error";
    PROTONOSUPPORT = 66, "protocol not supported";
    PROTOTYPE = 67, "protocol wrong type for socket";
    RANGE = 68, "result too large";
    ROFS = 69, "read-only file system";
    SPIPE = 70, "invalid seek";
    SRCH = 71, "no such process";
    STALE = 72, "stale file handle";
    TIMEDOUT = 73, "connection timed out";
    TXTBSY = 74, "text file busy";
    XDEV = 75, "cross-device link";
    NOTCAPABLE = 76, "capabilities insufficient";
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<rustix::io::Errno> for Errno {
    fn from(e: rustix::io::Errno) -> Errno {
        from_raw_os_error(e.raw_os_error())
    }
}

impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Errno {
        if let Some(code) = e.raw_os_error() {
            return from_raw_os_error(code);
        }
        // Errors that carry no OS code come from cap-std's own checks (a
        // path leaving its directory) or from std's argument checks.
        match e.kind() {
            io::ErrorKind::PermissionDenied => Errno::NOTCAPABLE,
            io::ErrorKind::NotFound => Errno::NOENT,
            io::ErrorKind::AlreadyExists => Errno::EXIST,
            io::ErrorKind::InvalidInput => Errno::INVAL,
            io::ErrorKind::WouldBlock => Errno::AGAIN,
            io::ErrorKind::Interrupted => Errno::INTR,
            io::ErrorKind::Unsupported => Errno::NOTSUP,
            io::ErrorKind::BrokenPipe => Errno::PIPE,
            _ => Errno::IO,
        }
    }
}

/// Linux errno → WASI errno.
fn from_raw_os_error(code: i32) -> Errno {
    use rustix::io::Errno as E;
    let e = E::from_raw_os_error(code);
    match e {
        E::TOOBIG => Errno::TOOBIG,
        E::ACCESS => Errno::ACCES,
        E::ADDRINUSE => Errno::ADDRINUSE,
        E::ADDRNOTAVAIL => Errno::ADDRNOTAVAIL,
        E::AFNOSUPPORT => Errno::AFNOSUPPORT,
        E::AGAIN => Errno::AGAIN,
        E::ALREADY => Errno::ALREADY,
        E::BADF => Errno::BADF,
        E::BADMSG => Errno::BADMSG,
        E::BUSY => Errno::BUSY,
        E::CANCELED => Errno::CANCELED,
        E::CHILD => Errno::CHILD,
        E::CONNABORTED => Errno::CONNABORTED,
        E::CONNREFUSED => Errno::CONNREFUSED,
        E::CONNRESET => Errno::CONNRESET,
        E::DEADLK => Errno::DEADLK,
        E::DESTADDRREQ => Errno::DESTADDRREQ,
        E::DOM => Errno::DOM,
        E::DQUOT => Errno::DQUOT,
        E::EXIST => Errno::EXIST,
        E::FAULT => Errno::FAULT,
        E::FBIG => Errno::FBIG,
        E::HOSTUNREACH => Errno::HOSTUNREACH,
        E::IDRM => Errno::IDRM,
        E::ILSEQ => Errno::ILSEQ,
        E::INPROGRESS => Errno::INPROGRESS,
        E::INTR => Errno::INTR,
        E::INVAL => Errno::INVAL,
        E::IO => Errno::IO,
        E::ISCONN => Errno::ISCONN,
        E::ISDIR => Errno::ISDIR,
        E::LOOP => Errno::LOOP,
        E::MFILE => Errno::MFILE,
        E::MLINK => Errno::MLINK,
        E::MSGSIZE => Errno::MSGSIZE,
        E::NAMETOOLONG => Errno::NAMETOOLONG,
        E::NETDOWN => Errno::NETDOWN,
        E::NETRESET => Errno::NETRESET,
        E::NETUNREACH => Errno::NETUNREACH,
        E::NFILE => Errno::NFILE,
        E::NOBUFS => Errno::NOBUFS,
        E::NODEV => Errno::NODEV,
        E::NOENT => Errno::NOENT,
        E::NOEXEC => Errno::NOEXEC,
        E::NOLCK => Errno::NOLCK,
        E::NOMEM => Errno::NOMEM,
        E::NOSPC => Errno::NOSPC,
        E::NOSYS => Errno::NOSYS,
        E::NOTCONN => Errno::NOTCONN,
        E::NOTDIR => Errno::NOTDIR,
        E::NOTEMPTY => Errno::NOTEMPTY,
        E::NOTSOCK => Errno::NOTSOCK,
        E::NOTSUP => Errno::NOTSUP,
        E::NOTTY => Errno::NOTTY,
        E::NXIO => Errno::NXIO,
        E::OVERFLOW => Errno::OVERFLOW,
        E::PERM => Errno::PERM,
        E::PIPE => Errno::PIPE,
        E::RANGE => Errno::RANGE,
        E::ROFS => Errno::ROFS,
        E::SPIPE => Errno::SPIPE,
        E::SRCH => Errno::SRCH,
        E::TIMEDOUT => Errno::TIMEDOUT,
        E::TXTBSY => Errno::TXTBSY,
        E::XDEV => Errno::XDEV,
        _ => Errno::IO,
    }
}
