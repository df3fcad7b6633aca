//! The one way AIchemy starts tokio tasks.
//!
//! Every task has a name and runs in a tracing span `task{task=<name>}` opened under the
//! span that started it, so that what a task logs carries the query id and user of the
//! query it works for, and a stuck or failing task says what it was. The workspace's
//! `clippy.toml` refuses tokio's own spawns (`tokio::spawn`, `spawn_blocking`,
//! `Handle::spawn`, `Runtime::spawn`, `JoinSet::spawn`) everywhere else, as DataFusion
//! and databend do for theirs.
#![forbid(unsafe_code)]
// The one place the bare spawns are allowed.
#![allow(clippy::disallowed_methods)]

use std::future::Future;

use tokio::runtime::Handle;
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tracing::{Instrument, Span};

/// The span a task named `name` runs in, under the current one.
fn span(name: &'static str) -> Span {
    tracing::info_span!("task", task = name)
}

/// Starts `future` on the current runtime as the task `name`.
pub fn spawn<F>(name: &'static str, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.instrument(span(name)))
}

/// Starts `future` on the runtime of `handle` as the task `name`.
pub fn spawn_on<F>(handle: &Handle, name: &'static str, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    handle.spawn(future.instrument(span(name)))
}

/// Starts `future` in `set` as the task `name`.
pub fn spawn_in<T, F>(set: &mut JoinSet<T>, name: &'static str, future: F) -> AbortHandle
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    set.spawn(future.instrument(span(name)))
}

/// Runs `work` on tokio's blocking threads as the task `name`.
pub fn spawn_blocking<R, W>(name: &'static str, work: W) -> JoinHandle<R>
where
    R: Send + 'static,
    W: FnOnce() -> R + Send + 'static,
{
    let span = span(name);
    tokio::task::spawn_blocking(move || span.in_scope(work))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_and_answer() {
        assert_eq!(spawn("add", async { 1 + 1 }).await.unwrap(), 2);
        assert_eq!(
            spawn_on(&Handle::current(), "add", async { 2 + 2 })
                .await
                .unwrap(),
            4
        );
        assert_eq!(spawn_blocking("add", || 3 + 3).await.unwrap(), 6);
        let mut set = JoinSet::new();
        spawn_in(&mut set, "add", async { 4 + 4 });
        assert_eq!(set.join_next().await.unwrap().unwrap(), 8);
    }
}
