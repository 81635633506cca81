//! The `wasi:io` streams that `read-via-stream`, `write-via-stream` and
//! `append-via-stream` of 0.2 return, over the reader and writer both
//! versions share (`super::super::node_io`, which says how FIFOs wait).
//! A pollable of a node that may not be ready reads ahead, or finishes
//! what a write left, retrying until the node is ready.

use super::super::errors::StreamFailure;
use super::super::node_io::{pause, NodeReader, NodeWriter};
use bytes::{Buf, Bytes, BytesMut};
use std::sync::Arc;
use warden_kernel::abi::Errno;
use warden_kernel::vfs::{Node, Readiness};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// The most one read returns, as wasmtime-wasi.
const MAX_READ: usize = 64 * 1024;
/// What a pollable reads ahead from a node that may not be ready.
const READ_AHEAD: usize = 4096;
/// How much `check-write` permits at once.
const WRITE_CAPACITY: usize = 64 * 1024;

fn failed(errno: Errno) -> StreamError {
    StreamError::LastOperationFailed(wasmtime::Error::new(StreamFailure(errno)))
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
    reader: NodeReader,
    state: InState,
}

impl NodeInput {
    pub fn new(node: Arc<dyn Node>, offset: u64) -> NodeInput {
        NodeInput {
            reader: NodeReader::new(node, offset),
            state: InState::Idle,
        }
    }

    /// One read of at most `size` bytes; `Ok(None)` when the node is not
    /// ready, an empty buffer at the end of the file.
    fn read_once(&mut self, size: usize) -> Result<Option<Bytes>, Errno> {
        let mut buf = BytesMut::zeroed(size.min(MAX_READ));
        Ok(self.reader.read(&mut buf)?.map(|n| {
            buf.truncate(n);
            buf.freeze()
        }))
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
        if matches!(self.reader.node().readiness(), Readiness::Always) {
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

enum OutState {
    Open,
    /// A write the pollable finished failed; reported next.
    Failed(Errno),
    Closed,
}

/// `write-via-stream` and `append-via-stream`.
pub struct NodeOutput {
    writer: NodeWriter,
    /// Accepted but not yet taken by a node that was not ready.
    pending: Bytes,
    state: OutState,
}

impl NodeOutput {
    pub fn new(writer: NodeWriter) -> NodeOutput {
        NodeOutput {
            writer,
            pending: Bytes::new(),
            state: OutState::Open,
        }
    }

    /// Writes what is pending; `Ok(false)` when the node took only part
    /// of it and is not ready for more.
    fn push(&mut self) -> Result<bool, Errno> {
        while !self.pending.is_empty() {
            match self.writer.write(&self.pending)? {
                Some(n) => self.pending.advance(n),
                None => return Ok(false),
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
