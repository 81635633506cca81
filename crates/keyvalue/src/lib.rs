//! `wasi:keyvalue` for wasmtime components, over warden's sealed store.
//!
//! A component opens a bucket by label (`store.open("default")`); each label
//! the app is granted is one namespace of the sealed store, `"{app}/{label}"`,
//! so apps never see each other's keys and every value is encrypted at rest.
//! Both versions of the interface in use are served, with their `store`,
//! `atomics` and `batch` interfaces:
//!
//! * `wasi:keyvalue@0.2.0-draft` (wasmtime, wasmCloud): [`draft`];
//! * `wasi:keyvalue@0.2.0-draft2` (upstream's 2024-10-17 draft, Spin): [`draft2`].
//!
//! The logic is shared ([`bucket`]); the bindings only convert. Host calls
//! are synchronous: each is one short transaction of the store.
//!
//! Errors: a label that is not granted gives `access-denied`; anything the
//! store reports gives `other` with its message. An invalid resource handle
//! traps, as wasmtime's own hosts do.

#![forbid(unsafe_code)]

pub mod bucket;
pub mod draft;
pub mod draft2;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, ResourceTable};

pub use bucket::{Bucket, Cas};

/// Keys per `list-keys` page unless [`KeyValueCtx::page_size`] says otherwise.
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// What one component instance may reach.
pub struct KeyValueCtx {
    store: warden_seal::Store,
    app: String,
    labels: Arc<[String]>,
    ops: Arc<AtomicU64>,
    page_size: usize,
    /// Set when an operation failed because the store could not be
    /// reached (see [`KeyValueCtx::unavailable_flag`]).
    unavailable: Arc<AtomicBool>,
}

impl KeyValueCtx {
    /// `labels`: the store labels the app is granted; opening label L gives
    /// the sealed namespace `"{app}/{L}"`. A label with a `/` in it is never
    /// granted, whatever `labels` holds. `ops` counts every key-value call
    /// the instance makes (resource drops excepted).
    pub fn new(
        store: warden_seal::Store,
        app: &str,
        labels: Arc<[String]>,
        ops: Arc<AtomicU64>,
    ) -> Self {
        KeyValueCtx {
            store,
            app: app.to_string(),
            labels,
            ops,
            page_size: DEFAULT_PAGE_SIZE,
            unavailable: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Makes `flag` the one set when an operation fails because the store
    /// could not be reached: the host then answers for the guest (503)
    /// whatever the guest made of the error.
    pub fn unavailable_flag(&mut self, flag: Arc<AtomicBool>) {
        self.unavailable = flag;
    }

    /// Runs the store operation `op`, noting its error if it is the store
    /// being unreachable.
    ///
    /// A store operation blocks its thread (a commit waits for an `fsync`
    /// or for etcd). Inside a multi-threaded tokio runtime (`warden serve`,
    /// where host calls run on the runtime's few worker threads) it runs
    /// through `block_in_place`, so the worker's other requests move to
    /// another thread meanwhile: otherwise no more operations would be in
    /// flight than there are workers, and the store could not commit the
    /// writes of many requests together.
    fn blocking<R>(&self, op: impl FnOnce() -> Result<R, Error>) -> Result<R, Error> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let result = match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(op)
            }
            _ => op(),
        };
        self.noting(result)
    }

    /// Notes `result`'s error if it is the store being unreachable.
    fn noting<R>(&self, result: Result<R, Error>) -> Result<R, Error> {
        if let Err(Error::Seal(e)) = &result {
            if e.is_unavailable() {
                self.unavailable.store(true, Ordering::Relaxed);
            }
        }
        result
    }

    /// Keys per `list-keys` page (at least 1; default [`DEFAULT_PAGE_SIZE`]).
    pub fn page_size(mut self, keys: usize) -> Self {
        self.page_size = keys.max(1);
        self
    }

    /// The app whose namespaces this context opens.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// Whether `label` may be opened.
    pub fn is_granted(&self, label: &str) -> bool {
        !label.contains('/') && self.labels.iter().any(|l| l == label)
    }

    /// Opens the bucket `label`: `access-denied` (and no namespace created)
    /// unless it is granted.
    pub fn open(&self, label: &str) -> Result<Bucket, Error> {
        if !self.is_granted(label) {
            return Err(Error::AccessDenied(label.to_string()));
        }
        let ns = self.store.namespace(&format!("{}/{label}", self.app))?;
        Ok(Bucket::new(ns, self.page_size))
    }

    /// Counts one operation.
    fn count(&self) {
        self.ops.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the host functions work on: the context and the instance's table.
pub struct KeyValueCtxView<'a> {
    pub ctx: &'a mut KeyValueCtx,
    pub table: &'a mut ResourceTable,
}

/// Implemented by a store's data to give the key-value host its state.
pub trait KeyValueView: Send {
    fn keyvalue(&mut self) -> KeyValueCtxView<'_>;
}

/// Why a key-value call failed; becomes the WIT `error` of either version.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The label is not granted to the app (`access-denied`).
    #[error("store {0:?} is not granted to this app")]
    AccessDenied(String),
    /// The sealed store failed (`other`, with this message).
    #[error(transparent)]
    Seal(#[from] warden_seal::SealError),
    /// Anything else (`other`, with this message).
    #[error("{0}")]
    Other(String),
}

/// Adds both versions of `wasi:keyvalue`, each with `store`, `atomics`
/// and `batch`, to `linker`.
pub fn add_to_linker<T: KeyValueView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    draft::add_to_linker(linker)?;
    draft2::add_to_linker(linker)?;
    Ok(())
}

/// The [`HasData`] of the generated `add_to_linker` functions.
struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = KeyValueCtxView<'a>;
}

fn view<T: KeyValueView>(data: &mut T) -> KeyValueCtxView<'_> {
    data.keyvalue()
}
