//! Reading and writing a VFS node from a position of one's own: what the
//! streams of `read-via-stream`, `write-via-stream` and
//! `append-via-stream` do in both versions (`wasi:io` streams in 0.2,
//! component-model streams in 0.3).
//!
//! Files are read and written in the call itself (VFS calls are fast and
//! never block on regular files). A node that blocks in the kernel (a host
//! FIFO, whose host descriptor is non-blocking) answers `EAGAIN` when it
//! is not ready: a read or write then reports "not ready" and the stream
//! retries every few milliseconds ([`pause`]) until the node takes or
//! gives bytes, so that no host thread ever waits on it. A FIFO read
//! before its writer came reads nothing rather than end of file (a writer
//! that comes and goes between two retries without writing is missed: the
//! stream waits on).
//!
//! Offsets past `i64::MAX` are `EINVAL`, as pread(2) and pwrite(2) of
//! Linux say, whatever the mount (a virtual or sealed file would otherwise
//! read nothing there).

use std::sync::Arc;
use std::time::Duration;
use warden_kernel::abi::Errno;
use warden_kernel::vfs::Node;

/// How often a stream asks a node that was not ready again.
pub(crate) const RETRY: Duration = Duration::from_millis(5);

/// Waits [`RETRY`] without holding a host thread when there is a tokio
/// runtime (as wasmtime-wasi's own streams need), else sleeps.
pub(crate) async fn pause() {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::time::sleep(RETRY).await;
    } else {
        std::thread::sleep(RETRY);
    }
}

/// An offset a file may be read or written at.
fn checked(offset: u64) -> Result<u64, Errno> {
    if offset > i64::MAX as u64 {
        return Err(Errno::INVAL);
    }
    Ok(offset)
}

/// Reads a node from an offset on.
pub(crate) struct NodeReader {
    node: Arc<dyn Node>,
    /// Where the next read starts; `None` once the node turned out to have
    /// no offsets (a FIFO: `ESPIPE`), which is read in sequence.
    position: Option<u64>,
    /// A FIFO whose writer may not have come yet: until it has (some data,
    /// or `EAGAIN`: open but empty), end of file means "not yet", as a
    /// blocking open(2) for reading waits for a writer.
    awaiting_writer: bool,
}

impl NodeReader {
    pub fn new(node: Arc<dyn Node>, offset: u64) -> NodeReader {
        let awaiting_writer = node.blocks_in_kernel();
        NodeReader {
            node,
            position: Some(offset),
            awaiting_writer,
        }
    }

    pub fn node(&self) -> &Arc<dyn Node> {
        &self.node
    }

    /// One read into `buf`: `Ok(None)` when the node is not ready,
    /// `Ok(Some(0))` at the end of the file (for a non-empty `buf`).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Errno> {
        loop {
            let r = match self.position {
                Some(at) => self.node.pread(buf, checked(at)?),
                None => self.node.read(buf),
            };
            match r {
                Err(Errno::SPIPE) if self.position.is_some() => self.position = None,
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    self.awaiting_writer = false;
                    return Ok(None);
                }
                Err(e) => return Err(e),
                Ok(0) if self.awaiting_writer && !buf.is_empty() => return Ok(None),
                Ok(n) => {
                    self.awaiting_writer &= n == 0;
                    if let Some(at) = &mut self.position {
                        *at = at.checked_add(n as u64).ok_or(Errno::OVERFLOW)?;
                    }
                    return Ok(Some(n));
                }
            }
        }
    }
}

/// Where a [`NodeWriter`] writes.
#[derive(Clone, Copy)]
enum Target {
    /// At this offset, moving past what was written.
    At(u64),
    /// At the end of the file, wherever it is at each write.
    End,
    /// In sequence: a node without offsets (a FIFO).
    Sequential,
}

/// Writes a node at an offset, or at its end.
pub(crate) struct NodeWriter {
    node: Arc<dyn Node>,
    target: Target,
}

impl NodeWriter {
    /// Writes from `offset` on.
    pub fn at(node: Arc<dyn Node>, offset: u64) -> NodeWriter {
        NodeWriter {
            node,
            target: Target::At(offset),
        }
    }

    /// Appends: every write lands at the end of the file.
    pub fn append(node: Arc<dyn Node>) -> NodeWriter {
        NodeWriter {
            node,
            target: Target::End,
        }
    }

    /// One write of `buf` or of its beginning: how much the node took, or
    /// `Ok(None)` when it is not ready.
    pub fn write(&mut self, buf: &[u8]) -> Result<Option<usize>, Errno> {
        loop {
            let r = match self.target {
                Target::At(at) => self.node.pwrite(buf, checked(at)?),
                Target::End => self.node.pwrite_end(buf),
                Target::Sequential => self.node.write(buf),
            };
            match r {
                Err(Errno::SPIPE) if !matches!(self.target, Target::Sequential) => {
                    self.target = Target::Sequential
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => return Ok(None),
                Err(e) => return Err(e),
                // A file that takes nothing would take nothing forever.
                Ok(0) if !buf.is_empty() => return Err(Errno::NOSPC),
                Ok(n) => {
                    if let Target::At(at) = &mut self.target {
                        *at = at.checked_add(n as u64).ok_or(Errno::FBIG)?;
                    }
                    return Ok(Some(n));
                }
            }
        }
    }
}
