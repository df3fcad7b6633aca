//! Statements about the session and the catalog: `USE`, `SHOW …`, `DESCRIBE`.
//! sqlparser's generic dialect lacks Trino's forms of these, so they are parsed here.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::Volatility;
use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::catalog::lakehouse::QualifiedName;
use crate::catalog::metadata::{batch_of, Cell};
use crate::dialect::{dialect, syntax_error};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::session::{name_parts, Output, Session};
use crate::statement::is_word;
use crate::types::trino_type_name;

/// A session or catalog statement.
#[derive(Debug, Clone, PartialEq)]
pub enum ShowStatement {
    Use(ObjectName),
    Functions {
        like: Option<String>,
    },
    Catalogs {
        like: Option<String>,
    },
    Schemas {
        catalog: Option<ObjectName>,
        like: Option<String>,
    },
    Tables {
        schema: Option<ObjectName>,
        like: Option<String>,
    },
    Columns {
        table: ObjectName,
        like: Option<String>,
    },
    CreateTable(ObjectName),
    CreateView(ObjectName),
    CreateSchema(ObjectName),
}

/// Parses `sql` when it is a USE, SHOW or DESCRIBE statement; `None` for anything else.
pub fn parse(sql: &str) -> Result<Option<ShowStatement>> {
    let dialect = dialect();
    let mut parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(syntax_error)?;
    let first = parser.peek_token().token;
    let is_describe = is_word(&first, "DESCRIBE") || is_word(&first, "DESC");
    if !(is_word(&first, "USE") || is_word(&first, "SHOW") || is_describe) {
        return Ok(None);
    }
    parser.next_token();
    let like = |p: &mut Parser| -> Result<Option<String>> {
        if p.parse_keyword(Keyword::LIKE) {
            Ok(Some(p.parse_literal_string().map_err(syntax_error)?))
        } else {
            Ok(None)
        }
    };
    let from = |p: &mut Parser| -> Result<Option<ObjectName>> {
        if p.parse_keyword(Keyword::FROM) || p.parse_keyword(Keyword::IN) {
            Ok(Some(p.parse_object_name(false).map_err(syntax_error)?))
        } else {
            Ok(None)
        }
    };
    let statement = if is_word(&first, "USE") {
        ShowStatement::Use(parser.parse_object_name(false).map_err(syntax_error)?)
    } else if is_describe {
        ShowStatement::Columns {
            table: parser.parse_object_name(false).map_err(syntax_error)?,
            like: None,
        }
    } else {
        let what = parser.next_token().token;
        if is_word(&what, "CATALOGS") {
            ShowStatement::Catalogs {
                like: like(&mut parser)?,
            }
        } else if is_word(&what, "SCHEMAS") {
            let catalog = from(&mut parser)?;
            ShowStatement::Schemas {
                catalog,
                like: like(&mut parser)?,
            }
        } else if is_word(&what, "TABLES") {
            let schema = from(&mut parser)?;
            ShowStatement::Tables {
                schema,
                like: like(&mut parser)?,
            }
        } else if is_word(&what, "COLUMNS") {
            let table = from(&mut parser)?.ok_or_else(|| {
                TrinoError::new(
                    ErrorCode::SYNTAX_ERROR,
                    "line 1:14: mismatched input. Expecting: 'FROM', 'IN'",
                )
            })?;
            ShowStatement::Columns {
                table,
                like: like(&mut parser)?,
            }
        } else if is_word(&what, "FUNCTIONS") {
            ShowStatement::Functions {
                like: like(&mut parser)?,
            }
        } else if is_word(&what, "CREATE") {
            let kind = parser.next_token().token;
            let name = parser.parse_object_name(false).map_err(syntax_error)?;
            if is_word(&kind, "TABLE") {
                ShowStatement::CreateTable(name)
            } else if is_word(&kind, "VIEW") {
                ShowStatement::CreateView(name)
            } else if is_word(&kind, "SCHEMA") {
                ShowStatement::CreateSchema(name)
            } else {
                return Err(TrinoError::not_supported(format!(
                    "SHOW CREATE {kind} is not supported"
                )));
            }
        } else {
            return Err(TrinoError::not_supported(format!(
                "SHOW {what} is not supported"
            )));
        }
    };
    let _ = parser.consume_token(&Token::SemiColon);
    let rest = parser.peek_token();
    if rest.token != Token::EOF {
        return Err(TrinoError::new(
            ErrorCode::SYNTAX_ERROR,
            format!("mismatched input '{}'. Expecting: <EOF>", rest.token),
        )
        .at(Some(crate::error::ErrorLocation {
            line: rest.span.start.line,
            column: rest.span.start.column,
        })));
    }
    Ok(Some(statement))
}

/// SQL LIKE with `%` and `_` wildcards.
pub fn like_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

pub(crate) fn text_schema(names: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

fn listing(column: &str, items: Vec<String>, like: &Option<String>) -> Result<Output> {
    let rows: Vec<Vec<Cell>> = items
        .into_iter()
        .filter(|item| like.as_ref().is_none_or(|p| like_matches(p, item)))
        .map(|item| vec![item.into()])
        .collect();
    Ok(Output::batch(batch_of(text_schema(&[column]), &rows)?))
}

/// A row of `SHOW FUNCTIONS`: name, kind, whether deterministic, description.
type FunctionRow = (String, &'static str, bool, String);

/// `SHOW FUNCTIONS`: every function a statement can call, by name and kind, as Trino
/// lists them. Argument and return types are left empty: most functions accept several
/// types, which DataFusion's signatures do not spell out as Trino's do.
fn functions(session: &Session, like: &Option<String>) -> Result<Output> {
    let context = session
        .lakehouse()
        .session_context("system", "information_schema", None, None);
    let state = context.state();
    let mut rows: Vec<FunctionRow> = Vec::new();
    let mut add = |name: &str, kind: &'static str, volatility: Volatility, doc: Option<&str>| {
        // The dialect rewrites `transform(…)` and the other lambda functions to internal
        // ones; those are listed by the names a statement uses.
        let name = name.strip_prefix("$lambda_").unwrap_or(name);
        if name.starts_with('$') || name.starts_with("__") {
            return;
        }
        rows.push((
            name.to_string(),
            kind,
            volatility != Volatility::Volatile,
            doc.unwrap_or_default().to_string(),
        ));
    };
    for (name, udf) in state.scalar_functions() {
        let doc = udf.documentation().map(|d| d.description.as_str());
        add(name, "scalar", udf.signature().volatility, doc);
    }
    for (name, udaf) in state.aggregate_functions() {
        let doc = udaf.documentation().map(|d| d.description.as_str());
        add(name, "aggregate", udaf.signature().volatility, doc);
    }
    for (name, udwf) in state.window_functions() {
        let doc = udwf.documentation().map(|d| d.description.as_str());
        add(name, "window", udwf.signature().volatility, doc);
    }
    // The functions the dialect rewrites into other expressions (`if` into CASE, …).
    // … the SQL/JSON functions, whose clauses it lowers to internal functions, and the
    // functions written as syntax or bound from the session.
    let rewritten = crate::functions::rewrites::FUNCTIONS.iter();
    let lowered = crate::functions::json::clauses::FUNCTIONS.iter();
    for (name, kind) in rewritten
        .chain(lowered)
        .chain(crate::dialect::SYNTAX_FUNCTIONS)
    {
        add(name, kind, Volatility::Immutable, None);
    }
    rows.retain(|(name, ..)| like.as_ref().is_none_or(|p| like_matches(p, name)));
    rows.sort();
    rows.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let text = |pick: &dyn Fn(&FunctionRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(pick)))
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("Function", DataType::Utf8, false),
        Field::new("Return Type", DataType::Utf8, false),
        Field::new("Argument Types", DataType::Utf8, false),
        Field::new("Function Type", DataType::Utf8, false),
        Field::new("Deterministic", DataType::Boolean, false),
        Field::new("Description", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        text(&|r| r.0.clone()),
        text(&|_| String::new()),
        text(&|_| String::new()),
        text(&|r| r.1.to_string()),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.2)))),
        text(&|r| r.3.clone()),
    ];
    let batch =
        RecordBatch::try_new(schema, columns).map_err(|e| TrinoError::internal(e.to_string()))?;
    Ok(Output::batch(batch))
}

fn session_catalog(session: &Session) -> Result<String> {
    session.catalog.clone().ok_or_else(|| {
        TrinoError::new(
            ErrorCode::MISSING_CATALOG_NAME,
            "Catalog must be specified when session catalog is not set",
        )
    })
}

/// Runs a session or catalog statement.
pub async fn execute(session: &mut Session, statement: ShowStatement) -> Result<Output> {
    let lakehouse = session.lakehouse().clone();
    match statement {
        ShowStatement::Use(name) => {
            let (catalog, schema) = match name_parts(&name)?.as_slice() {
                [schema] => (session_catalog(session)?, schema.clone()),
                [catalog, schema] => (catalog.clone(), schema.clone()),
                _ => {
                    return Err(TrinoError::new(
                        ErrorCode::SYNTAX_ERROR,
                        format!("Invalid schema name: {name}"),
                    ))
                }
            };
            lakehouse.catalog(&catalog)?;
            if !lakehouse.schema_exists(&catalog, &schema).await? {
                return Err(TrinoError::new(
                    ErrorCode::SCHEMA_NOT_FOUND,
                    format!("Schema does not exist: {catalog}.{schema}"),
                ));
            }
            session.catalog = Some(catalog);
            session.schema = Some(schema);
            Ok(Output::update("USE"))
        }
        ShowStatement::Catalogs { like } => {
            let mut catalogs = lakehouse.catalog_names();
            if let Some(access) = session.access()? {
                catalogs.retain(|c| access.rules.catalog_visible(&access.identity, c));
            }
            listing("Catalog", catalogs, &like)
        }
        ShowStatement::Functions { like } => functions(session, &like),
        ShowStatement::Schemas { catalog, like } => {
            let catalog = match catalog {
                Some(name) => match name_parts(&name)?.as_slice() {
                    [c] => c.clone(),
                    _ => {
                        return Err(TrinoError::new(
                            ErrorCode::SYNTAX_ERROR,
                            format!("Invalid catalog name: {name}"),
                        ))
                    }
                },
                None => session_catalog(session)?,
            };
            let mut schemas = lakehouse.list_schemas(&catalog).await?;
            schemas.push("information_schema".into());
            schemas.sort();
            if let Some(access) = session.access()? {
                access.check(|p, who| p.check_can_show_schemas(who, &catalog))?;
                schemas.retain(|s| access.rules.schema_visible(&access.identity, &catalog, s));
            }
            listing("Schema", schemas, &like)
        }
        ShowStatement::Tables { schema, like } => {
            let (catalog, schema) = match schema {
                Some(name) => match name_parts(&name)?.as_slice() {
                    [s] => (session_catalog(session)?, s.clone()),
                    [c, s] => (c.clone(), s.clone()),
                    _ => {
                        return Err(TrinoError::new(
                            ErrorCode::SYNTAX_ERROR,
                            format!("Invalid schema name: {name}"),
                        ))
                    }
                },
                None => (
                    session_catalog(session)?,
                    session.schema.clone().ok_or_else(|| {
                        TrinoError::new(
                            ErrorCode::MISSING_SCHEMA_NAME,
                            "Schema must be specified when session schema is not set",
                        )
                    })?,
                ),
            };
            lakehouse.catalog(&catalog)?;
            if !lakehouse.schema_exists(&catalog, &schema).await? {
                return Err(TrinoError::new(
                    ErrorCode::SCHEMA_NOT_FOUND,
                    format!("Schema '{schema}' does not exist"),
                ));
            }
            let mut tables = table_names(session, &catalog, &schema).await?;
            if let Some(access) = session.access()? {
                access.check(|p, who| p.check_can_show_tables(who, &catalog, &schema))?;
                tables.retain(|t| {
                    let name = aichemy_access::TableName::new(&catalog, &schema, t);
                    access.rules.table_visible(&access.identity, &name)
                });
            }
            listing("Table", tables, &like)
        }
        ShowStatement::Columns { table, like } => {
            let name = session.qualify(&table)?;
            let mut columns = describe_columns(session, &name).await?;
            if let Some(access) = session.access()? {
                let table = crate::access::table_name(&name);
                access.check(|p, who| p.check_can_show_columns(who, &table))?;
                let names: Vec<&str> = columns.iter().map(|(c, ..)| c.as_str()).collect();
                let visible: HashSet<String> = access
                    .rules
                    .visible_columns(&access.identity, &table, &names)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                columns.retain(|(c, ..)| visible.contains(c));
            }
            let rows: Vec<Vec<Cell>> = columns
                .into_iter()
                .filter(|(column, ..)| like.as_ref().is_none_or(|p| like_matches(p, column)))
                .map(|(column, trino_type, comment)| {
                    vec![
                        column.into(),
                        trino_type.into(),
                        "".into(),
                        comment.unwrap_or_default().into(),
                    ]
                })
                .collect();
            Ok(Output::batch(batch_of(
                text_schema(&["Column", "Type", "Extra", "Comment"]),
                &rows,
            )?))
        }
        ShowStatement::CreateTable(table) => {
            let name = session.qualify(&table)?;
            let shown = crate::access::table_name(&name);
            session.check_access(|p, who| p.check_can_show_create_table(who, &shown))?;
            let Some(handle) = lakehouse.load_table(&name).await? else {
                lakehouse.catalog(&name.catalog)?;
                lakehouse
                    .require_schema(&name.catalog, &name.schema)
                    .await?;
                return Err(TrinoError::table_not_found(&name.to_string()));
            };
            // Names that are not plain identifiers are quoted, so the text runs as it reads.
            let quoted = crate::types::quote_field_name;
            let mut text = format!(
                "CREATE TABLE {}.{}.{} (\n",
                quoted(&name.catalog),
                quoted(&name.schema),
                quoted(&name.name)
            );
            let columns: Vec<String> = handle
                .columns
                .iter()
                .map(|c| {
                    let mut line =
                        format!("   {} {}", quoted(&c.name), trino_type_name(&c.data_type));
                    if !c.nullable {
                        line.push_str(" NOT NULL");
                    }
                    if let Some(comment) = &c.comment {
                        line.push_str(&format!(
                            " COMMENT {}",
                            aichemy_tables::quote_literal(comment)
                        ));
                    }
                    line
                })
                .collect();
            text.push_str(&columns.join(",\n"));
            text.push_str("\n)");
            if let Some(comment) = &handle.comment {
                text.push_str(&format!(
                    "\nCOMMENT {}",
                    aichemy_tables::quote_literal(comment)
                ));
            }
            if !handle.properties.is_empty() {
                let props: Vec<String> = handle
                    .properties
                    .iter()
                    .map(|(k, v)| format!("   {k} = {}", v.to_sql()))
                    .collect();
                text.push_str(&format!("\nWITH (\n{}\n)", props.join(",\n")));
            }
            Ok(Output::batch(batch_of(
                text_schema(&["Create Table"]),
                &[vec![text.into()]],
            )?))
        }
        ShowStatement::CreateView(view) => {
            let name = session.qualify(&view)?;
            let shown = crate::access::table_name(&name);
            session.check_access(|p, who| p.check_can_show_create_table(who, &shown))?;
            let record = lakehouse
                .metastore()
                .get_view(&name.catalog, &name.schema, &name.name)
                .await?
                .ok_or_else(|| {
                    TrinoError::new(
                        ErrorCode::TABLE_NOT_FOUND,
                        format!("View '{name}' does not exist"),
                    )
                })?;
            let security = match record.owner {
                Some(_) => "DEFINER",
                None => "INVOKER",
            };
            let text = format!("CREATE VIEW {name} SECURITY {security} AS\n{}", record.sql);
            Ok(Output::batch(batch_of(
                text_schema(&["Create View"]),
                &[vec![text.into()]],
            )?))
        }
        ShowStatement::CreateSchema(schema) => {
            let (catalog, schema) = match name_parts(&schema)?.as_slice() {
                [s] => (session_catalog(session)?, s.clone()),
                [c, s] => (c.clone(), s.clone()),
                _ => {
                    return Err(TrinoError::new(
                        ErrorCode::SYNTAX_ERROR,
                        format!("Invalid schema name: {schema}"),
                    ))
                }
            };
            lakehouse.catalog(&catalog)?;
            if !lakehouse.schema_exists(&catalog, &schema).await? {
                return Err(TrinoError::new(
                    ErrorCode::SCHEMA_NOT_FOUND,
                    format!("Schema '{catalog}.{schema}' does not exist"),
                ));
            }
            let text = format!("CREATE SCHEMA {catalog}.{schema}");
            Ok(Output::batch(batch_of(
                text_schema(&["Create Schema"]),
                &[vec![text.into()]],
            )?))
        }
    }
}

async fn table_names(session: &Session, catalog: &str, schema: &str) -> Result<Vec<String>> {
    let lakehouse = session.lakehouse();
    let mut names = match lakehouse.catalog(catalog)?.table_format()? {
        Some(format) => format.list_tables(schema).await?,
        None => Vec::new(),
    };
    if schema == "information_schema" {
        names.extend(["columns", "schemata", "tables", "views"].map(String::from));
    }
    for view in lakehouse
        .metastore()
        .list_views(catalog, Some(schema))
        .await?
    {
        names.push(view.name);
    }
    // Materialized views are listed as tables; their storage tables are theirs alone.
    let materialized = lakehouse
        .metastore()
        .list_materialized_views(Some(catalog), None)
        .await?;
    names.retain(|name| !materialized.iter().any(|v| v.stores_in(schema, name)));
    names.extend(
        materialized
            .into_iter()
            .filter(|v| v.schema == schema)
            .map(|v| v.name),
    );
    names.sort();
    Ok(names)
}

/// (column, Trino type, comment) of a table or view, or Trino's error when there is none.
async fn describe_columns(
    session: &Session,
    name: &QualifiedName,
) -> Result<Vec<(String, String, Option<String>)>> {
    let lakehouse = session.lakehouse();
    lakehouse.catalog(&name.catalog)?;
    if let Some(table) = lakehouse.load_table(name).await? {
        return Ok(table
            .columns
            .iter()
            .zip(crate::types::column_type_names(&table))
            .map(|(c, trino_type)| (c.name.clone(), trino_type, c.comment.clone()))
            .collect());
    }
    let metastore = lakehouse.metastore();
    let view_columns = match metastore
        .get_view(&name.catalog, &name.schema, &name.name)
        .await?
    {
        Some(view) => Some(view.columns),
        None => metastore
            .get_materialized_view(&name.catalog, &name.schema, &name.name)
            .await?
            .map(|view| view.columns),
    };
    if let Some(columns) = view_columns {
        return Ok(columns
            .into_iter()
            .map(|c| (c.name, c.trino_type, None))
            .collect());
    }
    if name.schema == "information_schema" || name.catalog == "system" {
        // Metadata tables describe themselves through a plan of `SELECT *`.
        let sql = format!(
            "SELECT * FROM \"{}\".\"{}\".\"{}\"",
            name.catalog, name.schema, name.name
        );
        let statement = crate::dialect::parse_statements(&sql)?.remove(0);
        let (plan, _) =
            crate::planner::plan_statement(lakehouse, statement, Default::default(), 0).await?;
        return Ok(plan
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), trino_type_name(f.data_type()), None))
            .collect());
    }
    lakehouse
        .require_schema(&name.catalog, &name.schema)
        .await?;
    Err(TrinoError::table_not_found(&name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like_matches("ic%", "ic_test"));
        assert!(like_matches("%test", "ic_test"));
        assert!(like_matches("i_", "ic"));
        assert!(!like_matches("i_", "ice"));
        assert!(like_matches("%", ""));
    }

    #[test]
    fn parses_trino_show_forms() {
        assert!(matches!(
            parse("SHOW SCHEMAS FROM iceberg LIKE 'ic%'").unwrap(),
            Some(ShowStatement::Schemas { .. })
        ));
        assert!(matches!(
            parse("show tables from iceberg.s").unwrap(),
            Some(ShowStatement::Tables { .. })
        ));
        assert!(matches!(
            parse("DESCRIBE t;").unwrap(),
            Some(ShowStatement::Columns { .. })
        ));
        assert!(parse("SELECT 1").unwrap().is_none());
        assert!(parse("SHOW TABLES FROM s extra").is_err());
    }
}
