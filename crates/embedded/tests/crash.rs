//! Crash safety: a child process commits transactions and is killed with SIGKILL at random
//! moments; after each kill the database reopens on the same directory, and every
//! acknowledged commit is there, no transaction is partly visible, and the journal reopened
//! cleanly. Then the child carries on from there.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cairn_embedded::{Embedded, Options};
use cairn_types::KeyRange;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const CYCLES: usize = 20;

/// Every `t/N/*` row, grouped by `N`: the parts present and the values they hold.
fn committed(dir: &std::path::Path) -> BTreeMap<u64, Vec<(String, u64)>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = Embedded::open(Options::new(dir))
            .await
            .expect("reopens cleanly after SIGKILL");
        let txn = db.database().begin();
        let rows = txn.scan(&KeyRange::prefix("t/"), usize::MAX).await.unwrap();
        let mut by_txn: BTreeMap<u64, Vec<(String, u64)>> = BTreeMap::new();
        for (key, value) in rows {
            let key = String::from_utf8(key.as_bytes().to_vec()).unwrap();
            let mut parts = key.split('/').skip(1);
            let n: u64 = parts.next().unwrap().parse().unwrap();
            let part = parts.next().unwrap().to_string();
            let value: u64 = std::str::from_utf8(&value).unwrap().parse().unwrap();
            by_txn.entry(n).or_default().push((part, value));
        }
        by_txn
    })
}

#[test]
fn acknowledged_commits_survive_sigkill_and_no_transaction_is_partly_visible() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(0xC0FFEE);
    let mut acknowledged = BTreeSet::new();
    let mut next_n = 0;
    for cycle in 0..CYCLES {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn-crash-child"))
            .arg(dir.path())
            .arg(next_n.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        assert_eq!(
            lines.recv_timeout(Duration::from_secs(30)).unwrap(),
            "ready",
            "cycle {cycle}"
        );
        // Let it commit a random number of transactions, then kill it mid-flight.
        let target = rng.gen_range(0..300);
        let mut acked_this_cycle = 0;
        while acked_this_cycle < target {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .expect("the child commits");
            if let Some(n) = line.strip_prefix("ack ") {
                acknowledged.insert(n.parse::<u64>().unwrap());
                acked_this_cycle += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Acks written before the kill still count.
        reader.join().unwrap();
        for line in lines.try_iter() {
            if let Some(n) = line.strip_prefix("ack ") {
                acknowledged.insert(n.parse::<u64>().unwrap());
            }
        }

        let present = committed(dir.path());
        for n in &acknowledged {
            assert!(
                present.contains_key(n),
                "cycle {cycle}: acknowledged transaction {n} was lost"
            );
        }
        for (n, parts) in &present {
            let names: Vec<&str> = parts.iter().map(|(p, _)| p.as_str()).collect();
            assert_eq!(
                names,
                ["a", "b", "c"],
                "cycle {cycle}: transaction {n} is partly visible"
            );
            assert!(
                parts.iter().all(|(_, v)| v == n),
                "cycle {cycle}: transaction {n} has foreign values"
            );
        }
        next_n = present
            .keys()
            .chain(acknowledged.iter())
            .max()
            .map_or(0, |n| n + 1);
    }
    assert!(
        acknowledged.len() > CYCLES,
        "the child committed too little to test anything"
    );
    eprintln!(
        "{CYCLES} kills, {} acknowledged commits all present",
        acknowledged.len()
    );
}
