//! The canonical form of a [`Policy`]: one byte string per policy, whatever
//! the order of the flags or the spelling of the config it came from.
//! Bundles store it and attestation hashes it (SHA-256), so it is
//! specified byte for byte in `docs/bundle.md` ("The canonical policy
//! form"), and a change to it is a new `format`.
//!
//! It is JSON without whitespace, objects with their keys in byte order,
//! strings escaped as RFC 8785 (JCS) does (only `"`, `\` and control
//! characters; `\b \t \n \f \r`, else `\u00xx` in lowercase), integers in
//! plain decimal, and no trailing newline: for the values a policy holds
//! (strings, booleans, `null` and integers below 2^53) it is exactly the
//! RFC 8785 canonicalisation. What is a set is sorted (subsystems, the
//! environment, mounts by guest path, network and HTTP rules by their
//! canonical spelling); what is a sequence keeps its order (guest
//! arguments, listening sockets, whose order gives their descriptors).
//!
//! [`Policy::from_canonical`] parses it back and refuses any text that is
//! not exactly what [`Policy::to_canonical`] writes, so that no two byte
//! strings stand for one policy.

use crate::{
    HttpOrigin, Limits, Mount, MountSource, NetRule, Policy, PolicyError, Stdio, StdioMode,
    Subsystem,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The value of the `format` key: what a verifier checks first.
pub const CANONICAL_FORMAT: &str = "warden-policy/1";

/// Fields in byte order of their names: serde writes them as declared.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    allow: AllowDoc,
    args: Vec<String>,
    entrypoint: Option<String>,
    env: Vec<(String, String)>,
    format: String,
    http: Vec<String>,
    limits: LimitsDoc,
    listen: Vec<String>,
    mounts: Vec<MountDoc>,
    net: Vec<String>,
    stdio: StdioDoc,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowDoc {
    clocks: bool,
    env: bool,
    exit: bool,
    fs: bool,
    process: bool,
    random: bool,
    sockets: bool,
    /// Added after `warden-policy/1` was first fixed: written only when
    /// true, so that the canonical form of every older policy is unchanged.
    #[serde(default, skip_serializing_if = "is_false")]
    threads: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsDoc {
    fuel: Option<u64>,
    max_memory: Option<u64>,
    max_processes: Option<u32>,
    max_stack: Option<u64>,
    /// Written only when set, for the same reason as `allow.threads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_threads: Option<u32>,
    max_total_memory: Option<u64>,
    timeout_ns: Option<u64>,
}

/// `guest` and exactly one source: `bundled`, `host` (with `read_only`),
/// `sealed` or `virtual`. Absent keys are left out, not `null`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MountDoc {
    #[serde(skip_serializing_if = "Option::is_none")]
    bundled: Option<String>,
    guest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
    #[serde(rename = "virtual", skip_serializing_if = "Option::is_none")]
    virtual_: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StdioDoc {
    stderr: String,
    stdin: String,
    stdout: String,
}

fn not_canonical(reason: impl Into<String>) -> PolicyError {
    PolicyError::BadCanonical(reason.into())
}

fn path_text(path: &std::path::Path) -> Result<String, PolicyError> {
    path.to_str().map(str::to_string).ok_or_else(|| {
        PolicyError::NoCanonical(format!("host path `{}` is not UTF-8", path.display()))
    })
}

impl Policy {
    /// The same policy with every set in its canonical order: the
    /// environment by name, mounts by guest path, network rules (their
    /// networks truncated) and HTTP origins by canonical spelling without
    /// repeats, and every subsystem present in `allow`.
    pub fn canonicalized(&self) -> Policy {
        let mut p = self.clone();
        p.env.sort_by(|a, b| a.0.cmp(&b.0));
        p.mounts.sort_by(|a, b| a.guest.cmp(&b.guest));
        let mut net: Vec<NetRule> = p
            .net
            .iter()
            .map(|r| NetRule {
                net: r.net.trunc(),
                port: r.port,
            })
            .collect();
        net.sort_by_key(|r| r.to_string());
        net.dedup_by_key(|r| r.to_string());
        p.net = net;
        p.http.sort_by_key(|o| o.to_string());
        p.http.dedup_by_key(|o| o.to_string());
        p.allow = Subsystem::ALL
            .into_iter()
            .map(|s| (s, self.allows(s)))
            .collect();
        p
    }

    /// The canonical form (see the module documentation and
    /// `docs/bundle.md`). Fails only for what it cannot represent: a host
    /// path that is not UTF-8, or a timeout of more than 2^64-1 ns.
    pub fn to_canonical(&self) -> Result<Vec<u8>, PolicyError> {
        let p = self.canonicalized();
        let allow = AllowDoc {
            clocks: p.allows(Subsystem::Clocks),
            env: p.allows(Subsystem::Env),
            exit: p.allows(Subsystem::Exit),
            fs: p.allows(Subsystem::Fs),
            process: p.allows(Subsystem::Process),
            random: p.allows(Subsystem::Random),
            sockets: p.allows(Subsystem::Sockets),
            threads: p.allows(Subsystem::Threads),
        };
        let timeout_ns = match p.limits.timeout {
            None => None,
            Some(t) => Some(u64::try_from(t.as_nanos()).map_err(|_| {
                PolicyError::NoCanonical(format!("timeout {t:?} is longer than 2^64-1 ns"))
            })?),
        };
        let mut mounts = Vec::with_capacity(p.mounts.len());
        for m in &p.mounts {
            let mut doc = MountDoc {
                bundled: None,
                guest: m.guest.clone(),
                host: None,
                read_only: None,
                sealed: None,
                virtual_: None,
            };
            match &m.source {
                MountSource::Host { path, read_only } => {
                    doc.host = Some(path_text(path)?);
                    doc.read_only = Some(*read_only);
                }
                MountSource::Virtual { path } => doc.virtual_ = Some(path_text(path)?),
                MountSource::Sealed { name } => doc.sealed = Some(name.clone()),
                MountSource::Bundled { digest } => doc.bundled = Some(digest.clone()),
            }
            mounts.push(doc);
        }
        let doc = Doc {
            allow,
            args: p.args.clone(),
            entrypoint: p.entrypoint.clone(),
            env: p.env.clone(),
            format: CANONICAL_FORMAT.to_string(),
            http: p.http.iter().map(ToString::to_string).collect(),
            limits: LimitsDoc {
                fuel: p.limits.fuel,
                max_memory: p.limits.max_memory,
                max_processes: p.limits.max_processes,
                max_stack: p.limits.max_stack,
                max_threads: p.limits.max_threads,
                max_total_memory: p.limits.max_total_memory,
                timeout_ns,
            },
            listen: p.listen.iter().map(ToString::to_string).collect(),
            mounts,
            net: p.net.iter().map(ToString::to_string).collect(),
            stdio: StdioDoc {
                stderr: p.stdio.stderr.to_string(),
                stdin: p.stdio.stdin.to_string(),
                stdout: p.stdio.stdout.to_string(),
            },
        };
        Ok(serde_json::to_vec(&doc).expect("a policy document always serializes"))
    }

    /// Parses a canonical form back. Anything that is not byte for byte
    /// what [`Policy::to_canonical`] writes for the policy it describes
    /// (another key order, whitespace, a set out of order or repeated,
    /// another format) is refused.
    pub fn from_canonical(bytes: &[u8]) -> Result<Policy, PolicyError> {
        let doc: Doc = serde_json::from_slice(bytes).map_err(|e| not_canonical(e.to_string()))?;
        if doc.format != CANONICAL_FORMAT {
            return Err(not_canonical(format!(
                "format `{}` is not `{CANONICAL_FORMAT}`",
                doc.format
            )));
        }
        let a = &doc.allow;
        let allow: BTreeMap<Subsystem, bool> = [
            (Subsystem::Clocks, a.clocks),
            (Subsystem::Random, a.random),
            (Subsystem::Exit, a.exit),
            (Subsystem::Env, a.env),
            (Subsystem::Fs, a.fs),
            (Subsystem::Sockets, a.sockets),
            (Subsystem::Process, a.process),
            (Subsystem::Threads, a.threads),
        ]
        .into_iter()
        .collect();
        let mode = |name: &str, text: &str| -> Result<StdioMode, PolicyError> {
            text.parse()
                .map_err(|_| not_canonical(format!("stdio.{name}: `{text}` is not a mode")))
        };
        let stdio = Stdio {
            stdin: mode("stdin", &doc.stdio.stdin)?,
            stdout: mode("stdout", &doc.stdio.stdout)?,
            stderr: mode("stderr", &doc.stdio.stderr)?,
        };
        let mut mounts = Vec::with_capacity(doc.mounts.len());
        for m in doc.mounts {
            let source = match (m.bundled, m.host, m.read_only, m.sealed, m.virtual_) {
                (Some(digest), None, None, None, None) => MountSource::Bundled { digest },
                (None, Some(host), Some(read_only), None, None) => MountSource::Host {
                    path: PathBuf::from(host),
                    read_only,
                },
                (None, None, None, Some(name), None) => MountSource::Sealed { name },
                (None, None, None, None, Some(path)) => MountSource::Virtual {
                    path: PathBuf::from(path),
                },
                _ => {
                    return Err(not_canonical(format!(
                        "mount `{}` needs exactly one of `bundled`, `host` with `read_only`, \
                         `sealed`, `virtual`",
                        m.guest
                    )))
                }
            };
            mounts.push(Mount {
                guest: m.guest,
                source,
            });
        }
        let listen = doc
            .listen
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|_| not_canonical(format!("listen: `{a}` is not an address")))
            })
            .collect::<Result<_, _>>()?;
        let net = doc
            .net
            .iter()
            .map(|r| r.parse::<NetRule>())
            .collect::<Result<_, _>>()
            .map_err(|e| not_canonical(e.to_string()))?;
        let http = doc
            .http
            .iter()
            .map(|o| o.parse::<HttpOrigin>())
            .collect::<Result<_, _>>()
            .map_err(|e| not_canonical(e.to_string()))?;
        let l = doc.limits;
        let policy = Policy {
            args: doc.args,
            env: doc.env,
            mounts,
            listen,
            net,
            http,
            stdio,
            allow,
            limits: Limits {
                max_memory: l.max_memory,
                max_total_memory: l.max_total_memory,
                max_stack: l.max_stack,
                fuel: l.fuel,
                timeout: l.timeout_ns.map(Duration::from_nanos),
                max_processes: l.max_processes,
                max_threads: l.max_threads,
            },
            entrypoint: doc.entrypoint,
        };
        // Sets are strictly ascending: a name or a guest path twice is no
        // policy at all, and sorting could not make it canonical.
        let ascending = |names: Vec<&str>| names.windows(2).all(|w| w[0] < w[1]);
        if !ascending(policy.env.iter().map(|(k, _)| k.as_str()).collect()) {
            return Err(not_canonical("env: names must be unique and in byte order"));
        }
        if !ascending(policy.mounts.iter().map(|m| m.guest.as_str()).collect()) {
            return Err(not_canonical(
                "mounts: guest paths must be unique and in byte order",
            ));
        }
        if policy.to_canonical()? != bytes {
            return Err(not_canonical(
                "the text is not in canonical form (key order, spacing, escapes, or a set out of \
                 order or repeated)",
            ));
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rich() -> Policy {
        let mut p = Policy {
            args: vec![
                "--verbose".into(),
                "two words".into(),
                "ü\"\\\n\u{1}".into(),
            ],
            entrypoint: Some("run".into()),
            listen: vec![
                "127.0.0.1:8080".parse().unwrap(),
                "[::1]:9".parse().unwrap(),
            ],
            ..Policy::default()
        };
        p.set_env("ZED", "last");
        p.set_env("ALPHA", "first");
        p.mounts = vec![
            Mount {
                guest: "/state".into(),
                source: MountSource::Sealed { name: "app".into() },
            },
            Mount {
                guest: "/data".into(),
                source: MountSource::Host {
                    path: "/srv/data".into(),
                    read_only: true,
                },
            },
            Mount {
                guest: "/etc/app".into(),
                source: MountSource::Bundled {
                    digest: format!("sha256:{}", "ab".repeat(32)),
                },
            },
            Mount {
                guest: "/conf".into(),
                source: MountSource::Virtual {
                    path: "/srv/conf".into(),
                },
            },
        ];
        p.net = vec![
            "10.1.2.3/8:*".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        p.http = vec![
            "https://b.example.com".parse().unwrap(),
            "*://*:*".parse().unwrap(),
            "https://b.example.com:443".parse().unwrap(),
        ];
        p.allow.insert(Subsystem::Process, true);
        p.allow.insert(Subsystem::Clocks, false);
        p.stdio.stdin = StdioMode::Allow;
        p.stdio.stderr = StdioMode::Deny;
        p.limits = Limits {
            max_memory: Some(64 << 20),
            max_total_memory: Some(1 << 30),
            max_stack: Some(1 << 20),
            fuel: Some(u64::MAX),
            timeout: Some(Duration::from_millis(2500)),
            max_processes: Some(8),
            max_threads: None,
        };
        p
    }

    #[test]
    fn threads_appear_only_when_granted_or_limited() {
        let mut p = rich();
        p.allow.insert(Subsystem::Threads, true);
        p.limits.max_threads = Some(4);
        let text = String::from_utf8(p.to_canonical().unwrap()).unwrap();
        assert!(text.contains(r#""sockets":true,"threads":true}"#), "{text}");
        assert!(
            text.contains(r#""max_stack":1048576,"max_threads":4,"max_total_memory""#),
            "{text}"
        );
        let back = Policy::from_canonical(text.as_bytes()).unwrap();
        assert_eq!(back, p.canonicalized());
        // Written out when false, it is not the canonical form.
        let explicit = String::from_utf8(rich().to_canonical().unwrap())
            .unwrap()
            .replace(r#""sockets":true}"#, r#""sockets":true,"threads":false}"#);
        assert!(Policy::from_canonical(explicit.as_bytes()).is_err());
    }

    #[test]
    fn round_trips() {
        for p in [Policy::default(), rich()] {
            let text = p.to_canonical().unwrap();
            let back = Policy::from_canonical(&text).unwrap();
            assert_eq!(back, p.canonicalized());
            assert_eq!(back.to_canonical().unwrap(), text);
        }
    }

    #[test]
    fn the_default_policy_is_exactly_this() {
        // docs/bundle.md quotes this text; a change here is a new format.
        let text = String::from_utf8(Policy::default().to_canonical().unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"allow":{"clocks":true,"env":true,"exit":true,"fs":true,"process":false,"random":true,"sockets":true},"args":[],"entrypoint":null,"env":[],"format":"warden-policy/1","http":[],"limits":{"fuel":null,"max_memory":null,"max_processes":null,"max_stack":null,"max_total_memory":null,"timeout_ns":null},"listen":[],"mounts":[],"net":[],"stdio":{"stderr":"allow","stdin":"ignore","stdout":"allow"}}"#
        );
    }

    #[test]
    fn sets_are_sorted_and_sequences_kept() {
        let text = String::from_utf8(rich().to_canonical().unwrap()).unwrap();
        assert!(
            text.contains(r#""env":[["ALPHA","first"],["ZED","last"]]"#),
            "{text}"
        );
        assert!(
            text.contains(r#""net":["10.0.0.0/8","127.0.0.1:80"]"#),
            "{text}"
        );
        assert!(
            text.contains(r#""http":["*://*:*","https://b.example.com:443"]"#),
            "{text}"
        );
        assert!(
            text.contains(r#""listen":["127.0.0.1:8080","[::1]:9"]"#),
            "{text}"
        );
        assert!(
            text.contains(r#""args":["--verbose","two words","ü\"\\\n\u0001"]"#),
            "{text}"
        );
        let sorted = rich().canonicalized();
        let guests: Vec<&str> = sorted.mounts.iter().map(|m| m.guest.as_str()).collect();
        assert_eq!(guests, ["/conf", "/data", "/etc/app", "/state"]);
        assert!(text.contains(r#"{"guest":"/data","host":"/srv/data","read_only":true}"#));
        assert!(text.contains(r#""timeout_ns":2500000000"#), "{text}");
        // The order in which sets were given does not matter.
        let mut shuffled = rich();
        shuffled.mounts.reverse();
        shuffled.net.reverse();
        shuffled.http.reverse();
        shuffled.env.reverse();
        assert_eq!(
            shuffled.to_canonical().unwrap(),
            rich().to_canonical().unwrap()
        );
    }

    #[test]
    fn anything_but_the_canonical_text_is_refused() {
        let good = String::from_utf8(rich().to_canonical().unwrap()).unwrap();
        let variants = [
            good.replacen("{\"allow\"", "{ \"allow\"", 1),
            good.clone() + "\n",
            good.replacen("\"ALPHA\"", "\"\\u0041LPHA\"", 1),
            good.replacen(
                r#"["ALPHA","first"],["ZED","last"]"#,
                r#"["ZED","last"],["ALPHA","first"]"#,
                1,
            ),
            good.replacen(
                r#""net":["10.0.0.0/8","#,
                r#""net":["10.0.0.0/8","10.0.0.0/8","#,
                1,
            ),
            good.replacen("warden-policy/1", "warden-policy/2", 1),
            good.replacen(r#""fuel":18446744073709551615"#, r#""fuel":1.8e19"#, 1),
            good.replacen(r#""read_only":true"#, r#""read_only":true,"sealed":"x""#, 1),
            good.replacen("{\"allow\":{", "{\"allow\":{\"extra\":true,", 1),
        ];
        for bad in variants {
            assert_ne!(bad, good);
            let err = Policy::from_canonical(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, PolicyError::BadCanonical(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn what_cannot_be_written_is_an_error() {
        use std::os::unix::ffi::OsStrExt;
        let mut p = Policy::default();
        p.mounts.push(Mount {
            guest: "/x".into(),
            source: MountSource::Host {
                path: std::ffi::OsStr::from_bytes(b"/bad\xff").into(),
                read_only: false,
            },
        });
        assert!(matches!(p.to_canonical(), Err(PolicyError::NoCanonical(_))));
    }
}
