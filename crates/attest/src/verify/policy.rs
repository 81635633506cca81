//! What a verifier accepts: [`VerifyPolicy`], and `verify.toml`, the file
//! that spells it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::DEFAULT_MAX_AGE;
use crate::measure::{Sha256Digest, WorkloadMeasurement};
use crate::snp::SnpTcb;
use crate::tdx::{TdxCollateral, TdxTcbStatus};
use crate::AttestError;

/// What the verifier accepts.
#[derive(Clone, Debug)]
pub struct VerifyPolicy {
    /// Accept software evidence (no hardware vouches for it). Off by default.
    pub allow_software: bool,
    /// If not empty, only these software keys (Ed25519 public keys).
    pub software_keys: Vec<[u8; 32]>,
    /// The accepted warden executables; empty: not checked.
    pub runtimes: Vec<Sha256Digest>,
    /// The accepted workloads for a workload subject; empty: not checked.
    pub workloads: Vec<WorkloadMeasurement>,
    /// How old evidence may be (`issued_at` to the binding's `now`).
    pub max_age: Duration,
    /// SEV-SNP settings.
    pub snp: SnpSettings,
    /// TDX settings.
    pub tdx: TdxSettings,
    /// Expectations for apps by name (`[apps.NAME]`); kept for the app
    /// checks, not checked by [`verify_evidence`].
    pub apps: BTreeMap<String, AppExpectation>,
    /// A serve manifest whose apps are to be recomputed (resolved against
    /// the policy file's directory); kept, not read here.
    pub manifest: Option<PathBuf>,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        VerifyPolicy {
            allow_software: false,
            software_keys: Vec::new(),
            runtimes: Vec::new(),
            workloads: Vec::new(),
            max_age: DEFAULT_MAX_AGE,
            snp: SnpSettings::default(),
            tdx: TdxSettings::default(),
            apps: BTreeMap::new(),
            manifest: None,
        }
    }
}

/// What the verifier demands of SEV-SNP evidence.
#[derive(Clone, Debug, Default)]
pub struct SnpSettings {
    /// Accept guests whose policy allows debugging.
    pub allow_debug: bool,
    /// The ASK + ARK PEM stack; `None`: the `sev` crate's built-in chain
    /// of whichever generation (Milan, Genoa, Turin) certifies the VCEK.
    pub chain_pem: Option<Vec<u8>>,
    /// The lowest `REPORTED_TCB` accepted; `None`: not checked.
    pub min_tcb: Option<SnpTcb>,
    /// Accepted launch measurements (`MEASUREMENT`, 48 bytes); empty: not
    /// checked.
    pub measurements: Vec<Vec<u8>>,
}

/// What the verifier demands of TDX evidence.
#[derive(Clone, Debug)]
pub struct TdxSettings {
    /// The accepted TCB statuses (default: `UpToDate`).
    pub accepted: Vec<TdxTcbStatus>,
    /// Accept a debuggable TD.
    pub allow_debug: bool,
    /// PCS collateral JSON; without it no quote can be verified.
    pub collateral: Option<Vec<u8>>,
    /// Accepted measurements: 48 bytes (`MRTD`) or 240 (`MRTD` and
    /// `RTMR0`..`RTMR3`); empty: not checked.
    pub measurements: Vec<Vec<u8>>,
}

impl Default for TdxSettings {
    fn default() -> Self {
        TdxSettings {
            accepted: vec![TdxTcbStatus::UpToDate],
            allow_debug: false,
            collateral: None,
            measurements: Vec::new(),
        }
    }
}

/// What one app is expected to be (`[apps.NAME]`); checked elsewhere.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppExpectation {
    pub code: Option<Sha256Digest>,
    pub policy: Option<Sha256Digest>,
    pub route: Option<String>,
}

/// `verify.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow_software: bool,
    #[serde(default)]
    software_keys: Vec<String>,
    #[serde(default)]
    runtimes: Vec<Sha256Digest>,
    max_age: Option<String>,
    #[serde(default)]
    workload: Vec<WorkloadMeasurement>,
    #[serde(rename = "sev-snp")]
    sev_snp: Option<SnpFile>,
    tdx: Option<TdxFile>,
    #[serde(default)]
    apps: BTreeMap<String, AppExpectation>,
    manifest: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnpFile {
    #[serde(default)]
    allow_debug: bool,
    chain: Option<PathBuf>,
    min_tcb: Option<TcbFile>,
    #[serde(default)]
    measurements: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TcbFile {
    bootloader: u8,
    tee: u8,
    snp: u8,
    microcode: u8,
    fmc: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TdxFile {
    accepted: Option<Vec<String>>,
    collateral: Option<PathBuf>,
    #[serde(default)]
    allow_debug: bool,
    #[serde(default)]
    measurements: Vec<String>,
}

impl VerifyPolicy {
    /// Reads `verify.toml`. Files it names (`[sev-snp] chain`, `[tdx]
    /// collateral`, `manifest`) are relative to `base_dir`; the chain and
    /// collateral are read and checked now, so a bad file fails here.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<VerifyPolicy, AttestError> {
        let bad = |what: String| AttestError::Format(format!("verify policy: {what}"));
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            // One line: toml's own text draws the line in a box.
            let offset = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
            let line = text.as_bytes()[..offset]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            bad(format!("line {line}: {}", e.message().trim()))
        })?;
        let mut policy = VerifyPolicy {
            allow_software: file.allow_software,
            runtimes: file.runtimes,
            workloads: file.workload,
            apps: file.apps,
            manifest: file.manifest.map(|m| base_dir.join(m)),
            ..VerifyPolicy::default()
        };
        for (i, key) in file.software_keys.iter().enumerate() {
            let mut out = [0u8; 32];
            hex::decode_to_slice(key, &mut out).map_err(|_| {
                bad(format!(
                    "software_keys[{i}] = {key:?} is not an Ed25519 public key (64 hex digits)"
                ))
            })?;
            policy.software_keys.push(out);
        }
        if let Some(text) = &file.max_age {
            policy.max_age = humantime::parse_duration(text)
                .map_err(|e| bad(format!("max_age = {text:?}: {e} (write e.g. 30s, 5m, 1h)")))?;
        }
        let measurements = |key: &str, values: &[String], lens: &[usize]| {
            values
                .iter()
                .enumerate()
                .map(|(i, text)| match hex::decode(text) {
                    Ok(bytes) if lens.contains(&bytes.len()) => Ok(bytes),
                    _ => Err(bad(format!(
                        "{key}[{i}] = {text:?} is not {} hex digits",
                        lens.iter()
                            .map(|l| (l * 2).to_string())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
        };
        if let Some(snp) = file.sev_snp {
            policy.snp.measurements =
                measurements("sev-snp.measurements", &snp.measurements, &[48])?;
            policy.snp.allow_debug = snp.allow_debug;
            policy.snp.min_tcb = snp.min_tcb.map(|t| SnpTcb {
                bootloader: t.bootloader,
                tee: t.tee,
                snp: t.snp,
                microcode: t.microcode,
                fmc: t.fmc,
            });
            if let Some(chain) = snp.chain {
                let path = base_dir.join(chain);
                let pem = read(&path, "sev-snp.chain")?;
                let blocks = pem::parse_many(&pem)
                    .map_err(|e| bad(format!("sev-snp.chain {}: {e}", path.display())))?;
                if blocks.len() != 2 {
                    return Err(bad(format!(
                        "sev-snp.chain {} holds {} PEM blocks, expected 2 (ASK, ARK)",
                        path.display(),
                        blocks.len()
                    )));
                }
                policy.snp.chain_pem = Some(pem);
            }
        }
        if let Some(tdx) = file.tdx {
            policy.tdx.measurements =
                measurements("tdx.measurements", &tdx.measurements, &[48, 240])?;
            policy.tdx.allow_debug = tdx.allow_debug;
            if let Some(names) = tdx.accepted {
                policy.tdx.accepted = names
                    .iter()
                    .map(|name| {
                        TdxTcbStatus::from_name(name).ok_or_else(|| {
                            bad(format!(
                                "tdx.accepted: unknown TCB status {name:?} (known: {})",
                                TdxTcbStatus::ALL.map(|s| s.as_str()).join(", ")
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
            if let Some(collateral) = tdx.collateral {
                let path = base_dir.join(collateral);
                let json = read(&path, "tdx.collateral")?;
                TdxCollateral::from_json(&json)
                    .map_err(|e| bad(format!("tdx.collateral {}: {e}", path.display())))?;
                policy.tdx.collateral = Some(json);
            }
        }
        Ok(policy)
    }
}

fn read(path: &Path, key: &str) -> Result<Vec<u8>, AttestError> {
    std::fs::read(path).map_err(|e| {
        AttestError::Io(format!(
            "verify policy: {key}: cannot read {}: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector;

    fn key() -> crate::evidence::SoftwareKey {
        crate::evidence::SoftwareKey::from_seed([7; 32])
    }

    fn policy_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cert_chain.pem"),
            vector("snp/cert_chain_milan"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("collateral.json"),
            vector("tdx/tdx_quote_collateral.json"),
        )
        .unwrap();
        dir
    }

    #[test]
    fn from_toml_reads_a_full_policy() {
        let dir = policy_dir();
        let exe = Sha256Digest::of(b"warden");
        let code = Sha256Digest::of(b"code");
        let pol = Sha256Digest::of(b"policy");
        let text = format!(
            r#"
allow_software = true
software_keys = ["{key}"]
runtimes = ["{exe}"]
max_age = "30s"
manifest = "serve.toml"

[[workload]]
code = "{code}"
policy = "{pol}"

[sev-snp]
allow_debug = false
chain = "cert_chain.pem"
min_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}

[tdx]
accepted = ["UpToDate", "SWHardeningNeeded"]
collateral = "collateral.json"
allow_debug = true

[apps.hello]
code = "{code}"
route = "/hello"
"#,
            key = hex::encode(key().public_key()),
        );
        let policy = VerifyPolicy::from_toml(&text, dir.path()).unwrap();
        assert!(policy.allow_software);
        assert_eq!(policy.software_keys, vec![key().public_key()]);
        assert_eq!(policy.runtimes, vec![exe]);
        assert_eq!(policy.max_age, Duration::from_secs(30));
        assert_eq!(
            policy.workloads,
            vec![WorkloadMeasurement { code, policy: pol }]
        );
        assert_eq!(policy.snp.chain_pem, Some(vector("snp/cert_chain_milan")));
        assert_eq!(
            policy.snp.min_tcb,
            Some(SnpTcb {
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115,
                fmc: None
            })
        );
        assert!(!policy.snp.allow_debug);
        assert_eq!(
            policy.tdx.accepted,
            vec![TdxTcbStatus::UpToDate, TdxTcbStatus::SWHardeningNeeded]
        );
        assert!(policy.tdx.allow_debug);
        assert!(policy.tdx.collateral.is_some());
        assert_eq!(policy.manifest, Some(dir.path().join("serve.toml")));
        assert_eq!(
            policy.apps.get("hello"),
            Some(&AppExpectation {
                code: Some(code),
                policy: None,
                route: Some("/hello".to_string()),
            })
        );

        // An empty file is the default policy.
        let empty = VerifyPolicy::from_toml("", dir.path()).unwrap();
        assert!(!empty.allow_software);
        assert_eq!(empty.max_age, DEFAULT_MAX_AGE);
        assert_eq!(empty.tdx.accepted, vec![TdxTcbStatus::UpToDate]);
    }

    #[test]
    fn from_toml_refuses_bad_files() {
        let dir = policy_dir();
        let cases = [
            ("allow_sofware = true", "allow_sofware"),
            ("max_age = \"5 fortnights\"", "max_age"),
            ("software_keys = [\"abcd\"]", "software_keys[0]"),
            ("runtimes = [\"sha1:00\"]", "sha256"),
            ("[tdx]\naccepted = [\"Fine\"]", "tdx.accepted"),
            ("[tdx]\ncollateral = \"absent.json\"", "tdx.collateral"),
            ("[tdx]\ncollateral = \"cert_chain.pem\"", "tdx.collateral"),
            ("[sev-snp]\nchain = \"absent.pem\"", "sev-snp.chain"),
            ("[sev-snp]\nchain = \"collateral.json\"", "sev-snp.chain"),
            ("[sev-snp]\nmin_tcb = { bootloader = 1 }", "tee"),
            ("[sev-snp]\ndebug = true", "debug"),
            ("[[workload]]\ncode = \"sha256:00\"", "sha256"),
            ("[apps.x]\nhash = \"\"", "hash"),
        ];
        for (text, needle) in cases {
            let err = VerifyPolicy::from_toml(text, dir.path())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
