//! A session: the catalog and schema in use, and the execution of one statement.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::{Expr, ObjectName, ObjectType, Statement, TableObject};

use crate::catalog::lakehouse::{Lakehouse, QualifiedName};
use crate::dialect;
use crate::error::{ErrorCode, Result, TrinoError};
use crate::planner::Scope;
use crate::statement::ingestions::{self, IngestionStatement};
use crate::statement::session_state::Prepared;
use crate::statement::{
    catalogs, change, ddl, merge, procedures, query, session_state, show, Family,
};
use crate::stop::StopSignal;

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

    /// Rows whose stream ends with GENERIC_INTERNAL_ERROR where computing them panics.
    fn contain_panics(self) -> Self {
        match self {
            Output::Rows { schema, stream } => {
                let contained = AssertUnwindSafe(stream).catch_unwind().map(|item| {
                    item.unwrap_or_else(|panic| {
                        let error = TrinoError::panicked(panic.as_ref());
                        Err(DataFusionError::External(Box::new(error)))
                    })
                });
                Output::Rows {
                    schema: schema.clone(),
                    stream: Box::pin(RecordBatchStreamAdapter::new(schema, contained)),
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
    /// The roles the user has enabled (`SET ROLE`, `X-Trino-Role`).
    pub role: aichemy_access::RoleSelection,
    /// The client's time zone (an IANA name or an offset); UTC when unset.
    pub time_zone: Option<String>,
    /// Session properties the client set (`SET SESSION`, `X-Trino-Session`).
    pub properties: BTreeMap<String, String>,
    /// Prepared statements by name (`PREPARE`, `X-Trino-Prepared-Statement`).
    pub prepared: BTreeMap<String, String>,
    /// Stops the statement running in this session from another thread (a cancel); its
    /// time limit reaches the running plan through it too.
    pub stop: StopSignal,
    /// The id the server gave the statement running (`system.runtime.queries`), for its
    /// lineage.
    pub query_id: Option<String>,
    /// The pipeline run and step the session runs statements for.
    pub parent: Option<crate::lineage::Parent>,
    /// What its statements read and wrote, for their audit.
    pub io: Arc<crate::statement_io::StatementIo>,
}

impl Session {
    pub fn new(lakehouse: Arc<Lakehouse>, user: impl Into<String>) -> Self {
        Self {
            lakehouse,
            catalog: None,
            schema: None,
            user: user.into(),
            role: Default::default(),
            time_zone: None,
            properties: BTreeMap::new(),
            prepared: BTreeMap::new(),
            stop: StopSignal::new(),
            query_id: None,
            parent: None,
            io: Default::default(),
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
            role: Some(&self.role),
            pinned: &[],
            reads: None,
            view_owner: false,
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
    /// included. A panic anywhere in the statement, planning or reading its rows, is this
    /// statement's GENERIC_INTERNAL_ERROR: the session, and the server or shell around
    /// it, go on.
    pub fn execute<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Output>> + Send + 'a>> {
        // Boxed: a statement's future is large in debug builds, and whoever blocks on
        // this one (a test's thread, a 2 MiB tokio worker) would carry it on its stack.
        // Its type erased: a pipeline step runs a statement inside a statement (RUN
        // PIPELINE), a future that would otherwise contain itself.
        Box::pin(async move {
            match AssertUnwindSafe(self.execute_limited(sql))
                .catch_unwind()
                .await
            {
                Ok(output) => output.map(Output::contain_panics),
                Err(panic) => Err(TrinoError::panicked(panic.as_ref())),
            }
        })
    }

    async fn execute_limited(&mut self, sql: &str) -> Result<Output> {
        // What a statement read starts with it (a shell's or a pipeline's session runs many).
        self.io.restart();
        self.lakehouse.refresh_grants(false).await?;
        self.check_access(|p, who| p.check_can_execute_query(who))?;
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
            Family::Ingestion => match ingestions::parse(sql)? {
                Some(IngestionStatement::Show) => {
                    return Box::pin(self.execute_unbounded(ingestions::SHOW_QUERY)).await
                }
                Some(statement) => return ingestions::execute(self, statement).await,
                None => {}
            },
            Family::Pipeline => {
                if let Some(statement) = crate::statement::pipelines::parse(sql)? {
                    return Box::pin(crate::statement::pipelines::execute(self, statement)).await;
                }
            }
            Family::Materialized => {
                if let Some(statement) = crate::statement::materialized::parse(sql)? {
                    // Boxed: a refresh's future is large, and every statement's would
                    // grow by it (on the stack of whoever blocks on it).
                    return Box::pin(crate::statement::materialized::execute(self, statement))
                        .await;
                }
            }
            Family::Grants => {
                if let Some(statement) = crate::statement::grants::parse(sql)? {
                    return crate::statement::grants::execute(self, statement).await;
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
            Family::Sql => {
                // Only ALTER … SET AUTHORIZATION is read by the grants' parser here; the
                // word is looked for without copying the statement.
                let authorization = sql
                    .as_bytes()
                    .windows(b"AUTHORIZATION".len())
                    .any(|w| w.eq_ignore_ascii_case(b"AUTHORIZATION"));
                if authorization {
                    if let Some(statement) = crate::statement::grants::parse(sql)? {
                        return crate::statement::grants::execute(self, statement).await;
                    }
                }
                if let Some(procedure) = procedures::parse_alter_execute(sql)? {
                    return procedures::execute(self, procedure).await;
                }
                if let Some((table, properties)) = ddl::parse_alter_set_properties(sql)? {
                    return ddl::set_properties(self, &table, properties).await;
                }
                if let Some((from, to)) = ddl::parse_alter_view_rename(sql)? {
                    return ddl::rename_view(self, &from, &to).await;
                }
            }
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

    /// Executes a prepared statement's text with its `?` parameters bound to `values` in
    /// its syntax tree.
    async fn execute_prepared(&mut self, text: &str, values: &[Expr]) -> Result<Output> {
        match session_state::prepared_statement(text)? {
            Prepared::Sql(mut statement) => {
                dialect::bind_parameters(&mut statement, values)?;
                Box::pin(self.execute_statement(*statement)).await
            }
            Prepared::Catalog(mut statement) => {
                statement.bind(values)?;
                catalogs::execute(self, statement).await
            }
            // SHOW, USE, SET SESSION, … take no parameters.
            Prepared::Other => {
                dialect::check_parameter_count(0, values.len())?;
                Box::pin(self.execute_unbounded(text)).await
            }
        }
    }

    /// Executes one parsed statement.
    pub async fn execute_statement(&mut self, mut statement: Statement) -> Result<Output> {
        // Before `current_user` is bound: a DELETE may gain the user's row filter.
        crate::access::statements::check(self, &mut statement)?;
        // A view keeps `current_user` to be evaluated when it is read.
        if !matches!(statement, Statement::CreateView(_)) {
            dialect::bind_session_functions(&mut statement, &self.values());
        }
        // Who owns what it creates, under SQL grants.
        let ownership = crate::access::grants::Ownership::of(self, &statement)?;
        // A write's text, for its lineage.
        let text = match &statement {
            Statement::Insert(_)
            | Statement::Delete(_)
            | Statement::Update(_)
            | Statement::Merge(_)
            | Statement::CreateTable(_) => statement.to_string(),
            _ => String::new(),
        };
        let output = match statement {
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
                let values: Vec<Expr> = using.into_iter().map(|v| v.expr).collect();
                self.execute_prepared(&sql, &values).await
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
                let values: Vec<Expr> = parameters
                    .into_iter()
                    .chain(using.into_iter().map(|v| v.expr))
                    .collect();
                let text = session_state::prepared(self, &name)?.to_string();
                self.execute_prepared(&text, &values).await
            }
            Statement::Query(_) | Statement::Explain { .. } => query::run(self, statement).await,
            Statement::Insert(ref insert) => {
                let target = match &insert.table {
                    TableObject::TableName(name) => name.clone(),
                    TableObject::TableFunction(_) => {
                        return Err(TrinoError::not_supported("INSERT into a table function"))
                    }
                };
                let count = crate::lineage::recorded(
                    self,
                    "INSERT",
                    &text,
                    query::insert(self, statement.clone(), &target),
                )
                .await?;
                Ok(Output::Update {
                    update_type: "INSERT".into(),
                    count: Some(count),
                })
            }
            // Statements that change rows run again on the newest version when another
            // writer changed the same files first.
            Statement::Delete(delete) => {
                let work = change::replanned(|| change::delete(self, delete.clone()));
                Ok(Output::Update {
                    update_type: "DELETE".into(),
                    count: Some(crate::lineage::recorded(self, "DELETE", &text, work).await?),
                })
            }
            Statement::Update(update) => {
                let work = change::replanned(|| change::update(self, update.clone()));
                Ok(Output::Update {
                    update_type: "UPDATE".into(),
                    count: Some(crate::lineage::recorded(self, "UPDATE", &text, work).await?),
                })
            }
            Statement::Merge(statement) => {
                let work = change::replanned(|| merge::merge(self, statement.clone()));
                Ok(Output::Update {
                    update_type: "MERGE".into(),
                    count: Some(crate::lineage::recorded(self, "MERGE", &text, work).await?),
                })
            }
            Statement::Truncate(truncate) => {
                change::replanned(|| change::truncate(self, truncate.clone())).await?;
                Ok(Output::update("TRUNCATE TABLE"))
            }
            Statement::Call(function) => procedures::call(self, function).await,
            Statement::Comment {
                object_type,
                object_name,
                comment,
                ..
            } => ddl::comment(self, object_type, &object_name, comment).await,
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
            Statement::CreateTable(create) if create.query.is_some() => {
                let this = &*self;
                crate::lineage::recorded(this, "CREATE TABLE", &text, async move {
                    ddl::create_table(this, create).await
                })
                .await
            }
            Statement::CreateTable(create) => ddl::create_table(self, create).await,
            Statement::CreateView(create) => ddl::create_view(self, create).await,
            Statement::AlterTable(alter) => ddl::alter_table(self, alter).await,
            other => Err(TrinoError::not_supported(format!(
                "This statement is not supported: {}",
                first_words(&other.to_string())
            ))),
        }?;
        ownership.record(self).await?;
        Ok(output)
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
}

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

/// Collects the rows of an output, for callers that want them all (tests, scripts).
pub async fn collect(output: Output) -> Result<Vec<RecordBatch>> {
    use futures::TryStreamExt;
    match output {
        Output::Rows { stream, .. } => Ok(stream.try_collect().await?),
        Output::Update { .. } => Ok(Vec::new()),
    }
}
