//! From the kernel's WASI preview-1 `Errno` to the `error-code` of
//! `wasi:filesystem` 0.2, and the error a failed stream operation carries
//! so that `filesystem-error-code` can find the code again.
//!
//! The two enumerations descend from the same POSIX list, so most codes
//! have a namesake. The choices for the others:
//!
//! - `NOTCAPABLE` (a path that would leave its mount: `..` past the root,
//!   an absolute path or symlink) is `not-permitted`, as the 0.2 spec asks
//!   and as wasmtime-wasi answers (cap-std's refusal).
//! - `AGAIN` is `would-block`, `NOSYS` and `NOTSUP` are `unsupported`,
//!   `RANGE` is `overflow`, `CANCELED` is `interrupted`, and `TOOBIG`,
//!   `DOM` and `FAULT` are `invalid`.
//! - Running out of descriptors (`MFILE`, `NFILE`) or buffers (`NOBUFS`) is
//!   `insufficient-memory`, the only resource-exhaustion code there is.
//! - The rest (network, process and message codes a filesystem call cannot
//!   meet, `STALE`, `SUCCESS`) are `io`.

use std::fmt;
use warden_kernel::abi::Errno;
use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode;
use wasmtime_wasi::p2::FsError;

/// The `error-code` for `errno`.
pub fn error_code(errno: Errno) -> ErrorCode {
    match errno {
        Errno::ACCES => ErrorCode::Access,
        Errno::AGAIN => ErrorCode::WouldBlock,
        Errno::ALREADY => ErrorCode::Already,
        Errno::BADF => ErrorCode::BadDescriptor,
        Errno::BUSY => ErrorCode::Busy,
        Errno::DEADLK => ErrorCode::Deadlock,
        Errno::DQUOT => ErrorCode::Quota,
        Errno::EXIST => ErrorCode::Exist,
        Errno::FBIG => ErrorCode::FileTooLarge,
        Errno::ILSEQ => ErrorCode::IllegalByteSequence,
        Errno::INPROGRESS => ErrorCode::InProgress,
        Errno::INTR | Errno::CANCELED => ErrorCode::Interrupted,
        Errno::INVAL | Errno::TOOBIG | Errno::DOM | Errno::FAULT => ErrorCode::Invalid,
        Errno::IO => ErrorCode::Io,
        Errno::ISDIR => ErrorCode::IsDirectory,
        Errno::LOOP => ErrorCode::Loop,
        Errno::MLINK => ErrorCode::TooManyLinks,
        Errno::MSGSIZE => ErrorCode::MessageSize,
        Errno::NAMETOOLONG => ErrorCode::NameTooLong,
        Errno::NODEV => ErrorCode::NoDevice,
        Errno::NOENT => ErrorCode::NoEntry,
        Errno::NOLCK => ErrorCode::NoLock,
        Errno::NOMEM | Errno::MFILE | Errno::NFILE | Errno::NOBUFS => ErrorCode::InsufficientMemory,
        Errno::NOSPC => ErrorCode::InsufficientSpace,
        Errno::NOTDIR => ErrorCode::NotDirectory,
        Errno::NOTEMPTY => ErrorCode::NotEmpty,
        Errno::NOTRECOVERABLE => ErrorCode::NotRecoverable,
        Errno::NOTSUP | Errno::NOSYS => ErrorCode::Unsupported,
        Errno::NOTTY => ErrorCode::NoTty,
        Errno::NXIO => ErrorCode::NoSuchDevice,
        Errno::OVERFLOW | Errno::RANGE => ErrorCode::Overflow,
        Errno::PERM | Errno::NOTCAPABLE => ErrorCode::NotPermitted,
        Errno::PIPE => ErrorCode::Pipe,
        Errno::ROFS => ErrorCode::ReadOnly,
        Errno::SPIPE => ErrorCode::InvalidSeek,
        Errno::TXTBSY => ErrorCode::TextFileBusy,
        Errno::XDEV => ErrorCode::CrossDevice,
        _ => ErrorCode::Io,
    }
}

/// An `Errno` as the `FsError` a host function returns.
pub fn fs_error(errno: Errno) -> FsError {
    error_code(errno).into()
}

/// What a failed stream read or write carries in
/// `stream-error::last-operation-failed`; `filesystem-error-code` turns it
/// back into an `error-code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamFailure(pub Errno);

impl fmt::Display for StreamFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0.describe(), self.0.name())
    }
}

impl std::error::Error for StreamFailure {}

/// The `error-code` of a stream's error, if it came from a file.
pub fn stream_error_code(err: &wasmtime::Error) -> Option<ErrorCode> {
    if let Some(StreamFailure(errno)) = err.downcast_ref::<StreamFailure>() {
        return Some(error_code(*errno));
    }
    let e = err.downcast_ref::<std::io::Error>()?;
    let errno = match e.raw_os_error() {
        Some(code) => Errno::from(std::io::Error::from_raw_os_error(code)),
        None => Errno::from(std::io::Error::from(e.kind())),
    };
    Some(error_code(errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_not_permitted_and_read_only_mounts_read_only() {
        assert_eq!(error_code(Errno::NOTCAPABLE), ErrorCode::NotPermitted);
        assert_eq!(error_code(Errno::PERM), ErrorCode::NotPermitted);
        assert_eq!(error_code(Errno::ROFS), ErrorCode::ReadOnly);
        assert_eq!(error_code(Errno::NOENT), ErrorCode::NoEntry);
        assert_eq!(error_code(Errno::XDEV), ErrorCode::CrossDevice);
        assert_eq!(error_code(Errno::CONNRESET), ErrorCode::Io);
    }

    #[test]
    fn stream_errors_find_their_code() {
        let e = wasmtime::Error::new(StreamFailure(Errno::NOSPC));
        assert_eq!(stream_error_code(&e), Some(ErrorCode::InsufficientSpace));
        // ENOENT, as the host reports it.
        let e = wasmtime::Error::new(std::io::Error::from_raw_os_error(2));
        assert_eq!(stream_error_code(&e), Some(ErrorCode::NoEntry));
        assert_eq!(stream_error_code(&wasmtime::format_err!("other")), None);
    }
}
