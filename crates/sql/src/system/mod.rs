//! The system catalogs: PostgreSQL's `pg_catalog` and `information_schema` relations, as
//! clients (psql's `\d`, drivers, ORMs, migration tools) query them.
//!
//! Nothing here is stored. A statement that reads a system relation, or calls a function
//! that looks something up in the catalog (`pg_get_indexdef`, `pg_table_is_visible`,
//! `::regclass`...), gets a [`SystemCatalog`]: every schema, table, index, sequence, view and
//! comment, read from Cairn's own catalog keys at the statement's snapshot (so it shows the
//! transaction's own uncommitted DDL, as PostgreSQL's catalogs do). The relations' rows are
//! computed from it ([`tables`]); so are the functions' answers ([`functions`]).
//!
//! OIDs are stable: a table's or sequence's comes from its id (never reused), an index's
//! from its table's and its own id, a view's, schema's or constraint's from a hash of its
//! name (views and schemas have no ids). Built-in objects have PostgreSQL's own OIDs.
//! `oid` is an alias of `bigint` here, so these columns are bigint.

pub mod functions;
mod information_schema;
pub mod tables;

use std::collections::HashMap;
use std::sync::Arc;

use cairn_qp::Transaction;
use cairn_types::{Key, KeyRange};

use crate::catalog::{self, TableDesc, ViewDesc, CATALOG_PREFIX};
use crate::error::{SqlError, SqlResult, SqlState};
use crate::sequence::SequenceDesc;

/// The OID of schema `pg_catalog`.
pub const PG_CATALOG_OID: i64 = 11;
/// The OID of schema `public`.
pub const PUBLIC_OID: i64 = 2200;
/// The OID of schema `information_schema`.
pub const INFORMATION_SCHEMA_OID: i64 = 13_000;
/// The OID of the one role (the bootstrap superuser's, as in PostgreSQL).
pub const ROLE_OID: i64 = 10;
/// The OID of the database.
pub const DATABASE_OID: i64 = 5;
/// `pg_class`'s OID: the `classoid` of relations in `pg_description`.
pub const PG_CLASS_OID: i64 = 1259;
/// `pg_namespace`'s OID: the `classoid` of schemas in `pg_description`.
pub const PG_NAMESPACE_OID: i64 = 2615;
/// Access method btree (every index).
pub const BTREE_OID: i64 = 403;
/// Access method heap (every table).
pub const HEAP_OID: i64 = 2;
/// Tables' and sequences' OIDs start here: `base + id * 256`, their indexes' `+ index id`.
const RELATION_OID_BASE: i64 = 0x0100_0000;
/// Hashed OIDs (views, schemas, constraints, defaults) fall in `[base, base + span)`.
const HASHED_OID_BASE: i64 = 0x8000_0000;
const HASHED_OID_SPAN: u32 = 0x7FFF_0000;

/// The ids of the system relations' descriptors start here, counting down from the
/// built-in views' (`u32::MAX`, `u32::MAX - 1`).
pub const SYSTEM_TABLE_ID_TOP: u32 = u32::MAX - 16;

/// A schema.
#[derive(Clone, Debug)]
pub struct Schema {
    /// Its name.
    pub name: String,
    /// Its OID.
    pub oid: i64,
}

/// What a relation is.
#[derive(Clone, Debug)]
pub enum RelationKind {
    /// A table.
    Table(Arc<TableDesc>),
    /// An index of a table: its position in `indexes`, or `None` for the primary key's.
    Index(Arc<TableDesc>, Option<usize>),
    /// A sequence.
    Sequence(Arc<SequenceDesc>),
    /// A view, with its columns' types (text where its query no longer plans).
    View(ViewDesc, Vec<crate::types::DataType>),
    /// A system relation (shown as a view of `pg_catalog` or `information_schema`).
    System(Arc<TableDesc>),
}

/// A relation (PostgreSQL's `pg_class` row).
#[derive(Clone, Debug)]
pub struct Relation {
    /// Its OID.
    pub oid: i64,
    /// Its schema.
    pub schema: String,
    /// Its name within the schema.
    pub name: String,
    /// What it is.
    pub kind: RelationKind,
}

impl Relation {
    /// `pg_class.relkind`.
    pub fn relkind(&self) -> &'static str {
        match self.kind {
            RelationKind::Table(_) => "r",
            RelationKind::Index(..) => "i",
            RelationKind::Sequence(_) => "S",
            RelationKind::View(..) | RelationKind::System(_) => "v",
        }
    }

    /// The table it is, or whose index it is.
    pub fn table(&self) -> Option<&Arc<TableDesc>> {
        match &self.kind {
            RelationKind::Table(table) | RelationKind::Index(table, _) => Some(table),
            _ => None,
        }
    }
}

/// A constraint (PostgreSQL's `pg_constraint` row).
#[derive(Clone, Debug)]
pub struct Constraint {
    /// Its OID.
    pub oid: i64,
    /// Its name.
    pub name: String,
    /// `p`, `u`, `c` or `f`.
    pub kind: &'static str,
    /// The table's OID.
    pub table_oid: i64,
    /// The table's schema.
    pub schema: String,
    /// The constrained columns' numbers (1-based).
    pub columns: Vec<i16>,
    /// The index enforcing it (primary key and unique), else 0.
    pub index_oid: i64,
    /// A foreign key's referenced table (else 0) and columns.
    pub referenced: (i64, Vec<i16>),
    /// A foreign key's ON UPDATE and ON DELETE actions (`a`, `r`, `c`, `n`, `d`).
    pub actions: (&'static str, &'static str),
    /// Its definition as `pg_get_constraintdef` shows it.
    pub definition: String,
}

/// Every object of the catalog at one snapshot, by OID and by name.
#[derive(Debug, Default)]
pub struct SystemCatalog {
    /// Schemas: pg_catalog, public, information_schema, then the created ones by name.
    pub schemas: Vec<Schema>,
    /// Relations: tables, each followed by its indexes, then sequences, views and the
    /// system relations.
    pub relations: Vec<Relation>,
    /// Constraints of every table.
    pub constraints: Vec<Constraint>,
    /// Comments: (kind, stored name) → text, kind as COMMENT ON names it.
    pub comments: HashMap<(String, String), String>,
    /// The schemas an unqualified name is looked for in (existing ones), in order.
    pub search_path: Vec<String>,
    /// The session's user.
    pub user: String,
    /// The database's name.
    pub database: String,
    /// The session's settings (pg_settings).
    pub settings: Vec<(String, String)>,
    /// The session's open cursors (pg_cursors): name, WITH HOLD, SCROLL.
    pub cursors: Vec<(String, bool, bool)>,
    /// The backend pids of this process's sessions (pg_stat_activity), and the session's own.
    pub backends: Vec<i32>,
    /// The session's own backend pid.
    pub pid: i32,
    by_oid: HashMap<i64, usize>,
}

/// A name's schema and name within it, from a stored relation name (`public`'s are stored
/// unqualified).
pub fn split_name(stored: &str) -> (&str, &str) {
    match stored.split_once('.') {
        Some((schema, name)) => (schema, name),
        None => ("public", stored),
    }
}

/// A relation's OID from its table or sequence id.
pub fn relation_oid(id: u32) -> i64 {
    RELATION_OID_BASE + i64::from(id) * 256
}

/// A stable OID for an object known only by name: FNV-1a of the parts, in the hashed range.
pub fn hashed_oid(parts: &[&str]) -> i64 {
    let mut hash: u32 = 0x811c_9dc5;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    HASHED_OID_BASE + i64::from(hash % HASHED_OID_SPAN)
}

fn schema_oid(name: &str) -> i64 {
    match name {
        "pg_catalog" => PG_CATALOG_OID,
        "public" => PUBLIC_OID,
        "information_schema" => INFORMATION_SCHEMA_OID,
        other => hashed_oid(&["schema", other]),
    }
}

fn core(e: cairn_types::Error) -> SqlError {
    SqlError::from_core(e, |k| k.to_string())
}

fn damaged(what: &str, e: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        SqlState::DATA_CORRUPTED,
        format!("catalog entry {what} is damaged: {e}"),
    )
}

/// Every (name, value) under catalog prefix `kind` (`t/`, `q/`...) at the snapshot.
async fn scan_kind(txn: &mut Transaction, kind: &[u8]) -> SqlResult<Vec<(String, Vec<u8>)>> {
    const PAGE: usize = 256;
    let mut prefix = vec![CATALOG_PREFIX];
    prefix.extend_from_slice(kind);
    let mut range = KeyRange::prefix(Key::from(prefix.clone()));
    let mut found = Vec::new();
    loop {
        let page = txn.scan(&range, PAGE).await.map_err(core)?;
        let full = page.len() == PAGE;
        for (key, bytes) in &page {
            let name = String::from_utf8_lossy(&key.as_bytes()[prefix.len()..]).into_owned();
            found.push((name, bytes.to_vec()));
        }
        match page.last() {
            Some((last, _)) if full => range.start = crate::exec::key_after(last),
            _ => return Ok(found),
        }
    }
}

impl SystemCatalog {
    /// Reads the whole catalog at the transaction's snapshot.
    pub async fn load(
        txn: &mut Transaction,
        session: &crate::expr::SessionInfo<'_>,
    ) -> SqlResult<SystemCatalog> {
        let mut system = SystemCatalog {
            search_path: session.search_path.to_vec(),
            user: session.user.to_string(),
            database: session.database.to_string(),
            settings: session
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            cursors: session.cursors.to_vec(),
            backends: session
                .backends
                .map(|backends| {
                    let mut pids: Vec<i32> = backends
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .keys()
                        .copied()
                        .collect();
                    pids.sort_unstable();
                    pids
                })
                .unwrap_or_default(),
            pid: session.pid,
            ..SystemCatalog::default()
        };
        for name in ["pg_catalog", "public", "information_schema"] {
            system.schemas.push(Schema {
                name: name.into(),
                oid: schema_oid(name),
            });
        }
        for (name, _) in scan_kind(txn, b"n/").await? {
            let oid = schema_oid(&name);
            system.schemas.push(Schema { name, oid });
        }
        for (name, bytes) in scan_kind(txn, b"t/").await? {
            let table = Arc::new(catalog::decode_table(&bytes).map_err(|e| damaged(&name, e))?);
            system.add_table(table);
        }
        for (name, bytes) in scan_kind(txn, b"q/").await? {
            let sequence: SequenceDesc =
                postcard::from_bytes(&bytes).map_err(|e| damaged(&name, e))?;
            let (schema, plain) = split_name(&sequence.name);
            system.relations.push(Relation {
                oid: relation_oid(sequence.id),
                schema: schema.into(),
                name: plain.into(),
                kind: RelationKind::Sequence(Arc::new(sequence)),
            });
        }
        for (name, bytes) in scan_kind(txn, b"v/").await? {
            let view: ViewDesc = postcard::from_bytes(&bytes).map_err(|e| damaged(&name, e))?;
            let types = view_types(txn, &view, session).await;
            let (schema, plain) = split_name(&view.name);
            system.relations.push(Relation {
                oid: hashed_oid(&["view", &view.name]),
                schema: schema.into(),
                name: plain.into(),
                kind: RelationKind::View(view, types),
            });
        }
        for table in tables::all() {
            let (schema, plain) = split_name(&table.name);
            system.relations.push(Relation {
                oid: tables::oid_of(&table),
                schema: schema.into(),
                name: plain.into(),
                kind: RelationKind::System(table),
            });
        }
        for (key, bytes) in scan_kind(txn, b"c/").await? {
            if let Some((kind, name)) = key.split_once('/') {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                system.comments.insert((kind.into(), name.into()), text);
            }
        }
        system.by_oid = system
            .relations
            .iter()
            .enumerate()
            .map(|(i, r)| (r.oid, i))
            .collect();
        Ok(system)
    }

    /// Adds a table, its indexes and its constraints.
    fn add_table(&mut self, table: Arc<TableDesc>) {
        let (schema, plain) = split_name(&table.name);
        let (schema, plain) = (schema.to_string(), plain.to_string());
        let oid = relation_oid(table.id);
        let has_primary_key = table
            .primary_key
            .first()
            .is_some_and(|&c| !table.columns[c].hidden);
        self.relations.push(Relation {
            oid,
            schema: schema.clone(),
            name: plain.clone(),
            kind: RelationKind::Table(table.clone()),
        });
        let attnums = |columns: &[usize]| -> Vec<i16> {
            columns
                .iter()
                .map(|&c| i16::try_from(c + 1).unwrap_or(i16::MAX))
                .collect()
        };
        let names = |columns: &[usize]| -> String {
            columns
                .iter()
                .map(|&c| quote_ident(&table.columns[c].name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if has_primary_key {
            let index_oid = oid + 1;
            let name = split_name(&table.primary_key_name()).1.to_string();
            self.relations.push(Relation {
                oid: index_oid,
                schema: schema.clone(),
                name: name.clone(),
                kind: RelationKind::Index(table.clone(), None),
            });
            self.constraints.push(Constraint {
                oid: hashed_oid(&["constraint", &table.name, &name]),
                definition: format!("PRIMARY KEY ({})", names(&table.primary_key)),
                name,
                kind: "p",
                table_oid: oid,
                schema: schema.clone(),
                columns: attnums(&table.primary_key),
                index_oid,
                referenced: (0, vec![]),
                actions: (" ", " "),
            });
        }
        for (position, index) in table.indexes.iter().enumerate() {
            let index_oid = oid + i64::from(index.id);
            let name = split_name(&index.name).1.to_string();
            self.relations.push(Relation {
                oid: index_oid,
                schema: schema.clone(),
                name: name.clone(),
                kind: RelationKind::Index(table.clone(), Some(position)),
            });
            if index.unique && is_constraint_index(&name) && !index.building {
                self.constraints.push(Constraint {
                    oid: hashed_oid(&["constraint", &table.name, &name]),
                    definition: format!("UNIQUE ({})", names(&index.columns)),
                    name,
                    kind: "u",
                    table_oid: oid,
                    schema: schema.clone(),
                    columns: attnums(&index.columns),
                    index_oid,
                    referenced: (0, vec![]),
                    actions: (" ", " "),
                });
            }
        }
        for (name, condition) in &table.checks {
            self.constraints.push(Constraint {
                oid: hashed_oid(&["constraint", &table.name, name]),
                name: name.clone(),
                kind: "c",
                table_oid: oid,
                schema: schema.clone(),
                columns: vec![],
                index_oid: 0,
                referenced: (0, vec![]),
                actions: (" ", " "),
                definition: format!("CHECK ({condition})"),
            });
        }
        for key in &table.foreign_keys {
            self.constraints.push(Constraint {
                oid: hashed_oid(&["constraint", &table.name, &key.name]),
                name: key.name.clone(),
                kind: "f",
                table_oid: oid,
                schema: schema.clone(),
                columns: attnums(&key.columns),
                index_oid: 0,
                // Filled in by `resolve_foreign_keys` once every table is known.
                referenced: (0, vec![]),
                actions: (action_code(key.on_update), action_code(key.on_delete)),
                definition: String::new(),
            });
        }
    }

    /// The relation with this OID.
    pub fn relation(&self, oid: i64) -> Option<&Relation> {
        self.by_oid.get(&oid).map(|&i| &self.relations[i])
    }

    /// The table stored under `stored` (schema-qualified unless in public).
    pub fn table_named(&self, stored: &str) -> Option<&Relation> {
        let (schema, name) = split_name(stored);
        self.relations.iter().find(|r| {
            matches!(r.kind, RelationKind::Table(_)) && r.schema == schema && r.name == name
        })
    }

    /// The schema with this OID.
    pub fn schema(&self, oid: i64) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.oid == oid)
    }

    /// The OID of schema `name`, if it exists.
    pub fn schema_oid(&self, name: &str) -> Option<i64> {
        self.schemas.iter().find(|s| s.name == name).map(|s| s.oid)
    }

    /// The schemas an unqualified name is looked up in: pg_catalog first (unless the path
    /// names it), then the path.
    pub fn effective_path(&self) -> Vec<&str> {
        let mut path = Vec::with_capacity(self.search_path.len() + 1);
        if !self.search_path.iter().any(|s| s == "pg_catalog") {
            path.push("pg_catalog");
        }
        path.extend(self.search_path.iter().map(String::as_str));
        path
    }

    /// Whether an unqualified name finds this relation (`pg_table_is_visible`).
    pub fn is_visible(&self, relation: &Relation) -> bool {
        for schema in self.effective_path() {
            if let Some(first) = self
                .relations
                .iter()
                .find(|r| r.schema == schema && r.name == relation.name)
            {
                return first.oid == relation.oid;
            }
        }
        false
    }

    /// The relation a `regclass` text names (`t`, `s.t`, `"T"`), along the search path.
    pub fn resolve_relation(&self, text: &str) -> Option<&Relation> {
        let parts = parse_qualified(text)?;
        match parts.as_slice() {
            [name] => self.effective_path().into_iter().find_map(|schema| {
                self.relations
                    .iter()
                    .find(|r| r.schema == schema && &r.name == name)
            }),
            [schema, name] => self
                .relations
                .iter()
                .find(|r| &r.schema == schema && &r.name == name),
            _ => None,
        }
    }

    /// A relation's name as `regclass` prints it: qualified unless visible.
    pub fn relation_display(&self, relation: &Relation) -> String {
        match self.is_visible(relation) {
            true => quote_ident(&relation.name),
            false => format!(
                "{}.{}",
                quote_ident(&relation.schema),
                quote_ident(&relation.name)
            ),
        }
    }

    /// The stored name of a relation (`public`'s unqualified).
    pub fn stored_name(relation: &Relation) -> String {
        match relation.schema.as_str() {
            "public" => relation.name.clone(),
            schema => format!("{schema}.{}", relation.name),
        }
    }

    /// The comment on a relation or one of its columns (`column` 0: the relation itself).
    pub fn comment(&self, relation: &Relation, column: i32) -> Option<&String> {
        let stored = Self::stored_name(relation);
        if column > 0 {
            let table = relation.table()?;
            let column = table.columns.get(usize::try_from(column - 1).ok()?)?;
            return self
                .comments
                .get(&("column".into(), format!("{stored}.{}", column.name)));
        }
        let kind = match relation.kind {
            RelationKind::Table(_) => "table",
            RelationKind::Index(..) => "index",
            RelationKind::Sequence(_) => "sequence",
            RelationKind::View(..) | RelationKind::System(_) => "view",
        };
        self.comments.get(&(kind.into(), stored))
    }

    /// Fills in foreign keys' referenced tables and columns and their definitions (the
    /// referenced table may come after the referencing one).
    fn resolve_foreign_keys(&mut self) {
        let mut resolved = Vec::new();
        for (i, constraint) in self.constraints.iter().enumerate() {
            if constraint.kind != "f" {
                continue;
            }
            let Some(table) = self
                .relation(constraint.table_oid)
                .and_then(Relation::table)
            else {
                continue;
            };
            let Some(key) = table
                .foreign_keys
                .iter()
                .find(|k| k.name == constraint.name)
            else {
                continue;
            };
            let parent = self.table_named(&key.parent);
            let parent_columns: Vec<usize> = match parent.and_then(Relation::table) {
                Some(parent) if key.referenced.is_empty() => parent.primary_key.clone(),
                Some(parent) => key
                    .referenced
                    .iter()
                    .filter_map(|name| parent.column_index(name))
                    .collect(),
                None => vec![],
            };
            let parent_names: Vec<String> = match parent.and_then(Relation::table) {
                Some(parent) => parent_columns
                    .iter()
                    .map(|&c| quote_ident(&parent.columns[c].name))
                    .collect(),
                None => key.referenced.clone(),
            };
            let own: Vec<String> = key
                .columns
                .iter()
                .map(|&c| quote_ident(&table.columns[c].name))
                .collect();
            let parent_display = match parent {
                Some(parent) => self.relation_display(parent),
                None => key.parent.clone(),
            };
            let mut definition = format!(
                "FOREIGN KEY ({}) REFERENCES {parent_display}({})",
                own.join(", "),
                parent_names.join(", ")
            );
            for (clause, action) in [("UPDATE", key.on_update), ("DELETE", key.on_delete)] {
                if let Some(words) = action_words(action) {
                    definition.push_str(&format!(" ON {clause} {words}"));
                }
            }
            let referenced = (
                parent.map_or(0, |p| p.oid),
                parent_columns
                    .iter()
                    .map(|&c| i16::try_from(c + 1).unwrap_or(i16::MAX))
                    .collect(),
            );
            resolved.push((i, referenced, definition));
        }
        for (i, referenced, definition) in resolved {
            self.constraints[i].referenced = referenced;
            self.constraints[i].definition = definition;
        }
    }

    /// Loads the catalog and completes what needs every table.
    pub async fn load_complete(
        txn: &mut Transaction,
        session: &crate::expr::SessionInfo<'_>,
    ) -> SqlResult<Arc<SystemCatalog>> {
        let mut system = Self::load(txn, session).await?;
        system.resolve_foreign_keys();
        Ok(Arc::new(system))
    }
}

/// A view's column types, from planning its query (text for each column if it fails).
async fn view_types(
    txn: &mut Transaction,
    view: &ViewDesc,
    session: &crate::expr::SessionInfo<'_>,
) -> Vec<crate::types::DataType> {
    let mut binder = crate::plan::Binder::new(&[], crate::types::timezone::TimeZone::utc());
    binder.search_path = session.search_path.to_vec();
    match Box::pin(crate::planner::plan_view(txn, view, &mut binder)).await {
        Ok(plan) if plan.columns.len() == view.columns.len() => {
            plan.columns.iter().map(|c| c.data_type.clone()).collect()
        }
        _ => vec![crate::types::DataType::Text; view.columns.len()],
    }
}

/// Whether a unique index is a UNIQUE constraint's (Cairn names those `<table>_<cols>_key`,
/// as PostgreSQL does, and keeps no other mark).
fn is_constraint_index(name: &str) -> bool {
    name.ends_with("_key")
}

fn action_code(action: catalog::RefAction) -> &'static str {
    match action {
        catalog::RefAction::NoAction => "a",
        catalog::RefAction::Cascade => "c",
        catalog::RefAction::SetNull => "n",
        catalog::RefAction::SetDefault => "d",
    }
}

fn action_words(action: catalog::RefAction) -> Option<&'static str> {
    match action {
        catalog::RefAction::NoAction => None,
        catalog::RefAction::Cascade => Some("CASCADE"),
        catalog::RefAction::SetNull => Some("SET NULL"),
        catalog::RefAction::SetDefault => Some("SET DEFAULT"),
    }
}

/// An identifier as PostgreSQL's `quote_ident` writes it: bare if it is lower case letters,
/// digits and underscores not starting with a digit, else double-quoted.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    match plain && !is_reserved(name) {
        true => name.to_string(),
        false => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

fn is_reserved(word: &str) -> bool {
    matches!(
        word,
        "all"
            | "and"
            | "any"
            | "array"
            | "as"
            | "asc"
            | "both"
            | "case"
            | "cast"
            | "check"
            | "column"
            | "constraint"
            | "create"
            | "default"
            | "desc"
            | "distinct"
            | "do"
            | "else"
            | "end"
            | "false"
            | "for"
            | "foreign"
            | "from"
            | "group"
            | "having"
            | "in"
            | "into"
            | "limit"
            | "not"
            | "null"
            | "offset"
            | "on"
            | "or"
            | "order"
            | "primary"
            | "references"
            | "select"
            | "table"
            | "then"
            | "to"
            | "true"
            | "union"
            | "unique"
            | "user"
            | "using"
            | "when"
            | "where"
            | "with"
    )
}

/// The parts of a possibly qualified, possibly quoted name (`s.t`, `"T"`): unquoted parts
/// lower-cased; `None` if it is malformed.
pub fn parse_qualified(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
            if part.is_empty() {
                return None;
            }
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => {}
            Some(_) => return None,
        }
    }
}
