//! `wasi:http/client.send` (0.3) around wasmtime-wasi-http's own, so that
//! a request that never went out is reported as not transmitted, and a
//! request without a path goes out for `/`.
//!
//! wasmtime-wasi-http 48 (the newest that rustc 1.95 builds: 49 needs
//! 1.96) resolves the transmission future a guest gets from
//! `request.new` as a success when `send` fails before anything is on the
//! wire (name resolution, connection, an origin the policy refuses);
//! wasmtime 49 fixed this in its `send` (the test suite's
//! `http-client-sent`). Everything else about sending
//! (the body, trailers, headers, error codes, the connection's task) stays
//! the crate's: this `send` hands the crate's `send` a request made from
//! the guest's (the same body stream, whose transmission future this
//! function now owns) and settles the guest's future from what it returns.

use std::future::Future;
use std::pin::Pin;
use tokio::sync::oneshot;
use wasmtime::component::{Accessor, HasData, Linker, Resource};
use wasmtime_wasi::TrappableError;
use wasmtime_wasi_http::p3::bindings::http::client;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p3::{Request, Response};
use wasmtime_wasi_http::{Error, WasiHttp, WasiHttpCtxView, WasiHttpView};

/// What the guest's transmission future ends with when the request was
/// given up before `send` said how it went (a trap, or the guest gone).
const NOT_SENT: &str = "the request was not sent";

type HttpResult<T> = Result<T, TrappableError<ErrorCode>>;
type Transmission = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// The [`HasData`] of warden's `client.send`: the same view as the
/// crate's [`WasiHttp`].
struct Sender;

impl HasData for Sender {
    type Data<'a> = WasiHttpCtxView<'a>;
}

impl<T: WasiHttpView + 'static> client::HostWithStore<T> for Sender {
    async fn send(
        store: &Accessor<T, Self>,
        req: Resource<Request>,
    ) -> HttpResult<Resource<Response>> {
        let (settle, settled) = oneshot::channel::<Transmission>();
        let transmitted = async move {
            match settled.await {
                Ok(result) => result.await,
                Err(_) => Err(Error::InternalError(Some(NOT_SENT.to_string()))),
            }
        };
        let getter = store.getter();
        let copied = store.with(|mut access| -> HttpResult<_> {
            let mut req = access
                .get()
                .table
                .delete(req)
                .map_err(TrappableError::trap)?;
            // No path: `/`, as RFC 9112 (3.2.1) says a client must send an
            // empty path (wasmtime-wasi-http 48 fails such a request).
            if req.path_with_query.is_none() {
                req.path_with_query = Some(http::uri::PathAndQuery::from_static("/"));
            }
            let (mut http_req, options) =
                req.into_http_with_getter(&mut access, transmitted, getter)?;
            let view = access.get();
            // The crate's `send` adds `Host` from the authority again.
            if view.hooks.set_host_header() {
                http_req.headers_mut().remove(http::header::HOST);
            }
            let (mut copy, copy_transmitted) = Request::from_http(view.hooks, http_req);
            copy.options = options;
            let copy = view.table.push(copy).map_err(TrappableError::trap)?;
            // Boxed: the future is 'static, but its type names the hooks'
            // borrow.
            let copy_transmitted: Transmission = Box::pin(copy_transmitted);
            Ok((copy, copy_transmitted))
        });
        let (copy, copy_transmitted) = match copied {
            Ok(copied) => copied,
            Err(e) => {
                settle_failed(settle, &e);
                return Err(e);
            }
        };
        let crate_send = store.with_getter::<WasiHttp>(T::http);
        let sent = <WasiHttp as client::HostWithStore<T>>::send(&crate_send, copy).await;
        match &sent {
            Ok(_) => {
                _ = settle.send(copy_transmitted);
            }
            Err(e) => settle_failed(settle, e),
        }
        sent
    }
}

/// The guest's transmission future fails with the code `send` failed
/// with (a trap leaves it to [`NOT_SENT`]).
fn settle_failed(settle: oneshot::Sender<Transmission>, e: &TrappableError<ErrorCode>) {
    if let Some(code) = e.downcast_ref() {
        let error = Error::from(code.clone());
        _ = settle.send(Box::pin(async move { Err(error) }));
    }
}

/// Puts warden's `client.send` in place of the crate's, which
/// `wasmtime_wasi_http::p3::add_to_linker` must have added.
pub fn add_to_linker<T: WasiHttpView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = client::add_to_linker::<T, Sender>(linker, T::http);
    linker.allow_shadowing(false);
    added
}
