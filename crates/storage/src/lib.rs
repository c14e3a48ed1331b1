//! Storage: Cairn's MVCC rows, kept as versions `key@commit_ts` and served as of a timestamp
//! (DESIGN §1, §4). [`FjallStorage`] implements the [`cairn_types::storage::Storage`] seam on
//! [fjall](https://docs.rs/fjall), an LSM-tree engine; `docs/storage-engine.md` says why fjall.
//!
//! # Versions, not rows
//!
//! A committed transaction reaches storage as a [`cairn_types::CommitRecord`]: the full new
//! value (post-image) of every key it wrote, or a tombstone for a delete, all at one
//! `commit_ts`. Storage never overwrites: each write becomes a new *version* of its key. A
//! read at snapshot `ts` sees, for each key, the newest version with `commit_ts <= ts`;
//! nothing newer, and nothing at all if that version is a tombstone. So a transaction reads a
//! consistent snapshot without locks, while later commits keep landing on top.
//!
//! ```text
//!             commit_ts →  10       20       30       40
//!   key "a"                a=1               a=3
//!   key "a\0"                       x
//!   key "b"                b=1      ✝ (tombstone)
//!   key "c"                                  c=7      c=8
//!
//!   get("a", ts=25)  → 1        (a@10 is the newest at or before 25)
//!   get("b", ts=25)  → none     (b@20 is a tombstone)
//!   scan(all, ts=35) → a=3, a\0=x, c=7
//! ```
//!
//! # Layout
//!
//! One fjall database, two keyspaces. Keyspace `versions` holds one entry per version:
//!
//! ```text
//!   key:   escape(user key)            0x00 0x01    !commit_ts (8 bytes, big-endian)
//!          0x00 → 0x00 0xFF            terminator   bitwise NOT: newest sorts first
//!   value: tag (0 = tombstone, 1 = value) ‖ row bytes
//!
//!   "a"    @30   61 00 01 ff ff ff ff ff ff ff e1   → 01 "3"
//!   "a"    @10   61 00 01 ff ff ff ff ff ff ff f5   → 01 "1"
//!   "a\0"  @20   61 00 ff 00 01 ff ff ff ff ff ff ff eb   → 01 "x"
//!   "b"    @20   62 00 01 ff ff ff ff ff ff ff eb   → 00
//! ```
//!
//! Escaping makes the encoding prefix-free and order-preserving (see `layout.rs`): all
//! versions of a key are adjacent, keys appear in byte order, and the versions of `"a"` never
//! mix with those of `"a\0"`. Within a key, versions run newest first, so "the newest version
//! at or before `ts`" is a single seek to `enc(key) ‖ !ts`, bounded by the key's last possible
//! version `enc(key) ‖ !0`. A scan walks the versions in order: for each key it passes over
//! versions newer than `ts`, lets the first at or before `ts` decide (row or tombstone), and
//! passes over the older ones, seeking past long runs instead of stepping through them.
//!
//! In memory, the *newest-version cache* (`latest.rs`) maps recently written or read keys
//! to their newest version, so a point read at or after it skips the LSM tree (a merge over
//! the memtables and tables is most of a point read's cost). Apply enters the keys it writes
//! while the cache has free room (not a record's of more than 4,096 keys, a bulk load) and
//! updates the keys it holds; a miss seeks `enc(key) ‖ !MAX`, caches the newest version found, and goes on to
//! the first version at or before `ts`.
//!
//! Keyspace `meta` holds `applied/<journal id, u32 BE>` → the position after the last record
//! applied from that journal (u64 BE), and `gc_horizon` → the GC horizon (u64 BE).
//!
//! # Invariants
//!
//! - **Never stale.** A read at `ts` answers only once storage is *complete* to `ts`: a
//!   heartbeat `>= ts` has been applied, after every record before it. Until then the read
//!   waits (calling [`StorageOptions::on_wait`] once, a hint for the embedding process to
//!   have a heartbeat published sooner), and after [`StorageOptions::read_wait_timeout`] on
//!   the storage's [`cairn_types::clock::Clock`] in which storage applied nothing (a large
//!   transaction's apply takes longer; the read waits it out) it fails with `Unavailable`. Records alone
//!   never advance completeness: another journal may still hold an earlier commit. After a
//!   restart storage is complete to zero until the crossbar delivers a heartbeat. As a
//!   guard, apply refuses a new record at or below what completeness (or an earlier
//!   heartbeat in the same request) already promised, since reads may have answered without
//!   it.
//! - **Applied position atomic with the data.** One apply request becomes one fjall write
//!   batch holding every version it adds and the new applied position of each journal, so
//!   after a crash the positions in `meta` describe exactly the data present. Completeness
//!   advances only after the batch is committed.
//! - **The newest-version cache is never stale.** Apply enters or updates the entries of the
//!   keys it wrote (and cancels fills in flight for them) after its batch is committed and
//!   before it publishes the new applied positions and completeness; a read fills the cache
//!   only with what a snapshot taken after its ticket showed, and only if no apply touched
//!   the key's shard meanwhile. See `latest.rs`.
//! - **Idempotent replay.** A record whose `next` position is at or before its journal's
//!   applied position is skipped, so the crossbar may resend from any earlier position.
//! - **Durability comes from the journal.** Apply does not fsync: the journal holds the
//!   durable copy, and after a crash storage resumes from its recovered applied position
//!   (fjall's own journal keeps batches in order, so what survives is a prefix). A
//!   checkpoint reads the applied positions, then syncs fjall with `PersistMode::SyncAll`;
//!   those positions are then *checkpointed*, and the journal may drop what lies before
//!   them. Opening storage syncs once, so the recovered positions count as checkpointed.
//! - **GC rule.** GC raises the horizon (never lowers it), persists it, publishes it, and only
//!   then deletes. For each key it keeps every version newer than the horizon and the newest
//!   version at or before it, and deletes all older versions; if that newest version is a
//!   tombstone it goes too, since to every read at or after the horizon it means the same
//!   as no version at all. A key's deletions are committed in one batch (so a reader never
//!   sees the tombstone gone and an older version back). Reads below the horizon fail with
//!   `TooOld`. Each read checks the horizon before and again after reading: if it still
//!   admits `ts` afterwards, no deletion relevant to `ts` had begun when the read's snapshot
//!   was taken.
//! - **GC and apply do not need each other's lock.** Apply only adds versions; GC only
//!   deletes versions shadowed at the horizon by one it keeps (or a tombstone and what lies
//!   below it). Adding a version never makes a shadowed one visible again, so the two may
//!   interleave freely; GC takes its own lock only so that passes do not overlap.
//! - Every read, and GC's walk, uses a fjall snapshot, so each apply or GC batch is seen
//!   whole or not at all.
//!
//! # Shortcuts
//!
//! - fjall calls are blocking; they run directly inside the async methods. They are short
//!   (memtable writes, cached block reads) except checkpoint's fsync and a GC pass, which
//!   callers run off their async workers (`cairn-embedded` uses a blocking thread).
//! - A GC pass walks the whole `versions` keyspace, but only once the versions written at or
//!   below its horizon since the last walk number at least a tenth of the versions that walk
//!   left. With none, nothing can have become garbage, so an idle or read-only database
//!   does not walk its store every maintenance interval. With few, a walk would read the
//!   whole store for them; so up to about a tenth of the store may be garbage from
//!   overwrites, a fifth from deletes (a tombstone and the version it hides), as PostgreSQL's
//!   autovacuum lets a fifth of a table be dead rows. A walk deletes in batches of about
//!   1,000 versions. A per-key incremental GC can come later.
//! - Values are copied out of fjall into [`bytes::Bytes`].
//! - The newest-version cache serves point reads only (scans go to fjall), evicts in
//!   insertion order rather than by use, and any apply to a key's shard (1/64 of the keys)
//!   cancels a fill in flight, so under heavy writes fewer keys get cached.
//! - Keys longer than about 64 KiB (fjall's key limit, less the 10 bytes of framing and one
//!   byte per zero byte) are refused at apply with `InvalidInput`; the query processor's
//!   limits should refuse them long before.

mod latest;
mod layout;
mod store;

pub use store::{
    FjallStorage, OnWait, StorageOptions, DEFAULT_CACHE_BYTES, DEFAULT_LATEST_CACHE_BYTES,
};
