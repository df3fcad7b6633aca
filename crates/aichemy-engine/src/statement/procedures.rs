//! Table procedures: Trino's `ALTER TABLE t EXECUTE procedure(args) [WHERE …]` and the
//! connector procedures it calls with `CALL catalog.system.procedure(args)`.
//!
//! `rollback_to_snapshot` makes an earlier snapshot the current one.

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName, Statement,
    UnaryOperator, Value,
};
use datafusion::sql::sqlparser::tokenizer::Token;

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
    let call: String = significant[execute + 1..]
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    if call.to_ascii_uppercase().contains(" WHERE ") {
        return Err(TrinoError::not_supported(
            "Table procedures with a WHERE clause are not supported yet",
        ));
    }
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
    }))
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
    match procedure.procedure.as_str() {
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
            let retention = match procedure.arguments.as_slice() {
                [] => "7d".to_string(),
                [(name, value)] if name.as_deref().is_none_or(|n| n == "retention_threshold") => {
                    text_argument(value)?
                }
                _ => {
                    return Err(TrinoError::new(
                        ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                        "expire_snapshots takes one argument: retention_threshold",
                    ))
                }
            };
            let retention = session_state::parse_duration(&retention).ok_or_else(|| {
                TrinoError::new(
                    ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                    format!("Invalid duration: {retention}"),
                )
            })?;
            let minimum = session_state::duration_property(
                &session.properties,
                "iceberg.expire_snapshots_min_retention",
            )
            .unwrap_or_default();
            if retention < minimum {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_PROCEDURE_ARGUMENT,
                    format!(
                        "Retention specified ({}) is shorter than the minimum retention \
                         configured in the system ({}). Minimum retention can be changed with \
                         iceberg.expire-snapshots.min-retention configuration property or \
                         iceberg.expire_snapshots_min_retention session property",
                        session_state::duration_text(retention),
                        session_state::duration_text(minimum)
                    ),
                ));
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let older_than = now.saturating_sub(retention).as_millis() as i64;
            let format = session.lakehouse().format(&name.catalog)?;
            if format.load_table(&name.schema, &name.name).await?.is_none() {
                return Err(TrinoError::table_not_found(&name.to_string()));
            }
            format
                .expire_snapshots(&name.schema, &name.name, older_than)
                .await?;
            Ok(Output::update("ALTER TABLE EXECUTE"))
        }
        other => Err(TrinoError::new(
            ErrorCode::PROCEDURE_NOT_FOUND,
            format!("Table procedure not registered: {other}"),
        )),
    }
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
        other => Err(TrinoError::new(
            ErrorCode::PROCEDURE_NOT_FOUND,
            format!("Procedure not registered: {catalog}.system.{other}"),
        )),
    }
}

fn text_argument(expr: &Expr) -> Result<String> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(s) => Ok(s.clone()),
            _ => Err(invalid_argument(expr)),
        },
        _ => Err(invalid_argument(expr)),
    }
}

fn invalid_argument(expr: &Expr) -> TrinoError {
    TrinoError::new(
        ErrorCode::INVALID_PROCEDURE_ARGUMENT,
        format!("Invalid procedure argument: {expr}"),
    )
}

fn bigint_argument(expr: &Expr) -> Result<i64> {
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
