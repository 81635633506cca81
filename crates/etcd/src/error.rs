//! Errors of the etcd plumbing: one line each, naming what failed.

use std::time::Duration;

/// What went wrong talking to etcd.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("invalid etcd target {url:?}: {why}")]
    BadTarget { url: String, why: String },
    #[error("cannot read {what} {path}: {detail}")]
    File {
        what: &'static str,
        path: String,
        detail: String,
    },
    #[error("etcd cluster unreachable at {endpoints}: {detail}")]
    Unreachable { endpoints: String, detail: String },
    /// For a write, a timeout or a failed request leaves its outcome
    /// unknown: it may have been applied (requests that never reached etcd
    /// are retried by the client instead).
    #[error("etcd {what} at {endpoints} timed out after {after:?}")]
    Timeout {
        what: &'static str,
        endpoints: String,
        after: Duration,
    },
    /// The revision asked for was compacted away: read again at a newer one.
    #[error("etcd {what} at {endpoints}: revision {revision} was compacted")]
    Compacted {
        what: &'static str,
        endpoints: String,
        revision: i64,
    },
    #[error("etcd {what} at {endpoints} failed: {detail}")]
    Request {
        what: &'static str,
        endpoints: String,
        detail: String,
    },
    #[error("etcd data under {key} is corrupt: {detail}")]
    Corrupt { key: String, detail: String },
    #[error("etcd client runtime: {0}")]
    Runtime(String),
}

impl EtcdError {
    /// Whether retrying the same request later may succeed (the cluster or
    /// the connection was down, a leader was being elected).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EtcdError::Unreachable { .. } | EtcdError::Timeout { .. } | EtcdError::Request { .. }
        )
    }
}

/// A key for messages: UTF-8 where it is, escaped elsewhere.
pub(crate) fn show_key(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}
