//! The set of apps being served, swapped whole: a redeploy loads what
//! changed, keeps what did not, and replaces the set in one step, so a
//! request sees the old set or the new one, never half of each. Requests
//! in flight keep the app they started with.

use crate::app::{App, FileStamp, LoadError, Runtime};
use crate::manifest::{AppSpec, Manifest};
use crate::published::Subscription;
use crate::route::{RouteMatch, Router};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use wasmtime::component::Component;

/// The apps and their routes.
#[derive(Default)]
pub struct Deployment {
    pub apps: Vec<Arc<App>>,
    router: Router,
}

impl Deployment {
    /// Loads `specs`, reusing the apps of `old` whose spec and file did
    /// not change. The first app that fails to load fails it all.
    pub fn build(
        rt: &Runtime,
        specs: Vec<AppSpec>,
        old: &Deployment,
    ) -> Result<Deployment, LoadError> {
        let mut apps = Vec::with_capacity(specs.len());
        let mut compiled: HashMap<String, Component> = old
            .apps
            .iter()
            .map(|a| (a.code_digest.clone(), a.component.clone()))
            .collect();
        for spec in specs {
            let same = old.apps.iter().find(|a| {
                a.spec == spec && a.stamp.is_some() && a.stamp == FileStamp::of(&spec.component)
            });
            apps.push(match same {
                Some(app) => app.clone(),
                None => Arc::new(App::load(rt, spec, &mut compiled)?),
            });
        }
        let router = Router::new(
            apps.iter()
                .enumerate()
                .map(|(i, a)| (a.spec.route.clone(), i)),
        );
        Ok(Deployment { apps, router })
    }

    pub fn lookup(&self, path: &str) -> Option<(Arc<App>, RouteMatch<'_>)> {
        let m = self.router.lookup(path)?;
        Some((self.apps[m.app].clone(), m))
    }
}

/// Where the apps come from.
#[derive(Clone)]
pub enum Source {
    /// A manifest, read again on every redeploy.
    Manifest(PathBuf),
    /// One component on every path (`warden serve COMPONENT`).
    Single(Box<AppSpec>),
    /// What `warden deploy` published in etcd, for every node
    /// (`crate::published`).
    Published(Arc<Subscription>),
}

/// Runs on every deployment before it serves (attested TLS appends it to
/// the deployment log and makes its certificate); an error refuses it.
pub type DeployHook = Arc<dyn Fn(&Deployment) -> Result<(), String> + Send + Sync>;

/// The live deployment, and how to make the next one.
pub struct Deployer {
    rt: Runtime,
    source: Source,
    on_deploy: Option<DeployHook>,
    current: RwLock<Arc<Deployment>>,
    /// The watched files as they were at the last deployment or attempt:
    /// a redeploy that failed is not tried again until a file changes.
    seen: RwLock<Vec<Option<FileStamp>>>,
    /// For a published source: the revision of the publication last
    /// deployed or tried.
    seen_revision: AtomicI64,
}

impl Deployer {
    /// The first deployment: any failure is fatal (nothing is served).
    pub fn start(
        rt: Runtime,
        source: Source,
        on_deploy: Option<DeployHook>,
    ) -> Result<Deployer, String> {
        let (specs, revision) = read_source(&source)?;
        let deployment =
            Deployment::build(&rt, specs, &Deployment::default()).map_err(|e| e.to_string())?;
        if let Some(hook) = &on_deploy {
            hook(&deployment)?;
        }
        let deployer = Deployer {
            rt,
            source,
            on_deploy,
            current: RwLock::new(Arc::new(deployment)),
            seen: RwLock::new(Vec::new()),
            seen_revision: AtomicI64::new(revision),
        };
        *deployer.seen.write().unwrap_or_else(|e| e.into_inner()) = deployer.watched();
        Ok(deployer)
    }

    pub fn current(&self) -> Arc<Deployment> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the source again and swaps the deployment in; on failure the
    /// old one keeps serving and the error says why.
    pub fn redeploy(&self) -> Result<usize, String> {
        let seen = self.watched();
        let result = self.deploy_next();
        if let Ok((_, revision)) = &result {
            self.seen_revision.store(*revision, Ordering::SeqCst);
        }
        let result = result.map(|(count, _)| count);
        *self.seen.write().unwrap_or_else(|e| e.into_inner()) = match result {
            Ok(_) => self.watched(),
            Err(_) => seen,
        };
        result
    }

    fn deploy_next(&self) -> Result<(usize, i64), String> {
        let (specs, revision) = match read_source(&self.source) {
            Ok(read) => read,
            Err(e) => {
                // A publication that cannot be read is not tried again
                // until a newer one appears.
                if let Source::Published(subscription) = &self.source {
                    if let Ok(revision) = subscription.revision() {
                        self.seen_revision.store(revision, Ordering::SeqCst);
                    }
                }
                return Err(e);
            }
        };
        if let Source::Published(_) = &self.source {
            // Tried once, whatever the outcome.
            self.seen_revision.store(revision, Ordering::SeqCst);
        }
        let old = self.current();
        let next = Deployment::build(&self.rt, specs, &old).map_err(|e| e.to_string())?;
        let changed = next.apps.len() != old.apps.len()
            || next
                .apps
                .iter()
                .zip(&old.apps)
                .any(|(a, b)| !Arc::ptr_eq(a, b));
        let count = next.apps.len();
        if let (true, Some(hook)) = (changed, &self.on_deploy) {
            hook(&next)?;
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        if changed {
            self.rt.metrics.deploys.inc();
        }
        Ok((count, revision))
    }

    /// Whether the manifest or a component file changed since the last
    /// deployment or attempt.
    pub fn changed(&self) -> bool {
        if let Source::Published(subscription) = &self.source {
            // An unreachable cluster is no change: the apps keep serving
            // and the next look tries again.
            return subscription
                .revision()
                .is_ok_and(|r| r != self.seen_revision.load(Ordering::SeqCst));
        }
        *self.seen.read().unwrap_or_else(|e| e.into_inner()) != self.watched()
    }

    /// The revision of the publication deployed (or last tried), for a
    /// published source.
    pub fn published_revision(&self) -> Option<i64> {
        match &self.source {
            Source::Published(_) => Some(self.seen_revision.load(Ordering::SeqCst)),
            _ => None,
        }
    }

    /// The stamps of the manifest and of the deployed apps' files.
    fn watched(&self) -> Vec<Option<FileStamp>> {
        let mut stamps = Vec::new();
        if let Source::Manifest(path) = &self.source {
            stamps.push(FileStamp::of(path));
        }
        stamps.extend(
            self.current()
                .apps
                .iter()
                .map(|a| FileStamp::of(&a.spec.component)),
        );
        stamps
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.rt.metrics
    }
}

/// The apps of `source`, and the revision of a published one (else 0).
fn read_source(source: &Source) -> Result<(Vec<AppSpec>, i64), String> {
    match source {
        Source::Manifest(path) => Ok((Manifest::load(path).map_err(|e| e.to_string())?.apps, 0)),
        Source::Single(spec) => Ok((vec![(**spec).clone()], 0)),
        Source::Published(subscription) => subscription.apps().map_err(|e| {
            format!(
                "the deployment published at {}: {e}",
                subscription.location()
            )
        }),
    }
}
