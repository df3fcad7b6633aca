//! Iceberg file I/O over `object_store`, so Iceberg tables live wherever the warehouse
//! does (`file://`, `s3://`) through the same stores as every other format.

use std::ops::Range;
use std::sync::Arc;

use aichemy_storage::object_store::buffered::BufWriter;
use aichemy_storage::object_store::{self, ObjectStore, ObjectStoreExt, PutPayload};
use aichemy_storage::StoreRegistry;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use iceberg::io::{
    FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig,
    StorageFactory,
};
use iceberg::{Error, ErrorKind};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::LocationPolicy;

/// Builds [`ObjectStoreStorage`] for iceberg's `FileIO`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ObjectStoreStorageFactory {
    #[serde(skip)]
    registry: Arc<StoreRegistry>,
    #[serde(skip)]
    guard: Option<LocationPolicy>,
}

impl ObjectStoreStorageFactory {
    pub fn new(registry: Arc<StoreRegistry>) -> Self {
        Self {
            registry,
            guard: None,
        }
    }

    /// Refuses to write or delete any file outside `policy`'s places, or reached through
    /// a symbolic link, right before doing so.
    pub fn guarded_by(mut self, policy: LocationPolicy) -> Self {
        self.guard = Some(policy);
        self
    }
}

#[typetag::serde]
impl StorageFactory for ObjectStoreStorageFactory {
    fn build(&self, _config: &StorageConfig) -> iceberg::Result<Arc<dyn Storage>> {
        Ok(Arc::new(ObjectStoreStorage {
            registry: self.registry.clone(),
            guard: self.guard.clone(),
        }))
    }
}

/// Iceberg `Storage` whose paths are location URLs resolved by a [`StoreRegistry`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ObjectStoreStorage {
    #[serde(skip)]
    registry: Arc<StoreRegistry>,
    #[serde(skip)]
    guard: Option<LocationPolicy>,
}

fn io_error(path: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("storage error on '{path}': {e}"),
    )
}

impl ObjectStoreStorage {
    fn resolve(
        &self,
        path: &str,
    ) -> iceberg::Result<(Arc<dyn ObjectStore>, object_store::path::Path)> {
        self.registry
            .resolve(path)
            .map_err(|e| Error::new(ErrorKind::DataInvalid, e.to_string()))
    }

    /// The store and path of a file about to be written or deleted, when the guard allows.
    fn resolve_for_change(
        &self,
        path: &str,
    ) -> iceberg::Result<(Arc<dyn ObjectStore>, object_store::path::Path)> {
        if let Some(guard) = &self.guard {
            guard
                .check(path)
                .map_err(|message| Error::new(ErrorKind::DataInvalid, message))?;
        }
        self.resolve(path)
    }
}

#[typetag::serde]
#[async_trait]
impl Storage for ObjectStoreStorage {
    async fn exists(&self, path: &str) -> iceberg::Result<bool> {
        let (store, location) = self.resolve(path)?;
        match store.head(&location).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(io_error(path, e)),
        }
    }

    async fn metadata(&self, path: &str) -> iceberg::Result<FileMetadata> {
        let (store, location) = self.resolve(path)?;
        let meta = store.head(&location).await.map_err(|e| io_error(path, e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> iceberg::Result<Bytes> {
        let (store, location) = self.resolve(path)?;
        let result = store.get(&location).await.map_err(|e| io_error(path, e))?;
        result.bytes().await.map_err(|e| io_error(path, e))
    }

    async fn reader(&self, path: &str) -> iceberg::Result<Box<dyn FileRead>> {
        let (store, location) = self.resolve(path)?;
        Ok(Box::new(ObjectReader {
            store,
            location,
            path: path.to_string(),
        }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> iceberg::Result<()> {
        let (store, location) = self.resolve_for_change(path)?;
        store
            .put(&location, PutPayload::from_bytes(bs))
            .await
            .map_err(|e| io_error(path, e))?;
        Ok(())
    }

    async fn writer(&self, path: &str) -> iceberg::Result<Box<dyn FileWrite>> {
        let (store, location) = self.resolve_for_change(path)?;
        Ok(Box::new(ObjectWriter {
            writer: BufWriter::new(store, location),
            path: path.to_string(),
        }))
    }

    async fn delete(&self, path: &str) -> iceberg::Result<()> {
        let (store, location) = self.resolve_for_change(path)?;
        match store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error(path, e)),
        }
    }

    async fn delete_prefix(&self, path: &str) -> iceberg::Result<()> {
        let (store, location) = self.resolve_for_change(path)?;
        let listed = store
            .list(Some(&location))
            .map_ok(|meta| meta.location)
            .boxed();
        store
            .delete_stream(listed)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| io_error(path, e))?;
        Ok(())
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> iceberg::Result<()> {
        while let Some(path) = paths.next().await {
            self.delete(&path).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> iceberg::Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> iceberg::Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    location: object_store::path::Path,
    path: String,
}

#[async_trait]
impl FileRead for ObjectReader {
    async fn read(&self, range: Range<u64>) -> iceberg::Result<Bytes> {
        self.store
            .get_range(&self.location, range)
            .await
            .map_err(|e| io_error(&self.path, e))
    }
}

struct ObjectWriter {
    writer: BufWriter,
    path: String,
}

#[async_trait]
impl FileWrite for ObjectWriter {
    async fn write(&mut self, bs: Bytes) -> iceberg::Result<()> {
        self.writer
            .write_all(&bs)
            .await
            .map_err(|e| io_error(&self.path, e))
    }

    async fn close(&mut self) -> iceberg::Result<()> {
        self.writer
            .shutdown()
            .await
            .map_err(|e| io_error(&self.path, e))
    }
}
