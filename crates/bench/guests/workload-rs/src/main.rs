//! The workloads of the issue-11 component benchmark, one program with a
//! mode argument, as `../../workload.c` is for issue 2. Every mode exits 0
//! only if each call did what it should, so a fast but failing run is never
//! counted.
//!
//!   workload hello               println!("hello, world")
//!   workload write N             N x one 1-byte write to stdout
//!   workload read PATH SIZE      read PATH in 64 KiB chunks; SIZE bytes expected
//!   workload open PATH N         N x File::open(PATH) + drop
//!
//! Each write of `write` is one host call: `write_all` of one byte into
//! stdout's `LineWriter` (which holds it: no newline), then `flush`, which
//! hands that byte to the host in one write, a single
//! `wasi:io/streams#blocking-write-and-flush` under WASI 0.2 and one
//! `write(2)` natively.

use std::fs::File;
use std::io::{Read, Write};
use std::process::exit;

const CHUNK: usize = 64 * 1024;

fn number(text: &str) -> Option<u64> {
    text.parse().ok()
}

fn hello() -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "hello, world").is_ok() && out.flush().is_ok()
}

fn write(n: u64) -> bool {
    let mut out = std::io::stdout().lock();
    for _ in 0..n {
        if out.write_all(b"x").is_err() || out.flush().is_err() {
            return false;
        }
    }
    true
}

fn read(path: &str, expected: u64) -> bool {
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let mut chunk = vec![0u8; CHUNK];
    let mut total = 0u64;
    let mut sum = 0u32;
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(got) => {
                // `sum` keeps the data observed; a pattern file has
                // non-zero bytes.
                sum = sum.wrapping_add(u32::from(chunk[got - 1]));
                total += got as u64;
            }
            Err(_) => return false,
        }
    }
    total == expected && (expected == 0 || sum != 0)
}

fn open(path: &str, n: u64) -> bool {
    for _ in 0..n {
        match File::open(path) {
            Ok(file) => drop(file),
            Err(_) => return false,
        }
    }
    true
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ok = match args[..] {
        ["hello"] => hello(),
        ["write", n] => match number(n) {
            Some(n) => write(n),
            None => exit(2),
        },
        ["read", path, size] => match number(size) {
            Some(size) => read(path, size),
            None => exit(2),
        },
        ["open", path, n] => match number(n) {
            Some(n) => open(path, n),
            None => exit(2),
        },
        _ => {
            eprintln!("usage: workload hello | write N | read PATH SIZE | open PATH N");
            exit(2)
        }
    };
    exit(if ok { 0 } else { 1 })
}
