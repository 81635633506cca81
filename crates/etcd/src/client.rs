//! A synchronous etcd client.
//!
//! warden calls the store from plain threads, from tokio tasks and from
//! wasmtime host calls. `Runtime::block_on` panics on a thread that is
//! already inside a runtime, so the client owns a small runtime on threads
//! of its own, spawns each request there and waits on a std channel: the
//! caller's thread, in a runtime or not, only ever blocks on `recv`. (A
//! tokio caller should still prefer `spawn_blocking`, as for any blocking
//! call.)

use std::future::Future;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, DeleteOptions, EventType, GetOptions, Identity, KvClient,
    TlsOptions, Txn, TxnResponse, WatchOptions,
};

use crate::error::EtcdError;
use crate::target::EtcdTarget;

/// The largest response accepted (tonic's default is 4 MiB).
const MAX_RESPONSE: usize = 256 << 20;

/// How long to wait for etcd.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Establishing a connection (and the first request at open).
    pub connect: Duration,
    /// Each request. Long enough for a leader election (about a second with
    /// etcd's defaults) and a 1 MiB write on a slow disk.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(15),
        }
    }
}

/// One key-value pair and its revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Revision of the last change of this key (what optimistic
    /// transactions compare).
    pub mod_revision: i64,
    pub create_revision: i64,
}

/// One page of a range read.
#[derive(Clone, Debug)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Whether there are more keys in the range after this page.
    pub more: bool,
    /// The revision the page was read at.
    pub revision: i64,
}

/// A change seen by a [`Watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    Put(Entry),
    /// Key deleted at `revision`.
    Delete {
        key: Vec<u8>,
        revision: i64,
    },
}

impl WatchEvent {
    /// The revision of the change.
    pub fn revision(&self) -> i64 {
        match self {
            WatchEvent::Put(e) => e.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }
}

/// The smallest key greater than every key starting with `prefix` (etcd's
/// range end for a prefix); empty (= no end) for an all-`0xff` prefix.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // etcd's "\0" range end means "to the end of the key space".
    vec![0]
}

struct Shared {
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
    /// The key-value service with room for large responses (a page of big
    /// values, a transaction returning the values it replaced).
    kv: KvClient,
    target: EtcdTarget,
    endpoints: String,
    timeouts: Timeouts,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which panics when
        // the last client is dropped inside another runtime's task.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A connection to an etcd cluster; cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct EtcdClient {
    shared: Arc<Shared>,
}

fn request_error(what: &'static str, endpoints: &str, e: etcd_client::Error) -> EtcdError {
    let detail = match &e {
        etcd_client::Error::GRpcStatus(s) => {
            let message = s.message();
            if message.is_empty() {
                format!("{:?}", s.code())
            } else {
                message.to_string()
            }
        }
        other => other.to_string(),
    };
    EtcdError::Request {
        what,
        endpoints: endpoints.to_string(),
        detail,
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|e| EtcdError::File {
        what,
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

impl EtcdClient {
    /// Connects to `target` and checks that the cluster answers (a
    /// linearizable read, so a cluster without quorum counts as
    /// unreachable).
    pub fn connect(target: &EtcdTarget, timeouts: Timeouts) -> Result<Self, EtcdError> {
        let endpoints = target.endpoints.join(",");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("warden-etcd")
            .enable_all()
            .build()
            .map_err(|e| EtcdError::Runtime(e.to_string()))?;
        let mut options = ConnectOptions::new()
            .with_connect_timeout(timeouts.connect)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        if let Some((user, password)) = &target.auth {
            options = options.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = &target.tls {
            let mut config =
                TlsOptions::new().ca_certificate(Certificate::from_pem(read_file("CA", &tls.ca)?));
            if let Some((cert, key)) = &tls.identity {
                config = config.identity(Identity::from_pem(
                    read_file("client certificate", cert)?,
                    read_file("client key", key)?,
                ));
            }
            if let Some(domain) = &tls.domain {
                config = config.domain_name(domain.clone());
            }
            options = options.with_tls(config);
        }
        let urls = target.endpoint_urls();
        let (tx, rx) = mpsc::sync_channel(1);
        let probe = target.key(b"");
        runtime.spawn(async move {
            let result = async {
                let mut client = Client::connect(urls, Some(options)).await?;
                client
                    .get(
                        probe,
                        Some(GetOptions::new().with_limit(1).with_keys_only()),
                    )
                    .await?;
                Ok::<_, etcd_client::Error>(client)
            };
            let _ = tx.send(tokio::time::timeout(timeouts.connect * 2, result).await);
        });
        let unreachable = |detail: String| EtcdError::Unreachable {
            endpoints: endpoints.clone(),
            detail,
        };
        let client = match rx.recv() {
            Ok(Ok(Ok(c))) => c,
            Ok(Ok(Err(e))) => {
                // The cluster answered, but refused these credentials.
                let refused = matches!(&e, etcd_client::Error::GRpcStatus(s)
                    if matches!(s.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied)
                        || s.message().contains("authentication")
                        || s.message().contains("user name")
                        || s.message().contains("permission denied"));
                let error = request_error("connect", &endpoints, e);
                return Err(if refused {
                    error
                } else {
                    unreachable(error.to_string())
                });
            }
            Ok(Err(_)) => {
                return Err(unreachable(format!(
                    "no answer within {:?}",
                    timeouts.connect * 2
                )))
            }
            Err(_) => return Err(EtcdError::Runtime("the connect task vanished".into())),
        };
        Ok(EtcdClient {
            shared: Arc::new(Shared {
                runtime: Some(runtime),
                kv: client
                    .kv_client()
                    .max_decoding_message_size(MAX_RESPONSE)
                    .max_encoding_message_size(MAX_RESPONSE),
                client,
                target: target.clone(),
                endpoints,
                timeouts,
            }),
        })
    }

    pub fn target(&self) -> &EtcdTarget {
        &self.shared.target
    }

    fn handle(&self) -> Result<&tokio::runtime::Handle, EtcdError> {
        self.shared
            .runtime
            .as_ref()
            .map(|r| r.handle())
            .ok_or_else(|| EtcdError::Runtime("the client is shut down".into()))
    }

    /// Runs one request on the client's runtime and waits for it. `make`
    /// builds the request and may be called again: a request that did not
    /// reach etcd (no connection to the endpoint tried, no leader) is sent
    /// again until the request timeout, to ride out a member's restart or
    /// an election. Other failures are returned; see [`EtcdError`] for
    /// which of them leave the outcome of a write unknown.
    pub fn call<T, F>(
        &self,
        what: &'static str,
        make: impl Fn(Client) -> F + Send + Sync + 'static,
    ) -> Result<T, EtcdError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        self.run(what, false, self.shared.client.clone(), make)
    }

    /// [`Self::call`] for a request that may be applied twice with the same
    /// effect (a read, a put of one value, a delete): it is also sent again
    /// after failures that leave a write's outcome unknown (the member
    /// timed out waiting for a commit, the leader changed, the connection
    /// broke).
    pub fn call_idempotent<T, F>(
        &self,
        what: &'static str,
        make: impl Fn(Client) -> F + Send + Sync + 'static,
    ) -> Result<T, EtcdError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        self.run(what, true, self.shared.client.clone(), make)
    }

    /// [`Self::call_idempotent`] on the key-value service, or with
    /// `idempotent` false, [`Self::call`] on it.
    fn kv<T, F>(
        &self,
        what: &'static str,
        idempotent: bool,
        make: impl Fn(KvClient) -> F + Send + Sync + 'static,
    ) -> Result<T, EtcdError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        self.run(what, idempotent, self.shared.kv.clone(), make)
    }

    fn run<C, T, F>(
        &self,
        what: &'static str,
        idempotent: bool,
        client: C,
        make: impl Fn(C) -> F + Send + Sync + 'static,
    ) -> Result<T, EtcdError>
    where
        C: Clone + Send + Sync + 'static,
        T: Send + 'static,
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let after = self.shared.timeouts.request;
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle()?.spawn(async move {
            let attempts = async {
                let mut pause = Duration::from_millis(20);
                loop {
                    match make(client.clone()).await {
                        Err(e) if not_sent(&e) || (idempotent && unknown_outcome(&e)) => {
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_millis(500));
                        }
                        other => return other,
                    }
                }
            };
            let _ = tx.send(tokio::time::timeout(after, attempts).await);
        });
        let endpoints = &self.shared.endpoints;
        match rx.recv() {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(request_error(what, endpoints, e)),
            Ok(Err(_)) => Err(EtcdError::Timeout {
                what,
                endpoints: endpoints.clone(),
                after,
            }),
            Err(_) => Err(EtcdError::Runtime(format!("the {what} task vanished"))),
        }
    }

    /// The value of `key` at `revision` (0: the newest), and the revision read.
    pub fn get(&self, key: &[u8], revision: i64) -> Result<(Option<Entry>, i64), EtcdError> {
        let k = key.to_vec();
        let response = self
            .kv("get", true, move |mut c| {
                let k = k.clone();
                async move {
                    c.get(k, Some(GetOptions::new().with_revision(revision)))
                        .await
                }
            })
            .map_err(|e| compacted(e, revision))?;
        let at = read_at(revision, response.header());
        let entry = response.kvs().first().map(entry_of);
        Ok((entry, at))
    }

    /// Puts `value` under `key`; returns the revision of the write.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<i64, EtcdError> {
        let (k, v) = (key.to_vec(), value.to_vec());
        let response = self.kv("put", true, move |mut c| {
            let (k, v) = (k.clone(), v.clone());
            async move { c.put(k, v, None).await }
        })?;
        Ok(response.header().map_or(0, |h| h.revision()))
    }

    /// Deletes `key`; returns how many keys were deleted (0 or 1).
    pub fn delete(&self, key: &[u8]) -> Result<i64, EtcdError> {
        let k = key.to_vec();
        let response = self.kv("delete", true, move |mut c| {
            let k = k.clone();
            async move { c.delete(k, None).await }
        })?;
        Ok(response.deleted())
    }

    /// Deletes every key starting with `prefix`; returns how many.
    pub fn delete_prefix(&self, prefix: &[u8]) -> Result<i64, EtcdError> {
        let k = prefix.to_vec();
        let response = self.kv("delete", true, move |mut c| {
            let k = k.clone();
            async move { c.delete(k, Some(DeleteOptions::new().with_prefix())).await }
        })?;
        Ok(response.deleted())
    }

    /// Runs a transaction (compare, then success or failure operations).
    pub fn txn(&self, txn: Txn) -> Result<TxnResponse, EtcdError> {
        self.kv("transaction", false, move |mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })
    }

    /// Up to `limit` entries with keys in `[start, end)` at `revision` (0:
    /// the newest; pass the returned revision for the next page so that
    /// all pages come from one snapshot).
    pub fn range(
        &self,
        start: &[u8],
        end: &[u8],
        revision: i64,
        limit: i64,
        keys_only: bool,
    ) -> Result<Page, EtcdError> {
        let (s, e) = (start.to_vec(), end.to_vec());
        let response = self
            .kv("range", true, move |mut c| {
                let (s, e) = (s.clone(), e.clone());
                async move {
                    let mut options = GetOptions::new()
                        .with_range(e)
                        .with_revision(revision)
                        .with_limit(limit);
                    if keys_only {
                        options = options.with_keys_only();
                    }
                    c.get(s, Some(options)).await
                }
            })
            .map_err(|e| compacted(e, revision))?;
        Ok(Page {
            entries: response.kvs().iter().map(entry_of).collect(),
            more: response.more(),
            revision: read_at(revision, response.header()),
        })
    }

    /// Visits the entries with keys in `[start, end)`, in key order, all at
    /// one revision (0: the newest), reading `page` at a time, until `visit`
    /// returns `false`. Returns the revision read.
    pub fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        revision: i64,
        page: i64,
        visit: &mut dyn FnMut(Entry) -> Result<bool, EtcdError>,
    ) -> Result<i64, EtcdError> {
        let mut from = start.to_vec();
        let mut revision = revision;
        loop {
            let p = self.range(&from, end, revision, page, false)?;
            revision = p.revision;
            let Some(last) = p.entries.last() else {
                return Ok(revision);
            };
            // The next page starts just after the last key: key ‖ 0x00.
            let mut next = last.key.clone();
            next.push(0);
            for entry in p.entries {
                if !visit(entry)? {
                    return Ok(revision);
                }
            }
            if !p.more {
                return Ok(revision);
            }
            from = next;
        }
    }

    /// Watches every key starting with `prefix` from `start_revision` (0:
    /// from now on). See [`Watch`].
    pub fn watch_prefix(&self, prefix: &[u8], start_revision: i64) -> Result<Watch, EtcdError> {
        let (tx, rx) = mpsc::channel();
        let key = prefix.to_vec();
        let mut client = self.shared.client.clone();
        let endpoints = self.shared.endpoints.clone();
        let connect = self.shared.timeouts.request;
        let task = self.handle()?.spawn(async move {
            let fail = |e: EtcdError| {
                let _ = tx.send(Err(e));
            };
            let options = WatchOptions::new()
                .with_prefix()
                .with_start_revision(start_revision);
            let mut stream =
                match tokio::time::timeout(connect, client.watch(key, Some(options))).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return fail(request_error("watch", &endpoints, e)),
                    Err(_) => {
                        return fail(EtcdError::Timeout {
                            what: "watch",
                            endpoints,
                            after: connect,
                        })
                    }
                };
            loop {
                match stream.message().await {
                    Ok(Some(response)) => {
                        if response.canceled() {
                            let detail = if response.compact_revision() > 0 {
                                return fail(EtcdError::Compacted {
                                    what: "watch",
                                    endpoints,
                                    revision: start_revision,
                                });
                            } else {
                                format!("cancelled: {}", response.cancel_reason())
                            };
                            return fail(EtcdError::Request {
                                what: "watch",
                                endpoints,
                                detail,
                            });
                        }
                        for event in response.events() {
                            let Some(kv) = event.kv() else { continue };
                            let event = match event.event_type() {
                                EventType::Put => WatchEvent::Put(entry_of(kv)),
                                EventType::Delete => WatchEvent::Delete {
                                    key: kv.key().to_vec(),
                                    revision: kv.mod_revision(),
                                },
                            };
                            if tx.send(Ok(event)).is_err() {
                                return; // The Watch was dropped.
                            }
                        }
                    }
                    Ok(None) => {
                        return fail(EtcdError::Request {
                            what: "watch",
                            endpoints,
                            detail: "the stream ended".into(),
                        })
                    }
                    Err(e) => return fail(request_error("watch", &endpoints, e)),
                }
            }
        });
        Ok(Watch { rx, task })
    }

    /// Streams a snapshot of the member's database into the file `path`
    /// (etcd's own backup format, as `etcdctl snapshot save`). Meant for a
    /// client of one endpoint: the snapshot is that member's.
    pub fn save_snapshot(&self, path: &Path) -> Result<(), EtcdError> {
        let bytes = self.call("snapshot", |mut c| async move {
            let mut stream = c.snapshot().await?;
            let mut out = Vec::new();
            while let Some(part) = stream.message().await? {
                out.extend_from_slice(part.blob());
            }
            Ok(out)
        })?;
        std::fs::write(path, bytes).map_err(|e| EtcdError::File {
            what: "snapshot",
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }
}

/// The revision a read was served at: the one asked for, or for 0 the
/// newest (the header's; for a read at an older revision the header holds
/// the newest, not the one read).
fn read_at(asked: i64, header: Option<&etcd_client::ResponseHeader>) -> i64 {
    if asked > 0 {
        asked
    } else {
        header.map_or(0, |h| h.revision())
    }
}

/// Whether `e` says the request never reached etcd's state machine, so
/// sending it again cannot apply it twice: no connection could be made to
/// the endpoint the balancer picked (a member down), or the member had no
/// leader to propose to.
fn not_sent(e: &etcd_client::Error) -> bool {
    let text = match e {
        etcd_client::Error::GRpcStatus(s) => s.message().to_string(),
        etcd_client::Error::TransportError(t) => format!("{t:?}"),
        _ => return false,
    };
    [
        "tcp connect error",
        "Connection refused",
        "error trying to connect",
        "etcdserver: no leader",
        "etcdserver: not capable",
    ]
    .iter()
    .any(|m| text.contains(m))
}

/// Whether `e` may have left a write applied or not: worth retrying only
/// when applying twice does no harm.
fn unknown_outcome(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            use tonic::Code;
            matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded)
                || [
                    "request timed out",
                    "leader changed",
                    "too many requests",
                    "transport",
                    "connection",
                ]
                .iter()
                .any(|m| s.message().contains(m))
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

fn entry_of(kv: &etcd_client::KeyValue) -> Entry {
    Entry {
        key: kv.key().to_vec(),
        value: kv.value().to_vec(),
        mod_revision: kv.mod_revision(),
        create_revision: kv.create_revision(),
    }
}

/// Turns etcd's "required revision has been compacted" into
/// [`EtcdError::Compacted`], which callers handle by reading again.
fn compacted(e: EtcdError, revision: i64) -> EtcdError {
    match e {
        EtcdError::Request {
            what,
            endpoints,
            detail,
        } if detail.contains("compacted") => EtcdError::Compacted {
            what,
            endpoints,
            revision,
        },
        other => other,
    }
}

/// A watch on a prefix: a blocking iterator of changes in revision order.
/// It ends with one `Err` when the watch fails (connection lost for good,
/// history compacted); watch again from the last revision seen + 1.
/// Dropping it cancels the watch.
pub struct Watch {
    rx: mpsc::Receiver<Result<WatchEvent, EtcdError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// The next change, waiting at most `timeout`; `None` if none came.
    pub fn next_timeout(&self, timeout: Duration) -> Option<Result<WatchEvent, EtcdError>> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Iterator for Watch {
    type Item = Result<WatchEvent, EtcdError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
