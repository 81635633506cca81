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

    /// What one read or write came to: `Some` to return, `None` to try
    /// again (the node was not ready and the retry timer fired). `moved`
    /// takes the bytes that went through (the reader's end of file is 0).
    fn outcome(
        &mut self,
        cx: &mut Context<'_>,
        finish: bool,
        result: Result<Option<usize>, Errno>,
        moved: impl FnOnce(usize),
    ) -> Option<Poll<wasmtime::Result<StreamResult>>> {
        match result {
            Ok(Some(0)) => {
                self.close(Ok(()));
                Some(Poll::Ready(Ok(StreamResult::Dropped)))
            }
            Ok(Some(n)) => {
                moved(n);
                Some(Poll::Ready(Ok(StreamResult::Completed)))
            }
            Ok(None) => match self.wait(cx, finish) {
                Poll::Ready(Some(done)) => Some(Poll::Ready(Ok(done))),
                Poll::Ready(None) => None,
                Poll::Pending => Some(Poll::Pending),
            },
            Err(errno) => {
                self.close(Err(errno));
                Some(Poll::Ready(Ok(StreamResult::Dropped)))
            }
        }
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
            let read = me.reader.read(buf);
            if let Some(done) = me
                .transfer
                .outcome(cx, finish, read, |n| dst.mark_written(n))
            {
                return done;
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
            let written = me.writer.write(buf);
            if let Some(done) = me
                .transfer
                .outcome(cx, finish, written, |n| src.mark_read(n))
            {
                return done;
            }
        }
    }
}
