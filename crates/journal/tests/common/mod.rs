//! Helpers shared by the journal's integration tests.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

use cairn_journal::{FileJournal, JournalOptions};
use cairn_types::journal::{
    AppendRequest, AppendResponse, Entry, Epoch, Journal, PositionedRecord, ReadRequest,
    StatusRequest, StatusResponse,
};
use cairn_types::{CommitRecord, Key, Position, Result, Timestamp, TxnId, Write};

/// A record at `ts` whose one write carries `len` bytes derived from `ts`.
pub fn record(ts: u64, len: usize) -> CommitRecord {
    CommitRecord {
        txn_id: TxnId(ts),
        commit_ts: Timestamp(ts),
        writes: vec![Write {
            key: Key::from(format!("key-{ts}").as_str()),
            // The journal does not depend on `bytes`; a key's buffer is one.
            value: Some(Key::from(vec![(ts % 251) as u8; len]).0),
        }],
    }
}

/// Appends `record` with epoch 0.
pub async fn append(journal: &impl Journal, record: CommitRecord) -> Result<AppendResponse> {
    journal
        .append(AppendRequest {
            epoch: Epoch(0),
            entry: Entry::Commit(record),
        })
        .await
}

/// The journal's status.
pub async fn status(journal: &impl Journal) -> StatusResponse {
    journal.status(StatusRequest {}).await.unwrap()
}

/// One page of records from `from`.
pub async fn read(
    journal: &impl Journal,
    from: Position,
    max_records: u32,
) -> Result<Vec<PositionedRecord>> {
    let request = ReadRequest {
        from,
        max_records,
        wait_past: None,
    };
    Ok(journal.read(request).await?.records)
}

/// Every record from the start to the tail, in one read.
pub async fn read_all(journal: &impl Journal) -> Vec<PositionedRecord> {
    let start = status(journal).await.start;
    read(journal, start, u32::MAX).await.unwrap()
}

/// The commit timestamps of `records`.
pub fn timestamps(records: &[PositionedRecord]) -> Vec<u64> {
    records.iter().map(|r| r.record.commit_ts.0).collect()
}

/// Opens the journal in `dir`, panicking on failure.
pub fn open(dir: &Path, options: JournalOptions) -> FileJournal {
    FileJournal::open(dir, options).unwrap()
}

/// The path of the segment file starting at `start`.
pub fn segment(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}.log"))
}

/// The start positions of the segment files in `dir`, in order.
pub fn segments(dir: &Path) -> Vec<u64> {
    let mut starts: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    starts.sort_unstable();
    starts
}
