//! A Kafka job: every partition of one topic read with rskafka (no consumer group: the
//! offsets live in the table), each batch of messages one table commit that also records
//! the next offset of every partition.
//!
//! On start the job reads the offsets back from the table (the dead-letter table keeps
//! its own), so a job killed at any moment resumes exactly after its last commit: a
//! message is in the table once or, not yet committed, read again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rskafka::BackoffConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::sync::mpsc;

use aichemy_engine::ingestion::{
    CdcMode, IngestionDefinition, IngestionStatus, KafkaOptions, MessageFormat, OnError,
    StartPosition,
};
use aichemy_engine::{Lakehouse, QualifiedName};

use crate::decode::{infer_columns, Decoder, KeyOrder, Message, INGESTED_AT};
use crate::target::{attribute_columns, dead_letter_batch, trino_type, Table, DEAD_LETTER_COLUMNS};
use crate::JobError;
use crate::{changes, debezium};

/// The next offset to read of each partition: `0:120,1:98`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offsets(pub BTreeMap<i32, i64>);

impl Offsets {
    pub fn parse(text: &str) -> Result<Self, JobError> {
        let mut offsets = BTreeMap::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let parsed = part
                .split_once(':')
                .and_then(|(p, o)| Some((p.trim().parse().ok()?, o.trim().parse().ok()?)));
            let (partition, offset) = parsed.ok_or_else(|| {
                JobError::fatal(format!(
                    "The table records an unreadable Kafka position '{text}'"
                ))
            })?;
            offsets.insert(partition, offset);
        }
        Ok(Self(offsets))
    }

    pub fn text(&self) -> String {
        self.0
            .iter()
            .map(|(p, o)| format!("{p}:{o}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// How long one fetch waits for new messages at the broker.
const FETCH_WAIT_MS: i32 = 250;
/// The most bytes one fetch asks for.
const FETCH_BYTES: i32 = 8 * 1024 * 1024;
/// How often the topic is checked for new partitions.
const PARTITION_CHECK: Duration = Duration::from_secs(10);

/// What one partition's reader hands the job.
struct Fetched {
    partition: i32,
    messages: Vec<Message>,
    high_watermark: i64,
}

/// Connects to the brokers with the job's TLS and SASL settings.
async fn connect(options: &KafkaOptions) -> Result<Client, JobError> {
    let mut builder = ClientBuilder::new(options.bootstrap_servers.clone())
        .client_id("aichemy")
        .backoff_config(BackoffConfig {
            deadline: Some(Duration::from_secs(30)),
            ..BackoffConfig::default()
        });
    if options.tls {
        let mut roots = rustls::RootCertStore::empty();
        match &options.ca_location {
            Some(path) => {
                for certificate in CertificateDer::pem_file_iter(path).map_err(|e| {
                    JobError::fatal(format!(
                        "Cannot read properties.ssl.ca.location {path}: {e}"
                    ))
                })? {
                    let certificate = certificate.map_err(|e| {
                        JobError::fatal(format!("Invalid certificate in {path}: {e}"))
                    })?;
                    roots.add(certificate).map_err(|e| {
                        JobError::fatal(format!("Invalid certificate in {path}: {e}"))
                    })?;
                }
            }
            None => {
                for certificate in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(certificate);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| JobError::fatal(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        builder = builder.tls_config(Arc::new(config));
    }
    if let Some(sasl) = &options.sasl {
        let credentials = Credentials::new(sasl.username.clone(), sasl.password.clone());
        builder = builder.sasl_config(match sasl.mechanism.as_str() {
            "SCRAM-SHA-256" => SaslConfig::ScramSha256(credentials),
            "SCRAM-SHA-512" => SaslConfig::ScramSha512(credentials),
            _ => SaslConfig::Plain(credentials),
        });
    }
    builder.build().await.map_err(|e| {
        JobError::retry(format!(
            "Cannot connect to Kafka brokers {}: {e}",
            options.bootstrap_servers.join(",")
        ))
    })
}

/// The topic as a lineage dataset: named in the namespace of its first broker, as
/// OpenLineage names Kafka topics.
fn source(options: &KafkaOptions) -> aichemy_engine::lineage::Dataset {
    let broker = options
        .bootstrap_servers
        .first()
        .cloned()
        .unwrap_or_default();
    aichemy_engine::lineage::Dataset {
        catalog: format!("kafka://{broker}"),
        schema: None,
        table: options.topic.clone(),
    }
}

/// The partitions of the topic.
async fn partitions(client: &Client, topic: &str) -> Result<Vec<i32>, JobError> {
    let topics = client
        .list_topics()
        .await
        .map_err(|e| JobError::retry(format!("Cannot list Kafka topics: {e}")))?;
    let mut partitions: Vec<i32> = topics
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions.into_iter().collect())
        .ok_or_else(|| JobError::retry(format!("Kafka topic '{topic}' does not exist")))?;
    partitions.sort_unstable();
    Ok(partitions)
}

/// Where a partition without a recorded offset starts.
async fn start_offset(client: &PartitionClient, start: StartPosition) -> Result<i64, JobError> {
    let at = match start {
        StartPosition::Earliest => OffsetAt::Earliest,
        StartPosition::Latest => OffsetAt::Latest,
        StartPosition::Timestamp(ms) => {
            OffsetAt::Timestamp(chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default())
        }
    };
    match client.get_offset(at).await {
        // No message at or after the time: the end.
        Ok(-1) => client
            .get_offset(OffsetAt::Latest)
            .await
            .map_err(|e| JobError::retry(e.to_string())),
        Ok(offset) => Ok(offset),
        Err(e) => Err(JobError::retry(format!(
            "Cannot find the start offset of partition {}: {e}",
            client.partition()
        ))),
    }
}

/// Reads one partition from `offset` on, handing each fetch to the job.
async fn read_partition(
    client: PartitionClient,
    mut offset: i64,
    sender: mpsc::Sender<Result<Fetched, JobError>>,
) {
    loop {
        let fetched = client
            .fetch_records(offset, 1..FETCH_BYTES, FETCH_WAIT_MS)
            .await;
        let outcome = match fetched {
            Ok((records, high_watermark)) => {
                let messages: Vec<Message> = records
                    .into_iter()
                    .filter(|r| r.offset >= offset)
                    .map(|r| Message {
                        partition: client.partition(),
                        offset: r.offset,
                        timestamp_ms: r.record.timestamp.timestamp_millis(),
                        key: r.record.key,
                        value: r.record.value,
                        headers: r.record.headers,
                    })
                    .collect();
                if let Some(last) = messages.last() {
                    offset = last.offset + 1;
                }
                Ok(Fetched {
                    partition: client.partition(),
                    messages,
                    high_watermark,
                })
            }
            Err(KafkaError::ServerError {
                protocol_error: ProtocolError::OffsetOutOfRange,
                ..
            }) => {
                // The messages were deleted (retention) before the job read them.
                match client.get_offset(OffsetAt::Earliest).await {
                    Ok(earliest) if earliest > offset => {
                        tracing::warn!(
                            partition = client.partition(),
                            from = offset,
                            to = earliest,
                            "Kafka messages were deleted before they were ingested; skipping"
                        );
                        offset = earliest;
                        continue;
                    }
                    _ => Err(JobError::retry(format!(
                        "Offset {offset} of partition {} is out of range",
                        client.partition()
                    ))),
                }
            }
            Err(e) => Err(JobError::retry(format!(
                "Cannot fetch from partition {}: {e}",
                client.partition()
            ))),
        };
        let failed = outcome.is_err();
        if sender.send(outcome).await.is_err() || failed {
            return;
        }
    }
}

/// Runs a Kafka job until it fails or is stopped (by dropping its future).
pub async fn run(
    lakehouse: Arc<Lakehouse>,
    definition: IngestionDefinition,
    status: Arc<Mutex<IngestionStatus>>,
) -> Result<(), JobError> {
    let options = definition.kafka().map_err(|e| JobError::fatal(e.message))?;
    let job = definition.name.as_str();
    let target = Table::new(
        lakehouse.clone(),
        QualifiedName {
            catalog: definition.target.catalog.clone(),
            schema: definition.target.schema.clone(),
            name: definition.target.table.clone(),
        },
        &definition.owner,
    );
    let dead_letters = Table::dead_letter(&target);
    let client = connect(&options).await?;
    let known = partitions(&client, &options.topic).await?;

    // Where the table stands: its recorded offsets, or none before the first commit.
    let mut loaded = target.load().await?;
    if let Some((schema, _)) = &loaded {
        target.record_lineage(job, source(&options), schema).await;
    }
    let mut recorded = match &loaded {
        Some((_, rows)) => rows.recorded_position(job).await?,
        None => None,
    };
    let mut offsets = match &recorded {
        Some(text) => Offsets::parse(text)?,
        None => Offsets::default(),
    };
    // The dead-letter table has been written up to here.
    let mut dead_letter_offsets = match dead_letters.load().await? {
        Some((_, rows)) => match rows.recorded_position(job).await? {
            Some(text) => Offsets::parse(&text)?,
            None => Offsets::default(),
        },
        None => Offsets::default(),
    };

    let (sender, mut receiver) = mpsc::channel::<Result<Fetched, JobError>>(known.len() * 2 + 2);
    let mut readers = tokio::task::JoinSet::new();
    for &partition in &known {
        let partition_client = client
            .partition_client(
                options.topic.clone(),
                partition,
                UnknownTopicHandling::Retry,
            )
            .await
            .map_err(|e| JobError::retry(e.to_string()))?;
        let from = match offsets.0.get(&partition) {
            Some(offset) => *offset,
            None => {
                let offset = start_offset(&partition_client, options.start).await?;
                offsets.0.insert(partition, offset);
                offset
            }
        };
        aichemy_task::spawn_in(
            &mut readers,
            "kafka-partition",
            read_partition(partition_client, from, sender.clone()),
        );
    }
    {
        let mut status = status.lock().unwrap();
        status.state = "running".into();
        status.position = Some(offsets.text());
        status.last_error = None;
    }

    let mut pending: Vec<Message> = Vec::new();
    let mut high_watermarks: BTreeMap<i32, i64> = BTreeMap::new();
    let mut batch_start = Instant::now();
    let mut last_partition_check = Instant::now();
    let mut last_maintenance = Instant::now();
    let mut maintenance: Option<tokio::task::JoinHandle<()>> = None;
    // The offsets of what is pending: where the next commit records the job stands.
    let mut next = offsets.clone();
    loop {
        let deadline = batch_start + options.commit_interval;
        let full = pending.len() >= options.max_batch_messages;
        if !full {
            tokio::select! {
                fetched = receiver.recv() => {
                    let fetched = fetched.ok_or_else(|| JobError::retry("Kafka readers stopped"))??;
                    if let Some(last) = fetched.messages.last() {
                        next.0.insert(fetched.partition, last.offset + 1);
                    }
                    high_watermarks.insert(fetched.partition, fetched.high_watermark);
                    if pending.is_empty() && !fetched.messages.is_empty() {
                        batch_start = Instant::now();
                    }
                    pending.extend(fetched.messages);
                    continue;
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
        if !pending.is_empty() {
            let batch = std::mem::take(&mut pending);
            let committed = commit(
                &target,
                &dead_letters,
                &mut loaded,
                &options,
                job,
                &batch,
                recorded.as_deref(),
                &next,
                &mut dead_letter_offsets,
                &status,
            )
            .await?;
            recorded = Some(next.text());
            offsets = next.clone();
            let mut status = status.lock().unwrap();
            status.position = recorded.clone();
            status.last_commit_ms = Some(chrono::Utc::now().timestamp_millis());
            status.rows += committed;
            status.bytes += batch.iter().map(Message::size).sum::<usize>() as u64;
            status.commits += 1;
        }
        {
            let lag: i64 = high_watermarks
                .iter()
                .map(|(p, hw)| (hw - offsets.0.get(p).copied().unwrap_or(0)).max(0))
                .sum();
            status.lock().unwrap().lag = Some(lag);
        }
        batch_start = Instant::now();
        if last_partition_check.elapsed() >= PARTITION_CHECK {
            last_partition_check = Instant::now();
            if partitions(&client, &options.topic).await? != known {
                // New partitions are read from their start, as Kafka's consumers do.
                return Err(JobError::retry(format!(
                    "Kafka topic '{}' has new partitions: restarting to read them",
                    options.topic
                )));
            }
        }
        let interval = options.maintenance.interval;
        if !interval.is_zero()
            && last_maintenance.elapsed() >= interval
            && maintenance.as_ref().is_none_or(|m| m.is_finished())
            && loaded.is_some()
        {
            last_maintenance = Instant::now();
            let table = Table::new(lakehouse.clone(), target.name.clone(), &definition.owner);
            let retention = options.maintenance.snapshot_retention;
            let name = job.to_string();
            maintenance = Some(aichemy_task::spawn("ingestion-maintenance", async move {
                if let Err(e) = table.maintain(retention).await {
                    tracing::warn!(ingestion = %name, error = %e, "table maintenance failed");
                }
            }));
        }
    }
}

/// Commits one batch: the rejected messages into the dead-letter table (or the job
/// stops), then the rows with the offsets after the batch. Answers the rows written.
#[allow(clippy::too_many_arguments)]
async fn commit(
    target: &Table,
    dead_letters: &Table,
    loaded: &mut Option<(
        datafusion::arrow::datatypes::SchemaRef,
        Arc<dyn aichemy_tables::RowLevelTable>,
    )>,
    options: &KafkaOptions,
    job: &str,
    batch: &[Message],
    expected: Option<&str>,
    next: &Offsets,
    dead_letter_offsets: &mut Offsets,
    status: &Mutex<IngestionStatus>,
) -> Result<u64, JobError> {
    // Debezium events become plain JSON rows first; tombstones are dropped.
    let (flattened, mut rejected) = if options.debezium {
        debezium::flatten(batch)
    } else {
        (Vec::new(), Vec::new())
    };
    let messages: &[Message] = if options.debezium { &flattened } else { batch };
    if loaded.is_none() {
        // First use: the table's columns from the format, the values (JSON) and the
        // Kafka attributes included.
        let mut columns = Vec::new();
        if options.format == MessageFormat::Json {
            let inferred = infer_columns(messages).ok_or_else(|| {
                JobError::retry(format!(
                    "Table {} does not exist and no message so far is a JSON object to \
                     infer its columns from",
                    target.name
                ))
            })?;
            for (name, data_type) in inferred {
                if name != INGESTED_AT {
                    columns.push((name, trino_type(&data_type)));
                }
            }
        }
        if options.debezium {
            for (name, trino_type) in debezium::META_COLUMNS {
                match columns.iter_mut().find(|(n, _)| n == name) {
                    Some(column) => column.1 = trino_type.to_string(),
                    None => columns.push((name.to_string(), trino_type.to_string())),
                }
            }
        }
        for column in attribute_columns(options.format, &options.include) {
            if !columns.iter().any(|(name, _)| *name == column.0) {
                columns.push(column);
            }
        }
        target
            .create(&columns, options.mode == CdcMode::Append)
            .await?;
        *loaded = target.load().await?;
        if let Some((schema, _)) = loaded.as_ref() {
            target.record_lineage(job, source(options), schema).await;
        }
    }
    let now_us = chrono::Utc::now().timestamp_micros();
    let Some((schema, _)) = loaded.as_ref() else {
        return Err(JobError::retry(format!("Table {} is gone", target.name)));
    };
    let known = Decoder::new(schema.clone(), options.format, &options.include)
        .decode_known(messages, now_us);
    if known.is_none() && options.format == MessageFormat::Json {
        // Fields no column holds yet become columns (typed from their values).
        let added = new_fields(schema, messages);
        if !added.is_empty() {
            target.add_columns(&added).await?;
            *loaded = target.load().await?;
            if let Some((schema, _)) = loaded.as_ref() {
                target.record_lineage(job, source(options), schema).await;
            }
        }
    }
    let Some((schema, rows)) = loaded.as_ref() else {
        return Err(JobError::retry(format!("Table {} is gone", target.name)));
    };
    let rows_batch = match known {
        Some(batch) => batch,
        None => {
            let decoder = Decoder::new(schema.clone(), options.format, &options.include);
            let (batch, decode_rejected) =
                decoder.decode(messages, now_us).map_err(JobError::retry)?;
            rejected.extend(decode_rejected);
            batch
        }
    };
    if !rejected.is_empty() {
        let first = &rejected[0];
        let error = format!(
            "Message at partition {} offset {} cannot be ingested: {}",
            first.message.partition, first.message.offset, first.error
        );
        if options.on_error == OnError::Stop {
            return Err(JobError::fatal(error));
        }
        // Only those the dead-letter table has not taken yet (a restart reads them again).
        let fresh: Vec<_> = rejected
            .iter()
            .filter(|r| {
                dead_letter_offsets
                    .0
                    .get(&r.message.partition)
                    .is_none_or(|done| r.message.offset >= *done)
            })
            .collect();
        if !fresh.is_empty() {
            let (schema, table) = match dead_letters.load().await? {
                Some(loaded) => loaded,
                None => {
                    let columns: Vec<(String, String)> = DEAD_LETTER_COLUMNS
                        .iter()
                        .map(|(n, t)| (n.to_string(), t.to_string()))
                        .collect();
                    dead_letters.create(&columns, true).await?;
                    dead_letters.load().await?.ok_or_else(|| {
                        JobError::retry("The dead-letter table vanished as it was made")
                    })?
                }
            };
            let letters = dead_letter_batch(schema, job, &options.topic, &fresh, now_us)?;
            let recorded = table.recorded_position(job).await?;
            let mut covered = dead_letter_offsets.clone();
            covered.0.extend(next.0.iter().map(|(p, o)| (*p, *o)));
            dead_letters
                .append(&table, letters, job, recorded.as_deref(), &covered.text())
                .await?;
            *dead_letter_offsets = covered;
        }
        let mut status = status.lock().unwrap();
        status.dead_letters += fresh.len() as u64;
        status.last_error = Some(error);
    }
    let written = rows_batch.num_rows() as u64;
    if options.mode == CdcMode::Upsert {
        let key = match &options.key_columns {
            columns if !columns.is_empty() => columns.clone(),
            _ => debezium::key_fields(batch).ok_or_else(|| {
                JobError::fatal(
                    "A mirror of Debezium events needs its key: the messages' keys are not \
                     JSON objects, so name the columns in 'key.columns'",
                )
            })?,
        };
        let folded = debezium::fold(&rows_batch, &key).map_err(JobError::fatal)?;
        target.check_owner(true)?;
        changes::merge_batches(
            rows,
            schema,
            &key,
            changes::MirrorChange {
                truncated: folded.truncated,
                added: folded.added,
                keys: folded.keys,
            },
            job,
            expected,
            &next.text(),
        )
        .await?;
        return Ok(written);
    }
    target
        .append(rows, rows_batch, job, expected, &next.text())
        .await?;
    Ok(written)
}

/// The fields of JSON objects among `messages` that `schema` has no column for (by
/// lower-case name), with the Trino types their values infer.
fn new_fields(
    schema: &datafusion::arrow::datatypes::Schema,
    messages: &[Message],
) -> Vec<(String, String)> {
    let known = |name: &str| {
        schema
            .fields()
            .iter()
            .any(|f| f.name().eq_ignore_ascii_case(name))
    };
    let with_new: Vec<Message> = messages
        .iter()
        .filter(|m| {
            m.value
                .as_deref()
                .and_then(|v| serde_json::from_slice::<KeyOrder>(v).ok())
                .is_some_and(|KeyOrder(keys)| keys.iter().any(|k| !known(k)))
        })
        .cloned()
        .collect();
    if with_new.is_empty() {
        return Vec::new();
    }
    infer_columns(&with_new)
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| !known(name))
        .map(|(name, data_type)| (name, trino_type(&data_type)))
        .collect()
}
