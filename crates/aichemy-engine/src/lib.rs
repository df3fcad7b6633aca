//! The SQL engine of AIchemy: Trino SQL on Apache DataFusion over the lakehouse catalogs.
//!
//! ```text
//! SQL text ──statement: family from the first words──▶ that family's one parser
//!    ├─ CREATE / DROP CATALOG ──statement::catalogs──▶ the lakehouse's catalogs
//!    ├─ PREPARE / EXECUTE / SET SESSION ──statement::session_state──▶ the session's state
//!    ├─ USE / SHOW / DESCRIBE ──statement::show──▶ metadata answers (catalog::metadata)
//!    ├─ CREATE / DROP / ALTER ──statement::ddl───▶ aichemy-tables formats, metastore views
//!    └─ SELECT / INSERT / EXPLAIN ──dialect──▶ sqlparser AST (Trino types, lambdas lowered)
//!         ──statement::query──▶ planner: relations resolved by catalog::lakehouse
//!         ──▶ DataFusion plan ──optimizer──▶ stop ──▶ Arrow batches
//! ```
//! Every error leaves as a [`TrinoError`] with Trino's name, code and wording.
#![forbid(unsafe_code)]

mod access;
pub mod audit;
mod bag_set_operations;
mod catalog;
pub mod dialect;
pub mod error;
pub mod execution;
pub mod format;
mod functions;
mod hidden_path;
pub mod ingestion;
mod inline_functions;
pub mod lineage;
mod materialized;
mod optimizer;
pub mod pipeline;
mod planner;
mod session;
mod statement;
pub mod statement_io;
pub mod stop;
mod trino_dialect;
pub mod types;
mod unnest;
mod vector_search;

/// The version `SELECT version()` and the server's `/v1/info` report.
pub const VERSION: &str = concat!("aichemy-", env!("CARGO_PKG_VERSION"));

pub use access::Access;
pub use aichemy_federation::TRINO_TYPE_KEY;
pub use catalog::lakehouse::{
    CatalogEntry, ExternalCatalog, Lakehouse, PoolUse, QualifiedName, QueryLog, QueryRecord,
    BUILTIN_CATALOGS,
};
pub use error::{ErrorCode, ErrorLocation, ErrorType, TrinoError};
pub use session::{collect, Output, Session};
pub use statement::catalogs;
pub use statement::ingestions::declare as declare_ingestion;
pub use statement::pipelines::declare as declare_pipeline;
pub use stop::StopSignal;
