//! Narrowing: whether a policy stays within another (a bundle's), that is,
//! grants nothing the other does not. `warden run [FLAGS] app.warden`
//! applies the flags to the bundle's policy and then checks the result
//! with [`Policy::check_within`]; the rules are in `docs/cli.md`
//! ("Running a bundle").

use crate::{
    format_size, Mount, MountSource, Policy, PolicyError, StdioMode, Subsystem,
    DEFAULT_MAX_PROCESSES, DEFAULT_MAX_STACK, DEFAULT_MAX_THREADS,
};

/// deny < ignore < allow: `ignore` gives the guest a stream that works but
/// reaches nothing of the host's, `allow` the host's own.
fn stdio_rank(mode: StdioMode) -> u8 {
    match mode {
        StdioMode::Deny => 0,
        StdioMode::Ignore => 1,
        StdioMode::Allow => 2,
    }
}

fn widens(grant: impl Into<String>, limit: impl Into<String>) -> PolicyError {
    PolicyError::Widens {
        grant: grant.into(),
        limit: limit.into(),
    }
}

fn guest_key(guest: &str) -> &str {
    let trimmed = guest.trim_end_matches('/');
    if trimmed.is_empty() {
        "/"
    } else {
        trimmed
    }
}

/// The flag that would have added `mount`, as a user writes it.
fn mount_flag(mount: &Mount) -> String {
    match &mount.source {
        MountSource::Host {
            path,
            read_only: false,
        } => format!("--dir {}::{}", path.display(), mount.guest),
        MountSource::Host {
            path,
            read_only: true,
        } => format!("--dir-ro {}::{}", path.display(), mount.guest),
        MountSource::Virtual { path } => format!("--mount {}={}", mount.guest, path.display()),
        MountSource::Sealed { name } => format!("--sealed {}={name}", mount.guest),
        MountSource::Bundled { digest } => format!("bundled mount {} ({digest})", mount.guest),
    }
}

fn source_kind(source: &MountSource) -> &'static str {
    match source {
        MountSource::Host { .. } => "host directory",
        MountSource::Virtual { .. } => "virtual mount",
        MountSource::Sealed { .. } => "sealed mount",
        MountSource::Bundled { .. } => "bundled tree",
    }
}

/// `Some(limit)` must not grow, nor become unlimited (`None`).
fn limit_within(
    value: Option<u64>,
    ceiling: Option<u64>,
    flag: &str,
    show: fn(u64) -> String,
) -> Result<(), PolicyError> {
    match (value, ceiling) {
        (_, None) => Ok(()),
        (Some(v), Some(c)) if v <= c => Ok(()),
        (Some(v), Some(c)) => Err(widens(
            format!("{flag} {}", show(v)),
            format!("its limit is {}", show(c)),
        )),
        (None, Some(c)) => Err(widens(
            format!("no {flag}"),
            format!("its limit is {}", show(c)),
        )),
    }
}

impl Policy {
    /// Checks that `self` grants nothing that `ceiling` does not, and
    /// names the first thing it does, as the flag that would grant it:
    /// `--allow process widens the bundle's policy (it denies `process`)`.
    ///
    /// Within means: the same guest arguments and entrypoint; no subsystem
    /// allowed that the ceiling denies; each standard stream at most as
    /// open (deny < ignore < allow); only variables the ceiling sets, with
    /// its values; only the ceiling's mounts (a host mount may become
    /// read-only); only its listening sockets; each network rule and HTTP
    /// origin within one of the ceiling's; every limit the ceiling sets at
    /// most as large, and none removed.
    pub fn check_within(&self, ceiling: &Policy) -> Result<(), PolicyError> {
        if self.args != ceiling.args {
            return Err(widens(
                "changing the guest arguments",
                "its arguments are fixed when it is built",
            ));
        }
        if self.entrypoint != ceiling.entrypoint {
            return Err(widens(
                format!(
                    "--entrypoint {}",
                    self.entrypoint.as_deref().unwrap_or("_start")
                ),
                format!(
                    "it calls `{}`",
                    ceiling.entrypoint.as_deref().unwrap_or("_start")
                ),
            ));
        }
        for sub in Subsystem::ALL {
            if self.allows(sub) && !ceiling.allows(sub) {
                return Err(widens(
                    format!("--allow {sub}"),
                    format!("it denies `{sub}`"),
                ));
            }
        }
        for (name, mode, limit) in [
            ("stdin", self.stdio.stdin, ceiling.stdio.stdin),
            ("stdout", self.stdio.stdout, ceiling.stdio.stdout),
            ("stderr", self.stdio.stderr, ceiling.stdio.stderr),
        ] {
            if stdio_rank(mode) > stdio_rank(limit) {
                return Err(widens(
                    format!("--{name} {mode}"),
                    format!("its {name} is `{limit}`"),
                ));
            }
        }
        for (key, value) in &self.env {
            match ceiling.env.iter().find(|(k, _)| k == key) {
                Some((_, v)) if v == value => {}
                Some(_) => {
                    return Err(widens(
                        format!("--env {key}"),
                        format!("it sets `{key}` to another value"),
                    ))
                }
                None => {
                    return Err(widens(
                        format!("--env {key}"),
                        format!("it does not set `{key}`"),
                    ))
                }
            }
        }
        for mount in &self.mounts {
            let key = guest_key(&mount.guest);
            let Some(limit) = ceiling.mounts.iter().find(|m| guest_key(&m.guest) == key) else {
                return Err(widens(
                    mount_flag(mount),
                    format!("it has no mount at `{}`", mount.guest),
                ));
            };
            let same = match (&mount.source, &limit.source) {
                (
                    MountSource::Host { path, read_only },
                    MountSource::Host {
                        path: p,
                        read_only: ro,
                    },
                ) if path == p => {
                    if !read_only && *ro {
                        return Err(widens(
                            mount_flag(mount),
                            format!("it mounts `{}` read-only", limit.guest),
                        ));
                    }
                    true
                }
                (a, b) => a == b,
            };
            if !same {
                let what = match &limit.source {
                    MountSource::Host { path, .. } | MountSource::Virtual { path } => {
                        format!(
                            "its mount `{}` is the {} {}",
                            limit.guest,
                            source_kind(&limit.source),
                            path.display()
                        )
                    }
                    MountSource::Sealed { name } => {
                        format!("its mount `{}` is sealed namespace `{name}`", limit.guest)
                    }
                    MountSource::Bundled { .. } => {
                        format!("its mount `{}` is a bundled tree", limit.guest)
                    }
                };
                return Err(widens(mount_flag(mount), what));
            }
        }
        for addr in &self.listen {
            if !ceiling.listen.contains(addr) {
                return Err(widens(
                    format!("--listen {addr}"),
                    format!("it does not listen on {addr}"),
                ));
            }
        }
        for rule in &self.net {
            if !ceiling.net.iter().any(|c| rule.within(c)) {
                return Err(widens(
                    format!("--allow-net {rule}"),
                    "none of its network rules covers it",
                ));
            }
        }
        for origin in &self.http {
            if !ceiling.http.iter().any(|c| origin.within(c)) {
                return Err(widens(
                    format!("--allow-http {origin}"),
                    "none of its HTTP origins covers it",
                ));
            }
        }
        let (l, c) = (&self.limits, &ceiling.limits);
        limit_within(l.max_memory, c.max_memory, "--max-memory", format_size)?;
        limit_within(
            Some(l.total_memory()),
            Some(c.total_memory()),
            "--max-total-memory",
            format_size,
        )?;
        limit_within(
            Some(l.max_stack.unwrap_or(DEFAULT_MAX_STACK)),
            Some(c.max_stack.unwrap_or(DEFAULT_MAX_STACK)),
            "--max-stack",
            format_size,
        )?;
        match (l.fuel, c.fuel) {
            (None, Some(budget)) => {
                return Err(widens("--fuel 0", format!("its fuel is {budget}")));
            }
            (Some(f), Some(budget)) if f > budget => {
                return Err(widens(
                    format!("--fuel {f}"),
                    format!("its fuel is {budget}"),
                ));
            }
            _ => {}
        }
        match (l.timeout, c.timeout) {
            (None, Some(limit)) => {
                return Err(widens("no --timeout", format!("its limit is {limit:?}")));
            }
            (Some(t), Some(limit)) if t > limit => {
                return Err(widens(
                    format!("--timeout {t:?}"),
                    format!("its limit is {limit:?}"),
                ));
            }
            _ => {}
        }
        limit_within(
            Some(u64::from(l.max_processes.unwrap_or(DEFAULT_MAX_PROCESSES))),
            Some(u64::from(c.max_processes.unwrap_or(DEFAULT_MAX_PROCESSES))),
            "limits.max_processes",
            |n| n.to_string(),
        )?;
        limit_within(
            Some(u64::from(l.max_threads.unwrap_or(DEFAULT_MAX_THREADS))),
            Some(u64::from(c.max_threads.unwrap_or(DEFAULT_MAX_THREADS))),
            "limits.max_threads",
            |n| n.to_string(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HttpOrigin, NetRule};
    use std::time::Duration;

    fn bundle() -> Policy {
        let mut p = Policy {
            args: vec!["serve".into()],
            ..Policy::default()
        };
        p.set_env("MODE", "prod");
        p.mounts = vec![
            Mount {
                guest: "/data".into(),
                source: MountSource::Host {
                    path: "/srv/data".into(),
                    read_only: false,
                },
            },
            Mount {
                guest: "/etc/app".into(),
                source: MountSource::Bundled {
                    digest: "sha256:00".into(),
                },
            },
        ];
        p.net = vec!["10.0.0.0/8".parse().unwrap()];
        p.http = vec!["https://*.example.com".parse().unwrap()];
        p.listen = vec!["127.0.0.1:8080".parse().unwrap()];
        p.stdio.stdout = StdioMode::Ignore;
        p.limits.max_memory = Some(64 << 20);
        p.limits.fuel = Some(1_000_000);
        p.limits.timeout = Some(Duration::from_secs(5));
        p
    }

    fn refused(p: &Policy) -> String {
        p.check_within(&bundle()).unwrap_err().to_string()
    }

    #[test]
    fn the_ceiling_itself_and_narrower_policies_are_within() {
        bundle().check_within(&bundle()).unwrap();
        let mut p = bundle();
        p.allow.insert(Subsystem::Clocks, false);
        p.stdio.stdout = StdioMode::Deny;
        p.stdio.stderr = StdioMode::Ignore;
        p.env.clear();
        p.mounts.remove(1);
        if let MountSource::Host { read_only, .. } = &mut p.mounts[0].source {
            *read_only = true;
        }
        p.listen.clear();
        p.net = vec!["10.1.0.0/16:80".parse::<NetRule>().unwrap()];
        p.http = vec!["https://api.example.com".parse::<HttpOrigin>().unwrap()];
        p.limits.max_memory = Some(1 << 20);
        p.limits.max_total_memory = Some(1 << 30);
        p.limits.max_stack = Some(64 << 10);
        p.limits.fuel = Some(10);
        p.limits.timeout = Some(Duration::from_secs(1));
        p.limits.max_processes = Some(1);
        p.check_within(&bundle()).unwrap();
    }

    #[test]
    fn each_widening_is_named() {
        type Change = Box<dyn Fn(&mut Policy)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|p| {
                    p.allow.insert(Subsystem::Process, true);
                }),
                "--allow process widens the bundle's policy (it denies `process`)",
            ),
            (
                Box::new(|p| p.stdio.stdout = StdioMode::Allow),
                "--stdout allow widens the bundle's policy (its stdout is `ignore`)",
            ),
            (
                Box::new(|p| p.set_env("NEW", "x")),
                "--env NEW widens the bundle's policy (it does not set `NEW`)",
            ),
            (
                Box::new(|p| p.set_env("MODE", "dev")),
                "--env MODE widens the bundle's policy (it sets `MODE` to another value)",
            ),
            (
                Box::new(|p| p.args = vec!["debug".into()]),
                "changing the guest arguments widens",
            ),
            (
                Box::new(|p| p.entrypoint = Some("other".into())),
                "--entrypoint other widens the bundle's policy (it calls `_start`)",
            ),
            (
                Box::new(|p| {
                    p.mounts.push(Mount {
                        guest: "/tmp".into(),
                        source: MountSource::Host {
                            path: "/tmp".into(),
                            read_only: true,
                        },
                    })
                }),
                "--dir-ro /tmp::/tmp widens the bundle's policy (it has no mount at `/tmp`)",
            ),
            (
                Box::new(|p| {
                    p.mounts[0].source = MountSource::Host {
                        path: "/elsewhere".into(),
                        read_only: true,
                    }
                }),
                "(its mount `/data` is the host directory /srv/data)",
            ),
            (
                Box::new(|p| p.listen.push("127.0.0.1:9".parse().unwrap())),
                "--listen 127.0.0.1:9 widens",
            ),
            (
                Box::new(|p| p.net.push("11.0.0.1:80".parse().unwrap())),
                "--allow-net 11.0.0.1:80 widens",
            ),
            (
                Box::new(|p| p.http.push("https://example.com".parse().unwrap())),
                "--allow-http https://example.com:443 widens",
            ),
            (
                Box::new(|p| p.limits.max_memory = Some(128 << 20)),
                "--max-memory 128 MiB widens the bundle's policy (its limit is 64 MiB)",
            ),
            (
                Box::new(|p| p.limits.max_memory = None),
                "no --max-memory widens",
            ),
            (
                Box::new(|p| p.limits.fuel = None),
                "--fuel 0 widens the bundle's policy (its fuel is 1000000)",
            ),
            (
                Box::new(|p| p.limits.fuel = Some(1_000_001)),
                "--fuel 1000001 widens the bundle's policy (its fuel is 1000000)",
            ),
            (Box::new(|p| p.limits.timeout = None), "no --timeout widens"),
            (
                Box::new(|p| p.limits.timeout = Some(Duration::from_secs(6))),
                "--timeout 6s widens the bundle's policy (its limit is 5s)",
            ),
            (
                Box::new(|p| p.limits.max_stack = Some(1 << 20)),
                "--max-stack 1 MiB widens the bundle's policy (its limit is 512 KiB)",
            ),
            (
                Box::new(|p| p.limits.max_processes = Some(65)),
                "limits.max_processes 65 widens",
            ),
        ];
        for (change, expected) in cases {
            let mut p = bundle();
            change(&mut p);
            let err = refused(&p);
            assert!(err.contains(expected), "{err}\nexpected: {expected}");
        }
    }

    #[test]
    fn a_read_only_mount_stays_read_only() {
        let mut ceiling = bundle();
        if let MountSource::Host { read_only, .. } = &mut ceiling.mounts[0].source {
            *read_only = true;
        }
        let err = bundle().check_within(&ceiling).unwrap_err().to_string();
        assert!(
            err.contains(
                "--dir /srv/data::/data widens the bundle's policy (it mounts `/data` read-only)"
            ),
            "{err}"
        );
    }
}
