//! Why a call was refused, for `--trace`. Each cage runs on its own thread,
//! so the reason is kept per thread and taken by the tracer after the call.

use crate::abi::Errno;
use std::cell::Cell;

thread_local! {
    static NOTE: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Records why `errno` is returned and passes it on.
pub fn deny(errno: Errno, why: &'static str) -> Errno {
    NOTE.with(|n| n.set(Some(why)));
    errno
}

/// The reason recorded since the last call, if any.
pub fn take() -> Option<&'static str> {
    NOTE.with(|n| n.take())
}
