//! Loading modules: recognising what a file is, compiling it, and keeping
//! compiled code in a cache keyed by the SHA-256 of the module bytes and
//! the engine settings, so a second run does not compile again.

use crate::{Kernel, KernelError};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::{Engine, Module, Precompiled};

/// Where compiled modules are cached.
#[derive(Clone, Debug)]
pub enum CacheMode {
    Dir(PathBuf),
    Off,
}

/// Reported around a compile, so the CLI can show progress.
#[derive(Clone, Copy, Debug)]
pub enum CompileEvent {
    Started,
    Finished(Duration),
}

/// The layer number of a component in the binary header.
const COMPONENT_LAYER: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];

fn is_wat_text(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let t = text.trim_start();
            t.starts_with('(') || t.starts_with(";;")
        }
        Err(_) => false,
    }
}

impl Kernel {
    /// Reads, validates and compiles (or fetches from the cache) the
    /// module at `path`, and checks that warden provides its imports.
    pub fn load(
        &self,
        path: &Path,
        cache: &CacheMode,
        allow_precompiled: bool,
        on_event: &mut dyn FnMut(CompileEvent),
    ) -> Result<Module, KernelError> {
        let bytes = std::fs::read(path).map_err(|e| KernelError::ReadModule {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let module = self.module_from_bytes(path, &bytes, cache, allow_precompiled, on_event)?;
        self.check_imports(path, &module)?;
        Ok(module)
    }

    fn module_from_bytes(
        &self,
        path: &Path,
        bytes: &[u8],
        cache: &CacheMode,
        allow_precompiled: bool,
        on_event: &mut dyn FnMut(CompileEvent),
    ) -> Result<Module, KernelError> {
        let invalid = |e: wasmtime::Error| KernelError::Invalid {
            path: path.to_path_buf(),
            reason: one_line(&format!("{e:#}")),
        };
        match Engine::detect_precompiled(bytes) {
            Some(Precompiled::Component) => {
                return Err(KernelError::Component {
                    path: path.to_path_buf(),
                })
            }
            Some(Precompiled::Module) if !allow_precompiled => {
                return Err(KernelError::Precompiled {
                    path: path.to_path_buf(),
                })
            }
            Some(Precompiled::Module) => {
                // SAFETY: the user vouched for this file with
                // --allow-precompiled; wasmtime still checks that it was
                // made by this engine version and settings.
                return unsafe { Module::deserialize(&self.engine, bytes) }.map_err(invalid);
            }
            None => {}
        }
        if bytes.starts_with(b"\0asm") {
            if bytes.get(4..8) == Some(&COMPONENT_LAYER[..]) {
                return Err(KernelError::Component {
                    path: path.to_path_buf(),
                });
            }
        } else if !is_wat_text(bytes) {
            return Err(KernelError::NotWasm {
                path: path.to_path_buf(),
            });
        }
        let cached = match cache {
            CacheMode::Dir(dir) => Some(dir.join(format!("{}.cwasm", self.cache_key(bytes)))),
            CacheMode::Off => None,
        };
        if let Some(file) = &cached {
            if file.exists() {
                // SAFETY: the cache directory is warden's own (created
                // owner-only) and entries are written atomically; a file
                // from another engine version fails wasmtime's own check
                // and is recompiled below.
                if let Ok(module) = unsafe { Module::deserialize_file(&self.engine, file) } {
                    return Ok(module);
                }
            }
        }
        on_event(CompileEvent::Started);
        let start = Instant::now();
        let module = Module::new(&self.engine, bytes).map_err(invalid)?;
        on_event(CompileEvent::Finished(start.elapsed()));
        if let Some(file) = &cached {
            // A cache that cannot be written only costs a compile next time.
            let _ = store_atomically(file, &module);
        }
        Ok(module)
    }

    /// A module for `proc_exec`: the bytes come from the cage's own
    /// filesystem; precompiled code is never accepted from there.
    pub fn module_for_exec(
        &self,
        path: &Path,
        bytes: &[u8],
        cache: &CacheMode,
    ) -> Result<Module, KernelError> {
        let module = self.module_from_bytes(path, bytes, cache, false, &mut |_| {})?;
        self.check_imports(path, &module)?;
        if !matches!(
            module.get_export("_start"),
            Some(wasmtime::ExternType::Func(_))
        ) {
            return Err(KernelError::NoEntrypoint {
                path: path.to_path_buf(),
                name: "_start".into(),
                available: String::new(),
            });
        }
        Ok(module)
    }

    /// The cache key: SHA-256 over the module bytes and everything about
    /// the engine that changes compiled code.
    pub fn cache_key(&self, bytes: &[u8]) -> String {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut sha = Sha256::new();
        sha.update(b"warden-cache-v1\0");
        sha.update(env!("CARGO_PKG_VERSION").as_bytes());
        sha.update(engine_hash.finish().to_le_bytes());
        sha.update(bytes);
        hex::encode(sha.finalize())
    }

    /// `warden compile`: writes an ahead-of-time artifact for `path`.
    pub fn precompile(&self, path: &Path, out: &Path) -> Result<(), KernelError> {
        let bytes = std::fs::read(path).map_err(|e| KernelError::ReadModule {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let module = self.module_from_bytes(path, &bytes, &CacheMode::Off, false, &mut |_| {})?;
        self.check_imports(path, &module)?;
        let artifact = module.serialize().map_err(|e| {
            KernelError::Host(format!("cannot serialize {}: {e:#}", path.display()))
        })?;
        std::fs::write(out, artifact)
            .map_err(|e| KernelError::Host(format!("cannot write {}: {e}", out.display())))
    }
}

fn store_atomically(file: &Path, module: &Module) -> anyhow::Result<()> {
    let dir = file
        .parent()
        .ok_or_else(|| anyhow::anyhow!("cache path has no parent"))?;
    create_private_dir(dir)?;
    let bytes = module.serialize()?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, &bytes)?;
    tmp.persist(file)?;
    Ok(())
}

/// The cache holds code warden will execute: only its owner may write it.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Folds a multi-line compiler message (WAT errors quote the source with a
/// caret) into one line: the message and where it points.
fn one_line(message: &str) -> String {
    let mut lines = message.lines();
    let first = lines.next().unwrap_or("").trim().to_string();
    let at = lines
        .find_map(|l| l.trim().strip_prefix("--> "))
        .and_then(|loc| {
            loc.rsplit_once(':').and_then(|(rest, col)| {
                rest.rsplit_once(':')
                    .map(|(_, line)| format!("line {line}, column {col}"))
            })
        });
    match at {
        Some(at) => format!("{first} (at {at})"),
        None => first,
    }
}
