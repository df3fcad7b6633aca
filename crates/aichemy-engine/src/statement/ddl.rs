//! Data definition: schemas, tables and views.

use std::sync::Arc;

use aichemy_metastore::{ViewColumn, ViewRecord};
use aichemy_tables::{ColumnChange, ColumnSpec, CreateTableRequest, PropertyValue, TableError};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableOperation, ColumnDef, ColumnOption, CommentDef,
    CommentObject, CreateTable, CreateTableOptions, CreateView, Expr, ObjectName,
    RenameTableNameKind, SchemaName, SqlOption, Statement, UnaryOperator, Value,
};

use crate::catalog::lakehouse::QualifiedName;
use crate::error::{ErrorCode, Result, TrinoError};
use crate::planner::plan_statement;
use crate::session::{name_parts, Output, Session};
use crate::statement::query;
use crate::types::{declared_type, trino_type_name};

/// `catalog.schema` from a schema name, completing it with the session's catalog.
pub(crate) fn schema_name(session: &Session, name: &ObjectName) -> Result<(String, String)> {
    match name_parts(name)?.as_slice() {
        [schema] => {
            let catalog = session.catalog.clone().ok_or_else(|| {
                TrinoError::new(
                    ErrorCode::MISSING_CATALOG_NAME,
                    "Catalog must be specified when session catalog is not set",
                )
            })?;
            Ok((catalog, schema.clone()))
        }
        [catalog, schema] => Ok((catalog.clone(), schema.clone())),
        _ => Err(TrinoError::new(
            ErrorCode::SYNTAX_ERROR,
            format!("Too many parts in schema name: {name}"),
        )),
    }
}

fn reserved_schema(schema: &str) -> Result<()> {
    if schema == "information_schema" {
        return Err(TrinoError::not_supported(
            "Schema 'information_schema' is reserved",
        ));
    }
    Ok(())
}

/// A property value from `WITH (key = value)`.
fn property_value(key: &str, value: &Expr) -> Result<PropertyValue> {
    let invalid = || {
        TrinoError::new(
            ErrorCode::INVALID_TABLE_PROPERTY,
            format!("Invalid value for property '{key}': {value}"),
        )
    };
    Ok(match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => PropertyValue::String(s.clone()),
            Value::Number(n, _) => PropertyValue::Number(n.to_string()),
            Value::Boolean(b) => PropertyValue::Boolean(*b),
            _ => return Err(invalid()),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match property_value(key, expr)? {
            PropertyValue::Number(n) => PropertyValue::Number(format!("-{n}")),
            _ => return Err(invalid()),
        },
        Expr::Array(array) => PropertyValue::Array(
            array
                .elem
                .iter()
                .map(|e| match e {
                    Expr::Value(v) => match &v.value {
                        Value::SingleQuotedString(s) => Ok(s.clone()),
                        _ => Err(invalid()),
                    },
                    _ => Err(invalid()),
                })
                .collect::<Result<_>>()?,
        ),
        _ => return Err(invalid()),
    })
}

/// Table properties as written: names (lower case) and values, in order.
type Properties = Vec<(String, PropertyValue)>;

pub(crate) fn properties(options: &[SqlOption]) -> Result<Properties> {
    let mut out: Vec<(String, PropertyValue)> = Vec::new();
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(TrinoError::new(
                ErrorCode::INVALID_TABLE_PROPERTY,
                format!("Invalid property: {option}"),
            ));
        };
        let key = key.value.to_ascii_lowercase();
        if out.iter().any(|(k, _)| *k == key) {
            return Err(TrinoError::new(
                ErrorCode::INVALID_TABLE_PROPERTY,
                format!("Duplicate property: {key}"),
            ));
        }
        let value = property_value(&key, value)?;
        out.push((key, value));
    }
    Ok(out)
}

fn comment_text(comment: &Option<CommentDef>) -> Option<String> {
    comment.as_ref().map(|c| match c {
        CommentDef::WithEq(s) | CommentDef::WithoutEq(s) => s.clone(),
    })
}

pub async fn create_schema(session: &Session, statement: Statement) -> Result<Output> {
    let Statement::CreateSchema {
        schema_name: name,
        if_not_exists,
        with,
        options,
        ..
    } = statement
    else {
        unreachable!("dispatched on CreateSchema");
    };
    let SchemaName::Simple(name) = name else {
        return Err(TrinoError::not_supported(
            "CREATE SCHEMA … AUTHORIZATION is not supported",
        ));
    };
    let (catalog, schema) = schema_name(session, &name)?;
    reserved_schema(&schema)?;
    let lakehouse = session.lakehouse();
    let format = lakehouse.format(&catalog)?;
    let props = properties(
        &with
            .unwrap_or_default()
            .into_iter()
            .chain(options.unwrap_or_default())
            .collect::<Vec<_>>(),
    )?;
    let mut location = None;
    for (key, value) in props {
        match (key.as_str(), value) {
            ("location", PropertyValue::String(l)) => location = Some(l),
            _ => {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_SCHEMA_PROPERTY,
                    format!("Catalog '{catalog}' schema property '{key}' does not exist"),
                ))
            }
        }
    }
    match format.create_schema(&schema, location).await {
        Ok(()) => Ok(Output::update("CREATE SCHEMA")),
        Err(TableError::SchemaAlreadyExists { .. }) if if_not_exists => {
            Ok(Output::update("CREATE SCHEMA"))
        }
        Err(TableError::SchemaAlreadyExists { .. }) => Err(TrinoError::new(
            ErrorCode::SCHEMA_ALREADY_EXISTS,
            format!("Schema '{catalog}.{schema}' already exists"),
        )),
        Err(TableError::InvalidProperty { message, .. }) => {
            Err(TrinoError::new(ErrorCode::INVALID_SCHEMA_PROPERTY, message))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn drop_schema(
    session: &Session,
    names: &[ObjectName],
    if_exists: bool,
    cascade: bool,
) -> Result<Output> {
    let lakehouse = session.lakehouse();
    for name in names {
        let (catalog, schema) = schema_name(session, name)?;
        reserved_schema(&schema)?;
        let format = lakehouse.format(&catalog)?;
        if !format.schema_exists(&schema).await? {
            if if_exists {
                continue;
            }
            return Err(TrinoError::new(
                ErrorCode::SCHEMA_NOT_FOUND,
                format!("Schema '{catalog}.{schema}' does not exist"),
            ));
        }
        let tables = format.list_tables(&schema).await?;
        let views = lakehouse
            .metastore()
            .list_views(&catalog, Some(&schema))
            .await?;
        let empty = tables.is_empty() && views.is_empty();
        if !cascade && !empty {
            return Err(TrinoError::new(
                ErrorCode::SCHEMA_NOT_EMPTY,
                format!("Cannot drop non-empty schema '{schema}'"),
            ));
        }
        for view in views {
            lakehouse
                .metastore()
                .drop_view(&catalog, &schema, &view.name)
                .await?;
        }
        for table in tables {
            format.drop_table(&schema, &table).await?;
        }
        format.drop_schema(&schema).await?;
    }
    Ok(Output::update("DROP SCHEMA"))
}

pub async fn drop_table(
    session: &Session,
    names: &[ObjectName],
    if_exists: bool,
) -> Result<Output> {
    let lakehouse = session.lakehouse();
    for name in names {
        let name = session.qualify(name)?;
        let format = lakehouse.format(&name.catalog)?;
        crate::materialized::refuse_table_statement(lakehouse, &name, "DROP TABLE").await?;
        match format.drop_table(&name.schema, &name.name).await {
            Ok(()) => {}
            Err(TableError::TableNotFound { .. } | TableError::SchemaNotFound { .. }) => {
                if lakehouse
                    .metastore()
                    .get_view(&name.catalog, &name.schema, &name.name)
                    .await?
                    .is_some()
                {
                    return Err(TrinoError::new(
                        ErrorCode::GENERIC_USER_ERROR,
                        format!("Table '{name}' is a view, not a table: use DROP VIEW"),
                    ));
                }
                if !if_exists {
                    return Err(TrinoError::table_not_found(&name.to_string()));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Output::update("DROP TABLE"))
}

pub async fn drop_view(session: &Session, names: &[ObjectName], if_exists: bool) -> Result<Output> {
    let lakehouse = session.lakehouse();
    for name in names {
        let name = session.qualify(name)?;
        lakehouse.catalog(&name.catalog)?;
        if crate::materialized::record(lakehouse, &name)
            .await?
            .is_some()
        {
            return Err(TrinoError::new(
                ErrorCode::GENERIC_USER_ERROR,
                format!(
                    "View '{name}' is a materialized view, not a view: use DROP MATERIALIZED VIEW"
                ),
            ));
        }
        let dropped = lakehouse
            .metastore()
            .drop_view(&name.catalog, &name.schema, &name.name)
            .await?;
        if !dropped && !if_exists {
            return Err(TrinoError::new(
                ErrorCode::TABLE_NOT_FOUND,
                format!("View '{name}' does not exist"),
            ));
        }
    }
    Ok(Output::update("DROP VIEW"))
}

fn column_spec(column: &ColumnDef) -> Result<ColumnSpec> {
    let declared = declared_type(&column.data_type).map_err(|e| {
        TrinoError::new(
            e.code,
            format!("{} for column '{}'", e.message, column.name.value),
        )
    })?;
    let mut spec = ColumnSpec {
        name: column.name.value.to_ascii_lowercase(),
        data_type: declared.arrow,
        trino_type: declared.trino,
        nullable: true,
        comment: None,
    };
    for option in &column.options {
        match &option.option {
            ColumnOption::NotNull => spec.nullable = false,
            ColumnOption::Null => spec.nullable = true,
            ColumnOption::Comment(text) => spec.comment = Some(text.clone()),
            other => {
                return Err(TrinoError::not_supported(format!(
                    "Column option is not supported: {other}"
                )))
            }
        }
    }
    Ok(spec)
}

pub(crate) fn check_unique_columns(columns: &[ColumnSpec]) -> Result<()> {
    for (i, column) in columns.iter().enumerate() {
        if columns[..i].iter().any(|c| c.name == column.name) {
            return Err(TrinoError::new(
                ErrorCode::DUPLICATE_COLUMN_NAME,
                format!("Column name '{}' specified more than once", column.name),
            ));
        }
    }
    Ok(())
}

/// Arrow types a query produces, as a table column stores them.
fn storable(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        other => other.clone(),
    }
}

/// The column a query's output field makes in a table it creates.
pub(crate) fn column_of(name: &str, data_type: &DataType) -> Result<ColumnSpec> {
    if *data_type == DataType::Null {
        return Err(TrinoError::new(
            ErrorCode::GENERIC_USER_ERROR,
            format!("Column type is unknown: {name}"),
        ));
    }
    let data_type = storable(data_type);
    Ok(ColumnSpec {
        name: name.to_string(),
        trino_type: trino_type_name(&data_type),
        data_type,
        nullable: true,
        comment: None,
    })
}

/// The Arrow schema of declared columns.
fn arrow_schema(columns: &[ColumnSpec]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
            .collect::<Vec<_>>(),
    )
}

pub async fn create_table(session: &Session, create: CreateTable) -> Result<Output> {
    let lakehouse = session.lakehouse();
    let name = session.qualify(&create.name)?;
    let format = lakehouse.format(&name.catalog)?.clone();
    if create.or_replace && create.if_not_exists {
        return Err(TrinoError::not_supported(
            "'CREATE OR REPLACE' and 'IF NOT EXISTS' clauses can not be used together",
        ));
    }
    let options = match &create.table_options {
        CreateTableOptions::None => Vec::new(),
        CreateTableOptions::With(options) => options.clone(),
        other => {
            return Err(TrinoError::new(
                ErrorCode::SYNTAX_ERROR,
                format!("Unexpected table options: {other}"),
            ))
        }
    };
    let mut properties = properties(&options)?;
    let mut comment = comment_text(&create.comment);
    if let Some(at) = properties
        .iter()
        .position(|(k, _)| k == crate::dialect::TABLE_COMMENT_PROPERTY)
    {
        if let (_, PropertyValue::String(text)) = properties.remove(at) {
            comment = Some(text);
        }
    }
    lakehouse
        .require_schema(&name.catalog, &name.schema)
        .await?;
    let table_exists = format.load_table(&name.schema, &name.name).await?.is_some();
    let view_exists = lakehouse
        .metastore()
        .get_view(&name.catalog, &name.schema, &name.name)
        .await?
        .is_some()
        || crate::materialized::record(lakehouse, &name)
            .await?
            .is_some();
    // CREATE OR REPLACE of an existing table replaces it in one commit, keeping its history.
    let replace = table_exists && create.or_replace;
    if view_exists || (table_exists && !replace) {
        if create.if_not_exists {
            return Ok(Output::Update {
                update_type: "CREATE TABLE".into(),
                count: create.query.as_ref().map(|_| 0),
            });
        }
        return Err(TrinoError::new(
            ErrorCode::TABLE_ALREADY_EXISTS,
            format!("Table '{name}' already exists"),
        ));
    }

    let Some(query) = create.query else {
        let columns = create
            .columns
            .iter()
            .map(column_spec)
            .collect::<Result<Vec<_>>>()?;
        check_unique_columns(&columns)?;
        let request = CreateTableRequest {
            schema: name.schema.clone(),
            name: name.name.clone(),
            columns,
            comment,
            properties,
        };
        if replace {
            let schema = Arc::new(arrow_schema(&request.columns));
            let nothing = Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::empty(),
            ));
            format.replace_table(request, nothing).await?;
        } else {
            format.create_table(request).await?;
        }
        return Ok(Output::update("CREATE TABLE"));
    };

    // CREATE TABLE … AS SELECT: the table takes the query's columns; if writing the rows
    // fails, the new table is dropped again so that the statement changes nothing.
    if !create.columns.is_empty() {
        return Err(TrinoError::not_supported(
            "Column definitions with AS SELECT are not supported",
        ));
    }
    // The query is planned once: its columns make the table, its plan writes the rows.
    let (plan, state) =
        plan_statement(lakehouse, Statement::Query(query), session.scope(), 0).await?;
    let mut columns = Vec::new();
    for (i, field) in plan.schema().fields().iter().enumerate() {
        let column_name = field.name().to_ascii_lowercase();
        if column_name.contains('(') || column_name.is_empty() {
            return Err(TrinoError::new(
                ErrorCode::MISSING_COLUMN_NAME,
                format!("Column name not specified at position {}", i + 1),
            ));
        }
        columns.push(column_of(&column_name, field.data_type())?);
    }
    check_unique_columns(&columns)?;
    let request = CreateTableRequest {
        schema: name.schema.clone(),
        name: name.name.clone(),
        columns,
        comment,
        properties,
    };
    if replace {
        let plan = query::conformed(&name, plan, &arrow_schema(&request.columns))?;
        let rows = query::execute(session, plan, state).await?;
        let count = format.replace_table(request, rows).await?;
        return Ok(Output::Update {
            update_type: "CREATE TABLE".into(),
            count: Some(count),
        });
    }
    format.create_table(request).await?;
    let result = async {
        let table = lakehouse
            .load_table(&name)
            .await?
            .ok_or_else(|| TrinoError::table_not_found(&name.to_string()))?;
        query::append(session, &name, table.provider, plan, state).await
    }
    .await;
    match result {
        Ok(count) => Ok(Output::Update {
            update_type: "CREATE TABLE".into(),
            count: Some(count),
        }),
        Err(e) => {
            let _ = format.drop_table(&name.schema, &name.name).await;
            Err(e)
        }
    }
}

pub async fn create_view(session: &Session, create: CreateView) -> Result<Output> {
    let lakehouse = session.lakehouse();
    if create.materialized {
        return Err(TrinoError::not_supported(
            "Materialized views are not supported yet",
        ));
    }
    let name = session.qualify(&create.name)?;
    // SECURITY INVOKER (the dialect's view option): a view without an owner, read with
    // its reader's rights; DEFINER, the default, reads with its owner's.
    let invoker = match &create.options {
        CreateTableOptions::With(options) => options.iter().any(|option| {
            matches!(option, SqlOption::KeyValue { key, .. }
                if key.value == crate::dialect::VIEW_SECURITY_OPTION)
        }),
        _ => false,
    };
    let format = lakehouse.format(&name.catalog)?;
    lakehouse
        .require_schema(&name.catalog, &name.schema)
        .await?;
    if format.load_table(&name.schema, &name.name).await?.is_some()
        || crate::materialized::record(lakehouse, &name)
            .await?
            .is_some()
    {
        return Err(TrinoError::new(
            ErrorCode::TABLE_ALREADY_EXISTS,
            format!("Table '{name}' already exists"),
        ));
    }
    let mut sql = create.query.to_string();
    if !create.columns.is_empty() {
        let aliases: Vec<String> = create.columns.iter().map(|c| c.name.to_string()).collect();
        sql = format!("SELECT * FROM ({sql}) AS v({})", aliases.join(", "));
    }
    // The view's query is resolved in the view's own schema when it is used.
    let mut planner_session = session.clone();
    planner_session.catalog = Some(name.catalog.clone());
    planner_session.schema = Some(name.schema.clone());
    let statement = crate::dialect::parse_statements(&sql)?.remove(0);
    let plan_catalog = session.catalog.clone().or(Some(name.catalog.clone()));
    let plan_schema = session.schema.clone().or(Some(name.schema.clone()));
    let (plan, _) = plan_statement(
        lakehouse,
        statement,
        crate::planner::Scope {
            catalog: plan_catalog.as_deref(),
            schema: plan_schema.as_deref(),
            time_zone: session.time_zone.as_deref(),
            user: Some(&session.user),
            role: Some(&session.role),
            pinned: &[],
            reads: None,
            view_owner: false,
        },
        0,
    )
    .await?;
    let columns = plan
        .schema()
        .fields()
        .iter()
        .map(|f| ViewColumn {
            name: f.name().to_ascii_lowercase(),
            trino_type: trino_type_name(f.data_type()),
        })
        .collect();
    let record = ViewRecord {
        catalog: name.catalog.clone(),
        schema: name.schema.clone(),
        name: name.name.clone(),
        sql,
        columns,
        comment: None,
        owner: (!invoker).then(|| session.user.clone()),
    };
    match lakehouse
        .metastore()
        .create_view(&record, create.or_replace)
        .await
    {
        Ok(()) => Ok(Output::update("CREATE VIEW")),
        Err(aichemy_metastore::MetastoreError::ViewAlreadyExists { .. })
            if create.if_not_exists =>
        {
            Ok(Output::update("CREATE VIEW"))
        }
        Err(aichemy_metastore::MetastoreError::ViewAlreadyExists { .. }) => Err(TrinoError::new(
            ErrorCode::TABLE_ALREADY_EXISTS,
            format!("View already exists: '{name}'"),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn alter_table(session: &Session, alter: AlterTable) -> Result<Output> {
    let lakehouse = session.lakehouse();
    let name = session.qualify(&alter.name)?;
    let format = lakehouse.format(&name.catalog)?;
    if alter.operations.len() != 1 {
        return Err(TrinoError::not_supported(
            "ALTER TABLE takes one operation at a time",
        ));
    }
    let missing = |e: TableError| -> TrinoError {
        match e {
            TableError::TableNotFound { .. } | TableError::SchemaNotFound { .. } => {
                TrinoError::table_not_found(&name.to_string())
            }
            other => other.into(),
        }
    };
    match &alter.operations[0] {
        AlterTableOperation::RenameTable { table_name } => {
            let target = match table_name {
                RenameTableNameKind::To(n) | RenameTableNameKind::As(n) => n,
            };
            let target = match name_parts(target)?.as_slice() {
                [t] => QualifiedName {
                    catalog: name.catalog.clone(),
                    schema: name.schema.clone(),
                    name: t.clone(),
                },
                _ => session.qualify(target)?,
            };
            if target.catalog != name.catalog {
                return Err(TrinoError::not_supported(
                    "Table rename across catalogs is not supported",
                ));
            }
            let (from, to) = (
                crate::access::table_name(&name),
                crate::access::table_name(&target),
            );
            session.check_access(|p, who| p.check_can_rename_table(who, &from, &to))?;
            if format.load_table(&name.schema, &name.name).await?.is_none() {
                if alter.if_exists {
                    return Ok(Output::update("RENAME TABLE"));
                }
                return Err(TrinoError::table_not_found(&name.to_string()));
            }
            if lakehouse
                .metastore()
                .get_view(&target.catalog, &target.schema, &target.name)
                .await?
                .is_some()
            {
                return Err(TrinoError::new(
                    ErrorCode::TABLE_ALREADY_EXISTS,
                    format!("Target table '{target}' already exists"),
                ));
            }
            format
                .rename_table((&name.schema, &name.name), (&target.schema, &target.name))
                .await
                .map_err(|e| match e {
                    TableError::TableAlreadyExists { .. } => TrinoError::new(
                        ErrorCode::TABLE_ALREADY_EXISTS,
                        format!("Target table '{target}' already exists"),
                    ),
                    TableError::SchemaNotFound { .. } => {
                        TrinoError::schema_not_found(&target.schema)
                    }
                    other => missing(other),
                })?;
            Ok(Output::update("RENAME TABLE"))
        }
        AlterTableOperation::AddColumn {
            if_not_exists,
            column_def,
            ..
        } => {
            let column = column_spec(column_def)?;
            match format.add_column(&name.schema, &name.name, column).await {
                Ok(()) => Ok(Output::update("ADD COLUMN")),
                Err(TableError::ColumnAlreadyExists { .. }) if *if_not_exists => {
                    Ok(Output::update("ADD COLUMN"))
                }
                Err(TableError::ColumnAlreadyExists { column }) => Err(TrinoError::new(
                    ErrorCode::COLUMN_ALREADY_EXISTS,
                    format!("Column '{column}' already exists"),
                )),
                Err(e) => Err(missing(e)),
            }
        }
        AlterTableOperation::DropColumn {
            column_names,
            if_exists,
            ..
        } => {
            let [column] = column_names.as_slice() else {
                return Err(TrinoError::not_supported(
                    "ALTER TABLE DROP COLUMN takes one column",
                ));
            };
            let change = ColumnChange::Drop {
                column: ident_name(column),
            };
            change_column(&format, &name, change, *if_exists).await?;
            Ok(Output::update("DROP COLUMN"))
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            let change = ColumnChange::Rename {
                column: ident_name(old_column_name),
                to: ident_name(new_column_name),
            };
            change_column(&format, &name, change, false).await?;
            Ok(Output::update("RENAME COLUMN"))
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            let column = ident_name(column_name);
            let change = match op {
                AlterColumnOperation::SetDataType { data_type, .. } => {
                    let spec = column_spec(&ColumnDef {
                        name: column_name.clone(),
                        data_type: data_type.clone(),
                        options: Vec::new(),
                    })?;
                    ColumnChange::SetType { column, to: spec }
                }
                AlterColumnOperation::DropNotNull => ColumnChange::DropNotNull { column },
                other => {
                    return Err(TrinoError::not_supported(format!(
                        "ALTER COLUMN operation is not supported: {other}"
                    )))
                }
            };
            let update = match change {
                ColumnChange::SetType { .. } => "SET COLUMN TYPE",
                _ => "DROP NOT NULL CONSTRAINT",
            };
            change_column(&format, &name, change, false).await?;
            Ok(Output::update(update))
        }
        other => Err(TrinoError::not_supported(format!(
            "ALTER TABLE operation is not supported yet: {other}"
        ))),
    }
}

/// A column's name as the statement wrote it (unquoted names in lower case).
fn ident_name(ident: &datafusion::sql::sqlparser::ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

/// Applies one column change, in Trino's terms for a missing table or column.
pub(crate) async fn change_column(
    format: &std::sync::Arc<dyn aichemy_tables::TableFormat>,
    name: &QualifiedName,
    change: ColumnChange,
    if_exists: bool,
) -> Result<()> {
    let column = change.column().to_string();
    match format.alter_column(&name.schema, &name.name, change).await {
        Ok(()) => Ok(()),
        Err(TableError::ColumnNotFound { .. }) if if_exists => Ok(()),
        Err(TableError::ColumnNotFound { .. }) => Err(TrinoError::new(
            ErrorCode::COLUMN_NOT_FOUND,
            format!("Column '{column}' does not exist"),
        )),
        Err(TableError::TableNotFound { .. } | TableError::SchemaNotFound { .. }) => {
            Err(TrinoError::table_not_found(&name.to_string()))
        }
        Err(TableError::ColumnAlreadyExists { column }) => Err(TrinoError::new(
            ErrorCode::COLUMN_ALREADY_EXISTS,
            format!("Column '{column}' already exists"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// `ALTER VIEW name RENAME TO other`, read on the tokens (the parser takes only `ALTER VIEW
/// … AS query`); `None` for any other statement.
pub(crate) fn parse_alter_view_rename(sql: &str) -> Result<Option<(ObjectName, ObjectName)>> {
    use datafusion::sql::sqlparser::tokenizer::Token;
    let significant = super::significant_tokens(sql)?;
    let significant: Vec<&Token> = significant.iter().collect();
    let is = super::is_word;
    if significant.len() < 5 || !is(significant[0], "ALTER") || !is(significant[1], "VIEW") {
        return Ok(None);
    }
    let Some(rename) = significant.iter().position(|t| is(t, "RENAME")) else {
        return Ok(None);
    };
    if !significant.get(rename + 1).is_some_and(|t| is(t, "TO")) {
        return Ok(None);
    }
    let text = |tokens: &[&Token]| tokens.iter().map(|t| t.to_string()).collect::<String>();
    let from = super::parse_object_name(&text(&significant[2..rename]))?;
    let to = super::parse_object_name(&text(&significant[rename + 2..]))?;
    Ok(Some((from, to)))
}

/// Reads Trino's `ALTER TABLE name SET PROPERTIES p = v [, …]`, which the SQL parser does
/// not know; `None` for any other statement.
pub(crate) fn parse_alter_set_properties(sql: &str) -> Result<Option<(ObjectName, Properties)>> {
    use datafusion::sql::sqlparser::tokenizer::Token;
    let significant = super::significant_tokens(sql)?;
    let significant: Vec<&Token> = significant.iter().collect();
    let is = super::is_word;
    if significant.len() < 5 || !is(significant[0], "ALTER") || !is(significant[1], "TABLE") {
        return Ok(None);
    }
    let Some(set) = significant
        .windows(2)
        .position(|w| is(w[0], "SET") && is(w[1], "PROPERTIES"))
    else {
        return Ok(None);
    };
    let text = |tokens: &[&Token]| tokens.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    let name = super::parse_object_name(&text(&significant[2..set]).concat())?;
    let assignments = text(&significant[set + 2..]).join(" ");
    let wrapped = format!("CREATE TABLE t (c INTEGER) WITH ({assignments})");
    let Some(Statement::CreateTable(create)) = crate::dialect::parse_statements(&wrapped)?.pop()
    else {
        return Err(TrinoError::new(
            ErrorCode::SYNTAX_ERROR,
            format!("Expected property assignments after SET PROPERTIES: {assignments}"),
        ));
    };
    let CreateTableOptions::With(options) = &create.table_options else {
        return Err(TrinoError::new(
            ErrorCode::SYNTAX_ERROR,
            "Expected property assignments after SET PROPERTIES",
        ));
    };
    Ok(Some((name, properties(options)?)))
}

/// `ALTER TABLE … SET PROPERTIES`.
pub(crate) async fn set_properties(
    session: &Session,
    name: &ObjectName,
    properties: Properties,
) -> Result<Output> {
    let lakehouse = session.lakehouse();
    let name = session.qualify(name)?;
    let table = crate::access::table_name(&name);
    session.check_access(|rules, who| rules.check_can_set_table_properties(who, &table))?;
    let format = lakehouse.format(&name.catalog)?;
    if format.load_table(&name.schema, &name.name).await?.is_none() {
        return Err(TrinoError::table_not_found(&name.to_string()));
    }
    format
        .set_properties(&name.schema, &name.name, properties)
        .await?;
    Ok(Output::update("SET PROPERTIES"))
}

/// Renames a view within its catalog.
pub(crate) async fn rename_view(
    session: &Session,
    from: &ObjectName,
    to: &ObjectName,
) -> Result<Output> {
    let lakehouse = session.lakehouse();
    let name = session.qualify(from)?;
    let target = match name_parts(to)?.as_slice() {
        [t] => QualifiedName {
            catalog: name.catalog.clone(),
            schema: name.schema.clone(),
            name: t.clone(),
        },
        _ => session.qualify(to)?,
    };
    if target.catalog != name.catalog {
        return Err(TrinoError::not_supported(
            "View rename across catalogs is not supported",
        ));
    }
    let metastore = lakehouse.metastore();
    if metastore
        .get_view(&name.catalog, &name.schema, &name.name)
        .await?
        .is_none()
    {
        return Err(TrinoError::new(
            ErrorCode::TABLE_NOT_FOUND,
            format!("View '{name}' does not exist"),
        ));
    }
    lakehouse
        .require_schema(&target.catalog, &target.schema)
        .await?;
    let taken = metastore
        .get_view(&target.catalog, &target.schema, &target.name)
        .await?
        .is_some()
        || lakehouse.load_table(&target).await?.is_some();
    if taken {
        return Err(TrinoError::new(
            ErrorCode::TABLE_ALREADY_EXISTS,
            format!("Target view '{target}' already exists"),
        ));
    }
    metastore
        .rename_view(
            &name.catalog,
            (&name.schema, &name.name),
            (&target.schema, &target.name),
        )
        .await?;
    Ok(Output::update("RENAME VIEW"))
}

/// `COMMENT ON TABLE t IS …` and `COMMENT ON COLUMN t.c IS …` (`IS NULL` removes it).
pub(crate) async fn comment(
    session: &Session,
    object_type: CommentObject,
    object: &ObjectName,
    comment: Option<String>,
) -> Result<Output> {
    let lakehouse = session.lakehouse();
    match object_type {
        CommentObject::Table => {
            let name = session.qualify(object)?;
            let format = lakehouse.format(&name.catalog)?;
            if format.load_table(&name.schema, &name.name).await?.is_none() {
                return Err(TrinoError::table_not_found(&name.to_string()));
            }
            format
                .set_comment(&name.schema, &name.name, comment)
                .await?;
        }
        CommentObject::Column => {
            let mut parts = object.0.clone();
            let Some(column) = parts.pop() else {
                return Err(TrinoError::new(
                    ErrorCode::SYNTAX_ERROR,
                    "Expected a column",
                ));
            };
            let column = match column.as_ident() {
                Some(ident) => ident_name(ident),
                None => column.to_string(),
            };
            let name = session.qualify(&ObjectName(parts))?;
            let format = lakehouse.format(&name.catalog)?;
            if format.load_table(&name.schema, &name.name).await?.is_none() {
                return Err(TrinoError::table_not_found(&name.to_string()));
            }
            change_column(
                &format,
                &name,
                ColumnChange::Comment { column, comment },
                false,
            )
            .await?;
        }
        other => {
            return Err(TrinoError::not_supported(format!(
                "COMMENT ON {other} is not supported"
            )))
        }
    }
    Ok(Output::update("COMMENT"))
}
