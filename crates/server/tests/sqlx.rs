//! sqlx, the other common Rust driver, against the real binary: typed queries with binds,
//! transactions, errors with SQLSTATE, and its migration runner, which takes an advisory
//! lock so that concurrent runners apply each migration once.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};

/// id, name, price, tags, ok.
type ItemRow = (i64, String, Option<f64>, Vec<String>, bool);

async fn pool(server: &common::Server) -> PgPool {
    let url = format!("postgres://postgres@{}/postgres", server.addr);
    PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_binds_transactions_and_errors() {
    let server = common::Server::start().await;
    let pool = pool(&server).await;
    sqlx::query("CREATE TABLE sx_items (id bigint PRIMARY KEY, name text NOT NULL, price float8, tags text[], ok bool)")
        .execute(&pool)
        .await
        .unwrap();
    for (id, name) in [(1_i64, "one"), (2, "two"), (3, "three")] {
        sqlx::query("INSERT INTO sx_items VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(name)
            .bind(id as f64 / 2.0)
            .bind(vec![name.to_string(), "x".to_string()])
            .bind(id % 2 == 1)
            .execute(&pool)
            .await
            .unwrap();
    }
    let rows: Vec<ItemRow> =
        sqlx::query_as("SELECT id, name, price, tags, ok FROM sx_items WHERE id >= $1 ORDER BY id")
            .bind(2_i64)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (
                2,
                "two".into(),
                Some(1.0),
                vec!["two".into(), "x".into()],
                false
            ),
            (
                3,
                "three".into(),
                Some(1.5),
                vec!["three".into(), "x".into()],
                true
            ),
        ]
    );
    // A transaction that is dropped rolls back; one committed stays.
    {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("DELETE FROM sx_items")
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("UPDATE sx_items SET name = 'uno' WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let row = sqlx::query("SELECT count(*) AS n, max(name) AS top FROM sx_items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>("n"), 3);
    assert_eq!(row.get::<String, _>("top"), "uno");
    let error = sqlx::query("INSERT INTO sx_items (id, name) VALUES (1, 'again')")
        .execute(&pool)
        .await
        .unwrap_err();
    let code = error.as_database_error().and_then(|e| e.code()).unwrap();
    assert_eq!(code, "23505");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_runner_applies_each_migration_once_under_its_advisory_lock() {
    let server = common::Server::start().await;
    let migrations = tempfile::tempdir().unwrap();
    std::fs::write(
        migrations.path().join("1_accounts.sql"),
        "CREATE TABLE sx_accounts (id bigint PRIMARY KEY, owner text NOT NULL);\n\
         CREATE INDEX sx_accounts_owner ON sx_accounts (owner);",
    )
    .unwrap();
    std::fs::write(
        migrations.path().join("2_balance.sql"),
        "ALTER TABLE sx_accounts ADD COLUMN balance numeric(12,2) NOT NULL DEFAULT 0;\n\
         INSERT INTO sx_accounts (id, owner) VALUES (1, 'ada');",
    )
    .unwrap();
    let migrator = Migrator::new(migrations.path()).await.unwrap();
    // Two runners at once: the advisory lock makes one wait, and it then finds the work done.
    let (a, b) = (pool(&server).await, pool(&server).await);
    let (first, second) = tokio::join!(migrator.run(&a), migrator.run(&b));
    first.unwrap();
    second.unwrap();
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&a)
            .await
            .unwrap();
    assert_eq!(applied, [(1, true), (2, true)]);
    let accounts: Vec<(i64, String)> = sqlx::query_as("SELECT id, owner FROM sx_accounts")
        .fetch_all(&a)
        .await
        .unwrap();
    assert_eq!(accounts, [(1, "ada".to_string())]);
    // Run again: nothing to do.
    migrator.run(&a).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&a)
        .await
        .unwrap();
    assert_eq!(count, 2);
}
