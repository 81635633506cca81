//! Probes the standard streams with raw calls, so that the errno of a denied
//! stream is visible (std would hide or panic on it).
//!
//! - `stdin`: reads fd 0 to end of file; prints `stdin: ok N bytes` and then
//!   the bytes, or `stdin: err N`.
//! - `stdout`: writes `to stdout\n` to fd 1 and reports on stderr.
//! - `stderr`: writes `to stderr\n` to fd 2 and reports on stdout.
use warden_test_guests::{args, read_all_fd, usage, write_fd};

fn main() {
    let args = args();
    match args.first().map(String::as_str) {
        Some("stdin") => match read_all_fd(0) {
            Ok(data) => {
                println!("stdin: ok {} bytes", data.len());
                print!("{}", String::from_utf8_lossy(&data));
            }
            Err(e) => println!("stdin: err {e}"),
        },
        Some("stdout") => match write_fd(1, b"to stdout\n") {
            Ok(n) => eprintln!("stdout write: ok {n}"),
            Err(e) => eprintln!("stdout write: err {e}"),
        },
        Some("stderr") => match write_fd(2, b"to stderr\n") {
            Ok(n) => println!("stderr write: ok {n}"),
            Err(e) => println!("stderr write: err {e}"),
        },
        _ => usage("stdio stdin|stdout|stderr"),
    }
}
