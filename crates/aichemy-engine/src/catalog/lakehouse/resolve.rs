//! Name resolution: a statement's session state, the relations it references resolved
//! fresh into a catalog snapshot, and views planned from their text.

use std::sync::Arc;

use datafusion::catalog::CatalogProviderList;
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider,
    SchemaProvider, TableProvider,
};
use datafusion::datasource::ViewTable;
use datafusion::execution::context::SessionState;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use datafusion::sql::TableReference;

use crate::catalog::metadata;
use crate::error::{ErrorCode, Result, TrinoError};
use crate::hidden_path::PATH_SUFFIX;
use crate::planner::{REF_SUFFIX, TIMESTAMP_SUFFIX, VERSION_SUFFIX};

use super::{CatalogEntry, Lakehouse, QualifiedName, QueryUser, ViewOwnerReads};

impl Lakehouse {
    /// A base session state with Trino-compatible settings and functions, for `user`'s
    /// statement (kept as its [`QueryUser`]).
    pub fn session_context(
        &self,
        catalog: &str,
        schema: &str,
        time_zone: Option<&str>,
        user: Option<(&str, &aichemy_access::RoleSelection)>,
    ) -> SessionContext {
        let mut config = self
            .execution
            .session_config()
            .with_information_schema(false)
            .with_default_catalog_and_schema(catalog, schema)
            .with_create_default_catalog_and_schema(false);
        if let Some((user, role)) = user {
            config = config.with_extension(Arc::new(QueryUser(user.to_string(), role.clone())));
        }
        let options = config.options_mut();
        // Trino reads 1.5 as DECIMAL(2,1), not DOUBLE.
        options.sql_parser.parse_float_as_decimal = true;
        options.sql_parser.map_string_types_to_utf8view = false;
        // The client's zone: `current_timestamp` and casts to TIMESTAMP WITH TIME ZONE.
        options.execution.time_zone = time_zone.map(str::to_string);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.execution.runtime())
            .with_default_features();
        if let Some(planners) = state.expr_planners() {
            planners.insert(0, Arc::new(crate::functions::number::NumberPlanner));
        }
        state
            .relation_planners()
            .get_or_insert_with(Vec::new)
            .insert(0, Arc::new(crate::unnest::TrinoUnnest));
        let state = crate::optimizer::install(state).build();
        let ctx = SessionContext::new_with_state(state);
        crate::functions::register_all(&ctx);
        ctx.register_udf(self.embedder.udf());
        ctx
    }

    /// Resolves the relations a statement references into a catalog snapshot for planning.
    pub async fn resolve_references(
        self: &Arc<Self>,
        references: &[TableReference],
        default_catalog: Option<&str>,
        default_schema: Option<&str>,
        state: &SessionState,
        depth: usize,
        pinned: &[(QualifiedName, Arc<dyn TableProvider>)],
    ) -> Result<Arc<dyn CatalogProviderList>> {
        let list = Arc::new(MemoryCatalogProviderList::new());
        // The reader's rights, when a policy is configured and the statement has a user.
        let access = match state.config().get_extension::<QueryUser>() {
            Some(user) => self.access_as(&user.0, &user.1)?,
            None => None,
        };
        let as_owner = state.config().get_extension::<ViewOwnerReads>().is_some();
        for reference in references {
            // Table functions (generate_series, unnest, …) are not relations.
            if let TableReference::Bare { table } = reference {
                if state.table_functions().contains_key(table.as_ref()) {
                    continue;
                }
            }
            let name = self.qualify(reference, default_catalog, default_schema)?;
            let provider = match pinned.iter().find(|(pinned, _)| *pinned == name) {
                // The caller's own provider, as it is: it may know it by its address.
                Some((_, provider)) => provider.clone(),
                None => {
                    let provider = noted(&name, self.relation(&name, state, depth).await?);
                    match &access {
                        Some(access) => {
                            let reader = (access, as_owner);
                            guarded(self, state, reader, &name, provider, depth).await?
                        }
                        None => provider,
                    }
                }
            };
            let catalog = match list.catalog(&name.catalog) {
                Some(c) => c,
                None => {
                    let c: Arc<dyn CatalogProvider> = Arc::new(MemoryCatalogProvider::new());
                    list.register_catalog(name.catalog.clone(), c.clone());
                    c
                }
            };
            let schema = match catalog.schema(&name.schema) {
                Some(s) => s,
                None => {
                    let s: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
                    catalog
                        .register_schema(&name.schema, s.clone())
                        .map_err(TrinoError::from)?;
                    s
                }
            };
            if !schema.table_exist(&name.name) {
                schema
                    .register_table(name.name.clone(), provider)
                    .map_err(TrinoError::from)?;
            }
        }
        Ok(list)
    }

    /// Completes a possibly partial name with the session's catalog and schema.
    pub fn qualify(
        &self,
        reference: &TableReference,
        default_catalog: Option<&str>,
        default_schema: Option<&str>,
    ) -> Result<QualifiedName> {
        let missing_schema = || {
            TrinoError::new(
                ErrorCode::MISSING_SCHEMA_NAME,
                "Schema must be specified when session schema is not set",
            )
        };
        let (catalog, schema, name) = match reference {
            TableReference::Bare { table } => (
                default_catalog.ok_or_else(missing_schema)?.to_string(),
                default_schema.ok_or_else(missing_schema)?.to_string(),
                table.to_string(),
            ),
            TableReference::Partial { schema, table } => (
                default_catalog
                    .ok_or_else(|| {
                        TrinoError::new(
                            ErrorCode::GENERIC_USER_ERROR,
                            "Catalog must be specified when session catalog is not set",
                        )
                    })?
                    .to_string(),
                schema.to_string(),
                table.to_string(),
            ),
            TableReference::Full {
                catalog,
                schema,
                table,
            } => (catalog.to_string(), schema.to_string(), table.to_string()),
        };
        Ok(QualifiedName {
            catalog,
            schema,
            name,
        })
    }

    /// A table read at a version (`t$version=42`, `t$timestamp=…`, as the planner renames
    /// `FOR VERSION|TIMESTAMP AS OF`) or one of its metadata tables (`t$snapshots`);
    /// `None` for any other name.
    async fn versioned_or_metadata(
        &self,
        name: &QualifiedName,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some((base, suffix)) = name.name.split_once('$') else {
            return Ok(None);
        };
        let Some(format) = self.catalog(&name.catalog)?.table_format()? else {
            return Ok(None);
        };
        let version = if let Some(id) = suffix.strip_prefix(&VERSION_SUFFIX[1..]) {
            Some(aichemy_tables::TableVersion::Id(id.parse().map_err(
                |_| {
                    TrinoError::new(
                        ErrorCode::INVALID_ARGUMENTS,
                        format!("Invalid version: {id}"),
                    )
                },
            )?))
        } else if let Some(name) = suffix.strip_prefix(&REF_SUFFIX[1..]) {
            Some(aichemy_tables::TableVersion::Ref(name.to_string()))
        } else if let Some(at) = suffix.strip_prefix(&TIMESTAMP_SUFFIX[1..]) {
            at.parse()
                .ok()
                .map(aichemy_tables::TableVersion::TimestampMillis)
        } else {
            None
        };
        let table = QualifiedName {
            catalog: name.catalog.clone(),
            schema: name.schema.clone(),
            name: base.to_string(),
        };
        match version {
            Some(version) => match format.load_version(&name.schema, base, &version).await? {
                Some(provider) => Ok(Some(provider)),
                None => {
                    self.require_schema(&name.catalog, &name.schema).await?;
                    Err(TrinoError::table_not_found(&table.to_string()))
                }
            },
            None => Ok(format.metadata_table(&name.schema, base, suffix).await?),
        }
    }

    /// A table read with its hidden `$path` column (`t$path`, as the planner renames a table
    /// whose `$path` a query reads).
    async fn with_path(
        self: &Arc<Self>,
        name: &QualifiedName,
        base: &str,
        state: &SessionState,
        depth: usize,
    ) -> Result<Arc<dyn TableProvider>> {
        let table = QualifiedName {
            name: base.to_string(),
            ..name.clone()
        };
        let handle = match base.contains('$') {
            // Read at a version: found (or not) first.
            true => None,
            false => self.load_table(&table).await?,
        };
        match handle.and_then(|handle| handle.rows) {
            Some(rows) => Ok(aichemy_tables::with_path_column(rows.scan(None).await?)),
            None => {
                Box::pin(self.relation(&table, state, depth)).await?;
                if base.contains('$') {
                    return Err(TrinoError::not_supported(
                        "The hidden column $path cannot be read FOR VERSION or TIMESTAMP AS OF",
                    ));
                }
                Err(TrinoError::new(
                    ErrorCode::COLUMN_NOT_FOUND,
                    "Column '$path' cannot be resolved",
                ))
            }
        }
    }

    /// The query text a view keeps (`what`: "view" or "materialized view"), planned in
    /// its own schema one level deeper, its relations read as `reader`.
    pub(crate) async fn stored_query(
        self: &Arc<Self>,
        name: &QualifiedName,
        what: &str,
        sql: String,
        state: &SessionState,
        depth: usize,
        reader: crate::planner::BodyReader<'_>,
    ) -> Result<Arc<dyn TableProvider>> {
        let plan = crate::planner::plan_query_text(
            self,
            &sql,
            Some(&name.catalog),
            Some(&name.schema),
            state,
            depth + 1,
            reader,
        )
        .await
        .map_err(|e| {
            TrinoError::new(
                ErrorCode::INVALID_VIEW,
                format!(
                    "Failed analyzing stored {what} '{name}': {}",
                    e.full_message()
                ),
            )
        })?;
        Ok(Arc::new(ViewTable::new(plan, Some(sql))))
    }

    /// The provider for one relation: a metadata table, a table or a view.
    async fn relation(
        self: &Arc<Self>,
        name: &QualifiedName,
        state: &SessionState,
        depth: usize,
    ) -> Result<Arc<dyn TableProvider>> {
        let entry = self.catalog(&name.catalog)?;
        let reads = state.config().get_extension::<super::ReadTables>();
        let read = |provider: Option<&Arc<dyn TableProvider>>, rows| {
            if let Some(reads) = &reads {
                reads.push(super::ReadTable {
                    name: name.clone(),
                    provider: provider.cloned(),
                    rows,
                    depth,
                });
            }
        };
        if name.schema == "information_schema" || matches!(entry, CatalogEntry::System) {
            read(None, None);
        }
        if name.schema == "information_schema" {
            let access = match state.config().get_extension::<QueryUser>() {
                Some(user) => self.access_as(&user.0, &user.1)?,
                None => None,
            };
            return metadata::information_schema_table(self, name, access.as_ref()).await;
        }
        if matches!(entry, CatalogEntry::System) {
            let user = state.config().get_extension::<QueryUser>();
            return metadata::system_table(self, name, user.as_ref().map(|u| u.0.as_str())).await;
        }
        if let Some(base) = name.name.strip_suffix(PATH_SUFFIX) {
            return self.with_path(name, base, state, depth).await;
        }
        if let Some(provider) = self.versioned_or_metadata(name).await? {
            read(None, None);
            return Ok(provider);
        }
        if let Some(table) = self.load_table(name).await? {
            // What a table estimates for the optimizer is gathered before it is planned.
            if let Some(statistics) = aichemy_tables::statistics_of(table.provider.as_ref()) {
                statistics.gather(state).await;
            }
            read(Some(&table.provider), table.rows.clone());
            return Ok(table.provider);
        }
        if let Some(view) = self
            .metastore
            .get_materialized_view(&name.catalog, &name.schema, &name.name)
            .await?
        {
            // Boxed, as the view's planning below: every relation's future would grow by it.
            return Box::pin(crate::materialized::relation(
                self, name, &view, state, depth,
            ))
            .await;
        }
        if let Some(view) = self
            .metastore
            .get_view(&name.catalog, &name.schema, &name.name)
            .await?
        {
            if depth > 16 {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_VIEW,
                    format!("View '{name}' is recursive or nested too deeply"),
                ));
            }
            // Trino's views are SECURITY DEFINER unless made INVOKER (no owner).
            let reader = match &view.owner {
                Some(owner) => crate::planner::BodyReader::Owner(owner),
                None => crate::planner::BodyReader::Invoker,
            };
            return Box::pin(self.stored_query(name, "view", view.sql, state, depth, reader)).await;
        }
        self.require_schema(&name.catalog, &name.schema).await?;
        Err(TrinoError::table_not_found(&name.to_string()))
    }
}

/// A table's `provider` with its scans noted as reads of `name` (without its version,
/// timestamp or branch); a view's as it is, as its body's tables are noted themselves.
fn noted(name: &QualifiedName, provider: Arc<dyn TableProvider>) -> Arc<dyn TableProvider> {
    if provider.get_logical_plan().is_some() {
        return provider;
    }
    let table = base_table(name);
    Arc::new(crate::statement_io::NotedTable::new(
        provider,
        format!("{}.{}.{}", table.catalog, table.schema, table.name),
    ))
}

/// The table a relation reads: `name` without a version, timestamp or branch, or the
/// hidden path column's suffix.
fn base_table(name: &QualifiedName) -> QualifiedName {
    let mut table = name.clone();
    for suffix in [VERSION_SUFFIX, TIMESTAMP_SUFFIX, REF_SUFFIX] {
        if let Some(at) = table.name.find(suffix) {
            table.name.truncate(at);
        }
    }
    if let Some(base) = table.name.strip_suffix(PATH_SUFFIX) {
        table.name = base.to_string();
    }
    table
}

/// `provider` (relation `name`) as `access` lets its user read it: a view is checked by
/// name now (its body's tables are checked as they are read), a table when scanned, and
/// read through the user's row filter and column masks.
/// When `as_owner`, the user is the owner of a DEFINER view someone else queries, and
/// each read needs the right to let others read it.
async fn guarded(
    lakehouse: &Arc<Lakehouse>,
    state: &SessionState,
    (access, as_owner): (&crate::access::Access, bool),
    name: &QualifiedName,
    provider: Arc<dyn TableProvider>,
    depth: usize,
) -> Result<Arc<dyn TableProvider>> {
    // Time travel and the hidden path column read the table itself.
    let table = crate::access::table_name(&base_table(name));
    // A metadata table (`t$files`, `t$partitions`, …) shows the rows' values in its column
    // bounds and partitions: a user who reads `t` filtered or masked may not read them.
    if let Some((base, _)) = table.table.split_once('$') {
        let base = aichemy_access::TableName::new(&table.catalog, &table.schema, base);
        let (rules, who) = (&access.rules, &access.identity);
        let restricted = rules.row_filter(who, &base).is_some()
            || rules
                .table_rule(who, &base)
                .is_some_and(|r| r.columns.iter().any(|c| c.mask.is_some() || !c.allow));
        if restricted {
            return Err(crate::access::denied(aichemy_access::Denied(format!(
                "Cannot select from table {table}"
            ))));
        }
    }
    if provider.get_logical_plan().is_some() {
        access.check(|rules, who| match as_owner {
            true => rules.check_can_create_view_with_select(who, &table, &[]),
            false => rules.check_can_select(who, &table, &[]),
        })?;
        return Ok(provider);
    }
    let guarded: Arc<dyn TableProvider> = Arc::new(crate::access::guard::GuardedTable::new(
        provider,
        table.clone(),
        access.rules.clone(),
        access.identity.clone(),
        as_owner,
    ));
    crate::access::restrict::restricted(lakehouse, state, access, name, &table, guarded, depth)
        .await
}
