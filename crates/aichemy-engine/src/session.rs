//! A session: the catalog and schema in use, and the execution of one statement.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, UInt64Type};
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, ObjectType, Query, SetExpr, Statement, TableObject,
};

use aichemy_tables::TableError;

use crate::catalog::lakehouse::{Lakehouse, QualifiedName};
use crate::dialect::{self, named_struct, row_constructor_args};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::planner::{plan_statement, Scope};
use crate::statement::{catalogs, ddl, session_state, show, Family};
use crate::stop::{stoppable, StopSignal};

/// What a statement produced.
pub enum Output {
    /// Rows, streamed as they are computed.
    Rows {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
    },
    /// A statement that changed something: Trino's update type (`CREATE TABLE`,
    /// `INSERT`) and, for DML, the number of rows.
    Update {
        update_type: String,
        count: Option<u64>,
    },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Rows { schema, .. } => write!(f, "Rows({schema:?})"),
            Output::Update { update_type, count } => write!(f, "Update({update_type}, {count:?})"),
        }
    }
}

impl Output {
    pub fn update(update_type: &str) -> Self {
        Output::Update {
            update_type: update_type.to_string(),
            count: None,
        }
    }

    /// Rows that fail with EXCEEDED_TIME_LIMIT once `deadline` passes.
    fn with_deadline(self, deadline: tokio::time::Instant, limit: String) -> Self {
        match self {
            Output::Rows { schema, stream } => {
                let sleep = Box::pin(tokio::time::sleep_until(deadline));
                let bounded = futures::stream::unfold(
                    (stream, sleep, false),
                    move |(mut stream, mut sleep, ended)| {
                        let limit = limit.clone();
                        async move {
                            if ended {
                                return None;
                            }
                            tokio::select! {
                                biased;
                                () = &mut sleep => {
                                    let error = session_state::time_limit_exceeded(&limit);
                                    Some((
                                        Err(DataFusionError::External(Box::new(error))),
                                        (stream, sleep, true),
                                    ))
                                }
                                next = stream.next() => {
                                    next.map(|item| (item, (stream, sleep, false)))
                                }
                            }
                        }
                    },
                );
                Output::Rows {
                    schema: schema.clone(),
                    stream: Box::pin(RecordBatchStreamAdapter::new(schema, bounded)),
                }
            }
            update => update,
        }
    }

    /// Rows already in memory.
    pub fn batch(batch: RecordBatch) -> Self {
        let schema = batch.schema();
        let stream = futures::stream::iter(vec![Ok(batch)]);
        Output::Rows {
            schema: schema.clone(),
            stream: Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
        }
    }
}

/// One user's session on the lakehouse.
#[derive(Debug, Clone)]
pub struct Session {
    lakehouse: Arc<Lakehouse>,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub user: String,
    /// The client's time zone (an IANA name or an offset); UTC when unset.
    pub time_zone: Option<String>,
    /// Session properties the client set (`SET SESSION`, `X-Trino-Session`).
    pub properties: BTreeMap<String, String>,
    /// Prepared statements by name (`PREPARE`, `X-Trino-Prepared-Statement`).
    pub prepared: BTreeMap<String, String>,
    /// Stops the statement running in this session from another thread (a cancel); its
    /// time limit reaches the running plan through it too.
    pub stop: StopSignal,
}

impl Session {
    pub fn new(lakehouse: Arc<Lakehouse>, user: impl Into<String>) -> Self {
        Self {
            lakehouse,
            catalog: None,
            schema: None,
            user: user.into(),
            time_zone: None,
            properties: BTreeMap::new(),
            prepared: BTreeMap::new(),
            stop: StopSignal::new(),
        }
    }

    pub fn lakehouse(&self) -> &Arc<Lakehouse> {
        &self.lakehouse
    }

    /// Where the session's unqualified names resolve, and its time zone.
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            catalog: self.catalog.as_deref(),
            schema: self.schema.as_deref(),
            time_zone: self.time_zone.as_deref(),
            user: Some(&self.user),
        }
    }

    /// The values of `current_user` and the other session functions.
    pub fn values(&self) -> dialect::SessionValues {
        dialect::SessionValues {
            user: self.user.clone(),
            catalog: self.catalog.clone(),
            schema: self.schema.clone(),
            time_zone: self.time_zone.clone().unwrap_or_else(|| "UTC".to_string()),
        }
    }

    /// Executes the one statement in `sql` (a trailing `;` is allowed).
    /// A session's `query_max_run_time` bounds the whole statement, reading its rows
    /// included.
    pub async fn execute(&mut self, sql: &str) -> Result<Output> {
        for (name, value) in &self.properties {
            session_state::check_session_property(name, value)?;
        }
        let cpu_limit = smaller(
            session_state::cpu_limit(&self.properties),
            self.lakehouse.max_cpu_time().map(seconds_text),
        );
        self.stop.set_cpu_limit(
            cpu_limit.map(|(limit, text)| (limit, session_state::cpu_limit_exceeded(&text))),
        );
        let limit = smaller(
            session_state::time_limit(&self.properties),
            self.lakehouse.max_run_time().map(seconds_text),
        );
        let Some((limit, text)) = limit else {
            self.stop.set_deadline(None);
            return self.execute_unbounded(sql).await;
        };
        let deadline = tokio::time::Instant::now() + limit;
        // The plan checks it as it runs: a thread busy inside one operator never waits
        // for the timer below.
        self.stop.set_deadline(Some((
            deadline.into_std(),
            session_state::time_limit_exceeded(&text),
        )));
        match tokio::time::timeout_at(deadline, self.execute_unbounded(sql)).await {
            Ok(output) => Ok(output?.with_deadline(deadline, text)),
            Err(_) => Err(session_state::time_limit_exceeded(&text)),
        }
    }

    /// Executes without checking the session again: the statement that runs another
    /// (`EXECUTE`) is already within the session's checks and time limit.
    async fn execute_unbounded(&mut self, sql: &str) -> Result<Output> {
        // Each statement is read by the one parser of its family.
        match crate::statement::family(sql) {
            Family::Catalog => {
                if let Some(statement) = catalogs::parse(sql)? {
                    return catalogs::execute(self, statement).await;
                }
            }
            Family::SessionState => {
                if let Some(statement) = session_state::parse(sql)? {
                    return session_state::execute(self, statement).await;
                }
            }
            Family::Show => {
                if let Some(statement) = show::parse(sql)? {
                    return show::execute(self, statement).await;
                }
            }
            Family::Sql => {}
        }
        let mut statements = dialect::parse_statements(sql)?;
        match statements.len() {
            1 => self.execute_statement(statements.remove(0)).await,
            0 => Err(TrinoError::new(
                ErrorCode::SYNTAX_ERROR,
                "line 1:1: empty statement",
            )),
            _ => Err(TrinoError::new(
                ErrorCode::SYNTAX_ERROR,
                "Only one statement can be executed at a time",
            )),
        }
    }

    /// Executes one parsed statement.
    pub async fn execute_statement(&mut self, mut statement: Statement) -> Result<Output> {
        // A view keeps `current_user` to be evaluated when it is read.
        if !matches!(statement, Statement::CreateView(_)) {
            dialect::bind_session_functions(&mut statement, &self.values());
        }
        match statement {
            // EXECUTE IMMEDIATE 'text with ?' USING values (sqlparser reads IMMEDIATE as a
            // procedure name in the generic dialect).
            Statement::Execute {
                name,
                parameters,
                immediate,
                using,
                ..
            } if immediate
                || name
                    .as_ref()
                    .is_some_and(|n| n.to_string().eq_ignore_ascii_case("immediate")) =>
            {
                let [Expr::Value(text)] = parameters.as_slice() else {
                    return Err(TrinoError::new(
                        ErrorCode::SYNTAX_ERROR,
                        "EXECUTE IMMEDIATE takes one string literal",
                    ));
                };
                let Some(sql) = text.value.clone().into_string() else {
                    return Err(TrinoError::new(
                        ErrorCode::SYNTAX_ERROR,
                        "EXECUTE IMMEDIATE takes one string literal",
                    ));
                };
                dialect::check_preparable(&sql)?;
                let values: Vec<String> = using.iter().map(|v| v.expr.to_string()).collect();
                let bound = dialect::bind_parameters(&sql, &values)?;
                Box::pin(self.execute_unbounded(&bound)).await
            }
            // EXECUTE name [USING values]: a statement prepared earlier in the session.
            Statement::Execute {
                name: Some(name),
                parameters,
                using,
                ..
            } => {
                let name = match name.0.as_slice() {
                    [part] => match part.as_ident() {
                        Some(ident) if ident.quote_style.is_some() => ident.value.clone(),
                        Some(ident) => ident.value.to_lowercase(),
                        None => name.to_string(),
                    },
                    _ => name.to_string(),
                };
                let values: Vec<String> = parameters
                    .iter()
                    .map(ToString::to_string)
                    .chain(using.iter().map(|v| v.expr.to_string()))
                    .collect();
                // A prepared statement may also arrive in a client's header, unchecked.
                let text = session_state::prepared(self, &name)?;
                dialect::check_preparable(text)?;
                let bound = dialect::bind_parameters(text, &values)?;
                Box::pin(self.execute_unbounded(&bound)).await
            }
            Statement::Query(_) | Statement::Explain { .. } => self.query(statement).await,
            Statement::Insert(ref insert) => {
                let target = match &insert.table {
                    TableObject::TableName(name) => name.clone(),
                    TableObject::TableFunction(_) => {
                        return Err(TrinoError::not_supported("INSERT into a table function"))
                    }
                };
                let count = self.insert(statement.clone(), &target).await?;
                Ok(Output::Update {
                    update_type: "INSERT".into(),
                    count: Some(count),
                })
            }
            Statement::CreateSchema { .. } => ddl::create_schema(self, statement).await,
            Statement::Drop {
                object_type,
                if_exists,
                names,
                cascade,
                ..
            } => match object_type {
                ObjectType::Schema | ObjectType::Database => {
                    ddl::drop_schema(self, &names, if_exists, cascade).await
                }
                ObjectType::Table => ddl::drop_table(self, &names, if_exists).await,
                ObjectType::View => ddl::drop_view(self, &names, if_exists).await,
                other => Err(TrinoError::not_supported(format!(
                    "DROP {other} is not supported"
                ))),
            },
            Statement::CreateTable(create) => ddl::create_table(self, create).await,
            Statement::CreateView(create) => ddl::create_view(self, create).await,
            Statement::AlterTable(alter) => ddl::alter_table(self, alter).await,
            other => Err(TrinoError::not_supported(format!(
                "This statement is not supported: {}",
                first_words(&other.to_string())
            ))),
        }
    }

    async fn query(&self, statement: Statement) -> Result<Output> {
        let (plan, state) = plan_statement(&self.lakehouse, statement, self.scope(), 0).await?;
        let frame = DataFrame::new(state, plan);
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let task = Arc::new(frame.task_ctx());
        let physical = stoppable(frame.create_physical_plan().await?, &self.stop)?;
        let stream = datafusion::physical_plan::execute_stream(physical, task)?;
        Ok(Output::Rows { schema, stream })
    }

    /// Completes an object name with the session's catalog and schema.
    pub fn qualify(&self, name: &ObjectName) -> Result<QualifiedName> {
        let parts = name_parts(name)?;
        let reference = match parts.as_slice() {
            [t] => datafusion::sql::TableReference::bare(t.as_str()),
            [s, t] => datafusion::sql::TableReference::partial(s.as_str(), t.as_str()),
            [c, s, t] => datafusion::sql::TableReference::full(c.as_str(), s.as_str(), t.as_str()),
            _ => {
                return Err(TrinoError::new(
                    ErrorCode::SYNTAX_ERROR,
                    format!("Too many dots in table name: {name}"),
                ))
            }
        };
        self.lakehouse
            .qualify(&reference, self.catalog.as_deref(), self.schema.as_deref())
    }

    /// Runs an INSERT after checking that its columns fit the table as Trino would;
    /// answers the number of rows written. Nothing is committed when any row fails.
    async fn insert(&self, statement: Statement, target: &ObjectName) -> Result<u64> {
        let name = self.qualify(target)?;
        let Some(table) = self.lakehouse.load_table(&name).await? else {
            self.lakehouse.catalog(&name.catalog)?;
            if self
                .lakehouse
                .metastore()
                .get_view(&name.catalog, &name.schema, &name.name)
                .await?
                .is_some()
            {
                return Err(TrinoError::not_supported(format!(
                    "Inserting into views is not supported: '{name}'"
                )));
            }
            self.lakehouse
                .require_schema(&name.catalog, &name.schema)
                .await?;
            return Err(TrinoError::table_not_found(&name.to_string()));
        };
        let mut statement = statement;
        let mut target_names: Vec<String> = Vec::new();
        if let Statement::Insert(insert) = &mut statement {
            let targets: Vec<(&str, &DataType)> = if insert.columns.is_empty() {
                table
                    .columns
                    .iter()
                    .map(|c| (c.name.as_str(), &c.data_type))
                    .collect()
            } else {
                let mut targets = Vec::new();
                for column in &insert.columns {
                    let wanted = column.value.to_ascii_lowercase();
                    let found =
                        table
                            .columns
                            .iter()
                            .find(|c| c.name == wanted)
                            .ok_or_else(|| {
                                TrinoError::new(
                                    ErrorCode::COLUMN_NOT_FOUND,
                                    format!("Insert column name does not exist: {wanted}"),
                                )
                            })?;
                    targets.push((found.name.as_str(), &found.data_type));
                }
                targets
            };
            target_names = targets.iter().map(|(name, _)| name.to_string()).collect();
            // An omitted column is NULL.
            if let Some(column) = table
                .columns
                .iter()
                .find(|c| !c.nullable && !target_names.contains(&c.name))
            {
                return Err(TableError::NullInNotNullColumn {
                    column: column.name.clone(),
                }
                .into());
            }
            if let Some(source) = &mut insert.source {
                name_row_values(source, &targets);
                let (source_plan, _) = plan_statement(
                    &self.lakehouse,
                    Statement::Query(source.clone()),
                    self.scope(),
                    0,
                )
                .await?;
                let sources: Vec<DataType> = source_plan
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect();
                check_insert_types(&targets, &sources)?;
            }
        }
        let table_names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let named = |e: TrinoError| name_null_violation(e, &table_names, &target_names);
        let (plan, state) = plan_statement(&self.lakehouse, statement, self.scope(), 0)
            .await
            .map_err(named)?;
        let frame = DataFrame::new(state, plan);
        let task = Arc::new(frame.task_ctx());
        let batches = async {
            let physical = stoppable(frame.create_physical_plan().await?, &self.stop)?;
            datafusion::physical_plan::collect(physical, task).await
        }
        .await
        .map_err(|e| named(e.into()))?;
        Ok(batches
            .iter()
            .filter(|b| b.num_columns() > 0)
            .map(|b| {
                b.column(0)
                    .as_primitive_opt::<UInt64Type>()
                    .map(|c| c.iter().flatten().sum::<u64>())
                    .unwrap_or(0)
            })
            .sum())
    }
}

/// DataFusion's own NOT NULL checks name a position, not a column: `Column 'column2'` of
/// the VALUES rows (1-based, in insert-column order) or `batch column at '1'` of the table.
/// Answers Trino's CONSTRAINT_VIOLATION naming the column instead.
/// The smaller of a session's limit and the configured one, each with its text.
fn smaller(
    session: Option<(Duration, String)>,
    configured: Option<(Duration, String)>,
) -> Option<(Duration, String)> {
    match (session, configured) {
        (Some(session), Some(configured)) => Some(if session.0 <= configured.0 {
            session
        } else {
            configured
        }),
        (session, configured) => session.or(configured),
    }
}

/// A configured limit with Trino's text for it (`90.00s`).
fn seconds_text(limit: Duration) -> (Duration, String) {
    (limit, format!("{:.2}s", limit.as_secs_f64()))
}

fn name_null_violation(error: TrinoError, table: &[&str], targets: &[String]) -> TrinoError {
    let message = &error.message;
    let quoted = || message.split('\'').nth(1);
    let column = if message.contains("is declared as non-nullable but contains null values") {
        quoted()
            .and_then(|c| c.strip_prefix("column"))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| targets.get(n.checked_sub(1)?).cloned())
    } else if message.contains("has null but schema specifies non-nullable") {
        quoted()
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| table.get(n).map(|c| c.to_string()))
    } else {
        None
    };
    match column {
        Some(column) => TableError::NullInNotNullColumn { column }.into(),
        None => error,
    }
}

/// Gives the `ROW(…)` values of an `INSERT … VALUES` the field names of the ROW columns
/// they go to: Trino pairs row fields by position, DataFusion by name.
fn name_row_values(source: &mut Query, targets: &[(&str, &DataType)]) {
    let SetExpr::Values(values) = source.body.as_mut() else {
        return;
    };
    for row in &mut values.rows {
        for (value, (_, data_type)) in row.iter_mut().zip(targets) {
            name_row_value(value, data_type);
        }
    }
}

fn name_row_value(value: &mut Expr, data_type: &DataType) {
    let DataType::Struct(fields) = data_type else {
        return;
    };
    let Some(args) = row_constructor_args(value) else {
        return;
    };
    if args.len() != fields.len() {
        return;
    }
    let named = fields
        .iter()
        .zip(args)
        .map(|(field, mut arg)| {
            name_row_value(&mut arg, field.data_type());
            (field.name().clone(), arg)
        })
        .collect();
    *value = named_struct(named);
}

/// The parts of an object name, lower-cased unless quoted (Trino names are case-insensitive).
pub fn name_parts(name: &ObjectName) -> Result<Vec<String>> {
    name.0
        .iter()
        .map(|part| {
            let ident = part.as_ident().ok_or_else(|| {
                TrinoError::new(ErrorCode::SYNTAX_ERROR, format!("Invalid name: {name}"))
            })?;
            Ok(if ident.quote_style.is_some() {
                ident.value.clone()
            } else {
                ident.value.to_ascii_lowercase()
            })
        })
        .collect()
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Trino's implicit coercions for INSERT: numbers to numbers, text to text, dates and
/// timestamps to each other; anything else is a type mismatch.
fn check_insert_types(targets: &[(&str, &DataType)], sources: &[DataType]) -> Result<()> {
    let fits = targets.len() == sources.len()
        && targets
            .iter()
            .zip(sources)
            .all(|((_, target), source)| coercible(source, target));
    if fits {
        return Ok(());
    }
    let names = |types: Vec<&DataType>| {
        types
            .into_iter()
            .map(crate::types::trino_type_name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(TrinoError::new(
        ErrorCode::TYPE_MISMATCH,
        format!(
            "Insert query has mismatched column types: Table: [{}], Query: [{}]",
            names(targets.iter().map(|(_, t)| *t).collect()),
            names(sources.iter().collect())
        ),
    ))
}

fn coercible(source: &DataType, target: &DataType) -> bool {
    use DataType::*;
    if source == target || *source == Null {
        return true;
    }
    match (source, target) {
        (s, t) if s.is_numeric() && t.is_numeric() => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        (Date32 | Date64 | Timestamp(_, _), Date32 | Date64 | Timestamp(_, _)) => true,
        (Time32(_) | Time64(_), Time32(_) | Time64(_)) => true,
        (
            List(s) | LargeList(s) | FixedSizeList(s, _),
            List(t) | LargeList(t) | FixedSizeList(t, _),
        ) => coercible(s.data_type(), t.data_type()),
        (Map(s, _), Map(t, _)) => coercible(s.data_type(), t.data_type()),
        (Struct(s), Struct(t)) => {
            s.len() == t.len()
                && s.iter()
                    .zip(t.iter())
                    .all(|(a, b)| coercible(a.data_type(), b.data_type()))
        }
        _ => false,
    }
}

/// Collects the rows of an output, for callers that want them all (tests, scripts).
pub async fn collect(output: Output) -> Result<Vec<RecordBatch>> {
    use futures::TryStreamExt;
    match output {
        Output::Rows { stream, .. } => Ok(stream.try_collect().await?),
        Output::Update { .. } => Ok(Vec::new()),
    }
}
