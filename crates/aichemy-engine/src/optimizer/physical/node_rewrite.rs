//! The walk physical rules share that rewrite nodes of one kind.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Result;
use datafusion::physical_plan::ExecutionPlan;

/// `plan` with each node of type `T`, bottom up, replaced by what `replacement` returns
/// for it; a node it returns `None` for stays.
pub(crate) fn replace_each<T: ExecutionPlan + 'static>(
    plan: Arc<dyn ExecutionPlan>,
    replacement: impl Fn(&T) -> Result<Option<Arc<dyn ExecutionPlan>>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let replaced = match node.as_any().downcast_ref::<T>() {
            Some(typed) => replacement(typed)?,
            None => None,
        };
        Ok(match replaced {
            Some(new) => Transformed::yes(new),
            None => Transformed::no(node),
        })
    })
    .map(|transformed| transformed.data)
}
