//! Aggregates a query computes twice over the same input, computed once.
//!
//! A CTE referenced twice is planned twice. TPC-H q15 sums three months of lineitem per
//! supplier for its rows, then again for the largest of those sums: two scans of the
//! same 60 M rows. This physical rule finds aggregates whose whole plans are equal and
//! points every occurrence at one [`SharedExec`]: whichever reader asks for a partition
//! first computes it, keeps its batches (counted in the memory pool) and the other
//! readers read them.
//!
//! Equal plans must mean equal rows. So only plans built of Parquet scans, filters,
//! projections, aggregates and repartitions are compared, by their verbose text plus what
//! that text leaves out (the object store, partition values, aggregate arguments), and
//! none with a volatile function or a dynamic filter — a join fills those in at run time,
//! differently for each occurrence. The rule runs before joins push their dynamic
//! filters down, so those stop above the shared plan.

use std::any::Any;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Volatility;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    displayable, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
};
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};

#[derive(Debug, Default)]
pub(crate) struct ShareRepeatedAggregates;

impl PhysicalOptimizerRule for ShareRepeatedAggregates {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Counted twice: the second time without looking inside an aggregate the first
        // count found repeated, so an aggregate repeated only inside it is not shared.
        let repeated = count(&plan, &HashMap::new())?;
        let readers = count(&plan, &repeated)?;
        if readers.is_empty() {
            return Ok(plan);
        }
        let mut shared: HashMap<String, Arc<dyn ExecutionPlan>> = HashMap::new();
        plan.transform_down(|node| {
            let Some(key) = key(&node).filter(|key| readers.contains_key(key)) else {
                return Ok(Transformed::no(node));
            };
            let exec = shared
                .entry(key)
                .or_insert_with_key(|key| Arc::new(SharedExec::new(node, readers[key])));
            Ok(Transformed::new(
                Arc::clone(exec),
                true,
                TreeNodeRecursion::Jump,
            ))
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "share_repeated_aggregates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// How often each shareable aggregate occurs, more than once, not looking inside those
/// `skip` names.
fn count(
    plan: &Arc<dyn ExecutionPlan>,
    skip: &HashMap<String, usize>,
) -> Result<HashMap<String, usize>> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    plan.apply(|node| {
        let Some(key) = key(node) else {
            return Ok(TreeNodeRecursion::Continue);
        };
        let inside = if skip.contains_key(&key) {
            TreeNodeRecursion::Jump
        } else {
            TreeNodeRecursion::Continue
        };
        *counts.entry(key).or_default() += 1;
        Ok(inside)
    })?;
    counts.retain(|_, n| *n > 1);
    Ok(counts)
}

/// The text that identifies what `plan` computes, if it is an aggregate worth sharing
/// whose text says all its rows depend on.
fn key(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    let aggregate = plan.as_any().downcast_ref::<AggregateExec>()?;
    if matches!(aggregate.mode(), AggregateMode::Partial) {
        return None;
    }
    let mut key = displayable(plan.as_ref())
        .set_show_schema(true)
        .indent(true)
        .to_string();
    if key.contains("DynamicFilter") {
        return None;
    }
    let mut describable = true;
    plan.apply(|node| {
        describable = describe(node.as_ref(), &mut key);
        Ok(if describable {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    })
    .ok()?;
    describable.then_some(key)
}

/// Appends to `key` what the plan text leaves out of `node`; false if `node` is not one
/// whose rows its description fixes.
fn describe(node: &dyn ExecutionPlan, key: &mut String) -> bool {
    let any = node.as_any();
    if let Some(projection) = any.downcast_ref::<ProjectionExec>() {
        return projection.expr().iter().all(|e| stable(&e.expr));
    }
    if let Some(filter) = any.downcast_ref::<FilterExec>() {
        return stable(filter.predicate());
    }
    if let Some(aggregate) = any.downcast_ref::<AggregateExec>() {
        let groups = aggregate.group_expr();
        for aggr in aggregate.aggr_expr() {
            if aggr.fun().signature().volatility == Volatility::Volatile
                || !aggr.expressions().iter().all(stable)
            {
                return false;
            }
            let arguments: Vec<String> = aggr.expressions().iter().map(|e| e.to_string()).collect();
            let order: Vec<String> = aggr.order_bys().iter().map(|e| e.to_string()).collect();
            let _ = write!(
                key,
                "\n{}: [{}] distinct={} order=[{}]",
                aggr.name(),
                arguments.join(", "),
                aggr.is_distinct(),
                order.join(", ")
            );
        }
        let filters: Vec<String> = aggregate
            .filter_expr()
            .iter()
            .map(|f| f.as_ref().map(|f| f.to_string()).unwrap_or_default())
            .collect();
        let _ = write!(key, "\nfilters=[{}]", filters.join(", "));
        return groups.expr().iter().all(|(e, _)| stable(e))
            && aggregate.filter_expr().iter().flatten().all(stable);
    }
    if let Some(source) = any.downcast_ref::<DataSourceExec>() {
        let Some(scan) = source
            .data_source()
            .as_any()
            .downcast_ref::<FileScanConfig>()
        else {
            return false;
        };
        if scan.file_source().file_type() != "parquet" {
            return false;
        }
        let _ = write!(key, "\n{}", scan.object_store_url.as_str());
        for file in scan.file_groups.iter().flat_map(|group| group.iter()) {
            if file.extensions.is_some() {
                return false;
            }
            let _ = write!(key, "\n{:?}", file.partition_values);
        }
        return true;
    }
    any.is::<RepartitionExec>() || any.is::<CoalescePartitionsExec>()
}

/// True if `expr` returns the same for the same input every time it is evaluated.
fn stable(expr: &Arc<dyn PhysicalExpr>) -> bool {
    let mut volatile = false;
    let _ = expr.apply(|e| {
        volatile = e
            .as_any()
            .downcast_ref::<ScalarFunctionExpr>()
            .is_some_and(|f| f.fun().signature().volatility == Volatility::Volatile);
        Ok(if volatile {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    !volatile
}

/// The batches of one partition, kept for every reader while the plan lives.
struct Kept {
    batches: Vec<RecordBatch>,
    _reservation: MemoryReservation,
}

type Computed = std::result::Result<Arc<Kept>, Arc<DataFusionError>>;

/// One plan read by several parents; each partition is computed once, by its first
/// reader, and kept for the others.
pub(crate) struct SharedExec {
    input: Arc<dyn ExecutionPlan>,
    readers: usize,
    /// Per partition, the computation once some reader has started it. A shared future
    /// goes on when any reader polls it, and is not dropped with the reader that started
    /// it, so a partition of the input runs exactly once.
    partitions: Vec<Mutex<Option<Shared<BoxFuture<'static, Computed>>>>>,
}

impl SharedExec {
    fn new(input: Arc<dyn ExecutionPlan>, readers: usize) -> Self {
        let count = input.properties().output_partitioning().partition_count();
        SharedExec {
            input,
            readers,
            partitions: (0..count).map(|_| Mutex::new(None)).collect(),
        }
    }
}

impl std::fmt::Debug for SharedExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedExec")
            .field("input", &self.input)
            .field("readers", &self.readers)
            .finish_non_exhaustive()
    }
}

impl DisplayAs for SharedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "SharedExec: readers={}", self.readers)
    }
}

impl ExecutionPlan for SharedExec {
    fn name(&self) -> &str {
        "SharedExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    /// A new input is no longer the one the other readers read: the result computes
    /// its own.
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.into_iter().next() {
            Some(input) if Arc::ptr_eq(&input, &self.input) => Ok(self),
            Some(input) => Ok(Arc::new(SharedExec::new(input, 1))),
            None => Err(DataFusionError::Internal(
                "SharedExec needs its input".to_string(),
            )),
        }
    }

    /// Run again (in a recursive query), each reader computes afresh.
    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(SharedExec::new(
            Arc::clone(&self.input),
            self.readers,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let slot = self.partitions.get(partition).ok_or_else(|| {
            DataFusionError::Internal(format!("SharedExec has no partition {partition}"))
        })?;
        let computed = {
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            match slot.as_ref() {
                Some(computed) => computed.clone(),
                None => {
                    let input = self.input.execute(partition, Arc::clone(&context))?;
                    let reservation = MemoryConsumer::new(format!("SharedExec[{partition}]"))
                        .register(context.memory_pool());
                    let computed = keep(input, reservation).boxed().shared();
                    *slot = Some(computed.clone());
                    computed
                }
            }
        };
        let batches = futures::stream::once(computed).flat_map(|computed| {
            let batches: Vec<Result<RecordBatch>> = match computed {
                Ok(kept) => kept.batches.iter().cloned().map(Ok).collect(),
                Err(e) => vec![Err(DataFusionError::Shared(e))],
            };
            futures::stream::iter(batches)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            batches,
        )))
    }
}

async fn keep(mut input: SendableRecordBatchStream, reservation: MemoryReservation) -> Computed {
    let mut batches = Vec::new();
    while let Some(batch) = input.next().await {
        let batch = batch.map_err(Arc::new)?;
        reservation
            .try_grow(batch.get_array_memory_size())
            .map_err(Arc::new)?;
        batches.push(batch);
    }
    Ok(Arc::new(Kept {
        batches,
        _reservation: reservation,
    }))
}
