//! Loading modules: recognising what a file is, compiling it, and keeping
//! compiled code in a cache keyed by the SHA-256 of the module bytes and
//! the engine settings, so a second run does not compile again.
//!
//! Cached code is native code that warden executes, so everything in the
//! cache that decides what runs is authenticated: each artifact and each
//! index record carries an HMAC-SHA-256 under a random key kept in the
//! cache directory (`cache.key`, owner-only). Mounts can never reach the
//! cache (the CLI refuses them), so only the user's own processes can read
//! the key; an entry that does not verify is compiled again and rewritten.

use crate::{Kernel, KernelError};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
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
        let (bytes, stamp) = read_module(path).map_err(|e| KernelError::ReadModule {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let cache = cache.open();
        // A warm run need not hash the module again: the index remembers
        // the key of a file whose identity and change time are the same.
        let index = cache.as_ref().zip(stamp);
        let known = index
            .as_ref()
            .and_then(|(cache, stamp)| stamp.lookup(cache, self.engine_hash));
        let key = known.clone().unwrap_or_else(|| self.cache_key(&bytes));
        let module = self.module_from_bytes(
            path,
            &bytes,
            cache.as_ref(),
            allow_precompiled,
            on_event,
            Some(&key),
        )?;
        // An indexed module passed these checks when it was recorded, with
        // this same version of warden and its linker.
        if known.is_none() {
            self.check_imports(path, &module)?;
        }
        if let (None, Some((cache, stamp))) = (known, index) {
            // Best effort: without the index the next run hashes again.
            let _ = stamp.record(cache, self.engine_hash, &key);
        }
        Ok(module)
    }

    fn module_from_bytes(
        &self,
        path: &Path,
        bytes: &[u8],
        cache: Option<&CacheDir>,
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
        let cached = cache.map(|cache| {
            let key = key.map_or_else(|| self.cache_key(bytes), str::to_string);
            (cache, key)
        });
        if let Some((cache, key)) = &cached {
            // An artifact that does not authenticate (changed, truncated,
            // another module's, or from before artifacts carried a MAC) is
            // never deserialized: it is compiled again and rewritten below.
            if let Some(artifact) = cache.read_artifact(key) {
                // SAFETY: the bytes are what warden serialized for this
                // very key: their MAC under the cache's own key verified,
                // and they are in memory, so nothing can change them
                // between the check and this call. A file from another
                // engine version fails wasmtime's own check and is
                // recompiled below.
                if let Ok(module) = unsafe { Module::deserialize(&self.engine, &artifact) } {
                    return Ok(module);
                }
            }
        }
        on_event(CompileEvent::Started);
        let start = Instant::now();
        let module = Module::new(&self.engine, bytes).map_err(invalid)?;
        on_event(CompileEvent::Finished(start.elapsed()));
        if let Some((cache, key)) = &cached {
            // A cache that cannot be written only costs a compile next time.
            let _ = cache.write_artifact(key, &module);
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
        let cache = cache.open();
        let module =
            self.module_from_bytes(path, bytes, cache.as_ref(), false, &mut |_| {}, None)?;
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
        let module = self.module_from_bytes(path, &bytes, None, false, &mut |_| {}, None)?;
        self.check_imports(path, &module)?;
        let artifact = module.serialize().map_err(|e| {
            KernelError::Host(format!("cannot serialize {}: {e:#}", path.display()))
        })?;
        std::fs::write(out, artifact)
            .map_err(|e| KernelError::Host(format!("cannot write {}: {e}", out.display())))
    }
}

/// Reads a module file and stamps it from the same descriptor, so the
/// stamp describes the bytes read even if the path is swapped for another
/// file meanwhile. There is no stamp (and so no index record) for anything
/// but a regular file, for a file that changed while it was read, or for
/// one changed too recently to tell a later change by its times.
fn read_module(path: &Path) -> std::io::Result<(Vec<u8>, Option<Stamp>)> {
    let mut file = std::fs::File::open(path)?;
    let now = SystemTime::now();
    let before = file.metadata()?;
    let mut bytes = Vec::with_capacity(usize::try_from(before.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    let after = file.metadata()?;
    let stamp = Stamp::of(&before);
    let trusted = before.is_file()
        && Stamp::of(&after) == stamp
        && stamp.size == bytes.len() as u64
        && stamp.settled(now);
    Ok((bytes, trusted.then_some(stamp)))
}

/// A cache directory in use, with the key that authenticates its contents.
struct CacheDir {
    dir: PathBuf,
    mac_key: CacheMacKey,
}

impl CacheMode {
    /// The cache for one load, or `None` when there is none or it cannot
    /// be trusted or set up (which only costs a compile).
    fn open(&self) -> Option<CacheDir> {
        let CacheMode::Dir(dir) = self else {
            return None;
        };
        if !trusted_dir(dir) {
            return None;
        }
        create_private_dir(dir).ok()?;
        // It may have been created by someone else since the check above.
        if !trusted_dir(dir) {
            return None;
        }
        let mac_key = CacheMacKey::load_or_create(dir).ok()?;
        Some(CacheDir {
            dir: dir.clone(),
            mac_key,
        })
    }
}

/// What a MAC is over, so that no artifact verifies as an index record
/// or the other way round.
const ARTIFACT_LABEL: &[u8] = b"warden-cache/v1/artifact";
const INDEX_LABEL: &[u8] = b"warden-cache/v1/index";
const MAC_LEN: usize = 32;

impl CacheDir {
    fn artifact_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.cwasm"))
    }

    /// The artifact stored for `key`, if its MAC verifies. The MAC binds the
    /// key (the file name) too, so another module's artifact put in its
    /// place does not verify.
    fn read_artifact(&self, key: &str) -> Option<Vec<u8>> {
        let mut bytes = std::fs::read(self.artifact_path(key)).ok()?;
        let split = bytes.len().checked_sub(MAC_LEN)?;
        let ok = self.mac_key.verify(
            &[ARTIFACT_LABEL, key.as_bytes(), &bytes[..split]],
            &bytes[split..],
        );
        ok.then(|| {
            bytes.truncate(split);
            bytes
        })
    }

    /// Writes the artifact for `key`, its MAC appended, atomically.
    fn write_artifact(&self, key: &str, module: &Module) -> anyhow::Result<()> {
        let mut bytes = module.serialize()?;
        let mac = self.mac_key.mac(&[ARTIFACT_LABEL, key.as_bytes(), &bytes]);
        bytes.extend_from_slice(&mac);
        write_atomically(&self.dir, &self.artifact_path(key), &bytes)?;
        Ok(())
    }
}

/// Writes `bytes` to a temporary file in `dir`, then renames it to `file`:
/// readers see the old file or the new one, never part of one.
fn write_atomically(dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(file).map(|_| ()).map_err(|e| e.error)
}

/// The cache's MAC key (not to be confused with a module's cache key, the
/// digest that names its entry): 32 random bytes in `cache.key`,
/// owner-only.
struct CacheMacKey([u8; 32]);

/// What `cache.key` holds.
enum KeyFile {
    Missing,
    /// Damaged, or readable or owned by someone else.
    Unusable,
    Usable(CacheMacKey),
}

impl CacheMacKey {
    const FILE: &'static str = "cache.key";

    /// Reads the key, or creates it. Two wardens creating it at once agree
    /// on one (the file is linked into place only if none is there yet); a
    /// key file that is damaged or readable by others is replaced, which
    /// makes every entry compile once more.
    fn load_or_create(dir: &Path) -> std::io::Result<CacheMacKey> {
        let path = dir.join(Self::FILE);
        let existing = Self::read(&path)?;
        if let KeyFile::Usable(key) = existing {
            return Ok(key);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
        // NamedTempFile creates the file with mode 0600.
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&key)?;
        if matches!(existing, KeyFile::Unusable) {
            tmp.persist(&path).map_err(|e| e.error)?;
            return Ok(CacheMacKey(key));
        }
        match tmp.persist_noclobber(&path) {
            Ok(_) => Ok(CacheMacKey(key)),
            // Another warden created it first: use theirs.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                match Self::read(&path)? {
                    KeyFile::Usable(key) => Ok(key),
                    _ => Err(std::io::Error::other(
                        "the cache key another warden wrote cannot be used",
                    )),
                }
            }
            Err(e) => Err(e.error),
        }
    }

    fn read(path: &Path) -> std::io::Result<KeyFile> {
        use std::os::unix::fs::MetadataExt;
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KeyFile::Missing),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let private = meta.is_file()
            && meta.uid() == rustix::process::geteuid().as_raw()
            && meta.mode() & 0o077 == 0;
        let mut bytes = Vec::with_capacity(33);
        (&mut file).take(33).read_to_end(&mut bytes)?;
        Ok(match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(key) if private => KeyFile::Usable(CacheMacKey(key)),
            _ => KeyFile::Unusable,
        })
    }

    fn hmac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        // Each part with its length, so no two lists of parts collide.
        for part in parts {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        self.hmac(parts).finalize().into_bytes().into()
    }

    /// Constant-time comparison (`hmac` uses `subtle`).
    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        self.hmac(parts).verify_slice(tag).is_ok()
    }
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
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i128,
    ctime: i128,
}

/// How long after its last change a file's stamp is trusted. A write in the
/// same tick of the file system's clock as a read leaves the ctime as it
/// was; a file last changed longer ago than any clock tick (2 s covers
/// file systems with the coarsest timestamps) cannot have been written
/// during the read without its ctime moving.
const SETTLED: Duration = Duration::from_secs(2);

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: ns(m.mtime(), m.mtime_nsec()),
            ctime: ns(m.ctime(), m.ctime_nsec()),
        }
    }

    /// Whether the file was last changed at least [`SETTLED`] before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let Ok(since_epoch) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        self.ctime + (SETTLED.as_nanos() as i128) <= since_epoch.as_nanos() as i128
    }

    fn entry_name(&self, engine: u64) -> String {
        format!(
            "{}-{:016x}-{:x}-{:x}",
            env!("CARGO_PKG_VERSION"),
            engine,
            self.dev,
            self.ino
        )
    }

    fn line(&self) -> String {
        format!("{} {} {}", self.size, self.mtime, self.ctime)
    }

    /// The MAC binds the record to its entry (engine, device, inode), its
    /// stamp and its key: a record changed, or copied to another entry,
    /// does not verify.
    fn record_mac_parts<'a>(name: &'a str, line: &'a str, key: &'a str) -> [&'a [u8]; 4] {
        [
            INDEX_LABEL,
            name.as_bytes(),
            line.as_bytes(),
            key.as_bytes(),
        ]
    }

    fn lookup(&self, cache: &CacheDir, engine: u64) -> Option<String> {
        let name = self.entry_name(engine);
        let text = std::fs::read_to_string(cache.dir.join("index").join(&name)).ok()?;
        let (rest, mac) = text.trim_end().rsplit_once(' ')?;
        let (stamp, key) = rest.rsplit_once(' ')?;
        let line = self.line();
        let well_formed = stamp == line
            && key.len() == 64
            && key.bytes().all(|b| b.is_ascii_hexdigit())
            && mac.len() == 2 * MAC_LEN;
        let mac = hex::decode(mac).ok()?;
        let parts = Self::record_mac_parts(&name, &line, key);
        (well_formed && cache.mac_key.verify(&parts, &mac)).then(|| key.to_string())
    }

    fn record(&self, cache: &CacheDir, engine: u64, key: &str) -> std::io::Result<()> {
        let name = self.entry_name(engine);
        let line = self.line();
        let mac = cache
            .mac_key
            .mac(&Self::record_mac_parts(&name, &line, key));
        let index = cache.dir.join("index");
        let text = format!("{line} {key} {}\n", hex::encode(mac));
        write_atomically(&index, &index.join(&name), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_cache_key_is_private_reused_and_replaced_when_bad() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CacheMacKey::FILE);
        let first = CacheMacKey::load_or_create(dir.path()).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(CacheMacKey::load_or_create(dir.path()).unwrap().0, first.0);
        // Readable by others: a key that may have leaked is not used.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let second = CacheMacKey::load_or_create(dir.path()).unwrap();
        assert_ne!(second.0, first.0);
        assert_eq!(mode(&path), 0o600);
        // Damaged (wrong length).
        std::fs::write(&path, b"short").unwrap();
        let third = CacheMacKey::load_or_create(dir.path()).unwrap();
        assert_ne!(third.0, second.0);
        assert_eq!(std::fs::read(&path).unwrap(), third.0);
    }

    #[test]
    fn macs_bind_every_part_and_its_length() {
        let key = CacheMacKey([7; 32]);
        let tag = key.mac(&[b"ab", b"c"]);
        assert!(key.verify(&[b"ab", b"c"], &tag));
        assert!(!key.verify(&[b"a", b"bc"], &tag));
        assert!(!key.verify(&[b"ab", b"c"], &tag[..31]));
        assert!(!CacheMacKey([8; 32]).verify(&[b"ab", b"c"], &tag));
    }

    #[test]
    fn only_a_settled_regular_file_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.wasm");
        std::fs::write(&file, b"\0asm").unwrap();
        // Just written: a write racing with the read could hide in its ctime.
        let (bytes, stamp) = read_module(&file).unwrap();
        assert_eq!(bytes, b"\0asm");
        assert!(stamp.is_none());
        let old = Stamp::of(&std::fs::metadata(&file).unwrap());
        assert!(old.settled(SystemTime::now() + SETTLED));
        assert!(!old.settled(SystemTime::now()));
    }
}
