//! Standard streams in mode `deny`: every read or write fails, and the
//! first one is noted.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use warden_kernel::note::{Denial, DenialNotes};
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};

/// A standard stream the policy denies: 0, 1 or 2.
#[derive(Clone)]
pub struct DeniedStream {
    fd: u8,
    notes: Arc<DenialNotes>,
}

impl DeniedStream {
    pub fn new(fd: u8, notes: Arc<DenialNotes>) -> DeniedStream {
        DeniedStream { fd, notes }
    }

    fn refuse(&self) -> io::Error {
        self.notes.denied(Denial::Stream(self.fd));
        let name = ["stdin", "stdout", "stderr"][self.fd.min(2) as usize];
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{name} denied by policy"),
        )
    }
}

impl IsTerminal for DeniedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for DeniedStream {
    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

impl StdoutStream for DeniedStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncRead for DeniedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.refuse()))
    }
}

impl AsyncWrite for DeniedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(self.refuse()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
