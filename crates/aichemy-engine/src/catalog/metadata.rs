//! Metadata tables: `information_schema` in every catalog (with Trino's column names)
//! and the `system` catalog.

use std::collections::HashSet;
use std::sync::Arc;

use aichemy_access::TableName;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;

use crate::access::Access;
use crate::catalog::lakehouse::{CatalogEntry, Lakehouse, QualifiedName};
use crate::error::{Result, TrinoError};
use crate::types::{column_type_names, trino_type_name};

/// Schemas of the `system` catalog besides `information_schema`.
pub const SYSTEM_SCHEMAS: [&str; 3] = ["jdbc", "metadata", "runtime"];

/// A metadata table's columns: name and whether it holds numbers rather than text.
type Columns = &'static [(&'static str, bool)];

const SCHEMATA: Columns = &[("catalog_name", false), ("schema_name", false)];
const TABLES: Columns = &[
    ("table_catalog", false),
    ("table_schema", false),
    ("table_name", false),
    ("table_type", false),
    ("table_comment", false),
];
const COLUMNS: Columns = &[
    ("table_catalog", false),
    ("table_schema", false),
    ("table_name", false),
    ("column_name", false),
    ("ordinal_position", true),
    ("column_default", false),
    ("is_nullable", false),
    ("data_type", false),
    ("comment", false),
    ("extra_info", false),
];
const VIEWS: Columns = &[
    ("table_catalog", false),
    ("table_schema", false),
    ("table_name", false),
    ("view_definition", false),
];
const INFORMATION_SCHEMA: [(&str, Columns); 4] = [
    ("columns", COLUMNS),
    ("schemata", SCHEMATA),
    ("tables", TABLES),
    ("views", VIEWS),
];

const CATALOGS: Columns = &[
    ("catalog_name", false),
    ("connector_id", false),
    ("connector_name", false),
];
const TABLE_COMMENTS: Columns = &[
    ("catalog_name", false),
    ("schema_name", false),
    ("table_name", false),
    ("comment", false),
];
/// Trino's columns; no catalog here has materialized views yet, so it has no rows (dbt-trino
/// reads it before anything else).
const MATERIALIZED_VIEWS: Columns = &[
    ("catalog_name", false),
    ("schema_name", false),
    ("name", false),
    ("storage_catalog", false),
    ("storage_schema", false),
    ("storage_table", false),
    ("freshness", false),
    ("last_fresh_time", false),
    ("comment", false),
    ("definition", false),
    ("last_refresh_type", false),
    ("last_refresh_reason", false),
];
const JDBC_CATALOGS: Columns = &[("table_cat", false)];
const QUERIES: Columns = &[
    ("query_id", false),
    ("state", false),
    ("user", false),
    ("source", false),
    ("query", false),
    ("error_code", false),
    ("created", false),
    ("elapsed_time_ms", true),
    ("rows", true),
    ("node", false),
    ("client_tags", false),
    ("error_type", false),
    ("end", false),
    ("queued_time_ms", true),
    ("planning_time_ms", true),
    ("execution_time_ms", true),
    ("cpu_time_ms", true),
    ("peak_memory_bytes", true),
    ("bytes", true),
    ("rows_read", true),
    ("bytes_read", true),
    ("rows_written", true),
    ("spilled_bytes", true),
    ("tables_read", false),
    ("columns_read", false),
    ("table_reads", false),
];
const NODES: Columns = &[
    ("node_id", false),
    ("http_uri", false),
    ("node_version", false),
    ("coordinator", false),
    ("state", false),
    ("started", false),
    ("last_heartbeat", false),
];
const INGESTIONS: Columns = &[
    ("ingestion_name", false),
    ("connector", false),
    ("source", false),
    ("target", false),
    ("desired_state", false),
    ("state", false),
    ("node", false),
    ("position", false),
    ("last_commit", false),
    ("rows_ingested", true),
    ("bytes_ingested", true),
    ("commits", true),
    ("dead_letters", true),
    ("lag", true),
    ("last_error", false),
    ("owner", false),
    ("properties", false),
];
const PIPELINES: Columns = &[
    ("pipeline_name", false),
    ("state", false),
    ("schedule", false),
    ("steps", true),
    ("node", false),
    ("next_run", false),
    ("last_run_id", false),
    ("last_run_state", false),
    ("last_run_end", false),
    ("owner", false),
    ("comment", false),
];
const PIPELINE_RUNS: Columns = &[
    ("pipeline_name", false),
    ("run_id", false),
    ("trigger", false),
    ("logical_date", false),
    ("state", false),
    ("node", false),
    ("queued", false),
    ("started", false),
    ("ended", false),
    ("elapsed_ms", true),
    ("error", false),
];
const PIPELINE_STEPS: Columns = &[
    ("pipeline_name", false),
    ("run_id", false),
    ("step_name", false),
    ("state", false),
    ("attempt", true),
    ("started", false),
    ("ended", false),
    ("elapsed_ms", true),
    ("rows_written", true),
    ("query_id", false),
    ("error", false),
];
const PIPELINE_CHECKS: Columns = &[
    ("pipeline_name", false),
    ("run_id", false),
    ("check_name", false),
    ("table_name", false),
    ("state", false),
    ("failing_rows", true),
    ("message", false),
    ("checked", false),
];
const LINEAGE: Columns = &[
    ("recorded", false),
    ("kind", false),
    ("user", false),
    ("query_id", false),
    ("pipeline_name", false),
    ("run_id", false),
    ("step_name", false),
    ("target_catalog", false),
    ("target_schema", false),
    ("target_table", false),
    ("target_column", false),
    ("source_catalog", false),
    ("source_schema", false),
    ("source_table", false),
    ("source_column", false),
    ("lineage_type", false),
    ("transformation", false),
];
const AUDIT: Columns = &[
    ("recorded", false),
    ("kind", false),
    ("user", false),
    ("roles", false),
    ("source_address", false),
    ("user_agent", false),
    ("action", false),
    ("query_id", false),
    ("tables_read", false),
    ("tables_written", false),
    ("columns_read", false),
    ("columns_written", false),
    ("rows", true),
    ("bytes", true),
    ("rows_read", true),
    ("bytes_read", true),
    ("decision", false),
    ("reason", false),
];
const SYSTEM_TABLES: [(&str, &str, Columns); 13] = [
    ("jdbc", "catalogs", JDBC_CATALOGS),
    ("runtime", "nodes", NODES),
    ("metadata", "catalogs", CATALOGS),
    ("metadata", "materialized_views", MATERIALIZED_VIEWS),
    ("metadata", "table_comments", TABLE_COMMENTS),
    ("runtime", "queries", QUERIES),
    ("runtime", "ingestions", INGESTIONS),
    ("runtime", "pipelines", PIPELINES),
    ("runtime", "pipeline_runs", PIPELINE_RUNS),
    ("runtime", "pipeline_steps", PIPELINE_STEPS),
    ("runtime", "pipeline_checks", PIPELINE_CHECKS),
    ("runtime", "lineage", LINEAGE),
    ("runtime", "audit", AUDIT),
];

/// A node silent this long is listed `inactive` (it beats every 5 seconds)...
const NODE_SILENCE_MS: i64 = 15_000;
/// ...and after this long, no longer listed.
const NODES_FORGOTTEN_MS: i64 = 3_600_000;

/// One cell of a metadata row.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(Option<String>),
    Number(i64),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(Some(s.to_string()))
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(Some(s))
    }
}
impl From<Option<String>> for Cell {
    fn from(s: Option<String>) -> Self {
        Cell::Text(s)
    }
}

fn schema_of(columns: Columns) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, number)| {
                Field::new(
                    *name,
                    if *number {
                        DataType::Int64
                    } else {
                        DataType::Utf8
                    },
                    true,
                )
            })
            .collect::<Vec<_>>(),
    ))
}

/// A record batch from rows of cells, for metadata tables and SHOW output.
pub fn batch_of(schema: SchemaRef, rows: &[Vec<Cell>]) -> Result<RecordBatch> {
    let arrays: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| -> ArrayRef {
            match field.data_type() {
                DataType::Int64 => {
                    Arc::new(Int64Array::from_iter(rows.iter().map(|r| match &r[i] {
                        Cell::Number(n) => Some(*n),
                        Cell::Text(_) => None,
                    })))
                }
                _ => Arc::new(StringArray::from_iter(rows.iter().map(|r| match &r[i] {
                    Cell::Text(t) => t.clone(),
                    Cell::Number(n) => Some(n.to_string()),
                }))),
            }
        })
        .collect();
    RecordBatch::try_new(schema, arrays).map_err(|e| TrinoError::internal(e.to_string()))
}

fn mem_table(columns: Columns, rows: Vec<Vec<Cell>>) -> Result<Arc<dyn TableProvider>> {
    let schema = schema_of(columns);
    let batch = batch_of(schema.clone(), &rows)?;
    Ok(Arc::new(
        MemTable::try_new(schema, vec![vec![batch]]).map_err(TrinoError::from)?,
    ))
}

/// A relation of a catalog as information_schema describes it.
struct Relation {
    schema: String,
    name: String,
    kind: &'static str,
    comment: Option<String>,
    /// (column name, Trino type, nullable, comment)
    columns: Vec<(String, String, bool, Option<String>)>,
    view_sql: Option<String>,
}

fn fixed_relation(schema: &str, name: &str, columns: Columns) -> Relation {
    let arrow = schema_of(columns);
    Relation {
        schema: schema.to_string(),
        name: name.to_string(),
        kind: "BASE TABLE",
        comment: None,
        columns: arrow
            .fields()
            .iter()
            .map(|f| (f.name().clone(), trino_type_name(f.data_type()), true, None))
            .collect(),
        view_sql: None,
    }
}

/// Every relation of a catalog that `access`'s user may see (all without a policy), with
/// the columns they may see, in schema then name order. Column details are loaded only
/// when `with_columns` is set, as that reads each table's metadata.
async fn relations(
    lakehouse: &Lakehouse,
    catalog: &str,
    with_columns: bool,
    access: Option<&Access>,
) -> Result<Vec<Relation>> {
    let mut out = Vec::new();
    let entry = lakehouse.catalog(catalog)?;
    if matches!(entry, CatalogEntry::System) {
        for (schema, name, columns) in SYSTEM_TABLES {
            out.push(fixed_relation(schema, name, columns));
        }
    }
    if let Some(format) = entry.table_format()? {
        for schema in format.list_schemas().await? {
            for name in format.list_tables(&schema).await? {
                let mut relation = Relation {
                    schema: schema.clone(),
                    name: name.clone(),
                    kind: "BASE TABLE",
                    comment: None,
                    columns: Vec::new(),
                    view_sql: None,
                };
                if with_columns {
                    if let Some(table) = format.load_table(&schema, &name).await? {
                        relation.comment = table.comment.clone();
                        relation.columns = table
                            .columns
                            .iter()
                            .zip(column_type_names(&table))
                            .map(|(c, trino_type)| {
                                (c.name.clone(), trino_type, c.nullable, c.comment.clone())
                            })
                            .collect();
                    }
                }
                out.push(relation);
            }
        }
    }
    let materialized = lakehouse
        .metastore()
        .list_materialized_views(Some(catalog), None)
        .await?;
    // Storage tables are the views' own; the views are listed as tables.
    out.retain(|r| !materialized.iter().any(|v| v.stores_in(&r.schema, &r.name)));
    for view in materialized {
        out.push(Relation {
            schema: view.schema,
            name: view.name,
            kind: "BASE TABLE",
            comment: view.comment,
            columns: view
                .columns
                .into_iter()
                .map(|c| (c.name, c.trino_type, true, None))
                .collect(),
            view_sql: None,
        });
    }
    for view in lakehouse.metastore().list_views(catalog, None).await? {
        out.push(Relation {
            schema: view.schema,
            name: view.name,
            kind: "VIEW",
            comment: view.comment,
            columns: view
                .columns
                .into_iter()
                .map(|c| (c.name, c.trino_type, true, None))
                .collect(),
            view_sql: Some(view.sql),
        });
    }
    if let Some(access) = access {
        let (rules, who) = (&access.rules, &access.identity);
        if !rules.catalog_visible(who, catalog) {
            return Ok(Vec::new());
        }
        out.retain(|r| rules.table_visible(who, &TableName::new(catalog, &r.schema, &r.name)));
        for relation in &mut out {
            let table = TableName::new(catalog, &relation.schema, &relation.name);
            let names: Vec<&str> = relation.columns.iter().map(|c| c.0.as_str()).collect();
            let visible: HashSet<String> = rules
                .visible_columns(who, &table, &names)
                .into_iter()
                .map(str::to_string)
                .collect();
            relation.columns.retain(|c| visible.contains(&c.0));
        }
    }
    for (name, columns) in INFORMATION_SCHEMA {
        out.push(fixed_relation("information_schema", name, columns));
    }
    out.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    Ok(out)
}

/// A table of `<catalog>.information_schema`, listing what `access`'s user may see.
pub async fn information_schema_table(
    lakehouse: &Lakehouse,
    name: &QualifiedName,
    access: Option<&Access>,
) -> Result<Arc<dyn TableProvider>> {
    let catalog = name.catalog.as_str();
    match name.name.as_str() {
        "schemata" => {
            let mut schemas = lakehouse.list_schemas(catalog).await?;
            schemas.push("information_schema".into());
            schemas.sort();
            if let Some(access) = access {
                let (rules, who) = (&access.rules, &access.identity);
                schemas.retain(|s| {
                    rules.catalog_visible(who, catalog) && rules.schema_visible(who, catalog, s)
                });
            }
            mem_table(
                SCHEMATA,
                schemas
                    .into_iter()
                    .map(|s| vec![catalog.into(), s.into()])
                    .collect(),
            )
        }
        "tables" => {
            let rows = relations(lakehouse, catalog, false, access)
                .await?
                .into_iter()
                .map(|r| {
                    vec![
                        catalog.into(),
                        r.schema.into(),
                        r.name.into(),
                        r.kind.into(),
                        r.comment.into(),
                    ]
                })
                .collect();
            mem_table(TABLES, rows)
        }
        "views" => {
            let rows = relations(lakehouse, catalog, false, access)
                .await?
                .into_iter()
                .filter(|r| r.view_sql.is_some())
                .map(|r| {
                    vec![
                        catalog.into(),
                        r.schema.into(),
                        r.name.into(),
                        r.view_sql.into(),
                    ]
                })
                .collect();
            mem_table(VIEWS, rows)
        }
        "columns" => {
            let mut rows = Vec::new();
            for relation in relations(lakehouse, catalog, true, access).await? {
                for (i, (column, trino_type, nullable, comment)) in
                    relation.columns.into_iter().enumerate()
                {
                    rows.push(vec![
                        catalog.into(),
                        relation.schema.clone().into(),
                        relation.name.clone().into(),
                        column.into(),
                        Cell::Number(i as i64 + 1),
                        Cell::Text(None),
                        (if nullable { "YES" } else { "NO" }).into(),
                        trino_type.into(),
                        comment.into(),
                        Cell::Text(None),
                    ]);
                }
            }
            mem_table(COLUMNS, rows)
        }
        _ => Err(TrinoError::table_not_found(&name.to_string())),
    }
}

/// A table of the `system` catalog.
pub async fn system_table(
    lakehouse: &Lakehouse,
    name: &QualifiedName,
    user: Option<&str>,
) -> Result<Arc<dyn TableProvider>> {
    match (name.schema.as_str(), name.name.as_str()) {
        ("jdbc", "catalogs") => mem_table(
            JDBC_CATALOGS,
            lakehouse
                .catalog_names()
                .into_iter()
                .map(|c| vec![c.into()])
                .collect(),
        ),
        ("metadata", "catalogs") => mem_table(
            CATALOGS,
            lakehouse
                .catalog_connectors()
                .into_iter()
                .map(|(c, connector)| vec![c.clone().into(), c.into(), connector.into()])
                .collect(),
        ),
        ("metadata", "materialized_views") => {
            let mut rows = materialized_view_rows(lakehouse).await?;
            let seen = Seen::new(lakehouse, user)?;
            rows.retain(|r| seen.table(cell(r, 0), cell(r, 1), cell(r, 2)));
            mem_table(MATERIALIZED_VIEWS, rows)
        }
        ("metadata", "table_comments") => {
            let access = match user {
                Some(user) => lakehouse.access(user)?,
                None => None,
            };
            let mut rows = Vec::new();
            for catalog in lakehouse.catalog_names() {
                for relation in relations(lakehouse, &catalog, true, access.as_ref()).await? {
                    if relation.schema != "information_schema" {
                        rows.push(vec![
                            catalog.clone().into(),
                            relation.schema.into(),
                            relation.name.into(),
                            relation.comment.into(),
                        ]);
                    }
                }
            }
            mem_table(TABLE_COMMENTS, rows)
        }
        ("runtime", "queries") => {
            let number = |n: Option<i64>| n.map_or(Cell::Text(None), Cell::Number);
            let rows = lakehouse
                .queries(user)
                .await?
                .into_iter()
                .map(|q| {
                    vec![
                        q.query_id.into(),
                        q.state.into(),
                        q.user.into(),
                        Cell::Text(q.source),
                        q.query.into(),
                        Cell::Text(q.error_code),
                        q.created.into(),
                        Cell::Number(q.elapsed_ms),
                        Cell::Number(q.rows),
                        Cell::Text(q.node),
                        q.client_tags.join(",").into(),
                        Cell::Text(q.error_type),
                        Cell::Text(q.ended),
                        number(q.queued_ms),
                        number(q.planning_ms),
                        number(q.execution_ms),
                        number(q.cpu_ms),
                        number(q.peak_memory_bytes),
                        number(q.bytes),
                        number(q.rows_read),
                        number(q.bytes_read),
                        number(q.rows_written),
                        number(q.spilled_bytes),
                        q.tables_read.join(",").into(),
                        q.columns_read.join(",").into(),
                        serde_json::to_string(&q.table_reads)
                            .unwrap_or_else(|_| "[]".into())
                            .as_str()
                            .into(),
                    ]
                })
                .collect();
            mem_table(QUERIES, rows)
        }
        ("runtime", "nodes") => {
            let now = chrono::Utc::now().timestamp_millis();
            let rows = lakehouse
                .metastore()
                .nodes(now - NODES_FORGOTTEN_MS)
                .await?
                .into_iter()
                .map(|n| {
                    let active = now - n.heartbeat_ms <= NODE_SILENCE_MS;
                    vec![
                        n.node_id.into(),
                        Cell::Text(n.http_uri),
                        n.node_version.into(),
                        "true".into(),
                        if active { "active" } else { "inactive" }.into(),
                        super::lakehouse::utc_millis(n.started_ms).into(),
                        super::lakehouse::utc_millis(n.heartbeat_ms).into(),
                    ]
                })
                .collect();
            mem_table(NODES, rows)
        }
        ("runtime", "ingestions") => {
            let mut rows = ingestion_rows(lakehouse).await?;
            let seen = Seen::new(lakehouse, user)?;
            rows.retain(|r| seen.owns(cell(r, 15)) || seen.named_table(cell(r, 3)));
            mem_table(INGESTIONS, rows)
        }
        ("runtime", "pipelines") => {
            let mut rows = pipeline_rows(lakehouse).await?;
            let seen = Seen::new(lakehouse, user)?;
            rows.retain(|r| seen.owns(cell(r, 9)));
            mem_table(PIPELINES, rows)
        }
        ("runtime", table @ ("pipeline_runs" | "pipeline_steps" | "pipeline_checks")) => {
            let (columns, mut rows) = match table {
                "pipeline_runs" => (PIPELINE_RUNS, pipeline_run_rows(lakehouse).await?),
                "pipeline_steps" => (PIPELINE_STEPS, pipeline_step_rows(lakehouse).await?),
                _ => (PIPELINE_CHECKS, pipeline_check_rows(lakehouse).await?),
            };
            let seen = Seen::new(lakehouse, user)?;
            if !seen.all() {
                // A run is its pipeline's: seen by whoever sees the pipeline.
                let owners: std::collections::BTreeMap<Option<String>, Option<String>> =
                    pipeline_rows(lakehouse)
                        .await?
                        .iter()
                        .map(|r| {
                            (
                                cell(r, 0).map(str::to_string),
                                cell(r, 9).map(str::to_string),
                            )
                        })
                        .collect();
                rows.retain(|r| {
                    let pipeline = cell(r, 0).map(str::to_string);
                    seen.owns(owners.get(&pipeline).and_then(|o| o.as_deref()))
                });
            }
            mem_table(columns, rows)
        }
        ("runtime", "lineage") => {
            let mut rows = crate::lineage::rows(lakehouse).await?;
            let seen = Seen::new(lakehouse, user)?;
            rows.retain(|r| {
                seen.table(cell(r, 7), cell(r, 8), cell(r, 9))
                    && (cell(r, 13).is_none() || seen.table(cell(r, 11), cell(r, 12), cell(r, 13)))
            });
            mem_table(LINEAGE, rows)
        }
        ("runtime", "audit") => mem_table(AUDIT, audit_rows(lakehouse, user).await?),
        (schema, _) if !SYSTEM_SCHEMAS.contains(&schema) => {
            Err(TrinoError::schema_not_found(schema))
        }
        _ => Err(TrinoError::table_not_found(&name.to_string())),
    }
}

/// A text cell of a row.
fn cell(row: &[Cell], at: usize) -> Option<&str> {
    match row.get(at) {
        Some(Cell::Text(Some(text))) => Some(text),
        _ => None,
    }
}

/// What a system table's user may see of its rows under the access policy: the tables
/// she may see, and the jobs she owns (all of them for an administrator).
struct Seen {
    access: Option<crate::access::Access>,
    user: Option<String>,
    admin: bool,
}

impl Seen {
    fn new(lakehouse: &Lakehouse, user: Option<&str>) -> Result<Self> {
        let access = match (lakehouse.policy(), user) {
            (Some(_), Some(user)) => lakehouse.access(user)?,
            _ => None,
        };
        let admin = match (&access, user) {
            (None, _) => true,
            (Some(_), Some(user)) if lakehouse.sql_grants() => {
                lakehouse.grant_admins().contains(user)
            }
            (Some(access), _) => access
                .rules
                .system_information(&access.identity, aichemy_access::SystemAccess::Read),
        };
        Ok(Self {
            access,
            user: user.map(str::to_string),
            admin,
        })
    }

    /// Everything: no policy, or an administrator.
    fn all(&self) -> bool {
        self.admin
    }

    fn table(&self, catalog: Option<&str>, schema: Option<&str>, table: Option<&str>) -> bool {
        let Some(access) = &self.access else {
            return true;
        };
        let name = aichemy_access::TableName::new(
            catalog.unwrap_or_default(),
            schema.unwrap_or_default(),
            table.unwrap_or_default(),
        );
        access.rules.table_visible(&access.identity, &name)
    }

    /// A table named `catalog.schema.table`.
    fn named_table(&self, name: Option<&str>) -> bool {
        let mut parts = name.unwrap_or_default().splitn(3, '.');
        self.table(parts.next(), parts.next(), parts.next())
    }

    /// A job `owner` owns, seen by her and by administrators.
    fn owns(&self, owner: Option<&str>) -> bool {
        self.admin || (owner.is_some() && owner == self.user.as_deref())
    }
}

/// The rows of `system.runtime.audit`: all of them for an administrator (under SQL grants
/// a holder of `admin`; under a rules file a user with `system_information` read; without
/// a policy one of `server.admin_users`), a user's own for anyone else.
async fn audit_rows(lakehouse: &Lakehouse, user: Option<&str>) -> Result<Vec<Vec<Cell>>> {
    let Some(user) = user else {
        return Ok(Vec::new());
    };
    let sees_all = lakehouse.reads_system_information(user);
    let records = lakehouse
        .metastore()
        .audit_records((!sees_all).then_some(user))
        .await?;
    Ok(records
        .into_iter()
        .map(|r| {
            let recorded = chrono::DateTime::from_timestamp_millis(r.recorded_ms)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string());
            vec![
                Cell::Text(recorded),
                r.kind.into(),
                Cell::Text(r.user),
                r.roles.join(",").into(),
                Cell::Text(r.source_address),
                Cell::Text(r.user_agent),
                r.action.into(),
                Cell::Text(r.query_id),
                r.read.join(",").into(),
                r.written.join(",").into(),
                r.columns_read.join(",").into(),
                r.columns_written.join(",").into(),
                r.rows.map_or(Cell::Text(None), Cell::Number),
                r.bytes.map_or(Cell::Text(None), Cell::Number),
                r.rows_read.map_or(Cell::Text(None), Cell::Number),
                r.bytes_read.map_or(Cell::Text(None), Cell::Number),
                r.decision.into(),
                Cell::Text(r.reason),
            ]
        })
        .collect())
}

/// The rows of `system.runtime.ingestions`: each job's definition from the metastore with
/// the status its server last reported (a lease past its deadline shows no node).
async fn ingestion_rows(lakehouse: &Lakehouse) -> Result<Vec<Vec<Cell>>> {
    use crate::ingestion::{IngestionDefinition, IngestionStatus};
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut rows = Vec::new();
    for record in lakehouse.metastore().list_ingestions().await? {
        let Ok(definition) = serde_json::from_str::<IngestionDefinition>(&record.definition_json)
        else {
            continue;
        };
        let status: IngestionStatus = record
            .status_json
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        let held = record.lease_until.is_some_and(|until| until >= now_ms);
        let state = match (record.desired_state.as_str(), held) {
            ("paused", _) => "paused".to_string(),
            (_, true) => status.state.clone(),
            (_, false) if status.state == "failed" => "failed".to_string(),
            (_, false) => "waiting".to_string(),
        };
        let last_commit = status.last_commit_ms.and_then(|ms| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
        });
        rows.push(vec![
            record.name.into(),
            definition.connector.clone().into(),
            definition.source().into(),
            definition.target.to_string().into(),
            record.desired_state.into(),
            state.into(),
            Cell::Text(record.lease_node.filter(|_| held)),
            Cell::Text(status.position),
            Cell::Text(last_commit),
            Cell::Number(status.rows as i64),
            Cell::Number(status.bytes as i64),
            Cell::Number(status.commits as i64),
            Cell::Number(status.dead_letters as i64),
            Cell::Number(status.lag.unwrap_or(0)),
            Cell::Text(status.last_error),
            definition.owner.clone().into(),
            definition.shown_properties().into(),
        ]);
    }
    Ok(rows)
}

/// A time in ms since the epoch as the system tables show times.
fn time_text(ms: Option<i64>) -> Cell {
    Cell::Text(ms.and_then(|ms| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
    }))
}

fn elapsed(started: Option<i64>, ended: Option<i64>) -> Cell {
    let now = chrono::Utc::now().timestamp_millis();
    Cell::Number(started.map_or(0, |s| ended.unwrap_or(now) - s))
}

/// The rows of `system.runtime.pipelines`: each pipeline with the node that holds it (a
/// lease past its deadline shows none), its next scheduled time and its newest run.
async fn pipeline_rows(lakehouse: &Lakehouse) -> Result<Vec<Vec<Cell>>> {
    use crate::pipeline::PipelineDefinition;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let metastore = lakehouse.metastore();
    let runs = metastore.list_pipeline_runs(None, i64::MAX).await?;
    let mut rows = Vec::new();
    for record in metastore.list_pipelines().await? {
        let Ok(definition) = serde_json::from_str::<PipelineDefinition>(&record.definition_json)
        else {
            continue;
        };
        let held = record.lease_until.is_some_and(|until| until >= now_ms);
        let next = match (&definition.schedule, record.desired_state.as_str()) {
            (Some(schedule), "active") => schedule.next_after(match record.scheduled_until {
                0 => now_ms,
                until => until,
            }),
            _ => None,
        };
        let last = runs.iter().find(|r| r.pipeline == record.name);
        rows.push(vec![
            record.name.clone().into(),
            record.desired_state.clone().into(),
            Cell::Text(definition.schedule.as_ref().map(|s| s.text())),
            Cell::Number(definition.steps.len() as i64),
            Cell::Text(record.lease_node.filter(|_| held)),
            time_text(next),
            Cell::Text(last.map(|r| r.run_id.clone())),
            Cell::Text(last.map(|r| r.state.clone())),
            time_text(last.and_then(|r| r.ended_ms)),
            definition.owner.clone().into(),
            Cell::Text(definition.comment.clone()),
        ]);
    }
    Ok(rows)
}

/// The rows of `system.runtime.pipeline_runs`, newest first.
async fn pipeline_run_rows(lakehouse: &Lakehouse) -> Result<Vec<Vec<Cell>>> {
    Ok(lakehouse
        .metastore()
        .list_pipeline_runs(None, i64::MAX)
        .await?
        .into_iter()
        .map(|run| {
            vec![
                run.pipeline.into(),
                run.run_id.into(),
                run.trigger.into(),
                run.logical_date.into(),
                run.state.into(),
                Cell::Text(run.node),
                time_text(Some(run.queued_ms)),
                time_text(run.started_ms),
                time_text(run.ended_ms),
                elapsed(run.started_ms, run.ended_ms),
                Cell::Text(run.error),
            ]
        })
        .collect())
}

/// The rows of `system.runtime.pipeline_steps`: the latest attempt of each step of the
/// runs the metastore keeps.
async fn pipeline_step_rows(lakehouse: &Lakehouse) -> Result<Vec<Vec<Cell>>> {
    let metastore = lakehouse.metastore();
    let pipelines = run_pipelines(lakehouse).await?;
    Ok(metastore
        .list_pipeline_steps(None, i64::MAX)
        .await?
        .into_iter()
        .map(|step| {
            vec![
                Cell::Text(pipelines.get(&step.run_id).cloned()),
                step.run_id.into(),
                step.step.into(),
                step.state.into(),
                Cell::Number(step.attempt),
                time_text(step.started_ms),
                time_text(step.ended_ms),
                elapsed(step.started_ms, step.ended_ms),
                Cell::Number(step.rows_written.unwrap_or(0)),
                Cell::Text(step.query_id),
                Cell::Text(step.error),
            ]
        })
        .collect())
}

/// The pipeline each kept run belongs to.
async fn run_pipelines(
    lakehouse: &Lakehouse,
) -> Result<std::collections::BTreeMap<String, String>> {
    Ok(lakehouse
        .metastore()
        .list_pipeline_runs(None, i64::MAX)
        .await?
        .into_iter()
        .map(|r| (r.run_id, r.pipeline))
        .collect())
}

/// The rows of `system.runtime.pipeline_checks`: how each check of the kept runs came out.
async fn pipeline_check_rows(lakehouse: &Lakehouse) -> Result<Vec<Vec<Cell>>> {
    let pipelines = run_pipelines(lakehouse).await?;
    Ok(lakehouse
        .metastore()
        .list_pipeline_checks()
        .await?
        .into_iter()
        .map(|check| {
            vec![
                Cell::Text(pipelines.get(&check.run_id).cloned()),
                check.run_id.into(),
                check.check.into(),
                check.table.into(),
                check.state.into(),
                Cell::Number(check.failing_rows.unwrap_or(0)),
                Cell::Text(check.message),
                time_text(Some(check.checked_ms)),
            ]
        })
        .collect())
}

/// A row of `system.metadata.materialized_views` per materialized view of every catalog.
async fn materialized_view_rows(lakehouse: &Lakehouse) -> Result<Vec<Vec<Cell>>> {
    let mut rows = Vec::new();
    for view in lakehouse
        .metastore()
        .list_materialized_views(None, None)
        .await?
    {
        let (last, freshness) = crate::materialized::freshness(lakehouse, &view).await?;
        let fresh_time = last.as_ref().map(|l| {
            chrono::DateTime::from_timestamp_millis(l.refreshed_at_ms)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
                .unwrap_or_default()
        });
        rows.push(vec![
            view.catalog.clone().into(),
            view.schema.clone().into(),
            view.name.clone().into(),
            view.catalog.clone().into(),
            view.storage_schema.clone().into(),
            view.storage_table.clone().into(),
            freshness.name().into(),
            fresh_time.into(),
            view.comment.clone().into(),
            view.sql.clone().into(),
            last.as_ref().map(|l| l.kind.clone()).into(),
            last.and_then(|l| l.reason).into(),
        ]);
    }
    Ok(rows)
}
