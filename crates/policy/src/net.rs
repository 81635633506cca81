//! Network allow-lists: which addresses a guest may bind or connect to
//! ([`NetRule`]) and which origins it may send HTTP requests to
//! ([`HttpOrigin`]). An empty list grants nothing.

use crate::PolicyError;
use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Addresses a guest may bind or connect to: a network (one address is a
/// `/32` or `/128`) and one port or any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetRule {
    pub net: IpNet,
    /// `None`: any port.
    pub port: Option<u16>,
}

impl NetRule {
    pub fn allows(&self, addr: &SocketAddr) -> bool {
        self.net.contains(&addr.ip()) && self.port.is_none_or(|p| p == addr.port())
    }

    /// Every address `self` allows is allowed by `wider`.
    pub fn within(&self, wider: &NetRule) -> bool {
        wider.net.contains(&self.net) && (wider.port.is_none() || wider.port == self.port)
    }
}

impl FromStr for NetRule {
    type Err = PolicyError;

    /// `ADDR`, `ADDR:PORT`, `[V6]:PORT`, `NET/LEN` or `NET/LEN:PORT`
    /// (`[V6NET/LEN]:PORT` for IPv6 with a port); `PORT` may be `*`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| PolicyError::BadValue {
            key: format!("network rule `{s}`"),
            reason: reason.into(),
        };
        let net = |text: &str| -> Option<IpNet> {
            text.parse::<IpNet>()
                .ok()
                .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
        };
        let port = |text: &str| -> Result<Option<u16>, PolicyError> {
            if text == "*" {
                return Ok(None);
            }
            match text.parse::<u16>() {
                Ok(p) => Ok(Some(p)),
                Err(_) => Err(bad("the port must be a number from 0 to 65535, or `*`")),
            }
        };
        if let Some(n) = net(s) {
            return Ok(NetRule { net: n, port: None });
        }
        if let Some(rest) = s.strip_prefix('[') {
            let (inner, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("a `[` without its `]`"))?;
            let p = after
                .strip_prefix(':')
                .ok_or_else(|| bad("expected `:PORT` after `]`"))?;
            let n = net(inner).ok_or_else(|| bad("not an IPv6 address or network"))?;
            return Ok(NetRule {
                net: n,
                port: port(p)?,
            });
        }
        let (host, p) = s
            .rsplit_once(':')
            .ok_or_else(|| bad("expected an address or network, e.g. 127.0.0.1:8080 or 10.0.0.0/8 (host names are not accepted)"))?;
        let n = net(host).ok_or_else(|| {
            bad("expected an IP address or network before the port (host names are not accepted)")
        })?;
        Ok(NetRule {
            net: n,
            port: port(p)?,
        })
    }
}

impl fmt::Display for NetRule {
    /// The canonical spelling: networks truncated, one address without
    /// its prefix length, IPv6 in brackets when a port follows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let net = self.net.trunc();
        let host = if net.prefix_len() == net.max_prefix_len() {
            net.addr().to_string()
        } else {
            net.to_string()
        };
        match (self.port, net) {
            (None, _) => f.write_str(&host),
            (Some(p), IpNet::V6(_)) => write!(f, "[{host}]:{p}"),
            (Some(p), IpNet::V4(_)) => write!(f, "{host}:{p}"),
        }
    }
}

/// One host pattern of an HTTP origin: a name, `*.suffix` or `*`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostPattern {
    Any,
    /// `*.example.com`: any name below `example.com` (not itself).
    Subdomains(String),
    Exact(String),
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => *h == host,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }

    fn within(&self, wider: &HostPattern) -> bool {
        match (self, wider) {
            (_, HostPattern::Any) => true,
            (HostPattern::Exact(h), w) => w.matches(h),
            (HostPattern::Subdomains(a), HostPattern::Subdomains(b)) => {
                a == b || HostPattern::Subdomains(b.clone()).matches(a)
            }
            _ => false,
        }
    }
}

/// An origin a guest may send HTTP requests to, as in Spin's
/// `allowed_outbound_hosts`: `https://api.example.com`,
/// `https://*.example.com`, `http://127.0.0.1:8080`, `*://example.com:*`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpOrigin {
    /// `http` or `https`; `None` for `*`.
    pub scheme: Option<String>,
    pub host: HostPattern,
    /// `None` for `*`; an origin without a port has its scheme's default.
    pub port: Option<u16>,
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "http" {
        80
    } else {
        443
    }
}

impl HttpOrigin {
    /// Whether a request to `scheme://host:port` may go out.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.host.matches(host)
            && self.port.is_none_or(|p| p == port)
    }

    /// Every request `self` allows is allowed by `wider`.
    pub fn within(&self, wider: &HttpOrigin) -> bool {
        (wider.scheme.is_none() || wider.scheme == self.scheme)
            && self.host.within(&wider.host)
            && (wider.port.is_none() || wider.port == self.port)
    }
}

impl FromStr for HttpOrigin {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| PolicyError::BadValue {
            key: format!("HTTP origin `{s}`"),
            reason: reason.into(),
        };
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("expected SCHEME://HOST[:PORT], e.g. https://api.example.com"))?;
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_string()),
            _ => return Err(bad("the scheme must be http, https or *")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(bad(
                "an origin has no path, query or user part: give SCHEME://HOST[:PORT] only",
            ));
        }
        // `[v6]:port`, `host:port` or `host`.
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6.split_once(']').ok_or_else(|| bad("a `[` without `]`"))?;
                (h, after.strip_prefix(':'))
            }
            None => match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            },
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            HostPattern::Subdomains(suffix.to_string())
        } else if host.contains('*') {
            return Err(bad(
                "`*` may only be the whole host or its first label (`*.example.com`)",
            ));
        } else {
            HostPattern::Exact(host)
        };
        let port = match port {
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| bad("the port must be a number from 0 to 65535, or `*`"))?,
            ),
            None => match &scheme {
                Some(s) => Some(default_port(s)),
                None => return Err(bad("with scheme `*`, give the port too (`:*` for any)")),
            },
        };
        Ok(HttpOrigin { scheme, host, port })
    }
}

impl fmt::Display for HttpOrigin {
    /// The canonical spelling: every part explicit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.as_deref().unwrap_or("*");
        let host = match &self.host {
            HostPattern::Any => "*".to_string(),
            HostPattern::Subdomains(s) => format!("*.{s}"),
            HostPattern::Exact(h) if h.contains(':') => format!("[{h}]"),
            HostPattern::Exact(h) => h.clone(),
        };
        match self.port {
            Some(p) => write!(f, "{scheme}://{host}:{p}"),
            None => write!(f, "{scheme}://{host}:*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn net_rules_parse_and_match() {
        let one: NetRule = "127.0.0.1:8080".parse().unwrap();
        assert!(one.allows(&addr("127.0.0.1:8080")));
        assert!(!one.allows(&addr("127.0.0.1:8081")));
        let net: NetRule = "10.0.0.0/8".parse().unwrap();
        assert!(net.allows(&addr("10.2.3.4:1")));
        assert!(!net.allows(&addr("11.0.0.1:1")));
        let v6: NetRule = "[::1]:80".parse().unwrap();
        assert!(v6.allows(&addr("[::1]:80")));
        assert_eq!(v6.to_string(), "[::1]:80");
        assert_eq!(
            "10.1.2.3/8:*".parse::<NetRule>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert!(one.within(&"127.0.0.0/8".parse().unwrap()));
        assert!(!net.within(&one));
        for bad in ["localhost:80", "1.2.3.4:99999", "[::1", "10.0.0.0/40"] {
            let err = bad.parse::<NetRule>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn origins_parse_and_match() {
        let o: HttpOrigin = "https://api.example.com".parse().unwrap();
        assert!(o.allows("https", "api.example.com", 443));
        assert!(!o.allows("http", "api.example.com", 80));
        assert!(!o.allows("https", "api.example.com", 8443));
        assert_eq!(o.to_string(), "https://api.example.com:443");
        let w: HttpOrigin = "https://*.example.com".parse().unwrap();
        assert!(w.allows("https", "a.b.example.com", 443));
        assert!(!w.allows("https", "example.com", 443));
        assert!(!w.allows("https", "evilexample.com", 443));
        assert!(o.within(&w));
        assert!(!w.within(&o));
        let any: HttpOrigin = "*://127.0.0.1:*".parse().unwrap();
        assert!(any.allows("http", "127.0.0.1", 1234));
        assert!(o.within(&"*://*:*".parse().unwrap()));
        for bad in [
            "example.com",
            "ftp://x",
            "https://x/path",
            "https://a*b.com",
            "*://x",
        ] {
            let err = bad.parse::<HttpOrigin>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
