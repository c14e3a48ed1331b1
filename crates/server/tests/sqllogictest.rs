//! Runs every `tests/slt/*.slt` file against the real `cairn` binary over the wire.
//!
//! The expectations in those files are PostgreSQL 15's: `scripts/slt-postgres` runs this same
//! test against a local PostgreSQL by setting `CAIRN_SLT_SERVER` to a libpq-style connection
//! string (for example `host=/tmp/sock port=54329 user=postgres`), in which case no Cairn is
//! started.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::path::PathBuf;

use async_trait::async_trait;
use sqllogictest::{DBOutput, DefaultColumnType};
use tokio_postgres::SimpleQueryMessage;

/// One connection, speaking the simple query protocol as psql does.
struct Connection {
    client: tokio_postgres::Client,
}

#[async_trait]
impl sqllogictest::AsyncDB for Connection {
    type Error = tokio_postgres::Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Self::Error> {
        let mut columns: Option<usize> = None;
        let mut rows = Vec::new();
        let mut affected = 0;
        for message in self.client.simple_query(sql).await? {
            match message {
                SimpleQueryMessage::RowDescription(description) => {
                    columns = Some(description.len())
                }
                SimpleQueryMessage::Row(row) => {
                    columns = Some(row.len());
                    let cells = (0..row.len())
                        .map(|i| match row.get(i) {
                            None => "NULL".to_string(),
                            Some("") => "(empty)".to_string(),
                            Some(text) => text.to_string(),
                        })
                        .collect();
                    rows.push(cells);
                }
                SimpleQueryMessage::CommandComplete(n) => affected = n,
                _ => {}
            }
        }
        Ok(match columns {
            Some(n) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            },
            None => DBOutput::StatementComplete(affected),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "cairn"
    }

    fn error_sql_state(err: &Self::Error) -> Option<String> {
        err.code().map(|code| code.code().to_string())
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = common::repository_path("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files_pass() {
    let (config, _server) = match std::env::var("CAIRN_SLT_SERVER") {
        Ok(target) => (target.parse::<tokio_postgres::Config>().unwrap(), None),
        Err(_) => {
            let server = common::Server::start().await;
            (server.config(), Some(server))
        }
    };
    let mut failures = Vec::new();
    for file in slt_files() {
        let config = config.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let config = config.clone();
            async move {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client.batch_execute("SET TimeZone = 'UTC'").await?;
                Ok(Connection { client })
            }
        });
        runner.with_column_validator(|_, _| true);
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} file(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
