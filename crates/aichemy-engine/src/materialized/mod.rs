//! Materialized views: an Iceberg storage table holding a query's rows, and a record of
//! what they were computed from (each source table's version, the time and kind of the
//! refresh) kept in the storage table's own commits, so that the rows and their record
//! change together. A query of the view reads the stored rows while they are fresh (no
//! source moved since) or stale within the grace period, and runs the definition
//! otherwise (or fails, `WHEN STALE FAIL`), as Trino does. `shape.rs` tells whether a
//! definition can be refreshed from the sources' changes, `refresh.rs` refreshes,
//! `narrow.rs` keeps a change's joins from reading more of the other sources than it can join.

mod narrow;
mod refresh;
mod shape;

use std::sync::Arc;

use aichemy_metastore::MaterializedViewRecord;
use datafusion::catalog::TableProvider;
use datafusion::execution::context::SessionState;
use serde::{Deserialize, Serialize};

use crate::catalog::lakehouse::{Lakehouse, QualifiedName};
use crate::error::{ErrorCode, Result, TrinoError};

pub(crate) use refresh::refresh;
pub(crate) use shape::Shape;

/// The ingestion-style record a refresh commits to the storage table under.
pub(crate) const RECORDING_JOB: &str = "materialized-view";

/// What the stored rows were computed from, as a refresh records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RefreshState {
    /// Every relation the definition read, with its version (`None`: unknown, as for
    /// tables of formats that do not say and for system tables).
    pub sources: Vec<SourceVersion>,
    /// When the refresh committed, in milliseconds since the epoch.
    pub refreshed_at_ms: i64,
    /// `FULL` or `INCREMENTAL`.
    pub kind: String,
    /// Why a full refresh ran where an incremental one was asked for, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SourceVersion {
    pub catalog: String,
    pub schema: String,
    pub table: String,
    pub version: Option<i64>,
}

impl SourceVersion {
    pub(crate) fn name(&self) -> QualifiedName {
        QualifiedName {
            catalog: self.catalog.clone(),
            schema: self.schema.clone(),
            name: self.table.clone(),
        }
    }
}

/// Whether the stored rows answer for the sources as they are now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    Fresh,
    Stale,
    /// A source whose version cannot be told.
    Unknown,
}

impl Freshness {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Freshness::Fresh => "FRESH",
            Freshness::Stale => "STALE",
            Freshness::Unknown => "UNKNOWN",
        }
    }
}

/// A materialized view's record, `None` when there is none by that name.
pub(crate) async fn record(
    lakehouse: &Lakehouse,
    name: &QualifiedName,
) -> Result<Option<MaterializedViewRecord>> {
    lakehouse.catalog(&name.catalog)?;
    Ok(lakehouse
        .metastore()
        .get_materialized_view(&name.catalog, &name.schema, &name.name)
        .await?)
}

/// Trino's error for a missing materialized view.
pub(crate) fn not_found(name: &QualifiedName) -> TrinoError {
    TrinoError::new(
        ErrorCode::TABLE_NOT_FOUND,
        format!("Materialized view '{name}' does not exist"),
    )
}

/// The storage table's name.
pub(crate) fn storage_name(view: &MaterializedViewRecord) -> QualifiedName {
    QualifiedName {
        catalog: view.catalog.clone(),
        schema: view.storage_schema.clone(),
        name: view.storage_table.clone(),
    }
}

/// The last refresh's record and how fresh the stored rows are now.
pub(crate) async fn freshness(
    lakehouse: &Lakehouse,
    view: &MaterializedViewRecord,
) -> Result<(Option<RefreshState>, Freshness)> {
    let Some(storage) = lakehouse.load_table(&storage_name(view)).await? else {
        return Ok((None, Freshness::Stale));
    };
    let Some(state) = recorded_state(&storage).await? else {
        return Ok((None, Freshness::Stale));
    };
    let mut freshness = Freshness::Fresh;
    for source in &state.sources {
        let Some(version) = source.version else {
            freshness = Freshness::Unknown;
            continue;
        };
        let now = lakehouse
            .load_table(&source.name())
            .await?
            .and_then(|t| t.rows)
            .and_then(|rows| rows.version());
        if now != Some(version) {
            return Ok((Some(state), Freshness::Stale));
        }
    }
    Ok((Some(state), freshness))
}

/// The refresh record a storage table's newest commit carries.
pub(crate) async fn recorded_state(
    storage: &aichemy_tables::TableHandle,
) -> Result<Option<RefreshState>> {
    let Some(rows) = &storage.rows else {
        return Ok(None);
    };
    Ok(rows
        .recorded_position(RECORDING_JOB)
        .await?
        .as_deref()
        .and_then(parse_state))
}

/// A refresh record as [`RECORDING_JOB`]'s position holds it; `None` if unreadable.
pub(crate) fn parse_state(text: &str) -> Option<RefreshState> {
    serde_json::from_str(text).ok()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `"name"` with its quotes doubled.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"catalog"."schema"."name"`.
pub(crate) fn relation_text(name: &QualifiedName) -> String {
    format!(
        "{}.{}.{}",
        ident(&name.catalog),
        ident(&name.schema),
        ident(&name.name)
    )
}

/// What a query reading the view reads: the stored rows while they may answer, else the
/// definition (or an error, `WHEN STALE FAIL`).
pub(crate) async fn relation(
    lakehouse: &Arc<Lakehouse>,
    name: &QualifiedName,
    view: &MaterializedViewRecord,
    state: &SessionState,
    depth: usize,
) -> Result<Arc<dyn TableProvider>> {
    if depth > 16 {
        return Err(TrinoError::new(
            ErrorCode::INVALID_VIEW,
            format!("View '{name}' is recursive or nested too deeply"),
        ));
    }
    let (last, freshness) = freshness(lakehouse, view).await?;
    let stored = match (&last, freshness) {
        (None, _) => false,
        (Some(_), Freshness::Fresh) => true,
        (Some(last), _) => view
            .grace_period_ms
            .is_none_or(|grace| now_ms() - last.refreshed_at_ms <= grace),
    };
    // The storage table is the view's own: only the view's name guards it.
    let reader = match stored {
        true => crate::planner::BodyReader::Unchecked,
        false => crate::planner::BodyReader::Invoker,
    };
    let sql = if stored {
        let columns: Vec<String> = view.columns.iter().map(|c| ident(&c.name)).collect();
        format!(
            "SELECT {} FROM {}",
            columns.join(", "),
            relation_text(&storage_name(view))
        )
    } else if view.when_stale == "FAIL" {
        return Err(TrinoError::new(
            ErrorCode::GENERIC_USER_ERROR,
            format!("Materialized view '{name}' is stale"),
        ));
    } else {
        view.sql.clone()
    };
    lakehouse
        .stored_query(name, "materialized view", sql, state, depth, reader)
        .await
}

/// Refuses a table statement (`DROP TABLE`, `INSERT`, …) on a materialized view or on its
/// storage table, whose rows only a refresh changes.
pub(crate) async fn refuse_table_statement(
    lakehouse: &Lakehouse,
    name: &QualifiedName,
    statement: &str,
) -> Result<()> {
    lakehouse.catalog(&name.catalog)?;
    let Some(view) = lakehouse
        .metastore()
        .materialized_view_named_or_stored_in(&name.catalog, &name.schema, &name.name)
        .await?
    else {
        return Ok(());
    };
    if view.stores_in(&name.schema, &name.name) {
        return Err(TrinoError::new(
            ErrorCode::NOT_SUPPORTED,
            format!(
                "{statement} is not supported on '{name}': it stores materialized view '{}.{}.{}'",
                view.catalog, view.schema, view.name
            ),
        ));
    }
    let hint = if statement == "DROP TABLE" {
        ": use DROP MATERIALIZED VIEW"
    } else {
        ""
    };
    Err(TrinoError::new(
        ErrorCode::NOT_SUPPORTED,
        format!("{statement} is not supported on materialized view '{name}'{hint}"),
    ))
}
