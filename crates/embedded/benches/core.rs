//! Transactional-core benchmark: durable commits (fsync on) at 1, 8 and 64 concurrent
//! committers, point reads at a snapshot, and scan throughput, through every real component.
//!
//! Run: `cargo bench -p cairn-embedded --bench core` (`CAIRN_BENCH_SECS` sets seconds per
//! measurement, default 5; `CAIRN_BENCH_DIR` the data directory's parent, default the system
//! temporary directory; `CAIRN_BENCH_COMMITTERS` a comma-separated list of committer counts, for
//! profiling one of them, default `1,8,64`; `CAIRN_BENCH_WORKERS` the runtime's worker threads,
//! default one per core). Prints a Markdown table; docs/benchmarks.md
//! records the figures.

use std::sync::Arc;

use bytes::Bytes;
use cairn_embedded::{Embedded, Options};
use cairn_types::{Key, KeyRange};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const READ_KEYS: u64 = 100_000;

fn seconds() -> u64 {
    std::env::var("CAIRN_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

fn percentile(sorted_nanos: &[u64], p: f64) -> f64 {
    if sorted_nanos.is_empty() {
        return 0.0;
    }
    let index = ((sorted_nanos.len() as f64 - 1.0) * p).round() as usize;
    sorted_nanos[index] as f64 / 1_000.0
}

struct Row {
    what: String,
    rate: f64,
    unit: &'static str,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    note: String,
}

async fn commits(db: &Arc<Embedded>, committers: u64, secs: u64) -> Row {
    let clock = db.database().clock().clone();
    let fsyncs_before = db.journal().stats().fsyncs;
    let start = clock.monotonic_nanos();
    let deadline = start + secs * 1_000_000_000;
    let tasks: Vec<_> = (0..committers)
        .map(|c| {
            let (db, clock) = (db.clone(), clock.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while clock.monotonic_nanos() < deadline {
                    let began = clock.monotonic_nanos();
                    let mut txn = db.database().begin();
                    txn.put(commit_key(committers, c, n), Bytes::from_static(b"value"));
                    txn.commit()
                        .await
                        .expect("no conflicts: every key is distinct");
                    latencies.push(clock.monotonic_nanos() - began);
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("committer"));
    }
    let elapsed = (clock.monotonic_nanos() - start) as f64 / 1e9;
    latencies.sort_unstable();
    let fsyncs = db.journal().stats().fsyncs - fsyncs_before;
    Row {
        what: format!(
            "commit, {committers} committer{}",
            if committers == 1 { "" } else { "s" }
        ),
        rate: latencies.len() as f64 / elapsed,
        unit: "commits/s",
        p50_us: Some(percentile(&latencies, 0.50)),
        p99_us: Some(percentile(&latencies, 0.99)),
        note: format!(
            "{:.1} commits per fsync",
            latencies.len() as f64 / fsyncs.max(1) as f64
        ),
    }
}

/// A distinct key per commit, built without formatting so that the harness's own CPU stays
/// out of the figures: `w/`, then the measurement, the committer and its commit number.
fn commit_key(committers: u64, committer: u64, n: u64) -> Key {
    let mut key = Vec::with_capacity(2 + 3 * 8);
    key.extend_from_slice(b"w/");
    for part in [committers, committer, n] {
        key.extend_from_slice(&part.to_be_bytes());
    }
    key.into()
}

fn read_key(n: u64) -> Key {
    format!("r/{n:08}").into()
}

async fn load(db: &Embedded) {
    for chunk in 0..READ_KEYS / 1_000 {
        let mut txn = db.database().begin();
        for n in chunk * 1_000..(chunk + 1) * 1_000 {
            txn.put(read_key(n), Bytes::from(vec![b'x'; 100]));
        }
        txn.commit().await.expect("load");
    }
}

async fn point_reads(db: &Arc<Embedded>, readers: u64, secs: u64) -> Row {
    let clock = db.database().clock().clone();
    let start = clock.monotonic_nanos();
    let deadline = start + secs * 1_000_000_000;
    let tasks: Vec<_> = (0..readers)
        .map(|r| {
            let (db, clock) = (db.clone(), clock.clone());
            tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(r);
                let txn = db.database().begin();
                let mut latencies = Vec::new();
                while clock.monotonic_nanos() < deadline {
                    let began = clock.monotonic_nanos();
                    let value = txn
                        .get(&read_key(rng.gen_range(0..READ_KEYS)))
                        .await
                        .expect("get");
                    assert!(value.is_some());
                    latencies.push(clock.monotonic_nanos() - began);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("reader"));
    }
    let elapsed = (clock.monotonic_nanos() - start) as f64 / 1e9;
    latencies.sort_unstable();
    Row {
        what: format!(
            "point read at a snapshot, {readers} reader{}",
            if readers == 1 { "" } else { "s" }
        ),
        rate: latencies.len() as f64 / elapsed,
        unit: "reads/s",
        p50_us: Some(percentile(&latencies, 0.50)),
        p99_us: Some(percentile(&latencies, 0.99)),
        note: format!("{READ_KEYS} keys of 100 bytes"),
    }
}

async fn scans(db: &Embedded, secs: u64) -> Row {
    let clock = db.database().clock().clone();
    let start = clock.monotonic_nanos();
    let deadline = start + secs * 1_000_000_000;
    let mut rows = 0usize;
    while clock.monotonic_nanos() < deadline {
        let txn = db.database().begin();
        rows += txn
            .scan(&KeyRange::prefix("r/"), usize::MAX)
            .await
            .expect("scan")
            .len();
    }
    let elapsed = (clock.monotonic_nanos() - start) as f64 / 1e9;
    Row {
        what: "full scan at a snapshot".into(),
        rate: rows as f64 / elapsed,
        unit: "rows/s",
        p50_us: None,
        p99_us: None,
        note: format!("{READ_KEYS} rows per scan"),
    }
}

async fn open(dir: &std::path::Path) -> Arc<Embedded> {
    Arc::new(Embedded::open(Options::new(dir)).await.expect("open"))
}

fn main() {
    let secs = seconds();
    let parent = std::env::var_os("CAIRN_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = match &parent {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("temporary directory");
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = std::env::var("CAIRN_BENCH_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        builder.worker_threads(workers);
    }
    let runtime = builder.enable_all().build().expect("runtime");
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        let committer_counts: Vec<u64> = std::env::var("CAIRN_BENCH_COMMITTERS")
            .unwrap_or_else(|_| "1,8,64".into())
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        // Each commit measurement starts from an empty database, so that none pays for the
        // data an earlier one left behind (a bigger memtable, more compaction).
        for &committers in &committer_counts {
            let db = open(&dir.path().join(format!("commits-{committers}"))).await;
            rows.push(commits(&db, committers, secs).await);
        }
        if committer_counts != [1, 8, 64] {
            return rows;
        }
        let db = open(&dir.path().join("reads")).await;
        load(&db).await;
        for readers in [1, 8] {
            rows.push(point_reads(&db, readers, secs).await);
        }
        rows.push(scans(&db, secs).await);
        rows
    });
    println!("| measurement | rate | p50 µs | p99 µs | note |");
    println!("|---|---:|---:|---:|---|");
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
    for row in &rows {
        println!(
            "| {} | {:.0} {} | {} | {} | {} |",
            row.what,
            row.rate,
            row.unit,
            fmt(row.p50_us),
            fmt(row.p99_us),
            row.note
        );
    }
    let rate_of = |what: &str| rows.iter().find(|r| r.what == what).map(|r| r.rate);
    if let (Some(one), Some(many)) = (
        rate_of("commit, 1 committer"),
        rate_of("commit, 64 committers"),
    ) {
        println!(
            "\ngroup commit: 64 committers = {:.1}x one committer's throughput",
            many / one
        );
    }
}
