//! pgbench, unmodified, against the real binary: `pgbench -i -s 10` with its default steps
//! (tables, COPY of a million accounts, VACUUM, primary keys added to the loaded tables),
//! then TPC-B-like and select-only runs at 8 clients in simple and prepared protocol. Under
//! `--max-tries` the conflicts that optimistic concurrency reports (40001) are retried, and
//! no transaction may fail. `.ci/run` installs pgbench (Debian's postgresql-15 package).
//! Each run lasts `CAIRN_PGBENCH_SECS` seconds (30 by default).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::process::Command;

fn pgbench(server: &common::Server, args: &[&str]) -> String {
    let output = Command::new("pgbench")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.addr.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(args)
        .arg("postgres")
        .output()
        .expect("pgbench runs (.ci/run installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pgbench {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout + &stderr
}

/// The number after `label` in pgbench's report.
fn reported(report: &str, label: &str) -> u64 {
    let line = report
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no \"{label}\" in:\n{report}"));
    line[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in \"{line}\""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_initialises_and_runs_with_no_failed_transactions() {
    let server = common::Server::start().await;
    let seconds = std::env::var("CAIRN_PGBENCH_SECS").unwrap_or_else(|_| "30".into());
    let init = tokio::task::block_in_place(|| pgbench(&server, &["-i", "-s", "10", "-q"]));
    assert!(init.contains("done in"), "{init}");
    for (script, mode) in [
        ("tpcb-like", "simple"),
        ("tpcb-like", "prepared"),
        ("select-only", "simple"),
        ("select-only", "prepared"),
    ] {
        let report = tokio::task::block_in_place(|| {
            pgbench(
                &server,
                &[
                    "-b",
                    script,
                    "-M",
                    mode,
                    "-c",
                    "8",
                    "-j",
                    "2",
                    "-T",
                    &seconds,
                    "--max-tries",
                    "1000",
                ],
            )
        });
        let processed = reported(&report, "number of transactions actually processed:");
        let failed = reported(&report, "number of failed transactions:");
        assert!(
            processed > 0,
            "{script} {mode}: nothing processed\n{report}"
        );
        assert_eq!(failed, 0, "{script} {mode}: failed transactions\n{report}");
        println!("{script} {mode}: {processed} transactions, none failed");
    }
    // The accounts table holds what -s 10 loads, and TPC-B's history recorded the runs.
    let client = server.connect().await;
    let accounts: i64 = client
        .query_one("SELECT count(*) FROM pgbench_accounts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(accounts, 1_000_000);
    // Every committed TPC-B transaction added its delta to one account, one teller and one
    // branch; contended teller and branch rows commit through refreshes, which recompute the
    // row over its newest version, so a lost or doubled increment would show here.
    let sums = client
        .query_one(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts), \
                    (SELECT sum(tbalance) FROM pgbench_tellers), \
                    (SELECT sum(bbalance) FROM pgbench_branches)",
            &[],
        )
        .await
        .unwrap();
    let (accounts, tellers, branches): (i64, i64, i64) = (sums.get(0), sums.get(1), sums.get(2));
    assert_eq!(
        (tellers, branches),
        (accounts, accounts),
        "the balances of accounts, tellers and branches sum alike"
    );
}
