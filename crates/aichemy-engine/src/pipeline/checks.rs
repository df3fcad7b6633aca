//! Quality gates of a pipeline (replacing Great Expectations or dbt tests): checks on a
//! table, evaluated inside the run after a step (or after the last one), before anything is
//! published.
//!
//! ```text
//! ALTER PIPELINE p ADD CHECK name ON table [AFTER step] rule [WARN | QUARANTINE]
//! rule := NOT NULL (c, …) | UNIQUE (c, …) | ACCEPTED VALUES c IN (v, …)
//!       | RANGE c BETWEEN low AND high | ROW COUNT BETWEEN low AND high
//!       | FRESHNESS c WITHIN INTERVAL 'n' unit | FOREIGN KEY (c) REFERENCES other (k)
//!       | EXPECT (condition on each row) | ASSERT (condition)
//! ```
//!
//! Row rules (`NOT NULL`, `ACCEPTED VALUES`, `RANGE`, `FOREIGN KEY`, `EXPECT`) name the
//! rows that fail them (a NULL value passes every rule but `NOT NULL`, as dbt's tests
//! have it); the others judge the table as a whole. A failing check fails the run, so
//! nothing of it is published; under `WARN` it is only recorded; under `QUARANTINE` (row
//! rules) its failing rows move, within the run, to `<table>_quarantine` (the table's
//! columns, then `_check`, `_run_id` and `_quarantined_at`), and the run goes on with the
//! rows that passed. Quarantined rows are reprocessed with SQL: fixed there, inserted back,
//! deleted from the quarantine table.

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{Expr, ObjectName};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{PipelineDefinition, RunValues};
use crate::dialect::syntax_error;
use crate::error::{ErrorCode, Result, TrinoError};
use crate::session::{Output, Session};
use crate::statement::session_state::statement_name;
use crate::statement::take_word as word;
use crate::Lakehouse;

/// One check of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDefinition {
    pub name: String,
    /// The table, as written (resolved with the pipeline's catalog and schema).
    pub table: String,
    /// The step after which it is evaluated; after the last step when `None`.
    pub after: Option<String>,
    pub rule: CheckRule,
    /// Recorded only: a failure does not fail the run.
    pub warn: bool,
    /// A row rule's failing rows move to the quarantine table.
    pub quarantine: bool,
}

/// What a check expects. Expressions are kept as SQL text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckRule {
    NotNull(Vec<String>),
    Unique(Vec<String>),
    AcceptedValues {
        column: String,
        values: Vec<String>,
    },
    Range {
        column: String,
        low: String,
        high: String,
    },
    RowCount {
        low: String,
        high: String,
    },
    Freshness {
        column: String,
        within_ms: i64,
    },
    ForeignKey {
        column: String,
        table: String,
        key: String,
    },
    Expect(String),
    Assert(String),
}

/// How a check came out.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    /// `passed`, `failed`, `warned` or `quarantined`.
    pub state: &'static str,
    /// The rows that failed a row rule.
    pub failing_rows: Option<i64>,
    pub message: Option<String>,
}

fn idents(parser: &mut Parser) -> Result<Vec<String>> {
    parser.expect_token(&Token::LParen).map_err(syntax_error)?;
    let mut names = Vec::new();
    loop {
        names.push(parser.parse_identifier().map_err(syntax_error)?.to_string());
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen).map_err(syntax_error)?;
    Ok(names)
}

/// `low AND high` of a BETWEEN, as SQL text.
fn bounds(parser: &mut Parser) -> Result<(String, String)> {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    match parser.parse_expr().map_err(syntax_error)? {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => Ok((left.to_string(), right.to_string())),
        other => Err(TrinoError::new(
            ErrorCode::SYNTAX_ERROR,
            format!("Expected BETWEEN low AND high, not BETWEEN {other}"),
        )),
    }
}

fn parenthesized(parser: &mut Parser) -> Result<String> {
    parser.expect_token(&Token::LParen).map_err(syntax_error)?;
    let expr: Expr = parser.parse_expr().map_err(syntax_error)?;
    parser.expect_token(&Token::RParen).map_err(syntax_error)?;
    Ok(expr.to_string())
}

/// The rule after `ON table [AFTER step]`.
pub(crate) fn parse_rule(parser: &mut Parser) -> Result<CheckRule> {
    if parser.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
        return Ok(CheckRule::NotNull(idents(parser)?));
    }
    if parser.parse_keyword(Keyword::UNIQUE) {
        return Ok(CheckRule::Unique(idents(parser)?));
    }
    if word(parser, "ACCEPTED") {
        parser
            .expect_keyword(Keyword::VALUES)
            .map_err(syntax_error)?;
        let column = parser.parse_identifier().map_err(syntax_error)?.to_string();
        parser.expect_keyword(Keyword::IN).map_err(syntax_error)?;
        parser.expect_token(&Token::LParen).map_err(syntax_error)?;
        let values = parser
            .parse_comma_separated(|p| p.parse_expr())
            .map_err(syntax_error)?
            .iter()
            .map(|e| e.to_string())
            .collect();
        parser.expect_token(&Token::RParen).map_err(syntax_error)?;
        return Ok(CheckRule::AcceptedValues { column, values });
    }
    if word(parser, "RANGE") {
        let column = parser.parse_identifier().map_err(syntax_error)?.to_string();
        parser
            .expect_keyword(Keyword::BETWEEN)
            .map_err(syntax_error)?;
        let (low, high) = bounds(parser)?;
        return Ok(CheckRule::Range { column, low, high });
    }
    if word(parser, "ROW") {
        if !word(parser, "COUNT") {
            return Err(expected(parser));
        }
        parser
            .expect_keyword(Keyword::BETWEEN)
            .map_err(syntax_error)?;
        let (low, high) = bounds(parser)?;
        return Ok(CheckRule::RowCount { low, high });
    }
    if word(parser, "FRESHNESS") {
        let column = parser.parse_identifier().map_err(syntax_error)?.to_string();
        if !word(parser, "WITHIN") {
            return Err(expected(parser));
        }
        let interval = parser.parse_expr().map_err(syntax_error)?;
        let within_ms =
            crate::statement::materialized::interval_millis(&interval, "FRESHNESS WITHIN")?;
        return Ok(CheckRule::Freshness { column, within_ms });
    }
    if parser.parse_keywords(&[Keyword::FOREIGN, Keyword::KEY]) {
        let [column] = <[String; 1]>::try_from(idents(parser)?).map_err(|_| {
            TrinoError::new(ErrorCode::SYNTAX_ERROR, "FOREIGN KEY names one column")
        })?;
        parser
            .expect_keyword(Keyword::REFERENCES)
            .map_err(syntax_error)?;
        let table = parser
            .parse_object_name(false)
            .map_err(syntax_error)?
            .to_string();
        let [key] = <[String; 1]>::try_from(idents(parser)?)
            .map_err(|_| TrinoError::new(ErrorCode::SYNTAX_ERROR, "REFERENCES names one column"))?;
        return Ok(CheckRule::ForeignKey { column, table, key });
    }
    if word(parser, "EXPECT") {
        return Ok(CheckRule::Expect(parenthesized(parser)?));
    }
    if word(parser, "ASSERT") {
        return Ok(CheckRule::Assert(parenthesized(parser)?));
    }
    Err(expected(parser))
}

fn expected(parser: &mut Parser) -> TrinoError {
    TrinoError::new(
        ErrorCode::SYNTAX_ERROR,
        format!(
            "mismatched input '{}'. Expecting: NOT NULL, UNIQUE, ACCEPTED VALUES, RANGE, ROW \
             COUNT, FRESHNESS, FOREIGN KEY, EXPECT or ASSERT",
            parser.peek_token().token
        ),
    )
}

/// `ADD CHECK name ON table [AFTER step] rule [WARN | QUARANTINE]`, after `ADD CHECK`.
pub(crate) fn parse_check(parser: &mut Parser) -> Result<CheckDefinition> {
    let name = statement_name(parser)?;
    parser.expect_keyword(Keyword::ON).map_err(syntax_error)?;
    let table = parser
        .parse_object_name(false)
        .map_err(syntax_error)?
        .to_string();
    let after = if word(parser, "AFTER") {
        Some(statement_name(parser)?)
    } else {
        None
    };
    let rule = parse_rule(parser)?;
    let warn = word(parser, "WARN");
    let quarantine = !warn && word(parser, "QUARANTINE");
    let check = CheckDefinition {
        name,
        table,
        after,
        rule,
        warn,
        quarantine,
    };
    if check.quarantine && check.rule.failing_rows("t").is_none() {
        return Err(TrinoError::new(
            ErrorCode::INVALID_ARGUMENTS,
            format!(
                "Check '{}' judges the table as a whole: only NOT NULL, ACCEPTED VALUES, RANGE, \
                 FOREIGN KEY and EXPECT checks can quarantine rows",
                check.name
            ),
        ));
    }
    Ok(check)
}

/// A check as `ADD CHECK` takes it, from text (a manifest's `checks`).
pub fn parse_check_clause(text: &str) -> Result<CheckDefinition> {
    let dialect = crate::dialect::dialect();
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(syntax_error)?;
    let check = parse_check(&mut parser)?;
    crate::statement::expect_end(&mut parser)?;
    Ok(check)
}

impl CheckRule {
    /// The condition naming the rows of `table` (its alias) that fail a row rule;
    /// `None` for the rules on the whole table.
    pub fn failing_rows(&self, table: &str) -> Option<String> {
        Some(match self {
            CheckRule::NotNull(columns) => columns
                .iter()
                .map(|c| format!("{c} IS NULL"))
                .collect::<Vec<_>>()
                .join(" OR "),
            CheckRule::AcceptedValues { column, values } => {
                format!("{column} IS NOT NULL AND {column} NOT IN ({})", values.join(", "))
            }
            CheckRule::Range { column, low, high } => {
                format!("{column} IS NOT NULL AND NOT ({column} BETWEEN {low} AND {high})")
            }
            CheckRule::ForeignKey {
                column,
                table: other,
                key,
            } => format!(
                "{table}.{column} IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM {other} referenced_rows_ WHERE referenced_rows_.{key} = {table}.{column})"
            ),
            CheckRule::Expect(condition) => format!("NOT coalesce(({condition}), true)"),
            CheckRule::Unique(_)
            | CheckRule::RowCount { .. }
            | CheckRule::Freshness { .. }
            | CheckRule::Assert(_) => return None,
        })
    }

    /// The query answering whether a table rule holds (a boolean); `None` for row rules.
    fn holds(&self, table: &str) -> Option<String> {
        Some(match self {
            CheckRule::Unique(columns) => {
                // As dbt's test: rows with a NULL key are not compared.
                let present = columns
                    .iter()
                    .map(|c| format!("{c} IS NOT NULL"))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                let columns = columns.join(", ");
                format!(
                    "SELECT count(*) = 0 FROM (SELECT {columns} FROM {table} WHERE {present} \
                     GROUP BY {columns} HAVING count(*) > 1)"
                )
            }
            CheckRule::RowCount { low, high } => {
                format!("SELECT count(*) BETWEEN {low} AND {high} FROM {table}")
            }
            CheckRule::Freshness { column, within_ms } => format!(
                "SELECT coalesce(CAST(max({column}) AS TIMESTAMP(6)) >= \
                 CAST(current_timestamp AS TIMESTAMP(6)) - INTERVAL '{}' SECOND, false) \
                 FROM {table}",
                *within_ms as f64 / 1000.0
            ),
            CheckRule::Assert(condition) => format!("SELECT coalesce(({condition}), false)"),
            _ => return None,
        })
    }

    /// The rule as `SHOW CREATE PIPELINE` writes it.
    pub fn sql(&self) -> String {
        match self {
            CheckRule::NotNull(columns) => format!("NOT NULL ({})", columns.join(", ")),
            CheckRule::Unique(columns) => format!("UNIQUE ({})", columns.join(", ")),
            CheckRule::AcceptedValues { column, values } => {
                format!("ACCEPTED VALUES {column} IN ({})", values.join(", "))
            }
            CheckRule::Range { column, low, high } => {
                format!("RANGE {column} BETWEEN {low} AND {high}")
            }
            CheckRule::RowCount { low, high } => format!("ROW COUNT BETWEEN {low} AND {high}"),
            CheckRule::Freshness { column, within_ms } => format!(
                "FRESHNESS {column} WITHIN {}",
                crate::statement::materialized::interval_text(*within_ms)
            ),
            CheckRule::ForeignKey { column, table, key } => {
                format!("FOREIGN KEY ({column}) REFERENCES {table} ({key})")
            }
            CheckRule::Expect(condition) => format!("EXPECT ({condition})"),
            CheckRule::Assert(condition) => format!("ASSERT ({condition})"),
        }
    }
}

impl CheckDefinition {
    /// The clause `SHOW CREATE PIPELINE` writes after `ADD CHECK`.
    pub fn sql(&self) -> String {
        let mut text = format!("{} ON {}", self.name, self.table);
        if let Some(after) = &self.after {
            text.push_str(&format!(" AFTER {after}"));
        }
        text.push_str(&format!(" {}", self.rule.sql()));
        if self.warn {
            text.push_str(" WARN");
        }
        if self.quarantine {
            text.push_str(" QUARANTINE");
        }
        text
    }

    /// The quarantine table's name: the table's, with `_quarantine` after its last part.
    fn quarantine_table(&self) -> Result<String> {
        let mut name: ObjectName = crate::statement::parse_object_name(&self.table)?;
        let last = name.0.len() - 1;
        let part = name.0[last].to_string();
        let quoted = part.starts_with('"');
        let bare = part.trim_matches('"').replace("\"\"", "\"");
        let new = format!("{bare}_quarantine");
        name.0[last] = datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(match quoted {
            true => datafusion::sql::sqlparser::ast::Ident::with_quote('"', new),
            false => datafusion::sql::sqlparser::ast::Ident::new(new),
        });
        Ok(name.to_string())
    }

    /// Evaluates the check in the run's session (its writes staged with the run's).
    pub(crate) async fn evaluate(
        &self,
        lakehouse: &Arc<Lakehouse>,
        definition: &PipelineDefinition,
        values: &RunValues,
    ) -> Result<CheckOutcome> {
        let mut session = Session::new(lakehouse.clone(), definition.owner.clone());
        session.catalog = definition.catalog.clone();
        session.schema = definition.schema.clone();
        let table = &self.table;
        let alias = "checked_rows_";
        let failed = |message: String, rows: Option<i64>| CheckOutcome {
            state: if self.warn { "warned" } else { "failed" },
            failing_rows: rows,
            message: Some(message),
        };
        if let Some(condition) = self.rule.failing_rows(alias) {
            let count = scalar(
                &mut session,
                &format!("SELECT count(*) FROM {table} {alias} WHERE {condition}"),
            )
            .await?
            .parse::<i64>()
            .map_err(|_| TrinoError::internal("a check's count was not a number"))?;
            if count == 0 {
                return Ok(passed());
            }
            if !self.quarantine {
                return Ok(failed(
                    format!("{count} rows of {table} fail {}", self.rule.sql()),
                    Some(count),
                ));
            }
            let quarantine = self.quarantine_table()?;
            let extra = format!(
                "CAST('{}' AS VARCHAR) AS _check, CAST('{}' AS VARCHAR) AS _run_id, \
                 current_timestamp AS _quarantined_at",
                self.name.replace('\'', "''"),
                values.run_id
            );
            execute(
                &mut session,
                &format!(
                    "CREATE TABLE IF NOT EXISTS {quarantine} AS SELECT *, {extra} FROM {table} \
                     WHERE false"
                ),
            )
            .await?;
            execute(
                &mut session,
                &format!(
                    "INSERT INTO {quarantine} SELECT *, {extra} FROM {table} {alias} WHERE {condition}"
                ),
            )
            .await?;
            // The same rows, named by the table itself in a DELETE.
            let bare = self
                .rule
                .failing_rows(&last_part(table))
                .unwrap_or_default();
            execute(&mut session, &format!("DELETE FROM {table} WHERE {bare}")).await?;
            return Ok(CheckOutcome {
                state: "quarantined",
                failing_rows: Some(count),
                message: Some(format!("{count} rows moved to {quarantine}")),
            });
        }
        let query = self.rule.holds(table).unwrap_or_default();
        match scalar(&mut session, &query).await?.as_str() {
            "true" => Ok(passed()),
            _ => Ok(failed(format!("{table} fails {}", self.rule.sql()), None)),
        }
    }
}

fn passed() -> CheckOutcome {
    CheckOutcome {
        state: "passed",
        failing_rows: None,
        message: None,
    }
}

fn last_part(table: &str) -> String {
    crate::statement::parse_object_name(table)
        .ok()
        .and_then(|name| name.0.last().map(|p| p.to_string()))
        .unwrap_or_else(|| table.to_string())
}

async fn execute(session: &mut Session, sql: &str) -> Result<()> {
    let output = session.execute(sql).await?;
    crate::session::collect(output).await?;
    Ok(())
}

/// The first value of the first row `sql` answers, as text (`""` for none or NULL).
async fn scalar(session: &mut Session, sql: &str) -> Result<String> {
    let Output::Rows { mut stream, .. } = session.execute(sql).await? else {
        return Err(TrinoError::internal("a check's query answered no rows"));
    };
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if batch.num_rows() > 0 {
            let cells = crate::format::batch_cells(&batch)?;
            return Ok(cells[0][0].clone().unwrap_or_default());
        }
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Result<CheckDefinition> {
        let dialect = crate::dialect::dialect();
        let mut parser = Parser::new(&dialect).try_with_sql(sql).unwrap();
        parse_check(&mut parser)
    }

    #[test]
    fn every_rule_reads_and_writes_back() {
        for text in [
            "c1 ON silver.orders NOT NULL (id, amount)",
            "c2 ON orders AFTER silver UNIQUE (id)",
            "c3 ON orders ACCEPTED VALUES status IN ('open', 'done') QUARANTINE",
            "c4 ON orders RANGE amount BETWEEN 0 AND 1000 WARN",
            "c5 ON orders ROW COUNT BETWEEN 1 AND 10",
            "c6 ON orders FRESHNESS ts WITHIN INTERVAL '1' DAY",
            "c7 ON orders FOREIGN KEY (customer) REFERENCES customers (id)",
            "c8 ON orders EXPECT (amount >= 0 AND day <= current_date)",
            "c9 ON orders ASSERT ((SELECT count(*) FROM orders) > 0)",
        ] {
            assert_eq!(parse(text).unwrap().sql(), text);
        }
        assert!(parse("c ON t UNIQUE (id) QUARANTINE").is_err());
        assert!(parse("c ON t SOMETHING (id)").is_err());
        let check = parse("c ON s.orders NOT NULL (id)").unwrap();
        assert_eq!(check.quarantine_table().unwrap(), "s.orders_quarantine");
        assert_eq!(
            CheckRule::Range {
                column: "a".into(),
                low: "0".into(),
                high: "1".into()
            }
            .failing_rows("t")
            .unwrap(),
            "a IS NOT NULL AND NOT (a BETWEEN 0 AND 1)"
        );
    }
}
