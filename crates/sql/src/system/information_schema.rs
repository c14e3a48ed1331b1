//! The `information_schema` views of the SQL standard, as PostgreSQL fills them: schemata,
//! tables, columns, views, sequences, table_constraints, key_column_usage,
//! referential_constraints, check_constraints, constraint_column_usage. Their domains
//! (sql_identifier, character_data, cardinal_number, yes_or_no) are text and integer here.

use super::tables::{deparse_default, text, type_name_of, Def, Rows, Ty};
use super::{Constraint, Relation, RelationKind, SystemCatalog};
use crate::catalog::{ColumnDesc, Identity};
use crate::types::{cast, DataType, Value};

fn yes_no(value: bool) -> Value {
    text(if value { "YES" } else { "NO" })
}

fn number(value: usize) -> Value {
    Value::Int4(i32::try_from(value).unwrap_or(i32::MAX))
}

fn optional(value: Option<u32>) -> Value {
    value.map_or(Value::Null, |v| {
        Value::Int4(i32::try_from(v).unwrap_or(i32::MAX))
    })
}

/// The relations whose rows information_schema shows: user tables, views and sequences (not
/// the system's own).
fn user_relations(system: &SystemCatalog) -> impl Iterator<Item = &Relation> {
    system
        .relations
        .iter()
        .filter(|r| !matches!(r.kind, RelationKind::System(_) | RelationKind::Index(..)))
}

/// A column's type as information_schema.columns describes it.
struct TypeFacts {
    data_type: String,
    character_maximum_length: Option<u32>,
    character_octet_length: Option<u32>,
    numeric_precision: Option<u32>,
    numeric_precision_radix: Option<u32>,
    numeric_scale: Option<u32>,
    datetime_precision: Option<u32>,
    udt_name: String,
}

fn type_facts(ty: &DataType) -> TypeFacts {
    let binary = |bits| (Some(bits), Some(2), Some(0));
    let (numeric_precision, numeric_precision_radix, numeric_scale) = match ty {
        DataType::Int2 => binary(16),
        DataType::Int4 => binary(32),
        DataType::Int8 => binary(64),
        DataType::Float4 => (Some(24), Some(2), None),
        DataType::Float8 => (Some(53), Some(2), None),
        DataType::Numeric { precision, scale } => (
            precision.map(u32::from),
            Some(10),
            precision.map(|_| u32::from(scale.unwrap_or(0))),
        ),
        _ => (None, None, None),
    };
    let character_maximum_length = match ty {
        DataType::Varchar(n) | DataType::Char(n) => *n,
        _ => None,
    };
    let character_octet_length = match ty {
        DataType::Varchar(_) | DataType::Char(_) | DataType::Text => {
            Some(character_maximum_length.map_or(1_073_741_824, |n| n.saturating_mul(4)))
        }
        _ => None,
    };
    let datetime_precision = match ty {
        DataType::Date => Some(0),
        DataType::Timestamp | DataType::TimestampTz | DataType::Interval => Some(6),
        _ => None,
    };
    TypeFacts {
        data_type: match ty {
            DataType::Array(_) => "ARRAY".into(),
            other => cast::base_type_name(other).to_string(),
        },
        character_maximum_length,
        character_octet_length,
        numeric_precision,
        numeric_precision_radix,
        numeric_scale,
        datetime_precision,
        udt_name: type_name_of(ty.oid()).unwrap_or_default().to_string(),
    }
}

/// A relation's columns as information_schema shows them: (position, column), visible only.
fn visible_columns(r: &Relation) -> Vec<(usize, ColumnDesc)> {
    match &r.kind {
        RelationKind::Table(table) => table
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.hidden)
            .map(|(i, c)| (i + 1, c.clone()))
            .collect(),
        RelationKind::View(view, types) => view
            .columns
            .iter()
            .zip(types)
            .enumerate()
            .map(|(i, (name, ty))| (i + 1, ColumnDesc::new(name.clone(), ty.clone())))
            .collect(),
        _ => vec![],
    }
}

fn columns_rows(system: &SystemCatalog) -> Rows {
    let mut rows = Vec::new();
    for r in user_relations(system) {
        let is_table = matches!(r.kind, RelationKind::Table(_));
        for (position, column) in visible_columns(r) {
            let facts = type_facts(&column.data_type);
            let default = match (&column.default, column.identity) {
                (Some(default), None) => text(&deparse_default(default, &column.data_type)),
                _ => Value::Null,
            };
            let identity = match column.identity {
                Some(Identity::Always) => text("ALWAYS"),
                Some(Identity::ByDefault) => text("BY DEFAULT"),
                None => Value::Null,
            };
            rows.push(vec![
                text(&system.database),
                text(&r.schema),
                text(&r.name),
                text(&column.name),
                number(position),
                default,
                yes_no(!is_table || column.nullable),
                text(&facts.data_type),
                optional(facts.character_maximum_length),
                optional(facts.character_octet_length),
                optional(facts.numeric_precision),
                optional(facts.numeric_precision_radix),
                optional(facts.numeric_scale),
                optional(facts.datetime_precision),
                Value::Null,
                text(&system.database),
                text("pg_catalog"),
                text(&facts.udt_name),
                text(&position.to_string()),
                yes_no(column.identity.is_some()),
                identity,
                text(if column.generated.is_some() {
                    "ALWAYS"
                } else {
                    "NEVER"
                }),
                column.generated.as_deref().map_or(Value::Null, text),
                yes_no(is_table),
            ]);
        }
    }
    rows
}

fn constraint_type(c: &Constraint) -> &'static str {
    match c.kind {
        "p" => "PRIMARY KEY",
        "u" => "UNIQUE",
        "f" => "FOREIGN KEY",
        _ => "CHECK",
    }
}

/// The table a constraint belongs to.
fn constrained<'a>(system: &'a SystemCatalog, c: &Constraint) -> Option<&'a Relation> {
    system.relation(c.table_oid)
}

fn column_name(r: &Relation, attnum: i16) -> Option<String> {
    let table = r.table()?;
    let index = usize::try_from(attnum).ok()?.checked_sub(1)?;
    table.columns.get(index).map(|c| c.name.clone())
}

/// The columns of `table` an expression's text names (as whole words).
fn named_columns(table: &Relation, expression: &str) -> Vec<i16> {
    let words: Vec<&str> = expression
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    let Some(desc) = table.table() else {
        return vec![];
    };
    desc.columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.hidden && words.contains(&c.name.as_str()))
        .map(|(i, _)| i16::try_from(i + 1).unwrap_or(i16::MAX))
        .collect()
}

/// Whether a sequence is an identity column's.
fn is_identity_sequence(system: &SystemCatalog, sequence: &crate::sequence::SequenceDesc) -> bool {
    let Some((table, column)) = &sequence.owned_by else {
        return false;
    };
    system
        .table_named(table)
        .and_then(Relation::table)
        .and_then(|t| {
            t.column_index(column)
                .map(|i| t.columns[i].identity.is_some())
        })
        .unwrap_or(false)
}

fn rule(code: &str) -> &'static str {
    match code {
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        "r" => "RESTRICT",
        _ => "NO ACTION",
    }
}

/// The unique constraint (or primary key) a foreign key's referenced columns are.
fn referenced_constraint<'a>(system: &'a SystemCatalog, c: &Constraint) -> Option<&'a Constraint> {
    system.constraints.iter().find(|u| {
        matches!(u.kind, "p" | "u") && u.table_oid == c.referenced.0 && u.columns == c.referenced.1
    })
}

pub(super) const RELATIONS: &[Def] = &[
    Def {
        schema: "information_schema",
        name: "schemata",
        oid: 13_101,
        columns: &[
            ("catalog_name", Ty::Text),
            ("schema_name", Ty::Text),
            ("schema_owner", Ty::Text),
            ("default_character_set_catalog", Ty::Text),
            ("default_character_set_schema", Ty::Text),
            ("default_character_set_name", Ty::Text),
            ("sql_path", Ty::Text),
        ],
        rows: |system| {
            system
                .schemas
                .iter()
                .map(|s| {
                    vec![
                        text(&system.database),
                        text(&s.name),
                        text(&system.user),
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                    ]
                })
                .collect()
        },
    },
    Def {
        schema: "information_schema",
        name: "tables",
        oid: 13_102,
        columns: &[
            ("table_catalog", Ty::Text),
            ("table_schema", Ty::Text),
            ("table_name", Ty::Text),
            ("table_type", Ty::Text),
            ("self_referencing_column_name", Ty::Text),
            ("reference_generation", Ty::Text),
            ("user_defined_type_catalog", Ty::Text),
            ("user_defined_type_schema", Ty::Text),
            ("user_defined_type_name", Ty::Text),
            ("is_insertable_into", Ty::Text),
            ("is_typed", Ty::Text),
            ("commit_action", Ty::Text),
        ],
        rows: |system| {
            system
                .relations
                .iter()
                .filter_map(|r| {
                    let kind = match r.kind {
                        RelationKind::Table(_) => "BASE TABLE",
                        RelationKind::View(..) | RelationKind::System(_) => "VIEW",
                        _ => return None,
                    };
                    Some(vec![
                        text(&system.database),
                        text(&r.schema),
                        text(&r.name),
                        text(kind),
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        Value::Null,
                        yes_no(kind == "BASE TABLE"),
                        text("NO"),
                        Value::Null,
                    ])
                })
                .collect()
        },
    },
    Def {
        schema: "information_schema",
        name: "columns",
        oid: 13_103,
        columns: &[
            ("table_catalog", Ty::Text),
            ("table_schema", Ty::Text),
            ("table_name", Ty::Text),
            ("column_name", Ty::Text),
            ("ordinal_position", Ty::I4),
            ("column_default", Ty::Text),
            ("is_nullable", Ty::Text),
            ("data_type", Ty::Text),
            ("character_maximum_length", Ty::I4),
            ("character_octet_length", Ty::I4),
            ("numeric_precision", Ty::I4),
            ("numeric_precision_radix", Ty::I4),
            ("numeric_scale", Ty::I4),
            ("datetime_precision", Ty::I4),
            ("interval_type", Ty::Text),
            ("udt_catalog", Ty::Text),
            ("udt_schema", Ty::Text),
            ("udt_name", Ty::Text),
            ("dtd_identifier", Ty::Text),
            ("is_identity", Ty::Text),
            ("identity_generation", Ty::Text),
            ("is_generated", Ty::Text),
            ("generation_expression", Ty::Text),
            ("is_updatable", Ty::Text),
        ],
        rows: columns_rows,
    },
    Def {
        schema: "information_schema",
        name: "views",
        oid: 13_104,
        columns: &[
            ("table_catalog", Ty::Text),
            ("table_schema", Ty::Text),
            ("table_name", Ty::Text),
            ("view_definition", Ty::Text),
            ("check_option", Ty::Text),
            ("is_updatable", Ty::Text),
            ("is_insertable_into", Ty::Text),
            ("is_trigger_updatable", Ty::Text),
            ("is_trigger_deletable", Ty::Text),
            ("is_trigger_insertable_into", Ty::Text),
        ],
        rows: |system| {
            system
                .relations
                .iter()
                .filter_map(|r| match &r.kind {
                    RelationKind::View(view, _) => Some(vec![
                        text(&system.database),
                        text(&r.schema),
                        text(&r.name),
                        text(&format!(" {};", view.sql)),
                        text("NONE"),
                        text("NO"),
                        text("NO"),
                        text("NO"),
                        text("NO"),
                        text("NO"),
                    ]),
                    _ => None,
                })
                .collect()
        },
    },
    Def {
        schema: "information_schema",
        name: "sequences",
        oid: 13_105,
        columns: &[
            ("sequence_catalog", Ty::Text),
            ("sequence_schema", Ty::Text),
            ("sequence_name", Ty::Text),
            ("data_type", Ty::Text),
            ("numeric_precision", Ty::I4),
            ("numeric_precision_radix", Ty::I4),
            ("numeric_scale", Ty::I4),
            ("start_value", Ty::Text),
            ("minimum_value", Ty::Text),
            ("maximum_value", Ty::Text),
            ("increment", Ty::Text),
            ("cycle_option", Ty::Text),
        ],
        rows: |system| {
            system
                .relations
                .iter()
                .filter_map(|r| match &r.kind {
                    // An identity column's sequence is internal to it (not listed).
                    RelationKind::Sequence(s) if !is_identity_sequence(system, s) => {
                        let facts = type_facts(&s.data_type);
                        Some(vec![
                            text(&system.database),
                            text(&r.schema),
                            text(&r.name),
                            text(&facts.data_type),
                            optional(facts.numeric_precision),
                            optional(facts.numeric_precision_radix),
                            optional(facts.numeric_scale),
                            text(&s.start.to_string()),
                            text(&s.min.to_string()),
                            text(&s.max.to_string()),
                            text(&s.increment.to_string()),
                            yes_no(s.cycle),
                        ])
                    }
                    _ => None,
                })
                .collect()
        },
    },
    Def {
        schema: "information_schema",
        name: "table_constraints",
        oid: 13_106,
        columns: &[
            ("constraint_catalog", Ty::Text),
            ("constraint_schema", Ty::Text),
            ("constraint_name", Ty::Text),
            ("table_catalog", Ty::Text),
            ("table_schema", Ty::Text),
            ("table_name", Ty::Text),
            ("constraint_type", Ty::Text),
            ("is_deferrable", Ty::Text),
            ("initially_deferred", Ty::Text),
            ("enforced", Ty::Text),
            ("nulls_distinct", Ty::Text),
        ],
        rows: |system| {
            system
                .constraints
                .iter()
                .filter_map(|c| {
                    let table = constrained(system, c)?;
                    Some(vec![
                        text(&system.database),
                        text(&c.schema),
                        text(&c.name),
                        text(&system.database),
                        text(&table.schema),
                        text(&table.name),
                        text(constraint_type(c)),
                        text("NO"),
                        text("NO"),
                        text("YES"),
                        match c.kind {
                            "u" | "p" => text("YES"),
                            _ => Value::Null,
                        },
                    ])
                })
                .collect()
        },
    },
    Def {
        schema: "information_schema",
        name: "key_column_usage",
        oid: 13_107,
        columns: &[
            ("constraint_catalog", Ty::Text),
            ("constraint_schema", Ty::Text),
            ("constraint_name", Ty::Text),
            ("table_catalog", Ty::Text),
            ("table_schema", Ty::Text),
            ("table_name", Ty::Text),
            ("column_name", Ty::Text),
            ("ordinal_position", Ty::I4),
            ("position_in_unique_constraint", Ty::I4),
        ],
        rows: |system| {
            let mut rows = Vec::new();
            for c in system.constraints.iter().filter(|c| c.kind != "c") {
                let Some(table) = constrained(system, c) else {
                    continue;
                };
                for (position, &attnum) in c.columns.iter().enumerate() {
                    let in_unique = match c.kind {
                        "f" => Value::Int4(i32::try_from(position + 1).unwrap_or(i32::MAX)),
                        _ => Value::Null,
                    };
                    rows.push(vec![
                        text(&system.database),
                        text(&c.schema),
                        text(&c.name),
                        text(&system.database),
                        text(&table.schema),
                        text(&table.name),
                        column_name(table, attnum).map_or(Value::Null, |n| text(&n)),
                        number(position + 1),
                        in_unique,
                    ]);
                }
            }
            rows
        },
    },
    Def {
        schema: "information_schema",
        name: "referential_constraints",
        oid: 13_108,
        columns: &[
            ("constraint_catalog", Ty::Text),
            ("constraint_schema", Ty::Text),
            ("constraint_name", Ty::Text),
            ("unique_constraint_catalog", Ty::Text),
            ("unique_constraint_schema", Ty::Text),
            ("unique_constraint_name", Ty::Text),
            ("match_option", Ty::Text),
            ("update_rule", Ty::Text),
            ("delete_rule", Ty::Text),
        ],
        rows: |system| {
            system
                .constraints
                .iter()
                .filter(|c| c.kind == "f")
                .map(|c| {
                    let unique = referenced_constraint(system, c);
                    vec![
                        text(&system.database),
                        text(&c.schema),
                        text(&c.name),
                        text(&system.database),
                        unique.map_or(Value::Null, |u| text(&u.schema)),
                        unique.map_or(Value::Null, |u| text(&u.name)),
                        text("NONE"),
                        text(rule(c.actions.0)),
                        text(rule(c.actions.1)),
                    ]
                })
                .collect()
        },
    },
    Def {
        schema: "information_schema",
        name: "check_constraints",
        oid: 13_109,
        columns: &[
            ("constraint_catalog", Ty::Text),
            ("constraint_schema", Ty::Text),
            ("constraint_name", Ty::Text),
            ("check_clause", Ty::Text),
        ],
        rows: |system| {
            system
                .constraints
                .iter()
                .filter(|c| c.kind == "c")
                .map(|c| {
                    vec![
                        text(&system.database),
                        text(&c.schema),
                        text(&c.name),
                        text(&c.definition.replacen("CHECK ", "", 1)),
                    ]
                })
                .collect()
        },
    },
    Def {
        schema: "information_schema",
        name: "constraint_column_usage",
        oid: 13_110,
        columns: &[
            ("table_catalog", Ty::Text),
            ("table_schema", Ty::Text),
            ("table_name", Ty::Text),
            ("column_name", Ty::Text),
            ("constraint_catalog", Ty::Text),
            ("constraint_schema", Ty::Text),
            ("constraint_name", Ty::Text),
        ],
        rows: |system| {
            let mut rows = Vec::new();
            for c in &system.constraints {
                // A foreign key uses the referenced table's columns; a check the columns
                // its condition names; the others their own.
                let check_columns;
                let (table, columns) = match c.kind {
                    "f" => (system.relation(c.referenced.0), &c.referenced.1),
                    "c" => {
                        let table = constrained(system, c);
                        check_columns = table
                            .map(|t| named_columns(t, &c.definition))
                            .unwrap_or_default();
                        (table, &check_columns)
                    }
                    _ => (constrained(system, c), &c.columns),
                };
                let Some(table) = table else {
                    continue;
                };
                for &attnum in columns {
                    rows.push(vec![
                        text(&system.database),
                        text(&table.schema),
                        text(&table.name),
                        column_name(table, attnum).map_or(Value::Null, |n| text(&n)),
                        text(&system.database),
                        text(&c.schema),
                        text(&c.name),
                    ]);
                }
            }
            rows
        },
    },
];
