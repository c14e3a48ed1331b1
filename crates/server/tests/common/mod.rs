//! Test harness: the real `cairn` binary on a free port over a temporary data directory, and
//! a raw protocol client for what drivers cannot say (garbage, half messages, raw startup).
//!
//! All waiting goes through `cairn_clock::SystemClock` (the workspace forbids reading time
//! any other way), and every read has a deadline so that a broken server fails a test
//! instead of hanging it.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use cairn_clock::SystemClock;
use cairn_types::clock::{timeout, Clock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the server logs once it listens.
const LISTENING: &str = "listening on";

/// How long any single wait in a test may take.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A path inside the repository. Read at run time, not compile time: CI clones share one
/// target directory, and cargo reuses a test binary built from a clone at another path.
pub fn repository_path(relative: &str) -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.join("../..").join(relative)
}

pub fn clock() -> SystemClock {
    SystemClock::default()
}

pub async fn sleep(duration: Duration) {
    clock().sleep(duration).await
}

/// A running `cairn start`, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Server {
    /// `cairn start` on a free loopback port with a fresh data directory.
    pub async fn start() -> Server {
        Server::start_with(&[], &[]).await
    }

    /// As [`Server::start`], with extra arguments and environment variables.
    pub async fn start_with(args: &[&str], envs: &[(&str, &str)]) -> Server {
        // A free port can be taken by someone else before the server binds it: retry.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temporary directory");
            let addr = free_port();
            let child = spawn(dir.path(), addr, args, envs);
            let mut server = Server { child, addr, dir };
            if server.wait_until_accepting(1).await {
                return server;
            }
            eprintln!("cairn exited during startup, retrying:\n{}", server.log());
        }
        panic!("cairn did not start");
    }

    /// Kills the server with SIGKILL and starts it again on the same data directory and port.
    pub async fn kill_and_restart(&mut self) {
        // It may have died already (a fault hook): killing a dead child is harmless.
        let _ = self.child.kill();
        self.child.wait().expect("reap cairn");
        let listens = self.log().matches(LISTENING).count() + 1;
        self.child = spawn(self.dir.path(), self.addr, &[], &[]);
        assert!(
            self.wait_until_accepting(listens).await,
            "cairn did not restart:\n{}",
            self.log()
        );
    }

    /// Waits until the server accepts TCP connections; false if it exited first. It must
    /// have logged its `listens`-th "listening on": a connection alone could reach another
    /// test's server that was handed the same free port.
    async fn wait_until_accepting(&mut self, listens: usize) -> bool {
        let clock = clock();
        let deadline = clock.monotonic_nanos() + 60_000_000_000;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if self.log().matches(LISTENING).count() >= listens
                && TcpStream::connect(self.addr).await.is_ok()
            {
                return true;
            }
            assert!(
                clock.monotonic_nanos() < deadline,
                "cairn never accepted connections:\n{}",
                self.log()
            );
            clock.sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A tokio-postgres configuration for `postgres@postgres` on this server.
    pub fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.addr.port())
            .user("postgres")
            .dbname("postgres")
            .application_name("cairn-test");
        config
    }

    /// A connected tokio-postgres client (its connection runs on a spawned task).
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) = self
            .config()
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect as postgres");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let clock = clock();
        let deadline = clock.monotonic_nanos() + PATIENCE.as_nanos() as u64;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for cairn") {
                return status;
            }
            assert!(
                clock.monotonic_nanos() < deadline,
                "cairn did not exit:\n{}",
                self.log()
            );
            clock.sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cairn start` on `addr` with its data under `dir`, logging to `dir/server.log` (appended,
/// so a restart keeps the earlier log).
fn spawn(dir: &std::path::Path, addr: SocketAddr, args: &[&str], envs: &[(&str, &str)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("start")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--listen")
        .arg(addr.to_string())
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn cairn")
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}

/// The error of a result that must have failed.
pub fn expect_err<T, E>(result: Result<T, E>, what: &str) -> E {
    match result {
        Ok(_) => panic!("expected an error: {what}"),
        Err(error) => error,
    }
}

/// Runs `future` with the test deadline.
pub async fn patiently<F: std::future::Future>(what: &str, future: F) -> F::Output {
    match timeout(&clock(), PATIENCE, future).await {
        Some(output) => output,
        None => panic!("timed out: {what}"),
    }
}

// ---- raw protocol ------------------------------------------------------------------------

/// One backend message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub kind: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// A field of an ErrorResponse or NoticeResponse.
    pub fn field(&self, code: u8) -> Option<String> {
        let mut rest = &self.body[..];
        while let Some((&c, tail)) = rest.split_first() {
            if c == 0 {
                break;
            }
            let end = tail.iter().position(|b| *b == 0)?;
            if c == code {
                return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
            }
            rest = &tail[end + 1..];
        }
        None
    }

    /// The SQLSTATE of an ErrorResponse.
    pub fn sqlstate(&self) -> Option<String> {
        self.field(b'C')
    }

    /// Name and value of a ParameterStatus.
    pub fn parameter(&self) -> (String, String) {
        let mut parts = self.body.split(|b| *b == 0);
        let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let value = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        (name, value)
    }

    /// The fields of a DataRow (`None` for NULL).
    pub fn data_row(&self) -> Vec<Option<Vec<u8>>> {
        assert_eq!(self.kind, b'D');
        let count = i16::from_be_bytes([self.body[0], self.body[1]]);
        let mut at = 2;
        (0..count)
            .map(|_| {
                let len = i32::from_be_bytes(
                    self.body[at..at + 4]
                        .try_into()
                        .expect("a fixed-size field"),
                );
                at += 4;
                if len < 0 {
                    None
                } else {
                    let value = self.body[at..at + len as usize].to_vec();
                    at += len as usize;
                    Some(value)
                }
            })
            .collect()
    }

    /// The type OIDs of a RowDescription's columns, with their names.
    pub fn row_description(&self) -> Vec<(String, u32, i16)> {
        assert_eq!(self.kind, b'T');
        let count = i16::from_be_bytes([self.body[0], self.body[1]]);
        let mut at = 2;
        (0..count)
            .map(|_| {
                let end = at
                    + self.body[at..]
                        .iter()
                        .position(|b| *b == 0)
                        .expect("a column name");
                let name = String::from_utf8_lossy(&self.body[at..end]).into_owned();
                at = end + 1;
                let oid = u32::from_be_bytes(
                    self.body[at + 6..at + 10]
                        .try_into()
                        .expect("a fixed-size field"),
                );
                let format = i16::from_be_bytes(
                    self.body[at + 16..at + 18]
                        .try_into()
                        .expect("a fixed-size field"),
                );
                at += 18;
                (name, oid, format)
            })
            .collect()
    }
}

/// A frontend message: type byte, length, body.
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A NUL-terminated string.
pub fn cstr(s: &str) -> Vec<u8> {
    let mut out = s.as_bytes().to_vec();
    out.push(0);
    out
}

/// A StartupMessage for protocol `major.minor` with these parameters.
pub fn startup_packet(major: u16, minor: u16, params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&major.to_be_bytes());
    body.extend_from_slice(&minor.to_be_bytes());
    for (name, value) in params {
        body.extend(cstr(name));
        body.extend(cstr(value));
    }
    body.push(0);
    let mut out = (body.len() as i32 + 4).to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// Query('Q').
pub fn query(sql: &str) -> Vec<u8> {
    message(b'Q', &cstr(sql))
}

/// Sync('S').
pub fn sync() -> Vec<u8> {
    message(b'S', b"")
}

/// A raw protocol connection.
pub struct Raw {
    stream: TcpStream,
    input: Vec<u8>,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Raw {
            stream,
            input: Vec::new(),
        }
    }

    /// Connects and completes startup as postgres; returns the startup messages up to and
    /// including ReadyForQuery.
    pub async fn connect_ready(addr: SocketAddr) -> (Raw, Vec<Msg>) {
        let mut raw = Raw::connect(addr).await;
        raw.send(&startup_packet(
            3,
            0,
            &[("user", "postgres"), ("database", "postgres")],
        ))
        .await;
        let messages = raw.until_ready().await;
        assert_eq!(
            messages.last().map(|m| m.kind),
            Some(b'Z'),
            "startup failed: {messages:?}"
        );
        (raw, messages)
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Closes the sending side (the server sees EOF).
    pub async fn shutdown_write(&mut self) {
        self.stream.shutdown().await.expect("shutdown");
    }

    /// One raw byte (SSL/GSS responses have no framing), or `None` at EOF.
    pub async fn byte(&mut self) -> Option<u8> {
        if self.input.is_empty() && !self.fill().await {
            return None;
        }
        Some(self.input.remove(0))
    }

    /// The next message, or `None` at EOF.
    pub async fn recv(&mut self) -> Option<Msg> {
        loop {
            if self.input.len() >= 5 {
                let len =
                    i32::from_be_bytes(self.input[1..5].try_into().expect("a fixed-size field"))
                        as usize;
                if self.input.len() > len {
                    let body = self.input[5..1 + len].to_vec();
                    let kind = self.input[0];
                    self.input.drain(..1 + len);
                    return Some(Msg { kind, body });
                }
            }
            if !self.fill().await {
                assert!(
                    self.input.is_empty(),
                    "EOF inside a message: {:?}",
                    self.input
                );
                return None;
            }
        }
    }

    /// Messages up to and including ReadyForQuery (or up to EOF).
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        let mut messages = Vec::new();
        while let Some(message) = self.recv().await {
            let ready = message.kind == b'Z';
            messages.push(message);
            if ready {
                break;
            }
        }
        messages
    }

    /// Every message until the server closes the connection.
    pub async fn until_closed(&mut self) -> Vec<Msg> {
        let mut messages = Vec::new();
        while let Some(message) = self.recv().await {
            messages.push(message);
        }
        messages
    }

    /// Sends Sync and expects ReadyForQuery: the connection is alive and in step.
    pub async fn ping(&mut self) {
        self.send(&sync()).await;
        let messages = self.until_ready().await;
        assert_eq!(
            messages.iter().map(|m| m.kind).collect::<Vec<_>>(),
            vec![b'Z']
        );
    }

    async fn fill(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        let read = match timeout(&clock(), PATIENCE, self.stream.read(&mut buf)).await {
            Some(read) => read,
            None => panic!("the server sent nothing for {PATIENCE:?}"),
        };
        match read {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.input.extend_from_slice(&buf[..n]);
                true
            }
        }
    }
}

/// Asserts that the server ended the connection with FATAL 08P01 (and nothing after it).
pub async fn assert_closed_with_protocol_violation(raw: &mut Raw) {
    let messages = raw.until_closed().await;
    let last = messages
        .last()
        .unwrap_or_else(|| panic!("no ErrorResponse before close"));
    assert_eq!(last.kind, b'E', "{messages:?}");
    assert_eq!(
        last.sqlstate().as_deref(),
        Some("08P01"),
        "{:?}",
        last.field(b'M')
    );
    assert_eq!(last.field(b'S').as_deref(), Some("FATAL"));
}

/// The backend pid of `client`'s session.
pub async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pg_backend_pid")
        .get(0)
}

/// `pg_cancel_backend(pid)` from `client`: whether a session with that pid was told.
pub async fn cancel_backend(client: &tokio_postgres::Client, pid: i32) -> bool {
    client
        .query_one("SELECT pg_cancel_backend($1)", &[&pid])
        .await
        .expect("pg_cancel_backend")
        .get(0)
}
