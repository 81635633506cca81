//! The `wasi:io` streams that `read-via-stream`, `write-via-stream` and
//! `append-via-stream` return: a VFS node and a position of their own.
//!
//! Files are read and written in the call itself (VFS calls are fast and
//! never block on regular files). A node that blocks in the kernel (a host
//! FIFO, whose host descriptor is non-blocking) answers `EAGAIN` when it
//! is not ready: the stream then reads nothing or keeps what it could not
//! write, and its pollable retries every few milliseconds until the node
//! takes or gives bytes, so that no host thread ever waits on it. A FIFO
//! read before its writer came reads nothing rather than end of file (a
//! writer that comes and goes between two retries without writing is
//! missed: the stream waits on).

use super::errors::StreamFailure;
use bytes::{Buf, Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use warden_kernel::abi::Errno;
use warden_kernel::vfs::{Node, Readiness};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// The most one read returns, as wasmtime-wasi.
const MAX_READ: usize = 64 * 1024;
/// What a pollable reads ahead from a node that may not be ready.
const READ_AHEAD: usize = 4096;
/// How much `check-write` permits at once.
const WRITE_CAPACITY: usize = 64 * 1024;
/// How often a pollable asks a node that was not ready again.
const RETRY: Duration = Duration::from_millis(5);

fn failed(errno: Errno) -> StreamError {
    StreamError::LastOperationFailed(wasmtime::Error::new(StreamFailure(errno)))
}

/// Waits `RETRY` without holding a host thread when there is a tokio
/// runtime (as wasmtime-wasi's own pollables need), else sleeps.
pub(crate) async fn pause() {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::time::sleep(RETRY).await;
    } else {
        std::thread::sleep(RETRY);
    }
}

enum InState {
    /// Nothing read ahead.
    Idle,
    /// Read ahead by the pollable, not yet handed out.
    Ready(Bytes),
    /// The read ahead failed; reported by the next read.
    Failed(Errno),
    /// End of file, or a failure was reported.
    Closed,
}

/// `read-via-stream`: reads a node from an offset on.
pub struct NodeInput {
    node: Arc<dyn Node>,
    /// Where the next read starts; `None` once the node turned out to have
    /// no offsets (a FIFO: `ESPIPE`), which is read in sequence.
    position: Option<u64>,
    state: InState,
    /// A FIFO whose writer may not have come yet: until it has (some data,
    /// or `EAGAIN`: open but empty), end of file means "not yet", as a
    /// blocking open(2) for reading waits for a writer.
    awaiting_writer: bool,
}

impl NodeInput {
    pub fn new(node: Arc<dyn Node>, offset: u64) -> NodeInput {
        let awaiting_writer = node.blocks_in_kernel();
        NodeInput {
            node,
            position: Some(offset),
            state: InState::Idle,
            awaiting_writer,
        }
    }

    /// One read of at most `size` bytes; `Ok(None)` when the node is not
    /// ready, an empty buffer at the end of the file.
    fn read_once(&mut self, size: usize) -> Result<Option<Bytes>, Errno> {
        let mut buf = BytesMut::zeroed(size.min(MAX_READ));
        loop {
            let r = match self.position {
                Some(at) => self.node.pread(&mut buf, at),
                None => self.node.read(&mut buf),
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
                    buf.truncate(n);
                    if let Some(at) = &mut self.position {
                        *at += n as u64;
                    }
                    return Ok(Some(buf.freeze()));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl InputStream for NodeInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        match std::mem::replace(&mut self.state, InState::Idle) {
            InState::Ready(mut ahead) => {
                let chunk = ahead.split_to(size.min(ahead.len()));
                if !ahead.is_empty() {
                    self.state = InState::Ready(ahead);
                }
                Ok(chunk)
            }
            InState::Failed(e) => {
                self.state = InState::Closed;
                Err(failed(e))
            }
            InState::Closed => {
                self.state = InState::Closed;
                Err(StreamError::Closed)
            }
            InState::Idle if size == 0 => Ok(Bytes::new()),
            InState::Idle => match self.read_once(size) {
                Ok(Some(data)) if data.is_empty() => {
                    self.state = InState::Closed;
                    Err(StreamError::Closed)
                }
                Ok(Some(data)) => Ok(data),
                Ok(None) => Ok(Bytes::new()),
                Err(e) => {
                    self.state = InState::Closed;
                    Err(failed(e))
                }
            },
        }
    }
}

#[async_trait::async_trait]
impl Pollable for NodeInput {
    async fn ready(&mut self) {
        // A node that never blocks is always ready: the read itself reads.
        if matches!(self.node.readiness(), Readiness::Always) {
            return;
        }
        while matches!(self.state, InState::Idle) {
            match self.read_once(READ_AHEAD) {
                Ok(Some(data)) if data.is_empty() => self.state = InState::Closed,
                Ok(Some(data)) => self.state = InState::Ready(data),
                Ok(None) => pause().await,
                Err(e) => self.state = InState::Failed(e),
            }
        }
    }
}

/// Where an output stream writes.
#[derive(Clone, Copy)]
enum Target {
    /// At this offset, moving past what was written.
    At(u64),
    /// At the end of the file, wherever it is at each write.
    End,
    /// In sequence: a node without offsets (a FIFO).
    Sequential,
}

enum OutState {
    Open,
    /// A write the pollable finished failed; reported next.
    Failed(Errno),
    Closed,
}

/// `write-via-stream` and `append-via-stream`.
pub struct NodeOutput {
    node: Arc<dyn Node>,
    target: Target,
    /// Accepted but not yet taken by a node that was not ready.
    pending: Bytes,
    state: OutState,
}

impl NodeOutput {
    /// Writes from `offset` on.
    pub fn at(node: Arc<dyn Node>, offset: u64) -> NodeOutput {
        NodeOutput {
            node,
            target: Target::At(offset),
            pending: Bytes::new(),
            state: OutState::Open,
        }
    }

    /// Appends: every write lands at the end of the file.
    pub fn append(node: Arc<dyn Node>) -> NodeOutput {
        NodeOutput {
            target: Target::End,
            ..NodeOutput::at(node, 0)
        }
    }

    /// Writes what is pending; `Ok(false)` when the node took only part
    /// of it and is not ready for more.
    fn push(&mut self) -> Result<bool, Errno> {
        while !self.pending.is_empty() {
            let r = match self.target {
                Target::At(at) => self.node.pwrite(&self.pending, at),
                Target::End => self.node.pwrite_end(&self.pending),
                Target::Sequential => self.node.write(&self.pending),
            };
            match r {
                Err(Errno::SPIPE) if !matches!(self.target, Target::Sequential) => {
                    self.target = Target::Sequential
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => return Ok(false),
                Err(e) => return Err(e),
                // A file that takes nothing would take nothing forever.
                Ok(0) => return Err(Errno::NOSPC),
                Ok(n) => {
                    self.pending.advance(n);
                    if let Target::At(at) = &mut self.target {
                        *at += n as u64;
                    }
                }
            }
        }
        Ok(true)
    }

    /// Reports a failure the pollable met, once; then the stream is closed.
    fn take_failure(&mut self) -> StreamResult<()> {
        match std::mem::replace(&mut self.state, OutState::Closed) {
            OutState::Open => {
                self.state = OutState::Open;
                Ok(())
            }
            OutState::Failed(e) => Err(failed(e)),
            OutState::Closed => Err(StreamError::Closed),
        }
    }

    fn push_or_close(&mut self) -> StreamResult<bool> {
        self.push().map_err(|e| {
            self.state = OutState::Closed;
            failed(e)
        })
    }
}

#[async_trait::async_trait]
impl OutputStream for NodeOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.take_failure()?;
        if !self.pending.is_empty() {
            return Err(StreamError::trap(
                "write not permitted: check-write did not permit it",
            ));
        }
        self.pending = bytes;
        self.push_or_close()?;
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.take_failure()?;
        self.push_or_close()?;
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.take_failure()?;
        if self.push_or_close()? {
            Ok(WRITE_CAPACITY)
        } else {
            Ok(0)
        }
    }
}

#[async_trait::async_trait]
impl Pollable for NodeOutput {
    async fn ready(&mut self) {
        while matches!(self.state, OutState::Open) && !self.pending.is_empty() {
            match self.push() {
                Ok(true) => {}
                Ok(false) => pause().await,
                Err(e) => self.state = OutState::Failed(e),
            }
        }
    }
}
