//! A table as a user with a row filter or column masks reads it: the relation becomes
//! `SELECT <mask> AS c, … FROM t WHERE <filter>` over the table itself, planned where the
//! table is resolved, so every query that reads it (joins, subqueries, views, the sources of
//! writes) sees only the rows the filter keeps and the masked values. The filter sees the
//! stored values; `current_user` in either is the querying user.

use std::borrow::Cow;
use std::sync::Arc;

use aichemy_access::{Expression, TableName};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session as CatalogSession, TableProvider};
use datafusion::common::{Constraints, Result as DFResult};
use datafusion::datasource::{TableType, ViewTable};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;

use super::Access;
use crate::catalog::lakehouse::{Lakehouse, QualifiedName};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::materialized::{ident, relation_text};
use crate::planner::{plan_statement, Scope};

/// `provider` (relation `name`, governed as `table`) with `access`'s user's row filter and
/// column masks applied; unchanged when it has neither.
pub(crate) async fn restricted(
    lakehouse: &Arc<Lakehouse>,
    state: &SessionState,
    access: &Access,
    name: &QualifiedName,
    table: &TableName,
    provider: Arc<dyn TableProvider>,
    depth: usize,
) -> Result<Arc<dyn TableProvider>> {
    let (rules, who) = (&access.rules, &access.identity);
    let filter = rules.row_filter(who, table);
    let schema = provider.schema();
    let masks: Vec<Option<Expression>> = schema
        .fields()
        .iter()
        .map(|f| rules.column_mask(who, table, f.name()))
        .collect();
    if filter.is_none() && masks.iter().all(Option::is_none) {
        return Ok(provider);
    }
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .zip(&masks)
        .map(|(field, mask)| match mask {
            Some(mask) => format!(
                "CAST(({}) AS {}) AS {}",
                mask.sql,
                crate::types::trino_type_name(field.data_type()),
                ident(field.name())
            ),
            None => ident(field.name()),
        })
        .collect();
    let mut sql = format!("SELECT {} FROM {}", columns.join(", "), relation_text(name));
    if let Some(filter) = &filter {
        sql.push_str(&format!(" WHERE ({})", filter.sql));
    }
    let invalid = |e: TrinoError| {
        let (code, what) = match &filter {
            Some(_) if masks.iter().all(Option::is_none) => {
                (ErrorCode::INVALID_ROW_FILTER, "row filter")
            }
            Some(_) => (ErrorCode::INVALID_ROW_FILTER, "row filter or column masks"),
            None => (ErrorCode::INVALID_COLUMN_MASK, "column masks"),
        };
        TrinoError::new(code, format!("Invalid {what} for '{table}': {}", e.message))
    };
    let mut statements = crate::dialect::parse_statements(&sql).map_err(invalid)?;
    let mut statement = statements.remove(0);
    let time_zone = state.config().options().execution.time_zone.clone();
    crate::dialect::bind_session_functions(
        &mut statement,
        &crate::dialect::SessionValues {
            user: who.user.clone(),
            catalog: Some(name.catalog.clone()),
            schema: Some(name.schema.clone()),
            time_zone: time_zone.clone().unwrap_or_else(|| "UTC".into()),
        },
    );
    let pinned = [(name.clone(), provider.clone())];
    let scope = Scope {
        catalog: Some(&name.catalog),
        schema: Some(&name.schema),
        time_zone: time_zone.as_deref(),
        user: Some(&who.user),
        role: None,
        pinned: &pinned,
        reads: None,
        view_owner: false,
    };
    let (plan, _) = Box::pin(plan_statement(lakehouse, statement, scope, depth + 1))
        .await
        .map_err(invalid)?;
    Ok(Arc::new(RestrictedTable {
        inner: provider,
        plan,
    }))
}

/// A table read through its restriction; written to as itself.
#[derive(Debug)]
struct RestrictedTable {
    inner: Arc<dyn TableProvider>,
    plan: LogicalPlan,
}

#[async_trait]
impl TableProvider for RestrictedTable {
    fn as_any(&self) -> &dyn std::any::Any {
        self.inner.as_any()
    }

    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    /// The restriction, which planning puts in the table's place.
    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        Some(Cow::Borrowed(&self.plan))
    }

    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        ViewTable::new(self.plan.clone(), None)
            .scan(state, projection, filters, limit)
            .await
    }

    async fn insert_into(
        &self,
        state: &dyn CatalogSession,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.inner.insert_into(state, input, insert_op).await
    }
}
