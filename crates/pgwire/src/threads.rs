//! The threads connections run on: each a single-threaded tokio runtime with its own epoll,
//! serving the connections given to it cooperatively, as a PostgreSQL backend serves one.
//!
//! Why not the multi-threaded runtime the rest of the server uses: its workers hand ready
//! connections to one another (work stealing, waking a parked worker for each burst of
//! socket events), and with many busy connections on few cores that costs more than the
//! statements. Measured on 2 cores (docs/benchmarks.md, "Connection threads"): select-only
//! pgbench at 8 clients 60,000 → 78,000 TPS, TPC-B-like 4,300 → 5,000.
//!
//! The price is that a connection cannot move: while one statement computes, the other
//! connections on its thread wait for it to reach an await. Long statements yield at their
//! cancellation checks (`ExecContext::checkpoint`), and a new connection goes to the thread
//! serving the fewest, so a thread is shared by about connections / threads clients. What
//! must run regardless of a busy connection thread (statement timeouts, background jobs)
//! runs on the server's multi-threaded runtime instead (`Engine::spawn_background`).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// Stack of each connection thread: statements recurse (expressions, JSON, subqueries) below
/// a deep chain of async calls, as on the server's runtime (cairn-server's `start`).
const STACK_SIZE: usize = 8 << 20;

/// A fixed set of connection threads.
pub(crate) struct ConnectionThreads {
    threads: Vec<ConnectionThread>,
}

struct ConnectionThread {
    runtime: Handle,
    /// Connections on this thread now.
    serving: Arc<AtomicUsize>,
    /// Dropped to stop the thread's runtime.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ConnectionThreads {
    /// Starts `count` threads (at least one).
    pub(crate) fn start(count: usize) -> io::Result<ConnectionThreads> {
        let threads = (0..count.max(1))
            .map(ConnectionThread::start)
            .collect::<io::Result<_>>()?;
        Ok(ConnectionThreads { threads })
    }

    /// Where the next connection should run: the thread serving the fewest (the first of
    /// them), and a guard that counts the connection there until it is dropped.
    pub(crate) fn assign(&self) -> (Handle, Serving) {
        let least = self
            .threads
            .iter()
            .min_by_key(|thread| thread.serving.load(Ordering::Relaxed))
            .unwrap_or_else(|| unreachable!("start makes at least one thread"));
        least.serving.fetch_add(1, Ordering::Relaxed);
        (least.runtime.clone(), Serving(least.serving.clone()))
    }
}

impl Drop for ConnectionThreads {
    /// Stops every thread's runtime (dropping what still runs there) and waits for it.
    fn drop(&mut self) {
        for thread in &mut self.threads {
            thread.stop.take();
        }
        for thread in &mut self.threads {
            if let Some(handle) = thread.thread.take() {
                if handle.join().is_err() {
                    tracing::error!("a connection thread panicked");
                }
            }
        }
    }
}

impl ConnectionThread {
    fn start(index: usize) -> io::Result<ConnectionThread> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("cairn-conn-{index}"))
            .stack_size(STACK_SIZE)
            .spawn(move || {
                // Either a send or the sender dropped ends it; nothing is ever sent.
                let _ = runtime.block_on(stopped);
            })?;
        Ok(ConnectionThread {
            runtime: handle,
            serving: Arc::new(AtomicUsize::new(0)),
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Counts one connection on its thread while alive.
pub(crate) struct Serving(Arc<AtomicUsize>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
