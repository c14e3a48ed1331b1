//! Python clients, as applications use them, against the real binary: `tests/python/clients.py`
//! drives psycopg 3 (parameters, server-side prepared statements, binary results, errors with
//! SQLSTATE, savepoints, COPY, pipeline mode, named cursors, LISTEN/NOTIFY, cancel),
//! SQLAlchemy 2 (create_all, the ORM, reflection of tables, columns, keys and indexes), and
//! asyncpg (binary protocol, prepared statements, COPY, cursors, type introspection, a pool)
//! Alembic (autogenerate against the reflected schema, then the upgrade in one transaction)
//! and Django (`migrate` of its built-in apps and an app with a foreign key, the ORM, and
//! `migrate shop zero`).
//! `.ci/run` installs them from PyPI.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_work() {
    let server = common::Server::start().await;
    let port = server.addr.port().to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg("clients.py")
            .current_dir(common::repository_path("tests/python"))
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", port)
            .env("PGUSER", "postgres")
            .output()
            .expect("python3 runs (.ci/run installs psycopg and SQLAlchemy)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/python/clients.py failed:\n{stdout}\n{stderr}"
    );
    assert!(
        [
            "psycopg: ok",
            "sqlalchemy: ok",
            "asyncpg: ok",
            "alembic: ok",
            "django: ok",
        ]
        .iter()
        .all(|client| stdout.contains(client)),
        "{stdout}"
    );
}
