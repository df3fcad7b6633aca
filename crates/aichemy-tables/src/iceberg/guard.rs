//! Iceberg catalog calls that fail fast, and say so, while the metastore cannot be reached.
//!
//! The `iceberg-catalog-sql` crate opens its own sqlx pool from the metastore URL with a
//! fixed configuration: it takes no pool of ours, and neither its properties nor the URL
//! can set the pool's acquire timeout, sqlx's default of 30 s. While a PostgreSQL metastore
//! is down, every call of that catalog therefore waits 30 s for a connection and then fails
//! with a bare "operation failed for hitting sqlx error".
//!
//! [`FailFastCatalog`] wraps the catalog and asks the metastore's own pool (whose acquire
//! timeout is [`aichemy_metastore::POSTGRES_ACQUIRE_TIMEOUT`]) first, with one primary-key
//! lookup ([`Reachability`]). Where it cannot be reached, the call fails with an error that
//! [`unreachable_message`] recognises (and `TableError::MetastoreUnavailable` reports)
//! before the catalog is asked anything, so nothing was sent to the database and the failure
//! is certain. The alternatives were worse: timing out a catalog call as a whole could
//! abandon a commit whose `UPDATE` the database had already executed (and report a failure
//! for a commit that happened), and it would cut off a read whose metadata file is merely
//! slow to come from the object store; replacing the crate's catalog would mean owning the
//! Iceberg SQL catalog's statements, which PyIceberg and Java share.
//!
//! An outage that begins after the check, while the call runs, is handled as far as is
//! safe:
//! - a read (no change to the catalog) is watched: the check repeats every second while
//!   it runs, and once the metastore is found gone the read is abandoned — dropping it
//!   changes nothing, so this fails within a few seconds too;
//! - a write is never abandoned: it ends in its own time (at worst the crate's 30 s), and
//!   only its error, if it fails while the metastore cannot be reached, is reported as the
//!   metastore's unavailability. Whether it failed is still the crate's answer.
//!
//! The price is one round trip to PostgreSQL per catalog call. An SQLite metastore is a
//! local file: there is nothing to check, and calls go straight through. Once PostgreSQL is back, both pools reconnect by themselves.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use aichemy_metastore::Metastore;
use async_trait::async_trait;
use iceberg::io::FileIO;
use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, MetadataLocation, Namespace, NamespaceIdent, Result, TableCommit,
    TableCreation, TableIdent,
};

use super::staging::Staging;

/// How long a read runs before the metastore is checked again (and again as often while
/// it runs).
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Whether the metastore's database can be reached.
#[async_trait]
pub(crate) trait Reachability: fmt::Debug + Send + Sync {
    /// `Err` with the reason when the database cannot be reached (no connection in time,
    /// the connection lost); `Ok` otherwise, including when it refused the check itself.
    async fn check(&self) -> std::result::Result<(), String>;
}

/// The check through the metastore's own pool: the lookup of a table pointer no table has.
#[derive(Debug)]
pub(crate) struct MetastoreReachability {
    metastore: Metastore,
    catalog: String,
}

impl MetastoreReachability {
    pub(crate) fn new(metastore: Metastore, catalog: &str) -> Self {
        Self {
            metastore,
            catalog: catalog.to_string(),
        }
    }
}

#[async_trait]
impl Reachability for MetastoreReachability {
    async fn check(&self) -> std::result::Result<(), String> {
        match self.metastore.iceberg_pointer(&self.catalog, "", "").await {
            Err(e) if e.is_unavailable() => Err(e.to_string()),
            _ => Ok(()),
        }
    }
}

/// The cause an Iceberg error carries when the metastore could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Unreachable {
    message: String,
}

fn unreachable_error(message: String) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("Metastore is unavailable: {message}"),
    )
    .with_source(Unreachable { message })
}

/// The reason, when `error` (or any of its causes) is a metastore that could not be reached.
pub(crate) fn unreachable_message(error: &Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(unreachable) = current.downcast_ref::<Unreachable>() {
            return Some(unreachable.message.clone());
        }
        cause = current.source();
    }
    None
}

/// An Iceberg catalog whose calls check the metastore first (see the module's comment).
#[derive(Debug)]
pub(crate) struct FailFastCatalog {
    inner: Arc<dyn Catalog>,
    /// `None` for an SQLite metastore.
    reachability: Option<Arc<dyn Reachability>>,
    watch_every: Duration,
    /// The catalog's name and file I/O, for the commits a pipeline run stages
    /// ([`Staging`]); `None`: commits are never staged.
    staged_as: Option<(String, FileIO)>,
}

impl FailFastCatalog {
    pub(crate) fn new(
        inner: Arc<dyn Catalog>,
        reachability: Option<Arc<dyn Reachability>>,
    ) -> Self {
        Self {
            inner,
            reachability,
            watch_every: WATCH_EVERY,
            staged_as: None,
        }
    }

    /// Stages the commits made within a [`Staging`] scope, as the catalog `name`.
    pub(crate) fn staging_as(mut self, name: &str, file_io: FileIO) -> Self {
        self.staged_as = Some((name.to_string(), file_io));
        self
    }

    /// The staging of this task and this catalog's name and file I/O, when a run stages.
    fn staging(&self) -> Option<(Arc<Staging>, &str, &FileIO)> {
        let (name, file_io) = self.staged_as.as_ref()?;
        Some((Staging::current()?, name.as_str(), file_io))
    }

    /// The table as the running pipeline run staged it, if it did.
    async fn staged_table(&self, ident: &TableIdent) -> Result<Option<Table>> {
        let Some((staging, name, file_io)) = self.staging() else {
            return Ok(None);
        };
        let Some(location) = staging.location(name, &ident.namespace().join("."), ident.name())
        else {
            return Ok(None);
        };
        let metadata = TableMetadata::read_from(file_io, &location).await?;
        Ok(Some(
            Table::builder()
                .file_io(file_io.clone())
                .identifier(ident.clone())
                .metadata_location(location)
                .metadata(metadata)
                .runtime(iceberg::Runtime::try_current()?)
                .build()?,
        ))
    }

    async fn check(&self) -> Result<()> {
        match &self.reachability {
            Some(reachability) => reachability.check().await.map_err(unreachable_error),
            None => Ok(()),
        }
    }

    /// A call that changes nothing: abandoned as soon as the metastore is found gone.
    async fn read<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        let Some(reachability) = &self.reachability else {
            return call.await;
        };
        self.check().await?;
        let watch = async {
            loop {
                tokio::time::sleep(self.watch_every).await;
                if let Err(message) = reachability.check().await {
                    return message;
                }
            }
        };
        let result = tokio::select! {
            biased;
            result = call => result,
            message = watch => return Err(unreachable_error(message)),
        };
        self.explain(result).await
    }

    /// A call that may change the catalog: run to its end once started.
    async fn write<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        if self.reachability.is_none() {
            return call.await;
        }
        self.check().await?;
        let result = call.await;
        self.explain(result).await
    }

    /// An unexpected error (the crate's wording of any sqlx error) while the metastore
    /// cannot be reached is that; every other outcome is the call's own.
    async fn explain<T>(&self, result: Result<T>) -> Result<T> {
        match result {
            Err(e) if e.kind() == ErrorKind::Unexpected && unreachable_message(&e).is_none() => {
                match self.check().await {
                    Err(unreachable) => Err(unreachable),
                    Ok(()) => Err(e),
                }
            }
            other => other,
        }
    }
}

#[async_trait]
impl Catalog for FailFastCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        self.read(self.inner.list_namespaces(parent)).await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        self.write(self.inner.create_namespace(namespace, properties))
            .await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        self.read(self.inner.get_namespace(namespace)).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        self.read(self.inner.namespace_exists(namespace)).await
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        self.write(self.inner.update_namespace(namespace, properties))
            .await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.write(self.inner.drop_namespace(namespace)).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        self.read(self.inner.list_tables(namespace)).await
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> Result<Table> {
        self.write(self.inner.create_table(namespace, creation))
            .await
    }

    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        if let Some(staged) = self.staged_table(table).await? {
            return Ok(staged);
        }
        self.read(self.inner.load_table(table)).await
    }

    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        self.write(self.inner.drop_table(table)).await
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        self.write(self.inner.purge_table(table)).await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        self.read(self.inner.table_exists(table)).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        self.write(self.inner.rename_table(src, dest)).await
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        self.write(self.inner.register_table(table, metadata_location))
            .await
    }

    async fn update_table(&self, commit: TableCommit) -> Result<Table> {
        let Some((staging, name, _)) = self.staging() else {
            return self.write(self.inner.update_table(commit)).await;
        };
        // As the SQL catalog commits, but the pointer stays: the run's staging keeps it.
        let ident = commit.identifier().clone();
        let current = self.load_table(&ident).await?;
        let base = current.metadata_location_result()?.to_string();
        let table = commit.apply(current)?;
        let location = MetadataLocation::from_str(table.metadata_location_result()?)?;
        table
            .metadata()
            .write_to(table.file_io(), &location)
            .await?;
        staging.record(
            name,
            &ident.namespace().join("."),
            ident.name(),
            &base,
            location.to_string(),
        );
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::TableError;

    /// What the fake catalog's calls do.
    #[derive(Debug, Clone, Copy)]
    enum Behaviour {
        Hang,
        SucceedAfter(Duration),
        Fail(ErrorKind),
    }

    /// A catalog with one table call of each kind: `table_exists` reads, `drop_table`
    /// writes.
    #[derive(Debug)]
    struct Fake {
        behaviour: Behaviour,
        started: AtomicUsize,
        finished: AtomicUsize,
    }

    impl Fake {
        fn new(behaviour: Behaviour) -> Arc<Self> {
            Arc::new(Self {
                behaviour,
                started: AtomicUsize::new(0),
                finished: AtomicUsize::new(0),
            })
        }

        async fn run(&self) -> Result<()> {
            self.started.fetch_add(1, Ordering::SeqCst);
            match self.behaviour {
                Behaviour::Hang => std::future::pending().await,
                Behaviour::SucceedAfter(wait) => tokio::time::sleep(wait).await,
                Behaviour::Fail(kind) => return Err(Error::new(kind, "the call failed")),
            }
            self.finished.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[async_trait]
    impl Catalog for Fake {
        async fn list_namespaces(&self, _: Option<&NamespaceIdent>) -> Result<Vec<NamespaceIdent>> {
            unimplemented!()
        }
        async fn create_namespace(
            &self,
            _: &NamespaceIdent,
            _: HashMap<String, String>,
        ) -> Result<Namespace> {
            unimplemented!()
        }
        async fn get_namespace(&self, _: &NamespaceIdent) -> Result<Namespace> {
            unimplemented!()
        }
        async fn namespace_exists(&self, _: &NamespaceIdent) -> Result<bool> {
            unimplemented!()
        }
        async fn update_namespace(
            &self,
            _: &NamespaceIdent,
            _: HashMap<String, String>,
        ) -> Result<()> {
            unimplemented!()
        }
        async fn drop_namespace(&self, _: &NamespaceIdent) -> Result<()> {
            unimplemented!()
        }
        async fn list_tables(&self, _: &NamespaceIdent) -> Result<Vec<TableIdent>> {
            unimplemented!()
        }
        async fn create_table(&self, _: &NamespaceIdent, _: TableCreation) -> Result<Table> {
            unimplemented!()
        }
        async fn load_table(&self, _: &TableIdent) -> Result<Table> {
            unimplemented!()
        }
        async fn drop_table(&self, _: &TableIdent) -> Result<()> {
            self.run().await
        }
        async fn purge_table(&self, _: &TableIdent) -> Result<()> {
            unimplemented!()
        }
        async fn table_exists(&self, _: &TableIdent) -> Result<bool> {
            self.run().await.map(|()| true)
        }
        async fn rename_table(&self, _: &TableIdent, _: &TableIdent) -> Result<()> {
            unimplemented!()
        }
        async fn register_table(&self, _: &TableIdent, _: String) -> Result<Table> {
            unimplemented!()
        }
        async fn update_table(&self, _: TableCommit) -> Result<Table> {
            unimplemented!()
        }
    }

    /// A metastore that answers its first `answered` checks and none after.
    #[derive(Debug)]
    struct GoesAway {
        answered: usize,
        checks: AtomicUsize,
    }

    #[async_trait]
    impl Reachability for GoesAway {
        async fn check(&self) -> std::result::Result<(), String> {
            if self.checks.fetch_add(1, Ordering::SeqCst) < self.answered {
                Ok(())
            } else {
                Err("pool timed out while waiting for an open connection".into())
            }
        }
    }

    fn guarded(inner: Arc<Fake>, answered: usize) -> FailFastCatalog {
        let reachability = Arc::new(GoesAway {
            answered,
            checks: AtomicUsize::new(0),
        });
        FailFastCatalog {
            inner,
            reachability: Some(reachability),
            watch_every: Duration::from_millis(20),
            staged_as: None,
        }
    }

    fn table() -> TableIdent {
        TableIdent::new(NamespaceIdent::new("s".into()), "t".into())
    }

    /// Fails the test rather than hang it.
    async fn soon<T>(call: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("the call should end soon")
    }

    #[tokio::test]
    async fn a_call_fails_before_the_catalog_is_asked_when_the_metastore_is_down() {
        let fake = Fake::new(Behaviour::Hang);
        let catalog = guarded(fake.clone(), 0);
        for error in [
            soon(catalog.table_exists(&table())).await.unwrap_err(),
            soon(catalog.drop_table(&table())).await.unwrap_err(),
        ] {
            assert_eq!(
                unreachable_message(&error).as_deref(),
                Some("pool timed out while waiting for an open connection")
            );
        }
        assert_eq!(fake.started.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_read_is_abandoned_when_the_metastore_goes_away_during_it() {
        let fake = Fake::new(Behaviour::Hang);
        let catalog = guarded(fake.clone(), 3);
        let error = soon(catalog.table_exists(&table())).await.unwrap_err();
        assert!(unreachable_message(&error).is_some(), "{error}");
        assert_eq!(fake.started.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_slow_read_goes_on_while_the_metastore_answers() {
        let fake = Fake::new(Behaviour::SucceedAfter(Duration::from_millis(200)));
        let catalog = guarded(fake, usize::MAX);
        assert!(soon(catalog.table_exists(&table())).await.unwrap());
    }

    #[tokio::test]
    async fn a_started_write_runs_to_its_end_though_the_metastore_goes_away() {
        let fake = Fake::new(Behaviour::SucceedAfter(Duration::from_millis(200)));
        let catalog = guarded(fake.clone(), 1);
        soon(catalog.drop_table(&table())).await.unwrap();
        assert_eq!(fake.finished.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unexpected_error_while_the_metastore_is_down_is_its_unavailability() {
        let catalog = guarded(Fake::new(Behaviour::Fail(ErrorKind::Unexpected)), 1);
        let error = soon(catalog.drop_table(&table())).await.unwrap_err();
        assert!(unreachable_message(&error).is_some(), "{error}");
        // A lost race stays one, so that the INSERT sink retries it.
        let catalog = guarded(
            Fake::new(Behaviour::Fail(ErrorKind::CatalogCommitConflicts)),
            1,
        );
        let error = soon(catalog.drop_table(&table())).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::CatalogCommitConflicts);
        assert!(unreachable_message(&error).is_none());
        // And an unexpected error while the metastore answers is the call's own.
        let catalog = guarded(Fake::new(Behaviour::Fail(ErrorKind::Unexpected)), 2);
        let error = soon(catalog.drop_table(&table())).await.unwrap_err();
        assert_eq!(error.message(), "the call failed");
    }

    #[tokio::test]
    async fn without_a_check_calls_go_straight_through() {
        let fake = Fake::new(Behaviour::SucceedAfter(Duration::from_millis(50)));
        let catalog = FailFastCatalog::new(fake.clone(), None);
        assert!(soon(catalog.table_exists(&table())).await.unwrap());
        soon(catalog.drop_table(&table())).await.unwrap();
        assert_eq!(fake.finished.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_engine_sees_an_unavailable_metastore() {
        let error = unreachable_error("connection refused".into());
        match super::super::format_error(error) {
            TableError::MetastoreUnavailable { message } => {
                assert_eq!(message, "connection refused")
            }
            other => panic!("expected MetastoreUnavailable, got {other:?}"),
        }
    }
}
