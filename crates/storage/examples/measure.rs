//! Throwaway measurement behind `docs/storage-engine.md`: apply throughput and read latency of
//! `FjallStorage` on this machine. Not a benchmark suite; run it in release mode:
//!
//! ```text
//! cargo run -p cairn-storage --release --example measure [records]
//! ```

use std::sync::Arc;

use bytes::Bytes;
use cairn_clock::SystemClock;
use cairn_storage::{FjallStorage, StorageOptions};
use cairn_types::clock::Clock;
use cairn_types::storage::{
    ApplyEvent, ApplyRequest, CheckpointRequest, GcRequest, GetRequest, ScanRequest, Storage,
};
use cairn_types::{
    CommitRecord, JournalId, Key, KeyRange, Position, Result, Timestamp, TxnId, Write,
};

/// A seeded generator (SplitMix64), so runs are comparable.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn key(i: u64) -> Key {
    Key::from(format!("t/1/{i:010}").as_str())
}

fn record(next: u64, ts: u64, writes: Vec<Write>) -> ApplyEvent {
    ApplyEvent::Record {
        journal: JournalId(0),
        next: Position(next),
        record: CommitRecord {
            txn_id: TxnId(next),
            commit_ts: Timestamp(ts),
            writes,
        },
    }
}

/// Per-operation latencies in nanoseconds → (mean, p50, p99) in microseconds.
fn summary(mut nanos: Vec<u64>) -> (f64, f64, f64) {
    nanos.sort_unstable();
    let mean = nanos.iter().sum::<u64>() as f64 / nanos.len() as f64;
    let at = |q: f64| nanos[((nanos.len() - 1) as f64 * q) as usize] as f64;
    (mean / 1e3, at(0.5) / 1e3, at(0.99) / 1e3)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let records: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let clock = Arc::new(SystemClock::default());
    let dir = tempfile::tempdir().map_err(|e| cairn_types::Error::io("tempdir", e))?;
    let s = FjallStorage::open(dir.path(), clock.clone(), StorageOptions::default())?;
    let row = Bytes::from(vec![0xAB; 100]);
    let mut ts = 0u64;
    let mut next = 0u64;

    // Apply: one write per record (a pgbench-like single-row update), 100 records per apply
    // request, then one record per request.
    for per_request in [100u64, 1] {
        let n = if per_request == 1 {
            records / 10
        } else {
            records
        };
        let start = clock.monotonic_nanos();
        let mut i = 0;
        while i < n {
            let mut events = Vec::with_capacity(per_request as usize + 1);
            for _ in 0..per_request {
                ts += 10;
                next += 1;
                let write = Write {
                    key: key(i % records),
                    value: Some(row.clone()),
                };
                events.push(record(next, ts, vec![write]));
                i += 1;
            }
            events.push(ApplyEvent::Heartbeat(Timestamp(ts)));
            s.apply(ApplyRequest { events }).await?;
        }
        let secs = (clock.monotonic_nanos() - start) as f64 / 1e9;
        println!(
            "apply, {per_request:>3} records/request: {n} records in {secs:.2} s = {:.0} records/s",
            n as f64 / secs
        );
    }
    let checkpoint_start = clock.monotonic_nanos();
    s.checkpoint(CheckpointRequest {}).await?;
    println!(
        "checkpoint (fsync): {:.2} ms",
        (clock.monotonic_nanos() - checkpoint_start) as f64 / 1e6
    );

    // Point reads of random keys at the newest snapshot (each key has one or two versions).
    let mut rng = SplitMix(7);
    let mut latencies = Vec::new();
    for _ in 0..100_000 {
        let k = key(rng.next() % records);
        let start = clock.monotonic_nanos();
        let got = s
            .get(GetRequest {
                key: k,
                ts: Timestamp(ts),
            })
            .await?;
        latencies.push(clock.monotonic_nanos() - start);
        assert!(got.value.is_some());
    }
    let (mean, p50, p99) = summary(latencies);
    println!("get, newest snapshot: mean {mean:.1} µs, p50 {p50:.1} µs, p99 {p99:.1} µs");

    // A key with 1,000 versions, read at an old snapshot: still one seek.
    let hot = Key::from("hot");
    for _ in 0..10 {
        let mut events = Vec::new();
        for _ in 0..100 {
            ts += 10;
            next += 1;
            events.push(record(
                next,
                ts,
                vec![Write {
                    key: hot.clone(),
                    value: Some(row.clone()),
                }],
            ));
        }
        events.push(ApplyEvent::Heartbeat(Timestamp(ts)));
        s.apply(ApplyRequest { events }).await?;
    }
    let old = Timestamp(ts - 9_000);
    let mut latencies = Vec::new();
    for _ in 0..20_000 {
        let start = clock.monotonic_nanos();
        s.get(GetRequest {
            key: hot.clone(),
            ts: old,
        })
        .await?;
        latencies.push(clock.monotonic_nanos() - start);
    }
    let (mean, p50, p99) = summary(latencies);
    println!(
        "get, 1,000 versions, old snapshot: mean {mean:.1} µs, p50 {p50:.1} µs, p99 {p99:.1} µs"
    );

    // Scans of 100 rows.
    let mut latencies = Vec::new();
    for _ in 0..5_000 {
        let start_key = key(rng.next() % (records - 200));
        let range = KeyRange {
            start: start_key,
            end: None,
        };
        let start = clock.monotonic_nanos();
        let page = s
            .scan(ScanRequest {
                range,
                ts: Timestamp(ts),
                limit: 100,
            })
            .await?;
        latencies.push(clock.monotonic_nanos() - start);
        assert_eq!(page.rows.len(), 100);
    }
    let (mean, p50, p99) = summary(latencies);
    println!("scan 100 rows: mean {mean:.1} µs, p50 {p50:.1} µs, p99 {p99:.1} µs");

    let gc_start = clock.monotonic_nanos();
    let gc = s
        .gc(GcRequest {
            horizon: Timestamp(ts),
        })
        .await?;
    println!(
        "gc full pass: removed {} versions in {:.0} ms",
        gc.versions_removed,
        (clock.monotonic_nanos() - gc_start) as f64 / 1e6
    );
    Ok(())
}
