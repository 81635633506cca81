//! `wasi:logging@0.1.0-draft`: each call is a line of the host log at once,
//! tagged with the app and the level.

use std::sync::Arc;
use wasmtime::component::{HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/logging",
        world: "imports",
    });
}

use bindings::wasi::logging::logging::{self, Level};

/// What `wasi:logging` needs of a request's store: the app's name.
pub struct AppLog {
    pub app: Arc<str>,
}

impl logging::Host for AppLog {
    fn log(&mut self, level: Level, context: String, message: String) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Critical => "critical",
        };
        let what = if context.is_empty() {
            format!("log {level}")
        } else {
            format!("log {level} {context}")
        };
        crate::log::line(&self.app, &what, &message);
    }
}

struct HasLog;

impl HasData for HasLog {
    type Data<'a> = &'a mut AppLog;
}

/// Links `wasi:logging/logging`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut AppLog,
) -> wasmtime::Result<()> {
    logging::add_to_linker::<T, HasLog>(linker, get)
}
