use std::path::PathBuf;

/// Why a config or a flag was refused. Every message names the key, flag or
/// path that was wrong and the reason, on one line.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read config {path}: {reason}")]
    ReadConfig { path: PathBuf, reason: String },
    #[error("{path}:{line}:{column}: {key}{message}")]
    Config {
        path: PathBuf,
        line: usize,
        column: usize,
        /// `` `table.key`: `` when the offending key is known, else empty.
        key: String,
        message: String,
    },
    #[error(
        "unknown subsystem `{0}` (expected one of clocks, random, exit, env, fs, sockets, process, threads)"
    )]
    UnknownSubsystem(String),
    #[error("unknown stdio mode `{0}` (expected allow, deny or ignore)")]
    BadStdioMode(String),
    #[error("invalid {key}: {reason}")]
    BadValue { key: String, reason: String },
    #[error("two mounts on guest path `{0}`")]
    DuplicateMount(String),
    #[error("mount `{guest}`: host directory `{host}` cannot be used: {reason}")]
    MountMissing {
        guest: String,
        host: PathBuf,
        reason: String,
    },
    #[error("mount `{guest}`: `{host}` is not a directory")]
    MountNotDir { guest: String, host: PathBuf },
    #[error("mount `{0}`: the sealed store name is empty")]
    EmptySealedName(String),
    #[error("guest path `{guest}` is invalid: {reason}")]
    BadGuestPath { guest: String, reason: String },
    #[error("{0}")]
    Contradiction(String),
    /// A policy that the canonical form cannot hold (docs/bundle.md).
    #[error("the policy cannot be written in canonical form: {0}")]
    NoCanonical(String),
    /// Text that is not a policy's canonical form.
    #[error("not a canonical policy: {0}")]
    BadCanonical(String),
    /// A policy that grants more than the policy it must stay within
    /// (a bundle's): what grants it, and what the bundle says instead.
    #[error("{grant} widens the bundle's policy ({limit})")]
    Widens { grant: String, limit: String },
}
