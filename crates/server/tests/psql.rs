//! psql, the real client, runs scripts against the real binary and its whole output must
//! equal the expected file: `tests/psql/session.sql` (DDL, DML, a transaction block, errors),
//! `tests/psql/copy.sql` (COPY in every direction and format psql speaks),
//! `tests/psql/describe.sql` (psql's `\d` family over the system catalogs) and
//! `tests/psql/information_schema.sql` print exactly what PostgreSQL 15 prints;
//! `tests/psql/plans.sql` prints Cairn's EXPLAIN output for the access paths and join
//! methods the planner chooses.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_script_output_matches_postgresql() {
    let server = common::Server::start().await;
    let actual = run_psql(&server, "session.sql");
    expect_output(&server, "session.out", &actual, "PostgreSQL's");
}

/// COPY FROM STDIN and TO STDOUT in text and CSV, psql's `\copy`, and bad data:
/// `tests/psql/copy.out` is PostgreSQL 15's output for `copy.sql`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_script_output_matches_postgresql() {
    let server = common::Server::start().await;
    let actual = run_psql(&server, "copy.sql");
    expect_output(&server, "copy.out", &actual, "PostgreSQL's");
}

/// psql's describe commands (`\d`, `\dt`, `\di`, `\dv`, `\ds`, `\dn`, `\du`, `\df`,
/// `\d NAME`), `\x` and `\timing`
/// and the catalog queries clients send: `tests/psql/describe.out` is PostgreSQL 15's
/// output for `describe.sql`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_commands_match_postgresql() {
    let server = common::Server::start().await;
    let actual = run_psql(&server, "describe.sql");
    expect_output(&server, "describe.out", &actual, "PostgreSQL's");
}

/// information_schema's views (tables, columns, constraints, key columns, foreign keys,
/// sequences, views, schemata): `tests/psql/information_schema.out` is PostgreSQL 15's output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn information_schema_matches_postgresql() {
    let server = common::Server::start().await;
    let actual = run_psql(&server, "information_schema.sql");
    expect_output(&server, "information_schema.out", &actual, "PostgreSQL's");
}

/// EXPLAIN of joins, lookups and scans: `tests/psql/plans.out` is Cairn's own expected
/// output (PostgreSQL's planner chooses and prints differently). `CAIRN_BLESS=1` rewrites it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_plans_match_golden_output() {
    let server = common::Server::start().await;
    let actual = run_psql(&server, "plans.sql");
    if std::env::var_os("CAIRN_BLESS").is_some() {
        std::fs::write(scripts().join("plans.out"), &actual).unwrap();
    }
    expect_output(&server, "plans.out", &actual, "the expected");
}

fn scripts() -> PathBuf {
    common::repository_path("tests/psql")
}

/// Runs `script` with psql against `server`; its output, stdout and stderr in one stream.
fn run_psql(server: &common::Server, script: &str) -> String {
    let output_path = tempfile::NamedTempFile::new().unwrap();
    let output = output_path.reopen().unwrap();
    // stdout and stderr into one file, as pg_regress does, so errors land between results.
    let status = Command::new("psql")
        .args(["-X", "-f", script])
        .current_dir(scripts())
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", server.addr.port().to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "postgres")
        // Under the C locale psql asks for client_encoding SQL_ASCII: that must work too.
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .status()
        .expect("psql must be installed (Debian: postgresql-client; .ci/run installs it)");
    assert!(status.success(), "psql failed: {status}");
    std::fs::read_to_string(output_path.path()).unwrap()
}

fn expect_output(server: &common::Server, expected_file: &str, actual: &str, whose: &str) {
    let expected = std::fs::read_to_string(scripts().join(expected_file)).unwrap();
    if actual != expected {
        let mut diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .map(|(n, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", n + 1))
            .collect();
        if expected.lines().count() != actual.lines().count() {
            diff.push(format!(
                "{} lines expected, {} printed",
                expected.lines().count(),
                actual.lines().count()
            ));
        }
        panic!(
            "psql output differs from {whose}:\n{}\n\nfull output:\n{actual}\nserver log:\n{}",
            diff.join("\n"),
            server.log()
        );
    }
}
