//! The reference for `bench/serve.sh`: wasmtime-wasi-http's own
//! `ProxyHandler` serving one `wasi:http` component, embedded with warden's
//! engine settings (`warden_serve::engine_config`: the same pooling
//! allocator) and a fresh instance per request, behind a plain hyper
//! server: what `warden serve` costs on top of it.
//!
//! Usage: `proxy-handler-serve COMPONENT HOST:PORT`

use hyper_util::rt::{TokioExecutor, TokioIo};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

struct Host {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

struct State {
    engine: Engine,
    pre: ProxyPre<Host>,
}

struct Expiry;

impl WorkerExpiration for Expiry {
    fn poll(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        state: WorkerStatus,
        _: Instant,
    ) -> Poll<()> {
        match state {
            WorkerStatus::Idle => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }
}

struct OneRequest;

impl WorkerState for OneRequest {
    type StoreData = Host;
    type RequestData = ();
    fn should_accept_request(&self, _: usize, total: usize) -> ShouldAccept {
        if total == 0 {
            ShouldAccept::Yes
        } else {
            ShouldAccept::Never
        }
    }
    fn on_request_start(
        &self,
        _: wasmtime::StoreContextMut<'_, Host>,
        _: (),
        _: wasmtime::component::GuestTaskId,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + Sync>> {
        Box::pin(std::future::pending())
    }
    fn drop(&self, store: Store<Host>, _: wasmtime::Result<()>) {
        drop(store);
    }
}

impl HandlerState for State {
    type StoreData = Host;
    type WorkerExpiration = Expiry;
    type WorkerState = OneRequest;
    async fn instantiate(&self) -> wasmtime::Result<Instance<Host, Expiry, OneRequest>> {
        let mut store = Store::new(
            &self.engine,
            Host {
                wasi: WasiCtx::builder().build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
            },
        );
        // warden's engines interrupt on epochs: no deadline here.
        store.set_epoch_deadline(u64::MAX);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy,
            view: <Host as WasiHttpView>::http,
            expiration: Expiry,
            state: OneRequest,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(addr)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: proxy-handler-serve COMPONENT HOST:PORT");
    };
    let config = warden_serve::engine_config(false, 1000);
    let engine = Engine::new(&config)?;
    let component = Component::from_file(&engine, &path)?;
    let mut linker = Linker::<Host>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    let pre = ProxyPre::P2(wasmtime_wasi_http::p2::bindings::ProxyPre::new(
        linker.instantiate_pre(&component)?,
    )?);
    let handler = ProxyHandler::new(State { engine, pre });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!("Serving HTTP on http://{}/", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let handler = handler.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let req = req
                                .map(|b| b.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
                            let res = handler
                                .handle((), req)
                                .await
                                .map_err(|e| std::io::Error::other(e.to_string()))?;
                            Ok::<_, std::io::Error>(res)
                        }
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
