//! Table procedures: Trino's `ALTER TABLE t EXECUTE procedure(args) [WHERE …]` and the
//! connector procedures it calls with `CALL catalog.system.procedure(args)`.
//!
//! `rollback_to_snapshot` makes an earlier snapshot the current one; `expire_snapshots`
//! drops old ones; `remove_orphan_files` deletes files nothing references; `optimize`
//! merges small files.

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName, Statement,
    UnaryOperator, Value,
};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::catalog::lakehouse::QualifiedName;
use crate::dialect;
use crate::error::{ErrorCode, Result, TrinoError};
use crate::session::{Output, Session};

use super::{is_word, session_state};

/// `ALTER TABLE name EXECUTE procedure[(arguments)]`, as parsed.
#[derive(Debug)]
pub(crate) struct TableProcedure {
    table: ObjectName,
    procedure: String,
    arguments: Vec<(Option<String>, Expr)>,
    /// The `WHERE` condition after the call.
    condition: Option<Expr>,
}

/// Reads `ALTER TABLE t EXECUTE p(…)`; `None` for any other statement.
pub(crate) fn parse_alter_execute(sql: &str) -> Result<Option<TableProcedure>> {
    let significant = super::significant_tokens(sql)?;
    let significant: Vec<&Token> = significant.iter().collect();
    let [alter, table, ..] = significant.as_slice() else {
        return Ok(None);
    };
    if !is_word(alter, "ALTER") || !is_word(table, "TABLE") {
        return Ok(None);
    }
    let Some(execute) = significant.iter().position(|t| is_word(t, "EXECUTE")) else {
        return Ok(None);
    };
    let name: String = significant[2..execute]
        .iter()
        .map(|t| t.to_string())
        .collect();
    // The WHERE that follows the call (outside its parentheses).
    let mut depth = 0i32;
    let mut end = significant.len();
    for (i, token) in significant.iter().enumerate().skip(execute + 1) {
        match token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && is_word(token, "WHERE") => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let text = |tokens: &[&Token]| {
        tokens
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let call = text(&significant[execute + 1..end]);
    let condition = match significant.get(end + 1..) {
        Some(tokens) if !tokens.is_empty() => Some(condition(&text(tokens))?),
        _ => None,
    };
    let call = if call.trim_end().ends_with(')') {
        call
    } else {
        format!("{call}()")
    };
    let mut statements = dialect::parse_statements(&format!("CALL {call}"))?;
    let Some(Statement::Call(function)) = statements.pop() else {
        return Err(TrinoError::new(
            ErrorCode::SYNTAX_ERROR,
            format!("Expected a procedure call after EXECUTE: {call}"),
        ));
    };
    let table = super::parse_object_name(&name)?;
    Ok(Some(TableProcedure {
        table,
        procedure: function.name.to_string().to_ascii_lowercase(),
        arguments: arguments(&function)?,
        condition,
    }))
}

/// A `WHERE` condition, as written after a procedure call.
fn condition(text: &str) -> Result<Expr> {
    let statement = dialect::parse_statements(&format!("SELECT 1 WHERE {text}"))?.pop();
    if let Some(Statement::Query(query)) = statement {
        if let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = *query.body {
            if let Some(condition) = select.selection {
                return Ok(condition);
            }
        }
    }
    Err(TrinoError::new(
        ErrorCode::SYNTAX_ERROR,
        format!("Expected a condition after WHERE: {text}"),
    ))
}

fn arguments(function: &Function) -> Result<Vec<(Option<String>, Expr)>> {
    let FunctionArguments::List(list) = &function.args else {
        return Ok(Vec::new());
    };
    list.args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok((None, e.clone())),
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(e),
                ..
            } => Ok((Some(name.value.to_ascii_lowercase()), e.clone())),
            other => Err(TrinoError::new(
                ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                format!("Invalid procedure argument: {other}"),
            )),
        })
        .collect()
}

/// Runs `ALTER TABLE … EXECUTE …`.
pub(crate) async fn execute(session: &Session, procedure: TableProcedure) -> Result<Output> {
    let name = session.qualify(&procedure.table)?;
    let table = crate::access::table_name(&name);
    session.check_access(|rules, who| {
        rules.check_can_execute_table_procedure(who, &table, &procedure.procedure)
    })?;
    if procedure.condition.is_some() && procedure.procedure != "optimize" {
        return Err(TrinoError::not_supported(format!(
            "WHERE not supported for procedure {}",
            procedure.procedure
        )));
    }
    match procedure.procedure.as_str() {
        "optimize" => {
            let threshold = match procedure.arguments.as_slice() {
                [] => 100 << 20,
                [(name, value)] if name.as_deref().is_none_or(|n| n == "file_size_threshold") => {
                    let text = text_argument(value)?;
                    data_size(&text).ok_or_else(|| {
                        TrinoError::new(
                            ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                            format!("Invalid data size: {text}"),
                        )
                    })?
                }
                _ => {
                    return Err(TrinoError::new(
                        ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                        "optimize takes one argument: file_size_threshold",
                    ))
                }
            };
            let condition = procedure.condition;
            super::change::replanned(|| {
                super::change::optimize(session, &procedure.table, threshold, condition.clone())
            })
            .await?;
            // The rows added since the table's indexes were built are folded into them.
            session
                .lakehouse()
                .format(&name.catalog)?
                .refresh_indexes(&name.schema, &name.name)
                .await?;
            Ok(Output::update("ALTER TABLE EXECUTE"))
        }
        "rollback_to_snapshot" => {
            let [(_, snapshot)] = procedure.arguments.as_slice() else {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                    "rollback_to_snapshot takes one argument: the snapshot id",
                ));
            };
            rollback(session, &name, snapshot).await?;
            Ok(Output::update("ALTER TABLE EXECUTE"))
        }
        "expire_snapshots" => {
            let older_than = retention_cutoff(session, &procedure, "expire-snapshots")?;
            let format = existing_table(session, &name).await?;
            format
                .expire_snapshots(&name.schema, &name.name, older_than)
                .await?;
            Ok(Output::update("ALTER TABLE EXECUTE"))
        }
        "remove_orphan_files" => {
            let older_than = retention_cutoff(session, &procedure, "remove-orphan-files")?;
            let format = existing_table(session, &name).await?;
            format
                .remove_orphan_files(&name.schema, &name.name, older_than)
                .await?;
            Ok(Output::update("ALTER TABLE EXECUTE"))
        }
        "create_vector_index" | "create_text_index" | "drop_index" => {
            let change = super::indexes::index_change(&procedure.procedure, &procedure.arguments)?;
            let format = existing_table(session, &name).await?;
            format
                .change_index(&name.schema, &name.name, change)
                .await?;
            Ok(Output::update("ALTER TABLE EXECUTE"))
        }
        other => Err(TrinoError::new(
            ErrorCode::PROCEDURE_NOT_FOUND,
            format!("Table procedure not registered: {other}"),
        )),
    }
}

/// The format of the existing table `name`.
async fn existing_table(
    session: &Session,
    name: &QualifiedName,
) -> Result<std::sync::Arc<dyn aichemy_tables::TableFormat>> {
    let format = session.lakehouse().format(&name.catalog)?.clone();
    if format.load_table(&name.schema, &name.name).await?.is_none() {
        return Err(TrinoError::table_not_found(&name.to_string()));
    }
    Ok(format)
}

/// The time (milliseconds since the epoch) before which a procedure with a
/// `retention_threshold` argument (default 7 days) may remove things: refused when the
/// threshold is under the session's `iceberg.<procedure>_min_retention` (`setting` is the
/// configuration name Trino gives it, `expire-snapshots`).
fn retention_cutoff(session: &Session, procedure: &TableProcedure, setting: &str) -> Result<i64> {
    let name = &procedure.procedure;
    let retention = match procedure.arguments.as_slice() {
        [] => "7d".to_string(),
        [(argument, value)]
            if argument
                .as_deref()
                .is_none_or(|n| n == "retention_threshold") =>
        {
            text_argument(value)?
        }
        _ => {
            return Err(TrinoError::new(
                ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                format!("{name} takes one argument: retention_threshold"),
            ))
        }
    };
    let retention = duration(&retention)?;
    check_retention(
        session,
        retention,
        &format!("iceberg.{name}_min_retention"),
        &format!("iceberg.{setting}.min-retention"),
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(now.saturating_sub(retention).as_millis() as i64)
}

/// A duration argument as Trino writes one (`7d`, `1.5h`).
fn duration(text: &str) -> Result<std::time::Duration> {
    session_state::parse_duration(text).ok_or_else(|| {
        TrinoError::new(
            ErrorCode::INVALID_PROCEDURE_ARGUMENT,
            format!("Invalid duration: {text}"),
        )
    })
}

/// Refuses a retention under the session's `property` (its default when unset) as Trino
/// does, naming the `configuration` property that sets the minimum.
fn check_retention(
    session: &Session,
    retention: std::time::Duration,
    property: &str,
    configuration: &str,
) -> Result<()> {
    let minimum =
        session_state::duration_property(&session.properties, property).unwrap_or_default();
    if retention < minimum {
        return Err(TrinoError::new(
            ErrorCode::INVALID_PROCEDURE_ARGUMENT,
            format!(
                "Retention specified ({}) is shorter than the minimum retention configured in \
                 the system ({}). Minimum retention can be changed with {configuration} \
                 configuration property or {property} session property",
                session_state::duration_text(retention),
                session_state::duration_text(minimum)
            ),
        ));
    }
    Ok(())
}

/// Runs `CALL catalog.system.procedure(…)`.
pub(crate) async fn call(session: &Session, function: Function) -> Result<Output> {
    let parts: Vec<String> = function
        .name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(|i| i.value.to_ascii_lowercase())
                .unwrap_or_else(|| p.to_string())
        })
        .collect();
    let (catalog, procedure) = match parts.as_slice() {
        [system, runtime, kill]
            if system == "system" && runtime == "runtime" && kill == "kill_query" =>
        {
            return kill_query(session, &arguments(&function)?);
        }
        [catalog, system, procedure] if system == "system" => (catalog.clone(), procedure.clone()),
        [system, procedure] if system == "system" => (
            session.scope().catalog.map(str::to_string).ok_or_else(|| {
                TrinoError::new(
                    ErrorCode::GENERIC_USER_ERROR,
                    "Catalog must be specified when session catalog is not set",
                )
            })?,
            procedure.clone(),
        ),
        _ => {
            return Err(TrinoError::new(
                ErrorCode::PROCEDURE_NOT_FOUND,
                format!("Procedure not registered: {}", function.name),
            ))
        }
    };
    let arguments = arguments(&function)?;
    match procedure.as_str() {
        "rollback_to_snapshot" => {
            let [(_, schema), (_, table), (_, snapshot)] = arguments.as_slice() else {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                    "rollback_to_snapshot takes the schema, the table and the snapshot id",
                ));
            };
            let name = crate::catalog::lakehouse::QualifiedName {
                catalog,
                schema: text_argument(schema)?,
                name: text_argument(table)?,
            };
            rollback(session, &name, snapshot).await?;
            Ok(Output::update("CALL"))
        }
        "vacuum" => {
            let [(_, schema), (_, table), (_, retention)] = arguments.as_slice() else {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                    "vacuum takes the schema, the table and the retention",
                ));
            };
            let name = crate::catalog::lakehouse::QualifiedName {
                catalog,
                schema: text_argument(schema)?,
                name: text_argument(table)?,
            };
            let retention = duration(&text_argument(retention)?)?;
            check_retention(
                session,
                retention,
                &format!("{}.vacuum_min_retention", name.catalog),
                "delta.vacuum.min-retention",
            )?;
            let format = existing_table(session, &name).await?;
            format.vacuum(&name.schema, &name.name, retention).await?;
            Ok(Output::update("CALL"))
        }
        other => Err(TrinoError::new(
            ErrorCode::PROCEDURE_NOT_FOUND,
            format!("Procedure not registered: {catalog}.system.{other}"),
        )),
    }
}

/// `CALL system.runtime.kill_query(query_id => '…', message => '…')`, as Trino's: the
/// message is optional; the caller must own the query or be allowed to kill its owner's.
fn kill_query(session: &Session, arguments: &[(Option<String>, Expr)]) -> Result<Output> {
    let mut query_id = None;
    let mut message = None;
    for (position, (name, value)) in arguments.iter().enumerate() {
        let slot = match (name.as_deref(), position) {
            (Some("query_id"), _) | (None, 0) => &mut query_id,
            (Some("message"), _) | (None, 1) => &mut message,
            (Some(other), _) => {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                    format!("Unknown argument name: {other}"),
                ))
            }
            (None, _) => {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                    "Too many arguments for procedure",
                ))
            }
        };
        *slot = match value {
            Expr::Value(v) if matches!(v.value, Value::Null) => None,
            value => Some(text_argument(value)?),
        };
    }
    let query_id = query_id.ok_or_else(|| {
        TrinoError::new(
            ErrorCode::INVALID_PROCEDURE_ARGUMENT,
            "query_id cannot be null",
        )
    })?;
    session
        .lakehouse()
        .kill_query(&session.user, &query_id, message.as_deref())?;
    Ok(Output::update("CALL"))
}

pub(super) fn text_argument(expr: &Expr) -> Result<String> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(s) => Ok(s.clone()),
            _ => Err(invalid_argument(expr)),
        },
        _ => Err(invalid_argument(expr)),
    }
}

/// Bytes of a data size as Trino writes one (`128MB`, `1.5GB`, `512kB`, `100B`; binary
/// units); `None` when it is not one.
fn data_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let scale: u64 = match unit {
        "B" => 1,
        "kB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        "PB" => 1 << 50,
        _ => return None,
    };
    (number.is_finite() && number >= 0.0).then_some((number * scale as f64) as u64)
}

pub(super) fn invalid_argument(expr: &Expr) -> TrinoError {
    TrinoError::new(
        ErrorCode::INVALID_PROCEDURE_ARGUMENT,
        format!("Invalid procedure argument: {expr}"),
    )
}

pub(super) fn bigint_argument(expr: &Expr) -> Result<i64> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::Number(n, _) => n.parse().map_err(|_| invalid_argument(expr)),
            _ => Err(invalid_argument(expr)),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: inner,
        } => bigint_argument(inner).map(|n| -n),
        _ => Err(invalid_argument(expr)),
    }
}

async fn rollback(
    session: &Session,
    name: &crate::catalog::lakehouse::QualifiedName,
    snapshot: &Expr,
) -> Result<()> {
    let snapshot = bigint_argument(snapshot)?;
    let format = session
        .lakehouse()
        .catalog(&name.catalog)?
        .table_format()?
        .ok_or_else(|| {
            TrinoError::not_supported(format!(
                "Procedure rollback_to_snapshot is not supported for catalog '{}'",
                name.catalog
            ))
        })?;
    format.rollback(&name.schema, &name.name, snapshot).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::data_size;

    #[test]
    fn data_sizes_read_as_trinos() {
        assert_eq!(data_size("128MB"), Some(128 << 20));
        assert_eq!(data_size("1.5GB"), Some(3 << 29));
        assert_eq!(data_size("512kB"), Some(512 << 10));
        assert_eq!(data_size("100B"), Some(100));
        assert_eq!(data_size("10mb"), None);
        assert_eq!(data_size("lots"), None);
        assert_eq!(data_size("-1MB"), None);
    }
}
