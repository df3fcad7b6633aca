//! The lakehouse's access policy over the REST catalog: the same rules or SQL grants SQL
//! obeys decide what a request's user may list, load, create, commit, drop and rename in the
//! `iceberg` catalog. A table is handed over raw (metadata, file locations, vended
//! credentials) only to a user who may read all of it: a user who reads it through a row
//! filter or column masks, or not at all, is refused (403 `ForbiddenException`) — the
//! files would show her what SQL hides.

use aichemy_access::{Denied, FileAccessControl, Identity, RoleSelection, TableName};
use aichemy_engine::Access;
use aichemy_tables::iceberg::namespace_key;
use axum::http::StatusCode;
use iceberg::spec::{Operation, TableMetadata};
use iceberg::{NamespaceIdent, TableIdent, TableRequirement, TableUpdate};

use super::error::{RestError, RestResult};
use super::RestApp;

/// The SQL catalog the REST catalog serves.
const CATALOG: &str = "iceberg";

/// The user a request was authenticated as.
#[derive(Debug, Clone)]
pub(super) struct RestUser(pub String);

/// What the policy lets one request's user do; everything without a policy.
pub(super) struct Who(Option<Access>);

fn forbidden(denied: Denied) -> RestError {
    RestError::new(
        StatusCode::FORBIDDEN,
        "ForbiddenException",
        denied.to_string(),
    )
}

pub(super) fn unusable(error: aichemy_engine::TrinoError) -> RestError {
    match error.code {
        aichemy_engine::ErrorCode::PERMISSION_DENIED => {
            RestError::new(StatusCode::FORBIDDEN, "ForbiddenException", error.message)
        }
        _ => RestError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerErrorException",
            error.message,
        ),
    }
}

/// A namespace as the policy names a schema.
pub(super) fn schema_of(namespace: &NamespaceIdent) -> String {
    namespace_key(namespace)
}

/// A table as the policy names it.
pub(super) fn table_of(ident: &TableIdent) -> TableName {
    TableName::new(CATALOG, &schema_of(ident.namespace()), ident.name())
}

impl RestApp {
    /// The policy as it stands for `user`.
    pub(super) async fn who(&self, user: &RestUser) -> RestResult<Who> {
        self.lakehouse
            .refresh_grants(false)
            .await
            .map_err(unusable)?;
        let access = self
            .lakehouse
            .access_as(&user.0, &RoleSelection::All)
            .map_err(unusable)?;
        Ok(Who(access))
    }
}

impl Who {
    /// Runs one check; a refusal is 403.
    pub(super) fn check(
        &self,
        check: impl FnOnce(&FileAccessControl, &Identity) -> Result<(), Denied>,
    ) -> RestResult<()> {
        match &self.0 {
            Some(access) => check(&access.rules, &access.identity).map_err(forbidden),
            None => Ok(()),
        }
    }

    fn allows(&self, question: impl FnOnce(&FileAccessControl, &Identity) -> bool) -> bool {
        self.0
            .as_ref()
            .is_none_or(|access| question(&access.rules, &access.identity))
    }

    pub(super) fn schema_visible(&self, namespace: &NamespaceIdent) -> bool {
        let schema = schema_of(namespace);
        self.allows(|rules, who| rules.schema_visible(who, CATALOG, &schema))
    }

    pub(super) fn table_visible(&self, ident: &TableIdent) -> bool {
        let table = table_of(ident);
        self.allows(|rules, who| rules.table_visible(who, &table))
    }

    /// Refuses a namespace the user may not see (403, as for a table she may not read).
    pub(super) fn require_schema_visible(&self, namespace: &NamespaceIdent) -> RestResult<()> {
        match self.schema_visible(namespace) {
            true => Ok(()),
            false => Err(forbidden(Denied(format!(
                "Cannot access schema {CATALOG}.{}",
                schema_of(namespace)
            )))),
        }
    }

    /// Whether the user reads `table` filtered or masked.
    fn restricted(&self, table: &TableName) -> bool {
        self.0.as_ref().is_some_and(|access| {
            let (rules, who) = (&access.rules, &access.identity);
            rules.row_filter(who, table).is_some()
                || rules
                    .table_rule(who, table)
                    .is_some_and(|r| r.columns.iter().any(|c| c.mask.is_some()))
        })
    }

    /// Loading a table hands over all of it: every column, unfiltered, unmasked.
    pub(super) fn check_load(
        &self,
        ident: &TableIdent,
        metadata: &TableMetadata,
    ) -> RestResult<()> {
        let table = table_of(ident);
        let schema = metadata.current_schema();
        let columns: Vec<&str> = schema
            .as_struct()
            .fields()
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        self.check(|rules, who| rules.check_can_select(who, &table, &columns))?;
        self.refuse_restricted(&table, "load")
    }

    fn refuse_restricted(&self, table: &TableName, verb: &str) -> RestResult<()> {
        match self.restricted(table) {
            true => Err(forbidden(Denied(format!(
                "Cannot {verb} table {table} through the REST catalog: a row filter or column \
                 masks apply to this user; query it through SQL"
            )))),
            false => Ok(()),
        }
    }

    /// A commit needs what its updates do: `INSERT` to add rows, `DELETE` as well to
    /// replace or remove them, ownership to change the schema, partitioning or properties;
    /// a commit that creates the table needs the right to create it.
    pub(super) fn check_commit(
        &self,
        ident: &TableIdent,
        requirements: &[TableRequirement],
        updates: &[TableUpdate],
    ) -> RestResult<()> {
        let table = table_of(ident);
        if requirements
            .iter()
            .any(|r| matches!(r, TableRequirement::NotExist))
        {
            return self.check(|rules, who| rules.check_can_create_table(who, &table));
        }
        let mut owner_only = false;
        let mut adds = false;
        let mut removes = false;
        for update in updates {
            match update {
                TableUpdate::AddSnapshot { snapshot } => {
                    adds = true;
                    removes |= snapshot.summary().operation != Operation::Append;
                }
                TableUpdate::SetSnapshotRef { .. } => adds = true,
                TableUpdate::RemoveSnapshots { .. } | TableUpdate::RemoveSnapshotRef { .. } => {
                    removes = true
                }
                TableUpdate::AssignUuid { .. } => {}
                _ => owner_only = true,
            }
        }
        if adds {
            self.check(|rules, who| rules.check_can_insert(who, &table))?;
        }
        if removes {
            self.check(|rules, who| rules.check_can_delete(who, &table))?;
        }
        if owner_only {
            self.check(|rules, who| rules.check_can_set_table_properties(who, &table))?;
        }
        self.refuse_restricted(&table, "change")
    }
}
