//! Parsing of the `warden run` flags that describe mounts and variables.

use crate::{Mount, MountSource, PolicyError};
use std::path::PathBuf;

fn bad(flag: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::BadValue {
        key: flag.to_string(),
        reason: reason.into(),
    }
}

/// `--dir HOST[::GUEST][:ro]` (and `--dir-ro`, with `read_only` set).
pub fn parse_dir_flag(value: &str, read_only: bool) -> Result<Mount, PolicyError> {
    let flag = if read_only { "--dir-ro" } else { "--dir" };
    let (spec, ro_suffix) = match value.strip_suffix(":ro") {
        Some(rest) => (rest, true),
        None => (value, false),
    };
    let (host, guest) = match spec.split_once("::") {
        Some((host, guest)) => (host, guest),
        None => (spec, spec),
    };
    if host.is_empty() || guest.is_empty() {
        return Err(bad(flag, format!("`{value}`: expected HOST[::GUEST]")));
    }
    Ok(Mount {
        guest: guest.to_string(),
        source: MountSource::Host {
            path: PathBuf::from(host),
            read_only: read_only || ro_suffix,
        },
    })
}

/// `--mount GUEST=HOSTDIR`: a virtual, read-only mount captured at start.
pub fn parse_mount_flag(value: &str) -> Result<Mount, PolicyError> {
    match value.split_once('=') {
        Some((guest, host)) if !guest.is_empty() && !host.is_empty() => Ok(Mount {
            guest: guest.to_string(),
            source: MountSource::Virtual {
                path: PathBuf::from(host),
            },
        }),
        _ => Err(bad("--mount", format!("`{value}`: expected GUEST=HOSTDIR"))),
    }
}

/// `--sealed GUEST=NAME`: a directory kept in the sealed store.
pub fn parse_sealed_flag(value: &str) -> Result<Mount, PolicyError> {
    match value.split_once('=') {
        Some((guest, name)) if !guest.is_empty() && !name.is_empty() => Ok(Mount {
            guest: guest.to_string(),
            source: MountSource::Sealed {
                name: name.to_string(),
            },
        }),
        _ => Err(bad("--sealed", format!("`{value}`: expected GUEST=NAME"))),
    }
}

/// `--env K=V` sets; `--env K` passes the host's value through (`None`).
pub fn parse_env_flag(value: &str) -> Result<(String, Option<String>), PolicyError> {
    let (key, val) = match value.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (value, None),
    };
    if key.is_empty() || key.contains('\0') || val.as_deref().is_some_and(|v| v.contains('\0')) {
        return Err(bad("--env", format!("`{value}`: expected KEY=VALUE")));
    }
    Ok((key.to_string(), val))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_forms() {
        let m = parse_dir_flag("./data::/data:ro", false).unwrap();
        assert_eq!(m.guest, "/data");
        assert_eq!(
            m.source,
            MountSource::Host {
                path: "./data".into(),
                read_only: true
            }
        );
        let m = parse_dir_flag("out", false).unwrap();
        assert_eq!(m.guest, "out");
        assert!(parse_dir_flag("::x", false).is_err());
    }

    #[test]
    fn env_forms() {
        assert_eq!(
            parse_env_flag("A=b=c").unwrap(),
            ("A".into(), Some("b=c".into()))
        );
        assert_eq!(parse_env_flag("HOME").unwrap(), ("HOME".into(), None));
        assert!(parse_env_flag("=x").is_err());
    }
}
