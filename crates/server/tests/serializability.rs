//! SERIALIZABLE checked from the outside: concurrent sessions run short random transactions
//! over a few rows, retrying on 40001, and the committed history must have an acyclic
//! dependency graph (Adya's DSG: write-read, write-write and read-write anti-dependency
//! edges).
//!
//! Every written value is unique (`txn * 100 + k`), so a value read names the transaction
//! that wrote it, and every write is a read-modify-write, so each version names the version
//! it replaced: the version order of a key is the chain from its initial value through those
//! reads, and it must end at the key's final value. A scripted write skew at REPEATABLE READ
//! shows that the checker does find the cycle that SERIALIZABLE refuses.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// Rows `k` in `0..KEYS`.
const KEYS: i32 = 6;
const SESSIONS: u64 = 8;
const TXNS_PER_SESSION: usize = 30;
const SEED: u64 = 0x00ca_1124;

/// Transaction 0 wrote the initial values.
const INITIAL: u64 = 0;

fn value_of(txn: u64, k: i32) -> i32 {
    i32::try_from(txn).unwrap() * 100 + k
}

fn writer_of(value: i32, k: i32) -> u64 {
    assert_eq!(value % 100, k, "value {value} was not written to key {k}");
    u64::try_from(value / 100).unwrap()
}

/// What one committed transaction observed and did.
#[derive(Clone, Debug, Default)]
struct Record {
    id: u64,
    /// Key → the value it read (the first read, before any own write).
    reads: BTreeMap<i32, i32>,
    /// Key → the value it wrote.
    writes: BTreeMap<i32, i32>,
}

/// One transaction in progress on a session, recording as it goes.
struct Txn<'a> {
    client: &'a Client,
    record: Record,
}

type Step<T> = Result<T, tokio_postgres::Error>;

impl<'a> Txn<'a> {
    async fn begin(client: &'a Client, id: u64, level: &str) -> Step<Txn<'a>> {
        client
            .batch_execute(&format!("BEGIN ISOLATION LEVEL {level}"))
            .await?;
        Ok(Txn {
            client,
            record: Record {
                id,
                ..Record::default()
            },
        })
    }

    /// Notes a value read: the first read of a key is recorded, and a later read of the same
    /// key must agree with it (or with the transaction's own write).
    fn observe(&mut self, k: i32, value: i32) {
        if let Some(written) = self.record.writes.get(&k) {
            assert_eq!(
                value, *written,
                "T{} reads its own write of {k}",
                self.record.id
            );
        } else if let Some(first) = self.record.reads.get(&k) {
            assert_eq!(
                value, *first,
                "T{} read {k} twice differently",
                self.record.id
            );
        } else {
            self.record.reads.insert(k, value);
        }
    }

    async fn read(&mut self, k: i32) -> Step<i32> {
        let row = self
            .client
            .query_one("SELECT v FROM kv WHERE k = $1", &[&k])
            .await?;
        let value = row.get(0);
        self.observe(k, value);
        Ok(value)
    }

    /// A full scan: reads every key (and covers the whole table's key range).
    async fn scan(&mut self) -> Step<()> {
        let rows = self.client.query("SELECT k, v FROM kv", &[]).await?;
        assert_eq!(rows.len(), KEYS as usize, "T{} scan", self.record.id);
        for row in rows {
            self.observe(row.get(0), row.get(1));
        }
        Ok(())
    }

    /// Read-modify-write: reads the key, then overwrites it with this transaction's value.
    async fn read_modify_write(&mut self, k: i32) -> Step<()> {
        self.read(k).await?;
        let value = value_of(self.record.id, k);
        let updated = self
            .client
            .execute("UPDATE kv SET v = $1 WHERE k = $2", &[&value, &k])
            .await?;
        assert_eq!(updated, 1);
        self.record.writes.insert(k, value);
        Ok(())
    }

    async fn commit(self) -> Step<Record> {
        self.client.batch_execute("COMMIT").await?;
        Ok(self.record)
    }
}

fn is_serialization_failure(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
}

async fn create_kv(server: &common::Server) {
    let values: Vec<String> = (0..KEYS)
        .map(|k| format!("({k}, {})", value_of(INITIAL, k)))
        .collect();
    server
        .connect()
        .await
        .batch_execute(&format!(
            "CREATE TABLE kv (k int PRIMARY KEY, v int); INSERT INTO kv VALUES {}",
            values.join(", ")
        ))
        .await
        .unwrap();
}

async fn final_values(server: &common::Server) -> BTreeMap<i32, i32> {
    let rows = server
        .connect()
        .await
        .query("SELECT k, v FROM kv", &[])
        .await
        .unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

// ---- the checker ------------------------------------------------------------------------

/// Why one transaction must precede another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Edge {
    /// Write-read: the target read the source's version.
    Wr,
    /// Write-write: the target overwrote the source's version.
    Ww,
    /// Read-write anti-dependency: the source read a version the target overwrote.
    Rw,
}

/// An edge as its target, kind and key.
type Successor = (u64, Edge, i32);

/// An edge of a cycle: source, kind, key, target.
type CycleEdge = (u64, Edge, i32, u64);

/// The dependency graph over committed transactions (and transaction 0, the initial values).
struct Graph {
    edges: BTreeMap<u64, BTreeSet<Successor>>,
}

impl Graph {
    /// Builds the graph, checking on the way that every value read was written by a
    /// committed transaction and that each key's versions form one chain ending at its final
    /// value.
    fn build(records: &[Record], finals: &BTreeMap<i32, i32>) -> Graph {
        let committed: BTreeSet<u64> = records.iter().map(|r| r.id).collect();
        assert_eq!(committed.len(), records.len(), "transaction ids are unique");
        let mut edges: BTreeMap<u64, BTreeSet<Successor>> = BTreeMap::new();
        let mut add = |from: u64, to: u64, edge: Edge, k: i32| {
            if from != to {
                edges.entry(from).or_default().insert((to, edge, k));
            }
        };
        // Per key: version (its writer) → the transactions that read it, and → the
        // transactions that overwrote it (read-modify-writes name what they replaced).
        let mut readers: BTreeMap<(i32, u64), Vec<u64>> = BTreeMap::new();
        let mut overwriters: BTreeMap<(i32, u64), Vec<u64>> = BTreeMap::new();
        for record in records {
            for (&k, &value) in &record.reads {
                let writer = writer_of(value, k);
                assert!(
                    writer == INITIAL || committed.contains(&writer),
                    "T{} read {k} = {value}, written by T{writer}, which never committed",
                    record.id
                );
                readers.entry((k, writer)).or_default().push(record.id);
                add(writer, record.id, Edge::Wr, k);
            }
            for &k in record.writes.keys() {
                let replaced = writer_of(record.reads[&k], k);
                overwriters
                    .entry((k, replaced))
                    .or_default()
                    .push(record.id);
                add(replaced, record.id, Edge::Ww, k);
            }
        }
        for ((k, version), overwriting) in &overwriters {
            for reader in readers.get(&(*k, *version)).into_iter().flatten() {
                for overwriter in overwriting {
                    add(*reader, *overwriter, Edge::Rw, *k);
                }
            }
        }
        // The version chain of each key: from the initial value, each version overwritten by
        // exactly one transaction, ending at the final value.
        for k in 0..KEYS {
            let mut version = INITIAL;
            let mut forked = false;
            while let Some(next) = overwriters.get(&(k, version)) {
                if next.len() != 1 {
                    // Two committed writers replaced the same version (a lost update): the
                    // graph has their rw-rw cycle, which the cycle check reports.
                    forked = true;
                    break;
                }
                version = next[0];
            }
            if !forked {
                assert_eq!(
                    value_of(version, k),
                    finals[&k],
                    "key {k}: the version chain does not end at the final value"
                );
            }
        }
        Graph { edges }
    }

    /// A cycle, as the list of its edges, if there is one (depth-first search).
    fn cycle(&self) -> Option<Vec<CycleEdge>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            OnPath,
            Done,
        }
        let mut marks: BTreeMap<u64, Mark> = BTreeMap::new();
        for &start in self.edges.keys() {
            if marks.contains_key(&start) {
                continue;
            }
            // Iterative DFS: the path of (node, its remaining successors).
            let mut path: Vec<(u64, Vec<Successor>)> = Vec::new();
            let successors = |n: u64| -> Vec<Successor> {
                self.edges.get(&n).into_iter().flatten().copied().collect()
            };
            marks.insert(start, Mark::OnPath);
            path.push((start, successors(start)));
            while let Some((node, remaining)) = path.last_mut() {
                let node = *node;
                match remaining.pop() {
                    None => {
                        marks.insert(node, Mark::Done);
                        path.pop();
                    }
                    Some((next, edge, k)) => match marks.get(&next) {
                        Some(Mark::Done) => {}
                        Some(Mark::OnPath) => {
                            let from = path.iter().position(|(n, _)| *n == next).unwrap();
                            let mut cycle: Vec<CycleEdge> = Vec::new();
                            for window in path[from..].windows(2) {
                                let (a, b) = (window[0].0, window[1].0);
                                let (_, e, key) =
                                    *self.edges[&a].iter().find(|(to, _, _)| *to == b).unwrap();
                                cycle.push((a, e, key, b));
                            }
                            cycle.push((node, edge, k, next));
                            return Some(cycle);
                        }
                        None => {
                            marks.insert(next, Mark::OnPath);
                            path.push((next, successors(next)));
                        }
                    },
                }
            }
        }
        None
    }
}

// ---- the tests --------------------------------------------------------------------------

/// One session's share of the random run: its committed records and how many attempts
/// failed with 40001.
async fn run_session(
    server: Arc<common::Server>,
    level: &'static str,
    session: u64,
    ids: Arc<AtomicU64>,
) -> (Vec<Record>, usize) {
    let client = server.connect().await;
    let mut rng = SmallRng::seed_from_u64(SEED ^ session.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut committed = Vec::new();
    let mut aborts = 0;
    for _ in 0..TXNS_PER_SESSION {
        // The transaction's shape is fixed before the first attempt: retries redo the same
        // operations (with a new id, so its values stay unique).
        let operations: Vec<(u8, i32)> = (0..rng.gen_range(2..=4))
            .map(|_| (rng.gen_range(0..10), rng.gen_range(0..KEYS)))
            .collect();
        loop {
            let id = ids.fetch_add(1, Ordering::Relaxed);
            let attempt = async {
                let mut txn = Txn::begin(&client, id, level).await?;
                for &(kind, k) in &operations {
                    match kind {
                        0..=4 => {
                            txn.read(k).await?;
                        }
                        5 => txn.scan().await?,
                        _ => txn.read_modify_write(k).await?,
                    }
                }
                txn.commit().await
            };
            match attempt.await {
                Ok(record) => {
                    committed.push(record);
                    break;
                }
                Err(error) if is_serialization_failure(&error) => {
                    aborts += 1;
                    // A failed COMMIT ends the block; a failed statement leaves it failed.
                    client.batch_execute("ROLLBACK").await.unwrap();
                }
                Err(error) => panic!("session {session}, T{id}: {error}"),
            }
        }
    }
    (committed, aborts)
}

/// Runs the random workload at `level` on a fresh server: the committed records, how many
/// attempts failed with 40001, and the final values.
async fn random_run(level: &'static str) -> (Vec<Record>, usize, BTreeMap<i32, i32>) {
    let server = Arc::new(common::Server::start().await);
    create_kv(&server).await;
    let ids = Arc::new(AtomicU64::new(1));
    let sessions: Vec<_> = (0..SESSIONS)
        .map(|session| tokio::spawn(run_session(server.clone(), level, session, ids.clone())))
        .collect();
    let mut records = Vec::new();
    let mut aborts = 0;
    for session in sessions {
        let (committed, failed) = common::patiently("a session's transactions", session)
            .await
            .unwrap();
        records.extend(committed);
        aborts += failed;
    }
    let finals = final_values(&server).await;
    let writers = records.iter().filter(|r| !r.writes.is_empty()).count();
    eprintln!(
        "{level}: {} committed ({writers} writing), {aborts} attempts failed with 40001",
        records.len()
    );
    assert_eq!(records.len(), SESSIONS as usize * TXNS_PER_SESSION);
    (records, aborts, finals)
}

/// Eight sessions, 30 transactions each of 2–4 reads, full scans and read-modify-writes over
/// six rows at SERIALIZABLE: every read names a committed writer, each key's versions form one
/// chain ending at its final value, and the dependency graph has no cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_random_serializable_history_has_no_dependency_cycle() {
    let (records, aborts, finals) = random_run("SERIALIZABLE").await;
    assert!(
        aborts > 0,
        "the run had no conflicts: too little contention to test anything"
    );
    let graph = Graph::build(&records, &finals);
    if let Some(cycle) = graph.cycle() {
        let involved: BTreeSet<u64> = cycle.iter().map(|(a, ..)| *a).collect();
        let details: Vec<&Record> = records
            .iter()
            .filter(|r| involved.contains(&r.id))
            .collect();
        panic!("dependency cycle at SERIALIZABLE: {cycle:?}\n{details:#?}");
    }
}

/// The same workload at REPEATABLE READ commits write skews (reads are not validated), and
/// the checker finds them: with this much contention dozens of transactions lie on cycles,
/// so finding none would mean the checker is blind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_random_repeatable_read_history_has_cycles_the_checker_finds() {
    let (records, _, finals) = random_run("REPEATABLE READ").await;
    let cycle = Graph::build(&records, &finals).cycle();
    let cycle = cycle.expect("write skew at REPEATABLE READ");
    assert!(
        cycle.iter().any(|(_, edge, ..)| *edge == Edge::Rw),
        "a snapshot-isolation cycle has an anti-dependency: {cycle:?}"
    );
}

/// The checker on hand-written histories: a lost update (two writers replaced the same
/// version) is a cycle, and so is read skew; a serial history is not.
#[test]
fn checker_reports_lost_update_and_read_skew_but_not_a_serial_history() {
    let record = |id: u64, reads: &[(i32, u64)], writes: &[i32]| Record {
        id,
        reads: reads.iter().map(|&(k, w)| (k, value_of(w, k))).collect(),
        writes: writes.iter().map(|&k| (k, value_of(id, k))).collect(),
    };
    let mut finals: BTreeMap<i32, i32> = (0..KEYS).map(|k| (k, value_of(INITIAL, k))).collect();

    // T1 and T2 both read key 0's initial value and overwrote it.
    let lost = [record(1, &[(0, 0)], &[0]), record(2, &[(0, 0)], &[0])];
    finals.insert(0, value_of(2, 0));
    let mut cycle = Graph::build(&lost, &finals).cycle().expect("lost update");
    cycle.sort_unstable();
    assert_eq!(cycle, vec![(1, Edge::Rw, 0, 2), (2, Edge::Rw, 0, 1)]);

    // T2 rewrites keys 0 and 1; T1 read key 0 before T2 and key 1 after it.
    let skew = [
        record(1, &[(0, 0), (1, 2)], &[]),
        record(2, &[(0, 0), (1, 0)], &[0, 1]),
    ];
    finals.insert(1, value_of(2, 1));
    let mut cycle = Graph::build(&skew, &finals).cycle().expect("read skew");
    cycle.sort_unstable();
    assert_eq!(cycle, vec![(1, Edge::Rw, 0, 2), (2, Edge::Wr, 1, 1)]);

    // Serial: T1, then T2 reading and overwriting T1's writes, then T3 reading everything.
    let serial = [
        record(1, &[(0, 0), (1, 0)], &[0, 1]),
        record(2, &[(0, 1), (1, 1)], &[0]),
        record(3, &[(0, 2), (1, 1)], &[]),
    ];
    finals.insert(0, value_of(2, 0));
    finals.insert(1, value_of(1, 1));
    assert_eq!(Graph::build(&serial, &finals).cycle(), None);
}

/// Two sessions run write skew step by step: each reads keys 0 and 1 and rewrites a
/// different one. At REPEATABLE READ both commit and the checker finds the rw-rw cycle; at
/// SERIALIZABLE the second COMMIT fails with 40001 and the committed history is acyclic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checker_finds_the_write_skew_cycle_at_repeatable_read_and_none_at_serializable() {
    for level in ["REPEATABLE READ", "SERIALIZABLE"] {
        let server = common::Server::start().await;
        create_kv(&server).await;
        let (a, b) = (server.connect().await, server.connect().await);
        let mut t1 = Txn::begin(&a, 1, level).await.unwrap();
        let mut t2 = Txn::begin(&b, 2, level).await.unwrap();
        for k in [0, 1] {
            assert_eq!(t1.read(k).await.unwrap(), value_of(INITIAL, k));
            assert_eq!(t2.read(k).await.unwrap(), value_of(INITIAL, k));
        }
        t1.read_modify_write(0).await.unwrap();
        t2.read_modify_write(1).await.unwrap();
        let mut records = vec![t1.commit().await.unwrap()];
        let second = t2.commit().await;
        let finals = final_values(&server).await;
        let cycle = if level == "SERIALIZABLE" {
            assert!(
                is_serialization_failure(&second.expect_err("write skew at SERIALIZABLE")),
                "40001"
            );
            assert_eq!(finals[&1], value_of(INITIAL, 1), "T2's write was refused");
            Graph::build(&records, &finals).cycle()
        } else {
            records.push(second.unwrap());
            assert_eq!((finals[&0], finals[&1]), (value_of(1, 0), value_of(2, 1)));
            Graph::build(&records, &finals).cycle()
        };
        if level == "SERIALIZABLE" {
            assert_eq!(cycle, None);
        } else {
            let mut cycle = cycle.expect("the checker finds write skew");
            cycle.sort_unstable();
            assert_eq!(cycle, vec![(1, Edge::Rw, 1, 2), (2, Edge::Rw, 0, 1)]);
        }
    }
}
