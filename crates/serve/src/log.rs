//! The host log: one line per event on standard error, each tagged with
//! the app it is about. Guest output (stdout, stderr, `wasi:logging`)
//! reaches it at once, a line at a time.

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Writes one line of the host log: `[APP] WHAT: TEXT`. Control
/// characters in `text` are escaped, so that a guest cannot forge lines.
pub fn line(app: &str, what: &str, text: &str) {
    let text: String = text
        .chars()
        .flat_map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "[{app}] {what}: {text}");
}

/// A line of the server itself, not of an app.
pub fn server(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "warden serve: {text}");
}

/// A guest's stdout or stderr: complete lines go to the host log, tagged
/// with the app and the stream; a last partial line when the request ends.
#[derive(Clone)]
pub struct LineLog {
    inner: Arc<LineLogInner>,
}

struct LineLogInner {
    app: Arc<str>,
    stream: &'static str,
    pending: Mutex<Vec<u8>>,
}

/// A guest writing more than this without a newline gets it logged in
/// pieces of this size.
const MAX_LINE: usize = 16 * 1024;

impl LineLog {
    pub fn new(app: Arc<str>, stream: &'static str) -> LineLog {
        LineLog {
            inner: Arc::new(LineLogInner {
                app,
                stream,
                pending: Mutex::new(Vec::new()),
            }),
        }
    }

    fn write(&self, buf: &[u8]) {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(buf);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let rest = pending.split_off(end + 1);
            let text = String::from_utf8_lossy(&pending[..end]);
            line(
                &self.inner.app,
                self.inner.stream,
                text.trim_end_matches('\r'),
            );
            *pending = rest;
        }
        while pending.len() >= MAX_LINE {
            let rest = pending.split_off(MAX_LINE);
            line(
                &self.inner.app,
                self.inner.stream,
                &String::from_utf8_lossy(&pending),
            );
            *pending = rest;
        }
    }
}

impl Drop for LineLogInner {
    fn drop(&mut self) {
        let pending = self.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        if !pending.is_empty() {
            line(&self.app, self.stream, &String::from_utf8_lossy(pending));
        }
    }
}

impl std::io::Write for LineLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LineLog::write(self, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl IsTerminal for LineLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LineLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for LineLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
