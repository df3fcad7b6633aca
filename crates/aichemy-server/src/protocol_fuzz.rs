//! A fuzz target over the Trino protocol's requests: random methods, paths, headers
//! (users, sessions, prepared statements, time zones, credentials, both header families)
//! and bodies, sent to the router as a client would. Every request must be answered with
//! one of the protocol's statuses — never a panic or a 500 — and every accepted query must
//! end, FINISHED or FAILED, when its pages are followed.
//!
//! It runs for `AICHEMY_FUZZ_SECONDS` (default 5) with the seed `AICHEMY_FUZZ_SEED`
//! (default: random, printed); run it longer by hand with
//! `AICHEMY_FUZZ_SECONDS=600 cargo test -p aichemy-server protocol_fuzz -- --nocapture`.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use std::sync::Arc;

use crate::{router, Admission, Queries, Security};

const NAMES: &[&str] = &[
    "X-Trino-User",
    "X-Trino-Source",
    "X-Trino-Catalog",
    "X-Trino-Schema",
    "X-Trino-Time-Zone",
    "X-Trino-Session",
    "X-Trino-Prepared-Statement",
    "X-Trino-Client-Tags",
    "X-Trino-Client-Info",
    "X-Presto-User",
    "X-Presto-Session",
    "Authorization",
    "Host",
    "Content-Type",
];

const VALUES: &[&str] = &[
    "",
    " ",
    "alice",
    "admin",
    "iceberg",
    "UTC",
    "Europe/Paris",
    "+05:30",
    "Mars/Olympus",
    "query_max_run_time=1s",
    "query_max_run_time=soon",
    "a=b=c",
    "=x",
    "x=%zz",
    "x=%4",
    "p=SELECT+1",
    "p=EXECUTE+p",
    "p=PREPARE+q+FROM+SELECT+1",
    "Basic ",
    "Basic YWxpY2U6",
    "Basic YWxpY2U6c2VjcmV0",
    "Basic !!!",
    "Bearer x",
    "localhost:8080",
    "evil.example/../x",
    "a,b,,c",
    "é💥",
];

const BODIES: &[&str] = &[
    "SELECT 1",
    "",
    " ",
    "SELECT",
    "SELECT * FROM iceberg.nope.nope",
    "EXECUTE p",
    "EXECUTE IMMEDIATE 'EXECUTE IMMEDIATE ''SELECT 1'''",
    "SELECT 1; SELECT 2",
    "SELECT current_user, current_catalog",
    "SET SESSION query_max_run_time = '1s'",
    "SHOW CATALOGS",
];

fn random_request(rng: &mut fastrand::Rng, known: &[String]) -> Request<Body> {
    let (method, path) = match rng.u8(0..6) {
        0..=2 => ("POST", "/v1/statement".to_string()),
        3 if !known.is_empty() => ("GET", known[rng.usize(..known.len())].clone()),
        3 => ("GET", "/v1/statement/executing/x/y/0".to_string()),
        4 => (
            ["GET", "DELETE"][rng.usize(..2)],
            format!(
                "/v1/query/{}",
                ["x", "%00", "20250101_000000_00000_aaaaa"][rng.usize(..3)]
            ),
        ),
        _ => (
            ["GET", "DELETE", "PUT"][rng.usize(..3)],
            [
                "/v1/info",
                "/v1/statement/executing/a/b/18446744073709551615",
                "/v1/statement/executing/a/b/-1",
                "/v1/statement/executing/%2e%2e/b/0",
                "/v1/statement",
            ][rng.usize(..5)]
            .to_string(),
        ),
    };
    let mut request = Request::builder().method(method).uri(path);
    for _ in 0..rng.usize(0..6) {
        let value = match rng.u8(0..8) {
            0 => (0..rng.usize(0..40))
                .map(|_| rng.u8(0x20..0x7f) as char)
                .collect::<String>(),
            _ => VALUES[rng.usize(..VALUES.len())].to_string(),
        };
        request = request.header(NAMES[rng.usize(..NAMES.len())], value);
    }
    let body = match rng.u8(0..6) {
        0 => (0..rng.usize(0..64))
            .map(|_| rng.u8(..))
            .collect::<Vec<u8>>(),
        _ => BODIES[rng.usize(..BODIES.len())].as_bytes().to_vec(),
    };
    request
        .body(Body::from(body))
        .expect("a request of valid parts")
}

#[test]
fn every_request_gets_an_answer_of_the_protocol() {
    let seconds: u64 = std::env::var("AICHEMY_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("AICHEMY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("fuzzing the protocol for {seconds}s with AICHEMY_FUZZ_SEED={seed}");
    let runtime = aichemy_engine::execution::query_runtime(2, "fuzz").unwrap();
    let handle = runtime.handle().clone();
    let outcome = runtime.block_on(async move {
        aichemy_task::spawn("protocol fuzz", async move {
            let dir = tempfile::tempdir().unwrap();
            let config = aichemy_config::Config {
                warehouse: dir.path().join("warehouse").display().to_string(),
                ..aichemy_config::Config::default()
            };
            let lakehouse = aichemy_engine::Lakehouse::open(&config).await.unwrap();
            let admission = Admission {
                max_running: 4,
                max_queued: 8,
            };
            let queries = Queries::new(lakehouse, handle, admission);
            let console = Arc::new(crate::Console::new(b"fuzz", Duration::from_secs(60)));
            let app = router(queries, "http", Security::default(), console);
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut known: Vec<String> = Vec::new();
            let (mut requests, mut accepted) = (0usize, 0usize);
            let deadline = Instant::now() + Duration::from_secs(seconds);
            while Instant::now() < deadline {
                let request = random_request(&mut rng, &known);
                let described = format!("{} {}", request.method(), request.uri());
                let response = app.clone().oneshot(request).await.unwrap();
                requests += 1;
                let status = response.status();
                assert!(
                    !status.is_server_error(),
                    "{described} answered {status} (seed {seed})"
                );
                let body = response.into_body().collect().await.unwrap().to_bytes();
                if status != StatusCode::OK || !described.starts_with("POST") {
                    continue;
                }
                accepted += 1;
                // Follow the pages to the end, as a client does.
                let mut page: Value = serde_json::from_slice(&body).unwrap();
                for _ in 0..100 {
                    let Some(next) = page["nextUri"].as_str() else {
                        break;
                    };
                    let path = next.split_once("://").map_or(next, |(_, rest)| {
                        rest.find('/').map_or("/", |at| &rest[at..])
                    });
                    known.push(path.to_string());
                    let response = app
                        .clone()
                        .oneshot(Request::get(path).body(Body::empty()).unwrap())
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::OK, "{path} (seed {seed})");
                    let bytes = response.into_body().collect().await.unwrap().to_bytes();
                    page = serde_json::from_slice(&bytes).unwrap();
                }
                let state = page["stats"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                assert!(
                    state == "FINISHED" || state == "FAILED",
                    "{described} ended {state} (seed {seed}): {page}"
                );
                known.truncate(64);
            }
            format!("{requests} requests, {accepted} queries accepted")
        })
        .await
    });
    match outcome {
        Ok(report) => println!("protocol fuzz: {report}"),
        Err(e) => panic!("with AICHEMY_FUZZ_SEED={seed}: {e}"),
    }
}
