//! DELETE and TRUNCATE on tables whose rows go a whole partition at a time (Hive's
//! non-transactional tables), as Trino's Hive connector allows them: the condition may read
//! partition columns only, and the partitions it selects lose every file. Which partitions
//! it selects is found by evaluating it over one row per partition, whose values are the
//! folder names cast to the columns' types.

use std::ops::ControlFlow;

use aichemy_tables::{quote_literal, PartitionedTable, TableHandle};
use datafusion::arrow::array::{AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::sql::sqlparser::ast::{visit_expressions, Expr, Ident, ObjectName, Statement};
use futures::TryStreamExt;

use crate::catalog::lakehouse::QualifiedName;
use crate::error::{Result, TrinoError};
use crate::planner::plan_statement;
use crate::session::Session;
use crate::types::trino_type_name;

use super::change::{parse_with, placeholder, quote};

/// Trino's message for a change its Hive connector cannot make.
const NON_TRANSACTIONAL: &str =
    "Modifying Hive table rows is only supported for transactional tables";

/// A table loaded for a whole-partition DELETE; `None` when the table changes single rows
/// or does not exist (the row-level path reports that).
pub(crate) async fn load(
    session: &Session,
    name: &ObjectName,
) -> Result<Option<(QualifiedName, TableHandle)>> {
    let qualified = session.qualify(name)?;
    let Some(table) = session.lakehouse().load_table(&qualified).await? else {
        return Ok(None);
    };
    if table.rows.is_some() || table.partitions.is_none() {
        return Ok(None);
    }
    Ok(Some((qualified, table)))
}

/// The refusal of a row-level change to a table that drops whole partitions only.
pub(crate) fn refused() -> TrinoError {
    TrinoError::not_supported(NON_TRANSACTIONAL)
}

/// `DELETE FROM t [AS a] [WHERE condition]`: answers the number of rows deleted.
pub(crate) async fn delete(
    session: &Session,
    name: QualifiedName,
    table: TableHandle,
    alias: Option<&Ident>,
    condition: Option<Expr>,
) -> Result<u64> {
    let Some(partitions) = table.partitions.clone() else {
        return Err(refused());
    };
    let alias = match alias {
        Some(ident) if ident.quote_style.is_some() => ident.value.clone(),
        Some(ident) => ident.value.to_lowercase(),
        None => name.name.clone(),
    };
    let columns = partitions.partition_columns();
    if let Some(condition) = &condition {
        check_partition_columns(condition, &columns)?;
    }
    let all = partitions.partitions().await?;
    let chosen = match &condition {
        Some(condition) if !all.is_empty() => {
            selected(
                session,
                &table,
                partitions.as_ref(),
                &all,
                &alias,
                condition,
            )
            .await?
        }
        _ => all,
    };
    if chosen.is_empty() {
        return Ok(0);
    }
    let relation = format!(
        "{}.{}.{} AS {}",
        quote(&name.catalog),
        quote(&name.schema),
        quote(&name.name),
        quote(&alias)
    );
    let count = match condition {
        Some(condition) => {
            let sql = format!("SELECT count(*) FROM {relation} WHERE {}", placeholder(0));
            single_count(session, parse_with(&sql, vec![condition])?).await?
        }
        None => {
            let sql = format!("SELECT count(*) FROM {relation}");
            single_count(session, parse_with(&sql, Vec::new())?).await?
        }
    };
    partitions.delete_partitions(&chosen).await?;
    Ok(count)
}

/// Refuses a condition that reads anything but partition columns (or holds a subquery):
/// it could select part of a partition.
fn check_partition_columns(condition: &Expr, columns: &[String]) -> Result<()> {
    let is_partition = |ident: &Ident| {
        let name = if ident.quote_style.is_some() {
            ident.value.clone()
        } else {
            ident.value.to_lowercase()
        };
        columns.contains(&name)
    };
    let other = visit_expressions(condition, |expr| {
        let whole = match expr {
            Expr::Identifier(ident) => is_partition(ident),
            Expr::CompoundIdentifier(parts) => parts.last().is_some_and(is_partition),
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => false,
            _ => true,
        };
        if whole {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    });
    if other.is_break() {
        return Err(refused());
    }
    Ok(())
}

/// The partitions among `all` that `condition` selects.
async fn selected(
    session: &Session,
    table: &TableHandle,
    partitions: &dyn PartitionedTable,
    all: &[Vec<Option<String>>],
    alias: &str,
    condition: &Expr,
) -> Result<Vec<Vec<Option<String>>>> {
    let columns = partitions.partition_columns();
    let rows: Vec<String> = all
        .iter()
        .enumerate()
        .map(|(i, values)| {
            let values = values
                .iter()
                .map(|v| v.as_deref().map_or("NULL".to_string(), quote_literal));
            format!(
                "({})",
                std::iter::once(format!("BIGINT '{i}'"))
                    .chain(values)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    let mut typed = vec!["column1 AS \"$index\"".to_string()];
    for (i, column) in columns.iter().enumerate() {
        let trino_type = table
            .columns
            .iter()
            .find(|c| &c.name == column)
            .map_or("varchar".to_string(), |c| trino_type_name(&c.data_type));
        typed.push(format!(
            "CAST(column{} AS {trino_type}) AS {}",
            i + 2,
            quote(column)
        ));
    }
    let sql = format!(
        "SELECT \"$index\" FROM (SELECT {} FROM (VALUES {})) AS {} WHERE {}",
        typed.join(", "),
        rows.join(", "),
        quote(alias),
        placeholder(0)
    );
    let query = parse_with(&sql, vec![condition.clone()])?;
    let indexes = collect_int64(session, query).await?;
    Ok(indexes
        .into_iter()
        .filter_map(|i| all.get(usize::try_from(i).ok()?).cloned())
        .collect())
}

/// Runs a query of one BIGINT column; answers its values.
async fn collect_int64(
    session: &Session,
    query: datafusion::sql::sqlparser::ast::Query,
) -> Result<Vec<i64>> {
    let (plan, state) = plan_statement(
        session.lakehouse(),
        Statement::Query(Box::new(query)),
        session.scope(),
        0,
    )
    .await?;
    let batches: Vec<_> = super::query::execute(session, plan, state)
        .await?
        .try_collect()
        .await?;
    let mut values = Vec::new();
    for batch in batches {
        let column = datafusion::arrow::compute::cast(batch.column(0), &DataType::Int64)
            .map_err(datafusion::error::DataFusionError::from)?;
        let column: &Int64Array = column.as_primitive::<Int64Type>();
        values.extend(column.iter().flatten());
    }
    Ok(values)
}

async fn single_count(
    session: &Session,
    query: datafusion::sql::sqlparser::ast::Query,
) -> Result<u64> {
    Ok(collect_int64(session, query)
        .await?
        .into_iter()
        .sum::<i64>() as u64)
}
