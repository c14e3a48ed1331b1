//! [`FjallStorage`]: the [`Storage`] seam on fjall. The byte layout is in [`crate::layout`];
//! this module holds the rules: when a read may answer, how apply stays atomic and
//! idempotent, what a checkpoint promises, and what GC may drop.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use cairn_types::clock::{timeout, Clock};
use cairn_types::seam::BoxFuture;
use cairn_types::storage::{
    ApplyEvent, ApplyRequest, ApplyResponse, CheckpointRequest, CheckpointResponse, GcRequest,
    GcResponse, GetRequest, GetResponse, ScanRequest, ScanResponse, StatusRequest, StatusResponse,
    Storage,
};
use cairn_types::{Error, JournalId, Key, KeyRange, Position, Result, Timestamp};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable, Snapshot};
use tokio::sync::watch;

use crate::latest::LatestCache;
use crate::layout::{self, MetaKey, MAX_FJALL_KEY};

/// Keyspace of the versions `key@commit_ts`.
const VERSIONS: &str = "versions";
/// Keyspace of the applied positions and the GC horizon.
const META: &str = "meta";

/// While skipping versions of one key that a scan cannot use, it steps through this many
/// entries before it opens a new iterator past them: stepping is cheap, a seek is not.
const RESEEK_AFTER: usize = 8;

/// GC commits its deletions in batches of about this many versions (never splitting one key's
/// deletions across two batches, see [`FjallStorage::collect_garbage`]).
const GC_BATCH: usize = 1024;

/// A hint: called with the timestamp a read is about to wait for.
pub type OnWait = Arc<dyn Fn(Timestamp) + Send + Sync>;

/// How a [`FjallStorage`] behaves.
#[derive(Clone)]
pub struct StorageOptions {
    /// How long a read waits for storage to become complete to its timestamp, with storage
    /// applying nothing meanwhile, before it fails with [`Error::Unavailable`]. Measured on
    /// the storage's [`Clock`].
    pub read_wait_timeout: Duration,
    /// Called once, before a read starts waiting for completeness, with the timestamp it
    /// waits for: the embedding process may use it to have the adjudicator publish a
    /// heartbeat sooner, and to deliver it through [`Storage::apply`] itself when the crossbar
    /// has nothing else to bring (embedded Cairn does, with `cairn_crossbar::catch_up`). A
    /// hint for storage: its answers never depend on it, and what it applies must keep the
    /// crossbar's ordering promise (a hook that publishes a quiet heartbeat is responsible for
    /// delivering it or waking the crossbar). It runs on the reading task, so it must return
    /// quickly.
    pub on_wait: Option<OnWait>,
    /// Bytes of fjall's block cache (decompressed blocks of its tables, shared by every
    /// read); filled as reads need blocks.
    pub cache_bytes: u64,
    /// Bytes of the newest-version cache (keys and values of recently read keys, so point
    /// reads at or after a key's newest version skip the LSM tree); zero turns it off.
    pub latest_cache_bytes: u64,
}

/// The block cache's default size: as PostgreSQL's `shared_buffers` on a small server, so a
/// working set that fits one fits the other.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

/// Records writing more keys than this update the newest-version cache's entries of keys it
/// holds but enter no others.
const BULK_WRITES: usize = 4096;

/// The newest-version cache's default size: about 900,000 rows of 100 bytes.
pub const DEFAULT_LATEST_CACHE_BYTES: u64 = 256 << 20;

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            read_wait_timeout: Duration::from_secs(5),
            on_wait: None,
            cache_bytes: DEFAULT_CACHE_BYTES,
            latest_cache_bytes: DEFAULT_LATEST_CACHE_BYTES,
        }
    }
}

impl fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageOptions")
            .field("read_wait_timeout", &self.read_wait_timeout)
            .field("on_wait", &self.on_wait.as_ref().map(|_| "Fn(Timestamp)"))
            .field("cache_bytes", &self.cache_bytes)
            .field("latest_cache_bytes", &self.latest_cache_bytes)
            .finish()
    }
}

/// Writes closer together than this share one [`Unswept`] entry.
const UNSWEPT_GRANULE_NANOS: u64 = 10_000_000;

/// A pass walks only once the writes that may have made garbage number at least the versions
/// the last walk left divided by this. A walk reads every stored version, so walking for a
/// few overwrites in a large store would cost far more than the garbage it removes; this
/// bounds the walks' cost to about this many versions read per write, and the garbage left
/// to about this fraction of the store for overwrites, twice that for deletes (a tombstone
/// and the version it hides). PostgreSQL's autovacuum likewise waits for a table's dead rows
/// to reach a fraction of it (`autovacuum_vacuum_scale_factor`).
const GC_WALK_DIVISOR: u64 = 10;

/// When versions may have become garbage that no GC pass has walked, and how many writes
/// could have made it. A version becomes garbage only once the horizon reaches a newer
/// version of its key (or the version is a tombstone the horizon reached), so a pass has work
/// only if some version was written at or below its horizon and above the last walked one.
/// Each entry `(e, n)` stands for `n` applied writes in `[e, e + 10 ms)`; a write before the
/// last entry is counted in it (a later pass, since the entry is later). Before `opened_at`
/// nothing is known (the versions already stored): its entry counts as unknown (`u64::MAX`),
/// and every pass walks until its horizon passes it. Entries wholly below the horizon of a
/// pass that did not walk are folded into `carried`, so skipped passes keep one count, not
/// an entry per granule.
struct Unswept {
    opened_at: Timestamp,
    entries: VecDeque<(Timestamp, u64)>,
    /// Writes at or below an earlier pass's horizon since the last walk, out of `entries`.
    carried: u64,
}

impl Unswept {
    fn new(opened_at: Timestamp) -> Self {
        Unswept {
            opened_at,
            entries: VecDeque::from([(opened_at, u64::MAX)]),
            carried: 0,
        }
    }

    /// Notes `writes` versions written at `ts`.
    fn written(&mut self, ts: Timestamp, writes: u64) {
        match self.entries.back_mut() {
            Some((last, count)) if ts.0 < last.0.saturating_add(UNSWEPT_GRANULE_NANOS) => {
                *count = count.saturating_add(writes);
            }
            _ => self.entries.push_back((ts, writes)),
        }
    }

    /// Whether a pass at `horizon` walks: it may find garbage, and at least `min_writes`
    /// writes at or below the horizon could have made it. If so, forgets the entries it will
    /// cover entirely (what the pass's snapshot, taken after this, holds); if not, carries
    /// their count, so those writes count toward a later pass.
    fn take_due(&mut self, horizon: Timestamp, min_writes: u64) -> bool {
        let due_writes = self
            .entries
            .iter()
            .take_while(|(start, _)| *start <= horizon)
            .fold(self.carried, |sum, (_, writes)| sum.saturating_add(*writes));
        let walk = horizon < self.opened_at || (due_writes > 0 && due_writes >= min_writes);
        let mut covered = 0u64;
        while let Some(&(start, writes)) = self.entries.front() {
            if start.0.saturating_add(UNSWEPT_GRANULE_NANOS) > horizon.0 {
                break;
            }
            covered = covered.saturating_add(writes);
            self.entries.pop_front();
        }
        self.carried = if walk {
            0
        } else {
            self.carried.saturating_add(covered)
        };
        walk
    }
}

/// MVCC storage on fjall. See the crate documentation for the layout and the invariants.
pub struct FjallStorage {
    path: PathBuf,
    db: Database,
    versions: Keyspace,
    meta: Keyspace,
    clock: Arc<dyn Clock>,
    options: StorageOptions,
    /// The apply mutex: held for the whole of an apply, so batches and the positions they
    /// carry are written in order. Also read by status and checkpoint.
    applied: Mutex<BTreeMap<JournalId, Position>>,
    /// Applied positions known durable (max per journal over checkpoints).
    checkpointed: Mutex<BTreeMap<JournalId, Position>>,
    /// Storage is complete to this timestamp; readers wait on it.
    complete: watch::Sender<Timestamp>,
    /// Applies finished so far: a waiting read that sees it move knows storage is working
    /// through a backlog (a large transaction) rather than stuck.
    applies: AtomicU64,
    /// The GC horizon in force. Raised (and persisted) before GC deletes anything.
    gc_horizon: AtomicU64,
    /// One GC pass at a time, so that the counts it reports are its own.
    gc_pass: Mutex<()>,
    /// Where garbage may have appeared since GC last walked: see [`Unswept`].
    unswept: Mutex<Unswept>,
    /// GC passes that walked the versions (the others had nothing, or too little, to find).
    gc_walks: AtomicU64,
    /// The versions the last walk left (0 before the first): sets how many writes the next
    /// walk waits for ([`GC_WALK_DIVISOR`]).
    stored_versions: AtomicU64,
    /// The newest version of recently read keys (see `latest.rs`).
    latest: LatestCache,
}

impl fmt::Debug for FjallStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FjallStorage")
            .field("path", &self.path)
            .field("complete_ts", &*self.complete.borrow())
            .field(
                "gc_horizon",
                &Timestamp(self.gc_horizon.load(Ordering::SeqCst)),
            )
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Maps a fjall error to [`Error::Internal`], naming what was being done.
fn engine(context: impl fmt::Display) -> impl FnOnce(fjall::Error) -> Error {
    move |err| Error::Internal(format!("storage engine failed {context}: {err}"))
}

/// Locks a mutex; a poisoned one means a panic mid-update, reported rather than propagated.
fn lock<'a, T>(mutex: &'a Mutex<T>, what: &str) -> Result<MutexGuard<'a, T>> {
    mutex.lock().map_err(|_| {
        Error::Internal(format!(
            "storage {what} lock poisoned by an earlier panic; restart storage"
        ))
    })
}

impl FjallStorage {
    /// Opens (or creates) storage in `dir`.
    ///
    /// Recovery: fjall replays its own journal, then storage syncs it once, so the applied
    /// positions recovered from `meta` are durable and count as checkpointed. Storage is
    /// complete to [`Timestamp::ZERO`] until the crossbar delivers a heartbeat: after a
    /// restart it cannot know which records it has yet to see.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, options: StorageOptions) -> Result<Self> {
        let shown = dir.display();
        // fjall's own journal need not reach the OS on every batch: Cairn's journal is the
        // durable copy, and what fjall loses in a crash is a suffix of batches, replayed from
        // the applied position that is stored inside those same batches.
        let db = Database::builder(dir)
            .manual_journal_persist(true)
            .cache_size(options.cache_bytes)
            .open()
            .map_err(engine(format_args!("opening {shown}")))?;
        let versions = db
            .keyspace(VERSIONS, KeyspaceCreateOptions::default)
            .map_err(engine(format_args!(
                "opening keyspace `{VERSIONS}` in {shown}"
            )))?;
        let meta = db
            .keyspace(META, KeyspaceCreateOptions::default)
            .map_err(engine(format_args!("opening keyspace `{META}` in {shown}")))?;
        db.persist(PersistMode::SyncAll)
            .map_err(engine(format_args!("syncing recovered state in {shown}")))?;

        let mut applied = BTreeMap::new();
        for guard in meta.prefix(layout::APPLIED_PREFIX) {
            let (key, value) = guard
                .into_inner()
                .map_err(engine("reading applied positions"))?;
            let meta_key = MetaKey::decode(&key)?;
            if let MetaKey::Applied(journal) = meta_key {
                applied.insert(journal, layout::decode_position(&value, meta_key)?);
            }
        }
        let gc_horizon = match meta.get(MetaKey::GcHorizon.encode()) {
            Ok(Some(value)) => layout::decode_u64(&value, MetaKey::GcHorizon)?,
            Ok(None) => 0,
            Err(err) => return Err(engine("reading the GC horizon")(err)),
        };
        tracing::info!(
            path = %shown,
            applied = ?applied,
            gc_horizon = %Timestamp(gc_horizon),
            "storage opened"
        );
        let (complete, _) = watch::channel(Timestamp::ZERO);
        let opened_at = clock.now().latest;
        Ok(FjallStorage {
            path: dir.to_path_buf(),
            db,
            versions,
            meta,
            clock,
            checkpointed: Mutex::new(applied.clone()),
            applied: Mutex::new(applied),
            complete,
            applies: AtomicU64::new(0),
            gc_horizon: AtomicU64::new(gc_horizon),
            gc_pass: Mutex::new(()),
            unswept: Mutex::new(Unswept::new(opened_at)),
            gc_walks: AtomicU64::new(0),
            stored_versions: AtomicU64::new(0),
            latest: LatestCache::new(options.latest_cache_bytes),
            options,
        })
    }

    /// The directory storage lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn horizon(&self) -> Timestamp {
        Timestamp(self.gc_horizon.load(Ordering::SeqCst))
    }

    fn complete_ts(&self) -> Timestamp {
        *self.complete.borrow()
    }

    /// Refuses a read below the GC horizon.
    fn check_not_too_old(&self, ts: Timestamp) -> Result<()> {
        let horizon = self.horizon();
        if ts < horizon {
            return Err(Error::TooOld(format!(
                "read at {ts} is below storage's GC horizon {horizon}: versions it needs may be \
                 gone; start a new transaction"
            )));
        }
        Ok(())
    }

    /// Waits until storage is complete to `ts`: as long as storage is applying (a large
    /// transaction takes a while), else at most the read timeout.
    async fn wait_until_complete(&self, ts: Timestamp) -> Result<()> {
        let mut receiver = self.complete.subscribe();
        if *receiver.borrow_and_update() >= ts {
            return Ok(());
        }
        if let Some(on_wait) = &self.options.on_wait {
            on_wait(ts);
            // It may have delivered the heartbeat itself: then no timer is needed.
            if *receiver.borrow_and_update() >= ts {
                return Ok(());
            }
        }
        let outcome = loop {
            let applies_before = self.applies.load(Ordering::Acquire);
            let wait = receiver.wait_for(|complete| *complete >= ts);
            match timeout(&*self.clock, self.options.read_wait_timeout, wait).await {
                Some(done) => break Some(done.map(|_| ())),
                None => {
                    // An apply under way (its mutex held) or finished meanwhile: storage is
                    // behind but moving; wait another round.
                    let applying = self.applied.try_lock().is_err();
                    let moved = self.applies.load(Ordering::Acquire) != applies_before;
                    if !(applying || moved) {
                        break None;
                    }
                }
            }
        };
        match outcome {
            Some(Ok(())) => Ok(()),
            // The sender lives in `self`, which outlives this borrow.
            Some(Err(_)) => Err(Error::Internal(
                "storage's completeness channel closed".into(),
            )),
            None => {
                let complete = self.complete_ts();
                tracing::debug!(%ts, %complete, "read timed out waiting for completeness");
                Err(Error::Unavailable(format!(
                    "storage is not complete to {ts}: it has every journal's records only up to \
                     {complete}, and no heartbeat covering {ts} arrived within {:?}; the \
                     crossbar or a journal is behind or down",
                    self.options.read_wait_timeout
                )))
            }
        }
    }

    /// The common frame of every read: too old? wait; read; too old now?
    ///
    /// The second check closes the race with GC: GC raises the horizon *before* it deletes,
    /// so if the horizon is still at or below `ts` after the read, no deletion that could
    /// matter to `ts` had started when the read's snapshot was taken.
    async fn read<T>(&self, ts: Timestamp, read: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.check_not_too_old(ts)?;
        self.wait_until_complete(ts).await?;
        let answer = read(self)?;
        self.check_not_too_old(ts)?;
        Ok(answer)
    }

    /// The newest version of `key` at or before `ts`, and the timestamp of its newest
    /// version at all: from the newest-version cache, or else one seek to the key's newest
    /// version `enc(key) ‖ !MAX` (which fills the cache), then on through older versions to
    /// the first at or before `ts` (a few steps, then a second seek).
    fn read_get(&self, key: &Key, ts: Timestamp) -> Result<(Option<Bytes>, Option<Timestamp>)> {
        let ticket = match self.latest.get(key.as_bytes(), ts) {
            Ok((value, newest_ts)) => return Ok((value, Some(newest_ts))),
            Err(ticket) => ticket,
        };
        let newest = layout::version_key(key.as_bytes(), Timestamp::MAX);
        if newest.len() > MAX_FJALL_KEY {
            return Ok((None, None)); // longer than any stored key: apply refuses such keys
        }
        let oldest = layout::version_key(key.as_bytes(), Timestamp::ZERO);
        let snapshot = self.db.snapshot();
        // A version's timestamp, and its stored key and value (decoded only if wanted).
        let open = |guard: fjall::Guard| -> Result<(Timestamp, fjall::Slice, fjall::Slice)> {
            let (stored_key, value) = guard
                .into_inner()
                .map_err(engine(format_args!("reading key {key}")))?;
            let (_, version_ts) = layout::split_version_key(&stored_key)?;
            Ok((version_ts, stored_key, value))
        };
        let mut versions = snapshot.range(&self.versions, newest..=oldest.clone());
        let Some(first) = versions.next() else {
            return Ok((None, None));
        };
        let (newest_ts, stored_key, stored) = open(first)?;
        let value = layout::decode_value(&stored, &stored_key)?;
        self.latest
            .fill(ticket, key.as_bytes(), newest_ts, value.clone());
        if newest_ts <= ts {
            return Ok((value, Some(newest_ts)));
        }
        let at_ts = |value| Ok((value, Some(newest_ts)));
        const STEPS_BEFORE_SEEKING: usize = 4;
        for guard in versions.by_ref().take(STEPS_BEFORE_SEEKING) {
            let (version_ts, stored_key, stored) = open(guard)?;
            if version_ts <= ts {
                return at_ts(layout::decode_value(&stored, &stored_key)?);
            }
        }
        let from = layout::version_key(key.as_bytes(), ts);
        match snapshot.range(&self.versions, from..=oldest).next() {
            Some(guard) => {
                let (_, stored_key, stored) = open(guard)?;
                at_ts(layout::decode_value(&stored, &stored_key)?)
            }
            None => at_ts(None),
        }
    }

    /// An iterator over `versions` from `from` to the end of the scanned range; `None` if
    /// that holds nothing (fjall must not see inverted bounds).
    fn versions_from(
        &self,
        snapshot: &Snapshot,
        from: Bound<Vec<u8>>,
        end: &Bound<Vec<u8>>,
    ) -> Option<fjall::Iter> {
        layout::bounds_may_hold_keys(&from, end)
            .then(|| snapshot.range(&self.versions, (from, end.clone())))
    }

    /// Live keys of `range` at `ts`, in key order, at most `limit`.
    ///
    /// Walks the versions in order. For each key, versions newer than `ts` are passed over,
    /// the first at or before `ts` decides the key (a row, or nothing if it is a tombstone),
    /// and the key's older versions are passed over. Long runs of passed-over versions are
    /// skipped with a new seek rather than stepped through.
    fn read_scan(&self, range: &KeyRange, ts: Timestamp, limit: u32) -> Result<ScanResponse> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let end = match &range.end {
            Some(end) => layout::upper_bound(layout::encode_key(end.as_bytes())),
            None => Bound::Unbounded,
        };
        let snapshot = self.db.snapshot();
        let start = layout::lower_bound(layout::encode_key(range.start.as_bytes()));
        let Some(mut versions) = self.versions_from(&snapshot, start, &end) else {
            return Ok(ScanResponse {
                rows: Vec::new(),
                resume: None,
            });
        };
        let mut rows = Vec::new();
        // The encoded key being walked, whether it is decided, and how many of its entries
        // were passed over in a row.
        let mut current: Vec<u8> = Vec::new();
        let mut decided = false;
        let mut passed = 0usize;
        while let Some(guard) = versions.next() {
            let (stored_key, value) = guard
                .into_inner()
                .map_err(engine(format_args!("scanning {range:?}")))?;
            let (encoded, version_ts) = layout::split_version_key(&stored_key)?;
            if encoded != current.as_slice() {
                current.clear();
                current.extend_from_slice(encoded);
                decided = false;
                passed = 0;
            }
            if decided || version_ts > ts {
                passed += 1;
                if passed >= RESEEK_AFTER {
                    // Past this key entirely, or straight to its newest version at or before ts.
                    let target = if decided {
                        layout::after_versions_of(&current)
                    } else {
                        layout::version_key_of_encoded(&current, ts)
                    };
                    match self.versions_from(&snapshot, Bound::Included(target), &end) {
                        Some(rest) => versions = rest,
                        None => break,
                    }
                    passed = 0;
                }
                continue;
            }
            decided = true;
            passed = 0;
            let Some(row) = layout::decode_value(&value, &stored_key)? else {
                continue; // a tombstone: the key is deleted at ts
            };
            let key = layout::decode_key(encoded)?;
            if rows.len() == limit {
                return Ok(ScanResponse {
                    rows,
                    resume: Some(key),
                });
            }
            rows.push((key, row));
        }
        Ok(ScanResponse { rows, resume: None })
    }

    /// Applies events in order; see the crate documentation, "Apply".
    fn apply_events(&self, events: Vec<ApplyEvent>) -> Result<Timestamp> {
        let mut applied = lock(&self.applied, "apply")?;
        if events
            .iter()
            .all(|event| matches!(event, ApplyEvent::Heartbeat(_)))
        {
            // Nothing to write (a reader's catch-up, an idle crossbar): no batch, no copies.
            // The mutex was still taken, so an apply of records under way has finished.
            drop(applied);
            let heartbeat = events.iter().filter_map(|event| match event {
                ApplyEvent::Heartbeat(ts) => Some(*ts),
                ApplyEvent::Record { .. } => None,
            });
            return Ok(self.finish_apply(heartbeat.max()));
        }
        let mut positions = applied.clone();
        // Nothing new may commit at or below this: completeness so far, then each heartbeat.
        let mut covered = self.complete_ts();
        let mut heartbeat = None::<Timestamp>;
        // Sized up front: a batch of thousands of writes would otherwise grow its vectors
        // several times, each into freshly faulted-in memory.
        let writes: usize = events
            .iter()
            .map(|event| match event {
                ApplyEvent::Record { record, .. } => record.writes.len(),
                ApplyEvent::Heartbeat(_) => 0,
            })
            .sum();
        // One slot per write, plus the applied positions (one per journal).
        let slots = writes + positions.len() + 1;
        let mut batch = fjall::OwnedWriteBatch::with_capacity(self.db.clone(), slots);
        let mut records = 0usize;
        // What the newest-version cache learns once the batch is committed.
        let mut written: Vec<(Key, Timestamp, Option<Bytes>, bool)> = Vec::with_capacity(writes);
        let mut newest_write = None::<Timestamp>;
        for event in events {
            let (journal, next, record) = match event {
                ApplyEvent::Heartbeat(ts) => {
                    covered = covered.max(ts);
                    heartbeat = heartbeat.max(Some(ts));
                    continue;
                }
                ApplyEvent::Record {
                    journal,
                    next,
                    record,
                } => (journal, next, record),
            };
            if positions
                .get(&journal)
                .is_some_and(|applied| next <= *applied)
            {
                tracing::trace!(?journal, %next, "skipping a record already applied");
                continue;
            }
            if record.commit_ts <= covered {
                return Err(Error::InvalidInput(format!(
                    "record of txn {} from journal {} at position {next} commits at {}, but \
                     storage was already promised that nothing more commits at or before \
                     {covered}; the crossbar must deliver records in commit_ts order, before \
                     the heartbeats that cover them",
                    record.txn_id.0, journal.0, record.commit_ts
                )));
            }
            for write in &record.writes {
                let key = layout::version_key(write.key.as_bytes(), record.commit_ts);
                if key.len() > MAX_FJALL_KEY {
                    return Err(Error::InvalidInput(format!(
                        "key of {} bytes in txn {} is too long for storage (at most {} bytes, \
                         fewer if it holds zero bytes)",
                        write.key.as_bytes().len(),
                        record.txn_id.0,
                        MAX_FJALL_KEY - 10
                    )));
                }
                if write
                    .value
                    .as_ref()
                    .is_some_and(|v| v.len() >= u32::MAX as usize)
                {
                    return Err(Error::InvalidInput(format!(
                        "value for key {} in txn {} is larger than storage's 4 GiB limit",
                        write.key, record.txn_id.0
                    )));
                }
                batch.insert(
                    &self.versions,
                    key,
                    layout::encode_value(write.value.as_deref()),
                );
            }
            if !record.writes.is_empty() {
                newest_write = Some(record.commit_ts);
            }
            // A bulk write (a large COPY) would only push the cache's other keys out, as
            // PostgreSQL's bulk writes go through a small ring instead of its buffer pool.
            let enter = record.writes.len() <= BULK_WRITES;
            written.extend(
                record
                    .writes
                    .into_iter()
                    .map(|write| (write.key, record.commit_ts, write.value, enter)),
            );
            positions.insert(journal, next);
            records += 1;
        }
        if records > 0 {
            for (journal, next) in &positions {
                if applied.get(journal) != Some(next) {
                    batch.insert(
                        &self.meta,
                        MetaKey::Applied(*journal).encode(),
                        layout::encode_u64(next.0).to_vec(),
                    );
                }
            }
            batch
                .commit()
                .map_err(engine(format_args!("applying {records} records")))?;
            // Before the positions are published (under this mutex) and completeness with
            // them: a reader that may need these versions must find the cache updated.
            for (key, ts, value, enter) in &written {
                self.latest
                    .applied(key.as_bytes(), *ts, value.as_ref(), *enter);
            }
            // After the commit: a GC pass that forgets the entry covering these versions
            // takes its snapshot later, so it holds them. (The batch's older records are
            // covered by its newest: later, so delayed at worst.)
            if let Some(ts) = newest_write {
                lock(&self.unswept, "GC")?.written(ts, written.len() as u64);
            }
            *applied = positions;
        }
        drop(applied);
        Ok(self.finish_apply(heartbeat))
    }

    /// Counts an apply done and raises completeness to its highest heartbeat; returns
    /// completeness.
    fn finish_apply(&self, heartbeat: Option<Timestamp>) -> Timestamp {
        self.applies.fetch_add(1, Ordering::Release);
        if let Some(heartbeat) = heartbeat {
            self.complete.send_if_modified(|complete| {
                let advance = heartbeat > *complete;
                if advance {
                    *complete = heartbeat;
                }
                advance
            });
        }
        self.complete_ts()
    }

    fn status_now(&self) -> Result<StatusResponse> {
        let applied = lock(&self.applied, "apply")?
            .iter()
            .map(|(j, p)| (*j, *p))
            .collect();
        let checkpointed = lock(&self.checkpointed, "checkpoint")?
            .iter()
            .map(|(j, p)| (*j, *p))
            .collect();
        Ok(StatusResponse {
            applied,
            checkpointed,
            complete_ts: self.complete_ts(),
            gc_horizon: self.horizon(),
        })
    }

    /// Reads the applied positions, then syncs fjall's journal: every batch committed before
    /// the read, and so the positions, are durable once the sync returns. The sync runs
    /// outside the apply mutex, so applies do not wait for the disk.
    fn checkpoint_now(&self) -> Result<Vec<(JournalId, Position)>> {
        let positions = lock(&self.applied, "apply")?.clone();
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(engine(format_args!(
                "syncing {} for a checkpoint",
                self.path.display()
            )))?;
        let mut checkpointed = lock(&self.checkpointed, "checkpoint")?;
        for (journal, position) in positions {
            let entry = checkpointed.entry(journal).or_insert(position);
            *entry = (*entry).max(position);
        }
        Ok(checkpointed.iter().map(|(j, p)| (*j, *p)).collect())
    }

    /// Raises the horizon to `requested` (never lowers it), then drops every version no read
    /// at or after the horizon can see. See the crate documentation, "GC".
    fn collect_garbage(&self, requested: Timestamp) -> Result<GcResponse> {
        let _pass = lock(&self.gc_pass, "GC")?;
        let horizon = self.horizon().max(requested);
        if horizon > self.horizon() {
            // Persisted before any deletion: fjall's journal keeps writes in order, so after a
            // crash either the deletions are lost or the horizon that justified them is kept.
            self.meta
                .insert(
                    MetaKey::GcHorizon.encode(),
                    layout::encode_u64(horizon.0).to_vec(),
                )
                .map_err(engine("persisting the GC horizon"))?;
            // Published before any deletion: see `read`.
            self.gc_horizon.store(horizon.0, Ordering::SeqCst);
        }

        let min_writes = self.stored_versions.load(Ordering::Relaxed) / GC_WALK_DIVISOR;
        if !lock(&self.unswept, "GC")?.take_due(horizon, min_writes) {
            tracing::debug!(%horizon, min_writes, "GC pass skipped: fewer versions written at or below the horizon since the last walk than a walk waits for");
            return Ok(GcResponse {
                versions_removed: 0,
                horizon,
            });
        }
        self.gc_walks.fetch_add(1, Ordering::Relaxed);
        let walked = self.walk_for_garbage(horizon);
        if walked.is_err() {
            // What the forgotten entries covered may not have been walked: walk next time.
            lock(&self.unswept, "GC")?
                .entries
                .push_front((Timestamp::ZERO, u64::MAX));
        }
        walked
    }

    /// Deletes every version no read at or after `horizon` can see (the GC rule).
    fn walk_for_garbage(&self, horizon: Timestamp) -> Result<GcResponse> {
        let snapshot = self.db.snapshot();
        let mut batch = self.db.batch();
        let mut removed = 0u64;
        let mut walked = 0u64;
        // The key being walked, whether its newest version at or before the horizon was seen
        // (all older ones go), and its deletions so far, committed together.
        let mut current: Vec<u8> = Vec::new();
        let mut seen_visible = false;
        let mut doomed: Vec<fjall::Slice> = Vec::new();
        for guard in snapshot.iter(&self.versions) {
            let (stored_key, value) = guard
                .into_inner()
                .map_err(engine("scanning versions for GC"))?;
            walked += 1;
            let (encoded, version_ts) = layout::split_version_key(&stored_key)?;
            if encoded != current.as_slice() {
                removed += self.queue_deletions(&mut batch, &mut doomed);
                if batch.len() >= GC_BATCH {
                    batch.commit().map_err(engine("committing GC deletions"))?;
                    batch = self.db.batch();
                }
                current.clear();
                current.extend_from_slice(encoded);
                seen_visible = false;
            }
            if version_ts > horizon {
                continue; // reads at or after the horizon may see it
            }
            if seen_visible {
                doomed.push(stored_key); // shadowed at the horizon by a newer version
                continue;
            }
            seen_visible = true;
            if layout::decode_value(&value, &stored_key)?.is_none() {
                // A tombstone at the horizon reads as absence, as does nothing at all.
                doomed.push(stored_key);
            }
        }
        removed += self.queue_deletions(&mut batch, &mut doomed);
        batch.commit().map_err(engine("committing GC deletions"))?;
        self.stored_versions
            .store(walked.saturating_sub(removed), Ordering::Relaxed);
        tracing::info!(%horizon, walked, removed, "GC pass done");
        Ok(GcResponse {
            versions_removed: removed,
            horizon,
        })
    }

    /// Moves one key's deletions into `batch`, so they all land in one atomic commit (a
    /// reader must never see a tombstone gone but an older version of its key still there).
    fn queue_deletions(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        doomed: &mut Vec<fjall::Slice>,
    ) -> u64 {
        let count = doomed.len() as u64;
        for key in doomed.drain(..) {
            batch.remove(&self.versions, key);
        }
        count
    }
}

impl Storage for FjallStorage {
    fn get(&self, request: GetRequest) -> BoxFuture<'_, Result<GetResponse>> {
        Box::pin(async move {
            let (value, newest_ts) = self
                .read(request.ts, |s| s.read_get(&request.key, request.ts))
                .await?;
            Ok(GetResponse { value, newest_ts })
        })
    }

    fn scan(&self, request: ScanRequest) -> BoxFuture<'_, Result<ScanResponse>> {
        Box::pin(async move {
            let ScanRequest { range, ts, limit } = request;
            if range.is_empty() || limit == 0 {
                return Ok(ScanResponse {
                    rows: Vec::new(),
                    resume: None,
                });
            }
            self.read(ts, |s| s.read_scan(&range, ts, limit)).await
        })
    }

    fn apply(&self, request: ApplyRequest) -> BoxFuture<'_, Result<ApplyResponse>> {
        Box::pin(async move {
            let complete_ts = self.apply_events(request.events)?;
            Ok(ApplyResponse { complete_ts })
        })
    }

    fn status(&self, _request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>> {
        Box::pin(async move { self.status_now() })
    }

    fn checkpoint(&self, _request: CheckpointRequest) -> BoxFuture<'_, Result<CheckpointResponse>> {
        Box::pin(async move {
            Ok(CheckpointResponse {
                checkpointed: self.checkpoint_now()?,
            })
        })
    }

    fn gc(&self, request: GcRequest) -> BoxFuture<'_, Result<GcResponse>> {
        Box::pin(async move { self.collect_garbage(request.horizon) })
    }
}

#[cfg(test)]
mod tests {
    use cairn_clock::ManualClock;
    use cairn_types::{CommitRecord, TxnId, Write};

    use super::*;

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(Timestamp(1_000_000_000), Duration::ZERO))
    }

    fn open(dir: &Path, options: StorageOptions) -> FjallStorage {
        FjallStorage::open(dir, clock(), options).unwrap()
    }

    fn record(next: u64, commit_ts: u64, writes: Vec<Write>) -> ApplyEvent {
        ApplyEvent::Record {
            journal: JournalId(0),
            next: Position(next),
            record: CommitRecord {
                txn_id: TxnId(next),
                commit_ts: Timestamp(commit_ts),
                writes,
            },
        }
    }

    fn put(key: impl Into<Key>, value: &'static str) -> Write {
        Write {
            key: key.into(),
            value: Some(Bytes::from_static(value.as_bytes())),
        }
    }

    async fn apply(s: &FjallStorage, events: Vec<ApplyEvent>) -> Result<Timestamp> {
        s.apply(ApplyRequest { events })
            .await
            .map(|r| r.complete_ts)
    }

    async fn get(s: &FjallStorage, key: impl Into<Key>, ts: u64) -> Result<Option<Bytes>> {
        s.get(GetRequest {
            key: key.into(),
            ts: Timestamp(ts),
        })
        .await
        .map(|r| r.value)
    }

    /// Point reads answered from the newest-version cache see every version applied after
    /// the key was cached, and reads before the cached version still find older ones.
    /// Apply enters the keys of an ordinary record in the newest-version cache, and only
    /// updates cached keys for a bulk record (more than `BULK_WRITES` keys).
    #[tokio::test]
    async fn written_keys_are_cached_unless_the_record_is_a_bulk_load() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), StorageOptions::default());
        let cached = |key: &str| s.latest.get(key.as_bytes(), Timestamp(100)).is_ok();
        apply(&s, vec![record(1, 10, vec![put("small", "v")])])
            .await
            .unwrap();
        assert!(cached("small"));
        let names: Vec<String> = (0..=BULK_WRITES).map(|i| format!("bulk{i}")).collect();
        let mut writes: Vec<Write> = names.iter().map(|name| put(name.as_str(), "v")).collect();
        writes.push(put("small", "w"));
        apply(&s, vec![record(2, 20, writes)]).await.unwrap();
        assert!(!cached("bulk0") && !cached(&format!("bulk{BULK_WRITES}")));
        assert_eq!(
            s.latest.get(b"small", Timestamp(100)).map(|(_, ts)| ts),
            Ok(Timestamp(20)),
            "a cached key is still updated"
        );
    }

    #[tokio::test]
    async fn point_reads_after_new_versions_never_answer_from_a_stale_cache() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), StorageOptions::default());
        // The value at `ts`, as text.
        async fn text(s: &FjallStorage, key: &'static str, ts: u64) -> Option<String> {
            let value = get(s, key, ts).await.unwrap()?;
            Some(String::from_utf8(value.to_vec()).unwrap())
        }
        let tombstone = |key: &'static str| Write {
            key: key.into(),
            value: None,
        };
        apply(&s, vec![record(1, 10, vec![put("k", "v10")])])
            .await
            .unwrap();
        apply(&s, vec![ApplyEvent::Heartbeat(Timestamp(12))])
            .await
            .unwrap();
        for _ in 0..2 {
            assert_eq!(text(&s, "k", 12).await.as_deref(), Some("v10"));
        }
        assert_eq!(text(&s, "absent", 12).await, None);

        let events = vec![
            record(2, 20, vec![put("k", "v20"), put("absent", "now")]),
            ApplyEvent::Heartbeat(Timestamp(25)),
        ];
        apply(&s, events).await.unwrap();
        for ts in [25, 20] {
            assert_eq!(text(&s, "k", ts).await.as_deref(), Some("v20"));
        }
        assert_eq!(text(&s, "absent", 25).await.as_deref(), Some("now"));
        assert_eq!(text(&s, "k", 15).await.as_deref(), Some("v10"));
        assert_eq!(text(&s, "absent", 15).await, None);

        // Versions 30..=37 then a tombstone: a read at 25 steps past more than a few.
        let mut next = 3;
        for ts in 30..38 {
            apply(&s, vec![record(next, ts, vec![put("k", "many")])])
                .await
                .unwrap();
            next += 1;
        }
        let events = vec![
            record(next, 40, vec![tombstone("k")]),
            ApplyEvent::Heartbeat(Timestamp(45)),
        ];
        apply(&s, events).await.unwrap();
        assert_eq!(text(&s, "k", 45).await, None);
        assert_eq!(text(&s, "k", 36).await.as_deref(), Some("many"));
        assert_eq!(text(&s, "k", 25).await.as_deref(), Some("v20"));
        s.gc(GcRequest {
            horizon: Timestamp(45),
        })
        .await
        .unwrap();
        assert_eq!(text(&s, "k", 45).await, None);
    }

    #[tokio::test]
    async fn on_wait_hears_once_from_each_read_that_has_to_wait() {
        let dir = tempfile::tempdir().unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let heard = calls.clone();
        let on_wait: OnWait = Arc::new(move |ts| heard.lock().unwrap().push(ts));
        let options = StorageOptions {
            on_wait: Some(on_wait),
            ..StorageOptions::default()
        };
        let s = Arc::new(open(dir.path(), options));
        apply(&s, vec![ApplyEvent::Heartbeat(Timestamp(10))])
            .await
            .unwrap();
        get(&s, "a", 10).await.unwrap();
        assert!(
            calls.lock().unwrap().is_empty(),
            "a read that need not wait is not reported"
        );

        let waiting = tokio::spawn({
            let s = s.clone();
            async move { get(&s, "a", 20).await }
        });
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert_eq!(*calls.lock().unwrap(), vec![Timestamp(20)]);
        apply(&s, vec![ApplyEvent::Heartbeat(Timestamp(20))])
            .await
            .unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), None);
        assert_eq!(
            calls.lock().unwrap().len(),
            1,
            "called once per wait, not per wake-up"
        );
    }

    #[tokio::test]
    #[allow(clippy::await_holding_lock)] // the held apply mutex is the point of the test
    async fn a_read_outwaits_the_timeout_while_storage_applies_but_not_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let options = StorageOptions {
            read_wait_timeout: Duration::from_secs(1),
            ..StorageOptions::default()
        };
        let s = Arc::new(FjallStorage::open(dir.path(), clock.clone(), options).unwrap());
        let settle = || async {
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
        };
        // An apply under way (a large transaction holds the apply mutex for long).
        let applying = s.applied.lock().unwrap();
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { get(&s, "a", 20).await }
        });
        settle().await;
        clock.advance(Duration::from_secs(3));
        settle().await;
        assert!(
            !waiting.is_finished(),
            "storage is busy: the read goes on waiting"
        );
        drop(applying);
        apply(&s, vec![ApplyEvent::Heartbeat(Timestamp(20))])
            .await
            .unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), None);
        // Nothing applying: the timeout holds.
        let idle = tokio::spawn({
            let s = s.clone();
            async move { get(&s, "a", 30).await }
        });
        settle().await;
        clock.advance(Duration::from_secs(3));
        assert!(matches!(idle.await.unwrap(), Err(Error::Unavailable(_))));
    }

    #[tokio::test]
    async fn a_record_at_or_below_what_completeness_promised_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), StorageOptions::default());
        apply(
            &s,
            vec![
                record(1, 10, vec![put("a", "1")]),
                ApplyEvent::Heartbeat(Timestamp(50)),
            ],
        )
        .await
        .unwrap();
        let late = apply(
            &s,
            vec![
                record(2, 60, vec![put("b", "1")]),
                record(3, 50, vec![put("c", "1")]),
            ],
        );
        assert!(
            matches!(late.await, Err(Error::InvalidInput(_))),
            "50 is covered by the heartbeat"
        );
        let behind_heartbeat = vec![
            record(2, 60, vec![put("b", "1")]),
            ApplyEvent::Heartbeat(Timestamp(70)),
            record(3, 70, vec![put("c", "1")]),
        ];
        let refused = apply(&s, behind_heartbeat).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput(_))),
            "70 is covered earlier in the request"
        );

        let status = s.status(StatusRequest {}).await.unwrap();
        assert_eq!(
            status.applied,
            vec![(JournalId(0), Position(1))],
            "refused requests apply nothing"
        );
        assert_eq!(
            status.complete_ts,
            Timestamp(50),
            "nor do their heartbeats count"
        );
        apply(&s, vec![ApplyEvent::Heartbeat(Timestamp(100))])
            .await
            .unwrap();
        assert_eq!(get(&s, "b", 100).await.unwrap(), None);
    }

    #[tokio::test]
    async fn keys_too_long_for_fjall_are_refused_at_apply_and_absent_to_reads() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), StorageOptions::default());
        let longest_ok = Key::from(vec![b'x'; MAX_FJALL_KEY - 10]);
        let too_long = Key::from(vec![b'x'; MAX_FJALL_KEY - 9]);
        let zeros = Key::from(vec![0u8; MAX_FJALL_KEY / 2]); // doubles when escaped
        for key in [too_long.clone(), zeros] {
            let refused = apply(&s, vec![record(1, 10, vec![Write { key, value: None }])]).await;
            assert!(
                matches!(refused, Err(Error::InvalidInput(_))),
                "{refused:?}"
            );
        }
        let events = vec![
            record(
                1,
                10,
                vec![Write {
                    key: longest_ok.clone(),
                    value: Some("v".into()),
                }],
            ),
            ApplyEvent::Heartbeat(Timestamp(10)),
        ];
        apply(&s, events).await.unwrap();
        assert_eq!(get(&s, longest_ok.clone(), 10).await.unwrap().unwrap(), "v");
        assert_eq!(get(&s, too_long.clone(), 10).await.unwrap(), None);
        let huge = Key::from(vec![b'x'; 2 * MAX_FJALL_KEY]);
        assert_eq!(get(&s, huge.clone(), 10).await.unwrap(), None);

        // Range bounds longer than fjall allows still select exactly the right keys.
        let scan = |range: KeyRange| {
            s.scan(ScanRequest {
                range,
                ts: Timestamp(10),
                limit: 10,
            })
        };
        let from_huge = scan(KeyRange {
            start: huge.clone(),
            end: None,
        })
        .await
        .unwrap();
        assert_eq!(
            from_huge.rows,
            vec![],
            "the stored key sorts before the huge start"
        );
        let to_huge = scan(KeyRange {
            start: Key::default(),
            end: Some(huge.clone()),
        })
        .await
        .unwrap();
        assert_eq!(
            to_huge.rows.len(),
            1,
            "the stored key sorts before the huge end"
        );
        let tiny = scan(KeyRange::between(
            huge.clone(),
            Key::from(vec![b'x'; 2 * MAX_FJALL_KEY + 1]),
        ));
        assert_eq!(tiny.await.unwrap().rows, vec![]);
    }

    #[tokio::test]
    async fn a_damaged_version_is_a_data_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), StorageOptions::default());
        apply(&s, vec![ApplyEvent::Heartbeat(Timestamp(100))])
            .await
            .unwrap();
        s.versions
            .insert(layout::version_key(b"a", Timestamp(10)), vec![9u8])
            .unwrap();
        assert!(matches!(get(&s, "a", 20).await, Err(Error::Data(_))));
        let scan = s.scan(ScanRequest {
            range: KeyRange::all(),
            ts: Timestamp(20),
            limit: 10,
        });
        assert!(matches!(scan.await, Err(Error::Data(_))));
        s.versions
            .insert(b"no framing".to_vec(), vec![1u8])
            .unwrap();
        assert!(matches!(
            s.gc(GcRequest {
                horizon: Timestamp(5)
            })
            .await,
            Err(Error::Data(_))
        ));
    }

    #[tokio::test]
    async fn recovered_applied_positions_count_as_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), StorageOptions::default());
        apply(&s, vec![record(7, 10, vec![put("a", "1")])])
            .await
            .unwrap();
        let status = s.status(StatusRequest {}).await.unwrap();
        assert_eq!(status.applied, vec![(JournalId(0), Position(7))]);
        assert_eq!(
            status.checkpointed,
            vec![],
            "applied without a sync is not yet durable"
        );
        drop(s);
        let s = open(dir.path(), StorageOptions::default());
        let status = s.status(StatusRequest {}).await.unwrap();
        assert_eq!(status.checkpointed, vec![(JournalId(0), Position(7))]);
    }

    #[tokio::test]
    async fn gc_spanning_several_batches_removes_every_shadowed_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), StorageOptions::default());
        let keys = 3 * GC_BATCH;
        let writes = |value: &'static str| -> Vec<Write> {
            (0..keys)
                .map(|i| put(format!("key{i:06}").as_str(), value))
                .collect()
        };
        let deletes = (0..keys).step_by(2).map(|i| Write {
            key: format!("key{i:06}").as_str().into(),
            value: None,
        });
        let events = vec![
            record(1, 10, writes("old")),
            record(2, 20, writes("new")),
            record(3, 30, deletes.collect()),
            ApplyEvent::Heartbeat(Timestamp(100)),
        ];
        apply(&s, events).await.unwrap();
        let gc = s
            .gc(GcRequest {
                horizon: Timestamp(30),
            })
            .await
            .unwrap();
        // Every key loses its version at 10; deleted keys also lose 20 and the tombstone.
        assert_eq!(gc.versions_removed, (keys + keys / 2 * 2) as u64);
        assert_eq!(s.versions.iter().count(), keys / 2);
        let live = s.scan(ScanRequest {
            range: KeyRange::all(),
            ts: Timestamp(30),
            limit: u32::MAX,
        });
        let live = live.await.unwrap().rows;
        assert_eq!(live.len(), keys / 2);
        assert!(live.iter().all(|(_, v)| v == "new"));
    }

    /// Timestamps `secs` seconds in, past the test clock's start (1 s): after storage opened.
    fn at(secs: f64) -> Timestamp {
        Timestamp((secs * 1e9) as u64)
    }

    #[tokio::test]
    async fn gc_walks_only_when_a_version_was_written_at_or_below_its_horizon_since_the_last_walk()
    {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), StorageOptions::default());
        let gc = |horizon: Timestamp| s.gc(GcRequest { horizon });
        let versions = |s: &FjallStorage| s.versions.iter().count();
        apply(
            &s,
            vec![
                record(1, at(2.0).0, vec![put("k", "v2")]),
                record(2, at(3.0).0, vec![put("k", "v3")]),
                ApplyEvent::Heartbeat(at(3.0)),
            ],
        )
        .await
        .unwrap();
        // Before the open time, nothing is known: every pass walks.
        assert_eq!(gc(at(0.5)).await.unwrap().versions_removed, 0);
        assert_eq!(s.gc_walks.load(Ordering::Relaxed), 1);
        assert_eq!(gc(at(3.5)).await.unwrap().versions_removed, 1);
        assert_eq!(s.gc_walks.load(Ordering::Relaxed), 2);
        assert_eq!(versions(&s), 1);

        // Nothing written since: the pass does not walk.
        assert_eq!(gc(at(4.0)).await.unwrap().versions_removed, 0);
        assert_eq!(
            s.gc_walks.load(Ordering::Relaxed),
            2,
            "walked with nothing new"
        );

        // A write above the horizon makes nothing collectable yet; once the horizon reaches
        // it, the version it shadows goes.
        apply(
            &s,
            vec![
                record(3, at(5.0).0, vec![put("k", "v5")]),
                ApplyEvent::Heartbeat(at(5.0)),
            ],
        )
        .await
        .unwrap();
        assert_eq!(gc(at(4.5)).await.unwrap().versions_removed, 0);
        assert_eq!(
            s.gc_walks.load(Ordering::Relaxed),
            2,
            "the write is above the horizon"
        );
        assert_eq!(gc(at(5.0)).await.unwrap().versions_removed, 1);
        assert_eq!(s.gc_walks.load(Ordering::Relaxed), 3);
        assert_eq!(versions(&s), 1);

        // A tombstone is garbage itself once the horizon reaches it.
        apply(
            &s,
            vec![
                record(
                    4,
                    at(6.0).0,
                    vec![Write {
                        key: "k".into(),
                        value: None,
                    }],
                ),
                ApplyEvent::Heartbeat(at(6.0)),
            ],
        )
        .await
        .unwrap();
        assert_eq!(gc(at(7.0)).await.unwrap().versions_removed, 2);
        assert_eq!(versions(&s), 0);
        assert_eq!(gc(at(8.0)).await.unwrap().versions_removed, 0);
        assert_eq!(s.gc_walks.load(Ordering::Relaxed), 4);
    }

    /// Applies one record committed `secs` seconds in, and a heartbeat to it.
    async fn commit_at(s: &FjallStorage, txn: u64, secs: f64, writes: Vec<Write>) {
        let events = vec![
            record(txn, at(secs).0, writes),
            ApplyEvent::Heartbeat(at(secs)),
        ];
        apply(s, events).await.unwrap();
    }

    /// In a store of 100 versions, 9 overwrites are too few to walk for (a walk reads all
    /// 109 versions to remove 9); the tenth makes the walk due, and it removes all ten.
    #[tokio::test]
    async fn gc_walks_only_once_the_writes_due_are_a_tenth_of_the_stored_versions() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), StorageOptions::default());
        let gc = |horizon: Timestamp| s.gc(GcRequest { horizon });
        let walks = || s.gc_walks.load(Ordering::Relaxed);
        let versions = || s.versions.iter().count();
        let puts = |keys: std::ops::Range<usize>, value: &'static str| -> Vec<Write> {
            keys.map(|i| put(format!("k{i:03}"), value)).collect()
        };
        commit_at(&s, 1, 2.0, puts(0..100, "a")).await;
        // The first walk (storage knows nothing of what was stored before it opened).
        assert_eq!(gc(at(3.0)).await.unwrap().versions_removed, 0);
        assert_eq!(walks(), 1);

        commit_at(&s, 2, 4.0, puts(0..9, "b")).await;
        assert_eq!(gc(at(5.0)).await.unwrap().versions_removed, 0);
        assert_eq!(walks(), 1, "walked for 9 writes in a store of 100 versions");
        assert_eq!(versions(), 109);

        commit_at(&s, 3, 6.0, puts(9..10, "b")).await;
        // The skipped pass forgot nothing: the 9 writes still count.
        assert_eq!(gc(at(7.0)).await.unwrap().versions_removed, 10);
        assert_eq!(walks(), 2);
        assert_eq!(versions(), 100);

        // The threshold follows the versions the walk left (100), not those it read (110).
        commit_at(&s, 4, 8.0, puts(10..20, "b")).await;
        assert_eq!(gc(at(9.0)).await.unwrap().versions_removed, 10);
        assert_eq!(walks(), 3);
    }

    #[tokio::test]
    async fn after_a_reopen_gc_walks_until_its_horizon_passes_the_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path(), StorageOptions::default());
            apply(
                &s,
                vec![
                    record(1, at(2.0).0, vec![put("k", "a")]),
                    record(2, at(3.0).0, vec![put("k", "b")]),
                    ApplyEvent::Heartbeat(at(3.0)),
                ],
            )
            .await
            .unwrap();
        }
        // Reopened at 4 s, knowing nothing of what was written before: the first pass whose
        // horizon passes the open walks, although nothing was written since.
        let clock = clock();
        clock.advance(Duration::from_secs(3));
        let s = FjallStorage::open(dir.path(), clock, StorageOptions::default()).unwrap();
        let removed = s
            .gc(GcRequest { horizon: at(4.5) })
            .await
            .unwrap()
            .versions_removed;
        assert_eq!(removed, 1);
        assert_eq!(s.gc_walks.load(Ordering::Relaxed), 1);
        s.gc(GcRequest { horizon: at(5.0) }).await.unwrap();
        assert_eq!(
            s.gc_walks.load(Ordering::Relaxed),
            1,
            "nothing written since"
        );
    }
}
