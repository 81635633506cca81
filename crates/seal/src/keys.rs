//! Where the root sealing key comes from.
//!
//! The store asks a [`KeySource`] for a 32-byte root key once, when it is
//! opened, and derives every other key from it. Sources now: a key file
//! ([`KeyFile`]), a passphrase ([`Passphrase`]), and a key handed over by the
//! caller ([`StaticKey`]). Later: a key derived by a TEE from its measurement,
//! which is one more implementation of the trait.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::SealError;

/// Length of the root key and of every derived key.
pub const KEY_LEN: usize = 32;

/// A 32-byte root sealing key; wiped from memory when dropped.
#[derive(Clone)]
pub struct RootKey(Zeroizing<[u8; KEY_LEN]>);

impl RootKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        RootKey(Zeroizing::new(bytes))
    }

    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(bytes.as_mut())?;
        Ok(RootKey(bytes))
    }

    /// The key's bytes: for the store's own derivations, and for other
    /// owner-only 32-byte secrets kept in a [`KeyFile`] (the attestation
    /// key's seed).
    pub fn secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(..)")
    }
}

pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), SealError> {
    getrandom::fill(buf).map_err(|e| SealError::Key(format!("no randomness from the OS: {e}")))
}

/// Something that can produce the root sealing key.
pub trait KeySource: Send + Sync {
    /// The root key. `salt` is the store's (or backup's) random 16-byte id,
    /// kept in clear in its file: a key file ignores it, a passphrase is
    /// stretched with it, a TEE may use it as derivation context.
    fn root_key(&self, salt: &[u8; 16]) -> Result<RootKey, SealError>;

    /// Where the key comes from, for messages ("key file /x/store.key").
    fn describe(&self) -> String;
}

/// A root key the caller already has (tests, or a key from an enclave).
pub struct StaticKey(RootKey);

impl StaticKey {
    pub fn new(key: RootKey) -> Self {
        StaticKey(key)
    }
}

impl KeySource for StaticKey {
    fn root_key(&self, _salt: &[u8; 16]) -> Result<RootKey, SealError> {
        Ok(self.0.clone())
    }

    fn describe(&self) -> String {
        "a key given by the caller".to_string()
    }
}

/// A file holding the 32 raw bytes of the root key, created with mode 0600 on
/// first use. An existing file must be exactly 32 bytes and not readable by
/// group or others.
#[derive(Clone, Debug)]
pub struct KeyFile {
    path: PathBuf,
}

impl KeyFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        KeyFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the key, creating the file first if there is none.
    pub fn load_or_create(&self) -> Result<RootKey, SealError> {
        match self.load() {
            Err(SealError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                self.create()
            }
            other => other,
        }
    }

    /// Reads an existing key file.
    pub fn load(&self) -> Result<RootKey, SealError> {
        let shown = self.path.display();
        let mut file = fs::File::open(&self.path)
            .map_err(|e| SealError::io(format!("cannot open key file {shown}"), e))?;
        let meta = file
            .metadata()
            .map_err(|e| SealError::io(format!("cannot stat key file {shown}"), e))?;
        if !meta.is_file() {
            return Err(SealError::Key(format!(
                "key file {shown} is not a regular file"
            )));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SealError::Key(format!(
                "key file {shown} is accessible by group or others (mode {mode:o}); \
                 it must be owner-only: chmod 600 {shown}"
            )));
        }
        if meta.len() != KEY_LEN as u64 {
            return Err(SealError::Key(format!(
                "key file {shown} holds {} bytes, a key file holds exactly {KEY_LEN}",
                meta.len()
            )));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        file.read_exact(bytes.as_mut())
            .map_err(|e| SealError::io(format!("cannot read key file {shown}"), e))?;
        Ok(RootKey(bytes))
    }

    /// Creates a new key file without ever overwriting one: the key is
    /// written to a private temporary file which is then hard-linked into
    /// place, so a concurrent creator either wins or reads the winner's key.
    fn create(&self) -> Result<RootKey, SealError> {
        let shown = self.path.display();
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| SealError::io(format!("cannot create directory {}", dir.display()), e))?;
        let key = RootKey::generate()?;
        let mut suffix = [0u8; 8];
        fill_random(&mut suffix)?;
        let tmp = dir.join(format!(".warden-key-{}.tmp", hex::encode(suffix)));
        let written = (|| -> io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(key.secret())?;
            f.sync_all()?;
            fs::hard_link(&tmp, &self.path)
        })();
        let _ = fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                sync_dir(&dir);
                Ok(key)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => self.load(),
            Err(e) => Err(SealError::io(format!("cannot create key file {shown}"), e)),
        }
    }
}

impl KeySource for KeyFile {
    fn root_key(&self, _salt: &[u8; 16]) -> Result<RootKey, SealError> {
        self.load_or_create()
    }

    fn describe(&self) -> String {
        format!("key file {}", self.path.display())
    }
}

/// Best effort: makes a new directory entry durable.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A passphrase stretched into the root key with Argon2id (19 MiB, 2
/// passes, 1 lane: the OWASP recommendation), salted with the store's id.
pub struct Passphrase {
    secret: Zeroizing<String>,
    origin: String,
}

impl Passphrase {
    pub fn new(secret: impl Into<String>) -> Self {
        Passphrase {
            secret: Zeroizing::new(secret.into()),
            origin: "a passphrase".to_string(),
        }
    }

    /// The passphrase in environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self, SealError> {
        let secret = std::env::var(var).map_err(|_| {
            SealError::Key(format!(
                "environment variable {var} is not set (or not UTF-8)"
            ))
        })?;
        Ok(Passphrase {
            secret: Zeroizing::new(secret),
            origin: format!("the passphrase in ${var}"),
        })
    }
}

impl KeySource for Passphrase {
    fn root_key(&self, salt: &[u8; 16]) -> Result<RootKey, SealError> {
        if self.secret.is_empty() {
            return Err(SealError::Key(format!("{} is empty", self.origin)));
        }
        let params = argon2::Params::new(
            argon2::Params::DEFAULT_M_COST,
            argon2::Params::DEFAULT_T_COST,
            argon2::Params::DEFAULT_P_COST,
            Some(KEY_LEN),
        )
        .map_err(|e| SealError::Key(format!("argon2 parameters: {e}")))?;
        let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        kdf.hash_password_into(self.secret.as_bytes(), salt, out.as_mut())
            .map_err(|e| SealError::Key(format!("argon2: {e}")))?;
        Ok(RootKey(out))
    }

    fn describe(&self) -> String {
        self.origin.clone()
    }
}
