//! What a table can estimate about itself for the optimizer, whatever its format.
//!
//! The engine orders joins by the rows and bytes each table keeps after its filters.
//! DataFusion's `TableProvider::statistics` tells sizes, but not what a filter keeps, and
//! it is asked without a session, so a table that must first read something (a hive
//! table its files' footers) cannot prepare its answer there. [`TableStatistics`] is the
//! hook for that: the engine lets a table [gather](TableStatistics::gather) what it needs
//! once the table is loaded for a statement, and asks it for a [`TableEstimate`] of a scan
//! with filters while it plans. It reaches the hook from the provider a scan holds, through
//! [`statistics_of`], and never names a format.

use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::logical_expr::Expr;

/// What a table estimates of itself and of a scan's filters; each part `None` when the
/// table cannot tell it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TableEstimate {
    /// The rows of the whole table.
    pub rows: Option<u64>,
    /// The bytes of the whole table's files.
    pub bytes: Option<u64>,
    /// The share of the rows (0 to 1) that the filters keep.
    pub kept_share: Option<f64>,
}

/// The statistics hook of a table whose format can estimate it.
#[async_trait]
pub trait TableStatistics: Send + Sync {
    /// Gathers what the estimates need (a hive table lists its files and reads their
    /// footers), once the table is loaded for a statement and before it is planned. A
    /// table that cannot gather it stays without estimates; its scan reports the error.
    async fn gather(&self, session: &dyn Session);

    /// The table's estimate, with the share of rows that `filters` keep (conditions on the
    /// table's own columns, qualified or not); `default` stands for each condition the
    /// table cannot bound.
    fn estimate(&self, filters: &[Expr], default: f64) -> TableEstimate;
}

/// The statistics hook of a table of this crate's formats, from the provider its
/// [`crate::TableHandle`] holds (or a scan of it); `None` for a format that cannot estimate
/// its tables (all but hive, for now) and for other providers.
pub fn statistics_of(provider: &dyn TableProvider) -> Option<&dyn TableStatistics> {
    crate::hive::statistics_of(provider)
}
