//! Connections share connection threads (`--connection-threads`), each running its
//! connections one poll at a time; these check what keeps a long statement from holding up
//! the others: it yields as it works, a new connection avoids a thread stuck in one, and a
//! statement timeout fires though the statement never yields.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::sync::Arc;
use std::time::Duration;

use cairn_types::clock::Clock;

/// A join comparing every pair of 3,000 rows: seconds of work with no I/O to wait on.
const LONG_JOIN: &str = "SELECT count(*) FROM big a, big b WHERE a.id + b.id < 0";
/// Seconds of work that never reaches a yield point: a set-returning function's rows are
/// made in one go, then counted in memory.
const LONG_WITHOUT_YIELDS: &str = "SELECT count(*) FROM generate_series(1, 2000000)";
/// A million result rows made, projected and sorted: seconds of work (debug build).
const MANY_ROWS: &str = "SELECT a.id * 1000 + b.id AS k FROM big a, big b ORDER BY k DESC LIMIT 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_statement_lets_the_connections_on_its_thread_run() {
    let (_server, long, other) = one_thread_with_big_table(3000).await;
    let long = Arc::new(long);
    let pid = common::backend_pid(&long).await;
    let running = {
        let long = long.clone();
        tokio::spawn(async move { long.batch_execute(LONG_JOIN).await })
    };
    common::sleep(Duration::from_millis(300)).await;

    // The same thread serves this connection while the join runs, and it can cancel it.
    let one: i32 = other.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    assert!(
        !running.is_finished(),
        "the join ended before the other connection's SELECT"
    );
    assert!(common::cancel_backend(&other, pid).await);
    let error = running.await.unwrap().unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("57014"), "{error}");
}

/// The other connections on a thread answer throughout a statement that makes a million
/// result rows: it yields while it projects them and sorts them off the thread (without the
/// projection's yields a SELECT 1 waited 2.6 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_making_many_rows_lets_the_connections_on_its_thread_run() {
    let (_server, long, other) = one_thread_with_big_table(1000).await;
    let clock = common::clock();
    let running = tokio::spawn(async move { long.query_one(MANY_ROWS, &[]).await });
    let (mut asked, mut slowest) = (0, Duration::ZERO);
    while !running.is_finished() {
        let start = clock.monotonic_nanos();
        let one: i32 = other.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
        slowest = slowest.max(Duration::from_nanos(clock.monotonic_nanos() - start));
        asked += 1;
        common::sleep(Duration::from_millis(10)).await;
    }
    let last: i32 = running.await.unwrap().unwrap().get(0);
    assert_eq!(last, 1_001_000);
    assert!(
        asked >= 10,
        "the statement ended too soon to tell ({asked} SELECTs)"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a SELECT 1 waited {slowest:?} for the statement"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_avoids_a_thread_stuck_in_a_statement() {
    let server = common::Server::start_with(&["--connection-threads", "2"], &[]).await;
    // Threads serve the fewest first: `long` on the first, `idle` on the second, `gone` on
    // the first again; once `gone` has left, the first thread serves fewer.
    let long = Arc::new(server.connect().await);
    let idle = server.connect().await;
    let gone = server.connect().await;
    let pid = common::backend_pid(&long).await;
    common::backend_pid(&idle).await;
    common::backend_pid(&gone).await;
    drop(gone);
    common::sleep(Duration::from_millis(300)).await;

    let running = {
        let long = long.clone();
        tokio::spawn(async move { long.batch_execute(LONG_WITHOUT_YIELDS).await })
    };
    common::sleep(Duration::from_millis(300)).await;

    // Queued behind the statement, this would wait for it to end.
    let fresh = server.connect().await;
    let one: i32 = fresh.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    assert!(
        !running.is_finished(),
        "the statement ended before the new connection's SELECT"
    );
    assert!(common::cancel_backend(&fresh, pid).await);
    // Cancelled while making the series, or finished counting before the flag was seen.
    if let Err(error) = running.await.unwrap() {
        assert_eq!(error.code().map(|c| c.code()), Some("57014"), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_timeout_fires_while_the_statement_holds_its_thread() {
    let server = common::Server::start_with(&["--connection-threads", "1"], &[]).await;
    let client = server.connect().await;
    client
        .batch_execute("SET statement_timeout = 100")
        .await
        .unwrap();
    let error = client.batch_execute(LONG_WITHOUT_YIELDS).await.unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("57014"), "{error}");
    assert_eq!(
        error.as_db_error().map(|e| e.message()),
        Some("canceling statement due to statement timeout")
    );
}

/// A server with one connection thread, two connections to it, and a table `big` of ids 1
/// to `rows`.
async fn one_thread_with_big_table(
    rows: u32,
) -> (
    common::Server,
    tokio_postgres::Client,
    tokio_postgres::Client,
) {
    let server = common::Server::start_with(&["--connection-threads", "1"], &[]).await;
    let (first, second) = (server.connect().await, server.connect().await);
    first
        .batch_execute(&format!(
            "CREATE TABLE big (id int PRIMARY KEY); \
             INSERT INTO big SELECT g FROM generate_series(1, {rows}) g"
        ))
        .await
        .unwrap();
    (server, first, second)
}
