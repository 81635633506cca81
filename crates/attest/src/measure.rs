//! Measurements: SHA-256 digests of what runs (warden's own executable, a
//! workload's code and its canonical policy), in the one spelling every
//! warden document uses, `sha256:` followed by 64 lowercase hex digits.

use crate::AttestError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::path::Path;

/// A SHA-256 digest, written `sha256:HEX`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Sha256Digest(Sha256::digest(bytes).into())
    }

    /// The digest of a file's contents, read in chunks.
    pub fn of_file(path: &Path) -> std::io::Result<Self> {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(Sha256Digest(hasher.finalize().into()))
    }

    /// Parses `sha256:HEX` (64 hex digits, either case).
    pub fn parse(text: &str) -> Result<Self, AttestError> {
        let bad = || AttestError::Format(format!("`{text}` is not a `sha256:` and 64 hex digits"));
        let hex_part = text.strip_prefix("sha256:").ok_or_else(bad)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| bad())?;
        Ok(Sha256Digest(bytes))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Sha256Digest {
    type Err = AttestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sha256Digest::parse(s)
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Sha256Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What warden itself is: its version and the digest of its executable.
/// Field order is the canonical JSON order (keys in byte order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeMeasurement {
    /// SHA-256 of the executable file the process runs.
    pub exe: Sha256Digest,
    /// warden's version, as `warden --version` prints it.
    pub version: String,
}

impl RuntimeMeasurement {
    /// Measures the running executable (`/proc/self/exe` on Linux, so a
    /// file replaced after start is not what gets measured).
    pub fn of_current_exe(version: &str) -> Result<Self, AttestError> {
        let exe = if Path::new("/proc/self/exe").exists() {
            Sha256Digest::of_file(Path::new("/proc/self/exe"))
        } else {
            std::env::current_exe().and_then(|p| Sha256Digest::of_file(&p))
        }
        .map_err(|e| AttestError::Io(format!("cannot measure warden's executable: {e}")))?;
        Ok(RuntimeMeasurement {
            exe,
            version: version.to_string(),
        })
    }
}

/// What one workload is: the digest of its file as given (module,
/// component or bundle) and of its resolved policy's canonical form
/// (`docs/bundle.md`, "The canonical policy form").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadMeasurement {
    pub code: Sha256Digest,
    pub policy: Sha256Digest,
}

/// A Merkle tree head: how many leaves the tree has and its RFC 9162 root
/// hash (`{"root":"HEX","size":N}`, the root as 64 lowercase hex digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeHead {
    #[serde(with = "hex32")]
    pub root: [u8; 32],
    pub size: u64,
}

/// 32 bytes as 64 lowercase hex digits in JSON.
pub mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&text, &mut out)
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not 64 hex digits")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_and_refuses_bad_text() {
        let d = Sha256Digest::of(b"abc");
        let text = d.to_string();
        assert_eq!(
            text,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256Digest::parse(&text).unwrap(), d);
        assert_eq!(
            Sha256Digest::parse(&text.to_uppercase().replace("SHA256", "sha256")).unwrap(),
            d
        );
        for bad in ["ba78", "sha256:ba", "sha1:ba7816bf", &text[7..]] {
            assert!(Sha256Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn runtime_measurement_is_the_executable() {
        let m = RuntimeMeasurement::of_current_exe("1.2.3").unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(m.exe, Sha256Digest::of(&std::fs::read(exe).unwrap()));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            format!("{{\"exe\":\"{}\",\"version\":\"1.2.3\"}}", m.exe)
        );
    }
}
