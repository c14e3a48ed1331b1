//! The query processor's transaction API: what SQL statements will run on (DESIGN §2, §3).
//!
//! ```text
//!  begin ──► read_ts = clock.now().latest
//!   get/scan ──► buffered writes  ⊕  storage.read(key|range, read_ts)   (read-your-writes)
//!   put/delete ──► buffer post-image (or tombstone)
//!   lock ──► conflict set only (SELECT ... FOR UPDATE)
//!  commit ──► nothing buffered?  done, no adjudicator, never aborts
//!         └─► adjudicator.commit(read_ts, writes, locks) ──► commit_ts (durable)
//!             ──► commit-wait until clock.now().earliest > commit_ts ──► acknowledged
//! ```
//!
//! Invariants:
//! - Every read of a transaction is at its one `read_ts`: reads come from one snapshot, so
//!   read skew cannot happen. Storage never answers stale, so `read_ts` taken after a commit was
//!   acknowledged sees it.
//! - Nothing leaves the transaction before `commit`: writes are buffered as full post-images,
//!   and reads merge them over storage, deletes hiding keys inside scans too.
//! - A read-only transaction never contacts the adjudicator and never aborts.
//! - `commit` returns only once the commit is durable and `clock.now().earliest > commit_ts`
//!   (commit-wait), so any transaction that starts afterwards, anywhere, reads at a later
//!   timestamp.
//! - Conflicts come back as [`cairn_types::Error::Conflict`] naming a key; the caller retries
//!   the whole transaction. A point read learns from storage when its key's newest version
//!   committed; a key changed after the transaction's snapshot that it then writes or locks
//!   is a conflict the commit is certain to meet, so [`Transaction::overtaken_write`] names it
//!   at once (the SQL layer fails the statement) and `commit` fails without the adjudicator.
//! - A [`WriteMark`] (a savepoint, a statement to undo) is a position in an undo record of
//!   what each write replaced, kept until [`Transaction::forget_marks`]: taking one copies
//!   nothing, so a transaction of many statements stays linear.
//! - [`Database::watching`] a key prefix counts the commits that write under it (under way,
//!   and the last `commit_ts`): the SQL layer watches its catalog so that a statement's plan
//!   need not read its tables' descriptors again while no DDL committed ([`PrefixWatch`]).
//! - A write made with [`Transaction::put_rebasable`] (the SQL layer's `UPDATE ... SET n = n +
//!   1` of one row found by primary key) comes with a function that recomputes it over a
//!   newer stored value. When the commit conflicts on such a key only, the transaction
//!   *refreshes* instead of failing: it takes a new snapshot (at least the conflicting
//!   commit's `commit_ts`, which may be ahead of the clock), checks that every key it read
//!   (other than those rows) has no version committed since its first snapshot, recomputes
//!   the rebasable writes over their rows at the new snapshot, and commits from there. Every
//!   statement would have returned the same at the new snapshot, so the transaction is one
//!   that ran there; snapshot isolation holds, and concurrent increments of one row both
//!   commit instead of one retrying the whole transaction. A rebasable row the transaction
//!   reads again, or any scan, turns this off.
//! - Under [`Isolation::Serializable`] the transaction also records every key it read and
//!   every range it scanned (up to where the scan stopped), and a writing transaction sends
//!   them for validation at commit: anything written there after `read_ts`, including a new
//!   row in a scanned range, is a conflict. That removes write skew and phantoms.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use cairn_types::adjudicator::{Adjudicator, CommitRequest};
use cairn_types::clock::Clock;
use cairn_types::storage::{GetRequest, GetResponse, ScanRequest, Storage};
use cairn_types::{Conflict, ConflictKind, Error, Key, KeyRange, Result, Timestamp, TxnId, Write};

/// Rows fetched from storage per scan request when merging with buffered writes.
const SCAN_PAGE: u32 = 256;

/// Past this many point reads a transaction stops recording them and cannot refresh (see
/// [`Refresh`]): a refresh reads every one of them again.
const MAX_REFRESH_READS: usize = 64;

/// How many times one commit may refresh before its conflict is returned.
const MAX_REFRESHES: usize = 10;

/// Recomputes a rebasable write's post-image over a newer stored value of its key (see
/// [`Transaction::put_rebasable`]); `None` when the write cannot be carried over to it.
pub type Rebase = Arc<dyn Fn(&Bytes) -> Option<Bytes> + Send + Sync>;

/// Where transactions come from: the components a query processor talks to. Cloning it (and
/// beginning a transaction, which holds one) costs one reference count.
#[derive(Clone)]
pub struct Database(Arc<Components>);

#[derive(Clone)]
struct Components {
    storage: Arc<dyn Storage>,
    adjudicator: Arc<dyn Adjudicator>,
    clock: Arc<dyn Clock>,
    next_txn: Arc<AtomicU64>,
    limits: Limits,
    watch: Arc<PrefixWatch>,
}

/// What this query processor knows of commits that write keys under one prefix (the SQL
/// layer's catalog): the last one's `commit_ts`, and how many are under way. A reader at
/// `read_ts` that finds none under way and the last at or below `v` knows the prefix reads
/// the same at `read_ts` as at `v` (a commit that starts later gets a `commit_ts` above
/// `read_ts`), provided this process is the only writer of the prefix.
#[derive(Debug, Default)]
pub struct PrefixWatch {
    prefix: Vec<u8>,
    in_flight: AtomicUsize,
    last_commit: AtomicU64,
}

impl PrefixWatch {
    /// Whether nothing under the prefix committed after `since`, nor is committing now.
    pub fn unchanged_since(&self, since: Timestamp) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.last_commit.load(Ordering::Acquire) <= since.0
    }
}

/// Bounds on one transaction (DESIGN §5), so that apply and GC stay bounded and one client
/// cannot exhaust memory. Exceeding one is refused with a message naming it (SQLSTATE 54000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Keys written, deleted or locked.
    pub max_rows: usize,
    /// Bytes of keys and values written.
    pub max_bytes: usize,
    /// From the first snapshot to commit. Match the adjudicator's memory and the GC lag.
    pub max_age: Duration,
}

impl Default for Limits {
    /// Large enough for ordinary bulk loads (pgbench -i -s 10 writes 1 M rows in one
    /// transaction), small enough to keep a transaction's buffer in memory.
    fn default() -> Self {
        Limits {
            max_rows: 5_000_000,
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(300),
        }
    }
}

impl Database {
    /// A query processor over these components.
    pub fn new(
        storage: Arc<dyn Storage>,
        adjudicator: Arc<dyn Adjudicator>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // Transaction ids only need to be unique enough for logs; starting from the clock
        // keeps them from repeating across restarts.
        let first = clock.now().latest.0;
        Database(Arc::new(Components {
            storage,
            adjudicator,
            clock,
            next_txn: Arc::new(AtomicU64::new(first)),
            limits: Limits::default(),
            watch: Arc::default(),
        }))
    }

    /// The same query processor, watching commits that write under `prefix` (see
    /// [`PrefixWatch`]).
    pub fn watching(mut self, prefix: &[u8]) -> Self {
        Arc::make_mut(&mut self.0).watch = Arc::new(PrefixWatch {
            prefix: prefix.to_vec(),
            ..PrefixWatch::default()
        });
        self
    }

    /// Commits under the watched prefix (see [`Database::watching`]).
    pub fn watch(&self) -> &PrefixWatch {
        &self.0.watch
    }

    /// The same query processor with other transaction limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        Arc::make_mut(&mut self.0).limits = limits;
        self
    }

    /// The limits transactions run under.
    pub fn limits(&self) -> Limits {
        self.0.limits
    }

    /// Starts a snapshot-isolation transaction reading at `clock.now().latest`.
    pub fn begin(&self) -> Transaction {
        self.begin_with(Isolation::Snapshot)
    }

    /// Starts a transaction with the given isolation, reading at `clock.now().latest`.
    pub fn begin_with(&self, isolation: Isolation) -> Transaction {
        let read_ts = self.0.clock.now().latest;
        Transaction {
            db: self.0.clone(),
            txn_id: TxnId(self.0.next_txn.fetch_add(1, Ordering::Relaxed)),
            read_ts,
            conflict_ts: read_ts,
            writes: BTreeMap::new(),
            locks: BTreeSet::new(),
            reads: BTreeSet::new(),
            read_ranges: Vec::new(),
            read_set: (isolation == Isolation::Serializable).then(Mutex::default),
            overtaken: Mutex::default(),
            refresh: Mutex::default(),
            bytes_written: 0,
            undo: Vec::new(),
            mark_epoch: 0,
        }
    }

    /// The clock this query processor reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.0.clock
    }
}

/// One transaction: a snapshot to read at and a buffer of writes.
pub struct Transaction {
    db: Arc<Components>,
    txn_id: TxnId,
    read_ts: Timestamp,
    /// The snapshot commits are checked against: the first `read_ts`. It stays put when
    /// [`Transaction::refresh_snapshot`] moves `read_ts` (READ COMMITTED), so a write based on
    /// an earlier statement's read is still checked against everything committed since.
    conflict_ts: Timestamp,
    /// Post-images by key; `None` is a delete.
    writes: BTreeMap<Key, Option<Bytes>>,
    /// Keys locked but not written.
    locks: BTreeSet<Key>,
    /// Keys whose unchanged value the transaction depends on (validated at commit).
    reads: BTreeSet<Key>,
    /// Key ranges whose unchanged contents the transaction depends on (validated at commit).
    read_ranges: Vec<KeyRange>,
    /// SERIALIZABLE only: every key read and range scanned, validated at commit. Behind a
    /// lock because reads take `&self`.
    read_set: Option<Mutex<ReadSet>>,
    /// Keys a point read found a version of committed after `conflict_ts`, with that
    /// version's `commit_ts`: writing or locking one dooms the commit (unless it is
    /// rebasable). Almost always empty.
    overtaken: Mutex<BTreeMap<Key, Timestamp>>,
    /// What a commit needs to move the snapshot forward instead of failing. Behind a lock
    /// because reads take `&self`.
    refresh: Mutex<Refresh>,
    /// Bytes of keys and values buffered (for the byte limit).
    bytes_written: usize,
    /// Every write since [`Transaction::forget_marks`], oldest first: its key and what
    /// `writes` held for the key before (`None`: nothing), so [`Transaction::rollback_to`]
    /// can undo back to a mark without each mark copying the whole buffer.
    undo: Vec<(Key, Option<Option<Bytes>>)>,
    /// Bumped by [`Transaction::forget_marks`], so a mark from before cannot be used.
    mark_epoch: u64,
}

/// A transaction's buffered writes at one moment: see [`Transaction::mark`].
#[derive(Clone, Debug)]
pub struct WriteMark {
    epoch: u64,
    undo_len: usize,
    bytes_written: usize,
}

/// How much a transaction is isolated from concurrent ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Snapshot isolation (PostgreSQL's REPEATABLE READ): reads from one snapshot, write
    /// conflicts refused; write skew possible.
    #[default]
    Snapshot,
    /// Serializable: additionally, a writing transaction fails at commit if anything it read
    /// (keys, and scanned ranges including rows that did not exist) changed after `read_ts`.
    /// Read-only transactions still never fail: they are serialised at `read_ts`.
    Serializable,
}

/// What lets a commit that conflicted on rebasable writes only move the transaction to a
/// newer snapshot and commit there, rather than fail.
///
/// Moving is sound when every statement would have returned the same at the new snapshot:
/// no key the transaction read from storage has a version committed since its snapshot, it
/// scanned nothing (a scan's rows are not recorded), and each rebasable row was read once
/// (by the statement that wrote it, which returned nothing of it) and not again. Its writes
/// are then what it would have written there, the rebasable ones recomputed over their rows
/// as they are at the new snapshot; the commit from the new snapshot checks the rest.
#[derive(Default)]
struct Refresh {
    /// Keys point-read from storage (not from the transaction's own writes), in order.
    read_keys: Vec<Key>,
    /// A scan, or more than [`MAX_REFRESH_READS`] point reads: the snapshot cannot move.
    impossible: bool,
    /// Writes made by [`Transaction::put_rebasable`] and not read since: the post-image as
    /// put (the write counts only while the buffer still holds it) and how to recompute it.
    rebasable: BTreeMap<Key, (Bytes, Rebase)>,
}

impl Refresh {
    fn note_read(&mut self, key: &Key) {
        if self.impossible {
            return;
        }
        if self.read_keys.len() == MAX_REFRESH_READS {
            self.impossible = true;
            self.read_keys = Vec::new();
        } else {
            self.read_keys.push(key.clone());
        }
    }
}

/// What a SERIALIZABLE transaction read.
#[derive(Default)]
struct ReadSet {
    keys: BTreeSet<Key>,
    ranges: Vec<KeyRange>,
}

/// Past this many individually read keys, a read set is collapsed into the one range that
/// covers them: more conflicts are possible, none is missed, and the set stays bounded.
const MAX_READ_KEYS: usize = 10_000;

impl ReadSet {
    fn add_key(&mut self, key: Key) {
        self.keys.insert(key);
        if self.keys.len() > MAX_READ_KEYS {
            let (Some(first), Some(last)) = (self.keys.first(), self.keys.last()) else {
                return;
            };
            let mut end = last.as_bytes().to_vec();
            end.push(0);
            self.ranges.push(KeyRange {
                start: first.clone(),
                end: Some(Key::from(end)),
            });
            self.keys.clear();
        }
    }
}

/// What a successful commit tells the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The commit timestamp, or `None` for a read-only transaction (nothing to commit).
    pub commit_ts: Option<Timestamp>,
}

impl Transaction {
    /// The snapshot this transaction reads at.
    pub fn read_ts(&self) -> Timestamp {
        self.read_ts
    }

    /// Moves the snapshot to now, for the next statement (READ COMMITTED): later reads see
    /// every commit acknowledged before this call. Buffered writes stay, and the commit is
    /// still checked against every commit since the transaction's first snapshot.
    pub fn refresh_snapshot(&mut self) {
        self.read_ts = self.db.clock.now().latest;
    }

    /// The transaction's id.
    pub fn id(&self) -> TxnId {
        self.txn_id
    }

    /// Whether the transaction has written or locked anything.
    pub fn is_read_only(&self) -> bool {
        self.writes.is_empty() && self.locks.is_empty()
    }

    /// Whether this transaction has written or deleted `key` (its buffered writes hold it).
    pub fn has_written(&self, key: &Key) -> bool {
        self.writes.contains_key(key)
    }

    /// Whether this transaction has written or deleted a key under the watched prefix.
    pub fn has_written_watched(&self) -> bool {
        let prefix = &self.db.watch.prefix;
        !prefix.is_empty()
            && self
                .writes
                .range(Key::from(prefix.clone())..)
                .next()
                .is_some_and(|(key, _)| key.as_bytes().starts_with(prefix))
    }

    /// The value of `key` as this transaction sees it: its own write if any, else storage at
    /// `read_ts`.
    pub async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        if let Some(read_set) = &self.read_set {
            lock(read_set).add_key(key.clone());
        }
        if let Some(buffered) = self.writes.get(key) {
            // The statement sees the row: it can no longer be recomputed behind its back.
            lock(&self.refresh).rebasable.remove(key);
            return Ok(buffered.clone());
        }
        lock(&self.refresh).note_read(key);
        let request = GetRequest {
            key: key.clone(),
            ts: self.read_ts,
        };
        let response = self.db.storage.get(request).await?;
        if let Some(newest) = response.newest_ts.filter(|ts| *ts > self.conflict_ts) {
            lock(&self.overtaken).insert(key.clone(), newest);
        }
        Ok(response.value)
    }

    /// A key this transaction writes or locks that a point read found changed by a commit
    /// after its snapshot, as the conflict its commit is certain to fail with (the commit
    /// point only moves forward, so the adjudicator will see that commit in the window).
    /// Found only through point reads; a commit still checks everything.
    /// A rebasable write is not such a conflict while the transaction can refresh.
    pub fn overtaken_write(&self) -> Option<Conflict> {
        let overtaken = lock(&self.overtaken);
        if overtaken.is_empty() {
            return None;
        }
        let refresh = lock(&self.refresh);
        overtaken
            .iter()
            .find(|(key, _)| {
                (self.writes.contains_key(key) || self.locks.contains(key))
                    && !self.rebasable_now(&refresh, key)
            })
            .map(|(key, committed_ts)| Conflict {
                kind: ConflictKind::Data,
                key: key.clone(),
                committed_ts: Some(*committed_ts),
            })
    }

    /// Up to `limit` live rows of `range` in key order, as this transaction sees them: storage
    /// at `read_ts` with the transaction's own writes laid over it.
    pub async fn scan(&self, range: &KeyRange, limit: usize) -> Result<Vec<(Key, Bytes)>> {
        // Its rows are not recorded, so whether they changed cannot be checked.
        lock(&self.refresh).impossible = true;
        let rows = self.scan_merged(range, limit).await?;
        if let Some(read_set) = &self.read_set {
            // What the scan observed: all of the range, or up to its last row if cut short.
            let observed = match rows.last() {
                Some((last, _)) if rows.len() == limit => {
                    let mut end = last.as_bytes().to_vec();
                    end.push(0);
                    KeyRange {
                        start: range.start.clone(),
                        end: Some(Key::from(end)),
                    }
                }
                _ => range.clone(),
            };
            lock(read_set).ranges.push(observed);
        }
        Ok(rows)
    }

    async fn scan_merged(&self, range: &KeyRange, limit: usize) -> Result<Vec<(Key, Bytes)>> {
        let mut rows = Vec::new();
        if limit == 0 || range.is_empty() {
            return Ok(rows);
        }
        let end = range.end.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut buffered = self
            .writes
            .range::<Key, _>((Bound::Included(&range.start), end))
            .peekable();
        let mut cursor = range.start.clone();
        loop {
            let page_range = KeyRange {
                start: cursor,
                end: range.end.clone(),
            };
            let page = self
                .db
                .storage
                .scan(ScanRequest {
                    range: page_range,
                    ts: self.read_ts,
                    limit: SCAN_PAGE,
                })
                .await?;
            let mut stored = page.rows.into_iter().peekable();
            // Buffered keys at or past the page's end belong to a later page.
            let covers = |key: &Key| page.resume.as_ref().is_none_or(|resume| key < resume);
            loop {
                let take_buffered = match (buffered.peek(), stored.peek()) {
                    (Some((bk, _)), Some((sk, _))) => covers(bk) && *bk <= sk,
                    (Some((bk, _)), None) => covers(bk),
                    (None, _) => false,
                };
                let row = if take_buffered {
                    let Some((key, value)) = buffered.next() else {
                        break;
                    };
                    if stored.peek().is_some_and(|(sk, _)| sk == key) {
                        stored.next(); // the transaction's own write replaces it
                    }
                    value.clone().map(|value| (key.clone(), value))
                } else if let Some(row) = stored.next() {
                    Some(row)
                } else {
                    break;
                };
                if let Some(row) = row {
                    rows.push(row);
                    if rows.len() == limit {
                        return Ok(rows);
                    }
                }
            }
            match page.resume {
                Some(resume) => cursor = resume,
                None => return Ok(rows),
            }
        }
    }

    /// The transaction's buffered writes as they are now (SAVEPOINT, a statement that may
    /// be undone), to return to with [`Transaction::rollback_to`] until
    /// [`Transaction::forget_marks`]. Costs nothing: later writes keep what they replace.
    pub fn mark(&self) -> WriteMark {
        WriteMark {
            epoch: self.mark_epoch,
            undo_len: self.undo.len(),
            bytes_written: self.bytes_written,
        }
    }

    /// Discards the writes buffered since `mark` was taken (ROLLBACK TO SAVEPOINT). What the
    /// transaction read and locked meanwhile stays in its conflict check: a commit may fail
    /// for a read it no longer uses, never succeed past one it does.
    ///
    /// A mark taken before the last [`Transaction::forget_marks`] (a caller's bug: the writes
    /// it would undo are no longer known) is an internal error, and nothing is undone.
    pub fn rollback_to(&mut self, mark: &WriteMark) -> Result<()> {
        if mark.epoch != self.mark_epoch || mark.undo_len > self.undo.len() {
            return Err(Error::Internal(
                "rollback to a write mark taken before its transaction forgot its marks".into(),
            ));
        }
        for (key, before) in self.undo.drain(mark.undo_len..).rev() {
            match before {
                Some(value) => self.writes.insert(key, value),
                None => self.writes.remove(&key),
            };
        }
        self.bytes_written = mark.bytes_written;
        Ok(())
    }

    /// Drops what [`Transaction::rollback_to`] needs: call when no mark will be used again
    /// (a statement ended outside any savepoint), so the undo record does not grow with the
    /// transaction.
    pub fn forget_marks(&mut self) {
        self.undo.clear();
        self.mark_epoch += 1;
    }

    /// Buffers `value` as the new value of `key`.
    pub fn put(&mut self, key: Key, value: Bytes) {
        self.bytes_written += key.as_bytes().len() + value.len();
        self.buffer(key, Some(value));
    }

    /// Buffers `value` as the new value of `key`, a row this transaction read once, by the
    /// statement writing it, which showed the client nothing of it; `rebase` computes what
    /// the statement would have written over a newer value of the row, so that a commit
    /// conflicting on it can refresh (see the crate documentation). A key read more than
    /// once is buffered as by [`Transaction::put`].
    pub fn put_rebasable(&mut self, key: Key, value: Bytes, rebase: Rebase) {
        self.put(key.clone(), value.clone());
        let refresh = self.refresh.get_mut().unwrap_or_else(|p| p.into_inner());
        if refresh.read_keys.iter().filter(|k| **k == key).count() == 1 {
            refresh.rebasable.insert(key, (value, rebase));
        }
    }

    /// Buffers a delete of `key`.
    pub fn delete(&mut self, key: Key) {
        self.bytes_written += key.as_bytes().len();
        self.buffer(key, None);
    }

    fn buffer(&mut self, key: Key, value: Option<Bytes>) {
        let refresh = self.refresh.get_mut().unwrap_or_else(|p| p.into_inner());
        if !refresh.rebasable.is_empty() {
            refresh.rebasable.remove(&key);
        }
        let before = self.writes.insert(key.clone(), value);
        self.undo.push((key, before));
    }

    /// Whether the transaction may refresh at all: snapshot isolation, one snapshot so far
    /// (not READ COMMITTED's moving one), nothing scanned and no ranges to validate.
    fn can_refresh(&self, refresh: &Refresh) -> bool {
        !refresh.impossible
            && self.read_set.is_none()
            && self.read_ranges.is_empty()
            && self.read_ts == self.conflict_ts
    }

    /// Whether `key`'s buffered write is rebasable now: put by
    /// [`Transaction::put_rebasable`], still in the buffer (not replaced, not rolled back to
    /// a savepoint before it) and not read since.
    fn rebasable_now(&self, refresh: &Refresh, key: &Key) -> bool {
        self.can_refresh(refresh)
            && refresh.rebasable.get(key).is_some_and(
                |(put, _)| matches!(self.writes.get(key), Some(Some(now)) if now == put),
            )
    }

    /// Checks the transaction against its [`Limits`]: call after each statement so the one
    /// that crossed a limit is the one refused. COMMIT checks too.
    pub fn check_limits(&self) -> Result<()> {
        let limits = self.db.limits;
        let rows = self.writes.len() + self.locks.len();
        if rows > limits.max_rows {
            return Err(Error::InvalidInput(format!(
                "transaction exceeds the limit on rows written: {rows} rows, the limit is {}",
                limits.max_rows
            )));
        }
        if self.bytes_written > limits.max_bytes {
            return Err(Error::InvalidInput(format!(
                "transaction exceeds the limit on bytes written: {} bytes, the limit is {}",
                self.bytes_written, limits.max_bytes
            )));
        }
        let now = self.db.clock.now().earliest;
        let age = Duration::from_nanos(now.0.saturating_sub(self.conflict_ts.0));
        if age > limits.max_age {
            return Err(Error::InvalidInput(format!(
                "transaction exceeds the limit on age: it started {:.1} s ago, the limit is {} s",
                age.as_secs_f64(),
                limits.max_age.as_secs()
            )));
        }
        Ok(())
    }

    /// Adds `key` to the conflict set without changing it: the commit fails if another
    /// transaction committed a write to it after `read_ts`, and later writers conflict with
    /// this commit (what `SELECT ... FOR UPDATE` does).
    pub fn lock(&mut self, key: Key) {
        let refresh = self.refresh.get_mut().unwrap_or_else(|p| p.into_inner());
        refresh.rebasable.remove(&key);
        self.locks.insert(key);
    }

    /// Records that the transaction depends on `key` staying as it was at `read_ts` (a
    /// catalog entry, say): a writing transaction fails at commit if another committed a
    /// change to it since. Read-only transactions are not checked (their snapshot is
    /// consistent as it is).
    pub fn validate_read(&mut self, key: Key) {
        self.reads.insert(key);
    }

    /// [`Transaction::validate_read`] for every key of `range`, including keys that did not
    /// exist at `read_ts` (what DDL that read a whole table depends on: an index built from
    /// its rows is wrong if a row was written meanwhile).
    pub fn validate_range(&mut self, range: KeyRange) {
        self.read_ranges.push(range);
    }

    /// Commits. Read-only transactions succeed at once; others go to the adjudicator and
    /// return once durable and past commit-wait, or fail with a conflict naming a key. A
    /// conflict on rebasable writes only is met by refreshing (see the crate documentation),
    /// at most ten times.
    pub async fn commit(self) -> Result<Committed> {
        if self.is_read_only() {
            return Ok(Committed { commit_ts: None });
        }
        self.check_limits()?;
        if let Some(conflict) = self.overtaken_write() {
            return Err(Error::Conflict(conflict));
        }
        let refresher = self.refresher();
        // A rebasable row already seen changed: the first attempt is certain to fail.
        let mut overtaken = refresher.as_ref().and_then(|refresher| {
            let overtaken = lock(&self.overtaken);
            overtaken
                .iter()
                .find(|(key, _)| refresher.rebasable.contains_key(*key))
                .map(|(key, committed_ts)| Conflict {
                    kind: ConflictKind::Data,
                    key: key.clone(),
                    committed_ts: Some(*committed_ts),
                })
        });
        let Transaction {
            db,
            txn_id,
            read_ts: _,
            conflict_ts,
            writes,
            locks,
            reads,
            read_ranges: validated_ranges,
            read_set,
            overtaken: _,
            refresh: _,
            bytes_written: _,
            undo: _,
            mark_epoch: _,
        } = self;
        let (mut reads, mut read_ranges) = match read_set {
            Some(read_set) => {
                let ReadSet { keys, ranges } =
                    read_set.into_inner().unwrap_or_else(|p| p.into_inner());
                let mut all = reads;
                all.extend(keys);
                (all, ranges)
            }
            None => (reads, Vec::new()),
        };
        read_ranges.extend(validated_ranges);
        // Keys the transaction writes or locks are checked as such already.
        reads.retain(|k| !writes.contains_key(k) && !locks.contains(k));
        let locks: Vec<Key> = locks
            .into_iter()
            .filter(|k| !writes.contains_key(k))
            .collect();
        let writes: Vec<Write> = writes
            .into_iter()
            .map(|(key, value)| Write { key, value })
            .collect();
        let mut request = CommitRequest {
            txn_id,
            read_ts: conflict_ts,
            writes,
            locks,
            reads: reads.into_iter().collect(),
            read_ranges,
        };
        let mut refreshes = 0;
        let response = loop {
            if let Some(conflict) = overtaken.take() {
                let refreshed = match &refresher {
                    Some(refresher) if refreshes < MAX_REFRESHES => {
                        refreshes += 1;
                        refresher
                            .refresh(&db, conflict_ts, conflict.committed_ts, &mut request)
                            .await
                    }
                    _ => false,
                };
                if !refreshed {
                    return Err(Error::Conflict(conflict));
                }
            }
            // Kept to send again after a refresh (the adjudicator takes the request).
            let retry = refresher.as_ref().map(|_| request.clone());
            match (adjudicate(&db, request).await, retry) {
                (Err(Error::Conflict(conflict)), Some(retry))
                    if refresher
                        .as_ref()
                        .is_some_and(|r| r.rebasable.contains_key(&conflict.key)) =>
                {
                    overtaken = Some(conflict);
                    request = retry;
                }
                (outcome, _) => break outcome?,
            }
        };
        let commit_ts = response.commit_ts;
        db.clock.observe(commit_ts);
        commit_wait(db.clock.as_ref(), commit_ts).await;
        Ok(Committed {
            commit_ts: Some(commit_ts),
        })
    }

    /// What a commit of this transaction needs to refresh, or `None` if it cannot (or has
    /// no rebasable write to gain from it).
    fn refresher(&self) -> Option<Refresher> {
        let refresh = lock(&self.refresh);
        let rebasable: BTreeMap<Key, Rebase> = refresh
            .rebasable
            .iter()
            .filter(|(key, _)| self.rebasable_now(&refresh, key))
            .map(|(key, (_, rebase))| (key.clone(), rebase.clone()))
            .collect();
        if rebasable.is_empty() {
            return None;
        }
        let mut unchanged: BTreeSet<Key> = refresh.read_keys.iter().cloned().collect();
        unchanged.extend(self.reads.iter().cloned());
        unchanged.extend(self.locks.iter().cloned());
        unchanged.retain(|key| !rebasable.contains_key(key));
        Some(Refresher {
            unchanged: unchanged.into_iter().collect(),
            rebasable,
        })
    }

    /// Abandons the transaction; nothing it buffered is kept.    /// Abandons the transaction; nothing it buffered is kept.
    pub fn rollback(self) {}
}

/// What [`Transaction::commit`] needs to move a transaction to a newer snapshot.
struct Refresher {
    /// Keys whose values the transaction depends on: read, locked or validated, apart from
    /// the rebasable rows.
    unchanged: Vec<Key>,
    /// The rebasable writes and how to recompute them.
    rebasable: BTreeMap<Key, Rebase>,
}

impl Refresher {
    /// Moves `request` to a new snapshot: checks at it that no key in `unchanged` has a
    /// version committed after `first_snapshot`, and recomputes the rebasable writes over
    /// their rows there. `false` (the request is then unusable) when any of that fails; a
    /// storage error counts as failing, since the conflict is the answer either way.
    ///
    /// The new snapshot is at least `overtaken_by`, the commit that caused the conflict: the
    /// adjudicator may choose a `commit_ts` ahead of the clock, and a snapshot below it would
    /// miss that commit and conflict with it again.
    async fn refresh(
        &self,
        db: &Components,
        first_snapshot: Timestamp,
        overtaken_by: Option<Timestamp>,
        request: &mut CommitRequest,
    ) -> bool {
        let snapshot = db
            .clock
            .now()
            .latest
            .max(overtaken_by.unwrap_or(Timestamp::ZERO));
        let read = |key: &Key| {
            db.storage.get(GetRequest {
                key: key.clone(),
                ts: snapshot,
            })
        };
        for key in &self.unchanged {
            match read(key).await {
                Ok(GetResponse { newest_ts, .. })
                    if newest_ts.is_none_or(|ts| ts <= first_snapshot) => {}
                _ => return false,
            }
        }
        for write in &mut request.writes {
            let Some(rebase) = self.rebasable.get(&write.key) else {
                continue;
            };
            let Ok(GetResponse {
                value: Some(stored),
                ..
            }) = read(&write.key).await
            else {
                return false; // the row is gone
            };
            match rebase(&stored) {
                Some(value) => write.value = Some(value),
                None => return false,
            }
        }
        request.read_ts = snapshot;
        true
    }
}

/// Sends a commit to the adjudicator, counting it as under way for the watched prefix from
/// before the adjudicator chooses its `commit_ts` until that is known (or the commit failed),
/// so no reader misses it.
async fn adjudicate(
    db: &Components,
    request: CommitRequest,
) -> Result<cairn_types::adjudicator::CommitResponse> {
    let watched = !db.watch.prefix.is_empty()
        && request
            .writes
            .iter()
            .any(|w| w.key.as_bytes().starts_with(&db.watch.prefix));
    if watched {
        db.watch.in_flight.fetch_add(1, Ordering::AcqRel);
    }
    let committed = db.adjudicator.commit(request).await;
    if watched {
        // An outcome unknown (not a conflict) may still commit, at a time not known: from
        // then on nothing is taken as unchanged.
        let last = match &committed {
            Ok(response) => Some(response.commit_ts.0),
            Err(Error::Conflict { .. }) => None,
            Err(_) => Some(u64::MAX),
        };
        if let Some(last) = last {
            db.watch.last_commit.fetch_max(last, Ordering::AcqRel);
        }
        db.watch.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
    committed
}

/// Every critical section on a transaction's read-side state leaves it consistent.
fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits until every clock agrees `commit_ts` is in the past (DESIGN §2).
async fn commit_wait(clock: &dyn Clock, commit_ts: Timestamp) {
    loop {
        let earliest = clock.now().earliest;
        if earliest > commit_ts {
            return;
        }
        clock
            .sleep(Duration::from_nanos(commit_ts.0 - earliest.0 + 1))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_read_set_collapses_into_one_covering_range() {
        let mut read_set = ReadSet::default();
        for n in 0..=MAX_READ_KEYS {
            read_set.add_key(Key::from(format!("k{n:06}")));
        }
        assert!(read_set.keys.is_empty());
        assert_eq!(read_set.ranges.len(), 1);
        let range = &read_set.ranges[0];
        assert!(range.contains(&Key::from("k000000")));
        assert!(range.contains(&Key::from(format!("k{MAX_READ_KEYS:06}"))));
        assert!(
            range.contains(&Key::from("k000001x")),
            "keys between reads are covered too"
        );
        assert!(!range.contains(&Key::from("l")));
    }
}
