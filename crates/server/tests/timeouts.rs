//! pg_sleep, statement_timeout and pg_cancel_backend against the real server: a sleep
//! takes its time, a statement past its timeout stops with 57014 and says why, another
//! session can cancel a statement by pid, and the session carries on after each.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::sync::Arc;
use std::time::Duration;

use cairn_types::clock::Clock;

fn elapsed_ms(clock: &impl Clock, start: u64) -> u64 {
    (clock.monotonic_nanos() - start) / 1_000_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleeps_sleep_and_timeouts_stop_statements() {
    let server = common::Server::start().await;
    let client = server.connect().await;
    // One clock: monotonic readings of different clocks do not compare.
    let clock = common::clock();

    let start = clock.monotonic_nanos();
    client
        .batch_execute("SELECT pg_sleep(0.2), pg_sleep(0.1)")
        .await
        .unwrap();
    let took = elapsed_ms(&clock, start);
    assert!((300..2_000).contains(&took), "slept {took} ms for 0.3 s");

    client
        .batch_execute("SET statement_timeout = '150ms'")
        .await
        .unwrap();
    let start = clock.monotonic_nanos();
    let error = client
        .batch_execute("SELECT pg_sleep(5)")
        .await
        .unwrap_err();
    let took = elapsed_ms(&clock, start);
    let db = error.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "57014");
    assert_eq!(db.message(), "canceling statement due to statement timeout");
    assert!(took < 2_000, "the timeout took {took} ms");

    // A long statement that is not a sleep stops too.
    client
        .batch_execute("SET statement_timeout = 0; CREATE TABLE big (id int PRIMARY KEY)")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO big SELECT g FROM generate_series(1, 20000) g")
        .await
        .unwrap();
    client
        .batch_execute("SET statement_timeout = 50")
        .await
        .unwrap();
    let error = client
        .batch_execute("SELECT count(*) FROM big a, big b WHERE a.id + b.id < 0")
        .await
        .unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("57014"), "{error}");

    // The session carries on, without a timeout once it is reset.
    client
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM big", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_session_cancels_by_pid() {
    let server = common::Server::start().await;
    let sleeper = Arc::new(server.connect().await);
    let other = server.connect().await;
    let pid = common::backend_pid(&sleeper).await;
    let sleeping = {
        let sleeper = sleeper.clone();
        tokio::spawn(async move { sleeper.batch_execute("SELECT pg_sleep(10)").await })
    };
    common::sleep(Duration::from_millis(200)).await;
    assert!(common::cancel_backend(&other, pid).await);
    let error = sleeping.await.unwrap().unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("57014"));
    let unknown: bool = other
        .query_one("SELECT pg_cancel_backend(-5)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!unknown);
    sleeper.batch_execute("SELECT 1").await.unwrap();
}
