//! The adjudicator conformance suite, in process and through the loopback encoding.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

use std::path::Path;
use std::sync::Arc;

use cairn_adjudicator::{AdjudicatorOptions, LocalAdjudicator};
use cairn_journal::{FileJournal, JournalOptions};
use cairn_types::adjudicator::Loopback;
use cairn_types::clock::Clock;
use cairn_types::journal::Journal;

fn open_journal(dir: &Path) -> Arc<dyn Journal> {
    Arc::new(FileJournal::open(dir, JournalOptions::default()).unwrap())
}

async fn open(journal: Arc<dyn Journal>, clock: Arc<dyn Clock>) -> LocalAdjudicator {
    LocalAdjudicator::open(journal, clock, AdjudicatorOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn in_process_adjudicator_keeps_the_contract() {
    cairn_testkit::adjudicator::conformance(open_journal, async |journal, clock| {
        open(journal, clock).await
    })
    .await;
}

#[tokio::test]
async fn loopback_adjudicator_keeps_the_contract() {
    cairn_testkit::adjudicator::conformance(open_journal, async |journal, clock| {
        Loopback(open(journal, clock).await)
    })
    .await;
}
