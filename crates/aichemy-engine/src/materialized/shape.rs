//! Which materialized views refresh from their sources' changes. A definition of inner
//! joins, filters and projections of tables ([`Shape::Rows`]) changes row by row: the
//! rows its sources gained give the rows it gains, and likewise for rows lost. One
//! `GROUP BY` over such rows whose outputs are the grouping keys and `count`, `sum`,
//! `avg`, `min` or `max` of one value ([`Shape::Aggregate`]) changes group by group: the
//! storage table keeps, beside the visible columns, each group's row count and, for `sum`
//! and `avg`, the count (and sum) of non-null values, from which a group's new values
//! follow without reading its other rows (`min`/`max` of a group that lost rows are
//! computed again for that group). Anything else is [`Shape::Full`]: every refresh runs the
//! whole definition.

use datafusion::common::tree_node::TreeNode;
use datafusion::logical_expr::{JoinType, LogicalPlan, Volatility};
use datafusion::sql::sqlparser::ast::{
    self, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident, Query, SelectItem,
    SetExpr, TableFactor,
};

use crate::error::Result;
use aichemy_tables::ColumnSpec;

/// The hidden column counting each group's rows.
pub(crate) const ROWS_COLUMN: &str = "_aichemy_rows";

/// How a materialized view's rows follow from its sources' rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    Rows,
    Aggregate(Aggregate),
    /// Why only a full refresh can renew it.
    Full(String),
}

/// A `GROUP BY` view: what each output column is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Aggregate {
    /// The grouping expressions, each with the output column that shows it.
    pub keys: Vec<(ast::Expr, usize)>,
    pub outputs: Vec<Output>,
}

/// One output column of a `GROUP BY` view.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Output {
    /// The grouping key at this index of `keys`.
    Key(usize),
    /// An aggregate function of one value (`None` for `count(*)`).
    Function(Function, Option<Box<ast::Expr>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl Aggregate {
    pub(crate) fn has_min_or_max(&self) -> bool {
        self.outputs
            .iter()
            .any(|o| matches!(o, Output::Function(Function::Min | Function::Max, _)))
    }
}

/// The hidden column counting output `i`'s non-null values.
pub(crate) fn count_column(i: usize) -> String {
    format!("_aichemy_count_{i}")
}

/// The hidden column summing output `i`'s values (for `avg`).
pub(crate) fn sum_column(i: usize) -> String {
    format!("_aichemy_sum_{i}")
}

impl Shape {
    /// The shape of the definition `query`, planned as `plan`.
    pub(crate) fn of(query: &Query, plan: &LogicalPlan) -> Shape {
        match aggregates_in(plan) {
            Err(why) => Shape::Full(why),
            Ok(0) => Shape::Rows,
            Ok(1) => match aggregate_of(query) {
                Ok(aggregate) => Shape::Aggregate(aggregate),
                Err(why) => Shape::Full(why),
            },
            Ok(_) => Shape::Full("it aggregates more than once".into()),
        }
    }

    /// The definition with the state columns after its own (for `GROUP BY` views).
    pub(crate) fn augmented(&self, query: &Query) -> Query {
        let Shape::Aggregate(aggregate) = self else {
            return query.clone();
        };
        let mut query = query.clone();
        let SetExpr::Select(select) = query.body.as_mut() else {
            return query;
        };
        let call = |name: &str, arg: Option<&ast::Expr>, alias: String| SelectItem::ExprWithAlias {
            expr: function_call(name, arg),
            alias: Ident::with_quote('"', alias),
        };
        select
            .projection
            .push(call("count", None, ROWS_COLUMN.to_string()));
        for (i, output) in aggregate.outputs.iter().enumerate() {
            if let Output::Function(function @ (Function::Sum | Function::Avg), arg) = output {
                select
                    .projection
                    .push(call("count", arg.as_deref(), count_column(i)));
                if *function == Function::Avg {
                    select
                        .projection
                        .push(call("sum", arg.as_deref(), sum_column(i)));
                }
            }
        }
        query
    }

    /// The definition's rows before grouping: each grouping key as `aichemy_k_<j>`, each
    /// aggregated value as `aichemy_a_<i>` (for `GROUP BY` views; the definition itself
    /// otherwise).
    pub(crate) fn ungrouped(&self, query: &Query) -> Query {
        let Shape::Aggregate(aggregate) = self else {
            return query.clone();
        };
        let mut query = query.clone();
        query.order_by = None;
        let SetExpr::Select(select) = query.body.as_mut() else {
            return query;
        };
        let mut projection = Vec::new();
        for (j, (key, _)) in aggregate.keys.iter().enumerate() {
            projection.push(SelectItem::ExprWithAlias {
                expr: key.clone(),
                alias: Ident::new(format!("aichemy_k_{j}")),
            });
        }
        for (i, output) in aggregate.outputs.iter().enumerate() {
            if let Output::Function(_, Some(arg)) = output {
                projection.push(SelectItem::ExprWithAlias {
                    expr: arg.as_ref().clone(),
                    alias: Ident::new(format!("aichemy_a_{i}")),
                });
            }
        }
        // A view of only `count(*)` without keys still needs a column per row.
        if projection.is_empty() {
            projection.push(SelectItem::ExprWithAlias {
                expr: ast::Expr::value(ast::Value::Number("1".into(), false)),
                alias: Ident::new("aichemy_one"),
            });
        }
        select.projection = projection;
        select.group_by = GroupByExpr::Expressions(Vec::new(), Vec::new());
        query
    }

    /// The storage table's columns after the visible ones: the types the augmented
    /// definition's plan gives them.
    pub(crate) fn state_columns(
        &self,
        augmented: &LogicalPlan,
        visible: usize,
    ) -> Result<Vec<ColumnSpec>> {
        augmented
            .schema()
            .fields()
            .iter()
            .skip(visible)
            .map(|f| crate::statement::ddl::column_of(f.name(), f.data_type()))
            .collect()
    }
}

fn function_call(name: &str, arg: Option<&ast::Expr>) -> ast::Expr {
    let arg = match arg {
        Some(arg) => FunctionArgExpr::Expr(arg.clone()),
        None => FunctionArgExpr::Wildcard,
    };
    ast::Expr::Function(ast::Function {
        name: ast::ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(arg)],
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// How many aggregations the plan holds; why it cannot change row by row when some node
/// is neither a table, a projection, a filter, an inner join nor an aggregation under
/// only projections and sorts.
fn aggregates_in(plan: &LogicalPlan) -> std::result::Result<usize, String> {
    let mut aggregates = 0;
    let mut below_aggregate = false;
    let mut why: Option<String> = None;
    check_node(plan, &mut aggregates, &mut below_aggregate, &mut why);
    match why {
        Some(why) => Err(why),
        None => Ok(aggregates),
    }
}

fn check_node(
    plan: &LogicalPlan,
    aggregates: &mut usize,
    below_aggregate: &mut bool,
    why: &mut Option<String>,
) {
    if why.is_some() {
        return;
    }
    let not_fixed = plan.expressions().iter().any(|e| {
        e.exists(|e| {
            Ok(match e {
                datafusion::logical_expr::Expr::ScalarFunction(f) => {
                    f.func.signature().volatility != Volatility::Immutable
                }
                datafusion::logical_expr::Expr::ScalarSubquery(_)
                | datafusion::logical_expr::Expr::Exists(_)
                | datafusion::logical_expr::Expr::InSubquery(_)
                | datafusion::logical_expr::Expr::WindowFunction(_) => true,
                _ => false,
            })
        })
        .unwrap_or(true)
    });
    if not_fixed {
        *why = Some("it uses a subquery, a window or a function whose value is not fixed".into());
        return;
    }
    match plan {
        LogicalPlan::Projection(_) | LogicalPlan::Sort(_) | LogicalPlan::SubqueryAlias(_) => {}
        LogicalPlan::Filter(_) | LogicalPlan::TableScan(_) => *below_aggregate = true,
        LogicalPlan::Join(join) if join.join_type == JoinType::Inner => *below_aggregate = true,
        LogicalPlan::Aggregate(_) if !*below_aggregate => {
            *aggregates += 1;
            *below_aggregate = true;
        }
        LogicalPlan::Join(join) => {
            *why = Some(format!("it uses a {} join", join.join_type));
            return;
        }
        other => {
            *why = Some(format!("it uses {}", other.display()));
            return;
        }
    }
    for input in plan.inputs() {
        let mut below = *below_aggregate;
        check_node(input, aggregates, &mut below, why);
    }
}

/// The grouping keys and aggregate functions of a `SELECT … GROUP BY …` over tables.
fn aggregate_of(query: &Query) -> std::result::Result<Aggregate, String> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err("it is not one SELECT".into());
    };
    if query.with.is_some() || query.limit_clause.is_some() || query.fetch.is_some() {
        return Err("it has WITH, LIMIT or FETCH".into());
    }
    if select.having.is_some() || select.distinct.is_some() {
        return Err("it has HAVING or DISTINCT".into());
    }
    for from in &select.from {
        if !matches!(from.relation, TableFactor::Table { .. })
            || from
                .joins
                .iter()
                .any(|j| !matches!(j.relation, TableFactor::Table { .. }))
        {
            return Err("it reads something other than tables".into());
        }
    }
    let GroupByExpr::Expressions(group_by, modifiers) = &select.group_by else {
        return Err("it groups by ALL".into());
    };
    if !modifiers.is_empty() {
        return Err("it groups with ROLLUP, CUBE or GROUPING SETS".into());
    }
    let items: Vec<(&ast::Expr, Option<&Ident>)> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Ok((e, None)),
            SelectItem::ExprWithAlias { expr, alias } => Ok((expr, Some(alias))),
            _ => Err("it selects *".to_string()),
        })
        .collect::<std::result::Result<_, _>>()?;
    // Each grouping expression: written out, an output's position, or an output's alias.
    let mut keys: Vec<(ast::Expr, usize)> = Vec::new();
    for expr in group_by {
        let position = match expr {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => n.parse::<usize>().ok().and_then(|n| n.checked_sub(1)),
                _ => None,
            },
            ast::Expr::Identifier(name) => items.iter().position(|(e, alias)| {
                alias.is_some_and(|a| a.value.eq_ignore_ascii_case(&name.value))
                    || matches!(e, ast::Expr::Identifier(i) if i.value.eq_ignore_ascii_case(&name.value))
            }),
            _ => None,
        }
        .or_else(|| items.iter().position(|(e, _)| *e == expr));
        let Some(position) = position.filter(|p| *p < items.len()) else {
            return Err(format!("its grouping key {expr} is not one of its columns"));
        };
        keys.push((items[position].0.clone(), position));
    }
    let mut outputs = Vec::new();
    for (i, (expr, _)) in items.iter().enumerate() {
        if let Some(key) = keys.iter().position(|(_, at)| *at == i) {
            outputs.push(Output::Key(key));
            continue;
        }
        outputs.push(aggregate_call(expr).ok_or_else(|| {
            format!("its column {expr} is neither a grouping key nor count, sum, avg, min or max of one value")
        })?);
    }
    Ok(Aggregate { keys, outputs })
}

/// `count(*)`, `count(x)`, `sum(x)`, `avg(x)`, `min(x)`, `max(x)` without DISTINCT,
/// FILTER or OVER.
fn aggregate_call(expr: &ast::Expr) -> Option<Output> {
    let ast::Expr::Function(call) = expr else {
        return None;
    };
    if call.filter.is_some() || call.over.is_some() || !call.within_group.is_empty() {
        return None;
    }
    let [ast::ObjectNamePart::Identifier(name)] = call.name.0.as_slice() else {
        return None;
    };
    let function = match name.value.to_ascii_lowercase().as_str() {
        "count" => Function::Count,
        "sum" => Function::Sum,
        "avg" => Function::Avg,
        "min" => Function::Min,
        "max" => Function::Max,
        _ => return None,
    };
    let FunctionArguments::List(list) = &call.args else {
        return None;
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if function == Function::Count => {
            Some(Output::Function(function, None))
        }
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] => {
            Some(Output::Function(function, Some(Box::new(arg.clone()))))
        }
        _ => None,
    }
}
