//! Table formats behind one trait.
//!
//! Each catalog of the lakehouse (`iceberg`, `delta`, `lance`, `hive`) is served by a
//! [`TableFormat`]: it owns the schemas and tables of that catalog, creates and alters
//! them, and hands the engine a DataFusion [`TableProvider`] for scans and inserts. A
//! format that can estimate its tables (rows, bytes, the share of rows a filter keeps)
//! does so through [`TableStatistics`], which the engine finds with [`statistics_of`].
//! The engine never branches on the format.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;

mod append;
mod claims;
pub mod delta;
mod estimates;
pub mod hive;
pub mod iceberg;
pub mod lance;
mod locations;
mod metadata_tables;
pub mod registered;
mod row_names;
pub mod search;

pub use delta::DeltaStore;
pub use estimates::{statistics_of, TableEstimate, TableStatistics};
pub use hive::HiveStore;
pub use iceberg::staging::Staging;
pub use iceberg::IcebergFormat;
pub use lance::LanceStore;
pub use locations::LocationPolicy;
pub use row_names::with_path_column;

/// Errors of a table format, in terms the engine maps to Trino's error names.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("Schema '{schema}' does not exist")]
    SchemaNotFound { schema: String },
    #[error("Schema '{schema}' already exists")]
    SchemaAlreadyExists { schema: String },
    #[error("Cannot drop non-empty schema '{schema}'")]
    SchemaNotEmpty { schema: String },
    #[error("Table '{table}' does not exist")]
    TableNotFound { table: String },
    #[error("Table '{table}' already exists")]
    TableAlreadyExists { table: String },
    #[error("Column '{column}' already exists")]
    ColumnAlreadyExists { column: String },
    #[error("Column '{column}' does not exist")]
    ColumnNotFound { column: String },
    #[error("Type not supported for {format} column '{column}': {trino_type}")]
    UnsupportedType {
        format: &'static str,
        column: String,
        trino_type: String,
    },
    #[error("NULL value not allowed for NOT NULL column: {column}")]
    NullInNotNullColumn { column: String },
    #[error("Invalid value for table property '{property}': {message}")]
    InvalidProperty { property: String, message: String },
    #[error("{message}")]
    Storage { message: String },
    /// The metastore's database could not be reached (down, or no connection in time).
    #[error("Metastore is unavailable: {message}")]
    MetastoreUnavailable { message: String },
    /// An error of a remote database, its message naming the catalog.
    #[error("{message}")]
    Remote { message: String },
    /// A statement's argument names nothing that exists (a snapshot id, a point in time
    /// before the table's history); Trino's `INVALID_ARGUMENTS`.
    #[error("{message}")]
    InvalidArgument { message: String },
    /// What the format cannot do (Trino's `NOT_SUPPORTED`).
    #[error("{message}")]
    NotSupported { message: String },
    /// Another writer changed what a statement read before it could commit (Trino's
    /// `TRANSACTION_CONFLICT`).
    #[error("{message}")]
    Conflict { message: String },
    #[error("{format} error: {source}")]
    Format {
        format: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub type Result<T, E = TableError> = std::result::Result<T, E>;

/// A DataFusion error met while a format read or wrote rows: the [`TableError`] it carries,
/// else the error as one of `format`.
pub(crate) fn datafusion_error(
    format: &'static str,
    e: datafusion::error::DataFusionError,
) -> TableError {
    match e {
        datafusion::error::DataFusionError::External(inner) => {
            match inner.downcast::<TableError>() {
                Ok(table) => *table,
                Err(other) => TableError::Format {
                    format,
                    source: other,
                },
            }
        }
        other => TableError::Format {
            format,
            source: Box::new(other),
        },
    }
}

/// How often a commit that lost a race with another writer (through this or another node)
/// is tried again on the newest table state: bounded, with random growing waits so that
/// writers that collided do not collide again in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitRetry {
    /// Attempts after the first one.
    pub retries: u32,
}

impl Default for CommitRetry {
    fn default() -> Self {
        Self { retries: 25 }
    }
}

impl CommitRetry {
    /// Waits before retry number `attempt` (1-based): a random time up to 10 ms × 2^attempt,
    /// at most one second.
    pub async fn wait(&self, attempt: u32) {
        let ceiling_ms = 10u64.saturating_mul(1 << attempt.min(7)).min(1_000);
        let wait = std::time::Duration::from_millis(fastrand::u64(1..=ceiling_ms));
        tokio::time::sleep(wait).await;
    }
}

/// Commit metrics (issue 35), by table format: a commit that succeeded, one tried again
/// after another writer won the race, a statement failed by a conflict.
pub(crate) mod commits {
    pub fn committed(format: &'static str) {
        metrics::counter!("aichemy_commits_total", "format" => format).increment(1);
    }

    pub fn retried(format: &'static str) {
        metrics::counter!("aichemy_commit_retries_total", "format" => format).increment(1);
    }

    pub fn conflicted(format: &'static str) {
        metrics::counter!("aichemy_commit_conflicts_total", "format" => format).increment(1);
    }
}

/// A column as the engine declares it: Arrow type for the data, Trino type for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub name: String,
    pub data_type: DataType,
    /// The type as the user wrote it (`varchar(10)`), for error messages.
    pub trino_type: String,
    pub nullable: bool,
    pub comment: Option<String>,
}

/// A table property value from `WITH (…)`: a string, a number or an array of strings.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    String(String),
    Number(String),
    Boolean(bool),
    Array(Vec<String>),
}

impl PropertyValue {
    /// The value as Trino's `SHOW CREATE TABLE` prints it.
    pub fn to_sql(&self) -> String {
        match self {
            PropertyValue::String(s) => quote_literal(s),
            PropertyValue::Number(n) => n.clone(),
            PropertyValue::Boolean(b) => b.to_string(),
            PropertyValue::Array(items) => format!(
                "ARRAY[{}]",
                items
                    .iter()
                    .map(|s| quote_literal(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl PropertyValue {
    /// Reads back a value written by [`PropertyValue::to_sql`].
    pub fn from_sql(sql: &str) -> Option<Self> {
        let sql = sql.trim();
        if let Some(items) = sql
            .strip_prefix("ARRAY[")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            let mut values = Vec::new();
            let mut rest = items.trim();
            while !rest.is_empty() {
                let (value, after) = unquote_prefix(rest)?;
                values.push(value);
                rest = after.trim_start();
                rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
            }
            return Some(PropertyValue::Array(values));
        }
        if sql.starts_with('\'') {
            let (value, after) = unquote_prefix(sql)?;
            return after.is_empty().then_some(PropertyValue::String(value));
        }
        match sql {
            "true" => Some(PropertyValue::Boolean(true)),
            "false" => Some(PropertyValue::Boolean(false)),
            number if number.parse::<f64>().is_ok() => {
                Some(PropertyValue::Number(number.to_string()))
            }
            _ => None,
        }
    }
}

/// Reads one quoted SQL literal from the start of `sql`; answers it and the rest.
fn unquote_prefix(sql: &str) -> Option<(String, &str)> {
    let body = sql.strip_prefix('\'')?;
    let mut value = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if matches!(chars.peek(), Some((_, '\''))) {
                chars.next();
                value.push('\'');
            } else {
                return Some((value, &body[i + 1..]));
            }
        } else {
            value.push(c);
        }
    }
    None
}

/// Quotes a string as an SQL literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// What `CREATE TABLE` asks of a format.
#[derive(Debug, Clone)]
pub struct CreateTableRequest {
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnSpec>,
    pub comment: Option<String>,
    /// Table properties from `WITH (…)`, names lower-cased.
    pub properties: Vec<(String, PropertyValue)>,
}

impl CreateTableRequest {
    /// A string-valued table property; an error when it has another kind of value.
    pub fn string_property(&self, name: &str) -> Result<Option<String>> {
        match self.properties.iter().find(|(key, _)| key == name) {
            None => Ok(None),
            Some((_, PropertyValue::String(value))) => Ok(Some(value.clone())),
            Some(_) => Err(TableError::InvalidProperty {
                property: name.to_string(),
                message: format!("Table property '{name}' must be a string"),
            }),
        }
    }

    /// An array-of-column-names table property, names lower-cased.
    pub fn column_list_property(&self, name: &str) -> Result<Vec<String>> {
        match self.properties.iter().find(|(key, _)| key == name) {
            None => Ok(Vec::new()),
            Some((_, PropertyValue::Array(items))) => {
                Ok(items.iter().map(|s| s.to_ascii_lowercase()).collect())
            }
            Some(_) => Err(TableError::InvalidProperty {
                property: name.to_string(),
                message: format!("Table property '{name}' must be an array of strings"),
            }),
        }
    }
}

/// A loaded table: what the engine scans and inserts into, plus what SHOW and DESCRIBE print.
#[derive(Debug, Clone)]
pub struct TableHandle {
    pub provider: Arc<dyn TableProvider>,
    pub columns: Vec<ColumnSpec>,
    pub comment: Option<String>,
    /// Properties as `SHOW CREATE TABLE` prints them in `WITH (…)`.
    pub properties: Vec<(String, PropertyValue)>,
    /// How DELETE, UPDATE and MERGE change the table's rows; `None` where the format
    /// cannot.
    pub rows: Option<Arc<dyn RowLevelTable>>,
    /// How DELETE removes whole partitions of a table that cannot change single rows
    /// (Hive's); `None` elsewhere.
    pub partitions: Option<Arc<dyn PartitionedTable>>,
}

/// A table whose rows go a whole partition at a time (Hive's non-transactional tables):
/// a DELETE whose condition reads only partition columns removes the partitions' files.
#[async_trait]
pub trait PartitionedTable: Debug + Send + Sync {
    /// The partition columns, in folder order (none for an unpartitioned table, whose one
    /// partition is the whole table).
    fn partition_columns(&self) -> Vec<String>;

    /// The partitions that hold a file: their values as the folder names spell them
    /// (`None` for a NULL value).
    async fn partitions(&self) -> Result<Vec<Vec<Option<String>>>>;

    /// Deletes every file of `partitions`.
    async fn delete_partitions(&self, partitions: &[Vec<Option<String>>]) -> Result<()>;
}

/// The name of the column that [`RowLevelTable::scan`] adds: the file each row is stored
/// in (Trino's hidden `$path`).
pub const PATH_COLUMN: &str = "$path";

/// The column after [`PATH_COLUMN`]: a row's position among the rows its file holds in
/// the loaded version, so that the two name one row.
pub const POSITION_COLUMN: &str = "$position";

/// A table whose rows a statement changes by rewriting the files that hold them
/// (copy-on-write). The engine reads the version the handle was loaded at, with each
/// row's file, finds the files the statement touches, and hands back every row those
/// files keep or gain; the format writes them and swaps the files in one commit.
#[async_trait]
pub trait RowLevelTable: Debug + Send + Sync {
    /// The loaded version's rows with a [`PATH_COLUMN`] and a [`POSITION_COLUMN`] after the
    /// table's columns; only the rows of `files` when given.
    async fn scan(&self, files: Option<Arc<HashSet<String>>>) -> Result<Arc<dyn TableProvider>>;

    /// Replaces `files` by the rows of `rows` (the table's columns, in order) in one
    /// commit, recorded as `change`. Fails with [`TableError::Conflict`] when another
    /// commit removed one of `files` since the handle was loaded; rows appended meanwhile
    /// stay. Answers the number of rows written.
    async fn replace(
        &self,
        files: Vec<String>,
        rows: datafusion::execution::SendableRecordBatchStream,
        change: RowChange,
    ) -> Result<u64>;

    /// Like [`RowLevelTable::replace`], for `rows` that are exactly the rows of `files`
    /// (compaction): the commit says that no row changed.
    async fn rewrite(
        &self,
        files: Vec<String>,
        rows: datafusion::execution::SendableRecordBatchStream,
    ) -> Result<u64>;

    /// The data files of the loaded version.
    async fn files(&self) -> Result<Vec<DataFileInfo>>;

    /// The loaded version, as [`RowLevelTable::changes_since`] takes it back (Iceberg's
    /// snapshot id, 0 before the first); `None` where the format does not say.
    fn version(&self) -> Option<i64> {
        None
    }

    /// What changed from `version` to the loaded one, as rows; `None` when that cannot be
    /// told (the older version expired, the format does not keep such a record, files
    /// whose rows another file deletes).
    async fn changes_since(&self, _version: i64) -> Result<Option<TableChanges>> {
        Ok(None)
    }

    /// How far ingestion job `job` had read its source (text only the job reads) when it
    /// last committed to the table, as the table's newest version records it.
    async fn recorded_position(&self, _job: &str) -> Result<Option<String>> {
        Err(TableError::NotSupported {
            message: "This connector does not support ingestion".into(),
        })
    }

    /// Replaces `files` (none: appends) by `rows` (the table's columns, in order) and
    /// records the job's position in the same commit, provided the newest version still
    /// records what the job expects; fails with [`TableError::Conflict`] otherwise (another
    /// writer of the job went on) or when another commit removed one of `files`. Answers
    /// the number of rows written.
    async fn commit_recording(
        &self,
        _files: Vec<String>,
        _rows: datafusion::execution::SendableRecordBatchStream,
        _recording: Recording<'_>,
    ) -> Result<u64> {
        Err(TableError::NotSupported {
            message: "This connector does not support ingestion".into(),
        })
    }
}

/// What changed in a table between an older version and a newer one, file by file: a
/// row that moved to a rewritten file is among both `removed` and `added`. All three read
/// the newer version's columns.
#[derive(Debug, Clone)]
pub struct TableChanges {
    /// The rows of the files the newer version has and the older had not.
    pub added: Arc<dyn TableProvider>,
    /// The rows of the files the older version had and the newer has not.
    pub removed: Arc<dyn TableProvider>,
    /// The table as the older version was.
    pub before: Arc<dyn TableProvider>,
    /// Whether no file went: rows were only appended.
    pub appends_only: bool,
    /// The bytes of the added and removed files together.
    pub changed_bytes: u64,
    /// The bytes of the newer version's files.
    pub bytes: u64,
}

/// A commit of an ingestion job: it records `position` (text only the job reads: Kafka
/// offsets, a PostgreSQL LSN) for `job`, provided the table's newest version still records
/// `expected`, so that a job that lost its lease to another node (which committed since)
/// fails with a conflict instead of adding rows twice. Each format keeps positions its own
/// way (Iceberg: snapshot summaries; Delta Lake: `txn` actions and `commitInfo`; Lance:
/// transaction properties).
#[derive(Debug, Clone, Copy)]
pub struct Recording<'a> {
    pub job: &'a str,
    pub expected: Option<&'a str>,
    pub position: &'a str,
}

impl Recording<'_> {
    /// The conflict of a job whose table moved on meanwhile.
    pub(crate) fn moved_on(&self, table: &dyn std::fmt::Display) -> TableError {
        TableError::Conflict {
            message: format!(
                "Ingestion '{}' moved on in table '{table}' meanwhile (another node committed)",
                self.job
            ),
        }
    }
}

/// The statement a [`RowLevelTable::replace`] commits, as the table's history names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowChange {
    Delete,
    Update,
    Merge,
}

/// One data file of a table version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFileInfo {
    pub path: String,
    pub bytes: u64,
    /// The file's partition (and partitioning), as a key equal for files of one partition.
    pub partition: String,
}

/// One table format serving one catalog.
#[async_trait]
pub trait TableFormat: Debug + Send + Sync {
    /// The format's name, as in error messages (`Iceberg`).
    fn format_name(&self) -> &'static str;

    async fn list_schemas(&self) -> Result<Vec<String>>;
    async fn schema_exists(&self, schema: &str) -> Result<bool>;
    /// Creates a schema, optionally at an explicit location.
    async fn create_schema(&self, schema: &str, location: Option<String>) -> Result<()>;
    /// Drops an empty schema.
    async fn drop_schema(&self, schema: &str) -> Result<()>;

    async fn list_tables(&self, schema: &str) -> Result<Vec<String>>;
    /// Loads a table; `None` when it does not exist.
    async fn load_table(&self, schema: &str, name: &str) -> Result<Option<TableHandle>>;
    async fn create_table(&self, request: CreateTableRequest) -> Result<()>;
    /// Replaces an existing table's columns, properties and rows in one commit (`CREATE
    /// OR REPLACE TABLE [AS …]`), keeping its history; `rows` has the new columns, in
    /// order. Answers the number of rows written.
    async fn replace_table(
        &self,
        _request: CreateTableRequest,
        _rows: datafusion::execution::SendableRecordBatchStream,
    ) -> Result<u64> {
        Err(TableError::NotSupported {
            message: format!(
                "This connector does not support replacing tables ({} tables)",
                self.format_name()
            ),
        })
    }
    /// Drops a table and, for managed tables, deletes its data.
    async fn drop_table(&self, schema: &str, name: &str) -> Result<()>;
    async fn rename_table(&self, from: (&str, &str), to: (&str, &str)) -> Result<()>;
    async fn add_column(&self, schema: &str, name: &str, column: ColumnSpec) -> Result<()>;

    /// Changes one column (`ALTER TABLE … DROP|RENAME|ALTER COLUMN`, `COMMENT ON COLUMN`);
    /// a format that cannot refuses with [`TableError::NotSupported`] naming itself, and
    /// never rewrites data to do it.
    async fn alter_column(&self, _schema: &str, _name: &str, change: ColumnChange) -> Result<()> {
        Err(TableError::NotSupported {
            message: format!(
                "This connector does not support {} ({} tables)",
                change.action(),
                self.format_name()
            ),
        })
    }

    /// Changes table properties (`ALTER TABLE … SET PROPERTIES`), such as the
    /// partitioning new files follow.
    async fn set_properties(
        &self,
        _schema: &str,
        _name: &str,
        _properties: Vec<(String, PropertyValue)>,
    ) -> Result<()> {
        Err(TableError::NotSupported {
            message: format!(
                "This connector does not support setting table properties ({} tables)",
                self.format_name()
            ),
        })
    }

    /// Sets or removes the table's comment (`COMMENT ON TABLE`).
    async fn set_comment(
        &self,
        _schema: &str,
        _name: &str,
        _comment: Option<String>,
    ) -> Result<()> {
        Err(TableError::NotSupported {
            message: format!(
                "This connector does not support setting table comments ({} tables)",
                self.format_name()
            ),
        })
    }

    /// The table as it was at `version` (`SELECT … FOR VERSION|TIMESTAMP AS OF`), read
    /// only; `None` when the table does not exist.
    async fn load_version(
        &self,
        _schema: &str,
        _name: &str,
        _version: &TableVersion,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(TableError::NotSupported {
            message: format!(
                "This connector does not support versioned tables: {}",
                self.format_name()
            ),
        })
    }

    /// The metadata table `kind` of a table (`snapshots` for `"t$snapshots"`); `None` when
    /// the table does not exist or the format has no such metadata table.
    async fn metadata_table(
        &self,
        _schema: &str,
        _name: &str,
        _kind: &str,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(None)
    }

    /// Expires the versions made current before `older_than_ms` (never the current one
    /// nor one a branch or tag names) and deletes the files only they referenced; answers
    /// how many versions and files went.
    async fn expire_snapshots(
        &self,
        _schema: &str,
        _name: &str,
        _older_than_ms: i64,
    ) -> Result<(usize, usize)> {
        Err(TableError::NotSupported {
            message: format!(
                "Procedure expire_snapshots is not supported for {} tables",
                self.format_name()
            ),
        })
    }

    /// Deletes the files under the table's location that no version of it references and
    /// that were written before `older_than_ms` (`remove_orphan_files`); answers how many.
    async fn remove_orphan_files(
        &self,
        _schema: &str,
        _name: &str,
        _older_than_ms: i64,
    ) -> Result<usize> {
        Err(TableError::NotSupported {
            message: format!(
                "Procedure remove_orphan_files is not supported for {} tables",
                self.format_name()
            ),
        })
    }

    /// Deletes the data files no current file of the table needs that were removed or
    /// written more than `retention` ago (Delta Lake's `vacuum`); answers how many.
    async fn vacuum(
        &self,
        _schema: &str,
        _name: &str,
        _retention: std::time::Duration,
    ) -> Result<usize> {
        Err(TableError::NotSupported {
            message: format!(
                "Procedure vacuum is not supported for {} tables",
                self.format_name()
            ),
        })
    }

    /// Builds, rebuilds or drops one of the table's indexes (`create_vector_index`,
    /// `create_text_index`, `drop_index`).
    async fn change_index(
        &self,
        _schema: &str,
        _name: &str,
        change: search::IndexChange,
    ) -> Result<()> {
        Err(change.unsupported(self.format_name()))
    }

    /// Brings the table's indexes up to date with the rows added since they were built
    /// (optimize does, after merging files); nothing for a format without indexes.
    async fn refresh_indexes(&self, _schema: &str, _name: &str) -> Result<()> {
        Ok(())
    }

    /// Makes an earlier version the table's current one (`rollback_to_snapshot`).
    async fn rollback(&self, _schema: &str, _name: &str, _version: i64) -> Result<()> {
        Err(TableError::NotSupported {
            message: format!(
                "Procedure rollback_to_snapshot is not supported for {} tables",
                self.format_name()
            ),
        })
    }
}

/// A change of one column of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnChange {
    Drop {
        column: String,
    },
    Rename {
        column: String,
        to: String,
    },
    /// A new type for the values (a widening the format allows).
    SetType {
        column: String,
        to: ColumnSpec,
    },
    DropNotNull {
        column: String,
    },
    Comment {
        column: String,
        comment: Option<String>,
    },
}

impl ColumnChange {
    /// What the change does, in Trino's "This connector does not support …" wording.
    pub fn action(&self) -> &'static str {
        match self {
            ColumnChange::Drop { .. } => "dropping columns",
            ColumnChange::Rename { .. } => "renaming columns",
            ColumnChange::SetType { .. } => "setting column types",
            ColumnChange::DropNotNull { .. } => "dropping a not null constraint",
            ColumnChange::Comment { .. } => "setting column comments",
        }
    }

    /// The column the change is about.
    pub fn column(&self) -> &str {
        match self {
            ColumnChange::Drop { column }
            | ColumnChange::Rename { column, .. }
            | ColumnChange::SetType { column, .. }
            | ColumnChange::DropNotNull { column }
            | ColumnChange::Comment { column, .. } => column,
        }
    }
}

/// A version of a table to read: a snapshot id (Iceberg), version number (Delta, Lance),
/// or the version current at a time (milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableVersion {
    Id(i64),
    TimestampMillis(i64),
    /// The version a branch or tag names (`FOR VERSION AS OF 'name'`).
    Ref(String),
}

impl TableVersion {
    /// Trino's refusal of `FOR VERSION AS OF 'name'` where versions are numbers only.
    pub fn unsupported_ref(name: &str) -> TableError {
        TableError::NotSupported {
            message: format!(
                "Unsupported type for table version: varchar({})",
                name.chars().count()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_values_read_back_what_they_print() {
        for value in [
            PropertyValue::String("it's".into()),
            PropertyValue::Array(vec!["dt".into(), "o'k".into()]),
            PropertyValue::Array(Vec::new()),
            PropertyValue::Number("2".into()),
            PropertyValue::Boolean(true),
        ] {
            assert_eq!(PropertyValue::from_sql(&value.to_sql()), Some(value));
        }
        assert_eq!(PropertyValue::from_sql("'open"), None);
    }
}
