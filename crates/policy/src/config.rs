//! The `Warden.toml` schema. Unknown keys are errors, and every error names
//! the file, line, column and key.

use crate::values::{ConfigDuration, Size};
use crate::{HttpOrigin, Mount, MountSource, NetRule, Policy, PolicyError, StdioMode, Subsystem};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use toml::Spanned;

/// A parsed `Warden.toml`, before it is resolved into a [`Policy`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    env_inherit: Vec<String>,
    #[serde(default, rename = "mount")]
    mounts: Vec<Spanned<MountConfig>>,
    #[serde(default)]
    listen: Vec<SocketAddr>,
    #[serde(default)]
    stdio: StdioConfig,
    #[serde(default)]
    allow: AllowConfig,
    #[serde(default)]
    limits: LimitsConfig,
    entrypoint: Option<String>,
    // The keys below belong to an `[[app]]` of a `warden serve` manifest
    // only (`Config::take_app`); `into_policy` refuses them elsewhere.
    name: Option<Spanned<String>>,
    route: Option<Spanned<String>>,
    component: Option<Spanned<PathBuf>>,
    version: Option<Spanned<String>>,
    key_value_stores: Option<Spanned<Vec<Spanned<String>>>>,
    variables: Option<Spanned<BTreeMap<String, String>>>,
}

/// The keys of a `warden serve` app beside those of a workload: where it
/// is routed and what it may use besides the policy. Spans are byte
/// offsets into the manifest, for errors that name a line.
#[derive(Debug, Default)]
pub struct AppKeys {
    pub name: Option<Spanned<String>>,
    pub route: Option<Spanned<String>>,
    pub component: Option<Spanned<PathBuf>>,
    pub version: Option<String>,
    /// `None`: the key was not given (the app gets `default`).
    pub key_value_stores: Option<Vec<Spanned<String>>>,
    pub variables: BTreeMap<String, String>,
    /// Largest request body, in bytes.
    pub max_body_size: Option<u64>,
    /// Requests handled at once; past it, 503.
    pub max_concurrent: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MountConfig {
    guest: String,
    host: Option<PathBuf>,
    #[serde(rename = "virtual")]
    virtual_: Option<PathBuf>,
    sealed: Option<String>,
    #[serde(default)]
    read_only: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StdioConfig {
    stdin: Option<ModeName>,
    stdout: Option<ModeName>,
    stderr: Option<ModeName>,
}

/// A stdio mode that is checked while parsing, so its error has a line.
type ModeName = Parsed<StdioMode>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowConfig {
    clocks: Option<bool>,
    random: Option<bool>,
    exit: Option<bool>,
    env: Option<bool>,
    fs: Option<bool>,
    sockets: Option<bool>,
    process: Option<bool>,
    threads: Option<bool>,
    #[serde(default)]
    net: Vec<Parsed<NetRule>>,
    #[serde(default)]
    http: Vec<Parsed<HttpOrigin>>,
}

/// A value parsed from its string while the TOML is read, so that its
/// error has a line.
#[derive(Debug, Clone)]
struct Parsed<T>(T);

impl<'de, T: FromStr<Err = PolicyError>> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map(Parsed)
            .map_err(|e: PolicyError| serde::de::Error::custom(e.to_string()))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsConfig {
    max_memory: Option<Size>,
    max_total_memory: Option<Size>,
    max_stack: Option<Size>,
    fuel: Option<u64>,
    timeout: Option<ConfigDuration>,
    max_processes: Option<u32>,
    max_threads: Option<u32>,
    // `[[app]]` only.
    max_body_size: Option<Spanned<Size>>,
    max_concurrent: Option<Spanned<u32>>,
}

impl Config {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::ReadConfig {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Config::parse(path, &text)
    }

    /// Parses config text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, PolicyError> {
        toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            located(path, text, offset, e.message().to_string())
        })
    }

    /// Takes the keys of a `warden serve` app out of the config, leaving
    /// the workload's.
    pub fn take_app(&mut self) -> AppKeys {
        AppKeys {
            name: self.name.take(),
            route: self.route.take(),
            component: self.component.take(),
            version: self.version.take().map(Spanned::into_inner),
            key_value_stores: self.key_value_stores.take().map(Spanned::into_inner),
            variables: self
                .variables
                .take()
                .map(Spanned::into_inner)
                .unwrap_or_default(),
            max_body_size: self.limits.max_body_size.take().map(|s| s.into_inner().0),
            max_concurrent: self.limits.max_concurrent.take().map(Spanned::into_inner),
        }
    }

    /// The first `[[app]]`-only key left in the config, with its offset.
    fn app_key_left(&self) -> Option<(&'static str, usize)> {
        let span = |s: Option<std::ops::Range<usize>>, key| s.map(|r| (key, r.start));
        span(self.name.as_ref().map(Spanned::span), "name")
            .or_else(|| span(self.route.as_ref().map(Spanned::span), "route"))
            .or_else(|| span(self.component.as_ref().map(Spanned::span), "component"))
            .or_else(|| span(self.version.as_ref().map(Spanned::span), "version"))
            .or_else(|| {
                span(
                    self.key_value_stores.as_ref().map(Spanned::span),
                    "key_value_stores",
                )
            })
            .or_else(|| span(self.variables.as_ref().map(Spanned::span), "variables"))
            .or_else(|| {
                span(
                    self.limits.max_body_size.as_ref().map(Spanned::span),
                    "limits.max_body_size",
                )
            })
            .or_else(|| {
                span(
                    self.limits.max_concurrent.as_ref().map(Spanned::span),
                    "limits.max_concurrent",
                )
            })
    }

    /// Resolves the config into a policy. Relative host paths are taken
    /// relative to `base` (the config file's directory).
    pub fn into_policy(self, path: &Path, text: &str, base: &Path) -> Result<Policy, PolicyError> {
        if let Some((key, offset)) = self.app_key_left() {
            return Err(located(
                path,
                text,
                offset,
                format!("`{key}` belongs to an `[[app]]` of a `warden serve` manifest"),
            ));
        }
        let mut policy = Policy {
            args: self.args,
            entrypoint: self.entrypoint,
            listen: self.listen,
            ..Policy::default()
        };
        for (key, value) in &self.env {
            policy.set_env(key, value);
        }
        for name in &self.env_inherit {
            policy.inherit_env(name);
        }
        for spanned in self.mounts {
            let offset = spanned.span().start;
            let m = spanned.into_inner();
            let source = match (m.host, m.virtual_, m.sealed) {
                (Some(host), None, None) => MountSource::Host {
                    path: base.join(host),
                    read_only: m.read_only,
                },
                (None, Some(dir), None) => MountSource::Virtual {
                    path: base.join(dir),
                },
                (None, None, Some(name)) => MountSource::Sealed { name },
                (None, None, None) => {
                    return Err(located(
                        path,
                        text,
                        offset,
                        format!(
                            "mount `{}` needs one source: `host`, `virtual` or `sealed`",
                            m.guest
                        ),
                    ))
                }
                _ => {
                    return Err(located(
                        path,
                        text,
                        offset,
                        format!(
                            "mount `{}` has more than one of `host`, `virtual`, `sealed`",
                            m.guest
                        ),
                    ))
                }
            };
            policy.add_mount(Mount {
                guest: m.guest,
                source,
            });
        }
        let stdio = &mut policy.stdio;
        if let Some(Parsed(mode)) = self.stdio.stdin {
            stdio.stdin = mode;
        }
        if let Some(Parsed(mode)) = self.stdio.stdout {
            stdio.stdout = mode;
        }
        if let Some(Parsed(mode)) = self.stdio.stderr {
            stdio.stderr = mode;
        }
        let a = &self.allow;
        for (sub, value) in [
            (Subsystem::Clocks, a.clocks),
            (Subsystem::Random, a.random),
            (Subsystem::Exit, a.exit),
            (Subsystem::Env, a.env),
            (Subsystem::Fs, a.fs),
            (Subsystem::Sockets, a.sockets),
            (Subsystem::Process, a.process),
            (Subsystem::Threads, a.threads),
        ] {
            if let Some(allowed) = value {
                policy.allow.insert(sub, allowed);
            }
        }
        policy.net = a.net.iter().map(|r| r.0).collect();
        policy.http = a.http.iter().map(|o| o.0.clone()).collect();
        let l = self.limits;
        policy.limits.max_memory = l.max_memory.map(|s| s.0);
        policy.limits.max_total_memory = l.max_total_memory.map(|s| s.0);
        policy.limits.max_stack = l.max_stack.map(|s| s.0);
        policy.limits.fuel = l.fuel.filter(|&f| f > 0);
        policy.limits.timeout = l.timeout.map(|d| d.0);
        policy.limits.max_processes = l.max_processes;
        policy.limits.max_threads = l.max_threads;
        Ok(policy)
    }
}

/// Builds an error that names `path:line:column` and, where the line holds
/// `key = value`, the dotted key under its table header.
pub fn located(path: &Path, text: &str, offset: usize, message: String) -> PolicyError {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let key = key_on_line(before, line_text)
        .map(|k| format!("`{k}`: "))
        .unwrap_or_default();
    PolicyError::Config {
        path: path.to_path_buf(),
        line,
        column,
        key,
        message,
    }
}

fn key_on_line(before: &str, line_text: &str) -> Option<String> {
    let (key, _) = line_text.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|h| h.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

/// Loads a config file and resolves it, relative paths against its folder.
pub fn load_policy(path: &Path) -> Result<Policy, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError::ReadConfig {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let config = Config::parse(path, &text)?;
    let base = path.parent().unwrap_or(Path::new("."));
    config.into_policy(path, &text, base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        let path = Path::new("Warden.toml");
        Config::parse(path, text)?.into_policy(path, text, Path::new("/base"))
    }

    #[test]
    fn full_example() {
        let p = parse(
            r#"
args = ["--verbose"]
env_inherit = ["WARDEN_TEST_SURELY_UNSET"]
listen = ["127.0.0.1:8080"]
entrypoint = "run"
[env]
GREETING = "hi"
[[mount]]
guest = "/data"
host = "data"
read_only = true
[[mount]]
guest = "/etc/app"
virtual = "/conf"
[stdio]
stdin = "allow"
[allow]
clocks = false
process = true
net = ["127.0.0.1:8080", "10.0.0.0/8"]
http = ["https://*.example.com"]
[limits]
max_memory = "64MiB"
max_total_memory = "1GiB"
max_stack = 1048576
fuel = 0
timeout = "2s"
"#,
        )
        .unwrap();
        assert_eq!(p.args, ["--verbose"]);
        assert_eq!(p.env, [("GREETING".to_string(), "hi".to_string())]);
        assert_eq!(
            p.mounts[0].source,
            MountSource::Host {
                path: "/base/data".into(),
                read_only: true
            }
        );
        assert_eq!(
            p.mounts[1].source,
            MountSource::Virtual {
                path: "/conf".into()
            }
        );
        assert_eq!(p.stdio.stdin, StdioMode::Allow);
        assert!(!p.allows(Subsystem::Clocks));
        assert!(p.allows(Subsystem::Process));
        assert_eq!(p.net.len(), 2);
        assert_eq!(p.http[0].to_string(), "https://*.example.com:443");
        assert_eq!(p.limits.max_memory, Some(64 << 20));
        assert_eq!(p.limits.max_total_memory, Some(1 << 30));
        assert_eq!(p.limits.max_stack, Some(1 << 20));
        assert_eq!(p.limits.fuel, None);
        assert_eq!(p.limits.timeout, Some(std::time::Duration::from_secs(2)));
        assert_eq!(p.entrypoint.as_deref(), Some("run"));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse("args = []\n[limits]\nmax_memroy = \"1MiB\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Warden.toml:3:"), "{err}");
        assert!(err.contains("max_memroy"), "{err}");
    }

    #[test]
    fn ill_typed_key_names_key_and_line() {
        let err = parse("\n[limits]\nfuel = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Warden.toml:3:"), "{err}");
        assert!(err.contains("`limits.fuel`"), "{err}");
    }

    #[test]
    fn bad_size_and_mode_have_lines() {
        let err = parse("[limits]\nmax_memory = \"huge\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:") && err.contains("huge"), "{err}");
        let err = parse("[stdio]\nstdout = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:") && err.contains("maybe"), "{err}");
    }

    #[test]
    fn bad_network_rules_have_lines() {
        let err = parse("[allow]\nnet = [\"localhost:80\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:") && err.contains("localhost:80"), "{err}");
        let err = parse("[allow]\nhttp = [\"ftp://x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:") && err.contains("ftp://x"), "{err}");
    }

    #[test]
    fn mount_needs_exactly_one_source() {
        let err = parse("[[mount]]\nguest = \"/a\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs one source"), "{err}");
        let err = parse("[[mount]]\nguest = \"/a\"\nhost = \"x\"\nsealed = \"y\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than one"), "{err}");
    }
}
