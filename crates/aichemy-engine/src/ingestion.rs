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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestionDefinition {
    pub name: String,
    /// `kafka`.
    pub connector: String,
    pub target: TargetTable,
    /// The `WITH (…)` properties as written (secrets as their `${ENV:…}` references).
    pub properties: BTreeMap<String, String>,
    /// The user who created it.
    pub owner: String,
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
        write!(f, "{}.{}.{}", self.catalog, self.schema, self.table)
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
    /// The Kafka attributes stored as columns (every one for `raw`).
    pub include: Vec<KafkaColumn>,
    pub commit_interval: Duration,
    /// At most this many messages per commit.
    pub max_batch_messages: usize,
    pub on_error: OnError,
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
];

fn invalid(message: impl Into<String>) -> TrinoError {
    TrinoError::new(ErrorCode::INVALID_ARGUMENTS, message)
}

impl IngestionDefinition {
    /// Checks the properties (names, values) for the connector; errors name the property.
    pub fn validate(&self) -> Result<()> {
        match self.connector.as_str() {
            "kafka" => self.kafka().map(|_| ()),
            other => Err(invalid(format!(
                "Unknown ingestion connector '{other}': use 'kafka'"
            ))),
        }
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
        let format = match self
            .get("format")
            .unwrap_or("json")
            .to_ascii_lowercase()
            .as_str()
        {
            "json" => MessageFormat::Json,
            "raw" | "bytes" => MessageFormat::Raw,
            other => {
                return Err(invalid(format!(
                    "Property 'format' must be 'json' or 'raw': '{other}'"
                )))
            }
        };
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
        let commit_interval = self.millis("commit.interval.ms", 1_000)?;
        if commit_interval < Duration::from_millis(10) {
            return Err(invalid(
                "Property 'commit.interval.ms' must be at least 10".to_string(),
            ));
        }
        let max_batch_messages = match self.get("max.batch.messages") {
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
            include,
            commit_interval,
            max_batch_messages,
            on_error,
            maintenance: Maintenance {
                interval: self.millis("maintenance.interval.ms", 10 * 60 * 1_000)?,
                snapshot_retention: self.millis("snapshot.retention.ms", 60 * 60 * 1_000)?,
            },
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

    /// The source as a short text: `kafka topic orders`.
    pub fn source(&self) -> String {
        match self.get("topic") {
            Some(topic) => format!("{} topic {topic}", self.connector),
            None => self.connector.clone(),
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
    fn passwords_are_not_shown() {
        let shown = definition(&[("properties.sasl.password", "hunter2"), ("topic", "t")])
            .shown_properties();
        assert!(!shown.contains("hunter2"), "{shown}");
        let shown = definition(&[("properties.sasl.password", "${ENV:P}")]).shown_properties();
        assert!(shown.contains("${ENV:P}"), "{shown}");
    }
}
