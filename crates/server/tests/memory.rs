//! Large queries against the real binary: 300,000 rows sorted, hash-joined and aggregated
//! within the statement memory budget (`cairn.statement_memory_limit`); under a small budget
//! the same statements fail with SQLSTATE 53200 while the session, other sessions and the
//! data carry on, and aggregations that stream (holding groups, not rows) still run.

mod common;

use common::{expect_err, patiently, Server};
use tokio_postgres::error::SqlState;

const ROWS: i64 = 300_000;

const SORT: &str = "SELECT id, s FROM big ORDER BY s DESC LIMIT 3";
const HASH_JOIN: &str = "SELECT count(*), sum(b.k)::bigint FROM big a JOIN big b ON b.s = a.s";
const AGGREGATION: &str =
    "SELECT count(*), sum(n)::bigint FROM (SELECT id % 150000 AS g, count(*) AS n FROM big GROUP BY id % 150000) t";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_sorts_joins_and_aggregations_stay_within_the_memory_budget() {
    let server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE big (id int PRIMARY KEY, k int NOT NULL, s text NOT NULL);
             INSERT INTO big SELECT g, g % 1000, 'row ' || g FROM generate_series(1, {ROWS}) g"
        ))
        .await
        .expect("load");

    // Under the default budget (256MB) all three run, with the right answers.
    let rows = client.query(SORT, &[]).await.expect("sort");
    let top: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        top,
        [99_999, 99_998, 99_997],
        "text sorts as in the C collation"
    );
    let row = client.query_one(HASH_JOIN, &[]).await.expect("hash join");
    assert_eq!(row.get::<_, i64>(0), ROWS);
    // Each residue of 1000 appears 300 times: 300 × (0 + 1 + … + 999).
    assert_eq!(row.get::<_, i64>(1), 149_850_000);
    let row = client
        .query_one(AGGREGATION, &[])
        .await
        .expect("aggregation");
    assert_eq!(row.get::<_, i64>(0), 150_000);
    assert_eq!(row.get::<_, i64>(1), ROWS);

    // A correlated EXISTS tied by an equality reads `big` once (a hash semi-join): run per
    // outer row instead it would scan 300,000 rows 300,000 times and never finish here.
    let row = patiently(
        "correlated EXISTS over 300,000 rows",
        client.query_one(
            "SELECT count(*) FROM big a WHERE EXISTS (SELECT 1 FROM big b WHERE b.k = a.id)",
            &[],
        ),
    )
    .await
    .expect("hashed correlated subquery");
    assert_eq!(row.get::<_, i64>(0), 999, "ids 1..999 are some row's k");

    // Under 8MB each fails with 53200 naming the budget, and the session carries on.
    client
        .batch_execute("SET cairn.statement_memory_limit = '8MB'")
        .await
        .expect("set the budget");
    for statement in [SORT, HASH_JOIN, AGGREGATION] {
        let error = expect_err(client.query(statement, &[]).await, statement);
        assert_eq!(error.code(), Some(&SqlState::OUT_OF_MEMORY), "{statement}");
        let detail = error.as_db_error().and_then(|e| e.detail()).unwrap_or("");
        assert!(detail.contains("8MB"), "{detail}");
        let row = client
            .query_one("SELECT count(*) FROM big WHERE id <= 10", &[])
            .await
            .expect("a small query still runs under the small budget");
        assert_eq!(row.get::<_, i64>(0), 10);
    }

    // An aggregation over a scan (and over joins with a small side) streams: it holds its
    // groups, not the rows, so 300,000 rows fit in 8MB.
    let row = client
        .query_one(
            "SELECT count(*), sum(a.k)::bigint FROM big a JOIN big b ON b.id = a.k + 1 WHERE a.id % 2 = 0",
            &[],
        )
        .await
        .expect("a streamed aggregation fits the small budget");
    assert_eq!(row.get::<_, i64>(0), ROWS / 2);

    // Aggregates that keep every input (array_agg, string_agg) count against it too.
    let error = expect_err(
        client.query("SELECT array_agg(s) FROM big", &[]).await,
        "array_agg of every row",
    );
    assert_eq!(error.code(), Some(&SqlState::OUT_OF_MEMORY));

    // Recursion that never ends is stopped by the budget, not by the server's memory.
    let error = expect_err(
        client
            .query(
                "WITH RECURSIVE t (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
                &[],
            )
            .await,
        "endless recursion",
    );
    assert_eq!(error.code(), Some(&SqlState::OUT_OF_MEMORY));

    // Inside a transaction block the failure aborts the block, as any error does.
    client.batch_execute("BEGIN").await.expect("begin");
    expect_err(client.query(HASH_JOIN, &[]).await, "join in a block");
    let error = expect_err(client.query("SELECT 1", &[]).await, "aborted block");
    assert_eq!(error.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    client.batch_execute("ROLLBACK").await.expect("rollback");

    // Another session has its own (default) budget, and no committed row was lost.
    let other = server.connect().await;
    let row = other
        .query_one(HASH_JOIN, &[])
        .await
        .expect("other session");
    assert_eq!(row.get::<_, i64>(0), ROWS);
    client
        .batch_execute("RESET cairn.statement_memory_limit")
        .await
        .expect("reset");
    let row = client
        .query_one("SELECT count(*), count(DISTINCT k) FROM big", &[])
        .await
        .expect("count after reset");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (ROWS, 1000));
}
