//! Claims: what a piece of evidence binds. The runtime that made it, what
//! it speaks for (a deployment log's tree head or one workload), the TLS key
//! and connection it was made for, and the verifier's nonce.
//!
//! Claims travel as one canonical JSON text (`warden-claims/1`: keys in byte
//! order, no whitespace, absent values as `null`), and the SHA-512 of that
//! text is the 64 bytes bound into the hardware report ([`Claims::report_data`]).
//! [`Claims::parse`] accepts only the exact text [`Claims::to_bytes`] writes,
//! so one set of claims has one spelling and one report data.

use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest as _, Sha512};

use crate::measure::{RuntimeMeasurement, Sha256Digest, TreeHead, WorkloadMeasurement};
use crate::AttestError;

/// The `format` value of claims.
pub const CLAIMS_FORMAT: &str = "warden-claims/1";
/// Shortest accepted nonce, in bytes.
pub const NONCE_MIN: usize = 8;
/// Longest accepted nonce, in bytes.
pub const NONCE_MAX: usize = 64;

/// What the evidence speaks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Subject {
    /// A deployment log at this tree head (`{"tree":{"root":…,"size":…}}`).
    Tree(TreeHead),
    /// One workload (`{"workload":{"code":…,"policy":…}}`).
    Workload(WorkloadMeasurement),
}

/// What one piece of evidence binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// When the evidence was made, Unix seconds.
    pub issued_at: u64,
    /// The warden that made it.
    pub runtime: RuntimeMeasurement,
    /// What it speaks for.
    pub subject: Subject,
    /// SHA-256 of the TLS certificate's SubjectPublicKeyInfo DER: the key
    /// the attested server terminates TLS with.
    pub tls_key: Option<Sha256Digest>,
    /// The verifier's challenge, 8 to 64 bytes.
    pub nonce: Option<Vec<u8>>,
    /// The RFC 9266 `tls-exporter` value of the connection it was made for.
    pub exporter: Option<[u8; 32]>,
}

/// The JSON form; field order is key order (byte order), so serde_json
/// writes the canonical text.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    exporter: Option<String>,
    format: String,
    issued_at: u64,
    nonce: Option<String>,
    runtime: RuntimeMeasurement,
    subject: Subject,
    tls_key: Option<Sha256Digest>,
}

impl Claims {
    fn wire(&self) -> Wire {
        Wire {
            exporter: self.exporter.map(hex::encode),
            format: CLAIMS_FORMAT.to_string(),
            issued_at: self.issued_at,
            nonce: self.nonce.as_ref().map(hex::encode),
            runtime: self.runtime.clone(),
            subject: self.subject.clone(),
            tls_key: self.tls_key,
        }
    }

    /// The canonical JSON text.
    pub fn to_text(&self) -> String {
        // Strings, integers and derived structs only: serde_json cannot fail
        // on them, whatever the values.
        serde_json::to_string(&self.wire()).expect("claims are plain JSON values")
    }

    /// The canonical JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_text().into_bytes()
    }

    /// SHA-512 of the canonical bytes: the 64 bytes that go into an SNP
    /// report's `REPORT_DATA`, a TDX quote's `REPORTDATA`, or under the
    /// software key's signature.
    pub fn report_data(&self) -> [u8; 64] {
        Sha512::digest(self.to_bytes()).into()
    }

    /// Checks what [`Claims::parse`] would refuse in claims made here (the
    /// nonce length), so that no source attests claims nobody can read.
    pub fn check(&self) -> Result<(), AttestError> {
        if let Some(nonce) = &self.nonce {
            check_nonce(nonce.len())?;
        }
        Ok(())
    }

    /// Parses canonical claims text. Anything but the exact bytes
    /// [`Claims::to_bytes`] would write for the result is refused: other
    /// key order, whitespace, uppercase hex, escapes written differently.
    pub fn parse(bytes: &[u8]) -> Result<Claims, AttestError> {
        let wire: Wire = serde_json::from_slice(bytes)
            .map_err(|e| AttestError::Format(format!("claims: {e}")))?;
        if wire.format != CLAIMS_FORMAT {
            return Err(AttestError::Format(format!(
                "claims: format is {:?}, expected {CLAIMS_FORMAT:?}",
                wire.format
            )));
        }
        let exporter = match &wire.exporter {
            None => None,
            Some(text) => {
                let mut out = [0u8; 32];
                hex::decode_to_slice(text, &mut out).map_err(|_| {
                    AttestError::Format("claims: exporter is not 64 hex digits".to_string())
                })?;
                Some(out)
            }
        };
        let nonce = match &wire.nonce {
            None => None,
            Some(text) => {
                let bytes = hex::decode(text).map_err(|_| {
                    AttestError::Format("claims: nonce is not hex digits".to_string())
                })?;
                check_nonce(bytes.len())?;
                Some(bytes)
            }
        };
        let claims = Claims {
            issued_at: wire.issued_at,
            runtime: wire.runtime,
            subject: wire.subject,
            tls_key: wire.tls_key,
            nonce,
            exporter,
        };
        if claims.to_bytes() != bytes {
            return Err(AttestError::Format(
                "claims are not in canonical form (keys in byte order, no whitespace, \
                 lowercase hex, every key present)"
                    .to_string(),
            ));
        }
        Ok(claims)
    }
}

fn check_nonce(len: usize) -> Result<(), AttestError> {
    if (NONCE_MIN..=NONCE_MAX).contains(&len) {
        Ok(())
    } else {
        Err(AttestError::Format(format!(
            "claims: nonce is {len} bytes, expected {NONCE_MIN} to {NONCE_MAX}"
        )))
    }
}

/// Serialised as the canonical JSON object (verdicts show the claims).
impl Serialize for Claims {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.wire().serialize(s)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Claims {
        Claims {
            issued_at: 1_751_328_000,
            runtime: RuntimeMeasurement {
                exe: Sha256Digest::of(b"warden"),
                version: "0.1.0 \"dev\"".to_string(),
            },
            subject: Subject::Workload(WorkloadMeasurement {
                code: Sha256Digest::of(b"code"),
                policy: Sha256Digest::of(b"policy"),
            }),
            tls_key: Some(Sha256Digest::of(b"spki")),
            nonce: Some(vec![0xab; 16]),
            exporter: Some([0x11; 32]),
        }
    }

    #[test]
    fn canonical_text_round_trips() {
        let claims = sample();
        let text = claims.to_text();
        let expected = format!(
            "{{\"exporter\":\"{}\",\"format\":\"warden-claims/1\",\"issued_at\":1751328000,\
             \"nonce\":\"{}\",\"runtime\":{{\"exe\":\"{}\",\"version\":\"0.1.0 \\\"dev\\\"\"}},\
             \"subject\":{{\"workload\":{{\"code\":\"{}\",\"policy\":\"{}\"}}}},\"tls_key\":\"{}\"}}",
            "11".repeat(32),
            "ab".repeat(16),
            Sha256Digest::of(b"warden"),
            Sha256Digest::of(b"code"),
            Sha256Digest::of(b"policy"),
            Sha256Digest::of(b"spki"),
        );
        assert_eq!(text, expected);
        assert_eq!(Claims::parse(text.as_bytes()).unwrap(), claims);
        assert_eq!(
            claims.report_data().to_vec(),
            Sha512::digest(text.as_bytes()).to_vec()
        );

        let tree = Claims {
            subject: Subject::Tree(TreeHead {
                root: [0xcd; 32],
                size: 3,
            }),
            tls_key: None,
            nonce: None,
            exporter: None,
            ..sample()
        };
        let text = tree.to_text();
        assert!(text.starts_with("{\"exporter\":null,\"format\""), "{text}");
        assert!(
            text.contains(&format!(
                "\"subject\":{{\"tree\":{{\"root\":\"{}\",\"size\":3}}}},\"tls_key\":null}}",
                "cd".repeat(32)
            )),
            "{text}"
        );
        assert!(text.contains("\"nonce\":null"), "{text}");
        assert_eq!(Claims::parse(text.as_bytes()).unwrap(), tree);
    }

    #[test]
    fn non_canonical_text_is_refused() {
        let text = sample().to_text();
        let nonce = "ab".repeat(16);
        let cases = [
            // Whitespace.
            text.replace(",\"format\"", ", \"format\""),
            format!("{text}\n"),
            // Uppercase hex.
            text.replace(&nonce, &nonce.to_uppercase()),
            // A key left out instead of null.
            sample_without_exporter().replace("\"exporter\":null,", ""),
            // Key order.
            text.replace(
                "\"format\":\"warden-claims/1\",\"issued_at\":1751328000",
                "\"issued_at\":1751328000,\"format\":\"warden-claims/1\"",
            ),
            // An escape written differently.
            text.replace("\\\"dev\\\"", "\\u0022dev\\u0022"),
            // Unknown key, other format, bad nonce length.
            text.replace("\"tls_key\"", "\"extra\":1,\"tls_key\""),
            text.replace("warden-claims/1", "warden-claims/2"),
            text.replace(&nonce, "abab"),
            // Not JSON.
            "claims".to_string(),
        ];
        for case in cases {
            assert_ne!(case, text);
            let err = Claims::parse(case.as_bytes()).unwrap_err();
            assert!(matches!(err, AttestError::Format(_)), "{case}: {err}");
        }
    }

    fn sample_without_exporter() -> String {
        Claims {
            exporter: None,
            ..sample()
        }
        .to_text()
    }

    #[test]
    fn nonce_length_is_checked_before_attesting() {
        let mut claims = sample();
        claims.nonce = Some(vec![1; 7]);
        assert!(claims.check().is_err());
        claims.nonce = Some(vec![1; 65]);
        assert!(claims.check().is_err());
        claims.nonce = Some(vec![1; 64]);
        claims.check().unwrap();
    }
}
