//! Routes as in Spin: an exact path (`/hello`) or a prefix (`/payments/...`,
//! `/...` for everything); an exact route beats every prefix, and the
//! longest prefix wins. `/.well-known/warden/` is warden's own.

use std::fmt;
use std::str::FromStr;

/// Paths under this prefix are answered by warden, never by an app.
pub const RESERVED_PREFIX: &str = "/.well-known/warden/";

/// Where an app is routed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Exactly this path.
    Exact(String),
    /// This path and everything under it; stored without the trailing
    /// `/...` (empty: every path).
    Prefix(String),
}

impl FromStr for Route {
    type Err = String;

    fn from_str(text: &str) -> Result<Route, String> {
        if !text.starts_with('/') {
            return Err(format!("route `{text}` must start with `/`"));
        }
        let route = match text.strip_suffix("/...") {
            Some(prefix) => Route::Prefix(prefix.to_string()),
            None => Route::Exact(text.to_string()),
        };
        let path = route.path();
        if path.contains("...") || path.contains('*') || path.contains(['?', '#']) {
            return Err(format!(
                "route `{text}`: only a trailing `/...` may stand for the rest of the path"
            ));
        }
        if path.len() > 1 && path.ends_with('/') {
            return Err(format!("route `{text}` must not end with `/`"));
        }
        let reserved = RESERVED_PREFIX.trim_end_matches('/');
        if path == reserved || path.starts_with(RESERVED_PREFIX) {
            return Err(format!(
                "route `{text}`: `{RESERVED_PREFIX}` is reserved for warden"
            ));
        }
        Ok(route)
    }
}

impl Route {
    /// The path, or the prefix without `/...`.
    pub fn path(&self) -> &str {
        match self {
            Route::Exact(p) | Route::Prefix(p) => p,
        }
    }

    /// For a path this route matches, the rest of it after the route
    /// (`""` for an exact match).
    pub fn matches<'p>(&self, path: &'p str) -> Option<&'p str> {
        match self {
            Route::Exact(p) => (path == p).then_some(""),
            Route::Prefix(p) => {
                let rest = path.strip_prefix(p.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then_some(rest)
            }
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Exact(p) => f.write_str(p),
            Route::Prefix(p) => write!(f, "{p}/..."),
        }
    }
}

/// Routes to the index of their app, most specific first.
#[derive(Clone, Debug, Default)]
pub struct Router {
    /// (route, app index), exact routes first, then prefixes longest first.
    routes: Vec<(Route, usize)>,
}

/// What a request path matched.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub app: usize,
    pub route: &'a Route,
    /// The part of the path after the route.
    pub path_info: String,
}

impl Router {
    pub fn new(routes: impl IntoIterator<Item = (Route, usize)>) -> Router {
        let mut routes: Vec<(Route, usize)> = routes.into_iter().collect();
        routes.sort_by(|(a, _), (b, _)| match (a, b) {
            (Route::Exact(_), Route::Prefix(_)) => std::cmp::Ordering::Less,
            (Route::Prefix(_), Route::Exact(_)) => std::cmp::Ordering::Greater,
            (Route::Exact(x), Route::Exact(y)) => x.cmp(y),
            (Route::Prefix(x), Route::Prefix(y)) => y.len().cmp(&x.len()).then(x.cmp(y)),
        });
        Router { routes }
    }

    /// The most specific route for `path` (the path of the URL, without
    /// its query).
    pub fn lookup(&self, path: &str) -> Option<RouteMatch<'_>> {
        self.routes.iter().find_map(|(route, app)| {
            route.matches(path).map(|rest| RouteMatch {
                app: *app,
                route,
                path_info: rest.to_string(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[&str]) -> Router {
        Router::new(
            routes
                .iter()
                .enumerate()
                .map(|(i, r)| (r.parse::<Route>().unwrap(), i)),
        )
    }

    #[test]
    fn exact_beats_prefix_and_longest_prefix_wins() {
        let r = router(&["/...", "/api/...", "/api/users/...", "/api/users/me"]);
        let app = |p: &str| r.lookup(p).map(|m| (m.app, m.path_info));
        assert_eq!(app("/"), Some((0, "/".into())));
        assert_eq!(app("/other"), Some((0, "/other".into())));
        assert_eq!(app("/api"), Some((1, "".into())));
        assert_eq!(app("/api/x"), Some((1, "/x".into())));
        assert_eq!(app("/apix"), Some((0, "/apix".into())));
        assert_eq!(app("/api/users/7"), Some((2, "/7".into())));
        assert_eq!(app("/api/users/me"), Some((3, "".into())));
        assert_eq!(app("/api/users/me/x"), Some((2, "/me/x".into())));
    }

    #[test]
    fn no_match_is_none() {
        let r = router(&["/hello", "/pay/..."]);
        assert!(r.lookup("/hello/").is_none());
        assert!(r.lookup("/payx").is_none());
        assert!(r.lookup("/").is_none());
    }

    #[test]
    fn bad_routes_are_refused() {
        for bad in [
            "x",
            "/a/.../b",
            "/a*",
            "/a/",
            "/.well-known/warden/x",
            "/.well-known/warden/...",
        ] {
            assert!(bad.parse::<Route>().is_err(), "{bad}");
        }
        assert_eq!("/...".parse::<Route>().unwrap().to_string(), "/...");
        assert_eq!("/".parse::<Route>(), Ok(Route::Exact("/".into())));
    }
}
