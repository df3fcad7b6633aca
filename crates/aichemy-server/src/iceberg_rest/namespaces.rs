//! The namespace endpoints of the Iceberg REST catalog, and the namespace path parameter
//! and existence check the table endpoints share.

use std::collections::HashMap;

use aichemy_tables::iceberg::namespace_key;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use iceberg::{Catalog, NamespaceIdent};
use serde::Deserialize;
use serde_json::json;

use super::access::{schema_of, RestUser};
use super::error::{catalog_error, RestError, RestResult};
use super::{no_content, parse, Params, RestApp};

/// A namespace path parameter: levels separated by the unit separator (0x1F).
pub(super) fn namespace_of(text: &str) -> RestResult<NamespaceIdent> {
    let levels: Vec<String> = text.split('\u{1f}').map(str::to_string).collect();
    if levels.iter().any(String::is_empty) {
        return Err(RestError::bad_request(format!(
            "Invalid namespace: '{}'",
            text.replace('\u{1f}', ".")
        )));
    }
    NamespaceIdent::from_vec(levels).map_err(|e| RestError::bad_request(e.message()))
}

/// Fails with 404 `NoSuchNamespaceException` unless the namespace exists.
pub(super) async fn require_namespace(
    catalog: &dyn Catalog,
    namespace: &NamespaceIdent,
) -> RestResult<()> {
    if catalog
        .namespace_exists(namespace)
        .await
        .map_err(catalog_error)?
    {
        Ok(())
    } else {
        Err(RestError::no_namespace(namespace))
    }
}

pub(super) async fn list_namespaces(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    Query(params): Params,
) -> RestResult {
    let who = app.who(&user).await?;
    let parent = params.get("parent").map(|p| namespace_of(p)).transpose()?;
    let catalog = app.format.catalog();
    if let Some(parent) = &parent {
        require_namespace(catalog.as_ref(), parent).await?;
    }
    let mut namespaces: Vec<Vec<String>> = catalog
        .list_namespaces(parent.as_ref())
        .await
        .map_err(catalog_error)?
        .into_iter()
        .filter(|ns| who.schema_visible(ns))
        .map(|ns| ns.inner())
        .collect();
    namespaces.sort();
    Ok(axum::Json(json!({ "namespaces": namespaces })).into_response())
}

#[derive(Deserialize)]
struct CreateNamespace {
    namespace: Vec<String>,
    #[serde(default)]
    properties: HashMap<String, String>,
}

pub(super) async fn create_namespace(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    body: Bytes,
) -> RestResult {
    let request: CreateNamespace = parse(&body)?;
    if request.namespace.is_empty() || request.namespace.iter().any(String::is_empty) {
        return Err(RestError::bad_request("Invalid namespace: empty level"));
    }
    let namespace = NamespaceIdent::from_vec(request.namespace)
        .map_err(|e| RestError::bad_request(e.message()))?;
    let schema = schema_of(&namespace);
    app.who(&user)
        .await?
        .check(|rules, me| rules.check_can_create_schema(me, "iceberg", &schema))?;
    let catalog = app.format.catalog();
    if catalog
        .namespace_exists(&namespace)
        .await
        .map_err(catalog_error)?
    {
        return Err(RestError::new(
            StatusCode::CONFLICT,
            "AlreadyExistsException",
            format!("Namespace already exists: {}", namespace_key(&namespace)),
        ));
    }
    let mut properties = request.properties;
    // Inside the warehouse or an allowed place, over no table, schema or reserved folder.
    let location = app
        .format
        .namespace_location(&namespace, properties.get("location").map(String::as_str))
        .await
        .map_err(RestError::bad_request)?;
    properties.insert("location".to_string(), location);
    let created = catalog
        .create_namespace(&namespace, properties)
        .await
        .map_err(catalog_error)?;
    app.lakehouse
        .record_schema_owner("iceberg", &schema, &user.0)
        .await
        .map_err(super::access::unusable)?;
    Ok(axum::Json(json!({
        "namespace": created.name().clone().inner(),
        "properties": created.properties(),
    }))
    .into_response())
}

pub(super) async fn load_namespace(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    Path(namespace): Path<String>,
) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let catalog = app.format.catalog();
    require_namespace(catalog.as_ref(), &namespace).await?;
    app.who(&user).await?.require_schema_visible(&namespace)?;
    let loaded = catalog
        .get_namespace(&namespace)
        .await
        .map_err(catalog_error)?;
    Ok(axum::Json(json!({
        "namespace": namespace.inner(),
        "properties": loaded.properties(),
    }))
    .into_response())
}

pub(super) async fn namespace_exists(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    Path(namespace): Path<String>,
) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let exists = app
        .format
        .catalog()
        .namespace_exists(&namespace)
        .await
        .map_err(catalog_error)?
        && app.who(&user).await?.schema_visible(&namespace);
    Ok(if exists {
        no_content()
    } else {
        StatusCode::NOT_FOUND.into_response()
    })
}

pub(super) async fn drop_namespace(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    Path(namespace): Path<String>,
) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let catalog = app.format.catalog();
    require_namespace(catalog.as_ref(), &namespace).await?;
    let schema = schema_of(&namespace);
    app.who(&user)
        .await?
        .check(|rules, me| rules.check_can_drop_schema(me, "iceberg", &schema))?;
    let tables = catalog
        .list_tables(&namespace)
        .await
        .map_err(catalog_error)?;
    let children = catalog
        .list_namespaces(Some(&namespace))
        .await
        .map_err(catalog_error)?;
    if !tables.is_empty() || !children.is_empty() {
        return Err(RestError::new(
            StatusCode::CONFLICT,
            "NamespaceNotEmptyException",
            format!("Namespace is not empty: {}", namespace_key(&namespace)),
        ));
    }
    catalog
        .drop_namespace(&namespace)
        .await
        .map_err(catalog_error)?;
    app.lakehouse
        .forget_schema_owner("iceberg", &schema)
        .await
        .map_err(super::access::unusable)?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct UpdateProperties {
    #[serde(default)]
    removals: Vec<String>,
    #[serde(default)]
    updates: HashMap<String, String>,
}

pub(super) async fn update_namespace_properties(
    State(app): State<RestApp>,
    Extension(user): Extension<RestUser>,
    Path(namespace): Path<String>,
    body: Bytes,
) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let schema = schema_of(&namespace);
    app.who(&user)
        .await?
        .check(|rules, me| rules.check_can_set_schema_properties(me, "iceberg", &schema))?;
    let request: UpdateProperties = parse(&body)?;
    if let Some(key) = request
        .removals
        .iter()
        .find(|k| request.updates.contains_key(*k))
    {
        return Err(RestError::bad_request(format!(
            "Property '{key}' is both updated and removed"
        )));
    }
    if request.removals.iter().any(|k| k == "location") || request.updates.contains_key("location")
    {
        return Err(RestError::bad_request(
            "The location of a namespace cannot be changed",
        ));
    }
    let catalog = app.format.catalog();
    require_namespace(catalog.as_ref(), &namespace).await?;
    let mut properties = catalog
        .get_namespace(&namespace)
        .await
        .map_err(catalog_error)?
        .properties()
        .clone();
    let mut removed = Vec::new();
    let mut missing = Vec::new();
    for key in &request.removals {
        if properties.remove(key).is_some() {
            removed.push(key.clone());
        } else {
            missing.push(key.clone());
        }
    }
    let updated: Vec<&String> = request.updates.keys().collect();
    properties.extend(request.updates.clone());
    catalog
        .update_namespace(&namespace, properties)
        .await
        .map_err(catalog_error)?;
    Ok(
        axum::Json(json!({"updated": updated, "removed": removed, "missing": missing}))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_split_on_the_unit_separator() {
        assert_eq!(
            namespace_of("a\u{1f}b").unwrap().inner(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert_eq!(namespace_of("a\u{1f}").unwrap_err().status, 400);
    }
}
