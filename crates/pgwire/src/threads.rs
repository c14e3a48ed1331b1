//! The threads connections run on: each a single-threaded tokio runtime with its own epoll,
//! serving the connections given to it one poll at a time (where PostgreSQL gives each
//! connection a process).
//!
//! Why not the multi-threaded runtime the rest of the server uses: its workers hand ready
//! connections to one another (work stealing, waking a parked worker for each burst of
//! socket events), and with many busy connections on few cores that costs more than the
//! statements. Measured on 2 cores (docs/benchmarks.md, "Connection threads"): select-only
//! pgbench at 8 clients 60,000 → 78,000 TPS, TPC-B-like 4,300 → 5,000.
//!
//! The price is that a connection cannot move: while one statement computes, the other
//! connections on its thread wait for it to reach an await. So:
//! - long statements yield at their cancellation checks (`ExecContext::checkpoint`, about
//!   every 4,000 rows of work), and an ORDER BY of more than 10,000 rows sorts on tokio's
//!   blocking pool; sorts inside window functions and ordered aggregates, and the end of a
//!   large aggregation, still hold the thread;
//! - a new connection goes to the thread serving the fewest, skipping a thread whose current
//!   poll has run for over [`STUCK_AFTER`], so a cancel request or a new client is not queued
//!   behind a long statement while another thread is free;
//! - what must run regardless of a busy connection thread (statement timeouts, background
//!   jobs) runs on the server's multi-threaded runtime (`Engine::spawn_background`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use cairn_types::clock::Clock;
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// Stack of each connection thread: statements recurse (expressions, JSON, subqueries) below
/// a deep chain of async calls, as on the server's runtime (cairn-server's `start`).
const STACK_SIZE: usize = 8 << 20;
/// A thread whose current poll has run this long is passed over for new connections.
const STUCK_AFTER: Duration = Duration::from_millis(10);

/// A fixed set of connection threads.
pub(crate) struct ConnectionThreads {
    threads: Vec<ConnectionThread>,
    clock: Arc<dyn Clock>,
}

struct ConnectionThread {
    runtime: Handle,
    /// Connections on this thread now.
    serving: Arc<AtomicUsize>,
    /// When the poll of a connection running now began, on the clock's monotonic time plus
    /// one; 0 while no connection's poll runs.
    polling_since: Arc<AtomicU64>,
    /// Dropped to stop the thread's runtime.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ConnectionThreads {
    /// Starts `count` threads (at least one); `clock` times their polls.
    pub(crate) fn start(count: usize, clock: Arc<dyn Clock>) -> io::Result<ConnectionThreads> {
        let threads = (0..count.max(1))
            .map(ConnectionThread::start)
            .collect::<io::Result<_>>()?;
        Ok(ConnectionThreads { threads, clock })
    }

    /// Runs the future `connection` makes on the thread serving the fewest among those not
    /// stuck in a long poll (the first of them; a stuck one only if all are), counted there
    /// until it ends. The future is made on that thread, so that what it registers (its
    /// socket) belongs to that thread's runtime.
    pub(crate) fn spawn<F, C>(&self, tasks: &mut tokio::task::JoinSet<()>, connection: C)
    where
        C: FnOnce() -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let now = self.clock.monotonic_nanos();
        let stuck_after = u64::try_from(STUCK_AFTER.as_nanos()).unwrap_or(u64::MAX);
        let stuck = |thread: &ConnectionThread| match thread.polling_since.load(Ordering::Relaxed) {
            0 => false,
            since => now.saturating_sub(since - 1) > stuck_after,
        };
        let thread = self
            .threads
            .iter()
            .min_by_key(|thread| (stuck(thread), thread.serving.load(Ordering::Relaxed)))
            .unwrap_or_else(|| unreachable!("start makes at least one thread"));
        thread.serving.fetch_add(1, Ordering::Relaxed);
        let serving = Serving(thread.serving.clone());
        let (clock, polling_since) = (self.clock.clone(), thread.polling_since.clone());
        tasks.spawn_on(
            async move {
                let _serving = serving;
                Timed {
                    future: std::pin::pin!(connection()),
                    clock,
                    polling_since,
                }
                .await
            },
            &thread.runtime,
        );
    }
}

/// A future whose polls are marked on its thread's `polling_since`.
struct Timed<F> {
    future: F,
    clock: Arc<dyn Clock>,
    polling_since: Arc<AtomicU64>,
}

impl<F: Future + Unpin> Future for Timed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let started = self.clock.monotonic_nanos().saturating_add(1);
        self.polling_since.store(started, Ordering::Relaxed);
        let polled = Pin::new(&mut self.future).poll(cx);
        self.polling_since.store(0, Ordering::Relaxed);
        polled
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
            polling_since: Arc::new(AtomicU64::new(0)),
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
