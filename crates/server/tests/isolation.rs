//! Two sessions over the wire against the real binary: what snapshot isolation prevents, what
//! it allows, and how SELECT ... FOR UPDATE closes the gap.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use tokio_postgres::error::SqlState;

async fn setup(server: &common::Server, sql: &str) {
    server.connect().await.batch_execute(sql).await.unwrap();
}

fn serialization_failure(result: Result<(), tokio_postgres::Error>) -> String {
    let error = result.expect_err("expected a serialization failure");
    let db = error.as_db_error().expect("a server error");
    assert_eq!(db.code(), &SqlState::T_R_SERIALIZATION_FAILURE, "{db:?}");
    db.message().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_update_is_prevented_with_40001() {
    let server = common::Server::start().await;
    setup(
        &server,
        "CREATE TABLE counter (id int PRIMARY KEY, n int); INSERT INTO counter VALUES (1, 0)",
    )
    .await;
    let (a, b) = (server.connect().await, server.connect().await);
    a.batch_execute("BEGIN").await.unwrap();
    b.batch_execute("BEGIN").await.unwrap();
    let read = |row: tokio_postgres::Row| row.get::<_, i32>(0);
    let na = read(
        a.query_one("SELECT n FROM counter WHERE id = 1", &[])
            .await
            .unwrap(),
    );
    let nb = read(
        b.query_one("SELECT n FROM counter WHERE id = 1", &[])
            .await
            .unwrap(),
    );
    a.execute("UPDATE counter SET n = $1 WHERE id = 1", &[&(na + 1)])
        .await
        .unwrap();
    b.execute("UPDATE counter SET n = $1 WHERE id = 1", &[&(nb + 1)])
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    let message = serialization_failure(b.batch_execute("COMMIT").await);
    assert!(
        message.contains("table \"counter\""),
        "the message names the table: {message}"
    );
    let n = read(
        server
            .connect()
            .await
            .query_one("SELECT n FROM counter", &[])
            .await
            .unwrap(),
    );
    assert_eq!(n, 1, "exactly one increment survived");
}

/// As in PostgreSQL at REPEATABLE READ, writing or locking a row that another transaction
/// changed after the snapshot fails at that statement, not only at COMMIT; rows nobody else
/// changed are still written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updating_a_row_changed_after_the_snapshot_fails_at_the_update() {
    let server = common::Server::start().await;
    setup(
        &server,
        "CREATE TABLE counter (id int PRIMARY KEY, n int); \
         INSERT INTO counter VALUES (1, 0), (2, 0), (3, 0)",
    )
    .await;
    let (a, b) = (server.connect().await, server.connect().await);
    let n_of = |id: i32| {
        let b = &b;
        async move {
            b.query_one("SELECT n FROM counter WHERE id = $1", &[&id])
                .await
                .unwrap()
                .get::<_, i32>(0)
        }
    };
    a.batch_execute("BEGIN; SELECT count(*) FROM counter")
        .await
        .unwrap();
    b.batch_execute(
        "UPDATE counter SET n = 10 WHERE id = 1; UPDATE counter SET n = 30 WHERE id = 3",
    )
    .await
    .unwrap();
    // A read after those commits waits until storage has applied them.
    assert_eq!((n_of(1).await, n_of(3).await), (10, 30));

    a.batch_execute("UPDATE counter SET n = n + 1 WHERE id = 2")
        .await
        .unwrap();
    let message = serialization_failure(
        a.batch_execute("UPDATE counter SET n = n + 1 WHERE id = 1")
            .await,
    );
    assert!(message.contains("table \"counter\""), "{message}");
    let aborted = a.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(aborted.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    a.batch_execute("ROLLBACK").await.unwrap();

    a.batch_execute("BEGIN; SELECT count(*) FROM counter")
        .await
        .unwrap();
    b.batch_execute("UPDATE counter SET n = 11 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(n_of(1).await, 11);
    serialization_failure(
        a.batch_execute("SELECT n FROM counter WHERE id = 1 FOR UPDATE")
            .await,
    );
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        (n_of(1).await, n_of(2).await),
        (11, 0),
        "the failed transactions wrote nothing"
    );

    // Without a concurrent change, the same statements commit.
    a.batch_execute("BEGIN; UPDATE counter SET n = n + 1 WHERE id = 1; COMMIT")
        .await
        .unwrap();
    assert_eq!(n_of(1).await, 12);
}

/// `UPDATE ... SET n = n + x WHERE <primary key> = ...` shows the client nothing of the row, so
/// when two blocks increment one row the second commit need not fail: it moves to a snapshot
/// after the first (every key it read unchanged since its own) and adds its increment there,
/// as if it had run after it. Both commit and neither increment is lost. (The index on
/// `note` has both write the row's unchanged entry too; written unread, it needs no check.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_of_one_row_in_blocks_both_commit() {
    let server = common::Server::start().await;
    setup(
        &server,
        "CREATE TABLE counter (id int PRIMARY KEY, n int, note text); \
         CREATE INDEX counter_note ON counter (note); \
         INSERT INTO counter VALUES (1, 0, 'a'), (2, 0, 'b'); \
         CREATE TABLE other (id int PRIMARY KEY, v int); INSERT INTO other VALUES (1, 0)",
    )
    .await;
    let (a, b) = (server.connect().await, server.connect().await);
    a.batch_execute("BEGIN; UPDATE counter SET n = n + 1 WHERE id = 1")
        .await
        .unwrap();
    // b reads a row nobody changes, increments two rows, one of them the same as a's.
    b.batch_execute(
        "BEGIN; SELECT v FROM other WHERE id = 1; \
         UPDATE counter SET n = n + 10 WHERE id = 1; UPDATE counter SET n = 5 + n WHERE id = 2",
    )
    .await
    .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    b.batch_execute("COMMIT").await.unwrap();
    let rows = server
        .connect()
        .await
        .query("SELECT id, n, note FROM counter ORDER BY id", &[])
        .await
        .unwrap();
    let rows: Vec<(i32, i32, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows, [(1, 11, "a".into()), (2, 5, "b".into())]);
}

/// What keeps that sound: the second commit still fails with 40001 whenever the client saw, or
/// the statement depended on, something a concurrent commit changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_increment_whose_transaction_saw_a_concurrent_change_still_fails() {
    let server = common::Server::start().await;
    setup(
        &server,
        "CREATE TABLE counter (id int PRIMARY KEY, n int, note text); \
         INSERT INTO counter VALUES (1, 0, 'a'); \
         CREATE TABLE other (id int PRIMARY KEY, v int); INSERT INTO other VALUES (1, 0)",
    )
    .await;
    // (what b does after its increment, what a commits meanwhile besides its own increment)
    let cases = [
        // b read the row it incremented: the value it saw is no longer the row's.
        ("SELECT n FROM counter WHERE id = 1", ""),
        // b read a row a changed: at a newer snapshot it would have read something else.
        (
            "SELECT v FROM other WHERE id = 1",
            "UPDATE other SET v = v + 1 WHERE id = 1",
        ),
        // b scanned (its rows are not recorded, so they cannot be checked).
        ("SELECT count(*) FROM other", ""),
        // a changed a column b's increment did not set: b's WHERE saw the old row.
        ("", "UPDATE counter SET note = 'changed' WHERE id = 1"),
        // a deleted the row: b's UPDATE counted a row that is gone.
        ("", "DELETE FROM counter WHERE id = 1"),
    ];
    for (b_after, a_also) in cases {
        let (a, b) = (server.connect().await, server.connect().await);
        b.batch_execute(&format!(
            "BEGIN; UPDATE counter SET n = n + 10 WHERE id = 1; {b_after}"
        ))
        .await
        .unwrap();
        a.batch_execute(&format!(
            "BEGIN; UPDATE counter SET n = n + 1 WHERE id = 1; {a_also}; COMMIT"
        ))
        .await
        .unwrap();
        serialization_failure(b.batch_execute("COMMIT").await);
        a.batch_execute(
            "DELETE FROM counter; INSERT INTO counter VALUES (1, 0, 'a'); UPDATE other SET v = 0",
        )
        .await
        .unwrap();
    }
    // A WHERE clause that reads the incremented column makes it an ordinary update.
    let (a, b) = (server.connect().await, server.connect().await);
    b.batch_execute("BEGIN; UPDATE counter SET n = n + 10 WHERE id = 1 AND n < 100")
        .await
        .unwrap();
    a.batch_execute("UPDATE counter SET n = n + 1 WHERE id = 1")
        .await
        .unwrap();
    serialization_failure(b.batch_execute("COMMIT").await);
}

/// Two doctors on call, each going off call when the other is still on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_skew_is_allowed_under_repeatable_read_and_prevented_by_for_update() {
    let server = common::Server::start().await;
    setup(&server, "CREATE TABLE doctors (name text PRIMARY KEY, on_call boolean); INSERT INTO doctors VALUES ('alice', true), ('bob', true)").await;
    let on_call = "SELECT count(*) FROM doctors WHERE on_call";
    let count = |row: tokio_postgres::Row| row.get::<_, i64>(0);

    // Plain snapshot isolation: both see two on call, both go off call, both commit.
    let (a, b) = (server.connect().await, server.connect().await);
    a.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    b.batch_execute("BEGIN").await.unwrap();
    assert_eq!(count(a.query_one(on_call, &[]).await.unwrap()), 2);
    assert_eq!(count(b.query_one(on_call, &[]).await.unwrap()), 2);
    a.batch_execute("UPDATE doctors SET on_call = false WHERE name = 'alice'")
        .await
        .unwrap();
    b.batch_execute("UPDATE doctors SET on_call = false WHERE name = 'bob'")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        count(
            server
                .connect()
                .await
                .query_one(on_call, &[])
                .await
                .unwrap()
        ),
        0,
        "write skew happened"
    );

    // With FOR UPDATE on the rows read, the second commit is refused.
    setup(&server, "UPDATE doctors SET on_call = true").await;
    a.batch_execute("BEGIN").await.unwrap();
    b.batch_execute("BEGIN").await.unwrap();
    let locked = "SELECT name FROM doctors WHERE on_call FOR UPDATE";
    assert_eq!(a.query(locked, &[]).await.unwrap().len(), 2);
    assert_eq!(b.query(locked, &[]).await.unwrap().len(), 2);
    a.batch_execute("UPDATE doctors SET on_call = false WHERE name = 'alice'")
        .await
        .unwrap();
    b.batch_execute("UPDATE doctors SET on_call = false WHERE name = 'bob'")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    serialization_failure(b.batch_execute("COMMIT").await);
    assert_eq!(
        count(
            server
                .connect()
                .await
                .query_one(on_call, &[])
                .await
                .unwrap()
        ),
        1,
        "someone is still on call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_transaction_sees_one_stable_snapshot_while_another_session_commits() {
    let server = common::Server::start().await;
    setup(&server, "CREATE TABLE bank (id int PRIMARY KEY, balance int); INSERT INTO bank VALUES (1, 50), (2, 50)").await;
    let (reader, writer) = (server.connect().await, server.connect().await);
    reader.batch_execute("BEGIN READ ONLY").await.unwrap();
    let total = "SELECT sum(balance) FROM bank";
    let sum = |row: tokio_postgres::Row| row.get::<_, i64>(0);
    assert_eq!(sum(reader.query_one(total, &[]).await.unwrap()), 100);
    for amount in 1..=5 {
        writer
            .batch_execute(&format!("BEGIN; UPDATE bank SET balance = balance - {amount} WHERE id = 1; UPDATE bank SET balance = balance + {amount} + 1 WHERE id = 2; COMMIT"))
            .await
            .unwrap();
        assert_eq!(
            sum(reader.query_one(total, &[]).await.unwrap()),
            100,
            "the reader's snapshot does not move"
        );
        let first = reader
            .query_one("SELECT balance FROM bank WHERE id = 1", &[])
            .await
            .unwrap();
        assert_eq!(first.get::<_, i32>(0), 50);
    }
    reader.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        sum(reader.query_one(total, &[]).await.unwrap()),
        105,
        "a new snapshot sees every commit"
    );
}

/// Under SERIALIZABLE the doctors' write skew is refused without FOR UPDATE: what each
/// transaction read is validated at commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serializable_prevents_write_skew_and_phantoms() {
    let server = common::Server::start().await;
    setup(&server, "CREATE TABLE doctors (name text PRIMARY KEY, on_call boolean); INSERT INTO doctors VALUES ('alice', true), ('bob', true)").await;
    let on_call = "SELECT count(*) FROM doctors WHERE on_call";
    let count = |row: tokio_postgres::Row| row.get::<_, i64>(0);
    let (a, b) = (server.connect().await, server.connect().await);
    a.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    b.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    assert_eq!(count(a.query_one(on_call, &[]).await.unwrap()), 2);
    assert_eq!(count(b.query_one(on_call, &[]).await.unwrap()), 2);
    a.batch_execute("UPDATE doctors SET on_call = false WHERE name = 'alice'")
        .await
        .unwrap();
    b.batch_execute("UPDATE doctors SET on_call = false WHERE name = 'bob'")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    serialization_failure(b.batch_execute("COMMIT").await);
    assert_eq!(
        count(
            server
                .connect()
                .await
                .query_one(on_call, &[])
                .await
                .unwrap()
        ),
        1
    );

    // A phantom: a count over the table, then a concurrent insert into it.
    let (counter, inserter) = (server.connect().await, server.connect().await);
    counter
        .batch_execute("SET default_transaction_isolation = 'serializable'; BEGIN")
        .await
        .unwrap();
    assert_eq!(
        count(
            counter
                .query_one("SELECT count(*) FROM doctors", &[])
                .await
                .unwrap()
        ),
        2
    );
    inserter
        .batch_execute("INSERT INTO doctors VALUES ('cy', true)")
        .await
        .unwrap();
    counter
        .batch_execute("UPDATE doctors SET on_call = true WHERE name = 'alice'")
        .await
        .unwrap();
    serialization_failure(counter.batch_execute("COMMIT").await);

    // Read-only serializable transactions never fail.
    let reader = server.connect().await;
    reader
        .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY")
        .await
        .unwrap();
    assert_eq!(
        count(
            reader
                .query_one("SELECT count(*) FROM doctors", &[])
                .await
                .unwrap()
        ),
        3
    );
    inserter
        .batch_execute("INSERT INTO doctors VALUES ('dee', true)")
        .await
        .unwrap();
    reader.batch_execute("COMMIT").await.unwrap();
}
