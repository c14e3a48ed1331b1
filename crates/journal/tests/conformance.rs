//! The journal seam's conformance suite, run against the file journal directly, through the
//! loopback encoding, and with the tail cache off (every read from the files).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

use cairn_journal::{FileJournal, JournalOptions};
use cairn_testkit::journal::conformance;
use cairn_types::journal::Loopback;

/// Small segments, so truncation has whole segments to drop; a small cache, so that reads far
/// behind the tail come from the files.
fn options() -> JournalOptions {
    JournalOptions {
        segment_bytes: 16 << 10,
        tail_cache_records: 16,
        ..JournalOptions::default()
    }
}

#[tokio::test]
async fn file_journal_meets_the_journal_contract() {
    conformance(|dir| FileJournal::open(dir, options()).unwrap()).await;
}

#[tokio::test]
async fn file_journal_through_loopback_meets_the_journal_contract() {
    conformance(|dir| Loopback(FileJournal::open(dir, options()).unwrap())).await;
}

#[tokio::test]
async fn file_journal_without_tail_cache_meets_the_journal_contract() {
    let options = JournalOptions {
        tail_cache_records: 0,
        ..options()
    };
    conformance(|dir| FileJournal::open(dir, options.clone()).unwrap()).await;
}
