//! `warden cc -pthread`: the threads sysroot and what a threaded link needs
//! beyond a plain one (docs/cc.md, "Threads").
//!
//! Debian 12's wasi-libc has no threads build, and neither has trixie's
//! (its .deb ships `wasm32-wasi`, `wasm32-wasip1` and `wasm32-wasip2`
//! only). Rust's `wasm32-wasip1-threads` standard library ships one
//! (`libc.a`, `crt1-*.o`, built by wasi-sdk with `THREAD_MODEL=posix`)
//! without headers; wasi-libc's headers are the same for both thread
//! models (the threads parts are behind `_REENTRANT`, which `-pthread`
//! defines), so trixie's serve. Both archives are pinned by URL and
//! SHA-256, downloaded into the cache (`downloads/`, where
//! scripts/setup.sh also puts them) and unpacked with `dpkg-deb -x` and
//! `tar`: nothing downloaded is ever run, and no apt source is changed.
//!
//! Two things about that libc.a need wasm-ld 14's help:
//! - its malloc refers to `__heap_end`, which wasm-ld defines only from
//!   LLVM 15 on: a copy of its `dlmalloc` object is linked in front of
//!   libc.a with the relocations of that reference pointed at `__heap_base`
//!   (an empty initial heap: malloc grows memory from the first call);
//! - wasm-ld 14 leaves the main thread's `__tls_base` at 0: the guest
//!   library's `start-threads.c` replaces `crt1-command.o` to set it up.

use super::{cache_root, Tools};
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The clang target of a threaded compile. Clang 14 knows no
/// `wasm32-wasi-threads` of its own (`-pthread` is what turns atomics,
/// bulk memory and `_REENTRANT` on); the name picks the sysroot's
/// `include/` and `lib/` subdirectories, as wasi-sdk lays them out.
pub(super) const TARGET: &str = "wasm32-wasi-threads";

/// The maximum of the shared memory, in bytes, unless the user passes
/// `-Wl,--max-memory=N`: a shared memory must declare one, and it is
/// reserved up front by hosts. 1 GiB, as Rust's `wasm32-wasip1-threads`.
pub(super) const DEFAULT_MAX_MEMORY: u64 = 1 << 30;

/// One pinned download.
struct Pinned {
    url: &'static str,
    /// The name it is kept under in `downloads/`.
    file: &'static str,
    sha256: &'static str,
}

/// Debian trixie's wasi-libc: its headers.
const WASI_LIBC_DEB: Pinned = Pinned {
    url: "https://deb.debian.org/debian/pool/main/w/wasi-libc/wasi-libc_0.0~git20241209.574b88d-2_all.deb",
    file: "wasi-libc_0.0~git20241209.574b88d-2_all.deb",
    sha256: "b7716260051d289248b7667f81fa2792c125d888ff51da3fa09c6272cc0bd11d",
};

/// Rust 1.95.0's `wasm32-wasip1-threads` standard library: its
/// self-contained libc.
const RUST_STD: Pinned = Pinned {
    url:
        "https://static.rust-lang.org/dist/2026-04-16/rust-std-1.95.0-wasm32-wasip1-threads.tar.xz",
    file: "rust-std-1.95.0-wasm32-wasip1-threads.tar.xz",
    sha256: "9079935a00a3c3aaf284957bbe82972983ce2708019687cec1f4988c30c1e0f3",
};

/// Where the libc is inside the rust-std tarball.
const SELF_CONTAINED: &str =
    "rust-std-1.95.0-wasm32-wasip1-threads/rust-std-wasm32-wasip1-threads/\
                              lib/rustlib/wasm32-wasip1-threads/lib/self-contained";

/// Where the headers are inside the .deb.
const DEB_INCLUDE: &str = "usr/include/wasm32-wasi";

/// Libraries that are empty in wasi-libc (their functions are in libc.a)
/// but that build scripts ask for: `-pthread` itself links `-lpthread`.
const EMPTY_LIBS: &[&str] = &["crypt", "m", "pthread", "resolv", "rt", "util", "xnet"];

/// The libc member whose `__heap_end` reference is renamed, and the name
/// of the patched copy.
const MALLOC_MEMBER: &str = "dlmalloc.c.obj";
const MALLOC_OBJECT: &str = "dlmalloc-heap-base.o";

/// The threads sysroot in the cache.
pub(super) struct Sysroot {
    pub dir: PathBuf,
    /// The patched malloc, linked in front of libc.a.
    pub malloc_object: PathBuf,
}

impl Sysroot {
    /// What identifies the sysroot, for its directory and the threads
    /// guest library's cache key.
    pub fn id() -> String {
        let mut h = Sha256::new();
        for pin in [&WASI_LIBC_DEB, &RUST_STD] {
            h.update(pin.sha256.as_bytes());
        }
        h.update(b"warden-threads-sysroot 1");
        format!("wasm32-wasi-threads-{}", hex::encode(&h.finalize()[..8]))
    }

    fn at(dir: PathBuf) -> Sysroot {
        let malloc_object = dir.join("lib").join(TARGET).join(MALLOC_OBJECT);
        Sysroot { dir, malloc_object }
    }

    /// The sysroot, downloaded and assembled into the cache if it is not
    /// there.
    pub fn ensure(tools: &Tools) -> Result<Sysroot> {
        let cache = cache_root()?;
        let root = cache.join("sysroot");
        let sysroot = Sysroot::at(root.join(Sysroot::id()));
        if sysroot.dir.join("ok").is_file() {
            return Ok(sysroot);
        }
        let deb = fetch(tools, &cache, &WASI_LIBC_DEB)?;
        let rust_std = fetch(tools, &cache, &RUST_STD)?;
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create cache directory {}", root.display()))?;
        // Assembled aside and renamed into place, as the guest library.
        let tmp = tempfile::Builder::new()
            .prefix(".build-")
            .tempdir_in(&root)
            .with_context(|| format!("cannot create a directory in {}", root.display()))?;
        assemble(tools, tmp.path(), &deb, &rust_std)
            .context("cannot assemble the threads sysroot")?;
        std::fs::write(tmp.path().join("ok"), Sysroot::id())?;
        match std::fs::rename(tmp.path(), &sysroot.dir) {
            Ok(()) => {
                let _ = tmp.keep();
            }
            Err(_) if sysroot.dir.join("ok").is_file() => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot move the sysroot to {}", sysroot.dir.display())
                })
            }
        }
        Ok(sysroot)
    }
}

/// `downloads/FILE` in the cache, downloaded with curl unless it is there
/// already with the pinned digest (scripts/setup.sh may have put it). The
/// user's default cache is looked in too when `WARDEN_CACHE_DIR` names
/// another (as the tests do): the digest says it is the same file.
fn fetch(tools: &Tools, cache: &Path, pin: &Pinned) -> Result<PathBuf> {
    let dir = cache.join("downloads");
    let path = dir.join(pin.file);
    let default = dirs::cache_dir().map(|d| d.join("warden").join("downloads").join(pin.file));
    for candidate in std::iter::once(path.clone()).chain(default) {
        if let Ok(bytes) = std::fs::read(&candidate) {
            if sha256_hex(&bytes) == pin.sha256 {
                return Ok(candidate);
            }
        }
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create cache directory {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    eprintln!("warden cc: downloading {} (once, for -pthread)", pin.url);
    let mut cmd = Command::new("curl");
    cmd.args([
        "--fail",
        "--silent",
        "--show-error",
        "--location",
        "--retry",
        "2",
    ])
    .arg("--output")
    .arg(tmp.path())
    .arg(pin.url);
    let status = match tools.run(&mut cmd) {
        Ok(status) => status,
        Err(e) if is_not_found(&e) => bail!(
            "curl not found, needed to download the threads sysroot: install it with \
             `apt-get install curl`, or run scripts/setup.sh"
        ),
        Err(e) => return Err(e),
    };
    if !status.success() {
        bail!(
            "cannot download {} ({status}); run scripts/setup.sh where the network is reachable, \
             or put the file into {}",
            pin.url,
            dir.display()
        );
    }
    let bytes = std::fs::read(tmp.path())?;
    let digest = sha256_hex(&bytes);
    if digest != pin.sha256 {
        bail!(
            "{} has SHA-256 {digest}, not the pinned {}: refusing it",
            pin.url,
            pin.sha256
        );
    }
    tmp.persist(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
}

/// Unpacks the pinned archives into `dir` as a clang sysroot:
/// `include/wasm32-wasi-threads/`, `lib/wasm32-wasi-threads/`.
fn assemble(tools: &Tools, dir: &Path, deb: &Path, rust_std: &Path) -> Result<()> {
    let unpack = dir.join("unpack");
    std::fs::create_dir_all(&unpack)?;
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("-x").arg(deb).arg(&unpack);
    run_tool(tools, &mut cmd, "dpkg-deb", "dpkg")?;
    let mut cmd = Command::new("tar");
    cmd.arg("-xJf")
        .arg(rust_std)
        .arg("-C")
        .arg(&unpack)
        .arg(format!("{SELF_CONTAINED}/libc.a"))
        .arg(format!("{SELF_CONTAINED}/crt1-command.o"))
        .arg(format!("{SELF_CONTAINED}/crt1-reactor.o"));
    run_tool(tools, &mut cmd, "tar (with xz)", "tar xz-utils")?;

    let include = dir.join("include");
    std::fs::create_dir_all(&include)?;
    std::fs::rename(unpack.join(DEB_INCLUDE), include.join(TARGET))
        .context("the wasi-libc package has no usr/include/wasm32-wasi")?;
    let lib = dir.join("lib").join(TARGET);
    std::fs::create_dir_all(&lib)?;
    for file in ["libc.a", "crt1-command.o", "crt1-reactor.o"] {
        std::fs::rename(unpack.join(SELF_CONTAINED).join(file), lib.join(file))
            .with_context(|| format!("the rust-std archive has no {file}"))?;
    }
    for name in EMPTY_LIBS {
        std::fs::write(lib.join(format!("lib{name}.a")), b"!<arch>\n")?;
    }
    let libc = std::fs::read(lib.join("libc.a"))?;
    let malloc = archive_member(&libc, MALLOC_MEMBER)?
        .ok_or_else(|| anyhow!("libc.a has no {MALLOC_MEMBER}"))?;
    let (patched, changed) = retarget_data_relocs(malloc, "__heap_end", "__heap_base")
        .with_context(|| format!("cannot read libc.a's {MALLOC_MEMBER}"))?;
    if changed == 0 {
        bail!("libc.a's {MALLOC_MEMBER} does not refer to __heap_end");
    }
    std::fs::write(lib.join(MALLOC_OBJECT), patched)?;
    std::fs::remove_dir_all(&unpack)?;
    Ok(())
}

fn run_tool(tools: &Tools, cmd: &mut Command, what: &str, package: &str) -> Result<()> {
    let status = match tools.run(cmd) {
        Ok(status) => status,
        Err(e) if is_not_found(&e) => {
            bail!("{what} not found: install it with `apt-get install {package}`")
        }
        Err(e) => return Err(e),
    };
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// The member `name` of a GNU `ar` archive (with its `//` table of long
/// names, as llvm-ar writes them).
fn archive_member<'a>(ar: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    let body = ar
        .strip_prefix(b"!<arch>\n")
        .ok_or_else(|| anyhow!("not an ar archive"))?;
    let mut long_names: &[u8] = &[];
    let mut at = 0;
    while at < body.len() {
        let header = body
            .get(at..at + 60)
            .ok_or_else(|| anyhow!("truncated archive header at {at}"))?;
        let size: usize = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| anyhow!("bad member size at {at}"))?;
        let data = body
            .get(at + 60..at + 60 + size)
            .ok_or_else(|| anyhow!("truncated archive member at {at}"))?;
        let raw = std::str::from_utf8(&header[..16])
            .map_err(|_| anyhow!("bad member name at {at}"))?
            .trim_end();
        let member = if raw == "//" {
            long_names = data;
            None
        } else if let Some(offset) = raw.strip_prefix('/').and_then(|o| o.parse::<usize>().ok()) {
            let rest = long_names
                .get(offset..)
                .ok_or_else(|| anyhow!("bad long name offset {offset}"))?;
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let long = &rest[..end];
            Some(long.strip_suffix(b"/").unwrap_or(long))
        } else {
            Some(raw.strip_suffix('/').unwrap_or(raw).as_bytes())
        };
        if member == Some(name.as_bytes()) {
            return Ok(Some(data));
        }
        at += 60 + size + (size & 1);
    }
    Ok(None)
}

fn read_uleb(bytes: &[u8], at: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = *bytes
            .get(*at)
            .ok_or_else(|| anyhow!("truncated LEB128 at {at}"))?;
        *at += 1;
        if shift > 63 {
            bail!("LEB128 too long at {at}");
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

fn write_uleb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads `len` then that many bytes.
fn read_bytes<'a>(bytes: &'a [u8], at: &mut usize) -> Result<&'a [u8]> {
    let len = read_uleb(bytes, at)? as usize;
    let out = bytes
        .get(*at..*at + len)
        .ok_or_else(|| anyhow!("truncated name at {at}"))?;
    *at += len;
    Ok(out)
}

/// One section of a module or object: `(id, payload, whole section)`.
type Section<'a> = (u8, &'a [u8], &'a [u8]);

/// The sections of a module or object.
fn sections(module: &[u8]) -> Result<Vec<Section<'_>>> {
    if module.len() < 8 || &module[..4] != b"\0asm" {
        bail!("not a WebAssembly module");
    }
    let mut out = Vec::new();
    let mut at = 8;
    while at < module.len() {
        let start = at;
        let id = module[at];
        at += 1;
        let size = read_uleb(module, &mut at)? as usize;
        let payload = module
            .get(at..at + size)
            .ok_or_else(|| anyhow!("truncated section at {start}"))?;
        at += size;
        out.push((id, payload, &module[start..at]));
    }
    Ok(out)
}

fn push_section(out: &mut Vec<u8>, id: u8, payload: &[u8]) {
    out.push(id);
    write_uleb(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// The index, in its `linking` section's symbol table, of each undefined
/// data symbol of a relocatable object, by name.
fn undefined_data_symbols(object: &[u8]) -> Result<Vec<(u64, Vec<u8>)>> {
    const SYMTAB: u8 = 8;
    const UNDEFINED: u64 = 0x10;
    const EXPLICIT_NAME: u64 = 0x40;
    let mut out = Vec::new();
    for (id, payload, _) in sections(object)? {
        let mut at = 0;
        if id != 0 || read_bytes(payload, &mut at).ok() != Some(&b"linking"[..]) {
            continue;
        }
        read_uleb(payload, &mut at)?; // version
        while at < payload.len() {
            let kind = payload[at];
            at += 1;
            let data = read_bytes(payload, &mut at)?;
            if kind != SYMTAB {
                continue;
            }
            let mut p = 0;
            let count = read_uleb(data, &mut p)?;
            for index in 0..count {
                let sym_kind = *data
                    .get(p)
                    .ok_or_else(|| anyhow!("truncated symbol table"))?;
                p += 1;
                let flags = read_uleb(data, &mut p)?;
                match sym_kind {
                    // Function, global, tag, table: an index, then a name
                    // if defined or explicitly named.
                    0 | 2 | 4 | 5 => {
                        read_uleb(data, &mut p)?;
                        if flags & UNDEFINED == 0 || flags & EXPLICIT_NAME != 0 {
                            read_bytes(data, &mut p)?;
                        }
                    }
                    // Data: a name, then where it is if defined.
                    1 => {
                        let name = read_bytes(data, &mut p)?;
                        if flags & UNDEFINED != 0 {
                            out.push((index, name.to_vec()));
                        } else {
                            for _ in 0..3 {
                                read_uleb(data, &mut p)?;
                            }
                        }
                    }
                    // Section: its number.
                    3 => {
                        read_uleb(data, &mut p)?;
                    }
                    other => bail!("unknown symbol kind {other}"),
                }
            }
        }
    }
    Ok(out)
}

/// Points the memory-address relocations of a relocatable object that
/// name the undefined data symbol `from` at the undefined data symbol `to`
/// instead. Returns the object and how many relocations changed.
///
/// Renaming the symbol would be simpler, but `to` is usually in the table
/// already and a name may appear there once. The `from` entry stays,
/// unreferenced (wasm-ld reports an undefined symbol only where a
/// relocation uses it). Everything but the `reloc.*` sections is copied
/// byte for byte; their offsets are relative to the sections they patch,
/// which do not move.
fn retarget_data_relocs(object: &[u8], from: &str, to: &str) -> Result<(Vec<u8>, usize)> {
    // Relocation types that carry an addend, and those that address
    // memory through a data symbol (LLVM's WasmRelocs.def).
    const WITH_ADDEND: &[u8] = &[3, 4, 5, 8, 9, 11, 14, 15, 16, 17, 21, 22, 23, 25];
    const MEMORY_ADDR: &[u8] = &[3, 4, 5, 11, 14, 15, 16, 17, 21, 23, 25];
    let symbols = undefined_data_symbols(object)?;
    let find = |name: &str| {
        symbols
            .iter()
            .find(|(_, n)| n == name.as_bytes())
            .map(|(i, _)| *i)
            .ok_or_else(|| anyhow!("the object has no undefined data symbol {name}"))
    };
    let (from, to) = (find(from)?, find(to)?);
    let mut changed = 0;
    let mut out = object[..8.min(object.len())].to_vec();
    for (id, payload, whole) in sections(object)? {
        let mut at = 0;
        let is_reloc = id == 0
            && read_bytes(payload, &mut at)
                .ok()
                .is_some_and(|name| name.starts_with(b"reloc."));
        if !is_reloc {
            out.extend_from_slice(whole);
            continue;
        }
        let mut new = payload[..at].to_vec();
        let target_at = at;
        read_uleb(payload, &mut at)?; // the section it patches
        new.extend_from_slice(&payload[target_at..at]);
        let count = read_uleb(payload, &mut at)?;
        write_uleb(&mut new, count);
        for _ in 0..count {
            let ty = *payload
                .get(at)
                .ok_or_else(|| anyhow!("truncated relocations"))?;
            at += 1;
            let offset_at = at;
            read_uleb(payload, &mut at)?;
            let offset = &payload[offset_at..at];
            let mut index = read_uleb(payload, &mut at)?;
            let addend_at = at;
            if WITH_ADDEND.contains(&ty) {
                // A signed LEB128: its bytes are copied as they are.
                while payload.get(at).ok_or_else(|| anyhow!("truncated addend"))? & 0x80 != 0 {
                    at += 1;
                }
                at += 1;
            }
            if MEMORY_ADDR.contains(&ty) && index == from {
                index = to;
                changed += 1;
            }
            new.push(ty);
            new.extend_from_slice(offset);
            write_uleb(&mut new, index);
            new.extend_from_slice(&payload[addend_at..at]);
        }
        if at != payload.len() {
            bail!("trailing bytes in a relocation section");
        }
        push_section(&mut out, 0, &new);
    }
    Ok((out, changed))
}

/// Adds the export `memory` of the (imported, shared) memory, unless the
/// module exports one already. wasm-ld 14 has no `--export-memory`, and
/// with `--import-memory` it exports none; WASI hosts find the memory
/// through that export, as wasi-sdk's and Rust's threaded modules have it.
pub(super) fn export_memory(module: &[u8]) -> Result<Option<Vec<u8>>> {
    use wasmparser::{ExternalKind, Parser, Payload, TypeRef};
    let mut memory_imported = false;
    for payload in Parser::new(0).parse_all(module) {
        match payload? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if matches!(import?.ty, TypeRef::Memory(_)) {
                        memory_imported = true;
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    if export.kind == ExternalKind::Memory {
                        return Ok(None);
                    }
                    if export.name == "memory" {
                        bail!("the module exports something else as `memory`");
                    }
                }
            }
            _ => {}
        }
    }
    if !memory_imported {
        bail!("the module imports no memory (was it linked with --import-memory?)");
    }
    let mut entry = Vec::new();
    write_uleb(&mut entry, 6);
    entry.extend_from_slice(b"memory");
    entry.extend_from_slice(&[0x02, 0x00]);

    const EXPORT: u8 = 7;
    let sections = sections(module)?;
    let mut out = module[..8].to_vec();
    let mut done = false;
    for (id, payload, whole) in &sections {
        if *id == EXPORT {
            let mut at = 0;
            let count = read_uleb(payload, &mut at)?;
            let mut new = Vec::with_capacity(payload.len() + entry.len() + 1);
            write_uleb(&mut new, count + 1);
            new.extend_from_slice(&payload[at..]);
            new.extend_from_slice(&entry);
            push_section(&mut out, EXPORT, &new);
            done = true;
            continue;
        }
        // No export section: one goes before start, element, data count,
        // code and data, in the order the binary format fixes.
        if !done && (8..=12).contains(id) {
            let mut new = vec![1u8];
            new.extend_from_slice(&entry);
            push_section(&mut out, EXPORT, &new);
            done = true;
        }
        out.extend_from_slice(whole);
    }
    if !done {
        let mut new = vec![1u8];
        new.extend_from_slice(&entry);
        push_section(&mut out, EXPORT, &new);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 30] {
            let mut out = Vec::new();
            write_uleb(&mut out, v);
            let mut at = 0;
            assert_eq!(read_uleb(&out, &mut at).unwrap(), v);
            assert_eq!(at, out.len());
        }
    }

    #[test]
    fn finds_long_named_members() {
        let mut ar = b"!<arch>\n".to_vec();
        let names = b"a-rather-long-member-name.c.obj/\n";
        ar.extend(format!("{:<48}{:<10}`\n", "//", names.len()).as_bytes());
        ar.extend(names);
        ar.push(b'\n');
        ar.extend(format!("{:<48}{:<10}`\n", "/0", 3).as_bytes());
        ar.extend(b"abc\n");
        ar.extend(format!("{:<48}{:<10}`\n", "x.o/", 2).as_bytes());
        ar.extend(b"xy");
        assert_eq!(
            archive_member(&ar, "a-rather-long-member-name.c.obj").unwrap(),
            Some(&b"abc"[..])
        );
        assert_eq!(archive_member(&ar, "x.o").unwrap(), Some(&b"xy"[..]));
        assert_eq!(archive_member(&ar, "y.o").unwrap(), None);
    }

    #[test]
    fn retargets_relocations_of_a_data_symbol() {
        // Symbols: 0 undefined data `__heap_base`, 1 undefined data
        // `__heap_end`, 2 a defined function `f` (index 0).
        let table = [
            &[3u8][..],
            &[1, 0x10, 11],
            b"__heap_base",
            &[1, 0x10, 10],
            b"__heap_end",
            &[0, 0, 0, 1, b'f'],
        ]
        .concat();
        let mut linking = vec![7u8];
        linking.extend(b"linking");
        linking.extend([2u8, 8, table.len() as u8]);
        linking.extend(&table);
        // reloc.CODE for section 3: a MEMORY_ADDR_SLEB (4) of symbol 1 at
        // offset 5 with addend -1, a FUNCTION_INDEX_LEB (0) of symbol 2.
        let relocs = |sym: u8| {
            let mut r = vec![10u8];
            r.extend(b"reloc.CODE");
            r.extend([3u8, 2, 4, 5, sym, 0x7f, 0, 9, 2]);
            r
        };
        let object = |sym: u8| {
            let mut o = b"\0asm\x01\0\0\0".to_vec();
            push_section(&mut o, 0, &linking);
            push_section(&mut o, 0, &relocs(sym));
            o
        };
        let (patched, n) = retarget_data_relocs(&object(1), "__heap_end", "__heap_base").unwrap();
        assert_eq!(n, 1);
        assert_eq!(patched, object(0));
        assert!(retarget_data_relocs(&object(1), "__heap_end", "nope").is_err());
    }
}
