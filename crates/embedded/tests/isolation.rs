//! Snapshot isolation as the transaction API gives it, through every real component:
//! which anomalies are prevented, which one is allowed, and how `lock` removes it; and that a
//! read right after a commit sees it without waiting for a periodic heartbeat.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

use bytes::Bytes;
use cairn_embedded::{Embedded, Options};
use cairn_qp::Isolation;
use cairn_types::{Error, Key, KeyRange};

async fn open(dir: &std::path::Path) -> Embedded {
    Embedded::open(Options::new(dir)).await.unwrap()
}

fn int(value: Option<Bytes>) -> i64 {
    let bytes = value.expect("row exists");
    std::str::from_utf8(&bytes).unwrap().parse().unwrap()
}

fn bytes(n: i64) -> Bytes {
    Bytes::from(n.to_string())
}

async fn seed(db: &Embedded, rows: &[(&str, i64)]) {
    let mut txn = db.database().begin();
    for (key, value) in rows {
        txn.put((*key).into(), bytes(*value));
    }
    txn.commit().await.unwrap();
}

fn conflict_key(result: cairn_types::Result<impl std::fmt::Debug>) -> Key {
    match result {
        Err(Error::Conflict(conflict)) => conflict.key,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn lost_update_is_prevented_the_second_committer_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    seed(&db, &[("counter", 0)]).await;
    let mut t1 = db.database().begin();
    let mut t2 = db.database().begin();
    let key: Key = "counter".into();
    let v1 = int(t1.get(&key).await.unwrap());
    let v2 = int(t2.get(&key).await.unwrap());
    t1.put(key.clone(), bytes(v1 + 1));
    t2.put(key.clone(), bytes(v2 + 1));
    t1.commit().await.unwrap();
    assert_eq!(conflict_key(t2.commit().await), key);
    let check = db.database().begin();
    assert_eq!(
        int(check.get(&key).await.unwrap()),
        1,
        "exactly one increment survived"
    );
}

#[tokio::test]
async fn read_skew_is_prevented_reads_come_from_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    seed(&db, &[("x", 50), ("y", 50)]).await;
    let reader = db.database().begin();
    let x = int(reader.get(&"x".into()).await.unwrap());
    // A transfer commits between the reader's two reads.
    let mut transfer = db.database().begin();
    transfer.put("x".into(), bytes(10));
    transfer.put("y".into(), bytes(90));
    transfer.commit().await.unwrap();
    let y = int(reader.get(&"y".into()).await.unwrap());
    assert_eq!(x + y, 100, "the reader saw x={x} y={y}");
    let scanned = reader.scan(&KeyRange::all(), 10).await.unwrap();
    let total: i64 = scanned.iter().map(|(_, v)| int(Some(v.clone()))).sum();
    assert_eq!(total, 100);
    assert!(
        reader.commit().await.is_ok(),
        "read-only transactions never abort"
    );
    // A transaction that starts after the transfer was acknowledged sees it.
    let after = db.database().begin();
    assert_eq!(int(after.get(&"x".into()).await.unwrap()), 10);
}

/// Two doctors on call; each goes off call if the other is still on. Under snapshot isolation
/// both commit, leaving nobody on call: write skew, allowed (DESIGN: REPEATABLE READ).
#[tokio::test]
async fn write_skew_is_allowed_under_snapshot_isolation() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    seed(&db, &[("alice", 1), ("bob", 1)]).await;
    let mut t1 = db.database().begin();
    let mut t2 = db.database().begin();
    let on_call = |a: i64, b: i64| a + b;
    let seen1 = on_call(
        int(t1.get(&"alice".into()).await.unwrap()),
        int(t1.get(&"bob".into()).await.unwrap()),
    );
    let seen2 = on_call(
        int(t2.get(&"alice".into()).await.unwrap()),
        int(t2.get(&"bob".into()).await.unwrap()),
    );
    assert_eq!((seen1, seen2), (2, 2));
    t1.put("alice".into(), bytes(0));
    t2.put("bob".into(), bytes(0));
    t1.commit().await.unwrap();
    t2.commit().await.unwrap();
    let check = db.database().begin();
    let after = on_call(
        int(check.get(&"alice".into()).await.unwrap()),
        int(check.get(&"bob".into()).await.unwrap()),
    );
    assert_eq!(
        after, 0,
        "both committed: the anomaly happened, as snapshot isolation allows"
    );
}

/// The same schedule, but each transaction locks the row it read and did not write (what
/// `SELECT ... FOR UPDATE` does): now the second commit conflicts.
#[tokio::test]
async fn lock_turns_write_skew_into_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    seed(&db, &[("alice", 1), ("bob", 1)]).await;
    let mut t1 = db.database().begin();
    let mut t2 = db.database().begin();
    for txn in [&mut t1, &mut t2] {
        assert_eq!(int(txn.get(&"alice".into()).await.unwrap()), 1);
        assert_eq!(int(txn.get(&"bob".into()).await.unwrap()), 1);
    }
    t1.lock("bob".into());
    t1.put("alice".into(), bytes(0));
    t2.lock("alice".into());
    t2.put("bob".into(), bytes(0));
    t1.commit().await.unwrap();
    // t2 writes bob (which t1 locked) and locks alice (which t1 wrote): either key names it.
    let key = conflict_key(t2.commit().await);
    assert!(
        key == Key::from("alice") || key == Key::from("bob"),
        "{key}"
    );
    let check = db.database().begin();
    assert_eq!(
        int(check.get(&"bob".into()).await.unwrap()),
        1,
        "someone is still on call"
    );
}

#[tokio::test]
async fn read_only_transactions_never_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    seed(&db, &[("k", 1)]).await;
    let readers: Vec<_> = (0..5).map(|_| db.database().begin()).collect();
    for reader in &readers {
        assert_eq!(int(reader.get(&"k".into()).await.unwrap()), 1);
    }
    for n in 2..5 {
        seed(&db, &[("k", n)]).await;
    }
    for reader in readers {
        assert_eq!(
            int(reader.get(&"k".into()).await.unwrap()),
            1,
            "still the old snapshot"
        );
        assert_eq!(reader.commit().await.unwrap().commit_ts, None);
    }
}

#[tokio::test]
async fn a_transaction_reads_its_own_writes_including_deletes_in_scans() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    seed(&db, &[("a", 1), ("b", 2), ("c", 3)]).await;
    let mut txn = db.database().begin();
    txn.delete("b".into());
    txn.put("bb".into(), bytes(22));
    txn.put("c".into(), bytes(33));
    assert_eq!(txn.get(&"b".into()).await.unwrap(), None);
    let rows = txn.scan(&KeyRange::all(), 10).await.unwrap();
    let keys: Vec<_> = rows
        .iter()
        .map(|(k, v)| format!("{k}={}", int(Some(v.clone()))))
        .collect();
    assert_eq!(keys, ["\"a\"=1", "\"bb\"=22", "\"c\"=33"]);
    let limited = txn.scan(&KeyRange::all(), 2).await.unwrap();
    assert_eq!(limited.len(), 2);
    // Another transaction does not see any of it before commit.
    let other = db.database().begin();
    assert_eq!(int(other.get(&"b".into()).await.unwrap()), 2);
    txn.commit().await.unwrap();
    let after = db.database().begin();
    assert_eq!(after.get(&"b".into()).await.unwrap(), None);
    assert_eq!(int(after.get(&"bb".into()).await.unwrap()), 22);
}

#[tokio::test]
async fn the_loopback_wiring_behaves_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = Embedded::open(Options {
        loopback: true,
        ..Options::new(dir.path())
    })
    .await
    .unwrap();
    seed(&db, &[("counter", 0)]).await;
    let mut t1 = db.database().begin();
    let mut t2 = db.database().begin();
    t1.put("counter".into(), bytes(1));
    t2.put("counter".into(), bytes(2));
    t1.commit().await.unwrap();
    assert_eq!(conflict_key(t2.commit().await), Key::from("counter"));
    assert_eq!(
        int(db.database().begin().get(&"counter".into()).await.unwrap()),
        1
    );
}

/// The doctors' write skew again, under SERIALIZABLE: what each read is validated at commit, so
/// the second commit conflicts without any explicit lock.
#[tokio::test]
async fn serializable_prevents_write_skew_without_locks() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    seed(&db, &[("alice", 1), ("bob", 1)]).await;
    let mut t1 = db.database().begin_with(Isolation::Serializable);
    let mut t2 = db.database().begin_with(Isolation::Serializable);
    for txn in [&t1, &t2] {
        assert_eq!(int(txn.get(&"alice".into()).await.unwrap()), 1);
        assert_eq!(int(txn.get(&"bob".into()).await.unwrap()), 1);
    }
    t1.put("alice".into(), bytes(0));
    t2.put("bob".into(), bytes(0));
    t1.commit().await.unwrap();
    assert_eq!(conflict_key(t2.commit().await), Key::from("alice"));
}

/// A SERIALIZABLE transaction that counted the rows of a range conflicts with a concurrent
/// insert into that range (a phantom), even though it never read the new key.
#[tokio::test]
async fn serializable_prevents_phantoms_in_scanned_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    seed(&db, &[("shift/1", 1), ("shift/2", 1)]).await;
    let mut counter = db.database().begin_with(Isolation::Serializable);
    let on_shift = counter
        .scan(&KeyRange::prefix("shift/"), 100)
        .await
        .unwrap()
        .len();
    assert_eq!(on_shift, 2);
    let mut inserter = db.database().begin();
    inserter.put("shift/3".into(), bytes(1));
    inserter.commit().await.unwrap();
    counter.put("summary".into(), bytes(on_shift as i64));
    assert_eq!(conflict_key(counter.commit().await), Key::from("shift/3"));
}

#[tokio::test]
async fn serializable_read_only_transactions_never_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    seed(&db, &[("k", 1)]).await;
    let reader = db.database().begin_with(Isolation::Serializable);
    assert_eq!(reader.scan(&KeyRange::all(), 10).await.unwrap().len(), 1);
    seed(&db, &[("k", 2), ("k2", 3)]).await;
    assert_eq!(int(reader.get(&"k".into()).await.unwrap()), 1);
    assert_eq!(reader.commit().await.unwrap().commit_ts, None);
}

/// A read right after a commit sees it, without periodic heartbeats to rescue it: the read's
/// own heartbeat reaches storage (delivered by the reader, or by the crossbar the reader woke
/// when storage was still applying the commit), never only at the next periodic one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_commit_needs_no_periodic_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path());
    options.heartbeat_interval = std::time::Duration::from_secs(3600);
    options.read_wait_timeout = std::time::Duration::from_secs(2);
    let db = Embedded::open(options).await.unwrap();
    for n in 0..500 {
        let key = Key::from(format!("k{}", n % 7));
        let mut txn = db.database().begin();
        txn.put(key.clone(), bytes(n));
        txn.commit().await.unwrap();
        let reader = db.database().begin();
        assert_eq!(int(reader.get(&key).await.unwrap()), n, "read {n}");
    }
}

/// Two increments of one row from one snapshot, committed at the same time, both commit: the
/// second conflicts with the first and refreshes over it. The first one's `commit_ts` is
/// ahead of the clock (the commit lead) while it is in its fsync, so the refresh must read at
/// that `commit_ts`, not at now: below it, it would meet the same conflict again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_of_one_row_both_commit_through_a_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    seed(&db, &[("counter", 0)]).await;
    let key = Key::from("counter");
    let rebase: cairn_qp::Rebase = std::sync::Arc::new(|stored: &Bytes| {
        let n: i64 = std::str::from_utf8(stored).ok()?.parse().ok()?;
        Some(bytes(n + 1))
    });
    let rounds = 100;
    for round in 0..rounds {
        let mut increments = Vec::new();
        for _ in 0..2 {
            let mut txn = db.database().begin();
            let n = int(txn.get(&key).await.unwrap());
            txn.put_rebasable(key.clone(), bytes(n + 1), rebase.clone());
            increments.push(tokio::spawn(txn.commit()));
        }
        for increment in increments {
            let outcome = increment.await.unwrap();
            assert!(outcome.is_ok(), "round {round}: {outcome:?}");
        }
    }
    let reader = db.database().begin();
    assert_eq!(int(reader.get(&key).await.unwrap()), 2 * rounds);
}
