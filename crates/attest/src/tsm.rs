//! Reports from the Linux configfs-tsm interface.
//!
//! The protocol is the kernel's (`Documentation/ABI/testing/configfs-tsm-report`):
//! make an entry directory under the root (`/sys/kernel/config/tsm/report`),
//! read `generation`, write the options (`privlevel`) and the 64 bytes of
//! report data to `inblob`, read `outblob` (the kernel asks the hardware for
//! the report then), `auxblob` (SEV-SNP: the certificate table) and
//! `provider`, read `generation` again, and remove the entry.
//!
//! `generation` counts every write to the entry. Anyone who can write to the
//! entry between our write and our read (another process using the same
//! name, a confused tool) could make `outblob` carry *their* report data, so
//! the report is refused unless `generation` moved by exactly our writes.
//! Each request also uses a fresh entry name and refuses an existing one.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where Linux mounts the configfs-tsm report interface.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";

/// The kernel driver that produced a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// `sev_guest`: `outblob` is an AMD SEV-SNP attestation report.
    SevGuest,
    /// `tdx_guest`: `outblob` is an Intel TDX quote.
    TdxGuest,
}

impl Provider {
    /// The name the kernel writes to `provider`.
    pub fn name(self) -> &'static str {
        match self {
            Provider::SevGuest => "sev_guest",
            Provider::TdxGuest => "tdx_guest",
        }
    }
}

/// A report the kernel returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsmReport {
    /// Who made it.
    pub provider: Provider,
    /// `outblob`: the SEV-SNP report or the TDX quote.
    pub outblob: Vec<u8>,
    /// `auxblob` when the provider supplies one (SEV-SNP: the GHCB
    /// certificate table with VCEK, ASK and ARK); `None` when absent or empty.
    pub auxblob: Option<Vec<u8>>,
    /// The `generation` value after our writes.
    pub generation: u64,
}

/// Why no report was returned.
#[derive(Debug, thiserror::Error)]
pub enum TsmError {
    /// The root directory does not exist: no configfs-tsm here.
    #[error(
        "no configfs-tsm report interface at {root} (not a confidential VM, \
         kernel without CONFIG_TSM_REPORTS, or configfs not mounted)"
    )]
    Unavailable {
        /// The root that was tried.
        root: PathBuf,
    },
    /// A file operation failed.
    #[error("configfs-tsm: {what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `generation` did not hold a number.
    #[error("configfs-tsm: {path} does not hold a generation number: {text:?}")]
    BadGeneration {
        /// The `generation` file.
        path: PathBuf,
        /// What it held.
        text: String,
    },
    /// Someone else wrote to the entry while we used it.
    #[error(
        "configfs-tsm: generation moved from {before} to {after}, expected {expected}: \
         another writer used the entry, the report may carry their data; refused"
    )]
    ConcurrentWriter {
        /// Before our writes.
        before: u64,
        /// After reading the report.
        after: u64,
        /// `before` plus our writes.
        expected: u64,
    },
    /// `provider` names a driver this crate does not know.
    #[error("configfs-tsm: unknown provider {0:?} (known: sev_guest, tdx_guest)")]
    UnknownProvider(String),
    /// `privlevel` must be 0..=3.
    #[error("configfs-tsm: privilege level {0} is out of range 0..=3")]
    BadPrivlevel(u8),
    /// The kernel returned an empty `outblob`.
    #[error("configfs-tsm: empty outblob from {0}")]
    EmptyReport(PathBuf),
}

type Result<T> = std::result::Result<T, TsmError>;

/// The configfs-tsm report interface under one root directory.
#[derive(Clone, Debug)]
pub struct Tsm {
    root: PathBuf,
    #[cfg(test)]
    on_mkdir: Option<fn(&Path)>,
}

impl Default for Tsm {
    fn default() -> Self {
        Tsm::new(DEFAULT_ROOT)
    }
}

static NEXT_ENTRY: AtomicU64 = AtomicU64::new(0);

impl Tsm {
    /// The interface under `root` (tests use a fake tree; real systems
    /// [`DEFAULT_ROOT`], which is also what [`Tsm::default`] uses).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Tsm {
            root: root.into(),
            #[cfg(test)]
            on_mkdir: None,
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Asks for a report binding `report_data`, at privilege level
    /// `privlevel` (SEV-SNP VMPL; `None` leaves the kernel's default).
    pub fn report(&self, report_data: &[u8; 64], privlevel: Option<u8>) -> Result<TsmReport> {
        if let Some(level) = privlevel {
            if level > 3 {
                return Err(TsmError::BadPrivlevel(level));
            }
        }
        if !self.root.is_dir() {
            return Err(TsmError::Unavailable {
                root: self.root.clone(),
            });
        }
        let name = format!(
            "warden-{}-{}",
            std::process::id(),
            NEXT_ENTRY.fetch_add(1, Ordering::Relaxed)
        );
        let entry = Entry::create(self.root.join(name))?;
        #[cfg(test)]
        if let Some(hook) = self.on_mkdir {
            hook(&entry.path);
        }
        let dir = &entry.path;

        let before = read_generation(&dir.join("generation"))?;
        let mut writes = 0u64;
        if let Some(level) = privlevel {
            write(&dir.join("privlevel"), level.to_string().as_bytes())?;
            writes += 1;
        }
        write(&dir.join("inblob"), report_data)?;
        writes += 1;

        let outblob_path = dir.join("outblob");
        let outblob = fs::read(&outblob_path).map_err(|source| TsmError::Io {
            what: "reading",
            path: outblob_path.clone(),
            source,
        })?;
        let auxblob_path = dir.join("auxblob");
        let auxblob = match fs::read(&auxblob_path) {
            Ok(bytes) if bytes.is_empty() => None,
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(source) => {
                return Err(TsmError::Io {
                    what: "reading",
                    path: auxblob_path,
                    source,
                })
            }
        };
        let provider_path = dir.join("provider");
        let provider = read_text(&provider_path)?;
        let after = read_generation(&dir.join("generation"))?;

        let expected = before.saturating_add(writes);
        if after != expected {
            return Err(TsmError::ConcurrentWriter {
                before,
                after,
                expected,
            });
        }
        let provider = match provider.as_str() {
            "sev_guest" => Provider::SevGuest,
            "tdx_guest" => Provider::TdxGuest,
            _ => return Err(TsmError::UnknownProvider(provider)),
        };
        if outblob.is_empty() {
            return Err(TsmError::EmptyReport(outblob_path));
        }
        Ok(TsmReport {
            provider,
            outblob,
            auxblob,
            generation: after,
        })
    }
}

/// An entry directory we made; removed again on drop.
struct Entry {
    path: PathBuf,
}

impl Entry {
    fn create(path: PathBuf) -> Result<Self> {
        // create_dir, not create_dir_all: an existing entry is someone else's.
        fs::create_dir(&path).map_err(|source| TsmError::Io {
            what: "creating entry",
            path: path.clone(),
            source,
        })?;
        Ok(Entry { path })
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // configfs removes an entry with rmdir although it lists attribute
        // files. A plain directory (a test tree) is not empty then, so remove
        // its contents; on configfs the first rmdir has already succeeded.
        if fs::remove_dir(&self.path).is_err() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|source| TsmError::Io {
        what: "writing",
        path: path.to_path_buf(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|source| TsmError::Io {
        what: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_string())
}

fn read_generation(path: &Path) -> Result<u64> {
    let text = read_text(path)?;
    text.parse().map_err(|_| TsmError::BadGeneration {
        path: path.to_path_buf(),
        text,
    })
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake configfs-tsm tree, shared by this module's tests and the
    //! evidence sources'. The entry's attribute files appear at mkdir (the
    //! hook, as the kernel creates them), `outblob` is a FIFO so that reading
    //! it blocks until the "kernel" thread answers, and that thread bumps
    //! `generation` for each write it sees, as the kernel does.

    use super::*;
    use std::process::Command;
    use std::thread;
    use std::time::{Duration, Instant};

    fn fake_attributes(dir: &Path) {
        fs::write(dir.join("generation"), "7\n").expect("generation");
        fs::write(dir.join("inblob"), b"").expect("inblob");
        fs::write(dir.join("provider"), b"").expect("provider");
        let status = Command::new("mkfifo")
            .arg(dir.join("outblob"))
            .status()
            .expect("mkfifo");
        assert!(status.success());
    }

    #[derive(Clone, Copy)]
    pub(crate) enum Kernel {
        /// Answers as the kernel does.
        Honest,
        /// Another writer writes inblob too before the report is made.
        ConcurrentWriter,
        /// Answers with a provider name nobody knows.
        UnknownProvider(&'static str),
    }

    /// Makes `outblob` from the report data written to `inblob`.
    pub(crate) type MakeOutblob = Box<dyn Fn(&[u8]) -> Vec<u8> + Send>;

    /// What the fake kernel answers: `outblob` made from the report data,
    /// and an `auxblob` (written before `outblob`, so it is there when read).
    pub(crate) struct Answer {
        pub(crate) outblob: MakeOutblob,
        pub(crate) auxblob: Option<Vec<u8>>,
    }

    impl Default for Answer {
        /// A fake "report": `REPORT:` + the report data, no auxblob.
        fn default() -> Self {
            Answer {
                outblob: Box::new(|inblob| {
                    let mut report = b"REPORT:".to_vec();
                    report.extend_from_slice(inblob);
                    report
                }),
                auxblob: None,
            }
        }
    }

    /// Plays the kernel for the first entry that appears under `root`:
    /// waits for inblob, bumps generation, answers outblob with a fake
    /// "report" (`REPORT:` + the report data) and writes provider.
    pub(crate) fn kernel(
        root: PathBuf,
        provider: &'static str,
        mode: Kernel,
    ) -> thread::JoinHandle<()> {
        kernel_answering(root, provider, mode, Answer::default())
    }

    /// [`kernel`] with the answer given.
    pub(crate) fn kernel_answering(
        root: PathBuf,
        provider: &'static str,
        mode: Kernel,
        answer: Answer,
    ) -> thread::JoinHandle<()> {
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let dir = loop {
                assert!(Instant::now() < deadline, "no entry appeared");
                let found = fs::read_dir(&root)
                    .expect("root")
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .find(|p| p.join("outblob").exists());
                match found {
                    Some(dir) => break dir,
                    None => thread::sleep(Duration::from_millis(5)),
                }
            };
            let inblob = loop {
                assert!(Instant::now() < deadline, "inblob never written");
                let data = fs::read(dir.join("inblob")).expect("inblob");
                if data.len() == 64 {
                    break data;
                }
                thread::sleep(Duration::from_millis(5));
            };
            let generation: u64 = fs::read_to_string(dir.join("generation"))
                .expect("generation")
                .trim()
                .parse()
                .expect("number");
            // One for inblob, one for privlevel if it was written, and one
            // more for the other writer.
            let privlevel = dir.join("privlevel").exists();
            let bump =
                1 + u64::from(privlevel) + u64::from(matches!(mode, Kernel::ConcurrentWriter));
            fs::write(dir.join("generation"), format!("{}\n", generation + bump))
                .expect("generation");
            let name = match mode {
                Kernel::UnknownProvider(name) => name,
                _ => provider,
            };
            fs::write(dir.join("provider"), format!("{name}\n")).expect("provider");
            if let Some(aux) = &answer.auxblob {
                fs::write(dir.join("auxblob"), aux).expect("auxblob");
            }
            // Opening the FIFO for writing releases the reader.
            fs::write(dir.join("outblob"), (answer.outblob)(&inblob)).expect("outblob");
        })
    }

    /// A [`Tsm`] on the fake tree under `root`.
    pub(crate) fn tsm(root: &Path) -> Tsm {
        let mut tsm = Tsm::new(root);
        tsm.on_mkdir = Some(fake_attributes);
        tsm
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{kernel, tsm as fake, Kernel};
    use super::*;

    fn entries(root: &Path) -> usize {
        fs::read_dir(root).expect("root").count()
    }

    #[test]
    fn fake_kernel_report_binds_data_and_cleans_up() {
        let root = tempfile::tempdir().expect("tempdir");
        let kernel = kernel(root.path().to_path_buf(), "sev_guest", Kernel::Honest);
        let data = [0x5a; 64];
        let report = fake(root.path()).report(&data, None).expect("report");
        kernel.join().expect("kernel thread");
        assert_eq!(report.provider, Provider::SevGuest);
        assert_eq!(&report.outblob[..7], b"REPORT:");
        assert_eq!(&report.outblob[7..], &data[..]);
        assert_eq!(report.auxblob, None);
        assert_eq!(report.generation, 8);
        assert_eq!(entries(root.path()), 0, "entry directory removed");
    }

    #[test]
    fn fake_kernel_tdx_provider() {
        let root = tempfile::tempdir().expect("tempdir");
        let kernel = kernel(root.path().to_path_buf(), "tdx_guest", Kernel::Honest);
        let report = fake(root.path()).report(&[1; 64], None).expect("report");
        kernel.join().expect("kernel thread");
        assert_eq!(report.provider, Provider::TdxGuest);
    }

    #[test]
    fn concurrent_writer_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let kernel = kernel(
            root.path().to_path_buf(),
            "sev_guest",
            Kernel::ConcurrentWriter,
        );
        let err = fake(root.path()).report(&[2; 64], None).unwrap_err();
        kernel.join().expect("kernel thread");
        match err {
            TsmError::ConcurrentWriter {
                before,
                after,
                expected,
            } => assert_eq!((before, after, expected), (7, 9, 8)),
            other => panic!("expected ConcurrentWriter, got {other}"),
        }
        assert_eq!(entries(root.path()), 0, "entry directory removed");
    }

    #[test]
    fn unknown_provider_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let kernel = kernel(
            root.path().to_path_buf(),
            "sev_guest",
            Kernel::UnknownProvider("arm_cca_guest"),
        );
        let err = fake(root.path()).report(&[3; 64], None).unwrap_err();
        kernel.join().expect("kernel thread");
        assert!(
            matches!(&err, TsmError::UnknownProvider(p) if p == "arm_cca_guest"),
            "{err}"
        );
    }

    #[test]
    fn privlevel_counts_as_a_write() {
        let root = tempfile::tempdir().expect("tempdir");
        let kernel = kernel(root.path().to_path_buf(), "sev_guest", Kernel::Honest);
        let report = fake(root.path()).report(&[4; 64], Some(0)).expect("report");
        kernel.join().expect("kernel thread");
        assert_eq!(report.generation, 9, "inblob and privlevel");
        assert_eq!(
            fake(root.path())
                .report(&[4; 64], Some(4))
                .unwrap_err()
                .to_string(),
            TsmError::BadPrivlevel(4).to_string()
        );
    }

    #[test]
    fn missing_root_is_a_clear_error() {
        let root = tempfile::tempdir().expect("tempdir");
        let missing = root.path().join("no-tsm-here");
        let err = Tsm::new(&missing).report(&[0; 64], None).unwrap_err();
        assert!(matches!(&err, TsmError::Unavailable { root } if *root == missing));
        let text = err.to_string();
        assert!(text.contains("no configfs-tsm report interface"), "{text}");
        assert!(text.contains("no-tsm-here"), "{text}");
    }
}
