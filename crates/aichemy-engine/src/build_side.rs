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

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::ExecutionPlan;

use crate::node_rewrite::replace_each;

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
            if *join.partition_mode() != PartitionMode::Partitioned || !small_build_side(join)? {
                return Ok(None);
            }
            let join = join
                .builder()
                .with_partition_mode(PartitionMode::CollectLeft)
                .build()?;
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

/// Whether `join`'s estimated build rows are few enough, absolutely and next to its
/// estimated probe rows.
fn small_build_side(join: &HashJoinExec) -> Result<bool> {
    let rows = |side: &Arc<dyn ExecutionPlan>| -> Result<Option<usize>> {
        Ok(side
            .partition_statistics(None)?
            .num_rows
            .get_value()
            .copied())
    };
    let (Some(build), Some(probe)) = (rows(join.left())?, rows(join.right())?) else {
        return Ok(false);
    };
    Ok(build > 0 && build <= MAX_BUILD_ROWS && build.saturating_mul(PROBE_TO_BUILD) <= probe)
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
