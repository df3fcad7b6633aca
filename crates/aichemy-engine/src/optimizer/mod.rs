//! AIchemy's own optimizer rules, on DataFusion's logical plans and on its physical plans.

pub(crate) mod logical;
pub(crate) mod physical;
