//! Sequences: CREATE SEQUENCE, SERIAL and IDENTITY columns, nextval / currval / setval /
//! lastval.
//!
//! ```text
//!   0x00 "q/" <sequence name>      → SequenceDesc (postcard)   its definition
//!   0x03 <sequence id u32 BE>      → i128 BE                   the next value no process has
//!                                                                handed out yet
//! ```
//!
//! Handing a value out does not write the state key in the caller's transaction: every
//! INSERT into a SERIAL table would then conflict with every other. Instead a process reserves
//! a block of values in a transaction of its own (at least [`MIN_BLOCK`] values, or the
//! sequence's CACHE if larger), commits the new mark durably, and hands the block out from
//! memory to any of its sessions. Values are therefore unique across sessions, processes and
//! restarts, and never reused; as in PostgreSQL, nextval is not undone by a rollback, and a
//! restart skips what was left of the process's block (a gap, as PostgreSQL's CACHE leaves).
//! A sequence its creating transaction has not committed yet is invisible to other
//! transactions, so its values are reserved in the creating transaction itself, for that
//! statement only (so that a rollback leaves nothing behind); the same goes for a sequence
//! whose state the transaction has written (TRUNCATE ... RESTART IDENTITY).
//!
//! Expression evaluation is synchronous and a reservation is a commit, so statements reserve
//! ahead: before each row the executor evaluates (a VALUES row, a row it inserts, a
//! select-list row, an updated row), [`StatementSequences::top_up`] takes values for that row
//! out of the process's blocks into the statement's own hands, so that no other session can
//! take them in between; what the statement leaves unused goes back when it ends. setval takes effect in memory at once and is
//! written durably when its statement ends.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cairn_qp::{Database, Transaction};
use cairn_types::Key;
use serde::{Deserialize, Serialize};

use crate::catalog::{self, CATALOG_PREFIX};
use crate::error::{SqlError, SqlResult, SqlState};
use crate::types::DataType;

/// First byte of sequence state keys.
pub const STATE_PREFIX: u8 = 0x03;
/// The fewest values a process reserves at a time.
pub const MIN_BLOCK: u64 = 32;
/// How often a reservation is retried after a conflict with another process's.
const RESERVE_ATTEMPTS: usize = 20;

/// A sequence's definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequenceDesc {
    /// Never reused (drawn from the same counter as table ids).
    pub id: u32,
    /// Its name (normalised like a table's).
    pub name: String,
    /// smallint, integer or bigint.
    pub data_type: DataType,
    /// START.
    pub start: i64,
    /// INCREMENT (never 0).
    pub increment: i64,
    /// MINVALUE.
    pub min: i64,
    /// MAXVALUE.
    pub max: i64,
    /// CACHE: a process reserves at least this many values at a time.
    pub cache: i64,
    /// CYCLE: past the last value, start again from the first.
    pub cycle: bool,
    /// The column that owns it (SERIAL, IDENTITY, OWNED BY): dropped with its table.
    pub owned_by: Option<(String, String)>,
}

/// Sequence options as a statement gives them: `None` where not given (`Some(None)` for
/// NO MINVALUE / NO MAXVALUE: the type's bound).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SequenceSettings {
    /// INCREMENT.
    pub increment: Option<i64>,
    /// MINVALUE / NO MINVALUE.
    pub min: Option<Option<i64>>,
    /// MAXVALUE / NO MAXVALUE.
    pub max: Option<Option<i64>>,
    /// START.
    pub start: Option<i64>,
    /// CACHE.
    pub cache: Option<i64>,
    /// [NO] CYCLE.
    pub cycle: Option<bool>,
}

impl SequenceDesc {
    /// This sequence with `settings` applied, checked as PostgreSQL checks them. Creating, an
    /// unset MINVALUE / MAXVALUE / START takes its default for the increment's direction;
    /// altering, it keeps its value.
    pub fn with_settings(mut self, settings: &SequenceSettings, creating: bool) -> SqlResult<Self> {
        let invalid = |message: String| SqlError::new(SqlState::INVALID_PARAMETER_VALUE, message);
        let data_type = self.data_type.clone();
        if !matches!(data_type, DataType::Int2 | DataType::Int4 | DataType::Int8) {
            return Err(invalid(
                "sequence type must be smallint, integer, or bigint".into(),
            ));
        }
        let increment = settings.increment.unwrap_or(self.increment);
        if increment == 0 {
            return Err(invalid("INCREMENT must not be zero".into()));
        }
        let (type_min, type_max) = (type_min(&data_type), type_max(&data_type));
        let default_min = if increment > 0 { 1 } else { type_min };
        let default_max = if increment > 0 { type_max } else { -1 };
        let min = match settings.min {
            Some(Some(min)) => min,
            Some(None) => default_min,
            None if creating => default_min,
            None => self.min,
        };
        let max = match settings.max {
            Some(Some(max)) => max,
            Some(None) => default_max,
            None if creating => default_max,
            None => self.max,
        };
        let type_name = crate::types::cast::base_type_name(&data_type);
        for (which, value) in [("MINVALUE", min), ("MAXVALUE", max)] {
            if value < type_min || value > type_max {
                return Err(invalid(format!(
                    "{which} ({value}) is out of range for sequence data type {type_name}"
                )));
            }
        }
        if min >= max {
            return Err(invalid(format!(
                "MINVALUE ({min}) must be less than MAXVALUE ({max})"
            )));
        }
        let start = match settings.start {
            Some(start) => start,
            None if creating => {
                if increment > 0 {
                    min
                } else {
                    max
                }
            }
            None => self.start,
        };
        if start < min {
            return Err(invalid(format!(
                "START value ({start}) cannot be less than MINVALUE ({min})"
            )));
        }
        if start > max {
            return Err(invalid(format!(
                "START value ({start}) cannot be greater than MAXVALUE ({max})"
            )));
        }
        let cache = settings.cache.unwrap_or(self.cache);
        if cache < 1 {
            return Err(invalid(format!(
                "CACHE ({cache}) must be greater than zero"
            )));
        }
        self.increment = increment;
        self.min = min;
        self.max = max;
        self.start = start;
        self.cache = cache;
        self.cycle = settings.cycle.unwrap_or(self.cycle);
        Ok(self)
    }

    /// A sequence of `data_type` with PostgreSQL's defaults: counting up by one from 1 to the
    /// type's maximum.
    pub fn new(name: String, data_type: DataType) -> Self {
        let max = type_max(&data_type);
        SequenceDesc {
            id: 0,
            name,
            data_type,
            start: 1,
            increment: 1,
            min: 1,
            max,
            cache: 1,
            cycle: false,
            owned_by: None,
        }
    }
}

/// The largest value of a sequence type.
pub fn type_max(data_type: &DataType) -> i64 {
    match data_type {
        DataType::Int2 => i64::from(i16::MAX),
        DataType::Int4 => i64::from(i32::MAX),
        _ => i64::MAX,
    }
}

/// The smallest value of a sequence type.
pub fn type_min(data_type: &DataType) -> i64 {
    match data_type {
        DataType::Int2 => i64::from(i16::MIN),
        DataType::Int4 => i64::from(i32::MIN),
        _ => i64::MIN,
    }
}

/// The catalog key of sequence `name`.
pub fn sequence_key(name: &str) -> Key {
    let mut key = vec![CATALOG_PREFIX];
    key.extend_from_slice(b"q/");
    key.extend_from_slice(name.as_bytes());
    Key::from(key)
}

fn state_key(id: u32) -> Key {
    let mut key = vec![STATE_PREFIX];
    key.extend_from_slice(&id.to_be_bytes());
    Key::from(key)
}

fn core(e: cairn_types::Error) -> SqlError {
    SqlError::from_core(e, |k| k.to_string())
}

/// The name a `regclass`-style argument names: `'s'`, `'"S"'`, `'public.s'`.
pub fn parse_name(text: &str) -> String {
    let text = text.trim();
    let text = text
        .strip_prefix("public.")
        .or_else(|| text.strip_prefix("\"public\"."))
        .unwrap_or(text);
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => text.to_lowercase(),
    }
}

/// The definition of sequence `name` at the transaction's snapshot (a read the commit
/// validates, as for tables).
pub async fn lookup(txn: &mut Transaction, name: &str) -> SqlResult<Option<Arc<SequenceDesc>>> {
    let key = sequence_key(name);
    let found = txn.get(&key).await.map_err(core)?;
    txn.validate_read(key);
    match found {
        None => Ok(None),
        Some(bytes) => postcard::from_bytes(&bytes)
            .map(|desc| Some(Arc::new(desc)))
            .map_err(|e| {
                SqlError::new(
                    SqlState::DATA_CORRUPTED,
                    format!("catalog entry of sequence {name} is damaged: {e}"),
                )
            }),
    }
}

/// Like [`lookup`], but a missing sequence is 42P01.
pub async fn require(txn: &mut Transaction, name: &str) -> SqlResult<Arc<SequenceDesc>> {
    lookup(txn, name)
        .await?
        .ok_or_else(|| catalog::undefined_table(name))
}

/// Creates a sequence in the transaction (the caller has checked the name is free).
pub async fn create(txn: &mut Transaction, mut desc: SequenceDesc) -> SqlResult<SequenceDesc> {
    desc.id = catalog::allocate_id(txn).await?;
    let encoded = postcard::to_allocvec(&desc)
        .map_err(|e| SqlError::internal(format!("encoding sequence definition: {e}")))?;
    txn.put(sequence_key(&desc.name), Bytes::from(encoded));
    write_state(txn, desc.id, i128::from(desc.start));
    Ok(desc)
}

/// Rewrites a sequence's definition in the transaction (its owner renamed).
pub fn put(txn: &mut Transaction, desc: &SequenceDesc) -> SqlResult<()> {
    let encoded = postcard::to_allocvec(desc)
        .map_err(|e| SqlError::internal(format!("encoding sequence definition: {e}")))?;
    txn.put(sequence_key(&desc.name), Bytes::from(encoded));
    Ok(())
}

/// The sequences `table`'s columns own (SERIAL, IDENTITY): those their defaults call that
/// name the column as owner.
pub async fn owned_by(
    txn: &mut Transaction,
    table: &catalog::TableDesc,
) -> SqlResult<Vec<SequenceDesc>> {
    let mut owned = Vec::new();
    for column in &table.columns {
        let Some(name) = column
            .default
            .as_deref()
            .and_then(|d| d.strip_prefix("nextval('"))
            .and_then(|d| d.strip_suffix("')"))
        else {
            continue;
        };
        if let Some(desc) = lookup(txn, &parse_name(name)).await? {
            if desc.owned_by.as_ref() == Some(&(table.name.clone(), column.name.clone())) {
                owned.push((*desc).clone());
            }
        }
    }
    Ok(owned)
}

/// Every sequence OWNED BY a column of `table` (SERIAL, IDENTITY, ALTER SEQUENCE ... OWNED
/// BY), whether or not a default calls it: they go with the table, and TRUNCATE ... RESTART
/// IDENTITY restarts them.
pub async fn owned_by_table(
    txn: &mut Transaction,
    table: &catalog::TableDesc,
) -> SqlResult<Vec<SequenceDesc>> {
    let range = cairn_types::KeyRange::prefix(sequence_key(""));
    // Reads every sequence definition: the owner is recorded on the sequence, not the table.
    txn.validate_range(range.clone());
    let mut owned = Vec::new();
    for (key, bytes) in txn.scan(&range, usize::MAX).await.map_err(core)? {
        let desc: SequenceDesc = postcard::from_bytes(&bytes).map_err(|e| {
            SqlError::new(
                SqlState::DATA_CORRUPTED,
                format!("catalog entry {key:?} of a sequence is damaged: {e}"),
            )
        })?;
        if desc
            .owned_by
            .as_ref()
            .is_some_and(|(owner, _)| *owner == table.name)
        {
            owned.push(desc);
        }
    }
    Ok(owned)
}

/// Drops a sequence in the transaction.
pub fn drop(txn: &mut Transaction, desc: &SequenceDesc) {
    txn.delete(sequence_key(&desc.name));
    txn.delete(state_key(desc.id));
}

/// Starts a sequence again from its START, in the transaction (TRUNCATE ... RESTART IDENTITY).
pub fn restart(txn: &mut Transaction, desc: &SequenceDesc) {
    write_state(txn, desc.id, i128::from(desc.start));
}

/// Makes `next` the next value of sequence `id` no process has handed out, in the
/// transaction.
pub fn set_next(txn: &mut Transaction, id: u32, next: i128) {
    write_state(txn, id, next);
}

async fn read_state(txn: &mut Transaction, desc: &SequenceDesc) -> SqlResult<i128> {
    match txn.get(&state_key(desc.id)).await.map_err(core)? {
        None => Ok(i128::from(desc.start)),
        Some(bytes) => {
            let raw: [u8; 16] = bytes.as_ref().try_into().map_err(|_| {
                SqlError::new(
                    SqlState::DATA_CORRUPTED,
                    format!("state of sequence {} is damaged", desc.name),
                )
            })?;
            Ok(i128::from_be_bytes(raw))
        }
    }
}

fn write_state(txn: &mut Transaction, id: u32, next: i128) {
    txn.put(state_key(id), Bytes::copy_from_slice(&next.to_be_bytes()));
}

/// Values reserved for this process: `remaining` of them from `next`, `increment` apart.
#[derive(Clone, Copy, Debug)]
struct Block {
    next: i128,
    remaining: u64,
    increment: i64,
}

/// The block of up to `want` values that starts at the state `next`, and the state after it.
/// Past the last value a CYCLE sequence starts again; others fail with 2200H.
fn next_block(desc: &SequenceDesc, next: i128, want: u64) -> SqlResult<(Block, i128)> {
    let (min, max, increment) = (
        i128::from(desc.min),
        i128::from(desc.max),
        i128::from(desc.increment),
    );
    let mut next = next;
    if next < min || next > max {
        if !desc.cycle {
            let (which, limit) = if increment > 0 {
                ("maximum", desc.max)
            } else {
                ("minimum", desc.min)
            };
            return Err(SqlError::new(
                SqlState("2200H"),
                format!(
                    "nextval: reached {which} value of sequence \"{}\" ({limit})",
                    desc.name
                ),
            ));
        }
        next = if increment > 0 { min } else { max };
    }
    let room = if increment > 0 {
        (max - next) / increment + 1
    } else {
        (next - min) / -increment + 1
    };
    let count = room.min(i128::from(want)).max(1);
    let block = Block {
        next,
        remaining: u64::try_from(count).unwrap_or(u64::MAX),
        increment: desc.increment,
    };
    Ok((block, next + count * increment))
}

/// Where reserved values went.
enum Reserved {
    /// Into the process's blocks.
    Shared,
    /// To the statement only (reserved in its own transaction).
    Private(Vec<i128>),
}

/// Reserves exactly `want` values (fewer at a non-cycling end) of `desc` in `txn`, from
/// the state `txn` sees.
fn private_values(
    txn: &mut Transaction,
    desc: &SequenceDesc,
    state: i128,
    want: u64,
) -> SqlResult<Vec<i128>> {
    let (block, after) = next_block(desc, state, want.max(1))?;
    write_state(txn, desc.id, after);
    Ok((0..block.remaining)
        .map(|k| block.next + i128::from(k) * i128::from(block.increment))
        .collect())
}

/// The blocks this process has reserved, by sequence id, shared by its sessions.
#[derive(Default)]
pub struct SequenceCache {
    blocks: Mutex<HashMap<u32, VecDeque<Block>>>,
    /// Where each sequence's last used-up block ended: the value after the last one handed
    /// out, and the increment (ALTER SEQUENCE goes on from there).
    used_up: Mutex<HashMap<u32, (i128, i64)>>,
}

impl SequenceCache {
    fn blocks(&self) -> std::sync::MutexGuard<'_, HashMap<u32, VecDeque<Block>>> {
        self.blocks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes up to `n` values of sequence `id`, in order, for one statement.
    fn take(&self, id: u32, n: u64) -> Vec<i128> {
        let mut all = self.blocks();
        let mut taken = Vec::new();
        let Some(blocks) = all.get_mut(&id) else {
            return taken;
        };
        while (taken.len() as u64) < n {
            let Some(block) = blocks.front_mut() else {
                break;
            };
            taken.push(block.next);
            block.next += i128::from(block.increment);
            block.remaining -= 1;
            if block.remaining == 0 {
                let (next, increment) = (block.next, block.increment);
                blocks.pop_front();
                self.used_up
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, (next, increment));
            }
        }
        taken
    }

    /// Gives back values a statement took and did not use (they come out next).
    fn give_back(&self, id: u32, values: Vec<i128>, increment: i64) {
        let mut all = self.blocks();
        let blocks = all.entry(id).or_default();
        for value in values.into_iter().rev() {
            blocks.push_front(Block {
                next: value,
                remaining: 1,
                increment,
            });
        }
    }

    /// The next value this process would hand out for sequence `id` from what it reserved,
    /// and the increment it was reserved with.
    pub fn next_reserved(&self, id: u32) -> Option<(i128, i64)> {
        let blocks = self.blocks();
        match blocks
            .get(&id)
            .and_then(|blocks| blocks.iter().find(|b| b.remaining > 0))
        {
            Some(block) => Some((block.next, block.increment)),
            None => self
                .used_up
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
                .copied(),
        }
    }

    /// Forgets what is reserved for sequence `id` (after setval or DROP: the next value
    /// comes from its state again).
    pub fn forget(&self, id: u32) {
        self.blocks().remove(&id);
        self.used_up
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Reserves at least `want` more values of `desc` in a transaction of its own, into the
    /// process's blocks. A sequence `txn` created, or whose state `txn` has written
    /// (TRUNCATE ... RESTART IDENTITY), is reserved in `txn` itself, exactly `want` values,
    /// which only that statement may use (`Private`): if `txn` rolls back, they never were.
    async fn reserve(
        &self,
        db: &Database,
        txn: &mut Transaction,
        desc: &SequenceDesc,
        want: u64,
    ) -> SqlResult<Reserved> {
        for _ in 0..RESERVE_ATTEMPTS {
            let mut own = db.begin();
            let visible = match lookup(&mut own, &desc.name).await? {
                Some(current) if current.id == desc.id => Some(current),
                _ => None,
            };
            // Private: other transactions cannot see the sequence, or this one has written
            // its state (an older snapshot of the state is not that: others reserved since).
            let current = match visible {
                Some(current) if !txn.has_written(&state_key(desc.id)) => current,
                _ => {
                    let state = read_state(txn, desc).await?;
                    return Ok(Reserved::Private(private_values(txn, desc, state, want)?));
                }
            };
            let shared_state = read_state(&mut own, desc).await?;
            let block_size = want
                .max(MIN_BLOCK)
                .max(u64::try_from(desc.cache).unwrap_or(0));
            let (block, after) = next_block(&current, shared_state, block_size)?;
            write_state(&mut own, desc.id, after);
            match own.commit().await {
                Ok(_) => {
                    self.blocks().entry(desc.id).or_default().push_back(block);
                    return Ok(Reserved::Shared);
                }
                Err(e) => {
                    let e = core(e);
                    if e.state != SqlState::SERIALIZATION_FAILURE {
                        return Err(e);
                    }
                }
            }
        }
        Err(SqlError::new(
            SqlState::SERIALIZATION_FAILURE,
            format!(
                "could not reserve values of sequence \"{}\": too many concurrent reservations",
                desc.name
            ),
        ))
    }

    /// Sets the state of `desc` to `next` (setval), durably, and forgets this process's block.
    async fn set(
        &self,
        db: &Database,
        txn: &mut Transaction,
        desc: &SequenceDesc,
        next: i128,
    ) -> SqlResult<()> {
        self.forget(desc.id);
        for _ in 0..RESERVE_ATTEMPTS {
            let mut own = db.begin();
            let visible = matches!(lookup(&mut own, &desc.name).await?, Some(c) if c.id == desc.id);
            let own_written = txn.has_written(&state_key(desc.id));
            match visible && !own_written {
                true => {
                    write_state(&mut own, desc.id, next);
                    match own.commit().await {
                        Ok(_) => return Ok(()),
                        Err(e) => {
                            let e = core(e);
                            if e.state != SqlState::SERIALIZATION_FAILURE {
                                return Err(e);
                            }
                        }
                    }
                }
                false => {
                    write_state(txn, desc.id, next);
                    return Ok(());
                }
            }
        }
        Err(SqlError::new(
            SqlState::SERIALIZATION_FAILURE,
            format!(
                "could not set sequence \"{}\": too many concurrent changes",
                desc.name
            ),
        ))
    }
}

/// What a session remembers of the sequences it used (currval, lastval).
#[derive(Default)]
pub struct SessionSequences {
    current: HashMap<String, i64>,
    last: Option<i64>,
}

/// A sequence a statement calls: its name as written, and how many nextval calls on it one
/// row evaluates (at most).
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceUse {
    /// The sequence's name.
    pub name: String,
    /// nextval calls per row.
    pub per_row: u64,
}

/// The sequences one statement calls, resolved at its snapshot, with the process's cache and
/// the session's memory of them.
pub struct StatementSequences<'a> {
    db: Option<&'a Database>,
    cache: Option<&'a SequenceCache>,
    session: Option<&'a Mutex<SessionSequences>>,
    used: Vec<(Arc<SequenceDesc>, u64)>,
    /// setval calls: each sequence's new state, which later nextval calls of the same
    /// statement advance (the process's block was forgotten).
    setvals: Mutex<HashMap<u32, (Arc<SequenceDesc>, i128)>>,
    /// Values taken from the process's blocks for this statement's next rows (other
    /// sessions cannot take them in between).
    taken: Mutex<HashMap<u32, VecDeque<i128>>>,
    /// Sequences reserved in the statement's own transaction: their values never reach the
    /// process's blocks.
    private: Mutex<Vec<u32>>,
}

impl<'a> StatementSequences<'a> {
    /// A statement that calls no sequence.
    pub fn none() -> Self {
        StatementSequences {
            db: None,
            cache: None,
            session: None,
            used: Vec::new(),
            setvals: Mutex::default(),
            taken: Mutex::default(),
            private: Mutex::default(),
        }
    }

    /// Resolves the sequences `uses` names at `txn`'s snapshot (42P01 for a missing one).
    pub async fn resolve(
        db: &'a Database,
        cache: &'a SequenceCache,
        session: &'a Mutex<SessionSequences>,
        txn: &mut Transaction,
        uses: &[SequenceUse],
    ) -> SqlResult<Self> {
        let mut used = Vec::with_capacity(uses.len());
        for usage in uses {
            used.push((require(txn, &usage.name).await?, usage.per_row));
        }
        Ok(StatementSequences {
            db: Some(db),
            cache: Some(cache),
            session: Some(session),
            used,
            setvals: Mutex::default(),
            taken: Mutex::default(),
            private: Mutex::default(),
        })
    }

    /// Makes sure each sequence has values for one more row.
    pub async fn top_up(&self, txn: &mut Transaction) -> SqlResult<()> {
        let (Some(db), Some(cache)) = (self.db, self.cache) else {
            return Ok(());
        };
        for (desc, per_row) in &self.used {
            loop {
                let have = self.with_taken(desc.id, |t| t.len() as u64);
                if have >= *per_row {
                    break;
                }
                let private = self.private_ids().contains(&desc.id);
                let got = match private {
                    true => Vec::new(),
                    false => cache.take(desc.id, per_row - have),
                };
                if got.is_empty() {
                    // A block stops at the sequence's last value (a CYCLE sequence goes on
                    // in the next).
                    if let Reserved::Private(values) =
                        cache.reserve(db, txn, desc, per_row - have).await?
                    {
                        self.private
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(desc.id);
                        self.with_taken(desc.id, |t| t.extend(values));
                    }
                } else {
                    self.with_taken(desc.id, |t| t.extend(got));
                }
            }
        }
        Ok(())
    }

    /// Writes the statement's setval calls durably (when the statement has run).
    pub async fn finish(&self, txn: &mut Transaction) -> SqlResult<()> {
        let (Some(db), Some(cache)) = (self.db, self.cache) else {
            return Ok(());
        };
        let setvals = std::mem::take(&mut *self.setvals.lock().unwrap_or_else(|p| p.into_inner()));
        let unused = std::mem::take(&mut *self.taken.lock().unwrap_or_else(|p| p.into_inner()));
        for (desc, _) in &self.used {
            if let Some(values) = unused.get(&desc.id).filter(|v| !v.is_empty()) {
                if !setvals.contains_key(&desc.id) && !self.private_ids().contains(&desc.id) {
                    cache.give_back(desc.id, values.iter().copied().collect(), desc.increment);
                }
            }
        }
        for (_, (desc, next)) in setvals {
            cache.set(db, txn, &desc, next).await?;
        }
        Ok(())
    }

    fn private_ids(&self) -> Vec<u32> {
        self.private
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs `f` on the values this statement holds of sequence `id`.
    fn with_taken<R>(&self, id: u32, f: impl FnOnce(&mut VecDeque<i128>) -> R) -> R {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        f(taken.entry(id).or_default())
    }

    fn find(&self, name: &str) -> SqlResult<&Arc<SequenceDesc>> {
        let name = parse_name(name);
        self.used
            .iter()
            .map(|(desc, _)| desc)
            .find(|desc| desc.name == name)
            .ok_or_else(|| {
                SqlError::unsupported(
                    "a sequence name computed while the statement runs is not supported; write it as a literal",
                )
            })
    }

    fn remember(&self, name: &str, value: i64) {
        if let Some(session) = self.session {
            let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
            session.current.insert(name.to_string(), value);
            session.last = Some(value);
        }
    }

    /// nextval(name).
    pub fn next(&self, name: &str) -> SqlResult<i64> {
        let desc = self.find(name)?;
        let after_setval = {
            let mut setvals = self.setvals.lock().unwrap_or_else(|p| p.into_inner());
            match setvals.get_mut(&desc.id) {
                Some((_, next)) => {
                    let (block, after) = next_block(desc, *next, 1)?;
                    *next = after;
                    Some(block.next)
                }
                None => None,
            }
        };
        let taken = after_setval.or_else(|| self.with_taken(desc.id, |t| t.pop_front()));
        let value = taken.ok_or_else(|| {
            SqlError::new(
                SqlState("55000"),
                format!(
                    "sequence \"{}\" ran out of reserved values within a statement; call nextval in VALUES, the select list or SET",
                    desc.name
                ),
            )
        })?;
        let value = i64::try_from(value).map_err(|_| SqlError::internal("sequence value"))?;
        self.remember(&desc.name, value);
        Ok(value)
    }

    /// currval(name): this session's last nextval of it (55000 before any).
    pub fn current(&self, name: &str) -> SqlResult<i64> {
        let desc = self.find(name)?;
        let session = self
            .session
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()));
        session
            .and_then(|s| s.current.get(&desc.name).copied())
            .ok_or_else(|| {
                SqlError::new(
                    SqlState("55000"),
                    format!(
                        "currval of sequence \"{}\" is not yet defined in this session",
                        desc.name
                    ),
                )
            })
    }

    /// lastval(): this session's last nextval of any sequence.
    pub fn last(&self) -> SqlResult<i64> {
        let session = self
            .session
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()));
        session.and_then(|s| s.last).ok_or_else(|| {
            SqlError::new(
                SqlState("55000"),
                "lastval is not yet defined in this session",
            )
        })
    }

    /// setval(name, value, is_called): the next nextval returns `value` (not called) or
    /// the value after it.
    pub fn set(&self, name: &str, value: i64, is_called: bool) -> SqlResult<i64> {
        let desc = self.find(name)?.clone();
        if value < desc.min || value > desc.max {
            return Err(SqlError::new(
                SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                format!(
                    "setval: value {value} is out of bounds for sequence \"{}\" ({}..{})",
                    desc.name, desc.min, desc.max
                ),
            ));
        }
        let next = if is_called {
            self.remember(&desc.name, value);
            i128::from(value) + i128::from(desc.increment)
        } else {
            i128::from(value)
        };
        if let Some(cache) = self.cache {
            cache.forget(desc.id);
        }
        self.setvals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(desc.id, (desc, next));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_stop_at_the_limit_and_cycle_or_fail_past_it() {
        let mut desc = SequenceDesc::new("s".into(), DataType::Int4);
        desc.max = 10;
        let (block, after) = next_block(&desc, 9, 32).unwrap();
        assert_eq!((block.next, block.remaining, after), (9, 2, 11));
        let e = next_block(&desc, 11, 32).unwrap_err();
        assert_eq!(e.state, SqlState("2200H"));
        assert_eq!(
            e.message,
            "nextval: reached maximum value of sequence \"s\" (10)"
        );
        desc.cycle = true;
        let (block, _) = next_block(&desc, 11, 32).unwrap();
        assert_eq!(block.next, 1);
        let mut down = SequenceDesc::new("d".into(), DataType::Int8);
        (down.increment, down.min, down.max) = (-5, -12, -1);
        let (block, after) = next_block(&down, -1, 32).unwrap();
        assert_eq!((block.next, block.remaining, after), (-1, 3, -16));
    }

    #[test]
    fn names_are_read_as_regclass_text() {
        assert_eq!(parse_name(" Orders_id_seq "), "orders_id_seq");
        assert_eq!(parse_name("\"Mixed\""), "Mixed");
        assert_eq!(parse_name("public.s"), "s");
    }
}
