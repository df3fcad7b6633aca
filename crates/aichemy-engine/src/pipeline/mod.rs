//! Pipelines as users declare them (`CREATE PIPELINE`, `ALTER PIPELINE … ADD STEP`, or a
//! folder of `.sql` files with a manifest): the definition the metastore keeps, its
//! schedule, the order its steps run in, and the values a run gives its steps. The runs
//! themselves happen in [`run`], started by [`runner`] in a server.
//!
//! A pipeline is a DAG of SQL steps. Each step names the steps it runs after; a step
//! whose dependencies did not all succeed does not run (`upstream_failed`, as Airflow
//! says). A step that fails is tried again up to its `retries`, waiting `retry_delay`,
//! then twice that, and so on (at most [`MAX_RETRY_WAIT`]); each attempt is bounded by
//! its `timeout` (the session's `query_max_run_time`).

pub mod checks;
pub mod run;
pub mod runner;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, Result, TrinoError};
use crate::Lakehouse;

/// How long a pipeline's lease holds without renewal: another node takes the pipeline
/// over this long after its holder died.
pub const LEASE: Duration = Duration::from_secs(6);
/// How often the runner looks at the pipelines and renews its leases.
pub const TICK: Duration = Duration::from_secs(1);
/// How many finished runs of a pipeline the metastore keeps.
pub const KEPT_RUNS: i64 = 500;

/// The longest wait between two attempts of a step.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(600);
/// The wait before a step's first retry when the pipeline names none.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// One pipeline's declaration, as the metastore keeps it (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineDefinition {
    pub name: String,
    /// The user who created it; its steps run as this user.
    pub owner: String,
    /// Where the steps' unqualified names resolve (the creator's session's).
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub schedule: Option<Schedule>,
    /// Retries of a failed step, for steps that name none.
    pub retries: u32,
    /// The wait before the first retry, doubled for each next one.
    pub retry_delay_ms: u64,
    /// The time limit of each attempt of a step, for steps that name none.
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// In the order they were declared.
    pub steps: Vec<StepDefinition>,
    /// Quality gates, in the order they were declared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<checks::CheckDefinition>,
}

/// One SQL step of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDefinition {
    pub name: String,
    /// One statement; `${ds}`, `${ds_nodash}`, `${run_id}` and `${pipeline}` are replaced
    /// with the run's values before it runs.
    pub sql: String,
    /// The steps that must succeed before this one runs.
    pub after: Vec<String>,
    pub retries: Option<u32>,
    pub timeout_ms: Option<u64>,
}

/// When a pipeline runs by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// A cron pattern (minute hour day-of-month month day-of-week, optionally seconds
    /// first; `@daily` and the other nicknames), in UTC.
    Cron(String),
    /// Every so many milliseconds.
    Every(i64),
}

fn invalid(message: impl Into<String>) -> TrinoError {
    TrinoError::new(ErrorCode::INVALID_ARGUMENTS, message)
}

impl Schedule {
    /// A cron schedule, checked.
    pub fn cron(pattern: &str) -> Result<Self> {
        cron_of(pattern)?;
        Ok(Schedule::Cron(pattern.trim().to_string()))
    }

    /// A schedule of every `ms` milliseconds (at least a second).
    pub fn every(ms: i64) -> Result<Self> {
        if ms < 1000 {
            return Err(invalid(
                "A pipeline's schedule interval must be at least one second",
            ));
        }
        Ok(Schedule::Every(ms))
    }

    /// The first schedule time after `after_ms` (ms since the epoch).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            Schedule::Every(ms) => after_ms.checked_add(*ms),
            Schedule::Cron(pattern) => {
                let cron = cron_of(pattern).ok()?;
                let after = chrono::DateTime::from_timestamp_millis(after_ms)?;
                cron.find_next_occurrence(&after, false)
                    .ok()
                    .map(|t| t.timestamp_millis())
            }
        }
    }

    /// The schedule as `SHOW CREATE PIPELINE` writes it.
    pub fn sql(&self) -> String {
        match self {
            Schedule::Cron(pattern) => format!("SCHEDULE {}", quote(pattern)),
            Schedule::Every(ms) => format!("SCHEDULE EVERY {}", interval_text(*ms)),
        }
    }

    /// The schedule as system tables show it: the pattern, or `every 30.00s`.
    pub fn text(&self) -> String {
        match self {
            Schedule::Cron(pattern) => pattern.clone(),
            Schedule::Every(ms) => format!(
                "every {}",
                crate::statement::session_state::duration_text(Duration::from_millis(*ms as u64))
            ),
        }
    }
}

fn cron_of(pattern: &str) -> Result<croner::Cron> {
    croner::parser::CronParser::builder()
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(pattern)
        .or_else(|_| croner::Cron::from_str(pattern))
        .map_err(|e| invalid(format!("Invalid cron schedule '{pattern}': {e}")))
}

use crate::statement::materialized::{interval_text, quote_literal as quote};

impl PipelineDefinition {
    /// Checks what a declaration may not do: two steps of one name, a dependency on a
    /// step that does not exist or on itself, a cycle.
    pub fn validate(&self) -> Result<()> {
        let mut names = BTreeSet::new();
        for step in &self.steps {
            if !names.insert(step.name.as_str()) {
                return Err(invalid(format!(
                    "Pipeline '{}' has two steps named '{}'",
                    self.name, step.name
                )));
            }
        }
        for step in &self.steps {
            for before in &step.after {
                if !names.contains(before.as_str()) {
                    return Err(invalid(format!(
                        "Step '{}' of pipeline '{}' runs after step '{before}', which does not exist",
                        step.name, self.name
                    )));
                }
            }
        }
        let mut checks = BTreeSet::new();
        for check in &self.checks {
            if !checks.insert(check.name.as_str()) {
                return Err(invalid(format!(
                    "Pipeline '{}' has two checks named '{}'",
                    self.name, check.name
                )));
            }
            if let Some(after) = &check.after {
                if !names.contains(after.as_str()) {
                    return Err(invalid(format!(
                        "Check '{}' of pipeline '{}' runs after step '{after}', which does not exist",
                        check.name, self.name
                    )));
                }
            }
        }
        self.order().map(|_| ())
    }

    /// The steps in an order that runs each after those it depends on (declaration order
    /// where the dependencies leave a choice); a cycle is an error naming its steps.
    pub fn order(&self) -> Result<Vec<&StepDefinition>> {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut order = Vec::with_capacity(self.steps.len());
        while order.len() < self.steps.len() {
            let next = self.steps.iter().find(|step| {
                !done.contains(step.name.as_str())
                    && step.after.iter().all(|b| done.contains(b.as_str()))
            });
            let Some(next) = next else {
                let cycle: Vec<&str> = self
                    .steps
                    .iter()
                    .filter(|s| !done.contains(s.name.as_str()))
                    .map(|s| s.name.as_str())
                    .collect();
                return Err(invalid(format!(
                    "Pipeline '{}' has a cycle in its step dependencies: {}",
                    self.name,
                    cycle.join(", ")
                )));
            };
            done.insert(next.name.as_str());
            order.push(next);
        }
        Ok(order)
    }

    pub fn step_retries(&self, step: &StepDefinition) -> u32 {
        step.retries.unwrap_or(self.retries)
    }

    pub fn step_timeout(&self, step: &StepDefinition) -> Option<Duration> {
        step.timeout_ms
            .or(self.timeout_ms)
            .map(Duration::from_millis)
    }

    /// The wait before attempt `attempt` (2 for the first retry) of a step.
    pub fn retry_wait(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(20);
        Duration::from_millis(self.retry_delay_ms.saturating_mul(1 << doublings))
            .min(MAX_RETRY_WAIT)
    }

    /// The statements that declare this pipeline again, as `SHOW CREATE PIPELINE`
    /// prints them.
    pub fn sql(&self) -> String {
        let mut text = format!("CREATE PIPELINE {}", self.name);
        if let Some(schedule) = &self.schedule {
            text.push_str(&format!("\n{}", schedule.sql()));
        }
        if let Some(comment) = &self.comment {
            text.push_str(&format!("\nCOMMENT {}", quote(comment)));
        }
        let mut properties = vec![
            format!("retries = {}", self.retries),
            format!(
                "retry_delay = {}",
                quote(&duration_property(self.retry_delay_ms))
            ),
        ];
        if let Some(ms) = self.timeout_ms {
            properties.push(format!("timeout = {}", quote(&duration_property(ms))));
        }
        if let Some(catalog) = &self.catalog {
            properties.push(format!("catalog = {}", quote(catalog)));
        }
        if let Some(schema) = &self.schema {
            properties.push(format!("schema = {}", quote(schema)));
        }
        text.push_str(&format!("\nWITH (\n   {}\n)", properties.join(",\n   ")));
        for step in &self.steps {
            text.push_str(&format!(
                ";\nALTER PIPELINE {} ADD STEP {}",
                self.name, step.name
            ));
            if !step.after.is_empty() {
                text.push_str(&format!(" AFTER {}", step.after.join(", ")));
            }
            let mut options = Vec::new();
            if let Some(retries) = step.retries {
                options.push(format!("retries = {retries}"));
            }
            if let Some(ms) = step.timeout_ms {
                options.push(format!("timeout = {}", quote(&duration_property(ms))));
            }
            if !options.is_empty() {
                text.push_str(&format!(" WITH ({})", options.join(", ")));
            }
            text.push_str(&format!(" AS\n{}", step.sql));
        }
        for check in &self.checks {
            text.push_str(&format!(
                ";\nALTER PIPELINE {} ADD CHECK {}",
                self.name,
                check.sql()
            ));
        }
        text
    }
}

/// A duration as a property value: `90s`, `10m`, `250ms`.
/// Counts a run that ended, by pipeline and state (`aichemy_pipeline_runs_total`).
pub(crate) fn count_run(pipeline: &str, state: &str) {
    metrics::counter!(
        "aichemy_pipeline_runs_total",
        "pipeline" => pipeline.to_string(),
        "state" => state.to_string()
    )
    .increment(1);
}

pub fn duration_property(ms: u64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms != 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A duration property's value (`10s`, `1.5m`, `250ms`, as Trino writes durations) in
/// milliseconds.
pub fn parse_duration_property(name: &str, value: &str) -> Result<u64> {
    crate::statement::session_state::parse_duration(value)
        .map(|d| d.as_millis() as u64)
        .ok_or_else(|| {
            invalid(format!(
                "Pipeline property '{name}' must be a duration such as '30s' or '10m', not '{value}'"
            ))
        })
}

/// What a run gives its steps.
#[derive(Debug, Clone)]
pub struct RunValues {
    pub pipeline: String,
    pub run_id: String,
    /// `YYYY-MM-DD`.
    pub ds: String,
}

impl RunValues {
    /// `sql` with `${ds}`, `${ds_nodash}`, `${run_id}` and `${pipeline}` replaced; another
    /// `${…}` is an error (a misspelt name would otherwise reach the table).
    pub fn substitute(&self, sql: &str) -> Result<String> {
        let values: BTreeMap<&str, String> = [
            ("ds", self.ds.clone()),
            ("ds_nodash", self.ds.replace('-', "")),
            ("run_id", self.run_id.clone()),
            ("pipeline", self.pipeline.clone()),
        ]
        .into_iter()
        .collect();
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            let value = values.get(name).ok_or_else(|| {
                invalid(format!(
                    "Unknown pipeline variable '${{{name}}}': use ${{ds}}, ${{ds_nodash}}, \
                     ${{run_id}} or ${{pipeline}}"
                ))
            })?;
            out.push_str(value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The pipeline `name`'s record and definition; Trino-style NOT_FOUND when it does not
/// exist.
pub async fn load(
    lakehouse: &Lakehouse,
    name: &str,
) -> Result<(aichemy_metastore::PipelineRecord, PipelineDefinition)> {
    let record = lakehouse.metastore().pipeline(name).await?.ok_or_else(|| {
        TrinoError::new(
            ErrorCode::NOT_FOUND,
            format!("Pipeline '{name}' does not exist"),
        )
    })?;
    let definition = serde_json::from_str(&record.definition_json)
        .map_err(|e| TrinoError::internal(format!("Unreadable pipeline definition: {e}")))?;
    Ok((record, definition))
}

/// A date as a run's `${ds}`: `YYYY-MM-DD`, checked.
pub fn logical_date(text: &str) -> Result<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| invalid(format!("Invalid run date '{text}': expected YYYY-MM-DD")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, after: &[&str]) -> StepDefinition {
        StepDefinition {
            name: name.into(),
            sql: "SELECT 1".into(),
            after: after.iter().map(|s| s.to_string()).collect(),
            retries: None,
            timeout_ms: None,
        }
    }

    fn pipeline(steps: Vec<StepDefinition>) -> PipelineDefinition {
        PipelineDefinition {
            name: "p".into(),
            owner: "u".into(),
            catalog: None,
            schema: None,
            schedule: None,
            retries: 2,
            retry_delay_ms: 1000,
            timeout_ms: None,
            comment: None,
            steps,
            checks: Vec::new(),
        }
    }

    #[test]
    fn steps_run_after_their_dependencies_and_cycles_are_refused() {
        let p = pipeline(vec![
            step("gold", &["silver"]),
            step("silver", &[]),
            step("x", &[]),
        ]);
        p.validate().unwrap();
        let names: Vec<&str> = p.order().unwrap().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["silver", "gold", "x"]);
        let cycle = pipeline(vec![step("a", &["b"]), step("b", &["a"]), step("c", &[])]);
        let e = cycle.validate().unwrap_err();
        assert!(
            e.message.contains("cycle") && e.message.contains("a, b"),
            "{e:?}"
        );
        assert!(pipeline(vec![step("a", &["nope"])]).validate().is_err());
        assert!(pipeline(vec![step("a", &[]), step("a", &[])])
            .validate()
            .is_err());
    }

    #[test]
    fn retries_wait_twice_as_long_each_time() {
        let p = pipeline(vec![]);
        assert_eq!(p.retry_wait(2), Duration::from_secs(1));
        assert_eq!(p.retry_wait(3), Duration::from_secs(2));
        assert_eq!(p.retry_wait(5), Duration::from_secs(8));
        assert_eq!(p.retry_wait(40), MAX_RETRY_WAIT);
    }

    #[test]
    fn schedules_find_their_next_time() {
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        };
        let daily = Schedule::cron("0 2 * * *").unwrap();
        assert_eq!(
            daily.next_after(at("2026-12-04T10:00:00Z")),
            Some(at("2026-12-05T02:00:00Z"))
        );
        let seconds = Schedule::cron("*/5 * * * * *").unwrap();
        assert_eq!(
            seconds.next_after(at("2026-12-04T10:00:01Z")),
            Some(at("2026-12-04T10:00:05Z"))
        );
        assert!(Schedule::cron("@hourly").is_ok());
        assert!(Schedule::cron("61 * * * *").is_err());
        assert!(Schedule::every(10).is_err());
        assert_eq!(Schedule::Every(30_000).next_after(5), Some(30_005));
        assert_eq!(Schedule::Every(30_000).text(), "every 30.00s");
    }

    #[test]
    fn run_values_replace_their_names_only() {
        let values = RunValues {
            pipeline: "p".into(),
            run_id: "r1".into(),
            ds: "2026-12-01".into(),
        };
        assert_eq!(
            values
                .substitute("WHERE d = DATE '${ds}' AND k = '${ds_nodash}' -- ${run_id}")
                .unwrap(),
            "WHERE d = DATE '2026-12-01' AND k = '20261201' -- r1"
        );
        assert!(values.substitute("${dt}").is_err());
        assert_eq!(values.substitute("'${'").unwrap(), "'${'");
    }
}
