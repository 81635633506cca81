//! Real etcd clusters for tests (cargo feature `testing`).
//!
//! [`Cluster::start`] runs `n` etcd members (`etcd` from `$WARDEN_ETCD_BIN`,
//! else `PATH`) on free loopback ports with their data in a temporary
//! directory, and waits until every member reports itself healthy. Members
//! can be killed and restarted; the cluster can save a snapshot and be
//! restored from one (with `etcdctl`, from `$WARDEN_ETCDCTL_BIN` else
//! `PATH`), as an operator rolling it back would. Dropping the cluster
//! kills every member and removes the directory, also when a test fails.
//!
//! Waiting is polling with a deadline (60 s), never a fixed sleep.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{EtcdClient, Timeouts};
use crate::target::EtcdTarget;

const DEADLINE: Duration = Duration::from_secs(60);

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// Plain-HTTP `/health` (and metrics), also when clients use TLS.
    metrics_port: u16,
    /// Whether clients connect with TLS.
    tls: bool,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn client_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// A running etcd cluster on loopback ports; see the module documentation.
pub struct Cluster {
    // Dropped after the members are killed (see `Drop`).
    dir: tempfile::TempDir,
    members: Vec<Member>,
    token: String,
    restores: u32,
    /// More etcd flags for every member.
    extra: Vec<String>,
    tls: Option<TlsFiles>,
}

/// PEM files for a cluster whose clients must use TLS with a client
/// certificate: the CA, and one certificate (for `127.0.0.1`, usable for
/// server and client authentication) with its key.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn program(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_string())
}

/// `n` distinct free ports (bound together, then released).
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Whether the member whose metrics listener is at `port` says it is
/// healthy (it has a leader and its cluster has quorum): etcd's `/health`.
fn healthy(port: u16) -> bool {
    let probe = || -> std::io::Result<String> {
        let addr = ([127, 0, 0, 1], port).into();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    };
    probe().is_ok_and(|body| body.contains(r#""health":"true""#))
}

impl Cluster {
    /// Starts a cluster of `n` members and waits until it is healthy.
    pub fn start(n: usize) -> Result<Cluster, String> {
        Self::start_with(n, &[])
    }

    /// [`Self::start`] with more etcd flags for every member (such as
    /// `--max-txn-ops`).
    pub fn start_with(n: usize, extra: &[&str]) -> Result<Cluster, String> {
        Self::start_full(n, extra, None)
    }

    /// [`Self::start`] with clients on TLS and client certificates
    /// required; [`Self::url`] then carries the TLS options.
    pub fn start_tls(n: usize, files: &TlsFiles) -> Result<Cluster, String> {
        Self::start_full(n, &[], Some(files))
    }

    fn start_full(n: usize, extra: &[&str], tls: Option<&TlsFiles>) -> Result<Cluster, String> {
        let mut last = String::new();
        // A port found free can be taken by someone else before etcd binds
        // it: then start again on other ports.
        for _ in 0..3 {
            match Self::try_start(n, extra, tls) {
                Ok(c) => return Ok(c),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn try_start(n: usize, extra: &[&str], tls: Option<&TlsFiles>) -> Result<Cluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("warden-etcd-test")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let ports = free_ports(3 * n)?;
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[3 * i],
                peer_port: ports[3 * i + 1],
                metrics_port: ports[3 * i + 2],
                tls: tls.is_some(),
                data_dir: dir.path().join(format!("m{i}.etcd")),
                log: dir.path().join(format!("m{i}.log")),
                child: None,
            })
            .collect();
        let mut cluster = Cluster {
            dir,
            members,
            token: format!("warden-test-{}", ports[0]),
            restores: 0,
            extra: extra.iter().map(|a| a.to_string()).collect(),
            tls: tls.cloned(),
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        cluster.wait_healthy(0..n)?;
        Ok(cluster)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let initial = self.initial_cluster();
        let m = &mut self.members[i];
        let log = File::options()
            .create(true)
            .append(true)
            .open(&m.log)
            .map_err(|e| format!("cannot open {}: {e}", m.log.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", m.log.display()))?;
        let etcd = program("WARDEN_ETCD_BIN", "etcd");
        // Flags for a new member; a member restarted over its data
        // directory ignores the initial-cluster ones.
        let child = Command::new(&etcd)
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.client_url()])
            .args(["--advertise-client-urls", &m.client_url()])
            .args(["--listen-peer-urls", &m.peer_url()])
            .args(["--initial-advertise-peer-urls", &m.peer_url()])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", "new"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .args(["--log-level", "warn"])
            .arg("--listen-metrics-urls")
            .arg(format!("http://127.0.0.1:{}", m.metrics_port))
            .args(self.tls.iter().flat_map(|t| {
                [
                    "--cert-file".into(),
                    t.cert.clone().into_os_string(),
                    "--key-file".into(),
                    t.key.clone().into_os_string(),
                    "--trusted-ca-file".into(),
                    t.ca.clone().into_os_string(),
                    "--client-cert-auth".into(),
                ]
            }))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot run {etcd} (is etcd-server installed?): {e}"))?;
        m.child = Some(child);
        Ok(())
    }

    fn wait_healthy(&mut self, which: impl Iterator<Item = usize> + Clone) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let mut all = true;
            for i in which.clone() {
                let m = &mut self.members[i];
                if let Some(Ok(Some(status))) = m.child.as_mut().map(|c| c.try_wait()) {
                    m.child = None;
                    let name = m.name.clone();
                    return Err(format!(
                        "etcd member {name} exited ({status}): {}",
                        self.log_tail(i)
                    ));
                }
                all &= healthy(self.members[i].metrics_port);
            }
            if all {
                return Ok(());
            }
            if start.elapsed() > DEADLINE {
                let logs: Vec<String> = which.map(|i| self.log_tail(i)).collect();
                return Err(format!(
                    "etcd not healthy after {DEADLINE:?}: {}",
                    logs.join(" | ")
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of member `i`'s log, for failure messages.
    pub fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(&self.members[i].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// `host:port` of every member's client endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// `etcd://` URL of the whole cluster with key prefix `prefix` (and,
    /// for a TLS cluster, the options to reach it).
    pub fn url(&self, prefix: &str) -> String {
        self.url_of(&self.endpoints(), prefix)
    }

    fn url_of(&self, endpoints: &[String], prefix: &str) -> String {
        let mut url = format!("etcd://{}/{prefix}", endpoints.join(","));
        if let Some(t) = &self.tls {
            url.push_str(&format!(
                "?ca={}&cert={}&key={}",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ));
        }
        url
    }

    /// A client of member `i` alone.
    fn member_client(&self, i: usize) -> Result<EtcdClient, String> {
        let endpoint = format!("127.0.0.1:{}", self.members[i].client_port);
        let url = self.url_of(&[endpoint], "member");
        let target = EtcdTarget::parse_with_password(&url, None).map_err(|e| e.to_string())?;
        EtcdClient::connect(&target, Timeouts::default()).map_err(|e| e.to_string())
    }

    /// A client of the whole cluster with key prefix `prefix`.
    pub fn client(&self, prefix: &str) -> Result<EtcdClient, String> {
        let target =
            EtcdTarget::parse_with_password(&self.url(prefix), None).map_err(|e| e.to_string())?;
        EtcdClient::connect(&target, Timeouts::default()).map_err(|e| e.to_string())
    }

    /// A directory that lives as long as the cluster, for the test's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The index of the current leader (asked of each running member).
    pub fn leader(&self) -> Result<usize, String> {
        for (i, m) in self.members.iter().enumerate() {
            if m.child.is_none() {
                continue;
            }
            let Ok(client) = self.member_client(i) else {
                continue;
            };
            let Ok(status) = client.call("status", |mut c| async move { c.status().await }) else {
                continue;
            };
            if status
                .header()
                .is_some_and(|h| h.member_id() == status.leader())
            {
                return Ok(i);
            }
        }
        Err("no member says it is the leader".into())
    }

    /// Kills member `i` (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts member `i` over its data and waits until it is healthy.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_healthy(std::iter::once(i))
    }

    /// Saves a snapshot of the cluster's data (from member 0) to `path`.
    pub fn save_snapshot(&self, path: &Path) -> Result<(), String> {
        let client = self.member_client(0)?;
        client.save_snapshot(path).map_err(|e| e.to_string())
    }

    /// Stops every member, restores each from `snapshot` into a fresh data
    /// directory (`etcdctl snapshot restore`, as an operator rolling the
    /// cluster back would) and starts them again on the same ports.
    pub fn restore(&mut self, snapshot: &Path) -> Result<(), String> {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        self.restores += 1;
        self.token = format!("{}-r{}", self.token, self.restores);
        let initial = self.initial_cluster();
        let etcdctl = program("WARDEN_ETCDCTL_BIN", "etcdctl");
        for m in &mut self.members {
            let data = self
                .dir
                .path()
                .join(format!("{}.r{}.etcd", m.name, self.restores));
            let out = Command::new(&etcdctl)
                .env("ETCDCTL_API", "3")
                .args(["snapshot", "restore"])
                .arg(snapshot)
                .args(["--name", &m.name])
                .arg("--data-dir")
                .arg(&data)
                .args(["--initial-cluster", &initial])
                .args(["--initial-cluster-token", &self.token])
                .args(["--initial-advertise-peer-urls", &m.peer_url()])
                .output()
                .map_err(|e| format!("cannot run {etcdctl} (is etcd-client installed?): {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "etcdctl snapshot restore failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            m.data_dir = data;
        }
        for i in 0..self.members.len() {
            self.spawn(i)?;
        }
        self.wait_healthy(0..self.members.len())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_killed_and_restarted_rejoins_and_data_survives() {
        let mut cluster = Cluster::start(3).unwrap();
        let client = cluster.client("t").unwrap();
        let key = client.target().key(b"k");
        client.put(&key, b"one").unwrap();
        let leader = cluster.leader().unwrap();
        cluster.kill(leader);
        // A put in flight to the killed member can fail in doubt
        // ("operation was canceled"), which the client rightly does not
        // retry; putting the same value again is safe here.
        let start = Instant::now();
        while let Err(e) = client.put(&key, b"two") {
            assert!(start.elapsed() < Duration::from_secs(30), "{e:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster.restart(leader).unwrap();
        let (entry, _) = client.get(&key, 0).unwrap();
        assert_eq!(entry.unwrap().value, b"two");
    }

    #[test]
    fn a_restored_snapshot_brings_back_old_data() {
        let mut cluster = Cluster::start(1).unwrap();
        let client = cluster.client("t").unwrap();
        let key = client.target().key(b"k");
        client.put(&key, b"old").unwrap();
        let snap = cluster.dir().join("snap.db");
        cluster.save_snapshot(&snap).unwrap();
        client.put(&key, b"new").unwrap();
        drop(client);
        cluster.restore(&snap).unwrap();
        let client = cluster.client("t").unwrap();
        assert_eq!(client.get(&key, 0).unwrap().0.unwrap().value, b"old");
    }
}
