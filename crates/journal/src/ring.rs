//! The tail cache: the last records made durable, kept in memory so that readers keeping up
//! with the log (the crossbar) never touch the files.

use std::collections::VecDeque;

use cairn_types::journal::PositionedRecord;
use cairn_types::{Error, Position, Result};

/// The most recent durable records, contiguous and in log order.
pub(crate) struct Ring {
    records: VecDeque<PositionedRecord>,
    capacity: usize,
}

impl Ring {
    /// An empty ring keeping at most `capacity` records (zero disables it).
    pub fn new(capacity: usize) -> Self {
        Ring {
            records: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
        }
    }

    /// Adds the record after the last one, evicting the oldest when full.
    pub fn push(&mut self, record: PositionedRecord) {
        if self.capacity == 0 {
            return;
        }
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }

    /// Up to `max` records from `from` that end at or before `tail`; `None` if the ring does not
    /// reach back to `from` (read the files), an error if `from` falls inside the ring but not on
    /// a record boundary.
    pub fn get(
        &self,
        from: Position,
        tail: Position,
        max: usize,
    ) -> Option<Result<Vec<PositionedRecord>>> {
        if self.records.front()?.position > from {
            return None;
        }
        let Ok(first) = self.records.binary_search_by_key(&from, |r| r.position) else {
            return Some(Err(Error::InvalidInput(format!(
                "journal position {from} is not a record boundary"
            ))));
        };
        Some(Ok(self
            .records
            .range(first..)
            .take_while(|r| r.next <= tail)
            .take(max)
            .cloned()
            .collect()))
    }
}
