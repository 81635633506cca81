//! `--listen ADDR`: a listening TCP socket preopened after the directories.
//! The guest accepts one connection and echoes a line back.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Connects (retrying while warden starts), sends `line`, returns the reply.
fn talk(child: &mut Child, port: u16, line: &str) -> String {
    let start = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("warden exited ({status:?}) before accepting: {e}");
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "cannot connect: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(line.as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).unwrap();
    reply
}

fn finish(child: Child) -> (Option<i32>, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn spawn(args: &[&str]) -> Child {
    warden_run(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn guest_accepts_and_echoes_on_a_preopened_listener() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let guest = rust_guest("sockets");
    let mut child = spawn(&["--listen", &addr, s(&guest), "echo", "3"]);
    let reply = talk(&mut child, port, "hello sockets\n");
    assert_eq!(reply, "echo: hello sockets\n");
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "listening on fd 3\naccepted\nreceived \"hello sockets\"\nshutdown: ok\n"
    );
    assert_eq!(stderr, "");
}

#[test]
fn the_listener_comes_after_the_directories() {
    let dir = tempdir();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let guest = rust_guest("sockets");
    let mount = format!("{}::/data", s(dir.path()));
    let mut child = spawn(&["--dir", &mount, "--listen", &addr, s(&guest), "echo", "4"]);
    let reply = talk(&mut child, port, "second\n");
    assert_eq!(reply, "echo: second\n");
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("listening on fd 4\naccepted\n"),
        "{stdout}"
    );
}

#[test]
fn listener_from_the_config() {
    let dir = tempdir();
    let port = free_port();
    let config = write(
        dir.path(),
        "Warden.toml",
        &format!("listen = [\"127.0.0.1:{port}\"]\n"),
    );
    let guest = rust_guest("sockets");
    let mut child = spawn(&["--config", s(&config), s(&guest), "echo", "3"]);
    assert_eq!(talk(&mut child, port, "cfg\n"), "echo: cfg\n");
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

#[test]
fn the_listener_is_a_stream_socket_and_accept_can_poll() {
    let port = free_port();
    let out = run_limited(
        warden_run([
            "--listen",
            &format!("127.0.0.1:{port}"),
            s(&rust_guest("sockets")),
            "probe",
            "3",
        ]),
        b"",
        Duration::from_secs(20),
    );
    // Nothing is connecting: accept on a non-blocking listener is EAGAIN (6).
    out.code(0)
        .stdout_is("fdstat: ok stream\nset NONBLOCK: ok\nsock_accept: err 6\n")
        .quiet();
}

#[test]
fn timeout_stops_a_guest_blocked_in_accept() {
    let port = free_port();
    let out = run(warden_run([
        "--timeout",
        "500ms",
        "--listen",
        &format!("127.0.0.1:{port}"),
        s(&rust_guest("sockets")),
        "echo",
        "3",
    ]));
    out.code(124).stdout_is("listening on fd 3\n");
    assert!(out.warden_line().contains("time limit"), "{out}");
    assert!(out.elapsed < Duration::from_secs(15), "{out}");
}
