//! Conformance suite for the storage seam ([`cairn_types::storage`]).
//!
//! [`conformance`] runs every check below against one implementation, each on a fresh
//! directory with its own [`ManualClock`]:
//!
//! ```ignore
//! cairn_testkit::storage::conformance(|dir, clock| open_my_storage(dir, clock)).await;
//! ```
//!
//! The factory opens the implementation on `dir`, reading time from `clock`, with a read
//! timeout of exactly [`READ_WAIT_TIMEOUT`]. It is called again on the same directory to
//! check what survives a restart (after the previous instance was dropped). Checks go through
//! the [`Storage`] trait only. Timestamps in the data are small numbers chosen by each check;
//! the clock only drives the read timeout.
//!
//! Each check is public too, so an implementation can run one alone while debugging.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_clock::{ManualClock, SystemClock};
use cairn_types::storage::{
    ApplyEvent, ApplyRequest, CheckpointRequest, GcRequest, GetRequest, ScanRequest, ScanResponse,
    StatusRequest, StatusResponse, Storage,
};
use cairn_types::{
    CommitRecord, Error, JournalId, Key, KeyRange, Position, Result, Timestamp, TxnId, Write,
};
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// The read timeout the factory must give the implementation.
pub const READ_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs every check. See the module documentation for what `open` must do.
pub async fn conformance<S, F>(mut open: F)
where
    S: Storage,
    F: FnMut(&Path, Arc<ManualClock>) -> S,
{
    macro_rules! run {
        ($($check:ident),* $(,)?) => {$(
            eprintln!("storage conformance: {}", stringify!($check));
            $check(&mut open).await;
        )*};
    }
    run!(
        versions_are_visible_exactly_from_their_commit_ts,
        the_newest_version_at_or_before_the_snapshot_wins,
        a_point_read_reports_its_keys_newest_version_even_after_the_snapshot,
        tombstones_hide_keys_from_get_and_scan,
        scan_returns_live_keys_in_order_with_limit_and_resume,
        keys_sharing_prefixes_or_holding_zero_and_ff_bytes_never_mix_versions,
        reads_wait_until_a_heartbeat_covers_their_timestamp,
        reads_fail_unavailable_once_the_wait_passes_the_timeout,
        replaying_applied_records_changes_nothing,
        reopening_resumes_from_the_applied_position,
        gc_drops_only_what_no_read_at_or_after_the_horizon_sees,
    );
}

/// A version is invisible to reads below its `commit_ts` and visible at and after it.
pub async fn versions_are_visible_exactly_from_their_commit_ts<S: Storage>(
    open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S,
) {
    let f = Fixture::new();
    let s = f.open(open);
    apply(
        &s,
        vec![record(0, 1, 100, vec![put("a", "1")]), heartbeat(1_000)],
    )
    .await;
    assert_eq!(
        get(&s, "a", 99).await,
        None,
        "a read just before commit_ts sees nothing"
    );
    assert_eq!(
        get(&s, "a", 100).await.unwrap(),
        "1",
        "a read at commit_ts sees the version"
    );
    assert_eq!(get(&s, "a", 1_000).await.unwrap(), "1");
    assert_eq!(scan(&s, KeyRange::all(), 99, 10).await.rows, vec![]);
    assert_eq!(
        scan(&s, KeyRange::all(), 100, 10).await.rows,
        vec![row("a", "1")]
    );
}

/// Of several versions, a read sees the newest at or before its timestamp, and scans agree
/// with gets even across many versions of one key.
pub async fn the_newest_version_at_or_before_the_snapshot_wins<S: Storage>(
    open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S,
) {
    let f = Fixture::new();
    let s = f.open(open);
    let mut events = vec![record(0, 1, 5, vec![put("j", "j5"), put("l", "l5")])];
    for (i, ts) in (10..=400).step_by(10).enumerate() {
        let position = 2 + i as u64;
        events.push(record(0, position, ts, vec![put("k", &format!("k{ts}"))]));
    }
    events.push(heartbeat(1_000));
    apply(&s, events).await;

    assert_eq!(get(&s, "k", 9).await, None);
    for ts in (10..=410).step_by(5) {
        let expected = format!("k{}", ts.min(400) / 10 * 10);
        assert_eq!(get(&s, "k", ts).await.unwrap(), expected, "get k at {ts}");
        let rows = scan(&s, KeyRange::all(), ts, 10).await.rows;
        assert_eq!(
            rows,
            vec![row("j", "j5"), row("k", &expected), row("l", "l5")],
            "scan at {ts}"
        );
    }
}

/// A point read tells the `commit_ts` of the key's newest applied version, after the snapshot
/// too (a writer at that snapshot is certain to conflict), whether or not the read came
/// from a cache; a key with no version has none.
pub async fn a_point_read_reports_its_keys_newest_version_even_after_the_snapshot<S: Storage>(
    open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S,
) {
    let f = Fixture::new();
    let s = f.open(open);
    let mut events = vec![record(0, 1, 10, vec![put("k", "k10")])];
    for (i, ts) in (20..=100).step_by(10).enumerate() {
        events.push(record(
            0,
            2 + i as u64,
            ts,
            vec![put("k", &format!("k{ts}"))],
        ));
    }
    events.push(record(0, 11, 110, vec![del("k")]));
    events.push(heartbeat(1_000));
    apply(&s, events).await;
    let newest = |key: &str, ts: u64| {
        let request = GetRequest {
            key: key.into(),
            ts: Timestamp(ts),
        };
        async { s.get(request).await.unwrap() }
    };
    for _ in 0..2 {
        let at_15 = newest("k", 15).await;
        assert_eq!(at_15.value.unwrap(), "k10");
        assert_eq!(
            at_15.newest_ts,
            Some(Timestamp(110)),
            "a tombstone is a version"
        );
        assert_eq!(newest("k", 105).await.newest_ts, Some(Timestamp(110)));
        let at_500 = newest("k", 500).await;
        assert_eq!(
            (at_500.value, at_500.newest_ts),
            (None, Some(Timestamp(110)))
        );
        assert_eq!(newest("other", 500).await.newest_ts, None);
    }
}

/// A tombstone hides its key from reads at and after it, in get and in scan, and does not
/// count towards a scan's limit; a later version brings the key back.
pub async fn tombstones_hide_keys_from_get_and_scan<S: Storage>(
    open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S,
) {
    let f = Fixture::new();
    let s = f.open(open);
    apply(
        &s,
        vec![
            record(
                0,
                1,
                10,
                vec![put("a", "a10"), put("b", "b10"), put("c", "c10")],
            ),
            record(0, 2, 20, vec![del("a"), del("b")]),
            record(0, 3, 30, vec![put("a", "a30")]),
            heartbeat(100),
        ],
    )
    .await;
    assert_eq!(get(&s, "a", 15).await.unwrap(), "a10");
    assert_eq!(get(&s, "a", 20).await, None, "deleted at 20");
    assert_eq!(get(&s, "a", 25).await, None);
    assert_eq!(
        get(&s, "a", 30).await.unwrap(),
        "a30",
        "written again at 30"
    );
    assert_eq!(get(&s, "b", 100).await, None);
    assert_eq!(get(&s, "never", 100).await, None);
    assert_eq!(
        scan(&s, KeyRange::all(), 25, 10).await.rows,
        vec![row("c", "c10")]
    );
    let limited = scan(&s, KeyRange::all(), 25, 1).await;
    assert_eq!(
        limited.rows,
        vec![row("c", "c10")],
        "deleted keys do not use up the limit"
    );
    assert_eq!(limited.resume, None);
    assert_eq!(
        scan(&s, KeyRange::all(), 30, 10).await.rows,
        vec![row("a", "a30"), row("c", "c10")]
    );
}

/// Scans return live keys of the half-open range in key order, at most `limit` of them, with
/// a resume key that continues exactly where the page stopped.
pub async fn scan_returns_live_keys_in_order_with_limit_and_resume<S: Storage>(
    open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S,
) {
    let f = Fixture::new();
    let s = f.open(open);
    let key = |i: usize| format!("k{i:02}");
    let kv = |i: usize| row(key(i).as_str(), &key(i));
    // Written out of order across two records, then two deleted.
    let odd = (1..20)
        .step_by(2)
        .map(|i| put(key(i).as_str(), &key(i)))
        .collect();
    let even = (0..20)
        .step_by(2)
        .rev()
        .map(|i| put(key(i).as_str(), &key(i)))
        .collect();
    apply(
        &s,
        vec![
            record(0, 1, 10, odd),
            record(0, 2, 11, sorted(even)),
            record(0, 3, 20, vec![del(key(5).as_str()), del(key(6).as_str())]),
            heartbeat(100),
        ],
    )
    .await;
    let live: Vec<_> = (0..20).filter(|i| *i != 5 && *i != 6).map(kv).collect();
    let all = scan(&s, KeyRange::all(), 100, 1_000).await;
    assert_eq!(all.rows, live);
    assert_eq!(
        all.resume, None,
        "a scan that was not cut short has no resume key"
    );
    assert_eq!(
        scan(&s, KeyRange::all(), 15, 1_000).await.rows.len(),
        20,
        "at 15 none deleted"
    );

    for limit in [1, 2, 5, 7, 17, 18] {
        let mut range = KeyRange::all();
        let mut paged = Vec::new();
        for _ in 0..=live.len() {
            let page = scan(&s, range.clone(), 100, limit).await;
            assert!(page.rows.len() <= limit as usize, "limit {limit}");
            paged.extend(page.rows.iter().cloned());
            let Some(resume) = page.resume else { break };
            assert_eq!(
                page.rows.len(),
                limit as usize,
                "a page is cut short only by the limit"
            );
            assert!(
                page.rows.last().is_some_and(|(k, _)| *k < resume),
                "resume is past the page"
            );
            range.start = resume;
        }
        assert_eq!(
            paged, live,
            "pages of {limit} put together give the whole scan"
        );
    }

    let between = scan(
        &s,
        KeyRange::between(key(3).as_str(), key(8).as_str()),
        100,
        100,
    )
    .await;
    assert_eq!(between.rows, vec![kv(3), kv(4), kv(7)]);
    let up_to = KeyRange {
        start: Key::default(),
        end: Some(key(2).as_str().into()),
    };
    assert_eq!(scan(&s, up_to, 100, 100).await.rows, vec![kv(0), kv(1)]);
    let prefix = scan(&s, KeyRange::prefix("k1"), 100, 100).await.rows;
    assert_eq!(prefix, (10..20).map(kv).collect::<Vec<_>>());
    let from = KeyRange {
        start: key(18).as_str().into(),
        end: None,
    };
    assert_eq!(scan(&s, from, 100, 100).await.rows, vec![kv(18), kv(19)]);

    let inverted = scan(
        &s,
        KeyRange::between(key(8).as_str(), key(3).as_str()),
        100,
        100,
    )
    .await;
    assert_eq!(
        inverted,
        ScanResponse {
            rows: vec![],
            resume: None
        },
        "an empty range"
    );
    let empty = scan(
        &s,
        KeyRange::between(key(3).as_str(), key(3).as_str()),
        100,
        100,
    )
    .await;
    assert_eq!(
        empty,
        ScanResponse {
            rows: vec![],
            resume: None
        },
        "[x, x) is empty"
    );
    let none = scan(&s, KeyRange::all(), 100, 0).await;
    assert_eq!(none.rows, vec![], "limit 0 returns no rows and no error");
}

/// Keys that are prefixes of each other, or hold 0x00 and 0xFF bytes, keep their own versions
/// and sort as byte strings.
pub async fn keys_sharing_prefixes_or_holding_zero_and_ff_bytes_never_mix_versions<S: Storage>(
    open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S,
) {
    let f = Fixture::new();
    let s = f.open(open);
    let keys: Vec<&[u8]> = vec![
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x01",
        b"a",
        b"a\x00",
        b"a\x00\x00",
        b"a\x00\x01",
        b"a\x00\xff",
        b"a\x01",
        b"a\xff",
        b"a\xff\x00",
        b"ab",
        b"\xff",
        b"\xff\xff",
    ];
    let value = |i: usize, ts: u64| format!("{i}@{ts}");
    let at_10 = keys.iter().enumerate().map(|(i, k)| Write {
        key: Key::copy_from(k),
        value: Some(value(i, 10).into()),
    });
    let at_20 = keys.iter().enumerate().map(|(i, k)| Write {
        key: Key::copy_from(k),
        value: (i % 2 == 0).then(|| value(i, 20).into()),
    });
    apply(
        &s,
        vec![
            record(0, 1, 10, sorted(at_10.collect())),
            record(0, 2, 20, sorted(at_20.collect())),
            heartbeat(100),
        ],
    )
    .await;

    let mut by_order: Vec<(usize, &[u8])> = keys.iter().copied().enumerate().collect();
    by_order.sort_by_key(|(_, k)| *k);
    for (i, k) in &by_order {
        assert_eq!(
            get(&s, *k, 15).await.unwrap(),
            value(*i, 10),
            "key {}",
            Key::copy_from(k)
        );
        let at_25 = get(&s, *k, 25).await;
        if i % 2 == 0 {
            assert_eq!(at_25.unwrap(), value(*i, 20), "key {}", Key::copy_from(k));
        } else {
            assert_eq!(at_25, None, "key {} deleted at 20", Key::copy_from(k));
        }
    }
    let expected_15: Vec<_> = by_order
        .iter()
        .map(|(i, k)| (Key::copy_from(k), Bytes::from(value(*i, 10))))
        .collect();
    assert_eq!(scan(&s, KeyRange::all(), 15, 100).await.rows, expected_15);
    let expected_25: Vec<_> = by_order
        .iter()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(i, k)| (Key::copy_from(k), Bytes::from(value(*i, 20))))
        .collect();
    assert_eq!(scan(&s, KeyRange::all(), 25, 100).await.rows, expected_25);

    let in_prefix = |prefix: &[u8]| -> Vec<_> {
        expected_15
            .iter()
            .filter(|(k, _)| k.as_bytes().starts_with(prefix))
            .cloned()
            .collect()
    };
    for prefix in [&b"a"[..], b"a\x00", b"\x00", b"\xff", b"a\xff"] {
        let rows = scan(&s, KeyRange::prefix(Key::copy_from(prefix)), 15, 100)
            .await
            .rows;
        assert_eq!(rows, in_prefix(prefix), "prefix {}", Key::copy_from(prefix));
    }
    let range = KeyRange::between(Key::copy_from(b"a\x00"), Key::copy_from(b"a\x00\xff"));
    let rows: Vec<_> = scan(&s, range, 15, 100)
        .await
        .rows
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        rows,
        vec![
            Key::copy_from(b"a\x00"),
            Key::copy_from(b"a\x00\x00"),
            Key::copy_from(b"a\x00\x01")
        ]
    );

    // Deleting "a" leaves the keys it prefixes alone.
    apply(&s, vec![record(0, 3, 200, vec![del("a")]), heartbeat(300)]).await;
    assert_eq!(get(&s, "a", 300).await, None);
    assert_eq!(get(&s, &b"a\x00\x00"[..], 300).await.unwrap(), value(6, 20));
    assert_eq!(get(&s, "ab", 300).await.unwrap(), value(12, 20));
}

/// A read at `ts` waits until a heartbeat at or after `ts` has been applied; records alone do
/// not make storage complete.
pub async fn reads_wait_until_a_heartbeat_covers_their_timestamp<S: Storage>(
    open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S,
) {
    let f = Fixture::new();
    let s = f.open(open);
    let complete = apply(&s, vec![record(0, 1, 50, vec![put("a", "1")])]).await;
    assert_eq!(
        complete,
        Timestamp::ZERO,
        "a record alone does not advance completeness"
    );
    assert_eq!(status(&s).await.complete_ts, Timestamp::ZERO);

    let waiting_get = spawn_get(&s, "a", 50);
    let waiting_scan = spawn_scan(&s, KeyRange::all(), 50);
    settle().await;
    assert!(
        !waiting_get.is_finished(),
        "a get at 50 must wait: storage is complete to 0"
    );
    assert!(
        !waiting_scan.is_finished(),
        "a scan at 50 must wait: storage is complete to 0"
    );

    let complete = apply(&s, vec![heartbeat(49)]).await;
    assert_eq!(complete, Timestamp(49));
    settle().await;
    assert!(
        !waiting_get.is_finished(),
        "a heartbeat at 49 does not cover a read at 50"
    );
    assert!(!waiting_scan.is_finished());

    assert_eq!(apply(&s, vec![heartbeat(50)]).await, Timestamp(50));
    let got = within("the waiting get", waiting_get)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.unwrap(), "1");
    let scanned = within("the waiting scan", waiting_scan)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scanned.rows, vec![row("a", "1")]);

    assert_eq!(
        apply(&s, vec![heartbeat(40)]).await,
        Timestamp(50),
        "completeness never goes back"
    );
    assert_eq!(
        within("a covered get", get(&s, "a", 50)).await.unwrap(),
        "1"
    );
}

/// A read that storage cannot serve within the read timeout (on the storage's clock) fails
/// with `Unavailable`, and not before.
pub async fn reads_fail_unavailable_once_the_wait_passes_the_timeout<S: Storage>(
    open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S,
) {
    let f = Fixture::new();
    let s = f.open(open);
    apply(
        &s,
        vec![record(0, 1, 10, vec![put("a", "1")]), heartbeat(50)],
    )
    .await;
    let waiting_get = spawn_get(&s, "a", 100);
    let waiting_scan = spawn_scan(&s, KeyRange::all(), 100);
    settle().await;
    f.clock
        .advance(READ_WAIT_TIMEOUT - Duration::from_millis(1));
    settle().await;
    assert!(!waiting_get.is_finished(), "still within the read timeout");
    assert!(!waiting_scan.is_finished(), "still within the read timeout");
    f.clock.advance(Duration::from_millis(2));
    let get_result = within("the timed-out get", waiting_get).await.unwrap();
    assert!(
        matches!(get_result, Err(Error::Unavailable(_))),
        "got {get_result:?}"
    );
    let scan_result = within("the timed-out scan", waiting_scan).await.unwrap();
    assert!(
        matches!(scan_result, Err(Error::Unavailable(_))),
        "got {scan_result:?}"
    );

    apply(&s, vec![heartbeat(100)]).await;
    assert_eq!(
        get(&s, "a", 100).await.unwrap(),
        "1",
        "storage answers once complete"
    );
}

/// Records at or before their journal's applied position are skipped, per journal.
pub async fn replaying_applied_records_changes_nothing<S: Storage>(
    open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S,
) {
    let f = Fixture::new();
    let s = f.open(open);
    apply(
        &s,
        vec![
            record(0, 10, 10, vec![put("a", "a10")]),
            record(1, 5, 15, vec![put("c", "c15")]),
            record(0, 20, 20, vec![put("b", "b20")]),
            heartbeat(100),
        ],
    )
    .await;
    assert_eq!(status(&s).await.applied, positions(&[(0, 20), (1, 5)]));

    // A real replay carries the same records; these differ, so that applying them again
    // (instead of skipping them) would show.
    apply(
        &s,
        vec![
            record(0, 10, 10, vec![put("a", "replayed")]),
            record(0, 15, 12, vec![put("a", "replayed")]),
            record(1, 5, 15, vec![put("c", "replayed")]),
            record(0, 20, 20, vec![put("b", "replayed")]),
            record(0, 30, 110, vec![put("d", "d110")]),
            record(1, 6, 120, vec![put("c", "c120")]),
            heartbeat(200),
        ],
    )
    .await;
    assert_eq!(status(&s).await.applied, positions(&[(0, 30), (1, 6)]));
    assert_eq!(get(&s, "a", 200).await.unwrap(), "a10");
    assert_eq!(get(&s, "b", 200).await.unwrap(), "b20");
    assert_eq!(get(&s, "c", 100).await.unwrap(), "c15");
    assert_eq!(
        get(&s, "c", 200).await.unwrap(),
        "c120",
        "journal 1's new record applied"
    );
    assert_eq!(
        get(&s, "d", 200).await.unwrap(),
        "d110",
        "journal 0's new record applied"
    );
}

/// After a restart, storage reports the applied and checkpointed positions it had, skips what
/// it already applied, and serves its data once a heartbeat makes it complete again.
pub async fn reopening_resumes_from_the_applied_position<S: Storage>(
    open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S,
) {
    let f = Fixture::new();
    let s = f.open(open);
    assert_eq!(
        status(&s).await.applied,
        vec![],
        "a new storage has applied nothing"
    );
    apply(
        &s,
        vec![
            record(0, 10, 10, vec![put("a", "a10")]),
            record(0, 20, 20, vec![put("b", "b20")]),
            heartbeat(100),
        ],
    )
    .await;
    let checkpointed = s
        .checkpoint(CheckpointRequest {})
        .await
        .unwrap()
        .checkpointed;
    assert_eq!(checkpointed, positions(&[(0, 20)]));
    let before = status(&s).await;
    assert_eq!(before.applied, positions(&[(0, 20)]));
    assert_eq!(before.checkpointed, positions(&[(0, 20)]));
    assert_eq!(before.complete_ts, Timestamp(100));
    drop(s);

    let s = f.open(open);
    let after = status(&s).await;
    assert_eq!(
        after.applied, before.applied,
        "applied position survives a restart"
    );
    assert_eq!(
        after.checkpointed, before.checkpointed,
        "checkpointed position survives"
    );
    let waiting = spawn_get(&s, "a", 50);
    settle().await;
    assert!(
        !waiting.is_finished(),
        "after a restart storage is complete to nothing yet"
    );
    apply(
        &s,
        vec![
            record(0, 20, 20, vec![put("b", "replayed")]),
            heartbeat(100),
        ],
    )
    .await;
    assert_eq!(
        within("the get after reopen", waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        "a10"
    );
    assert_eq!(
        get(&s, "b", 100).await.unwrap(),
        "b20",
        "the replay after reopen was skipped"
    );

    apply(
        &s,
        vec![record(0, 30, 150, vec![put("c", "c150")]), heartbeat(200)],
    )
    .await;
    assert_eq!(status(&s).await.applied, positions(&[(0, 30)]));
    let checkpointed = s
        .checkpoint(CheckpointRequest {})
        .await
        .unwrap()
        .checkpointed;
    assert_eq!(checkpointed, positions(&[(0, 30)]));
    assert_eq!(status(&s).await.checkpointed, positions(&[(0, 30)]));
}

/// GC removes versions no read at or after the horizon can see, keeps the rest, refuses
/// reads below the horizon, and never moves the horizon back, even across a restart.
pub async fn gc_drops_only_what_no_read_at_or_after_the_horizon_sees<S: Storage>(
    open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S,
) {
    let f = Fixture::new();
    let s = f.open(open);
    apply(
        &s,
        vec![
            record(
                0,
                1,
                10,
                vec![put("j", "j10"), put("k", "k10"), put("n", "n10")],
            ),
            record(0, 2, 20, vec![del("j"), put("k", "k20")]),
            record(0, 3, 30, vec![put("k", "k30")]),
            record(0, 4, 40, vec![put("m", "m40")]),
            heartbeat(100),
        ],
    )
    .await;
    assert_eq!(get(&s, "k", 15).await.unwrap(), "k10");
    let gc = s
        .gc(GcRequest {
            horizon: Timestamp(25),
        })
        .await
        .unwrap();
    assert_eq!(gc.horizon, Timestamp(25));
    assert_eq!(
        gc.versions_removed, 3,
        "k@10 (shadowed by k@20), j@20 (a tombstone) and j@10"
    );
    assert_eq!(status(&s).await.gc_horizon, Timestamp(25));

    assert_eq!(
        get(&s, "k", 25).await.unwrap(),
        "k20",
        "the newest version at the horizon stays"
    );
    assert_eq!(get(&s, "k", 30).await.unwrap(), "k30");
    assert_eq!(get(&s, "j", 25).await, None);
    assert_eq!(
        get(&s, "n", 25).await.unwrap(),
        "n10",
        "a lone old version stays"
    );
    assert_eq!(get(&s, "m", 25).await, None);
    assert_eq!(get(&s, "m", 40).await.unwrap(), "m40");
    assert_eq!(
        scan(&s, KeyRange::all(), 25, 10).await.rows,
        vec![row("k", "k20"), row("n", "n10")]
    );
    assert_too_old(
        s.get(GetRequest {
            key: "k".into(),
            ts: Timestamp(24),
        })
        .await,
    );
    assert_too_old(s.scan(scan_request(KeyRange::all(), 24, 10)).await);

    let again = s
        .gc(GcRequest {
            horizon: Timestamp(25),
        })
        .await
        .unwrap();
    assert_eq!(
        again.versions_removed, 0,
        "nothing more to remove at the same horizon"
    );
    let lower = s
        .gc(GcRequest {
            horizon: Timestamp(10),
        })
        .await
        .unwrap();
    assert_eq!(lower.horizon, Timestamp(25), "the horizon never moves back");
    assert_eq!(lower.versions_removed, 0);
    assert_too_old(
        s.get(GetRequest {
            key: "k".into(),
            ts: Timestamp(24),
        })
        .await,
    );

    let later = s
        .gc(GcRequest {
            horizon: Timestamp(50),
        })
        .await
        .unwrap();
    assert_eq!(later.versions_removed, 1, "k@20 is now shadowed by k@30");
    assert_eq!(get(&s, "k", 50).await.unwrap(), "k30");
    assert_eq!(
        scan(&s, KeyRange::all(), 50, 10).await.rows,
        vec![row("k", "k30"), row("m", "m40"), row("n", "n10")]
    );
    drop(s);

    let s = f.open(open);
    assert_eq!(
        status(&s).await.gc_horizon,
        Timestamp(50),
        "the horizon survives a restart"
    );
    // Refused at once, without waiting for completeness.
    assert_too_old(
        s.get(GetRequest {
            key: "k".into(),
            ts: Timestamp(49),
        })
        .await,
    );
    apply(&s, vec![heartbeat(100)]).await;
    assert_eq!(get(&s, "k", 50).await.unwrap(), "k30");
}

// ---- helpers -------------------------------------------------------------------------------

/// A fresh directory and clock for one check.
struct Fixture {
    dir: TempDir,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            clock: Arc::new(ManualClock::new(Timestamp(1_000_000_000), Duration::ZERO)),
        }
    }

    fn open<S: Storage>(&self, open: &mut impl FnMut(&Path, Arc<ManualClock>) -> S) -> Arc<S> {
        Arc::new(open(self.dir.path(), self.clock.clone()))
    }
}

fn put(key: impl Into<Key>, value: &str) -> Write {
    Write {
        key: key.into(),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
    }
}

fn del(key: impl Into<Key>) -> Write {
    Write {
        key: key.into(),
        value: None,
    }
}

fn sorted(mut writes: Vec<Write>) -> Vec<Write> {
    writes.sort_by(|a, b| a.key.cmp(&b.key));
    writes
}

fn record(journal: u32, next: u64, commit_ts: u64, writes: Vec<Write>) -> ApplyEvent {
    ApplyEvent::Record {
        journal: JournalId(journal),
        next: Position(next),
        record: CommitRecord {
            txn_id: TxnId(commit_ts),
            commit_ts: Timestamp(commit_ts),
            writes,
        },
    }
}

fn heartbeat(ts: u64) -> ApplyEvent {
    ApplyEvent::Heartbeat(Timestamp(ts))
}

fn positions(list: &[(u32, u64)]) -> Vec<(JournalId, Position)> {
    list.iter()
        .map(|(j, p)| (JournalId(*j), Position(*p)))
        .collect()
}

fn row(key: impl Into<Key>, value: &str) -> (Key, Bytes) {
    (key.into(), Bytes::copy_from_slice(value.as_bytes()))
}

fn scan_request(range: KeyRange, ts: u64, limit: u32) -> ScanRequest {
    ScanRequest {
        range,
        ts: Timestamp(ts),
        limit,
    }
}

async fn apply(s: &impl Storage, events: Vec<ApplyEvent>) -> Timestamp {
    s.apply(ApplyRequest { events }).await.unwrap().complete_ts
}

async fn status(s: &impl Storage) -> StatusResponse {
    s.status(StatusRequest {}).await.unwrap()
}

async fn get(s: &impl Storage, key: impl Into<Key>, ts: u64) -> Option<Bytes> {
    s.get(GetRequest {
        key: key.into(),
        ts: Timestamp(ts),
    })
    .await
    .unwrap()
    .value
}

async fn scan(s: &impl Storage, range: KeyRange, ts: u64, limit: u32) -> ScanResponse {
    s.scan(scan_request(range, ts, limit)).await.unwrap()
}

fn spawn_get<S: Storage>(s: &Arc<S>, key: &str, ts: u64) -> JoinHandle<Result<Option<Bytes>>> {
    let (s, request) = (
        s.clone(),
        GetRequest {
            key: key.into(),
            ts: Timestamp(ts),
        },
    );
    tokio::spawn(async move { s.get(request).await.map(|r| r.value) })
}

fn spawn_scan<S: Storage>(
    s: &Arc<S>,
    range: KeyRange,
    ts: u64,
) -> JoinHandle<Result<ScanResponse>> {
    let (s, request) = (s.clone(), scan_request(range, ts, 100));
    tokio::spawn(async move { s.scan(request).await })
}

fn assert_too_old<T: std::fmt::Debug>(result: Result<T>) {
    assert!(
        matches!(result, Err(Error::TooOld(_))),
        "expected TooOld, got {result:?}"
    );
}

/// Lets spawned tasks run until they block.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Awaits `future`, failing the check if it takes more than ten seconds of real time (a
/// read that should have been released but hangs).
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    let clock = SystemClock::default();
    match cairn_types::clock::timeout(&clock, Duration::from_secs(10), future).await {
        Some(output) => output,
        None => panic!("{what} did not finish within 10 s"),
    }
}
