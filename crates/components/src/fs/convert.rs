//! From the kernel's types to those of `wasi:filesystem` 0.2 and 0.3.
//!
//! The two versions' bindings are distinct Rust types with the same names
//! and, mostly, the same variants, so one macro writes the conversions for
//! both: it is invoked in `p2` and in `p3` with their `types` imported,
//! and with what differs passed in (the clock's record, the trappable
//! error, the catch-all descriptor type and `EAGAIN`'s code, which 0.3
//! lacks).
//!
//! Errno to `error-code`: the two enumerations descend from the same
//! POSIX list, so most codes have a namesake. The choices for the others:
//!
//! - `NOTCAPABLE` (a path that would leave its mount: `..` past the root,
//!   an absolute path or symlink) is `not-permitted`, as the spec asks and
//!   as wasmtime-wasi answers (cap-std's refusal).
//! - `NOSYS` and `NOTSUP` are `unsupported`, `RANGE` is `overflow`,
//!   `CANCELED` is `interrupted`, and `TOOBIG`, `DOM` and `FAULT` are
//!   `invalid`.
//! - Running out of descriptors (`MFILE`, `NFILE`) or buffers (`NOBUFS`) is
//!   `insufficient-memory`, the only resource-exhaustion code there is.
//! - The rest (network, process and message codes a filesystem call cannot
//!   meet, `STALE`, `SUCCESS`) are `io`.

/// Writes, where it is invoked, with that version's `types` in scope:
/// `error_code`, `From<Fail>` for its trappable error, `descriptor_type`,
/// `flags_of`, `open_spec`, `follow`, `stat_of`, `time_spec`, `hash_of`
/// and `entry_of`.
macro_rules! filesystem_conversions {
    (
        time: $time:ident,
        error: $error:ty,
        unknown: $unknown:expr,
        would_block: $again:expr $(,)?
    ) => {
        /// The `error-code` for `errno`.
        pub fn error_code(errno: warden_kernel::abi::Errno) -> ErrorCode {
            use warden_kernel::abi::Errno;
            match errno {
                Errno::ACCES => ErrorCode::Access,
                Errno::AGAIN => $again,
                Errno::ALREADY => ErrorCode::Already,
                Errno::BADF => ErrorCode::BadDescriptor,
                Errno::BUSY => ErrorCode::Busy,
                Errno::DEADLK => ErrorCode::Deadlock,
                Errno::DQUOT => ErrorCode::Quota,
                Errno::EXIST => ErrorCode::Exist,
                Errno::FBIG => ErrorCode::FileTooLarge,
                Errno::ILSEQ => ErrorCode::IllegalByteSequence,
                Errno::INPROGRESS => ErrorCode::InProgress,
                Errno::INTR | Errno::CANCELED => ErrorCode::Interrupted,
                Errno::INVAL | Errno::TOOBIG | Errno::DOM | Errno::FAULT => ErrorCode::Invalid,
                Errno::IO => ErrorCode::Io,
                Errno::ISDIR => ErrorCode::IsDirectory,
                Errno::LOOP => ErrorCode::Loop,
                Errno::MLINK => ErrorCode::TooManyLinks,
                Errno::MSGSIZE => ErrorCode::MessageSize,
                Errno::NAMETOOLONG => ErrorCode::NameTooLong,
                Errno::NODEV => ErrorCode::NoDevice,
                Errno::NOENT => ErrorCode::NoEntry,
                Errno::NOLCK => ErrorCode::NoLock,
                Errno::NOMEM | Errno::MFILE | Errno::NFILE | Errno::NOBUFS => {
                    ErrorCode::InsufficientMemory
                }
                Errno::NOSPC => ErrorCode::InsufficientSpace,
                Errno::NOTDIR => ErrorCode::NotDirectory,
                Errno::NOTEMPTY => ErrorCode::NotEmpty,
                Errno::NOTRECOVERABLE => ErrorCode::NotRecoverable,
                Errno::NOTSUP | Errno::NOSYS => ErrorCode::Unsupported,
                Errno::NOTTY => ErrorCode::NoTty,
                Errno::NXIO => ErrorCode::NoSuchDevice,
                Errno::OVERFLOW | Errno::RANGE => ErrorCode::Overflow,
                Errno::PERM | Errno::NOTCAPABLE => ErrorCode::NotPermitted,
                Errno::PIPE => ErrorCode::Pipe,
                Errno::ROFS => ErrorCode::ReadOnly,
                Errno::SPIPE => ErrorCode::InvalidSeek,
                Errno::TXTBSY => ErrorCode::TextFileBusy,
                Errno::XDEV => ErrorCode::CrossDevice,
                _ => ErrorCode::Io,
            }
        }

        impl From<$crate::fs::ops::Fail> for $error {
            fn from(fail: $crate::fs::ops::Fail) -> $error {
                match fail {
                    $crate::fs::ops::Fail::Code(errno) => error_code(errno).into(),
                    $crate::fs::ops::Fail::Trap(err) => <$error>::trap(err),
                }
            }
        }

        fn descriptor_type(kind: $crate::fs::ops::Kind) -> DescriptorType {
            use $crate::fs::ops::Kind;
            match kind {
                Kind::BlockDevice => DescriptorType::BlockDevice,
                Kind::CharacterDevice => DescriptorType::CharacterDevice,
                Kind::Directory => DescriptorType::Directory,
                Kind::Fifo => DescriptorType::Fifo,
                Kind::SymbolicLink => DescriptorType::SymbolicLink,
                Kind::RegularFile => DescriptorType::RegularFile,
                Kind::Socket => DescriptorType::Socket,
                Kind::Unknown => $unknown,
            }
        }

        /// The flags `get-flags` reports: those the descriptor was opened
        /// with, `write` implied by `create` and `truncate`.
        fn flags_of(d: &$crate::fs::Descriptor) -> DescriptorFlags {
            use warden_kernel::abi::fdflags;
            let mut flags = DescriptorFlags::empty();
            for (on, flag) in [
                (d.read, DescriptorFlags::READ),
                (d.write, DescriptorFlags::WRITE),
                (
                    d.mutate_asked && d.is_dir(),
                    DescriptorFlags::MUTATE_DIRECTORY,
                ),
                (
                    d.sync & fdflags::SYNC != 0,
                    DescriptorFlags::FILE_INTEGRITY_SYNC,
                ),
                (
                    d.sync & fdflags::DSYNC != 0,
                    DescriptorFlags::DATA_INTEGRITY_SYNC,
                ),
                (
                    d.sync & fdflags::RSYNC != 0,
                    DescriptorFlags::REQUESTED_WRITE_SYNC,
                ),
            ] {
                if on {
                    flags |= flag;
                }
            }
            flags
        }

        fn follow(flags: PathFlags) -> bool {
            flags.contains(PathFlags::SYMLINK_FOLLOW)
        }

        /// What `open-at` asks for.
        fn open_spec(
            path_flags: PathFlags,
            oflags: OpenFlags,
            dflags: DescriptorFlags,
        ) -> $crate::fs::ops::OpenSpec {
            $crate::fs::ops::OpenSpec {
                follow: follow(path_flags),
                create: oflags.contains(OpenFlags::CREATE),
                directory: oflags.contains(OpenFlags::DIRECTORY),
                exclusive: oflags.contains(OpenFlags::EXCLUSIVE),
                truncate: oflags.contains(OpenFlags::TRUNCATE),
                read: dflags.contains(DescriptorFlags::READ),
                write: dflags.contains(DescriptorFlags::WRITE),
                mutate: dflags.contains(DescriptorFlags::MUTATE_DIRECTORY),
                sync: $crate::fs::ops::OpenSpec::sync_flags(
                    dflags.contains(DescriptorFlags::FILE_INTEGRITY_SYNC),
                    dflags.contains(DescriptorFlags::DATA_INTEGRITY_SYNC),
                    dflags.contains(DescriptorFlags::REQUESTED_WRITE_SYNC),
                ),
            }
        }

        fn stat_of(
            (st, kind): (warden_kernel::abi::Filestat, $crate::fs::ops::Kind),
        ) -> DescriptorStat {
            let time = |nanos: u64| {
                let (seconds, nanoseconds) = $crate::fs::ops::split_nanos(nanos);
                Some($time {
                    seconds: seconds as _,
                    nanoseconds,
                })
            };
            DescriptorStat {
                type_: descriptor_type(kind),
                link_count: st.nlink,
                size: st.size,
                data_access_timestamp: time(st.atim),
                data_modification_timestamp: time(st.mtim),
                status_change_timestamp: time(st.ctim),
            }
        }

        fn time_spec(
            t: NewTimestamp,
        ) -> $crate::fs::ops::Res<Option<warden_kernel::vfs::TimeSpec>> {
            Ok(match t {
                NewTimestamp::NoChange => None,
                NewTimestamp::Now => Some(warden_kernel::vfs::TimeSpec::Now),
                NewTimestamp::Timestamp(t) => Some($crate::fs::ops::time_at(
                    i128::from(t.seconds),
                    t.nanoseconds,
                )?),
            })
        }

        fn hash_of((lower, upper): (u64, u64)) -> MetadataHashValue {
            MetadataHashValue { lower, upper }
        }

        fn entry_of((name, kind): (String, $crate::fs::ops::Kind)) -> DirectoryEntry {
            DirectoryEntry {
                type_: descriptor_type(kind),
                name,
            }
        }
    };
}

pub(crate) use filesystem_conversions;
