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
