//! The adjudicator: decides, for the keys it owns, whether a transaction may commit, and at
//! which timestamp (DESIGN §1–§3).
//!
//! ```text
//!  QP ── commit(read_ts, writes, locks) ──► adjudicator ── append(record @ commit_ts) ──► journal
//!                                          │  last commit_ts per key (recent only)
//!                                          │  commit point (never goes backwards)
//!                                          │  memory floor (below it: not remembered)
//! ```
//!
//! **The rule.** A transaction conflicts when any key of its conflict set (writes and locks)
//! was committed after its `read_ts`: `last_commit[key] > read_ts`. Because the adjudicator
//! records a key's new `commit_ts` the moment it accepts the commit, before the journal append
//! is durable, a key whose commit is still *pending* conflicts the same way. First committer
//! wins; the loser gets [`cairn_types::Error::Conflict`] naming the key.
//!
//! **Choosing `commit_ts`.** Greater than `read_ts`, than the commit point (so greater than
//! every `commit_ts` seen on any key), and at least `clock.now().latest` plus a *lead*: half
//! the journal's recent append latency, at most 1 ms
//! ([`AdjudicatorOptions::commit_lead_percent`]). A
//! transaction that starts while the commit is in its fsync then takes a snapshot below it,
//! and reads without waiting for that fsync (the commit is not acknowledged yet, so missing
//! it is no stale read); commit-wait (in the QP) rarely has anything left to wait once the
//! append is durable. The timestamp is chosen and the journal append is *called* under one
//! lock, so journal order equals `commit_ts` order; the append is *awaited* outside the
//! lock, so concurrent commits share one fsync (the journal's call-order contract makes this
//! safe).
//!
//! **Heartbeats.** When idle, storage learns it is complete to `t` only from a promise that
//! nothing at or below `t` will commit. [`LocalAdjudicator::heartbeat`] promises
//! `now().latest` (raising the commit point to it if it is below) and appends that promise,
//! ordered with the records, to the journal. The promise is not the commit point, which the
//! lead may put ahead of now: a read needs completeness to its snapshot, no further, and the
//! journal publishes a promise below every record still in its fsync at once.
//! [`run_heartbeats`] does so periodically and whenever storage signals a waiting read. A
//! quiet heartbeat (`HeartbeatRequest::quiet`) is appended as `Entry::QuietHeartbeat`, for a
//! caller that delivers it to storage itself.
//!
//! **Memory and restart.** The per-key map keeps commits newer than `now - memory` (DESIGN §4:
//! the maximum transaction age), and at most `max_remembered_keys` of them, forgetting the
//! oldest first under a high commit rate. It is keyed by seeded 64-bit fingerprints of the
//! keys (16 bytes a slot): keys sharing one could only conflict spuriously, never miss a
//! conflict. Transactions that write with `read_ts` below the memory floor
//! are refused with a conflict, because what they might conflict with is forgotten. On open
//! the adjudicator fences the journal with a new epoch (a stale adjudicator can no longer
//! append) and takes the journal's highest timestamp as both its commit point and its memory
//! floor: a conservative bound instead of replaying the tail, so it never accepts a commit that
//! conflicts with one made before the restart.
//!
//! **SERIALIZABLE.** A request may also carry validated `reads` and `read_ranges`: keys and
//! ranges the transaction read. They conflict with commits after `read_ts` exactly like the
//! conflict set does, but are not recorded, so readers do not conflict with each other. Range
//! checks walk the commits newer than `read_ts` in the history.
//!
//! Shortcuts: one adjudicator owns every key (the vote messages for several exist in
//! `cairn_types::adjudicator`); lock-only transactions are journaled as records without writes
//! so that their commit point is durable like any other.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher as _, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cairn_types::adjudicator::{
    Adjudicator, CommitRequest, CommitResponse, HeartbeatRequest, HeartbeatResponse, StatusRequest,
    StatusResponse,
};
use cairn_types::clock::Clock;
use cairn_types::journal::{self, AppendRequest, Entry, Epoch, FenceRequest, Journal};
use cairn_types::seam::BoxFuture;
use cairn_types::{CommitRecord, Conflict, ConflictKind, Error, Key, Result, Timestamp};
use tokio::sync::Notify;

/// Tuning for [`LocalAdjudicator`].
#[derive(Clone, Debug)]
pub struct AdjudicatorOptions {
    /// How long a key's last commit is remembered: the maximum transaction age. Transactions
    /// older than this that write are refused.
    pub memory: Duration,
    /// At most this many remembered commits' keys; past it the oldest are forgotten early
    /// (raising the memory floor), so memory stays bounded under any commit rate.
    pub max_remembered_keys: usize,
    /// `commit_ts` is chosen this fraction (in percent) of the journal's recent append
    /// latency ahead of `now().latest`, so that a transaction starting while the commit is in
    /// its fsync reads below it instead of waiting for it. The higher, the more often a
    /// commit waits after its fsync for the clock to pass its `commit_ts` (commit-wait), and
    /// short waits spin: on the 2-CPU development VM, 100 lowered single-client TPC-B by
    /// about a tenth and 200 halved 8-client TPC-B (docs/benchmarks.md). Zero turns it off;
    /// the lead is never more than 1 ms, however slow the appends were.
    pub commit_lead_percent: u64,
}

impl Default for AdjudicatorOptions {
    fn default() -> Self {
        AdjudicatorOptions {
            memory: Duration::from_secs(300),
            max_remembered_keys: 4_000_000,
            commit_lead_percent: 50,
        }
    }
}

/// The commit lead's ceiling: a few ordinary fsyncs' worth, whatever the latency average
/// says after a stall (a commit may wait in commit-wait as long as its lead).
const MAX_COMMIT_LEAD_NANOS: u64 = 1_000_000;

/// The one adjudicator of an embedded Cairn: owns every key.
pub struct LocalAdjudicator {
    journal: Arc<dyn Journal>,
    clock: Arc<dyn Clock>,
    epoch: Epoch,
    memory_nanos: u64,
    max_remembered_keys: usize,
    commit_lead_percent: u64,
    /// Moving average of the journal append's latency in nanoseconds (clock's monotonic
    /// time): what `commit_ts` leads `now().latest` by a fraction of.
    append_nanos: AtomicU64,
    fingerprints: Fingerprints,
    state: Mutex<State>,
}

struct State {
    /// Every commit (and heartbeat promise) so far is at or below this.
    commit_point: Timestamp,
    /// Last commit of each remembered key, by the key's [`Fingerprints`]. Keys sharing a
    /// fingerprint only make a commit conflict spuriously (one chance in 2^64 per pair),
    /// never miss a conflict. A fingerprint slot is 16 bytes against 40 for the key itself,
    /// and the map grows without hashing keys again: its growth, under the lock every commit
    /// takes, was a quarter of the CPU of 64 committers writing fresh keys (zeroing the
    /// pages of each doubled table).
    last_commit: HashMap<u64, Timestamp, BuildHasherDefault<Fingerprinted>>,
    /// Remembered commits in `commit_ts` order, to forget them once old: each key with its
    /// fingerprint (forgetting needs no hashing under the lock; range checks need the keys).
    history: VecDeque<(Timestamp, Vec<(Key, u64)>)>,
    /// Keys held in `history` (with repeats): what memory use is bounded by.
    remembered_keys: usize,
    /// Writing transactions with `read_ts` below this are refused.
    memory_floor: Timestamp,
}

impl LocalAdjudicator {
    /// Takes over `journal` as its only writer: fences it with the next epoch and continues
    /// above everything it holds.
    pub async fn open(
        journal: Arc<dyn Journal>,
        clock: Arc<dyn Clock>,
        options: AdjudicatorOptions,
    ) -> Result<Self> {
        let status = journal.status(journal::StatusRequest {}).await?;
        let epoch = Epoch(status.epoch.0 + 1);
        let fenced = journal.fence(FenceRequest { epoch }).await?;
        clock.observe(fenced.high_ts);
        tracing::info!(epoch = epoch.0, high_ts = %fenced.high_ts, "adjudicator took over the journal");
        Ok(LocalAdjudicator {
            journal,
            clock,
            epoch,
            memory_nanos: u64::try_from(options.memory.as_nanos()).unwrap_or(u64::MAX),
            max_remembered_keys: options.max_remembered_keys,
            commit_lead_percent: options.commit_lead_percent,
            append_nanos: AtomicU64::new(0),
            fingerprints: Fingerprints::default(),
            state: Mutex::new(State {
                commit_point: fenced.high_ts,
                last_commit: HashMap::default(),
                history: VecDeque::new(),
                remembered_keys: 0,
                memory_floor: fenced.high_ts,
            }),
        })
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only in-memory conflict state, which stays
        // conservative (keys recorded before their append): keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Folds one append's latency into the moving average (weight 1/8; the first is taken
    /// whole).
    fn record_append_latency(&self, nanos: u64) {
        let _ = self
            .append_nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |average| {
                Some(match average {
                    0 => nanos,
                    _ => average - average / 8 + nanos / 8,
                })
            });
    }

    /// Checks the conflict set, chooses `commit_ts`, records the keys as pending and calls the
    /// journal append, all under the lock; returns the append to await outside it.
    fn accept(
        &self,
        request: CommitRequest,
    ) -> Result<(
        Timestamp,
        BoxFuture<'static, Result<journal::AppendResponse>>,
    )> {
        let CommitRequest {
            txn_id,
            read_ts,
            writes,
            locks,
            reads,
            read_ranges,
        } = request;
        if writes.is_empty() && locks.is_empty() {
            return Err(Error::InvalidInput(
                "a commit needs at least one write or lock".into(),
            ));
        }
        // Fingerprinted before the lock is taken.
        let fingerprinted = |key: Key| {
            let fingerprint = self.fingerprints.of(&key);
            (key, fingerprint)
        };
        let conflict_set: Vec<(Key, u64)> = writes
            .iter()
            .map(|w| w.key.clone())
            .chain(locks)
            .map(fingerprinted)
            .collect();
        let reads: Vec<(Key, u64)> = reads.into_iter().map(fingerprinted).collect();
        let lead = (self.append_nanos.load(Ordering::Relaxed))
            .saturating_mul(self.commit_lead_percent)
            / 100;
        // One stalled fsync must not make every later commit wait long in commit-wait.
        let lead = lead.min(MAX_COMMIT_LEAD_NANOS);
        let now = self.clock.now();
        let mut state = self.lock_state();
        let horizon = now.latest.saturating_sub_nanos(self.memory_nanos);
        state.forget(horizon, self.max_remembered_keys);
        if read_ts < state.memory_floor {
            return Err(Error::Conflict(Conflict {
                kind: ConflictKind::Data,
                key: conflict_set[0].0.clone(),
                committed_ts: None,
            }));
        }
        for (key, fingerprint) in conflict_set.iter().chain(&reads) {
            if let Some(&committed) = state.last_commit.get(fingerprint) {
                if committed > read_ts {
                    return Err(Error::Conflict(Conflict {
                        kind: ConflictKind::Data,
                        key: key.clone(),
                        committed_ts: Some(committed),
                    }));
                }
            }
        }
        if !read_ranges.is_empty() {
            state.check_ranges(&read_ranges, read_ts)?;
        }
        let commit_ts = state
            .commit_point
            .next()
            .max(read_ts.next())
            .max(now.latest.saturating_add_nanos(lead));
        state.commit_point = commit_ts;
        for &(_, fingerprint) in &conflict_set {
            state.last_commit.insert(fingerprint, commit_ts);
        }
        state.remembered_keys += conflict_set.len();
        state.history.push_back((commit_ts, conflict_set));
        let record = CommitRecord {
            txn_id,
            commit_ts,
            writes,
        };
        let append = self.journal.append(AppendRequest {
            epoch: self.epoch,
            entry: Entry::Commit(record),
        });
        Ok((commit_ts, append))
    }
}

impl State {
    /// Fails if a commit after `read_ts` (or a pending one) wrote a key inside one of `ranges`.
    /// Walks the remembered commits newer than `read_ts`, newest first: the cost is the
    /// number of commits that ran concurrently with the transaction, not the size of the map.
    fn check_ranges(&self, ranges: &[cairn_types::KeyRange], read_ts: Timestamp) -> Result<()> {
        for (committed, keys) in self.history.iter().rev() {
            if *committed <= read_ts {
                break;
            }
            if let Some((key, _)) = keys
                .iter()
                .find(|(k, _)| ranges.iter().any(|r| r.contains(k)))
            {
                return Err(Error::Conflict(Conflict {
                    kind: ConflictKind::Data,
                    key: key.clone(),
                    committed_ts: Some(*committed),
                }));
            }
        }
        Ok(())
    }

    /// Forgets commits older than `horizon`, and the oldest beyond `max_keys` remembered
    /// keys, raising the memory floor to match.
    fn forget(&mut self, horizon: Timestamp, max_keys: usize) {
        while let Some((ts, _)) = self.history.front() {
            if *ts >= horizon && self.remembered_keys <= max_keys {
                break;
            }
            let Some((ts, keys)) = self.history.pop_front() else {
                break;
            };
            self.remembered_keys -= keys.len();
            for (_, fingerprint) in keys {
                if self.last_commit.get(&fingerprint) == Some(&ts) {
                    self.last_commit.remove(&fingerprint);
                }
            }
            self.memory_floor = self.memory_floor.max(ts);
        }
    }
}

/// 64-bit key fingerprints: foldhash, fast and seeded per process, so clients cannot choose
/// keys that share one.
#[derive(Default)]
struct Fingerprints(foldhash::fast::RandomState);

impl Fingerprints {
    fn of(&self, key: &Key) -> u64 {
        self.0.hash_one(key)
    }
}

/// Hashes a fingerprint to itself: it is a hash already.
#[derive(Default)]
struct Fingerprinted(u64);

impl Hasher for Fingerprinted {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed here (`write_u64`); anything else is folded in.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, fingerprint: u64) {
        self.0 = fingerprint;
    }
}

impl Adjudicator for LocalAdjudicator {
    fn commit(&self, request: CommitRequest) -> BoxFuture<'_, Result<CommitResponse>> {
        let started = self.clock.monotonic_nanos();
        let accepted = self.accept(request);
        Box::pin(async move {
            let (commit_ts, append) = accepted?;
            match append.await {
                Ok(_) => {
                    self.record_append_latency(
                        self.clock.monotonic_nanos().saturating_sub(started),
                    );
                    Ok(CommitResponse { commit_ts })
                }
                // The keys stay recorded: if the record did reach the disk, later commits must
                // still conflict with it.
                Err(e) => Err(Error::Unavailable(format!(
                    "commit outcome unknown: the journal append at {commit_ts} failed: {e}"
                ))),
            }
        })
    }

    fn heartbeat(&self, request: HeartbeatRequest) -> BoxFuture<'_, Result<HeartbeatResponse>> {
        let (promised, append) = {
            let mut state = self.lock_state();
            // Not the commit point, which may be ahead of now: a promise up to now is what a
            // read at a snapshot taken before it needs, and the journal can publish it
            // without waiting for a commit above it that is still in its fsync.
            let promised = self.clock.now().latest;
            state.commit_point = state.commit_point.max(promised);
            let append = self.journal.append(AppendRequest {
                epoch: self.epoch,
                entry: if request.quiet {
                    Entry::QuietHeartbeat(promised)
                } else {
                    Entry::Heartbeat(promised)
                },
            });
            (promised, append)
        };
        Box::pin(async move {
            append.await?;
            Ok(HeartbeatResponse { promised })
        })
    }

    fn status(&self, _request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>> {
        let state = self.lock_state();
        let status = StatusResponse {
            commit_point: state.commit_point,
            memory_floor: state.memory_floor,
            remembered_keys: state.remembered_keys as u64,
        };
        Box::pin(std::future::ready(Ok(status)))
    }
}

/// Publishes heartbeats every `interval`, and at once whenever `nudge` is notified (storage
/// does so when a read has to wait). Runs until the task is dropped or aborted.
pub async fn run_heartbeats(
    adjudicator: Arc<dyn Adjudicator>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    nudge: Arc<Notify>,
) {
    loop {
        let sleep = clock.sleep(interval);
        tokio::select! {
            () = sleep => {}
            () = nudge.notified() => {}
        }
        if let Err(e) = adjudicator.heartbeat(HeartbeatRequest::default()).await {
            tracing::warn!(error = %e, "heartbeat failed");
            // Do not spin on a broken journal.
            clock.sleep(interval).await;
        }
    }
}
