//! Conformance suite for the journal seam ([`cairn_types::journal`]).
//!
//! [`conformance`] runs every check below, each in a fresh temporary directory, through the
//! [`Journal`] trait only. `open` opens a journal on a directory, and is called again on the
//! same directory to check what survives a restart (the previous journal is dropped first).
//!
//! Requirements on the journal under test: it starts empty in an empty directory, and it
//! truncates at a granularity well under 100 KiB (configure small segments), so that the
//! truncation check has something to drop.

use std::fmt::Debug;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use cairn_clock::SystemClock;
use cairn_types::clock::timeout;
use cairn_types::journal::{
    AppendRequest, AppendResponse, Entry, Epoch, FenceRequest, Journal, PositionedRecord,
    ReadRequest, ReadResponse, StatusRequest, StatusResponse, TruncateRequest,
};
use cairn_types::{CommitRecord, Error, Key, Position, Result, Timestamp, TxnId, Write};

/// Runs every check of the suite against journals made by `open`.
pub async fn conformance<J: Journal, F: FnMut(&Path) -> J>(mut open: F) {
    appends_are_durable_and_read_back_in_order(&mut open).await;
    appends_take_effect_in_call_order(&mut open).await;
    out_of_order_commit_ts_is_refused(&mut open).await;
    heartbeats_advance_the_watermark(&mut open).await;
    long_poll_wakes_on_a_later_append(&mut open).await;
    long_poll_wakes_on_a_heartbeat(&mut open).await;
    quiet_heartbeats_make_the_same_promise(&mut open).await;
    fencing_refuses_stale_writers(&mut open).await;
    reopen_keeps_acknowledged_records_and_the_epoch(&mut open).await;
    truncate_moves_the_start_and_older_reads_are_too_old(&mut open).await;
}

/// Appended records are read back whole, in order, with chained positions: each record's
/// `next` is the following record's `position`, the last `next` is the tail, and an append's
/// `end` is its record's `next`. A read that stops early reports a watermark that is true for
/// where it stopped; one that reaches the tail reports at least the last `commit_ts`. Reads
/// beyond the tail are invalid input.
pub async fn appends_are_durable_and_read_back_in_order<J: Journal>(
    open: &mut impl FnMut(&Path) -> J,
) {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path());
    let start = status(&journal).await.start;
    let mut ends = Vec::new();
    for ts in [10, 20, 30] {
        ends.push(append(&journal, 0, ts).await.unwrap().end);
    }
    let status = status(&journal).await;
    assert_eq!(
        status.tail, ends[2],
        "the tail is the end of the last append"
    );
    assert!(status.watermark >= Timestamp(30));

    let all = read(&journal, start, 100).await.unwrap();
    assert_eq!(commit_timestamps(&all.records), [10, 20, 30]);
    assert_eq!(all.records[0].position, start);
    for (i, record) in all.records.iter().enumerate() {
        assert_eq!(
            record.record,
            commit(ts_of(i)),
            "record {i} read back whole"
        );
        assert_eq!(
            record.next, ends[i],
            "record {i} ends where its append said"
        );
        assert!(record.position < record.next);
    }
    assert_eq!(all.next, status.tail);
    assert!(all.watermark >= Timestamp(30));

    let first = read(&journal, start, 1).await.unwrap();
    assert_eq!(commit_timestamps(&first.records), [10]);
    assert_eq!(first.next, ends[0]);
    assert!(
        first.watermark < Timestamp(20),
        "watermark {:?} must be true at next: the record after it has commit_ts 20",
        first.watermark
    );

    let rest = read(&journal, ends[0], 100).await.unwrap();
    assert_eq!(commit_timestamps(&rest.records), [20, 30]);

    let beyond = read(&journal, Position(status.tail.0 + 1), 1).await;
    assert!(matches!(beyond, Err(Error::InvalidInput(_))), "{beyond:?}");
}

fn ts_of(i: usize) -> u64 {
    (i as u64 + 1) * 10
}

/// `append` takes effect when called, not when awaited: two appends awaited in reverse order
/// land in call order.
pub async fn appends_take_effect_in_call_order<J: Journal>(open: &mut impl FnMut(&Path) -> J) {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path());
    let start = status(&journal).await.start;
    let first = journal.append(commit_request(0, 10));
    let second = journal.append(commit_request(0, 20));
    let second = second.await.unwrap();
    let first = first.await.unwrap();
    assert!(first.end < second.end, "{first:?} then {second:?}");
    let all = read(&journal, start, 100).await.unwrap();
    assert_eq!(commit_timestamps(&all.records), [10, 20]);
}

/// A record whose `commit_ts` is not above every earlier record's, or at or below a heartbeat
/// already appended, is refused as invalid input and not stored; so is one called (not yet
/// awaited) after a higher one. Appending above it again works.
pub async fn out_of_order_commit_ts_is_refused<J: Journal>(open: &mut impl FnMut(&Path) -> J) {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path());
    let start = status(&journal).await.start;
    append(&journal, 0, 20).await.unwrap();
    for ts in [20, 10] {
        let refused = append(&journal, 0, ts).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput(_))),
            "ts {ts}: {refused:?}"
        );
    }
    let higher = journal.append(commit_request(0, 40));
    let lower = journal.append(commit_request(0, 30));
    assert!(
        matches!(lower.await, Err(Error::InvalidInput(_))),
        "called after 40"
    );
    higher.await.unwrap();
    heartbeat(&journal, 0, 50).await.unwrap();
    let below_heartbeat = append(&journal, 0, 45).await;
    assert!(
        matches!(below_heartbeat, Err(Error::InvalidInput(_))),
        "{below_heartbeat:?}"
    );
    append(&journal, 0, 60).await.unwrap();
    let all = read(&journal, start, 100).await.unwrap();
    assert_eq!(commit_timestamps(&all.records), [20, 40, 60]);
}

/// A heartbeat stores nothing (the tail does not move) but raises the watermark that status
/// and reads at the tail report; a heartbeat at or below the watermark is harmless.
pub async fn heartbeats_advance_the_watermark<J: Journal>(open: &mut impl FnMut(&Path) -> J) {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path());
    let end = append(&journal, 0, 10).await.unwrap().end;
    let beat = heartbeat(&journal, 0, 50).await.unwrap();
    assert_eq!(beat.end, end, "a heartbeat does not move the tail");
    let status = status(&journal).await;
    assert_eq!(status.tail, end);
    assert!(status.watermark >= Timestamp(50), "{status:?}");
    heartbeat(&journal, 0, 30).await.unwrap();
    let at_tail = read(&journal, end, 10).await.unwrap();
    assert!(at_tail.records.is_empty());
    assert_eq!(at_tail.next, end);
    assert!(at_tail.watermark >= Timestamp(50), "{at_tail:?}");
}

/// A read at the tail with `wait_past` at the watermark waits, and wakes with the record when
/// one is appended. Without `wait_past`, or with one below the watermark, it answers at once.
pub async fn long_poll_wakes_on_a_later_append<J: Journal>(open: &mut impl FnMut(&Path) -> J) {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path());
    let tail = append(&journal, 0, 10).await.unwrap().end;
    let now = read(&journal, tail, 10).await.unwrap();
    assert!(now.records.is_empty());
    let past_below = read_waiting(&journal, tail, Timestamp(5)).await.unwrap();
    assert!(
        past_below.records.is_empty(),
        "the watermark is already past 5"
    );

    let mut poll = journal.read(ReadRequest {
        from: tail,
        max_records: 10,
        wait_past: Some(now.watermark),
    });
    assert_pending(&mut poll).await;
    append(&journal, 0, 60).await.unwrap();
    let woken = within_seconds(poll).await.unwrap();
    assert_eq!(commit_timestamps(&woken.records), [60]);
    assert!(woken.watermark >= Timestamp(60));
}

/// A read waiting at the tail wakes on a heartbeat above `wait_past`, with no records and the
/// new watermark.
pub async fn long_poll_wakes_on_a_heartbeat<J: Journal>(open: &mut impl FnMut(&Path) -> J) {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path());
    let tail = append(&journal, 0, 10).await.unwrap().end;
    let watermark = status(&journal).await.watermark;
    let mut poll = journal.read(ReadRequest {
        from: tail,
        max_records: 10,
        wait_past: Some(watermark),
    });
    assert_pending(&mut poll).await;
    heartbeat(&journal, 0, 70).await.unwrap();
    let woken = within_seconds(poll).await.unwrap();
    assert!(woken.records.is_empty());
    assert_eq!(woken.next, tail);
    assert!(woken.watermark >= Timestamp(70), "{woken:?}");
}

/// A quiet heartbeat is the same promise as a heartbeat (only waking waiting readers is left
/// to its caller): status and reads at the tail report it, a record at or below it is refused.
pub async fn quiet_heartbeats_make_the_same_promise<J: Journal>(open: &mut impl FnMut(&Path) -> J) {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path());
    let tail = append(&journal, 0, 10).await.unwrap().end;
    let quiet = AppendRequest {
        epoch: Epoch(0),
        entry: Entry::QuietHeartbeat(Timestamp(50)),
    };
    assert_eq!(journal.append(quiet).await.unwrap().end, tail);
    assert!(status(&journal).await.watermark >= Timestamp(50));
    let at_tail = read(&journal, tail, 10).await.unwrap();
    assert!(at_tail.records.is_empty());
    assert!(at_tail.watermark >= Timestamp(50), "{at_tail:?}");
    let below = append(&journal, 0, 45).await;
    assert!(matches!(below, Err(Error::InvalidInput(_))), "{below:?}");
    append(&journal, 0, 60).await.unwrap();
}

/// After `fence(e)`, appends (records and heartbeats) with an epoch below `e` are refused as
/// unavailable and not stored, appends with `e` work above the fence's `high_ts`, and fencing
/// again with an epoch at or below the current one is refused. Status reports the epoch.
pub async fn fencing_refuses_stale_writers<J: Journal>(open: &mut impl FnMut(&Path) -> J) {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path());
    let start = status(&journal).await.start;
    append(&journal, 0, 10).await.unwrap();
    heartbeat(&journal, 0, 15).await.unwrap();
    let fenced = journal
        .fence(FenceRequest { epoch: Epoch(1) })
        .await
        .unwrap();
    assert_eq!(fenced.tail, status(&journal).await.tail);
    assert!(fenced.high_ts >= Timestamp(15), "{fenced:?}");
    assert_eq!(status(&journal).await.epoch, Epoch(1));

    let stale = append(&journal, 0, 20).await;
    assert!(matches!(stale, Err(Error::Unavailable(_))), "{stale:?}");
    let stale_beat = heartbeat(&journal, 0, 100).await;
    assert!(
        matches!(stale_beat, Err(Error::Unavailable(_))),
        "{stale_beat:?}"
    );
    append(&journal, 1, fenced.high_ts.0 + 1).await.unwrap();

    for epoch in [1, 0] {
        let refused = journal
            .fence(FenceRequest {
                epoch: Epoch(epoch),
            })
            .await;
        assert!(
            matches!(refused, Err(Error::Unavailable(_))),
            "epoch {epoch}: {refused:?}"
        );
    }
    journal
        .fence(FenceRequest { epoch: Epoch(2) })
        .await
        .unwrap();
    let stale = append(&journal, 1, 1_000).await;
    assert!(matches!(stale, Err(Error::Unavailable(_))), "{stale:?}");
    assert_eq!(status(&journal).await.epoch, Epoch(2));

    let all = read(&journal, start, 100).await.unwrap();
    assert_eq!(commit_timestamps(&all.records), [10, fenced.high_ts.0 + 1]);
}

/// A journal reopened on the same directory has every acknowledged record at the same
/// positions, the same tail and epoch, and still refuses stale epochs and out-of-order
/// timestamps; appending continues after the last record.
pub async fn reopen_keeps_acknowledged_records_and_the_epoch<J: Journal>(
    open: &mut impl FnMut(&Path) -> J,
) {
    let dir = tempfile::tempdir().unwrap();
    let (start, before, tail) = {
        let journal = open(dir.path());
        let start = status(&journal).await.start;
        append(&journal, 0, 10).await.unwrap();
        journal
            .fence(FenceRequest { epoch: Epoch(3) })
            .await
            .unwrap();
        let pending: Vec<_> = (2..=5)
            .map(|i| journal.append(commit_request(3, i * 10)))
            .collect();
        for pending in pending {
            pending.await.unwrap();
        }
        let before = read(&journal, start, 100).await.unwrap();
        (start, before, status(&journal).await.tail)
    };
    let journal = open(dir.path());
    let status = status(&journal).await;
    assert_eq!(status.epoch, Epoch(3));
    assert_eq!(status.tail, tail);
    assert!(status.watermark >= Timestamp(50));
    let after = read(&journal, start, 100).await.unwrap();
    assert_eq!(after.records, before.records);
    assert_eq!(commit_timestamps(&after.records), [10, 20, 30, 40, 50]);

    let stale = append(&journal, 2, 60).await;
    assert!(matches!(stale, Err(Error::Unavailable(_))), "{stale:?}");
    let old_ts = append(&journal, 3, 50).await;
    assert!(matches!(old_ts, Err(Error::InvalidInput(_))), "{old_ts:?}");
    let end = append(&journal, 3, 60).await.unwrap().end;
    let last = read(&journal, tail, 10).await.unwrap();
    assert_eq!(commit_timestamps(&last.records), [60]);
    assert_eq!(last.records[0].position, tail);
    assert_eq!(last.next, end);
}

/// Truncating drops a prefix: the start moves forward (never past the requested position),
/// reads from the new start and from the requested position return the rest in order, reads
/// before the start are too old, and the start survives a reopen.
pub async fn truncate_moves_the_start_and_older_reads_are_too_old<J: Journal>(
    open: &mut impl FnMut(&Path) -> J,
) {
    let dir = tempfile::tempdir().unwrap();
    let (middle, start) = {
        let journal = open(dir.path());
        let old_start = status(&journal).await.start;
        let mut ends = Vec::new();
        for i in 1..=200 {
            ends.push(
                append_record(&journal, 0, big_commit(i * 10))
                    .await
                    .unwrap()
                    .end,
            );
        }
        let middle = ends[99];
        let noop = journal
            .truncate(TruncateRequest { before: old_start })
            .await
            .unwrap();
        assert_eq!(
            noop.start, old_start,
            "truncating before the start drops nothing"
        );

        let truncated = journal
            .truncate(TruncateRequest { before: middle })
            .await
            .unwrap();
        let start = truncated.start;
        assert!(
            start > old_start,
            "200 KiB of records and nothing dropped: {start:?}"
        );
        assert!(start <= middle, "dropped past the requested position");
        assert_eq!(status(&journal).await.start, start);

        let kept = read_to_tail(&journal, start).await;
        assert_eq!(kept.last().unwrap().record.commit_ts, Timestamp(2000));
        assert!(kept.windows(2).all(|w| w[0].next == w[1].position));
        let from_middle = read_to_tail(&journal, middle).await;
        assert_eq!(from_middle.len(), 100);
        assert_eq!(from_middle[0].record.commit_ts, Timestamp(1010));

        let too_old = read(&journal, old_start, 1).await;
        assert!(matches!(too_old, Err(Error::TooOld(_))), "{too_old:?}");
        let too_old = read(&journal, Position(start.0 - 1), 1).await;
        assert!(matches!(too_old, Err(Error::TooOld(_))), "{too_old:?}");
        (middle, start)
    };
    let journal = open(dir.path());
    assert_eq!(
        status(&journal).await.start,
        start,
        "the start survives a reopen"
    );
    let too_old = read(&journal, Position(start.0 - 1), 1).await;
    assert!(matches!(too_old, Err(Error::TooOld(_))), "{too_old:?}");
    assert_eq!(read_to_tail(&journal, middle).await.len(), 100);
    append(&journal, 0, 2010).await.unwrap();
}

// --- helpers ---

/// A record at `ts` with one small write, derived from `ts` so it can be checked on read.
pub fn commit(ts: u64) -> CommitRecord {
    CommitRecord {
        txn_id: TxnId(ts),
        commit_ts: Timestamp(ts),
        writes: vec![Write {
            key: Key::from(format!("key-{ts}").as_str()),
            value: Some(Bytes::from(format!("value-{ts}"))),
        }],
    }
}

/// A record at `ts` carrying about 1 KiB.
fn big_commit(ts: u64) -> CommitRecord {
    CommitRecord {
        txn_id: TxnId(ts),
        commit_ts: Timestamp(ts),
        writes: vec![
            Write {
                key: Key::from(format!("key-{ts}").as_str()),
                value: Some(Bytes::from(vec![(ts % 251) as u8; 1024])),
            },
            Write {
                key: Key::from(format!("key-{ts}-gone").as_str()),
                value: None,
            },
        ],
    }
}

fn commit_request(epoch: u64, ts: u64) -> AppendRequest {
    AppendRequest {
        epoch: Epoch(epoch),
        entry: Entry::Commit(commit(ts)),
    }
}

async fn append<J: Journal>(journal: &J, epoch: u64, ts: u64) -> Result<AppendResponse> {
    journal.append(commit_request(epoch, ts)).await
}

async fn append_record<J: Journal>(
    journal: &J,
    epoch: u64,
    record: CommitRecord,
) -> Result<AppendResponse> {
    let entry = Entry::Commit(record);
    journal
        .append(AppendRequest {
            epoch: Epoch(epoch),
            entry,
        })
        .await
}

async fn heartbeat<J: Journal>(journal: &J, epoch: u64, ts: u64) -> Result<AppendResponse> {
    let entry = Entry::Heartbeat(Timestamp(ts));
    journal
        .append(AppendRequest {
            epoch: Epoch(epoch),
            entry,
        })
        .await
}

async fn status<J: Journal>(journal: &J) -> StatusResponse {
    journal.status(StatusRequest {}).await.unwrap()
}

async fn read<J: Journal>(journal: &J, from: Position, max_records: u32) -> Result<ReadResponse> {
    journal
        .read(ReadRequest {
            from,
            max_records,
            wait_past: None,
        })
        .await
}

async fn read_waiting<J: Journal>(
    journal: &J,
    from: Position,
    past: Timestamp,
) -> Result<ReadResponse> {
    let request = ReadRequest {
        from,
        max_records: 10,
        wait_past: Some(past),
    };
    within_seconds(journal.read(request)).await
}

/// Every record from `from` to the tail, in pages of 7 (so page boundaries get exercised).
async fn read_to_tail<J: Journal>(journal: &J, mut from: Position) -> Vec<PositionedRecord> {
    let tail = status(journal).await.tail;
    let mut records = Vec::new();
    while from < tail {
        let page = read(journal, from, 7).await.unwrap();
        assert!(!page.records.is_empty(), "no progress at {from:?}");
        assert_eq!(page.records[0].position, from);
        from = page.next;
        records.extend(page.records);
    }
    records
}

fn commit_timestamps(records: &[PositionedRecord]) -> Vec<u64> {
    records.iter().map(|r| r.record.commit_ts.0).collect()
}

/// Polls `future` a few times, letting other tasks run, and checks it has not finished.
pub async fn assert_pending<F: Future + Unpin>(future: &mut F)
where
    F::Output: Debug,
{
    for _ in 0..3 {
        tokio::select! {
            biased;
            output = &mut *future => panic!("finished while it should wait: {output:?}"),
            () = tokio::task::yield_now() => {}
        }
    }
}

/// Awaits `future`, failing the check instead of hanging if it takes more than ten seconds.
pub async fn within_seconds<F: Future>(future: F) -> F::Output {
    timeout(&SystemClock::default(), Duration::from_secs(10), future)
        .await
        .expect("did not finish within ten seconds (a long poll that never woke?)")
}
