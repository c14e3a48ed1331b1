//! Bad data: a damaged record in the middle of the journal (not a torn tail) stops startup with
//! an error naming the file and the offset; nothing is silently dropped.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

use bytes::Bytes;
use cairn_embedded::{Embedded, Options};
use cairn_types::journal::{Journal, ReadRequest};
use cairn_types::{Error, Position};

#[tokio::test]
async fn a_corrupted_record_mid_journal_fails_startup_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let victim = {
        let db = Embedded::open(Options::new(dir.path())).await.unwrap();
        for n in 0..5 {
            let mut txn = db.database().begin();
            txn.put(format!("k{n}").into(), Bytes::from(vec![b'v'; 100]));
            txn.commit().await.unwrap();
        }
        let read = db
            .journal()
            .read(ReadRequest {
                from: Position(0),
                max_records: 10,
                wait_past: None,
            })
            .await
            .unwrap();
        assert_eq!(read.records.len(), 5);
        read.records[2].clone()
    };
    let segment = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .expect("a journal segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    // A byte inside the third record's payload, well before the tail.
    let offset = (victim.position.0 + (victim.next.0 - victim.position.0) / 2) as usize;
    bytes[offset] ^= 0x55;
    std::fs::write(&segment, bytes).unwrap();

    let result = Embedded::open(Options::new(dir.path())).await;
    let Err(Error::Data(message)) = result.as_ref().map(|_| ()) else {
        panic!("expected a data error, got {:?}", result.map(|_| ()));
    };
    let file_name = segment.file_name().unwrap().to_string_lossy();
    assert!(
        message.contains(file_name.as_ref()),
        "names the file: {message}"
    );
    assert!(
        message.contains(&victim.position.0.to_string()),
        "names the offset: {message}"
    );
}
