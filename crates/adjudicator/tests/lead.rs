//! The commit lead: `commit_ts` is chosen ahead of the clock by a fraction of the journal's
//! recent append latency, and a heartbeat asked for while such a commit is in its append
//! promises up to now, below it, and is published without waiting for that append.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_adjudicator::{AdjudicatorOptions, LocalAdjudicator};
use cairn_clock::ManualClock;
use cairn_journal::{FileJournal, JournalOptions};
use cairn_types::adjudicator::{Adjudicator, CommitRequest, HeartbeatRequest};
use cairn_types::clock::Clock;
use cairn_types::journal::{self, AppendRequest, AppendResponse, Entry, Journal};
use cairn_types::seam::BoxFuture;
use cairn_types::{Result, Timestamp, TxnId, Write};

/// A file journal whose records take `APPEND` of the manual clock's time to become durable:
/// the append is called at once (call order is kept), and its future is first polled (when
/// the file journal writes it) once the clock has moved on that far. Heartbeats are not held.
struct TimedJournal {
    inner: FileJournal,
    clock: Arc<ManualClock>,
}

const APPEND: Duration = Duration::from_millis(1);

impl Journal for TimedJournal {
    fn append(&self, request: AppendRequest) -> BoxFuture<'static, Result<AppendResponse>> {
        let is_commit = matches!(request.entry, Entry::Commit(_));
        let append = self.inner.append(request);
        if !is_commit {
            return append;
        }
        let elapsed = self.clock.sleep(APPEND);
        Box::pin(async move {
            elapsed.await;
            append.await
        })
    }
    fn read(&self, request: journal::ReadRequest) -> BoxFuture<'_, Result<journal::ReadResponse>> {
        self.inner.read(request)
    }
    fn fence(
        &self,
        request: journal::FenceRequest,
    ) -> BoxFuture<'_, Result<journal::FenceResponse>> {
        self.inner.fence(request)
    }
    fn status(
        &self,
        request: journal::StatusRequest,
    ) -> BoxFuture<'_, Result<journal::StatusResponse>> {
        self.inner.status(request)
    }
    fn truncate(
        &self,
        request: journal::TruncateRequest,
    ) -> BoxFuture<'_, Result<journal::TruncateResponse>> {
        self.inner.truncate(request)
    }
}

fn commit(txn: u64, read_ts: Timestamp) -> CommitRequest {
    CommitRequest {
        txn_id: TxnId(txn),
        read_ts,
        writes: vec![Write {
            key: format!("k{txn}").into(),
            value: Some(Bytes::from_static(b"v")),
        }],
        locks: Vec::new(),
        reads: Vec::new(),
        read_ranges: Vec::new(),
    }
}

#[tokio::test]
async fn commit_ts_leads_the_clock_and_heartbeats_do_not_wait_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        Timestamp(1_000_000_000_000),
        Duration::ZERO,
    ));
    let journal = Arc::new(TimedJournal {
        inner: FileJournal::open(dir.path(), JournalOptions::default()).unwrap(),
        clock: clock.clone(),
    });
    let options = AdjudicatorOptions {
        commit_lead_percent: 50,
        ..AdjudicatorOptions::default()
    };
    let adjudicator = Arc::new(
        LocalAdjudicator::open(journal.clone(), clock.clone(), options)
            .await
            .unwrap(),
    );
    let committing = |txn: u64| {
        let adjudicator = adjudicator.clone();
        let read_ts = clock.now().latest;
        tokio::spawn(async move { adjudicator.commit(commit(txn, read_ts)).await })
    };

    // No append measured yet: no lead.
    let first = committing(1);
    tokio::task::yield_now().await;
    let before_first = clock.now().latest;
    clock.advance(APPEND);
    let first_ts = first.await.unwrap().unwrap().commit_ts;
    assert!(first_ts < before_first, "{first_ts} !< {before_first}");

    // One append took 1 ms: the next commit_ts is half of that ahead of the clock.
    let accepted_after = clock.now().latest;
    let second = committing(2);
    tokio::task::yield_now().await;
    let lead = Duration::from_micros(500).as_nanos() as u64;
    let status = adjudicator.status(Default::default()).await.unwrap();
    assert!(
        status.commit_point >= accepted_after.saturating_add_nanos(lead),
        "commit point {} is not 500 us ahead of {accepted_after}",
        status.commit_point
    );

    // While it is in its append, a heartbeat promises now, below it, at once.
    let mut heartbeat = adjudicator.heartbeat(HeartbeatRequest::default());
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let promised = match heartbeat.as_mut().poll(&mut context) {
        std::task::Poll::Ready(response) => response.unwrap().promised,
        std::task::Poll::Pending => panic!("the heartbeat waited for the commit's append"),
    };
    assert!(promised < status.commit_point);
    let watermark = journal.status(Default::default()).await.unwrap().watermark;
    assert!(watermark >= promised, "published: {watermark} < {promised}");
    assert!(!second.is_finished());

    // The append stalls for 10 s: the average jumps, the lead stays at most 1 ms.
    clock.advance(Duration::from_secs(10));
    let second_ts = second.await.unwrap().unwrap().commit_ts;
    assert_eq!(second_ts, status.commit_point);
    assert!(second_ts > promised);
    let accepted_after = clock.now().latest;
    let third = committing(3);
    tokio::task::yield_now().await;
    let status = adjudicator.status(Default::default()).await.unwrap();
    // The manual clock stood still: now, read after the accept, is no earlier than it.
    let ceiling = clock.now().latest.saturating_add_nanos(1_000_000);
    assert!(
        status.commit_point > accepted_after && status.commit_point <= ceiling,
        "commit point {} is more than 1 ms ahead of the clock",
        status.commit_point
    );
    clock.advance(APPEND);
    third.await.unwrap().unwrap();
}
