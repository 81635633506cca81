//! One guest, many scenarios (the first argument), for the threads tests:
//! each prints a line the test compares exactly.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "sum" => sum(),
        "mutex" => mutex(),
        "mpsc" => channel(),
        "scoped" => scoped(),
        "condvar" => condvar(),
        "tls" => tls(),
        "exit" => exit_from_thread(),
        "panic" => panic_in_thread(),
        "spawn3" => spawn3(),
        "spin" => spin(),
        "burn" => burn(),
        "grow" => grow(),
        other => {
            eprintln!("unknown mode `{other}`");
            std::process::exit(2);
        }
    }
}

/// Four threads sum disjoint ranges of 1..=1_000_000.
fn sum() {
    let n: u64 = 1_000_000;
    let parts = 4;
    let handles: Vec<_> = (0..parts)
        .map(|i| {
            thread::spawn(move || {
                let lo = i * n / parts + 1;
                let hi = (i + 1) * n / parts;
                (lo..=hi).sum::<u64>()
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!("sum {total}");
}

/// 8 threads × 10_000 increments under a Mutex.
fn mutex() {
    let counter = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let c = counter.clone();
            thread::spawn(move || {
                for _ in 0..10_000 {
                    *c.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    println!("count {}", *counter.lock().unwrap());
}

/// Three producers, one consumer.
fn channel() {
    let (tx, rx) = mpsc::channel();
    for p in 0..3u64 {
        let tx = tx.clone();
        thread::spawn(move || {
            for i in 0..1000u64 {
                tx.send(p * 1000 + i).unwrap();
            }
        });
    }
    drop(tx);
    let (mut n, mut total) = (0u64, 0u64);
    for v in rx {
        n += 1;
        total += v;
    }
    println!("received {n} total {total}");
}

/// Scoped threads borrow the stack.
fn scoped() {
    let mut data: Vec<u64> = (1..=100).collect();
    thread::scope(|s| {
        for chunk in data.chunks_mut(25) {
            s.spawn(move || {
                for v in chunk {
                    *v *= 2;
                }
            });
        }
    });
    println!("scoped {}", data.iter().sum::<u64>());
}

/// A Condvar hand-off, in both directions.
fn condvar() {
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let other = pair.clone();
    let h = thread::spawn(move || {
        let (lock, cv) = &*other;
        let mut v = lock.lock().unwrap();
        while *v != 1 {
            v = cv.wait(v).unwrap();
        }
        *v = 2;
        cv.notify_all();
    });
    {
        let (lock, cv) = &*pair;
        *lock.lock().unwrap() = 1;
        cv.notify_all();
        let mut v = lock.lock().unwrap();
        while *v != 2 {
            v = cv.wait(v).unwrap();
        }
    }
    h.join().unwrap();
    println!("condvar done");
}

thread_local! {
    static MINE: Cell<u64> = const { Cell::new(0) };
}

/// Each thread's thread-local is its own.
fn tls() {
    MINE.with(|m| m.set(100));
    let handles: Vec<_> = (1..=3u64)
        .map(|i| {
            thread::spawn(move || {
                MINE.with(|m| {
                    assert_eq!(m.get(), 0);
                    m.set(i);
                });
                MINE.with(|m| m.get())
            })
        })
        .collect();
    let seen: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    println!("tls {:?} main {}", seen, MINE.with(|m| m.get()));
}

/// `exit(3)` from a second thread while main waits forever.
fn exit_from_thread() {
    let _h = thread::spawn(|| {
        println!("worker exiting");
        std::process::exit(3);
    });
    loop {
        thread::park();
    }
}

fn panic_in_thread() {
    let h = thread::spawn(|| {
        panic!("worker panicked");
    });
    let _ = h.join();
    println!("main survived (it should not have)");
}

/// Three spawns: with `--max-threads 2` the third fails (2 live threads:
/// main and the first, which waits until told to end).
fn spawn3() {
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for i in 0..2 {
        let stop = stop.clone();
        match thread::Builder::new().spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                thread::yield_now();
            }
        }) {
            Ok(h) => {
                println!("spawn {i} ok");
                handles.push(h);
            }
            Err(e) => println!("spawn {i} failed: {:?}", e.kind()),
        }
    }
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().unwrap();
    }
    println!("done");
}

/// A second thread spins forever; main joins it.
fn spin() {
    let h = thread::spawn(|| {
        let mut x = 0u64;
        loop {
            x = x.wrapping_add(1);
            std::hint::black_box(x);
        }
    });
    println!("spinning");
    let _ = h.join();
}

/// Four threads compute without end: a fuel budget ends them all.
fn burn() {
    let total = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let total = total.clone();
            thread::spawn(move || loop {
                total.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

/// A second thread allocates until the memory limit.
fn grow() {
    let h = thread::spawn(|| {
        let mut keep: Vec<Vec<u8>> = Vec::new();
        loop {
            keep.push(vec![1u8; 1 << 20]);
        }
    });
    let _ = h.join();
}
