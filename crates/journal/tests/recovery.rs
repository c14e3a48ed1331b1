//! Crash recovery on open: a torn tail is cut off, anything else damaged refuses to open.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::fs;
use std::path::Path;

use cairn_journal::JournalOptions;
use cairn_types::journal::PositionedRecord;
use cairn_types::Error;
use common::{append, open, read_all, record, segment, segments, status, timestamps};

/// Writes records at timestamps 10, 20, 30, 40 (about 200 bytes each) into a fresh journal
/// in `dir` and returns them as read back.
async fn four_records(dir: &Path, options: JournalOptions) -> Vec<PositionedRecord> {
    let journal = open(dir, options);
    for ts in [10, 20, 30, 40] {
        append(&journal, record(ts, 200)).await.unwrap();
    }
    read_all(&journal).await
}

/// Every append grows the file, so a segment's length is where its records end.
fn appending() -> JournalOptions {
    JournalOptions {
        preallocate_bytes: 0,
        ..JournalOptions::default()
    }
}

/// Opens `dir` expecting corruption, and checks the message names the file and the offset and
/// that the file was left as it was.
fn assert_refuses_to_open(dir: &Path, file: &Path, offset: u64) {
    let before = fs::read(file).unwrap();
    let err = cairn_journal::FileJournal::open(dir, JournalOptions::default())
        .err()
        .expect("a damaged journal must not open");
    let Error::Data(message) = &err else {
        panic!("expected data corruption, got {err:?}");
    };
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(message.contains(name), "{message}");
    assert!(
        message.contains(&format!("byte offset {offset}")),
        "{message}"
    );
    assert!(message.contains("nothing was dropped"), "{message}");
    assert_eq!(
        fs::read(file).unwrap(),
        before,
        "the damaged file was changed"
    );
}

#[tokio::test]
async fn torn_tail_at_every_cut_point_drops_only_the_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let written = four_records(dir.path(), appending()).await;
    let file = segment(dir.path(), 0);
    let whole = fs::read(&file).unwrap();
    let last = &written[3];
    assert_eq!(last.next.0, whole.len() as u64);

    for cut in last.position.0..last.next.0 {
        fs::write(&file, &whole[..cut as usize]).unwrap();
        let journal = open(dir.path(), appending());
        let kept = read_all(&journal).await;
        assert_eq!(kept, written[..3], "cut at {cut}");
        assert_eq!(status(&journal).await.tail, last.position, "cut at {cut}");
        assert_eq!(
            fs::metadata(&file).unwrap().len(),
            last.position.0,
            "cut at {cut}"
        );
        // The torn record's timestamp was never acknowledged, so 35 is in order again.
        let end = append(&journal, record(35, 10)).await.unwrap().end;
        assert_eq!(
            timestamps(&read_all(&journal).await),
            [10, 20, 30, 35],
            "cut at {cut}"
        );
        assert_eq!(fs::metadata(&file).unwrap().len(), end.0, "cut at {cut}");
    }
}

#[tokio::test]
async fn a_zero_filled_tail_is_space_written_ahead_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let written = four_records(dir.path(), appending()).await;
    let file = segment(dir.path(), 0);
    let mut bytes = fs::read(&file).unwrap();
    bytes.extend_from_slice(&[0; 4096]); // as a file system may show an unsynced extension
    let len = bytes.len() as u64;
    fs::write(&file, bytes).unwrap();
    let journal = open(dir.path(), appending());
    assert_eq!(read_all(&journal).await, written);
    assert_eq!(
        fs::metadata(&file).unwrap().len(),
        len,
        "zeros are not torn"
    );
    // The next record goes where the records end, over the zeros.
    append(&journal, record(50, 10)).await.unwrap();
    drop(journal);
    let journal = open(dir.path(), appending());
    let all = read_all(&journal).await;
    assert_eq!(timestamps(&all), [10, 20, 30, 40, 50]);
    assert_eq!(all[4].position, written[3].next);
}

#[tokio::test]
async fn a_last_record_failing_its_payload_checksum_at_end_of_file_is_torn() {
    let dir = tempfile::tempdir().unwrap();
    let written = four_records(dir.path(), appending()).await;
    let file = segment(dir.path(), 0);
    let mut bytes = fs::read(&file).unwrap();
    let last_byte = bytes.len() - 1;
    bytes[last_byte] ^= 0xff;
    fs::write(&file, bytes).unwrap();
    let journal = open(dir.path(), appending());
    assert_eq!(read_all(&journal).await, written[..3]);
}

#[tokio::test]
async fn payload_corruption_in_a_middle_record_fails_open_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let written = four_records(dir.path(), JournalOptions::default()).await;
    let file = segment(dir.path(), 0);
    let mut bytes = fs::read(&file).unwrap();
    bytes[written[1].position.0 as usize + 100] ^= 0x01;
    fs::write(&file, bytes).unwrap();
    assert_refuses_to_open(dir.path(), &file, written[1].position.0);
}

#[tokio::test]
async fn a_payload_checksum_failure_with_data_after_it_is_corruption_even_in_the_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let written = four_records(dir.path(), appending()).await;
    let file = segment(dir.path(), 0);
    let mut bytes = fs::read(&file).unwrap();
    bytes[written[3].position.0 as usize + 20] ^= 0x01;
    bytes.extend_from_slice(b"more bytes after the frame");
    fs::write(&file, bytes).unwrap();
    assert_refuses_to_open(dir.path(), &file, written[3].position.0);
}

#[tokio::test]
async fn header_corruption_fails_open_naming_file_and_offset() {
    for (victim, header_byte) in [(1, 0), (2, 5), (3, 1), (3, 10)] {
        let dir = tempfile::tempdir().unwrap();
        let written = four_records(dir.path(), JournalOptions::default()).await;
        let file = segment(dir.path(), 0);
        let mut bytes = fs::read(&file).unwrap();
        let at: &PositionedRecord = &written[victim];
        bytes[at.position.0 as usize + header_byte] ^= 0x10;
        fs::write(&file, bytes).unwrap();
        // Even in the last record: its payload follows the damaged header, so it is not torn.
        assert_refuses_to_open(dir.path(), &file, at.position.0);
    }
}

/// Small segments: about three 200-byte records each.
fn small_segments() -> JournalOptions {
    JournalOptions {
        segment_bytes: 700,
        ..appending()
    }
}

async fn several_segments(dir: &Path) -> Vec<PositionedRecord> {
    let journal = open(dir, small_segments());
    for ts in 1..=20 {
        append(&journal, record(ts * 10, 200)).await.unwrap();
    }
    let written = read_all(&journal).await;
    assert!(segments(dir).len() >= 4, "{:?}", segments(dir));
    written
}

#[tokio::test]
async fn a_torn_end_of_an_earlier_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    several_segments(dir.path()).await;
    let starts = segments(dir.path());
    let file = segment(dir.path(), starts[1]);
    let len = fs::metadata(&file).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let err = cairn_journal::FileJournal::open(dir.path(), small_segments())
        .err()
        .unwrap();
    let Error::Data(message) = err else {
        panic!("expected data corruption, got {err:?}")
    };
    assert!(
        message.contains(&format!("{:020}.log", starts[1])),
        "{message}"
    );
    assert!(message.contains("nothing was dropped"), "{message}");
    assert_eq!(
        fs::metadata(&file).unwrap().len(),
        len - 5,
        "nothing was cut"
    );
}

#[tokio::test]
async fn a_missing_segment_is_a_gap_and_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    several_segments(dir.path()).await;
    let starts = segments(dir.path());
    fs::remove_file(segment(dir.path(), starts[2])).unwrap();
    let err = cairn_journal::FileJournal::open(dir.path(), small_segments())
        .err()
        .unwrap();
    let Error::Data(message) = err else {
        panic!("expected data corruption, got {err:?}")
    };
    let before_gap = segment(dir.path(), starts[1]);
    let len = fs::metadata(&before_gap).unwrap().len();
    assert!(
        message.contains(&format!("{:020}.log", starts[1])),
        "{message}"
    );
    assert!(message.contains(&format!("byte offset {len}")), "{message}");
    assert!(
        message.contains(&format!("{:020}.log", starts[3])),
        "{message}"
    );
}

#[tokio::test]
async fn a_torn_tail_in_the_last_of_several_segments_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let written = several_segments(dir.path()).await;
    let last = written.last().unwrap();
    let starts = segments(dir.path());
    let file = segment(dir.path(), *starts.last().unwrap());
    let len = fs::metadata(&file).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let journal = open(dir.path(), small_segments());
    assert_eq!(read_all(&journal).await, written[..written.len() - 1]);
    assert_eq!(status(&journal).await.tail, last.position);
}

/// The bytes of the segment starting at 0 after its records, which must all be zeros.
fn zeros_after_records(dir: &Path, records_end: u64) -> usize {
    let bytes = fs::read(segment(dir, 0)).unwrap();
    let ahead = &bytes[records_end as usize..];
    assert!(
        ahead.iter().all(|b| *b == 0),
        "only zeros follow the records"
    );
    ahead.len()
}

#[tokio::test]
async fn records_overwrite_zeros_written_ahead_and_a_reopen_continues_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions::default();
    let written = four_records(dir.path(), options.clone()).await;
    let end = written[3].next;
    let ahead = zeros_after_records(dir.path(), end.0) as u64;
    assert!(
        ahead >= options.preallocate_bytes / 2,
        "{ahead} zero bytes written ahead"
    );
    for cycle in 0..3u64 {
        let journal = open(dir.path(), options.clone());
        let all = read_all(&journal).await;
        assert_eq!(all.len() as u64, 4 + cycle, "nothing lost or invented");
        assert_eq!(status(&journal).await.tail, all.last().unwrap().next);
        let ts = 100 + cycle;
        let appended = append(&journal, record(ts, 200)).await.unwrap();
        let all = read_all(&journal).await;
        assert_eq!(all.last().unwrap().next, appended.end);
        assert_eq!(all[all.len() - 2].next, all.last().unwrap().position);
        zeros_after_records(dir.path(), appended.end.0);
    }
}

#[tokio::test]
async fn a_record_torn_inside_zeros_written_ahead_is_cut() {
    // A crash during the last (unacknowledged) write: part of the record reached the disk,
    // the rest of the preallocated space is still zeros.
    type Damage = fn(&mut [u8]);
    let damage: [(&str, Damage); 3] = [
        ("second half never written", |frame| {
            let half = frame.len() / 2;
            frame[half..].fill(0);
        }),
        ("payload scrambled", |frame| frame[40] ^= 0x5a),
        ("header damaged, nothing after it", |frame| {
            frame[12..].fill(0);
            frame[2] ^= 0x01;
        }),
    ];
    for (what, damage) in damage {
        let dir = tempfile::tempdir().unwrap();
        let written = four_records(dir.path(), JournalOptions::default()).await;
        assert!(zeros_after_records(dir.path(), written[3].next.0) > 0);
        let file = segment(dir.path(), 0);
        let mut bytes = fs::read(&file).unwrap();
        let last = &written[3];
        damage(&mut bytes[last.position.0 as usize..last.next.0 as usize]);
        fs::write(&file, bytes).unwrap();
        let journal = open(dir.path(), JournalOptions::default());
        assert_eq!(read_all(&journal).await, written[..3], "{what}");
        assert_eq!(status(&journal).await.tail, last.position, "{what}");
        let end = append(&journal, record(35, 10)).await.unwrap().end;
        assert_eq!(
            timestamps(&read_all(&journal).await),
            [10, 20, 30, 35],
            "{what}"
        );
        zeros_after_records(dir.path(), end.0);
    }
}

#[tokio::test]
async fn damage_before_zeros_written_ahead_is_still_corruption_if_records_follow() {
    let dir = tempfile::tempdir().unwrap();
    let written = four_records(dir.path(), JournalOptions::default()).await;
    assert!(zeros_after_records(dir.path(), written[3].next.0) > 0);
    let file = segment(dir.path(), 0);
    let mut bytes = fs::read(&file).unwrap();
    bytes[written[2].position.0 as usize + 30] ^= 0x01;
    fs::write(&file, bytes).unwrap();
    assert_refuses_to_open(dir.path(), &file, written[2].position.0);
}

#[tokio::test]
async fn an_earlier_segment_that_kept_its_zeros_opens() {
    // The writer trims a segment's unused zeros when it starts the next one, without an
    // fsync: a crash may leave them.
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        segment_bytes: 700,
        ..JournalOptions::default()
    };
    let journal = open(dir.path(), options.clone());
    for ts in 1..=20 {
        append(&journal, record(ts * 10, 200)).await.unwrap();
    }
    let written = read_all(&journal).await;
    drop(journal);
    let starts = segments(dir.path());
    assert!(starts.len() >= 4, "{starts:?}");
    let file = segment(dir.path(), starts[1]);
    let len = fs::metadata(&file).unwrap().len();
    assert_eq!(starts[1] + len, starts[2], "trimmed to its records");
    fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len + 300)
        .unwrap();
    let journal = open(dir.path(), options);
    assert_eq!(read_all(&journal).await, written);
}
