//! Online index builds (CREATE INDEX ASYNC / CONCURRENTLY) against the real binary: the
//! background job back-fills while writers carry on, `cairn_jobs` shows its progress, a
//! uniqueness failure leaves no index, and a restarted server finishes the job.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{patiently, sleep, Server};
use tokio_postgres::error::SqlState;

/// Waits for job `id` to end; returns its state and error.
#[allow(clippy::unwrap_used)] // test helper: a failed unwrap is a failed check
async fn job_outcome(client: &tokio_postgres::Client, id: i64) -> (String, Option<String>) {
    patiently("the index build job to end", async {
        loop {
            let row = client
                .query_one(
                    "SELECT state, error FROM cairn_jobs WHERE job_id = $1",
                    &[&id],
                )
                .await
                .unwrap();
            let state: String = row.get(0);
            if state != "running" {
                return (state, row.get(1));
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Whether the planner reads `index` for `sql`.
#[allow(clippy::unwrap_used)] // test helper: a failed unwrap is a failed check
async fn uses_index(client: &tokio_postgres::Client, sql: &str, index: &str) -> bool {
    let plan = client
        .simple_query(&format!("EXPLAIN {sql}"))
        .await
        .unwrap();
    plan.iter().any(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row
            .get(0)
            .is_some_and(|line| line.contains(&format!("using {index}"))),
        _ => false,
    })
}

/// The index holds an entry for every row (a range read through it counts them all) and
/// none for a value no row has (inserting each such value succeeds).
#[allow(clippy::unwrap_used)] // test helper: a failed unwrap is a failed check
async fn unique_index_matches_rows(client: &tokio_postgres::Client) {
    let through_index = "SELECT count(*) FROM built WHERE u >= 0";
    assert!(uses_index(client, through_index, "built_u").await);
    let by_index: i64 = client.query_one(through_index, &[]).await.unwrap().get(0);
    let by_scan: i64 = client
        .query_one("SELECT count(*) FROM built WHERE u + 0 >= 0", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(by_index, by_scan, "rows missing from the index");
    client
        .batch_execute(
            "INSERT INTO built SELECT g + 5000000, g FROM generate_series(1, 4000) AS g
               LEFT JOIN built AS b ON b.u = g WHERE b.id IS NULL",
        )
        .await
        .expect("a value no row has must be free in the index (no stale entry)");
}

/// Writes to `built` (updates that move a row's value, deletes, inserts) until `stop`;
/// returns how many writes committed.
#[allow(clippy::unwrap_used)] // test helper: a failed unwrap is a failed check
async fn keep_writing(client: tokio_postgres::Client, stop: Arc<AtomicBool>) -> u64 {
    let mut written = 0;
    let mut i: i64 = 0;
    while !stop.load(Ordering::Acquire) {
        let id = (i * 7919) % 4000 + 1;
        let result = match i % 3 {
            0 => {
                client
                    .execute(
                        "UPDATE built SET u = u + 1000000 WHERE id = $1 AND u < 1000000",
                        &[&id],
                    )
                    .await
            }
            1 => {
                client
                    .execute("DELETE FROM built WHERE id = $1", &[&id])
                    .await
            }
            _ => {
                client
                    .execute(
                        "INSERT INTO built VALUES ($1, $2)",
                        &[&(100_000 + i), &(2_000_000 + i)],
                    )
                    .await
            }
        };
        match result {
            Ok(_) => written += 1,
            // A write that met a batch of the build, or its definition change: skipped.
            Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {}
            Err(e) => panic!("write failed: {e:?}"),
        }
        i += 1;
    }
    written
}

/// CREATE INDEX ASYNC returns a job id at once; writers that update, delete and insert rows
/// throughout the build never leave the finished unique index missing a row or holding a
/// stale entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_index_build_racing_with_writes_matches_the_rows() {
    let server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE built (id int8 PRIMARY KEY, u int8);
             INSERT INTO built SELECT g, g FROM generate_series(1, 4000) AS g",
        )
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(keep_writing(server.connect().await, stop.clone()));
    sleep(Duration::from_millis(50)).await;
    let row = client
        .query_one("CREATE UNIQUE INDEX ASYNC built_u ON built (u)", &[])
        .await
        .unwrap();
    let id: i64 = row.get(0);
    let (state, error) = job_outcome(&client, id).await;
    stop.store(true, Ordering::Release);
    let written = writer.await.unwrap();
    assert_eq!((state.as_str(), error), ("completed", None));
    assert!(written > 0, "the writer never wrote during the build");
    let progress = client
        .query_one(
            "SELECT rows_done, rows_total FROM cairn_jobs WHERE job_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let (done, total): (i64, i64) = (progress.get(0), progress.get(1));
    assert!(done >= 3000 && total >= 3000, "progress {done} / {total}");
    unique_index_matches_rows(&client).await;
}

/// A unique index built over duplicate values fails its job with PostgreSQL's error, and
/// leaves no index behind: no plan reads it, its name is free, duplicates go in. Neither
/// kind of online build runs inside a transaction block (25001).
#[tokio::test]
async fn a_failed_unique_build_leaves_no_index() {
    let server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE built (id int8 PRIMARY KEY, u int8);
             INSERT INTO built SELECT g, g % 100 FROM generate_series(1, 1000) AS g",
        )
        .await
        .unwrap();
    let error = client
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY built_u ON built (u)")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::UNIQUE_VIOLATION), "{error:?}");
    let failed = client
        .query_one("SELECT state, error FROM cairn_jobs", &[])
        .await
        .unwrap();
    assert_eq!(failed.get::<_, String>(0), "failed");
    assert_eq!(
        failed.get::<_, String>(1),
        "could not create unique index \"built_u\""
    );
    assert!(!uses_index(&client, "SELECT * FROM built WHERE u = 3", "built_u").await);
    client
        .batch_execute("INSERT INTO built VALUES (5000, 3)")
        .await
        .unwrap();
    client
        .batch_execute("CREATE INDEX CONCURRENTLY built_u ON built (u)")
        .await
        .unwrap();
    assert!(uses_index(&client, "SELECT * FROM built WHERE u = 3", "built_u").await);
    let threes: i64 = client
        .query_one("SELECT count(*) FROM built WHERE u = 3", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(threes, 11);
    for sql in [
        "BEGIN; CREATE INDEX CONCURRENTLY built_id ON built (id)",
        "BEGIN; CREATE INDEX ASYNC built_id ON built (id)",
    ] {
        let error = client.batch_execute(sql).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(&SqlState::ACTIVE_SQL_TRANSACTION),
            "{error:?}"
        );
        client.batch_execute("ROLLBACK").await.unwrap();
    }
}

/// A server killed while a build runs resumes the job from its last committed batch when it
/// starts again, and the finished index matches the rows.
#[tokio::test]
async fn a_build_interrupted_by_a_crash_finishes_after_restart() {
    let mut server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE built (id int8 PRIMARY KEY, u int8);
             INSERT INTO built SELECT g, g FROM generate_series(1, 20000) AS g",
        )
        .await
        .unwrap();
    let row = client
        .query_one("CREATE UNIQUE INDEX ASYNC built_u ON built (u)", &[])
        .await
        .unwrap();
    let id: i64 = row.get(0);
    server.kill_and_restart().await;
    let client = server.connect().await;
    let (state, error) = job_outcome(&client, id).await;
    assert_eq!((state.as_str(), error), ("completed", None));
    let total: i64 = client
        .query_one(
            "SELECT rows_total FROM cairn_jobs WHERE job_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 20000);
    unique_index_matches_rows(&client).await;
}
