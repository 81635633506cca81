//! Environment probes.
//!
//! - no argument: every variable, sorted, as `K=V`, then `count=N`
//!   (through std, i.e. wasi-libc's environ).
//! - `raw`: `environ_sizes_get` + `environ_get` directly:
//!   `environ: ok count=N` and the entries sorted, or `environ: err N`.
//! - `get NAME`: `NAME=value` or `NAME unset`.
use warden_test_guests::{args, sys, usage};

fn main() {
    let args = args();
    match args.first().map(String::as_str) {
        None => {
            let mut vars: Vec<(String, String)> = std::env::vars().collect();
            vars.sort();
            for (k, v) in &vars {
                println!("{k}={v}");
            }
            println!("count={}", vars.len());
        }
        Some("raw") => {
            let (mut count, mut size) = (0usize, 0usize);
            let e = unsafe { sys::environ_sizes_get(&mut count, &mut size) };
            if e != 0 {
                println!("environ: err {e}");
                return;
            }
            let mut ptrs = vec![std::ptr::null_mut::<u8>(); count];
            let mut buf = vec![0u8; size];
            let e = unsafe { sys::environ_get(ptrs.as_mut_ptr(), buf.as_mut_ptr()) };
            if e != 0 {
                println!("environ_get: err {e}");
                return;
            }
            println!("environ: ok count={count}");
            let mut entries: Vec<String> = buf
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            entries.sort();
            for e in entries {
                println!("{e}");
            }
        }
        Some("get") => {
            let name = args.get(1).unwrap_or_else(|| usage("env get NAME"));
            match std::env::var(name) {
                Ok(v) => println!("{name}={v}"),
                Err(_) => println!("{name} unset"),
            }
        }
        _ => usage("env [raw | get NAME]"),
    }
}
