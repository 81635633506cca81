//! Clocks, random, poll_oneoff and sched_yield, through raw calls so that a
//! denied call shows its errno.
//!
//! - `clocks`: `realtime`, `monotonic`, `res` lines.
//! - `random`: `random: ok distinct=true` or `random: err N`.
//! - `sleep MS`: one clock subscription; `sleep: ok elapsed_ge=true`.
//! - `poll`: several poll_oneoff shapes.
//! - `yield`: `sched_yield: ok`.
//! - `std`: the same through std (`SystemTime`, `Instant`, `thread::sleep`).
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use warden_test_guests::{args, clock_res, clock_time, random, sleep_ns, sys, usage};

/// 2020-01-01T00:00:00Z in nanoseconds.
const Y2020_NS: u64 = 1_577_836_800 * 1_000_000_000;

fn main() {
    let args = args();
    match args.first().map(String::as_str) {
        Some("clocks") => {
            match clock_time(sys::CLOCK_REALTIME) {
                Ok(t) => println!("realtime: ok plausible={}", t > Y2020_NS),
                Err(e) => println!("realtime: err {e}"),
            }
            match clock_time(sys::CLOCK_MONOTONIC) {
                Ok(a) => {
                    let b = clock_time(sys::CLOCK_MONOTONIC).unwrap_or(0);
                    println!("monotonic: ok nondecreasing={}", b >= a);
                }
                Err(e) => println!("monotonic: err {e}"),
            }
            match clock_res(sys::CLOCK_MONOTONIC) {
                Ok(r) => println!("res: ok positive={}", r > 0),
                Err(e) => println!("res: err {e}"),
            }
        }
        Some("random") => {
            let mut a = [0u8; 32];
            let mut b = [0u8; 32];
            match random(&mut a).and_then(|_| random(&mut b)) {
                Ok(()) => println!("random: ok distinct={}", a != b && a != [0u8; 32]),
                Err(e) => println!("random: err {e}"),
            }
        }
        Some("sleep") => {
            let ms: u64 = args
                .get(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| usage("clock_random sleep MS"));
            let t0 = clock_time(sys::CLOCK_MONOTONIC);
            let r = sleep_ns(ms * 1_000_000);
            let t1 = clock_time(sys::CLOCK_MONOTONIC);
            match (r, t0, t1) {
                (Ok(()), Ok(t0), Ok(t1)) => {
                    println!("sleep: ok elapsed_ge={}", t1 - t0 >= ms * 1_000_000)
                }
                (Err(e), _, _) => println!("sleep: err {e}"),
                (_, Err(e), _) | (_, _, Err(e)) => println!("sleep: clock err {e}"),
            }
        }
        Some("poll") => poll(),
        Some("yield") => {
            let e = unsafe { sys::sched_yield() };
            if e == 0 {
                println!("sched_yield: ok");
            } else {
                println!("sched_yield: err {e}");
            }
        }
        Some("std") => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            println!(
                "systemtime plausible={}",
                now.as_secs() > Y2020_NS / 1_000_000_000
            );
            let t0 = Instant::now();
            std::thread::sleep(Duration::from_millis(30));
            println!(
                "instant elapsed_ge={}",
                t0.elapsed() >= Duration::from_millis(30)
            );
        }
        _ => usage("clock_random clocks|random|sleep MS|poll|yield|std"),
    }
}

fn poll() {
    // Two relative timeouts: the shorter one fires first.
    let subs = [
        sys::Subscription::clock(1, sys::CLOCK_MONOTONIC, 2_000_000_000, 0),
        sys::Subscription::clock(2, sys::CLOCK_MONOTONIC, 20_000_000, 0),
    ];
    let mut evs = [sys::Event::default(); 2];
    let mut n = 0;
    let t0 = clock_time(sys::CLOCK_MONOTONIC).unwrap();
    let e = unsafe { sys::poll_oneoff(subs.as_ptr(), evs.as_mut_ptr(), 2, &mut n) };
    let dt = clock_time(sys::CLOCK_MONOTONIC).unwrap() - t0;
    if e != 0 {
        println!("poll two clocks: err {e}");
    } else {
        println!(
            "poll two clocks: ok n={n} first={} error={} type={} waited_ge_20ms={} under_2s={}",
            evs[0].userdata,
            evs[0].error,
            evs[0].kind,
            dt >= 20_000_000,
            dt < 2_000_000_000
        );
    }

    // An absolute deadline on the monotonic clock, 30 ms from now.
    let now = clock_time(sys::CLOCK_MONOTONIC).unwrap();
    let sub = sys::Subscription::clock(
        3,
        sys::CLOCK_MONOTONIC,
        now + 30_000_000,
        sys::SUBCLOCK_ABSTIME,
    );
    let mut ev = sys::Event::default();
    let e = unsafe { sys::poll_oneoff(&sub, &mut ev, 1, &mut n) };
    let after = clock_time(sys::CLOCK_MONOTONIC).unwrap();
    if e != 0 {
        println!("poll abstime: err {e}");
    } else {
        println!(
            "poll abstime: ok n={n} userdata={} reached={}",
            ev.userdata,
            after >= now + 30_000_000
        );
    }

    // A deadline already in the past returns at once.
    let sub = sys::Subscription::clock(4, sys::CLOCK_MONOTONIC, 0, 0);
    let e = unsafe { sys::poll_oneoff(&sub, &mut ev, 1, &mut n) };
    if e != 0 {
        println!("poll zero timeout: err {e}");
    } else {
        println!("poll zero timeout: ok n={n} userdata={}", ev.userdata);
    }

    // fd_write readiness of stdout together with a long timeout: stdout is
    // writable, so the fd event is reported and the clock is not waited for.
    let subs = [
        sys::Subscription::clock(5, sys::CLOCK_MONOTONIC, 5_000_000_000, 0),
        sys::Subscription::fd_write(6, 1),
    ];
    let t0 = clock_time(sys::CLOCK_MONOTONIC).unwrap();
    let e = unsafe { sys::poll_oneoff(subs.as_ptr(), evs.as_mut_ptr(), 2, &mut n) };
    let dt = clock_time(sys::CLOCK_MONOTONIC).unwrap() - t0;
    if e != 0 {
        println!("poll stdout writable: err {e}");
    } else {
        let ids: Vec<u64> = evs[..n].iter().map(|e| e.userdata).collect();
        println!(
            "poll stdout writable: ok has_fd_event={} fast={}",
            ids.contains(&6),
            dt < 2_000_000_000
        );
    }

    // Bad descriptor in an fd subscription: reported in the event (or as
    // the call's errno), never a hang.
    let subs = [
        sys::Subscription::clock(7, sys::CLOCK_MONOTONIC, 5_000_000_000, 0),
        sys::Subscription::fd_read(8, 77),
    ];
    let t0 = clock_time(sys::CLOCK_MONOTONIC).unwrap();
    let e = unsafe { sys::poll_oneoff(subs.as_ptr(), evs.as_mut_ptr(), 2, &mut n) };
    let dt = clock_time(sys::CLOCK_MONOTONIC).unwrap() - t0;
    if e != 0 {
        println!("poll bad fd: err {e} fast={}", dt < 2_000_000_000);
    } else {
        let ev = evs[..n].iter().find(|e| e.userdata == 8);
        println!(
            "poll bad fd: event error={} fast={}",
            ev.map(|e| e.error).unwrap_or(0),
            dt < 2_000_000_000
        );
    }
}
