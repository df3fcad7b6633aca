//! Write-audit-publish for the Iceberg tables of a pipeline run: inside
//! [`Staging::scope`], a commit to an existing table writes its metadata file as usual but
//! moves no table pointer; the run's later statements read the table as staged, other
//! sessions keep reading what was published; publishing then moves the pointer
//! of every staged table at once, in one metastore transaction, each from the metadata
//! file it named when the run first wrote it ([`Staging::swaps`], applied by the pipeline
//! run in the transaction that records its end). A run that fails publishes nothing, and its
//! staged files become orphans (`remove_orphan_files` deletes them).
//!
//! Both ways a commit reaches the catalog honour it: iceberg-rust transactions (INSERT,
//! through [`super::guard::FailFastCatalog`]) and our own commits (row-level changes,
//! refreshes, ingestion, through `IcebergFormat::commit_changes`). Creating a table is
//! not staged: DDL takes effect at once, as in most warehouses; so are writes to tables of
//! other formats.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use aichemy_metastore::PointerSwap;

tokio::task_local! {
    static STAGING: Arc<Staging>;
}

/// The tables a run changed and the metadata file each would point at.
#[derive(Debug, Default)]
pub struct Staging {
    /// By (catalog, namespace, table).
    tables: Mutex<BTreeMap<(String, String, String), Staged>>,
}

#[derive(Debug, Clone)]
struct Staged {
    /// The metadata file the table's pointer named when the run first wrote it.
    base: String,
    /// The newest metadata file the run wrote.
    location: String,
}

impl Staging {
    /// Runs `work` with its Iceberg commits staged here.
    pub async fn scope<F: Future>(self: &Arc<Self>, work: F) -> F::Output {
        STAGING.scope(self.clone(), work).await
    }

    /// The staging of the task running this, if any.
    pub(crate) fn current() -> Option<Arc<Staging>> {
        STAGING.try_with(Arc::clone).ok()
    }

    /// The metadata file a staged table names, when the run wrote it.
    pub(crate) fn location(&self, catalog: &str, namespace: &str, name: &str) -> Option<String> {
        let key = (catalog.to_string(), namespace.to_string(), name.to_string());
        self.tables
            .lock()
            .unwrap()
            .get(&key)
            .map(|s| s.location.clone())
    }

    /// Records a commit of the run: `location` staged over `base` (kept from the run's
    /// first commit to the table).
    pub(crate) fn record(
        &self,
        catalog: &str,
        namespace: &str,
        name: &str,
        base: &str,
        location: String,
    ) {
        let key = (catalog.to_string(), namespace.to_string(), name.to_string());
        self.tables
            .lock()
            .unwrap()
            .entry(key)
            .and_modify(|s| s.location = location.clone())
            .or_insert(Staged {
                base: base.to_string(),
                location,
            });
    }

    /// The staged tables, as `catalog.namespace.table`.
    pub fn tables(&self) -> Vec<String> {
        self.tables
            .lock()
            .unwrap()
            .keys()
            .map(|(c, n, t)| format!("{c}.{n}.{t}"))
            .collect()
    }

    /// The pointer swaps that publish the staged tables, each with its catalog: from the
    /// metadata file the run first wrote over to its newest.
    pub fn swaps(&self) -> Vec<(String, PointerSwap)> {
        let tables = self.tables.lock().unwrap().clone();
        tables
            .into_iter()
            .map(|((catalog, namespace, name), staged)| {
                (
                    catalog,
                    PointerSwap {
                        namespace,
                        name,
                        expected: Some(staged.base),
                        new: staged.location,
                    },
                )
            })
            .collect()
    }
}
