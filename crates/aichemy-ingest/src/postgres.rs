//! A PostgreSQL change-data-capture job: a publication and a logical replication slot
//! (`pgoutput`) on the source, one lakehouse table per source table.
//!
//! ```text
//! start ─▶ publication (created for the tables unless it exists)
//!       ─▶ slot exists? no: CREATE_REPLICATION_SLOT … (SNAPSHOT 'export') on the gated
//!          replication session: every table read in that exported snapshot (op r) and
//!          committed recording the slot's consistent point C; streaming starts at C.
//!       ─▶ START_REPLICATION ─▶ transactions ─▶ pending changes per table
//!       ─▶ every commit interval: one commit per changed table recording the end LSN of
//!          the last transaction in it; the slot confirmed up to the smallest LSN every
//!          table records.
//! ```
//!
//! Each table records its own position (the snapshot summary, as Kafka offsets are), and
//! a transaction that ends at or before it is skipped for that table: so a job killed at
//! any moment replays from the slot's confirmed point without writing a change twice.
//! A table that needs a snapshot later (one added to the publication, one whose snapshot
//! was cut short, a Debezium-style signal `execute-snapshot`) is read in the snapshot a
//! temporary slot exports at its consistent point C′, and records C′: the stream skips
//! what that snapshot already holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use pgwire_replication::{
    Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent, SslMode as PgwireSslMode,
    TlsConfig,
};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow, PgSslMode};
use sqlx::{Connection, Row};

use aichemy_engine::ingestion::{
    CdcMode, ChangeFormat, IngestionDefinition, IngestionStatus, PostgresOptions, SourceTable,
    SslMode,
};
use aichemy_engine::{Lakehouse, QualifiedName};
use aichemy_tables::{Recording, RowLevelTable};

use crate::changes::{self, Change, Op, SourceInfo};
use crate::pgoutput::{self, Column, Message, Relation, Value};
use crate::target::Table;
use crate::JobError;

/// How often the publication is checked for new tables.
const TABLE_CHECK: Duration = Duration::from_secs(10);
/// A table with no change for this long still records where the stream is, so that the
/// slot can be confirmed past WAL that never concerned it.
const IDLE_ADVANCE: Duration = Duration::from_secs(60);
/// Rows of a snapshot per batch.
const SNAPSHOT_BATCH: usize = 8192;
/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::retry(e.to_string())
}

/// Where a table stands: the end LSN of the last transaction it holds, and the signal
/// whose snapshot it holds at that point, if any (`0/16B6C50 signal=ad-hoc-1`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    lsn: u64,
    signal: Option<String>,
}

impl Position {
    fn parse(text: &str) -> Result<Self, JobError> {
        let mut parts = text.split_whitespace();
        let lsn = parts
            .next()
            .and_then(|l| Lsn::parse(l).ok())
            .ok_or_else(|| {
                JobError::fatal(format!("The table records an unreadable LSN '{text}'"))
            })?;
        let signal = parts
            .find_map(|p| p.strip_prefix("signal="))
            .map(str::to_string);
        Ok(Self {
            lsn: lsn.as_u64(),
            signal,
        })
    }

    fn text(&self) -> String {
        match &self.signal {
            Some(signal) => format!("{} signal={signal}", Lsn(self.lsn)),
            None => Lsn(self.lsn).to_string(),
        }
    }
}

/// One source table and the table it is written to.
struct Target {
    table: Table,
    relation: Arc<Relation>,
    /// The primary key's columns (what a mirror is keyed by).
    key: Vec<String>,
    loaded: Option<(SchemaRef, Arc<dyn RowLevelTable>)>,
    /// What the table records, as text and read.
    recorded: Option<String>,
    position: Option<Position>,
    pending: Vec<Change>,
    last_commit: Instant,
}

struct Job {
    lakehouse: Arc<Lakehouse>,
    definition: IngestionDefinition,
    options: PostgresOptions,
    password: String,
    status: Arc<Mutex<IngestionStatus>>,
    targets: BTreeMap<SourceTable, Target>,
    info: SourceInfo,
}

pub async fn run(
    lakehouse: Arc<Lakehouse>,
    definition: IngestionDefinition,
    status: Arc<Mutex<IngestionStatus>>,
) -> Result<(), JobError> {
    let options = definition
        .postgres()
        .map_err(|e| JobError::fatal(e.message))?;
    let password = options.password.clone().unwrap_or_default();
    let info = SourceInfo {
        job: definition.name.clone(),
        database: options.database.clone(),
    };
    let mut job = Job {
        lakehouse,
        definition,
        options,
        password,
        status,
        targets: BTreeMap::new(),
        info,
    };
    job.run().await
}

impl Job {
    fn name(&self) -> &str {
        &self.definition.name
    }

    async fn connect(&self) -> Result<PgConnection, JobError> {
        let options = PgConnectOptions::new()
            .host(&self.options.hostname)
            .port(self.options.port)
            .username(&self.options.username)
            .password(&self.password)
            .database(&self.options.database)
            .application_name("aichemy-ingest")
            .options([("extra_float_digits", "3"), ("IntervalStyle", "iso_8601")])
            .ssl_mode(match self.options.ssl_mode {
                SslMode::Disabled => PgSslMode::Disable,
                SslMode::Preferred => PgSslMode::Prefer,
                SslMode::Required => PgSslMode::Require,
                SslMode::VerifyCa => PgSslMode::VerifyCa,
                SslMode::VerifyFull => PgSslMode::VerifyFull,
            });
        let options = match &self.options.ssl_root_cert {
            Some(path) => options.ssl_root_cert(path.as_str()),
            None => options,
        };
        PgConnection::connect_with(&options).await.map_err(|e| {
            JobError::retry(format!(
                "Cannot connect to PostgreSQL at {}:{}: {e}",
                self.options.hostname, self.options.port
            ))
        })
    }

    fn replication_config(&self, slot: &str) -> ReplicationConfig {
        ReplicationConfig::new(
            self.options.hostname.clone(),
            self.options.username.clone(),
            self.password.clone(),
            self.options.database.clone(),
            slot.to_string(),
            self.options.publication.clone(),
        )
        .with_port(self.options.port)
        .with_tls(TlsConfig {
            mode: match self.options.ssl_mode {
                SslMode::Disabled => PgwireSslMode::Disable,
                SslMode::Preferred => PgwireSslMode::Prefer,
                SslMode::Required => PgwireSslMode::Require,
                SslMode::VerifyCa => PgwireSslMode::VerifyCa,
                SslMode::VerifyFull => PgwireSslMode::VerifyFull,
            },
            ca_pem_path: self.options.ssl_root_cert.as_ref().map(Into::into),
            ..TlsConfig::default()
        })
        .with_application_name(format!("aichemy-ingest-{}", self.name()))
        .with_options(
            "-c datestyle=ISO -c timezone=UTC -c extra_float_digits=3 -c intervalstyle=iso_8601",
        )
        .with_status_interval(Duration::from_secs(1))
    }

    /// Creates the publication for the job's tables (and its signal table) unless it
    /// exists, and adds the tables it lacks when the job manages it.
    async fn ensure_publication(&self, conn: &mut PgConnection) -> Result<(), JobError> {
        let options = &self.options;
        let exists = !query(
            conn,
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&options.publication],
        )
        .await
        .map_err(retry)?
        .is_empty();
        let mut wanted: Vec<&SourceTable> = options.tables.iter().collect();
        wanted.extend(options.signal_table.iter());
        if !exists {
            if !options.create_publication {
                return Err(JobError::fatal(format!(
                    "Publication '{}' does not exist (and publication.create.enable is false)",
                    options.publication
                )));
            }
            let list = if wanted.is_empty() {
                "ALL TABLES".to_string()
            } else {
                format!(
                    "TABLE {}",
                    wanted
                        .iter()
                        .map(|t| t.quoted())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            execute(
                conn,
                &format!("CREATE PUBLICATION \"{}\" FOR {list}", options.publication),
            )
            .await
            .map_err(|e| JobError::fatal(format!("Cannot create the publication: {e}")))?;
            return Ok(());
        }
        if options.create_publication && !wanted.is_empty() {
            let present = self.publication_tables(conn).await?;
            let all = query(
                conn,
                "SELECT puballtables FROM pg_publication WHERE pubname = $1",
                &[&options.publication],
            )
            .await
            .map_err(retry)?
            .first()
            .map(|row| row.try_get::<bool, _>(0))
            .transpose()
            .map_err(retry)?
            .unwrap_or(false);
            for table in wanted {
                if !all && !present.contains(table) {
                    let sql = format!(
                        "ALTER PUBLICATION \"{}\" ADD TABLE {}",
                        options.publication,
                        table.quoted()
                    );
                    execute(conn, &sql).await.map_err(|e| {
                        JobError::fatal(format!("Cannot add {table} to the publication: {e}"))
                    })?;
                }
            }
        }
        Ok(())
    }

    async fn publication_tables(
        &self,
        conn: &mut PgConnection,
    ) -> Result<BTreeSet<SourceTable>, JobError> {
        let rows = query(
            conn,
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&self.options.publication],
        )
        .await
        .map_err(retry)?;
        rows.iter()
            .map(|row| {
                Ok(SourceTable {
                    schema: row.try_get(0).map_err(retry)?,
                    table: row.try_get(1).map_err(retry)?,
                })
            })
            .collect()
    }

    /// The tables the job captures now: the publication's, those named when named,
    /// never the signal table.
    async fn captured(&self, conn: &mut PgConnection) -> Result<Vec<SourceTable>, JobError> {
        let published = self.publication_tables(conn).await?;
        Ok(published.into_iter().filter(|t| self.wants(t)).collect())
    }

    fn wants(&self, table: &SourceTable) -> bool {
        Some(table) != self.options.signal_table.as_ref()
            && (self.options.tables.is_empty() || self.options.tables.contains(table))
    }

    /// A table's columns and primary key as the catalog has them now.
    async fn describe(
        &self,
        conn: &mut PgConnection,
        table: &SourceTable,
    ) -> Result<Relation, JobError> {
        let name = table.quoted();
        let rows = query(
            conn,
            "SELECT a.attrelid::int8, a.attname::text, a.atttypid::int8, a.atttypmod, \
                    coalesce(a.attnum = ANY(i.indkey::int2[]), false) \
             FROM pg_attribute a \
             LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
             WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&name],
        )
        .await
        .map_err(|e| JobError::retry(format!("Cannot read the columns of {table}: {e}")))?;
        let mut id = 0;
        let mut columns = Vec::new();
        for row in &rows {
            id = row.try_get::<i64, _>(0).map_err(retry)? as u32;
            columns.push(Column {
                name: row.try_get(1).map_err(retry)?,
                type_oid: row.try_get::<i64, _>(2).map_err(retry)? as u32,
                type_modifier: row.try_get(3).map_err(retry)?,
                key: row.try_get(4).map_err(retry)?,
            });
        }
        Ok(Relation {
            id,
            table: table.clone(),
            columns,
        })
    }

    fn format(&self) -> Option<ChangeFormat> {
        match self.options.mode {
            CdcMode::Append => Some(self.options.format),
            CdcMode::Upsert => None,
        }
    }

    /// A followed table as a lineage dataset, named as OpenLineage names PostgreSQL tables:
    /// `database.schema.table` in `postgres://host:port`.
    fn source(&self, source: &SourceTable) -> aichemy_engine::lineage::Dataset {
        aichemy_engine::lineage::Dataset {
            catalog: format!("postgres://{}:{}", self.options.hostname, self.options.port),
            schema: Some(format!("{}.{}", self.options.database, source.schema)),
            table: source.table.clone(),
        }
    }

    fn target_name(&self, source: &SourceTable) -> QualifiedName {
        let target = &self.definition.target;
        QualifiedName {
            catalog: target.catalog.clone(),
            schema: target.schema.clone(),
            name: if self.definition.targets_schema() {
                source.target_name()
            } else {
                target.table.clone()
            },
        }
    }

    /// Starts following `source`: its table (created unless it exists) and what it
    /// records.
    async fn add_target(
        &mut self,
        conn: &mut PgConnection,
        source: &SourceTable,
    ) -> Result<(), JobError> {
        let relation = self.describe(conn, source).await?;
        let key: Vec<String> = relation
            .columns
            .iter()
            .filter(|c| c.key)
            .map(|c| c.name.clone())
            .collect();
        if self.options.mode == CdcMode::Upsert && key.is_empty() {
            return Err(JobError::fatal(format!(
                "Table {source} has no primary key: a mirror (mode 'upsert') needs one"
            )));
        }
        let table = Table::new(
            self.lakehouse.clone(),
            self.target_name(source),
            &self.definition.owner,
        );
        let mut loaded = table.load().await?;
        if loaded.is_none() {
            let columns = changes::table_columns(&relation, self.format());
            table
                .create(&columns, self.options.mode == CdcMode::Append)
                .await?;
            loaded = table.load().await?;
        }
        if let Some((schema, _)) = &loaded {
            table
                .record_lineage(self.name(), self.source(source), schema)
                .await;
        }
        let recorded = match &loaded {
            Some((_, rows)) => rows.recorded_position(self.name()).await?,
            None => None,
        };
        let position = recorded.as_deref().map(Position::parse).transpose()?;
        tracing::info!(
            ingestion = self.name(),
            source = %source,
            table = %table.name,
            position = recorded.as_deref().unwrap_or("none"),
            "following a PostgreSQL table"
        );
        self.targets.insert(
            source.clone(),
            Target {
                table,
                relation: Arc::new(relation),
                key,
                loaded,
                recorded,
                position,
                pending: Vec::new(),
                last_commit: Instant::now(),
            },
        );
        Ok(())
    }

    /// Reads `source` in the exported snapshot `snapshot` (taken at `lsn`) and commits
    /// its rows (op `r`): a mirror's in place of all it held, recording `lsn`; a bronze
    /// table's appended, recording `position` (where it already stood, for a signal).
    async fn snapshot(
        &mut self,
        source: &SourceTable,
        snapshot: &str,
        lsn: u64,
        position: Position,
    ) -> Result<(), JobError> {
        let mut conn = self.connect().await?;
        let begin = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
            snapshot.replace('\'', "''")
        );
        execute(&mut conn, &begin)
            .await
            .map_err(|e| JobError::retry(format!("Cannot use the exported snapshot: {e}")))?;
        let relation = Arc::new(self.describe(&mut conn, source).await?);
        let format = self.format();
        let mirror = self.options.mode == CdcMode::Upsert;
        let lineage_source = self.source(source);
        let job = self.name().to_string();
        let target = self.targets.get_mut(source).expect("a followed table");
        target.relation = relation.clone();
        let missing = match &target.loaded {
            Some((schema, _)) if format != Some(ChangeFormat::Debezium) => {
                changes::missing_columns(schema, &relation)
            }
            _ => Vec::new(),
        };
        if !missing.is_empty() {
            target.table.add_columns(&missing).await?;
        }
        let (schema, rows) = target
            .table
            .load()
            .await?
            .ok_or_else(|| JobError::retry(format!("Table {} vanished", target.table.name)))?;
        if !missing.is_empty() {
            target
                .table
                .record_lineage(&job, lineage_source, &schema)
                .await;
        }
        let select = format!(
            "SELECT {} FROM {}",
            relation
                .columns
                .iter()
                .map(|c| format!("\"{}\"::text", c.name.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(", "),
            source.quoted()
        );
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        let info = SourceInfo {
            job: self.info.job.clone(),
            database: self.info.database.clone(),
        };
        let batch_schema = schema.clone();
        let reader = aichemy_task::spawn(
            "cdc-snapshot",
            read_snapshot(
                conn,
                select,
                relation,
                lsn,
                batch_schema,
                format,
                info,
                sender,
            ),
        );
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|batch| (batch, receiver))
        });
        let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), stream));
        let files = if mirror {
            rows.files().await?.into_iter().map(|f| f.path).collect()
        } else {
            Vec::new()
        };
        let recorded = if mirror {
            Position { lsn, signal: None }
        } else {
            position
        };
        let text = recorded.text();
        target.table.check_owner(mirror)?;
        let committed = rows
            .commit_recording(
                files,
                stream,
                Recording {
                    job: &self.info.job,
                    expected: target.recorded.as_deref(),
                    position: &text,
                },
            )
            .await;
        let read = reader
            .await
            .map_err(|e| JobError::retry(format!("The snapshot reader stopped: {e}")))??;
        committed?;
        tracing::info!(ingestion = %self.info.job, source = %source, rows = read, lsn = %Lsn(lsn), "snapshot committed");
        // What the snapshot holds is not applied again.
        target.pending.retain(|c| c.commit_lsn > recorded.lsn);
        target.recorded = Some(text);
        target.position = Some(recorded);
        target.loaded = Some((schema, rows));
        target.last_commit = Instant::now();
        let mut status = self.status.lock().unwrap();
        status.rows += read;
        status.commits += 1;
        status.last_commit_ms = Some(chrono::Utc::now().timestamp_millis());
        Ok(())
    }

    /// Reads `source` in the snapshot of a temporary slot made now (the stream goes on
    /// from where it is; the table records the slot's consistent point).
    async fn snapshot_now(
        &mut self,
        source: &SourceTable,
        signal: Option<&str>,
    ) -> Result<(), JobError> {
        let suffix = chrono::Utc::now().timestamp_millis() % 1_000_000;
        let mut slot = format!("{}_snap", self.options.slot);
        slot.truncate(50);
        let slot = format!("{slot}_{suffix}");
        let mut session = ReplicationClient::connect_gated(self.replication_config(&slot))
            .await
            .map_err(retry)?;
        let (lsn, snapshot) = create_slot(&mut session, &slot, true).await?;
        let position = match (&self.options.mode, signal) {
            // A bronze table records where it stood and which signal it answered.
            (CdcMode::Append, Some(signal)) => Position {
                lsn: self
                    .targets
                    .get(source)
                    .and_then(|t| t.position.as_ref())
                    .map_or(0, |p| p.lsn),
                signal: Some(signal.to_string()),
            },
            _ => Position { lsn, signal: None },
        };
        let result = self.snapshot(source, &snapshot, lsn, position).await;
        session.abort();
        result
    }

    async fn run(&mut self) -> Result<(), JobError> {
        let mut conn = self.connect().await?;
        self.ensure_publication(&mut conn).await?;
        let slot_exists = !query(
            &mut conn,
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
            &[&self.options.slot],
        )
        .await
        .map_err(retry)?
        .is_empty();
        for source in self.captured(&mut conn).await? {
            self.add_target(&mut conn, &source).await?;
        }
        if let Some(signal) = &self.options.signal_table {
            // Its rows are read from the stream, never written anywhere.
            if !self.publication_tables(&mut conn).await?.contains(signal) {
                tracing::warn!(ingestion = self.name(), table = %signal, "the signal table is not in the publication");
            }
        }
        let slot = self.options.slot.clone();
        let mut client = ReplicationClient::connect_gated(self.replication_config(&slot))
            .await
            .map_err(retry)?;
        let needs_snapshot = |t: &Target| t.position.is_none();
        if !slot_exists {
            let (lsn, snapshot) = create_slot(&mut client, &slot, false).await?;
            tracing::info!(ingestion = self.name(), slot = %slot, lsn = %Lsn(lsn), "replication slot created");
            if self.options.snapshot {
                // Every table: one that records a position lost its slot (dropped
                // meanwhile), and with it the changes since.
                let sources: Vec<SourceTable> = self.targets.keys().cloned().collect();
                for source in sources {
                    self.snapshot(&source, &snapshot, lsn, Position { lsn, signal: None })
                        .await?;
                }
            }
        } else if self.options.snapshot {
            // Snapshots a previous run did not finish.
            let sources: Vec<SourceTable> = self
                .targets
                .iter()
                .filter(|(_, t)| needs_snapshot(t))
                .map(|(s, _)| s.clone())
                .collect();
            for source in sources {
                self.snapshot_now(&source, None).await?;
            }
        }
        client.start().await.map_err(retry)?;
        client.wait_started().await.map_err(|e| {
            JobError::retry(format!(
                "PostgreSQL did not start replication from slot '{slot}': {e}"
            ))
        })?;
        {
            let mut status = self.status.lock().unwrap();
            status.state = "running".into();
            status.position = self.confirmable().map(|l| Lsn(l).to_string());
            status.last_error = None;
        }
        self.stream(&mut client, &mut conn).await
    }

    /// The smallest position every table records: the slot may be confirmed up to it.
    fn confirmable(&self) -> Option<u64> {
        self.targets
            .values()
            .filter_map(|t| t.position.as_ref().map(|p| p.lsn))
            .min()
    }

    async fn stream(
        &mut self,
        client: &mut ReplicationClient,
        conn: &mut PgConnection,
    ) -> Result<(), JobError> {
        let mut relations: HashMap<u32, Arc<Relation>> = HashMap::new();
        // The open transaction: its id, commit time and changes.
        let mut open: Option<(u32, i64, Vec<Change>)> = None;
        let mut stream_lsn: Option<u64> = None;
        let mut server_end: u64 = 0;
        let mut pending = 0usize;
        let mut batch_start = Instant::now();
        let mut last_table_check = Instant::now();
        let mut last_maintenance = Instant::now();
        let mut maintenance: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let deadline = batch_start + self.options.commit_interval;
            let full = pending >= self.options.max_batch_changes;
            let event = if full && open.is_none() {
                None
            } else if open.is_some() && Instant::now() >= deadline {
                // Commits fall between transactions: read on to this one's end.
                Some(client.recv().await)
            } else {
                tokio::select! {
                    event = client.recv() => Some(event),
                    _ = tokio::time::sleep_until(deadline.into()) => None,
                }
            };
            if let Some(event) = event {
                let event = event
                    .map_err(|e| JobError::retry(format!("The replication stream broke: {e}")))?
                    .ok_or_else(|| JobError::retry("The replication stream ended"))?;
                match event {
                    ReplicationEvent::Begin {
                        xid,
                        commit_time_micros,
                        ..
                    } => {
                        open = Some((xid, commit_time_micros + PG_EPOCH_US, Vec::new()));
                    }
                    ReplicationEvent::XLogData {
                        wal_start,
                        wal_end,
                        data,
                        ..
                    } => {
                        server_end = server_end.max(wal_end.as_u64());
                        let message =
                            pgoutput::decode(&data).map_err(|e| JobError::fatal(e.to_string()))?;
                        if let Message::Relation(relation) = message {
                            relations.insert(relation.id, Arc::new(relation));
                            continue;
                        }
                        let Some((xid, ts_us, changes)) = open.as_mut() else {
                            continue;
                        };
                        let relation = |id: u32| {
                            relations.get(&id).cloned().ok_or_else(|| {
                                JobError::retry(format!(
                                    "A change names relation {id} before describing it"
                                ))
                            })
                        };
                        let mut add = |op, relation: Arc<Relation>, before, after| {
                            let seq = changes.len() as i64;
                            changes.push(Change {
                                op,
                                relation,
                                before,
                                after,
                                lsn: wal_start.as_u64(),
                                commit_lsn: 0,
                                seq,
                                xid: Some(*xid as i64),
                                ts_us: *ts_us,
                            });
                        };
                        match message {
                            Message::Insert { relation: id, new } => {
                                add(Op::Create, relation(id)?, None, Some(new))
                            }
                            Message::Update {
                                relation: id,
                                old,
                                new,
                            } => add(Op::Update, relation(id)?, old, Some(new)),
                            Message::Delete { relation: id, old } => {
                                add(Op::Delete, relation(id)?, Some(old), None)
                            }
                            Message::Truncate { relations: ids } => {
                                for id in ids {
                                    add(Op::Truncate, relation(id)?, None, None);
                                }
                            }
                            Message::Relation(_) | Message::Other => {}
                        }
                    }
                    ReplicationEvent::Commit { end_lsn, .. } => {
                        if let Some((_, _, changes)) = open.take() {
                            let end = end_lsn.as_u64();
                            server_end = server_end.max(end);
                            pending += self.committed(conn, changes, end, stream_lsn).await?;
                            stream_lsn = Some(end);
                        }
                    }
                    ReplicationEvent::KeepAlive { wal_end, .. } => {
                        server_end = server_end.max(wal_end.as_u64());
                    }
                    ReplicationEvent::StoppedAt { .. } => {
                        return Err(JobError::retry("The replication stream stopped"));
                    }
                    _ => {}
                }
            }
            let due = Instant::now() >= deadline || pending >= self.options.max_batch_changes;
            if open.is_some() || !due {
                continue;
            }
            self.flush(stream_lsn).await?;
            pending = 0;
            if let Some(lsn) = self.confirmable() {
                client.update_applied_lsn(Lsn(lsn));
                let mut status = self.status.lock().unwrap();
                status.position = Some(Lsn(lsn).to_string());
                status.lag = Some(server_end.saturating_sub(stream_lsn.unwrap_or(lsn)) as i64);
            }
            batch_start = Instant::now();
            if last_table_check.elapsed() >= TABLE_CHECK {
                last_table_check = Instant::now();
                for source in self.captured(conn).await? {
                    if !self.targets.contains_key(&source) {
                        self.add_target(conn, &source).await?;
                        if self.options.snapshot {
                            self.snapshot_now(&source, None).await?;
                        }
                    }
                }
            }
            let interval = self.options.maintenance.interval;
            if !interval.is_zero()
                && last_maintenance.elapsed() >= interval
                && maintenance.as_ref().is_none_or(|m| m.is_finished())
            {
                last_maintenance = Instant::now();
                let tables: Vec<Table> = self
                    .targets
                    .values()
                    .map(|t| {
                        Table::new(
                            self.lakehouse.clone(),
                            t.table.name.clone(),
                            &self.definition.owner,
                        )
                    })
                    .collect();
                let retention = self.options.maintenance.snapshot_retention;
                let name = self.name().to_string();
                maintenance = Some(aichemy_task::spawn("ingestion-maintenance", async move {
                    for table in tables {
                        if let Err(e) = table.maintain(retention).await {
                            tracing::warn!(ingestion = %name, table = %table.name, error = %e, "table maintenance failed");
                        }
                    }
                }));
            }
        }
    }

    /// Takes the changes of a transaction that ended at `end` (the previous one at
    /// `before`): each table's that it does not hold yet become pending; rows inserted
    /// into the signal table are acted on. Answers how many became pending.
    async fn committed(
        &mut self,
        conn: &mut PgConnection,
        changes: Vec<Change>,
        end: u64,
        before: Option<u64>,
    ) -> Result<usize, JobError> {
        let (signals, changes): (Vec<Change>, Vec<Change>) = changes
            .into_iter()
            .partition(|c| Some(&c.relation.table) == self.options.signal_table.as_ref());
        let signals: Vec<Change> = signals.into_iter().filter(|c| c.op == Op::Create).collect();
        let mut pending = 0;
        if !signals.is_empty() {
            // Everything before the signal is committed first.
            self.flush(before).await?;
        }
        for mut change in changes {
            change.commit_lsn = end;
            let source = change.relation.table.clone();
            if !self.targets.contains_key(&source) {
                if !self.wants(&source) {
                    continue;
                }
                // A table new in the publication.
                self.add_target(conn, &source).await?;
                if self.options.snapshot {
                    self.snapshot_now(&source, None).await?;
                }
            }
            let target = self.targets.get_mut(&source).expect("followed");
            if target.position.as_ref().is_some_and(|p| p.lsn >= end) {
                continue;
            }
            target.relation = change.relation.clone();
            target.pending.push(change);
            pending += 1;
        }
        for signal in signals {
            self.signal(&signal, end).await?;
        }
        Ok(pending)
    }

    /// Commits every table's pending changes recording `stream_lsn` (the end of the last
    /// transaction read), and moves idle tables' positions up to it now and then.
    async fn flush(&mut self, stream_lsn: Option<u64>) -> Result<(), JobError> {
        let Some(lsn) = stream_lsn else {
            return Ok(());
        };
        let format = self.format();
        let mirror = self.options.mode == CdcMode::Upsert;
        let sources: Vec<SourceTable> = self.targets.keys().cloned().collect();
        let job = self.name().to_string();
        for source in sources {
            let lineage_source = self.source(&source);
            let target = self.targets.get_mut(&source).expect("followed");
            let behind = target.position.as_ref().is_none_or(|p| p.lsn < lsn);
            let idle = target.pending.is_empty();
            if idle
                && !(behind
                    && target.position.is_some()
                    && target.last_commit.elapsed() >= IDLE_ADVANCE)
            {
                continue;
            }
            // Columns added at the source since the table was made.
            let relations: Vec<Arc<Relation>> = {
                let mut seen: Vec<Arc<Relation>> = Vec::new();
                for change in &target.pending {
                    if !seen.iter().any(|r| Arc::ptr_eq(r, &change.relation)) {
                        seen.push(change.relation.clone());
                    }
                }
                seen
            };
            if mirror || target.loaded.is_none() || !relations.is_empty() {
                let mut loaded = target.table.load().await?;
                if let (Some((schema, _)), true) = (&loaded, format != Some(ChangeFormat::Debezium))
                {
                    let mut missing: Vec<(String, String)> = Vec::new();
                    for relation in &relations {
                        for column in changes::missing_columns(schema, relation) {
                            if !missing.contains(&column) {
                                missing.push(column);
                            }
                        }
                    }
                    if !missing.is_empty() {
                        target.table.add_columns(&missing).await?;
                        loaded = target.table.load().await?;
                        if let Some((schema, _)) = &loaded {
                            target
                                .table
                                .record_lineage(&job, lineage_source, schema)
                                .await;
                        }
                    }
                }
                target.loaded = loaded;
            }
            let Some((schema, rows)) = target.loaded.clone() else {
                return Err(JobError::retry(format!(
                    "Table {} is gone",
                    target.table.name
                )));
            };
            let position = Position { lsn, signal: None };
            let text = position.text();
            let batch = std::mem::take(&mut target.pending);
            let bytes = changes::bytes(&batch);
            let written = if mirror {
                target.table.check_owner(true)?;
                let folded = changes::fold(batch, &target.key)?;
                changes::merge(
                    &rows,
                    &schema,
                    &target.key,
                    folded,
                    &self.info,
                    &self.info.job,
                    target.recorded.as_deref(),
                    &text,
                )
                .await?
            } else {
                let now_us = chrono::Utc::now().timestamp_micros();
                let batch = changes::rows(&schema, &batch, format, &self.info, now_us)?;
                let written = batch.num_rows() as u64;
                target
                    .table
                    .append(
                        &rows,
                        batch,
                        &self.info.job,
                        target.recorded.as_deref(),
                        &text,
                    )
                    .await?;
                written
            };
            target.recorded = Some(text);
            target.position = Some(position);
            target.last_commit = Instant::now();
            if !idle {
                let mut status = self.status.lock().unwrap();
                status.rows += written;
                status.bytes += bytes;
                status.commits += 1;
                status.last_commit_ms = Some(chrono::Utc::now().timestamp_millis());
            }
        }
        Ok(())
    }

    /// A row inserted into the signal table: `execute-snapshot` of the tables its data
    /// names (`{"data-collections": ["public.orders"]}`), as Debezium's signals do.
    async fn signal(&mut self, signal: &Change, end: u64) -> Result<(), JobError> {
        let value = |name: &str| signal.value(name).map(str::to_string);
        let id = value("id").unwrap_or_default();
        let kind = value("type").unwrap_or_default();
        if kind != "execute-snapshot" {
            tracing::warn!(ingestion = self.name(), signal = %id, kind = %kind, "signal ignored (only execute-snapshot is known)");
            return Ok(());
        }
        let data: serde_json::Value = value("data")
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or_default();
        let names: Vec<String> = data
            .get("data-collections")
            .and_then(|c| c.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for name in names {
            let Some(source) = SourceTable::parse(&name, "public") else {
                tracing::warn!(ingestion = self.name(), signal = %id, table = %name, "signal names no table");
                continue;
            };
            let Some(target) = self.targets.get(&source) else {
                tracing::warn!(ingestion = self.name(), signal = %id, table = %source, "signal names a table the job does not follow");
                continue;
            };
            // Already answered (a replay after a restart)?
            let answered = target
                .position
                .as_ref()
                .is_some_and(|p| p.lsn >= end || p.signal.as_deref() == Some(id.as_str()));
            if answered {
                continue;
            }
            tracing::info!(ingestion = self.name(), signal = %id, table = %source, "snapshot requested by a signal");
            self.snapshot_now(&source, Some(&id)).await?;
        }
        Ok(())
    }
}

/// The rows of `sql` with text parameters. (Boxed: a future holding sqlx's executor
/// across an await is otherwise not provably `Send` for every lifetime.)
fn query<'a>(
    conn: &'a mut PgConnection,
    sql: &'a str,
    binds: &'a [&'a str],
) -> futures::future::BoxFuture<'a, Result<Vec<PgRow>, sqlx::Error>> {
    Box::pin(async move {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        query.fetch_all(conn).await
    })
}

/// Runs `sql` (statements without parameters).
fn execute<'a>(
    conn: &'a mut PgConnection,
    sql: &'a str,
) -> futures::future::BoxFuture<'a, Result<(), sqlx::Error>> {
    Box::pin(async move { sqlx::Executor::execute(conn, sql).await.map(|_| ()) })
}

/// Reads the rows of `select` (in the snapshot `conn`'s transaction uses) as changes
/// `r` at `lsn`, in batches for `schema`, into `sender`. Answers the rows read.
#[allow(clippy::too_many_arguments)]
async fn read_snapshot(
    mut conn: PgConnection,
    select: String,
    relation: Arc<Relation>,
    lsn: u64,
    schema: SchemaRef,
    format: Option<ChangeFormat>,
    info: SourceInfo,
    sender: tokio::sync::mpsc::Sender<
        datafusion::error::Result<datafusion::arrow::array::RecordBatch>,
    >,
) -> Result<u64, JobError> {
    let now_us = chrono::Utc::now().timestamp_micros();
    let mut seq = 0i64;
    let mut read = 0u64;
    declare(&mut conn, &select).await?;
    loop {
        let rows = fetch(&mut conn).await?;
        let mut chunk = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut values = Vec::with_capacity(relation.columns.len());
            for i in 0..relation.columns.len() {
                let text: Option<String> = row.try_get(i).map_err(retry)?;
                values.push(text.map_or(Value::Null, Value::Text));
            }
            chunk.push(Change {
                op: Op::Read,
                relation: relation.clone(),
                before: None,
                after: Some(values),
                lsn,
                commit_lsn: lsn,
                seq,
                xid: None,
                ts_us: now_us,
            });
            seq += 1;
        }
        if chunk.is_empty() {
            break;
        }
        read += chunk.len() as u64;
        let batch = changes::rows(&schema, &chunk, format, &info, now_us);
        let failed = batch.is_err();
        let batch = batch.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)));
        if sender.send(batch).await.is_err() || failed {
            break;
        }
    }
    finish(&mut conn).await;
    Ok(read)
}

async fn finish(conn: &mut PgConnection) {
    let _ = execute(conn, "COMMIT").await;
}

/// Opens the snapshot's cursor over `select`.
async fn declare(conn: &mut PgConnection, select: &str) -> Result<(), JobError> {
    let sql = format!("DECLARE aichemy_snapshot NO SCROLL CURSOR FOR {select}");
    execute(conn, &sql)
        .await
        .map_err(|e| JobError::retry(format!("Snapshot read failed: {e}")))?;
    Ok(())
}

/// The next rows of the snapshot's cursor (none at its end).
async fn fetch(conn: &mut PgConnection) -> Result<Vec<PgRow>, JobError> {
    let sql = format!("FETCH {SNAPSHOT_BATCH} FROM aichemy_snapshot");
    query(conn, &sql, &[])
        .await
        .map_err(|e| JobError::retry(format!("Snapshot read failed: {e}")))
}

/// `CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT 'export')` on a gated session:
/// the slot's consistent point and the name of the snapshot it exports (valid until the
/// session's next command).
async fn create_slot(
    session: &mut ReplicationClient,
    slot: &str,
    temporary: bool,
) -> Result<(u64, String), JobError> {
    let sql = format!(
        "CREATE_REPLICATION_SLOT \"{slot}\" {}LOGICAL pgoutput (SNAPSHOT 'export')",
        if temporary { "TEMPORARY " } else { "" }
    );
    let rows = session
        .simple_query(&sql)
        .await
        .map_err(|e| JobError::retry(format!("Cannot create replication slot '{slot}': {e}")))?;
    let row = rows
        .first()
        .ok_or_else(|| JobError::retry("CREATE_REPLICATION_SLOT answered no row"))?;
    let text = |i: usize| {
        row.get(i)
            .and_then(|v| v.as_ref())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or_else(|| JobError::retry("CREATE_REPLICATION_SLOT answered too few columns"))
    };
    let lsn = Lsn::parse(&text(1)?).map_err(retry)?.as_u64();
    Ok((lsn, text(2)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_back() {
        let p = Position::parse("0/16B6C50").unwrap();
        assert_eq!(p.lsn, 0x16B6C50);
        assert_eq!(p.text(), "0/16B6C50");
        let p = Position::parse("1/A signal=ad-hoc-1").unwrap();
        assert_eq!(p.lsn, (1 << 32) + 10);
        assert_eq!(p.signal.as_deref(), Some("ad-hoc-1"));
        assert_eq!(Position::parse(&p.text()).unwrap(), p);
        assert!(Position::parse("x").is_err());
    }
}
