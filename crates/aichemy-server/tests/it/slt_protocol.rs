//! The `.slt` suite through the Trino protocol: for each `tests/sql/*.slt` file (and each
//! `tests/sql/every_format/*.slt` file once per table format) a server runs in this process
//! on a fresh lakehouse, and a client speaks `/v1/statement` to it as the python and JDBC
//! clients do — `nextUri` followed to the end, the session kept from the `X-Trino-Set-*`,
//! `X-Trino-Clear-Session`, `X-Trino-Added-Prepare` and `X-Trino-Deallocated-Prepare`
//! headers and sent back on every statement. Values arrive in the protocol's JSON and are
//! written as the engine's runner (crates/aichemy-engine/tests/it/slt.rs) writes them, so
//! the server's encoding is held to the same expected results as the engine.
//!
//! Records that cannot pass through a server for a reason of their own are in [`SKIPPED`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aichemy_config::Config;
use aichemy_engine::Lakehouse;
use aichemy_server::{Admission, Security, ServeOptions};
use base64::Engine;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sqllogictest::{DBOutput, DefaultColumnType, Record};

/// The user of the engine runner's sessions.
const USER: &str = "test";

/// The catalogs the `every_format` files run against, as in the engine's runner.
const FORMAT_CATALOGS: [&str; 4] = ["iceberg", "delta", "hive", "lance"];

/// Records left out here, by file and a piece of their SQL, with the reason.
const SKIPPED: &[(&str, &str, &str)] = &[(
    "information_schema.slt",
    "FROM system.runtime.queries",
    // The engine runner has no query log; a server lists the queries it ran, this one
    // included, so the count cannot be 0 here.
    "a server's query log is never empty",
)];

// ---------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------

/// A failed statement, written as the engine's `TrinoError` is (`NAME: message`) so that
/// the same `statement error` patterns match; or a failure of the protocol itself.
#[derive(Debug)]
enum ClientError {
    Query { name: String, message: String },
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Query { name, message } => write!(f, "{name}: {message}"),
            ClientError::Protocol(message) => write!(f, "protocol failure: {message}"),
        }
    }
}

impl std::error::Error for ClientError {}

fn protocol(e: impl fmt::Display) -> ClientError {
    ClientError::Protocol(e.to_string())
}

/// One response of `/v1/statement`: the fields the clients read. Cells are kept as their
/// JSON text, so numbers are read from what the server wrote.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryResults {
    next_uri: Option<String>,
    columns: Option<Vec<Column>>,
    data: Option<Vec<Vec<Box<RawValue>>>>,
    error: Option<QueryError>,
    update_type: Option<String>,
    update_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Column {
    type_signature: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryError {
    message: String,
    error_name: String,
}

/// A client session over the protocol: what the python client's `ClientSession` keeps.
struct TrinoClient {
    http: reqwest::Client,
    base: String,
    catalog: Option<String>,
    schema: Option<String>,
    properties: BTreeMap<String, String>,
    prepared: BTreeMap<String, String>,
}

impl TrinoClient {
    fn new(base: String) -> Self {
        Self {
            http: http_client(),
            base,
            catalog: None,
            schema: None,
            properties: BTreeMap::new(),
            prepared: BTreeMap::new(),
        }
    }

    /// Runs one statement to its end: the columns, the rows, and the update if it was one.
    async fn execute(&mut self, sql: &str) -> Result<Outcome, ClientError> {
        let mut request = self
            .http
            .post(format!("{}/v1/statement", self.base))
            .header("X-Trino-User", USER)
            .body(sql.to_string());
        if let Some(catalog) = &self.catalog {
            request = request.header("X-Trino-Catalog", catalog);
        }
        if let Some(schema) = &self.schema {
            request = request.header("X-Trino-Schema", schema);
        }
        if !self.properties.is_empty() {
            request = request.header("X-Trino-Session", joined_pairs(&self.properties));
        }
        if !self.prepared.is_empty() {
            request = request.header("X-Trino-Prepared-Statement", joined_pairs(&self.prepared));
        }
        let mut response = request.send().await.map_err(protocol)?;
        let mut outcome = Outcome::default();
        loop {
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(protocol(format!("HTTP {status}: {body}")));
            }
            self.absorb(response.headers())?;
            let page: QueryResults = response.json().await.map_err(protocol)?;
            if outcome.columns.is_none() {
                outcome.columns = page.columns;
            }
            outcome.rows.extend(page.data.unwrap_or_default());
            if page.update_type.is_some() {
                outcome.update = Some(page.update_count);
            }
            if let Some(error) = page.error {
                return Err(ClientError::Query {
                    name: error.error_name,
                    message: error.message,
                });
            }
            let Some(next) = page.next_uri else {
                return Ok(outcome);
            };
            response = self
                .http
                .get(next)
                .header("X-Trino-User", USER)
                .send()
                .await
                .map_err(protocol)?;
        }
    }

    /// The session changes a response announces.
    fn absorb(&mut self, headers: &reqwest::header::HeaderMap) -> Result<(), ClientError> {
        let values = |name: &str| -> Result<Vec<String>, ClientError> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().map(str::to_string).map_err(protocol))
                .collect()
        };
        if let Some(catalog) = values("X-Trino-Set-Catalog")?.pop() {
            self.catalog = Some(catalog);
        }
        if let Some(schema) = values("X-Trino-Set-Schema")?.pop() {
            self.schema = Some(schema);
        }
        for pair in values("X-Trino-Set-Session")? {
            let (name, value) = split_pair(&pair)?;
            self.properties.insert(name, value);
        }
        for name in values("X-Trino-Clear-Session")? {
            self.properties.remove(name.trim());
        }
        for pair in values("X-Trino-Added-Prepare")? {
            let (name, statement) = split_pair(&pair)?;
            self.prepared.insert(name, statement);
        }
        for name in values("X-Trino-Deallocated-Prepare")? {
            self.prepared.remove(&url_decode(name.trim())?);
        }
        Ok(())
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("HTTP client")
}

/// Everything a statement answered.
#[derive(Default)]
struct Outcome {
    columns: Option<Vec<Column>>,
    rows: Vec<Vec<Box<RawValue>>>,
    /// `Some` for DDL and DML, with the row count of DML.
    update: Option<Option<u64>>,
}

/// `name=value` pairs as one header, values form-urlencoded, as the clients send them.
fn joined_pairs(pairs: &BTreeMap<String, String>) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", url_encode(value)))
        .collect::<Vec<_>>()
        .join(",")
}

fn split_pair(pair: &str) -> Result<(String, String), ClientError> {
    let (name, value) = pair
        .split_once('=')
        .ok_or_else(|| protocol(format!("malformed session header '{pair}'")))?;
    Ok((url_decode(name.trim())?, url_decode(value.trim())?))
}

fn url_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.*".contains(&byte) {
            out.push(byte as char);
        } else if byte == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn url_decode(value: &str) -> Result<String, ClientError> {
    let malformed = || protocol(format!("malformed url-encoded value '{value}'"));
    let mut bytes = Vec::new();
    let mut rest = value.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = rest.get(..2).ok_or_else(malformed)?;
                let hex = std::str::from_utf8(hex).map_err(|_| malformed())?;
                bytes.push(u8::from_str_radix(hex, 16).map_err(|_| malformed())?);
                rest = &rest[2..];
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).map_err(|_| malformed())
}

// ---------------------------------------------------------------------------------------
// Values: the protocol's JSON written as the engine's text
// ---------------------------------------------------------------------------------------

/// How a column's values are written, from its `typeSignature`.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Integer,
    Real,
    Double,
    Decimal,
    /// Base64 in the protocol, hex in the engine's text.
    Varbinary,
    Array(Box<Kind>),
    Map(Box<Kind>, Box<Kind>),
    Row(Vec<(String, Kind)>),
    /// Strings, booleans, dates, times, timestamps (with the digits of their precision),
    /// intervals: the same text both ways.
    Other,
}

fn kind(signature: &Value) -> Kind {
    let arguments = signature["arguments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let type_argument = |i: usize| {
        Box::new(
            arguments
                .get(i)
                .map(|a| kind(&a["value"]))
                .unwrap_or(Kind::Other),
        )
    };
    match signature["rawType"].as_str().unwrap_or_default() {
        "tinyint" | "smallint" | "integer" | "bigint" => Kind::Integer,
        "real" => Kind::Real,
        "double" => Kind::Double,
        "decimal" => Kind::Decimal,
        "varbinary" => Kind::Varbinary,
        "array" => Kind::Array(type_argument(0)),
        "map" => Kind::Map(type_argument(0), type_argument(1)),
        "row" => Kind::Row(
            arguments
                .iter()
                .map(|a| {
                    let field = &a["value"];
                    (
                        field["fieldName"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        kind(&field["typeSignature"]),
                    )
                })
                .collect(),
        ),
        _ => Kind::Other,
    }
}

/// The column type the engine's runner reports for a column of this kind.
fn column_type(kind: &Kind) -> DefaultColumnType {
    match kind {
        Kind::Integer => DefaultColumnType::Integer,
        Kind::Real | Kind::Double | Kind::Decimal => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

/// A value's text as the engine's `format::batch_cells` writes it (Arrow's display with
/// `NULL` for nulls and times with the digits of their precision).
fn text(value: &RawValue, kind: &Kind) -> Result<String, String> {
    let json = value.get();
    if json == "null" {
        return Ok("NULL".to_string());
    }
    let items = || serde_json::from_str::<Vec<Box<RawValue>>>(json).map_err(|e| e.to_string());
    Ok(match kind {
        Kind::Integer => json.to_string(),
        Kind::Double => ryu::Buffer::new().format(float(json)?).to_string(),
        Kind::Real => ryu::Buffer::new().format(float(json)? as f32).to_string(),
        Kind::Varbinary => base64::engine::general_purpose::STANDARD
            .decode(string(json)?)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        Kind::Array(element) => {
            let items = items()?
                .iter()
                .map(|item| text(item, element))
                .collect::<Result<Vec<_>, _>>()?;
            format!("[{}]", items.join(", "))
        }
        // Written in the order the server sent them. Finding: the server sends a map's
        // entries sorted by key text (serde_json's Map), the engine's text keeps the map's
        // order; no .slt file shows a whole map, so nothing here depends on it yet.
        Kind::Map(key, value) => {
            let Entries(entries) = serde_json::from_str(json).map_err(|e| e.to_string())?;
            let entries = entries
                .iter()
                .map(|(k, v)| {
                    // Keys are strings in the protocol: numbers unquoted are numbers again.
                    let json = match **key {
                        Kind::Integer | Kind::Real | Kind::Double => k.clone(),
                        _ => Value::from(k.as_str()).to_string(),
                    };
                    let k = RawValue::from_string(json).map_err(|e| e.to_string())?;
                    Ok(format!("{}: {}", text(&k, key)?, text(v, value)?))
                })
                .collect::<Result<Vec<_>, String>>()?;
            format!("{{{}}}", entries.join(", "))
        }
        Kind::Row(fields) => {
            let items = items()?;
            if items.len() != fields.len() {
                return Err(format!("a row of {} fields for {fields:?}", items.len()));
            }
            let fields = fields
                .iter()
                .zip(&items)
                .map(|((name, kind), item)| Ok(format!("{name}: {}", text(item, kind)?)))
                .collect::<Result<Vec<_>, String>>()?;
            format!("{{{}}}", fields.join(", "))
        }
        Kind::Decimal | Kind::Other => {
            match serde_json::from_str::<Value>(json).map_err(|e| e.to_string())? {
                Value::String(s) => s,
                other => other.to_string(),
            }
        }
    })
}

/// A JSON string's content.
fn string(json: &str) -> Result<String, String> {
    serde_json::from_str::<String>(json).map_err(|e| format!("{e}: {json}"))
}

/// A double as the protocol writes it: a number, or `NaN` and the infinities as strings.
/// Read from the text with the standard library, which rounds exactly.
fn float(json: &str) -> Result<f64, String> {
    if json.starts_with('"') {
        return match string(json)?.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => Err(format!("not a double: {other}")),
        };
    }
    json.parse::<f64>().map_err(|e| format!("{e}: {json}"))
}

/// A JSON object's entries in the order they were written.
struct Entries(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

// ---------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for TrinoClient {
    type Error = ClientError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let outcome = self.execute(sql).await?;
        if let Some(count) = outcome.update {
            return Ok(DBOutput::StatementComplete(count.unwrap_or(0)));
        }
        let kinds: Vec<Kind> = outcome
            .columns
            .unwrap_or_default()
            .iter()
            .map(|c| kind(&c.type_signature))
            .collect();
        let rows = outcome
            .rows
            .iter()
            .map(|row| {
                if row.len() != kinds.len() {
                    return Err(protocol(format!(
                        "a row of {} values for {} columns",
                        row.len(),
                        kinds.len()
                    )));
                }
                row.iter()
                    .zip(&kinds)
                    .map(|(cell, kind)| match text(cell, kind).map_err(protocol)? {
                        s if s.is_empty() => Ok("(empty)".to_string()),
                        s => Ok(s),
                    })
                    .collect()
            })
            .collect::<Result<_, _>>()?;
        Ok(DBOutput::Rows {
            types: kinds.iter().map(column_type).collect(),
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "aichemy-trino-protocol"
    }

    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await
    }
}

/// A server in this process on a fresh lakehouse, listening on a free localhost port.
struct Server {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(query_runtime: &tokio::runtime::Handle) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            warehouse: dir.path().join("warehouse").display().to_string(),
            ..Config::default()
        };
        let lakehouse = Lakehouse::open(&config).await.expect("open lakehouse");
        let probe = http_client();
        // The port is free when picked; another process may take it before the server
        // binds it, so a server that fails to start is tried again on another.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let options = ServeOptions {
                http: Some(SocketAddr::from(([127, 0, 0, 1], port))),
                https: None,
                security: Security::default(),
                idle_timeout: Duration::from_secs(60),
                grace: Duration::from_secs(1),
                client_timeout: Duration::from_secs(60),
                query_runtime: query_runtime.clone(),
                admission: Admission {
                    max_running: 8,
                    max_queued: 100,
                },
                node: format!("127.0.0.1:{port}"),
                metrics: None,
                metrics_enabled: true,
                console_session: Duration::from_secs(3600),
            };
            let task = aichemy_task::spawn(
                "server",
                aichemy_server::serve(lakehouse.clone(), options, async move {
                    let _ = stopped.await;
                }),
            );
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            while !task.is_finished() && Instant::now() < deadline {
                let info = probe.get(format!("{base}/v1/info")).send().await;
                if info.is_ok_and(|r| r.status().is_success()) {
                    return Server {
                        base,
                        stop,
                        task,
                        _dir: dir,
                    };
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = stop.send(());
            eprintln!("server on port {port} did not start: {:?}", task.await);
        }
        panic!("no server started");
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("server task")
            .expect("server stopped cleanly");
    }
}

/// What one file's records came to.
#[derive(Default)]
struct Tally {
    passed: usize,
    skipped: usize,
    failures: Vec<String>,
}

/// The records of `name`, with `script` its text, through a fresh server.
async fn run_script(
    name: &str,
    skip_as: &str,
    script: &str,
    query_runtime: &tokio::runtime::Handle,
) -> Tally {
    let records = sqllogictest::parse_with_name::<DefaultColumnType>(script, name)
        .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
    let server = Server::start(query_runtime).await;
    let base = server.base.clone();
    let mut runner = sqllogictest::Runner::new(move || {
        let base = base.clone();
        async move { Ok(TrinoClient::new(base)) }
    });
    let mut tally = Tally::default();
    for record in records {
        let sql = match &record {
            Record::Statement { sql, .. } | Record::Query { sql, .. } => Some(sql.clone()),
            Record::Halt { .. } => break,
            _ => None,
        };
        if let Some(sql) = &sql {
            if let Some((_, _, reason)) = SKIPPED
                .iter()
                .find(|(file, piece, _)| *file == skip_as && sql.contains(piece))
            {
                eprintln!("slt protocol skipped: {name}: {sql} ({reason})");
                tally.skipped += 1;
                continue;
            }
        }
        match runner.run_async(record).await {
            Ok(_) if sql.is_some() => tally.passed += 1,
            Ok(_) => {}
            Err(e) => tally.failures.push(format!("{name}: {}", e.display(false))),
        }
    }
    drop(runner);
    server.stop().await;
    tally
}

fn slt_files(folder: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/sql")
        .join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/sql exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_behaviour_files_through_the_protocol() {
    // Queries run on a runtime of their own, as in `aichemy serve`.
    let query_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("query runtime");
    let handle = query_runtime.handle().clone();
    let started = Instant::now();
    let mut runs = Vec::new();
    for path in slt_files("") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let script = std::fs::read_to_string(&path).expect("readable .slt file");
        runs.push((name.clone(), name, script));
    }
    for path in slt_files("every_format") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let script = std::fs::read_to_string(&path).expect("readable .slt file");
        for catalog in FORMAT_CATALOGS {
            runs.push((
                format!("every_format/{name} on {catalog}"),
                format!("every_format/{name}"),
                script.replace("{catalog}", catalog),
            ));
        }
    }
    assert!(!runs.is_empty(), "no .slt files found");
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());
    let files = runs.len();
    for (name, skip_as, script) in runs {
        let tally = run_script(&name, &skip_as, &script, &handle).await;
        eprintln!(
            "slt protocol: {name}: {} passed, {} skipped, {} failed",
            tally.passed,
            tally.skipped,
            tally.failures.len()
        );
        passed += tally.passed;
        skipped += tally.skipped;
        failures.extend(tally.failures);
    }
    eprintln!(
        "slt protocol: {files} runs, {passed} records passed, {skipped} skipped, {} failed, in {:.1?}",
        failures.len(),
        started.elapsed()
    );
    query_runtime.shutdown_background();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn values_are_written_as_the_engine_writes_them() {
    let cell = |json: &str, signature: Value| {
        text(
            &RawValue::from_string(json.to_string()).unwrap(),
            &kind(&signature),
        )
        .unwrap()
    };
    let simple = |name: &str| serde_json::json!({"rawType": name, "arguments": []});
    assert_eq!(cell("2.0", simple("double")), "2.0");
    assert_eq!(
        cell("0.35000000000000003", simple("double")),
        "0.35000000000000003"
    );
    assert_eq!(cell("\"-Infinity\"", simple("double")), "-inf");
    assert_eq!(cell("0.10000000149011612", simple("real")), "0.1");
    assert_eq!(cell("\"3q2+7w==\"", simple("varbinary")), "deadbeef");
    let array = |element: Value| serde_json::json!({"rawType": "array", "arguments": [{"kind": "TYPE", "value": element}]});
    assert_eq!(
        cell("[[1, null], []]", array(array(simple("integer")))),
        "[[1, NULL], []]"
    );
    let row = serde_json::json!({"rawType": "row", "arguments": [
        {"kind": "NAMED_TYPE", "value": {"fieldName": {"name": "city"}, "typeSignature": simple("varchar")}},
        {"kind": "NAMED_TYPE", "value": {"fieldName": {"name": "lat"}, "typeSignature": simple("double")}},
    ]});
    assert_eq!(cell("[\"Oslo\", 59.9]", row), "{city: Oslo, lat: 59.9}");
    let map = serde_json::json!({"rawType": "map", "arguments": [
        {"kind": "TYPE", "value": simple("varchar")}, {"kind": "TYPE", "value": simple("integer")},
    ]});
    assert_eq!(cell("{\"b\": 2, \"a\": 1}", map), "{b: 2, a: 1}");
    assert_eq!(
        url_decode(&url_encode("SELECT ? + 1, 'x y'")).unwrap(),
        "SELECT ? + 1, 'x y'"
    );
}

/// The runner fails what it should: wrong rows, a wrong error, a wrong count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_expectations_fail_through_the_protocol() {
    let script = "\
query IT
SELECT 1, 'a'
----
1 a

query I
SELECT 2
----
3

statement error TABLE_NOT_FOUND
SELECT 1 / 0

statement ok
CREATE SCHEMA hive.c

statement count 2
CREATE TABLE hive.c.t AS SELECT 1 AS x
";
    let tally = run_script(
        "self_check.slt",
        "self_check.slt",
        script,
        &tokio::runtime::Handle::current(),
    )
    .await;
    assert_eq!(tally.passed, 2, "{:?}", tally.failures);
    assert_eq!(tally.failures.len(), 3, "{:?}", tally.failures);
}
