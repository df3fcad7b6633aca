//! Column lineage of a logical plan: for each column a plan gives, the columns of the
//! tables it is computed from and how (OpenLineage's direct lineage: the value copied, or
//! computed, or aggregated), and the columns that decide which rows it holds (indirect:
//! filters, join keys, groups, sorts, windows).
//!
//! The plan is walked from its scans up. A scan's columns are their table's; a view's are
//! those of its query, whose names resolve in the view's own catalog and schema. Each node
//! passes its inputs' lineage on through its expressions; a node this walk does not know
//! gives each of its columns the input column of the same name, else every input column.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, Subquery};
use datafusion::sql::TableReference;

use crate::catalog::lakehouse::QualifiedName;

/// How a column's value comes from a source column (OpenLineage's direct subtypes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direct {
    /// The same value.
    Identity,
    /// A value computed from it.
    Transformation,
    /// A value computed from many rows of it.
    Aggregation,
}

impl Direct {
    pub fn name(self) -> &'static str {
        match self {
            Direct::Identity => "IDENTITY",
            Direct::Transformation => "TRANSFORMATION",
            Direct::Aggregation => "AGGREGATION",
        }
    }
}

/// How a source column decides which rows a write holds (OpenLineage's indirect
/// subtypes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Indirect {
    Filter,
    Join,
    GroupBy,
    Sort,
    Window,
    /// A CASE's conditions.
    Conditional,
}

impl Indirect {
    pub fn name(self) -> &'static str {
        match self {
            Indirect::Filter => "FILTER",
            Indirect::Join => "JOIN",
            Indirect::GroupBy => "GROUP_BY",
            Indirect::Sort => "SORT",
            Indirect::Window => "WINDOW",
            Indirect::Conditional => "CONDITIONAL",
        }
    }
}

/// One column of one table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceColumn {
    pub table: QualifiedName,
    pub column: String,
}

/// The source columns of one output column, each with the strongest way it derives.
pub type Origins = BTreeMap<SourceColumn, Direct>;

/// What a plan's walk found: each output column's origins, the indirect sources and every
/// table read.
#[derive(Debug, Default)]
pub struct PlanLineage {
    pub columns: Vec<Origins>,
    pub indirect: BTreeMap<SourceColumn, BTreeSet<Indirect>>,
    pub tables: BTreeSet<QualifiedName>,
}

/// Where a plan's relation names resolve: the catalog and schema of unqualified names, and
/// the names that stand for another table (a row-level statement's `$rows`).
pub struct Names<'a> {
    pub catalog: &'a str,
    pub schema: &'a str,
    pub aliases: &'a [(QualifiedName, QualifiedName)],
}

/// The lineage of `plan`'s output columns.
pub fn of_plan(plan: &LogicalPlan, names: &Names<'_>) -> PlanLineage {
    let mut walk = Walk {
        indirect: BTreeMap::new(),
        tables: BTreeSet::new(),
    };
    let columns = walk.plan(plan, names);
    PlanLineage {
        columns,
        indirect: walk.indirect,
        tables: walk.tables,
    }
}

struct Walk {
    indirect: BTreeMap<SourceColumn, BTreeSet<Indirect>>,
    tables: BTreeSet<QualifiedName>,
}

/// An input's schema and its columns' origins, to look columns up in.
struct Input<'a> {
    schema: &'a DFSchema,
    columns: &'a [Origins],
}

impl Walk {
    fn plan(&mut self, plan: &LogicalPlan, names: &Names<'_>) -> Vec<Origins> {
        match plan {
            LogicalPlan::TableScan(scan) => self.scan(scan, names),
            LogicalPlan::Projection(projection) => {
                let columns = self.plan(&projection.input, names);
                let input = [Input {
                    schema: projection.input.schema(),
                    columns: &columns,
                }];
                projection
                    .expr
                    .iter()
                    .map(|e| self.expr(e, &input, Direct::Transformation, names))
                    .collect()
            }
            LogicalPlan::Aggregate(aggregate) => {
                let columns = self.plan(&aggregate.input, names);
                let input = [Input {
                    schema: aggregate.input.schema(),
                    columns: &columns,
                }];
                let mut out: Vec<Origins> = Vec::new();
                for group in &aggregate.group_expr {
                    let origins = self.expr(group, &input, Direct::Transformation, names);
                    self.mark(&origins, Indirect::GroupBy);
                    // A grouping set gives one column per expression in it.
                    match group {
                        Expr::GroupingSet(set) => {
                            for e in set.distinct_expr() {
                                out.push(self.expr(e, &input, Direct::Transformation, names));
                            }
                        }
                        _ => out.push(origins),
                    }
                }
                for e in &aggregate.aggr_expr {
                    out.push(self.expr(e, &input, Direct::Aggregation, names));
                }
                fit(out, plan.schema().fields().len())
            }
            LogicalPlan::Window(window) => {
                let mut columns = self.plan(&window.input, names);
                let input = [Input {
                    schema: window.input.schema(),
                    columns: &columns,
                }];
                let mut added = Vec::new();
                for e in &window.window_expr {
                    if let Expr::WindowFunction(function) = unaliased(e) {
                        let params = &function.params;
                        for by in params
                            .partition_by
                            .iter()
                            .chain(params.order_by.iter().map(|s| &s.expr))
                        {
                            let origins = self.expr(by, &input, Direct::Transformation, names);
                            self.mark(&origins, Indirect::Window);
                        }
                    }
                    added.push(self.expr(e, &input, Direct::Aggregation, names));
                }
                columns.extend(added);
                columns
            }
            LogicalPlan::Filter(filter) => {
                let columns = self.plan(&filter.input, names);
                let input = [Input {
                    schema: filter.input.schema(),
                    columns: &columns,
                }];
                let origins = self.expr(&filter.predicate, &input, Direct::Transformation, names);
                self.mark(&origins, Indirect::Filter);
                columns
            }
            LogicalPlan::Sort(sort) => {
                let columns = self.plan(&sort.input, names);
                let input = [Input {
                    schema: sort.input.schema(),
                    columns: &columns,
                }];
                for by in &sort.expr {
                    let origins = self.expr(&by.expr, &input, Direct::Transformation, names);
                    self.mark(&origins, Indirect::Sort);
                }
                columns
            }
            LogicalPlan::Join(join) => {
                let left = self.plan(&join.left, names);
                let right = self.plan(&join.right, names);
                let inputs = [
                    Input {
                        schema: join.left.schema(),
                        columns: &left,
                    },
                    Input {
                        schema: join.right.schema(),
                        columns: &right,
                    },
                ];
                for (l, r) in &join.on {
                    for e in [l, r] {
                        let origins = self.expr(e, &inputs, Direct::Transformation, names);
                        self.mark(&origins, Indirect::Join);
                    }
                }
                if let Some(condition) = &join.filter {
                    let origins = self.expr(condition, &inputs, Direct::Transformation, names);
                    self.mark(&origins, Indirect::Join);
                }
                match join.join_type {
                    JoinType::LeftSemi | JoinType::LeftAnti => left,
                    JoinType::RightSemi | JoinType::RightAnti => right,
                    _ => by_name(plan.schema(), &inputs),
                }
            }
            LogicalPlan::Union(union) => {
                let mut out = vec![Origins::new(); plan.schema().fields().len()];
                for input in &union.inputs {
                    for (i, origins) in self.plan(input, names).into_iter().enumerate() {
                        if let Some(slot) = out.get_mut(i) {
                            merge(slot, origins, Direct::Identity);
                        }
                    }
                }
                out
            }
            LogicalPlan::Unnest(unnest) => {
                let columns = self.plan(&unnest.input, names);
                unnest
                    .dependency_indices
                    .iter()
                    .map(|&from| {
                        let mut origins = Origins::new();
                        if let Some(source) = columns.get(from) {
                            let unnested = unnest.exec_columns.iter().any(|c| {
                                unnest.input.schema().maybe_index_of_column(c) == Some(from)
                            });
                            let how = if unnested {
                                Direct::Transformation
                            } else {
                                Direct::Identity
                            };
                            merge(&mut origins, source.clone(), how);
                        }
                        origins
                    })
                    .collect()
            }
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {
                vec![Origins::new(); plan.schema().fields().len()]
            }
            LogicalPlan::Dml(dml) => self.plan(&dml.input, names),
            // One input with the same columns: passed on by position.
            LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Subquery(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Repartition(_)
            | LogicalPlan::Distinct(datafusion::logical_expr::Distinct::All(_)) => {
                let input = plan.inputs()[0];
                fit(self.plan(input, names), plan.schema().fields().len())
            }
            other => {
                let inputs: Vec<&LogicalPlan> = other.inputs();
                let lineages: Vec<Vec<Origins>> =
                    inputs.iter().map(|i| self.plan(i, names)).collect();
                let inputs: Vec<Input> = inputs
                    .iter()
                    .zip(&lineages)
                    .map(|(plan, columns)| Input {
                        schema: plan.schema(),
                        columns,
                    })
                    .collect();
                let mut all = Vec::new();
                let _ = other.apply_expressions(|e| {
                    all.push(self.expr(e, &inputs, Direct::Transformation, names));
                    Ok(TreeNodeRecursion::Continue)
                });
                for origins in &all {
                    self.mark(origins, Indirect::Filter);
                }
                by_name(other.schema(), &inputs)
            }
        }
    }

    /// A scan's columns: its table's, or its view's query's.
    fn scan(
        &mut self,
        scan: &datafusion::logical_expr::TableScan,
        names: &Names<'_>,
    ) -> Vec<Origins> {
        let table = resolve(&scan.table_name, names);
        let all: Vec<Origins> = match scan.source.get_logical_plan() {
            Some(view) => {
                let inner = Names {
                    catalog: &table.catalog,
                    schema: &table.schema,
                    aliases: &[],
                };
                self.plan(&view, &inner)
            }
            None => {
                self.tables.insert(table.clone());
                scan.source
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| {
                        Origins::from([(
                            SourceColumn {
                                table: table.clone(),
                                column: f.name().clone(),
                            },
                            Direct::Identity,
                        )])
                    })
                    .collect()
            }
        };
        let columns: Vec<Origins> = match &scan.projection {
            Some(indices) => indices
                .iter()
                .map(|&i| all.get(i).cloned().unwrap_or_default())
                .collect(),
            None => all.clone(),
        };
        // Filters pushed into the scan name the table's own columns.
        let schema = scan.source.schema();
        for filter in &scan.filters {
            for column in filter.column_refs() {
                if let Ok(i) = schema.index_of(&column.name) {
                    if let Some(origins) = all.get(i) {
                        let origins = origins.clone();
                        self.mark(&origins, Indirect::Filter);
                    }
                }
            }
        }
        columns
    }

    /// The origins of an expression's value over `inputs`: those of the columns it names
    /// and of the scalar subqueries in it; `how` where it is more than a column (a column,
    /// also cast to another type, is its value as is). The columns of other subqueries in
    /// it (IN, EXISTS, ANY) decide rows: indirect.
    fn expr(
        &mut self,
        expr: &Expr,
        inputs: &[Input<'_>],
        how: Direct,
        names: &Names<'_>,
    ) -> Origins {
        let mut origins = Origins::new();
        self.value_of(expr, inputs, how, &mut origins);
        let mut subqueries: Vec<(&Subquery, bool)> = Vec::new();
        let _ = expr.apply(|e| {
            match e {
                Expr::ScalarSubquery(s) => subqueries.push((s, true)),
                Expr::InSubquery(s) => subqueries.push((&s.subquery, false)),
                Expr::Exists(s) => subqueries.push((&s.subquery, false)),
                Expr::SetComparison(s) => subqueries.push((&s.subquery, false)),
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
        for (subquery, scalar) in subqueries {
            let columns = self.plan(&subquery.subquery, names);
            for found in columns {
                if scalar {
                    merge(&mut origins, found, how.max(Direct::Transformation));
                } else {
                    self.mark(&found, Indirect::Filter);
                }
            }
        }
        origins
    }

    /// Adds the origins of the columns `expr`'s value comes from to `out`. A CASE's value
    /// is one of its results, each a value of its own (a column as is); its conditions
    /// decide which, as indirect lineage.
    fn value_of(&mut self, expr: &Expr, inputs: &[Input<'_>], how: Direct, out: &mut Origins) {
        match unaliased(expr) {
            Expr::Column(column) => {
                if let Some(found) = lookup(inputs, column) {
                    merge(out, found.clone(), Direct::Identity);
                }
            }
            Expr::Case(case) => {
                let mut conditions: Vec<&Expr> = case.expr.iter().map(|e| &**e).collect();
                for (when, then) in &case.when_then_expr {
                    conditions.push(&**when);
                    self.value_of(then, inputs, how, out);
                }
                if let Some(otherwise) = &case.else_expr {
                    self.value_of(otherwise, inputs, how, out);
                }
                for condition in conditions {
                    for column in condition.column_refs() {
                        if let Some(found) = lookup(inputs, column) {
                            let found = found.clone();
                            self.mark(&found, Indirect::Conditional);
                        }
                    }
                }
            }
            other => {
                for column in other.column_refs() {
                    if let Some(found) = lookup(inputs, column) {
                        merge(out, found.clone(), how);
                    }
                }
            }
        }
    }

    fn mark(&mut self, origins: &Origins, how: Indirect) {
        for source in origins.keys() {
            self.indirect.entry(source.clone()).or_default().insert(how);
        }
    }
}

/// The table a scan names, completed with the names' catalog and schema; a version or
/// metadata suffix (`t$snapshots`, `t$version=…`) names its base table.
fn resolve(reference: &TableReference, names: &Names<'_>) -> QualifiedName {
    let (catalog, schema, table) = match reference {
        TableReference::Bare { table } => (names.catalog, names.schema, table.as_ref()),
        TableReference::Partial { schema, table } => {
            (names.catalog, schema.as_ref(), table.as_ref())
        }
        TableReference::Full {
            catalog,
            schema,
            table,
        } => (catalog.as_ref(), schema.as_ref(), table.as_ref()),
    };
    let name = QualifiedName {
        catalog: catalog.to_string(),
        schema: schema.to_string(),
        name: table.to_string(),
    };
    if let Some((_, to)) = names.aliases.iter().find(|(from, _)| *from == name) {
        return to.clone();
    }
    match table.split_once('$') {
        Some((base, _)) if !base.is_empty() => QualifiedName {
            name: base.to_string(),
            ..name
        },
        _ => name,
    }
}

/// An expression without its aliases and casts.
fn unaliased(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => unaliased(&alias.expr),
        Expr::Cast(cast) => unaliased(&cast.expr),
        Expr::TryCast(cast) => unaliased(&cast.expr),
        other => other,
    }
}

/// A column's origins in whichever input has it.
fn lookup<'a>(inputs: &'a [Input<'a>], column: &Column) -> Option<&'a Origins> {
    inputs.iter().find_map(|input| {
        input
            .schema
            .maybe_index_of_column(column)
            .and_then(|i| input.columns.get(i))
    })
}

/// Each column of `schema` with the origins of the input column of its name; one no input
/// has derives from every input column.
fn by_name(schema: &DFSchema, inputs: &[Input<'_>]) -> Vec<Origins> {
    (0..schema.fields().len())
        .map(|i| {
            let column = Column::from(schema.qualified_field(i));
            match lookup(inputs, &column) {
                Some(found) => found.clone(),
                None => {
                    let mut all = Origins::new();
                    for input in inputs {
                        for origins in input.columns {
                            merge(&mut all, origins.clone(), Direct::Transformation);
                        }
                    }
                    all
                }
            }
        })
        .collect()
}

/// `columns` cut or padded to `len`.
fn fit(mut columns: Vec<Origins>, len: usize) -> Vec<Origins> {
    columns.resize(len, Origins::new());
    columns
}

/// Adds `from` to `into`, each at least `how` and the strongest where both have it.
fn merge(into: &mut Origins, from: Origins, how: Direct) {
    for (source, found) in from {
        let how = found.max(how);
        let slot = into.entry(source).or_insert(how);
        *slot = (*slot).max(how);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::catalog::MemTable;
    use datafusion::datasource::ViewTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    fn table(columns: &[&str]) -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| Field::new(*c, DataType::Int64, true))
                .collect::<Vec<_>>(),
        ));
        Arc::new(MemTable::try_new(schema, vec![vec![]]).unwrap())
    }

    async fn context() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.register_table("t", table(&["a", "b", "c", "d"]))
            .unwrap();
        ctx.register_table("u", table(&["k", "b"])).unwrap();
        ctx.register_table("out", table(&["x", "y", "z"])).unwrap();
        let view = ctx
            .state()
            .create_logical_plan("SELECT a + b AS s, d FROM t WHERE c > 0")
            .await
            .unwrap();
        ctx.register_table("v", Arc::new(ViewTable::new(view, None)))
            .unwrap();
        ctx
    }

    /// Each output column's origins as `table.column:HOW`, and the indirect ones as
    /// `table.column:KIND`.
    async fn lineage(sql: &str) -> (Vec<Vec<String>>, Vec<String>) {
        let ctx = context().await;
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        let names = Names {
            catalog: "datafusion",
            schema: "public",
            aliases: &[],
        };
        let found = of_plan(&plan, &names);
        let columns = found
            .columns
            .iter()
            .map(|origins| {
                origins
                    .iter()
                    .map(|(s, how)| format!("{}.{}:{}", s.table.name, s.column, how.name()))
                    .collect()
            })
            .collect();
        let indirect = found
            .indirect
            .iter()
            .flat_map(|(s, kinds)| {
                kinds
                    .iter()
                    .map(move |k| format!("{}.{}:{}", s.table.name, s.column, k.name()))
            })
            .collect();
        (columns, indirect)
    }

    #[tokio::test]
    async fn an_insert_maps_copied_computed_and_filtering_columns() {
        let (columns, indirect) =
            lineage("INSERT INTO out SELECT a, b + c, 1 FROM t WHERE d > 0").await;
        assert_eq!(
            columns,
            vec![
                vec!["t.a:IDENTITY".to_string()],
                vec!["t.b:TRANSFORMATION".into(), "t.c:TRANSFORMATION".into()],
                vec![],
            ]
        );
        assert_eq!(indirect, ["t.d:FILTER"]);
    }

    #[tokio::test]
    async fn joins_and_groups_are_indirect_and_aggregates_aggregations() {
        let (columns, indirect) = lineage(
            "SELECT t.a, sum(u.b) AS total, count(*) FROM t JOIN u ON t.d = u.k GROUP BY t.a",
        )
        .await;
        assert_eq!(
            columns,
            vec![
                vec!["t.a:IDENTITY".to_string()],
                vec!["u.b:AGGREGATION".into()],
                vec![],
            ]
        );
        assert_eq!(indirect, ["t.a:GROUP_BY", "t.d:JOIN", "u.k:JOIN"]);
    }

    #[tokio::test]
    async fn unions_subqueries_and_views_reach_their_tables() {
        let (columns, _) =
            lineage("SELECT x FROM (SELECT a AS x FROM t UNION ALL SELECT b FROM u) AS s").await;
        assert_eq!(
            columns,
            vec![vec!["t.a:IDENTITY".to_string(), "u.b:IDENTITY".into()]]
        );

        let (columns, indirect) =
            lineage("SELECT a, (SELECT max(b) FROM u) FROM t WHERE a IN (SELECT k FROM u)").await;
        assert_eq!(columns[1], vec!["u.b:AGGREGATION".to_string()]);
        assert!(indirect.contains(&"u.k:FILTER".to_string()), "{indirect:?}");

        let (columns, indirect) = lineage("SELECT s, d FROM v").await;
        assert_eq!(
            columns,
            vec![
                vec![
                    "t.a:TRANSFORMATION".to_string(),
                    "t.b:TRANSFORMATION".into()
                ],
                vec!["t.d:IDENTITY".into()],
            ]
        );
        assert_eq!(indirect, ["t.c:FILTER"]);
    }

    #[tokio::test]
    async fn windows_and_sorts_decide_rows() {
        let (columns, indirect) =
            lineage("SELECT a, row_number() OVER (PARTITION BY b ORDER BY c) FROM t ORDER BY d")
                .await;
        assert_eq!(columns[0], vec!["t.a:IDENTITY".to_string()]);
        assert!(indirect.contains(&"t.b:WINDOW".to_string()), "{indirect:?}");
        assert!(indirect.contains(&"t.c:WINDOW".to_string()), "{indirect:?}");
        assert!(indirect.contains(&"t.d:SORT".to_string()), "{indirect:?}");
    }
}
