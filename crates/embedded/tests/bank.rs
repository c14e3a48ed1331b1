//! The bank workload: many threads move money between accounts at random, retrying on
//! conflict, while auditors read every account in read-only transactions. Snapshot isolation
//! and first-committer-wins mean every audit, and the final state, add up to the same total.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use cairn_embedded::{Embedded, Options};
use cairn_types::{Key, KeyRange};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const ACCOUNTS: u64 = 16;
const OPENING_BALANCE: i64 = 1_000;
const TRANSFER_THREADS: u64 = 8;
const TRANSFERS_PER_THREAD: u64 = 60;
const AUDITOR_THREADS: u64 = 2;

fn account(n: u64) -> Key {
    format!("acct/{n:03}").into()
}

fn balance(value: &Bytes) -> i64 {
    std::str::from_utf8(value).unwrap().parse().unwrap()
}

#[test]
fn concurrent_transfers_conserve_the_total_in_every_audit() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        runtime
            .block_on(Embedded::open(Options::new(dir.path())))
            .unwrap(),
    );
    runtime.block_on(async {
        let mut txn = db.database().begin();
        for n in 0..ACCOUNTS {
            txn.put(account(n), Bytes::from(OPENING_BALANCE.to_string()));
        }
        txn.commit().await.unwrap();
    });
    let total = OPENING_BALANCE * ACCOUNTS as i64;
    let transfers_done = Arc::new(AtomicBool::new(false));
    let conflicts = Arc::new(AtomicU64::new(0));
    let audits = Arc::new(AtomicU64::new(0));

    let transferers: Vec<_> = (0..TRANSFER_THREADS)
        .map(|thread| {
            let (db, handle, conflicts) = (db.clone(), runtime.handle().clone(), conflicts.clone());
            std::thread::spawn(move || {
                let mut rng = SmallRng::seed_from_u64(thread);
                for _ in 0..TRANSFERS_PER_THREAD {
                    let from = rng.gen_range(0..ACCOUNTS);
                    let to = (from + rng.gen_range(1..ACCOUNTS)) % ACCOUNTS;
                    let amount = rng.gen_range(1..=100);
                    loop {
                        let attempt = handle.block_on(async {
                            let mut txn = db.database().begin();
                            let a = balance(&txn.get(&account(from)).await?.unwrap());
                            let b = balance(&txn.get(&account(to)).await?.unwrap());
                            txn.put(account(from), Bytes::from((a - amount).to_string()));
                            txn.put(account(to), Bytes::from((b + amount).to_string()));
                            txn.commit().await
                        });
                        match attempt {
                            Ok(_) => break,
                            Err(e) if e.is_retryable() => {
                                conflicts.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("transfer failed: {e}"),
                        }
                    }
                }
            })
        })
        .collect();

    let auditors: Vec<_> = (0..AUDITOR_THREADS)
        .map(|_| {
            let (db, handle) = (db.clone(), runtime.handle().clone());
            let (done, audits) = (transfers_done.clone(), audits.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    let sum: i64 = handle.block_on(async {
                        let txn = db.database().begin();
                        let rows = txn.scan(&KeyRange::prefix("acct/"), 1_000).await.unwrap();
                        assert_eq!(rows.len() as u64, ACCOUNTS);
                        let sum = rows.iter().map(|(_, v)| balance(v)).sum();
                        assert_eq!(txn.commit().await.unwrap().commit_ts, None);
                        sum
                    });
                    assert_eq!(sum, total, "an audit saw money appear or vanish");
                    audits.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    for t in transferers {
        t.join().unwrap();
    }
    transfers_done.store(true, Ordering::Release);
    for a in auditors {
        a.join().unwrap();
    }

    let final_sum: i64 = runtime.block_on(async {
        let txn = db.database().begin();
        txn.scan(&KeyRange::prefix("acct/"), 1_000)
            .await
            .unwrap()
            .iter()
            .map(|(_, v)| balance(v))
            .sum()
    });
    assert_eq!(final_sum, total);
    assert!(
        audits.load(Ordering::Relaxed) > 0,
        "auditors ran while transfers did"
    );
    eprintln!(
        "{} transfers, {} conflicts retried, {} audits",
        TRANSFER_THREADS * TRANSFERS_PER_THREAD,
        conflicts.load(Ordering::Relaxed),
        audits.load(Ordering::Relaxed)
    );
}
