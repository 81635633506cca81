//! Workload policy: the `Warden.toml` schema, the command-line overrides, and
//! their validation into one [`Policy`] that says exactly what a guest may do.
//!
//! Everything is denied unless granted. A `Policy` is built once, validated
//! before anything runs, and then only read by the kernel.

mod canonical;
mod config;
mod error;
mod flags;
mod narrow;
mod net;
mod values;

pub use canonical::CANONICAL_FORMAT;
pub use config::{load_policy, located, AppKeys, Config};
pub use error::PolicyError;
pub use flags::{parse_dir_flag, parse_env_flag, parse_mount_flag, parse_sealed_flag};
pub use net::{HostPattern, HttpOrigin, NetRule};
pub use toml::Spanned;
pub use values::{format_size, parse_duration, parse_size, Size};

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A family of WASI calls that a policy allows or denies as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subsystem {
    Clocks,
    Random,
    Exit,
    Env,
    Fs,
    Sockets,
    /// fork, exec and signals between cages.
    Process,
    /// `wasi:thread-spawn`: threads sharing one cage's memory.
    Threads,
}

impl Subsystem {
    pub const ALL: [Subsystem; 8] = [
        Subsystem::Clocks,
        Subsystem::Random,
        Subsystem::Exit,
        Subsystem::Env,
        Subsystem::Fs,
        Subsystem::Sockets,
        Subsystem::Process,
        Subsystem::Threads,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Subsystem::Clocks => "clocks",
            Subsystem::Random => "random",
            Subsystem::Exit => "exit",
            Subsystem::Env => "env",
            Subsystem::Fs => "fs",
            Subsystem::Sockets => "sockets",
            Subsystem::Process => "process",
            Subsystem::Threads => "threads",
        }
    }

    /// What a user gets with no flags: clocks, random and exit, and the
    /// env, fs and sockets families, which stay empty unless variables,
    /// mounts or sockets are granted. `process` (fork, exec, signals
    /// between cages) creates new cages, and `threads` new host threads,
    /// so they must be granted.
    pub fn default_allowed(self) -> bool {
        !matches!(self, Subsystem::Process | Subsystem::Threads)
    }
}

impl fmt::Display for Subsystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Subsystem {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Subsystem::ALL
            .into_iter()
            .find(|sub| sub.name() == s)
            .ok_or_else(|| PolicyError::UnknownSubsystem(s.to_string()))
    }
}

/// What a standard stream is connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdioMode {
    /// The host's own stream.
    Allow,
    /// Calls fail with `ENOTCAPABLE`.
    Deny,
    /// Like `/dev/null`: reads see end-of-file, writes are discarded.
    Ignore,
}

impl FromStr for StdioMode {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(StdioMode::Allow),
            "deny" => Ok(StdioMode::Deny),
            "ignore" => Ok(StdioMode::Ignore),
            other => Err(PolicyError::BadStdioMode(other.to_string())),
        }
    }
}

impl fmt::Display for StdioMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StdioMode::Allow => "allow",
            StdioMode::Deny => "deny",
            StdioMode::Ignore => "ignore",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stdio {
    pub stdin: StdioMode,
    pub stdout: StdioMode,
    pub stderr: StdioMode,
}

impl Default for Stdio {
    fn default() -> Self {
        Stdio {
            stdin: StdioMode::Ignore,
            stdout: StdioMode::Allow,
            stderr: StdioMode::Allow,
        }
    }
}

/// Where the files of a mount come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountSource {
    /// A host directory, reached through capability-based lookups.
    Host { path: PathBuf, read_only: bool },
    /// A host directory captured into memory at start; always read-only.
    Virtual { path: PathBuf },
    /// A namespace of the sealed store.
    Sealed { name: String },
    /// A tree stored in a bundle, read-only like a virtual mount; `digest`
    /// (`sha256:HEX`) names its contents (docs/bundle.md). The tree itself
    /// is handed to the kernel beside the policy, which stays pure data.
    Bundled { digest: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The path the guest sees (its preopen name).
    pub guest: String,
    pub source: MountSource,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory of one cage, in bytes.
    pub max_memory: Option<u64>,
    /// Linear memory of all the cages of a run together, in bytes; `None`
    /// is [`Limits::total_memory`]'s default.
    pub max_total_memory: Option<u64>,
    /// Native stack for wasm frames, in bytes.
    pub max_stack: Option<u64>,
    /// Instruction budget of the whole run (every cage, across fork and
    /// exec); `None` is unlimited.
    pub fuel: Option<u64>,
    pub timeout: Option<Duration>,
    pub max_processes: Option<u32>,
    /// Live threads of one cage (its main thread included); `None` is
    /// [`DEFAULT_MAX_THREADS`].
    pub max_threads: Option<u32>,
}

/// The total memory limit when none is given: 4 GiB, what one wasm32 cage
/// can address, so that a program that does not fork is limited only by
/// `max_memory`, while a tree of cages cannot take 64 times that.
pub const DEFAULT_MAX_TOTAL_MEMORY: u64 = 4 << 30;

/// The native stack for wasm frames when none is given (wasmtime's own
/// default; the kernel's `DEFAULT_MAX_STACK`).
pub const DEFAULT_MAX_STACK: u64 = 512 * 1024;

/// Live cages of a run when none is given (the kernel's
/// `DEFAULT_MAX_PROCESSES`).
pub const DEFAULT_MAX_PROCESSES: u32 = 64;

/// Live threads of one cage when none is given (the main thread counts).
pub const DEFAULT_MAX_THREADS: u32 = 64;

impl Limits {
    /// The memory all cages of a run may use together: the limit given,
    /// else [`DEFAULT_MAX_TOTAL_MEMORY`], and never less than one cage's
    /// `max_memory`.
    pub fn total_memory(&self) -> u64 {
        match self.max_total_memory {
            Some(total) => total,
            None => DEFAULT_MAX_TOTAL_MEMORY.max(self.max_memory.unwrap_or(0)),
        }
    }
}

/// Everything a cage may do, resolved from config and flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub args: Vec<String>,
    /// Variables the guest sees, in order, after inheritance is resolved.
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub listen: Vec<SocketAddr>,
    /// Addresses a component may bind or connect to (`wasi:sockets`).
    pub net: Vec<NetRule>,
    /// Origins a component may send HTTP requests to (`wasi:http`).
    pub http: Vec<HttpOrigin>,
    pub stdio: Stdio,
    pub allow: BTreeMap<Subsystem, bool>,
    pub limits: Limits,
    pub entrypoint: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            args: Vec::new(),
            env: Vec::new(),
            mounts: Vec::new(),
            listen: Vec::new(),
            net: Vec::new(),
            http: Vec::new(),
            stdio: Stdio::default(),
            allow: Subsystem::ALL
                .into_iter()
                .map(|s| (s, s.default_allowed()))
                .collect(),
            limits: Limits::default(),
            entrypoint: None,
        }
    }
}

impl Policy {
    pub fn allows(&self, sub: Subsystem) -> bool {
        self.allow.get(&sub).copied().unwrap_or(false)
    }

    /// Checks the whole policy for contradictions a user must fix before
    /// anything runs.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
        for mount in &self.mounts {
            validate_guest_path(&mount.guest)?;
            if seen.insert(normalize_guest(&mount.guest), ()).is_some() {
                return Err(PolicyError::DuplicateMount(mount.guest.clone()));
            }
            match &mount.source {
                MountSource::Host { path, .. } | MountSource::Virtual { path } => {
                    match std::fs::metadata(path) {
                        Ok(meta) if meta.is_dir() => {}
                        Ok(_) => {
                            return Err(PolicyError::MountNotDir {
                                guest: mount.guest.clone(),
                                host: path.clone(),
                            })
                        }
                        Err(e) => {
                            return Err(PolicyError::MountMissing {
                                guest: mount.guest.clone(),
                                host: path.clone(),
                                reason: e.to_string(),
                            })
                        }
                    }
                }
                MountSource::Sealed { name } => {
                    if name.is_empty() {
                        return Err(PolicyError::EmptySealedName(mount.guest.clone()));
                    }
                }
                MountSource::Bundled { .. } => {}
            }
        }
        if !self.mounts.is_empty() && !self.allows(Subsystem::Fs) {
            return Err(PolicyError::Contradiction(
                "mounts are given but the `fs` subsystem is denied".into(),
            ));
        }
        if !self.listen.is_empty() && !self.allows(Subsystem::Sockets) {
            return Err(PolicyError::Contradiction(
                "listening sockets are given but the `sockets` subsystem is denied".into(),
            ));
        }
        let grants_network = !self.net.is_empty() || !self.http.is_empty();
        if grants_network && !self.allows(Subsystem::Sockets) {
            return Err(PolicyError::Contradiction(
                "network or HTTP origins are granted but the `sockets` subsystem is denied".into(),
            ));
        }
        if let (Some(one), Some(total)) = (self.limits.max_memory, self.limits.max_total_memory) {
            if one > total {
                return Err(PolicyError::Contradiction(format!(
                    "limits.max_memory ({}) is larger than limits.max_total_memory ({})",
                    format_size(one),
                    format_size(total)
                )));
            }
        }
        if let Some(stack) = self.limits.max_stack {
            if stack < 16 * 1024 {
                return Err(PolicyError::BadValue {
                    key: "limits.max_stack".into(),
                    reason: "must be at least 16 KiB".into(),
                });
            }
        }
        Ok(())
    }

    /// Adds a mount, replacing nothing: duplicates are caught by `validate`.
    pub fn add_mount(&mut self, mount: Mount) {
        self.mounts.push(mount);
    }

    /// Sets (or replaces) one environment variable.
    pub fn set_env(&mut self, key: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.env.push((key.to_string(), value.to_string())),
        }
    }

    /// Passes the host's value of `name` through, if the host has one.
    pub fn inherit_env(&mut self, name: &str) {
        if let Ok(value) = std::env::var(name) {
            self.set_env(name, &value);
        }
    }
}

fn normalize_guest(guest: &str) -> &str {
    let trimmed = guest.trim_end_matches('/');
    if trimmed.is_empty() {
        "/"
    } else {
        trimmed
    }
}

fn validate_guest_path(guest: &str) -> Result<(), PolicyError> {
    let bad = |reason: &str| {
        Err(PolicyError::BadGuestPath {
            guest: guest.to_string(),
            reason: reason.to_string(),
        })
    };
    if guest.is_empty() {
        return bad("it is empty");
    }
    if guest.contains('\0') {
        return bad("it contains a NUL byte");
    }
    if guest.split('/').any(|c| c == "..") {
        return bad("it contains `..`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_deny_by_default() {
        let p = Policy::default();
        assert!(p.env.is_empty());
        assert!(p.mounts.is_empty());
        assert_eq!(p.stdio.stdin, StdioMode::Ignore);
        assert_eq!(p.stdio.stdout, StdioMode::Allow);
        assert!(p.allows(Subsystem::Clocks));
        assert!(
            !p.allows(Subsystem::Process),
            "fork and exec must be granted"
        );
        p.validate().unwrap();
    }

    #[test]
    fn total_memory_defaults_to_4_gib_and_covers_one_cage() {
        let mut limits = Limits::default();
        assert_eq!(limits.total_memory(), 4 << 30);
        limits.max_memory = Some(8 << 30);
        assert_eq!(limits.total_memory(), 8 << 30);
        limits.max_total_memory = Some(1 << 30);
        assert_eq!(limits.total_memory(), 1 << 30);
    }

    #[test]
    fn one_cage_over_the_total_contradicts() {
        let mut p = Policy::default();
        p.limits.max_memory = Some(2 << 30);
        p.limits.max_total_memory = Some(1 << 30);
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("max_total_memory"), "{err}");
    }

    #[test]
    fn duplicate_guest_paths_are_refused() {
        let dir = std::env::temp_dir();
        let mut p = Policy::default();
        for guest in ["/data", "/data/"] {
            p.add_mount(Mount {
                guest: guest.into(),
                source: MountSource::Host {
                    path: dir.clone(),
                    read_only: false,
                },
            });
        }
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("/data"), "{err}");
    }

    #[test]
    fn missing_host_dir_is_named() {
        let mut p = Policy::default();
        p.add_mount(Mount {
            guest: "/x".into(),
            source: MountSource::Host {
                path: "/definitely/not/here".into(),
                read_only: false,
            },
        });
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("/definitely/not/here"), "{err}");
    }

    #[test]
    fn mounts_with_fs_denied_contradict() {
        let mut p = Policy::default();
        p.allow.insert(Subsystem::Fs, false);
        p.add_mount(Mount {
            guest: "/x".into(),
            source: MountSource::Sealed { name: "n".into() },
        });
        assert!(matches!(p.validate(), Err(PolicyError::Contradiction(_))));
    }
}
