//! What kind of component a file holds, from its exports.

use wasmtime::component::Component;
use wasmtime::Engine;

/// The world a component targets, as far as warden runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum World {
    /// `wasi:cli/command` for WASI 0.2: exports `wasi:cli/run@0.2.x`.
    CommandP2,
    /// `wasi:cli/command` for WASI 0.3: exports `wasi:cli/run@0.3.x`.
    CommandP3,
    /// An HTTP handler (`wasi:http/incoming-handler@0.2` or
    /// `wasi:http/handler@0.3`): served by `warden serve`, not run.
    HttpHandler(String),
    /// Anything else: the names of its exports.
    Other(Vec<String>),
}

impl World {
    /// The HTTP handler a component exports (`wasi:http/incoming-handler`
    /// 0.2 or `wasi:http/handler` 0.3), whatever else it exports: a
    /// service may also export `wasi:cli/run`, as `wasmtime serve -Scli`
    /// allows.
    pub fn http_handler(engine: &Engine, component: &Component) -> Option<String> {
        match World::of(engine, component) {
            World::HttpHandler(export) => Some(export),
            _ => component
                .component_type()
                .exports(engine)
                .map(|(name, _)| name.to_string())
                .find(|e| {
                    e.starts_with("wasi:http/incoming-handler@0.2")
                        || e.starts_with("wasi:http/handler@0.3")
                }),
        }
    }

    /// The component's world, from its exports.
    pub fn of(engine: &Engine, component: &Component) -> World {
        let exports: Vec<String> = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let find = |interface: &str, major: &str| {
            exports
                .iter()
                .find(|e| {
                    e.strip_prefix(interface)
                        .and_then(|rest| rest.strip_prefix('@'))
                        .is_some_and(|v| v.starts_with(major))
                })
                .cloned()
        };
        if find("wasi:cli/run", "0.3").is_some() {
            World::CommandP3
        } else if find("wasi:cli/run", "0.2").is_some() {
            World::CommandP2
        } else if let Some(handler) =
            find("wasi:http/incoming-handler", "0.2").or_else(|| find("wasi:http/handler", "0.3"))
        {
            World::HttpHandler(handler)
        } else {
            World::Other(exports)
        }
    }

    /// Why `warden run` does not run this world, if it does not.
    pub fn not_runnable(&self) -> Option<String> {
        match self {
            World::CommandP2 | World::CommandP3 => None,
            World::HttpHandler(export) => Some(format!(
                "it is an HTTP handler (exports `{export}`); `warden run` runs `wasi:cli/command` components (exporting `wasi:cli/run`), HTTP handlers are served by `warden serve`"
            )),
            World::Other(exports) => Some(format!(
                "its world is not `wasi:cli/command` (it exports {}); `warden run` runs components that export `wasi:cli/run@0.2` or `@0.3`",
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports
                        .iter()
                        .map(|e| format!("`{e}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
        }
    }
}
