//! Pipelines in SQL:
//!
//! ```text
//! CREATE [OR REPLACE] PIPELINE [IF NOT EXISTS] name
//!     [SCHEDULE 'cron pattern' | SCHEDULE EVERY INTERVAL 'n' unit] [COMMENT '…']
//!     [WITH (retries = 2, retry_delay = '10s', timeout = '30m', catalog = 'c', schema = 's')]
//! ALTER PIPELINE name ADD STEP step [AFTER a, b] [WITH (retries = n, timeout = '…')] AS statement
//! ALTER PIPELINE name DROP STEP step
//! ALTER PIPELINE name ADD CHECK check ON table [AFTER step] rule [WARN | QUARANTINE]
//! ALTER PIPELINE name DROP CHECK check
//! ALTER PIPELINE name SET SCHEDULE 'cron pattern' | EVERY INTERVAL … | NONE
//! ALTER PIPELINE name PAUSE | RESUME
//! DROP PIPELINE [IF EXISTS] name
//! RUN PIPELINE name [FOR 'YYYY-MM-DD']
//! BACKFILL PIPELINE name FROM 'YYYY-MM-DD' TO 'YYYY-MM-DD' [PARALLEL n]
//! SHOW PIPELINES
//! SHOW CREATE PIPELINE name
//! ```
//!
//! The statements change the metastore's record; the servers' pipeline runners see it
//! within a second. `RUN` and `BACKFILL` queue runs: in a server, or when a server holds
//! the pipeline, the server runs them and the statement answers at once (state `queued`);
//! otherwise (the shell, with no server running the pipeline) the session runs them itself
//! and answers when they ended. PAUSE stops the schedule only:
//! runs asked for by hand still run.

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use std::sync::Arc;

use crate::dialect::{dialect, syntax_error};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::pipeline::checks::{parse_check, CheckDefinition};
use crate::pipeline::run::{new_run, now_ms, run_queued_here};
use crate::pipeline::{
    load, logical_date, parse_duration_property, PipelineDefinition, RunValues, Schedule,
    StepDefinition,
};
use crate::session::{Output, Session};
use crate::statement::ingestions::parse_properties;
use crate::statement::session_state::{rest_of, statement_name as name};
use crate::statement::take_word as word;

/// A pipeline statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PipelineStatement {
    Create {
        name: String,
        or_replace: bool,
        if_not_exists: bool,
        schedule: Option<Schedule>,
        comment: Option<String>,
        properties: std::collections::BTreeMap<String, String>,
    },
    AddStep {
        pipeline: String,
        step: StepDefinition,
    },
    DropStep {
        pipeline: String,
        step: String,
    },
    AddCheck {
        pipeline: String,
        check: CheckDefinition,
    },
    DropCheck {
        pipeline: String,
        check: String,
    },
    SetSchedule {
        pipeline: String,
        schedule: Option<Schedule>,
    },
    Pause {
        pipeline: String,
        pause: bool,
    },
    Drop {
        pipeline: String,
        if_exists: bool,
    },
    Run {
        pipeline: String,
        ds: Option<String>,
    },
    Backfill {
        pipeline: String,
        from: String,
        to: String,
        parallel: i64,
    },
    Show,
    ShowCreate(String),
}

/// The query `SHOW PIPELINES` answers with.
pub(crate) const SHOW_QUERY: &str = "SELECT pipeline_name AS \"Pipeline\", state AS \"State\", \
     schedule AS \"Schedule\", steps AS \"Steps\", node AS \"Node\", \
     next_run AS \"Next run\", last_run_state AS \"Last run\", \
     last_run_end AS \"Last run end\", owner AS \"Owner\" \
     FROM system.runtime.pipelines ORDER BY 1";

/// The most runs one BACKFILL queues.
const MAX_BACKFILL_RUNS: i64 = 1000;

fn expect_word(parser: &mut Parser, expected: &str, after: &str) -> Result<()> {
    if word(parser, expected) {
        Ok(())
    } else {
        Err(TrinoError::new(
            ErrorCode::SYNTAX_ERROR,
            format!(
                "mismatched input '{}'. Expecting: {expected} after {after}",
                parser.peek_token().token
            ),
        ))
    }
}

/// `'pattern'` or `EVERY INTERVAL 'n' unit`, after SCHEDULE.
fn parse_schedule(parser: &mut Parser) -> Result<Schedule> {
    if word(parser, "EVERY") {
        let interval: Expr = parser.parse_expr().map_err(syntax_error)?;
        let ms = crate::statement::materialized::interval_millis(&interval, "SCHEDULE EVERY")?;
        return Schedule::every(ms);
    }
    let pattern = parser.parse_literal_string().map_err(syntax_error)?;
    Schedule::cron(&pattern)
}

/// A date literal: `'2026-12-01'` or `DATE '2026-12-01'`.
fn parse_date(parser: &mut Parser) -> Result<String> {
    word(parser, "DATE");
    let text = parser.parse_literal_string().map_err(syntax_error)?;
    Ok(logical_date(&text)?.format("%Y-%m-%d").to_string())
}

/// Recognises the statements of this module; `None` for every other statement.
pub(crate) fn parse(sql: &str) -> Result<Option<PipelineStatement>> {
    let dialect = dialect();
    let Ok(mut parser) = Parser::new(&dialect).try_with_sql(sql) else {
        return Ok(None);
    };
    let statement = if word(&mut parser, "CREATE") {
        let or_replace = parser.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
        if !word(&mut parser, "PIPELINE") {
            return Ok(None);
        }
        let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        if or_replace && if_not_exists {
            return Err(TrinoError::not_supported(
                "'CREATE OR REPLACE' and 'IF NOT EXISTS' clauses can not be used together",
            ));
        }
        let pipeline = name(&mut parser)?;
        let schedule = if word(&mut parser, "SCHEDULE") {
            Some(parse_schedule(&mut parser)?)
        } else {
            None
        };
        let comment = if parser.parse_keyword(Keyword::COMMENT) {
            Some(parser.parse_literal_string().map_err(syntax_error)?)
        } else {
            None
        };
        let properties = if parser.parse_keyword(Keyword::WITH) {
            parse_properties(&mut parser, "Pipeline")?
        } else {
            Default::default()
        };
        PipelineStatement::Create {
            name: pipeline,
            or_replace,
            if_not_exists,
            schedule,
            comment,
            properties,
        }
    } else if word(&mut parser, "ALTER") {
        if !word(&mut parser, "PIPELINE") {
            return Ok(None);
        }
        let pipeline = name(&mut parser)?;
        let add = word(&mut parser, "ADD");
        if add && parser.parse_keyword(Keyword::CHECK) {
            PipelineStatement::AddCheck {
                pipeline,
                check: parse_check(&mut parser)?,
            }
        } else if add {
            expect_word(&mut parser, "STEP", "ADD")?;
            let step = name(&mut parser)?;
            let mut after = Vec::new();
            if word(&mut parser, "AFTER") {
                loop {
                    after.push(name(&mut parser)?);
                    if !parser.consume_token(&Token::Comma) {
                        break;
                    }
                }
            }
            let mut retries = None;
            let mut timeout_ms = None;
            if parser.parse_keyword(Keyword::WITH) {
                for (key, value) in parse_properties(&mut parser, "Step")? {
                    match key.as_str() {
                        "retries" => retries = Some(parse_retries(&value)?),
                        "timeout" => timeout_ms = Some(parse_duration_property(&key, &value)?),
                        _ => return Err(unknown_property(&key, "retries, timeout")),
                    }
                }
            }
            parser.expect_keyword(Keyword::AS).map_err(syntax_error)?;
            let statement = rest_of(&parser, sql, "ADD STEP needs a statement after AS")?;
            return Ok(Some(PipelineStatement::AddStep {
                pipeline,
                step: StepDefinition {
                    name: step,
                    sql: statement,
                    after,
                    retries,
                    timeout_ms,
                },
            }));
        } else if parser.parse_keyword(Keyword::DROP) {
            if parser.parse_keyword(Keyword::CHECK) {
                PipelineStatement::DropCheck {
                    pipeline,
                    check: name(&mut parser)?,
                }
            } else {
                expect_word(&mut parser, "STEP", "DROP")?;
                PipelineStatement::DropStep {
                    pipeline,
                    step: name(&mut parser)?,
                }
            }
        } else if parser.parse_keyword(Keyword::SET) {
            expect_word(&mut parser, "SCHEDULE", "SET")?;
            let schedule = if word(&mut parser, "NONE") {
                None
            } else {
                Some(parse_schedule(&mut parser)?)
            };
            PipelineStatement::SetSchedule { pipeline, schedule }
        } else if word(&mut parser, "PAUSE") {
            PipelineStatement::Pause {
                pipeline,
                pause: true,
            }
        } else if word(&mut parser, "RESUME") {
            PipelineStatement::Pause {
                pipeline,
                pause: false,
            }
        } else {
            return Err(TrinoError::new(
                ErrorCode::SYNTAX_ERROR,
                "Expected ADD STEP, DROP STEP, ADD CHECK, DROP CHECK, SET SCHEDULE, PAUSE or RESUME \
                 after ALTER PIPELINE name",
            ));
        }
    } else if word(&mut parser, "DROP") {
        if !word(&mut parser, "PIPELINE") {
            return Ok(None);
        }
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        PipelineStatement::Drop {
            pipeline: name(&mut parser)?,
            if_exists,
        }
    } else if word(&mut parser, "RUN") {
        if !word(&mut parser, "PIPELINE") {
            return Ok(None);
        }
        let pipeline = name(&mut parser)?;
        let ds = if parser.parse_keyword(Keyword::FOR) {
            Some(parse_date(&mut parser)?)
        } else {
            None
        };
        PipelineStatement::Run { pipeline, ds }
    } else if word(&mut parser, "BACKFILL") {
        if !word(&mut parser, "PIPELINE") {
            return Ok(None);
        }
        let pipeline = name(&mut parser)?;
        parser.expect_keyword(Keyword::FROM).map_err(syntax_error)?;
        let from = parse_date(&mut parser)?;
        parser.expect_keyword(Keyword::TO).map_err(syntax_error)?;
        let to = parse_date(&mut parser)?;
        let parallel = if word(&mut parser, "PARALLEL") {
            match parser.next_token().token {
                Token::Number(n, _) => {
                    n.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        TrinoError::new(
                            ErrorCode::INVALID_ARGUMENTS,
                            format!("PARALLEL must be a whole number of at least 1, not {n}"),
                        )
                    })?
                }
                t => {
                    return Err(TrinoError::new(
                        ErrorCode::SYNTAX_ERROR,
                        format!("mismatched input '{t}'. Expecting: a number after PARALLEL"),
                    ))
                }
            }
        } else {
            1
        };
        PipelineStatement::Backfill {
            pipeline,
            from,
            to,
            parallel,
        }
    } else if word(&mut parser, "SHOW") {
        if word(&mut parser, "PIPELINES") {
            PipelineStatement::Show
        } else if word(&mut parser, "CREATE") && word(&mut parser, "PIPELINE") {
            PipelineStatement::ShowCreate(name(&mut parser)?)
        } else {
            return Ok(None);
        }
    } else {
        return Ok(None);
    };
    crate::statement::expect_end(&mut parser)?;
    Ok(Some(statement))
}

fn parse_retries(value: &str) -> Result<u32> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= 100)
        .ok_or_else(|| {
            TrinoError::new(
                ErrorCode::INVALID_ARGUMENTS,
                format!("Property 'retries' must be a whole number from 0 to 100, not '{value}'"),
            )
        })
}

fn unknown_property(key: &str, known: &str) -> TrinoError {
    TrinoError::new(
        ErrorCode::INVALID_ARGUMENTS,
        format!("Unknown pipeline property '{key}' (known: {known})"),
    )
}

/// Checks a step's statement before it is kept: it must parse (with the run's values
/// given sample ones), be one statement, and not be a pipeline statement.
fn check_step_sql(pipeline: &str, sql: &str) -> Result<()> {
    let sample = RunValues {
        pipeline: pipeline.to_string(),
        run_id: "20260101_000000_00000_aaaaa".into(),
        ds: "2026-01-01".into(),
    }
    .substitute(sql)?;
    use crate::statement::Family;
    match crate::statement::family(&sample) {
        Family::Pipeline => Err(TrinoError::not_supported(
            "A pipeline step cannot run pipeline statements",
        )),
        Family::Materialized => {
            crate::statement::materialized::parse(&sample)?;
            Ok(())
        }
        Family::Ingestion => {
            crate::statement::ingestions::parse(&sample)?;
            Ok(())
        }
        Family::Catalog => {
            crate::statement::catalogs::parse(&sample)?;
            Ok(())
        }
        Family::Grants => {
            crate::statement::grants::parse(&sample)?;
            Ok(())
        }
        Family::SessionState | Family::Show => Err(TrinoError::not_supported(
            "A pipeline step must be a statement that reads or writes tables",
        )),
        Family::Sql => {
            if crate::statement::procedures::parse_alter_execute(&sample)?.is_some()
                || crate::statement::ddl::parse_alter_set_properties(&sample)?.is_some()
                || crate::statement::ddl::parse_alter_view_rename(&sample)?.is_some()
            {
                return Ok(());
            }
            let statements = crate::dialect::parse_statements(&sample)?;
            if statements.len() != 1 {
                return Err(TrinoError::new(
                    ErrorCode::SYNTAX_ERROR,
                    "A pipeline step is one statement",
                ));
            }
            Ok(())
        }
    }
}

/// Whether `user` may change or run `definition`: its owner or an administrator.
fn check_owner(session: &Session, definition: &PipelineDefinition, verb: &str) -> Result<()> {
    if definition.owner == session.user || session.lakehouse().is_admin(&session.user) {
        Ok(())
    } else {
        Err(TrinoError::new(
            ErrorCode::PERMISSION_DENIED,
            format!("Access Denied: Cannot {verb} pipeline {}", definition.name),
        ))
    }
}

/// Builds the definition CREATE PIPELINE declares.
fn new_definition(
    session: &Session,
    name: String,
    schedule: Option<Schedule>,
    comment: Option<String>,
    properties: std::collections::BTreeMap<String, String>,
) -> Result<PipelineDefinition> {
    let mut definition = PipelineDefinition {
        name,
        owner: session.user.clone(),
        catalog: session.catalog.clone(),
        schema: session.schema.clone(),
        schedule,
        retries: 0,
        retry_delay_ms: crate::pipeline::DEFAULT_RETRY_DELAY.as_millis() as u64,
        timeout_ms: None,
        comment,
        steps: Vec::new(),
        checks: Vec::new(),
    };
    for (key, value) in properties {
        match key.as_str() {
            "retries" => definition.retries = parse_retries(&value)?,
            "retry_delay" => definition.retry_delay_ms = parse_duration_property(&key, &value)?,
            "timeout" => definition.timeout_ms = Some(parse_duration_property(&key, &value)?),
            "catalog" => definition.catalog = Some(value),
            "schema" => definition.schema = Some(value),
            _ => {
                return Err(unknown_property(
                    &key,
                    "retries, retry_delay, timeout, catalog, schema",
                ))
            }
        }
    }
    if definition.schema.is_some() && definition.catalog.is_none() {
        return Err(TrinoError::new(
            ErrorCode::INVALID_ARGUMENTS,
            "A pipeline with a default schema needs a default catalog",
        ));
    }
    if let Some(catalog) = &definition.catalog {
        session.lakehouse().catalog(catalog)?;
    }
    Ok(definition)
}

fn to_json(definition: &PipelineDefinition) -> Result<String> {
    serde_json::to_string(definition).map_err(|e| TrinoError::internal(e.to_string()))
}

/// Declares (or replaces) a whole pipeline, as a folder with a manifest does; answers
/// `created`, `replaced` or `unchanged`. The steps are checked as ADD STEP checks them.
pub async fn declare(
    lakehouse: &Arc<crate::Lakehouse>,
    mut definition: PipelineDefinition,
) -> Result<&'static str> {
    for step in &definition.steps {
        check_step_sql(&definition.name, &step.sql)?;
    }
    definition.validate()?;
    if let Some(catalog) = &definition.catalog {
        lakehouse.catalog(catalog)?;
    }
    let metastore = lakehouse.metastore();
    match metastore.pipeline(&definition.name).await? {
        None => {
            metastore
                .create_pipeline(&definition.name, &to_json(&definition)?, now_ms())
                .await?;
            Ok("created")
        }
        Some(record) => {
            let old: PipelineDefinition = serde_json::from_str(&record.definition_json)
                .map_err(|e| TrinoError::internal(e.to_string()))?;
            // The owner stays who created it.
            definition.owner = old.owner.clone();
            if old == definition {
                return Ok("unchanged");
            }
            let from = (old.schedule != definition.schedule).then(now_ms);
            if !metastore
                .replace_pipeline_definition(
                    &definition.name,
                    &record.definition_json,
                    &to_json(&definition)?,
                    from,
                )
                .await?
            {
                return Err(changed_meanwhile(&definition.name));
            }
            Ok("replaced")
        }
    }
}

fn changed_meanwhile(name: &str) -> TrinoError {
    TrinoError::new(
        ErrorCode::TRANSACTION_CONFLICT,
        format!("Pipeline '{name}' was changed by another statement at the same time; try again"),
    )
}

/// Changes a pipeline's definition with `change`, if the caller may.
async fn alter(
    session: &Session,
    pipeline: &str,
    change: impl FnOnce(&mut PipelineDefinition) -> Result<bool>,
) -> Result<()> {
    let lakehouse = session.lakehouse();
    let (record, mut definition) = load(lakehouse, pipeline).await?;
    check_owner(session, &definition, "alter")?;
    let schedule_changed = change(&mut definition)?;
    definition.validate()?;
    if !lakehouse
        .metastore()
        .replace_pipeline_definition(
            pipeline,
            &record.definition_json,
            &to_json(&definition)?,
            schedule_changed.then(now_ms),
        )
        .await?
    {
        return Err(changed_meanwhile(pipeline));
    }
    Ok(())
}

/// Queues `runs` and, when no server holds the pipeline, runs them in this session;
/// answers a row per run with how it stands.
async fn queue_and_maybe_run(
    session: &Session,
    pipeline: &str,
    runs: Vec<aichemy_metastore::PipelineRunRecord>,
) -> Result<Output> {
    let lakehouse = session.lakehouse();
    let metastore = lakehouse.metastore();
    metastore.queue_pipeline_runs(&runs).await?;
    let record = metastore.pipeline(pipeline).await?;
    let held = record.is_some_and(|r| r.lease_until.is_some_and(|until| until >= now_ms()));
    if !held && !crate::pipeline::runner::active() {
        let node = format!("session-{}", uuid::Uuid::new_v4().simple());
        run_queued_here(lakehouse, pipeline, &node).await?;
    }
    let mut ids = Vec::new();
    let mut dates = Vec::new();
    let mut states = Vec::new();
    let mut errors = Vec::new();
    for run in &runs {
        let now = metastore
            .pipeline_run(&run.run_id)
            .await?
            .unwrap_or_else(|| run.clone());
        ids.push(now.run_id);
        dates.push(now.logical_date);
        states.push(now.state);
        errors.push(now.error);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("logical_date", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(StringArray::from(dates)),
        Arc::new(StringArray::from(states)),
        Arc::new(StringArray::from(errors)),
    ];
    let batch =
        RecordBatch::try_new(schema, columns).map_err(|e| TrinoError::internal(e.to_string()))?;
    Ok(Output::batch(batch))
}

pub(crate) async fn execute(session: &mut Session, statement: PipelineStatement) -> Result<Output> {
    let lakehouse = session.lakehouse().clone();
    let metastore = lakehouse.metastore();
    match statement {
        PipelineStatement::Create {
            name,
            or_replace,
            if_not_exists,
            schedule,
            comment,
            properties,
        } => {
            let definition = new_definition(session, name.clone(), schedule, comment, properties)?;
            let json = to_json(&definition)?;
            if or_replace {
                if let Some(record) = metastore.pipeline(&name).await? {
                    let (_, old) = load(&lakehouse, &name).await?;
                    check_owner(session, &old, "replace")?;
                    if !metastore
                        .replace_pipeline_definition(
                            &name,
                            &record.definition_json,
                            &json,
                            Some(now_ms()),
                        )
                        .await?
                    {
                        return Err(changed_meanwhile(&name));
                    }
                    return Ok(Output::update("CREATE PIPELINE"));
                }
            }
            match metastore.create_pipeline(&name, &json, now_ms()).await {
                Ok(()) => {}
                Err(aichemy_metastore::MetastoreError::PipelineAlreadyExists { .. })
                    if if_not_exists => {}
                Err(aichemy_metastore::MetastoreError::PipelineAlreadyExists { .. }) => {
                    return Err(TrinoError::new(
                        ErrorCode::ALREADY_EXISTS,
                        format!("Pipeline '{name}' already exists"),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
            Ok(Output::update("CREATE PIPELINE"))
        }
        PipelineStatement::AddStep { pipeline, step } => {
            check_step_sql(&pipeline, &step.sql)?;
            alter(session, &pipeline, |definition| {
                if definition.steps.iter().any(|s| s.name == step.name) {
                    return Err(TrinoError::new(
                        ErrorCode::ALREADY_EXISTS,
                        format!(
                            "Step '{}' of pipeline '{pipeline}' already exists",
                            step.name
                        ),
                    ));
                }
                definition.steps.push(step);
                Ok(false)
            })
            .await?;
            Ok(Output::update("ALTER PIPELINE"))
        }
        PipelineStatement::DropStep { pipeline, step } => {
            alter(session, &pipeline, |definition| {
                let Some(at) = definition.steps.iter().position(|s| s.name == step) else {
                    return Err(TrinoError::new(
                        ErrorCode::NOT_FOUND,
                        format!("Step '{step}' of pipeline '{pipeline}' does not exist"),
                    ));
                };
                if let Some(check) = definition
                    .checks
                    .iter()
                    .find(|c| c.after.as_deref() == Some(step.as_str()))
                {
                    return Err(TrinoError::new(
                        ErrorCode::INVALID_ARGUMENTS,
                        format!(
                            "Cannot drop step '{step}' of pipeline '{pipeline}': check '{}' runs after it",
                            check.name
                        ),
                    ));
                }
                if let Some(dependent) = definition.steps.iter().find(|s| s.after.contains(&step)) {
                    return Err(TrinoError::new(
                        ErrorCode::INVALID_ARGUMENTS,
                        format!(
                            "Cannot drop step '{step}' of pipeline '{pipeline}': step '{}' runs after it",
                            dependent.name
                        ),
                    ));
                }
                definition.steps.remove(at);
                Ok(false)
            })
            .await?;
            Ok(Output::update("ALTER PIPELINE"))
        }
        PipelineStatement::AddCheck { pipeline, check } => {
            alter(session, &pipeline, |definition| {
                if definition.checks.iter().any(|c| c.name == check.name) {
                    return Err(TrinoError::new(
                        ErrorCode::ALREADY_EXISTS,
                        format!(
                            "Check '{}' of pipeline '{pipeline}' already exists",
                            check.name
                        ),
                    ));
                }
                definition.checks.push(check);
                Ok(false)
            })
            .await?;
            Ok(Output::update("ALTER PIPELINE"))
        }
        PipelineStatement::DropCheck { pipeline, check } => {
            alter(session, &pipeline, |definition| {
                let before = definition.checks.len();
                definition.checks.retain(|c| c.name != check);
                if definition.checks.len() == before {
                    return Err(TrinoError::new(
                        ErrorCode::NOT_FOUND,
                        format!("Check '{check}' of pipeline '{pipeline}' does not exist"),
                    ));
                }
                Ok(false)
            })
            .await?;
            Ok(Output::update("ALTER PIPELINE"))
        }
        PipelineStatement::SetSchedule { pipeline, schedule } => {
            alter(session, &pipeline, |definition| {
                definition.schedule = schedule;
                Ok(true)
            })
            .await?;
            Ok(Output::update("ALTER PIPELINE"))
        }
        PipelineStatement::Pause { pipeline, pause } => {
            let (_, definition) = load(&lakehouse, &pipeline).await?;
            check_owner(session, &definition, "alter")?;
            let state = if pause { "paused" } else { "active" };
            metastore
                .set_pipeline_state(&pipeline, state, now_ms())
                .await?;
            Ok(Output::update("ALTER PIPELINE"))
        }
        PipelineStatement::Drop {
            pipeline,
            if_exists,
        } => {
            match load(&lakehouse, &pipeline).await {
                Ok((_, definition)) => check_owner(session, &definition, "drop")?,
                Err(e) if e.code == ErrorCode::NOT_FOUND && if_exists => {
                    return Ok(Output::update("DROP PIPELINE"))
                }
                Err(e) => return Err(e),
            }
            metastore.drop_pipeline(&pipeline).await?;
            Ok(Output::update("DROP PIPELINE"))
        }
        PipelineStatement::Run { pipeline, ds } => {
            let (_, definition) = load(&lakehouse, &pipeline).await?;
            check_owner(session, &definition, "run")?;
            let now = now_ms();
            let ds = ds.unwrap_or_else(|| crate::pipeline::run::date_of(now));
            let run = new_run(&pipeline, "manual", &ds, None, 1, now);
            queue_and_maybe_run(session, &pipeline, vec![run]).await
        }
        PipelineStatement::Backfill {
            pipeline,
            from,
            to,
            parallel,
        } => {
            let (_, definition) = load(&lakehouse, &pipeline).await?;
            check_owner(session, &definition, "run")?;
            let first = logical_date(&from)?;
            let last = logical_date(&to)?;
            let days = (last - first).num_days() + 1;
            if days < 1 {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_ARGUMENTS,
                    format!("BACKFILL FROM '{from}' TO '{to}': the first date is after the last"),
                ));
            }
            if days > MAX_BACKFILL_RUNS {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_ARGUMENTS,
                    format!(
                        "A backfill queues at most {MAX_BACKFILL_RUNS} runs; {days} were asked for"
                    ),
                ));
            }
            let now = now_ms();
            let batch = new_run(&pipeline, "backfill", &from, None, 1, now).run_id;
            let runs = (0..days)
                .map(|day| {
                    let ds = (first + chrono::Days::new(day as u64))
                        .format("%Y-%m-%d")
                        .to_string();
                    // Queued in date order: the order they start in.
                    new_run(
                        &pipeline,
                        "backfill",
                        &ds,
                        Some(batch.clone()),
                        parallel,
                        now + day,
                    )
                })
                .collect();
            queue_and_maybe_run(session, &pipeline, runs).await
        }
        PipelineStatement::Show => Box::pin(session.execute(SHOW_QUERY)).await,
        PipelineStatement::ShowCreate(pipeline) => {
            let (_, definition) = load(&lakehouse, &pipeline).await?;
            let schema = Arc::new(Schema::new(vec![Field::new(
                "Create Pipeline",
                DataType::Utf8,
                false,
            )]));
            let batch = RecordBatch::try_new(
                schema,
                vec![Arc::new(StringArray::from(vec![definition.sql()])) as ArrayRef],
            )
            .map_err(|e| TrinoError::internal(e.to_string()))?;
            Ok(Output::batch(batch))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_parse() {
        let Some(PipelineStatement::Create {
            name,
            schedule,
            properties,
            ..
        }) = parse(
            "CREATE PIPELINE Medallion SCHEDULE '*/5 * * * *' WITH (retries = 2, retry_delay = '1s')",
        )
        .unwrap()
        else {
            panic!()
        };
        assert_eq!(name, "medallion");
        assert_eq!(schedule, Some(Schedule::Cron("*/5 * * * *".into())));
        assert_eq!(properties["retries"], "2");
        let Some(PipelineStatement::Create { schedule, .. }) =
            parse("create pipeline p schedule every interval '30' second").unwrap()
        else {
            panic!()
        };
        assert_eq!(schedule, Some(Schedule::Every(30_000)));
        let Some(PipelineStatement::AddStep { pipeline, step }) = parse(
            "ALTER PIPELINE p ADD STEP gold AFTER silver, bronze WITH (timeout = '10s') AS \
             INSERT INTO t SELECT * FROM s WHERE d = DATE '${ds}';",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(pipeline, "p");
        assert_eq!(step.after, ["silver", "bronze"]);
        assert_eq!(step.timeout_ms, Some(10_000));
        assert_eq!(
            step.sql,
            "INSERT INTO t SELECT * FROM s WHERE d = DATE '${ds}'"
        );
        assert_eq!(
            parse("BACKFILL PIPELINE p FROM '2026-11-01' TO DATE '2026-11-07' PARALLEL 2").unwrap(),
            Some(PipelineStatement::Backfill {
                pipeline: "p".into(),
                from: "2026-11-01".into(),
                to: "2026-11-07".into(),
                parallel: 2
            })
        );
        assert_eq!(
            parse("run pipeline p for '2026-11-01'").unwrap(),
            Some(PipelineStatement::Run {
                pipeline: "p".into(),
                ds: Some("2026-11-01".into())
            })
        );
        assert_eq!(
            parse("ALTER PIPELINE p SET SCHEDULE NONE").unwrap(),
            Some(PipelineStatement::SetSchedule {
                pipeline: "p".into(),
                schedule: None
            })
        );
        assert_eq!(
            parse("SHOW PIPELINES").unwrap(),
            Some(PipelineStatement::Show)
        );
        assert!(parse("CREATE PIPELINE p SCHEDULE '99 * * * *'").is_err());
        assert!(parse("RUN PIPELINE p FOR '2026-13-01'").is_err());
        assert!(parse("ALTER PIPELINE p STOP").is_err());
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert!(check_step_sql("p", "SELECT 1").is_ok());
        assert!(check_step_sql("p", "SELECT * FROM t WHERE d = '${dss}'").is_err());
        assert!(check_step_sql("p", "RUN PIPELINE p").is_err());
        assert!(check_step_sql("p", "SELEC 1").is_err());
    }
}
