//! Statements DataFusion plans: queries, `EXPLAIN` and `INSERT` (and, next, the other
//! statements that change rows).

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef, UInt64Type};
use datafusion::catalog::TableProvider;
use datafusion::common::Column;
use datafusion::datasource::provider_as_source;
use datafusion::execution::context::SessionState;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{ExprSchemable, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::Expr as PlanExpr;
use datafusion::sql::sqlparser::ast::{Expr, ObjectName, Query, SetExpr, Statement};
use datafusion::sql::TableReference;

use aichemy_tables::TableError;

use crate::catalog::lakehouse::QualifiedName;
use crate::dialect::{named_struct, row_constructor_args};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::planner::plan_statement;
use crate::session::{Output, Session};
use crate::stop::stoppable;

/// Plans and starts a query or `EXPLAIN`; its rows stream as they are computed.
pub(crate) async fn run(session: &Session, statement: Statement) -> Result<Output> {
    let planning = std::time::Instant::now();
    let (plan, state) = plan_statement(session.lakehouse(), statement, session.scope(), 0).await?;
    if let LogicalPlan::Analyze(analyze) = &plan {
        return analyzed(session, analyze, state, planning).await;
    }
    if let LogicalPlan::Explain(explain) = &plan {
        // DataFusion writes an error of physical planning into EXPLAIN's rows: a read the
        // access policy refuses (checked as scans are planned) must fail the statement.
        if session.lakehouse().policy().is_some() {
            state.create_physical_plan(&explain.plan).await?;
        }
    }
    let stream = execute(session, plan, state).await?;
    // The types of the plan as analyzed (a CAST of JSON is a function, whose field does
    // not carry the `json` name the written CAST's would).
    let schema: SchemaRef = stream.schema();
    Ok(Output::Rows { schema, stream })
}

/// `EXPLAIN ANALYZE`: runs the statement to its end, then answers Trino's one `Query Plan`
/// text with what each operator did.
async fn analyzed(
    session: &Session,
    analyze: &datafusion::logical_expr::Analyze,
    state: SessionState,
    planning: std::time::Instant,
) -> Result<Output> {
    let (mut stream, physical) = start(session, analyze.input.as_ref().clone(), state).await?;
    let planned = planning.elapsed();
    let (mut output_rows, mut output_bytes) = (0u64, 0u64);
    while let Some(batch) = futures::StreamExt::next(&mut stream).await {
        let batch = batch?;
        output_rows += batch.num_rows() as u64;
        output_bytes += batch.get_array_memory_size() as u64;
    }
    let ran = super::explain_analyze::Ran {
        planning: planned,
        execution: planning.elapsed().saturating_sub(planned),
        output_rows,
        output_bytes,
    };
    let text = super::explain_analyze::render(&physical, &session.io.peek(), &ran, analyze.verbose);
    let schema = Arc::new(Schema::new(vec![datafusion::arrow::datatypes::Field::new(
        "Query Plan",
        DataType::Utf8,
        false,
    )]));
    let batch = datafusion::arrow::record_batch::RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(datafusion::arrow::array::StringArray::from(vec![
            text,
        ]))],
    )
    .map_err(datafusion::error::DataFusionError::from)?;
    let stream = datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
        schema.clone(),
        futures::stream::iter([Ok(batch)]),
    );
    Ok(Output::Rows {
        schema,
        stream: Box::pin(stream),
    })
}

/// Starts a planned query that the session's cancel and limits stop; its rows stream as
/// they are computed.
pub(crate) async fn execute(
    session: &Session,
    plan: LogicalPlan,
    state: SessionState,
) -> Result<SendableRecordBatchStream> {
    Ok(start(session, plan, state).await?.0)
}

/// [`execute`], answering also the physical plan that runs (its metrics say what it did).
async fn start(
    session: &Session,
    plan: LogicalPlan,
    state: SessionState,
) -> Result<(
    SendableRecordBatchStream,
    Arc<dyn datafusion::physical_plan::ExecutionPlan>,
)> {
    // What `SessionState::create_physical_plan` does, keeping the optimized plan: it names
    // the columns the scans read, for the statement's audit.
    let optimized = state.optimize(&plan)?;
    let planning = state
        .query_planner()
        .create_physical_plan(&optimized, &state);
    let physical = crate::statement_io::scanning(session.io.clone(), planning).await?;
    let physical = stoppable(physical, &session.stop)?;
    session.io.planned(
        &optimized,
        &physical,
        session.catalog.as_deref(),
        session.schema.as_deref(),
    );
    let runtime = session.io.runtime(state.runtime_env());
    let task = Arc::new(datafusion::execution::TaskContext::from(&state).with_runtime(runtime));
    let stream = datafusion::physical_plan::execute_stream(physical.clone(), task)?;
    Ok((stream, physical))
}

/// Runs an INSERT after checking that its columns fit the table as Trino would;
/// answers the number of rows written. Nothing is committed when any row fails.
pub(crate) async fn insert(
    session: &Session,
    statement: Statement,
    target: &ObjectName,
) -> Result<u64> {
    let name = session.qualify(target)?;
    crate::materialized::refuse_table_statement(session.lakehouse(), &name, "INSERT").await?;
    let Some(table) = session.lakehouse().load_table(&name).await? else {
        session.lakehouse().catalog(&name.catalog)?;
        if session
            .lakehouse()
            .metastore()
            .get_view(&name.catalog, &name.schema, &name.name)
            .await?
            .is_some()
        {
            return Err(TrinoError::not_supported(format!(
                "Inserting into views is not supported: '{name}'"
            )));
        }
        session
            .lakehouse()
            .require_schema(&name.catalog, &name.schema)
            .await?;
        return Err(TrinoError::table_not_found(&name.to_string()));
    };
    let mut statement = statement;
    let mut target_names: Vec<String> = Vec::new();
    if let Statement::Insert(insert) = &mut statement {
        let targets: Vec<(&str, &DataType)> = if insert.columns.is_empty() {
            table
                .columns
                .iter()
                .map(|c| (c.name.as_str(), &c.data_type))
                .collect()
        } else {
            let mut targets = Vec::new();
            for column in &insert.columns {
                let wanted = column.value.to_ascii_lowercase();
                let found = table
                    .columns
                    .iter()
                    .find(|c| c.name == wanted)
                    .ok_or_else(|| {
                        TrinoError::new(
                            ErrorCode::COLUMN_NOT_FOUND,
                            format!("Insert column name does not exist: {wanted}"),
                        )
                    })?;
                targets.push((found.name.as_str(), &found.data_type));
            }
            targets
        };
        target_names = targets.iter().map(|(name, _)| name.to_string()).collect();
        // An omitted column is NULL.
        if let Some(column) = table
            .columns
            .iter()
            .find(|c| !c.nullable && !target_names.contains(&c.name))
        {
            return Err(TableError::NullInNotNullColumn {
                column: column.name.clone(),
            }
            .into());
        }
        if let Some(source) = &mut insert.source {
            name_row_values(source, &targets);
            let (source_plan, _) = plan_statement(
                session.lakehouse(),
                Statement::Query(source.clone()),
                session.scope(),
                0,
            )
            .await?;
            let sources: Vec<DataType> = source_plan
                .schema()
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect();
            check_insert_types(&targets, &sources)?;
        }
    }
    let table_names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let named = |e: TrinoError| name_null_violation(e, &table_names, &target_names);
    let (plan, state) = plan_statement(session.lakehouse(), statement, session.scope(), 0)
        .await
        .map_err(named)?;
    write(session, &name, plan, state).await.map_err(named)
}

/// Appends the rows of a planned query to a table whose columns match the query's by
/// position (`CREATE TABLE … AS`): each column is cast to the table's type and named as
/// the table's column. Answers the number of rows written.
pub(crate) async fn append(
    session: &Session,
    name: &QualifiedName,
    table: Arc<dyn TableProvider>,
    plan: LogicalPlan,
    state: SessionState,
) -> Result<u64> {
    let plan = conformed(name, plan, &table.schema())?;
    let reference = TableReference::full(
        name.catalog.as_str(),
        name.schema.as_str(),
        name.name.as_str(),
    );
    let plan = LogicalPlanBuilder::insert_into(
        plan,
        reference,
        provider_as_source(table),
        InsertOp::Append,
    )?
    .build()?;
    write(session, name, plan, state).await
}

/// A query's rows as the columns of table `name` (`target`), matched by position: each
/// cast to the column's type and named as the column.
pub(crate) fn conformed(
    name: &QualifiedName,
    plan: LogicalPlan,
    target: &Schema,
) -> Result<LogicalPlan> {
    let source = plan.schema().clone();
    if target.fields().len() != source.fields().len() {
        return Err(TrinoError::internal(format!(
            "Table '{name}' has {} columns, its query {}",
            target.fields().len(),
            source.fields().len()
        )));
    }
    let columns = target
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            Ok(PlanExpr::Column(Column::from(source.qualified_field(i)))
                .cast_to(field.data_type(), &source)?
                .alias(field.name()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LogicalPlanBuilder::from(plan).project(columns)?.build()?)
}

/// Runs a planned write to `target` to its end, its lineage noted; answers the number of
/// rows written.
async fn write(
    session: &Session,
    target: &QualifiedName,
    plan: LogicalPlan,
    state: SessionState,
) -> Result<u64> {
    if let LogicalPlan::Dml(dml) = &plan {
        let columns = crate::lineage::typed_columns(&dml.target.schema());
        let planned = crate::lineage::Planned {
            catalog: session.catalog.as_deref(),
            schema: session.schema.as_deref(),
            aliases: &[],
        };
        crate::lineage::note(target, Some(&columns), &plan, &planned, false);
        let names = columns.into_iter().map(|(name, _)| name);
        session.io.wrote(target.to_string(), names);
    }
    let batches: Vec<_> =
        futures::TryStreamExt::try_collect(execute(session, plan, state).await?).await?;
    Ok(batches
        .iter()
        .filter(|b| b.num_columns() > 0)
        .map(|b| {
            b.column(0)
                .as_primitive_opt::<UInt64Type>()
                .map(|c| c.iter().flatten().sum::<u64>())
                .unwrap_or(0)
        })
        .sum())
}

/// DataFusion's own NOT NULL checks name a position, not a column: `Column 'column2'` of
/// the VALUES rows (1-based, in insert-column order) or `batch column at '1'` of the table.
/// Answers Trino's CONSTRAINT_VIOLATION naming the column instead.
fn name_null_violation(error: TrinoError, table: &[&str], targets: &[String]) -> TrinoError {
    let message = &error.message;
    let quoted = || message.split('\'').nth(1);
    let column = if message.contains("is declared as non-nullable but contains null values") {
        quoted()
            .and_then(|c| c.strip_prefix("column"))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| targets.get(n.checked_sub(1)?).cloned())
    } else if message.contains("has null but schema specifies non-nullable") {
        quoted()
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| table.get(n).map(|c| c.to_string()))
    } else {
        None
    };
    match column {
        Some(column) => TableError::NullInNotNullColumn { column }.into(),
        None => error,
    }
}

/// Gives the `ROW(…)` values of an `INSERT … VALUES` the field names of the ROW columns
/// they go to: Trino pairs row fields by position, DataFusion by name.
fn name_row_values(source: &mut Query, targets: &[(&str, &DataType)]) {
    let SetExpr::Values(values) = source.body.as_mut() else {
        return;
    };
    for row in &mut values.rows {
        for (value, (_, data_type)) in row.iter_mut().zip(targets) {
            name_row_value(value, data_type);
        }
    }
}

fn name_row_value(value: &mut Expr, data_type: &DataType) {
    let DataType::Struct(fields) = data_type else {
        return;
    };
    let Some(args) = row_constructor_args(value) else {
        return;
    };
    if args.len() != fields.len() {
        return;
    }
    let named = fields
        .iter()
        .zip(args)
        .map(|(field, mut arg)| {
            name_row_value(&mut arg, field.data_type());
            (field.name().clone(), arg)
        })
        .collect();
    *value = named_struct(named);
}

/// Trino's implicit coercions for INSERT: numbers to numbers, text to text, dates and
/// timestamps to each other; anything else is a type mismatch.
fn check_insert_types(targets: &[(&str, &DataType)], sources: &[DataType]) -> Result<()> {
    let fits = targets.len() == sources.len()
        && targets
            .iter()
            .zip(sources)
            .all(|((_, target), source)| coercible(source, target));
    if fits {
        return Ok(());
    }
    Err(TrinoError::new(
        ErrorCode::TYPE_MISMATCH,
        format!(
            "Insert query has mismatched column types: Table: [{}], Query: [{}]",
            type_list(targets.iter().map(|(_, t)| *t)),
            type_list(sources.iter())
        ),
    ))
}

/// Trino's names of `types`, comma-separated, for a type mismatch's message.
pub(crate) fn type_list<'a>(types: impl Iterator<Item = &'a DataType>) -> String {
    types
        .map(crate::types::trino_type_name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn coercible(source: &DataType, target: &DataType) -> bool {
    use DataType::*;
    if source == target || *source == Null {
        return true;
    }
    match (source, target) {
        (s, t) if s.is_numeric() && t.is_numeric() => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        (Date32 | Date64 | Timestamp(_, _), Date32 | Date64 | Timestamp(_, _)) => true,
        (Time32(_) | Time64(_), Time32(_) | Time64(_)) => true,
        (
            List(s) | LargeList(s) | FixedSizeList(s, _),
            List(t) | LargeList(t) | FixedSizeList(t, _),
        ) => coercible(s.data_type(), t.data_type()),
        (Map(s, _), Map(t, _)) => coercible(s.data_type(), t.data_type()),
        // A partition column a format reads dictionary-encoded.
        (s, Dictionary(_, t)) => coercible(s, t),
        (Dictionary(_, s), t) => coercible(s, t),
        (Struct(s), Struct(t)) => {
            s.len() == t.len()
                && s.iter()
                    .zip(t.iter())
                    .all(|(a, b)| coercible(a.data_type(), b.data_type()))
        }
        _ => false,
    }
}
