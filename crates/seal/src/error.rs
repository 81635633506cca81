//! The crate's error type. Every message is one line that names what was
//! wrong and where, so that `warden kv` can print it as it is.

use std::fmt;

/// Everything that can go wrong in the sealed store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A host file (key file, rollback state, backup) could not be read or written.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The storage backend failed (I/O error, corrupt database pages, ...).
    #[error("storage error in {location}: {message}")]
    Storage { location: String, message: String },
    /// A store URL that does not parse (an `etcd://` target; the message
    /// says what is wrong).
    #[error("{0}")]
    InvalidUrl(String),
    /// The store's backend cannot be reached at open (an etcd cluster down
    /// or without quorum).
    #[error("store {location}: {detail}")]
    Unreachable { location: String, detail: String },
    /// Another process (or another `Store` in this one) has the file open.
    #[error("store {location} is already open elsewhere")]
    Locked { location: String },
    /// The store does not exist and creating it was not allowed.
    #[error("no store at {location}")]
    NoStore { location: String },
    /// The file is a database, but not a sealed store of a format this build knows.
    #[error("{location} is not a warden sealed store: {detail}")]
    NotAStore { location: String, detail: String },
    /// A sealed store written in a format this build does not read.
    #[error(
        "store {location} is in sealed-store format {found}, and this warden reads only format \
         {supported}: export it with the warden that wrote it and import the backup into a new store"
    )]
    UnsupportedFormat {
        location: String,
        found: u32,
        supported: u32,
    },
    /// The root key does not match the key the store was created with.
    #[error("wrong sealing key for store {location}")]
    WrongKey { location: String },
    /// Stored data does not authenticate: it was modified, moved, swapped,
    /// replayed, deleted or inserted by someone without the key.
    #[error("integrity check failed for {subject}: {detail}")]
    Integrity { subject: String, detail: String },
    /// The store file is an older copy than one this host has already seen.
    #[error(
        "store file {location} is older than the last seen generation \
         (file {file} < seen {seen}): refusing a rollback"
    )]
    Rollback {
        location: String,
        file: u64,
        seen: u64,
    },
    /// The rollback state kept outside the store does not belong to this store file.
    #[error("store file {location} does not match its rollback state {state}: {detail}")]
    StateMismatch {
        location: String,
        state: String,
        detail: String,
    },
    /// The rollback state could not record a generation that is now in the
    /// store file. Writes made so far stand; until the state is updated, a
    /// copy of the store from before them would not be refused.
    #[error(
        "cannot update the rollback state {state} of store {location}: {source} (what was \
         written stands, but an older copy of the store would not be refused until the state \
         file can be written)"
    )]
    StateUpdate {
        location: String,
        state: String,
        #[source]
        source: std::io::Error,
    },
    /// The root key could not be obtained (bad key file, missing passphrase, ...).
    #[error("sealing key: {0}")]
    Key(String),
    /// A namespace that was asked for by name does not exist.
    #[error("unknown namespace {0:?}")]
    UnknownNamespace(String),
    /// A namespace name that cannot be used.
    #[error("invalid namespace name {name:?}: {reason}")]
    InvalidNamespace { name: String, reason: &'static str },
    /// Two namespace names with the same 64-bit tag (chance about n^2 / 2^65
    /// for n namespaces): the second cannot be used in this store.
    #[error(
        "namespace {name:?} cannot be used in this store: its tag is that of namespace \
         {other:?} (a 1 in 2^64 coincidence; choose another name)"
    )]
    NamespaceCollision { name: String, other: String },
    /// `increment` found a value that is not a decimal integer.
    #[error("value of key {key} in namespace {namespace:?} is not a decimal 64-bit integer")]
    NotANumber { namespace: String, key: KeyName },
    /// `increment` would leave the range of `i64`.
    #[error(
        "incrementing key {key} in namespace {namespace:?} by {delta} overflows a 64-bit integer"
    )]
    Overflow {
        namespace: String,
        key: KeyName,
        delta: i64,
    },
    /// A list cursor that this store did not hand out.
    #[error("invalid list cursor {0:?}")]
    InvalidCursor(String),
    /// A `Namespace` of one store was used in a transaction of another.
    #[error("namespace {0:?} belongs to a different store")]
    ForeignNamespace(String),
    /// A backup file is unreadable, truncated or tampered with.
    #[error("backup {path}: {detail}")]
    Backup { path: String, detail: String },
    /// A backup was sealed under a different root key.
    #[error("wrong sealing key for backup {path}")]
    WrongBackupKey { path: String },
}

impl SealError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SealError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn integrity(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        SealError::Integrity {
            subject: subject.into(),
            detail: detail.into(),
        }
    }

    /// True when the store's backend could not be reached (an etcd cluster
    /// down or without quorum): the operation may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SealError::Unreachable { .. })
    }

    /// True for errors that mean the stored data (or the key) is not what
    /// was written: integrity, rollback, wrong key and state mismatches.
    pub fn is_tamper(&self) -> bool {
        matches!(
            self,
            SealError::Integrity { .. }
                | SealError::Rollback { .. }
                | SealError::StateMismatch { .. }
                | SealError::WrongKey { .. }
        )
    }
}

/// A key name as shown in messages: quoted text when it is UTF-8, hex otherwise.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyName(pub Vec<u8>);

impl KeyName {
    pub(crate) fn of(key: &[u8]) -> Self {
        KeyName(key.to_vec())
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(text) => write!(f, "{text:?}"),
            Err(_) => write!(f, "0x{}", hex::encode(&self.0)),
        }
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub(crate) type Result<T, E = SealError> = std::result::Result<T, E>;
