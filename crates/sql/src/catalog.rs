//! The catalog: table definitions stored as keys in the same MVCC store as the rows (DESIGN §4),
//! so DDL is transactional and versioned like any write.
//!
//! ```text
//!   0x00 "t/" <table name>        → TableDesc (tagged postcard) one key per table
//!   0x00 "next_table_id"          → u32 BE                     table ids are never reused
//!   0x01 <table id u32 BE> 0x01 <primary key, order-preserving> → row (types::row)
//!   0x02 <idempotency key>        → when a transaction with that key committed (µs, i64 BE)
//!   0x00 "q/" <sequence name>, 0x03 <sequence id>  → sequences (see [`crate::sequence`])
//!   0x00 "v/" <view name>         → ViewDesc (postcard)        a view's query
//!   0x00 "j/" <job id u64 BE>     → JobDesc (postcard)         background jobs ([`crate::jobs`])
//! ```
//!
//! Table definitions start with a layout tag and version, so a server reads the definitions
//! older builds wrote; the layouts from before the tag are read by their own types.
//!
//! Tables, sequences and views share one namespace (PostgreSQL's relations); tables and
//! sequences share one id counter.
//!
//! A statement that uses a table reads its descriptor at the transaction's snapshot and asks
//! the commit to validate that read ([`cairn_qp::Transaction::validate_read`]): if DDL changed
//! the table after the snapshot, a writing transaction fails at commit with a schema conflict.
//! Creating tables allocates ids from one counter key, so concurrent CREATE TABLEs conflict
//! (DDL is rare; retrying is cheap). Dropping a table deletes its descriptor only: the ids of
//! committed tables are never reused (a rolled-back CREATE's id is), so its rows become
//! unreachable; reclaiming their space is left to a later background job.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use bytes::Bytes;
use cairn_qp::Transaction;
use cairn_types::{Key, KeyRange};
use serde::{Deserialize, Serialize};

use crate::error::{SqlError, SqlResult, SqlState};
use crate::types::timezone::TimeZone;
use crate::types::{keycode, text, DataType, Value};

/// First byte of every catalog key.
pub const CATALOG_PREFIX: u8 = 0x00;
/// First byte of every row key.
pub const DATA_PREFIX: u8 = 0x01;
/// Index id of a table's primary index (its rows).
const PRIMARY_INDEX: u8 = 0x01;
/// The first table id handed out.
const FIRST_TABLE_ID: u32 = 1;
/// The id of a derived table (a subquery in FROM or a WITH query): no rows in storage.
pub const DERIVED_TABLE_ID: u32 = 0;
/// The id of the built-in `cairn_conflicts` view (no rows in storage).
pub const CONFLICTS_VIEW_ID: u32 = u32::MAX;
/// The name of the view of recent conflicts.
pub const CONFLICTS_VIEW: &str = "cairn_conflicts";

/// The built-in view of recent conflicts: when, which table, which key, what kind. Its rows
/// come from the engine's conflict log, not from storage; a real table of the same name hides
/// it.
pub fn conflicts_view() -> TableDesc {
    let column = |name: &str, data_type: DataType| ColumnDesc::new(name, data_type);
    TableDesc::without_storage(
        CONFLICTS_VIEW_ID,
        CONFLICTS_VIEW,
        vec![
            column("at", DataType::TimestampTz),
            column("table_name", DataType::Text),
            column("key", DataType::Text),
            column("kind", DataType::Text),
        ],
    )
}

/// A table's definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableDesc {
    /// Never reused, even after DROP TABLE.
    pub id: u32,
    /// The table's name (normalised: unquoted identifiers are lower case).
    pub name: String,
    /// Columns in definition order; a hidden row-id column comes last in tables created
    /// without a primary key.
    pub columns: Vec<ColumnDesc>,
    /// Indexes into `columns` of the primary key, in key order.
    pub primary_key: Vec<usize>,
    /// The primary key constraint's name when it is not `<table>_pkey` (given by CONSTRAINT,
    /// or kept through RENAME TO, as PostgreSQL keeps it).
    pub primary_key_constraint: Option<String>,
    /// Secondary indexes (and the indexes of UNIQUE constraints).
    pub indexes: Vec<IndexDesc>,
    /// CHECK constraints: (name, condition as SQL text), checked on every row written.
    pub checks: Vec<(String, String)>,
    /// FOREIGN KEY constraints this table's rows must meet.
    pub foreign_keys: Vec<ForeignKey>,
    /// The tables whose foreign keys reference this one (checked when its rows go or their
    /// keys change).
    pub referenced_by: Vec<String>,
}

/// A FOREIGN KEY: the columns of a row that must name a row of `parent` by its primary key
/// (unless one of them is NULL). A row that checks its parent adds the parent's key to its
/// transaction's conflict set, so a concurrent delete of that parent cannot also commit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    /// Its name.
    pub name: String,
    /// This table's columns, in the order of the parent's key.
    pub columns: Vec<usize>,
    /// The referenced table.
    pub parent: String,
    /// The referenced columns as written (checked to be the parent's primary key when the
    /// constraint is made; empty: the primary key).
    pub referenced: Vec<String>,
    /// What deleting a referenced row does.
    pub on_delete: RefAction,
    /// What changing a referenced row's key does.
    pub on_update: RefAction,
}

/// ON DELETE / ON UPDATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefAction {
    /// NO ACTION (the default) and RESTRICT: refused while referenced.
    NoAction,
    /// CASCADE: the referencing rows go too (or follow the new key).
    Cascade,
    /// SET NULL.
    SetNull,
    /// SET DEFAULT.
    SetDefault,
}

/// A secondary index: entries under `0x01 <table id> <index id> <indexed values> [<primary
/// key>]`, each holding its row's primary key, written in the same transaction as the row.
/// A unique index leaves the primary key out of the entry's key when no indexed value is
/// NULL, so two rows with the same values write the same key: the second is refused
/// (23505) in one transaction, and across transactions the commit's conflict check refuses
/// one of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexDesc {
    /// Its id within the table (2 and up; 1 is the rows).
    pub id: u8,
    /// Its name (unique among indexes).
    pub name: String,
    /// The indexed columns, in order.
    pub columns: Vec<usize>,
    /// INCLUDE columns: kept in the definition only (a read through the index reads the
    /// row anyway).
    pub include: Vec<usize>,
    /// UNIQUE.
    pub unique: bool,
    /// Being back-filled by a background job (CREATE INDEX ASYNC / CONCURRENTLY): writers
    /// keep its entries, but no query reads it until the job finishes.
    pub building: bool,
}

/// A column's definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnDesc {
    /// Its name.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The DEFAULT expression, as SQL text.
    pub default: Option<String>,
    /// The hidden row id of a table without a primary key: not shown by `SELECT *`.
    pub hidden: bool,
    /// GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY: its default draws from a sequence.
    pub identity: Option<Identity>,
    /// What rows written before ALTER TABLE ADD COLUMN hold for it (they are not
    /// rewritten): the column's DEFAULT at that time, or NULL.
    pub missing: Option<Value>,
    /// Dropped by ALTER TABLE DROP COLUMN: still a place in the rows' layout, but hidden and
    /// unnamed; new rows hold NULL there.
    pub dropped: bool,
    /// Computed from the row's other columns on every write (SQL text): the hidden column
    /// an index on an expression indexes.
    pub generated: Option<String>,
}

impl ColumnDesc {
    /// A visible, nullable column without a default.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        ColumnDesc {
            name: name.into(),
            data_type,
            nullable: true,
            default: None,
            hidden: false,
            identity: None,
            missing: None,
            dropped: false,
            generated: None,
        }
    }
}

/// How an identity column takes explicit values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    /// GENERATED ALWAYS: an INSERT may not give one, nor an UPDATE set one.
    Always,
    /// GENERATED BY DEFAULT: the sequence only fills in what an INSERT leaves out.
    ByDefault,
}

/// Table definitions in the layouts older builds stored (postcard is not self-describing,
/// so each older layout is read by its own type and converted, through [`legacy::V1`]).
mod legacy {
    use serde::Deserialize;

    use crate::types::DataType;

    /// A column before generated columns.
    #[derive(Deserialize)]
    struct V2Column {
        name: String,
        data_type: DataType,
        nullable: bool,
        default: Option<String>,
        hidden: bool,
        identity: Option<super::Identity>,
        missing: Option<crate::types::Value>,
        dropped: bool,
    }

    impl From<V2Column> for super::ColumnDesc {
        fn from(c: V2Column) -> Self {
            super::ColumnDesc {
                name: c.name,
                data_type: c.data_type,
                nullable: c.nullable,
                default: c.default,
                hidden: c.hidden,
                identity: c.identity,
                missing: c.missing,
                dropped: c.dropped,
                generated: None,
            }
        }
    }

    /// Layout 2: columns without generated expressions.
    #[derive(Deserialize)]
    pub struct V2 {
        id: u32,
        name: String,
        columns: Vec<V2Column>,
        primary_key: Vec<usize>,
        primary_key_constraint: Option<String>,
        indexes: Vec<super::IndexDesc>,
        checks: Vec<(String, String)>,
        foreign_keys: Vec<super::ForeignKey>,
        referenced_by: Vec<String>,
    }

    impl From<V2> for super::TableDesc {
        fn from(old: V2) -> Self {
            super::TableDesc {
                id: old.id,
                name: old.name,
                columns: old.columns.into_iter().map(Into::into).collect(),
                primary_key: old.primary_key,
                primary_key_constraint: old.primary_key_constraint,
                indexes: old.indexes,
                checks: old.checks,
                foreign_keys: old.foreign_keys,
                referenced_by: old.referenced_by,
            }
        }
    }

    /// Layout 1: no primary key constraint name, indexes without INCLUDE.
    #[derive(Deserialize)]
    pub struct V1 {
        id: u32,
        name: String,
        columns: Vec<V2Column>,
        primary_key: Vec<usize>,
        indexes: Vec<V1Index>,
        checks: Vec<(String, String)>,
        foreign_keys: Vec<super::ForeignKey>,
        referenced_by: Vec<String>,
    }

    #[derive(Deserialize)]
    struct V1Index {
        id: u8,
        name: String,
        columns: Vec<usize>,
        unique: bool,
        building: bool,
    }

    impl From<V1> for super::TableDesc {
        fn from(old: V1) -> Self {
            super::TableDesc {
                id: old.id,
                name: old.name,
                columns: old.columns.into_iter().map(Into::into).collect(),
                primary_key: old.primary_key,
                primary_key_constraint: None,
                indexes: old
                    .indexes
                    .into_iter()
                    .map(|i| super::IndexDesc {
                        id: i.id,
                        name: i.name,
                        columns: i.columns,
                        include: vec![],
                        unique: i.unique,
                        building: i.building,
                    })
                    .collect(),
                checks: old.checks,
                foreign_keys: old.foreign_keys,
                referenced_by: old.referenced_by,
            }
        }
    }

    /// The layout before layouts were tagged: indexes without their build state.
    #[derive(Deserialize)]
    pub struct Untagged {
        id: u32,
        name: String,
        columns: Vec<V2Column>,
        primary_key: Vec<usize>,
        indexes: Vec<UntaggedIndex>,
        checks: Vec<(String, String)>,
        foreign_keys: Vec<super::ForeignKey>,
        referenced_by: Vec<String>,
    }

    #[derive(Deserialize)]
    struct UntaggedIndex {
        id: u8,
        name: String,
        columns: Vec<usize>,
        unique: bool,
    }

    impl From<Untagged> for V1 {
        fn from(old: Untagged) -> Self {
            V1 {
                id: old.id,
                name: old.name,
                columns: old.columns,
                primary_key: old.primary_key,
                indexes: old
                    .indexes
                    .into_iter()
                    .map(|i| V1Index {
                        id: i.id,
                        name: i.name,
                        columns: i.columns,
                        unique: i.unique,
                        building: false,
                    })
                    .collect(),
                checks: old.checks,
                foreign_keys: old.foreign_keys,
                referenced_by: old.referenced_by,
            }
        }
    }

    /// The layout before identity columns, indexes and constraints.
    #[derive(Deserialize)]
    pub struct TableDesc {
        id: u32,
        name: String,
        columns: Vec<ColumnDesc>,
        primary_key: Vec<usize>,
    }

    #[derive(Deserialize)]
    struct ColumnDesc {
        name: String,
        data_type: DataType,
        nullable: bool,
        default: Option<String>,
        hidden: bool,
    }

    impl From<TableDesc> for V1 {
        fn from(old: TableDesc) -> Self {
            V1 {
                id: old.id,
                name: old.name,
                columns: old
                    .columns
                    .into_iter()
                    .map(|c| V2Column {
                        name: c.name,
                        data_type: c.data_type,
                        nullable: c.nullable,
                        default: c.default,
                        hidden: c.hidden,
                        identity: None,
                        missing: None,
                        dropped: false,
                    })
                    .collect(),
                primary_key: old.primary_key,
                indexes: vec![],
                checks: vec![],
                foreign_keys: vec![],
                referenced_by: vec![],
            }
        }
    }
}

/// Opens every table definition stored since layouts were tagged: five bytes no untagged
/// layout starts with (an id's varint that would not fit in 32 bits), then the layout
/// version.
const LAYOUT_TAG: [u8; 5] = [0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
/// The layout [`encode_table`] writes.
const LAYOUT_VERSION: u8 = 3;

/// A table definition as stored: tagged with its layout, so later layouts can still read it.
fn encode_table(desc: &TableDesc) -> SqlResult<Bytes> {
    let mut encoded = LAYOUT_TAG.to_vec();
    encoded.push(LAYOUT_VERSION);
    postcard::to_extend(desc, encoded)
        .map(Bytes::from)
        .map_err(|e| SqlError::internal(format!("encoding table definition: {e}")))
}

/// Decodes a stored table definition, in any layout it was ever stored in.
pub(crate) fn decode_table(bytes: &[u8]) -> Result<TableDesc, String> {
    let v1 = match bytes.strip_prefix(&LAYOUT_TAG[..]) {
        Some([LAYOUT_VERSION, rest @ ..]) => {
            return postcard::from_bytes(rest).map_err(|e| e.to_string())
        }
        Some([2, rest @ ..]) => {
            return postcard::from_bytes::<legacy::V2>(rest)
                .map(TableDesc::from)
                .map_err(|e| e.to_string())
        }
        Some([1, rest @ ..]) => postcard::from_bytes::<legacy::V1>(rest),
        Some(_) => return Err("unknown layout version".into()),
        None => match postcard::from_bytes::<legacy::Untagged>(bytes) {
            Ok(desc) => Ok(desc.into()),
            Err(e) => postcard::from_bytes::<legacy::TableDesc>(bytes)
                .map(legacy::V1::from)
                .map_err(|_| e),
        },
    };
    v1.map(TableDesc::from).map_err(|e| e.to_string())
}

impl TableDesc {
    /// A description of rows that are not in storage (a built-in view, a derived table):
    /// its columns and nothing else.
    pub fn without_storage(id: u32, name: impl Into<String>, columns: Vec<ColumnDesc>) -> Self {
        TableDesc {
            id,
            name: name.into(),
            columns,
            primary_key: vec![],
            primary_key_constraint: None,
            indexes: vec![],
            checks: vec![],
            foreign_keys: vec![],
            referenced_by: vec![],
        }
    }

    /// Whether its rows are computed rather than stored: a built-in view (`cairn_conflicts`,
    /// `cairn_jobs`) or a system relation (`pg_catalog`, `information_schema`).
    pub fn is_built_in(&self) -> bool {
        self.id == CONFLICTS_VIEW_ID
            || self.id == crate::jobs::JOBS_VIEW_ID
            || crate::system::tables::is_system(self)
    }

    /// The visible columns' indexes, in order (what `SELECT *` returns).
    pub fn visible_columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.hidden)
            .map(|(i, _)| i)
    }

    /// The index of the column named `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The name PostgreSQL gives the primary key constraint.
    pub fn primary_key_name(&self) -> String {
        match &self.primary_key_constraint {
            Some(name) => name.clone(),
            None => format!("{}_pkey", self.name),
        }
    }

    /// The key of the row whose primary-key values are `pk`.
    pub fn row_key(&self, pk: &[&Value]) -> Key {
        let mut key = self.rows_prefix();
        for value in pk {
            keycode::encode_key_value(value, &mut key);
        }
        Key::from(key)
    }

    /// The key of `row` (all columns).
    pub fn key_of_row(&self, row: &[Value]) -> Key {
        let pk: Vec<&Value> = self.primary_key.iter().map(|&i| &row[i]).collect();
        self.row_key(&pk)
    }

    /// The bytes every row key of this table starts with.
    pub fn rows_prefix(&self) -> Vec<u8> {
        rows_prefix(self.id)
    }

    /// Every row of the table.
    pub fn all_rows(&self) -> KeyRange {
        KeyRange::prefix(Key::from(self.rows_prefix()))
    }

    /// The bytes every entry of index `index` starts with.
    pub fn index_prefix(&self, index: &IndexDesc) -> Vec<u8> {
        let mut key = Vec::with_capacity(16);
        key.push(DATA_PREFIX);
        key.extend_from_slice(&self.id.to_be_bytes());
        key.push(index.id);
        key
    }

    /// The entry `row` has in `index`: its key, and its value (the row's primary key, as
    /// encoded after the rows' prefix).
    pub fn index_entry(&self, index: &IndexDesc, row: &[Value]) -> (Key, Bytes) {
        let mut key = self.index_prefix(index);
        let mut any_null = false;
        for &column in &index.columns {
            any_null |= row[column].is_null();
            keycode::encode_key_value(&row[column], &mut key);
        }
        let mut primary = Vec::with_capacity(16);
        for &column in &self.primary_key {
            keycode::encode_key_value(&row[column], &mut primary);
        }
        if !index.unique || any_null {
            key.extend_from_slice(&primary);
        }
        (Key::from(key), Bytes::from(primary))
    }

    /// The key of the row an index entry's value names.
    pub fn row_key_from_entry(&self, entry: &[u8]) -> Key {
        let mut key = self.rows_prefix();
        key.extend_from_slice(entry);
        Key::from(key)
    }

    /// An id no index of the table has.
    pub fn next_index_id(&self) -> Option<u8> {
        let used = self
            .indexes
            .iter()
            .map(|i| i.id)
            .max()
            .unwrap_or(PRIMARY_INDEX);
        used.checked_add(1).filter(|&id| id < u8::MAX)
    }
}

/// The catalog key of schema `name` (other than `public`, which always exists).
fn schema_key(name: &str) -> Key {
    let mut key = vec![CATALOG_PREFIX];
    key.extend_from_slice(b"n/");
    key.extend_from_slice(name.as_bytes());
    Key::from(key)
}

/// Whether schema `name` exists (`public` always does).
pub async fn schema_exists(txn: &mut Transaction, name: &str) -> SqlResult<bool> {
    if name == "public" {
        return Ok(true);
    }
    let key = schema_key(name);
    let found = txn.get(&key).await.map_err(core)?;
    txn.validate_read(key);
    Ok(found.is_some())
}

/// Creates (`true`) or drops (`false`) schema `name` in the transaction.
pub fn set_schema(txn: &mut Transaction, name: &str, exists: bool) {
    match exists {
        true => txn.put(schema_key(name), Bytes::new()),
        false => txn.delete(schema_key(name)),
    }
}

/// Whether any table, sequence, view or index lives in schema `name`.
pub async fn schema_in_use(txn: &mut Transaction, name: &str) -> SqlResult<bool> {
    for kind in [&b"t/"[..], b"q/", b"v/", b"i/"] {
        let mut prefix = vec![CATALOG_PREFIX];
        prefix.extend_from_slice(kind);
        prefix.extend_from_slice(name.as_bytes());
        prefix.push(b'.');
        let range = KeyRange::prefix(Key::from(prefix));
        txn.validate_range(range.clone());
        if !txn.scan(&range, 1).await.map_err(core)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Sets (`Some`) or removes (`None`) the comment on an object (COMMENT ON), kept for the
/// system catalogs.
pub fn set_comment(txn: &mut Transaction, kind: &str, name: &str, text: Option<&str>) {
    let mut key = vec![CATALOG_PREFIX];
    key.extend_from_slice(b"c/");
    key.extend_from_slice(kind.as_bytes());
    key.push(b'/');
    key.extend_from_slice(name.as_bytes());
    match text {
        Some(text) => txn.put(Key::from(key), Bytes::copy_from_slice(text.as_bytes())),
        None => txn.delete(Key::from(key)),
    }
}

/// The catalog key recording which table index `name` belongs to.
pub fn index_name_key(name: &str) -> Key {
    let mut key = vec![CATALOG_PREFIX];
    key.extend_from_slice(b"i/");
    key.extend_from_slice(name.as_bytes());
    Key::from(key)
}

/// The table that index `name` belongs to, if there is one.
pub async fn index_owner(txn: &mut Transaction, name: &str) -> SqlResult<Option<String>> {
    let key = index_name_key(name);
    let found = txn.get(&key).await.map_err(core)?;
    txn.validate_read(key);
    Ok(found.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// Records (`Some`) or forgets (`None`) that index `name` belongs to `table`.
pub fn set_index_owner(txn: &mut Transaction, name: &str, table: Option<&str>) {
    match table {
        Some(table) => txn.put(
            index_name_key(name),
            Bytes::copy_from_slice(table.as_bytes()),
        ),
        None => txn.delete(index_name_key(name)),
    }
}

fn rows_prefix(table_id: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    key.push(DATA_PREFIX);
    key.extend_from_slice(&table_id.to_be_bytes());
    key.push(PRIMARY_INDEX);
    key
}

/// The catalog key of table `name`.
pub fn table_key(name: &str) -> Key {
    let mut key = vec![CATALOG_PREFIX];
    key.extend_from_slice(b"t/");
    key.extend_from_slice(name.as_bytes());
    Key::from(key)
}

/// First byte of idempotency records.
pub const IDEMPOTENCY_PREFIX: u8 = 0x02;

/// Where the record of a committed idempotency key lives.
pub fn idempotency_key(key: &str) -> Key {
    let mut bytes = vec![IDEMPOTENCY_PREFIX];
    bytes.extend_from_slice(key.as_bytes());
    Key::from(bytes)
}

fn next_table_id_key() -> Key {
    let mut key = vec![CATALOG_PREFIX];
    key.extend_from_slice(b"next_table_id");
    Key::from(key)
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        SqlState::DATA_CORRUPTED,
        format!("catalog entry {what} is damaged: {e}"),
    )
}

fn core(e: cairn_types::Error) -> SqlError {
    SqlError::from_core(e, |k| k.to_string())
}

/// The definition of table `name` at the transaction's snapshot, recorded as a read the commit
/// validates (schema conflicts).
pub async fn lookup(txn: &mut Transaction, name: &str) -> SqlResult<Option<Arc<TableDesc>>> {
    let key = table_key(name);
    let found = txn.get(&key).await.map_err(core)?;
    txn.validate_read(key);
    match found {
        None => Ok(None),
        Some(bytes) => decoded_table(&bytes)
            .map(Some)
            .map_err(|e| corrupt(name, e)),
    }
}

/// Table definitions decoded lately, by the stored bytes they were decoded from. Planning
/// looks a statement's tables up at its snapshot, and decoding the same definition for every
/// statement of every session was a visible share of a short statement's CPU. Shared by the
/// whole process: a definition is reused only for identical bytes, so it is the same
/// whichever database or snapshot read them.
static DECODED_TABLES: LazyLock<
    Mutex<HashMap<Bytes, Arc<TableDesc>, foldhash::fast::RandomState>>,
> = LazyLock::new(Mutex::default);

/// Past this many definitions the cache starts again empty (only schema churn gets there).
const DECODED_TABLES_MAX: usize = 1024;

/// [`decode_table`], shared through [`DECODED_TABLES`].
fn decoded_table(bytes: &[u8]) -> Result<Arc<TableDesc>, String> {
    let cache = || {
        DECODED_TABLES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    };
    if let Some(desc) = cache().get(bytes) {
        return Ok(desc.clone());
    }
    let desc = Arc::new(decode_table(bytes)?);
    let mut cache = cache();
    if cache.len() >= DECODED_TABLES_MAX {
        cache.clear();
    }
    // A copy: the read's bytes may be a slice of a larger buffer.
    cache.insert(Bytes::copy_from_slice(bytes), desc.clone());
    Ok(desc)
}

/// Like [`lookup`], but a missing table is 42P01, and the built-in view is found too.
pub async fn require(txn: &mut Transaction, name: &str) -> SqlResult<Arc<TableDesc>> {
    match lookup(txn, name).await? {
        Some(table) => Ok(table),
        None if name == CONFLICTS_VIEW => Ok(Arc::new(conflicts_view())),
        None if name == crate::jobs::JOBS_VIEW => Ok(Arc::new(crate::jobs::jobs_view())),
        None => crate::system::tables::find(name).ok_or_else(|| undefined_table(name)),
    }
}

/// 42P01 `relation "x" does not exist`.
pub fn undefined_table(name: &str) -> SqlError {
    SqlError::new(
        SqlState::UNDEFINED_TABLE,
        format!("relation \"{name}\" does not exist"),
    )
}

/// Creates a table in the transaction: allocates its id and writes its descriptor. The caller
/// has checked that the name is free.
pub async fn create(txn: &mut Transaction, mut desc: TableDesc) -> SqlResult<TableDesc> {
    desc.id = allocate_id(txn).await?;
    txn.put(table_key(&desc.name), encode_table(&desc)?);
    Ok(desc)
}

/// Draws the next id of a table or sequence (never reused).
pub async fn allocate_id(txn: &mut Transaction) -> SqlResult<u32> {
    let counter = next_table_id_key();
    let id = match txn.get(&counter).await.map_err(core)? {
        None => FIRST_TABLE_ID,
        Some(bytes) => {
            let raw: [u8; 4] = bytes.as_ref().try_into().map_err(|_| {
                corrupt(
                    "next_table_id",
                    format!("{} bytes instead of 4", bytes.len()),
                )
            })?;
            u32::from_be_bytes(raw)
        }
    };
    let next = id.checked_add(1).ok_or_else(|| {
        SqlError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            "too many tables and sequences have been created",
        )
    })?;
    txn.put(counter, Bytes::copy_from_slice(&next.to_be_bytes()));
    Ok(id)
}

/// A view: a stored query, planned again wherever the view is read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewDesc {
    /// Its name (normalised like a table's).
    pub name: String,
    /// The query, as SQL text.
    pub sql: String,
    /// Its columns' names (the query's, or the list CREATE VIEW gave).
    pub columns: Vec<String>,
}

/// The catalog key of view `name`.
pub fn view_key(name: &str) -> Key {
    let mut key = vec![CATALOG_PREFIX];
    key.extend_from_slice(b"v/");
    key.extend_from_slice(name.as_bytes());
    Key::from(key)
}

/// The definition of view `name` at the transaction's snapshot (a validated read, as for
/// tables: a statement that used a view another transaction redefined fails to commit).
pub async fn lookup_view(txn: &mut Transaction, name: &str) -> SqlResult<Option<ViewDesc>> {
    let key = view_key(name);
    let found = txn.get(&key).await.map_err(core)?;
    txn.validate_read(key);
    match found {
        None => Ok(None),
        Some(bytes) => postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| corrupt(name, e)),
    }
}

/// Every view at the transaction's snapshot (a validated range: a view created meanwhile
/// makes the transaction's commit fail, as a changed one does).
pub async fn all_views(txn: &mut Transaction) -> SqlResult<Vec<ViewDesc>> {
    const PAGE: usize = 256;
    let mut range = KeyRange::prefix(view_key(""));
    txn.validate_range(range.clone());
    let mut views = Vec::new();
    loop {
        let page = txn.scan(&range, PAGE).await.map_err(core)?;
        let full = page.len() == PAGE;
        for (key, bytes) in &page {
            let name = String::from_utf8_lossy(&key.as_bytes()[view_key("").as_bytes().len()..]);
            views.push(postcard::from_bytes(bytes).map_err(|e| corrupt(&name, e))?);
        }
        match page.last() {
            Some((last, _)) if full => range.start = crate::exec::key_after(last),
            _ => return Ok(views),
        }
    }
}

/// Stores (or replaces) a view in the transaction.
pub fn put_view(txn: &mut Transaction, view: &ViewDesc) -> SqlResult<()> {
    let encoded = postcard::to_allocvec(view)
        .map_err(|e| SqlError::internal(format!("encoding view definition: {e}")))?;
    txn.put(view_key(&view.name), Bytes::from(encoded));
    Ok(())
}

/// Drops view `name` in the transaction.
pub fn drop_view(txn: &mut Transaction, name: &str) {
    txn.delete(view_key(name));
}

/// Gives `table` a new id in the transaction (TRUNCATE): its rows, under the old id, become
/// unreachable like a dropped table's.
pub async fn renumber(txn: &mut Transaction, table: &TableDesc) -> SqlResult<()> {
    let mut desc = table.clone();
    desc.id = allocate_id(txn).await?;
    txn.put(table_key(&desc.name), encode_table(&desc)?);
    Ok(())
}

/// Writes `desc` as the definition of its table (ALTER TABLE), under its name.
pub fn put(txn: &mut Transaction, desc: &TableDesc) -> SqlResult<()> {
    txn.put(table_key(&desc.name), encode_table(desc)?);
    Ok(())
}

/// Drops table `name` in the transaction (its descriptor; see the module notes for rows).
pub fn drop(txn: &mut Transaction, name: &str) {
    txn.delete(table_key(name));
}

/// What a key is, for conflict messages and the conflict log.
pub struct KeyDescription {
    /// The table, if the key is a row or a table's catalog entry.
    pub table: Option<String>,
    /// The key as `(col, ...)=(value, ...)`, or the raw key when it cannot be decoded.
    pub key: String,
}

impl std::fmt::Display for KeyDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.table {
            Some(table) => write!(f, "table \"{table}\", key {}", self.key),
            None => write!(f, "key {}", self.key),
        }
    }
}

/// Describes a key: the table it belongs to and its primary-key values, read from the catalog
/// at `txn`'s snapshot.
pub async fn describe_key(txn: &Transaction, key: &Key) -> KeyDescription {
    let bytes = key.as_bytes();
    match bytes.first() {
        Some(&CATALOG_PREFIX) => match bytes.strip_prefix(&[CATALOG_PREFIX, b't', b'/']) {
            Some(name) => KeyDescription {
                table: Some(String::from_utf8_lossy(name).into_owned()),
                key: "(its definition)".into(),
            },
            None => KeyDescription {
                table: None,
                key: format!("{key} (catalog)"),
            },
        },
        Some(&DATA_PREFIX) if bytes.len() >= 6 => {
            let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
            let catalog = KeyRange::prefix(Key::from(vec![CATALOG_PREFIX, b't', b'/']));
            let tables = txn.scan(&catalog, usize::MAX).await.unwrap_or_default();
            let desc = tables
                .iter()
                .filter_map(|(_, value)| decode_table(value).ok())
                .find(|desc| desc.id == id);
            match desc {
                Some(desc) => {
                    let types: Vec<DataType> = desc
                        .primary_key
                        .iter()
                        .map(|&i| desc.columns[i].data_type.clone())
                        .collect();
                    let names: Vec<&str> = desc
                        .primary_key
                        .iter()
                        .map(|&i| desc.columns[i].name.as_str())
                        .collect();
                    let key = match keycode::decode_key_values(&types, &bytes[6..]) {
                        Ok(values) => {
                            // The log outlives sessions: timestamptz keys show in UTC.
                            let values: Vec<String> = values
                                .iter()
                                .zip(&types)
                                .map(|(v, t)| text::format_text_typed(v, t, &TimeZone::utc()))
                                .collect();
                            format!("({})=({})", names.join(", "), values.join(", "))
                        }
                        Err(_) => key.to_string(),
                    };
                    KeyDescription {
                        table: Some(desc.name),
                        key,
                    }
                }
                None => KeyDescription {
                    table: Some(format!("(dropped table {id})")),
                    key: key.to_string(),
                },
            }
        }
        _ => KeyDescription {
            table: None,
            key: key.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A column as layouts before 3 stored it (no generated expression).
    #[derive(Serialize)]
    struct OldColumn {
        name: String,
        data_type: DataType,
        nullable: bool,
        default: Option<String>,
        hidden: bool,
        identity: Option<Identity>,
        missing: Option<Value>,
        dropped: bool,
    }

    fn old_columns(columns: &[ColumnDesc]) -> Vec<OldColumn> {
        columns
            .iter()
            .map(|c| OldColumn {
                name: c.name.clone(),
                data_type: c.data_type.clone(),
                nullable: c.nullable,
                default: c.default.clone(),
                hidden: c.hidden,
                identity: c.identity,
                missing: c.missing.clone(),
                dropped: c.dropped,
            })
            .collect()
    }

    fn orders() -> TableDesc {
        let mut customer = ColumnDesc::new("customer_id", DataType::Int4);
        customer.nullable = false;
        TableDesc {
            id: 7,
            name: "orders".into(),
            columns: vec![ColumnDesc::new("id", DataType::Int8), customer],
            primary_key: vec![0],
            primary_key_constraint: Some("pk_orders".into()),
            indexes: vec![IndexDesc {
                id: 2,
                name: "orders_customer".into(),
                columns: vec![1],
                include: vec![0],
                unique: false,
                building: true,
            }],
            checks: vec![("orders_id_check".into(), "id > 0".into())],
            foreign_keys: vec![],
            referenced_by: vec![],
        }
    }

    #[test]
    fn a_definition_reads_back_as_written() {
        let desc = orders();
        let stored = encode_table(&desc).unwrap();
        assert!(stored.starts_with(&LAYOUT_TAG));
        assert_eq!(decode_table(&stored).unwrap(), desc);
    }

    #[test]
    fn the_same_stored_bytes_share_one_decoded_definition() {
        let stored = encode_table(&orders()).unwrap();
        let first = decoded_table(&stored).unwrap();
        let copy = Bytes::copy_from_slice(&stored);
        let again = decoded_table(&copy).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "decoded once");
        assert_eq!(*first, orders());

        let mut altered = orders();
        altered.checks.clear();
        let changed = decoded_table(&encode_table(&altered).unwrap()).unwrap();
        assert_eq!(*changed, altered, "other bytes decode afresh");
    }

    /// Definitions stored before layouts were tagged still read, their indexes in use.
    #[test]
    fn an_untagged_definition_reads_in_the_current_layout() {
        #[derive(Serialize)]
        struct OldIndex {
            id: u8,
            name: String,
            columns: Vec<usize>,
            unique: bool,
        }
        #[derive(Serialize)]
        struct Old {
            id: u32,
            name: String,
            columns: Vec<OldColumn>,
            primary_key: Vec<usize>,
            indexes: Vec<OldIndex>,
            checks: Vec<(String, String)>,
            foreign_keys: Vec<ForeignKey>,
            referenced_by: Vec<String>,
        }
        let mut expected = orders();
        expected.primary_key_constraint = None;
        expected.indexes[0].include = vec![];
        expected.indexes[0].building = false;
        let old = Old {
            id: expected.id,
            name: expected.name.clone(),
            columns: old_columns(&expected.columns),
            primary_key: expected.primary_key.clone(),
            indexes: vec![OldIndex {
                id: 2,
                name: "orders_customer".into(),
                columns: vec![1],
                unique: false,
            }],
            checks: expected.checks.clone(),
            foreign_keys: vec![],
            referenced_by: vec![],
        };
        let stored = postcard::to_allocvec(&old).unwrap();
        assert_eq!(decode_table(&stored).unwrap(), expected);
    }

    /// Layout 1 (tagged, before primary key names and INCLUDE) still reads.
    #[test]
    fn a_version_1_definition_reads_in_the_current_layout() {
        #[derive(Serialize)]
        struct V1Index {
            id: u8,
            name: String,
            columns: Vec<usize>,
            unique: bool,
            building: bool,
        }
        #[derive(Serialize)]
        struct V1 {
            id: u32,
            name: String,
            columns: Vec<OldColumn>,
            primary_key: Vec<usize>,
            indexes: Vec<V1Index>,
            checks: Vec<(String, String)>,
            foreign_keys: Vec<ForeignKey>,
            referenced_by: Vec<String>,
        }
        let mut expected = orders();
        expected.primary_key_constraint = None;
        expected.indexes[0].include = vec![];
        let old = V1 {
            id: expected.id,
            name: expected.name.clone(),
            columns: old_columns(&expected.columns),
            primary_key: expected.primary_key.clone(),
            indexes: vec![V1Index {
                id: 2,
                name: "orders_customer".into(),
                columns: vec![1],
                unique: false,
                building: true,
            }],
            checks: expected.checks.clone(),
            foreign_keys: vec![],
            referenced_by: vec![],
        };
        let mut stored = LAYOUT_TAG.to_vec();
        stored.push(1);
        stored.extend(postcard::to_allocvec(&old).unwrap());
        assert_eq!(decode_table(&stored).unwrap(), expected);
    }

    /// Layout 2 (before generated columns) still reads.
    #[test]
    fn a_version_2_definition_reads_in_the_current_layout() {
        #[derive(Serialize)]
        struct V2 {
            id: u32,
            name: String,
            columns: Vec<OldColumn>,
            primary_key: Vec<usize>,
            primary_key_constraint: Option<String>,
            indexes: Vec<IndexDesc>,
            checks: Vec<(String, String)>,
            foreign_keys: Vec<ForeignKey>,
            referenced_by: Vec<String>,
        }
        let expected = orders();
        let old = V2 {
            id: expected.id,
            name: expected.name.clone(),
            columns: old_columns(&expected.columns),
            primary_key: expected.primary_key.clone(),
            primary_key_constraint: expected.primary_key_constraint.clone(),
            indexes: expected.indexes.clone(),
            checks: expected.checks.clone(),
            foreign_keys: vec![],
            referenced_by: vec![],
        };
        let mut stored = LAYOUT_TAG.to_vec();
        stored.push(2);
        stored.extend(postcard::to_allocvec(&old).unwrap());
        assert_eq!(decode_table(&stored).unwrap(), expected);
    }

    #[test]
    fn an_unknown_layout_version_is_refused() {
        let mut stored = encode_table(&orders()).unwrap().to_vec();
        stored[LAYOUT_TAG.len()] = LAYOUT_VERSION + 1;
        assert!(decode_table(&stored).is_err());
    }
}
