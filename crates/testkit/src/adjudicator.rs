//! Conformance suite for the adjudicator seam (`cairn_types::adjudicator`).
//!
//! [`conformance`] runs every check against adjudicators built by the caller's `open`, each
//! on a fresh journal from `open_journal`. The checks go through the trait only, plus the
//! journal the adjudicator writes to, since what it appends is part of its contract.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_clock::ManualClock;
use cairn_types::adjudicator::{Adjudicator, CommitRequest, HeartbeatRequest, StatusRequest};
use cairn_types::clock::Clock;
use cairn_types::journal::{Journal, ReadRequest};
use cairn_types::{Error, Key, Timestamp, TxnId, Write};

/// Runs every check. `open_journal` opens a journal on a directory (reopening must see what
/// was appended before); `open` builds the adjudicator under test over a journal.
pub async fn conformance<A, J, O>(mut open_journal: J, mut open: O)
where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    first_committer_wins_and_names_the_key(&mut open_journal, &mut open).await;
    commit_timestamps_exceed_read_ts_and_increase(&mut open_journal, &mut open).await;
    a_later_snapshot_may_write_the_key_again(&mut open_journal, &mut open).await;
    locks_conflict_like_writes_in_both_directions(&mut open_journal, &mut open).await;
    commits_reach_the_journal_with_their_writes_only(&mut open_journal, &mut open).await;
    heartbeats_promise_and_later_commits_stay_above(&mut open_journal, &mut open).await;
    empty_commits_are_refused(&mut open_journal, &mut open).await;
    reads_are_validated_but_not_held(&mut open_journal, &mut open).await;
    scanned_ranges_conflict_with_later_writes_inside_them(&mut open_journal, &mut open).await;
    a_restarted_adjudicator_refuses_what_it_cannot_check(&mut open_journal, &mut open).await;
    a_newer_adjudicator_fences_the_older(&mut open_journal, &mut open).await;
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Timestamp(1_700_000_000_000_000_000),
        Duration::ZERO,
    ))
}

fn put(key: &str, value: &str) -> Write {
    Write {
        key: key.into(),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
    }
}

fn request(txn: u64, read_ts: Timestamp, writes: Vec<Write>, locks: Vec<Key>) -> CommitRequest {
    CommitRequest {
        txn_id: TxnId(txn),
        read_ts,
        writes,
        locks,
        reads: vec![],
        read_ranges: vec![],
    }
}

fn conflict_key(result: cairn_types::Result<impl std::fmt::Debug>) -> Key {
    match result {
        Err(Error::Conflict(conflict)) => conflict.key,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// Two transactions from the same snapshot write one key: the first commits, the second
/// gets a conflict that names the key.
async fn first_committer_wins_and_names_the_key<A, J, O>(open_journal: &mut J, open: &mut O)
where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let adj = open(open_journal(dir.path()), clock.clone()).await;
    let read_ts = clock.now().latest;
    adj.commit(request(
        1,
        read_ts,
        vec![put("x", "1"), put("a", "1")],
        vec![],
    ))
    .await
    .unwrap();
    let second = adj
        .commit(request(
            2,
            read_ts,
            vec![put("b", "2"), put("x", "2")],
            vec![],
        ))
        .await;
    assert_eq!(conflict_key(second), Key::from("x"));
}

/// Disjoint write sets both commit, above their snapshots and in increasing order.
async fn commit_timestamps_exceed_read_ts_and_increase<A, J, O>(open_journal: &mut J, open: &mut O)
where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let adj = open(open_journal(dir.path()), clock.clone()).await;
    let read_ts = clock.now().latest;
    let first = adj
        .commit(request(1, read_ts, vec![put("a", "1")], vec![]))
        .await
        .unwrap();
    let second = adj
        .commit(request(2, read_ts, vec![put("b", "1")], vec![]))
        .await
        .unwrap();
    assert!(first.commit_ts > read_ts);
    assert!(second.commit_ts > first.commit_ts);
    // A snapshot far in the future (a client with a fast clock) still gets a later commit.
    let future = Timestamp(clock.now().latest.0 + 1_000_000_000);
    let third = adj
        .commit(request(3, future, vec![put("c", "1")], vec![]))
        .await
        .unwrap();
    assert!(third.commit_ts > future);
}

/// A transaction whose snapshot includes the last commit of a key may write it.
async fn a_later_snapshot_may_write_the_key_again<A, J, O>(open_journal: &mut J, open: &mut O)
where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let adj = open(open_journal(dir.path()), clock.clone()).await;
    let first = adj
        .commit(request(1, clock.now().latest, vec![put("k", "1")], vec![]))
        .await
        .unwrap();
    let at_commit = request(2, first.commit_ts, vec![put("k", "2")], vec![]);
    adj.commit(at_commit).await.unwrap();
    let stale = request(3, first.commit_ts, vec![put("k", "3")], vec![]);
    assert_eq!(conflict_key(adj.commit(stale).await), Key::from("k"));
}

/// A lock conflicts with a concurrent write of the key, and a later writer conflicts with a
/// committed lock, but the lock is not a write.
async fn locks_conflict_like_writes_in_both_directions<A, J, O>(open_journal: &mut J, open: &mut O)
where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let adj = open(open_journal(dir.path()), clock.clone()).await;
    let read_ts = clock.now().latest;
    adj.commit(request(1, read_ts, vec![put("x", "1")], vec![]))
        .await
        .unwrap();
    let locker = request(2, read_ts, vec![put("y", "1")], vec!["x".into()]);
    assert_eq!(conflict_key(adj.commit(locker).await), Key::from("x"));

    let read_ts = clock.now().latest;
    adj.commit(request(3, read_ts, vec![], vec!["lonely".into()]))
        .await
        .unwrap();
    let writer = request(4, read_ts, vec![put("lonely", "1")], vec![]);
    assert_eq!(conflict_key(adj.commit(writer).await), Key::from("lonely"));
}

/// What the adjudicator appends: the whole transaction at its `commit_ts`, writes only.
async fn commits_reach_the_journal_with_their_writes_only<A, J, O>(
    open_journal: &mut J,
    open: &mut O,
) where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let journal = open_journal(dir.path());
    let adj = open(journal.clone(), clock.clone()).await;
    let writes = vec![
        put("a", "1"),
        Write {
            key: "b".into(),
            value: None,
        },
    ];
    let done = adj
        .commit(request(
            7,
            clock.now().latest,
            writes.clone(),
            vec!["c".into()],
        ))
        .await
        .unwrap();
    let read = journal
        .read(ReadRequest {
            from: cairn_types::Position(0),
            max_records: 10,
            wait_past: None,
        })
        .await
        .unwrap();
    let last = read.records.last().expect("the commit is in the journal");
    assert_eq!(last.record.commit_ts, done.commit_ts);
    assert_eq!(last.record.txn_id, TxnId(7));
    assert_eq!(last.record.writes, writes);
    assert!(read.watermark >= done.commit_ts);
}

/// A heartbeat promises a timestamp at or above every commit; the journal's readers see it;
/// every later commit is above it.
async fn heartbeats_promise_and_later_commits_stay_above<A, J, O>(
    open_journal: &mut J,
    open: &mut O,
) where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let journal = open_journal(dir.path());
    let adj = open(journal.clone(), clock.clone()).await;
    let read_ts = clock.now().latest;
    let done = adj
        .commit(request(1, read_ts, vec![put("a", "1")], vec![]))
        .await
        .unwrap();
    let before = clock.now().latest;
    let promised = adj
        .heartbeat(HeartbeatRequest::default())
        .await
        .unwrap()
        .promised;
    assert!(promised > before);
    let status = journal.status(Default::default()).await.unwrap();
    assert!(status.watermark >= promised && status.watermark >= done.commit_ts);
    // A transaction whose snapshot predates the promise still commits above it.
    let later = adj
        .commit(request(2, read_ts, vec![put("b", "1")], vec![]))
        .await
        .unwrap();
    assert!(later.commit_ts > promised);
    let adj_status = adj.status(StatusRequest {}).await.unwrap();
    assert!(adj_status.commit_point >= later.commit_ts);
}

/// A commit with nothing in its conflict set is malformed.
async fn empty_commits_are_refused<A, J, O>(open_journal: &mut J, open: &mut O)
where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let adj = open(open_journal(dir.path()), clock.clone()).await;
    let result = adj
        .commit(request(1, clock.now().latest, vec![], vec![]))
        .await;
    assert!(matches!(result, Err(Error::InvalidInput(_))), "{result:?}");
}

/// After a restart (new adjudicator, same journal directory) a transaction whose snapshot
/// predates commits made before the restart cannot commit, whatever it writes, and new commits
/// are above everything before.
async fn a_restarted_adjudicator_refuses_what_it_cannot_check<A, J, O>(
    open_journal: &mut J,
    open: &mut O,
) where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let old_snapshot = clock.now().latest;
    let before_restart = {
        let adj = open(open_journal(dir.path()), clock.clone()).await;
        adj.commit(request(1, old_snapshot, vec![put("k", "1")], vec![]))
            .await
            .unwrap()
            .commit_ts
    };
    // A fresh clock, even one running behind, must not lead to commits below the old ones.
    let behind = Arc::new(ManualClock::new(Timestamp(1_000), Duration::ZERO));
    let adj = open(open_journal(dir.path()), behind.clone()).await;
    let stale = adj
        .commit(request(2, old_snapshot, vec![put("k", "2")], vec![]))
        .await;
    assert_eq!(conflict_key(stale), Key::from("k"));
    let fresh = adj
        .commit(request(
            3,
            behind.now().latest,
            vec![put("other", "1")],
            vec![],
        ))
        .await
        .unwrap();
    assert!(fresh.commit_ts > before_restart);
}

/// Opening a second adjudicator on the same journal fences the first: its commits fail and
/// nothing of them reaches the journal.
async fn a_newer_adjudicator_fences_the_older<A, J, O>(open_journal: &mut J, open: &mut O)
where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let journal = open_journal(dir.path());
    let old = open(journal.clone(), clock.clone()).await;
    let new = open(journal.clone(), clock.clone()).await;
    let refused = old
        .commit(request(1, clock.now().latest, vec![put("z", "1")], vec![]))
        .await;
    assert!(
        refused.is_err(),
        "a fenced adjudicator must not commit: {refused:?}"
    );
    new.commit(request(2, clock.now().latest, vec![put("z", "2")], vec![]))
        .await
        .unwrap();
    let read = journal
        .read(ReadRequest {
            from: cairn_types::Position(0),
            max_records: 10,
            wait_past: None,
        })
        .await
        .unwrap();
    assert_eq!(read.records.len(), 1);
    assert_eq!(read.records[0].record.txn_id, TxnId(2));
}

/// A key in `reads` conflicts with a later commit of it, but two transactions reading the
/// same key do not conflict with each other.
async fn reads_are_validated_but_not_held<A, J, O>(open_journal: &mut J, open: &mut O)
where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let adj = open(open_journal(dir.path()), clock.clone()).await;
    let read_ts = clock.now().latest;
    let reader = |txn, key: &str| CommitRequest {
        txn_id: TxnId(txn),
        read_ts,
        writes: vec![put(&format!("row{txn}"), "1")],
        locks: vec![],
        reads: vec![Key::from(key)],
        read_ranges: vec![],
    };
    adj.commit(reader(1, "schema")).await.unwrap();
    adj.commit(reader(2, "schema")).await.unwrap();
    adj.commit(request(3, read_ts, vec![put("schema", "v2")], vec![]))
        .await
        .unwrap();
    assert_eq!(
        conflict_key(adj.commit(reader(4, "schema")).await),
        Key::from("schema")
    );
}

/// A scanned range conflicts with any later commit of a key inside it, also one that did not
/// exist when scanned (a phantom), and not with commits outside it or before the snapshot.
async fn scanned_ranges_conflict_with_later_writes_inside_them<A, J, O>(
    open_journal: &mut J,
    open: &mut O,
) where
    A: Adjudicator,
    J: FnMut(&Path) -> Arc<dyn Journal>,
    O: AsyncFnMut(Arc<dyn Journal>, Arc<dyn Clock>) -> A,
{
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let adj = open(open_journal(dir.path()), clock.clone()).await;
    adj.commit(request(
        1,
        clock.now().latest,
        vec![put("m/before", "1")],
        vec![],
    ))
    .await
    .unwrap();
    let read_ts = clock.now().latest;
    let scanner = |txn, range: cairn_types::KeyRange| CommitRequest {
        txn_id: TxnId(txn),
        read_ts,
        writes: vec![put(&format!("elsewhere/{txn}"), "1")],
        locks: vec![],
        reads: vec![],
        read_ranges: vec![range],
    };
    // Only a commit before the snapshot touched the range: no conflict.
    adj.commit(scanner(2, cairn_types::KeyRange::prefix("m/")))
        .await
        .unwrap();
    // A new key appears inside the range after the snapshot.
    adj.commit(request(3, read_ts, vec![put("m/phantom", "1")], vec![]))
        .await
        .unwrap();
    let refused = adj
        .commit(scanner(4, cairn_types::KeyRange::prefix("m/")))
        .await;
    assert_eq!(conflict_key(refused), Key::from("m/phantom"));
    // A range that does not contain it is fine.
    adj.commit(scanner(5, cairn_types::KeyRange::between("n", "z")))
        .await
        .unwrap();
}
