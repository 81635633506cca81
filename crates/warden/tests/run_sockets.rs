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

/// What warden says when it cannot bind a `--listen` address.
const TAKEN: &str = "Address already in use";

/// `attempt` with a port that was free a moment ago, and again with
/// another if warden could not bind it (`attempt` gives back warden's
/// stderr): between `free_port` and warden's bind, a connection of a test
/// running beside this one may take the port as its local port.
fn on_a_free_port<R>(mut attempt: impl FnMut(u16) -> Result<R, String>) -> R {
    let mut last = String::new();
    for _ in 0..5 {
        match attempt(free_port()) {
            Ok(done) => return done,
            Err(stderr) if stderr.contains(TAKEN) => last = stderr,
            Err(stderr) => panic!("warden exited before accepting: {stderr}"),
        }
    }
    panic!("five free ports were taken before warden bound them: {last}");
}

/// An [`Output`] whose run could not bind its port is an `Err` for
/// [`on_a_free_port`].
fn bound(out: Output) -> Result<Output, String> {
    if out.code == Some(2) && out.stderr.contains(TAKEN) {
        Err(out.stderr)
    } else {
        Ok(out)
    }
}

/// Starts warden with `args(port)`, connects (retrying while warden
/// starts), sends `line`; the child and the reply, on a port warden could
/// bind.
fn talk(args: impl Fn(u16) -> Vec<String>, line: &str) -> (Child, String) {
    on_a_free_port(|port| {
        let args = args(port);
        let mut child = spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let start = Instant::now();
        let mut stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) => {
                    if child.try_wait().unwrap().is_some() {
                        let (_, stdout, stderr) = finish(child);
                        return Err(format!("{e}\n{stdout}{stderr}"));
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
        Ok((child, reply))
    })
}

/// `--listen 127.0.0.1:PORT`, then `rest`.
fn listen_args(port: u16, rest: &[&str]) -> Vec<String> {
    let mut args = vec!["--listen".to_string(), format!("127.0.0.1:{port}")];
    args.extend(rest.iter().map(|a| a.to_string()));
    args
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
    let guest = rust_guest("sockets");
    let (child, reply) = talk(
        |port| listen_args(port, &[s(&guest), "echo", "3"]),
        "hello sockets\n",
    );
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
    let guest = rust_guest("sockets");
    let mount = format!("{}::/data", s(dir.path()));
    let (child, reply) = talk(
        |port| {
            let mut args = vec!["--dir".to_string(), mount.clone()];
            args.extend(listen_args(port, &[s(&guest), "echo", "4"]));
            args
        },
        "second\n",
    );
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
    let guest = rust_guest("sockets");
    let (child, reply) = talk(
        |port| {
            let config = write(
                dir.path(),
                "Warden.toml",
                &format!("listen = [\"127.0.0.1:{port}\"]\n"),
            );
            ["--config", s(&config), s(&guest), "echo", "3"]
                .map(String::from)
                .to_vec()
        },
        "cfg\n",
    );
    assert_eq!(reply, "echo: cfg\n");
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

#[test]
fn the_listener_is_a_stream_socket_and_accept_can_poll() {
    let guest = rust_guest("sockets");
    let out = on_a_free_port(|port| {
        bound(run_limited(
            warden_run(listen_args(port, &[s(&guest), "probe", "3"])),
            b"",
            Duration::from_secs(20),
        ))
    });
    // Nothing is connecting: accept on a non-blocking listener is EAGAIN (6).
    out.code(0)
        .stdout_is("fdstat: ok stream\nset NONBLOCK: ok\nsock_accept: err 6\n")
        .quiet();
}

#[test]
fn timeout_stops_a_guest_blocked_in_accept() {
    let guest = rust_guest("sockets");
    let out = on_a_free_port(|port| {
        let mut args = vec!["--timeout".to_string(), "500ms".to_string()];
        args.extend(listen_args(port, &[s(&guest), "echo", "3"]));
        bound(run(warden_run(args)))
    });
    out.code(124).stdout_is("listening on fd 3\n");
    assert!(out.warden_line().contains("time limit"), "{out}");
    assert!(out.elapsed < Duration::from_secs(15), "{out}");
}
