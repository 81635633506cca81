//! A `wasi:http/incoming-handler` app that does what its path says, for
//! `warden serve`'s tests: echo what it was given, trap, loop, exhaust its
//! memory, sleep, write to stdout and stderr, log, read its config and
//! environment, and keep files on its `/data` mount.

use std::io::{Read, Write};
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

mod host {
    wit_bindgen::generate!({
        inline: "
            package warden:test-http;
            world host {
                import wasi:logging/logging@0.1.0-draft;
                import wasi:config/store@0.2.0-rc.1;
            }
        ",
        path: ["../../../crates/serve/wit/logging", "../../../crates/serve/wit/config"],
        generate_all,
    });
}

/// `wasi:keyvalue@0.2.0-draft` (wasmtime's and wasmCloud's version).
mod kv {
    wit_bindgen::generate!({
        path: "../../../crates/keyvalue/wit/draft",
        world: "wasi:keyvalue/imports@0.2.0-draft",
    });

    use wasi::keyvalue::store::{open, Error};
    use wasi::keyvalue::atomics;

    fn err(e: Error) -> (u16, String) {
        match e {
            Error::AccessDenied => (403, "access-denied\n".into()),
            Error::NoSuchStore => (404, "no-such-store\n".into()),
            Error::Other(m) => (500, format!("other: {m}\n")),
        }
    }

    /// `op` on `key` of store `label`: `incr`, `get` or `set` (to `body`).
    pub fn call(op: &str, label: &str, key: &str, body: Vec<u8>) -> (u16, String) {
        let bucket = match open(label) {
            Ok(b) => b,
            Err(e) => return err(e),
        };
        let result = match op {
            "incr" => atomics::increment(&bucket, key, 1).map(|n| (200, format!("{n}\n"))),
            "get" => bucket.get(key).map(|v| match v {
                Some(v) => (200, String::from_utf8_lossy(&v).into_owned()),
                None => (404, "no such key\n".into()),
            }),
            "set" => bucket.set(key, &body).map(|()| (200, "set\n".into())),
            _ => Ok((400, "incr, get or set\n".into())),
        };
        result.unwrap_or_else(err)
    }
}

struct App;

wasip2::http::proxy::export!(App);

fn header(req: &IncomingRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn read_body(req: &IncomingRequest) -> Vec<u8> {
    let Ok(body) = req.consume() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    {
        let Ok(stream) = body.stream() else {
            return out;
        };
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(_) => break,
            }
        }
    }
    IncomingBody::finish(body);
    out
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    {
        let Ok(stream) = outgoing.write() else {
            return;
        };
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

fn query(path: &str, key: &str) -> Option<String> {
    let (_, q) = path.split_once('?')?;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

impl wasip2::exports::http::incoming_handler::Guest for App {
    fn handle(req: IncomingRequest, out: ResponseOutparam) {
        let info = header(&req, "warden-path-info");
        let full = req.path_with_query().unwrap_or_default();
        let path = info.split('?').next().unwrap_or("").to_string();
        let text = match path.as_str() {
            "/trap" => panic!("the app was asked to trap"),
            "/loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "/bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "/sleep" => {
                let ms: u64 = query(&full, "ms").and_then(|v| v.parse().ok()).unwrap_or(100);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                format!("slept {ms} ms\n")
            }
            "/output" => {
                println!("a line on stdout");
                eprintln!("a line on stderr");
                print!("no newline at the end");
                // A reactor never exits, so Rust's line buffer is not
                // flushed for it: the partial line is logged at the end of
                // the request once it reaches warden.
                let _ = std::io::stdout().flush();
                "written\n".to_string()
            }
            "/log" => {
                use host::wasi::logging::logging::{log, Level};
                log(Level::Info, "greeting", "hello from the app");
                log(Level::Error, "", "something failed");
                "logged\n".to_string()
            }
            "/config" => {
                let all = host::wasi::config::store::get_all().unwrap_or_default();
                let missing = host::wasi::config::store::get("no-such-key");
                let mut s: String = all.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
                s.push_str(&format!("no-such-key={missing:?}\n"));
                s
            }
            "/env" => std::env::vars().map(|(k, v)| format!("{k}={v}\n")).collect(),
            "/write" => {
                let name = query(&full, "name").unwrap_or_else(|| "note".into());
                let body = read_body(&req);
                match std::fs::File::create(format!("/data/{name}")).and_then(|mut f| f.write_all(&body)) {
                    Ok(()) => format!("wrote {} bytes to {name}\n", body.len()),
                    Err(e) => {
                        respond(out, 500, format!("cannot write {name}: {e}\n").as_bytes());
                        return;
                    }
                }
            }
            "/read" => {
                let name = query(&full, "name").unwrap_or_else(|| "note".into());
                let mut s = String::new();
                match std::fs::File::open(format!("/data/{name}")).and_then(|mut f| f.read_to_string(&mut s)) {
                    Ok(_) => s,
                    Err(e) => {
                        respond(out, 404, format!("cannot read {name}: {e}\n").as_bytes());
                        return;
                    }
                }
            }
            "/escape" => {
                let mut s = String::new();
                for p in ["/data/../../etc/passwd", "/etc/passwd", "/data/../data/../../x"] {
                    s.push_str(&format!("{p}: {}\n", std::fs::read(p).map(|_| "read".to_string()).unwrap_or_else(|e| e.kind().to_string())));
                }
                s
            }
            "/kv/incr" | "/kv/get" | "/kv/set" => {
                let label = query(&full, "label").unwrap_or_else(|| "default".into());
                let key = query(&full, "key").unwrap_or_else(|| "k".into());
                let body = read_body(&req);
                let (status, text) = kv::call(&path[4..], &label, &key, body);
                respond(out, status, text.as_bytes());
                return;
            }
            "/big" => {
                let n: usize = query(&full, "kib").and_then(|v| v.parse().ok()).unwrap_or(1024);
                let body = vec![b'x'; n * 1024];
                respond(out, 200, &body);
                return;
            }
            _ => {
                let body = read_body(&req);
                let mut s = format!("method={:?}\n", req.method());
                s.push_str(&format!("path-with-query={full}\n"));
                s.push_str(&format!("authority={}\n", req.authority().unwrap_or_default()));
                for (k, v) in req.headers().entries() {
                    if k.starts_with("warden-") || k.starts_with("x-") {
                        s.push_str(&format!("{k}={}\n", String::from_utf8_lossy(&v)));
                    }
                }
                s.push_str(&format!("body-len={}\n", body.len()));
                s
            }
        };
        respond(out, 200, text.as_bytes());
    }
}
