//! `etcd://` targets: which cluster, which key prefix, how to connect.
//!
//! ```text
//! etcd://HOST:PORT[,HOST:PORT…]/PREFIX[?OPTION=VALUE&…]
//! ```
//!
//! Options (all optional):
//!
//! * `ca=FILE` — PEM CA certificate(s) that sign the cluster's server
//!   certificates; turns on TLS (`https` endpoints).
//! * `cert=FILE`, `key=FILE` — PEM client certificate and private key, for
//!   clusters that require client certificates (both or neither; need `ca`).
//! * `domain=NAME` — the name to check the servers' certificates against
//!   (default: the host of each endpoint).
//! * `user=NAME` — etcd user; the password is read from the environment
//!   variable `WARDEN_ETCD_PASSWORD` (never from the URL, which ends up in
//!   process lists and logs).
//! * `max-txn-ops=N`, `max-request-bytes=N` — the cluster's
//!   `--max-txn-ops` and `--max-request-bytes` when not etcd's defaults
//!   (128 and 1.5 MiB): what one transaction may hold.
//!
//! Values are taken literally (no percent-decoding); a file path with `&`
//! or `?` in it is not supported.

use std::fmt;
use std::path::PathBuf;

use crate::error::EtcdError;

/// The environment variable holding the password of `user=`.
pub const PASSWORD_ENV: &str = "WARDEN_ETCD_PASSWORD";

/// etcd's default `--max-txn-ops`.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;
/// etcd's default `--max-request-bytes` (1.5 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// TLS settings of a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    pub ca: PathBuf,
    /// Client certificate and key (mutual TLS).
    pub identity: Option<(PathBuf, PathBuf)>,
    pub domain: Option<String>,
}

/// A parsed `etcd://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdTarget {
    /// `host:port`, as given.
    pub endpoints: Vec<String>,
    /// The key prefix (without a trailing `/`); every key lives under `PREFIX/`.
    pub prefix: String,
    pub tls: Option<Tls>,
    /// User name and password.
    pub auth: Option<(String, String)>,
    pub max_txn_ops: usize,
    pub max_request_bytes: usize,
}

// The password must not end up in logs.
impl fmt::Debug for EtcdTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdTarget")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("tls", &self.tls)
            .field("user", &self.auth.as_ref().map(|(u, _)| u))
            .field("max_txn_ops", &self.max_txn_ops)
            .field("max_request_bytes", &self.max_request_bytes)
            .finish()
    }
}

impl fmt::Display for EtcdTarget {
    /// The canonical form without options: `etcd://a:1,b:2/prefix`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.canonical())
    }
}

impl EtcdTarget {
    /// Whether `s` is meant as an etcd target (starts with `etcd://`).
    pub fn is_etcd_url(s: &str) -> bool {
        s.starts_with("etcd://")
    }

    /// Parses an `etcd://` URL, reading the password of `user=` from
    /// [`PASSWORD_ENV`].
    pub fn parse(url: &str) -> Result<Self, EtcdError> {
        Self::parse_with_password(url, std::env::var(PASSWORD_ENV).ok())
    }

    /// [`Self::parse`] with the password given.
    pub fn parse_with_password(url: &str, password: Option<String>) -> Result<Self, EtcdError> {
        let bad = |why: String| EtcdError::BadTarget {
            url: url.to_string(),
            why,
        };
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| bad("it does not start with etcd://".into()))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (hosts, prefix) = rest.split_once('/').ok_or_else(|| {
            bad("it has no key prefix (etcd://HOST:PORT[,HOST:PORT…]/PREFIX)".into())
        })?;
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            return Err(bad("its key prefix is empty".into()));
        }
        if prefix.chars().any(|c| c.is_control() || c == '#') {
            return Err(bad(
                "its key prefix contains control characters or '#'".into()
            ));
        }
        let mut endpoints = Vec::new();
        for host in hosts.split(',') {
            endpoints.push(check_endpoint(host).map_err(&bad)?);
        }
        let mut target = EtcdTarget {
            endpoints,
            prefix: prefix.to_string(),
            tls: None,
            auth: None,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        };
        let (mut ca, mut cert, mut key, mut domain, mut user) = (None, None, None, None, None);
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("option {pair:?} has no value (NAME=VALUE)")))?;
            if value.is_empty() {
                return Err(bad(format!("option {name} has an empty value")));
            }
            let number = || {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(format!("option {name} is not a positive number")))
            };
            match name {
                "ca" => ca = Some(PathBuf::from(value)),
                "cert" => cert = Some(PathBuf::from(value)),
                "key" => key = Some(PathBuf::from(value)),
                "domain" => domain = Some(value.to_string()),
                "user" => user = Some(value.to_string()),
                "max-txn-ops" => target.max_txn_ops = number()?,
                "max-request-bytes" => target.max_request_bytes = number()?,
                other => {
                    return Err(bad(format!(
                        "unknown option {other:?} (known: ca, cert, key, domain, user, \
                         max-txn-ops, max-request-bytes)"
                    )))
                }
            }
        }
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err(bad("options cert and key go together".into())),
        };
        target.tls = match ca {
            Some(ca) => Some(Tls {
                ca,
                identity,
                domain,
            }),
            None if identity.is_some() || domain.is_some() => {
                return Err(bad("options cert, key and domain need ca".into()))
            }
            None => None,
        };
        if let Some(user) = user {
            let password = password.ok_or_else(|| {
                bad(format!(
                    "option user needs the password in the environment variable {PASSWORD_ENV}"
                ))
            })?;
            target.auth = Some((user, password));
        }
        Ok(target)
    }

    /// Endpoint URLs for the client: `http://` or, with TLS, `https://`.
    pub fn endpoint_urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.endpoints
            .iter()
            .map(|e| format!("{scheme}://{e}"))
            .collect()
    }

    /// `etcd://` with the endpoints sorted and without options: one string
    /// per (cluster, prefix) however the URL was spelled, to key state kept
    /// about it (a node's rollback state).
    pub fn canonical(&self) -> String {
        let mut endpoints = self.endpoints.clone();
        endpoints.sort();
        endpoints.dedup();
        format!("etcd://{}/{}", endpoints.join(","), self.prefix)
    }

    /// The absolute etcd key of `rel` under this target's prefix: `PREFIX/rel`.
    pub fn key(&self, rel: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 1 + rel.len());
        k.extend_from_slice(self.prefix.as_bytes());
        k.push(b'/');
        k.extend_from_slice(rel);
        k
    }
}

/// Checks one `host:port` (host may be `[v6]`); returns it lower-cased.
fn check_endpoint(host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err("an endpoint is empty (HOST:PORT[,HOST:PORT…])".into());
    }
    let (name, port) = host
        .rsplit_once(':')
        .ok_or_else(|| format!("endpoint {host:?} has no port (HOST:PORT)"))?;
    let name_ok = if let Some(v6) = name.strip_prefix('[') {
        v6.strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    };
    if !name_ok {
        return Err(format!("endpoint {host:?} has an invalid host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(host.to_ascii_lowercase()),
        _ => Err(format!("endpoint {host:?} has an invalid port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<EtcdTarget, String> {
        EtcdTarget::parse_with_password(url, Some("pw".into())).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_endpoints_prefix_and_options() {
        let t = parse("etcd://b.example:2379,127.0.0.1:2380/apps/one/").unwrap();
        assert_eq!(t.endpoints, ["b.example:2379", "127.0.0.1:2380"]);
        assert_eq!(t.prefix, "apps/one");
        assert_eq!(
            t.canonical(),
            "etcd://127.0.0.1:2380,b.example:2379/apps/one"
        );
        assert_eq!(
            t.endpoint_urls(),
            ["http://b.example:2379", "http://127.0.0.1:2380"]
        );
        assert_eq!(t.key(b"x"), b"apps/one/x");
        assert!(t.tls.is_none() && t.auth.is_none());
        assert_eq!(t.max_txn_ops, 128);

        let t =
            parse("etcd://[::1]:2379/p?ca=/c.pem&cert=/a.pem&key=/k.pem&user=u&max-txn-ops=512")
                .unwrap();
        let tls = t.tls.clone().unwrap();
        assert_eq!(tls.ca, PathBuf::from("/c.pem"));
        assert_eq!(
            tls.identity,
            Some((PathBuf::from("/a.pem"), PathBuf::from("/k.pem")))
        );
        assert_eq!(t.endpoint_urls(), ["https://[::1]:2379"]);
        assert_eq!(t.auth, Some(("u".into(), "pw".into())));
        assert_eq!(t.max_txn_ops, 512);
        assert!(!format!("{t:?}").contains("pw"));
        // Same cluster and prefix, another spelling: same canonical form.
        assert_eq!(
            parse("etcd://127.0.0.1:2380,B.example:2379/apps/one?ca=/x")
                .unwrap()
                .canonical(),
            "etcd://127.0.0.1:2380,b.example:2379/apps/one"
        );
    }

    #[test]
    fn refuses_bad_urls_saying_why() {
        for (url, why) in [
            ("http://h:1/p", "does not start with etcd://"),
            ("etcd://h:1", "has no key prefix"),
            ("etcd://h:1/", "key prefix is empty"),
            ("etcd://h:1//", "key prefix is empty"),
            ("etcd://h/p", "has no port"),
            ("etcd://h:x/p", "invalid port"),
            ("etcd://h:0/p", "invalid port"),
            ("etcd://:1/p", "invalid host"),
            ("etcd://h:1,/p", "an endpoint is empty"),
            ("etcd://h:1/p?cert=/a", "cert and key go together"),
            ("etcd://h:1/p?cert=/a&key=/b", "need ca"),
            ("etcd://h:1/p?tls=1", "unknown option"),
            ("etcd://h:1/p?ca", "has no value"),
            ("etcd://h:1/p?ca=", "empty value"),
            ("etcd://h:1/p?max-txn-ops=0", "not a positive number"),
        ] {
            let e = parse(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = EtcdTarget::parse_with_password("etcd://h:1/p?user=u", None).unwrap_err();
        assert!(e.to_string().contains(PASSWORD_ENV), "{e}");
    }
}
