//! The typed configuration tree of AIchemy.
//!
//! Values are loaded in three layers, each overriding the one before: the documented
//! defaults (the embedded, zero-configuration lakehouse), a TOML file, then environment
//! variables named `AICHEMY_<SECTION>__<KEY>` (or `AICHEMY_<KEY>` for top-level keys).
//! Command-line flags are applied last by the binary through [`Config::set`].
#![forbid(unsafe_code)]

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
}

/// The Trino-protocol server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default: `0.0.0.0`.
    pub bind: String,
    /// Port of the plain HTTP listener (clients that send no password). Default: 8080.
    pub http_port: u16,
    /// Port of the HTTPS listener, which runs once a password file or a certificate is
    /// configured. Default: 8443.
    pub https_port: u16,
    /// Trino's password file (`user:bcrypt-or-PBKDF2-hash` lines), managed by
    /// `aichemy user`. Setting it turns on HTTPS with password authentication.
    pub password_file: Option<PathBuf>,
    /// The HTTPS certificate (chain) as PEM. Without it a self-signed certificate is
    /// generated once into the warehouse's `tls/` folder.
    pub tls_certificate: Option<PathBuf>,
    /// The certificate's private key as PEM.
    pub tls_key: Option<PathBuf>,
    /// Whether plain HTTP keeps accepting a user name without a password once a password
    /// file is configured, as Trino's `http-server.authentication.allow-insecure-over-http`
    /// (default true). Set false to make HTTPS with a password the only way in.
    pub allow_insecure_over_http: bool,
    /// Seconds a kept-alive connection may sit without a request before it is closed.
    /// Default: 60.
    pub idle_timeout_seconds: u64,
    /// Seconds running queries get to finish on SIGTERM before they are cancelled.
    /// Default: 30.
    pub shutdown_grace_seconds: u64,
    /// Seconds after which a query whose client stopped fetching results is cancelled
    /// (Trino's `query.client.timeout`). Default: 300.
    pub query_client_timeout_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0".to_string(),
            http_port: 8080,
            https_port: 8443,
            password_file: None,
            tls_certificate: None,
            tls_key: None,
            allow_insecure_over_http: true,
            idle_timeout_seconds: 60,
            shutdown_grace_seconds: 30,
            query_client_timeout_seconds: 300,
        }
    }
}

impl ServerConfig {
    /// Whether the HTTPS listener runs: a password file or a certificate is configured.
    pub fn https_enabled(&self) -> bool {
        self.password_file.is_some() || self.tls_certificate.is_some()
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
            "server.password_file" => self.server.password_file = Some(value.into()),
            "server.tls_certificate" => self.server.tls_certificate = Some(value.into()),
            "server.tls_key" => self.server.tls_key = Some(value.into()),
            "server.allow_insecure_over_http" => {
                self.server.allow_insecure_over_http = parse(key, value)?
            }
            "server.query_client_timeout_seconds" => {
                self.server.query_client_timeout_seconds = parse(key, value)?
            }
            "server.idle_timeout_seconds" => self.server.idle_timeout_seconds = parse(key, value)?,
            "server.shutdown_grace_seconds" => {
                self.server.shutdown_grace_seconds = parse(key, value)?
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

    /// The metastore database URL: the configured one, or `metastore.db` in a local warehouse.
    pub fn metastore_url(&self) -> Result<String, ConfigError> {
        if let Some(url) = &self.metastore.url {
            return Ok(url.clone());
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
            ])
            .unwrap();
        assert_eq!(config.warehouse_url().unwrap().as_str(), "file:///tmp/wh");
        assert_eq!(config.metastore_url().unwrap(), "sqlite:///tmp/m.db");
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
    fn s3_warehouse_needs_a_metastore_url() {
        let config = Config {
            warehouse: "s3://bucket/wh".into(),
            ..Config::default()
        };
        assert!(config.metastore_url().is_err());
    }

    #[test]
    fn file_rejects_unknown_keys() {
        let err = toml::from_str::<Config>("warehous = 'x'").unwrap_err();
        assert!(err.message().contains("unknown field"));
    }
}
