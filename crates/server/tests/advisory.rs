//! Advisory locks exclude each other across sessions of the real server: a session waiting
//! for a lock gets it when the holder unlocks, commits (`_xact_` locks) or disconnects, its
//! wait can be cancelled, and a statement that waits in a transaction block keeps the
//! block's earlier writes.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::time::Duration;

use cairn_types::clock::Clock;

/// Runs `sql` on `client` in a task; returns when it finished, in ms after the start.
fn timed(
    client: std::sync::Arc<tokio_postgres::Client>,
    sql: &'static str,
) -> tokio::task::JoinHandle<Result<u64, tokio_postgres::Error>> {
    let clock = common::clock();
    let start = clock.monotonic_nanos();
    tokio::spawn(async move {
        client.batch_execute(sql).await?;
        Ok((clock.monotonic_nanos() - start) / 1_000_000)
    })
}

async fn holds(client: &tokio_postgres::Client, key: i64) -> bool {
    // Another session's try fails while `key` is held.
    !client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .unwrap()
        .get::<_, bool>(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_waits_for_its_holder_to_unlock() {
    let server = common::Server::start().await;
    let holder = server.connect().await;
    let waiter = std::sync::Arc::new(server.connect().await);
    let probe = server.connect().await;
    holder
        .batch_execute("SELECT pg_advisory_lock(42)")
        .await
        .unwrap();
    assert!(holds(&probe, 42).await);

    let waited = timed(waiter.clone(), "SELECT pg_advisory_lock(42)");
    common::sleep(Duration::from_millis(300)).await;
    assert!(!waited.is_finished(), "the lock must wait while 42 is held");
    holder
        .batch_execute("SELECT pg_advisory_unlock(42)")
        .await
        .unwrap();
    let after = waited.await.unwrap().unwrap();
    assert!(
        after >= 300,
        "took the lock after {after} ms, before the unlock"
    );
    assert!(holds(&probe, 42).await, "the waiter holds it now");

    // A session's locks go when it disconnects.
    drop(holder);
    waiter
        .batch_execute("SELECT pg_advisory_unlock(42)")
        .await
        .unwrap();
    assert!(!holds(&probe, 42).await);
    probe
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_locks_end_with_the_transaction_and_waits_keep_the_block() {
    let server = common::Server::start().await;
    let holder = server.connect().await;
    let waiter = std::sync::Arc::new(server.connect().await);
    let probe = server.connect().await;
    holder
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    holder
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(7)")
        .await
        .unwrap();

    // The waiter's block writes a row, then waits for 7; its row survives the wait.
    let waited = timed(
        waiter.clone(),
        "BEGIN; INSERT INTO t VALUES (1); SELECT pg_advisory_xact_lock(7); \
         INSERT INTO t VALUES (2); COMMIT",
    );
    common::sleep(Duration::from_millis(300)).await;
    assert!(!waited.is_finished());
    holder.batch_execute("COMMIT").await.unwrap();
    waited.await.unwrap().unwrap();
    let rows: i64 = probe
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 2);
    // The waiter's commit ended its transaction lock too.
    assert!(!holds(&probe, 7).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_lock_can_be_cancelled() {
    let server = common::Server::start().await;
    let holder = server.connect().await;
    let waiter = std::sync::Arc::new(server.connect().await);
    holder
        .batch_execute("SELECT pg_advisory_lock(1, 2)")
        .await
        .unwrap();
    let cancel = waiter.cancel_token();
    let waited = timed(waiter.clone(), "SELECT pg_advisory_lock(1, 2)");
    common::sleep(Duration::from_millis(200)).await;
    cancel.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let error = waited.await.unwrap().unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("57014"));
    // The key spaces differ: (1, 2) does not block 1.
    let other: bool = waiter
        .query_one("SELECT pg_try_advisory_lock(1)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_that_close_a_cycle_are_deadlocks_and_lock_timeout_bounds_a_wait() {
    let server = common::Server::start().await;
    let a = std::sync::Arc::new(server.connect().await);
    let b = server.connect().await;
    a.batch_execute("SELECT pg_advisory_lock(21)")
        .await
        .unwrap();
    b.batch_execute("SELECT pg_advisory_lock(22)")
        .await
        .unwrap();
    let a_waits = timed(a.clone(), "SELECT pg_advisory_lock(22)");
    common::sleep(Duration::from_millis(200)).await;
    // b waiting for 21 would wait for a, which waits for b.
    let error = b
        .batch_execute("SELECT pg_advisory_lock(21)")
        .await
        .unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("40P01"), "{error}");
    b.batch_execute("SELECT pg_advisory_unlock(22)")
        .await
        .unwrap();
    a_waits.await.unwrap().unwrap();

    // lock_timeout: a wait longer than it fails with 55P03.
    b.batch_execute("SET lock_timeout = '200ms'").await.unwrap();
    let error = b
        .batch_execute("SELECT pg_advisory_lock(21)")
        .await
        .unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("55P03"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_locks_go_when_the_transaction_fails_or_rolls_back_to_a_savepoint() {
    let server = common::Server::start().await;
    let holder = server.connect().await;
    let probe = server.connect().await;
    holder
        .batch_execute("BEGIN; SAVEPOINT s; SELECT pg_advisory_xact_lock(5)")
        .await
        .unwrap();
    assert!(holds(&probe, 5).await);
    holder.batch_execute("ROLLBACK TO s").await.unwrap();
    assert!(
        !holds(&probe, 5).await,
        "taken after the savepoint: released"
    );
    probe
        .batch_execute("SELECT pg_advisory_unlock(5)")
        .await
        .unwrap();

    holder
        .batch_execute("SELECT pg_advisory_xact_lock(6)")
        .await
        .unwrap();
    assert!(holds(&probe, 6).await);
    probe
        .batch_execute("SELECT pg_advisory_unlock(6)")
        .await
        .unwrap_or(());
    let failed = holder.batch_execute("SELECT 1 / 0").await.unwrap_err();
    assert_eq!(failed.code().map(|c| c.code()), Some("22012"));
    assert!(
        !holds(&probe, 6).await,
        "the failed transaction's lock is gone"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
}
