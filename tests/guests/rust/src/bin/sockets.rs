//! Sockets on a preopened listener.
//!
//! - `echo FD`: accepts one connection on FD, reads one line with
//!   `sock_recv`, sends back `echo: LINE` with `sock_send`, shuts down.
//! - `probe FD`: makes FD non-blocking, then one `sock_accept`, printing
//!   each errno.
//!
//! Preview-1 only (raw descriptors); for wasm32-wasip2 it is a stub.
#![cfg_attr(not(target_env = "p1"), allow(unused))]
#[cfg(not(target_env = "p1"))]
fn main() {
    eprintln!("sockets: a preview-1 guest");
    std::process::exit(2);
}
#[cfg(target_env = "p1")]
mod p1 {
    use std::io::Write;
    use std::net::TcpListener;
    use std::os::wasi::io::FromRawFd;
    use warden_test_guests::{args, fdstat, filetype_name, sys, usage};

    pub fn main() {
        let args = args();
        let fd: u32 = args
            .get(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| usage("sockets echo|probe FD"));
        match args.first().map(String::as_str) {
            Some("echo") => echo(fd),
            Some("probe") => {
                match fdstat(fd) {
                    Ok(s) => println!("fdstat: ok {}", filetype_name(s.filetype)),
                    Err(e) => println!("fdstat: err {e}"),
                }
                // sock_accept's flags are those of the new descriptor: making
                // the accept itself non-blocking takes the listener's flags.
                let e = unsafe { sys::fd_fdstat_set_flags(fd, sys::FDFLAG_NONBLOCK) };
                println!("set NONBLOCK: {}", errno_text(e));
                let mut new = 0;
                let e = unsafe { sys::sock_accept(fd, 0, &mut new) };
                println!("sock_accept: {}", errno_text(e));
            }
            _ => usage("sockets echo|probe FD"),
        }
    }

    fn echo(fd: u32) {
        let listener = unsafe { TcpListener::from_raw_fd(fd as i32) };
        println!("listening on fd {fd}");
        std::io::stdout().flush().ok();
        let (stream, _) = match listener.accept() {
            Ok(s) => s,
            Err(e) => {
                println!("accept: err {:?}", e.raw_os_error());
                std::process::exit(1);
            }
        };
        println!("accepted");
        let conn = std::os::wasi::io::AsRawFd::as_raw_fd(&stream) as u32;
        let mut line = Vec::new();
        let mut buf = [0u8; 256];
        while !line.contains(&b'\n') {
            let iov = sys::Iovec {
                buf: buf.as_mut_ptr(),
                len: buf.len(),
            };
            let (mut n, mut flags) = (0usize, 0u16);
            let e = unsafe { sys::sock_recv(conn, &iov, 1, 0, &mut n, &mut flags) };
            if e != 0 {
                println!("sock_recv: err {e}");
                std::process::exit(1);
            }
            if n == 0 {
                break;
            }
            line.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        println!("received {text:?}");
        let reply = format!("echo: {text}\n");
        let mut sent = 0;
        while sent < reply.len() {
            let iov = sys::Iovec {
                buf: reply[sent..].as_ptr(),
                len: reply.len() - sent,
            };
            let mut n = 0usize;
            let e = unsafe { sys::sock_send(conn, &iov, 1, 0, &mut n) };
            if e != 0 {
                println!("sock_send: err {e}");
                std::process::exit(1);
            }
            sent += n;
        }
        match stream.shutdown(std::net::Shutdown::Both) {
            Ok(()) => println!("shutdown: ok"),
            Err(e) => println!("shutdown: err {:?}", e.raw_os_error()),
        }
    }

    fn errno_text(e: u16) -> String {
        if e == 0 {
            "ok".to_string()
        } else {
            format!("err {e}")
        }
    }
}
#[cfg(target_env = "p1")]
fn main() {
    p1::main()
}
