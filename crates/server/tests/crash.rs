//! Data survives `kill -9` of the server: what was committed is there after a restart, what was
//! not committed is not, checked through SQL.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_rows_survive_sigkill_and_uncommitted_ones_do_not() {
    let mut server = common::Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE durable (id int PRIMARY KEY, note text)")
        .await
        .unwrap();
    for id in 0..50 {
        client
            .execute(
                "INSERT INTO durable VALUES ($1, $2)",
                &[&id, &format!("row {id}")],
            )
            .await
            .unwrap();
    }
    client
        .batch_execute("BEGIN; INSERT INTO durable VALUES (1000, 'never committed')")
        .await
        .unwrap();

    server.kill_and_restart().await;

    let client = server.connect().await;
    let count: i64 = client
        .query_one("SELECT count(*) FROM durable", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        count, 50,
        "every acknowledged commit is back, the open transaction is not"
    );
    let note: String = client
        .query_one("SELECT note FROM durable WHERE id = 49", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(note, "row 49");
    // And the restarted server takes new writes.
    client
        .execute("INSERT INTO durable VALUES (50, 'after restart')", &[])
        .await
        .unwrap();
}

/// Sequence values are reserved by commits of their own before they are handed out, so a
/// restart (even by `kill -9`) never hands one out again, and a value handed to a transaction
/// that rolled back is not reused either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_values_are_never_reused_across_a_sigkill() {
    let mut server = common::Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE tickets (id bigserial PRIMARY KEY, note text);
             INSERT INTO tickets (note) VALUES ('a'), ('b'), ('c');
             BEGIN; INSERT INTO tickets (note) VALUES ('rolled back'); ROLLBACK;",
        )
        .await
        .unwrap();
    let before: Vec<i64> = client
        .query("SELECT id FROM tickets ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(before, [1, 2, 3]);

    server.kill_and_restart().await;

    let client = server.connect().await;
    let after: i64 = client
        .query_one("INSERT INTO tickets (note) VALUES ('d') RETURNING id", &[])
        .await
        .unwrap()
        .get(0);
    // The rolled-back insert took 4; the restart skipped the rest of the reserved block.
    assert!(after > 4, "a value was handed out twice: {after}");
    let explicit: i64 = client
        .query_one("SELECT nextval('tickets_id_seq')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(explicit, after + 1);
}
