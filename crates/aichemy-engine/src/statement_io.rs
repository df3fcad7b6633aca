//! What a statement read and wrote, for its audit record: the columns each plan's scans
//! read (from the optimized logical plan, so after projection pushdown: what is really
//! read), the columns each write wrote, and, once the plans have run, the rows their scans
//! produced and the bytes they read from storage (from the physical plans' metrics).
//!
//! A [`crate::Session`] holds one; every plan the statement runs passes through
//! [`StatementIo::planned`] (`statement/query.rs` starts them all) and runs with the memory
//! pool of [`StatementIo::runtime`], which counts the statement's peak; the write paths
//! report their targets through [`StatementIo::wrote`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Result as DFResult;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;

/// The collector of one statement (or of a shell's statements until [`StatementIo::take`]).
#[derive(Debug, Default)]
pub struct StatementIo {
    inner: Mutex<Collected>,
    /// The statement's share of the memory pool, once a plan runs.
    memory: OnceLock<Arc<QueryMemory>>,
}

/// The shared memory pool as one statement uses it: every reservation goes to the shared
/// pool, and the statement's own use and its peak are counted on the way.
#[derive(Debug)]
struct QueryMemory {
    pool: Arc<dyn MemoryPool>,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl QueryMemory {
    fn grew(&self, additional: usize) {
        let used = self.used.fetch_add(additional, Ordering::Relaxed) + additional;
        self.peak.fetch_max(used, Ordering::Relaxed);
    }
}

impl MemoryPool for QueryMemory {
    fn register(&self, consumer: &MemoryConsumer) {
        self.pool.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.pool.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.pool.grow(reservation, additional);
        self.grew(additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.pool.shrink(reservation, shrink);
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(shrink))
            });
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DFResult<()> {
        self.pool.try_grow(reservation, additional)?;
        self.grew(additional);
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.pool.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.pool.memory_limit()
    }
}

#[derive(Debug, Default)]
struct Collected {
    read: BTreeMap<String, BTreeSet<String>>,
    written: BTreeMap<String, BTreeSet<String>>,
    plans: Vec<Arc<dyn ExecutionPlan>>,
    /// Names a plan reads a table by (a row-level change's `$rows`), with the table's.
    aliases: BTreeMap<String, String>,
}

/// What a statement read and wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoSummary {
    /// `catalog.schema.table.column`, sorted.
    pub columns_read: Vec<String>,
    pub columns_written: Vec<String>,
    /// Rows the scans produced (after the filters pushed into them).
    pub rows_read: u64,
    /// Bytes the scans read from files where they report it (Parquet's `bytes_scanned`),
    /// else the bytes of the columns they produced.
    pub bytes_read: u64,
    /// Bytes the operators spilled to disk.
    pub spilled_bytes: u64,
    /// The most memory the statement's operators held at once.
    pub peak_memory_bytes: u64,
}

impl StatementIo {
    /// `shared` with its memory pool counting this statement's use (its peak is
    /// [`IoSummary::peak_memory_bytes`]).
    pub(crate) fn runtime(&self, shared: &Arc<RuntimeEnv>) -> Arc<RuntimeEnv> {
        let memory = self.memory.get_or_init(|| {
            Arc::new(QueryMemory {
                pool: shared.memory_pool.clone(),
                used: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            })
        });
        Arc::new(RuntimeEnv {
            memory_pool: memory.clone(),
            ..shared.as_ref().clone()
        })
    }

    /// Notes what an optimized plan reads (`catalog`/`schema` complete partial names) and
    /// keeps its physical plan for the metrics of its run. An `EXPLAIN` reads nothing.
    pub(crate) fn planned(
        &self,
        optimized: &LogicalPlan,
        physical: &Arc<dyn ExecutionPlan>,
        catalog: Option<&str>,
        schema: Option<&str>,
    ) {
        if matches!(optimized, LogicalPlan::Explain(_)) {
            return;
        }
        let mut scans = Vec::new();
        let _ = optimized.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let name = match (&scan.table_name, catalog, schema) {
                    (datafusion::sql::TableReference::Bare { table }, Some(c), Some(s)) => {
                        format!("{c}.{s}.{table}")
                    }
                    (datafusion::sql::TableReference::Partial { schema, table }, Some(c), _) => {
                        format!("{c}.{schema}.{table}")
                    }
                    (reference, _, _) => reference.to_string(),
                };
                let columns: Vec<String> = scan
                    .projected_schema
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                scans.push((name, columns));
            }
            Ok(TreeNodeRecursion::Continue)
        });
        let mut inner = self.inner.lock().expect("not poisoned");
        for (name, columns) in scans {
            let name = inner.aliases.get(&name).cloned().unwrap_or(name);
            inner.read.entry(name).or_default().extend(columns);
        }
        inner.plans.push(physical.clone());
    }

    /// Reads of `alias` are reads of `table` (both `catalog.schema.table`).
    pub(crate) fn alias(&self, alias: String, table: String) {
        let mut inner = self.inner.lock().expect("not poisoned");
        inner.aliases.insert(alias, table);
    }

    /// Notes the columns a write wrote to `table` (`catalog.schema.table`).
    pub(crate) fn wrote(&self, table: String, columns: impl IntoIterator<Item = String>) {
        let mut inner = self.inner.lock().expect("not poisoned");
        inner.written.entry(table).or_default().extend(columns);
    }

    /// Forgets what earlier statements collected: the next one starts from nothing.
    pub(crate) fn restart(&self) {
        *self.inner.lock().expect("not poisoned") = Collected::default();
        if let Some(memory) = self.memory.get() {
            let used = memory.used.load(Ordering::Relaxed);
            memory.peak.store(used, Ordering::Relaxed);
        }
    }

    /// What was collected so far, kept (`EXPLAIN ANALYZE` shows it; the audit takes it).
    pub(crate) fn peek(&self) -> IoSummary {
        let inner = self.inner.lock().expect("not poisoned");
        let collected = Collected {
            read: inner.read.clone(),
            written: inner.written.clone(),
            plans: inner.plans.clone(),
            aliases: Default::default(),
        };
        drop(inner);
        let peak = self
            .memory
            .get()
            .map_or(0, |m| m.peak.load(Ordering::Relaxed) as u64);
        summary(collected, peak)
    }

    /// What was collected, emptied for the next statement.
    pub fn take(&self) -> IoSummary {
        let collected = std::mem::take(&mut *self.inner.lock().expect("not poisoned"));
        let peak = self
            .memory
            .get()
            .map_or(0, |m| m.peak.swap(0, Ordering::Relaxed) as u64);
        summary(collected, peak)
    }
}

/// What `collected` says, with the statement's peak memory.
fn summary(collected: Collected, peak_memory_bytes: u64) -> IoSummary {
    let flatten = |tables: BTreeMap<String, BTreeSet<String>>| {
        tables
            .into_iter()
            .flat_map(|(table, columns)| {
                columns
                    .into_iter()
                    .filter(|c| !c.starts_with('$'))
                    .map(move |c| format!("{table}.{c}"))
            })
            .collect()
    };
    let (mut rows_read, mut bytes_read, mut spilled_bytes) = (0, 0, 0);
    for plan in &collected.plans {
        scanned(plan.as_ref(), &mut rows_read, &mut bytes_read);
        spilled_bytes += spilled(plan.as_ref());
    }
    IoSummary {
        columns_read: flatten(collected.read),
        columns_written: flatten(collected.written),
        rows_read,
        bytes_read,
        spilled_bytes,
        peak_memory_bytes,
    }
}

/// The bytes the operators of `plan` spilled.
fn spilled(plan: &dyn ExecutionPlan) -> u64 {
    let own = plan
        .metrics()
        .and_then(|m| m.spilled_bytes())
        .map_or(0, |b| b as u64);
    own + plan
        .children()
        .into_iter()
        .map(|child| spilled(child.as_ref()))
        .sum::<u64>()
}

/// Adds the rows the scans (leaves) of `plan` produced and the bytes they read: those the
/// scan reports reading from files (Parquet's `bytes_scanned`), else the bytes of the
/// columns it produced.
fn scanned(plan: &dyn ExecutionPlan, rows: &mut u64, bytes: &mut u64) {
    let bytes_scanned = |scan: &dyn ExecutionPlan| {
        let metrics = scan.metrics()?;
        metrics
            .sum_by_name("bytes_scanned")
            .map(|v| v.as_usize() as u64)
    };
    if let Some((scan, produced)) = plan
        .as_any()
        .downcast_ref::<crate::stop::StoppableExec>()
        .and_then(|exec| exec.scan())
    {
        *rows += produced.rows.load(Ordering::Relaxed);
        *bytes +=
            bytes_scanned(scan.as_ref()).unwrap_or_else(|| produced.bytes.load(Ordering::Relaxed));
        return;
    }
    let children = plan.children();
    if children.is_empty() {
        // A plan run as planned (EXPLAIN ANALYZE): what the scan's metrics say.
        if let Some(metrics) = plan.metrics() {
            *rows += metrics.output_rows().unwrap_or(0) as u64;
        }
        *bytes += bytes_scanned(plan).unwrap_or(0);
    }
    for child in children {
        scanned(child.as_ref(), rows, bytes);
    }
}
