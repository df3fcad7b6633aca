//! Ingestion jobs as users declare them (`CREATE INGESTION … INTO t WITH (…)`): the
//! definition the metastore keeps, its properties read into typed options, and the status
//! the server running a job reports. The jobs themselves run in `aichemy-ingest`.
//!
//! Property names follow RisingWave's Kafka source (`topic`,
//! `properties.bootstrap.server`, `scan.startup.mode`, `properties.sasl.*`), so that a
//! definition written for it reads the same here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, Result, TrinoError};

/// One job's declaration, as the metastore keeps it (JSON).
///
/// A `postgres-cdc` job writes one table per source table: its `target` names a schema
/// (`table` empty: each source table `s.t` becomes `t`, or `s_t` outside `public`) or,
/// for a job of one source table, that table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestionDefinition {
    pub name: String,
    /// `kafka` or `postgres-cdc`.
    pub connector: String,
    pub target: TargetTable,
    /// The `WITH (…)` properties as written (secrets as their `${ENV:…}` references).
    pub properties: BTreeMap<String, String>,
    /// The user who created it.
    pub owner: String,
    /// Declared in the configuration file: its `${ENV:…}`/`${FILE:…}` references resolve
    /// all (as the file's catalogs' do), not only `create_catalog_secrets`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trusted: bool,
}

impl IngestionDefinition {
    /// Which secret references the job may resolve.
    pub fn secret_scope<'a>(
        &self,
        sql_scope: &'a aichemy_config::SecretScope,
    ) -> &'a aichemy_config::SecretScope {
        static ANY: aichemy_config::SecretScope = aichemy_config::SecretScope::Any;
        if self.trusted {
            &ANY
        } else {
            sql_scope
        }
    }
}

/// The table a job writes, created on first use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetTable {
    pub catalog: String,
    pub schema: String,
    pub table: String,
}

impl std::fmt::Display for TargetTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.table.is_empty() {
            write!(f, "{}.{}", self.catalog, self.schema)
        } else {
            write!(f, "{}.{}.{}", self.catalog, self.schema, self.table)
        }
    }
}

/// Where a job starts reading a partition it has no recorded position for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    Earliest,
    Latest,
    /// The first message at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// How message values become rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFormat {
    /// One JSON object per message, its fields the table's columns (by name; others
    /// ignored).
    Json,
    /// The value as bytes (`value varbinary`), with every Kafka attribute as a column.
    Raw,
}

/// A Kafka attribute of each message stored as a column next to its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaColumn {
    Key,
    Partition,
    Offset,
    Timestamp,
    Headers,
}

impl KafkaColumn {
    pub const ALL: [KafkaColumn; 5] = [
        KafkaColumn::Key,
        KafkaColumn::Partition,
        KafkaColumn::Offset,
        KafkaColumn::Timestamp,
        KafkaColumn::Headers,
    ];

    /// The column's name in the table (for JSON, RisingWave's `INCLUDE` names without
    /// its prefix; `_partition` itself is a metadata column Iceberg readers reserve).
    pub fn column(self, format: MessageFormat) -> &'static str {
        match (format, self) {
            (MessageFormat::Raw, KafkaColumn::Key) => "key",
            (MessageFormat::Raw, KafkaColumn::Partition) => "partition",
            (MessageFormat::Raw, KafkaColumn::Offset) => "offset",
            (MessageFormat::Raw, KafkaColumn::Timestamp) => "timestamp",
            (MessageFormat::Raw, KafkaColumn::Headers) => "headers",
            (MessageFormat::Json, KafkaColumn::Key) => "_kafka_key",
            (MessageFormat::Json, KafkaColumn::Partition) => "_kafka_partition",
            (MessageFormat::Json, KafkaColumn::Offset) => "_kafka_offset",
            (MessageFormat::Json, KafkaColumn::Timestamp) => "_kafka_timestamp",
            (MessageFormat::Json, KafkaColumn::Headers) => "_kafka_headers",
        }
    }

    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "key" => KafkaColumn::Key,
            "partition" => KafkaColumn::Partition,
            "offset" => KafkaColumn::Offset,
            "timestamp" => KafkaColumn::Timestamp,
            "header" | "headers" => KafkaColumn::Headers,
            _ => return None,
        })
    }
}

/// What a job does with a message it cannot turn into a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Into the dead-letter table `<target>_dead_letter`; the job goes on.
    DeadLetter,
    /// The job stops (state `failed`) with the error, committing nothing of the batch.
    Stop,
}

/// SASL credentials (`properties.sasl.*`), the password as written (maybe a reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

/// A Kafka job's options, read from its properties.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaOptions {
    pub bootstrap_servers: Vec<String>,
    pub topic: String,
    pub start: StartPosition,
    pub tls: bool,
    /// A PEM file of the certificate authorities to trust instead of the system's.
    pub ca_location: Option<String>,
    pub sasl: Option<Sasl>,
    pub format: MessageFormat,
    /// JSON values are Debezium change envelopes (`format = 'debezium'`): each becomes
    /// the row after the change (before it, for a delete) with `_op`, `_ts`, `_lsn`,
    /// `_tx_id`; tombstones are skipped.
    pub debezium: bool,
    /// Append every message, or (Debezium) keep the last row of each key.
    pub mode: CdcMode,
    /// The key of a mirror (`key.columns`); empty: the fields of the messages' keys.
    pub key_columns: Vec<String>,
    /// The Kafka attributes stored as columns (every one for `raw`).
    pub include: Vec<KafkaColumn>,
    pub commit_interval: Duration,
    /// At most this many messages per commit.
    pub max_batch_messages: usize,
    pub on_error: OnError,
    pub maintenance: Maintenance,
}

/// Whether and how a change-data-capture job's connections use TLS (`ssl.mode`; the
/// values of libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it (libpq's default), unverified.
    Preferred,
    /// TLS, the certificate not verified.
    Required,
    /// TLS, the certificate chain verified against `ssl.root.cert` (or the system's roots).
    VerifyCa,
    /// As `VerifyCa`, and the certificate names `hostname`.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "disabled" | "disable" => Self::Disabled,
            "preferred" | "prefer" => Self::Preferred,
            "required" | "require" => Self::Required,
            "verify-ca" | "verify_ca" => Self::VerifyCa,
            "verify-full" | "verify_full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// What a change-data-capture job writes into its tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdcMode {
    /// Bronze: every change appended as a row (`mode = 'append'`).
    Append,
    /// Mirror: the table holds the source table's current rows, keyed by its primary key
    /// (`mode = 'upsert'`).
    Upsert,
}

/// The shape of an appended change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeFormat {
    /// The row's columns plus `_op`, `_lsn`, `_commit_lsn`, `_seq`, `_tx_id`, `_ts`.
    Flat,
    /// Debezium's envelope: `before`, `after`, `op`, `ts_ms`, `source`.
    Debezium,
}

/// A PostgreSQL source table, `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceTable {
    pub schema: String,
    pub table: String,
}

impl std::fmt::Display for SourceTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

impl SourceTable {
    /// `orders` (in `default_schema`) or `sales.orders`; `"Mixed Case"` quoted.
    pub fn parse(text: &str, default_schema: &str) -> Option<Self> {
        let parts = split_identifier(text.trim())?;
        match parts.as_slice() {
            [table] => Some(Self {
                schema: default_schema.to_string(),
                table: table.clone(),
            }),
            [schema, table] => Some(Self {
                schema: schema.clone(),
                table: table.clone(),
            }),
            _ => None,
        }
    }

    /// The name as PostgreSQL reads it: `"sales"."orders"`.
    pub fn quoted(&self) -> String {
        format!(
            "\"{}\".\"{}\"",
            self.schema.replace('"', "\"\""),
            self.table.replace('"', "\"\"")
        )
    }

    /// The name of its target table in a job's schema: `orders`, or `sales_orders`
    /// outside `public`.
    pub fn target_name(&self) -> String {
        if self.schema == "public" {
            self.table.to_lowercase()
        } else {
            format!("{}_{}", self.schema, self.table).to_lowercase()
        }
    }
}

/// `a.b`, `"A.x".b`: the dot-separated parts, unquoted; lower case unless quoted.
fn split_identifier(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
            part = part.trim().to_string();
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => continue,
            Some(_) => return None,
        }
    }
}

/// A PostgreSQL change-data-capture job's options, read from its properties (named as
/// RisingWave's `postgres-cdc` connector names them).
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresOptions {
    pub hostname: String,
    pub port: u16,
    pub username: String,
    /// As written (maybe a `${ENV:…}` reference).
    pub password: Option<String>,
    pub database: String,
    pub ssl_mode: SslMode,
    /// A PEM file of the certificates `ssl_mode` verifies against; none: the system's.
    pub ssl_root_cert: Option<String>,
    /// The tables to capture; empty: every table of the publication.
    pub tables: Vec<SourceTable>,
    pub slot: String,
    pub publication: String,
    /// Whether the job creates the publication (for `tables`) when it does not exist.
    pub create_publication: bool,
    /// Whether existing rows are read first (op `r`) before the changes.
    pub snapshot: bool,
    pub mode: CdcMode,
    pub format: ChangeFormat,
    /// Debezium's signalling table: a row `(id, 'execute-snapshot', '{"data-collections":
    /// ["s.t"]}')` inserted into it re-reads those tables while the job runs.
    pub signal_table: Option<SourceTable>,
    pub commit_interval: Duration,
    pub max_batch_changes: usize,
    pub maintenance: Maintenance,
}

/// The upkeep of a job's table, run by the job while it ingests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Maintenance {
    /// How often the table is compacted and its old snapshots expired; zero: never.
    pub interval: Duration,
    /// How long snapshots are kept (time travel that far back still works).
    pub snapshot_retention: Duration,
}

/// The properties every connector reads.
const COMMON: &[&str] = &[
    "connector",
    "commit.interval.ms",
    "max.batch.messages",
    "on.error",
    "maintenance.interval.ms",
    "snapshot.retention.ms",
];

/// The properties a PostgreSQL change-data-capture job reads.
const POSTGRES: &[&str] = &[
    "hostname",
    "port",
    "username",
    "password",
    "database.name",
    "schema.name",
    "table.name",
    "slot.name",
    "publication.name",
    "publication.create.enable",
    "snapshot",
    "mode",
    "format",
    "signal.data.collection",
    "ssl.mode",
    "ssl.root.cert",
];

/// The properties a Kafka job reads.
const KAFKA: &[&str] = &[
    "topic",
    "properties.bootstrap.server",
    "scan.startup.mode",
    "scan.startup.timestamp.millis",
    "properties.security.protocol",
    "properties.sasl.mechanism",
    "properties.sasl.username",
    "properties.sasl.password",
    "properties.ssl.ca.location",
    "format",
    "include",
    "mode",
    "key.columns",
];

fn invalid(message: impl Into<String>) -> TrinoError {
    TrinoError::new(ErrorCode::INVALID_ARGUMENTS, message)
}

impl IngestionDefinition {
    /// Checks the properties (names, values) for the connector; errors name the property.
    pub fn validate(&self) -> Result<()> {
        match self.connector.as_str() {
            "kafka" => self.kafka().map(|_| ()),
            "postgres-cdc" => {
                let options = self.postgres()?;
                if !self.target.table.is_empty() && options.tables.len() != 1 {
                    return Err(invalid(
                        "A postgres-cdc ingestion INTO a table captures one table: name it in \
                         'table.name', or ingest INTO a schema"
                            .to_string(),
                    ));
                }
                Ok(())
            }
            other => Err(invalid(format!(
                "Unknown ingestion connector '{other}': use 'kafka' or 'postgres-cdc'"
            ))),
        }
    }

    /// Whether the job writes one table per source table into the target schema.
    pub fn targets_schema(&self) -> bool {
        self.target.table.is_empty()
    }

    /// `mode`: what the job writes (default `append`).
    fn mode(&self) -> Result<CdcMode> {
        match self
            .get("mode")
            .unwrap_or("append")
            .to_ascii_lowercase()
            .as_str()
        {
            "append" | "bronze" => Ok(CdcMode::Append),
            "upsert" | "mirror" => Ok(CdcMode::Upsert),
            other => Err(invalid(format!(
                "Property 'mode' must be 'append' or 'upsert': '{other}'"
            ))),
        }
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(invalid(format!(
                "Property '{key}' must be true or false: '{v}'"
            ))),
        }
    }

    fn common_batching(&self) -> Result<(Duration, usize, Maintenance)> {
        let commit_interval = self.millis("commit.interval.ms", 1_000)?;
        if commit_interval < Duration::from_millis(10) {
            return Err(invalid(
                "Property 'commit.interval.ms' must be at least 10".to_string(),
            ));
        }
        let max_batch = match self.get("max.batch.messages") {
            None => 1_000_000,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    invalid(format!(
                        "Property 'max.batch.messages' must be a positive number: '{text}'"
                    ))
                })?,
        };
        let maintenance = Maintenance {
            interval: self.millis("maintenance.interval.ms", 10 * 60 * 1_000)?,
            snapshot_retention: self.millis("snapshot.retention.ms", 60 * 60 * 1_000)?,
        };
        Ok((commit_interval, max_batch, maintenance))
    }

    /// The PostgreSQL change-data-capture options of the job.
    pub fn postgres(&self) -> Result<PostgresOptions> {
        for key in self.properties.keys() {
            if !COMMON.contains(&key.as_str()) && !POSTGRES.contains(&key.as_str())
                || key == "on.error"
            {
                return Err(invalid(format!(
                    "Unknown property '{key}' for a postgres-cdc ingestion"
                )));
            }
        }
        let required = |key: &str| {
            self.get(key)
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().to_string())
                .ok_or_else(|| invalid(format!("Property '{key}' is required")))
        };
        let port = match self.get("port") {
            None => 5432,
            Some(text) => text
                .trim()
                .parse::<u16>()
                .map_err(|_| invalid(format!("Property 'port' must be a port number: '{text}'")))?,
        };
        let default_schema = self.get("schema.name").unwrap_or("public").trim();
        let mut tables = Vec::new();
        for name in self
            .get("table.name")
            .unwrap_or("")
            .split(',')
            .filter(|n| !n.trim().is_empty())
        {
            let table = SourceTable::parse(name, default_schema).ok_or_else(|| {
                invalid(format!(
                    "Property 'table.name' lists '{}': use table or schema.table",
                    name.trim()
                ))
            })?;
            if !tables.contains(&table) {
                tables.push(table);
            }
        }
        // Slot and publication names: lower-case letters, digits and underscores.
        let default_name = format!(
            "aichemy_{}",
            self.name
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
        );
        let identifier = |key: &str| -> Result<String> {
            let value = self
                .get(key)
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| default_name.clone());
            let valid = !value.is_empty()
                && value.len() <= 63
                && value
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(invalid(format!(
                    "Property '{key}' must be lower-case letters, digits and underscores (at \
                     most 63): '{value}'"
                )));
            }
            Ok(value)
        };
        let mode = self.mode()?;
        let format = match self
            .get("format")
            .unwrap_or("flat")
            .to_ascii_lowercase()
            .as_str()
        {
            "flat" | "plain" => ChangeFormat::Flat,
            "debezium" => ChangeFormat::Debezium,
            other => {
                return Err(invalid(format!(
                    "Property 'format' must be 'flat' or 'debezium': '{other}'"
                )))
            }
        };
        if mode == CdcMode::Upsert && format == ChangeFormat::Debezium {
            return Err(invalid(
                "Property 'format' = 'debezium' is for mode 'append': a mirror holds the rows"
                    .to_string(),
            ));
        }
        let signal_table = match self.get("signal.data.collection") {
            None => None,
            Some(text) => Some(SourceTable::parse(text, default_schema).ok_or_else(|| {
                invalid(format!(
                    "Property 'signal.data.collection' must be schema.table: '{text}'"
                ))
            })?),
        };
        let ssl_mode = match self.get("ssl.mode") {
            None => SslMode::Preferred,
            Some(text) => SslMode::parse(text).ok_or_else(|| {
                invalid(format!(
                    "Property 'ssl.mode' must be 'disabled', 'preferred', 'required', \
                     'verify-ca' or 'verify-full': '{text}'"
                ))
            })?,
        };
        let ssl_root_cert = self.get("ssl.root.cert").map(|v| v.trim().to_string());
        if ssl_root_cert.is_some() && !matches!(ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull) {
            return Err(invalid(
                "Property 'ssl.root.cert' needs ssl.mode 'verify-ca' or 'verify-full'".to_string(),
            ));
        }
        let (commit_interval, max_batch_changes, maintenance) = self.common_batching()?;
        Ok(PostgresOptions {
            hostname: required("hostname")?,
            port,
            username: required("username")?,
            password: self.get("password").map(str::to_string),
            database: required("database.name")?,
            ssl_mode,
            ssl_root_cert,
            tables,
            slot: identifier("slot.name")?,
            publication: identifier("publication.name")?,
            create_publication: self.flag("publication.create.enable", true)?,
            snapshot: self.flag("snapshot", true)?,
            mode,
            format,
            signal_table,
            commit_interval,
            max_batch_changes,
            maintenance,
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    fn millis(&self, key: &str, default: u64) -> Result<Duration> {
        match self.get(key) {
            None => Ok(Duration::from_millis(default)),
            Some(text) => text
                .trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| invalid(format!("Property '{key}' must be milliseconds: '{text}'"))),
        }
    }

    /// The Kafka options of the job.
    pub fn kafka(&self) -> Result<KafkaOptions> {
        for key in self.properties.keys() {
            if !COMMON.contains(&key.as_str()) && !KAFKA.contains(&key.as_str()) {
                return Err(invalid(format!(
                    "Unknown property '{key}' for a kafka ingestion"
                )));
            }
        }
        let required = |key: &str| {
            self.get(key)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| invalid(format!("Property '{key}' is required")))
        };
        let bootstrap_servers: Vec<String> = required("properties.bootstrap.server")?
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let topic = required("topic")?.to_string();
        let start = match self
            .get("scan.startup.mode")
            .unwrap_or("earliest")
            .to_ascii_lowercase()
            .as_str()
        {
            "earliest" => StartPosition::Earliest,
            "latest" => StartPosition::Latest,
            "timestamp" => {
                let text = required("scan.startup.timestamp.millis")?;
                StartPosition::Timestamp(text.trim().parse().map_err(|_| {
                    invalid(format!(
                        "Property 'scan.startup.timestamp.millis' must be milliseconds: '{text}'"
                    ))
                })?)
            }
            other => {
                return Err(invalid(format!(
                    "Property 'scan.startup.mode' must be 'earliest', 'latest' or 'timestamp': \
                     '{other}'"
                )))
            }
        };
        let protocol = self
            .get("properties.security.protocol")
            .unwrap_or("PLAINTEXT")
            .to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(invalid(format!(
                    "Property 'properties.security.protocol' must be PLAINTEXT, SSL, \
                     SASL_PLAINTEXT or SASL_SSL: '{other}'"
                )))
            }
        };
        let sasl = if sasl {
            let mechanism = self
                .get("properties.sasl.mechanism")
                .unwrap_or("PLAIN")
                .to_ascii_uppercase();
            if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&mechanism.as_str()) {
                return Err(invalid(format!(
                    "Property 'properties.sasl.mechanism' must be PLAIN, SCRAM-SHA-256 or \
                     SCRAM-SHA-512: '{mechanism}'"
                )));
            }
            Some(Sasl {
                mechanism,
                username: required("properties.sasl.username")?.to_string(),
                password: required("properties.sasl.password")?.to_string(),
            })
        } else {
            for key in ["properties.sasl.username", "properties.sasl.password"] {
                if self.get(key).is_some() {
                    return Err(invalid(format!(
                        "Property '{key}' needs properties.security.protocol SASL_PLAINTEXT or \
                         SASL_SSL"
                    )));
                }
            }
            None
        };
        let (format, debezium) = match self
            .get("format")
            .unwrap_or("json")
            .to_ascii_lowercase()
            .as_str()
        {
            "json" => (MessageFormat::Json, false),
            "debezium" | "debezium_json" => (MessageFormat::Json, true),
            "raw" | "bytes" => (MessageFormat::Raw, false),
            other => {
                return Err(invalid(format!(
                    "Property 'format' must be 'json', 'debezium' or 'raw': '{other}'"
                )))
            }
        };
        let mode = self.mode()?;
        if mode == CdcMode::Upsert && !debezium {
            return Err(invalid(
                "Property 'mode' = 'upsert' needs format = 'debezium' (a change per message)"
                    .to_string(),
            ));
        }
        let key_columns: Vec<String> = self
            .get("key.columns")
            .unwrap_or("")
            .split(',')
            .map(|c| c.trim().to_lowercase())
            .filter(|c| !c.is_empty())
            .collect();
        let include = match (format, self.get("include")) {
            (MessageFormat::Raw, _) => KafkaColumn::ALL.to_vec(),
            (MessageFormat::Json, None) => Vec::new(),
            (MessageFormat::Json, Some(list)) => {
                let mut columns = Vec::new();
                for name in list.split(',').map(|s| s.trim().to_ascii_lowercase()) {
                    if name.is_empty() {
                        continue;
                    }
                    let column = KafkaColumn::named(&name).ok_or_else(|| {
                        invalid(format!(
                            "Property 'include' lists '{name}': use key, partition, offset, \
                             timestamp, headers"
                        ))
                    })?;
                    if !columns.contains(&column) {
                        columns.push(column);
                    }
                }
                columns
            }
        };
        let (commit_interval, max_batch_messages, maintenance) = self.common_batching()?;
        let on_error = match self
            .get("on.error")
            .unwrap_or("dead_letter")
            .to_ascii_lowercase()
            .as_str()
        {
            "dead_letter" => OnError::DeadLetter,
            "stop" => OnError::Stop,
            other => {
                return Err(invalid(format!(
                    "Property 'on.error' must be 'dead_letter' or 'stop': '{other}'"
                )))
            }
        };
        Ok(KafkaOptions {
            bootstrap_servers,
            topic,
            start,
            tls,
            ca_location: self.get("properties.ssl.ca.location").map(str::to_string),
            sasl,
            format,
            debezium,
            mode,
            key_columns,
            include,
            commit_interval,
            max_batch_messages,
            on_error,
            maintenance,
        })
    }

    /// The properties as `SHOW INGESTIONS` and system tables show them: a value whose
    /// name mentions a password or secret as `***` unless it is a `${…}` reference.
    pub fn shown_properties(&self) -> String {
        self.properties
            .iter()
            .map(|(key, value)| {
                let sensitive = key.contains("password") || key.contains("secret");
                let value = if sensitive && !(value.starts_with("${") && value.ends_with('}')) {
                    "***".to_string()
                } else {
                    value.clone()
                };
                format!("{key} = {}", aichemy_tables::quote_literal(&value))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The source as a short text: `kafka topic orders`, `postgres-cdc shop@db:5432`.
    pub fn source(&self) -> String {
        if let Some(topic) = self.get("topic") {
            return format!("{} topic {topic}", self.connector);
        }
        match (self.get("database.name"), self.get("hostname")) {
            (Some(database), Some(host)) => format!(
                "{} {database}@{host}:{}",
                self.connector,
                self.get("port").unwrap_or("5432")
            ),
            _ => self.connector.clone(),
        }
    }
}

/// What the server running a job reports with each renewal of its lease.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestionStatus {
    /// `starting`, `running`, `failed` (stopped on an error until resumed), `stopped`.
    pub state: String,
    /// The source position of the last commit, as text (`0:120,1:98`).
    pub position: Option<String>,
    /// When the last commit was made (ms since the epoch).
    pub last_commit_ms: Option<i64>,
    pub rows: u64,
    pub bytes: u64,
    pub commits: u64,
    pub dead_letters: u64,
    /// Messages behind the partitions' ends at the last fetch.
    pub lag: Option<i64>,
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(properties: &[(&str, &str)]) -> IngestionDefinition {
        IngestionDefinition {
            name: "j".into(),
            connector: "kafka".into(),
            target: TargetTable {
                catalog: "iceberg".into(),
                schema: "s".into(),
                table: "t".into(),
            },
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            owner: "u".into(),
            trusted: false,
        }
    }

    #[test]
    fn kafka_properties_read_as_risingwave_names_them() {
        let options = definition(&[
            ("topic", "orders"),
            ("properties.bootstrap.server", "a:9092, b:9092"),
            ("scan.startup.mode", "latest"),
            ("properties.security.protocol", "SASL_SSL"),
            ("properties.sasl.mechanism", "scram-sha-256"),
            ("properties.sasl.username", "u"),
            ("properties.sasl.password", "${ENV:KAFKA_PASSWORD}"),
            ("include", "partition, offset"),
        ])
        .kafka()
        .unwrap();
        assert_eq!(options.bootstrap_servers, ["a:9092", "b:9092"]);
        assert_eq!(options.start, StartPosition::Latest);
        assert!(options.tls);
        assert_eq!(options.sasl.unwrap().mechanism, "SCRAM-SHA-256");
        assert_eq!(
            options.include,
            [KafkaColumn::Partition, KafkaColumn::Offset]
        );
        assert_eq!(options.commit_interval, Duration::from_secs(1));
    }

    #[test]
    fn bad_properties_are_named() {
        for (properties, message) in [
            (
                vec![("topic", "t")],
                "Property 'properties.bootstrap.server' is required",
            ),
            (
                vec![
                    ("topic", "t"),
                    ("properties.bootstrap.server", "h:1"),
                    ("tpoic", "x"),
                ],
                "Unknown property 'tpoic'",
            ),
            (
                vec![
                    ("topic", "t"),
                    ("properties.bootstrap.server", "h:1"),
                    ("scan.startup.mode", "now"),
                ],
                "'scan.startup.mode' must be",
            ),
            (
                vec![
                    ("topic", "t"),
                    ("properties.bootstrap.server", "h:1"),
                    ("properties.sasl.password", "p"),
                ],
                "needs properties.security.protocol",
            ),
        ] {
            let err = definition(&properties).validate().unwrap_err();
            assert!(err.message.contains(message), "{}", err.message);
        }
    }

    #[test]
    fn postgres_properties_read_as_risingwave_names_them() {
        let mut d = definition(&[
            ("hostname", "db"),
            ("username", "cdc"),
            ("password", "${ENV:PG}"),
            ("database.name", "shop"),
            ("table.name", "orders, Sales.\"Big Table\""),
            ("mode", "upsert"),
        ]);
        d.connector = "postgres-cdc".into();
        d.name = "Shop-Jobs".into();
        let options = d.postgres().unwrap();
        assert_eq!(options.port, 5432);
        assert_eq!(options.slot, "aichemy_shop_jobs");
        assert_eq!(options.publication, "aichemy_shop_jobs");
        assert_eq!(options.mode, CdcMode::Upsert);
        assert_eq!(
            options
                .tables
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["public.orders", "sales.Big Table"]
        );
        assert_eq!(options.tables[1].quoted(), "\"sales\".\"Big Table\"");
        assert_eq!(options.tables[1].target_name(), "sales_big table");
        // INTO one table: one source table.
        assert!(d
            .validate()
            .unwrap_err()
            .message
            .contains("captures one table"));
        d.target.table.clear();
        assert!(d.validate().is_ok());
        assert!(SourceTable::parse("a.b.c", "public").is_none());
        assert!(SourceTable::parse("\"open", "public").is_none());
    }

    #[test]
    fn passwords_are_not_shown() {
        let shown = definition(&[("properties.sasl.password", "hunter2"), ("topic", "t")])
            .shown_properties();
        assert!(!shown.contains("hunter2"), "{shown}");
        let shown = definition(&[("properties.sasl.password", "${ENV:P}")]).shown_properties();
        assert!(shown.contains("${ENV:P}"), "{shown}");
    }
}
