//! A table read under the access policy: its scan first checks that the reader may select
//! the columns the scan reads (all of them for `SELECT *`, none for `count(*)`).

use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;

use aichemy_access::{FileAccessControl, Identity, TableName};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::{Constraints, DataFusionError, Result as DFResult, Statistics};
use datafusion::datasource::TableType;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

/// `inner` as `reader` may read it.
#[derive(Debug)]
pub(crate) struct GuardedTable {
    inner: Arc<dyn TableProvider>,
    name: TableName,
    rules: Arc<FileAccessControl>,
    reader: Identity,
    /// The reader owns a DEFINER view someone else queries.
    as_view_owner: bool,
}

impl GuardedTable {
    pub(crate) fn new(
        inner: Arc<dyn TableProvider>,
        name: TableName,
        rules: Arc<FileAccessControl>,
        reader: Identity,
        as_view_owner: bool,
    ) -> Self {
        Self {
            inner,
            name,
            rules,
            reader,
            as_view_owner,
        }
    }

    fn check(&self, projection: Option<&[usize]>) -> DFResult<()> {
        let schema = self.inner.schema();
        let columns: Vec<&str> = match projection {
            Some(indices) => indices
                .iter()
                .map(|&i| schema.field(i).name().as_str())
                .collect(),
            None => schema.fields().iter().map(|f| f.name().as_str()).collect(),
        };
        let checked = match self.as_view_owner {
            true => {
                self.rules
                    .check_can_create_view_with_select(&self.reader, &self.name, &columns)
            }
            false => self
                .rules
                .check_can_select(&self.reader, &self.name, &columns),
        };
        checked.map_err(|d| DataFusionError::External(Box::new(super::denied(d))))
    }
}

tokio::task_local! {
    /// Set while [`check_reads`] plans: guarded scans check and read nothing.
    static CHECK_ONLY: ();
}

/// Checks the reads of `plan` as its scans would, without reading: for a path that reads
/// the plan's tables another way (an incremental refresh reads only their changes, through
/// providers of its own). Physical planning asks each guarded table for its scan, which
/// checks the columns and, here, answers an empty one.
pub(crate) async fn check_reads(
    plan: &LogicalPlan,
    state: &datafusion::execution::context::SessionState,
) -> crate::error::Result<()> {
    CHECK_ONLY
        .scope((), state.create_physical_plan(plan))
        .await?;
    Ok(())
}

/// Inside [`check_reads`]: an empty scan of the projected columns.
fn checked_only(
    schema: &SchemaRef,
    projection: Option<&[usize]>,
) -> Option<Arc<dyn ExecutionPlan>> {
    CHECK_ONLY.try_with(|()| ()).ok()?;
    let schema = match projection {
        Some(indices) => Arc::new(schema.project(indices).ok()?),
        None => schema.clone(),
    };
    Some(Arc::new(datafusion::physical_plan::empty::EmptyExec::new(
        schema,
    )))
}

#[async_trait]
impl TableProvider for GuardedTable {
    /// The table's own: code that looks into a provider finds what it looks for.
    fn as_any(&self) -> &dyn Any {
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

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.inner.get_column_default(column)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.check(projection.map(Vec::as_slice))?;
        if let Some(empty) = checked_only(&self.inner.schema(), projection.map(Vec::as_slice)) {
            return Ok(empty);
        }
        self.inner.scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: ScanArgs<'a>,
    ) -> DFResult<ScanResult> {
        self.check(args.projection())?;
        if let Some(empty) = checked_only(&self.inner.schema(), args.projection()) {
            return Ok(ScanResult::new(empty));
        }
        self.inner.scan_with_args(state, args).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.inner.insert_into(state, input, insert_op).await
    }
}
