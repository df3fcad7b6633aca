//! `EXPLAIN ANALYZE` as Trino shows it: the statement runs, then one `Query Plan` text
//! gives its planning and execution time, what it read and returned, and its plan as a tree,
//! each operator with its output layout, its CPU time (and share of the statement's), the
//! rows and bytes it produced, its memory and spill, and DataFusion's own metrics
//! (`VERBOSE`: also those of each partition's timing).

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use datafusion::physical_plan::metrics::{MetricValue, MetricsSet};
use datafusion::physical_plan::{displayable, ExecutionPlan};

use crate::statement_io::IoSummary;
use crate::stop::StoppableExec;

/// How long the statement took, and what it returned.
pub(crate) struct Ran {
    pub planning: Duration,
    pub execution: Duration,
    pub output_rows: u64,
    pub output_bytes: u64,
}

/// The `Query Plan` text of a statement that ran as `plan`.
pub(crate) fn render(
    plan: &Arc<dyn ExecutionPlan>,
    io: &IoSummary,
    ran: &Ran,
    verbose: bool,
) -> String {
    let plan = operator(plan);
    let total_cpu = cpu_of_tree(plan.as_ref()).max(1);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Planning: {}, Execution: {}",
        duration(ran.planning),
        duration(ran.execution)
    );
    let _ = writeln!(
        text,
        "CPU: {}, Peak Memory: {}, Input: {} rows ({}), Output: {} rows ({})",
        duration(Duration::from_nanos(total_cpu as u64)),
        size(io.peak_memory_bytes),
        io.rows_read,
        size(io.bytes_read),
        ran.output_rows,
        size(ran.output_bytes),
    );
    if io.spilled_bytes > 0 {
        let _ = writeln!(text, "Spilled: {}", size(io.spilled_bytes));
    }
    let _ = writeln!(text, "Output layout: [{}]", names(plan.as_ref()));
    node(&mut text, plan.as_ref(), total_cpu, "", "", verbose);
    text
}

/// The operator itself, past the stop checks wrapped around it.
fn operator(plan: &Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    let mut plan = plan.clone();
    while let Some(stoppable) = plan.as_any().downcast_ref::<StoppableExec>() {
        let Some(child) = stoppable.children().into_iter().next() else {
            break;
        };
        plan = child.clone();
    }
    plan
}

/// An operator, with the rows and bytes a check above it counted when it is a scan (for
/// scans that keep no metrics of their own).
type Input = (Arc<dyn ExecutionPlan>, Option<(u64, u64)>);

/// The operators below `plan`, past the stop checks.
fn children(plan: &dyn ExecutionPlan) -> Vec<Input> {
    plan.children()
        .into_iter()
        .map(|child| {
            let counted = child
                .as_any()
                .downcast_ref::<StoppableExec>()
                .and_then(|s| s.scan())
                .map(|(_, produced)| {
                    (
                        produced.rows.load(Ordering::Relaxed),
                        produced.bytes.load(Ordering::Relaxed),
                    )
                });
            (operator(child), counted)
        })
        .collect()
}

fn metrics(plan: &dyn ExecutionPlan) -> Option<MetricsSet> {
    plan.metrics().map(|m| {
        m.aggregate_by_name()
            .sorted_for_display()
            .timestamps_removed()
    })
}

fn cpu_of_tree(plan: &dyn ExecutionPlan) -> usize {
    let own = plan
        .metrics()
        .and_then(|m| m.elapsed_compute())
        .unwrap_or(0);
    own + children(plan)
        .iter()
        .map(|(child, _)| cpu_of_tree(child.as_ref()))
        .sum::<usize>()
}

fn names(plan: &dyn ExecutionPlan) -> String {
    let schema = plan.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names.join(", ")
}

fn layout(plan: &dyn ExecutionPlan) -> String {
    let schema = plan.schema();
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), crate::types::field_type_name(f)))
        .collect();
    columns.join(", ")
}

/// Writes one operator and, below it, its inputs. `first`: the prefix of its own line;
/// `rest`: of the lines under it.
fn node(
    text: &mut String,
    plan: &dyn ExecutionPlan,
    total_cpu: usize,
    first: &str,
    rest: &str,
    verbose: bool,
) {
    node_counted(text, plan, None, total_cpu, (first, rest), verbose);
}

fn node_counted(
    text: &mut String,
    plan: &dyn ExecutionPlan,
    counted: Option<(u64, u64)>,
    total_cpu: usize,
    (first, rest): (&str, &str),
    verbose: bool,
) {
    let inputs = children(plan);
    let bar = if inputs.is_empty() { "    " } else { "│   " };
    let description = displayable(plan).one_line().to_string();
    let _ = writeln!(text, "{first}{}", description.trim_end());
    let _ = writeln!(text, "{rest}{bar}Layout: [{}]", layout(plan));
    let metrics = metrics(plan);
    let cpu = metrics
        .as_ref()
        .and_then(|m| m.elapsed_compute())
        .unwrap_or(0);
    let rows = metrics
        .as_ref()
        .and_then(|m| m.output_rows())
        .map(|r| r as u64)
        .or(counted.map(|(rows, _)| rows));
    let bytes = metrics
        .as_ref()
        .and_then(|m| m.sum(|metric| matches!(metric.value(), MetricValue::OutputBytes(_))))
        .map(|b| b.as_usize() as u64)
        .or(counted.map(|(_, bytes)| bytes));
    let mut line = format!(
        "CPU: {} ({:.2}%)",
        duration(Duration::from_nanos(cpu as u64)),
        cpu as f64 * 100.0 / total_cpu as f64
    );
    if let Some(rows) = rows {
        let _ = write!(line, ", Output: {rows} rows");
        if let Some(bytes) = bytes {
            let _ = write!(line, " ({})", size(bytes));
        }
    }
    let _ = writeln!(text, "{rest}{bar}{line}");
    if let Some(metrics) = &metrics {
        let mut memory = Vec::new();
        if let Some(peak) = metrics.sum_by_name("peak_mem_used") {
            memory.push(format!("Peak memory: {}", size(peak.as_usize() as u64)));
        }
        if let Some(spilled) = metrics.spilled_bytes().filter(|b| *b > 0) {
            memory.push(format!("Spilled: {}", size(spilled as u64)));
        }
        if !memory.is_empty() {
            let _ = writeln!(text, "{rest}{bar}{}", memory.join(", "));
        }
        let shown: Vec<String> = metrics
            .iter()
            .filter(|m| verbose || !matches!(m.value(), MetricValue::Time { .. }))
            .map(|m| m.to_string())
            .collect();
        if !shown.is_empty() {
            let _ = writeln!(text, "{rest}{bar}Metrics: {}", shown.join(", "));
        }
    }
    let last = inputs.len().saturating_sub(1);
    for (i, (child, counted)) in inputs.iter().enumerate() {
        let (branch, under) = if i == last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        node_counted(
            text,
            child.as_ref(),
            *counted,
            total_cpu,
            (&format!("{rest}{branch}"), &format!("{rest}{under}")),
            verbose,
        );
    }
}

/// A duration as Trino writes one: `374.17us`, `190.96ms`, `3.06s`, `2.50m`.
fn duration(d: Duration) -> String {
    let nanos = d.as_nanos() as f64;
    match nanos {
        n if n < 1_000.0 => format!("{n:.2}ns"),
        n if n < 1_000_000.0 => format!("{:.2}us", n / 1_000.0),
        n if n < 1_000_000_000.0 => format!("{:.2}ms", n / 1_000_000.0),
        n if n < 60_000_000_000.0 => format!("{:.2}s", n / 1_000_000_000.0),
        n => format!("{:.2}m", n / 60_000_000_000.0),
    }
}

/// A size as Trino writes one: `0B`, `112B`, `37.11kB`, `18.17MB`, `1.20GB`.
fn size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes}B"),
        1024..1_048_576 => format!("{:.2}kB", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.2}MB", b / 1_048_576.0),
        _ => format!("{:.2}GB", b / 1_073_741_824.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_as_trinos() {
        assert_eq!(duration(Duration::from_nanos(0)), "0.00ns");
        assert_eq!(duration(Duration::from_nanos(374_170)), "374.17us");
        assert_eq!(duration(Duration::from_micros(190_960)), "190.96ms");
        assert_eq!(duration(Duration::from_millis(3_060)), "3.06s");
        assert_eq!(size(0), "0B");
        assert_eq!(size(38_000), "37.11kB");
        assert_eq!(size(19_052_871), "18.17MB");
    }
}
