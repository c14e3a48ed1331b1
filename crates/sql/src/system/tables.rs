//! The system relations: their columns (PostgreSQL's, or the subset clients read, in
//! PostgreSQL's order) and their rows, computed from a [`SystemCatalog`].

use std::sync::{Arc, OnceLock};

use super::{
    Constraint, Relation, RelationKind, SystemCatalog, BTREE_OID, DATABASE_OID, HEAP_OID,
    PG_CATALOG_OID, ROLE_OID, SYSTEM_TABLE_ID_TOP,
};
use crate::catalog::{ColumnDesc, TableDesc};
use crate::types::{DataType, Value};

/// A column type of a system relation.
#[derive(Clone, Copy)]
pub(super) enum Ty {
    /// oid (regproc and the like too)
    Oid,
    /// name, "char", text
    Text,
    Bool,
    I2,
    I4,
    I8,
    F4,
    /// text[], name[], aclitem[]
    TextArray,
    /// int2[]
    I2Array,
    /// int2vector
    I2Vector,
    /// oid[], oidvector
    OidArray,
}

impl Ty {
    fn data_type(self) -> DataType {
        match self {
            Ty::Oid => DataType::Oid,
            Ty::I8 => DataType::Int8,
            Ty::Text => DataType::Text,
            Ty::Bool => DataType::Bool,
            Ty::I2 => DataType::Int2,
            Ty::I4 => DataType::Int4,
            Ty::F4 => DataType::Float4,
            Ty::TextArray => DataType::Array(Box::new(DataType::Text)),
            Ty::I2Array => DataType::Array(Box::new(DataType::Int2)),
            Ty::I2Vector => DataType::Int2Vector,
            Ty::OidArray => DataType::Array(Box::new(DataType::Oid)),
        }
    }
}

pub(super) type Rows = Vec<Vec<Value>>;

/// A system relation: where it lives, its columns, and how its rows are made.
pub(super) struct Def {
    pub(super) schema: &'static str,
    pub(super) name: &'static str,
    /// PostgreSQL's OID for it where clients may know it, else one of Cairn's.
    pub(super) oid: i64,
    pub(super) columns: &'static [(&'static str, Ty)],
    pub(super) rows: fn(&SystemCatalog) -> Rows,
}

fn none(_: &SystemCatalog) -> Rows {
    Vec::new()
}

fn oid(value: i64) -> Value {
    Value::Int8(value)
}

pub(super) fn text(value: &str) -> Value {
    Value::Text(value.to_string())
}

fn int2(value: usize) -> Value {
    Value::Int2(i16::try_from(value).unwrap_or(i16::MAX))
}

fn int2_array(values: &[i16]) -> Value {
    Value::Array(values.iter().map(|&v| Value::Int2(v)).collect())
}

/// The `pg_catalog` relations.
const PG_CATALOG: &[Def] = &[
    Def {
        schema: "pg_catalog",
        name: "pg_namespace",
        oid: 2615,
        columns: &[
            ("oid", Ty::Oid),
            ("nspname", Ty::Text),
            ("nspowner", Ty::Oid),
            ("nspacl", Ty::TextArray),
        ],
        rows: |system| {
            system
                .schemas
                .iter()
                .map(|s| vec![oid(s.oid), text(&s.name), oid(ROLE_OID), Value::Null])
                .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_class",
        oid: 1259,
        columns: &[
            ("oid", Ty::Oid),
            ("relname", Ty::Text),
            ("relnamespace", Ty::Oid),
            ("reltype", Ty::Oid),
            ("reloftype", Ty::Oid),
            ("relowner", Ty::Oid),
            ("relam", Ty::Oid),
            ("relfilenode", Ty::Oid),
            ("reltablespace", Ty::Oid),
            ("relpages", Ty::I4),
            ("reltuples", Ty::F4),
            ("relallvisible", Ty::I4),
            ("reltoastrelid", Ty::Oid),
            ("relhasindex", Ty::Bool),
            ("relisshared", Ty::Bool),
            ("relpersistence", Ty::Text),
            ("relkind", Ty::Text),
            ("relnatts", Ty::I2),
            ("relchecks", Ty::I2),
            ("relhasrules", Ty::Bool),
            ("relhastriggers", Ty::Bool),
            ("relhassubclass", Ty::Bool),
            ("relrowsecurity", Ty::Bool),
            ("relforcerowsecurity", Ty::Bool),
            ("relispopulated", Ty::Bool),
            ("relreplident", Ty::Text),
            ("relispartition", Ty::Bool),
            ("relrewrite", Ty::Oid),
            ("relacl", Ty::TextArray),
            ("reloptions", Ty::TextArray),
            ("relpartbound", Ty::Text),
        ],
        rows: |system| {
            system
                .relations
                .iter()
                .map(|r| pg_class_row(system, r))
                .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_attribute",
        oid: 1249,
        columns: &[
            ("attrelid", Ty::Oid),
            ("attname", Ty::Text),
            ("atttypid", Ty::Oid),
            ("attstattarget", Ty::I4),
            ("attlen", Ty::I2),
            ("attnum", Ty::I2),
            ("attndims", Ty::I4),
            ("attcacheoff", Ty::I4),
            ("atttypmod", Ty::I4),
            ("attbyval", Ty::Bool),
            ("attalign", Ty::Text),
            ("attstorage", Ty::Text),
            ("attcompression", Ty::Text),
            ("attnotnull", Ty::Bool),
            ("atthasdef", Ty::Bool),
            ("atthasmissing", Ty::Bool),
            ("attidentity", Ty::Text),
            ("attgenerated", Ty::Text),
            ("attisdropped", Ty::Bool),
            ("attislocal", Ty::Bool),
            ("attinhcount", Ty::I4),
            ("attcollation", Ty::Oid),
            ("attacl", Ty::TextArray),
            ("attoptions", Ty::TextArray),
            ("attfdwoptions", Ty::TextArray),
        ],
        rows: pg_attribute_rows,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_type",
        oid: 1247,
        columns: &[
            ("oid", Ty::Oid),
            ("typname", Ty::Text),
            ("typnamespace", Ty::Oid),
            ("typowner", Ty::Oid),
            ("typlen", Ty::I2),
            ("typbyval", Ty::Bool),
            ("typtype", Ty::Text),
            ("typcategory", Ty::Text),
            ("typispreferred", Ty::Bool),
            ("typisdefined", Ty::Bool),
            ("typdelim", Ty::Text),
            ("typrelid", Ty::Oid),
            ("typsubscript", Ty::Oid),
            ("typelem", Ty::Oid),
            ("typarray", Ty::Oid),
            ("typinput", Ty::Text),
            ("typoutput", Ty::Text),
            ("typreceive", Ty::Text),
            ("typsend", Ty::Text),
            ("typalign", Ty::Text),
            ("typstorage", Ty::Text),
            ("typnotnull", Ty::Bool),
            ("typbasetype", Ty::Oid),
            ("typtypmod", Ty::I4),
            ("typndims", Ty::I4),
            ("typcollation", Ty::Oid),
            ("typdefault", Ty::Text),
            ("typacl", Ty::TextArray),
        ],
        rows: pg_type_rows,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_index",
        oid: 2610,
        columns: &[
            ("indexrelid", Ty::Oid),
            ("indrelid", Ty::Oid),
            ("indnatts", Ty::I2),
            ("indnkeyatts", Ty::I2),
            ("indisunique", Ty::Bool),
            ("indnullsnotdistinct", Ty::Bool),
            ("indisprimary", Ty::Bool),
            ("indisexclusion", Ty::Bool),
            ("indimmediate", Ty::Bool),
            ("indisclustered", Ty::Bool),
            ("indisvalid", Ty::Bool),
            ("indcheckxmin", Ty::Bool),
            ("indisready", Ty::Bool),
            ("indislive", Ty::Bool),
            ("indisreplident", Ty::Bool),
            ("indkey", Ty::I2Vector),
            ("indcollation", Ty::OidArray),
            ("indclass", Ty::OidArray),
            ("indoption", Ty::I2Vector),
            ("indexprs", Ty::Text),
            ("indpred", Ty::Text),
        ],
        rows: pg_index_rows,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_constraint",
        oid: 2606,
        columns: &[
            ("oid", Ty::Oid),
            ("conname", Ty::Text),
            ("connamespace", Ty::Oid),
            ("contype", Ty::Text),
            ("condeferrable", Ty::Bool),
            ("condeferred", Ty::Bool),
            ("convalidated", Ty::Bool),
            ("conrelid", Ty::Oid),
            ("contypid", Ty::Oid),
            ("conindid", Ty::Oid),
            ("conparentid", Ty::Oid),
            ("confrelid", Ty::Oid),
            ("confupdtype", Ty::Text),
            ("confdeltype", Ty::Text),
            ("confmatchtype", Ty::Text),
            ("conislocal", Ty::Bool),
            ("coninhcount", Ty::I4),
            ("connoinherit", Ty::Bool),
            ("conkey", Ty::I2Array),
            ("confkey", Ty::I2Array),
            ("conbin", Ty::Text),
        ],
        rows: |system| {
            system
                .constraints
                .iter()
                .map(|c| pg_constraint_row(system, c))
                .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_attrdef",
        oid: 2604,
        columns: &[
            ("oid", Ty::Oid),
            ("adrelid", Ty::Oid),
            ("adnum", Ty::I2),
            ("adbin", Ty::Text),
        ],
        rows: pg_attrdef_rows,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_description",
        oid: 2609,
        columns: &[
            ("objoid", Ty::Oid),
            ("classoid", Ty::Oid),
            ("objsubid", Ty::I4),
            ("description", Ty::Text),
        ],
        rows: pg_description_rows,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_am",
        oid: 2601,
        columns: &[
            ("oid", Ty::Oid),
            ("amname", Ty::Text),
            ("amhandler", Ty::Text),
            ("amtype", Ty::Text),
        ],
        rows: |_| {
            vec![
                vec![
                    oid(HEAP_OID),
                    text("heap"),
                    text("heap_tableam_handler"),
                    text("t"),
                ],
                vec![oid(BTREE_OID), text("btree"), text("bthandler"), text("i")],
            ]
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_database",
        oid: 1262,
        columns: &[
            ("oid", Ty::Oid),
            ("datname", Ty::Text),
            ("datdba", Ty::Oid),
            ("encoding", Ty::I4),
            ("datlocprovider", Ty::Text),
            ("datistemplate", Ty::Bool),
            ("datallowconn", Ty::Bool),
            ("datconnlimit", Ty::I4),
            ("datcollate", Ty::Text),
            ("datctype", Ty::Text),
            ("daticulocale", Ty::Text),
            ("datcollversion", Ty::Text),
            ("datacl", Ty::TextArray),
        ],
        rows: |system| {
            vec![vec![
                oid(DATABASE_OID),
                text(&system.database),
                oid(ROLE_OID),
                Value::Int4(6), // UTF8
                text("c"),
                Value::Bool(false),
                Value::Bool(true),
                Value::Int4(-1),
                text("C"),
                text("C"),
                Value::Null,
                Value::Null,
                Value::Null,
            ]]
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_roles",
        oid: 12_001,
        columns: &[
            ("rolname", Ty::Text),
            ("rolsuper", Ty::Bool),
            ("rolinherit", Ty::Bool),
            ("rolcreaterole", Ty::Bool),
            ("rolcreatedb", Ty::Bool),
            ("rolcanlogin", Ty::Bool),
            ("rolreplication", Ty::Bool),
            ("rolconnlimit", Ty::I4),
            ("rolpassword", Ty::Text),
            ("rolvaliduntil", Ty::Text),
            ("rolbypassrls", Ty::Bool),
            ("rolconfig", Ty::TextArray),
            ("oid", Ty::Oid),
        ],
        rows: |system| {
            let t = Value::Bool(true);
            vec![vec![
                text(&system.user),
                t.clone(),
                t.clone(),
                t.clone(),
                t.clone(),
                t.clone(),
                t.clone(),
                Value::Int4(-1),
                text("********"),
                Value::Null,
                t,
                Value::Null,
                oid(ROLE_OID),
            ]]
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_user",
        oid: 12_002,
        columns: &[
            ("usename", Ty::Text),
            ("usesysid", Ty::Oid),
            ("usecreatedb", Ty::Bool),
            ("usesuper", Ty::Bool),
            ("userepl", Ty::Bool),
            ("usebypassrls", Ty::Bool),
            ("passwd", Ty::Text),
            ("valuntil", Ty::Text),
            ("useconfig", Ty::TextArray),
        ],
        rows: |system| {
            let t = Value::Bool(true);
            vec![vec![
                text(&system.user),
                oid(ROLE_OID),
                t.clone(),
                t.clone(),
                t.clone(),
                t,
                text("********"),
                Value::Null,
                Value::Null,
            ]]
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_authid",
        oid: 1260,
        columns: &[
            ("oid", Ty::Oid),
            ("rolname", Ty::Text),
            ("rolsuper", Ty::Bool),
            ("rolinherit", Ty::Bool),
            ("rolcreaterole", Ty::Bool),
            ("rolcreatedb", Ty::Bool),
            ("rolcanlogin", Ty::Bool),
            ("rolreplication", Ty::Bool),
            ("rolbypassrls", Ty::Bool),
            ("rolconnlimit", Ty::I4),
            ("rolpassword", Ty::Text),
            ("rolvaliduntil", Ty::Text),
        ],
        rows: |system| {
            let t = Value::Bool(true);
            vec![vec![
                oid(ROLE_OID),
                text(&system.user),
                t.clone(),
                t.clone(),
                t.clone(),
                t.clone(),
                t.clone(),
                t.clone(),
                t,
                Value::Int4(-1),
                Value::Null,
                Value::Null,
            ]]
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_stat_activity",
        oid: 12_009,
        columns: &[
            ("datid", Ty::Oid),
            ("datname", Ty::Text),
            ("pid", Ty::I4),
            ("leader_pid", Ty::I4),
            ("usesysid", Ty::Oid),
            ("usename", Ty::Text),
            ("application_name", Ty::Text),
            ("client_addr", Ty::Text),
            ("client_hostname", Ty::Text),
            ("client_port", Ty::I4),
            ("wait_event_type", Ty::Text),
            ("wait_event", Ty::Text),
            ("state", Ty::Text),
            ("query", Ty::Text),
            ("backend_type", Ty::Text),
        ],
        // Every session of this process; what others are doing is theirs to tell (NULL), as
        // PostgreSQL shows it to a role that may not see it.
        rows: |system| {
            system
                .backends
                .iter()
                .map(|&pid| {
                    let own = pid == system.pid;
                    let application = system
                        .settings
                        .iter()
                        .find(|(name, _)| name == "application_name")
                        .map(|(_, value)| value.clone());
                    vec![
                        oid(DATABASE_OID),
                        text(&system.database),
                        Value::Int4(pid),
                        Value::Null,
                        oid(ROLE_OID),
                        match own {
                            true => text(&system.user),
                            false => Value::Null,
                        },
                        match (own, application) {
                            (true, Some(application)) => Value::Text(application),
                            _ => Value::Null,
                        },
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        match own {
                            true => text("active"),
                            false => Value::Null,
                        },
                        Value::Null,
                        text("client backend"),
                    ]
                })
                .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_auth_members",
        oid: 1261,
        columns: &[
            ("roleid", Ty::Oid),
            ("member", Ty::Oid),
            ("grantor", Ty::Oid),
            ("admin_option", Ty::Bool),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_settings",
        oid: 12_003,
        columns: &[
            ("name", Ty::Text),
            ("setting", Ty::Text),
            ("unit", Ty::Text),
            ("category", Ty::Text),
            ("short_desc", Ty::Text),
            ("context", Ty::Text),
            ("vartype", Ty::Text),
            ("source", Ty::Text),
            ("boot_val", Ty::Text),
            ("reset_val", Ty::Text),
        ],
        rows: |system| {
            system
                .settings
                .iter()
                .map(|(name, value)| {
                    vec![
                        text(name),
                        text(value),
                        Value::Null,
                        text(""),
                        text(""),
                        text("user"),
                        text("string"),
                        text("session"),
                        Value::Null,
                        Value::Null,
                    ]
                })
                .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_tables",
        oid: 12_004,
        columns: &[
            ("schemaname", Ty::Text),
            ("tablename", Ty::Text),
            ("tableowner", Ty::Text),
            ("tablespace", Ty::Text),
            ("hasindexes", Ty::Bool),
            ("hasrules", Ty::Bool),
            ("hastriggers", Ty::Bool),
            ("rowsecurity", Ty::Bool),
        ],
        rows: |system| {
            system
                .relations
                .iter()
                .filter_map(|r| match &r.kind {
                    RelationKind::Table(table) => Some(vec![
                        text(&r.schema),
                        text(&r.name),
                        text(&system.user),
                        Value::Null,
                        Value::Bool(has_index(table)),
                        Value::Bool(false),
                        Value::Bool(!table.foreign_keys.is_empty()),
                        Value::Bool(false),
                    ]),
                    _ => None,
                })
                .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_views",
        oid: 12_005,
        columns: &[
            ("schemaname", Ty::Text),
            ("viewname", Ty::Text),
            ("viewowner", Ty::Text),
            ("definition", Ty::Text),
        ],
        rows: |system| {
            system
                .relations
                .iter()
                .filter_map(|r| match &r.kind {
                    RelationKind::View(view, _) => Some(vec![
                        text(&r.schema),
                        text(&r.name),
                        text(&system.user),
                        text(&format!(" {};", view.sql)),
                    ]),
                    _ => None,
                })
                .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_indexes",
        oid: 12_006,
        columns: &[
            ("schemaname", Ty::Text),
            ("tablename", Ty::Text),
            ("indexname", Ty::Text),
            ("tablespace", Ty::Text),
            ("indexdef", Ty::Text),
        ],
        rows: |system| {
            system
                .relations
                .iter()
                .filter_map(|r| match &r.kind {
                    RelationKind::Index(table, position) => Some(vec![
                        text(&r.schema),
                        text(super::split_name(&table.name).1),
                        text(&r.name),
                        Value::Null,
                        text(&super::functions::index_definition(
                            system, r, table, *position,
                        )),
                    ]),
                    _ => None,
                })
                .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_sequence",
        oid: 2224,
        columns: &[
            ("seqrelid", Ty::Oid),
            ("seqtypid", Ty::Oid),
            ("seqstart", Ty::I8),
            ("seqincrement", Ty::I8),
            ("seqmax", Ty::I8),
            ("seqmin", Ty::I8),
            ("seqcache", Ty::I8),
            ("seqcycle", Ty::Bool),
        ],
        rows: |system| {
            system
                .relations
                .iter()
                .filter_map(|r| match &r.kind {
                    RelationKind::Sequence(s) => Some(vec![
                        oid(r.oid),
                        oid(i64::from(s.data_type.oid())),
                        Value::Int8(s.start),
                        Value::Int8(s.increment),
                        Value::Int8(s.max),
                        Value::Int8(s.min),
                        Value::Int8(s.cache),
                        Value::Bool(s.cycle),
                    ]),
                    _ => None,
                })
                .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_sequences",
        oid: 12_007,
        columns: &[
            ("schemaname", Ty::Text),
            ("sequencename", Ty::Text),
            ("sequenceowner", Ty::Text),
            ("data_type", Ty::Text),
            ("start_value", Ty::I8),
            ("min_value", Ty::I8),
            ("max_value", Ty::I8),
            ("increment_by", Ty::I8),
            ("cycle", Ty::Bool),
            ("cache_size", Ty::I8),
            ("last_value", Ty::I8),
        ],
        rows: |system| {
            system
                .relations
                .iter()
                .filter_map(|r| match &r.kind {
                    RelationKind::Sequence(s) => Some(vec![
                        text(&r.schema),
                        text(&r.name),
                        text(&system.user),
                        text(&s.data_type.to_string()),
                        Value::Int8(s.start),
                        Value::Int8(s.min),
                        Value::Int8(s.max),
                        Value::Int8(s.increment),
                        Value::Bool(s.cycle),
                        Value::Int8(s.cache),
                        Value::Null,
                    ]),
                    _ => None,
                })
                .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_collation",
        oid: 3456,
        columns: &[
            ("oid", Ty::Oid),
            ("collname", Ty::Text),
            ("collnamespace", Ty::Oid),
            ("collowner", Ty::Oid),
            ("collprovider", Ty::Text),
            ("collisdeterministic", Ty::Bool),
            ("collencoding", Ty::I4),
            ("collcollate", Ty::Text),
            ("collctype", Ty::Text),
        ],
        rows: |_| {
            [
                (100, "default", "d", Value::Null),
                (950, "C", "c", text("C")),
                (951, "POSIX", "c", text("POSIX")),
            ]
            .into_iter()
            .map(|(id, name, provider, locale)| {
                vec![
                    oid(id),
                    text(name),
                    oid(PG_CATALOG_OID),
                    oid(ROLE_OID),
                    text(provider),
                    Value::Bool(true),
                    Value::Int4(-1),
                    locale.clone(),
                    locale,
                ]
            })
            .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_proc",
        oid: 1255,
        columns: &[
            ("oid", Ty::Oid),
            ("proname", Ty::Text),
            ("pronamespace", Ty::Oid),
            ("proowner", Ty::Oid),
            ("prolang", Ty::Oid),
            ("prokind", Ty::Text),
            ("proretset", Ty::Bool),
            ("prorettype", Ty::Oid),
            ("pronargs", Ty::I2),
            ("proargtypes", Ty::OidArray),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_extension",
        oid: 3079,
        columns: &[
            ("oid", Ty::Oid),
            ("extname", Ty::Text),
            ("extowner", Ty::Oid),
            ("extnamespace", Ty::Oid),
            ("extrelocatable", Ty::Bool),
            ("extversion", Ty::Text),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_enum",
        oid: 3501,
        columns: &[
            ("oid", Ty::Oid),
            ("enumtypid", Ty::Oid),
            ("enumsortorder", Ty::F4),
            ("enumlabel", Ty::Text),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_range",
        oid: 3541,
        columns: &[
            ("rngtypid", Ty::Oid),
            ("rngsubtype", Ty::Oid),
            ("rngmultitypid", Ty::Oid),
            ("rngcollation", Ty::Oid),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_inherits",
        oid: 2611,
        columns: &[
            ("inhrelid", Ty::Oid),
            ("inhparent", Ty::Oid),
            ("inhseqno", Ty::I4),
            ("inhdetachpending", Ty::Bool),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_trigger",
        oid: 2620,
        columns: &[
            ("oid", Ty::Oid),
            ("tgrelid", Ty::Oid),
            ("tgparentid", Ty::Oid),
            ("tgname", Ty::Text),
            ("tgfoid", Ty::Oid),
            ("tgtype", Ty::I2),
            ("tgenabled", Ty::Text),
            ("tgisinternal", Ty::Bool),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_policy",
        oid: 3256,
        columns: &[
            ("oid", Ty::Oid),
            ("polname", Ty::Text),
            ("polrelid", Ty::Oid),
            ("polcmd", Ty::Text),
            ("polpermissive", Ty::Bool),
            ("polroles", Ty::OidArray),
            ("polqual", Ty::Text),
            ("polwithcheck", Ty::Text),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_rewrite",
        oid: 2618,
        columns: &[
            ("oid", Ty::Oid),
            ("rulename", Ty::Text),
            ("ev_class", Ty::Oid),
            ("ev_type", Ty::Text),
            ("ev_enabled", Ty::Text),
            ("is_instead", Ty::Bool),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_statistic_ext",
        oid: 3381,
        columns: &[
            ("oid", Ty::Oid),
            ("stxrelid", Ty::Oid),
            ("stxname", Ty::Text),
            ("stxnamespace", Ty::Oid),
            ("stxowner", Ty::Oid),
            ("stxstattarget", Ty::I4),
            ("stxkeys", Ty::I2Array),
            ("stxkind", Ty::TextArray),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_publication",
        oid: 6104,
        columns: &[
            ("oid", Ty::Oid),
            ("pubname", Ty::Text),
            ("pubowner", Ty::Oid),
            ("puballtables", Ty::Bool),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_publication_rel",
        oid: 6106,
        columns: &[
            ("oid", Ty::Oid),
            ("prpubid", Ty::Oid),
            ("prrelid", Ty::Oid),
            ("prqual", Ty::Text),
            ("prattrs", Ty::I2Array),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_publication_namespace",
        oid: 6237,
        columns: &[("oid", Ty::Oid), ("pnpubid", Ty::Oid), ("pnnspid", Ty::Oid)],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_depend",
        oid: 2608,
        columns: &[
            ("classid", Ty::Oid),
            ("objid", Ty::Oid),
            ("objsubid", Ty::I4),
            ("refclassid", Ty::Oid),
            ("refobjid", Ty::Oid),
            ("refobjsubid", Ty::I4),
            ("deptype", Ty::Text),
        ],
        rows: pg_depend_rows,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_cursors",
        oid: 12_008,
        columns: &[
            ("name", Ty::Text),
            ("statement", Ty::Text),
            ("is_holdable", Ty::Bool),
            ("is_binary", Ty::Bool),
            ("is_scrollable", Ty::Bool),
        ],
        rows: |system| {
            system
                .cursors
                .iter()
                .map(|(name, hold, scroll)| {
                    vec![
                        text(name),
                        Value::Null,
                        Value::Bool(*hold),
                        Value::Bool(false),
                        Value::Bool(*scroll),
                    ]
                })
                .collect()
        },
    },
    Def {
        schema: "pg_catalog",
        name: "pg_opclass",
        oid: 2616,
        columns: &[
            ("oid", Ty::Oid),
            ("opcmethod", Ty::Oid),
            ("opcname", Ty::Text),
            ("opcnamespace", Ty::Oid),
            ("opcowner", Ty::Oid),
            ("opcfamily", Ty::Oid),
            ("opcintype", Ty::Oid),
            ("opcdefault", Ty::Bool),
            ("opckeytype", Ty::Oid),
        ],
        rows: none,
    },
    Def {
        schema: "pg_catalog",
        name: "pg_tablespace",
        oid: 1213,
        columns: &[
            ("oid", Ty::Oid),
            ("spcname", Ty::Text),
            ("spcowner", Ty::Oid),
        ],
        rows: |_| {
            vec![
                vec![oid(1663), text("pg_default"), oid(ROLE_OID)],
                vec![oid(1664), text("pg_global"), oid(ROLE_OID)],
            ]
        },
    },
];

/// Every system relation's descriptor, built once.
fn descriptors() -> &'static [Arc<TableDesc>] {
    static DESCRIPTORS: OnceLock<Vec<Arc<TableDesc>>> = OnceLock::new();
    DESCRIPTORS.get_or_init(|| {
        defs()
            .enumerate()
            .map(|(i, def)| {
                let columns = def
                    .columns
                    .iter()
                    .map(|(name, ty)| ColumnDesc::new(*name, ty.data_type()))
                    .collect();
                let id = SYSTEM_TABLE_ID_TOP - u32::try_from(i).unwrap_or(0);
                Arc::new(TableDesc::without_storage(
                    id,
                    format!("{}.{}", def.schema, def.name),
                    columns,
                ))
            })
            .collect()
    })
}

/// Every system relation's definition: `pg_catalog`'s, then `information_schema`'s.
fn defs() -> impl Iterator<Item = &'static Def> {
    PG_CATALOG
        .iter()
        .chain(super::information_schema::RELATIONS)
}

fn def_of(id: u32) -> Option<&'static Def> {
    let i = usize::try_from(SYSTEM_TABLE_ID_TOP.checked_sub(id)?).ok()?;
    defs().nth(i)
}

/// Every system relation.
pub fn all() -> impl Iterator<Item = Arc<TableDesc>> {
    descriptors().iter().cloned()
}

/// Whether a descriptor is a system relation's.
pub fn is_system(table: &TableDesc) -> bool {
    def_of(table.id).is_some_and(|def| table.name.ends_with(def.name))
}

/// The system relation a stored name names: `pg_catalog.x`, `information_schema.x`, or an
/// unqualified name of a `pg_catalog` relation (pg_catalog is searched first).
pub fn find(stored: &str) -> Option<Arc<TableDesc>> {
    let qualified = match stored.contains('.') {
        true => stored.to_string(),
        false => format!("pg_catalog.{stored}"),
    };
    descriptors().iter().find(|t| t.name == qualified).cloned()
}

/// A system relation's OID.
pub fn oid_of(table: &TableDesc) -> i64 {
    def_of(table.id).map_or(0, |def| def.oid)
}

/// A system relation's rows, if `table` is one.
pub fn rows(table: &TableDesc, system: &SystemCatalog) -> Option<Rows> {
    def_of(table.id).map(|def| (def.rows)(system))
}

fn has_index(table: &TableDesc) -> bool {
    !table.indexes.is_empty()
        || table
            .primary_key
            .first()
            .is_some_and(|&c| !table.columns[c].hidden)
}

fn pg_class_row(system: &SystemCatalog, r: &Relation) -> Vec<Value> {
    let namespace = system.schema_oid(&r.schema).unwrap_or(0);
    // Foreign keys are triggers in PostgreSQL: psql shows them only where this is set.
    let has_triggers = r.table().is_some_and(|t| {
        matches!(r.kind, RelationKind::Table(_))
            && (!t.foreign_keys.is_empty() || !t.referenced_by.is_empty())
    });
    let (natts, checks, has_index) = match &r.kind {
        RelationKind::Table(table) => (
            table.columns.iter().filter(|c| !c.hidden).count(),
            table.checks.len(),
            has_index(table),
        ),
        RelationKind::Index(table, position) => (
            match position {
                Some(i) => table.indexes[*i].columns.len() + table.indexes[*i].include.len(),
                None => table.primary_key.len(),
            },
            0,
            false,
        ),
        RelationKind::Sequence(_) => (3, 0, false),
        RelationKind::View(view, _) => (view.columns.len(), 0, false),
        RelationKind::System(table) => (table.columns.len(), 0, false),
    };
    let am = match r.kind {
        RelationKind::Table(_) => HEAP_OID,
        RelationKind::Index(..) => BTREE_OID,
        _ => 0,
    };
    vec![
        oid(r.oid),
        text(&r.name),
        oid(namespace),
        oid(0),
        oid(0),
        oid(ROLE_OID),
        oid(am),
        oid(r.oid),
        oid(0),
        Value::Int4(0),
        Value::Float4(-1.0),
        Value::Int4(0),
        oid(0),
        Value::Bool(has_index),
        Value::Bool(false),
        text("p"),
        text(r.relkind()),
        int2(natts),
        int2(checks),
        Value::Bool(matches!(r.kind, RelationKind::View(..))),
        Value::Bool(has_triggers),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(true),
        text(if matches!(r.kind, RelationKind::Table(_)) {
            "d"
        } else {
            "n"
        }),
        Value::Bool(false),
        oid(0),
        Value::Null,
        Value::Null,
        Value::Null,
    ]
}

/// The columns a relation shows in pg_attribute: (attnum, column) pairs.
fn attributes(r: &Relation) -> Vec<(usize, ColumnDesc)> {
    match &r.kind {
        RelationKind::Table(table) => table
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.hidden || c.dropped)
            .map(|(i, c)| (i + 1, c.clone()))
            .collect(),
        RelationKind::Index(table, position) => {
            let columns = match position {
                Some(i) => {
                    let index = &table.indexes[*i];
                    index
                        .columns
                        .iter()
                        .chain(&index.include)
                        .copied()
                        .collect()
                }
                None => table.primary_key.clone(),
            };
            columns
                .iter()
                .enumerate()
                .map(|(n, &c)| {
                    let column = &table.columns[c];
                    let mut shown = ColumnDesc::new(
                        match &column.generated {
                            Some(_) => format!(
                                "expr{}",
                                if n == 0 { String::new() } else { n.to_string() }
                            ),
                            None => column.name.clone(),
                        },
                        column.data_type.clone(),
                    );
                    shown.nullable = column.nullable;
                    (n + 1, shown)
                })
                .collect()
        }
        RelationKind::Sequence(_) => vec![
            (1, ColumnDesc::new("last_value", DataType::Int8)),
            (2, ColumnDesc::new("log_cnt", DataType::Int8)),
            (3, ColumnDesc::new("is_called", DataType::Bool)),
        ],
        RelationKind::View(view, types) => view
            .columns
            .iter()
            .zip(types)
            .enumerate()
            .map(|(i, (name, ty))| (i + 1, ColumnDesc::new(name.clone(), ty.clone())))
            .collect(),
        RelationKind::System(table) => table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (i + 1, c.clone()))
            .collect(),
    }
}

fn pg_attribute_rows(system: &SystemCatalog) -> Rows {
    let mut rows = Vec::new();
    for r in &system.relations {
        let is_table = matches!(r.kind, RelationKind::Table(_));
        for (attnum, column) in attributes(r) {
            let data_type = &column.data_type;
            let identity = match column.identity {
                Some(crate::catalog::Identity::Always) => "a",
                Some(crate::catalog::Identity::ByDefault) => "d",
                None => "",
            };
            let name = match column.dropped {
                true => format!("........pg.dropped.{attnum}........"),
                false => column.name.clone(),
            };
            let collatable = matches!(
                data_type,
                DataType::Text | DataType::Varchar(_) | DataType::Char(_)
            );
            rows.push(vec![
                oid(r.oid),
                text(&name),
                oid(if column.dropped {
                    0
                } else {
                    i64::from(data_type.oid())
                }),
                Value::Int4(-1),
                Value::Int2(data_type.type_size()),
                int2(attnum),
                Value::Int4(i32::from(matches!(data_type, DataType::Array(_)))),
                Value::Int4(-1),
                Value::Int4(data_type.type_modifier()),
                Value::Bool(matches!(data_type.type_size(), 1 | 2 | 4 | 8)),
                text("i"),
                text(if data_type.type_size() > 0 { "p" } else { "x" }),
                text(""),
                Value::Bool(is_table && !column.nullable),
                // An identity column's sequence is not a default in PostgreSQL's catalogs.
                Value::Bool(is_table && column.default.is_some() && column.identity.is_none()),
                Value::Bool(column.missing.is_some()),
                text(identity),
                text(if column.generated.is_some() { "s" } else { "" }),
                Value::Bool(column.dropped),
                Value::Bool(true),
                Value::Int4(0),
                oid(if collatable { 100 } else { 0 }),
                Value::Null,
                Value::Null,
                Value::Null,
            ]);
        }
    }
    rows
}

fn pg_index_rows(system: &SystemCatalog) -> Rows {
    let mut rows = Vec::new();
    for r in &system.relations {
        let RelationKind::Index(table, position) = &r.kind else {
            continue;
        };
        let (keys, include, unique, primary, valid) = match position {
            Some(i) => {
                let index = &table.indexes[*i];
                (
                    &index.columns,
                    &index.include[..],
                    index.unique,
                    false,
                    !index.building,
                )
            }
            None => (&table.primary_key, &[][..], true, true, true),
        };
        let indkey: Vec<i16> = keys
            .iter()
            .chain(include)
            .map(|&c| match table.columns[c].generated {
                Some(_) => 0,
                None => i16::try_from(c + 1).unwrap_or(i16::MAX),
            })
            .collect();
        let expressions: Vec<&str> = keys
            .iter()
            .filter_map(|&c| table.columns[c].generated.as_deref())
            .collect();
        rows.push(vec![
            oid(r.oid),
            oid(super::relation_oid(table.id)),
            int2(keys.len() + include.len()),
            int2(keys.len()),
            Value::Bool(unique),
            Value::Bool(false),
            Value::Bool(primary),
            Value::Bool(false),
            Value::Bool(true),
            Value::Bool(false),
            Value::Bool(valid),
            Value::Bool(false),
            Value::Bool(true),
            Value::Bool(true),
            Value::Bool(false),
            int2_array(&indkey),
            Value::Array(vec![oid(0); indkey.len()]),
            Value::Array(vec![oid(0); indkey.len()]),
            int2_array(&vec![0; keys.len()]),
            match expressions.is_empty() {
                true => Value::Null,
                false => text(&expressions.join(", ")),
            },
            Value::Null,
        ]);
    }
    rows
}

fn pg_constraint_row(system: &SystemCatalog, c: &Constraint) -> Vec<Value> {
    let namespace = system.schema_oid(&c.schema).unwrap_or(0);
    let check = c
        .definition
        .strip_prefix("CHECK (")
        .and_then(|d| d.strip_suffix(')'));
    vec![
        oid(c.oid),
        text(&c.name),
        oid(namespace),
        text(c.kind),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(true),
        oid(c.table_oid),
        oid(0),
        oid(c.index_oid),
        oid(0),
        oid(c.referenced.0),
        text(c.actions.0),
        text(c.actions.1),
        text(if c.kind == "f" { "s" } else { " " }),
        Value::Bool(true),
        Value::Int4(0),
        Value::Bool(false),
        match c.kind {
            "c" => Value::Null,
            _ => int2_array(&c.columns),
        },
        match c.kind {
            "f" => int2_array(&c.referenced.1),
            _ => Value::Null,
        },
        check.map_or(Value::Null, text),
    ]
}

fn pg_attrdef_rows(system: &SystemCatalog) -> Rows {
    let mut rows = Vec::new();
    for r in &system.relations {
        let RelationKind::Table(table) = &r.kind else {
            continue;
        };
        for (i, column) in table.columns.iter().enumerate() {
            if let (Some(default), false, None) = (&column.default, column.hidden, column.identity)
            {
                rows.push(vec![
                    oid(super::hashed_oid(&["default", &table.name, &column.name])),
                    oid(r.oid),
                    int2(i + 1),
                    text(&deparse_default(default, &column.data_type)),
                ]);
            }
        }
    }
    rows
}

fn pg_description_rows(system: &SystemCatalog) -> Rows {
    let mut rows = Vec::new();
    for r in &system.relations {
        let columns = match r.table() {
            Some(table) if matches!(r.kind, RelationKind::Table(_)) => table.columns.len(),
            _ => 0,
        };
        for column in 0..=columns {
            let subid = i32::try_from(column).unwrap_or(i32::MAX);
            if let Some(comment) = system.comment(r, subid) {
                rows.push(vec![
                    oid(r.oid),
                    oid(super::PG_CLASS_OID),
                    Value::Int4(subid),
                    text(comment),
                ]);
            }
        }
    }
    for schema in &system.schemas {
        if let Some(comment) = system
            .comments
            .get(&("schema".to_string(), schema.name.clone()))
        {
            rows.push(vec![
                oid(schema.oid),
                oid(super::PG_NAMESPACE_OID),
                Value::Int4(0),
                text(comment),
            ]);
        }
    }
    rows
}

/// Sequences owned by columns (SERIAL, IDENTITY, OWNED BY): `a` (auto) or `i` (internal)
/// dependencies, as tools that find a column's sequence read them.
fn pg_depend_rows(system: &SystemCatalog) -> Rows {
    let mut rows = Vec::new();
    for r in &system.relations {
        let RelationKind::Sequence(sequence) = &r.kind else {
            continue;
        };
        let Some((table_name, column_name)) = &sequence.owned_by else {
            continue;
        };
        let Some(table) = system.table_named(table_name) else {
            continue;
        };
        let Some(column) = table.table().and_then(|t| t.column_index(column_name)) else {
            continue;
        };
        let identity = table
            .table()
            .is_some_and(|t| t.columns[column].identity.is_some());
        rows.push(vec![
            oid(super::PG_CLASS_OID),
            oid(r.oid),
            Value::Int4(0),
            oid(super::PG_CLASS_OID),
            oid(table.oid),
            Value::Int4(i32::try_from(column + 1).unwrap_or(i32::MAX)),
            text(if identity { "i" } else { "a" }),
        ]);
    }
    rows
}

/// The types Cairn has, by OID: (oid, name, category, element, array type).
const TYPES: &[(u32, &str, &str, u32, u32)] = &[
    (16, "bool", "B", 0, 1000),
    (17, "bytea", "U", 0, 1001),
    (20, "int8", "N", 0, 1016),
    (21, "int2", "N", 0, 1005),
    (23, "int4", "N", 0, 1007),
    (25, "text", "S", 0, 1009),
    (114, "json", "U", 0, 199),
    (700, "float4", "N", 0, 1021),
    (701, "float8", "N", 0, 1022),
    (1042, "bpchar", "S", 0, 1014),
    (1043, "varchar", "S", 0, 1015),
    (1082, "date", "D", 0, 1182),
    (1114, "timestamp", "D", 0, 1115),
    (1184, "timestamptz", "D", 0, 1185),
    (1186, "interval", "T", 0, 1187),
    (1700, "numeric", "N", 0, 1231),
    (2950, "uuid", "U", 0, 2951),
    (3802, "jsonb", "U", 0, 3807),
    (22, "int2vector", "A", 21, 1006),
    (26, "oid", "N", 0, 1028),
    (1000, "_bool", "A", 16, 0),
    (1001, "_bytea", "A", 17, 0),
    (1016, "_int8", "A", 20, 0),
    (1005, "_int2", "A", 21, 0),
    (1007, "_int4", "A", 23, 0),
    (1009, "_text", "A", 25, 0),
    (199, "_json", "A", 114, 0),
    (1021, "_float4", "A", 700, 0),
    (1022, "_float8", "A", 701, 0),
    (1014, "_bpchar", "A", 1042, 0),
    (1015, "_varchar", "A", 1043, 0),
    (1182, "_date", "A", 1082, 0),
    (1115, "_timestamp", "A", 1114, 0),
    (1185, "_timestamptz", "A", 1184, 0),
    (1187, "_interval", "A", 1186, 0),
    (1231, "_numeric", "A", 1700, 0),
    (2951, "_uuid", "A", 2950, 0),
    (3807, "_jsonb", "A", 3802, 0),
    (1006, "_int2vector", "A", 22, 0),
    (1028, "_oid", "A", 26, 0),
];

/// A type's `pg_type.typname` (`int4`, `_text`).
pub(super) fn type_name_of(type_oid: u32) -> Option<&'static str> {
    TYPES
        .iter()
        .find(|(oid, ..)| *oid == type_oid)
        .map(|(_, name, ..)| *name)
}

/// The name `format_type` and `::regtype` show for a type OID.
pub fn type_name(type_oid: i64) -> Option<String> {
    let type_oid = u32::try_from(type_oid).ok()?;
    DataType::from_oid(type_oid).map(|t| t.to_string())
}

fn pg_type_rows(_: &SystemCatalog) -> Rows {
    TYPES
        .iter()
        .map(|&(type_oid, name, category, element, array)| {
            let data_type = DataType::from_oid(type_oid);
            let size = data_type.as_ref().map_or(-1, DataType::type_size);
            let collatable = matches!(type_oid, 25 | 1042 | 1043);
            let io = if element == 0 { name } else { "array" };
            vec![
                oid(i64::from(type_oid)),
                text(name),
                oid(PG_CATALOG_OID),
                oid(ROLE_OID),
                Value::Int2(size),
                Value::Bool(matches!(size, 1 | 2 | 4 | 8)),
                text("b"),
                text(category),
                Value::Bool(matches!(type_oid, 16 | 25 | 701 | 1184 | 1186)),
                Value::Bool(true),
                text(","),
                oid(0),
                oid(0),
                oid(i64::from(element)),
                oid(i64::from(array)),
                text(&format!("{io}_in")),
                text(&format!("{io}_out")),
                text(&format!("{io}_recv")),
                text(&format!("{io}_send")),
                text(if size == 8 { "d" } else { "i" }),
                text(if size > 0 { "p" } else { "x" }),
                Value::Bool(false),
                oid(0),
                Value::Int4(-1),
                Value::Int4(0),
                oid(if collatable { 100 } else { 0 }),
                Value::Null,
                Value::Null,
            ]
        })
        .collect()
}

/// A default as PostgreSQL shows it (`pg_get_expr`) in the common cases: a string literal
/// with its column's type, nextval's argument as a regclass.
pub(super) fn deparse_default(default: &str, data_type: &DataType) -> String {
    if let Some(name) = default
        .strip_prefix("nextval('")
        .and_then(|rest| rest.strip_suffix("')"))
    {
        if !name.contains('\'') {
            return format!("nextval('{name}'::regclass)");
        }
    }
    let literal = default.len() >= 2
        && default.starts_with('\'')
        && default.ends_with('\'')
        && !default[1..default.len() - 1]
            .replace("''", "")
            .contains('\'');
    match literal {
        true => format!("{default}::{data_type}"),
        false => default.to_string(),
    }
}
