//! An Iceberg table's history: reading it as of a snapshot (by id or by time), rolling it
//! back, and the metadata tables Trino's Iceberg connector offers as `"t$snapshots"`,
//! `$history`, `$refs`, `$properties`, `$manifests`, `$files` and `$partitions`, with its
//! columns.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Int32Builder, Int64Array, Int64Builder, ListBuilder,
    MapBuilder, StringBuilder, StructBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use iceberg::spec::{
    Datum, ManifestContentType, ManifestList, SnapshotReference, SnapshotRetention, TableMetadata,
    MAIN_BRANCH,
};
use iceberg::table::Table;
use iceberg::TableUpdate;
use iceberg_datafusion::IcebergStaticTableProvider;

use super::commit::{main_unmoved, TableChange};
use super::{format_error, IcebergFormat};
use crate::metadata_tables::{memory_table, text_map, utc_millis};
use crate::{Result, TableError, TableVersion};

const FORMAT: &str = "Iceberg";

/// The metadata tables an Iceberg table has, by the name after its `$`.
pub(super) const METADATA_TABLES: &[&str] = &[
    "snapshots",
    "history",
    "refs",
    "properties",
    "manifests",
    "files",
    "partitions",
];

fn invalid(message: String) -> TableError {
    TableError::InvalidArgument { message }
}

/// The snapshot `version` names: the one with that id, or the one that was current at
/// that time (the latest made current at or before it).
pub(super) fn snapshot_of(
    metadata: &TableMetadata,
    version: &TableVersion,
    table: &str,
) -> Result<i64> {
    match version {
        TableVersion::Id(id) => match metadata.snapshot_by_id(*id) {
            Some(_) => Ok(*id),
            None => Err(invalid(format!(
                "Iceberg snapshot ID does not exists: {id}"
            ))),
        },
        TableVersion::Ref(name) => metadata
            .snapshot_for_ref(name)
            .map(|snapshot| snapshot.snapshot_id())
            .ok_or_else(|| invalid(format!("Cannot find snapshot with reference name: {name}"))),
        TableVersion::TimestampMillis(at) => metadata
            .history()
            .iter()
            .filter(|entry| entry.timestamp_ms <= *at)
            .max_by_key(|entry| entry.timestamp_ms)
            .map(|entry| entry.snapshot_id)
            .ok_or_else(|| {
                invalid(format!(
                    "No version history table {table} at or before {}",
                    utc_text(*at)
                ))
            }),
    }
}

/// Milliseconds since the epoch as Java's `Instant` prints them, which Trino's messages
/// show: `2025-01-01T10:00:00.123Z`, `2025-01-01T10:00:00Z`.
fn utc_text(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let fraction = millis.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let in_day = seconds.rem_euclid(86_400);
    // The civil date of a day count since 1970-01-01 (the days-from-civil inverse).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fraction = if fraction == 0 {
        String::new()
    } else {
        format!(".{fraction:03}")
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// The table as it was at `version`, read only.
pub(super) async fn as_of(
    table: Table,
    version: &TableVersion,
    name: &str,
) -> Result<Arc<dyn TableProvider>> {
    let snapshot = snapshot_of(table.metadata(), version, name)?;
    Ok(Arc::new(
        IcebergStaticTableProvider::try_new_from_table_snapshot(table, snapshot)
            .await
            .map_err(format_error)?,
    ))
}

impl IcebergFormat {
    /// Makes `snapshot` the table's current one (Trino's `rollback_to_snapshot`, Iceberg's
    /// `setCurrentSnapshot`): any snapshot the table still has.
    pub(super) async fn rollback_to(&self, table: &Table, snapshot: i64) -> Result<()> {
        let metadata = table.metadata();
        if metadata.snapshot_by_id(snapshot).is_none() {
            return Err(invalid(format!(
                "Iceberg snapshot ID does not exists: {snapshot}"
            )));
        }
        let change = TableChange {
            ident: table.identifier().clone(),
            requirements: main_unmoved(metadata),
            updates: vec![TableUpdate::SetSnapshotRef {
                ref_name: MAIN_BRANCH.to_string(),
                reference: SnapshotReference::new(
                    snapshot,
                    SnapshotRetention::branch(None, None, None),
                ),
            }],
        };
        self.commit_changes(vec![change]).await?;
        Ok(())
    }
}

/// The current snapshot and its ancestors.
fn ancestors(metadata: &TableMetadata) -> HashSet<i64> {
    let mut seen = HashSet::new();
    let mut snapshot = metadata.current_snapshot();
    while let Some(s) = snapshot {
        if !seen.insert(s.snapshot_id()) {
            break;
        }
        snapshot = s
            .parent_snapshot_id()
            .and_then(|id| metadata.snapshot_by_id(id));
    }
    seen
}

/// The metadata table `kind` (a name of [`METADATA_TABLES`]) of `table`.
pub(super) async fn metadata_table(table: &Table, kind: &str) -> Result<Arc<dyn TableProvider>> {
    let metadata = table.metadata();
    match kind {
        "snapshots" => {
            let mut snapshots: Vec<_> = metadata.snapshots().collect();
            snapshots.sort_by_key(|s| (s.timestamp_ms(), s.sequence_number()));
            let mut at = TimestampMillisecondBuilder::new().with_timezone("UTC");
            let mut id = Int64Builder::new();
            let mut parent = Int64Builder::new();
            let mut operation = StringBuilder::new();
            let mut list = StringBuilder::new();
            let mut summary = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
            for s in snapshots {
                at.append_value(s.timestamp_ms());
                id.append_value(s.snapshot_id());
                parent.append_option(s.parent_snapshot_id());
                operation.append_value(s.summary().operation.as_str());
                list.append_value(s.manifest_list());
                let mut entries: Vec<_> = s.summary().additional_properties.iter().collect();
                entries.sort();
                for (key, value) in entries {
                    summary.keys().append_value(key);
                    summary.values().append_value(value);
                }
                summary.append(true).map_err(arrow_error)?;
            }
            memory_table(
                FORMAT,
                vec![
                    Field::new("committed_at", utc_millis(), false),
                    Field::new("snapshot_id", DataType::Int64, false),
                    Field::new("parent_id", DataType::Int64, true),
                    Field::new("operation", DataType::Utf8, true),
                    Field::new("manifest_list", DataType::Utf8, true),
                    text_map("summary"),
                ],
                vec![
                    Arc::new(at.finish()),
                    Arc::new(id.finish()),
                    Arc::new(parent.finish()),
                    Arc::new(operation.finish()),
                    Arc::new(list.finish()),
                    Arc::new(summary.finish()),
                ],
            )
        }
        "history" => {
            let current = ancestors(metadata);
            let mut at = TimestampMillisecondBuilder::new().with_timezone("UTC");
            let mut id = Int64Builder::new();
            let mut parent = Int64Builder::new();
            let mut ancestor = BooleanBuilder::new();
            for entry in metadata.history() {
                at.append_value(entry.timestamp_ms);
                id.append_value(entry.snapshot_id);
                parent.append_option(
                    metadata
                        .snapshot_by_id(entry.snapshot_id)
                        .and_then(|s| s.parent_snapshot_id()),
                );
                ancestor.append_value(current.contains(&entry.snapshot_id));
            }
            memory_table(
                FORMAT,
                vec![
                    Field::new("made_current_at", utc_millis(), false),
                    Field::new("snapshot_id", DataType::Int64, false),
                    Field::new("parent_id", DataType::Int64, true),
                    Field::new("is_current_ancestor", DataType::Boolean, false),
                ],
                vec![
                    Arc::new(at.finish()),
                    Arc::new(id.finish()),
                    Arc::new(parent.finish()),
                    Arc::new(ancestor.finish()),
                ],
            )
        }
        "refs" => {
            // iceberg-rust keeps the references private; its serialized metadata has them.
            let json = serde_json::to_value(metadata).map_err(|e| TableError::Format {
                format: "Iceberg",
                source: Box::new(e),
            })?;
            let mut refs: Vec<(String, serde_json::Value)> = json
                .get("refs")
                .and_then(|r| r.as_object())
                .map(|r| r.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            refs.sort_by(|a, b| a.0.cmp(&b.0));
            let mut name = StringBuilder::new();
            let mut kind = StringBuilder::new();
            let mut id = Int64Builder::new();
            let mut max_ref_age = Int64Builder::new();
            let mut min_snapshots = Int32Builder::new();
            let mut max_snapshot_age = Int64Builder::new();
            for (ref_name, value) in refs {
                name.append_value(&ref_name);
                kind.append_value(
                    value
                        .get("type")
                        .and_then(|t| t.as_str())
                        .unwrap_or("branch")
                        .to_ascii_uppercase(),
                );
                id.append_option(value.get("snapshot-id").and_then(|v| v.as_i64()));
                max_ref_age.append_option(value.get("max-ref-age-ms").and_then(|v| v.as_i64()));
                min_snapshots.append_option(
                    value
                        .get("min-snapshots-to-keep")
                        .and_then(|v| v.as_i64())
                        .map(|v| v as i32),
                );
                max_snapshot_age
                    .append_option(value.get("max-snapshot-age-ms").and_then(|v| v.as_i64()));
            }
            memory_table(
                FORMAT,
                vec![
                    Field::new("name", DataType::Utf8, false),
                    Field::new("type", DataType::Utf8, false),
                    Field::new("snapshot_id", DataType::Int64, true),
                    Field::new("max_reference_age_in_ms", DataType::Int64, true),
                    Field::new("min_snapshots_to_keep", DataType::Int32, true),
                    Field::new("max_snapshot_age_in_ms", DataType::Int64, true),
                ],
                vec![
                    Arc::new(name.finish()),
                    Arc::new(kind.finish()),
                    Arc::new(id.finish()),
                    Arc::new(max_ref_age.finish()),
                    Arc::new(min_snapshots.finish()),
                    Arc::new(max_snapshot_age.finish()),
                ],
            )
        }
        "properties" => {
            let mut entries: Vec<_> = metadata.properties().iter().collect();
            entries.sort();
            let mut key = StringBuilder::new();
            let mut value = StringBuilder::new();
            for (k, v) in entries {
                key.append_value(k);
                value.append_value(v);
            }
            memory_table(
                FORMAT,
                vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Utf8, true),
                ],
                vec![Arc::new(key.finish()), Arc::new(value.finish())],
            )
        }
        "manifests" => manifests(table).await,
        "files" => files(table).await,
        "partitions" => partitions(table).await,
        other => Err(invalid(format!("Unknown metadata table: {other}"))),
    }
}

fn arrow_error(e: datafusion::arrow::error::ArrowError) -> TableError {
    TableError::Format {
        format: "Iceberg",
        source: Box::new(e),
    }
}

/// The manifests of the current snapshot.
async fn manifest_list(table: &Table) -> Result<Vec<iceberg::spec::ManifestFile>> {
    let metadata = table.metadata();
    let Some(snapshot) = metadata.current_snapshot() else {
        return Ok(Vec::new());
    };
    let bytes = table
        .file_io()
        .new_input(snapshot.manifest_list())
        .map_err(format_error)?
        .read()
        .await
        .map_err(format_error)?;
    Ok(
        ManifestList::parse_with_version(&bytes, metadata.format_version())
            .map_err(format_error)?
            .entries()
            .to_vec(),
    )
}

async fn manifests(table: &Table) -> Result<Arc<dyn TableProvider>> {
    let metadata = table.metadata();
    let summary_fields = Fields::from(vec![
        Field::new("contains_null", DataType::Boolean, true),
        Field::new("contains_nan", DataType::Boolean, true),
        Field::new("lower_bound", DataType::Utf8, true),
        Field::new("upper_bound", DataType::Utf8, true),
    ]);
    let mut content = Int32Builder::new();
    let mut path = StringBuilder::new();
    let mut length = Int64Builder::new();
    let mut spec = Int32Builder::new();
    let mut snapshot = Int64Builder::new();
    let mut counts: [Int64Builder; 6] = Default::default();
    let mut summaries = ListBuilder::new(StructBuilder::from_fields(summary_fields.clone(), 0));
    for manifest in manifest_list(table).await? {
        content.append_value(match manifest.content {
            ManifestContentType::Data => 0,
            ManifestContentType::Deletes => 1,
        });
        path.append_value(&manifest.manifest_path);
        length.append_value(manifest.manifest_length);
        spec.append_value(manifest.partition_spec_id);
        snapshot.append_value(manifest.added_snapshot_id);
        let figures = [
            manifest.added_files_count.map(i64::from),
            manifest.added_rows_count.map(|n| n as i64),
            manifest.existing_files_count.map(i64::from),
            manifest.existing_rows_count.map(|n| n as i64),
            manifest.deleted_files_count.map(i64::from),
            manifest.deleted_rows_count.map(|n| n as i64),
        ];
        for (builder, figure) in counts.iter_mut().zip(figures) {
            builder.append_option(figure);
        }
        let partition_type = metadata
            .partition_spec_by_id(manifest.partition_spec_id)
            .and_then(|s| s.partition_type(metadata.current_schema()).ok());
        let items = summaries.values();
        for (i, field) in manifest.partitions.iter().flatten().enumerate() {
            let primitive = partition_type
                .as_ref()
                .and_then(|t| t.fields().get(i))
                .and_then(|f| f.field_type.as_primitive_type().cloned());
            let bound = |bytes: Option<&[u8]>| {
                bytes.and_then(|b| {
                    primitive
                        .clone()
                        .and_then(|p| Datum::try_from_bytes(b, p).ok())
                        .map(|d| d.to_string())
                })
            };
            items
                .field_builder::<BooleanBuilder>(0)
                .expect("boolean field")
                .append_value(field.contains_null);
            items
                .field_builder::<BooleanBuilder>(1)
                .expect("boolean field")
                .append_option(field.contains_nan);
            items
                .field_builder::<StringBuilder>(2)
                .expect("text field")
                .append_option(bound(field.lower_bound.as_ref().map(|b| b.as_slice())));
            items
                .field_builder::<StringBuilder>(3)
                .expect("text field")
                .append_option(bound(field.upper_bound.as_ref().map(|b| b.as_slice())));
            items.append(true);
        }
        summaries.append(true);
    }
    let [added_files, added_rows, existing_files, existing_rows, deleted_files, deleted_rows] =
        counts.map(|mut b| b.finish());
    let as_int = |array: datafusion::arrow::array::Int64Array| -> ArrayRef {
        datafusion::arrow::compute::cast(&array, &DataType::Int32).expect("counts fit INTEGER")
    };
    memory_table(
        FORMAT,
        vec![
            Field::new("content", DataType::Int32, false),
            Field::new("path", DataType::Utf8, false),
            Field::new("length", DataType::Int64, false),
            Field::new("partition_spec_id", DataType::Int32, false),
            Field::new("added_snapshot_id", DataType::Int64, false),
            Field::new("added_data_files_count", DataType::Int32, true),
            Field::new("added_rows_count", DataType::Int64, true),
            Field::new("existing_data_files_count", DataType::Int32, true),
            Field::new("existing_rows_count", DataType::Int64, true),
            Field::new("deleted_data_files_count", DataType::Int32, true),
            Field::new("deleted_rows_count", DataType::Int64, true),
            Field::new(
                "partition_summaries",
                DataType::List(Arc::new(Field::new(
                    "item",
                    DataType::Struct(summary_fields),
                    true,
                ))),
                true,
            ),
        ],
        vec![
            Arc::new(content.finish()),
            Arc::new(path.finish()),
            Arc::new(length.finish()),
            Arc::new(spec.finish()),
            Arc::new(snapshot.finish()),
            as_int(added_files),
            Arc::new(added_rows),
            as_int(existing_files),
            Arc::new(existing_rows),
            as_int(deleted_files),
            Arc::new(deleted_rows),
            Arc::new(summaries.finish()),
        ],
    )
}

/// The live data and delete files of the current snapshot.
async fn files(table: &Table) -> Result<Arc<dyn TableProvider>> {
    let count_map = || MapBuilder::new(None, Int32Builder::new(), Int64Builder::new());
    let text_map = || MapBuilder::new(None, Int32Builder::new(), StringBuilder::new());
    let mut content = Int32Builder::new();
    let mut path = StringBuilder::new();
    let mut format = StringBuilder::new();
    let mut spec = Int32Builder::new();
    let mut records = Int64Builder::new();
    let mut size = Int64Builder::new();
    let mut sizes = count_map();
    let mut values = count_map();
    let mut nulls = count_map();
    let mut nans = count_map();
    let mut lower = text_map();
    let mut upper = text_map();
    let mut key_metadata = BinaryBuilder::new();
    let mut offsets = ListBuilder::new(Int64Builder::new());
    let mut equality = ListBuilder::new(Int32Builder::new());
    for manifest in manifest_list(table).await? {
        let manifest_spec = manifest.partition_spec_id;
        let entries = manifest
            .load_manifest(table.file_io())
            .await
            .map_err(format_error)?;
        for entry in entries.entries().iter().filter(|e| e.is_alive()) {
            let file = entry.data_file();
            content.append_value(file.content_type() as i32);
            path.append_value(file.file_path());
            format.append_value(file.file_format().to_string().to_ascii_uppercase());
            spec.append_value(manifest_spec);
            records.append_value(file.record_count() as i64);
            size.append_value(file.file_size_in_bytes() as i64);
            for (builder, map) in [
                (&mut sizes, file.column_sizes()),
                (&mut values, file.value_counts()),
                (&mut nulls, file.null_value_counts()),
                (&mut nans, file.nan_value_counts()),
            ] {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort();
                for (id, n) in entries {
                    builder.keys().append_value(*id);
                    builder.values().append_value(*n as i64);
                }
                builder.append(true).map_err(arrow_error)?;
            }
            for (builder, map) in [
                (&mut lower, file.lower_bounds()),
                (&mut upper, file.upper_bounds()),
            ] {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by_key(|(id, _)| **id);
                for (id, datum) in entries {
                    builder.keys().append_value(*id);
                    builder.values().append_value(datum.to_string());
                }
                builder.append(true).map_err(arrow_error)?;
            }
            key_metadata.append_option(file.key_metadata());
            match file.split_offsets() {
                Some(split) => {
                    offsets.values().append_slice(split);
                    offsets.append(true);
                }
                None => offsets.append(false),
            }
            match file.equality_ids() {
                Some(ids) => {
                    equality.values().append_slice(&ids);
                    equality.append(true);
                }
                None => equality.append(false),
            }
        }
    }
    let map_field = |name: &str, value: DataType| {
        Field::new(
            name,
            DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("keys", DataType::Int32, false),
                        Field::new("values", value, true),
                    ])),
                    false,
                )),
                false,
            ),
            true,
        )
    };
    memory_table(
        FORMAT,
        vec![
            Field::new("content", DataType::Int32, false),
            Field::new("file_path", DataType::Utf8, false),
            Field::new("file_format", DataType::Utf8, false),
            Field::new("spec_id", DataType::Int32, false),
            Field::new("record_count", DataType::Int64, false),
            Field::new("file_size_in_bytes", DataType::Int64, false),
            map_field("column_sizes", DataType::Int64),
            map_field("value_counts", DataType::Int64),
            map_field("null_value_counts", DataType::Int64),
            map_field("nan_value_counts", DataType::Int64),
            map_field("lower_bounds", DataType::Utf8),
            map_field("upper_bounds", DataType::Utf8),
            Field::new("key_metadata", DataType::Binary, true),
            Field::new(
                "split_offsets",
                DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
                true,
            ),
            Field::new(
                "equality_ids",
                DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                true,
            ),
        ],
        vec![
            Arc::new(content.finish()),
            Arc::new(path.finish()),
            Arc::new(format.finish()),
            Arc::new(spec.finish()),
            Arc::new(records.finish()),
            Arc::new(size.finish()),
            Arc::new(sizes.finish()),
            Arc::new(values.finish()),
            Arc::new(nulls.finish()),
            Arc::new(nans.finish()),
            Arc::new(lower.finish()),
            Arc::new(upper.finish()),
            Arc::new(key_metadata.finish()),
            Arc::new(offsets.finish()),
            Arc::new(equality.finish()),
        ],
    )
}

/// One row per partition of the current snapshot's live data files, in the current
/// partitioning (a file of an earlier one has NULL for the fields it lacks): the
/// partition's values (none for an unpartitioned table), its rows, files and bytes, and
/// (`data`) each column's smallest and largest value, NULLs and NaNs there as the files'
/// statistics tell them (NULL where a file has none).
async fn partitions(table: &Table) -> Result<Arc<dyn TableProvider>> {
    let metadata = table.metadata();
    let statistics = StatisticsColumns::of(metadata.current_schema())?;
    let spec = metadata.default_partition_spec();
    let partition_type = spec
        .partition_type(metadata.current_schema())
        .map_err(format_error)?;
    let fields: Fields =
        match iceberg::arrow::type_to_arrow_type(&iceberg::spec::Type::Struct(partition_type))
            .map_err(format_error)?
        {
            DataType::Struct(fields) => fields,
            _ => Fields::empty(),
        };
    let ids: Vec<i32> = spec.fields().iter().map(|f| f.field_id).collect();
    // Partition values (as text, to group by) and their totals.
    let mut groups: std::collections::BTreeMap<String, PartitionTotals> =
        std::collections::BTreeMap::new();
    for manifest in manifest_list(table).await? {
        if manifest.content != ManifestContentType::Data {
            continue;
        }
        let file_spec = metadata.partition_spec_by_id(manifest.partition_spec_id);
        let entries = manifest
            .load_manifest(table.file_io())
            .await
            .map_err(format_error)?;
        for entry in entries.entries().iter().filter(|e| e.is_alive()) {
            let file = entry.data_file();
            let values: Vec<Option<&iceberg::spec::Literal>> = file.partition().iter().collect();
            let row: Vec<Option<ScalarValue>> = ids
                .iter()
                .zip(fields.iter())
                .map(|(id, field)| {
                    let at = file_spec?.fields().iter().position(|f| f.field_id == *id)?;
                    partition_value(values.get(at).copied().flatten()?, field.data_type())
                })
                .collect();
            let key = format!("{row:?}");
            let group = groups.entry(key).or_insert_with(|| PartitionTotals {
                values: row,
                columns: vec![ColumnTotals::default(); statistics.ids.len()],
                ..PartitionTotals::default()
            });
            group.records += file.record_count() as i64;
            group.files += 1;
            group.bytes += file.file_size_in_bytes() as i64;
            for (id, totals) in statistics.ids.iter().zip(&mut group.columns) {
                totals.add(file, *id);
            }
        }
    }
    let mut columns: Vec<Field> = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    if !fields.is_empty() {
        let children = fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                if groups.is_empty() {
                    return Ok(datafusion::arrow::array::new_empty_array(field.data_type()));
                }
                let null = ScalarValue::try_from(field.data_type())?;
                let values = groups
                    .values()
                    .map(|g| g.values[i].clone().unwrap_or_else(|| null.clone()));
                let array = ScalarValue::iter_to_array(values.collect::<Vec<_>>())?;
                Ok(datafusion::arrow::compute::cast(&array, field.data_type())?)
            })
            .collect::<datafusion::common::Result<Vec<ArrayRef>>>()
            .map_err(|e| TableError::Format {
                format: FORMAT,
                source: Box::new(e),
            })?;
        let plain: Fields = fields
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect();
        let partition =
            datafusion::arrow::array::StructArray::try_new(plain.clone(), children, None)
                .map_err(arrow_error)?;
        columns.push(Field::new("partition", DataType::Struct(plain), false));
        arrays.push(Arc::new(partition));
    }
    let totals: [(&str, Int64Array); 3] = [
        ("record_count", groups.values().map(|g| g.records).collect()),
        ("file_count", groups.values().map(|g| g.files).collect()),
        ("total_size", groups.values().map(|g| g.bytes).collect()),
    ];
    for (name, values) in totals {
        columns.push(Field::new(name, DataType::Int64, false));
        arrays.push(Arc::new(values));
    }
    if !statistics.ids.is_empty() {
        let groups: Vec<&PartitionTotals> = groups.values().collect();
        let (field, data) = statistics.data(&groups).map_err(|e| TableError::Format {
            format: FORMAT,
            source: Box::new(e),
        })?;
        columns.push(field);
        arrays.push(data);
    }
    memory_table(FORMAT, columns, arrays)
}

/// One partition's values and what its live data files hold.
#[derive(Default)]
struct PartitionTotals {
    values: Vec<Option<ScalarValue>>,
    records: i64,
    files: i64,
    bytes: i64,
    /// Per column of [`StatisticsColumns`].
    columns: Vec<ColumnTotals>,
}

/// One column's statistics over a partition's files.
#[derive(Default, Clone)]
struct ColumnTotals {
    files: u64,
    min: Option<Datum>,
    max: Option<Datum>,
    /// A file with values has no bounds: the partition's are unknown.
    unbounded: bool,
    /// `None` once a file has no count.
    nulls: Option<i64>,
    nans: Option<i64>,
}

impl ColumnTotals {
    /// Adds a file's statistics of column `id`.
    fn add(&mut self, file: &iceberg::spec::DataFile, id: i32) {
        let count =
            |counts: &std::collections::HashMap<i32, u64>| counts.get(&id).map(|n| *n as i64);
        let (nulls, nans) = (
            count(file.null_value_counts()),
            count(file.nan_value_counts()),
        );
        // A file of NULLs only has no bounds, and needs none.
        if nulls != Some(file.record_count() as i64) {
            match (file.lower_bounds().get(&id), file.upper_bounds().get(&id)) {
                (Some(lower), Some(upper)) => {
                    if self.min.as_ref().is_none_or(|min| lower < min) {
                        self.min = Some(lower.clone());
                    }
                    if self.max.as_ref().is_none_or(|max| upper > max) {
                        self.max = Some(upper.clone());
                    }
                }
                _ => self.unbounded = true,
            }
        }
        let first = self.files == 0;
        let sum = |total: Option<i64>, more: Option<i64>| match first {
            true => more,
            false => total.zip(more).map(|(a, b)| a + b),
        };
        self.nulls = sum(self.nulls, nulls);
        self.nans = sum(self.nans, nans);
        self.files += 1;
    }

    fn bound(&self, pick: fn(&Self) -> &Option<Datum>) -> Option<&Datum> {
        match self.unbounded {
            true => None,
            false => pick(self).as_ref(),
        }
    }
}

/// The columns `$partitions`' `data` describes: the table's top-level columns of
/// primitive types, each `ROW(min, max, null_count, nan_count)`.
struct StatisticsColumns {
    ids: Vec<i32>,
    names: Vec<String>,
    types: Vec<DataType>,
}

impl StatisticsColumns {
    fn of(schema: &iceberg::spec::Schema) -> Result<Self> {
        let mut columns = Self {
            ids: Vec::new(),
            names: Vec::new(),
            types: Vec::new(),
        };
        for field in schema.as_struct().fields() {
            if !field.field_type.is_primitive() {
                continue;
            }
            let data_type =
                iceberg::arrow::type_to_arrow_type(&field.field_type).map_err(format_error)?;
            columns.ids.push(field.id);
            columns.names.push(field.name.clone());
            columns.types.push(data_type);
        }
        Ok(columns)
    }

    /// The `data` column of `groups`.
    fn data(&self, groups: &[&PartitionTotals]) -> datafusion::common::Result<(Field, ArrayRef)> {
        use datafusion::arrow::array::{new_empty_array, StructArray};
        let mut fields = Vec::with_capacity(self.ids.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.ids.len());
        for (i, (name, data_type)) in self.names.iter().zip(&self.types).enumerate() {
            let bound = |pick: fn(&ColumnTotals) -> &Option<Datum>| {
                if groups.is_empty() {
                    return Ok(new_empty_array(data_type));
                }
                let null = ScalarValue::try_from(data_type)?;
                let values: Vec<ScalarValue> = groups
                    .iter()
                    .map(|g| {
                        g.columns[i]
                            .bound(pick)
                            .and_then(|d| {
                                let literal =
                                    iceberg::spec::Literal::Primitive(d.literal().clone());
                                partition_value(&literal, data_type)
                            })
                            .unwrap_or_else(|| null.clone())
                    })
                    .collect();
                let array = ScalarValue::iter_to_array(values)?;
                Ok::<_, datafusion::error::DataFusionError>(datafusion::arrow::compute::cast(
                    &array, data_type,
                )?)
            };
            let counts = |pick: fn(&ColumnTotals) -> Option<i64>| -> ArrayRef {
                Arc::new(
                    groups
                        .iter()
                        .map(|g| pick(&g.columns[i]))
                        .collect::<Int64Array>(),
                )
            };
            let column_fields = Fields::from(vec![
                Field::new("min", data_type.clone(), true),
                Field::new("max", data_type.clone(), true),
                Field::new("null_count", DataType::Int64, true),
                Field::new("nan_count", DataType::Int64, true),
            ]);
            let column = StructArray::try_new(
                column_fields.clone(),
                vec![
                    bound(|c| &c.min)?,
                    bound(|c| &c.max)?,
                    counts(|c| c.nulls),
                    counts(|c| c.nans),
                ],
                None,
            )?;
            fields.push(Field::new(name, DataType::Struct(column_fields), true));
            arrays.push(Arc::new(column));
        }
        let fields = Fields::from(fields);
        let data = StructArray::try_new(fields.clone(), arrays, None)?;
        Ok((
            Field::new("data", DataType::Struct(fields), false),
            Arc::new(data),
        ))
    }
}

/// A partition value as the engine holds values of `data_type`.
fn partition_value(literal: &iceberg::spec::Literal, data_type: &DataType) -> Option<ScalarValue> {
    use iceberg::spec::{Literal, PrimitiveLiteral};
    let Literal::Primitive(value) = literal else {
        return None;
    };
    let scalar = match (value, data_type) {
        (PrimitiveLiteral::Int128(v), DataType::Decimal128(p, s)) => {
            ScalarValue::Decimal128(Some(*v), *p, *s)
        }
        (PrimitiveLiteral::Boolean(v), _) => ScalarValue::Boolean(Some(*v)),
        (PrimitiveLiteral::Int(v), _) => ScalarValue::Int32(Some(*v)),
        (PrimitiveLiteral::Long(v), _) => ScalarValue::Int64(Some(*v)),
        (PrimitiveLiteral::Float(v), _) => ScalarValue::Float32(Some(v.0)),
        (PrimitiveLiteral::Double(v), _) => ScalarValue::Float64(Some(v.0)),
        (PrimitiveLiteral::String(v), _) => ScalarValue::Utf8(Some(v.clone())),
        (PrimitiveLiteral::Binary(v), _) => ScalarValue::Binary(Some(v.clone())),
        _ => return None,
    };
    scalar.cast_to(data_type).ok()
}

#[cfg(test)]
mod tests {
    use super::utc_text;

    #[test]
    fn millis_print_as_utc_timestamps() {
        assert_eq!(utc_text(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_text(1_735_725_600_123), "2025-01-01T10:00:00.123Z");
        assert_eq!(utc_text(-1), "1969-12-31T23:59:59.999Z");
    }
}
