//! The crossbar: follows every journal, merges their records by `commit_ts`, and routes each
//! write to the storage shard owning its key (DESIGN §1).
//!
//! ```text
//!  journal 0 ──read(from, wait_past)──┐
//!  journal 1 ──read(from, wait_past)──┤  Merger: releases records with commit_ts <= min(watermarks)
//!                                     ▼  in commit_ts order, then Heartbeat(min watermark)
//!                             shard [a, m) ── apply(events) ──► storage
//!                             shard [m, ∞) ── apply(events) ──► storage
//! ```
//!
//! **Promise to subscribers.** Each storage shard sees records in `commit_ts` order, then a
//! heartbeat `t` meaning "nothing more at or below `t` will come". A record from one journal is
//! released only once every journal has passed its timestamp (by a later record or a
//! watermark), so a slow journal holds the others back instead of being overtaken.
//!
//! **Positions.** Each event carries its journal and the position after it; storage stores
//! them with the data. On start the crossbar reads each journal from the lowest position any
//! shard has applied, and shards skip what they already have.
//!
//! The merge is a plain struct, [`Merger`], with no I/O, so it is tested on its own; [`run`]
//! drives it with one reader task per journal. [`catch_up`] is the same promise made at once,
//! from a reader's task, when storage already has every published record: an idle system's
//! heartbeat then reaches storage without a round trip through [`run`] (embedded Cairn asks for
//! such heartbeats quietly, so that [`run`] is not even woken for them).
//!
//! Shortcuts: one shard receives whole records; a shard whose range holds none of a record's
//! keys still receives the record (empty) so its position advances.

use std::collections::VecDeque;
use std::sync::Arc;

use cairn_types::journal::{self, Journal, PositionedRecord, ReadRequest};
use cairn_types::storage::{ApplyEvent, ApplyRequest, StatusRequest, Storage};
use cairn_types::{CommitRecord, Error, JournalId, KeyRange, Position, Result, Timestamp};
use tokio::sync::mpsc;

/// Records read per journal request.
const READ_BATCH: u32 = 1024;

/// A storage shard: the key range it owns and how to reach it.
#[derive(Clone)]
pub struct Shard {
    /// Keys this shard stores.
    pub range: KeyRange,
    /// The shard.
    pub storage: Arc<dyn Storage>,
}

/// Merges the record streams of several journals into one stream in `commit_ts` order.
#[derive(Debug)]
pub struct Merger {
    sources: Vec<Source>,
    released: Timestamp,
}

#[derive(Debug)]
struct Source {
    journal: JournalId,
    queued: VecDeque<PositionedRecord>,
    /// No record of this journal not yet queued has `commit_ts <= watermark`.
    watermark: Timestamp,
}

impl Merger {
    /// A merger over these journals, none of which has reported anything yet.
    pub fn new(journals: impl IntoIterator<Item = JournalId>) -> Self {
        let sources = journals
            .into_iter()
            .map(|journal| Source {
                journal,
                queued: VecDeque::new(),
                watermark: Timestamp::ZERO,
            })
            .collect();
        Merger {
            sources,
            released: Timestamp::ZERO,
        }
    }

    /// Adds what a read of `journal` returned.
    pub fn push(
        &mut self,
        journal: JournalId,
        records: Vec<PositionedRecord>,
        watermark: Timestamp,
    ) -> Result<()> {
        let source = self
            .sources
            .iter_mut()
            .find(|s| s.journal == journal)
            .ok_or_else(|| Error::Internal(format!("crossbar: unknown journal {journal:?}")))?;
        let last = source
            .queued
            .back()
            .map_or(source.watermark, |r| r.record.commit_ts);
        if let Some(first) = records.first() {
            if first.record.commit_ts <= last {
                return Err(Error::Internal(format!(
                    "crossbar: journal {journal:?} went back in time: record at {} after {last}",
                    first.record.commit_ts
                )));
            }
        }
        source.queued.extend(records);
        source.watermark = source.watermark.max(watermark);
        Ok(())
    }

    /// Takes every record that can no longer be overtaken, in `commit_ts` order, followed by a
    /// heartbeat if the common watermark advanced.
    pub fn release(&mut self) -> Vec<ApplyEvent> {
        let bound = self
            .sources
            .iter()
            .map(|s| s.watermark)
            .min()
            .unwrap_or(Timestamp::ZERO);
        let ready = |source: &Source| {
            source
                .queued
                .iter()
                .take_while(|r| r.record.commit_ts <= bound)
                .count()
        };
        let mut events = Vec::with_capacity(self.sources.iter().map(ready).sum::<usize>() + 1);
        let mut contributing = 0;
        for source in &mut self.sources {
            let n = ready(source);
            contributing += usize::from(n > 0);
            let journal = source.journal;
            events.extend(source.queued.drain(..n).map(|r| ApplyEvent::Record {
                journal,
                next: r.next,
                record: r.record,
            }));
        }
        // Each journal's records are in commit_ts order already: only several need merging.
        if contributing > 1 {
            events.sort_by_key(|event| match event {
                ApplyEvent::Record { record, .. } => record.commit_ts,
                ApplyEvent::Heartbeat(ts) => *ts,
            });
        }
        if bound > self.released {
            self.released = bound;
            events.push(ApplyEvent::Heartbeat(bound));
        }
        events
    }
}

/// Keeps only the writes of `record` whose keys lie in `range`.
fn restrict(record: &CommitRecord, range: &KeyRange) -> CommitRecord {
    CommitRecord {
        txn_id: record.txn_id,
        commit_ts: record.commit_ts,
        writes: record
            .writes
            .iter()
            .filter(|w| range.contains(&w.key))
            .cloned()
            .collect(),
    }
}

/// The events the shard owning `range` should apply out of `events`.
fn route(events: &[ApplyEvent], range: &KeyRange) -> Vec<ApplyEvent> {
    events
        .iter()
        .map(|event| match event {
            ApplyEvent::Record {
                journal,
                next,
                record,
            } => ApplyEvent::Record {
                journal: *journal,
                next: *next,
                record: restrict(record, range),
            },
            ApplyEvent::Heartbeat(ts) => ApplyEvent::Heartbeat(*ts),
        })
        .collect()
}

/// Follows `journals` and feeds `shards` until a journal or a shard fails; returns that error.
/// Drop or abort the task running it to stop.
pub async fn run(journals: Vec<(JournalId, Arc<dyn Journal>)>, shards: Vec<Shard>) -> Result<()> {
    let mut merger = Merger::new(journals.iter().map(|(id, _)| *id));
    let (sender, mut receiver) = mpsc::channel::<
        Result<(JournalId, Vec<PositionedRecord>, Timestamp)>,
    >(4 * journals.len().max(1));
    let mut readers = tokio::task::JoinSet::new();
    for (id, journal) in journals {
        let from = resume_position(id, &shards).await?;
        readers.spawn(follow(id, journal, from, sender.clone()));
    }
    drop(sender);
    let whole_key_space = shards.len() == 1 && shards[0].range == KeyRange::all();
    while let Some(read) = receiver.recv().await {
        let (journal, records, watermark) = read?;
        merger.push(journal, records, watermark)?;
        // Take whatever else is already waiting, so one apply covers it all.
        while let Ok(more) = receiver.try_recv() {
            let (journal, records, watermark) = more?;
            merger.push(journal, records, watermark)?;
        }
        let events = merger.release();
        if events.is_empty() {
            continue;
        }
        if whole_key_space {
            // One shard owns everything: hand it the events without copying them.
            shards[0].storage.apply(ApplyRequest { events }).await?;
            continue;
        }
        for shard in &shards {
            let events = route(&events, &shard.range);
            shard.storage.apply(ApplyRequest { events }).await?;
        }
    }
    Err(Error::Unavailable(
        "crossbar: every journal reader stopped".into(),
    ))
}

/// The lowest position of `journal` that some shard still needs.
async fn resume_position(journal: JournalId, shards: &[Shard]) -> Result<Position> {
    let mut from: Option<Position> = None;
    for shard in shards {
        let status = shard.storage.status(StatusRequest {}).await?;
        let applied = status
            .applied
            .iter()
            .find(|(id, _)| *id == journal)
            .map_or(Position(0), |(_, position)| *position);
        from = Some(from.map_or(applied, |f| f.min(applied)));
    }
    Ok(from.unwrap_or(Position(0)))
}

/// Long-polls one journal and forwards what it reads.
async fn follow(
    id: JournalId,
    journal: Arc<dyn Journal>,
    mut from: Position,
    sender: mpsc::Sender<Result<(JournalId, Vec<PositionedRecord>, Timestamp)>>,
) {
    let mut watermark: Option<Timestamp> = None;
    loop {
        let request = ReadRequest {
            from,
            max_records: READ_BATCH,
            wait_past: watermark,
        };
        match journal.read(request).await {
            Ok(response) => {
                from = response.next;
                watermark = Some(response.watermark);
                if sender
                    .send(Ok((id, response.records, response.watermark)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                let _ = sender.send(Err(e)).await;
                return;
            }
        }
    }
}

/// Raises every shard's completeness to the journals' common published watermark at once,
/// without a round of [`run`], when that keeps [`run`]'s promise: every shard has applied
/// everything every journal has published, so no record at or below the watermark is still
/// on its way (a journal publishes a watermark only once the records under it are published).
/// Returns whether it did. A reader about to wait for completeness calls it after asking for
/// a heartbeat, saving the hand-offs to the crossbar's thread and back. [`run`] delivers the
/// same watermark whenever it next reads the journal (storage takes it as already covered);
/// when the heartbeat was quiet, that is only once something else wakes it.
///
/// The journals' status is read before the shards': a record published in between has a
/// `commit_ts` above the watermark read, so it is not needed for it.
pub async fn catch_up(
    journals: &[(JournalId, Arc<dyn Journal>)],
    shards: &[Shard],
) -> Result<bool> {
    let mut tails = Vec::with_capacity(journals.len());
    let mut bound: Option<Timestamp> = None;
    for (id, journal) in journals {
        let status = journal.status(journal::StatusRequest {}).await?;
        tails.push((*id, status.tail));
        bound = Some(bound.map_or(status.watermark, |b| b.min(status.watermark)));
    }
    let Some(bound) = bound else {
        return Ok(false);
    };
    let mut behind = false;
    for shard in shards {
        let status = shard.storage.status(StatusRequest {}).await?;
        let all_applied = tails.iter().all(|(id, tail)| {
            status
                .applied
                .iter()
                .find(|(journal, _)| journal == id)
                .is_some_and(|(_, applied)| applied >= tail)
        });
        if !all_applied {
            return Ok(false);
        }
        behind |= status.complete_ts < bound;
    }
    if !behind {
        return Ok(false);
    }
    for shard in shards {
        let events = vec![ApplyEvent::Heartbeat(bound)];
        shard.storage.apply(ApplyRequest { events }).await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_types::TxnId;

    fn record(ts: u64, next: u64) -> PositionedRecord {
        PositionedRecord {
            position: Position(next - 1),
            next: Position(next),
            record: CommitRecord {
                txn_id: TxnId(ts),
                commit_ts: Timestamp(ts),
                writes: vec![],
            },
        }
    }

    fn released_timestamps(events: &[ApplyEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                ApplyEvent::Record {
                    journal, record, ..
                } => {
                    format!("j{}@{}", journal.0, record.commit_ts.0)
                }
                ApplyEvent::Heartbeat(ts) => format!("hb{}", ts.0),
            })
            .collect()
    }

    #[test]
    fn a_lagging_journal_holds_back_records_it_could_still_precede() {
        let mut merger = Merger::new([JournalId(0), JournalId(1)]);
        merger
            .push(
                JournalId(0),
                vec![record(10, 1), record(30, 2)],
                Timestamp(30),
            )
            .unwrap();
        assert!(
            merger.release().is_empty(),
            "journal 1 has promised nothing yet"
        );
        merger
            .push(JournalId(1), vec![record(20, 1)], Timestamp(25))
            .unwrap();
        assert_eq!(
            released_timestamps(&merger.release()),
            ["j0@10", "j1@20", "hb25"]
        );
        merger.push(JournalId(1), vec![], Timestamp(40)).unwrap();
        assert_eq!(released_timestamps(&merger.release()), ["j0@30", "hb30"]);
        assert!(
            merger.release().is_empty(),
            "nothing new, no repeated heartbeat"
        );
    }

    #[test]
    fn a_journal_going_back_in_time_is_an_error() {
        let mut merger = Merger::new([JournalId(0)]);
        merger
            .push(JournalId(0), vec![record(10, 1)], Timestamp(10))
            .unwrap();
        assert!(merger
            .push(JournalId(0), vec![record(9, 2)], Timestamp(10))
            .is_err());
    }

    #[test]
    fn shards_receive_only_their_keys_but_every_heartbeat() {
        let mut rec = record(5, 1).record;
        rec.writes = ["a", "n", "x"]
            .into_iter()
            .map(|k| cairn_types::Write {
                key: k.into(),
                value: None,
            })
            .collect();
        let events = [
            ApplyEvent::Record {
                journal: JournalId(0),
                next: Position(1),
                record: rec,
            },
            ApplyEvent::Heartbeat(Timestamp(5)),
        ];
        let routed = route(&events, &KeyRange::between("m", "w"));
        let ApplyEvent::Record { record, next, .. } = &routed[0] else {
            panic!("{routed:?}")
        };
        let keys: Vec<String> = record.writes.iter().map(|w| w.key.to_string()).collect();
        assert_eq!(keys, ["\"n\""]);
        assert_eq!(
            *next,
            Position(1),
            "the position advances even for a shard's part"
        );
        assert_eq!(routed[1], ApplyEvent::Heartbeat(Timestamp(5)));
        assert_eq!(route(&events, &KeyRange::all()), events.to_vec());
    }
}
