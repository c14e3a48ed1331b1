//! The journal: Cairn's commit point, an append-only log of committed transactions on local
//! disk.
//!
//! # The concept
//!
//! A transaction has committed once its [`CommitRecord`] (its whole write set, as post-images,
//! at one `commit_ts`) is durable in a journal; storage applies the log afterwards and can be
//! rebuilt from it. So the journal must answer three things well: *is it durable* (an append
//! resolves only after fsync), *in what order* (the order `append` was called, which the
//! adjudicator makes equal to `commit_ts` order), and *who may write* (writers are fenced by
//! epoch, so a deposed adjudicator cannot append behind its successor's back). The contract is
//! written on [`cairn_types::journal`]; [`FileJournal`] is its single-machine implementation.
//! A replicated journal (openraft) will put the same frames in its log.
//!
//! # On disk
//!
//! A directory of segment files laid end to end, plus the writer epoch. A [`Position`] is a
//! byte offset in that concatenation: a segment's file name is the position of its first
//! byte, so positions survive truncation and restart without any other index.
//!
//! ```text
//!  dir/
//!   00000000000000000000.log   00000000000000004096.log   00000000000000008190.log   epoch
//!  ┌──────────────────────────┬──────────────────────────┬──────────────────────┐
//!  │ frame │ frame │ frame │  │ frame │ frame │ frame │  │ frame │ frame │ ...  │
//!  └──────────────────────────┴──────────────────────────┴──────────────────────┘
//!  0                          4096                       8190          tail ──▲
//!  ▲ start (first file's name)                                 active segment ┘
//!
//!  frame = [payload len u32 LE][crc32c(payload) u32 LE][crc32c(bytes 0..8) u32 LE][payload]
//!  payload = postcard(Payload::V1 { epoch, record })
//! ```
//!
//! A frame never spans two segments: when the next frame would push the active segment past
//! [`JournalOptions::segment_bytes`], the writer starts a new file where the old one ends.
//!
//! The active segment's file runs on past its last frame with zeros that the writer wrote and
//! synced ahead of time ([`JournalOptions::preallocate_bytes`]), so an append overwrites
//! zeros in place: its `sync_data` flushes data only, with no file size or block allocation
//! to commit (on the AMD EPYC development VM, 150–190 µs instead of 200–360 µs; see
//! docs/benchmarks.md). A segment is
//! trimmed to its frames when the next one starts. Where the records end is therefore not
//! the file's length but the first position from which the file holds only zeros.
//!
//! # Invariants
//!
//! - **Durability.** An append's future resolves `Ok` only after its frame was written and
//!   `sync_data` returned; a new segment's name is made durable by fsyncing the directory
//!   before anything in it is acknowledged; the epoch file is replaced atomically (temporary
//!   file, fsync, rename, fsync directory).
//! - **Order.** `append` validates and enqueues *synchronously, under one lock*, so the queue
//!   order is the call order, whatever order the futures are awaited in. One batch is
//!   written at a time, taken from the front of the queue, so the file order is the queue
//!   order. A record whose `commit_ts` is not above every `commit_ts` and heartbeat admitted
//!   before it is refused.
//! - **Group commit.** Whoever writes takes everything queued, writes it with one `write`,
//!   and calls `sync_data` once for the whole batch ([`FileJournal::stats`] shows it). An
//!   append that finds the journal idle, after a batch of one, writes its batch itself when
//!   its future is first polled; what is queued meanwhile goes to the writer thread, which
//!   writes batch after batch until the queue is empty
//!   ([`JournalOptions::caller_writes_when_idle`]).
//!   Heartbeats ride in the same batches but are not written: once the batch is durable the
//!   published watermark becomes the highest record or heartbeat timestamp in it. A heartbeat
//!   below every record still on its way (admitted, not yet published) skips the writer: it
//!   is published at once, in the caller's task, since every record admitted later must be
//!   above it too; one that reaches such a record is published at once up to just below
//!   that record, and in full with the record's batch. The published watermark only rises,
//!   and every record past the published tail is above it. A quiet one raises the watermark
//!   that status and reads report, but a read waiting for news keeps waiting until the next
//!   publication or [`FileJournal::wake_readers`].
//! - **Whole records only.** Readers see positions up to the published durable tail, and the
//!   tail moves only after fsync; a record is in memory (the tail cache) or on disk, whole.
//! - **Torn tail versus corruption.** A crash can leave the end of the last segment half
//!   written, and such a tail never held an acknowledged record (it was not yet synced). On
//!   open, a segment's records end where only zeros (or nothing) follow: that is the
//!   preallocated space, in any segment (an earlier one may keep its zeros if a crash came
//!   before its trim), and it is kept. In the last segment only: fewer than 12 bytes of
//!   header left, an all-zero header, a damaged header with only zeros after it, a header whose
//!   record runs past the end of the file, or a last frame whose payload checksum fails with
//!   only zeros after it are a *torn tail*: the file is cut there (and fsync'd) with a
//!   warning. Anything else (a damaged header or payload with non-zero data after it,
//!   any damage in an earlier segment, a gap between segments, records out of `commit_ts`
//!   order) cannot come from a crash, so the open fails with [`Error::Data`] naming the file
//!   and byte offset, having dropped nothing: losing acknowledged commits silently is worse
//!   than not starting.
//! - **Fencing.** [`Journal::fence`] raises the epoch at once (later appends with a lower
//!   epoch are refused in `append` itself) and answers once the new epoch is durable, after
//!   every append called before it. A journal never fenced accepts epoch 0.
//! - **Poisoning.** After a failed write or fsync, the journal refuses every later append
//!   until it is reopened. A failed fsync may have dropped the dirty pages it was to write, so
//!   retrying it could "succeed" over lost data; only re-reading the disk on open is safe.
//!
//! # Shortcuts
//!
//! - Heartbeats are not persisted: after a restart the watermark falls back to the last
//!   record's `commit_ts` (the [`FenceResponse::high_ts`] contract says "every heartbeat this
//!   journal still remembers"). A writer that needs its promises to outlive a crash must
//!   fence, which makes the new writer start above `high_ts`.
//! - Reads that miss the tail cache read segment files directly in the caller's task; the
//!   page cache makes them cheap, but they are blocking I/O on an async thread.
//! - The queue to the writer is unbounded: there is no back-pressure on appenders yet.
//! - Opening reads and decodes every retained segment whole (one at a time) to check it.
//! - The tail cache is bounded by record count, not bytes.
//! - The torn-tail rule knows frames, not batches. A crash that persists a later page of the
//!   last (unsynced) batch but not an earlier one leaves a bad frame with data after it, which
//!   reads as corruption: the open refuses and an operator must cut the file at the reported
//!   offset. Recording batch boundaries would let recovery tell the two apart.
//! - Truncation is at segment granularity: a whole segment goes once it ends at or before the
//!   requested position, and the active segment is always kept.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;

use cairn_types::journal::{
    AppendRequest, AppendResponse, Entry, Epoch, FenceRequest, FenceResponse, Journal,
    PositionedRecord, ReadRequest, ReadResponse, StatusRequest, StatusResponse, TruncateRequest,
    TruncateResponse,
};
use cairn_types::seam::BoxFuture;
use cairn_types::{CommitRecord, Error, Position, Result, Timestamp};
use tokio::sync::{oneshot, watch};

mod frame;
mod ring;
mod segment;
mod writer;

pub use frame::MAX_RECORD_BYTES;

use ring::Ring;
use writer::{LeadDuty, Pending, Request, Requests, Writer};

/// How a [`FileJournal`] is laid out and cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    /// A new segment file is started when the next record would make the active one larger
    /// than this. Truncation frees space a segment at a time.
    pub segment_bytes: u64,
    /// How many of the most recent durable records are kept in memory and served to readers
    /// without file I/O (zero: every read goes to the files).
    pub tail_cache_records: usize,
    /// Appends whose encoded record is larger than this are refused with
    /// [`Error::InvalidInput`]; capped at [`MAX_RECORD_BYTES`].
    pub max_record_bytes: u32,
    /// An append that finds nothing queued or being written, after a batch of one (a lone
    /// committer, not a crowd), writes (and fsyncs) its batch in the task that awaits it, instead of handing it to the writer thread and waiting to be
    /// woken. Saves two thread wake-ups per lone commit; blocks that task's thread for the
    /// fsync, as a PostgreSQL backend waits for its own WAL flush. Only on a multi-threaded
    /// tokio runtime.
    pub caller_writes_when_idle: bool,
    /// The active segment file is kept written with durable zeros this far past its last
    /// record (refilled when less than half is left), so that appending a record overwrites
    /// zeros instead of growing the file, and its fsync has no metadata to commit. Zero turns
    /// it off: every append grows the file.
    pub preallocate_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            segment_bytes: 64 << 20,
            tail_cache_records: 65_536,
            max_record_bytes: MAX_RECORD_BYTES,
            caller_writes_when_idle: true,
            preallocate_bytes: 4 << 20,
        }
    }
}

/// What the journal has done since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records made durable.
    pub appends: u64,
    /// fsync calls of every kind (segment data, directory, epoch file). With group commit this
    /// grows far slower than `appends`.
    pub fsyncs: u64,
    /// Bytes written to segment files (frames, headers included).
    pub bytes: u64,
    /// Batches written by the append that found the journal idle rather than by the writer
    /// thread ([`JournalOptions::caller_writes_when_idle`]).
    pub caller_batches: u64,
}

/// A [`Journal`] on local disk. See the crate documentation.
pub struct FileJournal {
    shared: Arc<Shared>,
    /// The active segment, written by the writer thread or by an append (see `writer`).
    writer: Arc<Mutex<Writer>>,
    thread: Option<JoinHandle<()>>,
}

/// What `FileJournal`, its futures and the writer thread share.
pub(crate) struct Shared {
    dir: PathBuf,
    options: JournalOptions,
    /// Validation and enqueueing of every request, in call order.
    admission: Mutex<Admission>,
    /// Admitted requests not yet written, and who is writing.
    requests: Requests,
    /// The durable tail and watermark; moves only after fsync.
    published: watch::Sender<Published>,
    /// The most recent durable records.
    ring: RwLock<Ring>,
    /// Start positions of the segment files, oldest first (never empty).
    segments: Mutex<Vec<u64>>,
    counters: Counters,
    /// Set when the journal is dropped: queued requests are refused, not written.
    closing: AtomicBool,
}

/// The admission state: what `append` checks before enqueueing.
pub(crate) struct Admission {
    /// The current writer epoch (raised by `fence` at call time).
    epoch: Epoch,
    /// The highest `commit_ts` or heartbeat admitted: the next record must be above it.
    floor: Timestamp,
    /// The `commit_ts` of admitted records, oldest first, that may not be published yet:
    /// entries at or below the published watermark are dropped lazily, so the front is the
    /// lowest record still on its way once [`Admission::forget_published`] has run.
    unpublished: VecDeque<Timestamp>,
    /// Requests are taken; false once the journal is closing.
    open: bool,
    /// Why the journal refuses appends after a write failure.
    poisoned: Option<String>,
}

impl Admission {
    /// Drops the records published by now (the watermark covers them) and returns the
    /// lowest `commit_ts` still on its way, if any.
    fn forget_published(&mut self, watermark: Timestamp) -> Option<Timestamp> {
        while self.unpublished.front().is_some_and(|ts| *ts <= watermark) {
            self.unpublished.pop_front();
        }
        self.unpublished.front().copied()
    }

    /// Queues `request` for writing, unless the journal is closing or poisoned; returns
    /// whether the caller is to write it itself ([`Requests::push`]).
    fn send(&self, requests: &Requests, request: Request, may_lead: bool) -> Result<bool> {
        if let Some(why) = &self.poisoned {
            return Err(Error::Unavailable(why.clone()));
        }
        if !self.open {
            return Err(Error::Unavailable("the journal is closing".into()));
        }
        Ok(requests.push(request, may_lead))
    }
}

/// What the writer publishes after each durable batch.
#[derive(Clone, Copy, Debug)]
struct Published {
    tail: Position,
    watermark: Timestamp,
    /// The watermark readers waiting for news were last woken for: quiet heartbeats raise
    /// `watermark` alone, so a follower that saw them waits for the next real news instead
    /// of finding one at every read.
    announced: Timestamp,
    poisoned: bool,
}

#[derive(Default)]
struct Counters {
    appends: AtomicU64,
    fsyncs: AtomicU64,
    bytes: AtomicU64,
    caller_batches: AtomicU64,
}

/// Locks a mutex, ignoring poisoning: every critical section leaves its state consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The first retained position.
    fn start(&self) -> u64 {
        lock(&self.segments).first().copied().unwrap_or_default()
    }
}

impl FileJournal {
    /// Opens (creating if needed) the journal in `dir`, recovering from a crash: a torn tail
    /// of the last segment is cut off; any other damage fails with [`Error::Data`].
    pub fn open(dir: &Path, options: JournalOptions) -> Result<FileJournal> {
        fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating journal directory {}", dir.display()), e))?;
        let epoch = segment::read_epoch(dir)?;
        let mut starts = segment::list(dir)?;
        let counters = Counters::default();
        if starts.is_empty() {
            segment::create(dir, 0)?;
            counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            starts.push(0);
        }

        let mut ring = Ring::new(options.tail_cache_records);
        let mut last_ts = None;
        let mut expected: Option<u64> = None;
        let mut last_len = 0;
        let mut last_file_len = 0;
        for (i, &start) in starts.iter().enumerate() {
            if let Some(expected) = expected.filter(|e| *e != start) {
                let previous = segment::path(dir, starts[i - 1]);
                return Err(Error::Data(format!(
                    "journal segment {} ends at byte offset {} (journal position {expected}) but \
                     the next segment {} starts at journal position {start}; refusing to open \
                     the journal, nothing was dropped",
                    previous.display(),
                    expected - starts[i - 1],
                    segment::path(dir, start).display()
                )));
            }
            let is_last = i + 1 == starts.len();
            let end = segment::scan(dir, start, is_last, last_ts, |s| {
                ring.push(PositionedRecord {
                    position: Position(s.position),
                    next: Position(s.next),
                    record: s.record,
                })
            })?;
            last_ts = end.last_ts;
            last_len = end.len;
            last_file_len = end.file_len;
            expected = Some(start + end.len);
        }
        let file_start = starts.last().copied().unwrap_or_default();
        let active = segment::path(dir, file_start);
        let file = OpenOptions::new()
            .write(true)
            .open(&active)
            .map_err(|e| Error::io(format!("opening journal segment {}", active.display()), e))?;

        let watermark = last_ts.unwrap_or(Timestamp::ZERO);
        let (published, _) = watch::channel(Published {
            tail: Position(file_start + last_len),
            watermark,
            announced: watermark,
            poisoned: false,
        });
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            options,
            admission: Mutex::new(Admission {
                epoch,
                floor: watermark,
                unpublished: VecDeque::new(),
                open: true,
                poisoned: None,
            }),
            requests: Requests::default(),
            published,
            ring: RwLock::new(ring),
            segments: Mutex::new(starts),
            counters,
            closing: AtomicBool::new(false),
        });
        let writer = Arc::new(Mutex::new(Writer {
            shared: Arc::clone(&shared),
            file,
            file_start,
            file_len: last_len,
            zeroed_len: last_file_len,
            watermark,
            poisoned: None,
            buf: Vec::new(),
            #[cfg(test)]
            zero_fills_before_failure: None,
        }));
        let thread = {
            let (shared, writer) = (Arc::clone(&shared), Arc::clone(&writer));
            std::thread::Builder::new()
                .name("cairn-journal-writer".into())
                .spawn(move || writer::run(shared, writer))
                .map_err(|e| Error::io("starting the journal writer thread", e))?
        };
        Ok(FileJournal {
            shared,
            writer,
            thread: Some(thread),
        })
    }

    /// Counts of appends, fsyncs and bytes since open.
    pub fn stats(&self) -> JournalStats {
        let c = &self.shared.counters;
        JournalStats {
            appends: c.appends.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            caller_batches: c.caller_batches.load(Ordering::Relaxed),
        }
    }

    /// Wakes the readers waiting for news, so that they see what was published quietly
    /// ([`Entry::QuietHeartbeat`]).
    pub fn wake_readers(&self) {
        self.shared
            .published
            .send_modify(|p| p.announced = p.watermark);
    }

    /// Validates an append and enqueues it; runs inside `append` itself, so call order is
    /// queue order. With the answer comes the duty to write the batch, if the caller is to.
    fn admit(&self, request: AppendRequest) -> Result<(Answer<AppendResponse>, Option<LeadDuty>)> {
        let wake_readers = !matches!(request.entry, Entry::QuietHeartbeat(_));
        // Encode outside the lock: it is the expensive part and needs no shared state.
        let entry = match request.entry {
            Entry::Commit(record) => Pending::Commit {
                frame: frame::encode(request.epoch, &record, self.shared.options.max_record_bytes)?,
                record,
            },
            Entry::Heartbeat(ts) | Entry::QuietHeartbeat(ts) => Pending::Heartbeat(ts),
        };
        let mut admission = lock(&self.shared.admission);
        if request.epoch < admission.epoch {
            return Err(Error::Unavailable(format!(
                "this writer is fenced: it appends with epoch {} but the journal's epoch is {}, \
                 so a newer writer has taken over; the append was not written",
                request.epoch.0, admission.epoch.0
            )));
        }
        let (reply, answer) = oneshot::channel();
        let ts = match &entry {
            Pending::Commit { record, .. } => {
                if record.commit_ts <= admission.floor {
                    return Err(commit_out_of_order(record, admission.floor));
                }
                record.commit_ts
            }
            Pending::Heartbeat(ts) => {
                let published = *self.shared.published.borrow();
                if *ts <= published.watermark {
                    // Already promised: nothing to publish, but a promise raised quietly so
                    // far becomes news now, as a heartbeat (unlike a quiet one) must wake.
                    if wake_readers && published.announced < published.watermark {
                        self.shared
                            .published
                            .send_modify(|p| p.announced = p.watermark);
                    }
                    let _ = reply.send(Ok(AppendResponse {
                        end: published.tail,
                    }));
                    return Ok((answer, None));
                }
                // Every record still on its way is above this promise (records admitted later
                // are above it too: they must exceed the floor), so nothing can be ordered
                // before it: publish it now instead of through the writer thread. That saves
                // a thread hop on the path of every read that waits for completeness, and
                // lets a read below a commit in its fsync go on without waiting for it. A
                // promise reaching a record on its way is published at once up to just below
                // that record, and in full after it, by the writer. A quiet one does not wake
                // readers waiting for news: its caller delivers it or calls `wake_readers`
                // (through the writer it is published like any other).
                let lowest_unpublished = admission.forget_published(published.watermark);
                let at_once = lowest_unpublished
                    .map_or(*ts, |lowest| (*ts).min(lowest.saturating_sub_nanos(1)));
                if at_once > published.watermark && admission.poisoned.is_none() {
                    self.shared.published.send_if_modified(|p| {
                        p.watermark = p.watermark.max(at_once);
                        if wake_readers {
                            p.announced = p.watermark;
                        }
                        wake_readers
                    });
                    admission.floor = admission.floor.max(at_once);
                    if at_once == *ts {
                        let _ = reply.send(Ok(AppendResponse {
                            end: published.tail,
                        }));
                        return Ok((answer, None));
                    }
                }
                *ts
            }
        };
        if let Pending::Commit { record, .. } = &entry {
            let watermark = self.shared.published.borrow().watermark;
            admission.forget_published(watermark);
            admission.unpublished.push_back(record.commit_ts);
        }
        // On a single-threaded runtime a caller blocked in fsync would keep every other task
        // from queueing its append to share that fsync: there, the thread writes.
        let may_lead = self.shared.options.caller_writes_when_idle
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let lead = admission.send(
            &self.shared.requests,
            Request::Append { entry, reply },
            may_lead,
        )?;
        admission.floor = admission.floor.max(ts);
        let duty = lead.then(|| LeadDuty::new(self.shared.clone(), self.writer.clone()));
        Ok((answer, duty))
    }

    /// Serves a read, waiting for news if asked to.
    async fn read_records(&self, request: ReadRequest) -> Result<ReadResponse> {
        let from = request.from;
        let mut published = self.shared.published.subscribe();
        loop {
            let now = *published.borrow_and_update();
            let start = self.shared.start();
            if from.0 < start {
                return Err(Error::TooOld(format!(
                    "journal position {from} was truncated; the journal now starts at {start}"
                )));
            }
            if from > now.tail {
                return Err(Error::InvalidInput(format!(
                    "journal position {from} is beyond the durable tail {}",
                    now.tail
                )));
            }
            if from == now.tail {
                match request.wait_past {
                    Some(past) if now.announced <= past => {
                        if now.poisoned {
                            return Err(Error::Unavailable(
                                "the journal is poisoned by a write failure: nothing more will \
                                 be appended until it is reopened"
                                    .into(),
                            ));
                        }
                        // The sender lives in `Shared`, which `self` keeps alive.
                        let _ = published
                            .wait_for(|p| p.tail > from || p.announced > past || p.poisoned)
                            .await;
                        continue;
                    }
                    _ => {
                        return Ok(ReadResponse {
                            records: Vec::new(),
                            next: from,
                            watermark: now.watermark,
                        })
                    }
                }
            }
            let max = usize::try_from(request.max_records).unwrap_or(usize::MAX);
            let records = self.collect(from, now.tail, max)?;
            let next = records.last().map_or(from, |r| r.next);
            let watermark = match records.last() {
                _ if next == now.tail => now.watermark,
                Some(last) => last.record.commit_ts,
                // Asked for no records: every record has commit_ts > 0.
                None => Timestamp::ZERO,
            };
            return Ok(ReadResponse {
                records,
                next,
                watermark,
            });
        }
    }

    /// Records from `from` (below `tail`), from the tail cache if it reaches back that far,
    /// else from the segment files.
    fn collect(&self, from: Position, tail: Position, max: usize) -> Result<Vec<PositionedRecord>> {
        let cached = self
            .shared
            .ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(from, tail, max);
        if let Some(records) = cached {
            return records;
        }
        let starts = lock(&self.shared.segments).clone();
        segment::read(&self.shared.dir, &starts, from, tail, max)
    }
}

fn commit_out_of_order(record: &CommitRecord, floor: Timestamp) -> Error {
    Error::InvalidInput(format!(
        "commit_ts {} of transaction {} is not above {floor}, the highest commit_ts or \
         heartbeat already appended to this journal: records must be in strictly increasing \
         commit_ts order",
        record.commit_ts, record.txn_id.0
    ))
}

/// Where the writer's answer to a request arrives.
type Answer<T> = oneshot::Receiver<Result<T>>;

/// Turns a dropped reply channel (the writer thread is gone) into an error.
async fn answer<T>(receiver: Answer<T>) -> Result<T> {
    receiver.await.map_err(|_| {
        Error::Internal(
            "the journal's writer thread stopped before answering; whether the request took \
             effect is unknown"
                .into(),
        )
    })?
}

impl Journal for FileJournal {
    fn append(&self, request: AppendRequest) -> BoxFuture<'static, Result<AppendResponse>> {
        let admitted = self.admit(request);
        Box::pin(async move {
            let (receiver, duty) = admitted?;
            if let Some(duty) = duty {
                // No yield after it (a reschedule per commit): other workers take this
                // one's queued tasks meanwhile, and a caller committing in a loop still
                // yields when tokio's budget runs out.
                duty.lead();
            }
            answer(receiver).await
        })
    }

    fn read(&self, request: ReadRequest) -> BoxFuture<'_, Result<ReadResponse>> {
        Box::pin(self.read_records(request))
    }

    fn fence(&self, request: FenceRequest) -> BoxFuture<'_, Result<FenceResponse>> {
        // Raise the epoch now, in call order; answer once it is durable.
        let admitted = (|| {
            let mut admission = lock(&self.shared.admission);
            if request.epoch <= admission.epoch {
                return Err(Error::Unavailable(format!(
                    "cannot fence with epoch {}: the journal's epoch is already {}, so this \
                     writer is fenced",
                    request.epoch.0, admission.epoch.0
                )));
            }
            let (reply, answer) = oneshot::channel();
            admission.send(
                &self.shared.requests,
                Request::Fence {
                    epoch: request.epoch,
                    reply,
                },
                false,
            )?;
            admission.epoch = request.epoch;
            Ok(answer)
        })();
        Box::pin(async move { answer(admitted?).await })
    }

    fn status(&self, _request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>> {
        let epoch = lock(&self.shared.admission).epoch;
        let published = *self.shared.published.borrow();
        let start = Position(self.shared.start());
        Box::pin(async move {
            Ok(StatusResponse {
                epoch,
                start,
                tail: published.tail,
                watermark: published.watermark,
            })
        })
    }

    fn truncate(&self, request: TruncateRequest) -> BoxFuture<'_, Result<TruncateResponse>> {
        let admitted = (|| {
            let (reply, answer) = oneshot::channel();
            lock(&self.shared.admission).send(
                &self.shared.requests,
                Request::Truncate {
                    before: request.before,
                    reply,
                },
                false,
            )?;
            Ok(answer)
        })();
        Box::pin(async move { answer(admitted?).await })
    }
}

impl Drop for FileJournal {
    /// Stops the writer thread: a batch being written finishes; requests still queued are
    /// answered with [`Error::Unavailable`] (not written) instead of hanging.
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        lock(&self.shared.admission).open = false;
        self.shared.requests.close();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the journal writer thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests;
