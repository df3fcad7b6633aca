//! `REFRESH MATERIALIZED VIEW`: the storage table's rows renewed in one commit that also
//! records what they were computed from, made only if the storage table still records the
//! refresh this one started from (two refreshes racing: one fails with a conflict).
//!
//! A full refresh runs the definition and replaces every stored row. An incremental one
//! (Iceberg sources, a definition of [`Shape::Rows`] or [`Shape::Aggregate`]) reads only
//! what changed: for each source, the rows of the data files added since the last refresh
//! and of those removed (a copy-on-write change rewrites whole files, so rows present in
//! both are cancelled first). With sources `S1…Sn`, of which `Si` gained `Si+` and lost
//! `Si-`, the view gains `Σi Q(S1…Si-1 now, Si+, Si+1…Sn as before)` and loses the same
//! with `Si-` (inner joins distribute over bags). A row view removes the lost rows (one
//! stored copy each) from the files holding them and appends the gained ones; a grouped
//! view folds the changes per group into the stored counts and sums.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use aichemy_metastore::MaterializedViewRecord;
use aichemy_tables::{Recording, RowLevelTable, TableChanges, TableError, TableHandle};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::catalog::TableProvider;
use datafusion::datasource::{MemTable, ViewTable};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::sqlparser::ast::{Query, Statement};

use super::narrow::narrowed;
use super::shape::{count_column, sum_column, Aggregate, Function, Output, ROWS_COLUMN};
use super::{
    ident, not_found, now_ms, parse_state, record, relation_text, storage_name, RefreshState,
    Shape, SourceVersion, RECORDING_JOB,
};
use crate::catalog::lakehouse::{QualifiedName, ReadTable, ReadTables};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::planner::{plan_statement, Scope};
use crate::session::Session;
use crate::statement::query;

/// What a refresh did.
#[derive(Debug, Clone)]
pub(crate) struct RefreshReport {
    /// Rows written to the storage table.
    pub rows: u64,
}

/// Rows a source gained and, unless it only gained, lost.
type Delta = (Arc<dyn TableProvider>, Option<Arc<dyn TableProvider>>);

/// A source table as a refresh reads it.
struct Source {
    name: QualifiedName,
    /// At the version this refresh reads.
    now: Arc<dyn TableProvider>,
    /// At the version the last refresh read.
    before: Arc<dyn TableProvider>,
    /// The rows it gained and lost since; `None` when it did not change.
    delta: Option<Delta>,
}

/// Refreshes materialized view `name`.
pub(crate) async fn refresh(session: &Session, name: &QualifiedName) -> Result<RefreshReport> {
    let lakehouse = session.lakehouse();
    let view = record(lakehouse, name)
        .await?
        .ok_or_else(|| not_found(name))?;
    let storage_name = storage_name(&view);
    let storage = lakehouse.load_table(&storage_name).await?.ok_or_else(|| {
        TrinoError::new(
            ErrorCode::INVALID_VIEW,
            format!("The storage table of materialized view '{name}' is missing: {storage_name}"),
        )
    })?;
    let storage_rows = storage.rows.clone().ok_or_else(|| {
        TrinoError::internal(format!("storage table {storage_name} cannot change rows"))
    })?;
    let previous_text = storage_rows.recorded_position(RECORDING_JOB).await?;
    let previous = previous_text.as_deref().and_then(parse_state);

    let mut statements = crate::dialect::parse_statements(&view.sql)?;
    let Some(Statement::Query(definition)) = statements.pop() else {
        return Err(TrinoError::new(
            ErrorCode::INVALID_VIEW,
            format!("Materialized view '{name}' is not defined by a query"),
        ));
    };
    // The definition as the view keeps it, with every relation it reads recorded.
    let reads = Arc::new(ReadTables::default());
    let scope = Scope {
        catalog: Some(&view.catalog),
        schema: Some(&view.schema),
        reads: Some(&reads),
        ..session.scope()
    };
    let (mut plan, mut state) =
        plan_statement(lakehouse, Statement::Query(definition.clone()), scope, 0).await?;
    let planned = crate::lineage::Planned {
        catalog: Some(&view.catalog),
        schema: Some(&view.schema),
        aliases: &[],
    };
    let columns = crate::lineage::typed_columns(plan.schema().as_arrow());
    crate::lineage::note(name, Some(&columns), &plan, &planned, false);
    let names = columns.iter().map(|(name, _)| name.clone());
    session.io.wrote(name.to_string(), names);
    let shape = Shape::of(&definition, &plan);
    // A grouped view's rows carry their state columns: that query is the one run and
    // recorded.
    if let Shape::Aggregate(_) = shape {
        reads.take();
        let augmented = Statement::Query(Box::new(shape.augmented(&definition)));
        (plan, state) = plan_statement(lakehouse, augmented, scope, 0).await?;
    }
    let read = reads.take();
    let versions: Vec<SourceVersion> = read
        .iter()
        .map(|r| SourceVersion {
            catalog: r.name.catalog.clone(),
            schema: r.name.schema.clone(),
            table: r.name.name.clone(),
            version: r.rows.as_ref().and_then(|rows| rows.version()),
        })
        .collect();
    let refresh = Refresh {
        session,
        view: &view,
        storage_name: &storage_name,
        storage: &storage,
        storage_rows: &storage_rows,
        previous_text: previous_text.as_deref(),
    };
    let incremental = match previous.as_ref() {
        None => Err("it was never refreshed".to_string()),
        Some(previous) => incremental_sources(&shape, &read, previous).await?,
    };
    let result = match incremental {
        Ok(None) => return Ok(RefreshReport { rows: 0 }),
        Ok(Some(sources)) => {
            // Only the changes are read, through providers of the refresh's own: the
            // definition's reads are checked under the policy first, as a full refresh's.
            if session.access()?.is_some() {
                crate::access::guard::check_reads(&plan, &state).await?;
            }
            let recorded = RefreshState {
                sources: versions,
                refreshed_at_ms: now_ms(),
                kind: "INCREMENTAL".into(),
                reason: None,
            };
            refresh
                .incremental(&shape, &definition, sources, (plan, state), &recorded)
                .await
        }
        Err(reason) => {
            let recorded = RefreshState {
                sources: versions,
                refreshed_at_ms: now_ms(),
                kind: "FULL".into(),
                reason: Some(reason),
            };
            let plan = query::conformed(&storage_name, plan, &storage.provider.schema())?;
            let rows = query::execute(session, plan, state).await?;
            let files = storage_rows
                .files()
                .await?
                .into_iter()
                .map(|f| f.path)
                .collect();
            refresh.commit(files, rows, &recorded).await
        }
    };
    result.map(|rows| RefreshReport { rows })
}

/// The sources with their changes since `previous`, `Ok(None)` when none changed, or
/// why the view must be computed again in full.
async fn incremental_sources(
    shape: &Shape,
    read: &[ReadTable],
    previous: &RefreshState,
) -> Result<std::result::Result<Option<Vec<Source>>, String>> {
    if let Shape::Full(why) = shape {
        return Ok(Err(format!("only a full refresh renews it: {why}")));
    }
    let mut sources: Vec<Source> = Vec::new();
    let mut seen = HashSet::new();
    // What the sources hold, and what each changed one added and removed since.
    let mut total_bytes = 0u64;
    let mut rewritten: Vec<(String, u64, u64)> = Vec::new();
    for table in read {
        let (Some(rows), Some(now)) = (&table.rows, &table.provider) else {
            return Ok(Err(format!("{} has no versions to compare", table.name)));
        };
        if table.depth > 0 {
            return Ok(Err(format!("{} is read through a view", table.name)));
        }
        if !seen.insert(table.name.clone()) {
            return Ok(Err(format!("it reads {} more than once", table.name)));
        }
        let text = table.name.to_string();
        let Some(Some(before)) = previous
            .sources
            .iter()
            .find(|s| s.name() == table.name)
            .map(|s| s.version)
        else {
            return Ok(Err(format!("the last refresh did not read {text}")));
        };
        let Some(changes) = rows.changes_since(before).await? else {
            return Ok(Err(format!(
                "what changed in {text} since version {before} is not known"
            )));
        };
        let unchanged = rows.version() == Some(before);
        total_bytes += changes.bytes;
        if !unchanged {
            rewritten.push((text, changes.changed_bytes, changes.bytes));
        }
        sources.push(Source {
            name: table.name.clone(),
            now: now.clone(),
            before: changes.before.clone(),
            delta: (!unchanged).then(|| deltas_of(changes)),
        });
    }
    if previous.sources.len() != sources.len() {
        return Ok(Err("its sources changed".into()));
    }
    if sources.iter().all(|s| s.delta.is_none()) {
        return Ok(Ok(None));
    }
    // Copy-on-write rewrites whole files. A source whose added and removed files weigh as
    // much as the source itself is read twice and its rows told apart one by one: that
    // costs more than computing the definition again, unless the source is small beside
    // the others (a quarter of all the sources' bytes at most; a dimension rewritten
    // whole under a join with large facts).
    for (text, changed, bytes) in rewritten {
        if bytes > 0 && changed >= bytes && changed.saturating_mul(4) >= total_bytes {
            return Ok(Err(format!(
                "the files {text} rewrote since the last refresh hold as much as the table \
                 ({changed} of {bytes} bytes, {total_bytes} in all its sources): reading the \
                 whole definition costs less"
            )));
        }
    }
    Ok(Ok(Some(sources)))
}

/// The gained and lost rows of a source, as file changes give them (rows in both a removed
/// and an added file cancel when the deltas are made exact in [`Refresh::exact`]).
fn deltas_of(changes: TableChanges) -> Delta {
    if changes.appends_only {
        (changes.added, None)
    } else {
        (changes.added, Some(changes.removed))
    }
}

/// One refresh of one view.
struct Refresh<'a> {
    session: &'a Session,
    view: &'a MaterializedViewRecord,
    storage_name: &'a QualifiedName,
    storage: &'a TableHandle,
    storage_rows: &'a Arc<dyn RowLevelTable>,
    previous_text: Option<&'a str>,
}

impl Refresh<'_> {
    /// A helper relation's name, as the pinned providers of a pass are named.
    fn helper(&self, name: &str) -> QualifiedName {
        QualifiedName {
            catalog: self.view.catalog.clone(),
            schema: self.view.schema.clone(),
            name: format!("$mv_{name}"),
        }
    }

    /// Plans `sql` with `pinned` relations in the view's schema.
    async fn plan(
        &self,
        sql: &str,
        pinned: &[(QualifiedName, Arc<dyn TableProvider>)],
    ) -> Result<(LogicalPlan, datafusion::execution::context::SessionState)> {
        let mut statements = crate::dialect::parse_statements(sql)?;
        let statement = statements.remove(0);
        self.plan_statement(statement, pinned).await
    }

    async fn plan_statement(
        &self,
        statement: Statement,
        pinned: &[(QualifiedName, Arc<dyn TableProvider>)],
    ) -> Result<(LogicalPlan, datafusion::execution::context::SessionState)> {
        let scope = Scope {
            catalog: Some(&self.view.catalog),
            schema: Some(&self.view.schema),
            pinned,
            ..self.session.scope()
        };
        plan_statement(self.session.lakehouse(), statement, scope, 0).await
    }

    /// Runs `sql` over `pinned` relations and keeps its rows in memory.
    async fn collect(
        &self,
        sql: &str,
        pinned: &[(QualifiedName, Arc<dyn TableProvider>)],
    ) -> Result<Arc<MemTable>> {
        let (plan, state) = self.plan(sql, pinned).await?;
        self.collect_plan(plan, state).await
    }

    async fn collect_plan(
        &self,
        plan: LogicalPlan,
        state: datafusion::execution::context::SessionState,
    ) -> Result<Arc<MemTable>> {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let stream = query::execute(self.session, plan, state).await?;
        let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream).await?;
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }

    /// A source's exact gained and lost rows: those of its added files that were not in
    /// its removed ones, and the other way round (each as many times as it differs).
    async fn exact(
        &self,
        added: Arc<dyn TableProvider>,
        removed: Option<Arc<dyn TableProvider>>,
    ) -> Result<Delta> {
        let Some(removed) = removed else {
            return Ok((added, None));
        };
        let pinned = vec![
            (self.helper("added"), added),
            (self.helper("removed"), removed),
        ];
        let a = relation_text(&self.helper("added"));
        let r = relation_text(&self.helper("removed"));
        let columns: Vec<String> = pinned[0]
            .1
            .schema()
            .fields()
            .iter()
            .map(|f| ident(f.name()))
            .collect();
        let gained = self
            .collect(&bag_difference(&a, &r, &columns), &pinned)
            .await?;
        let lost = self
            .collect(&bag_difference(&r, &a, &columns), &pinned)
            .await?;
        Ok((gained, Some(lost)))
    }

    /// The view's rows (or, for a grouped view, its rows before grouping) gained and lost
    /// since the last refresh: one plan per changed source and direction.
    async fn view_changes(
        &self,
        rows_query: &Query,
        sources: &[Source],
    ) -> Result<(Option<LogicalPlan>, Option<LogicalPlan>)> {
        let mut gained: Vec<LogicalPlan> = Vec::new();
        let mut lost: Vec<LogicalPlan> = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            let Some((plus, minus)) = &source.delta else {
                continue;
            };
            for (delta, into) in [(Some(plus), &mut gained), (minus.as_ref(), &mut lost)] {
                let Some(delta) = delta else {
                    continue;
                };
                let pinned: Vec<(QualifiedName, Arc<dyn TableProvider>)> = sources
                    .iter()
                    .enumerate()
                    .map(|(j, s)| {
                        let provider = match j.cmp(&i) {
                            std::cmp::Ordering::Less => s.now.clone(),
                            std::cmp::Ordering::Equal => delta.clone(),
                            std::cmp::Ordering::Greater => s.before.clone(),
                        };
                        (s.name.clone(), provider)
                    })
                    .collect();
                let statement = Statement::Query(Box::new(rows_query.clone()));
                let (plan, state) = self.plan_statement(statement, &pinned).await?;
                into.push(narrowed(self.session, &state, plan, delta).await?);
            }
        }
        let union = |plans: Vec<LogicalPlan>| -> Result<Option<LogicalPlan>> {
            let mut plans = plans.into_iter();
            let Some(first) = plans.next() else {
                return Ok(None);
            };
            let mut builder = LogicalPlanBuilder::from(first);
            for plan in plans {
                builder = builder.union(plan)?;
            }
            Ok(Some(builder.build()?))
        };
        Ok((union(gained)?, union(lost)?))
    }

    async fn incremental(
        &self,
        shape: &Shape,
        definition: &Query,
        mut sources: Vec<Source>,
        full: (LogicalPlan, datafusion::execution::context::SessionState),
        recorded: &RefreshState,
    ) -> Result<u64> {
        for source in &mut sources {
            if let Some((added, removed)) = source.delta.take() {
                source.delta = Some(self.exact(added, removed).await?);
            }
        }
        let rows_query = shape.ungrouped(definition);
        let (gained, lost) = self.view_changes(&rows_query, &sources).await?;
        let as_provider = |plan: Option<LogicalPlan>| -> Option<Arc<dyn TableProvider>> {
            plan.map(|plan| Arc::new(ViewTable::new(plan, None)) as Arc<dyn TableProvider>)
        };
        match shape {
            Shape::Aggregate(aggregate) => {
                self.fold_groups(
                    aggregate,
                    as_provider(gained),
                    as_provider(lost),
                    full,
                    recorded,
                )
                .await
            }
            _ => {
                let lost = match lost {
                    Some(plan) => {
                        let state = full.1.clone();
                        Some(self.collect_plan(plan, state).await? as Arc<dyn TableProvider>)
                    }
                    None => None,
                };
                self.apply_rows(as_provider(gained), lost, recorded).await
            }
        }
    }

    /// A row view: the files holding lost rows rewritten without one copy of each, the
    /// gained rows added, in one commit.
    async fn apply_rows(
        &self,
        gained: Option<Arc<dyn TableProvider>>,
        lost: Option<Arc<dyn TableProvider>>,
        recorded: &RefreshState,
    ) -> Result<u64> {
        let columns: Vec<String> = self.view.columns.iter().map(|c| ident(&c.name)).collect();
        let list = columns.join(", ");
        let mut pinned: Vec<(QualifiedName, Arc<dyn TableProvider>)> = Vec::new();
        let mut parts: Vec<String> = Vec::new();
        let mut files: Vec<String> = Vec::new();
        if let Some(lost) = lost {
            let stored = self.storage_rows.scan(None).await?;
            pinned.push((self.helper("stored"), stored));
            pinned.push((self.helper("lost"), lost));
            let matches: Vec<String> = columns
                .iter()
                .map(|c| format!("s.{c} IS NOT DISTINCT FROM l.{c}"))
                .collect();
            let found = self
                .collect(
                    &format!(
                        "SELECT DISTINCT s.\"$path\" FROM {} s JOIN {} l ON {}",
                        relation_text(&self.helper("stored")),
                        relation_text(&self.helper("lost")),
                        matches.join(" AND ")
                    ),
                    &pinned,
                )
                .await?;
            files = paths_of(&found).await?;
            let touched = self
                .storage_rows
                .scan(Some(Arc::new(files.iter().cloned().collect())))
                .await?;
            pinned.push((self.helper("touched"), touched));
            parts.push(bag_difference(
                &relation_text(&self.helper("touched")),
                &relation_text(&self.helper("lost")),
                &columns,
            ));
        }
        if let Some(gained) = gained {
            pinned.push((self.helper("gained"), gained));
            parts.push(format!(
                "SELECT {list} FROM {}",
                relation_text(&self.helper("gained"))
            ));
        }
        self.commit_query(files, &parts.join(" UNION ALL "), &pinned, recorded)
            .await
    }

    /// A grouped view: each changed group's stored row replaced by its new values (the
    /// stored counts and sums plus what the group gained, minus what it lost; `min` and
    /// `max` of a group that lost rows computed again from the definition), groups left
    /// without rows removed, in one commit.
    async fn fold_groups(
        &self,
        aggregate: &Aggregate,
        gained: Option<Arc<dyn TableProvider>>,
        lost: Option<Arc<dyn TableProvider>>,
        full: (LogicalPlan, datafusion::execution::context::SessionState),
        recorded: &RefreshState,
    ) -> Result<u64> {
        let keys: Vec<String> = (0..aggregate.keys.len())
            .map(|j| format!("aichemy_k_{j}"))
            .collect();
        let value = |i: usize| format!("aichemy_a_{i}");
        let storage_columns: Vec<String> = self
            .storage
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let visible = &self.view.columns;
        // The changes, one row per changed group.
        let mut changes = Vec::new();
        let mut pinned: Vec<(QualifiedName, Arc<dyn TableProvider>)> = Vec::new();
        for (name, provider, sign) in [("gained", gained, 1), ("lost", lost, -1)] {
            if let Some(provider) = provider {
                changes.push(format!(
                    "SELECT *, CAST({sign} AS BIGINT) AS aichemy_sign FROM {}",
                    relation_text(&self.helper(name))
                ));
                pinned.push((self.helper(name), provider));
            }
        }
        let mut folded = keys.clone();
        folded.push("sum(aichemy_sign) AS aichemy_rows".into());
        folded.push("max(CASE WHEN aichemy_sign < 0 THEN 1 ELSE 0 END) AS aichemy_lost".into());
        for (i, output) in aggregate.outputs.iter().enumerate() {
            let Output::Function(function, Some(_)) = output else {
                continue;
            };
            let v = value(i);
            folded.push(format!(
                "sum(CASE WHEN {v} IS NULL THEN 0 ELSE aichemy_sign END) AS aichemy_n_{i}"
            ));
            match function {
                Function::Sum | Function::Avg => folded.push(format!(
                    "sum(CASE WHEN aichemy_sign > 0 THEN {v} ELSE -{v} END) AS aichemy_s_{i}"
                )),
                Function::Min => folded.push(format!(
                    "min(CASE WHEN aichemy_sign > 0 THEN {v} END) AS aichemy_m_{i}"
                )),
                Function::Max => folded.push(format!(
                    "max(CASE WHEN aichemy_sign > 0 THEN {v} END) AS aichemy_m_{i}"
                )),
                Function::Count => {}
            }
        }
        let group_by = if keys.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", keys.join(", "))
        };
        // Each changed group beside its stored row (if any).
        let stored = self.storage_rows.scan(None).await?;
        pinned.push((self.helper("stored"), stored));
        // `<stored>.<key column> IS NOT DISTINCT FROM <changes>.aichemy_k_<j>`, every key.
        let same_group = |stored: &str, changes: &str| -> String {
            let on: Vec<String> = aggregate
                .keys
                .iter()
                .enumerate()
                .map(|(j, (_, output))| {
                    format!(
                        "{stored}.{} IS NOT DISTINCT FROM {changes}.aichemy_k_{j}",
                        ident(&visible[*output].name)
                    )
                })
                .collect();
            if on.is_empty() {
                "TRUE".to_string()
            } else {
                on.join(" AND ")
            }
        };
        let on = same_group("o", "g");
        let old: Vec<String> = storage_columns
            .iter()
            .enumerate()
            .map(|(c, name)| format!("o.{} AS aichemy_o_{c}", ident(name)))
            .collect();
        let joined = self
            .collect(
                &format!(
                    "WITH d AS ({}), g AS (SELECT {} FROM d{group_by}) \
                     SELECT g.*, {}, o.\"$path\" AS aichemy_path FROM g LEFT JOIN {} o ON {on}",
                    changes.join(" UNION ALL "),
                    folded.join(", "),
                    old.join(", "),
                    relation_text(&self.helper("stored")),
                ),
                &pinned,
            )
            .await?;
        let files: Vec<String> = {
            let pinned = vec![(
                self.helper("joined"),
                joined.clone() as Arc<dyn TableProvider>,
            )];
            let found = self
                .collect(
                    &format!(
                        "SELECT DISTINCT aichemy_path FROM {} WHERE aichemy_path IS NOT NULL",
                        relation_text(&self.helper("joined"))
                    ),
                    &pinned,
                )
                .await?;
            paths_of(&found).await?
        };

        // The new values of each storage column, from the stored row `o` and the changes.
        let old_of = |name: &str| -> String {
            let c = storage_columns
                .iter()
                .position(|n| n == name)
                .expect("a storage column");
            format!("aichemy_o_{c}")
        };
        let rows = format!("(COALESCE({}, 0) + aichemy_rows)", old_of(ROWS_COLUMN));
        let mut new_values: Vec<String> = Vec::new();
        for (i, output) in aggregate.outputs.iter().enumerate() {
            let column = &visible[i].name;
            let o = old_of(column);
            let n = |state: &str| format!("(COALESCE({}, 0) + aichemy_n_{i})", old_of(state));
            let expr = match output {
                Output::Key(j) => format!("aichemy_k_{j}"),
                Output::Function(Function::Count, None) => rows.clone(),
                Output::Function(Function::Count, Some(_)) => {
                    format!("(COALESCE({o}, 0) + aichemy_n_{i})")
                }
                Output::Function(Function::Sum, _) => format!(
                    "CASE WHEN {} = 0 THEN NULL ELSE COALESCE({o}, 0) + COALESCE(aichemy_s_{i}, 0) END",
                    n(&count_column(i))
                ),
                Output::Function(Function::Avg, _) => {
                    let sum = format!(
                        "(COALESCE({}, 0) + COALESCE(aichemy_s_{i}, 0))",
                        old_of(&sum_column(i))
                    );
                    let count = n(&count_column(i));
                    let trino_type = &visible[i].trino_type;
                    let quotient = if trino_type.starts_with("decimal") {
                        format!("CAST({sum} AS {trino_type}) / {count}")
                    } else {
                        format!("CAST({sum} AS double) / {count}")
                    };
                    format!("CASE WHEN {count} = 0 THEN NULL ELSE {quotient} END")
                }
                Output::Function(function, _) => {
                    let better = if *function == Function::Min { "<" } else { ">" };
                    let m = format!("aichemy_m_{i}");
                    format!(
                        "CASE WHEN {o} IS NULL THEN {m} WHEN {m} IS NULL THEN {o} \
                         WHEN {m} {better} {o} THEN {m} ELSE {o} END"
                    )
                }
            };
            new_values.push(expr);
        }
        // The state columns, in the storage table's order after the visible ones.
        for name in storage_columns.iter().skip(visible.len()) {
            let expr = if name == ROWS_COLUMN {
                rows.clone()
            } else if let Some(i) = name
                .strip_prefix("_aichemy_count_")
                .and_then(|i| i.parse::<usize>().ok())
            {
                format!("(COALESCE({}, 0) + aichemy_n_{i})", old_of(name))
            } else if let Some(i) = name
                .strip_prefix("_aichemy_sum_")
                .and_then(|i| i.parse::<usize>().ok())
            {
                format!(
                    "CASE WHEN (COALESCE({}, 0) + aichemy_n_{i}) = 0 THEN NULL \
                     ELSE COALESCE({}, 0) + COALESCE(aichemy_s_{i}, 0) END",
                    old_of(&count_column(i)),
                    old_of(name)
                )
            } else {
                return Err(TrinoError::internal(format!(
                    "unknown state column {name} in {}",
                    self.storage_name
                )));
            };
            new_values.push(expr);
        }
        let recompute = aggregate.has_min_or_max();
        let mut keep = vec![if keys.is_empty() {
            "TRUE".to_string()
        } else {
            format!("{rows} > 0")
        }];
        if recompute {
            keep.push("aichemy_lost = 0".into());
        }
        let mut pinned = vec![(self.helper("joined"), joined as Arc<dyn TableProvider>)];
        let names: Vec<String> = storage_columns.iter().map(|c| ident(c)).collect();
        let mut parts = vec![format!(
            "SELECT {} FROM {} WHERE {}",
            new_values.join(", "),
            relation_text(&self.helper("joined")),
            keep.join(" AND ")
        )];
        // The stored rows of the touched files whose group did not change.
        let touched = self
            .storage_rows
            .scan(Some(Arc::new(files.iter().cloned().collect())))
            .await?;
        pinned.push((self.helper("touched"), touched));
        let changed_keys = if keys.is_empty() {
            "SELECT DISTINCT 1 AS aichemy_changed".to_string()
        } else {
            format!("SELECT DISTINCT {}, 1 AS aichemy_changed", keys.join(", "))
        };
        let t_names: Vec<String> = names.iter().map(|n| format!("t.{n}")).collect();
        parts.push(format!(
            "SELECT {} FROM {} t LEFT JOIN ({changed_keys} FROM {}) c ON {} WHERE c.aichemy_changed IS NULL",
            t_names.join(", "),
            relation_text(&self.helper("touched")),
            relation_text(&self.helper("joined")),
            same_group("t", "c")
        ));
        if recompute {
            // Groups that lost rows, their min/max computed again from the definition.
            let (plan, _) = full;
            pinned.push((
                self.helper("definition"),
                Arc::new(ViewTable::new(plan, None)),
            ));
            let f_names: Vec<String> = names.iter().map(|n| format!("f.{n}")).collect();
            let lost_keys = if keys.is_empty() {
                "SELECT DISTINCT 1 AS aichemy_one".to_string()
            } else {
                format!("SELECT DISTINCT {}", keys.join(", "))
            };
            parts.push(format!(
                "SELECT {} FROM {} f JOIN ({lost_keys} FROM {} WHERE aichemy_lost = 1) c ON {}",
                f_names.join(", "),
                relation_text(&self.helper("definition")),
                relation_text(&self.helper("joined")),
                same_group("f", "c")
            ));
        }
        self.commit_query(files, &parts.join(" UNION ALL "), &pinned, recorded)
            .await
    }

    /// Plans `sql` (the storage table's new rows for `files`), then commits them.
    async fn commit_query(
        &self,
        files: Vec<String>,
        sql: &str,
        pinned: &[(QualifiedName, Arc<dyn TableProvider>)],
        recorded: &RefreshState,
    ) -> Result<u64> {
        let (plan, state) = self.plan(sql, pinned).await?;
        let plan = query::conformed(self.storage_name, plan, &self.storage.provider.schema())?;
        let rows = query::execute(self.session, plan, state).await?;
        self.commit(files, rows, recorded).await
    }

    /// Replaces `files` of the storage table by `rows`, recording `recorded`.
    async fn commit(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
        recorded: &RefreshState,
    ) -> Result<u64> {
        let position =
            serde_json::to_string(recorded).map_err(|e| TrinoError::internal(e.to_string()))?;
        let recording = Recording {
            job: RECORDING_JOB,
            expected: self.previous_text,
            position: &position,
        };
        self.storage_rows
            .commit_recording(files, rows, recording)
            .await
            .map_err(|e| match e {
                TableError::Conflict { .. } => TrinoError::new(
                    ErrorCode::TRANSACTION_CONFLICT,
                    format!(
                        "Materialized view '{}.{}.{}' was refreshed by another statement meanwhile",
                        self.view.catalog, self.view.schema, self.view.name
                    ),
                ),
                other => other.into(),
            })
    }
}

/// The rows of relation `left` less those of `right`, as bags: each row as many times as
/// `left` has it more often than `right` (DataFusion's `EXCEPT ALL` removes every copy).
/// One aggregation counts each distinct row on both sides; the surplus is repeated.
fn bag_difference(left: &str, right: &str, columns: &[String]) -> String {
    let list = columns.join(", ");
    let g_list: Vec<String> = columns.iter().map(|c| format!("g.{c}")).collect();
    format!(
        "SELECT {} FROM (SELECT {list}, sum(aichemy_sign) AS aichemy_n FROM \
         (SELECT {list}, 1 AS aichemy_sign FROM {left} \
          UNION ALL SELECT {list}, -1 AS aichemy_sign FROM {right}) d \
         GROUP BY {list} HAVING sum(aichemy_sign) > 0) g \
         CROSS JOIN UNNEST(sequence(1, g.aichemy_n)) AS u(aichemy_copy)",
        g_list.join(", ")
    )
}

/// The text values of the one column of `table`.
async fn paths_of(table: &MemTable) -> Result<Vec<String>> {
    let mut paths = BTreeSet::new();
    for partition in table.batches.iter() {
        for batch in partition.read().await.iter() {
            let column = datafusion::arrow::compute::cast(
                batch.column(0),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
            .map_err(datafusion::error::DataFusionError::from)?;
            for path in column.as_string::<i32>().iter().flatten() {
                paths.insert(path.to_string());
            }
        }
    }
    Ok(paths.into_iter().collect())
}
