//! The adjudicator's memory is bounded by age and by size; forgetting raises the memory floor,
//! and writers whose snapshot lies below it are refused rather than checked against nothing.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_adjudicator::{AdjudicatorOptions, LocalAdjudicator};
use cairn_clock::ManualClock;
use cairn_journal::{FileJournal, JournalOptions};
use cairn_types::adjudicator::{Adjudicator, CommitRequest, StatusRequest};
use cairn_types::clock::Clock;
use cairn_types::{Error, Timestamp, TxnId, Write};

fn write(key: &str) -> Write {
    Write {
        key: key.into(),
        value: Some(Bytes::from_static(b"v")),
    }
}

async fn open(
    dir: &std::path::Path,
    clock: Arc<ManualClock>,
    options: AdjudicatorOptions,
) -> LocalAdjudicator {
    let journal = Arc::new(FileJournal::open(dir, JournalOptions::default()).unwrap());
    LocalAdjudicator::open(journal, clock, options)
        .await
        .unwrap()
}

#[tokio::test]
async fn commits_older_than_the_memory_are_forgotten_and_old_snapshots_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        Timestamp(1_000_000_000_000),
        Duration::ZERO,
    ));
    let options = AdjudicatorOptions {
        memory: Duration::from_secs(10),
        ..Default::default()
    };
    let adj = open(dir.path(), clock.clone(), options).await;
    let old_snapshot = clock.now().latest;
    let request = |txn, read_ts, key| CommitRequest {
        txn_id: TxnId(txn),
        read_ts,
        writes: vec![write(key)],
        locks: vec![],
        reads: vec![],
        read_ranges: vec![],
    };
    adj.commit(request(1, old_snapshot, "a")).await.unwrap();
    assert_eq!(
        adj.status(StatusRequest {}).await.unwrap().remembered_keys,
        1
    );
    clock.advance(Duration::from_secs(11));
    // The next commit forgets "a"; a writer of an unrelated key from the old snapshot is refused,
    // because the adjudicator can no longer tell what it would have conflicted with.
    adj.commit(request(2, clock.now().latest, "b"))
        .await
        .unwrap();
    let status = adj.status(StatusRequest {}).await.unwrap();
    assert_eq!(status.remembered_keys, 1);
    assert!(status.memory_floor > old_snapshot);
    let refused = adj.commit(request(3, old_snapshot, "c")).await;
    assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
}

#[tokio::test]
async fn remembered_keys_are_bounded_by_count() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        Timestamp(1_000_000_000_000),
        Duration::ZERO,
    ));
    let options = AdjudicatorOptions {
        max_remembered_keys: 100,
        ..Default::default()
    };
    let adj = open(dir.path(), clock.clone(), options).await;
    let first_snapshot = clock.now().latest;
    for n in 0..1_000 {
        let request = CommitRequest {
            txn_id: TxnId(n),
            read_ts: clock.now().latest,
            writes: vec![write(&format!("k{n}"))],
            locks: vec![],
            reads: vec![],
            read_ranges: vec![],
        };
        adj.commit(request).await.unwrap();
    }
    let status = adj.status(StatusRequest {}).await.unwrap();
    assert!(status.remembered_keys <= 101, "{status:?}");
    let stale = CommitRequest {
        txn_id: TxnId(5_000),
        read_ts: first_snapshot,
        writes: vec![write("k0")],
        locks: vec![],
        reads: vec![],
        read_ranges: vec![],
    };
    assert!(matches!(adj.commit(stale).await, Err(Error::Conflict(_))));
}
