//! Rules on logical plans: join order, semi-join and group filters.

pub(crate) mod group_filter;
pub(crate) mod join_order;
pub(crate) mod semi_join;
