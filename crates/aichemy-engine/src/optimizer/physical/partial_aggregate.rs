//! First aggregation stages whose hash tables stay the size of a cache.
//!
//! A two-stage aggregate first groups each partition's rows on its own (the partial
//! stage), then repartitions the groups by key and groups them again (the final stage).
//! DataFusion's partial stage keeps every group it has seen until its input ends. On
//! many groups that table outgrows every cache: TPC-H q18 groups 60 M lines on 15 M order
//! keys, each partition's table grows to 7.5 M groups, every new key a cache miss and
//! every doubling of the table a rehash of all of them — the partial stage spent 4.9 s
//! computing group ids (EXPLAIN ANALYZE, both partitions), more than half of the query's
//! work. Yet a partial stage only exists to shrink what is sent to the final one, and
//! the rows that shrink together are mostly near one another: the lines of one order
//! follow each other, as rows of one key do in any file written in key order.
//!
//! So this physical rule runs partial stages as [`BoundedPartialAggregateExec`]: the
//! same groups and states, sent on whenever the table and the states reach
//! [`FLUSH_BYTES`] (or the memory pool refuses them more), after which grouping starts
//! afresh in the same, still allocated, table. Rows of one key close together still
//! meet in one group; the final stage merges a key that was sent twice, which it does
//! for the partitions anyway. When the first table fills while grouping barely shrank
//! its rows (more than [`SKIP_RATIO`] groups per row), the stage stops grouping and
//! sends each row on as a state of its own, as DataFusion's own partial stage does.
//! Bounded, q18's partial stage takes 0.9 s.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, Result, Statistics};
use datafusion::config::ConfigOptions;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter_pushdown::{FilterDescription, FilterPushdownPhase};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties,
};
use futures::StreamExt;

use crate::optimizer::physical::shared_plan::SharedExec;

/// The bytes of groups and states a partial stage keeps before sending them on: one
/// core's second-level cache on these machines. Measured on SF10 (`GROUP BY l_orderkey`,
/// 15 M keys in key order; `l_suppkey`, 100 K keys; `o_custkey`, 1 M keys, at random):
/// 256 KiB was as fast on the first and slower on the second, 8 MiB slower on the first.
pub(crate) const FLUSH_BYTES: usize = 1 << 20;

/// Groups per row above which a partial stage stops grouping: it removes too few rows
/// to pay for itself (DataFusion's `skip_partial_aggregation_probe_ratio_threshold`).
const SKIP_RATIO: f64 = 0.8;

#[derive(Debug, Default)]
pub(crate) struct BoundedPartialAggregates;

impl PhysicalOptimizerRule for BoundedPartialAggregates {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            // A plan several readers share stays as it is: rebuilt, it would be theirs no more.
            if node.as_any().is::<SharedExec>() {
                return Ok(Transformed::new(node, false, TreeNodeRecursion::Jump));
            }
            match node
                .as_any()
                .downcast_ref::<AggregateExec>()
                .and_then(BoundedPartialAggregateExec::try_new)
            {
                Some(bounded) => Ok(Transformed::yes(Arc::new(bounded?) as _)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "bounded_partial_aggregates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A partial aggregation stage that sends its groups on whenever they fill
/// [`FLUSH_BYTES`]. Its output (schema, partitioning, meaning) is the partial
/// `AggregateExec`'s it replaces, except that a key may come in more than one row.
#[derive(Debug)]
pub(crate) struct BoundedPartialAggregateExec {
    /// The stage it replaces, for its input, expressions and display.
    partial: Arc<AggregateExec>,
    group_schema: SchemaRef,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    metrics: ExecutionPlanMetricsSet,
}

impl BoundedPartialAggregateExec {
    /// The bounded form of `aggregate` when it is a plain partial stage: one grouping set
    /// with keys, no `FILTER`, `DISTINCT` or `ORDER BY` in its aggregates, all of which
    /// group with DataFusion's groups accumulators, no limit, input in no useful order.
    fn try_new(aggregate: &AggregateExec) -> Option<Result<Self>> {
        let plain = *aggregate.mode() == AggregateMode::Partial
            && aggregate.group_expr().is_single()
            && !aggregate.group_expr().is_empty()
            && aggregate.filter_expr().iter().all(Option::is_none)
            && aggregate.aggr_expr().iter().all(|function| {
                !function.is_distinct()
                    && function.order_bys().is_empty()
                    && function.groups_accumulator_supported()
            })
            && aggregate.limit_options().is_none()
            && *aggregate.input_order_mode() == InputOrderMode::Linear;
        if !plain {
            return None;
        }
        Some(Self::new(aggregate))
    }

    fn new(aggregate: &AggregateExec) -> Result<Self> {
        let group_schema = aggregate
            .group_expr()
            .group_schema(&aggregate.input().schema())?;
        let arguments = aggregate
            .aggr_expr()
            .iter()
            .map(|function| function.expressions())
            .collect();
        Ok(Self {
            partial: Arc::new(aggregate.clone()),
            group_schema,
            arguments,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for BoundedPartialAggregateExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self
            .partial
            .group_expr()
            .expr()
            .iter()
            .map(|(expr, name)| format!("{expr} as {name}"))
            .collect();
        let aggregates: Vec<&str> = self
            .partial
            .aggr_expr()
            .iter()
            .map(|function| function.name())
            .collect();
        write!(
            f,
            "BoundedPartialAggregateExec: gby=[{}], aggr=[{}], flush_bytes={FLUSH_BYTES}",
            keys.join(", "),
            aggregates.join(", ")
        )
    }
}

impl ExecutionPlan for BoundedPartialAggregateExec {
    fn name(&self) -> &str {
        "BoundedPartialAggregateExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.partial.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.partial.input()]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partial = Arc::clone(&self.partial).with_new_children(children)?;
        match partial.as_any().downcast_ref::<AggregateExec>() {
            Some(partial) => Ok(Arc::new(Self::new(partial)?)),
            None => {
                internal_err!("the partial stage of a BoundedPartialAggregateExec changed kind")
            }
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self
            .partial
            .input()
            .execute(partition, Arc::clone(&context))?;
        let accumulators = self
            .partial
            .aggr_expr()
            .iter()
            .map(|function| function.create_groups_accumulator())
            .collect::<Result<Vec<_>>>()?;
        let reservation = MemoryConsumer::new(format!("BoundedPartialAggregate[{partition}]"))
            .register(context.memory_pool());
        let stage = Stage {
            input,
            schema: self.schema(),
            group_exprs: self.partial.group_expr().input_exprs(),
            arguments: self.arguments.clone(),
            groups: new_group_values(Arc::clone(&self.group_schema), &GroupOrdering::None)?,
            accumulators,
            group_ids: Vec::new(),
            reservation,
            batch_size: context.session_config().batch_size().max(1),
            rows_since_flush: 0,
            grouping: true,
            ready: VecDeque::new(),
            ended: false,
            baseline: BaselineMetrics::new(&self.metrics, partition),
            flushes: MetricBuilder::new(&self.metrics).counter("flushes", partition),
        };
        let stream = futures::stream::unfold(stage, |mut stage| async move {
            let next = stage.next().await?;
            Some((next, stage))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }

    /// Filters on the keys go below, as they go below the partial stage.
    fn gather_filters_for_pushdown(
        &self,
        phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        self.partial
            .gather_filters_for_pushdown(phase, parent_filters, config)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    /// The partial stage's estimates: the joins above choose their sides by them.
    fn partition_statistics(&self, partition: Option<usize>) -> Result<Statistics> {
        self.partial.partition_statistics(partition)
    }
}

/// One partition's run of a [`BoundedPartialAggregateExec`].
struct Stage {
    input: SendableRecordBatchStream,
    schema: SchemaRef,
    group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    groups: Box<dyn GroupValues>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// The group of each row of the batch being grouped.
    group_ids: Vec<usize>,
    reservation: MemoryReservation,
    batch_size: usize,
    /// Rows grouped into the groups held now.
    rows_since_flush: usize,
    /// False once grouping was found not to pay: rows go on as states of their own.
    grouping: bool,
    /// Batches to send before reading more input.
    ready: VecDeque<RecordBatch>,
    ended: bool,
    baseline: BaselineMetrics,
    flushes: Count,
}

impl Stage {
    /// The next batch to send, `None` at the end.
    async fn next(&mut self) -> Option<Result<RecordBatch>> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                self.baseline.record_output(batch.num_rows());
                return Some(Ok(batch));
            }
            if self.ended {
                self.baseline.done();
                return None;
            }
            let next = self.input.next().await;
            let elapsed = self.baseline.elapsed_compute().clone();
            let _timer = elapsed.timer();
            let step = match next {
                // A batch larger than the session's (a join's unmatched rows come out as
                // one) is grouped a slice at a time, so that flushes, and the decision to
                // stop grouping, come as early as for batches of the usual size.
                Some(Ok(batch)) => {
                    let size = self.batch_size;
                    (0..batch.num_rows()).step_by(size).try_for_each(|offset| {
                        let length = size.min(batch.num_rows() - offset);
                        self.consume(&batch.slice(offset, length))
                    })
                }
                Some(Err(error)) => Err(error),
                None => {
                    self.ended = true;
                    self.flush()
                }
            };
            if let Err(error) = step {
                self.ended = true;
                self.ready.clear();
                return Some(Err(error));
            }
        }
    }

    fn consume(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys = evaluate(&self.group_exprs, batch)?;
        let arguments = self
            .arguments
            .iter()
            .map(|exprs| evaluate(exprs, batch))
            .collect::<Result<Vec<_>>>()?;
        if !self.grouping {
            let mut columns = keys;
            for (accumulator, values) in self.accumulators.iter_mut().zip(&arguments) {
                columns.extend(accumulator.convert_to_state(values, None)?);
            }
            self.ready
                .push_back(RecordBatch::try_new(Arc::clone(&self.schema), columns)?);
            return Ok(());
        }
        self.groups.intern(&keys, &mut self.group_ids)?;
        let total = self.groups.len();
        for (accumulator, values) in self.accumulators.iter_mut().zip(&arguments) {
            accumulator.update_batch(values, &self.group_ids, None, total)?;
        }
        self.rows_since_flush += batch.num_rows();
        let bytes = self.groups.size()
            + self
                .accumulators
                .iter()
                .map(|accumulator| accumulator.size())
                .sum::<usize>();
        if bytes > FLUSH_BYTES || self.reservation.try_resize(bytes).is_err() {
            let groups_per_row = total as f64 / self.rows_since_flush as f64;
            self.flush()?;
            if self.flushes.value() == 1
                && groups_per_row > SKIP_RATIO
                && self
                    .accumulators
                    .iter()
                    .all(|accumulator| accumulator.supports_convert_to_state())
            {
                self.grouping = false;
            }
        }
        Ok(())
    }

    /// Sends the groups held on, in batches of the session's size, and starts afresh.
    fn flush(&mut self) -> Result<()> {
        if self.groups.is_empty() {
            return Ok(());
        }
        self.flushes.add(1);
        let held = self.groups.len();
        let mut columns: Vec<ArrayRef> = self.groups.emit(EmitTo::All)?;
        // Emptied for the next groups, its table kept at the size it grew to (not every
        // kind of group values forgets its keys on `emit` alone).
        self.groups.clear_shrink(held);
        for accumulator in &mut self.accumulators {
            columns.extend(accumulator.state(EmitTo::All)?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let length = self.batch_size.min(batch.num_rows() - offset);
            self.ready.push_back(batch.slice(offset, length));
            offset += length;
        }
        self.rows_since_flush = 0;
        self.reservation.resize(self.groups.size());
        Ok(())
    }
}

/// Each expression's values for the rows of `batch`.
fn evaluate(exprs: &[Arc<dyn PhysicalExpr>], batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    exprs
        .iter()
        .map(|expr| expr.evaluate(batch)?.into_array(batch.num_rows()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::functions_aggregate::count::count_udaf;
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::col;
    use datafusion::physical_plan::aggregates::PhysicalGroupBy;
    use datafusion::physical_plan::collect;
    use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

    /// A stream of one batch, as it is (a data source would split it).
    #[derive(Debug)]
    struct OneBatch(RecordBatch);

    impl PartitionStream for OneBatch {
        fn schema(&self) -> &SchemaRef {
            self.0.schema_ref()
        }

        fn execute(&self, _context: Arc<TaskContext>) -> SendableRecordBatchStream {
            let batch = self.0.clone();
            Box::pin(RecordBatchStreamAdapter::new(
                batch.schema(),
                futures::stream::once(async move { Ok(batch) }),
            ))
        }
    }

    /// A partial `count(*)` grouping on `k` over one batch of `rows` rows whose keys come
    /// in pairs, `k = row / 2`, bounded.
    fn bounded_over_one_batch(rows: i64) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|row| row / 2),
            ))],
        )
        .unwrap();
        let input = Arc::new(
            StreamingTableExec::try_new(
                Arc::clone(&schema),
                vec![Arc::new(OneBatch(batch))],
                None,
                [],
                false,
                None,
            )
            .unwrap(),
        );
        let count = AggregateExprBuilder::new(count_udaf(), vec![col("k", &schema).unwrap()])
            .schema(Arc::clone(&schema))
            .alias("n")
            .build()
            .unwrap();
        let partial = AggregateExec::try_new(
            AggregateMode::Partial,
            PhysicalGroupBy::new_single(vec![(col("k", &schema).unwrap(), "k".to_string())]),
            vec![Arc::new(count)],
            vec![None],
            input,
            schema,
        )
        .unwrap();
        BoundedPartialAggregates
            .optimize(Arc::new(partial), &ConfigOptions::new())
            .unwrap()
    }

    #[tokio::test]
    async fn one_large_batch_is_grouped_a_slice_at_a_time() {
        let plan = bounded_over_one_batch(400_000);
        assert_eq!(plan.name(), "BoundedPartialAggregateExec");
        let batches = collect(Arc::clone(&plan), Arc::new(TaskContext::default()))
            .await
            .unwrap();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let counted: i64 = batches
            .iter()
            .map(|batch| {
                batch
                    .column(1)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .iter()
                    .sum::<i64>()
            })
            .sum();
        assert_eq!(counted, 400_000);
        // 200 000 keys do not fit in one flush's cache: the batch was grouped in slices,
        // flushed several times, each pair of rows still one group.
        let flushes = plan
            .metrics()
            .and_then(|metrics| metrics.sum_by_name("flushes"))
            .map(|value| value.as_usize())
            .unwrap();
        assert!(flushes > 1, "{flushes} flushes");
        assert_eq!(rows, 200_000);
        assert!(batches.iter().all(|batch| batch.num_rows() <= 8192));
    }
}
