//! The `warden serve` manifest: a `[server]` table and one `[[app]]` per
//! app, each with the keys of a `warden run` workload (`docs/config.md`)
//! plus where it is routed. Every error names the file, line and key.

use crate::route::Route;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use warden_policy::{located, Config, Policy, PolicyError, Spanned, Subsystem};

/// Largest request body an app takes when the manifest does not say.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 16 << 20;
/// Requests one app handles at once when the manifest does not say.
pub const DEFAULT_MAX_CONCURRENT: u32 = 256;
/// Wall time of one request when the manifest does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Linear memory of one request's instance when the manifest does not say.
pub const DEFAULT_MAX_MEMORY: u64 = 128 << 20;

/// Why a manifest was refused: one line, naming the file and, where it
/// can, the line and key.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Invalid(String),
}

/// A manifest, checked and resolved.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub path: PathBuf,
    pub server: ServerSettings,
    pub apps: Vec<AppSpec>,
}

/// The `[server]` table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerSettings {
    pub addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `tls = "attested"`.
    pub attested: bool,
    /// `evidence = "software" | "sev-snp" | "tdx" | "auto"`.
    pub evidence: Option<String>,
    /// `store = "PATH" | "etcd://…"`: the sealed store (a path relative to
    /// the manifest's folder, or an etcd URL).
    pub store: Option<PathBuf>,
}

/// The values of `server.tls`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum TlsMode {
    Attested,
}

/// One app: what it is, where it is routed and what it may do.
#[derive(Clone, Debug, PartialEq)]
pub struct AppSpec {
    pub name: String,
    pub version: Option<String>,
    pub route: Route,
    /// A component file or a bundle holding one.
    pub component: PathBuf,
    /// The workload's policy: env, mounts, allow, limits. Sealed mounts
    /// name namespaces of the app's own (`APP/fs/NAME`).
    pub policy: Policy,
    /// Key-value store labels the app may open (namespace `APP/LABEL`).
    pub kv_labels: Vec<String>,
    /// `wasi:config` variables.
    pub variables: Vec<(String, String)>,
    pub limits: RequestLimits,
}

/// What one request of an app may use besides its policy's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    pub max_body_size: u64,
    pub max_concurrent: u32,
    pub timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    app: Vec<Spanned<Config>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerConfig {
    addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls: Option<TlsMode>,
    evidence: Option<String>,
    store: Option<String>,
}

impl Manifest {
    /// Reads, parses and checks a manifest; relative paths are taken from
    /// its folder.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::ReadConfig {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Manifest::parse(path, &text)
    }

    /// Parses and checks manifest text; `path` names it in errors and
    /// anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let file: ManifestFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            located(path, text, offset, e.message().to_string())
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let at = |offset: usize, message: String| -> ManifestError {
            located(path, text, offset, message).into()
        };
        if file.app.is_empty() {
            return Err(ManifestError::Invalid(format!(
                "{}: no `[[app]]` to serve",
                path.display()
            )));
        }
        let mut apps: Vec<AppSpec> = Vec::new();
        let mut names = BTreeSet::new();
        for spanned in file.app {
            let app_offset = spanned.span().start;
            let mut config = spanned.into_inner();
            let keys = config.take_app();
            let name = keys
                .name
                .ok_or_else(|| at(app_offset, "an `[[app]]` needs a `name`".into()))?;
            let name_offset = name.span().start;
            let name = name.into_inner();
            check_name(&name).map_err(|m| at(name_offset, m))?;
            if !names.insert(name.clone()) {
                return Err(at(name_offset, format!("two apps are named `{name}`")));
            }
            let route = keys
                .route
                .ok_or_else(|| at(app_offset, format!("app `{name}` needs a `route`")))?;
            let route_offset = route.span().start;
            let route: Route = route
                .into_inner()
                .parse()
                .map_err(|m: String| at(route_offset, m))?;
            if let Some(other) = apps.iter().find(|a| a.route == route) {
                return Err(at(
                    route_offset,
                    format!(
                        "apps `{}` and `{name}` have the same route `{route}`",
                        other.name
                    ),
                ));
            }
            let component = keys
                .component
                .ok_or_else(|| at(app_offset, format!("app `{name}` needs a `component`")))?
                .into_inner();
            let kv_labels = match keys.key_value_stores {
                None => vec!["default".to_string()],
                Some(labels) => {
                    let mut out = Vec::new();
                    for label in labels {
                        let offset = label.span().start;
                        let label = label.into_inner();
                        check_label(&label).map_err(|m| at(offset, m))?;
                        out.push(label);
                    }
                    out
                }
            };
            let mut policy = config.into_policy(path, text, base)?;
            if !policy.listen.is_empty() || policy.entrypoint.is_some() {
                return Err(at(
                    app_offset,
                    format!("app `{name}`: `listen` and `entrypoint` are for core modules under `warden run`, not for an HTTP app"),
                ));
            }
            for_app(&mut policy, &name);
            if policy.allows(Subsystem::Env) {
                policy.set_env("WARDEN_APP", &name);
                if let Some(version) = &keys.version {
                    policy.set_env("WARDEN_APP_VERSION", version);
                }
            }
            policy.validate().map_err(|e| {
                ManifestError::Invalid(format!("{}: app `{name}`: {e}", path.display()))
            })?;
            let limits = RequestLimits {
                max_body_size: keys.max_body_size.unwrap_or(DEFAULT_MAX_BODY_SIZE),
                max_concurrent: keys.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT).max(1),
                timeout: policy.limits.timeout.unwrap_or(DEFAULT_TIMEOUT),
            };
            apps.push(AppSpec {
                name,
                version: keys.version,
                route,
                component: base.join(component),
                policy,
                kv_labels,
                variables: keys.variables.into_iter().collect(),
                limits,
            });
        }
        let s = file.server;
        Ok(Manifest {
            path: path.to_path_buf(),
            server: ServerSettings {
                addr: s.addr,
                metrics_addr: s.metrics_addr,
                tls_cert: s.tls_cert.map(|p| base.join(p)),
                tls_key: s.tls_key.map(|p| base.join(p)),
                attested: s.tls == Some(TlsMode::Attested),
                evidence: s.evidence,
                store: s.store.map(|store| match store.starts_with("etcd://") {
                    true => PathBuf::from(store),
                    false => base.join(store),
                }),
            },
            apps,
        })
    }
}

impl AppSpec {
    /// One app serving `component` on every path, as `wasmtime serve` does
    /// (`warden serve COMPONENT`).
    pub fn single(component: &Path, mut policy: Policy) -> AppSpec {
        let name = component
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| check_name(s).is_ok())
            .unwrap_or_else(|| "app".to_string());
        for_app(&mut policy, &name);
        let limits = RequestLimits {
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            timeout: policy.limits.timeout.unwrap_or(DEFAULT_TIMEOUT),
        };
        AppSpec {
            name,
            version: None,
            route: Route::Prefix(String::new()),
            component: component.to_path_buf(),
            policy,
            kv_labels: vec!["default".to_string()],
            variables: Vec::new(),
            limits,
        }
    }
}

/// What every app's policy gets: its sealed mounts name namespaces of the
/// app's own, so that two apps' files never meet (`sealed = "notes"` is
/// `APP/fs/notes`), and a memory limit per request when none is given.
pub(crate) fn for_app(policy: &mut Policy, app: &str) {
    for mount in &mut policy.mounts {
        if let warden_policy::MountSource::Sealed { name } = &mut mount.source {
            *name = format!("{app}/fs/{name}");
        }
    }
    if policy.limits.max_memory.is_none() {
        policy.limits.max_memory = Some(DEFAULT_MAX_MEMORY);
    }
}

/// App names go into store namespaces, logs and metric labels.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "app name `{name}` must be 1 to 64 lowercase letters, digits, `-` or `_`, starting with a letter or digit"
        ))
    }
}

/// Store labels become the last part of a namespace name.
fn check_label(label: &str) -> Result<(), String> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key-value store label `{label}` must be 1 to 64 letters, digits, `-`, `_` or `.`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(Path::new("/srv/Warden.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn apps_with_workload_keys() {
        let m = parse(
            r#"
[server]
addr = "127.0.0.1:8080"

[[app]]
name = "hello"
route = "/hello"
component = "hello.wasm"
version = "1.2.0"
[app.env]
GREETING = "hi"
[app.limits]
max_memory = "32MiB"
max_body_size = "1MiB"
max_concurrent = 8
timeout = "2s"

[[app]]
name = "notes"
route = "/notes/..."
component = "/abs/notes.wasm"
key_value_stores = ["default", "cache"]
[[app.mount]]
guest = "/data"
sealed = "notes"
[app.variables]
title = "Notes"
"#,
        )
        .unwrap();
        assert_eq!(m.server.addr, Some("127.0.0.1:8080".parse().unwrap()));
        let hello = &m.apps[0];
        assert_eq!(hello.component, Path::new("/srv/hello.wasm"));
        assert_eq!(hello.route, Route::Exact("/hello".into()));
        assert_eq!(hello.policy.limits.max_memory, Some(32 << 20));
        assert_eq!(hello.limits.max_body_size, 1 << 20);
        assert_eq!(hello.limits.max_concurrent, 8);
        assert_eq!(hello.limits.timeout, Duration::from_secs(2));
        assert_eq!(hello.kv_labels, ["default"]);
        assert!(hello
            .policy
            .env
            .contains(&("WARDEN_APP".into(), "hello".into())));
        assert!(hello
            .policy
            .env
            .contains(&("WARDEN_APP_VERSION".into(), "1.2.0".into())));
        let notes = &m.apps[1];
        assert_eq!(notes.route, Route::Prefix("/notes".into()));
        assert_eq!(notes.kv_labels, ["default", "cache"]);
        assert_eq!(notes.variables, [("title".into(), "Notes".into())]);
        assert_eq!(
            notes.policy.mounts[0].source,
            warden_policy::MountSource::Sealed {
                name: "notes/fs/notes".into()
            }
        );
        assert_eq!(notes.policy.limits.max_memory, Some(DEFAULT_MAX_MEMORY));
    }

    #[test]
    fn same_route_twice_names_both_apps_and_the_line() {
        let err = parse(
            "[[app]]\nname = \"a\"\nroute = \"/x\"\ncomponent = \"a.wasm\"\n[[app]]\nname = \"b\"\nroute = \"/x\"\ncomponent = \"b.wasm\"\n",
        )
        .unwrap_err();
        assert!(err.starts_with("/srv/Warden.toml:7:"), "{err}");
        assert!(
            err.contains("`a` and `b`") && err.contains("app.route"),
            "{err}"
        );
    }

    #[test]
    fn missing_keys_and_bad_values_are_located() {
        let err = parse("[[app]]\nname = \"a\"\nroute = \"/x\"\n").unwrap_err();
        assert!(err.contains("needs a `component`"), "{err}");
        let err =
            parse("[[app]]\nname = \"A B\"\nroute = \"/x\"\ncomponent = \"a\"\n").unwrap_err();
        assert!(err.contains(":2:") && err.contains("app name"), "{err}");
        let err = parse("[[app]]\nname = \"a\"\nroute = \"x\"\ncomponent = \"a\"\n").unwrap_err();
        assert!(
            err.contains(":3:") && err.contains("must start with `/`"),
            "{err}"
        );
        let err =
            parse("[[app]]\nname = \"a\"\nroute = \"/x\"\ncomponent = \"a\"\n[app.limits]\nfuel = \"x\"\n")
                .unwrap_err();
        assert!(
            err.contains(":6:") && err.contains("app.limits.fuel"),
            "{err}"
        );
        let err = parse("[[app]]\nname = \"a\"\nroute = \"/x\"\ncomponent = \"a\"\nport = 1\n")
            .unwrap_err();
        assert!(err.contains(":5:") && err.contains("port"), "{err}");
        let err = parse("[server]\naddr = \"nowhere\"\n[[app]]\n").unwrap_err();
        assert!(err.contains(":2:") && err.contains("server.addr"), "{err}");
        let err = parse(
            "[[app]]\nname = \"a\"\nroute = \"/x\"\ncomponent = \"a\"\nentrypoint = \"run\"\n",
        )
        .unwrap_err();
        assert!(err.contains("`entrypoint` are for core modules"), "{err}");
        let err = parse("[server]\n").unwrap_err();
        assert!(err.contains("no `[[app]]`"), "{err}");
        let err =
            parse("[[app]]\nname = \"a\"\nroute = \"/.well-known/warden/x\"\ncomponent = \"a\"\n")
                .unwrap_err();
        assert!(err.contains("reserved"), "{err}");
    }

    #[test]
    fn run_config_refuses_app_keys() {
        let text = "route = \"/x\"\n";
        let err = Config::parse(Path::new("W.toml"), text)
            .unwrap()
            .into_policy(Path::new("W.toml"), text, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("W.toml:1:") && err.contains("`[[app]]`"),
            "{err}"
        );
    }
}
