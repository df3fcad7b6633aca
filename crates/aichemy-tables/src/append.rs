//! Tables that a format library scans and our sinks append to: the Iceberg and Delta Lake
//! catalogs read through iceberg-datafusion's and deltalake's providers, and write INSERTs
//! with sinks of ours (one commit after the last row, retried as `commit.retries` allows).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result as DFResult, Statistics};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::TableType;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

/// Makes the sink of one INSERT into a table.
pub(crate) trait Appender: fmt::Debug + Send + Sync {
    /// The format's name, for errors.
    fn format(&self) -> &'static str;

    /// A sink taking rows of `schema`.
    fn sink(&self, schema: SchemaRef) -> DFResult<Arc<dyn DataSink>>;
}

/// A table scanned by `scan` and appended to by `appender`'s sinks.
#[derive(Debug)]
pub(crate) struct AppendableTable<A> {
    scan: Arc<dyn TableProvider>,
    /// The columns as the engine plans with them.
    schema: SchemaRef,
    appender: A,
}

impl<A: Appender> AppendableTable<A> {
    pub(crate) fn new(scan: Arc<dyn TableProvider>, schema: SchemaRef, appender: A) -> Self {
        Self {
            scan,
            schema,
            appender,
        }
    }
}

#[async_trait]
impl<A: Appender + 'static> TableProvider for AppendableTable<A> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn statistics(&self) -> Option<Statistics> {
        self.scan.statistics()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.scan.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        self.scan.supports_filters_pushdown(filters)
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} is not supported for {} tables",
                self.appender.format()
            )));
        }
        let sink = self.appender.sink(self.schema.clone())?;
        Ok(Arc::new(DataSinkExec::new(input, sink, None)))
    }
}
