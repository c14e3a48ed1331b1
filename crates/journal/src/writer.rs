//! Who writes: the only code that writes segment files or the epoch file.
//!
//! Requests are queued in the order `append`, `fence` and `truncate` were *called* (under the
//! admission lock), and written in batches: take every request queued, write all their
//! records with one `write`, `sync_data` once, publish, then answer them all. That is group
//! commit: N concurrent appends cost one fsync, not N.
//!
//! One batch is written at a time, by one of two: an append that found the journal idle
//! after a batch of one (a lone committer), on a multi-threaded runtime, writes its batch
//! itself, in the task that awaits it ([`LeadDuty`]), which saves two thread hand-offs (to a
//! writer thread and back; on a virtual machine each wakes a sleeping CPU, the larger part of
//! a lone commit's latency). Everything else goes to the writer thread ([`run`]), which
//! writes batch after batch until the queue is empty, so concurrent appends keep sharing
//! fsyncs without a caller blocking a worker thread the others need.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use cairn_types::journal::{
    AppendResponse, Epoch, FenceResponse, PositionedRecord, TruncateResponse,
};
use cairn_types::{CommitRecord, Error, Position, Result, Timestamp};
use tokio::sync::oneshot;

use crate::{lock, segment, Shared};

/// What the writer is asked to do.
pub(crate) enum Request {
    /// Make an entry durable (a record) or published (a heartbeat).
    Append {
        entry: Pending,
        reply: oneshot::Sender<Result<AppendResponse>>,
    },
    /// Make `epoch` durable, after everything queued before it.
    Fence {
        epoch: Epoch,
        reply: oneshot::Sender<Result<FenceResponse>>,
    },
    /// Delete whole segments before `before`.
    Truncate {
        before: Position,
        reply: oneshot::Sender<Result<TruncateResponse>>,
    },
}

/// An admitted append.
pub(crate) enum Pending {
    /// A record with its frame already encoded by the caller.
    Commit {
        frame: Vec<u8>,
        record: CommitRecord,
    },
    /// A promise that no later record has `commit_ts <= ts`.
    Heartbeat(Timestamp),
}

impl Request {
    /// Fences and truncations close a batch, so that they answer with the state as of their
    /// place in call order.
    fn ends_batch(&self) -> bool {
        !matches!(self, Request::Append { .. })
    }

    fn fail(self, error: Error) {
        // A caller that stopped waiting does not need the answer.
        let _ = match self {
            Request::Append { reply, .. } => reply.send(Err(error)).is_ok(),
            Request::Fence { reply, .. } => reply.send(Err(error)).is_ok(),
            Request::Truncate { reply, .. } => reply.send(Err(error)).is_ok(),
        };
    }
}

/// The requests admitted and not yet taken, and who is writing. Taken only briefly: never
/// while a batch is written.
#[derive(Default)]
pub(crate) struct Queue {
    requests: VecDeque<Request>,
    /// A batch is being written (by the writer thread or by an appender).
    writing: bool,
    /// The journal was idle when the last request was queued: its appender will write it.
    leader_expected: bool,
    /// How many requests the last batch held. Under load (batches of several), the next
    /// append after a batch goes to the writer thread too: a caller blocked in fsync would
    /// take a worker thread from the committers that queue up behind it.
    last_batch: usize,
    /// The journal is being dropped: the writer thread stops once the queue is empty.
    closed: bool,
}

/// The queue and the writer thread's wake-up call.
#[derive(Default)]
pub(crate) struct Requests {
    queue: Mutex<Queue>,
    queued: Condvar,
}

impl Requests {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    /// Queues `request` (the caller holds the admission lock, so this is call order).
    /// Returns whether the caller is to write it itself with [`LeadDuty::lead`] (only if
    /// `may_lead`, nothing is queued or being written, and the last batch was a lone
    /// request); otherwise the writer thread will.
    pub(crate) fn push(&self, request: Request, may_lead: bool) -> bool {
        let mut queue = self.lock();
        let lead = may_lead
            && !queue.writing
            && !queue.leader_expected
            && queue.requests.is_empty()
            && queue.last_batch <= 1;
        queue.requests.push_back(request);
        if lead {
            queue.leader_expected = true;
        } else if !queue.writing {
            // The writer thread takes everything queued, including a batch an appender was
            // told to write and has not started: its caller may await this request first.
            queue.leader_expected = false;
            self.queued.notify_one();
        }
        lead
    }

    /// The journal is being dropped: the writer thread takes over the whole queue (refusing
    /// what was not written), so that dropping never waits for an append to be polled.
    pub(crate) fn close(&self) {
        let mut queue = self.lock();
        queue.closed = true;
        queue.leader_expected = false;
        self.queued.notify_all();
    }

    /// Nothing queued and nobody writing.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> bool {
        let queue = self.lock();
        !queue.writing && queue.requests.is_empty()
    }

    /// A batch is being written and nothing else is queued.
    #[cfg(test)]
    pub(crate) fn taken(&self) -> bool {
        let queue = self.lock();
        queue.writing && queue.requests.is_empty()
    }

    /// Requests up to and including the first that ends a batch.
    fn take_batch(queue: &mut Queue) -> Vec<Request> {
        let mut batch = Vec::new();
        while let Some(next) = queue.requests.pop_front() {
            let ends = next.ends_batch();
            batch.push(next);
            if ends {
                break;
            }
        }
        queue.last_batch = batch.len();
        batch
    }
}

/// Held while a batch is written. When dropped, the next batch is the writer thread's; if
/// writing panicked, the journal is poisoned first (what reached the disk is unknown), so
/// later requests fail instead of waiting for a batch that never ends.
struct Writing<'a>(&'a Shared);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let shared = self.0;
        if std::thread::panicking() {
            let why = "the journal's writer panicked; reopen the journal".to_string();
            lock(&shared.admission).poisoned = Some(why);
            shared.published.send_modify(|p| p.poisoned = true);
        }
        let mut queue = shared.requests.lock();
        queue.writing = false;
        if !queue.requests.is_empty() || queue.closed {
            shared.requests.queued.notify_one();
        }
    }
}

/// The writer thread: writes batches that no appender writes itself, until the journal is
/// dropped and its queue is empty.
pub(crate) fn run(shared: Arc<Shared>, writer: Arc<Mutex<Writer>>) {
    let requests = &shared.requests;
    loop {
        let batch = {
            let mut queue = requests.lock();
            loop {
                if !queue.writing && !queue.leader_expected && !queue.requests.is_empty() {
                    break;
                }
                if queue.closed && !queue.writing && queue.requests.is_empty() {
                    return;
                }
                queue = requests
                    .queued
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            queue.writing = true;
            Requests::take_batch(&mut queue)
        };
        let _writing = Writing(&shared);
        lock(&writer).process(batch);
    }
}

/// An append's duty to write the batch it was queued into (see [`Requests::push`]): done by
/// [`LeadDuty::lead`], or handed to the writer thread if the append's future is dropped first.
pub(crate) struct LeadDuty {
    shared: Arc<Shared>,
    writer: Arc<Mutex<Writer>>,
    done: bool,
}

impl LeadDuty {
    pub(crate) fn new(shared: Arc<Shared>, writer: Arc<Mutex<Writer>>) -> Self {
        LeadDuty {
            shared,
            writer,
            done: false,
        }
    }

    /// Writes the queued batch in the caller's thread, unless someone else is writing or has
    /// taken it already.
    pub(crate) fn lead(mut self) {
        self.done = true;
        let requests = &self.shared.requests;
        let batch = {
            let mut queue = requests.lock();
            queue.leader_expected = false;
            if queue.writing || queue.requests.is_empty() {
                return;
            }
            queue.writing = true;
            Requests::take_batch(&mut queue)
        };
        let _writing = Writing(&self.shared);
        lock(&self.writer).process(batch);
        let counters = &self.shared.counters;
        counters.caller_batches.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for LeadDuty {
    fn drop(&mut self) {
        if !self.done {
            let mut queue = self.shared.requests.lock();
            queue.leader_expected = false;
            self.shared.requests.queued.notify_one();
        }
    }
}

/// The active segment and what was written: used by whoever writes the current batch.
pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    /// The active (last) segment, open for appending.
    pub file: File,
    /// Where the active segment starts.
    pub file_start: u64,
    /// The active segment's length: where its records end and the next one is written.
    pub file_len: u64,
    /// How much of the active segment file exists on disk (at least `file_len`): what lies
    /// past `file_len` is zeros written ahead ([`JournalOptions::preallocate_bytes`]).
    pub zeroed_len: u64,
    /// The published watermark (at least the last record's `commit_ts`).
    pub watermark: Timestamp,
    /// Set by the first write or fsync failure; from then on everything fails.
    pub poisoned: Option<String>,
    /// Frames of the batch being written.
    pub buf: Vec<u8>,
    /// Tests only: how many zero fills succeed before one fails as a full disk would make it
    /// (`None`: none fails).
    #[cfg(test)]
    pub zero_fills_before_failure: Option<usize>,
}

impl Writer {
    fn process(&mut self, batch: Vec<Request>) {
        if self.shared.closing.load(Ordering::SeqCst) {
            for request in batch {
                request.fail(Error::Unavailable(
                    "the journal was closed before this request was written; it was not written"
                        .into(),
                ));
            }
            return;
        }
        if let Some(why) = &self.poisoned {
            for request in batch {
                request.fail(Error::Unavailable(why.clone()));
            }
            return;
        }
        let mut appends = Vec::with_capacity(batch.len());
        let mut control = None;
        for request in batch {
            match request {
                Request::Append { entry, reply } => appends.push((entry, reply)),
                other => control = Some(other),
            }
        }

        let ends = match self.write(&appends) {
            Ok(ends) => ends,
            Err(error) => {
                let message = self.poison(&error);
                for (_, reply) in appends {
                    let _ = reply.send(Err(Error::Internal(message.clone())));
                }
                if let Some(request) = control {
                    request.fail(Error::Internal(message));
                }
                return;
            }
        };
        self.publish(appends, ends);
        // After the answers, so the zeros delay only the next batch, and only once per
        // `preallocate_bytes / 2` of journal. A failure poisons the journal like a failed
        // append, so a fence or truncation queued behind it fails too.
        if let Err(error) = self.zero_ahead() {
            let message = self.poison(&error);
            if let Some(request) = control {
                request.fail(Error::Internal(message));
            }
            return;
        }

        match control {
            Some(Request::Fence { epoch, reply }) => {
                let result = match segment::write_epoch(&self.shared.dir, epoch) {
                    Ok(fsyncs) => {
                        self.shared
                            .counters
                            .fsyncs
                            .fetch_add(fsyncs, Ordering::Relaxed);
                        Ok(FenceResponse {
                            tail: Position(self.file_start + self.file_len),
                            // Heartbeats published directly count too.
                            high_ts: self.watermark.max(self.shared.published.borrow().watermark),
                        })
                    }
                    Err(e) => Err(Error::Internal(self.poison(&Error::io(
                        format!(
                            "persisting epoch {} in {}",
                            epoch.0,
                            self.shared.dir.display()
                        ),
                        e,
                    )))),
                };
                let _ = reply.send(result);
            }
            Some(Request::Truncate { before, reply }) => {
                let _ = reply.send(self.truncate(before));
            }
            Some(Request::Append { .. }) | None => {}
        }
    }

    /// Writes the batch's records and makes them durable; returns the end position of each
    /// record, in order. One write and one `sync_data` per segment touched (one, unless the
    /// batch crosses into a new segment).
    fn write(
        &mut self,
        appends: &[(Pending, oneshot::Sender<Result<AppendResponse>>)],
    ) -> Result<Vec<u64>> {
        self.buf.clear();
        let mut ends = Vec::new();
        for (entry, _) in appends {
            let Pending::Commit { frame, .. } = entry else {
                continue;
            };
            let used = self.file_len + self.buf.len() as u64;
            // A record never spans segments; one larger than a segment gets a segment alone.
            if used > 0 && used + frame.len() as u64 > self.shared.options.segment_bytes {
                self.flush()?;
                self.roll()?;
            }
            self.buf.extend_from_slice(frame);
            ends.push(self.file_start + self.file_len + self.buf.len() as u64);
        }
        self.flush()?;
        self.shared
            .counters
            .appends
            .fetch_add(ends.len() as u64, Ordering::Relaxed);
        Ok(ends)
    }

    /// Writes and syncs the buffered frames to the active segment.
    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = segment::path(&self.shared.dir, self.file_start);
        self.file
            .write_all_at(&self.buf, self.file_len)
            .map_err(|e| {
                Error::io(
                    format!("appending to journal segment {}", path.display()),
                    e,
                )
            })?;
        self.shared
            .counters
            .bytes
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        self.file_len += self.buf.len() as u64;
        self.zeroed_len = self.zeroed_len.max(self.file_len);
        self.buf.clear();
        self.shared.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.file
            .sync_data()
            .map_err(|e| Error::io(format!("syncing journal segment {}", path.display()), e))
    }

    /// Starts a new segment where the active one ends.
    fn roll(&mut self) -> Result<()> {
        let start = self.file_start + self.file_len;
        let file = segment::create(&self.shared.dir, start)?;
        // The finished segment's unused zeros go (recovery accepts them if a crash keeps
        // them); nothing in it changes, so this needs no fsync.
        if self.zeroed_len > self.file_len {
            let path = segment::path(&self.shared.dir, self.file_start);
            self.file.set_len(self.file_len).map_err(|e| {
                Error::io(format!("trimming journal segment {}", path.display()), e)
            })?;
        }
        self.file = file;
        self.shared.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.file_start = start;
        self.file_len = 0;
        self.zeroed_len = 0;
        lock(&self.shared.segments).push(start);
        Ok(())
    }

    /// Keeps the active segment's file written with zeros at least `preallocate_bytes / 2`
    /// past its records (up to the segment size), extending it to `preallocate_bytes` past
    /// them when it falls short, and makes the zeros durable. A record later written over
    /// durable zeros changes no file size and allocates no block, so its `sync_data` has only
    /// data to flush, not file-system metadata: about half the latency of an appending fsync
    /// on a virtual disk (PostgreSQL zero-fills its WAL segments for the same reason).
    /// Durability never depends on it: `sync_data` flushes whatever metadata a write needs.
    fn zero_ahead(&mut self) -> Result<()> {
        let ahead = self.shared.options.preallocate_bytes;
        let limit = self.shared.options.segment_bytes.max(self.file_len);
        let target = (self.file_len + ahead).min(limit);
        if ahead == 0 || self.zeroed_len >= (self.file_len + ahead / 2).min(limit) {
            return Ok(());
        }
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        let path = segment::path(&self.shared.dir, self.file_start);
        let context = |e| {
            Error::io(
                format!("zero-filling journal segment {}", path.display()),
                e,
            )
        };
        #[cfg(test)]
        if let Some(left) = self.zero_fills_before_failure.as_mut() {
            if *left == 0 {
                return Err(context(std::io::Error::from(
                    std::io::ErrorKind::StorageFull,
                )));
            }
            *left -= 1;
        }
        while self.zeroed_len < target {
            let n = (target - self.zeroed_len).min(ZEROS.len() as u64) as usize;
            self.file
                .write_all_at(&ZEROS[..n], self.zeroed_len)
                .map_err(context)?;
            self.zeroed_len += n as u64;
        }
        self.shared.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.file.sync_data().map_err(context)
    }

    /// Makes a durable batch visible: ring first, then the watch, then the answers, so that a
    /// reader woken by the watch or by an answer finds the records.
    fn publish(
        &mut self,
        appends: Vec<(Pending, oneshot::Sender<Result<AppendResponse>>)>,
        ends: Vec<u64>,
    ) {
        let tail = Position(self.file_start + self.file_len);
        let mut replies = Vec::with_capacity(appends.len());
        {
            let mut ring = self.shared.ring.write().unwrap_or_else(|e| e.into_inner());
            let mut ends = ends.into_iter();
            for (entry, reply) in appends {
                match entry {
                    Pending::Commit { frame, record } => {
                        let next = ends.next().unwrap_or(tail.0);
                        self.watermark = self.watermark.max(record.commit_ts);
                        ring.push(PositionedRecord {
                            position: Position(next - frame.len() as u64),
                            next: Position(next),
                            record,
                        });
                        replies.push((reply, Position(next)));
                    }
                    Pending::Heartbeat(ts) => {
                        self.watermark = self.watermark.max(ts);
                        replies.push((reply, tail));
                    }
                }
            }
        }
        let watermark = self.watermark;
        self.shared.published.send_modify(|p| {
            p.tail = tail;
            // A heartbeat may have been published directly meanwhile: never go back.
            p.watermark = p.watermark.max(watermark);
            p.announced = p.watermark;
        });
        for (reply, end) in replies {
            let _ = reply.send(Ok(AppendResponse { end }));
        }
    }

    /// Deletes whole segments that end at or before `before`, oldest first, never the active
    /// one. Each removal is made durable before the next, so a crash leaves a suffix of the
    /// segments and never a gap.
    fn truncate(&mut self, before: Position) -> Result<TruncateResponse> {
        loop {
            let victim = {
                let mut segments = lock(&self.shared.segments);
                match segments.get(1) {
                    // The first segment ends where the second starts.
                    Some(&second_start) if second_start <= before.0 => Some(segments.remove(0)),
                    _ => None,
                }
            };
            let Some(start) = victim else {
                break;
            };
            let path = segment::path(&self.shared.dir, start);
            std::fs::remove_file(&path).map_err(|e| {
                Error::io(format!("removing journal segment {}", path.display()), e)
            })?;
            self.shared.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            segment::sync_dir(&self.shared.dir).map_err(|e| {
                Error::io(
                    format!("syncing directory {}", self.shared.dir.display()),
                    e,
                )
            })?;
        }
        Ok(TruncateResponse {
            start: Position(self.shared.start()),
        })
    }

    /// Refuses everything from now on. The state of the failed write on disk is unknown
    /// (an fsync that failed may have dropped dirty pages), so retrying could acknowledge
    /// data that is not there: only a reopen, which re-reads the disk, may continue.
    fn poison(&mut self, error: &Error) -> String {
        let message = format!(
            "{error}; whether this request took effect on disk is unknown, and the journal \
             refuses every later append until it is reopened"
        );
        tracing::error!(%message, "journal poisoned");
        self.poisoned = Some(format!(
            "the journal is poisoned by an earlier write failure ({error}); this request was not \
             written; reopen the journal"
        ));
        lock(&self.shared.admission).poisoned = self.poisoned.clone();
        self.shared.published.send_modify(|p| p.poisoned = true);
        message
    }
}
