//! A format's scan with each row named by its data file and place there (`$path`,
//! `$position`, what [`crate::RowLevelTable::scan`] gives), for formats whose own scan ends
//! with a column that names the row another way: Delta Lake's file column, Lance's row
//! address. A [`RowNamer`] turns that column into the two; a scan of some files keeps
//! only their rows.
//!
//! The format's plan is run as it was built, hidden from the physical optimizer: Delta
//! Lake's rows are counted per file, which holds only while no file is split between
//! partitions.

use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatchOptions;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{project_schema, Result as DFResult};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

use crate::{PATH_COLUMN, POSITION_COLUMN};

/// Names the rows of one partition of a format's scan, batch by batch, in order.
pub(crate) trait RowNamer: Send {
    /// The `$path` (Utf8) and `$position` (Int64) of each row, from the scan's naming
    /// column.
    fn name(&mut self, naming: &ArrayRef) -> DFResult<(ArrayRef, ArrayRef)>;
}

/// Makes a [`RowNamer`] for each partition.
pub(crate) type NamerFactory = Arc<dyn Fn() -> Box<dyn RowNamer> + Send + Sync>;

/// A format's scan whose last column names each row, seen as the table's columns, then
/// `$path` and `$position`.
pub(crate) struct NamedScan {
    /// The format's scan; its last column is the naming one.
    inner: Arc<dyn TableProvider>,
    namer: NamerFactory,
    files: Option<Arc<HashSet<String>>>,
    schema: SchemaRef,
    /// The format, in the plan's description.
    format: &'static str,
}

impl fmt::Debug for NamedScan {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "NamedScan({})", self.format)
    }
}

impl NamedScan {
    pub(crate) fn new(
        format: &'static str,
        inner: Arc<dyn TableProvider>,
        namer: NamerFactory,
        files: Option<Arc<HashSet<String>>>,
    ) -> Self {
        let read = inner.schema();
        let columns = read.fields().len() - 1;
        let fields: Vec<Field> = read.fields()[..columns]
            .iter()
            // Nullable, so that writing checks NOT NULL columns and names the column.
            .map(|f| f.as_ref().clone().with_nullable(true))
            .chain([
                Field::new(PATH_COLUMN, DataType::Utf8, false),
                Field::new(POSITION_COLUMN, DataType::Int64, false),
            ])
            .collect();
        Self {
            inner,
            namer,
            files,
            schema: Arc::new(Schema::new(fields)),
            format,
        }
    }
}

/// Where an output column of [`NamedScanExec`] comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The inner scan's column at this position.
    Read(usize),
    Path,
    Position,
}

#[async_trait]
impl TableProvider for NamedScan {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let output = project_schema(&self.schema, projection)?;
        let columns = self.schema.fields().len() - 2;
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..columns + 2).collect(),
        };
        // The table's columns asked for, then the naming column (always: the choice of
        // files needs it, and an empty projection still has rows).
        let mut read: Vec<usize> = wanted.iter().copied().filter(|&i| i < columns).collect();
        read.sort_unstable();
        read.dedup();
        let naming = read.len();
        read.push(columns);
        let sources = wanted
            .iter()
            .map(|&i| match i.checked_sub(columns) {
                Some(0) => Source::Path,
                Some(_) => Source::Position,
                None => Source::Read(read.iter().position(|&r| r == i).unwrap_or_default()),
            })
            .collect();
        let inner = self.inner.scan(state, Some(&read), &[], None).await?;
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(output),
            Partitioning::UnknownPartitioning(inner.output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Arc::new(NamedScanExec {
            format: self.format,
            inner,
            naming,
            sources,
            namer: self.namer.clone(),
            files: self.files.clone(),
            properties,
        }))
    }
}

/// Runs a format's scan plan as it was built and names its rows.
struct NamedScanExec {
    format: &'static str,
    inner: Arc<dyn ExecutionPlan>,
    /// The inner output's naming column.
    naming: usize,
    sources: Vec<Source>,
    namer: NamerFactory,
    files: Option<Arc<HashSet<String>>>,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for NamedScanExec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "NamedScanExec({})", self.format)
    }
}

impl DisplayAs for NamedScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}PathScan: files={}",
            self.format.replace(' ', ""),
            self.files
                .as_ref()
                .map_or("all".to_string(), |files| files.len().to_string())
        )
    }
}

impl ExecutionPlan for NamedScanExec {
    fn name(&self) -> &str {
        "NamedScanExec"
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
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let schema = self.schema();
        let stream = self.inner.execute(partition, context)?;
        let mut namer = (self.namer)();
        let naming = self.naming;
        let sources = self.sources.clone();
        let files = self.files.clone();
        let output = schema.clone();
        let batches = stream
            .map(move |batch| {
                let batch = batch?;
                let (paths, positions) = namer.name(batch.column(naming))?;
                let columns: Vec<ArrayRef> = sources
                    .iter()
                    .map(|source| match source {
                        Source::Read(k) => batch.column(*k).clone(),
                        Source::Path => paths.clone(),
                        Source::Position => positions.clone(),
                    })
                    .collect();
                let named = RecordBatch::try_new_with_options(
                    output.clone(),
                    columns,
                    &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
                )?;
                match &files {
                    Some(files) => Ok(filter_record_batch(&named, &kept(&paths, files))?),
                    None => Ok(named),
                }
            })
            .try_filter(|batch| futures::future::ready(batch.num_rows() > 0));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// Which rows' `$path` is one of `files` (rows of one file come together).
fn kept(paths: &ArrayRef, files: &HashSet<String>) -> BooleanArray {
    let paths = paths.as_string::<i32>();
    let mut last: Option<(&str, bool)> = None;
    (0..paths.len())
        .map(|row| {
            let path = paths.value(row);
            match last {
                Some((seen, keep)) if seen == path => keep,
                _ => {
                    let keep = files.contains(path);
                    last = Some((path, keep));
                    keep
                }
            }
        })
        .map(Some)
        .collect()
}

/// A table's rows with Trino's hidden `$path` column after its own: a
/// [`crate::RowLevelTable::scan`] (of every file) without its `$position`.
pub fn with_path_column(scan: Arc<dyn TableProvider>) -> Arc<dyn TableProvider> {
    let named = scan.schema();
    let fields: Vec<Field> = named.fields()[..named.fields().len() - 1]
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    Arc::new(PathColumn {
        scan,
        schema: Arc::new(Schema::new(fields)),
    })
}

#[derive(Debug)]
struct PathColumn {
    /// The table's columns, `$path` and `$position`.
    scan: Arc<dyn TableProvider>,
    /// The table's columns and `$path`.
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for PathColumn {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<datafusion::logical_expr::TableProviderFilterPushDown>> {
        self.scan.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        // The same positions in both schemas; `$position` is never asked for.
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        self.scan
            .scan(state, Some(projection.unwrap_or(&all)), filters, limit)
            .await
    }
}
