//! External catalogs: operational databases queried live, next to the lakehouse tables.
//!
//! A `postgresql` catalog serves the schemas and tables of one PostgreSQL database. Names
//! and types are read from the database on every statement (nothing is cached), scans
//! send the projection, the filters PostgreSQL can evaluate and the limit as one query
//! and stream its binary `COPY` output, and INSERTs go in one transaction.
//!
//! Connections are opened lazily and pooled: an unreachable database fails the statements
//! that use it, with an error naming the catalog, and the catalog works again once the
//! database is back. The password is only ever handed to the driver.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aichemy_tables::{ColumnSpec, CreateTableRequest, TableError, TableFormat, TableHandle};
use async_trait::async_trait;
use datafusion::arrow::datatypes::Schema;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Postgres, Row};

use aichemy_config::{has_secret_reference, resolve_secrets, SecretScope};

mod decode;
mod pushdown;
mod scan;
mod sql;
mod types;
mod write;

pub use pushdown::PushdownToPostgres;
pub use scan::{PostgresScanExec, PostgresTable};
pub use sql::{quote_ident, quote_literal};
pub use types::TRINO_TYPE_KEY;

use crate::sql::quote_ident as q;
use crate::types::RemoteColumn;

/// Connectors this build can serve, by Trino's `connector.name`.
pub const CONNECTORS: [&str; 1] = ["postgresql"];

/// Default seconds to wait for a connection before a statement fails.
const DEFAULT_CONNECT_TIMEOUT: u64 = 10;

/// Catalog properties this connector reads; others are refused so typos do not pass.
const PROPERTIES: [&str; 6] = [
    "connection-url",
    "connection-user",
    "connection-password",
    "connection-timeout",
    "join-pushdown.enabled",
    "aggregation-pushdown.enabled",
];

/// Properties of Trino's PostgreSQL connector that have no effect here (caching, its own
/// tuning, mappings this connector always applies). A Trino catalog file that sets them
/// still works; each is logged once when the catalog opens.
const TRINO_ONLY_PROPERTIES: [&str; 24] = [
    "case-insensitive-name-matching",
    "case-insensitive-name-matching.cache-ttl",
    "case-insensitive-name-matching.config-file",
    "metadata.cache-ttl",
    "metadata.cache-missing",
    "metadata.cache-maximum-size",
    "metadata.schemas.cache-ttl",
    "metadata.tables.cache-ttl",
    "postgresql.array-mapping",
    "postgresql.include-system-tables",
    "postgresql.experimental.enable-string-pushdown-with-collate",
    "decimal-mapping",
    "decimal-default-scale",
    "decimal-rounding-mode",
    "unsupported-type-handling",
    "jdbc-types-mapped-to-varchar",
    "domain-compaction-threshold",
    "dynamic-filtering.enabled",
    "dynamic-filtering.wait-timeout",
    "complex-expression-pushdown.enabled",
    "topn-pushdown.enabled",
    "statistics.enabled",
    "write.batch-size",
    "insert.non-transactional-insert.enabled",
];

/// An execution error of a remote database, mapped to Trino's `JDBC_ERROR`.
pub(crate) fn remote_failure(message: String) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(TableError::Remote { message }))
}

/// The connection to one remote database.
pub struct Remote {
    pub(crate) catalog: String,
    pub(crate) pool: PgPool,
    /// Whether joins and aggregates may run remotely (Trino's `join-pushdown.enabled`
    /// and `aggregation-pushdown.enabled`, both true by default here).
    pub(crate) join_pushdown: bool,
    pub(crate) aggregation_pushdown: bool,
    /// `host:port/database`, for messages (never the password); as written when the URL
    /// holds `${…}` references.
    address: String,
    /// The password and what `${…}` references stood for: replaced by `***` in every
    /// message, whoever wrote it (the driver, the remote server).
    hidden: Vec<String>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("catalog", &self.catalog)
            .field("address", &self.address)
            .finish()
    }
}

impl Remote {
    /// A message about this catalog.
    pub(crate) fn message(&self, text: &str) -> String {
        let mut message = format!("Catalog '{}': {text}", self.catalog);
        for secret in &self.hidden {
            if message.contains(secret.as_str()) {
                message = message.replace(secret.as_str(), "***");
            }
        }
        message
    }

    /// A driver error as a message naming the catalog and the database.
    pub(crate) fn describe_error(&self, error: &sqlx::Error) -> String {
        let text = match error {
            sqlx::Error::Database(e) => {
                let code = e.code().map(|c| format!(" [SQLSTATE {c}]")).unwrap_or_default();
                format!("PostgreSQL error: {}{code}", e.message())
            }
            sqlx::Error::PoolTimedOut => format!(
                "cannot connect to PostgreSQL at {}: no connection within the connection timeout (is the database running and reachable?)",
                self.address
            ),
            sqlx::Error::Io(e) => {
                format!("cannot reach PostgreSQL at {}: {e}", self.address)
            }
            sqlx::Error::Tls(e) => format!("TLS to PostgreSQL at {} failed: {e}", self.address),
            other => format!("PostgreSQL at {}: {other}", self.address),
        };
        self.message(&text)
    }

    pub(crate) async fn acquire(&self) -> Result<PoolConnection<Postgres>, String> {
        self.pool
            .acquire()
            .await
            .map_err(|e| self.describe_error(&e))
    }

    fn error(&self, error: sqlx::Error) -> TableError {
        TableError::Remote {
            message: self.describe_error(&error),
        }
    }
}

/// A catalog backed by one PostgreSQL database.
#[derive(Debug)]
pub struct PostgresCatalog {
    remote: Arc<Remote>,
}

impl PostgresCatalog {
    /// A catalog from Trino-style properties (`connection-url`, `connection-user`,
    /// `connection-password`, optionally `connection-timeout` in seconds). Values may hold
    /// the `${ENV:NAME}` and `${FILE:path}` references `secrets` allows (a catalog made
    /// with SQL only those an administrator listed). No message shows a resolved value.
    /// Nothing connects until a statement needs it.
    pub fn new(
        catalog: &str,
        properties: &BTreeMap<String, String>,
        secrets: &SecretScope,
    ) -> Result<Self, String> {
        let fail = |text: String| format!("Catalog '{catalog}': {text}");
        for key in properties.keys() {
            if TRINO_ONLY_PROPERTIES.contains(&key.as_str()) {
                tracing::info!("Catalog '{catalog}': property '{key}' has no effect in aichemy");
            } else if !PROPERTIES.contains(&key.as_str()) && key != "connector.name" {
                return Err(fail(format!(
                    "unknown catalog property '{key}'; the postgresql connector reads {}",
                    PROPERTIES.join(", ")
                )));
            }
        }
        let switch = |key: &str| -> Result<bool, String> {
            match properties.get(key).map(|v| v.trim().to_ascii_lowercase()) {
                None => Ok(true),
                Some(v) if v == "true" => Ok(true),
                Some(v) if v == "false" => Ok(false),
                Some(v) => Err(fail(format!("{key} must be true or false, not '{v}'"))),
            }
        };
        // What references stood for, and the password: hidden wherever a message (of the
        // driver, of the remote server) would show them.
        let hidden = std::cell::RefCell::new(Vec::new());
        let resolve = |key: &str| -> Result<Option<String>, String> {
            let Some(written) = properties.get(key) else {
                return Ok(None);
            };
            let resolved =
                resolve_secrets(written, secrets).map_err(|e| fail(format!("{key}: {e}")))?;
            hidden.borrow_mut().extend(resolved.secrets);
            Ok(Some(resolved.text))
        };
        let written_url = properties
            .get("connection-url")
            .ok_or_else(|| fail("the property 'connection-url' is required".into()))?;
        let url = resolve("connection-url")?.unwrap_or_default();
        let (mut options, address) = if has_secret_reference(written_url) {
            // Messages describe the URL as written: what a reference stands for is a
            // secret, and an error quoting part of it would give it away.
            let options = connect_options(&url)
                .map(|(options, _)| options)
                .map_err(|_| {
                    fail(
                        "connection-url is not a valid postgresql:// URL once its ${…} \
                     references are resolved"
                            .into(),
                    )
                })?;
            (options, address_as_written(written_url))
        } else {
            connect_options(&url).map_err(&fail)?
        };
        if let Some(user) = resolve("connection-user")? {
            options = options.username(&user);
        }
        if let Some(password) = resolve("connection-password")? {
            options = options.password(&password);
            hidden.borrow_mut().push(password);
        }
        if let Ok(parsed) = url::Url::parse(url.strip_prefix("jdbc:").unwrap_or(&url)) {
            let mut hidden = hidden.borrow_mut();
            hidden.extend(parsed.password().map(str::to_string));
            hidden.extend(
                parsed
                    .query_pairs()
                    .filter(|(key, _)| key == "password")
                    .map(|(_, value)| value.into_owned()),
            );
        }
        let mut hidden = hidden.into_inner();
        hidden.retain(|secret| !secret.is_empty());
        // The longest first, so that a secret holding another is hidden whole.
        hidden.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        let timeout = match properties.get("connection-timeout") {
            None => DEFAULT_CONNECT_TIMEOUT,
            Some(v) => v
                .trim()
                .trim_end_matches('s')
                .parse()
                .map_err(|_| fail(format!("connection-timeout must be seconds, not '{v}'")))?,
        };
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(timeout.max(1)))
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy_with(options);
        Ok(Self {
            remote: Arc::new(Remote {
                catalog: catalog.to_string(),
                pool,
                join_pushdown: switch("join-pushdown.enabled")?,
                aggregation_pushdown: switch("aggregation-pushdown.enabled")?,
                address,
                hidden,
            }),
        })
    }

    fn remote_error(&self, message: String) -> TableError {
        TableError::Remote {
            message: self.remote.message(&message),
        }
    }

    async fn columns(&self, schema: &str, table: &str) -> Result<Vec<RemoteColumn>, TableError> {
        let rows = sqlx::query(
            "SELECT a.attname::text, t.typname::text, a.atttypmod, NOT a.attnotnull, \
                    et.typname::text, col_description(c.oid, a.attnum) \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_catalog.pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
        )
        .bind(schema)
        .bind(table)
        .fetch_all(&self.remote.pool)
        .await
        .map_err(|e| self.remote.error(e))?;
        Ok(rows
            .iter()
            .map(|row| {
                let element: Option<String> = row.get(4);
                RemoteColumn::new(
                    row.get(0),
                    row.get::<String, _>(1).as_str(),
                    row.get(2),
                    element.as_deref(),
                    row.get(3),
                    row.get(5),
                )
            })
            .collect())
    }

    async fn execute(&self, statement: &str) -> Result<(), TableError> {
        sqlx::raw_sql(statement)
            .execute(&self.remote.pool)
            .await
            .map(|_| ())
            .map_err(|e| self.remote.error(e))
    }
}

/// The PostgreSQL type a declared column is created with.
fn column_type(column: &ColumnSpec) -> Result<String, TableError> {
    let declared = (!column.trino_type.is_empty()).then_some(column.trino_type.as_str());
    types::postgres_type(&column.data_type, declared).ok_or_else(|| TableError::UnsupportedType {
        format: "PostgreSQL",
        column: column.name.clone(),
        trino_type: column.trino_type.clone(),
    })
}

/// Driver options and a printable address from a `postgresql://` or
/// `jdbc:postgresql://` URL.
fn connect_options(url: &str) -> Result<(PgConnectOptions, String), String> {
    let text = url.strip_prefix("jdbc:").unwrap_or(url);
    let parsed = url::Url::parse(text)
        .map_err(|e| format!("connection-url is not a valid PostgreSQL URL: {e}"))?;
    if !matches!(parsed.scheme(), "postgresql" | "postgres") {
        return Err(format!(
            "connection-url must start with postgresql:// or jdbc:postgresql://, not '{}:'",
            parsed.scheme()
        ));
    }
    let host = parsed.host_str().unwrap_or("localhost").to_string();
    let port = parsed.port().unwrap_or(5432);
    let database = parsed.path().trim_start_matches('/').to_string();
    let mut options = PgConnectOptions::new_without_pgpass()
        .host(&host)
        .port(port)
        .application_name("aichemy")
        .disable_statement_logging();
    if !database.is_empty() {
        options = options.database(&database);
    }
    if !parsed.username().is_empty() {
        options = options.username(parsed.username());
    }
    if let Some(password) = parsed.password() {
        options = options.password(password);
    }
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "user" => options = options.username(&value),
            "password" => options = options.password(&value),
            "sslmode" => {
                let mode: PgSslMode = value
                    .parse()
                    .map_err(|_| format!("connection-url has an unknown sslmode '{value}'"))?;
                options = options.ssl_mode(mode);
            }
            "ssl" if value == "true" => options = options.ssl_mode(PgSslMode::Require),
            "sslrootcert" => options = options.ssl_root_cert(value.as_ref()),
            // Other JDBC driver settings do not apply to this driver.
            _ => {}
        }
    }
    Ok((options, format!("{host}:{port}/{database}")))
}

/// `host:port/database` of a URL as written, its `${…}` references left as they are:
/// the part after the scheme, without credentials or query.
fn address_as_written(url: &str) -> String {
    let text = url.strip_prefix("jdbc:").unwrap_or(url);
    let text = text.split_once("://").map_or(text, |(_, rest)| rest);
    let text = text.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = text.split_once('/').unwrap_or((text, ""));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{host}/{path}")
}

#[async_trait]
impl TableFormat for PostgresCatalog {
    fn format_name(&self) -> &'static str {
        "PostgreSQL"
    }

    async fn list_schemas(&self) -> Result<Vec<String>, TableError> {
        let rows = sqlx::query_scalar::<_, String>(
            "SELECT nspname::text FROM pg_catalog.pg_namespace \
             WHERE nspname NOT IN ('information_schema', 'pg_catalog', 'pg_toast') \
               AND nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%' \
             ORDER BY 1",
        )
        .fetch_all(&self.remote.pool)
        .await
        .map_err(|e| self.remote.error(e))?;
        Ok(rows)
    }

    async fn schema_exists(&self, schema: &str) -> Result<bool, TableError> {
        Ok(self.list_schemas().await?.iter().any(|s| s == schema))
    }

    async fn create_schema(
        &self,
        schema: &str,
        location: Option<String>,
    ) -> Result<(), TableError> {
        if location.is_some() {
            return Err(TableError::InvalidProperty {
                property: "location".into(),
                message: "PostgreSQL schemas have no location".into(),
            });
        }
        if self.schema_exists(schema).await? {
            return Err(TableError::SchemaAlreadyExists {
                schema: schema.to_string(),
            });
        }
        self.execute(&format!("CREATE SCHEMA {}", q(schema))).await
    }

    async fn drop_schema(&self, schema: &str) -> Result<(), TableError> {
        if !self.schema_exists(schema).await? {
            return Err(TableError::SchemaNotFound {
                schema: schema.to_string(),
            });
        }
        if !self.list_tables(schema).await?.is_empty() {
            return Err(TableError::SchemaNotEmpty {
                schema: schema.to_string(),
            });
        }
        self.execute(&format!("DROP SCHEMA {}", q(schema))).await
    }

    async fn list_tables(&self, schema: &str) -> Result<Vec<String>, TableError> {
        sqlx::query_scalar::<_, String>(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p', 'f') \
               AND NOT c.relispartition \
             ORDER BY 1",
        )
        .bind(schema)
        .fetch_all(&self.remote.pool)
        .await
        .map_err(|e| self.remote.error(e))
    }

    async fn load_table(
        &self,
        schema: &str,
        name: &str,
    ) -> Result<Option<TableHandle>, TableError> {
        let found = sqlx::query(
            "SELECT c.relkind::text, obj_description(c.oid, 'pg_class') \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'v', 'm', 'p', 'f')",
        )
        .bind(schema)
        .bind(name)
        .fetch_optional(&self.remote.pool)
        .await
        .map_err(|e| self.remote.error(e))?;
        let Some(found) = found else {
            return Ok(None);
        };
        let kind: String = found.get(0);
        let comment: Option<String> = found.get(1);
        let columns = self.columns(schema, name).await?;
        let arrow_schema = Arc::new(Schema::new(
            columns.iter().map(|c| c.field()).collect::<Vec<_>>(),
        ));
        let specs = columns
            .iter()
            .map(|c| ColumnSpec {
                name: c.name.clone(),
                data_type: c.kind.data_type(),
                trino_type: c.trino_type.clone(),
                nullable: c.nullable,
                comment: c.comment.clone(),
            })
            .collect();
        let provider = Arc::new(PostgresTable {
            remote: self.remote.clone(),
            schema_name: schema.to_string(),
            table_name: name.to_string(),
            columns,
            arrow_schema,
            writable: matches!(kind.as_str(), "r" | "p" | "f"),
        });
        Ok(Some(TableHandle {
            provider,
            columns: specs,
            comment,
            properties: Vec::new(),
            rows: None,
            partitions: None,
        }))
    }

    async fn create_table(&self, request: CreateTableRequest) -> Result<(), TableError> {
        if let Some((property, _)) = request.properties.first() {
            return Err(TableError::InvalidProperty {
                property: property.clone(),
                message: format!(
                    "Catalog '{}' does not support table property '{property}'",
                    self.remote.catalog
                ),
            });
        }
        if !self.schema_exists(&request.schema).await? {
            return Err(TableError::SchemaNotFound {
                schema: request.schema.clone(),
            });
        }
        if self
            .load_table(&request.schema, &request.name)
            .await?
            .is_some()
        {
            return Err(TableError::TableAlreadyExists {
                table: format!(
                    "{}.{}.{}",
                    self.remote.catalog, request.schema, request.name
                ),
            });
        }
        let table = format!("{}.{}", q(&request.schema), q(&request.name));
        let mut columns = Vec::new();
        let mut comments = Vec::new();
        for column in &request.columns {
            let remote_type = column_type(column)?;
            let not_null = if column.nullable { "" } else { " NOT NULL" };
            columns.push(format!("{} {remote_type}{not_null}", q(&column.name)));
            if let Some(comment) = &column.comment {
                let literal = quote_literal(comment).ok_or_else(|| {
                    self.remote_error("comments cannot hold NUL characters".into())
                })?;
                comments.push(format!(
                    "COMMENT ON COLUMN {table}.{} IS {literal}",
                    q(&column.name)
                ));
            }
        }
        if let Some(comment) = &request.comment {
            let literal = quote_literal(comment)
                .ok_or_else(|| self.remote_error("comments cannot hold NUL characters".into()))?;
            comments.push(format!("COMMENT ON TABLE {table} IS {literal}"));
        }
        // One simple query: its statements run in one implicit transaction.
        let statements: Vec<String> =
            std::iter::once(format!("CREATE TABLE {table} ({})", columns.join(", ")))
                .chain(comments)
                .collect();
        self.execute(&statements.join("; ")).await
    }

    async fn drop_table(&self, schema: &str, name: &str) -> Result<(), TableError> {
        self.execute(&format!("DROP TABLE {}.{}", q(schema), q(name)))
            .await
    }

    async fn rename_table(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), TableError> {
        let mut statements = Vec::new();
        if from.0 != to.0 {
            statements.push(format!(
                "ALTER TABLE {}.{} SET SCHEMA {}",
                q(from.0),
                q(from.1),
                q(to.0)
            ));
        }
        if from.1 != to.1 {
            statements.push(format!(
                "ALTER TABLE {}.{} RENAME TO {}",
                q(to.0),
                q(from.1),
                q(to.1)
            ));
        }
        self.execute(&statements.join("; ")).await
    }

    async fn add_column(
        &self,
        schema: &str,
        name: &str,
        column: ColumnSpec,
    ) -> Result<(), TableError> {
        let remote_type = column_type(&column)?;
        self.execute(&format!(
            "ALTER TABLE {}.{} ADD COLUMN {} {remote_type}",
            q(schema),
            q(name),
            q(&column.name)
        ))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_urls_are_read_without_printing_passwords() {
        let (options, address) = connect_options(
            "jdbc:postgresql://db.example:5433/sales?user=u&password=secret&sslmode=disable",
        )
        .unwrap();
        assert_eq!(address, "db.example:5433/sales");
        assert_eq!(options.get_username(), "u");
        let err = connect_options("mysql://h/db").unwrap_err();
        assert!(err.contains("postgresql://"), "{err}");
    }

    #[tokio::test]
    async fn trino_properties_are_accepted_and_pushdown_switches_read() {
        let properties = BTreeMap::from([
            (
                "connection-url".to_string(),
                "postgresql://h/db".to_string(),
            ),
            (
                "case-insensitive-name-matching".to_string(),
                "true".to_string(),
            ),
            ("join-pushdown.enabled".to_string(), "false".to_string()),
        ]);
        let catalog = PostgresCatalog::new("sales", &properties, &SecretScope::Any).unwrap();
        assert!(!catalog.remote.join_pushdown);
        assert!(catalog.remote.aggregation_pushdown);
    }

    #[tokio::test]
    async fn secrets_stay_out_of_messages() {
        std::env::set_var("AICHEMY_FEDERATION_TEST_HOST", "canary-host.invalid");
        std::env::set_var("AICHEMY_FEDERATION_TEST_PW", "canary-password");
        let properties = BTreeMap::from([
            (
                "connection-url".to_string(),
                "postgresql://${ENV:AICHEMY_FEDERATION_TEST_HOST}:5/db".to_string(),
            ),
            (
                "connection-password".to_string(),
                "${ENV:AICHEMY_FEDERATION_TEST_PW}".to_string(),
            ),
        ]);
        // A catalog made with SQL may not read them at all.
        let err = PostgresCatalog::new("evil", &properties, &SecretScope::Listed(Vec::new()))
            .unwrap_err();
        assert!(err.contains("${ENV:AICHEMY_FEDERATION_TEST_HOST}"), "{err}");
        assert!(!err.contains("canary"), "{err}");
        // An administrator's catalog reads them, and its messages show the URL as written
        // and hide whatever a reference stood for, wherever it turns up.
        let catalog = PostgresCatalog::new("sales", &properties, &SecretScope::Any).unwrap();
        assert_eq!(
            catalog.remote.address,
            "${ENV:AICHEMY_FEDERATION_TEST_HOST}:5/db"
        );
        let message = catalog
            .remote
            .message("server said: no user canary-host.invalid with canary-password");
        assert_eq!(
            message,
            "Catalog 'sales': server said: no user *** with ***"
        );
        let err = catalog.list_schemas().await.unwrap_err().to_string();
        assert!(!err.contains("canary"), "{err}");
        // A reference that turns the URL into something else is not quoted back.
        std::env::set_var("AICHEMY_FEDERATION_TEST_SCHEME", "canary-scheme");
        let properties = BTreeMap::from([(
            "connection-url".to_string(),
            "${ENV:AICHEMY_FEDERATION_TEST_SCHEME}://h/db".to_string(),
        )]);
        let err = PostgresCatalog::new("sales", &properties, &SecretScope::Any).unwrap_err();
        assert!(!err.contains("canary"), "{err}");
        assert_eq!(
            address_as_written("jdbc:postgresql://u:${ENV:X}@${ENV:H}:5432/db?password=p"),
            "${ENV:H}:5432/db"
        );
    }

    #[test]
    fn unknown_properties_are_refused() {
        let properties = BTreeMap::from([
            (
                "connection-url".to_string(),
                "postgresql://h/db".to_string(),
            ),
            ("connection-pasword".to_string(), "x".to_string()),
        ]);
        let err = PostgresCatalog::new("sales", &properties, &SecretScope::Any).unwrap_err();
        assert!(
            err.starts_with("Catalog 'sales': unknown catalog property 'connection-pasword'"),
            "{err}"
        );
    }
}
