//! The checks a parsed statement makes before it runs: the privilege its writes, drops and
//! definitions need on their target (what it reads is checked as it is read). On a table
//! with a row filter or column masks for the user, a DELETE deletes only rows the filter
//! keeps (the filter joins its WHERE) and the rest is refused as Trino refuses it.

use aichemy_access::TableName;
use datafusion::sql::sqlparser::ast::{
    AlterTableOperation, Assignment, BinaryOperator, CommentObject, Expr as SqlExpr, FromTable,
    MergeAction, ObjectName, ObjectType, SchemaName, SetExpr, Statement, TableFactor, TableObject,
    TableWithJoins,
};

use super::{table_name, Access};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::session::Session;
use crate::statement::ddl::schema_name;

/// Checks `statement`'s writes and definitions for `session`'s user; a DELETE's condition
/// gains the user's row filter.
pub(crate) fn check(session: &Session, statement: &mut Statement) -> Result<()> {
    let Some(access) = session.access()? else {
        return Ok(());
    };
    let table =
        |name: &ObjectName| -> Result<TableName> { Ok(table_name(&session.qualify(name)?)) };
    match statement {
        // EXPLAIN needs what the statement it explains needs.
        Statement::Explain { statement, .. } => return check(session, statement),
        Statement::Insert(insert) => {
            if let TableObject::TableName(name) = &insert.table {
                let t = table(name)?;
                access.check(|p, who| p.check_can_insert(who, &t))?;
                if masked(&access, &t) {
                    return Err(refused(
                        "Insert into table with column masks is not supported",
                    ));
                }
            }
        }
        Statement::Delete(delete) => {
            let tables = match &delete.from {
                FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables) => tables,
            };
            for name in tables.iter().filter_map(changed_table) {
                let t = table(name)?;
                access.check(|p, who| p.check_can_delete(who, &t))?;
                // The condition reads the table: SELECT on what it names, as in Trino.
                let read = named_columns(delete.selection.iter());
                if !read.is_empty() {
                    let read: Vec<&str> = read.iter().map(String::as_str).collect();
                    access.check(|p, who| p.check_can_select(who, &t, &read))?;
                }
                if masked(&access, &t) {
                    return Err(refused("Delete from table with column mask"));
                }
                if let Some(filter) = access.rules.row_filter(&access.identity, &t) {
                    let filter = filter_expr(&t, &filter.sql)?;
                    delete.selection = Some(match delete.selection.take() {
                        Some(condition) => SqlExpr::BinaryOp {
                            left: Box::new(SqlExpr::Nested(Box::new(filter))),
                            op: BinaryOperator::And,
                            right: Box::new(SqlExpr::Nested(Box::new(condition))),
                        },
                        None => filter,
                    });
                }
            }
        }
        Statement::Update(update) => {
            if let Some(name) = changed_table(&update.table) {
                let t = table(name)?;
                let columns = assigned_columns(&update.assignments);
                let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                access.check(|p, who| p.check_can_update(who, &t, &columns))?;
                // What the new values and the condition read needs SELECT, as in Trino.
                let values = update.assignments.iter().map(|a| &a.value);
                let read = named_columns(values.chain(update.selection.iter()));
                if !read.is_empty() {
                    let read: Vec<&str> = read.iter().map(String::as_str).collect();
                    access.check(|p, who| p.check_can_select(who, &t, &read))?;
                }
                if access.rules.row_filter(&access.identity, &t).is_some() {
                    return Err(refused(
                        "Updating a table with a row filter is not supported",
                    ));
                }
                if masked(&access, &t) {
                    return Err(refused(
                        "Updating a table with column masks is not supported",
                    ));
                }
            }
        }
        Statement::Merge(merge) => {
            if let TableFactor::Table { name, .. } = &merge.table {
                let t = table(name)?;
                for clause in &merge.clauses {
                    match &clause.action {
                        MergeAction::Insert(_) => {
                            access.check(|p, who| p.check_can_insert(who, &t))?
                        }
                        MergeAction::Delete { .. } => {
                            access.check(|p, who| p.check_can_delete(who, &t))?
                        }
                        MergeAction::Update(update) => {
                            let columns = assigned_columns(&update.assignments);
                            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                            access.check(|p, who| p.check_can_update(who, &t, &columns))?
                        }
                    }
                }
                if access.rules.row_filter(&access.identity, &t).is_some() {
                    return Err(refused("Cannot merge into a table with row filters"));
                }
                if masked(&access, &t) {
                    return Err(refused("Cannot merge into a table with column masks"));
                }
            }
        }
        Statement::Truncate(truncate) => {
            for target in &truncate.table_names {
                let t = table(&target.name)?;
                access.check(|p, who| p.check_can_truncate(who, &t))?;
                if access.rules.row_filter(&access.identity, &t).is_some() {
                    return Err(refused(
                        "Truncating a table with a row filter is not supported: DELETE the rows",
                    ));
                }
            }
        }
        Statement::CreateSchema {
            schema_name: SchemaName::Simple(name),
            ..
        } => {
            let (catalog, schema) = schema_name(session, name)?;
            access.check(|p, who| p.check_can_create_schema(who, &catalog, &schema))?;
        }
        Statement::Drop {
            object_type, names, ..
        } => {
            for name in names {
                check_drop(session, &access, *object_type, name)?;
            }
        }
        Statement::CreateTable(create) => {
            let t = table(&create.name)?;
            access.check(|p, who| p.check_can_create_table(who, &t))?;
        }
        Statement::CreateView(create) => {
            let t = table(&create.name)?;
            access.check(|p, who| p.check_can_create_view(who, &t))?;
        }
        Statement::Comment {
            object_type,
            object_name,
            ..
        } => match object_type {
            CommentObject::Table => {
                let t = table(object_name)?;
                access.check(|p, who| p.check_can_comment_table(who, &t))?;
            }
            CommentObject::Column => {
                // `catalog.schema.table.column`: the table is the name less its last part.
                let mut parts = object_name.0.clone();
                parts.pop();
                let t = table(&ObjectName(parts))?;
                access.check(|p, who| p.check_can_comment_column(who, &t))?;
            }
            _ => {}
        },
        Statement::AlterTable(alter) => {
            let t = table(&alter.name)?;
            for operation in &alter.operations {
                check_alter(&access, &t, operation)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether the user reads any column of `t` masked.
fn masked(access: &Access, t: &TableName) -> bool {
    access
        .rules
        .table_rule(&access.identity, t)
        .is_some_and(|rule| rule.columns.iter().any(|c| c.mask.is_some()))
}

fn refused(message: &str) -> TrinoError {
    TrinoError::new(ErrorCode::NOT_SUPPORTED, message)
}

/// A row filter's text as an expression.
fn filter_expr(t: &TableName, sql: &str) -> Result<SqlExpr> {
    let invalid = |message: String| {
        TrinoError::new(
            ErrorCode::INVALID_ROW_FILTER,
            format!("Invalid row filter for '{t}': {message}"),
        )
    };
    let mut statements = crate::dialect::parse_statements(&format!("SELECT 1 WHERE ({sql})"))
        .map_err(|e| invalid(e.message))?;
    match statements.pop() {
        Some(Statement::Query(query)) => match *query.body {
            SetExpr::Select(select) if statements.is_empty() => select
                .selection
                .ok_or_else(|| invalid("no condition".into())),
            _ => Err(invalid("not one condition".into())),
        },
        _ => Err(invalid("not one condition".into())),
    }
}

/// The table a DELETE or UPDATE changes, when it names one.
fn changed_table(table: &TableWithJoins) -> Option<&ObjectName> {
    match &table.relation {
        TableFactor::Table { name, .. } => Some(name),
        _ => None,
    }
}

/// The columns expressions name (an identifier's last part, unquoted names lower-cased).
fn named_columns<'a>(exprs: impl Iterator<Item = &'a SqlExpr>) -> Vec<String> {
    use datafusion::sql::sqlparser::ast::{visit_expressions, Ident};
    let name = |ident: &Ident| match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    };
    let mut names = Vec::new();
    for expr in exprs {
        let _ = visit_expressions(expr, |e| {
            let found = match e {
                SqlExpr::Identifier(ident) => Some(name(ident)),
                SqlExpr::CompoundIdentifier(parts) => parts.last().map(name),
                _ => None,
            };
            if let Some(found) = found {
                if !names.contains(&found) {
                    names.push(found);
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    names
}

/// The columns SET assigns.
fn assigned_columns(assignments: &[Assignment]) -> Vec<String> {
    assignments
        .iter()
        .map(|a| assigned_column(&a.target.to_string()))
        .collect()
}

/// A SET target's column: the last part of a possibly qualified name, unquoted.
fn assigned_column(target: &str) -> String {
    let last = target.rsplit('.').next().unwrap_or(target);
    match last.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => last.to_lowercase(),
    }
}

fn check_drop(
    session: &Session,
    access: &Access,
    object_type: ObjectType,
    name: &ObjectName,
) -> Result<()> {
    match object_type {
        ObjectType::Schema | ObjectType::Database => {
            let (catalog, schema) = schema_name(session, name)?;
            access.check(|p, who| p.check_can_drop_schema(who, &catalog, &schema))
        }
        ObjectType::Table => {
            let t = table_name(&session.qualify(name)?);
            access.check(|p, who| p.check_can_drop_table(who, &t))
        }
        ObjectType::View => {
            let t = table_name(&session.qualify(name)?);
            access.check(|p, who| p.check_can_drop_view(who, &t))
        }
        _ => Ok(()),
    }
}

/// One ALTER TABLE operation; a rename's target is checked where the new name is made.
fn check_alter(access: &Access, t: &TableName, operation: &AlterTableOperation) -> Result<()> {
    match operation {
        AlterTableOperation::RenameTable { .. } => Ok(()),
        AlterTableOperation::AddColumn { .. } => {
            access.check(|p, who| p.check_can_add_column(who, t))
        }
        AlterTableOperation::DropColumn { .. } => {
            access.check(|p, who| p.check_can_drop_column(who, t))
        }
        AlterTableOperation::RenameColumn { .. } => {
            access.check(|p, who| p.check_can_rename_column(who, t))
        }
        AlterTableOperation::AlterColumn { .. } => {
            access.check(|p, who| p.check_can_alter_column(who, t))
        }
        _ => access.check(|p, who| p.check_can_set_table_properties(who, t)),
    }
}
