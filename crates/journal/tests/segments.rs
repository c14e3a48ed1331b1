//! Segment files, reads from disk and from the tail cache, limits, truncation, poisoning, and
//! which heartbeats wake waiting readers.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::fs;

use cairn_journal::JournalOptions;
use cairn_testkit::journal::{assert_pending, within_seconds};
use cairn_types::journal::{
    AppendRequest, Entry, Epoch, FenceRequest, Journal, ReadRequest, TruncateRequest,
};
use cairn_types::{Error, Position, Timestamp};
use common::{append, open, read, read_all, record, segment, segments, status, timestamps};

/// About five 200-byte records per segment, and no tail cache: every read is from the files.
fn small_uncached() -> JournalOptions {
    JournalOptions {
        segment_bytes: 1200,
        tail_cache_records: 0,
        ..JournalOptions::default()
    }
}

#[tokio::test]
async fn records_roll_over_into_segments_named_by_their_start_and_read_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path(), small_uncached());
    let mut ends = Vec::new();
    for ts in 1..=50 {
        ends.push(append(&journal, record(ts, 200)).await.unwrap().end);
    }
    let starts = segments(dir.path());
    assert!(starts.len() >= 8, "{starts:?}");
    assert_eq!(starts[0], 0);
    // Segments are laid end to end, each within the size limit, each starting on a record.
    for pair in starts.windows(2) {
        let len = fs::metadata(segment(dir.path(), pair[0])).unwrap().len();
        assert_eq!(pair[0] + len, pair[1]);
        assert!(len <= 1200);
        assert!(ends.contains(&Position(pair[1])));
    }

    let all = read(&journal, Position(0), 1000).await.unwrap();
    assert_eq!(timestamps(&all), (1..=50).collect::<Vec<_>>());
    assert!(all.windows(2).all(|w| w[0].next == w[1].position));
    assert_eq!(all.iter().map(|r| r.next).collect::<Vec<_>>(), ends);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.record, record(i as u64 + 1, 200));
    }
    drop(journal);

    let journal = open(dir.path(), small_uncached());
    assert_eq!(read_all(&journal).await, all);
    assert_eq!(status(&journal).await.tail, *ends.last().unwrap());
    append(&journal, record(51, 200)).await.unwrap();
    assert_eq!(read_all(&journal).await.len(), 51);
}

#[tokio::test]
async fn reads_from_the_files_match_reads_from_the_tail_cache() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path(), JournalOptions::default());
    for ts in 1..=30 {
        append(&journal, record(ts, 100 + ts as usize))
            .await
            .unwrap();
    }
    let cached = read_all(&journal).await;
    drop(journal);
    let journal = open(dir.path(), small_uncached());
    let from_files = read_all(&journal).await;
    assert_eq!(from_files, cached);
    // Paged reads: each page ends on a boundary the next one starts from.
    let mut from = Position(0);
    let mut paged = Vec::new();
    while from < status(&journal).await.tail {
        let page = read(&journal, from, 4).await.unwrap();
        from = page.last().unwrap().next;
        paged.extend(page);
    }
    assert_eq!(paged, cached);
}

#[tokio::test]
async fn a_position_inside_a_record_is_invalid_input() {
    for options in [JournalOptions::default(), small_uncached()] {
        let dir = tempfile::tempdir().unwrap();
        let journal = open(dir.path(), options);
        for ts in 1..=3 {
            append(&journal, record(ts, 50)).await.unwrap();
        }
        let all = read_all(&journal).await;
        for inside in [1, 5, 11, 12, 30] {
            let from = Position(all[1].position.0 + inside);
            let err = read(&journal, from, 1).await.unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{from:?}: {err:?}");
        }
    }
}

#[tokio::test]
async fn records_over_the_size_limit_are_refused_and_the_journal_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        max_record_bytes: 500,
        ..JournalOptions::default()
    };
    let journal = open(dir.path(), options);
    let err = append(&journal, record(10, 1000)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    append(&journal, record(10, 100)).await.unwrap();
    assert_eq!(timestamps(&read_all(&journal).await), [10]);
}

#[tokio::test]
async fn a_record_larger_than_a_segment_gets_a_segment_alone() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path(), small_uncached());
    append(&journal, record(1, 100)).await.unwrap();
    let big = append(&journal, record(2, 5000)).await.unwrap().end;
    append(&journal, record(3, 100)).await.unwrap();
    assert_eq!(timestamps(&read_all(&journal).await), [1, 2, 3]);
    let starts = segments(dir.path());
    assert_eq!(starts.len(), 3, "{starts:?}");
    assert_eq!(starts[2], big.0);
}

#[tokio::test]
async fn truncate_deletes_whole_segments_but_never_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path(), small_uncached());
    let mut ends = Vec::new();
    for ts in 1..=30 {
        ends.push(append(&journal, record(ts, 200)).await.unwrap().end);
    }
    let starts = segments(dir.path());

    // Inside the third segment: the first two go, the third stays.
    let before = Position(starts[2] + 1);
    let start = journal
        .truncate(TruncateRequest { before })
        .await
        .unwrap()
        .start;
    assert_eq!(start, Position(starts[2]));
    assert_eq!(segments(dir.path()), starts[2..]);
    let err = read(&journal, Position(0), 1).await.unwrap_err();
    assert!(matches!(err, Error::TooOld(_)), "{err:?}");

    // Past the tail: everything but the active segment goes.
    let tail = status(&journal).await.tail;
    let before = Position(tail.0 + 1_000_000);
    let start = journal
        .truncate(TruncateRequest { before })
        .await
        .unwrap()
        .start;
    let active = *starts.last().unwrap();
    assert_eq!(start, Position(active));
    assert_eq!(segments(dir.path()), [active]);
    let kept = read(&journal, start, 100).await.unwrap();
    assert_eq!(kept.last().unwrap().next, tail);
    append(&journal, record(31, 200)).await.unwrap();
    drop(journal);

    let journal = open(dir.path(), small_uncached());
    assert_eq!(status(&journal).await.start, Position(active));
    assert_eq!(
        read_all(&journal).await.last().unwrap().record.commit_ts,
        Timestamp(31)
    );
}

#[tokio::test]
async fn a_failed_write_poisons_the_journal_until_it_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    // Every record rolls to a new segment; block the second one's file name with a directory
    // so that creating it fails.
    let options = JournalOptions {
        segment_bytes: 1,
        ..JournalOptions::default()
    };
    let journal = open(dir.path(), options.clone());
    let end = append(&journal, record(10, 10)).await.unwrap().end;
    let blocker = segment(dir.path(), end.0);
    fs::create_dir(&blocker).unwrap();

    let err = append(&journal, record(20, 10)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Internal(m) if m.contains("unknown")),
        "{err:?}"
    );
    let err = append(&journal, record(30, 10)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains("poisoned")),
        "{err:?}"
    );
    let err = journal
        .fence(FenceRequest { epoch: Epoch(1) })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    // What was durable before stays readable; a long poll does not hang.
    assert_eq!(timestamps(&read_all(&journal).await), [10]);
    let request = ReadRequest {
        from: end,
        max_records: 1,
        wait_past: Some(Timestamp(10)),
    };
    let err = journal.read(request).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    drop(journal);

    fs::remove_dir(&blocker).unwrap();
    let journal = open(dir.path(), options);
    assert_eq!(timestamps(&read_all(&journal).await), [10]);
    let heartbeat = AppendRequest {
        epoch: Epoch(0),
        entry: Entry::Heartbeat(Timestamp(15)),
    };
    journal.append(heartbeat).await.unwrap();
    append(&journal, record(20, 10)).await.unwrap();
    assert_eq!(timestamps(&read_all(&journal).await), [10, 20]);
}

/// A heartbeat published at once (nothing in flight) wakes a reader waiting at the tail; a
/// quiet one does not (not even one that starts waiting after it), but the reader sees it
/// when `wake_readers` or the next heartbeat wakes it.
#[tokio::test]
async fn a_quiet_heartbeat_wakes_no_reader_until_wake_readers() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(dir.path(), JournalOptions::default());
    let tail = append(&journal, record(10, 10)).await.unwrap().end;
    let beat = |entry| {
        journal.append(AppendRequest {
            epoch: Epoch(0),
            entry,
        })
    };
    let wait_past = |past| ReadRequest {
        from: tail,
        max_records: 10,
        wait_past: Some(Timestamp(past)),
    };

    let mut waiting = journal.read(wait_past(10));
    assert_pending(&mut waiting).await;
    beat(Entry::Heartbeat(Timestamp(20))).await.unwrap();
    let woken = within_seconds(waiting).await.unwrap();
    assert_eq!(woken.watermark, Timestamp(20));

    let mut waiting = journal.read(wait_past(20));
    assert_pending(&mut waiting).await;
    beat(Entry::QuietHeartbeat(Timestamp(30))).await.unwrap();
    assert_pending(&mut waiting).await;
    journal.wake_readers();
    let woken = within_seconds(waiting).await.unwrap();
    assert!(woken.records.is_empty());
    assert_eq!(woken.watermark, Timestamp(30));

    // A read issued after a quiet heartbeat waits too: a follower that woke for something
    // else does not find news at every read while readers publish quiet heartbeats.
    beat(Entry::QuietHeartbeat(Timestamp(40))).await.unwrap();
    let mut waiting = journal.read(wait_past(30));
    assert_pending(&mut waiting).await;
    // A heartbeat wakes it even when it promises less than the quiet one did.
    beat(Entry::Heartbeat(Timestamp(35))).await.unwrap();
    let woken = within_seconds(waiting).await.unwrap();
    assert_eq!(woken.watermark, Timestamp(40));
    let without_waiting = journal.read(ReadRequest {
        wait_past: None,
        ..wait_past(0)
    });
    assert_eq!(without_waiting.await.unwrap().watermark, Timestamp(40));
}
