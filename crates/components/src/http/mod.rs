//! Outbound HTTP (`wasi:http` 0.2 and 0.3) only to the origins the policy
//! lists; every other request fails with `HTTP-request-denied` before any
//! connection is made.

mod p3_send;

use std::future::Future;
use std::sync::Arc;
use warden_kernel::note::{Denial, DenialNotes};
use warden_policy::HttpOrigin;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView};

/// The hooks wasmtime-wasi-http calls to send a request.
pub struct AllowListHooks {
    allowed: Arc<Vec<HttpOrigin>>,
    notes: Arc<DenialNotes>,
}

impl AllowListHooks {
    pub fn new(allowed: Vec<HttpOrigin>, notes: Arc<DenialNotes>) -> AllowListHooks {
        AllowListHooks::shared(Arc::new(allowed), notes)
    }

    /// [`AllowListHooks::new`] with a list shared by many stores (an app's
    /// requests), so that none copies it.
    pub fn shared(allowed: Arc<Vec<HttpOrigin>>, notes: Arc<DenialNotes>) -> AllowListHooks {
        AllowListHooks { allowed, notes }
    }

    /// Whether a request to `uri` may go out.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let Some(host) = uri.host() else {
            return false;
        };
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        self.allowed.iter().any(|o| o.allows(scheme, host, port))
    }
}

type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for AllowListHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        if !self.allows(request.uri()) {
            self.notes.denied(Denial::Http);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let default = wasmtime_wasi_http::default_hooks();
        default.send_request(request, options, fut)
    }
}

/// Outbound `wasi:http` 0.2 and 0.3 (the `client` and `types` interfaces),
/// with 0.3's `client.send` reporting an untransmitted request as such and
/// sending a request without a path for `/` ([`p3_send`]).
pub fn add_to_linker<T: WasiHttpView + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    wasmtime_wasi_http::p3::add_to_linker(linker)?;
    p3_send::add_to_linker(linker)
}
