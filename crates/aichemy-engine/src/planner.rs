//! From a parsed statement to a DataFusion plan over freshly resolved relations.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DFStatement;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectNamePart, Query, SetExpr, SetQuantifier, Statement, TableAlias, TableFactor,
    TableVersion, Value, VisitMut, VisitorMut, With,
};

use crate::catalog::lakehouse::{Lakehouse, QualifiedName};
use crate::dialect;
use crate::error::{ErrorCode, Result, TrinoError};

/// Where a statement's unqualified names resolve, the time zone it runs in, and who runs
/// it (what `system.runtime.queries` shows them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    pub catalog: Option<&'a str>,
    pub schema: Option<&'a str>,
    pub time_zone: Option<&'a str>,
    pub user: Option<&'a str>,
    /// The roles `user` has enabled (`SET ROLE`); her default selection when `None`.
    pub role: Option<&'a aichemy_access::RoleSelection>,
    /// Relations that resolve to these providers instead of being loaded (a statement that
    /// changes a table reads one version of it throughout).
    pub pinned: &'a [(QualifiedName, Arc<dyn TableProvider>)],
    /// Where the relations planning reads are recorded, views followed inside.
    pub reads: Option<&'a Arc<crate::catalog::lakehouse::ReadTables>>,
    /// `user` reads as the owner of a DEFINER view someone else queries.
    pub view_owner: bool,
}

/// Who a stored query's relations are read as.
#[derive(Debug, Clone, Copy)]
pub enum BodyReader<'a> {
    /// The user of the statement that reads it (a SECURITY INVOKER view).
    Invoker,
    /// The view's owner (a SECURITY DEFINER view, Trino's default).
    Owner(&'a str),
    /// Nobody: not checked (a materialized view's own storage).
    Unchecked,
}

/// Plans a statement DataFusion understands (queries, INSERT, EXPLAIN), resolving the
/// relations it references first. Returns the plan and the state to execute it in.
pub async fn plan_statement(
    lakehouse: &Arc<Lakehouse>,
    statement: Statement,
    scope: Scope<'_>,
    depth: usize,
) -> Result<(LogicalPlan, SessionState)> {
    let Scope {
        catalog, schema, ..
    } = scope;
    let ctx = lakehouse.session_context(
        catalog.unwrap_or("system"),
        schema.unwrap_or("information_schema"),
        scope.time_zone,
        scope.user.map(|user| {
            (
                user,
                scope.role.unwrap_or(&aichemy_access::RoleSelection::All),
            )
        }),
    );
    if let Some(reads) = scope.reads {
        ctx.state_ref()
            .write()
            .config_mut()
            .set_extension(reads.clone());
    }
    if scope.view_owner {
        ctx.state_ref()
            .write()
            .config_mut()
            .set_extension(Arc::new(crate::catalog::lakehouse::ViewOwnerReads));
    }
    let state = ctx.state();
    let mut statement = statement;
    versioned_relations(lakehouse, &mut statement, scope, depth).await?;
    crate::hidden_path::hidden_path_columns(&mut statement)?;
    crate::bag_set_operations::mark(&mut statement);
    let statement = DFStatement::Statement(Box::new(statement));
    let references = state.resolve_table_references(&statement)?;
    let catalogs = lakehouse
        .resolve_references(&references, catalog, schema, &state, depth, scope.pinned)
        .await?;
    // Set on the context, not through SessionStateBuilder::new_from_existing: rebuilding a
    // state re-registers every function in hash order, and a built-in alias
    // (`element_at` of `map_extract`) could then replace an AIchemy function.
    ctx.register_catalog_list(catalogs);
    let state = ctx.state();
    let statement = match statement {
        DFStatement::Statement(boxed) => match *boxed {
            Statement::Query(mut query) => {
                corresponding(&mut query, &state).await?;
                DFStatement::Statement(Box::new(Statement::Query(query)))
            }
            other => DFStatement::Statement(Box::new(other)),
        },
        other => other,
    };
    let plan = state.statement_to_plan(statement).await?;
    let plan = crate::bag_set_operations::rewrite(plan)?;
    Ok((name_row_fields(plan)?, state))
}

/// The suffix a relation read at a version gets for name resolution
/// (`orders$version=42`, `orders$timestamp=1700000000000`), which
/// `Lakehouse::relation` reads back.
pub const VERSION_SUFFIX: &str = "$version=";
pub const TIMESTAMP_SUFFIX: &str = "$timestamp=";
/// The suffix of a relation read `FOR VERSION AS OF 'name'` (a branch or tag).
pub const REF_SUFFIX: &str = "$ref=";

/// Renames the relations read `FOR VERSION AS OF id` or `FOR TIMESTAMP AS OF time` with a
/// suffix naming the version (the time evaluated in the statement's zone, to milliseconds),
/// keeping their name as their alias.
async fn versioned_relations(
    lakehouse: &Arc<Lakehouse>,
    statement: &mut Statement,
    scope: Scope<'_>,
    depth: usize,
) -> Result<()> {
    let mut versions: Vec<TableVersion> = Vec::new();
    let _ = statement.visit(&mut VersionsOf(&mut versions));
    if versions.is_empty() {
        return Ok(());
    }
    let mut suffixes = Vec::with_capacity(versions.len());
    for version in versions {
        suffixes.push(match version {
            TableVersion::VersionAsOf(Expr::Value(value)) => match &value.value {
                Value::Number(n, _) => format!("{VERSION_SUFFIX}{n}"),
                other => {
                    return Err(TrinoError::not_supported(format!(
                        "Versions other than snapshot ids are not supported: {other}"
                    )))
                }
            },
            // `FOR VERSION AS OF 'name'`, as the dialect passes it.
            TableVersion::ForSystemTimeAsOf(Expr::Value(value)) => match &value.value {
                Value::SingleQuotedString(name) => format!("{REF_SUFFIX}{name}"),
                other => {
                    return Err(TrinoError::not_supported(format!(
                        "Table version is not supported: {other}"
                    )))
                }
            },
            TableVersion::TimestampAsOf(at) => {
                let text = format!("SELECT CAST(to_unixtime(CAST(({at}) AS TIMESTAMP(3) WITH TIME ZONE)) * 1000 AS BIGINT)");
                let mut parsed = dialect::parse_statements(&text)?;
                let query = parsed.pop().ok_or_else(|| TrinoError::internal("no query"))?;
                let (plan, state) =
                    Box::pin(plan_statement(lakehouse, query, scope, depth + 1)).await?;
                let batches = datafusion::dataframe::DataFrame::new(state, plan)
                    .collect()
                    .await?;
                let millis = batches
                    .first()
                    .filter(|b| b.num_rows() == 1)
                    .and_then(|b| {
                        b.column(0)
                            .as_any()
                            .downcast_ref::<datafusion::arrow::array::Int64Array>()
                            .filter(|c| datafusion::arrow::array::Array::is_valid(*c, 0))
                            .map(|c| c.value(0))
                    })
                    .ok_or_else(|| {
                        TrinoError::new(
                            ErrorCode::INVALID_ARGUMENTS,
                            "Pointer value for a versioned table is not a point in time",
                        )
                    })?;
                format!("{TIMESTAMP_SUFFIX}{millis}")
            }
            other => {
                return Err(TrinoError::not_supported(format!(
                    "Table version is not supported: {other}"
                )))
            }
        });
    }
    let _ = statement.visit(&mut RenameVersioned(suffixes.into_iter()));
    Ok(())
}

/// Gathers the versions relations are read at, in the order of the statement.
struct VersionsOf<'a>(&'a mut Vec<TableVersion>);

impl VisitorMut for VersionsOf<'_> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            version: Some(version),
            ..
        } = factor
        {
            self.0.push(version.clone());
        }
        ControlFlow::Continue(())
    }
}

/// Gives each versioned relation its suffix, in the order [`VersionsOf`] met them.
struct RenameVersioned<I>(I);

impl<I: Iterator<Item = String>> VisitorMut for RenameVersioned<I> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            alias,
            version: version @ Some(_),
            ..
        } = factor
        {
            let Some(suffix) = self.0.next() else {
                return ControlFlow::Continue(());
            };
            *version = None;
            if let Some(ObjectNamePart::Identifier(last)) = name.0.last_mut() {
                if alias.is_none() {
                    *alias = Some(TableAlias {
                        explicit: true,
                        name: last.clone(),
                        columns: Vec::new(),
                    });
                }
                let base = match last.quote_style {
                    Some(_) => last.value.clone(),
                    None => last.value.to_lowercase(),
                };
                *last = Ident::with_quote('"', format!("{base}{suffix}"));
            }
        }
        ControlFlow::Continue(())
    }
}

/// Trino's `CORRESPONDING` set operations (which the dialect spells `BY NAME`): each side
/// keeps the columns both sides name, in the left side's order, matched by name.
async fn corresponding(query: &mut Query, state: &SessionState) -> Result<()> {
    let with = query.with.clone();
    Box::pin(corresponding_in(&mut query.body, &with, state)).await
}

async fn corresponding_in(
    body: &mut SetExpr,
    with: &Option<With>,
    state: &SessionState,
) -> Result<()> {
    let SetExpr::SetOperation {
        left,
        right,
        set_quantifier,
        ..
    } = body
    else {
        return Ok(());
    };
    Box::pin(corresponding_in(left, with, state)).await?;
    Box::pin(corresponding_in(right, with, state)).await?;
    let plain = match set_quantifier {
        SetQuantifier::ByName => SetQuantifier::None,
        SetQuantifier::AllByName => SetQuantifier::All,
        SetQuantifier::DistinctByName => SetQuantifier::Distinct,
        _ => return Ok(()),
    };
    let names_of = |side: &SetExpr| {
        let query = Query {
            with: with.clone(),
            body: Box::new(side.clone()),
            order_by: None,
            limit_clause: None,
            fetch: None,
            locks: vec![],
            for_clause: None,
            settings: None,
            format_clause: None,
            pipe_operators: vec![],
        };
        let statement = DFStatement::Statement(Box::new(Statement::Query(Box::new(query))));
        async move {
            let plan = state.statement_to_plan(statement).await?;
            Ok::<_, TrinoError>(
                plan.schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().to_ascii_lowercase())
                    .collect::<Vec<_>>(),
            )
        }
    };
    let left_names = names_of(left).await?;
    let right_names = names_of(right).await?;
    let common: Vec<&String> = left_names
        .iter()
        .filter(|name| right_names.contains(name))
        .collect();
    if common.is_empty() {
        return Err(TrinoError::new(
            ErrorCode::TYPE_MISMATCH,
            "No corresponding columns",
        ));
    }
    let columns: Vec<String> = common
        .iter()
        .map(|name| format!("\"{}\"", name.replace('"', "\"\"")))
        .collect();
    for side in [left, right] {
        let text = format!(
            "SELECT {} FROM ({side}) AS \"$corresponding\"",
            columns.join(", ")
        );
        let mut parsed = dialect::parse_statements(&text)?;
        let Some(Statement::Query(query)) = parsed.pop() else {
            return Err(TrinoError::new(
                ErrorCode::GENERIC_INTERNAL_ERROR,
                "CORRESPONDING side did not parse",
            ));
        };
        **side = SetExpr::Query(query);
    }
    *set_quantifier = plain;
    Ok(())
}

/// A query's columns that `(row).*` (DataFusion's unnest of a struct) made, named by their
/// field as in Trino (`field1`), not `__unnest_placeholder(…).field1`; unchanged when two
/// would then share a name.
fn name_row_fields(plan: LogicalPlan) -> Result<LogicalPlan> {
    const PLACEHOLDER: &str = "__unnest_placeholder(";
    if !matches!(
        plan,
        LogicalPlan::Projection(_) | LogicalPlan::Sort(_) | LogicalPlan::Limit(_)
    ) || !plan
        .schema()
        .fields()
        .iter()
        .any(|f| f.name().starts_with(PLACEHOLDER))
    {
        return Ok(plan);
    }
    let names: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| match f.name().strip_prefix(PLACEHOLDER) {
            Some(rest) => rest
                .rsplit_once(").")
                .map_or(f.name().clone(), |(_, field)| field.to_string()),
            None => f.name().clone(),
        })
        .collect();
    let distinct: std::collections::HashSet<&String> = names.iter().collect();
    if distinct.len() != names.len() {
        return Ok(plan);
    }
    let columns: Vec<datafusion::logical_expr::Expr> = plan
        .schema()
        .columns()
        .into_iter()
        .zip(names)
        .map(|(column, name)| datafusion::logical_expr::col(column).alias(name))
        .collect();
    Ok(datafusion::logical_expr::LogicalPlanBuilder::from(plan)
        .project(columns)?
        .build()?)
}

/// Plans the text of one query (a view's definition), its relations read as `reader`.
pub async fn plan_query_text(
    lakehouse: &Arc<Lakehouse>,
    sql: &str,
    catalog: Option<&str>,
    schema: Option<&str>,
    outer: &SessionState,
    depth: usize,
    reader: BodyReader<'_>,
) -> Result<LogicalPlan> {
    let mut statements = dialect::parse_statements(sql)?;
    if statements.len() != 1 || !matches!(statements[0], Statement::Query(_)) {
        return Err(TrinoError::new(
            ErrorCode::INVALID_VIEW,
            "A view must be defined by one query",
        ));
    }
    let statement = statements.remove(0);
    let user = outer
        .config()
        .get_extension::<crate::catalog::lakehouse::QueryUser>();
    let reads = outer
        .config()
        .get_extension::<crate::catalog::lakehouse::ReadTables>();
    let as_owner = outer
        .config()
        .get_extension::<crate::catalog::lakehouse::ViewOwnerReads>()
        .is_some();
    // The owner reads with her default roles, the invoker with hers.
    let (user, role, view_owner) = match (reader, user.as_ref()) {
        (BodyReader::Unchecked, _) | (_, None) => (None, None, false),
        (BodyReader::Invoker, Some(user)) => (Some(user.0.as_str()), Some(&user.1), as_owner),
        (BodyReader::Owner(owner), Some(user)) => (Some(owner), None, as_owner || user.0 != owner),
    };
    let scope = Scope {
        catalog,
        schema,
        time_zone: outer.config().options().execution.time_zone.as_deref(),
        user,
        role,
        view_owner,
        pinned: &[],
        reads: reads.as_ref(),
    };
    let (plan, _) = Box::pin(plan_statement(lakehouse, statement, scope, depth)).await?;
    Ok(plan)
}
