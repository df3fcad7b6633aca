//! The checks statements make, each denied with Trino's message: a catalog the user cannot
//! use reports that first (`Cannot access catalog c`), as Trino's engine does, then the
//! operation's own rule decides.

use crate::file::FileAccessControl;
use crate::rules::{CatalogAccess, QueryAccess, SystemAccess, TablePrivilege};
use crate::{Denied, Identity, Principal, TableName};

type Check = Result<(), Denied>;

fn deny(message: String) -> Check {
    Err(Denied(message))
}

/// A Java-style list: `[a, b]`.
fn list(items: &[&str]) -> String {
    format!("[{}]", items.join(", "))
}

/// Trino's checks over a rules file.
impl FileAccessControl {
    pub fn check_can_access_catalog(&self, who: &Identity, catalog: &str) -> Check {
        match self.can_access_catalog(who, catalog) {
            true => Ok(()),
            false => deny(format!("Cannot access catalog {catalog}")),
        }
    }

    pub fn check_can_create_catalog(&self, who: &Identity, catalog: &str) -> Check {
        match self.catalog_access(who, catalog) == CatalogAccess::Owner {
            true => Ok(()),
            false => deny(format!("Cannot create catalog {catalog}")),
        }
    }

    pub fn check_can_drop_catalog(&self, who: &Identity, catalog: &str) -> Check {
        match self.catalog_access(who, catalog) == CatalogAccess::Owner {
            true => Ok(()),
            false => deny(format!("Cannot drop catalog {catalog}")),
        }
    }

    pub fn check_can_show_schemas(&self, who: &Identity, catalog: &str) -> Check {
        self.check_can_access_catalog(who, catalog)?;
        match self.catalog_visible(who, catalog) {
            true => Ok(()),
            false => deny("Cannot show schemas".into()),
        }
    }

    pub fn check_can_show_tables(&self, who: &Identity, catalog: &str, schema: &str) -> Check {
        self.check_can_access_catalog(who, catalog)?;
        match self.schema_visible(who, catalog, schema) {
            true => Ok(()),
            false => deny(format!("Cannot show tables of schema {catalog}.{schema}")),
        }
    }

    pub fn check_can_show_columns(&self, who: &Identity, table: &TableName) -> Check {
        self.check_can_access_catalog(who, &table.catalog)?;
        match self.any_table_permission(who, table) {
            true => Ok(()),
            false => deny(format!("Cannot show columns of table {table}")),
        }
    }

    pub fn check_can_select(&self, who: &Identity, table: &TableName, columns: &[&str]) -> Check {
        self.check_can_access_catalog(who, &table.catalog)?;
        match self.can_select_columns(who, table, columns) {
            true => Ok(()),
            false => deny(format!("Cannot select from table {table}")),
        }
    }

    /// Reading `table` inside a view that `owner` defined and someone else queries: the
    /// owner must be able to read it and to let others read it.
    pub fn check_can_create_view_with_select(
        &self,
        owner: &Identity,
        table: &TableName,
        columns: &[&str],
    ) -> Check {
        let denied = |inner: String| {
            deny(format!(
                "View owner does not have sufficient privileges: {inner}"
            ))
        };
        if !self.can_access_catalog(owner, &table.catalog) {
            return denied(format!("Cannot access catalog {}", table.catalog));
        }
        if self.catalog_access(owner, &table.catalog) < CatalogAccess::All
            || !self.can_select_columns(owner, table, columns)
        {
            return denied(format!("Cannot select from table {table}"));
        }
        if table.schema != "information_schema"
            && !self.table_permission(owner, table, TablePrivilege::GrantSelect)
        {
            return denied(format!(
                "View owner '{}' cannot create view that selects from {table}",
                owner.user
            ));
        }
        Ok(())
    }

    fn check_table(
        &self,
        who: &Identity,
        table: &TableName,
        privilege: TablePrivilege,
        message: String,
    ) -> Check {
        self.check_can_access_catalog(who, &table.catalog)?;
        match self.table_permission(who, table, privilege) {
            true => Ok(()),
            false => deny(message),
        }
    }

    pub fn check_can_insert(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot insert into table {table}");
        self.check_table(who, table, TablePrivilege::Insert, message)
    }

    pub fn check_can_delete(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot delete from table {table}");
        self.check_table(who, table, TablePrivilege::Delete, message)
    }

    pub fn check_can_truncate(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot truncate table {table}");
        self.check_table(who, table, TablePrivilege::Delete, message)
    }

    pub fn check_can_update(&self, who: &Identity, table: &TableName, columns: &[&str]) -> Check {
        let message = format!("Cannot update columns {} in table {table}", list(columns));
        self.check_table(who, table, TablePrivilege::Update, message)
    }

    pub fn check_can_create_table(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot create table {table}");
        self.check_table(who, table, TablePrivilege::Ownership, message)
    }

    pub fn check_can_drop_table(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot drop table {table}");
        self.check_table(who, table, TablePrivilege::Ownership, message)
    }

    pub fn check_can_rename_table(
        &self,
        who: &Identity,
        from: &TableName,
        to: &TableName,
    ) -> Check {
        let message = format!("Cannot rename table from {from} to {to}");
        self.check_table(who, from, TablePrivilege::Ownership, message.clone())?;
        self.check_table(who, to, TablePrivilege::Ownership, message)
    }

    pub fn check_can_set_table_properties(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot set table properties to {table}");
        self.check_table(who, table, TablePrivilege::Ownership, message)
    }

    /// `ALTER TABLE … EXECUTE procedure`. Trino's file-based control lets anyone run one;
    /// here it needs the table's ownership, as its properties do: expire_snapshots,
    /// remove_orphan_files and rollback_to_snapshot destroy history, and the index
    /// procedures change how every reader's queries run.
    pub fn check_can_execute_table_procedure(
        &self,
        who: &Identity,
        table: &TableName,
        procedure: &str,
    ) -> Check {
        let message = format!("Cannot execute table procedure {procedure} on {table}");
        self.check_table(who, table, TablePrivilege::Ownership, message)
    }

    pub fn check_can_comment_table(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot comment table to {table}");
        self.check_table(who, table, TablePrivilege::Ownership, message)
    }

    pub fn check_can_comment_column(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot comment column to {table}");
        self.check_table(who, table, TablePrivilege::Ownership, message)
    }

    pub fn check_can_add_column(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot add a column to table {table}");
        self.check_table(who, table, TablePrivilege::Ownership, message)
    }

    pub fn check_can_drop_column(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot drop a column from table {table}");
        self.check_table(who, table, TablePrivilege::Ownership, message)
    }

    pub fn check_can_rename_column(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot rename a column in table {table}");
        self.check_table(who, table, TablePrivilege::Ownership, message)
    }

    pub fn check_can_alter_column(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot alter a column for table {table}");
        self.check_table(who, table, TablePrivilege::Ownership, message)
    }

    pub fn check_can_show_create_table(&self, who: &Identity, table: &TableName) -> Check {
        let message = format!("Cannot show create table for {table}");
        self.check_table(who, table, TablePrivilege::Ownership, message)
    }

    pub fn check_can_create_view(&self, who: &Identity, view: &TableName) -> Check {
        let message = format!("Cannot create view {view}");
        self.check_table(who, view, TablePrivilege::Ownership, message)
    }

    pub fn check_can_drop_view(&self, who: &Identity, view: &TableName) -> Check {
        let message = format!("Cannot drop view {view}");
        self.check_table(who, view, TablePrivilege::Ownership, message)
    }

    pub fn check_can_rename_view(&self, who: &Identity, from: &TableName, to: &TableName) -> Check {
        let message = format!("Cannot rename view from {from} to {to}");
        self.check_table(who, from, TablePrivilege::Ownership, message.clone())?;
        self.check_table(who, to, TablePrivilege::Ownership, message)
    }

    pub fn check_can_create_materialized_view(&self, who: &Identity, view: &TableName) -> Check {
        let message = format!("Cannot create materialized view {view}");
        self.check_table(who, view, TablePrivilege::Ownership, message)
    }

    pub fn check_can_drop_materialized_view(&self, who: &Identity, view: &TableName) -> Check {
        let message = format!("Cannot drop materialized view {view}");
        self.check_table(who, view, TablePrivilege::Ownership, message)
    }

    pub fn check_can_refresh_materialized_view(&self, who: &Identity, view: &TableName) -> Check {
        let message = format!("Cannot refresh materialized view {view}");
        self.check_table(who, view, TablePrivilege::Update, message)
    }

    fn check_schema_owner(
        &self,
        who: &Identity,
        catalog: &str,
        schema: &str,
        message: String,
    ) -> Check {
        self.check_can_access_catalog(who, catalog)?;
        match self.is_schema_owner(who, catalog, schema) {
            true => Ok(()),
            false => deny(message),
        }
    }

    pub fn check_can_create_schema(&self, who: &Identity, catalog: &str, schema: &str) -> Check {
        let message = format!("Cannot create schema {catalog}.{schema}");
        self.check_schema_owner(who, catalog, schema, message)
    }

    /// Changing a schema's properties (the Iceberg REST catalog's namespace properties).
    pub fn check_can_set_schema_properties(
        &self,
        who: &Identity,
        catalog: &str,
        schema: &str,
    ) -> Check {
        let message = format!("Cannot set properties of schema {catalog}.{schema}");
        self.check_schema_owner(who, catalog, schema, message)
    }

    pub fn check_can_drop_schema(&self, who: &Identity, catalog: &str, schema: &str) -> Check {
        let message = format!("Cannot drop schema {catalog}.{schema}");
        self.check_schema_owner(who, catalog, schema, message)
    }

    pub fn check_can_rename_schema(
        &self,
        who: &Identity,
        catalog: &str,
        schema: &str,
        new_name: &str,
    ) -> Check {
        let message = format!("Cannot rename schema from {catalog}.{schema} to {new_name}");
        self.check_schema_owner(who, catalog, schema, message.clone())?;
        self.check_schema_owner(who, catalog, new_name, message)
    }

    pub fn check_can_show_create_schema(
        &self,
        who: &Identity,
        catalog: &str,
        schema: &str,
    ) -> Check {
        let message = format!("Cannot show create schema for {catalog}.{schema}");
        self.check_schema_owner(who, catalog, schema, message)
    }

    /// `ALTER <kind> <name> SET AUTHORIZATION <principal>`; `kind` in lower case
    /// (`schema`, `table`, `view`, `materialized view`), `name` dotted.
    pub fn check_can_set_authorization(
        &self,
        who: &Identity,
        kind: &str,
        name: &[&str],
        principal: &Principal,
    ) -> Check {
        let dotted = name.join(".");
        let message = format!("Cannot set authorization for {kind} {dotted} to {principal}");
        let owns = match (kind, name) {
            ("schema", [catalog, schema]) => self.is_schema_owner(who, catalog, schema),
            (_, [catalog, schema, table]) => self.table_permission(
                who,
                &TableName::new(catalog, schema, table),
                TablePrivilege::Ownership,
            ),
            _ => false,
        };
        if let Some(catalog) = name.first() {
            self.check_can_access_catalog(who, catalog)?;
        }
        match owns && self.can_authorize(who, principal) {
            true => Ok(()),
            false => deny(message),
        }
    }

    pub fn check_can_execute_query(&self, who: &Identity) -> Check {
        match self.can_query(who, QueryAccess::Execute, None) {
            true => Ok(()),
            false => deny("Cannot execute query".into()),
        }
    }

    pub fn check_can_view_query_owned_by(&self, who: &Identity, owner: &str) -> Check {
        match self.can_query(who, QueryAccess::View, Some(owner)) {
            true => Ok(()),
            false => deny("Cannot view query".into()),
        }
    }

    pub fn check_can_kill_query_owned_by(&self, who: &Identity, owner: &str) -> Check {
        match self.can_query(who, QueryAccess::Kill, Some(owner)) {
            true => Ok(()),
            false => deny("Cannot kill query".into()),
        }
    }

    pub fn check_can_impersonate_user(&self, original: &Identity, user: &str) -> Check {
        match self.can_impersonate(original, user) {
            true => Ok(()),
            false => deny(format!(
                "User {} cannot impersonate user {user}",
                original.user
            )),
        }
    }

    pub fn check_can_read_system_information(&self, who: &Identity) -> Check {
        match self.system_information(who, SystemAccess::Read) {
            true => Ok(()),
            false => deny("Cannot read system information".into()),
        }
    }

    pub fn check_can_write_system_information(&self, who: &Identity) -> Check {
        match self.system_information(who, SystemAccess::Write) {
            true => Ok(()),
            false => deny("Cannot write system information".into()),
        }
    }

    pub fn check_can_set_system_session_property(&self, who: &Identity, property: &str) -> Check {
        match self.system_session_property(who, property) {
            true => Ok(()),
            false => deny(format!("Cannot set system session property {property}")),
        }
    }

    pub fn check_can_set_catalog_session_property(
        &self,
        who: &Identity,
        catalog: &str,
        property: &str,
    ) -> Check {
        self.check_can_access_catalog(who, catalog)?;
        match self.catalog_session_property(who, catalog, property) {
            true => Ok(()),
            false => deny(format!("Cannot set catalog session property {property}")),
        }
    }

    pub fn check_can_execute_procedure(
        &self,
        who: &Identity,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> Check {
        self.check_can_access_catalog(who, catalog)?;
        match self.can_execute_procedure(who, catalog, schema, name) {
            true => Ok(()),
            false => deny(format!(
                "Cannot execute procedure {catalog}.{schema}.{name}"
            )),
        }
    }
}
