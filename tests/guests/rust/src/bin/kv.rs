//! `wasi:keyvalue` called directly (wasm32-wasip2 only), in either version:
//!
//! `kv VERSION LABEL COMMAND...`, VERSION `draft` (0.2.0-draft) or `draft2`
//! (0.2.0-draft2). Opens bucket LABEL (prints `open: ok` or
//! `open: err ERROR` and stops), then runs each COMMAND, one argument of
//! space-separated words, printing `COMMAND: ok VALUE` or
//! `COMMAND: err ERROR` (ERROR: `no-such-store`, `access-denied`,
//! `other(MESSAGE)`). Values are printed as text.
//!
//! - `set K V`, `get K`, `exists K`, `delete K`;
//! - `list`: every key, page after page, sorted, and the number of pages;
//! - `incr K DELTA`;
//! - `get-many K...`, `set-many K=V...`, `delete-many K...`;
//! - draft2 only: `cas K V` (swap K to V through a fresh handle),
//!   `cas-race K V1 V2` (a handle on K, then K set to V1 behind its back,
//!   then swap to V2: fails; retried with the handle the failure returns).
#![cfg_attr(not(target_env = "p2"), allow(unused))]

use warden_test_guests::{args, usage};

const USAGE: &str = "kv draft|draft2 LABEL COMMAND...";

#[cfg(not(target_env = "p2"))]
fn main() {
    eprintln!("kv is a wasm32-wasip2 component");
    std::process::exit(98);
}

#[cfg(target_env = "p2")]
fn main() {
    let args = args();
    if args.len() < 2 {
        usage(USAGE);
    }
    let commands: Vec<Vec<&str>> = args[2..]
        .iter()
        .map(|c| c.split_whitespace().collect())
        .collect();
    match args[0].as_str() {
        "draft" => draft::run(&args[1], &commands),
        "draft2" => draft2::run(&args[1], &commands),
        _ => usage(USAGE),
    }
}

fn text(v: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(v))
}

fn opt(v: Option<Vec<u8>>) -> String {
    v.map_or("none".into(), |v| text(&v))
}

fn pairs(words: &[&str]) -> Vec<(String, Vec<u8>)> {
    words
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.as_bytes().to_vec())
        })
        .collect()
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

fn report<T>(cmd: &[&str], r: Result<T, String>, show: impl FnOnce(T) -> String) {
    let label = cmd.join(" ");
    match r {
        Ok(v) => {
            let v = show(v);
            if v.is_empty() {
                println!("{label}: ok");
            } else {
                println!("{label}: ok {v}");
            }
        }
        Err(e) => println!("{label}: err {e}"),
    }
}

#[cfg(target_env = "p2")]
mod draft {
    wit_bindgen::generate!({
        path: "../../../crates/keyvalue/wit/draft",
        world: "wasi:keyvalue/imports@0.2.0-draft",
    });

    use super::*;
    use wasi::keyvalue::store::{open, Bucket, Error};
    use wasi::keyvalue::{atomics, batch};

    fn err(e: Error) -> String {
        match e {
            Error::NoSuchStore => "no-such-store".into(),
            Error::AccessDenied => "access-denied".into(),
            Error::Other(m) => format!("other({m})"),
        }
    }

    fn list(b: &Bucket) -> Result<(Vec<String>, usize), Error> {
        let mut keys = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = b.list_keys(cursor)?;
            pages += 1;
            keys.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        keys.sort();
        Ok((keys, pages))
    }

    pub fn run(label: &str, commands: &[Vec<&str>]) {
        let b = match open(label) {
            Ok(b) => {
                println!("open: ok");
                b
            }
            Err(e) => return println!("open: err {}", err(e)),
        };
        for c in commands {
            let r = |r: Result<String, Error>| report(c, r.map_err(err), |s| s);
            match c.as_slice() {
                ["set", k, v] => r(b.set(k, v.as_bytes()).map(|()| String::new())),
                ["get", k] => r(b.get(k).map(opt)),
                ["exists", k] => r(b.exists(k).map(|e| e.to_string())),
                ["delete", k] => r(b.delete(k).map(|()| String::new())),
                ["list"] => r(list(&b).map(|(k, p)| format!("{k:?} pages={p}"))),
                ["incr", k, d] => match d.parse() {
                    Ok(d) => r(atomics::increment(&b, k, d).map(|n| n.to_string())),
                    Err(_) => usage("incr K U64"),
                },
                ["get-many", keys @ ..] => r(batch::get_many(&b, &strings(keys)).map(|vs| {
                    vs.into_iter()
                        .map(|e| e.map_or("none".into(), |(k, v)| format!("{k}={}", text(&v))))
                        .collect::<Vec<_>>()
                        .join(" ")
                })),
                ["set-many", kvs @ ..] => {
                    r(batch::set_many(&b, &pairs(kvs)).map(|()| String::new()))
                }
                ["delete-many", keys @ ..] => {
                    r(batch::delete_many(&b, &strings(keys)).map(|()| String::new()))
                }
                _ => usage(USAGE),
            }
        }
    }
}

#[cfg(target_env = "p2")]
mod draft2 {
    wit_bindgen::generate!({
        path: "../../../crates/keyvalue/wit/draft2",
        world: "wasi:keyvalue/imports@0.2.0-draft2",
    });

    use super::*;
    use wasi::keyvalue::atomics::{self, Cas, CasError};
    use wasi::keyvalue::batch;
    use wasi::keyvalue::store::{open, Bucket, Error};

    fn err(e: Error) -> String {
        match e {
            Error::NoSuchStore => "no-such-store".into(),
            Error::AccessDenied => "access-denied".into(),
            Error::Other(m) => format!("other({m})"),
        }
    }

    fn list(b: &Bucket) -> Result<(Vec<String>, usize), Error> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = b.list_keys(cursor.as_deref())?;
            pages += 1;
            keys.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        keys.sort();
        Ok((keys, pages))
    }

    fn swap(cas: Cas, v: &str) -> Result<String, Error> {
        match atomics::swap(cas, v.as_bytes()) {
            Ok(()) => Ok("swapped".into()),
            Err(CasError::CasFailed(now)) => Ok(format!("cas-failed now={}", opt(now.current()?))),
            Err(CasError::StoreError(e)) => Err(e),
        }
    }

    /// A handle on K; K set to V1 behind its back; the swap to V2 fails and
    /// is retried once with the handle the failure returns.
    fn race(b: &Bucket, k: &str, v1: &str, v2: &str) -> Result<String, Error> {
        let cas = Cas::new(b, k)?;
        let before = opt(cas.current()?);
        b.set(k, v1.as_bytes())?;
        let retry = match atomics::swap(cas, v2.as_bytes()) {
            Ok(()) => return Ok(format!("before={before} first swap succeeded")),
            Err(CasError::StoreError(e)) => return Err(e),
            Err(CasError::CasFailed(now)) => now,
        };
        let seen = opt(retry.current()?);
        let second = swap(retry, v2)?;
        Ok(format!(
            "before={before} cas-failed now={seen} retry={second}"
        ))
    }

    pub fn run(label: &str, commands: &[Vec<&str>]) {
        let b = match open(label) {
            Ok(b) => {
                println!("open: ok");
                b
            }
            Err(e) => return println!("open: err {}", err(e)),
        };
        for c in commands {
            let r = |r: Result<String, Error>| report(c, r.map_err(err), |s| s);
            match c.as_slice() {
                ["set", k, v] => r(b.set(k, v.as_bytes()).map(|()| String::new())),
                ["get", k] => r(b.get(k).map(opt)),
                ["exists", k] => r(b.exists(k).map(|e| e.to_string())),
                ["delete", k] => r(b.delete(k).map(|()| String::new())),
                ["list"] => r(list(&b).map(|(k, p)| format!("{k:?} pages={p}"))),
                ["incr", k, d] => match d.parse() {
                    Ok(d) => r(atomics::increment(&b, k, d).map(|n| n.to_string())),
                    Err(_) => usage("incr K S64"),
                },
                ["get-many", keys @ ..] => r(batch::get_many(&b, &strings(keys)).map(|vs| {
                    vs.into_iter()
                        .map(|(k, v)| format!("{k}={}", opt(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })),
                ["set-many", kvs @ ..] => {
                    r(batch::set_many(&b, &pairs(kvs)).map(|()| String::new()))
                }
                ["delete-many", keys @ ..] => {
                    r(batch::delete_many(&b, &strings(keys)).map(|()| String::new()))
                }
                ["cas", k, v] => r(Cas::new(&b, k).and_then(|cas| swap(cas, v))),
                ["cas-race", k, v1, v2] => r(race(&b, k, v1, v2)),
                _ => usage(USAGE),
            }
        }
    }
}
