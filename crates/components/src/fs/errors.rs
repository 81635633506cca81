//! The error a failed stream operation of 0.2 carries, so that
//! `filesystem-error-code` can find the code again. (0.3 streams report
//! their error in the future that comes with them.)

use std::fmt;
use warden_kernel::abi::Errno;
use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode;

use super::p2::error_code;

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
        use super::super::p3::error_code as p3;
        use wasmtime_wasi::p3::bindings::filesystem::types::ErrorCode as P3;
        assert!(matches!(p3(Errno::NOTCAPABLE), P3::NotPermitted));
        assert!(matches!(p3(Errno::ROFS), P3::ReadOnly));
        assert!(matches!(p3(Errno::AGAIN), P3::Other(Some(_))));
        assert_eq!(error_code(Errno::AGAIN), ErrorCode::WouldBlock);
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
