//! How queries run in this process: one DataFusion runtime (memory pool, spill folder,
//! Parquet metadata cache) shared by every session, and the session settings each query
//! starts from — defaults chosen with `benchmarks/tpch` plus the configuration's overrides.

use std::num::NonZeroUsize;
use std::sync::Arc;

use aichemy_config::ExecutionConfig;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::SessionConfig;

use crate::error::{ErrorCode, Result, TrinoError};

/// Memory consumers named in the error of a query that exceeds the memory limit.
const CONSUMERS_IN_ERRORS: usize = 5;

/// The runtime and base settings of every query of one lakehouse.
#[derive(Debug, Clone)]
pub struct Execution {
    runtime: Arc<RuntimeEnv>,
    config: SessionConfig,
    max_run_time: Option<std::time::Duration>,
    max_cpu_time: Option<std::time::Duration>,
}

impl Execution {
    pub fn new(settings: &ExecutionConfig) -> Result<Self> {
        let invalid = |key: &str, message: String| {
            TrinoError::new(
                ErrorCode::GENERIC_USER_ERROR,
                format!("invalid value for execution.{key}: {message}"),
            )
        };
        let mut config = SessionConfig::new().with_target_partitions(settings.threads());
        let options = config.options_mut();
        for (key, value) in &settings.datafusion {
            options
                .set(&format!("datafusion.{key}"), &value.0)
                .map_err(|e| invalid(&format!("datafusion.{key}"), e.to_string()))?;
        }
        let mut disks = DiskManagerBuilder::default();
        if let Some(path) = &settings.spill_path {
            std::fs::create_dir_all(path).map_err(|e| {
                invalid(
                    "spill_path",
                    format!("cannot create {}: {e}", path.display()),
                )
            })?;
            disks = disks.with_mode(DiskManagerMode::Directories(vec![path.clone()]));
        }
        let mut runtime = RuntimeEnvBuilder::new()
            .with_disk_manager_builder(disks)
            // Listings stay fresh: every statement sees the files other writers added.
            .with_object_list_cache_limit(0);
        if let Some(limit) = settings.memory_limit {
            let pool = FairSpillPool::new(usize::try_from(limit.0).unwrap_or(usize::MAX));
            let top = NonZeroUsize::new(CONSUMERS_IN_ERRORS).expect("non-zero");
            runtime = runtime.with_memory_pool(Arc::new(TrackConsumersPool::new(pool, top)));
        }
        let runtime = runtime
            .build_arc()
            .map_err(|e| invalid("spill_path", e.to_string()))?;
        let max_run_time = settings
            .query_max_run_time_seconds
            .map(std::time::Duration::from_secs);
        let max_cpu_time = settings
            .query_max_cpu_time_seconds
            .map(std::time::Duration::from_secs);
        Ok(Self {
            runtime,
            config,
            max_run_time,
            max_cpu_time,
        })
    }

    /// The runtime every session of the lakehouse shares.
    pub fn runtime(&self) -> Arc<RuntimeEnv> {
        self.runtime.clone()
    }

    /// How long any statement may run (`execution.query_max_run_time_seconds`).
    pub fn max_run_time(&self) -> Option<std::time::Duration> {
        self.max_run_time
    }

    /// How much CPU time any statement's operators may spend
    /// (`execution.query_max_cpu_time_seconds`).
    pub fn max_cpu_time(&self) -> Option<std::time::Duration> {
        self.max_cpu_time
    }

    /// The settings a new session starts from.
    pub fn session_config(&self) -> SessionConfig {
        self.config.clone()
    }
}

/// Stack of every thread that parses, plans and runs queries. Parsing, planning and
/// evaluating an expression recurse once per level of nesting, and an unoptimised build
/// spends tens of kilobytes of stack on each; an overflow would abort the whole process,
/// not the one query. Only the pages a thread touches take memory, so a large reserve
/// costs nothing until a deep statement uses it. With [`crate::dialect::MAX_NESTING`]
/// bounding the depth, this leaves a wide margin.
pub const QUERY_THREAD_STACK_BYTES: usize = 256 << 20;

/// A tokio runtime for queries: `threads` workers named `name` with
/// [`QUERY_THREAD_STACK_BYTES`] of stack each. The server runs its queries on one apart
/// from the runtime that answers HTTP, so that a CPU-bound query never delays the
/// protocol, the REST catalog or health checks (as Trino keeps its coordinator's HTTP
/// threads apart from its task executors).
pub fn query_runtime(threads: usize, name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .thread_stack_size(QUERY_THREAD_STACK_BYTES)
        .enable_all()
        .build()
}
