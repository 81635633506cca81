//! Components in warden: `wasi:cli/command` components for WASI 0.2 and 0.3
//! run on wasmtime-wasi under warden's policy, with `wasi:filesystem`
//! served from the kernel's VFS (so host, virtual and sealed mounts work
//! for both ABIs) and network and HTTP only to allow-listed addresses.

pub mod ctx;
pub mod fs;
pub mod http;
pub mod linker;
mod run;
pub mod stdio;
pub mod trace;
pub mod world;

pub use run::{
    engine_config, import_error, is_component, one_line, ComponentError, ComponentRunOptions,
    Components, Loaded,
};
pub use world::World;
