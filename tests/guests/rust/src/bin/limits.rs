//! Limits, traps and exits.
//!
//! - `alloc MB`: allocates and touches MB MiB, prints `allocated MB MiB`.
//! - `spin`: loops forever without syscalls.
//! - `sleep_forever`: blocks in poll_oneoff for an hour.
//! - `recurse N`: non-tail recursion N deep (wasm locals only, so it uses
//!   the native stack), prints `depth N ok`.
//! - `trap unreachable|oob|panic`.
//! - `exit N`: `proc_exit(N)` after printing `exiting N`.
//! - `raise SIG`: `proc_raise(SIG)`, then prints what it returned.
use warden_test_guests::{args, sys, usage};

#[inline(never)]
fn depth(n: u64) -> u64 {
    if n == 0 {
        return 1;
    }
    let below = depth(n - 1);
    below.wrapping_mul(6364136223846793005).wrapping_add(n)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| usage("limits CMD ARG"))
}

fn main() {
    let args = args();
    match args.first().map(String::as_str) {
        Some("alloc") => {
            let mb: usize = arg(&args, 1);
            // vec! of a non-zero byte writes every byte: the memory is used.
            let v = vec![1u8; mb << 20];
            let sum: u64 = v.iter().step_by(4096).map(|b| *b as u64).sum();
            println!("allocated {mb} MiB (checksum {})", sum > 0);
        }
        Some("spin") => {
            println!("spinning");
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        Some("sleep_forever") => {
            println!("sleeping");
            let r = warden_test_guests::sleep_ns(3_600_000_000_000);
            println!("woke up: {r:?}");
        }
        Some("recurse") => {
            let n: u64 = arg(&args, 1);
            let r = depth(n);
            println!("depth {n} ok ({})", r != 0 || n == 0);
        }
        Some("trap") => match args.get(1).map(String::as_str) {
            Some("unreachable") => {
                println!("about to trap");
                core::arch::wasm32::unreachable()
            }
            Some("oob") => {
                println!("about to trap");
                let p = std::hint::black_box(0xffff_fff0usize) as *const u64;
                let v = unsafe { core::ptr::read_volatile(p) };
                println!("read {v}");
            }
            Some("panic") => {
                println!("about to panic");
                panic!("guest panicked on purpose");
            }
            _ => usage("limits trap unreachable|oob|panic"),
        },
        Some("exit") => {
            let n: u32 = arg(&args, 1);
            println!("exiting {n}");
            unsafe { sys::proc_exit(n) }
        }
        Some("raise") => {
            let sig: u32 = arg(&args, 1);
            println!("raising {sig}");
            let e = unsafe { sys::proc_raise(sig) };
            println!("proc_raise returned {e}");
        }
        _ => usage("limits alloc|spin|sleep_forever|recurse|trap|exit|raise ..."),
    }
}
