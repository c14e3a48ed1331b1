//! Segment files: naming, the recovery scan on open, and reading records back from disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use cairn_types::journal::{Epoch, PositionedRecord};
use cairn_types::{CommitRecord, Error, Position, Result, Timestamp};

use crate::frame::{self, HEADER_LEN, MAX_RECORD_BYTES};

/// The file holding the segment that starts at journal position `start`.
pub(crate) fn path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}.log"))
}

/// The start position encoded in a segment file name, or `None` for any other file.
fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The start positions of the segment files in `dir`, in order.
pub(crate) fn list(dir: &Path) -> Result<Vec<u64>> {
    let context = || format!("listing journal segments in {}", dir.display());
    let mut starts = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(context(), e))? {
        let entry = entry.map_err(|e| Error::io(context(), e))?;
        if let Some(start) = entry.file_name().to_str().and_then(parse_name) {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    Ok(starts)
}

/// Makes the directory entries in `dir` (created, renamed or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates the empty segment file starting at `start` and makes its name durable.
pub(crate) fn create(dir: &Path, start: u64) -> Result<File> {
    let path = path(dir, start);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io(format!("creating journal segment {}", path.display()), e))?;
    sync_dir(dir).map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;
    Ok(file)
}

/// A record found by the recovery scan.
pub(crate) struct Scanned {
    /// Where it starts.
    pub position: u64,
    /// Where the next record starts.
    pub next: u64,
    /// The record.
    pub record: CommitRecord,
}

/// What the recovery scan left of one segment.
pub(crate) struct ScanEnd {
    /// The length of the segment's valid prefix (the file is truncated to it if it was torn).
    pub len: u64,
    /// The file's length after the scan: `len` plus the zeros written ahead of the records.
    pub file_len: u64,
    /// The commit timestamp of its last record, if it has any.
    pub last_ts: Option<Timestamp>,
}

/// Reads every frame of the segment starting at `start`, checking checksums and order, and
/// hands each record to `each`. In the last segment a torn tail (see the crate docs) is cut
/// off; anything else that fails is corruption and fails the whole open.
pub(crate) fn scan(
    dir: &Path,
    start: u64,
    is_last: bool,
    mut last_ts: Option<Timestamp>,
    mut each: impl FnMut(Scanned),
) -> Result<ScanEnd> {
    let path = path(dir, start);
    let data = fs::read(&path)
        .map_err(|e| Error::io(format!("reading journal segment {}", path.display()), e))?;
    let corrupt = |offset: usize, what: &str| {
        Error::Data(format!(
            "journal segment {}: {what} at byte offset {offset} (journal position {}); \
             refusing to open the journal, nothing was dropped: restore or move aside the \
             damaged file",
            path.display(),
            start + offset as u64
        ))
    };
    // Past this, only the zeros the writer keeps ahead of its records (or nothing): the end
    // of the records, in any segment. A damaged frame with nothing but zeros after it is a
    // torn write into those zeros.
    let data_end = data
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1);
    let mut offset = 0usize;
    let torn = loop {
        if offset >= data_end {
            break None;
        }
        let rest = data.len() - offset;
        if rest < HEADER_LEN {
            break Some("fewer than 12 header bytes");
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&data[offset..offset + HEADER_LEN]);
        if header == [0u8; HEADER_LEN] {
            break Some("an all-zero header");
        }
        let Some(parsed) = frame::parse_header(&header) else {
            if offset + HEADER_LEN >= data_end {
                break Some("a damaged header with nothing after it");
            }
            return Err(corrupt(offset, "header checksum mismatch"));
        };
        if parsed.len > MAX_RECORD_BYTES {
            return Err(corrupt(offset, "a header declaring an oversized record"));
        }
        let end = offset + HEADER_LEN + parsed.len as usize;
        if end > data.len() {
            break Some("a record that runs past the end of the file");
        }
        let payload = &data[offset + HEADER_LEN..end];
        if !frame::payload_ok(parsed, payload) {
            if end >= data_end {
                break Some("a last record whose payload checksum fails");
            }
            return Err(corrupt(offset, "payload checksum mismatch"));
        }
        let (_epoch, record) = frame::decode(payload).map_err(|e| corrupt(offset, &e))?;
        if last_ts.is_some_and(|last| record.commit_ts <= last) {
            return Err(corrupt(
                offset,
                "a record whose commit_ts is not above its predecessor's",
            ));
        }
        last_ts = Some(record.commit_ts);
        each(Scanned {
            position: start + offset as u64,
            next: start + end as u64,
            record,
        });
        offset = end;
    };
    if let Some(what) = torn {
        if !is_last {
            return Err(corrupt(offset, &format!("{what} (not the last segment)")));
        }
        tracing::warn!(
            file = %path.display(),
            offset,
            dropped_bytes = data.len() - offset,
            "journal has a torn tail ({what}); truncating it: no acknowledged record is lost, \
             since an append is acknowledged only after its fsync"
        );
        let file = OpenOptions::new().write(true).open(&path).map_err(|e| {
            Error::io(
                format!("opening {} to cut its torn tail", path.display()),
                e,
            )
        })?;
        file.set_len(offset as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(format!("cutting the torn tail of {}", path.display()), e))?;
        return Ok(ScanEnd {
            len: offset as u64,
            file_len: offset as u64,
            last_ts,
        });
    }
    Ok(ScanEnd {
        len: offset as u64,
        file_len: data.len() as u64,
        last_ts,
    })
}

/// Reads up to `max` records from `from` (a record boundary) up to `tail` (the durable tail),
/// crossing segment boundaries. `starts` are the segment starts, as listed at the call.
pub(crate) fn read(
    dir: &Path,
    starts: &[u64],
    from: Position,
    tail: Position,
    max: usize,
) -> Result<Vec<PositionedRecord>> {
    let mut records = Vec::new();
    let mut pos = from.0;
    // The segment holding `pos`: the last one starting at or before it.
    let mut seg = starts.partition_point(|s| *s <= pos).saturating_sub(1);
    let mut open: Option<(BufReader<File>, PathBuf)> = None;
    while records.len() < max && pos < tail.0 {
        while seg + 1 < starts.len() && starts[seg + 1] <= pos {
            seg += 1;
            open = None;
        }
        let start = starts.get(seg).copied().unwrap_or_default();
        let (reader, path) = match &mut open {
            Some(open) => open,
            None => {
                let path = path(dir, start);
                let mut file = match File::open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(Error::TooOld(format!(
                            "journal segment {} was truncated while position {pos} was being \
                             read",
                            path.display()
                        )))
                    }
                    Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
                };
                file.seek(SeekFrom::Start(pos - start))
                    .map_err(|e| Error::io(format!("seeking in {}", path.display()), e))?;
                open.insert((BufReader::new(file), path))
            }
        };
        let offset = pos - start;
        let damaged = |what: &str| {
            Error::Data(format!(
                "journal segment {}: {what} at byte offset {offset} (journal position {pos}), \
                 below the durable tail {tail}",
                path.display()
            ))
        };
        let mut header = [0u8; HEADER_LEN];
        reader
            .read_exact(&mut header)
            .map_err(|e| damaged(&format!("unreadable header ({e})")))?;
        let Some(parsed) = frame::parse_header(&header) else {
            if records.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "journal position {pos} is not a record boundary"
                )));
            }
            return Err(damaged("header checksum mismatch"));
        };
        let next = pos + parsed.frame_len();
        if parsed.len > MAX_RECORD_BYTES || next > tail.0 {
            return Err(damaged("a header declaring a record past the durable tail"));
        }
        let mut payload = vec![0u8; parsed.len as usize];
        reader
            .read_exact(&mut payload)
            .map_err(|e| damaged(&format!("unreadable payload ({e})")))?;
        if !frame::payload_ok(parsed, &payload) {
            return Err(damaged("payload checksum mismatch"));
        }
        let (_epoch, record) = frame::decode(&payload).map_err(|e| damaged(&e))?;
        records.push(PositionedRecord {
            position: Position(pos),
            next: Position(next),
            record,
        });
        pos = next;
    }
    Ok(records)
}

/// The durable writer epoch, kept in the file `epoch` as `[epoch u64 LE][crc32c u32 LE]`.
pub(crate) fn read_epoch(dir: &Path) -> Result<Epoch> {
    let path = dir.join("epoch");
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Epoch(0)),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let valid = <[u8; 12]>::try_from(bytes.as_slice())
        .ok()
        .filter(|b| crc32c::crc32c(&b[..8]).to_le_bytes() == b[8..12]);
    match valid {
        Some(b) => Ok(Epoch(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))),
        None => Err(Error::Data(format!(
            "{} is damaged ({} bytes, checksum mismatch at byte offset 0); refusing to open the \
             journal, nothing was dropped",
            path.display(),
            bytes.len()
        ))),
    }
}

/// Makes `epoch` durable: write a temporary file, fsync it, rename it over `epoch`, fsync the
/// directory. A crash leaves either the old epoch or the new one, never a mix. Returns how
/// many fsyncs it made.
pub(crate) fn write_epoch(dir: &Path, epoch: Epoch) -> io::Result<u64> {
    let tmp = dir.join("epoch.tmp");
    let mut bytes = epoch.0.to_le_bytes().to_vec();
    bytes.extend_from_slice(&crc32c::crc32c(&bytes).to_le_bytes());
    let mut file = File::create(&tmp)?;
    io::Write::write_all(&mut file, &bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join("epoch"))?;
    sync_dir(dir)?;
    Ok(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_other_files_are_ignored() {
        let name = path(Path::new(""), 1234);
        let name = name.to_str().unwrap();
        assert_eq!(name, "00000000000000001234.log");
        assert_eq!(parse_name(name), Some(1234));
        assert_eq!(parse_name("epoch"), None);
        assert_eq!(parse_name("epoch.tmp"), None);
        assert_eq!(parse_name("1234.log"), None);
        assert_eq!(parse_name("0000000000000000123x.log"), None);
    }

    #[test]
    fn the_epoch_file_round_trips_and_damage_is_data_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_epoch(dir.path()).unwrap(), Epoch(0));
        write_epoch(dir.path(), Epoch(9)).unwrap();
        assert_eq!(read_epoch(dir.path()).unwrap(), Epoch(9));
        let mut bytes = fs::read(dir.path().join("epoch")).unwrap();
        bytes[0] ^= 1;
        fs::write(dir.path().join("epoch"), bytes).unwrap();
        assert!(matches!(read_epoch(dir.path()), Err(Error::Data(_))));
    }
}
