//! Components in warden: `wasi:cli/command` components for WASI 0.2 and 0.3
//! run on wasmtime-wasi under warden's policy, with `wasi:filesystem`
//! served from the kernel's VFS (so host, virtual and sealed mounts work
//! for both ABIs) and network and HTTP only to allow-listed addresses.

pub mod fs;
