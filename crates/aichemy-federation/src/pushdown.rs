//! Joins and aggregates that PostgreSQL runs: an optimizer rule that finds the largest
//! parts of a plan made only of one database's tables, equi-joins between them and
//! plain aggregates over them, and replaces each with one remote query.
//!
//! Only what means the same remotely is pushed: equi-joins on columns that compare alike,
//! `count`, `sum`, `min` and `max` (`min`/`max` not on text, whose order is the
//! database's collation), `avg` of integers and floats, grouping by such columns. The
//! results are cast remotely to the types the engine planned, so the values decode into
//! exactly the Arrow types the rest of the plan expects.

use std::any::Any;
use std::cell::Cell;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, NullEquality, Result as DFResult};
use datafusion::datasource::{provider_as_source, source_as_provider, TableType};
use datafusion::logical_expr::{
    col, Aggregate, Expr, Join, JoinType, LogicalPlan, LogicalPlanBuilder, TableScan,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;

use crate::scan::{projected, PostgresScanExec, PostgresTable};
use crate::sql::{filter_in, quote_ident, where_clause, Scope};
use crate::types::{Kind, RemoteColumn};
use crate::Remote;

/// The rule; add it to a session's optimizer rules.
#[derive(Debug, Default)]
pub struct PushdownToPostgres;

/// One output column of a remote relation.
#[derive(Clone)]
struct Output {
    sql: String,
    column: RemoteColumn,
}

/// A join tree PostgreSQL can compute: FROM and WHERE text with the output columns.
#[derive(Clone)]
struct Relation {
    remote: Arc<Remote>,
    from: String,
    conditions: Vec<String>,
    outputs: Vec<Output>,
    /// Whether it is one table (a LEFT JOIN's right side must be, so its filters can go
    /// into the ON clause).
    single_table: bool,
}

impl OptimizerRule for PushdownToPostgres {
    fn name(&self) -> &str {
        "pushdown_to_postgres"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DFResult<Transformed<LogicalPlan>> {
        replace(plan)
    }
}

/// Replaces the largest pushable parts of a plan, top down.
fn replace(plan: LogicalPlan) -> DFResult<Transformed<LogicalPlan>> {
    if matches!(plan, LogicalPlan::Join(_) | LogicalPlan::Aggregate(_)) {
        if let Some(query) = remote_query(&plan, &Cell::new(0)) {
            return Ok(Transformed::yes(query.into_plan()?));
        }
    }
    plan.map_children(replace)
}

/// The remote query for a whole join or aggregate node, when it has one.
fn remote_query(plan: &LogicalPlan, aliases: &Cell<usize>) -> Option<RemoteQuery> {
    match plan {
        LogicalPlan::Aggregate(aggregate) => aggregate_query(aggregate, aliases),
        LogicalPlan::Join(_) => {
            let relation = relation(plan, aliases)?;
            let fields = qualified_fields(plan.schema());
            let select = relation
                .outputs
                .iter()
                .enumerate()
                .map(|(i, o)| format!("{} AS {}", o.sql, quote_ident(&format!("c{i}"))))
                .collect::<Vec<_>>();
            let kinds = relation
                .outputs
                .iter()
                .map(|o| o.column.kind.clone())
                .collect();
            Some(RemoteQuery {
                remote: relation.remote.clone(),
                sql: format!(
                    "SELECT {} FROM {}{}",
                    select.join(", "),
                    relation.from,
                    where_clause(&relation.conditions)
                ),
                fields,
                kinds,
            })
        }
        _ => None,
    }
}

/// The output fields of a node with their qualifiers.
fn qualified_fields(
    schema: &DFSchema,
) -> Vec<(Option<datafusion::sql::TableReference>, Arc<Field>)> {
    schema
        .iter()
        .map(|(qualifier, field)| (qualifier.cloned(), field.clone()))
        .collect()
}

/// The relation a plan node computes, when PostgreSQL can compute all of it.
fn relation(plan: &LogicalPlan, aliases: &Cell<usize>) -> Option<Relation> {
    match plan {
        LogicalPlan::SubqueryAlias(alias) => relation(&alias.input, aliases),
        LogicalPlan::Projection(projection) => {
            let input = relation(&projection.input, aliases)?;
            let outputs = projection
                .expr
                .iter()
                .map(|e| {
                    let Expr::Column(c) = e.clone().unalias() else {
                        return None;
                    };
                    let index = projection.input.schema().index_of_column(&c).ok()?;
                    input.outputs.get(index).cloned()
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Relation { outputs, ..input })
        }
        LogicalPlan::TableScan(scan) => table_relation(scan, aliases),
        LogicalPlan::Join(join) => join_relation(join, aliases),
        _ => None,
    }
}

fn table_relation(scan: &TableScan, aliases: &Cell<usize>) -> Option<Relation> {
    if scan.fetch.is_some() {
        return None;
    }
    let provider = source_as_provider(&scan.source).ok()?;
    let table = provider.as_any().downcast_ref::<PostgresTable>()?;
    let alias = format!("t{}", aliases.get());
    aliases.set(aliases.get() + 1);
    let scope = Scope {
        columns: &table.columns,
        alias: Some(&alias),
    };
    let conditions = scan
        .filters
        .iter()
        .map(|f| filter_in(f, scope))
        .collect::<Option<Vec<_>>>()?;
    let indices = projected(scan.projection.as_ref(), table.columns.len());
    let outputs = indices
        .iter()
        .map(|&i| {
            let column = table.columns[i].clone();
            let sql = column.select_sql(&format!("{alias}.{}", quote_ident(&column.name)));
            Output { sql, column }
        })
        .collect();
    Some(Relation {
        remote: table.remote.clone(),
        from: format!("{} AS {alias}", table.remote_name()),
        conditions,
        outputs,
        single_table: true,
    })
}

fn join_relation(join: &Join, aliases: &Cell<usize>) -> Option<Relation> {
    if join.filter.is_some()
        || join.on.is_empty()
        || join.null_equality != NullEquality::NullEqualsNothing
        || !matches!(join.join_type, JoinType::Inner | JoinType::Left)
    {
        return None;
    }
    let left = relation(&join.left, aliases)?;
    let right = relation(&join.right, aliases)?;
    if !Arc::ptr_eq(&left.remote, &right.remote) || !left.remote.join_pushdown {
        return None;
    }
    let key = |expr: &Expr, plan: &LogicalPlan, relation: &Relation| -> Option<String> {
        let Expr::Column(c) = expr else {
            return None;
        };
        let output = relation
            .outputs
            .get(plan.schema().index_of_column(c).ok()?)?;
        output.column.comparable.then(|| output.sql.clone())
    };
    let mut on = join
        .on
        .iter()
        .map(|(l, r)| {
            Some(format!(
                "{} = {}",
                key(l, &join.left, &left)?,
                key(r, &join.right, &right)?
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    let mut conditions = left.conditions.clone();
    let kind = match join.join_type {
        JoinType::Inner => {
            conditions.extend(right.conditions.iter().cloned());
            "JOIN"
        }
        _ => {
            // The right side's own filters decide which of its rows can match.
            if !right.single_table {
                return None;
            }
            on.extend(right.conditions.iter().cloned());
            "LEFT JOIN"
        }
    };
    let mut outputs = left.outputs.clone();
    outputs.extend(right.outputs.iter().cloned());
    // A join on the right nests: `a JOIN (b JOIN c ON …) ON …`.
    let right_from = if right.single_table {
        right.from.clone()
    } else {
        format!("({})", right.from)
    };
    Some(Relation {
        remote: left.remote.clone(),
        from: format!("{} {kind} {right_from} ON {}", left.from, on.join(" AND ")),
        conditions,
        outputs,
        single_table: false,
    })
}

fn aggregate_query(aggregate: &Aggregate, aliases: &Cell<usize>) -> Option<RemoteQuery> {
    let input = relation(&aggregate.input, aliases)?;
    if !input.remote.aggregation_pushdown {
        return None;
    }
    let input_schema = aggregate.input.schema();
    let resolve = |expr: &Expr| -> Option<&Output> {
        let Expr::Column(c) = expr else {
            return None;
        };
        input.outputs.get(input_schema.index_of_column(c).ok()?)
    };
    let mut select = Vec::new();
    let mut group_by = Vec::new();
    for expr in &aggregate.group_expr {
        let output = resolve(expr)?;
        if !output.column.comparable {
            return None;
        }
        group_by.push(output.sql.clone());
        select.push(output.sql.clone());
    }
    for expr in &aggregate.aggr_expr {
        let Expr::AggregateFunction(function) = expr.clone().unalias() else {
            return None;
        };
        let params = &function.params;
        if params.filter.is_some() || !params.order_by.is_empty() || params.args.len() != 1 {
            return None;
        }
        let name = function.func.name().to_ascii_lowercase();
        let argument = &params.args[0];
        let sql = match (name.as_str(), argument) {
            ("count", Expr::Literal(value, _)) if !value.is_null() && !params.distinct => {
                "count(*)".to_string()
            }
            ("count", _) => {
                let output = resolve(argument)?;
                if params.distinct && !output.column.comparable {
                    return None;
                }
                let distinct = if params.distinct { "DISTINCT " } else { "" };
                format!("count({distinct}{})", output.sql)
            }
            ("sum" | "min" | "max" | "avg", _) if !params.distinct => {
                let output = resolve(argument)?;
                let numeric = matches!(
                    output.column.kind,
                    Kind::Int16 | Kind::Int32 | Kind::Int64 | Kind::Float32 | Kind::Float64
                );
                let allowed = match name.as_str() {
                    "sum" => numeric || matches!(output.column.kind, Kind::Numeric { .. }),
                    "avg" => numeric,
                    _ => {
                        output.column.comparable
                            && !output.column.textual
                            && !matches!(output.column.kind, Kind::Bool | Kind::Uuid)
                    }
                };
                if !allowed {
                    return None;
                }
                format!("{name}({})", output.sql)
            }
            _ => return None,
        };
        select.push(sql);
    }
    let fields = qualified_fields(&aggregate.schema);
    let mut kinds = Vec::new();
    let mut columns = Vec::new();
    for (i, (sql, field)) in select.iter().zip(&fields).enumerate() {
        let (kind, remote_type) = decodable(field.1.data_type())?;
        columns.push(format!(
            "CAST({sql} AS {remote_type}) AS {}",
            quote_ident(&format!("c{i}"))
        ));
        kinds.push(kind);
    }
    let group_by = if group_by.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", group_by.join(", "))
    };
    Some(RemoteQuery {
        remote: input.remote.clone(),
        sql: format!(
            "SELECT {} FROM {}{}{group_by}",
            columns.join(", "),
            input.from,
            where_clause(&input.conditions)
        ),
        fields,
        kinds,
    })
}

/// How a value of an Arrow type is read back, and the remote type it is cast to first.
fn decodable(data_type: &DataType) -> Option<(Kind, String)> {
    Some(match data_type {
        DataType::Boolean => (Kind::Bool, "boolean".into()),
        DataType::Int16 => (Kind::Int16, "smallint".into()),
        DataType::Int32 => (Kind::Int32, "integer".into()),
        DataType::Int64 => (Kind::Int64, "bigint".into()),
        DataType::Float32 => (Kind::Float32, "real".into()),
        DataType::Float64 => (Kind::Float64, "double precision".into()),
        DataType::Decimal128(precision, scale) if *scale >= 0 => (
            Kind::Numeric {
                precision: *precision,
                scale: *scale,
            },
            format!("numeric({precision},{scale})"),
        ),
        DataType::Utf8 => (Kind::Text, "text".into()),
        DataType::Date32 => (Kind::Date, "date".into()),
        DataType::Timestamp(TimeUnit::Microsecond, None) => (Kind::Timestamp, "timestamp".into()),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => {
            (Kind::TimestampTz, "timestamptz".into())
        }
        _ => return None,
    })
}

/// A remote query standing for a plan node with the given output fields.
struct RemoteQuery {
    remote: Arc<Remote>,
    sql: String,
    fields: Vec<(Option<datafusion::sql::TableReference>, Arc<Field>)>,
    kinds: Vec<Kind>,
}

impl RemoteQuery {
    /// A scan of the query, its columns renamed back to the node's qualified names.
    fn into_plan(self) -> DFResult<LogicalPlan> {
        let schema = Arc::new(Schema::new(
            self.fields
                .iter()
                .enumerate()
                .map(|(i, (_, f))| f.as_ref().clone().with_name(format!("c{i}")))
                .collect::<Vec<_>>(),
        ));
        let provider = Arc::new(PostgresQuery {
            remote: self.remote,
            sql: self.sql,
            schema,
            kinds: self.kinds,
        });
        let renamed = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, (qualifier, field))| {
                col(format!("c{i}")).alias_qualified(qualifier.clone(), field.name())
            })
            .collect::<Vec<_>>();
        LogicalPlanBuilder::scan("postgresql", provider_as_source(provider), None)?
            .project(renamed)?
            .build()
    }
}

/// The result of one remote query, as a table.
#[derive(Debug)]
struct PostgresQuery {
    remote: Arc<Remote>,
    sql: String,
    schema: SchemaRef,
    kinds: Vec<Kind>,
}

#[async_trait]
impl TableProvider for PostgresQuery {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let indices = projected(projection, self.kinds.len());
        let mut sql = if indices.len() == self.kinds.len()
            && indices.iter().enumerate().all(|(i, &j)| i == j)
        {
            self.sql.clone()
        } else {
            let columns = indices
                .iter()
                .map(|i| quote_ident(&format!("c{i}")))
                .collect::<Vec<_>>();
            format!("SELECT {} FROM ({}) AS q", columns.join(", "), self.sql)
        };
        if let Some(limit) = limit {
            sql = format!("SELECT * FROM ({sql}) AS l LIMIT {limit}");
        }
        Ok(Arc::new(PostgresScanExec::new(
            self.remote.clone(),
            sql,
            Arc::new(self.schema.project(&indices)?),
            indices.iter().map(|&i| self.kinds[i].clone()).collect(),
        )))
    }
}
