//! The functions clients call on the system catalogs: `pg_get_indexdef`,
//! `pg_table_is_visible`, `format_type`, `obj_description`, `has_table_privilege`...
//! Those that look something up read the statement's [`SystemCatalog`], which the binder
//! asks for ([`Binder::system_catalog`]).

use super::tables::type_name;
use super::{quote_ident, Relation, RelationKind, SystemCatalog, ROLE_OID};
use crate::catalog::TableDesc;
use crate::error::{SqlError, SqlResult, SqlState};
use crate::expr::{EvalContext, Expr, Func};
use crate::plan::Binder;
use crate::types::{DataType, Value};

/// A catalog function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogFunc {
    /// pg_get_userbyid(role oid)
    UserById,
    /// pg_table_is_visible(oid)
    TableIsVisible,
    /// pg_type_is_visible / pg_function_is_visible (everything built in is)
    AlwaysVisible,
    /// format_type(type oid, typmod)
    FormatType,
    /// pg_get_indexdef(index oid [, column, pretty])
    IndexDef,
    /// pg_get_constraintdef(constraint oid [, pretty])
    ConstraintDef,
    /// pg_get_expr(expression text, relation oid [, pretty]): the text itself (Cairn keeps
    /// expressions as SQL text)
    Expression,
    /// pg_get_viewdef(view oid or name [, pretty])
    ViewDef,
    /// obj_description(oid [, catalog])
    ObjDescription,
    /// col_description(table oid, column number)
    ColDescription,
    /// has_*_privilege(...): the one role owns everything
    HasPrivilege,
    /// pg_encoding_to_char(encoding)
    EncodingToChar,
    /// to_regclass(text): the relation's OID, or NULL
    ToRegClass,
    /// to_regtype / to_regnamespace / to_regrole(text): the OID, or NULL
    ToReg(RegKind),
    /// pg_get_serial_sequence(table, column)
    SerialSequence,
    /// pg_table_size / pg_relation_size / pg_total_relation_size / pg_indexes_size
    RelationSize,
    /// pg_size_pretty(bytes)
    SizePretty,
    /// pg_relation_is_publishable(oid): nothing is published
    Publishable,
    /// quote_ident(text)
    QuoteIdent,
    /// Functions about objects Cairn never has (statistics objects, triggers, user
    /// functions): NULL
    NoObject,
    /// `oid::regclass` (and the other reg types): the object's name
    RegName(RegKind),
    /// `'name'::regclass`: the object's OID (42P01 etc. if there is none)
    RegOid(RegKind),
}

/// The object identifier types (`regclass`...). They are not types of their own here: a cast
/// of a number to one gives the object's name (text), as printing one does in PostgreSQL,
/// and a cast of text gives the OID (bigint), which compares with OID columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegKind {
    /// regclass: relations
    Class,
    /// regtype: types
    Type,
    /// regnamespace: schemas
    Namespace,
    /// regproc / regprocedure: functions (none are listed)
    Proc,
    /// regrole: roles
    Role,
}

/// The object identifier type an AST type names, if it is one.
pub fn reg_kind(data_type: &sqlparser::ast::DataType) -> Option<RegKind> {
    let sqlparser::ast::DataType::Custom(name, modifiers) = data_type else {
        return matches!(data_type, sqlparser::ast::DataType::Regclass).then_some(RegKind::Class);
    };
    if !modifiers.is_empty() {
        return None;
    }
    let name = name.to_string().to_lowercase();
    Some(match name.strip_prefix("pg_catalog.").unwrap_or(&name) {
        "regclass" => RegKind::Class,
        "regtype" => RegKind::Type,
        "regnamespace" => RegKind::Namespace,
        "regproc" | "regprocedure" => RegKind::Proc,
        "regrole" => RegKind::Role,
        _ => return None,
    })
}

impl CatalogFunc {
    /// Whether evaluating it reads the system catalog.
    fn reads_catalog(self) -> bool {
        !matches!(
            self,
            CatalogFunc::UserById
                | CatalogFunc::AlwaysVisible
                | CatalogFunc::FormatType
                | CatalogFunc::Expression
                | CatalogFunc::HasPrivilege
                | CatalogFunc::EncodingToChar
                | CatalogFunc::SizePretty
                | CatalogFunc::Publishable
                | CatalogFunc::RelationSize
                | CatalogFunc::QuoteIdent
                | CatalogFunc::NoObject
                | CatalogFunc::RegName(RegKind::Type | RegKind::Proc | RegKind::Role)
                | CatalogFunc::RegOid(RegKind::Type | RegKind::Proc | RegKind::Role)
                | CatalogFunc::ToReg(RegKind::Type | RegKind::Proc | RegKind::Role)
        )
    }
}

impl Binder {
    /// `expr::regclass` (or another object identifier type): see [`RegKind`].
    pub(crate) fn reg_cast(
        &mut self,
        data_type: &sqlparser::ast::DataType,
        inner: Expr,
    ) -> SqlResult<Expr> {
        let Some(kind) = reg_kind(data_type) else {
            return Err(SqlError::internal("not an object identifier type"));
        };
        let numeric = matches!(
            inner.ty(),
            DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Oid
        );
        let (func, arg, ty) = match numeric {
            true => (
                CatalogFunc::RegName(kind),
                self.coerce(inner, &DataType::Oid)?,
                DataType::Text,
            ),
            false => (
                CatalogFunc::RegOid(kind),
                self.coerce(inner, &DataType::Text)?,
                DataType::Oid,
            ),
        };
        let arg = match arg.ty() {
            DataType::Oid | DataType::Text => arg,
            other if numeric || other == DataType::Unknown => Expr::Cast(
                Box::new(arg),
                if numeric {
                    DataType::Oid
                } else {
                    DataType::Text
                },
            ),
            other => {
                return Err(SqlError::new(
                    SqlState("42846"),
                    format!("cannot cast type {other} to {data_type}"),
                ))
            }
        };
        if func.reads_catalog() {
            self.system_catalog = true;
        }
        Ok(Expr::Func(Func::Catalog(func), vec![arg], ty))
    }

    /// A call of a catalog function, if `name` is one.
    pub(crate) fn catalog_function(
        &mut self,
        name: &str,
        bound: &mut Vec<Expr>,
    ) -> SqlResult<Option<Expr>> {
        use DataType as T;
        if let ("pg_partition_ancestors", [_]) = (name, bound.as_slice()) {
            // No table is partitioned: a relation's only ancestor is itself.
            let relation = bound.remove(0);
            return match relation.ty() {
                T::Int2 | T::Int4 | T::Int8 | T::Oid => {
                    let relation = self.coerce(relation, &T::Oid)?;
                    Ok(Some(match relation.ty() {
                        T::Oid => relation,
                        _ => Expr::Cast(Box::new(relation), T::Oid),
                    }))
                }
                _ => {
                    let regclass = sqlparser::ast::DataType::Custom(
                        sqlparser::ast::ObjectName::from(vec![sqlparser::ast::Ident::new(
                            "regclass",
                        )]),
                        vec![],
                    );
                    self.reg_cast(&regclass, relation).map(Some)
                }
            };
        }
        let oid = T::Oid;
        let (func, params, ty): (CatalogFunc, Vec<DataType>, DataType) = match (name, bound.len()) {
            ("pg_get_userbyid", 1) => (CatalogFunc::UserById, vec![oid], T::Text),
            ("pg_table_is_visible", 1) => (CatalogFunc::TableIsVisible, vec![oid], T::Bool),
            ("pg_type_is_visible" | "pg_function_is_visible" | "pg_collation_is_visible", 1) => {
                (CatalogFunc::AlwaysVisible, vec![oid], T::Bool)
            }
            ("format_type", 2) => (CatalogFunc::FormatType, vec![oid, T::Int4], T::Text),
            ("pg_get_indexdef", 1) => (CatalogFunc::IndexDef, vec![oid], T::Text),
            ("pg_get_indexdef", 3) => (CatalogFunc::IndexDef, vec![oid, T::Int4, T::Bool], T::Text),
            ("pg_get_constraintdef", 1) => (CatalogFunc::ConstraintDef, vec![oid], T::Text),
            ("pg_get_constraintdef", 2) => {
                (CatalogFunc::ConstraintDef, vec![oid, T::Bool], T::Text)
            }
            ("pg_get_expr", 2) => (CatalogFunc::Expression, vec![T::Text, oid], T::Text),
            ("pg_get_expr", 3) => (
                CatalogFunc::Expression,
                vec![T::Text, oid, T::Bool],
                T::Text,
            ),
            ("pg_get_viewdef", 1) => (CatalogFunc::ViewDef, vec![oid], T::Text),
            ("pg_get_viewdef", 2) => (CatalogFunc::ViewDef, vec![oid, T::Bool], T::Text),
            ("obj_description", 1) => (CatalogFunc::ObjDescription, vec![oid], T::Text),
            ("obj_description", 2) => (CatalogFunc::ObjDescription, vec![oid, T::Text], T::Text),
            ("col_description", 2) => (CatalogFunc::ColDescription, vec![oid, T::Int4], T::Text),
            (
                "has_table_privilege"
                | "has_schema_privilege"
                | "has_database_privilege"
                | "has_column_privilege"
                | "has_sequence_privilege"
                | "has_function_privilege"
                | "has_any_column_privilege",
                2..=4,
            ) => {
                let params = bound
                    .iter()
                    .map(|arg| match arg.ty() {
                        T::Unknown => T::Text,
                        other => other,
                    })
                    .collect();
                (CatalogFunc::HasPrivilege, params, T::Bool)
            }
            ("pg_encoding_to_char", 1) => (CatalogFunc::EncodingToChar, vec![T::Int4], T::Text),
            ("to_regclass", 1) => (CatalogFunc::ToRegClass, vec![T::Text], oid),
            ("to_regtype", 1) => (CatalogFunc::ToReg(RegKind::Type), vec![T::Text], oid),
            ("to_regnamespace", 1) => (CatalogFunc::ToReg(RegKind::Namespace), vec![T::Text], oid),
            ("to_regrole", 1) => (CatalogFunc::ToReg(RegKind::Role), vec![T::Text], oid),
            ("pg_get_serial_sequence", 2) => {
                (CatalogFunc::SerialSequence, vec![T::Text, T::Text], T::Text)
            }
            (
                "pg_table_size" | "pg_relation_size" | "pg_total_relation_size" | "pg_indexes_size",
                1,
            ) => (CatalogFunc::RelationSize, vec![oid], T::Int8),
            ("pg_size_pretty", 1) => (CatalogFunc::SizePretty, vec![T::Int8], T::Text),
            ("quote_ident", 1) => (CatalogFunc::QuoteIdent, vec![T::Text], T::Text),
            (
                "pg_get_statisticsobjdef_columns"
                | "pg_get_triggerdef"
                | "pg_get_function_result"
                | "pg_get_function_arguments"
                | "pg_get_function_identity_arguments"
                | "pg_get_functiondef"
                | "pg_get_ruledef",
                1 | 2,
            ) => {
                let mut params = vec![oid.clone()];
                if bound.len() == 2 {
                    params.push(T::Bool);
                }
                (CatalogFunc::NoObject, params, T::Text)
            }
            ("pg_relation_is_publishable", 1) => (CatalogFunc::Publishable, vec![oid], T::Bool),
            _ => return Ok(None),
        };
        let args = std::mem::take(bound);
        let mut coerced = Vec::with_capacity(args.len());
        for (arg, param) in args.into_iter().zip(&params) {
            let arg = self.coerce(arg, param)?;
            let fits = match (arg.ty(), param) {
                (T::Int2 | T::Int4 | T::Int8 | T::Oid, T::Oid | T::Int8 | T::Int4) => true,
                (T::Varchar(_) | T::Char(_), T::Text) => true,
                (actual, wanted) => actual == *wanted,
            };
            if !fits {
                let types: Vec<DataType> = params.to_vec();
                return Err(crate::plan::no_function(name, &types));
            }
            coerced.push(match arg.ty() == *param {
                true => arg,
                false => Expr::Cast(Box::new(arg), param.clone()),
            });
        }
        if func.reads_catalog() {
            self.system_catalog = true;
        }
        Ok(Some(Expr::Func(Func::Catalog(func), coerced, ty)))
    }
}

fn catalog<'a>(ctx: &EvalContext<'a>) -> SqlResult<&'a SystemCatalog> {
    ctx.system.ok_or_else(|| {
        SqlError::internal("a catalog function ran without the system catalog loaded")
    })
}

fn as_oid(value: &Value) -> Option<i64> {
    match value {
        Value::Int8(v) => Some(*v),
        Value::Int4(v) => Some(i64::from(*v)),
        Value::Int2(v) => Some(i64::from(*v)),
        _ => None,
    }
}

fn text_or_null(text: Option<String>) -> Value {
    text.map_or(Value::Null, Value::Text)
}

/// Evaluates a catalog function (its arguments already evaluated; strict: NULL in, NULL out).
pub fn eval(func: CatalogFunc, values: &[Value], ctx: &EvalContext<'_>) -> SqlResult<Value> {
    if func != CatalogFunc::HasPrivilege && values.first().is_some_and(Value::is_null) {
        return Ok(Value::Null);
    }
    let first_oid = values.first().and_then(as_oid).unwrap_or(0);
    Ok(match func {
        CatalogFunc::UserById => Value::Text(match first_oid {
            ROLE_OID => ctx.session.user.to_string(),
            other => format!("unknown (OID={other})"),
        }),
        CatalogFunc::TableIsVisible => {
            let system = catalog(ctx)?;
            match system.relation(first_oid) {
                Some(relation) => Value::Bool(system.is_visible(relation)),
                None => Value::Null,
            }
        }
        CatalogFunc::AlwaysVisible | CatalogFunc::HasPrivilege => Value::Bool(true),
        CatalogFunc::Publishable => Value::Bool(false),
        CatalogFunc::FormatType => {
            let typmod = values.get(1).and_then(as_oid).unwrap_or(-1);
            Value::Text(format_type(first_oid, typmod))
        }
        CatalogFunc::IndexDef => {
            let system = catalog(ctx)?;
            let column = values.get(1).and_then(as_oid).unwrap_or(0);
            text_or_null(system.relation(first_oid).and_then(|r| {
                match &r.kind {
                    RelationKind::Index(table, position) if column == 0 => {
                        Some(index_definition(system, r, table, *position))
                    }
                    RelationKind::Index(table, position) => index_key_columns(table, *position)
                        .get(usize::try_from(column - 1).ok()?)
                        .cloned(),
                    _ => None,
                }
            }))
        }
        CatalogFunc::ConstraintDef => {
            let system = catalog(ctx)?;
            text_or_null(
                system
                    .constraints
                    .iter()
                    .find(|c| c.oid == first_oid)
                    .map(|c| c.definition.clone()),
            )
        }
        CatalogFunc::Expression => values[0].clone(),
        CatalogFunc::ViewDef => {
            let system = catalog(ctx)?;
            text_or_null(system.relation(first_oid).and_then(|r| match &r.kind {
                RelationKind::View(view, _) => Some(format!(" {};", view.sql)),
                _ => None,
            }))
        }
        CatalogFunc::ObjDescription => {
            let system = catalog(ctx)?;
            let wanted = values.get(1).and_then(|v| match v {
                Value::Text(t) => Some(t.as_str()),
                _ => None,
            });
            let comment = match wanted {
                Some("pg_namespace") => system.schema(first_oid).and_then(|s| {
                    system
                        .comments
                        .get(&("schema".to_string(), s.name.clone()))
                        .cloned()
                }),
                Some("pg_class") | None => system
                    .relation(first_oid)
                    .and_then(|r| system.comment(r, 0).cloned()),
                Some(_) => None,
            };
            text_or_null(comment)
        }
        CatalogFunc::ColDescription => {
            let system = catalog(ctx)?;
            let column = values.get(1).and_then(as_oid).unwrap_or(0);
            let column = i32::try_from(column).unwrap_or(0);
            text_or_null(
                system
                    .relation(first_oid)
                    .filter(|_| column > 0)
                    .and_then(|r| system.comment(r, column).cloned()),
            )
        }
        CatalogFunc::EncodingToChar => Value::Text(match first_oid {
            6 => "UTF8".into(),
            0 => "SQL_ASCII".into(),
            _ => String::new(),
        }),
        CatalogFunc::ToRegClass => {
            let system = catalog(ctx)?;
            let Value::Text(name) = &values[0] else {
                return Ok(Value::Null);
            };
            system
                .resolve_relation(name)
                .map_or(Value::Null, |r| Value::Int8(r.oid))
        }
        CatalogFunc::SerialSequence => {
            let system = catalog(ctx)?;
            let (Value::Text(table), Value::Text(column)) = (&values[0], &values[1]) else {
                return Ok(Value::Null);
            };
            let relation = system.resolve_relation(table).ok_or_else(|| {
                SqlError::new(
                    SqlState::UNDEFINED_TABLE,
                    format!("relation \"{table}\" does not exist"),
                )
            })?;
            let stored = SystemCatalog::stored_name(relation);
            let column = column.trim_matches('"').to_string();
            text_or_null(system.relations.iter().find_map(|r| match &r.kind {
                RelationKind::Sequence(s)
                    if s.owned_by.as_ref() == Some(&(stored.clone(), column.clone())) =>
                {
                    Some(format!(
                        "{}.{}",
                        quote_ident(&r.schema),
                        quote_ident(&r.name)
                    ))
                }
                _ => None,
            }))
        }
        CatalogFunc::RelationSize => Value::Int8(0),
        CatalogFunc::NoObject => Value::Null,
        CatalogFunc::QuoteIdent => match &values[0] {
            Value::Text(name) => Value::Text(quote_ident(name)),
            _ => Value::Null,
        },
        CatalogFunc::RegName(kind) => reg_name(kind, first_oid, ctx)?,
        CatalogFunc::ToReg(kind) => {
            let Value::Text(name) = &values[0] else {
                return Ok(Value::Null);
            };
            match name.trim().parse::<i64>() {
                Ok(_) => Value::Null,
                Err(_) => reg_oid(kind, name, ctx).map_or(Value::Null, Value::Int8),
            }
        }
        CatalogFunc::RegOid(kind) => {
            let Value::Text(name) = &values[0] else {
                return Ok(Value::Null);
            };
            Value::Int8(reg_oid(kind, name, ctx)?)
        }
        CatalogFunc::SizePretty => Value::Text(size_pretty(first_oid)),
    })
}

/// `format_type(oid, typmod)`: the type's SQL name with its modifier.
pub fn format_type(type_oid: i64, typmod: i64) -> String {
    let Some(name) = type_name(type_oid) else {
        return "???".into();
    };
    let Ok(type_oid) = u32::try_from(type_oid) else {
        return name;
    };
    let modifier = typmod - 4;
    match (DataType::from_oid(type_oid), typmod >= 4) {
        (Some(DataType::Numeric { .. }), true) => {
            format!("numeric({},{})", modifier >> 16, modifier & 0xFFFF)
        }
        (Some(DataType::Varchar(_)), true) => format!("character varying({modifier})"),
        (Some(DataType::Char(_)), true) => format!("character({modifier})"),
        _ => name,
    }
}

/// PostgreSQL's pg_size_pretty for bytes.
fn size_pretty(bytes: i64) -> String {
    let mut size = bytes;
    for unit in ["bytes", "kB", "MB", "GB", "TB"] {
        if size.abs() < 10 * 1024 || unit == "TB" {
            return format!("{size} {unit}");
        }
        size = (size + if size > 0 { 512 } else { -512 }) / 1024;
    }
    format!("{size} PB")
}

/// An index's key columns as `pg_get_indexdef` shows them (expressions in parentheses).
fn index_key_columns(table: &TableDesc, position: Option<usize>) -> Vec<String> {
    let keys = match position {
        Some(i) => &table.indexes[i].columns,
        None => &table.primary_key,
    };
    keys.iter()
        .map(|&c| {
            let column = &table.columns[c];
            match &column.generated {
                // A function call stands alone; other expressions take parentheses.
                Some(expression) if is_function_call(expression) => expression.clone(),
                Some(expression) => format!("({expression})"),
                None => quote_ident(&column.name),
            }
        })
        .collect()
}

/// `CREATE [UNIQUE] INDEX name ON schema.table USING btree (columns) [INCLUDE (...)]`.
pub fn index_definition(
    system: &SystemCatalog,
    relation: &Relation,
    table: &TableDesc,
    position: Option<usize>,
) -> String {
    let _ = system;
    let unique = match position {
        Some(i) => table.indexes[i].unique,
        None => true,
    };
    let (schema, name) = super::split_name(&table.name);
    let mut definition = format!(
        "CREATE {}INDEX {} ON {}.{} USING btree ({})",
        if unique { "UNIQUE " } else { "" },
        quote_ident(&relation.name),
        quote_ident(schema),
        quote_ident(name),
        index_key_columns(table, position).join(", ")
    );
    if let Some(i) = position {
        let include = &table.indexes[i].include;
        if !include.is_empty() {
            let names: Vec<String> = include
                .iter()
                .map(|&c| quote_ident(&table.columns[c].name))
                .collect();
            definition.push_str(&format!(" INCLUDE ({})", names.join(", ")));
        }
    }
    definition
}

/// The name an object identifier prints as (its OID in digits if there is no such object,
/// `-` for 0).
fn reg_name(kind: RegKind, oid: i64, ctx: &EvalContext<'_>) -> SqlResult<Value> {
    if oid == 0 {
        return Ok(Value::Text("-".into())); // InvalidOid, as PostgreSQL prints it
    }
    let name = match kind {
        RegKind::Class => {
            let system = catalog(ctx)?;
            system.relation(oid).map(|r| system.relation_display(r))
        }
        RegKind::Namespace => catalog(ctx)?.schema(oid).map(|s| quote_ident(&s.name)),
        RegKind::Type => type_name(oid),
        RegKind::Role => (oid == ROLE_OID).then(|| ctx.session.user.to_string()),
        RegKind::Proc => None,
    };
    Ok(Value::Text(name.unwrap_or_else(|| oid.to_string())))
}

/// The OID an object identifier's text names: digits are the OID itself.
fn reg_oid(kind: RegKind, name: &str, ctx: &EvalContext<'_>) -> SqlResult<i64> {
    if let Ok(oid) = name.trim().parse::<i64>() {
        return Ok(oid);
    }
    let found = match kind {
        RegKind::Class => catalog(ctx)?.resolve_relation(name).map(|r| r.oid),
        RegKind::Namespace => {
            let parts = super::parse_qualified(name).unwrap_or_default();
            match parts.as_slice() {
                [schema] => catalog(ctx)?.schema_oid(schema),
                _ => None,
            }
        }
        RegKind::Type => {
            use sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
            Parser::new(&PostgreSqlDialect {})
                .try_with_sql(name)
                .and_then(|mut parser| parser.parse_data_type())
                .ok()
                .and_then(|parsed| DataType::from_ast(&parsed).ok())
                .map(|t| i64::from(t.oid()))
        }
        RegKind::Role => (name == ctx.session.user).then_some(ROLE_OID),
        RegKind::Proc => None,
    };
    found.ok_or_else(|| match kind {
        RegKind::Class => SqlError::new(
            SqlState::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        ),
        RegKind::Namespace => SqlError::new(
            SqlState("3F000"),
            format!("schema \"{name}\" does not exist"),
        ),
        RegKind::Type => SqlError::new(
            SqlState::UNDEFINED_OBJECT,
            format!("type \"{name}\" does not exist"),
        ),
        RegKind::Role => SqlError::new(
            SqlState::UNDEFINED_OBJECT,
            format!("role \"{name}\" does not exist"),
        ),
        RegKind::Proc => SqlError::new(
            SqlState::UNDEFINED_FUNCTION,
            format!("function \"{name}\" does not exist"),
        ),
    })
}

/// Whether SQL text is one function call, `name(...)` (the outer parentheses matching).
fn is_function_call(expression: &str) -> bool {
    let Some(open) = expression.find('(') else {
        return false;
    };
    let name = &expression[..open];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        || !expression.ends_with(')')
    {
        return false;
    }
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, c) in expression.char_indices().skip(open) {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return i == expression.len() - 1;
                }
            }
            _ => {}
        }
    }
    false
}
