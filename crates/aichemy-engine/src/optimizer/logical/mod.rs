//! Rules on logical plans: join order, semi-join and group filters; the analyzer rules that
//! give casts Trino's rules, add intervals to times, check the overflow of integer constants
//! and run `CROSS JOIN UNNEST` of the left side's arrays.

pub(crate) mod casts;
pub(crate) mod checked_constants;
pub(crate) mod group_filter;
pub(crate) mod join_order;
pub(crate) mod lateral_unnest;
pub(crate) mod semi_join;
pub(crate) mod time_arithmetic;
