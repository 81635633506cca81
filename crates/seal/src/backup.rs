//! Encrypted, integrity-protected backups of a whole store.
//!
//! File layout:
//!
//! ```text
//! "WSEALBK2" ‖ salt (16: the source store's id, for the root key)
//!            ‖ backup id (16, random) ‖ key check (32)
//! frame*     : length (u32 LE) ‖ sealed(payload ‖ kind), AAD = label ‖ backup id ‖ frame number
//! frames     : Begin{generation} · (Namespace{name} · Entry{key, value}*)* · End{counts}
//! ```
//!
//! The frame number in the AAD stops frames from being reordered, dropped or
//! duplicated; the backup id stops them from being spliced in from another
//! backup; the `End` frame (with counts) stops truncation. An import applies
//! everything in one transaction, so a bad backup changes nothing.

use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Bound;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::Table;
use crate::crypto::{derive, MacKey, SealKey};
use crate::error::{Result, SealError};
use crate::keys::{fill_random, sync_dir, KeySource, RootKey};
use crate::record::{read_value_at, tag_range, LookupKey, NsKeys};
use crate::store::Store;

/// The last byte is the backup format: 2 seals with AEGIS, 1 (refused) with
/// AES-256-GCM.
const MAGIC: &[u8; 8] = b"WSEALBK2";
const HEADER_LEN: usize = 8 + 16 + 16 + 32;
const FRAME_LABEL: &[u8] = b"warden-seal/v1/backup-frame\0";

const BEGIN: u8 = 1;
const NAMESPACE: u8 = 2;
const ENTRY: u8 = 3;
const END: u8 = 4;

/// What an export wrote or an import restored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackupSummary {
    pub namespaces: u64,
    pub entries: u64,
    /// The generation of the exported store at the time of the export.
    pub generation: u64,
}

/// What an import does with what the store already holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImportMode {
    /// Keep other keys and namespaces; the backup's entries overwrite.
    #[default]
    Merge,
    /// Delete every namespace first: the store ends up equal to the backup.
    Replace,
}

struct BackupKeys {
    seal: SealKey,
    check: MacKey,
}

impl BackupKeys {
    fn derive(root: &RootKey, backup_id: &[u8; 16]) -> Self {
        BackupKeys {
            seal: SealKey::new(&derive(root, backup_id, &[b"warden-seal/v1/backup"])),
            check: MacKey::new(&derive(root, backup_id, &[b"warden-seal/v1/backup-check"])),
        }
    }

    fn check_parts(backup_id: &[u8; 16]) -> [&[u8]; 2] {
        [b"warden-seal/v1/backup-check", backup_id]
    }
}

fn frame_aad(backup_id: &[u8; 16], index: u64) -> Vec<u8> {
    [FRAME_LABEL, backup_id, &index.to_le_bytes()].concat()
}

impl Store {
    /// Writes every namespace, key and value, from one snapshot, to `path`
    /// (atomically: a temporary file renamed into place, mode 0600).
    pub fn export(&self, path: impl AsRef<Path>) -> Result<BackupSummary> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let io_err = |e: io::Error| SealError::io(format!("cannot write backup {shown}"), e);
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut backup_id = [0u8; 16];
        fill_random(&mut backup_id)?;
        let keys = BackupKeys::derive(&self.inner.keys.root, &backup_id);
        let mut suffix = [0u8; 8];
        fill_random(&mut suffix)?;
        let tmp = dir.join(format!(".warden-backup-{}.tmp", hex::encode(suffix)));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err)?;
        let mut out = FrameWriter {
            w: BufWriter::new(file),
            keys: &keys,
            backup_id,
            index: 0,
            path: &shown,
        };
        let written = (|| -> Result<BackupSummary> {
            let mut header = Vec::with_capacity(HEADER_LEN);
            header.extend_from_slice(MAGIC);
            header.extend_from_slice(&self.inner.store_id);
            header.extend_from_slice(&backup_id);
            header.extend_from_slice(&keys.check.mac(&BackupKeys::check_parts(&backup_id)));
            out.w.write_all(&header).map_err(io_err)?;
            let summary = self.read(|t| {
                let generation = self.inner.load_state(t)?.generation;
                out.frame(BEGIN, &[&generation.to_le_bytes()])?;
                let mut summary = BackupSummary {
                    generation,
                    ..Default::default()
                };
                for name in self.inner.namespace_names(t)? {
                    let ns = self.inner.ns_keys(&name)?;
                    out.frame(NAMESPACE, &[name.as_bytes()])?;
                    summary.namespaces += 1;
                    summary.entries += export_namespace(t, &ns, &mut out)?;
                }
                out.frame(
                    END,
                    &[
                        &summary.namespaces.to_le_bytes(),
                        &summary.entries.to_le_bytes(),
                    ],
                )?;
                Ok(summary)
            })?;
            let file = out.w.into_inner().map_err(|e| io_err(e.into_error()))?;
            file.sync_all().map_err(io_err)?;
            fs::rename(&tmp, path).map_err(io_err)?;
            sync_dir(&dir);
            Ok(summary)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Restores a backup made by [`Store::export`] (of this or another
    /// store) in one transaction. `keys` gives the backup's root key: the
    /// same key file, or the passphrase of the exported store. A backup that
    /// is damaged, tampered with or under another key changes nothing.
    pub fn import(
        &self,
        path: impl AsRef<Path>,
        keys: &dyn KeySource,
        mode: ImportMode,
    ) -> Result<BackupSummary> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let bad = |detail: &str| SealError::Backup {
            path: shown.clone(),
            detail: detail.to_string(),
        };
        let mut file = fs::File::open(path)
            .map_err(|e| SealError::io(format!("cannot open backup {shown}"), e))?;
        let mut header = [0u8; HEADER_LEN];
        file.read_exact(&mut header)
            .map_err(|_| bad("not a warden backup (too short)"))?;
        if header[..7] != MAGIC[..7] {
            return Err(bad("not a warden backup"));
        }
        if header[7] != MAGIC[7] {
            return Err(bad(&format!(
                "a backup of format {} (this warden reads format {}): import it with the warden that wrote it",
                char::from(header[7]),
                char::from(MAGIC[7])
            )));
        }
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&header[8..24]);
        let mut backup_id = [0u8; 16];
        backup_id.copy_from_slice(&header[24..40]);
        let backup_keys = BackupKeys::derive(&keys.root_key(&salt)?, &backup_id);
        if !backup_keys
            .check
            .verify(&BackupKeys::check_parts(&backup_id), &header[40..72])
        {
            return Err(SealError::WrongBackupKey { path: shown });
        }
        self.write(|tx| {
            file.seek(SeekFrom::Start(HEADER_LEN as u64))
                .map_err(|e| SealError::io(format!("cannot read backup {shown}"), e))?;
            let mut frames = FrameReader {
                r: BufReader::new(&file),
                keys: &backup_keys,
                backup_id,
                index: 0,
                path: &shown,
            };
            if mode == ImportMode::Replace {
                for name in self.inner.namespace_names(tx.read_snapshot())? {
                    let ns = self.inner.ns_keys(&name)?;
                    tx.drop_namespace(&ns)?;
                }
            }
            let Some((BEGIN, begin)) = frames.next()? else {
                return Err(bad("it does not start with a begin frame"));
            };
            let generation = read_u64(&begin, 0).ok_or_else(|| bad("malformed begin frame"))?;
            let mut seen = BackupSummary {
                generation,
                ..Default::default()
            };
            let mut current: Option<Arc<NsKeys>> = None;
            loop {
                let Some((kind, body)) = frames.next()? else {
                    return Err(bad("it is truncated (no end frame)"));
                };
                match kind {
                    NAMESPACE => {
                        let name = String::from_utf8(body)
                            .map_err(|_| bad("a namespace name is not UTF-8"))?;
                        let ns = self.inner.ns_keys(&name)?;
                        tx.ensure_registered(&ns)?;
                        current = Some(ns);
                        seen.namespaces += 1;
                    }
                    ENTRY => {
                        let ns = current
                            .as_ref()
                            .ok_or_else(|| bad("an entry comes before any namespace"))?;
                        let key_len = read_u64(&body, 0)
                            .and_then(|n| usize::try_from(n).ok())
                            .filter(|&n| n <= body.len() - 8)
                            .ok_or_else(|| bad("malformed entry frame"))?;
                        let (key, value) = body[8..].split_at(key_len);
                        tx.set_raw(ns, key, value)?;
                        seen.entries += 1;
                    }
                    END => {
                        let counts = (read_u64(&body, 0), read_u64(&body, 8));
                        if counts != (Some(seen.namespaces), Some(seen.entries)) {
                            return Err(bad("its end frame does not match its contents"));
                        }
                        if frames.next()?.is_some() {
                            return Err(bad("it has frames after its end frame"));
                        }
                        return Ok(seen);
                    }
                    _ => return Err(bad("it has a frame of unknown kind")),
                }
            }
        })
    }
}

fn export_namespace(
    t: &dyn crate::backend::ReadTxn,
    ns: &NsKeys,
    out: &mut FrameWriter<'_>,
) -> Result<u64> {
    let (start, end) = tag_range(&ns.tag);
    let mut entries = 0u64;
    let malformed =
        || SealError::integrity(format!("namespace {:?}", ns.name), "a record is malformed");
    t.scan(
        Table::Names,
        Bound::Included(&start),
        end.as_ref()
            .map_or(Bound::Unbounded, |e| Bound::Excluded(e.as_slice())),
        &mut |lk, sealed| {
            let lk = LookupKey::try_from(lk).map_err(|_| malformed())?;
            let key = ns.open_name(&lk, sealed.to_vec())?;
            let value = read_value_at(t, ns, &lk, || ns.subject(&key))?.ok_or_else(malformed)?;
            out.frame(ENTRY, &[&(key.len() as u64).to_le_bytes(), &key, &value])?;
            entries += 1;
            Ok(true)
        },
    )?;
    Ok(entries)
}

fn read_u64(body: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?))
}

struct FrameWriter<'a> {
    w: BufWriter<fs::File>,
    keys: &'a BackupKeys,
    backup_id: [u8; 16],
    index: u64,
    path: &'a str,
}

impl FrameWriter<'_> {
    fn frame(&mut self, kind: u8, parts: &[&[u8]]) -> Result<()> {
        // The kind goes last so the reader can pop it without moving the payload.
        let mut body = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
        for p in parts {
            body.extend_from_slice(p);
        }
        body.push(kind);
        let sealed = self
            .keys
            .seal
            .seal_vec(&frame_aad(&self.backup_id, self.index), body)?;
        let len = u32::try_from(sealed.len()).map_err(|_| SealError::Backup {
            path: self.path.to_string(),
            detail: "a value is too large for a backup frame (4 GiB)".into(),
        })?;
        self.index += 1;
        let io_err = |e: io::Error| SealError::io(format!("cannot write backup {}", self.path), e);
        self.w.write_all(&len.to_le_bytes()).map_err(io_err)?;
        self.w.write_all(&sealed).map_err(io_err)
    }
}

struct FrameReader<'a, R: Read> {
    r: BufReader<R>,
    keys: &'a BackupKeys,
    backup_id: [u8; 16],
    index: u64,
    path: &'a str,
}

impl<R: Read> FrameReader<'_, R> {
    /// The next frame's kind and payload; `None` at a clean end of file.
    fn next(&mut self) -> Result<Option<(u8, Vec<u8>)>> {
        let bad = |detail: String| SealError::Backup {
            path: self.path.to_string(),
            detail,
        };
        let mut len = [0u8; 4];
        match self.r.read(&mut len[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => {
                return Err(SealError::io(
                    format!("cannot read backup {}", self.path),
                    e,
                ))
            }
        }
        self.r
            .read_exact(&mut len[1..])
            .map_err(|_| bad("it is truncated".into()))?;
        let len = u32::from_le_bytes(len) as u64;
        // Reading through `take` grows the buffer with the data actually
        // there, so a forged length cannot make us allocate gigabytes.
        let mut sealed = Vec::new();
        (&mut self.r)
            .take(len)
            .read_to_end(&mut sealed)
            .map_err(|e| SealError::io(format!("cannot read backup {}", self.path), e))?;
        if sealed.len() as u64 != len {
            return Err(bad("it is truncated".into()));
        }
        let mut body = self
            .keys
            .seal
            .open(&frame_aad(&self.backup_id, self.index), sealed)
            .map_err(|_| {
                bad(format!(
                    "frame {} does not authenticate (the backup was modified)",
                    self.index
                ))
            })?;
        self.index += 1;
        let kind = body
            .pop()
            .ok_or_else(|| bad("it has an empty frame".into()))?;
        Ok(Some((kind, body)))
    }
}
