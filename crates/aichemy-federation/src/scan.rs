//! Scans of remote tables: the projection, the filters PostgreSQL can evaluate and the
//! limit become one `SELECT`, streamed back as binary `COPY` output.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;

use crate::decode::CopyDecoder;
use crate::sql::{self, quote_ident};
use crate::types::RemoteColumn;
use crate::write::PostgresSink;
use crate::Remote;

/// The column indices a scan reads: its projection, or all `width` columns.
pub(crate) fn projected(projection: Option<&Vec<usize>>, width: usize) -> Vec<usize> {
    match projection {
        Some(p) => p.clone(),
        None => (0..width).collect(),
    }
}

/// A table of a PostgreSQL catalog.
#[derive(Debug)]
pub struct PostgresTable {
    pub(crate) remote: Arc<Remote>,
    pub(crate) schema_name: String,
    pub(crate) table_name: String,
    pub(crate) columns: Vec<RemoteColumn>,
    pub(crate) arrow_schema: SchemaRef,
    pub(crate) writable: bool,
}

impl PostgresTable {
    /// `"schema"."table"`.
    pub(crate) fn remote_name(&self) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.schema_name),
            quote_ident(&self.table_name)
        )
    }

    /// The remote query for the columns at `indices`, pushed filters and a limit.
    fn query(&self, indices: &[usize], filters: &[Expr], limit: Option<usize>) -> String {
        let select = indices
            .iter()
            .map(|&i| {
                let column = &self.columns[i];
                let name = quote_ident(&column.name);
                if column.cast_to_text {
                    format!("{} AS {name}", column.select_sql(&name))
                } else {
                    name
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let conditions: Vec<String> = filters
            .iter()
            .filter_map(|f| sql::filter(f, &self.columns))
            .collect();
        let mut query = format!(
            "SELECT {select} FROM {}{}",
            self.remote_name(),
            sql::where_clause(&conditions)
        );
        if let Some(limit) = limit {
            query.push_str(&format!(" LIMIT {limit}"));
        }
        query
    }
}

#[async_trait]
impl TableProvider for PostgresTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.arrow_schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match sql::filter(f, &self.columns) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let indices = projected(projection, self.columns.len());
        Ok(Arc::new(PostgresScanExec::new(
            self.remote.clone(),
            self.query(&indices, filters, limit),
            Arc::new(self.arrow_schema.project(&indices)?),
            indices
                .iter()
                .map(|&i| self.columns[i].kind.clone())
                .collect(),
        )))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} is not supported for PostgreSQL tables"
            )));
        }
        if !self.writable {
            return Err(DataFusionError::Plan(format!(
                "Catalog '{}': {} is not a table that accepts rows",
                self.remote.catalog,
                self.remote_name()
            )));
        }
        let sink = PostgresSink::new(
            self.remote.clone(),
            self.remote_name(),
            self.columns.iter().map(|c| c.name.clone()).collect(),
            self.arrow_schema.clone(),
        );
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// Runs one query on PostgreSQL and streams its rows.
#[derive(Debug)]
pub struct PostgresScanExec {
    remote: Arc<Remote>,
    query: String,
    schema: SchemaRef,
    kinds: Vec<crate::types::Kind>,
    properties: Arc<PlanProperties>,
}

impl PostgresScanExec {
    pub(crate) fn new(
        remote: Arc<Remote>,
        query: String,
        schema: SchemaRef,
        kinds: Vec<crate::types::Kind>,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            remote,
            query,
            schema,
            kinds,
            properties,
        }
    }

    /// The statement PostgreSQL runs.
    pub fn query(&self) -> &str {
        &self.query
    }
}

impl DisplayAs for PostgresScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "PostgresScanExec: catalog={}, remote_query={}",
            self.remote.catalog, self.query
        )
    }
}

impl ExecutionPlan for PostgresScanExec {
    fn name(&self) -> &str {
        "PostgresScanExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        let remote = self.remote.clone();
        let statement = format!("COPY ({}) TO STDOUT (FORMAT binary)", self.query);
        let schema = self.schema.clone();
        let kinds = self.kinds.clone();
        // The copy runs in its own task, decoding the next batch while the engine works
        // on the last; it stops when the engine drops the stream.
        aichemy_task::spawn("postgresql copy", async move {
            let fail = crate::remote_failure;
            let mut connection = match remote.acquire().await {
                Ok(c) => c,
                Err(e) => {
                    let _ = sender.send(Err(fail(e))).await;
                    return;
                }
            };
            let mut decoder = CopyDecoder::new(schema, &kinds);
            let mut finished = false;
            {
                let chunks = connection.copy_out_raw(&statement).await;
                let mut chunks = match chunks {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = sender.send(Err(fail(remote.describe_error(&e)))).await;
                        return;
                    }
                };
                'copy: loop {
                    match chunks.next().await {
                        None => {
                            finished = true;
                            break;
                        }
                        Some(Err(e)) => {
                            let _ = sender.send(Err(fail(remote.describe_error(&e)))).await;
                            break;
                        }
                        Some(Ok(chunk)) => match decoder.push(&chunk) {
                            Ok(batches) => {
                                for batch in batches {
                                    if sender.send(Ok(batch)).await.is_err() {
                                        break 'copy;
                                    }
                                }
                            }
                            Err(e) => {
                                let _ = sender.send(Err(fail(remote.message(&e)))).await;
                                break;
                            }
                        },
                    }
                }
            }
            if !finished {
                // Mid-copy: PostgreSQL is still sending. Closing the connection stops it;
                // returning it to the pool would make the next user drain the rest.
                connection.close_on_drop();
                return;
            }
            match decoder.finish() {
                Ok(Some(batch)) => {
                    let _ = sender.send(Ok(batch)).await;
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = sender.send(Err(fail(remote.message(&e)))).await;
                }
            }
        });
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}
