//! Statements that change rows in place: `DELETE`, `UPDATE` and `TRUNCATE TABLE`.
//!
//! The row selection is planned here, as ordinary queries, never through DataFusion's
//! `TableProvider::delete_from`/`update` (whose planning applies a subquery-filtered
//! condition to every row, apache/datafusion#24654). Each statement runs in two passes over
//! the version of the table it loaded, through the format's [`RowLevelTable`]:
//!
//! 1. `SELECT "$path", count(*) FROM target WHERE condition GROUP BY "$path"`: the files
//!    holding a row the statement changes, and how many rows (the client's update count);
//! 2. the rows those files hold afterwards (for DELETE the others, for UPDATE every row
//!    with the assignments applied where the condition holds), read from those files only
//!    and handed to [`RowLevelTable::replace`], which commits them in place of the files.
//!
//! Every other reference to the table in the statement reads the same version. A failure
//! in either pass, at any row, commits nothing.

use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::catalog::TableProvider;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Assignment, AssignmentTarget, Delete, Expr, FromTable, Ident,
    ObjectName, Query, SelectItem, SetExpr, Statement, TableFactor, TableWithJoins, Truncate,
    Update, VisitMut, VisitorMut,
};

use aichemy_tables::{RowChange, RowLevelTable, TableHandle, PATH_COLUMN};

use crate::catalog::lakehouse::QualifiedName;
use crate::dialect;
use crate::error::{ErrorCode, Result, TrinoError};
use crate::planner::{plan_statement, Scope};
use crate::session::Session;

/// Trino's message when a connector cannot change rows.
const MODIFYING_ROWS: &str = "This connector does not support modifying table rows";

/// The table a statement changes, loaded once.
pub(super) struct Target {
    name: QualifiedName,
    pub(super) table: TableHandle,
    rows: Arc<dyn RowLevelTable>,
    /// How the statement names the table in its expressions (its alias, else its name).
    pub(super) alias: String,
}

impl Target {
    /// Loads the table `name` names; fails as Trino does for a missing table, a view or a
    /// table whose format cannot change rows.
    pub(super) async fn load(
        session: &Session,
        name: &ObjectName,
        alias: Option<&Ident>,
    ) -> Result<Self> {
        let qualified = session.qualify(name)?;
        let lakehouse = session.lakehouse();
        let Some(table) = lakehouse.load_table(&qualified).await? else {
            lakehouse.catalog(&qualified.catalog)?;
            if lakehouse
                .metastore()
                .get_view(&qualified.catalog, &qualified.schema, &qualified.name)
                .await?
                .is_some()
            {
                return Err(TrinoError::not_supported(format!(
                    "Modifying views is not supported: '{qualified}'"
                )));
            }
            if crate::materialized::record(lakehouse, &qualified)
                .await?
                .is_some()
            {
                return Err(TrinoError::not_supported(format!(
                    "Modifying materialized views is not supported: '{qualified}'"
                )));
            }
            lakehouse
                .require_schema(&qualified.catalog, &qualified.schema)
                .await?;
            return Err(TrinoError::table_not_found(&qualified.to_string()));
        };
        let Some(rows) = table.rows.clone() else {
            if table.partitions.is_some() {
                return Err(super::partitions::refused());
            }
            return Err(TrinoError::not_supported(MODIFYING_ROWS));
        };
        let alias = match alias {
            Some(ident) if ident.quote_style.is_some() => ident.value.clone(),
            Some(ident) => ident.value.to_lowercase(),
            None => qualified.name.clone(),
        };
        Ok(Self {
            name: qualified,
            table,
            rows,
            alias,
        })
    }

    /// The name a pass reads the rows with `$path` by: `$rows` (of the files a rewrite
    /// pass reads) or `$all`.
    fn rows_name(&self, rows: &str) -> QualifiedName {
        QualifiedName {
            catalog: self.name.catalog.clone(),
            schema: self.name.schema.clone(),
            name: rows.to_string(),
        }
    }

    /// `"catalog"."schema"."$rows" AS "alias"`, for a pass's FROM clause.
    pub(super) fn from(&self) -> String {
        self.relation("$rows", &self.alias)
    }

    /// `"catalog"."schema".<rows> AS <alias>`: `$rows` or `$all` (every file).
    pub(super) fn relation(&self, rows: &str, alias: &str) -> String {
        let rows = self.rows_name(rows);
        format!(
            "{}.{}.{} AS {}",
            quote(&rows.catalog),
            quote(&rows.schema),
            quote(&rows.name),
            quote(alias)
        )
    }

    /// Plans and runs a pass: `query` with the table's rows (of `files`, else all) under
    /// `$rows`, all its rows under `$all`, and the table itself at the loaded version. A
    /// rewrite pass (with `files`) must give the table's columns.
    pub(super) async fn run(
        &self,
        session: &Session,
        query: Query,
        files: Option<Arc<HashSet<String>>>,
    ) -> Result<SendableRecordBatchStream> {
        let rewrite = files.is_some();
        let pinned: Vec<(QualifiedName, Arc<dyn TableProvider>)> = vec![
            (self.rows_name("$rows"), self.rows.scan(files).await?),
            (self.rows_name("$all"), self.rows.scan(None).await?),
            (self.name.clone(), self.table.provider.clone()),
        ];
        let scope = Scope {
            pinned: &pinned,
            ..session.scope()
        };
        let (plan, state) = plan_statement(
            session.lakehouse(),
            Statement::Query(Box::new(query)),
            scope,
            0,
        )
        .await?;
        let aliases = [
            (self.rows_name("$rows"), self.name.clone()),
            (self.rows_name("$all"), self.name.clone()),
        ];
        for (alias, table) in &aliases {
            session.io.alias(alias.to_string(), table.to_string());
        }
        let planned = crate::lineage::Planned {
            catalog: session.catalog.as_deref(),
            schema: session.schema.as_deref(),
            aliases: &aliases,
        };
        let columns = rewrite.then(|| crate::lineage::typed_columns(&self.table.provider.schema()));
        crate::lineage::note(&self.name, columns.as_deref(), &plan, &planned, true);
        if !rewrite {
            return super::query::execute(session, plan, state).await;
        }
        self.check_types(&plan)?;
        let rows = super::query::execute(session, plan, state).await?;
        Ok(self.not_null(rows))
    }

    /// `rows` failing at the first NULL in a NOT NULL column of the table (whatever the
    /// format records of NOT NULL).
    fn not_null(&self, rows: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let required: Vec<(usize, String)> = self
            .table
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.nullable)
            .map(|(i, c)| (i, c.name.clone()))
            .collect();
        if required.is_empty() {
            return rows;
        }
        let schema = rows.schema();
        let checked = futures::StreamExt::map(rows, move |batch| {
            let batch = batch?;
            for (i, name) in &required {
                if batch.column(*i).logical_null_count() > 0 {
                    return Err(datafusion::error::DataFusionError::External(Box::new(
                        aichemy_tables::TableError::NullInNotNullColumn {
                            column: name.clone(),
                        },
                    )));
                }
            }
            Ok(batch)
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, checked))
    }

    /// A rewrite pass must produce values of the table's column types (assignments of
    /// another kind fail as in Trino).
    fn check_types(&self, plan: &datafusion::logical_expr::LogicalPlan) -> Result<()> {
        let fields = plan.schema().fields();
        if fields.len() != self.table.columns.len() {
            return Err(TrinoError::internal(format!(
                "a rewrite of {} gave {} columns for {}",
                self.name,
                fields.len(),
                self.table.columns.len()
            )));
        }
        let mismatched: Vec<(&DataType, &DataType)> = self
            .table
            .columns
            .iter()
            .zip(fields.iter())
            .map(|(column, field)| (&column.data_type, field.data_type()))
            .filter(|(table, value)| !super::query::coercible(value, table))
            .collect();
        if mismatched.is_empty() {
            return Ok(());
        }
        Err(TrinoError::new(
            ErrorCode::TYPE_MISMATCH,
            format!(
                "UPDATE table column types don't match SET expressions: Table: [{}], \
                 Expressions: [{}]",
                super::query::type_list(mismatched.iter().map(|(t, _)| *t)),
                super::query::type_list(mismatched.iter().map(|(_, v)| *v))
            ),
        ))
    }

    /// Pass 1: the files holding a row that `condition` selects, and how many rows.
    async fn touched(
        &self,
        session: &Session,
        condition: Option<Expr>,
    ) -> Result<(Vec<String>, u64)> {
        let path = quote(PATH_COLUMN);
        let mut query = parse_query(&format!(
            "SELECT {path}, count(*) FROM {} GROUP BY {path}",
            self.from()
        ))?;
        select_of(&mut query)?.selection = condition;
        let (files, count, _) = self.files_of(session, query).await?;
        Ok((files, count))
    }

    /// Runs a first pass giving `(file, rows[, most])` rows: answers the files, the sum of
    /// their rows and the largest `most`.
    pub(super) async fn files_of(
        &self,
        session: &Session,
        query: Query,
    ) -> Result<(Vec<String>, u64, i64)> {
        let batches: Vec<_> =
            futures::TryStreamExt::try_collect(self.run(session, query, None).await?).await?;
        let mut files = Vec::new();
        let mut count = 0u64;
        let mut most = 0i64;
        for batch in batches {
            let paths = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)
                .map_err(datafusion::error::DataFusionError::from)?;
            let paths = paths.as_string::<i32>();
            let counts = batch.column(1).as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                if paths.is_valid(row) {
                    files.push(paths.value(row).to_string());
                    count += counts.value(row) as u64;
                    if let Some(column) = batch.columns().get(2) {
                        most = most.max(column.as_primitive::<Int64Type>().value(row));
                    }
                }
            }
        }
        Ok((files, count, most))
    }

    /// Pass 2: `query`'s rows replace `files`.
    pub(super) async fn replace(
        &self,
        session: &Session,
        query: Query,
        files: Vec<String>,
        change: RowChange,
    ) -> Result<()> {
        let only = Arc::new(files.iter().cloned().collect::<HashSet<_>>());
        let rows = self.run(session, query, Some(only)).await?;
        self.rows.replace(files, rows, change).await?;
        Ok(())
    }

    /// Removes whole files: every row they hold is deleted.
    async fn remove(&self, files: Vec<String>) -> Result<()> {
        let nothing = Box::pin(RecordBatchStreamAdapter::new(
            self.table.provider.schema(),
            futures::stream::empty(),
        ));
        self.rows.replace(files, nothing, RowChange::Delete).await?;
        Ok(())
    }

    /// The table's columns, qualified by the alias: `"a"."x", "a"."y"`.
    pub(super) fn columns(&self) -> Vec<String> {
        self.columns_of(&self.alias)
    }

    /// The table's columns, qualified by `alias`.
    pub(super) fn columns_of(&self, alias: &str) -> Vec<String> {
        self.table
            .columns
            .iter()
            .map(|c| format!("{}.{}", quote(alias), quote(&c.name)))
            .collect()
    }

    /// The values `SET` assigns, by column position (`None` for a column it leaves);
    /// a column assigned twice fails with `duplicate` and its name.
    pub(super) fn assigned(
        &self,
        assignments: &[Assignment],
        duplicate: &str,
    ) -> Result<Vec<Option<Expr>>> {
        let mut values: Vec<Option<Expr>> = vec![None; self.table.columns.len()];
        for assignment in assignments {
            let AssignmentTarget::ColumnName(column) = &assignment.target else {
                return Err(TrinoError::not_supported("UPDATE SET of a column list"));
            };
            let index = self.column_index(column)?;
            if values[index].is_some() {
                return Err(TrinoError::new(
                    ErrorCode::DUPLICATE_COLUMN_NAME,
                    format!("{duplicate}: {}", self.table.columns[index].name),
                ));
            }
            values[index] = Some(assignment.value.clone());
        }
        Ok(values)
    }

    /// Notes, for the statement's audit, the columns `values` assign (by position).
    pub(super) fn note_written(&self, session: &Session, values: &[Option<Expr>]) {
        let columns = self.table.columns.iter().zip(values);
        session.io.wrote(
            self.name.to_string(),
            columns
                .filter(|(_, v)| v.is_some())
                .map(|(c, _)| c.name.clone()),
        );
    }

    /// The position of the column an assignment or an INSERT names (`c` or `t.c`).
    pub(super) fn column_index(&self, column: &ObjectName) -> Result<usize> {
        let wanted = match column.0.last().and_then(|part| part.as_ident()) {
            Some(ident) if ident.quote_style.is_some() => ident.value.clone(),
            Some(ident) => ident.value.to_lowercase(),
            None => column.to_string(),
        };
        self.table
            .columns
            .iter()
            .position(|c| c.name == wanted)
            .ok_or_else(|| {
                TrinoError::new(
                    ErrorCode::COLUMN_NOT_FOUND,
                    format!("Column '{wanted}' cannot be resolved"),
                )
            })
    }
}

/// How often a statement whose commit met another writer's change to the same files is
/// planned and run again on the newest version before its `TRANSACTION_CONFLICT` reaches
/// the client.
const REPLANS: u32 = 4;

/// Runs `statement` again, on the table's newest version, while it fails with
/// `TRANSACTION_CONFLICT` (it committed nothing then), at most [`REPLANS`] times, after
/// random growing waits so that writers that collided do not collide again in step.
pub(crate) async fn replanned<T, F, Fut>(mut statement: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match statement().await {
            Err(e) if e.code == ErrorCode::TRANSACTION_CONFLICT && attempt < REPLANS => {
                attempt += 1;
                let ceiling = 50u64 << attempt;
                tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(
                    ceiling / 4..=ceiling,
                )))
                .await;
            }
            done => return done,
        }
    }
}

/// `DELETE FROM t [AS a] [WHERE condition]`; answers the number of rows deleted.
pub(crate) async fn delete(session: &Session, delete: Delete) -> Result<u64> {
    let tables = match &delete.from {
        FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables) => tables,
    };
    if !delete.tables.is_empty()
        || delete.using.is_some()
        || delete.returning.is_some()
        || !delete.order_by.is_empty()
        || delete.limit.is_some()
        || tables.len() != 1
    {
        return Err(TrinoError::not_supported(
            "DELETE takes one table and a WHERE clause",
        ));
    }
    let (name, alias) = single_table(&tables[0])?;
    if let Some((name, table)) = super::partitions::load(session, name).await? {
        return super::partitions::delete(session, name, table, alias, delete.selection).await;
    }
    let target = Target::load(session, name, alias).await?;
    let condition = delete.selection.map(name_in_subqueries);
    let (files, count) = target.touched(session, condition.clone()).await?;
    if files.is_empty() {
        return Ok(0);
    }
    let Some(condition) = condition else {
        target.remove(files).await?;
        return Ok(count);
    };
    // The rows the condition does not select (NULL is not selected).
    let query = parse_with(
        &format!(
            "SELECT {} FROM {} WHERE ({}) IS NOT TRUE",
            target.columns().join(", "),
            target.from(),
            placeholder(0)
        ),
        vec![condition],
    )?;
    target
        .replace(session, query, files, RowChange::Delete)
        .await?;
    Ok(count)
}

/// `ALTER TABLE t EXECUTE optimize[(file_size_threshold => …)] [WHERE condition]`: in
/// each partition that holds a row the condition selects (every partition without one),
/// the data files smaller than `threshold` bytes are merged into new ones when there are
/// two or more of them, in one commit that changes no row. Files of an earlier
/// partitioning are written in the current one. Answers how many files were merged.
pub(crate) async fn optimize(
    session: &Session,
    name: &ObjectName,
    threshold: u64,
    condition: Option<Expr>,
) -> Result<usize> {
    let target = Target::load(session, name, None).await?;
    let selected: Option<HashSet<String>> = match condition {
        Some(condition) => {
            let condition = name_in_subqueries(condition);
            let (files, _) = target.touched(session, Some(condition)).await?;
            Some(files.into_iter().collect())
        }
        None => None,
    };
    let files = target.rows.files().await?;
    let partitions: HashSet<&str> = files
        .iter()
        .filter(|f| selected.as_ref().is_none_or(|s| s.contains(&f.path)))
        .map(|f| f.partition.as_str())
        .collect();
    let mut small: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for file in &files {
        if file.bytes < threshold && partitions.contains(file.partition.as_str()) {
            small
                .entry(file.partition.as_str())
                .or_default()
                .push(file.path.clone());
        }
    }
    let merged: Vec<String> = small
        .into_values()
        .filter(|files| files.len() > 1)
        .flatten()
        .collect();
    if merged.is_empty() {
        return Ok(0);
    }
    let query = parse_query(&format!(
        "SELECT {} FROM {}",
        target.columns().join(", "),
        target.from()
    ))?;
    let only = Arc::new(merged.iter().cloned().collect::<HashSet<_>>());
    let rows = target.run(session, query, Some(only)).await?;
    target.rows.rewrite(merged.clone(), rows).await?;
    Ok(merged.len())
}

/// `UPDATE t [AS a] SET c = value [, …] [WHERE condition]`; answers the number of rows
/// updated.
pub(crate) async fn update(session: &Session, update: Update) -> Result<u64> {
    if update.from.is_some() || update.returning.is_some() || update.limit.is_some() {
        return Err(TrinoError::not_supported(
            "UPDATE takes one table, SET and a WHERE clause",
        ));
    }
    let (name, alias) = single_table(&update.table)?;
    let target = Target::load(session, name, alias).await?;
    let values = target.assigned(&update.assignments, "Multiple updates to the same column")?;
    target.note_written(session, &values);
    let condition = update.selection.map(name_in_subqueries);
    let (files, count) = target.touched(session, condition.clone()).await?;
    if files.is_empty() {
        return Ok(0);
    }
    // The selected rows with their new values, then the other rows of the same files
    // (DataFusion evaluates subqueries in filters, not in the select list).
    let mut substitutes = vec![condition.unwrap_or(Expr::Value(
        datafusion::sql::sqlparser::ast::Value::Boolean(true).into(),
    ))];
    // Each column named as the table's: a union's sides must not repeat a name.
    let columns = target.columns();
    let names = target.table.columns.iter().map(|c| quote(&c.name));
    let changed: Vec<String> = columns
        .iter()
        .zip(values)
        .zip(names)
        .map(|((column, value), name)| match value {
            Some(value) => {
                substitutes.push(value);
                format!("{} AS {name}", placeholder(substitutes.len() - 1))
            }
            None => format!("{column} AS {name}"),
        })
        .collect();
    let query = parse_with(
        &format!(
            "SELECT {changed} FROM {from} WHERE {condition} \
             UNION ALL SELECT {kept} FROM {from} WHERE ({condition}) IS NOT TRUE",
            changed = changed.join(", "),
            kept = columns.join(", "),
            from = target.from(),
            condition = placeholder(0),
        ),
        substitutes,
    )?;
    target
        .replace(session, query, files, RowChange::Update)
        .await?;
    Ok(count)
}

/// `TRUNCATE TABLE t`: every row deleted in one commit.
pub(crate) async fn truncate(session: &Session, truncate: Truncate) -> Result<()> {
    let [table] = truncate.table_names.as_slice() else {
        return Err(TrinoError::not_supported("TRUNCATE TABLE takes one table"));
    };
    if let Some((name, handle)) = super::partitions::load(session, &table.name).await? {
        super::partitions::delete(session, name, handle, None, None).await?;
        return Ok(());
    }
    let target = Target::load(session, &table.name, None).await?;
    let (files, _) = target.touched(session, None).await?;
    if files.is_empty() {
        return Ok(());
    }
    target.remove(files).await
}

/// The one table of a DELETE or UPDATE, with its alias.
fn single_table(table: &TableWithJoins) -> Result<(&ObjectName, Option<&Ident>)> {
    match &table.relation {
        TableFactor::Table { name, alias, .. } if table.joins.is_empty() => {
            Ok((name, alias.as_ref().map(|a| &a.name)))
        }
        _ => Err(TrinoError::not_supported(
            "Only a table can be changed, not a join or a subquery",
        )),
    }
}

pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn parse_query(sql: &str) -> Result<Query> {
    match dialect::parse_statements(sql)?.pop() {
        Some(Statement::Query(query)) => Ok(*query),
        _ => Err(TrinoError::internal(format!("not a query: {sql}"))),
    }
}

/// The identifier that [`parse_with`] replaces by its `index`-th expression.
pub(super) fn placeholder(index: usize) -> String {
    quote(&format!("$substitute{index}"))
}

/// Parses a query written with [`placeholder`]s and puts `substitutes` in their places
/// (the statement's own expressions, already parsed).
pub(super) fn parse_with(sql: &str, substitutes: Vec<Expr>) -> Result<Query> {
    parse_with_source(sql, substitutes, None)
}

/// The relation that [`parse_with_source`] replaces by the statement's source.
pub(super) const SOURCE: &str = "\"$source\"";

/// [`parse_with`], also putting `source` where the relation [`SOURCE`] stands.
pub(super) fn parse_with_source(
    sql: &str,
    substitutes: Vec<Expr>,
    source: Option<&TableFactor>,
) -> Result<Query> {
    struct Substitute<'a> {
        exprs: Vec<Expr>,
        source: Option<&'a TableFactor>,
    }
    impl VisitorMut for Substitute<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Identifier(ident) = expr {
                let index = ident
                    .value
                    .strip_prefix("$substitute")
                    .and_then(|i| i.parse::<usize>().ok());
                if let (Some(index), Some(_)) = (index, ident.quote_style) {
                    if let Some(value) = self.exprs.get(index) {
                        *expr = value.clone();
                    }
                }
            }
            ControlFlow::Continue(())
        }
        fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let (TableFactor::Table { name, .. }, Some(source)) = (&*factor, self.source) {
                if name.to_string() == SOURCE {
                    *factor = source.clone();
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut query = parse_query(sql)?;
    let _ = query.visit(&mut Substitute {
        exprs: substitutes,
        source,
    });
    Ok(query)
}

/// Names the column of each `IN (SELECT …)` subquery: DataFusion 53 plans an unnamed one
/// (`x IN (SELECT max(y) …)`) under `IS NOT TRUE` with two columns of one name and fails.
pub(super) fn name_in_subqueries(mut condition: Expr) -> Expr {
    let _ = visit_expressions_mut(&mut condition, |expr| {
        if let Expr::InSubquery { subquery, .. } = expr {
            if let SetExpr::Select(select) = subquery.body.as_mut() {
                if let [item] = select.projection.as_mut_slice() {
                    if let SelectItem::UnnamedExpr(value) = item {
                        *item = SelectItem::ExprWithAlias {
                            expr: value.clone(),
                            alias: Ident::with_quote('"', "$in"),
                        };
                    }
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    condition
}

fn select_of(query: &mut Query) -> Result<&mut datafusion::sql::sqlparser::ast::Select> {
    match query.body.as_mut() {
        SetExpr::Select(select) => Ok(select),
        _ => Err(TrinoError::internal("expected a SELECT")),
    }
}
