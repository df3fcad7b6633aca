//! The typed configuration tree of AIchemy.
//!
//! Values are loaded in three layers, each overriding the one before: the documented
//! defaults (the embedded, zero-configuration lakehouse), a TOML file, then environment
//! variables named `AICHEMY_<SECTION>__<KEY>` (or `AICHEMY_<KEY>` for top-level keys).
//! Command-line flags are applied last by the binary through [`Config::set`].
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

/// Errors raised while loading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {key}: {message}")]
    InvalidValue { key: String, message: String },
    #[error("unknown configuration key {key}")]
    UnknownKey { key: String },
}

/// The whole configuration of one AIchemy process.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where table data lives: a local folder or an object store URL
    /// (`file:///…`, `s3://bucket/prefix`). Default: `./aichemy-data`.
    pub warehouse: String,
    /// The metastore that holds schemas, tables and views.
    pub metastore: MetastoreConfig,
    /// `aichemy serve`: addresses and limits of the Trino-protocol server.
    pub server: ServerConfig,
    /// External catalogs by name: `[catalogs.sales] connector = "postgresql"`.
    pub catalogs: BTreeMap<String, CatalogConfig>,
    /// A folder of Trino catalog files (`sales.properties`), as `--catalog-dir`.
    pub catalog_dir: Option<PathBuf>,
    /// The secrets catalogs made with SQL `CREATE CATALOG` may read, written `ENV:NAME`
    /// (an environment variable) or `FILE:/path` (a file): only these `${ENV:…}` and
    /// `${FILE:…}` references resolve in such a catalog's properties, since their text
    /// comes from whoever may run `CREATE CATALOG`, who could otherwise send the server's
    /// variables and files to a database of their choosing. Any such user can still send a
    /// listed secret to any database, so list only secrets meant for that. Catalogs of the
    /// configuration file and the catalog folder resolve every reference. Default: none.
    pub create_catalog_secrets: Vec<SecretReference>,
    /// How table commits that lose a race with another writer are retried.
    pub commit: CommitConfig,
    /// Object storage: where tables may live, S3 settings, commit safety.
    pub storage: StorageConfig,
    /// How queries run: threads, the memory limit and where operators spill.
    pub execution: ExecutionConfig,
    /// Ingestion jobs declared in the file, by name: `[ingestions.orders] into =
    /// "iceberg.shop_bronze.orders"` with the `CREATE INGESTION … WITH (…)` properties
    /// under `[ingestions.orders.with]`. `aichemy serve` creates each in the metastore,
    /// or replaces its definition when the file changed it.
    pub ingestions: BTreeMap<String, IngestionConfig>,
    /// Where lineage goes besides `system.runtime.lineage`: OpenLineage run events.
    pub lineage: LineageConfig,
    /// Where audit records go besides `system.runtime.audit`.
    pub audit: AuditConfig,
    /// The models SQL's `embed(text [, model])` calls, by name: `[embeddings.default] url =
    /// "http://host:8000/v1/embeddings"`, an OpenAI-compatible endpoint. `embed(text)` uses
    /// the one named `default`, or the only one. Default: none.
    pub embeddings: BTreeMap<String, EmbeddingConfig>,
}

/// One embedding model: an OpenAI-compatible `POST /v1/embeddings` endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// The endpoint, `…/v1/embeddings` (a URL ending in `/v1` gets `/embeddings` added).
    pub url: String,
    /// The model name the endpoint is asked for. Default: the configuration's name.
    pub model: Option<String>,
    /// Sent as `Authorization: Bearer …`; may be `${ENV:NAME}` or `${FILE:/path}`.
    /// Default: none.
    pub api_key: Option<String>,
    /// The length the endpoint is asked to give its vectors (`dimensions`). Default: the
    /// model's own.
    pub dimensions: Option<u32>,
    /// Texts sent in one request. Default: 64.
    pub batch_size: usize,
    /// How long one request may take. Default: 30 seconds.
    pub timeout_seconds: u64,
    /// Texts whose vectors are kept in memory for the next queries. Default: 10,000.
    pub cache_entries: usize,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            model: None,
            api_key: None,
            dimensions: None,
            batch_size: 64,
            timeout_seconds: 30,
            cache_entries: 10_000,
        }
    }
}

/// Audit: one record per query, authentication attempt and catalog API call, kept in the
/// metastore (`system.runtime.audit`) and, when `http_url` is set, each query also POSTed
/// as JSON in the shape of Trino's HTTP event listener's `QueryCompletedEvent`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Where query events are POSTed (Trino's `http-event-listener.connect-ingest-uri`).
    /// Default: none.
    pub http_url: Option<String>,
    /// How many records the metastore keeps, newest first: the audit and the query history
    /// of `system.runtime.queries` (Trino's `query.max-history`, for every node at once).
    /// Default: 100,000.
    pub kept_records: i64,
    /// Whether each ended query is recorded: its audit record, which is also its entry in
    /// the history of `system.runtime.queries`, and its HTTP event. Other records (sign-ins,
    /// catalog API calls) are kept either way. Default: on.
    pub query_history: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            http_url: None,
            kept_records: 100_000,
            query_history: true,
        }
    }
}

/// Lineage: every write's inputs and outputs down to columns, kept in the metastore and,
/// when `openlineage_url` is set, sent as OpenLineage run events (START, then COMPLETE or
/// FAIL) to that HTTP endpoint (Marquez: `http://host:5000/api/v1/lineage`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineageConfig {
    /// The URL events are POSTed to, as JSON. Default: none (no events sent).
    pub openlineage_url: Option<String>,
    /// A token sent as `Authorization: Bearer …`; may be `${ENV:NAME}` or `${FILE:/path}`.
    /// Default: none.
    pub openlineage_api_key: Option<String>,
    /// The namespace of AIchemy's jobs and of its tables as datasets (tables are named
    /// `catalog.schema.table` in it). Default: `aichemy`.
    pub namespace: String,
}

impl Default for LineageConfig {
    fn default() -> Self {
        Self {
            openlineage_url: None,
            openlineage_api_key: None,
            namespace: "aichemy".to_string(),
        }
    }
}

/// One ingestion job of the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestionConfig {
    /// The target, as `INTO` names it: a table, or (`postgres-cdc`) a schema.
    pub into: String,
    /// The properties, as `WITH (…)` has them (numbers and booleans as their text).
    #[serde(rename = "with")]
    pub properties: BTreeMap<String, PropertyValue>,
}

/// A property value of the file: text, a number or a boolean.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PropertyValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

impl std::fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PropertyValue::Text(text) => f.write_str(text),
            PropertyValue::Integer(n) => write!(f, "{n}"),
            PropertyValue::Float(n) => write!(f, "{n}"),
            PropertyValue::Boolean(b) => write!(f, "{b}"),
        }
    }
}

/// Query execution in this process.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionConfig {
    /// Threads that run queries (and the partitions a query is split into). Default: the
    /// machine's cores.
    pub threads: Option<std::num::NonZeroUsize>,
    /// The memory all running queries of this process may hold together, as Trino's data
    /// sizes (`2GB`, `512MB`; units are powers of 1024). Sorts, joins and aggregations
    /// spill to `spill_path` as they reach it; a query that cannot fails with
    /// `EXCEEDED_LOCAL_MEMORY_LIMIT`. Default: no limit.
    pub memory_limit: Option<DataSize>,
    /// The folder of spill files. Default: the system's temporary folder.
    pub spill_path: Option<PathBuf>,
    /// Seconds a statement may run, reading its results included, before it fails with
    /// `EXCEEDED_TIME_LIMIT` (Trino's `query.max-run-time`); a session's
    /// `query_max_run_time` can only shorten it. Default: no limit.
    pub query_max_run_time_seconds: Option<u64>,
    /// Seconds of CPU time a statement's operators may spend before it fails with
    /// `EXCEEDED_CPU_LIMIT` (Trino's `query.max-cpu-time`); a session's
    /// `query_max_cpu_time` can only lower it. Default: no limit.
    pub query_max_cpu_time_seconds: Option<u64>,
    /// DataFusion settings by their names without the `datafusion.` prefix, for tuning:
    /// `"execution.parquet.pushdown_filters" = "true"`.
    pub datafusion: BTreeMap<String, ScalarText>,
}

impl ExecutionConfig {
    /// The threads queries run on: the configured number or the machine's cores.
    pub fn threads(&self) -> usize {
        self.threads
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, |n| n.get())
    }
}

/// A number of bytes written as Trino writes data sizes: `2GB`, `512MB`, `64kB`, `100B`
/// (the units are powers of 1024; `GiB`-style spellings are accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataSize(pub u64);

impl std::str::FromStr for DataSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("'{text}' is not a data size such as 2GB or 512MB"))?;
        let power = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 0,
            "KB" | "KIB" => 1,
            "MB" | "MIB" => 2,
            "GB" | "GIB" => 3,
            "TB" | "TIB" => 4,
            _ => return Err(format!("unknown unit in data size '{text}'")),
        };
        Ok(DataSize((number * 1024f64.powi(power)) as u64))
    }
}

impl std::fmt::Display for DataSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units = ["B", "kB", "MB", "GB", "TB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < units.len() {
            value /= 1024.0;
            unit += 1;
        }
        if value.fract() == 0.0 {
            write!(f, "{value}{}", units[unit])
        } else {
            write!(f, "{value:.2}{}", units[unit])
        }
    }
}

impl<'de> Deserialize<'de> for DataSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match ScalarText::deserialize(deserializer)?.0.parse() {
            Ok(size) => Ok(size),
            Err(message) => Err(serde::de::Error::custom(message)),
        }
    }
}

/// A TOML string, number or boolean, kept as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalarText(pub String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Text(String),
            Integer(i64),
            Float(f64),
            Bool(bool),
        }
        Ok(ScalarText(match Scalar::deserialize(deserializer)? {
            Scalar::Text(text) => text,
            Scalar::Integer(n) => n.to_string(),
            Scalar::Float(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }))
    }
}

/// Object storage settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Location prefixes (URLs) outside the warehouse where tables may also live, for
    /// `WITH (location = …)` and Iceberg REST clients. Everything else is refused.
    pub allowed_locations: Vec<String>,
    /// Write even to an object store that does not enforce conditional writes (then two
    /// writers can both win a commit and one's data is lost). Default false: such a store
    /// is refused at start-up.
    pub allow_unsafe_commits: bool,
    /// The S3 (or S3-compatible) service of `s3://` locations; unset values come from the
    /// standard `AWS_*` environment variables.
    pub s3: S3Config,
}

/// An S3 or S3-compatible (MinIO, …) service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// The service URL, for example `http://minio:9000`; default: AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    /// The secret key; `${ENV:NAME}` and `${FILE:path}` keep it out of the file.
    pub secret_access_key: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as MinIO needs. Default: true when an
    /// endpoint is set.
    pub path_style: Option<bool>,
}

/// Table commits: every format commits optimistically and, when another writer (of this
/// node or another) committed first, tries again on the newest state.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommitConfig {
    /// Attempts after the first one before the statement fails. Default 25.
    pub retries: u32,
}

impl Default for CommitConfig {
    fn default() -> Self {
        Self { retries: 25 }
    }
}

/// An external catalog declared in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// The connector, as Trino's `connector.name`: `postgresql`.
    pub connector: String,
    /// The database: `postgresql://host:5432/sales_db` (or a `jdbc:postgresql://` URL).
    pub url: String,
    pub user: Option<String>,
    /// The password itself; may be `${ENV:NAME}` or `${FILE:path}`. Prefer
    /// `password_env` or `password_file` so that no password sits in the file.
    pub password: Option<String>,
    /// The environment variable holding the password.
    pub password_env: Option<String>,
    /// A file whose content (trailing newline removed) is the password.
    pub password_file: Option<PathBuf>,
    /// Seconds to wait for a connection before a statement fails. Default: 10.
    pub connection_timeout_seconds: Option<u64>,
}

/// An external catalog as Trino describes one: a name, a connector and its properties
/// (`connection-url`, `connection-user`, `connection-password`, …). Property values may
/// reference secrets as `${ENV:NAME}` or `${FILE:path}`, resolved when the catalog opens.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogDefinition {
    pub name: String,
    pub connector: String,
    pub properties: BTreeMap<String, String>,
    /// Where it was declared, for messages: `the configuration file`, a properties file.
    pub origin: String,
}

/// The Trino-protocol server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default: `0.0.0.0`.
    pub bind: String,
    /// Port of the plain HTTP listener (clients that send no password). Default: 8080.
    pub http_port: u16,
    /// Port of the HTTPS listener, which runs once passwords or a certificate are
    /// configured. Default: 8443.
    pub https_port: u16,
    /// Turns on HTTPS with password authentication against the metastore's users, which
    /// `aichemy user` manages and every server on the metastore shares. Default: false.
    pub password_authentication: bool,
    /// Trino's password file (`user:bcrypt-or-PBKDF2-hash` lines), as an alternative to
    /// the metastore's users; `aichemy user --password-file` manages it. Setting it turns
    /// on HTTPS with password authentication against the file.
    pub password_file: Option<PathBuf>,
    /// The HTTPS certificate (chain) as PEM. Without it a self-signed certificate is
    /// generated once into the warehouse's `tls/` folder.
    pub tls_certificate: Option<PathBuf>,
    /// The certificate's private key as PEM.
    pub tls_key: Option<PathBuf>,
    /// Whether plain HTTP keeps accepting a claimed user name without a password once
    /// passwords are on (Trino's `http-server.authentication.allow-insecure-over-http`).
    /// Default false: with passwords on, HTTP refuses statements (403) and HTTPS with a
    /// password is the only way in, as Trino once authentication is configured. Setting it
    /// lets anyone who reaches the HTTP port act as any user, administrators included; the
    /// server logs a warning. Only for a trusted internal network.
    pub allow_insecure_over_http: bool,
    /// Failed password checks one user name, or one client address, may have before each
    /// further attempt of it waits: 1 s after this many, doubling with every failure up to
    /// 30 s, attempts beyond that wait refused outright (still the same 401). Failures are
    /// forgotten after 15 minutes without one; a good password clears its user's. Unknown
    /// users count alike, so the delays tell nothing about who exists. 0 turns the delays
    /// off. Default 5.
    pub failed_logins_before_delay: u32,
    /// Seconds a kept-alive connection may sit without a request before it is closed.
    /// Default: 60.
    pub idle_timeout_seconds: u64,
    /// Seconds running queries get to finish on SIGTERM before they are cancelled.
    /// Default: 30.
    pub shutdown_grace_seconds: u64,
    /// Seconds after which a query whose client stopped fetching results is cancelled
    /// (Trino's `query.client.timeout`). Default: 300.
    pub query_client_timeout_seconds: u64,
    /// Queries that run at once; later ones wait, QUEUED, for one to end (Trino's
    /// resource group `hardConcurrencyLimit`). Default: 4 per execution thread.
    pub max_concurrent_queries: Option<usize>,
    /// Queries that may wait at once; one more fails at once with `QUERY_QUEUE_FULL`
    /// (Trino's resource group `maxQueued`). Default: 1000.
    pub max_queued_queries: usize,
    /// Users who may run CREATE CATALOG and DROP CATALOG. Empty (the default) lets every
    /// user, as Trino's default allow-all access control does.
    pub admin_users: Vec<String>,
    /// Trino's `access-control.properties` (`access-control.name=file`,
    /// `security.config-file`, `security.refresh-period`, `security.json-pointer`), or the
    /// rules JSON file itself: who may read, write and change what, applied to every
    /// statement. None (the default): everyone may do everything.
    pub access_control_config: Option<PathBuf>,
    /// Trino's `group-provider.properties` (`group-provider.name=file`,
    /// `file.group-file`, `file.refresh-period`): the groups the access rules match.
    pub group_provider_config: Option<PathBuf>,
    /// The most rows one user's query may return to her client; more fail the query with
    /// `EXCEEDED_SCAN_LIMIT` (an export of a whole table, say). Default: no limit.
    pub user_read_rows_per_query: Option<u64>,
    /// The most bytes (of the rows' Arrow data) one user's query may return. Default: none.
    pub user_read_bytes_per_query: Option<u64>,
    /// The most rows one user's queries may return in any hour, across the nodes sharing
    /// the metastore (counted from the audit records). Default: no limit.
    pub user_read_rows_per_hour: Option<u64>,
    /// The most bytes one user's queries may return in any hour. Default: no limit.
    pub user_read_bytes_per_hour: Option<u64>,
    /// Bearer JWTs of an identity provider are accepted (with passwords, if those are on
    /// too), verified with this PEM public key file or the keys of this JWKS URL (Trino's
    /// `http-server.authentication.jwt.key-file`). Default: none (no JWTs).
    pub jwt_key_file: Option<String>,
    /// The `iss` a JWT must carry (`…jwt.required-issuer`). Default: any.
    pub jwt_required_issuer: Option<String>,
    /// An `aud` a JWT must carry (`…jwt.required-audience`). Default: any.
    pub jwt_required_audience: Option<String>,
    /// The claim naming the user (`…jwt.principal-field`). Default: `sub`.
    pub jwt_principal_field: String,
    /// A port serving `/metrics` alone, without authentication, for a Prometheus on a
    /// trusted network. Default: none (`/metrics` on the server's own ports, signed in).
    pub metrics_port: Option<u16>,
    /// A regular expression the principal must match; its first group is the user
    /// (`…jwt.user-mapping.pattern`). Default: the principal is the user.
    pub jwt_user_mapping_pattern: Option<String>,
    /// The claim listing the user's groups, an array of names (as Trino's OAuth2
    /// `groups-field`); they join those of the group file. Default: none.
    pub jwt_groups_field: Option<String>,
    /// Whether the server records metrics (`/metrics`, the console's charts). Default: on.
    pub metrics_enabled: bool,
    /// How long a sign-in to the web console lasts, in seconds (Trino's
    /// `web-ui.session-timeout`). Default: one day.
    pub console_session_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0".to_string(),
            http_port: 8080,
            https_port: 8443,
            password_authentication: false,
            password_file: None,
            tls_certificate: None,
            tls_key: None,
            allow_insecure_over_http: false,
            failed_logins_before_delay: 5,
            idle_timeout_seconds: 60,
            shutdown_grace_seconds: 30,
            query_client_timeout_seconds: 300,
            max_concurrent_queries: None,
            max_queued_queries: 1000,
            admin_users: Vec::new(),
            access_control_config: None,
            group_provider_config: None,
            user_read_rows_per_query: None,
            user_read_bytes_per_query: None,
            user_read_rows_per_hour: None,
            user_read_bytes_per_hour: None,
            jwt_key_file: None,
            jwt_required_issuer: None,
            jwt_required_audience: None,
            jwt_principal_field: "sub".to_string(),
            jwt_user_mapping_pattern: None,
            jwt_groups_field: None,
            metrics_port: None,
            metrics_enabled: true,
            console_session_seconds: 86_400,
        }
    }
}

impl ServerConfig {
    /// Whether passwords are checked (on HTTPS): against the metastore's users or a
    /// password file.
    pub fn passwords_enabled(&self) -> bool {
        self.password_authentication || self.password_file.is_some()
    }

    /// Whether users authenticate (passwords or JWTs): then on HTTPS only.
    pub fn authentication_enabled(&self) -> bool {
        self.passwords_enabled() || self.jwt_key_file.is_some()
    }

    /// Whether the HTTPS listener runs: passwords, JWTs or a certificate are configured.
    pub fn https_enabled(&self) -> bool {
        self.authentication_enabled() || self.tls_certificate.is_some()
    }
}

/// Where the metastore keeps its state.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetastoreConfig {
    /// Database URL of the metastore. Default: an SQLite file `metastore.db` inside the
    /// warehouse folder (for a local warehouse).
    pub url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            warehouse: "./aichemy-data".to_string(),
            metastore: MetastoreConfig::default(),
            server: ServerConfig::default(),
            catalogs: BTreeMap::new(),
            catalog_dir: None,
            create_catalog_secrets: Vec::new(),
            commit: CommitConfig::default(),
            storage: StorageConfig::default(),
            execution: ExecutionConfig::default(),
            ingestions: BTreeMap::new(),
            lineage: LineageConfig::default(),
            audit: AuditConfig::default(),
            embeddings: BTreeMap::new(),
        }
    }
}

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e: T::Err| ConfigError::InvalidValue {
            key: key.to_string(),
            message: e.to_string(),
        })
}

/// The non-empty, trimmed items of a comma-separated environment value.
fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Environment variable prefix; `AICHEMY_METASTORE__URL` sets `metastore.url`.
pub const ENV_PREFIX: &str = "AICHEMY_";

impl Config {
    /// Loads defaults, then `file` (when given), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_env(std::env::vars())?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })
    }

    /// Applies `AICHEMY_*` variables; unknown `AICHEMY_*` names are ignored so that
    /// variables meant for other tools (and later versions) do not stop the process.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            match self.set(&key, &value) {
                Err(ConfigError::UnknownKey { .. }) => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Sets one key given by its dotted path (`warehouse`, `metastore.url`).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "warehouse" => self.warehouse = value.to_string(),
            "metastore.url" => self.metastore.url = Some(value.to_string()),
            "server.bind" => self.server.bind = value.to_string(),
            "server.http_port" => self.server.http_port = parse(key, value)?,
            "server.https_port" => self.server.https_port = parse(key, value)?,
            "server.metrics_port" => self.server.metrics_port = Some(parse(key, value)?),
            "server.metrics_enabled" => self.server.metrics_enabled = parse(key, value)?,
            "server.console_session_seconds" => {
                self.server.console_session_seconds = parse(key, value)?
            }
            "server.password_authentication" => {
                self.server.password_authentication = parse(key, value)?
            }
            "server.password_file" => self.server.password_file = Some(value.into()),
            "server.tls_certificate" => self.server.tls_certificate = Some(value.into()),
            "server.tls_key" => self.server.tls_key = Some(value.into()),
            "server.allow_insecure_over_http" => {
                self.server.allow_insecure_over_http = parse(key, value)?
            }
            "server.failed_logins_before_delay" => {
                self.server.failed_logins_before_delay = parse(key, value)?
            }
            "server.query_client_timeout_seconds" => {
                self.server.query_client_timeout_seconds = parse(key, value)?
            }
            "server.idle_timeout_seconds" => self.server.idle_timeout_seconds = parse(key, value)?,
            "server.shutdown_grace_seconds" => {
                self.server.shutdown_grace_seconds = parse(key, value)?
            }
            "server.max_concurrent_queries" => {
                self.server.max_concurrent_queries = Some(parse(key, value)?)
            }
            "server.max_queued_queries" => self.server.max_queued_queries = parse(key, value)?,
            "server.jwt_key_file" => self.server.jwt_key_file = Some(value.to_string()),
            "server.jwt_required_issuer" => {
                self.server.jwt_required_issuer = Some(value.to_string())
            }
            "server.jwt_required_audience" => {
                self.server.jwt_required_audience = Some(value.to_string())
            }
            "server.jwt_principal_field" => self.server.jwt_principal_field = value.to_string(),
            "server.jwt_user_mapping_pattern" => {
                self.server.jwt_user_mapping_pattern = Some(value.to_string())
            }
            "server.jwt_groups_field" => self.server.jwt_groups_field = Some(value.to_string()),
            "server.user_read_rows_per_query" => {
                self.server.user_read_rows_per_query = Some(parse(key, value)?)
            }
            "server.user_read_bytes_per_query" => {
                self.server.user_read_bytes_per_query = Some(parse(key, value)?)
            }
            "server.user_read_rows_per_hour" => {
                self.server.user_read_rows_per_hour = Some(parse(key, value)?)
            }
            "server.user_read_bytes_per_hour" => {
                self.server.user_read_bytes_per_hour = Some(parse(key, value)?)
            }
            "server.admin_users" => self.server.admin_users = comma_list(value),
            "server.access_control_config" => {
                self.server.access_control_config = Some(value.into())
            }
            "server.group_provider_config" => {
                self.server.group_provider_config = Some(value.into())
            }
            "catalog_dir" => self.catalog_dir = Some(value.into()),
            "create_catalog_secrets" => {
                self.create_catalog_secrets = comma_list(value)
                    .iter()
                    .map(|item| parse(key, item))
                    .collect::<Result<_, _>>()?
            }
            "commit.retries" => self.commit.retries = parse(key, value)?,
            "storage.allowed_locations" => self.storage.allowed_locations = comma_list(value),
            "storage.allow_unsafe_commits" => {
                self.storage.allow_unsafe_commits = parse(key, value)?
            }
            "storage.s3.endpoint" => self.storage.s3.endpoint = Some(value.to_string()),
            "storage.s3.region" => self.storage.s3.region = Some(value.to_string()),
            "storage.s3.access_key_id" => self.storage.s3.access_key_id = Some(value.to_string()),
            "storage.s3.secret_access_key" => {
                self.storage.s3.secret_access_key = Some(value.to_string())
            }
            "storage.s3.path_style" => self.storage.s3.path_style = Some(parse(key, value)?),
            "execution.threads" => self.execution.threads = Some(parse(key, value)?),
            "execution.memory_limit" => self.execution.memory_limit = Some(parse(key, value)?),
            "execution.query_max_run_time_seconds" => {
                self.execution.query_max_run_time_seconds = Some(parse(key, value)?)
            }
            "execution.query_max_cpu_time_seconds" => {
                self.execution.query_max_cpu_time_seconds = Some(parse(key, value)?)
            }
            "execution.spill_path" => self.execution.spill_path = Some(value.into()),
            "lineage.openlineage_url" => self.lineage.openlineage_url = Some(value.to_string()),
            "lineage.openlineage_api_key" => {
                self.lineage.openlineage_api_key = Some(value.to_string())
            }
            "lineage.namespace" => self.lineage.namespace = value.to_string(),
            "audit.http_url" => self.audit.http_url = Some(value.to_string()),
            "audit.kept_records" => self.audit.kept_records = parse(key, value)?,
            "audit.query_history" => self.audit.query_history = parse(key, value)?,
            _ if key.starts_with("execution.datafusion.") => {
                self.execution.datafusion.insert(
                    key["execution.datafusion.".len()..].to_string(),
                    ScalarText(value.to_string()),
                );
            }
            _ if key.starts_with("embeddings.") => {
                let rest = &key["embeddings.".len()..];
                let Some((name, field)) = rest.rsplit_once('.') else {
                    return Err(ConfigError::UnknownKey {
                        key: key.to_string(),
                    });
                };
                let model = self.embeddings.entry(name.to_string()).or_default();
                match field {
                    "url" => model.url = value.to_string(),
                    "model" => model.model = Some(value.to_string()),
                    "api_key" => model.api_key = Some(value.to_string()),
                    "dimensions" => model.dimensions = Some(parse(key, value)?),
                    "batch_size" => model.batch_size = parse(key, value)?,
                    "timeout_seconds" => model.timeout_seconds = parse(key, value)?,
                    "cache_entries" => model.cache_entries = parse(key, value)?,
                    _ => {
                        return Err(ConfigError::UnknownKey {
                            key: key.to_string(),
                        })
                    }
                }
            }
            _ if key.starts_with("catalogs.") => {
                let rest = &key["catalogs.".len()..];
                let Some((name, field)) = rest.rsplit_once('.') else {
                    return Err(ConfigError::UnknownKey {
                        key: key.to_string(),
                    });
                };
                let catalog = self.catalogs.entry(name.to_string()).or_default();
                match field {
                    "connector" => catalog.connector = value.to_string(),
                    "url" => catalog.url = value.to_string(),
                    "user" => catalog.user = Some(value.to_string()),
                    "password" => catalog.password = Some(value.to_string()),
                    "password_env" => catalog.password_env = Some(value.to_string()),
                    "password_file" => catalog.password_file = Some(value.into()),
                    "connection_timeout_seconds" => {
                        catalog.connection_timeout_seconds = Some(parse(key, value)?)
                    }
                    _ => {
                        return Err(ConfigError::UnknownKey {
                            key: key.to_string(),
                        })
                    }
                }
            }
            _ => {
                return Err(ConfigError::UnknownKey {
                    key: key.to_string(),
                })
            }
        }
        Ok(())
    }

    /// The warehouse as an absolute URL: plain paths become `file://` URLs.
    pub fn warehouse_url(&self) -> Result<Url, ConfigError> {
        location_to_url(&self.warehouse).map_err(|message| ConfigError::InvalidValue {
            key: "warehouse".into(),
            message,
        })
    }

    /// The metastore database URL: the configured one, with `${ENV:NAME}` and
    /// `${FILE:path}` references resolved (so that a password need not be written in the
    /// configuration), or `metastore.db` in a local warehouse.
    pub fn metastore_url(&self) -> Result<String, ConfigError> {
        if let Some(url) = &self.metastore.url {
            return resolve_secret(url).map_err(|message| ConfigError::InvalidValue {
                key: "metastore.url".into(),
                message,
            });
        }
        let warehouse = self.warehouse_url()?;
        if warehouse.scheme() != "file" {
            return Err(ConfigError::InvalidValue {
                key: "metastore.url".into(),
                message: format!(
                    "a warehouse on '{}' needs an explicit metastore URL",
                    warehouse.scheme()
                ),
            });
        }
        let dir = warehouse
            .to_file_path()
            .map_err(|_| ConfigError::InvalidValue {
                key: "warehouse".into(),
                message: "not a local path".into(),
            })?;
        Ok(format!("sqlite://{}/metastore.db", dir.display()))
    }
}

impl Config {
    /// The external catalogs of the configuration file and of the catalog folder.
    pub fn catalog_definitions(&self) -> Result<Vec<CatalogDefinition>, ConfigError> {
        let mut out = Vec::new();
        for (name, catalog) in &self.catalogs {
            let key = |field: &str| format!("catalogs.{name}.{field}");
            if catalog.connector.is_empty() {
                return Err(ConfigError::InvalidValue {
                    key: key("connector"),
                    message: "a catalog needs a connector, for example \"postgresql\"".into(),
                });
            }
            let mut properties = BTreeMap::new();
            properties.insert("connection-url".to_string(), catalog.url.clone());
            if let Some(user) = &catalog.user {
                properties.insert("connection-user".to_string(), user.clone());
            }
            let password = match (
                &catalog.password,
                &catalog.password_env,
                &catalog.password_file,
            ) {
                (Some(p), None, None) => Some(p.clone()),
                (None, Some(var), None) => Some(format!("${{ENV:{var}}}")),
                (None, None, Some(path)) => Some(format!("${{FILE:{}}}", path.display())),
                (None, None, None) => None,
                _ => {
                    return Err(ConfigError::InvalidValue {
                        key: key("password"),
                        message: "set one of password, password_env and password_file".into(),
                    })
                }
            };
            if let Some(password) = password {
                properties.insert("connection-password".to_string(), password);
            }
            if let Some(seconds) = catalog.connection_timeout_seconds {
                properties.insert("connection-timeout".to_string(), seconds.to_string());
            }
            out.push(CatalogDefinition {
                name: name.clone(),
                connector: catalog.connector.clone(),
                properties,
                origin: "the configuration file".into(),
            });
        }
        if let Some(dir) = &self.catalog_dir {
            out.extend(read_catalog_dir(dir)?);
        }
        Ok(out)
    }
}

/// The catalogs of a Trino catalog folder: one `<name>.properties` file per catalog.
pub fn read_catalog_dir(dir: &Path) -> Result<Vec<CatalogDefinition>, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "properties"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let mut properties = parse_properties(&text);
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let connector = properties
            .remove("connector.name")
            .ok_or_else(|| ConfigError::Parse {
                path: path.clone(),
                message: "the property 'connector.name' is missing".into(),
            })?;
        out.push(CatalogDefinition {
            name,
            connector,
            properties,
            origin: path.display().to_string(),
        });
    }
    Ok(out)
}

/// Java properties text: `key=value` or `key: value` lines, `#` and `!` comments, lines
/// continued by a trailing backslash.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if logical.is_empty() && (line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            logical.push_str(continued);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let split = entry.find(['=', ':']).unwrap_or(entry.len());
        let key = entry[..split].trim().to_string();
        let value = entry.get(split + 1..).unwrap_or("").trim().to_string();
        out.insert(key, value);
    }
    out
}

/// One secret a value may reference: `${ENV:NAME}` or `${FILE:path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretReference {
    /// An environment variable of the server's process.
    Env(String),
    /// A file the server can read; its content without the trailing newline.
    File(PathBuf),
}

impl std::fmt::Display for SecretReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretReference::Env(name) => write!(f, "${{ENV:{name}}}"),
            SecretReference::File(path) => write!(f, "${{FILE:{}}}", path.display()),
        }
    }
}

impl std::str::FromStr for SecretReference {
    type Err = String;

    /// `ENV:NAME` or `FILE:/path`, also written as the reference itself (`${ENV:NAME}`).
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let inner = text
            .strip_prefix("${")
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(text);
        match inner.split_once(':') {
            Some(("ENV", name)) if !name.is_empty() => Ok(SecretReference::Env(name.into())),
            Some(("FILE", path)) if Path::new(path).is_absolute() => {
                Ok(SecretReference::File(path.into()))
            }
            _ => Err(format!(
                "'{text}' is not a secret reference: write ENV:NAME or FILE:/absolute/path"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for SecretReference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Which `${ENV:…}` and `${FILE:…}` references a value may resolve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SecretScope {
    /// Every reference: text an administrator wrote (the configuration file, a catalog
    /// folder, the environment).
    #[default]
    Any,
    /// Only these: text from SQL (`CREATE CATALOG`), which any user allowed to run it
    /// chooses ([`Config::create_catalog_secrets`]).
    Listed(Vec<SecretReference>),
}

impl SecretScope {
    fn allows(&self, reference: &SecretReference) -> bool {
        match self {
            SecretScope::Any => true,
            SecretScope::Listed(allowed) => allowed.contains(reference),
        }
    }
}

/// Why a value's secret references cannot be resolved. The messages name the variable or
/// file, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("an unterminated ${{…}} reference")]
    Unterminated,
    #[error("unknown reference ${{{reference}}}: use ${{ENV:NAME}} or ${{FILE:path}}")]
    Unknown { reference: String },
    #[error(
        "{reference} may not be read by a catalog made with CREATE CATALOG; an administrator \
         can list it in create_catalog_secrets, or declare the catalog in the configuration"
    )]
    NotAllowed { reference: SecretReference },
    #[error("the environment variable {name} is not set")]
    EnvNotSet { name: String },
    #[error("cannot read the file {path}: {source}")]
    FileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Config {
    /// The secrets catalogs made with `CREATE CATALOG` may read.
    pub fn create_catalog_secret_scope(&self) -> SecretScope {
        SecretScope::Listed(self.create_catalog_secrets.clone())
    }
}

/// Whether a value holds a `${…}` reference (so its resolved text may hold a secret).
pub fn has_secret_reference(value: &str) -> bool {
    value.contains("${")
}

/// Replaces `${ENV:NAME}` and `${FILE:path}` in a value with the variable's value or the
/// file's content (without its trailing newline), as Trino does, for an administrator's
/// text. The messages name the variable or file, never a value.
pub fn resolve_secret(value: &str) -> Result<String, String> {
    resolve_secrets(value, &SecretScope::Any)
        .map(|resolved| resolved.text)
        .map_err(|e| e.to_string())
}

/// A value with its references resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedValue {
    pub text: String,
    /// What each reference stood for, so that messages can hide it wherever it shows up.
    pub secrets: Vec<String>,
}

/// [`resolve_secret`] limited to the references `scope` allows; a reference outside it is
/// refused before anything is read, so not even whether it exists is told.
pub fn resolve_secrets(value: &str, scope: &SecretScope) -> Result<ResolvedValue, SecretError> {
    let mut secrets = Vec::new();
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(SecretError::Unterminated);
        };
        let text = &after[..end];
        let reference = if let Some(name) = text.strip_prefix("ENV:") {
            SecretReference::Env(name.to_string())
        } else if let Some(path) = text.strip_prefix("FILE:") {
            SecretReference::File(path.into())
        } else {
            return Err(SecretError::Unknown {
                reference: text.to_string(),
            });
        };
        if !scope.allows(&reference) {
            return Err(SecretError::NotAllowed { reference });
        }
        match &reference {
            SecretReference::Env(name) => {
                let value = std::env::var(name)
                    .map_err(|_| SecretError::EnvNotSet { name: name.clone() })?;
                out.push_str(&value);
                secrets.push(value);
            }
            SecretReference::File(path) => {
                let value = std::fs::read_to_string(path).map_err(|source| {
                    SecretError::FileUnreadable {
                        path: path.clone(),
                        source,
                    }
                })?;
                let value = value.trim_end_matches(['\n', '\r']);
                out.push_str(value);
                secrets.push(value.to_string());
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(ResolvedValue { text: out, secrets })
}

/// Turns a user-given location (a URL or a local path, relative or absolute) into a URL
/// without a trailing slash.
pub fn location_to_url(location: &str) -> Result<Url, String> {
    let location = location.trim();
    if location.is_empty() {
        return Err("location is empty".into());
    }
    let url = if location.contains("://") {
        Url::parse(location).map_err(|e| format!("'{location}' is not a valid URL: {e}"))?
    } else {
        let path = Path::new(location);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| format!("cannot resolve '{location}': {e}"))?
                .join(path)
        };
        Url::from_directory_path(normalize(&absolute))
            .map_err(|_| format!("'{location}' is not a valid path"))?
    };
    let mut text = url.to_string();
    while text.ends_with('/') && !text.ends_with("://") && !text.ends_with(":///") {
        text.pop();
    }
    Url::parse(&text).map_err(|e| format!("'{location}' is not a valid URL: {e}"))
}

/// Removes `.` and `..` components without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A Trino duration (`90s`, `1.5h`, `100.00d`): a number and a unit (`ns`, `us`, `ms`,
/// `s`, `m`, `h`, `d`).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let seconds = match unit.trim() {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return None,
    };
    (number.is_finite() && number >= 0.0)
        .then(|| std::time::Duration::from_secs_f64(number * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        let mut config = Config::default();
        config
            .apply_env([
                ("AICHEMY_WAREHOUSE".to_string(), "/tmp/wh".to_string()),
                (
                    "AICHEMY_METASTORE__URL".to_string(),
                    "sqlite:///tmp/m.db".to_string(),
                ),
                ("AICHEMY_SOMETHING_ELSE".to_string(), "x".to_string()),
                (
                    "AICHEMY_SERVER__ACCESS_CONTROL_CONFIG".to_string(),
                    "/etc/trino/access-control.properties".to_string(),
                ),
            ])
            .unwrap();
        assert_eq!(config.warehouse_url().unwrap().as_str(), "file:///tmp/wh");
        assert_eq!(config.metastore_url().unwrap(), "sqlite:///tmp/m.db");
        assert_eq!(
            config.server.access_control_config,
            Some(PathBuf::from("/etc/trino/access-control.properties"))
        );
    }

    #[test]
    fn default_metastore_lives_in_the_warehouse() {
        let config = Config {
            warehouse: "/data/wh/".into(),
            ..Config::default()
        };
        assert_eq!(
            config.metastore_url().unwrap(),
            "sqlite:///data/wh/metastore.db"
        );
    }

    #[test]
    fn relative_paths_become_absolute_urls() {
        let url = location_to_url("a/../b").unwrap();
        assert!(url.as_str().starts_with("file:///"));
        assert!(url.as_str().ends_with("/b"));
    }

    #[test]
    fn data_sizes_read_as_trino_writes_them() {
        let size = |text: &str| text.parse::<DataSize>().map(|s| s.0);
        assert_eq!(size("2GB"), Ok(2 << 30));
        assert_eq!(size("512MB"), Ok(512 << 20));
        assert_eq!(size("1.5GiB"), Ok(3 << 29));
        assert_eq!(size("64kB"), Ok(64 << 10));
        assert_eq!(size("100"), Ok(100));
        assert!(size("2 parsecs").is_err());
        assert!(size("GB").is_err());
        assert_eq!(DataSize(2 << 30).to_string(), "2GB");
        assert_eq!(DataSize(3 << 29).to_string(), "1.50GB");
    }

    #[test]
    fn execution_settings_come_from_file_and_environment() {
        let mut config: Config = toml::from_str(
            "[execution]\nthreads = 2\nmemory_limit = \"2GB\"\n\
             [execution.datafusion]\n\"execution.batch_size\" = 4096\n",
        )
        .unwrap();
        assert_eq!(config.execution.threads(), 2);
        assert_eq!(config.execution.memory_limit, Some(DataSize(2 << 30)));
        config
            .apply_env([
                (
                    "AICHEMY_EXECUTION__DATAFUSION__EXECUTION__PARQUET__PUSHDOWN_FILTERS".into(),
                    "true".into(),
                ),
                ("AICHEMY_EXECUTION__SPILL_PATH".into(), "/tmp/spill".into()),
            ])
            .unwrap();
        let settings: Vec<_> = config
            .execution
            .datafusion
            .iter()
            .map(|(k, v)| format!("{k}={}", v.0))
            .collect();
        assert_eq!(
            settings,
            [
                "execution.batch_size=4096",
                "execution.parquet.pushdown_filters=true"
            ]
        );
        assert!(config.set("execution.threads", "0").is_err());
        assert!(config.set("execution.memory_limit", "lots").is_err());
    }

    #[test]
    fn s3_warehouse_needs_a_metastore_url() {
        let config = Config {
            warehouse: "s3://bucket/wh".into(),
            ..Config::default()
        };
        assert!(config.metastore_url().is_err());
    }

    #[test]
    fn catalogs_come_from_the_file_and_trino_properties() {
        let config: Config = toml::from_str(
            "[catalogs.sales]\nconnector = \"postgresql\"\nurl = \"postgresql://h:5432/sales_db\"\nuser = \"app\"\npassword_env = \"SALES_PW\"\n",
        )
        .unwrap();
        let definitions = config.catalog_definitions().unwrap();
        assert_eq!(definitions[0].name, "sales");
        assert_eq!(
            definitions[0].properties["connection-password"],
            "${ENV:SALES_PW}"
        );
        let dir = std::env::temp_dir().join(format!("aichemy-catalogs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("marketing.properties"),
            "# Trino catalog\nconnector.name=postgresql\nconnection-url=jdbc:postgresql://h:5432/m\nconnection-user = app\n",
        )
        .unwrap();
        let definitions = read_catalog_dir(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(definitions[0].name, "marketing");
        assert_eq!(definitions[0].connector, "postgresql");
        assert_eq!(definitions[0].properties["connection-user"], "app");
        assert_eq!(
            definitions[0].properties["connection-url"],
            "jdbc:postgresql://h:5432/m"
        );
    }

    #[test]
    fn secrets_resolve_from_environment_and_files() {
        std::env::set_var("AICHEMY_TEST_SECRET_X", "s3cret");
        assert_eq!(
            resolve_secret("${ENV:AICHEMY_TEST_SECRET_X}").unwrap(),
            "s3cret"
        );
        let err = resolve_secret("${ENV:AICHEMY_TEST_UNSET_Y}").unwrap_err();
        assert!(err.contains("AICHEMY_TEST_UNSET_Y"));
        assert_eq!(resolve_secret("plain").unwrap(), "plain");
    }

    #[test]
    fn sql_catalogs_resolve_only_listed_secrets() {
        std::env::set_var("AICHEMY_TEST_LISTED_SECRET", "listed-value");
        std::env::set_var("AICHEMY_TEST_CANARY_SECRET", "canary-value");
        let dir = tempfile_dir("listed");
        let listed_file = dir.join("listed.pw");
        let other_file = dir.join("other.pw");
        std::fs::write(&listed_file, "from-file\n").unwrap();
        std::fs::write(&other_file, "canary-file\n").unwrap();
        let mut config = Config::default();
        config
            .apply_env([(
                "AICHEMY_CREATE_CATALOG_SECRETS".to_string(),
                format!(
                    "ENV:AICHEMY_TEST_LISTED_SECRET, ${{FILE:{}}}",
                    listed_file.display()
                ),
            )])
            .unwrap();
        let scope = config.create_catalog_secret_scope();
        assert_eq!(
            resolve_secrets("u-${ENV:AICHEMY_TEST_LISTED_SECRET}", &scope).unwrap(),
            ResolvedValue {
                text: "u-listed-value".into(),
                secrets: vec!["listed-value".into()]
            }
        );
        let file = format!("${{FILE:{}}}", listed_file.display());
        assert_eq!(resolve_secrets(&file, &scope).unwrap().text, "from-file");
        // Anything else is refused before it is read: no value, no sign of its existence.
        for refused in [
            "${ENV:AICHEMY_TEST_CANARY_SECRET}".to_string(),
            "${ENV:AICHEMY_TEST_NOT_SET_AT_ALL}".to_string(),
            format!("${{FILE:{}}}", other_file.display()),
            format!("${{FILE:{}/../other.pw}}", dir.display()),
            "${FILE:/nonexistent/file}".to_string(),
        ] {
            let error = resolve_secrets(&refused, &scope).unwrap_err();
            assert!(matches!(error, SecretError::NotAllowed { .. }), "{refused}");
            let message = error.to_string();
            assert!(message.contains("create_catalog_secrets"), "{message}");
            assert!(!message.contains("canary-"), "{message}");
        }
        // An administrator's text resolves every reference.
        assert_eq!(
            resolve_secret("${ENV:AICHEMY_TEST_CANARY_SECRET}").unwrap(),
            "canary-value"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(config.set("create_catalog_secrets", "PATH").is_err());
        assert!(config
            .set("create_catalog_secrets", "FILE:relative")
            .is_err());
        let from_file: Config =
            toml::from_str("create_catalog_secrets = [\"ENV:PG_PW\", \"FILE:/run/pw\"]").unwrap();
        assert_eq!(
            from_file.create_catalog_secrets,
            [
                SecretReference::Env("PG_PW".into()),
                SecretReference::File("/run/pw".into())
            ]
        );
    }

    #[test]
    fn http_takes_no_claimed_user_once_passwords_are_on() {
        let server = ServerConfig::default();
        assert!(!server.allow_insecure_over_http);
        assert_eq!(server.failed_logins_before_delay, 5);
        let mut config = Config::default();
        config
            .apply_env([
                (
                    "AICHEMY_SERVER__ALLOW_INSECURE_OVER_HTTP".to_string(),
                    "true".to_string(),
                ),
                (
                    "AICHEMY_SERVER__FAILED_LOGINS_BEFORE_DELAY".to_string(),
                    "0".to_string(),
                ),
            ])
            .unwrap();
        assert!(config.server.allow_insecure_over_http);
        assert_eq!(config.server.failed_logins_before_delay, 0);
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("aichemy-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn ingestions_are_declared_with_their_properties() {
        let config: Config = toml::from_str(
            "[ingestions.orders]\ninto = 'iceberg.s.orders'\n[ingestions.orders.with]\n\
             connector = 'kafka'\n\"commit.interval.ms\" = 200\nsnapshot = false\n",
        )
        .unwrap();
        let orders = &config.ingestions["orders"];
        assert_eq!(orders.into, "iceberg.s.orders");
        let text: BTreeMap<&str, String> = orders
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_string()))
            .collect();
        assert_eq!(text["commit.interval.ms"], "200");
        assert_eq!(text["snapshot"], "false");
        assert!(toml::from_str::<Config>("[ingestions.x]\ninto = 't'\nwth = {}\n").is_err());
    }

    #[test]
    fn file_rejects_unknown_keys() {
        let err = toml::from_str::<Config>("warehous = 'x'").unwrap_err();
        assert!(err.message().contains("unknown field"));
    }
}
