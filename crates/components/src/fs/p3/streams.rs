//! The component-model streams of 0.3's `read-via-stream`,
//! `write-via-stream` and `append-via-stream`, over the reader and writer
//! both versions share (`super::super::node_io`, which says how FIFOs
//! wait). Bytes go straight between the guest's buffer and the node.
//!
//! Each sends the result of the whole transfer once, on a channel whose
//! other end is the `future<result<_, error-code>>` that comes with the
//! stream: the error of the read or write that failed (the stream then
//! ends), or `ok` when the stream ends otherwise (end of file; the guest
//! dropped its end).

use super::error_code;
use crate::fs::node_io::{NodeReader, NodeWriter, RETRY};
use bytes::BytesMut;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;
use warden_kernel::abi::Errno;
use wasmtime::component::{Destination, Source, StreamConsumer, StreamProducer, StreamResult};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p3::bindings::filesystem::types::ErrorCode;

/// What a host reader is given at most at once.
const HOST_READ: usize = 64 * 1024;

/// Where the result of a stream goes.
pub(super) type ResultTx = oneshot::Sender<Result<(), ErrorCode>>;

/// The result channel and the timer of a node that was not ready: what
/// both streams keep besides their node.
struct Transfer {
    result: Option<ResultTx>,
    retry: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Transfer {
    fn new(result: ResultTx) -> Transfer {
        Transfer {
            result: Some(result),
            retry: None,
        }
    }

    /// Sends the result, once.
    fn close(&mut self, result: Result<(), Errno>) {
        if let Some(tx) = self.result.take() {
            let _ = tx.send(result.map_err(error_code));
        }
    }

    /// The end of the stream after a failure.
    fn fail(&mut self, errno: Errno) -> Poll<wasmtime::Result<StreamResult>> {
        self.close(Err(errno));
        Poll::Ready(Ok(StreamResult::Dropped))
    }

    /// The node was not ready: cancelled if the guest asked to finish,
    /// else pending until the retry timer fires (`Ready(())`: try again).
    fn wait(&mut self, cx: &mut Context<'_>, finish: bool) -> Poll<Option<StreamResult>> {
        if finish {
            self.retry = None;
            return Poll::Ready(Some(StreamResult::Cancelled));
        }
        let timer = self
            .retry
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(RETRY)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.retry = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        self.close(Ok(()));
    }
}

/// `read-via-stream`: a node read from an offset into the reader's buffer.
pub(super) struct ReadStream {
    reader: NodeReader,
    transfer: Transfer,
}

impl ReadStream {
    pub fn new(reader: NodeReader, result: ResultTx) -> ReadStream {
        ReadStream {
            reader,
            transfer: Transfer::new(result),
        }
    }
}

impl<D> StreamProducer<D> for ReadStream {
    type Item = u8;
    type Buffer = BytesMut;

    fn poll_produce<'a>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        store: StoreContextMut<'a, D>,
        dst: Destination<'a, u8, BytesMut>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let me = &mut *self;
        let mut dst = dst.as_direct(store, HOST_READ);
        loop {
            let buf = dst.remaining();
            // A zero-length read asks whether the stream is ready: a file
            // always is (a FIFO is found out by the next real read).
            if buf.is_empty() {
                return Poll::Ready(Ok(StreamResult::Completed));
            }
            match me.reader.read(buf) {
                Ok(Some(0)) => {
                    me.transfer.close(Ok(()));
                    return Poll::Ready(Ok(StreamResult::Dropped));
                }
                Ok(Some(n)) => {
                    dst.mark_written(n);
                    return Poll::Ready(Ok(StreamResult::Completed));
                }
                Ok(None) => match me.transfer.wait(cx, finish) {
                    Poll::Ready(Some(done)) => return Poll::Ready(Ok(done)),
                    Poll::Ready(None) => {}
                    Poll::Pending => return Poll::Pending,
                },
                Err(errno) => return me.transfer.fail(errno),
            }
        }
    }
}

/// `write-via-stream` and `append-via-stream`: the writer's buffer written
/// to a node.
pub(super) struct WriteStream {
    writer: NodeWriter,
    transfer: Transfer,
}

impl WriteStream {
    pub fn new(writer: NodeWriter, result: ResultTx) -> WriteStream {
        WriteStream {
            writer,
            transfer: Transfer::new(result),
        }
    }
}

impl<D> StreamConsumer<D> for WriteStream {
    type Item = u8;

    fn poll_consume(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        store: StoreContextMut<D>,
        src: Source<u8>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let me = &mut *self;
        let mut src = src.as_direct(store);
        loop {
            let buf = src.remaining();
            if buf.is_empty() {
                return Poll::Ready(Ok(StreamResult::Completed));
            }
            match me.writer.write(buf) {
                Ok(Some(n)) => {
                    src.mark_read(n);
                    return Poll::Ready(Ok(StreamResult::Completed));
                }
                Ok(None) => match me.transfer.wait(cx, finish) {
                    Poll::Ready(Some(done)) => return Poll::Ready(Ok(done)),
                    Poll::Ready(None) => {}
                    Poll::Pending => return Poll::Pending,
                },
                Err(errno) => return me.transfer.fail(errno),
            }
        }
    }
}
