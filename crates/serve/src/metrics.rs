//! Prometheus metrics of the host, per app, served on their own listener.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppLabel {
    pub app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub app: String,
    pub status: u16,
}

fn seconds_histogram() -> Histogram {
    // 50 µs .. ~100 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 22))
}

fn bytes_histogram() -> Histogram {
    // 64 KiB .. 4 GiB.
    Histogram::new(exponential_buckets(65536.0, 2.0, 17))
}

/// Every metric of the server; apps get their labelled series on first use.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<StatusLabels, Counter>,
    pub latency: Family<AppLabel, Histogram, fn() -> Histogram>,
    pub instantiation: Family<AppLabel, Histogram, fn() -> Histogram>,
    pub fuel: Family<AppLabel, Counter>,
    pub memory_peak: Family<AppLabel, Histogram, fn() -> Histogram>,
    pub memory_in_use: Family<AppLabel, Gauge<u64, AtomicU64>>,
    pub kv_operations: Family<AppLabel, Counter>,
    pub traps: Family<AppLabel, Counter>,
    pub timeouts: Family<AppLabel, Counter>,
    pub rejected: Family<AppLabel, Counter>,
    pub deploys: Counter,
    pub deploy_failures: Counter,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("warden");
        let requests = Family::<StatusLabels, Counter>::default();
        let latency = Family::<AppLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let instantiation = Family::<AppLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let fuel = Family::<AppLabel, Counter>::default();
        let memory_peak = Family::<AppLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            bytes_histogram as fn() -> Histogram,
        );
        let memory_in_use = Family::<AppLabel, Gauge<u64, AtomicU64>>::default();
        let kv_operations = Family::<AppLabel, Counter>::default();
        let traps = Family::<AppLabel, Counter>::default();
        let timeouts = Family::<AppLabel, Counter>::default();
        let rejected = Family::<AppLabel, Counter>::default();
        let deploys = Counter::default();
        let deploy_failures = Counter::default();
        registry.register(
            "requests",
            "HTTP requests by app and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to the response head, by app",
            latency.clone(),
        );
        registry.register(
            "instantiation_seconds",
            "Time to instantiate a request's instance, by app",
            instantiation.clone(),
        );
        registry.register(
            "fuel_consumed",
            "Fuel consumed by requests, by app",
            fuel.clone(),
        );
        registry.register(
            "memory_peak_bytes",
            "Linear memory a request's instance reached, by app",
            memory_peak.clone(),
        );
        registry.register(
            "memory_in_use_bytes",
            "Linear memory of an app's live instances",
            memory_in_use.clone(),
        );
        registry.register(
            "kv_operations",
            "wasi:keyvalue operations, by app",
            kv_operations.clone(),
        );
        registry.register(
            "traps",
            "Requests stopped by a trap or a limit, by app",
            traps.clone(),
        );
        registry.register(
            "timeouts",
            "Requests stopped at their time limit, by app",
            timeouts.clone(),
        );
        registry.register(
            "rejected",
            "Requests refused before reaching the app (concurrency cap, body size), by app",
            rejected.clone(),
        );
        registry.register("deploys", "Deployments applied", deploys.clone());
        registry.register(
            "deploy_failures",
            "Deployments refused (the previous one kept serving)",
            deploy_failures.clone(),
        );
        Arc::new(Metrics {
            registry,
            requests,
            latency,
            instantiation,
            fuel,
            memory_peak,
            memory_in_use,
            kv_operations,
            traps,
            timeouts,
            rejected,
            deploys,
            deploy_failures,
        })
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub fn app(name: &str) -> AppLabel {
    AppLabel {
        app: name.to_string(),
    }
}

/// One app's series, looked up once when the app loads rather than at
/// every request.
pub struct AppMetrics {
    all: Arc<Metrics>,
    app: String,
    /// `requests{status="200"}`, the common case.
    ok: Counter,
    pub latency: Histogram,
    pub instantiation: Histogram,
    pub fuel: Counter,
    pub memory_peak: Histogram,
    pub memory_in_use: Gauge<u64, AtomicU64>,
    pub kv_operations: Counter,
    pub traps: Counter,
    pub timeouts: Counter,
    pub rejected: Counter,
}

impl AppMetrics {
    pub fn new(all: &Arc<Metrics>, name: &str) -> AppMetrics {
        let label = app(name);
        AppMetrics {
            ok: all
                .requests
                .get_or_create(&StatusLabels {
                    app: name.to_string(),
                    status: 200,
                })
                .clone(),
            latency: all.latency.get_or_create(&label).clone(),
            instantiation: all.instantiation.get_or_create(&label).clone(),
            fuel: all.fuel.get_or_create(&label).clone(),
            memory_peak: all.memory_peak.get_or_create(&label).clone(),
            memory_in_use: all.memory_in_use.get_or_create(&label).clone(),
            kv_operations: all.kv_operations.get_or_create(&label).clone(),
            traps: all.traps.get_or_create(&label).clone(),
            timeouts: all.timeouts.get_or_create(&label).clone(),
            rejected: all.rejected.get_or_create(&label).clone(),
            all: all.clone(),
            app: name.to_string(),
        }
    }

    /// Counts a request answered with `status`.
    pub fn request(&self, status: u16) {
        if status == 200 {
            self.ok.inc();
        } else {
            self.all
                .requests
                .get_or_create(&StatusLabels {
                    app: self.app.clone(),
                    status,
                })
                .inc();
        }
    }
}
