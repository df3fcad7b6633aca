//! The table endpoints of the Iceberg REST catalog: list, create (or stage), load, check,
//! commit, drop and rename tables, and commit multi-table transactions.

use std::collections::HashMap;

use aichemy_tables::iceberg::{namespace_key, CommitError, Committed, TableChange};
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use iceberg::spec::{
    FormatVersion, Schema, SortOrder, TableMetadata, TableProperties, UnboundPartitionSpec,
};
use iceberg::{NamespaceIdent, TableCreation, TableIdent, TableRequirement, TableUpdate};
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::{table_of, RestUser, Who};
use super::error::{catalog_error, RestError, RestResult};
use super::namespaces::{namespace_of, require_namespace};
use super::{no_content, parse, Params, RestApp};

pub(super) async fn list_tables(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    Path(namespace): Path<String>,
) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let catalog = app.format.catalog();
    require_namespace(catalog.as_ref(), &namespace).await?;
    let who = app.who(&user).await?;
    who.require_schema_visible(&namespace)?;
    let mut tables = catalog
        .list_tables(&namespace)
        .await
        .map_err(catalog_error)?;
    tables.retain(|t| who.table_visible(t));
    tables.sort_by(|a, b| a.name().cmp(b.name()));
    let identifiers: Vec<Value> = tables
        .iter()
        .map(|t| json!({"namespace": t.namespace().clone().inner(), "name": t.name()}))
        .collect();
    Ok(axum::Json(json!({ "identifiers": identifiers })).into_response())
}

/// What a client needs to reach the files of a table on S3: the endpoint, region and
/// addressing style, and the keys when it asked for vended credentials and may read all of
/// the table (`vend`).
fn file_access(app: &RestApp, headers: &HeaderMap, metadata: &TableMetadata, vend: bool) -> Value {
    let mut config = serde_json::Map::new();
    if !metadata.location().starts_with("s3") {
        return Value::Object(config);
    }
    let vended = headers
        .get("x-iceberg-access-delegation")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|m| m.trim() == "vended-credentials"))
        && vend;
    let options = app.format.storage_options();
    let mut put = |key: &str, option: &str| {
        if let Some(value) = options.get(option) {
            config.insert(key.to_string(), json!(value));
        }
    };
    put("s3.endpoint", "aws_endpoint");
    put("s3.region", "aws_region");
    put("client.region", "aws_region");
    if vended {
        put("s3.access-key-id", "aws_access_key_id");
        put("s3.secret-access-key", "aws_secret_access_key");
    }
    if options
        .get("aws_virtual_hosted_style_request")
        .map(String::as_str)
        == Some("false")
    {
        config.insert("s3.path-style-access".into(), json!("true"));
    }
    Value::Object(config)
}

/// A LoadTableResult; without a metadata location for a staged table.
fn load_result(
    app: &RestApp,
    headers: &HeaderMap,
    location: Option<&str>,
    metadata: &TableMetadata,
    vend: bool,
) -> RestResult {
    let config = file_access(app, headers, metadata, vend);
    let metadata = serde_json::to_value(metadata)
        .map_err(|e| RestError::bad_request(format!("cannot encode the metadata: {e}")))?;
    let mut result = json!({"metadata": metadata, "config": config});
    if let Some(location) = location {
        result["metadata-location"] = json!(location);
    }
    Ok(axum::Json(result).into_response())
}

/// The table as committed; the files' keys only to a user who may read all of it.
fn committed_result(
    app: &RestApp,
    headers: &HeaderMap,
    committed: &Committed,
    who: &Who,
    ident: &TableIdent,
) -> RestResult {
    let vend = who.check_load(ident, &committed.metadata).is_ok();
    load_result(
        app,
        headers,
        Some(&committed.metadata_location),
        &committed.metadata,
        vend,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CreateTable {
    name: String,
    schema: Schema,
    location: Option<String>,
    partition_spec: Option<UnboundPartitionSpec>,
    write_order: Option<SortOrder>,
    #[serde(default)]
    stage_create: bool,
    #[serde(default)]
    properties: HashMap<String, String>,
}

pub(super) async fn create_table(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let request: CreateTable = parse(&body)?;
    if request.name.is_empty() {
        return Err(RestError::bad_request("Invalid table name: empty"));
    }
    let ident = TableIdent::new(namespace.clone(), request.name.clone());
    let who = app.who(&user).await?;
    let table = table_of(&ident);
    who.check(|rules, me| rules.check_can_create_table(me, &table))?;
    let (properties, format_version) = table_properties(request.properties)?;
    let creation = TableCreation::builder()
        .name(request.name)
        .schema(request.schema)
        .location_opt(request.location)
        .partition_spec_opt(request.partition_spec)
        .sort_order_opt(request.write_order)
        .properties(properties)
        .format_version(format_version)
        .build();
    if request.stage_create {
        if app.format.current(&ident).await.is_ok() {
            return Err(CommitError::AlreadyExists(format!(
                "Table already exists: {}.{}",
                namespace_key(&namespace),
                ident.name()
            ))
            .into());
        }
        let metadata = app.format.new_metadata(&namespace, creation).await?;
        app.format.prepare_staged(&metadata).await?;
        return load_result(&app, &headers, None, &metadata, true);
    }
    let committed = app.format.create(&namespace, creation).await?;
    app.lakehouse
        .record_owner(&table, &user.0)
        .await
        .map_err(super::access::unusable)?;
    committed_result(&app, &headers, &committed, &app.who(&user).await?, &ident)
}

/// A new table's properties without the reserved ones the table's metadata holds itself
/// (PyIceberg, Spark and DuckDB send `format-version` among them; Iceberg's Java catalog
/// takes it and strips the rest), and the format version asked for (2 when none is).
fn table_properties(
    mut properties: HashMap<String, String>,
) -> RestResult<(HashMap<String, String>, FormatVersion)> {
    let version = match properties
        .remove(TableProperties::PROPERTY_FORMAT_VERSION)
        .as_deref()
        .map(str::trim)
    {
        None | Some("2") => FormatVersion::V2,
        Some("1") => FormatVersion::V1,
        Some(other) => {
            return Err(RestError::bad_request(format!(
                "Unsupported format version: {other} (1 and 2 are)"
            )))
        }
    };
    properties.retain(|key, _| !TableProperties::RESERVED_PROPERTIES.contains(&key.as_str()));
    Ok((properties, version))
}

fn table_ident(namespace: &str, table: String) -> RestResult<TableIdent> {
    Ok(TableIdent::new(namespace_of(namespace)?, table))
}

pub(super) async fn load_table(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    Path((namespace, table)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult {
    let ident = table_ident(&namespace, table)?;
    let committed = app.format.current(&ident).await?;
    let who = app.who(&user).await?;
    who.check_load(&ident, &committed.metadata)?;
    committed_result(&app, &headers, &committed, &who, &ident)
}

pub(super) async fn table_exists(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    Path((namespace, table)): Path<(String, String)>,
) -> RestResult {
    let ident = table_ident(&namespace, table)?;
    let who = app.who(&user).await?;
    match app.format.current(&ident).await {
        // A table the user may not see is not there for her.
        Ok(_) if !who.table_visible(&ident) => Ok(StatusCode::NOT_FOUND.into_response()),
        Ok(_) => Ok(no_content()),
        Err(CommitError::NoSuchTable(_) | CommitError::NoSuchNamespace(_)) => {
            Ok(StatusCode::NOT_FOUND.into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct Identifier {
    namespace: Vec<String>,
    name: String,
}

impl Identifier {
    fn ident(self) -> RestResult<TableIdent> {
        let namespace = NamespaceIdent::from_vec(self.namespace)
            .map_err(|e| RestError::bad_request(e.message()))?;
        Ok(TableIdent::new(namespace, self.name))
    }
}

#[derive(Deserialize)]
struct CommitTable {
    identifier: Option<Identifier>,
    requirements: Vec<TableRequirement>,
    updates: Vec<TableUpdate>,
}

pub(super) async fn commit_table(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    Path((namespace, table)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    let ident = table_ident(&namespace, table)?;
    let request: CommitTable = parse(&body)?;
    if let Some(named) = request.identifier {
        if named.ident()? != ident {
            return Err(RestError::bad_request(
                "The identifier in the body names another table than the path",
            ));
        }
    }
    let who = app.who(&user).await?;
    who.check_commit(&ident, &request.requirements, &request.updates)?;
    let creates = creates(&request.requirements);
    let mut committed = app
        .format
        .commit_changes(vec![TableChange {
            ident: ident.clone(),
            requirements: request.requirements,
            updates: request.updates,
        }])
        .await?;
    if creates {
        app.lakehouse
            .record_owner(&table_of(&ident), &user.0)
            .await
            .map_err(super::access::unusable)?;
    }
    committed_result(&app, &headers, &committed.remove(0), &who, &ident)
}

/// Whether a commit creates its table (a staged create's first commit).
fn creates(requirements: &[TableRequirement]) -> bool {
    requirements
        .iter()
        .any(|r| matches!(r, TableRequirement::NotExist))
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CommitTransaction {
    table_changes: Vec<CommitTable>,
}

pub(super) async fn commit_transaction(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    body: Bytes,
) -> RestResult {
    let request: CommitTransaction = parse(&body)?;
    let who = app.who(&user).await?;
    let mut changes = Vec::with_capacity(request.table_changes.len());
    for change in request.table_changes {
        let Some(identifier) = change.identifier else {
            return Err(RestError::bad_request(
                "Every table change of a transaction needs its identifier",
            ));
        };
        let ident = identifier.ident()?;
        who.check_commit(&ident, &change.requirements, &change.updates)?;
        changes.push(TableChange {
            ident,
            requirements: change.requirements,
            updates: change.updates,
        });
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = changes.iter().find(|c| !seen.insert(c.ident.clone())) {
        return Err(RestError::bad_request(format!(
            "Table {} appears twice in one transaction",
            twice.ident
        )));
    }
    let created: Vec<TableIdent> = changes
        .iter()
        .filter(|c| creates(&c.requirements))
        .map(|c| c.ident.clone())
        .collect();
    app.format.commit_changes(changes).await?;
    for ident in created {
        app.lakehouse
            .record_owner(&table_of(&ident), &user.0)
            .await
            .map_err(super::access::unusable)?;
    }
    Ok(no_content())
}

pub(super) async fn drop_table(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    Path((namespace, table)): Path<(String, String)>,
    Query(params): Params,
) -> RestResult {
    let purge = match params.get("purgeRequested").map(|v| v.to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(v) => {
            return Err(RestError::bad_request(format!(
                "purgeRequested must be true or false, not '{v}'"
            )))
        }
    };
    let ident = table_ident(&namespace, table)?;
    let current = app.format.current(&ident).await?;
    let dropped = table_of(&ident);
    app.who(&user)
        .await?
        .check(|rules, me| rules.check_can_drop_table(me, &dropped))?;
    app.format
        .catalog()
        .drop_table(&ident)
        .await
        .map_err(catalog_error)?;
    app.lakehouse
        .forget_owner(&dropped)
        .await
        .map_err(super::access::unusable)?;
    if purge {
        // Only the files the table owns: never another table's, a schema's or the
        // warehouse's own, never outside the allowed places or through a symbolic link.
        if let Err(e) = app.format.purge(current.metadata.location()).await {
            tracing::warn!(table = %ident, "purging the files of a dropped table: {e}");
        }
    }
    Ok(no_content())
}

#[derive(Deserialize)]
struct RenameTable {
    source: Identifier,
    destination: Identifier,
}

pub(super) async fn rename_table(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    body: Bytes,
) -> RestResult {
    let request: RenameTable = parse(&body)?;
    let source = request.source.ident()?;
    let destination = request.destination.ident()?;
    app.format.current(&source).await?;
    let (from, to) = (table_of(&source), table_of(&destination));
    app.who(&user)
        .await?
        .check(|rules, me| rules.check_can_rename_table(me, &from, &to))?;
    let catalog = app.format.catalog();
    require_namespace(catalog.as_ref(), destination.namespace()).await?;
    if app.format.current(&destination).await.is_ok() {
        return Err(RestError::new(
            StatusCode::CONFLICT,
            "AlreadyExistsException",
            format!("Table already exists: {destination}"),
        ));
    }
    catalog
        .rename_table(&source, &destination)
        .await
        .map_err(catalog_error)?;
    app.lakehouse
        .move_owner(&from, &to)
        .await
        .map_err(super::access::unusable)?;
    Ok(no_content())
}
