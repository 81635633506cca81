//! Loading modules: recognising what a file is, compiling it, and keeping
//! compiled code in a cache keyed by the SHA-256 of the module bytes and
//! the engine settings, so a second run does not compile again.

use crate::{Kernel, KernelError};
use sha2::{Digest, Sha256};
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
        // A warm run need not hash the module again: the index remembers
        // the key of a file whose identity and change time are the same.
        let index = match cache {
            CacheMode::Dir(dir) if trusted_dir(dir) => {
                Stamp::of(path).map(|stamp| (dir.clone(), stamp))
            }
            CacheMode::Dir(_) => None,
            CacheMode::Off => None,
        };
        let known = index
            .as_ref()
            .and_then(|(dir, stamp)| stamp.lookup(dir, self.engine_hash));
        let key = known.clone().unwrap_or_else(|| self.cache_key(&bytes));
        let module =
            self.module_from_bytes(path, &bytes, cache, allow_precompiled, on_event, Some(&key))?;
        // An indexed module passed these checks when it was recorded, with
        // this same version of warden and its linker.
        if known.is_none() {
            self.check_imports(path, &module)?;
        }
        if let (None, Some((dir, stamp))) = (known, index) {
            // Best effort: without the index the next run hashes again.
            let _ = stamp.record(&dir, self.engine_hash, &key);
        }
        Ok(module)
    }

    fn module_from_bytes(
        &self,
        path: &Path,
        bytes: &[u8],
        cache: &CacheMode,
        allow_precompiled: bool,
        on_event: &mut dyn FnMut(CompileEvent),
        key: Option<&str>,
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
            CacheMode::Dir(dir) if !trusted_dir(dir) => None,
            CacheMode::Dir(dir) => {
                let key = key.map_or_else(|| self.cache_key(bytes), str::to_string);
                Some(dir.join(format!("{key}.cwasm")))
            }
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
        let module = self.module_from_bytes(path, bytes, cache, false, &mut |_| {}, None)?;
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
        let mut sha = Sha256::new();
        sha.update(b"warden-cache-v1\0");
        sha.update(env!("CARGO_PKG_VERSION").as_bytes());
        sha.update(self.engine_hash.to_le_bytes());
        sha.update(bytes);
        hex::encode(sha.finalize())
    }

    /// `warden compile`: writes an ahead-of-time artifact for `path`.
    pub fn precompile(&self, path: &Path, out: &Path) -> Result<(), KernelError> {
        let bytes = std::fs::read(path).map_err(|e| KernelError::ReadModule {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let module =
            self.module_from_bytes(path, &bytes, &CacheMode::Off, false, &mut |_| {}, None)?;
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

/// Whether compiled code found in `dir` may be run: the directory must be
/// ours and writable by nobody else (or not exist yet, to be created so).
/// A cache anyone else can write to is not used at all.
fn trusted_dir(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(dir) {
        Ok(m) => m.uid() == rustix::process::geteuid().as_raw() && m.mode() & 0o022 == 0,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
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

/// A module file's identity and change time. Any write to the file changes
/// its ctime, which no user can set back, so an equal stamp means the same
/// bytes as when the key was recorded.
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i128,
    ctime: i128,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: ns(m.mtime(), m.mtime_nsec()),
            ctime: ns(m.ctime(), m.ctime_nsec()),
        })
    }

    fn entry(&self, dir: &Path, engine: u64) -> PathBuf {
        let name = format!(
            "{}-{:016x}-{:x}-{:x}",
            env!("CARGO_PKG_VERSION"),
            engine,
            self.dev,
            self.ino
        );
        dir.join("index").join(name)
    }

    fn line(&self) -> String {
        format!("{} {} {}", self.size, self.mtime, self.ctime)
    }

    fn lookup(&self, dir: &Path, engine: u64) -> Option<String> {
        let text = std::fs::read_to_string(self.entry(dir, engine)).ok()?;
        let (stamp, key) = text.trim_end().rsplit_once(' ')?;
        (stamp == self.line() && key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| key.to_string())
    }

    fn record(&self, dir: &Path, engine: u64, key: &str) -> std::io::Result<()> {
        let entry = self.entry(dir, engine);
        let parent = entry.parent().unwrap_or(dir);
        create_private_dir(parent)?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
        std::io::Write::write_all(&mut tmp, format!("{} {key}\n", self.line()).as_bytes())?;
        tmp.persist(entry).map(|_| ()).map_err(|e| e.error)
    }
}
