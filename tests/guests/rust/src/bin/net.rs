//! The network as a component sees it (wasm32-wasip2).
//!
//! - `tcp ADDR`: connects, sends `ping\n`, prints `tcp: got LINE`, or
//!   `tcp: error KIND`.
//! - `http URL`: sends `GET URL` through `wasi:http/outgoing-handler`,
//!   prints `http: status N body BODY`, or `http: error CODE`.
use std::io::{BufRead, BufReader, Write};
use warden_test_guests::{args, usage};

fn tcp(addr: &str) {
    match std::net::TcpStream::connect(addr) {
        Ok(mut stream) => {
            let _ = stream.write_all(b"ping\n");
            let mut line = String::new();
            let _ = BufReader::new(stream).read_line(&mut line);
            println!("tcp: got {}", line.trim_end());
        }
        Err(e) => println!("tcp: error {:?}", e.kind()),
    }
}

#[cfg(target_env = "p2")]
fn http(url: &str) {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    }));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let future = match outgoing_handler::handle(request, None) {
        Ok(f) => f,
        Err(e) => {
            println!("http: error {e:?}");
            return;
        }
    };
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => {
            println!("http: error {e:?}");
            return;
        }
        other => {
            println!("http: error {other:?}");
            return;
        }
    };
    let status = response.status();
    let mut body = Vec::new();
    if let Ok(b) = response.consume() {
        if let Ok(stream) = b.stream() {
            while let Ok(chunk) = stream.blocking_read(65536) {
                body.extend_from_slice(&chunk);
            }
        }
    }
    println!(
        "http: status {status} body {}",
        String::from_utf8_lossy(&body).trim_end()
    );
}

#[cfg(not(target_env = "p2"))]
fn http(_url: &str) {
    println!("http: needs wasm32-wasip2");
}

fn main() {
    let args = args();
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("tcp"), Some(addr)) => tcp(addr),
        (Some("http"), Some(url)) => http(url),
        _ => usage("net tcp ADDR | http URL"),
    }
}
