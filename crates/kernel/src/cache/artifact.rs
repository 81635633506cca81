//! What the compile cache keeps: compiled core modules and compiled
//! components, and the one entry point components use
//! ([`CacheMode::get_or_compile`]).

use super::{CacheMode, CompileEvent, ModuleFile};
use sha2::{Digest, Sha256};
use std::time::Instant;
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// Compiled code the cache can keep.
pub trait Artifact: Sized {
    fn serialize(&self) -> wasmtime::Result<Vec<u8>>;

    /// # Safety
    /// As [`Module::deserialize`]: `bytes` must be what `serialize` made
    /// (the cache checks their MAC first).
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self>;

    /// # Safety
    /// As [`Module::deserialize_file`]: the file must hold what `serialize`
    /// made and not change while it is in use.
    unsafe fn deserialize_file(engine: &Engine, path: &std::path::Path) -> wasmtime::Result<Self>;
}

impl Artifact for Module {
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Module::serialize(self)
    }

    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: passed on to the caller (see the trait).
        unsafe { Module::deserialize(engine, bytes) }
    }

    unsafe fn deserialize_file(engine: &Engine, path: &std::path::Path) -> wasmtime::Result<Self> {
        // SAFETY: passed on to the caller (see the trait).
        unsafe { Module::deserialize_file(engine, path) }
    }
}

impl Artifact for Component {
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Component::serialize(self)
    }

    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: passed on to the caller (see the trait).
        unsafe { Component::deserialize(engine, bytes) }
    }

    unsafe fn deserialize_file(engine: &Engine, path: &std::path::Path) -> wasmtime::Result<Self> {
        // SAFETY: passed on to the caller (see the trait).
        unsafe { Component::deserialize_file(engine, path) }
    }
}

/// The hash of everything about `engine` that changes compiled code: part
/// of every cache key. Computing it takes microseconds, so an embedder
/// computes it once per engine and passes it to each load.
pub fn engine_hash(engine: &Engine) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

/// The cache key: SHA-256 over the code and everything about the engine
/// that changes compiled code.
pub(crate) fn cache_key(engine_hash: u64, bytes: &[u8]) -> String {
    let mut sha = Sha256::new();
    sha.update(b"warden-cache-v1\0");
    sha.update(env!("CARGO_PKG_VERSION").as_bytes());
    sha.update(engine_hash.to_le_bytes());
    sha.update(bytes);
    hex::encode(sha.finalize())
}

impl CacheMode {
    /// [`CacheMode::get_or_compile`] for the file at `path`, which a warm
    /// start need not even read: as for modules ([`crate::Kernel::load`]),
    /// the cache's index remembers the key of a settled file by its
    /// identity and change time. `compile` gets the bytes when there is
    /// something to compile; `read_error` says why the file could not be
    /// read.
    pub fn get_or_compile_file<A: Artifact, E>(
        &self,
        engine: &Engine,
        engine_hash: u64,
        path: &std::path::Path,
        on_event: &mut dyn FnMut(CompileEvent),
        read_error: impl Fn(std::io::Error) -> E,
        compile: impl FnOnce(&[u8]) -> Result<A, E>,
    ) -> Result<A, E> {
        let file = ModuleFile::open(path).map_err(&read_error)?;
        let cache = self.open();
        let known = cache
            .as_ref()
            .zip(file.indexable())
            .and_then(|(cache, stamp)| stamp.lookup(cache, engine_hash));
        if let (Some(cache), Some(key)) = (&cache, &known) {
            if let Some(found) = cache.load_artifact(engine, key) {
                return Ok(found);
            }
        }
        let (bytes, stamp) = file.read().map_err(&read_error)?;
        let key = known
            .clone()
            .unwrap_or_else(|| cache_key(engine_hash, &bytes));
        let cached = cache.as_ref().and_then(|c| c.load_artifact(engine, &key));
        let artifact = match cached {
            Some(found) => found,
            None => {
                on_event(CompileEvent::Started);
                let start = Instant::now();
                let compiled = compile(&bytes)?;
                on_event(CompileEvent::Finished(start.elapsed()));
                if let Some(cache) = &cache {
                    let _ = cache.write_artifact(&key, &compiled);
                }
                compiled
            }
        };
        if let (Some(cache), None, Some(stamp)) = (&cache, &known, stamp) {
            // Best effort: without the index the next run hashes again.
            let _ = stamp.record(cache, engine_hash, &key);
        }
        Ok(artifact)
    }

    /// The compiled artifact of `bytes` for `engine` (whose
    /// [`engine_hash`] is `engine_hash`) from the cache, or `compile` it
    /// and keep it (a cache that cannot be written only costs a compile
    /// next time). `on_event` hears of a compile.
    pub fn get_or_compile<A: Artifact, E>(
        &self,
        engine: &Engine,
        engine_hash: u64,
        bytes: &[u8],
        on_event: &mut dyn FnMut(CompileEvent),
        compile: impl FnOnce() -> Result<A, E>,
    ) -> Result<A, E> {
        let cache = self.open();
        let key = cache_key(engine_hash, bytes);
        if let Some(found) = cache.as_ref().and_then(|c| c.load_artifact(engine, &key)) {
            return Ok(found);
        }
        on_event(CompileEvent::Started);
        let start = Instant::now();
        let compiled = compile()?;
        on_event(CompileEvent::Finished(start.elapsed()));
        if let Some(cache) = &cache {
            let _ = cache.write_artifact(&key, &compiled);
        }
        Ok(compiled)
    }
}
