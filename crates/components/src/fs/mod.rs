//! `wasi:filesystem` over the kernel's VFS.
