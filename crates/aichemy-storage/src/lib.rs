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
use object_store::ObjectStore;
use url::Url;

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
}

/// Resolves location URLs to object stores, keeping one store per bucket (or one for the
/// local file system) so that connections are shared.
#[derive(Debug, Default)]
pub struct StoreRegistry {
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl StoreRegistry {
    pub fn new() -> Self {
        Self::default()
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
                    let store = open_store(&url, location)?;
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

fn open_store(url: &Url, location: &str) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match url.scheme() {
        "file" => Ok(Arc::new(LocalFileSystem::new())),
        "s3" | "s3a" => {
            let store = AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(|source| StorageError::Open {
                    location: location.to_string(),
                    source,
                })?;
            Ok(Arc::new(store))
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
    fn join_has_one_slash() {
        assert_eq!(join_location("s3://b/w/", "/t"), "s3://b/w/t");
    }
}
