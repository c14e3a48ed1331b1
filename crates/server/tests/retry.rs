//! Automatic retry: a single-statement autocommit transaction whose commit conflicts is run
//! again inside the server, so contended increments never surface 40001 and none is lost.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

const SESSIONS: i64 = 8;
const INCREMENTS: i64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contended_autocommit_updates_are_retried_and_lose_no_increment() {
    let server = common::Server::start().await;
    let setup = server.connect().await;
    setup
        .batch_execute("CREATE TABLE counter (id int PRIMARY KEY, n bigint); INSERT INTO counter VALUES (1, 0)")
        .await
        .unwrap();
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        let client = server.connect().await;
        sessions.push(tokio::spawn(async move {
            let update = client
                .prepare("UPDATE counter SET n = n + 1 WHERE id = 1")
                .await
                .unwrap();
            for _ in 0..INCREMENTS {
                // Any error, 40001 included, fails the test.
                assert_eq!(client.execute(&update, &[]).await.unwrap(), 1);
            }
        }));
    }
    for session in sessions {
        session.await.unwrap();
    }
    let n: i64 = setup
        .query_one("SELECT n FROM counter WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        n,
        SESSIONS * INCREMENTS,
        "every increment applied exactly once"
    );
}

/// Inside an explicit transaction block the client owns the retry: the conflict is reported
/// (here the block showed the client the row before updating it, so its commit cannot be
/// moved to a newer snapshot either: see isolation.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_inside_a_block_still_reach_the_client() {
    let server = common::Server::start().await;
    let (a, b) = (server.connect().await, server.connect().await);
    a.batch_execute("CREATE TABLE c (id int PRIMARY KEY, n int); INSERT INTO c VALUES (1, 0)")
        .await
        .unwrap();
    b.batch_execute("BEGIN; SELECT n FROM c WHERE id = 1; UPDATE c SET n = n + 1 WHERE id = 1")
        .await
        .unwrap();
    a.batch_execute("UPDATE c SET n = n + 1 WHERE id = 1")
        .await
        .unwrap();
    let error = b.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE)
    );
}
