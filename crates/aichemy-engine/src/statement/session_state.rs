//! Statements about the session itself rather than about data: prepared statements
//! (`PREPARE`, `EXECUTE`, `DEALLOCATE PREPARE`, `DESCRIBE INPUT|OUTPUT`) and session
//! properties (`SET SESSION`, `RESET SESSION`, `SHOW SESSION`).
//!
//! As in Trino, the server keeps neither: the client sends its prepared statements and
//! properties with every request and the server answers what changed (`X-Trino-Added-
//! Prepare`, `X-Trino-Set-Session`, …); [`Session`] holds them for one statement.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{Expr, Statement, Value};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Token};

use crate::catalog::metadata::{batch_of, Cell};
use crate::dialect::{self, dialect, syntax_error};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::planner::plan_statement;
use crate::session::{Output, Session};
use crate::statement::catalogs::{self, CatalogStatement};
use crate::statement::{family, is_word, show, Family};
use crate::types::trino_type_name;

/// A statement this module runs.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionStatement {
    Prepare { name: String, body: String },
    Deallocate { name: String },
    DescribeInput { name: String },
    DescribeOutput { name: String },
    SetSession { name: String, value: String },
    ResetSession { name: String },
    ShowSession,
}

/// A session property AIchemy knows and honours.
pub struct SessionProperty {
    pub name: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

/// Every system session property. Each one has an effect; a property that would be
/// accepted and then ignored is not listed.
pub const SESSION_PROPERTIES: &[SessionProperty] = &[
    SessionProperty {
        name: "query_max_run_time",
        default: "100.00d",
        description: "Maximum run time of a query (includes the queueing time)",
    },
    SessionProperty {
        name: "query_max_execution_time",
        default: "100.00d",
        description: "Maximum execution time of a query",
    },
    SessionProperty {
        name: "query_max_cpu_time",
        default: "1000000000.00d",
        description: "Maximum CPU time of a query",
    },
    SessionProperty {
        name: "iceberg.expire_snapshots_min_retention",
        default: "7.00d",
        description: "Minimal retention period for expire_snapshot procedure",
    },
    SessionProperty {
        name: "iceberg.remove_orphan_files_min_retention",
        default: "7.00d",
        description: "Minimal retention period for remove_orphan_files procedure",
    },
    SessionProperty {
        name: "delta.vacuum_min_retention",
        default: "7.00d",
        description: "Minimal retention period for vacuum procedure",
    },
];

/// A session's value of a duration property, else its default.
pub fn duration_property(properties: &BTreeMap<String, String>, name: &str) -> Option<Duration> {
    let property = SESSION_PROPERTIES.iter().find(|p| p.name == name)?;
    properties
        .get(name)
        .and_then(|value| parse_duration(value))
        .or_else(|| parse_duration(property.default))
}

/// A duration as Trino prints one: in its largest whole unit, with two decimals (`7.00d`,
/// `1.50h`, `30.00s`).
pub fn duration_text(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    for (unit, size) in [("d", 86_400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)] {
        if seconds >= size {
            return format!("{:.2}{unit}", seconds / size);
        }
    }
    format!("{:.2}ms", seconds * 1000.0)
}

/// The known property `name`; Trino's error for an unknown one.
fn session_property(name: &str) -> Result<&'static SessionProperty> {
    SESSION_PROPERTIES
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| {
            TrinoError::new(
                ErrorCode::INVALID_SESSION_PROPERTY,
                format!("Session property '{name}' does not exist"),
            )
        })
}

/// Checks a property name and value as `SET SESSION` and the session header need them.
pub fn check_session_property(name: &str, value: &str) -> Result<()> {
    let property = session_property(name)?;
    if parse_duration(value).is_none() {
        return Err(TrinoError::new(
            ErrorCode::INVALID_SESSION_PROPERTY,
            format!(
                "{} is invalid: duration is not a valid data duration string: {value}",
                property.name
            ),
        ));
    }
    Ok(())
}

/// The time limit a session's properties set (`query_max_run_time`,
/// `query_max_execution_time`: the smaller one), with its text for the error.
pub fn time_limit(properties: &BTreeMap<String, String>) -> Option<(Duration, String)> {
    ["query_max_run_time", "query_max_execution_time"]
        .iter()
        .filter_map(|name| properties.get(*name))
        .filter_map(|value| parse_duration(value).map(|d| (d, value.clone())))
        .min_by_key(|(d, _)| *d)
}

/// The CPU time limit a session's `query_max_cpu_time` sets, with its text for the error.
pub fn cpu_limit(properties: &BTreeMap<String, String>) -> Option<(Duration, String)> {
    let value = properties.get("query_max_cpu_time")?;
    parse_duration(value).map(|d| (d, value.clone()))
}

/// Trino's error for a query whose operators spent more CPU time than its limit.
pub fn cpu_limit_exceeded(limit: &str) -> TrinoError {
    TrinoError::new(
        ErrorCode::EXCEEDED_CPU_LIMIT,
        format!("Query exceeded the maximum CPU time limit of {limit}"),
    )
}

/// Trino's error for a query that ran past its time limit.
pub fn time_limit_exceeded(limit: &str) -> TrinoError {
    TrinoError::new(
        ErrorCode::EXCEEDED_TIME_LIMIT,
        format!("Query exceeded the maximum execution time limit of {limit}"),
    )
}

pub use aichemy_config::parse_duration;

/// The text of `sql` from the parser's next token to the end, without a trailing `;`: the
/// statement or query a statement carries (`PREPARE … FROM`, `… AS`). `clause` names it
/// for the error when there is none (`PREPARE needs a statement after FROM`).
pub(crate) fn rest_of(parser: &Parser, sql: &str, clause: &str) -> Result<String> {
    let start = parser.peek_token().span.start;
    let rest = sql[offset_of(sql, start)..]
        .trim()
        .trim_end_matches(';')
        .trim();
    if rest.is_empty() {
        return Err(TrinoError::new(ErrorCode::SYNTAX_ERROR, clause.to_string()));
    }
    Ok(rest.to_string())
}

/// The byte offset of a tokenizer location (1-based line and column, in characters).
fn offset_of(sql: &str, at: Location) -> usize {
    let mut line = 1;
    let mut column = 1;
    for (offset, c) in sql.char_indices() {
        if line == at.line && column == at.column {
            return offset;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    sql.len()
}

/// A statement name as Trino folds it: unquoted names are lower case.
pub(crate) fn statement_name(parser: &mut Parser) -> Result<String> {
    let ident = parser.parse_identifier().map_err(syntax_error)?;
    Ok(match ident.quote_style {
        Some(_) => ident.value,
        None => ident.value.to_lowercase(),
    })
}

/// Recognises the statements of this module; `None` for every other statement.
pub fn parse(sql: &str) -> Result<Option<SessionStatement>> {
    let dialect = dialect();
    let Ok(mut parser) = Parser::new(&dialect).try_with_sql(sql) else {
        return Ok(None);
    };
    let first = parser.peek_token().token;
    let second = parser.peek_nth_token(1).token;
    let statement = if is_word(&first, "PREPARE") {
        parser.next_token();
        let name = statement_name(&mut parser)?;
        parser.expect_keyword(Keyword::FROM).map_err(syntax_error)?;
        let body = rest_of(&parser, sql, "PREPARE needs a statement after FROM")?;
        SessionStatement::Prepare { name, body }
    } else if is_word(&first, "DEALLOCATE") && is_word(&second, "PREPARE") {
        parser.next_token();
        parser.next_token();
        SessionStatement::Deallocate {
            name: statement_name(&mut parser)?,
        }
    } else if (is_word(&first, "DESCRIBE") || is_word(&first, "DESC"))
        && (is_word(&second, "INPUT") || is_word(&second, "OUTPUT"))
    {
        parser.next_token();
        parser.next_token();
        let name = statement_name(&mut parser)?;
        if is_word(&second, "INPUT") {
            SessionStatement::DescribeInput { name }
        } else {
            SessionStatement::DescribeOutput { name }
        }
    } else if is_word(&first, "SET") && is_word(&second, "SESSION") {
        parser.next_token();
        parser.next_token();
        let name = parser.parse_object_name(false).map_err(syntax_error)?;
        parser.expect_token(&Token::Eq).map_err(syntax_error)?;
        let value = match parser.parse_expr().map_err(syntax_error)? {
            Expr::Value(value) => match value.value {
                Value::SingleQuotedString(s) => s,
                Value::Number(n, _) => n,
                Value::Boolean(b) => b.to_string(),
                other => other.to_string(),
            },
            other => {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_SESSION_PROPERTY,
                    format!("Session property value must be a constant: {other}"),
                ))
            }
        };
        SessionStatement::SetSession {
            name: name.to_string().to_lowercase(),
            value,
        }
    } else if is_word(&first, "RESET") && is_word(&second, "SESSION") {
        parser.next_token();
        parser.next_token();
        let name = parser.parse_object_name(false).map_err(syntax_error)?;
        SessionStatement::ResetSession {
            name: name.to_string().to_lowercase(),
        }
    } else if is_word(&first, "SHOW") && is_word(&second, "SESSION") {
        parser.next_token();
        parser.next_token();
        SessionStatement::ShowSession
    } else {
        return Ok(None);
    };
    while parser.consume_token(&Token::SemiColon) {}
    if !matches!(statement, SessionStatement::Prepare { .. })
        && parser.peek_token().token != Token::EOF
    {
        return Err(syntax_error(
            parser
                .expected::<()>("end of statement", parser.peek_token())
                .unwrap_err(),
        ));
    }
    Ok(Some(statement))
}

fn not_found(name: &str) -> TrinoError {
    TrinoError::new(
        ErrorCode::NOT_FOUND,
        format!("Prepared statement not found: {name}"),
    )
}

/// The text of a prepared statement.
pub fn prepared<'a>(session: &'a Session, name: &str) -> Result<&'a str> {
    session
        .prepared
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| not_found(name))
}

/// A prepared statement's text, read by the parser of its family.
pub enum Prepared {
    /// A statement of the dialect's parser (queries, DML, DDL).
    Sql(Box<Statement>),
    /// `CREATE CATALOG`, whose properties may be parameters.
    Catalog(CatalogStatement),
    /// SHOW, USE, SET SESSION, …: no parameters; run from the text.
    Other,
}

impl Prepared {
    /// How many `?` parameters the statement has.
    pub fn parameter_count(&self) -> usize {
        match self {
            Prepared::Sql(statement) => dialect::count_parameters(statement),
            Prepared::Catalog(statement) => statement.parameter_count(),
            Prepared::Other => 0,
        }
    }
}

/// A prepared statement's text parsed for `EXECUTE` and `DESCRIBE INPUT|OUTPUT` (a
/// prepared statement may also arrive in a client's header, unchecked).
pub fn prepared_statement(text: &str) -> Result<Prepared> {
    dialect::check_preparable(text)?;
    match family(text) {
        Family::Sql => {}
        Family::Catalog => {
            return Ok(catalogs::parse(text)?.map_or(Prepared::Other, Prepared::Catalog))
        }
        Family::SessionState => return parse(text).map(|_| Prepared::Other),
        Family::Show => return show::parse(text).map(|_| Prepared::Other),
        Family::Ingestion => return super::ingestions::parse(text).map(|_| Prepared::Other),
        Family::Materialized => return super::materialized::parse(text).map(|_| Prepared::Other),
        Family::Pipeline => return super::pipelines::parse(text).map(|_| Prepared::Other),
        Family::Grants => return super::grants::parse(text).map(|_| Prepared::Other),
    }
    let mut statements = dialect::parse_statements(text)?;
    if statements.len() != 1 {
        return Err(TrinoError::new(
            ErrorCode::SYNTAX_ERROR,
            "PREPARE takes exactly one statement",
        ));
    }
    Ok(Prepared::Sql(Box::new(statements.remove(0))))
}

/// Runs one statement of this module.
pub async fn execute(session: &mut Session, statement: SessionStatement) -> Result<Output> {
    match statement {
        SessionStatement::Prepare { name, body } => {
            // Refuse what does not parse now rather than at EXECUTE: queries, DML and DDL
            // are prepared.
            dialect::check_preparable(&body)?;
            if dialect::parse_statements(&body)?.len() != 1 {
                return Err(TrinoError::new(
                    ErrorCode::SYNTAX_ERROR,
                    "PREPARE takes exactly one statement",
                ));
            }
            session.prepared.insert(name, body);
            Ok(Output::update("PREPARE"))
        }
        SessionStatement::Deallocate { name } => {
            session
                .prepared
                .remove(&name)
                .ok_or_else(|| not_found(&name))?;
            Ok(Output::update("DEALLOCATE"))
        }
        SessionStatement::DescribeInput { name } => {
            let count = prepared_statement(prepared(session, &name)?)?.parameter_count();
            let schema = Arc::new(Schema::new(vec![
                Field::new("Position", DataType::Int64, false),
                Field::new("Type", DataType::Utf8, false),
            ]));
            // AIchemy types parameters from the values EXECUTE binds, so before that
            // their type is Trino's `unknown`.
            let rows: Vec<Vec<Cell>> = (0..count)
                .map(|i| vec![Cell::Number(i as i64), "unknown".into()])
                .collect();
            Ok(Output::batch(batch_of(schema, &rows)?))
        }
        SessionStatement::DescribeOutput { name } => describe_output(session, &name).await,
        SessionStatement::SetSession { name, value } => {
            check_session_property(&name, &value)?;
            session.properties.insert(name, value);
            Ok(Output::update("SET SESSION"))
        }
        SessionStatement::ResetSession { name } => {
            session_property(&name)?;
            session.properties.remove(&name);
            Ok(Output::update("RESET SESSION"))
        }
        SessionStatement::ShowSession => {
            let schema = Arc::new(Schema::new(
                ["Name", "Value", "Default", "Type", "Description"]
                    .iter()
                    .map(|n| Field::new(*n, DataType::Utf8, false))
                    .collect::<Vec<_>>(),
            ));
            let rows: Vec<Vec<Cell>> = SESSION_PROPERTIES
                .iter()
                .map(|p| {
                    let value = session.properties.get(p.name).map_or(p.default, |v| v);
                    vec![
                        p.name.into(),
                        value.into(),
                        p.default.into(),
                        "varchar".into(),
                        p.description.into(),
                    ]
                })
                .collect();
            Ok(Output::batch(batch_of(schema, &rows)?))
        }
    }
}

/// Bytes of a value of a fixed-width type, as Trino's `Type Size` column; 0 otherwise.
fn type_size(data_type: &DataType) -> i64 {
    match data_type {
        DataType::Boolean | DataType::Int8 => 1,
        DataType::Int16 => 2,
        DataType::Int32 | DataType::Float32 | DataType::Date32 => 4,
        DataType::Int64 | DataType::Float64 | DataType::Timestamp(..) | DataType::Time64(_) => 8,
        DataType::Decimal128(p, _) if *p <= 18 => 8,
        DataType::Decimal128(..) => 16,
        _ => 0,
    }
}

/// One output column of a prepared query: the table it comes from (catalog, schema,
/// table) when it is a plain column of one, its name and type.
struct OutputColumn {
    source: Option<(String, String, String)>,
    name: String,
    data_type: DataType,
}

/// The output columns of a prepared query: name, source table, type, size, whether
/// aliased. Statements without output (DDL) describe no columns.
async fn describe_output(session: &Session, name: &str) -> Result<Output> {
    let statement = match prepared_statement(prepared(session, name)?)? {
        Prepared::Sql(mut statement) => {
            let nulls =
                vec![Expr::Value(Value::Null.into()); dialect::count_parameters(&statement)];
            dialect::bind_parameters(&mut statement, &nulls)?;
            Some(*statement)
        }
        _ => None,
    };
    let fields: Vec<OutputColumn> = if let Some(statement @ Statement::Query(_)) = statement {
        let (plan, _) = plan_statement(session.lakehouse(), statement, session.scope(), 0).await?;
        let schema = plan.schema();
        (0..schema.fields().len())
            .map(|i| {
                let (qualifier, field) = schema.qualified_field(i);
                let source = qualifier.and_then(|q| {
                    Some((
                        q.catalog()
                            .map(str::to_string)
                            .or_else(|| session.catalog.clone())?,
                        q.schema()
                            .map(str::to_string)
                            .or_else(|| session.schema.clone())?,
                        q.table().to_string(),
                    ))
                });
                OutputColumn {
                    source,
                    name: field.name().clone(),
                    data_type: field.data_type().clone(),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let texts = |pick: &dyn Fn(&(String, String, String)) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            fields
                .iter()
                .map(|c| c.source.as_ref().map(pick).unwrap_or_default()),
        ))
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("Column Name", DataType::Utf8, false),
        Field::new("Catalog", DataType::Utf8, false),
        Field::new("Schema", DataType::Utf8, false),
        Field::new("Table", DataType::Utf8, false),
        Field::new("Type", DataType::Utf8, false),
        Field::new("Type Size", DataType::Int64, false),
        Field::new("Aliased", DataType::Boolean, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            fields.iter().map(|c| c.name.clone()),
        )),
        texts(&|s| s.0.clone()),
        texts(&|s| s.1.clone()),
        texts(&|s| s.2.clone()),
        Arc::new(StringArray::from_iter_values(
            fields.iter().map(|c| trino_type_name(&c.data_type)),
        )),
        Arc::new(Int64Array::from_iter_values(
            fields.iter().map(|c| type_size(&c.data_type)),
        )),
        Arc::new(BooleanArray::from_iter(fields.iter().map(|c| {
            Some(c.source.is_none() && !c.name.starts_with("_col"))
        }))),
    ];
    let batch =
        RecordBatch::try_new(schema, columns).map_err(|e| TrinoError::internal(e.to_string()))?;
    Ok(Output::batch(batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_recognised() {
        assert_eq!(
            parse("PREPARE St_1 FROM\n  SELECT * FROM t WHERE a = ?;").unwrap(),
            Some(SessionStatement::Prepare {
                name: "st_1".into(),
                body: "SELECT * FROM t WHERE a = ?".into()
            })
        );
        assert_eq!(
            parse("deallocate prepare st_1").unwrap(),
            Some(SessionStatement::Deallocate {
                name: "st_1".into()
            })
        );
        assert_eq!(
            parse("DESCRIBE OUTPUT x").unwrap(),
            Some(SessionStatement::DescribeOutput { name: "x".into() })
        );
        assert_eq!(
            parse("SET SESSION query_max_run_time = '10s'").unwrap(),
            Some(SessionStatement::SetSession {
                name: "query_max_run_time".into(),
                value: "10s".into()
            })
        );
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert_eq!(parse("DESCRIBE t").unwrap(), None);
        assert!(parse("DEALLOCATE PREPARE a b").is_err());
    }

    #[test]
    fn durations_read_as_trino_writes_them() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5m"), Some(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("100.00d"),
            Some(Duration::from_secs(8_640_000))
        );
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("10 parsecs"), None);
        assert!(check_session_property("query_max_run_time", "2h").is_ok());
        assert!(check_session_property("query_max_run_time", "soon").is_err());
        assert_eq!(duration_text(parse_duration("7d").unwrap()), "7.00d");
        assert_eq!(duration_text(parse_duration("90m").unwrap()), "1.50h");
        assert_eq!(duration_text(parse_duration("0s").unwrap()), "0.00ms");
        assert!(check_session_property("nope", "1s").is_err());
    }
}
