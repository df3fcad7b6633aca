//! `POST /v1/search`: retrieval for workflow tools (a Flowise custom tool, a LangChain
//! retriever) as one JSON request and one JSON answer.
//!
//! ```json
//! {"table": "lance.docs.chunks", "column": "embedding", "query": "how do I rotate keys?",
//!  "k": 5, "metric": "cosine", "filter": "lang = 'en'", "columns": ["id", "body"]}
//! ```
//!
//! `query` is a text embedded with `embed` (its `model`, or the default one) or a vector of
//! numbers; `text` (with `text_column` and `key`) adds a full-text search fused by
//! reciprocal rank; `nprobes`, `refine_factor`, `ef` and `exact` tune the search. The
//! request becomes `SELECT … FROM TABLE(vector_search(…))` and runs as a statement of the
//! signed-in user, through the same admission, access policy (row filters, column masks),
//! query list and audit as `/v1/statement`. The answer is `{"queryId", "columns", "rows":
//! [{column: value, …, "_distance" or "_score": …}]}`, nearest first; a failed query answers
//! with Trino's error (`errorName`, `message`) and status 400.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::{
    authenticate, client_session, json_response, refuse, App, ClientAddress, Protocol, FETCH_WAIT,
};

/// A search request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    table: String,
    column: Option<String>,
    /// A text to embed, or a vector.
    query: Option<Value>,
    model: Option<String>,
    text: Option<String>,
    text_column: Option<String>,
    key: Option<String>,
    k: Option<u64>,
    metric: Option<String>,
    filter: Option<String>,
    columns: Option<Vec<String>>,
    nprobes: Option<u64>,
    refine_factor: Option<u64>,
    ef: Option<u64>,
    exact: Option<bool>,
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The statement a request stands for; an error names what is wrong with the request.
fn statement(request: &Request) -> Result<String, String> {
    let mut args = vec![format!("table => {}", literal(&request.table))];
    let text_arg = |name: &str, value: &Option<String>, args: &mut Vec<String>| {
        if let Some(value) = value {
            args.push(format!("{name} => {}", literal(value)));
        }
    };
    text_arg("column", &request.column, &mut args);
    match &request.query {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => {
            let model = match &request.model {
                Some(model) => format!(", {}", literal(model)),
                None => String::new(),
            };
            args.push(format!("query => embed({}{model})", literal(text)));
        }
        Some(Value::Array(values)) => {
            let numbers = values
                .iter()
                .map(|v| {
                    v.as_f64()
                        .filter(|x| x.is_finite())
                        .map(|x| format!("{x:e}"))
                        .ok_or("query must be a text or an array of numbers")
                })
                .collect::<Result<Vec<_>, _>>()?;
            if numbers.is_empty() {
                return Err("query must not be an empty vector".into());
            }
            args.push(format!(
                "query => CAST(ARRAY[{}] AS ARRAY(REAL))",
                numbers.join(", ")
            ));
        }
        Some(_) => return Err("query must be a text or an array of numbers".into()),
    }
    text_arg("text", &request.text, &mut args);
    text_arg("text_column", &request.text_column, &mut args);
    text_arg("key", &request.key, &mut args);
    text_arg("metric", &request.metric, &mut args);
    text_arg("filter", &request.filter, &mut args);
    for (name, value) in [
        ("k", request.k),
        ("nprobes", request.nprobes),
        ("refine_factor", request.refine_factor),
        ("ef", request.ef),
    ] {
        if let Some(value) = value {
            args.push(format!("{name} => {value}"));
        }
    }
    if let Some(exact) = request.exact {
        args.push(format!("exact => {exact}"));
    }
    let scored = match (&request.query, &request.text) {
        (Some(_), Some(_)) => "\"_distance\", \"_score\"",
        (None, Some(_)) => "\"_score\"",
        _ => "\"_distance\"",
    };
    let columns = match &request.columns {
        Some(columns) if !columns.is_empty() => {
            let mut named: Vec<String> = columns.iter().map(|c| identifier(c)).collect();
            named.push(scored.to_string());
            named.join(", ")
        }
        _ => "*".to_string(),
    };
    let order = match &request.text {
        Some(_) => "\"_score\" DESC",
        None => "\"_distance\" ASC",
    };
    Ok(format!(
        "SELECT {columns} FROM TABLE(vector_search({})) ORDER BY {order}",
        args.join(", ")
    ))
}

/// A request that is no search, answered in the shape of a failed one.
fn invalid(message: &str) -> Response {
    let body = json!({"error": {"errorName": "INVALID_ARGUMENT", "errorType": "USER_ERROR",
                                "message": message}});
    json_response(StatusCode::BAD_REQUEST, body, Vec::new())
}

pub(crate) async fn search(
    State(app): State<App>,
    client: ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let protocol = Protocol::detect(&headers);
    let address = client.0;
    let user = match authenticate(&app, &headers, protocol, client).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let request: Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return invalid(&format!("Invalid search: {e}")),
    };
    let sql = match statement(&request) {
        Ok(sql) => sql,
        Err(message) => return invalid(&message),
    };
    let mut session = match client_session(user, &headers, protocol) {
        Ok(session) => session,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
    };
    session.address = address.map(|a| a.to_string());
    if session.source.is_none() {
        session.source = Some("aichemy-search".to_string());
    }
    let query = app.queries.submit(sql, session);
    let mut columns: Vec<String> = Vec::new();
    let mut rows: Vec<Value> = Vec::new();
    let mut token = 0;
    loop {
        let Some(page) = query.page(token, FETCH_WAIT).await else {
            return refuse(StatusCode::GONE, "The search's results are gone");
        };
        if let Some(error) = page.body.get("error") {
            let body = json!({
                "queryId": query.id,
                "error": {
                    "errorName": error.get("errorName"),
                    "errorType": error.get("errorType"),
                    "message": error.get("message"),
                }
            });
            return json_response(StatusCode::BAD_REQUEST, body, Vec::new());
        }
        if columns.is_empty() {
            if let Some(Value::Array(described)) = page.body.get("columns") {
                columns = described
                    .iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect();
            }
        }
        if let Some(Value::Array(data)) = page.body.get("data") {
            for row in data {
                let Value::Array(values) = row else { continue };
                let object: Map<String, Value> = columns
                    .iter()
                    .cloned()
                    .zip(values.iter().cloned())
                    .collect();
                rows.push(Value::Object(object));
            }
        }
        if page.last {
            break;
        }
        token += 1;
    }
    let body = json!({ "queryId": query.id, "columns": columns, "rows": rows });
    json_response(StatusCode::OK, body, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> Request {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn requests_become_one_quoted_statement() {
        let sql = statement(&request(
            r#"{"table": "lance.s.t", "column": "v", "query": [1, 0.5], "k": 3,
                "filter": "name = 'x'", "columns": ["id", "na\"me"]}"#,
        ))
        .unwrap();
        assert_eq!(
            sql,
            "SELECT \"id\", \"na\"\"me\", \"_distance\" FROM TABLE(vector_search(table => \
             'lance.s.t', column => 'v', query => CAST(ARRAY[1e0, 5e-1] AS ARRAY(REAL)), \
             filter => 'name = ''x''', k => 3)) ORDER BY \"_distance\" ASC"
        );
        let sql = statement(&request(r#"{"table": "t", "query": "it's", "model": "m"}"#)).unwrap();
        assert!(sql.contains("query => embed('it''s', 'm')"), "{sql}");
        assert!(statement(&request(r#"{"table": "t", "query": [1, "x"]}"#)).is_err());
        assert!(statement(&request(r#"{"table": "t", "query": {}}"#)).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"table": "t", "sql": "x"}"#).is_err());
    }
}
