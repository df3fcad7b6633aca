//! Stopping a query that has ended for its client: cancelled, past its time limit,
//! abandoned, or cut off by shutdown.
//!
//! Aborting the task that reads a query's results is not enough: an operator that loops
//! over its input without ever waiting — an aggregate over a cross join, a nested-loop
//! join whose filter keeps nothing — holds its thread for minutes inside one poll, and an
//! abort takes effect only when the task next waits. So every query runs its physical plan
//! with a [`StopSignal`] threaded through it ([`stoppable`]): between every two operators
//! a [`StoppableExec`] checks the signal on each batch and spends the task's cooperative
//! budget, so that the loop above it waits now and then (letting short queries run on the
//! same threads) and ends with the query's error once the signal is given; the filter of a
//! nested-loop join, which loops over the build side for each probe batch, checks it too.
//! The signal carries the query's deadline, so a time limit ends a query even while its
//! thread never yields to a timer.
//!
//! The same checks count the query's CPU time, for Trino's `query_max_cpu_time`: the
//! outermost [`StoppableExec`] on a thread's stack reads the thread's CPU clock around
//! each poll of its input, so the work of every operator below it (on the thread that
//! reads the results and on the tasks a repartition spawns) is counted once. Planning and
//! the reads a scan hands to blocking threads are not counted.

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::analyze::AnalyzeExec;
use datafusion::physical_plan::coop::make_cooperative;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::joins::NestedLoopJoinExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, Statistics,
};
use futures::{Stream, StreamExt};

use crate::error::TrinoError;

/// Tells a running query to stop, from any thread; the first reason given is the
/// query's error.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<Signal>);

#[derive(Debug, Default)]
struct Signal {
    stopped: AtomicBool,
    reason: Mutex<Option<TrinoError>>,
    limits: Mutex<Limits>,
    /// CPU time the statement's operators have spent, in nanoseconds.
    cpu_nanos: AtomicU64,
}

/// The limits of the running statement, each with the error that ends it.
#[derive(Debug, Default)]
struct Limits {
    deadline: Option<(Instant, TrinoError)>,
    cpu: Option<(Duration, TrinoError)>,
}

impl StopSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the query with `error` (unless it was stopped already).
    pub fn stop(&self, error: TrinoError) {
        let mut reason = self.0.reason.lock().expect("not poisoned");
        if reason.is_none() {
            *reason = Some(error);
        }
        self.0.stopped.store(true, Ordering::SeqCst);
    }

    /// Stops the statement with `error` once `deadline` passes; `None` lifts the deadline
    /// (a session sets one per statement).
    pub fn set_deadline(&self, deadline: Option<(Instant, TrinoError)>) {
        self.0.limits.lock().expect("not poisoned").deadline = deadline;
    }

    /// Stops the statement with `error` once its operators have spent `limit` of CPU time;
    /// `None` lifts the limit. Either way the statement's CPU time counts from zero again.
    pub fn set_cpu_limit(&self, limit: Option<(Duration, TrinoError)>) {
        let mut limits = self.0.limits.lock().expect("not poisoned");
        self.0.cpu_nanos.store(0, Ordering::Relaxed);
        limits.cpu = limit;
    }

    /// The CPU time the statement's operators have spent so far (its query history
    /// records it; `query_max_cpu_time` bounds it).
    pub fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.0.cpu_nanos.load(Ordering::Relaxed))
    }

    fn add_cpu_time(&self, spent: Duration) {
        let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        self.0.cpu_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// `Err` with the query's error once it was told to stop or a limit passed.
    pub fn check(&self) -> Result<()> {
        let error = if self.0.stopped.load(Ordering::Relaxed) {
            self.0.reason.lock().expect("not poisoned").clone()
        } else {
            let limits = self.0.limits.lock().expect("not poisoned");
            match (&limits.deadline, &limits.cpu) {
                (Some((at, error)), _) if Instant::now() >= *at => Some(error.clone()),
                (_, Some((limit, error))) if self.cpu_time() > *limit => Some(error.clone()),
                _ => return Ok(()),
            }
        };
        Err(DataFusionError::External(Box::new(error.unwrap_or_else(
            || TrinoError::new(crate::ErrorCode::USER_CANCELED, "Query was canceled"),
        ))))
    }
}

/// `plan` with the signal checked between every two operators and in nested-loop join
/// filters. A node the plan reaches twice (a shared aggregate) stays one node. EXPLAIN
/// ANALYZE runs as planned, so that its text shows the optimizer's plan.
pub fn stoppable(
    plan: Arc<dyn ExecutionPlan>,
    signal: &StopSignal,
) -> Result<Arc<dyn ExecutionPlan>> {
    if plan.as_any().is::<AnalyzeExec>() {
        return Ok(plan);
    }
    let mut done = HashMap::new();
    let inner = with_checks(plan, signal, &mut done)?;
    Ok(Arc::new(StoppableExec::new(inner, signal.clone())))
}

fn with_checks(
    plan: Arc<dyn ExecutionPlan>,
    signal: &StopSignal,
    done: &mut HashMap<*const (), Arc<dyn ExecutionPlan>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let key = Arc::as_ptr(&plan) as *const ();
    if let Some(rewritten) = done.get(&key) {
        return Ok(rewritten.clone());
    }
    let children = plan
        .children()
        .into_iter()
        .map(|child| {
            let child = with_checks(child.clone(), signal, done)?;
            Ok(Arc::new(StoppableExec::new(child, signal.clone())) as Arc<dyn ExecutionPlan>)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rewritten = if children.is_empty() {
        plan.clone()
    } else {
        plan.clone().with_new_children(children)?
    };
    if let Some(join) = rewritten.as_any().downcast_ref::<NestedLoopJoinExec>() {
        if let Some(filter) = join.filter() {
            let checked = JoinFilter::new(
                Arc::new(StoppableExpr {
                    inner: filter.expression().clone(),
                    signal: signal.clone(),
                }),
                filter.column_indices().to_vec(),
                filter.schema().clone(),
            );
            rewritten = Arc::new(NestedLoopJoinExec::try_new(
                join.left().clone(),
                join.right().clone(),
                Some(checked),
                join.join_type(),
                join.projection()
                    .as_ref()
                    .map(|p| p.iter().copied().collect()),
            )?);
        }
    }
    done.insert(key, rewritten.clone());
    Ok(rewritten)
}

/// Passes its input's batches on, checking the stop signal before each and spending the
/// task's cooperative budget. Above a scan (a leaf), it also counts the rows and bytes the
/// scan produced, for the statement's audit (not every scan keeps metrics).
#[derive(Debug)]
pub struct StoppableExec {
    input: Arc<dyn ExecutionPlan>,
    signal: StopSignal,
    produced: Option<Arc<Produced>>,
}

/// The rows a scan produced and the bytes their columns hold in memory.
#[derive(Debug, Default)]
pub(crate) struct Produced {
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
}

impl StoppableExec {
    fn new(input: Arc<dyn ExecutionPlan>, signal: StopSignal) -> Self {
        let produced = input.children().is_empty().then(Default::default);
        Self {
            input,
            signal,
            produced,
        }
    }

    /// The scan below and what it produced, when this is above a scan.
    pub(crate) fn scan(&self) -> Option<(&Arc<dyn ExecutionPlan>, &Produced)> {
        self.produced.as_deref().map(|p| (&self.input, p))
    }
}

impl DisplayAs for StoppableExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoppableExec")
    }
}

impl ExecutionPlan for StoppableExec {
    fn name(&self) -> &str {
        "StoppableExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "StoppableExec takes one input".to_string(),
            ));
        }
        let mut exec = Self::new(children.swap_remove(0), self.signal.clone());
        if let (Some(_), Some(counted)) = (&exec.produced, &self.produced) {
            exec.produced = Some(counted.clone());
        }
        Ok(Arc::new(exec))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.signal.check()?;
        let input = self.input.execute(partition, context)?;
        Ok(make_cooperative(Box::pin(StoppableStream {
            input,
            signal: self.signal.clone(),
            produced: self.produced.clone(),
        })))
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Statistics> {
        self.input.partition_statistics(partition)
    }
}

struct StoppableStream {
    input: SendableRecordBatchStream,
    signal: StopSignal,
    produced: Option<Arc<Produced>>,
}

impl Stream for StoppableStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Err(e) = self.signal.check() {
            return Poll::Ready(Some(Err(e)));
        }
        let poll = self.poll_input(cx);
        if let (Poll::Ready(Some(Ok(batch))), Some(produced)) = (&poll, &self.produced) {
            produced
                .rows
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            let bytes = batch.get_array_memory_size() as u64;
            produced.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        poll
    }
}

impl StoppableStream {
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<RecordBatch>>> {
        let Some(_outermost) = Measuring::start() else {
            return self.input.poll_next_unpin(cx);
        };
        let before = thread_cpu_time();
        let poll = self.input.poll_next_unpin(cx);
        if let (Some(before), Some(after)) = (before, thread_cpu_time()) {
            self.signal.add_cpu_time(after.saturating_sub(before));
        }
        poll
    }
}

thread_local! {
    /// Whether a [`StoppableStream`] further up this thread's stack is counting CPU time.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as counting CPU time while it lives (also when the poll panics).
struct Measuring;

impl Measuring {
    /// `None` when an outer stream on this thread already counts.
    fn start() -> Option<Self> {
        (!MEASURING.replace(true)).then_some(Measuring)
    }
}

impl Drop for Measuring {
    fn drop(&mut self) {
        MEASURING.set(false);
    }
}

/// The CPU time this thread has used.
fn thread_cpu_time() -> Option<Duration> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    Some(Duration::new(
        u64::try_from(now.tv_sec()).ok()?,
        u32::try_from(now.tv_nsec()).ok()?,
    ))
}

impl RecordBatchStream for StoppableStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}

/// A join filter that fails with the query's error once it was told to stop.
#[derive(Debug)]
struct StoppableExpr {
    inner: Arc<dyn PhysicalExpr>,
    signal: StopSignal,
}

impl fmt::Display for StoppableExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl PartialEq for StoppableExpr {
    fn eq(&self, other: &Self) -> bool {
        self.inner.eq(&other.inner)
    }
}

impl Eq for StoppableExpr {}

impl Hash for StoppableExpr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state)
    }
}

impl PhysicalExpr for StoppableExpr {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.inner.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.inner.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        self.signal.check()?;
        self.inner.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.inner]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(Self {
            inner: children.swap_remove(0),
            signal: self.signal.clone(),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}
