//! `warden run` for components: the same policy, flags and exit codes as
//! for core modules, run by `warden-components`.

use crate::Failure;
use std::path::Path;
use warden_components::{ComponentError, ComponentRunOptions, Components};
use warden_kernel::{CacheMode, EngineSettings};
use warden_policy::Policy;

fn failure(e: ComponentError) -> Failure {
    if e.is_bad_input() {
        Failure::bad_input(e)
    } else {
        Failure::host(e)
    }
}

/// Whether the file at `path` is a component, from its header; `false`
/// when it cannot be read (the module loader then says why). Only a
/// regular file is opened here: a FIFO or a device is read once, by the
/// loader, or its first bytes would be lost.
pub fn is_component_file(path: &Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut header = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
        && warden_components::is_component(&header)
}

/// Loads and runs the component at `path` (or its `bytes`, from a bundle
/// or already read) under `policy`.
pub fn run(
    path: &Path,
    bytes: Option<&[u8]>,
    policy: &Policy,
    cache: &CacheMode,
    options: ComponentRunOptions,
) -> Result<u8, Failure> {
    let components = Components::new(EngineSettings {
        fuel: policy.limits.fuel.is_some(),
        max_stack: policy.limits.max_stack,
    })
    .map_err(|e| Failure::host(format!("{e:#}")))?;
    let mut progress = crate::run::progress(path);
    let loaded = match bytes {
        Some(bytes) => components.load(path, bytes, cache, &mut progress),
        None => components.load_file(path, cache, &mut progress),
    }
    .map_err(failure)?;
    let store = options.store.clone();
    let outcome = components
        .run(path, &loaded, policy, options)
        .map_err(failure)?;
    if let Some(message) = outcome.message() {
        eprintln!("warden: {message}");
    }
    // As for modules (see `run::run`): the run's sealed writes made durable.
    if let Some(store) = store {
        store.flush().map_err(Failure::host)?;
    }
    Ok(outcome.exit_code() as u8)
}
