//! Object stores from location URLs.
//!
//! Every table and warehouse location in AIchemy is a URL (`file:///…`, `s3://bucket/…`);
//! this crate turns one into an [`ObjectStore`] plus the path inside it, so that the table
//! formats never special-case local disks.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use url::Url;

mod metered;

pub use object_store;

/// Errors raised while resolving a location to a store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid location '{location}': {message}")]
    InvalidLocation { location: String, message: String },
    #[error("unsupported storage scheme '{scheme}' in '{location}'")]
    UnsupportedScheme { scheme: String, location: String },
    #[error("cannot open storage for '{location}': {source}")]
    Open {
        location: String,
        source: object_store::Error,
    },
    #[error("{source}")]
    Io { source: object_store::Error },
}

/// Settings of `s3://` stores as object_store configuration keys (`aws_endpoint`,
/// `aws_access_key_id`, …), which deltalake and Lance take as their storage options too.
/// Keys not given here come from the standard `AWS_*` environment variables.
pub type StorageOptions = HashMap<String, String>;

/// The S3 service of `s3://` locations, as the configuration names it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Default: true when an endpoint is set (MinIO and most S3-compatible servers).
    pub path_style: Option<bool>,
}

impl S3Settings {
    /// The settings as storage options.
    pub fn storage_options(&self) -> StorageOptions {
        let mut options = StorageOptions::new();
        if let Some(endpoint) = &self.endpoint {
            options.insert("aws_endpoint".into(), endpoint.clone());
            if endpoint.starts_with("http://") {
                options.insert("aws_allow_http".into(), "true".into());
            }
        }
        let path_style = self.path_style.unwrap_or(self.endpoint.is_some());
        if path_style {
            options.insert("aws_virtual_hosted_style_request".into(), "false".into());
        }
        for (key, value) in [
            ("aws_region", &self.region),
            ("aws_access_key_id", &self.access_key_id),
            ("aws_secret_access_key", &self.secret_access_key),
        ] {
            if let Some(value) = value {
                options.insert(key.into(), value.clone());
            }
        }
        options
    }
}

/// Resolves location URLs to object stores, keeping one store per bucket (or one for the
/// local file system) so that connections are shared.
#[derive(Debug, Default)]
pub struct StoreRegistry {
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    options: StorageOptions,
}

impl StoreRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry whose `s3://` stores use `options` over the environment.
    pub fn with_options(options: StorageOptions) -> Self {
        Self {
            stores: Mutex::default(),
            options,
        }
    }

    /// The storage options of `s3://` stores.
    pub fn options(&self) -> &StorageOptions {
        &self.options
    }

    /// The store that holds `location` and the path of `location` inside it.
    pub fn resolve(&self, location: &str) -> Result<(Arc<dyn ObjectStore>, Path), StorageError> {
        let url = parse_location(location)?;
        let key = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
        let store = {
            let mut stores = self.stores.lock().expect("store registry lock poisoned");
            match stores.get(&key) {
                Some(store) => store.clone(),
                None => {
                    let store = open_store(&url, location, &self.options)?;
                    stores.insert(key, store.clone());
                    store
                }
            }
        };
        let path = match url.scheme() {
            "file" => {
                let local = url
                    .to_file_path()
                    .map_err(|_| StorageError::InvalidLocation {
                        location: location.to_string(),
                        message: "not an absolute local path".into(),
                    })?;
                Path::from_absolute_path(local).map_err(|e| StorageError::InvalidLocation {
                    location: location.to_string(),
                    message: e.to_string(),
                })?
            }
            _ => Path::from_url_path(url.path()).map_err(|e| StorageError::InvalidLocation {
                location: location.to_string(),
                message: e.to_string(),
            })?,
        };
        Ok((store, path))
    }
}

impl StoreRegistry {
    /// Writes `bytes` at `location` unless an object is there already (put-if-absent, the
    /// primitive every commit relies on); answers whether this call created it.
    pub async fn put_if_absent(
        &self,
        location: &str,
        bytes: &'static [u8],
    ) -> Result<bool, StorageError> {
        let (store, path) = self.resolve(location)?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match store
            .put_opts(&path, PutPayload::from_static(bytes), options)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(source) => Err(StorageError::Io { source }),
        }
    }

    /// Deletes the object at `location`.
    pub async fn delete(&self, location: &str) -> Result<(), StorageError> {
        let (store, path) = self.resolve(location)?;
        store
            .delete(&path)
            .await
            .map_err(|source| StorageError::Io { source })
    }
}

/// Parses a location URL; bare absolute paths are accepted as `file://` locations.
pub fn parse_location(location: &str) -> Result<Url, StorageError> {
    let parsed = if location.starts_with('/') {
        Url::from_file_path(location).map_err(|_| ())
    } else {
        Url::parse(location).map_err(|_| ())
    };
    parsed.map_err(|_| StorageError::InvalidLocation {
        location: location.to_string(),
        message: "expected a URL such as file:///path or s3://bucket/prefix".into(),
    })
}

fn open_store(
    url: &Url,
    location: &str,
    options: &StorageOptions,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match url.scheme() {
        "file" => Ok(Arc::new(metered::Metered::new(
            Arc::new(LocalFileSystem::new()),
            "file",
        ))),
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
            for (key, value) in options {
                let key = key.parse().map_err(|source| StorageError::Open {
                    location: location.to_string(),
                    source,
                })?;
                builder = builder.with_config(key, value);
            }
            let store = builder.build().map_err(|source| StorageError::Open {
                location: location.to_string(),
                source,
            })?;
            Ok(Arc::new(metered::Metered::new(Arc::new(store), "s3")))
        }
        scheme => Err(StorageError::UnsupportedScheme {
            scheme: scheme.to_string(),
            location: location.to_string(),
        }),
    }
}

/// Joins a child name onto a location URL with exactly one `/`.
pub fn join_location(base: &str, child: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        child.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::{ObjectStoreExt, PutPayload};

    #[tokio::test]
    async fn local_locations_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let location = format!("file://{}/a/b.txt", dir.path().display());
        let registry = StoreRegistry::new();
        let (store, path) = registry.resolve(&location).unwrap();
        store
            .put(&path, PutPayload::from_static(b"hello"))
            .await
            .unwrap();
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(&bytes[..], b"hello");
        assert!(dir.path().join("a/b.txt").exists());
    }

    #[test]
    fn unknown_schemes_are_refused() {
        let err = StoreRegistry::new().resolve("ftp://x/y").unwrap_err();
        assert!(matches!(err, StorageError::UnsupportedScheme { .. }));
    }

    #[test]
    fn s3_settings_become_object_store_options() {
        let options = S3Settings {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("eu-west-1".into()),
            access_key_id: Some("id".into()),
            secret_access_key: Some("secret".into()),
            path_style: None,
        }
        .storage_options();
        assert_eq!(options["aws_endpoint"], "http://127.0.0.1:9000");
        assert_eq!(options["aws_allow_http"], "true");
        assert_eq!(options["aws_virtual_hosted_style_request"], "false");
        assert_eq!(options["aws_secret_access_key"], "secret");
        // AWS itself: virtual-hosted requests, HTTPS, keys from the environment.
        let aws = S3Settings::default().storage_options();
        assert!(aws.is_empty());
        let registry = StoreRegistry::with_options(options);
        assert!(registry.resolve("s3://bucket/wh/t").is_ok());
    }

    #[test]
    fn join_has_one_slash() {
        assert_eq!(join_location("s3://b/w/", "/t"), "s3://b/w/t");
    }
}
