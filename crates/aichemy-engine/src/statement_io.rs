//! What a statement read and wrote, for its audit record: the columns each plan's scans
//! read (from the optimized logical plan, so after projection pushdown: what is really
//! read), the columns each write wrote, and, once the plans have run, the rows their scans
//! produced and the bytes they read from storage (from the physical plans' metrics).
//!
//! A [`crate::Session`] holds one; every plan the statement runs passes through
//! [`StatementIo::planned`] (`statement/query.rs` starts them all) and runs with the memory
//! pool of [`StatementIo::runtime`], which counts the statement's peak; the write paths
//! report their targets through [`StatementIo::wrote`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Constraints, Result as DFResult, Statistics};
use datafusion::datasource::TableType;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
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
    /// The scans tables' providers answered while the plans were planned, with the table.
    scans: Vec<(Arc<dyn ExecutionPlan>, String)>,
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
    /// Rows and bytes read, as [`IoSummary::rows_read`] and [`IoSummary::bytes_read`], by
    /// table (`catalog.schema.table`), sorted; what is read from no table (VALUES, a table
    /// function) is in the totals alone.
    pub table_reads: Vec<TableRead>,
    /// Bytes the operators spilled to disk.
    pub spilled_bytes: u64,
    /// The most memory the statement's operators held at once.
    pub peak_memory_bytes: u64,
}

/// What a statement read of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableRead {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
}

tokio::task_local! {
    /// The collector of the statement whose plan is being made physical: the tables'
    /// providers tell it which scan reads which table ([`scanning`], [`note_scan`]).
    static SCANNING: Arc<StatementIo>;
}

/// Runs `planning` (a physical planning) with the scans it makes noted in `io`.
pub(crate) async fn scanning<T>(io: Arc<StatementIo>, planning: impl Future<Output = T>) -> T {
    SCANNING.scope(io, planning).await
}

/// Notes that `scan` reads `table`, when a statement's planning is under way.
pub(crate) fn note_scan(scan: &Arc<dyn ExecutionPlan>, table: &str) {
    let _ = SCANNING.try_with(|io| {
        let mut inner = io.inner.lock().expect("not poisoned");
        let table = inner
            .aliases
            .get(table)
            .cloned()
            .unwrap_or(table.to_string());
        inner.scans.push((scan.clone(), table));
    });
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
            scans: inner.scans.clone(),
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
    let tables = ScanTables::new(&collected.scans);
    let mut reads = Reads::default();
    let mut spilled_bytes = 0;
    for plan in &collected.plans {
        scanned(plan.as_ref(), &tables, &mut reads);
        spilled_bytes += spilled(plan.as_ref());
    }
    IoSummary {
        columns_read: flatten(collected.read),
        columns_written: flatten(collected.written),
        rows_read: reads.rows,
        bytes_read: reads.bytes,
        table_reads: reads
            .by_table
            .into_iter()
            .map(|(table, (rows, bytes))| TableRead { table, rows, bytes })
            .collect(),
        spilled_bytes,
        peak_memory_bytes,
    }
}

/// Rows and bytes the scans read, in all and by table.
#[derive(Default)]
struct Reads {
    rows: u64,
    bytes: u64,
    by_table: BTreeMap<String, (u64, u64)>,
}

impl Reads {
    fn add(&mut self, table: Option<&str>, rows: u64, bytes: u64) {
        self.rows += rows;
        self.bytes += bytes;
        if let Some(table) = table {
            let read = self.by_table.entry(table.to_string()).or_default();
            read.0 += rows;
            read.1 += bytes;
        }
    }
}

/// The table each scan of the plans reads. A provider's scan (and each plan under it: a
/// Delta scan reads through a file scan of its own) is known by its address. The physical
/// optimizer may replace a scan with a copy (pushing a projection, a limit or a filter
/// into it, spreading its files over more partitions): a copy of a file scan reads the
/// same files, and another scan's copy usually describes itself as the scan did (Lance's
/// names its dataset).
struct ScanTables<'a> {
    by_address: HashMap<*const (), &'a str>,
    by_file: HashMap<String, &'a str>,
    by_text: HashMap<String, &'a str>,
}

impl<'a> ScanTables<'a> {
    fn new(scans: &'a [(Arc<dyn ExecutionPlan>, String)]) -> Self {
        let mut tables = Self {
            by_address: HashMap::new(),
            by_file: HashMap::new(),
            by_text: HashMap::new(),
        };
        for (scan, table) in scans {
            tables.note(scan, table);
        }
        tables
    }

    fn note(&mut self, plan: &Arc<dyn ExecutionPlan>, table: &'a str) {
        self.by_address
            .insert(Arc::as_ptr(plan) as *const (), table);
        // A file scan is known by its files; only another scan is described (a file
        // scan's description lists every file: long, and needed by nobody).
        match first_file(plan.as_ref()) {
            Some(file) => {
                self.by_file.insert(file, table);
            }
            None if plan.children().is_empty() => {
                self.by_text.insert(described(plan.as_ref()), table);
            }
            None => {}
        }
        for child in plan.children() {
            self.note(child, table);
        }
    }

    fn table_of(&self, scan: &Arc<dyn ExecutionPlan>) -> Option<&'a str> {
        let address = Arc::as_ptr(scan) as *const ();
        if let Some(table) = self.by_address.get(&address) {
            return Some(table);
        }
        match first_file(scan.as_ref()) {
            Some(file) => self.by_file.get(&file).copied(),
            None => self.by_text.get(&described(scan.as_ref())).copied(),
        }
    }
}

/// How a plan's top operator describes itself on one line.
fn described(plan: &dyn ExecutionPlan) -> String {
    datafusion::physical_plan::displayable(plan)
        .one_line()
        .to_string()
}

/// The first (in name order) of the files a file scan reads.
fn first_file(scan: &dyn ExecutionPlan) -> Option<String> {
    let source = scan
        .as_any()
        .downcast_ref::<datafusion::datasource::source::DataSourceExec>()?;
    let config = source
        .data_source()
        .as_any()
        .downcast_ref::<datafusion::datasource::physical_plan::FileScanConfig>()?;
    config
        .file_groups
        .iter()
        .flat_map(|group| group.files())
        .map(|file| file.object_meta.location.as_ref())
        .min()
        .map(str::to_string)
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
fn scanned(plan: &dyn ExecutionPlan, tables: &ScanTables<'_>, reads: &mut Reads) {
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
        let bytes =
            bytes_scanned(scan.as_ref()).unwrap_or_else(|| produced.bytes.load(Ordering::Relaxed));
        let rows = produced.rows.load(Ordering::Relaxed);
        reads.add(tables.table_of(scan), rows, bytes);
        return;
    }
    let children = plan.children();
    if children.is_empty() {
        // A plan run as planned (EXPLAIN ANALYZE): what the scan's metrics say.
        let rows = plan.metrics().and_then(|m| m.output_rows()).unwrap_or(0) as u64;
        reads.add(None, rows, bytes_scanned(plan).unwrap_or(0));
    }
    for child in children {
        scanned(child.as_ref(), tables, reads);
    }
}

/// A table's provider whose scans are noted as reads of the table ([`note_scan`]): every
/// relation a statement resolves is one. Everything else is the table's own, `as_any`
/// too, so code that looks into a provider finds what it looks for.
#[derive(Debug)]
pub(crate) struct NotedTable {
    inner: Arc<dyn TableProvider>,
    table: String,
}

impl NotedTable {
    pub(crate) fn new(inner: Arc<dyn TableProvider>, table: String) -> Self {
        Self { inner, table }
    }
}

#[async_trait::async_trait]
impl TableProvider for NotedTable {
    fn as_any(&self) -> &dyn std::any::Any {
        self.inner.as_any()
    }

    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.inner.get_column_default(column)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let scan = self.inner.scan(state, projection, filters, limit).await?;
        note_scan(&scan, &self.table);
        Ok(scan)
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: ScanArgs<'a>,
    ) -> DFResult<ScanResult> {
        let result = self.inner.scan_with_args(state, args).await?;
        note_scan(result.plan(), &self.table);
        Ok(result)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.inner.insert_into(state, input, insert_op).await
    }
}
