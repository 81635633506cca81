//! `warden serve` under test: started as a user would start it, on a free
//! port, with its log collected; requests made over real sockets.

use super::{warden_cmd, workspace_root};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The test HTTP app (`tests/guests/http`): echo, trap, loop, bomb, ...
pub fn http_app() -> PathBuf {
    super::http_component("tests/guests/http", "warden_test_http")
}

/// An example app of `examples/http` by crate name (`kv-counter`).
pub fn example_app(name: &str) -> PathBuf {
    super::http_component("examples/http", &name.replace('-', "_"))
}

/// Asserts that the store file under `dir` holds no plaintext `secret`.
pub fn assert_sealed(dir: &Path, secret: &[u8]) {
    let store = std::fs::read(dir.join("store.redb")).expect("the store file");
    assert!(
        !store.windows(secret.len()).any(|w| w == secret),
        "{} is in the store file in the clear",
        String::from_utf8_lossy(secret)
    );
}

/// `warden serve ARGS --addr 127.0.0.1:0` that must fail as bad input:
/// exit 2, one line, nothing served. Returns the line.
pub fn refused(dir: &Path, args: &[&str]) -> String {
    let out = warden_cmd("serve", args)
        .args(["--addr", "127.0.0.1:0"])
        .env("WARDEN_STORE", dir.join("store.redb"))
        .env("WARDEN_KEY_FILE", dir.join("store.key"))
        .output()
        .expect("run warden serve");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("Serving"), "{stderr}");
    stderr
}

/// A running `warden serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// `warden serve ARGS --addr 127.0.0.1:0` with the store under `dir`,
    /// once it says where it serves (panics with its log if it does not
    /// within a minute).
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        Server::launch(dir, "127.0.0.1:0", "http", args)
    }

    /// [`Server::start`] listening on `addr`.
    pub fn start_on(dir: &Path, addr: &str, args: &[&str]) -> Server {
        Server::launch(dir, addr, "http", args)
    }

    /// [`Server::start`] with TLS flags among `args`.
    pub fn start_tls(dir: &Path, args: &[&str]) -> Server {
        Server::launch(dir, "127.0.0.1:0", "https", args)
    }

    fn launch(dir: &Path, addr: &str, scheme: &str, args: &[&str]) -> Server {
        let mut cmd = warden_cmd("serve", args);
        cmd.args(["--addr", addr, "--watch-interval", "100ms"])
            .env("WARDEN_STORE", dir.join("store.redb"))
            .env("WARDEN_KEY_FILE", dir.join("store.key"))
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start warden serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let prefix = format!("Serving HTTP on {scheme}://");
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let addr = line
                        .strip_prefix(&prefix)
                        .map(|rest| rest.trim_end_matches('/').to_string());
                    log.lock().unwrap().push(line);
                    if let Some(addr) = addr {
                        let _ = tx.send(addr);
                    }
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            // A wildcard address is reached on loopback.
            Ok(addr) => addr
                .replace("0.0.0.0", "127.0.0.1")
                .parse()
                .expect("address"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "warden serve did not start:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        let first = log.lock().unwrap().first().cloned().unwrap_or_default();
        assert!(
            first.starts_with(&format!("Serving HTTP on {scheme}://")),
            "the first line of stderr is {first:?}"
        );
        Server { child, addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET, returning status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        request("GET", &self.url(path), &[], None)
    }

    /// POST `body`, returning status and body.
    pub fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        request("POST", &self.url(path), &[], Some(body))
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until the log has a line containing every one of `parts`.
    pub fn wait_for_log(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {parts:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the server to exit (at most `limit`) and returns its
    /// exit code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with a fresh connection; a status and body come
/// back for every status (errors only for transport failures, which
/// panic).
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, String) {
    let (status, _, text) = request_full(method, url, headers, body);
    (status, text)
}

/// [`request`], with the response's headers.
pub fn request_full(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, Vec<(String, String)>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.unwrap_or_default().to_vec())
        .expect("request");
    let mut res = agent
        .run(req)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (status, headers, text)
}
