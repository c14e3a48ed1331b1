//! The storage conformance suite (`cairn_testkit::storage`) against `FjallStorage`, in process
//! and through the loopback that sends every message through the wire encoding.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

use std::path::Path;
use std::sync::Arc;

use cairn_clock::ManualClock;
use cairn_storage::{FjallStorage, StorageOptions};
use cairn_testkit::storage::{conformance, READ_WAIT_TIMEOUT};
use cairn_types::storage::Loopback;

fn open(dir: &Path, clock: Arc<ManualClock>) -> FjallStorage {
    let options = StorageOptions {
        read_wait_timeout: READ_WAIT_TIMEOUT,
        ..StorageOptions::default()
    };
    FjallStorage::open(dir, clock, options)
        .unwrap_or_else(|e| panic!("opening storage in {}: {e}", dir.display()))
}

#[tokio::test]
async fn fjall_storage_meets_the_storage_contract() {
    conformance(open).await;
}

#[tokio::test]
async fn fjall_storage_through_loopback_meets_the_storage_contract() {
    conformance(|dir, clock| Loopback(open(dir, clock))).await;
}
