//! The `Clock` seam: all time in Cairn is read through it (DESIGN §2).
//!
//! A clock returns an interval `[earliest, latest]` that holds true time (the ClockBound
//! model). `latest` is hybrid logical: every call returns a `latest` strictly greater than any
//! earlier call's, so it can serve as a unique timestamp. Sleeping also goes through the clock,
//! so a simulated clock drives timeouts too. Implementations live in `cairn-clock`.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use crate::seam::BoxFuture;
use crate::Timestamp;

/// An interval known to hold true time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeInterval {
    /// True time is at least this. Never goes backwards.
    pub earliest: Timestamp,
    /// True time is at most this. Unique and strictly increasing across calls.
    pub latest: Timestamp,
}

/// A source of time. See the module documentation for the guarantees.
pub trait Clock: Send + Sync + 'static {
    /// The current time interval. `latest` is strictly greater than every earlier call's
    /// `latest` and every timestamp passed to [`Clock::observe`].
    fn now(&self) -> TimeInterval;

    /// Moves the logical part forward so that later `now().latest` exceed `ts`: called with
    /// timestamps learned from elsewhere (the hybrid logical clock rule).
    fn observe(&self, ts: Timestamp);

    /// Resolves once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// Nanoseconds of monotonic time since an arbitrary origin, for measuring durations.
    fn monotonic_nanos(&self) -> u64;
}

/// Runs `future` for at most `duration` of `clock`'s time; `None` if it did not finish.
pub async fn timeout<F: Future>(
    clock: &dyn Clock,
    duration: Duration,
    future: F,
) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut deadline = clock.sleep(duration);
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
