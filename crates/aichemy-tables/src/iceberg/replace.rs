//! `CREATE OR REPLACE TABLE [AS …]` on an existing Iceberg table: one commit gives the
//! table its new schema, partitioning and comment and a snapshot holding only the new
//! rows, as Iceberg's replace transactions do. The table keeps its identity, location and
//! history: earlier snapshots stay readable with their own schemas (time travel, rollback).
//! The new columns get field ids above every id the table used, so that no old data file
//! is read as one of them.

use std::collections::{HashMap, HashSet};

use datafusion::execution::SendableRecordBatchStream;
use iceberg::spec::{TableMetadataBuilder, MAIN_BRANCH};
use iceberg::table::Table;
use iceberg::TableRequirement;

use super::commit::{check_write_paths, main_unmoved, CommitError, TableChange};
use super::rows::{made_current, overwrite_snapshot, write_rows};
use super::{format_error, partition_fields, partitioning, types, IcebergFormat};
use crate::{CreateTableRequest, Result, TableError};

impl IcebergFormat {
    pub(super) async fn replace(
        &self,
        request: CreateTableRequest,
        rows: SendableRecordBatchStream,
    ) -> Result<u64> {
        self.check_properties(&request)?;
        let table = self.require_table(&request.schema, &request.name).await?;
        let base = table.metadata();
        if let Some(location) = request.string_property("location")? {
            if location.trim_end_matches('/') != base.location().trim_end_matches('/') {
                return Err(TableError::InvalidProperty {
                    property: "location".into(),
                    message: format!(
                        "The provided location '{location}' does not match the existing \
                         table location '{}'",
                        base.location()
                    ),
                });
            }
        }
        check_write_paths(base, None).map_err(|message| TableError::Storage { message })?;

        // The replacement's definition, staged on the current metadata without its main
        // branch: the new snapshot starts a new line of history.
        let schema = types::schema_with_ids_after(&request.columns, base.last_column_id())?;
        let spec = partitioning::partition_spec(&schema, &partition_fields(&request)?)?;
        let mut builder = TableMetadataBuilder::new_from_metadata(
            base.clone(),
            table.metadata_location().map(str::to_string),
        )
        .remove_ref(MAIN_BRANCH)
        .add_current_schema(schema)
        .map_err(format_error)?
        .add_default_partition_spec(spec)
        .map_err(format_error)?
        .set_properties(HashMap::from([(
            "write.format.default".to_string(),
            "parquet".to_string(),
        )]))
        .map_err(format_error)?;
        builder = match &request.comment {
            Some(comment) => builder
                .set_properties(HashMap::from([("comment".to_string(), comment.clone())]))
                .map_err(format_error)?,
            None if base.properties().contains_key("comment") => builder
                .remove_properties(&["comment".to_string()])
                .map_err(format_error)?,
            None => builder,
        };
        let staged = builder.build().map_err(format_error)?;
        let staged_table = Table::builder()
            .metadata(staged.metadata.clone())
            .identifier(table.identifier().clone())
            .file_io(self.file_io().clone())
            .runtime(iceberg::Runtime::try_current().map_err(format_error)?)
            .build()
            .map_err(format_error)?;

        let (added, written) = write_rows(&staged_table, rows).await?;
        let (snapshot, _) =
            overwrite_snapshot(self, &staged.metadata, &HashSet::new(), &added, false, &[]).await?;

        let mut requirements = main_unmoved(base);
        requirements.extend([
            TableRequirement::CurrentSchemaIdMatch {
                current_schema_id: base.current_schema_id(),
            },
            TableRequirement::DefaultSpecIdMatch {
                default_spec_id: base.default_partition_spec_id(),
            },
            TableRequirement::LastAssignedFieldIdMatch {
                last_assigned_field_id: base.last_column_id(),
            },
        ]);
        let mut updates = staged.changes;
        updates.extend(made_current(snapshot));
        let change = TableChange {
            ident: table.identifier().clone(),
            requirements,
            updates,
        };
        match self.commit_changes(vec![change]).await {
            Ok(_) => Ok(written),
            Err(CommitError::Conflict(_)) => Err(TableError::Conflict {
                message: format!(
                    "Table '{}' changed while it was being replaced; run the statement again",
                    self.qualified(&request.schema, &request.name)
                ),
            }),
            Err(e) => Err(e.into()),
        }
    }
}
