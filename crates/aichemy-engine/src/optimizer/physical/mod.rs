//! Rules on physical plans, and the helpers they share (conjunctions, plan rewriting,
//! comparisons of string views).

pub(crate) mod build_side;
pub(crate) mod conjunct_order;
pub(crate) mod conjunction;
pub(crate) mod decimal_arithmetic;
pub(crate) mod integer_overflow;
pub(crate) mod node_rewrite;
pub(crate) mod not_in;
pub(crate) mod partial_aggregate;
pub(crate) mod shared_plan;
pub(crate) mod view_equals;
pub(crate) mod view_group_keys;
