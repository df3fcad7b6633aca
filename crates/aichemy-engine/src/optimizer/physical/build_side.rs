//! Hash joins whose build side is small next to their probe side build one table.
//!
//! DataFusion's `join_selection` builds a join's table once for all partitions
//! (`CollectLeft`) only when the build side is below a fixed size (1 MB or 128 K rows);
//! above it both sides are repartitioned by their keys and each partition builds its
//! own table. When the probe side is many times larger, that hashes and moves every
//! probe row to spare building a small table on one thread: TPC-H q5 repartitions 60 M
//! lineitem rows to join 2.3 M orders.
//!
//! This physical rule, run after `join_selection`, turns a partitioned hash join into
//! one that collects its build side when the estimated build rows times
//! [`PROBE_TO_BUILD`] are at most the estimated probe rows and the build side is at most
//! [`MAX_BUILD_ROWS`]. Joins without row estimates stay as they are.
//!
//! The estimates are DataFusion's but for inner joins on several keys, which DataFusion
//! estimates by the distinct values of their last key alone: TPC-H q9's part-supplier
//! ⋈ lines on (part, supplier) comes out at 48 M rows, four times the lines, though
//! every line meets one part-supplier. Here such a join is estimated on all its keys
//! (a side's distinct keys: the product of each key's, at most its rows), and the plans
//! above it by as much more or less as it was; a join one of whose sides is so estimated
//! anew builds the side estimated smaller. In q9 the lines then build the table the
//! 15 M orders probe, instead of the orders building it.
//!
//! An aggregate's final stage is estimated at most at its group keys' distinct values
//! (DataFusion: its input rows). TPC-H q17's average quantity per part, over the lines of
//! 2 K parts, came out at 60 M rows, so the parts joined to it did not build the table
//! the 60 M lines probe, and the lines were repartitioned to meet them.

use std::sync::Arc;

use datafusion::common::{JoinType, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::ExecutionPlan;

use crate::optimizer::physical::node_rewrite::replace_each;

/// How many times more rows the probe side must have. Measured on TPC-H SF10 with two
/// threads: q5, q8, q9, q17 and q20 gain at ratios of 20 and more; q18's customer join
/// (estimated 10, its probe side far smaller in fact) lost.
const PROBE_TO_BUILD: usize = 16;

/// The most rows a collected build side may have: one thread builds its table.
const MAX_BUILD_ROWS: usize = 8 << 20;

#[derive(Debug, Default)]
pub(crate) struct CollectSmallBuildSides;

impl PhysicalOptimizerRule for CollectSmallBuildSides {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        replace_each(plan, |join: &HashJoinExec| {
            let (Some(build), Some(probe)) = (estimate(join.left())?, estimate(join.right())?)
            else {
                return Ok(None);
            };
            let swap = swaps(join, build, probe);
            let (build, probe) = if swap { (probe, build) } else { (build, probe) };
            let mode = match join.partition_mode() {
                PartitionMode::Partitioned if small_build_side(build, probe) => {
                    PartitionMode::CollectLeft
                }
                mode => *mode,
            };
            if swap {
                // A projection above the swapped join keeps the order of its columns.
                return join.swap_inputs(mode).map(Some);
            }
            if mode == *join.partition_mode() {
                return Ok(None);
            }
            let join = join.builder().with_partition_mode(mode).build()?;
            Ok(Some(Arc::new(join) as Arc<dyn ExecutionPlan>))
        })
    }

    fn name(&self) -> &str {
        "collect_small_build_sides"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether a join's estimated build rows are few enough, absolutely and next to its
/// estimated probe rows.
fn small_build_side(build: Rows, probe: Rows) -> bool {
    let (build, probe) = (build.ours, probe.ours);
    build >= 1.0 && build <= MAX_BUILD_ROWS as f64 && build * PROBE_TO_BUILD as f64 <= probe
}

/// Whether `join`'s sides are to be swapped: when one of them is estimated anew (see the
/// module's text) and the probe side is then the smaller.
fn swaps(join: &HashJoinExec, build: Rows, probe: Rows) -> bool {
    *join.join_type() == JoinType::Inner
        && !join.null_aware
        && (build.anew() || probe.anew())
        && probe.ours < build.ours
}

/// The rows DataFusion estimates for a plan, and ours.
#[derive(Debug, Clone, Copy)]
struct Rows {
    theirs: f64,
    ours: f64,
}

impl Rows {
    /// Whether ours differ from DataFusion's.
    fn anew(&self) -> bool {
        (self.ours - self.theirs).abs() > self.theirs * 0.01
    }
}

/// The rows `plan` is estimated to give, when DataFusion estimates them.
fn estimate(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Rows>> {
    let Some(&theirs) = plan.partition_statistics(None)?.num_rows.get_value() else {
        return Ok(None);
    };
    let theirs = theirs as f64;
    if let Some(join) = plan.as_any().downcast_ref::<HashJoinExec>() {
        if let Some(ours) = on_all_keys(join)? {
            return Ok(Some(Rows { theirs, ours }));
        }
    }
    let mut factor = 1.0;
    for child in plan.children() {
        if let Some(rows) = estimate(child)? {
            if rows.theirs > 0.0 {
                factor *= rows.ours / rows.theirs;
            }
        }
    }
    let mut ours = theirs * factor;
    if let Some(aggregate) = plan.as_any().downcast_ref::<AggregateExec>() {
        if let Some(groups) = at_most_groups(aggregate)? {
            ours = ours.min(groups);
        }
    }
    Ok(Some(Rows { theirs, ours }))
}

/// At most how many rows an aggregate's final stage gives: one per distinct value of its
/// group keys in its input (DataFusion: one per input row). TPC-H q17 averages the lines
/// of the parts a semi join kept, by part: 2 M parts at most, not the 60 M lines.
fn at_most_groups(aggregate: &AggregateExec) -> Result<Option<f64>> {
    let group_by = aggregate.group_expr();
    if *aggregate.mode() == AggregateMode::Partial
        || !group_by.is_single()
        || group_by.expr().is_empty()
    {
        return Ok(None);
    }
    let keys: Vec<_> = group_by.expr().iter().map(|(key, _)| key.clone()).collect();
    Ok(Some(distinct_keys(
        aggregate.input(),
        &keys,
        f64::INFINITY,
    )?))
}

/// The rows of an inner join on several keys and no other condition: the product of
/// its sides' rows over the larger side's distinct keys.
fn on_all_keys(join: &HashJoinExec) -> Result<Option<f64>> {
    if *join.join_type() != JoinType::Inner || join.on().len() < 2 || join.filter().is_some() {
        return Ok(None);
    }
    let (Some(left), Some(right)) = (estimate(join.left())?, estimate(join.right())?) else {
        return Ok(None);
    };
    let (left_keys, right_keys): (Vec<_>, Vec<_>) = join.on().iter().cloned().unzip();
    let left_distinct = distinct_keys(join.left(), &left_keys, left.ours)?;
    let right_distinct = distinct_keys(join.right(), &right_keys, right.ours)?;
    Ok(Some(
        left.ours * right.ours / left_distinct.max(right_distinct).max(1.0),
    ))
}

/// The distinct values of `keys` together on a side of `rows` rows: the product of each
/// key's (from its statistics, or its range of integers), at most `rows`. A key of
/// unknown distinct values may take one per row.
fn distinct_keys(
    side: &Arc<dyn ExecutionPlan>,
    keys: &[Arc<dyn PhysicalExpr>],
    rows: f64,
) -> Result<f64> {
    let statistics = side.partition_statistics(None)?;
    let mut product = 1.0_f64;
    for key in keys {
        let distinct = key
            .as_any()
            .downcast_ref::<Column>()
            .and_then(|column| statistics.column_statistics.get(column.index()))
            .and_then(|column| match column.distinct_count.get_value() {
                Some(&count) => Some(count as f64),
                None => {
                    let (min, max) = (column.min_value.get_value()?, column.max_value.get_value()?);
                    let interval = Interval::try_new(min.clone(), max.clone()).ok()?;
                    interval.cardinality().map(|count| count as f64)
                }
            });
        product *= distinct.unwrap_or(rows);
    }
    Ok(product.min(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::NullEquality;
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::logical_expr::JoinType;
    use datafusion::physical_expr::expressions::Column;

    /// A one-column table of `rows` rows, with exact statistics.
    fn table(name: &str, rows: i32) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Int32, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int32Array::from_iter_values(0..rows))],
        )
        .unwrap();
        MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None).unwrap()
    }

    fn mode_after_rule(build: i32, probe: i32) -> PartitionMode {
        let join = HashJoinExec::try_new(
            table("b", build),
            table("p", probe),
            vec![(
                Arc::new(Column::new("b", 0)) as _,
                Arc::new(Column::new("p", 0)) as _,
            )],
            None,
            &JoinType::Inner,
            None,
            PartitionMode::Partitioned,
            NullEquality::NullEqualsNothing,
            false,
        )
        .unwrap();
        let plan = CollectSmallBuildSides
            .optimize(Arc::new(join), &ConfigOptions::new())
            .unwrap();
        *plan
            .as_any()
            .downcast_ref::<HashJoinExec>()
            .unwrap()
            .partition_mode()
    }

    #[test]
    fn a_build_side_sixteen_times_smaller_is_collected() {
        assert_eq!(mode_after_rule(100, 1600), PartitionMode::CollectLeft);
        assert_eq!(mode_after_rule(100, 1599), PartitionMode::Partitioned);
        assert_eq!(mode_after_rule(1000, 1600), PartitionMode::Partitioned);
    }
}
