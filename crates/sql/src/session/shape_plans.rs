//! Plans for simple-protocol texts by shape: a text whose shape the session has seen runs
//! the plan of that shape with its literals as parameter values, planning nothing.
//!
//! Clients that interpolate values into SQL text (pgbench's simple protocol, many ORMs)
//! send one statement again and again with different numbers and strings in it; planning
//! each (and filling in its cached tree) was a third of the machine time of pgbench's
//! select by key. The parse cache already knows each text's shape (the text with its
//! literals blanked out) and its literals, so a shape's statement can be planned once with
//! its literals replaced by parameters `$1`, `$2`, …, as a prepared statement is, and run
//! with each text's literals as the values.
//!
//! That plan is only right where planning treats a literal as a value and nothing more: a
//! literal can also be a column position (`ORDER BY 2`), a type's length, a sequence's name,
//! or be folded into a constant whose type depends on its digits. So the second text of a
//! shape (a text sent once is planned once, as written) is planned twice, as written and
//! with parameters, at one snapshot, and the plan
//! with parameters is kept only if, with the text's literal values put in for its
//! parameters, it *is* the plan as written (compared through their `Debug` forms). Planning
//! decides nothing else from a literal's value where it keeps the literal as a value, so
//! the kept plan with another text's values is that text's plan. Two things keep that true:
//! - The parameters are declared with each literal's own type (`int4`, `int8` or `numeric`
//!   by its digits, as the planner types a number; `unknown` for a string), and a text
//!   whose literals type differently has the shape planned again for its types.
//! - A string is a parameter's value only where the parameter's type reads a text as
//!   itself: where it has a length or precision (`varchar(3)`), the planner may also cast
//!   the literal to it (truncating), and the text is planned as written.
//! - A negated number (`-5`) is one constant to the planner, and `-$1` the parameter
//!   negated: the comparison takes the two as equal, and so they are when run.
//!
//! A plan also depends on the catalog and on the session's `TimeZone` and `search_path`: it
//! is kept with the settings it was made under and is used only while they hold and no
//! catalog change committed since it was last found good; otherwise the text is planned as
//! written and the shape planned again. Debug builds check every use against the plan of
//! the text as written.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{SqlError, SqlResult, SqlState};
use crate::expr::Expr;
use crate::parse_cache::Shape;
use crate::plan::{self, Plan};
use crate::planner::{self, Statement};
use crate::sequence::SequenceUse;
use crate::types::{text, DataType, Value};

use super::{Outcome, Prepared, Session};

/// A shape's plan with parameters for its literals, and what it holds under.
pub(super) struct ShapePlan {
    /// Each literal's type as the planner types it (by its digits for a number, `unknown`
    /// for a string): a text whose literals type otherwise is planned as written.
    literal_types: Vec<DataType>,
    /// The settings planning read, as they were.
    time_zone: Option<String>,
    search_path: Option<String>,
    /// `None`: planned with parameters, the shape's statement is not the plan as written.
    prepared: Option<Arc<Prepared>>,
}

/// Shapes with more literals are always planned as written: a long VALUES list is rarely
/// sent twice, and comparing the two plans costs time in the number of literals.
const MAX_LITERALS: usize = 64;

/// SQLSTATE of "this shape's plan is out of date": never reaches a client.
const STALE_SHAPE_PLAN: SqlState = SqlState("55P0P");

/// The error a shape's plan gives when the catalog changed since it was found good.
pub(super) fn stale_shape_plan() -> SqlError {
    SqlError::new(STALE_SHAPE_PLAN, "the shape's plan is out of date")
}

/// Whether `error` is [`stale_shape_plan`]'s.
pub(super) fn is_stale_shape_plan(error: &SqlError) -> bool {
    error.state == STALE_SHAPE_PLAN
}

/// Statements whose plan a shape keeps: the ones PostgreSQL prepares, and BEGIN, COMMIT and
/// ROLLBACK (whose plans are constants) that surround them. Others change the session, or
/// are planned from their literals' values.
pub(super) fn keeps_plan(statement: &Statement) -> bool {
    use sqlparser::ast::Statement as S;
    matches!(
        statement,
        Statement::Sql(
            S::Query(_)
                | S::Insert(_)
                | S::Update(_)
                | S::Delete(_)
                | S::StartTransaction { .. }
                | S::Commit { .. }
                | S::Rollback { .. }
        )
    )
}

/// Each literal of `shape` as the planner types it, or `None` if one is not a value it
/// binds.
fn literal_values(shape: &Shape) -> Option<Vec<(Value, DataType)>> {
    shape
        .literals()
        .map(|literal| match plan::literal(literal) {
            Ok(Expr::Literal(value, ty)) => Some((value, ty)),
            _ => None,
        })
        .collect()
}

/// Whether a string literal of type `ty` is, to the planner, exactly the value its text
/// reads as (no length or precision to cast it to, no element type).
fn reads_as_itself(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Bool
            | DataType::Int2
            | DataType::Int4
            | DataType::Int8
            | DataType::Float4
            | DataType::Float8
            | DataType::Numeric {
                precision: None,
                scale: None
            }
            | DataType::Text
            | DataType::Varchar(None)
            | DataType::Bytea
            | DataType::Date
            | DataType::Timestamp
            | DataType::TimestampTz
            | DataType::Uuid
            | DataType::Interval
            | DataType::Json
            | DataType::Jsonb
            | DataType::Unknown
    )
}

impl Session {
    /// `literals` as the values of parameters of types `param_types`, where they type as
    /// `literal_types` says; `None` where a text is to be planned as written.
    fn literal_params(
        &self,
        literals: Vec<(Value, DataType)>,
        literal_types: &[DataType],
        param_types: &[DataType],
    ) -> Option<Vec<Value>> {
        if literals.len() != literal_types.len() || literals.len() != param_types.len() {
            return None;
        }
        let mut zone = None;
        let mut params = Vec::with_capacity(literals.len());
        for (((value, ty), expected), param) in
            literals.into_iter().zip(literal_types).zip(param_types)
        {
            if ty != *expected {
                return None;
            }
            params.push(match value {
                // A string takes the type its place gives it, as the planner reads it.
                Value::Text(text) if ty == DataType::Unknown && *param != DataType::Unknown => {
                    if !reads_as_itself(param) {
                        return None;
                    }
                    let zone = zone.get_or_insert_with(|| self.time_zone());
                    text::parse_text(param, &text, zone).ok()?
                }
                value => value,
            });
        }
        Some(params)
    }

    /// What the session keeps for `shape`, if it was made under the present settings.
    fn kept_for(&self, shape: &Shape) -> Option<&ShapePlan> {
        let kept = self.parse_cache.extra(shape)?;
        let holds = kept.time_zone.as_ref() == self.settings.get("TimeZone")
            && kept.search_path.as_ref() == self.settings.get("search_path");
        holds.then_some(kept)
    }

    /// The plan of `shape` and its literals as the plan's parameters, if the session keeps
    /// one that holds for them.
    fn shape_plan(&self, shape: &Shape) -> Option<(Arc<Prepared>, Vec<Value>)> {
        let kept = self.kept_for(shape)?;
        let prepared = kept.prepared.as_ref()?;
        let params = self.literal_params(
            literal_values(shape)?,
            &kept.literal_types,
            &prepared.param_types,
        )?;
        Some((prepared.clone(), params))
    }

    /// Runs `sql`, of `shape`, with its shape's plan: `None` if the session has none that
    /// holds (the caller plans the text as written).
    pub(super) async fn run_shaped(
        &mut self,
        sql: &str,
        shape: &mut Shape,
    ) -> Option<SqlResult<Outcome>> {
        let (prepared, params) = self.shape_plan(shape)?;
        if cfg!(debug_assertions) {
            self.check_shape_plan(sql, shape, &prepared, &params).await;
        }
        let result = self.execute(&prepared, params).await;
        if matches!(&result, Err(e) if is_stale_shape_plan(e)) {
            self.parse_cache.set_extra(shape, None);
            return None;
        }
        self.shape_plan_runs += 1;
        Some(
            result
                .map(|outcome| Outcome {
                    time_zone: self.time_zone(),
                    ..outcome
                })
                .map_err(|e| e.locate_in(sql)),
        )
    }

    /// Plans `statement` (parsed from a text of `shape`) as written and with parameters for
    /// its literals, and keeps the latter as the shape's plan if they agree (see the module
    /// documentation). Does nothing where the text as written does not plan: the caller
    /// reports why.
    pub(super) async fn learn_shape(&mut self, shape: &Shape, statement: &Statement) {
        let Statement::Sql(statement) = statement else {
            return;
        };
        if shape.literals().len() > MAX_LITERALS {
            return;
        }
        let Some(literals) = literal_values(shape) else {
            return;
        };
        // Learnt already, for literals of these types (with a plan or without).
        if self.kept_for(shape).is_some_and(|kept| {
            kept.literal_types.len() == literals.len()
                && kept
                    .literal_types
                    .iter()
                    .zip(&literals)
                    .all(|(a, (_, b))| a == b)
        }) {
            return;
        }
        let Some(planned) = self.plan_as_written_and_shaped(shape, statement).await else {
            return;
        };
        let (as_written, shaped, parametrized, declared, planned_at) = planned;
        let literal_types: Vec<DataType> = literals.iter().map(|(_, ty)| ty.clone()).collect();
        let prepared = match shaped {
            Ok(shaped) => self
                .literal_params(literals, &literal_types, &shaped.params)
                .filter(|values| {
                    let form = debug_form(&shaped.plan, &shaped.sequences, shaped.system_catalog);
                    plans_agree(&as_written, form, &shaped.params, values)
                })
                .map(|_| {
                    Arc::new(self.new_prepared(
                        Arc::from(""),
                        Some(parametrized),
                        declared,
                        shaped,
                        planned_at,
                        true,
                    ))
                }),
            Err(_) => None,
        };
        let kept = ShapePlan {
            literal_types,
            time_zone: self.settings.get("TimeZone").cloned(),
            search_path: self.settings.get("search_path").cloned(),
            prepared,
        };
        self.parse_cache.set_extra(shape, Some(kept));
    }

    /// Plans `statement` as written and with parameters for its literals, at one snapshot:
    /// the transaction's if one is open, else a fresh one. `None` where the text as written
    /// does not plan, or the transaction changed the catalog (its plans are its own).
    #[allow(clippy::type_complexity)]
    async fn plan_as_written_and_shaped(
        &mut self,
        shape: &Shape,
        statement: &sqlparser::ast::Statement,
    ) -> Option<(
        planner::Planned,
        SqlResult<planner::Planned>,
        Statement,
        Vec<Option<DataType>>,
        cairn_types::Timestamp,
    )> {
        let parametrized = Statement::Sql(self.parse_cache.parametrized(shape, statement)?);
        let statement = Statement::Sql(statement.clone());
        let declared: Vec<Option<DataType>> = literal_values(shape)?
            .into_iter()
            .map(|(_, ty)| Some(ty).filter(|ty| *ty != DataType::Unknown))
            .collect();
        let zone = self.time_zone();
        let search_path = self.search_path();
        let mut fresh;
        let txn = match self.txn.as_mut() {
            Some(txn) => txn,
            None => {
                fresh = self.engine.db.begin();
                &mut fresh
            }
        };
        if txn.has_written_watched() {
            return None;
        }
        let as_written = planner::plan(txn, &statement, &[], zone.clone(), &search_path)
            .await
            .ok()?;
        let shaped = planner::plan(txn, &parametrized, &declared, zone, &search_path).await;
        Some((as_written, shaped, parametrized, declared, txn.read_ts()))
    }

    /// Debug builds: the shape's plan `prepared` with `values` (`sql`'s literals) for its
    /// parameters is the plan of `sql` as written, wherever the run will use it (no catalog
    /// change since it was found good).
    async fn check_shape_plan(
        &mut self,
        sql: &str,
        shape: &mut Shape,
        prepared: &Prepared,
        values: &[Value],
    ) {
        let Ok(mut statements) = self.parse_cache.parse_shaped(sql, shape) else {
            panic!("a text of a kept shape does not parse: {sql:?}");
        };
        let (Some(statement), true) = (statements.pop(), statements.is_empty()) else {
            panic!("a kept shape holds other than one statement: {sql:?}");
        };
        let zone = self.time_zone();
        let search_path = self.search_path();
        let validated_at = cairn_types::Timestamp(prepared.validated_at.load(Ordering::Acquire));
        let mut fresh;
        let txn = match self.txn.as_mut() {
            Some(txn) => txn,
            None => {
                fresh = self.engine.db.begin();
                &mut fresh
            }
        };
        let statement = Statement::Sql(statement);
        let planned = planner::plan(txn, &statement, &[], zone, &search_path).await;
        let in_use = !txn.has_written_watched()
            && self
                .engine
                .db
                .watch()
                .unchanged_since(validated_at.min(txn.read_ts()));
        let (Ok(as_written), true) = (planned, in_use) else {
            // The run finds the plan stale and plans the text as written.
            return;
        };
        let sequences = prepared
            .sequences
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let shaped = debug_form(&prepared.plan(), &sequences, prepared.system_catalog);
        assert!(
            plans_agree(&as_written, shaped, &prepared.param_types, values),
            "a shape's plan is not the plan of {sql:?}"
        );
    }
}

/// A plan and what running it needs, in a form that shows every difference between two.
fn debug_form(plan: &Plan, sequences: &[SequenceUse], system_catalog: bool) -> String {
    format!("{:?}", (plan, sequences, system_catalog))
}

/// Whether `shaped` (a [`debug_form`]), with `values` put in for its parameters of types
/// `params`, is `as_written`.
fn plans_agree(
    as_written: &planner::Planned,
    mut shaped: String,
    params: &[DataType],
    values: &[Value],
) -> bool {
    for (index, (value, ty)) in values.iter().zip(params).enumerate() {
        let param = Expr::Param {
            index,
            ty: ty.clone(),
        };
        let literal = |value: Value| format!("{:?}", Expr::Literal(value, ty.clone()));
        // The planner folds a negated number into one constant.
        if let (true, Ok(negated)) = (ty.is_numeric(), crate::types::ops::negate(value)) {
            let negation = format!("{:?}", Expr::Neg(Box::new(param.clone()), ty.clone()));
            shaped = shaped.replace(&negation, &literal(negated));
        }
        shaped = shaped.replace(&format!("{param:?}"), &literal(value.clone()));
    }
    let written = debug_form(
        &as_written.plan,
        &as_written.sequences,
        as_written.system_catalog,
    );
    values.len() == params.len() && as_written.params.is_empty() && shaped == written
}
