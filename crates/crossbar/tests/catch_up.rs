//! `catch_up`: a heartbeat reaches storage at once only when storage already holds every
//! record the journal has published, so completeness never runs ahead of a record.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_clock::ManualClock;
use cairn_crossbar::{catch_up, Shard};
use cairn_journal::{FileJournal, JournalOptions};
use cairn_storage::{FjallStorage, StorageOptions};
use cairn_types::journal::{AppendRequest, Entry, Epoch, FenceRequest, Journal};
use cairn_types::storage::{ApplyEvent, ApplyRequest, StatusRequest, Storage};
use cairn_types::{CommitRecord, JournalId, KeyRange, Position, Timestamp, TxnId, Write};

struct Fixture {
    journal: Arc<dyn Journal>,
    storage: Arc<dyn Storage>,
    journals: Vec<(JournalId, Arc<dyn Journal>)>,
    shards: Vec<Shard>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1), Duration::ZERO));
    let journal: Arc<dyn Journal> = Arc::new(
        FileJournal::open(&dir.path().join("journal"), JournalOptions::default()).unwrap(),
    );
    journal
        .fence(FenceRequest { epoch: Epoch(1) })
        .await
        .unwrap();
    let storage: Arc<dyn Storage> = Arc::new(
        FjallStorage::open(
            &dir.path().join("storage"),
            clock,
            StorageOptions::default(),
        )
        .unwrap(),
    );
    Fixture {
        journals: vec![(JournalId(0), journal.clone())],
        shards: vec![Shard {
            range: KeyRange::all(),
            storage: storage.clone(),
        }],
        journal,
        storage,
        _dir: dir,
    }
}

impl Fixture {
    async fn append(&self, entry: Entry) -> Position {
        let request = AppendRequest {
            epoch: Epoch(1),
            entry,
        };
        self.journal.append(request).await.unwrap().end
    }

    async fn commit(&self, ts: u64) -> (Position, CommitRecord) {
        let record = CommitRecord {
            txn_id: TxnId(ts),
            commit_ts: Timestamp(ts),
            writes: vec![Write {
                key: format!("k{ts}").into(),
                value: Some(Bytes::from_static(b"v")),
            }],
        };
        (self.append(Entry::Commit(record.clone())).await, record)
    }

    async fn apply(&self, next: Position, record: CommitRecord) {
        let events = vec![ApplyEvent::Record {
            journal: JournalId(0),
            next,
            record,
        }];
        self.storage.apply(ApplyRequest { events }).await.unwrap();
    }

    async fn complete_ts(&self) -> Timestamp {
        self.storage
            .status(StatusRequest {})
            .await
            .unwrap()
            .complete_ts
    }
}

#[tokio::test]
async fn a_heartbeat_reaches_storage_at_once_only_when_every_published_record_is_applied() {
    let f = fixture().await;
    let (end, record) = f.commit(10).await;
    f.append(Entry::Heartbeat(Timestamp(20))).await;
    assert!(
        !catch_up(&f.journals, &f.shards).await.unwrap(),
        "the record at 10 is published but not applied"
    );
    assert_eq!(f.complete_ts().await, Timestamp::ZERO);

    f.apply(end, record).await;
    assert!(catch_up(&f.journals, &f.shards).await.unwrap());
    assert_eq!(f.complete_ts().await, Timestamp(20));
    assert!(
        !catch_up(&f.journals, &f.shards).await.unwrap(),
        "nothing newer to promise"
    );

    let (end, record) = f.commit(30).await;
    f.append(Entry::Heartbeat(Timestamp(40))).await;
    assert!(!catch_up(&f.journals, &f.shards).await.unwrap());
    assert_eq!(
        f.complete_ts().await,
        Timestamp(20),
        "a read at 35 must not run before the record at 30 is applied"
    );
    f.apply(end, record).await;
    assert!(catch_up(&f.journals, &f.shards).await.unwrap());
    assert_eq!(f.complete_ts().await, Timestamp(40));
}
