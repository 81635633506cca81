//! warden's guest library: what a POSIX C program needs, beyond wasi-libc,
//! to fork, exec, wait, pipe, dup and handle signals as a cage.
//!
//! The library is C (under `c/`), built by `warden cc` with Debian's clang
//! for `wasm32-wasi` and linked into every program it compiles:
//!
//! - `c/include/`: headers placed in front of wasi-libc's. `sys/wait.h` is
//!   new; `unistd.h`, `signal.h` and `fcntl.h` include wasi-libc's with
//!   `#include_next` and declare what it leaves out (`fork`, the `exec`
//!   family, `pipe`, `dup2`, `kill`, `sigaction`, signal sets, ...).
//!   `warden/prelude.h` is injected with `-include`; `warden/abi.h`
//!   declares the raw imports.
//! - `c/src/`: their implementation over the `warden` imports of
//!   `docs/process-abi.md`, plus the two exports the host calls:
//!   `__warden_fork_buffer` (the asyncify buffer fork unwinds into) and
//!   `__warden_signal` (runs an installed handler).
//!
//! This crate only carries the files and the facts `warden cc` needs about
//! them; it has no dependencies and compiles nothing itself.

use std::io;
use std::path::Path;

/// One file of the library, by its path under `c/include/` or `c/src/`.
#[derive(Clone, Copy, Debug)]
pub struct File {
    pub path: &'static str,
    pub contents: &'static str,
}

macro_rules! files {
    ($dir:literal: $($path:literal),* $(,)?) => {
        &[$(File {
            path: $path,
            contents: include_str!(concat!("../c/", $dir, "/", $path)),
        }),*]
    };
}

/// Headers, relative to the include directory (`-isystem`).
pub const HEADERS: &[File] = files!("include":
    "fcntl.h",
    "pthread.h",
    "signal.h",
    "sys/wait.h",
    "unistd.h",
    "warden/abi.h",
    "warden/prelude.h",
);

/// The archive's sources: each becomes one member, linked only when the
/// program uses a symbol it defines.
pub const ARCHIVE_SOURCES: &[File] = files!("src":
    "dup.c",
    "exec.c",
    "fcntl.c",
    "fork.c",
    "kill.c",
    "pipe.c",
    "proc.c",
    "restart.c",
    "signal.c",
    "sigset.c",
    "sigstate.c",
    "thread-exit.c",
    "wait.c",
);

/// Private headers of the sources.
pub const PRIVATE_HEADERS: &[File] = files!("src": "internal.h");

/// Linked into every module as an object, not from the archive: it carries
/// the `mutable-globals` target feature that `--export=__stack_pointer`
/// needs.
pub const FEATURES_SOURCE: File = File {
    path: "features.c",
    contents: include_str!("../c/src/features.c"),
};

/// The entry point of a threaded command (`warden cc -pthread`), linked as
/// an object in place of wasi-libc's `crt1-command.o`: it sets up the main
/// thread's thread-local storage, which Debian 12's wasm-ld 14 leaves to
/// the program.
pub const THREADS_START_SOURCE: File = File {
    path: "start-threads.c",
    contents: include_str!("../c/src/start-threads.c"),
};

/// The header `warden cc` injects with `-include`.
pub const PRELUDE: &str = "warden/prelude.h";

/// Flags for compiling the library and the programs that use it (besides
/// the target, the include directory and the prelude).
pub const COMPILE_FLAGS: &[&str] = &["-mmutable-globals"];

/// wasi-libc's emulation libraries a program links after the guest
/// library: `psignal`/`strsignal` (the guest library defines everything
/// else of wasi-emulated-signal, so its `signal.o` is never pulled) and
/// `clock`/`times`.
pub const LINK_LIBS: &[&str] = &["-lwasi-emulated-signal", "-lwasi-emulated-process-clocks"];

/// Globals every module exports, for fork (docs/process-abi.md).
pub const EXPORTED_GLOBALS: &[&str] = &["__stack_pointer"];

/// Globals a threaded module exports besides, for fork: a thread's TLS
/// base, which the child's only thread keeps.
pub const EXPORTED_THREAD_GLOBALS: &[&str] = &["__tls_base"];

/// `warden` imports that mean the module can fork or exec: when a module
/// imports one of these, `warden cc` runs asyncify on it.
pub const FORK_OR_EXEC_IMPORTS: &[&str] = &["proc_fork", "proc_exec"];

/// The imports asyncify may unwind from, as binaryen's
/// `asyncify-imports` pass argument spells them.
pub const ASYNCIFY_IMPORTS: &[&str] = &["warden.proc_fork"];

/// Total size of the asyncify buffer `__warden_fork_buffer` returns: an
/// 8-byte header (current position, end) and the space after it.
pub const FORK_BUFFER_SIZE: u32 = 65536;

/// Name of the archive `warden cc` builds from [`ARCHIVE_SOURCES`].
pub const ARCHIVE_NAME: &str = "libwarden.a";

/// Writes the headers to `dir/include` and the sources to `dir/src`.
pub fn write_to(dir: &Path) -> io::Result<()> {
    let groups: [(&str, &[File]); 5] = [
        ("include", HEADERS),
        ("src", ARCHIVE_SOURCES),
        ("src", PRIVATE_HEADERS),
        ("src", std::slice::from_ref(&FEATURES_SOURCE)),
        ("src", std::slice::from_ref(&THREADS_START_SOURCE)),
    ];
    for (sub, files) in groups {
        for file in files {
            let path = dir.join(sub).join(file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, file.contents)?;
        }
    }
    Ok(())
}

/// Every embedded file, for hashing: `(group/path, contents)`.
pub fn all_files() -> impl Iterator<Item = (String, &'static str)> {
    let include = HEADERS
        .iter()
        .map(|f| (format!("include/{}", f.path), f.contents));
    let src = ARCHIVE_SOURCES
        .iter()
        .chain(PRIVATE_HEADERS)
        .chain(std::iter::once(&FEATURES_SOURCE))
        .chain(std::iter::once(&THREADS_START_SOURCE))
        .map(|f| (format!("src/{}", f.path), f.contents));
    include.chain(src)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn on_disk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                on_disk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.insert(name);
            }
        }
    }

    /// Every file under `c/include` and `c/src` is embedded, and nothing
    /// else: a new source cannot be forgotten.
    #[test]
    fn embeds_every_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("c");
        let mut disk = BTreeSet::new();
        on_disk(&root.join("include"), "include/", &mut disk);
        on_disk(&root.join("src"), "src/", &mut disk);
        let embedded: BTreeSet<String> = all_files().map(|(p, _)| p).collect();
        assert_eq!(disk, embedded);
    }

    #[test]
    fn writes_the_tree() {
        let dir = std::env::temp_dir().join(format!("warden-guest-{}", std::process::id()));
        write_to(&dir).unwrap();
        assert!(dir.join("include/sys/wait.h").is_file());
        assert!(dir.join("include").join(PRELUDE).is_file());
        assert!(dir.join("src/fork.c").is_file());
        assert!(dir.join("src/internal.h").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn buffer_size_matches_the_c_source() {
        let fork = ARCHIVE_SOURCES.iter().find(|f| f.path == "fork.c").unwrap();
        assert!(fork.contents.contains(&format!(
            "#define WARDEN_FORK_BUFFER_SIZE {FORK_BUFFER_SIZE}"
        )));
    }
}
