//! warden's etcd plumbing, shared by the sealed store's etcd backend and by
//! deploys across `warden serve` nodes.
//!
//! * [`EtcdTarget`]: an `etcd://HOST:PORT[,…]/PREFIX[?options]` URL (TLS,
//!   user and password, the cluster's request limits) and its canonical form.
//! * [`EtcdClient`]: a synchronous client, safe to call from plain threads
//!   and from inside a tokio runtime: requests run on a small runtime of its
//!   own and the caller waits on a channel. Connect and request timeouts;
//!   get, put, delete and transactions with revisions, paged ranges,
//!   watches as blocking iterators, snapshots.
//! * [`chunks`]: values larger than one etcd request may carry, stored as
//!   immutable chunk keys referenced by a small [`chunks::ChunkRef`].
//! * `testing` (cargo feature `testing`): real etcd clusters for tests.

#![forbid(unsafe_code)]

pub mod chunks;
mod client;
mod error;
mod target;
#[cfg(feature = "testing")]
pub mod testing;

pub use client::{prefix_end, Entry, EtcdClient, Page, Timeouts, Watch, WatchEvent};
pub use error::EtcdError;
pub use target::{EtcdTarget, Tls, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TXN_OPS, PASSWORD_ENV};

/// The etcd client crate's transaction types, for [`EtcdClient::txn`].
pub use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
    TxnResponse,
};
