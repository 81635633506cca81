//! Loading modules: recognising what a file is, compiling it, and keeping
//! compiled code in a cache keyed by the SHA-256 of the module bytes and
//! the engine settings, so a second run does not compile again.
//!
//! Cached code is native code that warden executes, so everything in the
//! cache that decides what runs is authenticated: each artifact (in its
//! sidecar, `KEY.mac`) and each index record carries an HMAC-SHA-256 under a
//! random key kept in the cache directory (`cache.key`, owner-only). Mounts
//! can never reach the cache (the CLI refuses them), so only the user's own
//! processes can read the key; an entry that does not verify is compiled
//! again and rewritten.

mod artifact;

pub use artifact::engine_hash;
pub use artifact::Artifact;

use crate::{Kernel, KernelError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
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
        let read_error = |e: std::io::Error| KernelError::ReadModule {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let file = ModuleFile::open(path).map_err(read_error)?;
        let cache = cache.open();
        // A warm run need not even read the module: the index remembers the
        // key of a file whose identity and change time are the same (so its
        // bytes are the same), and a module found through it passed the
        // import and signature checks when it was recorded, with this same
        // version of warden and its linker.
        let known = cache
            .as_ref()
            .zip(file.indexable())
            .and_then(|(cache, stamp)| stamp.lookup(cache, self.engine_hash));
        if let (Some(cache), Some(key)) = (&cache, &known) {
            if let Some(module) = cache.load_artifact(&self.engine, key) {
                return Ok(module);
            }
        }
        let (bytes, stamp) = file.read().map_err(read_error)?;
        let index = cache.as_ref().zip(stamp);
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
            if let Some(module) = cache.load_artifact(&self.engine, key) {
                return Ok(module);
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

    /// Validates and compiles (or fetches from the cache, keyed by the
    /// bytes as [`Kernel::load`] keys a file) a module whose bytes are
    /// already in memory: a bundle's code, or a file read to check its
    /// digest. `name` is only used in messages. Precompiled code is taken
    /// only with `allow_precompiled`; a bundle never holds any.
    pub fn load_bytes(
        &self,
        name: &Path,
        bytes: &[u8],
        cache: &CacheMode,
        allow_precompiled: bool,
        on_event: &mut dyn FnMut(CompileEvent),
    ) -> Result<Module, KernelError> {
        let cache = cache.open();
        let module = self.module_from_bytes(
            name,
            bytes,
            cache.as_ref(),
            allow_precompiled,
            on_event,
            None,
        )?;
        self.check_imports(name, &module)?;
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
        artifact::cache_key(self.engine_hash, bytes)
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

/// A module file opened for [`Kernel::load`] and stamped from its
/// descriptor, so that the stamp describes the bytes read from it even if
/// the path is swapped for another file meanwhile.
struct ModuleFile {
    file: std::fs::File,
    before: std::fs::Metadata,
    stamp: Stamp,
    now: SystemTime,
}

impl ModuleFile {
    fn open(path: &Path) -> std::io::Result<ModuleFile> {
        let file = std::fs::File::open(path)?;
        let now = SystemTime::now();
        let before = file.metadata()?;
        Ok(ModuleFile {
            stamp: Stamp::of(&before),
            file,
            before,
            now,
        })
    }

    /// The stamp the index may know the file by: there is none for anything
    /// but a regular file, or for one changed too recently to tell a later
    /// change by its times.
    fn indexable(&self) -> Option<&Stamp> {
        (self.before.is_file() && self.stamp.settled(self.now)).then_some(&self.stamp)
    }

    /// The bytes, and the stamp to record them under unless the file
    /// changed while it was read (or has no stamp to trust).
    fn read(mut self) -> std::io::Result<(Vec<u8>, Option<Stamp>)> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.before.len()).unwrap_or(0));
        self.file.read_to_end(&mut bytes)?;
        let after = self.file.metadata()?;
        let trusted = self.indexable().is_some()
            && Stamp::of(&after) == self.stamp
            && self.stamp.size == bytes.len() as u64;
        Ok((bytes, trusted.then_some(self.stamp)))
    }
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
        match trusted_dir(dir) {
            Some(true) => {}
            Some(false) => return None,
            None => {
                create_private_dir(dir).ok()?;
                // Someone else may have created it since the check above.
                if trusted_dir(dir) != Some(true) {
                    return None;
                }
            }
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
const VERIFIED_LABEL: &[u8] = b"warden-cache/v1/verified";
const MAC_LEN: usize = 32;

impl CacheDir {
    fn artifact_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.cwasm"))
    }

    /// `KEY.mac`: the artifact's MAC and, once it has verified for a file
    /// left alone since, that file's stamp under a MAC of its own.
    fn sidecar_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.mac"))
    }

    /// The cached module for `key`, if its artifact authenticates. The MAC
    /// binds the key (the file name) too, so another module's artifact put
    /// in its place does not verify.
    ///
    /// Checking the MAC means reading and hashing the whole artifact, which
    /// would be most of a warm start. So once it has verified for a file
    /// that was then settled ([`Stamp::settled`]), the sidecar records the
    /// file's stamp, and a later load of a file with that very stamp maps
    /// it as it is: any write to the file changes its ctime, which no user
    /// can set back. Any other file is read whole, checked, and the checked
    /// bytes in memory are what is deserialized.
    fn load_artifact<A: Artifact>(&self, engine: &Engine, key: &str) -> Option<A> {
        let path = self.artifact_path(key);
        let now = SystemTime::now();
        let before = std::fs::metadata(&path).ok()?;
        let stamp = Stamp::of(&before);
        let sidecar = read_record(&self.sidecar_path(key))?;
        let mut lines = sidecar.lines();
        let artifact_mac = hex::decode(lines.next()?).ok()?;
        if lines
            .next()
            .is_some_and(|v| self.stamp_verified(key, &stamp, v))
        {
            // SAFETY: these bytes verified under the cache's MAC key when
            // the stamp was recorded and the file has not changed since
            // (same identity, size and times). Only the user's own
            // processes can write in the cache (owner-only, never mounted),
            // and they could read the MAC key too: so mapping the path as
            // it is now, rather than a descriptor checked beforehand, lets
            // nobody run code who could not already sign it. wasmtime still
            // checks that the artifact was made by this engine.
            return unsafe { A::deserialize_file(engine, &path) }.ok();
        }
        let mut file = std::fs::File::open(&path).ok()?;
        let mut bytes = Vec::with_capacity(usize::try_from(before.len()).unwrap_or(0));
        file.read_to_end(&mut bytes).ok()?;
        let parts = [ARTIFACT_LABEL, key.as_bytes(), &bytes[..]];
        if !self.mac_key.verify(&parts, &artifact_mac) {
            return None;
        }
        // SAFETY: the bytes are what warden serialized for this very key:
        // their MAC under the cache's own key verified, and they are in
        // memory, so nothing can change them between the check and this
        // call. A file from another engine version fails wasmtime's own
        // check and is compiled again.
        let module = unsafe { A::deserialize(engine, &bytes) }.ok()?;
        // The stamp is recorded only for the very file that was read.
        let unchanged = file.metadata().is_ok_and(|m| Stamp::of(&m) == stamp);
        if unchanged && before.is_file() && stamp.settled(now) {
            // Best effort: without it the next load checks the MAC again.
            let _ = self.write_sidecar(key, &artifact_mac, Some(&stamp));
        }
        Some(module)
    }

    /// Whether `verified` (the sidecar's second line) records `stamp` for
    /// `key` under the cache's MAC key.
    fn stamp_verified(&self, key: &str, stamp: &Stamp, verified: &str) -> bool {
        let Some((line, mac)) = verified.rsplit_once(' ') else {
            return false;
        };
        let Ok(mac) = hex::decode(mac) else {
            return false;
        };
        line == stamp.identity_line()
            && self
                .mac_key
                .verify(&[VERIFIED_LABEL, key.as_bytes(), line.as_bytes()], &mac)
    }

    fn write_sidecar(
        &self,
        key: &str,
        artifact_mac: &[u8],
        verified: Option<&Stamp>,
    ) -> std::io::Result<()> {
        let mut text = hex::encode(artifact_mac);
        if let Some(stamp) = verified {
            let line = stamp.identity_line();
            let mac = self
                .mac_key
                .mac(&[VERIFIED_LABEL, key.as_bytes(), line.as_bytes()]);
            text.push_str(&format!("\n{line} {}", hex::encode(mac)));
        }
        text.push('\n');
        write_atomically(&self.dir, &self.sidecar_path(key), text.as_bytes())
    }

    /// Writes the artifact for `key` and then its MAC, each atomically. A
    /// load between the two finds a MAC that does not verify, which only
    /// costs a compile.
    fn write_artifact<A: Artifact>(&self, key: &str, artifact: &A) -> anyhow::Result<()> {
        let bytes = artifact.serialize()?;
        let mac = self.mac_key.mac(&[ARTIFACT_LABEL, key.as_bytes(), &bytes]);
        write_atomically(&self.dir, &self.artifact_path(key), &bytes)?;
        self.write_sidecar(key, &mac, None)?;
        Ok(())
    }
}

/// The longest index record or sidecar warden writes is under 300 bytes.
const RECORD_MAX: usize = 512;

/// A small text file the cache wrote (an index record, a sidecar) in one
/// `read`: a warm start reads several, and `std::fs::read_to_string` spends
/// two more system calls on each (a `statx` for the size and a `read` that
/// finds the end). A regular file's `read` returns less than asked only at
/// its end; anything else (a longer or torn file) fails its MAC check.
fn read_record(path: &Path) -> Option<String> {
    let mut buf = [0u8; RECORD_MAX];
    let n = std::fs::File::open(path).ok()?.read(&mut buf).ok()?;
    if n == RECORD_MAX {
        return None;
    }
    String::from_utf8(buf[..n].to_vec()).ok()
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
        // One read, as for records: a key file of other than 32 bytes, or
        // one read short, is replaced.
        let mut bytes = [0u8; 33];
        let n = file.read(&mut bytes)?;
        Ok(match <[u8; 32]>::try_from(&bytes[..n]) {
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
/// ours and writable by nobody else. `None` when it does not exist yet (it
/// is then created so). A cache anyone else can write to is not used.
fn trusted_dir(dir: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(dir) {
        Ok(m) => Some(
            m.is_dir() && m.uid() == rustix::process::geteuid().as_raw() && m.mode() & 0o022 == 0,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(_) => Some(false),
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

    /// The whole stamp, identity included, as one line.
    fn identity_line(&self) -> String {
        format!("{} {} {}", self.dev, self.ino, self.line())
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
        let text = read_record(&cache.dir.join("index").join(&name))?;
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
        let (bytes, stamp) = ModuleFile::open(&file).unwrap().read().unwrap();
        assert_eq!(bytes, b"\0asm");
        assert!(stamp.is_none());
        let old = Stamp::of(&std::fs::metadata(&file).unwrap());
        assert!(old.settled(SystemTime::now() + SETTLED));
        assert!(!old.settled(SystemTime::now()));
    }
}
