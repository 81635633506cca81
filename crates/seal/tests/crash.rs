//! Crash safety: a child process writes and acknowledges each committed write
//! on stdout; it is killed with SIGKILL at random points; every acknowledged
//! write must be there after reopening, and the file must open cleanly.
//!
//! The child is this test binary itself, re-run with `--exact crash_child`
//! and `WARDEN_SEAL_CRASH_DIR` set; in a normal run `crash_child` does nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{pseudo_random, Rng};
use warden_seal::{KeyFile, Store};

const DIR_VAR: &str = "WARDEN_SEAL_CRASH_DIR";
const START_VAR: &str = "WARDEN_SEAL_CRASH_START";

fn value_of(i: u64) -> Vec<u8> {
    // Sizes from a few bytes to 200 KiB, so some commits are large.
    let len = match i % 10 {
        0 => 200 * 1024,
        1..=3 => 4096,
        _ => (i * 37 % 700) as usize + 1,
    };
    pseudo_random(i, len)
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir.join("store.redb"), &KeyFile::new(dir.join("store.key"))).expect("open")
}

/// The child: writes forever, printing `ack N` after write N has committed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let start: u64 = std::env::var(START_VAR)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let store = open(std::path::Path::new(&dir));
    let ns = store.namespace("crash").expect("namespace");
    // libtest has printed "test crash_child ... " with no newline: end that
    // line, or the first ack would be glued to it and not be read as one.
    println!();
    for i in start.. {
        match i % 3 {
            0 => ns.set(format!("k{i}"), value_of(i)).expect("set"),
            1 => ns
                .set_many(&[
                    (format!("k{i}"), value_of(i)),
                    (format!("b{i}"), value_of(i + 1)),
                ])
                .expect("batch"),
            _ => ns
                .transaction(|tx| {
                    let n: i64 = tx
                        .get("counter")?
                        .map(|v| String::from_utf8_lossy(&v).parse().unwrap_or(0))
                        .unwrap_or(0);
                    tx.set("counter", (n + 1).to_string())?;
                    tx.set(format!("k{i}"), value_of(i))
                })
                .expect("transaction"),
        }
        println!("ack {i}");
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    let mut acked: Vec<u64> = Vec::new();
    let mut next = 0u64;
    let mut counter_acks = 0i64;
    let rounds = 6;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(DIR_VAR, dir.path())
            .env(START_VAR, next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("ack ") {
                    if let Ok(n) = n.parse::<u64>() {
                        if tx.send(n).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        // Let it get going, then kill it at a random moment.
        let first = rx.recv_timeout(Duration::from_secs(30));
        assert!(
            first.is_ok(),
            "round {round}: the child acknowledged nothing"
        );
        std::thread::sleep(Duration::from_millis(20 + rng.below(300)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let mut this_round: Vec<u64> = first.into_iter().collect();
        this_round.extend(rx.try_iter());
        counter_acks += this_round.iter().filter(|i| *i % 3 == 2).count() as i64;
        let last = *this_round.last().unwrap();
        acked.extend(this_round);
        // The write after the last ack may or may not have committed; the
        // next round rewrites it with the same value either way.
        next = last + 1;

        let started = Instant::now();
        let store = open(dir.path());
        store.verify().expect("verify after crash");
        let ns = store.namespace("crash").unwrap();
        for &i in &acked {
            assert_eq!(
                ns.get(format!("k{i}")).unwrap().as_deref(),
                Some(value_of(i).as_slice()),
                "round {round}: acknowledged write {i} lost"
            );
            if i % 3 == 1 {
                assert_eq!(
                    ns.get(format!("b{i}")).unwrap().as_deref(),
                    Some(value_of(i + 1).as_slice()),
                    "round {round}: second half of batch {i} lost"
                );
            }
        }
        let counter: i64 = String::from_utf8(ns.get("counter").unwrap().unwrap_or_default())
            .unwrap()
            .parse()
            .unwrap_or(0);
        // Each round may have committed one more increment than it acknowledged.
        assert!(
            counter >= counter_acks && counter <= counter_acks + round as i64 + 1,
            "counter {counter}, acknowledged {counter_acks}"
        );
        eprintln!(
            "round {round}: {} writes acknowledged so far, reopened and checked in {:?}",
            acked.len(),
            started.elapsed()
        );
    }
    assert!(acked.len() as u64 >= rounds);
}
