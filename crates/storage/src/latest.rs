//! The newest-version cache: for recently written or read keys, the newest version storage
//! holds, so a point read at or after it answers without opening an iterator over the LSM tree
//! (a merge across the memtables and every table that may hold the key: most of a point
//! read's cost).
//!
//! # Why it is never stale
//!
//! An entry claims "the newest version of this key is `(ts, value)`". Two paths write entries:
//!
//! - **Apply** (holding the apply mutex, after the fjall batch is committed, before the new
//!   applied positions and completeness are published): for every key written, it bumps the
//!   shard's generation and records the new version as the key's entry (write-through, as a
//!   buffer pool keeps the pages it writes, but into free room only: reads decide what is
//!   evicted). Records arrive in `commit_ts` order, so the new version is the newest; an
//!   uncached key is entered only if its version is at least the newest applied since the
//!   cache was made, in case a replay or a broken ordering promise applies an older one. A
//!   read that needs that version waits for completeness to its `commit_ts`, which is
//!   published after this.
//! - **Fill** (a read that missed): it takes the shard's generation *before* its fjall
//!   snapshot, and inserts what the snapshot showed as newest only if the generation is
//!   unchanged. If an apply of that key committed after the snapshot, its bump came before the
//!   fill (refused) or after it (and then the apply overwrites the entry). An apply that
//!   committed before the snapshot is in what the snapshot read.
//!
//! GC never removes a key's newest version unless it is a tombstone at the horizon, which
//! reads as absence like the cached tombstone does.
//!
//! Bounded by bytes; a read's fill evicts in insertion order (a shard's oldest insertions
//! first), an apply's entry only takes free room.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use cairn_types::Timestamp;

/// Shards, each behind its own mutex, so concurrent readers rarely meet.
const SHARDS: usize = 64;

/// Bytes counted per entry besides its key and value: the map slot at the map's load factor,
/// the queue slot, the key's and value's allocations and the header a value's first hit adds
/// (measured from the resident set: about 174 bytes with 12-byte keys and 100-byte values).
const ENTRY_OVERHEAD: usize = 176;

/// The newest version of a key: its `commit_ts` and value (`None`: a tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Newest {
    ts: Timestamp,
    value: Option<Bytes>,
}

/// What an entry counts against the budget.
fn entry_bytes(key: &[u8], value: Option<&Bytes>) -> usize {
    ENTRY_OVERHEAD + key.len() + value.map_or(0, Bytes::len)
}

#[derive(Default)]
struct Shard {
    entries: HashMap<Arc<[u8]>, Newest, foldhash::fast::RandomState>,
    /// The keys of `entries` in insertion order (one each), for eviction.
    order: VecDeque<Arc<[u8]>>,
    bytes: usize,
    /// Bumped by every apply that writes a key of this shard.
    generation: u64,
}

/// See the module documentation.
pub(crate) struct LatestCache {
    shards: Vec<Mutex<Shard>>,
    shard_budget: usize,
    hasher: foldhash::fast::RandomState,
    /// The highest `commit_ts` apply has recorded (written only under the apply mutex).
    newest_applied: AtomicU64,
}

/// A miss's ticket to fill the cache: the shard's generation before the read's snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FillTicket {
    shard: usize,
    generation: u64,
}

impl LatestCache {
    /// A cache holding about `budget_bytes` of keys and values (zero: caches nothing).
    pub(crate) fn new(budget_bytes: u64) -> Self {
        let budget = usize::try_from(budget_bytes).unwrap_or(usize::MAX);
        LatestCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shard_budget: budget / SHARDS,
            hasher: foldhash::fast::RandomState::default(),
            newest_applied: AtomicU64::new(0),
        }
    }

    fn shard_of(&self, key: &[u8]) -> usize {
        use std::hash::BuildHasher;
        // Each shard's map has a hasher of its own (seeded apart), so the keys of one shard
        // do not share their low bits there.
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // Every critical section leaves the shard consistent.
        self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key` at `ts` if the cache knows it: `Ok((value, newest_ts))` (`None` for
    /// a tombstone) when the cached newest version is at or before `ts`; otherwise a ticket
    /// for [`Self::fill`], to be taken before the read's snapshot.
    pub(crate) fn get(
        &self,
        key: &[u8],
        ts: Timestamp,
    ) -> Result<(Option<Bytes>, Timestamp), FillTicket> {
        let shard = self.shard_of(key);
        let guard = self.lock(shard);
        match guard.entries.get(key) {
            Some(newest) if newest.ts <= ts => Ok((newest.value.clone(), newest.ts)),
            _ => Err(FillTicket {
                shard,
                generation: guard.generation,
            }),
        }
    }

    /// Records `(ts, value)` as the newest version of `key`, as read from a snapshot taken
    /// after `ticket` was issued, unless an apply touched the shard since.
    pub(crate) fn fill(&self, ticket: FillTicket, key: &[u8], ts: Timestamp, value: Option<Bytes>) {
        let size = entry_bytes(key, value.as_ref());
        if size > self.shard_budget {
            return;
        }
        let mut shard = self.lock(ticket.shard);
        if shard.generation != ticket.generation || shard.entries.contains_key(key) {
            return;
        }
        shard.insert(key, Newest { ts, value }, size, self.shard_budget);
    }

    /// Called by apply, under the apply mutex, once the batch writing `key` at `ts` is
    /// committed and before completeness covers it: cancels fills in flight for the shard
    /// and makes `(ts, value)` the key's entry (entering an uncached key only if `enter`).
    pub(crate) fn applied(&self, key: &[u8], ts: Timestamp, value: Option<&Bytes>, enter: bool) {
        let in_order = ts.0 >= self.newest_applied.fetch_max(ts.0, Ordering::Relaxed);
        let size = entry_bytes(key, value);
        let mut shard = self.lock(self.shard_of(key));
        shard.generation += 1;
        // A copy, so the entry does not keep a larger buffer the value may be a slice of alive.
        let copy = || value.map(|value| Bytes::copy_from_slice(value));
        let Some(newest) = shard.entries.get_mut(key) else {
            // Written keys take free room only: reads decide what is evicted, so a stream of
            // writes that nobody reads does not push out the keys that are read.
            if enter && in_order && shard.bytes + size <= self.shard_budget {
                let newest = Newest { ts, value: copy() };
                shard.insert(key, newest, size, self.shard_budget);
            }
            return;
        };
        // Records come in commit_ts order; the guard keeps a replay from going back.
        if ts <= newest.ts {
            return;
        }
        let old_len = newest.value.as_ref().map_or(0, Bytes::len);
        let new_len = value.map_or(0, Bytes::len);
        *newest = Newest { ts, value: copy() };
        shard.bytes = (shard.bytes + new_len).saturating_sub(old_len);
        // A grown value may push the shard past its budget (this entry too, if it is alone).
        shard.evict_beyond(self.shard_budget);
    }
}

impl Shard {
    /// Enters an uncached key of `size` bytes, evicting the oldest insertions past `budget`.
    fn insert(&mut self, key: &[u8], newest: Newest, size: usize, budget: usize) {
        let key: Arc<[u8]> = Arc::from(key);
        self.entries.insert(key.clone(), newest);
        self.order.push_back(key);
        self.bytes += size;
        self.evict_beyond(budget);
    }

    /// Evicts the oldest insertions until the shard holds at most `budget` bytes.
    fn evict_beyond(&mut self, budget: usize) {
        while self.bytes > budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(evicted) = self.entries.remove(&oldest) {
                let size = entry_bytes(&oldest, evicted.value.as_ref());
                self.bytes = self.bytes.saturating_sub(size);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value part of a cache answer.
    fn cached(cache: &LatestCache, key: &[u8], ts: Timestamp) -> Result<Option<Bytes>, FillTicket> {
        cache.get(key, ts).map(|(value, _)| value)
    }

    fn bytes(s: &str) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn a_hit_needs_the_newest_version_at_or_before_the_read() {
        let cache = LatestCache::new(1 << 20);
        let ticket = cached(&cache, b"k", Timestamp(20)).unwrap_err();
        cache.fill(ticket, b"k", Timestamp(10), bytes("v10"));
        assert_eq!(
            cache.get(b"k", Timestamp(20)),
            Ok((bytes("v10"), Timestamp(10))),
            "a hit tells the newest version's timestamp"
        );
        assert_eq!(cached(&cache, b"k", Timestamp(10)), Ok(bytes("v10")));
        assert!(
            cached(&cache, b"k", Timestamp(9)).is_err(),
            "older reads go to the tree"
        );

        cache.applied(b"k", Timestamp(30), None, true);
        assert_eq!(
            cached(&cache, b"k", Timestamp(30)),
            Ok(None),
            "a tombstone reads as absence"
        );
        assert!(cached(&cache, b"k", Timestamp(20)).is_err());
    }

    #[test]
    fn apply_enters_written_keys_unless_an_older_version_comes_after_a_newer_one() {
        let cache = LatestCache::new(1 << 20);
        cache.applied(b"a", Timestamp(10), bytes("a10").as_ref(), true);
        assert_eq!(cached(&cache, b"a", Timestamp(10)), Ok(bytes("a10")));
        assert!(cached(&cache, b"a", Timestamp(9)).is_err());
        cache.applied(b"gone", Timestamp(11), None, true);
        assert_eq!(cached(&cache, b"gone", Timestamp(11)), Ok(None));

        // A bulk write enters no key, but still updates the keys the cache holds.
        cache.applied(b"bulk", Timestamp(12), bytes("bulk12").as_ref(), false);
        assert!(cached(&cache, b"bulk", Timestamp(12)).is_err());
        cache.applied(b"a", Timestamp(12), bytes("a12").as_ref(), false);
        assert_eq!(cached(&cache, b"a", Timestamp(12)), Ok(bytes("a12")));

        // Version 5 arriving after version 12 may not be its key's newest: not entered.
        cache.applied(b"late", Timestamp(5), bytes("late5").as_ref(), true);
        assert!(cached(&cache, b"late", Timestamp(20)).is_err());
        // A fill's ticket taken before an apply of its shard still loses to it.
        let ticket = cached(&cache, b"b", Timestamp(20)).unwrap_err();
        cache.applied(b"b", Timestamp(13), bytes("b13").as_ref(), true);
        cache.fill(ticket, b"b", Timestamp(3), bytes("b3"));
        assert_eq!(cached(&cache, b"b", Timestamp(20)), Ok(bytes("b13")));
    }

    #[test]
    fn written_keys_take_free_room_only_and_reads_evict() {
        let entry = ENTRY_OVERHEAD + 8 + 100;
        let cache = LatestCache::new((SHARDS * entry * 2) as u64);
        let value = Some(Bytes::from(vec![7u8; 100]));
        for i in 0u64..10_000 {
            cache.applied(&i.to_be_bytes(), Timestamp(i + 1), value.as_ref(), true);
        }
        let read = |i: u64| cached(&cache, &i.to_be_bytes(), Timestamp(20_000));
        let cached: Vec<u64> = (0..10_000).filter(|&i| read(i).is_ok()).collect();
        assert_eq!(
            cached.len(),
            SHARDS * 2,
            "each shard full, none past its budget"
        );
        assert!(
            read(0).is_ok(),
            "the first written key stays: writes do not evict"
        );

        // A read's fill in key 0's shard evicts that shard's oldest insertion, key 0.
        let missed = (0u64..10_000)
            .find(|&i| {
                read(i).is_err()
                    && cache.shard_of(&i.to_be_bytes()) == cache.shard_of(&0u64.to_be_bytes())
            })
            .expect("an uncached key shares the shard");
        let ticket = read(missed).unwrap_err();
        cache.fill(
            ticket,
            &missed.to_be_bytes(),
            Timestamp(missed + 1),
            value.clone(),
        );
        assert_eq!(read(missed), Ok(value));
        assert!(read(0).is_err());
    }

    #[test]
    fn a_fill_racing_with_an_apply_of_its_shard_is_dropped() {
        let cache = LatestCache::new(1 << 20);
        let ticket = cached(&cache, b"k", Timestamp(20)).unwrap_err();
        // The read's snapshot was taken; then apply commits a version of another key of the
        // same shard (as good as this one: the generation is per shard).
        let neighbour = (0u32..)
            .map(u32::to_be_bytes)
            .find(|other| cache.shard_of(other) == cache.shard_of(b"k"))
            .expect("some key shares the shard");
        cache.applied(&neighbour, Timestamp(15), bytes("n15").as_ref(), true);
        cache.fill(ticket, b"k", Timestamp(10), bytes("v10"));
        assert!(cached(&cache, b"k", Timestamp(20)).is_err());
        // A fill whose ticket postdates the apply lands.
        let ticket = cached(&cache, b"k", Timestamp(20)).unwrap_err();
        cache.fill(ticket, b"k", Timestamp(10), bytes("v10"));
        assert_eq!(cached(&cache, b"k", Timestamp(20)), Ok(bytes("v10")));
    }

    #[test]
    fn the_oldest_insertions_are_evicted_past_the_budget() {
        let entry = ENTRY_OVERHEAD + 8 + 100;
        let cache = LatestCache::new((SHARDS * entry * 4) as u64);
        let value = Some(Bytes::from(vec![7u8; 100]));
        for i in 0u64..10_000 {
            let key = i.to_be_bytes();
            if let Err(ticket) = cached(&cache, &key, Timestamp(1)) {
                cache.fill(ticket, &key, Timestamp(1), value.clone());
            }
        }
        for shard in &cache.shards {
            let shard = shard.lock().unwrap();
            assert!(shard.bytes <= cache.shard_budget);
            assert!(shard.entries.len() <= 4);
        }
        let newest = 9_999u64.to_be_bytes();
        assert_eq!(
            cached(&cache, &newest, Timestamp(1)),
            Ok(value),
            "the last fill stays"
        );
        assert!(cached(&cache, &0u64.to_be_bytes(), Timestamp(1)).is_err());

        // A cached key updated to a value too large for its shard leaves the cache, and an
        // older version applied again (a replay) does not replace a newer one.
        let large = Bytes::from(vec![1u8; cache.shard_budget]);
        cache.applied(&newest, Timestamp(2), Some(&large), true);
        assert!(cached(&cache, &newest, Timestamp(2)).is_err());
        for shard in &cache.shards {
            assert!(shard.lock().unwrap().bytes <= cache.shard_budget);
        }
        let key = b"replayed";
        let ticket = cached(&cache, key, Timestamp(1)).unwrap_err();
        cache.fill(ticket, key, Timestamp(1), bytes("v1"));
        cache.applied(key, Timestamp(3), bytes("v3").as_ref(), true);
        cache.applied(key, Timestamp(2), bytes("v2").as_ref(), true);
        assert_eq!(cached(&cache, key, Timestamp(3)), Ok(bytes("v3")));
    }
}
