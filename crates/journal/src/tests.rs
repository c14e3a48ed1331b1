//! Tests that need to hold the writer thread still: they hold a read lock on the tail cache,
//! whose write lock the writer takes after a batch's fsync and before publishing it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use cairn_types::journal::{
    AppendRequest, Entry, Epoch, FenceRequest, Journal, ReadRequest, StatusRequest,
};
use cairn_types::{CommitRecord, Error, Position, Timestamp, TxnId};

use crate::{FileJournal, JournalOptions};

fn commit(ts: u64) -> AppendRequest {
    AppendRequest {
        epoch: Epoch(0),
        entry: Entry::Commit(CommitRecord {
            txn_id: TxnId(ts),
            commit_ts: Timestamp(ts),
            writes: Vec::new(),
        }),
    }
}

/// Options where every fsync is a batch's: no zero-filling ahead, which syncs too.
fn counted() -> JournalOptions {
    JournalOptions {
        preallocate_bytes: 0,
        ..JournalOptions::default()
    }
}

/// Options where only the writer thread writes (these tests hold it still).
fn thread_writes() -> JournalOptions {
    JournalOptions {
        caller_writes_when_idle: false,
        ..counted()
    }
}

#[tokio::test]
async fn concurrent_appends_share_fsyncs() {
    let journal = appends_share_fsyncs(thread_writes()).await;
    assert_eq!(journal.stats().caller_batches, 0);
}

/// The first append finds the journal idle and writes its batch itself (blocking its worker
/// thread while the cache lock is held); the other 63 queue behind it for the writer thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_queued_behind_a_caller_writing_share_fsyncs() {
    let journal = appends_share_fsyncs(counted()).await;
    let led = journal.stats().caller_batches;
    assert_eq!(led, 1, "the first append wrote its own batch");
    // After the writer thread's batch of 63, the next lone append still goes to the thread
    // (under load a caller blocked in fsync would take a worker from the others); after a
    // lone one, the caller writes again.
    for (ts, expected) in [(65, led), (66, led + 1)] {
        spin_until("the journal is idle", || journal.shared.requests.idle());
        journal.append(commit(ts)).await.unwrap();
        assert_eq!(journal.stats().caller_batches, expected, "append {ts}");
    }
}

// Holding the cache lock across awaits is the point: it keeps the writer from publishing its
// first batch while the other appends queue up behind it.
#[allow(clippy::await_holding_lock)]
async fn appends_share_fsyncs(options: JournalOptions) -> Arc<FileJournal> {
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(FileJournal::open(dir.path(), options).unwrap());
    let opened = journal.stats();
    // The adjudicator's pattern: choose the timestamp and call append under a lock, await
    // durability outside it. (A blocking lock: a tokio one would hand itself to a task in
    // the leading worker's next-task slot, which the other worker cannot take.)
    let next_ts = Arc::new(std::sync::Mutex::new(0u64));
    let called = Arc::new(AtomicUsize::new(0));

    let held = journal.shared.ring.read().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (journal, next_ts, called) = (journal.clone(), next_ts.clone(), called.clone());
        tasks.push(tokio::spawn(async move {
            let durable = {
                let mut ts = next_ts.lock().unwrap();
                *ts += 1;
                journal.append(commit(*ts))
            };
            called.fetch_add(1, Ordering::SeqCst);
            durable.await
        }));
    }
    while called.load(Ordering::SeqCst) < 64 {
        tokio::task::yield_now().await;
    }
    drop(held);
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let stats = journal.stats();
    assert_eq!(stats.appends, 64);
    let fsyncs = stats.fsyncs - opened.fsyncs;
    assert!(
        fsyncs <= 2,
        "64 appends took {fsyncs} fsyncs: they were not batched"
    );
    let order = commit_order(&journal).await;
    assert_eq!(order, (1..=64).collect::<Vec<_>>());
    journal
}

#[tokio::test]
#[allow(clippy::await_holding_lock)] // see concurrent_appends_share_fsyncs
async fn dropping_the_journal_fails_queued_appends_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), thread_writes()).unwrap();
    let shared = journal.shared.clone();

    let held = shared.ring.read().unwrap();
    let written = journal.append(commit(1));
    // Once the first batch is written the writer is stuck publishing it.
    while journal.stats().bytes == 0 {
        std::thread::yield_now();
    }
    let queued = journal.append(commit(2));
    let closer = std::thread::spawn(move || drop(journal));
    while !shared.closing.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    drop(held);
    closer.join().unwrap();

    written.await.unwrap();
    let refused = queued.await;
    assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");

    drop(shared);
    let reopened = FileJournal::open(dir.path(), JournalOptions::default()).unwrap();
    let order = commit_order(&reopened).await;
    assert_eq!(order, [1], "the refused append was not written");
}

/// Yields the thread until `done`; fails the test, instead of hanging it, if that takes
/// millions of tries (seconds).
fn spin_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..20_000_000 {
        if done() {
            return;
        }
        std::thread::yield_now();
    }
    panic!("gave up waiting until {what}");
}

/// The `commit_ts` of every record in the journal, in journal order.
async fn commit_order(journal: &FileJournal) -> Vec<u64> {
    let all = journal
        .read(ReadRequest {
            from: Position(0),
            max_records: 1000,
            wait_past: None,
        })
        .await
        .unwrap();
    all.records.iter().map(|r| r.record.commit_ts.0).collect()
}

/// Polls `future` once, with a waker that does nothing.
fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(future).poll(&mut context)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_to_an_idle_journal_is_written_by_its_first_poll() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), counted()).unwrap();
    let opened = journal.stats();
    for ts in 1..=3 {
        let mut append = journal.append(commit(ts));
        // Written, fsynced and answered by this poll, in this thread: no hand-off to the
        // writer thread and back.
        let polled = poll_once(&mut append);
        assert!(matches!(polled, Poll::Ready(Ok(_))), "{polled:?}");
        let stats = journal.stats();
        assert_eq!(stats.appends - opened.appends, ts);
        assert_eq!(stats.caller_batches, ts);
    }
    assert_eq!(journal.stats().fsyncs - opened.fsyncs, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_dropped_before_it_was_polled_is_written_by_the_writer_thread() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), JournalOptions::default()).unwrap();
    // Told to write its batch itself, then dropped: the duty passes to the writer thread.
    drop(journal.append(commit(1)));
    spin_until("the writer thread wrote the dropped append", || {
        journal.stats().appends == 1 && journal.shared.requests.idle()
    });
    assert_eq!(journal.stats().caller_batches, 0);
    // Queued behind nothing again: the next append writes itself, after the first.
    journal.append(commit(2)).await.unwrap();
    assert_eq!(journal.stats().caller_batches, 1);
    let order = commit_order(&journal).await;
    assert_eq!(order, [1, 2]);
}

/// A zero fill that fails (a full disk) poisons the journal as a failed append does: the
/// batch's appends were durable before it and are answered, but a fence queued in the same
/// batch fails instead of persisting its epoch, and so does everything after it.
#[tokio::test]
async fn a_failed_zero_fill_fails_the_fence_in_its_batch_and_poisons_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        preallocate_bytes: 64,
        ..thread_writes()
    };
    let journal = FileJournal::open(dir.path(), options).unwrap();
    let (first, second, third, fence) = {
        let mut held = journal.writer.lock().unwrap();
        // The first batch's fill (64 bytes past its 17-byte record) succeeds; the second
        // batch's two records use more than half of those zeros, so it fills again, and that
        // fill fails.
        held.zero_fills_before_failure = Some(1);
        // Taken alone by the writer thread, which then waits for the lock held here...
        let first = journal.append(commit(1));
        spin_until("the writer thread took the first batch", || {
            journal.shared.requests.taken()
        });
        // ...while these three queue up as the second batch.
        let second = journal.append(commit(2));
        let third = journal.append(commit(3));
        (
            first,
            second,
            third,
            journal.fence(FenceRequest { epoch: Epoch(1) }),
        )
    };

    first.await.unwrap();
    second.await.unwrap();
    third.await.unwrap();
    let refused = fence.await;
    assert!(
        matches!(&refused, Err(Error::Internal(m)) if m.contains("zero-filling")),
        "{refused:?}"
    );
    // The fence raised the admission epoch when it was called.
    let later = AppendRequest {
        epoch: Epoch(1),
        ..commit(4)
    };
    let refused = journal.append(later).await;
    assert!(
        matches!(&refused, Err(Error::Unavailable(m)) if m.contains("poisoned")),
        "{refused:?}"
    );
    drop(journal);
    let reopened = FileJournal::open(dir.path(), JournalOptions::default()).unwrap();
    assert_eq!(commit_order(&reopened).await, [1, 2, 3]);
    assert_eq!(
        reopened.status(StatusRequest {}).await.unwrap().epoch,
        Epoch(0)
    );
}

#[tokio::test]
async fn on_a_single_threaded_runtime_the_writer_thread_writes() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), JournalOptions::default()).unwrap();
    for ts in 1..=3 {
        journal.append(commit(ts)).await.unwrap();
    }
    // Not one written by its caller, which would have blocked the only thread for an fsync.
    assert_eq!(journal.stats().caller_batches, 0);
}

/// A heartbeat below every record still on its way (here: held before publication) is
/// published at once; one reaching such a record is published at once up to just below it,
/// and in full once the record is.
#[tokio::test]
#[allow(clippy::await_holding_lock)] // holding the cache lock keeps the record unpublished
async fn a_heartbeat_below_the_records_on_their_way_is_published_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(FileJournal::open(dir.path(), thread_writes()).unwrap());
    let watermark = |journal: Arc<FileJournal>| async move {
        journal.status(StatusRequest {}).await.unwrap().watermark.0
    };
    let held = journal.shared.ring.read().unwrap();
    let record = tokio::spawn(journal.append(commit(10)));
    spin_until("the record is written", || journal.stats().appends == 1);

    let below = AppendRequest {
        epoch: Epoch(0),
        entry: Entry::Heartbeat(Timestamp(5)),
    };
    let published = poll_once(&mut journal.append(below));
    assert!(matches!(published, Poll::Ready(Ok(_))), "{published:?}");
    assert_eq!(
        watermark(journal.clone()).await,
        5,
        "published past nothing"
    );
    assert!(!record.is_finished(), "the record is still unpublished");

    let across = AppendRequest {
        epoch: Epoch(0),
        entry: Entry::Heartbeat(Timestamp(20)),
    };
    let mut across = journal.append(across);
    assert!(
        poll_once(&mut across).is_pending(),
        "ordered after the record"
    );
    assert_eq!(
        watermark(journal.clone()).await,
        9,
        "up to just below the record"
    );

    drop(held);
    record.await.unwrap().unwrap();
    across.await.unwrap();
    assert_eq!(watermark(journal.clone()).await, 20);
    let refused = journal.append(commit(15)).await;
    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "{refused:?}"
    );
}
