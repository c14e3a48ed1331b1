//! psql, the real client, runs a script of DDL, DML, a transaction block and errors against
//! the real binary; its whole output must equal `tests/psql/session.out`, which is exactly
//! what PostgreSQL 15 prints for the same script.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_script_output_matches_postgresql() {
    let server = common::Server::start().await;
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/psql");
    let output_path = tempfile::NamedTempFile::new().unwrap();
    let output = output_path.reopen().unwrap();
    // stdout and stderr into one file, as pg_regress does, so errors land between results.
    let status = Command::new("psql")
        .args(["-X", "-f", "session.sql"])
        .current_dir(&scripts)
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
    let actual = std::fs::read_to_string(output_path.path()).unwrap();
    let expected = std::fs::read_to_string(scripts.join("session.out")).unwrap();
    if actual != expected {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .map(|(n, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", n + 1))
            .collect();
        panic!(
            "psql output differs from PostgreSQL's:\n{}\n\nfull output:\n{actual}\nserver log:\n{}",
            diff.join("\n"),
            server.log()
        );
    }
}
