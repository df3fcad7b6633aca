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
        Ok(Self { runtime, config })
    }

    /// The runtime every session of the lakehouse shares.
    pub fn runtime(&self) -> Arc<RuntimeEnv> {
        self.runtime.clone()
    }

    /// The settings a new session starts from.
    pub fn session_config(&self) -> SessionConfig {
        self.config.clone()
    }
}
