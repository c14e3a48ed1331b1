//! Polling for a lone client's next message instead of sleeping on it.
//!
//! A connection thread that sleeps leaves its CPU idle, and on a virtual machine waking an
//! idle CPU can take tens of microseconds: on the 2-core machine of docs/benchmarks.md a
//! single pgbench client's select took 0.09 ms with the server sleeping between statements
//! and 0.05 ms with it polling. Polling costs the CPU it runs on, which other threads need
//! when the machine is busy (with every waiting connection polling, select-only at 8 clients
//! lost 20–40 %; with polling allowed while at most one connection thread ran, TPC-B-like at
//! 8 clients lost 16–21 %, its connections mostly asleep on commits; with polling allowed
//! whenever every connection waited, select-only at 8 clients lost 13–30 %: then the client
//! is what is busy). So a connection polls only when
//! - its session is between transactions, not inside a transaction block (COPY data and
//!   startup aside: the server sends nothing to wait on there). In traced single-client
//!   TPC-B-like runs the client ran on the connection thread's CPU while that thread slept
//!   between the statements of a transaction; a polling thread kept that CPU busy, so every
//!   answer woke the client on the idle one, ~45 µs each (alternating: 1,598 / 1,711
//!   transactions a second polling inside blocks, 2,364 / 2,281 not; docs/benchmarks.md);
//! - it is the server's one connection with anything to do: every connection is waiting for
//!   its client and no other connection is polling; and
//! - the machine had at least one CPU to spare over the last [`IDLE_WINDOW`]: idle time
//!   (Linux's `/proc/stat`) plus the time connections spent polling, which they would give
//!   up, adds up to a CPU. Elsewhere than Linux, never.
//!
//! Then it polls for up to [`SPIN`], yielding to its thread's other tasks between polls, and
//! sleeps after that.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_types::clock::Clock;

/// Longest a connection polls for its client's next message before sleeping on it.
const SPIN: Duration = Duration::from_micros(50);
/// How often the machine's idle time is sampled (`/proc/stat` counts in 10 ms ticks).
const IDLE_WINDOW: Duration = Duration::from_millis(100);

/// What the server's connections are doing, for deciding whether one may poll.
#[derive(Clone)]
pub(crate) struct Connections {
    state: Arc<State>,
}

struct State {
    /// Connections open.
    open: AtomicUsize,
    /// Connections waiting for their client's next message.
    waiting: AtomicUsize,
    /// Set while a connection polls.
    polling: AtomicBool,
    /// Whether the machine had a CPU to spare over the last window.
    spare_cpu: AtomicBool,
    /// Nanoseconds connections have spent polling, in all.
    polled_nanos: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl Connections {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Connections {
        Connections {
            state: Arc::new(State {
                open: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                polling: AtomicBool::new(false),
                spare_cpu: AtomicBool::new(false),
                polled_nanos: AtomicU64::new(0),
                clock,
            }),
        }
    }

    /// Samples the machine's idle time every [`IDLE_WINDOW`], forever (spawn it; without it
    /// no connection polls).
    pub(crate) async fn watch_idle_cpus(self) {
        let state = &*self.state;
        let Some(mut last) = cpu_ticks() else {
            return;
        };
        let mut last_polled = state.polled_nanos.load(Ordering::Relaxed);
        loop {
            state.clock.sleep(IDLE_WINDOW).await;
            let Some(now) = cpu_ticks() else {
                return;
            };
            let polled = state.polled_nanos.load(Ordering::Relaxed);
            // Idle and polling time as a share of one CPU's time over the window.
            let window = u64::try_from(IDLE_WINDOW.as_nanos()).unwrap_or(u64::MAX);
            let total = now.total.saturating_sub(last.total).max(1);
            let idle_cpus =
                now.idle.saturating_sub(last.idle) as f64 / total as f64 * now.cpus as f64;
            let polling_cpus = polled.saturating_sub(last_polled) as f64 / window as f64;
            state
                .spare_cpu
                .store(idle_cpus + polling_cpus >= 1.0, Ordering::Relaxed);
            (last, last_polled) = (now, polled);
        }
    }

    /// Counts a connection as open until the result is dropped.
    pub(crate) fn open(&self) -> Member {
        self.state.open.fetch_add(1, Ordering::Relaxed);
        Member {
            state: self.state.clone(),
        }
    }
}

/// Whether a connection's wait for its client may poll (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Polling {
    /// Between transactions (or in COPY, or at startup): it may, if alone.
    Allowed,
    /// Inside a transaction block: it sleeps at once.
    Never,
}

/// One open connection.
pub(crate) struct Member {
    state: Arc<State>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.state.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Member {
    /// Counts this connection as waiting for its client until the result is dropped, and
    /// lets it poll if `poll` allows and it is the only one with anything to do.
    pub(crate) fn wait(&self, poll: Polling) -> Waiting<'_> {
        let state = &*self.state;
        let waiting = state.waiting.fetch_add(1, Ordering::Relaxed) + 1;
        let polling = poll == Polling::Allowed
            && waiting >= state.open.load(Ordering::Relaxed)
            && state.spare_cpu.load(Ordering::Relaxed)
            && state
                .polling
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
        Waiting {
            state,
            polling,
            // Read only when needed: most waits on a busy server do not poll.
            since: if polling {
                state.clock.monotonic_nanos()
            } else {
                0
            },
        }
    }
}

/// A connection waiting for its client.
pub(crate) struct Waiting<'a> {
    state: &'a State,
    /// Whether it holds the one permission to poll.
    polling: bool,
    since: u64,
}

impl Waiting<'_> {
    /// Whether to poll again rather than sleep: it may poll, for less than [`SPIN`] so far,
    /// and no other connection has work since (then it stops, for good).
    pub(crate) fn poll_again(&mut self) -> bool {
        if !self.polling {
            return false;
        }
        let spin = u64::try_from(SPIN.as_nanos()).unwrap_or(u64::MAX);
        let state = self.state;
        let within = state.clock.monotonic_nanos().saturating_sub(self.since) < spin;
        let alone = state.waiting.load(Ordering::Relaxed) >= state.open.load(Ordering::Relaxed);
        if !(within && alone) {
            self.stop_polling();
        }
        self.polling
    }

    fn stop_polling(&mut self) {
        if std::mem::take(&mut self.polling) {
            let polled = self
                .state
                .clock
                .monotonic_nanos()
                .saturating_sub(self.since);
            self.state.polled_nanos.fetch_add(polled, Ordering::Relaxed);
            self.state.polling.store(false, Ordering::Release);
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.stop_polling();
        self.state.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The machine's CPU time so far, from the first line of Linux's `/proc/stat`.
struct CpuTicks {
    /// Idle and I/O wait ticks, all CPUs.
    idle: u64,
    /// All ticks, all CPUs.
    total: u64,
    cpus: usize,
}

fn cpu_ticks() -> Option<CpuTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mut lines = stat.lines();
    let ticks: Vec<u64> = lines
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let cpus = lines.filter(|line| line.starts_with("cpu")).count();
    Some(CpuTicks {
        idle: ticks.get(3)? + ticks.get(4)?,
        total: ticks.iter().sum(),
        cpus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_clock::ManualClock;
    use cairn_types::Timestamp;

    fn connections() -> (Connections, ManualClock) {
        let clock = ManualClock::new(Timestamp(1), Duration::ZERO);
        let connections = Connections::new(Arc::new(clock.clone()));
        connections.state.spare_cpu.store(true, Ordering::Relaxed);
        (connections, clock)
    }

    #[test]
    fn a_lone_connection_polls_only_while_a_cpu_is_spare() {
        let (connections, _clock) = connections();
        let lone = connections.open();
        assert!(lone.wait(Polling::Allowed).poll_again());
        connections.state.spare_cpu.store(false, Ordering::Relaxed);
        assert!(!lone.wait(Polling::Allowed).poll_again());
    }

    #[test]
    fn only_the_last_connection_to_wait_polls_and_stops_when_another_has_work() {
        let (connections, _clock) = connections();
        let (first, second, third) = (connections.open(), connections.open(), connections.open());
        let mut first_waiting = first.wait(Polling::Allowed);
        assert!(!first_waiting.poll_again(), "the others have work");
        let second_waiting = second.wait(Polling::Allowed);
        let mut third_waiting = third.wait(Polling::Allowed);
        assert!(third_waiting.poll_again(), "every connection waits");
        assert!(!first_waiting.poll_again(), "one polls at a time");
        drop(second_waiting); // its client sent something
        assert!(!third_waiting.poll_again());
        assert!(
            !third_waiting.poll_again(),
            "a stopped poll does not resume"
        );
        let mut second_waiting = second.wait(Polling::Allowed);
        assert!(second_waiting.poll_again(), "all wait again and none polls");
    }

    #[test]
    fn a_connection_inside_a_transaction_block_sleeps_but_counts_as_waiting() {
        let (connections, _clock) = connections();
        let (in_block, between) = (connections.open(), connections.open());
        {
            let _between_waiting = between.wait(Polling::Allowed);
            let mut in_block_waiting = in_block.wait(Polling::Never);
            assert!(
                !in_block_waiting.poll_again(),
                "the last to wait, but inside a block it never polls"
            );
        }
        let _in_block_waiting = in_block.wait(Polling::Never);
        let mut between_waiting = between.wait(Polling::Allowed);
        assert!(
            between_waiting.poll_again(),
            "the one waiting inside a block still counts as waiting"
        );
    }

    #[test]
    fn polling_ends_after_the_spin_and_counts_its_time() {
        let (connections, clock) = connections();
        let lone = connections.open();
        let mut waiting = lone.wait(Polling::Allowed);
        clock.advance(SPIN / 2);
        assert!(waiting.poll_again());
        clock.advance(SPIN / 2);
        assert!(!waiting.poll_again());
        drop(waiting);
        let polled = connections.state.polled_nanos.load(Ordering::Relaxed);
        assert_eq!(u128::from(polled), SPIN.as_nanos());
        assert!(
            lone.wait(Polling::Allowed).poll_again(),
            "a new wait polls again"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_machines_cpu_time_is_read() {
        let ticks = cpu_ticks().expect("/proc/stat on Linux");
        assert!(ticks.cpus >= 1);
        assert!(ticks.idle <= ticks.total && ticks.total > 0);
    }
}
