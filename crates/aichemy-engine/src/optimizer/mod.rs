//! AIchemy's own optimizer rules, on DataFusion's logical plans and on its physical plans,
//! and the one place that lists them and orders them among DataFusion's.
//!
//! ARCHITECTURE.md lists every rule with its file and place in a table.

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::optimizer::{Analyzer, AnalyzerRule, Optimizer, OptimizerRule};
use datafusion::physical_optimizer::optimizer::{PhysicalOptimizer, PhysicalOptimizerRule};

pub(crate) mod logical;
pub(crate) mod physical;

/// `state` with the analyzer, logical and physical rules below in place of DataFusion's
/// own lists.
pub(crate) fn install(state: SessionStateBuilder) -> SessionStateBuilder {
    state
        .with_analyzer_rules(analyzer_rules())
        .with_optimizer_rules(logical_rules())
        .with_physical_optimizer_rules(physical_rules())
}

/// DataFusion's analyzer rules after ours: casts of JSON and to integers are rewritten
/// before anything coerces or folds them, and a lateral `UNNEST` becomes an unnest of the left side
/// before type coercion sees its outer references; `time ± interval` is computed on a day
/// before coercion makes it an interval. Integer constants are computed with
/// overflow checks once coercion has given both operands their type, sort keys with
/// subqueries move into a projection (whose subqueries DataFusion's rules turn into joins),
/// and the projected timestamps and times typed at the precision of their operands last.
fn analyzer_rules() -> Vec<Arc<dyn AnalyzerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> = vec![
        Arc::new(logical::casts::TrinoCasts::new()),
        Arc::new(logical::lateral_unnest::LateralUnnest),
        Arc::new(logical::time_arithmetic::TimeArithmetic),
    ];
    rules.extend(Analyzer::new().rules);
    rules.push(Arc::new(logical::checked_constants::CheckedConstants));
    rules.push(Arc::new(logical::order_subqueries::SubqueriesInOrderBy));
    rules.push(Arc::new(logical::precision::TemporalPrecision));
    rules
}

/// DataFusion's logical rules with ours.
///
/// [`JoinFilteredTablesFirst`](logical::join_order::JoinFilteredTablesFirst) comes right
/// after `eliminate_cross_join`: that rule rebuilds directly nested inner joins in the
/// written order, in every pass; running after it, ours has the last word, and the rules
/// after both push filters into the new joins and prune their columns. The others run
/// last, on plans DataFusion's rules have finished: joins and aggregates over one
/// PostgreSQL catalog move into that database first, then semi-joins and group filters
/// are pushed below the joins that remain, and last top-k sorts by a distance ask their
/// tables for a search.
fn logical_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules = Optimizer::new().rules;
    let at = rules
        .iter()
        .position(|rule| rule.name() == "eliminate_cross_join")
        .map_or(rules.len(), |at| at + 1);
    rules.insert(at, Arc::new(logical::join_order::JoinFilteredTablesFirst));
    rules.push(Arc::new(aichemy_federation::PushdownToPostgres));
    rules.push(Arc::new(logical::semi_join::PushSemiJoins));
    rules.push(Arc::new(logical::group_filter::FilterGroupsByJoinKeys));
    // Last: the top-k sorts and the filters pushed into their scans are in place.
    rules.push(Arc::new(logical::nearest::SearchThroughIndexes));
    rules
}

/// DataFusion's physical rules with ours: the choice of collected build sides right after
/// DataFusion's join selection; the others after all rules that rebuild plans, but before
/// dynamic filters are pushed into scans: a filter one reader's join fills in must stay
/// above the plan the readers share, and a rebuilt filter would lose the references those
/// filters keep.
fn physical_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|rule| rule.name() == "FilterPushdown(Post)")
        .unwrap_or(rules.len());
    // Sharing comes after the rules that rewrite plans: a rule rewriting the plan below a
    // shared one would split it. Bounding partial aggregates comes after it and leaves
    // shared plans alone (its node is not one sharing compares).
    let ours: [Arc<dyn PhysicalOptimizerRule + Send + Sync>; 7] = [
        Arc::new(physical::not_in::NotInAsFilter),
        Arc::new(physical::conjunct_order::CheapConditionsFirst),
        Arc::new(physical::decimal_arithmetic::WordSizedDecimalArithmetic),
        Arc::new(physical::integer_overflow::CheckedIntegerArithmetic),
        Arc::new(physical::view_group_keys::GroupOnStringViews),
        Arc::new(physical::shared_plan::ShareRepeatedAggregates),
        Arc::new(physical::partial_aggregate::BoundedPartialAggregates),
    ];
    rules.splice(at..at, ours);
    // Before the rules that add repartitions: a collected build side needs none.
    let after_selection = rules
        .iter()
        .position(|rule| rule.name() == "join_selection")
        .map_or(0, |at| at + 1);
    rules.insert(
        after_selection,
        Arc::new(physical::build_side::CollectSmallBuildSides),
    );
    rules
}
