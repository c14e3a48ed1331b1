//! One record on disk: a 12-byte header and a postcard payload.
//!
//! ```text
//!   0        4        8        12                      12 + len
//!   ┌────────┬────────┬────────┬───────────────────────┐
//!   │ len    │ crc(P) │ crc(H) │ payload P (len bytes) │
//!   └────────┴────────┴────────┴───────────────────────┘
//!   u32 LE   u32 LE   u32 LE   postcard(Payload)
//!            crc(H) covers bytes 0..8, so a damaged length is caught before it is trusted.
//! ```

use cairn_types::journal::Epoch;
use cairn_types::{CommitRecord, Error, Result};
use serde::{Deserialize, Serialize};

/// Bytes in a frame header.
pub(crate) const HEADER_LEN: usize = 12;

/// The largest payload any version of the journal writes or accepts when reading.
pub const MAX_RECORD_BYTES: u32 = 256 << 20;

/// What a frame's payload holds. New layouts become new variants, so an old file stays
/// readable; postcard writes the variant index first.
#[derive(Deserialize)]
pub(crate) enum Payload {
    /// The writer's epoch and the record.
    V1 {
        /// The epoch of the writer that appended the record (for diagnosis).
        epoch: Epoch,
        /// The committed transaction.
        record: CommitRecord,
    },
}

/// [`Payload`] by reference, so encoding does not clone the record. Serde encodes `&T` as `T`,
/// so the bytes are identical.
#[derive(Serialize)]
enum PayloadRef<'a> {
    V1 {
        epoch: Epoch,
        record: &'a CommitRecord,
    },
}

/// Encodes a whole frame (header and payload), refusing payloads larger than `max_bytes`.
pub(crate) fn encode(epoch: Epoch, record: &CommitRecord, max_bytes: u32) -> Result<Vec<u8>> {
    let frame = postcard::to_extend(&PayloadRef::V1 { epoch, record }, vec![0u8; HEADER_LEN])
        .map_err(|e| Error::Internal(format!("encoding journal record: {e}")))?;
    let len = frame.len() - HEADER_LEN;
    let len = u32::try_from(len)
        .ok()
        .filter(|len| *len <= max_bytes.min(MAX_RECORD_BYTES))
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "the commit record of transaction {} at {} encodes to {len} bytes, over the \
                 journal's limit of {} bytes; split the transaction",
                record.txn_id.0,
                record.commit_ts,
                max_bytes.min(MAX_RECORD_BYTES)
            ))
        })?;
    let mut frame = frame;
    let payload_crc = crc32c::crc32c(&frame[HEADER_LEN..]);
    frame[0..4].copy_from_slice(&len.to_le_bytes());
    frame[4..8].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&frame[0..8]);
    frame[8..12].copy_from_slice(&header_crc.to_le_bytes());
    Ok(frame)
}

/// A header whose own checksum holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    /// Payload length in bytes.
    pub len: u32,
    /// crc32c of the payload.
    pub payload_crc: u32,
}

impl Header {
    /// The whole frame's length.
    pub fn frame_len(self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.len)
    }
}

/// Parses a header; `None` if its checksum fails (damaged, torn, or not a record boundary).
pub(crate) fn parse_header(bytes: &[u8; HEADER_LEN]) -> Option<Header> {
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (crc32c::crc32c(&bytes[0..8]) == word(8)).then(|| Header {
        len: word(0),
        payload_crc: word(4),
    })
}

/// Whether the payload matches the header's checksum.
pub(crate) fn payload_ok(header: Header, payload: &[u8]) -> bool {
    crc32c::crc32c(payload) == header.payload_crc
}

/// Decodes a payload whose checksum holds. Failure here means a bug or a newer format, not a
/// torn write, so callers report it as corruption.
pub(crate) fn decode(payload: &[u8]) -> std::result::Result<(Epoch, CommitRecord), String> {
    match postcard::from_bytes::<Payload>(payload) {
        Ok(Payload::V1 { epoch, record }) => Ok((epoch, record)),
        Err(e) => Err(format!("undecodable record payload ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_types::{Timestamp, TxnId, Write};

    fn record() -> CommitRecord {
        CommitRecord {
            txn_id: TxnId(7),
            commit_ts: Timestamp(42),
            writes: vec![Write {
                key: "k".into(),
                // The journal does not depend on `bytes`; a key's buffer is one.
                value: Some(cairn_types::Key::from("v").0),
            }],
        }
    }

    #[test]
    fn a_frame_round_trips_through_header_and_payload() {
        let frame = encode(Epoch(3), &record(), MAX_RECORD_BYTES).unwrap();
        let header = parse_header(frame[..HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(header.frame_len(), frame.len() as u64);
        assert!(payload_ok(header, &frame[HEADER_LEN..]));
        assert_eq!(decode(&frame[HEADER_LEN..]).unwrap(), (Epoch(3), record()));
    }

    #[test]
    fn any_flipped_header_bit_fails_the_header_checksum() {
        let frame = encode(Epoch(0), &record(), MAX_RECORD_BYTES).unwrap();
        for bit in 0..HEADER_LEN * 8 {
            let mut header: [u8; HEADER_LEN] = frame[..HEADER_LEN].try_into().unwrap();
            header[bit / 8] ^= 1 << (bit % 8);
            assert!(parse_header(&header).is_none(), "bit {bit}");
        }
    }

    #[test]
    fn records_over_the_limit_are_invalid_input() {
        let err = encode(Epoch(0), &record(), 4).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
}
