//! Why a call was refused: for `--trace`, and for the one line a run
//! prints the first time the policy denies each subsystem.
//!
//! Each cage runs on its own thread, so the reason for the trace is kept
//! per thread and taken by the tracer after the call. The denial notes are
//! shared by every cage of a run ([`DenialNotes`]).

use crate::abi::Errno;
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use warden_policy::Subsystem;

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

/// What the policy denied, as a user grants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    Subsystem(Subsystem),
    /// A standard stream in mode `deny`: 0, 1 or 2.
    Stream(u8),
    /// A socket address outside the `--allow-net` list.
    Net,
    /// An HTTP request to an origin outside the `--allow-http` list.
    Http,
}

impl Denial {
    /// A distinct bit per denial, to note each once.
    fn bit(self) -> u32 {
        match self {
            Denial::Subsystem(sub) => 1 << (sub as u32),
            Denial::Stream(fd) => 1 << (Subsystem::ALL.len() as u32 + fd.min(2) as u32),
            Denial::Net => 1 << (Subsystem::ALL.len() as u32 + 3),
            Denial::Http => 1 << (Subsystem::ALL.len() as u32 + 4),
        }
    }

    /// `warden: note: process denied by policy (grant with --allow process)`.
    pub fn line(self) -> String {
        match self {
            Denial::Subsystem(sub) => {
                format!("warden: note: {sub} denied by policy (grant with --allow {sub})")
            }
            Denial::Stream(fd) => {
                let name = ["stdin", "stdout", "stderr"][fd.min(2) as usize];
                format!("warden: note: {name} denied by policy (grant with --{name} allow)")
            }
            Denial::Net => "warden: note: a network address was denied by policy (grant with --allow-net ADDR)".into(),
            Denial::Http => "warden: note: an HTTP request was denied by policy (grant with --allow-http ORIGIN)".into(),
        }
    }
}

/// Prints one line the first time each subsystem is denied in a run,
/// whichever cage it was; later denials print nothing.
pub struct DenialNotes {
    seen: AtomicU32,
    out: Option<Mutex<Box<dyn Write + Send>>>,
}

impl DenialNotes {
    /// Notes go to `out`; `None` keeps quiet (`--quiet`).
    pub fn new(out: Option<Box<dyn Write + Send>>) -> DenialNotes {
        DenialNotes {
            seen: AtomicU32::new(0),
            out: out.map(Mutex::new),
        }
    }

    pub fn quiet() -> DenialNotes {
        DenialNotes::new(None)
    }

    /// Notes `denial` unless it was noted before in this run.
    pub fn denied(&self, denial: Denial) {
        let Some(out) = &self.out else {
            return;
        };
        let bit = denial.bit();
        if self.seen.fetch_or(bit, Ordering::SeqCst) & bit != 0 {
            return;
        }
        if let Ok(mut out) = out.lock() {
            // A note that cannot be written must not stop the guest.
            let _ = writeln!(out, "{}", denial.line());
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_denial_is_noted_once() {
        let sink = Sink::default();
        let notes = DenialNotes::new(Some(Box::new(sink.clone())));
        for _ in 0..3 {
            notes.denied(Denial::Subsystem(Subsystem::Process));
            notes.denied(Denial::Stream(1));
        }
        notes.denied(Denial::Subsystem(Subsystem::Env));
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "warden: note: process denied by policy (grant with --allow process)\n\
             warden: note: stdout denied by policy (grant with --stdout allow)\n\
             warden: note: env denied by policy (grant with --allow env)\n"
        );
    }
}
