//! Nearest-neighbour and full-text top-k queries answered by the table's own search.
//!
//! `SELECT … FROM t WHERE … ORDER BY cosine_distance(v, ARRAY[…]) LIMIT k` sorts every row
//! the filters keep by its distance. Where the table can search itself (a Lance table whose
//! column holds vectors of one length), the scan is asked instead for the `k` nearest rows
//! among those its filters keep, through the index built for the metric or by reading every
//! vector: a filter carrying the search travels with the scan's filters to the table. The
//! sort stays above it and orders those `k` rows by the exact distance, so the answer has
//! the query's order whichever way the table found them; where the table cannot search so
//! after all, it scans, and the sort finds the rows as before.
//!
//! The order must be the metric's nearest first: ascending `cosine_distance` and
//! `euclidean_distance`, descending `cosine_similarity` and `dot_product`; one operand a
//! column of the scan, the other a constant vector (`embed('…')` of a constant is one, once
//! folded). Every condition between the sort and the scan must be one the scan applies
//! (pushed into it), so that the search filters before it picks (Lance's pre-filter) and `k`
//! rows come back whenever `k` rows match. A column mask is an expression over the column,
//! so a masked vector is never searched by its stored value; a row filter is a condition
//! like the others.
//!
//! `"$text_score"(column, 'words')` descending asks for the best matches of the words, which a
//! Lance table with a text index finds with its index (BM25); the rows' scores are read back
//! by every `"$text_score"` of those words in the plan.

use std::sync::Arc;

use aichemy_tables::search::{search_filter, Metric, Search, SearchOptions, TextScores};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result, ScalarValue};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, Filter, LogicalPlan, Projection, SubqueryAlias, TableScan};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::functions::search::{SEARCH_OPTIONS, TEXT_SCORE};

#[derive(Debug, Default)]
pub(crate) struct SearchThroughIndexes;

impl OptimizerRule for SearchThroughIndexes {
    fn name(&self) -> &str {
        "search_through_indexes"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        None
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let mut texts: Vec<(String, String, Arc<TextScores>)> = Vec::new();
        let rewritten = plan.transform_down(|node| {
            let LogicalPlan::Sort(sort) = &node else {
                return Ok(Transformed::no(node));
            };
            let (Some(k), [order]) = (sort.fetch, sort.expr.as_slice()) else {
                return Ok(Transformed::no(node));
            };
            let mut walk = Walk {
                k,
                ascending: order.asc,
                conditions: Vec::new(),
                text: None,
            };
            match walk.down(&sort.input, order.expr.clone().unalias_nested().data) {
                Some(input) => {
                    if let Some(text) = walk.text {
                        texts.push(text);
                    }
                    let mut sort = sort.clone();
                    sort.input = Arc::new(input);
                    Ok(Transformed::yes(LogicalPlan::Sort(sort)))
                }
                None => Ok(Transformed::no(node)),
            }
        })?;
        if texts.is_empty() {
            return Ok(rewritten);
        }
        // Every `"$text_score"` of a searched text reads the scores the search recorded.
        rewritten
            .data
            .transform_down(|node| {
                node.map_expressions(|expr| {
                    expr.transform(|e| match text_score(&e) {
                        Some((column, text, None)) => {
                            match texts.iter().find(|(c, t, _)| *c == column && *t == text) {
                                Some((_, _, scores)) => {
                                    let Expr::ScalarFunction(call) = &e else {
                                        return Ok(Transformed::no(e));
                                    };
                                    let bound =
                                        crate::functions::search::text_score_with(scores.clone());
                                    Ok(Transformed::yes(bound.call(call.args.clone())))
                                }
                                None => Ok(Transformed::no(e)),
                            }
                        }
                        _ => Ok(Transformed::no(e)),
                    })
                })
            })
            .map(|t| Transformed::yes(t.data))
    }
}

/// The walk from a top-k sort down to the scan it orders.
struct Walk {
    k: usize,
    ascending: bool,
    /// The conditions met on the way, in the terms of the node being walked.
    conditions: Vec<Expr>,
    /// A text search made: its column, words and where its scores go.
    text: Option<(String, String, Arc<TextScores>)>,
}

impl Walk {
    /// `plan` with its scan asked for the search `order` (in `plan`'s output's terms)
    /// describes; `None` when the way down or the order is not one this rule reads.
    fn down(&mut self, plan: &LogicalPlan, order: Expr) -> Option<LogicalPlan> {
        match plan {
            LogicalPlan::Projection(projection) => {
                let order = through_projection(order, projection)?;
                self.conditions = std::mem::take(&mut self.conditions)
                    .into_iter()
                    .map(|c| through_projection(c, projection))
                    .collect::<Option<_>>()?;
                let input = self.down(&projection.input, order)?;
                Projection::try_new_with_schema(
                    projection.expr.clone(),
                    Arc::new(input),
                    projection.schema.clone(),
                )
                .ok()
                .map(LogicalPlan::Projection)
            }
            LogicalPlan::Filter(filter) => {
                self.conditions
                    .extend(split_conjunction(&filter.predicate).into_iter().cloned());
                let input = self.down(&filter.input, order)?;
                Filter::try_new(filter.predicate.clone(), Arc::new(input))
                    .ok()
                    .map(LogicalPlan::Filter)
            }
            LogicalPlan::SubqueryAlias(alias) => {
                let order = through_alias(order, alias)?;
                self.conditions = std::mem::take(&mut self.conditions)
                    .into_iter()
                    .map(|c| through_alias(c, alias))
                    .collect::<Option<_>>()?;
                let input = self.down(&alias.input, order)?;
                SubqueryAlias::try_new(Arc::new(input), alias.alias.clone())
                    .ok()
                    .map(LogicalPlan::SubqueryAlias)
            }
            LogicalPlan::TableScan(scan) => self.at_scan(scan, order).map(LogicalPlan::TableScan),
            _ => None,
        }
    }

    fn at_scan(&mut self, scan: &TableScan, order: Expr) -> Option<TableScan> {
        if scan.fetch.is_some()
            || scan
                .filters
                .iter()
                .any(aichemy_tables::search::is_search_filter)
        {
            return None;
        }
        let (search, scores) = self.search(&order)?;
        if !scan
            .projected_schema
            .fields()
            .iter()
            .any(|f| f.name() == search.column())
        {
            return None;
        }
        // A text score is the search's own condition: its rows all match.
        let pushed: Vec<Expr> = scan.filters.iter().map(unqualified).collect();
        let all_pushed = self
            .conditions
            .iter()
            .filter(|c| !mentions_text_score(c))
            .all(|c| pushed.contains(&unqualified(c)));
        if !all_pushed {
            return None;
        }
        let provider = source_as_provider(&scan.source).ok()?;
        if !aichemy_tables::search::can_search(provider.as_ref(), &search) {
            return None;
        }
        let mut scan = scan.clone();
        scan.filters.retain(|f| !mentions_text_score(f));
        scan.filters.push(search_filter(search, scores));
        Some(scan)
    }

    /// The search an order (in the scan's terms) asks for.
    fn search(&mut self, order: &Expr) -> Option<(Search, Option<Arc<TextScores>>)> {
        let (distance, options) = match order {
            Expr::ScalarFunction(call) if call.func.name() == SEARCH_OPTIONS => {
                (call.args.first()?, search_options(&call.args[1..])?)
            }
            other => (other, SearchOptions::default()),
        };
        if let Some((column, text, _)) = text_score(distance) {
            if self.ascending {
                return None;
            }
            let scores = Arc::new(TextScores::default());
            self.text = Some((column.clone(), text.clone(), scores.clone()));
            let search = Search::Text {
                column,
                text,
                k: self.k,
            };
            return Some((search, Some(scores)));
        }
        let Expr::ScalarFunction(call) = distance else {
            return None;
        };
        let (metric, nearest_first_ascending) = match call.func.name() {
            "cosine_distance" => (Metric::Cosine, true),
            "cosine_similarity" => (Metric::Cosine, false),
            "euclidean_distance" => (Metric::L2, true),
            "dot_product" => (Metric::Dot, false),
            _ => return None,
        };
        if self.ascending != nearest_first_ascending {
            return None;
        }
        let (column, vector) = match call.args.as_slice() {
            [Expr::Column(column), constant] | [constant, Expr::Column(column)] => {
                (column, constant_vector(constant)?)
            }
            _ => return None,
        };
        let search = Search::Nearest {
            column: column.name.clone(),
            vector,
            metric,
            k: self.k,
            options,
        };
        Some((search, None))
    }
}

/// `expr` over a projection's output, rewritten over its input.
fn through_projection(expr: Expr, projection: &Projection) -> Option<Expr> {
    expr.transform(|e| match &e {
        Expr::Column(column) => {
            let i = projection.schema.index_of_column(column)?;
            Ok(Transformed::yes(projection.expr[i].clone().unalias()))
        }
        _ => Ok(Transformed::no(e)),
    })
    .ok()
    .map(|t| t.data)
}

/// `expr` over an alias's output, rewritten over its input.
fn through_alias(expr: Expr, alias: &SubqueryAlias) -> Option<Expr> {
    expr.transform(|e| match &e {
        Expr::Column(column) => {
            let i = alias.schema.index_of_column(column)?;
            let (qualifier, field) = alias.input.schema().qualified_field(i);
            Ok(Transformed::yes(Expr::Column(Column::new(
                qualifier.cloned(),
                field.name(),
            ))))
        }
        _ => Ok(Transformed::no(e)),
    })
    .ok()
    .map(|t| t.data)
}

/// `expr` with its columns named without their relation.
fn unqualified(expr: &Expr) -> Expr {
    expr.clone()
        .transform(|e| match &e {
            Expr::Column(column) if column.relation.is_some() => Ok(Transformed::yes(
                Expr::Column(Column::new_unqualified(column.name.clone())),
            )),
            _ => Ok(Transformed::no(e)),
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| expr.clone())
}

fn mentions_text_score(expr: &Expr) -> bool {
    expr.exists(|e| Ok(text_score(e).is_some()))
        .unwrap_or(false)
}

/// `"$text_score"(column, 'words')`: the column, the words and the scores it is bound to.
fn text_score(expr: &Expr) -> Option<(String, String, Option<Arc<TextScores>>)> {
    let Expr::ScalarFunction(call) = expr else {
        return None;
    };
    if call.func.name() != TEXT_SCORE {
        return None;
    }
    let bound = crate::functions::search::bound_scores(&call.func);
    match call.args.as_slice() {
        [Expr::Column(column), Expr::Literal(ScalarValue::Utf8(Some(text)), _)]
        | [Expr::Column(column), Expr::Literal(ScalarValue::Utf8View(Some(text)), _)]
        | [Expr::Column(column), Expr::Literal(ScalarValue::LargeUtf8(Some(text)), _)] => {
            Some((column.name.clone(), text.clone(), bound))
        }
        _ => None,
    }
}

/// The numbers of a constant array without nulls.
fn constant_vector(expr: &Expr) -> Option<Vec<f64>> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    let values = match value {
        ScalarValue::List(list) if list.len() == 1 && list.is_valid(0) => list.value(0),
        ScalarValue::LargeList(list) if list.len() == 1 && list.is_valid(0) => list.value(0),
        ScalarValue::FixedSizeList(list) if list.len() == 1 && list.is_valid(0) => list.value(0),
        _ => return None,
    };
    if values.is_empty() || values.null_count() > 0 || !values.data_type().is_numeric() {
        return None;
    }
    let values = datafusion::arrow::compute::cast(&values, &DataType::Float64).ok()?;
    Some(values.as_primitive::<Float64Type>().values().to_vec())
}

/// The search knobs `"$search_options"(distance, nprobes, refine_factor, ef, exact)` gives.
fn search_options(args: &[Expr]) -> Option<SearchOptions> {
    let count = |expr: &Expr| -> Option<Option<u64>> {
        match expr {
            Expr::Literal(value, _) if value.is_null() => Some(None),
            Expr::Literal(value, _) => {
                let n = value.cast_to(&DataType::UInt64).ok()?;
                match n {
                    ScalarValue::UInt64(Some(n)) => Some(Some(n)),
                    _ => None,
                }
            }
            _ => None,
        }
    };
    let [nprobes, refine, ef, exact] = args else {
        return None;
    };
    let exact = match exact {
        Expr::Literal(ScalarValue::Boolean(b), _) => b.unwrap_or(false),
        _ => return None,
    };
    Some(SearchOptions {
        nprobes: count(nprobes)?.map(|n| n as usize),
        refine_factor: count(refine)?.map(|n| n as u32),
        ef: count(ef)?.map(|n| n as usize),
        exact,
    })
}
