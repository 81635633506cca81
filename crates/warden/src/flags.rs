//! The flags of `warden run` and `warden bundle` that make a policy, and
//! how they apply: on top of a config (they may grant anything), or on top
//! of a bundle's policy, which they may only narrow (docs/cli.md).

use crate::Failure;
use clap::Args;
use std::path::Path;
use warden_policy::{
    load_policy, parse_dir_flag, parse_duration, parse_env_flag, parse_mount_flag,
    parse_sealed_flag, Mount, MountSource, Policy, PolicyError, Size, StdioMode, Subsystem,
};

/// The policy flags, shared by `warden run` and `warden bundle`.
#[derive(Args, Default, PartialEq)]
pub struct PolicyFlags {
    /// Preopen a host directory, read-write (`:ro` suffix: read-only)
    #[arg(long = "dir", value_name = "HOST[::GUEST][:ro]")]
    pub(crate) dirs: Vec<String>,
    /// Preopen a host directory, read-only
    #[arg(long = "dir-ro", value_name = "HOST[::GUEST]")]
    pub(crate) dirs_ro: Vec<String>,
    /// Virtual read-only mount, captured into memory at start
    #[arg(long = "mount", value_name = "GUEST=HOSTDIR")]
    pub(crate) mounts: Vec<String>,
    /// A directory whose files are entries of namespace NAME of the sealed store
    #[arg(long = "sealed", value_name = "GUEST=NAME")]
    pub(crate) sealed: Vec<String>,
    /// Set a guest variable (`K` alone passes the host's value)
    #[arg(long = "env", value_name = "K=V")]
    pub(crate) env: Vec<String>,
    /// Pass a host variable through, if set
    #[arg(long = "env-inherit", value_name = "NAME")]
    pub(crate) env_inherit: Vec<String>,
    /// Allow a subsystem: clocks, random, exit, env, fs, sockets, process, threads
    #[arg(long, value_name = "SUBSYS")]
    pub(crate) allow: Vec<String>,
    /// Deny a subsystem: calls fail with ENOTCAPABLE
    #[arg(long, value_name = "SUBSYS")]
    pub(crate) deny: Vec<String>,
    /// allow | deny | ignore (default: ignore)
    #[arg(long, value_name = "MODE")]
    pub(crate) stdin: Option<String>,
    /// allow | deny | ignore (default: allow)
    #[arg(long, value_name = "MODE")]
    pub(crate) stdout: Option<String>,
    /// allow | deny | ignore (default: allow)
    #[arg(long, value_name = "MODE")]
    pub(crate) stderr: Option<String>,
    /// Let a component bind or connect to ADDR[:PORT] or NET/LEN[:PORT] (repeatable)
    #[arg(long = "allow-net", value_name = "ADDR|CIDR")]
    pub(crate) allow_net: Vec<String>,
    /// Let a component send HTTP requests to an origin, e.g. https://*.example.com (repeatable)
    #[arg(long = "allow-http", value_name = "ORIGIN")]
    pub(crate) allow_http: Vec<String>,
    /// Preopen a listening TCP socket (after the directories)
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Vec<String>,
    /// Linear memory limit of each cage, e.g. 64MiB
    #[arg(long = "max-memory", value_name = "SIZE")]
    pub(crate) max_memory: Option<String>,
    /// Linear memory limit of all cages of the run together [default: 4GiB]
    #[arg(long = "max-total-memory", value_name = "SIZE")]
    pub(crate) max_total_memory: Option<String>,
    /// Native stack for wasm frames, e.g. 1MiB
    #[arg(long = "max-stack", value_name = "SIZE")]
    pub(crate) max_stack: Option<String>,
    /// Instruction budget of the whole run, every cage (0 = unlimited)
    #[arg(long, value_name = "N")]
    pub(crate) fuel: Option<u64>,
    /// Live threads of each cage, its main thread included [default: 64]
    #[arg(long = "max-threads", value_name = "N")]
    pub(crate) max_threads: Option<u32>,
    /// Wall-clock limit, e.g. 30s
    #[arg(long, value_name = "DURATION")]
    pub(crate) timeout: Option<String>,
    /// Export to call (default `_start`)
    #[arg(long, value_name = "NAME")]
    pub(crate) entrypoint: Option<String>,
}

pub(crate) fn bad(e: PolicyError) -> Failure {
    Failure::bad_input(e)
}

/// The config (or the default policy), then every flag on top of it,
/// validated.
pub fn resolve_policy(
    config: Option<&Path>,
    flags: &PolicyFlags,
    guest_args: &[String],
) -> Result<Policy, Failure> {
    let mut policy = match config {
        Some(path) => load_policy(path).map_err(bad)?,
        None => Policy::default(),
    };
    flags.apply(&mut policy, guest_args, false)?;
    policy.validate().map_err(bad)?;
    Ok(policy)
}

/// A `--dir`/`--dir-ro` given to run a bundle: the bundle's host mount of
/// that directory on that guest path made read-only (or left as it is);
/// anything else is added, for [`Policy::check_within`] to refuse. Host
/// paths are made absolute first, as the bundle's are.
fn add_to_bundle(policy: &mut Policy, mut mount: Mount) -> Result<(), Failure> {
    if let MountSource::Host { path, read_only } = &mount.source {
        let path = warden_bundle::host_path(path)
            .map_err(|e| Failure::bad_input(format!("--dir {}: {e}", path.display())))?;
        let key = mount.guest.trim_end_matches('/');
        let existing = policy.mounts.iter_mut().find(|m| {
            m.guest.trim_end_matches('/') == key
                && matches!(&m.source, MountSource::Host { path: p, .. } if *p == path)
        });
        if let Some(MountSource::Host { read_only: ro, .. }) = existing.map(|m| &mut m.source) {
            *ro |= *read_only;
            return Ok(());
        }
        mount.source = MountSource::Host {
            path,
            read_only: *read_only,
        };
    }
    policy.add_mount(mount);
    Ok(())
}

impl PolicyFlags {
    /// Applies the flags (and the guest arguments, when there are any) to
    /// `policy`. `onto_bundle`: `policy` is a bundle's, and a `--dir` of
    /// one of its host mounts may make it read-only.
    pub fn apply(
        &self,
        policy: &mut Policy,
        guest_args: &[String],
        onto_bundle: bool,
    ) -> Result<(), Failure> {
        if !guest_args.is_empty() {
            policy.args = guest_args.to_vec();
        }
        for (dirs, read_only) in [(&self.dirs, false), (&self.dirs_ro, true)] {
            for dir in dirs {
                let mount = parse_dir_flag(dir, read_only).map_err(bad)?;
                if onto_bundle {
                    add_to_bundle(policy, mount)?;
                } else {
                    policy.add_mount(mount);
                }
            }
        }
        for mount in &self.mounts {
            policy.add_mount(parse_mount_flag(mount).map_err(bad)?);
        }
        for mount in &self.sealed {
            policy.add_mount(parse_sealed_flag(mount).map_err(bad)?);
        }
        for name in &self.env_inherit {
            policy.inherit_env(name);
        }
        for var in &self.env {
            match parse_env_flag(var).map_err(bad)? {
                (key, Some(value)) => policy.set_env(&key, &value),
                (key, None) => policy.inherit_env(&key),
            }
        }
        for (names, allowed) in [(&self.allow, true), (&self.deny, false)] {
            for name in names {
                let sub: Subsystem = name.parse().map_err(bad)?;
                policy.allow.insert(sub, allowed);
            }
        }
        let mode = |flag: &str, v: &Option<String>| -> Result<Option<StdioMode>, Failure> {
            v.as_deref()
                .map(|m| {
                    m.parse().map_err(|e: PolicyError| {
                        Failure::bad_input(format!("invalid --{flag}: {e}"))
                    })
                })
                .transpose()
        };
        if let Some(m) = mode("stdin", &self.stdin)? {
            policy.stdio.stdin = m;
        }
        if let Some(m) = mode("stdout", &self.stdout)? {
            policy.stdio.stdout = m;
        }
        if let Some(m) = mode("stderr", &self.stderr)? {
            policy.stdio.stderr = m;
        }
        for addr in &self.listen {
            let parsed = addr.parse().map_err(|_| {
                Failure::bad_input(format!(
                    "invalid --listen: `{addr}` is not an address such as 127.0.0.1:8080"
                ))
            })?;
            policy.listen.push(parsed);
        }
        for rule in &self.allow_net {
            let rule = rule
                .parse()
                .map_err(|e| Failure::bad_input(format!("invalid --allow-net: {e}")))?;
            policy.net.push(rule);
        }
        for origin in &self.allow_http {
            let origin = origin
                .parse()
                .map_err(|e| Failure::bad_input(format!("invalid --allow-http: {e}")))?;
            policy.http.push(origin);
        }
        if let Some(v) = &self.max_memory {
            policy.limits.max_memory = Some(Size::parse_flag("--max-memory", v).map_err(bad)?);
        }
        if let Some(v) = &self.max_total_memory {
            policy.limits.max_total_memory =
                Some(Size::parse_flag("--max-total-memory", v).map_err(bad)?);
        }
        if let Some(v) = &self.max_stack {
            policy.limits.max_stack = Some(Size::parse_flag("--max-stack", v).map_err(bad)?);
        }
        if let Some(fuel) = self.fuel {
            policy.limits.fuel = (fuel > 0).then_some(fuel);
        }
        if let Some(n) = self.max_threads {
            if n == 0 {
                return Err(Failure::bad_input(
                    "invalid --max-threads: must be at least 1 (the main thread)",
                ));
            }
            policy.limits.max_threads = Some(n);
        }
        if let Some(v) = &self.timeout {
            let t = parse_duration(v)
                .map_err(|reason| Failure::bad_input(format!("invalid --timeout: {reason}")))?;
            if t.is_zero() {
                return Err(Failure::bad_input(
                    "invalid --timeout: must be more than zero",
                ));
            }
            policy.limits.timeout = Some(t);
        }
        if let Some(e) = &self.entrypoint {
            policy.entrypoint = Some(e.clone());
        }
        Ok(())
    }
}
