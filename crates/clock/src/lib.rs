//! Clocks: the only place in Cairn that reads wall time or sleeps (clippy's
//! `disallowed-methods` enforces it everywhere else).
//!
//! Both clocks implement [`cairn_types::clock::Clock`]: `now()` returns an interval
//! `[earliest, latest]` that holds true time, with `latest` *hybrid logical*: it is at least
//! physical time plus the error bound, and strictly greater than every earlier `latest` and
//! every observed timestamp, so it can name a commit uniquely.
//!
//! - [`SystemClock`]: the operating system's clock with a configured error bound ε
//!   (zero on one machine). `earliest` never goes backwards even if the OS clock steps back.
//! - [`ManualClock`]: time moves only when a test calls [`ManualClock::advance`]; sleeps wake
//!   when it passes their deadline. Simulation drives it.
#![allow(clippy::disallowed_methods)] // this crate is where time is read

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_types::clock::{Clock, TimeInterval};
use cairn_types::seam::BoxFuture;
use cairn_types::Timestamp;
use tokio::sync::watch;

/// The hybrid logical part shared by both clocks: turns a physical reading into an interval
/// whose `latest` is unique and strictly increasing, and whose `earliest` never decreases.
#[derive(Debug, Default)]
struct Hybrid {
    last_latest: AtomicU64,
    last_earliest: AtomicU64,
}

impl Hybrid {
    fn interval(&self, physical_nanos: u64, error_nanos: u64) -> TimeInterval {
        let earliest = physical_nanos.saturating_sub(error_nanos);
        let earliest = self
            .last_earliest
            .fetch_max(earliest, Ordering::AcqRel)
            .max(earliest);
        let floor = physical_nanos.saturating_add(error_nanos);
        let previous = self
            .last_latest
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(floor.max(last + 1))
            })
            .unwrap_or_else(|last| last);
        let latest = floor.max(previous + 1);
        TimeInterval {
            earliest: Timestamp(earliest),
            latest: Timestamp(latest),
        }
    }

    fn observe(&self, ts: Timestamp) {
        self.last_latest.fetch_max(ts.0, Ordering::AcqRel);
    }
}

/// The operating system's clock, with an error bound.
#[derive(Debug)]
pub struct SystemClock {
    error_nanos: u64,
    hybrid: Hybrid,
    origin: Instant,
}

impl SystemClock {
    /// A system clock whose readings are within `error_bound` of true time.
    pub fn new(error_bound: Duration) -> Self {
        SystemClock {
            error_nanos: u64::try_from(error_bound.as_nanos()).unwrap_or(u64::MAX),
            hybrid: Hybrid::default(),
            origin: Instant::now(),
        }
    }

    fn physical_nanos() -> u64 {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new(Duration::ZERO)
    }
}

/// Below this, tokio's millisecond timer would oversleep badly; commit-wait sleeps are
/// usually microseconds, so short sleeps yield to the scheduler until the time has passed.
const SHORTEST_TIMER_SLEEP: Duration = Duration::from_millis(1);

impl Clock for SystemClock {
    fn now(&self) -> TimeInterval {
        self.hybrid
            .interval(Self::physical_nanos(), self.error_nanos)
    }

    fn observe(&self, ts: Timestamp) {
        self.hybrid.observe(ts);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        if duration >= SHORTEST_TIMER_SLEEP {
            return Box::pin(tokio::time::sleep(duration));
        }
        let start = Instant::now();
        Box::pin(async move {
            while start.elapsed() < duration {
                tokio::task::yield_now().await;
            }
        })
    }

    fn monotonic_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to. Cloning shares the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    physical: watch::Sender<u64>,
    error_nanos: u64,
    hybrid: Hybrid,
}

impl ManualClock {
    /// A clock reading `start` with error bound `error_bound`.
    pub fn new(start: Timestamp, error_bound: Duration) -> Self {
        let (physical, _) = watch::channel(start.0);
        ManualClock {
            inner: Arc::new(ManualInner {
                physical,
                error_nanos: u64::try_from(error_bound.as_nanos()).unwrap_or(u64::MAX),
                hybrid: Hybrid::default(),
            }),
        }
    }

    /// Moves physical time forward by `duration`, waking sleeps that are due.
    pub fn advance(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.inner
            .physical
            .send_modify(|now| *now = now.saturating_add(nanos));
    }

    /// The physical time, without the error bound or logical part.
    pub fn physical(&self) -> Timestamp {
        Timestamp(*self.inner.physical.borrow())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> TimeInterval {
        self.inner
            .hybrid
            .interval(*self.inner.physical.borrow(), self.inner.error_nanos)
    }

    fn observe(&self, ts: Timestamp) {
        self.inner.hybrid.observe(ts);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let mut receiver = self.inner.physical.subscribe();
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let deadline = receiver.borrow().saturating_add(nanos);
        Box::pin(async move {
            // The sender lives as long as any clone of the clock; if all are gone, no time
            // will pass again, so the sleep never ends, as it would in a stopped world.
            let _ = receiver.wait_for(|now| *now >= deadline).await;
            if *receiver.borrow() < deadline {
                std::future::pending::<()>().await;
            }
        })
    }

    fn monotonic_nanos(&self) -> u64 {
        *self.inner.physical.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_is_unique_and_increasing_even_when_physical_time_stands_still() {
        let clock = ManualClock::new(Timestamp(1_000), Duration::ZERO);
        let readings: Vec<_> = (0..100).map(|_| clock.now().latest).collect();
        assert!(readings.windows(2).all(|w| w[0] < w[1]));
        assert!(readings[0] >= Timestamp(1_000));
    }

    #[test]
    fn interval_holds_physical_time_within_the_error_bound() {
        let clock = ManualClock::new(Timestamp(1_000_000), Duration::from_nanos(500));
        let now = clock.now();
        assert_eq!(now.earliest, Timestamp(999_500));
        assert!(now.latest >= Timestamp(1_000_500));
    }

    #[test]
    fn observed_timestamps_push_latest_past_them() {
        let clock = ManualClock::new(Timestamp(10), Duration::ZERO);
        clock.observe(Timestamp(5_000));
        assert!(clock.now().latest > Timestamp(5_000));
        assert!(
            clock.now().earliest <= Timestamp(10),
            "earliest stays physical"
        );
    }

    #[test]
    fn system_clock_latest_never_repeats_across_threads() {
        let clock = Arc::new(SystemClock::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let clock = clock.clone();
                std::thread::spawn(move || {
                    (0..10_000).map(|_| clock.now().latest).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count);
    }

    #[tokio::test]
    async fn manual_sleep_wakes_only_when_time_passes_its_deadline() {
        let clock = ManualClock::new(Timestamp(0), Duration::ZERO);
        let sleeper = tokio::spawn(clock.sleep(Duration::from_secs(5)));
        clock.advance(Duration::from_secs(4));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn timeout_gives_up_when_the_clock_passes_the_deadline() {
        let clock = ManualClock::new(Timestamp(0), Duration::ZERO);
        let waiting = {
            let clock = clock.clone();
            tokio::spawn(async move {
                cairn_types::clock::timeout(
                    &clock,
                    Duration::from_secs(1),
                    std::future::pending::<()>(),
                )
                .await
            })
        };
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(2));
        assert_eq!(waiting.await.unwrap(), None);
        let quick = cairn_types::clock::timeout(&clock, Duration::from_secs(1), async { 7 }).await;
        assert_eq!(quick, Some(7));
    }
}
