//! The HTTP side: accept connections (plain or TLS, HTTP/1.1 and HTTP/2),
//! route each request to its app, answer warden's own paths, and shut down
//! gracefully.

use crate::app::plain;
use crate::attested::{AttestedError, Attestor, Connection};
use crate::deploy::Deployer;
use crate::route::RESERVED_PREFIX;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use wasmtime_wasi_http::WasiBody;

/// Headers warden sets on every request an app gets; a client's own
/// headers of these names are dropped.
pub const HEADER_PREFIX: &str = "warden-";

/// How long a graceful shutdown waits for requests in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A TLS server configuration from PEM files: the certificate chain and
/// its private key (PKCS#8, PKCS#1 or SEC1). HTTP/2 and HTTP/1.1 by ALPN.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS certificate {}: no certificate in it",
            cert.display()
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("TLS key {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS implementation: ring, as wasmtime-wasi-http's outbound TLS
/// already uses (rustls's aws-lc-rs provider, with post-quantum key
/// exchange, needs cmake and a long C build on every fresh machine).
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What a connection needs to serve requests.
#[derive(Clone)]
pub struct Site {
    pub deployer: Arc<Deployer>,
    pub scheme: &'static str,
    pub local: SocketAddr,
    /// With `--tls attested`.
    pub attestor: Option<Arc<Attestor>>,
}

/// Where a request came from.
#[derive(Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    /// For attested TLS: what the handshake gave.
    pub attested: Connection,
}

impl Site {
    /// Answers one request.
    pub async fn dispatch(
        &self,
        req: http::Request<Incoming>,
        peer: Peer,
    ) -> http::Response<WasiBody> {
        let path = req.uri().path().to_string();
        if path.starts_with(RESERVED_PREFIX) {
            return self.own(&path, req.uri().query(), &peer).await;
        }
        let deployment = self.deployer.current();
        let Some((app, m)) = deployment.lookup(&path) else {
            return plain(404, "no app is routed here\n");
        };
        let req = match self.guest_request(
            req,
            peer.addr,
            &m.route.to_string(),
            m.route.path(),
            &m.path_info,
            &app.spec.name,
        ) {
            Ok(req) => req,
            Err(status) => return plain(status, "bad request\n"),
        };
        drop(deployment);
        app.handle(req).await
    }

    /// `/.well-known/warden/...`: warden's own answers.
    async fn own(&self, path: &str, query: Option<&str>, peer: &Peer) -> http::Response<WasiBody> {
        let endpoint = &path[RESERVED_PREFIX.len()..];
        match (endpoint, &self.attestor) {
            ("health", _) => {
                let apps = self.deployer.current().apps.len();
                json(200, format!("{{\"status\":\"ok\",\"apps\":{apps}}}\n"))
            }
            ("attestation" | "manifest", None) => plain(
                404,
                "this server is not attested (warden serve --tls attested)\n",
            ),
            ("attestation" | "manifest", Some(attestor)) => {
                let attestor = attestor.clone();
                let query = query.map(str::to_string);
                let conn = peer.attested;
                let fresh = endpoint == "attestation";
                // Hardware evidence is a blocking kernel round trip.
                let answer = tokio::task::spawn_blocking(move || {
                    if fresh {
                        attestor.fresh(query.as_deref(), &conn)
                    } else {
                        attestor.manifest(query.as_deref())
                    }
                })
                .await;
                match answer {
                    Ok(Ok(doc)) => json(200, doc),
                    Ok(Err(AttestedError::BadRequest(e))) => plain(400, &format!("{e}\n")),
                    Ok(Err(e)) => {
                        crate::log::server(&format!("{e}"));
                        plain(500, "attestation failed; the server log says why\n")
                    }
                    Err(_) => plain(500, "attestation failed\n"),
                }
            }
            _ => plain(404, "no such warden endpoint\n"),
        }
    }

    /// The request as the app sees it: an absolute URL, and `warden-*`
    /// headers saying what matched (as Spin's `spin-*` do).
    fn guest_request(
        &self,
        req: http::Request<Incoming>,
        peer: SocketAddr,
        matched: &str,
        base: &str,
        path_info: &str,
        app: &str,
    ) -> Result<http::Request<WasiBody>, u16> {
        let (mut parts, body) = req.into_parts();
        let authority = parts
            .uri
            .authority()
            .map(|a| a.to_string())
            .or_else(|| {
                parts
                    .headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| self.local.to_string());
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let uri: http::Uri = format!("{}://{authority}{path_and_query}", self.scheme)
            .parse()
            .map_err(|_| 400u16)?;
        let remove: Vec<http::HeaderName> = parts
            .headers
            .keys()
            .filter(|k| k.as_str().starts_with(HEADER_PREFIX))
            .cloned()
            .collect();
        for k in remove {
            parts.headers.remove(k);
        }
        let h = &mut parts.headers;
        let mut set = |name: &'static str, value: &str| -> Result<(), u16> {
            let value = http::HeaderValue::from_str(value).map_err(|_| 400u16)?;
            h.insert(http::HeaderName::from_static(name), value);
            Ok(())
        };
        set("warden-full-url", &uri.to_string())?;
        set("warden-path-info", path_info)?;
        set("warden-matched-route", matched)?;
        set(
            "warden-component-route",
            if base.is_empty() { "/" } else { base },
        )?;
        set("warden-client-addr", &peer.to_string())?;
        set("warden-app", app)?;
        parts.uri = uri;
        let body = body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync();
        Ok(http::Request::from_parts(parts, body))
    }
}

/// A JSON answer.
fn json(status: u16, body: String) -> http::Response<WasiBody> {
    let mut res = plain(status, &body);
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// Serves connections from `listener` until `shutdown` resolves, then
/// stops accepting and waits (up to [`DRAIN_TIMEOUT`]) for the requests
/// in flight.
pub async fn serve(
    listener: TcpListener,
    site: Site,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors and the like: wait, don't spin.
                    crate::log::server(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let site = site.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            connection(stream, peer, site, tls, watcher).await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            crate::log::server("requests still in flight after the drain timeout were dropped");
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    site: Site,
    tls: Option<TlsAcceptor>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let attestor = site.attestor.clone();
    let service = |peer: Peer| {
        hyper::service::service_fn(move |req| {
            let site = site.clone();
            async move { Ok::<_, std::convert::Infallible>(site.dispatch(req, peer).await) }
        })
    };
    let builder = auto::Builder::new(TokioExecutor::new());
    match tls {
        None => {
            let peer = Peer {
                addr: peer,
                attested: Connection::default(),
            };
            let conn = builder.serve_connection(TokioIo::new(stream), service(peer));
            let _ = watcher.watch(conn.into_owned()).await;
        }
        Some(acceptor) => {
            let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
            else {
                return;
            };
            let attested = match &attestor {
                Some(a) => a.connection(stream.get_ref().1),
                None => Connection::default(),
            };
            let peer = Peer {
                addr: peer,
                attested,
            };
            let conn = builder.serve_connection(TokioIo::new(stream), service(peer));
            let _ = watcher.watch(conn.into_owned()).await;
        }
    }
}

/// Serves `GET /metrics` (Prometheus text format) on its own listener.
pub async fn serve_metrics(listener: TcpListener, deployer: Arc<Deployer>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let deployer = deployer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                let deployer = deployer.clone();
                async move {
                    let res = if req.uri().path() == "/metrics" {
                        let mut res = http::Response::new(Full::new(Bytes::from(
                            deployer.metrics().encode(),
                        )));
                        res.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static(
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            ),
                        );
                        res
                    } else {
                        let mut res = http::Response::new(Full::new(Bytes::from_static(
                            b"metrics are at /metrics\n",
                        )));
                        *res.status_mut() = http::StatusCode::NOT_FOUND;
                        res
                    };
                    Ok::<_, std::convert::Infallible>(res)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
