//! `--trace` for components: one line per import call, with the interface,
//! the function, the decoded arguments, the result and how long it took,
//! in the kernel's trace format.
//!
//! wasmtime's generated bindings already describe every host call they
//! make: a `wit-bindgen import` span around it, an event `call` with the
//! arguments and an event `return` with the result (wasmtime-wasi and
//! wasmtime-wasi-http are generated with `tracing`, and so are the
//! bindings warden's filesystem implements). This layer turns those into
//! trace lines; functions the policy replaces (see `linker`) write their
//! own line.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use warden_kernel::trace::Tracer;

/// The one process a component is, in trace lines.
pub const CAGE: u32 = 1;

/// The name wasmtime's bindings give the span of a host call.
const IMPORT_SPAN: &str = "wit-bindgen import";

/// Writes a trace line for every import call made while it is installed.
pub struct ImportTrace {
    tracer: Arc<Tracer>,
}

impl ImportTrace {
    pub fn new(tracer: Arc<Tracer>) -> ImportTrace {
        ImportTrace { tracer }
    }

    /// A subscriber with only this layer, to install around a run.
    pub fn subscriber(tracer: Arc<Tracer>) -> impl Subscriber + Send + Sync {
        use tracing_subscriber::layer::SubscriberExt;
        tracing_subscriber::registry().with(ImportTrace::new(tracer))
    }
}

/// One host call in flight: where it is, what it was given.
struct Call {
    interface: String,
    function: String,
    args: String,
    start: Instant,
}

/// `wasi:filesystem/types@0.2` from the span's interface (`types`, which
/// several packages share) and the generated code's module path
/// (`…::p2::bindings::…::wasi::filesystem::types`), which names the
/// package and the WASI version.
fn interface_of(target: &str, interface: &str) -> String {
    let version = if target.contains("::p3::") {
        "@0.3"
    } else {
        "@0.2"
    };
    let parts: Vec<&str> = target.split("::").collect();
    match parts.iter().rposition(|p| *p == "wasi") {
        Some(i) if parts.len() >= i + 3 => format!("wasi:{}/{interface}{version}", parts[i + 1]),
        _ => interface.to_string(),
    }
}

/// Collects a span's or an event's fields.
#[derive(Default)]
struct Fields {
    message: String,
    module: String,
    function: String,
    result: Option<String>,
    /// `name=value, …` of every other field.
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "module" => self.module = format!("{value:?}").trim_matches('"').to_string(),
            "function" => self.function = format!("{value:?}").trim_matches('"').to_string(),
            "result" => self.result = Some(format!("{value:?}")),
            name => {
                if !self.rest.is_empty() {
                    self.rest.push_str(", ");
                }
                let _ = write!(self.rest, "{name}={value:?}");
            }
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "module" => self.module = value.to_string(),
            "function" => self.function = value.to_string(),
            _ => self.record_debug(field, &value),
        }
    }
}

impl<S> Layer<S> for ImportTrace
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != IMPORT_SPAN {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Call {
                interface: interface_of(attrs.metadata().target(), &fields.module),
                function: fields.function,
                args: String::new(),
                start: Instant::now(),
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(call) = extensions.get_mut::<Call>() else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        match fields.message.as_str() {
            "call" => {
                call.args = fields.rest;
                call.start = Instant::now();
            }
            "return" => {
                let line = format!("{}#{}({})", call.interface, call.function, call.args);
                let result = fields.result.unwrap_or_else(|| "()".into());
                self.tracer.line(CAGE, &line, &result, call.start.elapsed());
            }
            _ => {}
        }
    }
}

/// The line of a call the policy refused before any host code ran.
pub fn denied(tracer: &Tracer, function: &str, subsystem: &str) {
    tracer.line(
        CAGE,
        &format!("{function}(..)"),
        &format!("stopped: denied by policy ({subsystem})"),
        Duration::ZERO,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_are_named_from_the_generated_module() {
        assert_eq!(
            interface_of(
                "wasmtime_wasi::p2::bindings::async_io::wasi::filesystem::types",
                "types"
            ),
            "wasi:filesystem/types@0.2"
        );
        assert_eq!(
            interface_of(
                "wasmtime_wasi::p3::bindings::generated::wasi::clocks::monotonic_clock",
                "monotonic-clock"
            ),
            "wasi:clocks/monotonic-clock@0.3"
        );
        assert_eq!(interface_of("elsewhere", "types"), "types");
    }
}
