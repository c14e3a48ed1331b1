//! Idempotent commits: a transaction block tagged with `SET LOCAL cairn.idempotency_key` is
//! applied at most once, even when the server dies after the commit is durable but before the
//! client hears of it, and the client sends the whole transaction again after a restart.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

const TRANSFER: &str = "BEGIN; SET LOCAL cairn.idempotency_key = 'transfer-42'; \
    UPDATE counter SET n = n + 1 WHERE id = 1; COMMIT";

async fn count(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT n FROM counter WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_lost_in_a_crash_is_applied_exactly_once_when_resent() {
    let mut server = common::Server::start_with(
        &[],
        &[("CAIRN_FAULT_CRASH_AFTER_COMMIT_KEY", "transfer-42")],
    )
    .await;
    let client = server.connect().await;
    client.batch_execute("CREATE TABLE counter (id int PRIMARY KEY, n bigint); INSERT INTO counter VALUES (1, 0)").await.unwrap();
    // The server dies after the commit is durable, before replying: the client sees an error
    // and cannot know whether the transfer happened.
    assert!(
        client.batch_execute(TRANSFER).await.is_err(),
        "the reply never came"
    );

    server.kill_and_restart().await; // restarted without the fault hook
    let client = server.connect().await;
    assert_eq!(count(&client).await, 1, "the commit was durable");
    // Resending the same transaction with the same key reports success and applies nothing.
    client.batch_execute(TRANSFER).await.unwrap();
    assert_eq!(count(&client).await, 1, "applied exactly once");
    // Another key is another transaction.
    client
        .batch_execute("BEGIN; SET LOCAL cairn.idempotency_key = 'transfer-43'; UPDATE counter SET n = n + 1 WHERE id = 1; COMMIT")
        .await
        .unwrap();
    assert_eq!(count(&client).await, 2);
    // SET LOCAL ends with the block; a key is never set for the whole session.
    let shown = client.simple_query("SHOW cairn.idempotency_key").await;
    assert!(shown.is_err(), "the key does not outlive its block");
    assert!(client
        .batch_execute("SET cairn.idempotency_key = 'x'")
        .await
        .is_err());
}
