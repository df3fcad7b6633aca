//! Rules on logical plans: join order, semi-join and group filters; the analyzer rules that
//! give casts Trino's rules and run `CROSS JOIN UNNEST` of the left side's arrays.

pub(crate) mod casts;
pub(crate) mod group_filter;
pub(crate) mod join_order;
pub(crate) mod lateral_unnest;
pub(crate) mod semi_join;
