//! The `wasi_snapshot_preview1` ABI: numbers, flags and struct layouts, as
//! the witx definitions give them, and bounds-checked access to guest memory.

mod errno;
mod memory;

pub use errno::Errno;
pub use memory::GuestMemory;

pub type Result<T> = std::result::Result<T, Errno>;

pub mod filetype {
    pub const UNKNOWN: u8 = 0;
    pub const BLOCK_DEVICE: u8 = 1;
    pub const CHARACTER_DEVICE: u8 = 2;
    pub const DIRECTORY: u8 = 3;
    pub const REGULAR_FILE: u8 = 4;
    pub const SOCKET_DGRAM: u8 = 5;
    pub const SOCKET_STREAM: u8 = 6;
    pub const SYMBOLIC_LINK: u8 = 7;
}

pub mod fdflags {
    pub const APPEND: u16 = 1;
    pub const DSYNC: u16 = 2;
    pub const NONBLOCK: u16 = 4;
    pub const RSYNC: u16 = 8;
    pub const SYNC: u16 = 16;
}

pub mod oflags {
    pub const CREAT: u16 = 1;
    pub const DIRECTORY: u16 = 2;
    pub const EXCL: u16 = 4;
    pub const TRUNC: u16 = 8;
}

pub mod lookupflags {
    pub const SYMLINK_FOLLOW: u32 = 1;
}

pub mod fstflags {
    pub const ATIM: u16 = 1;
    pub const ATIM_NOW: u16 = 2;
    pub const MTIM: u16 = 4;
    pub const MTIM_NOW: u16 = 8;
}

pub mod whence {
    pub const SET: u8 = 0;
    pub const CUR: u8 = 1;
    pub const END: u8 = 2;
}

pub mod clockid {
    pub const REALTIME: u32 = 0;
    pub const MONOTONIC: u32 = 1;
    pub const PROCESS_CPUTIME: u32 = 2;
    pub const THREAD_CPUTIME: u32 = 3;
}

pub mod eventtype {
    pub const CLOCK: u8 = 0;
    pub const FD_READ: u8 = 1;
    pub const FD_WRITE: u8 = 2;
}

pub const SUBCLOCKFLAGS_ABSTIME: u16 = 1;
pub const EVENTRWFLAGS_HANGUP: u16 = 1;
pub const RIFLAGS_RECV_PEEK: u16 = 1;
pub const RIFLAGS_RECV_WAITALL: u16 = 2;
pub const SDFLAGS_RD: u8 = 1;
pub const SDFLAGS_WR: u8 = 2;
pub const PREOPENTYPE_DIR: u8 = 0;

pub mod rights {
    pub const FD_DATASYNC: u64 = 1 << 0;
    pub const FD_READ: u64 = 1 << 1;
    pub const FD_SEEK: u64 = 1 << 2;
    pub const FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
    pub const FD_SYNC: u64 = 1 << 4;
    pub const FD_TELL: u64 = 1 << 5;
    pub const FD_WRITE: u64 = 1 << 6;
    pub const FD_ADVISE: u64 = 1 << 7;
    pub const FD_ALLOCATE: u64 = 1 << 8;
    pub const PATH_CREATE_DIRECTORY: u64 = 1 << 9;
    pub const PATH_CREATE_FILE: u64 = 1 << 10;
    pub const PATH_LINK_SOURCE: u64 = 1 << 11;
    pub const PATH_LINK_TARGET: u64 = 1 << 12;
    pub const PATH_OPEN: u64 = 1 << 13;
    pub const FD_READDIR: u64 = 1 << 14;
    pub const PATH_READLINK: u64 = 1 << 15;
    pub const PATH_RENAME_SOURCE: u64 = 1 << 16;
    pub const PATH_RENAME_TARGET: u64 = 1 << 17;
    pub const PATH_FILESTAT_GET: u64 = 1 << 18;
    pub const PATH_FILESTAT_SET_SIZE: u64 = 1 << 19;
    pub const PATH_FILESTAT_SET_TIMES: u64 = 1 << 20;
    pub const FD_FILESTAT_GET: u64 = 1 << 21;
    pub const FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
    pub const FD_FILESTAT_SET_TIMES: u64 = 1 << 23;
    pub const PATH_SYMLINK: u64 = 1 << 24;
    pub const PATH_REMOVE_DIRECTORY: u64 = 1 << 25;
    pub const PATH_UNLINK_FILE: u64 = 1 << 26;
    pub const POLL_FD_READWRITE: u64 = 1 << 27;
    pub const SOCK_SHUTDOWN: u64 = 1 << 28;
    pub const SOCK_ACCEPT: u64 = 1 << 29;

    pub const ALL: u64 = (1 << 30) - 1;
    /// What an open regular file may do.
    pub const REGULAR_FILE: u64 = FD_DATASYNC
        | FD_READ
        | FD_SEEK
        | FD_FDSTAT_SET_FLAGS
        | FD_SYNC
        | FD_TELL
        | FD_WRITE
        | FD_ADVISE
        | FD_ALLOCATE
        | FD_FILESTAT_GET
        | FD_FILESTAT_SET_SIZE
        | FD_FILESTAT_SET_TIMES
        | POLL_FD_READWRITE;
    /// What an open directory may do (its children get `ALL`).
    pub const DIRECTORY: u64 = FD_FDSTAT_SET_FLAGS
        | FD_SYNC
        | FD_ADVISE
        | PATH_CREATE_DIRECTORY
        | PATH_CREATE_FILE
        | PATH_LINK_SOURCE
        | PATH_LINK_TARGET
        | PATH_OPEN
        | FD_READDIR
        | PATH_READLINK
        | PATH_RENAME_SOURCE
        | PATH_RENAME_TARGET
        | PATH_FILESTAT_GET
        | PATH_FILESTAT_SET_SIZE
        | PATH_FILESTAT_SET_TIMES
        | FD_FILESTAT_GET
        | FD_FILESTAT_SET_TIMES
        | PATH_SYMLINK
        | PATH_REMOVE_DIRECTORY
        | PATH_UNLINK_FILE;
    /// Streams: stdio, sockets.
    pub const STREAM: u64 =
        FD_READ | FD_WRITE | FD_FDSTAT_SET_FLAGS | FD_FILESTAT_GET | POLL_FD_READWRITE;
    pub const SOCKET: u64 = STREAM | SOCK_SHUTDOWN | SOCK_ACCEPT;
}

/// Signals. Cages use Linux numbering throughout (the process ABI, wait
/// statuses, exit codes); only preview1's `proc_raise` uses WASI's own,
/// which differs above 16.
pub mod signal {
    /// WASI preview1 signal names, by WASI number.
    const WASI: [&str; 31] = [
        "NONE", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "POLL", "PWR", "SYS",
    ];
    /// Linux signal names, by Linux number.
    const LINUX: [&str; 32] = [
        "0", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];

    /// The Linux number of a WASI signal.
    pub fn wasi_to_linux(sig: u8) -> Option<u8> {
        let name = WASI.get(sig as usize).filter(|_| sig != 0)?;
        LINUX.iter().position(|n| n == name).map(|n| n as u8)
    }

    /// The name of a WASI-numbered signal, for the trace.
    pub fn wasi_name(sig: u64) -> String {
        WASI.get(sig as usize)
            .map(|s| format!("SIG{s}"))
            .unwrap_or_else(|| sig.to_string())
    }

    pub mod linux {
        pub const ABRT: u8 = 6;
        pub const KILL: u8 = 9;
        pub const PIPE: u8 = 13;
        pub const CHLD: u8 = 17;
        pub const CONT: u8 = 18;
        pub const STOP: u8 = 19;
        pub const URG: u8 = 23;
        pub const WINCH: u8 = 28;
        /// Highest signal number cages use.
        pub const MAX: u8 = 31;

        pub fn name(sig: u8) -> String {
            super::LINUX
                .get(sig as usize)
                .filter(|_| sig != 0)
                .map(|s| format!("SIG{s}"))
                .unwrap_or_else(|| format!("signal {sig}"))
        }

        /// Signals whose default action is to do nothing.
        pub fn ignored_by_default(sig: u8) -> bool {
            matches!(sig, CHLD | CONT | URG | WINCH)
        }

        /// Stop signals: a cage cannot be stopped and resumed.
        pub fn is_stop(sig: u8) -> bool {
            matches!(sig, STOP | 20..=22)
        }
    }
}

/// File metadata as `filestat` lays it out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

impl Filestat {
    pub const SIZE: u32 = 64;

    pub fn encode(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[0..8].copy_from_slice(&self.dev.to_le_bytes());
        out[8..16].copy_from_slice(&self.ino.to_le_bytes());
        out[16] = self.filetype;
        out[24..32].copy_from_slice(&self.nlink.to_le_bytes());
        out[32..40].copy_from_slice(&self.size.to_le_bytes());
        out[40..48].copy_from_slice(&self.atim.to_le_bytes());
        out[48..56].copy_from_slice(&self.mtim.to_le_bytes());
        out[56..64].copy_from_slice(&self.ctim.to_le_bytes());
        out
    }
}

/// One directory entry as `fd_readdir` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    pub filetype: u8,
    pub name: String,
}

impl Dirent {
    pub const HEADER: usize = 24;

    /// The entry's header, with `next` as the cookie of the entry after it.
    pub fn header(&self, next: u64) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[0..8].copy_from_slice(&next.to_le_bytes());
        out[8..16].copy_from_slice(&self.ino.to_le_bytes());
        out[16..20].copy_from_slice(&(self.name.len() as u32).to_le_bytes());
        out[20] = self.filetype;
        out
    }
}
