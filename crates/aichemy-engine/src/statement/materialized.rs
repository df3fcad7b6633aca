//! Materialized views in Trino's syntax: `CREATE [OR REPLACE] MATERIALIZED VIEW [IF NOT
//! EXISTS] v [GRACE PERIOD interval] [WHEN STALE (INLINE | FAIL)] [COMMENT 'text']
//! [WITH (…)] AS query`, `REFRESH MATERIALIZED VIEW v`, `DROP MATERIALIZED VIEW [IF
//! EXISTS] v`, `SHOW MATERIALIZED VIEWS [FROM schema] [LIKE pattern]` and `SHOW CREATE
//! MATERIALIZED VIEW v`. The rows live in an Iceberg storage table (`crate::materialized`
//! keeps and refreshes them).

use crate::access::grants::Ownership;
use aichemy_access::Object;
use aichemy_metastore::{MaterializedViewRecord, MetastoreError, ViewColumn};
use aichemy_tables::{ColumnSpec, CreateTableRequest, PropertyValue};
use datafusion::sql::sqlparser::ast::{Expr, ObjectName, SqlOption, Statement, Value};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;

use crate::catalog::lakehouse::QualifiedName;
use crate::catalog::metadata::batch_of;
use crate::dialect::{dialect, syntax_error};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::materialized::{self, Shape};
use crate::planner::{plan_statement, Scope};
use crate::session::{Output, Session};
use crate::statement::is_word;
use crate::statement::session_state::rest_of;
use crate::statement::show::text_schema;

/// A materialized view statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MaterializedStatement {
    Create(Box<CreateMaterialized>),
    Refresh(ObjectName),
    Drop {
        name: ObjectName,
        if_exists: bool,
    },
    Show {
        schema: Option<ObjectName>,
        like: Option<String>,
    },
    ShowCreate(ObjectName),
}

/// `CREATE MATERIALIZED VIEW` as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CreateMaterialized {
    pub name: ObjectName,
    pub or_replace: bool,
    pub if_not_exists: bool,
    pub grace_period_ms: Option<i64>,
    /// `INLINE` or `FAIL`.
    pub when_stale: String,
    pub comment: Option<String>,
    pub options: Vec<SqlOption>,
    /// The query's text, as the view keeps it.
    pub query: String,
}

/// Recognises the statements of this module; `None` for every other statement.
pub(crate) fn parse(sql: &str) -> Result<Option<MaterializedStatement>> {
    let dialect = dialect();
    let Ok(mut parser) = Parser::new(&dialect).try_with_sql(sql) else {
        return Ok(None);
    };
    let word = crate::statement::take_word;
    let materialized_view =
        |parser: &mut Parser| word(parser, "MATERIALIZED") && word(parser, "VIEW");
    let statement = if word(&mut parser, "CREATE") {
        let or_replace = parser.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
        if !materialized_view(&mut parser) {
            return Ok(None);
        }
        let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        if or_replace && if_not_exists {
            return Err(TrinoError::not_supported(
                "'CREATE OR REPLACE' and 'IF NOT EXISTS' clauses can not be used together",
            ));
        }
        let name = parser.parse_object_name(false).map_err(syntax_error)?;
        let mut grace_period_ms = None;
        if word(&mut parser, "GRACE") {
            if !word(&mut parser, "PERIOD") {
                return Err(TrinoError::new(
                    ErrorCode::SYNTAX_ERROR,
                    "Expected PERIOD after GRACE",
                ));
            }
            let interval = parser.parse_expr().map_err(syntax_error)?;
            grace_period_ms = Some(interval_millis(&interval, "GRACE PERIOD")?);
        }
        let mut when_stale = "INLINE".to_string();
        if word(&mut parser, "WHEN") {
            if !word(&mut parser, "STALE") {
                return Err(TrinoError::new(
                    ErrorCode::SYNTAX_ERROR,
                    "Expected STALE after WHEN",
                ));
            }
            when_stale = match parser.next_token().token {
                t if is_word(&t, "INLINE") => "INLINE".into(),
                t if is_word(&t, "FAIL") => "FAIL".into(),
                t => {
                    return Err(TrinoError::new(
                        ErrorCode::SYNTAX_ERROR,
                        format!("mismatched input '{t}'. Expecting: 'FAIL', 'INLINE'"),
                    ))
                }
            };
        }
        let mut comment = None;
        if parser.parse_keyword(Keyword::COMMENT) {
            comment = Some(parser.parse_literal_string().map_err(syntax_error)?);
        }
        let options = parser.parse_options(Keyword::WITH).map_err(syntax_error)?;
        parser.expect_keyword(Keyword::AS).map_err(syntax_error)?;
        let query = rest_of(
            &parser,
            sql,
            "CREATE MATERIALIZED VIEW needs a query after AS",
        )?;
        return Ok(Some(MaterializedStatement::Create(Box::new(
            CreateMaterialized {
                name,
                or_replace,
                if_not_exists,
                grace_period_ms,
                when_stale,
                comment,
                options,
                query,
            },
        ))));
    } else if word(&mut parser, "REFRESH") {
        if !materialized_view(&mut parser) {
            return Ok(None);
        }
        MaterializedStatement::Refresh(parser.parse_object_name(false).map_err(syntax_error)?)
    } else if word(&mut parser, "DROP") {
        if !materialized_view(&mut parser) {
            return Ok(None);
        }
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        MaterializedStatement::Drop {
            name: parser.parse_object_name(false).map_err(syntax_error)?,
            if_exists,
        }
    } else if word(&mut parser, "SHOW") {
        if word(&mut parser, "CREATE") {
            if !materialized_view(&mut parser) {
                return Ok(None);
            }
            MaterializedStatement::ShowCreate(
                parser.parse_object_name(false).map_err(syntax_error)?,
            )
        } else if word(&mut parser, "MATERIALIZED") && word(&mut parser, "VIEWS") {
            let schema = if parser.parse_keyword(Keyword::FROM) || parser.parse_keyword(Keyword::IN)
            {
                Some(parser.parse_object_name(false).map_err(syntax_error)?)
            } else {
                None
            };
            let like = if parser.parse_keyword(Keyword::LIKE) {
                Some(parser.parse_literal_string().map_err(syntax_error)?)
            } else {
                None
            };
            MaterializedStatement::Show { schema, like }
        } else {
            return Ok(None);
        }
    } else {
        return Ok(None);
    };
    crate::statement::expect_end(&mut parser)?;
    Ok(Some(statement))
}

/// An `INTERVAL 'n' unit` (SECOND to DAY, as Trino's day-to-second intervals) in
/// milliseconds; `clause` names where it was written, for the error.
pub(crate) fn interval_millis(interval: &Expr, clause: &str) -> Result<i64> {
    let invalid = || {
        TrinoError::new(
            ErrorCode::INVALID_LITERAL,
            format!("Invalid {clause}: {interval}; expected INTERVAL 'n' SECOND|MINUTE|HOUR|DAY"),
        )
    };
    let Expr::Interval(interval) = interval else {
        return Err(invalid());
    };
    let text = match interval.value.as_ref() {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::Number(s, _) => s.clone(),
            _ => return Err(invalid()),
        },
        _ => return Err(invalid()),
    };
    let unit = interval
        .leading_field
        .as_ref()
        .map(|f| f.to_string().to_ascii_uppercase())
        .unwrap_or_else(|| "SECOND".into());
    let factor: f64 = match unit.as_str() {
        "SECOND" => 1_000.0,
        "MINUTE" => 60_000.0,
        "HOUR" => 3_600_000.0,
        "DAY" => 86_400_000.0,
        _ => return Err(invalid()),
    };
    let value: f64 = text.trim().parse().map_err(|_| invalid())?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(invalid());
    }
    Ok((value * factor).round() as i64)
}

/// A materialized view as SQL grants name its owner's object.
fn owned(session: &Session, name: &ObjectName) -> Result<Object> {
    let q = session.qualify(name)?;
    Ok(Object::table(&q.catalog, &q.schema, &q.name))
}

/// Executes a materialized view statement.
pub(crate) async fn execute(
    session: &mut Session,
    statement: MaterializedStatement,
) -> Result<Output> {
    match statement {
        MaterializedStatement::Create(create) => {
            let owned = owned(session, &create.name)?;
            let output = create_view(session, *create).await?;
            Ownership::Create(owned).record(session).await?;
            Ok(output)
        }
        MaterializedStatement::Refresh(name) => {
            let qualified = session.qualify(&name)?;
            let view = crate::access::table_name(&qualified);
            session.check_access(|p, who| p.check_can_refresh_materialized_view(who, &view))?;
            let sql = format!("REFRESH MATERIALIZED VIEW {name}");
            let report = crate::lineage::recorded(
                session,
                "REFRESH MATERIALIZED VIEW",
                &sql,
                materialized::refresh(session, &qualified),
            )
            .await?;
            Ok(Output::Update {
                update_type: "REFRESH MATERIALIZED VIEW".into(),
                count: Some(report.rows),
            })
        }
        MaterializedStatement::Drop { name, if_exists } => {
            let name = session.qualify(&name)?;
            let view = crate::access::table_name(&name);
            session.check_access(|p, who| p.check_can_drop_materialized_view(who, &view))?;
            let output = drop_view(session, &name, if_exists).await?;
            let owned = Object::table(&name.catalog, &name.schema, &name.name);
            Ownership::Drop(vec![owned]).record(session).await?;
            Ok(output)
        }
        MaterializedStatement::Show { schema, like } => {
            let (catalog, schema) = match schema {
                Some(schema) => crate::statement::ddl::schema_name(session, &schema)?,
                None => (
                    session.catalog.clone().ok_or_else(|| {
                        TrinoError::new(
                            ErrorCode::GENERIC_USER_ERROR,
                            "Catalog must be specified when session catalog is not set",
                        )
                    })?,
                    session.schema.clone().ok_or_else(|| {
                        TrinoError::new(
                            ErrorCode::MISSING_SCHEMA_NAME,
                            "Schema must be specified when session schema is not set",
                        )
                    })?,
                ),
            };
            session
                .lakehouse()
                .require_schema(&catalog, &schema)
                .await?;
            let like = like
                .map(|pattern| format!(" AND name LIKE {}", quote_literal(&pattern)))
                .unwrap_or_default();
            let query = format!(
                "SELECT name AS \"Materialized View\", freshness AS \"Freshness\", \
                 last_refresh_type AS \"Last Refresh\" FROM system.metadata.materialized_views \
                 WHERE catalog_name = {} AND schema_name = {}{like} ORDER BY 1",
                quote_literal(&catalog),
                quote_literal(&schema)
            );
            Box::pin(session.execute(&query)).await
        }
        MaterializedStatement::ShowCreate(name) => {
            let name = session.qualify(&name)?;
            let view = materialized::record(session.lakehouse(), &name)
                .await?
                .ok_or_else(|| materialized::not_found(&name))?;
            Ok(Output::batch(batch_of(
                text_schema(&["Create Materialized View"]),
                &[vec![show_create_text(&name, &view).into()]],
            )?))
        }
    }
}

/// `'text'` with its quotes doubled.
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The statement that makes `view` again, as `SHOW CREATE MATERIALIZED VIEW` prints it.
fn show_create_text(name: &QualifiedName, view: &MaterializedViewRecord) -> String {
    let mut text = format!("CREATE MATERIALIZED VIEW {name}");
    if let Some(ms) = view.grace_period_ms {
        text.push_str(&format!("\nGRACE PERIOD {}", interval_text(ms)));
    }
    if view.when_stale != "INLINE" {
        text.push_str(&format!("\nWHEN STALE {}", view.when_stale));
    }
    if let Some(comment) = &view.comment {
        text.push_str(&format!("\nCOMMENT {}", quote_literal(comment)));
    }
    if !view.properties.is_empty() {
        let properties: Vec<String> = view
            .properties
            .iter()
            .map(|(key, value)| format!("   {key} = {value}"))
            .collect();
        text.push_str(&format!("\nWITH (\n{}\n)", properties.join(",\n")));
    }
    text.push_str(&format!(" AS\n{}", view.sql));
    text
}

/// A grace period as Trino prints it: `INTERVAL '1' HOUR`, else in the largest whole
/// unit.
pub(crate) fn interval_text(ms: i64) -> String {
    if ms == 0 {
        return "INTERVAL '0' SECOND".into();
    }
    for (unit, size) in [
        ("DAY", 86_400_000),
        ("HOUR", 3_600_000),
        ("MINUTE", 60_000),
        ("SECOND", 1_000),
    ] {
        if ms % size == 0 {
            return format!("INTERVAL '{}' {unit}", ms / size);
        }
    }
    format!("INTERVAL '{}' SECOND", ms as f64 / 1000.0)
}

async fn create_view(session: &Session, create: CreateMaterialized) -> Result<Output> {
    let lakehouse = session.lakehouse();
    let name = session.qualify(&create.name)?;
    let view = crate::access::table_name(&name);
    session.check_access(|p, who| p.check_can_create_materialized_view(who, &view))?;
    let format = lakehouse.format(&name.catalog)?;
    if format.format_name() != "Iceberg" {
        return Err(TrinoError::not_supported(format!(
            "Materialized views are stored as Iceberg tables: create '{name}' in an iceberg catalog"
        )));
    }
    lakehouse
        .require_schema(&name.catalog, &name.schema)
        .await?;
    let existing = materialized::record(lakehouse, &name).await?;
    if existing.is_some() && !create.or_replace {
        if create.if_not_exists {
            return Ok(Output::update("CREATE MATERIALIZED VIEW"));
        }
        return Err(TrinoError::new(
            ErrorCode::TABLE_ALREADY_EXISTS,
            format!("Materialized view already exists: '{name}'"),
        ));
    }
    if format.load_table(&name.schema, &name.name).await?.is_some()
        || lakehouse
            .metastore()
            .get_view(&name.catalog, &name.schema, &name.name)
            .await?
            .is_some()
    {
        return Err(TrinoError::new(
            ErrorCode::TABLE_ALREADY_EXISTS,
            format!("Table '{name}' already exists"),
        ));
    }
    let mut properties = crate::statement::ddl::properties(&create.options)?;
    let mut storage_schema = name.schema.clone();
    if let Some(at) = properties.iter().position(|(k, _)| k == "storage_schema") {
        match properties.remove(at).1 {
            PropertyValue::String(schema) => storage_schema = schema,
            _ => {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_TABLE_PROPERTY,
                    "storage_schema must be a string",
                ))
            }
        }
        lakehouse
            .require_schema(&name.catalog, &storage_schema)
            .await?;
    }
    // The definition is planned as the view reads it: its names resolve in its own schema.
    let statement = crate::dialect::parse_statements(&create.query)?;
    let [Statement::Query(query)] = statement.as_slice() else {
        return Err(TrinoError::new(
            ErrorCode::SYNTAX_ERROR,
            "A materialized view must be defined by one query",
        ));
    };
    let scope = Scope {
        catalog: Some(&name.catalog),
        schema: Some(&name.schema),
        time_zone: session.time_zone.as_deref(),
        user: Some(&session.user),
        role: Some(&session.role),
        ..Scope::default()
    };
    let (plan, _) = plan_statement(lakehouse, Statement::Query(query.clone()), scope, 0).await?;
    let shape = Shape::of(query, &plan);
    let mut columns: Vec<ColumnSpec> = Vec::new();
    for (i, field) in plan.schema().fields().iter().enumerate() {
        let column_name = field.name().to_ascii_lowercase();
        if column_name.contains('(') || column_name.is_empty() {
            return Err(TrinoError::new(
                ErrorCode::MISSING_COLUMN_NAME,
                format!("Column name not specified at position {}", i + 1),
            ));
        }
        columns.push(crate::statement::ddl::column_of(
            &column_name,
            field.data_type(),
        )?);
    }
    crate::statement::ddl::check_unique_columns(&columns)?;
    let visible: Vec<ViewColumn> = columns
        .iter()
        .map(|c| ViewColumn {
            name: c.name.clone(),
            trino_type: c.trino_type.clone(),
        })
        .collect();
    if let Shape::Aggregate(_) = shape {
        let augmented = Statement::Query(Box::new(shape.augmented(query)));
        let (augmented, _) = plan_statement(lakehouse, augmented, scope, 0).await?;
        columns.extend(shape.state_columns(&augmented, visible.len())?);
    }
    let storage_table = format!("st_{}", uuid::Uuid::new_v4().simple());
    let request = CreateTableRequest {
        schema: storage_schema.clone(),
        name: storage_table.clone(),
        columns,
        comment: None,
        properties,
    };
    format.create_table(request).await?;
    let record = MaterializedViewRecord {
        catalog: name.catalog.clone(),
        schema: name.schema.clone(),
        name: name.name.clone(),
        sql: create.query.clone(),
        columns: visible,
        comment: create.comment.clone(),
        owner: Some(session.user.clone()),
        grace_period_ms: create.grace_period_ms,
        when_stale: create.when_stale.clone(),
        properties: create
            .options
            .iter()
            .filter_map(|option| match option {
                SqlOption::KeyValue { key, value } => {
                    Some((key.value.to_ascii_lowercase(), value.to_string()))
                }
                _ => None,
            })
            .collect(),
        storage_schema: storage_schema.clone(),
        storage_table: storage_table.clone(),
    };
    let stored = lakehouse
        .metastore()
        .create_materialized_view(&record, create.or_replace)
        .await;
    if let Err(e) = stored {
        let _ = format.drop_table(&storage_schema, &storage_table).await;
        return match e {
            MetastoreError::ViewAlreadyExists { .. } if create.if_not_exists => {
                Ok(Output::update("CREATE MATERIALIZED VIEW"))
            }
            MetastoreError::ViewAlreadyExists { .. } => Err(TrinoError::new(
                ErrorCode::TABLE_ALREADY_EXISTS,
                format!("Materialized view already exists: '{name}'"),
            )),
            other => Err(other.into()),
        };
    }
    // A replaced view's rows go with its old storage table.
    if let Some(old) = existing {
        let _ = format
            .drop_table(&old.storage_schema, &old.storage_table)
            .await;
    }
    Ok(Output::update("CREATE MATERIALIZED VIEW"))
}

async fn drop_view(session: &Session, name: &QualifiedName, if_exists: bool) -> Result<Output> {
    let lakehouse = session.lakehouse();
    let Some(view) = materialized::record(lakehouse, name).await? else {
        if if_exists {
            lakehouse.catalog(&name.catalog)?;
            return Ok(Output::update("DROP MATERIALIZED VIEW"));
        }
        return Err(materialized::not_found(name));
    };
    lakehouse
        .metastore()
        .drop_materialized_view(&name.catalog, &name.schema, &name.name)
        .await?;
    let format = lakehouse.format(&name.catalog)?;
    match format
        .drop_table(&view.storage_schema, &view.storage_table)
        .await
    {
        Ok(()) | Err(aichemy_tables::TableError::TableNotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Output::update("DROP MATERIALIZED VIEW"))
}

#[cfg(test)]
mod tests {
    use super::{interval_text, parse, MaterializedStatement};

    #[test]
    fn reads_trinos_create_materialized_view() {
        let Some(MaterializedStatement::Create(create)) = parse(
            "CREATE OR REPLACE MATERIALIZED VIEW s.mv GRACE PERIOD INTERVAL '2' HOUR \
             WHEN STALE FAIL COMMENT 'c' WITH (format = 'PARQUET') AS SELECT a FROM t;",
        )
        .unwrap() else {
            panic!("not a create")
        };
        assert!(create.or_replace);
        assert_eq!(create.grace_period_ms, Some(7_200_000));
        assert_eq!(create.when_stale, "FAIL");
        assert_eq!(create.comment.as_deref(), Some("c"));
        assert_eq!(create.options.len(), 1);
        assert_eq!(create.query, "SELECT a FROM t");
        assert_eq!(interval_text(7_200_000), "INTERVAL '2' HOUR");
        assert_eq!(interval_text(0), "INTERVAL '0' SECOND");
    }

    #[test]
    fn show_create_prints_every_clause() {
        let view = aichemy_metastore::MaterializedViewRecord {
            catalog: "iceberg".into(),
            schema: "s".into(),
            name: "mv".into(),
            sql: "SELECT id FROM t".into(),
            columns: Vec::new(),
            comment: Some("it's".into()),
            owner: None,
            grace_period_ms: Some(90_000),
            when_stale: "FAIL".into(),
            properties: vec![("format".into(), "'ORC'".into())],
            storage_schema: "s".into(),
            storage_table: "st_1".into(),
        };
        let name = crate::catalog::lakehouse::QualifiedName {
            catalog: "iceberg".into(),
            schema: "s".into(),
            name: "mv".into(),
        };
        assert_eq!(
            super::show_create_text(&name, &view),
            "CREATE MATERIALIZED VIEW iceberg.s.mv\nGRACE PERIOD INTERVAL '90' SECOND\n\
             WHEN STALE FAIL\nCOMMENT 'it''s'\nWITH (\n   format = 'ORC'\n) AS\nSELECT id FROM t"
        );
    }

    #[test]
    fn other_statements_are_left_alone() {
        assert_eq!(parse("CREATE VIEW v AS SELECT 1").unwrap(), None);
        assert_eq!(parse("DROP TABLE t").unwrap(), None);
        assert!(matches!(
            parse("refresh materialized view mv").unwrap(),
            Some(MaterializedStatement::Refresh(_))
        ));
        assert!(parse("CREATE MATERIALIZED VIEW mv GRACE PERIOD 'x' AS SELECT 1").is_err());
    }
}
